//! A private swarm's ledger: each session's baseline and credited bytes,
//! the part of that credit already taken into a credit batch (its mark),
//! flags for admins, and when all that must be written or sent.
//!
//! Sessions are packed into chunk rows ([`super::sessions`]) and
//! written behind the answer: the first change after a quiet spell before
//! it, later ones by the alarm at the end of the `FLUSH_DELAY` window.
//! Credit leaves in batches, one per user, through the Durable Object's
//! outbox (see [`super::SwarmState::take_credit_batch`]).

use std::collections::{BTreeMap, HashMap};

use crate::accounting::{self, Credit, Session};
use crate::announce::AnnounceEvent;
use crate::config::TrackerConfig;
use crate::failure::Failure;
pub use crate::flags::CreditBatch;
use crate::flags::{self, Balance, Flag};
use crate::peer::{PeerId, PeerKey};
pub use super::sessions::SessionRecord;
use super::sessions::{self, ChunkRecord, SessionChunks};
use crate::wire::{Account, SwarmAnnounce};

use super::storage::StoreWrite;

#[derive(Default)]
pub struct Ledger {
    /// Each session's baseline and credited bytes, by
    /// [`PeerKey::session`] (user and peer id).
    sessions: HashMap<PeerKey, SessionRecord>,
    /// The part of each session's credit already in an outbox batch
    /// (stored beside the session in its chunk).
    marks: HashMap<PeerKey, Credit>,
    /// Flags for admins, sent with the next credit batch.
    pending_flags: Vec<Flag>,
    /// Uploads and downloads credited here since loading.
    balance: Balance,
    /// Which chunks of `sessions` and `marks` storage lacks.
    chunks: SessionChunks,
    /// When an announce last wrote session chunks. Writes are throttled
    /// to one per `FLUSH_DELAY`: the first change after a quiet spell is
    /// written before its answer (a sparse swarm never waits on an
    /// alarm), later ones wait for the alarm at the window's end.
    written_at: Option<u32>,
    /// When the credit gathered since the last batch is due at D1
    /// (`CREDIT_FLUSH` after the first of it), so alarms that come sooner
    /// for other work do not flush early.
    credit_due_at: Option<u32>,
    /// Some session holds credit not yet taken into a batch (kept as a
    /// flag so the announce path never scans the sessions).
    unflushed: bool,
}

impl Ledger {
    /// The ratio rule and the credit of one announce. `Err` is the refusal.
    pub fn announce(
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
        let window_open = self.written_at.is_none_or(|at| now >= at.saturating_add(config.flush_delay));
        // Written before the answer: `stopped` (a session's last report, or
        // a repeat of an unwritten one: nothing would bring it back), a new
        // baseline (see `Accepted::fresh`), and a refusal (taken back by a
        // crash, the refused bytes would pass as a slower delta).
        let must_write = msg.peer.event == AnnounceEvent::Stopped || a.fresh || a.refused.iter().any(Option::is_some);
        if must_write || (window_open && self.chunks.is_dirty()) {
            self.write(now, writes);
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

    /// Forgets baselines of peers gone for longer than the timeout, once
    /// all their credit is on its way to D1; a peer in the swarm keeps its.
    pub fn expire(&mut self, cutoff: u32) {
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

    /// Writes the dirty session chunks, noting when (the throttle's window).
    pub fn write(&mut self, now: u32, writes: &mut Vec<StoreWrite>) {
        if self.persist(writes) {
            self.written_at = Some(now);
        }
    }

    /// Writes the dirty session chunks, as memory has them now; false when
    /// none was dirty.
    fn persist(&mut self, writes: &mut Vec<StoreWrite>) -> bool {
        let ids = self.sessions.len().max(self.marks.len());
        let Some(plan) = self.chunks.take_plan(ids) else { return false };
        let mut groups: Vec<Vec<ChunkRecord>> = vec![Vec::new(); plan.chunks as usize];
        for (id, s) in &self.sessions {
            let chunk = sessions::chunk_of(id, plan.chunks);
            if plan.dirty.contains(chunk) {
                groups[chunk as usize].push(ChunkRecord { id: *id, session: Some(*s), mark: self.marks.get(id).copied(), legacy: false });
            }
        }
        for (id, m) in &self.marks {
            let chunk = sessions::chunk_of(id, plan.chunks);
            if plan.dirty.contains(chunk) && !self.sessions.contains_key(id) {
                groups[chunk as usize].push(ChunkRecord { id: *id, session: None, mark: Some(*m), legacy: false });
            }
        }
        for chunk in plan.dirty.iter() {
            let records = std::mem::take(&mut groups[chunk as usize]);
            writes.push(StoreWrite::SessionChunk { chunks: plan.chunks, chunk, rows: sessions::encode_chunk(plan.chunks, records) });
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

    /// Restores the ledger from the `ledger` rows. Reloaded sessions count
    /// as heard at `now`: one that never comes back is forgotten a timeout
    /// later.
    pub fn load<'a>(&mut self, rows: impl IntoIterator<Item = &'a [u8]>, now: u32) {
        let mut chunks = None;
        for (n, records) in rows.into_iter().filter_map(sessions::decode_row) {
            chunks = Some(chunks.map_or(n, |c: u32| c.max(n)));
            for r in records {
                self.load_record(r);
            }
        }
        if let Some(n) = chunks {
            self.chunks.loaded(n);
        }
        self.loaded(now);
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

    /// Restores the ledger from an older version's tables (a row per
    /// session and one marks row, keyed by peer id); the next write moves
    /// it to chunks, keyed by user and peer id.
    pub fn load_legacy(&mut self, sessions: impl IntoIterator<Item = (PeerId, SessionRecord)>, marks: &[u8], now: u32) {
        let marks = decode_marks(marks);
        for (id, s) in sessions {
            let mark = marks.get(&id).copied();
            self.load_record(ChunkRecord { id: PeerKey(id.0), session: Some(s), mark, legacy: true });
        }
        self.chunks.loaded_legacy();
        self.loaded(now);
    }

    fn loaded(&mut self, now: u32) {
        self.unflushed = self.sessions.iter().any(|(id, s)| !self.fully_flushed(id, s));
        self.sessions.values_mut().for_each(|s| s.heard = s.heard.max(now));
    }

    pub fn session_at(&self, key: &PeerKey) -> Option<SessionRecord> {
        self.sessions.get(key).copied()
    }

    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    /// Credit earned (or flags raised) not yet in a credit batch.
    pub fn unbatched(&self) -> bool {
        self.unflushed || !self.pending_flags.is_empty()
    }

    /// When the credit gathered since the last batch is due at D1.
    pub fn credit_due_at(&self) -> Option<u32> {
        self.credit_due_at
    }

    /// When dirty session chunks are due to be written, if any are.
    pub fn write_due(&self, now: u32, config: &TrackerConfig) -> Option<u32> {
        // Within the ~10 s an idle object keeps its memory.
        self.chunks.is_dirty().then(|| self.written_at.map_or(now, |w| w.saturating_add(config.flush_delay)).max(now))
    }

    /// When the oldest session was last heard from.
    pub fn oldest_heard(&self) -> Option<u32> {
        self.sessions.values().map(|s| s.heard).min()
    }

    /// Takes every session's unflushed credit as one batch per user, and
    /// the chunk writes that record it as taken (the new marks).
    pub fn take_credit_batch(&mut self, now: u32) -> Option<(CreditBatch, Vec<StoreWrite>)> {
        let top = self.sessions.values().max_by_key(|s| s.credited.uploaded).map(|s| s.session.user);
        if let Some(f) = self.balance.check(top, now) {
            if self.pending_flags.len() < flags::MAX_PENDING {
                self.pending_flags.push(f);
            }
        }
        let flags = std::mem::take(&mut self.pending_flags);
        let per_user = self.unbatched_per_user();
        self.unflushed = false;
        self.credit_due_at = None;
        if per_user.is_empty() {
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
        let mut writes = Vec::new();
        self.persist(&mut writes);
        let credits = per_user.into_iter().map(|(u, (up, down))| [u, up, down]).collect();
        Some((CreditBatch { credits, flags }, writes))
    }

    /// Each user's credit beyond the marks: (uploaded, downloaded).
    fn unbatched_per_user(&self) -> BTreeMap<u64, (u64, u64)> {
        let mut per_user: BTreeMap<u64, (u64, u64)> = BTreeMap::new();
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
        per_user
    }

    /// Storage was freed: the marks went with it.
    pub fn storage_freed(&mut self) {
        self.marks.clear();
        self.chunks.forget();
    }
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

#[cfg(test)]
mod tests;
