//! The site's cookie sessions (private mode). A cookie session is a token
//! of `sessions` (the same rows, TOKEN_TTL and revocation as `/api/login`'s)
//! kept in an HttpOnly cookie instead of a script: the pages never see it.
//! Wherever the API takes a bearer token it takes the cookie too
//! (`authenticate`).
//!
//! - `POST /api/session` `{"username","password"}` signs in and sets the cookie;
//! - `DELETE /api/session` signs out: revokes the token, clears the cookie.
//!
//! Every POST or DELETE passes the Origin rule (`crate::session`) first.

use serde_json::json;
use worker::*;

use super::super::sessions;
use super::account::{self, authenticate, bearer};
use super::http::{bad, db, ok, ApiError, ApiResult};
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
    let has_cookie = cookie_token(req).is_some() && bearer(req).is_none();
    session::check_origin(origin.as_deref(), &req.inner().url(), has_cookie).map_err(|refusal| match refusal {
        OriginRefusal::Foreign => bad(403, "cross-origin request refused: use this tracker's own pages"),
        OriginRefusal::Missing => bad(403, "request refused: a signed-in browser request must carry its Origin"),
    })
}

pub(super) async fn sign_in(req: &mut Request, env: &Env, config: &TrackerConfig) -> ApiResult {
    let (token, username) = account::sign_in_token(req, env, config).await?;
    let mut resp = ok(200, json!({ "username": username }))?;
    resp.headers_mut().set("set-cookie", &session::set_cookie(&token))?;
    Ok(resp)
}

pub(super) async fn sign_out(req: &Request, env: &Env) -> ApiResult {
    if let Some(token) = cookie_token(req) {
        sessions::revoke_token(&db(env)?, &token).await?;
    }
    let mut resp = ok(200, json!({ "signed_out": true }))?;
    resp.headers_mut().set("set-cookie", &session::clear_cookie())?;
    Ok(resp)
}

/// Whether the request is signed in (cookie, or the member's own bearer
/// token) by a member with the admin role. Anyone else, members without
/// the role included, gets the admin API's own answer (401: admin token
/// required), as before there were admin members.
pub(super) async fn admin_member(req: &Request, env: &Env, config: &TrackerConfig) -> bool {
    if cookie_token(req).is_none() && bearer(req).is_none() {
        return false;
    }
    matches!(authenticate(req, env, config).await, Ok(user) if user.is_admin != 0.0)
}
