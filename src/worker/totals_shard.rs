//! Swarm totals without listing KV (`src/swarm_totals.rs`): a swarm
//! reports its counters to its shard (a `StatsObject` named `totals-N`)
//! when it publishes them for scrape; the stats object asks every shard for
//! its sums when `/stats` needs them. A shard keeps one SQLite row per
//! swarm and the sums in memory (summed from the rows when it loads).

use worker::*;

use super::stats::STATS_BINDING;
use super::swarm_object::PeerRow;
use crate::peer::InfoHash;
use crate::stats::Gauges;
use crate::swarm::SwarmCounters;
use crate::swarm_totals::{self, ShardTotals, CANDIDATES};

/// `rec`: complete, incomplete, downloaded (8 bytes each, big-endian);
/// `peers` only orders the busiest.
const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS swarms (id BLOB PRIMARY KEY, peers INTEGER NOT NULL, rec BLOB NOT NULL) WITHOUT ROWID";

/// Reports per request at most (a swarm sends one; a backfill or the bench sends many).
const MAX_LINES: usize = 5_000;

/// A shard's state in its object.
#[derive(Default)]
pub struct Shard {
    totals: Option<ShardTotals>,
}

/// Rows read and written by a shard request (for the cost bench).
#[derive(Default, Clone, Copy)]
pub struct Rows {
    pub read: usize,
    pub written: usize,
}

impl Shard {
    fn loaded(&mut self, sql: &SqlStorage, rows: &mut Rows) -> Result<&mut ShardTotals> {
        if self.totals.is_none() {
            sql.exec(SCHEMA, None)?;
            let cursor = sql.exec("SELECT id, rec FROM swarms", None)?;
            let all: Vec<PeerRow> = cursor.to_array()?;
            rows.read += cursor.rows_read();
            self.totals = Some(ShardTotals::load(all.into_iter().filter_map(parts)));
        }
        Ok(self.totals.as_mut().expect("loaded above"))
    }

    /// Applies report lines (`swarm_totals::report_line`), each replacing its swarm's row.
    pub fn report(&mut self, sql: &SqlStorage, body: &str) -> Result<Rows> {
        let mut rows = Rows::default();
        let totals = self.loaded(sql, &mut rows)?;
        for line in body.lines().take(MAX_LINES) {
            let Some((hash, new)) = swarm_totals::parse_report_line(line) else { continue };
            let key: Vec<u8> = hash.0.to_vec();
            let cursor = sql.exec("SELECT id, rec FROM swarms WHERE id = ?", vec![key.clone().into()])?;
            let old = cursor.to_array::<PeerRow>()?.into_iter().next().and_then(parts).map(|(_, c)| c);
            rows.read += cursor.rows_read();
            if old == Some(new) {
                continue;
            }
            let cursor = if new == SwarmCounters::default() {
                sql.exec("DELETE FROM swarms WHERE id = ?", vec![key.into()])?
            } else {
                sql.exec(
                    "INSERT INTO swarms (id, peers, rec) VALUES (?, ?, ?) ON CONFLICT(id) DO UPDATE \
                     SET peers = excluded.peers, rec = excluded.rec",
                    vec![key.into(), ((new.complete + new.incomplete) as i64).into(), encode(new).into()],
                )?
            };
            rows.written += cursor.rows_written();
            // Only once the row is written: the sums are always those of the rows.
            totals.apply(&hash, old, new);
        }
        Ok(rows)
    }

    /// The shard's sums and its `top` busiest swarms. Reads the best rows
    /// again only when busy swarms shrank below one it does not track.
    pub fn gauges(&mut self, sql: &SqlStorage, top: usize) -> Result<(Gauges, Rows)> {
        let mut rows = Rows::default();
        let totals = self.loaded(sql, &mut rows)?;
        if let Some(g) = totals.gauges(top) {
            return Ok((g, rows));
        }
        let cursor = sql.exec(
            "SELECT id, rec FROM swarms WHERE peers > 0 ORDER BY peers DESC, id ASC LIMIT ?",
            vec![(CANDIDATES as i64).into()],
        )?;
        let best: Vec<PeerRow> = cursor.to_array()?;
        rows.read += cursor.rows_read();
        totals.reset_candidates(best.into_iter().filter_map(parts).collect());
        Ok((totals.gauges(top).unwrap_or_default(), rows))
    }
}

fn encode(c: SwarmCounters) -> Vec<u8> {
    [c.complete, c.incomplete, c.downloaded].iter().flat_map(|n| n.to_be_bytes()).collect()
}

fn parts(row: PeerRow) -> Option<(InfoHash, SwarmCounters)> {
    let n = |i: usize| Some(u64::from_be_bytes(row.rec.get(i * 8..i * 8 + 8)?.try_into().ok()?));
    let counters = SwarmCounters { complete: n(0)?, incomplete: n(1)?, downloaded: n(2)? };
    Some((InfoHash(row.id.as_slice().try_into().ok()?), counters))
}

fn shard_stub(env: &Env, shard: u8) -> Result<Stub> {
    env.durable_object(STATS_BINDING)?.id_from_name(&swarm_totals::shard_name(shard))?.get_stub()
}

/// A swarm's report of its counters (from its alarm, beside the KV publish).
pub async fn report(env: &Env, hash: &InfoHash, counters: SwarmCounters) -> Result<()> {
    let line = swarm_totals::report_line(hash, counters);
    let req = super::internal_request("https://stats/swarms", "POST", Some(&line), None)?;
    let resp = shard_stub(env, swarm_totals::shard_of(hash))?.fetch_with_request(req).await?;
    match resp.status_code() {
        200 => Ok(()),
        s => Err(Error::RustError(format!("totals shard answered {s}"))),
    }
}

/// Every shard's gauges, merged: `SHARDS` requests, all in flight at once
/// (one `Promise.all`: `join_all` over futures cost 5 KiB of wasm).
pub async fn read_all(env: &Env, top: usize) -> Result<Gauges> {
    use worker::js_sys::{Array, Promise, Reflect};
    use worker::wasm_bindgen::JsCast;
    use worker::wasm_bindgen_futures::JsFuture;
    let ns: worker::worker_sys::DurableObjectNamespace = Reflect::get(env, &STATS_BINDING.into())?.unchecked_into();
    let url = format!("https://stats/swarm-totals?top={top}");
    let fetches = Array::new();
    for shard in 0..swarm_totals::SHARDS {
        let stub = ns.get(&ns.id_from_name(&swarm_totals::shard_name(shard))?)?;
        let fetch: Promise = stub.fetch_with_str(&url)?;
        fetches.push(&fetch);
    }
    // Small swarms sharing objects (`SWARM_SHARDS`) are summed there.
    let shards = super::config_from(env).map(|c| c.shards()).unwrap_or(0);
    if shards > 0 {
        let ns: worker::worker_sys::DurableObjectNamespace = Reflect::get(env, &super::SHARDS_BINDING.into())?.unchecked_into();
        let url = format!("{}{top}", super::shard_object::SHARD_TOTALS_URL);
        for n in 0..shards {
            let stub = ns.get(&ns.id_from_name(&crate::swarm::shard::shard_name(n))?)?;
            let fetch: Promise = stub.fetch_with_str(&url)?;
            fetches.push(&fetch);
        }
    }
    let texts = Array::new();
    for resp in Array::from(&JsFuture::from(Promise::all(&fetches)).await?).iter() {
        let resp: worker::web_sys::Response = resp.unchecked_into();
        if resp.status() != 200 {
            return Err(Error::RustError(format!("a totals shard answered {}", resp.status())));
        }
        let text: Promise = resp.text()?;
        texts.push(&text);
    }
    let mut all = Gauges::default();
    for text in Array::from(&JsFuture::from(Promise::all(&texts)).await?).iter() {
        let shard = text.as_string().and_then(|t| swarm_totals::parse_gauges_text(&t));
        swarm_totals::merge(&mut all, shard.ok_or_else(|| Error::RustError("a totals shard's answer is malformed".into()))?, top);
    }
    Ok(all)
}
