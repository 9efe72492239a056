//! A ledger shard in its object (a `StatsObject` named `ledger-N`, like the
//! totals shards): swarms deliver their credit batches here, and once per
//! `CREDIT_FLUSH` the shard writes them to D1 added up per member
//! (`src/credit_ledger.rs` says why and how it stays exactly once).

use std::cell::RefCell;

use serde_json::json;
use worker::*;

use super::d1::{self, ledger::RowsTouched};
use super::private;
use super::stats::STATS_BINDING;
use super::swarm_object::{CountRow, OutboxRow, PeerRow};
use super::log;
use crate::config::TrackerConfig;
use crate::credit_ledger::{self, Delivery, InboxRow, Ledger, LedgerBatch, Receipt};

/// The shard's schema: one row per swarm (its last batch id and what is
/// pending, `InboxRow::rec`), and the shard's own outbox of D1 batches.
const SCHEMA: [&str; 2] = [
    "CREATE TABLE IF NOT EXISTS inbox (id BLOB PRIMARY KEY, rec BLOB NOT NULL) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS outbox (id TEXT PRIMARY KEY, batch TEXT NOT NULL)",
];

/// The header a shard reports its costs in (JSON), for the cost bench.
pub const USAGE_HEADER: &str = "x-ledger-usage";

/// Seconds before a failed flush is tried again (at most; sooner with a
/// shorter `CREDIT_FLUSH`).
const RETRY_SECS: u64 = 30;

/// What a shard spent: rows, D1, KV and its alarms. It rides on the next
/// acknowledgement to a swarm, which counts it as its own.
#[derive(Debug, Default, Clone, Copy)]
pub struct Usage {
    pub read: usize,
    pub written: usize,
    pub d1_rows_read: usize,
    pub d1_rows_written: usize,
    pub kv_reads: usize,
    pub kv_writes: usize,
    pub alarms: usize,
    pub alarm_ms: f64,
}

/// A ledger shard's state in its object.
#[derive(Default)]
pub struct Shard {
    ledger: Option<Ledger>,
    /// When the flush alarm is set for (ms), as far as this instance knows.
    alarm_at: Option<u64>,
    /// Costs not yet reported to a swarm.
    unreported: Usage,
    last_prune: u64,
}

impl Shard {
    fn loaded(&mut self, sql: &SqlStorage) -> Result<&mut Ledger> {
        if self.ledger.is_none() {
            for s in SCHEMA {
                sql.exec(s, None)?;
            }
            let cursor = sql.exec("SELECT id, rec FROM inbox", None)?;
            let rows: Vec<PeerRow> = cursor.to_array()?;
            self.unreported.read += cursor.rows_read();
            self.ledger = Some(Ledger::load(rows.iter().filter_map(|r| InboxRow::from_parts(&r.id, &r.rec))));
        }
        Ok(self.ledger.as_mut().expect("loaded above"))
    }

    fn write(&mut self, sql: &SqlStorage, row: &InboxRow) -> Result<()> {
        let c = sql.exec("INSERT OR REPLACE INTO inbox (id, rec) VALUES (?, ?)", vec![row.hash.0.to_vec().into(), row.rec().into()])?;
        self.unreported.written += c.rows_written();
        Ok(())
    }

    /// The alarm time to set, if none is set yet (`secs` from now).
    fn arm(&mut self, secs: u64) -> Option<u64> {
        if self.alarm_at.is_some() {
            return None;
        }
        let at = Date::now().as_millis() + secs * 1000;
        self.alarm_at = Some(at);
        self.unreported.written += 1;
        Some(at)
    }
}

async fn set_alarm(state: &State, at: Option<u64>) -> Result<()> {
    if let Some(at) = at {
        state.storage().set_alarm(ScheduledTime::new(Date::new(DateInit::Millis(at)).into())).await?;
    }
    Ok(())
}

/// Whether this object holds a ledger shard's tables (an alarm after an
/// eviction does not know what it is otherwise).
pub fn is_shard(sql: &SqlStorage) -> Result<bool> {
    let cursor = sql.exec("SELECT COUNT(*) AS n FROM sqlite_master WHERE name = 'inbox'", None)?;
    Ok(cursor.to_array::<CountRow>()?.first().is_some_and(|r| r.n > 0.0))
}

/// A swarm's delivery: stored (or known) before the answer, which carries
/// the shard's unreported costs. No borrow is held across an await.
pub async fn receive(shard: &RefCell<Shard>, state: &State, config: &TrackerConfig, body: &str) -> Result<Response> {
    let Some(delivery) = Delivery::parse(body) else {
        return Response::error("malformed delivery", 400);
    };
    let (duplicate, alarm) = {
        let mut s = shard.borrow_mut();
        let sql = state.storage().sql();
        let now = (Date::now().as_millis() / 1000) as u32;
        match s.loaded(&sql)?.receive(delivery, now) {
            Receipt::Duplicate => (true, None),
            Receipt::Stored(row) => {
                s.write(&sql, &row)?;
                (false, s.arm(config.credit_flush as u64))
            }
        }
    };
    set_alarm(state, alarm).await?;
    let usage = std::mem::take(&mut shard.borrow_mut().unreported);
    let mut resp = Response::ok(if duplicate { "duplicate" } else { "stored" })?;
    resp.headers_mut().set(USAGE_HEADER, &usage.to_header())?;
    Ok(resp)
}

/// The alarm: what is pending goes to D1, added up per member.
pub async fn alarm(shard: &RefCell<Shard>, state: &State, env: &Env, config: &TrackerConfig) -> Result<()> {
    let started = Date::now().as_millis();
    let sql = state.storage().sql();
    {
        let mut s = shard.borrow_mut();
        s.alarm_at = None;
        s.unreported.alarms += 1;
        take(&mut s, &sql)?;
    }
    let mut spent = Usage::default();
    let flushed = flush(&mut spent, &sql, env, config).await;
    let retry = RETRY_SECS.min(config.credit_flush as u64);
    if let Err(e) = &flushed {
        log::error("ledger_flush_failed", json!({ "error": e.to_string(), "retry_in": retry }));
    }
    let alarm = {
        let mut s = shard.borrow_mut();
        s.unreported.add(&spent);
        prune(&mut s, &sql, config, started)?;
        if flushed.is_err() {
            s.alarm_at = None;
            s.arm(retry)
        } else if s.ledger.as_ref().is_some_and(Ledger::has_pending) {
            s.arm(config.credit_flush as u64)
        } else {
            None
        }
    };
    set_alarm(state, alarm).await?;
    shard.borrow_mut().unreported.alarm_ms += (Date::now().as_millis() - started) as f64;
    Ok(())
}

impl Usage {
    /// As the header carries it: the counts, space-separated, in field order.
    fn to_header(self) -> String {
        let n = [self.read, self.written, self.d1_rows_read, self.d1_rows_written, self.kv_reads, self.kv_writes, self.alarms];
        let mut out = n.map(|v| v.to_string()).join(" ");
        out.push_str(&format!(" {}", self.alarm_ms as u64));
        out
    }

    fn from_header(text: &str) -> Usage {
        let mut n = text.split(' ').map(|v| v.parse::<usize>().unwrap_or(0));
        let mut next = || n.next().unwrap_or(0);
        Usage {
            read: next(),
            written: next(),
            d1_rows_read: next(),
            d1_rows_written: next(),
            kv_reads: next(),
            kv_writes: next(),
            alarms: next(),
            alarm_ms: next() as f64,
        }
    }

    fn add(&mut self, o: &Usage) {
        self.read += o.read;
        self.written += o.written;
        self.d1_rows_read += o.d1_rows_read;
        self.d1_rows_written += o.d1_rows_written;
        self.kv_reads += o.kv_reads;
        self.kv_writes += o.kv_writes;
        self.alarms += o.alarms;
        self.alarm_ms += o.alarm_ms;
    }
}

/// Moves what is pending into the outbox, clearing it, in one local step.
fn take(shard: &mut Shard, sql: &SqlStorage) -> Result<()> {
    let Some((batch, rows)) = shard.loaded(sql)?.take() else { return Ok(()) };
    let id = hex::encode(private::random::<16>()?);
    let c = sql.exec("INSERT INTO outbox (id, batch) VALUES (?, ?)", vec![id.into(), batch.to_json().into()])?;
    shard.unreported.written += c.rows_written();
    for row in &rows {
        shard.write(sql, row)?;
    }
    Ok(())
}

/// Sends the outbox to D1, oldest first; then the members' ratio status.
async fn flush(spent: &mut Usage, sql: &SqlStorage, env: &Env, config: &TrackerConfig) -> Result<()> {
    let cursor = sql.exec("SELECT id, batch FROM outbox ORDER BY rowid", None)?;
    let batches: Vec<OutboxRow> = cursor.to_array()?;
    spent.read += cursor.rows_read();
    let mut users = Vec::new();
    for b in batches {
        let batch = LedgerBatch::parse(&b.batch).unwrap_or_else(|| {
            log::error("ledger_outbox_unreadable", json!({ "batch": b.id }));
            LedgerBatch::default()
        });
        send(spent, env, &b.id, &batch).await?;
        users.extend(batch.users());
        let c = sql.exec("DELETE FROM outbox WHERE id = ?", vec![b.id.into()])?;
        spent.written += c.rows_written();
    }
    users.sort_unstable();
    users.dedup();
    if !users.is_empty() {
        log::info("credits_flushed", json!({ "users": users.len() }));
        // Ratio status may have changed for these members.
        match private::refresh_users(env, config, &users).await {
            Ok(kv) => {
                spent.kv_reads += kv.reads;
                spent.kv_writes += kv.writes;
            }
            Err(e) => log::warn("passkey_refresh_failed", json!({ "error": e.to_string() })),
        }
    }
    Ok(())
}

/// One outbox batch to D1 (`d1::ledger::apply`: in parts, each applied once).
async fn send(spent: &mut Usage, env: &Env, id: &str, batch: &LedgerBatch) -> Result<()> {
    let db = d1::open(env)?;
    let now = (Date::now().as_millis() / 1000) as f64;
    let mut touched = RowsTouched::default();
    let applied = d1::ledger::apply(&db, id, batch, now, &mut touched).await;
    spent.d1_rows_read += touched.read;
    spent.d1_rows_written += touched.written;
    applied
}

/// At most daily: forgets swarms idle past `FLAG_RETENTION` with nothing pending.
fn prune(shard: &mut Shard, sql: &SqlStorage, config: &TrackerConfig, now_ms: u64) -> Result<()> {
    if now_ms.saturating_sub(shard.last_prune) < 86_400_000 {
        return Ok(());
    }
    shard.last_prune = now_ms;
    let cutoff = ((now_ms / 1000) as u32).saturating_sub(config.flag_retention);
    for hash in shard.loaded(sql)?.prune(cutoff) {
        let c = sql.exec("DELETE FROM inbox WHERE id = ?", vec![hash.0.to_vec().into()])?;
        shard.unreported.written += c.rows_written();
    }
    Ok(())
}

/// A swarm's delivery to its shard. `Ok` once the shard has it (stored or
/// already applied), with the costs the shard reported.
pub async fn deliver(env: &Env, config: &TrackerConfig, delivery: &Delivery) -> Result<Usage> {
    let name = credit_ledger::shard_name(credit_ledger::shard_of(&delivery.hash, config.ledger_shards));
    let stub = env.durable_object(STATS_BINDING)?.id_from_name(&name)?.get_stub()?;
    let req = super::internal_request("https://stats/ledger", "POST", Some(&delivery.to_json()), None)?;
    let resp = stub.fetch_with_request(req).await?;
    if resp.status_code() != 200 {
        return Err(Error::RustError(format!("ledger shard answered {}", resp.status_code())));
    }
    let usage = resp.headers().get(USAGE_HEADER)?.map(|u| Usage::from_header(&u)).unwrap_or_default();
    Ok(usage)
}
