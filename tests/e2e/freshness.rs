//! The scheduler's promise, measured against the simulated world's ground truth: every change
//! the world records is read within its context's bound, no vendor limit is exceeded, no car
//! is woken by polling, and an outage neither storms the vendor nor leaves data stale after.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use oemgate::config::Config;
use oemgate_core::{Clock, ErrorKind};
use oemgate_loadtest::analysis::{bound, context_at, readers, seen_at};
use oemgate_loadtest::journal::Journal;
use oemgate_scheduler::poller::PollObserver;
use oemgate_sim::DeviceKind;
use oemgate_store::DeviceRecord;

use crate::support::demo_observed;

async fn all_devices(demo: &oemgate::demo::Demo) -> Vec<DeviceRecord> {
    oemgate_loadtest::run::all_devices(demo.store.as_ref()).await.unwrap()
}

fn at(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_simulated_day_sees_every_change_within_its_context_bound() {
    let journal = Arc::new(Journal::default());
    let config = Config::defaults().unwrap();
    let delays = config.scheduler.poller().planner.delays;
    let observer: Arc<dyn PollObserver> = journal.clone();
    // 100 households (about 400 devices of all eleven vendors); OEMGATE_DAY_HOUSEHOLDS
    // overrides it for quicker local runs.
    let households =
        std::env::var("OEMGATE_DAY_HOUSEHOLDS").ok().and_then(|v| v.parse().ok()).unwrap_or(100);
    let (demo, clock) = demo_observed(config, households, None, Some(observer)).await;
    let start = clock.now();
    crate::support::poll_for(&demo, &clock, 24 * 60).await;
    let end = clock.now();
    demo.sim.world.advance_to(end);

    let devices = all_devices(&demo).await;
    let mut per_vendor: BTreeMap<&str, usize> = BTreeMap::new();
    for d in &devices {
        *per_vendor.entry(d.vendor.as_str()).or_default() += 1;
    }
    eprintln!("{} devices: {per_vendor:?}", devices.len());
    if households >= 100 {
        assert!(devices.len() >= 300, "several hundred devices");
    }
    assert_eq!(per_vendor.len(), 11, "every vendor: {per_vendor:?}");

    // World device -> the gateway devices that read it (its account's devices of its kind).
    let readers = readers(&demo, &devices);

    // Changes late in the day may not be due for reading yet: stop one longest bound early.
    let horizon = end - chrono::Duration::from_std(delays.sleeping).unwrap();
    let changes = demo.sim.world.changes_between(start, horizon);
    assert!(changes.len() > 3 * households, "a day has many changes: {}", changes.len());
    let mut checked: BTreeMap<&str, (usize, chrono::Duration)> = BTreeMap::new();
    let mut quota_limited = BTreeMap::<String, Duration>::new();
    let mut violations = Vec::new();
    for change in &changes {
        let Some(gateway) = readers.get(&change.device.to_string()) else { continue };
        for record in gateway.iter().map(|&i| &devices[i]) {
            if let Some(interval) = demo.poller.quota_limited_interval(record) {
                quota_limited.insert(format!("{} {}", record.vendor, record.device.id), interval);
                continue;
            }
            let polls = journal.of(&record.device.id);
            // The context the gateway knew the device in when the change happened.
            let change_ms = change.at.timestamp_millis();
            let context = context_at(&polls, change_ms);
            let bound = chrono::Duration::from_std(bound(&delays, context)).unwrap();
            let latency = seen_at(&polls, change_ms).map(|seen| at(seen) - change.at);
            let entry = checked.entry(context.as_str()).or_insert((0, chrono::Duration::zero()));
            entry.0 += 1;
            if let Some(latency) = latency {
                entry.1 = entry.1.max(latency);
            }
            if latency.is_none_or(|l| l > bound) {
                violations.push(format!(
                    "{} {} {:?} at {} in {}: seen after {latency:?} (bound {bound})",
                    record.vendor,
                    record.device.id,
                    change.kind,
                    change.at,
                    context.as_str()
                ));
            }
        }
    }
    eprintln!("changes checked per context (count, worst latency): {checked:?}");
    eprintln!("{} devices reported quota-limited: {quota_limited:?}", quota_limited.len());
    for vendor in per_vendor.keys() {
        eprintln!(
            "{vendor}: {:.2} requests per device-hour",
            demo.poller.requests_per_device_hour(vendor).unwrap_or(0.0)
        );
    }

    // No declared vendor limit exceeded: every simulator enforces its vendor's limits and
    // would have answered a rate-limit error.
    let limited_devices: BTreeMap<String, Vec<DateTime<Utc>>> = devices
        .iter()
        .filter_map(|d| {
            let times: Vec<DateTime<Utc>> = journal
                .of(&d.device.id)
                .iter()
                .filter(|p| p.failed == Some(ErrorKind::RateLimited))
                .map(|p| at(p.finished_ms))
                .collect();
            (!times.is_empty()).then(|| (format!("{} {}", d.vendor, d.device.id), times))
        })
        .collect();
    let limited: usize = limited_devices.values().map(Vec::len).sum();
    eprintln!("rate-limited polls: {limited_devices:#?}");
    assert!(
        violations.is_empty(),
        "{} late: {:#?}",
        violations.len(),
        &violations[..violations.len().min(20)]
    );
    assert_eq!(limited, 0, "polls answered with a rate limit: {limited_devices:#?}");

    // Polling never woke a car.
    assert_eq!(demo.sim.tesla.request_counts().wakes, 0);
    for vehicle in demo.sim.world.devices_of_kind(DeviceKind::Vehicle) {
        assert_eq!(demo.sim.world.wake_count(&vehicle.id).requested, 0);
    }
    demo.stop().await;
}

#[tokio::test]
async fn an_outage_costs_one_request_per_probe_and_freshness_returns_within_a_bound() {
    let (demo, clock) = demo_observed(Config::defaults().unwrap(), 12, None, None).await;
    let vendor = "ENPHASE";
    let devices: Vec<DeviceRecord> =
        all_devices(&demo).await.into_iter().filter(|d| d.vendor == vendor).collect();
    assert!(!devices.is_empty(), "the fleet has {vendor} devices");
    crate::support::poll_for(&demo, &clock, 10).await;

    let outage_start = clock.now();
    let outage = Duration::from_secs(30 * 60);
    demo.sim.world.faults().schedule_outage("enphase", outage_start, outage);
    crate::support::poll_for(&demo, &clock, 30).await;
    let outage_end = clock.now();

    // During the outage: a few failures open the breaker, then one probe per minute.
    let during: Vec<DateTime<Utc>> = demo
        .sim_requests
        .records("/enphase")
        .into_iter()
        .map(|r| r.at)
        .filter(|at| *at >= outage_start && *at < outage_end)
        .collect();
    eprintln!("{} requests to {vendor} during a 30-minute outage", during.len());
    // The breaker opens on the fifth failure (requests already in flight in that tick may
    // still fail); from then on, one probe per probe interval (a minute).
    let threshold = oemgate_scheduler::breaker::BreakerConfig::default().failure_threshold;
    let fifth = during[threshold as usize - 1];
    let after_open: Vec<DateTime<Utc>> = during.iter().copied().filter(|at| *at > fifth).collect();
    for pair in after_open.windows(2) {
        assert!(pair[1] - pair[0] >= chrono::Duration::seconds(60), "probes {pair:?}");
    }
    assert!(during.len() <= 30 + 10, "{} requests", during.len());
    // The devices say they cannot be read. (The last tick falls on the outage's end, when
    // the vendor answers again: a probe then may already have read a device successfully.)
    for d in &devices {
        let snapshot = demo.store.get_snapshot(&d.device.id).await.unwrap().unwrap();
        if snapshot.observed_at < outage_end {
            assert_eq!(snapshot.resource["isReachable"], false, "{} in the outage", d.device.id);
        }
    }

    // Within one bound (7 minutes) after the outage every device is read again.
    crate::support::poll_for(&demo, &clock, 7).await;
    for d in &devices {
        let snapshot = demo.store.get_snapshot(&d.device.id).await.unwrap().unwrap();
        assert!(snapshot.observed_at >= outage_end, "{} stale", d.device.id);
        assert_eq!(snapshot.resource["isReachable"], true, "{}", d.device.id);
    }
    demo.stop().await;
}
