//! Where uploaded .torrent bytes live. D1 caps a row at 2 MB and a large
//! multi-file release's .torrent is bigger, so the bytes go to the R2
//! bucket `TORRENT_FILES` (key `torrents/<v1 hex>.torrent`) and the D1 row
//! keeps an empty `torrent` blob. Torrents uploaded before the bucket
//! existed keep their bytes in the row and are served from there. Without
//! the binding, torrents that fit a row (up to `D1_ROW_MAX`) still go to D1.

use worker::js_sys::{ArrayBuffer, Function, Promise, Reflect, Uint8Array};
use worker::wasm_bindgen::{JsCast, JsValue};
use worker::wasm_bindgen_futures::JsFuture;
use worker::{Env, Result};

use crate::peer::InfoHash;

pub const R2_BINDING: &str = "TORRENT_FILES";
/// Largest torrent stored in its D1 row when no bucket is bound (D1's row
/// limit is 2,000,000 bytes, and the row holds the name too).
pub const D1_ROW_MAX: usize = 1_900_000;

fn object_key(info_hash: &InfoHash) -> JsValue {
    JsValue::from(format!("torrents/{}.torrent", info_hash.to_hex()))
}

/// The R2 bucket binding, called directly: worker's `Bucket` wrapper
/// brings option builders (ranges, conditions, HTTP metadata) this needs
/// none of, and ~10 KB of wasm with them.
pub struct Bucket(JsValue);

impl Bucket {
    async fn call(&self, target: &JsValue, method: &str, args: &[&JsValue]) -> Result<JsValue> {
        let f: Function = Reflect::get(target, &JsValue::from_str(method))?.dyn_into()?;
        let promise = match args {
            [a] => f.call1(target, a)?,
            [a, b] => f.call2(target, a, b)?,
            _ => f.call0(target)?,
        };
        Ok(JsFuture::from(Promise::from(promise)).await?)
    }
}

/// The bucket, if bound.
pub fn bucket(env: &Env) -> Option<Bucket> {
    let binding = Reflect::get(env, &JsValue::from_str(R2_BINDING)).ok()?;
    binding.is_object().then_some(Bucket(binding))
}

/// Stores a registered torrent's bytes in the bucket.
pub async fn put(bucket: &Bucket, info_hash: &InfoHash, bytes: Vec<u8>) -> Result<()> {
    let body: JsValue = Uint8Array::from(bytes.as_slice()).into();
    bucket.call(&bucket.0, "put", &[&object_key(info_hash), &body]).await?;
    Ok(())
}

/// A torrent's bytes: the D1 row's blob, or (when it is empty) the bucket's
/// object. `Ok(None)` if neither has them.
pub async fn get(env: &Env, info_hash: &InfoHash, row_blob: Vec<u8>) -> Result<Option<Vec<u8>>> {
    if !row_blob.is_empty() {
        return Ok(Some(row_blob));
    }
    let Some(bucket) = bucket(env) else { return Ok(None) };
    let object = bucket.call(&bucket.0, "get", &[&object_key(info_hash)]).await?;
    if object.is_null() || object.is_undefined() {
        return Ok(None);
    }
    let buffer: ArrayBuffer = bucket.call(&object, "arrayBuffer", &[]).await?.dyn_into()?;
    Ok(Some(Uint8Array::new(&buffer).to_vec()))
}

/// Deletes a torrent's object, if there is a bucket (deleting a missing
/// object is no error).
pub async fn delete(env: &Env, info_hash: &InfoHash) -> Result<()> {
    if let Some(bucket) = bucket(env) {
        bucket.call(&bucket.0, "delete", &[&object_key(info_hash)]).await?;
    }
    Ok(())
}
