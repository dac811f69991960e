//! Webhooks end to end: the gateway's poller turns simulated changes into events, the
//! dispatcher delivers them to a local receiver (axum on 127.0.0.1:0) that records bodies and
//! headers. The manual clock drives everything; the dispatcher is ticked by hand.
//!
//! 1. A plug-in arrives as a signed `user:vehicle:updated` naming `chargeState.isPluggedIn`.
//! 2. A receiver down for two hours loses nothing; one down past the retry window deactivates
//!    the webhook and the drop is counted.
//! 3. A dispatcher killed mid-delivery (Redis store) and a new one over the same store: no
//!    event lost.
//! 4. A burst of 250 events arrives in at most 3 POSTs, in creation order.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use oemgate::config::Config;
use oemgate::demo::Demo;
use oemgate_core::{Clock, ManualClock, VendorType};
use oemgate_sim::{ChargeState, DrivingPattern, PowerState};
use oemgate_store::{DeviceFilter, Event, PageRequest, Store};
use serde_json::{Value, json};
use tokio::sync::Notify;

use crate::support::{demo_at, demo_with};

const SECRET: &str = "e2e-webhook-secret-0123456789";

/// A webhook receiver: answers `status` (0 = hold the request open forever, after
/// recording it and notifying `arrived`).
#[derive(Clone)]
struct Receiver {
    url: String,
    status: Arc<AtomicU16>,
    requests: Arc<Mutex<Vec<(HeaderMap, Bytes)>>>,
    arrived: Arc<Notify>,
}

impl Receiver {
    async fn start() -> Receiver {
        let status = Arc::new(AtomicU16::new(200));
        let requests: Arc<Mutex<Vec<(HeaderMap, Bytes)>>> = Arc::default();
        let arrived = Arc::new(Notify::new());
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post({
                let (status, requests, arrived) =
                    (status.clone(), requests.clone(), arrived.clone());
                move |headers: HeaderMap, body: Bytes| async move {
                    requests.lock().unwrap().push((headers, body));
                    arrived.notify_one();
                    match status.load(Ordering::SeqCst) {
                        0 => std::future::pending::<StatusCode>().await,
                        code => StatusCode::from_u16(code).unwrap(),
                    }
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Receiver { url, status, requests, arrived }
    }

    fn posts(&self) -> usize {
        self.requests.lock().unwrap().len()
    }

    /// Every delivered event, in arrival order.
    fn events(&self) -> Vec<Value> {
        let requests = self.requests.lock().unwrap();
        requests
            .iter()
            .flat_map(|(_, body)| serde_json::from_slice::<Vec<Value>>(body).unwrap())
            .collect()
    }

    fn ids(&self) -> Vec<String> {
        self.events().iter().map(|e| e["id"].as_str().unwrap().to_owned()).collect()
    }
}

struct Ctx {
    demo: Demo,
    clock: Arc<ManualClock>,
    http: reqwest::Client,
}

impl Ctx {
    async fn new(store: Option<Arc<dyn Store>>) -> Ctx {
        let (demo, clock) = match &store {
            // Redis expires tokens by its own wall clock: start at the real time.
            Some(_) => demo_at(Config::defaults().unwrap(), 2, store, chrono::Utc::now()).await,
            None => demo_with(Config::defaults().unwrap(), 2, None).await,
        };
        let ctx = Ctx { demo, clock, http: reqwest::Client::new() };
        // Discovery and first reads of every device happen before any webhook exists.
        ctx.poll(Duration::from_secs(40), Duration::from_secs(10)).await;
        ctx
    }

    async fn send(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        crate::support::call(&self.http, &self.demo, method, path, body).await
    }

    async fn create_webhook(&self, url: &str, events: &[&str]) -> String {
        let (status, body) = self
            .send(
                reqwest::Method::POST,
                "/webhooks",
                Some(json!({"url": url, "secret": SECRET, "events": events})),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body["id"].as_str().unwrap().to_owned()
    }

    /// Advances the clock by `step` at a time for `total`, ticking the poller each step.
    async fn poll(&self, total: Duration, step: Duration) {
        let mut passed = Duration::ZERO;
        while passed < total {
            self.clock.advance(step);
            passed += step;
            self.demo.poller.tick().await.unwrap();
        }
    }

    async fn deliver(&self) {
        self.demo.webhooks.tick().await.unwrap();
    }

    /// Every event in the log after `cursor` (all of them belong to the demo client).
    async fn log_after(&self, cursor: Option<&str>) -> Vec<Event> {
        let mut all = Vec::new();
        let mut after = cursor.map(str::to_owned);
        loop {
            let page = self.demo.store.read_events(after.as_deref(), 1000).await.unwrap();
            let Some(last) = page.last() else { return all };
            after = Some(last.id.clone());
            all.extend(page);
        }
    }

    async fn metric(&self, name: &str) -> f64 {
        let text = self
            .http
            .get(format!("{}/metrics", self.demo.api_url))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .filter(|line| line.starts_with(name))
            .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            .fold(0.0, |total, value| total + value)
    }
}

#[tokio::test]
async fn a_plug_in_arrives_as_a_signed_vehicle_update_naming_the_changed_fields() {
    let c = Ctx::new(None).await;
    // A Tesla at home, unplugged and online, read in that state before the webhook exists.
    let vehicles = c
        .demo
        .store
        .list_devices(
            &DeviceFilter { device_type: Some(VendorType::Vehicle), ..Default::default() },
            &PageRequest::default(),
        )
        .await
        .unwrap();
    let record = vehicles.items.iter().find(|r| r.vendor == "TESLA").expect("a Tesla").clone();
    let world_id = c.demo.sim.tesla.vehicle_of_vin(&record.device.vendor_id).unwrap();
    let now = c.clock.now();
    c.demo
        .sim
        .world
        .update_vehicle(&world_id, |m| {
            m.trip = None;
            m.plan.clear();
            m.pattern =
                DrivingPattern { commute_km: None, errands_per_week: 0.0, plug_in_share: 1.0 };
            m.at_home = true;
            m.return_at = None;
            m.plug_in_at = None;
            m.power_state = PowerState::Online;
            m.waking_at = None;
            m.last_activity = now;
            m.charging = ChargeState::Disconnected;
            m.charge_on_plug = false;
        })
        .unwrap();
    c.demo.poller.poll_device(&record.device.id).await.unwrap();
    let snapshot = c.demo.store.get_snapshot(&record.device.id).await.unwrap().unwrap();
    assert_eq!(snapshot.resource["chargeState"]["isPluggedIn"], false);

    let receiver = Receiver::start().await;
    c.create_webhook(&receiver.url, &["user:vehicle:updated"]).await;
    c.clock.advance(Duration::from_secs(5));
    c.demo.sim.world.plug_in(&world_id).unwrap();
    c.demo.poller.poll_device(&record.device.id).await.unwrap();
    c.deliver().await;

    let requests = receiver.requests.lock().unwrap().clone();
    let (headers, body) = requests
        .iter()
        .find(|(_, body)| {
            serde_json::from_slice::<Vec<Value>>(body)
                .unwrap()
                .iter()
                .any(|e| e["vehicle"]["id"] == record.device.id.as_str())
        })
        .expect("the plug-in was delivered");
    let signature = headers["x-enode-signature"].to_str().unwrap();
    assert!(signature.starts_with("sha1="), "{signature}");
    assert!(oemgate_webhooks::verify(SECRET.as_bytes(), body, signature), "signature verifies");
    assert!(!oemgate_webhooks::verify(b"another-secret", body, signature));
    assert_eq!(headers["content-type"], "application/json");
    assert!(uuid::Uuid::parse_str(headers["x-enode-delivery"].to_str().unwrap()).is_ok());

    let events: Vec<Value> = serde_json::from_slice(body).unwrap();
    let event = events.iter().find(|e| e["vehicle"]["id"] == record.device.id.as_str()).unwrap();
    assert_eq!(event["event"], "user:vehicle:updated");
    assert_eq!(event["version"], "2024-10-01");
    assert_eq!(event["user"]["id"], record.device.user_id.as_str());
    assert_eq!(event["vehicle"]["chargeState"]["isPluggedIn"], true);
    let fields: Vec<&str> =
        event["updatedFields"].as_array().unwrap().iter().map(|f| f.as_str().unwrap()).collect();
    assert!(fields.contains(&"chargeState.isPluggedIn"), "{fields:?}");
    assert!(event["id"].as_str().is_some_and(|id| !id.is_empty()));
    // Only the subscribed event type arrives.
    assert!(receiver.events().iter().all(|e| e["event"] == "user:vehicle:updated"));
    c.demo.stop().await;
}

#[tokio::test]
async fn a_receiver_down_for_two_hours_loses_nothing_and_one_down_past_the_window_is_deactivated() {
    let c = Ctx::new(None).await;
    let receiver = Receiver::start().await;
    let start = c.demo.store.latest_event_id().await.unwrap();
    let id = c.create_webhook(&receiver.url, &["*"]).await;

    // Down (503) for two simulated hours while the world changes and the poller records it.
    receiver.status.store(503, Ordering::SeqCst);
    let mut elapsed = Duration::ZERO;
    while elapsed < Duration::from_secs(2 * 3600) {
        c.poll(Duration::from_secs(60), Duration::from_secs(30)).await;
        c.deliver().await;
        elapsed += Duration::from_secs(60);
    }
    let accumulated = c.log_after(start.as_deref()).await;
    assert!(accumulated.len() >= 5, "the world changed: {} events", accumulated.len());
    assert!(receiver.posts() >= 5, "retries were made: {}", receiver.posts());
    assert!(receiver.ids().len() >= receiver.posts(), "failed posts carried events");
    let (_, webhook) = c.send(reqwest::Method::GET, &format!("/webhooks/{id}"), None).await;
    assert_eq!(webhook["isActive"], true, "{webhook}");
    assert_eq!(webhook["lastSuccess"], Value::Null);

    // Up again: within the backoff (at most an hour) everything arrives.
    receiver.status.store(200, Ordering::SeqCst);
    let failed_posts = receiver.posts();
    let acknowledged_before = receiver.requests.lock().unwrap().len();
    for _ in 0..70 {
        c.clock.advance(Duration::from_secs(60));
        c.deliver().await;
    }
    assert!(receiver.posts() > failed_posts);
    let delivered: HashSet<String> = receiver.ids().into_iter().collect();
    let expected = c.log_after(start.as_deref()).await;
    let missing: Vec<&Event> = expected.iter().filter(|e| !delivered.contains(&e.id)).collect();
    assert!(missing.is_empty(), "{} of {} events never arrived", missing.len(), expected.len());
    // The successful deliveries after the outage are in creation order.
    let after_outage: Vec<String> = {
        let requests = receiver.requests.lock().unwrap();
        requests[acknowledged_before..]
            .iter()
            .flat_map(|(_, b)| serde_json::from_slice::<Vec<Value>>(b).unwrap())
            .map(|e| e["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let in_log: Vec<String> = expected.iter().map(|e| e.id.clone()).collect();
    assert_eq!(after_outage, in_log, "one pass over the backlog, in log order");
    let (_, webhook) = c.send(reqwest::Method::GET, &format!("/webhooks/{id}"), None).await;
    assert!(webhook["lastSuccess"].is_string(), "{webhook}");
    println!(
        "2 h outage: {} events, {failed_posts} failed POSTs, then {} POSTs delivered all of them",
        expected.len(),
        receiver.posts() - failed_posts
    );

    // Down past the 24 h retry window: pending events are dropped, the webhook deactivated.
    let dropped_before = c.metric("oemgate_webhook_events_dropped_total").await;
    receiver.status.store(503, Ordering::SeqCst);
    c.poll(Duration::from_secs(600), Duration::from_secs(30)).await;
    let pending = c.log_after(Some(in_log.last().unwrap())).await.len();
    assert!(pending > 0, "events are pending");
    for _ in 0..(25 * 6) {
        c.clock.advance(Duration::from_secs(600));
        c.deliver().await;
    }
    let (_, webhook) = c.send(reqwest::Method::GET, &format!("/webhooks/{id}"), None).await;
    assert_eq!(webhook["isActive"], false, "{webhook}");
    let stats = c.demo.webhooks.stats();
    assert!(stats.events_dropped.load(Ordering::Relaxed) >= pending as u64);
    assert_eq!(stats.deactivated.load(Ordering::Relaxed), 1);
    let dropped_after = c.metric("oemgate_webhook_events_dropped_total").await;
    assert!(
        dropped_after >= dropped_before + pending as f64,
        "{dropped_before} -> {dropped_after}"
    );
    println!(
        "past the window: {pending} pending events dropped, webhook inactive, \
         oemgate_webhook_events_dropped_total {dropped_before} -> {dropped_after}"
    );

    // Inactive: nothing more is tried, even with the receiver back.
    receiver.status.store(200, Ordering::SeqCst);
    let posts = receiver.posts();
    c.poll(Duration::from_secs(120), Duration::from_secs(30)).await;
    c.clock.advance(Duration::from_secs(3600));
    c.deliver().await;
    assert_eq!(receiver.posts(), posts);
    // A successful test reactivates it.
    let (status, test) = c.send(reqwest::Method::POST, &format!("/webhooks/{id}/test"), None).await;
    assert_eq!((status, test["status"].as_str()), (200, Some("SUCCESS")), "{test}");
    let (_, webhook) = c.send(reqwest::Method::GET, &format!("/webhooks/{id}"), None).await;
    assert_eq!(webhook["isActive"], true, "{webhook}");
    c.demo.stop().await;
}

#[tokio::test]
async fn a_dispatcher_killed_mid_delivery_loses_nothing_after_a_restart_on_redis() {
    use oemgate_store::{CredentialKey, RedisConfig, RedisStore};
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let prefix = format!("oemgate-e2e-{}", uuid::Uuid::new_v4().simple());
    let store: Arc<dyn Store> = Arc::new(
        RedisStore::connect(
            RedisConfig::new(&url, &prefix).with_credential_key(CredentialKey::generate()),
        )
        .await
        .unwrap(),
    );
    let c = Ctx::new(Some(store.clone())).await;
    let receiver = Receiver::start().await;
    let start = store.latest_event_id().await.unwrap();
    let id = c.create_webhook(&receiver.url, &["*"]).await;
    c.poll(Duration::from_secs(600), Duration::from_secs(30)).await;
    let backlog = c.log_after(start.as_deref()).await;
    assert!(!backlog.is_empty(), "the world changed");

    // The receiver takes the first POST in and never answers; the instance dies meanwhile.
    receiver.status.store(0, Ordering::SeqCst);
    let arrived = receiver.arrived.notified();
    let dying = Arc::clone(&c.demo.webhooks);
    let task = tokio::spawn(async move { dying.tick().await });
    arrived.await;
    task.abort();
    let _ = task.await;
    let received_before_crash = receiver.ids();
    assert!(!received_before_crash.is_empty());
    let state = store.get_webhook_state(&id).await.unwrap().unwrap();
    assert_eq!(state.cursor, start, "nothing was acknowledged");

    // A new instance over the same store: the dead one's lease has to run out first.
    receiver.status.store(200, Ordering::SeqCst);
    let config = Config::defaults().unwrap();
    let mut config_loopback = config.clone();
    config_loopback.webhooks.allow_insecure_loopback = true;
    let (_, restarted) = oemgate::app::webhooks(
        &config_loopback,
        store.clone(),
        c.clock.clone() as Arc<dyn Clock>,
        11,
    )
    .unwrap();
    restarted.tick().await.unwrap();
    assert_eq!(receiver.ids().len(), received_before_crash.len(), "lease still held");
    c.clock.advance(config.webhooks.lease + Duration::from_secs(1));
    restarted.tick().await.unwrap();

    let delivered: HashSet<String> = receiver.ids().into_iter().collect();
    let expected = c.log_after(start.as_deref()).await;
    let missing = expected.iter().filter(|e| !delivered.contains(&e.id)).count();
    assert_eq!(missing, 0, "{missing} of {} events lost", expected.len());
    let duplicates = receiver.ids().len() - delivered.len();
    assert!(duplicates > 0, "the unacknowledged batch was sent again");
    let state = store.get_webhook_state(&id).await.unwrap().unwrap();
    assert_eq!(state.cursor.as_deref(), expected.last().map(|e| e.id.as_str()));
    println!(
        "kill and restart: {} events, {} received before the kill, {duplicates} delivered twice, none lost",
        expected.len(),
        received_before_crash.len()
    );
    c.demo.stop().await;

    // Clean the prefix up (best effort).
    if let Ok(store) =
        oemgate_store::RedisStore::connect(oemgate_store::RedisConfig::new(&url, &prefix)).await
    {
        let _ = store.purge().await;
    }
}

#[tokio::test]
async fn a_burst_of_250_events_arrives_in_at_most_3_posts_in_creation_order() {
    let c = Ctx::new(None).await;
    let receiver = Receiver::start().await;
    c.create_webhook(&receiver.url, &["*"]).await;
    let user = c.demo.linked[0].user_id.clone();
    let mut appended = Vec::new();
    for n in 0..250 {
        let id = c
            .demo
            .store
            .append_event(Event {
                id: String::new(),
                event: "user:vehicle:updated".into(),
                user_id: user.clone(),
                created_at: c.clock.now(),
                payload: json!({"vehicle": {"id": format!("burst-{n}")}, "updatedFields": ["odometer"]}),
            })
            .await
            .unwrap();
        appended.push(id);
    }
    c.deliver().await;
    assert!(receiver.posts() <= 3, "{} POSTs", receiver.posts());
    assert_eq!(receiver.ids(), appended, "every event once, in creation order");
    let sizes: Vec<usize> = {
        let requests = receiver.requests.lock().unwrap();
        requests
            .iter()
            .map(|(_, b)| serde_json::from_slice::<Vec<Value>>(b).unwrap().len())
            .collect()
    };
    assert!(sizes.iter().all(|n| *n <= 100), "{sizes:?}");
    println!("burst of 250: POST sizes {sizes:?}");
    c.demo.stop().await;
}
