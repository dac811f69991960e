//! Planning cost at scale: 1,000,000 devices in the embedded store's schedule.
//!
//! Run with `cargo bench -p oemgate-scheduler --bench plan`. Besides criterion's timings it
//! prints the resident memory the schedule of one million devices takes, per device.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use chrono::{DateTime, Duration, Utc};
use criterion::{Criterion, criterion_group, criterion_main};
use futures::executor::block_on;
use oemgate_core::PollContext;
use oemgate_scheduler::{Planner, PlannerConfig};
use oemgate_store::{MemoryStore, ScheduleStore};

const DEVICES: usize = 1_000_000;

fn resident_bytes() -> u64 {
    // Linux: the second field of /proc/self/statm is resident pages.
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1).and_then(|p| p.parse::<u64>().ok()))
        .map_or(0, |pages| pages * 4096)
}

fn start() -> DateTime<Utc> {
    "2026-06-01T00:00:00Z".parse().unwrap()
}

fn planning(c: &mut Criterion) {
    let planner = Planner::new(PlannerConfig::default());
    let now = start();
    let mut i = 0u64;
    c.bench_function("planner.next_due (pure)", |b| {
        b.iter(|| {
            i = i.wrapping_add(1);
            let ctx = PollContext::ALL[(i % 5) as usize];
            black_box(planner.next_due(now, ctx, (i % 1000) as f64 / 1000.0))
        })
    });
}

fn schedule_at_scale(c: &mut Criterion) {
    let store = MemoryStore::new();
    let planner = Planner::new(PlannerConfig::default());
    let before = resident_bytes();
    let t0 = start();
    for n in 0..DEVICES {
        // Spread the first polls over 7 minutes, like the startup spread does.
        let due = t0 + Duration::milliseconds((n as i64 * 420_000) / DEVICES as i64);
        block_on(store.schedule(&format!("device-{n:07}"), due)).unwrap();
    }
    let after = resident_bytes();
    eprintln!(
        "schedule of {DEVICES} devices: {:.1} MiB resident, {:.0} bytes per device",
        (after.saturating_sub(before)) as f64 / (1024.0 * 1024.0),
        after.saturating_sub(before) as f64 / DEVICES as f64
    );

    // One poll's worth of bookkeeping: claim a batch of due devices, plan each one's next
    // poll and put it back on the schedule. Time advances so there is always work.
    let mut now = t0;
    let (mut batches, mut devices) = (0u64, 0u64);
    // Claims go shard by shard, as the poller's tick does.
    let mut shard = 0u16;
    c.bench_function("claim 256 due + plan + reschedule (1M scheduled)", |b| {
        b.iter(|| {
            now += Duration::milliseconds(100);
            shard = (shard + 1) % oemgate_store::SCHEDULE_SHARDS;
            let lease = now + Duration::minutes(2);
            let claimed = block_on(store.claim_due(shard, now, 256, lease)).unwrap();
            for (k, (id, _)) in claimed.iter().enumerate() {
                let ctx = if k % 4 == 0 { PollContext::Charging } else { PollContext::Default };
                let due = planner.next_due(now, ctx, (k % 100) as f64 / 100.0);
                block_on(store.schedule(id, due)).unwrap();
            }
            batches += 1;
            devices += claimed.len() as u64;
            black_box(claimed.len())
        })
    });
    eprintln!(
        "average batch: {:.1} devices (divide the batch time by this for the cost per poll)",
        devices as f64 / batches.max(1) as f64
    );
}

criterion_group!(benches, planning, schedule_at_scale);
criterion_main!(benches);
