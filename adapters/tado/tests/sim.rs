//! The adapter against the simulated tado cloud, beyond the conformance suite: the daily quota
//! and its headers, the device-code flow step by step, rotating refresh tokens, temporary
//! overlays, offline zones, foreign homes, hot water and the batched read.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use oemgate_core::{
    AccountRef, Clock, Command, DeviceRef, DeviceState, ErrorKind, Hvac, HvacHoldType,
    HvacMode as Mode, ManualClock, VendorAdapter, VendorType,
};
use oemgate_sim::{
    DeviceId, HvacHold, HvacMode, HvacSchedule, HvacSpec, LatencyProfile, SimHost, SiteId,
    SiteSpec, World, WorldConfig,
};
use oemgate_tado::sim::{PREFIX, TadoLink, TadoSim, WORLD_VENDOR};
use oemgate_tado::{TadoAdapter, TadoConfig, TadoTier, api_error_of};
use oemgate_testkit::ServerGuard;

const LATENCY: Duration = Duration::from_secs(20);

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 15, 9, 0, 0).unwrap()
}

struct Setup {
    clock: Arc<ManualClock>,
    world: World,
    sim: TadoSim,
    adapter: TadoAdapter,
    base: String,
    link: TadoLink,
    bob: TadoLink,
    house: SiteId,
    living: DeviceId,
    bedroom: DeviceId,
    cabin: DeviceId,
    bobs_zone: DeviceId,
    _server: ServerGuard,
}

fn spec(name: &str, hold: HvacHold, indoor: f64) -> HvacSpec {
    HvacSpec {
        vendor: WORLD_VENDOR.into(),
        name: name.into(),
        hold,
        mode: HvacMode::Heat,
        heat_setpoint: 18.0,
        indoor_c: indoor,
        schedule: HvacSchedule { mode: HvacMode::Heat, ..HvacSchedule::default() },
        ..HvacSpec::default()
    }
}

async fn setup() -> Setup {
    let clock = Arc::new(ManualClock::new(t0()));
    let config = WorldConfig {
        latency: [(WORLD_VENDOR.to_owned(), LatencyProfile::fixed(LATENCY.as_secs_f64()))].into(),
        ..WorldConfig::default()
    };
    let world = World::new(7, clock.clone(), config);
    let house = world.add_site(SiteSpec { name: "House".into(), ..SiteSpec::default() });
    let living = world.add_hvac(&house, spec("Living room", HvacHold::Schedule, 19.0)).unwrap();
    let bedroom = world.add_hvac(&house, spec("Bedroom", HvacHold::Permanent, 18.5)).unwrap();
    let cabin_site = world.add_site(SiteSpec { name: "Cabin".into(), ..SiteSpec::default() });
    let cabin = world.add_hvac(&cabin_site, spec("Cabin", HvacHold::Schedule, 15.0)).unwrap();
    let bobs = world.add_site(SiteSpec { name: "Bob".into(), ..SiteSpec::default() });
    let bobs_zone = world.add_hvac(&bobs, spec("Bob", HvacHold::Schedule, 20.0)).unwrap();

    let sim = TadoSim::new(world.clone());
    let link = sim.create_account(&[house.clone(), cabin_site]);
    let bob = sim.create_account(&[bobs]);
    let mut host = SimHost::new(clock.clone());
    host.mount(PREFIX, sim.router()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}{PREFIX}", listener.local_addr().unwrap());
    let server = ServerGuard::new(tokio::spawn(host.serve(listener)));
    let adapter = TadoAdapter::new(TadoConfig::new().for_base_url(&base), clock.clone());
    Setup {
        clock,
        world,
        sim,
        adapter,
        base,
        link,
        bob,
        house,
        living,
        bedroom,
        cabin,
        bobs_zone,
        _server: server,
    }
}

impl Setup {
    async fn link(&self, link: &TadoLink) -> AccountRef {
        let auth = self.adapter.start_device_authorization().await.unwrap();
        assert!(self.sim.approve_device(&auth.user_code, &link.username, &link.password));
        let credentials = self.adapter.exchange_device_code(&auth.device_code).await.unwrap();
        AccountRef {
            user_id: "user".into(),
            vendor: "TADO".into(),
            account_id: link.user_id.clone(),
            credentials,
        }
    }

    fn device(&self, id: &DeviceId) -> DeviceRef {
        let (home, zone) = self.sim.zone_id(id).unwrap();
        DeviceRef {
            id: format!("dev-{id}"),
            user_id: "user".into(),
            device_type: VendorType::Hvac,
            vendor_id: format!("{home}:{zone}"),
            site_id: Some(home.to_string()),
        }
    }

    fn advance(&self, by: Duration) {
        self.clock.advance(by);
    }
}

fn hvac(state: &DeviceState) -> &Hvac {
    match state {
        DeviceState::Hvac(h) => h,
        other => panic!("not an HVAC: {other:?}"),
    }
}

#[tokio::test]
async fn daily_quota_is_enforced_with_tados_headers() {
    let s = setup().await;
    let account = s.link(&s.link).await;
    let living = s.device(&s.living);

    // A normal answer carries the policy and what is left.
    let http = reqwest::Client::new();
    let me = http
        .get(format!("{}/api/v2/me", s.base))
        .bearer_auth(&account.credentials.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);
    assert_eq!(me.headers()["ratelimit-policy"], "\"perday\";q=100;w=86400");
    assert_eq!(me.headers()["ratelimit"], "\"perday\";r=99");
    assert_eq!(s.sim.quota_used(&s.link.user_id), 1);

    // Spend the day's quota but one; the last request works, the next is refused until
    // midnight UTC (15 h after 09:00), told by RateLimit's t without a Retry-After.
    s.sim.set_quota_used(&s.link.user_id, 99);
    s.adapter.poll(&account, &living).await.unwrap();
    let e = s.adapter.poll(&account, &living).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::RateLimited);
    assert_eq!(e.retry_after(), Some(Duration::from_secs(15 * 3600)));
    let api = api_error_of(&e).unwrap();
    assert_eq!(api.rate_limit.quota, Some(100));
    assert_eq!(api.rate_limit.remaining, Some(0));
    let e = s.adapter.discover(&account).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::RateLimited);
    // Refused requests do not count.
    assert_eq!(s.sim.quota_used(&s.link.user_id), 100);

    // Auto-Assist raises the quota to 20 000.
    s.sim.set_tier(&s.link.user_id, TadoTier::AutoAssist);
    s.adapter.poll(&account, &living).await.unwrap();

    // Back on the free tier, the next day: the token expired long ago, one refresh, and the
    // quota is fresh.
    s.sim.set_tier(&s.link.user_id, TadoTier::Free);
    s.advance(Duration::from_secs(15 * 3600));
    let e = s.adapter.poll(&account, &living).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AuthExpired, "known to be expired: no request");
    let account = AccountRef {
        credentials: s.adapter.refresh_credentials(&account).await.unwrap(),
        ..account
    };
    s.adapter.poll(&account, &living).await.unwrap();
    assert_eq!(s.sim.quota_used(&s.link.user_id), 1);
    // Bob's quota is his own.
    assert_eq!(s.sim.quota_used(&s.bob.user_id), 0);
}

#[tokio::test]
async fn device_code_flow_step_by_step() {
    let s = setup().await;
    let auth = s.adapter.start_device_authorization().await.unwrap();
    assert_eq!(auth.expires_in, Some(300));
    assert_eq!(auth.interval, Some(5));
    let page = auth.verification_uri_complete.clone().unwrap();
    assert!(page.starts_with(&format!("{}/oauth2/device?user_code=", s.base)), "{page}");

    // Not approved yet: pending; polled again at once: slow down.
    let e = s.adapter.exchange_device_code(&auth.device_code).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PreconditionFailed);
    assert_eq!(api_error_of(&e).unwrap().code, "authorization_pending");
    let e = s.adapter.exchange_device_code(&auth.device_code).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::RateLimited);
    assert_eq!(api_error_of(&e).unwrap().code, "slow_down");
    s.advance(Duration::from_secs(11));
    let e = s.adapter.exchange_device_code(&auth.device_code).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PreconditionFailed);

    // The user opens the page and logs in.
    let http = reqwest::Client::new();
    let html = http.get(&page).send().await.unwrap().text().await.unwrap();
    assert!(html.contains(&auth.user_code));
    let wrong = http
        .post(format!("{}/oauth2/device", s.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("user_code={}&username={}&password=nope", auth.user_code, s.link.username))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let approved = http
        .post(format!("{}/oauth2/device", s.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "user_code={}&username={}&password={}",
            auth.user_code,
            s.link.username.replace('@', "%40"),
            s.link.password
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(approved.status(), 200);

    s.advance(Duration::from_secs(10));
    let credentials = s.adapter.exchange_device_code(&auth.device_code).await.unwrap();
    assert_eq!(
        credentials.expires_at,
        Some(s.clock.now() + chrono::Duration::seconds(599)),
        "10-minute tokens"
    );
    assert!(credentials.refresh_token.is_some());
    assert_eq!(credentials.extra.get("tado_user_id"), Some(&s.link.user_id));
    // A device code works once.
    let e = s.adapter.exchange_device_code(&auth.device_code).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthorized);

    // Denied and expired codes need a new start.
    let denied = s.adapter.start_device_authorization().await.unwrap();
    assert!(s.sim.deny_device(&denied.user_code));
    let e = s.adapter.exchange_device_code(&denied.device_code).await.unwrap_err();
    assert_eq!(
        (e.kind(), api_error_of(&e).unwrap().code.as_str()),
        (ErrorKind::Unauthorized, "access_denied")
    );
    let late = s.adapter.start_device_authorization().await.unwrap();
    s.advance(Duration::from_secs(301));
    assert!(!s.sim.approve_device(&late.user_code, &s.link.username, &s.link.password));
    let e = s.adapter.exchange_device_code(&late.device_code).await.unwrap_err();
    assert_eq!(
        (e.kind(), api_error_of(&e).unwrap().code.as_str()),
        (ErrorKind::Unauthorized, "expired_token")
    );

    // Another client id is refused.
    let config =
        TadoConfig { client_id: "someone-else".into(), ..TadoConfig::new().for_base_url(&s.base) };
    let other = TadoAdapter::new(config, s.clock.clone());
    let e = other.start_device_authorization().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthorized);
}

#[tokio::test]
async fn refresh_tokens_rotate() {
    let s = setup().await;
    let first = s.link(&s.link).await;
    let living = s.device(&s.living);
    s.advance(Duration::from_secs(600));
    assert_eq!(s.adapter.poll(&first, &living).await.unwrap_err().kind(), ErrorKind::AuthExpired);
    let second = s.adapter.refresh_credentials(&first).await.unwrap();
    assert_ne!(second.refresh_token, first.credentials.refresh_token, "a new refresh token");
    let second = AccountRef { credentials: second, ..first.clone() };
    s.adapter.poll(&second, &living).await.unwrap();
    // The spent refresh token is refused; the new one works once.
    let e = s.adapter.refresh_credentials(&first).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthorized);
    let third = s.adapter.refresh_credentials(&second).await.unwrap();
    assert!(third.expires_at.unwrap() > s.clock.now());
    // Revoking the user's tokens: the API answers like an expired token, refresh is refused.
    s.sim.revoke_account(&s.link.user_id);
    let third = AccountRef { credentials: third, ..first };
    assert_eq!(s.adapter.poll(&third, &living).await.unwrap_err().kind(), ErrorKind::AuthExpired);
    assert_eq!(
        s.adapter.refresh_credentials(&third).await.unwrap_err().kind(),
        ErrorKind::Unauthorized
    );
}

#[tokio::test]
async fn holds_and_the_schedule_round_trip() {
    let s = setup().await;
    let account = s.link(&s.link).await;
    let living = s.device(&s.living);
    let obs = s.adapter.poll(&account, &living).await.unwrap();
    let h = hvac(&obs.state);
    assert_eq!(h.thermostat_state.hold_type, Some(HvacHoldType::Scheduled));
    assert_eq!(h.thermostat_state.heat_setpoint, Some(21.0));
    assert!(h.temperature_state.is_active, "19 °C towards 21 °C");
    assert_eq!(obs.requests, 1);

    let hold = Command::SetPermanentHold {
        mode: Mode::Heat,
        heat_setpoint: Some(22.46),
        cool_setpoint: None,
    };
    let receipt = s.adapter.execute(&account, &living, &hold).await.unwrap();
    assert_eq!(receipt.requests, 1);
    // Not yet: the world's latency.
    assert_eq!(s.world.hvac(&s.living).unwrap().hold, HvacHold::Schedule);
    s.advance(LATENCY);
    let unit = s.world.hvac(&s.living).unwrap();
    assert_eq!(
        (unit.hold, unit.mode, unit.heat_setpoint),
        (HvacHold::Permanent, HvacMode::Heat, 22.5)
    );
    let h = s.adapter.poll(&account, &living).await.unwrap();
    let h = hvac(&h.state);
    assert_eq!(h.thermostat_state.hold_type, Some(HvacHoldType::Permanent));
    assert_eq!(h.thermostat_state.heat_setpoint, Some(22.5));

    let off =
        Command::SetPermanentHold { mode: Mode::Off, heat_setpoint: None, cool_setpoint: None };
    s.adapter.execute(&account, &living, &off).await.unwrap();
    s.advance(LATENCY);
    let h = s.adapter.poll(&account, &living).await.unwrap();
    let h = hvac(&h.state);
    assert_eq!((h.thermostat_state.mode, h.thermostat_state.heat_setpoint), (Mode::Off, None));
    assert!(!h.temperature_state.is_active);

    s.adapter.execute(&account, &living, &Command::FollowSchedule).await.unwrap();
    // Twice is fine: tado answers 204 without an overlay too.
    s.adapter.execute(&account, &living, &Command::FollowSchedule).await.unwrap();
    s.advance(LATENCY);
    assert_eq!(s.world.hvac(&s.living).unwrap().hold, HvacHold::Schedule);

    // The same setting again is accepted (tado does not refuse no-ops).
    let bedroom = s.device(&s.bedroom);
    let same = Command::SetPermanentHold {
        mode: Mode::Heat,
        heat_setpoint: Some(18.0),
        cool_setpoint: None,
    };
    s.adapter.execute(&account, &bedroom, &same).await.unwrap();
}

#[tokio::test]
async fn temporary_overlays_end_by_themselves() {
    let s = setup().await;
    let account = s.link(&s.link).await;
    let living = s.device(&s.living);
    let (home, zone) = s.sim.zone_id(&s.living).unwrap();
    let http = reqwest::Client::new();
    let url = format!("{}/api/v2/homes/{home}/zones/{zone}/overlay", s.base);
    let body = serde_json::json!({
        "setting": { "type": "HEATING", "power": "ON", "temperature": { "celsius": 23.0 } },
        "termination": { "typeSkillBasedApp": "TIMER", "durationInSeconds": 300 }
    });
    let put = http
        .put(&url)
        .bearer_auth(&account.credentials.access_token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 200);
    let echo: serde_json::Value = put.json().await.unwrap();
    assert_eq!(echo["termination"]["type"], "TIMER");
    s.advance(LATENCY);
    let h = s.adapter.poll(&account, &living).await.unwrap();
    let h = hvac(&h.state);
    assert_eq!(h.thermostat_state.heat_setpoint, Some(23.0));
    assert_eq!(h.thermostat_state.hold_type, None, "a timer is neither permanent nor scheduled");

    // Five minutes later the first request ends it; the world follows after its latency.
    s.advance(Duration::from_secs(300));
    s.adapter.poll(&account, &living).await.unwrap();
    s.advance(LATENCY);
    assert_eq!(s.world.hvac(&s.living).unwrap().hold, HvacHold::Schedule);

    // Out-of-range temperatures are tado's 422 (the adapter refuses them before sending).
    let bad = serde_json::json!({
        "setting": { "type": "HEATING", "power": "ON", "temperature": { "celsius": 28.0 } },
        "termination": { "typeSkillBasedApp": "MANUAL" }
    });
    let account = AccountRef {
        credentials: s.adapter.refresh_credentials(&account).await.unwrap(),
        ..account
    };
    let put = http
        .put(&url)
        .bearer_auth(&account.credentials.access_token)
        .json(&bad)
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 422);
    let hold = Command::SetPermanentHold {
        mode: Mode::Heat,
        heat_setpoint: Some(28.0),
        cool_setpoint: None,
    };
    let used = s.sim.quota_used(&s.link.user_id);
    let e = s.adapter.execute(&account, &living, &hold).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Rejected);
    assert_eq!(s.sim.quota_used(&s.link.user_id), used, "no request for a refused setpoint");
}

#[tokio::test]
async fn offline_zones_keep_their_last_reading() {
    let s = setup().await;
    let account = s.link(&s.link).await;
    let cabin = s.device(&s.cabin);
    let first = s.adapter.poll(&account, &cabin).await.unwrap();
    let seen = hvac(&first.state).temperature_state.clone();
    s.world.set_device_online(&s.cabin, false).unwrap();
    s.advance(Duration::from_secs(120));
    let obs = s.adapter.poll(&account, &cabin).await.unwrap();
    let h = hvac(&obs.state);
    assert!(!h.is_reachable);
    assert_eq!(h.temperature_state.current_temperature, seen.current_temperature);
    assert_eq!(h.temperature_state.last_updated, seen.last_updated, "the old timestamp");
    assert!(!h.temperature_state.is_active);
    let hold = Command::SetPermanentHold {
        mode: Mode::Heat,
        heat_setpoint: Some(20.0),
        cool_setpoint: None,
    };
    let e = s.adapter.execute(&account, &cabin, &hold).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::DeviceOffline);
    let e = s.adapter.execute(&account, &cabin, &Command::FollowSchedule).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::DeviceOffline);
}

#[tokio::test]
async fn discovery_batch_and_foreign_zones() {
    let s = setup().await;
    let hot_water = s.sim.add_hot_water_zone(&s.house);
    let account = s.link(&s.link).await;
    let found = s.adapter.discover(&account).await.unwrap();
    let mut ids: Vec<String> = found.iter().map(|d| d.vendor_id.clone()).collect();
    ids.sort();
    let mut expected: Vec<String> =
        [&s.living, &s.bedroom, &s.cabin].iter().map(|d| s.device(d).vendor_id).collect();
    expected.sort();
    assert_eq!(ids, expected, "heating zones of both homes, not Bob's, not hot water");
    let names: Vec<_> = found.iter().filter_map(|d| d.display_name.clone()).collect();
    assert!(names.contains(&"Living room".to_owned()), "{names:?}");

    // One zoneStates request per home, counted once.
    let devices: Vec<DeviceRef> =
        [&s.living, &s.bedroom, &s.cabin].iter().map(|d| s.device(d)).collect();
    let used = s.sim.quota_used(&s.link.user_id);
    let results = s.adapter.poll_batch(&account, &devices).await;
    let requests: u32 = results.iter().map(|r| r.as_ref().unwrap().requests).sum();
    assert_eq!(requests, 2);
    assert_eq!(s.sim.quota_used(&s.link.user_id), used + 2);
    let single = s.adapter.poll(&account, &devices[0]).await.unwrap();
    assert_eq!(
        hvac(&results[0].as_ref().unwrap().state).thermostat_state,
        hvac(&single.state).thermostat_state
    );

    // Bob's zone is not Alice's (tado's 403), an unknown zone is a 404, hot water is no HVAC.
    let bobs = s.device(&s.bobs_zone);
    assert_eq!(s.adapter.poll(&account, &bobs).await.unwrap_err().kind(), ErrorKind::NotFound);
    let home = devices[0].site_id.clone().unwrap();
    let unknown = DeviceRef { vendor_id: format!("{home}:99"), ..devices[0].clone() };
    assert_eq!(s.adapter.poll(&account, &unknown).await.unwrap_err().kind(), ErrorKind::NotFound);
    let water = DeviceRef { vendor_id: format!("{home}:{hot_water}"), ..devices[0].clone() };
    assert_eq!(s.adapter.poll(&account, &water).await.unwrap_err().kind(), ErrorKind::Unsupported);
    let batch = s.adapter.poll_batch(&account, &[devices[0].clone(), unknown, water]).await;
    assert!(batch[0].is_ok());
    assert_eq!(batch[1].as_ref().unwrap_err().kind(), ErrorKind::NotFound);
    assert_eq!(batch[2].as_ref().unwrap_err().kind(), ErrorKind::Unsupported);
    assert_eq!(batch[0].as_ref().unwrap().requests, 1);
}
