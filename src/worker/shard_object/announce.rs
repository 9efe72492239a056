//! The shard's announce, for the JS entry (`entry.mjs`, class
//! `ShardObject`): `announceNow` when the shard is loaded and knows the
//! torrent (no await), `announceLoading` otherwise (it asks the torrent's
//! own object first). A torrent that lives in its own object comes back as
//! `moved`: the entry forwards the announce there and tells the Worker.

use worker::wasm_bindgen::prelude::*;

use super::super::announced::{self, decode_message, Announced};
use super::{now_secs, RowCost, ShardObject};
use crate::peer::InfoHash;
use crate::swarm::shard::Routed;
use crate::wire::SwarmAnnounce;

#[wasm_bindgen(wasm_bindgen = ::worker::wasm_bindgen, wasm_bindgen_futures = ::worker::wasm_bindgen_futures)]
impl ShardObject {
    /// The announce in `url`, when the shard is loaded, knows its alarm
    /// and knows the torrent: the body alone (a `Uint8Array`) when
    /// nothing goes with it, else a [`Announced`]; `undefined` when
    /// `announceLoading` must take it.
    #[wasm_bindgen(js_name = announceNow)]
    pub fn announce_now(&self, url: &str) -> std::result::Result<JsValue, JsValue> {
        let ready = self.inner.borrow().ready();
        announced::announce_now(url, ready, |msg| self.announce(msg, now_secs(), RowCost::default()))
    }

    /// The same announce when the shard must load, or ask the torrent's
    /// own object whether it holds the torrent, first.
    #[wasm_bindgen(js_name = announceLoading)]
    pub async fn announce_loading(&self, url: String) -> std::result::Result<Announced, JsValue> {
        let Some(msg) = decode_message(&url) else { return Ok(Announced::malformed()) };
        let mut cost = self.ensure_ready(now_secs()).await?;
        self.settle(msg.info_hash, &mut cost).await?;
        let outcome = self.announce(&msg, now_secs(), cost)?;
        // Settled above: the shard hosts the torrent or knows it moved.
        Ok(outcome.unwrap_or_else(|| Announced { moved: Some(msg.info_hash.to_hex()), ..Announced::default() }))
    }

    /// Moves a swarm that grew to `SHARD_PROMOTE` peers to its own object
    /// (`Announced.promote`), beside the announce's answer.
    pub async fn promote(&self, hex: String) -> std::result::Result<(), JsValue> {
        let Some(hash) = InfoHash::from_hex(&hex) else { return Ok(()) };
        let mut cost = RowCost::default();
        self.move_out(hash, &mut cost).await?;
        self.count(cost);
        Ok(())
    }
}

impl ShardObject {
    /// The announce once loaded: `None` for a torrent not settled yet.
    fn announce(&self, msg: &SwarmAnnounce, now: u32, mut cost: RowCost) -> worker::Result<Option<Announced>> {
        let (routed, promote, writes) = {
            let mut inner = self.inner.borrow_mut();
            let routed = inner.shard.announce(msg, now, &self.config);
            let promote = inner.shard.promote_due(&msg.info_hash, &self.config).then(|| msg.info_hash.to_hex());
            // Written behind: whatever is due now (no await: SQLite).
            (routed, promote, inner.shard.flush(now, &self.config, false))
        };
        self.run(writes, &mut cost)?;
        cost.requests += 1;
        let (body, failure, moved) = match routed {
            Routed::Unknown => return Ok(None),
            Routed::Moved => (Vec::new(), None, Some(msg.info_hash.to_hex())),
            Routed::Here { body, failure } => (body, failure, None),
        };
        let alarm = super::super::alarm::start_counted(&self.state, self.alarm_to_set(now), &mut cost.written)?;
        let totals = self.count(cost);
        let costs = self.expose_costs.then_some((cost, totals));
        Ok(Some(Announced { body, failure, alarm, moved, promote, costs, publish: false }))
    }
}
