//! The admission pipeline: every step, and the tally of every refusal.

use super::*;
use crate::peer::PeerId;

const HASH: &str = "%ff%ff%ff%ff%ff%ff%ff%ff%ff%ff%ff%ff%ff%ff%ff%ff%ff%ff%ff%ff";
const PEER: &str = "-qB4520-abcdefghijkl";
const BANNED_PEER: &str = "-XX0001-abcdefghijkl";
const PASSKEY: &str = "0123456789abcdef0123456789abcdef";

fn announce_query(extra: &str) -> String {
    format!("info_hash={HASH}&peer_id={PEER}&port=6881&uploaded=1&downloaded=2&left=3{extra}")
}

fn req<'a>(path: &'a str, query: &'a str) -> Request<'a> {
    Request { path, query, method: "GET", websocket: false, remote: "10.0.0.1".parse().unwrap() }
}

fn bans(peer: &PeerId) -> Option<bool> {
    Some(peer.0.starts_with(b"-XX"))
}

fn public() -> TrackerConfig {
    TrackerConfig::from_lookup(|_| None).unwrap()
}

fn private() -> TrackerConfig {
    TrackerConfig::from_lookup(|n| (n == "TRACKER_MODE").then(|| "private".to_string())).unwrap()
}

/// Known after the limiter let the request through and with a loaded ban list.
fn known() -> Known {
    Known { limit: Some(None), ..Known::new(bans) }
}

fn member() -> Known {
    Known {
        user: Lookup::Done(Some(User { user: 7, banned: false, may_leech: true })),
        torrent: Lookup::Done(Some(Registered { freeleech: true })),
        ..known()
    }
}

const ANNOUNCE: Option<Route> = Some(Route::Announce);
const SCRAPE: Option<Route> = Some(Route::Scrape);

/// The status, failure reason text and tally of an answer.
fn answered(step: Step) -> (u16, String, Tally) {
    match step {
        Step::Answer { status, body, tally } => (status, String::from_utf8(body).unwrap(), tally),
        other => panic!("expected an answer, got {other:?}"),
    }
}

fn tally_of(step: Step) -> Tally {
    answered(step).2
}

fn refused(route: Option<Route>, failure: Failure) -> Tally {
    Tally { route, failure: Some(failure) }
}

#[test]
fn unknown_paths_get_a_404_and_count_nothing() {
    for path in ["/", "/nope", "/announce/a/b", "/scrape/x/y", "/announcex"] {
        let (status, text, tally) = answered(admit(&req(path, ""), Ok(&public()), &known()));
        assert_eq!(status, 404, "{path}");
        assert!(text.contains("not found"));
        assert_eq!(tally, Tally::default());
    }
}

#[test]
fn a_method_other_than_get_or_head_is_refused_before_the_limiter() {
    let r = Request { method: "POST", ..req("/announce", "") };
    let (status, _, tally) = answered(admit(&r, Ok(&public()), &Known::new(bans)));
    assert_eq!(status, 405);
    assert_eq!(tally, refused(ANNOUNCE, Failure::MethodNotAllowed));
    let r = Request { method: "HEAD", ..req("/scrape", "") };
    assert_eq!(admit(&r, Ok(&public()), &Known::new(bans)), Step::NeedRateLimit);
}

#[test]
fn the_limiter_is_asked_then_its_refusal_counted_with_retry_in() {
    let q = announce_query("");
    let r = req("/announce", &q);
    assert_eq!(admit(&r, Ok(&public()), &Known::new(bans)), Step::NeedRateLimit);
    let over = Known { limit: Some(Some(60)), ..Known::new(bans) };
    let (status, text, tally) = answered(admit(&r, Ok(&public()), &over));
    assert_eq!(status, 200);
    assert!(text.contains(Failure::RateLimited.text()) && text.contains("8:retry ini1e"), "{text}");
    assert_eq!(tally, refused(ANNOUNCE, Failure::RateLimited));
    assert_eq!(tally.logged_refusal(), None);
    assert_eq!(tally_of(admit(&req("/scrape", ""), Ok(&public()), &over)), refused(SCRAPE, Failure::RateLimited));
}

#[test]
fn a_bad_configuration_is_counted_as_misconfigured() {
    let e = ConfigError { name: "INTERVAL", value: "x".into() };
    let (_, text, tally) = answered(admit(&req("/announce", ""), Err(&e), &known()));
    assert!(text.contains("tracker misconfigured: invalid value 'x' for INTERVAL"), "{text}");
    assert_eq!(tally, refused(ANNOUNCE, Failure::Misconfigured));
    assert_eq!(tally.logged_refusal(), None);
}

#[test]
fn a_websocket_upgrade_opens_a_socket_in_public_mode_only_and_is_not_an_announce() {
    let r = Request { websocket: true, ..req("/announce", "") };
    assert_eq!(admit(&r, Ok(&public()), &known()), Step::OpenSocket);
    let (status, text, tally) = answered(admit(&r, Ok(&private()), &known()));
    assert_eq!((status, tally), (400, Tally::default()));
    assert!(text.contains("public mode only"));
    // A scrape never upgrades.
    let q = format!("info_hash={HASH}");
    let r = Request { websocket: true, ..req("/scrape", &q) };
    assert!(matches!(admit(&r, Ok(&public()), &known()), Step::Scrape { .. }));
}

#[test]
fn a_malformed_query_is_counted_as_invalid_query() {
    let tally = tally_of(admit(&req("/announce", "info_hash=%zz"), Ok(&public()), &known()));
    assert_eq!(tally, refused(ANNOUNCE, Failure::InvalidQuery));
    assert_eq!(tally.logged_refusal(), Some(Failure::InvalidQuery));
    assert_eq!(tally_of(admit(&req("/scrape", "a=%"), Ok(&public()), &known())), refused(SCRAPE, Failure::InvalidQuery));
}

#[test]
fn ambiguous_passkeys_are_refused_and_count_only_the_route() {
    let (_, text, tally) = answered(admit(&req("/announce", "passkey=a&passkey=b"), Ok(&public()), &known()));
    assert!(text.contains("passkey"), "{text}");
    assert_eq!(tally, Tally { route: ANNOUNCE, failure: None });
    let (_, text, tally) = answered(admit(&req("/scrape/a", "passkey=b"), Ok(&private()), &known()));
    assert!(text.contains("two different passkeys"), "{text}");
    assert_eq!(tally, Tally { route: SCRAPE, failure: None });
}

#[test]
fn an_invalid_announce_is_counted_as_invalid_announce() {
    let (_, text, tally) = answered(admit(&req("/announce", "info_hash=short"), Ok(&public()), &known()));
    assert!(text.contains("info_hash"), "{text}");
    assert_eq!(tally, refused(ANNOUNCE, Failure::InvalidAnnounce));
}

#[test]
fn the_ban_list_is_loaded_then_a_banned_client_refused() {
    let q = announce_query("").replace(PEER, BANNED_PEER);
    let r = req("/announce", &q);
    let unloaded = Known { limit: Some(None), ..Known::new(|_| None) };
    assert_eq!(admit(&r, Ok(&public()), &unloaded), Step::NeedClientBans);
    let (_, text, tally) = answered(admit(&r, Ok(&public()), &known()));
    assert!(text.contains(Failure::ClientBanned.text()));
    assert_eq!(tally, refused(ANNOUNCE, Failure::ClientBanned));
}

#[test]
fn a_public_announce_is_forwarded_with_its_tally() {
    let q = announce_query("&numwant=100000");
    let Step::Forward { msg, tally } = admit(&req("/announce.php", &q), Ok(&public()), &known()) else { panic!() };
    assert_eq!(tally, Tally { route: ANNOUNCE, failure: None });
    assert_eq!(msg.info_hash, InfoHash([0xff; 20]));
    assert_eq!(msg.peer.addr.port(), 6881);
    assert_eq!(msg.numwant as usize, public().numwant(Some(100_000)));
    assert_eq!(msg.account, None);
}

#[test]
fn a_private_announce_looks_up_the_user_then_the_torrent() {
    let q = announce_query("");
    let path = format!("/announce/{PASSKEY}");
    let r = req(&path, &q);
    assert_eq!(admit(&r, Ok(&private()), &known()), Step::NeedUser { passkey: PASSKEY.into() });
    let user_known = Known { torrent: Lookup::Unasked, ..member() };
    assert_eq!(admit(&r, Ok(&private()), &user_known), Step::NeedTorrent { hash: InfoHash([0xff; 20]) });
    let Step::Forward { msg, tally } = admit(&r, Ok(&private()), &member()) else { panic!() };
    assert_eq!(tally, Tally { route: ANNOUNCE, failure: None });
    assert_eq!(msg.account, Some(Account { user: 7, may_leech: true, freeleech: true }));
}

#[test]
fn every_private_refusal_is_counted_by_its_reason() {
    let q = announce_query("");
    let path = format!("/announce/{PASSKEY}");
    let r = req(&path, &q);
    let user = |u: Lookup<User>| Known { user: u, ..member() };
    let torrent = |t: Lookup<Registered>| Known { torrent: t, ..member() };
    let banned = User { user: 7, banned: true, may_leech: true };
    let cases = [
        (user(Lookup::Done(None)), Failure::UnknownPasskey),
        (user(Lookup::Done(Some(banned))), Failure::AccountBanned),
        (user(Lookup::Failed), Failure::AccountLookupFailed),
        (torrent(Lookup::Done(None)), Failure::UnregisteredTorrent),
        (torrent(Lookup::Failed), Failure::AccountLookupFailed),
    ];
    for (known, failure) in cases {
        let (_, text, tally) = answered(admit(&r, Ok(&private()), &known));
        assert_eq!(tally, refused(ANNOUNCE, failure));
        if failure == Failure::AccountLookupFailed {
            assert!(text.contains("retry in"), "{text}");
            assert_eq!(tally.logged_refusal(), None);
        } else {
            assert!(text.contains(failure.text()), "{text}");
        }
    }
    let (_, _, tally) = answered(admit(&req("/announce", &q), Ok(&private()), &member()));
    assert_eq!(tally, refused(ANNOUNCE, Failure::MissingPasskey));
}

#[test]
fn a_private_scrape_checks_the_member_before_the_query() {
    let path = format!("/scrape/{PASSKEY}");
    let r = req(&path, "info_hash=short");
    assert_eq!(admit(&r, Ok(&private()), &known()), Step::NeedUser { passkey: PASSKEY.into() });
    let unknown = Known { user: Lookup::Done(None), ..known() };
    assert_eq!(tally_of(admit(&r, Ok(&private()), &unknown)), refused(SCRAPE, Failure::UnknownPasskey));
    assert_eq!(tally_of(admit(&req("/scrape", ""), Ok(&private()), &known())), refused(SCRAPE, Failure::MissingPasskey));
    assert_eq!(tally_of(admit(&r, Ok(&private()), &member())), refused(SCRAPE, Failure::InvalidScrape));
}

#[test]
fn a_scrape_gives_its_torrents_or_a_full_scrape() {
    let q = format!("info_hash={HASH}&info_hash={HASH}");
    let step = admit(&req("/scrape", &q), Ok(&public()), &known());
    assert_eq!(step, Step::Scrape { hashes: vec![InfoHash([0xff; 20])], tally: Tally { route: SCRAPE, failure: None } });
    // Misspelled keys are a full scrape, which is off by default.
    let (_, text, tally) = answered(admit(&req("/scrape", "info_hashes=x"), Ok(&public()), &known()));
    assert!(text.contains("full scrape is disabled"), "{text}");
    assert_eq!(tally, refused(SCRAPE, Failure::InvalidScrape));
    let full = TrackerConfig { full_scrape: true, ..public() };
    let step = admit(&req("/scrape", ""), Ok(&full), &known());
    assert_eq!(step, Step::Scrape { hashes: vec![], tally: Tally { route: SCRAPE, failure: None } });
}
