//! The adapter conformance suite (oemgate-testkit) against the simulated Tesla cloud.
//!
//! The world: Alice's home has a Powerwall, a PV array (another vendor's inverter, which the
//! Tesla gateway measures), a Model Y plugged in and not charging, and a Model 3 asleep on
//! the drive; Bob's home has his own Tesla and Powerwall, on his own account, which Alice's
//! discovery must not return. The simulator is served by a `SimHost` under `/tesla` on
//! 127.0.0.1 and Alice's account is linked through the simulator's authorization-code flow.
//! Time only moves through the `ManualClock`.

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use oemgate_core::{
    AccountRef, BatteryOperationMode, Command, DeviceRef, ManualClock, Pricing, QuotaScope,
    VendorLimits, VendorType,
};
use oemgate_sim::{
    BatteryMode, BatterySpec, ChargeState, DeviceId, DrivingPattern, InverterSpec, LatencyProfile,
    PowerState, SimHost, SiteSpec, VehicleSpec, World, WorldConfig,
};
use oemgate_tesla::sim::{PREFIX, TeslaSim, WORLD_VENDOR};
use oemgate_tesla::{TeslaAdapter, TeslaConfig};
use oemgate_testkit::{
    AuthBehaviour, CommandCase, ConformanceTarget, Expectation, ExpectedDevice, Fault, Harness,
    ServerGuard, SimRequests, SleepCase, StartOptions, Tolerance, UnsupportedCase, VendorControl,
};

const USER: &str = "user-alice";
/// Every Tesla command lands exactly this long after it is accepted.
const LATENCY: Duration = Duration::from_secs(20);
/// Tesla reports `charger_power` in whole kW.
const WHOLE_KW: Tolerance = Tolerance::abs(0.5);

/// Late morning in June at 60° N (UTC+1), a Saturday: the array produces, nobody commutes.
fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 13, 10, 0, 0).unwrap()
}

fn stays_home() -> DrivingPattern {
    DrivingPattern { commute_km: None, errands_per_week: 0.0, plug_in_share: 0.0 }
}

fn vehicle_ref(vin: String) -> DeviceRef {
    DeviceRef {
        id: format!("veh-{vin}"),
        user_id: USER.into(),
        device_type: VendorType::Vehicle,
        vendor_id: vin,
        site_id: None,
    }
}

fn battery_ref(site_id: String) -> DeviceRef {
    DeviceRef {
        id: format!("bat-{site_id}"),
        user_id: USER.into(),
        device_type: VendorType::Battery,
        vendor_id: site_id.clone(),
        site_id: Some(site_id),
    }
}

/// The Enode mode the world's battery mode must be reported as (Tesla's name in between).
fn reported_mode(mode: BatteryMode) -> &'static str {
    match mode {
        BatteryMode::SelfReliance => "SELF_RELIANCE",
        BatteryMode::TimeOfUse | BatteryMode::ExportFocus => "TIME_OF_USE",
        BatteryMode::Backup | BatteryMode::ImportFocus | BatteryMode::Idle => "IMPORT_FOCUS",
    }
}

/// The Powerwall switches to `mode` (from another one, so the case proves something).
fn mode_case(battery: &DeviceRef, id: &DeviceId, mode: BatteryOperationMode) -> CommandCase<World> {
    let (other, target) = match mode {
        BatteryOperationMode::SelfReliance => (BatteryMode::TimeOfUse, BatteryMode::SelfReliance),
        BatteryOperationMode::TimeOfUse => (BatteryMode::SelfReliance, BatteryMode::TimeOfUse),
        // Tesla's "backup" is the world's Backup mode.
        _ => (BatteryMode::SelfReliance, BatteryMode::Backup),
    };
    let (check, prep) = (id.clone(), id.clone());
    CommandCase::new(
        battery.clone(),
        Command::SetOperationMode { mode },
        format!("the Powerwall switches to {mode}"),
        LATENCY * 2,
        move |w: &World| w.battery(&check).is_some_and(|b| b.mode == target),
    )
    .prepare(move |w: &World| w.update_battery(&prep, |b| b.mode = other).unwrap())
}

struct Control {
    world: World,
    sim: TeslaSim,
}

#[async_trait]
impl VendorControl for Control {
    async fn expire_access_token(&self, _account: &mut AccountRef) {
        // In the simulator, so the adapter meets Tesla's 401 "token expired (401)".
        self.sim.expire_access_tokens();
    }

    async fn revoke_credentials(&self, _account: &AccountRef) {
        self.world.faults().set(WORLD_VENDOR, Fault::RevokeTokens, None);
    }

    fn inject_fault(&self, fault: Fault) {
        self.world.faults().set(WORLD_VENDOR, fault, None);
    }

    fn clear_faults(&self) {
        self.world.faults().clear(WORLD_VENDOR);
    }
}

struct Target;

#[async_trait]
impl ConformanceTarget for Target {
    type World = World;

    async fn start(&self, options: StartOptions) -> anyhow::Result<Harness<World>> {
        let clock = Arc::new(ManualClock::new(t0()));
        let config = WorldConfig {
            latency: HashMap::from([(
                WORLD_VENDOR.to_owned(),
                LatencyProfile::fixed(LATENCY.as_secs_f64()),
            )]),
            ..WorldConfig::default()
        };
        let world = World::new(options.seed, clock.clone(), config);

        let home = world.add_site(SiteSpec { name: "Alice's home".into(), ..SiteSpec::default() });
        world
            .add_inverter(&home, InverterSpec { capacity_w: 7000.0, ..InverterSpec::default() })?;
        let powerwall = world.add_battery(
            &home,
            BatterySpec { soc_pct: 55.0, reserve_pct: 25.0, ..BatterySpec::default() },
        )?;
        let model_y = world.add_vehicle(
            &home,
            VehicleSpec {
                name: "Model Y".into(),
                battery_level: 48.0,
                charge_limit: 90.0,
                plugged_in: true,
                charging: false,
                pattern: stays_home(),
                ..VehicleSpec::default()
            },
        )?;
        let model_3 = world.add_vehicle(
            &home,
            VehicleSpec {
                name: "Sleepy".into(),
                model: "Model 3".into(),
                year: 2021,
                power_state: PowerState::Asleep,
                pattern: stays_home(),
                ..VehicleSpec::default()
            },
        )?;
        let bobs = world.add_site(SiteSpec { name: "Bob's".into(), ..SiteSpec::default() });
        world.add_battery(&bobs, BatterySpec::default())?;
        world
            .add_vehicle(&bobs, VehicleSpec { pattern: stays_home(), ..VehicleSpec::default() })?;

        let sim = TeslaSim::new(world.clone());
        let mut host = SimHost::new(clock.clone());
        host.mount(PREFIX, sim.router())?;
        let requests = SimRequests::new(host.request_log(), PREFIX);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}{PREFIX}", listener.local_addr()?);
        let server = tokio::spawn(host.serve(listener));

        let adapter = Arc::new(TeslaAdapter::new(
            TeslaConfig {
                api_base_url: base.clone(),
                auth_base_url: base,
                client_id: "oemgate-conformance".into(),
                client_secret: "secret".into(),
                request_timeout: options.request_timeout,
            },
            clock.clone(),
        ));
        let (account_id, code) = sim.link_site(&home)?;
        sim.link_site(&bobs)?;
        let credentials = adapter.exchange_code(&code, "https://oemgate.example/cb").await?;
        let account =
            AccountRef { user_id: USER.into(), vendor: "TESLA".into(), account_id, credentials };

        let vin = |id: &DeviceId| sim.vin(id).ok_or_else(|| anyhow::anyhow!("no VIN for {id}"));
        let car = vehicle_ref(vin(&model_y)?);
        let sleeper = vehicle_ref(vin(&model_3)?);
        let site_id = sim
            .energy_site_id(powerwall.as_str())
            .ok_or_else(|| anyhow::anyhow!("no energy site for {powerwall}"))?;
        let battery = battery_ref(site_id);
        let devices = vec![
            ExpectedDevice::new(car.clone(), model_y.as_str()),
            ExpectedDevice::new(sleeper.clone(), model_3.as_str()),
            ExpectedDevice::new(battery.clone(), powerwall.as_str()),
        ];

        let (y1, y2, y3) = (model_y.clone(), model_y.clone(), model_y.clone());
        let (y4, y5) = (model_y.clone(), model_y.clone());
        let mut commands = vec![
            CommandCase::new(
                car.clone(),
                Command::StartCharging,
                "the Model Y starts charging",
                LATENCY * 2,
                move |w: &World| w.vehicle(&y1).is_some_and(|v| v.charging),
            ),
            CommandCase::new(
                car.clone(),
                Command::StopCharging,
                "the Model Y stops charging",
                LATENCY * 2,
                move |w: &World| w.vehicle(&y2).is_some_and(|v| !v.charging && v.plugged_in),
            )
            .prepare(move |w: &World| {
                w.update_vehicle(&y3, |m| m.charging = ChargeState::Charging).unwrap();
            }),
            CommandCase::new(
                car.clone(),
                Command::SetMaxCurrent { amps: 10.0 },
                "the Model Y charges at 10 A",
                LATENCY * 2,
                move |w: &World| w.vehicle(&y4).is_some_and(|v| v.charge_amps == 10),
            )
            .prepare(move |w: &World| w.update_vehicle(&y5, |m| m.amps = 16).unwrap()),
        ];
        commands.extend(
            [
                BatteryOperationMode::SelfReliance,
                BatteryOperationMode::TimeOfUse,
                BatteryOperationMode::ImportFocus,
            ]
            .into_iter()
            .map(|mode| mode_case(&battery, &powerwall, mode)),
        );
        let unsupported = [BatteryOperationMode::ExportFocus, BatteryOperationMode::Idle]
            .into_iter()
            .map(|mode| UnsupportedCase::new(battery.clone(), Command::SetOperationMode { mode }))
            .collect();
        let asleep = model_3.clone();
        let sleeping = vec![SleepCase::new(sleeper, move |w: &World| {
            w.vehicle(&asleep).is_some_and(|v| v.power_state == PowerState::Asleep)
        })];

        Ok(Harness {
            adapter,
            account,
            clock,
            world: world.clone(),
            requests: Arc::new(requests),
            devices,
            commands,
            unsupported,
            sleeping,
            control: Box::new(Control { world, sim }),
            truth: Box::new(truth),
            keep_alive: vec![Box::new(ServerGuard::new(server))],
        })
    }

    /// Tesla's Fleet API limits (developer.tesla.com, "Billing and limits"; reference
    /// vendor-clouds.md §1): pay-per-use at $0.002 per data request, $0.001 per command and
    /// $0.02 per wake. The per-minute caps are per vehicle and account; the commonly cited
    /// realtime-data cap of 60 per minute per vehicle is taken as the published rate
    /// (**unconfirmed** in the reference: stricter caps apply to commands, 30, and wakes,
    /// 3, which `VendorLimits` cannot express per class). No burst or concurrency limit is
    /// published (bounded here by the per-minute allowance); there is no daily quota under
    /// pay-per-use.
    fn published_limits(&self) -> VendorLimits {
        VendorLimits {
            requests_per_minute: 60,
            burst: 60,
            rate_scope: QuotaScope::Device,
            daily_quota: None,
            max_concurrent: 60,
            pricing: Some(Pricing { data_request: 0.002, command: 0.001, wake: 0.02 }),
        }
    }

    /// OAuth with single-use refresh tokens. A revoked token answers 401 `login_required`,
    /// which is not the expired-token answer: calls are `Unauthorized`.
    fn auth(&self) -> AuthBehaviour {
        AuthBehaviour {
            refreshes: true,
            single_use_refresh_tokens: true,
            revoked_token_reads_as_expired: false,
        }
    }
}

/// The world's truth per device, in the normalized units.
fn truth(w: &World, e: &ExpectedDevice) -> Vec<Expectation> {
    let id = DeviceId::new(e.world_id.clone());
    match e.device.device_type {
        VendorType::Vehicle => {
            let v = w.vehicle(&id).unwrap();
            if v.power_state != PowerState::Online {
                return vec![
                    Expectation::bool("/isReachable", false),
                    Expectation::null("/chargeState/batteryLevel"),
                    Expectation::string("/information/vin", e.device.vendor_id.clone()),
                ];
            }
            let mut out = vec![
                Expectation::bool("/isReachable", true),
                Expectation::percent("/chargeState/batteryLevel", v.battery_level),
                Expectation::km("/chargeState/range", v.range_km),
                Expectation::bool("/chargeState/isPluggedIn", v.plugged_in),
                Expectation::bool("/chargeState/isCharging", v.charging),
                Expectation::percent("/chargeState/chargeLimit", v.charge_limit),
                Expectation::amps("/chargeState/maxCurrent", f64::from(v.charge_amps)),
                Expectation::km("/odometer/distance", v.odometer_km),
                Expectation::number("/location/latitude", v.latitude, Tolerance::abs(1e-5)),
                Expectation::number("/location/longitude", v.longitude, Tolerance::abs(1e-5)),
                Expectation::string("/information/vin", e.device.vendor_id.clone()),
                Expectation::string("/information/brand", "Tesla"),
                Expectation::string("/information/model", v.model.clone()),
                Expectation::number("/information/year", f64::from(v.year), Tolerance::EXACT),
            ];
            if v.charging {
                out.push(Expectation::number(
                    "/chargeState/chargeRate",
                    v.charge_power_kw,
                    WHOLE_KW,
                ));
            } else {
                out.push(Expectation::null("/chargeState/chargeRate"));
            }
            out
        }
        VendorType::Battery => {
            let b = w.battery(&id).unwrap();
            let mut out = vec![
                Expectation::bool("/isReachable", b.online),
                Expectation::percent("/chargeState/batteryLevel", b.soc_pct),
                Expectation::kw("/chargeState/chargeRate", b.power_w / 1000.0),
                Expectation::kwh("/chargeState/batteryCapacity", b.capacity_kwh),
                Expectation::percent("/chargeState/dischargeLimit", b.reserve_pct),
                Expectation::string("/config/operationMode", reported_mode(b.mode)),
                Expectation::string("/information/brand", "Tesla"),
                Expectation::string("/information/id", e.device.vendor_id.clone()),
                Expectation::bool("/capabilities/selfReliance/isCapable", true),
                Expectation::bool("/capabilities/importFocus/isCapable", true),
                Expectation::bool("/capabilities/timeOfUse/isCapable", true),
                Expectation::bool("/capabilities/exportFocus/isCapable", false),
            ];
            if b.power_w.abs() >= 50.0 {
                let status = if b.power_w > 0.0 { "CHARGING" } else { "DISCHARGING" };
                out.push(Expectation::string("/chargeState/status", status));
            }
            out
        }
        other => panic!("no {other} devices in this world"),
    }
}

oemgate_testkit::conformance_tests!(Target);

/// The world above exercises the battery's sign: the Powerwall moves energy at t0.
#[test]
fn the_powerwall_moves_energy() {
    oemgate_testkit::block_on(async {
        let h = Target.start(StartOptions::from_env()).await.unwrap();
        let id = DeviceId::new(h.devices[2].world_id.clone());
        let b = h.world.battery(&id).unwrap();
        assert!(b.power_w.abs() >= 50.0, "{b:?}");
    });
}
