#![allow(clippy::unwrap_used)]
//! Same seed + same calls at the same clock readings => identical world.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use oemgate_core::ManualClock;
use oemgate_sim::*;

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 5, 22, 0, 0).unwrap()
}

fn build(seed: u64) -> (Arc<ManualClock>, World, Vec<Household>) {
    let clock = Arc::new(ManualClock::new(start()));
    let config = WorldConfig {
        latency: HashMap::from([(
            "tesla".to_owned(),
            LatencyProfile { loss_share: 0.2, ..LatencyProfile::default() },
        )]),
        ..WorldConfig::default()
    };
    let world = World::new(seed, clock.clone(), config);
    let households =
        fleet::generate(&world, &FleetSpec { households: 10, ..FleetSpec::default() }).unwrap();
    (clock, world, households)
}

/// Two simulated days, reading every `read_every` minutes, with a fixed script of calls.
fn run(seed: u64, read_every: u64) -> (World, Vec<Household>) {
    let (clock, world, households) = build(seed);
    let cars: Vec<DeviceId> = households.iter().flat_map(|h| h.vehicles.clone()).collect();
    for minute in 1..=2 * 24 * 60u64 {
        clock.advance(Duration::from_secs(60));
        if minute % read_every == 0 {
            for h in &households {
                world.site(&h.site).unwrap();
            }
        }
        // The script: the same calls at the same minutes in every run.
        if minute % 97 == 0 {
            let car = &cars[(minute as usize / 97) % cars.len()];
            let _ = world.wake_vehicle(car);
        }
        if minute % 97 == 1 {
            // A minute after the wake-up: the car is online by now.
            let car = &cars[(minute as usize / 97) % cars.len()];
            let _ = world.command("tesla", car, WorldCommand::SetChargeLimit(90.0));
            let _ = world.command("tesla", car, WorldCommand::StartCharging);
        }
        if minute % 131 == 0 {
            let car = &cars[(minute as usize / 131 + 3) % cars.len()];
            let _ = world.touch_vehicle(car);
        }
    }
    (world, households)
}

#[test]
fn same_seed_same_calls_identical_world() {
    let (a, ha) = run(2024, 1);
    let (b, hb) = run(2024, 1);
    assert_eq!(ha, hb);
    let ca = a.changes_since(start());
    let cb = b.changes_since(start());
    assert!(ca.len() > 50, "too quiet: {}", ca.len());
    assert_eq!(ca, cb);
    for h in &ha {
        assert_eq!(a.site(&h.site), b.site(&h.site));
        for car in &h.vehicles {
            assert_eq!(a.vehicle(car), b.vehicle(car));
            assert_eq!(a.wake_count(car), b.wake_count(car));
        }
        if let Some(bat) = &h.battery {
            assert_eq!(a.battery(bat), b.battery(bat));
        }
    }
    assert_eq!(a.command_stats("tesla"), b.command_stats("tesla"));
    let stats = a.command_stats("tesla");
    assert!(stats.lost > 0 && stats.applied > 0, "{stats:?}");
}

#[test]
fn reading_less_often_does_not_change_what_happens() {
    let (a, _) = run(7, 1);
    let (b, _) = run(7, 53);
    let ca = a.changes_since(start());
    let cb = b.changes_since(start());
    assert_eq!(ca.len(), cb.len());
    for (x, y) in ca.iter().zip(&cb) {
        assert_eq!(
            (&x.device, std::mem::discriminant(&x.kind), &x.cause),
            (&y.device, std::mem::discriminant(&y.kind), &y.cause)
        );
        // Floating-point rounding may move an instant computed from integrated state by
        // nanoseconds, never more.
        assert!((x.at - y.at).num_microseconds().unwrap().abs() <= 1, "{x:?} vs {y:?}");
    }
}

#[test]
fn another_seed_gives_another_world() {
    let (a, _) = run(1, 10);
    let (b, _) = run(2, 10);
    assert_ne!(a.changes_since(start()), b.changes_since(start()));
}
