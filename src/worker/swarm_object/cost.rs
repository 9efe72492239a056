//! What the object's work costs, counted per request and in total.

use super::super::ledger_shard;

/// Billable work done by this object: SQLite rows (as SQLite reports
/// them; setting an alarm counts as a row written), alarm invocations, KV
/// writes and D1 rows. Reported with `EXPOSE_COSTS` for the benchmarks.
#[derive(Default, Clone, Copy, serde::Serialize)]
pub(in crate::worker) struct RowCost {
    pub(in crate::worker) read: usize,
    pub(in crate::worker) written: usize,
    pub(in crate::worker) requests: usize,
    pub(in crate::worker) alarms: usize,
    pub(in crate::worker) kv_writes: usize,
    /// Reports to a swarm-totals shard (a Durable Object request each).
    pub(in crate::worker) stats_reports: usize,
    /// Wall-clock ms spent in alarms (duration billing; the clock moves on I/O).
    pub(in crate::worker) alarm_ms: f64,
    pub(in crate::worker) kv_reads: usize,
    pub(in crate::worker) d1_rows_read: usize,
    pub(in crate::worker) d1_rows_written: usize,
    /// Deliveries to a ledger shard (a Durable Object request each).
    pub(in crate::worker) ledger_requests: usize,
    /// A shard's requests to torrents' own objects: asking whether one
    /// holds a torrent, handing one a swarm (a Durable Object request each).
    pub(in crate::worker) object_requests: usize,
    /// Which in-memory instance counted these (a restart starts from zero).
    pub(in crate::worker) instance: u32,
}

impl RowCost {
    pub(in crate::worker) fn add(&mut self, other: RowCost) {
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
        self.object_requests += other.object_requests;
        self.instance = self.instance.max(other.instance);
    }

    /// A delivery to the ledger shard, and the shard's costs it reported:
    /// the shard's work is the swarms' credit, so it is counted as theirs.
    pub(in crate::worker) fn add_ledger(&mut self, shard: &ledger_shard::Usage) {
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
