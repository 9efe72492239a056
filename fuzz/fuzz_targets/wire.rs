//! The binary decoders: the Worker -> Durable Object announce message and
//! the storage rows a swarm reloads from (peer rows, private-mode ledger
//! chunk rows, and the session rows and marks row of older versions), plus
//! the KV counters text. Any bytes decode to
//! `None` or to a value that encodes back to what was decoded.
#![no_main]

use edge_tracker::peer::{parse_ip, InfoHash, PeerAddr};
use edge_tracker::scrape::{counters_key, hash_of_key};
use edge_tracker::swarm::sessions::{decode_row, encode_chunk, ChunkRecord, RECORD_LEN};
use edge_tracker::swarm::ledger::{decode_marks, encode_marks, SessionRecord};
use edge_tracker::swarm::storage::{decode_peer, encode_peer};
use edge_tracker::swarm::SwarmCounters;
use edge_tracker::wire::{SwarmAnnounce, ENCODED_LEN};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(m) = SwarmAnnounce::decode(data) {
        assert_eq!(data.len(), ENCODED_LEN);
        let again = m.encode();
        assert_eq!(again.len(), ENCODED_LEN);
        assert_eq!(SwarmAnnounce::decode(&again), Some(m));
    }

    let (id, rec) = data.split_at(data.len().min(20));
    if let Some((peer, seeder)) = decode_peer(id, rec) {
        // Rows from before entry keys (23 bytes) come back with the peer id
        // the key was: re-encoded, they gain it.
        let tail: &[u8] = if rec.len() == 43 { &rec[23..] } else { id };
        let expected: Vec<u8> = rec[..22].iter().chain([&(rec[22] & 3)]).chain(tail).copied().collect();
        assert_eq!(encode_peer(&peer, seeder), expected);
        assert_eq!(peer.key.0, id);
        assert_eq!(peer.last_seen, peer.stored_seen);
    }

    if let Some(r) = SessionRecord::decode(data) {
        assert_eq!(r.encode(), data);
    }

    if let Some((chunks, records)) = decode_row(data) {
        assert_eq!(records.len(), (data.len() - 4) / RECORD_LEN);
        let rows = encode_chunk(chunks, records.clone());
        assert!(rows.len() <= 1);
        let back = rows.first().map(|r| decode_row(r).expect("an encoded row that does not decode"));
        // Written back, every record is keyed by user and peer id.
        let keyed: Vec<_> = records.into_iter().map(|r| ChunkRecord { legacy: false, ..r }).collect();
        assert_eq!(back.map(|b| b.1).unwrap_or_default(), keyed);
    }

    let marks = decode_marks(data);
    assert!(marks.len() <= data.len() / 36);
    assert_eq!(decode_marks(&encode_marks(&marks)), marks);

    if let Some(a) = PeerAddr::decode(data) {
        assert_eq!(a.encode(), data);
    }

    if let Ok(text) = std::str::from_utf8(data) {
        if let Some(c) = SwarmCounters::from_kv(text) {
            assert_eq!(SwarmCounters::from_kv(&c.to_kv()), Some(c));
        }
        if let Some(h) = hash_of_key(text) {
            assert_eq!(hash_of_key(&counters_key(&h)), Some(h));
        }
        if let Some(h) = InfoHash::from_hex(text) {
            assert_eq!(InfoHash::from_hex(&h.to_hex()), Some(h));
        }
        if let Some(ip) = parse_ip(text) {
            assert_eq!(parse_ip(&ip.to_string()), Some(ip));
        }
    }
});
