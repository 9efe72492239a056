use crate::announce::AnnounceEvent;
use crate::config::TrackerConfig;
use crate::failure::Failure;
use crate::peer::{InfoHash, PeerId, PeerKey};
use crate::swarm::fixtures::{cfg, key_of, msg, private, wide, ws_peer};
use crate::swarm::memory::{EncodedAnnounce, MemoryTables};
use crate::swarm::storage::StoreWrite;
use crate::swarm::{SwarmCounters, SwarmState, EXPIRY_SWEEP_GAP};
use crate::webtorrent::SocketRef;

use super::{DENSE_SWARM, FULL_WARNING};

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
    let mut t = MemoryTables::default();
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


#[test]
fn steady_reannounces_write_nothing_until_refresh_is_due() {
    let c = cfg();
    let mut t = MemoryTables::default();
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
    let mut t = MemoryTables::default();
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
    let reloaded = t.reload(1, false, later + c.peer_timeout() - 1, &c);
    assert_eq!(reloaded.swarm.len(), n as usize);
}

#[test]
fn reload_keeps_peers_and_completed_count() {
    let c = cfg();
    let mut t = MemoryTables::default();
    let mut s = SwarmState::new(1);
    for (n, left, ev) in [(1, 10, AnnounceEvent::Started), (2, 0, AnnounceEvent::Started), (1, 0, AnnounceEvent::Completed)] {
        let (_, w) = s.announce_encoded(&msg(n, left, ev), 1000, &c);
        t.apply(w, &c);
    }
    let r = t.reload(1, false, 1001, &c);
    assert_eq!(r.swarm.counters(), SwarmCounters { complete: 2, incomplete: 0, downloaded: 1 });
    assert_eq!(r.info_hash, Some(InfoHash([1; 20])));
}

#[test]
fn silent_peers_expire_on_reload_and_in_the_alarm() {
    let c = cfg();
    let mut t = MemoryTables::default();
    let mut s = SwarmState::new(1);
    t.apply(s.announce_encoded(&msg(1, 10, AnnounceEvent::Started), 1000, &c).1, &c);
    t.apply(s.announce_encoded(&msg(2, 10, AnnounceEvent::Started), 1100, &c).1, &c);
    // After a reload, storage's time may lag by under REFRESH_AFTER:
    // a silent peer goes once even its latest possible announce is too old.
    let just_before = 1000 + c.peer_timeout() + c.refresh_after - 1;
    assert!(SwarmState::new(1).load(t.row, t.peer_rows(), vec![], just_before, &c).is_empty());
    let deletes = SwarmState::new(1).load(t.row, t.peer_rows(), vec![], just_before + 1, &c);
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
fn an_emptied_swarm_writes_its_final_counters_only_when_kv_lacks_that_count() {
    let c = cfg();
    let mut s = SwarmState::new(6);
    // Resumed from `final:` with 7 completed; its peer leaves without completing.
    s.resume_from(SwarmCounters { complete: 0, incomplete: 0, downloaded: 7 }, false, 5000, &c);
    s.announce_encoded(&msg(1, 10, AnnounceEvent::Started), 5000, &c);
    let m = s.maintain(5060, &c);
    s.published(m.publish.unwrap().1, 5060, false);
    s.announce_encoded(&msg(1, 10, AnnounceEvent::Stopped), 5100, &c);
    let m = s.maintain(5120, &c);
    assert!(m.publish.is_some() && !m.final_counters, "KV has 7 already");
    s.published(m.publish.unwrap().1, 5120, false);
    assert!(s.maintain(5120, &c).free_storage);
    // A completion since: the new count is written.
    let mut s = SwarmState::new(7);
    s.resume_from(SwarmCounters { complete: 0, incomplete: 0, downloaded: 7 }, false, 5000, &c);
    s.announce_encoded(&msg(1, 10, AnnounceEvent::Started), 5000, &c);
    s.announce_encoded(&msg(1, 0, AnnounceEvent::Completed), 5010, &c);
    s.announce_encoded(&msg(1, 0, AnnounceEvent::Stopped), 5100, &c);
    assert!(s.maintain(5100, &c).final_counters);
    // Loaded from storage (the count in KV unknown): written.
    let mut s = SwarmState::new(8);
    s.announce_encoded(&msg(1, 10, AnnounceEvent::Started), 5000, &c);
    s.announce_encoded(&msg(1, 10, AnnounceEvent::Stopped), 5100, &c);
    assert!(s.maintain(5100, &c).final_counters);
}


#[test]
fn websocket_peers_count_with_http_peers_but_only_get_each_other() {
    let c = cfg();
    let mut t = MemoryTables::default();
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
    let reloaded = t.reload(1, false, 150, &c);
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
    let mut t = MemoryTables::default();
    let mut s = SwarmState::new(4);
    t.apply(s.ws_announce(InfoHash([1; 20]), &ws_peer(1, 0, 9, AnnounceEvent::Started), 0, 100, &c).1, &c);
    let (r, w) = s.ws_announce(InfoHash([1; 20]), &ws_peer(1, 0, 0, AnnounceEvent::Completed), 0, 110, &c);
    assert!(w.iter().any(|w| matches!(w, StoreWrite::SwarmRow(row) if row.downloaded == 1)));
    t.apply(w, &c);
    assert_eq!((r.complete, r.incomplete), (1, 0));
    assert_eq!(t.reload(1, false, 120, &c).counters(), SwarmCounters { complete: 1, incomplete: 0, downloaded: 1 });
    // Silent past the timeout: gone, and storage follows.
    let m = s.maintain(110 + c.peer_timeout() + 1, &c);
    assert!(m.writes.contains(&StoreWrite::DeleteWsPeer(PeerKey([1; 20]))));
    assert!(s.is_empty());
    assert_eq!(s.counters().downloaded, 1);
}

#[test]
fn a_scrape_cache_entry_expires_unless_it_follows_changes() {
    let c = TrackerConfig { scrape_cache: 600, scrape_follow: false, ..cfg() };
    let mut s = SwarmState::new(4);
    s.announce_encoded(&msg(1, 10, AnnounceEvent::Started), 1000, &c);
    let m = s.maintain(1000, &c);
    assert_eq!(m.kv, None, "nobody scraped it: no KV");
    s.published(m.publish.unwrap().1, 1000, false);
    // A miss caches the counters until the TTL, with no row (nothing to follow).
    let (counters, cache) = s.scraped(1010, &c);
    assert_eq!((counters.incomplete, cache), (1, Some((1610, None))));
    assert_eq!(s.scraped(1011, &c).1, None, "cached already: no second write");
    // A change goes to the totals, not to KV: the entry just expires.
    s.announce_encoded(&msg(2, 0, AnnounceEvent::Started), 1100, &c);
    let m = s.maintain(1100, &c);
    assert_eq!((m.publish.map(|p| p.1.complete), m.kv), (Some(1), None));
    // With SCRAPE_FOLLOW, KV follows changes until the entry lapses (a row: it outlives an eviction).
    let f = TrackerConfig { scrape_follow: true, ..c };
    let (_, cache) = s.scraped(1200, &f);
    assert_eq!(cache, Some((1800, Some(StoreWrite::ScrapeWanted(1800)))));
    s.published(s.counters(), 1200, true);
    s.announce_encoded(&msg(3, 0, AnnounceEvent::Started), 1300, &f);
    assert_eq!(s.maintain(1300, &f).kv, Some(1800));
    assert_eq!(s.maintain(1900, &f).kv, None);
}

#[test]
fn an_announce_publishes_a_change_itself_once_per_window_and_a_failure_falls_to_the_alarm() {
    let c = TrackerConfig { scrape_cache: 0, ..cfg() };
    let mut s = SwarmState::new(5);
    s.announce_encoded(&msg(1, 10, AnnounceEvent::Started), 1000, &c);
    let (hash, counters, kv) = s.publish_now(1000, &c).unwrap();
    assert_eq!((hash, counters.incomplete, kv), (InfoHash([1; 20]), 1, Some(0)));
    // In flight: neither another announce nor the alarm publishes, and no alarm is asked for it.
    s.announce_encoded(&msg(2, 0, AnnounceEvent::Started), 1001, &c);
    assert_eq!(s.publish_now(1001, &c), None);
    assert_eq!(s.maintain(1001, &c).publish, None);
    assert_eq!(s.next_alarm(1001, &c), Some(1000 + c.peer_timeout() + 1));
    s.published(counters, 1000, true);
    // The change that came meanwhile waits for the window's end, by the alarm.
    assert_eq!(s.publish_now(1002, &c), None);
    assert_eq!(s.next_alarm(1002, &c), Some(1060));
    let (_, counters, _) = s.publish_now(1060, &c).unwrap();
    assert_eq!(counters.complete, 1);
    // It fails: the alarm publishes it.
    s.publish_failed();
    assert_eq!(s.next_alarm(1061, &c), Some(1061));
    assert_eq!(s.maintain(1061, &c).publish.map(|p| p.1), Some(counters));
    // An emptied swarm is left to its alarm (final counters, then storage freed).
    s.published(counters, 1061, true);
    s.announce_encoded(&msg(1, 10, AnnounceEvent::Stopped), 1200, &c);
    s.announce_encoded(&msg(2, 0, AnnounceEvent::Stopped), 1200, &c);
    assert_eq!(s.publish_now(1200, &c), None);
    assert!(s.maintain(1200, &c).publish.is_some());
}
