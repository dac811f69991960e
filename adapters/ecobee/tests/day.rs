//! Acceptance: a simulated day of polling every 3 minutes (ecobee's guidance) reads the full
//! thermostat only after a revision change.
//!
//! The simulator counts the full reads it served per thermostat and exposes the revision
//! entry its last summary showed; the test compares the two after every poll: a full read
//! happens exactly when the connected flag, the thermostat revision or the runtime revision
//! changed (the alerts and 15-minute interval revisions do not feed the resource). Every
//! observation is checked against the world's truth, so the cache never serves stale values. Time moves
//! only through the `ManualClock`; the access token expires every hour and is refreshed the
//! way the scheduler does (on `AuthExpired`, once).

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use oemgate_core::{
    AccountRef, Clock, DeviceRef, DeviceState, ErrorKind, Hvac, ManualClock, Observation,
    VendorAdapter, VendorType,
};
use oemgate_ecobee::model::Revision;
use oemgate_ecobee::sim::{EcobeeSim, PREFIX, WORLD_VENDOR};
use oemgate_ecobee::{EcobeeAdapter, EcobeeConfig, MIN_POLL_INTERVAL};
use oemgate_sim::{
    DeviceId, HvacActivity, HvacHold, HvacSpec, RequestLog, SimHost, SiteSpec, World, WorldConfig,
};

/// Midnight in Minneapolis (UTC-6) on a January day.
fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 15, 6, 0, 0).unwrap()
}

struct Day {
    clock: Arc<ManualClock>,
    world: World,
    sim: EcobeeSim,
    adapter: EcobeeAdapter,
    account: AccountRef,
    log: RequestLog,
    thermostats: Vec<(DeviceRef, DeviceId)>,
    _server: tokio::task::JoinHandle<std::io::Result<()>>,
}

async fn start(seed: u64) -> Day {
    let clock = Arc::new(ManualClock::new(t0()));
    let world = World::new(seed, clock.clone(), WorldConfig::default());
    let home = world.add_site(SiteSpec {
        name: "Maple Street".into(),
        latitude: 44.98,
        longitude: -93.27,
        timezone: "America/Chicago".into(),
        utc_offset_minutes: -360,
        ..SiteSpec::default()
    });
    let hall = world
        .add_hvac(
            &home,
            HvacSpec {
                vendor: WORLD_VENDOR.into(),
                name: "Hallway".into(),
                hold: HvacHold::Schedule,
                indoor_c: 18.0,
                ..HvacSpec::default()
            },
        )
        .unwrap();
    let basement = world
        .add_hvac(
            &home,
            HvacSpec {
                vendor: WORLD_VENDOR.into(),
                name: "Basement".into(),
                hold: HvacHold::Permanent,
                mode: oemgate_sim::HvacMode::Heat,
                heat_setpoint: 16.0,
                indoor_c: 15.0,
                house_tau_h: 30.0,
                ..HvacSpec::default()
            },
        )
        .unwrap();
    let sim = EcobeeSim::new(world.clone());
    let mut host = SimHost::new(clock.clone());
    host.mount(PREFIX, sim.router()).unwrap();
    let log = host.request_log();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}{PREFIX}", listener.local_addr().unwrap());
    let server = tokio::spawn(host.serve(listener));
    let adapter =
        EcobeeAdapter::new(EcobeeConfig::new(sim.api_key()).for_base_url(&base), clock.clone());
    let link = sim.create_account(std::slice::from_ref(&home));
    let credentials = adapter.exchange_pin(&link.code).await.unwrap();
    let account = AccountRef {
        user_id: "user-1".into(),
        vendor: "ECOBEE".into(),
        account_id: link.username,
        credentials,
    };
    let thermostats = [("dev-hall", hall), ("dev-basement", basement)]
        .into_iter()
        .map(|(id, world_id)| {
            let device = DeviceRef {
                id: id.into(),
                user_id: "user-1".into(),
                device_type: VendorType::Hvac,
                vendor_id: sim.identifier(&world_id),
                site_id: None,
            };
            (device, world_id)
        })
        .collect();
    Day { clock, world, sim, adapter, account, log, thermostats, _server: server }
}

impl Day {
    /// Refreshes the credentials once when the adapter says they expired (as the scheduler
    /// does); returns how many token requests that took.
    async fn refresh_if_expired(&mut self, err: &oemgate_core::AdapterError) -> bool {
        if err.kind() != ErrorKind::AuthExpired {
            return false;
        }
        self.account.credentials = self.adapter.refresh_credentials(&self.account).await.unwrap();
        true
    }

    async fn poll(&mut self, device: &DeviceRef) -> Observation {
        match self.adapter.poll(&self.account, device).await {
            Ok(obs) => obs,
            Err(e) => {
                assert!(self.refresh_if_expired(&e).await, "poll failed: {e}");
                self.adapter.poll(&self.account, device).await.unwrap()
            }
        }
    }

    async fn poll_batch(&mut self, devices: &[DeviceRef]) -> Vec<Observation> {
        let results = self.adapter.poll_batch(&self.account, devices).await;
        if let Some(Err(e)) = results.iter().find(|r| r.is_err()) {
            let e = oemgate_core::AdapterError::new(e.kind(), "ECOBEE", e.message());
            assert!(self.refresh_if_expired(&e).await, "poll_batch failed: {e}");
            let again = self.adapter.poll_batch(&self.account, devices).await;
            return again.into_iter().map(Result::unwrap).collect();
        }
        results.into_iter().map(Result::unwrap).collect()
    }
}

fn hvac(obs: &Observation) -> &Hvac {
    match &obs.state {
        DeviceState::Hvac(h) => h,
        other => panic!("not an HVAC state: {other:?}"),
    }
}

/// The observation agrees with the world now, within a quarter degree.
fn check_truth(world: &World, world_id: &DeviceId, obs: &Observation, at: DateTime<Utc>) {
    let truth = world.hvac(world_id).unwrap();
    let h = hvac(obs);
    let close = |a: Option<f64>, b: f64| a.is_some_and(|a| (a - b).abs() <= 0.25);
    assert!(
        close(h.temperature_state.current_temperature, truth.indoor_c),
        "{at}: {:?} vs {}",
        h.temperature_state.current_temperature,
        truth.indoor_c
    );
    assert!(close(h.thermostat_state.heat_setpoint, truth.heat_setpoint), "{at}");
    assert!(close(h.thermostat_state.cool_setpoint, truth.cool_setpoint), "{at}");
    assert_eq!(h.thermostat_state.mode.as_str(), truth.mode.as_str(), "{at}");
    assert_eq!(h.temperature_state.is_active, truth.activity != HvacActivity::Idle, "{at}");
    let hold = h.thermostat_state.hold_type.map(|t| t.as_str());
    let expected = if truth.hold == HvacHold::Permanent { "PERMANENT" } else { "SCHEDULED" };
    assert_eq!(hold, Some(expected), "{at}");
    assert_eq!(obs.observed_at, at);
}

const POLLS_PER_DAY: u32 = 24 * 60 / 3;

/// What a full read depends on: the connected flag, the thermostat and runtime revisions.
fn relevant(line: &str) -> (bool, String, String) {
    let r = Revision::parse(line).unwrap();
    (r.connected, r.thermostat_rev, r.runtime_rev)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_day_of_polling_reads_the_thermostat_only_after_a_revision_change() {
    let mut day = start(0xEC0B_EE01).await;
    let (device, world_id) = day.thermostats[0].clone();
    let identifier = device.vendor_id.clone();
    assert_eq!(MIN_POLL_INTERVAL, Duration::from_secs(180));

    let mut previous: Option<String> = None;
    let (mut changes, mut any_changes, mut requests, mut cached) = (0u64, 0u64, 0u64, 0u64);
    let mut heat_setpoints = std::collections::BTreeSet::new();
    let token_requests_before = day.log.records(PREFIX).len();
    for _ in 0..POLLS_PER_DAY {
        let reads_before = day.sim.stats().full_reads_of(&identifier);
        let obs = day.poll(&device).await;
        let read = day.sim.stats().full_reads_of(&identifier) - reads_before;
        let revision = day.sim.revision_line(&identifier).unwrap();
        let changed = previous.as_deref().map(relevant) != Some(relevant(&revision));
        any_changes += u64::from(previous.as_ref() != Some(&revision));
        // The full thermostat is read exactly when the summary's revisions changed.
        assert_eq!(read, u64::from(changed), "at {}: {revision}", day.clock.now());
        assert_eq!(obs.requests, 1 + u32::from(changed), "requests are counted");
        changes += u64::from(changed);
        cached += u64::from(!changed);
        requests += u64::from(obs.requests);
        check_truth(&day.world, &world_id, &obs, day.clock.now());
        if let Some(heat) = hvac(&obs).thermostat_state.heat_setpoint {
            heat_setpoints.insert((heat * 10.0).round() as i64);
        }
        previous = Some(revision);
        day.clock.advance(MIN_POLL_INTERVAL);
    }
    let stats = day.sim.stats();
    eprintln!(
        "a day of 3-minute polls: {POLLS_PER_DAY} polls, {changes} thermostat/runtime revision \
         changes ({any_changes} counting alerts and interval data), {} full reads, {cached} \
         served from the cache, {requests} requests",
        stats.full_reads_of(&identifier)
    );
    assert_eq!(stats.full_reads_of(&identifier), changes);
    assert!(changes < any_changes, "the 15-minute interval revision triggers no read");
    assert_eq!(stats.summary_reads, u64::from(POLLS_PER_DAY));
    // The cache saves a real share of the full reads (at least a third of the polls) ...
    assert!(cached * 3 >= u64::from(POLLS_PER_DAY), "only {cached} polls were cheap");
    // ... and the day still shows the schedule's day and night setpoints (21 and 17 °C).
    assert!(heat_setpoints.contains(&210) && heat_setpoints.contains(&170), "{heat_setpoints:?}");
    // Every HTTP request the simulator saw is accounted for (polls plus hourly refreshes).
    let token_requests = day
        .log
        .records(PREFIX)
        .iter()
        .skip(token_requests_before)
        .filter(|r| r.path == "/token")
        .count() as u64;
    assert!(token_requests >= 23, "the access token lasts an hour: {token_requests} refreshes");
    let total = (day.log.records(PREFIX).len() - token_requests_before) as u64;
    assert_eq!(total, requests + token_requests);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_day_of_batched_polls_reads_only_the_changed_thermostats() {
    let mut day = start(0xEC0B_EE02).await;
    let devices: Vec<DeviceRef> = day.thermostats.iter().map(|(d, _)| d.clone()).collect();
    let ids: Vec<String> = devices.iter().map(|d| d.vendor_id.clone()).collect();
    let mut previous: Vec<Option<String>> = vec![None; devices.len()];
    let mut changes = vec![0u64; devices.len()];
    let mut requests = 0u64;
    let thermostat_reads_before = day.sim.stats().thermostat_reads;
    for _ in 0..POLLS_PER_DAY {
        let observations = day.poll_batch(&devices).await;
        let mut any = false;
        for (k, id) in ids.iter().enumerate() {
            let revision = day.sim.revision_line(id).unwrap();
            if previous[k].as_deref().map(relevant) != Some(relevant(&revision)) {
                changes[k] += 1;
                any = true;
            }
            previous[k] = Some(revision);
            check_truth(&day.world, &day.thermostats[k].1, &observations[k], day.clock.now());
        }
        let reported: u32 = observations.iter().map(|o| o.requests).sum();
        // One summary for both, plus one full read for whichever changed.
        assert_eq!(reported, 1 + u32::from(any), "at {}", day.clock.now());
        requests += u64::from(reported);
        day.clock.advance(MIN_POLL_INTERVAL);
    }
    let stats = day.sim.stats();
    for (k, id) in ids.iter().enumerate() {
        assert_eq!(stats.full_reads_of(id), changes[k], "thermostat {id}");
    }
    let batched_reads = stats.thermostat_reads - thermostat_reads_before;
    eprintln!(
        "a day of batched polls of 2 thermostats: {requests} requests, {batched_reads} full-read \
         requests for {:?} changes",
        changes
    );
    assert!(batched_reads < changes.iter().sum::<u64>(), "changed thermostats are read together");
    // The basement holds a steady temperature: far fewer changes than the heated hallway.
    assert!(changes[1] < changes[0], "{changes:?}");
}
