//! The JSON API: accounts and torrents (private mode), and the admin API
//! (client bans and blocked torrents in both modes; users, invites and
//! torrents in private mode). Every error is `{"error": "..."}` with a 4xx
//! status that says why.

use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::{json, Value};
use worker::wasm_bindgen::JsValue;
use worker::*;

use super::private::{self, passkey_key, random, torrent_key, CLIENT_BANS_KEY, D1_BINDING};
use super::KV_BINDING;
use crate::accounts::{self, ratio};
use crate::config::{TrackerConfig, TrackerMode};
use crate::metainfo;
use crate::peer::InfoHash;
use crate::scrape::counters_key;
use crate::swarm::SwarmCounters;

/// Largest .torrent accepted (big multi-file torrents are ~1-2 MB).
pub const MAX_TORRENT_BYTES: usize = 4 * 1024 * 1024;
/// Largest JSON body accepted.
pub const MAX_JSON_BYTES: usize = 16 * 1024;
/// Most client-ban prefixes kept (one KV value every isolate reads and caches).
pub const MAX_CLIENT_BANS: usize = 1000;
/// Largest admin adjustment, either sign: totals stay exact as f64 in D1.
pub const MAX_ADJUST: i64 = (1 << 53) - 1;

pub async fn handle(mut req: Request, env: &Env, config: &TrackerConfig) -> Result<Response> {
    let path = req.path();
    // The raw method: `Request::method()` reads any method it does not know as GET.
    let method = req.inner().method();
    let segments: Vec<&str> = path.trim_start_matches("/api/").split('/').collect();
    let admin_action = segments.first() == Some(&"admin") && method.as_str() != "GET";
    let method_name = method.as_str().to_string();
    let result = match (method.as_str(), segments.as_slice()) {
        (m @ ("GET" | "POST" | "DELETE"), ["admin", rest @ ..]) => admin(&mut req, env, config, m, rest).await,
        _ if config.mode != TrackerMode::Private => {
            Err(bad(404, "the account API exists in private mode only (TRACKER_MODE=private)"))
        }
        ("POST", ["users"]) => register(&mut req, env, config).await,
        ("POST", ["login"]) => login(&mut req, env, config).await,
        ("GET", ["me"]) => me(&req, env, config).await,
        ("POST", ["me", "passkey"]) => reset_passkey(&req, env, config).await,
        ("POST", ["torrents"]) => upload(&mut req, env, config).await,
        ("GET", ["torrents"]) => list_torrents(&req, env).await,
        ("GET", ["torrents", file]) if file.ends_with(".torrent") => download(&req, env, file).await,
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
    Ok(env.d1(D1_BINDING)?)
}

fn now() -> f64 {
    (Date::now().as_millis() / 1000) as f64
}

fn origin(req: &Request) -> Result<String> {
    let url = req.url()?;
    Ok(url.origin().ascii_serialization())
}

#[derive(Deserialize)]
struct UserRow {
    id: f64,
    username: String,
    passkey: String,
    uploaded: f64,
    downloaded: f64,
    banned: f64,
}

fn bearer(req: &Request) -> Option<String> {
    let h = req.headers().get("authorization").ok()??;
    h.strip_prefix("Bearer ").map(|t| t.trim().to_string())
}

/// The user a bearer token belongs to.
async fn authenticate(req: &Request, env: &Env) -> std::result::Result<UserRow, ApiError> {
    let token = bearer(req).ok_or_else(|| bad(401, "missing bearer token"))?;
    let row: Option<UserRow> = db(env)?
        .prepare(
            "SELECT u.id, u.username, u.passkey, u.uploaded, u.downloaded, u.banned FROM tokens t \
             JOIN users u ON u.id = t.user_id WHERE t.token_hash = ?1",
        )
        .bind(&[accounts::token_hash(&token).into()])?
        .first(None)
        .await?;
    let user = row.ok_or_else(|| bad(401, "invalid or expired token"))?;
    if user.banned != 0.0 {
        return Err(bad(403, "account banned"));
    }
    Ok(user)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Credentials {
    username: String,
    password: String,
    invite: Option<String>,
}

async fn register(req: &mut Request, env: &Env, config: &TrackerConfig) -> ApiResult {
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

async fn login(req: &mut Request, env: &Env, config: &TrackerConfig) -> ApiResult {
    let c: Credentials = read_json(req).await?;
    #[derive(Deserialize)]
    struct Row {
        id: f64,
        password_hash: String,
        banned: f64,
    }
    let row: Option<Row> = db(env)?
        .prepare("SELECT id, password_hash, banned FROM users WHERE username = ?1")
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
    ok(200, json!({ "token": token }))
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
    }))
}

async fn me(req: &Request, env: &Env, config: &TrackerConfig) -> ApiResult {
    let user = authenticate(req, env).await?;
    ok(200, me_json(&user, req, config)?)
}

async fn reset_passkey(req: &Request, env: &Env, config: &TrackerConfig) -> ApiResult {
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

async fn upload(req: &mut Request, env: &Env, config: &TrackerConfig) -> ApiResult {
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

#[derive(Deserialize)]
struct TorrentRow {
    info_hash: String,
    name: String,
    size: f64,
    freeleech: f64,
    created_at: f64,
}

async fn list_torrents(req: &Request, env: &Env) -> ApiResult {
    let user = authenticate(req, env).await?;
    let rows: Vec<TorrentRow> = db(env)?
        .prepare("SELECT info_hash, name, size, freeleech, created_at FROM torrents ORDER BY created_at DESC LIMIT 100")
        .all()
        .await?
        .results()?;
    let keys: Vec<String> = rows
        .iter()
        .filter_map(|r| InfoHash::from_hex(&r.info_hash))
        .map(|h| counters_key(&h))
        .collect();
    let counters = if keys.is_empty() {
        Default::default()
    } else {
        env.kv(KV_BINDING)?.get_bulk(&keys).text().await.map_err(Error::from)?
    };
    let tracker = format!("{}/announce/{}", origin(req)?, user.passkey);
    let list: Vec<Value> = rows
        .iter()
        .filter_map(|r| {
            let hash = InfoHash::from_hex(&r.info_hash)?;
            let c = counters
                .get(&counters_key(&hash))
                .and_then(|v| v.as_deref())
                .and_then(SwarmCounters::from_kv)
                .unwrap_or_default();
            Some(json!({
                "info_hash": r.info_hash,
                "name": r.name,
                "size": r.size as u64,
                "seeders": c.complete,
                "leechers": c.incomplete,
                "completed": c.downloaded,
                "freeleech": r.freeleech != 0.0,
                "added": r.created_at as u64,
                "magnet": metainfo::magnet(&hash, &r.name, &tracker),
            }))
        })
        .collect();
    ok(200, json!({ "torrents": list }))
}

async fn download(req: &Request, env: &Env, file: &str) -> ApiResult {
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

// ---- admin ----------------------------------------------------------------

fn require_admin(req: &Request, env: &Env) -> std::result::Result<(), ApiError> {
    let secret = env.secret("ADMIN_TOKEN").map(|s| s.to_string()).unwrap_or_default();
    let given = bearer(req).unwrap_or_default();
    if secret.len() < 16 {
        return Err(bad(403, "admin API disabled: set the ADMIN_TOKEN secret (16+ characters)"));
    }
    if !accounts::secrets_match(given.as_bytes(), secret.as_bytes()) {
        return Err(bad(401, "admin token required"));
    }
    Ok(())
}

async fn admin(req: &mut Request, env: &Env, config: &TrackerConfig, method: &str, rest: &[&str]) -> ApiResult {
    require_admin(req, env)?;
    let kv = env.kv(KV_BINDING)?;
    match (method, rest) {
        ("GET", ["client-bans"]) => {
            let list: Vec<String> = kv.get(CLIENT_BANS_KEY).json().await.map_err(Error::from)?.unwrap_or_default();
            return ok(200, json!({ "prefixes": list }));
        }
        ("POST" | "DELETE", ["client-bans"]) => return client_ban(req, &kv, method).await,
        ("GET", ["blocked"]) => return blocked_list(&kv).await,
        ("POST" | "DELETE", ["blocked"]) => return block(req, env, &kv, method).await,
        _ if config.mode != TrackerMode::Private => {
            return Err(bad(404, "no such admin endpoint in public mode (users and torrents exist in private mode)"))
        }
        _ => {}
    }
    let db = db(env)?;
    match (method, rest) {
        ("GET", ["users"]) => {
            let rows: Vec<UserRow> = db
                .prepare("SELECT id, username, passkey, uploaded, downloaded, banned FROM users ORDER BY id LIMIT 1000")
                .all()
                .await?
                .results()?;
            let users: Vec<Value> = rows
                .iter()
                .map(|u| {
                    json!({ "id": u.id as u64, "username": u.username, "uploaded": u.uploaded as u64,
                            "downloaded": u.downloaded as u64, "ratio": ratio(u.uploaded as u64, u.downloaded as u64),
                            "banned": u.banned != 0.0 })
                })
                .collect();
            ok(200, json!({ "users": users }))
        }
        ("POST", ["users", name, action @ ("ban" | "unban")]) => {
            let banned = *action == "ban";
            let id = user_id(&db, name).await?;
            db.prepare("UPDATE users SET banned = ?1 WHERE id = ?2").bind(&[(banned as i32).into(), id.into()])?.run().await?;
            if banned {
                db.prepare("DELETE FROM tokens WHERE user_id = ?1").bind(&[id.into()])?.run().await?;
            }
            private::refresh_users(env, config, &[id as u64]).await?;
            ok(200, json!({ "username": name, "banned": banned }))
        }
        ("POST", ["users", name, "adjust"]) => {
            #[derive(Deserialize)]
            #[serde(deny_unknown_fields)]
            struct Adjust {
                #[serde(default)]
                uploaded: i64,
                #[serde(default)]
                downloaded: i64,
            }
            let a: Adjust = read_json(req).await?;
            if a.uploaded.unsigned_abs() > MAX_ADJUST as u64 || a.downloaded.unsigned_abs() > MAX_ADJUST as u64 {
                return Err(ApiError(400, format!("adjustments are at most {MAX_ADJUST} bytes either way")));
            }
            let id = user_id(&db, name).await?;
            db.prepare(
                "UPDATE users SET uploaded = MAX(0, uploaded + ?1), downloaded = MAX(0, downloaded + ?2) WHERE id = ?3",
            )
            .bind(&[(a.uploaded as f64).into(), (a.downloaded as f64).into(), id.into()])?
            .run()
            .await?;
            private::refresh_users(env, config, &[id as u64]).await?;
            let u: Option<UserRow> = db
                .prepare("SELECT id, username, passkey, uploaded, downloaded, banned FROM users WHERE id = ?1")
                .bind(&[id.into()])?
                .first(None)
                .await?;
            let u = u.ok_or_else(|| bad(404, "no such user"))?;
            ok(200, json!({ "username": u.username, "uploaded": u.uploaded as u64, "downloaded": u.downloaded as u64 }))
        }
        ("POST", ["invites"]) => {
            let code = hex::encode(random::<16>()?);
            db.prepare("INSERT INTO invites (code, created_at) VALUES (?1, ?2)").bind(&[code.as_str().into(), now().into()])?.run().await?;
            ok(201, json!({ "invite": code }))
        }
        ("POST", ["torrents", hex, "freeleech"]) => {
            #[derive(Deserialize)]
            #[serde(deny_unknown_fields)]
            struct Flag {
                freeleech: bool,
            }
            let f: Flag = read_json(req).await?;
            let hash = InfoHash::from_hex(hex).ok_or_else(|| bad(400, "expected a 40-hex info hash"))?;
            let r = db
                .prepare("UPDATE torrents SET freeleech = ?1 WHERE info_hash = ?2")
                .bind(&[(f.freeleech as i32).into(), hash.to_hex().into()])?
                .run()
                .await?;
            if r.meta()?.and_then(|m| m.changes).unwrap_or(0) == 0 {
                return Err(bad(404, "no such torrent"));
            }
            kv.delete(&torrent_key(&hash)).await?;
            private::forget_cached();
            ok(200, json!({ "info_hash": hash.to_hex(), "freeleech": f.freeleech }))
        }
        ("DELETE", ["torrents", hex]) => {
            let hash = InfoHash::from_hex(hex).ok_or_else(|| bad(400, "expected a 40-hex info hash"))?;
            #[derive(Deserialize)]
            struct V2 {
                v2_hash: Option<String>,
            }
            let row: Option<V2> =
                db.prepare("SELECT v2_hash FROM torrents WHERE info_hash = ?1").bind(&[hash.to_hex().into()])?.first(None).await?;
            let row = row.ok_or_else(|| bad(404, "no such torrent"))?;
            db.prepare("DELETE FROM torrents WHERE info_hash = ?1").bind(&[hash.to_hex().into()])?.run().await?;
            kv.delete(&torrent_key(&hash)).await?;
            if let Some(v2) = row.v2_hash.as_deref().and_then(InfoHash::from_hex) {
                kv.delete(&torrent_key(&v2)).await?;
            }
            private::forget_cached();
            ok(200, json!({ "deleted": hash.to_hex() }))
        }
        _ => Err(bad(404, "no such admin endpoint")),
    }
}

/// Adds (POST) or removes (DELETE) a banned client prefix: `{"prefix": "-XL0012-"}`.
async fn client_ban(req: &mut Request, kv: &kv::KvStore, method: &str) -> ApiResult {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Prefix {
        prefix: String,
    }
    let p: Prefix = read_json(req).await?;
    if p.prefix.is_empty() || p.prefix.len() > 20 {
        return Err(bad(400, "prefix must be 1-20 characters of a peer id, e.g. -XL0012-"));
    }
    let mut list: Vec<String> = kv.get(CLIENT_BANS_KEY).json().await.map_err(Error::from)?.unwrap_or_default();
    let had = list.len();
    list.retain(|x| x != &p.prefix);
    if method == "POST" {
        if list.len() >= MAX_CLIENT_BANS {
            return Err(ApiError(400, format!("at most {MAX_CLIENT_BANS} client bans")));
        }
        list.push(p.prefix);
    } else if list.len() == had {
        return Err(bad(404, "no such client ban"));
    }
    kv.put(CLIENT_BANS_KEY, serde_json::to_string(&list).map_err(|e| Error::RustError(e.to_string()))?)
        .map_err(Error::from)?
        .execute()
        .await
        .map_err(Error::from)?;
    private::forget_cached();
    ok(200, json!({ "prefixes": list }))
}

const BLOCKED_PREFIX: &str = "blocked:";

async fn blocked_list(kv: &kv::KvStore) -> ApiResult {
    let list = kv.list().prefix(BLOCKED_PREFIX.to_string()).limit(1000).execute().await.map_err(Error::from)?;
    let hashes: Vec<&str> = list.keys.iter().filter_map(|k| k.name.strip_prefix(BLOCKED_PREFIX)).collect();
    ok(200, json!({ "blocked": hashes }))
}

/// Blocks (POST) or unblocks (DELETE) a torrent: `{"info_hash": "<40 hex>"}`.
/// The swarm itself keeps the block, so announces cost no extra lookup.
async fn block(req: &mut Request, env: &Env, kv: &kv::KvStore, method: &str) -> ApiResult {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Target {
        info_hash: String,
    }
    let t: Target = read_json(req).await?;
    let hash = InfoHash::from_hex(&t.info_hash).ok_or_else(|| bad(400, "expected a 40-hex info hash"))?;
    let action = if method == "POST" { "block" } else { "unblock" };
    let stub = env.durable_object(super::SWARMS_BINDING)?.id_from_name(&hash.to_hex())?.get_stub()?;
    let resp = stub.fetch_with_str(&format!("https://swarm/admin/{action}/{}", hash.to_hex())).await?;
    if resp.status_code() != 200 {
        return Err(bad(503, "the swarm did not accept the change, retry"));
    }
    let key = format!("{BLOCKED_PREFIX}{}", hash.to_hex());
    if action == "block" {
        kv.put(&key, now().to_string()).map_err(Error::from)?.execute().await.map_err(Error::from)?;
    } else {
        kv.delete(&key).await.map_err(Error::from)?;
    }
    ok(200, json!({ "info_hash": hash.to_hex(), "blocked": action == "block" }))
}

async fn user_id(db: &D1Database, name: &str) -> std::result::Result<f64, ApiError> {
    #[derive(Deserialize)]
    struct Row {
        id: f64,
    }
    let row: Option<Row> = db.prepare("SELECT id FROM users WHERE username = ?1").bind(&[name.into()])?.first(None).await?;
    Ok(row.ok_or_else(|| bad(404, "no such user"))?.id)
}
