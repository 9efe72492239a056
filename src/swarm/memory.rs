//! A swarm's storage in memory: the Durable Object's tables, applying
//! [`StoreWrite`]s as its SQL does and loading a [`SwarmState`] back as it
//! does. The one fake of storage, shared by the unit tests, the fuzz
//! targets (`fuzz/`) and the benches (`benches/`). Not part of the Worker:
//! nothing in the glue calls it, so it never reaches the wasm.

use std::collections::BTreeMap;

use crate::config::TrackerConfig;
use crate::peer::PeerKey;
use crate::response::encode_announce;
use crate::wire::SwarmAnnounce;

use super::sessions::{decode_row, SessionRecord};
use super::storage::{decode_peer, merge_touch_row, StoreWrite, SwarmRow};
use super::{Peer, SwarmState};

/// The tables of one swarm's storage (the `outbox` is the glue's: credit
/// batches leave through it, outside [`StoreWrite`]).
#[derive(Debug, Default, Clone)]
pub struct MemoryTables {
    pub peers: BTreeMap<PeerKey, Vec<u8>>,
    pub ws_peers: BTreeMap<PeerKey, Vec<u8>>,
    /// `touches`: slot -> (at, ids).
    pub touches: BTreeMap<u32, (u32, Vec<u8>)>,
    pub row: Option<SwarmRow>,
    /// `ledger`: (chunk, part) -> packed session records.
    pub ledger: BTreeMap<(u32, u32), Vec<u8>>,
    pub blocked: Option<u32>,
    /// `scrape_cache`'s `until`.
    pub scrape_wanted: u32,
    /// Writes applied so far.
    pub writes: usize,
}

impl MemoryTables {
    /// Runs the writes, in order, as the Durable Object's SQL does.
    pub fn apply(&mut self, writes: impl IntoIterator<Item = StoreWrite>, config: &TrackerConfig) {
        for w in writes {
            self.writes += 1;
            self.apply_one(w, config);
        }
    }

    fn apply_one(&mut self, w: StoreWrite, config: &TrackerConfig) {
        match w {
            StoreWrite::UpsertPeer { id, rec } => {
                self.peers.insert(id, rec);
            }
            StoreWrite::DeletePeer(id) => {
                self.peers.remove(&id);
            }
            StoreWrite::UpsertWsPeer { id, rec } => {
                self.ws_peers.insert(id, rec);
            }
            StoreWrite::DeleteWsPeer(id) => {
                self.ws_peers.remove(&id);
            }
            StoreWrite::Touches { slot, at, ids } => {
                let merged = merge_touch_row(self.touches.get(&slot).cloned(), at, ids, config);
                self.touches.insert(slot, (at, merged));
            }
            StoreWrite::SwarmRow(r) => self.row = Some(r),
            StoreWrite::SessionChunk { chunk, rows, .. } => {
                self.ledger.retain(|(c, _), _| *c != chunk);
                for (part, row) in rows.into_iter().enumerate() {
                    self.ledger.insert((chunk, part as u32), row);
                }
            }
            StoreWrite::DropSessionChunksFrom(from) => self.ledger.retain(|(c, _), _| *c < from),
            // These tables never hold the row-per-session tables of older
            // versions: nothing to drop.
            StoreWrite::DropLegacySessions => {}
            StoreWrite::Blocked(at) => self.blocked = at,
            StoreWrite::ScrapeWanted(until) => self.scrape_wanted = until,
        }
    }

    /// The `peers` rows, decoded (a row that does not decode panics: the
    /// core never writes one).
    pub fn peer_rows(&self) -> Vec<(Peer, bool)> {
        decode_all(&self.peers)
    }

    pub fn ws_peer_rows(&self) -> Vec<(Peer, bool)> {
        decode_all(&self.ws_peers)
    }

    /// The session stored under `key`, if a ledger row holds one.
    pub fn session(&self, key: &PeerKey) -> Option<SessionRecord> {
        let rows = self.ledger.values().filter_map(|r| decode_row(r));
        rows.flat_map(|(_, records)| records).find(|r| r.id == *key)?.session
    }

    /// A fresh object over these tables at `now` (the old one died),
    /// loaded as the Durable Object loads it, with the deletes its load
    /// asks for (applied). `outbox_pending`: the glue's outbox holds a batch.
    pub fn reload(&mut self, seed: u64, outbox_pending: bool, now: u32, config: &TrackerConfig) -> SwarmState {
        let mut s = SwarmState::new(seed);
        s.restore_ws(self.ws_peer_rows());
        let deletes = s.load(self.row, self.peer_rows(), self.touches.values().cloned(), now, config);
        s.load_scrape_wanted(self.scrape_wanted);
        s.load_ledger(self.ledger.values().map(|r| r.as_slice()), outbox_pending, now);
        s.blocked = self.blocked.is_some();
        self.apply(deletes, config);
        s
    }
}

fn decode_all(rows: &BTreeMap<PeerKey, Vec<u8>>) -> Vec<(Peer, bool)> {
    rows.iter().map(|(id, rec)| decode_peer(&id.0, rec).expect("storage holds an undecodable peer row")).collect()
}

/// An announce as the edge sends it: the outcome bencoded, with its
/// writes. For tests, fuzz targets and benches, which look at the bytes a
/// client gets.
pub trait EncodedAnnounce {
    fn announce_encoded(&mut self, msg: &SwarmAnnounce, now: u32, config: &TrackerConfig) -> (Vec<u8>, Vec<StoreWrite>);
}

impl EncodedAnnounce for SwarmState {
    fn announce_encoded(&mut self, msg: &SwarmAnnounce, now: u32, config: &TrackerConfig) -> (Vec<u8>, Vec<StoreWrite>) {
        let (answer, writes) = self.announce(msg, now, config);
        (encode_announce(&answer), writes)
    }
}
