//! The adapter against the SolarEdge simulator on the shared world, beyond the conformance
//! suite: signs in both directions, offline devices, batching, quotas, keys, the raw JSON the
//! simulator serves. The simulator is mounted under `/solaredge` of a `SimHost`, as in the
//! gateway. Time only moves through the shared `ManualClock`; nothing sleeps.

// Test code: unwrap is fine.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use oemgate_core::{
    AccountRef, BatteryChargeStatus, DeviceRef, DeviceState, ErrorKind, ManualClock, Observation,
    VendorAdapter, VendorType,
};
use oemgate_sim::{
    BatteryMode, BatterySpec, DeviceId, Fault, InverterSpec, MeterSpec, RequestLog, SimHost,
    SiteId, SiteSpec, World, WorldConfig,
};
use oemgate_solaredge::sim::{
    FAULT_VENDOR, SimAccount, SolarEdgeSim, WORLD_VENDOR, battery_serial,
};
use oemgate_solaredge::{SIM_PREFIX, SolarEdgeAdapter, SolarEdgeConfig};
use serde_json::Value;

struct Harness {
    clock: Arc<ManualClock>,
    world: World,
    sim: SolarEdgeSim,
    log: RequestLog,
    adapter: SolarEdgeAdapter,
    base: String,
    linked: SimAccount,
    account: AccountRef,
    home: SiteId,
    inverter: DeviceId,
    meter: DeviceId,
    battery: DeviceId,
    other: SiteId,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 4, 15, 10, 0, 0).unwrap()
}

async fn harness() -> Harness {
    let clock = Arc::new(ManualClock::new(t0()));
    let world = World::new(42, clock.clone(), WorldConfig::default());
    let se = || WORLD_VENDOR.to_owned();
    let home = world.add_site(SiteSpec { name: "Solbakken".into(), ..SiteSpec::default() });
    let inverter = world
        .add_inverter(&home, InverterSpec { vendor: se(), ..InverterSpec::default() })
        .unwrap();
    let meter = world.add_meter(&home, MeterSpec { vendor: se(), ..MeterSpec::default() }).unwrap();
    let battery = world
        .add_battery(&home, BatterySpec { vendor: se(), soc_pct: 50.0, ..BatterySpec::default() })
        .unwrap();
    let other = world.add_site(SiteSpec::default());
    world.add_meter(&other, MeterSpec { vendor: se(), ..MeterSpec::default() }).unwrap();
    let sim = SolarEdgeSim::new(world.clone());
    let linked = sim.create_account(std::slice::from_ref(&home));
    sim.create_account(std::slice::from_ref(&other));
    let mut host = SimHost::new(clock.clone());
    host.mount(SIM_PREFIX, sim.router()).unwrap();
    let log = host.request_log();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}{SIM_PREFIX}", listener.local_addr().unwrap());
    let server = tokio::spawn(host.serve(listener));
    let config =
        SolarEdgeConfig { api_base_url: base.clone(), request_timeout: Duration::from_secs(10) };
    let adapter = SolarEdgeAdapter::new(config, clock.clone());
    let credentials = adapter.link_api_key(&linked.api_key).await.unwrap();
    let account = AccountRef {
        user_id: "u1".into(),
        vendor: "SOLAREDGE".into(),
        account_id: "a1".into(),
        credentials,
    };
    Harness {
        clock,
        world,
        sim,
        log,
        adapter,
        base,
        linked,
        account,
        home,
        inverter,
        meter,
        battery,
        other,
        server,
    }
}

impl Harness {
    fn site(&self) -> String {
        self.sim.site_id(&self.home).unwrap()
    }

    fn device(&self, device_type: VendorType) -> DeviceRef {
        let site = self.site();
        let vendor_id = if device_type == VendorType::Battery {
            battery_serial(&self.battery)
        } else {
            site.clone()
        };
        DeviceRef {
            id: format!("d-{device_type}"),
            user_id: "u1".into(),
            device_type,
            vendor_id,
            site_id: Some(site),
        }
    }

    async fn poll(&self, device_type: VendorType) -> Observation {
        self.adapter.poll(&self.account, &self.device(device_type)).await.unwrap()
    }

    async fn raw(&self, path_and_query: &str) -> (u16, Value) {
        let sep = if path_and_query.contains('?') { '&' } else { '?' };
        let url = format!("{}{path_and_query}{sep}api_key={}", self.base, self.linked.api_key);
        let r = reqwest::get(url).await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    fn count(&self) -> usize {
        self.log.count(SIM_PREFIX)
    }
}

fn battery(obs: &Observation) -> &oemgate_core::Battery {
    match &obs.state {
        DeviceState::Battery(b) => b,
        other => panic!("not a battery: {other:?}"),
    }
}

fn meter(obs: &Observation) -> &oemgate_core::Meter {
    match &obs.state {
        DeviceState::Meter(m) => m,
        other => panic!("not a meter: {other:?}"),
    }
}

fn inverter(obs: &Observation) -> &oemgate_core::Inverter {
    match &obs.state {
        DeviceState::Inverter(i) => i,
        other => panic!("not an inverter: {other:?}"),
    }
}

#[tokio::test]
async fn discovery_lists_the_linked_sites_devices() {
    let h = harness().await;
    let before = h.count();
    let found = h.adapter.discover(&h.account).await.unwrap();
    // sites/list, currentPowerFlow, storageData.
    assert_eq!(h.count() - before, 3);
    let site = h.site();
    let mut got: Vec<(VendorType, String, Option<String>)> =
        found.iter().map(|d| (d.device_type, d.vendor_id.clone(), d.site_id.clone())).collect();
    got.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
    assert_eq!(
        got,
        vec![
            (VendorType::Battery, battery_serial(&h.battery), Some(site.clone())),
            (VendorType::Inverter, site.clone(), Some(site.clone())),
            (VendorType::Meter, site.clone(), Some(site.clone())),
        ]
    );
    assert!(
        found.iter().all(|d| d.display_name.as_deref().is_some_and(|n| n.contains("Solbakken")))
    );
}

#[tokio::test]
async fn the_simulator_speaks_solaredge() {
    let h = harness().await;
    let site = h.site();
    let (status, list) = h.raw("/sites/list").await;
    assert_eq!(status, 200);
    assert_eq!(list["sites"]["count"], 1);
    assert_eq!(list["sites"]["site"][0]["id"].as_u64().unwrap().to_string(), site);
    assert_eq!(list["sites"]["site"][0]["location"]["timeZone"], "Europe/Oslo");

    // Site-local times: 10:00 UTC is 12:00 in Oslo in April (summer time).
    let (_, overview) = h.raw(&format!("/site/{site}/overview")).await;
    assert_eq!(overview["overview"]["lastUpdateTime"], "2026-04-15 12:00:00");
    let inv = h.world.inverter(&h.inverter).unwrap();
    let power = overview["overview"]["currentPower"]["power"].as_f64().unwrap();
    assert!((power - inv.production_w).abs() <= 0.05, "W, not kW: {power}");
    let energy = overview["overview"]["lifeTimeData"]["energy"].as_f64().unwrap();
    assert!((energy - inv.lifetime_kwh * 1000.0).abs() <= 0.5, "Wh, not kWh: {energy}");

    let (_, bulk) = h.raw(&format!("/sites/{site},{site}/overview")).await;
    let entry = &bulk["sitesOverviews"]["siteEnergyList"][0];
    assert_eq!(entry["siteId"].as_u64().unwrap().to_string(), site);
    assert_eq!(entry["siteOverview"]["lastUpdateTime"], "2026-04-15 12:00:00");

    let (_, flow) = h.raw(&format!("/site/{site}/currentPowerFlow")).await;
    let flow = &flow["siteCurrentPowerFlow"];
    assert_eq!(flow["unit"], "kW");
    for node in ["GRID", "LOAD", "PV", "STORAGE"] {
        let p = flow[node]["currentPower"].as_f64().unwrap();
        assert!(p >= 0.0, "{node} is unsigned: {p}");
    }

    let (status, storage) = h
        .raw(&format!(
            "/site/{site}/storageData?startTime=2026-04-15%2000:00:00&endTime=2026-04-15%2023:59:59"
        ))
        .await;
    assert_eq!(status, 200);
    let b = &storage["storageData"]["batteries"][0];
    assert_eq!(b["serialNumber"], battery_serial(&h.battery));
    assert_eq!(b["telemetries"][0]["timeStamp"], "2026-04-15 12:00:00");
    let (status, _) = h
        .raw(&format!(
            "/site/{site}/storageData?startTime=2026-04-01%2000:00:00&endTime=2026-04-15%2000:00:00"
        ))
        .await;
    assert_eq!(status, 400, "more than a week");
}

#[tokio::test]
async fn signs_follow_the_connections() {
    let h = harness().await;
    // Charging from the grid at full power.
    h.world.update_battery(&h.battery, |b| b.mode = BatteryMode::ImportFocus).unwrap();
    h.clock.advance(Duration::from_secs(60));
    let truth = h.world.battery(&h.battery).unwrap();
    assert!(truth.power_w > 1000.0, "{truth:?}");
    let obs = h.poll(VendorType::Battery).await;
    assert_eq!(obs.requests, 3);
    let b = battery(&obs);
    assert_eq!(b.charge_state.status, Some(BatteryChargeStatus::Charging));
    let rate = b.charge_state.charge_rate.unwrap();
    assert!((rate - truth.power_w / 1000.0).abs() <= 0.01, "{rate}");

    // Discharging at full power: exporting.
    h.world.update_battery(&h.battery, |b| b.mode = BatteryMode::ExportFocus).unwrap();
    h.clock.advance(Duration::from_secs(60));
    let truth = h.world.battery(&h.battery).unwrap();
    let grid = h.world.meter(&h.meter).unwrap().power_w;
    assert!(truth.power_w < -1000.0 && grid < 0.0, "{truth:?} grid {grid}");
    let b = h.poll(VendorType::Battery).await;
    let b = battery(&b);
    assert_eq!(b.charge_state.status, Some(BatteryChargeStatus::Discharging));
    assert!((b.charge_state.charge_rate.unwrap() - truth.power_w / 1000.0).abs() <= 0.01);
    let m = h.poll(VendorType::Meter).await;
    let power = meter(&m).energy_state.power.unwrap();
    assert!(power < 0.0 && (power - grid / 1000.0).abs() <= 0.01, "export is negative: {power}");

    // Night: importing, the inverter idle but never negative.
    h.world.update_battery(&h.battery, |b| b.mode = BatteryMode::Idle).unwrap();
    h.clock.set(Utc.with_ymd_and_hms(2026, 4, 15, 23, 0, 0).unwrap());
    let grid = h.world.meter(&h.meter).unwrap().power_w;
    assert!(grid > 0.0);
    let m = h.poll(VendorType::Meter).await;
    assert!((meter(&m).energy_state.power.unwrap() - grid / 1000.0).abs() <= 0.01);
    let i = h.poll(VendorType::Inverter).await;
    let i = inverter(&i);
    assert_eq!(i.production_state.production_rate, Some(0.0));
    assert_eq!(i.production_state.is_producing, Some(false));
    assert_eq!(i.production_state.last_updated, Some(h.clock_now()));
}

impl Harness {
    fn clock_now(&self) -> DateTime<Utc> {
        use oemgate_core::Clock;
        self.clock.now()
    }
}

#[tokio::test]
async fn offline_devices_are_unreachable_with_null_live_values() {
    let h = harness().await;
    h.world.set_device_online(&h.meter, false).unwrap();
    h.world.set_device_online(&h.battery, false).unwrap();
    h.world.set_device_online(&h.inverter, false).unwrap();
    let m = h.poll(VendorType::Meter).await;
    assert!(!meter(&m).is_reachable);
    assert_eq!(meter(&m).energy_state.power, None);
    let b = h.poll(VendorType::Battery).await;
    let b = battery(&b);
    assert!(!b.is_reachable);
    assert_eq!((b.charge_state.charge_rate, b.charge_state.battery_level), (None, None));
    // The inverter was last seen at t0 (when linking read it): stale after an hour.
    h.clock.advance(Duration::from_secs(2 * 3600));
    let i = h.poll(VendorType::Inverter).await;
    let i = inverter(&i);
    assert!(!i.is_reachable);
    assert_eq!(i.production_state.production_rate, None);
    assert!(i.production_state.total_lifetime_production.is_some());
}

#[tokio::test]
async fn poll_batch_shares_requests() {
    let h = harness().await;
    let devices: Vec<DeviceRef> = [VendorType::Inverter, VendorType::Meter, VendorType::Battery]
        .into_iter()
        .map(|t| h.device(t))
        .collect();
    let before = h.count();
    let results = h.adapter.poll_batch(&h.account, &devices).await;
    let sent = h.count() - before;
    // sites/list, bulk overview, one currentPowerFlow and one storageData for the site.
    assert_eq!(sent, 4);
    let reported: u32 = results.iter().map(|r| r.as_ref().unwrap().requests).sum();
    assert_eq!(reported as usize, sent);
    let paths: Vec<String> =
        h.log.records(SIM_PREFIX).into_iter().skip(before).map(|r| r.path).collect();
    assert!(
        paths.iter().any(|p| p.starts_with("/sites/") && p.ends_with("/overview")),
        "{paths:?}"
    );
    // Same values as single polls.
    for (device, result) in devices.iter().zip(&results) {
        let single = h.adapter.poll(&h.account, device).await.unwrap();
        assert_eq!(single.state, result.as_ref().unwrap().state);
    }
    // A device of a site the key does not cover fails alone.
    let mut foreign = h.device(VendorType::Meter);
    foreign.vendor_id = h.sim.site_id(&h.other).unwrap();
    let results = h.adapter.poll_batch(&h.account, &[h.device(VendorType::Meter), foreign]).await;
    assert!(results[0].is_ok());
    assert_eq!(results[1].as_ref().unwrap_err().kind(), ErrorKind::NotFound);
}

#[tokio::test]
async fn keys_errors_and_quotas() {
    let h = harness().await;
    // A site the key does not cover: 403.
    let mut foreign = h.device(VendorType::Meter);
    foreign.vendor_id = h.sim.site_id(&h.other).unwrap();
    let e = h.adapter.poll(&h.account, &foreign).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthorized);

    // A wrong key cannot be linked.
    let e = h.adapter.link_api_key("WRONGKEY").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthorized);

    // A server error is transient; a revocation through the fault injector is final.
    h.world.faults().set(FAULT_VENDOR, Fault::ServerError { status: 502 }, None);
    let e = h.adapter.discover(&h.account).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Transient);
    h.world.faults().clear(FAULT_VENDOR);

    // The daily quota: 300 requests a day per key; SolarEdge's 429 says nothing about when.
    let used = h.sim.requests_today_for_key(&h.linked.api_key);
    for _ in used..300 {
        let (status, _) = h.raw("/sites/list?size=1").await;
        assert_eq!(status, 200);
    }
    let e = h.adapter.discover(&h.account).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::RateLimited);
    assert_eq!(e.retry_after(), None);
    // The next day the key works again.
    h.clock.advance(Duration::from_secs(86_400));
    h.adapter.discover(&h.account).await.unwrap();

    h.world.faults().set(FAULT_VENDOR, Fault::RevokeTokens, None);
    let e = h.adapter.poll(&h.account, &h.device(VendorType::Inverter)).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthorized);
    let e = h.adapter.refresh_credentials(&h.account).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthorized);
}
