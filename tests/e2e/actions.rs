//! Actions end to end: the API creates them, the executor sends commands through the real
//! adapters to the vendor simulators, the poller reads the devices back, and only the
//! observed state confirms. Poller and executor are ticked by hand on the manual clock.
//!
//! Fleet: two households (seed 7). Household 1 has two Teslas and a tado thermostat;
//! household 2 a Tesla, a Powerwall, a Wallbox charger and a tado thermostat.

use std::sync::Arc;
use std::time::Duration;

use oemgate::config::Config;
use oemgate::demo::Demo;
use oemgate_core::{Clock, ManualClock, VendorType};
use oemgate_sim::{ChargeState, DeviceId, DrivingPattern, Fault, LatencyProfile, PowerState};
use oemgate_store::{DeviceFilter, DeviceRecord, PageRequest};
use serde_json::{Value, json};

use crate::support::{demo_with, token};

struct Ctx {
    demo: Demo,
    clock: Arc<ManualClock>,
    http: reqwest::Client,
    config: Config,
}

async fn ctx() -> Ctx {
    ctx_with(Config::defaults().unwrap()).await
}

async fn ctx_with(config: Config) -> Ctx {
    ctx_households(config, 2).await
}

async fn ctx_households(config: Config, households: usize) -> Ctx {
    let (demo, clock) = demo_with(config.clone(), households, None).await;
    // Deterministic command latencies (the default profile has a long random tail).
    for vendor in ["tesla", "wallbox", "tado", "easee", "zaptec", "ecobee", "nest"] {
        demo.sim.world.set_latency(vendor, LatencyProfile::fixed(20.0));
    }
    let ctx = Ctx { demo, clock, http: reqwest::Client::new(), config };
    // First reads of every device.
    ctx.step(40).await;
    ctx
}

impl Ctx {
    async fn send(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        crate::support::call(&self.http, &self.demo, method, path, body).await
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.send(reqwest::Method::POST, path, Some(body)).await
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        self.send(reqwest::Method::GET, path, None).await
    }

    /// Creates an action; it must be accepted (200, PENDING).
    async fn create(&self, path: &str, body: Value) -> Value {
        let (status, action) = self.post(path, body).await;
        assert_eq!(status, 200, "{path}: {action}");
        assert_eq!(action["state"], "PENDING", "{action}");
        action
    }

    async fn action(&self, plural: &str, id: &str) -> Value {
        let (status, action) = self.get(&format!("/{plural}/actions/{id}")).await;
        assert_eq!(status, 200, "{action}");
        action
    }

    /// `secs` of simulated time in one-second steps, ticking the poller and the executor.
    async fn step(&self, secs: u64) {
        for _ in 0..secs {
            self.clock.advance(Duration::from_secs(1));
            self.demo.poller.tick().await.unwrap();
            self.demo.executor.tick().await.unwrap();
        }
    }

    /// Steps until the action leaves PENDING; returns it. Panics after `limit` seconds.
    async fn settle(&self, plural: &str, action: &Value, limit: u64) -> Value {
        let id = action["id"].as_str().unwrap();
        self.demo.executor.tick().await.unwrap();
        for _ in 0..limit {
            let stored = self.demo.executor.get(device_type(plural), id).await.unwrap().unwrap();
            if stored.state() != oemgate_core::ActionState::Pending {
                return self.action(plural, id).await;
            }
            self.step(1).await;
        }
        let record = self.demo.store.get_action(id).await.unwrap().unwrap();
        panic!("{id} still pending after {limit} s: {}", record.body);
    }

    async fn devices(&self, vendor: &str, device_type: VendorType) -> Vec<DeviceRecord> {
        let filter = DeviceFilter { device_type: Some(device_type), ..DeviceFilter::default() };
        let page = PageRequest { page_size: 1000, ..PageRequest::default() };
        let mut found = self.demo.store.list_devices(&filter, &page).await.unwrap().items;
        found.retain(|d| d.vendor == vendor);
        found.sort_by(|a, b| a.device.vendor_id.cmp(&b.device.vendor_id));
        found
    }

    /// The first Tesla car of a household (by world site) with its world id, parked at home
    /// and online, with nothing planned, plugged in (not charging) at 50 % with an 80 %
    /// limit; read once.
    async fn tesla_car(&self, site: &str) -> (DeviceRecord, DeviceId) {
        self.nth_tesla_car(site, 0).await
    }

    /// Like [`Ctx::tesla_car`], the `nth` car of the household.
    async fn nth_tesla_car(&self, site: &str, nth: usize) -> (DeviceRecord, DeviceId) {
        let world = &self.demo.sim.world;
        let mut seen = 0;
        for record in self.devices("TESLA", VendorType::Vehicle).await {
            let id = self.demo.sim.tesla.vehicle_of_vin(&record.device.vendor_id).unwrap();
            if world.vehicle(&id).unwrap().site.to_string() != site {
                continue;
            }
            seen += 1;
            if seen <= nth {
                continue;
            }
            let now = self.clock.now();
            world
                .update_vehicle(&id, |m| {
                    m.trip = None;
                    m.plan.clear();
                    m.pattern = DrivingPattern {
                        commute_km: None,
                        errands_per_week: 0.0,
                        plug_in_share: 1.0,
                    };
                    m.at_home = true;
                    m.return_at = None;
                    m.plug_in_at = None;
                    m.power_state = PowerState::Online;
                    m.waking_at = None;
                    m.last_activity = now;
                    m.charging = ChargeState::Disconnected;
                    m.charge_on_plug = false;
                    m.battery_level = 50.0;
                    m.charge_limit = 80.0;
                    m.amps = 16;
                })
                .unwrap();
            world.plug_in(&id).unwrap();
            self.read(&record.device.id).await;
            return (record, id);
        }
        panic!("no Tesla at {site}");
    }

    /// Reads a device now.
    /// Reads a device now, or as soon as its vendor's rate limit allows: linking charged
    /// discovery's requests to the vendor's budget, and a 2-requests-a-minute vendor (ecobee)
    /// may have none left for a moment.
    async fn read(&self, device_id: &str) {
        for _ in 0..180 {
            let outcome = self.demo.poller.poll_device(device_id).await.unwrap();
            if !matches!(outcome, oemgate_scheduler::PollOutcome::Deferred { .. }) {
                return;
            }
            self.step(1).await;
        }
        panic!("{device_id} could not be read within 3 minutes");
    }

    async fn snapshot(&self, device_id: &str) -> Value {
        self.demo.store.get_snapshot(device_id).await.unwrap().unwrap().resource
    }

    fn tesla_commands(&self) -> u64 {
        self.demo.sim.tesla.request_counts().commands
    }
}

fn device_type(plural: &str) -> VendorType {
    match plural {
        "vehicles" => VendorType::Vehicle,
        "chargers" => VendorType::Charger,
        "batteries" => VendorType::Battery,
        _ => VendorType::Hvac,
    }
}

fn failure(action: &Value) -> (&str, &str) {
    (action["state"].as_str().unwrap(), action["failureReason"]["type"].as_str().unwrap_or("-"))
}

fn at(action: &Value, field: &str) -> chrono::DateTime<chrono::Utc> {
    action[field].as_str().unwrap().parse().unwrap()
}

const HOME_1: &str = "site-000001";
const HOME_2: &str = "site-000002";

#[tokio::test]
async fn vehicle_charging_start_and_stop_are_confirmed_via_tesla() {
    let c = ctx().await;
    let (car, world_id) = c.tesla_car(HOME_1).await;
    let id = &car.device.id;
    assert_eq!(c.snapshot(id).await["chargeState"]["powerDeliveryState"], "PLUGGED_IN:STOPPED");

    let start = c.create(&format!("/vehicles/{id}/charging"), json!({"action": "START"})).await;
    assert_eq!(start["targetId"], *id);
    assert_eq!(start["targetType"], "vehicle");
    assert_eq!(start["kind"], "START");
    assert_eq!(start["failureReason"], Value::Null);
    assert_eq!(start["completedAt"], Value::Null);
    // The same request again returns the same pending action.
    let (status, again) =
        c.post(&format!("/vehicles/{id}/charging"), json!({"action": "START"})).await;
    assert_eq!((status, &again["id"]), (200, &start["id"]));

    let done = c.settle("vehicles", &start, 120).await;
    assert_eq!(failure(&done), ("CONFIRMED", "-"));
    assert!(c.demo.sim.world.vehicle(&world_id).unwrap().charging);
    assert_eq!(c.snapshot(id).await["chargeState"]["powerDeliveryState"], "PLUGGED_IN:CHARGING");
    let took = at(&done, "completedAt") - at(&start, "createdAt");
    assert!(
        took >= chrono::Duration::seconds(20) && took <= chrono::Duration::seconds(35),
        "{took}"
    );
    assert_eq!(done["updatedAt"], done["completedAt"]);

    let stop = c.create(&format!("/vehicles/{id}/charging"), json!({"action": "STOP"})).await;
    let done = c.settle("vehicles", &stop, 120).await;
    assert_eq!(failure(&done), ("CONFIRMED", "-"));
    assert!(!c.demo.sim.world.vehicle(&world_id).unwrap().charging);

    // Each transition is a user:vendor-action:updated event naming what changed.
    let events: Vec<_> = c
        .demo
        .store
        .read_events(None, 100_000)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.event == "user:vendor-action:updated")
        .collect();
    assert_eq!(events.len(), 4, "two creations, two confirmations");
    assert_eq!(events[1].payload["vendorAction"]["state"], "CONFIRMED");
    assert_eq!(events[1].payload["updatedFields"], json!(["completedAt", "state", "updatedAt"]));
    assert_eq!(events[1].user_id, car.device.user_id);
    c.demo.stop().await;
}

#[tokio::test]
async fn a_sleeping_car_is_woken_then_commanded_via_tesla() {
    let c = ctx().await;
    let (car, world_id) = c.tesla_car(HOME_1).await;
    c.demo.sim.world.set_vehicle_power_state(&world_id, PowerState::Asleep).unwrap();
    c.read(&car.device.id).await;
    assert_eq!(c.snapshot(&car.device.id).await["isReachable"], false);
    let wakes = c.demo.sim.tesla.request_counts().wakes;
    let start = c
        .create(&format!("/vehicles/{}/charging", car.device.id), json!({"action": "START"}))
        .await;
    let done = c.settle("vehicles", &start, 180).await;
    assert_eq!(failure(&done), ("CONFIRMED", "-"));
    assert_eq!(c.demo.sim.tesla.request_counts().wakes - wakes, 1, "one wake-up");
    assert_eq!(c.demo.sim.world.wake_count(&world_id).performed, 1);
    c.demo.stop().await;
}

#[tokio::test]
async fn vehicle_max_current_is_confirmed_via_tesla() {
    let c = ctx().await;
    let (car, world_id) = c.tesla_car(HOME_1).await;
    let action = c
        .create(&format!("/vehicles/{}/max-current", car.device.id), json!({"maxCurrent": 10}))
        .await;
    assert_eq!(action["targetState"], json!({"maxCurrent": 10.0}));
    let done = c.settle("vehicles", &action, 120).await;
    assert_eq!(failure(&done), ("CONFIRMED", "-"));
    assert_eq!(c.demo.sim.world.vehicle(&world_id).unwrap().charge_amps, 10);
    assert_eq!(c.snapshot(&car.device.id).await["chargeState"]["maxCurrent"], 10.0);
    c.demo.stop().await;
}

#[tokio::test]
async fn powerwall_operation_mode_is_confirmed_via_tesla() {
    let c = ctx().await;
    let batteries = c.devices("TESLA", VendorType::Battery).await;
    let battery = &batteries[0].device;
    let current = c.snapshot(&battery.id).await["config"]["operationMode"].clone();
    let want = if current == "IMPORT_FOCUS" { "SELF_RELIANCE" } else { "IMPORT_FOCUS" };
    // Powerwalls have no EXPORT_FOCUS: refused up front from the capabilities.
    let (status, problem) = c
        .post(
            &format!("/batteries/{}/operation-mode", battery.id),
            json!({"operationMode": "EXPORT_FOCUS"}),
        )
        .await;
    assert_eq!(status, 400, "{problem}");
    assert!(problem["detail"].as_str().unwrap().contains("EXPORT_FOCUS"), "{problem}");

    let action = c
        .create(
            &format!("/batteries/{}/operation-mode", battery.id),
            json!({"operationMode": want}),
        )
        .await;
    assert_eq!(action["targetType"], "battery");
    assert_eq!(action["targetState"], json!({"operationMode": want}));
    let done = c.settle("batteries", &action, 120).await;
    assert_eq!(failure(&done), ("CONFIRMED", "-"));
    assert_eq!(done["failureReason"], Value::Null);
    assert_eq!(c.snapshot(&battery.id).await["config"]["operationMode"], want);
    c.demo.stop().await;
}

#[tokio::test]
async fn charger_start_stop_and_max_current_are_confirmed_via_wallbox() {
    let c = ctx().await;
    // The household-2 Tesla plugs into the household's Wallbox.
    let _ = c.tesla_car(HOME_2).await;
    let chargers = c.devices("WALLBOX", VendorType::Charger).await;
    let charger = &chargers[0].device;
    c.read(&charger.id).await;
    let before = c.snapshot(&charger.id).await;
    assert_eq!(before["chargeState"]["powerDeliveryState"], "PLUGGED_IN:STOPPED", "{before}");

    let start =
        c.create(&format!("/chargers/{}/charging", charger.id), json!({"action": "START"})).await;
    assert_eq!(start["targetType"], "charger");
    assert_eq!(failure(&c.settle("chargers", &start, 120).await), ("CONFIRMED", "-"));
    let stop =
        c.create(&format!("/chargers/{}/charging", charger.id), json!({"action": "STOP"})).await;
    assert_eq!(failure(&c.settle("chargers", &stop, 120).await), ("CONFIRMED", "-"));
    let current = before["chargeState"]["maxCurrent"].as_f64().unwrap_or(16.0);
    let want = if (current - 10.0).abs() < 0.5 { 12.0 } else { 10.0 };
    let amps = c
        .create(&format!("/chargers/{}/max-current", charger.id), json!({"maxCurrent": want}))
        .await;
    assert_eq!(failure(&c.settle("chargers", &amps, 120).await), ("CONFIRMED", "-"));
    assert_eq!(c.snapshot(&charger.id).await["chargeState"]["maxCurrent"], want);
    c.demo.stop().await;
}

#[tokio::test]
async fn hvac_permanent_hold_and_follow_schedule_are_confirmed_via_tado() {
    // tado's free tier allows 100 requests a day, which the vendor gate paces to one per
    // ~15 minutes (confirmation would take that long); Auto-Assist allows 20 000.
    let c = ctx_with(Config::from_toml("[vendors.tado]\ntier = \"auto_assist\"\n").unwrap()).await;
    let hvacs = c.devices("TADO", VendorType::Hvac).await;
    let hvac = &hvacs[0].device;
    c.read(&hvac.id).await;
    let before = c.snapshot(&hvac.id).await;
    let path = |what: &str| format!("/hvacs/{}/{what}", hvac.id);
    if before["thermostatState"]["holdType"] == "PERMANENT" {
        let follow = c.create(&path("follow-schedule"), json!({})).await;
        assert_eq!(failure(&c.settle("hvacs", &follow, 180).await), ("CONFIRMED", "-"));
    }
    // Outside the capability's heating range: 400 naming the field.
    let (status, problem) =
        c.post(&path("permanent-hold"), json!({"mode": "HEAT", "heatSetpoint": 99})).await;
    assert_eq!(status, 400, "{problem}");
    assert!(problem["detail"].as_str().unwrap().contains("heatSetpoint"), "{problem}");
    // tado heats only.
    let (status, problem) =
        c.post(&path("permanent-hold"), json!({"mode": "COOL", "coolSetpoint": 24})).await;
    assert_eq!(status, 400, "{problem}");
    assert!(problem["detail"].as_str().unwrap().contains("\"mode\""), "{problem}");

    let hold =
        c.create(&path("permanent-hold"), json!({"mode": "HEAT", "heatSetpoint": 21.5})).await;
    assert_eq!(hold["targetType"], "hvac");
    assert_eq!(
        hold["target"],
        json!({"mode": "HEAT", "heatSetpoint": 21.5, "holdType": "PERMANENT"})
    );
    assert_eq!(failure(&c.settle("hvacs", &hold, 180).await), ("CONFIRMED", "-"));
    let state = c.snapshot(&hvac.id).await["thermostatState"].clone();
    assert_eq!(
        (state["mode"].as_str(), state["holdType"].as_str()),
        (Some("HEAT"), Some("PERMANENT"))
    );

    let follow = c.create(&path("follow-schedule"), json!({})).await;
    assert_eq!(follow["target"], json!({"holdType": "SCHEDULED"}));
    assert_eq!(failure(&c.settle("hvacs", &follow, 180).await), ("CONFIRMED", "-"));
    assert_eq!(c.snapshot(&hvac.id).await["thermostatState"]["holdType"], "SCHEDULED");
    c.demo.stop().await;
}

#[tokio::test]
async fn a_five_minute_confirmation_is_awaited_and_applied_once() {
    let c = ctx().await;
    c.demo.sim.world.set_latency("tesla", LatencyProfile::fixed(300.0));
    let (car, world_id) = c.tesla_car(HOME_1).await;
    let accepted = c.demo.sim.world.command_stats("tesla").accepted;
    let start = c
        .create(&format!("/vehicles/{}/charging", car.device.id), json!({"action": "START"}))
        .await;
    c.step(299).await;
    assert_eq!(c.action("vehicles", start["id"].as_str().unwrap()).await["state"], "PENDING");
    assert!(!c.demo.sim.world.vehicle(&world_id).unwrap().charging);
    let done = c.settle("vehicles", &start, 60).await;
    assert_eq!(failure(&done), ("CONFIRMED", "-"));
    let took = at(&done, "completedAt") - at(&start, "createdAt");
    assert!(
        took >= chrono::Duration::seconds(300) && took <= chrono::Duration::seconds(312),
        "{took}"
    );
    // Re-sent after 2 and 4 minutes, Tesla refused those as already under way: the car got
    // the command once.
    assert_eq!(c.demo.sim.world.command_stats("tesla").accepted - accepted, 1);
    c.demo.stop().await;
}

#[tokio::test]
async fn a_lost_command_is_confirmed_after_a_resend() {
    let mut config = Config::defaults().unwrap();
    // The per-vendor override: Tesla commands are re-sent after one minute.
    config.executor.vendors.insert(
        "tesla".into(),
        oemgate_executor::VendorOverride {
            resend_interval: Some(Duration::from_secs(60)),
            ..Default::default()
        },
    );
    let c = ctx_with(config).await;
    let (car, world_id) = c.tesla_car(HOME_1).await;
    let lossy = LatencyProfile { loss_share: 1.0, ..LatencyProfile::fixed(20.0) };
    c.demo.sim.world.set_latency("tesla", lossy);
    let before = c.demo.sim.world.command_stats("tesla");
    let start = c
        .create(&format!("/vehicles/{}/charging", car.device.id), json!({"action": "START"}))
        .await;
    c.demo.executor.tick().await.unwrap();
    assert_eq!(
        c.demo.sim.world.command_stats("tesla").lost - before.lost,
        1,
        "the first one is lost"
    );
    c.demo.sim.world.set_latency("tesla", LatencyProfile::fixed(20.0));
    let done = c.settle("vehicles", &start, 200).await;
    assert_eq!(failure(&done), ("CONFIRMED", "-"));
    let took = at(&done, "completedAt") - at(&start, "createdAt");
    assert!(
        took >= chrono::Duration::seconds(80) && took <= chrono::Duration::seconds(95),
        "{took}"
    );
    let after = c.demo.sim.world.command_stats("tesla");
    assert_eq!((after.accepted - before.accepted, after.applied - before.applied), (2, 1));
    assert!(c.demo.sim.world.vehicle(&world_id).unwrap().charging);
    c.demo.stop().await;
}

#[tokio::test]
async fn a_device_that_never_reacts_fails_no_response_exactly_at_the_timeout() {
    let c = ctx().await;
    let (car, _) = c.tesla_car(HOME_1).await;
    c.demo
        .sim
        .world
        .set_latency("tesla", LatencyProfile { loss_share: 1.0, ..LatencyProfile::fixed(20.0) });
    let commands = c.tesla_commands();
    let start = c
        .create(&format!("/vehicles/{}/charging", car.device.id), json!({"action": "START"}))
        .await;
    let id = start["id"].as_str().unwrap();
    c.demo.executor.tick().await.unwrap();
    // 30 minutes in 10-second steps, the last one landing on the deadline.
    for _ in 0..179 {
        c.clock.advance(Duration::from_secs(10));
        c.demo.poller.tick().await.unwrap();
        c.demo.executor.tick().await.unwrap();
    }
    assert_eq!(c.action("vehicles", id).await["state"], "PENDING", "10 s before the timeout");
    c.clock.advance(Duration::from_secs(10));
    c.demo.executor.tick().await.unwrap();
    let done = c.action("vehicles", id).await;
    assert_eq!(failure(&done), ("FAILED", "NO_RESPONSE"));
    assert_eq!(at(&done, "completedAt") - at(&start, "createdAt"), chrono::Duration::minutes(30));
    // Re-sent every 2 minutes, no more: 15 commands in 30 minutes.
    assert_eq!(c.tesla_commands() - commands, 15);
    c.step(300).await;
    assert_eq!(c.tesla_commands() - commands, 15, "nothing is sent after FAILED");
    c.demo.stop().await;
}

#[tokio::test]
async fn an_unplug_during_start_ends_cancelled_failed_precondition() {
    let c = ctx().await;
    c.demo.sim.world.set_latency("tesla", LatencyProfile::fixed(60.0));
    let (car, world_id) = c.tesla_car(HOME_1).await;
    let start = c
        .create(&format!("/vehicles/{}/charging", car.device.id), json!({"action": "START"}))
        .await;
    c.step(10).await;
    c.demo.sim.world.unplug(&world_id).unwrap();
    let unplugged_at = c.clock.now();
    let done = c.settle("vehicles", &start, 400).await;
    assert_eq!(failure(&done), ("CANCELLED", "FAILED_PRECONDITION"));
    assert!(done["failureReason"]["detail"].as_str().unwrap().contains("unplugged"), "{done}");
    let after = at(&done, "completedAt") - unplugged_at;
    // Seen unplugged by the next poll (within 10 s), then the 5-minute grace.
    assert!(
        after >= chrono::Duration::minutes(5) && after <= chrono::Duration::seconds(312),
        "{after}"
    );
    assert!(!c.demo.sim.world.vehicle(&world_id).unwrap().charging);
    c.demo.stop().await;
}

#[tokio::test]
async fn a_new_action_supersedes_the_pending_one_with_conflict() {
    let c = ctx().await;
    c.demo.sim.world.set_latency("tesla", LatencyProfile::fixed(600.0));
    let (car, _) = c.tesla_car(HOME_1).await;
    let id = &car.device.id;
    let first = c.create(&format!("/vehicles/{id}/max-current"), json!({"maxCurrent": 10})).await;
    let (status, same) =
        c.post(&format!("/vehicles/{id}/max-current"), json!({"maxCurrent": 10})).await;
    assert_eq!((status, &same["id"]), (200, &first["id"]));
    let second = c.create(&format!("/vehicles/{id}/max-current"), json!({"maxCurrent": 12})).await;
    assert_ne!(second["id"], first["id"]);
    let old = c.action("vehicles", first["id"].as_str().unwrap()).await;
    assert_eq!(failure(&old), ("CANCELLED", "CONFLICT"));
    assert!(old["completedAt"].is_string());
    // A different kind supersedes too: one action per target.
    let third = c.create(&format!("/vehicles/{id}/charging"), json!({"action": "START"})).await;
    let old = c.action("vehicles", second["id"].as_str().unwrap()).await;
    assert_eq!(failure(&old), ("CANCELLED", "CONFLICT"));
    assert_eq!(c.action("vehicles", third["id"].as_str().unwrap()).await["state"], "PENDING");
    let pending = c.demo.store.pending_actions_for(id).await.unwrap();
    assert_eq!(pending.len(), 1);
    c.demo.stop().await;
}

#[tokio::test]
async fn cancel_gives_requested_cancellation_and_a_second_cancel_409() {
    let c = ctx().await;
    c.demo.sim.world.set_latency("tesla", LatencyProfile::fixed(600.0));
    let (car, _) = c.tesla_car(HOME_1).await;
    let start = c
        .create(&format!("/vehicles/{}/charging", car.device.id), json!({"action": "START"}))
        .await;
    let id = start["id"].as_str().unwrap();
    c.step(5).await;
    let (status, cancelled) = c.post(&format!("/vehicles/actions/{id}/cancel"), json!({})).await;
    assert_eq!(status, 200, "{cancelled}");
    assert_eq!(failure(&cancelled), ("CANCELLED", "REQUESTED_CANCELLATION"));
    let (status, again) = c.post(&format!("/vehicles/actions/{id}/cancel"), json!({})).await;
    assert_eq!(status, 409);
    assert_eq!(again, cancelled, "409 carries the action, unchanged");
    assert_eq!(c.action("vehicles", id).await, cancelled);
    let (status, _) = c.post("/vehicles/actions/no-such-action/cancel", json!({})).await;
    assert_eq!(status, 404);
    let (status, _) = c.post(&format!("/batteries/actions/{id}/cancel"), json!({})).await;
    assert_eq!(status, 404, "a vehicle action is not a battery action");
    let (status, _) = c.get("/chargers/actions/no-such-action").await;
    assert_eq!(status, 404);
    let commands = c.tesla_commands();
    c.step(300).await;
    assert_eq!(c.tesla_commands(), commands, "nothing is re-sent after a cancel");
    c.demo.stop().await;
}

#[tokio::test]
async fn a_restarted_gateway_completes_its_pending_actions() {
    let c = ctx().await;
    let (car, world_id) = c.tesla_car(HOME_1).await;
    let (car2, world_id2) = c.nth_tesla_car(HOME_1, 1).await;
    assert_ne!(car.device.id, car2.device.id);
    // The first command goes out and is lost; then the instance dies.
    c.demo
        .sim
        .world
        .set_latency("tesla", LatencyProfile { loss_share: 1.0, ..LatencyProfile::fixed(20.0) });
    let start = c
        .create(&format!("/vehicles/{}/charging", car.device.id), json!({"action": "START"}))
        .await;
    c.demo.executor.tick().await.unwrap();
    c.demo.sim.world.set_latency("tesla", LatencyProfile::fixed(20.0));
    let amps = c
        .create(&format!("/vehicles/{}/max-current", car2.device.id), json!({"maxCurrent": 8}))
        .await;

    // A new executor on the same store, with fresh adapters (as after a restart).
    let clock: Arc<dyn Clock> = c.clock.clone();
    let adapters = oemgate::app::adapters(&c.config, clock.clone(), Some(&c.demo.sim_url));
    let restarted =
        oemgate::app::executor(&c.config, c.demo.store.clone(), adapters, clock, &c.demo.poller, 9);
    assert_ne!(restarted.owner(), c.demo.executor.owner());
    let mut done = Vec::new();
    for _ in 0..300 {
        c.clock.advance(Duration::from_secs(1));
        c.demo.poller.tick().await.unwrap();
        restarted.tick().await.unwrap();
        done.clear();
        for action in [&start, &amps] {
            done.push(c.action("vehicles", action["id"].as_str().unwrap()).await);
        }
        if done.iter().all(|a| a["state"] != "PENDING") {
            break;
        }
    }
    assert_eq!(failure(&done[0]), ("CONFIRMED", "-"), "the lost START was re-sent after the lease");
    assert_eq!(failure(&done[1]), ("CONFIRMED", "-"), "the never-sent max current was sent");
    assert!(c.demo.sim.world.vehicle(&world_id).unwrap().charging);
    assert_eq!(c.demo.sim.world.vehicle(&world_id2).unwrap().charge_amps, 8);
    let stats = restarted.stats();
    assert_eq!(stats.commands.load(std::sync::atomic::Ordering::Relaxed), 2);
    // The START was re-sent only once the dead instance's lease and the resend interval ran out.
    let took = at(&done[0], "completedAt") - at(&start, "createdAt");
    assert!(took >= chrono::Duration::seconds(120), "{took}");
    c.demo.stop().await;
}

#[tokio::test]
async fn vendor_429s_are_retried_after_retry_after_without_a_storm() {
    let c = ctx().await;
    let (car, world_id) = c.tesla_car(HOME_1).await;
    let start_commands = c.tesla_commands();
    let start_total = c.demo.sim.tesla.request_counts().total();
    c.demo.sim.world.faults().set(
        "tesla",
        Fault::RateLimit { retry_after: Duration::from_secs(30) },
        Some(Duration::from_secs(95)),
    );
    let fault_start = c.clock.now();
    let start = c
        .create(&format!("/vehicles/{}/charging", car.device.id), json!({"action": "START"}))
        .await;
    // Every second for the 95 s of the fault, poller and executor tick; note when command
    // requests reach Tesla.
    let mut sent_at = Vec::new();
    c.demo.executor.tick().await.unwrap();
    for _ in 0..95 {
        let before = c.tesla_commands();
        c.step(1).await;
        for _ in before..c.tesla_commands() {
            sent_at.push(c.clock.now() - fault_start);
        }
    }
    let during = c.tesla_commands() - start_commands;
    assert!((1..=4).contains(&during), "{during} command requests in 95 s of 429s: {sent_at:?}");
    for pair in sent_at.windows(2) {
        assert!(
            pair[1] - pair[0] >= chrono::Duration::seconds(30),
            "retried before Retry-After: {sent_at:?}"
        );
    }
    // Everything (polls included) stayed far below one request per second.
    let total = c.demo.sim.tesla.request_counts().total() - start_total;
    assert!(total <= 20, "{total} Tesla requests during the fault");
    let done = c.settle("vehicles", &start, 180).await;
    assert_eq!(failure(&done), ("CONFIRMED", "-"));
    assert!(c.demo.sim.world.vehicle(&world_id).unwrap().charging);
    c.demo.stop().await;
}

#[tokio::test]
async fn invalid_bodies_get_400_naming_the_field() {
    let c = ctx().await;
    let (car, _) = c.tesla_car(HOME_1).await;
    let vehicle = format!("/vehicles/{}", car.device.id);
    let battery = c.devices("TESLA", VendorType::Battery).await[0].device.id.clone();
    let hvac = c.devices("TADO", VendorType::Hvac).await[0].device.id.clone();
    let cases: Vec<(String, Value, &str)> = vec![
        (format!("{vehicle}/charging"), json!({"action": "GO"}), "\"action\""),
        (format!("{vehicle}/charging"), json!({}), "\"action\""),
        (format!("{vehicle}/charging"), json!({"action": 1}), "\"action\""),
        (format!("{vehicle}/max-current"), json!({"maxCurrent": "ten"}), "\"maxCurrent\""),
        (format!("{vehicle}/max-current"), json!({"maxCurrent": -3}), "\"maxCurrent\""),
        (format!("{vehicle}/max-current"), json!({"maxCurrent": 500}), "\"maxCurrent\""),
        (
            format!("/batteries/{battery}/operation-mode"),
            json!({"operationMode": "TURBO"}),
            "\"operationMode\"",
        ),
        (
            format!("/batteries/{battery}/operation-mode"),
            json!({"mode": "IMPORT_FOCUS"}),
            "\"operationMode\"",
        ),
        (format!("/hvacs/{hvac}/permanent-hold"), json!({"mode": "WARM"}), "\"mode\""),
        (format!("/hvacs/{hvac}/permanent-hold"), json!({"mode": "HEAT"}), "\"heatSetpoint\""),
        (
            format!("/hvacs/{hvac}/permanent-hold"),
            json!({"mode": "HEAT", "heatSetpoint": "warm"}),
            "\"heatSetpoint\"",
        ),
    ];
    for (path, body, field) in cases {
        let (status, problem) = c.post(&path, body.clone()).await;
        assert_eq!(status, 400, "{path} {body}: {problem}");
        assert_eq!(problem["title"], "Payload validation failed", "{problem}");
        assert!(problem["detail"].as_str().unwrap().contains(field), "{path} {body}: {problem}");
    }
    // Not JSON at all.
    let token = token(&c.http, &c.demo).await;
    let response = c
        .http
        .post(format!("{}{vehicle}/charging", c.demo.api_url))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(response.headers()["content-type"], "application/problem+json");
    // Preconditions: a car that is not plugged in cannot start; unknown devices are 404.
    let world_id = c.demo.sim.tesla.vehicle_of_vin(&car.device.vendor_id).unwrap();
    c.demo.sim.world.unplug(&world_id).unwrap();
    c.read(&car.device.id).await;
    let (status, problem) =
        c.post(&format!("{vehicle}/charging"), json!({"action": "START"})).await;
    assert_eq!(status, 400);
    assert!(problem["detail"].as_str().unwrap().contains("unplugged"), "{problem}");
    let (status, _) = c.post("/vehicles/no-such-car/charging", json!({"action": "START"})).await;
    assert_eq!(status, 404);
    let (status, _) =
        c.post(&format!("/chargers/{}/charging", car.device.id), json!({"action": "START"})).await;
    assert_eq!(status, 404, "a vehicle is not a charger");
    assert!(c.demo.store.pending_actions().await.unwrap().is_empty(), "no action was created");
    // Without a token: 401.
    let response = c
        .http
        .post(format!("{}{vehicle}/charging", c.demo.api_url))
        .json(&json!({"action": "START"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    c.demo.stop().await;
}

/// A charger of `vendor` with a Tesla plugged into it, read once: (device id, snapshot).
async fn plugged_charger(c: &Ctx, world_vendor: &str, api_vendor: &str) -> (String, Value) {
    let world = &c.demo.sim.world;
    let charger = world
        .devices()
        .into_iter()
        .find(|d| d.kind == oemgate_sim::DeviceKind::Charger && d.vendor == world_vendor)
        .unwrap_or_else(|| panic!("no {world_vendor} charger in the fleet"));
    let _ = c.tesla_car(charger.site.as_ref()).await;
    c.step(5).await;
    for record in c.devices(api_vendor, VendorType::Charger).await {
        c.read(&record.device.id).await;
        let snapshot = c.snapshot(&record.device.id).await;
        if snapshot["chargeState"]["isPluggedIn"] == true {
            return (record.device.id, snapshot);
        }
    }
    panic!("no plugged-in {api_vendor} charger");
}

async fn charger_actions_are_confirmed(world_vendor: &str, api_vendor: &str) {
    let c = ctx_households(Config::defaults().unwrap(), 16).await;
    let (id, before) = plugged_charger(&c, world_vendor, api_vendor).await;
    let path = |what: &str| format!("/chargers/{id}/{what}");
    if before["chargeState"]["isCharging"] == true {
        let stop = c.create(&path("charging"), json!({"action": "STOP"})).await;
        assert_eq!(
            failure(&c.settle("chargers", &stop, 600).await),
            ("CONFIRMED", "-"),
            "{api_vendor}"
        );
    }
    let start = c.create(&path("charging"), json!({"action": "START"})).await;
    assert_eq!(
        failure(&c.settle("chargers", &start, 600).await),
        ("CONFIRMED", "-"),
        "{api_vendor}"
    );
    let stop = c.create(&path("charging"), json!({"action": "STOP"})).await;
    assert_eq!(
        failure(&c.settle("chargers", &stop, 600).await),
        ("CONFIRMED", "-"),
        "{api_vendor}"
    );
    let current = before["chargeState"]["maxCurrent"].as_f64().unwrap_or(16.0);
    let want = if (current - 10.0).abs() < 0.5 { 12.0 } else { 10.0 };
    if before["capabilities"]["setMaxCurrent"]["isCapable"] == true {
        let amps = c.create(&path("max-current"), json!({"maxCurrent": want})).await;
        assert_eq!(
            failure(&c.settle("chargers", &amps, 600).await),
            ("CONFIRMED", "-"),
            "{api_vendor}"
        );
        assert_eq!(c.snapshot(&id).await["chargeState"]["maxCurrent"], want);
    } else {
        // Truthfully incapable (a shared Zaptec installation): refused up front.
        let (status, problem) = c.post(&path("max-current"), json!({"maxCurrent": want})).await;
        assert_eq!(status, 400, "{problem}");
    }
    c.demo.stop().await;
}

async fn hvac_actions_are_confirmed(api_vendor: &str) {
    let c = ctx_households(Config::defaults().unwrap(), 16).await;
    let hvacs = c.devices(api_vendor, VendorType::Hvac).await;
    let hvac = &hvacs.first().unwrap_or_else(|| panic!("no {api_vendor} thermostat")).device;
    c.read(&hvac.id).await;
    let before = c.snapshot(&hvac.id).await;
    let path = |what: &str| format!("/hvacs/{}/{what}", hvac.id);
    let hold =
        c.create(&path("permanent-hold"), json!({"mode": "HEAT", "heatSetpoint": 21.5})).await;
    assert_eq!(failure(&c.settle("hvacs", &hold, 900).await), ("CONFIRMED", "-"), "{api_vendor}");
    let state = c.snapshot(&hvac.id).await["thermostatState"].clone();
    assert_eq!(state["mode"], "HEAT", "{api_vendor}: {state}");
    if before["capabilities"]["setFollowSchedule"]["isCapable"] == true {
        let follow = c.create(&path("follow-schedule"), json!({})).await;
        assert_eq!(
            failure(&c.settle("hvacs", &follow, 900).await),
            ("CONFIRMED", "-"),
            "{api_vendor}"
        );
    } else {
        // Truthfully incapable (Nest's SDM API has no schedule control): refused up front.
        let (status, problem) = c.post(&path("follow-schedule"), json!({})).await;
        assert_eq!(status, 400, "{problem}");
    }
    c.demo.stop().await;
}

#[tokio::test]
async fn charger_actions_are_confirmed_via_easee() {
    charger_actions_are_confirmed("easee", "EASEE").await;
}

#[tokio::test]
async fn charger_actions_are_confirmed_via_zaptec() {
    charger_actions_are_confirmed("zaptec", "ZAPTEC").await;
}

#[tokio::test]
async fn hvac_actions_are_confirmed_via_ecobee() {
    hvac_actions_are_confirmed("ECOBEE").await;
}

#[tokio::test]
async fn hvac_actions_are_confirmed_via_nest() {
    hvac_actions_are_confirmed("NEST").await;
}
