//! Bencoded answers: announce (BEP 3, 7, 23), scrape (BEP 48) and failures.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_bytes::ByteBuf;

use crate::failure::Failure;
use crate::peer::InfoHash;
use crate::swarm::{Peer, SwarmCounters};

#[derive(Serialize)]
struct AnnounceBody<'a> {
    complete: u64,
    downloaded: u64,
    incomplete: u64,
    interval: u32,
    #[serde(rename = "min interval")]
    min_interval: u32,
    peers: PeerList,
    #[serde(skip_serializing_if = "Option::is_none")]
    peers6: Option<ByteBuf>,
    /// Keys are written in this order, which must stay sorted (bencode).
    #[serde(rename = "warning message", skip_serializing_if = "Option::is_none")]
    warning: Option<&'a str>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum PeerList {
    Compact(ByteBuf),
    Dicts(Vec<PeerDict>),
}

#[derive(Serialize)]
struct PeerDict {
    ip: String,
    #[serde(rename = "peer id", skip_serializing_if = "Option::is_none")]
    peer_id: Option<ByteBuf>,
    port: u16,
}

/// How the client asked for its peer list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerListFormat {
    pub compact: bool,
    pub no_peer_id: bool,
}

/// What an accepted announce is answered with, before it is encoded.
/// It borrows the selected peers from the swarm: nothing is copied on
/// the way to the bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnnounceResponse<'a> {
    pub counters: SwarmCounters,
    pub interval: u32,
    pub min_interval: u32,
    /// The peers selected for the announcer.
    pub peers: Vec<&'a Peer>,
    pub format: PeerListFormat,
    pub warning: Option<&'static str>,
}

/// An announce's outcome: the response, or why the swarm refused it.
pub type AnnounceAnswer<'a> = Result<AnnounceResponse<'a>, Failure>;

/// The bytes an announce's outcome is sent as.
pub fn encode_announce(answer: &AnnounceAnswer) -> Vec<u8> {
    match answer {
        Ok(r) => announce(r),
        Err(f) => failure(f.text()),
    }
}

/// The answer to an announce: counts, intervals and the selected peers.
pub fn announce(r: &AnnounceResponse<'_>) -> Vec<u8> {
    let (peers, peers6) = if r.format.compact {
        let mut v4 = Vec::with_capacity(r.peers.len() * 6);
        let mut v6 = Vec::new();
        for p in r.peers.iter() {
            if p.addr.is_ipv4() {
                p.addr.write_compact_v4(&mut v4);
            } else {
                p.addr.write_compact_v6(&mut v6);
            }
        }
        let peers6 = (!v6.is_empty()).then(|| ByteBuf::from(v6));
        (PeerList::Compact(ByteBuf::from(v4)), peers6)
    } else {
        let dicts = r
            .peers
            .iter()
            .map(|p| PeerDict {
                ip: p.addr.ip().to_string(),
                peer_id: (!r.format.no_peer_id).then(|| ByteBuf::from(p.id.0.to_vec())),
                port: p.addr.port(),
            })
            .collect();
        (PeerList::Dicts(dicts), None)
    };
    let body = AnnounceBody {
        complete: r.counters.complete,
        downloaded: r.counters.downloaded,
        incomplete: r.counters.incomplete,
        interval: r.interval,
        min_interval: r.min_interval,
        peers,
        peers6,
        warning: r.warning,
    };
    // Serialising plain integers and byte strings cannot fail.
    serde_bencode::to_bytes(&body).unwrap_or_else(|_| failure("internal encoding error"))
}

#[derive(Serialize)]
struct ScrapeFile {
    complete: u64,
    downloaded: u64,
    incomplete: u64,
}

#[derive(Serialize)]
struct ScrapeBody {
    files: BTreeMap<ByteBuf, ScrapeFile>,
}

/// The answer to a scrape: `files` keyed by the raw 20-byte info hashes.
pub fn scrape(entries: &[(InfoHash, SwarmCounters)]) -> Vec<u8> {
    let files = entries
        .iter()
        .map(|(hash, c)| {
            let file = ScrapeFile { complete: c.complete, downloaded: c.downloaded, incomplete: c.incomplete };
            (ByteBuf::from(hash.0.to_vec()), file)
        })
        .collect();
    serde_bencode::to_bytes(&ScrapeBody { files }).unwrap_or_else(|_| failure("internal encoding error"))
}

#[derive(Serialize)]
struct FailureBody<'a> {
    #[serde(rename = "failure reason")]
    reason: &'a str,
}

#[derive(Serialize)]
struct RetryBody<'a> {
    #[serde(rename = "failure reason")]
    reason: &'a str,
    /// BEP 31: minutes before the client should try again.
    #[serde(rename = "retry in")]
    retry_in: u32,
}

/// A refusal that tells the client when to come back (BEP 31 `retry in`,
/// in whole minutes, at least one).
pub fn failure_retry(reason: &str, retry_after_secs: u32) -> Vec<u8> {
    let body = RetryBody { reason, retry_in: retry_after_secs.div_ceil(60).max(1) };
    serde_bencode::to_bytes(&body).unwrap_or_else(|_| failure(reason))
}

/// `d14:failure reason<len>:<reason>e`: what every refused request gets.
pub fn failure(reason: &str) -> Vec<u8> {
    serde_bencode::to_bytes(&FailureBody { reason }).unwrap_or_else(|_| b"d14:failure reason5:errore".to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::peer::{PeerAddr, PeerId};

    fn peer(ip: &str, port: u16, tag: u8) -> Peer {
        Peer { key: crate::peer::PeerKey([tag; 20]), id: PeerId([tag; 20]), addr: PeerAddr::new(ip.parse().unwrap(), port), last_seen: 0, stored_seen: 0, completed: false, heard: true }
    }

    const C: SwarmCounters = SwarmCounters { complete: 1, incomplete: 2, downloaded: 3 };

    fn announce(
        counters: SwarmCounters,
        interval: u32,
        min_interval: u32,
        peers: &[&Peer],
        format: PeerListFormat,
        warning: Option<&'static str>,
    ) -> Vec<u8> {
        super::announce(&AnnounceResponse { counters, interval, min_interval, peers: peers.to_vec(), format, warning })
    }

    #[test]
    fn compact_splits_v4_and_v6() {
        let a = peer("1.2.3.4", 0x1ae1, b'a');
        let b = peer("::1", 80, b'b');
        let out = announce(C, 1800, 900, &[&a, &b], PeerListFormat { compact: true, no_peer_id: false }, None);
        let mut expected = b"d8:completei1e10:downloadedi3e10:incompletei2e8:intervali1800e12:min intervali900e5:peers6:\x01\x02\x03\x04\x1a\xe16:peers618:".to_vec();
        expected.extend_from_slice(&[0; 15]);
        expected.extend_from_slice(&[1, 0, 80, b'e']);
        assert_eq!(out, expected);
    }

    #[test]
    fn empty_compact_list_is_still_present() {
        let out = announce(C, 60, 30, &[], PeerListFormat { compact: true, no_peer_id: false }, None);
        assert!(out.windows(9).any(|w| w == b"5:peers0:"));
        assert!(!out.windows(6).any(|w| w == b"peers6"));
    }

    #[test]
    fn dict_list_with_and_without_peer_id() {
        let a = peer("1.2.3.4", 6881, b'a');
        let out = announce(C, 60, 30, &[&a], PeerListFormat { compact: false, no_peer_id: false }, None);
        let s = String::from_utf8_lossy(&out);
        assert!(s.contains("5:peersld2:ip7:1.2.3.47:peer id20:aaaaaaaaaaaaaaaaaaaa4:porti6881eee"), "{s}");
        let out = announce(C, 60, 30, &[&a], PeerListFormat { compact: false, no_peer_id: true }, None);
        assert!(String::from_utf8_lossy(&out).contains("5:peersld2:ip7:1.2.3.44:porti6881eee"));
    }

    #[test]
    fn scrape_keys_are_raw_hashes_sorted() {
        let out = scrape(&[(InfoHash([0xff; 20]), C), (InfoHash([0x00; 20]), SwarmCounters::default())]);
        let mut expected = b"d5:filesd20:".to_vec();
        expected.extend_from_slice(&[0; 20]);
        expected.extend_from_slice(b"d8:completei0e10:downloadedi0e10:incompletei0ee20:");
        expected.extend_from_slice(&[0xff; 20]);
        expected.extend_from_slice(b"d8:completei1e10:downloadedi3e10:incompletei2eeee");
        assert_eq!(out, expected);
    }

    #[test]
    fn warning_comes_last_and_retry_in_is_minutes() {
        let out = announce(C, 60, 30, &[], PeerListFormat { compact: true, no_peer_id: false }, Some("full"));
        assert!(out.ends_with(b"5:peers0:15:warning message4:fulle"), "{}", String::from_utf8_lossy(&out));
        assert_eq!(failure_retry("too soon", 61), b"d14:failure reason8:too soon8:retry ini2ee");
        assert_eq!(failure_retry("too soon", 0), b"d14:failure reason8:too soon8:retry ini1ee");
    }

    #[test]
    fn failure_reason() {
        assert_eq!(failure("missing parameter 'port'"), b"d14:failure reason24:missing parameter 'port'e");
        let refused = encode_announce(&Err(Failure::TorrentBlocked));
        assert_eq!(refused, b"d14:failure reason39:this torrent is blocked on this trackere");
    }
}
