//! The swarm's state machine: one torrent's HTTP and WebSocket peer
//! tables, its private ledger and the bookkeeping that keeps storage in
//! step with them. Announces come in here (one path for both peer tables)
//! and leave as a typed answer plus the [`StoreWrite`]s to make durable
//! first; the alarm's side (expiry, publishing, freeing) is in
//! `upkeep.rs`.
//!
//! Nothing here touches the Worker runtime: the Durable Object glue runs the
//! SQL these types describe, so the rules are tested natively.

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::announce::AnnounceEvent;
use crate::config::TrackerConfig;
use crate::failure::Failure;
use crate::pace::Pace;
use crate::peer::{InfoHash, PeerId, PeerKey};
use crate::response::{AnnounceAnswer, AnnounceResponse, PeerListFormat};
use crate::webtorrent::{SocketRef, SwarmWsReply};
use crate::wire::SwarmAnnounce;

use super::ledger::Ledger;
use super::storage::{encode_peer, StoreWrite, SwarmRow, MAX_TOUCHES_PER_ROW};
use super::{AnnounceOutcome, Peer, PeerAnnounce, PeerChange, Swarm, SwarmCounters};

/// What a newcomer to a full swarm is told (it still gets peers).
pub const FULL_WARNING: &str = "swarm is full: you get peers but are not listed until a slot frees";

/// Swarms with at least this many peers batch their refreshes into one
/// ring row per flush window; smaller ones write a refreshed peer's row
/// directly (cheaper than a ring row plus an alarm for one peer).
pub const DENSE_SWARM: usize = 1_000;

/// A swarm plus the bookkeeping that keeps storage in step with it.
pub struct SwarmState {
    pub info_hash: Option<InfoHash>,
    pub swarm: Swarm,
    /// WebTorrent peers: offers go only to them, and they count with `swarm`.
    pub ws: Swarm,
    pub(super) pending_touches: Vec<PeerKey>,
    pub(super) published: Option<SwarmCounters>,
    pub(super) published_at: u32,
    /// Whether the `swarm` row exists in storage.
    pub(super) row_stored: bool,
    rng: SmallRng,
    /// Private mode: sessions, credit and flags.
    pub(super) ledger: Ledger,
    /// Private mode: an outbox batch still waits for D1.
    pub outbox_pending: bool,
    /// The oldest `last_seen` in the swarm as of the last sweep (a lower
    /// bound: announces only move peers later), so scheduling the next
    /// expiry sweep never scans the swarm on the announce path.
    pub(super) oldest_seen: Option<u32>,
    /// An operator blocked this torrent.
    pub blocked: bool,
    /// KV follows this swarm's changes until then: someone scraped it
    /// lately with `SCRAPE_FOLLOW`, or a legacy entry awaits replacing.
    pub(super) scrape_wanted_until: u32,
    /// When the scrape cache entry this instance last wrote expires.
    pub(super) kv_until: u32,
    /// A publish an announce started is in flight ([`Self::publish_now`]).
    pub(super) publishing: bool,
    /// The completed count KV's `final:` key holds, as far as this
    /// instance knows (it resumed from it, or wrote it).
    pub(super) final_known: Option<u64>,
    /// What KV's cache holds for this swarm, as far as this instance knows
    /// (after a reload: what was last published).
    pub(super) kv_has: Option<SwarmCounters>,
    /// The announce rate and the interval it calls for.
    pub pace: Pace,
}

/// Which of the swarm's two peer tables a change is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Table {
    /// `peers`: HTTP(S) announces.
    Http,
    /// `ws_peers`: WebTorrent peers, addressed by socket.
    Ws,
}

impl Table {
    fn upsert(self, id: PeerKey, rec: Vec<u8>) -> StoreWrite {
        match self {
            Table::Http => StoreWrite::UpsertPeer { id, rec },
            Table::Ws => StoreWrite::UpsertWsPeer { id, rec },
        }
    }

    fn delete(self, id: PeerKey) -> StoreWrite {
        match self {
            Table::Http => StoreWrite::DeletePeer(id),
            Table::Ws => StoreWrite::DeleteWsPeer(id),
        }
    }
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
            ledger: Ledger::default(),
            outbox_pending: false,
            oldest_seen: None,
            blocked: false,
            pace: Pace::default(),
            scrape_wanted_until: 0,
            kv_until: 0,
            publishing: false,
            final_known: None,
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
        self.expire(cutoff)
    }

    /// Whether storage holds this torrent: a row, peers or a block. (A
    /// count resumed from KV alone is not held: a shard may take it.)
    pub fn held(&self) -> bool {
        self.row_stored || !self.is_empty() || self.blocked
    }

    /// A swarm a shard hands over (`crate::swarm::shard`): its peers join
    /// (one already here keeps its entry; a full swarm takes no more) and
    /// the completed count is the larger of the two, so a handoff sent
    /// again counts nothing twice. Returns the rows to write.
    pub fn adopt(&mut self, row: SwarmRow, peers: Vec<(Peer, bool)>, config: &TrackerConfig) -> Vec<StoreWrite> {
        let mut writes = Vec::new();
        self.info_hash.get_or_insert(row.info_hash);
        for (peer, seeder) in peers {
            if self.swarm.get(&peer.key).is_none() && self.swarm.len() < config.max_peers as usize {
                self.swarm.restore(peer, seeder);
                writes.push(StoreWrite::UpsertPeer { id: peer.key, rec: encode_peer(&peer, seeder) });
            }
        }
        self.swarm.set_downloaded(self.swarm.downloaded().max(row.downloaded));
        self.oldest_seen = self.oldest_last_seen();
        writes.push(StoreWrite::SwarmRow(self.row()));
        self.row_stored = true;
        writes
    }

    /// Puts WebSocket peers in place as storage had them; call before [`Self::load`].
    pub fn restore_ws(&mut self, peers: impl IntoIterator<Item = (Peer, bool)>) {
        for (peer, seeder) in peers {
            self.ws.restore(peer, seeder);
        }
    }

    /// Drops the peers of both tables last seen before `cutoff`; returns
    /// their deletes.
    pub(super) fn expire(&mut self, cutoff: u32) -> Vec<StoreWrite> {
        let mut deletes: Vec<StoreWrite> = self.swarm.expire(cutoff).into_iter().map(StoreWrite::DeletePeer).collect();
        deletes.extend(self.ws.expire(cutoff).into_iter().map(StoreWrite::DeleteWsPeer));
        self.oldest_seen = self.oldest_last_seen();
        deletes
    }

    /// Applies an announce; returns the answer (or the refusal) and the
    /// writes that must be durable before it is sent. A refusal writes nothing.
    pub fn announce(&mut self, msg: &SwarmAnnounce, now: u32, config: &TrackerConfig) -> (AnnounceAnswer<'_>, Vec<StoreWrite>) {
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
            if let Err(refusal) = self.ledger.announce(msg, account, now, config, &mut writes) {
                return (Err(refusal), writes);
            }
        }
        self.adopt_legacy_entry(&msg.peer, &mut writes);
        if self.is_full_for(&msg.peer, config) {
            // Existing peers are never pushed out: a flood of new ids must
            // not evict real peers. The newcomer still gets peers.
            return (Ok(self.answer(msg, msg.peer.left == 0, now, config, Some(FULL_WARNING))), writes);
        }
        let outcome = self.apply_peer(Table::Http, msg.info_hash, &msg.peer, now, config, &mut writes);
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
    ) -> AnnounceResponse<'_> {
        let format = PeerListFormat { no_peer_id: msg.format.no_peer_id || msg.account.is_some(), ..msg.format };
        let given = self.pace.intervals(now, self.swarm.len() + self.ws.len(), config, &mut self.rng);
        let counters = self.counters();
        let p = &msg.peer;
        let peers = self.swarm.select((&p.key, &p.peer_id), seeder, msg.numwant as usize, &mut self.rng);
        AnnounceResponse { counters, interval: given.interval, min_interval: given.min_interval, peers, format, warning }
    }

    /// The one path of a peer's announce into either table: update the
    /// table, then the writes storage needs (the peer's row, the `swarm`
    /// row when it is new or a download completed).
    fn apply_peer(
        &mut self,
        table: Table,
        info_hash: InfoHash,
        peer: &PeerAnnounce,
        now: u32,
        config: &TrackerConfig,
        writes: &mut Vec<StoreWrite>,
    ) -> AnnounceOutcome {
        let outcome = self.peers_mut(table).announce_with_refresh(peer, now, config.refresh_after);
        let occupied = match table {
            Table::Http => !self.swarm.is_empty(),
            Table::Ws => !self.is_empty(),
        };
        if self.oldest_seen.is_none() && occupied {
            self.oldest_seen = Some(now);
        }
        self.store_change(table, outcome.change, now, config, writes);
        if self.info_hash.is_none() {
            self.info_hash = Some(info_hash);
        }
        if outcome.completed || (!self.row_stored && occupied) {
            writes.push(StoreWrite::SwarmRow(self.row()));
            self.row_stored = true;
        }
        outcome
    }

    /// The write a peer change needs: rows through, refreshes batched in
    /// dense HTTP swarms (WebSocket swarms are small: written through).
    fn store_change(&mut self, table: Table, change: PeerChange, now: u32, config: &TrackerConfig, writes: &mut Vec<StoreWrite>) {
        match change {
            PeerChange::Stored { peer, seeder } => writes.push(table.upsert(peer.key, encode_peer(&peer, seeder))),
            PeerChange::Removed(key) => writes.push(table.delete(key)),
            PeerChange::Touched(key)
                if table == Table::Http && (!self.pending_touches.is_empty() || self.swarm.len() >= DENSE_SWARM) =>
            {
                self.pending_touches.push(key);
                if self.pending_touches.len() >= MAX_TOUCHES_PER_ROW {
                    writes.extend(self.flush_touches(now, config));
                }
            }
            PeerChange::Touched(key) => {
                if let Some((peer, seeder)) = self.peers(table).get(&key) {
                    writes.push(table.upsert(key, encode_peer(peer, seeder)));
                }
            }
            PeerChange::Fresh | PeerChange::Unchanged => {}
        }
    }

    fn peers(&self, table: Table) -> &Swarm {
        match table {
            Table::Http => &self.swarm,
            Table::Ws => &self.ws,
        }
    }

    fn peers_mut(&mut self, table: Table) -> &mut Swarm {
        match table {
            Table::Http => &mut self.swarm,
            Table::Ws => &mut self.ws,
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

    /// Moves pending touches into one ring row.
    pub fn flush_touches(&mut self, now: u32, config: &TrackerConfig) -> Option<StoreWrite> {
        if self.pending_touches.is_empty() {
            return None;
        }
        let mut ids = Vec::with_capacity(self.pending_touches.len() * 20);
        for id in self.pending_touches.drain(..) {
            ids.extend_from_slice(&id.0);
        }
        Some(StoreWrite::Touches { slot: super::storage::touch_slot(now, config), at: now, ids })
    }

    pub(super) fn row(&self) -> SwarmRow {
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
        let outcome = self.apply_peer(Table::Ws, info_hash, peer, now, config, &mut writes);
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

#[cfg(test)]
mod tests;
