//! The async driver of admission (`crate::admission`): every request the
//! JS entry's hot path does not answer. The pages and the API are routed
//! first; a tracker request runs the admission pipeline, doing the I/O each
//! step asks for (rate limiter, ban list, accounts) until a final step, then
//! answers it: a refusal, a WebSocket, a forward to the swarm, or a scrape.

use worker::*;

use super::{
    api, bencoded, config_from, counters_for, dashboard, expose_costs, fail_retry, full_scrape, log, private, raw_path,
    raw_query, remote_ip, socket_gateway, stats, swarm_fault_answer, swarm_url, DO_MS_HEADER, FAILURE_HEADER, KV_BINDING, NOTED_STATUS,
    KV_READS_HEADER, ROWS_READ_HEADER, ROWS_WRITTEN_HEADER, USAGE_HEADER,
};
use crate::admission::{self, Known, Lookup, Registered, Route, Step, Tally, User, RATE_LIMIT_WAIT};
use crate::config::{ConfigError, TrackerConfig};
use crate::response;
use crate::stats::Failure;
use crate::wire::SwarmAnnounce;

/// Rate-limit bindings (wrangler.toml `[[ratelimits]]`): tracker requests
/// and API calls, each counted per client address. Without the binding
/// there is no limit.
pub const ANNOUNCE_LIMITER: &str = "ANNOUNCE_LIMITER";
const API_LIMITER: &str = "API_LIMITER";

type Config = std::result::Result<TrackerConfig, ConfigError>;

pub async fn route(req: Request, env: &Env) -> Result<Response> {
    // The raw URL, split by hand: parsing it as a `Url` costs more than the
    // rest of an announce in the Worker.
    let url = req.inner().url();
    let path = raw_path(&url).to_string();
    if let Some(resp) = dashboard::serve(&req, env, &url, &path).await {
        return resp;
    }
    if path.starts_with("/api/") {
        return api_route(req, env).await;
    }
    let config = config_from(env);
    // The raw method: `Request::method()` reads any method it does not know as GET.
    let method = req.inner().method();
    let request = admission::Request {
        path: &path,
        query: raw_query(&url),
        method: &method,
        websocket: is_websocket_upgrade(&req),
        remote: remote_ip(&req),
    };
    let mut known = Known::new(private::client_banned_cached);
    loop {
        match admission::admit(&request, config.as_ref(), &known) {
            Step::NeedRateLimit => known.limit = Some(rate_limited(env, ANNOUNCE_LIMITER, &req).await),
            Step::NeedClientBans => {
                if let Err(e) = private::load_client_bans(env).await {
                    log::warn("client_bans_unreadable", serde_json::json!({ "error": e.to_string() }));
                    known.client_banned = |_| Some(false);
                }
            }
            Step::NeedUser { passkey } => known.user = user(env, &config, &passkey, &path).await,
            Step::NeedTorrent { hash } => known.torrent = torrent(env, &config, &hash).await,
            Step::Answer { status, body, tally } => return answer(env, &config, status, body, tally),
            Step::OpenSocket => return socket_gateway::connect(&req, env).await,
            Step::Forward { msg, tally } => {
                stats::apply(tally);
                return with_kv_reads(env, forward(env, &msg).await);
            }
            Step::Scrape { hashes, tally } => {
                stats::apply(tally);
                return scrape(env, &hashes).await;
            }
        }
    }
}

/// Admission's answer, counted.
fn answer(env: &Env, config: &Config, status: u16, body: Vec<u8>, tally: Tally) -> Result<Response> {
    stats::apply(tally);
    if let (Some(Failure::Misconfigured), Err(e)) = (tally.failure, config) {
        log::error("config_invalid", serde_json::json!({ "error": e.to_string() }));
    }
    let mut resp = bencoded(body)?.with_status(status);
    if status == 405 {
        resp.headers_mut().set("allow", "GET, HEAD")?;
    }
    match tally.route {
        Some(Route::Announce) => with_kv_reads(env, Ok(resp)),
        _ => Ok(resp),
    }
}

async fn api_route(req: Request, env: &Env) -> Result<Response> {
    if let Some(wait) = rate_limited(env, API_LIMITER, &req).await {
        stats::apply(Tally::failure(Failure::RateLimited));
        let mut resp = api::error(429, &format!("too many API requests from your address; retry in {wait} s"))?;
        resp.headers_mut().set("retry-after", &wait.to_string())?;
        return Ok(resp);
    }
    match config_from(env) {
        Ok(config) => api::handle(req, env, &config).await,
        Err(e) => {
            log::error("config_invalid", serde_json::json!({ "error": e.to_string() }));
            api::error(503, &format!("tracker misconfigured: {e}"))
        }
    }
}

/// Private mode: the passkey's owner as found (a lookup that fails is logged).
async fn user(env: &Env, config: &Config, passkey: &str, path: &str) -> Lookup<User> {
    let Ok(config) = config else { return Lookup::Failed };
    match private::resolve_passkey(env, config, passkey).await {
        Ok(entry) => Lookup::Done(entry.map(|e| User { user: e.user, banned: e.banned, may_leech: e.may_leech })),
        Err(e) => lookup_failed(path, e),
    }
}

/// Private mode: the torrent's registration as found.
async fn torrent(env: &Env, config: &Config, hash: &crate::peer::InfoHash) -> Lookup<Registered> {
    let Ok(config) = config else { return Lookup::Failed };
    match private::registered_torrent(env, config, hash).await {
        Ok(entry) => Lookup::Done(entry.map(|t| Registered { freeleech: t.freeleech })),
        Err(e) => lookup_failed("/announce", e),
    }
}

fn lookup_failed<T>(path: &str, e: Error) -> Lookup<T> {
    let route = if path.starts_with("/scrape") { "scrape" } else { "announce" };
    log::error("private_lookup_failed", serde_json::json!({ "route": route, "error": e.to_string() }));
    Lookup::Failed
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

/// The announce, sent to its swarm's object; the swarm's answer is final.
async fn forward(env: &Env, msg: &SwarmAnnounce) -> Result<Response> {
    let sent = js_sys::Date::now();
    let reply = async {
        let config = config_from(env).map_err(|e| Error::RustError(e.to_string()))?;
        let stub = super::swarm_stub(env, &config, &msg.info_hash)?;
        let resp = stub.fetch_with_str(&swarm_url(msg)).await?;
        match resp.status_code() {
            200 | NOTED_STATUS => Ok(resp),
            status => Err(Error::RustError(format!("swarm answered {status}"))),
        }
    }
    .await;
    if let Ok(resp) = &reply {
        if let Ok(Some(label)) = resp.headers().get(FAILURE_HEADER) {
            stats::apply(Tally::failure(Failure::from_label(&label).unwrap_or(Failure::Other)));
        }
    }
    match reply {
        // The swarm's answer is final (bencoded, with its headers): pass it on.
        Ok(resp) if resp.status_code() == 200 && !expose_costs(env) => Ok(resp),
        // Its notes were for this Worker: the client gets the answer.
        Ok(mut resp) if !expose_costs(env) => bencoded(resp.bytes().await?),
        Ok(resp) => with_costs(resp, sent).await,
        Err(e) => bencoded(swarm_fault_answer(&msg.info_hash.to_hex(), &e.to_string(), false)),
    }
}

/// The swarm's answer with its storage costs and the Worker's (`EXPOSE_COSTS`).
async fn with_costs(mut resp: Response, sent: f64) -> Result<Response> {
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

/// The scrape answer from KV (none asked: a full scrape).
async fn scrape(env: &Env, hashes: &[crate::peer::InfoHash]) -> Result<Response> {
    let kv = env.kv(KV_BINDING)?;
    let entries = if hashes.is_empty() { full_scrape(&kv).await } else { counters_for(env, &kv, hashes).await };
    match entries {
        Ok(entries) => bencoded(response::scrape(&entries)),
        Err(e) => {
            log::error("scrape_unavailable", serde_json::json!({ "error": e.to_string() }));
            fail_retry(Failure::ScrapeUnavailable)
        }
    }
}

/// `Upgrade: websocket`: a WebTorrent client opening its tracker socket.
fn is_websocket_upgrade(req: &Request) -> bool {
    matches!(req.headers().get("upgrade"), Ok(Some(v)) if v.eq_ignore_ascii_case("websocket"))
}
