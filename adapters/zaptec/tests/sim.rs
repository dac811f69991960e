//! The Zaptec adapter against the simulated Zaptec cloud, beyond the conformance suite: the
//! per-account rate limit, the installation-level current limit (sole, shared, no owner
//! rights), pause and resume, refusals, offline chargers, the login, token expiry, paging and
//! batching. The simulator is mounted under `/zaptec` of a `SimHost` on 127.0.0.1; time only
//! moves through the `ManualClock`.

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use oemgate_core::{
    AccountRef, ChargerPowerDeliveryState, Clock, Command, DeviceRef, DeviceState, ErrorKind,
    ManualClock, Observation, VendorAdapter, VendorType,
};
use oemgate_sim::{
    ChargerSpec, DeviceId, DrivingPattern, LatencyProfile, RequestLog, SimHost, SiteId, SiteSpec,
    VehicleSpec, World, WorldConfig,
};
use oemgate_zaptec::map::{
    INSTALLATION_ACCESS_INTERVENTION_ID, SHARED_INSTALLATION_INTERVENTION_ID,
};
use oemgate_zaptec::sim::{PREFIX, WORLD_VENDOR, ZaptecLogin, ZaptecRole, ZaptecSim};
use oemgate_zaptec::{CommandRefused, ZaptecAdapter, ZaptecConfig};
use serde_json::Value;

const LATENCY_SECS: f64 = 10.0;

struct Setup {
    clock: Arc<ManualClock>,
    world: World,
    sim: ZaptecSim,
    log: RequestLog,
    base: String,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    /// A site with one Zaptec charger and a car charging on it.
    home: SiteId,
    garage: DeviceId,
    car: DeviceId,
    /// A site with two Zaptec chargers on one installation.
    shared: SiteId,
    left: DeviceId,
}

impl Drop for Setup {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 14, 1, 30, 0).unwrap()
}

fn car(level: f64, charging: bool) -> VehicleSpec {
    VehicleSpec {
        battery_level: level,
        charge_limit: 80.0,
        amps: 32,
        max_amps: 32,
        max_ac_kw: 11.0,
        plugged_in: true,
        charging,
        charge_on_plug: false,
        pattern: DrivingPattern { commute_km: None, errands_per_week: 0.0, plug_in_share: 0.0 },
        ..VehicleSpec::default()
    }
}

fn zaptec(name: &str) -> ChargerSpec {
    ChargerSpec {
        vendor: WORLD_VENDOR.into(),
        name: name.into(),
        max_current_a: 16.0,
        hardware_max_a: 32.0,
        ..ChargerSpec::default()
    }
}

async fn setup() -> Setup {
    let clock = Arc::new(ManualClock::new(t0()));
    let config = WorldConfig {
        latency: HashMap::from([(WORLD_VENDOR.to_owned(), LatencyProfile::fixed(LATENCY_SECS))]),
        ..WorldConfig::default()
    };
    let world = World::new(11, clock.clone(), config);
    let home = world.add_site(SiteSpec { name: "Home".into(), ..SiteSpec::default() });
    let car = world.add_vehicle(&home, car(40.0, true)).unwrap();
    let garage = world.add_charger(&home, zaptec("Garage")).unwrap();
    let shared = world.add_site(SiteSpec { name: "Shared".into(), ..SiteSpec::default() });
    let left = world.add_charger(&shared, zaptec("Carport left Pro")).unwrap();
    world.add_charger(&shared, zaptec("Carport right")).unwrap();

    let sim = ZaptecSim::new(world.clone());
    let mut host = SimHost::new(clock.clone());
    host.mount(PREFIX, sim.router()).unwrap();
    let log = host.request_log();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}{PREFIX}", listener.local_addr().unwrap());
    let server = tokio::spawn(host.serve(listener));
    Setup { clock, world, sim, log, base, server, home, garage, car, shared, left }
}

impl Setup {
    fn adapter(&self) -> ZaptecAdapter {
        let config = ZaptecConfig::new().for_base_url(&self.base);
        ZaptecAdapter::new(config, self.clock.clone())
    }

    async fn link(&self, login: &ZaptecLogin) -> AccountRef {
        let credentials = self.adapter().login(&login.username, &login.password).await.unwrap();
        AccountRef {
            user_id: "user-1".into(),
            vendor: "ZAPTEC".into(),
            account_id: login.user_id.clone(),
            credentials,
        }
    }

    async fn owner(&self) -> AccountRef {
        let login = self.sim.create_account(&[self.home.clone(), self.shared.clone()]);
        self.link(&login).await
    }

    fn device(&self, charger: &DeviceId, site: &SiteId) -> DeviceRef {
        DeviceRef {
            id: format!("dev-{charger}"),
            user_id: "user-1".into(),
            device_type: VendorType::Charger,
            vendor_id: self.sim.charger_id(charger),
            site_id: Some(self.sim.installation_id(site)),
        }
    }

    fn garage_ref(&self) -> DeviceRef {
        self.device(&self.garage, &self.home)
    }

    fn left_ref(&self) -> DeviceRef {
        self.device(&self.left, &self.shared)
    }

    fn requests(&self) -> usize {
        self.log.count(PREFIX)
    }

    fn advance(&self, secs: u64) {
        self.clock.advance(Duration::from_secs(secs));
    }

    /// A raw GET with the account's token.
    async fn get_raw(&self, account: &AccountRef, path: &str) -> (u16, Value) {
        let response = reqwest::Client::new()
            .get(format!("{}/api/{path}", self.base))
            .bearer_auth(&account.credentials.access_token)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    async fn post_raw(&self, account: &AccountRef, path: &str, body: Value) -> (u16, Value) {
        let response = reqwest::Client::new()
            .post(format!("{}/api/{path}", self.base))
            .bearer_auth(&account.credentials.access_token)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }
}

fn charger_of(obs: &Observation) -> &oemgate_core::Charger {
    match &obs.state {
        DeviceState::Charger(c) => c,
        other => panic!("not a charger: {other:?}"),
    }
}

fn state_value(list: &Value, id: i64) -> Option<String> {
    list.as_array()
        .unwrap()
        .iter()
        .find(|o| o["StateId"] == id)
        .and_then(|o| o["ValueAsString"].as_str().map(str::to_owned))
}

#[tokio::test]
async fn a_read_maps_the_world() {
    let s = setup().await;
    let account = s.owner().await;
    let adapter = s.adapter();
    let before = s.requests();
    let obs = adapter.poll(&account, &s.garage_ref()).await.unwrap();
    assert_eq!(obs.requests, 2);
    assert_eq!(s.requests() - before, 2);
    assert_eq!(obs.observed_at, s.clock.now());
    let c = charger_of(&obs);
    let truth = s.world.charger(&s.garage).unwrap();
    assert!(truth.charging);
    assert_eq!(c.charge_state.power_delivery_state, ChargerPowerDeliveryState::PluggedInCharging);
    let rate = c.charge_state.charge_rate.unwrap();
    assert!((rate - truth.power_w / 1000.0).abs() < 0.001, "{rate} kW vs {} W", truth.power_w);
    assert_eq!(c.charge_state.max_current, Some(16.0));
    assert!(c.capabilities.set_max_current.is_capable);
    assert_eq!(c.information.serial_number, s.sim.serial_number(&s.garage));
    assert!(c.charge_state.last_updated.unwrap() <= s.clock.now());

    // The raw state list has Zaptec's shape: naive timestamps, strings, a value-less Pulse.
    let (status, list) =
        s.get_raw(&account, &format!("chargers/{}/state", s.sim.charger_id(&s.garage))).await;
    assert_eq!(status, 200);
    let pulse = list.as_array().unwrap().iter().find(|o| o["StateId"] == -1).unwrap();
    assert!(pulse.get("ValueAsString").is_none());
    let stamp = pulse["Timestamp"].as_str().unwrap();
    assert!(!stamp.ends_with('Z') && !stamp.contains('+'), "{stamp}");
    assert_eq!(state_value(&list, 710).as_deref(), Some("3"));
    assert_eq!(state_value(&list, 708).as_deref(), Some("16.000"));

    // The same value keeps its timestamp while it does not change.
    let t708 = |list: &Value| {
        list.as_array().unwrap().iter().find(|o| o["StateId"] == 708).unwrap()["Timestamp"].clone()
    };
    let first = t708(&list);
    s.advance(60);
    let (_, again) =
        s.get_raw(&account, &format!("chargers/{}/state", s.sim.charger_id(&s.garage))).await;
    assert_eq!(t708(&again), first);
}

#[tokio::test]
async fn ten_requests_per_second_per_account() {
    let s = setup().await;
    let account = s.owner().await;
    let other = s.link(&s.sim.create_account(std::slice::from_ref(&s.home))).await;
    // The logins above used this second's budget of their own accounts: start afresh.
    s.advance(1);
    let adapter = s.adapter();
    let device = s.garage_ref();
    for _ in 0..5 {
        adapter.poll(&account, &device).await.unwrap();
    }
    let e = adapter.poll(&account, &device).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::RateLimited);
    assert_eq!(e.retry_after(), Some(Duration::from_secs(1)));
    // Another account has its own budget.
    adapter.poll(&other, &device).await.unwrap();
    s.advance(1);
    adapter.poll(&account, &device).await.unwrap();
    // The declared limits keep any second within the published 10.
    let l = adapter.limits();
    assert!(l.burst + l.requests_per_minute / 60 - 1 <= 10);
}

#[tokio::test]
async fn max_current_is_the_installations() {
    let s = setup().await;
    let account = s.owner().await;
    let adapter = s.adapter();

    // The sole charger: hierarchy + update, then the world follows after the latency.
    let before = s.requests();
    let receipt = adapter
        .execute(&account, &s.garage_ref(), &Command::SetMaxCurrent { amps: 24.0 })
        .await
        .unwrap();
    assert_eq!(receipt.requests, 2);
    assert_eq!(s.requests() - before, 2);
    s.advance(LATENCY_SECS as u64 + 1);
    assert_eq!(s.world.charger(&s.garage).unwrap().max_current_a, 24.0);
    let (_, inst) =
        s.get_raw(&account, &format!("installation/{}", s.sim.installation_id(&s.home))).await;
    assert_eq!(inst["AvailableCurrent"], 24.0);
    let obs = adapter.poll(&account, &s.garage_ref()).await.unwrap();
    assert_eq!(charger_of(&obs).charge_state.max_current, Some(24.0));

    // A shared installation: not capable, and refused after reading the hierarchy only.
    let obs = adapter.poll(&account, &s.left_ref()).await.unwrap();
    let cap = &charger_of(&obs).capabilities.set_max_current;
    assert!(!cap.is_capable);
    assert_eq!(cap.intervention_ids, [SHARED_INSTALLATION_INTERVENTION_ID]);
    assert_eq!(charger_of(&obs).information.model, "Pro");
    let before = s.requests();
    let e = adapter
        .execute(&account, &s.left_ref(), &Command::SetMaxCurrent { amps: 10.0 })
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported);
    assert_eq!(s.requests() - before, 1, "the hierarchy only");
    s.advance(LATENCY_SECS as u64 + 1);
    assert_eq!(s.world.charger(&s.left).unwrap().max_current_a, 16.0);

    // Out of range: refused locally.
    let before = s.requests();
    let e = adapter
        .execute(&account, &s.garage_ref(), &Command::SetMaxCurrent { amps: 40.0 })
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Rejected);
    assert_eq!(s.requests(), before);

    // The simulator refuses what Zaptec refuses.
    let inst = s.sim.installation_id(&s.home);
    let path = format!("installation/{inst}/update");
    let (status, body) =
        s.post_raw(&account, &path, serde_json::json!({"availableCurrent": 3})).await;
    assert_eq!((status, body["Code"].as_i64()), (400, Some(529)));
    let (status, _) =
        s.post_raw(&account, &path, serde_json::json!({"availableCurrentPhase1": 10})).await;
    assert_eq!(status, 400);
    let (status, _) = s
        .post_raw(
            &account,
            &path,
            serde_json::json!({"AvailableCurrentPhase1": 10, "availableCurrentPhase2": 12, "availableCurrentPhase3": 11}),
        )
        .await;
    assert_eq!(status, 200);
    s.advance(LATENCY_SECS as u64 + 1);
    assert_eq!(s.world.charger(&s.garage).unwrap().max_current_a, 10.0);
}

#[tokio::test]
async fn a_user_without_owner_rights() {
    let s = setup().await;
    let login = s.sim.create_account_with_role(std::slice::from_ref(&s.home), ZaptecRole::User);
    let account = s.link(&login).await;
    let adapter = s.adapter();
    let obs = adapter.poll(&account, &s.garage_ref()).await.unwrap();
    assert_eq!(obs.requests, 2, "the refused hierarchy counts");
    let c = charger_of(&obs);
    assert!(c.charge_state.is_charging.unwrap());
    let cap = &c.capabilities.set_max_current;
    assert!(!cap.is_capable);
    assert_eq!(cap.intervention_ids, [INSTALLATION_ACCESS_INTERVENTION_ID]);
    let e = adapter
        .execute(&account, &s.garage_ref(), &Command::SetMaxCurrent { amps: 20.0 })
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported);
    // Start and stop work for users.
    adapter.execute(&account, &s.garage_ref(), &Command::StopCharging).await.unwrap();
    s.advance(LATENCY_SECS as u64 + 1);
    assert!(!s.world.charger(&s.garage).unwrap().charging);
    let (status, body) = s
        .post_raw(
            &account,
            &format!("installation/{}/update", s.sim.installation_id(&s.home)),
            serde_json::json!({"availableCurrent": 20}),
        )
        .await;
    assert_eq!((status, body["Code"].as_i64()), (403, Some(533)));
}

#[tokio::test]
async fn pause_resume_and_refusals() {
    let s = setup().await;
    let account = s.owner().await;
    let adapter = s.adapter();
    let garage = s.garage_ref();

    // Pause: StopChargingFinal; the charger reports Connected_Finished with FinalStopActive.
    let receipt = adapter.execute(&account, &garage, &Command::StopCharging).await.unwrap();
    assert_eq!(receipt.requests, 1);
    // A second stop while the first is in flight: already paused, a no-op refusal.
    let e = adapter.execute(&account, &garage, &Command::StopCharging).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Rejected);
    assert!(CommandRefused::of(&e).unwrap().is_no_op());
    s.advance(LATENCY_SECS as u64 + 1);
    let (_, list) = s.get_raw(&account, &format!("chargers/{}/state", garage.vendor_id)).await;
    assert_eq!(state_value(&list, 710).as_deref(), Some("5"));
    assert_eq!(state_value(&list, 718).as_deref(), Some("1"));
    let obs = adapter.poll(&account, &garage).await.unwrap();
    let c = charger_of(&obs);
    assert_eq!(c.charge_state.power_delivery_state, ChargerPowerDeliveryState::PluggedInStopped);
    assert_eq!(c.charge_state.charge_rate, None);

    // Resume.
    adapter.execute(&account, &garage, &Command::StartCharging).await.unwrap();
    let e = adapter.execute(&account, &garage, &Command::StartCharging).await.unwrap_err();
    assert!(CommandRefused::of(&e).unwrap().is_no_op(), "already running");
    s.advance(LATENCY_SECS as u64 + 1);
    assert!(s.world.charger(&s.garage).unwrap().charging);
    let (_, list) = s.get_raw(&account, &format!("chargers/{}/state", garage.vendor_id)).await;
    assert_eq!(state_value(&list, 718).as_deref(), Some("0"));

    // No car on the right carport: not a no-op, a precondition.
    let right = s
        .world
        .devices_of_site(&s.shared)
        .into_iter()
        .map(|d| d.id)
        .find(|id| *id != s.left)
        .unwrap();
    let right_ref = s.device(&right, &s.shared);
    for command in [Command::StartCharging, Command::StopCharging] {
        let e = adapter.execute(&account, &right_ref, &command).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::PreconditionFailed, "{command:?}");
        assert!(!CommandRefused::of(&e).unwrap().is_no_op());
    }

    // A full car cannot be resumed.
    adapter.execute(&account, &garage, &Command::StopCharging).await.unwrap();
    s.advance(LATENCY_SECS as u64 + 1);
    s.world.update_vehicle(&s.car, |v| v.battery_level = 80.0).unwrap();
    let e = adapter.execute(&account, &garage, &Command::StartCharging).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PreconditionFailed);

    // A charger of another account is not found.
    let mut stranger = s.garage_ref();
    stranger.vendor_id = "00000000-0000-4000-8000-000000000000".into();
    let e = adapter.execute(&account, &stranger, &Command::StartCharging).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    let e = adapter.poll(&account, &stranger).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
}

#[tokio::test]
async fn an_offline_charger() {
    let s = setup().await;
    let account = s.owner().await;
    let adapter = s.adapter();
    let garage = s.garage_ref();
    let seen = adapter.poll(&account, &garage).await.unwrap();
    let seen_rate = charger_of(&seen).charge_state.charge_rate;
    s.advance(600);
    s.world.set_device_online(&s.garage, false).unwrap();
    s.advance(600);
    let obs = adapter.poll(&account, &garage).await.unwrap();
    let c = charger_of(&obs);
    assert!(!c.is_reachable);
    // The cloud's last values, with the time it heard them.
    assert_eq!(c.charge_state.charge_rate, seen_rate);
    assert!(c.last_seen < s.clock.now());
    assert!(c.charge_state.last_updated.unwrap() <= seen.observed_at);
    let e = adapter.execute(&account, &garage, &Command::StopCharging).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::DeviceOffline);
    s.world.set_device_online(&s.garage, true).unwrap();
    let obs = adapter.poll(&account, &garage).await.unwrap();
    assert!(charger_of(&obs).is_reachable);
    assert_eq!(charger_of(&obs).last_seen, s.clock.now());
}

#[tokio::test]
async fn login_expiry_and_password_changes() {
    let s = setup().await;
    let adapter = s.adapter();
    let login = s.sim.create_account(std::slice::from_ref(&s.home));
    let e = adapter.login(&login.username, "wrong").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthorized);
    let account = s.link(&login).await;
    let creds = &account.credentials;
    assert_eq!(creds.expires_at, Some(s.clock.now() + chrono::Duration::seconds(86_400)));
    assert_eq!(creds.refresh_token.as_deref(), Some(login.password.as_str()));
    assert_eq!(creds.extra.get("username"), Some(&login.username));
    assert!(!format!("{creds:?}").contains(&login.password), "Debug redacts the password");

    // A day later the token is known to be expired: no request.
    s.advance(86_400);
    let before = s.requests();
    let e = adapter.poll(&account, &s.garage_ref()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AuthExpired);
    assert_eq!(s.requests(), before);
    let fresh = adapter.refresh_credentials(&account).await.unwrap();
    assert_ne!(fresh.access_token, account.credentials.access_token);
    let mut account = account;
    account.credentials = fresh;
    adapter.poll(&account, &s.garage_ref()).await.unwrap();
    // Refreshing again works (the password is not single-use).
    adapter.refresh_credentials(&account).await.unwrap();

    // The user changes the password: the token still works until it expires, a new login not.
    s.sim.change_password(&login.username).unwrap();
    adapter.poll(&account, &s.garage_ref()).await.unwrap();
    let e = adapter.refresh_credentials(&account).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthorized);
}

#[tokio::test]
async fn discovery_pages_and_batches() {
    let s = setup().await;
    let account = s.owner().await;
    let adapter = s.adapter();
    let found = adapter.discover(&account).await.unwrap();
    assert_eq!(found.len(), 3);
    assert!(found.iter().all(|d| d.device_type == VendorType::Charger));
    let garage = found.iter().find(|d| d.vendor_id == s.sim.charger_id(&s.garage)).unwrap();
    assert_eq!(garage.site_id, Some(s.sim.installation_id(&s.home)));
    assert_eq!(garage.display_name.as_deref(), Some("Garage"));

    // The simulator pages like Zaptec.
    let (status, page) = s.get_raw(&account, "chargers?PageIndex=1&PageSize=2").await;
    assert_eq!(status, 200);
    assert_eq!(page["Pages"], 2);
    assert_eq!(page["Data"].as_array().unwrap().len(), 1);

    // A batch reads each installation's hierarchy once.
    let devices: Vec<DeviceRef> = found
        .iter()
        .map(|d| DeviceRef {
            id: format!("dev-{}", d.vendor_id),
            user_id: "user-1".into(),
            device_type: d.device_type,
            vendor_id: d.vendor_id.clone(),
            site_id: d.site_id.clone(),
        })
        .collect();
    let before = s.requests();
    let results = adapter.poll_batch(&account, &devices).await;
    let sent = s.requests() - before;
    assert_eq!(sent, 5, "3 state lists + 2 hierarchies");
    let reported: u32 = results.iter().map(|r| r.as_ref().unwrap().requests).sum();
    assert_eq!(reported as usize, sent);

    // Under a rate limit the batch stops after the first refusal.
    s.world.faults().set(
        WORLD_VENDOR,
        oemgate_sim::Fault::RateLimit { retry_after: Duration::from_secs(5) },
        None,
    );
    let before = s.requests();
    let results = adapter.poll_batch(&account, &devices).await;
    assert_eq!(s.requests() - before, 1);
    assert!(results.iter().all(|r| {
        r.as_ref().is_err_and(|e| {
            e.kind() == ErrorKind::RateLimited && e.retry_after() == Some(Duration::from_secs(5))
        })
    }));
    s.world.faults().clear(WORLD_VENDOR);
}

#[tokio::test]
async fn a_synthetic_fleet_links_and_reads() {
    let s = setup().await;
    let spec = oemgate_sim::FleetSpec {
        households: 12,
        vehicle_share: 1.0,
        charger_share: 1.0,
        charger_vendors: vec![oemgate_sim::VendorWeight {
            vendor: WORLD_VENDOR.into(),
            weight: 1.0,
        }],
        salt: 3,
        ..oemgate_sim::FleetSpec::default()
    };
    let homes = oemgate_sim::fleet::generate(&s.world, &spec).unwrap();
    let adapter = s.adapter();
    let mut read = 0;
    for home in homes {
        let Some(charger) = home.charger else { continue };
        assert_eq!(s.world.device_info(&charger).unwrap().vendor, WORLD_VENDOR);
        s.advance(1);
        let account = s.link(&s.sim.create_account(std::slice::from_ref(&home.site))).await;
        let found = adapter.discover(&account).await.unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].vendor_id, s.sim.charger_id(&charger));
        let obs = adapter.poll(&account, &s.device(&charger, &home.site)).await.unwrap();
        assert!(charger_of(&obs).capabilities.set_max_current.is_capable);
        read += 1;
    }
    assert!(read >= 10, "{read} households with a Zaptec charger");
}
