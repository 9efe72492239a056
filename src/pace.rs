//! A swarm's announce rate, and the interval that keeps it under its
//! object's budget (`SWARM_RATE_TARGET`).
//!
//! One torrent is one Durable Object, and one object is single-threaded
//! (about 1,000 requests/s). A swarm of N peers that each announce every
//! `interval` seconds offers N / interval announces a second, so the swarm
//! hands out `interval = N / (0.85 * target)` on average when that is
//! longer than `INTERVAL` (capped at `INTERVAL_MAX`), each one drawn within
//! a quarter either side, so that a flash crowd that joined together does
//! not keep coming back together: clients that honour it bring the
//! rate under the target within one old interval, and it shortens again as
//! peers leave. (Sizing from the measured rate instead chases its own lag:
//! for one old interval after a change the clients still come at the old
//! pace, then not at all.) The swarm also counts its announces in 10-second
//! buckets over the last minute: the rate it reports. `min interval`
//! scales with the interval, and a peer expires only after the longest
//! interval the swarm handed out lately (plus `PEER_GRACE`), so no honest
//! peer expires because it obeyed.

use crate::config::TrackerConfig;

const BUCKET: u32 = 10;
const BUCKETS: usize = 6;

#[derive(Debug, Clone, Default)]
pub struct Pace {
    counts: [u32; BUCKETS],
    /// The bucket (`now / BUCKET`) `counts[bucket % BUCKETS]` belongs to.
    bucket: u32,
    /// The first bucket of this instance's counting (a reloaded swarm has
    /// no history: its rate is over the seconds it saw).
    since: Option<u32>,
    /// The interval handed out last.
    interval: u32,
    /// The longest interval handed out lately, and until when a peer may
    /// still be on it.
    longest: u32,
    longest_until: u32,
}

/// What an announce is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Intervals {
    pub interval: u32,
    pub min_interval: u32,
}

impl Pace {
    /// Counts one announce at `now`.
    pub fn record(&mut self, now: u32) {
        self.roll(now);
        let slot = (self.bucket as usize) % BUCKETS;
        self.counts[slot] = self.counts[slot].saturating_add(1);
    }

    /// Announces per second over the last minute (or since counting began).
    pub fn rate(&self, now: u32) -> f64 {
        let current = now / BUCKET;
        let lo = current.saturating_sub(BUCKETS as u32 - 1).max(self.since.unwrap_or(current));
        let hi = current.min(self.bucket);
        let total: u64 = if hi >= lo { (lo..=hi).map(|b| self.counts[(b as usize) % BUCKETS] as u64).sum() } else { 0 };
        total as f64 / now.saturating_sub(lo * BUCKET).max(1) as f64
    }

    /// The intervals to hand out at `now` to a swarm of `peers`.
    pub fn intervals<R: rand::Rng + ?Sized>(&mut self, now: u32, peers: usize, config: &TrackerConfig, rng: &mut R) -> Intervals {
        let base = config.interval;
        let paced = match config.swarm_rate_target {
            0 => base,
            target => ((peers as f64 / (target as f64 * 0.85)).ceil() as u32).clamp(base, config.interval_max.max(base)),
        };
        // Spread returns: a busy swarm's peers would otherwise keep the
        // phase they joined with.
        self.interval = if paced > base {
            let spread = paced / 4;
            rng.random_range(paced - spread..=paced + spread).clamp(base, config.interval_max.max(base))
        } else {
            base
        };
        if self.interval >= self.longest || now >= self.longest_until {
            self.longest = self.interval;
            self.longest_until = now.saturating_add(self.interval);
        }
        let min_interval = (config.min_interval as u64 * self.interval as u64 / base.max(1) as u64) as u32;
        Intervals { interval: self.interval, min_interval }
    }

    /// Seconds before a plain re-announce applies: `min_reannounce` scaled
    /// like the interval handed out last.
    pub fn min_reannounce(&self, config: &TrackerConfig) -> u32 {
        let scaled = config.min_reannounce() as u64 * self.interval.max(config.interval) as u64 / config.interval.max(1) as u64;
        scaled as u32
    }

    /// Seconds of silence after which a peer expires: the longest interval
    /// handed out lately, plus `PEER_GRACE`.
    pub fn peer_timeout(&self, config: &TrackerConfig) -> u32 {
        self.longest.max(config.interval).saturating_add(config.peer_grace)
    }

    fn roll(&mut self, now: u32) {
        let current = now / BUCKET;
        self.since.get_or_insert(current);
        if current == self.bucket {
            return;
        }
        for b in (self.bucket + 1)..=current.min(self.bucket + BUCKETS as u32) {
            self.counts[(b as usize) % BUCKETS] = 0;
        }
        if current > self.bucket + BUCKETS as u32 {
            self.counts = [0; BUCKETS];
        }
        self.bucket = current;
    }
}

/// One step of [`simulate`]: time, offered announces per second over the
/// last 10 s, and the interval handed out.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SimStep {
    pub at: u32,
    pub rate: f64,
    pub interval: u32,
}

/// `peers` clients that honour the interval they are given, announcing to
/// one swarm's pace for `seconds` (first announces spread over `INTERVAL`).
/// Returns the offered rate and the interval every 10 s.
pub fn simulate(peers: u32, seconds: u32, config: &TrackerConfig) -> Vec<SimStep> {
    use rand::SeedableRng;
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;
    let mut rng = rand::rngs::SmallRng::seed_from_u64(7);
    let mut pace = Pace::default();
    let mut seen = vec![false; peers as usize];
    let mut listed = 0usize;
    let mut due: BinaryHeap<Reverse<(u32, u32)>> =
        (0..peers).map(|p| Reverse(((p as u64 * config.interval as u64 / peers.max(1) as u64) as u32, p))).collect();
    let mut steps = Vec::new();
    let mut window = 0u32;
    let mut next_report = BUCKET;
    while let Some(Reverse((at, p))) = due.pop() {
        if at >= seconds {
            break;
        }
        while at >= next_report {
            steps.push(SimStep { at: next_report, rate: window as f64 / BUCKET as f64, interval: pace.interval.max(config.interval) });
            window = 0;
            next_report += BUCKET;
        }
        pace.record(at);
        window += 1;
        if !std::mem::replace(&mut seen[p as usize], true) {
            listed += 1;
        }
        let given = pace.intervals(at, listed, config, &mut rng);
        due.push(Reverse((at + given.interval, p)));
    }
    steps
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rng() -> rand::rngs::SmallRng {
        rand::SeedableRng::seed_from_u64(1)
    }

    fn cfg(target: u32) -> TrackerConfig {
        TrackerConfig { interval: 100, min_interval: 50, interval_max: 1000, swarm_rate_target: target, ..TrackerConfig::default() }
    }

    #[test]
    fn the_rate_counts_the_last_minute() {
        let mut p = Pace::default();
        for t in 0..60 {
            for _ in 0..5 {
                p.record(1000 + t);
            }
        }
        assert!((p.rate(1059) - 5.0).abs() < 0.2, "{}", p.rate(1059));
        assert!(p.rate(1200) < 0.01, "an idle minute later");
    }

    #[test]
    fn clients_that_honour_the_interval_bring_the_rate_under_the_target() {
        // 20,000 peers at 100 s offer 200/s; the target is 50/s.
        let c = cfg(50);
        let steps = simulate(20_000, 4_000, &c);
        let early = steps[5];
        assert!(early.rate > 150.0, "{early:?}");
        // After the flash crowd's first returns, the rate settles under the
        // target: on average, and within a fifth of it at the peak.
        let tail = &steps[steps.len() - 100..];
        let rates: Vec<f64> = tail.iter().map(|s| s.rate).collect();
        let mean = rates.iter().sum::<f64>() / rates.len() as f64;
        assert!(mean <= 50.0 && mean > 50.0 * 0.7, "mean {mean}: {rates:?}");
        assert!(rates.iter().all(|r| *r <= 60.0), "{rates:?}");
        assert!(tail.iter().all(|s| s.interval <= c.interval_max));
    }

    #[test]
    fn the_interval_shortens_again_and_expiry_follows_the_longest_given() {
        let c = cfg(50);
        let (mut p, mut r) = (Pace::default(), rng());
        let long = p.intervals(40, 20_000, &c, &mut r);
        assert!((353..=589).contains(&long.interval), "20,000 peers at 42.5/s, a quarter either side: {long:?}");
        assert_eq!(long.min_interval, long.interval / 2);
        assert_eq!(p.peer_timeout(&c), long.interval + c.peer_grace);
        // The swarm shrinks: the interval falls back, but peers told the
        // long one keep it until they could have announced again.
        assert_eq!(p.intervals(100, 1_000, &c, &mut r).interval, 100);
        assert_eq!(p.peer_timeout(&c), long.interval + c.peer_grace);
        p.intervals(40 + long.interval, 1_000, &c, &mut r);
        assert_eq!(p.peer_timeout(&c), 100 + c.peer_grace);
        assert!(p.intervals(500, 1_000_000, &c, &mut r).interval > 900, "capped at INTERVAL_MAX");
    }

    #[test]
    fn no_target_keeps_the_configured_interval() {
        let c = cfg(0);
        let steps = simulate(20_000, 600, &c);
        assert!(steps.iter().all(|s| s.interval == 100));
    }
}
