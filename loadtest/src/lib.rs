//! oemgate-loadtest: polling heuristics measured at scale against ground truth.
//!
//! A synthetic fleet (the simulator's household generator: commuting cars, evening plug-ins,
//! overnight charging, solar days, thermostat programs) is served by the vendor simulators
//! over loopback HTTP; the real gateway pipeline (adapters, scheduler, executor, memory or
//! Redis store, API) polls it on a manual clock that jumps one tick at a time, so a simulated
//! day takes minutes. The same fleet and seed run once per heuristic (the adaptive planner,
//! fixed 2 minutes, fixed per class) and each run is measured against the world's change log:
//! change-to-observation latency per context and change kind, vendor requests and money,
//! quota use, rate-limit answers, car wake-ups, scheduling lag, CPU and memory. The
//! theoretical minimum for the fleet's context mix is computed alongside.
//!
//! Modules: [`policy`] (the heuristics, behind the scheduler's `PollPolicy`), [`journal`]
//! (the poll observer), [`run`] (one run), [`analysis`] (records to numbers), [`report`]
//! (report.json's schema and report.md), [`svg`] (charts), [`capacity`] (the capacity
//! search), [`prices`], [`procstat`].

pub mod analysis;
pub mod capacity;
pub mod journal;
pub mod policy;
pub mod prices;
pub mod procstat;
pub mod report;
pub mod run;
pub mod svg;

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use anyhow::Context;
use oemgate_core::{ContextDelays, PollContext};

use crate::policy::Heuristic;
use crate::report::{
    Fleet, HeuristicReport, Minimum, Polls, Report, Requests, Scheduling, Simulation, Stats,
    VendorRequests, Wakeups,
};
use crate::run::{RunData, RunOptions};

/// What one analysed run leaves for the comparison.
#[derive(Debug, Default)]
pub struct RunSummary {
    /// The fleet as the gateway saw it.
    pub fleet: Fleet,
    /// Device-milliseconds per vendor and context.
    pub context_ms: BTreeMap<String, BTreeMap<PollContext, i64>>,
    /// Read requests per vendor.
    pub read_requests: BTreeMap<String, u64>,
    /// Device polls (vendor reads, stored or failed) per vendor.
    pub device_polls: BTreeMap<String, u64>,
    /// Simulated hours.
    pub hours: f64,
    /// Vendors with quota-limited devices (their bounds cannot all be kept).
    pub quota_limited_vendors: std::collections::BTreeSet<String>,
}

/// Turns a finished run into its report, and stops its demo.
pub async fn analyse(
    data: RunData,
    delays: &ContextDelays,
) -> anyhow::Result<(HeuristicReport, RunSummary)> {
    let RunData {
        heuristic,
        demo,
        redis,
        journal,
        start,
        end,
        devices,
        requests,
        quota_used_max,
        quota_limited: ever_limited,
        setup_wall,
        run_wall,
        cpu,
        peak_rss_mib,
        peak_is_per_run,
        tick_wall_ms,
        actions,
    } = data;
    let hours = (end - start).num_milliseconds() as f64 / 3_600_000.0;
    let (polls, mut lags, deferred) = journal.take();

    // Fleet.
    let mut fleet =
        Fleet { devices: devices.len(), accounts: demo.linked.len(), ..Fleet::default() };
    let mut vendor_of: HashMap<&str, &str> = HashMap::new();
    for d in &devices {
        *fleet.by_vendor.entry(d.vendor.clone()).or_default() += 1;
        *fleet.by_class.entry(d.device.device_type.as_str().to_string()).or_default() += 1;
        vendor_of.insert(d.device.id.as_str(), d.vendor.as_str());
    }

    // Freshness against the ground truth. Changes in the last longest bound may not be due
    // for reading yet: they are left out.
    let horizon = end - run::chrono_of(delays.sleeping.max(delays.default));
    let changes = demo.sim.world.changes_between(start, horizon);
    let readers = analysis::readers(&demo, &devices);
    let quota_limited: Vec<bool> =
        devices.iter().map(|d| ever_limited.contains(&d.device.id)).collect();
    let freshness =
        analysis::freshness(&changes, &readers, &devices, &polls, &quota_limited, delays);
    drop(changes);
    let mut freshness = freshness;
    for (d, _) in devices.iter().zip(&quota_limited).filter(|(_, limited)| **limited) {
        *freshness.quota_limited_by_vendor.entry(d.vendor.clone()).or_default() += 1;
    }
    let quota_limited_vendors = freshness.quota_limited_by_vendor.keys().cloned().collect();

    // Polls and the context mix.
    let by = |key: fn(&(String, &'static str)) -> String| {
        let mut out: BTreeMap<String, u64> = BTreeMap::new();
        for (k, n) in &deferred {
            *out.entry(key(k)).or_default() += n;
        }
        out
    };
    let mut poll_report = Polls {
        deferred: deferred.values().sum(),
        deferred_by_reason: by(|(_, reason)| (*reason).to_string()),
        deferred_by_vendor: by(|(vendor, _)| vendor.clone()),
        ..Polls::default()
    };
    let mut summary = RunSummary { hours, quota_limited_vendors, ..RunSummary::default() };
    let end_ms = end.timestamp_millis();
    for (id, device_polls) in &polls {
        let vendor = vendor_of.get(id.as_str()).copied().unwrap_or("?").to_string();
        for p in device_polls {
            if p.observed_ms.is_some() {
                poll_report.stored += 1;
            }
            if let Some(kind) = p.failed {
                *poll_report.failed.entry(kind.as_str().to_string()).or_default() += 1;
            }
        }
        *summary.device_polls.entry(vendor.clone()).or_default() += device_polls.len() as u64;
        let mix = summary.context_ms.entry(vendor).or_default();
        for (context, ms) in analysis::context_time(device_polls, end_ms) {
            *mix.entry(context).or_default() += ms;
        }
    }
    let every = Duration::from_secs(300);
    let data_age = analysis::data_age(&polls, &|_| true, start, end, every);
    let data_age_bound_keeping =
        analysis::data_age(&polls, &|id| !ever_limited.contains(id), start, end, every);
    let data_age_quota_limited =
        analysis::data_age(&polls, &|id| ever_limited.contains(id), start, end, every);
    drop(polls);

    // Requests and money.
    let mut req = Requests::default();
    let mut rate_limited = 0;
    let mut usd = 0.0;
    let mut reads = 0u64;
    let month_factor = 720.0 / hours.max(1e-9);
    for (vendor, tally) in &requests {
        let n_devices = fleet.by_vendor.get(vendor).copied().unwrap_or(0) as u64;
        let total: u64 = tally.by_class.values().sum();
        let vendor_reads = tally.by_class.get("read").copied().unwrap_or(0);
        summary.read_requests.insert(vendor.clone(), vendor_reads);
        reads += vendor_reads;
        req.total += total;
        rate_limited += tally.rate_limited;
        usd += tally.usd;
        let per_device_hour = total as f64 / (n_devices.max(1) as f64 * hours.max(1e-9));
        req.by_vendor.insert(
            vendor.clone(),
            VendorRequests {
                devices: n_devices,
                requests: total,
                per_device_hour,
                by_class: tally.by_class.clone(),
                rate_limited: tally.rate_limited,
                server_errors: tally.server_errors,
                quota_used_max: quota_used_max.get(vendor).copied(),
                usd_per_device_month: (tally.usd > 0.0)
                    .then(|| tally.usd * month_factor / n_devices.max(1) as f64),
            },
        );
    }
    let device_hours = (devices.len().max(1) as f64) * hours.max(1e-9);
    req.per_device_hour = req.total as f64 / device_hours;
    req.reads_per_device_hour = reads as f64 / device_hours;
    req.usd_per_device_month = usd * month_factor / devices.len().max(1) as f64;

    // Wake-ups.
    let mut wakes = Wakeups::default();
    for vehicle in run::world_vehicles(&demo) {
        let count = demo.sim.world.wake_count(&vehicle);
        wakes.requested += count.requested;
        wakes.performed += count.performed;
    }

    // Scheduling.
    lags.sort_unstable();
    let lag_s: Vec<f64> = lags.iter().map(|ms| f64::from(*ms) / 1000.0).collect();
    drop(lags);
    let mut ticks = tick_wall_ms;
    ticks.sort_by(f64::total_cmp);
    let total_polls = poll_report.stored + poll_report.failed.values().sum::<u64>();
    let scheduling = Scheduling {
        lag_seconds: Stats::of_sorted(&lag_s),
        tick_wall_ms: Stats::of_sorted(&ticks),
        polls_per_wall_second: total_polls as f64 / run_wall.max(1e-9),
    };

    let report = HeuristicReport {
        heuristic: heuristic.name().to_string(),
        wall_seconds: run_wall,
        setup_wall_seconds: setup_wall,
        cpu_seconds: cpu,
        peak_rss_mib,
        peak_rss_per_run: peak_is_per_run,
        polls: poll_report,
        freshness,
        requests: req,
        rate_limited_responses: rate_limited,
        car_wakeups: wakes,
        scheduling,
        data_age,
        data_age_bound_keeping,
        data_age_quota_limited,
        actions,
    };
    summary.fleet = fleet;
    demo.stop().await;
    run::purge(redis).await?;
    Ok((report, summary))
}

/// The theoretical minimum from a run's context mix: one read per device per bound of the
/// context it is in, times the vendor's requests per device read in that run (so what
/// batching saved, and what multi-call reads cost, carry over).
pub fn minimum(summary: &RunSummary, delays: &ContextDelays) -> Minimum {
    let mut out = Minimum {
        formula: "sum over devices and contexts of (time in context / context bound) × the \
                  vendor's read requests per device read (reads of one account answered by one \
                  request count once), per device-hour; contexts from the adaptive run's reads, \
                  a pending action counted as the default context"
            .to_string(),
        ..Minimum::default()
    };
    let mut total_reads = 0.0;
    for (vendor, mix) in &summary.context_ms {
        let polls = summary.device_polls.get(vendor).copied().unwrap_or(0);
        let read_requests = summary.read_requests.get(vendor).copied().unwrap_or(0);
        let per_read = if polls == 0 { 1.0 } else { read_requests as f64 / polls as f64 };
        let mut device_reads = 0.0;
        for (context, ms) in mix {
            let bound = analysis::bound(delays, *context).as_millis().max(1) as f64;
            device_reads += *ms as f64 / bound;
            *out.context_hours.entry(context.as_str().to_string()).or_default() +=
                *ms as f64 / 3_600_000.0;
        }
        let reads = device_reads * per_read;
        total_reads += reads;
        let devices = summary.fleet.by_vendor.get(vendor).copied().unwrap_or(0).max(1) as f64;
        out.by_vendor.insert(vendor.clone(), reads / devices / summary.hours.max(1e-9));
    }
    out.reads_per_device_hour =
        total_reads / (summary.fleet.devices.max(1) as f64 * summary.hours.max(1e-9));
    out
}

/// Runs every heuristic on the same fleet and seed and compares them.
pub async fn compare(
    options: &RunOptions,
    heuristics: &[Heuristic],
    command: String,
    bar: &indicatif::ProgressBar,
) -> anyhow::Result<Report> {
    let delays = options.config.scheduler.poller().planner.delays;
    let mut reports = Vec::new();
    let mut summaries = Vec::new();
    for heuristic in heuristics {
        let data = run::run(options, *heuristic, bar).await?;
        bar.set_message(format!("{}: analysing", heuristic.name()));
        let (report, summary) = analyse(data, &delays).await?;
        let line = format!(
            "{}: {} devices, {:.2} % of {} changes within bound, {:.2} requests/device-h, {:.0} s wall",
            report.heuristic,
            summary.fleet.devices,
            report.freshness.share_within_bound * 100.0,
            report.freshness.changes_checked,
            report.requests.per_device_hour,
            report.wall_seconds
        );
        if bar.is_hidden() {
            eprintln!("{line}");
        } else {
            bar.println(line);
        }
        if let Some(dir) = &options.checkpoint_dir {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            let path = dir.join(format!("partial-{}.json", report.heuristic));
            std::fs::write(&path, serde_json::to_string_pretty(&report)?)
                .with_context(|| format!("writing {}", path.display()))?;
        }
        reports.push(report);
        summaries.push((*heuristic, summary));
    }
    let base = summaries
        .iter()
        .find(|(h, _)| *h == Heuristic::Adaptive)
        .or(summaries.first())
        .map(|(_, s)| s)
        .context("no heuristic ran")?;
    let mut minimum = minimum(base, &delays);
    // The same ratio over the vendors whose quota lets every bound be kept: elsewhere the
    // minimum (every bound kept) is more than the quota allows any heuristic.
    let keeping: Vec<&String> =
        minimum.by_vendor.keys().filter(|v| !base.quota_limited_vendors.contains(*v)).collect();
    let keeping_devices: f64 =
        keeping.iter().map(|v| base.fleet.by_vendor.get(*v).copied().unwrap_or(0) as f64).sum();
    let keeping_minimum: f64 = keeping
        .iter()
        .map(|v| {
            minimum.by_vendor.get(*v).copied().unwrap_or(0.0)
                * base.fleet.by_vendor.get(*v).copied().unwrap_or(0) as f64
        })
        .sum::<f64>()
        / keeping_devices.max(1.0);
    minimum.bound_keeping_vendors = keeping.iter().map(|v| (*v).clone()).collect();
    minimum.bound_keeping_reads_per_device_hour = keeping_minimum;
    for r in &reports {
        let ratio = r.requests.reads_per_device_hour / minimum.reads_per_device_hour.max(1e-12);
        minimum.ratio.insert(r.heuristic.clone(), ratio);
        let reads: f64 = keeping
            .iter()
            .filter_map(|v| r.requests.by_vendor.get(*v))
            .map(|vr| vr.by_class.get("read").copied().unwrap_or(0) as f64)
            .sum();
        let per_device_hour = reads / (keeping_devices.max(1.0) * base.hours.max(1e-9));
        minimum
            .bound_keeping_ratio
            .insert(r.heuristic.clone(), per_device_hour / keeping_minimum.max(1e-12));
    }
    let mut fleet = base.fleet.clone();
    fleet.seed = options.seed;
    fleet.households = options.households;
    let mut faults: Vec<String> = options.outages.iter().map(|w| w.describe("outage")).collect();
    faults.extend(options.storms.iter().map(|w| w.describe("429 storm")));
    let bounds_seconds = PollContext::ALL
        .iter()
        .map(|c| (c.as_str().to_string(), analysis::bound(&delays, *c).as_secs_f64()))
        .collect();
    Ok(Report {
        schema_version: report::SCHEMA_VERSION,
        command,
        fleet,
        simulation: Simulation {
            start: options.start.to_rfc3339(),
            hours: options.hours,
            tick_seconds: options.tick.as_secs_f64(),
            store: if options.redis.is_some() { "redis" } else { "memory" }.to_string(),
            faults,
            actions_per_hour: options.actions_per_hour,
            bounds_seconds,
        },
        heuristics: reports,
        theoretical_minimum: minimum,
        assumptions: assumptions(options),
    })
}

/// Writes report.json, report.md and the SVG charts into `dir` (created if missing).
pub fn write_report(dir: &std::path::Path, report: &Report) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let write = |name: &str, text: &str| {
        std::fs::write(dir.join(name), text)
            .with_context(|| format!("writing {}", dir.join(name).display()))
    };
    write("report.json", &serde_json::to_string_pretty(report)?)?;
    write("report.md", &report.markdown())?;
    for (name, svg) in svg::charts(report) {
        write(name, &svg)?;
    }
    Ok(())
}

/// The assumptions the numbers rest on, for the report.
pub fn assumptions(options: &RunOptions) -> Vec<String> {
    let mut out = vec![
        "Prices (USD per request): ".to_string()
            + &options
                .prices
                .0
                .iter()
                .map(|(vendor, classes)| {
                    let list: Vec<String> =
                        classes.iter().map(|(class, price)| format!("{class} {price}")).collect();
                    format!("{vendor}: {}", list.join(", "))
                })
                .collect::<Vec<_>>()
                .join("; ")
            + ". Vendors not listed do not bill per request; answers with status 500 or above are not billed; Tesla's $10 monthly account discount is not subtracted.",
        "A month is 30 days: money per device-month scales the run's cost by 720 / simulated hours.".to_string(),
        "Fixed per class: vehicles, chargers and batteries every 2 min; HVAC, meters and inverters every 7 min. Fixed policies keep the 10 s action-pending interval so actions can confirm.".to_string(),
        "A change is held to the bound of the context the gateway knew the device in at the change (its last read before); changes while an action is pending are held to the charging bound; changes in the last 20 simulated minutes are not checked.".to_string(),
        "The manual clock jumps one tick at a time, so scheduling lag includes up to one tick; tick wall time is the real cost of serving that tick.".to_string(),
        "CPU time and memory are the whole process: gateway, vendor simulators, world simulation and the load test's own journal.".to_string(),
    ];
    if options.redis.is_some() {
        out.push(
            "Redis store: every run uses a fresh key prefix, deleted when the run is done."
                .to_string(),
        );
    }
    out
}
