//! The swarm's life between announces: what its alarm does and when it is
//! due (touch flushes, expiry, credit batches), publishing counters to KV
//! and the totals, scrape read-through, blocking, resuming after storage
//! was freed, and freeing it.

use crate::config::TrackerConfig;
use crate::peer::{InfoHash, PeerId, PeerKey};

use super::ledger::{CreditBatch, SessionRecord};
use super::storage::StoreWrite;
use super::{SwarmCounters, SwarmState};

/// Alarms for expiry are at least this many seconds apart, so a large swarm
/// whose peers expire one by one does not wake its object for each.
pub const EXPIRY_SWEEP_GAP: u32 = 60;

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
    /// good (`final:<hash>`) so its completed count outlives its storage
    /// (unless KV has that count there already: it resumed from it).
    pub final_counters: bool,
    /// The swarm is empty and its final counters are in KV: free storage.
    pub free_storage: bool,
}

impl SwarmState {
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
        self.final_known = (!legacy).then_some(published.downloaded);
        self.published = Some(published);
        self.published_at = now;
        if !legacy {
            return None;
        }
        // KV follows changes until an expiring entry has replaced it.
        self.kv_has = None;
        self.scrape_wanted_until = now.saturating_add(config.publish_window).saturating_add(config.scrape_cache.max(60));
        self.kv_until = self.scrape_wanted_until;
        Some(StoreWrite::ScrapeWanted(self.scrape_wanted_until))
    }

    /// The swarm has a history (its hash, or final counters it resumed
    /// from): a scrape may cache its counters. A never-seen hash has none.
    pub fn known(&self) -> bool {
        (self.info_hash.is_some() || self.published.is_some()) && !self.blocked
    }

    /// An operator blocks the torrent: every peer is dropped and later
    /// announces are refused. Accounting already earned still reaches D1.
    pub fn block(&mut self, now: u32) -> Vec<StoreWrite> {
        self.blocked = true;
        self.pending_touches.clear();
        let mut writes = self.expire(u32::MAX);
        writes.push(StoreWrite::Blocked(Some(now)));
        writes
    }

    pub fn unblock(&mut self) -> Vec<StoreWrite> {
        self.blocked = false;
        vec![StoreWrite::Blocked(None)]
    }

    /// The alarm's work at `now`: flush touches, expire silent peers and
    /// decide whether to publish counters or free storage.
    pub fn maintain(&mut self, now: u32, config: &TrackerConfig) -> Maintenance {
        let mut writes: Vec<StoreWrite> = self.flush_touches(now, config).into_iter().collect();
        let cutoff = now.saturating_sub(self.pace.peer_timeout(config));
        writes.extend(self.expire(cutoff));
        self.ledger.expire(cutoff);
        self.ledger.write(now, &mut writes);
        let counters = self.counters();
        let kv = self.kv_wanted(now, config);
        let publish = match self.info_hash {
            Some(hash) if self.may_publish(kv) && self.publish_due(now, config) <= now => Some((hash, counters)),
            _ => None,
        };
        let free_storage = publish.is_none() && self.can_free();
        let final_counters = self.is_empty() && self.final_known != Some(counters.downloaded);
        Maintenance { writes, publish, kv, final_counters, free_storage }
    }

    /// Whether KV's scrape cache should get this swarm's counters: for good
    /// (`Some(0)`: `SCRAPE_CACHE = 0`, or `FULL_SCRAPE`, which lists KV),
    /// until a followed cache entry lapses (`SCRAPE_FOLLOW`), or not: an
    /// entry a scrape wrote otherwise just expires.
    fn kv_wanted(&self, now: u32, config: &TrackerConfig) -> Option<u32> {
        if config.scrape_cache == 0 || config.full_scrape {
            Some(0)
        } else {
            (self.scrape_wanted_until > now).then_some(self.scrape_wanted_until)
        }
    }

    /// After an announce: the counters to publish at once, from the
    /// announce itself (they changed and the window is up), with the KV
    /// cache's wish as in [`Maintenance::kv`]; marked in flight until
    /// [`Self::published`] or [`Self::publish_failed`]. `None` when nothing
    /// is due, or the swarm is empty (its alarm publishes the final
    /// counters and frees storage).
    pub fn publish_now(&mut self, now: u32, config: &TrackerConfig) -> Option<(InfoHash, SwarmCounters, Option<u32>)> {
        let hash = self.info_hash?;
        let kv = self.kv_wanted(now, config);
        if self.is_empty() || !self.may_publish(kv) || self.publish_due(now, config) > now {
            return None;
        }
        self.publishing = true;
        Some((hash, self.counters(), kv))
    }

    /// A publish from an announce failed: the alarm retries it.
    pub fn publish_failed(&mut self) {
        self.publishing = false;
    }

    /// Something to publish, and no publish already in flight.
    fn may_publish(&self, kv: Option<u32>) -> bool {
        !self.blocked && !self.publishing && self.unpublished(kv)
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
            && self.ledger.is_empty()
            && !self.credits_pending()
            && self.published == Some(self.counters())
    }

    /// Private mode: restores the ledger from the `ledger` rows (see
    /// [`super::ledger::Ledger::load`]).
    pub fn load_ledger<'a>(&mut self, rows: impl IntoIterator<Item = &'a [u8]>, outbox_pending: bool, now: u32) {
        self.ledger.load(rows, now);
        self.outbox_pending |= outbox_pending;
    }

    /// Private mode: restores the ledger from an older version's tables.
    pub fn load_legacy_sessions(&mut self, sessions: impl IntoIterator<Item = (PeerId, SessionRecord)>, marks: &[u8], now: u32) {
        self.ledger.load_legacy(sessions, marks, now);
    }

    /// The session of `user`'s client `peer_id`.
    pub fn session(&self, user: u64, peer_id: &PeerId) -> Option<SessionRecord> {
        self.session_at(&PeerKey::session(user, peer_id))
    }

    pub fn session_at(&self, key: &PeerKey) -> Option<SessionRecord> {
        self.ledger.session_at(key)
    }

    /// Credit earned (or flags raised) but not yet confirmed by D1.
    pub fn credits_pending(&self) -> bool {
        self.outbox_pending || self.ledger.unbatched()
    }

    /// Whether the alarm at `now` should send credit to D1: some is
    /// pending and its `CREDIT_FLUSH` is up (or unknown, after a reload).
    pub fn credit_flush_due(&self, now: u32) -> bool {
        self.credits_pending() && self.ledger.credit_due_at().is_none_or(|due| now >= due)
    }

    /// Takes every session's unflushed credit as one batch per user, and the
    /// chunk writes that record it as taken (the new marks). The caller
    /// stores both in one step (outbox row + chunks), then sends the batch
    /// to D1.
    pub fn take_credit_batch(&mut self, now: u32) -> Option<(CreditBatch, Vec<StoreWrite>)> {
        let taken = self.ledger.take_credit_batch(now)?;
        if !taken.0.credits.is_empty() {
            self.outbox_pending = true;
        }
        Some(taken)
    }

    /// A scrape found no counters in KV: the counters to cache there, until
    /// when, and with `SCRAPE_FOLLOW` the write that keeps KV following
    /// changes until then (it must outlive an eviction); without it the
    /// entry just expires. `None` for the cache write when KV already has
    /// these counters for a while yet (another scrape's read-through got
    /// there first: KV takes one write per key per second, and the cache
    /// needs only one).
    pub fn scraped(&mut self, now: u32, config: &TrackerConfig) -> (SwarmCounters, Option<(u32, Option<StoreWrite>)>) {
        let counters = self.counters();
        let ttl = config.scrape_cache.max(60);
        if self.kv_has == Some(counters) && self.kv_until > now.saturating_add(ttl / 2) {
            return (counters, None);
        }
        self.kv_until = now.saturating_add(ttl);
        self.kv_has = Some(counters);
        let follow = config.scrape_follow.then(|| {
            self.scrape_wanted_until = self.kv_until;
            StoreWrite::ScrapeWanted(self.kv_until)
        });
        (counters, Some((self.kv_until, follow)))
    }

    /// Restores `scrape_cache` as storage had it.
    pub fn load_scrape_wanted(&mut self, until: u32) {
        self.scrape_wanted_until = until;
        self.kv_until = until;
    }

    /// Records a successful publish; returns the `swarm` row to write.
    pub fn published(&mut self, counters: SwarmCounters, now: u32, to_kv: bool) -> Option<StoreWrite> {
        self.publishing = false;
        self.published = Some(counters);
        if to_kv {
            self.kv_has = Some(counters);
        }
        self.published_at = now;
        if self.is_empty() {
            // Storage is about to be freed; KV holds the numbers now.
            self.final_known = Some(counters.downloaded);
            return None;
        }
        self.row_stored = true;
        Some(StoreWrite::SwarmRow(self.row()))
    }

    /// Forgets everything after the DO freed its storage.
    pub fn freed(&mut self) {
        self.row_stored = false;
        self.info_hash = None;
        self.ledger.storage_freed();
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
            at(self.ledger.credit_due_at().unwrap_or(now + config.credit_flush).max(now));
        }
        if let Some(due) = self.ledger.write_due(now, config) {
            at(due);
        }
        if !self.ledger.is_empty() && self.is_empty() {
            // Baselines of departed peers are kept until their timeout.
            let oldest = self.ledger.oldest_heard().unwrap_or(now);
            at((oldest + timeout + 1).max(now + EXPIRY_SWEEP_GAP.min(timeout)));
        }
        if self.info_hash.is_some() && self.may_publish(self.kv_wanted(now, config)) {
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
}
