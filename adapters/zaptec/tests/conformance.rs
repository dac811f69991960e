//! The adapter conformance suite (oemgate-testkit) against the simulated Zaptec cloud.
//!
//! The world, on a winter night (nobody drives): Alice's Zaptec account owns two
//! installations. *Solbakken* has one Zaptec Go charging her car (its installation's current
//! limit is the charger's, so `setMaxCurrent` is capable). *Fjellheim* has two Zaptec chargers
//! on one installation, one with a plugged car that waits, one free (they share the
//! installation's limit, so `setMaxCurrent` is not capable), plus an Easee charger that is not
//! Zaptec's. Bob's account owns a third installation that Alice's discovery must not return.
//!
//! The simulator is served by a `SimHost` under `/zaptec` on 127.0.0.1 and the account is
//! linked through the simulator's own password login. Time only moves through the
//! `ManualClock`, so the simulator's own 10-requests-per-second limit is switched off here
//! (every check would otherwise send its requests within one frozen clock second); the rate
//! limit is exercised with a moving clock in `tests/sim.rs`, and the kit injects its own 429s.

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
    ChargerSpec, DeviceId, DeviceKind, DrivingPattern, LatencyProfile, SimHost, SiteSpec,
    VehicleSpec, World, WorldConfig,
};
use oemgate_testkit::{
    AuthBehaviour, CommandCase, ConformanceTarget, Expectation, ExpectedDevice, Fault, Harness,
    ServerGuard, SimRequests, StartOptions, VendorControl,
};
use oemgate_zaptec::sim::{PREFIX, WORLD_VENDOR, ZaptecSim, ZaptecSimConfig};
use oemgate_zaptec::{ZaptecAdapter, ZaptecConfig};

const USER: &str = "user-alice";
/// Every Zaptec command lands exactly this long after it is accepted.
const LATENCY: Duration = Duration::from_secs(10);

/// 02:30 local time on a January Wednesday: every car is at home.
fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 14, 1, 30, 0).unwrap()
}

fn stay_home() -> DrivingPattern {
    DrivingPattern { commute_km: None, errands_per_week: 0.0, plug_in_share: 0.0 }
}

fn car(name: &str, level: f64, charging: bool) -> VehicleSpec {
    VehicleSpec {
        name: name.into(),
        battery_level: level,
        charge_limit: 90.0,
        amps: 32,
        max_amps: 32,
        max_ac_kw: 11.0,
        plugged_in: true,
        charging,
        charge_on_plug: false,
        pattern: stay_home(),
        ..VehicleSpec::default()
    }
}

fn zaptec(name: &str, max_current_a: f64) -> ChargerSpec {
    ChargerSpec {
        vendor: WORLD_VENDOR.into(),
        name: name.into(),
        max_current_a,
        hardware_max_a: 32.0,
        phases: 3,
        voltage: 230.0,
        lifetime_kwh: 1_234.5,
    }
}

fn device(sim: &ZaptecSim, world_id: &DeviceId, site: &oemgate_sim::SiteId) -> DeviceRef {
    DeviceRef {
        id: format!("dev-{world_id}"),
        user_id: USER.into(),
        device_type: VendorType::Charger,
        vendor_id: sim.charger_id(world_id),
        site_id: Some(sim.installation_id(site)),
    }
}

struct Control {
    world: World,
    sim: ZaptecSim,
}

#[async_trait]
impl VendorControl for Control {
    async fn expire_access_token(&self, _account: &mut AccountRef) {
        // In the simulator, so the adapter meets Zaptec's 401.
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

        // Solbakken: one Zaptec Go charging Alice's car.
        let solbakken =
            world.add_site(SiteSpec { name: "Solbakken 12".into(), ..SiteSpec::default() });
        world.add_vehicle(&solbakken, car("Alice's car", 40.0, true))?;
        let garage = world.add_charger(&solbakken, zaptec("Garage", 16.0))?;

        // Fjellheim: two Zaptec chargers sharing one installation, and an Easee one.
        let fjellheim =
            world.add_site(SiteSpec { name: "Fjellheim".into(), ..SiteSpec::default() });
        world.add_vehicle(&fjellheim, car("Guest car", 55.0, false))?;
        let left = world.add_charger(&fjellheim, zaptec("Carport left", 20.0))?;
        let right = world.add_charger(&fjellheim, zaptec("Carport right", 20.0))?;
        world.add_charger(
            &fjellheim,
            ChargerSpec {
                vendor: "easee".into(),
                name: "Easee Home".into(),
                ..ChargerSpec::default()
            },
        )?;

        // Bob's installation.
        let bobs = world.add_site(SiteSpec { name: "Bob's".into(), ..SiteSpec::default() });
        world.add_charger(&bobs, zaptec("Bob's charger", 16.0))?;

        let sim = ZaptecSim::with_config(
            world.clone(),
            ZaptecSimConfig { rate_limit_per_second: None, ..ZaptecSimConfig::default() },
        );
        let mut host = SimHost::new(clock.clone());
        host.mount(PREFIX, sim.router())?;
        let requests = SimRequests::new(host.request_log(), PREFIX);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}{PREFIX}", listener.local_addr()?);
        let server = tokio::spawn(host.serve(listener));

        let config =
            ZaptecConfig::new().for_base_url(&base).with_request_timeout(options.request_timeout);
        let adapter = Arc::new(ZaptecAdapter::new(config, clock.clone()));

        let login = sim.create_account(&[solbakken.clone(), fjellheim.clone()]);
        sim.create_account(&[bobs]);
        let credentials = adapter.login(&login.username, &login.password).await?;
        let account = AccountRef {
            user_id: USER.into(),
            vendor: "ZAPTEC".into(),
            account_id: login.user_id.clone(),
            credentials,
        };

        let garage_ref = device(&sim, &garage, &solbakken);
        let left_ref = device(&sim, &left, &fjellheim);
        let right_ref = device(&sim, &right, &fjellheim);
        let devices = vec![
            ExpectedDevice::new(garage_ref.clone(), garage.as_str()),
            ExpectedDevice::new(left_ref.clone(), left.as_str()),
            ExpectedDevice::new(right_ref, right.as_str()),
        ];

        let settle = LATENCY * 2;
        let (g1, g2, g3, l1) = (garage.clone(), garage.clone(), garage.clone(), left.clone());
        let commands = vec![
            CommandCase::new(
                left_ref,
                Command::StartCharging,
                "the waiting car on Carport left starts charging (ResumeCharging)",
                settle,
                move |w: &World| w.charger(&l1).is_some_and(|c| c.charging),
            ),
            CommandCase::new(
                garage_ref.clone(),
                Command::StopCharging,
                "the Garage charger pauses (StopChargingFinal)",
                settle,
                move |w: &World| w.charger(&g1).is_some_and(|c| !c.charging),
            )
            .prepare(move |w: &World| {
                assert!(w.charger(&g2).is_some_and(|c| c.charging), "Garage charges");
            }),
            CommandCase::new(
                garage_ref,
                Command::SetMaxCurrent { amps: 20.0 },
                "Solbakken's available current (the Garage charger's limit) becomes 20 A",
                settle,
                move |w: &World| {
                    w.charger(&g3).is_some_and(|c| (c.max_current_a - 20.0).abs() < 1e-6)
                },
            ),
        ];

        let truth_sim = sim.clone();
        Ok(Harness {
            adapter,
            account,
            clock,
            world: world.clone(),
            requests: Arc::new(requests),
            devices,
            commands,
            unsupported: Vec::new(),
            sleeping: Vec::new(),
            control: Box::new(Control { world, sim }),
            truth: Box::new(move |w, e| truth(&truth_sim, w, e)),
            keep_alive: vec![Box::new(ServerGuard::new(server))],
        })
    }

    /// Zaptec's API fair-use policy (docs.zaptec.com; reference vendor-clouds.md §6b): 10
    /// requests per second per account, i.e. 600 per minute with at most 10 at once. Zaptec
    /// publishes no daily quota and no concurrency limit (bounded here by the per-second
    /// allowance) and does not bill per request.
    fn published_limits(&self) -> VendorLimits {
        VendorLimits {
            requests_per_minute: 600,
            burst: 10,
            rate_scope: QuotaScope::Account,
            daily_quota: None,
            max_concurrent: 10,
            pricing: None,
        }
    }

    /// Password grant without refresh tokens: the adapter "refreshes" by logging in again with
    /// the stored password, which works any number of times. Zaptec answers a revoked token
    /// like an expired one (401); the login that follows is refused.
    fn auth(&self) -> AuthBehaviour {
        AuthBehaviour {
            refreshes: true,
            single_use_refresh_tokens: false,
            revoked_token_reads_as_expired: true,
        }
    }
}

/// The world's truth per charger, in the normalized units.
fn truth(sim: &ZaptecSim, w: &World, e: &ExpectedDevice) -> Vec<Expectation> {
    let id = DeviceId::new(e.world_id.clone());
    let c = w.charger(&id).unwrap();
    let zaptec_chargers = w
        .devices_of_site(&c.site)
        .iter()
        .filter(|d| d.kind == DeviceKind::Charger && d.vendor == WORLD_VENDOR)
        .count();
    let delivery = match (c.plugged_in, c.charging) {
        (false, _) => "UNPLUGGED",
        (true, true) => "PLUGGED_IN:CHARGING",
        (true, false) => "PLUGGED_IN:STOPPED",
    };
    vec![
        Expectation::bool("/isReachable", c.online),
        Expectation::bool("/chargeState/isPluggedIn", c.plugged_in),
        Expectation::bool("/chargeState/isCharging", c.charging),
        Expectation::string("/chargeState/powerDeliveryState", delivery),
        Expectation::maybe_number(
            "/chargeState/chargeRate",
            c.charging.then_some(c.power_w / 1000.0),
            oemgate_testkit::Tolerance::KW,
        ),
        Expectation::amps("/chargeState/maxCurrent", c.max_current_a),
        Expectation::not_null("/chargeState/lastUpdated"),
        Expectation::bool("/capabilities/startCharging/isCapable", true),
        Expectation::bool("/capabilities/stopCharging/isCapable", true),
        Expectation::bool("/capabilities/setMaxCurrent/isCapable", zaptec_chargers == 1),
        Expectation::string("/information/brand", "Zaptec"),
        Expectation::string("/information/model", "Go"),
        Expectation::string("/information/serialNumber", sim.serial_number(&id)),
    ]
}

oemgate_testkit::conformance_tests!(Target);

/// The world above has what the cases and the truth rely on: a charging charger with a real
/// charge rate, a waiting car, a free charger, a shared installation.
#[test]
fn the_world_has_what_the_cases_need() {
    oemgate_testkit::block_on(async {
        let h = Target.start(StartOptions::from_env()).await.unwrap();
        let states: Vec<_> = h
            .devices
            .iter()
            .map(|e| h.world.charger(&DeviceId::new(e.world_id.clone())).unwrap())
            .collect();
        assert!(states[0].charging && states[0].power_w > 10_000.0, "{:?}", states[0]);
        assert!(states[1].plugged_in && !states[1].charging, "{:?}", states[1]);
        assert!(!states[2].plugged_in, "{:?}", states[2]);
        assert_eq!(states[1].site, states[2].site);
    });
}
