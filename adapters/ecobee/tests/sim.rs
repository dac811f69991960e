//! The adapter against the simulated ecobee cloud, beyond the conformance suite: the PIN
//! flow, single-use refresh tokens, read-only links, equipment that cannot cool, disconnected
//! thermostats, the per-account throttle, local validation, and ecobee's selection rules.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use oemgate_core::{
    AccountRef, Command, DeviceRef, DeviceState, ErrorKind, Hvac, HvacMode, ManualClock,
    Observation, VendorAdapter, VendorType,
};
use oemgate_ecobee::sim::{EcobeeEquipment, EcobeeSim, EcobeeSimConfig, PREFIX, WORLD_VENDOR};
use oemgate_ecobee::{EXTRA_SCOPE, EcobeeAdapter, EcobeeConfig, api_error_of};
use oemgate_sim::{
    DeviceId, HvacHold, HvacSpec, LatencyProfile, RequestLog, SimHost, SiteId, SiteSpec, World,
    WorldConfig,
};

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 15, 16, 0, 0).unwrap()
}

struct Setup {
    clock: Arc<ManualClock>,
    world: World,
    sim: EcobeeSim,
    adapter: EcobeeAdapter,
    base: String,
    log: RequestLog,
    home: SiteId,
    hall: DeviceId,
    other: DeviceId,
    _server: tokio::task::JoinHandle<std::io::Result<()>>,
}

async fn setup(config: EcobeeSimConfig) -> Setup {
    let clock = Arc::new(ManualClock::new(t0()));
    let world_config = WorldConfig {
        latency: [(WORLD_VENDOR.to_owned(), LatencyProfile::fixed(20.0))].into(),
        ..WorldConfig::default()
    };
    let world = World::new(7, clock.clone(), world_config);
    let spec = |name: &str| SiteSpec {
        name: name.into(),
        utc_offset_minutes: -360,
        latitude: 44.98,
        longitude: -93.27,
        ..SiteSpec::default()
    };
    let home = world.add_site(spec("Home"));
    let hall = world
        .add_hvac(
            &home,
            HvacSpec { vendor: WORLD_VENDOR.into(), name: "Hall".into(), ..HvacSpec::default() },
        )
        .unwrap();
    let elsewhere = world.add_site(spec("Elsewhere"));
    let other = world
        .add_hvac(&elsewhere, HvacSpec { vendor: WORLD_VENDOR.into(), ..HvacSpec::default() })
        .unwrap();
    let sim = EcobeeSim::with_config(world.clone(), config);
    sim.create_account(&[elsewhere]);
    let mut host = SimHost::new(clock.clone());
    host.mount(PREFIX, sim.router()).unwrap();
    let log = host.request_log();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}{PREFIX}", listener.local_addr().unwrap());
    let server = tokio::spawn(host.serve(listener));
    let adapter = adapter_for(&sim, &base, &clock);
    Setup { clock, world, sim, adapter, base, log, home, hall, other, _server: server }
}

fn adapter_for(sim: &EcobeeSim, base: &str, clock: &Arc<ManualClock>) -> EcobeeAdapter {
    let mut config = EcobeeConfig::new(sim.api_key()).for_base_url(base);
    config.request_timeout = Duration::from_secs(5);
    EcobeeAdapter::new(config, clock.clone())
}

impl Setup {
    async fn link(&self, scope: &str) -> AccountRef {
        let link = self.sim.create_account_with_scope(std::slice::from_ref(&self.home), scope);
        let credentials = self.adapter.exchange_pin(&link.code).await.unwrap();
        AccountRef {
            user_id: "user-1".into(),
            vendor: "ECOBEE".into(),
            account_id: link.username,
            credentials,
        }
    }

    fn device(&self, world_id: &DeviceId) -> DeviceRef {
        DeviceRef {
            id: format!("dev-{world_id}"),
            user_id: "user-1".into(),
            device_type: VendorType::Hvac,
            vendor_id: self.sim.identifier(world_id),
            site_id: None,
        }
    }

    fn requests(&self) -> usize {
        self.log.count(PREFIX)
    }
}

fn hvac(obs: &Observation) -> &Hvac {
    match &obs.state {
        DeviceState::Hvac(h) => h,
        other => panic!("not an HVAC state: {other:?}"),
    }
}

#[tokio::test]
async fn the_pin_flow_links_an_account() {
    let s = setup(EcobeeSimConfig::default()).await;
    let existing = s.sim.create_account(std::slice::from_ref(&s.home));
    let pin = s.adapter.request_pin().await.unwrap();
    assert_eq!(pin.pin.len(), 4);
    assert_eq!(pin.scope.as_deref(), Some("smartWrite"));
    assert_eq!(pin.expires_at, Some(t0() + chrono::Duration::minutes(9)));
    assert_eq!(pin.interval, Some(Duration::from_secs(30)));
    // Before the user entered the PIN in the portal.
    let e = s.adapter.exchange_pin(&pin.code).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PreconditionFailed, "{e}");
    assert_eq!(api_error_of(&e).unwrap().error.as_deref(), Some("authorization_pending"));
    assert!(!s.sim.authorize_pin("nobody@example.invalid", &pin.pin));
    assert!(s.sim.authorize_pin(&existing.username, &pin.pin));
    let credentials = s.adapter.exchange_pin(&pin.code).await.unwrap();
    assert_eq!(credentials.extra.get(EXTRA_SCOPE).map(String::as_str), Some("smartWrite"));
    assert_eq!(credentials.expires_at, Some(t0() + chrono::Duration::seconds(3599)));
    assert!(credentials.refresh_token.is_some());
    assert!(!format!("{credentials:?}").contains(&credentials.access_token));
    // A code works once.
    let e = s.adapter.exchange_pin(&pin.code).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthorized);
    // A PIN nobody entered in time expires.
    let late = s.adapter.request_pin().await.unwrap();
    s.clock.advance(Duration::from_secs(10 * 60));
    assert!(!s.sim.authorize_pin(&existing.username, &late.pin));
    let e = s.adapter.exchange_pin(&late.code).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthorized);
    assert_eq!(api_error_of(&e).unwrap().error.as_deref(), Some("authorization_expired"));
}

#[tokio::test]
async fn refresh_tokens_are_single_use_and_tokens_expire_after_an_hour() {
    let s = setup(EcobeeSimConfig::default()).await;
    let mut account = s.link("smartWrite").await;
    let device = s.device(&s.hall);
    s.adapter.poll(&account, &device).await.unwrap();
    // An hour later the adapter knows the token expired and sends nothing.
    s.clock.advance(Duration::from_secs(3600));
    let before = s.requests();
    let e = s.adapter.poll(&account, &device).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AuthExpired);
    assert_eq!(s.requests(), before, "no request with a token known to be expired");
    let spent = account.clone();
    account.credentials = s.adapter.refresh_credentials(&account).await.unwrap();
    assert_ne!(account.credentials.refresh_token, spent.credentials.refresh_token);
    assert_eq!(account.credentials.extra.get(EXTRA_SCOPE).map(String::as_str), Some("smartWrite"));
    s.adapter.poll(&account, &device).await.unwrap();
    let e = s.adapter.refresh_credentials(&spent).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthorized);
    // The user removes the application: status 16 on calls, invalid_grant on refresh.
    s.sim.revoke_account(&account.account_id);
    let e = s.adapter.poll(&account, &device).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthorized);
    assert_eq!(api_error_of(&e).unwrap().code, Some(16));
    let e = s.adapter.refresh_credentials(&account).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthorized);
}

#[tokio::test]
async fn a_read_only_link_reads_but_refuses_commands_before_any_request() {
    let s = setup(EcobeeSimConfig::default()).await;
    let account = s.link("smartRead").await;
    let device = s.device(&s.hall);
    let obs = s.adapter.poll(&account, &device).await.unwrap();
    let h = hvac(&obs);
    assert!(!h.capabilities.set_permanent_hold.is_capable);
    assert!(!h.capabilities.set_permanent_hold.intervention_ids.is_empty());
    assert!(!h.capabilities.set_follow_schedule.is_capable);
    let before = s.requests();
    for command in [
        Command::FollowSchedule,
        Command::SetPermanentHold {
            mode: HvacMode::Heat,
            heat_setpoint: Some(20.0),
            cool_setpoint: None,
        },
    ] {
        let e = s.adapter.execute(&account, &device, &command).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unsupported);
    }
    assert_eq!(s.requests(), before);
    // Had the adapter not known the scope, ecobee refuses the update itself.
    let mut unknown = account.clone();
    unknown.credentials.extra.clear();
    let e = s.adapter.execute(&unknown, &device, &Command::FollowSchedule).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthorized, "{e}");
}

#[tokio::test]
async fn a_furnace_cannot_cool() {
    let s = setup(EcobeeSimConfig::default()).await;
    s.sim.set_equipment(&s.hall, EcobeeEquipment::FURNACE);
    let account = s.link("smartWrite").await;
    let device = s.device(&s.hall);
    let cool = Command::SetPermanentHold {
        mode: HvacMode::Cool,
        heat_setpoint: None,
        cool_setpoint: Some(24.0),
    };
    // Without a read the adapter does not know the equipment: ecobee refuses (status 7).
    let e = s.adapter.execute(&account, &device, &cool).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Rejected, "{e}");
    assert_eq!(api_error_of(&e).unwrap().code, Some(7));
    // Once read, the mode is known to be impossible: no request.
    let obs = s.adapter.poll(&account, &device).await.unwrap();
    assert_eq!(hvac(&obs).capabilities.capable_modes, Some(vec![HvacMode::Off, HvacMode::Heat]));
    let before = s.requests();
    let e = s.adapter.execute(&account, &device, &cool).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported);
    assert_eq!(s.requests(), before);
    // Heating still works, and keeps the cool setpoint it had.
    let cool_before = s.world.hvac(&s.hall).unwrap().cool_setpoint;
    let heat = Command::SetPermanentHold {
        mode: HvacMode::Heat,
        heat_setpoint: Some(19.5),
        cool_setpoint: None,
    };
    let receipt = s.adapter.execute(&account, &device, &heat).await.unwrap();
    assert_eq!(receipt.requests, 1);
    s.clock.advance(Duration::from_secs(30));
    let h = s.world.hvac(&s.hall).unwrap();
    assert_eq!(h.hold, HvacHold::Permanent);
    assert!((h.heat_setpoint - 19.5).abs() < 0.03, "{}", h.heat_setpoint);
    assert!((h.cool_setpoint - cool_before).abs() < 0.03);
}

#[tokio::test]
async fn commands_are_validated_before_any_request() {
    let s = setup(EcobeeSimConfig::default()).await;
    let account = s.link("smartWrite").await;
    let device = s.device(&s.hall);
    s.adapter.poll(&account, &device).await.unwrap();
    let before = s.requests();
    let hold = |mode, heat, cool| Command::SetPermanentHold {
        mode,
        heat_setpoint: heat,
        cool_setpoint: cool,
    };
    for (command, kind) in [
        (hold(HvacMode::Heat, Some(f64::NAN), None), ErrorKind::Rejected),
        (hold(HvacMode::Heat, None, None), ErrorKind::Rejected),
        (hold(HvacMode::Heat, Some(28.0), None), ErrorKind::Rejected),
        (hold(HvacMode::Cool, None, Some(12.0)), ErrorKind::Rejected),
        (hold(HvacMode::Auto, Some(21.0), Some(22.0)), ErrorKind::Rejected),
        (hold(HvacMode::Unknown, Some(21.0), None), ErrorKind::Rejected),
        (Command::StartCharging, ErrorKind::Unsupported),
        (Command::WakeUp, ErrorKind::Unsupported),
    ] {
        let e = s.adapter.execute(&account, &device, &command).await.unwrap_err();
        assert_eq!(e.kind(), kind, "{command:?}: {e}");
    }
    let mut charger = device.clone();
    charger.device_type = VendorType::Charger;
    let e = s.adapter.poll(&account, &charger).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported);
    let mut bad = device.clone();
    bad.vendor_id = "1,2".into();
    let e = s.adapter.poll(&account, &bad).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert_eq!(s.requests(), before);
}

#[tokio::test]
async fn a_thermostat_of_another_account_is_not_found() {
    let s = setup(EcobeeSimConfig::default()).await;
    let account = s.link("smartWrite").await;
    let before = s.requests();
    let e = s.adapter.poll(&account, &s.device(&s.other)).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert_eq!(s.requests() - before, 1, "the summary alone shows it is not the user's");
    let e = s.adapter.execute(&account, &s.device(&s.other), &Command::FollowSchedule).await;
    assert_eq!(e.unwrap_err().kind(), ErrorKind::NotFound, "status 2: not authorized");
}

#[tokio::test]
async fn a_disconnected_thermostat_keeps_its_last_report() {
    let s = setup(EcobeeSimConfig::default()).await;
    let account = s.link("smartWrite").await;
    let device = s.device(&s.hall);
    let first = s.adapter.poll(&account, &device).await.unwrap();
    let reported = hvac(&first).temperature_state.current_temperature;
    s.world.set_device_online(&s.hall, false).unwrap();
    s.clock.advance(Duration::from_secs(30 * 60));
    s.world.update_hvac(&s.hall, |m| m.indoor_c += 3.0).unwrap();
    let obs = s.adapter.poll(&account, &device).await.unwrap();
    let h = hvac(&obs);
    assert!(!h.is_reachable);
    assert_eq!(h.temperature_state.current_temperature, reported);
    assert_eq!(h.temperature_state.last_updated, Some(t0()), "the old report's time");
    let e = s.adapter.execute(&account, &device, &Command::FollowSchedule).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::DeviceOffline, "{e}");
    s.world.set_device_online(&s.hall, true).unwrap();
    let obs = s.adapter.poll(&account, &device).await.unwrap();
    assert!(hvac(&obs).is_reachable);
    assert_eq!(obs.requests, 2, "reconnecting changes the runtime revision");
}

#[tokio::test]
async fn the_per_account_throttle_answers_429_until_the_minute_ends() {
    let config = EcobeeSimConfig { requests_per_minute: Some(3), ..EcobeeSimConfig::default() };
    let s = setup(config).await;
    s.clock.advance(Duration::from_secs(15));
    let account = s.link("smartWrite").await;
    let device = s.device(&s.hall);
    s.adapter.poll(&account, &device).await.unwrap(); // summary + full read
    s.adapter.poll(&account, &device).await.unwrap(); // summary
    let e = s.adapter.poll(&account, &device).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::RateLimited);
    assert_eq!(e.retry_after(), Some(Duration::from_secs(45)));
    assert_eq!(s.sim.stats().throttled, 1);
    s.clock.advance(Duration::from_secs(45));
    s.adapter.poll(&account, &device).await.unwrap();
}

#[tokio::test]
async fn the_cache_is_per_adapter_and_a_new_one_reads_in_full() {
    let s = setup(EcobeeSimConfig::default()).await;
    let account = s.link("smartWrite").await;
    let device = s.device(&s.hall);
    assert_eq!(s.adapter.poll(&account, &device).await.unwrap().requests, 2);
    assert_eq!(s.adapter.poll(&account, &device).await.unwrap().requests, 1);
    assert_eq!(s.adapter.cached_reads(), 1);
    let other = adapter_for(&s.sim, &s.base, &s.clock);
    assert_eq!(other.poll(&account, &device).await.unwrap().requests, 2);
    s.adapter.forget_account(&account.account_id);
    assert_eq!(s.adapter.cached_reads(), 0);
    assert_eq!(s.adapter.poll(&account, &device).await.unwrap().requests, 2);
    // A command lands, the thermostat revision moves, the next poll reads it in full.
    let hold = Command::SetPermanentHold {
        mode: HvacMode::Auto,
        heat_setpoint: Some(18.0),
        cool_setpoint: Some(26.0),
    };
    s.adapter.execute(&account, &device, &hold).await.unwrap();
    s.clock.advance(Duration::from_secs(20));
    let obs = s.adapter.poll(&account, &device).await.unwrap();
    assert_eq!(obs.requests, 2);
    let h = hvac(&obs);
    assert_eq!(h.thermostat_state.mode, HvacMode::Auto);
    assert_eq!(h.thermostat_state.heat_setpoint, Some(18.0));
    assert_eq!(h.thermostat_state.cool_setpoint, Some(26.0));
    assert_eq!(h.thermostat_state.hold_type.map(|t| t.as_str()), Some("PERMANENT"));
}

#[tokio::test]
async fn selections_follow_ecobees_rules() {
    let s = setup(EcobeeSimConfig::default()).await;
    let account = s.link("smartWrite").await;
    let http = reqwest::Client::new();
    let get = |path: &str, json: String| {
        http.get(format!("{}/1/{path}", s.base))
            .query(&[("json", json)])
            .bearer_auth(&account.credentials.access_token)
            .send()
    };
    let ids: Vec<String> = (0..26).map(|n| format!("31100000{n:04}")).collect();
    let json = serde_json::json!({ "selection": { "selectionType": "thermostats", "selectionMatch": ids.join(",") } });
    let answer = get("thermostat", json.to_string()).await.unwrap();
    assert_eq!(answer.status().as_u16(), 500);
    let body: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(body["status"]["code"], 6);
    let answer = get("thermostatSummary", "{not json".into()).await.unwrap();
    let body: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(body["status"]["code"], 4);
    let answer = http
        .post(format!("{}/1/thermostatSummary", s.base))
        .bearer_auth(&account.credentials.access_token)
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(body["status"]["code"], 12);
    // No token at all: status 1.
    let answer = http.get(format!("{}/1/thermostatSummary", s.base)).send().await.unwrap();
    let body: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(body["status"]["code"], 1);
}
