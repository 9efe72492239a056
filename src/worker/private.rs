//! Private mode on the announce path: who a passkey belongs to, whether a
//! torrent is registered, whether a client is banned. Answers come from KV
//! (written when accounts change), so an announce reads D1 only when KV has
//! never seen the passkey or torrent.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use worker::*;

use super::d1::{self, users::UserTotals};
use super::KV_BINDING;
use crate::accounts;
use crate::config::TrackerConfig;
use crate::peer::{InfoHash, PeerId};

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

pub use crate::kv_keys::{passkey_key, torrent_key, CLIENT_BANS_KEY};

/// Seconds an isolate keeps torrent registrations and the client ban list
/// in memory. Passkeys are kept for `PASSKEY_CACHE` seconds instead.
const CACHE_SECONDS: u64 = 60;
/// Most torrent registrations one isolate keeps in memory.
const CACHE_MAX: usize = 10_000;
/// Most unknown passkeys, and unknown info hashes, one isolate remembers.
const NEGATIVE_MAX: usize = 10_000;

thread_local! {
    static TORRENTS: RefCell<HashMap<InfoHash, (TorrentEntry, u64)>> = RefCell::new(HashMap::new());
    static PASSKEYS: RefCell<HashMap<String, (PasskeyEntry, u64)>> = RefCell::new(HashMap::new());
    static CLIENT_BANS: RefCell<Option<(Vec<String>, u64)>> = const { RefCell::new(None) };
    static KV_READS: Cell<usize> = const { Cell::new(0) };
    /// Negative cache: passkeys and info hashes D1 did not know, until when (ms).
    /// (Same map types as the positive caches, whose entries here mean nothing:
    /// one copy of the hash map code in the wasm.)
    static UNKNOWN_PASSKEYS: RefCell<HashMap<String, (PasskeyEntry, u64)>> = RefCell::new(HashMap::new());
    static UNKNOWN_TORRENTS: RefCell<HashMap<InfoHash, (TorrentEntry, u64)>> = RefCell::new(HashMap::new());
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
/// owners for `PASSKEY_CACHE` seconds, and unknown ones for
/// `NEGATIVE_CACHE` seconds (see `is_unknown`).
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

/// Whether this isolate saw D1 refuse `key` less than `NEGATIVE_CACHE`
/// seconds ago: a flood of bogus passkeys or hashes then costs no KV or
/// D1 read each. A registration through this isolate drops its entry
/// (`forget_unknown_*`); other isolates may refuse a just-registered
/// torrent for up to `NEGATIVE_CACHE` seconds.
fn is_unknown<K: std::hash::Hash + Eq, V>(map: &RefCell<HashMap<K, (V, u64)>>, key: &K) -> bool {
    let now = now_ms();
    map.borrow().get(key).is_some_and(|(_, exp)| *exp > now)
}

/// Remembers an unknown key. Bounded: when full, the map starts afresh
/// (a flood only ever costs reads again).
fn note_unknown<K: std::hash::Hash + Eq, V>(config: &TrackerConfig, map: &RefCell<HashMap<K, (V, u64)>>, key: K, filler: V) {
    if config.negative_cache == 0 {
        return;
    }
    let mut map = map.borrow_mut();
    if map.len() >= NEGATIVE_MAX {
        map.clear();
    }
    map.insert(key, (filler, now_ms() + config.negative_cache as u64 * 1000));
}

const UNKNOWN_USER: PasskeyEntry = PasskeyEntry { user: 0, banned: true, may_leech: false };

/// A passkey was just issued through this isolate: it is no longer unknown here.
pub fn forget_unknown_passkey(passkey: &str) {
    UNKNOWN_PASSKEYS.with(|m| m.borrow_mut().remove(passkey));
}

/// A torrent was just registered through this isolate (either of its hashes).
pub fn forget_unknown_torrent(hash: &InfoHash) {
    UNKNOWN_TORRENTS.with(|m| m.borrow_mut().remove(hash));
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
    if UNKNOWN_PASSKEYS.with(|m| is_unknown(m, &passkey.to_string())) {
        return Ok(None);
    }
    let kv = env.kv(KV_BINDING)?;
    count_kv_read();
    if let Some(entry) = kv.get(&passkey_key(passkey)).json::<PasskeyEntry>().await? {
        keep_passkey(config, passkey, entry);
        return Ok(Some(entry));
    }
    let db = d1::open(env)?;
    let Some(u) = d1::users::by_passkey(&db, passkey).await? else {
        UNKNOWN_PASSKEYS.with(|m| note_unknown(config, m, passkey.to_string(), UNKNOWN_USER));
        return Ok(None);
    };
    let entry = u.entry(config);
    kv.put(&passkey_key(passkey), serde_json::to_string(&entry)?)?.execute().await?;
    // Write-back only if current: see `stale_passkeys`.
    if !stale_passkeys(&db, &[(u.id, passkey.to_string())]).await?.is_empty() {
        kv.delete(&passkey_key(passkey)).await?;
        return Ok(None);
    }
    keep_passkey(config, passkey, entry);
    Ok(Some(entry))
}

/// Of these (user id, passkey) pairs just written to KV, the passkeys that
/// are no longer their user's (reset, or the user is gone), read from D1
/// *after* the KV write; the caller deletes their KV entries.
///
/// Why a revoked passkey cannot come back. A reset is R1 (D1: set the new
/// passkey) then R2 (KV: delete the old key's entry). A write-back is W1
/// (D1: read the owner of key k), W2 (KV: put k), W3 (D1: this re-read),
/// W4 (KV: delete k if W3 found it revoked). Take any interleaving in
/// which W1 read k before R1 (otherwise W1 finds nothing and writes nothing):
/// - W2 before R2: R2, the later write to the key, deletes it.
/// - W2 after R2: then W3 comes after R1, and D1 (one primary, read after
///   write) answers with the new passkey, so W4 deletes it.
///
/// Either way no entry for k survives both; KV keeps the last write to a
/// key. (`accounts::write_back_model` checks every interleaving with one
/// and two concurrent write-backs.) The only window is W2..W4 (one D1 round trip), in which an announce
/// could pass as it could before the reset; this isolate's memory caches k
/// only after W3 passed, and others never read it from the deleted entry
/// after KV propagates (~60 s, as for any reset).
async fn stale_passkeys(db: &D1Database, written: &[(f64, String)]) -> Result<Vec<String>> {
    if written.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<f64> = written.iter().map(|(id, _)| *id).collect();
    let rows = d1::users::passkeys_of(db, &ids).await?;
    Ok(written
        .iter()
        .filter(|(id, key)| !rows.iter().any(|r| r["id"].as_f64() == Some(*id) && r["passkey"].as_str() == Some(key)))
        .map(|(_, key)| key.clone())
        .collect())
}

/// Rewrites the KV entries of these users from D1 (after their totals,
/// ban state or passkey changed); only entries that differ are written,
/// and a written entry whose passkey was reset meanwhile is deleted again
/// (`stale_passkeys`).
pub async fn refresh_users(env: &Env, config: &TrackerConfig, ids: &[u64]) -> Result<KvCount> {
    let mut count = KvCount::default();
    if ids.is_empty() {
        return Ok(count);
    }
    let db = d1::open(env)?;
    let kv = env.kv(KV_BINDING)?;
    for chunk in ids.chunks(50) {
        let rows = d1::users::totals_of(&db, chunk).await?;
        let mut written = Vec::new();
        for u in rows {
            let entry = u.entry(config);
            // This isolate sees the change at once.
            if cached_passkey(config, &u.passkey).is_some() {
                keep_passkey(config, &u.passkey, entry);
            }
            let key = passkey_key(&u.passkey);
            count.reads += 1;
            if kv.get(&key).json::<PasskeyEntry>().await? != Some(entry) {
                count.writes += 1;
                kv.put(&key, serde_json::to_string(&entry)?)?.execute().await?;
                written.push((u.id, u.passkey));
            }
        }
        for stale in stale_passkeys(&db, &written).await? {
            forget_passkey(&stale);
            count.writes += 1;
            kv.delete(&passkey_key(&stale)).await?;
        }
    }
    Ok(count)
}

/// KV operations a refresh made (for the cost bench).
#[derive(Debug, Default, Clone, Copy)]
pub struct KvCount {
    pub reads: usize,
    pub writes: usize,
}

/// Copies a swarm's published counters into its D1 row (private mode), so
/// the site lists and sorts by them with an index. Called when the swarm
/// publishes to KV (at most once per PUBLISH_WINDOW, on change); a failure
/// is logged and the next publish writes again.
pub async fn mirror_counts(env: &Env, hash: &InfoHash, c: crate::swarm::SwarmCounters) {
    if let Err(e) = async { d1::torrents::set_counts(&d1::open(env)?, hash, c).await }.await {
        super::log::warn("mirror_counts_failed", serde_json::json!({ "info_hash": hash.to_hex(), "error": e.to_string() }));
    }
}

/// The registered torrent for an announced hash (v1 or truncated v2),
/// from this isolate's memory (60 s, unknown ones `NEGATIVE_CACHE` s), KV,
/// or D1 (written back to KV only if still current, as for passkeys).
pub async fn registered_torrent(env: &Env, config: &TrackerConfig, hash: &InfoHash) -> Result<Option<TorrentEntry>> {
    let now = now_ms();
    if let Some(entry) = TORRENTS.with(|t| t.borrow().get(hash).filter(|(_, exp)| *exp > now).map(|(e, _)| *e)) {
        return Ok(Some(entry));
    }
    if UNKNOWN_TORRENTS.with(|m| is_unknown(m, hash)) {
        return Ok(None);
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
    let db = d1::open(env)?;
    let Some(entry) = torrent_in_d1(&db, hash).await? else {
        UNKNOWN_TORRENTS.with(|m| note_unknown(config, m, *hash, TorrentEntry { freeleech: false }));
        return Ok(None);
    };
    kv.put(&torrent_key(hash), serde_json::to_string(&entry)?)?.execute().await?;
    // Write-back only if current: a deletion or freeleech change that
    // raced this write (it deletes the KV entry after updating D1) is seen
    // by this re-read, by the argument of `stale_passkeys`.
    let current = torrent_in_d1(&db, hash).await?;
    if current.map(|c| c.freeleech) != Some(entry.freeleech) {
        kv.delete(&torrent_key(hash)).await?;
    }
    if let Some(c) = current {
        remember(c);
    }
    Ok(current)
}

async fn torrent_in_d1(db: &D1Database, hash: &InfoHash) -> Result<Option<TorrentEntry>> {
    Ok(d1::torrents::freeleech_of(db, hash).await?.map(|freeleech| TorrentEntry { freeleech }))
}

/// Reads the client ban list from KV into this isolate's copy (then
/// `client_banned_cached` answers for `CACHE_SECONDS`).
pub async fn load_client_bans(env: &Env) -> Result<()> {
    let kv = env.kv(KV_BINDING)?;
    count_kv_read();
    let list: Vec<String> = kv.get(CLIENT_BANS_KEY).json().await?.unwrap_or_default();
    keep_client_bans(list);
    Ok(())
}

/// Keeps the ban list the JS entry read from KV (JSON text; empty when the
/// key is absent). A list that does not parse bans nobody.
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
