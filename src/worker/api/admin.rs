//! The admin API (ADMIN_TOKEN): client bans and blocked torrents in both
//! modes; users, invites and torrents in private mode.

use serde::Deserialize;
use serde_json::{json, Value};
use worker::*;

use super::account::bearer;
use super::cookie;
use super::http::{bad, db, now, ok, read_json, ApiError, ApiResult};
use super::super::d1::users::UserRow;
use super::super::private::{self, random, torrent_key, CLIENT_BANS_KEY};
use super::super::{d1, ledger, torrent_files, KV_BINDING};
use crate::accounts::{self, ratio};
use crate::config::{TrackerConfig, TrackerMode};
use crate::peer::InfoHash;

/// Most client-ban prefixes kept (one KV value every isolate reads and caches).
const MAX_CLIENT_BANS: usize = 1000;
/// Largest admin adjustment, either sign: totals stay exact as f64 in D1.
const MAX_ADJUST: i64 = (1 << 53) - 1;

/// Who may use the admin API: the operator (the ADMIN_TOKEN secret as the
/// bearer token) or, in private mode, a member with the admin role signed in
/// on the site (cookie) or with their own bearer token.
#[derive(PartialEq, Eq)]
enum Admin {
    Operator,
    Member,
}

async fn require_admin(req: &Request, env: &Env, config: &TrackerConfig) -> std::result::Result<Admin, ApiError> {
    let secret = env.secret("ADMIN_TOKEN").map(|s| s.to_string()).unwrap_or_default();
    let given = bearer(req).unwrap_or_default();
    if secret.len() >= 16 && accounts::secrets_match(given.as_bytes(), secret.as_bytes()) {
        return Ok(Admin::Operator);
    }
    if config.mode == TrackerMode::Private && Box::pin(cookie::admin_member(req, env, config)).await {
        return Ok(Admin::Member);
    }
    if secret.len() < 16 {
        return Err(bad(403, "admin API disabled: set the ADMIN_TOKEN secret (16+ characters)"));
    }
    Err(bad(401, "admin token required"))
}

pub(super) async fn admin(req: &mut Request, env: &Env, config: &TrackerConfig, method: &str, rest: &[&str]) -> ApiResult {
    let who = require_admin(req, env, config).await?;
    let kv = env.kv(KV_BINDING)?;
    match (method, rest) {
        ("GET", ["client-bans"]) => {
            let list: Vec<String> = kv.get(CLIENT_BANS_KEY).json().await.map_err(Error::from)?.unwrap_or_default();
            return ok(200, json!({ "prefixes": list }));
        }
        ("POST" | "DELETE", ["client-bans"]) => return client_ban(req, &kv, method).await,
        ("GET", ["blocked"]) => return blocked_list(&kv).await,
        ("POST" | "DELETE", ["blocked"]) => return block(req, env, config, &kv, method).await,
        _ if config.mode != TrackerMode::Private => {
            return Err(bad(404, "no such admin endpoint in public mode (users and torrents exist in private mode)"))
        }
        _ => {}
    }
    let db = db(env)?;
    match (method, rest) {
        ("GET", ["users"]) => list_users(&db).await,
        // Only the operator makes or unmakes admins: a member's cookie cannot.
        ("POST" | "DELETE", ["users", name, "admin"]) if who == Admin::Operator => {
            let admin = method == "POST";
            let id = user_id(&db, name).await?;
            d1::users::set_admin(&db, id, admin).await?;
            ok(200, json!({ "username": name, "admin": admin }))
        }
        ("POST" | "DELETE", ["users", _, "admin"]) => Err(bad(403, "only the operator (ADMIN_TOKEN) grants or removes the admin role")),
        ("POST", ["users", name, action @ ("ban" | "unban")]) => ban(env, config, &db, name, *action == "ban").await,
        ("POST", ["users", name, "adjust"]) => adjust(req, env, config, &db, name).await,
        ("POST", ["invites"]) => {
            let code = hex::encode(random::<16>()?);
            d1::invites::create(&db, &code, now()).await?;
            ok(201, json!({ "invite": code }))
        }
        ("POST", ["torrents", hex, "freeleech"]) => freeleech(req, &db, &kv, hex).await,
        ("DELETE", ["torrents", hex]) => delete_torrent(env, &db, &kv, hex).await,
        ("GET", ["flags"]) => flags(req, env, config, &db).await,
        _ => Err(bad(404, "no such admin endpoint")),
    }
}

async fn list_users(db: &D1Database) -> ApiResult {
    let rows: Vec<UserRow> = d1::users::list(db).await?;
    let users: Vec<Value> = rows
        .iter()
        .map(|u| {
            json!({ "id": u.id as u64, "username": u.username, "uploaded": u.uploaded as u64,
                    "downloaded": u.downloaded as u64, "ratio": ratio(u.uploaded as u64, u.downloaded as u64),
                    "banned": u.banned != 0.0, "admin": u.is_admin != 0.0 })
        })
        .collect();
    ok(200, json!({ "users": users }))
}

/// Bans (and signs out: every token goes) or unbans a user.
async fn ban(env: &Env, config: &TrackerConfig, db: &D1Database, name: &str, banned: bool) -> ApiResult {
    let id = user_id(db, name).await?;
    d1::users::set_banned(db, id, banned).await?;
    if banned {
        d1::tokens::revoke_all(db, id).await?;
    }
    private::refresh_users(env, config, &[id as u64]).await?;
    ok(200, json!({ "username": name, "banned": banned }))
}

async fn adjust(req: &mut Request, env: &Env, config: &TrackerConfig, db: &D1Database, name: &str) -> ApiResult {
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
    let id = user_id(db, name).await?;
    d1::users::adjust(db, id, a.uploaded, a.downloaded).await?;
    private::refresh_users(env, config, &[id as u64]).await?;
    let u = d1::users::by_id(db, id).await?;
    let u = u.ok_or_else(|| bad(404, "no such user"))?;
    ok(200, json!({ "username": u.username, "uploaded": u.uploaded as u64, "downloaded": u.downloaded as u64 }))
}

/// A registered torrent's hashes, addressed by either: (v1, v2 if any).
async fn torrent_hashes(db: &D1Database, hex: &str) -> std::result::Result<(InfoHash, Option<InfoHash>), ApiError> {
    let hash = InfoHash::from_hex(hex).ok_or_else(|| bad(400, "expected a 40-hex info hash"))?;
    let (v1, v2) = d1::torrents::hashes(db, &hash).await?.ok_or_else(|| bad(404, "no such torrent"))?;
    let v1 = v1.ok_or_else(|| bad(404, "no such torrent"))?;
    Ok((v1, v2))
}

/// Drops the KV entries of both hashes and this isolate's copies; other
/// isolates see the change within 60 s (their cache) plus KV's propagation.
async fn forget_torrent(kv: &kv::KvStore, v1: &InfoHash, v2: Option<&InfoHash>) -> std::result::Result<(), ApiError> {
    for hash in std::iter::once(v1).chain(v2) {
        kv.delete(&torrent_key(hash)).await?;
    }
    private::forget_cached();
    Ok(())
}

/// `{"freeleech": bool}` for a torrent addressed by either hash; it covers both.
async fn freeleech(req: &mut Request, db: &D1Database, kv: &kv::KvStore, hex: &str) -> ApiResult {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Flag {
        freeleech: bool,
    }
    let f: Flag = read_json(req).await?;
    let (v1, v2) = torrent_hashes(db, hex).await?;
    d1::torrents::set_freeleech(db, &v1, f.freeleech).await?;
    forget_torrent(kv, &v1, v2.as_ref()).await?;
    ok(200, json!({ "info_hash": v1.to_hex(), "v2_hash": v2.map(|h| h.to_hex()), "freeleech": f.freeleech }))
}

/// Unregisters a torrent addressed by either hash: its row, both KV
/// entries, and its stored file.
async fn delete_torrent(env: &Env, db: &D1Database, kv: &kv::KvStore, hex: &str) -> ApiResult {
    let (v1, v2) = torrent_hashes(db, hex).await?;
    d1::torrents::delete(db, &v1).await?;
    forget_torrent(kv, &v1, v2.as_ref()).await?;
    // The registration is gone; a file left behind is only storage.
    if let Err(e) = torrent_files::delete(env, &v1).await {
        super::super::log::warn("torrent_file_delete_failed", json!({ "info_hash": v1.to_hex(), "error": e.to_string() }));
    }
    ok(200, json!({ "deleted": v1.to_hex(), "v2_hash": v2.map(|h| h.to_hex()) }))
}

/// `GET /api/admin/flags[?limit=N]`: the newest flags first. Also prunes
/// the ledger's old rows (at most hourly per isolate).
async fn flags(req: &Request, env: &Env, config: &TrackerConfig, db: &D1Database) -> ApiResult {
    let url = req.inner().url();
    let limit = ledger::parse_limit(Some(super::super::raw_query(&url))).map_err(|m| ApiError(400, m))?;
    if let Err(e) = ledger::prune_ledger(env, config).await {
        super::super::log::warn("ledger_prune_failed", json!({ "error": e.to_string() }));
    }
    let flags = d1::ledger::recent_flags(db, limit).await?;
    ok(200, json!({ "flags": flags }))
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

use crate::kv_keys::{blocked_key, BLOCKED_PREFIX};

async fn blocked_list(kv: &kv::KvStore) -> ApiResult {
    let list = kv.list().prefix(BLOCKED_PREFIX.to_string()).limit(1000).execute().await.map_err(Error::from)?;
    let hashes: Vec<&str> = list.keys.iter().filter_map(|k| k.name.strip_prefix(BLOCKED_PREFIX)).collect();
    ok(200, json!({ "blocked": hashes }))
}

/// Blocks (POST) or unblocks (DELETE) a torrent: `{"info_hash": "<40 hex>"}`.
/// The swarm itself keeps the block, so announces cost no extra lookup. In
/// private mode a registered hybrid torrent has two swarms (its v1 hash and
/// its truncated v2 hash): either hash blocks or unblocks both, and both
/// are listed.
async fn block(req: &mut Request, env: &Env, config: &TrackerConfig, kv: &kv::KvStore, method: &str) -> ApiResult {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Target {
        info_hash: String,
    }
    let t: Target = read_json(req).await?;
    let hash = InfoHash::from_hex(&t.info_hash).ok_or_else(|| bad(400, "expected a 40-hex info hash"))?;
    let mut hashes = vec![hash];
    if config.mode == TrackerMode::Private {
        match torrent_hashes(&db(env)?, &hash.to_hex()).await {
            Ok((v1, v2)) => hashes = std::iter::once(v1).chain(v2).collect(),
            // Unregistered hashes can be blocked too (nothing announces them).
            Err(ApiError(404, _)) => {}
            Err(e) => return Err(e),
        }
    }
    let action = if method == "POST" { "block" } else { "unblock" };
    for hash in &hashes {
        let stub = super::super::own_swarm_stub(env, config, hash).await?;
        let resp = stub.fetch_with_str(&format!("https://swarm/admin/{action}/{}", hash.to_hex())).await?;
        if resp.status_code() != 200 {
            return Err(bad(503, "the swarm did not accept the change, retry"));
        }
        let key = blocked_key(hash);
        if action == "block" {
            kv.put(&key, now().to_string()).map_err(Error::from)?.execute().await.map_err(Error::from)?;
        } else {
            kv.delete(&key).await.map_err(Error::from)?;
        }
    }
    let listed: Vec<String> = hashes.iter().map(InfoHash::to_hex).collect();
    ok(200, json!({ "info_hash": hash.to_hex(), "blocked": action == "block", "hashes": listed }))
}

async fn user_id(db: &D1Database, name: &str) -> std::result::Result<f64, ApiError> {
    d1::users::id_by_name(db, name).await?.ok_or_else(|| bad(404, "no such user"))
}
