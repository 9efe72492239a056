//! One Durable Object per torrent, named by its info hash. It keeps the
//! swarm in memory, makes every membership change durable in SQLite before
//! answering (the output gate holds the answer until the write lands),
//! publishes changed counters beside the announce that changed them, and
//! uses its alarm to batch re-announce timestamps, expire silent peers and
//! publish what announces left (a change inside `PUBLISH_WINDOW`, a retry).
//!
//! Layout: this file is the object and its routes (operator actions,
//! WebTorrent peers, scrape counters); `announce.rs` the announce core
//! both ways in share; `load.rs` loading from SQLite; `sql.rs` running the
//! core's `StoreWrite`s as SQL; `upkeep.rs` the alarm (expiry, publishing,
//! setting the alarm); `credit.rs` the credit flush to the ledger shards;
//! `cost.rs` the cost counts the benchmarks read.

mod announce;
pub(super) mod cost;
mod credit;
mod load;
mod sql;
mod upkeep;

use std::cell::RefCell;

use worker::*;

use super::alarm::Alarm;
use super::{KV_BINDING, SWARM_COUNTERS_URL};
use crate::announce::AnnounceEvent;
use crate::config::TrackerConfig;
use crate::peer::{InfoHash, PeerId, PeerKey};
use crate::response;
use crate::scrape::counters_key;
use crate::swarm::shard::{decode_swarm, Own};
use crate::swarm::{PeerAnnounce, SwarmCounters, SwarmState};
use crate::webtorrent::SwarmWsRequest;

use cost::RowCost;
pub(super) use sql::{CountRow, OutboxRow, PeerRow};

#[durable_object(alarm)]
pub struct SwarmObject {
    state: State,
    env: Env,
    config: TrackerConfig,
    expose_costs: bool,
    inner: RefCell<Inner>,
}

struct Inner {
    swarm: SwarmState,
    loaded: bool,
    schema_ready: bool,
    /// The alarm we know is scheduled.
    alarm: Alarm,
    /// Rows read and written by this instance so far, alarms included.
    totals: RowCost,
    /// The publish an announce started, for `publishPending` (`announce.rs`).
    pending: Option<(InfoHash, SwarmCounters, Option<u32>)>,
}

impl DurableObject for SwarmObject {
    fn new(state: State, env: Env) -> Self {
        let (config, seed, expose_costs) = super::object_start(&env);
        SwarmObject {
            state,
            env,
            config,
            expose_costs,
            inner: RefCell::new(Inner {
                swarm: SwarmState::new(u64::from_le_bytes(seed)),
                loaded: false,
                schema_ready: false,
                alarm: Alarm::default(),
                totals: RowCost { instance: u32::from_le_bytes([seed[0], seed[1], seed[2], seed[3]]) | 1, ..RowCost::default() },
                pending: None,
            }),
        }
    }

    /// Everything but an announce, which the JS entry hands to
    /// `announceNow` / `announceLoading` (`announce.rs`).
    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let url = req.inner().url();
        if let Some(rest) = url.strip_prefix("https://swarm/admin/") {
            return self.admin(rest).await;
        }
        if let Some(hex) = url.strip_prefix(SWARM_COUNTERS_URL) {
            return self.counters(hex).await;
        }
        if let Some(hex) = url.strip_prefix(super::shard_object::SWARM_HOLDS_URL) {
            return self.holds(hex).await;
        }
        if url == super::shard_object::SWARM_ADOPT_URL {
            return self.adopt(&req.text().await?).await;
        }
        if super::raw_path(&url) == "/ws" {
            return self.websocket_peer(&mut req).await;
        }
        super::bencoded(response::failure("malformed swarm request"))
    }

    async fn alarm(&self) -> Result<Response> {
        self.run_alarm().await
    }
}

impl SwarmObject {
    /// Operator actions on this torrent: `block/<hex>` and `unblock/<hex>`.
    async fn admin(&self, rest: &str) -> Result<Response> {
        let (action, hex) = rest.split_once('/').unwrap_or((rest, ""));
        let Some(hash) = InfoHash::from_hex(hex) else {
            return Response::error("bad info hash", 400);
        };
        let now = now_secs();
        self.ensure_loaded(now, Some(hash)).await?;
        {
            let mut inner = self.inner.borrow_mut();
            let writes = match action {
                "block" => {
                    inner.swarm.info_hash.get_or_insert(hash);
                    inner.swarm.block(now)
                }
                "unblock" => inner.swarm.unblock(),
                _ => return Response::error("no such swarm action", 404),
            };
            self.apply(&mut inner, writes)?;
        }
        if action == "block" {
            // Scrape (and full scrape) stop listing it at once.
            let kv = self.env.kv(KV_BINDING)?;
            kv.delete(&counters_key(&hash)).await?;
            kv.delete(&crate::scrape::scrape_key(&hash, true)).await?;
            super::totals_shard::report(&self.env, &hash, SwarmCounters::default()).await?;
        }
        self.schedule_alarm(now).await?;
        Response::ok(action)
    }

    /// A gateway's request for a WebTorrent peer (JSON in, JSON out):
    /// announce, locate for an answer, or leave on a closed socket.
    async fn websocket_peer(&self, req: &mut Request) -> Result<Response> {
        let Ok(msg) = serde_json::from_slice::<SwarmWsRequest>(&req.bytes().await?) else {
            return Response::error("malformed websocket peer request", 400);
        };
        let hash = InfoHash(match &msg {
            SwarmWsRequest::Announce { info_hash, .. }
            | SwarmWsRequest::Locate { info_hash, .. }
            | SwarmWsRequest::Leave { info_hash, .. } => *info_hash,
        });
        let now = now_secs();
        let mut cost = self.ensure_loaded(now, Some(hash)).await?;
        let reply = {
            let mut inner = self.inner.borrow_mut();
            let (reply, writes) = match msg {
                SwarmWsRequest::Announce { peer_id, at, left, event, numwant, .. } => {
                    let event = AnnounceEvent::from_code(event).unwrap_or(AnnounceEvent::Update);
                    let peer_id = PeerId(peer_id);
                    let peer = PeerAnnounce { key: PeerKey::raw(&peer_id), peer_id, addr: at.to_addr(), left, event };
                    inner.swarm.ws_announce(hash, &peer, numwant as usize, now, &self.config)
                }
                SwarmWsRequest::Locate { peer_id, .. } => (inner.swarm.ws_locate(&PeerId(peer_id)), Vec::new()),
                SwarmWsRequest::Leave { peer_id, at, .. } => inner.swarm.ws_leave(&PeerId(peer_id), at),
            };
            cost.add(self.apply(&mut inner, writes)?);
            reply
        };
        cost.written += self.schedule_alarm(now).await?;
        cost.requests += 1;
        self.count(cost);
        Response::from_json(&reply)
    }

    /// A shard asks whether this object holds its torrent (`SWARM_SHARDS`):
    /// `holds`, or `free` and the completed count it left in KV.
    async fn holds(&self, hex: &str) -> Result<Response> {
        let Some(hash) = InfoHash::from_hex(hex) else { return Response::error("bad info hash", 400) };
        self.ensure_loaded(now_secs(), Some(hash)).await?;
        let inner = self.inner.borrow();
        let own = match inner.swarm.held() {
            true => Own::Holds,
            false => Own::Free { downloaded: inner.swarm.counters().downloaded },
        };
        Response::ok(own.to_text())
    }

    /// A swarm a shard moved here (hex of `shard::encode_swarm`): its peers
    /// join this one, written through like any join.
    async fn adopt(&self, hex: &str) -> Result<Response> {
        let bytes = hex::decode(hex.trim()).unwrap_or_default();
        let Some((row, peers)) = decode_swarm(&bytes) else { return Response::error("malformed swarm", 400) };
        let now = now_secs();
        let mut cost = self.ensure_loaded(now, Some(row.info_hash)).await?;
        {
            let mut inner = self.inner.borrow_mut();
            let writes = inner.swarm.adopt(row, peers, &self.config);
            cost.add(self.apply(&mut inner, writes)?);
        }
        cost.written += self.schedule_alarm(now).await?;
        self.count(cost);
        Response::ok("adopted")
    }

    fn count(&self, cost: RowCost) -> RowCost {
        let mut inner = self.inner.borrow_mut();
        inner.totals.add(cost);
        inner.totals
    }

    /// A scrape that found no counters in KV: this swarm's, cached in KV
    /// for `SCRAPE_CACHE` seconds (and kept fresh there meanwhile with
    /// `SCRAPE_FOLLOW`). A swarm that never existed answers zeros and
    /// stores nothing.
    async fn counters(&self, hex: &str) -> Result<Response> {
        let Some(hash) = InfoHash::from_hex(hex) else {
            return Response::error("bad info hash", 400);
        };
        let now = now_secs();
        let mut cost = self.ensure_loaded(now, Some(hash)).await?;
        let known = self.inner.borrow().swarm.known();
        let counters = if known {
            let (c, until) = {
                let mut inner = self.inner.borrow_mut();
                let (c, cache) = inner.swarm.scraped(now, &self.config);
                let until = match cache {
                    Some((until, write)) => {
                        cost.add(self.apply(&mut inner, write.into_iter().collect())?);
                        Some(until)
                    }
                    None => None,
                };
                (c, until)
            };
            if let Some(until) = until {
                self.cache_counters(&hash, c, until).await?;
                cost.kv_writes += 1;
            }
            c
        } else {
            SwarmCounters::default()
        };
        cost.requests += 1;
        self.count(cost);
        Response::ok(counters.to_kv())
    }
}

fn now_secs() -> u32 {
    // The static `Date.now()`: no Date object per announce.
    (js_sys::Date::now() / 1000.0) as u32
}
