#![allow(clippy::unwrap_used)]
//! The adapter conformance suite against the FusionSolar simulator: every check of
//! `oemgate-testkit` as its own test (`conformance::discovery`, ...).
//!
//! The world holds two households of one FusionSolar account (a home with inverter, battery
//! and power sensor plus a non-Huawei meter; a cabin with inverter, battery and an offline
//! power sensor) and a neighbour's plant on a second account, which discovery must not
//! return. Linking goes through the simulator's own login.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use oemgate_core::{
    AccountRef, BatteryOperationMode, Command, DeviceRef, ManualClock, QuotaScope, VendorLimits,
    VendorType,
};
use oemgate_huawei::sim::{self, HuaweiSim};
use oemgate_huawei::{HuaweiAdapter, HuaweiConfig};
use oemgate_sim::{
    BatteryMode, BatterySpec, BatteryStatus, DeviceId, DeviceKind, InverterSpec, LatencyProfile,
    MeterSpec, SimHost, SiteId, SiteSpec, World, WorldConfig,
};
use oemgate_testkit::{
    AuthBehaviour, ConformanceTarget, Expectation, ExpectedDevice, Fault, Harness, ServerGuard,
    SimRequests, StartOptions, UnsupportedCase, VendorControl,
};

const USER: &str = "user-alice";

/// Mid-morning in June in Oslo (the default site): the panels produce.
fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 15, 9, 30, 0).unwrap()
}

/// FusionSolar's limits as Huawei's Northbound documentation states them (quoted in
/// tijsverkoyen/HomeAssistant-FusionSolar issues #27, #29, #89 and PR #93): about one call per
/// minute per interface and account, one concurrent request, no published daily quota for
/// the real-time KPI calls, no billing. One rate per scope: one request per minute per
/// account.
fn published_limits() -> VendorLimits {
    VendorLimits {
        requests_per_minute: 1,
        burst: 1,
        rate_scope: QuotaScope::Account,
        daily_quota: None,
        max_concurrent: 1,
        pricing: None,
    }
}

struct Control {
    sim: HuaweiSim,
    user_name: String,
}

#[async_trait]
impl VendorControl for Control {
    async fn expire_access_token(&self, _account: &mut AccountRef) {
        // The session idles out in the simulator: the next call is answered failCode 305.
        self.sim.expire_sessions(&self.user_name);
    }

    async fn revoke_credentials(&self, _account: &AccountRef) {
        self.sim.revoke_account(&self.user_name);
    }

    fn inject_fault(&self, fault: Fault) {
        self.sim.world().faults().set(sim::FAULT_VENDOR, fault, None);
    }

    fn clear_faults(&self) {
        let faults = self.sim.world().faults();
        faults.clear(sim::FAULT_VENDOR);
        faults.clear(sim::WORLD_VENDOR);
    }
}

struct Target;

fn huawei_inverter(name: &str, capacity_w: f64) -> InverterSpec {
    InverterSpec {
        vendor: sim::WORLD_VENDOR.into(),
        name: name.into(),
        capacity_w,
        lifetime_kwh: 8_431.2,
    }
}

fn huawei_battery(soc_pct: f64, mode: BatteryMode) -> BatterySpec {
    BatterySpec {
        vendor: sim::WORLD_VENDOR.into(),
        name: "LUNA2000".into(),
        capacity_kwh: 10.0,
        soc_pct,
        reserve_pct: 15.0,
        mode,
        max_charge_w: 5_000.0,
        max_discharge_w: 5_000.0,
        cheap_window: (1.0, 5.0),
    }
}

fn huawei_meter() -> MeterSpec {
    MeterSpec { vendor: sim::WORLD_VENDOR.into(), name: "DTSU666-H".into() }
}

fn reference(n: usize, kind: DeviceKind, id: &DeviceId, site: &SiteId) -> ExpectedDevice {
    let device_type = match kind {
        DeviceKind::Inverter => VendorType::Inverter,
        DeviceKind::Battery => VendorType::Battery,
        _ => VendorType::Meter,
    };
    let device = DeviceRef {
        id: format!("dev-{n}"),
        user_id: USER.into(),
        device_type,
        vendor_id: sim::device_key(id, kind).unwrap().to_string(),
        site_id: Some(sim::station_code(site)),
    };
    ExpectedDevice::new(device, id.as_str())
}

/// The world's truth for one device, as the adapter must report it.
fn truth(world: &World, e: &ExpectedDevice) -> Vec<Expectation> {
    let id = DeviceId::new(e.world_id.clone());
    let mut out = vec![Expectation::string("/information/brand", "Huawei")];
    match e.device.device_type {
        VendorType::Inverter => {
            let i = world.inverter(&id).unwrap();
            let key = sim::device_key(&id, DeviceKind::Inverter).unwrap();
            out.push(Expectation::string("/information/id", key.dev_id));
            out.push(Expectation::bool("/isReachable", i.online));
            if i.online {
                out.push(Expectation::kw("/productionState/productionRate", i.production_w / 1e3));
                out.push(Expectation::kwh(
                    "/productionState/totalLifetimeProduction",
                    i.lifetime_kwh,
                ));
                if i.production_w == 0.0 || i.production_w >= 1.0 {
                    out.push(Expectation::bool(
                        "/productionState/isProducing",
                        i.production_w > 0.0,
                    ));
                }
            } else {
                out.push(Expectation::null("/productionState/productionRate"));
            }
        }
        VendorType::Battery => {
            let b = world.battery(&id).unwrap();
            out.push(Expectation::bool("/isReachable", b.online));
            out.push(Expectation::percent("/chargeState/batteryLevel", b.soc_pct));
            // Positive while charging, in kW.
            out.push(Expectation::kw("/chargeState/chargeRate", b.power_w / 1e3));
            out.push(Expectation::null("/chargeState/batteryCapacity"));
            out.push(Expectation::null("/chargeState/dischargeLimit"));
            if b.power_w.abs() >= 1.0 {
                let status = match b.status {
                    BatteryStatus::Charging => "CHARGING",
                    BatteryStatus::Discharging => "DISCHARGING",
                    BatteryStatus::Idle => "IDLE",
                };
                out.push(Expectation::string("/chargeState/status", status));
            }
            let mode = match b.mode {
                BatteryMode::SelfReliance => "SELF_RELIANCE",
                BatteryMode::TimeOfUse => "TIME_OF_USE",
                _ => "UNKNOWN",
            };
            out.push(Expectation::string("/config/operationMode", mode));
        }
        _ => {
            let m = world.meter(&id).unwrap();
            out.push(Expectation::bool("/isReachable", m.online));
            if m.online {
                // Import positive, export negative, in kW.
                out.push(Expectation::kw("/energyState/power", m.power_w / 1e3));
            } else {
                out.push(Expectation::null("/energyState/power"));
            }
        }
    }
    out
}

#[async_trait]
impl ConformanceTarget for Target {
    type World = World;

    async fn start(&self, options: StartOptions) -> anyhow::Result<Harness<World>> {
        let clock = Arc::new(ManualClock::new(t0()));
        let mut config = WorldConfig::default();
        config.latency.insert(sim::WORLD_VENDOR.into(), LatencyProfile::fixed(10.0));
        let world = World::new(options.seed, clock.clone(), config);

        // Alice's home: inverter, battery, power sensor, and someone else's meter.
        let home = world.add_site(SiteSpec { name: "Alice home".into(), ..SiteSpec::default() });
        let inv_home = world.add_inverter(&home, huawei_inverter("SUN2000 home", 6_000.0))?;
        let bat_home = world.add_battery(&home, huawei_battery(55.0, BatteryMode::SelfReliance))?;
        let mtr_home = world.add_meter(&home, huawei_meter())?;
        world.add_meter(&home, MeterSpec { vendor: "enphase".into(), name: "Envoy".into() })?;
        // Alice's cabin: a smaller plant whose power sensor is offline.
        let cabin = world.add_site(SiteSpec {
            name: "Alice cabin".into(),
            base_load_w: 150.0,
            ..SiteSpec::default()
        });
        let inv_cabin = world.add_inverter(&cabin, huawei_inverter("SUN2000 cabin", 3_000.0))?;
        let bat_cabin = world.add_battery(&cabin, huawei_battery(80.0, BatteryMode::TimeOfUse))?;
        let mtr_cabin = world.add_meter(&cabin, huawei_meter())?;
        world.set_device_online(&mtr_cabin, false)?;
        // Bob's plant on another FusionSolar account.
        let bob_site = world.add_site(SiteSpec { name: "Bob".into(), ..SiteSpec::default() });
        world.add_inverter(&bob_site, huawei_inverter("SUN2000 Bob", 8_000.0))?;
        world.add_battery(&bob_site, huawei_battery(30.0, BatteryMode::SelfReliance))?;

        let cloud = HuaweiSim::new(world.clone());
        // The suite reads many devices at one instant of a manual clock; FusionSolar's
        // one-call-per-minute limit is tested in tests/sim.rs.
        cloud.set_interface_rate_limit(None);
        let alice = cloud.create_account(&[home.clone(), cabin.clone()]);
        let _bob = cloud.create_account(&[bob_site]);

        let mut host = SimHost::new(clock.clone());
        host.mount(sim::PREFIX, cloud.router())?;
        let requests = SimRequests::new(host.request_log(), sim::PREFIX);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base_url = format!("http://{}{}", listener.local_addr()?, sim::PREFIX);
        let server = tokio::spawn(host.serve(listener));

        let adapter = HuaweiAdapter::new(
            HuaweiConfig { base_url, request_timeout: options.request_timeout },
            clock.clone(),
        );
        let credentials = adapter.login(&alice.user_name, &alice.system_code).await?;
        let account = AccountRef {
            user_id: USER.into(),
            vendor: "HUAWEI".into(),
            account_id: alice.user_name.clone(),
            credentials,
        };

        let devices = vec![
            reference(1, DeviceKind::Inverter, &inv_home, &home),
            reference(2, DeviceKind::Battery, &bat_home, &home),
            reference(3, DeviceKind::Meter, &mtr_home, &home),
            reference(4, DeviceKind::Inverter, &inv_cabin, &cabin),
            reference(5, DeviceKind::Battery, &bat_cabin, &cabin),
            reference(6, DeviceKind::Meter, &mtr_cabin, &cabin),
        ];
        let battery = devices[1].device.clone();
        let unsupported = BatteryOperationMode::ALL
            .iter()
            .map(|mode| {
                UnsupportedCase::new(battery.clone(), Command::SetOperationMode { mode: *mode })
            })
            .collect();

        Ok(Harness {
            adapter: Arc::new(adapter),
            account,
            clock,
            world,
            requests: Arc::new(requests),
            devices,
            commands: Vec::new(),
            unsupported,
            sleeping: Vec::new(),
            control: Box::new(Control { sim: cloud, user_name: alice.user_name }),
            truth: Box::new(truth),
            keep_alive: vec![Box::new(ServerGuard::new(server))],
        })
    }

    fn published_limits(&self) -> VendorLimits {
        published_limits()
    }

    /// No refresh token, but a new login (with the stored password) gives a new session, so
    /// the refresh flow works and can be repeated. A revoked account's session reads as 305
    /// like an expired one; the login that follows is refused.
    fn auth(&self) -> AuthBehaviour {
        AuthBehaviour {
            refreshes: true,
            single_use_refresh_tokens: false,
            revoked_token_reads_as_expired: true,
        }
    }
}

oemgate_testkit::conformance_tests!(Target);
