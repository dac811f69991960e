//! The adapter conformance suite (oemgate-testkit) against the simulated ecobee cloud.
//!
//! The world: Alice's ecobee account holds two thermostats in two homes on a January morning
//! (Minneapolis, following its schedule and heating; Austin, on a permanent AUTO hold and
//! idle); the Austin home also has a tado unit that is not ecobee's. Bob's account holds a
//! third ecobee thermostat that Alice's discovery must not return. The simulator is served by
//! a `SimHost` under `/ecobee` on 127.0.0.1, and the account is linked through the simulator's
//! own PIN flow. Time only moves through the `ManualClock`.

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use oemgate_core::{
    AccountRef, Command, DeviceRef, HvacMode, ManualClock, QuotaScope, VendorLimits, VendorType,
};
use oemgate_ecobee::sim::{EcobeeSim, PREFIX, WORLD_VENDOR};
use oemgate_ecobee::{EcobeeAdapter, EcobeeConfig};
use oemgate_sim::{
    DeviceId, HvacActivity, HvacHold, HvacSpec, LatencyProfile, SimHost, SiteSpec, World,
    WorldConfig,
};
use oemgate_testkit::{
    AuthBehaviour, CommandCase, ConformanceTarget, Expectation, ExpectedDevice, Fault, Harness,
    ServerGuard, SimRequests, StartOptions,
};

const USER: &str = "user-alice";
/// Every ecobee command lands exactly this long after it is accepted.
const LATENCY: Duration = Duration::from_secs(30);

/// 10:00 in Minneapolis and Austin (UTC-6) on a January morning: the schedule's day period.
fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 15, 16, 0, 0).unwrap()
}

fn site(name: &str, latitude: f64, longitude: f64) -> SiteSpec {
    SiteSpec {
        name: name.into(),
        latitude,
        longitude,
        timezone: "America/Chicago".into(),
        utc_offset_minutes: -360,
        ..SiteSpec::default()
    }
}

fn hvac(vendor: &str, name: &str, set: impl FnOnce(&mut HvacSpec)) -> HvacSpec {
    let mut spec = HvacSpec { vendor: vendor.into(), name: name.into(), ..HvacSpec::default() };
    set(&mut spec);
    spec
}

fn device(id: &str, identifier: &str) -> DeviceRef {
    DeviceRef {
        id: id.into(),
        user_id: USER.into(),
        device_type: VendorType::Hvac,
        vendor_id: identifier.into(),
        site_id: None,
    }
}

fn near(a: f64, b: f64) -> bool {
    (a - b).abs() < 0.05
}

struct Control {
    world: World,
    sim: EcobeeSim,
}

#[async_trait]
impl oemgate_testkit::VendorControl for Control {
    async fn expire_access_token(&self, _account: &mut AccountRef) {
        // In the simulator, so the adapter meets ecobee's HTTP 500 with status 14.
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

        let minneapolis = world.add_site(site("Maple Street", 44.98, -93.27));
        let hall = world.add_hvac(
            &minneapolis,
            hvac(WORLD_VENDOR, "Hallway", |s| {
                s.hold = HvacHold::Schedule;
                s.indoor_c = 19.5;
            }),
        )?;
        let austin = world.add_site(site("Lakeside", 30.27, -97.74));
        let den = world.add_hvac(
            &austin,
            hvac(WORLD_VENDOR, "Den", |s| {
                s.hold = HvacHold::Permanent;
                s.mode = oemgate_sim::HvacMode::Auto;
                s.heat_setpoint = 20.0;
                s.cool_setpoint = 24.0;
                s.indoor_c = 22.0;
            }),
        )?;
        world.add_hvac(&austin, hvac("tado", "Bedroom", |_| {}))?;
        let bobs = world.add_site(site("Bob's", 41.88, -87.63));
        world.add_hvac(&bobs, hvac(WORLD_VENDOR, "Bob's thermostat", |_| {}))?;

        let sim = EcobeeSim::new(world.clone());
        let mut host = SimHost::new(clock.clone());
        host.mount(PREFIX, sim.router())?;
        let requests = SimRequests::new(host.request_log(), PREFIX);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}{PREFIX}", listener.local_addr()?);
        let server = tokio::spawn(host.serve(listener));

        let mut config = EcobeeConfig::new(sim.api_key()).for_base_url(&base);
        config.request_timeout = options.request_timeout;
        let adapter = Arc::new(EcobeeAdapter::new(config, clock.clone()));

        let link = sim.create_account(&[minneapolis, austin]);
        sim.create_account(&[bobs]);
        let credentials = adapter.exchange_pin(&link.code).await?;
        let account = AccountRef {
            user_id: USER.into(),
            vendor: "ECOBEE".into(),
            account_id: link.username.clone(),
            credentials,
        };

        let hall_ref = device("dev-hall", &sim.identifier(&hall));
        let den_ref = device("dev-den", &sim.identifier(&den));
        let devices = vec![
            ExpectedDevice::new(hall_ref.clone(), hall.as_str()),
            ExpectedDevice::new(den_ref.clone(), den.as_str()),
        ];

        let settle = LATENCY * 2;
        let (h1, h2, h3, h4, d1, d2) =
            (hall.clone(), hall.clone(), hall.clone(), hall.clone(), den.clone(), den.clone());
        let commands = vec![
            CommandCase::new(
                hall_ref.clone(),
                Command::SetPermanentHold {
                    mode: HvacMode::Heat,
                    heat_setpoint: Some(20.0),
                    cool_setpoint: None,
                },
                "the hallway thermostat holds HEAT at 20 °C",
                settle,
                move |w: &World| {
                    w.hvac(&h1).is_some_and(|h| {
                        h.hold == HvacHold::Permanent
                            && h.mode == oemgate_sim::HvacMode::Heat
                            && near(h.heat_setpoint, 20.0)
                    })
                },
            ),
            CommandCase::new(
                hall_ref.clone(),
                Command::SetPermanentHold {
                    mode: HvacMode::Auto,
                    heat_setpoint: Some(19.0),
                    cool_setpoint: Some(24.5),
                },
                "the hallway thermostat holds AUTO between 19 and 24.5 °C",
                settle,
                move |w: &World| {
                    w.hvac(&h2).is_some_and(|h| {
                        h.hold == HvacHold::Permanent
                            && h.mode == oemgate_sim::HvacMode::Auto
                            && near(h.heat_setpoint, 19.0)
                            && near(h.cool_setpoint, 24.5)
                    })
                },
            ),
            CommandCase::new(
                hall_ref.clone(),
                Command::SetPermanentHold {
                    mode: HvacMode::Off,
                    heat_setpoint: None,
                    cool_setpoint: None,
                },
                "the hallway thermostat is held OFF",
                settle,
                move |w: &World| {
                    w.hvac(&h3).is_some_and(|h| {
                        h.hold == HvacHold::Permanent && h.mode == oemgate_sim::HvacMode::Off
                    })
                },
            ),
            CommandCase::new(
                den_ref.clone(),
                Command::SetPermanentHold {
                    mode: HvacMode::Cool,
                    heat_setpoint: None,
                    cool_setpoint: Some(23.0),
                },
                "the den thermostat holds COOL at 23 °C",
                settle,
                move |w: &World| {
                    w.hvac(&d1).is_some_and(|h| {
                        h.hold == HvacHold::Permanent
                            && h.mode == oemgate_sim::HvacMode::Cool
                            && near(h.cool_setpoint, 23.0)
                    })
                },
            ),
            CommandCase::new(
                den_ref.clone(),
                Command::FollowSchedule,
                "the den thermostat follows its schedule again",
                settle,
                move |w: &World| w.hvac(&d2).is_some_and(|h| h.hold == HvacHold::Schedule),
            ),
            CommandCase::new(
                hall_ref.clone(),
                Command::FollowSchedule,
                "the hallway thermostat drops its hold and follows its schedule",
                settle,
                move |w: &World| w.hvac(&h4).is_some_and(|h| h.hold == HvacHold::Schedule),
            )
            .prepare({
                let hall = hall.clone();
                move |w: &World| {
                    w.update_hvac(&hall, |m| {
                        m.hold = HvacHold::Permanent;
                        m.mode = oemgate_sim::HvacMode::Heat;
                        m.heat_setpoint = 22.0;
                    })
                    .unwrap();
                }
            }),
        ];

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
            truth: Box::new(truth),
            keep_alive: vec![Box::new(ServerGuard::new(server))],
        })
    }

    /// ecobee publishes no numeric quotas (developer.ecobee.com; reference vendor-clouds.md
    /// §7a). Its one number is the guidance to poll no more often than every 3 minutes, which a
    /// poll of the summary plus the full read it may trigger turns into 2 requests per 3 minutes
    /// for a linked account; the smallest whole per-minute rate that lets such a poll through
    /// at once is 2 per minute with a burst of 2, one request at a time. No daily quota is
    /// published (the adapter declares a stricter one: the guidance over a day) and ecobee does
    /// not bill.
    fn published_limits(&self) -> VendorLimits {
        VendorLimits {
            requests_per_minute: 2,
            burst: 2,
            rate_scope: QuotaScope::Account,
            daily_quota: None,
            max_concurrent: 1,
            pricing: None,
        }
    }

    /// The PIN flow's tokens: a new access and refresh token on every refresh, the old refresh
    /// token spent. A revoked (deauthorized) token is status 16, not 14: `Unauthorized`.
    fn auth(&self) -> AuthBehaviour {
        AuthBehaviour {
            refreshes: true,
            single_use_refresh_tokens: true,
            revoked_token_reads_as_expired: false,
        }
    }
}

/// The world's truth per thermostat, in the normalized units.
fn truth(w: &World, e: &ExpectedDevice) -> Vec<Expectation> {
    let h = w.hvac(&DeviceId::new(e.world_id.clone())).unwrap();
    let hold = match h.hold {
        HvacHold::Permanent => "PERMANENT",
        HvacHold::Schedule => "SCHEDULED",
    };
    vec![
        Expectation::bool("/isReachable", true),
        Expectation::string("/information/brand", "ecobee"),
        Expectation::string("/information/category", "AGGREGATOR"),
        Expectation::string("/information/displayName", h.name.clone()),
        Expectation::celsius("/temperatureState/currentTemperature", h.indoor_c),
        Expectation::bool("/temperatureState/isActive", h.activity != HvacActivity::Idle),
        Expectation::string("/thermostatState/mode", h.mode.as_str()),
        Expectation::celsius("/thermostatState/heatSetpoint", h.heat_setpoint),
        Expectation::celsius("/thermostatState/coolSetpoint", h.cool_setpoint),
        Expectation::string("/thermostatState/holdType", hold),
        Expectation::null("/consumptionRate"),
        Expectation::bool("/capabilities/setPermanentHold/isCapable", true),
        Expectation::bool("/capabilities/setFollowSchedule/isCapable", true),
        Expectation::json(
            "/capabilities/capableModes",
            serde_json::json!(["OFF", "AUTO", "COOL", "HEAT"]),
        ),
    ]
}

oemgate_testkit::conformance_tests!(Target);

/// The world above has a unit heating and one idle, so `isActive` is checked both ways.
#[test]
fn the_world_has_active_and_idle_units() {
    oemgate_testkit::block_on(async {
        let h = Target.start(StartOptions::from_env()).await.unwrap();
        let activities: Vec<HvacActivity> = h
            .devices
            .iter()
            .map(|e| h.world.hvac(&DeviceId::new(e.world_id.clone())).unwrap().activity)
            .collect();
        assert!(activities.contains(&HvacActivity::Heating), "{activities:?}");
        assert!(activities.contains(&HvacActivity::Idle), "{activities:?}");
    });
}
