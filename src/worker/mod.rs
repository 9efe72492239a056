//! The Worker: its fetch event (routed in `router.rs`, admitted by
//! `crate::admission`), shared constants and helpers. An announce is
//! forwarded to its swarm's Durable Object; scrape is served from KV and
//! never wakes a swarm.

mod alarm;
mod announced;
mod api;
mod d1;
mod dashboard;
mod fast;
mod ledger;
mod ledger_shard;
mod log;
mod private;
mod request_body;
mod router;
mod shard_object;
mod sessions;
mod stats;
mod stats_object;
mod socket_gateway;
mod swarm_object;
mod torrent_files;
mod totals_shard;

use std::net::IpAddr;

use worker::*;

use crate::admission::Tally;
use crate::config::TrackerConfig;
use crate::peer::{parse_ip, FALLBACK_IP};
use crate::scrape;
use crate::stats::Failure;
use crate::swarm::SwarmCounters;
use crate::unavailable;
use crate::wire::SwarmAnnounce;

pub const SWARMS_BINDING: &str = "SWARMS";
/// The shards small public swarms share (`SWARM_SHARDS`).
pub const SHARDS_BINDING: &str = "SHARDS";
pub const KV_BINDING: &str = "TRACKER_KV";
/// Headers a swarm reports its storage cost in; forwarded when `EXPOSE_COSTS` is set.
pub const ROWS_READ_HEADER: &str = "x-rows-read";
pub const ROWS_WRITTEN_HEADER: &str = "x-rows-written";
/// The swarm object's running totals (JSON), for the cost benchmark.
pub const USAGE_HEADER: &str = "x-swarm-usage";
/// KV reads the Worker made for this request.
pub const KV_READS_HEADER: &str = "x-kv-reads";
/// The swarm object's wall-clock time for this request as the Worker saw it (ms).
pub const DO_MS_HEADER: &str = "x-do-ms";
/// A swarm's failure answer names its reason here (a `Failure` label).
pub const FAILURE_HEADER: &str = "x-failure";
/// The status of an object's announce answer that carries notes for the
/// Worker in its headers (`x-failure`, `x-moved`, the costs); the Worker
/// answers the client with the body and 200. A plain answer is 200, and
/// the Worker passes it on without reading its headers (`NOTED` in
/// `entry.mjs`).
pub const NOTED_STATUS: u16 = 203;

#[event(fetch)]
async fn fetch(req: Request, env: Env, ctx: Context) -> Result<Response> {
    let unread = request_body::Unread::of(&req);
    let resp = router::route(req, &env).await;
    unread.drain().await;
    if let Ok(config) = config_from(&env) {
        stats::after_request(&env, &ctx, &config);
    }
    resp
}

/// A swarm stub that failed (or answered other than 200): logged, counted
/// as `swarm_overloaded` or `swarm_unavailable`, answered with `retry in`.
pub fn swarm_fault_answer(info_hash: &str, error: &str, overloaded: bool) -> Vec<u8> {
    let failure = unavailable::swarm_fault(error, overloaded);
    log::error(failure.label(), serde_json::json!({ "info_hash": info_hash, "error": error }));
    stats::apply(Tally::failure(failure));
    unavailable::answer(failure)
}

/// A fault of the tracker's own (KV, D1): counted, answered with `retry in`.
fn fail_retry(failure: Failure) -> Result<Response> {
    stats::apply(Tally::failure(failure));
    bencoded(unavailable::answer(failure))
}

/// The message rides in the URL (hex) of a bodiless GET: no body stream
/// to write or read on either side.
pub const SWARM_ANNOUNCE_URL: &str = "https://swarm/a?";

/// A scrape's read-through for counters KV does not have: `<this><hex>`.
pub const SWARM_COUNTERS_URL: &str = "https://swarm/counters/";

fn swarm_url(msg: &SwarmAnnounce) -> String {
    let mut url = String::with_capacity(SWARM_ANNOUNCE_URL.len() + 2 * crate::wire::ENCODED_LEN);
    push_swarm_url(&mut url, msg);
    url
}

/// Appends the swarm URL for `msg` to `out`. (Hex written into reserved
/// room: `hex::encode` collects chars into a growing string, which showed
/// in the hot path's profile.)
fn push_swarm_url(out: &mut String, msg: &SwarmAnnounce) {
    out.push_str(SWARM_ANNOUNCE_URL);
    push_hex::<{ crate::wire::ENCODED_LEN }>(out, &msg.encode());
}

/// Appends `bytes` (at most `N`) as lower-case hex, through a stack buffer.
fn push_hex<const N: usize>(out: &mut String, bytes: &[u8]) {
    let mut buf = [[0u8; 2]; N];
    let hex = buf.as_flattened_mut().get_mut(..bytes.len() * 2).unwrap_or_default();
    if hex::encode_to_slice(bytes, hex).is_ok() {
        out.push_str(std::str::from_utf8(hex).unwrap_or_default());
    }
}

/// The object that answers a torrent's announces and scrape misses: its
/// shard when small swarms share objects (`SWARM_SHARDS`; the shard
/// forwards a torrent that moved out), else the torrent's own.
pub fn swarm_stub(env: &Env, config: &TrackerConfig, hash: &crate::peer::InfoHash) -> Result<Stub> {
    match config.shards() {
        0 => own_object(env, hash),
        n => {
            let name = crate::swarm::shard::shard_name(crate::swarm::shard::shard_of(hash, n));
            env.durable_object(SHARDS_BINDING)?.id_from_name(&name)?.get_stub()
        }
    }
}

/// The torrent's own object, for what only it serves (WebTorrent peers,
/// operator actions): with `SWARM_SHARDS`, its shard moves it there first.
pub async fn own_swarm_stub(env: &Env, config: &TrackerConfig, hash: &crate::peer::InfoHash) -> Result<Stub> {
    if config.shards() > 0 {
        let resp = swarm_stub(env, config, hash)?.fetch_with_str(&format!("{}{}", shard_object::SHARD_MOVE_URL, hash.to_hex())).await?;
        if resp.status_code() != 200 {
            return Err(Error::RustError(format!("the torrent's shard answered {}", resp.status_code())));
        }
    }
    own_object(env, hash)
}

/// A torrent's own object (named by its info hash).
pub fn own_object(env: &Env, hash: &crate::peer::InfoHash) -> Result<Stub> {
    env.durable_object(SWARMS_BINDING)?.id_from_name(&hash.to_hex())?.get_stub()
}

/// The published counters of each torrent (zero when none are), in one KV
/// read; with `SWARM_SHARDS`, from each torrent's shard.
async fn counters_for(
    env: &Env,
    kv: &kv::KvStore,
    hashes: &[crate::peer::InfoHash],
) -> std::result::Result<Vec<(crate::peer::InfoHash, SwarmCounters)>, kv::KvError> {
    let config = config_from(env).ok();
    let read_through = config.as_ref().is_some_and(|c| c.scrape_reads_through());
    // A shared swarm's counters are never in KV (`SWARM_SHARDS`): each
    // torrent is asked of its shard, which answers for one that moved to
    // its own object too. The entry's `scrapeKeys` skips KV the same way.
    let cached: Vec<Option<SwarmCounters>> = if config.as_ref().is_some_and(|c| c.shards() > 0) {
        vec![None; hashes.len()]
    } else {
        let keys: Vec<String> = hashes.iter().map(|h| scrape::scrape_key(h, read_through)).collect();
        let values = kv.get_bulk(&keys).text().await?;
        keys.iter().map(|k| values.get(k).and_then(|v| v.as_deref()).and_then(SwarmCounters::from_kv)).collect()
    };
    // Not in KV: nobody scraped it lately. With a read-through cache
    // (SCRAPE_CACHE > 0), ask each swarm; otherwise the swarm is empty.
    let missing = hashes.iter().zip(&cached).filter(|(_, c)| c.is_none() && read_through).map(|(h, _)| swarm_counters(env, h));
    let mut fetched = futures_util::future::join_all(missing).await.into_iter();
    let mut fill = |c: Option<SwarmCounters>| c.unwrap_or_else(|| if read_through { fetched.next().flatten().unwrap_or_default() } else { SwarmCounters::default() });
    Ok(hashes.iter().zip(cached).map(|(h, c)| (*h, fill(c))).collect())
}

/// A swarm's counters from its object (which caches them in KV); zeros if
/// it cannot answer (a scrape is advice, never an error for one torrent).
async fn swarm_counters(env: &Env, hash: &crate::peer::InfoHash) -> Option<SwarmCounters> {
    let stub = swarm_stub(env, &config_from(env).ok()?, hash).ok()?;
    let mut resp = stub.fetch_with_str(&format!("{SWARM_COUNTERS_URL}{}", hash.to_hex())).await.ok()?;
    SwarmCounters::from_kv(&resp.text().await.ok()?)
}

/// One KV list call: the counters ride in each key's metadata, so a full
/// scrape costs one list operation for up to 1,000 torrents.
async fn full_scrape(kv: &kv::KvStore) -> std::result::Result<Vec<(crate::peer::InfoHash, SwarmCounters)>, kv::KvError> {
    let list = kv.list().prefix(scrape::COUNTERS_PREFIX.to_string()).limit(1000).execute().await?;
    Ok(list
        .keys
        .iter()
        .filter_map(|k| {
            let hash = scrape::hash_of_key(&k.name)?;
            let counters = k.metadata.as_ref()?.as_str().and_then(SwarmCounters::from_kv)?;
            Some((hash, counters))
        })
        .collect())
}

/// A bencoded answer: `text/plain`, as the JS entry's (`BENCODED`).
pub fn bencoded(body: Vec<u8>) -> Result<Response> {
    let mut resp = Response::from_bytes(body)?;
    resp.headers_mut().set("content-type", "text/plain; charset=utf-8")?;
    Ok(resp)
}

/// A request from the Worker or an object to another object (`POST` with a
/// body, or `GET` with headers). Built on web_sys: worker's
/// `Request::new_with_init` converts `RequestInit`'s Cloudflare `cf`
/// properties even when none are set (~12 KB of the module).
pub fn internal_request(url: &str, method: &str, body: Option<&str>, headers: Option<&Headers>) -> Result<Request> {
    let init = web_sys::RequestInit::new();
    init.set_method(method);
    if let Some(body) = body {
        init.set_body(&wasm_bindgen::JsValue::from_str(body));
    }
    if let Some(headers) = headers {
        init.set_headers(headers.as_ref());
    }
    let req = web_sys::Request::new_with_str_and_init(url, &init)
        .map_err(|e| Error::JsError(e.as_string().unwrap_or_else(|| "invalid internal request".into())))?;
    Ok(Request::from(req))
}

/// The path of a request, undecoded, split by hand like `raw_path`:
/// `Request::path()` and `Request::url()` parse the URL with the `url`
/// crate, which alone was ~45 KB of the module (README, Module size).
pub fn request_path(req: &Request) -> String {
    raw_path(&req.inner().url()).to_string()
}

/// `scheme://host[:port]` of an absolute URL as the runtime serializes it
/// (the part before the path), e.g. for the announce URLs the API hands out.
pub fn raw_origin(url: &str) -> &str {
    let after_scheme = url.find("://").map(|i| i + 3).unwrap_or(0);
    let end = url[after_scheme..].find(['/', '?', '#']).map(|i| after_scheme + i).unwrap_or(url.len());
    &url[..end]
}

/// The path of an absolute URL (`scheme://host/path?query`), undecoded.
fn raw_path(url: &str) -> &str {
    let after_scheme = url.split_once("://").map(|(_, rest)| rest).unwrap_or(url);
    let path_and_query = after_scheme.find('/').map(|i| &after_scheme[i..]).unwrap_or("/");
    let end = path_and_query.find(['?', '#']).unwrap_or(path_and_query.len());
    &path_and_query[..end]
}

/// The query exactly as the client sent it: never decoded through UTF-8.
pub fn raw_query(url: &str) -> &str {
    let without_fragment = url.split('#').next().unwrap_or("");
    without_fragment.split_once('?').map(|(_, q)| q).unwrap_or("")
}

fn remote_ip(req: &Request) -> IpAddr {
    req.headers()
        .get("cf-connecting-ip")
        .ok()
        .flatten()
        .and_then(|v| parse_ip(&v))
        .unwrap_or(FALLBACK_IP)
}

/// What an object starts from: its configuration (the defaults, logged,
/// when the vars are invalid), a random seed (without entropy peer
/// selection is still valid, only predictable) and whether it reports its
/// costs (`EXPOSE_COSTS`).
pub fn object_start(env: &Env) -> (TrackerConfig, [u8; 8], bool) {
    let config = config_from(env).unwrap_or_else(|e| {
        log::error("config_invalid", serde_json::json!({ "error": e.to_string(), "using": "defaults" }));
        TrackerConfig::default()
    });
    let mut seed = [0u8; 8];
    let _ = getrandom::fill(&mut seed);
    (config, seed, expose_costs(env))
}

/// The configuration, read from the Worker's vars once per isolate (vars
/// only change with a deploy, which starts new isolates).
pub fn config_from(env: &Env) -> std::result::Result<TrackerConfig, crate::config::ConfigError> {
    thread_local! {
        static CONFIG: std::cell::OnceCell<std::result::Result<TrackerConfig, crate::config::ConfigError>> =
            const { std::cell::OnceCell::new() };
    }
    CONFIG.with(|c| {
        c.get_or_init(|| {
            let config = TrackerConfig::from_lookup(|name| env.var(name).ok().map(|v| v.to_string())).map(|mut c| {
                // A wrangler.toml from before the shards has no SHARDS
                // binding: every torrent keeps its own object.
                if c.swarm_shards > 0 && env.durable_object(SHARDS_BINDING).is_err() {
                    c.swarm_shards = 0;
                }
                c
            });
            if let Ok(config) = &config {
                log::set_level(config.log_level);
            }
            config
        })
        .clone()
    })
}

pub fn expose_costs(env: &Env) -> bool {
    thread_local! {
        static EXPOSE: std::cell::OnceCell<bool> = const { std::cell::OnceCell::new() };
    }
    EXPOSE.with(|e| *e.get_or_init(|| matches!(env.var("EXPOSE_COSTS").map(|v| v.to_string()).as_deref(), Ok("true" | "1"))))
}
