//! Members' API (private mode): register, sign in and out, who a request
//! is signed in as (`authenticate`), their account (passkey, password).
//! The torrent registry is in `torrents`, the catalogue in `catalog`.

use serde::Deserialize;
use serde_json::{json, Value};
use worker::*;

use super::http::{bad, db, no_content, now, ok, origin, read_json, ApiError, ApiResult};
use super::super::d1::{self, users::UserRow};
use super::super::private::{self, passkey_key, random};
use super::super::sessions::{self, SignIn, TokenLookup};
use super::super::KV_BINDING;
use crate::accounts::{self, ratio};
use crate::config::{TrackerConfig, TrackerMode};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Credentials {
    username: String,
    password: String,
    invite: Option<String>,
}

/// What the site's pages need to know before anyone signs in (both modes).
pub(super) fn site(config: &TrackerConfig) -> ApiResult {
    ok(200, json!({
        "mode": if config.mode == TrackerMode::Private { "private" } else { "public" },
        "invite_only": config.invite_only,
    }))
}

pub(super) fn bearer(req: &Request) -> Option<String> {
    let h = req.headers().get("authorization").ok()??;
    h.strip_prefix("Bearer ").map(|t| t.trim().to_string())
}

/// The user a bearer token, or the site's session cookie, belongs to
/// (`sessions::resolve_token`).
pub(super) async fn authenticate(req: &Request, env: &Env, config: &TrackerConfig) -> std::result::Result<UserRow, ApiError> {
    let token = bearer(req)
        .or_else(|| super::cookie::cookie_token(req))
        .ok_or_else(|| bad(401, "missing bearer token (or sign in on the site)"))?;
    // Boxed: this future is polled in one place instead of being copied
    // into every endpoint's state machine.
    let db = db(env)?;
    match Box::pin(sessions::resolve_token(&db, config, &token)).await? {
        TokenLookup::Valid(user) if user.banned != 0.0 => Err(bad(403, "account banned")),
        TokenLookup::Valid(user) => Ok(user),
        TokenLookup::Expired => Err(bad(401, "token expired: sign in again")),
        TokenLookup::Unknown => Err(bad(401, "invalid or expired token")),
    }
}

pub(super) async fn register(req: &mut Request, env: &Env, config: &TrackerConfig) -> ApiResult {
    let c: Credentials = read_json(req).await?;
    accounts::validate_username(&c.username).map_err(|m| bad(400, m))?;
    accounts::validate_password(&c.password).map_err(|m| bad(400, m))?;
    let db = db(env)?;
    if config.invite_only {
        let code = c.invite.as_deref().ok_or_else(|| bad(403, "registration needs an invite code"))?;
        // Claim the invite atomically: only one registration can use it.
        if !d1::invites::claim(&db, code, now()).await? {
            return Err(bad(403, "invalid or already used invite code"));
        }
    }
    let salt = random::<16>()?;
    let hash = accounts::hash_password(&c.password, &salt, config.password_rounds);
    let passkey = accounts::passkey_from(&random::<16>()?);
    if let Err(e) = d1::users::insert(&db, &c.username, hash, &passkey, now()).await {
        if let Some(code) = c.invite.as_deref().filter(|_| config.invite_only) {
            // The registration failed: the invite stays usable.
            d1::invites::release(&db, code).await?;
        }
        return Err(if e.to_string().contains("UNIQUE") { bad(409, "username already taken") } else { e.into() });
    }
    if let Some(code) = c.invite.as_deref().filter(|_| config.invite_only) {
        d1::invites::record_user(&db, code, &c.username).await?;
    }
    private::forget_unknown_passkey(&passkey);
    ok(201, json!({ "username": c.username, "passkey": passkey }))
}

pub(super) async fn login(req: &mut Request, env: &Env, config: &TrackerConfig) -> ApiResult {
    let (token, _) = sign_in_token(req, env, config).await?;
    ok(200, json!({ "token": token }))
}

/// Checks the credentials in the body and issues a token: (token, the
/// username as typed). `/api/login` hands the token to a script; the site's
/// `/api/session` puts it in a cookie (`cookie.rs`).
pub(super) async fn sign_in_token(req: &mut Request, env: &Env, config: &TrackerConfig) -> std::result::Result<(String, String), ApiError> {
    let c: Credentials = read_json(req).await?;
    match sessions::sign_in(&db(env)?, config, &c.username, &c.password).await? {
        SignIn::Token(token) => Ok((token, c.username)),
        SignIn::WrongCredentials => Err(bad(401, "wrong username or password")),
        SignIn::Banned => Err(bad(403, "account banned")),
    }
}

/// Revokes the token the request carries: 204.
pub(super) async fn logout(req: &Request, env: &Env, config: &TrackerConfig) -> ApiResult {
    authenticate(req, env, config).await?;
    // The bearer token, or the site's cookie session (whose cookie then
    // names a revoked token; `DELETE /api/session` also clears it).
    let token = bearer(req).or_else(|| super::cookie::cookie_token(req)).unwrap_or_default();
    sessions::revoke_token(&db(env)?, &token).await?;
    no_content()
}

/// `{"password": old, "new_password": new}`: sets the new password and
/// revokes every token of the user (this one too) in one D1 batch: 204.
pub(super) async fn change_password(req: &mut Request, env: &Env, config: &TrackerConfig) -> ApiResult {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Change {
        password: String,
        new_password: String,
    }
    let user = authenticate(req, env, config).await?;
    let c: Change = read_json(req).await?;
    accounts::validate_password(&c.new_password).map_err(|m| bad(400, m))?;
    let db = db(env)?;
    let stored = d1::users::password_hash(&db, user.id).await?.ok_or_else(|| bad(401, "invalid or expired token"))?;
    if !accounts::verify_password(&stored, &c.password) {
        return Err(bad(401, "wrong password"));
    }
    let hash = accounts::hash_password(&c.new_password, &random::<16>()?, config.password_rounds);
    d1::users::set_password(&db, user.id, hash).await?;
    no_content()
}

fn me_json(u: &UserRow, req: &Request, config: &TrackerConfig) -> Result<Value> {
    let (up, down) = (u.uploaded as u64, u.downloaded as u64);
    Ok(json!({
        "username": u.username,
        "uploaded": up,
        "downloaded": down,
        "ratio": ratio(up, down),
        "passkey": u.passkey,
        "announce_url": format!("{}/announce/{}", origin(req)?, u.passkey),
        "may_leech": config.ratio_rule().may_leech(up, down),
        "admin": u.is_admin != 0.0,
        "min_ratio": config.ratio_rule().min_ratio,
        "ratio_allowance": config.ratio_rule().allowance,
    }))
}

pub(super) async fn me(req: &Request, env: &Env, config: &TrackerConfig) -> ApiResult {
    let user = authenticate(req, env, config).await?;
    ok(200, me_json(&user, req, config)?)
}

pub(super) async fn reset_passkey(req: &Request, env: &Env, config: &TrackerConfig) -> ApiResult {
    let user = authenticate(req, env, config).await?;
    let passkey = accounts::passkey_from(&random::<16>()?);
    d1::users::set_passkey(&db(env)?, user.id, &passkey).await?;
    // The old passkey stops working now: its KV entry goes.
    let kv = env.kv(KV_BINDING)?;
    kv.delete(&passkey_key(&user.passkey)).await?;
    private::forget_passkey(&user.passkey);
    private::forget_unknown_passkey(&passkey);
    private::refresh_users(env, config, &[user.id as u64]).await?;
    ok(200, json!({ "passkey": passkey, "announce_url": format!("{}/announce/{}", origin(req)?, passkey) }))
}

