//! Swarm totals that cost the same at 10 torrents and at 10M. Each swarm
//! reports its counters (absolute, not deltas) to one of [`SHARDS`] totals
//! shards when it publishes them for scrape. A shard keeps each swarm's
//! last counters (a SQLite row) and the sums over them (in memory, summed
//! from the rows when the shard loads), and moves the sums by the
//! difference between a report and the row it replaces. So a report that
//! is retried, duplicated or late moves nothing twice: the sums are always
//! the sum of the rows. `/stats` asks each shard for its sums and busiest
//! torrents: [`SHARDS`] requests per refresh, whatever the number of torrents.

use crate::peer::InfoHash;
use crate::stats::{Gauges, TorrentLine};
use crate::swarm::SwarmCounters;

/// Shards the swarm reports are spread over (by the info hash's first
/// byte). At 10M torrents publishing every 15 minutes on average, each
/// takes about 350 reports a second, a third of a Durable Object's ~1,000.
pub const SHARDS: u8 = 32;

/// The shard a torrent reports to.
pub fn shard_of(hash: &InfoHash) -> u8 {
    hash.0[0] % SHARDS
}

/// The shard's Durable Object name (a `StatsObject` of its own).
pub fn shard_name(shard: u8) -> String {
    format!("totals-{shard}")
}

/// A report: `<40 hex> <complete> <incomplete> <downloaded>`; a request
/// carries one or more, a line each.
pub fn report_line(hash: &InfoHash, c: SwarmCounters) -> String {
    format!("{} {}", hash.to_hex(), c.to_kv())
}

pub fn parse_report_line(line: &str) -> Option<(InfoHash, SwarmCounters)> {
    let (hex, counters) = line.split_once(' ')?;
    Some((InfoHash::from_hex(hex)?, SwarmCounters::from_kv(counters)?))
}

/// How many of the busiest swarms a shard keeps track of in memory, so
/// that its top ten are known without reading every row.
pub const CANDIDATES: usize = 100;

/// The order of the busiest list: more peers first, then the lower hash
/// (as `Gauges::sum` sorts). Only swarms with peers are ranked.
type Rank = (u64, std::cmp::Reverse<[u8; 20]>);

fn rank(hash: &InfoHash, c: &SwarmCounters) -> Rank {
    (c.complete + c.incomplete, std::cmp::Reverse(hash.0))
}

/// A shard's sums and busiest candidates.
#[derive(Debug, Clone, Default)]
pub struct ShardTotals {
    pub torrents: u64,
    pub seeders: u64,
    pub leechers: u64,
    pub completed: u64,
    /// The best-ranked swarms seen, at most `CANDIDATES`.
    candidates: Vec<(InfoHash, SwarmCounters)>,
    /// No swarm outside `candidates` ranks above this (None: none has peers).
    floor: Option<Rank>,
}

impl ShardTotals {
    /// From every row of the shard.
    pub fn load(rows: impl IntoIterator<Item = (InfoHash, SwarmCounters)>) -> ShardTotals {
        let mut t = ShardTotals::default();
        for (hash, c) in rows {
            t.apply(&hash, None, c);
        }
        t
    }

    /// A swarm's report replaced its row `old` (None: it had none) by `new`.
    pub fn apply(&mut self, hash: &InfoHash, old: Option<SwarmCounters>, new: SwarmCounters) {
        let old = old.unwrap_or_default();
        let has_peers = |c: &SwarmCounters| c.complete + c.incomplete > 0;
        self.torrents = self.torrents + has_peers(&new) as u64 - has_peers(&old) as u64;
        self.seeders = (self.seeders + new.complete).saturating_sub(old.complete);
        self.leechers = (self.leechers + new.incomplete).saturating_sub(old.incomplete);
        self.completed = (self.completed + new.downloaded).saturating_sub(old.downloaded);
        self.rank_update(hash, new);
    }

    fn rank_update(&mut self, hash: &InfoHash, new: SwarmCounters) {
        let peers = new.complete + new.incomplete;
        if let Some(i) = self.candidates.iter().position(|(h, _)| h == hash) {
            if peers == 0 {
                self.candidates.swap_remove(i);
            } else {
                self.candidates[i].1 = new;
            }
            return;
        }
        if peers == 0 {
            return;
        }
        let r = rank(hash, &new);
        if self.candidates.len() < CANDIDATES {
            self.candidates.push((*hash, new));
            return;
        }
        let (min_i, min_rank) = self
            .candidates
            .iter()
            .enumerate()
            .map(|(i, (h, c))| (i, rank(h, c)))
            .min_by(|a, b| a.1.cmp(&b.1))
            .expect("CANDIDATES > 0");
        if r > min_rank {
            self.candidates[min_i] = (*hash, new);
            self.floor = self.floor.max(Some(min_rank));
        } else {
            self.floor = self.floor.max(Some(r));
        }
    }

    /// The shard's gauges with its `top` busiest swarms, or None when the
    /// candidates cannot tell them for sure (busy swarms shrank below one
    /// that is not tracked): then read the best rows and `reset_candidates`.
    pub fn gauges(&self, top: usize) -> Option<Gauges> {
        let mut ranked: Vec<&(InfoHash, SwarmCounters)> = self.candidates.iter().collect();
        insertion_sort(&mut ranked, |a, b| rank(&a.0, &a.1) > rank(&b.0, &b.1));
        ranked.truncate(top);
        let exact = match self.floor {
            None => true,
            Some(floor) => ranked.len() == top && ranked.last().is_none_or(|(h, c)| rank(h, c) > floor),
        };
        if !exact {
            return None;
        }
        let busiest = ranked
            .into_iter()
            .map(|(h, c)| TorrentLine { info_hash: h.to_hex(), seeders: c.complete, leechers: c.incomplete, completed: c.downloaded })
            .collect();
        Some(self.gauges_with(busiest))
    }

    fn gauges_with(&self, busiest: Vec<TorrentLine>) -> Gauges {
        Gauges {
            torrents: self.torrents,
            peers: self.seeders + self.leechers,
            seeders: self.seeders,
            leechers: self.leechers,
            completed: self.completed,
            busiest,
        }
    }

    /// After reading the shard's best-ranked rows (at most `CANDIDATES`,
    /// best first, swarms with peers only).
    pub fn reset_candidates(&mut self, best: Vec<(InfoHash, SwarmCounters)>) {
        self.floor = if best.len() == CANDIDATES { best.last().map(|(h, c)| rank(h, c)) } else { None };
        self.candidates = best;
    }
}

/// A shard's answer as text (cheaper in the wasm than JSON): a line of
/// `torrents seeders leechers completed`, then a line per busy swarm,
/// `<40 hex> seeders leechers completed`.
pub fn gauges_text(g: &Gauges) -> String {
    let mut out = format!("{} {} {} {}\n", g.torrents, g.seeders, g.leechers, g.completed);
    for t in &g.busiest {
        out.push_str(&format!("{} {} {} {}\n", t.info_hash, t.seeders, t.leechers, t.completed));
    }
    out
}

pub fn parse_gauges_text(text: &str) -> Option<Gauges> {
    let mut lines = text.lines();
    let nums = |s: &str| -> Option<[u64; 4]> {
        let mut it = s.split(' ').map(|n| n.parse::<u64>().ok());
        let n = [it.next()??, it.next()??, it.next()??, it.next()??];
        it.next().is_none().then_some(n)
    };
    let [torrents, seeders, leechers, completed] = nums(lines.next()?)?;
    let mut busiest = Vec::new();
    for line in lines {
        let (hex, rest) = line.split_once(' ')?;
        let c = SwarmCounters::from_kv(rest)?;
        busiest.push(TorrentLine { info_hash: InfoHash::from_hex(hex)?.to_hex(), seeders: c.complete, leechers: c.incomplete, completed: c.downloaded });
    }
    Some(Gauges { torrents, peers: seeders + leechers, seeders, leechers, completed, busiest })
}

/// Adds a shard's gauges into the whole tracker's; the busiest lists of
/// all shards merge into the `top` busiest overall.
pub fn merge(into: &mut Gauges, shard: Gauges, top: usize) {
    into.torrents += shard.torrents;
    into.peers += shard.peers;
    into.seeders += shard.seeders;
    into.leechers += shard.leechers;
    into.completed += shard.completed;
    into.busiest.extend(shard.busiest);
    fn key(t: &TorrentLine) -> (u64, std::cmp::Reverse<&str>) {
        (t.seeders + t.leechers, std::cmp::Reverse(t.info_hash.as_str()))
    }
    insertion_sort(&mut into.busiest, |a, b| key(a) > key(b));
    into.busiest.truncate(top);
}

/// Sorts `v` so that `first(a, b)` holds for every earlier `a`. For the
/// few hundred items here: the standard sorts cost ~10 KiB of wasm per
/// item type.
fn insertion_sort<T>(v: &mut [T], first: impl Fn(&T, &T) -> bool) {
    for i in 1..v.len() {
        let mut j = i;
        while j > 0 && first(&v[j], &v[j - 1]) {
            v.swap(j, j - 1);
            j -= 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::BUSIEST;

    fn c(complete: u64, incomplete: u64, downloaded: u64) -> SwarmCounters {
        SwarmCounters { complete, incomplete, downloaded }
    }

    fn hash(n: u32) -> InfoHash {
        let mut h = [7u8; 20];
        h[..4].copy_from_slice(&n.to_be_bytes());
        InfoHash(h)
    }

    /// A shard fed reports, with the rows as SQLite would hold them.
    struct Model {
        rows: std::collections::BTreeMap<[u8; 20], SwarmCounters>,
        totals: ShardTotals,
    }

    impl Model {
        fn report(&mut self, h: InfoHash, new: SwarmCounters) {
            let old = self.rows.insert(h.0, new);
            self.totals.apply(&h, old, new);
        }
        fn check(&mut self) {
            let all = Gauges::sum(self.rows.iter().map(|(h, c)| (InfoHash(*h), *c)), BUSIEST);
            let got = match self.totals.gauges(BUSIEST) {
                Some(g) => g,
                None => {
                    // As the shard does: read the best rows again.
                    let mut best: Vec<_> =
                        self.rows.iter().filter(|(_, c)| c.complete + c.incomplete > 0).map(|(h, c)| (InfoHash(*h), *c)).collect();
                    best.sort_by_key(|b| std::cmp::Reverse(rank(&b.0, &b.1)));
                    best.truncate(CANDIDATES);
                    self.totals.reset_candidates(best);
                    self.totals.gauges(BUSIEST).expect("exact after a reset")
                }
            };
            assert_eq!(got, all);
        }
    }

    #[test]
    fn sums_and_busiest_follow_the_rows_whatever_the_order_of_reports() {
        let mut m = Model { rows: Default::default(), totals: ShardTotals::default() };
        let mut x = 12345u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for step in 0..20_000 {
            let h = hash((next() % 400) as u32);
            let peers = if next() % 3 == 0 { 0 } else { next() % 50 };
            let seeders = next() % (peers + 1);
            m.report(h, c(seeders, peers - seeders, next() % 10));
            if step % 97 == 0 {
                m.check();
            }
        }
        m.check();
        // A reload sums the same.
        let again = ShardTotals::load(m.rows.iter().map(|(h, c)| (InfoHash(*h), *c)));
        assert_eq!((again.torrents, again.seeders, again.leechers, again.completed), (m.totals.torrents, m.totals.seeders, m.totals.leechers, m.totals.completed));
    }

    #[test]
    fn a_repeated_report_moves_nothing() {
        let mut m = Model { rows: Default::default(), totals: ShardTotals::default() };
        m.report(hash(1), c(2, 3, 4));
        m.report(hash(1), c(2, 3, 4));
        m.report(hash(1), c(2, 3, 4));
        m.report(hash(2), c(0, 1, 0));
        let g = m.totals.gauges(BUSIEST).unwrap();
        assert_eq!((g.torrents, g.peers, g.seeders, g.leechers, g.completed), (2, 6, 2, 4, 4));
        // The swarm empties: its completed count stays, its peers go.
        m.report(hash(1), c(0, 0, 5));
        let g = m.totals.gauges(BUSIEST).unwrap();
        assert_eq!((g.torrents, g.peers, g.completed), (1, 1, 5));
        m.check();
    }

    #[test]
    fn shards_merge_into_the_busiest_overall() {
        let mut all = Gauges::default();
        let mut shards = vec![ShardTotals::default(); 3];
        for n in 0..60u32 {
            let h = hash(n);
            shards[n as usize % 3].apply(&h, None, c(n as u64 % 7, n as u64, 1));
        }
        for s in &shards {
            let g = s.gauges(BUSIEST).unwrap();
            assert_eq!(parse_gauges_text(&gauges_text(&g)), Some(g.clone()));
            merge(&mut all, g, BUSIEST);
        }
        let expect = Gauges::sum((0..60u32).map(|n| (hash(n), c(n as u64 % 7, n as u64, 1))), BUSIEST);
        assert_eq!(all, expect);
    }

    #[test]
    fn report_lines_round_trip() {
        let line = report_line(&hash(9), c(1, 2, 3));
        assert_eq!(parse_report_line(&line), Some((hash(9), c(1, 2, 3))));
        assert_eq!(parse_report_line("zz 1 2 3"), None);
        assert_eq!(parse_report_line(&format!("{} 1 2", hash(9).to_hex())), None);
        assert!(shard_of(&hash(9)) < SHARDS);
    }
}
