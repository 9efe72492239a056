//! The ledger's bounded history: flags (refused or implausible credit, for
//! admins) and the ids of applied credit batches (which make a retried
//! flush count once) are kept for `FLAG_RETENTION` seconds. Both tables
//! are indexed by time (migration 0002), so pruning reads only what it
//! deletes. The statements are in `d1::ledger`.

use std::cell::Cell;

use worker::*;

use super::d1;
use crate::config::TrackerConfig;

/// An isolate prunes at most once per this many milliseconds.
const PRUNE_EVERY_MS: f64 = 3_600_000.0;

thread_local! {
    /// When this isolate last pruned (ms since the epoch; 0 = never).
    static LAST_PRUNE: Cell<f64> = const { Cell::new(0.0) };
}

/// Deletes flags and credit batch ids older than `FLAG_RETENTION`, at most
/// once an hour per isolate (other calls return `Ok(false)` at once, so any
/// regular private-mode path may call it). `Ok(true)`: it pruned.
pub async fn prune_ledger(env: &Env, config: &TrackerConfig) -> Result<bool> {
    let now_ms = Date::now().as_millis() as f64;
    if now_ms - LAST_PRUNE.with(Cell::get) < PRUNE_EVERY_MS {
        return Ok(false);
    }
    LAST_PRUNE.with(|c| c.set(now_ms));
    let cutoff = (now_ms / 1000.0).floor() - config.flag_retention as f64;
    let db = d1::open(env)?;
    let outcome = d1::ledger::prune(&db, cutoff).await;
    if let Err(e) = outcome {
        // Try again at the next call rather than in an hour.
        LAST_PRUNE.with(|c| c.set(0.0));
        return Err(e);
    }
    Ok(true)
}

/// Most flags one listing returns, and the default.
pub const FLAGS_MAX: u32 = 1000;
pub const FLAGS_DEFAULT: u32 = 100;

/// `?limit=` of the flags listing: absent is the default, else 1-`FLAGS_MAX`.
pub fn parse_limit(query: Option<&str>) -> std::result::Result<u32, String> {
    let mut limit = None;
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        if k != "limit" || limit.is_some() {
            return Err(format!("the only parameter is limit, once (1-{FLAGS_MAX})"));
        }
        let n = v.parse::<u32>().ok().filter(|n| (1..=FLAGS_MAX).contains(n));
        limit = Some(n.ok_or_else(|| format!("limit must be a whole number from 1 to {FLAGS_MAX}"))?);
    }
    Ok(limit.unwrap_or(FLAGS_DEFAULT))
}
