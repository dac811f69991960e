//! Capacity mode: the highest device count the pipeline sustains on this machine with a
//! scheduling lag p99 under a second.
//!
//! Each step builds a fleet (the adaptive heuristic), lets the startup burst pass on the
//! manual clock (warm-up), then paces the clock to the wall clock times `speed` for a
//! window: the poller is ticked in a loop as its run loop would (again at once while it
//! claims full batches, else after 5 ms), and each claim's lag (simulated now − due) is
//! converted to wall seconds by dividing by `speed`. At speed S the pipeline serves in one
//! wall second what N devices need in S seconds, the load of N × S devices in real time:
//! the step's "equivalent devices". Devices double from the first step until the lag p99
//! exceeds the limit or the cap is reached.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::journal::{Journal, quantile};
use crate::policy::Heuristic;
use crate::run::{RunOptions, start_demo};

/// Capacity search settings.
#[derive(Clone, Debug)]
pub struct CapacityOptions {
    /// Devices of the first step.
    pub start_devices: usize,
    /// The most devices tried.
    pub max_devices: usize,
    /// Clock speed during the measured window.
    pub speed: f64,
    /// Simulated warm-up before the window.
    pub warmup: Duration,
    /// Wall length of the measured window.
    pub window: Duration,
    /// Lag p99 (wall seconds) above which a step is not sustained.
    pub max_lag: Duration,
}

/// One step of the search.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct CapacityStep {
    /// Devices linked.
    pub devices: usize,
    /// Households generated.
    pub households: usize,
    /// Clock speed in the window.
    pub speed: f64,
    /// devices × speed: the real-time fleet this load corresponds to.
    pub equivalent_devices: f64,
    /// Setup wall seconds.
    pub setup_wall_seconds: f64,
    /// Window wall seconds.
    pub window_wall_seconds: f64,
    /// Claims in the window: vendor reads plus polls a vendor limit deferred.
    pub polls: u64,
    /// Claims per wall second.
    pub polls_per_second: f64,
    /// Vendor reads (stored or failed) per wall second.
    pub reads_per_second: f64,
    /// Claim lag, wall seconds.
    pub lag_p50_s: f64,
    /// Claim lag p99, wall seconds.
    pub lag_p99_s: f64,
    /// Largest claim lag, wall seconds.
    pub lag_max_s: f64,
    /// Resident memory after warm-up, MiB.
    pub rss_mib: f64,
    /// (resident memory after warm-up − before setup) / devices, KiB.
    pub memory_per_device_kib: f64,
    /// CPU seconds per wall second in the window (2 = both cores busy).
    pub cpu_cores_used: f64,
    /// Lag p99 under the limit.
    pub sustained: bool,
}

/// The capacity report (capacity.json).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct CapacityReport {
    /// The command line.
    pub command: String,
    /// Every step.
    pub steps: Vec<CapacityStep>,
    /// The largest sustained step.
    pub highest_sustained: Option<CapacityStep>,
    /// Why the search stopped.
    pub stopped: String,
    /// Lag limit, seconds.
    pub max_lag_seconds: f64,
}

impl CapacityReport {
    /// capacity.md.
    pub fn markdown(&self) -> String {
        let mut s = format!("# oemgate capacity\n\n`{}`\n\n", self.command);
        s.push_str("| devices | speed | equivalent devices | claims/s | reads/s | lag p50 s | lag p99 s | lag max s | CPU cores | RSS MiB | KiB/device | setup s | sustained |\n");
        s.push_str("|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
        for st in &self.steps {
            s.push_str(&format!(
                "| {} | {} | {:.0} | {:.0} | {:.0} | {:.3} | {:.3} | {:.3} | {:.2} | {:.0} | {:.1} | {:.0} | {} |\n",
                st.devices,
                st.speed,
                st.equivalent_devices,
                st.polls_per_second,
                st.reads_per_second,
                st.lag_p50_s,
                st.lag_p99_s,
                st.lag_max_s,
                st.cpu_cores_used,
                st.rss_mib,
                st.memory_per_device_kib,
                st.setup_wall_seconds,
                if st.sustained { "yes" } else { "no" }
            ));
        }
        s.push_str(&format!("\nStopped: {}.\n", self.stopped));
        if let Some(best) = &self.highest_sustained {
            s.push_str(&format!(
                "\nHighest sustained: {} devices at {}× ({:.0} devices in real time), {:.0} claims/s of which {:.0} vendor reads/s, lag p99 {:.3} s, {:.1} KiB per device.\n",
                best.devices, best.speed, best.equivalent_devices, best.polls_per_second, best.reads_per_second, best.lag_p99_s, best.memory_per_device_kib
            ));
        }
        s
    }
}

/// Runs one step.
pub async fn step(
    base: &RunOptions,
    capacity: &CapacityOptions,
    devices: usize,
) -> anyhow::Result<CapacityStep> {
    let households =
        ((devices as f64) / crate::run::DEVICES_PER_HOUSEHOLD).ceil().max(1.0) as usize;
    let options = RunOptions { households, ..base.clone() };
    let rss_before = crate::procstat::rss_mib().unwrap_or(0.0);
    let journal = Arc::new(Journal::default());
    let setup = Instant::now();
    let (demo, clock, redis) =
        start_demo(&options, Heuristic::Adaptive, Arc::clone(&journal)).await?;
    let setup_wall = setup.elapsed().as_secs_f64();
    let linked = demo.devices;
    let batch = options.config.scheduler.poller().batch_size.max(1);

    // Warm-up: the first reads of every device and a few cycles, on the manual clock.
    let tick = Duration::from_secs(10);
    let warm_steps = (capacity.warmup.as_secs() / tick.as_secs()).max(1);
    for _ in 0..warm_steps {
        clock.advance(tick);
        while demo.poller.tick().await.context("poller tick")?.polled >= batch {}
    }
    let rss = crate::procstat::rss_mib().unwrap_or(0.0);

    // The window, paced to the wall clock.
    let from = journal.lags_len();
    let reads_before = journal.reads();
    let sim0 = oemgate_core::Clock::now(clock.as_ref());
    let cpu0 = crate::procstat::cpu_seconds().unwrap_or(0.0);
    let started = Instant::now();
    let speed = capacity.speed.max(0.01);
    while started.elapsed() < capacity.window {
        let target = sim0 + crate::run::chrono_of(started.elapsed().mul_f64(speed));
        if target > oemgate_core::Clock::now(clock.as_ref()) {
            clock.set(target);
        }
        let report = demo.poller.tick().await.context("poller tick")?;
        if report.polled < batch {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    let wall = started.elapsed().as_secs_f64();
    let reads = journal.reads().saturating_sub(reads_before);
    let cpu = crate::procstat::cpu_seconds().unwrap_or(0.0) - cpu0;
    let mut lags = journal.lags_since(from);
    lags.sort_unstable();
    let to_wall = |ms: u32| f64::from(ms) / 1000.0 / speed;
    let polls = lags.len() as u64;
    demo.stop().await;
    crate::run::purge(redis).await?;
    drop(journal);
    let step = CapacityStep {
        devices: linked,
        households,
        speed,
        equivalent_devices: linked as f64 * speed,
        setup_wall_seconds: setup_wall,
        window_wall_seconds: wall,
        polls,
        polls_per_second: polls as f64 / wall.max(1e-9),
        reads_per_second: reads as f64 / wall.max(1e-9),
        lag_p50_s: to_wall(quantile(&lags, 0.5)),
        lag_p99_s: to_wall(quantile(&lags, 0.99)),
        lag_max_s: to_wall(lags.last().copied().unwrap_or(0)),
        rss_mib: rss,
        memory_per_device_kib: (rss - rss_before).max(0.0) * 1024.0 / linked.max(1) as f64,
        cpu_cores_used: cpu / wall.max(1e-9),
        sustained: false,
    };
    Ok(CapacityStep { sustained: step.lag_p99_s <= capacity.max_lag.as_secs_f64(), ..step })
}

/// Doubles the device count until a step is not sustained or the cap is reached.
pub async fn search(
    base: &RunOptions,
    capacity: &CapacityOptions,
    command: String,
    bar: &indicatif::ProgressBar,
) -> anyhow::Result<CapacityReport> {
    let mut report = CapacityReport {
        command,
        max_lag_seconds: capacity.max_lag.as_secs_f64(),
        ..CapacityReport::default()
    };
    let mut devices = capacity.start_devices.max(1);
    loop {
        bar.set_message(format!("capacity: {devices} devices"));
        let step = step(base, capacity, devices).await?;
        let line = format!(
            "{} devices at {}×: {:.0} claims/s ({:.0} reads/s), lag p99 {:.3} s, {:.1} KiB/device{}",
            step.devices,
            step.speed,
            step.polls_per_second,
            step.reads_per_second,
            step.lag_p99_s,
            step.memory_per_device_kib,
            if step.sustained { "" } else { " (not sustained)" }
        );
        if bar.is_hidden() {
            eprintln!("{line}");
        } else {
            bar.println(line);
        }
        let sustained = step.sustained;
        if sustained {
            report.highest_sustained = Some(step.clone());
        }
        report.steps.push(step);
        if !sustained {
            let linked = report.steps.last().map_or(devices, |s| s.devices);
            report.stopped =
                format!("lag p99 above {} s at {linked} devices", capacity.max_lag.as_secs_f64());
            break;
        }
        if devices >= capacity.max_devices {
            report.stopped = format!("cap of {} devices reached", capacity.max_devices);
            break;
        }
        devices = (devices * 2).min(capacity.max_devices);
    }
    Ok(report)
}
