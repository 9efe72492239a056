//! The torrent catalogue members browse (private mode): a searchable,
//! sortable, paged list and one torrent's details. Both read D1 only, by
//! index (`crate::listing`); swarm counts are the copies each swarm writes
//! to D1 when it publishes its scrape counters, so no page load wakes a
//! swarm or reads KV.

use serde::Deserialize;
use serde_json::{json, Value};
use worker::wasm_bindgen::JsValue;
use worker::*;

use super::{authenticate, bad, db, ok, origin, ApiError, ApiResult};
use crate::listing::{self, Bind, Sort};
use crate::metainfo;
use crate::peer::InfoHash;
use crate::query::QueryPairs;

/// Files listed on a torrent's page, at most (the count is always given).
const MAX_FILES: usize = 1000;

/// A list row; the detail query also fills the last three (one row type
/// keeps the wasm small: each type D1 decodes costs its own code).
#[derive(Deserialize)]
struct Row {
    info_hash: String,
    name: String,
    size: f64,
    freeleech: f64,
    created_at: f64,
    seeders: f64,
    leechers: f64,
    completed: f64,
    #[serde(default)]
    v2_hash: Option<String>,
    #[serde(default)]
    uploader: Option<String>,
    #[serde(default, with = "serde_bytes")]
    torrent: Vec<u8>,
}

impl Row {
    fn sort_value(&self, sort: Sort) -> u64 {
        (match sort {
            Sort::Added => self.created_at,
            Sort::Seeders => self.seeders,
            Sort::Leechers => self.leechers,
            Sort::Completed => self.completed,
            Sort::Size => self.size,
        }) as u64
    }

    fn json(&self, tracker: &str) -> Option<Value> {
        let hash = InfoHash::from_hex(&self.info_hash)?;
        Some(json!({
            "info_hash": self.info_hash,
            "name": self.name,
            "size": self.size as u64,
            "seeders": self.seeders as u64,
            "leechers": self.leechers as u64,
            "completed": self.completed as u64,
            "freeleech": self.freeleech != 0.0,
            "added": self.created_at as u64,
            "magnet": metainfo::magnet(&hash, &self.name, tracker),
        }))
    }
}

/// `GET /api/torrents?q=&sort=&order=&after=&limit=&mine=1`
pub(super) async fn list(req: &Request, env: &Env) -> ApiResult {
    let user = authenticate(req, env).await?;
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
    let (sql, binds) = listing::sql(&query);
    let values: Vec<JsValue> = binds
        .into_iter()
        .map(|b| match b {
            Bind::Text(s) => JsValue::from(s),
            Bind::Int(n) => JsValue::from(n as f64),
        })
        .collect();
    let mut rows: Vec<Row> = db(env)?.prepare(&sql).bind(&values)?.all().await?.results()?;
    let more = rows.len() > query.limit as usize;
    rows.truncate(query.limit as usize);
    let next = match rows.last() {
        Some(last) if more => Some(listing::cursor(last.sort_value(query.sort), &last.info_hash)),
        _ => None,
    };
    let tracker = format!("{}/announce/{}", origin(req)?, user.passkey);
    let list: Vec<Value> = rows.iter().filter_map(|r| r.json(&tracker)).collect();
    ok(200, json!({ "torrents": list, "next": next }))
}

/// `GET /api/torrents/<info_hash>`: the list's fields, the uploader and the files.
pub(super) async fn detail(req: &Request, env: &Env, hex: &str) -> ApiResult {
    let user = authenticate(req, env).await?;
    let hash = InfoHash::from_hex(hex).ok_or_else(|| bad(400, "expected /api/torrents/<40 hex info hash>"))?;
    let row: Option<Row> = db(env)?
        .prepare(&format!(
            "SELECT {}, t.v2_hash, u.username AS uploader, t.torrent FROM torrents t \
             LEFT JOIN users u ON u.id = t.uploader WHERE t.info_hash = ?1",
            listing::COLUMNS
        ))
        .bind(&[hash.to_hex().into()])?
        .first(None)
        .await?;
    let row = row.ok_or_else(|| bad(404, "no such torrent"))?;
    let tracker = format!("{}/announce/{}", origin(req)?, user.passkey);
    let mut out = row.json(&tracker).ok_or_else(|| bad(404, "no such torrent"))?;
    let (files, count) = metainfo::files(&row.torrent, MAX_FILES).unwrap_or_default();
    out["v2_hash"] = json!(row.v2_hash);
    out["uploader"] = json!(row.uploader);
    out["files"] = files.into_iter().map(|(path, size)| json!({ "path": path, "size": size })).collect();
    out["file_count"] = json!(count);
    ok(200, out)
}
