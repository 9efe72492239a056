//! Loading the swarm into memory from its SQLite tables, the first time an
//! instance needs it (after a start, an eviction or a deploy).

use serde_json::json;
use worker::*;

use super::super::alarm::Alarm;
use super::super::log;
use super::sql::{CountRow, MarksRow, PeerRow, TouchRow};
use super::{RowCost, SwarmObject};
use crate::peer::{InfoHash, PeerId};
use crate::swarm::ledger::SessionRecord;
use crate::swarm::storage::{self as store, SwarmRow};
use crate::swarm::SwarmCounters;

/// Everything the tables hold, as read (before it goes into the swarm).
struct Stored {
    row: Option<SwarmRow>,
    peers: Vec<PeerRow>,
    ws_peers: Vec<PeerRow>,
    touches: Vec<TouchRow>,
    ledger: Vec<MarksRow>,
    legacy_sessions: Vec<PeerRow>,
    legacy_marks: Vec<u8>,
    blocked: bool,
    scrape_wanted: u32,
    outbox_pending: bool,
}

impl Stored {
    /// Nothing stored: storage was freed (or never used).
    fn is_empty(&self) -> bool {
        self.row.is_none()
            && self.peers.is_empty()
            && self.ws_peers.is_empty()
            && self.ledger.is_empty()
            && self.legacy_sessions.is_empty()
            && !self.blocked
    }
}

impl SwarmObject {
    /// Loads the swarm from storage the first time this instance needs it.
    /// `hash` is the torrent when the caller knows it (an announce does).
    pub(super) async fn ensure_loaded(&self, now: u32, hash: Option<InfoHash>) -> Result<RowCost> {
        let mut cost = RowCost::default();
        if self.inner.borrow().loaded {
            return Ok(cost);
        }
        let stored = self.read_stored(&mut cost)?;
        let resume = match hash {
            // Storage was freed (or never used): the completed count lives on in KV.
            Some(hash) if stored.is_empty() => {
                cost.kv_reads += 1;
                self.read_published(&hash).await
            }
            _ => None,
        };
        let alarm = Alarm::stored(&self.state).await?;
        if self.inner.borrow().loaded {
            // Another request loaded it while we awaited.
            return Ok(cost);
        }
        cost.add(self.install(stored, resume, alarm, now, hash)?);
        Ok(cost)
    }

    /// Reads every table (synchronous: SQLite).
    fn read_stored(&self, cost: &mut RowCost) -> Result<Stored> {
        let sql = self.state.storage().sql();
        self.ensure_schema(&mut self.inner.borrow_mut())?;
        let row = read_swarm_row(&sql, cost)?;
        let peers = read_peer_rows(&sql, "peers", cost)?;
        let ws_peers = read_peer_rows(&sql, "ws_peers", cost)?;
        let touches = read_all(&sql, "SELECT at, ids FROM touches", cost)?;
        let ledger = read_all(&sql, "SELECT recs AS marks FROM ledger", cost)?;
        let (legacy_sessions, legacy_marks) = read_legacy_sessions(&sql, cost)?;
        let blocked = read_count(&sql, "SELECT COUNT(*) AS n FROM blocked", cost)?.is_some_and(|n| n > 0.0);
        let wanted = read_count(&sql, "SELECT COALESCE(MAX(until), 0) AS n FROM scrape_cache", cost)?;
        let outbox_pending = read_count(&sql, "SELECT COUNT(*) AS n FROM outbox", cost)?.is_some_and(|n| n > 0.0);
        Ok(Stored {
            row,
            peers,
            ws_peers,
            touches,
            ledger,
            legacy_sessions,
            legacy_marks,
            blocked,
            scrape_wanted: wanted.map(|n| n as u32).unwrap_or(0),
            outbox_pending,
        })
    }

    /// Puts what was read into the in-memory swarm; runs the writes that
    /// loading asks for (expired rows, a resumed count).
    fn install(
        &self,
        stored: Stored,
        resume: Option<(SwarmCounters, bool)>,
        alarm: Alarm,
        now: u32,
        hash: Option<InfoHash>,
    ) -> Result<RowCost> {
        let mut inner = self.inner.borrow_mut();
        let peers = stored.peers.iter().filter_map(|r| store::decode_peer(&r.id, &r.rec));
        let touches = stored.touches.into_iter().map(|t| (t.at as u32, t.ids));
        inner.swarm.restore_ws(stored.ws_peers.iter().filter_map(|r| store::decode_peer(&r.id, &r.rec)));
        let mut deletes = inner.swarm.load(stored.row, peers, touches, now, &self.config);
        inner.swarm.load_scrape_wanted(stored.scrape_wanted);
        inner.swarm.load_ledger(stored.ledger.iter().map(|r| r.marks.as_slice()), stored.outbox_pending, now);
        if !stored.legacy_sessions.is_empty() || !stored.legacy_marks.is_empty() {
            let sessions = stored.legacy_sessions.into_iter().filter_map(|r| {
                let id = PeerId(r.id.as_slice().try_into().ok()?);
                Some((id, SessionRecord::decode(&r.rec)?))
            });
            inner.swarm.load_legacy_sessions(sessions, &stored.legacy_marks, now);
        }
        if let Some(c) = resume {
            if let Some(w) = inner.swarm.resume_from(c.0, c.1, now, &self.config) {
                deletes.push(w);
            }
        }
        inner.swarm.blocked = stored.blocked;
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
        inner.alarm = alarm;
        inner.loaded = true;
        self.apply(&mut inner, deletes)
    }
}

/// Every row of a query, its rows read counted.
fn read_all<T: serde::de::DeserializeOwned>(sql: &SqlStorage, query: &str, cost: &mut RowCost) -> Result<Vec<T>> {
    let cursor = sql.exec(query, None)?;
    let rows = cursor.to_array()?;
    cost.read += cursor.rows_read();
    Ok(rows)
}

/// Peer rows read back per page of `PEER_PAGE`, each page one string (hex
/// rows, comma-separated) rather than an object and two buffers a row:
/// the reload of a big swarm left those 60,000 objects (20,000 peers) to
/// the garbage collector, and the isolate answered about 10% slower until
/// a full collection (BENCHMARKS.md, "One hot swarm").
fn read_peer_rows(sql: &SqlStorage, table: &str, cost: &mut RowCost) -> Result<Vec<PeerRow>> {
    let query = format!(
        "SELECT group_concat(hex(id) || hex(rec), ',') AS packed, hex(MAX(id)) AS last \
         FROM (SELECT id, rec FROM {table} WHERE id > ? ORDER BY id LIMIT {PEER_PAGE})"
    );
    let mut rows = Vec::new();
    let mut after = Vec::new();
    loop {
        let cursor = sql.exec(&query, vec![after.into()])?;
        let page = cursor.to_array::<PackedRows>()?.into_iter().next();
        cost.read += cursor.rows_read();
        let Some(PackedRows { packed: Some(packed), last: Some(last) }) = page else { break };
        // A full page (counted in rows read, damaged ones too) may have more after it.
        let mut in_page = 0;
        rows.extend(packed.split(',').inspect(|_| in_page += 1).filter_map(|hex| {
            let row = hex::decode(hex).ok()?;
            let (id, rec) = row.split_at_checked(PEER_KEY_LEN)?;
            Some(PeerRow { id: id.to_vec(), rec: rec.to_vec() })
        }));
        match hex::decode(last) {
            Ok(last) if in_page >= PEER_PAGE => after = last,
            _ => break,
        }
    }
    Ok(rows)
}

/// Rows a page of peers holds: about 128 hex digits a row, well under
/// SQLite's 2 MB for one value.
const PEER_PAGE: usize = 4096;
/// A peer row's key (`PeerKey`, its `id` column).
const PEER_KEY_LEN: usize = std::mem::size_of::<crate::peer::PeerKey>();

#[derive(serde::Deserialize)]
struct PackedRows {
    packed: Option<String>,
    last: Option<String>,
}

/// The `n` of a one-row query, if it gave a row.
fn read_count(sql: &SqlStorage, query: &str, cost: &mut RowCost) -> Result<Option<f64>> {
    Ok(read_all::<CountRow>(sql, query, cost)?.first().map(|r| r.n))
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
        sessions = read_all(sql, "SELECT id, rec FROM sessions", cost)?;
    }
    if exists("flushed")? {
        let rows = read_all::<MarksRow>(sql, "SELECT marks FROM flushed WHERE k = 0", cost)?;
        marks = rows.into_iter().next().map(|m| m.marks).unwrap_or_default();
    }
    Ok((sessions, marks))
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
    let rows: Vec<SwarmRowData> = read_all(
        sql,
        "SELECT info_hash, downloaded, pub_complete, pub_incomplete, pub_downloaded, published_at FROM swarm WHERE k = 0",
        cost,
    )?;
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
