#![allow(clippy::unwrap_used)]
//! The adapter against the FusionSolar simulator, beyond the conformance suite: the
//! per-interface rate limit, one session per account, idle sessions, batching, plant KPIs,
//! revocation by fault, and the simulator's raw answers. Manual clock, no sleeping.

use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use oemgate_core::{
    AccountRef, Clock, DeviceRef, DeviceState, ErrorKind, ManualClock, VendorAdapter, VendorType,
};
use oemgate_huawei::sim::{self, HuaweiLogin, HuaweiSim};
use oemgate_huawei::{HuaweiAdapter, HuaweiConfig, PlantHealth};
use oemgate_sim::{
    BatteryMode, BatterySpec, DeviceId, DeviceKind, Fault, InverterSpec, MeterSpec, SimHost,
    SiteId, SiteSpec, World, WorldConfig,
};
use serde_json::{Value, json};

struct Setup {
    clock: Arc<ManualClock>,
    world: World,
    cloud: HuaweiSim,
    adapter: HuaweiAdapter,
    base_url: String,
    login: HuaweiLogin,
    site: SiteId,
    inverters: Vec<DeviceId>,
    battery: DeviceId,
    meter: DeviceId,
    requests: oemgate_sim::RequestLog,
    _server: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Setup {
    async fn new(rate_limit: bool) -> Self {
        let clock =
            Arc::new(ManualClock::new(Utc.with_ymd_and_hms(2026, 6, 15, 10, 0, 0).unwrap()));
        let world = World::new(7, clock.clone(), WorldConfig::default());
        let site = world.add_site(SiteSpec::default());
        let inverter = |name: &str| InverterSpec {
            vendor: sim::WORLD_VENDOR.into(),
            name: name.into(),
            capacity_w: 5_000.0,
            lifetime_kwh: 1_000.0,
        };
        let inverters = vec![
            world.add_inverter(&site, inverter("east")).unwrap(),
            world.add_inverter(&site, inverter("west")).unwrap(),
        ];
        let battery = world
            .add_battery(
                &site,
                BatterySpec {
                    vendor: sim::WORLD_VENDOR.into(),
                    mode: BatteryMode::ExportFocus,
                    soc_pct: 90.0,
                    ..BatterySpec::default()
                },
            )
            .unwrap();
        let meter = world
            .add_meter(&site, MeterSpec { vendor: sim::WORLD_VENDOR.into(), name: "m".into() })
            .unwrap();
        let other = world.add_site(SiteSpec::default());
        world
            .add_inverter(
                &other,
                InverterSpec { vendor: sim::WORLD_VENDOR.into(), ..InverterSpec::default() },
            )
            .unwrap();

        let cloud = HuaweiSim::new(world.clone());
        if !rate_limit {
            cloud.set_interface_rate_limit(None);
        }
        let login = cloud.create_account(std::slice::from_ref(&site));
        cloud.create_account(&[other]);
        let mut host = SimHost::new(clock.clone());
        host.mount(sim::PREFIX, cloud.router()).unwrap();
        let requests = host.request_log();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base_url = format!("http://{}{}", listener.local_addr().unwrap(), sim::PREFIX);
        let server = tokio::spawn(host.serve(listener));
        let adapter = HuaweiAdapter::new(
            HuaweiConfig { base_url: base_url.clone(), request_timeout: Duration::from_secs(5) },
            clock.clone(),
        );
        Self {
            clock,
            world,
            cloud,
            adapter,
            base_url,
            login,
            site,
            inverters,
            battery,
            meter,
            requests,
            _server: server,
        }
    }

    async fn account(&self) -> AccountRef {
        let credentials =
            self.adapter.login(&self.login.user_name, &self.login.system_code).await.unwrap();
        AccountRef {
            user_id: "u".into(),
            vendor: "HUAWEI".into(),
            account_id: self.login.user_name.clone(),
            credentials,
        }
    }

    fn device(&self, id: &DeviceId, kind: DeviceKind) -> DeviceRef {
        let device_type = match kind {
            DeviceKind::Inverter => VendorType::Inverter,
            DeviceKind::Battery => VendorType::Battery,
            _ => VendorType::Meter,
        };
        DeviceRef {
            id: id.to_string(),
            user_id: "u".into(),
            device_type,
            vendor_id: sim::device_key(id, kind).unwrap().to_string(),
            site_id: Some(sim::station_code(&self.site)),
        }
    }

    fn count(&self) -> usize {
        self.requests.count(sim::PREFIX)
    }

    async fn raw(&self, interface: &str, token: Option<&str>, body: Value) -> reqwest::Response {
        let mut request = reqwest::Client::new()
            .post(format!("{}/thirdData/{interface}", self.base_url))
            .json(&body);
        if let Some(token) = token {
            request = request.header("XSRF-TOKEN", token);
        }
        request.send().await.unwrap()
    }
}

#[tokio::test]
async fn one_call_per_minute_per_interface() {
    let s = Setup::new(true).await;
    let account = s.account().await;
    let inverter = s.device(&s.inverters[0], DeviceKind::Inverter);
    let meter = s.device(&s.meter, DeviceKind::Meter);
    s.adapter.poll(&account, &inverter).await.unwrap();
    // Same interface, same minute: 407, no wait given.
    let e = s.adapter.poll(&account, &meter).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::RateLimited, "{e}");
    assert_eq!(e.retry_after(), None);
    // Another interface is fine.
    assert_eq!(s.adapter.discover(&account).await.unwrap().len(), 4);
    s.clock.advance(Duration::from_secs(60));
    s.adapter.poll(&account, &meter).await.unwrap();
}

#[tokio::test]
async fn a_second_login_ends_the_first_session() {
    let s = Setup::new(false).await;
    let old = s.account().await;
    let inverter = s.device(&s.inverters[0], DeviceKind::Inverter);
    let fresh = s.adapter.refresh_credentials(&old).await.unwrap();
    assert_ne!(fresh.access_token, old.credentials.access_token);
    assert_eq!(fresh.refresh_token, old.credentials.refresh_token, "the password stays");
    assert_eq!(fresh.extra, old.credentials.extra);
    assert_eq!(fresh.expires_at, None);
    assert_eq!(s.cloud.sessions_of(&s.login.user_name), 1);
    let e = s.adapter.poll(&old, &inverter).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AuthExpired, "{e}");
    let account = AccountRef { credentials: fresh, ..old };
    s.adapter.poll(&account, &inverter).await.unwrap();
    // Secrets stay out of Debug.
    let debug = format!("{:?} {:?}", account.credentials, s.login);
    assert!(!debug.contains(&s.login.system_code), "{debug}");
    assert!(!debug.contains(&account.credentials.access_token), "{debug}");
}

#[tokio::test]
async fn idle_sessions_expire_and_calls_extend_them() {
    let s = Setup::new(false).await;
    let account = s.account().await;
    let inverter = s.device(&s.inverters[0], DeviceKind::Inverter);
    s.clock.advance(Duration::from_secs(25 * 60));
    s.adapter.poll(&account, &inverter).await.unwrap();
    s.clock.advance(Duration::from_secs(25 * 60));
    s.adapter.poll(&account, &inverter).await.unwrap();
    s.clock.advance(Duration::from_secs(31 * 60));
    let e = s.adapter.poll(&account, &inverter).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AuthExpired);
}

#[tokio::test]
async fn poll_batch_reads_each_type_once() {
    let s = Setup::new(false).await;
    let account = s.account().await;
    let devices = vec![
        s.device(&s.inverters[0], DeviceKind::Inverter),
        s.device(&s.meter, DeviceKind::Meter),
        s.device(&s.inverters[1], DeviceKind::Inverter),
        s.device(&s.battery, DeviceKind::Battery),
        // Not on the account: NotFound inside a successful call.
        DeviceRef {
            vendor_id: "38:1000000019999999".into(),
            ..s.device(&s.inverters[0], DeviceKind::Inverter)
        },
        // Not a FusionSolar id at all: NotFound without a request.
        DeviceRef { vendor_id: "nope".into(), ..s.device(&s.meter, DeviceKind::Meter) },
    ];
    let before = s.count();
    let results = s.adapter.poll_batch(&account, &devices).await;
    let sent = s.count() - before;
    assert_eq!(sent, 3, "one getDevRealKpi per device type");
    let reported: u32 = results.iter().filter_map(|r| r.as_ref().ok()).map(|o| o.requests).sum();
    assert_eq!(reported, 3);
    assert_eq!(results[4].as_ref().unwrap_err().kind(), ErrorKind::NotFound);
    assert_eq!(results[5].as_ref().unwrap_err().kind(), ErrorKind::NotFound);
    for (device, result) in devices.iter().zip(&results).take(4) {
        let obs = result.as_ref().unwrap();
        assert_eq!(obs.state.device_type(), device.device_type);
        assert_eq!(obs.observed_at, s.clock.now());
    }
    // Values match the world: production, export-focused battery discharging, grid sign.
    let DeviceState::Inverter(inv) = &results[0].as_ref().unwrap().state else { panic!() };
    let truth = s.world.inverter(&s.inverters[0]).unwrap();
    let rate = inv.production_state.production_rate.unwrap();
    assert!((rate - truth.production_w / 1000.0).abs() < 0.001, "{rate} vs {truth:?}");
    let DeviceState::Battery(bat) = &results[3].as_ref().unwrap().state else { panic!() };
    let truth = s.world.battery(&s.battery).unwrap();
    assert!(truth.power_w < 0.0, "export focus discharges: {truth:?}");
    let rate = bat.charge_state.charge_rate.unwrap();
    assert!((rate - truth.power_w / 1000.0).abs() < 0.001);
    assert_eq!(bat.config.operation_mode, Some(oemgate_core::BatteryConfigOperationMode::Unknown));
    let DeviceState::Meter(meter) = &results[1].as_ref().unwrap().state else { panic!() };
    let truth = s.world.meter(&s.meter).unwrap();
    let power = meter.energy_state.power.unwrap();
    assert!((power - truth.power_w / 1000.0).abs() < 0.001, "{power} vs {truth:?}");
}

#[tokio::test]
async fn plant_kpis_and_discovery() {
    let s = Setup::new(false).await;
    let account = s.account().await;
    let found = s.adapter.discover(&account).await.unwrap();
    let mut ids: Vec<String> = found.iter().map(|d| d.vendor_id.clone()).collect();
    ids.sort();
    let mut expected: Vec<String> = [
        s.device(&s.inverters[0], DeviceKind::Inverter),
        s.device(&s.inverters[1], DeviceKind::Inverter),
        s.device(&s.battery, DeviceKind::Battery),
        s.device(&s.meter, DeviceKind::Meter),
    ]
    .iter()
    .map(|d| d.vendor_id.clone())
    .collect();
    expected.sort();
    assert_eq!(ids, expected);
    assert!(found.iter().all(|d| d.site_id == Some(sim::station_code(&s.site))));
    assert!(found.iter().any(|d| d.display_name.as_deref() == Some("east")));

    let code = sim::station_code(&s.site);
    let kpis = s.adapter.read_plant_kpis(&account, std::slice::from_ref(&code)).await.unwrap();
    assert_eq!(kpis.len(), 1);
    assert_eq!(kpis[0].health, Some(PlantHealth::Healthy));
    let total: f64 = s.inverters.iter().map(|i| s.world.inverter(i).unwrap().lifetime_kwh).sum();
    assert!((kpis[0].total_production_kwh.unwrap() - total).abs() < 0.01);
    // Within the session's 30 idle minutes.
    s.clock.advance(Duration::from_secs(25 * 60));
    let kpis = s.adapter.read_plant_kpis(&account, &[code]).await.unwrap();
    assert!(kpis[0].day_production_kwh.unwrap() > 0.0, "25 minutes of June morning sun");

    s.world.set_device_online(&s.inverters[1], false).unwrap();
    let kpis = s.adapter.read_plant_kpis(&account, &[sim::station_code(&s.site)]).await.unwrap();
    assert_eq!(kpis[0].health, Some(PlantHealth::Faulty));
    let obs =
        s.adapter.poll(&account, &s.device(&s.inverters[1], DeviceKind::Inverter)).await.unwrap();
    let DeviceState::Inverter(inv) = obs.state else { panic!() };
    assert!(!inv.is_reachable);
    assert_eq!(inv.production_state.production_rate, None);
}

#[tokio::test]
async fn revocation_by_fault_needs_a_relink() {
    let s = Setup::new(false).await;
    let account = s.account().await;
    s.world.faults().set(sim::FAULT_VENDOR, Fault::RevokeTokens, None);
    let e = s.adapter.discover(&account).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AuthExpired, "a dead session reads as 305");
    let e = s.adapter.refresh_credentials(&account).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthorized, "{e}");
}

#[tokio::test]
async fn logout_ends_the_session() {
    let s = Setup::new(false).await;
    let account = s.account().await;
    s.adapter.logout(&account).await.unwrap();
    assert_eq!(s.cloud.sessions_of(&s.login.user_name), 0);
    let e = s.adapter.discover(&account).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AuthExpired);
}

#[tokio::test]
async fn wrong_password_is_unauthorized() {
    let s = Setup::new(false).await;
    let e = s.adapter.login(&s.login.user_name, "wrong").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthorized);
    assert!(!e.to_string().contains(&s.login.user_name), "{e}");
}

#[tokio::test]
async fn raw_answers_look_like_fusionsolar() {
    let s = Setup::new(false).await;
    // Login: HTTP 200, token in the xsrf-token header and the XSRF-TOKEN cookie.
    let body = json!({"userName": s.login.user_name, "systemCode": s.login.system_code});
    let response = s.raw("login", None, body).await;
    assert_eq!(response.status(), 200);
    let token = response.headers()["xsrf-token"].to_str().unwrap().to_owned();
    let cookie = response.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.starts_with(&format!("XSRF-TOKEN={token}")));
    let env: Value = response.json().await.unwrap();
    assert_eq!(env["success"], true);
    assert_eq!(env["failCode"], 0);

    // Errors are HTTP 200 with success=false.
    let response = s.raw("stations", Some("bogus"), json!({"pageNo": 1, "pageSize": 100})).await;
    assert_eq!(response.status(), 200);
    let env: Value = response.json().await.unwrap();
    assert_eq!(env["success"], false);
    assert_eq!(env["failCode"], 305);

    // Units and signs on the wire: inverter kW, battery W (+ charging), meter W (+ export).
    let meter = sim::device_key(&s.meter, DeviceKind::Meter).unwrap();
    let body = json!({"devIds": meter.dev_id, "devTypeId": 47});
    let env: Value = s.raw("getDevRealKpi", Some(&token), body).await.json().await.unwrap();
    let map = &env["data"][0]["dataItemMap"];
    let grid_w = s.world.meter(&s.meter).unwrap().power_w;
    assert!((map["active_power"].as_f64().unwrap() + grid_w).abs() < 0.1, "{map} vs {grid_w}");
    assert_eq!(env["params"]["currentTime"], s.clock.now().timestamp_millis());

    // More than 100 ids: failCode 20015; a body that is not an object: framework exception.
    let ids: Vec<String> = (0..101).map(|i| format!("{}", 1_000_000_000_000_000u64 + i)).collect();
    let body = json!({"devIds": ids.join(","), "devTypeId": 38});
    let env: Value = s.raw("getDevRealKpi", Some(&token), body).await.json().await.unwrap();
    assert_eq!(env["failCode"], 20015);
    let env: Value = s.raw("getDevList", Some(&token), json!([1])).await.json().await.unwrap();
    assert_eq!(env["exceptionId"], "framwork.remote.Paramerror");

    // Faults in FusionSolar's style.
    s.world.faults().set(
        sim::FAULT_VENDOR,
        Fault::RateLimit { retry_after: Duration::from_secs(42) },
        None,
    );
    let response = s.raw("stations", Some(&token), json!({"pageNo": 1, "pageSize": 100})).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["retry-after"], "42");
    let env: Value = response.json().await.unwrap();
    assert_eq!(env["failCode"], 407);
    assert_eq!(env["data"], "ACCESS_FREQUENCY_IS_TOO_HIGH");
    s.world.faults().clear(sim::FAULT_VENDOR);
    s.world.faults().set(sim::WORLD_VENDOR, Fault::Outage, None);
    let response = s.raw("stations", Some(&token), json!({})).await;
    assert_eq!(response.status(), 503);
    s.world.faults().clear_all();
    let response = s.raw("nothing", Some(&token), json!({})).await;
    assert_eq!(response.status(), 404);
}
