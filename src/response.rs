//! Bencoded answers: announce (BEP 3, 7, 23), scrape (BEP 48) and failures.

use crate::failure::Failure;
use crate::peer::InfoHash;
use crate::swarm::{Peer, SwarmCounters};

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
/// Written straight into one buffer, keys in their sorted (bencode) order:
/// the hottest encoding (serde_bencode would encode each entry apart and
/// sort them; the tests check the bytes against it).
pub fn announce(r: &AnnounceResponse<'_>) -> Vec<u8> {
    let mut out = Vec::with_capacity(112 + r.peers.len() * 18);
    out.push(b'd');
    int_entry(&mut out, b"complete", r.counters.complete);
    int_entry(&mut out, b"downloaded", r.counters.downloaded);
    int_entry(&mut out, b"incomplete", r.counters.incomplete);
    int_entry(&mut out, b"interval", r.interval.into());
    int_entry(&mut out, b"min interval", r.min_interval.into());
    if r.format.compact {
        let v4 = r.peers.iter().filter(|p| p.addr.is_ipv4()).count();
        let v6 = r.peers.len() - v4;
        string(&mut out, b"peers");
        length(&mut out, v4 * 6);
        compact(&mut out, v4, r.peers.iter().filter_map(|p| p.addr.compact_v4()));
        if v6 > 0 {
            string(&mut out, b"peers6");
            length(&mut out, v6 * 18);
            compact(&mut out, v6, r.peers.iter().filter(|p| !p.addr.is_ipv4()).map(|p| p.addr.compact_v6()));
        }
    } else {
        string(&mut out, b"peers");
        out.push(b'l');
        for p in r.peers.iter() {
            out.push(b'd');
            string(&mut out, b"ip");
            string(&mut out, p.addr.ip().to_string().as_bytes());
            if !r.format.no_peer_id {
                string(&mut out, b"peer id");
                string(&mut out, &p.id.0);
            }
            int_entry(&mut out, b"port", p.addr.port().into());
            out.push(b'e');
        }
        out.push(b'e');
    }
    if let Some(warning) = r.warning {
        string(&mut out, b"warning message");
        string(&mut out, warning.as_bytes());
    }
    out.push(b'e');
    out
}

/// Compact peers (BEP 23, BEP 7), each `N` bytes: the buffer grows once
/// and each peer is written in place, not appended in pieces (a wasm
/// `memory.copy` call per piece, twice per peer).
fn compact<const N: usize>(out: &mut Vec<u8>, count: usize, peers: impl Iterator<Item = [u8; N]>) {
    let start = out.len();
    out.resize(start + count * N, 0);
    for (slot, peer) in out[start..].chunks_exact_mut(N).zip(peers) {
        slot.copy_from_slice(&peer);
    }
}

/// `<len>:`, a byte string's head.
fn length(out: &mut Vec<u8>, len: usize) {
    out.extend_from_slice(itoa::Buffer::new().format(len).as_bytes());
    out.push(b':');
}

fn string(out: &mut Vec<u8>, bytes: &[u8]) {
    length(out, bytes.len());
    out.extend_from_slice(bytes);
}

/// A dict entry with an integer value: `<key>i<n>e`.
fn int_entry(out: &mut Vec<u8>, key: &[u8], n: u64) {
    string(out, key);
    out.push(b'i');
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
    out.push(b'e');
}

/// The answer to a scrape: `files` keyed by the raw 20-byte info hashes,
/// in byte order (bencode sorts a dict's keys), each once (a repeated hash
/// keeps its last counters).
pub fn scrape(entries: &[(InfoHash, SwarmCounters)]) -> Vec<u8> {
    let mut files = entries.to_vec();
    // Reversed, then a stable sort: of a repeated hash, the last comes first.
    files.reverse();
    files.sort_by_key(|(hash, _)| hash.0);
    files.dedup_by_key(|(hash, _)| hash.0);
    let mut out = Vec::with_capacity(12 + files.len() * 88);
    out.extend_from_slice(b"d5:filesd");
    for (hash, c) in &files {
        string(&mut out, &hash.0);
        out.push(b'd');
        int_entry(&mut out, b"complete", c.complete);
        int_entry(&mut out, b"downloaded", c.downloaded);
        int_entry(&mut out, b"incomplete", c.incomplete);
        out.push(b'e');
    }
    out.extend_from_slice(b"ee");
    out
}

/// A refusal that tells the client when to come back (BEP 31 `retry in`,
/// in whole minutes, at least one).
pub fn failure_retry(reason: &str, retry_after_secs: u32) -> Vec<u8> {
    let mut out = failure_head(reason);
    int_entry(&mut out, b"retry in", retry_after_secs.div_ceil(60).max(1).into());
    out.push(b'e');
    out
}

/// `d14:failure reason<len>:<reason>e`: what every refused request gets.
pub fn failure(reason: &str) -> Vec<u8> {
    let mut out = failure_head(reason);
    out.push(b'e');
    out
}

/// A failure's dict up to its reason (the first key in order).
fn failure_head(reason: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(40 + reason.len());
    out.push(b'd');
    string(&mut out, b"failure reason");
    string(&mut out, reason.as_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Serialize;
    use serde_bytes::ByteBuf;
    use std::collections::BTreeMap;
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

    /// The answer as serde_bencode writes it: the oracle for `announce`.
    fn oracle(r: &AnnounceResponse<'_>) -> Vec<u8> {
        use serde_bencode::value::Value;
        #[derive(Serialize)]
        struct Dict {
            ip: String,
            #[serde(rename = "peer id", skip_serializing_if = "Option::is_none")]
            peer_id: Option<ByteBuf>,
            port: u16,
        }
        let c = r.counters;
        let mut map: BTreeMap<&str, Value> = BTreeMap::new();
        for (k, v) in [("complete", c.complete), ("downloaded", c.downloaded), ("incomplete", c.incomplete)] {
            map.insert(k, Value::Int(v as i64));
        }
        map.insert("interval", Value::Int(r.interval.into()));
        map.insert("min interval", Value::Int(r.min_interval.into()));
        if r.format.compact {
            let (mut v4, mut v6) = (Vec::new(), Vec::new());
            for p in &r.peers {
                match p.addr.compact_v4() {
                    Some(c) => v4.extend_from_slice(&c),
                    None => v6.extend_from_slice(&p.addr.compact_v6()),
                }
            }
            map.insert("peers", Value::Bytes(v4));
            if !v6.is_empty() {
                map.insert("peers6", Value::Bytes(v6));
            }
        } else {
            let dicts: Vec<Dict> = r
                .peers
                .iter()
                .map(|p| Dict { ip: p.addr.ip().to_string(), peer_id: (!r.format.no_peer_id).then(|| ByteBuf::from(p.id.0.to_vec())), port: p.addr.port() })
                .collect();
            map.insert("peers", serde_bencode::from_bytes(&serde_bencode::to_bytes(&dicts).unwrap()).unwrap());
        }
        if let Some(w) = r.warning {
            map.insert("warning message", Value::Bytes(w.as_bytes().to_vec()));
        }
        serde_bencode::to_bytes(&map).unwrap()
    }

    #[test]
    fn announce_bytes_match_serde_bencode() {
        let peers: Vec<Peer> = (0..60u8)
            .map(|i| match i % 3 {
                2 => peer(&format!("2001:db8::{i:x}"), 1000 + i as u16, i),
                _ => peer(&format!("10.0.{i}.{}", 255 - i), 6881 + i as u16, i),
            })
            .collect();
        let counters = SwarmCounters { complete: u32::MAX as u64 * 7, incomplete: 0, downloaded: 1 << 53 };
        for n in [0, 1, 2, 3, 10, 60] {
            let picked: Vec<&Peer> = peers.iter().take(n).collect();
            for compact in [true, false] {
                for no_peer_id in [true, false] {
                    for warning in [None, Some("tracker is busy")] {
                        let format = PeerListFormat { compact, no_peer_id };
                        let r = AnnounceResponse { counters, interval: 1800, min_interval: 900, peers: picked.clone(), format, warning };
                        assert_eq!(super::announce(&r), oracle(&r), "{n} peers, compact {compact}, no_peer_id {no_peer_id}, {warning:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn scrape_and_failure_bytes_match_serde_bencode() {
        #[derive(Serialize)]
        struct File {
            complete: u64,
            downloaded: u64,
            incomplete: u64,
        }
        #[derive(Serialize)]
        struct Files {
            files: BTreeMap<ByteBuf, File>,
        }
        let big = SwarmCounters { complete: u32::MAX as u64 * 7, incomplete: 0, downloaded: 1 << 53 };
        let entries: Vec<(InfoHash, SwarmCounters)> =
            [(0x80, C), (0x00, big), (0x7f, SwarmCounters::default()), (0x80, big), (0xff, C), (0x00, C)]
                .iter()
                .map(|&(b, c)| (InfoHash([b; 20]), c))
                .collect();
        for n in 0..=entries.len() {
            let files = entries[..n]
                .iter()
                .map(|(h, c)| (ByteBuf::from(h.0.to_vec()), File { complete: c.complete, downloaded: c.downloaded, incomplete: c.incomplete }))
                .collect();
            assert_eq!(scrape(&entries[..n]), serde_bencode::to_bytes(&Files { files }).unwrap(), "{n} entries");
        }
        #[derive(Serialize)]
        struct Failure<'a> {
            #[serde(rename = "failure reason")]
            reason: &'a str,
            #[serde(rename = "retry in", skip_serializing_if = "Option::is_none")]
            retry_in: Option<u32>,
        }
        for reason in ["", "invalid info_hash", "caf\u{e9} \u{1f600}"] {
            assert_eq!(failure(reason), serde_bencode::to_bytes(&Failure { reason, retry_in: None }).unwrap());
            for (secs, minutes) in [(0, 1), (59, 1), (61, 2), (3600, 60)] {
                let expected = serde_bencode::to_bytes(&Failure { reason, retry_in: Some(minutes) }).unwrap();
                assert_eq!(failure_retry(reason, secs), expected);
            }
        }
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
