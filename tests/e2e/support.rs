//! Shared helpers: a demo on a manual clock, an HTTP client with a token.

use std::sync::Arc;

use oemgate::config::Config;
use oemgate::demo::{Demo, DemoOptions, DemoParts};
use oemgate_core::ManualClock;
use oemgate_scheduler::poller::PollObserver;
use oemgate_store::Store;
use serde_json::Value;

/// A demo on loopback with free ports, a manual clock and hand-driven polling.
pub async fn demo(fleet: usize, store: Option<Arc<dyn Store>>) -> (Demo, Arc<ManualClock>) {
    demo_with(Config::defaults().unwrap(), fleet, store).await
}

/// Like [`demo`] with a configuration of the caller's.
pub async fn demo_with(
    config: Config,
    fleet: usize,
    store: Option<Arc<dyn Store>>,
) -> (Demo, Arc<ManualClock>) {
    demo_observed(config, fleet, store, None).await
}

/// Like [`demo_with`], telling `observer` about every poll.
pub async fn demo_observed(
    config: Config,
    fleet: usize,
    store: Option<Arc<dyn Store>>,
    observer: Option<Arc<dyn PollObserver>>,
) -> (Demo, Arc<ManualClock>) {
    demo_from(config, fleet, store, observer, "2026-06-01T07:00:00Z".parse().unwrap(), false).await
}

/// Like [`demo_with`] with the manual clock starting at `start` (a demo on Redis starts at
/// the real time: Redis expires access tokens by its own wall clock).
pub async fn demo_at(
    config: Config,
    fleet: usize,
    store: Option<Arc<dyn Store>>,
    start: chrono::DateTime<chrono::Utc>,
) -> (Demo, Arc<ManualClock>) {
    demo_from(config, fleet, store, None, start, false).await
}

async fn demo_from(
    config: Config,
    fleet: usize,
    store: Option<Arc<dyn Store>>,
    observer: Option<Arc<dyn PollObserver>>,
    start: chrono::DateTime<chrono::Utc>,
    unlinked: bool,
) -> (Demo, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(start));
    let options = DemoOptions {
        listen: "127.0.0.1:0".parse().unwrap(),
        sim_listen: "127.0.0.1:0".parse().unwrap(),
        fleet,
        speed: 1.0,
        seed: 7,
        client_id: Some("e2e-client".into()),
        client_secret: Some("e2e-secret".into()),
        headless: true,
    };
    let parts = DemoParts {
        clock: Some(clock.clone()),
        store,
        manual_polling: true,
        observer,
        unlinked,
        ..DemoParts::default()
    };
    let demo = Demo::start_with(config, options, parts).await.unwrap();
    (demo, clock)
}

/// A demo whose simulated vendor accounts exist but are not linked ([`Demo::accounts`]).
pub async fn unlinked_demo(
    fleet: usize,
    store: Option<Arc<dyn Store>>,
) -> (Demo, Arc<ManualClock>) {
    unlinked_demo_at(fleet, store, "2026-06-01T07:00:00Z".parse().unwrap()).await
}

/// Like [`unlinked_demo`] with the manual clock starting at `start`. Redis expires access
/// tokens by its own wall clock, so a demo on Redis starts at the real time.
pub async fn unlinked_demo_at(
    fleet: usize,
    store: Option<Arc<dyn Store>>,
    start: chrono::DateTime<chrono::Utc>,
) -> (Demo, Arc<ManualClock>) {
    demo_from(Config::defaults().unwrap(), fleet, store, None, start, true).await
}

/// An access token for the demo's client.
pub async fn token(http: &reqwest::Client, demo: &Demo) -> String {
    let response = http
        .post(format!("{}/oauth2/token", demo.api_url))
        .basic_auth(&demo.client.client_id, Some(&demo.client.client_secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_string()
}

/// Polls every 10 simulated seconds for `minutes` (the demo's poller, ticked by hand).
pub async fn poll_for(demo: &Demo, clock: &ManualClock, minutes: u64) {
    for _ in 0..minutes * 6 {
        clock.advance(std::time::Duration::from_secs(10));
        demo.poller.tick().await.unwrap();
    }
}

/// Calls the demo's API with a fresh token (the simulated clock outruns a token's hour);
/// the status and the body as JSON (as a JSON string when it is not JSON).
pub async fn call(
    http: &reqwest::Client,
    demo: &Demo,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let token = token(http, demo).await;
    let mut request = http.request(method, format!("{}{path}", demo.api_url)).bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}
