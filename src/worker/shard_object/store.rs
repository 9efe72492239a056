//! The shard's SQLite tables, loading them, running the core's writes,
//! and the alarm (sweeps, the flush announces left, handoffs to retry).

use worker::*;

use super::super::alarm;
use super::{now_secs, RowCost, ShardObject};
use crate::peer::InfoHash;
use crate::swarm::shard::ShardWrite;

/// `buckets`: each bucket's packed swarms in parts (a row holds at most
/// 2 MB); `moved`: torrents living in their own objects, with the swarm
/// still to hand over (empty once handed over).
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS buckets (bucket INTEGER NOT NULL, part INTEGER NOT NULL, blob BLOB NOT NULL,
  PRIMARY KEY (bucket, part)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS moved (hash BLOB PRIMARY KEY, handoff BLOB NOT NULL) WITHOUT ROWID;";

/// Bytes per bucket row.
const PART: usize = 1 << 20;

#[derive(serde::Deserialize)]
struct BucketRow {
    bucket: f64,
    #[serde(with = "serde_bytes")]
    blob: Vec<u8>,
}

#[derive(serde::Deserialize)]
struct MovedRow {
    #[serde(with = "serde_bytes")]
    hash: Vec<u8>,
    #[serde(with = "serde_bytes")]
    handoff: Vec<u8>,
}

/// Runs one of the core's writes.
pub(super) fn write(sql: &SqlStorage, w: ShardWrite, cost: &mut RowCost) -> Result<()> {
    let mut counted = |c: SqlCursor| {
        cost.read += c.rows_read();
        cost.written += c.rows_written();
    };
    match w {
        ShardWrite::Bucket { bucket, blob } => {
            let parts = blob.chunks(PART).count() as i64;
            for (part, bytes) in blob.chunks(PART).enumerate() {
                counted(sql.exec(
                    "INSERT INTO buckets (bucket, part, blob) VALUES (?, ?, ?) \
                     ON CONFLICT(bucket, part) DO UPDATE SET blob = excluded.blob",
                    vec![(bucket as i64).into(), (part as i64).into(), bytes.to_vec().into()],
                )?);
            }
            counted(sql.exec("DELETE FROM buckets WHERE bucket = ? AND part >= ?", vec![(bucket as i64).into(), parts.into()])?);
        }
        ShardWrite::DropBucketsFrom(from) => counted(sql.exec("DELETE FROM buckets WHERE bucket >= ?", vec![(from as i64).into()])?),
        ShardWrite::Moved { hash, handoff } => counted(sql.exec(
            "INSERT INTO moved (hash, handoff) VALUES (?, ?) ON CONFLICT(hash) DO UPDATE SET handoff = excluded.handoff",
            vec![hash.0.to_vec().into(), handoff.unwrap_or_default().into()],
        )?),
    }
    Ok(())
}

impl ShardObject {
    /// Loads the shard from its tables the first time this instance needs
    /// it (synchronous: SQLite).
    pub(super) fn ensure_loaded(&self, now: u32) -> Result<RowCost> {
        let mut cost = RowCost::default();
        if self.inner.borrow().loaded {
            return Ok(cost);
        }
        let sql = self.state.storage().sql();
        sql.exec(SCHEMA, None)?;
        let cursor = sql.exec("SELECT bucket, blob FROM buckets ORDER BY bucket, part", None)?;
        let rows: Vec<BucketRow> = cursor.to_array()?;
        cost.read += cursor.rows_read();
        let cursor = sql.exec("SELECT hash, handoff FROM moved", None)?;
        let moved: Vec<MovedRow> = cursor.to_array()?;
        cost.read += cursor.rows_read();
        let mut buckets: Vec<(u8, Vec<u8>)> = Vec::new();
        for row in rows {
            match buckets.last_mut() {
                Some((b, blob)) if *b as f64 == row.bucket => blob.extend_from_slice(&row.blob),
                _ => buckets.push((row.bucket as u8, row.blob)),
            }
        }
        let moved = moved.into_iter().filter_map(|m| {
            let hash = InfoHash(m.hash.as_slice().try_into().ok()?);
            Some((hash, (!m.handoff.is_empty()).then_some(m.handoff)))
        });
        let mut inner = self.inner.borrow_mut();
        inner.shard.load(buckets.iter().map(|(b, blob)| (*b, blob.as_slice())), moved, now, &self.config);
        inner.loaded = true;
        Ok(cost)
    }

    /// Loads the shard (`ensure_loaded`) and reads the alarm storage has
    /// scheduled, once: a shard loaded again (after an eviction or a
    /// restart) then moves it only if it must be earlier, as a torrent's
    /// own object does.
    pub(super) async fn ensure_ready(&self, now: u32) -> Result<RowCost> {
        let cost = self.ensure_loaded(now)?;
        if self.inner.borrow().alarm.is_none() {
            let stored = alarm::Alarm::stored(&self.state).await?;
            // Unless it ran or was set meanwhile: then that is known.
            self.inner.borrow_mut().alarm.get_or_insert(stored);
        }
        Ok(cost)
    }

    /// The alarm: expire silent peers, write what changed, hand over the
    /// swarms whose handoff failed, and set the next alarm.
    pub(super) async fn run_alarm(&self) -> Result<Response> {
        let started = js_sys::Date::now();
        let now = now_secs();
        // Running: none is scheduled now.
        self.inner.borrow_mut().alarm = Some(alarm::Alarm::default());
        let mut cost = self.ensure_loaded(now)?;
        cost.alarms += 1;
        let writes = {
            let mut inner = self.inner.borrow_mut();
            inner.shard.sweep(now, &self.config);
            inner.shard.flush(now, &self.config, false)
        };
        self.run(writes, &mut cost)?;
        let handoffs = self.inner.borrow().shard.handoffs();
        for (hash, swarm) in handoffs {
            self.hand_off(hash, &swarm, &mut cost).await;
        }
        if !self.inner.borrow().shard.handoffs().is_empty() {
            let flushed = self.inner.borrow_mut().shard.flush(now, &self.config, true);
            self.run(flushed, &mut cost)?;
        }
        cost.written += self.schedule_alarm(now).await?;
        cost.alarm_ms += js_sys::Date::now() - started;
        self.count(cost);
        Response::ok("")
    }

    /// Moves the alarm earlier if the shard needs it sooner; rows written.
    pub(super) async fn schedule_alarm(&self, now: u32) -> Result<usize> {
        match self.alarm_to_set(now) {
            Some(at_ms) => {
                alarm::set(&self.state, at_ms).await?;
                Ok(1)
            }
            None => Ok(0),
        }
    }

    /// The alarm time (ms) to set, if the shard needs it earlier than the
    /// one scheduled; recorded as scheduled (a set replaces what storage
    /// held, so it is known from then on, read or not).
    pub(super) fn alarm_to_set(&self, now: u32) -> Option<u64> {
        let at = self.inner.borrow().shard.next_alarm(now, &self.config)?;
        self.inner.borrow_mut().alarm.get_or_insert_default().earlier(at)
    }
}
