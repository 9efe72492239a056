//! How a swarm is kept in its Durable Object's SQLite storage: the schema,
//! the row codecs, and the writes ([`StoreWrite`]) an announce or an alarm
//! asks for. The Durable Object glue runs them as SQL; [`super::memory`]
//! runs them on tables in memory for the tests, fuzz targets and benches.
//!
//! The in-memory [`Swarm`](super::Swarm) is a cache of these tables:
//! - `peers`: one row per peer, written through (before the answer) when a
//!   peer joins, changes address or role, or completes, and deleted when it
//!   stops or expires. Membership and completions are never lost.
//! - `touches`: a ring of rows, each holding the ids of the peers that
//!   re-announced without change during one flush window. A steady
//!   re-announce costs no row of its own: each window costs one row for
//!   the whole swarm. Rows older than the peer timeout are ignored on load
//!   and overwritten as the ring turns.
//! - `swarm`: one row with the info hash, the completed count and what was
//!   last published to KV.
//! - `blocked`: one row while an operator has blocked the torrent; a
//!   blocked swarm lists nobody and keeps its storage so the block lasts.
//! - `ledger`: private-mode sessions, packed into chunk rows and written
//!   behind the answer (see [`super::sessions`]); `outbox`: credit
//!   batches not yet confirmed by D1.
//! - `ws_peers`: WebTorrent (WebSocket) peers, kept like `peers` but in a
//!   swarm of their own whose "address" is the peer's socket location
//!   ([`crate::webtorrent::SocketRef`]); refreshes are written through.

use crate::config::TrackerConfig;
use crate::peer::{InfoHash, PeerAddr, PeerId, PeerKey};

use super::{Peer, SwarmCounters};

pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS peers (id BLOB PRIMARY KEY, rec BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS touches (slot INTEGER PRIMARY KEY, at INTEGER NOT NULL, ids BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS swarm (k INTEGER PRIMARY KEY, info_hash BLOB NOT NULL, downloaded INTEGER NOT NULL,
  pub_complete INTEGER, pub_incomplete INTEGER, pub_downloaded INTEGER, published_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS ledger (chunk INTEGER NOT NULL, part INTEGER NOT NULL, recs BLOB NOT NULL,
  PRIMARY KEY (chunk, part)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS outbox (id TEXT PRIMARY KEY, batch TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS blocked (k INTEGER PRIMARY KEY, at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS ws_peers (id BLOB PRIMARY KEY, rec BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS scrape_cache (k INTEGER PRIMARY KEY, until INTEGER NOT NULL);
";

/// Most ids in one `touches` row (20 bytes each: 1 MB, half SQLite's row cap).
pub const MAX_TOUCHES_PER_ROW: usize = 50_000;

/// A write the Durable Object must make durable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreWrite {
    UpsertPeer { id: PeerKey, rec: Vec<u8> },
    DeletePeer(PeerKey),
    /// Replace the touch ring slot `slot` (merging with what it holds for
    /// the same window; see [`merge_touch_row`]).
    Touches { slot: u32, at: u32, ids: Vec<u8> },
    /// Rewrite the single `swarm` row.
    SwarmRow(SwarmRow),
    /// Private mode: rewrite chunk `chunk` (of `chunks`) of sessions as
    /// these rows (parts `0..rows.len()`; parts beyond go).
    SessionChunk { chunks: u32, chunk: u32, rows: Vec<Vec<u8>> },
    /// Private mode: chunks from this number on no longer exist.
    DropSessionChunksFrom(u32),
    /// Private mode: empty the row-per-session tables of older versions
    /// (`sessions`, `flushed`); their contents are in chunks now.
    DropLegacySessions,
    /// Write (`Some(at)`) or delete the `blocked` row.
    Blocked(Option<u32>),
    /// Until when someone's scrape wants the counters kept fresh in KV
    /// (the `scrape_cache` row: it must outlive an eviction).
    ScrapeWanted(u32),
    /// A WebSocket peer's row in `ws_peers` (same layout as `peers`).
    UpsertWsPeer { id: PeerKey, rec: Vec<u8> },
    DeleteWsPeer(PeerKey),
}

/// The `swarm` row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SwarmRow {
    pub info_hash: InfoHash,
    pub downloaded: u64,
    pub published: Option<SwarmCounters>,
    pub published_at: u32,
}

/// A `peers` row (keyed by the entry's [`PeerKey`]) value: address (18),
/// stored last_seen (4), flags (1), the client's peer id (20).
pub fn encode_peer(peer: &Peer, seeder: bool) -> Vec<u8> {
    let mut rec = Vec::with_capacity(43);
    rec.extend_from_slice(&peer.addr.encode());
    rec.extend_from_slice(&peer.stored_seen.to_be_bytes());
    rec.push(seeder as u8 | (peer.completed as u8) << 1);
    rec.extend_from_slice(&peer.id.0);
    rec
}

/// Reads a `peers` row. Rows written before entry keys (23 bytes) are
/// keyed by the bare peer id; the peer's next announce from the same
/// address adopts them ([`super::SwarmState::announce`]).
pub fn decode_peer(key: &[u8], rec: &[u8]) -> Option<(Peer, bool)> {
    let key = PeerKey(key.try_into().ok()?);
    let id = match rec.len() {
        43 => PeerId(rec[23..43].try_into().ok()?),
        23 => PeerId(key.0),
        _ => return None,
    };
    let addr = PeerAddr::decode(&rec[..18])?;
    let last_seen = u32::from_be_bytes(rec[18..22].try_into().ok()?);
    let flags = rec[22];
    Some((Peer { key, id, addr, last_seen, stored_seen: last_seen, completed: flags & 2 != 0, heard: false }, flags & 1 != 0))
}

/// The ring slot for a flush at `now`: one slot per flush window, enough
/// slots to cover the longest peer timeout a busy swarm may use.
pub fn touch_slot(now: u32, config: &TrackerConfig) -> u32 {
    let ring = config.interval_max.max(config.interval).saturating_add(config.peer_grace) / config.flush_delay + 2;
    (now / config.flush_delay) % ring
}

/// Merges a new touch row with the one already in its slot when both belong
/// to the same window (an alarm may run twice); otherwise the new one wins.
pub fn merge_touch_row(existing: Option<(u32, Vec<u8>)>, at: u32, mut ids: Vec<u8>, config: &TrackerConfig) -> Vec<u8> {
    if let Some((old_at, old_ids)) = existing {
        if old_at / config.flush_delay == at / config.flush_delay && old_ids.len() + ids.len() <= MAX_TOUCHES_PER_ROW * 20 {
            ids.extend_from_slice(&old_ids);
        }
    }
    ids
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::swarm::fixtures::cfg;

    #[test]
    fn touch_rows_merge_within_a_window_only() {
        let c = cfg();
        assert_eq!(merge_touch_row(Some((1000, vec![1; 20])), 1001, vec![2; 20], &c).len(), 40);
        assert_eq!(merge_touch_row(Some((900, vec![1; 20])), 1001, vec![2; 20], &c).len(), 20);
        let ring = (c.interval_max.max(c.interval) + c.peer_grace) / c.flush_delay + 2;
        assert_eq!(touch_slot(1000, &c), touch_slot(1000 + ring * c.flush_delay, &c));
    }

    #[test]
    fn peer_row_round_trip() {
        let p = Peer { key: PeerKey([4; 20]), id: PeerId([3; 20]), addr: PeerAddr::new("::1".parse().unwrap(), 9), last_seen: 77, stored_seen: 77, completed: true, heard: false };
        assert_eq!(decode_peer(&p.key.0, &encode_peer(&p, true)), Some((p, true)));
        // A row from before entry keys: keyed by the bare peer id.
        let old = &encode_peer(&p, true)[..23];
        let legacy = Peer { key: PeerKey(p.id.0), ..p };
        assert_eq!(decode_peer(&p.id.0, old), Some((legacy, true)));
        assert_eq!(decode_peer(&[1; 3], &encode_peer(&p, true)), None);
    }
}
