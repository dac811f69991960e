//! The demo's promise: simulated Tesla vehicles, polled and served behind OAuth2.

use std::time::Duration;

use oemgate_core::Clock;
use oemgate_sim::DeviceKind;
use serde_json::Value;

use crate::support::{demo, token};

async fn list(
    http: &reqwest::Client,
    demo: &oemgate::demo::Demo,
    token: &str,
    path: &str,
) -> Vec<Value> {
    let response = http
        .get(format!("{}/{path}?pageSize=1000", demo.api_url))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{path}");
    let body: Value = response.json().await.unwrap();
    body["data"].as_array().unwrap().clone()
}

#[tokio::test]
async fn devices_of_every_vendor_are_polled_stored_and_served_behind_a_token() {
    let (demo, clock) = demo(16, None).await;
    assert!(demo.devices > 0);
    crate::support::poll_for(&demo, &clock, 10).await;
    let http = reqwest::Client::new();

    let response = http.get(format!("{}/vehicles", demo.api_url)).send().await.unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(response.headers()["content-type"], "application/problem+json");
    let problem: Value = response.json().await.unwrap();
    assert_eq!(problem["title"], "Unauthorized");

    let token = token(&http, &demo).await;
    let world = demo.sim.world.devices();
    let mut vendors = std::collections::BTreeSet::new();
    for (path, kind) in [
        ("vehicles", DeviceKind::Vehicle),
        ("batteries", DeviceKind::Battery),
        ("meters", DeviceKind::Meter),
        ("inverters", DeviceKind::Inverter),
        ("chargers", DeviceKind::Charger),
        ("hvacs", DeviceKind::Hvac),
    ] {
        let served = list(&http, &demo, &token, path).await;
        let expected = world.iter().filter(|d| d.kind == kind).count();
        assert_eq!(
            served.len(),
            expected,
            "{path}: every world device is linked, polled and served"
        );
        for device in &served {
            vendors.insert(device["vendor"].as_str().unwrap().to_string());
            // Every served resource parses as the core model of its type.
            let parsed = match kind {
                DeviceKind::Vehicle => {
                    serde_json::from_value::<oemgate_core::Vehicle>(device.clone()).map(|_| ())
                }
                DeviceKind::Battery => {
                    serde_json::from_value::<oemgate_core::Battery>(device.clone()).map(|_| ())
                }
                DeviceKind::Meter => {
                    serde_json::from_value::<oemgate_core::Meter>(device.clone()).map(|_| ())
                }
                DeviceKind::Charger => {
                    serde_json::from_value::<oemgate_core::Charger>(device.clone()).map(|_| ())
                }
                DeviceKind::Hvac => {
                    serde_json::from_value::<oemgate_core::Hvac>(device.clone()).map(|_| ())
                }
                _ => serde_json::from_value::<oemgate_core::Inverter>(device.clone()).map(|_| ()),
            };
            assert!(parsed.is_ok(), "{path}: {parsed:?} for {device}");
        }
    }
    let all: Vec<&str> = vendors.iter().map(String::as_str).collect();
    for vendor in ["ENPHASE", "HUAWEI", "SMA", "SOLAREDGE", "TESLA", "EASEE", "ZAPTEC", "WALLBOX"] {
        assert!(all.contains(&vendor), "{vendor} missing from the demo fleet: {all:?}");
    }
    assert!(
        ["ECOBEE", "TADO", "NEST"].iter().filter(|v| all.contains(v)).count() >= 2,
        "thermostat vendors missing from the demo fleet: {all:?}"
    );

    let vehicles = list(&http, &demo, &token, "vehicles").await;
    let id = vehicles[0]["id"].as_str().unwrap();
    let response = http
        .get(format!("{}/vehicles/{id}", demo.api_url))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["enode-version"], "2024-10-01");
    let one: Value = response.json().await.unwrap();
    assert_eq!(one["id"], id);

    // Values move with the world: over two simulated hours, batteries, meters and inverters
    // report changing power.
    let before: Vec<Value> =
        [list(&http, &demo, &token, "meters").await, list(&http, &demo, &token, "inverters").await]
            .concat();
    crate::support::poll_for(&demo, &clock, 120).await;
    // The first token expired meanwhile (1 h lifetime on the simulated clock).
    let token = crate::support::token(&http, &demo).await;
    let after: Vec<Value> =
        [list(&http, &demo, &token, "meters").await, list(&http, &demo, &token, "inverters").await]
            .concat();
    let changed = before.iter().zip(&after).filter(|(a, b)| a != b).count();
    assert!(
        changed * 2 >= before.len(),
        "only {changed} of {} meters and inverters changed",
        before.len()
    );

    let metrics = http.get(format!("{}/metrics", demo.api_url)).send().await.unwrap();
    assert_eq!(metrics.status(), 200);
    let text = metrics.text().await.unwrap();
    assert!(text.contains("oemgate_polls_total{"), "{text}");
    assert!(text.contains("oemgate_vendor_requests_total{vendor=\"TESLA\"}"), "{text}");
    // The scheduler's gauges: requests per device-hour, breaker state and, for vendors with a
    // daily quota, quota use and quota-stretched devices.
    for name in [
        "oemgate_vendor_requests_per_device_hour{vendor=\"TESLA\"}",
        "oemgate_breaker_state{vendor=\"ENPHASE\"}",
        "oemgate_quota_used_ratio{vendor=\"SOLAREDGE\"}",
        "oemgate_quota_stretched_devices{vendor=\"TADO\"}",
        "oemgate_schedule_lag_seconds",
        "oemgate_data_age_seconds",
    ] {
        assert!(text.contains(name), "{name} missing from {text}");
    }

    let missing = http
        .get(format!("{}/vehicles/does-not-exist", demo.api_url))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    demo.stop().await;
}

#[tokio::test]
async fn sleeping_cars_are_not_woken_and_every_device_stays_fresh() {
    let (demo, clock) = demo(10, None).await;
    let wakes_before = demo.sim.tesla.request_counts().wakes;
    // Two simulated hours of polling.
    crate::support::poll_for(&demo, &clock, 120).await;
    assert_eq!(demo.sim.tesla.request_counts().wakes, wakes_before, "polling woke a car");
    for vehicle in demo.sim.world.devices().iter().filter(|d| d.kind == DeviceKind::Vehicle) {
        assert_eq!(demo.sim.world.wake_count(&vehicle.id).requested, 0);
    }
    let snapshots = demo
        .store
        .list_snapshots(
            &Default::default(),
            &oemgate_store::PageRequest { page_size: 1000, ..Default::default() },
        )
        .await
        .unwrap();
    assert_eq!(snapshots.items.len(), demo.devices);
    let mut stretched = 0;
    for snapshot in &snapshots.items {
        let age = clock.now() - snapshot.observed_at;
        // Within the longest context bound (20 min, sleeping)... unless the vendor's daily
        // quota cannot pay for that: then every device sharing the quota is polled at the
        // same stretched interval (tado's free tier: 100 requests a day per account).
        let record = demo.store.get_device(&snapshot.device_id).await.unwrap().unwrap();
        let bound = match demo.poller.quota_limited_interval(&record) {
            Some(share) => {
                if share > Duration::from_secs(20 * 60) {
                    stretched += 1;
                }
                share.max(Duration::from_secs(20 * 60))
            }
            None => Duration::from_secs(20 * 60),
        };
        // One minute of slack for the scheduler tick and the jitter of the first polls.
        let bound = chrono::Duration::from_std(bound + Duration::from_secs(60)).unwrap();
        assert!(
            age <= bound,
            "{} ({}) last observed {age} ago, bound {bound}",
            snapshot.device_id,
            record.vendor
        );
    }
    eprintln!("{stretched} devices polled on a quota-stretched interval");
    demo.stop().await;
}

#[tokio::test]
async fn a_refresh_hint_brings_one_poll_forward() {
    let (demo, clock) = demo(2, None).await;
    crate::support::poll_for(&demo, &clock, 5).await;
    let http = reqwest::Client::new();
    let token = token(&http, &demo).await;
    let list: Value = http
        .get(format!("{}/vehicles", demo.api_url))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = list["data"][0]["id"].as_str().unwrap().to_string();
    let due = |id: String| {
        let store = demo.store.clone();
        async move { store.due_at(&id).await.unwrap().unwrap() }
    };
    let observed = |id: String| {
        let store = demo.store.clone();
        async move { store.get_snapshot(&id).await.unwrap().unwrap().observed_at }
    };
    // Make sure the car is not due anyway in the next minute.
    demo.store.schedule(&id, clock.now() + chrono::Duration::minutes(10)).await.unwrap();

    let hint = |id: String| {
        let http = http.clone();
        let url = format!("{}/vehicles/{id}/refresh-hint", demo.api_url);
        let token = token.clone();
        async move { http.post(url).bearer_auth(token).send().await.unwrap().status() }
    };
    assert_eq!(hint(id.clone()).await, 204);
    assert!(due(id.clone()).await <= clock.now(), "the hint moved the poll to now");
    // Within 5 simulated seconds the device is polled.
    clock.advance(Duration::from_secs(1));
    demo.poller.tick().await.unwrap();
    assert_eq!(observed(id.clone()).await, clock.now());
    let next = due(id.clone()).await;
    assert!(next > clock.now());
    // A second hint within the interval is accepted but adds no poll.
    clock.advance(Duration::from_secs(5));
    assert_eq!(hint(id.clone()).await, 204);
    assert_eq!(due(id.clone()).await, next);
    // After the interval, a hint works again.
    clock.advance(Duration::from_secs(30));
    assert_eq!(hint(id.clone()).await, 204);
    assert!(due(id.clone()).await <= clock.now());

    assert_eq!(hint("unknown".into()).await, 404);
    let as_battery = http
        .post(format!("{}/batteries/{id}/refresh-hint", demo.api_url))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(as_battery.status(), 404);
    demo.stop().await;
}
