//! Members' API (private mode): register, sign in, their account, and the
//! torrent registry.

use serde::Deserialize;
use serde_json::{json, Value};
use worker::wasm_bindgen::JsValue;
use worker::*;

use super::{authenticate, bad, db, now, ok, origin, read_body, read_json, ApiError, ApiResult, UserRow, MAX_TORRENT_BYTES};
use super::super::private::{self, passkey_key, random};
use super::super::KV_BINDING;
use crate::accounts::{self, ratio};
use crate::config::TrackerConfig;
use crate::metainfo;
use crate::peer::InfoHash;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Credentials {
    username: String,
    password: String,
    invite: Option<String>,
}

pub(super) async fn register(req: &mut Request, env: &Env, config: &TrackerConfig) -> ApiResult {
    let c: Credentials = read_json(req).await?;
    accounts::validate_username(&c.username).map_err(|m| bad(400, m))?;
    accounts::validate_password(&c.password).map_err(|m| bad(400, m))?;
    let db = db(env)?;
    if config.invite_only {
        let code = c.invite.as_deref().ok_or_else(|| bad(403, "registration needs an invite code"))?;
        // Claim the invite atomically: only one registration can use it.
        let claimed = db
            .prepare("UPDATE invites SET used_at = ?2 WHERE code = ?1 AND used_at IS NULL")
            .bind(&[code.into(), now().into()])?
            .run()
            .await?;
        let changed = claimed.meta()?.and_then(|m| m.changes).unwrap_or(0);
        if changed == 0 {
            return Err(bad(403, "invalid or already used invite code"));
        }
    }
    let salt = random::<16>()?;
    let hash = accounts::hash_password(&c.password, &salt, config.password_rounds);
    let passkey = accounts::passkey_from(&random::<16>()?);
    let inserted = db
        .prepare("INSERT INTO users (username, password_hash, passkey, created_at) VALUES (?1, ?2, ?3, ?4)")
        .bind(&[c.username.as_str().into(), hash.into(), passkey.as_str().into(), now().into()])?
        .run()
        .await;
    if let Err(e) = inserted {
        if let Some(code) = c.invite.as_deref().filter(|_| config.invite_only) {
            // The registration failed: the invite stays usable.
            db.prepare("UPDATE invites SET used_at = NULL WHERE code = ?1").bind(&[code.into()])?.run().await?;
        }
        return Err(if e.to_string().contains("UNIQUE") { bad(409, "username already taken") } else { e.into() });
    }
    if let Some(code) = c.invite.as_deref().filter(|_| config.invite_only) {
        db.prepare("UPDATE invites SET used_by = (SELECT id FROM users WHERE username = ?1) WHERE code = ?2")
            .bind(&[c.username.as_str().into(), code.into()])?
            .run()
            .await?;
    }
    ok(201, json!({ "username": c.username, "passkey": passkey }))
}

pub(super) async fn login(req: &mut Request, env: &Env, config: &TrackerConfig) -> ApiResult {
    let (token, _) = issue_token(req, env, config).await?;
    ok(200, json!({ "token": token }))
}

/// Checks the credentials in the body and stores a new API token for the
/// member: (token, username). The bearer API hands the token out; the site
/// puts it in a cookie (`session.rs`).
pub(super) async fn issue_token(req: &mut Request, env: &Env, config: &TrackerConfig) -> std::result::Result<(String, String), ApiError> {
    let c: Credentials = read_json(req).await?;
    #[derive(Deserialize)]
    struct Row {
        id: f64,
        username: String,
        password_hash: String,
        banned: f64,
    }
    let row: Option<Row> = db(env)?
        .prepare("SELECT id, username, password_hash, banned FROM users WHERE username = ?1")
        .bind(&[c.username.as_str().into()])?
        .first(None)
        .await?;
    // Unknown users cost the same work as known ones (hashed with the configured rounds).
    let dummy = accounts::dummy_hash(config.password_rounds);
    let stored = row.as_ref().map(|r| r.password_hash.as_str()).unwrap_or(&dummy);
    if !accounts::verify_password(stored, &c.password) || row.is_none() {
        return Err(bad(401, "wrong username or password"));
    }
    let user = row.ok_or_else(|| bad(401, "wrong username or password"))?;
    if user.banned != 0.0 {
        return Err(bad(403, "account banned"));
    }
    let token = accounts::token_from(&random::<32>()?);
    db(env)?
        .prepare("INSERT INTO tokens (token_hash, user_id, created_at) VALUES (?1, ?2, ?3)")
        .bind(&[accounts::token_hash(&token).into(), user.id.into(), now().into()])?
        .run()
        .await?;
    Ok((token, user.username))
}

fn me_json(u: &UserRow, req: &Request, config: &TrackerConfig) -> Result<Value> {
    let (up, down) = (u.uploaded as u64, u.downloaded as u64);
    Ok(json!({
        "username": u.username,
        "uploaded": up,
        "downloaded": down,
        "ratio": ratio(up, down),
        "passkey": u.passkey,
        "announce_url": format!("{}/announce/{}", origin(req)?, u.passkey),
        "may_leech": config.ratio_rule().may_leech(up, down),
        "admin": u.is_admin != 0.0,
        "min_ratio": config.ratio_rule().min_ratio,
        "ratio_allowance": config.ratio_rule().allowance,
    }))
}

pub(super) async fn me(req: &Request, env: &Env, config: &TrackerConfig) -> ApiResult {
    let user = authenticate(req, env).await?;
    ok(200, me_json(&user, req, config)?)
}

pub(super) async fn reset_passkey(req: &Request, env: &Env, config: &TrackerConfig) -> ApiResult {
    let user = authenticate(req, env).await?;
    let passkey = accounts::passkey_from(&random::<16>()?);
    db(env)?
        .prepare("UPDATE users SET passkey = ?1 WHERE id = ?2")
        .bind(&[passkey.as_str().into(), user.id.into()])?
        .run()
        .await?;
    // The old passkey stops working now: its KV entry goes.
    let kv = env.kv(KV_BINDING)?;
    kv.delete(&passkey_key(&user.passkey)).await?;
    private::forget_passkey(&user.passkey);
    private::refresh_users(env, config, &[user.id as u64]).await?;
    ok(200, json!({ "passkey": passkey, "announce_url": format!("{}/announce/{}", origin(req)?, passkey) }))
}

pub(super) async fn upload(req: &mut Request, env: &Env, config: &TrackerConfig) -> ApiResult {
    let user = authenticate(req, env).await?;
    let body = read_body(req, MAX_TORRENT_BYTES).await?;
    let meta = metainfo::inspect(&body).map_err(|e| ApiError(400, e.to_string()))?;
    if config.require_private_flag && !meta.private {
        return Err(bad(400, "torrent must be marked private (info.private = 1) so clients use only this tracker"));
    }
    let inserted = db(env)?
        .prepare(
            "INSERT INTO torrents (info_hash, v2_hash, name, size, uploader, freeleech, torrent, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, 0, ?6, ?7)",
        )
        .bind(&[
            meta.info_hash.to_hex().into(),
            meta.v2_hash.map(|h| JsValue::from(h.to_hex())).unwrap_or(JsValue::NULL),
            meta.name.as_str().into(),
            (meta.size as f64).into(),
            user.id.into(),
            js_sys::Uint8Array::from(body.as_slice()).into(),
            now().into(),
        ])?
        .run()
        .await;
    match inserted {
        Ok(_) => {}
        Err(e) if e.to_string().contains("UNIQUE") => return Err(bad(409, "torrent already registered")),
        Err(e) => return Err(e.into()),
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

pub(super) async fn download(req: &Request, env: &Env, file: &str) -> ApiResult {
    let user = authenticate(req, env).await?;
    let hash = InfoHash::from_hex(file.trim_end_matches(".torrent")).ok_or_else(|| bad(400, "expected /api/torrents/<40 hex>.torrent"))?;
    #[derive(Deserialize)]
    struct Row {
        #[serde(with = "serde_bytes")]
        torrent: Vec<u8>,
        name: String,
    }
    let row: Option<Row> = db(env)?
        .prepare("SELECT torrent, name FROM torrents WHERE info_hash = ?1")
        .bind(&[hash.to_hex().into()])?
        .first(None)
        .await?;
    let row = row.ok_or_else(|| bad(404, "no such torrent"))?;
    let url = format!("{}/announce/{}", origin(req)?, user.passkey);
    let bytes = metainfo::with_announce(&row.torrent, &url).map_err(|e| ApiError(500, e.to_string()))?;
    let mut resp = Response::from_bytes(bytes)?;
    let h = resp.headers_mut();
    h.set("content-type", "application/x-bittorrent")?;
    let safe: String = row.name.chars().filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ' ')).collect();
    h.set("content-disposition", &format!("attachment; filename=\"{safe}.torrent\""))?;
    h.set("cache-control", "no-store")?;
    Ok(resp)
}
