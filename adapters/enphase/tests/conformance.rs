//! The adapter conformance suite (oemgate-testkit) against the simulated Enphase cloud.
//!
//! The world: Alice's Enphase account holds two systems (a sunny home with a charging
//! battery that exports, and a hillside home with a heavy load, a discharging battery and a
//! SolarEdge array next to its Enphase one); Bob's account holds a third system that Alice's
//! discovery must not return. The simulator is served by a `SimHost` under `/enphase` on
//! 127.0.0.1, the application is on the Kilowatt plan, and the account is linked through the
//! simulator's own authorization-code flow. Time only moves through the `ManualClock`.

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use oemgate_core::{
    AccountRef, BatteryOperationMode, Command, DailyQuota, DeviceRef, ManualClock, QuotaScope,
    VendorLimits, VendorType,
};
use oemgate_enphase::sim::{
    EnphaseApp, EnphaseSim, EnphaseSimConfig, FAULT_VENDOR, PREFIX, WORLD_VENDOR,
};
use oemgate_enphase::{EnphaseAdapter, EnphaseConfig, EnphasePlan};
use oemgate_sim::{
    BatteryMode, BatterySpec, DeviceId, InverterSpec, LatencyProfile, MeterSpec, SimHost, SiteSpec,
    World, WorldConfig,
};
use oemgate_testkit::{
    AuthBehaviour, CommandCase, ConformanceTarget, Expectation, ExpectedDevice, Fault, Harness,
    ServerGuard, SimRequests, StartOptions, Tolerance, UnsupportedCase, VendorControl,
};

const USER: &str = "user-alice";
/// Every Enphase battery setting lands exactly this long after it is accepted.
const LATENCY: Duration = Duration::from_secs(30);

/// Mid-morning in June at 60° N (UTC+1): the arrays produce.
fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 15, 9, 30, 0).unwrap()
}

fn enphase<T>(spec: T, set: impl FnOnce(&mut T)) -> T {
    let mut spec = spec;
    set(&mut spec);
    spec
}

fn device(device_type: VendorType, system: u64) -> DeviceRef {
    DeviceRef {
        id: format!("dev-{device_type}-{system}"),
        user_id: USER.into(),
        device_type,
        vendor_id: system.to_string(),
        site_id: Some(system.to_string()),
    }
}

/// The Enode mode the world's battery mode must be reported as.
fn reported_mode(mode: BatteryMode) -> &'static str {
    match mode {
        BatteryMode::SelfReliance => "SELF_RELIANCE",
        BatteryMode::TimeOfUse => "TIME_OF_USE",
        BatteryMode::ImportFocus | BatteryMode::Backup => "IMPORT_FOCUS",
        BatteryMode::ExportFocus | BatteryMode::Idle => "UNKNOWN",
    }
}

/// The battery switches to `mode` (from another one, so the case proves something).
fn mode_case(battery: &DeviceRef, id: &DeviceId, mode: BatteryOperationMode) -> CommandCase<World> {
    let (other, accepts): (BatteryMode, fn(BatteryMode) -> bool) = match mode {
        BatteryOperationMode::SelfReliance => {
            (BatteryMode::TimeOfUse, |m| m == BatteryMode::SelfReliance)
        }
        BatteryOperationMode::TimeOfUse => {
            (BatteryMode::SelfReliance, |m| m == BatteryMode::TimeOfUse)
        }
        // Full Backup: ImportFocus with charge-from-grid, Backup (solar only) without.
        _ => (BatteryMode::SelfReliance, |m| {
            matches!(m, BatteryMode::ImportFocus | BatteryMode::Backup)
        }),
    };
    let (check, prep) = (id.clone(), id.clone());
    CommandCase::new(
        battery.clone(),
        Command::SetOperationMode { mode },
        format!("the IQ Battery switches to {mode}"),
        LATENCY * 2,
        move |w: &World| w.battery(&check).is_some_and(|b| accepts(b.mode)),
    )
    .prepare(move |w: &World| w.update_battery(&prep, |b| b.mode = other).unwrap())
}

struct Control {
    world: World,
    sim: EnphaseSim,
}

#[async_trait]
impl VendorControl for Control {
    async fn expire_access_token(&self, _account: &mut AccountRef) {
        // In the simulator, so the adapter meets Enphase's 401.
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

        let sunny = world.add_site(SiteSpec {
            name: "Villa Sol".into(),
            base_load_w: 300.0,
            ..SiteSpec::default()
        });
        let inv1 = world.add_inverter(
            &sunny,
            enphase(InverterSpec::default(), |s| {
                s.vendor = WORLD_VENDOR.into();
                s.capacity_w = 9000.0;
                s.lifetime_kwh = 8_765.4;
            }),
        )?;
        let bat1 = world.add_battery(
            &sunny,
            enphase(BatterySpec::default(), |s| {
                s.vendor = WORLD_VENDOR.into();
                s.name = "IQ Battery 5P".into();
                s.capacity_kwh = 10.0;
                s.soc_pct = 45.0;
                s.reserve_pct = 20.0;
                s.mode = BatteryMode::SelfReliance;
                s.max_charge_w = 2500.0;
                s.max_discharge_w = 2500.0;
            }),
        )?;
        let mtr1 = world
            .add_meter(&sunny, enphase(MeterSpec::default(), |s| s.vendor = WORLD_VENDOR.into()))?;

        let hill = world.add_site(SiteSpec {
            name: "Hillside".into(),
            base_load_w: 3500.0,
            ..SiteSpec::default()
        });
        let inv2 = world.add_inverter(
            &hill,
            enphase(InverterSpec::default(), |s| {
                s.vendor = WORLD_VENDOR.into();
                s.capacity_w = 1500.0;
                s.lifetime_kwh = 2_100.0;
            }),
        )?;
        world.add_inverter(
            &hill,
            enphase(InverterSpec::default(), |s| {
                s.vendor = "solaredge".into();
                s.capacity_w = 2000.0;
            }),
        )?;
        let bat2 = world.add_battery(
            &hill,
            enphase(BatterySpec::default(), |s| {
                s.vendor = WORLD_VENDOR.into();
                s.capacity_kwh = 5.0;
                s.soc_pct = 80.0;
                s.reserve_pct = 10.0;
                s.mode = BatteryMode::TimeOfUse;
                s.max_charge_w = 1000.0;
                s.max_discharge_w = 1000.0;
            }),
        )?;
        let mtr2 = world
            .add_meter(&hill, enphase(MeterSpec::default(), |s| s.vendor = WORLD_VENDOR.into()))?;

        // Bob's system, on the same application.
        let bobs = world.add_site(SiteSpec { name: "Bob's".into(), ..SiteSpec::default() });
        world.add_inverter(
            &bobs,
            enphase(InverterSpec::default(), |s| s.vendor = WORLD_VENDOR.into()),
        )?;
        world.add_battery(
            &bobs,
            enphase(BatterySpec::default(), |s| s.vendor = WORLD_VENDOR.into()),
        )?;

        let app = EnphaseApp { plan: EnphasePlan::Kilowatt, ..EnphaseApp::default() };
        let sim = EnphaseSim::with_config(
            world.clone(),
            EnphaseSimConfig { app: app.clone(), ..EnphaseSimConfig::default() },
        );
        let mut host = SimHost::new(clock.clone());
        host.mount(PREFIX, sim.router())?;
        let requests = SimRequests::new(host.request_log(), PREFIX);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}{PREFIX}", listener.local_addr()?);
        let server = tokio::spawn(host.serve(listener));

        let mut config =
            EnphaseConfig::new(app.api_key, app.client_id, app.client_secret).for_base_url(&base);
        config.plan = EnphasePlan::Kilowatt;
        config.request_timeout = options.request_timeout;
        let adapter = Arc::new(EnphaseAdapter::new(config, clock.clone()));

        let link = sim.create_account(&[sunny.clone(), hill.clone()]);
        sim.create_account(&[bobs]);
        let credentials = adapter.exchange_code(&link.code, &link.redirect_uri).await?;
        let account = AccountRef {
            user_id: USER.into(),
            vendor: "ENPHASE".into(),
            account_id: link.enl_uid.clone(),
            credentials,
        };

        let (s1, s2) = (sim.system_id(&sunny), sim.system_id(&hill));
        let battery1 = device(VendorType::Battery, s1);
        let devices = vec![
            ExpectedDevice::new(device(VendorType::Inverter, s1), inv1.as_str()),
            ExpectedDevice::new(battery1.clone(), bat1.as_str()),
            ExpectedDevice::new(device(VendorType::Meter, s1), mtr1.as_str()),
            ExpectedDevice::new(device(VendorType::Inverter, s2), inv2.as_str()),
            ExpectedDevice::new(device(VendorType::Battery, s2), bat2.as_str()),
            ExpectedDevice::new(device(VendorType::Meter, s2), mtr2.as_str()),
        ];
        let commands = [
            BatteryOperationMode::SelfReliance,
            BatteryOperationMode::TimeOfUse,
            BatteryOperationMode::ImportFocus,
        ]
        .into_iter()
        .map(|mode| mode_case(&battery1, &bat1, mode))
        .collect();
        let unsupported = [BatteryOperationMode::ExportFocus, BatteryOperationMode::Idle]
            .into_iter()
            .map(|mode| UnsupportedCase::new(battery1.clone(), Command::SetOperationMode { mode }))
            .collect();

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

    /// Enphase's published Kilowatt plan (developer-v4.enphase.com, "Plans"; reference
    /// vendor-clouds.md §2): 50 requests per minute and 50 000 per month, per application
    /// (API key). Enphase counts per calendar minute and publishes no finer burst (the whole
    /// minute's allowance may come at once) and no concurrency limit (bounded here by the
    /// per-minute allowance). The monthly quota is expressed as its strictest daily equivalent,
    /// 50 000 / 31. Plans are subscriptions: no per-request price.
    fn published_limits(&self) -> VendorLimits {
        VendorLimits {
            requests_per_minute: 50,
            burst: 50,
            rate_scope: QuotaScope::Key,
            daily_quota: Some(DailyQuota { requests: 50_000 / 31, per: QuotaScope::Key }),
            max_concurrent: 50,
            pricing: None,
        }
    }

    /// OAuth with single-use refresh tokens (each refresh issues a new one). Enphase answers an
    /// expired and a revoked access token alike (401), so a call with a revoked token may be
    /// `AuthExpired`; the refresh that follows is refused.
    fn auth(&self) -> AuthBehaviour {
        AuthBehaviour {
            refreshes: true,
            single_use_refresh_tokens: true,
            revoked_token_reads_as_expired: true,
        }
    }
}

/// The world's truth per device, in the normalized units.
fn truth(w: &World, e: &ExpectedDevice) -> Vec<Expectation> {
    let id = DeviceId::new(e.world_id.clone());
    match e.device.device_type {
        VendorType::Inverter => {
            let i = w.inverter(&id).unwrap();
            let mut out = vec![
                Expectation::bool("/isReachable", true),
                Expectation::kw("/productionState/productionRate", i.production_w / 1000.0),
                Expectation::kwh("/productionState/totalLifetimeProduction", i.lifetime_kwh),
                Expectation::not_null("/productionState/lastUpdated"),
                Expectation::string("/information/id", e.device.vendor_id.clone()),
                Expectation::string("/information/brand", "Enphase"),
            ];
            if i.production_w >= 1.0 || i.production_w == 0.0 {
                out.push(Expectation::bool("/productionState/isProducing", i.production_w > 0.0));
            }
            out
        }
        VendorType::Battery => {
            let b = w.battery(&id).unwrap();
            let mut out = vec![
                Expectation::bool("/isReachable", true),
                Expectation::percent("/chargeState/batteryLevel", b.soc_pct),
                Expectation::kw("/chargeState/chargeRate", b.power_w / 1000.0),
                Expectation::kwh("/chargeState/batteryCapacity", b.capacity_kwh),
                Expectation::percent("/chargeState/dischargeLimit", b.reserve_pct),
                Expectation::string("/config/operationMode", reported_mode(b.mode)),
                Expectation::bool("/capabilities/selfReliance/isCapable", true),
                Expectation::bool("/capabilities/exportFocus/isCapable", false),
            ];
            if b.power_w.abs() >= 50.0 {
                let status = if b.power_w > 0.0 { "CHARGING" } else { "DISCHARGING" };
                out.push(Expectation::string("/chargeState/status", status));
            }
            out
        }
        VendorType::Meter => {
            let m = w.meter(&id).unwrap();
            vec![
                Expectation::bool("/isReachable", true),
                Expectation::number("/energyState/power", m.power_w / 1000.0, Tolerance::KW),
                Expectation::bool("/capabilities/measuresConsumption/isCapable", true),
            ]
        }
        other => panic!("no {other} devices in this world"),
    }
}

oemgate_testkit::conformance_tests!(Target);

/// The world above exercises both signs of every signed value.
#[test]
fn the_world_has_both_signs() {
    oemgate_testkit::block_on(async {
        let h = Target.start(StartOptions::from_env()).await.unwrap();
        let powers: Vec<(VendorType, f64)> = h
            .devices
            .iter()
            .filter_map(|e| {
                let id = DeviceId::new(e.world_id.clone());
                match e.device.device_type {
                    VendorType::Battery => {
                        h.world.battery(&id).map(|b| (VendorType::Battery, b.power_w))
                    }
                    VendorType::Meter => h.world.meter(&id).map(|m| (VendorType::Meter, m.power_w)),
                    _ => None,
                }
            })
            .collect();
        for t in [VendorType::Battery, VendorType::Meter] {
            let of = |positive: bool| {
                powers.iter().any(|(k, p)| *k == t && if positive { *p > 50.0 } else { *p < -50.0 })
            };
            assert!(of(true) && of(false), "{t}: {powers:?}");
        }
    });
}
