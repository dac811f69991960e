//! report.json's schema (documented in loadtest/README.md; `schema_version` changes when a
//! field is renamed or removed) and report.md.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

/// The version of report.json's schema.
pub const SCHEMA_VERSION: u32 = 1;

/// Summary statistics of a sample.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    /// Sample size.
    pub count: u64,
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest.
    pub max: f64,
    /// Mean.
    pub mean: f64,
}

impl Stats {
    /// Of ascending values.
    pub fn of_sorted(v: &[f64]) -> Self {
        let q = |p| crate::journal::quantile(v, p);
        let mean = if v.is_empty() { 0.0 } else { v.iter().sum::<f64>() / v.len() as f64 };
        Self {
            count: v.len() as u64,
            p50: q(0.5),
            p95: q(0.95),
            p99: q(0.99),
            max: v.last().copied().unwrap_or(0.0),
            mean,
        }
    }
}

/// The whole report.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Report {
    /// [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// The command line.
    pub command: String,
    /// The fleet.
    pub fleet: Fleet,
    /// Simulation settings.
    pub simulation: Simulation,
    /// One entry per heuristic run.
    pub heuristics: Vec<HeuristicReport>,
    /// The theoretical minimum for the fleet's context mix.
    pub theoretical_minimum: Minimum,
    /// Assumptions the numbers rest on.
    pub assumptions: Vec<String>,
}

/// The fleet.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Fleet {
    /// Seed of world and fleet.
    pub seed: u64,
    /// Households generated.
    pub households: usize,
    /// Gateway devices.
    pub devices: usize,
    /// Devices per vendor.
    pub by_vendor: BTreeMap<String, usize>,
    /// Devices per class.
    pub by_class: BTreeMap<String, usize>,
    /// Vendor accounts linked.
    pub accounts: usize,
}

/// Simulation settings.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Simulation {
    /// Simulated start (RFC 3339).
    pub start: String,
    /// Simulated hours.
    pub hours: f64,
    /// Simulated seconds per tick.
    pub tick_seconds: f64,
    /// "memory" or "redis".
    pub store: String,
    /// Injected faults.
    pub faults: Vec<String>,
    /// Charge actions per simulated hour.
    pub actions_per_hour: f64,
    /// Context bounds, seconds.
    pub bounds_seconds: BTreeMap<String, f64>,
}

/// One heuristic's results.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct HeuristicReport {
    /// "adaptive", "fixed-2min" or "fixed-per-class".
    pub heuristic: String,
    /// Wall seconds of the simulated run (setup excluded).
    pub wall_seconds: f64,
    /// Wall seconds of setup (simulators, linking, discovery).
    pub setup_wall_seconds: f64,
    /// CPU seconds of the simulated run (whole process: gateway and simulators).
    pub cpu_seconds: f64,
    /// Peak resident memory, MiB.
    pub peak_rss_mib: f64,
    /// Whether the peak is this run's own (else the process's so far).
    pub peak_rss_per_run: bool,
    /// Poll outcomes.
    pub polls: Polls,
    /// Change-to-observation latency against the ground truth.
    pub freshness: Freshness,
    /// Vendor requests.
    pub requests: Requests,
    /// HTTP 429 answers the gateway received (all vendors).
    pub rate_limited_responses: u64,
    /// Car wake-ups.
    pub car_wakeups: Wakeups,
    /// Scheduling lag and tick cost.
    pub scheduling: Scheduling,
    /// Age of the data the API served, per simulated hour (every device).
    pub data_age: Vec<HourAge>,
    /// The same for the devices whose vendor quota pays for their bounds.
    #[serde(default)]
    pub data_age_bound_keeping: Vec<HourAge>,
    /// The same for the quota-limited devices (read as often as their quota allows).
    #[serde(default)]
    pub data_age_quota_limited: Vec<HourAge>,
    /// The command load, when one was configured.
    pub actions: Option<ActionsReport>,
}

/// Poll outcomes.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Polls {
    /// Reads stored.
    pub stored: u64,
    /// Vendor reads that failed, by error kind (asleep vehicles included).
    pub failed: BTreeMap<String, u64>,
    /// Polls a vendor limit or breaker held back.
    pub deferred: u64,
    /// Of those, by reason (`rate_limit`, `daily_quota`, `concurrency`, `vendor_hold`,
    /// `breaker_open`).
    #[serde(default)]
    pub deferred_by_reason: BTreeMap<String, u64>,
    /// Of those, by vendor.
    #[serde(default)]
    pub deferred_by_vendor: BTreeMap<String, u64>,
}

/// Freshness against the ground truth.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Freshness {
    /// (change, reading device) pairs checked.
    pub changes_checked: u64,
    /// Checked pairs seen later than their bound, or never.
    pub violations: u64,
    /// Of those, never seen.
    pub unseen: u64,
    /// Quota-limited devices that had changes in the run (their changes are reported, not
    /// checked).
    pub quota_limited_devices: u64,
    /// Every quota-limited device, by vendor: devices whose share of a daily quota or of a
    /// gateway-wide rate was longer than their context's bound at any minute of the run.
    #[serde(default)]
    pub quota_limited_by_vendor: BTreeMap<String, u64>,
    /// Changes of quota-limited devices (not checked).
    pub quota_limited_changes: u64,
    /// Share of checked changes seen within their bound.
    pub share_within_bound: f64,
    /// Per context the device was in when the change happened.
    pub per_context: BTreeMap<String, Latency>,
    /// Per context and change kind.
    pub per_context_kind: BTreeMap<String, BTreeMap<String, Latency>>,
    /// Latency CDF per context: [seconds, share] points.
    pub cdf: BTreeMap<String, Vec<[f64; 2]>>,
    /// Up to 20 late changes, for a first look.
    pub violation_examples: Vec<String>,
}

/// Latency in one bucket.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Latency {
    /// The bound, seconds.
    pub bound_seconds: f64,
    /// Changes checked.
    pub changes: u64,
    /// Seen within the bound.
    pub within_bound: u64,
    /// within_bound / changes.
    pub share_within_bound: f64,
    /// Never seen before the run ended.
    pub unseen: u64,
    /// Latency of the seen ones, seconds.
    pub latency_seconds: Stats,
}

/// Vendor requests.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Requests {
    /// All vendor requests during the run (setup excluded).
    pub total: u64,
    /// Per device and simulated hour.
    pub per_device_hour: f64,
    /// Data requests (reads) per device and hour.
    pub reads_per_device_hour: f64,
    /// Money per device-month (30 days) over the whole fleet, USD.
    pub usd_per_device_month: f64,
    /// Per vendor.
    pub by_vendor: BTreeMap<String, VendorRequests>,
}

/// One vendor's requests.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct VendorRequests {
    /// Its devices.
    pub devices: u64,
    /// Requests.
    pub requests: u64,
    /// Per device and simulated hour.
    pub per_device_hour: f64,
    /// Per endpoint class (read, command, wake, auth).
    pub by_class: BTreeMap<String, u64>,
    /// 429 answers.
    pub rate_limited: u64,
    /// 5xx answers.
    pub server_errors: u64,
    /// Highest share of the daily quota used (vendors with a daily quota).
    pub quota_used_max: Option<f64>,
    /// Money per device-month at the price table (vendors that bill per request).
    pub usd_per_device_month: Option<f64>,
}

/// Car wake-ups (the world's count).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Wakeups {
    /// Wake requests that reached a car.
    pub requested: u64,
    /// Asleep-to-online transitions they caused.
    pub performed: u64,
}

/// Scheduling.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Scheduling {
    /// Claim lag (simulated now − due, seconds). Includes up to one tick, since the manual
    /// clock jumps a tick at a time.
    pub lag_seconds: Stats,
    /// Wall milliseconds one tick took (poller until drained, executor).
    pub tick_wall_ms: Stats,
    /// Polls per wall second of the run.
    pub polls_per_wall_second: f64,
}

/// Age of the served data in one simulated hour (sampled every 5 minutes per device).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct HourAge {
    /// Hours since the run's start.
    pub hour: u32,
    /// Mean age, seconds.
    pub mean_s: f64,
    /// 95th percentile.
    pub p95_s: f64,
    /// Largest.
    pub max_s: f64,
}

/// The command load.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ActionsReport {
    /// Action requests sent to the API.
    pub requested: u64,
    /// Distinct actions the API created.
    pub created: u64,
    /// Requests the API refused, by "status title".
    pub rejected: BTreeMap<String, u64>,
    /// Final state per action (PENDING ones were still open at the end).
    pub outcomes: BTreeMap<String, u64>,
    /// From creation to CONFIRMED, seconds.
    pub confirmation_latency_s: Stats,
}

/// The theoretical minimum.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Minimum {
    /// The formula, in words.
    pub formula: String,
    /// Device-hours spent in each context (from the adaptive run's reads).
    pub context_hours: BTreeMap<String, f64>,
    /// Data requests per device-hour over the fleet.
    pub reads_per_device_hour: f64,
    /// Per vendor.
    pub by_vendor: BTreeMap<String, f64>,
    /// Per heuristic: its reads per device-hour divided by the minimum.
    pub ratio: BTreeMap<String, f64>,
    /// Vendors none of whose devices were quota-limited in the adaptive run.
    pub bound_keeping_vendors: Vec<String>,
    /// The minimum over those vendors' devices.
    pub bound_keeping_reads_per_device_hour: f64,
    /// Per heuristic: its reads per device-hour over those vendors divided by their minimum.
    pub bound_keeping_ratio: BTreeMap<String, f64>,
}

fn pct(x: f64) -> String {
    format!("{:.2} %", x * 100.0)
}

impl Report {
    /// report.md.
    pub fn markdown(&self) -> String {
        let mut s = String::new();
        let f = &self.fleet;
        let _ = writeln!(s, "# oemgate load test\n");
        let _ = writeln!(s, "`{}`\n", self.command);
        let _ = writeln!(
            s,
            "Fleet: {} devices in {} households ({} vendor accounts), seed {}. Simulated {} h from {} in {} s ticks, {} store{}.\n",
            f.devices,
            f.households,
            f.accounts,
            f.seed,
            self.simulation.hours,
            self.simulation.start,
            self.simulation.tick_seconds,
            self.simulation.store,
            if self.simulation.faults.is_empty() {
                String::new()
            } else {
                format!(", faults: {}", self.simulation.faults.join(", "))
            }
        );
        let _ = writeln!(s, "Devices by vendor: {}\n", join_counts(&f.by_vendor));
        let _ = writeln!(s, "Devices by class: {}\n", join_counts(&f.by_class));
        let _ = writeln!(s, "## Heuristics\n");
        let _ = writeln!(
            s,
            "| heuristic | within bound | violations | requests/device-h | reads/device-h | × minimum | × minimum (bound-keeping vendors) | USD/device-month | 429s | car wakes | wall s | CPU s | peak RSS MiB |"
        );
        let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|---|---|---|---|");
        for h in &self.heuristics {
            let m = &self.theoretical_minimum;
            let ratio = m.ratio.get(&h.heuristic).copied().unwrap_or(0.0);
            let keeping = m.bound_keeping_ratio.get(&h.heuristic).copied().unwrap_or(0.0);
            let _ = writeln!(
                s,
                "| {} | {} | {} | {:.2} | {:.2} | {:.2} | {:.2} | {:.4} | {} | {} | {:.0} | {:.0} | {:.0} |",
                h.heuristic,
                pct(h.freshness.share_within_bound),
                h.freshness.violations,
                h.requests.per_device_hour,
                h.requests.reads_per_device_hour,
                ratio,
                keeping,
                h.requests.usd_per_device_month,
                h.rate_limited_responses,
                h.car_wakeups.requested,
                h.wall_seconds,
                h.cpu_seconds,
                h.peak_rss_mib
            );
        }
        let m = &self.theoretical_minimum;
        let _ = writeln!(
            s,
            "| theoretical minimum | 100 % | 0 | | {:.2} | 1.00 | 1.00 ({:.2} reads/device-h) | | | | | | |\n",
            m.reads_per_device_hour, m.bound_keeping_reads_per_device_hour
        );
        let _ = writeln!(
            s,
            "Bound-keeping vendors (no quota-limited device in the adaptive run): {}.\n",
            m.bound_keeping_vendors.join(", ")
        );
        let _ = writeln!(s, "Minimum: {}\n", m.formula);
        let _ = writeln!(s, "Context mix (device-hours): {}\n", join_floats(&m.context_hours));
        let _ = writeln!(s, "## Freshness per context\n");
        let _ = writeln!(
            s,
            "| heuristic | context | bound s | changes | within bound | unseen | p50 s | p95 s | p99 s | max s |"
        );
        let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|---|");
        for h in &self.heuristics {
            for (ctx, l) in &h.freshness.per_context {
                let _ = writeln!(
                    s,
                    "| {} | {} | {:.0} | {} | {} | {} | {:.0} | {:.0} | {:.0} | {:.0} |",
                    h.heuristic,
                    ctx,
                    l.bound_seconds,
                    l.changes,
                    pct(l.share_within_bound),
                    l.unseen,
                    l.latency_seconds.p50,
                    l.latency_seconds.p95,
                    l.latency_seconds.p99,
                    l.latency_seconds.max
                );
            }
            let limited = &h.freshness.quota_limited_by_vendor;
            let _ = writeln!(
                s,
                "| {} | quota-limited (not checked) | | {} changes on {} devices ({} quota-limited: {}) | | | | | | |",
                h.heuristic,
                h.freshness.quota_limited_changes,
                h.freshness.quota_limited_devices,
                limited.values().sum::<u64>(),
                join_counts(limited)
            );
        }
        let _ = writeln!(s, "\n## Requests per device-hour by vendor\n");
        let vendors: std::collections::BTreeSet<&String> =
            self.heuristics.iter().flat_map(|h| h.requests.by_vendor.keys()).collect();
        let _ = write!(s, "| vendor | devices | minimum |");
        for h in &self.heuristics {
            let _ = write!(s, " {} |", h.heuristic);
        }
        let _ = writeln!(s, " max quota used (adaptive) |");
        let _ = writeln!(s, "|---|---|---|{}---|", "---|".repeat(self.heuristics.len()));
        for v in vendors {
            let devices = f.by_vendor.get(v).copied().unwrap_or(0);
            let _ = write!(
                s,
                "| {v} | {devices} | {:.2} |",
                m.by_vendor.get(v).copied().unwrap_or(0.0)
            );
            for h in &self.heuristics {
                let r = h.requests.by_vendor.get(v);
                let _ = write!(s, " {:.2} |", r.map_or(0.0, |r| r.per_device_hour));
            }
            let quota = self
                .heuristics
                .first()
                .and_then(|h| h.requests.by_vendor.get(v))
                .and_then(|r| r.quota_used_max)
                .map_or("—".to_string(), pct);
            let _ = writeln!(s, " {quota} |");
        }
        let _ = writeln!(s, "\n## Scheduling and cost of running\n");
        let _ = writeln!(
            s,
            "| heuristic | polls stored | deferred | lag p50 s | lag p99 s | lag max s | tick wall p50 ms | tick wall p99 ms | polls / wall s |"
        );
        let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|");
        for h in &self.heuristics {
            let c = &h.scheduling;
            let _ = writeln!(
                s,
                "| {} | {} | {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.0} |",
                h.heuristic,
                h.polls.stored,
                h.polls.deferred,
                c.lag_seconds.p50,
                c.lag_seconds.p99,
                c.lag_seconds.max,
                c.tick_wall_ms.p50,
                c.tick_wall_ms.p99,
                c.polls_per_wall_second
            );
        }
        let _ = writeln!(s, "\n## Age of served data\n");
        let _ = writeln!(
            s,
            "Sampled every 5 simulated minutes per device: how old the latest stored read was. Hourly means averaged over the run; the worst hour's p95 and max.\n"
        );
        let _ = writeln!(
            s,
            "| heuristic | bound-keeping mean s | worst-hour p95 s | max s | quota-limited mean s | worst-hour p95 s |"
        );
        let _ = writeln!(s, "|---|---|---|---|---|---|");
        for h in &self.heuristics {
            let summary = |ages: &[HourAge]| {
                let mean = ages.iter().map(|a| a.mean_s).sum::<f64>() / ages.len().max(1) as f64;
                let p95 = ages.iter().map(|a| a.p95_s).fold(0.0, f64::max);
                let max = ages.iter().map(|a| a.max_s).fold(0.0, f64::max);
                (mean, p95, max)
            };
            let (mean, p95, max) = summary(&h.data_age_bound_keeping);
            let (q_mean, q_p95, _) = summary(&h.data_age_quota_limited);
            let _ = writeln!(
                s,
                "| {} | {mean:.0} | {p95:.0} | {max:.0} | {q_mean:.0} | {q_p95:.0} |",
                h.heuristic
            );
        }
        for h in &self.heuristics {
            if let Some(a) = &h.actions {
                let _ = writeln!(s, "\n## Actions ({})\n", h.heuristic);
                let _ = writeln!(
                    s,
                    "{} requested, {} created; outcomes: {}; refused: {}; confirmation latency p50 {:.0} s, p95 {:.0} s, max {:.0} s.",
                    a.requested,
                    a.created,
                    join_counts(&a.outcomes),
                    if a.rejected.is_empty() {
                        "none".to_string()
                    } else {
                        join_counts(&a.rejected)
                    },
                    a.confirmation_latency_s.p50,
                    a.confirmation_latency_s.p95,
                    a.confirmation_latency_s.max
                );
            }
        }
        let _ = writeln!(s, "\n## Assumptions\n");
        for a in &self.assumptions {
            let _ = writeln!(s, "- {a}");
        }
        let _ = writeln!(s, "\nCharts: latency-cdf.svg, requests.svg, data-age.svg.");
        s
    }
}

fn join_counts<T: std::fmt::Display>(m: &BTreeMap<String, T>) -> String {
    m.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(", ")
}

fn join_floats(m: &BTreeMap<String, f64>) -> String {
    m.iter().map(|(k, v)| format!("{k} {v:.0}")).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_of_a_sample() {
        let v: Vec<f64> = (1..=200).map(f64::from).collect();
        let s = Stats::of_sorted(&v);
        assert_eq!(s.count, 200);
        assert_eq!(s.p50, 100.0);
        assert_eq!(s.p99, 198.0);
        assert_eq!(s.max, 200.0);
        assert!((s.mean - 100.5).abs() < 1e-9);
        assert_eq!(Stats::of_sorted(&[]), Stats::default());
    }
}
