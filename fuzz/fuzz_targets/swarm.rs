//! The swarm update logic: an arbitrary sequence of announces, expiries,
//! touches, reloads and peer selections applied to `Swarm`, checked after
//! every step against a plain map model of the documented rules:
//! counts = seeders + leechers, no duplicate peer ids, each completion
//! counted once, selections never hand out the requester, never more than
//! asked, never a seeder to a seeder, and exactly as many as available.
#![no_main]

use std::collections::{BTreeMap, HashSet};

use arbitrary::Arbitrary;
use edge_tracker::announce::AnnounceEvent;
use edge_tracker::peer::{PeerAddr, PeerId, PeerKey};
use edge_tracker::swarm::{PeerAnnounce, PeerChange, Swarm};
use libfuzzer_sys::fuzz_target;
use rand::rngs::SmallRng;
use rand::SeedableRng;

#[derive(Arbitrary, Debug)]
enum Op {
    Announce { peer: u8, ip: u8, port: u16, left: u8, event: u8, dt: u8 },
    Expire { age: u16 },
    Select { peer: u8, seeder: bool, want: u16 },
    Touch { peer: u8, back: u16 },
    /// Rebuild the swarm from its own peers, as a reload from storage does.
    Reload,
}

#[derive(Arbitrary, Debug)]
struct Input {
    hash_key: [u64; 2],
    refresh_after: u16,
    rng_seed: u64,
    ops: Vec<Op>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct ModelPeer {
    addr: PeerAddr,
    seeder: bool,
    last_seen: u32,
    stored_seen: u32,
    completed: bool,
}

/// Few distinct ids, so announces hit known peers often; ids differ only in
/// the last byte, as crafted ids might.
fn id(n: u8) -> PeerId {
    let mut b = [b'-'; 20];
    b[19] = n % 64;
    PeerId(b)
}

fn addr(ip: u8, port: u16) -> PeerAddr {
    if ip & 0x80 == 0 {
        PeerAddr::new([10, 0, 0, ip % 4].into(), port)
    } else {
        PeerAddr::new(std::net::Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, (ip % 4) as u16).into(), port)
    }
}

fuzz_target!(|input: Input| {
    let mut swarm = Swarm::with_hash_key(input.hash_key);
    let mut model: BTreeMap<PeerId, ModelPeer> = BTreeMap::new();
    let mut downloaded = 0u64;
    let mut rng = SmallRng::seed_from_u64(input.rng_seed);
    let refresh_after = input.refresh_after as u32;
    let mut now: u32 = 1_000_000;

    for op in input.ops {
        match op {
            Op::Announce { peer, ip, port, left, event, dt } => {
                now += dt as u32;
                let event = AnnounceEvent::from_code(event % 4).unwrap();
                let a = PeerAnnounce { key: PeerKey::raw(&id(peer)), peer_id: id(peer), addr: addr(ip, port), left: left as u64 % 3, event };
                let out = swarm.announce_with_refresh(&a, now, refresh_after);
                let seeder = a.left == 0;
                assert_eq!(out.seeder, seeder);
                let old = model.get(&a.peer_id).copied();
                if event == AnnounceEvent::Stopped {
                    let completed = matches!(old, Some(p) if !p.seeder && !p.completed) && seeder;
                    assert_eq!(out.completed, completed);
                    let expected = if old.is_some() { PeerChange::Removed(a.key) } else { PeerChange::Unchanged };
                    assert_eq!(out.change, expected);
                    model.remove(&a.peer_id);
                    downloaded += completed as u64;
                } else if let Some(p) = old {
                    let completed = !p.completed && !p.seeder && (event == AnnounceEvent::Completed || seeder);
                    assert_eq!(out.completed, completed);
                    let stored = completed || p.addr != a.addr || p.seeder != seeder;
                    let refresh = !stored && now - p.stored_seen >= refresh_after;
                    let new = ModelPeer {
                        addr: a.addr,
                        seeder,
                        last_seen: now,
                        stored_seen: if stored || refresh { now } else { p.stored_seen },
                        completed: p.completed || completed,
                    };
                    match out.change {
                        PeerChange::Stored { peer, seeder: s } => {
                            assert!(stored);
                            assert_eq!((peer.id, peer.addr, peer.last_seen, peer.completed, s), (a.peer_id, a.addr, now, new.completed, seeder));
                        }
                        PeerChange::Touched(t) => assert!(!stored && refresh && t == a.key),
                        PeerChange::Fresh => assert!(!stored && !refresh),
                        other => panic!("re-announce gave {other:?}"),
                    }
                    model.insert(a.peer_id, new);
                    downloaded += completed as u64;
                } else {
                    let completed = event == AnnounceEvent::Completed;
                    assert_eq!(out.completed, completed);
                    assert!(matches!(out.change, PeerChange::Stored { seeder: s, .. } if s == seeder));
                    model.insert(a.peer_id, ModelPeer { addr: a.addr, seeder, last_seen: now, stored_seen: now, completed });
                    downloaded += completed as u64;
                }
            }
            Op::Expire { age } => {
                let cutoff = now.saturating_sub(age as u32);
                let mut gone = swarm.expire(cutoff);
                gone.sort();
                let expected: Vec<PeerKey> = model.iter().filter(|(_, p)| p.last_seen < cutoff).map(|(id, _)| PeerKey::raw(id)).collect();
                assert_eq!(gone, expected);
                model.retain(|_, p| p.last_seen >= cutoff);
            }
            Op::Select { peer, seeder, want } => {
                let requester = id(peer);
                let want = want as usize % 80;
                let got = swarm.select((&PeerKey::raw(&requester), &requester), seeder, want, &mut rng);
                let eligible: HashSet<PeerId> =
                    model.iter().filter(|(pid, p)| **pid != requester && !(seeder && p.seeder)).map(|(id, _)| *id).collect();
                assert_eq!(got.len(), want.min(eligible.len()), "handed out fewer peers than available");
                let mut seen = HashSet::new();
                for p in got {
                    assert!(eligible.contains(&p.id), "handed out the requester, a seeder to a seeder, or a stranger");
                    assert!(seen.insert(p.id), "handed out a peer twice");
                    assert_eq!(p.addr, model[&p.id].addr);
                }
            }
            Op::Touch { peer, back } => {
                let at = now.saturating_sub(back as u32);
                swarm.touch(&PeerKey::raw(&id(peer)), at);
                if let Some(p) = model.get_mut(&id(peer)) {
                    p.last_seen = p.last_seen.max(at);
                    p.stored_seen = p.stored_seen.max(at);
                }
            }
            Op::Reload => {
                let peers: Vec<_> = swarm.peers().map(|(p, s)| (*p, s)).collect();
                let mut fresh = Swarm::with_hash_key([input.hash_key[1], input.hash_key[0]]);
                fresh.set_downloaded(swarm.downloaded());
                fresh.reserve(peers.len());
                for (p, s) in peers.into_iter().rev() {
                    fresh.restore(p, s);
                }
                swarm = fresh;
            }
        }
        check(&swarm, &model, downloaded);
    }
});

fn check(swarm: &Swarm, model: &BTreeMap<PeerId, ModelPeer>, downloaded: u64) {
    let c = swarm.counters();
    let seeders = model.values().filter(|p| p.seeder).count() as u64;
    assert_eq!((c.complete, c.incomplete, c.downloaded), (seeders, model.len() as u64 - seeders, downloaded));
    assert_eq!(swarm.len(), model.len());
    let mut ids = HashSet::new();
    for (p, seeder) in swarm.peers() {
        assert!(ids.insert(p.id), "duplicate peer id");
        let m = model.get(&p.id).expect("a peer the model does not have");
        assert_eq!(
            (p.addr, seeder, p.last_seen, p.stored_seen, p.completed),
            (m.addr, m.seeder, m.last_seen, m.stored_seen, m.completed)
        );
        let (q, s) = swarm.get(&p.key).expect("listed peer not found by key");
        assert_eq!((q, s), (p, seeder));
    }
    assert_eq!(swarm.oldest_last_seen(), model.values().map(|p| p.last_seen).min());
}
