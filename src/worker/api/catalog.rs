//! The torrent catalogue members browse (private mode): a searchable,
//! sortable, paged list and one torrent's details. Both read D1 only, by
//! index (`crate::listing`); swarm counts are the copies each swarm writes
//! to D1 when it publishes its scrape counters, so no page load wakes a
//! swarm or reads KV.

use serde_json::{json, Value};
use worker::*;

use super::super::{d1, torrent_files};
use super::account::authenticate;
use super::http::{bad, db, ok, origin, ApiError, ApiResult};
use crate::config::TrackerConfig;
use crate::listing;
use crate::metainfo;
use crate::peer::InfoHash;
use crate::query::QueryPairs;

/// Files listed on a torrent's page, at most (the count is always given).
const MAX_FILES: usize = 1000;

/// A row's number (D1 integers come as JSON numbers).
fn num(row: &Value, key: &str) -> u64 {
    row[key].as_f64().unwrap_or(0.0) as u64
}

/// A list row as the API shows it.
fn row_json(row: &Value, tracker: &str) -> Option<Value> {
    let hex = row["info_hash"].as_str()?;
    let name = row["name"].as_str().unwrap_or_default();
    let hash = InfoHash::from_hex(hex)?;
    Some(json!({
        "info_hash": hex,
        "name": name,
        "size": num(row, "size"),
        "seeders": num(row, "seeders"),
        "leechers": num(row, "leechers"),
        "completed": num(row, "completed"),
        "freeleech": num(row, "freeleech") != 0,
        "added": num(row, "created_at"),
        "magnet": metainfo::magnet(&hash, name, tracker),
    }))
}

/// `GET /api/torrents?q=&sort=&order=&after=&limit=&mine=1`
pub(super) async fn list(req: &Request, env: &Env, config: &TrackerConfig) -> ApiResult {
    let user = authenticate(req, env, config).await?;
    // The tracker's own query splitter (already in the wasm); `+` from a
    // form is a word separator to the search like any other punctuation.
    let url = req.inner().url();
    let raw = url.split_once('?').map(|(_, q)| q).unwrap_or("");
    let pairs = QueryPairs::parse(raw.as_bytes()).map_err(|e| ApiError(400, e.to_string()))?;
    let text: Vec<(&str, &str)> =
        pairs.iter().filter_map(|(k, v)| Some((std::str::from_utf8(k).ok()?, std::str::from_utf8(v).ok()?))).collect();
    let mut query = listing::parse(text.iter().copied()).map_err(|e| ApiError(400, e))?;
    if text.contains(&("mine", "1")) {
        query.uploader = Some(user.id as u64);
    }
    let mut rows = d1::torrents::page(&db(env)?, &query).await?;
    let more = rows.len() > query.limit as usize;
    rows.truncate(query.limit as usize);
    let next = match rows.last() {
        Some(last) if more => last["info_hash"].as_str().map(|h| listing::cursor(num(last, query.sort.column()), h)),
        _ => None,
    };
    let tracker = format!("{}/announce/{}", origin(req)?, user.passkey);
    let list: Vec<Value> = rows.iter().filter_map(|r| row_json(r, &tracker)).collect();
    ok(200, json!({ "torrents": list, "next": next }))
}

/// `GET /api/torrents/<info_hash>` (either hash): the list's fields, the
/// uploader and the files.
pub(super) async fn detail(req: &Request, env: &Env, config: &TrackerConfig, hex: &str) -> ApiResult {
    let user = authenticate(req, env, config).await?;
    let hash = InfoHash::from_hex(hex).ok_or_else(|| bad(400, "expected /api/torrents/<40 hex info hash>"))?;
    let db = db(env)?;
    let row = d1::torrents::detail(&db, &hash).await?.ok_or_else(|| bad(404, "no such torrent"))?;
    let v1 = row["info_hash"].as_str().and_then(InfoHash::from_hex).ok_or_else(|| bad(404, "no such torrent"))?;
    // The bytes: the row's blob, or the R2 object (`torrent_files`).
    let blob = d1::torrents::blob(&db, &v1).await?;
    let stored = torrent_files::get(env, &v1, blob).await?.unwrap_or_default();
    let tracker = format!("{}/announce/{}", origin(req)?, user.passkey);
    let mut out = row_json(&row, &tracker).ok_or_else(|| bad(404, "no such torrent"))?;
    let (files, count) = metainfo::files(&stored, MAX_FILES).unwrap_or_default();
    out["v2_hash"] = row["v2_hash"].clone();
    out["uploader"] = row["uploader"].clone();
    out["files"] = files.into_iter().map(|(path, size)| json!({ "path": path, "size": size })).collect();
    out["file_count"] = json!(count);
    ok(200, out)
}
