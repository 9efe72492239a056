//! The WebTorrent tracker's sockets. A `SocketGateway` object (one of
//! [`GATEWAY_SHARDS`], picked at random per connection) accepts each
//! socket with the Hibernation API: the socket's tag is its id, its
//! attachment lists the torrents it announced, and the object keeps nothing
//! in memory, so an idle socket keeps no object awake and a woken object
//! has all it needs.
//!
//! Per frame: an announce is one request to the torrent's `SwarmObject`
//! (which records the peer and picks targets for its offers), then one
//! request per other gateway holding a target; an answer is one request to
//! the swarm (where is the offering peer?) and at most one to its gateway;
//! a scrape reads KV, or (`SWARM_SHARDS`) asks each torrent's shard, as an
//! HTTP scrape does. See the README's design notes for the costs.

use futures_util::future::join_all;
use worker::*;

use super::{counters_for, full_scrape, config_from, KV_BINDING};
use crate::announce::AnnounceEvent;
use crate::config::TrackerConfig;
use crate::peer::{InfoHash, PeerId};
use crate::stats::Failure;
use crate::unavailable;
use crate::webtorrent::{
    self, answer_frame, plan_offers, ClientMessage, Delivery, ProtocolError, SocketInfo, SocketRef, SwarmWsReply,
    SwarmWsRequest, WsAnnounce, WsAnswer,
};

pub const GATEWAYS_BINDING: &str = "GATEWAYS";

/// How many gateway objects share the sockets. More spreads the load of
/// busy trackers; fewer makes a relayed offer more often local (free).
pub const GATEWAY_SHARDS: u16 = 16;

/// Moved torrents a gateway instance remembers (then it starts over).
const MOVED_REMEMBERED: usize = 10_000;

pub fn gateway_name(shard: u16) -> String {
    format!("gateway-{shard}")
}

/// Hands a WebSocket upgrade of `/announce` to a random gateway.
pub async fn connect(req: &Request, env: &Env) -> Result<Response> {
    let mut r = [0u8; 2];
    let _ = getrandom::fill(&mut r);
    let shard = u16::from_le_bytes(r) % GATEWAY_SHARDS;
    let upgraded = async {
        let stub = env.durable_object(GATEWAYS_BINDING)?.id_from_name(&gateway_name(shard))?.get_stub()?;
        let url = format!("https://gateway/connect/{shard}");
        stub.fetch_with_request(super::internal_request(&url, "GET", None, Some(req.headers()))?).await
    }
    .await;
    match upgraded {
        Ok(resp) => Ok(resp),
        Err(e) => {
            console_error!("websocket upgrade on gateway {shard} failed: {e}");
            super::stats::count_failure(Failure::Other);
            super::bencoded(unavailable::answer(Failure::Other))
        }
    }
}

#[durable_object(websocket)]
pub struct SocketGateway {
    state: State,
    env: Env,
    config: TrackerConfig,
    /// Torrents this instance saw moved out of their shard
    /// (`SWARM_SHARDS`), with when (Unix seconds).
    moved: std::cell::RefCell<std::collections::HashMap<InfoHash, u64>>,
}

impl DurableObject for SocketGateway {
    fn new(state: State, env: Env) -> Self {
        let config = config_from(&env).unwrap_or_default();
        if super::expose_costs(&env) {
            // Diagnostics: constructed while holding sockets means woken from hibernation.
            let sockets = state.get_websockets().len();
            if sockets > 0 {
                console_log!("socket gateway woke from hibernation with {sockets} sockets");
            }
        }
        SocketGateway { state, env, config, moved: Default::default() }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let path = super::request_path(&req);
        if let Some(shard) = path.strip_prefix("/connect/").and_then(|s| s.parse::<u16>().ok()) {
            return self.accept(shard);
        }
        if path == "/deliver" {
            let deliveries: Vec<Delivery> = match serde_json::from_slice(&req.bytes().await?) {
                Ok(d) => d,
                Err(_) => return Response::error("malformed deliveries", 400),
            };
            self.deliver_here(&deliveries).await;
            return Response::ok("");
        }
        Response::error("not found", 404)
    }

    async fn websocket_message(&self, ws: WebSocket, message: WebSocketIncomingMessage) -> Result<()> {
        let text = match message {
            WebSocketIncomingMessage::String(s) => s,
            WebSocketIncomingMessage::Binary(b) => match String::from_utf8(b) {
                Ok(s) => s,
                Err(_) => {
                    send(&ws, &failure("message is not UTF-8 JSON"));
                    return Ok(());
                }
            },
        };
        let parsed = ClientMessage::parse(&text);
        // What a failure frame must carry for the client to report it.
        let context = match &parsed {
            Ok(ClientMessage::Announce(a)) => Some(("announce", a.info_hash)),
            Ok(ClientMessage::Answer(a)) => Some(("announce", a.info_hash)),
            _ => None,
        };
        let outcome = match parsed {
            Err(e) => Err(e),
            Ok(ClientMessage::Announce(a)) => self.announce(&ws, a).await,
            Ok(ClientMessage::Answer(a)) => self.answer(&ws, a).await,
            Ok(ClientMessage::Scrape(hashes)) => self.scrape(&ws, hashes).await,
        };
        if let Err(e) = outcome {
            let fault = e.retry_in.is_some();
            let e = match (e.action, context) {
                (None, Some((action, hash))) => ProtocolError { action: Some(action), info_hash: Some(hash), ..e },
                _ => e,
            };
            send(&ws, &e.frame());
            if fault {
                // The tracker's own failure, counted: let the counts go out
                // (after the frame; no `waitUntil` that could keep the object up).
                if let Some(send) = super::stats::flush_if_due(&self.env, &self.config) {
                    send.await;
                }
            }
        }
        Ok(())
    }

    async fn websocket_close(&self, ws: WebSocket, _code: usize, _reason: String, _clean: bool) -> Result<()> {
        self.leave_all(&ws).await;
        Ok(())
    }

    async fn websocket_error(&self, ws: WebSocket, _error: Error) -> Result<()> {
        self.leave_all(&ws).await;
        Ok(())
    }
}

fn failure(reason: &str) -> String {
    ProtocolError { reason: reason.into(), ..ProtocolError::default() }.frame()
}

/// Sends a frame; a socket that is closing just misses it.
fn send(ws: &WebSocket, frame: &str) {
    if let Err(e) = ws.send_with_str(frame) {
        console_log!("dropping a frame for a closed socket: {e}");
    }
}

/// Runtime failures become a frame for the client (with `retry in`,
/// minutes), counted under their reason, never a broken object.
fn fault(failure: Failure, e: Error) -> ProtocolError {
    super::log::error(failure.label(), serde_json::json!({ "route": "websocket", "error": e.to_string() }));
    super::stats::count_failure(failure);
    ProtocolError {
        reason: unavailable::reason(failure).into(),
        retry_in: Some(unavailable::retry_minutes(failure)),
        ..ProtocolError::default()
    }
}

fn unavailable(e: Error) -> ProtocolError {
    fault(Failure::Other, e)
}

/// A swarm stub that failed: overloaded or otherwise unavailable.
fn swarm_down(e: Error) -> ProtocolError {
    fault(unavailable::swarm_fault(&e.to_string(), false), e)
}

fn scrape_down(e: Error) -> ProtocolError {
    fault(Failure::ScrapeUnavailable, e)
}

impl SocketGateway {
    fn accept(&self, shard: u16) -> Result<Response> {
        let mut id = [0u8; 8];
        getrandom::fill(&mut id).map_err(|e| Error::RustError(format!("no entropy: {e}")))?;
        let at = SocketRef { gateway: shard, socket: u64::from_le_bytes(id) };
        let pair = WebSocketPair::new()?;
        let tag = at.tag();
        self.state.accept_websocket_with_tags(&pair.server, &[tag.as_str()]);
        pair.server.serialize_attachment(SocketInfo { gateway: shard, tag, memberships: Vec::new() })?;
        Response::from_websocket(pair.client)
    }

    fn socket_info(ws: &WebSocket) -> std::result::Result<(SocketInfo, SocketRef), ProtocolError> {
        let info: SocketInfo = ws.deserialize_attachment().ok().flatten().unwrap_or_default();
        let at = info.at().ok_or_else(|| ProtocolError { reason: "socket state lost, reconnect".into(), ..ProtocolError::default() })?;
        Ok((info, at))
    }

    async fn announce(&self, ws: &WebSocket, a: WsAnnounce) -> std::result::Result<(), ProtocolError> {
        let (mut info, at) = Self::socket_info(ws)?;
        let changed = if a.event == AnnounceEvent::Stopped {
            info.leave(&a.info_hash, &a.peer_id)
        } else {
            info.join(&a.info_hash, &a.peer_id)?
        };
        if changed {
            // Before any await: the object may sleep right after this frame.
            ws.serialize_attachment(&info).map_err(unavailable)?;
        }
        let request = SwarmWsRequest::Announce {
            info_hash: a.info_hash.0,
            peer_id: a.peer_id.0,
            at,
            left: a.left,
            event: a.event.code(),
            numwant: a.offers.len() as u8,
        };
        let reply = self.ask_swarm(&a.info_hash, &request).await.map_err(swarm_down)?;
        let counters = crate::swarm::SwarmCounters { complete: reply.complete, incomplete: reply.incomplete, downloaded: 0 };
        send(ws, &webtorrent::announce_frame(&a.info_hash, counters, webtorrent::ws_interval(self.config.interval)));
        let targets: Vec<(PeerId, SocketRef)> = reply.targets.iter().map(|(id, at)| (PeerId(*id), *at)).collect();
        // Every gateway at once: the offers' latency is one round trip.
        let plan = plan_offers(&a.info_hash, &a.peer_id, &a.offers, &targets);
        join_all(plan.iter().map(|(gateway, deliveries)| self.deliver(at.gateway, *gateway, deliveries))).await;
        Ok(())
    }

    async fn answer(&self, ws: &WebSocket, a: WsAnswer) -> std::result::Result<(), ProtocolError> {
        let (_, here) = Self::socket_info(ws)?;
        let request = SwarmWsRequest::Locate { info_hash: a.info_hash.0, peer_id: a.to_peer_id.0 };
        let reply = self.ask_swarm(&a.info_hash, &request).await.map_err(swarm_down)?;
        // Like the reference server: an answer for a peer that left is dropped.
        if let Some((_, to)) = reply.targets.first() {
            let delivery =
                Delivery { to: *to, info_hash: a.info_hash.0, peer_id: a.to_peer_id.0, frame: answer_frame(&a) };
            self.deliver(here.gateway, to.gateway, &[delivery]).await;
        }
        Ok(())
    }

    async fn scrape(&self, ws: &WebSocket, hashes: Vec<InfoHash>) -> std::result::Result<(), ProtocolError> {
        webtorrent::check_scrape(&hashes, self.config.scrape_max, self.config.full_scrape)?;
        let kv = self.env.kv(KV_BINDING).map_err(scrape_down)?;
        let entries = if hashes.is_empty() {
            full_scrape(&kv).await.map_err(|e| scrape_down(e.into()))?
        } else {
            counters_for(&self.env, &kv, &hashes).await.map_err(|e| scrape_down(e.into()))?
        };
        send(ws, &webtorrent::scrape_frame(&entries, webtorrent::ws_interval(self.config.interval)));
        Ok(())
    }

    /// The socket closed: its peers leave their swarms (one request each,
    /// all at once). Runs once even if both an error and a close arrive.
    async fn leave_all(&self, ws: &WebSocket) {
        let Ok((mut info, at)) = Self::socket_info(ws) else { return };
        let memberships: Vec<(InfoHash, PeerId)> = info.memberships().collect();
        info.memberships.clear();
        if let Err(e) = ws.serialize_attachment(&info) {
            console_log!("could not clear a closed socket's attachment: {e}");
        }
        join_all(memberships.into_iter().map(|(hash, peer)| async move {
            let request = SwarmWsRequest::Leave { info_hash: hash.0, peer_id: peer.0, at };
            if let Err(e) = self.ask_swarm(&hash, &request).await {
                console_error!("leaving swarm {hash} failed (the peer will expire): {e}");
            }
        }))
        .await;
    }

    /// The torrent's own object: WebTorrent peers live there (with
    /// `SWARM_SHARDS`, the torrent's shard moves it out once; this gateway
    /// remembers that).
    async fn own_stub(&self, hash: &InfoHash) -> Result<Stub> {
        if self.config.shards() == 0 || self.moved.borrow().contains_key(hash) {
            return super::own_object(&self.env, hash);
        }
        let stub = super::own_swarm_stub(&self.env, &self.config, hash).await?;
        let mut moved = self.moved.borrow_mut();
        if moved.len() >= MOVED_REMEMBERED {
            moved.clear();
        }
        moved.insert(*hash, (js_sys::Date::now() / 1000.0) as u64);
        Ok(stub)
    }

    async fn ask_swarm(&self, hash: &InfoHash, request: &SwarmWsRequest) -> Result<SwarmWsReply> {
        let stub = self.own_stub(hash).await?;
        let body = serde_json::to_string(request)?;
        let mut resp = stub.fetch_with_request(super::internal_request("https://swarm/ws", "POST", Some(&body), None)?).await?;
        if resp.status_code() != 200 {
            return Err(Error::RustError(format!("swarm answered {}", resp.status_code())));
        }
        resp.json().await
    }

    /// Sends frames to sockets of gateway `to`: directly if that is this
    /// gateway, else in one request to it.
    async fn deliver(&self, here: u16, to: u16, deliveries: &[Delivery]) {
        if to == here {
            self.deliver_here(deliveries).await;
            return;
        }
        let result = async {
            let stub = self.env.durable_object(GATEWAYS_BINDING)?.id_from_name(&gateway_name(to))?.get_stub()?;
            let body = serde_json::to_string(deliveries)?;
            stub.fetch_with_request(super::internal_request("https://gateway/deliver", "POST", Some(&body), None)?).await
        }
        .await;
        if let Err(e) = result {
            console_error!("relaying to gateway {to} failed: {e}");
        }
    }

    /// Sends frames to sockets held here. A socket that is gone (a restart
    /// or deploy dropped it without a close event) leaves its swarm now, so
    /// no more offers are wasted on it.
    async fn deliver_here(&self, deliveries: &[Delivery]) {
        let mut gone = Vec::new();
        for d in deliveries {
            let sockets = self.state.get_websockets_with_tag(&d.to.tag());
            if sockets.is_empty() {
                gone.push(d);
            }
            for ws in sockets {
                send(&ws, &d.frame);
            }
        }
        join_all(gone.into_iter().map(|d| async move {
            if let Err(e) = self.ask_swarm(&InfoHash(d.info_hash), &d.leave()).await {
                console_error!("dropping a gone socket from swarm failed (it will expire): {e}");
            }
        }))
        .await;
    }
}
