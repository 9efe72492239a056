//! The object's announce: one core for both ways in. The JS entry
//! (`entry.mjs`, class `SwarmObject`) calls `announceNow`, synchronous, when
//! the swarm is in memory (an announce then needs no I/O but SQLite, which
//! is synchronous: no worker-rs request wrappers, no future queue), and
//! `announceLoading` when it must be loaded first. Both return an
//! `Announced` (`announced.rs`): the body, the failure, the alarm write and
//! the cost, which the entry turns into the HTTP answer.

use worker::wasm_bindgen::prelude::*;
use worker::Result;

use super::super::announced::{self, decode_message, Announced};
use super::{now_secs, RowCost, SwarmObject};
use crate::response;
use crate::wire::SwarmAnnounce;

#[wasm_bindgen(wasm_bindgen = ::worker::wasm_bindgen, wasm_bindgen_futures = ::worker::wasm_bindgen_futures)]
impl SwarmObject {
    /// The announce in `url` (`SWARM_ANNOUNCE_URL` and the message), when
    /// the swarm is in memory: `undefined` when it must be loaded first
    /// (`announceLoading`); the bencoded answer alone (a `Uint8Array`) when
    /// it has no failure, alarm, publish or costs to go with it, as for most
    /// announces (one call, no outcome object); else an [`Announced`].
    /// No await: SQLite is synchronous.
    #[wasm_bindgen(js_name = announceNow)]
    pub fn announce_now(&self, url: &str) -> std::result::Result<JsValue, JsValue> {
        let loaded = self.inner.borrow().loaded;
        announced::announce_now(url, loaded, |msg| self.announce(msg, now_secs(), RowCost::default()).map(Some))
    }

    /// The same announce for a swarm not yet in memory (the first after a
    /// start or an eviction): loads it from storage, then announces.
    #[wasm_bindgen(js_name = announceLoading)]
    pub async fn announce_loading(&self, url: String) -> std::result::Result<Announced, JsValue> {
        let Some(msg) = decode_message(&url) else { return Ok(Announced::malformed()) };
        let now = now_secs();
        let cost = self.ensure_loaded(now, Some(msg.info_hash)).await?;
        self.announce(&msg, now, cost).map_err(JsValue::from)
    }

    /// Publishes the counters an announce left due (`Announced.publish`),
    /// alongside its answer: the alarm round trip saved. The output gate
    /// holds the publish until the announce's writes are stored; a failure
    /// sets the alarm to retry (`PUBLISH_RETRY`).
    #[wasm_bindgen(js_name = publishPending)]
    pub async fn publish_pending(&self) -> std::result::Result<(), JsValue> {
        let pending = self.inner.borrow_mut().pending.take();
        match pending {
            Some((hash, counters, kv)) => self.publish_from_announce(hash, counters, kv).await.map_err(JsValue::from),
            None => Ok(()),
        }
    }
}

impl SwarmObject {
    /// The announce core, once the swarm is in memory: update the swarm,
    /// make the change durable (SQLite, synchronous), start the alarm's
    /// write if the swarm needs it sooner, count the cost, encode the
    /// answer. `cost` is what loading cost, if this request loaded.
    fn announce(&self, msg: &SwarmAnnounce, now: u32, mut cost: RowCost) -> Result<Announced> {
        let (body, failure, publish) = {
            let mut inner = self.inner.borrow_mut();
            let (answer, writes) = inner.swarm.announce(msg, now, &self.config);
            // Encoded here, once: the answer borrows its peers from the swarm.
            let encoded = (response::encode_announce(&answer), answer.as_ref().err().copied());
            cost.add(self.apply(&mut inner, writes)?);
            // Kept until `publishPending` takes it (another announce in between finds one in flight).
            let publish = inner.swarm.publish_now(now, &self.config);
            let started = publish.is_some();
            if started {
                inner.pending = publish;
            }
            (encoded.0, encoded.1, started)
        };
        cost.requests += 1;
        let alarm = super::super::alarm::start_counted(&self.state, self.alarm_to_set(now), &mut cost.written)?;
        let totals = self.count(cost);
        let costs = self.expose_costs.then_some((cost, totals));
        Ok(Announced { body, failure, alarm, publish, costs, ..Announced::default() })
    }
}
