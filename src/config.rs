//! Tracker settings, read from Worker vars with documented defaults.

use std::fmt;

/// Public (anyone may announce any torrent) or private (accounts, passkeys,
/// registered torrents only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrackerMode {
    Public,
    Private,
}

/// Every tunable, with the defaults listed in README's configuration table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackerConfig {
    /// Seconds a client should wait between announces (`INTERVAL`).
    pub interval: u32,
    /// Seconds a client must wait between announces (`MIN_INTERVAL`).
    pub min_interval: u32,
    /// Peers returned when the client sends no `numwant` (`NUMWANT_DEFAULT`).
    pub numwant_default: u32,
    /// Most peers returned to one announce (`NUMWANT_MAX`).
    pub numwant_max: u32,
    /// Extra seconds past `interval` before a silent peer expires (`PEER_GRACE`).
    pub peer_grace: u32,
    /// Seconds between a swarm's KV counter writes, at most (`PUBLISH_WINDOW`).
    pub publish_window: u32,
    /// Seconds a swarm batches re-announce timestamps before writing them (`FLUSH_DELAY`).
    pub flush_delay: u32,
    /// A steady re-announce is written only once storage's copy of the peer's
    /// time is this old (`REFRESH_AFTER`); after a reload a silent peer may
    /// linger up to this much past its timeout.
    pub refresh_after: u32,
    /// Most info hashes in one scrape (`SCRAPE_MAX`).
    pub scrape_max: u32,
    /// Seconds a swarm gathers private-mode credits before writing them to D1 (`CREDIT_FLUSH`).
    pub credit_flush: u32,
    /// Private mode: ledger shards that add credit up per member before D1
    /// (`LEDGER_SHARDS`; `credit_ledger.rs`). Change it only with no credit
    /// in flight: a swarm's retried batch must reach the shard that saw it.
    pub ledger_shards: u8,
    /// Private mode: seconds an isolate reuses a passkey's owner read from KV
    /// (`PASSKEY_CACHE`, 0 = read KV every announce). Changes made through
    /// this isolate apply at once; other isolates see them within this time
    /// (on top of KV's own ~60 s propagation).
    pub passkey_cache: u32,
    /// Whether `/scrape` with no info_hash lists every torrent (`FULL_SCRAPE`).
    pub full_scrape: bool,
    /// Whether `ip=`/`ipv6=` from the client override the connecting address
    /// (`TRUST_CLIENT_IP`); only sensible behind a trusted proxy.
    pub trust_client_ip: bool,
    /// `TRACKER_MODE`: public or private.
    pub mode: TrackerMode,
    /// Private mode: registration needs an invite code (`INVITE_ONLY`).
    pub invite_only: bool,
    /// Private mode: minimum ratio, in thousandths (`MIN_RATIO`, e.g. "0.5").
    pub min_ratio_milli: u32,
    /// Private mode: bytes a user may download before the ratio applies (`RATIO_ALLOWANCE`).
    pub ratio_allowance: u64,
    /// Private mode: uploads must carry `info.private=1` (`REQUIRE_PRIVATE_FLAG`).
    pub require_private_flag: bool,
    /// Private mode: PBKDF2 rounds for new passwords (`PASSWORD_ROUNDS`).
    pub password_rounds: u32,
    /// A plain re-announce sooner than `min_interval` is answered from
    /// memory (counts and a fresh peer list) without being applied: it
    /// writes nothing and credits nothing until the next accepted one
    /// (`ENFORCE_MIN_INTERVAL`; false applies every announce). Events,
    /// role and address changes always apply.
    pub enforce_min_interval: bool,
    /// Private mode: most bytes per second one session may be credited,
    /// per counter (`MAX_CREDIT_RATE`, default 10 Gbit/s); a larger delta
    /// credits nothing and is flagged.
    pub max_credit_rate: u64,
    /// A swarm whose announce rate is above this (per second) lengthens the
    /// interval it hands out (`SWARM_RATE_TARGET`, 0 = never; see `pace`).
    pub swarm_rate_target: u32,
    /// The longest interval a busy swarm hands out (`INTERVAL_MAX`).
    pub interval_max: u32,
    /// Read-through scrape cache (`SCRAPE_CACHE`, seconds): a scrape miss
    /// asks the swarm, which caches its counters in KV that long, and
    /// torrents nobody scrapes write no KV. 0 publishes every swarm's
    /// counters to KV and answers a miss with zeros.
    pub scrape_cache: u32,
    /// While a scrape cache entry lives, KV follows every change of the
    /// counters (`SCRAPE_FOLLOW`); off, the entry simply expires.
    pub scrape_follow: bool,
    /// Most peers one swarm lists (`MAX_PEERS`); newcomers to a full swarm
    /// get peers but are not listed.
    pub max_peers: u32,
    /// Public mode: small swarms share this many objects, written behind
    /// (`SWARM_SHARDS`, 0 = every torrent its own object; see
    /// `crate::swarm::shard` and [`Self::shards`]).
    pub swarm_shards: u32,
    /// A shared swarm this large moves to its own object (`SHARD_PROMOTE`).
    pub shard_promote: u32,
    /// Most announces a Worker isolate sends one object in one call while
    /// an earlier call to it is in flight (`SWARM_BATCH`; 1 = each its own).
    pub swarm_batch: u32,
    /// Least severe structured log line written (`LOG_LEVEL`).
    pub log_level: crate::logging::Level,
    /// Seconds a Worker isolate gathers request counts before sending them to the stats object (`STATS_FLUSH`).
    pub stats_flush: u32,
    /// Seconds the stats object reuses swarm totals read from the scrape counters (`STATS_REFRESH`).
    pub stats_refresh: u32,
    /// Private mode: seconds an API token stays valid after sign-in (`TOKEN_TTL`).
    pub token_ttl: u32,
    /// Private mode: seconds an isolate remembers an unknown passkey or an
    /// unregistered info hash (`NEGATIVE_CACHE`, 0 = never).
    pub negative_cache: u32,
    /// Private mode: served .torrent files keep `url-list`/`httpseeds` (`KEEP_WEB_SEEDS`).
    pub keep_web_seeds: bool,
    /// Private mode: seconds flags and credit batch ids are kept (`FLAG_RETENTION`).
    pub flag_retention: u32,
}

impl Default for TrackerConfig {
    fn default() -> Self {
        TrackerConfig {
            interval: 1800,
            min_interval: 900,
            numwant_default: 50,
            numwant_max: 200,
            peer_grace: 600,
            publish_window: 60,
            flush_delay: 5,
            refresh_after: 21_600,
            credit_flush: 120,
            ledger_shards: 8,
            passkey_cache: 30,
            scrape_max: 64,
            full_scrape: false,
            trust_client_ip: false,
            mode: TrackerMode::Public,
            invite_only: false,
            min_ratio_milli: 500,
            ratio_allowance: 10 * 1024 * 1024 * 1024,
            require_private_flag: true,
            password_rounds: crate::accounts::PBKDF2_ROUNDS,
            enforce_min_interval: true,
            max_credit_rate: 1_250_000_000,
            swarm_rate_target: 500,
            scrape_cache: 1_800,
            scrape_follow: false,
            interval_max: 7_200,
            // What a 128 MB isolate can reload after an eviction (BENCHMARKS.md: one big swarm).
            max_peers: 150_000,
            swarm_shards: 16,
            shard_promote: 1_000,
            swarm_batch: 32,
            log_level: crate::logging::Level::Info,
            stats_flush: 10,
            stats_refresh: 30,
            token_ttl: 2_592_000,
            negative_cache: 30,
            keep_web_seeds: false,
            flag_retention: 7_776_000,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub name: &'static str,
    pub value: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid value '{}' for {}", self.value, self.name)
    }
}

/// A variable's value, trimmed; `None` when unset or blank.
fn trimmed(get: &dyn Fn(&str) -> Option<String>, name: &str) -> Option<String> {
    get(name).map(|v| v.trim().to_string()).filter(|v| !v.is_empty())
}

fn mode(get: &dyn Fn(&str) -> Option<String>) -> Result<TrackerMode, ConfigError> {
    match trimmed(get, "TRACKER_MODE").as_deref() {
        None | Some("public") => Ok(TrackerMode::Public),
        Some("private") => Ok(TrackerMode::Private),
        Some(v) => Err(ConfigError { name: "TRACKER_MODE", value: v.to_string() }),
    }
}

/// `MIN_RATIO` (0-100, e.g. "0.5") in thousandths.
fn min_ratio_milli(get: &dyn Fn(&str) -> Option<String>, default: u32) -> Result<u32, ConfigError> {
    let Some(v) = trimmed(get, "MIN_RATIO") else { return Ok(default) };
    v.parse::<f64>()
        .ok()
        .filter(|r| (0.0..=100.0).contains(r))
        .map(|r| (r * 1000.0).round() as u32)
        .ok_or(ConfigError { name: "MIN_RATIO", value: v })
}

/// A 64-bit count of at least `min`.
fn big(get: &dyn Fn(&str) -> Option<String>, name: &'static str, default: u64, min: u64) -> Result<u64, ConfigError> {
    let Some(v) = trimmed(get, name) else { return Ok(default) };
    v.parse::<u64>().ok().filter(|n| *n >= min).ok_or(ConfigError { name, value: v })
}

impl TrackerConfig {
    /// Builds the config from a variable lookup (the Worker's `env.var`),
    /// falling back to defaults for unset variables.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let d = TrackerConfig::default();
        let num = |name: &'static str, default: u32, min: u32, max: u32| -> Result<u32, ConfigError> {
            match get(name) {
                None => Ok(default),
                Some(v) if v.trim().is_empty() => Ok(default),
                Some(v) => v
                    .trim()
                    .parse::<u32>()
                    .ok()
                    .filter(|n| (min..=max).contains(n))
                    .ok_or(ConfigError { name, value: v }),
            }
        };
        let flag = |name: &'static str, default: bool| -> Result<bool, ConfigError> {
            match get(name).as_deref().map(str::trim) {
                None | Some("") => Ok(default),
                Some("1" | "true" | "yes" | "on") => Ok(true),
                Some("0" | "false" | "no" | "off") => Ok(false),
                Some(v) => Err(ConfigError { name, value: v.to_string() }),
            }
        };
        let config = TrackerConfig {
            interval: num("INTERVAL", d.interval, 10, 86_400)?,
            min_interval: num("MIN_INTERVAL", d.min_interval, 1, 86_400)?,
            numwant_default: num("NUMWANT_DEFAULT", d.numwant_default, 0, 10_000)?,
            numwant_max: num("NUMWANT_MAX", d.numwant_max, 1, 10_000)?,
            peer_grace: num("PEER_GRACE", d.peer_grace, 0, 86_400)?,
            publish_window: num("PUBLISH_WINDOW", d.publish_window, 1, 86_400)?,
            flush_delay: num("FLUSH_DELAY", d.flush_delay, 1, 60)?,
            refresh_after: num("REFRESH_AFTER", d.refresh_after, 0, 604_800)?,
            credit_flush: num("CREDIT_FLUSH", d.credit_flush, 1, 3_600)?,
            ledger_shards: num("LEDGER_SHARDS", d.ledger_shards as u32, 1, 64)? as u8,
            passkey_cache: num("PASSKEY_CACHE", d.passkey_cache, 0, 300)?,
            scrape_max: num("SCRAPE_MAX", d.scrape_max, 1, 1_000)?,
            full_scrape: flag("FULL_SCRAPE", d.full_scrape)?,
            trust_client_ip: flag("TRUST_CLIENT_IP", d.trust_client_ip)?,
            mode: mode(&get)?,
            invite_only: flag("INVITE_ONLY", d.invite_only)?,
            min_ratio_milli: min_ratio_milli(&get, d.min_ratio_milli)?,
            ratio_allowance: big(&get, "RATIO_ALLOWANCE", d.ratio_allowance, 0)?,
            require_private_flag: flag("REQUIRE_PRIVATE_FLAG", d.require_private_flag)?,
            password_rounds: num("PASSWORD_ROUNDS", d.password_rounds, 1_000, 2_000_000)?,
            enforce_min_interval: flag("ENFORCE_MIN_INTERVAL", d.enforce_min_interval)?,
            max_credit_rate: big(&get, "MAX_CREDIT_RATE", d.max_credit_rate, 1)?,
            scrape_cache: num("SCRAPE_CACHE", d.scrape_cache, 0, 604_800)?,
            scrape_follow: flag("SCRAPE_FOLLOW", d.scrape_follow)?,
            swarm_rate_target: num("SWARM_RATE_TARGET", d.swarm_rate_target, 0, 100_000)?,
            interval_max: num("INTERVAL_MAX", d.interval_max, 10, 86_400)?,
            max_peers: num("MAX_PEERS", d.max_peers, 1, 2_000_000)?,
            swarm_shards: num("SWARM_SHARDS", d.swarm_shards, 0, 4_096)?,
            shard_promote: num("SHARD_PROMOTE", d.shard_promote, 2, 10_000)?,
            swarm_batch: num("SWARM_BATCH", d.swarm_batch, 1, 256)?,
            log_level: match trimmed(&get, "LOG_LEVEL") {
                None => d.log_level,
                Some(v) => crate::logging::Level::parse(&v).ok_or(ConfigError { name: "LOG_LEVEL", value: v })?,
            },
            stats_flush: num("STATS_FLUSH", d.stats_flush, 1, 3_600)?,
            stats_refresh: num("STATS_REFRESH", d.stats_refresh, 0, 3_600)?,
            token_ttl: num("TOKEN_TTL", d.token_ttl, 60, 31_536_000)?,
            negative_cache: num("NEGATIVE_CACHE", d.negative_cache, 0, 300)?,
            keep_web_seeds: flag("KEEP_WEB_SEEDS", d.keep_web_seeds)?,
            // At least a day: a credit batch retried after its id was pruned would count twice.
            flag_retention: num("FLAG_RETENTION", d.flag_retention, 86_400, 315_360_000)?,
        };
        Ok(config)
    }

    /// Scrape reads the read-through cache (`cached:` keys; a miss asks the
    /// swarm): `SCRAPE_CACHE` set and no `FULL_SCRAPE` (which has every
    /// swarm publish for good, to list them).
    pub fn scrape_reads_through(&self) -> bool {
        self.scrape_cache > 0 && !self.full_scrape
    }

    /// The shard objects small swarms share: `SWARM_SHARDS` in public
    /// mode with the read-through scrape cache (a shared swarm's counters
    /// are not in KV for `FULL_SCRAPE` or `SCRAPE_CACHE = 0` to read); else 0.
    pub fn shards(&self) -> u32 {
        match self.mode {
            TrackerMode::Public if self.scrape_reads_through() => self.swarm_shards,
            _ => 0,
        }
    }

    pub fn ratio_rule(&self) -> crate::accounts::RatioRule {
        crate::accounts::RatioRule { min_ratio: self.min_ratio_milli as f64 / 1000.0, allowance: self.ratio_allowance }
    }

    /// Seconds of silence after which a peer is dropped.
    pub fn peer_timeout(&self) -> u32 {
        self.interval.saturating_add(self.peer_grace)
    }

    /// Seconds before a plain re-announce is accepted: `min_interval` less
    /// a tenth, since clients round and jitter their timers.
    pub fn min_reannounce(&self) -> u32 {
        if self.enforce_min_interval { self.min_interval - self.min_interval / 10 } else { 0 }
    }

    /// `numwant` as the client asked, bounded by the configured cap.
    pub fn numwant(&self, asked: Option<u32>) -> usize {
        asked.unwrap_or(self.numwant_default).min(self.numwant_max) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_when_unset_and_values_when_set() {
        let c = TrackerConfig::from_lookup(|_| None).unwrap();
        assert_eq!(c, TrackerConfig::default());
        let c = TrackerConfig::from_lookup(|k| match k {
            "INTERVAL" => Some("120".into()),
            "FULL_SCRAPE" => Some("true".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(c.interval, 120);
        assert!(c.full_scrape);
        assert_eq!(c.peer_timeout(), 720);
        let c = TrackerConfig::from_lookup(|k| match k {
            "TRACKER_MODE" => Some("private".into()),
            "MIN_RATIO" => Some("0.75".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(c.mode, TrackerMode::Private);
        assert_eq!(c.ratio_rule().min_ratio, 0.75);
        assert!(TrackerConfig::from_lookup(|k| (k == "TRACKER_MODE").then(|| "secret".into())).is_err());
    }

    #[test]
    fn wrangler_toml_sets_the_defaults() {
        // Operators read defaults in wrangler.toml; they must be the code's.
        let toml = include_str!("../wrangler.toml");
        let vars = toml.split("[vars]").nth(1).unwrap_or("").split("\n[").next().unwrap_or("");
        let lookup: std::collections::HashMap<String, String> = vars
            .lines()
            .filter_map(|l| {
                let (k, v) = l.split_once('=')?;
                Some((k.trim().to_string(), v.trim().trim_matches('"').to_string()))
            })
            .collect();
        assert!(lookup.len() >= 18, "{lookup:?}");
        let c = TrackerConfig::from_lookup(|k| lookup.get(k).cloned()).unwrap();
        assert_eq!(c, TrackerConfig::default());
    }

    #[test]
    fn rejects_out_of_range_values() {
        let e = TrackerConfig::from_lookup(|k| (k == "INTERVAL").then(|| "abc".into())).unwrap_err();
        assert_eq!(e.name, "INTERVAL");
        assert!(TrackerConfig::from_lookup(|k| (k == "NUMWANT_MAX").then(|| "0".into())).is_err());
    }

    #[test]
    fn numwant_is_capped() {
        let c = TrackerConfig::default();
        assert_eq!(c.numwant(None), 50);
        assert_eq!(c.numwant(Some(5000)), 200);
        assert_eq!(c.numwant(Some(0)), 0);
    }
}
