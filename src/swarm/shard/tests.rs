use super::*;
use crate::announce::AnnounceEvent::{self, Completed, Started, Stopped, Update};
use crate::peer::{PeerAddr, PeerId};
use crate::swarm::fixtures::{announce, cfg};

fn hash(n: u8) -> InfoHash {
    InfoHash([n; 20])
}

/// Peer `n` of torrent `t`, from 10.0.t.n.
fn ann(t: u8, n: u8, left: u64, event: AnnounceEvent) -> SwarmAnnounce {
    announce(hash(t), PeerId([n; 20]), PeerAddr::new([10, 0, t, n].into(), 6881), left, event)
}

/// The compact peers of an answer, as `(torrent, peer)` from their address.
fn peers(routed: &Routed) -> Vec<(u8, u8)> {
    let Routed::Here { body, failure: None } = routed else { panic!("not answered here: {routed:?}") };
    let at = body.windows(7).position(|w| w == b"5:peers").expect("peers") + 7;
    let colon = at + body[at..].iter().position(|b| *b == b':').expect("length");
    let len: usize = std::str::from_utf8(&body[at..colon]).unwrap().parse().unwrap();
    body[colon + 1..colon + 1 + len].chunks(6).map(|p| (p[2], p[3])).collect()
}

/// A shard that hosts torrents `ts` (as if their own objects held nothing).
fn shard_with(ts: &[u8]) -> Shard {
    let mut s = Shard::new(7);
    for t in ts {
        assert_eq!(s.settle(hash(*t), Own::Free { downloaded: 0 }, 0), None);
    }
    s
}

fn written_buckets(writes: &[ShardWrite]) -> Vec<(u8, Vec<u8>)> {
    writes.iter().filter_map(|w| match w {
        ShardWrite::Bucket { bucket, blob } => Some((*bucket, blob.clone())),
        _ => None,
    }).collect()
}

/// What storage holds after `writes`, bucket by bucket.
fn stored(writes: &[ShardWrite]) -> Vec<(u8, Vec<u8>)> {
    let mut rows: HashMap<u8, Vec<u8>> = HashMap::new();
    for w in writes {
        match w {
            ShardWrite::Bucket { bucket, blob } => {
                rows.insert(*bucket, blob.clone());
            }
            ShardWrite::DropBucketsFrom(from) => rows.retain(|b, _| b < from),
            ShardWrite::Moved { .. } => {}
        }
    }
    let mut rows: Vec<_> = rows.into_iter().filter(|(_, b)| !b.is_empty()).collect();
    rows.sort();
    rows
}

#[test]
fn swarms_of_one_shard_stay_apart_and_are_summed() {
    let c = cfg();
    let mut s = shard_with(&[1, 2]);
    assert_eq!(peers(&s.announce(&ann(1, 1, 0, Started), 100, &c)), vec![]);
    assert_eq!(peers(&s.announce(&ann(2, 1, 5, Started), 100, &c)), vec![]);
    assert_eq!(peers(&s.announce(&ann(1, 2, 5, Started), 101, &c)), vec![(1, 1)]);
    assert_eq!(s.counters(&hash(1)), Some(SwarmCounters { complete: 1, incomplete: 1, downloaded: 0 }));
    assert_eq!(s.counters(&hash(2)), Some(SwarmCounters { complete: 0, incomplete: 1, downloaded: 0 }));
    assert_eq!(s.counters(&hash(3)), Some(SwarmCounters::default()), "never seen: zeros");
    let g = s.gauges(10);
    assert_eq!((g.torrents, g.seeders, g.leechers), (2, 1, 2));
    assert_eq!(s.announce(&ann(3, 1, 0, Started), 102, &c), Routed::Unknown);
}

#[test]
fn changes_are_written_behind_once_per_flush_delay_and_reload() {
    let c = cfg();
    let mut s = shard_with(&[1, 2]);
    s.announce(&ann(1, 1, 0, Started), 100, &c);
    s.announce(&ann(2, 1, 5, Started), 101, &c);
    assert!(s.flush(104, &c, false).is_empty(), "not before FLUSH_DELAY");
    assert_eq!(s.next_alarm(104, &c), Some(100 + c.flush_delay));
    let writes = s.flush(105, &c, false);
    assert!(!writes.is_empty() && writes.len() <= 2, "a row per changed bucket: {writes:?}");
    assert!(s.flush(200, &c, false).is_empty(), "nothing changed since");
    // Plain re-announces write nothing (before `REFRESH_AFTER`).
    s.announce(&ann(1, 1, 0, Update), 120, &c);
    assert!(s.flush(300, &c, false).is_empty());
    s.announce(&ann(1, 2, 0, Completed), 151, &c);
    let mut all = written_buckets(&writes);
    all.extend(written_buckets(&s.flush(160, &c, false)));

    // A restart: the last blob of each bucket is what storage has.
    let mut latest: HashMap<u8, Vec<u8>> = HashMap::new();
    for w in writes.iter().chain(s.flush(0, &c, true).iter()) {
        if let ShardWrite::Bucket { bucket, blob } = w {
            latest.insert(*bucket, blob.clone());
        }
    }
    let mut again = Shard::new(9);
    again.load(latest.iter().map(|(b, blob)| (*b, blob.as_slice())), std::iter::empty(), 170, &c);
    assert_eq!(again.counters(&hash(2)), Some(SwarmCounters { complete: 0, incomplete: 1, downloaded: 0 }));
    assert_eq!(peers(&again.announce(&ann(2, 9, 5, Started), 171, &c)), vec![(2, 1)]);
    assert!(!all.is_empty());
}

#[test]
fn a_reload_keeps_what_the_last_flush_wrote() {
    let c = cfg();
    let mut s = shard_with(&[1]);
    s.announce(&ann(1, 1, 0, Started), 100, &c);
    s.announce(&ann(1, 2, 5, Started), 100, &c);
    s.announce(&ann(1, 3, 0, Completed), 101, &c);
    let stored = written_buckets(&s.flush(0, &c, true));
    let mut again = Shard::new(3);
    again.load(stored.iter().map(|(b, blob)| (*b, blob.as_slice())), std::iter::empty(), 110, &c);
    assert_eq!(again.counters(&hash(1)), Some(SwarmCounters { complete: 2, incomplete: 1, downloaded: 1 }));
    let mut listed = peers(&again.announce(&ann(1, 4, 5, Started), 111, &c));
    listed.sort();
    assert_eq!(listed, vec![(1, 1), (1, 2), (1, 3)]);
    let g = again.gauges(5);
    assert_eq!((g.torrents, g.seeders, g.leechers, g.completed), (1, 2, 2, 1));
}

#[test]
fn a_torrent_its_own_object_holds_is_forwarded_for_good() {
    let c = cfg();
    let mut s = Shard::new(1);
    assert_eq!(s.announce(&ann(5, 1, 0, Started), 100, &c), Routed::Unknown);
    assert_eq!(s.settle(hash(5), Own::Holds, 100), Some(ShardWrite::Moved { hash: hash(5), handoff: None }));
    assert_eq!(s.settle(hash(5), Own::Free { downloaded: 0 }, 100), None, "settled once");
    assert_eq!(s.announce(&ann(6, 1, 0, Started), 100, &c), Routed::Unknown);
    assert_eq!(s.settle(hash(6), Own::Free { downloaded: 4 }, 100), None);
    assert_eq!(s.counters(&hash(6)), Some(SwarmCounters { complete: 0, incomplete: 0, downloaded: 4 }), "the count it left");
    for own in [Own::Holds, Own::Free { downloaded: 4 }] {
        assert_eq!(Own::from_text(&own.to_text()), Some(own));
    }
    assert_eq!(Own::from_text("free x"), None);
    assert_eq!(s.announce(&ann(5, 1, 0, Started), 100, &c), Routed::Moved);
    assert_eq!(s.counters(&hash(5)), None);
    let mut again = Shard::new(2);
    again.load(std::iter::empty(), [(hash(5), None)], 100, &c);
    assert_eq!(again.announce(&ann(5, 2, 0, Started), 100, &c), Routed::Moved);
}

#[test]
fn a_grown_swarm_moves_out_with_its_peers_and_the_handoff_survives_a_restart() {
    let c = TrackerConfig { shard_promote: 3, ..cfg() };
    let mut s = shard_with(&[1, 2]);
    s.announce(&ann(2, 1, 5, Started), 100, &c);
    for n in 1..=2 {
        s.announce(&ann(1, n, n as u64 % 2, Started), 100, &c);
        assert!(!s.promote_due(&hash(1), &c));
    }
    s.announce(&ann(1, 3, 0, Completed), 100, &c);
    assert!(s.promote_due(&hash(1), &c));
    let stored = written_buckets(&s.flush(0, &c, true));
    let Some(ShardWrite::Moved { hash: h, handoff: Some(swarm) }) = s.move_out(hash(1), 101) else { panic!("moved") };
    assert_eq!(h, hash(1));
    let (row, moved_peers) = decode_swarm(&swarm).expect("decodes");
    assert_eq!((row.info_hash, row.downloaded, moved_peers.len()), (hash(1), 1, 3));
    assert_eq!(s.move_out(hash(1), 101), None, "once");
    assert_eq!(s.announce(&ann(1, 4, 5, Started), 102, &c), Routed::Moved);
    let g = s.gauges(5);
    assert_eq!((g.torrents, g.leechers, g.seeders), (1, 1, 0), "its peers left the sums");
    assert_eq!(s.handoffs(), vec![(hash(1), swarm.clone())]);

    // Restart before the handoff landed: the bucket still has the swarm.
    let mut again = Shard::new(4);
    again.load(stored.iter().map(|(b, blob)| (*b, blob.as_slice())), [(hash(1), Some(swarm.clone()))], 103, &c);
    assert_eq!(again.announce(&ann(1, 5, 5, Started), 103, &c), Routed::Moved);
    assert_eq!(again.handoffs().len(), 1);
    assert_eq!(again.counters(&hash(2)), Some(SwarmCounters { complete: 0, incomplete: 1, downloaded: 0 }));
    assert_eq!(again.handed_off(hash(1)), Some(ShardWrite::Moved { hash: hash(1), handoff: None }));
    assert!(again.handoffs().is_empty());
    assert_eq!(again.handed_off(hash(1)), None);
    // The moved swarm leaves its bucket at the next flush.
    let rewritten = written_buckets(&again.flush(0, &c, true));
    assert!(rewritten.iter().all(|(_, b)| decode_bucket(b).iter().all(|(r, _)| r.info_hash != hash(1))));
}

#[test]
fn silent_peers_expire_and_an_emptied_swarm_keeps_only_a_completed_count() {
    let c = cfg();
    let timeout = c.interval + c.peer_grace;
    let mut s = shard_with(&[1, 2]);
    s.announce(&ann(1, 1, 5, Started), 100, &c);
    s.announce(&ann(1, 2, 0, Completed), 100, &c);
    s.announce(&ann(2, 1, 5, Started), 100, &c);
    s.flush(0, &c, true);
    s.sweep(100, &c);
    assert!(s.flush(0, &c, true).is_empty(), "nothing expired yet");
    // Peer 1 of torrent 1 keeps announcing; the others fall silent.
    s.announce(&ann(1, 1, 5, Update), 100 + timeout - 10, &c);
    s.sweep(100 + timeout + 1, &c);
    assert_eq!(s.counters(&hash(1)), Some(SwarmCounters { complete: 0, incomplete: 1, downloaded: 1 }));
    assert_eq!(s.counters(&hash(2)), Some(SwarmCounters::default()));
    assert!(!s.flush(0, &c, true).is_empty(), "expiry is written");
    // Torrent 2 (nothing completed) is forgotten: its return asks again.
    assert_eq!(s.announce(&ann(2, 3, 5, Started), 100 + timeout + 2, &c), Routed::Unknown);
    s.announce(&ann(1, 1, 5, Stopped), 100 + timeout + 3, &c);
    s.sweep(100 + 3 * timeout, &c);
    assert_eq!(s.counters(&hash(1)), Some(SwarmCounters { complete: 0, incomplete: 0, downloaded: 1 }));
    // Emptied, it is a completed count in memory and in its bucket.
    let rows = stored(&s.flush(0, &c, true));
    let mut again = Shard::new(8);
    again.load(rows.iter().map(|(b, blob)| (*b, blob.as_slice())), std::iter::empty(), 100 + 3 * timeout, &c);
    assert_eq!(again.counters(&hash(1)), Some(SwarmCounters { complete: 0, incomplete: 0, downloaded: 1 }));
    assert_eq!(again.gauges(5).completed, 1);
    assert_eq!(peers(&s.announce(&ann(1, 7, 5, Started), 100 + 3 * timeout, &c)), vec![]);
    let g = s.gauges(5);
    assert_eq!((g.torrents, g.completed), (1, 1));
}

#[test]
fn shards_and_buckets_spread_hashes_even_with_a_shared_prefix() {
    let mut shards = [0u32; 8];
    let mut buckets = [0u32; 16];
    for n in 0..4_000u32 {
        let mut h = [0xc4u8; 20];
        h[4..8].copy_from_slice(&n.to_be_bytes());
        shards[shard_of(&InfoHash(h), 8) as usize] += 1;
        buckets[bucket_of(&InfoHash(h), 16) as usize] += 1;
    }
    assert!(shards.iter().all(|c| (400..600).contains(c)), "{shards:?}");
    assert!(buckets.iter().all(|c| (170..330).contains(c)), "{buckets:?}");
    assert_eq!(shard_name(10), "shard-000a");
}

#[test]
fn its_own_object_adopts_a_handoff_and_counts_nothing_twice() {
    let c = cfg();
    let mut s = shard_with(&[1]);
    s.announce(&ann(1, 1, 0, Started), 100, &c);
    s.announce(&ann(1, 2, 5, Started), 100, &c);
    s.announce(&ann(1, 3, 0, Completed), 101, &c);
    let Some(ShardWrite::Moved { handoff: Some(swarm), .. }) = s.move_out(hash(1), 102) else { panic!("moved") };
    let (row, moved) = decode_swarm(&swarm).expect("decodes");
    let mut own = SwarmState::new(5);
    let writes = own.adopt(row, moved.clone(), &c);
    assert_eq!(writes.len(), 4, "three peer rows and the swarm row");
    let expected = SwarmCounters { complete: 2, incomplete: 1, downloaded: 1 };
    assert_eq!(own.counters(), expected);
    assert!(own.held());
    assert_eq!(own.adopt(row, moved, &c).len(), 1, "sent again: only the swarm row");
    assert_eq!(own.counters(), expected);
}

#[test]
fn buckets_split_as_the_shard_grows_and_merge_as_it_shrinks_without_losing_a_swarm() {
    let c = cfg();
    let mut s = Shard::new(11);
    let mut log = Vec::new();
    let many = (SWARMS_PER_BUCKET * 3) as u32;
    let hashes: Vec<InfoHash> = (0..many).map(|n| {
        let mut h = [9u8; 20];
        h[..4].copy_from_slice(&n.to_be_bytes());
        InfoHash(h)
    }).collect();
    for h in &hashes {
        s.settle(*h, Own::Free { downloaded: 0 }, 0);
        let m = announce(*h, PeerId([1; 20]), PeerAddr::new([10, 1, 1, 1].into(), 6881), 0, Started);
        s.announce(&m, 10, &c);
    }
    log.extend(s.flush(0, &c, true));
    let rows = stored(&log);
    assert_eq!(rows.len(), 4, "768 swarms: four buckets");
    let mut again = Shard::new(12);
    again.load(rows.iter().map(|(b, blob)| (*b, blob.as_slice())), std::iter::empty(), 11, &c);
    assert!(hashes.iter().all(|h| again.counters(h) == Some(SwarmCounters { complete: 1, incomplete: 0, downloaded: 0 })));
    // Every peer stops: the swarms are forgotten at the next sweep (a
    // gap after the load, which expired what was silent), and the
    // buckets merge back into one, written empty.
    for h in &hashes[1..] {
        let m = announce(*h, PeerId([1; 20]), PeerAddr::new([10, 1, 1, 1].into(), 6881), 0, Stopped);
        again.announce(&m, 12, &c);
    }
    again.sweep(12 + crate::swarm::EXPIRY_SWEEP_GAP, &c);
    log.extend(again.flush(0, &c, true));
    let rows = stored(&log);
    assert_eq!(rows.len(), 1, "one swarm left, one bucket");
    let mut third = Shard::new(13);
    third.load(rows.iter().map(|(b, blob)| (*b, blob.as_slice())), std::iter::empty(), 14, &c);
    assert_eq!(third.counters(&hashes[0]), Some(SwarmCounters { complete: 1, incomplete: 0, downloaded: 0 }));
    assert!(!third.knows(&hashes[1]));
}

#[test]
fn a_loaded_shard_next_sweeps_a_gap_later_having_expired_the_silent_at_load() {
    let c = cfg();
    let mut s = Shard::new(21);
    let (live, silent) = (InfoHash([1; 20]), InfoHash([2; 20]));
    for (h, at) in [(live, 5_000), (silent, 10)] {
        s.settle(h, Own::Free { downloaded: 0 }, at);
        s.announce(&announce(h, PeerId([1; 20]), PeerAddr::new([10, 1, 1, 1].into(), 6881), 5, Started), at, &c);
    }
    let rows = stored(&s.flush(0, &c, true));
    let mut again = Shard::new(22);
    let now = 5_010;
    again.load(rows.iter().map(|(b, blob)| (*b, blob.as_slice())), std::iter::empty(), now, &c);
    assert_eq!(again.counters(&live).map(|c| c.incomplete), Some(1));
    assert_eq!(again.counters(&silent).map(|c| c.incomplete), Some(0), "its peer expired at the load");
    // The deletions are due to be written, then the next sweep a gap away.
    assert_eq!(again.next_alarm(now, &c), Some(now + flush_delay(&c)));
    again.flush(now + flush_delay(&c), &c, false);
    assert_eq!(again.next_alarm(now, &c), Some(now + sweep_gap(&c)));
}

#[test]
fn damaged_bytes_decode_to_what_is_whole_and_never_panic() {
    let c = cfg();
    let mut s = shard_with(&[1, 2]);
    s.announce(&ann(1, 1, 0, Started), 100, &c);
    s.announce(&ann(2, 1, 5, Started), 100, &c);
    let blob: Vec<u8> = written_buckets(&s.flush(0, &c, true)).into_iter().flat_map(|(_, b)| b).collect();
    // Every truncation, and bytes flipped along the way: no panic, and never
    // more swarms than were written.
    for cut in 0..blob.len() {
        assert!(decode_bucket(&blob[..cut]).len() <= 2);
        let mut bad = blob.clone();
        bad[cut] ^= 0xa5;
        assert!(decode_bucket(&bad).len() <= 2);
        let _ = decode_swarm(&bad[cut..]);
    }
    assert_eq!(decode_bucket(&[0xff; 64]).len(), 0);
}

#[test]
fn a_full_shard_leaves_new_torrents_with_their_own_objects() {
    let c = cfg();
    let numbered = |n: u32| {
        let mut h = [3u8; 20];
        h[..4].copy_from_slice(&n.to_be_bytes());
        InfoHash(h)
    };
    let mut s = Shard::new(21);
    for n in 0..MAX_SWARMS as u32 {
        s.settle(numbered(n), Own::Free { downloaded: 0 }, 0);
    }
    assert!(!s.takes_new());
    assert_eq!(s.settle(hash(1), Own::Free { downloaded: 2 }, 0), None);
    assert!(!s.knows(&hash(1)), "nothing recorded");
    assert_eq!(s.announce(&ann(1, 1, 0, Started), 1, &c), Routed::Unknown, "forwarded, every time");
    assert_eq!(s.counters(&hash(1)), None, "its own object answers");
    // One it holds already is still answered here.
    assert_eq!(s.counters(&numbered(0)), Some(SwarmCounters::default()));
}
