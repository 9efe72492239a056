//! Which peers an announce is given: [`Swarm::select`].

use rand::Rng;

use super::{Peer, Swarm};
use crate::peer::{PeerId, PeerKey};

impl Swarm {
    /// Up to `want` random peers for `requester`, never the requester
    /// itself (its entry, nor another entry with its peer id: its other
    /// address family); a seeder only gets leechers.
    ///
    /// O(want) whatever the swarm's size: `want + 1` positions (one extra
    /// covers the requester) stepping through the list from a random start
    /// by a random stride coprime to its length, so they are distinct and
    /// every peer is as likely to be picked (a random subset drawn without
    /// replacement costs O(want^2) checks once the swarm is large: 6% of a
    /// hot swarm's CPU). The stride spreads the picks over the list rather
    /// than handing out a window of peers that joined together.
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
        let (start, stride) = if picks == n { (0, 1) } else { (rng.random_range(0..n), coprime_stride(n, rng)) };
        let mut at = start;
        let mut out = Vec::with_capacity(want.min(n));
        for _ in 0..picks {
            let p = if at < n_seeders { &self.seeders[at] } else { &self.leechers[at - n_seeders] };
            if p.key != *requester.0 && p.id != *requester.1 && out.len() < want {
                out.push(p);
            }
            // `at + stride` without overflow: both are below `n`.
            at = if at >= n - stride { at - (n - stride) } else { at + stride };
        }
        out
    }
}

/// A step in `1..n` sharing no factor with `n` (n >= 2), so stepping by it
/// from any start visits every position once before repeating: about two
/// draws on average; after 32 unlucky ones, 1.
fn coprime_stride<R: Rng + ?Sized>(n: usize, rng: &mut R) -> usize {
    fn gcd(mut a: usize, mut b: usize) -> usize {
        while b != 0 {
            (a, b) = (b, a % b);
        }
        a
    }
    (0..32).map(|_| rng.random_range(1..n)).find(|&s| gcd(s, n) == 1).unwrap_or(1)
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
