//! The Enphase adapter against the simulated Enphase cloud, beyond the conformance suite:
//! paging, plan limits and Enphase's 429 body, key/client mismatch, the password grant,
//! battery settings, the upload lag, offline devices, batching. The simulator is mounted under
//! `/enphase` of a `SimHost` on 127.0.0.1; time only moves through the `ManualClock`.

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use oemgate_core::{
    AccountRef, BatteryOperationMode, Clock, Command, DeviceRef, DeviceState, ErrorKind,
    ManualClock, Observation, VendorAdapter, VendorType,
};
use oemgate_enphase::sim::{
    EnphaseApp, EnphaseSim, EnphaseSimConfig, FAULT_VENDOR, PREFIX, WORLD_VENDOR,
};
use oemgate_enphase::{EnphaseAdapter, EnphaseConfig, EnphasePlan};
use oemgate_sim::{
    BatteryMode, BatterySpec, DeviceId, Fault, InverterSpec, LatencyProfile, MeterSpec, RequestLog,
    SimHost, SiteId, SiteSpec, World, WorldConfig,
};

const LATENCY_SECS: f64 = 20.0;

struct Setup {
    clock: Arc<ManualClock>,
    world: World,
    sim: EnphaseSim,
    log: RequestLog,
    base: String,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Drop for Setup {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 15, 9, 30, 0).unwrap()
}

async fn setup(plan: EnphasePlan) -> Setup {
    let clock = Arc::new(ManualClock::new(t0()));
    let config = WorldConfig {
        latency: HashMap::from([(WORLD_VENDOR.to_owned(), LatencyProfile::fixed(LATENCY_SECS))]),
        ..WorldConfig::default()
    };
    let world = World::new(7, clock.clone(), config);
    let app = EnphaseApp { plan, ..EnphaseApp::default() };
    let sim = EnphaseSim::with_config(
        world.clone(),
        EnphaseSimConfig { app, ..EnphaseSimConfig::default() },
    );
    let mut host = SimHost::new(clock.clone());
    host.mount(PREFIX, sim.router()).unwrap();
    let log = host.request_log();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}{PREFIX}", listener.local_addr().unwrap());
    let server = tokio::spawn(host.serve(listener));
    Setup { clock, world, sim, log, base, server }
}

impl Setup {
    fn adapter_for(&self, app: &EnphaseApp) -> EnphaseAdapter {
        let mut config = EnphaseConfig::new(&app.api_key, &app.client_id, &app.client_secret)
            .for_base_url(&self.base);
        config.plan = app.plan;
        config.request_timeout = Duration::from_secs(10);
        EnphaseAdapter::new(config, self.clock.clone())
    }

    fn adapter(&self) -> EnphaseAdapter {
        self.adapter_for(&self.sim.app())
    }

    /// A site with an Enphase inverter, battery and meter.
    fn full_site(&self, name: &str) -> (SiteId, DeviceId, DeviceId, DeviceId) {
        let site = self.world.add_site(SiteSpec { name: name.into(), ..SiteSpec::default() });
        let inv = self
            .world
            .add_inverter(
                &site,
                InverterSpec { vendor: WORLD_VENDOR.into(), ..InverterSpec::default() },
            )
            .unwrap();
        let bat = self
            .world
            .add_battery(
                &site,
                BatterySpec {
                    vendor: WORLD_VENDOR.into(),
                    mode: BatteryMode::SelfReliance,
                    ..BatterySpec::default()
                },
            )
            .unwrap();
        let mtr = self
            .world
            .add_meter(&site, MeterSpec { vendor: WORLD_VENDOR.into(), ..MeterSpec::default() })
            .unwrap();
        (site, inv, bat, mtr)
    }

    async fn link(&self, adapter: &EnphaseAdapter, sites: &[SiteId]) -> AccountRef {
        let link = self.sim.create_account(sites);
        let credentials = adapter.exchange_code(&link.code, &link.redirect_uri).await.unwrap();
        AccountRef {
            user_id: "user".into(),
            vendor: "ENPHASE".into(),
            account_id: link.enl_uid,
            credentials,
        }
    }

    fn device(&self, device_type: VendorType, site: &SiteId) -> DeviceRef {
        let system = self.sim.system_id(site).to_string();
        DeviceRef {
            id: format!("dev-{device_type}"),
            user_id: "user".into(),
            device_type,
            vendor_id: system.clone(),
            site_id: Some(system),
        }
    }

    fn api_requests(&self) -> usize {
        self.log.records(PREFIX).iter().filter(|r| r.path.starts_with("/api/v4")).count()
    }

    fn advance(&self, secs: u64) {
        self.clock.advance(Duration::from_secs(secs));
    }
}

fn battery_of(obs: &Observation) -> &oemgate_core::Battery {
    match &obs.state {
        DeviceState::Battery(b) => b,
        other => panic!("not a battery: {other:?}"),
    }
}

fn inverter_of(obs: &Observation) -> &oemgate_core::Inverter {
    match &obs.state {
        DeviceState::Inverter(i) => i,
        other => panic!("not an inverter: {other:?}"),
    }
}

#[tokio::test]
async fn discovery_pages_through_every_system() {
    let s = setup(EnphasePlan::Partner).await;
    let mut sites = Vec::new();
    for n in 0..101 {
        let site = s.world.add_site(SiteSpec { name: format!("Home {n}"), ..SiteSpec::default() });
        s.world
            .add_inverter(
                &site,
                InverterSpec { vendor: WORLD_VENDOR.into(), ..InverterSpec::default() },
            )
            .unwrap();
        sites.push(site);
    }
    let adapter = s.adapter();
    let account = s.link(&adapter, &sites).await;
    let found = adapter.discover(&account).await.unwrap();
    assert_eq!(found.len(), 101);
    assert!(found.iter().all(|d| d.device_type == VendorType::Inverter));
    let pages = s.log.records(PREFIX).iter().filter(|r| r.path == "/api/v4/systems").count();
    assert_eq!(pages, 2, "100 per page");
    assert_eq!(s.api_requests(), 2 + 101, "one devices request per system");
    assert_eq!(found[0].display_name.as_deref(), Some("Home 0"));
}

#[tokio::test]
async fn the_plans_minute_limit_answers_enphases_429() {
    let s = setup(EnphasePlan::Watt).await;
    let (site, ..) = s.full_site("Home");
    let adapter = s.adapter();
    let account = s.link(&adapter, std::slice::from_ref(&site)).await;
    let inverter = s.device(VendorType::Inverter, &site);
    s.advance(20); // 09:30:20: 40 s left in the calendar minute.
    for _ in 0..10 {
        adapter.poll(&account, &inverter).await.unwrap();
    }
    let e = adapter.poll(&account, &inverter).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::RateLimited, "{e}");
    assert_eq!(e.retry_after(), Some(Duration::from_secs(40)), "until period_end");
    let api = oemgate_enphase::api_error_of(&e).unwrap();
    assert_eq!(api.period.as_deref(), Some("minute"));
    assert!(api.details.contains("plan Watt"), "{api}");
    s.advance(40);
    adapter.poll(&account, &inverter).await.unwrap();
}

#[tokio::test]
async fn the_monthly_quota_waits_for_the_next_month() {
    let s = setup(EnphasePlan::Watt).await;
    let (site, ..) = s.full_site("Home");
    let adapter = s.adapter();
    let account = s.link(&adapter, std::slice::from_ref(&site)).await;
    s.sim.set_monthly_usage(&s.sim.app().api_key, 1000);
    let e = adapter.poll(&account, &s.device(VendorType::Inverter, &site)).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::RateLimited);
    let july = Utc.with_ymd_and_hms(2026, 7, 1, 0, 0, 0).unwrap();
    assert_eq!(e.retry_after(), Some((july - t0()).to_std().unwrap()));
    let e = adapter.discover(&account).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::RateLimited);
}

#[tokio::test]
async fn a_key_of_another_application_is_unauthorized() {
    let s = setup(EnphasePlan::Kilowatt).await;
    let (site, ..) = s.full_site("Home");
    let account = s.link(&s.adapter(), std::slice::from_ref(&site)).await;
    let other = EnphaseApp {
        api_key: "other-key".into(),
        client_id: "other-client".into(),
        client_secret: "other-secret".into(),
        plan: EnphasePlan::Kilowatt,
    };
    s.sim.add_app(other.clone());
    let e = s.adapter_for(&other).discover(&account).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthorized, "{e}");
    assert!(
        oemgate_enphase::api_error_of(&e).unwrap().details.contains("API Key -Client mismatch")
    );
    // Another application cannot spend this one's refresh token either.
    let e = s.adapter_for(&other).refresh_credentials(&account).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthorized);
}

#[tokio::test]
async fn refresh_tokens_are_single_use_and_codes_too() {
    let s = setup(EnphasePlan::Kilowatt).await;
    let (site, ..) = s.full_site("Home");
    let adapter = s.adapter();
    let link = s.sim.create_account(std::slice::from_ref(&site));
    let first = adapter.exchange_code(&link.code, &link.redirect_uri).await.unwrap();
    assert_eq!(first.expires_at, Some(t0() + chrono::Duration::seconds(86_393)));
    assert_eq!(first.extra.get("enl_uid"), Some(&link.enl_uid));
    let e = adapter.exchange_code(&link.code, &link.redirect_uri).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthorized, "a spent code");
    let code = s.sim.new_authorization_code(&link.enl_uid).unwrap();
    let e = adapter.exchange_code(&code, "https://elsewhere.example/cb").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthorized, "another redirect URI");

    let account = AccountRef {
        user_id: "u".into(),
        vendor: "ENPHASE".into(),
        account_id: link.enl_uid.clone(),
        credentials: first,
    };
    let second = adapter.refresh_credentials(&account).await.unwrap();
    assert_ne!(second.refresh_token, account.credentials.refresh_token);
    assert_eq!(second.extra.get("enl_uid"), Some(&link.enl_uid));
    let e = adapter.refresh_credentials(&account).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthorized, "a spent refresh token");
    let refreshed = AccountRef { credentials: second, ..account };
    adapter.discover(&refreshed).await.unwrap();
    // Past the access token's day: AuthExpired without a request.
    s.advance(86_400);
    let before = s.api_requests();
    let e = adapter.discover(&refreshed).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AuthExpired);
    assert_eq!(s.api_requests(), before);
}

#[tokio::test]
async fn the_password_grant_is_for_partners_only() {
    let s = setup(EnphasePlan::Partner).await;
    let (site, ..) = s.full_site("Home");
    let link = s.sim.create_account(std::slice::from_ref(&site));
    let adapter = s.adapter();
    let creds = adapter.exchange_password(&link.email, &link.password).await.unwrap();
    assert!(creds.refresh_token.is_some());
    let e = adapter.exchange_password(&link.email, "wrong").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthorized);

    let s = setup(EnphasePlan::Kilowatt).await;
    let link = s.sim.create_account(&[]);
    let e = s.adapter().exchange_password(&link.email, &link.password).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthorized);
}

#[tokio::test]
async fn battery_settings_change_the_world() {
    let s = setup(EnphasePlan::Kilowatt).await;
    let (site, _, bat, _) = s.full_site("Home");
    let adapter = s.adapter();
    let account = s.link(&adapter, std::slice::from_ref(&site)).await;
    let battery = s.device(VendorType::Battery, &site);

    let set = |mode| Command::SetOperationMode { mode };
    let receipt = adapter.execute(&account, &battery, &set(BatteryOperationMode::TimeOfUse)).await;
    assert_eq!(receipt.unwrap().requests, 1);
    assert_eq!(s.world.battery(&bat).unwrap().mode, BatteryMode::SelfReliance, "latency");
    s.advance(LATENCY_SECS as u64 + 1);
    assert_eq!(s.world.battery(&bat).unwrap().mode, BatteryMode::TimeOfUse);
    let obs = adapter.poll(&account, &battery).await.unwrap();
    let b = battery_of(&obs);
    assert_eq!(b.config.operation_mode, Some(oemgate_core::BatteryConfigOperationMode::TimeOfUse));

    // Full Backup charges from the grid only when the user allowed it.
    adapter.execute(&account, &battery, &set(BatteryOperationMode::ImportFocus)).await.unwrap();
    s.advance(LATENCY_SECS as u64 + 1);
    assert_eq!(s.world.battery(&bat).unwrap().mode, BatteryMode::Backup);
    s.sim.set_charge_from_grid(&site, true);
    adapter.execute(&account, &battery, &set(BatteryOperationMode::SelfReliance)).await.unwrap();
    s.advance(LATENCY_SECS as u64 + 1);
    adapter.execute(&account, &battery, &set(BatteryOperationMode::ImportFocus)).await.unwrap();
    s.advance(LATENCY_SECS as u64 + 1);
    assert_eq!(s.world.battery(&bat).unwrap().mode, BatteryMode::ImportFocus);
    let obs = adapter.poll(&account, &battery).await.unwrap();
    let mode = battery_of(&obs).config.operation_mode;
    assert_eq!(mode, Some(oemgate_core::BatteryConfigOperationMode::ImportFocus));

    // The reserve is Enode's dischargeLimit.
    adapter.set_battery_reserve(&account, &battery, 35.0).await.unwrap();
    s.advance(LATENCY_SECS as u64 + 1);
    assert_eq!(s.world.battery(&bat).unwrap().reserve_pct, 35.0);
    let obs = adapter.poll(&account, &battery).await.unwrap();
    assert_eq!(battery_of(&obs).charge_state.discharge_limit, Some(35.0));
    // Below the shutdown level Enphase refuses it.
    let e = adapter.set_battery_reserve(&account, &battery, 5.0).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Rejected, "{e}");
}

#[tokio::test]
async fn the_put_takes_the_exact_spelling_only() {
    let s = setup(EnphasePlan::Kilowatt).await;
    let (site, ..) = s.full_site("Home");
    let adapter = s.adapter();
    let account = s.link(&adapter, std::slice::from_ref(&site)).await;
    let system = s.sim.system_id(&site);
    let app = s.sim.app();
    let http = reqwest::Client::new();
    let url = format!("{}/api/v4/systems/config/{system}/battery_settings", s.base);
    let put = |mode: &str| {
        http.put(&url)
            .query(&[("key", app.api_key.as_str())])
            .bearer_auth(&account.credentials.access_token)
            .json(&serde_json::json!({ "battery_mode": mode }))
            .send()
    };
    let wrong = put("self-consumption").await.unwrap();
    assert_eq!(wrong.status(), 400);
    let right = put("Savings Mode").await.unwrap();
    assert_eq!(right.status(), 200);
    let echo: serde_json::Value = right.json().await.unwrap();
    assert_eq!(echo["battery_mode"], "savings-mode", "the echo spells it its own way");
    let get: serde_json::Value = http
        .get(&url)
        .query(&[("key", app.api_key.as_str())])
        .bearer_auth(&account.credentials.access_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(get["battery_mode"], "Self - Consumption", "the world did not switch yet");
    let post = http
        .post(format!("{}/api/v4/systems/{system}/summary", s.base))
        .query(&[("key", app.api_key.as_str())])
        .bearer_auth(&account.credentials.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), 405);
    let body: serde_json::Value = post.json().await.unwrap();
    assert_eq!(body, serde_json::json!({ "reason": "405", "message": ["Method not allowed"] }));
}

#[tokio::test]
async fn the_cloud_lags_by_the_upload_interval() {
    let s = setup(EnphasePlan::Kilowatt).await;
    let (site, inv, ..) = s.full_site("Home");
    let adapter = s.adapter();
    let account = s.link(&adapter, std::slice::from_ref(&site)).await;
    let inverter = s.device(VendorType::Inverter, &site);
    let first = adapter.poll(&account, &inverter).await.unwrap();
    let lifetime = |obs: &Observation| inverter_of(obs).production_state.total_lifetime_production;
    let updated = |obs: &Observation| inverter_of(obs).production_state.last_updated;
    assert_eq!(updated(&first), Some(t0()));

    s.advance(10 * 60);
    let stale = adapter.poll(&account, &inverter).await.unwrap();
    assert_eq!(lifetime(&stale), lifetime(&first), "no upload yet");
    assert_eq!(updated(&stale), Some(t0()));
    assert_eq!(stale.observed_at, t0() + chrono::Duration::minutes(10));

    s.advance(5 * 60);
    let fresh = adapter.poll(&account, &inverter).await.unwrap();
    let now = s.clock.now();
    assert_eq!(updated(&fresh), Some(now));
    let truth = s.world.inverter(&inv).unwrap().lifetime_kwh;
    assert!((lifetime(&fresh).unwrap() - truth).abs() < 0.01);
    assert!(lifetime(&fresh) > lifetime(&first), "it produced meanwhile");

    // Live data on request.
    s.sim.set_upload_interval(Duration::ZERO);
    s.advance(60);
    let live = adapter.poll(&account, &inverter).await.unwrap();
    assert_eq!(updated(&live), Some(s.clock.now()));
}

#[tokio::test]
async fn offline_devices_are_unreachable_and_refuse_settings() {
    let s = setup(EnphasePlan::Kilowatt).await;
    s.sim.set_upload_interval(Duration::ZERO);
    let (site, inv, bat, mtr) = s.full_site("Home");
    let adapter = s.adapter();
    let account = s.link(&adapter, std::slice::from_ref(&site)).await;
    let battery = s.device(VendorType::Battery, &site);
    let inverter = s.device(VendorType::Inverter, &site);
    s.world.set_device_online(&bat, false).unwrap();
    let obs = adapter.poll(&account, &battery).await.unwrap();
    assert!(!battery_of(&obs).is_reachable);
    assert!(inverter_of(&adapter.poll(&account, &inverter).await.unwrap()).is_reachable);
    let e = adapter
        .execute(
            &account,
            &battery,
            &Command::SetOperationMode { mode: BatteryOperationMode::TimeOfUse },
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::DeviceOffline, "{e}");

    // The whole gateway gone: status comm, the last upload's values stay.
    let before = inverter_of(&adapter.poll(&account, &inverter).await.unwrap()).clone();
    for id in [&inv, &mtr] {
        s.world.set_device_online(id, false).unwrap();
    }
    s.advance(3600);
    let after = inverter_of(&adapter.poll(&account, &inverter).await.unwrap()).clone();
    assert!(!after.is_reachable);
    assert_eq!(after.production_state, before.production_state);
}

#[tokio::test]
async fn a_batch_reads_each_system_once() {
    let s = setup(EnphasePlan::Kilowatt).await;
    let (site, ..) = s.full_site("Home");
    let (pv_only, ..) = {
        let site = s.world.add_site(SiteSpec::default());
        s.world
            .add_inverter(
                &site,
                InverterSpec { vendor: WORLD_VENDOR.into(), ..InverterSpec::default() },
            )
            .unwrap();
        (site, ())
    };
    let adapter = s.adapter();
    let account = s.link(&adapter, &[site.clone(), pv_only.clone()]).await;
    let devices = vec![
        s.device(VendorType::Meter, &site),
        s.device(VendorType::Inverter, &pv_only),
        s.device(VendorType::Battery, &site),
        s.device(VendorType::Inverter, &site),
    ];
    let before = s.api_requests();
    let results = adapter.poll_batch(&account, &devices).await;
    let sent = s.api_requests() - before;
    assert_eq!(sent, 5, "4 for the full system, 1 for the PV-only one");
    let counts: Vec<u32> = results.iter().map(|r| r.as_ref().unwrap().requests).collect();
    assert_eq!(counts, [2, 1, 2, 0]);
    for (device, result) in devices.iter().zip(&results) {
        assert_eq!(result.as_ref().unwrap().state.device_type(), device.device_type);
    }

    // A battery read of a system without batteries: Enphase's 422 → NotFound.
    let e = adapter.poll(&account, &s.device(VendorType::Battery, &pv_only)).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");

    // Under a rate limit the batch stops after the first refusal.
    s.world.faults().set(
        FAULT_VENDOR,
        Fault::RateLimit { retry_after: Duration::from_secs(9) },
        None,
    );
    let before = s.log.count(PREFIX);
    let results = adapter.poll_batch(&account, &devices).await;
    assert_eq!(s.log.count(PREFIX) - before, 1);
    for r in &results {
        let e = r.as_ref().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::RateLimited);
        assert_eq!(e.retry_after(), Some(Duration::from_secs(9)));
    }
    s.world.faults().clear(FAULT_VENDOR);
}

#[tokio::test]
async fn a_system_of_another_account_is_not_found() {
    let s = setup(EnphasePlan::Kilowatt).await;
    let (mine, ..) = s.full_site("Mine");
    let (theirs, ..) = s.full_site("Theirs");
    let adapter = s.adapter();
    let account = s.link(&adapter, std::slice::from_ref(&mine)).await;
    s.sim.create_account(std::slice::from_ref(&theirs));
    let e = adapter.poll(&account, &s.device(VendorType::Inverter, &theirs)).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    let found = adapter.discover(&account).await.unwrap();
    assert_eq!(found.len(), 3);
    let system = s.sim.system_id(&mine).to_string();
    assert!(found.iter().all(|d| d.vendor_id == system));
}
