//! The synchronous driver of admission (`crate::admission`) for the JS
//! entry's hot paths (`entry.mjs`): a public-mode `GET /announce` or
//! `GET /scrape`, decided without an await, so worker-rs's request
//! wrappers (which read `request.cf` and queue futures) are skipped. The
//! entry asks the rate limiter first and passes its verdict; what admission
//! then asks for that this driver cannot do synchronously (an account)
//! goes to the full path in `router.rs`; the scrape cache's read-through
//! is the entry's (`Plan::ScrapeThrough`).

use worker::wasm_bindgen::prelude::*;
use worker::{Context, Env};

use super::{config_from, full_scrape, log, private, push_hex, push_swarm_url, raw_path, raw_query, router, stats, KV_BINDING};
use crate::admission::{self, Known, Step, Tally, RATE_LIMIT_WAIT};
use crate::config::{TrackerConfig, TrackerMode};
use crate::peer::{parse_ip, FALLBACK_IP};
use crate::response;
use crate::scrape;
use crate::stats::Failure;
use crate::swarm::{shard, SwarmCounters};

/// What the entry does with a request, the first byte of a plan
/// (`Front.announce`, `Front.scrape`); the rest of the plan is its payload.
/// The entry reads the names from `Front.plans()`.
#[derive(Clone, Copy)]
#[repr(u8)]
pub enum Plan {
    /// Take the full path (nothing was counted).
    FullPath = 0,
    /// Read the client ban list from KV, pass it to `clientBans`, and ask
    /// again (nothing was counted).
    ClientBans = 1,
    /// Answer now with the payload: a bencoded body.
    Answer = 2,
    /// Forward: the payload is the info hash (40 hex digits), then the
    /// swarm URL (this plan, and `Shared`, come as a string).
    Forward = 3,
    /// Read the KV keys in the payload (a line each), then `scrapeAnswer`.
    ScrapeKeys = 4,
    /// A full scrape: answer with `fullScrape`.
    FullScrape = 5,
    /// As `ScrapeKeys`, but a key KV does not have is read through its
    /// swarm (`SCRAPE_CACHE`): each line is the key, a space and the object
    /// to ask (`SWARM_COUNTERS_URL` and the hash): the hash in hex (the
    /// torrent's own object), or its shard's name, `:` and the hash
    /// (`SWARM_SHARDS`; a shared swarm's counters are never in KV).
    ScrapeThrough = 6,
    /// As `Forward`, to the torrent's shard (`SWARM_SHARDS`): the info
    /// hash, the shard's object name (`shard-` and 4 hex digits), the URL.
    /// An answer with `x-moved` says the torrent lives in its own object.
    Shared = 7,
}

const PLANS: [Plan; 8] = [
    Plan::FullPath,
    Plan::ClientBans,
    Plan::Answer,
    Plan::Forward,
    Plan::ScrapeKeys,
    Plan::FullScrape,
    Plan::ScrapeThrough,
    Plan::Shared,
];

impl Plan {
    fn name(self) -> &'static str {
        match self {
            Plan::FullPath => "FullPath",
            Plan::ClientBans => "ClientBans",
            Plan::Answer => "Answer",
            Plan::Forward => "Forward",
            Plan::ScrapeKeys => "ScrapeKeys",
            Plan::FullScrape => "FullScrape",
            Plan::ScrapeThrough => "ScrapeThrough",
            Plan::Shared => "Shared",
        }
    }
}

#[wasm_bindgen(wasm_bindgen = ::worker::wasm_bindgen)]
pub struct Front;

#[wasm_bindgen(wasm_bindgen = ::worker::wasm_bindgen, wasm_bindgen_futures = ::worker::wasm_bindgen_futures)]
impl Front {
    /// The plan for a GET announce without an `Upgrade` header, whose
    /// address the rate limiter found `over_limit` (or did not). A forward
    /// (`Forward`, `Shared`) is a string, the rest bytes (a `Uint8Array`):
    /// the hot path allocates no buffer and decodes none.
    pub fn announce(env: Env, url: &str, ip: &str, over_limit: bool) -> JsValue {
        let bytes = |plan: Vec<u8>| JsValue::from(js_sys::Uint8Array::from(&plan[..]));
        let Some((config, known)) = public(&env, over_limit) else { return bytes(plan(Plan::FullPath)) };
        match admission::admit(&request(url, ip), Ok(&config), &known) {
            Step::Answer { status: 200, body, tally } => bytes(answer(tally, &body)),
            Step::NeedClientBans => bytes(plan(Plan::ClientBans)),
            Step::Forward { msg, tally } => {
                stats::apply(tally);
                let mut out = String::with_capacity(1 + 40 + 10 + super::SWARM_ANNOUNCE_URL.len() + 2 * crate::wire::ENCODED_LEN);
                let shards = config.shards();
                out.push(char::from(if shards > 0 { Plan::Shared } else { Plan::Forward } as u8));
                push_hex::<20>(&mut out, &msg.info_hash.0);
                if shards > 0 {
                    out.push_str(&shard::shard_name(shard::shard_of(&msg.info_hash, shards)));
                }
                push_swarm_url(&mut out, &msg);
                JsValue::from_str(&out)
            }
            _ => bytes(plan(Plan::FullPath)),
        }
    }

    /// The plan for a GET scrape, as for `announce`.
    pub fn scrape(env: Env, url: &str, ip: &str, over_limit: bool) -> Vec<u8> {
        let Some((config, known)) = public(&env, over_limit) else { return plan(Plan::FullPath) };
        match admission::admit(&request(url, ip), Ok(&config), &known) {
            Step::Answer { status: 200, body, tally } => answer(tally, &body),
            Step::Scrape { hashes, tally } => {
                stats::apply(tally);
                if hashes.is_empty() {
                    return plan(Plan::FullScrape);
                }
                // A read-through cache asks the swarm of a key KV lacks.
                let through = config.scrape_reads_through();
                let shards = config.shards();
                let line = |h: &crate::peer::InfoHash| match (through, shards) {
                    (false, _) => scrape::scrape_key(h, false),
                    (true, 0) => format!("{} {}", scrape::scrape_key(h, true), h.to_hex()),
                    (true, n) => format!("{} {}:{}", scrape::scrape_key(h, true), shard::shard_name(shard::shard_of(h, n)), h.to_hex()),
                };
                let lines: Vec<String> = hashes.iter().map(line).collect();
                let mut out = plan(if through { Plan::ScrapeThrough } else { Plan::ScrapeKeys });
                out.extend_from_slice(lines.join("\n").as_bytes());
                out
            }
            _ => plan(Plan::FullPath),
        }
    }

    /// The plan kinds by name (`{ FullPath: 0, ... }`), for the entry.
    pub fn plans() -> js_sys::Object {
        let plans = js_sys::Object::new();
        for plan in PLANS {
            let _ = js_sys::Reflect::set(&plans, &plan.name().into(), &(plan as u8).into());
        }
        plans
    }

    /// The scrape answer from the counters read for `keys` (as `scrape`
    /// gave them), a line each in the same order; an empty line: none.
    #[wasm_bindgen(js_name = scrapeAnswer)]
    pub fn scrape_answer(keys: &str, values: &str) -> Vec<u8> {
        let entries: Vec<_> = keys
            .split('\n')
            .zip(values.split('\n').chain(std::iter::repeat("")))
            .filter_map(|(key, value)| Some((scrape::hash_of_key(key)?, SwarmCounters::from_kv(value).unwrap_or_default())))
            .collect();
        response::scrape(&entries)
    }

    /// The answer to a full scrape (one KV list call).
    #[wasm_bindgen(js_name = fullScrape)]
    pub async fn full_scrape(env: Env) -> Vec<u8> {
        let entries = match env.kv(KV_BINDING) {
            Ok(kv) => full_scrape(&kv).await.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        match entries {
            Ok(entries) => response::scrape(&entries),
            Err(e) => Front::scrape_unavailable(&e),
        }
    }

    /// The answer when KV could not be read for a scrape.
    #[wasm_bindgen(js_name = scrapeUnavailable)]
    pub fn scrape_unavailable(error: &str) -> Vec<u8> {
        log::error("scrape_unavailable", serde_json::json!({ "error": error }));
        stats::apply(Tally::failure(Failure::ScrapeUnavailable));
        crate::unavailable::answer(Failure::ScrapeUnavailable)
    }

    /// Whether this isolate's public announces may take this path: the
    /// configuration is valid and the tracker is public.
    #[wasm_bindgen(js_name = enabled)]
    pub fn enabled(env: Env) -> bool {
        matches!(config_from(&env), Ok(c) if c.mode == TrackerMode::Public)
    }

    /// The most announces the entry sends one object in one call
    /// (`SWARM_BATCH`), read with `enabled`, whose config is valid.
    #[wasm_bindgen(js_name = swarmBatch)]
    pub fn swarm_batch(env: Env) -> u32 {
        config_from(&env).map_or(1, |c| c.swarm_batch)
    }

    /// The key the rate limiter counts this address under (the full path's key).
    #[wasm_bindgen(js_name = limiterKey)]
    pub fn limiter_key(ip: &str) -> String {
        parse_ip(ip).unwrap_or(FALLBACK_IP).to_string()
    }

    /// A limiter that fails lets the request through: availability first.
    #[wasm_bindgen(js_name = limiterFailed)]
    pub fn limiter_failed(error: &str) {
        log::warn("rate_limiter_failed", serde_json::json!({ "binding": router::ANNOUNCE_LIMITER, "error": error }));
    }

    /// The client ban list as read from KV (its JSON text, or empty when
    /// the key is absent), after `announce` answered `Plan.ClientBans`.
    #[wasm_bindgen(js_name = clientBans)]
    pub fn client_bans(json: &str) {
        private::remember_client_bans(json);
    }

    /// The isolate's wasm linear memory in bytes (it only grows): the
    /// swarms' memory for the big-swarm bench (`EXPOSE_COSTS`).
    #[wasm_bindgen(js_name = wasmMemory)]
    pub fn wasm_memory() -> usize {
        core::arch::wasm32::memory_size(0) * 65_536
    }

    /// KV reads this isolate made since the last report (`EXPOSE_COSTS`).
    #[wasm_bindgen(js_name = kvReads)]
    pub fn kv_reads() -> usize {
        private::take_kv_reads()
    }

    /// After each answer on this path: counts the swarm's failure reason
    /// (`x-failure`, or empty), and sends the isolate's counts to the
    /// stats object when a flush is due.
    pub fn after(env: Env, ctx: worker::worker_sys::Context, failure: &str) {
        if !failure.is_empty() {
            stats::apply(Tally::failure(Failure::from_label(failure).unwrap_or(Failure::Other)));
        }
        if let Ok(config) = config_from(&env) {
            stats::after_request(&env, &Context::new(ctx), &config);
        }
    }

    /// The answer when the swarm's object failed (threw: overloaded,
    /// reset, a deploy, a limit; or answered with an error status): a
    /// failure reason with `retry in`, counted. `overloaded` is the error's
    /// own flag.
    #[wasm_bindgen(js_name = swarmUnavailable)]
    pub fn swarm_unavailable(info_hash: &str, error: &str, overloaded: bool) -> Vec<u8> {
        super::swarm_fault_answer(info_hash, error, overloaded)
    }
}

/// The configuration, when this path serves it (public mode), and what
/// the entry already knows: the limiter's verdict and the cached ban list.
fn public(env: &Env, over_limit: bool) -> Option<(TrackerConfig, Known)> {
    let config = config_from(env).ok().filter(|c| c.mode == TrackerMode::Public)?;
    let limit = Some(over_limit.then_some(RATE_LIMIT_WAIT));
    Some((config, Known { limit, ..Known::new(private::client_banned_cached) }))
}

/// A GET from `ip` for the raw `url`, as admission reads it.
fn request<'a>(url: &'a str, ip: &str) -> admission::Request<'a> {
    admission::Request {
        path: raw_path(url),
        query: raw_query(url),
        method: "GET",
        websocket: false,
        remote: parse_ip(ip).unwrap_or(FALLBACK_IP),
    }
}

fn plan(plan: Plan) -> Vec<u8> {
    vec![plan as u8]
}

/// An answer now, counted.
fn answer(tally: Tally, body: &[u8]) -> Vec<u8> {
    stats::apply(tally);
    let mut out = Vec::with_capacity(1 + body.len());
    out.push(Plan::Answer as u8);
    out.extend_from_slice(body);
    out
}
