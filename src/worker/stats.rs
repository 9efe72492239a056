//! Request counts in the Worker isolate. Each request adds to in-memory
//! counters; at most once per `STATS_FLUSH` seconds a request hands the
//! delta to the stats object in `ctx.wait_until`, after its answer is sent.
//! `/stats` and `/metrics` send this isolate's delta with their read.

use std::cell::RefCell;

use serde::{Deserialize, Serialize};
use serde_json::json;
use worker::*;

use super::log;
use crate::admission::{Route, Tally};
use crate::config::TrackerConfig;
use crate::stats::{Counts, Failure, FlushClock};

pub const STATS_BINDING: &str = "STATS";
/// The one stats object's name.
const STATS_OBJECT: &str = "global";

thread_local! {
    static PENDING: RefCell<(Counts, FlushClock)> = RefCell::new((Counts::default(), FlushClock::default()));
}

pub fn count_announce() {
    PENDING.with(|p| p.borrow_mut().0.announces += 1);
}

pub fn count_scrape() {
    PENDING.with(|p| p.borrow_mut().0.scrapes += 1);
}

pub fn count_failure(f: Failure) {
    PENDING.with(|p| p.borrow_mut().0.fail(f));
}

/// Counts what a request adds (admission's tally, or a fault found
/// after it): the one place a tracker request is counted.
pub fn apply(tally: Tally) {
    match tally.route {
        Some(Route::Announce) => count_announce(),
        Some(Route::Scrape) => count_scrape(),
        None => {}
    }
    if let Some(failure) = tally.failure {
        count_failure(failure);
    }
    if let Some(failure) = tally.logged_refusal() {
        log::debug("request_refused", json!({ "reason": failure.label() }));
    }
}

fn take_pending() -> Counts {
    PENDING.with(|p| std::mem::take(&mut p.borrow_mut().0))
}

/// A delta that did not reach the stats object goes back to be sent later.
fn restore(delta: Counts) {
    PENDING.with(|p| p.borrow_mut().0.add(&delta));
}

/// Called after every request: sends the isolate's counts if a flush is due.
pub fn after_request(env: &Env, ctx: &Context, config: &TrackerConfig) {
    if let Some(send) = flush_if_due(env, config) {
        ctx.wait_until(send);
    }
}

/// The send of the isolate's counts, if a flush is due. (A socket gateway,
/// which counts its failures too, awaits it after its frame is sent.)
pub fn flush_if_due(env: &Env, config: &TrackerConfig) -> Option<impl std::future::Future<Output = ()> + 'static> {
    let delta = PENDING.with(|p| {
        let mut p = p.borrow_mut();
        let (counts, clock) = &mut *p;
        if counts.is_empty() || !clock.due(js_sys::Date::now() as u64, config.stats_flush as u64 * 1000) {
            return None;
        }
        Some(std::mem::take(counts))
    })?;
    let env = env.clone();
    Some(async move {
        if let Err(e) = call(&env, "flush", &delta).await {
            log::warn("stats_flush_failed", json!({ "error": e.to_string() }));
            restore(delta);
        }
    })
}

/// What `/stats` and `/metrics` send the stats object.
#[derive(Serialize, Deserialize)]
pub struct ReadRequest {
    pub delta: Counts,
    pub minutes: u64,
    /// Answer in the Prometheus text format instead of JSON.
    pub prometheus: bool,
}

/// The current numbers, including this isolate's unsent counts, as the
/// stats object formats them (the Worker only passes the text on).
async fn read(env: &Env, minutes: u64, prometheus: bool) -> Result<String> {
    let delta = take_pending();
    match call(env, "read", &ReadRequest { delta: delta.clone(), minutes, prometheus }).await {
        Ok(mut resp) => Ok(resp.text().await?),
        Err(e) => {
            restore(delta);
            Err(e)
        }
    }
}

async fn call(env: &Env, what: &str, body: &impl Serialize) -> Result<Response> {
    let stub = env.durable_object(STATS_BINDING)?.id_from_name(STATS_OBJECT)?.get_stub()?;
    let body = serde_json::to_string(body)?;
    let req = super::internal_request(&format!("https://stats/{what}"), "POST", Some(&body), None)?;
    let resp = stub.fetch_with_request(req).await?;
    if resp.status_code() != 200 {
        return Err(Error::RustError(format!("stats object answered {}", resp.status_code())));
    }
    Ok(resp)
}

/// `GET /stats` (JSON) or `GET /metrics` (Prometheus text).
pub async fn serve(env: &Env, url: &str, prometheus: bool) -> Result<Response> {
    let minutes = super::raw_query(url)
        .split('&')
        .find_map(|kv| kv.strip_prefix("minutes="))
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(crate::stats::DEFAULT_SERIES_MINUTES);
    let body = match read(env, minutes, prometheus).await {
        Ok(s) => s,
        Err(e) => {
            log::error("stats_read_failed", json!({ "error": e.to_string() }));
            let mut resp = Response::from_json(&json!({ "error": "statistics temporarily unavailable" }))?.with_status(503);
            resp.headers_mut().set("retry-after", "10")?;
            return Ok(resp);
        }
    };
    let mut resp = Response::ok(body)?;
    let content_type = if prometheus { "text/plain; version=0.0.4; charset=utf-8" } else { "application/json" };
    resp.headers_mut().set("content-type", content_type)?;
    resp.headers_mut().set("cache-control", "no-store")?;
    Ok(resp)
}
