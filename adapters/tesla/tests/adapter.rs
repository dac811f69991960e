//! The Tesla adapter against the simulated Tesla cloud, through the `VendorAdapter` trait.
//!
//! Time only moves through the shared `ManualClock`; nothing sleeps.

// clippy.toml allows unwrap inside #[test] fns only; the helpers here are test code too.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use oemgate_core::{
    AccountRef, AdapterError, Clock, Command, DeviceRef, DeviceState, ErrorKind, ManualClock,
    Observation, PowerDeliveryState, Vehicle, VendorAdapter, VendorType,
};
use oemgate_tesla::sim::{Fault, PowerState, TeslaSim, VehicleSpec};
use oemgate_tesla::{CommandRefused, EXTRA_API_BASE_URL, TeslaAdapter, TeslaConfig};

const REDIRECT: &str = "https://oemgate.example/callback";

struct Harness {
    clock: Arc<ManualClock>,
    sim: TeslaSim,
    adapter: TeslaAdapter,
    base: String,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn start_time() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 3, 1, 18, 0, 0).unwrap()
}

async fn harness() -> Harness {
    let clock = Arc::new(ManualClock::new(start_time()));
    let sim = TeslaSim::new(42, clock.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(sim.clone().serve(listener));
    let adapter = TeslaAdapter::new(config(&base), clock.clone());
    Harness { clock, sim, adapter, base, server }
}

fn config(base: &str) -> TeslaConfig {
    TeslaConfig {
        api_base_url: base.to_owned(),
        auth_base_url: base.to_owned(),
        client_id: "oemgate-test".into(),
        client_secret: "test-secret".into(),
        request_timeout: Duration::from_secs(10),
    }
}

impl Harness {
    /// A linked account (via the authorization-code exchange).
    async fn link(&self) -> (String, AccountRef) {
        let (account_id, code) = self.sim.add_account("owner@example.com");
        let credentials = self.adapter.exchange_code(&code, REDIRECT).await.unwrap();
        let account = AccountRef {
            user_id: "user-1".into(),
            vendor: "TESLA".into(),
            account_id: account_id.clone(),
            credentials,
        };
        (account_id, account)
    }

    fn advance(&self, secs: u64) {
        self.clock.advance(Duration::from_secs(secs));
    }
}

fn device(vin: &str) -> DeviceRef {
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

fn plugged_stopped() -> VehicleSpec {
    VehicleSpec {
        display_name: Some("Garage Y".into()),
        battery_level: 50.0,
        charge_limit: 90.0,
        plugged_in: true,
        charging: false,
        amps: 16,
        max_amps: 16,
        odometer_km: 20_000.0,
        latitude: 59.91,
        longitude: 10.75,
        drives: Some(false),
        ..Default::default()
    }
}

fn kind<T: std::fmt::Debug>(result: Result<T, AdapterError>) -> ErrorKind {
    result.unwrap_err().kind()
}

#[tokio::test]
async fn code_exchange_discover_and_poll_an_online_car() {
    let h = harness().await;
    let (account_id, account) = h.link().await;
    assert_eq!(account.credentials.expires_at, Some(start_time() + chrono::Duration::hours(8)));
    assert!(account.credentials.refresh_token.is_some());

    let online = h.sim.add_vehicle(&account_id, plugged_stopped());
    let asleep = h.sim.add_vehicle(
        &account_id,
        VehicleSpec { power_state: PowerState::Asleep, drives: Some(false), ..Default::default() },
    );
    // Another account's car is not listed.
    h.sim.add_vehicle("someone-else", VehicleSpec::default());

    let mut found = h.adapter.discover(&account).await.unwrap();
    found.sort_by(|a, b| a.vendor_id.cmp(&b.vendor_id));
    let mut expected = vec![online.clone(), asleep.clone()];
    expected.sort();
    assert_eq!(found.iter().map(|d| d.vendor_id.clone()).collect::<Vec<_>>(), expected);
    assert!(found.iter().all(|d| d.device_type == VendorType::Vehicle));
    assert!(found.iter().any(|d| d.display_name.as_deref() == Some("Garage Y")));

    let obs = h.adapter.poll(&account, &device(&online)).await.unwrap();
    assert!(!obs.asleep);
    assert_eq!(obs.requests, 2, "vehicles list + vehicle_data");
    assert_eq!(obs.observed_at, start_time());
    let v = vehicle(&obs);
    assert_eq!(v.id, format!("veh-{online}"));
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
    assert_eq!(v.information.vin.as_deref(), Some(online.as_str()));
    assert_eq!(v.information.brand.as_deref(), Some("Tesla"));
    assert_eq!(v.information.model.as_deref(), Some("Model Y"));
    assert_eq!(v.information.year, Some(2024.0));
    assert_eq!(v.information.display_name.as_deref(), Some("Garage Y"));
    assert!(v.capabilities.start_charging.is_capable);

    let counts = h.sim.request_counts();
    assert_eq!(counts.token, 1);
    assert_eq!(counts.vehicle_list, 2);
    assert_eq!(counts.vehicle_data, 1);
    assert_eq!(counts.wakes, 0);
}

#[tokio::test]
async fn polling_an_asleep_car_never_wakes_it() {
    let h = harness().await;
    let (account_id, account) = h.link().await;
    let vin = h.sim.add_vehicle(
        &account_id,
        VehicleSpec {
            display_name: Some("Sleepy".into()),
            power_state: PowerState::Asleep,
            drives: Some(false),
            ..Default::default()
        },
    );
    for _ in 0..6 {
        let obs = h.adapter.poll(&account, &device(&vin)).await.unwrap();
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
    assert_eq!(h.sim.vehicle(&vin).unwrap().power_state, PowerState::Asleep);

    // An offline car reads the same way.
    assert!(h.sim.set_power_state(&vin, PowerState::Offline));
    let obs = h.adapter.poll(&account, &device(&vin)).await.unwrap();
    assert!(obs.asleep);
}

#[tokio::test]
async fn expired_tokens_refresh_and_single_use_refresh_tokens() {
    let h = harness().await;
    let (account_id, account) = h.link().await;
    let vin = h.sim.add_vehicle(&account_id, plugged_stopped());
    h.adapter.poll(&account, &device(&vin)).await.unwrap();

    h.advance(8 * 3600 + 1);
    // Known expiry: refused locally, no billed 401.
    let before = h.sim.request_counts();
    assert_eq!(kind(h.adapter.poll(&account, &device(&vin)).await), ErrorKind::AuthExpired);
    assert_eq!(h.sim.request_counts(), before);
    // Unknown expiry: Tesla's 401 "token expired (401)".
    let mut no_expiry = account.clone();
    no_expiry.credentials.expires_at = None;
    let err = h.adapter.poll(&no_expiry, &device(&vin)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AuthExpired);
    assert!(err.message().contains("token expired"), "{err}");

    let fresh = h.adapter.refresh_credentials(&account).await.unwrap();
    assert_ne!(fresh.access_token, account.credentials.access_token);
    assert_ne!(fresh.refresh_token, account.credentials.refresh_token);
    assert_eq!(fresh.expires_at, Some(h.clock.now() + chrono::Duration::hours(8)));
    let refreshed = AccountRef { credentials: fresh, ..account.clone() };
    assert!(h.adapter.poll(&refreshed, &device(&vin)).await.is_ok());

    // The old refresh token is spent: the user must link again.
    let err = h.adapter.refresh_credentials(&account).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorized);
    // Codes are single-use too.
    let code = h.sim.authorization_code(&account_id).unwrap();
    h.adapter.exchange_code(&code, REDIRECT).await.unwrap();
    assert_eq!(kind(h.adapter.exchange_code(&code, REDIRECT).await), ErrorKind::Unauthorized);
}

#[tokio::test]
async fn faults_map_to_error_kinds() {
    let h = harness().await;
    let (account_id, account) = h.link().await;
    let vin = h.sim.add_vehicle(&account_id, plugged_stopped());
    let dev = device(&vin);

    h.sim.set_fault(Fault::RateLimit { retry_after: Duration::from_secs(30) });
    let err = h.adapter.poll(&account, &dev).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RateLimited);
    assert_eq!(err.retry_after(), Some(Duration::from_secs(30)));

    h.sim.set_fault(Fault::ServerError);
    assert_eq!(kind(h.adapter.poll(&account, &dev).await), ErrorKind::Transient);
    assert_eq!(kind(h.adapter.discover(&account).await), ErrorKind::Transient);

    h.sim.set_fault(Fault::Malformed);
    let err = h.adapter.poll(&account, &dev).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Protocol);
    assert!(std::error::Error::source(&err).unwrap().is::<serde_json::Error>());

    h.sim.set_fault(Fault::WrongRegion {
        base_url: "https://fleet-api.prd.eu.vn.cloud.tesla.com".into(),
    });
    let err = h.adapter.poll(&account, &dev).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Protocol);
    assert!(err.message().contains("https://fleet-api.prd.eu.vn.cloud.tesla.com"), "{err}");

    h.sim.clear_fault();
    assert!(h.adapter.poll(&account, &dev).await.is_ok());

    // 5xx answers are not billed; everything below 500 is.
    let all = h.sim.request_counts();
    let billed = h.sim.billed_counts();
    assert_eq!(all.vehicle_list - billed.vehicle_list, 2, "the two ServerError answers");

    // Revoked tokens: the access token stops working and refresh needs a relink.
    h.sim.set_fault(Fault::RevokeTokens);
    assert_eq!(kind(h.adapter.poll(&account, &dev).await), ErrorKind::AuthExpired);
    assert_eq!(kind(h.adapter.refresh_credentials(&account).await), ErrorKind::Unauthorized);

    // A device that is not on the account.
    let (_, other) = h.link().await;
    assert_eq!(kind(h.adapter.poll(&other, &dev).await), ErrorKind::NotFound);
    assert_eq!(kind(h.adapter.poll(&other, &device("not/a/vin")).await), ErrorKind::NotFound);
}

#[tokio::test]
async fn start_and_stop_charging_take_effect_after_the_latency() {
    let h = harness().await;
    let (account_id, account) = h.link().await;
    let vin = h.sim.add_vehicle(&account_id, plugged_stopped());
    let dev = device(&vin);

    let receipt = h.adapter.execute(&account, &dev, &Command::StartCharging).await.unwrap();
    assert_eq!(receipt.requests, 1);
    assert_eq!(h.sim.request_counts().commands, 1);
    // Accepted is not done: at the same instant the car has not started.
    let obs = h.adapter.poll(&account, &dev).await.unwrap();
    assert_eq!(vehicle(&obs).charge_state.is_charging, Some(false));

    h.advance(121);
    let obs = h.adapter.poll(&account, &dev).await.unwrap();
    let cs = &vehicle(&obs).charge_state;
    assert_eq!(cs.is_charging, Some(true));
    assert_eq!(cs.power_delivery_state, PowerDeliveryState::PluggedInCharging);
    assert_eq!(cs.charge_rate, Some(11.0), "16 A x 230 V x 3 phases");
    assert!(cs.charge_time_remaining.unwrap() > 0.0);

    // Starting again: the car is already charging (a no-op refusal).
    let err = h.adapter.execute(&account, &dev, &Command::StartCharging).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Rejected);
    assert!(CommandRefused::of(&err).unwrap().is_no_op());

    // Current limit.
    h.adapter.execute(&account, &dev, &Command::SetMaxCurrent { amps: 10.0 }).await.unwrap();
    h.advance(121);
    let obs = h.adapter.poll(&account, &dev).await.unwrap();
    assert_eq!(vehicle(&obs).charge_state.max_current, Some(10.0));
    let err =
        h.adapter.vehicles().unwrap().set_max_current(&account, &dev, 10.0).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Rejected);
    assert!(CommandRefused::of(&err).unwrap().is_no_op());
    assert_eq!(
        kind(h.adapter.execute(&account, &dev, &Command::SetMaxCurrent { amps: f64::NAN }).await),
        ErrorKind::Rejected
    );

    h.adapter.execute(&account, &dev, &Command::StopCharging).await.unwrap();
    h.advance(121);
    let obs = h.adapter.poll(&account, &dev).await.unwrap();
    assert_eq!(
        vehicle(&obs).charge_state.power_delivery_state,
        PowerDeliveryState::PluggedInStopped
    );
    let err = h.adapter.execute(&account, &dev, &Command::StopCharging).await.unwrap_err();
    assert!(CommandRefused::of(&err).unwrap().is_no_op());
}

#[tokio::test]
async fn start_charging_an_unplugged_car_fails_its_precondition() {
    let h = harness().await;
    let (account_id, account) = h.link().await;
    let vin = h.sim.add_vehicle(
        &account_id,
        VehicleSpec { plugged_in: false, drives: Some(false), ..Default::default() },
    );
    let err =
        h.adapter.execute(&account, &device(&vin), &Command::StartCharging).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PreconditionFailed);
    let refused = CommandRefused::of(&err).unwrap();
    assert_eq!(refused.reason, "disconnected");
    assert!(!refused.is_no_op());
}

#[tokio::test]
async fn commands_to_a_sleeping_car_need_a_wake_up() {
    let h = harness().await;
    let (account_id, account) = h.link().await;
    let vin = h.sim.add_vehicle(
        &account_id,
        VehicleSpec { power_state: PowerState::Asleep, ..plugged_stopped() },
    );
    let dev = device(&vin);
    assert_eq!(
        kind(h.adapter.execute(&account, &dev, &Command::StartCharging).await),
        ErrorKind::DeviceAsleep
    );
    let receipt = h.adapter.execute(&account, &dev, &Command::WakeUp).await.unwrap();
    assert_eq!(receipt.requests, 1);
    assert_eq!(h.sim.request_counts().wakes, 1);
    // Still asleep right after the wake-up is accepted; online within 30 s.
    assert!(h.adapter.poll(&account, &dev).await.unwrap().asleep);
    h.advance(31);
    let obs = h.adapter.poll(&account, &dev).await.unwrap();
    assert!(!obs.asleep);
    assert_eq!(vehicle(&obs).charge_state.battery_level, Some(50.0));
    h.adapter.execute(&account, &dev, &Command::StartCharging).await.unwrap();

    // Left alone (polls only list), an idle car falls asleep again after 15 minutes.
    let vin2 =
        h.sim.add_vehicle(&account_id, VehicleSpec { drives: Some(false), ..Default::default() });
    h.advance(16 * 60);
    assert!(h.adapter.poll(&account, &device(&vin2)).await.unwrap().asleep);
}

#[tokio::test]
async fn batch_polls_share_one_vehicles_list() {
    let h = harness().await;
    let (account_id, account) = h.link().await;
    let a = h.sim.add_vehicle(&account_id, plugged_stopped());
    let b = h.sim.add_vehicle(
        &account_id,
        VehicleSpec { power_state: PowerState::Asleep, drives: Some(false), ..Default::default() },
    );
    let results = h
        .adapter
        .poll_batch(&account, &[device(&a), device(&b), device("5YJ3E1EA0RF999999")])
        .await;
    assert_eq!(results.len(), 3);
    let first = results[0].as_ref().unwrap();
    let second = results[1].as_ref().unwrap();
    assert!(!first.asleep && second.asleep);
    assert_eq!(first.requests + second.requests, 2, "one list + one vehicle_data");
    assert_eq!(results[2].as_ref().unwrap_err().kind(), ErrorKind::NotFound);
    assert_eq!(h.sim.request_counts().vehicle_list, 1);

    h.sim.set_fault(Fault::ServerError);
    let results = h.adapter.poll_batch(&account, &[device(&a), device(&b)]).await;
    assert!(results.iter().all(|r| r.as_ref().unwrap_err().kind() == ErrorKind::Transient));
}

#[tokio::test]
async fn region_and_transport_failures() {
    let h = harness().await;
    let (account_id, mut account) = h.link().await;
    let vin = h.sim.add_vehicle(&account_id, plugged_stopped());

    // A closed port: connection refused, transient.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let closed_base = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let broken = TeslaAdapter::new(config(&closed_base), h.clock.clone());
    assert_eq!(kind(broken.poll(&account, &device(&vin)).await), ErrorKind::Transient);

    // The account's own region URL wins over the configured one.
    account.credentials.extra.insert(EXTRA_API_BASE_URL.into(), h.base.clone());
    assert!(broken.poll(&account, &device(&vin)).await.is_ok());
}
