//! The poll loop against a scripted adapter, the memory store and a manual clock.
#![allow(clippy::unwrap_used)]

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use oemgate_core::{
    AccountRef, AdapterError, AdapterResult, Clock, CommandReceipt, Credentials, DeviceRef,
    DeviceState, DiscoveredDevice, ErrorKind, ManualClock, Observation, PollContext, QuotaScope,
    Vehicle, VehicleApi, VendorAdapter, VendorInfo, VendorLimits, VendorType,
};
use oemgate_scheduler::limits::DeferReason;
use oemgate_scheduler::poller::StaticShards;
use oemgate_scheduler::{Adapters, PollOutcome, Poller, PollerConfig};
use oemgate_store::{
    AccountStore, DeviceRecord, DeviceStore, EventLog, HistoryStore, MemoryStore, ScheduleStore,
    Store,
};

const INFO: VendorInfo =
    VendorInfo { name: "FAKE", display_name: "Fake", device_types: &[VendorType::Vehicle] };

/// Answers reads from a script; counts refreshes.
#[derive(Default)]
struct Scripted {
    reads: Mutex<VecDeque<AdapterResult<Observation>>>,
    refreshes: AtomicU32,
    tokens_seen: Mutex<Vec<String>>,
    /// The size of every `poll_batch` call.
    batches: Mutex<Vec<usize>>,
}

#[async_trait]
impl VehicleApi for Scripted {
    async fn read_vehicle(
        &self,
        account: &AccountRef,
        _device: &DeviceRef,
    ) -> AdapterResult<Observation> {
        self.tokens_seen.lock().unwrap().push(account.credentials.access_token.clone());
        self.reads.lock().unwrap().pop_front().unwrap_or_else(|| {
            Err(AdapterError::new(ErrorKind::Transient, "FAKE", "script exhausted"))
        })
    }
    async fn wake_up(&self, _: &AccountRef, _: &DeviceRef) -> AdapterResult<CommandReceipt> {
        unreachable!("polling must never wake a vehicle")
    }
    async fn set_charging(
        &self,
        _: &AccountRef,
        _: &DeviceRef,
        _: bool,
    ) -> AdapterResult<CommandReceipt> {
        unreachable!()
    }
    async fn set_max_current(
        &self,
        _: &AccountRef,
        _: &DeviceRef,
        _: f64,
    ) -> AdapterResult<CommandReceipt> {
        unreachable!()
    }
}

#[async_trait]
impl VendorAdapter for Scripted {
    fn info(&self) -> &VendorInfo {
        &INFO
    }
    fn limits(&self) -> VendorLimits {
        VendorLimits {
            requests_per_minute: 60,
            burst: 10,
            rate_scope: QuotaScope::Account,
            daily_quota: None,
            max_concurrent: 4,
            pricing: None,
        }
    }
    async fn refresh_credentials(&self, account: &AccountRef) -> AdapterResult<Credentials> {
        let n = self.refreshes.fetch_add(1, Ordering::SeqCst) + 1;
        Ok(Credentials { access_token: format!("fresh-{n}"), ..account.credentials.clone() })
    }
    async fn discover(&self, _: &AccountRef) -> AdapterResult<Vec<DiscoveredDevice>> {
        Ok(Vec::new())
    }
    fn vehicles(&self) -> Option<&dyn VehicleApi> {
        Some(self)
    }
    /// Like a vendor that lists all vehicles in one request: the first observation carries
    /// the request, the others ride along.
    async fn poll_batch(
        &self,
        account: &AccountRef,
        devices: &[DeviceRef],
    ) -> Vec<AdapterResult<Observation>> {
        self.batches.lock().unwrap().push(devices.len());
        let mut out = Vec::new();
        for (i, device) in devices.iter().enumerate() {
            let mut read = self.read_vehicle(account, device).await;
            if let Ok(observation) = &mut read
                && i > 0
            {
                observation.requests = 0;
            }
            out.push(read);
        }
        out
    }
}

fn vehicle(mutate: impl FnOnce(&mut serde_json::Value)) -> Vehicle {
    let mut json: serde_json::Value = serde_json::from_str(include_str!("vehicle.json")).unwrap();
    json["id"] = "dev-1".into();
    json["userId"] = "user-1".into();
    mutate(&mut json);
    serde_json::from_value(json).unwrap()
}

fn observation(
    clock: &ManualClock,
    asleep: bool,
    mutate: impl FnOnce(&mut serde_json::Value),
) -> Observation {
    Observation {
        state: DeviceState::Vehicle(Box::new(vehicle(mutate))),
        observed_at: clock.now(),
        asleep,
        requests: 1,
    }
}

struct Fixture {
    clock: Arc<ManualClock>,
    store: Arc<MemoryStore>,
    adapter: Arc<Scripted>,
    poller: Poller,
}

async fn fixture() -> Fixture {
    let start: DateTime<Utc> = "2026-03-01T08:00:00Z".parse().unwrap();
    let clock = Arc::new(ManualClock::new(start));
    let store = Arc::new(MemoryStore::new());
    let adapter = Arc::new(Scripted::default());
    let mut adapters = Adapters::new();
    adapters.register(adapter.clone());
    let config = PollerConfig { startup_spread: Duration::ZERO, ..PollerConfig::default() };
    let dyn_store: Arc<dyn Store> = store.clone();
    let poller = Poller::new(dyn_store, adapters, clock.clone(), config, 7);
    let account = AccountRef {
        user_id: "user-1".into(),
        vendor: "FAKE".into(),
        account_id: "acct-1".into(),
        credentials: Credentials {
            access_token: "stale".into(),
            refresh_token: Some("r".into()),
            ..Default::default()
        },
    };
    store.put_account(account, 0).await.unwrap();
    let record = DeviceRecord {
        device: DeviceRef {
            id: "dev-1".into(),
            user_id: "user-1".into(),
            device_type: VendorType::Vehicle,
            vendor_id: "VIN1".into(),
            site_id: None,
        },
        vendor: "FAKE".into(),
        account_id: "acct-1".into(),
        created_at: start,
    };
    poller.register(record).await.unwrap();
    Fixture { clock, store, adapter, poller }
}

fn push(f: &Fixture, read: AdapterResult<Observation>) {
    f.adapter.reads.lock().unwrap().push_back(read);
}

#[tokio::test]
async fn first_poll_stores_snapshot_and_schedules_within_the_charging_bound() {
    let f = fixture().await;
    push(&f, Ok(observation(&f.clock, false, |_| {})));
    let report = f.poller.tick().await.unwrap();
    assert_eq!(report.polled, 1);
    let snapshot = f.store.get_snapshot("dev-1").await.unwrap().expect("snapshot stored");
    assert_eq!(snapshot.version, 1);
    assert_eq!(snapshot.resource["chargeState"]["batteryLevel"], 66.0);
    // The read left one history sample for the statistics.
    let day = chrono::Duration::days(1);
    let samples = f.store.samples("dev-1", f.clock.now() - day, f.clock.now() + day).await.unwrap();
    assert_eq!(samples.len(), 1, "{samples:?}");
    assert_eq!((samples[0].at, samples[0].active), (snapshot.observed_at, Some(true)));
    let events = f.store.read_events(None, 10).await.unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].event, "user:vehicle:discovered");
    let due = f.store.due_at("dev-1").await.unwrap().unwrap();
    // vehicle.json is charging: due within 2 min less the poll latency allowance.
    assert!(due <= f.clock.now() + chrono::Duration::seconds(100), "{due}");
    assert!(due > f.clock.now());
    // Nothing else is due now: a second tick polls nothing.
    assert_eq!(f.poller.tick().await.unwrap().polled, 0);
}

#[tokio::test]
async fn a_change_appends_an_update_event_with_the_changed_fields() {
    let f = fixture().await;
    push(&f, Ok(observation(&f.clock, false, |_| {})));
    f.poller.tick().await.unwrap();
    push(&f, Ok(observation(&f.clock, false, |v| v["chargeState"]["batteryLevel"] = 70.into())));
    let outcome = f.poller.poll_device("dev-1").await.unwrap();
    let PollOutcome::Stored { changed, context, .. } = outcome else { panic!("{outcome:?}") };
    assert_eq!(changed, vec!["chargeState.batteryLevel"]);
    assert_eq!(context, PollContext::Charging);
    let events = f.store.read_events(None, 10).await.unwrap();
    assert_eq!(events[1].event, "user:vehicle:updated");
    assert_eq!(events[1].payload["updatedFields"], serde_json::json!(["chargeState.batteryLevel"]));
    // An identical read stores no event.
    push(&f, Ok(observation(&f.clock, false, |v| v["chargeState"]["batteryLevel"] = 70.into())));
    f.poller.poll_device("dev-1").await.unwrap();
    assert_eq!(f.store.read_events(None, 10).await.unwrap().len(), 2);
}

#[tokio::test]
async fn expired_token_is_refreshed_stored_and_the_read_retried() {
    let f = fixture().await;
    push(&f, Err(AdapterError::new(ErrorKind::AuthExpired, "FAKE", "token expired")));
    push(&f, Ok(observation(&f.clock, false, |_| {})));
    let outcome = f.poller.poll_device("dev-1").await.unwrap();
    assert!(matches!(outcome, PollOutcome::Stored { .. }), "{outcome:?}");
    assert_eq!(f.adapter.refreshes.load(Ordering::SeqCst), 1);
    assert_eq!(*f.adapter.tokens_seen.lock().unwrap(), vec!["stale", "fresh-1"]);
    let account = f.store.get_account("acct-1").await.unwrap().unwrap();
    assert_eq!(account.version, 2);
    assert_eq!(account.account.credentials.access_token, "fresh-1");
}

#[tokio::test]
async fn a_token_known_to_be_expired_is_refreshed_only_once_the_read_is_admitted() {
    let f = fixture().await;
    // The vendor asks us to wait a minute: the gate holds the account's reads back.
    push(
        &f,
        Err(AdapterError::new(ErrorKind::RateLimited, "FAKE", "slow down")
            .with_retry_after(Duration::from_secs(60))),
    );
    f.poller.poll_device("dev-1").await.unwrap();
    // Meanwhile the access token expires.
    let mut account = f.store.get_account("acct-1").await.unwrap().unwrap();
    account.account.credentials.expires_at = Some(f.clock.now() - chrono::Duration::seconds(1));
    f.store.put_account(account.account, account.version).await.unwrap();

    // A poll the gate holds back refreshes nothing: the new token could expire again before
    // the read is let through.
    let outcome = f.poller.poll_device("dev-1").await.unwrap();
    assert!(
        matches!(outcome, PollOutcome::Deferred { reason: DeferReason::VendorHold, .. }),
        "{outcome:?}"
    );
    assert_eq!(f.adapter.refreshes.load(Ordering::SeqCst), 0);

    // Once admitted, the token is refreshed first and the read is sent once, with it.
    f.clock.advance(Duration::from_secs(61));
    push(&f, Ok(observation(&f.clock, false, |_| {})));
    let outcome = f.poller.poll_device("dev-1").await.unwrap();
    assert!(matches!(outcome, PollOutcome::Stored { .. }), "{outcome:?}");
    assert_eq!(f.adapter.refreshes.load(Ordering::SeqCst), 1);
    assert_eq!(*f.adapter.tokens_seen.lock().unwrap(), vec!["stale", "fresh-1"]);
}

#[tokio::test]
async fn retry_after_is_honoured_and_failures_back_off() {
    let f = fixture().await;
    push(
        &f,
        Err(AdapterError::new(ErrorKind::RateLimited, "FAKE", "429")
            .with_retry_after(Duration::from_secs(900))),
    );
    let outcome = f.poller.poll_device("dev-1").await.unwrap();
    let PollOutcome::Failed { kind, next_due } = outcome else { panic!("{outcome:?}") };
    assert_eq!(kind, ErrorKind::RateLimited);
    assert_eq!(next_due, f.clock.now() + chrono::Duration::seconds(900));
    assert!(f.store.get_snapshot("dev-1").await.unwrap().is_none());

    // Until the vendor's retry_after has passed, the account is held: no request goes out.
    let reads_before = f.adapter.tokens_seen.lock().unwrap().len();
    let outcome = f.poller.poll_device("dev-1").await.unwrap();
    assert!(
        matches!(outcome, PollOutcome::Deferred { reason: DeferReason::VendorHold, .. }),
        "{outcome:?}"
    );
    assert_eq!(f.adapter.tokens_seen.lock().unwrap().len(), reads_before);
    f.clock.advance(Duration::from_secs(900));

    // Transient failures back off further each time.
    let mut last = chrono::Duration::zero();
    for _ in 0..4 {
        push(&f, Err(AdapterError::new(ErrorKind::Transient, "FAKE", "503")));
        let PollOutcome::Failed { next_due, .. } = f.poller.poll_device("dev-1").await.unwrap()
        else {
            panic!()
        };
        let delay = next_due - f.clock.now();
        assert!(delay >= last / 2, "{delay} after {last}");
        last = delay;
    }
    assert!(last >= chrono::Duration::seconds(60), "{last}");
}

#[tokio::test]
async fn sleeping_read_keeps_known_values_and_waits_for_the_sleeping_bound() {
    let f = fixture().await;
    push(&f, Ok(observation(&f.clock, false, |_| {})));
    f.poller.tick().await.unwrap();
    push(
        &f,
        Ok(observation(&f.clock, true, |v| {
            v["isReachable"] = false.into();
            v["chargeState"]["batteryLevel"] = serde_json::Value::Null;
            v["chargeState"]["isCharging"] = false.into();
            v["chargeState"]["powerDeliveryState"] = "PLUGGED_IN:STOPPED".into();
        })),
    );
    let outcome = f.poller.poll_device("dev-1").await.unwrap();
    let PollOutcome::Stored { context, next_due, .. } = outcome else { panic!("{outcome:?}") };
    assert_eq!(context, PollContext::Sleeping);
    assert!(next_due >= f.clock.now() + chrono::Duration::minutes(17), "{next_due}");
    assert!(next_due <= f.clock.now() + chrono::Duration::minutes(20));
    let snapshot = f.store.get_snapshot("dev-1").await.unwrap().unwrap();
    assert_eq!(
        snapshot.resource["chargeState"]["batteryLevel"], 66.0,
        "null from a sleeping read must not erase"
    );
    assert_eq!(snapshot.resource["isReachable"], false);
}

#[tokio::test]
async fn claimed_devices_are_leased_and_missing_devices_leave_the_schedule() {
    let f = fixture().await;
    // A device that is registered in the schedule but deleted from the store.
    f.store.schedule("ghost", f.clock.now()).await.unwrap();
    push(&f, Ok(observation(&f.clock, false, |_| {})));
    let report = f.poller.tick().await.unwrap();
    assert_eq!(report.polled, 2);
    assert_eq!(f.store.due_at("ghost").await.unwrap(), None);
    f.clock.advance(Duration::from_secs(3600));
    push(&f, Ok(observation(&f.clock, false, |_| {})));
    assert_eq!(f.poller.tick().await.unwrap().polled, 1);
}

#[tokio::test]
async fn an_outage_costs_one_request_per_probe_interval() {
    let f = fixture().await;
    // 30 minutes of 503s, polled as often as the poller likes.
    let start = f.clock.now();
    for _ in 0..400 {
        push(&f, Err(AdapterError::new(ErrorKind::Transient, "FAKE", "503")));
    }
    let mut requests_at = Vec::new();
    while f.clock.now() < start + chrono::Duration::minutes(30) {
        let before = f.adapter.tokens_seen.lock().unwrap().len();
        f.poller.poll_device("dev-1").await.unwrap();
        if f.adapter.tokens_seen.lock().unwrap().len() > before {
            requests_at.push(f.clock.now());
        }
        f.clock.advance(Duration::from_secs(5));
    }
    // The breaker opens after 5 failures, then probes once a minute.
    assert!(requests_at.len() <= 5 + 30, "{} requests", requests_at.len());
    // What the API's vendor health reports as OUTAGE.
    let gate = f.poller.vendor_gate("FAKE").unwrap();
    assert_ne!(gate.breaker_state(), oemgate_scheduler::breaker::BreakerState::Closed);
    for pair in requests_at[5..].windows(2) {
        assert!(pair[1] - pair[0] >= chrono::Duration::seconds(60), "{pair:?}");
    }
    // The outage ends: the next probe succeeds and polling resumes.
    f.adapter.reads.lock().unwrap().clear();
    push(&f, Ok(observation(&f.clock, false, |_| {})));
    f.clock.advance(Duration::from_secs(60));
    let outcome = f.poller.poll_device("dev-1").await.unwrap();
    assert!(matches!(outcome, PollOutcome::Stored { .. }), "{outcome:?}");
}

#[tokio::test]
async fn a_device_with_a_pending_action_is_polled_on_the_action_pending_interval() {
    let f = fixture().await;
    push(&f, Ok(observation(&f.clock, false, |_| {})));
    f.poller.tick().await.unwrap();
    let action = oemgate_store::ActionRecord {
        id: "act-1".into(),
        target_id: "dev-1".into(),
        pending: true,
        version: 0,
        body: serde_json::json!({}),
    };
    oemgate_store::ActionStore::put_action(f.store.as_ref(), action.clone(), 0).await.unwrap();
    push(&f, Ok(observation(&f.clock, false, |_| {})));
    let outcome = f.poller.poll_device("dev-1").await.unwrap();
    let PollOutcome::Stored { context, next_due, .. } = outcome else { panic!("{outcome:?}") };
    assert_eq!(context, PollContext::ActionPending);
    assert!(next_due <= f.clock.now() + chrono::Duration::seconds(10), "{next_due}");
    assert!(next_due >= f.clock.now() + chrono::Duration::seconds(9), "{next_due}");
    // A sleeping car with a pending action is still looked at every 10 s (non-waking reads).
    push(&f, Err(AdapterError::new(ErrorKind::DeviceAsleep, "FAKE", "asleep")));
    let outcome = f.poller.poll_device("dev-1").await.unwrap();
    let PollOutcome::Failed { next_due, .. } = outcome else { panic!("{outcome:?}") };
    assert!(next_due <= f.clock.now() + chrono::Duration::seconds(10), "{next_due}");
    // Once the action is resolved, the device is back on its own context.
    let done = oemgate_store::ActionRecord { pending: false, ..action };
    oemgate_store::ActionStore::put_action(f.store.as_ref(), done, 1).await.unwrap();
    push(&f, Ok(observation(&f.clock, false, |_| {})));
    let outcome = f.poller.poll_device("dev-1").await.unwrap();
    let PollOutcome::Stored { context, .. } = outcome else { panic!("{outcome:?}") };
    assert_eq!(context, PollContext::Charging);
}

/// Registers another vehicle on the fixture's account, due now.
async fn add_vehicle(f: &Fixture, id: &str) {
    let record = DeviceRecord {
        device: DeviceRef {
            id: id.into(),
            user_id: "user-1".into(),
            device_type: VendorType::Vehicle,
            vendor_id: format!("VIN-{id}"),
            site_id: None,
        },
        vendor: "FAKE".into(),
        account_id: "acct-1".into(),
        created_at: f.clock.now(),
    };
    f.poller.register(record).await.unwrap();
}

#[tokio::test]
async fn an_accounts_devices_due_together_are_read_in_one_batch() {
    let f = fixture().await;
    add_vehicle(&f, "dev-2").await;
    push(&f, Ok(observation(&f.clock, false, |_| {})));
    push(&f, Ok(observation(&f.clock, false, |_| {})));
    let report = f.poller.tick().await.unwrap();
    assert_eq!(report.polled, 2);
    assert_eq!(*f.adapter.batches.lock().unwrap(), vec![2], "one batch call");
    let stats = f.poller.stats();
    assert_eq!(stats.vendor_requests.load(Ordering::SeqCst), 1, "counted once");
    assert_eq!(stats.batched_polls.load(Ordering::SeqCst), 2);
    for id in ["dev-1", "dev-2"] {
        assert!(f.store.get_snapshot(id).await.unwrap().is_some(), "{id} stored");
    }
    // Read together, in the same context: due together again, so the next read is a batch.
    let (d1, d2) = (f.store.due_at("dev-1").await.unwrap(), f.store.due_at("dev-2").await.unwrap());
    assert_eq!(d1, d2);
    let per_hour = f.poller.requests_per_device_hour("FAKE").unwrap();
    assert!((per_hour - 0.5 * 60.0).abs() < 1e-6, "1 request, 2 devices, 1 minute: {per_hour}");
}

#[tokio::test]
async fn rejected_credentials_invalidate_the_account_once_and_stop_its_devices() {
    let f = fixture().await;
    add_vehicle(&f, "dev-2").await;
    let rejected = || Err(AdapterError::new(ErrorKind::Unauthorized, "FAKE", "token revoked"));
    push(&f, rejected());
    push(&f, rejected());
    f.poller.tick().await.unwrap();
    let account = f.store.get_account("acct-1").await.unwrap().unwrap();
    assert_eq!(account.invalid_since, Some(f.clock.now()));
    let events = f.store.read_events(None, 10).await.unwrap();
    let invalidated: Vec<_> =
        events.iter().filter(|e| e.event == "user:credentials:invalidated").collect();
    assert_eq!(invalidated.len(), 1, "one event per account: {events:?}");
    assert_eq!(invalidated[0].user_id, "user-1");
    assert_eq!(
        invalidated[0].payload,
        serde_json::json!({"user": {"id": "user-1"}, "vendor": "FAKE"})
    );
    for id in ["dev-1", "dev-2"] {
        assert_eq!(f.store.due_at(id).await.unwrap(), None, "{id} no longer polled");
    }
    assert_eq!(f.poller.stats().accounts_invalidated.load(Ordering::SeqCst), 1);
    // Polling it anyway sends nothing.
    let sent = f.adapter.tokens_seen.lock().unwrap().len();
    assert_eq!(f.poller.poll_device("dev-1").await.unwrap(), PollOutcome::Stopped);
    assert_eq!(f.adapter.tokens_seen.lock().unwrap().len(), sent);
    // Linking the vendor again makes the account valid; registered devices are polled.
    let relinked = AccountRef {
        credentials: Credentials { access_token: "new".into(), ..Default::default() },
        ..account.account.clone()
    };
    f.store.put_account(relinked, account.version).await.unwrap();
    push(&f, Ok(observation(&f.clock, false, |_| {})));
    let outcome = f.poller.poll_device("dev-1").await.unwrap();
    assert!(matches!(outcome, PollOutcome::Stored { .. }), "{outcome:?}");
}

#[tokio::test]
async fn a_poller_claims_only_the_shards_it_owns() {
    let f = fixture().await;
    let mine = oemgate_store::shard_of("dev-1");
    let other_id = (2..).map(|n| format!("dev-{n}")).find(|id| oemgate_store::shard_of(id) != mine);
    let other_id = other_id.unwrap();
    add_vehicle(&f, &other_id).await;
    let mut adapters = Adapters::new();
    adapters.register(f.adapter.clone());
    let dyn_store: Arc<dyn Store> = f.store.clone();
    let config = PollerConfig { startup_spread: Duration::ZERO, ..PollerConfig::default() };
    let owner = Poller::new(dyn_store, adapters, f.clock.clone(), config, 9)
        .with_ownership(Arc::new(StaticShards(vec![mine])));
    push(&f, Ok(observation(&f.clock, false, |_| {})));
    assert_eq!(owner.tick().await.unwrap().polled, 1);
    assert!(f.store.get_snapshot("dev-1").await.unwrap().is_some());
    assert!(f.store.get_snapshot(&other_id).await.unwrap().is_none(), "not its shard");
    // The other shard's device is still due for whoever owns that shard.
    assert!(f.store.due_at(&other_id).await.unwrap().unwrap() <= f.clock.now());
    let nobody =
        Poller::new(f.store.clone(), Adapters::new(), f.clock.clone(), PollerConfig::default(), 1)
            .with_ownership(Arc::new(StaticShards(Vec::new())));
    assert_eq!(nobody.tick().await.unwrap().polled, 0);
}

#[tokio::test]
async fn repeated_failures_mark_the_device_unreachable_until_it_is_read_again() {
    let f = fixture().await;
    push(&f, Ok(observation(&f.clock, false, |_| {})));
    f.poller.tick().await.unwrap();
    let reachable = |f: &Fixture| {
        let store = f.store.clone();
        async move {
            store.get_snapshot("dev-1").await.unwrap().unwrap().resource["isReachable"].clone()
        }
    };
    // One blip is not enough; the second failure in a row is.
    push(&f, Err(AdapterError::new(ErrorKind::Transient, "FAKE", "503")));
    f.poller.poll_device("dev-1").await.unwrap();
    assert_eq!(reachable(&f).await, true);
    push(&f, Err(AdapterError::new(ErrorKind::Transient, "FAKE", "503")));
    let outcome = f.poller.poll_device("dev-1").await.unwrap();
    let PollOutcome::Failed { next_due, .. } = outcome else { panic!("{outcome:?}") };
    assert_eq!(reachable(&f).await, false);
    // Backoff never pushes a device past its default bound for errors that heal.
    assert!(next_due <= f.clock.now() + chrono::Duration::minutes(7), "{next_due}");
    let events = f.store.read_events(None, 10).await.unwrap();
    let last = events.last().unwrap();
    assert_eq!(last.event, "user:vehicle:updated");
    assert_eq!(last.payload["updatedFields"], serde_json::json!(["isReachable"]));
    push(&f, Ok(observation(&f.clock, false, |_| {})));
    f.poller.poll_device("dev-1").await.unwrap();
    assert_eq!(reachable(&f).await, true);
}
