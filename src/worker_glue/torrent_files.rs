//! Where uploaded .torrent bytes live. D1 caps a row at 2 MB and a large
//! multi-file release's .torrent is bigger, so the bytes go to the R2
//! bucket `TORRENT_FILES` (key `torrents/<v1 hex>.torrent`) and the D1 row
//! keeps an empty `torrent` blob. Torrents uploaded before the bucket
//! existed keep their bytes in the row and are served from there. Without
//! the binding, torrents that fit a row (up to `D1_ROW_MAX`) still go to D1.

use worker::*;

use crate::peer::InfoHash;

pub const R2_BINDING: &str = "TORRENT_FILES";
/// Largest torrent stored in its D1 row when no bucket is bound (D1's row
/// limit is 2,000,000 bytes, and the row holds the name too).
pub const D1_ROW_MAX: usize = 1_900_000;

fn object_key(info_hash: &InfoHash) -> String {
    format!("torrents/{}.torrent", info_hash.to_hex())
}

/// The bucket, if bound.
pub fn bucket(env: &Env) -> Option<Bucket> {
    env.bucket(R2_BINDING).ok()
}

/// Stores a registered torrent's bytes in the bucket.
pub async fn put(bucket: &Bucket, info_hash: &InfoHash, bytes: Vec<u8>) -> Result<()> {
    bucket.put(object_key(info_hash), bytes).execute().await?;
    Ok(())
}

/// A torrent's bytes: the D1 row's blob, or (when it is empty) the bucket's
/// object. `Ok(None)` if neither has them.
pub async fn get(env: &Env, info_hash: &InfoHash, row_blob: Vec<u8>) -> Result<Option<Vec<u8>>> {
    if !row_blob.is_empty() {
        return Ok(Some(row_blob));
    }
    let Some(bucket) = bucket(env) else { return Ok(None) };
    let Some(object) = bucket.get(object_key(info_hash)).execute().await? else { return Ok(None) };
    match object.body() {
        Some(body) => Ok(Some(body.bytes().await?)),
        None => Ok(None),
    }
}

/// Deletes a torrent's object, if there is a bucket (deleting a missing
/// object is no error).
pub async fn delete(env: &Env, info_hash: &InfoHash) -> Result<()> {
    match bucket(env) {
        Some(bucket) => bucket.delete(object_key(info_hash)).await,
        None => Ok(()),
    }
}
