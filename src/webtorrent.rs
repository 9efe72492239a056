//! The WebTorrent tracker protocol: JSON frames over a WebSocket, as the npm
//! `bittorrent-tracker` client and webtorrent speak it, and the messages
//! between the socket gateways and the swarms that relay it.
//!
//! A browser peer keeps one socket to `/announce` and announces any number
//! of torrents over it. Each announce carries up to a few WebRTC offers; the
//! tracker hands each offer to one other WebSocket peer of the swarm, and
//! routes that peer's answer back to the offering socket. Info hashes and
//! peer ids are "binary strings": one character per byte (U+0000..U+00FF).
//!
//! Sockets live in `SocketGateway` objects (sharded); a swarm records where
//! each of its WebSocket peers is ([`SocketRef`]) so a gateway can deliver
//! to a socket held by another gateway. Nothing here touches the runtime.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::announce::AnnounceEvent;
use crate::peer::{InfoHash, PeerAddr, PeerId};
use crate::swarm::SwarmCounters;

/// Largest frame accepted from a client. Five offers with their SDP are
/// 10-20 KB; anything near this size is not a tracker message.
pub const MAX_FRAME: usize = 64 * 1024;

/// Offers beyond this many in one announce are ignored (clients send 5 at
/// most; `bittorrent-tracker`'s server caps at 82).
pub const MAX_OFFERS: usize = 10;

/// Torrents one socket may announce: the socket's membership list rides in
/// its hibernation attachment, which the runtime caps at 2 KB.
pub const MAX_TORRENTS_PER_SOCKET: usize = 40;

/// Where a WebSocket peer is: which gateway shard holds its socket, and the
/// socket's tag there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SocketRef {
    pub gateway: u16,
    pub socket: u64,
}

impl SocketRef {
    /// The hibernation tag of the socket in its gateway.
    pub fn tag(&self) -> String {
        format!("{:016x}", self.socket)
    }

    pub fn from_tag(gateway: u16, tag: &str) -> Option<Self> {
        (tag.len() == 16).then_some(())?;
        Some(SocketRef { gateway, socket: u64::from_str_radix(tag, 16).ok()? })
    }

    /// The swarm keeps WebSocket peers in a [`crate::swarm::Swarm`] of their
    /// own, whose "address" is this location: gateway (2 bytes) and socket
    /// (8 bytes) in the address, the rest zero. Never handed to HTTP peers.
    pub fn to_addr(self) -> PeerAddr {
        let mut ip = [0u8; 16];
        ip[..2].copy_from_slice(&self.gateway.to_be_bytes());
        ip[2..10].copy_from_slice(&self.socket.to_be_bytes());
        PeerAddr::new(std::net::Ipv6Addr::from(ip).into(), 0)
    }

    pub fn from_addr(addr: &PeerAddr) -> Self {
        let b = addr.encode();
        SocketRef {
            gateway: u16::from_be_bytes([b[0], b[1]]),
            socket: u64::from_be_bytes(b[2..10].try_into().unwrap_or_default()),
        }
    }
}

/// One WebRTC offer from an announcing peer.
#[derive(Debug, Clone, PartialEq)]
pub struct Offer {
    pub offer_id: [u8; 20],
    /// The SDP object, relayed as the client sent it.
    pub offer: Value,
}

#[derive(Debug, Clone, PartialEq)]
pub struct WsAnnounce {
    pub info_hash: InfoHash,
    pub peer_id: PeerId,
    pub event: AnnounceEvent,
    /// Bytes left; `u64::MAX` when the client sent none (a leecher).
    pub left: u64,
    pub offers: Vec<Offer>,
}

/// An answer to a relayed offer, for the peer that made it.
#[derive(Debug, Clone, PartialEq)]
pub struct WsAnswer {
    pub info_hash: InfoHash,
    pub peer_id: PeerId,
    pub to_peer_id: PeerId,
    pub offer_id: [u8; 20],
    pub answer: Value,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ClientMessage {
    Announce(WsAnnounce),
    Answer(WsAnswer),
    /// Empty: every torrent (a full scrape).
    Scrape(Vec<InfoHash>),
}

/// Why a frame was refused; sent back as a `failure reason` frame.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProtocolError {
    pub reason: String,
    /// `announce` or `scrape` when the frame said so: the client only
    /// reports failures that carry a known action (others close its socket).
    pub action: Option<&'static str>,
    pub info_hash: Option<InfoHash>,
    /// Minutes before the client should try again (as BEP 31 `retry in`),
    /// when the tracker itself failed.
    pub retry_in: Option<u32>,
}

impl ProtocolError {
    fn new(reason: impl Into<String>) -> Self {
        ProtocolError { reason: reason.into(), ..ProtocolError::default() }
    }

    /// The error frame for the client.
    pub fn frame(&self) -> String {
        let mut m = Map::new();
        if let Some(action) = self.action {
            m.insert("action".into(), action.into());
        }
        if let Some(hash) = &self.info_hash {
            m.insert("info_hash".into(), binary_string(&hash.0).into());
        }
        m.insert("failure reason".into(), self.reason.clone().into());
        if let Some(minutes) = self.retry_in {
            m.insert("retry in".into(), minutes.into());
        }
        Value::Object(m).to_string()
    }
}

/// Decodes a binary string of exactly 20 bytes.
pub fn binary_20(s: &str) -> Option<[u8; 20]> {
    let mut out = [0u8; 20];
    let mut n = 0;
    for c in s.chars() {
        let b = u8::try_from(u32::from(c)).ok()?;
        *out.get_mut(n)? = b;
        n += 1;
    }
    (n == 20).then_some(out)
}

/// Encodes bytes as a binary string (one char per byte).
pub fn binary_string(b: &[u8]) -> String {
    b.iter().map(|&b| char::from(b)).collect()
}

impl ClientMessage {
    /// Parses one text frame; never panics, whatever the client sent.
    pub fn parse(frame: &str) -> Result<Self, ProtocolError> {
        if frame.len() > MAX_FRAME {
            return Err(ProtocolError::new(format!("message too large (max {MAX_FRAME} bytes)")));
        }
        let v: Value = serde_json::from_str(frame).map_err(|_| ProtocolError::new("message is not JSON"))?;
        let Value::Object(m) = v else {
            return Err(ProtocolError::new("message is not a JSON object"));
        };
        match m.get("action").and_then(Value::as_str) {
            Some("announce") => parse_announce(&m),
            Some("scrape") => parse_scrape(&m),
            Some(other) => Err(ProtocolError::new(format!("invalid action in WS request: {}", truncate(other)))),
            None => Err(ProtocolError::new("missing 'action'")),
        }
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(32).collect()
}

fn field_20(m: &Map<String, Value>, name: &str) -> Option<[u8; 20]> {
    m.get(name).and_then(Value::as_str).and_then(binary_20)
}

fn parse_announce(m: &Map<String, Value>) -> Result<ClientMessage, ProtocolError> {
    let fail = |reason: &str, info_hash: Option<InfoHash>| ProtocolError {
        reason: reason.into(),
        action: Some("announce"),
        info_hash,
        retry_in: None,
    };
    let info_hash = InfoHash(field_20(m, "info_hash").ok_or_else(|| fail("invalid info_hash", None))?);
    let peer_id = PeerId(field_20(m, "peer_id").ok_or_else(|| fail("invalid peer_id", Some(info_hash)))?);
    if let Some(answer) = m.get("answer").filter(|a| !a.is_null()) {
        let to_peer_id = field_20(m, "to_peer_id")
            .ok_or_else(|| fail("invalid `to_peer_id` (required with `answer`)", Some(info_hash)))?;
        let offer_id = field_20(m, "offer_id").ok_or_else(|| fail("invalid `offer_id`", Some(info_hash)))?;
        return Ok(ClientMessage::Answer(WsAnswer {
            info_hash,
            peer_id,
            to_peer_id: PeerId(to_peer_id),
            offer_id,
            answer: answer.clone(),
        }));
    }
    let event = match m.get("event") {
        None | Some(Value::Null) => AnnounceEvent::Update,
        Some(Value::String(s)) => match s.as_str() {
            "started" => AnnounceEvent::Started,
            "completed" => AnnounceEvent::Completed,
            "stopped" => AnnounceEvent::Stopped,
            "update" | "empty" | "paused" | "" => AnnounceEvent::Update,
            _ => return Err(fail("invalid event", Some(info_hash))),
        },
        Some(_) => return Err(fail("invalid event", Some(info_hash))),
    };
    // As the reference server does: a `left` that is not a number is "unknown", a leecher.
    let left = match m.get("left") {
        Some(Value::Number(n)) => n.as_u64().or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64)),
        Some(Value::String(s)) => s.trim().parse::<u64>().ok(),
        _ => None,
    }
    .unwrap_or(u64::MAX);
    let offers = match m.get("offers") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(list)) => {
            let mut offers = Vec::new();
            for o in list.iter().take(MAX_OFFERS) {
                let offer_id = o.get("offer_id").and_then(Value::as_str).and_then(binary_20);
                let offer = o.get("offer").filter(|v| v.is_object());
                match (offer_id, offer) {
                    (Some(offer_id), Some(offer)) => offers.push(Offer { offer_id, offer: offer.clone() }),
                    _ => return Err(fail("invalid offer: needs `offer_id` (20 bytes) and `offer`", Some(info_hash))),
                }
            }
            offers
        }
        Some(_) => return Err(fail("invalid `offers`: expected a list", Some(info_hash))),
    };
    Ok(ClientMessage::Announce(WsAnnounce { info_hash, peer_id, event, left, offers }))
}

fn parse_scrape(m: &Map<String, Value>) -> Result<ClientMessage, ProtocolError> {
    let fail = |reason: String| ProtocolError { reason, action: Some("scrape"), ..ProtocolError::default() };
    let hashes: Vec<&Value> = match m.get("info_hash") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(list)) => list.iter().collect(),
        Some(one) => vec![one],
    };
    let mut out: Vec<InfoHash> = Vec::new();
    for h in hashes {
        let hash = InfoHash(h.as_str().and_then(binary_20).ok_or_else(|| fail("invalid info_hash".into()))?);
        if !out.contains(&hash) {
            out.push(hash);
        }
    }
    Ok(ClientMessage::Scrape(out))
}

/// The HTTP scrape's limits (`SCRAPE_MAX`, `FULL_SCRAPE`) for a scrape frame.
pub fn check_scrape(hashes: &[InfoHash], max: u32, full_scrape: bool) -> Result<(), ProtocolError> {
    let fail = |reason: String| Err(ProtocolError { reason, action: Some("scrape"), ..ProtocolError::default() });
    if hashes.len() > max as usize {
        return fail(crate::scrape::ScrapeError::TooMany { max }.to_string());
    }
    if hashes.is_empty() && !full_scrape {
        return fail(crate::scrape::ScrapeError::FullScrapeDisabled.to_string());
    }
    Ok(())
}

/// The interval WebSocket peers re-announce at: a fifth of the HTTP one,
/// as the reference server does (offers are only made on an announce).
pub fn ws_interval(http_interval: u32) -> u32 {
    http_interval.div_ceil(5).max(1)
}

/// The answer to an announce (no peer list: peers come as relayed offers).
pub fn announce_frame(info_hash: &InfoHash, counters: SwarmCounters, interval: u32) -> String {
    json!({
        "action": "announce",
        "interval": interval,
        "info_hash": binary_string(&info_hash.0),
        "complete": counters.complete,
        "incomplete": counters.incomplete,
    })
    .to_string()
}

/// An offer relayed to a peer of the swarm.
pub fn offer_frame(info_hash: &InfoHash, from: &PeerId, offer: &Offer) -> String {
    json!({
        "action": "announce",
        "offer": offer.offer,
        "offer_id": binary_string(&offer.offer_id),
        "peer_id": binary_string(&from.0),
        "info_hash": binary_string(&info_hash.0),
    })
    .to_string()
}

/// An answer relayed back to the offering peer.
pub fn answer_frame(a: &WsAnswer) -> String {
    json!({
        "action": "announce",
        "answer": a.answer,
        "offer_id": binary_string(&a.offer_id),
        "peer_id": binary_string(&a.peer_id.0),
        "info_hash": binary_string(&a.info_hash.0),
    })
    .to_string()
}

pub fn scrape_frame(entries: &[(InfoHash, SwarmCounters)], interval: u32) -> String {
    let mut files = Map::new();
    for (hash, c) in entries {
        files.insert(
            binary_string(&hash.0),
            json!({ "complete": c.complete, "incomplete": c.incomplete, "downloaded": c.downloaded }),
        );
    }
    json!({ "action": "scrape", "files": files, "flags": { "min_request_interval": interval } }).to_string()
}

/// A frame for one peer's socket. It names the peer and its torrent so
/// that, if the socket is gone (a restart dropped it without a close), the
/// gateway can tell the swarm to forget that location.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    pub to: SocketRef,
    pub info_hash: [u8; 20],
    pub peer_id: [u8; 20],
    pub frame: String,
}

impl Delivery {
    /// What the swarm must hear when this delivery found no socket.
    pub fn leave(&self) -> SwarmWsRequest {
        SwarmWsRequest::Leave { info_hash: self.info_hash, peer_id: self.peer_id, at: self.to }
    }
}

/// Offer `i` goes to target `i`; deliveries are grouped by gateway so each
/// gateway costs one request whatever the number of offers it receives.
pub fn plan_offers(
    info_hash: &InfoHash,
    from: &PeerId,
    offers: &[Offer],
    targets: &[(PeerId, SocketRef)],
) -> BTreeMap<u16, Vec<Delivery>> {
    let mut plan: BTreeMap<u16, Vec<Delivery>> = BTreeMap::new();
    for (offer, (peer, at)) in offers.iter().zip(targets) {
        plan.entry(at.gateway).or_default().push(Delivery {
            to: *at,
            info_hash: info_hash.0,
            peer_id: peer.0,
            frame: offer_frame(info_hash, from, offer),
        });
    }
    plan
}

/// What a gateway asks a swarm (JSON body of a request to the swarm's object).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SwarmWsRequest {
    /// A WebSocket peer announces; `numwant` other WebSocket peers are
    /// wanted for its offers.
    Announce { info_hash: [u8; 20], peer_id: [u8; 20], at: SocketRef, left: u64, event: u8, numwant: u8 },
    /// Where is this peer's socket (to route an answer)?
    Locate { info_hash: [u8; 20], peer_id: [u8; 20] },
    /// The socket `at` closed: the peer leaves if the swarm still has it there.
    Leave { info_hash: [u8; 20], peer_id: [u8; 20], at: SocketRef },
}

/// A swarm's answer to a [`SwarmWsRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct SwarmWsReply {
    pub complete: u64,
    pub incomplete: u64,
    /// Announce: the peers to send the offers to. Locate: the peer, if known.
    pub targets: Vec<([u8; 20], SocketRef)>,
}

/// A socket's hibernation attachment: its gateway, its tag, and the
/// (info hash, peer id) pairs it announced, so a close can leave each swarm
/// even after the gateway slept and forgot everything.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SocketInfo {
    pub gateway: u16,
    pub tag: String,
    /// 40 bytes per membership: info hash, then peer id.
    #[serde(with = "serde_bytes")]
    pub memberships: Vec<u8>,
}

impl SocketInfo {
    pub fn at(&self) -> Option<SocketRef> {
        SocketRef::from_tag(self.gateway, &self.tag)
    }

    pub fn memberships(&self) -> impl Iterator<Item = (InfoHash, PeerId)> + '_ {
        self.memberships.chunks_exact(40).filter_map(|c| {
            Some((InfoHash(c[..20].try_into().ok()?), PeerId(c[20..].try_into().ok()?)))
        })
    }

    /// Records a membership; `Ok(true)` if it is new (the attachment must
    /// be written again), `Err` if the socket announces too many torrents.
    pub fn join(&mut self, hash: &InfoHash, peer: &PeerId) -> Result<bool, ProtocolError> {
        if self.memberships().any(|(h, p)| h == *hash && p == *peer) {
            return Ok(false);
        }
        if self.memberships.len() / 40 >= MAX_TORRENTS_PER_SOCKET {
            return Err(ProtocolError {
                reason: format!("too many torrents on one socket (max {MAX_TORRENTS_PER_SOCKET})"),
                action: Some("announce"),
                info_hash: Some(*hash),
                retry_in: None,
            });
        }
        self.memberships.extend_from_slice(&hash.0);
        self.memberships.extend_from_slice(&peer.0);
        Ok(true)
    }

    /// Forgets a membership; `true` if there was one.
    pub fn leave(&mut self, hash: &InfoHash, peer: &PeerId) -> bool {
        let before = self.memberships.len();
        let kept: Vec<u8> = self
            .memberships
            .chunks_exact(40)
            .filter(|c| !(c[..20] == hash.0 && c[20..] == peer.0))
            .flatten()
            .copied()
            .collect();
        self.memberships = kept;
        self.memberships.len() != before
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bin(b: u8) -> String {
        binary_string(&[b; 20])
    }

    #[test]
    fn binary_strings_round_trip_every_byte() {
        let bytes: Vec<u8> = (236..=255).collect();
        let s = binary_string(&bytes);
        assert_eq!(binary_20(&s).map(|b| b.to_vec()), Some(bytes));
        assert_eq!(binary_20("short"), None);
        assert_eq!(binary_20(&"a".repeat(21)), None);
        // A character above U+00FF is not a byte.
        assert_eq!(binary_20(&format!("{}\u{100}", "a".repeat(19))), None);
    }

    #[test]
    fn parses_an_announce_with_offers_as_the_npm_client_sends_it() {
        let frame = json!({
            "action": "announce", "info_hash": bin(0xe9), "peer_id": bin(0x2d),
            "numwant": 2, "uploaded": 0, "downloaded": 0, "left": 1000, "event": "started",
            "offers": [
                { "offer": { "type": "offer", "sdp": "v=0..." }, "offer_id": bin(1) },
                { "offer": { "type": "offer", "sdp": "v=0,,," }, "offer_id": bin(2) },
            ],
        })
        .to_string();
        let ClientMessage::Announce(a) = ClientMessage::parse(&frame).unwrap() else { panic!("not an announce") };
        assert_eq!(a.info_hash, InfoHash([0xe9; 20]));
        assert_eq!(a.peer_id, PeerId([0x2d; 20]));
        assert_eq!((a.event, a.left), (AnnounceEvent::Started, 1000));
        assert_eq!(a.offers.len(), 2);
        assert_eq!(a.offers[1].offer_id, [2; 20]);
        assert_eq!(a.offers[1].offer["sdp"], "v=0,,,");
    }

    #[test]
    fn parses_answers_and_scrapes() {
        let frame = json!({
            "action": "announce", "info_hash": bin(1), "peer_id": bin(2), "to_peer_id": bin(3),
            "offer_id": bin(4), "answer": { "type": "answer", "sdp": "x" },
        })
        .to_string();
        let ClientMessage::Answer(a) = ClientMessage::parse(&frame).unwrap() else { panic!("not an answer") };
        assert_eq!((a.to_peer_id, a.offer_id), (PeerId([3; 20]), [4; 20]));
        let relayed: Value = serde_json::from_str(&answer_frame(&a)).unwrap();
        assert_eq!(relayed["peer_id"], bin(2));
        assert_eq!(relayed["offer_id"], bin(4));
        assert_eq!(relayed["answer"]["sdp"], "x");

        let one = json!({ "action": "scrape", "info_hash": bin(7) }).to_string();
        assert_eq!(ClientMessage::parse(&one), Ok(ClientMessage::Scrape(vec![InfoHash([7; 20])])));
        let many = json!({ "action": "scrape", "info_hash": [bin(7), bin(8), bin(7)] }).to_string();
        assert_eq!(ClientMessage::parse(&many), Ok(ClientMessage::Scrape(vec![InfoHash([7; 20]), InfoHash([8; 20])])));
        assert_eq!(ClientMessage::parse(r#"{"action":"scrape"}"#), Ok(ClientMessage::Scrape(vec![])));
    }

    #[test]
    fn left_defaults_to_leecher_and_events_map() {
        let parse = |extra: Value| {
            let mut m = json!({ "action": "announce", "info_hash": bin(1), "peer_id": bin(2) });
            m.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
            ClientMessage::parse(&m.to_string())
        };
        let Ok(ClientMessage::Announce(a)) = parse(json!({})) else { panic!() };
        assert_eq!((a.left, a.event), (u64::MAX, AnnounceEvent::Update));
        let Ok(ClientMessage::Announce(a)) = parse(json!({ "left": "0", "event": "completed" })) else { panic!() };
        assert_eq!((a.left, a.event), (0, AnnounceEvent::Completed));
        let Ok(ClientMessage::Announce(a)) = parse(json!({ "left": null, "event": "paused" })) else { panic!() };
        assert_eq!((a.left, a.event), (u64::MAX, AnnounceEvent::Update));
        assert_eq!(parse(json!({ "event": "bogus" })).unwrap_err().reason, "invalid event");
        assert_eq!(parse(json!({ "offers": "no" })).unwrap_err().reason, "invalid `offers`: expected a list");
        assert!(parse(json!({ "offers": [{ "offer_id": 5 }] })).is_err());
        // Extra offers are ignored rather than relayed.
        let offers: Vec<Value> = (0..20).map(|i| json!({ "offer": {}, "offer_id": bin(i) })).collect();
        let Ok(ClientMessage::Announce(a)) = parse(json!({ "offers": offers })) else { panic!() };
        assert_eq!(a.offers.len(), MAX_OFFERS);
    }

    #[test]
    fn bad_frames_get_a_reason_and_known_context() {
        let reason = |f: &str| ClientMessage::parse(f).unwrap_err();
        assert_eq!(reason("nope").reason, "message is not JSON");
        assert_eq!(reason("[1,2]").reason, "message is not a JSON object");
        assert_eq!(reason("{}").reason, "missing 'action'");
        assert_eq!(reason(r#"{"action":"dance"}"#).reason, "invalid action in WS request: dance");
        assert_eq!(reason(&"x".repeat(MAX_FRAME + 1)).reason, format!("message too large (max {MAX_FRAME} bytes)"));
        let e = reason(&json!({ "action": "announce", "info_hash": bin(1), "peer_id": 7 }).to_string());
        assert_eq!(e.action, Some("announce"));
        assert_eq!(e.info_hash, Some(InfoHash([1; 20])));
        let frame: Value = serde_json::from_str(&e.frame()).unwrap();
        assert_eq!(frame["failure reason"], "invalid peer_id");
        assert_eq!(frame["info_hash"], bin(1));
        assert_eq!(reason(r#"{"action":"scrape","info_hash":5}"#).action, Some("scrape"));
    }

    #[test]
    fn scrape_frames_follow_the_http_scrape_limits() {
        let hashes: Vec<InfoHash> = (0..3).map(|i| InfoHash([i; 20])).collect();
        assert_eq!(check_scrape(&hashes, 3, false), Ok(()));
        assert_eq!(check_scrape(&hashes, 2, false).unwrap_err().reason, "too many info_hash values (max 2 per scrape)");
        assert_eq!(check_scrape(&[], 2, true), Ok(()));
        assert_eq!(check_scrape(&[], 2, false).unwrap_err().action, Some("scrape"));
    }

    #[test]
    fn offers_are_planned_one_per_target_grouped_by_gateway() {
        let offers: Vec<Offer> = (0..3).map(|i| Offer { offer_id: [i; 20], offer: json!({ "sdp": i }) }).collect();
        let targets = [
            (PeerId([1; 20]), SocketRef { gateway: 4, socket: 10 }),
            (PeerId([2; 20]), SocketRef { gateway: 9, socket: 11 }),
            (PeerId([3; 20]), SocketRef { gateway: 4, socket: 12 }),
        ];
        let plan = plan_offers(&InfoHash([5; 20]), &PeerId([6; 20]), &offers, &targets[..2]);
        assert_eq!(plan.len(), 2);
        let plan = plan_offers(&InfoHash([5; 20]), &PeerId([6; 20]), &offers, &targets);
        assert_eq!(plan[&4].iter().map(|d| d.to.socket).collect::<Vec<_>>(), [10, 12]);
        assert_eq!(
            plan[&9][0].leave(),
            SwarmWsRequest::Leave { info_hash: [5; 20], peer_id: [2; 20], at: SocketRef { gateway: 9, socket: 11 } }
        );
        let f: Value = serde_json::from_str(&plan[&4][1].frame).unwrap();
        assert_eq!(f["offer"]["sdp"], 2);
        assert_eq!(f["offer_id"], binary_string(&[2; 20]));
        assert_eq!(f["peer_id"], bin(6));
        assert_eq!(f["info_hash"], bin(5));
    }

    #[test]
    fn socket_locations_survive_the_address_encoding() {
        let at = SocketRef { gateway: 0xbeef, socket: u64::MAX - 3 };
        let addr = at.to_addr();
        assert!(!addr.is_ipv4());
        assert_eq!(SocketRef::from_addr(&addr), at);
        assert_eq!(SocketRef::from_tag(0xbeef, &at.tag()), Some(at));
        assert_eq!(SocketRef::from_tag(1, "xyz"), None);
    }

    #[test]
    fn socket_memberships_are_bounded_and_leave_cleanly() {
        let mut s = SocketInfo { gateway: 1, tag: "00000000000000aa".into(), memberships: vec![] };
        assert_eq!(s.join(&InfoHash([1; 20]), &PeerId([2; 20])), Ok(true));
        assert_eq!(s.join(&InfoHash([1; 20]), &PeerId([2; 20])), Ok(false));
        for i in 1..MAX_TORRENTS_PER_SOCKET {
            assert_eq!(s.join(&InfoHash([i as u8 + 1; 20]), &PeerId([2; 20])), Ok(true));
        }
        assert!(s.join(&InfoHash([200; 20]), &PeerId([2; 20])).is_err());
        assert!(s.leave(&InfoHash([1; 20]), &PeerId([2; 20])));
        assert!(!s.leave(&InfoHash([1; 20]), &PeerId([2; 20])));
        assert_eq!(s.memberships().count(), MAX_TORRENTS_PER_SOCKET - 1);
        assert_eq!(s.at(), Some(SocketRef { gateway: 1, socket: 0xaa }));
    }
}
