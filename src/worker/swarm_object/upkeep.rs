//! The alarm side: the alarm handler (expiry, batched writes, the credit
//! flush, publishing counters), when the alarm is set, and freeing the
//! storage of an emptied swarm. The alarm is set one way, `start_alarm`.
//! The publish an announce starts (`publish_from_announce`) shares the
//! alarm's publish code, and falls back to the alarm when it fails.

use serde_json::json;
use worker::*;

use super::super::{alarm, log, private, KV_BINDING};
use super::{now_secs, RowCost, SwarmObject};
use crate::peer::InfoHash;
use crate::scrape::counters_key;
use crate::swarm::SwarmCounters;

/// If a KV publish fails, try again this much later (seconds).
const PUBLISH_RETRY: u32 = 10;

impl SwarmObject {
    pub(super) async fn run_alarm(&self) -> Result<Response> {
        let started = js_sys::Date::now();
        let now = now_secs();
        self.inner.borrow_mut().alarm.clear();
        let mut cost = self.ensure_loaded(now, None).await?;
        cost.alarms += 1;
        let maintenance = {
            let mut inner = self.inner.borrow_mut();
            let m = inner.swarm.maintain(now, &self.config);
            cost.add(self.apply(&mut inner, m.writes.clone())?);
            m
        };
        let mut retry = false;
        if self.inner.borrow().swarm.credit_flush_due(now) {
            match self.flush_credits(&mut cost).await {
                Ok(()) => {}
                Err(e) => {
                    log::error("credit_flush_failed", json!({ "error": e.to_string(), "retry_in": PUBLISH_RETRY }));
                    retry = true;
                }
            }
        }
        let mut free = maintenance.free_storage && self.inner.borrow().swarm.can_free();
        if let Some((hash, counters)) = maintenance.publish {
            // An emptied swarm also leaves its final counters (`final:` key).
            let last = maintenance.final_counters;
            if self.publish_recorded(hash, counters, maintenance.kv, last, now, &mut cost).await? {
                // Checked after the await: a peer may have joined meanwhile.
                free = self.inner.borrow().swarm.can_free();
            } else {
                retry = true;
            }
        }
        if free {
            self.free_storage().await?;
        } else if retry {
            cost.written += self.set_alarm_at(now + PUBLISH_RETRY).await?;
        } else {
            cost.written += self.schedule_alarm(now).await?;
        }
        cost.alarm_ms += js_sys::Date::now() - started;
        self.count(cost);
        Response::ok("")
    }

    /// Publishes counters (see `publish`) and records that in the swarm;
    /// `false` if it failed (logged; the caller sets the retry alarm).
    async fn publish_recorded(
        &self,
        hash: InfoHash,
        counters: SwarmCounters,
        kv: Option<u32>,
        last: bool,
        now: u32,
        cost: &mut RowCost,
    ) -> Result<bool> {
        cost.kv_writes += kv.is_some() as usize + last as usize;
        cost.stats_reports += 1;
        if let Err(e) = self.publish(&hash, counters, kv, last).await {
            log::warn("publish_failed", json!({ "info_hash": hash.to_hex(), "error": e.to_string(), "retry_in": PUBLISH_RETRY }));
            self.inner.borrow_mut().swarm.publish_failed();
            return Ok(false);
        }
        let mut inner = self.inner.borrow_mut();
        if let Some(w) = inner.swarm.published(counters, now, kv.is_some()) {
            cost.add(self.apply(&mut inner, vec![w])?);
        }
        Ok(true)
    }

    /// The publish an announce started (`publishPending`), after its
    /// answer: on failure the alarm retries in `PUBLISH_RETRY` seconds;
    /// changes made meanwhile wait for the window's end, by the alarm.
    /// Its time is counted with the alarms' (`alarm_ms`).
    pub(super) async fn publish_from_announce(&self, hash: InfoHash, counters: SwarmCounters, kv: Option<u32>) -> Result<()> {
        let started = js_sys::Date::now();
        let now = now_secs();
        let mut cost = RowCost::default();
        cost.written += if self.publish_recorded(hash, counters, kv, false, now, &mut cost).await? {
            self.schedule_alarm(now).await?
        } else {
            self.set_alarm_at(now + PUBLISH_RETRY).await?
        };
        cost.alarm_ms += js_sys::Date::now() - started;
        self.count(cost);
        Ok(())
    }

    /// Moves the alarm earlier if the swarm needs it sooner; returns rows
    /// written (setting an alarm is billed as one).
    pub(super) async fn schedule_alarm(&self, now: u32) -> Result<usize> {
        let next = self.inner.borrow().swarm.next_alarm(now, &self.config);
        match next {
            Some(at) => self.set_alarm_at(at).await,
            None => Ok(0),
        }
    }

    /// The alarm time (ms) to set if the swarm needs its alarm earlier
    /// than the one scheduled; recorded as scheduled.
    pub(super) fn alarm_to_set(&self, now: u32) -> Option<u64> {
        let at = self.inner.borrow().swarm.next_alarm(now, &self.config)?;
        self.inner.borrow_mut().alarm.earlier(at)
    }

    async fn set_alarm_at(&self, at_secs: u32) -> Result<usize> {
        let Some(at_ms) = self.inner.borrow_mut().alarm.earlier(at_secs) else { return Ok(0) };
        alarm::set(&self.state, at_ms).await?;
        Ok(1)
    }

    /// Publishes counters to the totals behind `/stats` (idempotent:
    /// absolute counters) and, as [`crate::swarm::Maintenance::kv`] says, to KV.
    async fn publish(&self, hash: &InfoHash, counters: SwarmCounters, kv_until: Option<u32>, last: bool) -> Result<()> {
        if let Some(until) = kv_until {
            self.cache_counters(hash, counters, until).await?;
        }
        if last {
            let kv = self.env.kv(KV_BINDING)?;
            kv.put(&crate::kv_keys::final_key(hash), counters.to_kv())?.execute().await?;
        }
        // Private mode: the site's lists sort by the copy in D1 (logged, not
        // fatal, if it fails: the next publish writes again).
        if self.config.mode == crate::config::TrackerMode::Private {
            private::mirror_counts(&self.env, hash, counters).await;
        }
        super::super::totals_shard::report(&self.env, hash, counters).await
    }

    /// Writes the counters scrape reads: for good (`until` 0, `scrape:`), or
    /// as the read-through cache's entry until then (`cached:`).
    pub(super) async fn cache_counters(&self, hash: &InfoHash, counters: SwarmCounters, until: u32) -> Result<()> {
        let kv = self.env.kv(KV_BINDING)?;
        let text = counters.to_kv();
        let put = kv.put(&crate::scrape::scrape_key(hash, until > 0), text.clone())?.metadata(text)?;
        // KV refuses an expiration under 60 s away when the put reaches it;
        // `now_secs` is up to 1 s behind the clock, so 2 s of margin.
        let put = if until > 0 { put.expiration(until.max(now_secs() + 62) as u64) } else { put };
        put.execute().await?;
        Ok(())
    }


    /// The final counters an emptied swarm left in KV (`final:`), or, from
    /// versions before it, in its scrape key (`true`: legacy).
    pub(super) async fn read_published(&self, hash: &InfoHash) -> Option<(SwarmCounters, bool)> {
        let kv = self.env.kv(KV_BINDING).ok()?;
        for (key, legacy) in [(crate::kv_keys::final_key(hash), false), (counters_key(hash), true)] {
            if let Some(text) = kv.get(&key).text().await.ok().flatten() {
                return SwarmCounters::from_kv(&text).map(|c| (c, legacy));
            }
        }
        None
    }

    async fn free_storage(&self) -> Result<()> {
        log::info("swarm_free", json!({ "info_hash": self.inner.borrow().swarm.info_hash.map(|h| h.to_hex()) }));
        {
            let mut inner = self.inner.borrow_mut();
            inner.swarm.freed();
            inner.schema_ready = false;
            inner.alarm.clear();
        }
        self.state.storage().delete_alarm().await?;
        self.state.storage().delete_all().await?;
        Ok(())
    }
}
