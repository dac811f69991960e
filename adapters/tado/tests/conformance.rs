//! The adapter conformance suite (oemgate-testkit) against the simulated tado cloud.
//!
//! The world, on a winter morning at 60° N (UTC+1): Alice's tado account holds two homes. Her
//! house has a living room following its smart schedule (heating towards 21 °C), a bedroom on
//! a manual 18 °C hold, a hot-water zone (tado-side only) and an ecobee thermostat that is not
//! tado's; her cabin has one zone switched off by hand. Bob's account holds a third home whose
//! zone Alice's discovery must not return. The simulator is served by a `SimHost` under
//! `/tado` on 127.0.0.1, the accounts are on tado's free tier (100 requests a day), and Alice's
//! account is linked through the simulator's own device-code flow. Time only moves through the
//! `ManualClock`.

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use oemgate_core::{
    AccountRef, Command, DailyQuota, DeviceRef, HvacMode as CoreMode, ManualClock, QuotaScope,
    VendorLimits, VendorType,
};
use oemgate_sim::{
    DeviceId, HvacActivity, HvacHold, HvacMode, HvacSchedule, HvacSpec, LatencyProfile, SimHost,
    SiteSpec, World, WorldConfig,
};
use oemgate_tado::sim::{FAULT_VENDOR, PREFIX, TadoSim, WORLD_VENDOR};
use oemgate_tado::{TadoAdapter, TadoConfig, TadoTier};
use oemgate_testkit::{
    AuthBehaviour, CommandCase, ConformanceTarget, Expectation, ExpectedDevice, Fault, Harness,
    ServerGuard, SimRequests, StartOptions, VendorControl,
};

const USER: &str = "user-alice";
/// Every tado overlay lands exactly this long after it is accepted.
const LATENCY: Duration = Duration::from_secs(20);

/// A January morning, 10:00 local time: the schedule's day period (21 °C).
fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 15, 9, 0, 0).unwrap()
}

/// A heating-only schedule, as a tado heating zone has.
fn heating_schedule() -> HvacSchedule {
    HvacSchedule {
        mode: HvacMode::Heat,
        day_start_hour: 6.0,
        night_start_hour: 22.0,
        day_heat_c: 21.0,
        day_cool_c: 25.0,
        night_heat_c: 17.0,
        night_cool_c: 27.0,
    }
}

fn zone(name: &str, set: impl FnOnce(&mut HvacSpec)) -> HvacSpec {
    let mut spec = HvacSpec {
        vendor: WORLD_VENDOR.into(),
        name: name.into(),
        schedule: heating_schedule(),
        heat_power_w: 0.0,
        cool_power_w: 0.0,
        ..HvacSpec::default()
    };
    set(&mut spec);
    spec
}

fn hold_case(
    device: &DeviceRef,
    id: &DeviceId,
    mode: CoreMode,
    heat: Option<f64>,
    effect: &str,
) -> CommandCase<World> {
    let check = id.clone();
    let world_mode = match mode {
        CoreMode::Off => HvacMode::Off,
        _ => HvacMode::Heat,
    };
    CommandCase::new(
        device.clone(),
        Command::SetPermanentHold { mode, heat_setpoint: heat, cool_setpoint: None },
        effect,
        LATENCY * 2,
        move |w: &World| {
            w.hvac(&check).is_some_and(|h| {
                h.hold == HvacHold::Permanent
                    && h.mode == world_mode
                    && heat.is_none_or(|c| (h.heat_setpoint - c).abs() < 1e-9)
            })
        },
    )
}

struct Control {
    world: World,
    sim: TadoSim,
}

#[async_trait]
impl VendorControl for Control {
    async fn expire_access_token(&self, _account: &mut AccountRef) {
        // In the simulator, so the adapter meets tado's 401.
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

        let house =
            world.add_site(SiteSpec { name: "Alice's house".into(), ..SiteSpec::default() });
        let living = world.add_hvac(
            &house,
            zone("Living room", |s| {
                s.hold = HvacHold::Schedule;
                s.indoor_c = 19.0;
            }),
        )?;
        let bedroom = world.add_hvac(
            &house,
            zone("Bedroom", |s| {
                s.hold = HvacHold::Permanent;
                s.mode = HvacMode::Heat;
                s.heat_setpoint = 18.0;
                s.indoor_c = 18.2;
            }),
        )?;
        world.add_hvac(
            &house,
            HvacSpec { vendor: "ecobee".into(), name: "Basement".into(), ..HvacSpec::default() },
        )?;
        let cabin_site =
            world.add_site(SiteSpec { name: "Alice's cabin".into(), ..SiteSpec::default() });
        let cabin = world.add_hvac(
            &cabin_site,
            zone("Cabin", |s| {
                s.hold = HvacHold::Permanent;
                s.mode = HvacMode::Off;
                s.heat_setpoint = 12.0;
                s.indoor_c = 11.5;
            }),
        )?;
        let bobs = world.add_site(SiteSpec { name: "Bob's flat".into(), ..SiteSpec::default() });
        world.add_hvac(&bobs, zone("Bob's living room", |s| s.indoor_c = 20.0))?;

        let sim = TadoSim::new(world.clone());
        let link = sim.create_account(&[house.clone(), cabin_site.clone()]);
        sim.create_account(&[bobs]);
        sim.add_hot_water_zone(&house);

        let mut host = SimHost::new(clock.clone());
        host.mount(PREFIX, sim.router())?;
        let requests = SimRequests::new(host.request_log(), PREFIX);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}{PREFIX}", listener.local_addr()?);
        let server = tokio::spawn(host.serve(listener));

        let config = TadoConfig {
            tier: TadoTier::Free,
            request_timeout: options.request_timeout,
            ..TadoConfig::new().for_base_url(&base)
        };
        let adapter = Arc::new(TadoAdapter::new(config, clock.clone()));

        // tado's device-code flow: the adapter asks for a code, the user approves it in the
        // browser with their login, the adapter exchanges it.
        let auth = adapter.start_device_authorization().await?;
        anyhow::ensure!(
            sim.approve_device(&auth.user_code, &link.username, &link.password),
            "the simulator refused the approval"
        );
        let credentials = adapter.exchange_device_code(&auth.device_code).await?;
        let account = AccountRef {
            user_id: USER.into(),
            vendor: "TADO".into(),
            account_id: link.user_id.clone(),
            credentials,
        };

        let reference = |id: &DeviceId| -> anyhow::Result<DeviceRef> {
            let (home, zone) =
                sim.zone_id(id).ok_or_else(|| anyhow::anyhow!("{id} is not a tado zone"))?;
            Ok(DeviceRef {
                id: format!("dev-{home}-{zone}"),
                user_id: USER.into(),
                device_type: VendorType::Hvac,
                vendor_id: oemgate_tado::map::vendor_id(home, zone),
                site_id: Some(home.to_string()),
            })
        };
        let (living_ref, bedroom_ref, cabin_ref) =
            (reference(&living)?, reference(&bedroom)?, reference(&cabin)?);
        let devices = vec![
            ExpectedDevice::new(living_ref.clone(), living.as_str()),
            ExpectedDevice::new(bedroom_ref.clone(), bedroom.as_str()),
            ExpectedDevice::new(cabin_ref.clone(), cabin.as_str()),
        ];
        let back = bedroom.clone();
        let commands = vec![
            hold_case(
                &living_ref,
                &living,
                CoreMode::Heat,
                Some(19.5),
                "the living room holds 19.5 °C",
            ),
            hold_case(&living_ref, &living, CoreMode::Off, None, "the living room is switched off"),
            hold_case(&cabin_ref, &cabin, CoreMode::Heat, Some(20.0), "the cabin heats to 20 °C"),
            CommandCase::new(
                bedroom_ref,
                Command::FollowSchedule,
                "the bedroom follows its schedule again",
                LATENCY * 2,
                move |w: &World| w.hvac(&back).is_some_and(|h| h.hold == HvacHold::Schedule),
            ),
        ];

        Ok(Harness {
            adapter,
            account,
            clock,
            world: world.clone(),
            requests: Arc::new(requests),
            devices,
            commands,
            // Both capabilities of a heating zone are capable; the kit adds the foreign
            // commands (charging, wake-up) itself.
            unsupported: Vec::new(),
            sleeping: Vec::new(),
            control: Box::new(Control { world, sim }),
            truth: Box::new(truth),
            keep_alive: vec![Box::new(ServerGuard::new(server))],
        })
    }

    /// tado's published limits (reference vendor-clouds.md §7b, from tado's announcements in
    /// home-assistant/core #151223 and #162858): 100 API requests per day per account without
    /// Auto-Assist. tado publishes no per-minute rate, burst or concurrency limit, so nothing
    /// stops the whole day's quota from coming in one minute: those are bounded by the quota.
    /// tado does not bill per request.
    fn published_limits(&self) -> VendorLimits {
        VendorLimits {
            requests_per_minute: 100,
            burst: 100,
            rate_scope: QuotaScope::Account,
            daily_quota: Some(DailyQuota { requests: 100, per: QuotaScope::Account }),
            max_concurrent: 100,
            pricing: None,
        }
    }

    /// OAuth with single-use (rotating) refresh tokens. tado answers an expired and a revoked
    /// access token alike (401), so a call with a revoked token may be `AuthExpired`; the
    /// refresh that follows is refused.
    fn auth(&self) -> AuthBehaviour {
        AuthBehaviour {
            refreshes: true,
            single_use_refresh_tokens: true,
            revoked_token_reads_as_expired: true,
        }
    }
}

/// The world's truth per zone, in the normalized units.
fn truth(w: &World, e: &ExpectedDevice) -> Vec<Expectation> {
    let h = w.hvac(&DeviceId::new(e.world_id.clone())).unwrap();
    let heating = matches!(h.mode, HvacMode::Heat | HvacMode::Auto);
    let hold = match h.hold {
        HvacHold::Permanent => "PERMANENT",
        HvacHold::Schedule => "SCHEDULED",
    };
    vec![
        Expectation::bool("/isReachable", h.online),
        Expectation::string("/thermostatState/mode", if heating { "HEAT" } else { "OFF" }),
        if heating {
            Expectation::celsius("/thermostatState/heatSetpoint", h.heat_setpoint)
        } else {
            Expectation::null("/thermostatState/heatSetpoint")
        },
        Expectation::null("/thermostatState/coolSetpoint"),
        Expectation::string("/thermostatState/holdType", hold),
        Expectation::celsius("/temperatureState/currentTemperature", h.indoor_c),
        Expectation::bool("/temperatureState/isActive", h.activity == HvacActivity::Heating),
        Expectation::null("/consumptionRate"),
        Expectation::string("/information/category", "HEATING"),
        Expectation::string("/information/brand", "tado"),
        Expectation::bool("/capabilities/setPermanentHold/isCapable", true),
        Expectation::bool("/capabilities/setFollowSchedule/isCapable", true),
        Expectation::json("/capabilities/capableModes", serde_json::json!(["OFF", "HEAT"])),
    ]
}

oemgate_testkit::conformance_tests!(Target);

/// The world above has a zone that heats and zones that idle, so `isActive` is checked both
/// ways, and every check of the suite stays within the free tier's 100 requests a day.
#[test]
fn the_world_exercises_both_activities() {
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
