//! The adapter against the simulated SMA cloud beyond the conformance suite: the code grant,
//! consent, token expiry and rotation, the token bucket, batching per plant, offline devices,
//! and SMA's own error style. Time moves only through the `ManualClock`.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use oemgate_core::{
    AccountRef, Battery, Clock, DeviceRef, DeviceState, ErrorKind, Inverter, ManualClock, Meter,
    Observation, VendorAdapter, VendorType,
};
use oemgate_sim::{
    BatterySpec, DeviceId, Fault, InverterSpec, MeterSpec, RequestLog, SimHost, SiteId, SiteSpec,
    World, WorldConfig,
};
use oemgate_sma::sim::{PREFIX, SmaLink, SmaSim, SmaSimConfig, WORLD_VENDOR};
use oemgate_sma::{SmaAdapter, SmaConfig};

struct Env {
    clock: Arc<ManualClock>,
    world: World,
    sim: SmaSim,
    log: RequestLog,
    adapter: SmaAdapter,
    base: String,
    home: SiteId,
    garage: SiteId,
    inv: DeviceId,
    bat: DeviceId,
    mtr: DeviceId,
    garage_inv: DeviceId,
    link: SmaLink,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Drop for Env {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn start_time() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 4, 20, 9, 30, 0).unwrap()
}

fn sma_site(name: &str) -> SiteSpec {
    SiteSpec {
        name: name.to_owned(),
        timezone: "Europe/Berlin".to_owned(),
        utc_offset_minutes: 120,
        latitude: 48.1,
        longitude: 11.6,
        base_load_w: 400.0,
    }
}

async fn env_with(config: SmaSimConfig) -> Env {
    let clock = Arc::new(ManualClock::new(start_time()));
    let world = World::new(7, clock.clone(), WorldConfig::default());
    let home = world.add_site(sma_site("Sonnenhof"));
    let sma = || WORLD_VENDOR.to_owned();
    let inv = world
        .add_inverter(
            &home,
            InverterSpec {
                vendor: sma(),
                name: "Roof".into(),
                capacity_w: 8000.0,
                lifetime_kwh: 9000.0,
            },
        )
        .unwrap();
    let bat = world
        .add_battery(
            &home,
            BatterySpec {
                vendor: sma(),
                soc_pct: 30.0,
                capacity_kwh: 10.0,
                ..BatterySpec::default()
            },
        )
        .unwrap();
    let mtr = world.add_meter(&home, MeterSpec { vendor: sma(), name: "SHM".into() }).unwrap();
    let garage = world.add_site(sma_site("Garage"));
    let garage_inv = world
        .add_inverter(
            &garage,
            InverterSpec {
                vendor: sma(),
                name: "Garage".into(),
                capacity_w: 3000.0,
                lifetime_kwh: 100.0,
            },
        )
        .unwrap();
    clock.advance(Duration::from_secs(120));
    world.advance_to(clock.now());

    let sim = SmaSim::with_config(world.clone(), config);
    let link = sim.create_account(&[home.clone(), garage.clone()]);
    let mut host = SimHost::new(clock.clone());
    host.mount(PREFIX, sim.router()).unwrap();
    let log = host.request_log();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}{PREFIX}", listener.local_addr().unwrap());
    let server = tokio::spawn(host.serve(listener));
    let mut config =
        SmaConfig::new(sim.config().client_id.clone(), sim.config().client_secret.clone());
    config.api_base_url = base.clone();
    config.auth_base_url = base.clone();
    config.request_timeout = Duration::from_secs(10);
    let adapter = SmaAdapter::new(config, clock.clone());
    Env {
        clock,
        world,
        sim,
        log,
        adapter,
        base,
        home,
        garage,
        inv,
        bat,
        mtr,
        garage_inv,
        link,
        server,
    }
}

async fn env() -> Env {
    env_with(SmaSimConfig::default()).await
}

impl Env {
    async fn account(&self) -> AccountRef {
        let credentials = self
            .adapter
            .exchange_code(&self.link.authorization_code, &self.link.redirect_uri)
            .await
            .unwrap();
        AccountRef {
            user_id: "u".into(),
            vendor: "SMA".into(),
            account_id: self.link.account_id.clone(),
            credentials,
        }
    }

    fn device(&self, t: VendorType, id: &DeviceId, site: &SiteId) -> DeviceRef {
        DeviceRef {
            id: format!("oem-{id}"),
            user_id: "u".into(),
            device_type: t,
            vendor_id: self.sim.device_id(id),
            site_id: Some(self.sim.plant_id(site)),
        }
    }

    fn all(&self) -> Vec<DeviceRef> {
        vec![
            self.device(VendorType::Inverter, &self.inv, &self.home),
            self.device(VendorType::Battery, &self.bat, &self.home),
            self.device(VendorType::Meter, &self.mtr, &self.home),
            self.device(VendorType::Inverter, &self.garage_inv, &self.garage),
        ]
    }

    fn requests(&self) -> usize {
        self.log.count(PREFIX)
    }
}

fn battery(o: &Observation) -> &Battery {
    match &o.state {
        DeviceState::Battery(b) => b,
        other => panic!("not a battery: {other:?}"),
    }
}

fn meter(o: &Observation) -> &Meter {
    match &o.state {
        DeviceState::Meter(m) => m,
        other => panic!("not a meter: {other:?}"),
    }
}

fn inverter(o: &Observation) -> &Inverter {
    match &o.state {
        DeviceState::Inverter(i) => i,
        other => panic!("not an inverter: {other:?}"),
    }
}

#[tokio::test]
async fn a_household_reads_with_units_and_signs() {
    let e = env().await;
    let account = e.account().await;
    let [inv_ref, bat_ref, mtr_ref, _] = <[DeviceRef; 4]>::try_from(e.all()).unwrap();

    // Make the signs interesting both ways: the battery charges now.
    let b = e.world.battery(&e.bat).unwrap();
    assert!(b.power_w > 100.0, "the morning sun should charge the battery: {b:?}");
    let obs = e.adapter.poll(&account, &bat_ref).await.unwrap();
    let bat = battery(&obs);
    let rate = bat.charge_state.charge_rate.unwrap();
    assert!(rate > 0.0 && (rate - b.power_w / 1000.0).abs() < 0.01, "{rate} vs {b:?}");
    assert!((bat.charge_state.battery_level.unwrap() - b.soc_pct).abs() < 0.01);
    assert_eq!(obs.requests, 1);
    // 09:30 UTC plus the 2 minutes of setup: the interval started at 09:30 UTC.
    let interval = Utc.with_ymd_and_hms(2026, 4, 20, 9, 30, 0).unwrap();
    assert_eq!(bat.charge_state.last_updated, Some(interval));

    let obs = e.adapter.poll(&account, &mtr_ref).await.unwrap();
    let m = e.world.meter(&e.mtr).unwrap();
    let power = meter(&obs).energy_state.power.unwrap();
    assert!((power - m.power_w / 1000.0).abs() < 0.01, "{power} vs {m:?}");

    let obs = e.adapter.poll(&account, &inv_ref).await.unwrap();
    assert_eq!(obs.requests, 2, "Recent and Total");
    let i = e.world.inverter(&e.inv).unwrap();
    let ps = &inverter(&obs).production_state;
    assert!((ps.production_rate.unwrap() - i.production_w / 1000.0).abs() < 0.01);
    assert!((ps.total_lifetime_production.unwrap() - i.lifetime_kwh).abs() < 0.01);

    // Discharging at night: the sign flips.
    e.world.update_battery(&e.bat, |m| m.mode = oemgate_sim::BatteryMode::ExportFocus).unwrap();
    e.clock.advance(Duration::from_secs(60));
    let b = e.world.battery(&e.bat).unwrap();
    assert!(b.power_w < -100.0, "export focus discharges: {b:?}");
    let obs = e.adapter.poll(&account, &bat_ref).await.unwrap();
    let rate = battery(&obs).charge_state.charge_rate.unwrap();
    assert!(rate < 0.0 && (rate - b.power_w / 1000.0).abs() < 0.01);
}

#[tokio::test]
async fn poll_batch_reads_each_plant_once() {
    let e = env().await;
    let account = e.account().await;
    let devices = e.all();
    let before = e.requests();
    let results = e.adapter.poll_batch(&account, &devices).await;
    let sent = e.requests() - before;
    // Sonnenhof: Recent + Total; Garage: Recent + Total. Polling one by one would take 6.
    assert_eq!(sent, 4);
    let counts: Vec<u32> = results.iter().map(|r| r.as_ref().unwrap().requests).collect();
    assert_eq!(counts, [2, 0, 0, 2]);
    for (d, r) in devices.iter().zip(&results) {
        let o = r.as_ref().unwrap();
        assert_eq!(o.state.device_type(), d.device_type);
        assert_eq!(o.observed_at, e.clock.now());
    }

    // A batch without inverters needs only Recent.
    let before = e.requests();
    let results = e.adapter.poll_batch(&account, &devices[1..3]).await;
    assert_eq!(e.requests() - before, 1);
    assert_eq!(results.iter().map(|r| r.as_ref().unwrap().requests).sum::<u32>(), 1);

    // A failing plant fails each of its devices with the same kind.
    e.world.faults().set(WORLD_VENDOR, Fault::Outage, None);
    let results = e.adapter.poll_batch(&account, &devices).await;
    assert!(results.iter().all(|r| r.as_ref().unwrap_err().kind() == ErrorKind::Transient));
}

#[tokio::test]
async fn consent_not_given_lists_no_plants() {
    let e = env().await;
    let account = e.account().await;
    assert_eq!(e.adapter.discover(&account).await.unwrap().len(), 4);
    e.sim.set_consent(&e.link.account_id, false);
    let found = e.adapter.discover(&account).await.unwrap();
    assert!(found.is_empty(), "an empty plant list, not an error");
    let err = e.adapter.poll(&account, &e.all()[2]).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorized, "403 for a plant without consent");
    e.sim.set_consent(&e.link.account_id, true);
    assert_eq!(e.adapter.discover(&account).await.unwrap().len(), 4);
}

#[tokio::test]
async fn other_accounts_plants_are_not_found() {
    let e = env().await;
    let bob_site = e.world.add_site(sma_site("Bob"));
    let bob_inv = e
        .world
        .add_inverter(
            &bob_site,
            InverterSpec { vendor: WORLD_VENDOR.into(), ..InverterSpec::default() },
        )
        .unwrap();
    e.sim.create_account(std::slice::from_ref(&bob_site));
    let account = e.account().await;
    let bob = e.device(VendorType::Inverter, &bob_inv, &bob_site);
    let err = e.adapter.poll(&account, &bob).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
}

#[tokio::test]
async fn codes_are_single_use_expiring_and_bound_to_the_redirect() {
    let e = env().await;
    let code = &e.link.authorization_code;
    let err = e.adapter.exchange_code(code, "https://elsewhere.example/cb").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorized, "wrong redirect_uri");
    let err = e.adapter.exchange_code(code, &e.link.redirect_uri).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorized, "a code is gone after one try");

    let code = e.sim.authorization_code(&e.link.account_id, &e.link.redirect_uri).unwrap();
    e.clock.advance(Duration::from_secs(11 * 60));
    let err = e.adapter.exchange_code(&code, &e.link.redirect_uri).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorized, "expired code");

    let mut config = e.adapter.config().clone();
    config.client_secret = "wrong".into();
    let stranger = SmaAdapter::new(config, e.clock.clone());
    let code = e.sim.authorization_code(&e.link.account_id, &e.link.redirect_uri).unwrap();
    let err = stranger.exchange_code(&code, &e.link.redirect_uri).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorized, "invalid_client");
}

#[tokio::test]
async fn the_authorize_redirect_carries_a_working_code() {
    let e = env().await;
    let redirect = "https://oemgate.example/link/sma";
    let url = format!("{}&login_hint={}", e.adapter.authorize_url(redirect, "xyz"), e.link.login);
    assert!(url.starts_with(&format!("{}/oauth2/auth?client_id=", e.base)), "{url}");
    let http =
        reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let answer = http.get(&url).send().await.unwrap();
    assert_eq!(answer.status(), 302);
    let location = answer.headers()["location"].to_str().unwrap().to_owned();
    let location = reqwest::Url::parse(&location).unwrap();
    assert!(location.as_str().starts_with(redirect));
    let pairs: std::collections::HashMap<_, _> = location.query_pairs().into_owned().collect();
    assert_eq!(pairs["state"], "xyz");
    let credentials = e.adapter.exchange_code(&pairs["code"], redirect).await.unwrap();
    assert!(!credentials.access_token.is_empty());
}

#[tokio::test]
async fn access_tokens_live_five_minutes_and_refresh_rotates() {
    let e = env().await;
    let mut account = e.account().await;
    let now = e.clock.now();
    assert_eq!(account.credentials.expires_at, Some(now + chrono::Duration::seconds(300)));
    let device = e.all()[2].clone();
    e.adapter.poll(&account, &device).await.unwrap();

    e.clock.advance(Duration::from_secs(301));
    let before = e.requests();
    let err = e.adapter.poll(&account, &device).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AuthExpired);
    assert_eq!(e.requests(), before, "known to be expired: no request");

    let old = account.clone();
    let fresh = e.adapter.refresh_credentials(&account).await.unwrap();
    assert_ne!(fresh.refresh_token, old.credentials.refresh_token, "SMA rotates refresh tokens");
    account.credentials = fresh;
    e.adapter.poll(&account, &device).await.unwrap();
    // The old refresh token still works until it expires (not single-use) ...
    e.adapter.refresh_credentials(&old).await.unwrap();
    // ... which is two days.
    e.clock.advance(Duration::from_secs(2 * 86_400 + 1));
    let err = e.adapter.refresh_credentials(&old).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorized);
}

#[tokio::test]
async fn revocation_reads_as_expired_then_refresh_fails() {
    let e = env().await;
    let account = e.account().await;
    let device = e.all()[1].clone();
    e.world.faults().set("SMA", Fault::RevokeTokens, None);
    let err = e.adapter.poll(&account, &device).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AuthExpired, "a revoked token gets the same 401");
    let err = e.adapter.refresh_credentials(&account).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorized);
}

#[tokio::test]
async fn the_token_bucket_refills_every_five_minutes() {
    let e = env_with(SmaSimConfig { bucket_size: 3, ..SmaSimConfig::default() }).await;
    let account = e.account().await;
    let device = e.all()[2].clone();
    for _ in 0..3 {
        e.adapter.poll(&account, &device).await.unwrap();
    }
    e.clock.advance(Duration::from_secs(100));
    let err = e.adapter.poll(&account, &device).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RateLimited);
    assert_eq!(err.retry_after(), Some(Duration::from_secs(200)), "until the refill");
    assert_eq!(e.sim.bucket_remaining(), 0);
    e.clock.advance(Duration::from_secs(200));
    // Fresh access token: the first one has expired meanwhile.
    let account = AccountRef {
        credentials: e.adapter.refresh_credentials(&account).await.unwrap(),
        ..account
    };
    e.adapter.poll(&account, &device).await.unwrap();
    assert_eq!(e.sim.bucket_remaining(), 2);
}

#[tokio::test]
async fn offline_devices_are_unreachable_with_null_values() {
    let e = env().await;
    let account = e.account().await;
    let [inv_ref, bat_ref, mtr_ref, _] = <[DeviceRef; 4]>::try_from(e.all()).unwrap();
    e.world.set_device_online(&e.bat, false).unwrap();
    let obs = e.adapter.poll(&account, &bat_ref).await.unwrap();
    let b = battery(&obs);
    assert!(!b.is_reachable);
    assert_eq!(b.charge_state.charge_rate, None);
    assert_eq!(b.charge_state.battery_level, None);
    let obs = e.adapter.poll(&account, &mtr_ref).await.unwrap();
    assert!(meter(&obs).is_reachable);
    e.world.set_device_online(&e.inv, false).unwrap();
    e.world.set_device_online(&e.mtr, false).unwrap();
    let obs = e.adapter.poll(&account, &inv_ref).await.unwrap();
    let i = inverter(&obs);
    assert!(!i.is_reachable);
    assert_eq!(i.production_state.production_rate, None);
    assert!(i.production_state.total_lifetime_production.is_some(), "history stays readable");
}

/// SMA's own wire format, read raw.
#[tokio::test]
async fn wire_format_and_error_style() {
    let e = env().await;
    let account = e.account().await;
    let token = account.credentials.access_token.clone();
    let http = reqwest::Client::new();
    let get = |path: String| http.get(format!("{}{path}", e.base)).bearer_auth(&token).send();

    let plants: serde_json::Value = get("/v1/plants".into()).await.unwrap().json().await.unwrap();
    let home = e.sim.plant_id(&e.home);
    assert_eq!(plants["plants"][0]["plantId"], home.as_str());
    assert_eq!(plants["plants"][0]["timezone"], "Europe/Berlin");

    let recent: serde_json::Value =
        get(format!("/v1/plants/{home}/measurements/sets/EnergyBalance/Recent"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    assert_eq!(recent["setType"], "EnergyBalance");
    assert_eq!(recent["resolution"], "FiveMinutes");
    // 09:30 UTC is 11:30 CEST, without an offset, as SMA writes it.
    assert_eq!(recent["set"][0]["time"], "2026-04-20T11:30:00");
    for key in
        ["pvGeneration", "batteryCharging", "batteryDischarging", "gridFeedIn", "gridConsumption"]
    {
        assert!(recent["set"][0][key].is_number(), "{key}: {recent}");
    }

    let inv = e.sim.device_id(&e.inv);
    let pv: serde_json::Value =
        get(format!("/v1/devices/{inv}/measurements/sets/EnergyAndPowerPv/Recent"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    assert_eq!(pv["device"]["deviceId"], inv.as_str());
    let w = e.world.inverter(&e.inv).unwrap().production_w;
    assert!((pv["set"][0]["pvGeneration"].as_f64().unwrap() - w).abs() < 1.0);

    e.world.faults().set(
        WORLD_VENDOR,
        Fault::RateLimit { retry_after: Duration::from_secs(37) },
        None,
    );
    let answer = get("/v1/plants".into()).await.unwrap();
    assert_eq!(answer.status(), 429);
    assert_eq!(answer.headers()["retry-after"], "37");
    let body: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(body["message"], "Rate limit is exceeded. Try again in 37 seconds.");
    e.world.faults().clear(WORLD_VENDOR);

    let answer =
        http.get(format!("{}/v1/plants", e.base)).bearer_auth("nope").send().await.unwrap();
    assert_eq!(answer.status(), 401);
    assert!(answer.headers()["www-authenticate"].to_str().unwrap().contains("invalid_token"));
}

#[tokio::test]
async fn faults_under_the_upper_case_name_apply_too() {
    let e = env().await;
    let account = e.account().await;
    e.world.faults().set("SMA", Fault::ServerError { status: 502 }, None);
    let err = e.adapter.discover(&account).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Transient);
    e.world.faults().set("SMA", Fault::Truncated, None);
    let err = e.adapter.discover(&account).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Protocol);
    e.world.faults().clear("SMA");
    e.adapter.discover(&account).await.unwrap();
}
