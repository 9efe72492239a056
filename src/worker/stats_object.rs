//! The singleton stats object: adds the isolates' request counts into
//! per-minute rows (one row written per flush, a day kept), and reads the
//! swarm totals from the totals shards (objects of this class named
//! `totals-N`, `totals_shard.rs`) when asked, at most once per
//! `STATS_REFRESH` seconds. It is never on an announce's path.

use std::cell::RefCell;

use serde_json::json;
use worker::*;

use super::stats::ReadRequest;
use super::totals_shard::{Rows, Shard};
use super::{config_from, log};
use crate::config::{TrackerConfig, TrackerMode};
use crate::stats::{Counts, Gauges, History, PrivateTotals, Stats, BUSIEST};

/// Rows are written at most this often (ms); deltas arriving in between
/// wait in memory for the alarm, so many isolates cost a few rows, not one each.
const WRITE_EVERY_MS: u64 = 10_000;

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS minutes (minute INTEGER PRIMARY KEY, counts TEXT NOT NULL)";

#[durable_object(alarm)]
pub struct StatsObject {
    state: State,
    env: Env,
    config: TrackerConfig,
    inner: RefCell<Inner>,
    /// When this object is a ledger shard (`ledger-N`, `ledger_shard.rs`).
    ledger: RefCell<super::ledger_shard::Shard>,
}

#[derive(Default)]
struct Inner {
    history: Option<History>,
    /// Minutes whose rows changed in memory since the last write.
    dirty: std::collections::BTreeSet<u64>,
    /// Rows before this minute are to be deleted with the next write.
    trim_before: Option<u64>,
    last_write_ms: u64,
    alarm_set: bool,
    /// Swarm totals and when they were read (Unix seconds).
    gauges: Option<(u64, Gauges, Option<PrivateTotals>)>,
    /// When this object is a totals shard.
    shard: Shard,
}

/// A shard's answer, with the rows it cost (read by the totals bench).
fn shard_answer(mut resp: Response, rows: Rows) -> Result<Response> {
    resp.headers_mut().set(super::ROWS_READ_HEADER, &rows.read.to_string())?;
    resp.headers_mut().set(super::ROWS_WRITTEN_HEADER, &rows.written.to_string())?;
    Ok(resp)
}

impl DurableObject for StatsObject {
    fn new(state: State, env: Env) -> Self {
        let config = config_from(&env).unwrap_or_default();
        StatsObject { state, env, config, inner: RefCell::new(Inner::default()), ledger: RefCell::default() }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let path = super::request_path(&req);
        let body = req.text().await?;
        match path.as_str() {
            "/flush" => {
                let delta: Counts = serde_json::from_str(&body)?;
                self.record(&delta).await?;
                self.prune_ledger().await;
                Response::ok("")
            }
            "/read" => {
                let read: ReadRequest = serde_json::from_str(&body)?;
                self.record(&read.delta).await?;
                let stats = self.stats(read.minutes).await?;
                if read.prometheus {
                    Response::ok(stats.prometheus())
                } else {
                    Response::from_json(&stats)
                }
            }
            // A ledger shard (`ledger-N`): swarms' credit batches in.
            "/ledger" => super::ledger_shard::receive(&self.ledger, &self.state, &self.config, &body).await,
            // A totals shard (`totals-N`): swarm reports in, sums out.
            "/swarms" => {
                let rows = self.inner.borrow_mut().shard.report(&self.state.storage().sql(), &body)?;
                shard_answer(Response::ok("")?, rows)
            }
            "/swarm-totals" => {
                let url = req.inner().url();
                let top = super::raw_query(&url).strip_prefix("top=").and_then(|v| v.parse().ok()).unwrap_or(BUSIEST);
                let (gauges, rows) = self.inner.borrow_mut().shard.gauges(&self.state.storage().sql(), top)?;
                shard_answer(Response::ok(crate::swarm_totals::gauges_text(&gauges))?, rows)
            }
            _ => Response::error("not found", 404),
        }
    }

    async fn alarm(&self) -> Result<Response> {
        if super::ledger_shard::is_shard(&self.state.storage().sql())? {
            super::ledger_shard::alarm(&self.ledger, &self.state, &self.env, &self.config).await?;
            return Response::ok("");
        }
        self.inner.borrow_mut().alarm_set = false;
        self.write_dirty()?;
        Response::ok("")
    }
}

impl StatsObject {
    /// Private mode: the isolates' stats flushes arrive here every few
    /// seconds while there is traffic, a regular place to prune the ledger
    /// (`ledger::prune_ledger` runs at most hourly per isolate).
    async fn prune_ledger(&self) {
        if self.config.mode != crate::config::TrackerMode::Private {
            return;
        }
        if let Err(e) = super::ledger::prune_ledger(&self.env, &self.config).await {
            log::warn("ledger_prune_failed", json!({ "error": e.to_string() }));
        }
    }

    fn with_history<T>(&self, f: impl FnOnce(&mut History) -> T) -> Result<T> {
        let mut inner = self.inner.borrow_mut();
        if inner.history.is_none() {
            let sql = self.state.storage().sql();
            sql.exec(SCHEMA, None)?;
            let rows: Vec<MinuteRow> = sql.exec("SELECT minute, counts FROM minutes", None)?.to_array()?;
            let history = History::load(
                rows.into_iter().filter_map(|r| Some((r.minute as u64, serde_json::from_str(&r.counts).ok()?))),
            );
            inner.history = Some(history);
        }
        Ok(f(inner.history.as_mut().expect("loaded above")))
    }

    /// Adds a delta to the current minute. Its row is written now if the
    /// last write is `WRITE_EVERY_MS` old, else by an alarm at that time.
    async fn record(&self, delta: &Counts) -> Result<()> {
        if delta.is_empty() {
            return Ok(());
        }
        let now = Date::now().as_millis();
        let ((minute, _), trim) = self.with_history(|h| h.record(now / 60_000, delta))?;
        log::debug("stats_flush", json!({ "announces": delta.announces, "scrapes": delta.scrapes, "failures": delta.failures_total() }));
        let alarm_at = {
            let mut inner = self.inner.borrow_mut();
            inner.dirty.insert(minute);
            inner.trim_before = inner.trim_before.max(trim);
            let due = inner.last_write_ms + WRITE_EVERY_MS;
            if now >= due {
                None
            } else if inner.alarm_set {
                return Ok(());
            } else {
                inner.alarm_set = true;
                Some(due)
            }
        };
        match alarm_at {
            None => self.write_dirty(),
            Some(at) => {
                let when = ScheduledTime::new(js_sys::Date::new(&(at as f64).into()));
                self.state.storage().set_alarm(when).await
            }
        }
    }

    /// Writes the rows of the minutes changed since the last write.
    fn write_dirty(&self) -> Result<()> {
        let mut inner = self.inner.borrow_mut();
        let inner = &mut *inner;
        let Some(history) = inner.history.as_ref() else { return Ok(()) };
        let sql = self.state.storage().sql();
        for minute in std::mem::take(&mut inner.dirty) {
            if let Some(totals) = history.row(minute) {
                sql.exec(
                    "INSERT INTO minutes (minute, counts) VALUES (?, ?) ON CONFLICT(minute) DO UPDATE SET counts = excluded.counts",
                    vec![(minute as i64).into(), serde_json::to_string(totals)?.into()],
                )?;
            }
        }
        if let Some(before) = inner.trim_before.take() {
            sql.exec("DELETE FROM minutes WHERE minute < ?", vec![(before as i64).into()])?;
        }
        inner.last_write_ms = Date::now().as_millis();
        Ok(())
    }

    async fn stats(&self, minutes: u64) -> Result<Stats> {
        let now = Date::now().as_millis();
        let now_secs = now / 1000;
        let fresh = matches!(&self.inner.borrow().gauges, Some((at, _, _)) if now_secs < at + self.config.stats_refresh as u64);
        if !fresh {
            match self.read_gauges().await {
                Ok((gauges, private)) => self.inner.borrow_mut().gauges = Some((now_secs, gauges, private)),
                // The request counts still answer; the swarm totals are
                // the last ones read (`gauges_at` says when).
                Err(e) => log::warn("stats_gauges_failed", json!({ "error": e.to_string() })),
            }
        }
        let (counts, history) = self.with_history(|h| (h.totals(), h.series(now / 60_000, minutes)))?;
        let inner = self.inner.borrow();
        let (gauges_at, gauges, private) = inner.gauges.clone().unwrap_or_default();
        Ok(Stats {
            mode: match self.config.mode {
                TrackerMode::Public => "public".into(),
                TrackerMode::Private => "private".into(),
            },
            generated_at: now_secs,
            counts,
            gauges,
            gauges_at,
            private,
            history,
        })
    }

    /// The swarm totals: the sums every totals shard keeps (one request
    /// per shard, whatever the number of torrents; `src/swarm_totals.rs`).
    async fn read_gauges(&self) -> Result<(Gauges, Option<PrivateTotals>)> {
        // A private tracker's info hashes are its members' business: no busiest list.
        let top = if self.config.mode == TrackerMode::Private { 0 } else { BUSIEST };
        let gauges = super::totals_shard::read_all(&self.env, top).await?;
        let private = match self.config.mode {
            TrackerMode::Public => None,
            TrackerMode::Private => match self.private_totals().await {
                Ok(p) => Some(p),
                Err(e) => {
                    log::warn("stats_private_totals_failed", json!({ "error": e.to_string() }));
                    None
                }
            },
        };
        Ok((gauges, private))
    }

    async fn private_totals(&self) -> Result<PrivateTotals> {
        let (users, registered_torrents) = super::d1::totals(&super::d1::open(&self.env)?).await?;
        Ok(PrivateTotals { users, registered_torrents })
    }
}

#[derive(serde::Deserialize)]
struct MinuteRow {
    minute: f64,
    counts: String,
}

