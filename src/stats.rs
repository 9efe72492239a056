//! Operations numbers: what a Worker isolate counts between flushes, what
//! the stats object keeps per minute, the swarm totals read back from the
//! scrape counters, and their JSON (`/stats`) and Prometheus (`/metrics`) forms.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::peer::InfoHash;
use crate::swarm::SwarmCounters;

pub use crate::failure::Failure;

/// Requests served: counted in memory by an isolate and sent as a delta
/// to the stats object, which keeps the running totals in the same shape.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Announce requests answered, failures included.
    pub announces: u64,
    /// Scrape requests answered, failures included.
    pub scrapes: u64,
    /// Requests answered with a `failure reason`, by reason label.
    pub failures: BTreeMap<String, u64>,
}

impl Counts {
    pub fn is_empty(&self) -> bool {
        self.announces == 0 && self.scrapes == 0 && self.failures.is_empty()
    }

    pub fn fail(&mut self, f: Failure) {
        match self.failures.get_mut(f.label()) {
            Some(n) => *n += 1,
            None => {
                self.failures.insert(f.label().to_string(), 1);
            }
        }
    }

    pub fn add(&mut self, other: &Counts) {
        self.announces += other.announces;
        self.scrapes += other.scrapes;
        for (reason, n) in &other.failures {
            *self.failures.entry(reason.clone()).or_default() += n;
        }
    }

    pub fn failures_total(&self) -> u64 {
        self.failures.values().sum()
    }

    /// `self - earlier`, for counters that only grow.
    fn since(&self, earlier: &Counts) -> Counts {
        Counts {
            announces: self.announces.saturating_sub(earlier.announces),
            scrapes: self.scrapes.saturating_sub(earlier.scrapes),
            failures: self
                .failures
                .iter()
                .map(|(r, n)| (r.clone(), n.saturating_sub(earlier.failures.get(r).copied().unwrap_or(0))))
                .filter(|(_, n)| *n > 0)
                .collect(),
        }
    }
}

/// When an isolate sends its counts: at most once per `every_ms`, piggy-backed on a request.
#[derive(Debug, Clone, Copy, Default)]
pub struct FlushClock {
    last_ms: Option<u64>,
}

impl FlushClock {
    /// True when a flush is due; the first request of an isolate starts the clock.
    pub fn due(&mut self, now_ms: u64, every_ms: u64) -> bool {
        match self.last_ms {
            None => {
                self.last_ms = Some(now_ms);
                false
            }
            Some(last) if now_ms.saturating_sub(last) >= every_ms => {
                self.last_ms = Some(now_ms);
                true
            }
            Some(_) => false,
        }
    }
}

/// Minutes of per-minute history the stats object keeps (one row each).
pub const HISTORY_MINUTES: u64 = 24 * 60;
/// Minutes of history `/stats` returns unless asked for more.
pub const DEFAULT_SERIES_MINUTES: u64 = 60;

/// The stats object's totals as of the end of each minute. Each row holds
/// cumulative counts, so a flush rewrites one row (the current minute) and
/// the latest row is the all-time total.
#[derive(Debug, Clone, Default)]
pub struct History {
    /// (minute since the epoch, totals at the end of it), oldest first.
    rows: Vec<(u64, Counts)>,
}

impl History {
    pub fn load(rows: impl IntoIterator<Item = (u64, Counts)>) -> History {
        let mut rows: Vec<(u64, Counts)> = rows.into_iter().collect();
        rows.sort_by_key(|(m, _)| *m);
        History { rows }
    }

    pub fn totals(&self) -> Counts {
        self.rows.last().map(|(_, c)| c.clone()).unwrap_or_default()
    }

    /// The row kept for `minute`, if any.
    pub fn row(&self, minute: u64) -> Option<&Counts> {
        self.rows.binary_search_by_key(&minute, |(m, _)| *m).ok().map(|i| &self.rows[i].1)
    }

    /// Adds a delta at `minute`; returns the row to upsert and the minute
    /// before which rows are to be deleted (when a new minute starts).
    pub fn record(&mut self, minute: u64, delta: &Counts) -> ((u64, Counts), Option<u64>) {
        let mut totals = self.totals();
        totals.add(delta);
        let mut trim = None;
        match self.rows.last_mut() {
            // A clock step backwards folds into the latest row.
            Some((last, counts)) if *last >= minute => {
                *counts = totals.clone();
                return ((*last, totals), None);
            }
            _ => {
                self.rows.push((minute, totals.clone()));
                let keep_from = minute.saturating_sub(HISTORY_MINUTES - 1);
                if self.rows.first().is_some_and(|(m, _)| *m < keep_from) {
                    self.rows.retain(|(m, _)| *m >= keep_from);
                    trim = Some(keep_from);
                }
            }
        }
        ((minute, totals), trim)
    }

    /// Requests per minute for the `minutes` minutes ending at `now_minute`
    /// (oldest first, quiet minutes as zeros).
    pub fn series(&self, now_minute: u64, minutes: u64) -> Vec<MinutePoint> {
        let minutes = minutes.clamp(1, HISTORY_MINUTES);
        let first = now_minute.saturating_sub(minutes - 1);
        // Totals at the end of minute m are those of the last row at or before m.
        let mut next = self.rows.partition_point(|(m, _)| *m < first);
        let zero = Counts::default();
        let mut before = next.checked_sub(1).map(|i| &self.rows[i].1).unwrap_or(&zero);
        let mut points = Vec::with_capacity(minutes as usize);
        for minute in first..=now_minute {
            let mut current = before;
            while let Some((m, c)) = self.rows.get(next) {
                if *m > minute {
                    break;
                }
                current = c;
                next += 1;
            }
            let d = current.since(before);
            points.push(MinutePoint { minute, announces: d.announces, scrapes: d.scrapes, failures: d.failures_total() });
            before = current;
        }
        points
    }
}

/// One minute of the dashboard's chart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MinutePoint {
    /// Minutes since the Unix epoch.
    pub minute: u64,
    pub announces: u64,
    pub scrapes: u64,
    pub failures: u64,
}

/// Swarm totals, summed from the counters every swarm publishes for scrape.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Gauges {
    /// Torrents with at least one peer.
    pub torrents: u64,
    pub peers: u64,
    pub seeders: u64,
    pub leechers: u64,
    /// Completed downloads ever reported, over every torrent with published counters.
    pub completed: u64,
    /// The torrents with the most peers, busiest first.
    pub busiest: Vec<TorrentLine>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TorrentLine {
    pub info_hash: String,
    pub seeders: u64,
    pub leechers: u64,
    pub completed: u64,
}

/// How many torrents the busiest list shows.
pub const BUSIEST: usize = 10;

impl Gauges {
    pub fn sum(counters: impl IntoIterator<Item = (InfoHash, SwarmCounters)>, top: usize) -> Gauges {
        let mut g = Gauges::default();
        let mut lines = Vec::new();
        for (hash, c) in counters {
            g.completed += c.downloaded;
            g.seeders += c.complete;
            g.leechers += c.incomplete;
            if c.complete + c.incomplete > 0 {
                g.torrents += 1;
                lines.push(TorrentLine {
                    info_hash: hash.to_hex(),
                    seeders: c.complete,
                    leechers: c.incomplete,
                    completed: c.downloaded,
                });
            }
        }
        g.peers = g.seeders + g.leechers;
        lines.sort_by(|a, b| (b.seeders + b.leechers).cmp(&(a.seeders + a.leechers)).then(a.info_hash.cmp(&b.info_hash)));
        lines.truncate(top);
        g.busiest = lines;
        g
    }
}

/// Private mode: what D1 holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrivateTotals {
    pub users: u64,
    pub registered_torrents: u64,
}

/// The `/stats` document.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// `public` or `private`.
    pub mode: String,
    /// Unix seconds when this was produced.
    pub generated_at: u64,
    #[serde(flatten)]
    pub counts: Counts,
    #[serde(flatten)]
    pub gauges: Gauges,
    /// Unix seconds when the swarm totals were last read from the scrape counters.
    pub gauges_at: u64,
    /// Private mode only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private: Option<PrivateTotals>,
    /// Requests per minute, oldest first.
    pub history: Vec<MinutePoint>,
}

/// Metric names, types and help, in the order `/metrics` lists them.
const COUNTERS: [(&str, &str); 3] = [
    ("edge_tracker_announces_total", "Announce requests answered, failures included."),
    ("edge_tracker_scrapes_total", "Scrape requests answered, failures included."),
    ("edge_tracker_completed_total", "Completed downloads reported by clients, summed over torrents."),
];

impl Stats {
    /// The Prometheus text exposition format (version 0.0.4).
    pub fn prometheus(&self) -> String {
        let mut out = String::new();
        let values = [self.counts.announces, self.counts.scrapes, self.gauges.completed];
        for ((name, help), value) in COUNTERS.iter().zip(values) {
            metric(&mut out, name, "counter", help, &[("", value)]);
        }
        // Every known reason is listed, so a rate() over a new reason starts from 0.
        let mut failures: BTreeMap<&str, u64> = Failure::ALL.iter().map(|f| (f.label(), 0)).collect();
        for (reason, n) in &self.counts.failures {
            failures.insert(reason.as_str(), *n);
        }
        let _ = writeln!(out, "# HELP edge_tracker_failures_total Requests answered with a failure reason, by reason.");
        let _ = writeln!(out, "# TYPE edge_tracker_failures_total counter");
        for (reason, n) in failures {
            let _ = writeln!(out, "edge_tracker_failures_total{{reason=\"{}\"}} {n}", escape_label(reason));
        }
        let gauges = [
            ("edge_tracker_torrents", "Torrents with at least one peer.", self.gauges.torrents),
            ("edge_tracker_peers", "Peers in all swarms.", self.gauges.peers),
            ("edge_tracker_seeders", "Peers with the whole torrent.", self.gauges.seeders),
            ("edge_tracker_leechers", "Peers still downloading.", self.gauges.leechers),
        ];
        for (name, help, value) in gauges {
            metric(&mut out, name, "gauge", help, &[("", value)]);
        }
        metric(
            &mut out,
            "edge_tracker_swarm_totals_age_seconds",
            "gauge",
            "Seconds since the swarm totals were read from the scrape counters.",
            &[("", self.generated_at.saturating_sub(self.gauges_at))],
        );
        if let Some(p) = self.private {
            metric(&mut out, "edge_tracker_users", "gauge", "Private mode: registered accounts.", &[("", p.users)]);
            metric(
                &mut out,
                "edge_tracker_registered_torrents",
                "gauge",
                "Private mode: torrents registered on the tracker.",
                &[("", p.registered_torrents)],
            );
        }
        out
    }
}

fn metric(out: &mut String, name: &str, kind: &str, help: &str, samples: &[(&str, u64)]) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
    for (labels, value) in samples {
        let _ = writeln!(out, "{name}{labels} {value}");
    }
}

fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(announces: u64, scrapes: u64, failures: &[(&str, u64)]) -> Counts {
        Counts { announces, scrapes, failures: failures.iter().map(|(r, n)| (r.to_string(), *n)).collect() }
    }

    #[test]
    fn counts_add_up() {
        let mut c = Counts::default();
        assert!(c.is_empty());
        c.announces += 2;
        c.fail(Failure::InvalidAnnounce);
        c.fail(Failure::InvalidAnnounce);
        c.add(&counts(1, 3, &[("ratio_too_low", 1)]));
        assert_eq!(c, counts(3, 3, &[("invalid_announce", 2), ("ratio_too_low", 1)]));
        assert_eq!(c.failures_total(), 3);
        let json = serde_json::to_string(&c).unwrap();
        assert_eq!(serde_json::from_str::<Counts>(&json).unwrap(), c);
    }

    #[test]
    fn flush_clock_waits_between_flushes() {
        let mut clock = FlushClock::default();
        assert!(!clock.due(1_000, 10_000));
        assert!(!clock.due(5_000, 10_000));
        assert!(clock.due(11_000, 10_000));
        assert!(!clock.due(12_000, 10_000));
        assert!(clock.due(21_000, 10_000));
    }

    #[test]
    fn history_keeps_cumulative_rows_and_gives_per_minute_counts() {
        let mut h = History::default();
        let (row, trim) = h.record(100, &counts(5, 1, &[]));
        assert_eq!(row, (100, counts(5, 1, &[])));
        assert_eq!(trim, None);
        // A second flush in the same minute rewrites that minute's row.
        let (row, _) = h.record(100, &counts(2, 0, &[("invalid_query", 1)]));
        assert_eq!(row, (100, counts(7, 1, &[("invalid_query", 1)])));
        h.record(102, &counts(3, 0, &[]));
        assert_eq!(h.totals(), counts(10, 1, &[("invalid_query", 1)]));
        let s = h.series(103, 5);
        let announces: Vec<u64> = s.iter().map(|p| p.announces).collect();
        assert_eq!(s.first().unwrap().minute, 99);
        assert_eq!(announces, vec![0, 7, 0, 3, 0]);
        assert_eq!(s[1].failures, 1);
        // A window that starts after the first row counts from the row before it.
        let s = h.series(103, 2);
        assert_eq!(s.iter().map(|p| p.announces).collect::<Vec<_>>(), vec![3, 0]);
        // Reloaded rows give the same answers.
        assert_eq!(h.row(100), Some(&counts(7, 1, &[("invalid_query", 1)])));
        assert_eq!(h.row(101), None);
        let again = History::load(h.rows.clone().into_iter().rev());
        assert_eq!(again.series(103, 5), h.series(103, 5));
    }

    #[test]
    fn history_is_bounded() {
        let mut h = History::default();
        h.record(0, &counts(1, 0, &[]));
        let (_, trim) = h.record(HISTORY_MINUTES + 5, &counts(1, 0, &[]));
        assert_eq!(trim, Some(6));
        assert_eq!(h.rows.len(), 1);
        assert_eq!(h.totals().announces, 2, "totals survive trimming");
        // A clock step backwards never reorders rows.
        let (row, _) = h.record(3, &counts(1, 0, &[]));
        assert_eq!(row.0, HISTORY_MINUTES + 5);
    }

    #[test]
    fn gauges_sum_swarms_and_rank_the_busiest() {
        let c = |complete, incomplete, downloaded| SwarmCounters { complete, incomplete, downloaded };
        let g = Gauges::sum(
            [
                (InfoHash([1; 20]), c(1, 1, 4)),
                (InfoHash([2; 20]), c(0, 0, 9)),
                (InfoHash([3; 20]), c(5, 2, 0)),
                (InfoHash([4; 20]), c(0, 1, 0)),
            ],
            2,
        );
        assert_eq!((g.torrents, g.peers, g.seeders, g.leechers, g.completed), (3, 10, 6, 4, 13));
        assert_eq!(g.busiest.len(), 2);
        assert_eq!(g.busiest[0].info_hash, InfoHash([3; 20]).to_hex());
        assert_eq!((g.busiest[1].seeders, g.busiest[1].leechers, g.busiest[1].completed), (1, 1, 4));
    }

    #[test]
    fn prometheus_text_lists_every_metric_once() {
        let stats = Stats {
            mode: "private".into(),
            generated_at: 1_000,
            counts: counts(7, 2, &[("unknown_passkey", 3)]),
            gauges: Gauges { torrents: 1, peers: 3, seeders: 1, leechers: 2, completed: 4, busiest: vec![] },
            gauges_at: 990,
            private: Some(PrivateTotals { users: 5, registered_torrents: 6 }),
            history: vec![],
        };
        let text = stats.prometheus();
        let lines: Vec<&str> = text.lines().collect();
        for expected in [
            "# TYPE edge_tracker_announces_total counter",
            "edge_tracker_announces_total 7",
            "edge_tracker_scrapes_total 2",
            "edge_tracker_completed_total 4",
            "edge_tracker_failures_total{reason=\"unknown_passkey\"} 3",
            "edge_tracker_failures_total{reason=\"ratio_too_low\"} 0",
            "# TYPE edge_tracker_peers gauge",
            "edge_tracker_peers 3",
            "edge_tracker_swarm_totals_age_seconds 10",
            "edge_tracker_users 5",
            "edge_tracker_registered_torrents 6",
        ] {
            assert!(lines.contains(&expected), "missing {expected:?} in\n{text}");
        }
        let types = lines.iter().filter(|l| l.starts_with("# TYPE edge_tracker_failures_total")).count();
        assert_eq!(types, 1);
        assert!(text.ends_with('\n'));
        let public = Stats { private: None, ..stats };
        assert!(!public.prometheus().contains("edge_tracker_users"));
    }
}
