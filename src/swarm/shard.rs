//! Many small public swarms in one object (`SWARM_SHARDS`). A torrent's
//! own object writes a row for every join, stop and expiry and publishes
//! each change alone; a swarm of three peers pays that on most of its
//! announces. A shard keeps the small swarms of its share of info hashes
//! in memory and writes them behind, packed: the swarms of a bucket in one
//! blob, at most once per `FLUSH_DELAY` for all the changes meanwhile.
//! Its own sums stand in for the totals shards' rows (`/stats`), and a
//! scrape it answers is not cached in KV.
//!
//! A swarm that reaches `SHARD_PROMOTE` peers moves to its own object for
//! good: the shard records the move, hands the peers over and forwards
//! the torrent's later requests there. A torrent this shard has not seen
//! may live in its own object already (from before shards, or a WebTorrent
//! or operator request moved it): the shard asks that object once.
//!
//! The cost of writing behind: a restart loses at most `FLUSH_DELAY`
//! seconds (5 at most) of joins and stops; such a peer is back at its next
//! announce.

use std::collections::HashMap;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::config::TrackerConfig;
use crate::failure::Failure;
use crate::peer::InfoHash;
use crate::response;
use crate::swarm_totals::ShardTotals;
use crate::wire::SwarmAnnounce;

use super::storage::{decode_peer, encode_peer, SwarmRow};
use super::{SwarmCounters, SwarmState, EXPIRY_SWEEP_GAP};

/// A shard's swarms are packed in buckets of about this many (a power of
/// two of buckets, 1 to [`MAX_BUCKETS`], as the shard grows and shrinks):
/// a flush writes one row per bucket that changed, and rewrites it whole.
pub const SWARMS_PER_BUCKET: usize = 256;
/// Most swarms a shard holds in memory (about 1 KB each): a shard this full
/// sends torrents it has not seen to their own objects, unrecorded (a
/// flood of made-up info hashes must not take the isolate's memory).
pub const MAX_SWARMS: usize = 50_000;
pub const MAX_BUCKETS: u8 = 128;

/// FNV-1a over the whole info hash: hashes that share a prefix (made up
/// ones, truncated v2 hashes) still spread over shards and buckets.
fn mix(hash: &InfoHash) -> u32 {
    hash.0.iter().fold(0x811c_9dc5u32, |h, b| (h ^ *b as u32).wrapping_mul(0x0100_0193))
}

/// The shard object of `hash` among `shards` (its name: [`shard_name`]).
pub fn shard_of(hash: &InfoHash, shards: u32) -> u32 {
    (mix(hash) & 0xffff) % shards.max(1)
}

/// The object name of shard `n`: `shard-` and four hex digits.
pub fn shard_name(n: u32) -> String {
    format!("shard-{n:04x}")
}

/// The bucket of `hash` among `buckets` (a power of two): doubling them
/// splits each bucket in two.
fn bucket_of(hash: &InfoHash, buckets: u8) -> u8 {
    ((mix(hash) >> 16) & (buckets as u32 - 1)) as u8
}

/// The buckets for `swarms` swarms, from `now` buckets: doubled when they
/// are over [`SWARMS_PER_BUCKET`] each, halved when under a quarter of it.
fn buckets_for(swarms: usize, now: u8) -> u8 {
    let mut b = now.max(1);
    while swarms > SWARMS_PER_BUCKET * b as usize && b < MAX_BUCKETS {
        b *= 2;
    }
    while b > 1 && swarms * 4 < SWARMS_PER_BUCKET * b as usize {
        b /= 2;
    }
    b
}

/// Where an announce goes, as the shard decides it.
#[derive(Debug, PartialEq, Eq)]
pub enum Routed {
    /// Answered here: the bencoded body, and the refusal if it is one.
    Here { body: Vec<u8>, failure: Option<Failure> },
    /// The torrent lives in its own object: forward the request there.
    Moved,
    /// Not seen here: ask the torrent's own object whether it holds it,
    /// then [`Shard::settle`].
    Unknown,
}

/// What a torrent's own object holds, when a shard asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Own {
    /// Peers, a stored row or a block: the torrent lives there.
    Holds,
    /// Nothing but, perhaps, the completed count an emptied swarm left.
    Free { downloaded: u64 },
}

impl Own {
    /// The answer's text: `holds`, or `free <downloaded>`.
    pub fn to_text(self) -> String {
        match self {
            Own::Holds => "holds".into(),
            Own::Free { downloaded } => format!("free {downloaded}"),
        }
    }

    pub fn from_text(text: &str) -> Option<Own> {
        match text.split_once(' ') {
            None if text == "holds" => Some(Own::Holds),
            Some(("free", n)) => n.parse().ok().map(|downloaded| Own::Free { downloaded }),
            _ => None,
        }
    }
}

/// A write the object runs (SQLite), as the core asks for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShardWrite {
    /// A bucket's swarms, packed (empty: none left).
    Bucket { bucket: u8, blob: Vec<u8> },
    /// The shard has fewer buckets now: drop those from this one on.
    DropBucketsFrom(u8),
    /// A torrent moved to its own object; `handoff` is its swarm until
    /// that object has it (then `None`).
    Moved { hash: InfoHash, handoff: Option<Vec<u8>> },
}

/// A swarm in the shard, and the counters its sums hold for it.
struct Hosted {
    state: SwarmState,
    counted: SwarmCounters,
}

/// The shard's swarms and the bookkeeping of writing them behind.
pub struct Shard {
    swarms: HashMap<InfoHash, Hosted>,
    /// Torrents whose swarm emptied, by the completed count they keep
    /// (about 50 bytes each, where a swarm in memory takes a kilobyte).
    emptied: HashMap<InfoHash, u64>,
    /// Torrents that live in their own objects (when they moved, or 0 if
    /// they were there already).
    moved: HashMap<InfoHash, u64>,
    /// Swarms moved out but not yet handed over (rarely any).
    handoffs: Vec<(InfoHash, Vec<u8>)>,
    /// How many buckets the stored rows use.
    buckets: u8,
    /// Buckets changed since the last flush (a bit each), and since when.
    dirty: u128,
    dirty_since: Option<u32>,
    next_sweep: u32,
    totals: ShardTotals,
    rng: SmallRng,
}

impl Shard {
    pub fn new(seed: u64) -> Self {
        Shard {
            swarms: HashMap::new(),
            emptied: HashMap::new(),
            moved: HashMap::new(),
            handoffs: Vec::new(),
            buckets: 1,
            dirty: 0,
            dirty_since: None,
            next_sweep: 0,
            totals: ShardTotals::default(),
            rng: SmallRng::seed_from_u64(seed),
        }
    }

    /// Rebuilds the shard from its bucket blobs (by bucket number) and
    /// moved rows. A swarm whose torrent moved (its bucket not yet
    /// rewritten) is left out.
    pub fn load<'a>(
        &mut self,
        buckets: impl IntoIterator<Item = (u8, &'a [u8])>,
        moved: impl IntoIterator<Item = (InfoHash, Option<Vec<u8>>)>,
        now: u32,
        config: &TrackerConfig,
    ) {
        for (hash, handoff) in moved {
            self.moved.insert(hash, 0);
            if let Some(swarm) = handoff {
                self.handoffs.push((hash, swarm));
            }
        }
        for (bucket, blob) in buckets {
            self.buckets = self.buckets.max((bucket as u16 + 1).next_power_of_two().min(MAX_BUCKETS as u16) as u8);
            for (row, peers) in decode_bucket(blob) {
                if self.moved.contains_key(&row.info_hash) {
                    self.mark(&row.info_hash, now);
                    continue;
                }
                if peers.is_empty() {
                    self.keep_emptied(row.info_hash, row.downloaded);
                    continue;
                }
                let mut state = SwarmState::new(self.rng.random());
                let deletes = state.load(Some(row), peers, std::iter::empty(), now, config);
                if !deletes.is_empty() {
                    self.mark(&row.info_hash, now);
                }
                self.host(row.info_hash, state);
            }
        }
        // Loading expired the silent peers (`SwarmState::load`): the next
        // sweep is a gap away, where the alarm storage holds most likely
        // is already, so a shard loaded again need not set it.
        self.next_sweep = now + sweep_gap(config);
    }

    fn keep_emptied(&mut self, hash: InfoHash, downloaded: u64) {
        self.totals.apply(&hash, None, SwarmCounters { downloaded, ..SwarmCounters::default() });
        self.emptied.insert(hash, downloaded);
    }

    fn host(&mut self, hash: InfoHash, state: SwarmState) {
        let counted = state.counters();
        self.totals.apply(&hash, None, counted);
        self.swarms.insert(hash, Hosted { state, counted });
    }

    /// An announce into the shard at `now`.
    pub fn announce(&mut self, msg: &SwarmAnnounce, now: u32, config: &TrackerConfig) -> Routed {
        let hash = msg.info_hash;
        // Most announces are for a swarm in memory: one lookup decides.
        if !self.swarms.contains_key(&hash) {
            if self.moved.contains_key(&hash) {
                return Routed::Moved;
            }
            if let Some(downloaded) = self.emptied.remove(&hash) {
                // Back: a swarm again, from the count it kept.
                self.totals.apply(&hash, Some(SwarmCounters { downloaded, ..SwarmCounters::default() }), SwarmCounters::default());
                let seed = self.rng.random();
                self.host(hash, revived(hash, downloaded, seed));
            }
        }
        let Some(hosted) = self.swarms.get_mut(&hash) else { return Routed::Unknown };
        let (answer, writes) = hosted.state.announce(msg, now, config);
        let failure = answer.as_ref().err().copied();
        let body = response::encode_announce(&answer);
        if !writes.is_empty() {
            self.changed(&hash, now);
        }
        Routed::Here { body, failure }
    }

    /// Settles a torrent [`Routed::Unknown`] found, as its own object
    /// answered: it holds the torrent (the torrent is moved, and the write
    /// records that), or not (a new swarm here, from the completed count
    /// that object left). Another request may have settled it meanwhile.
    pub fn settle(&mut self, hash: InfoHash, own: Own, now: u32) -> Option<ShardWrite> {
        if self.knows(&hash) {
            return None;
        }
        let downloaded = match own {
            Own::Holds => {
                self.moved.insert(hash, 0);
                return Some(ShardWrite::Moved { hash, handoff: None });
            }
            // Full: the torrent stays with its own object, unrecorded.
            Own::Free { .. } if !self.takes_new() => return None,
            Own::Free { downloaded } => downloaded,
        };
        let seed = self.rng.random();
        self.host(hash, revived(hash, downloaded, seed));
        if downloaded > 0 {
            self.mark(&hash, now);
        }
        None
    }

    /// Whether the shard takes torrents it has not seen ([`MAX_SWARMS`]).
    pub fn takes_new(&self) -> bool {
        self.swarms.len() < MAX_SWARMS
    }

    /// Whether the shard has settled this torrent: hosts it or moved it.
    pub fn knows(&self, hash: &InfoHash) -> bool {
        self.swarms.contains_key(hash) || self.emptied.contains_key(hash) || self.moved.contains_key(hash)
    }

    /// The torrents that should move now: grown to `SHARD_PROMOTE` peers.
    pub fn promote_due(&self, hash: &InfoHash, config: &TrackerConfig) -> bool {
        self.swarms.get(hash).is_some_and(|h| h.state.swarm.len() >= config.shard_promote as usize)
    }

    /// Moves a torrent out: its swarm leaves the shard's memory, sums and
    /// bucket; the write records the move with the swarm to hand over
    /// (`None` if the shard did not have it, or it moved already).
    pub fn move_out(&mut self, hash: InfoHash, now: u32) -> Option<ShardWrite> {
        if self.moved.contains_key(&hash) {
            return None;
        }
        let handoff = match (self.swarms.remove(&hash), self.emptied.remove(&hash)) {
            (Some(h), _) => Some((h.counted, encode_swarm(&h.state))),
            (None, Some(d)) => Some((SwarmCounters { downloaded: d, ..SwarmCounters::default() }, encode_record(&hash, d, 0, std::iter::empty()))),
            (None, None) => None,
        }
        .map(|(counted, swarm)| {
            self.totals.apply(&hash, Some(counted), SwarmCounters::default());
            self.mark(&hash, now);
            swarm
        });
        self.moved.insert(hash, now as u64);
        if let Some(swarm) = &handoff {
            self.handoffs.push((hash, swarm.clone()));
        }
        Some(ShardWrite::Moved { hash, handoff })
    }

    /// Swarms moved out but not yet handed over (a failed or interrupted
    /// handoff), to send again.
    pub fn handoffs(&self) -> Vec<(InfoHash, Vec<u8>)> {
        self.handoffs.clone()
    }

    /// The torrent's own object has its swarm now.
    pub fn handed_off(&mut self, hash: InfoHash) -> Option<ShardWrite> {
        let i = self.handoffs.iter().position(|(h, _)| *h == hash)?;
        self.handoffs.swap_remove(i);
        Some(ShardWrite::Moved { hash, handoff: None })
    }

    /// A torrent's counters (zeros if the shard has no swarm for it), or
    /// `None` when its own object has them (it moved, or the shard is full
    /// and has not seen it).
    pub fn counters(&self, hash: &InfoHash) -> Option<SwarmCounters> {
        if self.moved.contains_key(hash) || (!self.knows(hash) && !self.takes_new()) {
            return None;
        }
        Some(match (self.swarms.get(hash), self.emptied.get(hash)) {
            (Some(h), _) => h.state.counters(),
            (None, Some(d)) => SwarmCounters { downloaded: *d, ..SwarmCounters::default() },
            (None, None) => SwarmCounters::default(),
        })
    }

    /// A swarm changed: its bucket is written at the next flush, and the
    /// sums follow its counters.
    fn changed(&mut self, hash: &InfoHash, now: u32) {
        self.mark(hash, now);
        if let Some(h) = self.swarms.get_mut(hash) {
            let c = h.state.counters();
            if c != h.counted {
                self.totals.apply(hash, Some(h.counted), c);
                h.counted = c;
            }
        }
    }

    fn mark(&mut self, hash: &InfoHash, now: u32) {
        self.dirty |= 1 << bucket_of(hash, self.buckets);
        self.dirty_since.get_or_insert(now);
    }

    /// Expires silent peers in every swarm (at most every
    /// `EXPIRY_SWEEP_GAP` seconds). An emptied swarm leaves memory: its
    /// completed count is kept, if it has one, for the torrent's return;
    /// one without is forgotten (its return asks the torrent's own object
    /// again).
    pub fn sweep(&mut self, now: u32, config: &TrackerConfig) {
        if now < self.next_sweep {
            return;
        }
        self.next_sweep = now + sweep_gap(config);
        let mut changed = Vec::new();
        let mut empty = Vec::new();
        for (hash, h) in self.swarms.iter_mut() {
            let cutoff = now.saturating_sub(h.state.pace.peer_timeout(config));
            let writes = h.state.expire(cutoff);
            if !writes.is_empty() || h.state.flush_touches(now, config).is_some() {
                changed.push(*hash);
            }
            if h.state.is_empty() {
                empty.push(*hash);
            }
        }
        for hash in changed {
            self.changed(&hash, now);
        }
        for hash in empty {
            let Some(h) = self.swarms.remove(&hash) else { continue };
            self.totals.apply(&hash, Some(h.counted), SwarmCounters::default());
            self.mark(&hash, now);
            if h.counted.downloaded > 0 {
                self.keep_emptied(hash, h.counted.downloaded);
            }
        }
    }

    /// The buckets to write, if the oldest change is `FLUSH_DELAY` old
    /// (or `force`: a handoff or the object's end).
    pub fn flush(&mut self, now: u32, config: &TrackerConfig, force: bool) -> Vec<ShardWrite> {
        match self.dirty_since {
            Some(since) if force || now >= since.saturating_add(flush_delay(config)) => {}
            _ => return Vec::new(),
        }
        self.dirty_since = None;
        let mut writes = Vec::new();
        let buckets = buckets_for(self.swarms.len() + self.emptied.len() / 16, self.buckets);
        if buckets != self.buckets {
            // Every swarm changes bucket: all are written again.
            if buckets < self.buckets {
                writes.push(ShardWrite::DropBucketsFrom(buckets));
            }
            self.buckets = buckets;
            self.dirty = u128::MAX;
        }
        let dirty = std::mem::take(&mut self.dirty);
        let mut blobs: Vec<Vec<u8>> = vec![Vec::new(); buckets as usize];
        let records = self.swarms.iter().map(|(hash, h)| (hash, encode_swarm(&h.state)));
        let emptied = self.emptied.iter().map(|(hash, d)| (hash, encode_record(hash, *d, 0, std::iter::empty())));
        for (hash, record) in records.chain(emptied) {
            let bucket = bucket_of(hash, buckets);
            if dirty & 1 << bucket != 0 {
                blobs[bucket as usize].extend_from_slice(&(record.len() as u32).to_be_bytes());
                blobs[bucket as usize].extend_from_slice(&record);
            }
        }
        let changed = (0..buckets).zip(blobs).filter(|(bucket, _)| dirty & 1 << bucket != 0);
        writes.extend(changed.map(|(bucket, blob)| ShardWrite::Bucket { bucket, blob }));
        writes
    }

    /// When the object's alarm should next run: the pending flush, the
    /// next sweep while any swarm has peers, a handoff to retry.
    pub fn next_alarm(&self, now: u32, config: &TrackerConfig) -> Option<u32> {
        let flush = self.dirty_since.map(|s| s.saturating_add(flush_delay(config)));
        let live = self.swarms.values().any(|h| !h.state.is_empty());
        let sweep = live.then(|| self.next_sweep.max(now + 1));
        let handoff = (!self.handoffs.is_empty()).then_some(now + HANDOFF_RETRY);
        [flush, sweep, handoff].into_iter().flatten().min()
    }

    /// For an operator: swarms in memory, emptied swarms kept as a count,
    /// torrents moved out, handoffs pending, and whether changes wait to be
    /// written.
    pub fn status(&self) -> [usize; 5] {
        [self.swarms.len(), self.emptied.len(), self.moved.len(), self.handoffs.len(), self.dirty_since.is_some() as usize]
    }

    /// The shard's sums and its `top` busiest swarms, for `/stats`.
    pub fn gauges(&mut self, top: usize) -> crate::stats::Gauges {
        if let Some(g) = self.totals.gauges(top) {
            return g;
        }
        let best = self.swarms.iter().map(|(hash, h)| (*hash, h.counted)).collect();
        self.totals.reset_candidates(best);
        self.totals.gauges(top).unwrap_or_default()
    }
}

/// Changes wait at most this long to be written (`FLUSH_DELAY`, capped):
/// well inside the ~10 s an idle object lives, so the alarm that writes
/// them finds them in memory.
pub const MAX_FLUSH_DELAY: u32 = 5;

fn flush_delay(config: &TrackerConfig) -> u32 {
    config.flush_delay.min(MAX_FLUSH_DELAY)
}

/// Seconds before a failed handoff is sent again.
pub const HANDOFF_RETRY: u32 = 10;

fn sweep_gap(config: &TrackerConfig) -> u32 {
    EXPIRY_SWEEP_GAP.min(config.interval.saturating_add(config.peer_grace)).max(1)
}

/// One swarm, as a bucket and a handoff carry it: the `swarm` row's info
/// hash and completed count, then each peer (key, record) as its own
/// object stores them, with the time it was last heard from.
pub fn encode_swarm(state: &SwarmState) -> Vec<u8> {
    let hash = state.info_hash.unwrap_or(InfoHash([0; 20]));
    encode_record(&hash, state.counters().downloaded, state.swarm.len(), state.swarm.peers())
}

fn encode_record<'a>(hash: &InfoHash, downloaded: u64, n: usize, peers: impl Iterator<Item = (&'a super::Peer, bool)>) -> Vec<u8> {
    let mut out = Vec::with_capacity(32 + n * 63);
    out.extend_from_slice(&hash.0);
    out.extend_from_slice(&downloaded.to_be_bytes());
    out.extend_from_slice(&(n as u32).to_be_bytes());
    for (peer, seeder) in peers {
        let fresh = super::Peer { stored_seen: peer.last_seen, ..*peer };
        out.extend_from_slice(&peer.key.0);
        out.extend_from_slice(&encode_peer(&fresh, seeder));
    }
    out
}

/// A swarm with no peers yet, from the completed count its torrent kept.
fn revived(hash: InfoHash, downloaded: u64, seed: u64) -> SwarmState {
    let mut state = SwarmState::new(seed);
    state.info_hash = Some(hash);
    state.swarm.set_downloaded(downloaded);
    state
}

/// Reads [`encode_swarm`]'s bytes: the swarm row and the peers.
pub fn decode_swarm(bytes: &[u8]) -> Option<(SwarmRow, Vec<(super::Peer, bool)>)> {
    let hash = InfoHash(bytes.get(..20)?.try_into().ok()?);
    let downloaded = u64::from_be_bytes(bytes.get(20..28)?.try_into().ok()?);
    let n = u32::from_be_bytes(bytes.get(28..32)?.try_into().ok()?) as usize;
    let mut peers = Vec::with_capacity(n.min(bytes.len() / 63));
    let mut at = 32;
    for _ in 0..n {
        let rec = bytes.get(at..at + 63)?;
        peers.push(decode_peer(&rec[..20], &rec[20..])?);
        at += 63;
    }
    let row = SwarmRow { info_hash: hash, downloaded, published: None, published_at: 0 };
    Some((row, peers))
}

/// The swarms of a bucket blob (length-prefixed [`encode_swarm`]s); a
/// damaged one ends the bucket.
fn decode_bucket(blob: &[u8]) -> Vec<(SwarmRow, Vec<(super::Peer, bool)>)> {
    let mut out = Vec::new();
    let mut at: usize = 0;
    while let Some(len) = blob.get(at..at.saturating_add(4)) {
        let len = u32::from_be_bytes(len.try_into().unwrap_or_default()) as usize;
        let end = at.saturating_add(4).saturating_add(len);
        let Some(swarm) = blob.get(at + 4..end).and_then(decode_swarm) else { break };
        out.push(swarm);
        at = end;
    }
    out
}

#[cfg(test)]
mod tests;
