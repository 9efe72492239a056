//! The site's cookie sessions (private mode). A session is an API token row
//! (`tokens`, the same kind `POST /api/login` issues) whose token lives in
//! an HttpOnly cookie instead of a script: the site's pages never see it.
//!
//! - `POST /api/session` `{"username","password"}` signs in and sets the cookie;
//! - `DELETE /api/session` signs out: deletes the token row, clears the cookie;
//! - `POST /api/me/password` `{"password","new_password"}` changes the password
//!   and ends every other session of the member.
//!
//! Every POST or DELETE passes the Origin rule (`crate::session`) first.

use serde::Deserialize;
use serde_json::json;
use worker::*;

use super::{account, authenticate, bad, db, ok, read_json, ApiError, ApiResult};
use super::super::private::random;
use crate::accounts;
use crate::config::TrackerConfig;
use crate::session::{self, OriginRefusal};

/// The session token in the request's cookie, if any.
pub(super) fn cookie_token(req: &Request) -> Option<String> {
    let header = req.headers().get("cookie").ok()??;
    session::token_in(&header).map(str::to_string)
}

/// The Origin rule for a state-changing request (any method but GET/HEAD).
pub(super) fn check_origin(req: &Request) -> std::result::Result<(), ApiError> {
    let origin = req.headers().get("origin").ok().flatten();
    let has_cookie = cookie_token(req).is_some() && super::bearer(req).is_none();
    session::check_origin(origin.as_deref(), &req.inner().url(), has_cookie).map_err(|refusal| match refusal {
        OriginRefusal::Foreign => bad(403, "cross-origin request refused: use this tracker's own pages"),
        OriginRefusal::Missing => bad(403, "request refused: a signed-in browser request must carry its Origin"),
    })
}

pub(super) async fn sign_in(req: &mut Request, env: &Env, config: &TrackerConfig) -> ApiResult {
    let (token, username) = account::issue_token(req, env, config).await?;
    let mut resp = ok(200, json!({ "username": username }))?;
    resp.headers_mut().set("set-cookie", &session::set_cookie(&token))?;
    Ok(resp)
}

pub(super) async fn sign_out(req: &Request, env: &Env) -> ApiResult {
    if let Some(token) = cookie_token(req) {
        db(env)?
            .prepare("DELETE FROM tokens WHERE token_hash = ?1")
            .bind(&[accounts::token_hash(&token).into()])?
            .run()
            .await?;
    }
    let mut resp = ok(200, json!({ "signed_out": true }))?;
    resp.headers_mut().set("set-cookie", &session::clear_cookie())?;
    Ok(resp)
}

pub(super) async fn change_password(req: &mut Request, env: &Env, config: &TrackerConfig) -> ApiResult {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Change {
        password: String,
        new_password: String,
    }
    let user = authenticate(req, env).await?;
    let c: Change = read_json(req).await?;
    accounts::validate_password(&c.new_password).map_err(|m| bad(400, m))?;
    account::check_password(env, config, &user.username, &c.password).await.map_err(|e| match e {
        ApiError(401, _) => bad(403, "the current password is wrong"),
        e => e,
    })?;
    let hash = accounts::hash_password(&c.new_password, &random::<16>()?, config.password_rounds);
    let current = super::bearer(req).or_else(|| cookie_token(req)).unwrap_or_default();
    let db = db(env)?;
    // Every other session ends first (this one goes on): should the update
    // then fail, the member is only signed out elsewhere.
    db.prepare("DELETE FROM tokens WHERE user_id = ?1 AND token_hash != ?2")
        .bind(&[user.id.into(), accounts::token_hash(&current).into()])?
        .run()
        .await?;
    db.prepare("UPDATE users SET password_hash = ?1 WHERE id = ?2").bind(&[hash.into(), user.id.into()])?.run().await?;
    ok(200, json!({ "password_changed": true }))
}

/// Whether the request is signed in by a member with the admin role, by
/// cookie or by that member's own bearer token. `None` when it is not
/// signed in at all (the caller then asks for the ADMIN_TOKEN).
pub(super) async fn admin_member(req: &Request, env: &Env) -> std::result::Result<Option<String>, ApiError> {
    if cookie_token(req).is_none() && super::bearer(req).is_none() {
        return Ok(None);
    }
    let Ok(user) = authenticate(req, env).await else { return Ok(None) };
    if user.is_admin == 0.0 {
        return Err(bad(403, "admin members only"));
    }
    Ok(Some(user.username))
}
