//! The adapter conformance suite (oemgate-testkit) against the simulated Wallbox cloud.
//!
//! The world: Alice's Wallbox account holds two homes. At the first, a Pulsar Plus charges
//! her car; at the second, one charger has a car plugged in and paused and another has no car
//! (and a lower hardware maximum). Bob's account holds a third home with his own charger,
//! which Alice's discovery must not return. The simulator is served by a `SimHost` under
//! `/wallbox` on 127.0.0.1 and Alice's account is linked through the simulator's own sign-in
//! (e-mail and password). Time only moves through the `ManualClock`.

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use oemgate_core::{
    AccountRef, Command, DeviceRef, ManualClock, QuotaScope, VendorLimits, VendorType,
};
use oemgate_sim::{
    ChargeState, ChargerSpec, DeviceId, DrivingPattern, LatencyProfile, SimHost, SiteSpec,
    VehicleSpec, World, WorldConfig,
};
use oemgate_testkit::{
    AuthBehaviour, CommandCase, ConformanceTarget, Expectation, ExpectedDevice, Fault, Harness,
    ServerGuard, SimRequests, StartOptions, VendorControl,
};
use oemgate_wallbox::sim::{PREFIX, WORLD_VENDOR, WallboxSim};
use oemgate_wallbox::{WallboxAdapter, WallboxConfig};

const USER: &str = "user-alice";
/// Every Wallbox command lands exactly this long after it is accepted.
const LATENCY: Duration = Duration::from_secs(15);

/// A Saturday evening in June at 60° N (UTC+1): everyone is home.
fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 13, 18, 0, 0).unwrap()
}

fn stays_home() -> DrivingPattern {
    DrivingPattern { commute_km: None, errands_per_week: 0.0, plug_in_share: 0.0 }
}

fn car(name: &str, plugged_in: bool, charging: bool, level: f64) -> VehicleSpec {
    VehicleSpec {
        vendor: "volvo".into(),
        name: name.into(),
        make: "Volvo".into(),
        model: "EX30".into(),
        battery_level: level,
        charge_limit: 90.0,
        max_amps: 32,
        amps: 32,
        plugged_in,
        charging,
        charge_on_plug: false,
        pattern: stays_home(),
        ..VehicleSpec::default()
    }
}

fn wallbox(name: &str, max_current_a: f64, hardware_max_a: f64) -> ChargerSpec {
    ChargerSpec {
        vendor: WORLD_VENDOR.into(),
        name: name.into(),
        max_current_a,
        hardware_max_a,
        ..ChargerSpec::default()
    }
}

fn charger_ref(id: u64, group: u64) -> DeviceRef {
    DeviceRef {
        id: format!("chg-{id}"),
        user_id: USER.into(),
        device_type: VendorType::Charger,
        vendor_id: id.to_string(),
        site_id: Some(group.to_string()),
    }
}

/// The Enode power-delivery state the world's charger must be reported as.
fn expected_state(w: &World, id: &DeviceId) -> &'static str {
    let c = w.charger(id).unwrap();
    if c.charging {
        return "PLUGGED_IN:CHARGING";
    }
    let Some(vehicle) = c.vehicle.as_ref().and_then(|v| w.vehicle(v)) else {
        return "UNPLUGGED";
    };
    match vehicle.charge_state {
        ChargeState::NoPower | ChargeState::Complete => "PLUGGED_IN:NO_POWER",
        _ if vehicle.battery_level >= vehicle.charge_limit - 1e-6 => "PLUGGED_IN:NO_POWER",
        _ => "PLUGGED_IN:STOPPED",
    }
}

/// The world's truth for a charger, in the normalized units.
fn truth(w: &World, e: &ExpectedDevice) -> Vec<Expectation> {
    let id = DeviceId::new(e.world_id.clone());
    let c = w.charger(&id).unwrap();
    vec![
        Expectation::bool("/isReachable", true),
        Expectation::bool("/chargeState/isPluggedIn", c.plugged_in),
        Expectation::bool("/chargeState/isCharging", c.charging),
        Expectation::maybe_number(
            "/chargeState/chargeRate",
            c.charging.then_some(c.power_w / 1000.0),
            oemgate_testkit::Tolerance::KW,
        ),
        Expectation::amps("/chargeState/maxCurrent", c.max_current_a),
        Expectation::string("/chargeState/powerDeliveryState", expected_state(w, &id)),
        Expectation::string("/information/brand", "Wallbox"),
        Expectation::string("/information/model", "Pulsar Plus"),
        Expectation::string("/information/serialNumber", e.device.vendor_id.clone()),
        Expectation::bool("/capabilities/startCharging/isCapable", true),
        Expectation::bool("/capabilities/stopCharging/isCapable", true),
        Expectation::bool("/capabilities/setMaxCurrent/isCapable", true),
    ]
}

struct Control {
    world: World,
    sim: WallboxSim,
}

#[async_trait]
impl VendorControl for Control {
    async fn expire_access_token(&self, _account: &mut AccountRef) {
        // In the simulator, so the adapter meets Wallbox's 401.
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

        // Alice's first home: her car charges on a Pulsar Plus.
        let home = world.add_site(SiteSpec { name: "Alice's home".into(), ..SiteSpec::default() });
        let charging_car = world.add_vehicle(&home, car("Daily", true, true, 40.0))?;
        let garage = world.add_charger(&home, wallbox("Garage", 16.0, 32.0))?;

        // Her cabin: a car plugged in and paused, and a free charger with a smaller fuse.
        let cabin = world.add_site(SiteSpec { name: "Cabin".into(), ..SiteSpec::default() });
        let paused_car = world.add_vehicle(&cabin, car("Weekend", true, false, 55.0))?;
        let carport = world.add_charger(&cabin, wallbox("Carport", 20.0, 32.0))?;
        let barn = world.add_charger(&cabin, wallbox("Barn", 10.0, 16.0))?;

        // Bob's home, on his own account.
        let bobs = world.add_site(SiteSpec { name: "Bob's".into(), ..SiteSpec::default() });
        world.add_vehicle(&bobs, car("Bob's car", true, true, 30.0))?;
        world.add_charger(&bobs, wallbox("Bob's Pulsar", 16.0, 32.0))?;

        let sim = WallboxSim::new(world.clone());
        let mut host = SimHost::new(clock.clone());
        host.mount(PREFIX, sim.router())?;
        let requests = SimRequests::new(host.request_log(), PREFIX);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}{PREFIX}", listener.local_addr()?);
        let server = tokio::spawn(host.serve(listener));

        let config = WallboxConfig {
            request_timeout: options.request_timeout,
            ..WallboxConfig::new().for_base_url(&base)
        };
        let adapter = Arc::new(WallboxAdapter::new(config, clock.clone()));

        let login = sim.create_account(&[home.clone(), cabin.clone()]);
        sim.create_account(&[bobs]);
        let credentials = adapter.sign_in(&login.email, &login.password).await?;
        let account = AccountRef {
            user_id: USER.into(),
            vendor: "WALLBOX".into(),
            account_id: login.user_id.to_string(),
            credentials,
        };

        let (g1, g2) = (sim.group_id(&home), sim.group_id(&cabin));
        let garage_ref = charger_ref(sim.charger_id(&garage), g1);
        let carport_ref = charger_ref(sim.charger_id(&carport), g2);
        let barn_ref = charger_ref(sim.charger_id(&barn), g2);
        let devices = vec![
            ExpectedDevice::new(garage_ref.clone(), garage.as_str()),
            ExpectedDevice::new(carport_ref.clone(), carport.as_str()),
            ExpectedDevice::new(barn_ref, barn.as_str()),
        ];

        let (check, prep) = (carport.clone(), paused_car.clone());
        let start = CommandCase::new(
            carport_ref,
            Command::StartCharging,
            "the paused car on the carport charger starts charging",
            LATENCY * 2,
            move |w: &World| w.charger(&check).is_some_and(|c| c.charging),
        )
        .prepare(move |w: &World| {
            w.update_vehicle(&prep, |v| v.charging = ChargeState::Stopped).unwrap();
        });
        let check = garage.clone();
        let prep = charging_car.clone();
        let stop = CommandCase::new(
            garage_ref.clone(),
            Command::StopCharging,
            "the garage charger pauses the charging car",
            LATENCY * 2,
            move |w: &World| w.charger(&check).is_some_and(|c| c.plugged_in && !c.charging),
        )
        .prepare(move |w: &World| {
            w.update_vehicle(&prep, |v| v.charging = ChargeState::Charging).unwrap();
        });
        let check = garage.clone();
        let limit = CommandCase::new(
            garage_ref,
            Command::SetMaxCurrent { amps: 10.0 },
            "the garage charger is limited to 10 A",
            LATENCY * 2,
            move |w: &World| {
                w.charger(&check).is_some_and(|c| (c.max_current_a - 10.0).abs() < 1e-9)
            },
        );

        Ok(Harness {
            adapter,
            account,
            clock,
            world: world.clone(),
            requests: Arc::new(requests),
            devices,
            commands: vec![start, stop, limit],
            unsupported: Vec::new(),
            sleeping: Vec::new(),
            control: Box::new(Control { world, sim }),
            truth: Box::new(truth),
            keep_alive: vec![Box::new(ServerGuard::new(server))],
        })
    }

    /// Wallbox publishes no rate limits (reference vendor-clouds.md §6c: "no published numbers",
    /// unconfirmed). The ceiling taken instead is the cadence Home Assistant's integration
    /// settled on after Wallbox throttled it: one status read per charger per 30 s, spread over
    /// the chargers of an account, with token calls and commands on top: 4 requests per minute
    /// per account, 2 back to back, one at a time. No daily quota and no billing are known.
    fn published_limits(&self) -> VendorLimits {
        VendorLimits {
            requests_per_minute: 4,
            burst: 2,
            rate_scope: QuotaScope::Account,
            daily_quota: None,
            max_concurrent: 1,
            pricing: None,
        }
    }

    /// Sign-in tokens with refresh: the simulator's refresh tokens are single-use (each refresh
    /// issues a new one). Wallbox answers an expired and a revoked access token alike (401), so
    /// a call with a revoked token may be `AuthExpired`; the refresh that follows is refused.
    fn auth(&self) -> AuthBehaviour {
        AuthBehaviour {
            refreshes: true,
            single_use_refresh_tokens: true,
            revoked_token_reads_as_expired: true,
        }
    }
}

oemgate_testkit::conformance_tests!(Target);

/// The world above holds every charger state the truth distinguishes.
#[test]
fn the_world_covers_charging_paused_and_free_chargers() {
    oemgate_testkit::block_on(async {
        let h = Target.start(StartOptions::from_env()).await.unwrap();
        let states: Vec<&str> = h
            .devices
            .iter()
            .map(|e| expected_state(&h.world, &DeviceId::new(e.world_id.clone())))
            .collect();
        assert_eq!(states, ["PLUGGED_IN:CHARGING", "PLUGGED_IN:STOPPED", "UNPLUGGED"]);
        let garage = DeviceId::new(h.devices[0].world_id.clone());
        assert!(h.world.charger(&garage).unwrap().power_w > 1000.0);
    });
}
