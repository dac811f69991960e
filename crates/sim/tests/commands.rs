#![allow(clippy::unwrap_used)]
//! Commands: latency, loss, preconditions at command time and at effect time.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use oemgate_core::{Clock, ManualClock};
use oemgate_sim::*;

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 10, 12, 0, 0).unwrap()
}

fn quiet() -> DrivingPattern {
    DrivingPattern { commute_km: None, errands_per_week: 0.0, plug_in_share: 0.0 }
}

struct Fixture {
    clock: Arc<ManualClock>,
    world: World,
    site: SiteId,
    car: DeviceId,
}

fn fixture(latency: LatencyProfile) -> Fixture {
    let clock = Arc::new(ManualClock::new(start()));
    let config = WorldConfig {
        latency: HashMap::from([("tesla".to_owned(), latency)]),
        ..WorldConfig::default()
    };
    let world = World::new(99, clock.clone(), config);
    let site = world.add_site(SiteSpec::default());
    let car = world
        .add_vehicle(
            &site,
            VehicleSpec {
                battery_level: 40.0,
                charge_on_plug: false,
                pattern: quiet(),
                ..VehicleSpec::default()
            },
        )
        .unwrap();
    Fixture { clock, world, site, car }
}

#[test]
fn a_command_lands_after_its_latency() {
    let f = fixture(LatencyProfile::fixed(20.0));
    f.world.plug_in(&f.car).unwrap();
    assert_eq!(f.world.vehicle(&f.car).unwrap().charge_state, ChargeState::Stopped);
    f.clock.advance(Duration::from_secs(3));
    let ticket = f.world.command("tesla", &f.car, WorldCommand::StartCharging).unwrap();
    assert_eq!(ticket.due_at, f.clock.now() + chrono::Duration::seconds(20));
    assert!(!ticket.lost);
    assert_eq!(
        f.world.command_outcome(ticket.id),
        Some(CommandOutcome::Pending { due_at: ticket.due_at })
    );
    f.clock.advance(Duration::from_secs(19));
    assert!(!f.world.vehicle(&f.car).unwrap().charging);
    f.clock.advance(Duration::from_secs(1));
    let v = f.world.vehicle(&f.car).unwrap();
    assert!(v.charging);
    assert!(f.world.site(&f.site).unwrap().ev_w > 0.0);
    assert_eq!(
        f.world.command_outcome(ticket.id),
        Some(CommandOutcome::Applied { at: ticket.due_at })
    );
    let started = f
        .world
        .device_changes_since(&f.car, start())
        .into_iter()
        .find(|c| c.kind == ChangeKind::ChargingStarted)
        .unwrap();
    assert_eq!(started.at, ticket.due_at);
    assert_eq!(started.cause, ChangeCause::Command { ticket: ticket.id });
    let stats = f.world.command_stats("tesla");
    assert_eq!((stats.received, stats.accepted, stats.applied, stats.pending()), (1, 1, 1, 0));

    // Settings: amps and limit.
    let t = f.world.command("tesla", &f.car, WorldCommand::SetChargeAmps(8)).unwrap();
    f.clock.set(t.due_at);
    let v = f.world.vehicle(&f.car).unwrap();
    assert_eq!(v.charge_amps, 8);
    assert!((v.charge_power_kw - 8.0 * 230.0 * 3.0 / 1000.0).abs() < 1e-9);
    let t = f.world.command("tesla", &f.car, WorldCommand::SetChargeLimit(41.0));
    assert!(matches!(t, Err(CommandRejected::InvalidValue(_))));
    let t = f.world.command("tesla", &f.car, WorldCommand::SetChargeLimit(50.0)).unwrap();
    f.clock.set(t.due_at);
    assert_eq!(f.world.vehicle(&f.car).unwrap().charge_limit, 50.0);
    // 40 % -> 50 % at 5.52 kW on 75 kWh takes ~81.5 minutes; then complete.
    f.clock.advance(Duration::from_secs(90 * 60));
    let v = f.world.vehicle(&f.car).unwrap();
    assert_eq!(v.charge_state, ChargeState::Complete);
    assert!((v.battery_level - 50.0).abs() < 1e-9);
    assert_eq!(
        f.world.command("tesla", &f.car, WorldCommand::StartCharging),
        Err(CommandRejected::AtLimit)
    );
}

#[test]
fn lost_commands_are_never_applied() {
    let f = fixture(LatencyProfile { loss_share: 1.0, ..LatencyProfile::default() });
    f.world.plug_in(&f.car).unwrap();
    let ticket = f.world.command("tesla", &f.car, WorldCommand::StartCharging).unwrap();
    assert!(ticket.lost);
    f.clock.advance(Duration::from_secs(3600));
    assert!(!f.world.vehicle(&f.car).unwrap().charging);
    assert_eq!(f.world.command_outcome(ticket.id), Some(CommandOutcome::Lost));
    let stats = f.world.command_stats("tesla");
    assert_eq!((stats.accepted, stats.lost, stats.applied, stats.pending()), (1, 1, 0, 0));
    assert!(
        f.world
            .changes_since(start())
            .iter()
            .all(|c| !matches!(c.cause, ChangeCause::Command { .. }))
    );
}

#[test]
fn preconditions_at_command_time() {
    let f = fixture(LatencyProfile::fixed(20.0));
    let w = &f.world;
    // Unplugged car.
    assert_eq!(
        w.command("tesla", &f.car, WorldCommand::StartCharging),
        Err(CommandRejected::NotPluggedIn)
    );
    // Not charging: stopping is already set.
    assert_eq!(
        w.command("tesla", &f.car, WorldCommand::StopCharging),
        Err(CommandRejected::AlreadySet)
    );
    // Same value.
    assert_eq!(
        w.command("tesla", &f.car, WorldCommand::SetChargeAmps(16)),
        Err(CommandRejected::AlreadySet)
    );
    assert_eq!(
        w.command("tesla", &f.car, WorldCommand::SetChargeAmps(40)),
        Err(CommandRejected::AlreadySet)
    );
    assert_eq!(
        w.command("tesla", &f.car, WorldCommand::SetChargeLimit(80.0)),
        Err(CommandRejected::AlreadySet)
    );
    // Another vendor cannot command it; unknown ids are unknown.
    assert!(matches!(
        w.command("enphase", &f.car, WorldCommand::StartCharging),
        Err(CommandRejected::UnknownDevice { .. })
    ));
    assert!(matches!(
        w.command("tesla", &DeviceId::new("veh-424242"), WorldCommand::StartCharging),
        Err(CommandRejected::UnknownDevice { .. })
    ));
    // Wrong kind of command.
    assert!(matches!(
        w.command("tesla", &f.car, WorldCommand::SetBatteryMode(BatteryMode::Idle)),
        Err(CommandRejected::Unsupported { .. })
    ));
    // A command in flight counts: a second identical one is already set.
    w.plug_in(&f.car).unwrap();
    w.command("tesla", &f.car, WorldCommand::StartCharging).unwrap();
    assert_eq!(
        w.command("tesla", &f.car, WorldCommand::StartCharging),
        Err(CommandRejected::AlreadySet)
    );
    w.command("tesla", &f.car, WorldCommand::SetChargeAmps(10)).unwrap();
    assert_eq!(
        w.command("tesla", &f.car, WorldCommand::SetChargeAmps(10)),
        Err(CommandRejected::AlreadySet)
    );
    // ...and stopping a pending start is allowed.
    w.command("tesla", &f.car, WorldCommand::StopCharging).unwrap();
    // Asleep cars reject everything with Asleep; offline ones with Offline.
    w.set_vehicle_power_state(&f.car, PowerState::Asleep).unwrap();
    assert_eq!(
        w.command("tesla", &f.car, WorldCommand::SetChargeLimit(90.0)),
        Err(CommandRejected::Asleep)
    );
    w.set_vehicle_power_state(&f.car, PowerState::Offline).unwrap();
    assert_eq!(
        w.command("tesla", &f.car, WorldCommand::SetChargeLimit(90.0)),
        Err(CommandRejected::Offline)
    );
    let stats = w.command_stats("tesla");
    assert_eq!(stats.received, 14);
    assert_eq!(stats.accepted, 3);
    assert_eq!(stats.rejected, 11);
}

#[test]
fn preconditions_at_effect_time() {
    let f = fixture(LatencyProfile::fixed(30.0));
    f.world.plug_in(&f.car).unwrap();
    let ticket = f.world.command("tesla", &f.car, WorldCommand::StartCharging).unwrap();
    f.clock.advance(Duration::from_secs(10));
    f.world.unplug(&f.car).unwrap();
    f.clock.advance(Duration::from_secs(30));
    assert!(!f.world.vehicle(&f.car).unwrap().charging);
    assert_eq!(
        f.world.command_outcome(ticket.id),
        Some(CommandOutcome::Failed { at: ticket.due_at, reason: CommandRejected::NotPluggedIn })
    );
    assert_eq!(f.world.command_stats("tesla").failed, 1);
}

#[test]
fn pending_commands_keep_a_car_awake() {
    let f = fixture(LatencyProfile::fixed(120.0));
    f.world.plug_in(&f.car).unwrap();
    // Idle for 14 minutes, then a command with a 2-minute latency.
    f.clock.advance(Duration::from_secs(14 * 60));
    f.world.command("tesla", &f.car, WorldCommand::SetChargeLimit(90.0)).unwrap();
    f.clock.advance(Duration::from_secs(100));
    assert_eq!(f.world.vehicle(&f.car).unwrap().power_state, PowerState::Online);
    f.clock.advance(Duration::from_secs(20));
    assert_eq!(f.world.vehicle(&f.car).unwrap().charge_limit, 90.0);
    f.clock.advance(Duration::from_secs(15 * 60));
    assert_eq!(f.world.vehicle(&f.car).unwrap().power_state, PowerState::Asleep);
}

#[test]
fn battery_charger_and_hvac_commands() {
    let clock = Arc::new(ManualClock::new(start()));
    let config =
        WorldConfig { default_latency: LatencyProfile::fixed(15.0), ..WorldConfig::default() };
    let world = World::new(5, clock.clone(), config);
    let site = world.add_site(SiteSpec::default());
    let battery = world
        .add_battery(&site, BatterySpec { vendor: "enphase".into(), ..BatterySpec::default() })
        .unwrap();
    let charger = world.add_charger(&site, ChargerSpec::default()).unwrap();
    let hvac = world.add_hvac(&site, HvacSpec::default()).unwrap();
    let car = world
        .add_vehicle(
            &site,
            VehicleSpec { battery_level: 30.0, pattern: quiet(), ..VehicleSpec::default() },
        )
        .unwrap();

    // Battery.
    assert_eq!(
        world.command("enphase", &battery, WorldCommand::SetBatteryMode(BatteryMode::SelfReliance)),
        Err(CommandRejected::AlreadySet)
    );
    let t = world
        .command("enphase", &battery, WorldCommand::SetBatteryMode(BatteryMode::ImportFocus))
        .unwrap();
    let r = world.command("enphase", &battery, WorldCommand::SetBatteryReserve(35.0)).unwrap();
    assert!(matches!(
        world.command("enphase", &battery, WorldCommand::SetBatteryReserve(120.0)),
        Err(CommandRejected::InvalidValue(_))
    ));
    clock.set(t.due_at.max(r.due_at));
    let b = world.battery(&battery).unwrap();
    assert_eq!((b.mode, b.reserve_pct), (BatteryMode::ImportFocus, 35.0));
    assert_eq!(b.power_w, 5000.0);

    // Charger: nothing plugged, then the car.
    assert_eq!(
        world.command("easee", &charger, WorldCommand::ChargerStart),
        Err(CommandRejected::NotPluggedIn)
    );
    world.plug_in(&car).unwrap();
    assert_eq!(
        world.command("easee", &charger, WorldCommand::ChargerStart),
        Err(CommandRejected::AlreadySet)
    );
    let stop = world.command("easee", &charger, WorldCommand::ChargerStop).unwrap();
    let cur = world.command("easee", &charger, WorldCommand::SetChargerMaxCurrent(8.0)).unwrap();
    assert!(matches!(
        world.command("easee", &charger, WorldCommand::SetChargerMaxCurrent(64.0)),
        Err(CommandRejected::InvalidValue(_))
    ));
    clock.set(stop.due_at.max(cur.due_at));
    let c = world.charger(&charger).unwrap();
    assert_eq!((c.status, c.max_current_a), (ChargerStatus::Plugged, 8.0));
    assert!(!world.vehicle(&car).unwrap().charging);
    let go = world.command("easee", &charger, WorldCommand::ChargerStart).unwrap();
    clock.set(go.due_at);
    let v = world.vehicle(&car).unwrap();
    assert!(v.charging);
    assert!((v.charge_power_kw - 8.0 * 230.0 * 3.0 / 1000.0).abs() < 1e-9);
    assert_eq!(world.charger(&charger).unwrap().power_w, v.charge_power_kw * 1000.0);

    // HVAC: hold, then back to the schedule.
    assert_eq!(
        world.command("ecobee", &hvac, WorldCommand::HvacFollowSchedule),
        Err(CommandRejected::AlreadySet)
    );
    let hold = WorldCommand::SetHvacHold {
        mode: HvacMode::Heat,
        heat_setpoint: Some(23.5),
        cool_setpoint: None,
    };
    let t = world.command("ecobee", &hvac, hold.clone()).unwrap();
    assert!(matches!(
        world.command(
            "ecobee",
            &hvac,
            WorldCommand::SetHvacHold {
                mode: HvacMode::Auto,
                heat_setpoint: Some(26.0),
                cool_setpoint: Some(25.0)
            }
        ),
        Err(CommandRejected::InvalidValue(_))
    ));
    clock.set(t.due_at);
    let h = world.hvac(&hvac).unwrap();
    assert_eq!((h.hold, h.mode, h.heat_setpoint), (HvacHold::Permanent, HvacMode::Heat, 23.5));
    assert_eq!(world.command("ecobee", &hvac, hold), Err(CommandRejected::AlreadySet));
    let t = world.command("ecobee", &hvac, WorldCommand::HvacFollowSchedule).unwrap();
    clock.set(t.due_at);
    let h = world.hvac(&hvac).unwrap();
    assert_eq!((h.hold, h.mode, h.heat_setpoint), (HvacHold::Schedule, HvacMode::Auto, 21.0));
    let kinds: Vec<ChangeKind> =
        world.device_changes_since(&hvac, start()).into_iter().map(|c| c.kind).collect();
    assert!(kinds.contains(&ChangeKind::HoldChanged { hold: HvacHold::Permanent }));
    assert!(
        kinds.contains(&ChangeKind::HvacModeChanged { from: HvacMode::Auto, to: HvacMode::Heat })
    );
    assert!(kinds.contains(&ChangeKind::SetpointChanged { heat: 23.5, cool: 25.0 }));

    // Offline devices refuse.
    world.set_device_online(&battery, false).unwrap();
    assert_eq!(
        world.command("enphase", &battery, WorldCommand::SetBatteryMode(BatteryMode::Idle)),
        Err(CommandRejected::Offline)
    );
    let total = world.command_stats_total();
    assert_eq!(total.applied, 7);
}
