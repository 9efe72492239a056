//! Bytes of memory per peer, and how long a 1,000,000-peer swarm takes to
//! reload from its storage rows after eviction. Writes
//! bench-results/native-memory.json.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use edge_tracker::config::TrackerConfig;
use edge_tracker::peer::{PeerAddr, PeerId, PeerKey};
use edge_tracker::swarm::memory::MemoryTables;
use edge_tracker::swarm::storage::encode_peer;
use edge_tracker::swarm::{Peer, Swarm};

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size(), Ordering::Relaxed);
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size(), Ordering::Relaxed);
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        LIVE.fetch_add(new, Ordering::Relaxed);
        LIVE.fetch_sub(l.size(), Ordering::Relaxed);
        unsafe { System.realloc(p, l, new) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn peer(n: u32) -> Peer {
    let mut id = [0u8; 20];
    id[..4].copy_from_slice(&n.to_be_bytes());
    id[4..8].copy_from_slice(&n.wrapping_mul(2_654_435_761).to_be_bytes());
    Peer {
        key: PeerKey(id),
        id: PeerId(id),
        addr: PeerAddr::new([10, (n >> 16) as u8, (n >> 8) as u8, n as u8].into(), 6881),
        last_seen: 1_000,
        stored_seen: 1_000,
        completed: false,
        heard: false,
    }
}

fn main() {
    const N: u32 = 1_000_000;
    let before = LIVE.load(Ordering::Relaxed);
    let mut swarm = Swarm::with_hash_key([1, 2]);
    for n in 0..N {
        swarm.restore(peer(n), n % 2 == 0);
    }
    let bytes = LIVE.load(Ordering::Relaxed) - before;
    let per_peer = bytes as f64 / N as f64;
    drop(swarm);

    // Storage rows as the Durable Object reads them back.
    let mut tables = MemoryTables::default();
    for n in 0..N {
        let p = peer(n);
        tables.peers.insert(p.key, encode_peer(&p, n % 2 == 0));
    }
    let config = TrackerConfig::default();
    let started = Instant::now();
    let state = tables.reload(7, false, 1_000, &config);
    let reload_ms = started.elapsed().as_secs_f64() * 1000.0;
    assert_eq!(state.swarm.len(), N as usize);

    let report = format!(
        "{{\n  \"peers\": {N},\n  \"swarm_bytes\": {bytes},\n  \"bytes_per_peer\": {per_peer:.1},\n  \"reload_1m_peers_ms\": {reload_ms:.1}\n}}\n"
    );
    std::fs::create_dir_all("bench-results").ok();
    std::fs::write("bench-results/native-memory.json", &report).ok();
    print!("{report}");
}
