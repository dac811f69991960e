#![allow(clippy::unwrap_used)]
//! A simulated day for a household, stepped through with a `ManualClock`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use oemgate_core::{Clock, ManualClock};
use oemgate_sim::*;

fn start() -> DateTime<Utc> {
    // Monday 2026-06-01 00:00 in Oslo (UTC+1 in the model).
    Utc.with_ymd_and_hms(2026, 5, 31, 23, 0, 0).unwrap()
}

fn world(seed: u64) -> (Arc<ManualClock>, World) {
    let clock = Arc::new(ManualClock::new(start()));
    let world = World::new(seed, clock.clone(), WorldConfig::default());
    (clock, world)
}

fn kinds_of(changes: &[Change], device: &DeviceId) -> Vec<ChangeKind> {
    changes.iter().filter(|c| &c.device == device).map(|c| c.kind.clone()).collect()
}

#[test]
fn a_household_day() {
    let (clock, world) = world(7);
    let site = world.add_site(SiteSpec::default());
    let inverter = world.add_inverter(&site, InverterSpec::default()).unwrap();
    let battery = world.add_battery(&site, BatterySpec::default()).unwrap();
    let meter = world.add_meter(&site, MeterSpec::default()).unwrap();
    let charger = world.add_charger(&site, ChargerSpec::default()).unwrap();
    let hvac = world.add_hvac(&site, HvacSpec::default()).unwrap();
    let car = world
        .add_vehicle(
            &site,
            VehicleSpec {
                battery_level: 55.0,
                charge_limit: 80.0,
                pattern: DrivingPattern {
                    commute_km: Some(25.0),
                    errands_per_week: 0.0,
                    plug_in_share: 1.0,
                },
                ..VehicleSpec::default()
            },
        )
        .unwrap();

    let mut pv = Vec::new();
    let mut prev_import = 0.0;
    let mut prev_export = 0.0;
    for minute in 0..=24 * 60 {
        if minute > 0 {
            clock.advance(Duration::from_secs(60));
        }
        let s = world.site(&site).unwrap();
        assert_eq!(s.at, clock.now());
        let balance = s.load_w + s.ev_w + s.hvac_w + s.battery_w - s.pv_w;
        assert!((s.grid_w - balance).abs() < 1e-6, "grid balance at minute {minute}");
        assert!(s.pv_w >= 0.0 && s.load_w > 0.0 && s.ev_w >= 0.0 && s.hvac_w >= 0.0);
        assert!(s.import_kwh >= prev_import && s.export_kwh >= prev_export);
        (prev_import, prev_export) = (s.import_kwh, s.export_kwh);
        let b = world.battery(&battery).unwrap();
        assert!((0.0..=100.0).contains(&b.soc_pct));
        if b.power_w < 0.0 {
            assert!(b.soc_pct >= b.reserve_pct - 1e-6);
        }
        let m = world.meter(&meter).unwrap();
        assert_eq!(m.power_w, s.grid_w);
        let v = world.vehicle(&car).unwrap();
        assert!((0.0..=100.0).contains(&v.battery_level));
        if v.at_home && v.charging {
            assert!((s.ev_w - v.charge_power_kw * 1000.0).abs() < 1e-6);
            let c = world.charger(&charger).unwrap();
            assert_eq!(c.vehicle.as_ref(), Some(&car));
            assert!((c.power_w - v.charge_power_kw * 1000.0).abs() < 1e-6);
        }
        pv.push(world.inverter(&inverter).unwrap().production_w);
    }

    // PV: nothing at midnight, rising to a peak around solar noon, nothing late at night.
    assert_eq!(pv[0], 0.0);
    assert_eq!(pv[24 * 60], 0.0);
    let noon = 13 * 60; // 13:00 local is about solar noon at 10.75° E with UTC+1
    assert!(pv[noon] > 1000.0, "noon pv {}", pv[noon]);
    assert!(pv[8 * 60] < pv[noon] && pv[19 * 60] < pv[noon]);
    let peak = pv.iter().cloned().fold(0.0, f64::max);
    assert!(peak <= 6000.0);

    let changes = world.changes_since(start());
    let car_changes = kinds_of(&changes, &car);
    // The car was idle at midnight and fell asleep 15 minutes later, exactly.
    let first_sleep =
        changes.iter().find(|c| c.device == car && c.kind == ChangeKind::FellAsleep).unwrap();
    assert_eq!(first_sleep.at, start() + chrono::Duration::minutes(15));
    // It commuted: left home, arrived away, left again, came home.
    let drives: Vec<&ChangeKind> = car_changes
        .iter()
        .filter(|k| matches!(k, ChangeKind::DriveStarted { .. } | ChangeKind::DriveEnded { .. }))
        .collect();
    assert!(matches!(drives[0], ChangeKind::DriveStarted { from_home: true }), "{drives:?}");
    assert!(matches!(drives[1], ChangeKind::DriveEnded { at_home: false, .. }));
    assert!(matches!(drives[2], ChangeKind::DriveStarted { from_home: false }));
    assert!(matches!(drives[3], ChangeKind::DriveEnded { at_home: true, .. }));
    // Woke up to drive.
    assert!(car_changes.contains(&ChangeKind::WokeUp));
    // Plugged in after coming home (share 1.0), into the site charger, charged to the limit.
    let plugged = changes
        .iter()
        .find(|c| c.device == car && matches!(c.kind, ChangeKind::PluggedIn { .. }))
        .unwrap();
    assert_eq!(plugged.kind, ChangeKind::PluggedIn { peer: Some(charger.clone()) });
    let complete = changes
        .iter()
        .find(|c| c.device == car && matches!(c.kind, ChangeKind::ChargeComplete { .. }))
        .unwrap();
    assert!(complete.at > plugged.at);
    let ChangeKind::ChargeComplete { level } = complete.kind else { unreachable!() };
    assert!((level - 80.0).abs() < 1e-6);
    // The charger saw the same session.
    let charger_kinds = kinds_of(&changes, &charger);
    assert!(charger_kinds.contains(&ChangeKind::ChargingStarted));
    assert!(charger_kinds.iter().any(|k| matches!(k, ChangeKind::ChargeComplete { .. })));
    // Fell asleep 15 minutes after completing (nothing kept it awake).
    let slept = changes
        .iter()
        .find(|c| c.device == car && c.kind == ChangeKind::FellAsleep && c.at > complete.at)
        .unwrap();
    assert_eq!(slept.at, complete.at + chrono::Duration::minutes(15));

    let v = world.vehicle(&car).unwrap();
    assert!(v.at_home && v.plugged_in && !v.charging);
    assert_eq!(v.charge_state, ChargeState::Complete);
    assert_eq!(v.power_state, PowerState::Asleep);
    assert!(v.odometer_km > 15_000.0 + 45.0);
    assert!((v.battery_level - 80.0).abs() < 1e-6);

    // The thermostat followed its schedule: night setpoint at 22:00.
    assert!(changes.iter().any(|c| c.device == hvac
        && c.kind == ChangeKind::SetpointChanged { heat: 17.0, cool: 27.0 }
        && c.at == start() + chrono::Duration::hours(22)));
}

#[test]
fn touch_keeps_a_car_awake_and_wake_takes_10_to_30_seconds() {
    let (clock, world) = world(3);
    let site = world.add_site(SiteSpec::default());
    let car = world
        .add_vehicle(
            &site,
            VehicleSpec {
                pattern: DrivingPattern {
                    commute_km: None,
                    errands_per_week: 0.0,
                    plug_in_share: 0.0,
                },
                ..VehicleSpec::default()
            },
        )
        .unwrap();
    // Data reads every 10 minutes keep it awake.
    for _ in 0..6 {
        clock.advance(Duration::from_secs(600));
        assert_eq!(world.touch_vehicle(&car).unwrap(), PowerState::Online);
    }
    // Then nothing for 15 minutes: asleep, exactly 15 minutes after the last touch.
    let last_touch = clock.now();
    clock.advance(Duration::from_secs(15 * 60 + 1));
    assert_eq!(world.vehicle(&car).unwrap().power_state, PowerState::Asleep);
    let slept = world.device_changes_since(&car, start());
    assert_eq!(slept.last().unwrap().at, last_touch + chrono::Duration::minutes(15));
    assert_eq!(world.touch_vehicle(&car).unwrap(), PowerState::Asleep);

    let asked = clock.now();
    let WakeOutcome::Waking { ready_at } = world.wake_vehicle(&car).unwrap() else {
        panic!("not waking")
    };
    let delay = (ready_at - asked).num_milliseconds();
    assert!((10_000..=30_000).contains(&delay), "{delay}");
    // A second request while waking does not restart it.
    assert_eq!(world.wake_vehicle(&car).unwrap(), WakeOutcome::Waking { ready_at });
    clock.advance(Duration::from_secs(9));
    assert_eq!(world.vehicle(&car).unwrap().power_state, PowerState::Asleep);
    assert!(world.vehicle(&car).unwrap().waking);
    clock.set(ready_at);
    assert_eq!(world.vehicle(&car).unwrap().power_state, PowerState::Online);
    let woke = world.device_changes_since(&car, asked);
    assert_eq!(woke.len(), 1);
    assert_eq!(woke[0].kind, ChangeKind::WokeUp);
    assert_eq!(woke[0].at, ready_at);
    assert_eq!(woke[0].cause, ChangeCause::WakeRequest);
    assert_eq!(world.wake_count(&car), WakeCount { requested: 2, performed: 1 });
    assert_eq!(world.wake_vehicle(&car).unwrap(), WakeOutcome::AlreadyOnline);

    world.set_vehicle_power_state(&car, PowerState::Offline).unwrap();
    assert_eq!(world.wake_vehicle(&car).unwrap(), WakeOutcome::Offline);
    clock.advance(Duration::from_secs(3600));
    assert_eq!(world.vehicle(&car).unwrap().power_state, PowerState::Offline);
}

#[test]
fn charger_limits_the_car_and_follows_it() {
    let (clock, world) = world(5);
    let site = world.add_site(SiteSpec::default());
    let charger = world
        .add_charger(&site, ChargerSpec { max_current_a: 10.0, ..ChargerSpec::default() })
        .unwrap();
    let car = world
        .add_vehicle(
            &site,
            VehicleSpec {
                battery_level: 30.0,
                pattern: DrivingPattern {
                    commute_km: None,
                    errands_per_week: 0.0,
                    plug_in_share: 0.0,
                },
                ..VehicleSpec::default()
            },
        )
        .unwrap();
    world.plug_in(&car).unwrap();
    let v = world.vehicle(&car).unwrap();
    assert!(v.charging);
    assert_eq!(v.charger.as_ref(), Some(&charger));
    assert!((v.charge_power_kw - 10.0 * 230.0 * 3.0 / 1000.0).abs() < 1e-9);
    let c = world.charger(&charger).unwrap();
    assert_eq!(c.status, ChargerStatus::Charging);
    assert_eq!(c.vehicle.as_ref(), Some(&car));

    clock.advance(Duration::from_secs(3600));
    let v = world.vehicle(&car).unwrap();
    let expected = 30.0 + 6.9 / 75.0 * 100.0;
    assert!((v.battery_level - expected).abs() < 1e-6, "{}", v.battery_level);
    assert!((world.charger(&charger).unwrap().session_kwh - 6.9).abs() < 1e-6);

    world.unplug(&car).unwrap();
    let c = world.charger(&charger).unwrap();
    assert_eq!(c.status, ChargerStatus::Available);
    assert_eq!(c.power_w, 0.0);
    assert_eq!(world.site(&site).unwrap().ev_w, 0.0);
    let kinds = kinds_of(&world.changes_since(start()), &charger);
    assert_eq!(
        kinds,
        vec![
            ChangeKind::PluggedIn { peer: Some(car.clone()) },
            ChangeKind::ChargingStarted,
            ChangeKind::ChargingStopped,
            ChangeKind::Unplugged { peer: Some(car.clone()) },
        ]
    );
}

#[test]
fn battery_modes_and_reserve() {
    let (clock, world) = world(11);
    let site = world.add_site(SiteSpec { base_load_w: 500.0, ..SiteSpec::default() });
    let battery = world
        .add_battery(
            &site,
            BatterySpec {
                soc_pct: 50.0,
                reserve_pct: 40.0,
                mode: BatteryMode::ExportFocus,
                ..BatterySpec::default()
            },
        )
        .unwrap();
    // Export focus: full discharge power until the reserve, then nothing.
    let b = world.battery(&battery).unwrap();
    assert_eq!(b.power_w, -5000.0);
    assert_eq!(b.status, BatteryStatus::Discharging);
    clock.advance(Duration::from_secs(3600));
    let b = world.battery(&battery).unwrap();
    assert!((b.soc_pct - 40.0).abs() < 1e-6, "{}", b.soc_pct);
    assert_eq!(b.power_w, 0.0);
    let s = world.site(&site).unwrap();
    assert!(s.export_kwh > 0.0);
    // Import focus: charge at full power to 100 % and stop.
    world.update_battery(&battery, |b| b.mode = BatteryMode::ImportFocus).unwrap();
    clock.advance(Duration::from_secs(60));
    assert_eq!(world.battery(&battery).unwrap().power_w, 5000.0);
    clock.advance(Duration::from_secs(3 * 3600));
    let b = world.battery(&battery).unwrap();
    assert_eq!(b.soc_pct, 100.0);
    assert_eq!(b.power_w, 0.0);
    // Self-reliance at night discharges to cover the house (no PV here), never exporting.
    world.update_battery(&battery, |b| b.mode = BatteryMode::SelfReliance).unwrap();
    clock.advance(Duration::from_secs(60));
    let s = world.site(&site).unwrap();
    assert!(s.battery_w < 0.0);
    assert!(s.grid_w.abs() < 1e-6, "{}", s.grid_w);
}

#[test]
fn hvac_heats_towards_setpoint_and_drifts_when_off() {
    // A January night in Oslo.
    let clock = Arc::new(ManualClock::new(Utc.with_ymd_and_hms(2026, 1, 12, 8, 0, 0).unwrap()));
    let world = World::new(1, clock.clone(), WorldConfig::default());
    let site = world.add_site(SiteSpec::default());
    let hvac = world
        .add_hvac(
            &site,
            HvacSpec {
                hold: HvacHold::Permanent,
                mode: HvacMode::Heat,
                heat_setpoint: 22.0,
                indoor_c: 16.0,
                ..HvacSpec::default()
            },
        )
        .unwrap();
    clock.advance(Duration::from_secs(60));
    let h = world.hvac(&hvac).unwrap();
    assert_eq!(h.activity, HvacActivity::Heating);
    assert!(h.outdoor_c < 5.0, "{}", h.outdoor_c);
    assert_eq!(world.site(&site).unwrap().hvac_w, 3000.0);
    clock.advance(Duration::from_secs(4 * 3600));
    let h = world.hvac(&hvac).unwrap();
    assert!((h.indoor_c - 22.0).abs() < 1.0, "{}", h.indoor_c);
    world.update_hvac(&hvac, |h| h.mode = HvacMode::Off).unwrap();
    clock.advance(Duration::from_secs(6 * 3600));
    let h = world.hvac(&hvac).unwrap();
    assert_eq!(h.activity, HvacActivity::Idle);
    assert!(h.indoor_c < 20.0, "{}", h.indoor_c);
    assert_eq!(h.power_w, 0.0);
}

#[test]
fn accessors_reject_wrong_kinds_and_unknown_ids() {
    let (_clock, world) = world(1);
    let site = world.add_site(SiteSpec::default());
    let battery = world.add_battery(&site, BatterySpec::default()).unwrap();
    assert!(world.vehicle(&battery).is_none());
    assert!(world.battery(&DeviceId::new("bat-999999")).is_none());
    assert_eq!(
        world.plug_in(&battery),
        Err(WorldError::WrongKind {
            device: battery.clone(),
            expected: DeviceKind::Vehicle,
            actual: DeviceKind::Battery
        })
    );
    assert_eq!(
        world.add_vehicle(&SiteId::new("site-999999"), VehicleSpec::default()),
        Err(WorldError::UnknownSite(SiteId::new("site-999999")))
    );
    let infos = world.devices_of_site(&site);
    assert_eq!(infos.len(), 1);
    assert_eq!(infos[0].vendor, "tesla");
    assert_eq!(world.devices_of_vendor("tesla").len(), 1);
    assert_eq!(world.sites(), vec![site]);
    assert_eq!(battery.to_string(), "bat-000001");
}

mod invariants {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

        /// Whatever the fleet and however the world is read, every snapshot balances and
        /// every battery stays within its bounds.
        #[test]
        fn balance_and_bounds_hold(
            seed in any::<u64>(),
            steps in proptest::collection::vec(1u64..5_000, 20..80),
            day in 0i64..365,
        ) {
            let clock = Arc::new(ManualClock::new(start() + chrono::Duration::days(day)));
            let world = World::new(seed, clock.clone(), WorldConfig::default());
            let households = fleet::generate(
                &world,
                &FleetSpec { households: 4, battery_share: 0.7, pv_share: 0.7, hvac_share: 0.5, ..FleetSpec::default() },
            ).unwrap();
            let mut reserve_floor: HashMap<DeviceId, f64> = HashMap::new();
            for secs in steps {
                clock.advance(Duration::from_secs(secs));
                for h in &households {
                    let s = world.site(&h.site).unwrap();
                    let balance = s.load_w + s.ev_w + s.hvac_w + s.battery_w - s.pv_w;
                    prop_assert!((s.grid_w - balance).abs() < 1e-6);
                    prop_assert!(s.pv_w >= 0.0 && s.ev_w >= 0.0 && s.hvac_w >= 0.0 && s.load_w >= 0.0);
                    if let Some(b) = &h.battery {
                        let st = world.battery(b).unwrap();
                        prop_assert!((0.0..=100.0).contains(&st.soc_pct));
                        // Below the reserve only if it started there; never discharged below it.
                        let floor = reserve_floor.entry(b.clone()).or_insert(st.soc_pct.min(st.reserve_pct));
                        prop_assert!(st.soc_pct >= *floor - 1e-6);
                        *floor = st.soc_pct.min(st.reserve_pct).max(*floor);
                    }
                    for car in &h.vehicles {
                        let v = world.vehicle(car).unwrap();
                        prop_assert!((0.0..=100.0).contains(&v.battery_level));
                        if v.charging {
                            prop_assert!(v.battery_level <= v.charge_limit + 1e-6);
                            prop_assert_eq!(v.power_state, PowerState::Online);
                        }
                    }
                }
            }
        }
    }
}
