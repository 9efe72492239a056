//! The adaptive interval (`src/pace.rs`) under a flash crowd: a release
//! whose peers all join within the first `INTERVAL` and then honour the
//! interval they are given. Reports the offered announce rate into the one
//! swarm object over time against `SWARM_RATE_TARGET`. Writes
//! bench-results/adaptive-interval.json.

use edge_tracker::config::TrackerConfig;
use edge_tracker::pace::simulate;

fn main() {
    let mut runs = Vec::new();
    for (peers, target) in [(2_000_000u32, 500u32), (500_000, 100)] {
        let config = TrackerConfig { swarm_rate_target: target, ..TrackerConfig::default() };
        let hours = 6;
        let steps = simulate(peers, hours * 3600, &config);
        let last_hour: Vec<_> = steps.iter().filter(|s| s.at > (hours - 1) * 3600).collect();
        let mean = last_hour.iter().map(|s| s.rate).sum::<f64>() / last_hour.len() as f64;
        let peak = last_hour.iter().map(|s| s.rate).fold(0.0, f64::max);
        let first_peak = steps.iter().map(|s| s.rate).fold(0.0, f64::max);
        let interval = last_hour.last().map_or(0, |s| s.interval);
        // The offered rate at INTERVAL, without pacing.
        let unpaced = peers as f64 / config.interval as f64;
        let line = format!(
            "{{\"peers\":{peers},\"target_per_s\":{target},\"interval_s\":{},\"unpaced_rate_per_s\":{unpaced:.0},\"join_peak_per_s\":{first_peak:.0},\"last_hour_mean_per_s\":{mean:.0},\"last_hour_peak_10s_per_s\":{peak:.0},\"last_interval_given_s\":{interval}}}",
            config.interval
        );
        eprintln!("adaptive interval: {line}");
        runs.push(line);
    }
    std::fs::create_dir_all("bench-results").ok();
    std::fs::write("bench-results/adaptive-interval.json", format!("[{}]\n", runs.join(",\n"))).ok();
}
