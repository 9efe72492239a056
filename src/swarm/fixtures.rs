//! Announces and a configuration shared by the swarm's unit tests.

use crate::announce::AnnounceEvent;
use crate::config::TrackerConfig;
use crate::peer::{InfoHash, PeerAddr, PeerId, PeerKey};
use crate::response::PeerListFormat;
use crate::swarm::PeerAnnounce;
use crate::webtorrent::SocketRef;
use crate::wire::SwarmAnnounce;

pub(crate) fn cfg() -> TrackerConfig {
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
pub(crate) fn key_of(n: u8) -> PeerKey {
    msg(n, 0, AnnounceEvent::Update).peer.key
}

/// `m` sent by `user` (private mode): the entry key follows.
pub(crate) fn as_user(mut m: SwarmAnnounce, user: u64, may_leech: bool) -> SwarmAnnounce {
    m.account = Some(crate::wire::Account { user, may_leech, freeleech: false });
    m.peer.key = PeerKey::entry(Some(user), &m.peer.peer_id, &m.peer.addr, None);
    m
}

pub(crate) fn msg(n: u8, left: u64, event: AnnounceEvent) -> SwarmAnnounce {
    let peer_id = PeerId([n; 20]);
    let addr = PeerAddr::new([127, 0, 0, n].into(), 6881);
    SwarmAnnounce {
        info_hash: InfoHash([1; 20]),
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

pub(crate) fn wide(n: u32, left: u64, event: AnnounceEvent) -> SwarmAnnounce {
    let mut m = msg(1, left, event);
    m.peer.peer_id.0[..4].copy_from_slice(&n.to_be_bytes());
    m.peer.key = PeerKey::raw(&m.peer.peer_id);
    m
}

pub(crate) fn private(n: u8, left: u64, event: AnnounceEvent, up: u64, down: u64, may_leech: bool) -> SwarmAnnounce {
    as_user(SwarmAnnounce { uploaded: up, downloaded: down, ..msg(n, left, event) }, n as u64, may_leech)
}

pub(crate) fn ws_peer(n: u8, gateway: u16, left: u64, event: AnnounceEvent) -> PeerAnnounce {
    PeerAnnounce { key: PeerKey([n; 20]), peer_id: PeerId([n; 20]), addr: SocketRef { gateway, socket: n as u64 }.to_addr(), left, event }
}
