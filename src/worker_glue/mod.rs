//! The Worker: route, validate, forward an announce to its swarm's Durable
//! Object, answer. Scrape is served from KV and never wakes a swarm.

mod api;
mod dashboard;
mod fast;
mod ledger;
mod ledger_shard;
mod log;
mod private;
mod sessions;
mod stats;
mod stats_object;
mod socket_gateway;
mod swarm_object;
mod torrent_files;
mod totals_shard;

use std::net::IpAddr;

use worker::*;

use crate::announce::AnnounceRequest;
use crate::config::{TrackerConfig, TrackerMode};
use crate::peer::{parse_ip, FALLBACK_IP};
use crate::query::QueryPairs;
use crate::response::{self, PeerListFormat};
use crate::scrape::{self, ScrapeRequest};
use crate::stats::Failure;
use crate::swarm::SwarmCounters;
use crate::unavailable;
use crate::wire::{Account, SwarmAnnounce};


pub const SWARMS_BINDING: &str = "SWARMS";
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

#[event(fetch)]
async fn fetch(req: Request, env: Env, ctx: Context) -> Result<Response> {
    let resp = route(req, &env).await;
    if let Ok(config) = config_from(&env) {
        stats::after_request(&env, &ctx, &config);
    }
    resp
}

async fn route(req: Request, env: &Env) -> Result<Response> {
    // The raw URL, split by hand: parsing it as a `Url` costs more than the
    // rest of an announce in the Worker.
    let url = req.inner().url();
    let path = raw_path(&url).to_string();
    if let Some(resp) = dashboard::serve(&req, env, &url, &path).await {
        return resp;
    }
    if path.starts_with("/api/") {
        if let Some(wait) = rate_limited(env, API_LIMITER, &req).await {
            stats::count_failure(Failure::RateLimited);
            let mut resp = api::error(429, &format!("too many API requests from your address; retry in {wait} s"))?;
            resp.headers_mut().set("retry-after", &wait.to_string())?;
            return Ok(resp);
        }
        return match config_from(env) {
            Ok(config) => api::handle(req, env, &config).await,
            Err(e) => {
                log::error("config_invalid", serde_json::json!({ "error": e.to_string() }));
                api::error(503, &format!("tracker misconfigured: {e}"))
            }
        };
    }
    // `/announce/<passkey>` is the private-mode form clients accept on localhost too.
    let (route, path_passkey) = match path.as_str() {
        "/announce" | "/announce.php" => (Route::Announce, None),
        "/scrape" | "/scrape.php" => (Route::Scrape, None),
        // A client pointed at the site root gets a reason it can show.
        "/" => return not_found(),
        p => match p.strip_prefix("/announce/").or_else(|| p.strip_prefix("/scrape/")) {
            Some(key) if !key.contains('/') => {
                let route = if p.starts_with("/announce/") { Route::Announce } else { Route::Scrape };
                (route, Some(key.to_string()))
            }
            _ => return not_found(),
        },
    };
    let websocket = matches!(route, Route::Announce) && is_websocket_upgrade(&req);
    match route {
        // A WebSocket upgrade opens a socket; its frames are not HTTP announces.
        Route::Announce if websocket => {}
        Route::Announce => stats::count_announce(),
        Route::Scrape => stats::count_scrape(),
    }
    // The raw method: `Request::method()` reads any method it does not know as GET.
    if !matches!(req.inner().method().as_str(), "GET" | "HEAD") {
        let mut resp = refuse(Failure::MethodNotAllowed)?.with_status(405);
        resp.headers_mut().set("allow", "GET, HEAD")?;
        return Ok(resp);
    }
    if let Some(wait) = rate_limited(env, ANNOUNCE_LIMITER, &req).await {
        stats::count_failure(Failure::RateLimited);
        return bencoded(response::failure_retry(Failure::RateLimited.text(), wait));
    }
    if websocket {
        return match config_from(env) {
            Ok(config) if config.mode == TrackerMode::Public => socket_gateway::connect(&req, env).await,
            Ok(_) => bencoded(response::failure("the WebSocket tracker exists in public mode only"))
                .map(|r| r.with_status(400)),
            Err(e) => fail(Failure::Misconfigured, &format!("{}: {e}", Failure::Misconfigured.text())),
        };
    }
    let config = match config_from(env) {
        Ok(c) => c,
        Err(e) => {
            log::error("config_invalid", serde_json::json!({ "error": e.to_string() }));
            return fail(Failure::Misconfigured, &format!("{}: {e}", Failure::Misconfigured.text()));
        }
    };
    let raw_query = raw_query(&url);
    let query = match QueryPairs::parse(raw_query.as_bytes()) {
        Ok(q) => q,
        Err(e) => return fail(Failure::InvalidQuery, &e.to_string()),
    };
    let query_passkey = match query.only("passkey") {
        Ok(p) => p.map(|p| String::from_utf8_lossy(p).into_owned()),
        Err(e) => return bencoded(response::failure(&e.to_string())),
    };
    if matches!((&path_passkey, &query_passkey), (Some(a), Some(b)) if a != b) {
        return bencoded(response::failure("two different passkeys (in the path and in the query)"));
    }
    let passkey = path_passkey.or(query_passkey);
    match route {
        Route::Announce => with_kv_reads(env, announce(&req, env, &config, &query, passkey.as_deref()).await),
        Route::Scrape => {
            if config.mode == TrackerMode::Private {
                match private_user(env, &config, passkey.as_deref()).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(failure)) => return refuse(failure),
                    Err(e) => {
                        log::error("private_lookup_failed", serde_json::json!({ "route": "scrape", "error": e.to_string() }));
                        return fail_retry(Failure::AccountLookupFailed);
                    }
                }
            }
            scrape(env, &config, &query).await
        }
    }
}

/// With `EXPOSE_COSTS`, a refused announce reports its KV reads too (an
/// answered one already does).
fn with_kv_reads(env: &Env, resp: Result<Response>) -> Result<Response> {
    let mut resp = resp?;
    if expose_costs(env) && !resp.headers().has(KV_READS_HEADER)? {
        resp.headers_mut().set(KV_READS_HEADER, &private::take_kv_reads().to_string())?;
    }
    Ok(resp)
}

/// A bencoded failure, counted by reason; the tracker's own faults are logged by the caller.
fn fail(failure: Failure, reason: &str) -> Result<Response> {
    stats::count_failure(failure);
    if !failure.is_server_side() {
        log::debug("request_refused", serde_json::json!({ "reason": failure.label() }));
    }
    bencoded(response::failure(reason))
}

/// A bencoded refusal with its reason's own text, counted.
fn refuse(failure: Failure) -> Result<Response> {
    fail(failure, failure.text())
}

/// Private mode: the passkey's owner, or why not.
async fn private_user(
    env: &Env,
    config: &TrackerConfig,
    passkey: Option<&str>,
) -> Result<std::result::Result<private::PasskeyEntry, Failure>> {
    let Some(passkey) = passkey else {
        return Ok(Err(Failure::MissingPasskey));
    };
    Ok(match private::resolve_passkey(env, config, passkey).await? {
        None => Err(Failure::UnknownPasskey),
        Some(e) if e.banned => Err(Failure::AccountBanned),
        Some(e) => Ok(e),
    })
}

/// Private mode: who is announcing and what they may do, or why not.
async fn private_account(
    env: &Env,
    config: &TrackerConfig,
    passkey: Option<&str>,
    announce: &AnnounceRequest,
) -> Result<std::result::Result<Account, Failure>> {
    let user = match private_user(env, config, passkey).await? {
        Ok(u) => u,
        Err(reason) => return Ok(Err(reason)),
    };
    let Some(torrent) = private::registered_torrent(env, config, &announce.info_hash).await? else {
        return Ok(Err(Failure::UnregisteredTorrent));
    };
    Ok(Ok(Account { user: user.user, may_leech: user.may_leech, freeleech: torrent.freeleech }))
}

#[derive(PartialEq, Eq)]
enum Route {
    Announce,
    Scrape,
}

/// Rate-limit bindings (wrangler.toml `[[ratelimits]]`): tracker requests
/// and API calls, each counted per client address. Without the binding
/// there is no limit.
const ANNOUNCE_LIMITER: &str = "ANNOUNCE_LIMITER";
const API_LIMITER: &str = "API_LIMITER";

/// The limiters count over 60 s: a client over the limit retries after that.
const RATE_LIMIT_WAIT: u32 = 60;

/// Seconds to wait if this address is over the limiter's budget. A
/// limiter that fails lets the request through: availability first.
async fn rate_limited(env: &Env, binding: &str, req: &Request) -> Option<u32> {
    let limiter = env.rate_limiter(binding).ok()?;
    match limiter.limit(remote_ip(req).to_string()).await {
        Ok(outcome) if !outcome.success => Some(RATE_LIMIT_WAIT),
        Ok(_) => None,
        Err(e) => {
            log::warn("rate_limiter_failed", serde_json::json!({ "binding": binding, "error": e.to_string() }));
            None
        }
    }
}

async fn announce(
    req: &Request,
    env: &Env,
    config: &TrackerConfig,
    query: &QueryPairs,
    passkey: Option<&str>,
) -> Result<Response> {
    let announce = match AnnounceRequest::parse(query) {
        Ok(a) => a,
        Err(e) => return fail(Failure::InvalidAnnounce, &e.to_string()),
    };
    match private::client_banned(env, &announce.peer_id).await {
        Ok(false) => {}
        Ok(true) => return refuse(Failure::ClientBanned),
        Err(e) => log::warn("client_bans_unreadable", serde_json::json!({ "error": e.to_string() })),
    }
    let account = match config.mode {
        TrackerMode::Public => None,
        TrackerMode::Private => match private_account(env, config, passkey, &announce).await {
            Ok(Ok(account)) => Some(account),
            Ok(Err(failure)) => return refuse(failure),
            Err(e) => {
                log::error("private_lookup_failed", serde_json::json!({ "route": "announce", "error": e.to_string() }));
                return fail_retry(Failure::AccountLookupFailed);
            }
        },
    };
    let msg = swarm_message(&announce, remote_ip(req), config, account);
    let sent = js_sys::Date::now();
    let reply = async {
        let stub = env
            .durable_object(SWARMS_BINDING)?
            .id_from_name(&announce.info_hash.to_hex())?
            .get_stub()?;
        let resp = stub.fetch_with_str(&swarm_url(&msg)).await?;
        match resp.status_code() {
            200 => Ok(resp),
            status => Err(Error::RustError(format!("swarm answered {status}"))),
        }
    }
    .await;
    if let Ok(resp) = &reply {
        if let Ok(Some(label)) = resp.headers().get(FAILURE_HEADER) {
            stats::count_failure(Failure::from_label(&label).unwrap_or(Failure::Other));
        }
    }
    match reply {
        // The swarm's answer is final (bencoded, with its headers): pass it on.
        Ok(resp) if !expose_costs(env) => Ok(resp),
        Ok(mut resp) => {
            let headers = resp.headers().clone();
            let mut copy = bencoded(resp.bytes().await?)?;
            for name in [ROWS_READ_HEADER, ROWS_WRITTEN_HEADER] {
                for name in [name.to_string(), format!("{name}-total")] {
                    if let Some(v) = headers.get(&name)? {
                        copy.headers_mut().set(&name, &v)?;
                    }
                }
            }
            if let Some(v) = headers.get(USAGE_HEADER)? {
                copy.headers_mut().set(USAGE_HEADER, &v)?;
            }
            copy.headers_mut().set(KV_READS_HEADER, &private::take_kv_reads().to_string())?;
            copy.headers_mut().set(DO_MS_HEADER, &(js_sys::Date::now() - sent).to_string())?;
            Ok(copy)
        }
        Err(e) => bencoded(swarm_fault_answer(&announce.info_hash.to_hex(), &e.to_string(), false)),
    }
}

/// A swarm stub that failed (or answered other than 200): logged, counted
/// as `swarm_overloaded` or `swarm_unavailable`, answered with `retry in`.
pub fn swarm_fault_answer(info_hash: &str, error: &str, overloaded: bool) -> Vec<u8> {
    let failure = unavailable::swarm_fault(error, overloaded);
    log::error(failure.label(), serde_json::json!({ "info_hash": info_hash, "error": error }));
    stats::count_failure(failure);
    unavailable::answer(failure)
}

/// A fault of the tracker's own (KV, D1): counted, answered with `retry in`.
fn fail_retry(failure: Failure) -> Result<Response> {
    stats::count_failure(failure);
    bencoded(unavailable::answer(failure))
}

/// What the swarm's object is asked: the validated announce, with the
/// address it will list and the numwant the configuration allows.
fn swarm_message(announce: &AnnounceRequest, remote: IpAddr, config: &TrackerConfig, account: Option<Account>) -> SwarmAnnounce {
    let addr = announce.peer_addr(remote, config.trust_client_ip);
    SwarmAnnounce {
        info_hash: announce.info_hash,
        peer: crate::swarm::PeerAnnounce {
            key: announce.entry_key(&addr, account.map(|a| a.user)),
            peer_id: announce.peer_id,
            addr,
            left: announce.left,
            event: announce.event,
        },
        uploaded: announce.uploaded,
        downloaded: announce.downloaded,
        numwant: config.numwant(announce.numwant).min(u16::MAX as usize) as u16,
        format: PeerListFormat { compact: announce.compact, no_peer_id: announce.no_peer_id },
        account,
    }
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

async fn scrape(env: &Env, config: &TrackerConfig, query: &QueryPairs) -> Result<Response> {
    let request = match ScrapeRequest::parse(query, config.scrape_max, config.full_scrape) {
        Ok(r) => r,
        Err(e) => return fail(Failure::InvalidScrape, &e.to_string()),
    };
    let kv = env.kv(KV_BINDING)?;
    let entries = if request.info_hashes.is_empty() {
        full_scrape(&kv).await
    } else {
        counters_for(env, &kv, &request.info_hashes).await
    };
    match entries {
        Ok(entries) => bencoded(response::scrape(&entries)),
        Err(e) => {
            log::error("scrape_unavailable", serde_json::json!({ "error": e.to_string() }));
            fail_retry(Failure::ScrapeUnavailable)
        }
    }
}

/// The published counters of each torrent (zero when none are), in one KV read.
async fn counters_for(
    env: &Env,
    kv: &kv::KvStore,
    hashes: &[crate::peer::InfoHash],
) -> std::result::Result<Vec<(crate::peer::InfoHash, SwarmCounters)>, kv::KvError> {
    let keys: Vec<String> = hashes.iter().map(scrape::counters_key).collect();
    let values = kv.get_bulk(&keys).text().await?;
    let cached: Vec<Option<SwarmCounters>> =
        keys.iter().map(|k| values.get(k).and_then(|v| v.as_deref()).and_then(SwarmCounters::from_kv)).collect();
    // Not in KV: nobody scraped it lately. With a read-through cache
    // (SCRAPE_CACHE > 0), ask each swarm; otherwise the swarm is empty.
    let read_through = config_from(env).map(|c| c.scrape_cache > 0).unwrap_or(false);
    let missing = hashes.iter().zip(&cached).filter(|(_, c)| c.is_none() && read_through).map(|(h, _)| swarm_counters(env, h));
    let mut fetched = futures_util::future::join_all(missing).await.into_iter();
    let mut fill = |c: Option<SwarmCounters>| c.unwrap_or_else(|| if read_through { fetched.next().flatten().unwrap_or_default() } else { SwarmCounters::default() });
    Ok(hashes.iter().zip(cached).map(|(h, c)| (*h, fill(c))).collect())
}

/// A swarm's counters from its object (which caches them in KV); zeros if
/// it cannot answer (a scrape is advice, never an error for one torrent).
async fn swarm_counters(env: &Env, hash: &crate::peer::InfoHash) -> Option<SwarmCounters> {
    let stub = env.durable_object(SWARMS_BINDING).ok()?.id_from_name(&hash.to_hex()).ok()?.get_stub().ok()?;
    let mut resp = stub.fetch_with_str(&format!("{SWARM_COUNTERS_URL}{}", hash.to_hex())).await.ok()?;
    SwarmCounters::from_kv(&resp.text().await.ok()?)
}

/// `Upgrade: websocket`: a WebTorrent client opening its tracker socket.
fn is_websocket_upgrade(req: &Request) -> bool {
    matches!(req.headers().get("upgrade"), Ok(Some(v)) if v.eq_ignore_ascii_case("websocket"))
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

/// Unknown paths: 404 with a bencoded reason, so a client with a wrong
/// announce URL can show the user why.
fn not_found() -> Result<Response> {
    Ok(bencoded(response::failure("not found: the announce URL is /announce, scrape is /scrape"))?.with_status(404))
}

pub fn bencoded(body: Vec<u8>) -> Result<Response> {
    let mut resp = Response::from_bytes(body)?;
    resp.headers_mut().set("content-type", "text/plain; charset=utf-8")?;
    resp.headers_mut().set("cache-control", "no-store")?;
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

/// The configuration, read from the Worker's vars once per isolate (vars
/// only change with a deploy, which starts new isolates).
pub fn config_from(env: &Env) -> std::result::Result<TrackerConfig, crate::config::ConfigError> {
    thread_local! {
        static CONFIG: std::cell::OnceCell<std::result::Result<TrackerConfig, crate::config::ConfigError>> =
            const { std::cell::OnceCell::new() };
    }
    CONFIG.with(|c| {
        c.get_or_init(|| {
            let config = TrackerConfig::from_lookup(|name| env.var(name).ok().map(|v| v.to_string()));
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
