//! The adapter conformance suite (oemgate-testkit) against the simulated SDM API.
//!
//! The world, a January morning at 60° N: Alice's Google account shares two homes, Maple House
//! with a Nest thermostat heating on a permanent hold (and an ecobee next to it, which is not
//! Nest's), and Lakeside Cabin with a Nest thermostat following its schedule in Heat•Cool;
//! Bob's account shares a third home whose thermostat Alice's discovery must not return. The
//! simulator is served by a `SimHost` under `/nest` on 127.0.0.1 and the account is linked
//! through the simulator's own consent code. Time only moves through the `ManualClock`.

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use oemgate_core::{
    AccountRef, Command, DeviceRef, HvacMode, ManualClock, QuotaScope, VendorLimits, VendorType,
};
use oemgate_nest::sim::{FAULT_VENDOR, NestSim, PREFIX, WORLD_VENDOR};
use oemgate_nest::{NestAdapter, NestConfig};
use oemgate_sim::{
    DeviceId, HvacActivity, HvacHold, HvacMode as WorldMode, HvacSpec, LatencyProfile, SimHost,
    SiteSpec, World, WorldConfig,
};
use oemgate_testkit::{
    AuthBehaviour, CommandCase, ConformanceTarget, Expectation, ExpectedDevice, Fault, Harness,
    ServerGuard, SimRequests, StartOptions, UnsupportedCase, VendorControl,
};

const USER: &str = "user-alice";
/// Every Nest command lands exactly this long after SDM accepted it.
const LATENCY: Duration = Duration::from_secs(5);

/// 08:30 local time in Oslo (UTC+1), mid-January: heating weather.
fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 15, 7, 30, 0).unwrap()
}

fn thermostat(name: &str, set: impl FnOnce(&mut HvacSpec)) -> HvacSpec {
    let mut spec =
        HvacSpec { vendor: WORLD_VENDOR.into(), name: name.into(), ..HvacSpec::default() };
    set(&mut spec);
    spec
}

fn device(sim: &NestSim, world: &World, id: &DeviceId, n: usize) -> DeviceRef {
    let site = world.device_info(id).unwrap().site;
    DeviceRef {
        id: format!("hvac-{n}"),
        user_id: USER.into(),
        device_type: VendorType::Hvac,
        vendor_id: sim.sdm_device_id(id),
        site_id: Some(sim.structure_id(&site)),
    }
}

fn world_mode(mode: HvacMode) -> WorldMode {
    match mode {
        HvacMode::Heat => WorldMode::Heat,
        HvacMode::Cool => WorldMode::Cool,
        HvacMode::Auto => WorldMode::Auto,
        _ => WorldMode::Off,
    }
}

/// A permanent hold whose effect is the world holding exactly that mode and setpoints.
fn hold_case(
    target: &DeviceRef,
    id: &DeviceId,
    mode: HvacMode,
    heat: Option<f64>,
    cool: Option<f64>,
) -> CommandCase<World> {
    let check = id.clone();
    let close = |want: Option<f64>, have: f64| want.is_none_or(|w| (w - have).abs() < 1e-6);
    CommandCase::new(
        target.clone(),
        Command::SetPermanentHold { mode, heat_setpoint: heat, cool_setpoint: cool },
        format!("the thermostat holds {} (heat {heat:?}, cool {cool:?})", mode.as_str()),
        LATENCY * 4,
        move |w: &World| {
            w.hvac(&check).is_some_and(|h| {
                h.hold == HvacHold::Permanent
                    && h.mode == world_mode(mode)
                    && close(heat, h.heat_setpoint)
                    && close(cool, h.cool_setpoint)
            })
        },
    )
}

struct Control {
    world: World,
    sim: NestSim,
}

#[async_trait]
impl VendorControl for Control {
    async fn expire_access_token(&self, _account: &mut AccountRef) {
        // In the simulator, so the adapter meets Google's 401 UNAUTHENTICATED.
        self.sim.expire_access_tokens();
    }

    async fn revoke_credentials(&self, _account: &AccountRef) {
        self.world.faults().set(FAULT_VENDOR, Fault::RevokeTokens, None);
    }

    fn inject_fault(&self, fault: Fault) {
        self.world.faults().set(FAULT_VENDOR, fault, None);
    }

    fn clear_faults(&self) {
        self.world.faults().clear(FAULT_VENDOR);
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

        let maple = world.add_site(SiteSpec { name: "Maple House".into(), ..SiteSpec::default() });
        let hall = world.add_hvac(
            &maple,
            thermostat("Hall thermostat", |s| {
                s.hold = HvacHold::Permanent;
                s.mode = WorldMode::Heat;
                s.heat_setpoint = 21.0;
                s.cool_setpoint = 25.0;
                s.indoor_c = 19.0;
            }),
        )?;
        // The ecobee next to it is another vendor's.
        world
            .add_hvac(&maple, HvacSpec { name: "Basement ecobee".into(), ..HvacSpec::default() })?;

        let cabin =
            world.add_site(SiteSpec { name: "Lakeside Cabin".into(), ..SiteSpec::default() });
        let lodge = world.add_hvac(
            &cabin,
            thermostat("Lodge", |s| {
                s.hold = HvacHold::Schedule;
                s.indoor_c = 22.5;
            }),
        )?;

        // Bob's home, on the same Device Access project.
        let bobs = world.add_site(SiteSpec { name: "Bob's".into(), ..SiteSpec::default() });
        world.add_hvac(&bobs, thermostat("Bob's thermostat", |_| {}))?;

        let sim = NestSim::new(world.clone());
        let mut host = SimHost::new(clock.clone());
        host.mount(PREFIX, sim.router())?;
        let requests = SimRequests::new(host.request_log(), PREFIX);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}{PREFIX}", listener.local_addr()?);
        let server = tokio::spawn(host.serve(listener));

        let app = sim.config();
        let mut config =
            NestConfig::new(app.project_id, app.client_id, app.client_secret).for_base_url(&base);
        config.request_timeout = options.request_timeout;
        let adapter = Arc::new(NestAdapter::new(config, clock.clone()));

        let link = sim.create_account(&[maple, cabin]);
        sim.create_account(&[bobs]);
        let credentials = adapter.exchange_code(&link.code, &link.redirect_uri).await?;
        let account = AccountRef {
            user_id: USER.into(),
            vendor: "NEST".into(),
            account_id: link.user.clone(),
            credentials,
        };

        let hall_ref = device(&sim, &world, &hall, 1);
        let lodge_ref = device(&sim, &world, &lodge, 2);
        let devices = vec![
            ExpectedDevice::new(hall_ref.clone(), hall.as_str()),
            ExpectedDevice::new(lodge_ref.clone(), lodge.as_str()),
        ];
        let commands = vec![
            hold_case(&hall_ref, &hall, HvacMode::Heat, Some(19.5), None),
            hold_case(&hall_ref, &hall, HvacMode::Cool, None, Some(24.0)),
            hold_case(&lodge_ref, &lodge, HvacMode::Auto, Some(18.0), Some(23.5)),
            hold_case(&lodge_ref, &lodge, HvacMode::Off, None, None),
            hold_case(&lodge_ref, &lodge, HvacMode::Heat, Some(20.5), None),
        ];
        let unsupported = vec![
            UnsupportedCase::new(hall_ref, Command::FollowSchedule),
            UnsupportedCase::new(lodge_ref, Command::FollowSchedule),
        ];

        Ok(Harness {
            adapter,
            account,
            clock,
            world: world.clone(),
            requests: Arc::new(requests),
            devices,
            commands,
            unsupported,
            sleeping: Vec::new(),
            control: Box::new(Control { world, sim }),
            truth: Box::new(truth),
            keep_alive: vec![Box::new(ServerGuard::new(server))],
        })
    }

    /// Google's published Device Access Sandbox limits (developers.google.com/nest/
    /// device-access/project/limits; vendor reference §7c): per project and user,
    /// `devices.executeCommand` 10, `devices.get` 10, `devices.list` 5 and `structures.*` 5
    /// queries per minute, and 5 per minute per trait command and device. One bucket for every
    /// call of an account can only be as generous as the strictest: 5 per minute per account.
    /// Google publishes no finer burst (the minute's allowance may come at once), no
    /// concurrency limit (bounded here by the per-minute allowance), no daily quota, and does
    /// not bill per request.
    fn published_limits(&self) -> VendorLimits {
        VendorLimits {
            requests_per_minute: 5,
            burst: 5,
            rate_scope: QuotaScope::Account,
            daily_quota: None,
            max_concurrent: 5,
            pricing: None,
        }
    }

    /// Google OAuth: refresh tokens are reusable (not rotated), and a revoked access token is
    /// answered exactly like an expired one (401 UNAUTHENTICATED); the refresh that follows gets
    /// `invalid_grant`.
    fn auth(&self) -> AuthBehaviour {
        AuthBehaviour {
            refreshes: true,
            single_use_refresh_tokens: false,
            revoked_token_reads_as_expired: true,
        }
    }
}

/// The world's truth per thermostat, in the normalized units.
fn truth(w: &World, e: &ExpectedDevice) -> Vec<Expectation> {
    let id = DeviceId::new(e.world_id.clone());
    let h = w.hvac(&id).unwrap();
    let (heat, cool) = match h.mode {
        WorldMode::Heat => (Some(h.heat_setpoint), None),
        WorldMode::Cool => (None, Some(h.cool_setpoint)),
        WorldMode::Auto => (Some(h.heat_setpoint), Some(h.cool_setpoint)),
        WorldMode::Off => (None, None),
    };
    let maybe = |pointer: &str, v: Option<f64>| match v {
        Some(v) => Expectation::celsius(pointer, v),
        None => Expectation::null(pointer),
    };
    vec![
        Expectation::bool("/isReachable", h.online),
        Expectation::celsius("/temperatureState/currentTemperature", h.indoor_c),
        Expectation::bool("/temperatureState/isActive", h.activity != HvacActivity::Idle),
        Expectation::string("/thermostatState/mode", oemgate_core::HvacMode::from(h.mode).as_str()),
        maybe("/thermostatState/heatSetpoint", heat),
        maybe("/thermostatState/coolSetpoint", cool),
        Expectation::null("/thermostatState/holdType"),
        Expectation::null("/consumptionRate"),
        Expectation::string("/information/brand", "Google Nest"),
        Expectation::string("/information/displayName", h.name.clone()),
        Expectation::string("/information/category", "AGGREGATOR"),
        Expectation::bool("/capabilities/setPermanentHold/isCapable", true),
        Expectation::bool("/capabilities/setFollowSchedule/isCapable", false),
    ]
}

oemgate_testkit::conformance_tests!(Target);

/// The world above has a thermostat heating and one on its schedule, so both `isActive`
/// values and both hold types are exercised.
#[test]
fn the_world_has_both_states() {
    oemgate_testkit::block_on(async {
        let h = Target.start(StartOptions::from_env()).await.unwrap();
        let states: Vec<_> = h
            .devices
            .iter()
            .map(|e| h.world.hvac(&DeviceId::new(e.world_id.clone())).unwrap())
            .collect();
        assert!(states.iter().any(|s| s.activity == HvacActivity::Heating), "{states:#?}");
        assert!(states.iter().any(|s| s.hold == HvacHold::Schedule));
        assert!(states.iter().any(|s| s.hold == HvacHold::Permanent));
    });
}
