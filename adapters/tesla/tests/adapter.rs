//! The Tesla adapter against the simulated Tesla cloud over the shared world, through the
//! `VendorAdapter` trait. The simulator is mounted under `/tesla` of an `oemgate_sim::SimHost`,
//! as in the gateway.
//!
//! Time only moves through the shared `ManualClock`; nothing sleeps.

// clippy.toml allows unwrap inside #[test] fns only; the helpers here are test code too.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use oemgate_core::{
    AccountRef, AdapterError, Battery, BatteryChargeStatus, BatteryConfigOperationMode,
    BatteryOperationMode, Clock, Command, DeviceRef, DeviceState, ErrorKind, ManualClock,
    Observation, PowerDeliveryState, Vehicle, VendorAdapter, VendorType,
};
use oemgate_sim::{
    BatteryMode, BatterySpec, DeviceId, DrivingPattern, Fault, InverterSpec, LatencyProfile,
    PowerState, RequestLog, SimHost, SiteId, SiteSpec, VehicleSpec, World, WorldConfig,
};
use oemgate_tesla::sim::{Region, TeslaSim, WORLD_VENDOR};
use oemgate_tesla::{CommandRefused, EXTRA_API_BASE_URL, TeslaAdapter, TeslaConfig};

const REDIRECT: &str = "https://oemgate.example/callback";
const PREFIX: &str = "/tesla";
/// Every Tesla command lands exactly this long after it is accepted.
const LATENCY_SECS: u64 = 20;

struct Harness {
    clock: Arc<ManualClock>,
    world: World,
    sim: TeslaSim,
    log: RequestLog,
    adapter: TeslaAdapter,
    /// `http://127.0.0.1:port/tesla`
    base: String,
    site: SiteId,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn start_time() -> DateTime<Utc> {
    // A Saturday evening: no commute in the world's driving plans.
    Utc.with_ymd_and_hms(2025, 3, 1, 18, 0, 0).unwrap()
}

async fn harness() -> Harness {
    let clock = Arc::new(ManualClock::new(start_time()));
    let config = WorldConfig {
        latency: HashMap::from([(
            WORLD_VENDOR.to_owned(),
            LatencyProfile::fixed(LATENCY_SECS as f64),
        )]),
        ..WorldConfig::default()
    };
    let world = World::new(42, clock.clone(), config);
    let site = world.add_site(SiteSpec {
        name: "Villa Tesla".into(),
        latitude: 59.91,
        longitude: 10.75,
        ..SiteSpec::default()
    });
    let sim = TeslaSim::new(world.clone());
    let mut host = SimHost::new(clock.clone());
    host.mount(PREFIX, sim.router()).unwrap();
    let log = host.request_log();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}{PREFIX}", listener.local_addr().unwrap());
    let server = tokio::spawn(host.serve(listener));
    let adapter = TeslaAdapter::new(config_for(&base), clock.clone());
    Harness { clock, world, sim, log, adapter, base, site, server }
}

fn config_for(base: &str) -> TeslaConfig {
    TeslaConfig {
        api_base_url: base.to_owned(),
        auth_base_url: base.to_owned(),
        client_id: "oemgate-test".into(),
        client_secret: "test-secret".into(),
        request_timeout: Duration::from_secs(10),
    }
}

/// A car that stays home.
fn homebody() -> VehicleSpec {
    VehicleSpec {
        pattern: DrivingPattern { commute_km: None, errands_per_week: 0.0, plug_in_share: 0.0 },
        ..VehicleSpec::default()
    }
}

fn plugged_stopped() -> VehicleSpec {
    VehicleSpec {
        name: "Garage Y".into(),
        battery_level: 50.0,
        charge_limit: 90.0,
        plugged_in: true,
        charging: false,
        amps: 16,
        max_amps: 16,
        odometer_km: 20_000.0,
        ..homebody()
    }
}

fn asleep() -> VehicleSpec {
    VehicleSpec { name: "Sleepy".into(), power_state: PowerState::Asleep, ..homebody() }
}

impl Harness {
    fn add_vehicle(&self, spec: VehicleSpec) -> DeviceId {
        self.world.add_vehicle(&self.site, spec).unwrap()
    }

    fn add_powerwall(&self) -> DeviceId {
        self.world
            .add_battery(&self.site, BatterySpec { soc_pct: 60.0, ..BatterySpec::default() })
            .unwrap()
    }

    /// Links `devices` to a new simulated account and exchanges its code.
    async fn link(&self, devices: &[DeviceId]) -> (String, AccountRef) {
        let (account_id, code) = self.sim.link(devices).unwrap();
        self.account(account_id, &code).await
    }

    async fn account(&self, account_id: String, code: &str) -> (String, AccountRef) {
        let credentials = self.adapter.exchange_code(code, REDIRECT).await.unwrap();
        let account = AccountRef {
            user_id: "user-1".into(),
            vendor: "TESLA".into(),
            account_id: account_id.clone(),
            credentials,
        };
        (account_id, account)
    }

    fn vin(&self, vehicle: &DeviceId) -> String {
        self.sim.vin(vehicle).unwrap()
    }

    fn device(&self, vehicle: &DeviceId) -> DeviceRef {
        let vin = self.vin(vehicle);
        DeviceRef {
            id: format!("veh-{vin}"),
            user_id: "user-1".into(),
            device_type: VendorType::Vehicle,
            vendor_id: vin,
            site_id: None,
        }
    }

    fn site_device(&self, battery: &DeviceId) -> DeviceRef {
        let id = self.sim.energy_site_id(battery.as_str()).unwrap();
        DeviceRef {
            id: format!("bat-{id}"),
            user_id: "user-1".into(),
            device_type: VendorType::Battery,
            vendor_id: id.clone(),
            site_id: Some(id),
        }
    }

    fn advance(&self, secs: u64) {
        self.clock.advance(Duration::from_secs(secs));
    }

    fn requests(&self) -> usize {
        self.log.count(PREFIX)
    }
}

fn vehicle_device(vin: &str) -> DeviceRef {
    DeviceRef {
        id: format!("veh-{vin}"),
        user_id: "user-1".into(),
        device_type: VendorType::Vehicle,
        vendor_id: vin.to_owned(),
        site_id: None,
    }
}

fn vehicle(obs: &Observation) -> &Vehicle {
    match &obs.state {
        DeviceState::Vehicle(v) => v,
        other => panic!("not a vehicle: {other:?}"),
    }
}

fn battery(obs: &Observation) -> &Battery {
    match &obs.state {
        DeviceState::Battery(b) => b,
        other => panic!("not a battery: {other:?}"),
    }
}

fn kind<T: std::fmt::Debug>(result: Result<T, AdapterError>) -> ErrorKind {
    result.unwrap_err().kind()
}

#[tokio::test]
async fn code_exchange_discover_and_poll_an_online_car() {
    let h = harness().await;
    let online = h.add_vehicle(plugged_stopped());
    let sleeping = h.add_vehicle(asleep());
    let powerwall = h.add_powerwall();
    let other = h.add_vehicle(homebody());
    let (_, account) = h.link(&[online.clone(), sleeping.clone(), powerwall.clone()]).await;
    assert_eq!(account.credentials.expires_at, Some(start_time() + chrono::Duration::hours(8)));
    assert!(account.credentials.refresh_token.is_some());
    // Another account's car is not listed.
    h.sim.link(&[other]).unwrap();

    let mut found = h.adapter.discover(&account).await.unwrap();
    found.sort_by(|a, b| a.vendor_id.cmp(&b.vendor_id));
    let site_id = h.sim.energy_site_id(powerwall.as_str()).unwrap();
    let mut expected = vec![h.vin(&online), h.vin(&sleeping), site_id.clone()];
    expected.sort();
    assert_eq!(found.iter().map(|d| d.vendor_id.clone()).collect::<Vec<_>>(), expected);
    let site = found.iter().find(|d| d.vendor_id == site_id).unwrap();
    assert_eq!(site.device_type, VendorType::Battery);
    assert_eq!(site.site_id.as_deref(), Some(site_id.as_str()));
    assert_eq!(site.display_name.as_deref(), Some("Villa Tesla"));
    assert_eq!(found.iter().filter(|d| d.device_type == VendorType::Vehicle).count(), 2);
    assert!(found.iter().any(|d| d.display_name.as_deref() == Some("Garage Y")));

    let before = h.requests();
    let obs = h.adapter.poll(&account, &h.device(&online)).await.unwrap();
    assert!(!obs.asleep);
    assert_eq!(obs.requests, 2, "vehicles list + vehicle_data");
    assert_eq!(h.requests() - before, 2, "the host saw as many requests as declared");
    assert_eq!(obs.observed_at, start_time());
    let v = vehicle(&obs);
    let vin = h.vin(&online);
    assert_eq!(v.id, format!("veh-{vin}"));
    assert_eq!(v.user_id, "user-1");
    assert_eq!(v.is_reachable, Some(true));
    assert_eq!(v.last_seen, start_time());
    let cs = &v.charge_state;
    assert_eq!(cs.battery_level, Some(50.0));
    assert_eq!(cs.is_plugged_in, Some(true));
    assert_eq!(cs.is_charging, Some(false));
    assert_eq!(cs.is_fully_charged, Some(false));
    assert_eq!(cs.power_delivery_state, PowerDeliveryState::PluggedInStopped);
    assert_eq!(cs.charge_limit, Some(90.0));
    assert_eq!(cs.max_current, Some(16.0));
    assert_eq!(cs.charge_rate, None);
    assert_eq!(cs.last_updated, Some(start_time()));
    // 50 % of 75 kWh at 6 km/kWh = 225 km, sent as miles and mapped back.
    let range = cs.range.unwrap();
    assert!((range - 225.0).abs() < 0.2, "range {range}");
    let odo = v.odometer.distance.unwrap();
    assert!((odo - 20_000.0).abs() < 0.2, "odometer {odo}");
    assert_eq!(v.location.latitude, Some(59.91));
    assert_eq!(v.location.longitude, Some(10.75));
    assert_eq!(v.information.vin.as_deref(), Some(vin.as_str()));
    assert_eq!(v.information.brand.as_deref(), Some("Tesla"));
    assert_eq!(v.information.model.as_deref(), Some("Model Y"));
    assert_eq!(v.information.year, Some(2024.0));
    assert_eq!(v.information.display_name.as_deref(), Some("Garage Y"));
    assert!(v.capabilities.start_charging.is_capable);

    let counts = h.sim.request_counts();
    assert_eq!(counts.token, 1);
    assert_eq!(counts.products, 1);
    assert_eq!(counts.vehicle_list, 1);
    assert_eq!(counts.vehicle_data, 1);
    assert_eq!(counts.wakes, 0);
    assert!((h.sim.cost_usd() - 3.0 * 0.002).abs() < 1e-12);
}

#[tokio::test]
async fn polling_an_asleep_car_never_wakes_it() {
    let h = harness().await;
    let car = h.add_vehicle(asleep());
    let (_, account) = h.link(std::slice::from_ref(&car)).await;
    for _ in 0..6 {
        let obs = h.adapter.poll(&account, &h.device(&car)).await.unwrap();
        assert!(obs.asleep);
        assert_eq!(obs.requests, 1, "only the vehicles list");
        let v = vehicle(&obs);
        assert_eq!(v.is_reachable, Some(false));
        assert_eq!(v.charge_state.battery_level, None);
        assert_eq!(v.charge_state.power_delivery_state, PowerDeliveryState::Unknown);
        assert_eq!(v.location.latitude, None);
        assert_eq!(v.information.display_name.as_deref(), Some("Sleepy"));
        h.advance(300);
    }
    let counts = h.sim.request_counts();
    assert_eq!(counts.wakes, 0);
    assert_eq!(counts.vehicle_data, 0);
    assert_eq!(h.world.wake_count(&car).requested, 0);
    assert_eq!(h.world.vehicle(&car).unwrap().power_state, PowerState::Asleep);

    // An offline car reads the same way.
    h.world.set_vehicle_power_state(&car, PowerState::Offline).unwrap();
    let obs = h.adapter.poll(&account, &h.device(&car)).await.unwrap();
    assert!(obs.asleep);
}

#[tokio::test]
async fn expired_tokens_refresh_and_single_use_refresh_tokens() {
    let h = harness().await;
    let car = h.add_vehicle(plugged_stopped());
    let (account_id, account) = h.link(std::slice::from_ref(&car)).await;
    let dev = h.device(&car);
    h.adapter.poll(&account, &dev).await.unwrap();

    h.advance(8 * 3600 + 1);
    // Known expiry: refused locally, no billed 401.
    let before = h.sim.request_counts();
    assert_eq!(kind(h.adapter.poll(&account, &dev).await), ErrorKind::AuthExpired);
    assert_eq!(h.sim.request_counts(), before);
    // Unknown expiry: Tesla's 401 "token expired (401)".
    let mut no_expiry = account.clone();
    no_expiry.credentials.expires_at = None;
    let err = h.adapter.poll(&no_expiry, &dev).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AuthExpired);
    assert!(err.message().contains("token expired"), "{err}");

    let fresh = h.adapter.refresh_credentials(&account).await.unwrap();
    assert_ne!(fresh.access_token, account.credentials.access_token);
    assert_ne!(fresh.refresh_token, account.credentials.refresh_token);
    assert_eq!(fresh.expires_at, Some(h.clock.now() + chrono::Duration::hours(8)));
    let refreshed = AccountRef { credentials: fresh, ..account.clone() };
    assert!(h.adapter.poll(&refreshed, &dev).await.is_ok());

    // The old refresh token is spent: the user must link again.
    let err = h.adapter.refresh_credentials(&account).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorized);
    // Codes are single-use too.
    let code = h.sim.authorization_code(&account_id).unwrap();
    h.adapter.exchange_code(&code, REDIRECT).await.unwrap();
    assert_eq!(kind(h.adapter.exchange_code(&code, REDIRECT).await), ErrorKind::Unauthorized);

    // A shorter configured lifetime shows in expires_in.
    h.sim.set_access_token_lifetime(Duration::from_secs(600));
    let code = h.sim.authorization_code(&account_id).unwrap();
    let short = h.adapter.exchange_code(&code, REDIRECT).await.unwrap();
    assert_eq!(short.expires_at, Some(h.clock.now() + chrono::Duration::minutes(10)));
}

#[tokio::test]
async fn faults_map_to_error_kinds() {
    let h = harness().await;
    let car = h.add_vehicle(plugged_stopped());
    let powerwall = h.add_powerwall();
    let (_, account) = h.link(&[car.clone(), powerwall.clone()]).await;
    let dev = h.device(&car);
    let site = h.site_device(&powerwall);
    let faults = h.world.faults();

    faults.set(WORLD_VENDOR, Fault::RateLimit { retry_after: Duration::from_secs(30) }, None);
    let err = h.adapter.poll(&account, &dev).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RateLimited);
    assert_eq!(err.retry_after(), Some(Duration::from_secs(30)));
    assert_eq!(kind(h.adapter.poll(&account, &site).await), ErrorKind::RateLimited);

    faults.set(WORLD_VENDOR, Fault::ServerError { status: 500 }, None);
    assert_eq!(kind(h.adapter.poll(&account, &dev).await), ErrorKind::Transient);
    assert_eq!(kind(h.adapter.discover(&account).await), ErrorKind::Transient);

    faults.set(WORLD_VENDOR, Fault::Outage, None);
    assert_eq!(kind(h.adapter.poll(&account, &site).await), ErrorKind::Transient);
    assert_eq!(kind(h.adapter.refresh_credentials(&account).await), ErrorKind::Transient);

    for fault in [Fault::Malformed, Fault::Truncated] {
        faults.set(WORLD_VENDOR, fault.clone(), None);
        for device in [&dev, &site] {
            let err = h.adapter.poll(&account, device).await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Protocol, "{fault:?}");
            assert!(std::error::Error::source(&err).unwrap().is::<serde_json::Error>());
        }
    }

    // Faults end on the world's clock.
    faults.clear(WORLD_VENDOR);
    faults.set(WORLD_VENDOR, Fault::ServerError { status: 503 }, Some(Duration::from_secs(60)));
    assert_eq!(kind(h.adapter.poll(&account, &dev).await), ErrorKind::Transient);
    h.advance(61);
    assert!(h.adapter.poll(&account, &dev).await.is_ok());
    assert!(h.adapter.poll(&account, &site).await.is_ok());

    // 5xx answers are not billed; everything below 500 is.
    let all = h.sim.request_counts();
    let billed = h.sim.billed_counts();
    assert_eq!(all.vehicle_list - billed.vehicle_list, 2, "the 500 and the 503");
    assert_eq!(all.energy_data - billed.energy_data, 1, "live_status during the outage");
    assert_eq!(all.products - billed.products, 1, "discover during the 500");
    assert_eq!(all.token - billed.token, 1, "the refresh during the outage");
    assert!(billed.cost_usd() < all.cost_usd());

    // Revoked tokens: calls and refreshes both need a relink (login_required).
    faults.set(WORLD_VENDOR, Fault::RevokeTokens, None);
    assert_eq!(kind(h.adapter.poll(&account, &dev).await), ErrorKind::Unauthorized);
    assert_eq!(kind(h.adapter.poll(&account, &site).await), ErrorKind::Unauthorized);
    assert_eq!(kind(h.adapter.refresh_credentials(&account).await), ErrorKind::Unauthorized);

    // A device that is not on the account.
    let (_, other) = h.link(&[]).await;
    assert_eq!(kind(h.adapter.poll(&other, &dev).await), ErrorKind::NotFound);
    assert_eq!(kind(h.adapter.poll(&other, &site).await), ErrorKind::NotFound);
    assert_eq!(
        kind(h.adapter.poll(&other, &vehicle_device("not/a/vin")).await),
        ErrorKind::NotFound
    );
}

#[tokio::test]
async fn start_and_stop_charging_take_effect_after_the_latency() {
    let h = harness().await;
    let car = h.add_vehicle(plugged_stopped());
    let (_, account) = h.link(std::slice::from_ref(&car)).await;
    let dev = h.device(&car);

    let receipt = h.adapter.execute(&account, &dev, &Command::StartCharging).await.unwrap();
    assert_eq!(receipt.requests, 1);
    assert_eq!(h.sim.request_counts().commands, 1);
    // Accepted is not done: at the same instant the car has not started.
    let obs = h.adapter.poll(&account, &dev).await.unwrap();
    assert_eq!(vehicle(&obs).charge_state.is_charging, Some(false));
    // Starting again while the first start is in flight: already (about to be) charging.
    let err = h.adapter.execute(&account, &dev, &Command::StartCharging).await.unwrap_err();
    assert!(CommandRefused::of(&err).unwrap().is_no_op());

    h.advance(LATENCY_SECS + 1);
    let obs = h.adapter.poll(&account, &dev).await.unwrap();
    let cs = &vehicle(&obs).charge_state;
    assert_eq!(cs.is_charging, Some(true));
    assert_eq!(cs.power_delivery_state, PowerDeliveryState::PluggedInCharging);
    assert_eq!(cs.charge_rate, Some(11.0), "16 A x 230 V x 3 phases, capped at 11 kW");
    assert!(cs.charge_time_remaining.unwrap() > 0.0);

    // Starting again: the car is already charging (a no-op refusal).
    let err = h.adapter.execute(&account, &dev, &Command::StartCharging).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Rejected);
    assert!(CommandRefused::of(&err).unwrap().is_no_op());

    // Current limit.
    h.adapter.execute(&account, &dev, &Command::SetMaxCurrent { amps: 10.0 }).await.unwrap();
    h.advance(LATENCY_SECS + 1);
    let obs = h.adapter.poll(&account, &dev).await.unwrap();
    assert_eq!(vehicle(&obs).charge_state.max_current, Some(10.0));
    let err =
        h.adapter.vehicles().unwrap().set_max_current(&account, &dev, 10.0).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Rejected);
    assert!(CommandRefused::of(&err).unwrap().is_no_op());
    let before = h.requests();
    assert_eq!(
        kind(h.adapter.execute(&account, &dev, &Command::SetMaxCurrent { amps: f64::NAN }).await),
        ErrorKind::Rejected
    );
    assert_eq!(h.requests(), before, "refused locally");

    h.adapter.execute(&account, &dev, &Command::StopCharging).await.unwrap();
    h.advance(LATENCY_SECS + 1);
    let obs = h.adapter.poll(&account, &dev).await.unwrap();
    assert_eq!(
        vehicle(&obs).charge_state.power_delivery_state,
        PowerDeliveryState::PluggedInStopped
    );
    let err = h.adapter.execute(&account, &dev, &Command::StopCharging).await.unwrap_err();
    assert!(CommandRefused::of(&err).unwrap().is_no_op());
    assert_eq!(h.world.command_stats(WORLD_VENDOR).applied, 3);
}

#[tokio::test]
async fn start_charging_an_unplugged_car_fails_its_precondition() {
    let h = harness().await;
    let car = h.add_vehicle(homebody());
    let (_, account) = h.link(std::slice::from_ref(&car)).await;
    let err =
        h.adapter.execute(&account, &h.device(&car), &Command::StartCharging).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PreconditionFailed);
    let refused = CommandRefused::of(&err).unwrap();
    assert_eq!(refused.reason, "disconnected");
    assert!(!refused.is_no_op());
}

#[tokio::test]
async fn commands_to_a_sleeping_car_need_a_wake_up() {
    let h = harness().await;
    let car = h.add_vehicle(VehicleSpec { power_state: PowerState::Asleep, ..plugged_stopped() });
    let (_, account) = h.link(std::slice::from_ref(&car)).await;
    let dev = h.device(&car);
    assert_eq!(
        kind(h.adapter.execute(&account, &dev, &Command::StartCharging).await),
        ErrorKind::DeviceAsleep
    );
    let receipt = h.adapter.execute(&account, &dev, &Command::WakeUp).await.unwrap();
    assert_eq!(receipt.requests, 1);
    assert_eq!(h.sim.request_counts().wakes, 1);
    assert_eq!(h.world.wake_count(&car).requested, 1);
    // Still asleep right after the wake-up is accepted; online within 30 s.
    assert!(h.adapter.poll(&account, &dev).await.unwrap().asleep);
    h.advance(31);
    let obs = h.adapter.poll(&account, &dev).await.unwrap();
    assert!(!obs.asleep);
    assert_eq!(vehicle(&obs).charge_state.battery_level, Some(50.0));
    assert_eq!(h.world.wake_count(&car).performed, 1);
    h.adapter.execute(&account, &dev, &Command::StartCharging).await.unwrap();

    // Left alone (polls only list), an idle car falls asleep again after 15 minutes.
    let idle = h.add_vehicle(homebody());
    h.sim.add_to_account(&account.account_id, std::slice::from_ref(&idle)).unwrap();
    h.advance(16 * 60);
    assert!(h.adapter.poll(&account, &h.device(&idle)).await.unwrap().asleep);
}

#[tokio::test]
async fn batch_polls_share_one_vehicles_list() {
    let h = harness().await;
    let a = h.add_vehicle(plugged_stopped());
    let b = h.add_vehicle(asleep());
    let powerwall = h.add_powerwall();
    let (_, account) = h.link(&[a.clone(), b.clone(), powerwall.clone()]).await;
    let devices = [
        h.device(&a),
        h.device(&b),
        vehicle_device("5YJ3E1EA0RF999999"),
        h.site_device(&powerwall),
    ];
    let before = h.requests();
    let results = h.adapter.poll_batch(&account, &devices).await;
    assert_eq!(results.len(), 4);
    let first = results[0].as_ref().unwrap();
    let second = results[1].as_ref().unwrap();
    assert!(!first.asleep && second.asleep);
    assert_eq!(first.requests + second.requests, 2, "one list + one vehicle_data");
    assert_eq!(results[2].as_ref().unwrap_err().kind(), ErrorKind::NotFound);
    let site = results[3].as_ref().unwrap();
    assert_eq!(site.requests, 2, "live_status + site_info");
    assert_eq!(h.sim.request_counts().vehicle_list, 1);
    assert_eq!(h.requests() - before, 4);

    h.world.faults().set(WORLD_VENDOR, Fault::ServerError { status: 500 }, None);
    let results = h.adapter.poll_batch(&account, &devices).await;
    assert!(results.iter().all(|r| r.as_ref().unwrap_err().kind() == ErrorKind::Transient));
}

#[tokio::test]
async fn region_and_transport_failures() {
    let h = harness().await;
    let car = h.add_vehicle(plugged_stopped());
    let (account_id, code) = h.sim.link_in_region(Region::Eu, std::slice::from_ref(&car)).unwrap();
    let (_, mut account) = h.account(account_id.clone(), &code).await;
    let dev = h.device(&car);

    // The configured (region-less) base URL is the wrong region for this account.
    let err = h.adapter.poll(&account, &dev).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Protocol);
    let eu = format!("{}/eu", h.base);
    assert!(err.message().contains(&eu), "{err}");
    // So is another region's base path.
    account.credentials.extra.insert(EXTRA_API_BASE_URL.into(), format!("{}/na", h.base));
    assert_eq!(kind(h.adapter.poll(&account, &dev).await), ErrorKind::Protocol);
    // The base URL the error names works.
    account.credentials.extra.insert(EXTRA_API_BASE_URL.into(), eu.clone());
    assert!(h.adapter.poll(&account, &dev).await.is_ok());
    // Unbinding the account serves it everywhere again.
    h.sim.set_region(&account_id, None).unwrap();
    account.credentials.extra.clear();
    assert!(h.adapter.poll(&account, &dev).await.is_ok());

    // A closed port: connection refused, transient.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let closed_base = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let broken = TeslaAdapter::new(config_for(&closed_base), h.clock.clone());
    assert_eq!(kind(broken.poll(&account, &dev).await), ErrorKind::Transient);

    // The account's own region URL wins over the configured one.
    account.credentials.extra.insert(EXTRA_API_BASE_URL.into(), eu);
    assert!(broken.poll(&account, &dev).await.is_ok());
}

#[tokio::test]
async fn powerwall_reads_follow_the_world_and_modes_round_trip() {
    let h = harness().await;
    h.world
        .add_inverter(&h.site, InverterSpec { vendor: "enphase".into(), ..InverterSpec::default() })
        .unwrap();
    let powerwall = h.add_powerwall();
    let (_, account) = h.link(std::slice::from_ref(&powerwall)).await;
    let site = h.site_device(&powerwall);

    let before = h.requests();
    let obs = h.adapter.poll(&account, &site).await.unwrap();
    assert_eq!(obs.requests, 2);
    assert_eq!(h.requests() - before, 2);
    assert!(!obs.asleep);
    let b = battery(&obs);
    let truth = h.world.battery(&powerwall).unwrap();
    assert_eq!(b.id, site.id);
    assert!(b.is_reachable);
    let level = b.charge_state.battery_level.unwrap();
    assert!((level - truth.soc_pct).abs() < 0.01, "{level} vs {}", truth.soc_pct);
    assert_eq!(b.charge_state.battery_capacity, Some(13.5));
    assert_eq!(b.charge_state.discharge_limit, Some(20.0));
    assert_eq!(b.config.operation_mode, Some(BatteryConfigOperationMode::SelfReliance));
    // World: positive while charging; Enode: positive while charging (Tesla flips it twice).
    let rate = b.charge_state.charge_rate.unwrap();
    assert!((rate - truth.power_w / 1000.0).abs() < 0.051, "{rate} vs {}", truth.power_w);
    let expected_status = if truth.power_w.abs() < 50.0 {
        BatteryChargeStatus::Idle
    } else if truth.power_w > 0.0 {
        BatteryChargeStatus::Charging
    } else {
        BatteryChargeStatus::Discharging
    };
    assert_eq!(b.charge_state.status, Some(expected_status));
    assert_eq!(b.information.brand, "Tesla");
    assert_eq!(b.information.model, "Powerwall");
    assert_eq!(b.information.site_name, "Villa Tesla");
    assert_eq!(b.information.id, site.vendor_id);
    assert!(!b.capabilities.export_focus.is_capable);

    // IMPORT_FOCUS is Tesla's backup mode; it lands after the latency.
    let mode = |mode| Command::SetOperationMode { mode };
    h.adapter.execute(&account, &site, &mode(BatteryOperationMode::ImportFocus)).await.unwrap();
    assert_eq!(h.world.battery(&powerwall).unwrap().mode, BatteryMode::SelfReliance);
    h.advance(LATENCY_SECS + 1);
    assert_eq!(h.world.battery(&powerwall).unwrap().mode, BatteryMode::Backup);
    let b = battery(&h.adapter.poll(&account, &site).await.unwrap()).clone();
    assert_eq!(b.config.operation_mode, Some(BatteryConfigOperationMode::ImportFocus));
    // Setting it again is accepted (Tesla answers "Updated").
    h.adapter.execute(&account, &site, &mode(BatteryOperationMode::ImportFocus)).await.unwrap();
    h.adapter.execute(&account, &site, &mode(BatteryOperationMode::TimeOfUse)).await.unwrap();
    h.advance(LATENCY_SECS + 1);
    assert_eq!(h.world.battery(&powerwall).unwrap().mode, BatteryMode::TimeOfUse);

    // EXPORT_FOCUS does not exist at Tesla: refused before any request.
    let before = h.requests();
    let err = h.adapter.execute(&account, &site, &mode(BatteryOperationMode::ExportFocus)).await;
    assert_eq!(kind(err), ErrorKind::Unsupported);
    assert_eq!(h.requests(), before);

    // The backup reserve is the discharge limit.
    h.adapter.set_backup_reserve(&account, &site, 35.0).await.unwrap();
    h.advance(LATENCY_SECS + 1);
    let b = battery(&h.adapter.poll(&account, &site).await.unwrap()).clone();
    assert_eq!(b.charge_state.discharge_limit, Some(35.0));

    // An offline gateway: the cloud repeats the last values, which go stale; commands fail.
    h.world.set_device_online(&powerwall, false).unwrap();
    h.advance(20 * 60);
    let b = battery(&h.adapter.poll(&account, &site).await.unwrap()).clone();
    assert!(!b.is_reachable);
    assert!(b.charge_state.last_updated.unwrap() < h.clock.now() - chrono::Duration::minutes(15));
    let err = h.adapter.execute(&account, &site, &mode(BatteryOperationMode::SelfReliance)).await;
    assert_eq!(kind(err), ErrorKind::DeviceOffline);
    h.world.set_device_online(&powerwall, true).unwrap();
    let b = battery(&h.adapter.poll(&account, &site).await.unwrap()).clone();
    assert!(b.is_reachable);
}
