//! The `invites` table (`INVITE_ONLY`): codes an admin creates, each used
//! by one registration.

use std::future::Future;

use worker::*;

use super::run;

/// Claims an unused invite for a registration, atomically: `Ok(false)` if
/// the code is unknown or already used.
pub async fn claim(db: &D1Database, code: &str, now: f64) -> Result<bool> {
    let claimed = db.prepare("UPDATE invites SET used_at = ?2 WHERE code = ?1 AND used_at IS NULL").bind(&[code.into(), now.into()])?.run().await?;
    Ok(claimed.meta()?.and_then(|m| m.changes).unwrap_or(0) != 0)
}

/// Makes a claimed invite usable again (its registration failed).
pub fn release(db: &D1Database, code: &str) -> impl Future<Output = Result<()>> {
    run(db.prepare("UPDATE invites SET used_at = NULL WHERE code = ?1").bind(&[code.into()]))
}

/// Records which user a claimed invite registered.
pub fn record_user(db: &D1Database, code: &str, username: &str) -> impl Future<Output = Result<()>> {
    run(db.prepare("UPDATE invites SET used_by = (SELECT id FROM users WHERE username = ?1) WHERE code = ?2").bind(&[username.into(), code.into()]))
}

/// A new invite code.
pub fn create(db: &D1Database, code: &str, now: f64) -> impl Future<Output = Result<()>> {
    run(db.prepare("INSERT INTO invites (code, created_at) VALUES (?1, ?2)").bind(&[code.into(), now.into()]))
}
