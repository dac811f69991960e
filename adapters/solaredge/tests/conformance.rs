//! The adapter conformance suite (`oemgate-testkit`) against the SolarEdge simulator on the
//! shared world, one `#[test]` per check (`conformance::discovery`, ...).
//!
//! The world: the linked account holds two sites, one with a SolarEdge inverter, meter and
//! battery, one with a SolarEdge inverter and meter next to another vendor's inverter (which
//! SolarEdge must not see); a second account holds a third site whose devices discovery must
//! not return. The simulator is mounted under `/solaredge` of a `SimHost` on 127.0.0.1:0 and
//! the account is linked with the API key the simulator hands out, as a user would paste it.

// The kit's conventions: unwrap is fine in test code.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use oemgate_core::{
    AccountRef, BatteryOperationMode, Command, DailyQuota, DeviceRef, ManualClock, QuotaScope,
    VendorLimits, VendorType,
};
use oemgate_sim::{
    BatterySpec, DeviceId, InverterSpec, MeterSpec, SimHost, SiteSpec, World, WorldConfig,
};
use oemgate_solaredge::sim::{FAULT_VENDOR, SolarEdgeSim, WORLD_VENDOR, battery_serial};
use oemgate_solaredge::{SIM_PREFIX, SolarEdgeAdapter, SolarEdgeConfig};
use oemgate_testkit::{
    AuthBehaviour, ConformanceTarget, Expectation, ExpectedDevice, Fault, Harness, ServerGuard,
    SimRequests, StartOptions, Tolerance, UnsupportedCase, VendorControl,
};

const USER: &str = "user-solaredge";

/// A spring morning in Oslo (summer time, so local times are UTC+2): the sun is up.
fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 4, 15, 10, 0, 0).unwrap()
}

/// SolarEdge's published limits (se_monitoring_api.pdf, "Usage limitations"): 300 requests a
/// day per account token and 300 per site from one source IP, at most 3 concurrent calls per
/// source IP, 429 beyond; no charge. The daily quota is per account key: each linked account
/// is one key, so `Account`. Concurrency is per source IP, i.e. the whole gateway: `Key`.
/// SolarEdge publishes no per-minute rate; 180 a minute is what 3 concurrent calls of about a
/// second each allow, and the burst cannot exceed the 3 calls that may run at once.
fn published_limits() -> VendorLimits {
    VendorLimits {
        requests_per_minute: 180,
        burst: 3,
        rate_scope: QuotaScope::Key,
        daily_quota: Some(DailyQuota { requests: 300, per: QuotaScope::Account }),
        max_concurrent: 3,
        pricing: None,
    }
}

struct Control {
    world: World,
    sim: SolarEdgeSim,
}

#[async_trait::async_trait]
impl VendorControl for Control {
    /// API keys do not expire (the expired-token check is skipped for this vendor).
    async fn expire_access_token(&self, _account: &mut AccountRef) {}

    async fn revoke_credentials(&self, account: &AccountRef) {
        self.sim.revoke_key(&account.credentials.access_token);
    }

    fn inject_fault(&self, fault: Fault) {
        self.world.faults().set(FAULT_VENDOR, fault, None);
    }

    fn clear_faults(&self) {
        self.world.faults().clear(FAULT_VENDOR);
    }
}

fn device_ref(n: usize, device_type: VendorType, vendor_id: &str, site: &str) -> DeviceRef {
    DeviceRef {
        id: format!("dev-{n}"),
        user_id: USER.into(),
        device_type,
        vendor_id: vendor_id.into(),
        site_id: Some(site.into()),
    }
}

fn truth(world: &World, expected: &ExpectedDevice) -> Vec<Expectation> {
    let id = DeviceId::new(expected.world_id.clone());
    match expected.device.device_type {
        VendorType::Inverter => {
            let inv = world.inverter(&id).unwrap();
            let mut e = vec![
                Expectation::bool("/isReachable", true),
                Expectation::kw("/productionState/productionRate", inv.production_w / 1000.0),
                Expectation::kwh("/productionState/totalLifetimeProduction", inv.lifetime_kwh),
                Expectation::not_null("/productionState/lastUpdated"),
                Expectation::string("/information/id", expected.device.vendor_id.clone()),
                Expectation::string("/information/brand", "SolarEdge"),
                Expectation::string("/timezone", "Europe/Oslo"),
            ];
            if inv.production_w >= 1.0 || inv.production_w == 0.0 {
                e.push(Expectation::bool("/productionState/isProducing", inv.production_w > 0.0));
            }
            e
        }
        VendorType::Meter => {
            let meter = world.meter(&id).unwrap();
            vec![
                Expectation::bool("/isReachable", true),
                Expectation::kw("/energyState/power", meter.power_w / 1000.0),
                Expectation::not_null("/energyState/lastUpdated"),
                Expectation::bool("/capabilities/measuresConsumption/isCapable", true),
                Expectation::bool("/capabilities/measuresProduction/isCapable", true),
            ]
        }
        VendorType::Battery => {
            let b = world.battery(&id).unwrap();
            let mut e = vec![
                Expectation::bool("/isReachable", true),
                Expectation::percent("/chargeState/batteryLevel", b.soc_pct),
                Expectation::number("/chargeState/chargeRate", b.power_w / 1000.0, Tolerance::KW),
                Expectation::kwh("/chargeState/batteryCapacity", b.capacity_kwh),
                Expectation::null("/chargeState/dischargeLimit"),
                Expectation::null("/config/operationMode"),
                Expectation::string("/information/id", expected.device.vendor_id.clone()),
                Expectation::bool("/capabilities/selfReliance/isCapable", false),
            ];
            // Rendered in kW with two decimals: a few watts read as idle.
            if b.power_w.abs() >= 10.0 {
                let status = if b.power_w > 0.0 { "CHARGING" } else { "DISCHARGING" };
                e.push(Expectation::string("/chargeState/status", status));
            }
            e
        }
        other => panic!("SolarEdge has no {other} devices"),
    }
}

struct Target;

#[async_trait::async_trait]
impl ConformanceTarget for Target {
    type World = World;

    async fn start(&self, options: StartOptions) -> anyhow::Result<Harness<World>> {
        let clock = Arc::new(ManualClock::new(t0()));
        let world = World::new(options.seed, clock.clone(), WorldConfig::default());
        let se = || WORLD_VENDOR.to_owned();

        let home = world.add_site(SiteSpec { name: "Solbakken".into(), ..SiteSpec::default() });
        let home_inverter = world.add_inverter(
            &home,
            InverterSpec { vendor: se(), capacity_w: 8000.0, ..InverterSpec::default() },
        )?;
        let home_meter =
            world.add_meter(&home, MeterSpec { vendor: se(), ..MeterSpec::default() })?;
        let home_battery = world.add_battery(
            &home,
            BatterySpec {
                vendor: se(),
                name: "Home Battery".into(),
                capacity_kwh: 9.7,
                soc_pct: 55.0,
                ..BatterySpec::default()
            },
        )?;

        let cabin = world.add_site(SiteSpec { name: "Hytta".into(), ..SiteSpec::default() });
        let cabin_inverter = world.add_inverter(
            &cabin,
            InverterSpec {
                vendor: se(),
                capacity_w: 4000.0,
                lifetime_kwh: 3_500.0,
                ..InverterSpec::default()
            },
        )?;
        let cabin_meter =
            world.add_meter(&cabin, MeterSpec { vendor: se(), ..MeterSpec::default() })?;
        // Another vendor's inverter at the cabin: SolarEdge does not see it.
        world.add_inverter(
            &cabin,
            InverterSpec { vendor: "enphase".into(), ..InverterSpec::default() },
        )?;

        // A neighbour's SolarEdge site on another account.
        let other = world.add_site(SiteSpec { name: "Naboen".into(), ..SiteSpec::default() });
        world.add_inverter(&other, InverterSpec { vendor: se(), ..InverterSpec::default() })?;
        world.add_meter(&other, MeterSpec { vendor: se(), ..MeterSpec::default() })?;
        world.add_battery(&other, BatterySpec { vendor: se(), ..BatterySpec::default() })?;

        let sim = SolarEdgeSim::new(world.clone());
        let linked = sim.create_account(&[home.clone(), cabin.clone()]);
        sim.create_account(std::slice::from_ref(&other));

        let mut host = SimHost::new(clock.clone());
        host.mount(SIM_PREFIX, sim.router())?;
        let requests = SimRequests::new(host.request_log(), SIM_PREFIX);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}{SIM_PREFIX}", listener.local_addr()?);
        let server = tokio::spawn(host.serve(listener));

        let config =
            SolarEdgeConfig { api_base_url: base, request_timeout: options.request_timeout };
        let adapter = Arc::new(SolarEdgeAdapter::new(config, clock.clone()));
        let credentials = adapter.link_api_key(&linked.api_key).await?;
        let account = AccountRef {
            user_id: USER.into(),
            vendor: "SOLAREDGE".into(),
            account_id: "solaredge:user-solaredge".into(),
            credentials,
        };

        let home_id = sim.site_id(&home).unwrap();
        let cabin_id = sim.site_id(&cabin).unwrap();
        let serial = battery_serial(&home_battery);
        let battery = device_ref(3, VendorType::Battery, &serial, &home_id);
        let devices = vec![
            ExpectedDevice::new(
                device_ref(1, VendorType::Inverter, &home_id, &home_id),
                home_inverter.as_str(),
            ),
            ExpectedDevice::new(
                device_ref(2, VendorType::Meter, &home_id, &home_id),
                home_meter.as_str(),
            ),
            ExpectedDevice::new(battery.clone(), home_battery.as_str()),
            ExpectedDevice::new(
                device_ref(4, VendorType::Inverter, &cabin_id, &cabin_id),
                cabin_inverter.as_str(),
            ),
            ExpectedDevice::new(
                device_ref(5, VendorType::Meter, &cabin_id, &cabin_id),
                cabin_meter.as_str(),
            ),
        ];
        // Read-only: every operation mode is unsupported.
        let unsupported = BatteryOperationMode::ALL
            .iter()
            .map(|mode| {
                UnsupportedCase::new(battery.clone(), Command::SetOperationMode { mode: *mode })
            })
            .collect();

        Ok(Harness {
            adapter,
            account,
            clock,
            world: world.clone(),
            requests: Arc::new(requests),
            devices,
            commands: Vec::new(),
            unsupported,
            sleeping: Vec::new(),
            control: Box::new(Control { world, sim }),
            truth: Box::new(truth),
            keep_alive: vec![Box::new(ServerGuard::new(server))],
        })
    }

    fn published_limits(&self) -> VendorLimits {
        published_limits()
    }

    /// A static API key: nothing to refresh, and a revoked key is refused like any bad key.
    fn auth(&self) -> AuthBehaviour {
        AuthBehaviour {
            refreshes: false,
            single_use_refresh_tokens: false,
            revoked_token_reads_as_expired: false,
        }
    }
}

oemgate_testkit::conformance_tests!(Target);
