#![allow(clippy::unwrap_used)]
//! SimHost: mounting, serving and counting requests per prefix.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use chrono::{TimeZone, Utc};
use oemgate_core::{Clock, ManualClock};
use oemgate_sim::{HostError, SimHost};

#[tokio::test]
async fn counts_requests_per_prefix_on_the_world_clock() {
    let clock = Arc::new(ManualClock::new(Utc.with_ymd_and_hms(2026, 4, 1, 0, 0, 0).unwrap()));
    let mut host = SimHost::new(clock.clone());
    host.mount("/tesla", Router::new().route("/api/1/vehicles", get(|| async { "[]" }))).unwrap();
    host.mount("/enphase", Router::new().route("/ping", get(|| async { "pong" }))).unwrap();
    assert_eq!(
        host.mount("/tesla", Router::new()).err(),
        Some(HostError::Duplicate("/tesla".into()))
    );
    assert!(matches!(host.mount("/", Router::new()), Err(HostError::InvalidPrefix(_))));
    assert!(matches!(host.mount("tesla", Router::new()), Err(HostError::InvalidPrefix(_))));
    let log = host.request_log();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(host.serve(listener));

    let http = reqwest::Client::new();
    assert_eq!(log.count("/tesla"), 0);
    let t0 = clock.now();
    for _ in 0..3 {
        let body = http
            .get(format!("{base}/tesla/api/1/vehicles"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_eq!(body, "[]");
    }
    clock.advance(Duration::from_secs(60));
    let missing = http.get(format!("{base}/tesla/nope")).send().await.unwrap();
    assert_eq!(missing.status(), 404);
    let pong = http.get(format!("{base}/enphase/ping")).send().await.unwrap().text().await.unwrap();
    assert_eq!(pong, "pong");

    assert_eq!(log.count("/tesla"), 4);
    assert_eq!(log.count("/enphase"), 1);
    assert_eq!(log.total(), 5);
    assert_eq!(log.requests_in_window("/tesla", t0, t0 + chrono::Duration::seconds(60)), 3);
    assert_eq!(
        log.requests_in_window(
            "/tesla",
            t0 + chrono::Duration::seconds(60),
            clock.now() + chrono::Duration::seconds(1)
        ),
        1
    );
    assert_eq!(log.max_in_any_window("/tesla", Duration::from_secs(30)), 3);
    assert_eq!(log.max_in_any_window("/tesla", Duration::from_secs(61)), 4);
    let records = log.records("/tesla");
    assert_eq!(records[0].path, "/api/1/vehicles");
    assert_eq!(records[0].method, "GET");
    assert_eq!(records[0].status, Some(200));
    assert_eq!(records[3].status, Some(404));
    log.reset();
    assert_eq!(log.total(), 0);
    server.abort();
}
