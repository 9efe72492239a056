//! Private mode on the announce path: who a passkey belongs to, whether a
//! torrent is registered, whether a client is banned. Answers come from KV
//! (written when accounts change), so an announce reads D1 only when KV has
//! never seen the passkey or torrent.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use worker::wasm_bindgen::JsValue;
use worker::*;

use super::KV_BINDING;
use crate::accounts;
use crate::config::TrackerConfig;
use crate::peer::{InfoHash, PeerId};

pub const D1_BINDING: &str = "DB";

/// What the announce path needs to know about a passkey's owner.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct PasskeyEntry {
    pub user: u64,
    pub banned: bool,
    pub may_leech: bool,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct TorrentEntry {
    pub freeleech: bool,
}

pub fn passkey_key(passkey: &str) -> String {
    format!("passkey:{passkey}")
}

pub fn torrent_key(hash: &InfoHash) -> String {
    format!("torrent:{}", hash.to_hex())
}

pub const CLIENT_BANS_KEY: &str = "client-bans";

/// Seconds an isolate keeps torrent registrations and the client ban list
/// in memory. Passkeys are kept for `PASSKEY_CACHE` seconds instead.
const CACHE_SECONDS: u64 = 60;
/// Most torrent registrations one isolate keeps in memory.
const CACHE_MAX: usize = 10_000;

thread_local! {
    static TORRENTS: RefCell<HashMap<InfoHash, (TorrentEntry, u64)>> = RefCell::new(HashMap::new());
    static PASSKEYS: RefCell<HashMap<String, (PasskeyEntry, u64)>> = RefCell::new(HashMap::new());
    static CLIENT_BANS: RefCell<Option<(Vec<String>, u64)>> = const { RefCell::new(None) };
    static KV_READS: Cell<usize> = const { Cell::new(0) };
}

fn now_ms() -> u64 {
    js_sys::Date::now() as u64
}

/// KV reads made since the last call (for the cost report).
pub fn take_kv_reads() -> usize {
    KV_READS.with(|c| c.replace(0))
}

fn count_kv_read() {
    KV_READS.with(|c| c.set(c.get() + 1));
}

/// Drops this isolate's cached registrations and bans after an admin change.
pub fn forget_cached() {
    TORRENTS.with(|t| t.borrow_mut().clear());
    CLIENT_BANS.with(|b| *b.borrow_mut() = None);
}

#[derive(Deserialize)]
struct UserTotals {
    id: f64,
    passkey: String,
    uploaded: f64,
    downloaded: f64,
    banned: f64,
}

impl UserTotals {
    fn entry(&self, config: &TrackerConfig) -> PasskeyEntry {
        PasskeyEntry {
            user: self.id as u64,
            banned: self.banned != 0.0,
            may_leech: config.ratio_rule().may_leech(self.uploaded as u64, self.downloaded as u64),
        }
    }
}

/// A KV read per private announce costs more than the Worker request
/// itself ($0.50/M against $0.30/M), so an isolate keeps known passkeys'
/// owners for `PASSKEY_CACHE` seconds. Unknown passkeys are not kept: a
/// new or reset passkey works at once.
fn cached_passkey(config: &TrackerConfig, passkey: &str) -> Option<PasskeyEntry> {
    if config.passkey_cache == 0 {
        return None;
    }
    let now = now_ms();
    PASSKEYS.with(|p| p.borrow().get(passkey).filter(|(_, exp)| *exp > now).map(|(e, _)| *e))
}

fn keep_passkey(config: &TrackerConfig, passkey: &str, entry: PasskeyEntry) {
    if config.passkey_cache == 0 {
        return;
    }
    PASSKEYS.with(|p| {
        let mut p = p.borrow_mut();
        if p.len() >= CACHE_MAX {
            p.clear();
        }
        p.insert(passkey.to_string(), (entry, now_ms() + config.passkey_cache as u64 * 1000));
    })
}

/// Drops this isolate's copy of a passkey (it was reset or revoked).
pub fn forget_passkey(passkey: &str) {
    PASSKEYS.with(|p| p.borrow_mut().remove(passkey));
}

/// The passkey's owner, from this isolate's cache, KV or (first time) D1.
/// `Ok(None)`: unknown.
pub async fn resolve_passkey(env: &Env, config: &TrackerConfig, passkey: &str) -> Result<Option<PasskeyEntry>> {
    if !accounts::is_passkey(passkey) {
        return Ok(None);
    }
    if let Some(entry) = cached_passkey(config, passkey) {
        return Ok(Some(entry));
    }
    let kv = env.kv(KV_BINDING)?;
    count_kv_read();
    if let Some(entry) = kv.get(&passkey_key(passkey)).json::<PasskeyEntry>().await? {
        keep_passkey(config, passkey, entry);
        return Ok(Some(entry));
    }
    let db = env.d1(D1_BINDING)?;
    let row: Option<UserTotals> = db
        .prepare("SELECT id, passkey, uploaded, downloaded, banned FROM users WHERE passkey = ?1")
        .bind(&[passkey.into()])?
        .first(None)
        .await?;
    match row {
        Some(u) => {
            let entry = u.entry(config);
            kv.put(&passkey_key(passkey), serde_json::to_string(&entry)?)?.execute().await?;
            keep_passkey(config, passkey, entry);
            Ok(Some(entry))
        }
        None => Ok(None),
    }
}

/// Rewrites the KV entries of these users from D1 (after their totals,
/// ban state or passkey changed); only entries that differ are written.
pub async fn refresh_users(env: &Env, config: &TrackerConfig, ids: &[u64]) -> Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    let db = env.d1(D1_BINDING)?;
    let kv = env.kv(KV_BINDING)?;
    for chunk in ids.chunks(50) {
        let placeholders = (1..=chunk.len()).map(|i| format!("?{i}")).collect::<Vec<_>>().join(",");
        let binds: Vec<JsValue> = chunk.iter().map(|&id| JsValue::from(id as f64)).collect();
        let rows: Vec<UserTotals> = db
            .prepare(format!("SELECT id, passkey, uploaded, downloaded, banned FROM users WHERE id IN ({placeholders})"))
            .bind(&binds)?
            .all()
            .await?
            .results()?;
        for u in rows {
            let entry = u.entry(config);
            // This isolate sees the change at once.
            if cached_passkey(config, &u.passkey).is_some() {
                keep_passkey(config, &u.passkey, entry);
            }
            let key = passkey_key(&u.passkey);
            if kv.get(&key).json::<PasskeyEntry>().await? != Some(entry) {
                kv.put(&key, serde_json::to_string(&entry)?)?.execute().await?;
            }
        }
    }
    Ok(())
}

/// Copies a swarm's published counters into its D1 row (private mode), so
/// the site lists and sorts by them with an index. Called when the swarm
/// publishes to KV (at most once per PUBLISH_WINDOW, on change); a failure
/// is logged and the next publish writes again.
pub async fn mirror_counts(env: &Env, hash: &InfoHash, c: crate::swarm::SwarmCounters) {
    let write = async {
        env.d1(D1_BINDING)?
            .prepare("UPDATE torrents SET seeders = ?1, leechers = ?2, completed = ?3 WHERE info_hash = ?4")
            .bind(&[(c.complete as f64).into(), (c.incomplete as f64).into(), (c.downloaded as f64).into(), hash.to_hex().into()])?
            .run()
            .await
    };
    if let Err(e) = write.await {
        super::log::warn("mirror_counts_failed", serde_json::json!({ "info_hash": hash.to_hex(), "error": e.to_string() }));
    }
}

/// The registered torrent for an announced hash (v1 or truncated v2).
pub async fn registered_torrent(env: &Env, hash: &InfoHash) -> Result<Option<TorrentEntry>> {
    let now = now_ms();
    if let Some(entry) = TORRENTS.with(|t| t.borrow().get(hash).filter(|(_, exp)| *exp > now).map(|(e, _)| *e)) {
        return Ok(Some(entry));
    }
    let remember = |entry: TorrentEntry| {
        TORRENTS.with(|t| {
            let mut t = t.borrow_mut();
            if t.len() >= CACHE_MAX {
                t.clear();
            }
            t.insert(*hash, (entry, now + CACHE_SECONDS * 1000));
        })
    };
    let kv = env.kv(KV_BINDING)?;
    count_kv_read();
    if let Some(entry) = kv.get(&torrent_key(hash)).json::<TorrentEntry>().await? {
        remember(entry);
        return Ok(Some(entry));
    }
    #[derive(Deserialize)]
    struct Row {
        freeleech: f64,
    }
    let db = env.d1(D1_BINDING)?;
    let hex = hash.to_hex();
    let row: Option<Row> = db
        .prepare("SELECT freeleech FROM torrents WHERE info_hash = ?1 OR v2_hash = ?1")
        .bind(&[hex.into()])?
        .first(None)
        .await?;
    match row {
        Some(r) => {
            let entry = TorrentEntry { freeleech: r.freeleech != 0.0 };
            kv.put(&torrent_key(hash), serde_json::to_string(&entry)?)?.execute().await?;
            remember(entry);
            Ok(Some(entry))
        }
        None => Ok(None),
    }
}

/// Whether the peer id starts with a banned client prefix.
pub async fn client_banned(env: &Env, peer_id: &PeerId) -> Result<bool> {
    if let Some(banned) = client_banned_cached(peer_id) {
        return Ok(banned);
    }
    let kv = env.kv(KV_BINDING)?;
    count_kv_read();
    let list: Vec<String> = kv.get(CLIENT_BANS_KEY).json().await?.unwrap_or_default();
    let banned = matches_ban(&list, peer_id);
    keep_client_bans(list);
    Ok(banned)
}

/// Keeps the ban list the JS entry read from KV (JSON text; empty when the
/// key is absent). A list that does not parse bans nobody, as in `client_banned`.
pub fn remember_client_bans(json: &str) {
    count_kv_read();
    keep_client_bans(if json.is_empty() { Vec::new() } else { serde_json::from_str(json).unwrap_or_default() });
}

/// This isolate's copy of the ban list, fresh for `CACHE_SECONDS`.
fn keep_client_bans(list: Vec<String>) {
    CLIENT_BANS.with(|b| *b.borrow_mut() = Some((list, now_ms() + CACHE_SECONDS * 1000)));
}

/// The answer from this isolate's copy of the ban list, if it is fresh.
pub fn client_banned_cached(peer_id: &PeerId) -> Option<bool> {
    let now = now_ms();
    CLIENT_BANS.with(|b| b.borrow().as_ref().filter(|(_, exp)| *exp > now).map(|(list, _)| matches_ban(list, peer_id)))
}

fn matches_ban(prefixes: &[String], peer_id: &PeerId) -> bool {
    prefixes.iter().any(|p| !p.is_empty() && peer_id.0.starts_with(p.as_bytes()))
}

/// 16 or 32 random bytes from the platform's CSPRNG.
pub fn random<const N: usize>() -> Result<[u8; N]> {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).map_err(|e| Error::RustError(format!("no randomness: {e}")))?;
    Ok(b)
}
