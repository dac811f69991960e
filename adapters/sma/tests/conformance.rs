//! The adapter conformance suite (oemgate-testkit) against the simulated SMA cloud.
//!
//! The world holds two plants of Alice's account (one with an SMA inverter, battery and Sunny
//! Home Manager plus a SolarEdge inverter SMA must not list, one PV-only) and Bob's plant,
//! which Alice's discovery must not return. The simulator is mounted under `/sma` of a
//! `SimHost` on 127.0.0.1:0; the account is linked through SMA's code grant.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use oemgate_core::{
    AccountRef, BatteryOperationMode, Clock, Command, DeviceRef, ManualClock, QuotaScope,
    VendorLimits, VendorType,
};
use oemgate_sim::{
    BatteryMode, BatterySpec, DeviceId, InverterSpec, MeterSpec, SimHost, SiteId, SiteSpec, World,
    WorldConfig,
};
use oemgate_sma::sim::{FAULT_KEYS, PREFIX, SmaSim, WORLD_VENDOR};
use oemgate_sma::{DEFAULT_BUCKET_SIZE, SmaAdapter, SmaConfig};
use oemgate_testkit::{
    AuthBehaviour, ConformanceTarget, Expectation, ExpectedDevice, Fault, Harness, ServerGuard,
    SimRequests, StartOptions, UnsupportedCase, VendorControl,
};

const USER: &str = "user-alice";

fn start_time() -> DateTime<Utc> {
    // A spring morning in Germany: the sun is up, the battery charges from the surplus.
    Utc.with_ymd_and_hms(2026, 4, 20, 9, 30, 0).unwrap()
}

fn site(name: &str) -> SiteSpec {
    SiteSpec {
        name: name.to_owned(),
        latitude: 48.137,
        longitude: 11.575,
        timezone: "Europe/Berlin".to_owned(),
        utc_offset_minutes: 120,
        base_load_w: 400.0,
    }
}

fn inverter(name: &str, capacity_w: f64, lifetime_kwh: f64) -> InverterSpec {
    InverterSpec {
        vendor: WORLD_VENDOR.to_owned(),
        name: name.to_owned(),
        capacity_w,
        lifetime_kwh,
    }
}

struct Control {
    world: World,
    sim: SmaSim,
}

#[async_trait]
impl VendorControl for Control {
    async fn expire_access_token(&self, account: &mut AccountRef) {
        // Expire it at SMA (so the 401 path runs); the credentials' expires_at stays ahead.
        self.sim.expire_access_tokens(&account.account_id);
    }

    async fn revoke_credentials(&self, account: &AccountRef) {
        self.sim.revoke(&account.account_id);
    }

    fn inject_fault(&self, fault: Fault) {
        self.world.faults().set(WORLD_VENDOR, fault, None);
    }

    fn clear_faults(&self) {
        for key in FAULT_KEYS {
            self.world.faults().clear(key);
        }
    }
}

struct Sma;

impl Sma {
    fn expected(sim: &SmaSim, t: VendorType, world_id: &DeviceId, site: &SiteId) -> ExpectedDevice {
        let vendor_id = sim.device_id(world_id);
        ExpectedDevice::new(
            DeviceRef {
                id: format!("{}-{vendor_id}", t.as_str()),
                user_id: USER.to_owned(),
                device_type: t,
                vendor_id,
                site_id: Some(sim.plant_id(site)),
            },
            world_id.as_str(),
        )
    }
}

/// The world's truth for one device, in the normalized units.
fn truth(world: &World, e: &ExpectedDevice) -> Vec<Expectation> {
    let id = DeviceId::new(e.world_id.clone());
    match e.device.device_type {
        VendorType::Inverter => {
            let inv = world.inverter(&id).unwrap();
            vec![
                Expectation::kw("/productionState/productionRate", inv.production_w / 1000.0),
                Expectation::bool("/productionState/isProducing", inv.production_w > 0.0),
                Expectation::kwh("/productionState/totalLifetimeProduction", inv.lifetime_kwh),
                Expectation::not_null("/productionState/lastUpdated"),
                Expectation::bool("/isReachable", inv.online),
                Expectation::string("/timezone", "Europe/Berlin"),
                Expectation::string("/information/id", e.device.vendor_id.clone()),
                Expectation::string("/information/brand", "SMA"),
            ]
        }
        VendorType::Battery => {
            let b = world.battery(&id).unwrap();
            vec![
                Expectation::percent("/chargeState/batteryLevel", b.soc_pct),
                Expectation::kw("/chargeState/chargeRate", b.power_w / 1000.0),
                Expectation::null("/chargeState/batteryCapacity"),
                Expectation::null("/config/operationMode"),
                Expectation::not_null("/chargeState/lastUpdated"),
                Expectation::bool("/isReachable", b.online),
                Expectation::bool("/capabilities/selfReliance/isCapable", false),
            ]
        }
        _ => {
            let m = world.meter(&id).unwrap();
            vec![
                Expectation::kw("/energyState/power", m.power_w / 1000.0),
                Expectation::not_null("/energyState/lastUpdated"),
                Expectation::bool("/isReachable", m.online),
            ]
        }
    }
}

#[async_trait]
impl ConformanceTarget for Sma {
    type World = World;

    async fn start(&self, options: StartOptions) -> anyhow::Result<Harness<World>> {
        let clock = Arc::new(ManualClock::new(start_time()));
        let world = World::new(options.seed, clock.clone(), WorldConfig::default());

        // Alice: a full SMA home (and a SolarEdge inverter SMA does not see), and a PV-only
        // plant on the garage.
        let home = world.add_site(site("Sonnenhof"));
        let inv = world.add_inverter(&home, inverter("Roof south", 8000.0, 12_345.0))?;
        let bat = world.add_battery(
            &home,
            BatterySpec {
                vendor: WORLD_VENDOR.to_owned(),
                name: "Sunny Boy Storage".to_owned(),
                capacity_kwh: 10.0,
                soc_pct: 40.0,
                reserve_pct: 10.0,
                mode: BatteryMode::SelfReliance,
                max_charge_w: 5000.0,
                max_discharge_w: 5000.0,
                cheap_window: (1.0, 5.0),
            },
        )?;
        let mtr = world.add_meter(
            &home,
            MeterSpec { vendor: WORLD_VENDOR.to_owned(), name: "Home Manager".to_owned() },
        )?;
        world.add_inverter(
            &home,
            InverterSpec { vendor: "solaredge".to_owned(), ..InverterSpec::default() },
        )?;
        let garage = world.add_site(site("Garage roof"));
        let garage_inv = world.add_inverter(&garage, inverter("Garage", 3000.0, 2_000.0))?;

        // Bob: another SMA home, never Alice's.
        let bob = world.add_site(site("Bob's house"));
        world.add_inverter(&bob, inverter("Bob's roof", 6000.0, 5_000.0))?;
        world.add_battery(
            &bob,
            BatterySpec { vendor: WORLD_VENDOR.to_owned(), ..BatterySpec::default() },
        )?;
        world.add_meter(
            &bob,
            MeterSpec { vendor: WORLD_VENDOR.to_owned(), name: "SHM".to_owned() },
        )?;

        // Let the physics settle into the morning (PV up, battery charging).
        clock.advance(Duration::from_secs(120));
        world.advance_to(clock.now());

        let sim = SmaSim::new(world.clone());
        sim.create_account(std::slice::from_ref(&bob));
        let link = sim.create_account(&[home.clone(), garage.clone()]);

        let mut host = SimHost::new(clock.clone());
        host.mount(PREFIX, sim.router())?;
        let log = host.request_log();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}{PREFIX}", listener.local_addr()?);
        let server = ServerGuard::new(tokio::spawn(host.serve(listener)));

        let config = SmaConfig {
            api_base_url: base.clone(),
            auth_base_url: base,
            client_id: sim.config().client_id.clone(),
            client_secret: sim.config().client_secret.clone(),
            request_timeout: options.request_timeout,
            bucket_size: DEFAULT_BUCKET_SIZE,
        };
        let adapter = SmaAdapter::new(config, clock.clone());
        let credentials = adapter
            .exchange_code(&link.authorization_code, &link.redirect_uri)
            .await
            .map_err(|e| anyhow::anyhow!("linking failed: {e}"))?;
        let account = AccountRef {
            user_id: USER.to_owned(),
            vendor: "SMA".to_owned(),
            account_id: link.account_id.clone(),
            credentials,
        };

        let devices = vec![
            Sma::expected(&sim, VendorType::Inverter, &inv, &home),
            Sma::expected(&sim, VendorType::Battery, &bat, &home),
            Sma::expected(&sim, VendorType::Meter, &mtr, &home),
            Sma::expected(&sim, VendorType::Inverter, &garage_inv, &garage),
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
            world: world.clone(),
            requests: Arc::new(SimRequests::new(log, PREFIX)),
            devices,
            commands: Vec::new(),
            unsupported,
            sleeping: Vec::new(),
            control: Box::new(Control { world, sim }),
            truth: Box::new(truth),
            keep_alive: vec![Box::new(server)],
        })
    }

    /// SMA's token bucket per API credential, refilled every 5 minutes (announcement of the
    /// rate limit from 1 July 2025). Its size depends on the contract package and is not
    /// published: the numbers are the assumed default package of 300 requests per refill
    /// (`DEFAULT_BUCKET_SIZE`), i.e. 60 a minute on average with a burst of the whole bucket.
    /// No daily quota, no per-request price, no published concurrency limit (4 assumed).
    fn published_limits(&self) -> VendorLimits {
        VendorLimits {
            requests_per_minute: DEFAULT_BUCKET_SIZE / 5,
            burst: DEFAULT_BUCKET_SIZE,
            rate_scope: QuotaScope::Key,
            daily_quota: None,
            max_concurrent: 4,
            pricing: None,
        }
    }

    /// Access tokens of about 5 minutes, refresh tokens rotated but not single-use, and a
    /// revoked access token answered exactly like an expired one (401 `invalid_token`).
    fn auth(&self) -> AuthBehaviour {
        AuthBehaviour {
            refreshes: true,
            single_use_refresh_tokens: false,
            revoked_token_reads_as_expired: true,
        }
    }
}

oemgate_testkit::conformance_tests!(Sma);
