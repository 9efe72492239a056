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

use worker::*;

use super::d1::{self, users::UserRow};
use crate::accounts;
use crate::config::TrackerConfig;

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
    let Some((created_at, user)) = d1::tokens::user_of(db, &hash).await? else { return Ok(TokenLookup::Unknown) };
    if accounts::token_expired(created_at as u64, now() as u64, config.token_ttl) {
        d1::tokens::delete(db, &hash).await?;
        return Ok(TokenLookup::Expired);
    }
    Ok(TokenLookup::Valid(user))
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
    let row = d1::users::credentials(db, username).await?;
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
    d1::tokens::issue(db, user_id, accounts::token_hash(&token), now, oldest_live).await?;
    Ok(token)
}

/// Revokes one token (logout). Revoking an unknown token does nothing.
pub async fn revoke_token(db: &D1Database, token: &str) -> Result<()> {
    d1::tokens::delete(db, &accounts::token_hash(token)).await
}
