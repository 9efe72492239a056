//! What identifies a torrent and a peer, and how a peer's address is kept.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// SHA-1 of a torrent's info dictionary (or a v2 hash truncated to 20 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InfoHash(pub [u8; 20]);

/// The 20 bytes a client picks for itself at start-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeerId(pub [u8; 20]);

impl InfoHash {
    /// Lower-case hex: the Durable Object name and the KV key of a torrent.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    pub fn from_hex(s: &str) -> Option<Self> {
        let mut out = [0u8; 20];
        hex::decode_to_slice(s, &mut out).ok()?;
        Some(InfoHash(out))
    }
}

impl fmt::Display for InfoHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// Which swarm entry or ledger session an announce speaks for: a digest
/// of who may speak for it, so no one can borrow another's.
///
/// - A swarm entry ([`PeerKey::entry`]) is the peer id plus its address
///   family plus either the client's BEP 3 `key` (a secret it never shows
///   other peers) or, without one, its IP. An announce with a known peer id
///   from another address, without the matching key, is another entry:
///   it can neither move nor stop the original. In private mode the user
///   is part of the key too, so members never share an entry.
/// - A private-mode session ([`PeerKey::session`]) is the user plus the
///   peer id: both families and any address change of one client feed
///   one baseline, and no other member can touch it.
///
/// SHA-1 keeps crafted inputs from landing on someone else's key (a second
/// preimage); WebTorrent peers, addressed by peer id in that protocol, use
/// [`PeerKey::raw`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeerKey(pub [u8; 20]);

/// The digest of a client's BEP 3 `key` parameter as the swarm sees it.
pub type ClientKey = [u8; 8];

impl PeerKey {
    /// The entry of `peer_id` announcing from `addr`, for `user` (private
    /// mode) with the client's `key` if it sent one.
    pub fn entry(user: Option<u64>, peer_id: &PeerId, addr: &PeerAddr, key: Option<&ClientKey>) -> Self {
        use sha1::{Digest, Sha1};
        let mut h = Sha1::new();
        h.update(b"entry\0");
        h.update(user.map_or([0xff; 8], u64::to_be_bytes));
        h.update(peer_id.0);
        h.update([addr.is_ipv4() as u8]);
        match key {
            Some(k) => {
                h.update(b"k");
                h.update(k);
            }
            None => {
                h.update(b"a");
                h.update(addr.ip_bytes());
            }
        }
        PeerKey(h.finalize().into())
    }

    /// The ledger session of `user`'s client `peer_id`.
    pub fn session(user: u64, peer_id: &PeerId) -> Self {
        use sha1::{Digest, Sha1};
        let mut h = Sha1::new();
        h.update(b"session\0");
        h.update(user.to_be_bytes());
        h.update(peer_id.0);
        PeerKey(h.finalize().into())
    }

    /// The peer id itself: WebTorrent peers, and rows stored before keys.
    pub fn raw(peer_id: &PeerId) -> Self {
        PeerKey(peer_id.0)
    }
}

/// The digest of a `key` parameter's bytes (any length a client sends).
pub fn client_key(raw: &[u8]) -> ClientKey {
    use sha1::{Digest, Sha1};
    let d: [u8; 20] = Sha1::digest(raw).into();
    let mut out = [0u8; 8];
    out.copy_from_slice(&d[..8]);
    out
}

/// A peer's address: IPv4 kept as an IPv4-mapped IPv6 address, so every
/// peer has the same fixed size (18 bytes) in memory and in storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PeerAddr {
    ip: [u8; 16],
    port: u16,
}

impl PeerAddr {
    pub const ENCODED_LEN: usize = 18;

    pub fn new(ip: IpAddr, port: u16) -> Self {
        let ip = match ip {
            IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
            IpAddr::V6(v6) => v6.octets(),
        };
        PeerAddr { ip, port }
    }

    pub fn ip(&self) -> IpAddr {
        let v6 = Ipv6Addr::from(self.ip);
        match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The 16 address bytes (IPv4 as IPv4-mapped IPv6).
    pub fn ip_bytes(&self) -> [u8; 16] {
        self.ip
    }

    pub fn is_ipv4(&self) -> bool {
        // Two word compares: the hottest test of an answer (twice a peer).
        let (head, rest) = self.ip.split_at(8);
        head == [0; 8] && rest[..4] == [0, 0, 0xff, 0xff]
    }

    /// BEP 23 compact form, for an IPv4 address: 4 address bytes + 2 port
    /// bytes, big-endian.
    pub fn compact_v4(&self) -> Option<[u8; 6]> {
        let [.., a, b, c, d] = self.ip;
        let [p, q] = self.port.to_be_bytes();
        self.is_ipv4().then_some([a, b, c, d, p, q])
    }

    /// BEP 7 compact form: 16 address bytes + 2 port bytes, big-endian.
    pub fn compact_v6(&self) -> [u8; 18] {
        let mut out = [0u8; 18];
        out[..16].copy_from_slice(&self.ip);
        out[16..].copy_from_slice(&self.port.to_be_bytes());
        out
    }

    pub fn encode(&self) -> [u8; Self::ENCODED_LEN] {
        let mut out = [0u8; Self::ENCODED_LEN];
        out[..16].copy_from_slice(&self.ip);
        out[16..].copy_from_slice(&self.port.to_be_bytes());
        out
    }

    pub fn decode(bytes: &[u8]) -> Option<Self> {
        if bytes.len() != Self::ENCODED_LEN {
            return None;
        }
        let mut ip = [0u8; 16];
        ip.copy_from_slice(&bytes[..16]);
        Some(PeerAddr { ip, port: u16::from_be_bytes([bytes[16], bytes[17]]) })
    }
}

impl fmt::Display for PeerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.ip() {
            IpAddr::V4(ip) => write!(f, "{ip}:{}", self.port),
            IpAddr::V6(ip) => write!(f, "[{ip}]:{}", self.port),
        }
    }
}

/// Parses an address from a header or an `ip=` parameter; IPv4-mapped
/// IPv6 forms are folded to IPv4 so a dual-stack peer looks the same.
pub fn parse_ip(s: &str) -> Option<IpAddr> {
    let s = s.trim().trim_start_matches('[').trim_end_matches(']');
    let ip: IpAddr = s.parse().ok()?;
    Some(match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    })
}

/// The address used when the runtime gives none (local tools without
/// CF-Connecting-IP); loopback keeps such peers usable on one machine.
pub const FALLBACK_IP: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_forms() {
        let a = PeerAddr::new("10.1.2.3".parse().unwrap(), 6881);
        assert!(a.is_ipv4());
        assert_eq!(a.compact_v4(), Some([10, 1, 2, 3, 0x1a, 0xe1]));
        let b = PeerAddr::new("2001:db8::1".parse().unwrap(), 1);
        assert!(!b.is_ipv4());
        assert_eq!(b.compact_v4(), None);
        let out = b.compact_v6();
        assert_eq!(out[16..], [0, 1]);
        assert_eq!(&out[..2], &[0x20, 0x01]);
        assert_eq!(PeerAddr::decode(&b.encode()), Some(b));
        assert_eq!(b.to_string(), "[2001:db8::1]:1");
    }

    #[test]
    fn parses_header_forms() {
        assert_eq!(parse_ip("::ffff:1.2.3.4"), Some("1.2.3.4".parse().unwrap()));
        assert_eq!(parse_ip("[::1]"), Some("::1".parse().unwrap()));
        assert_eq!(parse_ip("nonsense"), None);
    }

    #[test]
    fn info_hash_hex_round_trip() {
        let h = InfoHash([0xab; 20]);
        assert_eq!(InfoHash::from_hex(&h.to_hex()), Some(h));
        assert_eq!(InfoHash::from_hex("zz"), None);
    }
}
