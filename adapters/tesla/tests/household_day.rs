//! A simulated day of a Tesla household, read through the adapter the way the scheduler
//! would: one site with PV, a Powerwall and a commuting Tesla, the world stepped in 30 s
//! steps on a `ManualClock`, the car and the Powerwall polled every 2 minutes.
//!
//! Every change in the world's ground-truth log must show in the first poll at or after it
//! (within one poll), unless a later change of the same thing superseded it before that
//! poll. Polling never wakes the car: its wake count stays zero all day, and no command is
//! sent to it (the Powerwall gets two mode changes and a reserve change, to see those
//! reach the snapshots too).

// clippy.toml allows unwrap inside #[test] fns only; the helpers here are test code too.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use oemgate_core::{
    AccountRef, Battery, BatteryChargeStatus, BatteryConfigOperationMode, BatteryOperationMode,
    Clock, Command, DeviceRef, DeviceState, ManualClock, Observation, PowerDeliveryState, Vehicle,
    VendorAdapter, VendorType,
};
use oemgate_sim::{
    BatteryMode, BatterySpec, Change, ChangeKind, DrivingPattern, InverterSpec, LatencyProfile,
    PowerState, SiteSpec, VehicleSpec, World, WorldConfig,
};
use oemgate_tesla::sim::{TeslaSim, WORLD_VENDOR};
use oemgate_tesla::{TeslaAdapter, TeslaConfig};

const STEP: Duration = Duration::from_secs(30);
const POLL_EVERY: Duration = Duration::from_secs(120);

/// One poll of one device.
#[derive(Debug)]
struct Poll {
    at: DateTime<Utc>,
    obs: Observation,
}

fn vehicle(obs: &Observation) -> &Vehicle {
    match &obs.state {
        DeviceState::Vehicle(v) => v,
        other => panic!("not a vehicle: {other:?}"),
    }
}

fn battery(obs: &Observation) -> &Battery {
    match &obs.state {
        DeviceState::Battery(b) => b,
        other => panic!("not a battery: {other:?}"),
    }
}

/// The first poll at or after `t`.
fn first_poll_after(polls: &[Poll], t: DateTime<Utc>) -> Option<&Poll> {
    polls.iter().find(|p| p.at >= t)
}

/// Whether `changes` (of one device) hold a change matching `pred` in `(from, to]`.
fn any_between(
    changes: &[Change],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    pred: impl Fn(&ChangeKind) -> bool,
) -> bool {
    changes.iter().any(|c| c.at > from && c.at <= to && pred(&c.kind))
}

fn expected_mode(mode: BatteryMode) -> BatteryConfigOperationMode {
    match mode {
        BatteryMode::SelfReliance => BatteryConfigOperationMode::SelfReliance,
        BatteryMode::TimeOfUse | BatteryMode::ExportFocus => BatteryConfigOperationMode::TimeOfUse,
        BatteryMode::Backup | BatteryMode::ImportFocus | BatteryMode::Idle => {
            BatteryConfigOperationMode::ImportFocus
        }
    }
}

#[tokio::test]
async fn a_day_of_a_tesla_household_follows_the_ground_truth() {
    // Monday 2025-03-03 00:00 UTC (01:00 in Oslo).
    let start = Utc.with_ymd_and_hms(2025, 3, 3, 0, 0, 0).unwrap();
    let clock = Arc::new(ManualClock::new(start));
    let config = WorldConfig {
        latency: HashMap::from([(WORLD_VENDOR.to_owned(), LatencyProfile::fixed(15.0))]),
        ..WorldConfig::default()
    };
    let world = World::new(7, clock.clone(), config);
    let site = world.add_site(SiteSpec { name: "Commuter home".into(), ..SiteSpec::default() });
    world
        .add_inverter(&site, InverterSpec { capacity_w: 8000.0, ..InverterSpec::default() })
        .unwrap();
    let powerwall =
        world.add_battery(&site, BatterySpec { soc_pct: 40.0, ..BatterySpec::default() }).unwrap();
    let car = world
        .add_vehicle(
            &site,
            VehicleSpec {
                name: "Commuter".into(),
                battery_level: 45.0,
                charge_limit: 70.0,
                pattern: DrivingPattern {
                    commute_km: Some(25.0),
                    errands_per_week: 0.0,
                    plug_in_share: 1.0,
                },
                ..VehicleSpec::default()
            },
        )
        .unwrap();

    let sim = TeslaSim::new(world.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(sim.clone().serve(listener));
    let adapter = TeslaAdapter::new(
        TeslaConfig {
            api_base_url: base.clone(),
            auth_base_url: base,
            client_id: "oemgate-test".into(),
            client_secret: String::new(),
            request_timeout: Duration::from_secs(10),
        },
        clock.clone(),
    );
    let (account_id, code) = sim.link_site(&site).unwrap();
    let credentials = adapter.exchange_code(&code, "https://oemgate.example/cb").await.unwrap();
    let mut account =
        AccountRef { user_id: "u".into(), vendor: "TESLA".into(), account_id, credentials };

    let found = adapter.discover(&account).await.unwrap();
    let find = |t: VendorType| found.iter().find(|d| d.device_type == t).unwrap().clone();
    let (car_found, site_found) = (find(VendorType::Vehicle), find(VendorType::Battery));
    assert_eq!(found.len(), 2);
    let device = |d: &oemgate_core::DiscoveredDevice, id: &str| DeviceRef {
        id: id.into(),
        user_id: "u".into(),
        device_type: d.device_type,
        vendor_id: d.vendor_id.clone(),
        site_id: d.site_id.clone(),
    };
    let car_ref = device(&car_found, "car");
    let pw_ref = device(&site_found, "powerwall");
    assert_eq!(sim.vehicle_of_vin(&car_ref.vendor_id), Some(car.clone()));

    // The Powerwall's day: backup (IMPORT_FOCUS) at 09:00, time-of-use at 15:00, and a
    // higher reserve at 20:00 local (UTC+1).
    let at = |h: u32| start + chrono::Duration::hours(i64::from(h) - 1);
    let mut battery_plan = vec![
        (at(9), Command::SetOperationMode { mode: BatteryOperationMode::ImportFocus }),
        (at(15), Command::SetOperationMode { mode: BatteryOperationMode::TimeOfUse }),
    ];
    let mut reserve_at = Some(at(20));

    let mut car_polls: Vec<Poll> = Vec::new();
    let mut pw_polls: Vec<Poll> = Vec::new();
    let mut truth_levels: Vec<f64> = Vec::new();
    let end = start + chrono::Duration::hours(24);
    let mut next_poll = start;
    while clock.now() <= end {
        let now = clock.now();
        // The caller's job (the scheduler's, in the gateway): refresh expired credentials.
        if account.credentials.expires_at.is_some_and(|t| t <= now) {
            account.credentials = adapter.refresh_credentials(&account).await.unwrap();
        }
        if battery_plan.first().is_some_and(|(t, _)| *t <= now) {
            let (_, command) = battery_plan.remove(0);
            adapter.execute(&account, &pw_ref, &command).await.unwrap();
        }
        if reserve_at.is_some_and(|t| t <= now) {
            reserve_at = None;
            adapter.set_backup_reserve(&account, &pw_ref, 50.0).await.unwrap();
        }
        if now >= next_poll {
            next_poll = now + chrono::Duration::from_std(POLL_EVERY).unwrap();
            for (dev, polls) in [(&car_ref, &mut car_polls), (&pw_ref, &mut pw_polls)] {
                let obs = adapter.poll(&account, dev).await.unwrap();
                assert_eq!(obs.observed_at, now);
                polls.push(Poll { at: now, obs });
            }
            // The battery's continuous values match the world at the instant of the poll.
            let truth = world.battery(&powerwall).unwrap();
            let b = battery(&pw_polls.last().unwrap().obs);
            let level = b.charge_state.battery_level.unwrap();
            assert!((level - truth.soc_pct).abs() < 0.01, "{now}: {level} vs {}", truth.soc_pct);
            let rate = b.charge_state.charge_rate.unwrap();
            let status = b.charge_state.status.unwrap();
            if truth.power_w.abs() >= 51.0 {
                assert!(
                    (rate - truth.power_w / 1000.0).abs() < 0.001,
                    "{now}: {rate} vs {}",
                    truth.power_w
                );
                let expected = if truth.power_w > 0.0 {
                    BatteryChargeStatus::Charging
                } else {
                    BatteryChargeStatus::Discharging
                };
                assert_eq!(status, expected, "{now}");
            } else if truth.power_w.abs() < 49.0 {
                assert_eq!((status, rate), (BatteryChargeStatus::Idle, 0.0), "{now}");
            }
            assert_eq!(b.config.operation_mode, Some(expected_mode(truth.mode)), "{now}");
            assert_eq!(b.charge_state.discharge_limit, Some(truth.reserve_pct.round()));
            truth_levels.push(truth.soc_pct);
            // Polling never wakes the car.
            assert_eq!(world.wake_count(&car).requested, 0, "{now}");
        }
        clock.advance(STEP);
    }
    server.abort();

    // ---- the car: every logged change shows within one poll --------------------------
    let changes = world.device_changes_since(&car, start);
    let kinds: Vec<&str> = changes
        .iter()
        .map(|c| match c.kind {
            ChangeKind::PluggedIn { .. } => "plugged_in",
            ChangeKind::Unplugged { .. } => "unplugged",
            ChangeKind::ChargingStarted => "charging_started",
            ChangeKind::ChargingStopped => "charging_stopped",
            ChangeKind::ChargeComplete { .. } => "charge_complete",
            ChangeKind::FellAsleep => "fell_asleep",
            ChangeKind::WokeUp => "woke_up",
            ChangeKind::DriveStarted { .. } => "drive_started",
            ChangeKind::DriveEnded { .. } => "drive_ended",
            _ => "other",
        })
        .collect();
    for expected in [
        "plugged_in",
        "charging_started",
        "charge_complete",
        "fell_asleep",
        "woke_up",
        "drive_started",
        "drive_ended",
    ] {
        assert!(kinds.contains(&expected), "no {expected} in the day: {kinds:?}");
    }
    // What makes a change invisible at the next poll: a later change of the same thing.
    fn superseded_by(kind: &ChangeKind) -> fn(&ChangeKind) -> bool {
        match kind {
            ChangeKind::FellAsleep
            | ChangeKind::WokeUp
            | ChangeKind::WentOffline
            | ChangeKind::CameOnline => |k| {
                matches!(
                    k,
                    ChangeKind::FellAsleep
                        | ChangeKind::WokeUp
                        | ChangeKind::WentOffline
                        | ChangeKind::CameOnline
                )
            },
            ChangeKind::PluggedIn { .. } => |k| matches!(k, ChangeKind::Unplugged { .. }),
            ChangeKind::Unplugged { .. } => |k| matches!(k, ChangeKind::PluggedIn { .. }),
            ChangeKind::ChargingStarted => |k| {
                matches!(
                    k,
                    ChangeKind::ChargingStopped
                        | ChangeKind::ChargeComplete { .. }
                        | ChangeKind::Unplugged { .. }
                )
            },
            ChangeKind::ChargeComplete { .. } => {
                |k| matches!(k, ChangeKind::ChargingStarted | ChangeKind::Unplugged { .. })
            }
            ChangeKind::ChargingStopped => |k| matches!(k, ChangeKind::ChargingStarted),
            _ => |_| false,
        }
    }
    let mut checked = 0;
    for change in &changes {
        let Some(poll) = first_poll_after(&car_polls, change.at) else { continue };
        assert!(poll.at - change.at < chrono::Duration::from_std(POLL_EVERY).unwrap());
        if any_between(&changes, change.at, poll.at, superseded_by(&change.kind)) {
            continue;
        }
        let v = vehicle(&poll.obs);
        let cs = &v.charge_state;
        let why = format!("{change:?} seen at {}: {cs:?}", poll.at);
        match &change.kind {
            ChangeKind::FellAsleep => {
                assert!(poll.obs.asleep, "{why}");
                assert_eq!(v.is_reachable, Some(false), "{why}");
                assert_eq!(cs.battery_level, None, "{why}");
                checked += 1;
            }
            ChangeKind::WokeUp | ChangeKind::CameOnline => {
                assert!(!poll.obs.asleep, "{why}");
                assert_eq!(v.is_reachable, Some(true), "{why}");
                checked += 1;
            }
            ChangeKind::PluggedIn { .. } => {
                assert_eq!(cs.is_plugged_in, Some(true), "{why}");
                checked += 1;
            }
            ChangeKind::Unplugged { .. } => {
                assert_eq!(cs.is_plugged_in, Some(false), "{why}");
                assert_eq!(cs.power_delivery_state, PowerDeliveryState::Unplugged, "{why}");
                checked += 1;
            }
            ChangeKind::ChargingStarted => {
                assert_eq!(cs.is_charging, Some(true), "{why}");
                assert_eq!(cs.power_delivery_state, PowerDeliveryState::PluggedInCharging);
                assert!(cs.charge_rate.unwrap() > 0.0, "{why}");
                checked += 1;
            }
            ChangeKind::ChargeComplete { level } => {
                assert_eq!(cs.is_fully_charged, Some(true), "{why}");
                assert_eq!(cs.is_charging, Some(false), "{why}");
                assert_eq!(cs.power_delivery_state, PowerDeliveryState::PluggedInComplete);
                assert_eq!(cs.battery_level, Some(level.round()), "{why}");
                assert_eq!(cs.battery_level, cs.charge_limit, "{why}");
                checked += 1;
            }
            ChangeKind::ChargingStopped => {
                assert_eq!(cs.is_charging, Some(false), "{why}");
                checked += 1;
            }
            ChangeKind::DriveEnded { distance_km, .. } => {
                // The drive that ended here started at the latest DriveStarted before it.
                let started = changes
                    .iter()
                    .rfind(|c| {
                        c.at < change.at && matches!(c.kind, ChangeKind::DriveStarted { .. })
                    })
                    .map(|c| c.at)
                    .unwrap();
                // The last odometer and position read before the drive (the car may have
                // slept for hours before it: parked cars do not move).
                let before = car_polls
                    .iter()
                    .rev()
                    .filter(|p| p.at <= started)
                    .map(|p| vehicle(&p.obs))
                    .find(|v| v.odometer.distance.is_some())
                    .unwrap();
                let odo_before = before.odometer.distance.unwrap();
                let odo_after = v.odometer.distance.expect("online right after arriving");
                assert!(
                    odo_after - odo_before >= distance_km - 0.5,
                    "{why}: odometer {odo_before} -> {odo_after}, drove {distance_km} km"
                );
                assert_ne!(
                    (before.location.latitude, before.location.longitude),
                    (v.location.latitude, v.location.longitude),
                    "{why}"
                );
                // Polls during the drive saw the odometer rise and never fall.
                let during: Vec<f64> = car_polls
                    .iter()
                    .filter(|p| p.at > started && p.at < change.at)
                    .filter_map(|p| vehicle(&p.obs).odometer.distance)
                    .collect();
                assert!(during.windows(2).all(|w| w[1] >= w[0]), "{during:?}");
                checked += 1;
            }
            _ => {}
        }
    }
    assert!(checked >= 7, "only {checked} changes checked: {kinds:?}");
    eprintln!("the car's day: {kinds:?} ({checked} changes checked)");

    // ---- the Powerwall: mode and reserve changes within one poll ----------------------
    let pw_changes = world.device_changes_since(&powerwall, start);
    let mut pw_checked = 0;
    for change in &pw_changes {
        let Some(poll) = first_poll_after(&pw_polls, change.at) else { continue };
        let b = battery(&poll.obs);
        match &change.kind {
            ChangeKind::BatteryModeChanged { to, .. } => {
                assert_eq!(b.config.operation_mode, Some(expected_mode(*to)), "{change:?}");
                pw_checked += 1;
            }
            ChangeKind::ReserveChanged { to, .. } => {
                assert_eq!(b.charge_state.discharge_limit, Some(to.round()), "{change:?}");
                pw_checked += 1;
            }
            _ => {}
        }
    }
    assert_eq!(pw_checked, 3, "two mode changes and a reserve change: {pw_changes:?}");
    // The level moved over the day, and the snapshots followed it (checked at every poll).
    let (lo, hi) =
        truth_levels.iter().fold((f64::MAX, f64::MIN), |(lo, hi), l| (lo.min(*l), hi.max(*l)));
    assert!(hi - lo > 10.0, "the Powerwall barely moved: {lo}..{hi}");
    let statuses: Vec<_> =
        pw_polls.iter().filter_map(|p| battery(&p.obs).charge_state.status).collect();
    assert!(statuses.contains(&BatteryChargeStatus::Charging));
    assert!(statuses.contains(&BatteryChargeStatus::Discharging));

    // ---- the bill ---------------------------------------------------------------------
    assert_eq!(world.wake_count(&car).requested, 0);
    let counts = sim.request_counts();
    assert_eq!(counts.wakes, 0);
    assert_eq!(counts.commands, 3);
    assert_eq!(counts.token, 1 + 3, "the code exchange and refreshes at 08:00, 16:00, 24:00");
    assert_eq!(world.command_stats(WORLD_VENDOR).accepted, 3);
    let polls = car_polls.len() as u64;
    assert_eq!(polls, 24 * 30 + 1);
    assert_eq!(counts.vehicle_list, polls);
    assert!(counts.vehicle_data < polls, "the car slept part of the day");
    assert_eq!(counts.energy_data, 2 * polls);
    assert_eq!(world.vehicle(&car).unwrap().power_state, PowerState::Asleep);
}
