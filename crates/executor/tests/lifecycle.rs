//! The executor end to end against a scripted vendor (chargers, thermostats, batteries and a
//! sleepy vehicle), the real poller, the memory store (and Redis) and a manual clock.
//!
//! The scripted vendor makes the lifecycle's corners reachable on purpose: failures with and
//! without `retry_after`, lost commands, a device changing by itself, a deleted device, two
//! executor instances. Every kind also runs against the real adapters and simulators in
//! `tests/e2e/actions.rs` (Tesla vehicles and Powerwall, Wallbox, tado).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use oemgate_core::{
    AccountRef, ActionState, AdapterError, AdapterResult, AutoPermanentHold, BatteryApi,
    BatteryOperationMode, ChargeActionKind, ChargerApi, Clock, Command, CommandReceipt,
    Credentials, DeviceRef, DeviceState, DiscoveredDevice, ErrorKind, FailureReasonType,
    HeatPermanentHold, HvacApi, HvacMode, HvacPermanentHold, ManualClock, Observation, QuotaScope,
    VehicleApi, VendorAdapter, VendorInfo, VendorLimits, VendorType,
};
use oemgate_executor::{
    ACTION_EVENT, ActionRequest, CancelError, CreateError, Executor, ExecutorConfig,
    RetryBudgetConfig, VendorAction,
};
use oemgate_scheduler::{Adapters, Poller, PollerConfig};
use oemgate_store::{DeviceRecord, MemoryStore, Store};
use serde_json::{Value, json};

const INFO: VendorInfo = VendorInfo {
    name: "FAKE",
    display_name: "Fake",
    device_types: &[
        VendorType::Vehicle,
        VendorType::Charger,
        VendorType::Battery,
        VendorType::Hvac,
    ],
};

struct FakeDevice {
    device_type: VendorType,
    resource: Value,
    asleep: bool,
    awake_at: Option<DateTime<Utc>>,
}

/// A vendor cloud in a box: devices as resource JSON, commands that land after `latency`,
/// scripted failures, and a log of every command request.
struct Fake {
    clock: Arc<ManualClock>,
    devices: Mutex<HashMap<String, FakeDevice>>,
    effects: Mutex<Vec<(DateTime<Utc>, String, Command)>>,
    latency: Mutex<Duration>,
    /// Commands accepted but never applied while this is true.
    lose: Mutex<bool>,
    failures: Mutex<VecDeque<(ErrorKind, Option<Duration>)>>,
    log: Mutex<Vec<(DateTime<Utc>, String, Command)>>,
}

impl Fake {
    fn new(clock: Arc<ManualClock>) -> Self {
        Self {
            clock,
            devices: Mutex::new(HashMap::new()),
            effects: Mutex::new(Vec::new()),
            latency: Mutex::new(Duration::from_secs(20)),
            lose: Mutex::new(false),
            failures: Mutex::new(VecDeque::new()),
            log: Mutex::new(Vec::new()),
        }
    }

    fn commands(&self) -> Vec<(DateTime<Utc>, Command)> {
        self.log.lock().unwrap().iter().map(|(t, _, c)| (*t, c.clone())).collect()
    }

    fn edit(&self, vendor_id: &str, f: impl FnOnce(&mut Value)) {
        f(&mut self.devices.lock().unwrap().get_mut(vendor_id).unwrap().resource);
    }

    fn apply_due(&self) {
        let now = self.clock.now();
        let due: Vec<_> = {
            let mut effects = self.effects.lock().unwrap();
            let (due, later) = effects.drain(..).partition(|(t, _, _)| *t <= now);
            *effects = later;
            due
        };
        let mut devices = self.devices.lock().unwrap();
        for (_, id, command) in due {
            let Some(d) = devices.get_mut(&id) else { continue };
            let r = &mut d.resource;
            match command {
                Command::StartCharging => {
                    r["chargeState"]["powerDeliveryState"] = "PLUGGED_IN:CHARGING".into();
                    r["chargeState"]["isCharging"] = true.into();
                }
                Command::StopCharging => {
                    r["chargeState"]["powerDeliveryState"] = "PLUGGED_IN:STOPPED".into();
                    r["chargeState"]["isCharging"] = false.into();
                }
                Command::SetMaxCurrent { amps } => r["chargeState"]["maxCurrent"] = amps.into(),
                Command::SetOperationMode { mode } => {
                    r["config"]["operationMode"] = mode.as_str().into();
                }
                Command::SetPermanentHold { mode, heat_setpoint, cool_setpoint } => {
                    let t = &mut r["thermostatState"];
                    t["mode"] = mode.as_str().into();
                    if let Some(h) = heat_setpoint {
                        t["heatSetpoint"] = h.into();
                    }
                    if let Some(c) = cool_setpoint {
                        t["coolSetpoint"] = c.into();
                    }
                    t["holdType"] = "PERMANENT".into();
                }
                Command::FollowSchedule => r["thermostatState"]["holdType"] = "SCHEDULED".into(),
                Command::WakeUp => {}
            }
        }
        for d in devices.values_mut() {
            if d.awake_at.is_some_and(|t| t <= now) {
                d.asleep = false;
                d.awake_at = None;
            }
        }
    }

    fn command(&self, device: &DeviceRef, command: Command) -> AdapterResult<CommandReceipt> {
        let now = self.clock.now();
        self.log.lock().unwrap().push((now, device.vendor_id.clone(), command.clone()));
        if let Some((kind, after)) = self.failures.lock().unwrap().pop_front() {
            let mut err = AdapterError::new(kind, "FAKE", format!("{} failed", command.name()));
            if let Some(after) = after {
                err = err.with_retry_after(after);
            }
            return Err(err);
        }
        self.apply_due();
        let mut devices = self.devices.lock().unwrap();
        let d = devices.get_mut(&device.vendor_id).unwrap();
        if command == Command::WakeUp {
            if d.asleep && d.awake_at.is_none() {
                d.awake_at = Some(now + chrono::Duration::seconds(15));
            }
            return Ok(CommandReceipt { vendor_action_id: None, requests: 1 });
        }
        if d.asleep {
            return Err(AdapterError::new(ErrorKind::DeviceAsleep, "FAKE", "asleep"));
        }
        if !*self.lose.lock().unwrap() {
            let due = now + chrono::Duration::from_std(*self.latency.lock().unwrap()).unwrap();
            self.effects.lock().unwrap().push((due, device.vendor_id.clone(), command));
        }
        Ok(CommandReceipt { vendor_action_id: None, requests: 1 })
    }

    fn read(&self, device: &DeviceRef) -> AdapterResult<Observation> {
        self.apply_due();
        let devices = self.devices.lock().unwrap();
        let d = devices.get(&device.vendor_id).unwrap();
        let mut resource = d.resource.clone();
        resource["id"] = device.id.clone().into();
        resource["userId"] = device.user_id.clone().into();
        if d.asleep {
            resource["isReachable"] = false.into();
            resource["chargeState"]["powerDeliveryState"] = "UNKNOWN".into();
        }
        let state = match d.device_type {
            VendorType::Vehicle => {
                DeviceState::Vehicle(Box::new(serde_json::from_value(resource).unwrap()))
            }
            VendorType::Charger => {
                DeviceState::Charger(Box::new(serde_json::from_value(resource).unwrap()))
            }
            VendorType::Battery => {
                DeviceState::Battery(Box::new(serde_json::from_value(resource).unwrap()))
            }
            _ => DeviceState::Hvac(Box::new(serde_json::from_value(resource).unwrap())),
        };
        Ok(Observation { state, observed_at: self.clock.now(), asleep: d.asleep, requests: 1 })
    }
}

#[async_trait]
impl VehicleApi for Fake {
    async fn read_vehicle(&self, _: &AccountRef, d: &DeviceRef) -> AdapterResult<Observation> {
        self.read(d)
    }
    async fn wake_up(&self, _: &AccountRef, d: &DeviceRef) -> AdapterResult<CommandReceipt> {
        self.command(d, Command::WakeUp)
    }
    async fn set_charging(
        &self,
        _: &AccountRef,
        d: &DeviceRef,
        start: bool,
    ) -> AdapterResult<CommandReceipt> {
        self.command(d, if start { Command::StartCharging } else { Command::StopCharging })
    }
    async fn set_max_current(
        &self,
        _: &AccountRef,
        d: &DeviceRef,
        amps: f64,
    ) -> AdapterResult<CommandReceipt> {
        self.command(d, Command::SetMaxCurrent { amps })
    }
}

#[async_trait]
impl ChargerApi for Fake {
    async fn read_charger(&self, _: &AccountRef, d: &DeviceRef) -> AdapterResult<Observation> {
        self.read(d)
    }
    async fn set_charging(
        &self,
        _: &AccountRef,
        d: &DeviceRef,
        start: bool,
    ) -> AdapterResult<CommandReceipt> {
        self.command(d, if start { Command::StartCharging } else { Command::StopCharging })
    }
    async fn set_max_current(
        &self,
        _: &AccountRef,
        d: &DeviceRef,
        amps: f64,
    ) -> AdapterResult<CommandReceipt> {
        self.command(d, Command::SetMaxCurrent { amps })
    }
}

#[async_trait]
impl BatteryApi for Fake {
    async fn read_battery(&self, _: &AccountRef, d: &DeviceRef) -> AdapterResult<Observation> {
        self.read(d)
    }
    async fn set_operation_mode(
        &self,
        _: &AccountRef,
        d: &DeviceRef,
        mode: BatteryOperationMode,
    ) -> AdapterResult<CommandReceipt> {
        self.command(d, Command::SetOperationMode { mode })
    }
}

#[async_trait]
impl HvacApi for Fake {
    async fn read_hvac(&self, _: &AccountRef, d: &DeviceRef) -> AdapterResult<Observation> {
        self.read(d)
    }
    async fn set_permanent_hold(
        &self,
        _: &AccountRef,
        d: &DeviceRef,
        mode: HvacMode,
        heat_setpoint: Option<f64>,
        cool_setpoint: Option<f64>,
    ) -> AdapterResult<CommandReceipt> {
        self.command(d, Command::SetPermanentHold { mode, heat_setpoint, cool_setpoint })
    }
    async fn follow_schedule(
        &self,
        _: &AccountRef,
        d: &DeviceRef,
    ) -> AdapterResult<CommandReceipt> {
        self.command(d, Command::FollowSchedule)
    }
}

#[async_trait]
impl VendorAdapter for Fake {
    fn info(&self) -> &VendorInfo {
        &INFO
    }
    fn limits(&self) -> VendorLimits {
        VendorLimits {
            requests_per_minute: 600,
            burst: 100,
            rate_scope: QuotaScope::Account,
            daily_quota: None,
            max_concurrent: 100,
            pricing: None,
        }
    }
    async fn refresh_credentials(&self, account: &AccountRef) -> AdapterResult<Credentials> {
        Ok(account.credentials.clone())
    }
    async fn discover(&self, _: &AccountRef) -> AdapterResult<Vec<DiscoveredDevice>> {
        Ok(Vec::new())
    }
    fn vehicles(&self) -> Option<&dyn VehicleApi> {
        Some(self)
    }
    fn chargers(&self) -> Option<&dyn ChargerApi> {
        Some(self)
    }
    fn batteries(&self) -> Option<&dyn BatteryApi> {
        Some(self)
    }
    fn hvacs(&self) -> Option<&dyn HvacApi> {
        Some(self)
    }
}

struct Harness {
    clock: Arc<ManualClock>,
    store: Arc<dyn Store>,
    fake: Arc<Fake>,
    poller: Poller,
    executor: Executor,
    adapters: Adapters,
}

fn config() -> ExecutorConfig {
    ExecutorConfig::default()
}

async fn harness(config: ExecutorConfig) -> Harness {
    harness_on(Arc::new(MemoryStore::new()), config).await
}

async fn harness_on(store: Arc<dyn Store>, config: ExecutorConfig) -> Harness {
    let clock = Arc::new(ManualClock::new("2026-06-01T07:00:00Z".parse().unwrap()));
    let fake = Arc::new(Fake::new(clock.clone()));
    let mut adapters = Adapters::new();
    adapters.register(fake.clone());
    let poller_config = PollerConfig { startup_spread: Duration::ZERO, ..PollerConfig::default() };
    let poller = Poller::new(store.clone(), adapters.clone(), clock.clone(), poller_config, 1);
    let executor = Executor::new(store.clone(), adapters.clone(), clock.clone(), config)
        .with_gates_from(&poller)
        .with_owner("a");
    let account = AccountRef {
        user_id: "user-1".into(),
        vendor: "FAKE".into(),
        account_id: "acct-1".into(),
        credentials: Credentials { access_token: "t".into(), ..Default::default() },
    };
    store.put_account(account, 0).await.unwrap();
    Harness { clock, store, fake, poller, executor, adapters }
}

fn fixture(device_type: VendorType) -> Value {
    let text = match device_type {
        VendorType::Vehicle => include_str!("fixtures/vehicle.json"),
        VendorType::Charger => include_str!("fixtures/charger.json"),
        VendorType::Battery => include_str!("fixtures/battery.json"),
        _ => include_str!("fixtures/hvac.json"),
    };
    serde_json::from_str(text).unwrap()
}

impl Harness {
    /// Registers a device with the fake vendor and the store, and polls it once.
    async fn device(&self, id: &str, device_type: VendorType, edit: impl FnOnce(&mut Value)) {
        let mut resource = fixture(device_type);
        edit(&mut resource);
        self.fake.devices.lock().unwrap().insert(
            format!("v-{id}"),
            FakeDevice { device_type, resource, asleep: false, awake_at: None },
        );
        let record = DeviceRecord {
            device: DeviceRef {
                id: id.into(),
                user_id: "user-1".into(),
                device_type,
                vendor_id: format!("v-{id}"),
                site_id: None,
            },
            vendor: "FAKE".into(),
            account_id: "acct-1".into(),
            created_at: self.clock.now(),
        };
        self.poller.register(record).await.unwrap();
        self.poller.poll_device(id).await.unwrap();
    }

    async fn create(
        &self,
        device_type: VendorType,
        id: &str,
        request: ActionRequest,
    ) -> VendorAction {
        let created = self.executor.create(device_type, id, request).await.unwrap();
        assert!(!created.existing);
        created.action
    }

    async fn action(&self, action: &VendorAction) -> VendorAction {
        self.executor.get(action.device_type(), action.id()).await.unwrap().unwrap()
    }

    /// Second by second: the clock moves, the poller and the executor tick.
    async fn run(&self, secs: u64) {
        for _ in 0..secs {
            self.clock.advance(Duration::from_secs(1));
            self.poller.tick().await.unwrap();
            self.executor.tick().await.unwrap();
        }
    }

    /// Runs until the action leaves PENDING (at most `limit` seconds).
    async fn settle(&self, action: &VendorAction, limit: u64) -> VendorAction {
        self.executor.tick().await.unwrap();
        for _ in 0..limit {
            let now = self.action(action).await;
            if now.state() != ActionState::Pending {
                return now;
            }
            self.run(1).await;
        }
        panic!("{} still pending after {limit} s", action.id());
    }

    async fn events(&self) -> Vec<Value> {
        self.store
            .read_events(None, 10_000)
            .await
            .unwrap()
            .into_iter()
            .filter(|e| e.event == ACTION_EVENT)
            .map(|e| e.payload)
            .collect()
    }
}

fn stopped_charger(c: &mut Value) {
    c["chargeState"]["powerDeliveryState"] = "PLUGGED_IN:STOPPED".into();
    c["chargeState"]["isCharging"] = false.into();
    c["capabilities"]["setMaxCurrent"] = json!({"isCapable": true, "interventionIds": []});
}

#[tokio::test]
async fn charger_start_stop_and_max_current_are_confirmed_by_the_observed_state() {
    let h = harness(config()).await;
    h.device("c1", VendorType::Charger, stopped_charger).await;

    let start =
        h.create(VendorType::Charger, "c1", ActionRequest::Charging(ChargeActionKind::Start)).await;
    assert_eq!(start.to_json()["targetType"], "charger");
    assert_eq!(start.to_json()["kind"], "START");
    let done = h.settle(&start, 120).await;
    assert_eq!(done.state(), ActionState::Confirmed);
    assert_eq!(done.failure_reason(), None);
    let completed = done.completed_at().unwrap();
    // 20 s latency, then the next confirmation poll (10 s cadence) and tick.
    assert!(completed - start.created_at() <= chrono::Duration::seconds(31), "{completed}");
    assert_eq!(done.updated_at(), completed);
    assert_eq!(h.fake.commands().len(), 1, "confirmed without a re-send");

    let stop =
        h.create(VendorType::Charger, "c1", ActionRequest::Charging(ChargeActionKind::Stop)).await;
    assert_eq!(h.settle(&stop, 120).await.state(), ActionState::Confirmed);

    let current = h.create(VendorType::Charger, "c1", ActionRequest::MaxCurrent(10.0)).await;
    let done = h.settle(&current, 120).await;
    assert_eq!(done.state(), ActionState::Confirmed);
    assert_eq!(done.to_json()["targetState"]["maxCurrent"], 10.0);
    let commands: Vec<_> = h.fake.commands().into_iter().map(|(_, c)| c).collect();
    assert_eq!(
        commands,
        [Command::StartCharging, Command::StopCharging, Command::SetMaxCurrent { amps: 10.0 }]
    );

    // Every change appended a user:vendor-action:updated event naming what changed.
    let events = h.events().await;
    assert_eq!(events.len(), 6, "three creations and three confirmations");
    let confirmed = &events[1];
    assert_eq!(confirmed["vendorAction"]["state"], "CONFIRMED");
    assert_eq!(confirmed["user"]["id"], "user-1");
    let fields: Vec<&str> = confirmed["updatedFields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    assert_eq!(fields, ["completedAt", "state", "updatedAt"]);
}

#[tokio::test]
async fn hvac_permanent_hold_and_follow_schedule_are_confirmed() {
    let h = harness(config()).await;
    h.device("h1", VendorType::Hvac, |v| {
        v["thermostatState"]["holdType"] = "SCHEDULED".into();
        v["capabilities"]["capableModes"] = json!(["HEAT", "COOL", "AUTO", "OFF"]);
        v["capabilities"]["setpointDifferenceRange"] = json!({"min": 1, "max": 10});
    })
    .await;
    let heat = ActionRequest::PermanentHold(HvacPermanentHold::Heat(HeatPermanentHold {
        heat_setpoint: 20.5,
    }));
    let action = h.create(VendorType::Hvac, "h1", heat).await;
    let json = action.to_json();
    assert_eq!(
        json["target"],
        json!({"mode": "HEAT", "heatSetpoint": 20.5, "holdType": "PERMANENT"})
    );
    assert_eq!(json["failureReason"], Value::Null);
    let done = h.settle(&action, 120).await;
    assert_eq!(done.state(), ActionState::Confirmed);

    let auto = ActionRequest::PermanentHold(HvacPermanentHold::Auto(AutoPermanentHold {
        cool_setpoint: 24.0,
        heat_setpoint: 19.0,
    }));
    let action = h.create(VendorType::Hvac, "h1", auto).await;
    assert_eq!(h.settle(&action, 120).await.state(), ActionState::Confirmed);
    let snapshot = h.store.get_snapshot("h1").await.unwrap().unwrap();
    assert_eq!(snapshot.resource["thermostatState"]["mode"], "AUTO");

    let follow = h.create(VendorType::Hvac, "h1", ActionRequest::FollowSchedule).await;
    assert_eq!(follow.to_json()["target"], json!({"holdType": "SCHEDULED"}));
    assert_eq!(h.settle(&follow, 120).await.state(), ActionState::Confirmed);
    assert_eq!(
        h.executor.get(VendorType::Vehicle, follow.id()).await.unwrap(),
        None,
        "wrong collection"
    );
}

#[tokio::test]
async fn battery_operation_mode_is_confirmed() {
    let h = harness(config()).await;
    h.device("b1", VendorType::Battery, |_| {}).await;
    let request = ActionRequest::OperationMode(BatteryOperationMode::SelfReliance);
    let action = h.create(VendorType::Battery, "b1", request).await;
    let done = h.settle(&action, 120).await;
    assert_eq!(done.state(), ActionState::Confirmed);
    assert_eq!(done.to_json()["targetState"]["operationMode"], "SELF_RELIANCE");
}

#[tokio::test]
async fn a_device_reaching_the_target_by_itself_first_is_unnecessary() {
    let h = harness(config()).await;
    h.device("c1", VendorType::Charger, stopped_charger).await;
    let action =
        h.create(VendorType::Charger, "c1", ActionRequest::Charging(ChargeActionKind::Start)).await;
    // The user starts charging at the charger before the executor gets to it.
    h.fake.edit("v-c1", |r| r["chargeState"]["powerDeliveryState"] = "PLUGGED_IN:CHARGING".into());
    h.poller.poll_device("c1").await.unwrap();
    let done = h.settle(&action, 5).await;
    assert_eq!(done.state(), ActionState::Cancelled);
    assert_eq!(done.failure_reason().unwrap().r#type, FailureReasonType::Unnecessary);
    assert!(h.fake.commands().is_empty());
}

#[tokio::test]
async fn a_deleted_device_ends_its_action_not_found() {
    let h = harness(config()).await;
    h.device("c1", VendorType::Charger, stopped_charger).await;
    h.fake.lose.lock().unwrap().clone_from(&true);
    let action = h.create(VendorType::Charger, "c1", ActionRequest::MaxCurrent(20.0)).await;
    h.run(5).await;
    assert_eq!(h.action(&action).await.state(), ActionState::Pending);
    h.store.delete_device("c1").await.unwrap();
    let done = h.settle(&action, 5).await;
    assert_eq!(done.state(), ActionState::Cancelled);
    assert_eq!(done.failure_reason().unwrap().r#type, FailureReasonType::NotFound);
}

#[tokio::test]
async fn a_sleeping_vehicle_is_woken_before_the_command() {
    let h = harness(config()).await;
    h.device("car", VendorType::Vehicle, |v| {
        v["chargeState"]["powerDeliveryState"] = "PLUGGED_IN:STOPPED".into();
        v["chargeState"]["isCharging"] = false.into();
    })
    .await;
    h.fake.devices.lock().unwrap().get_mut("v-car").unwrap().asleep = true;
    h.poller.poll_device("car").await.unwrap();
    let action = h
        .create(VendorType::Vehicle, "car", ActionRequest::Charging(ChargeActionKind::Start))
        .await;
    let done = h.settle(&action, 180).await;
    assert_eq!(done.state(), ActionState::Confirmed);
    let commands: Vec<_> = h.fake.commands().into_iter().map(|(_, c)| c).collect();
    assert_eq!(commands, [Command::WakeUp, Command::StartCharging], "woken once, then commanded");
}

#[tokio::test]
async fn cancel_and_supersede() {
    let h = harness(config()).await;
    h.device("c1", VendorType::Charger, stopped_charger).await;
    let first = h.create(VendorType::Charger, "c1", ActionRequest::MaxCurrent(10.0)).await;
    let again = h
        .executor
        .create(VendorType::Charger, "c1", ActionRequest::MaxCurrent(10.0))
        .await
        .unwrap();
    assert!(again.existing);
    assert_eq!(again.action.id(), first.id());
    let second = h.create(VendorType::Charger, "c1", ActionRequest::MaxCurrent(12.0)).await;
    let old = h.action(&first).await;
    assert_eq!(old.state(), ActionState::Cancelled);
    assert_eq!(old.failure_reason().unwrap().r#type, FailureReasonType::Conflict);
    assert!(old.failure_reason().unwrap().detail.contains(second.id()));
    let cancelled = h.executor.cancel(VendorType::Charger, second.id()).await.unwrap();
    assert_eq!(cancelled.state(), ActionState::Cancelled);
    assert_eq!(
        cancelled.failure_reason().unwrap().r#type,
        FailureReasonType::RequestedCancellation
    );
    let err = h.executor.cancel(VendorType::Charger, second.id()).await.unwrap_err();
    assert!(matches!(err, CancelError::AlreadyResolved(a) if a.state() == ActionState::Cancelled));
    assert!(matches!(
        h.executor.cancel(VendorType::Charger, "nope").await,
        Err(CancelError::NotFound)
    ));
    assert!(matches!(
        h.executor.cancel(VendorType::Hvac, first.id()).await,
        Err(CancelError::NotFound)
    ));
    h.run(30).await;
    assert!(h.fake.commands().is_empty(), "nothing is sent for cancelled actions");
    assert!(matches!(
        h.executor.create(VendorType::Charger, "nope", ActionRequest::MaxCurrent(10.0)).await,
        Err(CreateError::NotFound { .. })
    ));
    assert!(matches!(
        h.executor.create(VendorType::Charger, "c1", ActionRequest::MaxCurrent(0.0)).await,
        Err(CreateError::Refused(_))
    ));
}

#[tokio::test]
async fn one_instance_at_a_time_drives_an_action_and_another_takes_over_after_the_lease() {
    let h = harness(config()).await;
    h.device("c1", VendorType::Charger, stopped_charger).await;
    *h.fake.lose.lock().unwrap() = true;
    let action =
        h.create(VendorType::Charger, "c1", ActionRequest::Charging(ChargeActionKind::Start)).await;
    let other = Executor::new(h.store.clone(), h.adapters.clone(), h.clock.clone(), config())
        .with_owner("b");
    h.executor.tick().await.unwrap();
    assert_eq!(h.fake.commands().len(), 1);
    let report = other.tick().await.unwrap();
    assert_eq!(report.leased_elsewhere, 1);
    // "a" dies. After the lease and the resend interval, "b" re-sends and drives it home.
    *h.fake.lose.lock().unwrap() = false;
    for _ in 0..150 {
        h.clock.advance(Duration::from_secs(1));
        h.poller.tick().await.unwrap();
        other.tick().await.unwrap();
    }
    assert_eq!(h.action(&action).await.state(), ActionState::Confirmed);
    let commands = h.fake.commands();
    assert_eq!(commands.len(), 2);
    assert!(commands[1].0 - commands[0].0 >= chrono::Duration::seconds(120));
}

#[tokio::test]
async fn failures_back_off_honour_retry_after_and_spend_a_bounded_budget() {
    let budget = RetryBudgetConfig { window: Duration::from_secs(60), min_retries: 2, ratio: 0.2 };
    let h = harness(ExecutorConfig { retry_budget: budget, ..config() }).await;
    // A 429 with Retry-After: 30 s, then success.
    h.device("c0", VendorType::Charger, stopped_charger).await;
    h.fake
        .failures
        .lock()
        .unwrap()
        .push_back((ErrorKind::RateLimited, Some(Duration::from_secs(30))));
    let action = h.create(VendorType::Charger, "c0", ActionRequest::MaxCurrent(8.0)).await;
    let done = h.settle(&action, 120).await;
    assert_eq!(done.state(), ActionState::Confirmed);
    let commands = h.fake.commands();
    assert_eq!(commands.len(), 2);
    assert_eq!(commands[1].0 - commands[0].0, chrono::Duration::seconds(30));

    // Ten chargers the vendor reports offline for a while (an answer that neither opens the
    // vendor's breaker nor holds the account like a 429): ten first attempts earn two
    // retries (plus the minimum of two) per minute, whatever the backoff would allow.
    h.fake.log.lock().unwrap().clear();
    for n in 1..=10 {
        h.device(&format!("c{n}"), VendorType::Charger, stopped_charger).await;
    }
    h.fake.failures.lock().unwrap().extend((0..1000).map(|_| (ErrorKind::DeviceOffline, None)));
    for n in 1..=10 {
        h.create(VendorType::Charger, &format!("c{n}"), ActionRequest::MaxCurrent(8.0)).await;
    }
    let start = h.clock.now();
    h.executor.tick().await.unwrap();
    h.run(59).await;
    let in_first_minute = h
        .fake
        .commands()
        .iter()
        .filter(|(t, _)| *t - start < chrono::Duration::seconds(60))
        .count();
    assert!(in_first_minute <= 10 + 2 + 2, "{in_first_minute} requests in the first minute");
    assert!(h.executor.stats().budget_denied.load(std::sync::atomic::Ordering::Relaxed) > 0);
    // When the vendor recovers, every action still completes.
    h.fake.failures.lock().unwrap().clear();
    h.run(600).await;
    let pending = h.store.pending_actions().await.unwrap();
    assert!(pending.is_empty(), "{} still pending", pending.len());
}

#[tokio::test]
async fn an_unplugged_charger_cancels_a_start_after_the_grace_period() {
    let h = harness(config()).await;
    h.device("c1", VendorType::Charger, stopped_charger).await;
    *h.fake.latency.lock().unwrap() = Duration::from_secs(600);
    let action =
        h.create(VendorType::Charger, "c1", ActionRequest::Charging(ChargeActionKind::Start)).await;
    h.run(5).await;
    h.fake.edit("v-c1", |r| r["chargeState"]["powerDeliveryState"] = "UNPLUGGED".into());
    let unplugged_at = h.clock.now();
    let done = h.settle(&action, 400).await;
    assert_eq!(done.state(), ActionState::Cancelled);
    let why = done.failure_reason().unwrap();
    assert_eq!(why.r#type, FailureReasonType::FailedPrecondition);
    assert!(why.detail.contains("unplugged"), "{}", why.detail);
    let after = done.completed_at().unwrap() - unplugged_at;
    assert!(
        after >= chrono::Duration::minutes(5) && after <= chrono::Duration::seconds(315),
        "{after}"
    );
    assert_eq!(h.fake.commands().len(), 1, "nothing re-sent to an unplugged charger");
}

fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

/// Deletes every key of a test prefix (best effort).
async fn cleanup(prefix: &str) {
    let config = oemgate_store::RedisConfig::new(redis_url(), prefix);
    if let Ok(store) = oemgate_store::RedisStore::connect(config).await {
        let _ = store.purge().await;
    }
}

/// Actions are durable: on the Redis backend (needs a server at `REDIS_URL`, like the store's
/// conformance tests), an executor that dies after sending is replaced by a new one that
/// resumes every pending action from the store and completes it.
#[tokio::test]
async fn pending_actions_survive_a_restart_on_redis() {
    let prefix = format!("oemgate-executor-test-{}", uuid::Uuid::new_v4().simple());
    let url = redis_url();
    let redis = oemgate_store::RedisStore::connect(oemgate_store::RedisConfig::new(&url, &prefix))
        .await
        .unwrap_or_else(|err| panic!("this test needs Redis at {url} (set REDIS_URL): {err}"));
    let h = harness_on(Arc::new(redis), config()).await;
    h.device("c1", VendorType::Charger, stopped_charger).await;
    h.device("h1", VendorType::Hvac, |v| v["thermostatState"]["holdType"] = "SCHEDULED".into())
        .await;
    *h.fake.lose.lock().unwrap() = true;
    let start =
        h.create(VendorType::Charger, "c1", ActionRequest::Charging(ChargeActionKind::Start)).await;
    h.executor.tick().await.unwrap();
    let heat = ActionRequest::PermanentHold(HvacPermanentHold::Heat(HeatPermanentHold {
        heat_setpoint: 19.0,
    }));
    let hold = h.create(VendorType::Hvac, "h1", heat).await;
    *h.fake.lose.lock().unwrap() = false;
    let stored = h.store.get_action(start.id()).await.unwrap().unwrap();
    assert!(stored.pending);
    assert_eq!(stored.body["executor"]["owner"], "a");
    assert_eq!(stored.body["executor"]["accepted"], 1);

    let restarted = Executor::new(h.store.clone(), h.adapters.clone(), h.clock.clone(), config())
        .with_owner("b");
    for _ in 0..200 {
        h.clock.advance(Duration::from_secs(1));
        h.poller.tick().await.unwrap();
        restarted.tick().await.unwrap();
    }
    for action in [&start, &hold] {
        let now = restarted.get(action.device_type(), action.id()).await.unwrap().unwrap();
        assert_eq!(now.state(), ActionState::Confirmed, "{}", now.id());
    }
    assert!(h.store.pending_actions().await.unwrap().is_empty());
    cleanup(&prefix).await;
}
