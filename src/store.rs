//! How a swarm is kept in its Durable Object's SQLite storage, and what an
//! announce or an alarm must write there.
//!
//! The in-memory [`Swarm`] is a cache of these tables:
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
//!   behind the answer (see [`crate::session_store`]); `outbox`: credit
//!   batches not yet confirmed by D1.
//! - `ws_peers`: WebTorrent (WebSocket) peers, kept like `peers` but in a
//!   swarm of their own whose "address" is the peer's socket location
//!   ([`crate::webtorrent::SocketRef`]); refreshes are written through.
//!
//! Nothing here touches the Worker runtime: the Durable Object glue runs the
//! SQL these types describe, so the rules are tested natively.

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use std::collections::HashMap;

use crate::accounting::{self, Credit, Session};
pub use crate::flags::CreditBatch;
use crate::flags::{self, Balance, Flag};
pub use crate::session_store::SessionRecord;
use crate::session_store::{self, ChunkRecord, SessionChunks};
use crate::announce::AnnounceEvent;
use crate::config::TrackerConfig;
use crate::pace::Pace;
use crate::peer::{InfoHash, PeerAddr, PeerId, PeerKey};
use crate::failure::Failure;
use crate::response::{AnnounceAnswer, AnnounceResponse, PeerListFormat};
use crate::swarm::{Peer, PeerAnnounce, PeerChange, Swarm, SwarmCounters};
use crate::webtorrent::{SocketRef, SwarmWsReply};
use crate::wire::{Account, SwarmAnnounce};

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

/// What a newcomer to a full swarm is told (it still gets peers).
pub const FULL_WARNING: &str = "swarm is full: you get peers but are not listed until a slot frees";

/// Most ids in one `touches` row (20 bytes each: 1 MB, half SQLite's row cap).
pub const MAX_TOUCHES_PER_ROW: usize = 50_000;

/// Alarms for expiry are at least this many seconds apart, so a large swarm
/// whose peers expire one by one does not wake its object for each.
pub const EXPIRY_SWEEP_GAP: u32 = 60;

/// Swarms with at least this many peers batch their refreshes into one
/// ring row per flush window; smaller ones write a refreshed peer's row
/// directly (cheaper than a ring row plus an alarm for one peer).
pub const DENSE_SWARM: usize = 1_000;

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
/// address adopts them ([`SwarmState::announce`]).
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

/// Encodes the flushed marks as older versions stored them (one row).
pub fn encode_marks(marks: &HashMap<PeerId, Credit>) -> Vec<u8> {
    let mut out = Vec::with_capacity(marks.len() * 36);
    for (id, c) in marks {
        out.extend_from_slice(&id.0);
        out.extend_from_slice(&c.uploaded.to_be_bytes());
        out.extend_from_slice(&c.downloaded.to_be_bytes());
    }
    out
}

pub fn decode_marks(b: &[u8]) -> HashMap<PeerId, Credit> {
    b.chunks_exact(36)
        .filter_map(|c| {
            let id = PeerId(c[..20].try_into().ok()?);
            let up = u64::from_be_bytes(c[20..28].try_into().ok()?);
            let down = u64::from_be_bytes(c[28..36].try_into().ok()?);
            Some((id, Credit { uploaded: up, downloaded: down }))
        })
        .collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SwarmRow {
    pub info_hash: InfoHash,
    pub downloaded: u64,
    pub published: Option<SwarmCounters>,
    pub published_at: u32,
}

/// What an alarm should do after [`SwarmState::maintain`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Maintenance {
    pub writes: Vec<StoreWrite>,
    /// Counters to publish now: to the totals behind `/stats`, and to KV as
    /// `kv` says (the DO then calls [`SwarmState::published`]).
    pub publish: Option<(InfoHash, SwarmCounters)>,
    /// Whether KV's scrape cache gets them too: `Some(0)` for good
    /// (`SCRAPE_CACHE = 0` or `FULL_SCRAPE`), `Some(t)` until `t` (someone
    /// scraped it lately), `None` not.
    pub kv: Option<u32>,
    /// The swarm is empty: these are its final counters, kept in KV for
    /// good (`final:<hash>`) so its completed count outlives its storage.
    pub final_counters: bool,
    /// The swarm is empty and its final counters are in KV: free storage.
    pub free_storage: bool,
}

/// A swarm plus the bookkeeping that keeps storage in step with it.
pub struct SwarmState {
    pub info_hash: Option<InfoHash>,
    pub swarm: Swarm,
    /// WebTorrent peers: offers go only to them, and they count with `swarm`.
    pub ws: Swarm,
    pending_touches: Vec<PeerKey>,
    published: Option<SwarmCounters>,
    published_at: u32,
    /// Whether the `swarm` row exists in storage.
    row_stored: bool,
    rng: SmallRng,
    /// Private mode: each session's baseline and credited bytes, by
    /// [`PeerKey::session`] (user and peer id).
    sessions: HashMap<PeerKey, SessionRecord>,
    /// Private mode: the part of each session's credit already in an outbox
    /// batch (stored beside the session in its chunk).
    marks: HashMap<PeerKey, Credit>,
    /// Private mode: flags for admins, sent with the next credit batch.
    pending_flags: Vec<Flag>,
    /// Private mode: uploads and downloads credited here since loading.
    balance: Balance,
    /// Private mode: which chunks of `sessions` and `marks` storage lacks.
    chunks: SessionChunks,
    /// Private mode: when an announce last wrote session chunks. Writes are
    /// throttled to one per `FLUSH_DELAY`: the first change after a quiet
    /// spell is written before its answer (a sparse swarm never waits on
    /// an alarm), later ones wait for the alarm at the window's end.
    sessions_written_at: Option<u32>,
    /// Private mode: when the credit gathered since the last batch is due
    /// at D1 (`CREDIT_FLUSH` after the first of it), so alarms that come
    /// sooner for other work do not flush early.
    credit_due_at: Option<u32>,
    /// Private mode: an outbox batch still waits for D1.
    pub outbox_pending: bool,
    /// Private mode: some session holds credit not yet taken into a batch
    /// (kept as a flag so the announce path never scans the sessions).
    unflushed: bool,
    /// The oldest `last_seen` in the swarm as of the last sweep (a lower
    /// bound: announces only move peers later), so scheduling the next
    /// expiry sweep never scans the swarm on the announce path.
    oldest_seen: Option<u32>,
    /// An operator blocked this torrent.
    pub blocked: bool,
    /// Someone scraped this torrent lately: keep its KV counters fresh
    /// until then (`SCRAPE_CACHE`).
    scrape_wanted_until: u32,
    /// What KV's cache holds for this swarm, as far as this instance knows
    /// (after a reload: what was last published).
    kv_has: Option<SwarmCounters>,
    /// The announce rate and the interval it calls for.
    pub pace: Pace,
}

impl SwarmState {
    pub fn new(seed: u64) -> Self {
        let mut rng = SmallRng::seed_from_u64(seed);
        let hash_key = [rng.random(), rng.random()];
        SwarmState {
            info_hash: None,
            swarm: Swarm::with_hash_key(hash_key),
            ws: Swarm::with_hash_key([hash_key[1], hash_key[0]]),
            pending_touches: Vec::new(),
            published: None,
            published_at: 0,
            row_stored: false,
            rng,
            sessions: HashMap::new(),
            marks: HashMap::new(),
            pending_flags: Vec::new(),
            balance: Balance::default(),
            chunks: SessionChunks::default(),
            sessions_written_at: None,
            credit_due_at: None,
            outbox_pending: false,
            unflushed: false,
            oldest_seen: None,
            blocked: false,
            pace: Pace::default(),
            scrape_wanted_until: 0,
            kv_has: None,
        }
    }

    /// Rebuilds the state from storage rows at time `now`; returns the
    /// deletes for peers that expired while the object was away.
    pub fn load(
        &mut self,
        row: Option<SwarmRow>,
        peers: impl IntoIterator<Item = (Peer, bool)>,
        touches: impl IntoIterator<Item = (u32, Vec<u8>)>,
        now: u32,
        config: &TrackerConfig,
    ) -> Vec<StoreWrite> {
        if let Some(row) = row {
            self.info_hash = Some(row.info_hash);
            self.swarm.set_downloaded(row.downloaded);
            self.published = row.published;
            self.kv_has = row.published;
            self.published_at = row.published_at;
            self.row_stored = true;
        }
        let peers: Vec<(Peer, bool)> = peers.into_iter().collect();
        self.swarm.reserve(peers.len());
        for (peer, seeder) in peers {
            self.swarm.restore(peer, seeder);
        }
        // A busy swarm's peers were told a longer interval: expire by it.
        self.pace.intervals(now, self.swarm.len() + self.ws.len(), config, &mut self.rng);
        let cutoff = now.saturating_sub(self.pace.peer_timeout(config));
        for (at, ids) in touches {
            if at >= cutoff {
                for id in ids.chunks_exact(20) {
                    if let Ok(id) = id.try_into() {
                        self.swarm.touch(&PeerKey(id), at);
                    }
                }
            }
        }
        self.swarm.assume_recent(now, config.refresh_after);
        self.ws.assume_recent(now, config.refresh_after);
        let mut deletes: Vec<StoreWrite> = self.swarm.expire(cutoff).into_iter().map(StoreWrite::DeletePeer).collect();
        deletes.extend(self.ws.expire(cutoff).into_iter().map(StoreWrite::DeleteWsPeer));
        self.oldest_seen = self.oldest_last_seen();
        deletes
    }

    /// The downloaded count to start from when storage held nothing: the
    /// last value published to KV before the swarm's storage was freed.
    /// Versions before the read-through cache kept them in the scrape
    /// key itself, for good (`legacy`): until the revived swarm has
    /// replaced that entry with one that expires, it keeps it fresh as if
    /// scraped; then the returned write remembers that.
    pub fn resume_from(&mut self, published: SwarmCounters, legacy: bool, now: u32, config: &TrackerConfig) -> Option<StoreWrite> {
        if self.info_hash.is_some() || !self.is_empty() {
            return None;
        }
        self.swarm.set_downloaded(published.downloaded);
        self.published = Some(published);
        self.published_at = now;
        if !legacy {
            return None;
        }
        self.kv_has = None;
        self.scraped(now.saturating_add(config.publish_window), config).1.map(|(_, wish)| wish)
    }

    /// The swarm has a history (its hash, or final counters it resumed
    /// from): a scrape may cache its counters. A never-seen hash has none.
    pub fn known(&self) -> bool {
        (self.info_hash.is_some() || self.published.is_some()) && !self.blocked
    }

    /// Applies an announce; returns the answer (or the refusal) and the
    /// writes that must be durable before it is sent. A refusal writes nothing.
    pub fn announce(&mut self, msg: &SwarmAnnounce, now: u32, config: &TrackerConfig) -> (AnnounceAnswer, Vec<StoreWrite>) {
        let mut writes = Vec::new();
        if self.blocked {
            return (Err(Failure::TorrentBlocked), writes);
        }
        self.pace.record(now);
        if let Some(seeder) = self.early(&msg.peer, now, config) {
            // Answered like any announce, but not applied: nothing written,
            // nothing credited (the next accepted one credits the delta).
            return (Ok(self.answer(msg, seeder, now, config, None)), writes);
        }
        if let Some(account) = msg.account {
            if let Err(refusal) = self.account_announce(msg, account, now, config, &mut writes) {
                return (Err(refusal), writes);
            }
        }
        self.adopt_legacy_entry(&msg.peer, &mut writes);
        if self.is_full_for(&msg.peer, config) {
            // Existing peers are never pushed out: a flood of new ids must
            // not evict real peers. The newcomer still gets peers.
            return (Ok(self.answer(msg, msg.peer.left == 0, now, config, Some(FULL_WARNING))), writes);
        }
        let outcome = self.swarm.announce_with_refresh(&msg.peer, now, config.refresh_after);
        if self.oldest_seen.is_none() && !self.swarm.is_empty() {
            self.oldest_seen = Some(now);
        }
        self.store_change(outcome.change, now, config, &mut writes);
        if self.info_hash.is_none() {
            self.info_hash = Some(msg.info_hash);
        }
        if outcome.completed || (!self.row_stored && !self.swarm.is_empty()) {
            writes.push(StoreWrite::SwarmRow(self.row()));
            self.row_stored = true;
        }
        (Ok(self.answer(msg, outcome.seeder, now, config, None)), writes)
    }

    /// Counts, intervals and a fresh random peer list for the announcer.
    /// Private peer lists never carry peer ids: they would let a member
    /// announce as another.
    fn answer(
        &mut self,
        msg: &SwarmAnnounce,
        seeder: bool,
        now: u32,
        config: &TrackerConfig,
        warning: Option<&'static str>,
    ) -> AnnounceResponse {
        let format = PeerListFormat { no_peer_id: msg.format.no_peer_id || msg.account.is_some(), ..msg.format };
        let given = self.pace.intervals(now, self.swarm.len() + self.ws.len(), config, &mut self.rng);
        let p = &msg.peer;
        let peers = self.swarm.select((&p.key, &p.peer_id), seeder, msg.numwant as usize, &mut self.rng);
        let peers = peers.into_iter().copied().collect();
        AnnounceResponse { counters: self.counters(), interval: given.interval, min_interval: given.min_interval, peers, format, warning }
    }

    /// The write a change to the HTTP swarm needs: rows through, refreshes
    /// batched in dense swarms.
    fn store_change(&mut self, change: PeerChange, now: u32, config: &TrackerConfig, writes: &mut Vec<StoreWrite>) {
        match change {
            PeerChange::Stored { peer, seeder } => {
                writes.push(StoreWrite::UpsertPeer { id: peer.key, rec: encode_peer(&peer, seeder) })
            }
            PeerChange::Removed(key) => writes.push(StoreWrite::DeletePeer(key)),
            PeerChange::Touched(key) if !self.pending_touches.is_empty() || self.swarm.len() >= DENSE_SWARM => {
                self.pending_touches.push(key);
                if self.pending_touches.len() >= MAX_TOUCHES_PER_ROW {
                    writes.extend(self.flush_touches(now, config));
                }
            }
            PeerChange::Touched(key) => {
                if let Some((peer, seeder)) = self.swarm.get(&key) {
                    writes.push(StoreWrite::UpsertPeer { id: key, rec: encode_peer(peer, seeder) });
                }
            }
            PeerChange::Fresh | PeerChange::Unchanged => {}
        }
    }

    /// Private mode: the ratio rule and the ledger. `Err` is the refusal.
    fn account_announce(
        &mut self,
        msg: &SwarmAnnounce,
        account: Account,
        now: u32,
        config: &TrackerConfig,
        writes: &mut Vec<StoreWrite>,
    ) -> Result<(), Failure> {
        let key = PeerKey::session(account.user, &msg.peer.peer_id);
        let previous = self.sessions.get(&key).copied();
        // A download in progress is this user's own session on this torrent.
        let starts_leeching = msg.peer.left > 0 && msg.peer.event != AnnounceEvent::Stopped && previous.is_none();
        if starts_leeching && !account.may_leech {
            return Err(Failure::RatioTooLow);
        }
        let rules = accounting::Rules { max_rate: config.max_credit_rate, freeleech: account.freeleech };
        let a = accounting::credit(previous.map(|p| p.session), account.user, msg.uploaded, msg.downloaded, now, rules);
        for r in a.refused.iter().flatten() {
            self.flag(flags::refusal(account.user, r, now), now, config);
        }
        self.balance.add(a.transfer.uploaded, a.transfer.downloaded);
        let counters = |s: &Session| (s.user, s.uploaded, s.downloaded);
        if previous.map(|p| counters(&p.session)) != Some(counters(&a.session)) {
            let mut record = previous.unwrap_or_else(|| self.new_session(&key, a.session));
            // The baseline's time moves with the baseline: the rate bound
            // measures bytes since it was set.
            record.session = a.session;
            record.heard = now;
            // Saturating: hostile counters must not wrap a total (or panic).
            record.credited.uploaded = record.credited.uploaded.saturating_add(a.credit.uploaded);
            record.credited.downloaded = record.credited.downloaded.saturating_add(a.credit.downloaded);
            if !a.credit.is_zero() {
                self.unflushed = true;
                self.credit_due_at.get_or_insert(now.saturating_add(config.credit_flush));
            }
            self.sessions.insert(key, record);
            self.chunks.mark_dirty(&key);
        } else if let Some(record) = self.sessions.get_mut(&key) {
            record.heard = now;
        }
        let window_open = self.sessions_written_at.is_none_or(|at| now >= at.saturating_add(config.flush_delay));
        // Written before the answer: `stopped` (a session's last report, or
        // a repeat of an unwritten one: nothing would bring it back), a new
        // baseline (see `Accepted::fresh`), and a refusal (taken back by a
        // crash, the refused bytes would pass as a slower delta).
        let must_write = msg.peer.event == AnnounceEvent::Stopped || a.fresh || a.refused.iter().any(Option::is_some);
        if must_write || (window_open && self.chunks.is_dirty()) {
            if self.persist_sessions(writes) {
                self.sessions_written_at = Some(now);
            }
        }
        Ok(())
    }

    /// Keeps a flag for the next credit batch (bounded).
    fn flag(&mut self, flag: Flag, now: u32, config: &TrackerConfig) {
        if self.pending_flags.len() < flags::MAX_PENDING {
            self.pending_flags.push(flag);
            self.credit_due_at.get_or_insert(now.saturating_add(config.credit_flush));
        }
    }

    /// A row stored before entry keys is keyed by the bare peer id: the
    /// same peer id announcing from the same IP takes it over, under its
    /// key now. (Anyone else's announce is another entry.)
    fn adopt_legacy_entry(&mut self, a: &PeerAnnounce, writes: &mut Vec<StoreWrite>) {
        let legacy = PeerKey::raw(&a.peer_id);
        if legacy == a.key || self.swarm.get(&a.key).is_some() {
            return;
        }
        let Some((old, seeder)) = self.swarm.get(&legacy).map(|(p, s)| (*p, s)) else { return };
        if old.id != a.peer_id || old.addr.ip_bytes() != a.addr.ip_bytes() {
            return;
        }
        let peer = Peer { key: a.key, ..old };
        self.swarm.rekey(&legacy, peer, seeder);
        writes.push(StoreWrite::DeletePeer(legacy));
        writes.push(StoreWrite::UpsertPeer { id: a.key, rec: encode_peer(&peer, seeder) });
    }

    /// `Some(seeder)` when a plain re-announce came sooner than the min
    /// interval allows. Events, role and address changes always apply; so
    /// does a peer whose last announce this instance did not see (its time
    /// may be assumed).
    pub fn early(&self, a: &PeerAnnounce, now: u32, config: &TrackerConfig) -> Option<bool> {
        if a.event != AnnounceEvent::Update {
            return None;
        }
        let (peer, seeder) = self.swarm.get(&a.key)?;
        let steady = seeder == (a.left == 0) && peer.addr == a.addr && peer.heard;
        (steady && now < peer.last_seen.saturating_add(self.pace.min_reannounce(config))).then_some(seeder)
    }

    /// A newcomer would take the swarm past `MAX_PEERS`.
    fn is_full_for(&self, a: &PeerAnnounce, config: &TrackerConfig) -> bool {
        self.swarm.len() >= config.max_peers as usize
            && a.event != AnnounceEvent::Stopped
            && self.swarm.get(&a.key).is_none()
    }

    /// An operator blocks the torrent: every peer is dropped and later
    /// announces are refused. Accounting already earned still reaches D1.
    pub fn block(&mut self, now: u32) -> Vec<StoreWrite> {
        self.blocked = true;
        self.pending_touches.clear();
        let mut writes: Vec<StoreWrite> = self.swarm.expire(u32::MAX).into_iter().map(StoreWrite::DeletePeer).collect();
        writes.extend(self.ws.expire(u32::MAX).into_iter().map(StoreWrite::DeleteWsPeer));
        self.oldest_seen = None;
        writes.push(StoreWrite::Blocked(Some(now)));
        writes
    }

    pub fn unblock(&mut self) -> Vec<StoreWrite> {
        self.blocked = false;
        vec![StoreWrite::Blocked(None)]
    }

    /// Moves pending touches into one ring row.
    pub fn flush_touches(&mut self, now: u32, config: &TrackerConfig) -> Option<StoreWrite> {
        if self.pending_touches.is_empty() {
            return None;
        }
        let mut ids = Vec::with_capacity(self.pending_touches.len() * 20);
        for id in self.pending_touches.drain(..) {
            ids.extend_from_slice(&id.0);
        }
        Some(StoreWrite::Touches { slot: touch_slot(now, config), at: now, ids })
    }

    /// The alarm's work at `now`: flush touches, expire silent peers and
    /// decide whether to publish counters or free storage.
    pub fn maintain(&mut self, now: u32, config: &TrackerConfig) -> Maintenance {
        let mut writes: Vec<StoreWrite> = self.flush_touches(now, config).into_iter().collect();
        let cutoff = now.saturating_sub(self.pace.peer_timeout(config));
        writes.extend(self.swarm.expire(cutoff).into_iter().map(StoreWrite::DeletePeer));
        writes.extend(self.ws.expire(cutoff).into_iter().map(StoreWrite::DeleteWsPeer));
        self.oldest_seen = self.oldest_last_seen();
        self.expire_sessions(cutoff);
        if self.persist_sessions(&mut writes) {
            self.sessions_written_at = Some(now);
        }
        let counters = self.counters();
        let kv = self.kv_wanted(now, config);
        let publish = match self.info_hash {
            Some(hash) if !self.blocked && self.unpublished(kv) && self.publish_due(now, config) <= now => Some((hash, counters)),
            _ => None,
        };
        let free_storage = publish.is_none() && self.can_free();
        Maintenance { writes, publish, kv, final_counters: self.is_empty(), free_storage }
    }

    /// Whether KV's scrape cache should get this swarm's counters: for good
    /// (`Some(0)`: `SCRAPE_CACHE = 0`, or `FULL_SCRAPE`, which lists KV),
    /// until someone's scrape lapses, or not.
    fn kv_wanted(&self, now: u32, config: &TrackerConfig) -> Option<u32> {
        if config.scrape_cache == 0 || config.full_scrape {
            Some(0)
        } else {
            (self.scrape_wanted_until > now).then_some(self.scrape_wanted_until)
        }
    }

    /// The totals, or a wanted KV cache entry, lag the counters.
    fn unpublished(&self, kv: Option<u32>) -> bool {
        let counters = Some(self.counters());
        self.published != counters || (kv.is_some() && self.kv_has != counters)
    }

    /// Nothing left to keep: no peers, no accounting, counters published.
    pub fn can_free(&self) -> bool {
        !self.blocked
            && self.is_empty()
            && self.sessions.is_empty()
            && !self.credits_pending()
            && self.published == Some(self.counters())
    }

    /// Forgets baselines of peers gone for longer than the timeout, once
    /// all their credit is on its way to D1; a peer in the swarm keeps its.
    fn expire_sessions(&mut self, cutoff: u32) {
        let gone: Vec<PeerKey> = self
            .sessions
            .iter()
            .filter(|(id, s)| s.heard < cutoff && self.fully_flushed(id, s))
            .map(|(id, _)| *id)
            .collect();
        // Their marks stay until the next batch: see `new_session`.
        for id in &gone {
            self.sessions.remove(id);
            self.chunks.mark_dirty(id);
        }
    }

    /// Writes the dirty session chunks, as memory has them now; false when
    /// none was dirty.
    fn persist_sessions(&mut self, writes: &mut Vec<StoreWrite>) -> bool {
        let ids = self.sessions.len().max(self.marks.len());
        let Some(plan) = self.chunks.take_plan(ids) else { return false };
        let mut groups: Vec<Vec<ChunkRecord>> = vec![Vec::new(); plan.chunks as usize];
        for (id, s) in &self.sessions {
            let chunk = session_store::chunk_of(id, plan.chunks);
            if plan.dirty.contains(chunk) {
                groups[chunk as usize].push(ChunkRecord { id: *id, session: Some(*s), mark: self.marks.get(id).copied(), legacy: false });
            }
        }
        for (id, m) in &self.marks {
            let chunk = session_store::chunk_of(id, plan.chunks);
            if plan.dirty.contains(chunk) && !self.sessions.contains_key(id) {
                groups[chunk as usize].push(ChunkRecord { id: *id, session: None, mark: Some(*m), legacy: false });
            }
        }
        for chunk in plan.dirty.iter() {
            let records = std::mem::take(&mut groups[chunk as usize]);
            writes.push(StoreWrite::SessionChunk { chunks: plan.chunks, chunk, rows: session_store::encode_chunk(plan.chunks, records) });
        }
        if let Some(from) = plan.drop_from {
            writes.push(StoreWrite::DropSessionChunksFrom(from));
        }
        if plan.drop_legacy {
            writes.push(StoreWrite::DropLegacySessions);
        }
        true
    }

    /// A session for a peer id that has none, or whose old one is fully
    /// flushed. Its credited total starts at the id's flushed mark, not at
    /// zero: the mark stays (in memory and storage) until the next batch,
    /// and after a reload a mark above the new credit would swallow it.
    /// Found by fuzzing (swarm_state).
    fn new_session(&self, id: &PeerKey, session: Session) -> SessionRecord {
        SessionRecord { session, credited: self.marks.get(id).copied().unwrap_or_default(), heard: session.last_seen }
    }

    fn fully_flushed(&self, id: &PeerKey, s: &SessionRecord) -> bool {
        self.marks.get(id).copied().unwrap_or_default() == s.credited
    }

    /// Restores private-mode state from the `ledger` rows.
    /// Reloaded sessions count as heard at `now`: one that never comes
    /// back is forgotten a timeout later.
    pub fn load_ledger<'a>(&mut self, rows: impl IntoIterator<Item = &'a [u8]>, outbox_pending: bool, now: u32) {
        let mut chunks = None;
        for (n, records) in rows.into_iter().filter_map(session_store::decode_row) {
            chunks = Some(chunks.map_or(n, |c: u32| c.max(n)));
            for r in records {
                self.load_record(r);
            }
        }
        if let Some(n) = chunks {
            self.chunks.loaded(n);
        }
        self.outbox_pending |= outbox_pending;
        self.unflushed = self.sessions.iter().any(|(id, s)| !self.fully_flushed(id, s));
        self.sessions.values_mut().for_each(|s| s.heard = s.heard.max(now));
    }

    /// Puts one stored record in place. A record from before sessions were
    /// keyed by user is moved to its key (both chunks rewritten); a bare
    /// mark of one is dropped (its credit is already in a batch).
    fn load_record(&mut self, r: ChunkRecord) {
        let key = match (r.legacy, r.session) {
            (false, _) => r.id,
            (true, Some(s)) => PeerKey::session(s.session.user, &PeerId(r.id.0)),
            (true, None) => {
                self.chunks.mark_dirty(&r.id);
                return;
            }
        };
        if r.legacy {
            self.chunks.mark_dirty(&r.id);
            self.chunks.mark_dirty(&key);
        }
        if let Some(s) = r.session {
            self.sessions.insert(key, s);
        }
        if let Some(m) = r.mark {
            self.marks.insert(key, m);
        }
    }

    /// Restores private-mode state from an older version's tables (a row
    /// per session and one marks row, keyed by peer id); the next write
    /// moves it to chunks, keyed by user and peer id.
    pub fn load_legacy_sessions(&mut self, sessions: impl IntoIterator<Item = (PeerId, SessionRecord)>, marks: &[u8], now: u32) {
        let marks = decode_marks(marks);
        for (id, s) in sessions {
            let mark = marks.get(&id).copied();
            self.load_record(ChunkRecord { id: PeerKey(id.0), session: Some(s), mark, legacy: true });
        }
        self.chunks.loaded_legacy();
        self.unflushed = self.sessions.iter().any(|(id, s)| !self.fully_flushed(id, s));
        self.sessions.values_mut().for_each(|s| s.heard = s.heard.max(now));
    }

    /// The session of `user`'s client `peer_id`.
    pub fn session(&self, user: u64, peer_id: &PeerId) -> Option<SessionRecord> {
        self.session_at(&PeerKey::session(user, peer_id))
    }

    pub fn session_at(&self, key: &PeerKey) -> Option<SessionRecord> {
        self.sessions.get(key).copied()
    }

    /// Credit earned (or flags raised) but not yet in an outbox batch.
    pub fn credits_pending(&self) -> bool {
        self.outbox_pending || self.unflushed || !self.pending_flags.is_empty()
    }

    /// Whether the alarm at `now` should send credit to D1: some is
    /// pending and its `CREDIT_FLUSH` is up (or unknown, after a reload).
    pub fn credit_flush_due(&self, now: u32) -> bool {
        self.credits_pending() && self.credit_due_at.is_none_or(|due| now >= due)
    }

    /// Takes every session's unflushed credit as one batch per user, and the
    /// chunk writes that record it as taken (the new marks). The caller
    /// stores both in one step (outbox row + chunks), then sends the batch
    /// to D1.
    pub fn take_credit_batch(&mut self, now: u32) -> Option<(CreditBatch, Vec<StoreWrite>)> {
        let top = self.sessions.values().max_by_key(|s| s.credited.uploaded).map(|s| s.session.user);
        if let Some(f) = self.balance.check(top, now) {
            if self.pending_flags.len() < flags::MAX_PENDING {
                self.pending_flags.push(f);
            }
        }
        let flags = std::mem::take(&mut self.pending_flags);
        let mut per_user: std::collections::BTreeMap<u64, (u64, u64)> = Default::default();
        for (id, s) in &self.sessions {
            let mark = self.marks.get(id).copied().unwrap_or_default();
            let up = s.credited.uploaded.saturating_sub(mark.uploaded);
            let down = s.credited.downloaded.saturating_sub(mark.downloaded);
            if up > 0 || down > 0 {
                let e = per_user.entry(s.session.user).or_default();
                e.0 = e.0.saturating_add(up);
                e.1 = e.1.saturating_add(down);
            }
        }
        if per_user.is_empty() {
            self.unflushed = false;
            self.credit_due_at = None;
            return (!flags.is_empty()).then(|| (CreditBatch { credits: Vec::new(), flags }, Vec::new()));
        }
        let marks: HashMap<PeerKey, Credit> = self.sessions.iter().map(|(id, s)| (*id, s.credited)).collect();
        for (id, m) in &self.marks {
            if marks.get(id) != Some(m) {
                self.chunks.mark_dirty(id);
            }
        }
        for (id, m) in &marks {
            if self.marks.get(id) != Some(m) {
                self.chunks.mark_dirty(id);
            }
        }
        self.marks = marks;
        self.outbox_pending = true;
        self.unflushed = false;
        self.credit_due_at = None;
        let mut writes = Vec::new();
        self.persist_sessions(&mut writes);
        let credits = per_user.into_iter().map(|(u, (up, down))| [u, up, down]).collect();
        Some((CreditBatch { credits, flags }, writes))
    }

    /// A scrape found no counters in KV: the counters to cache there, and
    /// until when (changes are published to KV until then).
    /// `None` for the cache write when KV already has these counters for a
    /// while yet (another scrape's read-through got there first: KV takes
    /// one write per key per second, and the cache needs only one).
    pub fn scraped(&mut self, now: u32, config: &TrackerConfig) -> (SwarmCounters, Option<(u32, StoreWrite)>) {
        let counters = self.counters();
        let half = config.scrape_cache.max(60) / 2;
        if self.kv_has == Some(counters) && self.scrape_wanted_until > now.saturating_add(half) {
            return (counters, None);
        }
        self.scrape_wanted_until = now.saturating_add(config.scrape_cache.max(60));
        self.kv_has = Some(counters);
        (counters, Some((self.scrape_wanted_until, StoreWrite::ScrapeWanted(self.scrape_wanted_until))))
    }

    /// Restores `scrape_cache` as storage had it.
    pub fn load_scrape_wanted(&mut self, until: u32) {
        self.scrape_wanted_until = until;
    }

    /// Records a successful publish; returns the `swarm` row to write.
    pub fn published(&mut self, counters: SwarmCounters, now: u32, to_kv: bool) -> Option<StoreWrite> {
        self.published = Some(counters);
        if to_kv {
            self.kv_has = Some(counters);
        }
        self.published_at = now;
        if self.is_empty() {
            // Storage is about to be freed; KV holds the numbers now.
            return None;
        }
        self.row_stored = true;
        Some(StoreWrite::SwarmRow(self.row()))
    }

    /// Forgets everything after the DO freed its storage.
    pub fn freed(&mut self) {
        self.row_stored = false;
        self.info_hash = None;
        // The marks went with the rest of storage.
        self.marks.clear();
        self.chunks.forget();
    }

    /// When the next alarm is needed (Unix seconds), if at all.
    pub fn next_alarm(&self, now: u32, config: &TrackerConfig) -> Option<u32> {
        let timeout = self.pace.peer_timeout(config);
        let mut next: Option<u32> = None;
        let mut at = |t: u32| next = Some(next.map_or(t, |n| n.min(t)));
        if !self.pending_touches.is_empty() {
            at(now + config.flush_delay);
        }
        if self.credits_pending() {
            at(self.credit_due_at.unwrap_or(now + config.credit_flush).max(now));
        }
        if self.chunks.is_dirty() {
            // Within the ~10 s an idle object keeps its memory.
            at(self.sessions_written_at.map_or(now, |w| w.saturating_add(config.flush_delay)).max(now));
        }
        if !self.sessions.is_empty() && self.is_empty() {
            // Baselines of departed peers are kept until their timeout.
            let oldest = self.sessions.values().map(|s| s.heard).min().unwrap_or(now);
            at((oldest + timeout + 1).max(now + EXPIRY_SWEEP_GAP.min(timeout)));
        }
        if self.info_hash.is_some() && !self.blocked && self.unpublished(self.kv_wanted(now, config)) {
            at(self.publish_due(now, config).max(now));
        }
        if let Some(oldest) = self.oldest_seen.filter(|_| !self.is_empty()) {
            at((oldest + timeout + 1).max(now + EXPIRY_SWEEP_GAP.min(timeout)));
        } else if self.row_stored && !self.blocked {
            // Empty but still stored: come back to publish and free it.
            at(self.publish_due(now, config).max(now));
        }
        next
    }

    fn publish_due(&self, _now: u32, config: &TrackerConfig) -> u32 {
        if self.published.is_none() {
            0
        } else {
            self.published_at.saturating_add(config.publish_window)
        }
    }

    fn row(&self) -> SwarmRow {
        SwarmRow {
            info_hash: self.info_hash.unwrap_or(InfoHash([0; 20])),
            downloaded: self.counters().downloaded,
            published: self.published,
            published_at: self.published_at,
        }
    }

    pub fn pending_touches(&self) -> usize {
        self.pending_touches.len()
    }

    /// Counts over HTTP and WebSocket peers: one swarm for scrape and announces.
    pub fn counters(&self) -> SwarmCounters {
        let (h, w) = (self.swarm.counters(), self.ws.counters());
        SwarmCounters {
            complete: h.complete + w.complete,
            incomplete: h.incomplete + w.incomplete,
            downloaded: h.downloaded + w.downloaded,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.swarm.is_empty() && self.ws.is_empty()
    }

    fn oldest_last_seen(&self) -> Option<u32> {
        match (self.swarm.oldest_last_seen(), self.ws.oldest_last_seen()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Puts WebSocket peers in place as storage had them; call before [`Self::load`].
    pub fn restore_ws(&mut self, peers: impl IntoIterator<Item = (Peer, bool)>) {
        for (peer, seeder) in peers {
            self.ws.restore(peer, seeder);
        }
    }

    /// Applies a WebSocket peer's announce: records where its socket is and
    /// picks up to `numwant` other WebSocket peers for its offers.
    pub fn ws_announce(
        &mut self,
        info_hash: InfoHash,
        peer: &PeerAnnounce,
        numwant: usize,
        now: u32,
        config: &TrackerConfig,
    ) -> (SwarmWsReply, Vec<StoreWrite>) {
        let mut writes = Vec::new();
        if self.blocked {
            // Not listed, offered nothing: a blocked torrent has no swarm.
            return (self.ws_reply(Vec::new()), writes);
        }
        self.pace.record(now);
        let outcome = self.ws.announce_with_refresh(peer, now, config.refresh_after);
        if self.oldest_seen.is_none() && !self.is_empty() {
            self.oldest_seen = Some(now);
        }
        match outcome.change {
            PeerChange::Stored { peer, seeder } => {
                writes.push(StoreWrite::UpsertWsPeer { id: peer.key, rec: encode_peer(&peer, seeder) })
            }
            PeerChange::Removed(id) => writes.push(StoreWrite::DeleteWsPeer(id)),
            // Small swarms write a refresh through; WebSocket swarms are small.
            PeerChange::Touched(id) => {
                if let Some((p, seeder)) = self.ws.get(&id) {
                    writes.push(StoreWrite::UpsertWsPeer { id, rec: encode_peer(p, seeder) });
                }
            }
            PeerChange::Fresh | PeerChange::Unchanged => {}
        }
        if self.info_hash.is_none() {
            self.info_hash = Some(info_hash);
        }
        if outcome.completed || (!self.row_stored && !self.is_empty()) {
            writes.push(StoreWrite::SwarmRow(self.row()));
            self.row_stored = true;
        }
        let targets = if peer.event == AnnounceEvent::Stopped {
            Vec::new()
        } else {
            self.ws
                .select((&peer.key, &peer.peer_id), outcome.seeder, numwant, &mut self.rng)
                .into_iter()
                .map(|p| (p.id.0, SocketRef::from_addr(&p.addr)))
                .collect()
        };
        (self.ws_reply(targets), writes)
    }

    /// A closed socket's peer leaves, unless it already announced again
    /// from another socket.
    pub fn ws_leave(&mut self, peer_id: &PeerId, at: SocketRef) -> (SwarmWsReply, Vec<StoreWrite>) {
        let mut writes = Vec::new();
        let key = PeerKey::raw(peer_id);
        if matches!(self.ws.get(&key), Some((p, _)) if p.addr == at.to_addr()) {
            let stop = PeerAnnounce { key, peer_id: *peer_id, addr: at.to_addr(), left: u64::MAX, event: AnnounceEvent::Stopped };
            self.ws.announce(&stop, 0);
            writes.push(StoreWrite::DeleteWsPeer(key));
        }
        (self.ws_reply(Vec::new()), writes)
    }

    /// Where a WebSocket peer's socket is, to route an answer to it.
    pub fn ws_locate(&self, peer_id: &PeerId) -> SwarmWsReply {
        let targets = self.ws.get(&PeerKey::raw(peer_id)).map(|(p, _)| (p.id.0, SocketRef::from_addr(&p.addr))).into_iter().collect();
        self.ws_reply(targets)
    }

    fn ws_reply(&self, targets: Vec<([u8; 20], SocketRef)>) -> SwarmWsReply {
        let c = self.counters();
        SwarmWsReply { complete: c.complete, incomplete: c.incomplete, targets }
    }
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

/// An announce as the edge sends it: the outcome bencoded, with its
/// writes. For tests, fuzz targets and benches, which look at the bytes a
/// client gets.
pub trait EncodedAnnounce {
    fn announce_encoded(&mut self, msg: &SwarmAnnounce, now: u32, config: &TrackerConfig) -> (Vec<u8>, Vec<StoreWrite>);
}

impl EncodedAnnounce for SwarmState {
    fn announce_encoded(&mut self, msg: &SwarmAnnounce, now: u32, config: &TrackerConfig) -> (Vec<u8>, Vec<StoreWrite>) {
        let (answer, writes) = self.announce(msg, now, config);
        (crate::response::encode_announce(&answer), writes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::announce::AnnounceEvent;
    use crate::swarm::PeerAnnounce;

    fn cfg() -> TrackerConfig {
        TrackerConfig {
            interval: 100,
            peer_grace: 20,
            flush_delay: 5,
            publish_window: 60,
            refresh_after: 30,
            enforce_min_interval: false,
            ..TrackerConfig::default()
        }
    }

    fn failure_of(body: &[u8]) -> Option<String> {
        let text = String::from_utf8_lossy(body);
        text.strip_prefix("d14:failure reason").map(|r| r.to_string())
    }

    #[test]
    fn an_early_reannounce_is_answered_but_not_applied_and_events_apply() {
        let c = TrackerConfig { min_interval: 100, enforce_min_interval: true, ..cfg() };
        let mut s = SwarmState::new(1);
        let (body, _) = s.announce_encoded(&msg(1, 10, AnnounceEvent::Started), 1000, &c);
        assert!(failure_of(&body).is_none());
        s.announce_encoded(&msg(2, 0, AnnounceEvent::Started), 1000, &c);
        // 50 s later (90 s is the floor): a normal answer, nothing written.
        let (body, writes) = s.announce_encoded(&msg(1, 10, AnnounceEvent::Update), 1050, &c);
        let text = String::from_utf8_lossy(&body);
        assert!(failure_of(&body).is_none(), "{text}");
        assert!(text.contains("8:completei1e") && text.contains("8:intervali100e") && text.contains("5:peers6:"), "{text}");
        assert!(writes.is_empty());
        assert_eq!(s.swarm.get(&key_of(1)).unwrap().0.last_seen, 1000, "not applied");
        // Events and role changes apply at once.
        let (_, w) = s.announce_encoded(&msg(1, 0, AnnounceEvent::Completed), 1051, &c);
        assert!(!w.is_empty());
        assert_eq!(s.swarm.counters().downloaded, 1);
        // Private mode: an early report is credited with the next accepted one.
        let mut t = s;
        t.announce_encoded(&private(3, 10, AnnounceEvent::Started, 0, 0, true), 2000, &c);
        t.announce_encoded(&private(3, 10, AnnounceEvent::Update, 40, 0, true), 2010, &c);
        assert_eq!(t.session(3, &PeerId([3; 20])).unwrap().credited.uploaded, 0, "early: not taken yet");
        t.announce_encoded(&private(3, 10, AnnounceEvent::Update, 50, 0, true), 2100, &c);
        assert_eq!(t.session(3, &PeerId([3; 20])).unwrap().credited.uploaded, 50);
    }

    #[test]
    fn a_full_swarm_answers_newcomers_without_listing_them() {
        let c = TrackerConfig { max_peers: 3, ..cfg() };
        let mut s = SwarmState::new(1);
        for n in 1..=3 {
            s.announce_encoded(&msg(n, 10, AnnounceEvent::Started), 1000, &c);
        }
        let (body, writes) = s.announce_encoded(&msg(9, 0, AnnounceEvent::Started), 1000, &c);
        assert!(writes.is_empty());
        assert!(failure_of(&body).is_none());
        let text = String::from_utf8_lossy(&body);
        assert!(text.contains("5:peers18:") && text.contains(FULL_WARNING), "{text}");
        assert_eq!(s.swarm.len(), 3);
        assert!(s.swarm.get(&key_of(9)).is_none());
        // Members keep announcing; when one leaves, the newcomer gets in.
        let (body, _) = s.announce_encoded(&msg(2, 10, AnnounceEvent::Update), 1001, &c);
        assert!(!String::from_utf8_lossy(&body).contains("warning"));
        s.announce_encoded(&msg(3, 10, AnnounceEvent::Stopped), 1002, &c);
        let (body, writes) = s.announce_encoded(&msg(9, 0, AnnounceEvent::Update), 1003, &c);
        assert!(!String::from_utf8_lossy(&body).contains("warning"));
        assert!(!writes.is_empty());
        assert_eq!(s.swarm.counters().complete, 1);
    }

    #[test]
    fn a_blocked_swarm_drops_its_peers_refuses_announces_and_keeps_its_storage() {
        let c = cfg();
        let mut s = SwarmState::new(1);
        let mut t = Tables::default();
        for n in 1..=3 {
            let (_, w) = s.announce_encoded(&msg(n, 10, AnnounceEvent::Started), 1000, &c);
            t.apply(w, &c);
        }
        let writes = s.block(1001);
        assert!(matches!(writes.last(), Some(StoreWrite::Blocked(Some(1001)))));
        t.apply(writes, &c);
        assert!(t.peers.is_empty());
        let (answer, writes) = s.announce(&msg(4, 10, AnnounceEvent::Started), 1002, &c);
        assert_eq!(answer, Err(Failure::TorrentBlocked));
        assert!(writes.is_empty());
        let m = s.maintain(1100, &c);
        assert!(m.publish.is_none() && !m.free_storage && !s.can_free());
        s.unblock();
        let (body, _) = s.announce_encoded(&msg(4, 10, AnnounceEvent::Started), 1003, &c);
        assert!(failure_of(&body).is_none());
    }

    /// The swarm entry of public peer `n` (as [`msg`] announces it).
    fn key_of(n: u8) -> PeerKey {
        msg(n, 0, AnnounceEvent::Update).peer.key
    }

    /// `m` sent by `user` (private mode): the entry key follows.
    fn as_user(mut m: SwarmAnnounce, user: u64, may_leech: bool) -> SwarmAnnounce {
        m.account = Some(crate::wire::Account { user, may_leech, freeleech: false });
        m.peer.key = PeerKey::entry(Some(user), &m.peer.peer_id, &m.peer.addr, None);
        m
    }

    fn msg(n: u8, left: u64, event: AnnounceEvent) -> SwarmAnnounce {
        let peer_id = PeerId([n; 20]);
        let addr = PeerAddr::new([127, 0, 0, n].into(), 6881);
        SwarmAnnounce {
            info_hash: InfoHash([1; 20]),
            peer: PeerAnnounce {
                key: PeerKey::entry(None, &peer_id, &addr, None),
                peer_id,
                addr,
                left,
                event,
            },
            uploaded: 0,
            downloaded: 0,
            numwant: 50,
            format: PeerListFormat { compact: true, no_peer_id: false },
            account: None,
        }
    }

    /// A fake of the Durable Object's tables, applying writes as the glue does.
    #[derive(Default)]
    struct Tables {
        peers: std::collections::BTreeMap<PeerKey, Vec<u8>>,
        ws_peers: std::collections::BTreeMap<PeerKey, Vec<u8>>,
        touches: std::collections::BTreeMap<u32, (u32, Vec<u8>)>,
        row: Option<SwarmRow>,
        writes: usize,
    }

    impl Tables {
        fn apply(&mut self, writes: Vec<StoreWrite>, config: &TrackerConfig) {
            for w in writes {
                self.writes += 1;
                match w {
                    StoreWrite::UpsertPeer { id, rec } => {
                        self.peers.insert(id, rec);
                    }
                    StoreWrite::DeletePeer(id) => {
                        self.peers.remove(&id);
                    }
                    StoreWrite::Touches { slot, at, ids } => {
                        let merged = merge_touch_row(self.touches.get(&slot).cloned(), at, ids, config);
                        self.touches.insert(slot, (at, merged));
                    }
                    StoreWrite::SwarmRow(r) => self.row = Some(r),
                    StoreWrite::UpsertWsPeer { id, rec } => {
                        self.ws_peers.insert(id, rec);
                    }
                    StoreWrite::DeleteWsPeer(id) => {
                        self.ws_peers.remove(&id);
                    }
                    _ => {}
                }
            }
        }

        fn reload(&self, now: u32, config: &TrackerConfig) -> SwarmState {
            let mut s = SwarmState::new(1);
            let peers: Vec<_> = self.peers.iter().map(|(id, rec)| decode_peer(&id.0, rec).unwrap()).collect();
            s.restore_ws(self.ws_peers.iter().map(|(id, rec)| decode_peer(&id.0, rec).unwrap()));
            s.load(self.row, peers, self.touches.values().cloned(), now, config);
            s
        }
    }

    fn wide(n: u32, left: u64, event: AnnounceEvent) -> SwarmAnnounce {
        let mut m = msg(1, left, event);
        m.peer.peer_id.0[..4].copy_from_slice(&n.to_be_bytes());
        m.peer.key = PeerKey::raw(&m.peer.peer_id);
        m
    }

    #[test]
    fn steady_reannounces_write_nothing_until_refresh_is_due() {
        let c = cfg();
        let mut t = Tables::default();
        let mut s = SwarmState::new(1);
        for n in 1..=50 {
            let (_, w) = s.announce_encoded(&msg(n, 10, AnnounceEvent::Started), 1000, &c);
            t.apply(w, &c);
        }
        // 50 peer rows plus the swarm row.
        assert_eq!(t.writes, 51);
        let m = s.maintain(1000, &c);
        s.published(m.publish.unwrap().1, 1000, true);
        t.writes = 0;
        for n in 1..=50 {
            let (_, w) = s.announce_encoded(&msg(n, 5, AnnounceEvent::Update), 1000 + c.refresh_after - 1, &c);
            assert!(w.is_empty(), "storage's time is recent enough: nothing to write");
        }
        // Once storage's copy is REFRESH_AFTER old, a small swarm writes the peer's row.
        let (_, w) = s.announce_encoded(&msg(1, 5, AnnounceEvent::Update), 1000 + c.refresh_after, &c);
        assert!(matches!(w.as_slice(), [StoreWrite::UpsertPeer { .. }]));
        let (_, w) = s.announce_encoded(&msg(1, 5, AnnounceEvent::Update), 1000 + c.refresh_after + 1, &c);
        assert!(w.is_empty());
    }

    #[test]
    fn dense_swarms_batch_refreshes_into_one_row_per_window() {
        let c = cfg();
        let mut t = Tables::default();
        let mut s = SwarmState::new(1);
        let n = DENSE_SWARM as u32;
        for i in 0..n {
            t.apply(s.announce_encoded(&wide(i, 10, AnnounceEvent::Started), 1000, &c).1, &c);
        }
        let m = s.maintain(1000, &c);
        s.published(m.publish.unwrap().1, 1000, true);
        t.writes = 0;
        let later = 1000 + c.refresh_after;
        for i in 0..n {
            let (_, w) = s.announce_encoded(&wide(i, 5, AnnounceEvent::Update), later, &c);
            assert!(w.is_empty(), "a refresh in a dense swarm waits for the batch");
        }
        assert_eq!(s.next_alarm(later, &c), Some(later + c.flush_delay));
        let m = s.maintain(later + c.flush_delay, &c);
        t.apply(m.writes, &c);
        assert_eq!(t.writes, 1, "a thousand refreshes flushed as one row");
        // Reloaded past the first announce's timeout, the touched peers survive.
        let reloaded = t.reload(later + c.peer_timeout() - 1, &c);
        assert_eq!(reloaded.swarm.len(), n as usize);
    }

    #[test]
    fn reload_keeps_peers_and_completed_count() {
        let c = cfg();
        let mut t = Tables::default();
        let mut s = SwarmState::new(1);
        for (n, left, ev) in [(1, 10, AnnounceEvent::Started), (2, 0, AnnounceEvent::Started), (1, 0, AnnounceEvent::Completed)] {
            let (_, w) = s.announce_encoded(&msg(n, left, ev), 1000, &c);
            t.apply(w, &c);
        }
        let r = t.reload(1001, &c);
        assert_eq!(r.swarm.counters(), SwarmCounters { complete: 2, incomplete: 0, downloaded: 1 });
        assert_eq!(r.info_hash, Some(InfoHash([1; 20])));
    }

    #[test]
    fn silent_peers_expire_on_reload_and_in_the_alarm() {
        let c = cfg();
        let mut t = Tables::default();
        let mut s = SwarmState::new(1);
        t.apply(s.announce_encoded(&msg(1, 10, AnnounceEvent::Started), 1000, &c).1, &c);
        t.apply(s.announce_encoded(&msg(2, 10, AnnounceEvent::Started), 1100, &c).1, &c);
        // After a reload, storage's time may lag by under REFRESH_AFTER:
        // a silent peer goes once even its latest possible announce is too old.
        let peers = |t: &Tables| t.peers.iter().map(|(id, rec)| decode_peer(&id.0, rec).unwrap()).collect::<Vec<_>>();
        let just_before = 1000 + c.peer_timeout() + c.refresh_after - 1;
        assert!(SwarmState::new(1).load(t.row, peers(&t), vec![], just_before, &c).is_empty());
        let deletes = SwarmState::new(1).load(t.row, peers(&t), vec![], just_before + 1, &c);
        assert_eq!(deletes, vec![StoreWrite::DeletePeer(key_of(1))]);
        // In memory the exact time counts.
        assert_eq!(s.next_alarm(1100, &c), Some(1100), "unpublished counters are due at once");
        let m = s.maintain(1100, &c);
        s.published(m.publish.unwrap().1, 1100, true);
        // Peer 1 is due at 1121, but sweeps are at least EXPIRY_SWEEP_GAP apart.
        assert_eq!(s.next_alarm(1100, &c), Some(1100 + EXPIRY_SWEEP_GAP));
        let m = s.maintain(1000 + c.peer_timeout() + 1, &c);
        assert!(m.writes.contains(&StoreWrite::DeletePeer(key_of(1))));
        assert_eq!(s.swarm.len(), 1);
    }

    #[test]
    fn publishes_once_per_window_and_frees_storage_when_empty() {
        let c = cfg();
        let mut s = SwarmState::new(1);
        s.announce_encoded(&msg(1, 10, AnnounceEvent::Started), 1000, &c);
        assert_eq!(s.next_alarm(1000, &c), Some(1000));
        let m = s.maintain(1000, &c);
        let (hash, counters) = m.publish.unwrap();
        assert_eq!(hash, InfoHash([1; 20]));
        assert_eq!(counters.incomplete, 1);
        s.published(counters, 1000, true);
        // A change inside the window waits for the window's end.
        s.announce_encoded(&msg(2, 0, AnnounceEvent::Started), 1010, &c);
        assert_eq!(s.maintain(1010, &c).publish, None);
        assert_eq!(s.next_alarm(1010, &c), Some(1060));
        let m = s.maintain(1060, &c);
        assert_eq!(m.publish.unwrap().1.complete, 1);
        s.published(m.publish.unwrap().1, 1060, true);
        // Nothing changed: nothing to publish.
        assert_eq!(s.maintain(1070, &c).publish, None);
        // Everyone leaves: publish zeros, then free storage.
        s.announce_encoded(&msg(1, 10, AnnounceEvent::Stopped), 1200, &c);
        s.announce_encoded(&msg(2, 0, AnnounceEvent::Stopped), 1200, &c);
        let m = s.maintain(1200, &c);
        assert_eq!(m.publish.unwrap().1, SwarmCounters { complete: 0, incomplete: 0, downloaded: 0 });
        assert!(!m.free_storage);
        assert_eq!(s.published(m.publish.unwrap().1, 1200, true), None);
        assert!(s.maintain(1200, &c).free_storage);
    }

    #[test]
    fn resumes_downloaded_from_kv_after_storage_was_freed() {
        let c = cfg();
        let mut s = SwarmState::new(1);
        s.resume_from(SwarmCounters { complete: 0, incomplete: 0, downloaded: 7 }, false, 5000, &c);
        let (body, writes) = s.announce_encoded(&msg(1, 0, AnnounceEvent::Completed), 5000, &c);
        assert!(String::from_utf8_lossy(&body).contains("10:downloadedi8e"));
        assert!(writes.iter().any(|w| matches!(w, StoreWrite::SwarmRow(r) if r.downloaded == 8)));
    }

    #[test]
    fn touch_rows_merge_within_a_window_only() {
        let c = cfg();
        assert_eq!(merge_touch_row(Some((1000, vec![1; 20])), 1001, vec![2; 20], &c).len(), 40);
        assert_eq!(merge_touch_row(Some((900, vec![1; 20])), 1001, vec![2; 20], &c).len(), 20);
        let ring = (c.interval_max.max(c.interval) + c.peer_grace) / c.flush_delay + 2;
        assert_eq!(touch_slot(1000, &c), touch_slot(1000 + ring * c.flush_delay, &c));
    }

    fn private(n: u8, left: u64, event: AnnounceEvent, up: u64, down: u64, may_leech: bool) -> SwarmAnnounce {
        as_user(SwarmAnnounce { uploaded: up, downloaded: down, ..msg(n, left, event) }, n as u64, may_leech)
    }

    /// A fake of the `ledger` table.
    #[derive(Default, Clone)]
    struct LedgerTable(std::collections::BTreeMap<(u32, u32), Vec<u8>>);

    impl LedgerTable {
        fn apply(&mut self, writes: &[StoreWrite]) {
            for w in writes {
                match w {
                    StoreWrite::SessionChunk { chunk, rows, .. } => {
                        self.0.retain(|(c, _), _| c != chunk);
                        for (part, row) in rows.iter().enumerate() {
                            self.0.insert((*chunk, part as u32), row.clone());
                        }
                    }
                    StoreWrite::DropSessionChunksFrom(from) => self.0.retain(|(c, _), _| c < from),
                    _ => {}
                }
            }
        }

        fn session(&self, user: u64, id: PeerId) -> Option<SessionRecord> {
            let key = PeerKey::session(user, &id);
            self.0.values().flat_map(|r| session_store::decode_row(r).unwrap().1).find(|r| r.id == key)?.session
        }

        /// A fresh object over this storage (the old one died).
        fn reload(&self) -> SwarmState {
            let mut r = SwarmState::new(2);
            r.load_ledger(self.0.values().map(|v| v.as_slice()), false, 0);
            r
        }
    }

    fn session_writes(writes: &[StoreWrite]) -> usize {
        writes.iter().filter(|w| matches!(w, StoreWrite::SessionChunk { .. })).count()
    }

    #[test]
    fn private_announces_credit_deltas_written_behind() {
        let c = cfg();
        let mut s = SwarmState::new(1);
        let mut t = LedgerTable::default();
        let id = PeerId([1; 20]);
        let (_, w) = s.announce_encoded(&private(1, 100, AnnounceEvent::Started, 0, 0, true), 1000, &c);
        assert_eq!(session_writes(&w), 1, "the first change in a window is written through: {w:?}");
        t.apply(&w);
        let (_, w) = s.announce_encoded(&private(1, 50, AnnounceEvent::Update, 10, 50, true), 1001, &c);
        assert_eq!(session_writes(&w), 0, "later ones are written behind: {w:?}");
        assert_eq!(s.session(1, &id).unwrap().credited, Credit { uploaded: 10, downloaded: 50 });
        assert!(s.next_alarm(1001, &c).is_some_and(|t| t <= 1000 + c.flush_delay), "by the alarm at the window's end");
        assert!(!s.credit_flush_due(1005), "that alarm leaves credit for CREDIT_FLUSH");
        assert!(s.credit_flush_due(1001 + c.credit_flush));
        let m = s.maintain(1005, &c);
        assert_eq!(session_writes(&m.writes), 1, "one row for the whole swarm: {:?}", m.writes);
        t.apply(&m.writes);
        assert_eq!(t.session(1, id).unwrap().credited, Credit { uploaded: 10, downloaded: 50 });
        // A retry of the same announce credits and dirties nothing.
        let (_, w) = s.announce_encoded(&private(1, 50, AnnounceEvent::Update, 10, 50, true), 1011, &c);
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(session_writes(&s.maintain(1011, &c).writes), 0);
        let (batch, w) = s.take_credit_batch(0).unwrap();
        assert_eq!(batch.credits, vec![[1, 10, 50]]);
        assert_eq!(session_writes(&w), 1, "the new marks go with the outbox row");
        t.apply(&w);
        assert!(s.take_credit_batch(0).is_none(), "taken credit is not taken twice");
        // Stopped credits the rest and is written before the answer.
        let (_, w) = s.announce_encoded(&private(1, 0, AnnounceEvent::Stopped, 30, 100, true), 1020, &c);
        assert_eq!(session_writes(&w), 1, "{w:?}");
        t.apply(&w);
        assert_eq!(t.session(1, id).unwrap().credited, Credit { uploaded: 30, downloaded: 100 });
        let (_, w) = s.announce_encoded(&private(1, 0, AnnounceEvent::Stopped, 30, 100, true), 1021, &c);
        assert_eq!(session_writes(&w), 0, "a retried stop credits nothing");
        assert!(s.credits_pending());
        assert_eq!(s.next_alarm(1021, &c).map(|t| t <= 1021 + c.credit_flush), Some(true));
        let (batch, w) = s.take_credit_batch(0).unwrap();
        assert_eq!(batch.credits, vec![[1, 20, 50]]);
        t.apply(&w);
        // Reloaded from its rows, the state owes nothing more.
        assert!(t.reload().take_credit_batch(0).is_none());
    }

    /// Counters are cumulative: an object that dies before its write-behind
    /// credits the lost announces again from the client's next one.
    #[test]
    fn a_crash_before_the_write_behind_loses_no_credit_of_a_returning_peer() {
        let c = cfg();
        let mut s = SwarmState::new(1);
        let mut t = LedgerTable::default();
        s.announce_encoded(&private(1, 100, AnnounceEvent::Started, 0, 0, true), 1000, &c);
        s.announce_encoded(&private(1, 50, AnnounceEvent::Update, 10, 50, true), 1001, &c);
        t.apply(&s.maintain(1005, &c).writes);
        s.announce_encoded(&private(1, 30, AnnounceEvent::Update, 20, 70, true), 1006, &c);
        // The object dies before its alarm: storage has the announce of 1001.
        let mut r = t.reload();
        assert_eq!(r.session(1, &PeerId([1; 20])).unwrap().session.uploaded, 10);
        for state in [&mut s, &mut r] {
            state.announce_encoded(&private(1, 0, AnnounceEvent::Update, 30, 90, true), 1100, &c);
            assert_eq!(state.take_credit_batch(0).unwrap().0.credits, vec![[1, 30, 90]]);
        }
    }

    /// Found by fuzzing (swarm_state): a session whose counters restart
    /// near u64::MAX overflowed its credited total (a panic in a debug
    /// build, a wrapped total in release). Without a rate bound, totals
    /// saturate.
    #[test]
    fn hostile_counters_saturate_instead_of_overflowing() {
        let c = TrackerConfig { max_credit_rate: u64::MAX, ..cfg() };
        let mut s = SwarmState::new(1);
        for (at, up) in [(1000, 0), (1001, u64::MAX), (1002, 1), (1003, u64::MAX)] {
            s.announce_encoded(&private(1, 0, AnnounceEvent::Update, up, up, true), at, &c);
        }
        assert_eq!(s.session(1, &PeerId([1; 20])).unwrap().credited, Credit { uploaded: u64::MAX, downloaded: u64::MAX });
        // Two clients of one user, each near the top: one batch entry, saturated.
        let mut m = private(3, 0, AnnounceEvent::Update, 0, 0, true);
        m = as_user(m, 1, true);
        s.announce_encoded(&m, 1004, &c);
        m.uploaded = u64::MAX;
        s.announce_encoded(&m, 1005, &c);
        let (batch, _) = s.take_credit_batch(0).unwrap();
        assert!(batch.credits.contains(&[1, u64::MAX, u64::MAX]), "{batch:?}");
    }

    /// Found by fuzzing (swarm_state): a session that expired kept its old
    /// mark in storage; after a crash that mark swallowed the credit of
    /// the same client's next session.
    #[test]
    fn credit_of_a_returning_session_survives_a_reload() {
        let c = cfg();
        let mut s = SwarmState::new(1);
        let mut t = LedgerTable::default();
        s.announce_encoded(&private(1, 0, AnnounceEvent::Started, 0, 0, true), 999, &c);
        s.announce_encoded(&private(1, 0, AnnounceEvent::Update, 10, 0, true), 1000, &c);
        let (batch, w) = s.take_credit_batch(0).unwrap();
        assert_eq!(batch.credits, vec![[1, 10, 0]]);
        t.apply(&w);
        s.outbox_pending = false;
        t.apply(&s.announce_encoded(&private(1, 0, AnnounceEvent::Stopped, 10, 0, true), 1001, &c).1);
        t.apply(&s.maintain(1001 + c.peer_timeout() + 1, &c).writes);
        assert!(s.session(1, &PeerId([1; 20])).is_none(), "the session ended");
        // Back with a new session: its first report is a baseline.
        t.apply(&s.announce_encoded(&private(1, 0, AnnounceEvent::Started, 5, 0, true), 1200, &c).1);
        t.apply(&s.announce_encoded(&private(1, 0, AnnounceEvent::Update, 10, 0, true), 1210, &c).1);
        t.apply(&s.maintain(1210, &c).writes);
        // The object dies after the new session was written.
        let mut r = t.reload();
        assert_eq!(r.take_credit_batch(0).map(|b| b.0.credits), Some(vec![[1, 5, 0]]));
        assert!(r.take_credit_batch(0).is_none());
        // Without the crash, the same.
        assert_eq!(s.take_credit_batch(0).map(|b| b.0.credits), Some(vec![[1, 5, 0]]));
    }

    /// Sessions stored by an older version (a row each, one marks row) load
    /// and move into chunks with the next write, emptying the old tables.
    #[test]
    fn legacy_session_rows_move_into_chunks() {
        let c = cfg();
        let rec = SessionRecord {
            session: Session { user: 1, uploaded: 10, downloaded: 0, last_seen: 1000 },
            credited: Credit { uploaded: 10, downloaded: 0 },
            heard: 1000,
        };
        let marks = encode_marks(&[(PeerId([1; 20]), Credit { uploaded: 4, downloaded: 0 })].into_iter().collect());
        let mut s = SwarmState::new(1);
        s.load_legacy_sessions([(PeerId([1; 20]), rec)], &marks, 1000);
        let m = s.maintain(1001, &c);
        assert!(m.writes.contains(&StoreWrite::DropLegacySessions), "{:?}", m.writes);
        let mut t = LedgerTable::default();
        t.apply(&m.writes);
        assert_eq!(t.reload().take_credit_batch(0).unwrap().0.credits, vec![[1, 6, 0]]);
    }

    #[test]
    fn ratio_rule_blocks_new_downloads_but_not_seeding_or_running_ones() {
        let c = cfg();
        let mut s = SwarmState::new(1);
        let (answer, w) = s.announce(&private(1, 100, AnnounceEvent::Started, 0, 0, false), 1000, &c);
        assert_eq!(answer, Err(Failure::RatioTooLow));
        assert!(String::from_utf8_lossy(&crate::response::encode_announce(&answer)).contains("ratio is below the minimum"));
        assert!(w.is_empty());
        assert!(s.swarm.is_empty());
        let (body, _) = s.announce_encoded(&private(1, 0, AnnounceEvent::Started, 0, 0, false), 1000, &c);
        assert!(!String::from_utf8_lossy(&body).contains("failure"), "seeding is allowed");
        let (_, _) = s.announce_encoded(&private(2, 10, AnnounceEvent::Started, 0, 0, true), 1000, &c);
        let (body, _) = s.announce_encoded(&private(2, 5, AnnounceEvent::Update, 0, 5, false), 1001, &c);
        assert!(!String::from_utf8_lossy(&body).contains("failure"), "a running download continues");
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

    fn ws_peer(n: u8, gateway: u16, left: u64, event: AnnounceEvent) -> PeerAnnounce {
        PeerAnnounce { key: PeerKey([n; 20]), peer_id: PeerId([n; 20]), addr: SocketRef { gateway, socket: n as u64 }.to_addr(), left, event }
    }

    #[test]
    fn websocket_peers_count_with_http_peers_but_only_get_each_other() {
        let c = cfg();
        let mut t = Tables::default();
        let mut s = SwarmState::new(3);
        let (_, w) = s.announce_encoded(&msg(1, 0, AnnounceEvent::Started), 100, &c);
        t.apply(w, &c);
        let (r, w) = s.ws_announce(InfoHash([1; 20]), &ws_peer(10, 1, 5, AnnounceEvent::Started), 5, 100, &c);
        t.apply(w, &c);
        assert!(r.targets.is_empty(), "an HTTP peer is no target for an offer");
        assert_eq!((r.complete, r.incomplete), (1, 1));
        let (r, w) = s.ws_announce(InfoHash([1; 20]), &ws_peer(11, 2, 0, AnnounceEvent::Started), 5, 100, &c);
        t.apply(w, &c);
        assert_eq!(r.targets, vec![([10; 20], SocketRef { gateway: 1, socket: 10 })]);
        assert_eq!((r.complete, r.incomplete), (2, 1));
        assert_eq!(s.counters(), SwarmCounters { complete: 2, incomplete: 1, downloaded: 0 });
        // HTTP peers see the WebSocket peers in the counts, not in the peer list.
        let (body, _) = s.announce_encoded(&msg(2, 5, AnnounceEvent::Started), 101, &c);
        let text = String::from_utf8_lossy(&body);
        assert!(text.contains("8:completei2e") && text.contains("10:incompletei2e"), "{text}");
        assert!(text.contains("5:peers6:"), "only the HTTP peer is listed: {text}");
        assert_eq!(s.ws_locate(&PeerId([11; 20])).targets, vec![([11; 20], SocketRef { gateway: 2, socket: 11 })]);
        assert!(s.ws_locate(&PeerId([1; 20])).targets.is_empty());

        // A steady re-announce from the same socket writes nothing until a refresh is due.
        let (_, w) = s.ws_announce(InfoHash([1; 20]), &ws_peer(10, 1, 5, AnnounceEvent::Update), 0, 102, &c);
        assert!(w.is_empty(), "{w:?}");
        let (_, w) = s.ws_announce(InfoHash([1; 20]), &ws_peer(10, 1, 5, AnnounceEvent::Update), 0, 100 + c.refresh_after, &c);
        assert!(matches!(&w[..], [StoreWrite::UpsertWsPeer { .. }]), "{w:?}");

        // Storage brings the WebSocket peers back after the object was away.
        let reloaded = t.reload(150, &c);
        assert_eq!(reloaded.ws.len(), 2);
        assert_eq!(reloaded.ws_locate(&PeerId([10; 20])).targets.len(), 1);

        // A close leaves only from the socket the peer is on now.
        let (r, w) = s.ws_announce(InfoHash([1; 20]), &ws_peer(10, 7, 5, AnnounceEvent::Update), 0, 120, &c);
        assert!(matches!(&w[..], [StoreWrite::UpsertWsPeer { .. }]), "a new socket is stored: {w:?}");
        assert_eq!(r.incomplete, 2);
        let (_, w) = s.ws_leave(&PeerId([10; 20]), SocketRef { gateway: 1, socket: 10 });
        assert!(w.is_empty());
        let (r, w) = s.ws_leave(&PeerId([10; 20]), SocketRef { gateway: 7, socket: 10 });
        assert_eq!(w, vec![StoreWrite::DeleteWsPeer(PeerKey([10; 20]))]);
        assert_eq!((r.complete, r.incomplete), (2, 1));
    }

    #[test]
    fn websocket_completions_and_expiry_follow_the_http_rules() {
        let c = cfg();
        let mut t = Tables::default();
        let mut s = SwarmState::new(4);
        t.apply(s.ws_announce(InfoHash([1; 20]), &ws_peer(1, 0, 9, AnnounceEvent::Started), 0, 100, &c).1, &c);
        let (r, w) = s.ws_announce(InfoHash([1; 20]), &ws_peer(1, 0, 0, AnnounceEvent::Completed), 0, 110, &c);
        assert!(w.iter().any(|w| matches!(w, StoreWrite::SwarmRow(row) if row.downloaded == 1)));
        t.apply(w, &c);
        assert_eq!((r.complete, r.incomplete), (1, 0));
        assert_eq!(t.reload(120, &c).counters(), SwarmCounters { complete: 1, incomplete: 0, downloaded: 1 });
        // Silent past the timeout: gone, and storage follows.
        let m = s.maintain(110 + c.peer_timeout() + 1, &c);
        assert!(m.writes.contains(&StoreWrite::DeleteWsPeer(PeerKey([1; 20]))));
        assert!(s.is_empty());
        assert_eq!(s.counters().downloaded, 1);
    }
}
