//! Announce handling in the core, natively: parse the query, update the
//! swarm, select peers, encode the answer; at swarm sizes 10, 10k and 1M.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use edge_tracker::announce::{AnnounceEvent, AnnounceRequest};
use edge_tracker::config::TrackerConfig;
use edge_tracker::peer::{InfoHash, PeerAddr, PeerId};
use edge_tracker::query::{percent_encode, QueryPairs};
use edge_tracker::swarm::memory::EncodedAnnounce;
use edge_tracker::swarm::{fixtures, SwarmState};
use edge_tracker::wire::SwarmAnnounce;

fn peer_id(n: u32) -> PeerId {
    let mut id = *b"-ET0001-\0\0\0\0\0\0\0\0\0\0\0\0";
    id[8..12].copy_from_slice(&n.to_be_bytes());
    id[12..16].copy_from_slice(&n.wrapping_mul(2_654_435_761).to_be_bytes());
    PeerId(id)
}

fn message(n: u32, left: u64, event: AnnounceEvent) -> SwarmAnnounce {
    let addr = PeerAddr::new([10, (n >> 16) as u8, (n >> 8) as u8, n as u8].into(), 6881);
    fixtures::announce(InfoHash([0xab; 20]), peer_id(n), addr, left, event)
}

fn swarm_of(size: u32, config: &TrackerConfig) -> SwarmState {
    let mut s = SwarmState::new(42);
    for n in 0..size {
        // Half seeders, half leechers.
        s.announce_encoded(&message(n, (n % 2) as u64 * 1000, AnnounceEvent::Started), 1_000, config);
    }
    s
}

fn bench(c: &mut Criterion) {
    let config = TrackerConfig::default();
    let query = format!(
        "info_hash={}&peer_id={}&port=51413&uploaded=123&downloaded=456&left=789&event=&key=1a2b3c4d&compact=1&numwant=50",
        percent_encode(&[0xab; 20]),
        percent_encode(&peer_id(7).0)
    );
    c.bench_function("parse announce query", |b| {
        b.iter(|| AnnounceRequest::parse(&QueryPairs::parse(black_box(query.as_bytes())).unwrap()).unwrap())
    });
    for size in [10u32, 10_000, 1_000_000] {
        let mut state = swarm_of(size, &config);
        let mut n = 0u32;
        c.bench_function(&format!("announce into swarm of {size}"), |b| {
            b.iter_batched(
                || {
                    n = (n + 7919) % size;
                    message(n, (n % 2) as u64 * 1000, AnnounceEvent::Update)
                },
                |m| {
                    let q = QueryPairs::parse(black_box(query.as_bytes())).unwrap();
                    black_box(AnnounceRequest::parse(&q).unwrap());
                    let (body, writes) = state.announce_encoded(&m, 2_000, &config);
                    black_box((body, writes))
                },
                BatchSize::SmallInput,
            )
        });
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(50).measurement_time(std::time::Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
