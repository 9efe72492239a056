//! An announce's outcome in a swarm object or a shard, for the JS entry
//! (`entry.mjs`) to answer with: the bencoded body, and what goes with it
//! (the failure, the alarm write to wait for, a publish or a move to run
//! beside the answer, a forward, the cost). One type for both objects;
//! most announces need none of it and are answered with the body alone.

use worker::wasm_bindgen::prelude::*;

use super::swarm_object::cost::RowCost;
use super::{FAILURE_HEADER, ROWS_READ_HEADER, ROWS_WRITTEN_HEADER, SWARM_ANNOUNCE_URL, USAGE_HEADER};
use crate::response;
use crate::stats::Failure;
use crate::wire::SwarmAnnounce;

#[wasm_bindgen(wasm_bindgen = ::worker::wasm_bindgen)]
#[derive(Default)]
pub struct Announced {
    /// The bencoded answer.
    pub(super) body: Vec<u8>,
    /// The refusal's reason, if the answer is one (the Worker counts it).
    pub(super) failure: Option<Failure>,
    /// The alarm write this announce started: the answer waits for it.
    pub(super) alarm: Option<js_sys::Promise>,
    /// A swarm's counters are due to be published: the entry runs
    /// `publishPending` without holding the answer for it.
    pub(super) publish: bool,
    /// A shard's torrent lives in its own object (hex info hash): the
    /// entry forwards the announce there.
    pub(super) moved: Option<String>,
    /// A shard's swarm grew to `SHARD_PROMOTE` (hex info hash): the entry
    /// runs `promote` beside the answer.
    pub(super) promote: Option<String>,
    /// What this announce cost and the object's totals, with `EXPOSE_COSTS`.
    pub(super) costs: Option<(RowCost, RowCost)>,
}

#[wasm_bindgen(wasm_bindgen = ::worker::wasm_bindgen)]
impl Announced {
    /// The alarm write to await before answering (the output gate holds
    /// the answer until it is stored), if this announce set the alarm.
    #[wasm_bindgen(getter)]
    pub fn alarm(&self) -> Option<js_sys::Promise> {
        self.alarm.clone()
    }

    #[wasm_bindgen(getter)]
    pub fn publish(&self) -> bool {
        self.publish
    }

    #[wasm_bindgen(getter)]
    pub fn moved(&self) -> Option<String> {
        self.moved.clone()
    }

    #[wasm_bindgen(getter)]
    pub fn promote(&self) -> Option<String> {
        self.promote.clone()
    }

    /// The answer's headers beyond a bencoded answer's own, as
    /// `[name, value]` pairs: the failure reason and (with `EXPOSE_COSTS`)
    /// the cost. `undefined` when there are none, as for most announces.
    pub fn headers(&self) -> Option<js_sys::Array> {
        if self.failure.is_none() && self.costs.is_none() {
            return None;
        }
        let pairs = js_sys::Array::new();
        let add = |name: &str, value: &str| {
            pairs.push(&js_sys::Array::of2(&JsValue::from_str(name), &JsValue::from_str(value)));
        };
        if let Some(f) = self.failure {
            add(FAILURE_HEADER, f.label());
        }
        if let Some((cost, totals)) = self.costs {
            add(ROWS_READ_HEADER, &cost.read.to_string());
            add(ROWS_WRITTEN_HEADER, &cost.written.to_string());
            add(&format!("{ROWS_READ_HEADER}-total"), &totals.read.to_string());
            add(&format!("{ROWS_WRITTEN_HEADER}-total"), &totals.written.to_string());
            add(USAGE_HEADER, &serde_json::to_string(&totals).unwrap_or_default());
        }
        Some(pairs)
    }

    /// The bencoded answer (frees this outcome).
    #[wasm_bindgen(js_name = intoBody)]
    pub fn into_body(self) -> Vec<u8> {
        self.body
    }
}

impl Announced {
    /// A swarm message that does not decode: answered, not counted.
    pub(super) fn malformed() -> Self {
        Announced { body: response::failure("malformed swarm request"), ..Announced::default() }
    }

    /// For `announceNow`: the body alone (a `Uint8Array`) when nothing goes
    /// with it, as for most announces (one call, no outcome object).
    pub(super) fn into_js(self) -> JsValue {
        match self {
            Announced { body, failure: None, alarm: None, publish: false, moved: None, promote: None, costs: None } => {
                js_sys::Uint8Array::from(&body[..]).into()
            }
            outcome => outcome.into(),
        }
    }
}

/// `announceNow`, one shape for both objects (no await: SQLite is
/// synchronous): a message that does not decode is answered; an object not
/// in memory yet, or a torrent it must ask about first, gives `undefined`
/// for `announceLoading`; else the answer, as [`Announced::into_js`].
pub(super) fn announce_now(
    url: &str,
    loaded: bool,
    announce: impl FnOnce(&SwarmAnnounce) -> worker::Result<Option<Announced>>,
) -> Result<JsValue, JsValue> {
    let Some(msg) = decode_message(url) else { return Ok(Announced::malformed().into()) };
    if !loaded {
        return Ok(JsValue::UNDEFINED);
    }
    Ok(announce(&msg).map_err(JsValue::from)?.map_or(JsValue::UNDEFINED, Announced::into_js))
}

/// The announce in an object's URL (`SWARM_ANNOUNCE_URL` and the message in hex).
pub(super) fn decode_message(url: &str) -> Option<SwarmAnnounce> {
    let hex = url.strip_prefix(SWARM_ANNOUNCE_URL)?;
    let mut raw = [0u8; crate::wire::ENCODED_LEN];
    hex::decode_to_slice(hex, &mut raw).ok()?;
    SwarmAnnounce::decode(&raw)
}
