//! The `torrents` table: the registry (hashes, name, size, freeleech, the
//! .torrent bytes when there is no R2 bucket, the swarm counters mirrored
//! at publish) and the catalogue's pages.

use std::future::Future;

use serde::Deserialize;
use worker::wasm_bindgen::JsValue;
use worker::*;

use super::{all, first, run, Json};
use crate::listing::{self, Bind, ListQuery};
use crate::metainfo::Metainfo;
use crate::peer::InfoHash;
use crate::swarm::SwarmCounters;

/// What a download needs: the v1 hash, the bytes kept in the row (empty
/// when they are in R2) and the name.
#[derive(Deserialize)]
pub struct TorrentFile {
    pub info_hash: String,
    #[serde(with = "serde_bytes")]
    pub torrent: Vec<u8>,
    pub name: String,
}

/// Registers an uploaded torrent. An already registered hash fails with
/// D1's `UNIQUE constraint failed`.
pub fn insert(db: &D1Database, meta: &Metainfo, uploader: f64, blob: &[u8], now: f64) -> impl Future<Output = Result<()>> {
    run(db.prepare(
        "INSERT INTO torrents (info_hash, v2_hash, name, size, uploader, freeleech, torrent, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, 0, ?6, ?7)",
    )
    .bind(&[
        meta.info_hash.to_hex().into(),
        meta.v2_hash.map(|h| JsValue::from(h.to_hex())).unwrap_or(JsValue::NULL),
        meta.name.as_str().into(),
        (meta.size as f64).into(),
        uploader.into(),
        js_sys::Uint8Array::from(blob).into(),
        now.into(),
    ]))
}

/// Unregisters the torrent whose v1 hash is `v1`.
pub fn delete(db: &D1Database, v1: &InfoHash) -> impl Future<Output = Result<()>> {
    run(db.prepare("DELETE FROM torrents WHERE info_hash = ?1").bind(&[v1.to_hex().into()]))
}

/// Whether the torrent registered under `hash` (v1 or truncated v2) is
/// freeleech; `None`: not registered.
pub async fn freeleech_of(db: &D1Database, hash: &InfoHash) -> Result<Option<bool>> {
    #[derive(Deserialize)]
    struct Row {
        freeleech: f64,
    }
    let row: Option<Row> = first(db.prepare("SELECT freeleech FROM torrents WHERE info_hash = ?1 OR v2_hash = ?1").bind(&[hash.to_hex().into()])).await?;
    Ok(row.map(|r| r.freeleech != 0.0))
}

/// The hashes of the torrent registered under `hash` (either): `Some((v1,
/// v2))`, each `None` if the row's text is not a hash; `None`: not registered.
pub async fn hashes(db: &D1Database, hash: &InfoHash) -> Result<Option<(Option<InfoHash>, Option<InfoHash>)>> {
    let row: Option<Json> = first(db.prepare("SELECT info_hash, v2_hash FROM torrents WHERE info_hash = ?1 OR v2_hash = ?1").bind(&[hash.to_hex().into()])).await?;
    Ok(row.map(|r| (r["info_hash"].as_str().and_then(InfoHash::from_hex), r["v2_hash"].as_str().and_then(InfoHash::from_hex))))
}

pub fn set_freeleech(db: &D1Database, v1: &InfoHash, freeleech: bool) -> impl Future<Output = Result<()>> {
    run(db.prepare("UPDATE torrents SET freeleech = ?1 WHERE info_hash = ?2").bind(&[(freeleech as i32).into(), v1.to_hex().into()]))
}

/// Copies a swarm's published counters into its row (`private::mirror_counts`).
pub fn set_counts(db: &D1Database, hash: &InfoHash, c: SwarmCounters) -> impl Future<Output = Result<()>> {
    run(db
        .prepare("UPDATE torrents SET seeders = ?1, leechers = ?2, completed = ?3 WHERE info_hash = ?4")
        .bind(&[(c.complete as f64).into(), (c.incomplete as f64).into(), (c.downloaded as f64).into(), hash.to_hex().into()]))
}

/// The torrent registered under `hash` (either), for a download.
pub fn file(db: &D1Database, hash: &InfoHash) -> impl Future<Output = Result<Option<TorrentFile>>> {
    first(db.prepare("SELECT info_hash, torrent, name FROM torrents WHERE info_hash = ?1 OR v2_hash = ?1").bind(&[hash.to_hex().into()]))
}

/// The bytes kept in the row of v1 hash `v1` (empty when they are in R2).
pub async fn blob(db: &D1Database, v1: &InfoHash) -> Result<Vec<u8>> {
    #[derive(Deserialize)]
    struct Blob {
        #[serde(with = "serde_bytes")]
        torrent: Vec<u8>,
    }
    let blob: Option<Blob> = first(db.prepare("SELECT torrent FROM torrents WHERE info_hash = ?1").bind(&[v1.to_hex().into()])).await?;
    Ok(blob.map(|b| b.torrent).unwrap_or_default())
}

/// One catalogue page (`listing::sql`: up to `limit + 1` rows, the last
/// one saying there are more) as JSON rows keyed by column.
pub fn page(db: &D1Database, query: &ListQuery) -> impl Future<Output = Result<Vec<Json>>> {
    let (sql, binds) = listing::sql(query);
    let values: Vec<JsValue> = binds
        .into_iter()
        .map(|b| match b {
            Bind::Text(s) => JsValue::from(s),
            Bind::Int(n) => JsValue::from(n as f64),
        })
        .collect();
    all(db.prepare(&sql).bind(&values))
}

/// A torrent's page (`listing::COLUMNS`, `v2_hash` and the uploader's
/// name) by either hash.
pub fn detail(db: &D1Database, hash: &InfoHash) -> impl Future<Output = Result<Option<Json>>> {
    let key = [JsValue::from(hash.to_hex())];
    first(db
        .prepare(format!(
            "SELECT {}, t.v2_hash, u.username AS uploader FROM torrents t \
             LEFT JOIN users u ON u.id = t.uploader WHERE t.info_hash = ?1 OR t.v2_hash = ?1",
            listing::COLUMNS
        ))
        .bind(&key))
}
