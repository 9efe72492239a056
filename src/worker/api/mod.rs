//! The JSON API: accounts and torrents (private mode, `account`), and the
//! admin API (`admin`: client bans and blocked torrents in both modes;
//! users, invites and torrents in private mode). Every error is
//! `{"error": "..."}` with a 4xx status that says why.

mod account;
mod admin;
mod catalog;
mod cookie;
mod torrents;

use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::{json, Value};
use worker::*;

use super::d1::{self, users::UserRow};
use super::sessions::{self, TokenLookup};
use crate::config::{TrackerConfig, TrackerMode};

/// Largest .torrent accepted (big multi-file releases reach a few MiB;
/// the bytes live in R2, see `torrent_files`).
pub const MAX_TORRENT_BYTES: usize = 10 * 1024 * 1024;
/// Largest JSON body accepted.
pub const MAX_JSON_BYTES: usize = 16 * 1024;
/// Most client-ban prefixes kept (one KV value every isolate reads and caches).
pub const MAX_CLIENT_BANS: usize = 1000;
/// Largest admin adjustment, either sign: totals stay exact as f64 in D1.
pub const MAX_ADJUST: i64 = (1 << 53) - 1;

pub async fn handle(mut req: Request, env: &Env, config: &TrackerConfig) -> Result<Response> {
    let path = super::request_path(&req);
    // The raw method: `Request::method()` reads any method it does not know as GET.
    let method = req.inner().method();
    let segments: Vec<&str> = path.trim_start_matches("/api/").split('/').collect();
    let admin_action = segments.first() == Some(&"admin") && method.as_str() != "GET";
    let method_name = method.as_str().to_string();
    // A state-changing request from another site is refused before anything else.
    let refused = match method.as_str() {
        "GET" | "HEAD" => Ok(()),
        _ => cookie::check_origin(&req),
    };
    let result = match (method.as_str(), segments.as_slice()) {
        _ if refused.is_err() => Err(refused.err().unwrap_or(ApiError(403, String::new()))),
        (m @ ("GET" | "POST" | "DELETE"), ["admin", rest @ ..]) => admin::admin(&mut req, env, config, m, rest).await,
        // What the site's pages need to know before anyone signs in.
        ("GET", ["site"]) => ok(200, json!({
            "mode": if config.mode == TrackerMode::Private { "private" } else { "public" },
            "invite_only": config.invite_only,
        })),
        _ if config.mode != TrackerMode::Private => {
            Err(bad(404, "the account API exists in private mode only (TRACKER_MODE=private)"))
        }
        ("POST", ["users"]) => account::register(&mut req, env, config).await,
        ("POST", ["login"]) => account::login(&mut req, env, config).await,
        ("POST", ["logout"]) => account::logout(&req, env, config).await,
        ("POST", ["session"]) => Box::pin(cookie::sign_in(&mut req, env, config)).await,
        ("DELETE", ["session"]) => Box::pin(cookie::sign_out(&req, env)).await,
        ("GET", ["me"]) => account::me(&req, env, config).await,
        ("POST", ["me", "passkey"]) => account::reset_passkey(&req, env, config).await,
        ("POST", ["me", "password"]) => account::change_password(&mut req, env, config).await,
        ("POST", ["torrents"]) => torrents::upload(&mut req, env, config).await,
        ("GET", ["torrents"]) => Box::pin(catalog::list(&req, env, config)).await,
        ("GET", ["torrents", file]) if file.ends_with(".torrent") => torrents::download(&req, env, config, file).await,
        ("GET", ["torrents", hash]) => Box::pin(catalog::detail(&req, env, config, hash)).await,
        _ => Err(ApiError(404, "no such API endpoint".into())),
    };
    if admin_action {
        let status = match &result {
            Ok(resp) => resp.status_code(),
            Err(ApiError(status, _)) => *status,
        };
        super::log::info(
            "admin_action",
            json!({ "method": method_name, "path": crate::logging::loggable_path(&path), "status": status }),
        );
    }
    match result {
        Ok(resp) => Ok(resp),
        Err(ApiError(status, message)) => error(status, &message),
    }
}

/// `{"error": message}` with `status`.
pub fn error(status: u16, message: &str) -> Result<Response> {
    json_response(status, &json!({ "error": message }))
}

/// An API failure: status and message.
pub struct ApiError(u16, String);

type ApiResult = std::result::Result<Response, ApiError>;

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        super::log::error("api_error", json!({ "error": e.to_string() }));
        ApiError(503, "service temporarily unavailable, retry later".into())
    }
}

impl From<kv::KvError> for ApiError {
    fn from(e: kv::KvError) -> Self {
        Error::from(e).into()
    }
}

impl From<serde_json::Error> for ApiError {
    fn from(_: serde_json::Error) -> Self {
        ApiError(400, "malformed JSON body".into())
    }
}

fn bad(status: u16, msg: &str) -> ApiError {
    ApiError(status, msg.to_string())
}

fn json_response(status: u16, v: &Value) -> Result<Response> {
    let mut r = Response::from_json(v)?.with_status(status);
    r.headers_mut().set("cache-control", "no-store")?;
    Ok(r)
}

fn ok(status: u16, v: Value) -> ApiResult {
    Ok(json_response(status, &v)?)
}

/// A JSON object body, declared as `application/json` (a form or text post
/// from another site cannot pass for an API call).
async fn read_json<T: for<'de> Deserialize<'de>>(req: &mut Request) -> std::result::Result<T, ApiError> {
    let declared = req.headers().get("content-type")?.unwrap_or_default();
    let essence = declared.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    if essence != "application/json" {
        return Err(bad(400, "expected a JSON body with content-type: application/json"));
    }
    let body = read_body(req, MAX_JSON_BYTES).await?;
    // An object only: serde would also fill a struct from an array.
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(bad(400, "expected a JSON object"));
    }
    Ok(serde_json::from_slice(&body)?)
}

/// The body, at most `max` bytes: read chunk by chunk and abandoned as soon
/// as it is too large, whatever `content-length` says (or if it is absent).
async fn read_body(req: &mut Request, max: usize) -> std::result::Result<Vec<u8>, ApiError> {
    let too_large = || ApiError(413, format!("body too large (max {max} bytes)"));
    if let Some(len) = req.headers().get("content-length")?.and_then(|l| l.parse::<usize>().ok()) {
        if len > max {
            return Err(too_large());
        }
    }
    if req.inner().body().is_none() {
        return Ok(Vec::new());
    }
    let mut stream = req.stream()?;
    let mut body = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        if body.len() + chunk.len() > max {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn db(env: &Env) -> std::result::Result<D1Database, ApiError> {
    Ok(d1::open(env)?)
}

fn now() -> f64 {
    (Date::now().as_millis() / 1000) as f64
}

fn origin(req: &Request) -> Result<String> {
    Ok(super::raw_origin(&req.inner().url()).to_string())
}

fn bearer(req: &Request) -> Option<String> {
    let h = req.headers().get("authorization").ok()??;
    h.strip_prefix("Bearer ").map(|t| t.trim().to_string())
}

/// The user a bearer token, or the site's session cookie, belongs to
/// (`sessions::resolve_token`).
async fn authenticate(req: &Request, env: &Env, config: &TrackerConfig) -> std::result::Result<UserRow, ApiError> {
    let token = bearer(req)
        .or_else(|| cookie::cookie_token(req))
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

/// 204 No Content (logout, password change).
fn no_content() -> ApiResult {
    let mut r = Response::empty()?.with_status(204);
    r.headers_mut().set("cache-control", "no-store")?;
    Ok(r)
}
