//! The API's HTTP plumbing: JSON bodies in (bounded), JSON answers and
//! `{"error": "..."}` with a 4xx out, and what every handler needs (the
//! database, the time, the tracker's origin).

use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::{json, Value};
use worker::*;

use super::super::{d1, raw_origin};

/// Largest JSON body accepted.
pub(super) const MAX_JSON_BYTES: usize = 16 * 1024;

/// `{"error": message}` with `status`.
pub fn error(status: u16, message: &str) -> Result<Response> {
    json_response(status, &json!({ "error": message }))
}

/// An API failure: status and message.
pub struct ApiError(pub u16, pub String);

pub type ApiResult = std::result::Result<Response, ApiError>;

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        super::super::log::error("api_error", json!({ "error": e.to_string() }));
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

pub(super) fn bad(status: u16, msg: &str) -> ApiError {
    ApiError(status, msg.to_string())
}

pub(super) fn json_response(status: u16, v: &Value) -> Result<Response> {
    let mut r = Response::from_json(v)?.with_status(status);
    r.headers_mut().set("cache-control", "no-store")?;
    Ok(r)
}

pub(super) fn ok(status: u16, v: Value) -> ApiResult {
    Ok(json_response(status, &v)?)
}

/// A JSON object body, declared as `application/json` (a form or text post
/// from another site cannot pass for an API call).
pub(super) async fn read_json<T: for<'de> Deserialize<'de>>(req: &mut Request) -> std::result::Result<T, ApiError> {
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
pub(super) async fn read_body(req: &mut Request, max: usize) -> std::result::Result<Vec<u8>, ApiError> {
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

pub(super) fn db(env: &Env) -> std::result::Result<D1Database, ApiError> {
    Ok(d1::open(env)?)
}

pub(super) fn now() -> f64 {
    (Date::now().as_millis() / 1000) as f64
}

pub(super) fn origin(req: &Request) -> Result<String> {
    Ok(raw_origin(&req.inner().url()).to_string())
}

/// 204 No Content (logout, password change).
pub(super) fn no_content() -> ApiResult {
    let mut r = Response::empty()?.with_status(204);
    r.headers_mut().set("cache-control", "no-store")?;
    Ok(r)
}
