//! The torrent registry (private mode): upload, list, download. The
//! .torrent bytes live in R2 (`torrent_files`); the D1 row has the hashes,
//! name, size and flags.

use serde_json::json;
use worker::*;

use super::account::authenticate;
use super::http::{bad, db, now, ok, origin, read_body, ApiError, ApiResult};
use super::super::{d1, private};
use super::super::torrent_files::{self, D1_ROW_MAX};
use crate::config::TrackerConfig;
use crate::metainfo;
use crate::peer::InfoHash;

/// Largest .torrent accepted (big multi-file releases reach a few MiB;
/// the bytes live in R2, see `torrent_files`).
pub(super) const MAX_TORRENT_BYTES: usize = 10 * 1024 * 1024;

fn too_large(e: ApiError) -> ApiError {
    match e {
        ApiError(413, _) => ApiError(413, format!("torrent too large: at most {MAX_TORRENT_BYTES} bytes (10 MiB)")),
        e => e,
    }
}

pub(super) async fn upload(req: &mut Request, env: &Env, config: &TrackerConfig) -> ApiResult {
    let user = authenticate(req, env, config).await?;
    let body = read_body(req, MAX_TORRENT_BYTES).await.map_err(too_large)?;
    let meta = metainfo::inspect(&body).map_err(|e| ApiError(400, e.to_string()))?;
    if config.require_private_flag && !meta.private {
        return Err(bad(400, "torrent must be marked private (info.private = 1) so clients use only this tracker"));
    }
    let bucket = torrent_files::bucket(env);
    // With a bucket the row's blob stays empty: the bytes go to R2 below.
    let row_blob: &[u8] = match &bucket {
        Some(_) => &[],
        None if body.len() <= D1_ROW_MAX => &body,
        None => {
            return Err(ApiError(413, format!("torrents over {D1_ROW_MAX} bytes need the {} R2 bucket", torrent_files::R2_BINDING)))
        }
    };
    let db = db(env)?;
    match d1::torrents::insert(&db, &meta, user.id, row_blob, now()).await {
        Ok(_) => {}
        Err(e) if e.to_string().contains("UNIQUE") => return Err(bad(409, "torrent already registered")),
        Err(e) => return Err(e.into()),
    }
    // The row first, then the bytes: a duplicate upload never overwrites
    // a registered torrent's file. If the bytes cannot be stored, the row goes.
    if let Some(bucket) = bucket {
        if let Err(e) = torrent_files::put(&bucket, &meta.info_hash, body).await {
            d1::torrents::delete(&db, &meta.info_hash).await?;
            return Err(e.into());
        }
    }
    private::forget_unknown_torrent(&meta.info_hash);
    if let Some(v2) = &meta.v2_hash {
        private::forget_unknown_torrent(v2);
    }
    let tracker = format!("{}/announce/{}", origin(req)?, user.passkey);
    ok(
        201,
        json!({
            "info_hash": meta.info_hash.to_hex(),
            "v2_hash": meta.v2_hash.map(|h| h.to_hex()),
            "name": meta.name,
            "size": meta.size,
            "private": meta.private,
            "magnet": metainfo::magnet(&meta.info_hash, &meta.name, &tracker),
        }),
    )
}

/// The torrent (by either hash) with the member's announce URL and, unless
/// `KEEP_WEB_SEEDS`, without web seeds (`metainfo::for_member`).
pub(super) async fn download(req: &Request, env: &Env, config: &TrackerConfig, file: &str) -> ApiResult {
    let user = authenticate(req, env, config).await?;
    let hash = InfoHash::from_hex(file.trim_end_matches(".torrent")).ok_or_else(|| bad(400, "expected /api/torrents/<40 hex>.torrent"))?;
    let row = d1::torrents::file(&db(env)?, &hash).await?;
    let row = row.ok_or_else(|| bad(404, "no such torrent"))?;
    let v1 = InfoHash::from_hex(&row.info_hash).ok_or_else(|| bad(404, "no such torrent"))?;
    let stored = torrent_files::get(env, &v1, row.torrent).await?;
    let stored = stored.ok_or_else(|| bad(503, "the torrent file is not available right now, retry later"))?;
    let url = format!("{}/announce/{}", origin(req)?, user.passkey);
    let bytes = metainfo::for_member(&stored, &url, config.keep_web_seeds).map_err(|e| ApiError(500, e.to_string()))?;
    let mut resp = Response::from_bytes(bytes)?;
    let h = resp.headers_mut();
    h.set("content-type", "application/x-bittorrent")?;
    let safe: String = row.name.chars().filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ' ')).collect();
    h.set("content-disposition", &format!("attachment; filename=\"{safe}.torrent\""))?;
    h.set("cache-control", "no-store")?;
    Ok(resp)
}
