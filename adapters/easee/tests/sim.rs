//! The simulated Easee cloud's own behaviour, through the adapter: login, ownership, the
//! vendor-side pause, refusals, Easee's rate limits, token lifetime, offline chargers.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use oemgate_core::{
    AccountRef, ChargerApi, Clock, DeviceRef, DeviceState, ErrorKind, ManualClock, VendorAdapter,
    VendorType,
};
use oemgate_easee::sim::{EaseeLogin, EaseeSim, EaseeSimConfig, PREFIX, WORLD_VENDOR};
use oemgate_easee::{EaseeAdapter, EaseeCommand, EaseeConfig, api_error_of};
use oemgate_sim::{
    ChargerSpec, DeviceId, DrivingPattern, LatencyProfile, RequestLog, SimHost, SiteSpec,
    VehicleSpec, World, WorldConfig,
};

const LATENCY: Duration = Duration::from_secs(5);

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 15, 19, 0, 0).unwrap()
}

struct Env {
    clock: Arc<ManualClock>,
    world: World,
    sim: EaseeSim,
    adapter: EaseeAdapter,
    log: RequestLog,
    login: EaseeLogin,
    account: AccountRef,
    /// Alice's charger with a plugged, charging car.
    busy: (DeviceRef, DeviceId),
    /// Alice's charger without a car.
    free: (DeviceRef, DeviceId),
    /// Bob's charger.
    bobs: DeviceRef,
    _server: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Drop for Env {
    fn drop(&mut self) {
        self._server.abort();
    }
}

fn charger_spec(name: &str) -> ChargerSpec {
    ChargerSpec { vendor: WORLD_VENDOR.into(), name: name.into(), ..ChargerSpec::default() }
}

async fn env(config: EaseeSimConfig) -> Env {
    let clock = Arc::new(ManualClock::new(t0()));
    let world_config = WorldConfig {
        latency: [(WORLD_VENDOR.to_owned(), LatencyProfile::fixed(LATENCY.as_secs_f64()))]
            .into_iter()
            .collect(),
        ..WorldConfig::default()
    };
    let world = World::new(7, clock.clone(), world_config);
    let home = world.add_site(SiteSpec::default());
    let busy = world.add_charger(&home, charger_spec("Garage")).unwrap();
    let free = world.add_charger(&home, charger_spec("Driveway")).unwrap();
    world
        .add_vehicle(
            &home,
            VehicleSpec {
                battery_level: 30.0,
                plugged_in: true,
                charging: true,
                pattern: DrivingPattern {
                    commute_km: None,
                    errands_per_week: 0.0,
                    plug_in_share: 1.0,
                },
                ..VehicleSpec::default()
            },
        )
        .unwrap();
    let bob_site = world.add_site(SiteSpec::default());
    let bob_charger = world.add_charger(&bob_site, charger_spec("Bob's")).unwrap();

    let sim = EaseeSim::with_config(world.clone(), config);
    let mut host = SimHost::new(clock.clone());
    host.mount(PREFIX, sim.router()).unwrap();
    let log = host.request_log();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}{PREFIX}", listener.local_addr().unwrap());
    let server = tokio::spawn(host.serve(listener));
    let adapter = EaseeAdapter::new(EaseeConfig::new().for_base_url(&base), clock.clone());

    let login = sim.create_account(std::slice::from_ref(&home));
    sim.create_account(std::slice::from_ref(&bob_site));
    let credentials = adapter.login(&login.user_name, &login.password).await.unwrap();
    let account = AccountRef {
        user_id: "alice".into(),
        vendor: "EASEE".into(),
        account_id: login.user_name.clone(),
        credentials,
    };
    let reference = |id: &DeviceId, site| DeviceRef {
        id: format!("dev-{id}"),
        user_id: "alice".into(),
        device_type: VendorType::Charger,
        vendor_id: sim.serial_of(id).unwrap(),
        site_id: Some(sim.site_id(site).to_string()),
    };
    Env {
        busy: (reference(&busy, &home), busy),
        free: (reference(&free, &home), free),
        bobs: reference(&bob_charger, &bob_site),
        clock,
        world,
        sim,
        adapter,
        log,
        login,
        account,
        _server: server,
    }
}

fn charger_json(obs: &oemgate_core::Observation) -> serde_json::Value {
    assert!(matches!(obs.state, DeviceState::Charger(_)));
    obs.state.to_json()
}

#[tokio::test]
async fn login_gives_an_hour_long_token_and_wrong_passwords_are_unauthorized() {
    let e = env(EaseeSimConfig::default()).await;
    let expires_at = e.account.credentials.expires_at.unwrap();
    assert_eq!(expires_at, t0() + chrono::Duration::hours(1));
    assert!(e.account.credentials.refresh_token.is_some());

    let err = e.adapter.login(&e.login.user_name, "wrong").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorized);
    let api = api_error_of(&err).unwrap();
    assert_eq!(api.error_code_name.as_deref(), Some("InvalidUserPassword"));

    // After the hour the adapter knows without asking; one refresh and it works again.
    e.clock.advance(Duration::from_secs(3601));
    let before = e.log.count(PREFIX);
    let err = e.adapter.poll(&e.account, &e.busy.0).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AuthExpired);
    assert_eq!(e.log.count(PREFIX), before, "no request for a known-expired token");
    let fresh = e.adapter.refresh_credentials(&e.account).await.unwrap();
    assert_ne!(fresh.refresh_token, e.account.credentials.refresh_token, "rotated");
    let mut account = e.account.clone();
    account.credentials = fresh;
    e.adapter.poll(&account, &e.busy.0).await.unwrap();
    // The spent refresh token is refused.
    let err = e.adapter.refresh_credentials(&e.account).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorized);
}

#[tokio::test]
async fn other_accounts_and_unknown_serials_are_not_found() {
    let e = env(EaseeSimConfig::default()).await;
    let err = e.adapter.poll(&e.account, &e.bobs).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert_eq!(api_error_of(&err).unwrap().status, 403);
    let mut unknown = e.busy.0.clone();
    unknown.vendor_id = "EH000000".into();
    let err = e.adapter.poll(&e.account, &unknown).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert_eq!(api_error_of(&err).unwrap().status, 404);
    let err = e.adapter.set_charging(&e.account, &e.bobs, false).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);

    let found = e.adapter.discover(&e.account).await.unwrap();
    let ids: Vec<&str> = found.iter().map(|d| d.vendor_id.as_str()).collect();
    assert_eq!(ids, [e.busy.0.vendor_id.as_str(), e.free.0.vendor_id.as_str()]);
    assert!(found.iter().all(|d| d.site_id == e.busy.0.site_id));
    assert_eq!(found[0].display_name.as_deref(), Some("Garage"));
}

#[tokio::test]
async fn reads_follow_the_world() {
    let e = env(EaseeSimConfig::default()).await;
    let json = charger_json(&e.adapter.poll(&e.account, &e.busy.0).await.unwrap());
    let truth = e.world.charger(&e.busy.1).unwrap();
    assert_eq!(json["chargeState"]["powerDeliveryState"], "PLUGGED_IN:CHARGING");
    let rate = json["chargeState"]["chargeRate"].as_f64().unwrap();
    assert!((rate - truth.power_w / 1000.0).abs() < 1e-9, "kW, as Easee sends");
    assert!(rate > 10.0);
    assert_eq!(json["chargeState"]["maxCurrent"], 16.0);
    assert_eq!(json["chargeState"]["lastUpdated"], "2026-01-15T19:00:00Z");

    let json = charger_json(&e.adapter.poll(&e.account, &e.free.0).await.unwrap());
    assert_eq!(json["chargeState"]["powerDeliveryState"], "UNPLUGGED");
    assert_eq!(json["chargeState"]["isPluggedIn"], false);

    // Offline: unreachable, no live values, last seen when it went offline.
    e.clock.advance(Duration::from_secs(60));
    let offline_at = e.clock.now();
    e.world.set_device_online(&e.busy.1, false).unwrap();
    e.clock.advance(Duration::from_secs(600));
    let json = charger_json(&e.adapter.poll(&e.account, &e.busy.0).await.unwrap());
    assert_eq!(json["isReachable"], false);
    assert_eq!(json["chargeState"]["powerDeliveryState"], "UNKNOWN");
    assert_eq!(json["chargeState"]["isCharging"], serde_json::Value::Null);
    assert_eq!(json["lastSeen"], offline_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    let err = e.adapter.set_charging(&e.account, &e.busy.0, false).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::DeviceOffline);
}

#[tokio::test]
async fn commands_refusals_and_the_pause() {
    let e = env(EaseeSimConfig::default()).await;
    // No car at the free charger.
    let err = e.adapter.set_charging(&e.account, &e.free.0, true).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PreconditionFailed);
    // Above the hardware's 32 A: refused locally, no request.
    let before = e.log.count(PREFIX);
    let err = e.adapter.set_max_current(&e.account, &e.busy.0, 40.0).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Rejected);
    assert_eq!(e.log.count(PREFIX), before);

    // Pause: the world stops charging after the latency, Easee reads 0 A.
    let receipt =
        e.adapter.send_command(&e.account, &e.busy.0, EaseeCommand::PauseCharging).await.unwrap();
    assert_eq!(receipt.requests, 1);
    let action = receipt.vendor_action_id.unwrap();
    assert!(action.starts_with("48:6"), "{action}");
    e.clock.advance(LATENCY * 2);
    assert!(!e.world.charger(&e.busy.1).unwrap().charging);
    assert!(e.sim.is_paused(&e.busy.1));
    let json = charger_json(&e.adapter.poll(&e.account, &e.busy.0).await.unwrap());
    assert_eq!(json["chargeState"]["powerDeliveryState"], "PLUGGED_IN:STOPPED");
    assert_eq!(json["chargeState"]["maxCurrent"], 0.0);

    // Resume: charging again, the limit is back.
    e.adapter.send_command(&e.account, &e.busy.0, EaseeCommand::ResumeCharging).await.unwrap();
    e.clock.advance(LATENCY * 2);
    assert!(e.world.charger(&e.busy.1).unwrap().charging);
    let json = charger_json(&e.adapter.poll(&e.account, &e.busy.0).await.unwrap());
    assert_eq!(json["chargeState"]["maxCurrent"], 16.0);

    // A start while charging changes nothing and is accepted.
    e.adapter.set_charging(&e.account, &e.busy.0, true).await.unwrap();
    // A limit with a time to live.
    let command = EaseeCommand::SetDynamicChargerCurrent { amps: 12.0, minutes: 30 };
    e.adapter.send_command(&e.account, &e.busy.0, command).await.unwrap();
    e.clock.advance(LATENCY * 2);
    assert_eq!(e.world.charger(&e.busy.1).unwrap().max_current_a, 12.0);
}

#[tokio::test]
async fn easee_s_rate_limits_answer_429_with_retry_after() {
    let config = EaseeSimConfig {
        rate_limit: 3,
        rate_window: Duration::from_secs(60),
        ..Default::default()
    };
    let e = env(config).await;
    for _ in 0..3 {
        e.adapter.poll(&e.account, &e.busy.0).await.unwrap();
        e.clock.advance(Duration::from_secs(10));
    }
    let err = e.adapter.poll(&e.account, &e.busy.0).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RateLimited);
    assert_eq!(err.retry_after(), Some(Duration::from_secs(30)));
    e.clock.advance(Duration::from_secs(30));
    e.adapter.poll(&e.account, &e.busy.0).await.unwrap();
}

#[tokio::test]
async fn site_endpoints_allow_ten_requests_an_hour() {
    let e = env(EaseeSimConfig::default()).await;
    for _ in 0..10 {
        e.adapter.discover(&e.account).await.unwrap();
        e.clock.advance(Duration::from_secs(60));
    }
    let err = e.adapter.discover(&e.account).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RateLimited);
    assert_eq!(err.retry_after(), Some(Duration::from_secs(3000)));
    // Charger reads are not site endpoints.
    e.adapter.poll(&e.account, &e.busy.0).await.unwrap();
}

#[tokio::test]
async fn serials_survive_a_restart_of_the_simulator() {
    let e = env(EaseeSimConfig::default()).await;
    // A new simulator over the same world (the demo restarted) and the device stored before:
    // it resolves without a discovery first.
    let again = EaseeSim::new(e.world.clone());
    let mut host = SimHost::new(e.clock.clone());
    host.mount(PREFIX, again.router()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}{PREFIX}", listener.local_addr().unwrap());
    let server = tokio::spawn(host.serve(listener));
    let adapter = EaseeAdapter::new(EaseeConfig::new().for_base_url(&base), e.clock.clone());
    let home = e.world.sites()[0].clone();
    let login = again.create_account(&[home]);
    let mut account = e.account.clone();
    account.credentials = adapter.login(&login.user_name, &login.password).await.unwrap();
    let obs = adapter.poll(&account, &e.busy.0).await.unwrap();
    assert_eq!(charger_json(&obs)["information"]["serialNumber"], e.busy.0.vendor_id.as_str());
    server.abort();
}
