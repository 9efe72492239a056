//! The swarm's SQLite tables (schema: `crate::swarm::storage::SCHEMA`):
//! the `StoreWrite`s the core asks for, run as SQL, and the row types read
//! back. Every write is synchronous, so it is durable before any answer
//! leaves (the output gate holds the answer until it lands).

use worker::*;

use super::{Inner, RowCost, SwarmObject};
use crate::swarm::storage::{self as store, StoreWrite, SwarmRow};

impl SwarmObject {
    pub(super) fn ensure_schema(&self, inner: &mut Inner) -> Result<()> {
        if !inner.schema_ready {
            self.state.storage().sql().exec(store::SCHEMA, None)?;
            inner.schema_ready = true;
        }
        Ok(())
    }

    /// Runs the writes the core asked for; they are durable before any answer leaves.
    pub(super) fn apply(&self, inner: &mut Inner, writes: Vec<StoreWrite>) -> Result<RowCost> {
        let mut cost = RowCost::default();
        if writes.is_empty() {
            return Ok(cost);
        }
        self.ensure_schema(inner)?;
        let sql = self.state.storage().sql();
        for w in writes {
            let cursor = self.write(&sql, w, &mut cost)?;
            cost.read += cursor.rows_read();
            cost.written += cursor.rows_written();
        }
        Ok(cost)
    }

    /// One write as SQL. Returns the cursor of its last statement (the
    /// caller counts its rows); any earlier statement is counted in `cost`.
    fn write(&self, sql: &SqlStorage, w: StoreWrite, cost: &mut RowCost) -> Result<SqlCursor> {
        Ok(match w {
            StoreWrite::SessionChunk { chunk, rows, .. } => write_session_chunk(sql, chunk, rows, cost)?,
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
            StoreWrite::Touches { slot, at, ids } => self.write_touches(sql, slot, at, ids, cost)?,
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
            StoreWrite::SwarmRow(r) => write_swarm_row(sql, &r)?,
        })
    }

    /// A touch ring slot, merged with what it holds for the same window.
    fn write_touches(&self, sql: &SqlStorage, slot: u32, at: u32, ids: Vec<u8>, cost: &mut RowCost) -> Result<SqlCursor> {
        let existing = sql.exec("SELECT at, ids FROM touches WHERE slot = ?", vec![(slot as i64).into()])?;
        let old: Vec<TouchRow> = existing.to_array()?;
        cost.read += existing.rows_read();
        let ids = store::merge_touch_row(old.into_iter().next().map(|t| (t.at as u32, t.ids)), at, ids, &self.config);
        sql.exec(
            "INSERT INTO touches (slot, at, ids) VALUES (?, ?, ?) \
             ON CONFLICT(slot) DO UPDATE SET at = excluded.at, ids = excluded.ids",
            vec![(slot as i64).into(), (at as i64).into(), ids.into()],
        )
    }
}

/// A chunk of sessions: its parts, and no parts beyond them.
fn write_session_chunk(sql: &SqlStorage, chunk: u32, rows: Vec<Vec<u8>>, cost: &mut RowCost) -> Result<SqlCursor> {
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
    sql.exec("DELETE FROM ledger WHERE chunk = ? AND part >= ?", vec![(chunk as i64).into(), parts.into()])
}

fn write_swarm_row(sql: &SqlStorage, r: &SwarmRow) -> Result<SqlCursor> {
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
    )
}

/// (Also the totals shards' row: one row type costs less wasm than two.)
#[derive(serde::Deserialize)]
pub(in super::super) struct PeerRow {
    #[serde(with = "serde_bytes")]
    pub(in super::super) id: Vec<u8>,
    #[serde(with = "serde_bytes")]
    pub(in super::super) rec: Vec<u8>,
}

#[derive(serde::Deserialize)]
pub(in super::super) struct CountRow {
    pub(in super::super) n: f64,
}

#[derive(serde::Deserialize)]
pub(in super::super) struct OutboxRow {
    pub(in super::super) id: String,
    pub(in super::super) batch: String,
}

#[derive(serde::Deserialize)]
pub(super) struct TouchRow {
    pub(super) at: f64,
    #[serde(with = "serde_bytes")]
    pub(super) ids: Vec<u8>,
}

/// One blob column (the `ledger` chunks and the legacy marks: a row type
/// of its own costs wasm size).
#[derive(serde::Deserialize)]
pub(super) struct MarksRow {
    #[serde(with = "serde_bytes")]
    pub(super) marks: Vec<u8>,
}
