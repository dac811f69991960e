//! The adapter against the simulated Wallbox cloud beyond the conformance suite: Wallbox's
//! quirks (locks, disconnected chargers, the hardware maximum, its own rate limit, the sign-in),
//! the batched read and the lifecycle of tokens. Time only moves through the `ManualClock`.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use oemgate_core::{
    AccountRef, Charger, ChargerPowerDeliveryState, Clock, Command, DeviceRef, DeviceState,
    ErrorKind, ManualClock, Observation, VendorAdapter, VendorType,
};
use oemgate_sim::{
    ChargerSpec, DeviceId, DrivingPattern, LatencyProfile, RequestLog, SimHost, SiteSpec,
    VehicleSpec, World, WorldConfig,
};
use oemgate_testkit::ServerGuard;
use oemgate_wallbox::sim::{PREFIX, WORLD_VENDOR, WallboxLogin, WallboxSim, WallboxSimConfig};
use oemgate_wallbox::{WallboxAdapter, WallboxConfig, api_error_of};

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 13, 18, 0, 30).unwrap()
}

struct Setup {
    clock: Arc<ManualClock>,
    world: World,
    sim: WallboxSim,
    adapter: WallboxAdapter,
    log: RequestLog,
    login: WallboxLogin,
    account: AccountRef,
    /// Free charger (hardware maximum 16 A).
    free: (DeviceRef, DeviceId),
    /// Charger with a paused car.
    paused: (DeviceRef, DeviceId),
    _server: ServerGuard,
}

impl Setup {
    fn requests(&self) -> usize {
        self.log.count(PREFIX)
    }

    async fn poll(&self, device: &DeviceRef) -> Result<Observation, oemgate_core::AdapterError> {
        self.adapter.poll(&self.account, device).await
    }

    async fn charger(&self, device: &DeviceRef) -> Charger {
        match self.poll(device).await.unwrap().state {
            DeviceState::Charger(c) => *c,
            other => panic!("not a charger: {other:?}"),
        }
    }
}

async fn setup(config: WallboxSimConfig) -> Setup {
    let clock = Arc::new(ManualClock::new(t0()));
    let world_config = WorldConfig {
        latency: [(WORLD_VENDOR.to_owned(), LatencyProfile::fixed(10.0))].into(),
        ..WorldConfig::default()
    };
    let world = World::new(7, clock.clone(), world_config);
    let site = world.add_site(SiteSpec::default());
    world
        .add_vehicle(
            &site,
            VehicleSpec {
                vendor: "volvo".into(),
                plugged_in: true,
                charging: false,
                charge_on_plug: false,
                battery_level: 50.0,
                pattern: DrivingPattern {
                    commute_km: None,
                    errands_per_week: 0.0,
                    plug_in_share: 0.0,
                },
                ..VehicleSpec::default()
            },
        )
        .unwrap();
    let spec = |max: f64, hw: f64| ChargerSpec {
        vendor: WORLD_VENDOR.into(),
        max_current_a: max,
        hardware_max_a: hw,
        ..ChargerSpec::default()
    };
    let paused = world.add_charger(&site, spec(16.0, 32.0)).unwrap();
    let free = world.add_charger(&site, spec(10.0, 16.0)).unwrap();

    let sim = WallboxSim::with_config(world.clone(), config);
    let mut host = SimHost::new(clock.clone());
    host.mount(PREFIX, sim.router()).unwrap();
    let log = host.request_log();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}{PREFIX}", listener.local_addr().unwrap());
    let server = ServerGuard::new(tokio::spawn(host.serve(listener)));
    let adapter = WallboxAdapter::new(WallboxConfig::new().for_base_url(&base), clock.clone());
    let login = sim.create_account(std::slice::from_ref(&site));
    let credentials = adapter.sign_in(&login.email, &login.password).await.unwrap();
    let account = AccountRef {
        user_id: "u".into(),
        vendor: "WALLBOX".into(),
        account_id: login.user_id.to_string(),
        credentials,
    };
    let group = sim.group_id(&site).to_string();
    let reference = |id: &DeviceId| DeviceRef {
        id: format!("dev-{id}"),
        user_id: "u".into(),
        device_type: VendorType::Charger,
        vendor_id: sim.charger_id(id).to_string(),
        site_id: Some(group.clone()),
    };
    Setup {
        free: (reference(&free), free),
        paused: (reference(&paused), paused),
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

#[tokio::test]
async fn sign_in_yields_epoch_millisecond_expiry_and_the_user_id() {
    let s = setup(WallboxSimConfig::default()).await;
    let c = &s.account.credentials;
    assert_eq!(c.expires_at, Some(t0() + chrono::Duration::hours(1)));
    assert_eq!(c.extra["user_id"], s.login.user_id.to_string());
    assert_eq!(c.extra["refresh_expires_at"], (t0() + chrono::Duration::days(30)).to_rfc3339());
    let e = s.adapter.sign_in(&s.login.email, "wrong").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthorized);
    assert_eq!(api_error_of(&e).unwrap().status, 403);
}

#[tokio::test]
async fn a_missing_partner_header_is_refused() {
    let s = setup(WallboxSimConfig::default()).await;
    let config = WallboxConfig { partner: "acme".into(), ..s.adapter.config().clone() };
    let other = WallboxAdapter::new(config, s.clock.clone());
    let e = other.sign_in(&s.login.email, &s.login.password).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthorized);
    assert_eq!(api_error_of(&e).unwrap().status, 400);
}

#[tokio::test]
async fn reads_map_the_world() {
    let s = setup(WallboxSimConfig::default()).await;
    let paused = s.charger(&s.paused.0).await;
    assert_eq!(
        paused.charge_state.power_delivery_state,
        ChargerPowerDeliveryState::PluggedInStopped
    );
    assert_eq!(paused.charge_state.is_plugged_in, Some(true));
    assert_eq!(paused.charge_state.is_charging, Some(false));
    assert_eq!(paused.charge_state.charge_rate, None);
    assert_eq!(paused.charge_state.max_current, Some(16.0));
    assert_eq!(paused.charge_state.last_updated, Some(t0()));
    let free = s.charger(&s.free.0).await;
    assert_eq!(free.charge_state.power_delivery_state, ChargerPowerDeliveryState::Unplugged);
    assert_eq!(free.charge_state.is_plugged_in, Some(false));
    assert_eq!(free.charge_state.max_current, Some(10.0));
    assert_eq!(free.information.serial_number, s.free.0.vendor_id);
}

#[tokio::test]
async fn start_then_stop_take_effect_after_the_latency() {
    let s = setup(WallboxSimConfig::default()).await;
    let receipt = s.adapter.execute(&s.account, &s.paused.0, &Command::StartCharging).await;
    assert_eq!(receipt.unwrap().requests, 1);
    assert!(!s.world.charger(&s.paused.1).unwrap().charging, "not before the latency");
    s.clock.advance(Duration::from_secs(11));
    let c = s.charger(&s.paused.0).await;
    assert_eq!(c.charge_state.power_delivery_state, ChargerPowerDeliveryState::PluggedInCharging);
    let rate = c.charge_state.charge_rate.unwrap();
    let truth = s.world.charger(&s.paused.1).unwrap().power_w / 1000.0;
    assert!(rate > 1.0 && (rate - truth).abs() < 0.01, "{rate} vs {truth}");

    // A second resume while charging is accepted and changes nothing.
    s.adapter.execute(&s.account, &s.paused.0, &Command::StartCharging).await.unwrap();
    s.adapter.execute(&s.account, &s.paused.0, &Command::StopCharging).await.unwrap();
    s.clock.advance(Duration::from_secs(11));
    let c = s.charger(&s.paused.0).await;
    assert_eq!(c.charge_state.power_delivery_state, ChargerPowerDeliveryState::PluggedInStopped);
}

#[tokio::test]
async fn preconditions_and_values_refused_by_wallbox() {
    let s = setup(WallboxSimConfig::default()).await;
    // No car on the free charger.
    let e = s.adapter.execute(&s.account, &s.free.0, &Command::StartCharging).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PreconditionFailed);
    assert_eq!(api_error_of(&e).unwrap().status, 409);
    // 20 A is above the free charger's 16 A hardware: Wallbox refuses it.
    let before = s.requests();
    let e = s
        .adapter
        .execute(&s.account, &s.free.0, &Command::SetMaxCurrent { amps: 20.0 })
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Rejected);
    assert_eq!(s.requests() - before, 1);
    // 3 A is below any charger's minimum: refused without a request.
    let e = s
        .adapter
        .execute(&s.account, &s.free.0, &Command::SetMaxCurrent { amps: 3.0 })
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Rejected);
    assert_eq!(s.requests() - before, 1);
    // A charger that is not on the account.
    let mut foreign = s.free.0.clone();
    foreign.vendor_id = "999999".into();
    assert_eq!(s.poll(&foreign).await.unwrap_err().kind(), ErrorKind::NotFound);
}

#[tokio::test]
async fn locked_chargers_refuse_a_resume() {
    let s = setup(WallboxSimConfig::default()).await;
    s.adapter.set_locked(&s.account, &s.paused.0, true).await.unwrap();
    assert!(s.sim.is_locked(&s.paused.1));
    let c = s.charger(&s.paused.0).await;
    assert_eq!(c.charge_state.power_delivery_state, ChargerPowerDeliveryState::PluggedInStopped);
    let e = s.adapter.execute(&s.account, &s.paused.0, &Command::StartCharging).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PreconditionFailed);
    s.adapter.set_locked(&s.account, &s.paused.0, false).await.unwrap();
    s.adapter.execute(&s.account, &s.paused.0, &Command::StartCharging).await.unwrap();
}

#[tokio::test]
async fn disconnected_chargers_are_unreachable_and_offline_for_commands() {
    let s = setup(WallboxSimConfig::default()).await;
    s.clock.advance(Duration::from_secs(60));
    assert!(s.charger(&s.paused.0).await.is_reachable);
    s.world.set_device_online(&s.paused.1, false).unwrap();
    s.clock.advance(Duration::from_secs(60));
    let c = s.charger(&s.paused.0).await;
    assert!(!c.is_reachable);
    assert_eq!(c.charge_state.power_delivery_state, ChargerPowerDeliveryState::Unknown);
    assert_eq!(c.charge_state.is_plugged_in, None);
    assert_eq!(c.charge_state.is_charging, None);
    assert_eq!(c.charge_state.max_current, Some(16.0), "the setting is still known");
    assert_eq!(c.charge_state.last_updated, Some(t0() + chrono::Duration::seconds(60)));
    assert_eq!(c.last_seen, s.clock.now());
    let e = s.adapter.execute(&s.account, &s.paused.0, &Command::StopCharging).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::DeviceOffline);
    let e = s
        .adapter
        .execute(&s.account, &s.paused.0, &Command::SetMaxCurrent { amps: 12.0 })
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::DeviceOffline);
}

#[tokio::test]
async fn the_batch_reads_the_groups_list_once() {
    let s = setup(WallboxSimConfig::default()).await;
    let devices = [s.paused.0.clone(), s.free.0.clone()];
    let before = s.requests();
    let results = s.adapter.poll_batch(&s.account, &devices).await;
    assert_eq!(s.requests() - before, 1);
    let observations: Vec<Observation> = results.into_iter().map(Result::unwrap).collect();
    assert_eq!(observations.iter().map(|o| o.requests).collect::<Vec<_>>(), [1, 0]);
    for (device, obs) in devices.iter().zip(&observations) {
        let single = s.poll(device).await.unwrap();
        let (DeviceState::Charger(a), DeviceState::Charger(b)) = (&obs.state, &single.state) else {
            panic!("not chargers");
        };
        assert_eq!(a.charge_state.power_delivery_state, b.charge_state.power_delivery_state);
        assert_eq!(a.charge_state.max_current, b.charge_state.max_current);
        assert_eq!(a.information, b.information);
        assert_eq!(a.id, device.id);
    }
    // A charger that is not in the list fails alone, without a request of its own.
    let mut foreign = s.free.0.clone();
    foreign.vendor_id = "999999".into();
    let before = s.requests();
    let results = s.adapter.poll_batch(&s.account, &[foreign, s.free.0.clone()]).await;
    assert_eq!(s.requests() - before, 1);
    assert_eq!(results[0].as_ref().unwrap_err().kind(), ErrorKind::NotFound);
    assert_eq!(results[1].as_ref().unwrap().requests, 1);
}

#[tokio::test]
async fn wallbox_rate_limits_with_retry_after() {
    let config = WallboxSimConfig { requests_per_minute: 3, ..WallboxSimConfig::default() };
    let s = setup(config).await;
    // The sign-in was the first request of this minute (18:00).
    s.poll(&s.free.0).await.unwrap();
    s.poll(&s.free.0).await.unwrap();
    let e = s.poll(&s.free.0).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::RateLimited);
    assert_eq!(e.retry_after(), Some(Duration::from_secs(30)), "until 18:01");
    let e = s.adapter.discover(&s.account).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::RateLimited);
    s.clock.advance(Duration::from_secs(30));
    s.poll(&s.free.0).await.unwrap();
}

#[tokio::test]
async fn tokens_expire_refresh_once_and_revoke() {
    let s = setup(WallboxSimConfig::default()).await;
    // Past the access token's expiry: refused before any request.
    s.clock.advance(Duration::from_secs(3600));
    let before = s.requests();
    assert_eq!(s.poll(&s.free.0).await.unwrap_err().kind(), ErrorKind::AuthExpired);
    assert_eq!(s.requests(), before);
    let fresh = s.adapter.refresh_credentials(&s.account).await.unwrap();
    assert_ne!(fresh.refresh_token, s.account.credentials.refresh_token, "rotated");
    let mut account = s.account.clone();
    account.credentials = fresh;
    s.adapter.poll(&account, &s.free.0).await.unwrap();
    // The spent refresh token is refused.
    let e = s.adapter.refresh_credentials(&s.account).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthorized);
    // The user changed the password: every token is gone.
    s.sim.revoke_user(s.login.user_id);
    let e = s.adapter.poll(&account, &s.free.0).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AuthExpired);
    let e = s.adapter.refresh_credentials(&account).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthorized);
}

#[tokio::test]
async fn discovery_lists_the_group_as_site() {
    let s = setup(WallboxSimConfig::default()).await;
    let mut found = s.adapter.discover(&s.account).await.unwrap();
    found.sort_by(|a, b| a.vendor_id.cmp(&b.vendor_id));
    let mut expected = vec![s.paused.0.clone(), s.free.0.clone()];
    expected.sort_by(|a, b| a.vendor_id.cmp(&b.vendor_id));
    assert_eq!(found.len(), 2);
    for (d, e) in found.iter().zip(&expected) {
        assert_eq!(d.device_type, VendorType::Charger);
        assert_eq!(d.vendor_id, e.vendor_id);
        assert_eq!(d.site_id, e.site_id);
        assert_eq!(d.display_name.as_deref(), Some("Wallbox"));
    }
}

/// A generated fleet whose chargers are Wallboxes (the demo's `charger_vendors`): every
/// household links its own account and discovers exactly its charger, which reads back.
#[tokio::test]
async fn a_generated_fleet_carries_wallbox_chargers() {
    use oemgate_sim::{FleetSpec, VendorWeight, fleet};
    let clock = Arc::new(ManualClock::new(t0()));
    let world = World::new(11, clock.clone(), WorldConfig::default());
    let spec = FleetSpec {
        households: 6,
        vehicle_share: 1.0,
        charger_share: 1.0,
        charger_vendors: vec![VendorWeight { vendor: WORLD_VENDOR.into(), weight: 1.0 }],
        ..FleetSpec::default()
    };
    let households = fleet::generate(&world, &spec).unwrap();
    let sim = WallboxSim::new(world.clone());
    let mut host = SimHost::new(clock.clone());
    host.mount(PREFIX, sim.router()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}{PREFIX}", listener.local_addr().unwrap());
    let _server = ServerGuard::new(tokio::spawn(host.serve(listener)));
    let adapter = WallboxAdapter::new(WallboxConfig::new().for_base_url(&base), clock.clone());
    let mut linked = 0;
    for h in &households {
        let Some(charger) = &h.charger else { continue };
        let login = sim.create_account(std::slice::from_ref(&h.site));
        let credentials = adapter.sign_in(&login.email, &login.password).await.unwrap();
        let account = AccountRef {
            user_id: format!("user-{}", h.site),
            vendor: "WALLBOX".into(),
            account_id: login.user_id.to_string(),
            credentials,
        };
        let found = adapter.discover(&account).await.unwrap();
        assert_eq!(found.len(), 1, "{}", h.site);
        assert_eq!(found[0].vendor_id, sim.charger_id(charger).to_string());
        let device = DeviceRef {
            id: "dev".into(),
            user_id: account.user_id.clone(),
            device_type: VendorType::Charger,
            vendor_id: found[0].vendor_id.clone(),
            site_id: found[0].site_id.clone(),
        };
        let obs = adapter.poll(&account, &device).await.unwrap();
        let DeviceState::Charger(c) = obs.state else { panic!("not a charger") };
        let truth = world.charger(charger).unwrap();
        assert_eq!(c.charge_state.is_plugged_in, Some(truth.plugged_in));
        assert_eq!(c.charge_state.is_charging, Some(truth.charging));
        linked += 1;
    }
    assert!(linked >= 1);
}
