//! The demo's promise: simulated Tesla vehicles, polled and served behind OAuth2.

use std::time::Duration;

use oemgate_core::Clock;
use serde_json::Value;

use crate::support::{demo, first_polls, token};

#[tokio::test]
async fn vehicles_are_polled_stored_and_served_behind_a_token() {
    let (demo, clock) = demo(6, None).await;
    assert_eq!(demo.devices, 6);
    assert_eq!(first_polls(&demo, &clock).await, 6);
    let http = reqwest::Client::new();

    let response = http.get(format!("{}/vehicles", demo.api_url)).send().await.unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(response.headers()["content-type"], "application/problem+json");
    let problem: Value = response.json().await.unwrap();
    assert_eq!(problem["title"], "Unauthorized");

    let token = token(&http, &demo).await;
    let response =
        http.get(format!("{}/vehicles", demo.api_url)).bearer_auth(&token).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["enode-version"], "2024-10-01");
    let list: Value = response.json().await.unwrap();
    let vehicles = list["data"].as_array().unwrap();
    assert_eq!(vehicles.len(), 6);
    for vehicle in vehicles {
        assert_eq!(vehicle["vendor"], "TESLA");
        assert_eq!(vehicle["information"]["brand"], "Tesla");
        // The round trip through the core model keeps every documented field.
        let typed: oemgate_core::Vehicle = serde_json::from_value(vehicle.clone()).unwrap();
        assert_eq!(serde_json::to_value(&typed).unwrap()["id"], vehicle["id"]);
    }
    // Awake cars report a battery level; the sim's VIN is the vendor id.
    assert!(vehicles.iter().any(|v| v["chargeState"]["batteryLevel"].is_number()));

    let id = vehicles[0]["id"].as_str().unwrap();
    let one: Value = http
        .get(format!("{}/vehicles/{id}", demo.api_url))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(one["id"], id);

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
async fn sleeping_cars_are_not_woken_and_charging_cars_stay_fresh() {
    let (demo, clock) = demo(10, None).await;
    first_polls(&demo, &clock).await;
    let wakes_before = demo.sim.tesla.request_counts().wakes;
    // Two simulated hours of polling, one scheduler tick per simulated 10 s.
    for _ in 0..720 {
        clock.advance(Duration::from_secs(10));
        demo.poller.tick().await.unwrap();
    }
    assert_eq!(demo.sim.tesla.request_counts().wakes, wakes_before, "polling woke a car");
    // Every device was polled again recently: within its context's bound (20 min at most).
    let snapshots = demo
        .store
        .list_snapshots(
            &Default::default(),
            &oemgate_store::PageRequest { page_size: 100, ..Default::default() },
        )
        .await
        .unwrap();
    assert_eq!(snapshots.items.len(), 10);
    for snapshot in &snapshots.items {
        let age = clock.now() - snapshot.observed_at;
        assert!(
            age <= chrono::Duration::minutes(20),
            "{} last observed {age} ago",
            snapshot.device_id
        );
    }
    demo.stop().await;
}
