//! Which peers an announce is given: [`Swarm::select`].

use rand::Rng;

use super::{Peer, Swarm};
use crate::peer::{PeerId, PeerKey};

impl Swarm {
    /// Up to `want` random peers for `requester`, never the requester
    /// itself (its entry, nor another entry with its peer id: its other
    /// address family); a seeder only gets leechers.
    ///
    /// O(want) whatever the swarm's size, and cache-friendly: `want + 1`
    /// consecutive positions (one extra covers the requester) from a random
    /// start, wrapping around, as aquatic and opentracker hand out peers.
    /// Every peer is as likely to be picked; the list's order is join order
    /// shuffled by removals. A random subset drawn without replacement
    /// costs O(want^2) checks once the swarm is large, and positions spread
    /// over the list cost a cache miss each: 6% and then 3.6% of a hot
    /// swarm's CPU, against 0.8% for the window (V8 profiles, 20,000 peers).
    pub fn select<R: Rng + ?Sized>(
        &self,
        requester: (&PeerKey, &PeerId),
        requester_is_seeder: bool,
        want: usize,
        rng: &mut R,
    ) -> Vec<&Peer> {
        let n_seeders = if requester_is_seeder { 0 } else { self.seeders.len() };
        let n = n_seeders + self.leechers.len();
        if want == 0 || n == 0 {
            return Vec::new();
        }
        let picks = want.saturating_add(1).min(n);
        let mut at = if picks == n { 0 } else { rng.random_range(0..n) };
        let mut out = Vec::with_capacity(want.min(n));
        for _ in 0..picks {
            let p = if at < n_seeders { &self.seeders[at] } else { &self.leechers[at - n_seeders] };
            if p.key != *requester.0 && p.id != *requester.1 && out.len() < want {
                out.push(p);
            }
            at = if at + 1 == n { 0 } else { at + 1 };
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{ann, id, k};
    use super::*;
    use crate::announce::AnnounceEvent;
    use rand::rngs::SmallRng;
    use rand::SeedableRng;
    use std::collections::HashSet;

    #[test]
    fn selection_excludes_requester_and_gives_seeders_only_leechers() {
        let mut s = Swarm::new();
        for n in 0..20 {
            s.announce(&ann(n, if n < 10 { 0 } else { 5 }, AnnounceEvent::Started), 1);
        }
        let mut rng = SmallRng::seed_from_u64(7);
        for _ in 0..200 {
            let got = s.select((&k(3), &id(3)), true, 50, &mut rng);
            assert_eq!(got.len(), 10);
            assert!(got.iter().all(|p| s.get(&p.key).map(|(_, seeder)| !seeder).unwrap()));
            let got = s.select((&k(15), &id(15)), false, 50, &mut rng);
            assert_eq!(got.len(), 19);
            assert!(got.iter().all(|p| p.id != id(15)));
            let unique: HashSet<_> = got.iter().map(|p| p.id).collect();
            assert_eq!(unique.len(), 19);
            let got = s.select((&k(15), &id(15)), false, 5, &mut rng);
            assert_eq!(got.len(), 5);
            assert!(got.iter().all(|p| p.id != id(15)));
        }
        assert!(s.select((&k(1), &id(1)), false, 0, &mut rng).is_empty());
    }

    #[test]
    fn selection_from_a_large_swarm_is_distinct_and_full() {
        for size in [52, 60, 97, 1024, 20_000] {
            let mut s = Swarm::new();
            for n in 0..size {
                s.announce(&ann(n, (n % 2).into(), AnnounceEvent::Started), 1);
            }
            let mut rng = SmallRng::seed_from_u64(size as u64);
            for _ in 0..50 {
                let got = s.select((&k(0), &id(0)), true, 50, &mut rng);
                let unique: HashSet<_> = got.iter().map(|p| p.id).collect();
                assert_eq!((got.len(), unique.len()), (50.min(size as usize / 2), got.len()), "size {size}");
                let got = s.select((&k(1), &id(1)), false, 50, &mut rng);
                let unique: HashSet<_> = got.iter().map(|p| p.id).collect();
                assert_eq!((got.len(), unique.len()), (50, 50), "size {size}");
                assert!(got.iter().all(|p| p.id != id(1)));
            }
        }
    }

    #[test]
    fn selection_is_spread_over_the_swarm() {
        let mut s = Swarm::new();
        for n in 0..1000 {
            s.announce(&ann(n, 5, AnnounceEvent::Started), 1);
        }
        let mut rng = SmallRng::seed_from_u64(1);
        let mut seen = HashSet::new();
        for _ in 0..100 {
            for p in s.select((&k(0), &id(0)), false, 50, &mut rng) {
                seen.insert(p.id);
            }
        }
        assert!(seen.len() > 900, "only {} distinct peers handed out", seen.len());
    }
}
