use crate::accounting::{Credit, Session};
use crate::announce::AnnounceEvent;
use crate::config::TrackerConfig;
use crate::failure::Failure;
use crate::peer::{PeerId, PeerKey};
use crate::swarm::fixtures::{as_user, cfg, private};
use crate::swarm::memory::{EncodedAnnounce, MemoryTables};
use crate::swarm::storage::StoreWrite;
use crate::swarm::SwarmState;

use super::{encode_marks, SessionRecord};

fn session_writes(writes: &[StoreWrite]) -> usize {
    writes.iter().filter(|w| matches!(w, StoreWrite::SessionChunk { .. })).count()
}

#[test]
fn private_announces_credit_deltas_written_behind() {
    let c = cfg();
    let mut s = SwarmState::new(1);
    let mut t = MemoryTables::default();
    let id = PeerId([1; 20]);
    let (_, w) = s.announce_encoded(&private(1, 100, AnnounceEvent::Started, 0, 0, true), 1000, &c);
    assert_eq!(session_writes(&w), 1, "the first change in a window is written through: {w:?}");
    t.apply(w, &c);
    let (_, w) = s.announce_encoded(&private(1, 50, AnnounceEvent::Update, 10, 50, true), 1001, &c);
    assert_eq!(session_writes(&w), 0, "later ones are written behind: {w:?}");
    assert_eq!(s.session(1, &id).unwrap().credited, Credit { uploaded: 10, downloaded: 50 });
    assert!(s.next_alarm(1001, &c).is_some_and(|t| t <= 1000 + c.flush_delay), "by the alarm at the window's end");
    assert!(!s.credit_flush_due(1005), "that alarm leaves credit for CREDIT_FLUSH");
    assert!(s.credit_flush_due(1001 + c.credit_flush));
    let m = s.maintain(1005, &c);
    assert_eq!(session_writes(&m.writes), 1, "one row for the whole swarm: {:?}", m.writes);
    t.apply(m.writes, &c);
    assert_eq!(t.session(&PeerKey::session(1, &id)).unwrap().credited, Credit { uploaded: 10, downloaded: 50 });
    // A retry of the same announce credits and dirties nothing.
    let (_, w) = s.announce_encoded(&private(1, 50, AnnounceEvent::Update, 10, 50, true), 1011, &c);
    assert!(w.is_empty(), "{w:?}");
    assert_eq!(session_writes(&s.maintain(1011, &c).writes), 0);
    let (batch, w) = s.take_credit_batch(0).unwrap();
    assert_eq!(batch.credits, vec![[1, 10, 50]]);
    assert_eq!(session_writes(&w), 1, "the new marks go with the outbox row");
    t.apply(w, &c);
    assert!(s.take_credit_batch(0).is_none(), "taken credit is not taken twice");
    // Stopped credits the rest and is written before the answer.
    let (_, w) = s.announce_encoded(&private(1, 0, AnnounceEvent::Stopped, 30, 100, true), 1020, &c);
    assert_eq!(session_writes(&w), 1, "{w:?}");
    t.apply(w, &c);
    assert_eq!(t.session(&PeerKey::session(1, &id)).unwrap().credited, Credit { uploaded: 30, downloaded: 100 });
    let (_, w) = s.announce_encoded(&private(1, 0, AnnounceEvent::Stopped, 30, 100, true), 1021, &c);
    assert_eq!(session_writes(&w), 0, "a retried stop credits nothing");
    assert!(s.credits_pending());
    assert_eq!(s.next_alarm(1021, &c).map(|t| t <= 1021 + c.credit_flush), Some(true));
    let (batch, w) = s.take_credit_batch(0).unwrap();
    assert_eq!(batch.credits, vec![[1, 20, 50]]);
    t.apply(w, &c);
    // Reloaded from its rows, the state owes nothing more.
    assert!(t.reload(2, false, 0, &c).take_credit_batch(0).is_none());
}

/// Counters are cumulative: an object that dies before its write-behind
/// credits the lost announces again from the client's next one.
#[test]
fn a_crash_before_the_write_behind_loses_no_credit_of_a_returning_peer() {
    let c = cfg();
    let mut s = SwarmState::new(1);
    let mut t = MemoryTables::default();
    s.announce_encoded(&private(1, 100, AnnounceEvent::Started, 0, 0, true), 1000, &c);
    s.announce_encoded(&private(1, 50, AnnounceEvent::Update, 10, 50, true), 1001, &c);
    t.apply(s.maintain(1005, &c).writes, &c);
    s.announce_encoded(&private(1, 30, AnnounceEvent::Update, 20, 70, true), 1006, &c);
    // The object dies before its alarm: storage has the announce of 1001.
    let mut r = t.reload(2, false, 0, &c);
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
    let mut t = MemoryTables::default();
    s.announce_encoded(&private(1, 0, AnnounceEvent::Started, 0, 0, true), 999, &c);
    s.announce_encoded(&private(1, 0, AnnounceEvent::Update, 10, 0, true), 1000, &c);
    let (batch, w) = s.take_credit_batch(0).unwrap();
    assert_eq!(batch.credits, vec![[1, 10, 0]]);
    t.apply(w, &c);
    s.outbox_pending = false;
    t.apply(s.announce_encoded(&private(1, 0, AnnounceEvent::Stopped, 10, 0, true), 1001, &c).1, &c);
    t.apply(s.maintain(1001 + c.peer_timeout() + 1, &c).writes, &c);
    assert!(s.session(1, &PeerId([1; 20])).is_none(), "the session ended");
    // Back with a new session: its first report is a baseline.
    t.apply(s.announce_encoded(&private(1, 0, AnnounceEvent::Started, 5, 0, true), 1200, &c).1, &c);
    t.apply(s.announce_encoded(&private(1, 0, AnnounceEvent::Update, 10, 0, true), 1210, &c).1, &c);
    t.apply(s.maintain(1210, &c).writes, &c);
    // The object dies after the new session was written.
    let mut r = t.reload(2, false, 0, &c);
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
    let mut t = MemoryTables::default();
    t.apply(m.writes, &c);
    assert_eq!(t.reload(2, false, 0, &c).take_credit_batch(0).unwrap().0.credits, vec![[1, 6, 0]]);
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

