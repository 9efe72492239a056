//! Admission: the ordered rules a tracker request (`/announce`, `/scrape`)
//! passes before it reaches a swarm or KV, written once for both drivers
//! (the synchronous hot path in `worker/fast.rs` and the async router
//! in `worker/mod.rs`). `admit` is pure: it answers with the next
//! [`Step`]. A step that needs I/O (the rate limiter, the client ban list,
//! an account) is done by the driver, which records what it found in
//! [`Known`] and asks again. A final step carries its [`Tally`], which the
//! driver applies once.

use std::net::IpAddr;

use crate::announce::AnnounceRequest;
use crate::config::{ConfigError, TrackerConfig, TrackerMode};
use crate::failure::Failure;
use crate::peer::{InfoHash, PeerId};
use crate::query::QueryPairs;
use crate::response::{self, PeerListFormat};
use crate::scrape::ScrapeRequest;
use crate::swarm::PeerAnnounce;
use crate::wire::{Account, SwarmAnnounce};

/// The tracker's two routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Announce,
    Scrape,
}

/// What one request adds to the isolate's counts (`stats::Counts`): its
/// route and, for a refusal, why.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub route: Option<Route>,
    pub failure: Option<Failure>,
}

impl Tally {
    /// A failure found after admission (a swarm, KV or D1 fault).
    pub fn failure(failure: Failure) -> Tally {
        Tally { route: None, failure: Some(failure) }
    }

    /// Whether the refusal is worth a debug line: the client's own fault,
    /// except the rate limit (whose clients would flood the log).
    pub fn logged_refusal(&self) -> Option<Failure> {
        self.failure.filter(|f| !f.is_server_side() && *f != Failure::RateLimited)
    }
}

/// The request as the driver read it: the raw path and query (never
/// decoded through UTF-8), the raw method, whether it asks for a WebSocket
/// and the client's address.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub path: &'a str,
    pub query: &'a str,
    pub method: &'a str,
    pub websocket: bool,
    pub remote: IpAddr,
}

/// The outcome of a lookup the driver did for a step.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Lookup<T> {
    /// Not asked yet.
    #[default]
    Unasked,
    /// The store could not be read (the tracker's fault).
    Failed,
    /// Found, or `None`: there is none.
    Done(Option<T>),
}

/// A passkey's owner as the private-mode lookup found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct User {
    pub user: u64,
    pub banned: bool,
    pub may_leech: bool,
}

/// A registered torrent as the private-mode lookup found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Registered {
    pub freeleech: bool,
}

/// What the driver has found out so far.
#[derive(Debug, Clone, Copy)]
pub struct Known {
    /// The rate limiter's verdict: `None` until asked, then the seconds to
    /// wait when over the limit.
    pub limit: Option<Option<u32>>,
    /// Whether a peer id is banned, or `None` while the ban list is not loaded.
    pub client_banned: fn(&PeerId) -> Option<bool>,
    pub user: Lookup<User>,
    pub torrent: Lookup<Registered>,
}

impl Known {
    pub fn new(client_banned: fn(&PeerId) -> Option<bool>) -> Known {
        Known { limit: None, client_banned, user: Lookup::Unasked, torrent: Lookup::Unasked }
    }
}

/// What the driver does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Answer with this bencoded body (status 405 also sends `allow: GET, HEAD`).
    Answer { status: u16, body: Vec<u8>, tally: Tally },
    /// Ask the rate limiter (per client address), set `Known::limit`.
    NeedRateLimit,
    /// Load the client ban list, so that `Known::client_banned` answers.
    NeedClientBans,
    /// Private mode: look up the passkey's owner into `Known::user`.
    NeedUser { passkey: String },
    /// Private mode: look up the torrent into `Known::torrent`.
    NeedTorrent { hash: InfoHash },
    /// A public WebSocket upgrade: open the socket (nothing is counted).
    OpenSocket,
    /// Send this message to the swarm of `msg.info_hash`.
    Forward { msg: SwarmAnnounce, tally: Tally },
    /// Answer with these torrents' counters (none: a full scrape).
    Scrape { hashes: Vec<InfoHash>, tally: Tally },
}

/// The limiters count over 60 s: a client over the limit retries after that.
pub const RATE_LIMIT_WAIT: u32 = 60;

const NOT_FOUND: &str = "not found: the announce URL is /announce, scrape is /scrape";
const PUBLIC_SOCKETS_ONLY: &str = "the WebSocket tracker exists in public mode only";
const TWO_PASSKEYS: &str = "two different passkeys (in the path and in the query)";

/// The next step for `req`, given the configuration and what is known.
pub fn admit(req: &Request, config: Result<&TrackerConfig, &ConfigError>, known: &Known) -> Step {
    let Some((route, path_passkey)) = route_of(req.path) else {
        return Step::Answer { status: 404, body: response::failure(NOT_FOUND), tally: Tally::default() };
    };
    let websocket = route == Route::Announce && req.websocket;
    // A WebSocket upgrade opens a socket; its frames are not HTTP announces.
    let tally = Tally { route: (!websocket).then_some(route), failure: None };
    if !matches!(req.method, "GET" | "HEAD") {
        return refuse(tally, Failure::MethodNotAllowed).with_status(405);
    }
    let Some(limit) = known.limit else { return Step::NeedRateLimit };
    if let Some(wait) = limit {
        let body = response::failure_retry(Failure::RateLimited.text(), wait);
        return Step::Answer { status: 200, body, tally: Tally { failure: Some(Failure::RateLimited), ..tally } };
    }
    let config = match config {
        Ok(config) => config,
        Err(e) => return fail(tally, Failure::Misconfigured, &format!("{}: {e}", Failure::Misconfigured.text())),
    };
    if websocket {
        return match config.mode {
            TrackerMode::Public => Step::OpenSocket,
            TrackerMode::Private => Step::Answer { status: 400, body: response::failure(PUBLIC_SOCKETS_ONLY), tally },
        };
    }
    let query = match QueryPairs::parse(req.query.as_bytes()) {
        Ok(q) => q,
        Err(e) => return fail(tally, Failure::InvalidQuery, &e.to_string()),
    };
    let passkey = match query.only("passkey") {
        Ok(p) => p.map(|p| String::from_utf8_lossy(p).into_owned()),
        Err(e) => return answer(tally, &e.to_string()),
    };
    if matches!((path_passkey, &passkey), (Some(a), Some(b)) if a != b) {
        return answer(tally, TWO_PASSKEYS);
    }
    let passkey = passkey.or_else(|| path_passkey.map(str::to_string));
    match route {
        Route::Announce => admit_announce(req, config, known, &query, passkey, tally),
        Route::Scrape => admit_scrape(config, known, &query, passkey, tally),
    }
}

/// The route and the passkey in the path, or `None`: not a tracker path.
/// `/announce/<passkey>` is the private-mode form clients accept on
/// localhost too.
fn route_of(path: &str) -> Option<(Route, Option<&str>)> {
    match path {
        "/announce" | "/announce.php" => Some((Route::Announce, None)),
        "/scrape" | "/scrape.php" => Some((Route::Scrape, None)),
        p => {
            let (route, key) = match p.strip_prefix("/announce/") {
                Some(key) => (Route::Announce, key),
                None => (Route::Scrape, p.strip_prefix("/scrape/")?),
            };
            (!key.contains('/')).then_some((route, Some(key)))
        }
    }
}

fn admit_announce(
    req: &Request,
    config: &TrackerConfig,
    known: &Known,
    query: &QueryPairs,
    passkey: Option<String>,
    tally: Tally,
) -> Step {
    let announce = match AnnounceRequest::parse(query) {
        Ok(a) => a,
        Err(e) => return fail(tally, Failure::InvalidAnnounce, &e.to_string()),
    };
    match (known.client_banned)(&announce.peer_id) {
        None => return Step::NeedClientBans,
        Some(true) => return refuse(tally, Failure::ClientBanned),
        Some(false) => {}
    }
    let account = match config.mode {
        TrackerMode::Public => None,
        TrackerMode::Private => match private_account(known, passkey, &announce.info_hash) {
            Ok(account) => Some(account),
            Err(halt) => return halt.step(tally),
        },
    };
    Step::Forward { msg: swarm_message(&announce, req.remote, config, account), tally }
}

fn admit_scrape(config: &TrackerConfig, known: &Known, query: &QueryPairs, passkey: Option<String>, tally: Tally) -> Step {
    if config.mode == TrackerMode::Private {
        if let Err(halt) = private_user(known, passkey) {
            return halt.step(tally);
        }
    }
    match ScrapeRequest::parse(query, config.scrape_max, config.full_scrape) {
        Ok(r) => Step::Scrape { hashes: r.info_hashes, tally },
        Err(e) => fail(tally, Failure::InvalidScrape, &e.to_string()),
    }
}

/// Why private mode's checks stopped: a lookup to do, or a refusal.
enum Halt {
    NeedUser(String),
    NeedTorrent(InfoHash),
    Refused(Failure),
}

impl Halt {
    fn step(self, tally: Tally) -> Step {
        match self {
            Halt::NeedUser(passkey) => Step::NeedUser { passkey },
            Halt::NeedTorrent(hash) => Step::NeedTorrent { hash },
            // A store that could not be read: answered with `retry in`.
            Halt::Refused(failure) if failure.is_server_side() => Step::Answer {
                status: 200,
                body: crate::unavailable::answer(failure),
                tally: Tally { failure: Some(failure), ..tally },
            },
            Halt::Refused(failure) => refuse(tally, failure),
        }
    }
}

/// Private mode: the passkey's owner, or why not yet.
fn private_user(known: &Known, passkey: Option<String>) -> Result<User, Halt> {
    let Some(passkey) = passkey else { return Err(Halt::Refused(Failure::MissingPasskey)) };
    match known.user {
        Lookup::Unasked => Err(Halt::NeedUser(passkey)),
        Lookup::Failed => Err(Halt::Refused(Failure::AccountLookupFailed)),
        Lookup::Done(None) => Err(Halt::Refused(Failure::UnknownPasskey)),
        Lookup::Done(Some(u)) if u.banned => Err(Halt::Refused(Failure::AccountBanned)),
        Lookup::Done(Some(u)) => Ok(u),
    }
}

/// Private mode: who is announcing and what they may do, or why not yet.
fn private_account(known: &Known, passkey: Option<String>, hash: &InfoHash) -> Result<Account, Halt> {
    let user = private_user(known, passkey)?;
    match known.torrent {
        Lookup::Unasked => Err(Halt::NeedTorrent(*hash)),
        Lookup::Failed => Err(Halt::Refused(Failure::AccountLookupFailed)),
        Lookup::Done(None) => Err(Halt::Refused(Failure::UnregisteredTorrent)),
        Lookup::Done(Some(t)) => Ok(Account { user: user.user, may_leech: user.may_leech, freeleech: t.freeleech }),
    }
}

/// What the swarm's object is asked: the validated announce, with the
/// address it will list and the numwant the configuration allows.
pub fn swarm_message(announce: &AnnounceRequest, remote: IpAddr, config: &TrackerConfig, account: Option<Account>) -> SwarmAnnounce {
    let addr = announce.peer_addr(remote, config.trust_client_ip);
    SwarmAnnounce {
        info_hash: announce.info_hash,
        peer: PeerAnnounce {
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

/// A failure reason without a counted failure (the route is still counted).
fn answer(tally: Tally, reason: &str) -> Step {
    Step::Answer { status: 200, body: response::failure(reason), tally }
}

/// A refusal counted by `failure`, with the request's own words.
fn fail(tally: Tally, failure: Failure, reason: &str) -> Step {
    Step::Answer { status: 200, body: response::failure(reason), tally: Tally { failure: Some(failure), ..tally } }
}

/// A refusal with its reason's own text.
fn refuse(tally: Tally, failure: Failure) -> Step {
    fail(tally, failure, failure.text())
}

impl Step {
    fn with_status(self, status: u16) -> Step {
        match self {
            Step::Answer { body, tally, .. } => Step::Answer { status, body, tally },
            step => step,
        }
    }
}

#[cfg(test)]
#[path = "admission_tests.rs"]
mod tests;
