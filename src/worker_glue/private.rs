//! Private mode on the announce path: who a passkey belongs to, whether a
//! torrent is registered, whether a client is banned. Answers come from KV
//! (written when accounts change), so an announce reads D1 only when KV has
//! never seen the passkey or torrent.

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

/// The passkey's owner, from KV or (first time) D1. `Ok(None)`: unknown.
pub async fn resolve_passkey(env: &Env, config: &TrackerConfig, passkey: &str) -> Result<Option<PasskeyEntry>> {
    if !accounts::is_passkey(passkey) {
        return Ok(None);
    }
    let kv = env.kv(KV_BINDING)?;
    if let Some(entry) = kv.get(&passkey_key(passkey)).json::<PasskeyEntry>().await? {
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
            let key = passkey_key(&u.passkey);
            if kv.get(&key).json::<PasskeyEntry>().await? != Some(entry) {
                kv.put(&key, serde_json::to_string(&entry)?)?.execute().await?;
            }
        }
    }
    Ok(())
}

/// The registered torrent for an announced hash (v1 or truncated v2).
pub async fn registered_torrent(env: &Env, hash: &InfoHash) -> Result<Option<TorrentEntry>> {
    let kv = env.kv(KV_BINDING)?;
    if let Some(entry) = kv.get(&torrent_key(hash)).json::<TorrentEntry>().await? {
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
            Ok(Some(entry))
        }
        None => Ok(None),
    }
}

/// Whether the peer id starts with a banned client prefix.
pub async fn client_banned(env: &Env, peer_id: &PeerId) -> Result<bool> {
    let kv = env.kv(KV_BINDING)?;
    let prefixes: Vec<String> = kv.get(CLIENT_BANS_KEY).json().await?.unwrap_or_default();
    Ok(prefixes.iter().any(|p| !p.is_empty() && peer_id.0.starts_with(p.as_bytes())))
}

/// 16 or 32 random bytes from the platform's CSPRNG.
pub fn random<const N: usize>() -> Result<[u8; N]> {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).map_err(|e| Error::RustError(format!("no randomness: {e}")))?;
    Ok(b)
}
