//! The Worker's hot paths for the JS entry (`entry.mjs`): a public-mode
//! `GET /announce` or `GET /scrape` decided without an await, so worker-rs's request
//! wrappers (which read `request.cf` and queue futures) are skipped. Every
//! other request, and any announce that would need I/O before it reaches
//! the swarm (an expired ban list, private mode), takes the full path in
//! `route`, which answers it the same way.

use worker::wasm_bindgen::prelude::*;
use worker::{Context, Env};

use super::{config_from, log, private, push_hex, push_swarm_url, raw_path, raw_query, stats, swarm_message, SWARM_ANNOUNCE_URL};
use crate::announce::AnnounceRequest;
use crate::config::TrackerMode;
use crate::peer::{parse_ip, FALLBACK_IP};
use crate::query::QueryPairs;
use crate::response;
use crate::scrape::{self, ScrapeRequest};
use crate::swarm::SwarmCounters;
use crate::stats::Failure;

#[wasm_bindgen(wasm_bindgen = ::worker::wasm_bindgen)]
pub struct Front;

#[wasm_bindgen(wasm_bindgen = ::worker::wasm_bindgen)]
impl Front {
    /// What to do with a GET request (no `Upgrade` header; the caller has
    /// applied the rate limit). One of:
    /// - `""`: take the full path;
    /// - `"B"`: read the client ban list from KV, pass it to `clientBans`,
    ///   and ask again (nothing was counted);
    /// - `"A"` + body: answer now with this bencoded body;
    /// - `"F"` + 40 hex digits (the info hash) + the swarm URL: forward.
    pub fn announce(env: Env, url: &str, ip: &str) -> String {
        let Ok(config) = config_from(&env) else { return String::new() };
        let path = raw_path(url);
        if config.mode != TrackerMode::Public || !matches!(path, "/announce" | "/announce.php") {
            return String::new();
        }
        let query = match tracker_query(Kind::Announce, url) {
            Ok(q) => q,
            Err(answer) => return answer,
        };
        let announce = match AnnounceRequest::parse(&query) {
            Ok(a) => a,
            Err(e) => return refused(Kind::Announce, Failure::InvalidAnnounce, &e.to_string()),
        };
        // The ban list is read from KV once a minute, by the caller.
        let Some(banned) = private::client_banned_cached(&announce.peer_id) else { return "B".into() };
        if banned {
            return refused(Kind::Announce, Failure::ClientBanned, Failure::ClientBanned.text());
        }
        stats::count_announce();
        let remote = parse_ip(ip).unwrap_or(FALLBACK_IP);
        let msg = swarm_message(&announce, remote, &config, None);
        let mut plan = String::with_capacity(1 + 40 + SWARM_ANNOUNCE_URL.len() + 2 * crate::wire::ENCODED_LEN);
        plan.push('F');
        push_hex::<20>(&mut plan, &announce.info_hash.0);
        push_swarm_url(&mut plan, &msg);
        plan
    }

    /// What to do with a GET scrape. One of `""` (take the full path: a
    /// full scrape), `"A"` + body (answer now), or `"K"` + the KV keys of
    /// the torrents' counters, a line each: read them, then `scrapeAnswer`.
    pub fn scrape(env: Env, url: &str) -> String {
        let Ok(config) = config_from(&env) else { return String::new() };
        // A read-through scrape cache (SCRAPE_CACHE > 0) asks swarms on a
        // miss: the full path's work.
        if config.mode != TrackerMode::Public || config.scrape_cache > 0 || !matches!(raw_path(url), "/scrape" | "/scrape.php") {
            return String::new();
        }
        let query = match tracker_query(Kind::Scrape, url) {
            Ok(q) => q,
            Err(answer) => return answer,
        };
        let request = match ScrapeRequest::parse(&query, config.scrape_max, config.full_scrape) {
            Ok(r) => r,
            Err(e) => return refused(Kind::Scrape, Failure::InvalidScrape, &e.to_string()),
        };
        if request.info_hashes.is_empty() {
            return String::new();
        }
        stats::count_scrape();
        let keys: Vec<String> = request.info_hashes.iter().map(scrape::counters_key).collect();
        format!("K{}", keys.join("\n"))
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

    /// The answer when KV could not be read for a scrape.
    #[wasm_bindgen(js_name = scrapeUnavailable)]
    pub fn scrape_unavailable(error: &str) -> Vec<u8> {
        log::error("scrape_unavailable", serde_json::json!({ "error": error }));
        stats::count_failure(Failure::ScrapeUnavailable);
        crate::unavailable::answer(Failure::ScrapeUnavailable)
    }

    /// Whether this isolate's public announces may take this path: the
    /// configuration is valid and the tracker is public.
    #[wasm_bindgen(js_name = enabled)]
    pub fn enabled(env: Env) -> bool {
        matches!(config_from(&env), Ok(c) if c.mode == TrackerMode::Public)
    }

    /// The key the rate limiter counts this address under (the full path's key).
    #[wasm_bindgen(js_name = limiterKey)]
    pub fn limiter_key(ip: &str) -> String {
        parse_ip(ip).unwrap_or(FALLBACK_IP).to_string()
    }

    /// The answer to an announce over the rate limit, counted as the route counts it.
    #[wasm_bindgen(js_name = rateLimited)]
    pub fn rate_limited(announce: bool) -> Vec<u8> {
        if announce {
            stats::count_announce();
        } else {
            stats::count_scrape();
        }
        stats::count_failure(Failure::RateLimited);
        response::failure_retry(Failure::RateLimited.text(), super::RATE_LIMIT_WAIT)
    }

    /// A limiter that fails lets the request through: availability first.
    #[wasm_bindgen(js_name = limiterFailed)]
    pub fn limiter_failed(error: &str) {
        log::warn("rate_limiter_failed", serde_json::json!({ "binding": super::ANNOUNCE_LIMITER, "error": error }));
    }

    /// The client ban list as read from KV (its JSON text, or empty when
    /// the key is absent), after `announce` answered `"B"`.
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
            stats::count_failure(Failure::from_label(failure).unwrap_or(Failure::Other));
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

#[derive(Clone, Copy)]
enum Kind {
    Announce,
    Scrape,
}

impl Kind {
    fn count(self) {
        match self {
            Kind::Announce => stats::count_announce(),
            Kind::Scrape => stats::count_scrape(),
        }
    }
}

/// The request's query, or the answer refusing it (the route's first two checks).
fn tracker_query(kind: Kind, url: &str) -> Result<QueryPairs, String> {
    let query = QueryPairs::parse(raw_query(url).as_bytes()).map_err(|e| refused(kind, Failure::InvalidQuery, &e.to_string()))?;
    if let Err(e) = query.only("passkey") {
        kind.count();
        return Err(answer(response::failure(&e.to_string())));
    }
    Ok(query)
}

/// A request refused before it reaches a swarm or KV, counted as the route counts it.
fn refused(kind: Kind, failure: Failure, reason: &str) -> String {
    kind.count();
    stats::count_failure(failure);
    log::debug("request_refused", serde_json::json!({ "reason": failure.label() }));
    answer(response::failure(reason))
}

fn answer(body: Vec<u8>) -> String {
    // Failure reasons are built from text; anything else takes the full path.
    match String::from_utf8(body) {
        Ok(text) => format!("A{text}"),
        Err(_) => String::new(),
    }
}
