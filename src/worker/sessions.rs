//! Sign-in sessions: API tokens issued at login, resolved to their user,
//! revoked one at a time (logout) or all at once (password change, ban).
//! `sign_in` checks a username and password and issues a token.
//! Only the SHA-256 of a token is stored (`tokens` table). The JSON API
//! sends tokens as `Authorization: Bearer`; a cookie session layer can use
//! the same functions with the cookie's value as the token.
//!
//! A token is valid for `TOKEN_TTL` seconds from its creation. An expired
//! token is refused and its row deleted when presented; a user's other
//! expired tokens are deleted at their next sign-in, so the table stays
//! bounded by the sign-ins of the last `TOKEN_TTL` seconds.

use serde::Deserialize;
use worker::*;

use super::private::d1_row;
use crate::accounts;
use crate::config::TrackerConfig;

/// A user as the API shows them (also the admin user list's rows).
#[derive(Deserialize)]
pub struct UserRow {
    pub id: f64,
    pub username: String,
    pub passkey: String,
    pub uploaded: f64,
    pub downloaded: f64,
    pub banned: f64,
    /// A member with the admin role may use the admin API (migration 0004).
    #[serde(default)]
    pub is_admin: f64,
}

/// What a token string stands for.
pub enum TokenLookup {
    /// A live token and its user (who may be banned: the caller decides).
    Valid(UserRow),
    /// The token existed but is older than `TOKEN_TTL`; it is deleted now.
    Expired,
    /// No such token (never issued, revoked, or malformed).
    Unknown,
}

/// Longest token string looked up (issued tokens are 64 hex digits).
const MAX_TOKEN_LEN: usize = 128;

fn now() -> f64 {
    (Date::now().as_millis() / 1000) as f64
}

/// The user `token` belongs to, if it is live.
pub async fn resolve_token(db: &D1Database, config: &TrackerConfig, token: &str) -> Result<TokenLookup> {
    if token.is_empty() || token.len() > MAX_TOKEN_LEN {
        return Ok(TokenLookup::Unknown);
    }
    let hash = accounts::token_hash(token);
    let row = d1_row(
        db.prepare(
            "SELECT t.created_at, u.id, u.username, u.passkey, u.uploaded, u.downloaded, u.banned, u.is_admin FROM tokens t \
             JOIN users u ON u.id = t.user_id WHERE t.token_hash = ?1",
        )
        .bind(&[hash.as_str().into()])?,
    )
    .await?;
    let Some(row) = row else { return Ok(TokenLookup::Unknown) };
    let created_at = row["created_at"].as_f64().unwrap_or(0.0);
    if accounts::token_expired(created_at as u64, now() as u64, config.token_ttl) {
        db.prepare("DELETE FROM tokens WHERE token_hash = ?1").bind(&[hash.into()])?.run().await?;
        return Ok(TokenLookup::Expired);
    }
    let num = |k: &str| row[k].as_f64().unwrap_or(0.0);
    let text = |k: &str| row[k].as_str().unwrap_or_default().to_string();
    Ok(TokenLookup::Valid(UserRow {
        id: num("id"),
        username: text("username"),
        passkey: text("passkey"),
        uploaded: num("uploaded"),
        downloaded: num("downloaded"),
        banned: num("banned"),
        is_admin: num("is_admin"),
    }))
}

/// What a sign-in with a username and password gives.
pub enum SignIn {
    /// A new token (`issue_token`).
    Token(String),
    /// No such user, or the wrong password (the same answer, the same work).
    WrongCredentials,
    Banned,
}

/// Checks a username and password and, if they match an account that is
/// not banned, issues a token.
pub async fn sign_in(db: &D1Database, config: &TrackerConfig, username: &str, password: &str) -> Result<SignIn> {
    #[derive(Deserialize)]
    struct Row {
        id: f64,
        password_hash: String,
        banned: f64,
    }
    let row: Option<Row> = db
        .prepare("SELECT id, password_hash, banned FROM users WHERE username = ?1")
        .bind(&[username.into()])?
        .first(None)
        .await?;
    // Unknown users cost the same work as known ones (hashed with the configured rounds).
    let dummy = accounts::dummy_hash(config.password_rounds);
    let stored = row.as_ref().map(|r| r.password_hash.as_str()).unwrap_or(&dummy);
    let matches = accounts::verify_password(stored, password);
    match row {
        Some(user) if matches && user.banned != 0.0 => Ok(SignIn::Banned),
        Some(user) if matches => Ok(SignIn::Token(issue_token(db, config, user.id).await?)),
        _ => Ok(SignIn::WrongCredentials),
    }
}

/// A new token for `user_id` (sign-in). The user's expired tokens are
/// deleted in the same batch.
pub async fn issue_token(db: &D1Database, config: &TrackerConfig, user_id: f64) -> Result<String> {
    let token = accounts::token_from(&super::private::random::<32>()?);
    let now = now();
    let oldest_live = now - config.token_ttl as f64;
    db.batch(vec![
        db.prepare("DELETE FROM tokens WHERE user_id = ?1 AND created_at <= ?2").bind(&[user_id.into(), oldest_live.into()])?,
        db.prepare("INSERT INTO tokens (token_hash, user_id, created_at) VALUES (?1, ?2, ?3)")
            .bind(&[accounts::token_hash(&token).into(), user_id.into(), now.into()])?,
    ])
    .await?;
    Ok(token)
}

/// Revokes one token (logout). Revoking an unknown token does nothing.
pub async fn revoke_token(db: &D1Database, token: &str) -> Result<()> {
    db.prepare("DELETE FROM tokens WHERE token_hash = ?1").bind(&[accounts::token_hash(token).into()])?.run().await?;
    Ok(())
}

/// The statement that revokes every token of a user, to run alone or in a
/// batch with the change that requires it (a new password, a ban).
pub fn revoke_all_statement(db: &D1Database, user_id: f64) -> Result<D1PreparedStatement> {
    db.prepare("DELETE FROM tokens WHERE user_id = ?1").bind(&[user_id.into()])
}
