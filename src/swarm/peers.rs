//! One torrent's peers: who is in the swarm, what changed on an announce,
//! and which peers to hand out.
//!
//! Seeders and leechers live in two dense vectors with an index from peer id
//! to position, so insert, update and remove are O(1) (swap-remove) and a
//! random selection of `numwant` peers is O(numwant), whatever the swarm's
//! size. The index stores only a 4-byte position per peer (the id is read
//! from the vector), so a peer costs about 60 bytes in all.

use std::hash::BuildHasher;

use hashbrown::HashTable;

use siphasher::sip::SipHasher13;

use crate::announce::AnnounceEvent;
use crate::peer::{PeerAddr, PeerId, PeerKey};

mod select;

/// One peer as the swarm keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer {
    /// The entry's key (see [`PeerKey`]): the swarm's index.
    pub key: PeerKey,
    /// The client's own peer id, as it sent it.
    pub id: PeerId,
    pub addr: PeerAddr,
    /// Unix seconds of the peer's last announce.
    pub last_seen: u32,
    /// The `last_seen` storage has for this peer (at most `last_seen`).
    pub stored_seen: u32,
    /// Whether this peer's completion was already counted.
    pub completed: bool,
    /// `last_seen` is from an announce this instance answered, not read
    /// back or assumed after a reload (min interval is enforced only then).
    pub heard: bool,
}

/// The part of an announce the swarm needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerAnnounce {
    /// The entry this announce speaks for.
    pub key: PeerKey,
    pub peer_id: PeerId,
    pub addr: PeerAddr,
    pub left: u64,
    pub event: AnnounceEvent,
}

/// What an announce did to the swarm, so storage can follow it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerChange {
    /// New peer, or its address, role or completion changed: write its row now.
    Stored { peer: Peer, seeder: bool },
    /// Only `last_seen` moved, and storage's copy is now too old: a steady
    /// re-announce whose time must be written (batched or through).
    Touched(PeerKey),
    /// Only `last_seen` moved and storage's copy is recent enough: nothing to write.
    Fresh,
    /// The peer left (`stopped`): delete its row.
    Removed(PeerKey),
    /// `stopped` from a peer we did not know.
    Unchanged,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnnounceOutcome {
    pub change: PeerChange,
    /// This announce completed a download: `downloaded` grew by one.
    pub completed: bool,
    /// The requester is a seeder after this announce.
    pub seeder: bool,
}

/// Scrape numbers (BEP 48).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SwarmCounters {
    /// Seeders.
    pub complete: u64,
    /// Leechers.
    pub incomplete: u64,
    /// Completed downloads ever reported.
    pub downloaded: u64,
}

/// Where a peer is: which vector (top bit: seeders) and its position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Slot(u32);

const SEEDER_BIT: u32 = 1 << 31;

impl Slot {
    fn new(seeder: bool, pos: usize) -> Self {
        Slot(pos as u32 | if seeder { SEEDER_BIT } else { 0 })
    }

    fn seeder(self) -> bool {
        self.0 & SEEDER_BIT != 0
    }

    fn pos(self) -> usize {
        (self.0 & !SEEDER_BIT) as usize
    }
}

fn peer_at<'a>(seeders: &'a [Peer], leechers: &'a [Peer], slot: Slot) -> &'a Peer {
    if slot.seeder() {
        &seeders[slot.pos()]
    } else {
        &leechers[slot.pos()]
    }
}

/// Keyed SipHash for the peer index. Peer ids are chosen by clients, so a
/// per-swarm random key keeps crafted ids from colliding on purpose (the
/// standard library's keys are fixed on wasm32-unknown-unknown).
#[derive(Debug, Clone, Copy, Default)]
pub struct PeerIdHasher {
    k0: u64,
    k1: u64,
}

impl BuildHasher for PeerIdHasher {
    type Hasher = SipHasher13;

    fn build_hasher(&self) -> SipHasher13 {
        SipHasher13::new_with_keys(self.k0, self.k1)
    }
}

#[derive(Default)]
pub struct Swarm {
    seeders: Vec<Peer>,
    leechers: Vec<Peer>,
    index: HashTable<Slot>,
    hasher: PeerIdHasher,
    downloaded: u64,
}

impl Swarm {
    pub fn new() -> Self {
        Self::default()
    }

    /// A swarm whose peer index is keyed with `key` (from a random source).
    pub fn with_hash_key(key: [u64; 2]) -> Self {
        Swarm { hasher: PeerIdHasher { k0: key[0], k1: key[1] }, ..Self::default() }
    }

    pub fn len(&self) -> usize {
        self.seeders.len() + self.leechers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn counters(&self) -> SwarmCounters {
        SwarmCounters {
            complete: self.seeders.len() as u64,
            incomplete: self.leechers.len() as u64,
            downloaded: self.downloaded,
        }
    }

    pub fn downloaded(&self) -> u64 {
        self.downloaded
    }

    pub fn set_downloaded(&mut self, n: u64) {
        self.downloaded = n;
    }

    pub fn get(&self, id: &PeerKey) -> Option<(&Peer, bool)> {
        let slot = self.lookup(id)?;
        Some((self.at(slot), slot.seeder()))
    }

    /// Applies one announce at time `now` (Unix seconds); every steady
    /// re-announce asks for its time to be stored.
    pub fn announce(&mut self, a: &PeerAnnounce, now: u32) -> AnnounceOutcome {
        self.announce_with_refresh(a, now, 0)
    }

    /// Applies one announce; a steady re-announce asks for its time to be
    /// stored only once storage's copy is `refresh_after` seconds old.
    pub fn announce_with_refresh(&mut self, a: &PeerAnnounce, now: u32, refresh_after: u32) -> AnnounceOutcome {
        let seeder = a.left == 0;
        if a.event == AnnounceEvent::Stopped {
            let slot = self.lookup(&a.key);
            // A leecher leaving with left=0 finished first (aria2 exits so).
            let completed = matches!(slot, Some(s) if !s.seeder() && !self.at(s).completed) && seeder;
            let change = match self.remove(&a.key) {
                Some(_) => PeerChange::Removed(a.key),
                None => PeerChange::Unchanged,
            };
            if completed {
                self.downloaded += 1;
            }
            return AnnounceOutcome { change, completed, seeder };
        }
        match self.lookup(&a.key) {
            Some(slot) => {
                let old = *self.at(slot);
                // A leecher that reaches left=0 has finished, whether or not
                // its client sends `completed` (aria2 never does). A peer we
                // know as a seeder downloaded nothing, even if it says
                // `completed` (webtorrent does after checking its files).
                let completed = !old.completed
                    && !slot.seeder()
                    && (a.event == AnnounceEvent::Completed || seeder);
                let stored = completed || old.addr != a.addr || slot.seeder() != seeder;
                let refresh = !stored && now.saturating_sub(old.stored_seen) >= refresh_after;
                let peer = Peer {
                    key: a.key,
                    id: a.peer_id,
                    addr: a.addr,
                    last_seen: now,
                    stored_seen: if stored || refresh { now } else { old.stored_seen },
                    completed: old.completed || completed,
                    heard: true,
                };
                if slot.seeder() == seeder {
                    *self.at_mut(slot) = peer;
                } else {
                    self.remove(&a.key);
                    self.insert(peer, seeder);
                }
                if completed {
                    self.downloaded += 1;
                }
                let change = if stored {
                    PeerChange::Stored { peer, seeder }
                } else if refresh {
                    PeerChange::Touched(a.key)
                } else {
                    PeerChange::Fresh
                };
                AnnounceOutcome { change, completed, seeder }
            }
            None => {
                let completed = a.event == AnnounceEvent::Completed;
                let peer = Peer { key: a.key, id: a.peer_id, addr: a.addr, last_seen: now, stored_seen: now, completed, heard: true };
                self.insert(peer, seeder);
                if completed {
                    self.downloaded += 1;
                }
                AnnounceOutcome { change: PeerChange::Stored { peer, seeder }, completed, seeder }
            }
        }
    }

    /// Makes room for `additional` more peers in the index at once, so a
    /// reload does not rehash as it grows.
    pub fn reserve(&mut self, additional: usize) {
        let Swarm { seeders, leechers, index, hasher, .. } = self;
        index.reserve(additional, |&s| hasher.hash_one(peer_at(seeders, leechers, s).key));
    }

    /// Puts a peer in place as storage had it (used when a swarm is reloaded).
    pub fn restore(&mut self, peer: Peer, seeder: bool) {
        self.remove(&peer.key);
        self.insert(peer, seeder);
    }

    /// Moves the entry at `old` to `peer.key` (a stored row adopted by its
    /// peer under a new key), keeping its place in the counts.
    pub fn rekey(&mut self, old: &PeerKey, peer: Peer, seeder: bool) {
        if self.remove(old).is_some() {
            self.insert(peer, seeder);
        }
    }

    /// Raises a peer's `last_seen` (and storage's copy) to `at` if older:
    /// a batched touch read back from storage.
    pub fn touch(&mut self, id: &PeerKey, at: u32) {
        if let Some(slot) = self.lookup(id) {
            let p = self.at_mut(slot);
            p.last_seen = p.last_seen.max(at);
            p.stored_seen = p.stored_seen.max(at);
        }
    }

    /// After a reload, storage's `last_seen` may lag the truth by less than
    /// `refresh_after` (a later announce would have been written); assume
    /// the latest, so no live peer expires early.
    pub fn assume_recent(&mut self, now: u32, refresh_after: u32) {
        for p in self.seeders.iter_mut().chain(self.leechers.iter_mut()) {
            p.last_seen = p.stored_seen.saturating_add(refresh_after.saturating_sub(1)).min(now).max(p.last_seen);
        }
    }

    /// Removes every peer last seen before `cutoff`; returns their ids.
    pub fn expire(&mut self, cutoff: u32) -> Vec<PeerKey> {
        let stale: Vec<PeerKey> = self
            .seeders
            .iter()
            .chain(self.leechers.iter())
            .filter(|p| p.last_seen < cutoff)
            .map(|p| p.key)
            .collect();
        for id in &stale {
            self.remove(id);
        }
        stale
    }

    /// The earliest `last_seen` of any peer: when the next expiry is due.
    pub fn oldest_last_seen(&self) -> Option<u32> {
        self.seeders.iter().chain(self.leechers.iter()).map(|p| p.last_seen).min()
    }

    pub fn peers(&self) -> impl Iterator<Item = (&Peer, bool)> {
        self.seeders
            .iter()
            .map(|p| (p, true))
            .chain(self.leechers.iter().map(|p| (p, false)))
    }

    fn list(&mut self, seeder: bool) -> &mut Vec<Peer> {
        if seeder {
            &mut self.seeders
        } else {
            &mut self.leechers
        }
    }

    fn at(&self, slot: Slot) -> &Peer {
        peer_at(&self.seeders, &self.leechers, slot)
    }

    fn at_mut(&mut self, slot: Slot) -> &mut Peer {
        &mut self.list(slot.seeder())[slot.pos()]
    }

    fn lookup(&self, key: &PeerKey) -> Option<Slot> {
        let (seeders, leechers) = (&self.seeders, &self.leechers);
        self.index.find(self.hasher.hash_one(key), |&s| peer_at(seeders, leechers, s).key == *key).copied()
    }

    fn insert(&mut self, peer: Peer, seeder: bool) {
        let list = self.list(seeder);
        let slot = Slot::new(seeder, list.len());
        list.push(peer);
        let Swarm { seeders, leechers, index, hasher, .. } = self;
        index.insert_unique(hasher.hash_one(peer.key), slot, |&s| hasher.hash_one(peer_at(seeders, leechers, s).key));
    }

    fn remove(&mut self, key: &PeerKey) -> Option<Peer> {
        let hash = self.hasher.hash_one(key);
        let Swarm { seeders, leechers, index, hasher, .. } = self;
        let (slot, _) = index.find_entry(hash, |&s| peer_at(seeders, leechers, s).key == *key).ok()?.remove();
        let list = if slot.seeder() { seeders } else { leechers };
        let last = Slot::new(slot.seeder(), list.len() - 1);
        let peer = list.swap_remove(slot.pos());
        // The last peer moved into the hole: point its index entry there.
        if last != slot {
            let moved = list[slot.pos()].key;
            if let Some(entry) = index.find_mut(hasher.hash_one(moved), |&s| s == last) {
                *entry = slot;
            }
        }
        Some(peer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::SmallRng;
    use rand::SeedableRng;

    pub(super) fn id(n: u32) -> PeerId {
        let mut b = [0u8; 20];
        b[..4].copy_from_slice(&n.to_be_bytes());
        PeerId(b)
    }

    pub(super) fn k(n: u32) -> PeerKey {
        PeerKey::raw(&id(n))
    }

    pub(super) fn ann(n: u32, left: u64, event: AnnounceEvent) -> PeerAnnounce {
        PeerAnnounce {
            key: k(n),
            peer_id: id(n),
            addr: PeerAddr::new([10, 0, 0, (n % 250) as u8].into(), 6881),
            left,
            event,
        }
    }

    #[test]
    fn a_peer_takes_68_bytes() {
        // 20 key + 20 id + 18 address + 2 times + 2 flags, padded: the
        // memory budget (about 81 bytes a peer with the index) depends on it.
        assert_eq!(std::mem::size_of::<Peer>(), 68);
    }

    #[test]
    fn new_peers_are_stored_and_reannounces_only_touch() {
        let mut s = Swarm::new();
        let o = s.announce(&ann(1, 10, AnnounceEvent::Started), 100);
        assert!(matches!(o.change, PeerChange::Stored { seeder: false, .. }));
        let o = s.announce(&ann(1, 5, AnnounceEvent::Update), 200);
        assert_eq!(o.change, PeerChange::Touched(k(1)));
        assert_eq!(s.get(&k(1)).unwrap().0.last_seen, 200);
        assert_eq!(s.counters(), SwarmCounters { complete: 0, incomplete: 1, downloaded: 0 });
    }

    #[test]
    fn new_port_or_address_replaces_the_entry() {
        let mut s = Swarm::new();
        s.announce(&ann(1, 10, AnnounceEvent::Started), 100);
        let mut a = ann(1, 10, AnnounceEvent::Update);
        a.addr = PeerAddr::new("2001:db8::7".parse().unwrap(), 7000);
        assert!(matches!(s.announce(&a, 101).change, PeerChange::Stored { .. }));
        assert_eq!(s.len(), 1);
        assert_eq!(s.get(&k(1)).unwrap().0.addr, a.addr);
    }

    #[test]
    fn completion_counts_once_per_peer() {
        let mut s = Swarm::new();
        s.announce(&ann(1, 10, AnnounceEvent::Started), 1);
        let o = s.announce(&ann(1, 0, AnnounceEvent::Completed), 2);
        assert!(o.completed);
        assert!(!s.announce(&ann(1, 0, AnnounceEvent::Completed), 3).completed);
        // Leecher -> seeder without the event (aria2) also counts, once.
        s.announce(&ann(2, 10, AnnounceEvent::Started), 1);
        assert!(s.announce(&ann(2, 0, AnnounceEvent::Update), 2).completed);
        assert!(!s.announce(&ann(2, 0, AnnounceEvent::Completed), 3).completed);
        // A seeder that starts as one has not downloaded anything, even if
        // it later sends `completed`.
        assert!(!s.announce(&ann(3, 0, AnnounceEvent::Started), 1).completed);
        assert!(!s.announce(&ann(3, 0, AnnounceEvent::Completed), 2).completed);
        assert_eq!(s.counters(), SwarmCounters { complete: 3, incomplete: 0, downloaded: 2 });
        // A leecher that stops with left=0 finished; one that stops early did not.
        s.announce(&ann(4, 10, AnnounceEvent::Started), 1);
        assert!(s.announce(&ann(4, 0, AnnounceEvent::Stopped), 2).completed);
        s.announce(&ann(5, 10, AnnounceEvent::Started), 1);
        assert!(!s.announce(&ann(5, 10, AnnounceEvent::Stopped), 2).completed);
        assert_eq!(s.counters(), SwarmCounters { complete: 3, incomplete: 0, downloaded: 3 });
    }

    #[test]
    fn stopped_removes_at_once() {
        let mut s = Swarm::new();
        s.announce(&ann(1, 10, AnnounceEvent::Started), 1);
        s.announce(&ann(2, 0, AnnounceEvent::Started), 1);
        assert_eq!(s.announce(&ann(1, 10, AnnounceEvent::Stopped), 2).change, PeerChange::Removed(k(1)));
        assert_eq!(s.announce(&ann(9, 10, AnnounceEvent::Stopped), 2).change, PeerChange::Unchanged);
        assert_eq!(s.len(), 1);
        assert!(s.get(&k(2)).is_some());
    }

    #[test]
    fn random_operations_match_a_simple_model() {
        use rand::Rng;
        use std::collections::BTreeMap;
        let mut s = Swarm::with_hash_key([3, 4]);
        let mut model: BTreeMap<u32, (bool, u16)> = BTreeMap::new();
        let mut rng = SmallRng::seed_from_u64(9);
        for step in 0..20_000u32 {
            let n = rng.random_range(0..300);
            let port = rng.random_range(1..5u16);
            let left = rng.random_range(0..2u64);
            let event = match rng.random_range(0..10) {
                0 => AnnounceEvent::Stopped,
                1 => AnnounceEvent::Started,
                _ => AnnounceEvent::Update,
            };
            let mut a = ann(n, left, event);
            a.addr = PeerAddr::new([10, 0, 0, 1].into(), port);
            s.announce(&a, step);
            if event == AnnounceEvent::Stopped {
                model.remove(&n);
            } else {
                model.insert(n, (left == 0, port));
            }
            if step % 1000 == 0 {
                s.expire(step.saturating_sub(500));
                model.retain(|n, _| s.get(&k(*n)).is_some());
            }
        }
        assert_eq!(s.len(), model.len());
        for (n, (seeder, port)) in &model {
            let (p, is_seeder) = s.get(&k(*n)).expect("peer in the model is in the swarm");
            assert_eq!((is_seeder, p.addr.port(), p.id), (*seeder, *port, id(*n)));
        }
        let seeders = model.values().filter(|(seeder, _)| *seeder).count() as u64;
        assert_eq!(s.counters().complete, seeders);
    }

    #[test]
    fn expiry_removes_silent_peers_and_keeps_index_consistent() {
        let mut s = Swarm::new();
        for n in 0..100 {
            s.announce(&ann(n, (n % 2) as u64, AnnounceEvent::Started), n);
        }
        let gone = s.expire(50);
        assert_eq!(gone.len(), 50);
        assert_eq!(s.len(), 50);
        assert_eq!(s.oldest_last_seen(), Some(50));
        for n in 50..100 {
            assert_eq!(s.get(&k(n)).unwrap().0.id, id(n));
        }
        for n in 0..50 {
            assert!(s.get(&k(n)).is_none());
        }
        s.touch(&k(50), 500);
        assert_eq!(s.get(&k(50)).unwrap().0.last_seen, 500);
    }
}
