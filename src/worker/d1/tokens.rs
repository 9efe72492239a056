//! The `tokens` table: sign-in sessions, stored as the SHA-256 of the token
//! (`sessions.rs` issues, checks and expires them).

use std::future::Future;

use worker::*;

use super::{first, run, Json};
use super::users::UserRow;

/// The token with this hash: when it was created and its user.
pub async fn user_of(db: &D1Database, token_hash: &str) -> Result<Option<(f64, UserRow)>> {
    let row: Option<Json> = first(db
        .prepare(
            "SELECT t.created_at, u.id, u.username, u.passkey, u.uploaded, u.downloaded, u.banned, u.is_admin FROM tokens t \
             JOIN users u ON u.id = t.user_id WHERE t.token_hash = ?1",
        )
        .bind(&[token_hash.into()]))
    .await?;
    let Some(row) = row else { return Ok(None) };
    let num = |k: &str| row[k].as_f64().unwrap_or(0.0);
    let text = |k: &str| row[k].as_str().unwrap_or_default().to_string();
    let user = UserRow {
        id: num("id"),
        username: text("username"),
        passkey: text("passkey"),
        uploaded: num("uploaded"),
        downloaded: num("downloaded"),
        banned: num("banned"),
        is_admin: num("is_admin"),
    };
    Ok(Some((num("created_at"), user)))
}

/// Deletes one token (logout, or found expired). An unknown hash deletes nothing.
pub fn delete(db: &D1Database, token_hash: &str) -> impl Future<Output = Result<()>> {
    run(db.prepare("DELETE FROM tokens WHERE token_hash = ?1").bind(&[token_hash.into()]))
}

/// Stores a new token of `user_id`, and deletes the user's tokens created
/// at or before `oldest_live` (expired), in one batch.
pub async fn issue(db: &D1Database, user_id: f64, token_hash: String, now: f64, oldest_live: f64) -> Result<()> {
    db.batch(vec![
        db.prepare("DELETE FROM tokens WHERE user_id = ?1 AND created_at <= ?2").bind(&[user_id.into(), oldest_live.into()])?,
        db.prepare("INSERT INTO tokens (token_hash, user_id, created_at) VALUES (?1, ?2, ?3)")
            .bind(&[token_hash.into(), user_id.into(), now.into()])?,
    ])
    .await?;
    Ok(())
}

/// Revokes every token of a user (a ban).
pub fn revoke_all(db: &D1Database, user_id: f64) -> impl Future<Output = Result<()>> {
    run(revoke_all_statement(db, user_id))
}

/// The statement that revokes every token of a user, to run in a batch
/// with the change that requires it (`users::set_password`).
pub(super) fn revoke_all_statement(db: &D1Database, user_id: f64) -> Result<D1PreparedStatement> {
    db.prepare("DELETE FROM tokens WHERE user_id = ?1").bind(&[user_id.into()])
}
