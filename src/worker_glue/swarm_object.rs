//! One Durable Object per torrent, named by its info hash. It keeps the
//! swarm in memory, makes every membership change durable in SQLite before
//! answering (the output gate holds the answer until the write lands), and
//! uses its alarm to batch re-announce timestamps, expire silent peers and
//! publish scrape counters to KV.

use std::cell::RefCell;

use worker::wasm_bindgen::prelude::*;
use worker::*;

use serde_json::json;

use super::{config_from, log, FAILURE_HEADER, KV_BINDING, ROWS_READ_HEADER, ROWS_WRITTEN_HEADER, SWARM_COUNTERS_URL, USAGE_HEADER};
use super::private;
use crate::config::TrackerConfig;
use crate::peer::{InfoHash, PeerId, PeerKey};
use crate::response;
use crate::scrape::counters_key;
use crate::stats::Failure;
use crate::swarm::ledger::{CreditBatch, SessionRecord};
use crate::swarm::storage::{self as store, StoreWrite, SwarmRow};
use crate::swarm::SwarmState;
use crate::swarm::SwarmCounters;
use crate::announce::AnnounceEvent;
use crate::swarm::PeerAnnounce;
use crate::webtorrent::SwarmWsRequest;
use crate::wire::SwarmAnnounce;

/// KV key prefix of an emptied swarm's final counters (its completed count
/// outlives its storage there).
const FINAL_PREFIX: &str = "final:";

/// If a KV publish fails, try again this much later (seconds).
const PUBLISH_RETRY: u32 = 10;

#[durable_object]
pub struct SwarmObject {
    state: State,
    env: Env,
    config: TrackerConfig,
    expose_costs: bool,
    inner: RefCell<Inner>,
    /// `announceAfter`'s text for the last `announceNow`.
    after: RefCell<String>,
}

struct Inner {
    swarm: SwarmState,
    loaded: bool,
    schema_ready: bool,
    /// The alarm we know is scheduled (ms), so we set it only when it must move earlier.
    alarm_at: Option<u64>,
    /// Rows read and written by this instance so far, alarms included.
    totals: RowCost,
}

/// Billable work done by this object: SQLite rows (as SQLite reports
/// them; setting an alarm counts as a row written), alarm invocations, KV
/// writes and D1 rows. Reported with `EXPOSE_COSTS` for the benchmarks.
#[derive(Default, Clone, Copy, serde::Serialize)]
struct RowCost {
    read: usize,
    written: usize,
    requests: usize,
    alarms: usize,
    kv_writes: usize,
    /// Reports to a swarm-totals shard (a Durable Object request each).
    stats_reports: usize,
    /// Wall-clock ms spent in alarms (duration billing; the clock moves on I/O).
    alarm_ms: f64,
    kv_reads: usize,
    d1_rows_read: usize,
    d1_rows_written: usize,
    /// Deliveries to a ledger shard (a Durable Object request each).
    ledger_requests: usize,
    /// Which in-memory instance counted these (a restart starts from zero).
    instance: u32,
}

impl DurableObject for SwarmObject {
    fn new(state: State, env: Env) -> Self {
        let config = config_from(&env).unwrap_or_else(|e| {
            log::error("config_invalid", json!({ "error": e.to_string(), "using": "defaults" }));
            TrackerConfig::default()
        });
        let mut seed = [0u8; 8];
        // Without entropy the selection is still valid, just predictable.
        let _ = getrandom::fill(&mut seed);
        let expose_costs = super::expose_costs(&env);
        SwarmObject {
            state,
            env,
            config,
            expose_costs,
            inner: RefCell::new(Inner {
                swarm: SwarmState::new(u64::from_le_bytes(seed)),
                loaded: false,
                schema_ready: false,
                alarm_at: None,
                totals: RowCost { instance: u32::from_le_bytes([seed[0], seed[1], seed[2], seed[3]]) | 1, ..RowCost::default() },
            }),
            after: RefCell::new(String::new()),
        }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let url = req.inner().url();
        if let Some(rest) = url.strip_prefix("https://swarm/admin/") {
            return self.admin(rest).await;
        }
        if let Some(hex) = url.strip_prefix(SWARM_COUNTERS_URL) {
            return self.counters(hex).await;
        }
        if super::raw_path(&url) == "/ws" {
            return self.websocket_peer(&mut req).await;
        }
        let Some(msg) = decode_message(&url) else {
            return super::bencoded(response::failure("malformed swarm request"));
        };
        let now = now_secs();
        let cost = self.ensure_loaded(now, Some(msg.info_hash)).await?;
        let (body, failure, mut cost) = self.answer(&msg, now, cost)?;
        cost.written += self.schedule_alarm(now).await?;
        let mut resp = super::bencoded(body)?;
        for (name, value) in self.finish(failure, cost) {
            resp.headers_mut().set(&name, &value)?;
        }
        Ok(resp)
    }

    async fn alarm(&self) -> Result<Response> {
        let started = js_sys::Date::now();
        let now = now_secs();
        self.inner.borrow_mut().alarm_at = None;
        let mut cost = self.ensure_loaded(now, None).await?;
        cost.alarms += 1;
        let maintenance = {
            let mut inner = self.inner.borrow_mut();
            let m = inner.swarm.maintain(now, &self.config);
            cost.add(self.apply(&mut inner, m.writes.clone())?);
            m
        };
        let mut retry = false;
        if self.inner.borrow().swarm.credit_flush_due(now) {
            match self.flush_credits(&mut cost).await {
                Ok(()) => {}
                Err(e) => {
                    log::error("credit_flush_failed", json!({ "error": e.to_string(), "retry_in": PUBLISH_RETRY }));
                    retry = true;
                }
            }
        }
        let mut free = maintenance.free_storage && self.inner.borrow().swarm.can_free();
        if let Some((hash, counters)) = maintenance.publish {
            // An emptied swarm also leaves its final counters (`final:` key).
            cost.kv_writes += maintenance.kv.is_some() as usize + maintenance.final_counters as usize;
            cost.stats_reports += 1;
            match self.publish(&hash, counters, maintenance.kv, maintenance.final_counters).await {
                Ok(()) => {
                    let mut inner = self.inner.borrow_mut();
                    if let Some(w) = inner.swarm.published(counters, now, maintenance.kv.is_some()) {
                        cost.add(self.apply(&mut inner, vec![w])?);
                    }
                    // Checked after the await: a peer may have joined meanwhile.
                    free = inner.swarm.can_free();
                }
                Err(e) => {
                    log::warn("publish_failed", json!({ "info_hash": hash.to_hex(), "error": e.to_string(), "retry_in": PUBLISH_RETRY }));
                    retry = true;
                }
            }
        }
        if free {
            self.free_storage().await?;
        } else if retry {
            cost.written += self.set_alarm_at(now + PUBLISH_RETRY).await?;
        } else {
            cost.written += self.schedule_alarm(now).await?;
        }
        cost.alarm_ms += js_sys::Date::now() - started;
        self.count(cost);
        Response::ok("")
    }
}

/// The announce path without an await, for the JS entry (`entry.mjs`):
/// once the swarm is in memory an announce needs no I/O but SQLite, which
/// is synchronous, so worker-rs's request wrappers and future queue are
/// skipped. The first announce after a wake-up still goes through `fetch`.
#[wasm_bindgen(wasm_bindgen = ::worker::wasm_bindgen)]
impl SwarmObject {
    /// The answer's body after one byte, or `undefined` when `fetch` must
    /// take the request (swarm not loaded yet, or a malformed message). If
    /// that byte is 1, `announceAfter` has headers or an alarm to set.
    #[wasm_bindgen(js_name = announceNow)]
    pub fn announce_now(&self, url: &str) -> std::result::Result<Option<Vec<u8>>, JsValue> {
        if !self.inner.borrow().loaded {
            return Ok(None);
        }
        let Some(msg) = decode_message(url) else { return Ok(None) };
        let now = now_secs();
        let (body, failure, mut cost) = self.answer(&msg, now, RowCost::default()).map_err(JsValue::from)?;
        let mut after = String::new();
        if let Some(at_ms) = self.alarm_to_set(now) {
            cost.written += 1;
            after.push_str(&format!("alarm\t{at_ms}\n"));
        }
        for (name, value) in self.finish(failure, cost) {
            after.push_str(&format!("{name}\t{value}\n"));
        }
        // The first byte says whether `announceAfter` has anything.
        let mut out = Vec::with_capacity(body.len() + 1);
        out.push(!after.is_empty() as u8);
        out.extend_from_slice(&body);
        *self.after.borrow_mut() = after;
        Ok(Some(out))
    }

    /// What goes with the last `announceNow` answer, a line each:
    /// `alarm<TAB>ms` (the alarm to set before answering) and
    /// `header<TAB>value`. Usually empty.
    #[wasm_bindgen(js_name = announceAfter)]
    pub fn announce_after(&self) -> String {
        std::mem::take(&mut *self.after.borrow_mut())
    }
}

fn decode_message(url: &str) -> Option<SwarmAnnounce> {
    let hex = url.strip_prefix(super::SWARM_ANNOUNCE_URL)?;
    let mut raw = [0u8; crate::wire::ENCODED_LEN];
    hex::decode_to_slice(hex, &mut raw).ok()?;
    SwarmAnnounce::decode(&raw)
}

impl SwarmObject {
    /// The announce itself, once the swarm is in memory: update, make it
    /// durable, answer. Returns the body, its failure (if it is one) and
    /// the rows it cost.
    fn answer(&self, msg: &SwarmAnnounce, now: u32, mut cost: RowCost) -> Result<(Vec<u8>, Option<Failure>, RowCost)> {
        let (body, failure) = {
            let mut inner = self.inner.borrow_mut();
            let (answer, writes) = inner.swarm.announce(msg, now, &self.config);
            // Encoded here, once: the answer borrows its peers from the swarm.
            let encoded = (response::encode_announce(&answer), answer.as_ref().err().copied());
            cost.add(self.apply(&mut inner, writes)?);
            encoded
        };
        cost.requests += 1;
        Ok((body, failure, cost))
    }

    /// Counts the request's cost; the headers the answer carries: its
    /// failure reason, and (with `EXPOSE_COSTS`) its cost and the totals.
    fn finish(&self, failure: Option<Failure>, cost: RowCost) -> Vec<(String, String)> {
        let totals = self.count(cost);
        let mut headers = Vec::new();
        if let Some(f) = failure {
            headers.push((FAILURE_HEADER.to_string(), f.label().to_string()));
        }
        if self.expose_costs {
            headers.push((ROWS_READ_HEADER.to_string(), cost.read.to_string()));
            headers.push((ROWS_WRITTEN_HEADER.to_string(), cost.written.to_string()));
            headers.push((format!("{ROWS_READ_HEADER}-total"), totals.read.to_string()));
            headers.push((format!("{ROWS_WRITTEN_HEADER}-total"), totals.written.to_string()));
            headers.push((USAGE_HEADER.to_string(), serde_json::to_string(&totals).unwrap_or_default()));
        }
        headers
    }

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
            self.env.kv(KV_BINDING)?.delete(&counters_key(&hash)).await?;
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

    fn count(&self, cost: RowCost) -> RowCost {
        let mut inner = self.inner.borrow_mut();
        inner.totals.add(cost);
        inner.totals
    }

    /// Loads the swarm from storage the first time this instance needs it.
    /// `hash` is the torrent when the caller knows it (an announce does).
    async fn ensure_loaded(&self, now: u32, hash: Option<InfoHash>) -> Result<RowCost> {
        let mut cost = RowCost::default();
        if self.inner.borrow().loaded {
            return Ok(cost);
        }
        let sql = self.state.storage().sql();
        self.ensure_schema(&mut self.inner.borrow_mut())?;
        let row = read_swarm_row(&sql, &mut cost)?;
        let peers = sql.exec("SELECT id, rec FROM peers", None)?;
        let peer_rows: Vec<PeerRow> = peers.to_array()?;
        cost.read += peers.rows_read();
        let ws_peers = sql.exec("SELECT id, rec FROM ws_peers", None)?;
        let ws_rows: Vec<PeerRow> = ws_peers.to_array()?;
        cost.read += ws_peers.rows_read();
        let touches = sql.exec("SELECT at, ids FROM touches", None)?;
        let touch_rows: Vec<TouchRow> = touches.to_array()?;
        cost.read += touches.rows_read();
        // (Read as `MarksRow`: one blob column; a row type of its own costs wasm size.)
        let ledger = sql.exec("SELECT recs AS marks FROM ledger", None)?;
        let ledger_rows: Vec<MarksRow> = ledger.to_array()?;
        cost.read += ledger.rows_read();
        let (legacy_sessions, legacy_marks) = read_legacy_sessions(&sql, &mut cost)?;
        let blocked = sql.exec("SELECT COUNT(*) AS n FROM blocked", None)?;
        let is_blocked = blocked.to_array::<CountRow>()?.first().map(|r| r.n > 0.0).unwrap_or(false);
        cost.read += blocked.rows_read();
        let wanted = sql.exec("SELECT COALESCE(MAX(until), 0) AS n FROM scrape_cache", None)?;
        let scrape_wanted = wanted.to_array::<CountRow>()?.first().map(|r| r.n as u32).unwrap_or(0);
        cost.read += wanted.rows_read();
        let pending = sql.exec("SELECT COUNT(*) AS n FROM outbox", None)?;
        let outbox_pending = pending.to_array::<CountRow>()?.first().map(|r| r.n > 0.0).unwrap_or(false);
        cost.read += pending.rows_read();
        let resume = if row.is_none() && peer_rows.is_empty() && ws_rows.is_empty() && ledger_rows.is_empty()
            && legacy_sessions.is_empty()
            && !is_blocked
        {
            // Storage was freed (or never used): the completed count lives on in KV.
            match hash {
                Some(hash) => {
                cost.kv_reads += 1;
                self.read_published(&hash).await
            }
                None => None,
            }
        } else {
            None
        };
        let alarm_at = self.state.storage().get_alarm().await?.map(|ms| ms as u64);
        let mut inner = self.inner.borrow_mut();
        if inner.loaded {
            // Another request loaded it while we awaited.
            return Ok(cost);
        }
        let peers = peer_rows.iter().filter_map(|r| store::decode_peer(&r.id, &r.rec));
        let touches = touch_rows.into_iter().map(|t| (t.at as u32, t.ids));
        inner.swarm.restore_ws(ws_rows.iter().filter_map(|r| store::decode_peer(&r.id, &r.rec)));
        let mut deletes = inner.swarm.load(row, peers, touches, now, &self.config);
        inner.swarm.load_scrape_wanted(scrape_wanted);
        inner.swarm.load_ledger(ledger_rows.iter().map(|r| r.marks.as_slice()), outbox_pending, now);
        if !legacy_sessions.is_empty() || !legacy_marks.is_empty() {
            let sessions = legacy_sessions.into_iter().filter_map(|r| {
                let id = PeerId(r.id.as_slice().try_into().ok()?);
                Some((id, SessionRecord::decode(&r.rec)?))
            });
            inner.swarm.load_legacy_sessions(sessions, &legacy_marks, now);
        }
        if let Some(c) = resume {
            if let Some(w) = inner.swarm.resume_from(c.0, c.1, now, &self.config) {
                deletes.push(w);
            }
        }
        inner.swarm.blocked = is_blocked;
        // Debug: a quiet torrent's object is evicted between announces, so
        // at info level this would be a line per announce.
        log::debug(
            "swarm_start",
            json!({
                "info_hash": inner.swarm.info_hash.or(hash).map(|h| h.to_hex()),
                "peers": inner.swarm.swarm.len(),
                "resumed_from_kv": resume.is_some(),
            }),
        );
        inner.alarm_at = alarm_at;
        inner.loaded = true;
        cost.add(self.apply(&mut inner, deletes)?);
        Ok(cost)
    }

    fn ensure_schema(&self, inner: &mut Inner) -> Result<()> {
        if !inner.schema_ready {
            self.state.storage().sql().exec(store::SCHEMA, None)?;
            inner.schema_ready = true;
        }
        Ok(())
    }

    /// Runs the writes the core asked for; they are durable before any answer leaves.
    fn apply(&self, inner: &mut Inner, writes: Vec<StoreWrite>) -> Result<RowCost> {
        let mut cost = RowCost::default();
        if writes.is_empty() {
            return Ok(cost);
        }
        self.ensure_schema(inner)?;
        let sql = self.state.storage().sql();
        for w in writes {
            let cursor = match w {
                StoreWrite::SessionChunk { chunk, rows, .. } => {
                    let parts = rows.len() as i64;
                    for (part, recs) in rows.into_iter().enumerate() {
                        let c = sql.exec(
                            "INSERT INTO ledger (chunk, part, recs) VALUES (?, ?, ?) \
                             ON CONFLICT(chunk, part) DO UPDATE SET recs = excluded.recs",
                            vec![(chunk as i64).into(), (part as i64).into(), recs.into()],
                        )?;
                        cost.read += c.rows_read();
                        cost.written += c.rows_written();
                    }
                    sql.exec("DELETE FROM ledger WHERE chunk = ? AND part >= ?", vec![(chunk as i64).into(), parts.into()])?
                }
                StoreWrite::DropSessionChunksFrom(from) => {
                    sql.exec("DELETE FROM ledger WHERE chunk >= ?", vec![(from as i64).into()])?
                }
                StoreWrite::DropLegacySessions => {
                    sql.exec("DROP TABLE IF EXISTS sessions", None)?;
                    sql.exec("DROP TABLE IF EXISTS flushed", None)?
                }
                StoreWrite::UpsertPeer { id, rec } => sql.exec(
                    "INSERT INTO peers (id, rec) VALUES (?, ?) ON CONFLICT(id) DO UPDATE SET rec = excluded.rec",
                    vec![id.0.to_vec().into(), rec.into()],
                )?,
                StoreWrite::DeletePeer(id) => {
                    sql.exec("DELETE FROM peers WHERE id = ?", vec![id.0.to_vec().into()])?
                }
                StoreWrite::Touches { slot, at, ids } => {
                    let existing = sql.exec("SELECT at, ids FROM touches WHERE slot = ?", vec![(slot as i64).into()])?;
                    let old: Vec<TouchRow> = existing.to_array()?;
                    cost.read += existing.rows_read();
                    let ids = store::merge_touch_row(
                        old.into_iter().next().map(|t| (t.at as u32, t.ids)),
                        at,
                        ids,
                        &self.config,
                    );
                    sql.exec(
                        "INSERT INTO touches (slot, at, ids) VALUES (?, ?, ?) \
                         ON CONFLICT(slot) DO UPDATE SET at = excluded.at, ids = excluded.ids",
                        vec![(slot as i64).into(), (at as i64).into(), ids.into()],
                    )?
                }
                StoreWrite::Blocked(Some(at)) => sql.exec(
                    "INSERT INTO blocked (k, at) VALUES (0, ?) ON CONFLICT(k) DO UPDATE SET at = excluded.at",
                    vec![(at as i64).into()],
                )?,
                StoreWrite::Blocked(None) => sql.exec("DELETE FROM blocked", None)?,
                StoreWrite::ScrapeWanted(until) => sql.exec(
                    "INSERT INTO scrape_cache (k, until) VALUES (0, ?) ON CONFLICT(k) DO UPDATE SET until = excluded.until",
                    vec![(until as i64).into()],
                )?,
                StoreWrite::UpsertWsPeer { id, rec } => sql.exec(
                    "INSERT INTO ws_peers (id, rec) VALUES (?, ?) ON CONFLICT(id) DO UPDATE SET rec = excluded.rec",
                    vec![id.0.to_vec().into(), rec.into()],
                )?,
                StoreWrite::DeleteWsPeer(id) => {
                    sql.exec("DELETE FROM ws_peers WHERE id = ?", vec![id.0.to_vec().into()])?
                }
                StoreWrite::SwarmRow(r) => {
                    let (c, i, d) = match r.published {
                        Some(p) => (Some(p.complete as i64), Some(p.incomplete as i64), Some(p.downloaded as i64)),
                        None => (None, None, None),
                    };
                    sql.exec(
                        "INSERT INTO swarm (k, info_hash, downloaded, pub_complete, pub_incomplete, pub_downloaded, published_at) \
                         VALUES (0, ?, ?, ?, ?, ?, ?) ON CONFLICT(k) DO UPDATE SET info_hash = excluded.info_hash, \
                         downloaded = excluded.downloaded, pub_complete = excluded.pub_complete, \
                         pub_incomplete = excluded.pub_incomplete, pub_downloaded = excluded.pub_downloaded, \
                         published_at = excluded.published_at",
                        vec![
                            r.info_hash.0.to_vec().into(),
                            (r.downloaded as i64).into(),
                            c.into(),
                            i.into(),
                            d.into(),
                            (r.published_at as i64).into(),
                        ],
                    )?
                }
            };
            cost.read += cursor.rows_read();
            cost.written += cursor.rows_written();
        }
        Ok(cost)
    }

    /// Moves the alarm earlier if the swarm needs it sooner; returns rows
    /// written (setting an alarm is billed as one).
    async fn schedule_alarm(&self, now: u32) -> Result<usize> {
        let next = self.inner.borrow().swarm.next_alarm(now, &self.config);
        match next {
            Some(at) => self.set_alarm_at(at).await,
            None => Ok(0),
        }
    }

    /// The alarm time (ms) to set if the swarm needs its alarm earlier
    /// than the one scheduled; recorded as scheduled.
    fn alarm_to_set(&self, now: u32) -> Option<u64> {
        let at = self.inner.borrow().swarm.next_alarm(now, &self.config)?;
        self.move_alarm_to(at)
    }

    fn move_alarm_to(&self, at_secs: u32) -> Option<u64> {
        let at_ms = at_secs as u64 * 1000;
        let mut inner = self.inner.borrow_mut();
        if matches!(inner.alarm_at, Some(c) if c <= at_ms) {
            return None;
        }
        inner.alarm_at = Some(at_ms);
        Some(at_ms)
    }

    async fn set_alarm_at(&self, at_secs: u32) -> Result<usize> {
        let Some(at_ms) = self.move_alarm_to(at_secs) else { return Ok(0) };
        let when = ScheduledTime::new(js_sys::Date::new(&(at_ms as f64).into()));
        self.state.storage().set_alarm(when).await?;
        Ok(1)
    }

    /// Delivers pending credits to the swarm's ledger shard exactly once
    /// (`credit_ledger.rs`). Unflushed credit first moves into an outbox
    /// batch with a random id, in the same local step that records it as
    /// taken (the chunks with the new marks). Batches go oldest first and
    /// the first failure stops the round, so the shard, which remembers
    /// the last id it applied from this swarm, knows a batch sent again
    /// after a lost answer. The outbox row goes once the shard has it.
    async fn flush_credits(&self, cost: &mut RowCost) -> Result<()> {
        let sql = self.state.storage().sql();
        {
            let mut inner = self.inner.borrow_mut();
            self.ensure_schema(&mut inner)?;
            if let Some((batch, marks)) = inner.swarm.take_credit_batch(now_secs()) {
                let id = hex::encode(private::random::<16>()?);
                let c = sql.exec(
                    "INSERT INTO outbox (id, batch) VALUES (?, ?)",
                    vec![id.into(), batch.to_json().into()],
                )?;
                cost.written += c.rows_written();
                // No await in between: one atomic step with the outbox row.
                let c = self.apply(&mut *inner, marks)?;
                cost.read += c.read;
                cost.written += c.written;
            }
        }
        let outbox = sql.exec("SELECT id, batch FROM outbox ORDER BY rowid", None)?;
        let batches: Vec<OutboxRow> = outbox.to_array()?;
        cost.read += outbox.rows_read();
        let hash = self.inner.borrow().swarm.info_hash.ok_or_else(|| Error::RustError("credit in a swarm with no info hash".into()))?;
        for b in batches {
            let batch = CreditBatch::parse(&b.batch).unwrap_or_else(|| {
                // Not ours to guess at: logged, and cleared like a sent one.
                log::error("outbox_row_unreadable", json!({ "batch": b.id }));
                CreditBatch::default()
            });
            let delivery = crate::credit_ledger::Delivery { id: b.id, hash, batch };
            let shard = super::ledger_shard::deliver(&self.env, &self.config, &delivery).await?;
            cost.add_ledger(&shard);
            let c = sql.exec("DELETE FROM outbox WHERE id = ?", vec![delivery.id.into()])?;
            cost.written += c.rows_written();
        }
        self.inner.borrow_mut().swarm.outbox_pending = false;
        Ok(())
    }

    /// Publishes counters to the totals behind `/stats` (idempotent:
    /// absolute counters) and, as [`store::Maintenance::kv`] says, to KV.
    async fn publish(&self, hash: &InfoHash, counters: SwarmCounters, kv_until: Option<u32>, last: bool) -> Result<()> {
        if let Some(until) = kv_until {
            self.cache_counters(hash, counters, until).await?;
        }
        if last {
            let kv = self.env.kv(KV_BINDING)?;
            kv.put(&format!("{FINAL_PREFIX}{}", hash.to_hex()), counters.to_kv())?.execute().await?;
        }
        // Private mode: the site's lists sort by the copy in D1 (logged, not
        // fatal, if it fails: the next publish writes again).
        if self.config.mode == crate::config::TrackerMode::Private {
            private::mirror_counts(&self.env, hash, counters).await;
        }
        super::totals_shard::report(&self.env, hash, counters).await
    }

    /// Writes the scrape cache's KV entry: for good (`until` 0), or until then.
    async fn cache_counters(&self, hash: &InfoHash, counters: SwarmCounters, until: u32) -> Result<()> {
        let kv = self.env.kv(KV_BINDING)?;
        let text = counters.to_kv();
        let put = kv.put(&counters_key(hash), text.clone())?.metadata(text)?;
        // KV refuses an expiration under 60 s away when the put reaches it;
        // `now_secs` is up to 1 s behind the clock, so 2 s of margin.
        let put = if until > 0 { put.expiration(until.max(now_secs() + 62) as u64) } else { put };
        put.execute().await?;
        Ok(())
    }

    /// A scrape that found no counters in KV: this swarm's, cached in KV
    /// for `SCRAPE_CACHE` seconds and kept fresh there meanwhile. A swarm
    /// that never existed answers zeros and stores nothing.
    async fn counters(&self, hex: &str) -> Result<Response> {
        let Some(hash) = InfoHash::from_hex(hex) else {
            return Response::error("bad info hash", 400);
        };
        let now = now_secs();
        let mut cost = self.ensure_loaded(now, Some(hash)).await?;
        let known = self.inner.borrow().swarm.known().then_some(());
        let counters = match known {
            Some(()) => {
                let (c, cache) = {
                    let mut inner = self.inner.borrow_mut();
                    let (c, cache) = inner.swarm.scraped(now, &self.config);
                    let Some((until, write)) = cache else { return Response::ok(c.to_kv()) };
                    cost.add(self.apply(&mut inner, vec![write])?);
                    (c, until)
                };
                self.cache_counters(&hash, c, cache).await?;
                cost.kv_writes += 1;
                c
            }
            None => SwarmCounters::default(),
        };
        cost.requests += 1;
        self.count(cost);
        Response::ok(counters.to_kv())
    }

    /// The final counters an emptied swarm left in KV (`final:`), or, from
    /// versions before it, in its scrape key (`true`: legacy).
    async fn read_published(&self, hash: &InfoHash) -> Option<(SwarmCounters, bool)> {
        let kv = self.env.kv(KV_BINDING).ok()?;
        for (key, legacy) in [(format!("{FINAL_PREFIX}{}", hash.to_hex()), false), (counters_key(hash), true)] {
            if let Some(text) = kv.get(&key).text().await.ok().flatten() {
                return SwarmCounters::from_kv(&text).map(|c| (c, legacy));
            }
        }
        None
    }

    async fn free_storage(&self) -> Result<()> {
        log::info("swarm_free", json!({ "info_hash": self.inner.borrow().swarm.info_hash.map(|h| h.to_hex()) }));
        {
            let mut inner = self.inner.borrow_mut();
            inner.swarm.freed();
            inner.schema_ready = false;
            inner.alarm_at = None;
        }
        self.state.storage().delete_alarm().await?;
        self.state.storage().delete_all().await?;
        Ok(())
    }
}

impl RowCost {
    fn add(&mut self, other: RowCost) {
        self.read += other.read;
        self.written += other.written;
        self.requests += other.requests;
        self.alarms += other.alarms;
        self.kv_writes += other.kv_writes;
        self.stats_reports += other.stats_reports;
        self.alarm_ms += other.alarm_ms;
        self.kv_reads += other.kv_reads;
        self.d1_rows_read += other.d1_rows_read;
        self.d1_rows_written += other.d1_rows_written;
        self.ledger_requests += other.ledger_requests;
        self.instance = self.instance.max(other.instance);
    }

    /// A delivery to the ledger shard, and the shard's costs it reported:
    /// the shard's work is the swarms' credit, so it is counted as theirs.
    fn add_ledger(&mut self, shard: &super::ledger_shard::Usage) {
        self.ledger_requests += 1;
        self.read += shard.read;
        self.written += shard.written;
        self.alarms += shard.alarms;
        self.alarm_ms += shard.alarm_ms;
        self.kv_reads += shard.kv_reads;
        self.kv_writes += shard.kv_writes;
        self.d1_rows_read += shard.d1_rows_read;
        self.d1_rows_written += shard.d1_rows_written;
    }
}

/// (Also the totals shards' row: one row type costs less wasm than two.)
#[derive(serde::Deserialize)]
pub(super) struct PeerRow {
    #[serde(with = "serde_bytes")]
    pub(super) id: Vec<u8>,
    #[serde(with = "serde_bytes")]
    pub(super) rec: Vec<u8>,
}

#[derive(serde::Deserialize)]
struct MarksRow {
    #[serde(with = "serde_bytes")]
    marks: Vec<u8>,
}


/// Sessions as versions before the `ledger` chunks stored them (a row each,
/// plus one marks row), if those tables are still there.
fn read_legacy_sessions(sql: &SqlStorage, cost: &mut RowCost) -> Result<(Vec<PeerRow>, Vec<u8>)> {
    let exists = |table: &str| -> Result<bool> {
        let c = sql.exec("SELECT COUNT(*) AS n FROM sqlite_master WHERE type = 'table' AND name = ?", vec![table.into()])?;
        Ok(c.to_array::<CountRow>()?.first().is_some_and(|r| r.n > 0.0))
    };
    let mut sessions = Vec::new();
    let mut marks = Vec::new();
    if exists("sessions")? {
        let c = sql.exec("SELECT id, rec FROM sessions", None)?;
        sessions = c.to_array()?;
        cost.read += c.rows_read();
    }
    if exists("flushed")? {
        let c = sql.exec("SELECT marks FROM flushed WHERE k = 0", None)?;
        marks = c.to_array::<MarksRow>()?.into_iter().next().map(|m| m.marks).unwrap_or_default();
        cost.read += c.rows_read();
    }
    Ok((sessions, marks))
}

#[derive(serde::Deserialize)]
pub(super) struct CountRow {
    pub(super) n: f64,
}


#[derive(serde::Deserialize)]
pub(super) struct OutboxRow {
    pub(super) id: String,
    pub(super) batch: String,
}

#[derive(serde::Deserialize)]
struct TouchRow {
    at: f64,
    #[serde(with = "serde_bytes")]
    ids: Vec<u8>,
}

#[derive(serde::Deserialize)]
struct SwarmRowData {
    #[serde(with = "serde_bytes")]
    info_hash: Vec<u8>,
    downloaded: f64,
    pub_complete: Option<f64>,
    pub_incomplete: Option<f64>,
    pub_downloaded: Option<f64>,
    published_at: f64,
}

fn read_swarm_row(sql: &SqlStorage, cost: &mut RowCost) -> Result<Option<SwarmRow>> {
    let cursor = sql.exec(
        "SELECT info_hash, downloaded, pub_complete, pub_incomplete, pub_downloaded, published_at FROM swarm WHERE k = 0",
        None,
    )?;
    let rows: Vec<SwarmRowData> = cursor.to_array()?;
    cost.read += cursor.rows_read();
    Ok(rows.into_iter().next().and_then(|r| {
        let published = match (r.pub_complete, r.pub_incomplete, r.pub_downloaded) {
            (Some(c), Some(i), Some(d)) => Some(SwarmCounters { complete: c as u64, incomplete: i as u64, downloaded: d as u64 }),
            _ => None,
        };
        Some(SwarmRow {
            info_hash: InfoHash(r.info_hash.as_slice().try_into().ok()?),
            downloaded: r.downloaded as u64,
            published,
            published_at: r.published_at as u32,
        })
    }))
}

fn now_secs() -> u32 {
    // The static `Date.now()`: no Date object per announce.
    (js_sys::Date::now() / 1000.0) as u32
}
