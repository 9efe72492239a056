//! The announce/scrape query parser: any raw query string, as a client may
//! send it, is either refused with a reason or parsed into values that
//! agree with the query's own pairs. Never a panic.
#![no_main]

use edge_tracker::announce::{parse_u64, AnnounceEvent, AnnounceRequest};
use edge_tracker::peer::{PeerAddr, FALLBACK_IP};
use edge_tracker::query::{percent_encode, QueryPairs, MAX_PARAMS, MAX_QUERY_LEN};
use edge_tracker::response::PeerListFormat;
use edge_tracker::scrape::ScrapeRequest;
use edge_tracker::swarm::PeerAnnounce;
use edge_tracker::wire::SwarmAnnounce;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|raw: &[u8]| {
    let q = match QueryPairs::parse(raw) {
        Ok(q) => q,
        Err(e) => {
            assert!(!e.to_string().is_empty());
            return;
        }
    };
    assert!(raw.len() <= MAX_QUERY_LEN && q.len() <= MAX_PARAMS);

    // Re-encoding the decoded pairs and parsing again gives the same pairs:
    // every byte value survives the escape/decode round trip.
    let again: Vec<String> = q.iter().map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v))).collect();
    let joined = again.join("&");
    if let Ok(r) = &QueryPairs::parse(joined.as_bytes()) {
        assert!(r.iter().eq(q.iter()), "round trip changed the pairs");
    } else {
        // Only the length bound may refuse the (longer) re-encoded form.
        assert!(joined.len() > MAX_QUERY_LEN);
    }

    match AnnounceRequest::parse(&q) {
        Ok(a) => {
            assert_eq!(q.first("info_hash"), Some(&a.info_hash.0[..]));
            assert_eq!(q.first("peer_id"), Some(&a.peer_id.0[..]));
            assert!(a.port >= 1);
            assert_eq!(parse_u64(q.first("port").unwrap()), Some(a.port as u64));
            for (name, value) in [("uploaded", a.uploaded), ("downloaded", a.downloaded), ("left", a.left)] {
                assert_eq!(q.first(name).map_or(Some(0), parse_u64), Some(value), "{name}");
            }
            if let Some(n) = a.numwant {
                assert_eq!(parse_u64(q.first("numwant").unwrap()).map(|v| v.min(u32::MAX as u64) as u32), Some(n));
            }
            // What the Worker would send the swarm survives the wire format.
            let msg = SwarmAnnounce {
                info_hash: a.info_hash,
                peer: PeerAnnounce {
                    key: a.entry_key(&a.peer_addr(FALLBACK_IP, true), None),
                    peer_id: a.peer_id,
                    addr: a.peer_addr(FALLBACK_IP, true),
                    left: a.left,
                    event: a.event,
                },
                uploaded: a.uploaded,
                downloaded: a.downloaded,
                numwant: a.numwant.unwrap_or(50).min(u16::MAX as u32) as u16,
                format: PeerListFormat { compact: a.compact, no_peer_id: a.no_peer_id },
                account: None,
            };
            assert_eq!(SwarmAnnounce::decode(&msg.encode()), Some(msg));
            assert_eq!(AnnounceEvent::from_code(a.event.code()), Some(a.event));
            assert_eq!(msg.peer.addr, PeerAddr::decode(&msg.peer.addr.encode()).unwrap());
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }

    for (max, full) in [(0, false), (1, true), (64, false), (u32::MAX, true)] {
        match ScrapeRequest::parse(&q, max, full) {
            Ok(s) => {
                assert!(s.info_hashes.len() as u64 <= max as u64);
                assert!(full || !s.info_hashes.is_empty());
                for (i, h) in s.info_hashes.iter().enumerate() {
                    assert!(q.all("info_hash").any(|v| v == h.0), "a hash the query did not hold");
                    assert!(!s.info_hashes[..i].contains(h), "duplicate hash");
                }
                // Every distinct requested hash is there.
                for v in q.all("info_hash") {
                    assert!(s.info_hashes.iter().any(|h| h.0 == v));
                }
            }
            Err(e) => assert!(!e.to_string().is_empty()),
        }
    }
});
