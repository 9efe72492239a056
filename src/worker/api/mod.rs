//! The JSON API's routes; the handlers live by audience:
//! - `account`: members (private mode): register, sign in and out, their
//!   account; `cookie`: the site's cookie sessions;
//! - `torrents` (upload, download) and `catalog` (list, details): the registry;
//! - `admin`: client bans and blocked torrents in both modes; users,
//!   invites, torrents and flags in private mode;
//! - `http`: JSON in and out. Every error is `{"error": "..."}` with a 4xx
//!   status that says why.

mod account;
mod admin;
mod catalog;
mod cookie;
mod http;
mod torrents;

use serde_json::json;
use worker::*;

use crate::config::{TrackerConfig, TrackerMode};
use http::{bad, ApiError};
pub use http::error;

/// The largest body a request to `path` may carry: a torrent file for an
/// upload, a JSON object for any other (no other route reads a body).
pub fn body_limit(path: &str) -> usize {
    if path == "/api/torrents" {
        torrents::MAX_TORRENT_BYTES
    } else {
        http::MAX_JSON_BYTES
    }
}

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
        ("GET", ["site"]) => account::site(config),
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
