//! Announces and a configuration shared by the swarm's unit tests and the
//! benches (`benches/`). Nothing in the glue calls it, so it never reaches
//! the wasm.

use crate::announce::AnnounceEvent;
use crate::config::TrackerConfig;
use crate::peer::{InfoHash, PeerAddr, PeerId, PeerKey};
use crate::response::PeerListFormat;
use crate::swarm::PeerAnnounce;
use crate::webtorrent::SocketRef;
use crate::wire::SwarmAnnounce;

pub fn cfg() -> TrackerConfig {
    TrackerConfig {
        interval: 100,
        peer_grace: 20,
        flush_delay: 5,
        publish_window: 60,
        refresh_after: 30,
        enforce_min_interval: false,
        ..TrackerConfig::default()
    }
}

/// The swarm entry of public peer `n` (as [`msg`] announces it).
pub fn key_of(n: u8) -> PeerKey {
    msg(n, 0, AnnounceEvent::Update).peer.key
}

/// `m` sent by `user` (private mode): the entry key follows.
pub fn as_user(mut m: SwarmAnnounce, user: u64, may_leech: bool) -> SwarmAnnounce {
    m.account = Some(crate::wire::Account { user, may_leech, freeleech: false });
    m.peer.key = PeerKey::entry(Some(user), &m.peer.peer_id, &m.peer.addr, None);
    m
}

/// Public peer `n` (peer id `[n; 20]`, address 127.0.0.n) in swarm `[1; 20]`.
pub fn msg(n: u8, left: u64, event: AnnounceEvent) -> SwarmAnnounce {
    announce(InfoHash([1; 20]), PeerId([n; 20]), PeerAddr::new([127, 0, 0, n].into(), 6881), left, event)
}

/// A public compact announce of `peer_id` from `addr` to swarm `info_hash`
/// (numwant 50, nothing transferred).
pub fn announce(info_hash: InfoHash, peer_id: PeerId, addr: PeerAddr, left: u64, event: AnnounceEvent) -> SwarmAnnounce {
    SwarmAnnounce {
        info_hash,
        peer: PeerAnnounce {
            key: PeerKey::entry(None, &peer_id, &addr, None),
            peer_id,
            addr,
            left,
            event,
        },
        uploaded: 0,
        downloaded: 0,
        numwant: 50,
        format: PeerListFormat { compact: true, no_peer_id: false },
        account: None,
    }
}

pub fn wide(n: u32, left: u64, event: AnnounceEvent) -> SwarmAnnounce {
    let mut m = msg(1, left, event);
    m.peer.peer_id.0[..4].copy_from_slice(&n.to_be_bytes());
    m.peer.key = PeerKey::raw(&m.peer.peer_id);
    m
}

pub fn private(n: u8, left: u64, event: AnnounceEvent, up: u64, down: u64, may_leech: bool) -> SwarmAnnounce {
    as_user(SwarmAnnounce { uploaded: up, downloaded: down, ..msg(n, left, event) }, n as u64, may_leech)
}

pub fn ws_peer(n: u8, gateway: u16, left: u64, event: AnnounceEvent) -> PeerAnnounce {
    PeerAnnounce { key: PeerKey([n; 20]), peer_id: PeerId([n; 20]), addr: SocketRef { gateway, socket: n as u64 }.to_addr(), left, event }
}
