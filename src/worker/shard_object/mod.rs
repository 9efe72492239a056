//! A shard of small public swarms (`SWARM_SHARDS`; the core is
//! `crate::swarm::shard`): one object, named `shard-NNNN`, for the swarms
//! of its share of info hashes, written behind in packed bucket rows.
//!
//! Layout: this file is the object and its routes (counters for a scrape,
//! moving a torrent out for WebTorrent or an operator, the sums for
//! `/stats`); `announce.rs` the announce the JS entry calls (`entry.mjs`,
//! class `ShardObject`); `store.rs` its SQLite tables and the alarm.

mod announce;
mod store;

use std::cell::RefCell;

use serde_json::json;
use worker::*;

use super::alarm::Alarm;
use super::swarm_object::cost::RowCost;
use super::{log, own_object, SWARM_COUNTERS_URL};
use crate::config::TrackerConfig;
use crate::peer::InfoHash;
use crate::swarm::shard::{Own, Shard, ShardWrite};

/// The shard's URL to move a torrent to its own object (then `<hex>`).
pub const SHARD_MOVE_URL: &str = "https://shard/move/";
/// The shard's URL for its sums (`?top=N`).
pub const SHARD_TOTALS_URL: &str = "https://shard/totals?top=";
/// The shard's state, for an operator (JSON): swarms in memory, emptied
/// ones kept as a count, torrents moved out, handoffs pending, changes
/// waiting to be written (0 or 1).
pub const SHARD_STATUS_URL: &str = "https://shard/status";
/// A torrent's own object: does it hold the torrent (`<hex>` follows)?
pub const SWARM_HOLDS_URL: &str = "https://swarm/holds/";
/// A torrent's own object: adopt a shard's swarm (the body, in hex).
pub const SWARM_ADOPT_URL: &str = "https://swarm/adopt";

#[durable_object(alarm)]
pub struct ShardObject {
    state: State,
    env: Env,
    config: TrackerConfig,
    expose_costs: bool,
    inner: RefCell<Inner>,
}

struct Inner {
    shard: Shard,
    loaded: bool,
    /// The alarm we know is scheduled; `None` until the announce that
    /// loads reads it (`ensure_ready`: an await, so not in
    /// `ensure_loaded`), or it runs or is set. Until then announces take
    /// the loading path, so a shard loaded again does not set an alarm
    /// that is already scheduled.
    alarm: Option<Alarm>,
    /// What this instance has cost so far.
    totals: RowCost,
}

impl Inner {
    /// An announce can be answered now: loaded, and the alarm known.
    fn ready(&self) -> bool {
        self.loaded && self.alarm.is_some()
    }
}

impl DurableObject for ShardObject {
    fn new(state: State, env: Env) -> Self {
        let (config, seed, expose_costs) = super::object_start(&env);
        let instance = u32::from_le_bytes([seed[0], seed[1], seed[2], seed[3]]) | 1;
        ShardObject {
            state,
            expose_costs,
            env,
            config,
            inner: RefCell::new(Inner {
                shard: Shard::new(u64::from_le_bytes(seed)),
                loaded: false,
                alarm: None,
                totals: RowCost { instance, ..RowCost::default() },
            }),
        }
    }

    /// Everything but an announce (`announce.rs`).
    async fn fetch(&self, req: Request) -> Result<Response> {
        let url = req.inner().url();
        let mut cost = self.ensure_loaded(now_secs())?;
        cost.requests += 1;
        let resp = if let Some(hex) = url.strip_prefix(SWARM_COUNTERS_URL) {
            self.counters(hex, &mut cost).await
        } else if let Some(hex) = url.strip_prefix(SHARD_MOVE_URL) {
            self.move_request(hex, &mut cost).await
        } else if let Some(top) = url.strip_prefix(SHARD_TOTALS_URL) {
            let top = top.parse().unwrap_or(crate::swarm_totals::CANDIDATES).min(crate::swarm_totals::CANDIDATES);
            let gauges = self.inner.borrow_mut().shard.gauges(top);
            Response::ok(crate::swarm_totals::gauges_text(&gauges))
        } else if url == SHARD_STATUS_URL {
            let [swarms, emptied, moved, handoffs, unwritten] = self.inner.borrow().shard.status();
            Response::from_json(&json!({ "swarms": swarms, "emptied": emptied, "moved": moved, "handoffs": handoffs, "unwritten": unwritten }))
        } else {
            Response::error("no such shard request", 404)
        };
        self.count(cost);
        resp
    }

    async fn alarm(&self) -> Result<Response> {
        self.run_alarm().await
    }
}

impl ShardObject {
    /// A scrape's counters: the shard's own (never in KV: the next scrape
    /// asks again, a request cheaper than a KV write), or, for a torrent
    /// that moved, its own object's (which caches them in KV).
    async fn counters(&self, hex: &str, cost: &mut RowCost) -> Result<Response> {
        let Some(hash) = InfoHash::from_hex(hex) else { return Response::error("bad info hash", 400) };
        self.settle(hash, cost).await?;
        let counters = self.inner.borrow().shard.counters(&hash);
        match counters {
            Some(c) => Response::ok(c.to_kv()),
            None => {
                // Its own object's answer, marked for the Worker to go there next time.
                let mut own = own_object(&self.env, &hash)?.fetch_with_str(&format!("{SWARM_COUNTERS_URL}{hex}")).await?;
                let mut moved = Response::ok(own.text().await?)?;
                moved.headers_mut().set("x-moved", "1")?;
                Ok(moved)
            }
        }
    }

    /// Moves a torrent to its own object (WebTorrent peers and operator
    /// actions live there), waiting for the handoff: `200` once that object
    /// has the swarm (or the torrent was there already).
    async fn move_request(&self, hex: &str, cost: &mut RowCost) -> Result<Response> {
        let Some(hash) = InfoHash::from_hex(hex) else { return Response::error("bad info hash", 400) };
        self.settle(hash, cost).await?;
        self.move_out(hash, cost).await?;
        if self.inner.borrow().shard.handoffs().iter().any(|(h, _)| *h == hash) {
            return Response::error("handoff pending, retry", 503);
        }
        Response::ok("moved")
    }

    /// A torrent this shard has not seen: asks its own object whether it
    /// holds it (once; the answer is kept).
    async fn settle(&self, hash: InfoHash, cost: &mut RowCost) -> Result<()> {
        {
            let shard = &self.inner.borrow().shard;
            // A full shard leaves torrents it has not seen with their own objects.
            if shard.knows(&hash) || !shard.takes_new() {
                return Ok(());
            }
        }
        let mut resp = own_object(&self.env, &hash)?.fetch_with_str(&format!("{SWARM_HOLDS_URL}{}", hash.to_hex())).await?;
        let own = Own::from_text(&resp.text().await?).ok_or_else(|| Error::RustError("unreadable holds answer".into()))?;
        cost.object_requests += 1;
        let write = self.inner.borrow_mut().shard.settle(hash, own, now_secs());
        self.run(write.into_iter().collect(), cost)?;
        cost.written += self.schedule_alarm(now_secs()).await?;
        Ok(())
    }

    /// Moves a torrent out (recorded before anything else) and hands its
    /// swarm to its own object; a failed handoff is retried by the alarm.
    /// A torrent that moved already is left to its handoff under way (or
    /// the alarm's): several announces at once may each find it due.
    async fn move_out(&self, hash: InfoHash, cost: &mut RowCost) -> Result<()> {
        let now = now_secs();
        let Some(write) = self.inner.borrow_mut().shard.move_out(hash, now) else { return Ok(()) };
        self.run(vec![write], cost)?;
        let pending = self.inner.borrow().shard.handoffs().into_iter().find(|(h, _)| *h == hash);
        if let Some((hash, swarm)) = pending {
            self.hand_off(hash, &swarm, cost).await;
        }
        let flushed = self.inner.borrow_mut().shard.flush(now, &self.config, true);
        self.run(flushed, cost)?;
        cost.written += self.schedule_alarm(now).await?;
        Ok(())
    }

    /// Sends a moved swarm to its own object; logged if that fails.
    async fn hand_off(&self, hash: InfoHash, swarm: &[u8], cost: &mut RowCost) {
        cost.object_requests += 1;
        let sent = async {
            let body = hex::encode(swarm);
            let req = super::internal_request(SWARM_ADOPT_URL, "POST", Some(&body), None)?;
            let resp = own_object(&self.env, &hash)?.fetch_with_request(req).await?;
            match resp.status_code() {
                200 => Ok(()),
                status => Err(Error::RustError(format!("adopt answered {status}"))),
            }
        };
        match sent.await {
            Ok(()) => {
                let write = self.inner.borrow_mut().shard.handed_off(hash);
                if let Err(e) = self.run(write.into_iter().collect(), cost) {
                    log::error("handoff_record_failed", json!({ "info_hash": hash.to_hex(), "error": e.to_string() }));
                }
                log::info("swarm_moved", json!({ "info_hash": hash.to_hex() }));
            }
            Err(e) => log::warn("handoff_failed", json!({ "info_hash": hash.to_hex(), "error": e.to_string() })),
        }
    }

    fn count(&self, cost: RowCost) -> RowCost {
        let mut inner = self.inner.borrow_mut();
        inner.totals.add(cost);
        inner.totals
    }

    /// Runs the core's writes (SQLite, synchronous).
    fn run(&self, writes: Vec<ShardWrite>, cost: &mut RowCost) -> Result<()> {
        for w in writes {
            store::write(&self.state.storage().sql(), w, cost)?;
        }
        Ok(())
    }
}

fn now_secs() -> u32 {
    (js_sys::Date::now() / 1000.0) as u32
}
