//! The swarm core against a hostile member (issue 14): another client's
//! peer id borrowed from another address or account, counters invented,
//! sessions restarted. Each attack here fails; honest clients keep their
//! entries and their exact credit.

use crate::announce::AnnounceEvent;
use crate::config::TrackerConfig;
use crate::flags;
use crate::peer::{client_key, InfoHash, PeerAddr, PeerId, PeerKey};
use crate::response::PeerListFormat;
use crate::swarm::memory::EncodedAnnounce;
use crate::swarm::storage::StoreWrite;
use crate::swarm::SwarmState;
use crate::swarm::PeerAnnounce;
use crate::wire::{Account, SwarmAnnounce};

fn cfg() -> TrackerConfig {
    TrackerConfig { enforce_min_interval: false, max_credit_rate: 1_000_000, ..TrackerConfig::default() }
}

/// An announce of `id` from `ip`, by `user` (private) or anyone (public),
/// with the client's `key` if given.
fn ann(id: u8, ip: &str, user: Option<u64>, key: Option<&[u8]>, left: u64, event: AnnounceEvent) -> SwarmAnnounce {
    let peer_id = PeerId([id; 20]);
    let addr = PeerAddr::new(ip.parse().unwrap(), 6881);
    let key = PeerKey::entry(user, &peer_id, &addr, key.map(client_key).as_ref());
    SwarmAnnounce {
        info_hash: InfoHash([9; 20]),
        peer: PeerAnnounce { key, peer_id, addr, left, event },
        uploaded: 0,
        downloaded: 0,
        numwant: 50,
        format: PeerListFormat { compact: false, no_peer_id: false },
        account: user.map(|user| Account { user, may_leech: true, freeleech: false }),
    }
}

fn with_counters(mut m: SwarmAnnounce, up: u64, down: u64) -> SwarmAnnounce {
    m.uploaded = up;
    m.downloaded = down;
    m
}

fn text(body: &[u8]) -> String {
    String::from_utf8_lossy(body).into_owned()
}

#[test]
fn a_borrowed_peer_id_from_another_address_neither_moves_nor_stops_the_victim() {
    let c = cfg();
    let mut s = SwarmState::new(1);
    let victim = ann(1, "10.0.0.1", None, None, 10, AnnounceEvent::Started);
    s.announce_encoded(&victim, 100, &c);
    // The attacker read the victim's id from a compact=0 list.
    let (_, w) = s.announce_encoded(&ann(1, "10.0.0.66", None, None, 10, AnnounceEvent::Stopped), 101, &c);
    assert!(w.is_empty(), "the attacker's stop touches nothing: {w:?}");
    let (_, w) = s.announce_encoded(&ann(1, "10.0.0.66", None, None, 0, AnnounceEvent::Started), 102, &c);
    assert_eq!(w.len(), 1, "another entry: {w:?}");
    let (entry, seeder) = s.swarm.get(&victim.peer.key).expect("the victim is still listed");
    assert_eq!((entry.addr, seeder), (victim.peer.addr, false), "not moved, not made a seeder");
    assert_eq!(s.swarm.len(), 2);
}

#[test]
fn with_its_key_a_client_keeps_its_entry_across_an_address_change() {
    let c = cfg();
    let mut s = SwarmState::new(1);
    let first = ann(1, "10.0.0.1", None, Some(b"A1B2C3D4"), 10, AnnounceEvent::Started);
    s.announce_encoded(&first, 100, &c);
    let moved = ann(1, "10.0.9.9", None, Some(b"A1B2C3D4"), 10, AnnounceEvent::Update);
    assert_eq!(moved.peer.key, first.peer.key);
    s.announce_encoded(&moved, 200, &c);
    assert_eq!(s.swarm.len(), 1);
    assert_eq!(s.swarm.get(&first.peer.key).unwrap().0.addr, moved.peer.addr);
    // The same id with a guessed key is someone else.
    s.announce_encoded(&ann(1, "10.0.9.9", None, Some(b"guess"), 10, AnnounceEvent::Stopped), 201, &c);
    assert_eq!(s.swarm.len(), 1);
}

#[test]
fn a_dual_stack_client_is_listed_in_peers_and_peers6() {
    let c = cfg();
    let mut s = SwarmState::new(1);
    s.announce_encoded(&ann(1, "10.0.0.1", None, Some(b"k"), 10, AnnounceEvent::Started), 100, &c);
    s.announce_encoded(&ann(1, "2001:db8::1", None, Some(b"k"), 10, AnnounceEvent::Started), 100, &c);
    let mut asker = ann(2, "10.0.0.2", None, None, 10, AnnounceEvent::Started);
    asker.format.compact = true;
    let (body, _) = s.announce_encoded(&asker, 101, &c);
    let t = text(&body);
    assert!(t.contains("5:peers6:") && t.contains("6:peers618:"), "{t}");
    // Counted once per address family.
    assert_eq!(s.counters().incomplete, 3);
    // A client never gets itself back, from either family.
    let (body, _) = s.announce_encoded(&ann(1, "10.0.0.1", None, Some(b"k"), 10, AnnounceEvent::Update), 102, &c);
    assert!(!text(&body).contains("2001:db8::1"), "{}", text(&body));
}

#[test]
fn private_peer_lists_never_carry_peer_ids() {
    let c = cfg();
    let mut s = SwarmState::new(1);
    s.announce_encoded(&ann(1, "10.0.0.1", Some(1), None, 0, AnnounceEvent::Started), 100, &c);
    let (body, _) = s.announce_encoded(&ann(2, "10.0.0.2", Some(2), None, 10, AnnounceEvent::Started), 100, &c);
    let t = text(&body);
    assert!(t.contains("2:ip8:10.0.0.1") && !t.contains("peer id"), "{t}");
    // Public mode still honours compact=0.
    let mut p = SwarmState::new(1);
    p.announce_encoded(&ann(1, "10.0.0.1", None, None, 0, AnnounceEvent::Started), 100, &c);
    let (body, _) = p.announce_encoded(&ann(2, "10.0.0.2", None, None, 10, AnnounceEvent::Started), 100, &c);
    assert!(text(&body).contains("7:peer id20:"));
}

#[test]
fn another_members_announce_never_stops_credits_or_blocks_a_session() {
    let c = cfg();
    let mut s = SwarmState::new(1);
    let victim = |up, ev| with_counters(ann(1, "10.0.0.1", Some(1), None, 10, ev), up, 0);
    s.announce_encoded(&victim(0, AnnounceEvent::Started), 100, &c);
    s.announce_encoded(&victim(1000, AnnounceEvent::Update), 110, &c);
    // Member 2 sends the victim's peer id from the victim's own address.
    let thief = |up, ev| with_counters(ann(1, "10.0.0.1", Some(2), None, 10, ev), up, 0);
    let (body, _) = s.announce_encoded(&thief(5000, AnnounceEvent::Stopped), 111, &c);
    assert!(!text(&body).contains("failure"), "no cross-user busy refusal: {}", text(&body));
    let (body, _) = s.announce_encoded(&thief(0, AnnounceEvent::Started), 112, &c);
    assert!(!text(&body).contains("failure"));
    assert!(s.swarm.get(&victim(0, AnnounceEvent::Update).peer.key).is_some(), "the victim stays listed");
    s.announce_encoded(&victim(3000, AnnounceEvent::Update), 120, &c);
    let (batch, _) = s.take_credit_batch(130).unwrap();
    assert_eq!(batch.credits, vec![[1, 3000, 0]], "the victim's credit is exact; the thief's first reports credit nothing");
}

#[test]
fn the_ratio_exemption_belongs_to_the_users_own_session() {
    let c = cfg();
    let mut s = SwarmState::new(1);
    s.announce_encoded(&ann(1, "10.0.0.1", Some(1), None, 10, AnnounceEvent::Started), 100, &c);
    // Member 2, below the ratio, reuses member 1's leeching peer id.
    let mut m = ann(1, "10.0.0.2", Some(2), None, 10, AnnounceEvent::Started);
    m.account = Some(Account { user: 2, may_leech: false, freeleech: false });
    let (body, w) = s.announce_encoded(&m, 101, &c);
    assert!(text(&body).contains("ratio is below the minimum"), "{}", text(&body));
    assert!(w.is_empty());
    // Member 1's own download goes on after its ratio drops.
    let mut own = ann(1, "10.0.0.1", Some(1), None, 5, AnnounceEvent::Update);
    own.account = Some(Account { user: 1, may_leech: false, freeleech: false });
    assert!(!text(&s.announce_encoded(&own, 102, &c).0).contains("failure"));
}

#[test]
fn invented_counters_credit_nothing_and_are_flagged() {
    let c = cfg();
    let mut s = SwarmState::new(1);
    // Six `started` alternating 0 and 2^53-1: each a baseline, none credited.
    for (i, up) in [0, (1u64 << 53) - 1, 0, (1 << 53) - 1, 0, (1 << 53) - 1].into_iter().enumerate() {
        s.announce_encoded(&with_counters(ann(1, "10.0.0.1", Some(1), None, 0, AnnounceEvent::Started), up, 0), 100 + i as u32, &c);
    }
    assert_eq!(s.session(1, &PeerId([1; 20])).unwrap().credited.uploaded, 0);
    // A jump beyond MAX_CREDIT_RATE (1 MB/s here) over 10 s is refused and flagged.
    s.announce_encoded(&with_counters(ann(1, "10.0.0.1", Some(1), None, 0, AnnounceEvent::Update), (1 << 53) - 1 + 20_000_000, 0), 115, &c);
    // An honest rate is credited to the byte.
    s.announce_encoded(&with_counters(ann(1, "10.0.0.1", Some(1), None, 0, AnnounceEvent::Update), (1 << 53) - 1 + 25_000_000, 0), 125, &c);
    assert!(s.credit_flush_due(125 + c.credit_flush));
    let (batch, _) = s.take_credit_batch(200).unwrap();
    assert_eq!(batch.credits, vec![[1, 5_000_000, 0]]);
    // Each jump from 0 to 2^53-1 within a second, and the 20 MB in 10 s.
    assert_eq!(batch.flags.len(), 4, "{:?}", batch.flags);
    assert!(batch.flags.iter().all(|f| (f.user, f.reason.as_str(), f.credited) == (1, flags::UPLOAD_TOO_FAST, 0)));
    assert_eq!(batch.flags[3].reported, 20_000_000);
}

#[test]
fn a_swarm_whose_upload_runs_far_ahead_of_its_downloads_is_flagged_without_blocking_credit() {
    let c = TrackerConfig { max_credit_rate: u64::MAX, ..cfg() };
    let mut s = SwarmState::new(1);
    let up = |v: u64, _at: u32| with_counters(ann(1, "10.0.0.1", Some(7), None, 0, AnnounceEvent::Update), v, 0);
    s.announce_encoded(&up(0, 0), 100, &c);
    s.announce_encoded(&up(3 << 30, 0), 200, &c);
    let (batch, _) = s.take_credit_batch(300).unwrap();
    assert_eq!(batch.credits, vec![[7, 3 << 30, 0]], "flags never block credit");
    assert_eq!(batch.flags.len(), 1);
    assert_eq!((batch.flags[0].user, batch.flags[0].reason.as_str()), (7, flags::SWARM_UNBALANCED));
}

#[test]
fn a_row_from_before_entry_keys_is_adopted_by_its_own_peer_only() {
    let c = cfg();
    let mut s = SwarmState::new(1);
    let id = PeerId([1; 20]);
    let addr = PeerAddr::new("10.0.0.1".parse().unwrap(), 6881);
    let legacy = PeerAnnounce { key: PeerKey::raw(&id), peer_id: id, addr, left: 10, event: AnnounceEvent::Started };
    s.swarm.announce(&legacy, 100);
    // Someone else with that id: another entry, the old row untouched.
    s.announce_encoded(&ann(1, "10.0.0.66", None, None, 10, AnnounceEvent::Stopped), 101, &c);
    assert!(s.swarm.get(&PeerKey::raw(&id)).is_some());
    // The peer itself, from its address: the row moves to its key.
    let (_, w) = s.announce_encoded(&ann(1, "10.0.0.1", None, Some(b"k"), 10, AnnounceEvent::Update), 102, &c);
    assert!(w.contains(&StoreWrite::DeletePeer(PeerKey::raw(&id))), "{w:?}");
    assert_eq!(s.swarm.len(), 1);
}


#[test]
fn a_busy_swarm_hands_out_a_longer_interval_and_keeps_its_peers_that_long() {
    let c = TrackerConfig { interval: 100, min_interval: 50, peer_grace: 20, swarm_rate_target: 1, interval_max: 1000, ..cfg() };
    let mut s = SwarmState::new(1);
    for n in 0..200u8 {
        s.announce_encoded(&ann(n, &format!("10.1.0.{n}"), None, None, 10, AnnounceEvent::Started), 1000, &c);
    }
    let (body, _) = s.announce_encoded(&ann(0, "10.1.0.0", None, None, 10, AnnounceEvent::Update), 1001, &c);
    let t = text(&body);
    let interval: u32 = t.split("8:intervali").nth(1).and_then(|r| r.split('e').next()).and_then(|n| n.parse().ok()).unwrap();
    assert!((177..=295).contains(&interval), "200 peers at 0.85/s, a quarter either side: {t}");
    // A peer that obeys that interval is still there when it comes back.
    let m = s.maintain(1000 + c.interval + c.peer_grace + 10, &c);
    assert!(m.writes.iter().all(|w| !matches!(w, StoreWrite::DeletePeer(_))), "{:?}", m.writes.len());
    assert_eq!(s.swarm.len(), 200);
}
