//! From a run's records to numbers: change-to-observation latency against the world's ground
//! truth, requests, cost, wake-ups, scheduling lag, data age, and the context mix the
//! theoretical minimum is computed from.
//!
//! Ground truth: the world logs every change it makes (plug-ins, charging starts and stops,
//! drives, sleep, thermostat programs, ...). Each world device is read by the gateway devices
//! of its vendor account and class (usually one). A change is seen by the first stored read
//! taken at or after it; the bound is the one of the context the gateway knew the device in
//! when the change happened (its last read before it).

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use chrono::{DateTime, Utc};
use oemgate::demo::Demo;
use oemgate_core::{ContextDelays, PollContext, VendorType};
use oemgate_sim::{Change, DeviceKind};
use oemgate_store::DeviceRecord;

use crate::journal::Poll;
use crate::report::{Freshness, Latency, Stats};

/// The API's device class of a world device kind.
pub fn kind_type(kind: DeviceKind) -> VendorType {
    match kind {
        DeviceKind::Vehicle => VendorType::Vehicle,
        DeviceKind::Charger => VendorType::Charger,
        DeviceKind::Battery => VendorType::Battery,
        DeviceKind::Hvac => VendorType::Hvac,
        DeviceKind::Meter => VendorType::Meter,
        DeviceKind::Inverter => VendorType::Inverter,
    }
}

/// The freshness bound a change in `context` is held to. A pending action's interval is a
/// poll rate, not a bound: changes then are held to the tightest freshness bound (charging).
pub fn bound(delays: &ContextDelays, context: PollContext) -> Duration {
    match context {
        PollContext::ActionPending => delays.charging,
        other => delays.for_context(other),
    }
}

/// World device id -> indices into `devices` of the gateway devices that read it (its
/// vendor account's devices of its class).
pub fn readers(demo: &Demo, devices: &[DeviceRecord]) -> HashMap<String, Vec<usize>> {
    let mut by_account: HashMap<(&str, VendorType), Vec<usize>> = HashMap::new();
    for (i, d) in devices.iter().enumerate() {
        by_account.entry((d.account_id.as_str(), d.device.device_type)).or_default().push(i);
    }
    let mut out = HashMap::new();
    for linked in &demo.linked {
        for world_device in &linked.account.devices {
            let Some(info) = demo.sim.world.device_info(world_device) else { continue };
            let key = (linked.account_id.as_str(), kind_type(info.kind));
            out.insert(world_device.to_string(), by_account.get(&key).cloned().unwrap_or_default());
        }
    }
    out
}

/// The context the gateway knew the device in at `at_ms` (its last telling poll before).
pub fn context_at(polls: &[Poll], at_ms: i64) -> PollContext {
    let upto = polls.partition_point(|p| p.finished_ms <= at_ms);
    polls[..upto].iter().rev().find_map(Poll::known_context).unwrap_or(PollContext::Default)
}

/// When the change at `at_ms` was first seen: the first stored read taken at or after it.
pub fn seen_at(polls: &[Poll], at_ms: i64) -> Option<i64> {
    let from = polls.partition_point(|p| p.finished_ms < at_ms);
    polls[from..].iter().filter_map(|p| p.observed_ms).find(|observed| *observed >= at_ms)
}

/// The name of a change kind ("plugged_in", "drive_started", ...).
pub fn change_kind(change: &Change) -> String {
    serde_json::to_value(&change.kind)
        .ok()
        .and_then(|v| v.get("type").and_then(|t| t.as_str()).map(str::to_string))
        .unwrap_or_else(|| "other".to_string())
}

#[derive(Default)]
struct Bucket {
    bound_s: f64,
    changes: u64,
    within: u64,
    unseen: u64,
    latencies: Vec<f64>,
}

impl Bucket {
    fn add(&mut self, bound_s: f64, latency: Option<f64>) {
        self.bound_s = bound_s;
        self.changes += 1;
        match latency {
            Some(l) => {
                if l <= bound_s {
                    self.within += 1;
                }
                self.latencies.push(l);
            }
            None => self.unseen += 1,
        }
    }

    fn finish(mut self) -> (Latency, Vec<f64>) {
        self.latencies.sort_by(f64::total_cmp);
        let latency = Latency {
            bound_seconds: self.bound_s,
            changes: self.changes,
            within_bound: self.within,
            share_within_bound: share(self.within, self.changes),
            unseen: self.unseen,
            latency_seconds: Stats::of_sorted(&self.latencies),
        };
        (latency, self.latencies)
    }
}

fn share(part: u64, whole: u64) -> f64 {
    if whole == 0 { 1.0 } else { part as f64 / whole as f64 }
}

/// Which devices are quota-limited (the poller's own report), by index.
pub type QuotaLimited = Vec<bool>;

/// Change-to-observation latency of every change in `changes` against `polls`.
pub fn freshness(
    changes: &[Change],
    readers: &HashMap<String, Vec<usize>>,
    devices: &[DeviceRecord],
    polls: &HashMap<String, Vec<Poll>>,
    quota_limited: &QuotaLimited,
    delays: &ContextDelays,
) -> Freshness {
    let mut per_context: BTreeMap<&'static str, Bucket> = BTreeMap::new();
    let mut per_kind: BTreeMap<&'static str, BTreeMap<String, Bucket>> = BTreeMap::new();
    let mut out = Freshness::default();
    let empty = Vec::new();
    let mut limited_devices = std::collections::HashSet::new();
    for change in changes {
        let Some(gateway) = readers.get(&change.device.to_string()) else { continue };
        let at_ms = change.at.timestamp_millis();
        let kind = change_kind(change);
        for &i in gateway {
            let record = &devices[i];
            if quota_limited.get(i).copied().unwrap_or(false) {
                out.quota_limited_changes += 1;
                limited_devices.insert(i);
                continue;
            }
            let device_polls = polls.get(&record.device.id).unwrap_or(&empty);
            let context = context_at(device_polls, at_ms);
            let bound_s = bound(delays, context).as_secs_f64();
            let latency = seen_at(device_polls, at_ms).map(|seen| (seen - at_ms) as f64 / 1000.0);
            per_context.entry(context.as_str()).or_default().add(bound_s, latency);
            per_kind
                .entry(context.as_str())
                .or_default()
                .entry(kind.clone())
                .or_default()
                .add(bound_s, latency);
            out.changes_checked += 1;
            if latency.is_none_or(|l| l > bound_s) {
                out.violations += 1;
                if latency.is_none() {
                    out.unseen += 1;
                }
                if out.violation_examples.len() < 20 {
                    out.violation_examples.push(format!(
                        "{} {} {kind} at {} in {}: seen after {} (bound {bound_s:.0} s)",
                        record.vendor,
                        record.device.id,
                        change.at.to_rfc3339(),
                        context.as_str(),
                        latency.map_or("never".to_string(), |l| format!("{l:.0} s")),
                    ));
                }
            }
        }
    }
    out.quota_limited_devices = limited_devices.len() as u64;
    out.share_within_bound = share(out.changes_checked - out.violations, out.changes_checked);
    for (ctx, bucket) in per_context {
        let (latency, sorted) = bucket.finish();
        out.cdf.insert(ctx.to_string(), cdf(&sorted, latency.changes));
        out.per_context.insert(ctx.to_string(), latency);
    }
    for (ctx, kinds) in per_kind {
        let kinds = kinds.into_iter().map(|(k, b)| (k, b.finish().0)).collect();
        out.per_context_kind.insert(ctx.to_string(), kinds);
    }
    out
}

/// Up to 101 [latency, share] points of an ascending sample out of `total` changes (the
/// unseen ones never reach the curve's top).
pub fn cdf(sorted: &[f64], total: u64) -> Vec<[f64; 2]> {
    if sorted.is_empty() || total == 0 {
        return Vec::new();
    }
    let n = sorted.len();
    let mut points: Vec<[f64; 2]> = (0..=100)
        .map(|i| {
            let idx = i * (n - 1) / 100;
            [sorted[idx], (idx + 1) as f64 / total as f64]
        })
        .collect();
    points.dedup_by(|a, b| a[1] == b[1]);
    points
}

/// Age of the latest stored read per device (of those `include` accepts), sampled every
/// `every` from `start` to `end`, summarised per hour since `start`.
pub fn data_age(
    polls: &HashMap<String, Vec<Poll>>,
    include: &dyn Fn(&str) -> bool,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    every: Duration,
) -> Vec<crate::report::HourAge> {
    let step = every.as_millis().max(1) as i64;
    let start_ms = start.timestamp_millis();
    let end_ms = end.timestamp_millis();
    let hours = ((end_ms - start_ms) as f64 / 3_600_000.0).ceil().max(1.0) as usize;
    let mut per_hour: Vec<Vec<f64>> = vec![Vec::new(); hours];
    for (_, device_polls) in polls.iter().filter(|(id, _)| include(id)) {
        let mut latest: Option<i64> = None;
        let mut i = 0;
        let mut t = start_ms + step;
        while t <= end_ms {
            while i < device_polls.len() && device_polls[i].finished_ms <= t {
                if let Some(observed) = device_polls[i].observed_ms {
                    latest = Some(latest.map_or(observed, |l: i64| l.max(observed)));
                }
                i += 1;
            }
            if let Some(latest) = latest {
                let hour = (((t - start_ms - 1) / 3_600_000) as usize).min(hours - 1);
                per_hour[hour].push((t - latest) as f64 / 1000.0);
            }
            t += step;
        }
    }
    per_hour
        .into_iter()
        .enumerate()
        .map(|(hour, mut ages)| {
            ages.sort_by(f64::total_cmp);
            let s = Stats::of_sorted(&ages);
            crate::report::HourAge { hour: hour as u32, mean_s: s.mean, p95_s: s.p95, max_s: s.max }
        })
        .collect()
}

/// Device-milliseconds per context, from each telling poll to the next (the last one to
/// `end_ms`). A pending action counts as the default context (its interval is not a bound).
pub fn context_time(polls: &[Poll], end_ms: i64) -> BTreeMap<PollContext, i64> {
    let mut out = BTreeMap::new();
    let telling: Vec<(i64, PollContext)> =
        polls.iter().filter_map(|p| p.known_context().map(|c| (p.finished_ms, c))).collect();
    for (j, (at, context)) in telling.iter().enumerate() {
        let until = telling.get(j + 1).map_or(end_ms, |next| next.0).max(*at);
        let context =
            if *context == PollContext::ActionPending { PollContext::Default } else { *context };
        *out.entry(context).or_insert(0) += until - at;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use oemgate_core::ErrorKind;

    fn stored(finished: i64, observed: i64, context: PollContext) -> Poll {
        Poll {
            finished_ms: finished,
            observed_ms: Some(observed),
            context: Some(context),
            failed: None,
        }
    }

    #[test]
    fn latency_context_and_time_come_from_the_polls() {
        let polls = vec![
            stored(1_000, 900, PollContext::Default),
            stored(61_000, 60_500, PollContext::Charging),
            Poll {
                finished_ms: 90_000,
                observed_ms: None,
                context: None,
                failed: Some(ErrorKind::DeviceAsleep),
            },
            stored(200_000, 199_000, PollContext::Default),
        ];
        assert_eq!(context_at(&polls, 500), PollContext::Default);
        assert_eq!(context_at(&polls, 70_000), PollContext::Charging);
        assert_eq!(context_at(&polls, 95_000), PollContext::Sleeping);
        assert_eq!(seen_at(&polls, 30_000), Some(60_500));
        assert_eq!(seen_at(&polls, 60_600), Some(199_000));
        assert_eq!(seen_at(&polls, 199_500), None);
        let time = context_time(&polls, 300_000);
        assert_eq!(time[&PollContext::Default], 60_000 + 100_000);
        assert_eq!(time[&PollContext::Charging], 29_000);
        assert_eq!(time[&PollContext::Sleeping], 110_000);
    }

    #[test]
    fn cdf_ends_below_one_when_changes_were_never_seen() {
        let sorted = vec![1.0, 2.0, 3.0];
        let points = cdf(&sorted, 4);
        assert_eq!(points.first(), Some(&[1.0, 0.25]));
        assert_eq!(points.last(), Some(&[3.0, 0.75]));
        assert!(cdf(&[], 0).is_empty());
    }

    #[test]
    fn data_age_per_hour() {
        let start: DateTime<Utc> = "2026-06-01T00:00:00Z".parse().unwrap();
        let s = start.timestamp_millis();
        let mut polls = HashMap::new();
        polls.insert("d".to_string(), vec![stored(s + 1_000, s, PollContext::Default)]);
        polls.insert(
            "fresh".to_string(),
            vec![stored(s + 1_000, s + 7_000_000, PollContext::Default)],
        );
        let end = start + chrono::Duration::hours(2);
        let every = Duration::from_secs(600);
        let ages = data_age(&polls, &|id| id == "d", start, end, every);
        assert_eq!(ages.len(), 2);
        assert_eq!(ages[0].max_s, 3600.0);
        assert_eq!(ages[1].max_s, 7200.0);
        // The other device, read at the end, is in the second hour only when included.
        let both = data_age(&polls, &|_| true, start, end, every);
        assert_eq!(both[1].max_s, 7200.0);
        assert!(both[1].mean_s < ages[1].mean_s);
    }
}
