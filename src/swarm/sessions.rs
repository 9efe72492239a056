//! How a swarm keeps its private-mode sessions in storage: packed into a few
//! rows ("chunks") and written behind the answer.
//!
//! Why: a row per session written before every answer cost $1 per million
//! accounted announces, more than the Worker and Durable Object requests
//! together. Announced counters are cumulative for the session, so storage
//! needs a consistent snapshot per peer id, not every announce: after a
//! restart the client's next announce is credited against the stored
//! baseline and brings back whatever the lost memory had credited. Only a
//! session that never announces again would lose its last report, so its
//! final report (`stopped`) is written before the answer.
//!
//! Each peer id hashes to one of `chunks` chunks (a power of two, grown with
//! the swarm so a chunk holds a few thousand ids). An announce marks its
//! chunk dirty; dirty chunks are rewritten whole by the swarm's alarm
//! within `FLUSH_DELAY`, with every credit batch (in the same step as the
//! outbox row) and before the answer to `stopped`. A chunk is one row per
//! `RECORDS_PER_ROW` records, so even a chunk crowded on purpose stays under
//! SQLite's row size cap. (The `ledger` table: [`super::storage::SCHEMA`].)

use crate::accounting::{Credit, Session};
use crate::peer::PeerKey;

/// A private-mode peer: its accounting baseline and the bytes credited to
/// its peer id (only ever grows; the part beyond the id's flushed mark
/// belongs to the session's user).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionRecord {
    pub session: Session,
    pub credited: Credit,
    /// When the session last announced (memory only: a steady re-announce
    /// writes nothing). Read back as the baseline's time; the swarm gives
    /// reloaded sessions a full timeout.
    pub heard: u32,
}

impl SessionRecord {
    pub const ENCODED_LEN: usize = 8 * 5 + 4;

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(Self::ENCODED_LEN);
        self.encode_into(&mut out);
        out
    }

    fn encode_into(&self, out: &mut Vec<u8>) {
        for n in [self.session.user, self.session.uploaded, self.session.downloaded, self.credited.uploaded, self.credited.downloaded] {
            out.extend_from_slice(&n.to_be_bytes());
        }
        out.extend_from_slice(&self.session.last_seen.to_be_bytes());
    }

    pub fn decode(b: &[u8]) -> Option<Self> {
        if b.len() != Self::ENCODED_LEN {
            return None;
        }
        let n = |i: usize| u64::from_be_bytes(b[i * 8..i * 8 + 8].try_into().unwrap_or_default());
        let last_seen = u32::from_be_bytes(b[40..44].try_into().ok()?);
        Some(SessionRecord {
            session: Session { user: n(0), uploaded: n(1), downloaded: n(2), last_seen },
            credited: Credit { uploaded: n(3), downloaded: n(4) },
            heard: last_seen,
        })
    }
}

/// One peer id's entry in a chunk: its session, and how much of its credit
/// is already in an outbox batch (kept after the session ends, until the
/// next batch; see `SwarmState::new_session`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkRecord {
    /// The session's key ([`PeerKey::session`]); a record written before
    /// sessions were keyed by user holds the bare peer id (`legacy`).
    pub id: PeerKey,
    pub session: Option<SessionRecord>,
    pub mark: Option<Credit>,
    pub legacy: bool,
}

/// Record flag bits: a session, a mark, and "keyed by user and peer id".
const HAS_SESSION: u8 = 1;
const HAS_MARK: u8 = 2;
const KEYED: u8 = 4;

/// id (20), flags (1), session (44), mark (16).
pub const RECORD_LEN: usize = 20 + 1 + SessionRecord::ENCODED_LEN + 16;
/// Most records in one row: 1.6 MB, under the 2 MB row cap.
pub const RECORDS_PER_ROW: usize = 20_000;
/// Ids per chunk before the chunk count doubles, and below which it halves.
const GROW_AT: usize = 4_096;
const SHRINK_AT: usize = 512;
const MAX_CHUNKS: u32 = 1_024;

/// The chunk a peer id belongs to (FNV-1a: stable across restarts).
pub fn chunk_of(id: &PeerKey, chunks: u32) -> u32 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in id.0 {
        h = (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3);
    }
    ((h ^ (h >> 32)) as u32) & (chunks.max(1) - 1)
}

/// The rows of one chunk: each starts with the chunk count it was written
/// under, then whole records.
pub fn encode_chunk(chunks: u32, records: Vec<ChunkRecord>) -> Vec<Vec<u8>> {
    records
        .chunks(RECORDS_PER_ROW)
        .map(|part| {
            let mut out = Vec::with_capacity(4 + part.len() * RECORD_LEN);
            out.extend_from_slice(&chunks.to_be_bytes());
            for r in part {
                out.extend_from_slice(&r.id.0);
                out.push(if r.session.is_some() { HAS_SESSION } else { 0 } | if r.mark.is_some() { HAS_MARK } else { 0 } | KEYED);
                match r.session {
                    Some(s) => s.encode_into(&mut out),
                    None => out.extend_from_slice(&[0; SessionRecord::ENCODED_LEN]),
                }
                let mark = r.mark.unwrap_or_default();
                out.extend_from_slice(&mark.uploaded.to_be_bytes());
                out.extend_from_slice(&mark.downloaded.to_be_bytes());
            }
            out
        })
        .collect()
}

/// One stored row: the chunk count it was written under and its records.
pub fn decode_row(b: &[u8]) -> Option<(u32, Vec<ChunkRecord>)> {
    let chunks = u32::from_be_bytes(b.get(..4)?.try_into().ok()?);
    let body = &b[4..];
    if !body.len().is_multiple_of(RECORD_LEN) || !chunks.is_power_of_two() {
        return None;
    }
    let records = body
        .chunks_exact(RECORD_LEN)
        .map(|r| {
            let id = PeerKey(r[..20].try_into().ok()?);
            let flags = r[20];
            let session = if flags & HAS_SESSION != 0 { Some(SessionRecord::decode(&r[21..21 + SessionRecord::ENCODED_LEN])?) } else { None };
            let m = &r[21 + SessionRecord::ENCODED_LEN..];
            let mark = (flags & HAS_MARK != 0).then(|| Credit {
                uploaded: u64::from_be_bytes(m[..8].try_into().unwrap_or_default()),
                downloaded: u64::from_be_bytes(m[8..16].try_into().unwrap_or_default()),
            });
            Some(ChunkRecord { id, session, mark, legacy: flags & KEYED == 0 })
        })
        .collect::<Option<Vec<_>>>()?;
    Some((chunks, records))
}

/// A set of chunk numbers (below `MAX_CHUNKS`), as a bit set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChunkSet(Vec<u64>);

impl ChunkSet {
    pub fn insert(&mut self, chunk: u32) {
        let (word, bit) = ((chunk / 64) as usize, chunk % 64);
        if self.0.len() <= word {
            self.0.resize(word + 1, 0);
        }
        self.0[word] |= 1 << bit;
    }

    pub fn contains(&self, chunk: u32) -> bool {
        self.0.get((chunk / 64) as usize).is_some_and(|w| w & (1 << (chunk % 64)) != 0)
    }

    pub fn is_empty(&self) -> bool {
        self.0.iter().all(|w| *w == 0)
    }

    pub fn len(&self) -> usize {
        self.0.iter().map(|w| w.count_ones() as usize).sum()
    }

    /// The chunks in the set, in order.
    pub fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        (0..self.0.len() as u32 * 64).filter(|c| self.contains(*c))
    }

    fn all(chunks: u32) -> Self {
        let mut s = ChunkSet::default();
        for c in 0..chunks {
            s.insert(c);
        }
        s
    }
}

/// Which chunks memory changed since storage last saw them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionChunks {
    chunks: u32,
    dirty: ChunkSet,
    /// Storage still has the old row-per-session tables: empty them with the
    /// next write.
    legacy: bool,
}

impl Default for SessionChunks {
    fn default() -> Self {
        SessionChunks { chunks: 1, dirty: ChunkSet::default(), legacy: false }
    }
}

/// What to write for the dirty chunks: each chunk's rows, and (after the
/// chunk count shrank) the first chunk number that no longer exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkPlan {
    pub chunks: u32,
    pub dirty: ChunkSet,
    pub drop_from: Option<u32>,
    pub drop_legacy: bool,
}

impl SessionChunks {
    pub fn chunks(&self) -> u32 {
        self.chunks
    }

    pub fn mark_dirty(&mut self, id: &PeerKey) {
        self.dirty.insert(chunk_of(id, self.chunks));
    }

    pub fn is_dirty(&self) -> bool {
        !self.dirty.is_empty()
    }

    /// After a load: storage was written under `chunks`.
    pub fn loaded(&mut self, chunks: u32) {
        self.chunks = chunks.clamp(1, MAX_CHUNKS);
    }

    /// After loading the old tables: everything must be rewritten as chunks.
    pub fn loaded_legacy(&mut self) {
        self.legacy = true;
        self.dirty = ChunkSet::all(self.chunks);
    }

    /// Storage was freed: nothing is stored, nothing is owed to it.
    pub fn forget(&mut self) {
        *self = SessionChunks::default();
    }

    /// Takes the dirty chunks to write now for `ids` peer ids; resizes the
    /// chunk count first when it has drifted far from the swarm's size (then
    /// every chunk is rewritten).
    pub fn take_plan(&mut self, ids: usize) -> Option<ChunkPlan> {
        if self.dirty.is_empty() {
            return None;
        }
        let mut want = self.chunks;
        while ids > want as usize * GROW_AT && want < MAX_CHUNKS {
            want *= 2;
        }
        while want > 1 && ids < want as usize * SHRINK_AT {
            want /= 2;
        }
        let mut drop_from = None;
        if want != self.chunks {
            drop_from = (want < self.chunks).then_some(want);
            self.chunks = want;
            self.dirty = ChunkSet::all(want);
        }
        Some(ChunkPlan {
            chunks: self.chunks,
            dirty: std::mem::take(&mut self.dirty),
            drop_from,
            drop_legacy: std::mem::take(&mut self.legacy),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(n: u8, session: bool, mark: bool) -> ChunkRecord {
        ChunkRecord {
            id: PeerKey([n; 20]),
            session: session.then_some(SessionRecord {
                session: Session { user: n as u64, uploaded: 10, downloaded: 20, last_seen: 7 },
                credited: Credit { uploaded: 30, downloaded: 40 },
                heard: 7,
            }),
            mark: mark.then_some(Credit { uploaded: 5, downloaded: 6 }),
            legacy: false,
        }
    }

    #[test]
    fn rows_round_trip_and_split_at_the_row_cap() {
        let records = vec![rec(3, true, true), rec(1, true, false), rec(2, false, true)];
        let rows = encode_chunk(4, records.clone());
        assert_eq!(rows.len(), 1);
        let (chunks, back) = decode_row(&rows[0]).unwrap();
        assert_eq!(chunks, 4);
        assert_eq!(back, records);

        let many: Vec<ChunkRecord> = (0..RECORDS_PER_ROW + 5)
            .map(|i| ChunkRecord { id: PeerKey([(i % 251) as u8; 20].map(|b| b ^ (i / 251) as u8)), ..rec(0, true, false) })
            .collect();
        let rows = encode_chunk(1, many);
        assert_eq!(rows.len(), 2);
        assert!(rows.iter().all(|r| r.len() <= 4 + RECORDS_PER_ROW * RECORD_LEN));
        assert!(decode_row(&rows[0][..rows[0].len() - 1]).is_none(), "a torn record is refused");
    }

    #[test]
    fn chunk_count_follows_the_swarm_size() {
        let mut c = SessionChunks::default();
        assert!(c.take_plan(10).is_none(), "nothing dirty, nothing written");
        c.mark_dirty(&PeerKey([1; 20]));
        let p = c.take_plan(10).unwrap();
        assert_eq!((p.chunks, p.dirty.len(), p.drop_from), (1, 1, None));
        c.mark_dirty(&PeerKey([1; 20]));
        let p = c.take_plan(20_000).unwrap();
        assert_eq!((p.chunks, p.dirty.len(), p.drop_from), (8, 8, None), "grows and rewrites every chunk");
        c.mark_dirty(&PeerKey([2; 20]));
        let p = c.take_plan(5_000).unwrap();
        assert_eq!(p.chunks, 8, "no flapping between the thresholds");
        assert_eq!(p.dirty.len(), 1);
        c.mark_dirty(&PeerKey([2; 20]));
        let p = c.take_plan(100).unwrap();
        assert_eq!((p.chunks, p.dirty.len(), p.drop_from), (1, 1, Some(1)), "shrinks and drops the rest");
        assert!(chunk_of(&PeerKey([9; 20]), 1) == 0);
        assert!((0..64u8).all(|n| chunk_of(&PeerKey([n; 20]), 8) < 8));
    }
}
