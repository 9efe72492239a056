//! A swarm's Durable Object logic without the runtime: arbitrary public and
//! private announces, alarms, credit flushes whose delivery to the ledger
//! shard (the real `credit_ledger::Ledger`, oldest batch first, the first
//! failure ending the round) fails or loses its answer, storage frees and crashes (state rebuilt from the tables alone),
//! applied to `SwarmState` over its tables in memory (`swarm::memory`). Checked after
//! every step:
//! - every answer is strict bencode (a dictionary);
//! - storage holds exactly the peers memory holds, with the same address,
//!   role and completion, and the completed count;
//! - private mode loses and duplicates no byte: for every user, the ledger
//!   this target keeps (credit computed from the announced counters by the
//!   documented rules: sessions per user and peer id, the first report and
//!   a lowered counter only set a baseline, a delta beyond the rate bound
//!   since the baseline's time credits nothing) equals what D1 has, plus what waits in the outbox and the shard has not applied,
//!   plus what storage's sessions hold beyond their flushed marks, less the
//!   credit of announces storage has not seen yet (sessions are written
//!   behind). A crash takes those announces back: their credit returns with
//!   each client's next announce, counted against the stored baseline.
#![no_main]

use std::collections::{BTreeMap, HashMap, HashSet};

use arbitrary::Arbitrary;
use edge_tracker::announce::{AnnounceEvent, MAX_COUNTER};
use edge_tracker::config::TrackerConfig;
use edge_tracker::credit_ledger::{Delivery, Ledger as ShardLedger};
use edge_tracker::metainfo::{self, Value};
use edge_tracker::peer::{InfoHash, PeerAddr, PeerId, PeerKey};
use edge_tracker::response::PeerListFormat;
use edge_tracker::swarm::sessions::{chunk_of, decode_row};
use edge_tracker::swarm::ledger::CreditBatch;
use edge_tracker::swarm::memory::{EncodedAnnounce, MemoryTables};
use edge_tracker::swarm::storage::StoreWrite;
use edge_tracker::swarm::SwarmState;
use edge_tracker::swarm::PeerAnnounce;
use edge_tracker::wire::{Account, SwarmAnnounce};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Announce {
    peer: u8,
    /// Private mode when set: the announcing user.
    user: Option<u8>,
    ip: u8,
    port: u16,
    left: u8,
    event: u8,
    uploaded: Counter,
    downloaded: Counter,
    numwant: u8,
    compact: bool,
    no_peer_id: bool,
    may_leech: bool,
    freeleech: bool,
    dt: u8,
}

/// Announced byte counters: mostly small, sometimes anything the Worker
/// lets through, sometimes anything at all (the wire carries a u64).
#[derive(Arbitrary, Debug, Clone, Copy)]
enum Counter {
    Small(u16),
    Valid(u64),
    Hostile(u64),
}

impl Counter {
    fn value(self) -> u64 {
        match self {
            Counter::Small(n) => n as u64,
            Counter::Valid(n) => n % (MAX_COUNTER + 1),
            Counter::Hostile(n) => n,
        }
    }

    /// Totals of hostile counters saturate: no exact ledger to compare.
    fn exact(self) -> bool {
        !matches!(self, Counter::Hostile(n) if n > MAX_COUNTER)
    }
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum D1 {
    Ok,
    Fails,
    /// D1 applied the batch but the answer was lost.
    AnswerLost,
}

#[derive(Arbitrary, Debug)]
enum Op {
    Announce(Announce),
    /// The alarm: maintenance, then publish to KV, free storage if asked.
    Alarm { dt: u16, publish_ok: bool },
    /// The credit flush to D1 the alarm runs in private mode.
    FlushCredits(D1),
    /// The object dies; the next request reloads it from storage.
    Crash { dt: u16 },
}

#[derive(Arbitrary, Debug)]
struct Input {
    seed: u64,
    dense: bool,
    ops: Vec<Op>,
}

/// The swarm's storage: its tables (the in-memory set the unit tests and
/// benches use too), the glue's outbox, and the ledger chunks written
/// since the ledger last looked: (chunk count, chunk).
#[derive(Default)]
struct Tables {
    tables: MemoryTables,
    outbox: Vec<(u64, CreditBatch)>,
    written_chunks: Vec<(u32, u32)>,
}

impl Tables {
    fn apply(&mut self, writes: Vec<StoreWrite>, config: &TrackerConfig) {
        for w in &writes {
            match w {
                StoreWrite::SessionChunk { chunks, chunk, rows } => {
                    for row in rows {
                        let (n, _) = decode_row(row).expect("undecodable ledger row");
                        assert_eq!(n, *chunks);
                    }
                    self.written_chunks.push((*chunks, *chunk));
                }
                // This target sends no WebSocket announces and no blocks, and
                // starts from empty storage.
                StoreWrite::Blocked(_)
                | StoreWrite::ScrapeWanted(_)
                | StoreWrite::UpsertWsPeer { .. }
                | StoreWrite::DeleteWsPeer(_)
                | StoreWrite::DropLegacySessions => panic!("unexpected write {w:?}"),
                _ => {}
            }
        }
        self.tables.apply(writes, config);
    }
}

/// The private-mode ledger: what each user must end up credited with.
#[derive(Default)]
struct Ledger {
    /// Last accepted counters per session: (user, uploaded, downloaded, at).
    baseline: HashMap<PeerKey, (u64, u64, u64, u32)>,
    owed: BTreeMap<u64, (u128, u128)>,
    /// Credit of announces whose session storage has not seen yet.
    pending: HashMap<PeerKey, Vec<(u64, u128, u128)>>,
    /// The baseline storage holds per session (as of its chunk's last write).
    durable: HashMap<PeerKey, (u64, u64, u64, u32)>,
}

/// The swarm's ledger shard (the real one, `credit_ledger::Ledger`) and D1
/// behind it: what the shard takes reaches D1 at once (that step has its
/// own batch ids; what is modelled here is the swarm-to-shard delivery).
struct D1Db {
    hash: InfoHash,
    shard: ShardLedger,
    totals: BTreeMap<u64, (u128, u128)>,
}

fn config(dense: bool) -> TrackerConfig {
    // Short times so that expiry, refresh and publish windows all happen.
    TrackerConfig {
        interval: 100,
        min_interval: 50,
        peer_grace: 20,
        flush_delay: 5,
        publish_window: 30,
        refresh_after: if dense { 1 } else { 40 },
        credit_flush: 10,
        // Small: Small(u16) counters cross it often.
        max_credit_rate: 4_000,
        ..TrackerConfig::default()
    }
}

fn peer_id(n: u8) -> PeerId {
    let mut b = [b'p'; 20];
    b[0] = n % 16;
    PeerId(b)
}

fuzz_target!(|input: Input| {
    let mut run = Run::new(input.seed, input.dense);
    for op in input.ops {
        match op {
            Op::Announce(a) => run.announce(a),
            Op::Alarm { dt, publish_ok } => run.alarm(dt, publish_ok),
            Op::FlushCredits(outcome) => run.flush_credits(outcome),
            Op::Crash { dt } => {
                run.now += dt as u32 % 200;
                run.state = reload(&mut run.tables, &mut run.ledger, run.now, &run.config, run.seed);
            }
        }
        if let Some(at) = run.state.next_alarm(run.now, &run.config) {
            assert!(at >= run.now.saturating_sub(1), "an alarm in the past");
        }
        check(&run.state, &run.tables, &run.ledger, &run.d1, run.exact);
    }
    run.finish();
});

/// One input's run: the swarm, its storage, the ledger it must agree with
/// and D1.
struct Run {
    config: TrackerConfig,
    hash: InfoHash,
    seed: u64,
    state: SwarmState,
    tables: Tables,
    ledger: Ledger,
    d1: D1Db,
    next_batch: u64,
    now: u32,
    exact: bool,
}

impl Run {
    fn new(seed: u64, dense: bool) -> Self {
        Run {
            config: config(dense),
            hash: InfoHash([7; 20]),
            seed,
            state: SwarmState::new(seed),
            tables: Tables::default(),
            ledger: Ledger::default(),
            d1: D1Db { hash: InfoHash([7; 20]), shard: ShardLedger::default(), totals: BTreeMap::new() },
            next_batch: 0,
            now: 1_700_000_000,
            exact: true,
        }
    }

    fn message(&self, a: &Announce) -> SwarmAnnounce {
        let id = peer_id(a.peer);
        let addr = PeerAddr::new([192, 0, 2, a.ip % 3].into(), a.port);
        let user = a.user.map(|u| (u % 4) as u64);
        SwarmAnnounce {
            info_hash: self.hash,
            peer: PeerAnnounce {
                key: PeerKey::entry(user, &id, &addr, None),
                peer_id: id,
                addr,
                left: a.left as u64 % 2,
                event: AnnounceEvent::from_code(a.event % 4).unwrap(),
            },
            uploaded: a.uploaded.value(),
            downloaded: a.downloaded.value(),
            numwant: a.numwant as u16,
            format: PeerListFormat { compact: a.compact, no_peer_id: a.no_peer_id },
            account: user.map(|user| Account { user, may_leech: a.may_leech, freeleech: a.freeleech }),
        }
    }

    fn announce(&mut self, a: Announce) {
        self.now += a.dt as u32;
        self.exact &= a.uploaded.exact() && a.downloaded.exact();
        let (msg, now, config) = (self.message(&a), self.now, self.config.clone());
        // An early re-announce is answered but not applied.
        let deferred = self.state.early(&msg.peer, now, &config).is_some();
        let (body, writes) = self.state.announce_encoded(&msg, now, &config);
        let mut must_store = false;
        let top = metainfo::parse(&body).expect("an answer that is not strict bencode");
        let refused = top.get("failure reason").is_some();
        if std::env::var_os("FUZZ_TRACE").is_some() {
            eprintln!("{msg:?}\n -> {} {writes:?}", String::from_utf8_lossy(&body));
        }
        if refused {
            assert!(writes.is_empty(), "a refused announce wrote {writes:?}");
        } else {
            self.check_answer(&msg, &top, &body);
            if deferred {
                assert!(writes.is_empty(), "an early re-announce wrote {writes:?}");
            }
            if let (Some(acc), false) = (msg.account, deferred) {
                must_store = self.ledger.credit(&msg, acc, now, config.max_credit_rate);
            }
        }
        apply(&mut self.tables, &mut self.ledger, &self.state, writes, &config);
        if let (false, Some(acc), true) = (refused, msg.account, msg.peer.event == AnnounceEvent::Stopped || must_store) {
            // A session's last report, a new baseline and a refused
            // delta are durable before the answer.
            let key = PeerKey::session(acc.user, &msg.peer.peer_id);
            assert!(!self.ledger.pending.contains_key(&key), "stopped answered before it was stored");
        }
    }

    /// An accepted announce's answer: intervals, and a peer list no longer
    /// than asked for, without peer ids in private mode.
    fn check_answer(&self, msg: &SwarmAnnounce, top: &Value, body: &[u8]) {
        assert!(matches!(top.get("interval"), Some(Value::Int(_))));
        let listed = match top.get("peers") {
            Some(Value::Bytes(b)) => b.len() / 6,
            Some(Value::List(l)) => l.len(),
            other => panic!("no peer list: {other:?}"),
        } + match top.get("peers6") {
            Some(Value::Bytes(b)) => b.len() / 18,
            _ => 0,
        };
        let others = self.state.swarm.len() - self.state.swarm.get(&msg.peer.key).is_some() as usize;
        assert!(listed <= (msg.numwant as usize).min(others), "{listed} peers listed");
        if msg.account.is_some() {
            assert!(!body.windows(7).any(|w| w == b"peer id"), "a private list named a peer id");
        }
    }

    /// The alarm: maintenance, then publish to KV, free storage if asked.
    fn alarm(&mut self, dt: u16, publish_ok: bool) {
        self.now += dt as u32 % 200;
        let (now, config) = (self.now, &self.config);
        let m = self.state.maintain(now, config);
        apply(&mut self.tables, &mut self.ledger, &self.state, m.writes, config);
        let mut free = m.free_storage && self.state.can_free();
        if let Some((h, counters)) = m.publish {
            assert_eq!(h, self.hash);
            if publish_ok {
                if let Some(w) = self.state.published(counters, now, m.kv.is_some()) {
                    apply(&mut self.tables, &mut self.ledger, &self.state, vec![w], config);
                }
                free = self.state.can_free();
            }
        }
        if free {
            self.state.freed();
            self.tables = Tables::default();
            let unseen = self.ledger.pending.values().flatten().any(|c| c.1 != 0 || c.2 != 0);
            assert!(!unseen, "storage freed with credit it never saw");
            self.ledger.durable.clear();
        }
    }

    /// The credit flush to D1 the alarm runs in private mode.
    fn flush_credits(&mut self, outcome: D1) {
        if let Some((batch, marks)) = self.state.take_credit_batch(self.now) {
            self.tables.outbox.push((self.next_batch, batch));
            apply(&mut self.tables, &mut self.ledger, &self.state, marks, &self.config);
            self.next_batch += 1;
        }
        self.d1.deliver(&mut self.tables.outbox, outcome, self.now);
        self.state.outbox_pending = !self.tables.outbox.is_empty();
    }

    /// Once D1 answers, everything owed reaches it, exactly.
    fn finish(mut self) {
        for _ in 0..3 {
            if let Some((batch, marks)) = self.state.take_credit_batch(self.now) {
                self.tables.outbox.push((self.next_batch, batch));
                self.tables.apply(marks, &self.config);
                self.next_batch += 1;
            }
            self.d1.deliver(&mut self.tables.outbox, D1::Ok, self.now);
            assert!(self.tables.outbox.is_empty());
            self.state.outbox_pending = false;
        }
        if !self.exact {
            return;
        }
        let nonzero = |m: &BTreeMap<u64, (u128, u128)>| -> BTreeMap<u64, (u128, u128)> {
            m.iter().filter(|(_, v)| **v != (0, 0)).map(|(k, v)| (*k, *v)).collect()
        };
        assert_eq!(nonzero(&self.d1.totals), nonzero(&self.ledger.owed), "D1 totals differ from the ledger after a full flush");
    }
}

impl D1Db {
    /// Delivers the outbox oldest first, as the swarm does; the first
    /// failure (or lost answer) ends the round.
    fn deliver(&mut self, outbox: &mut Vec<(u64, CreditBatch)>, outcome: D1, now: u32) {
        while let Some((id, batch)) = outbox.first().cloned() {
            if matches!(outcome, D1::Fails) {
                break;
            }
            self.shard.receive(Delivery { id: id.to_string(), hash: self.hash, batch }, now);
            if let Some((batch, _)) = self.shard.take() {
                for [user, up, down] in batch.credits {
                    let t = self.totals.entry(user).or_default();
                    t.0 += up as u128;
                    t.1 += down as u128;
                }
            }
            if matches!(outcome, D1::AnswerLost) {
                break;
            }
            outbox.remove(0);
        }
    }

    /// Whether the shard has this outbox batch (its answer may be lost).
    fn applied(&self, id: u64) -> bool {
        self.shard.last_id(&self.hash) == Some(id.to_string().as_str())
    }
}

impl Ledger {
    /// Credits an accepted private announce by the documented rules;
    /// true when it set a new baseline or refused a delta.
    fn credit(&mut self, msg: &SwarmAnnounce, acc: Account, now: u32, max_rate: u64) -> bool {
        let id = PeerKey::session(acc.user, &msg.peer.peer_id);
        let (cur_up, cur_down) = (msg.uploaded, msg.downloaded);
        let prev = self.baseline.get(&id).copied();
        let mut must_store = true;
        let (up, down) = match prev {
            // A first report, or a counter that went down: a baseline only.
            None => (0, 0),
            Some((_, up, down, _)) if cur_up < up || cur_down < down => (0, 0),
            Some((_, up, down, at)) => {
                let allowed = max_rate.saturating_mul(now.saturating_sub(at).max(1) as u64);
                must_store = cur_up - up > allowed || cur_down - down > allowed;
                let ok = |d: u64| if d > allowed { 0 } else { d };
                (ok(cur_up - up), ok(cur_down - down))
            }
        };
        let down = if acc.freeleech { 0 } else { down };
        let owed = self.owed.entry(acc.user).or_default();
        owed.0 += up as u128;
        owed.1 += down as u128;
        if prev.map(|p| (p.1, p.2)) != Some((cur_up, cur_down)) {
            // A repeat of the last counters changes nothing to store, and
            // keeps the baseline's time.
            self.pending.entry(id).or_default().push((acc.user, up as u128, down as u128));
            self.baseline.insert(id, (acc.user, cur_up, cur_down, now));
        }
        must_store
    }

    /// The object died: announces storage never saw are taken back, and
    /// each id's baseline is what storage holds.
    fn crash(&mut self) {
        for (_, credits) in self.pending.drain() {
            for (user, up, down) in credits {
                let owed = self.owed.get_mut(&user).expect("pending credit of an unknown user");
                owed.0 -= up;
                owed.1 -= down;
            }
        }
        self.baseline = self.durable.clone();
    }
}

/// Runs writes against the fake tables and tells the ledger what storage
/// now holds. Sessions memory has dropped end first (their next announce
/// counts from zero), so a chunk written without them records that.
fn apply(t: &mut Tables, ledger: &mut Ledger, state: &SwarmState, writes: Vec<StoreWrite>, config: &TrackerConfig) {
    ledger.baseline.retain(|id, _| state.session_at(id).is_some());
    t.apply(writes, config);
    for (chunks, chunk) in t.written_chunks.drain(..) {
        let ids: HashSet<PeerKey> = ledger.baseline.keys().chain(ledger.pending.keys()).chain(ledger.durable.keys()).copied().collect();
        for id in ids.into_iter().filter(|id| chunk_of(id, chunks) == chunk) {
            ledger.pending.remove(&id);
            match ledger.baseline.get(&id) {
                Some(b) => ledger.durable.insert(id, *b),
                None => ledger.durable.remove(&id),
            };
        }
    }
}

/// A fresh object over the same storage (loaded as the Durable Object
/// loads it, the deletes its load asks for applied); the ledger takes
/// back what storage never saw.
fn reload(t: &mut Tables, ledger: &mut Ledger, now: u32, config: &TrackerConfig, seed: u64) -> SwarmState {
    ledger.crash();
    let s = t.tables.reload(seed.wrapping_add(1), !t.outbox.is_empty(), now, config);
    for (id, (user, up, down, at)) in &ledger.durable {
        let r = s.session_at(id).expect("storage lost a session");
        let stored = (r.session.user, r.session.uploaded, r.session.downloaded, r.session.last_seen);
        assert_eq!(stored, (*user, *up, *down, *at), "stored baseline");
    }
    s
}

fn check(state: &SwarmState, t: &Tables, ledger: &Ledger, d1: &D1Db, exact: bool) {
    // Storage's peers are memory's peers.
    let stored: BTreeMap<PeerKey, (PeerId, PeerAddr, bool, bool)> =
        t.tables.peer_rows().into_iter().map(|(p, s)| (p.key, (p.id, p.addr, s, p.completed))).collect();
    let memory: BTreeMap<PeerKey, (PeerId, PeerAddr, bool, bool)> =
        state.swarm.peers().map(|(p, s)| (p.key, (p.id, p.addr, s, p.completed))).collect();
    assert_eq!(stored, memory, "storage and memory disagree on the peers");
    if let Some(row) = t.tables.row {
        assert_eq!(row.downloaded, state.swarm.downloaded(), "completed count not durable");
    }
    let c = state.swarm.counters();
    assert_eq!(c.complete + c.incomplete, state.swarm.len() as u64);

    // Private mode: nothing lost, nothing counted twice.
    if !exact {
        return;
    }
    let mut accounted: BTreeMap<u64, (u128, u128)> = d1.totals.clone();
    for (id, batch) in &t.outbox {
        if !d1.applied(*id) {
            for [user, up, down] in &batch.credits {
                let e = accounted.entry(*user).or_default();
                e.0 += *up as u128;
                e.1 += *down as u128;
            }
        }
    }
    for row in t.tables.ledger.values() {
        for rec in decode_row(row).expect("undecodable ledger row").1 {
            let Some(r) = rec.session else { continue };
            let m = rec.mark.unwrap_or_default();
            assert!(r.credited.uploaded >= m.uploaded && r.credited.downloaded >= m.downloaded, "a mark beyond the credit");
            let e = accounted.entry(r.session.user).or_default();
            e.0 += (r.credited.uploaded - m.uploaded) as u128;
            e.1 += (r.credited.downloaded - m.downloaded) as u128;
        }
    }
    accounted.retain(|_, v| *v != (0, 0));
    let mut durable = ledger.owed.clone();
    for (user, up, down) in ledger.pending.values().flatten() {
        let e = durable.get_mut(user).unwrap();
        e.0 -= up;
        e.1 -= down;
    }
    let owed: BTreeMap<u64, (u128, u128)> = durable.into_iter().filter(|(_, v)| *v != (0, 0)).collect();
    assert_eq!(accounted, owed, "credited bytes lost or doubled");
}
