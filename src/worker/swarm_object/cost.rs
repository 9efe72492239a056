//! What the object's work costs, counted per request and in total.

use super::super::ledger_shard;

/// Billable work done by this object: SQLite rows (as SQLite reports
/// them; setting an alarm counts as a row written), alarm invocations, KV
/// writes and D1 rows. Reported with `EXPOSE_COSTS` for the benchmarks.
#[derive(Default, Clone, Copy, serde::Serialize)]
pub(super) struct RowCost {
    pub(super) read: usize,
    pub(super) written: usize,
    pub(super) requests: usize,
    pub(super) alarms: usize,
    pub(super) kv_writes: usize,
    /// Reports to a swarm-totals shard (a Durable Object request each).
    pub(super) stats_reports: usize,
    /// Wall-clock ms spent in alarms (duration billing; the clock moves on I/O).
    pub(super) alarm_ms: f64,
    pub(super) kv_reads: usize,
    pub(super) d1_rows_read: usize,
    pub(super) d1_rows_written: usize,
    /// Deliveries to a ledger shard (a Durable Object request each).
    pub(super) ledger_requests: usize,
    /// Which in-memory instance counted these (a restart starts from zero).
    pub(super) instance: u32,
}

impl RowCost {
    pub(super) fn add(&mut self, other: RowCost) {
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
    pub(super) fn add_ledger(&mut self, shard: &ledger_shard::Usage) {
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
