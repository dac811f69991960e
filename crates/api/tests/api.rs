//! The API through its router: tokens, bearer checks, problems, versions, pagination.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use base64::Engine;
use chrono::{DateTime, Utc};
use http_body_util::BodyExt;
use oemgate_api::{ApiConfig, ApiState, ClientCredentials, create_client, router};
use oemgate_core::{Clock, DeviceRef, ManualClock, VendorType};
use oemgate_store::{
    DeviceRecord, DeviceStore, MemoryStore, RedisConfig, RedisStore, Snapshot, Store, UserRecord,
    UserStore,
};
use serde_json::{Value, json};
use tower::ServiceExt;

struct Api {
    app: axum::Router,
    store: Arc<MemoryStore>,
    clock: Arc<ManualClock>,
    client: ClientCredentials,
}

async fn api() -> Api {
    let start: DateTime<Utc> = "2026-03-01T08:00:00Z".parse().unwrap();
    let clock = Arc::new(ManualClock::new(start));
    let store = Arc::new(MemoryStore::new());
    let client = ClientCredentials { client_id: "client-a".into(), client_secret: "s3cret".into() };
    create_client(store.as_ref(), &client, "2024-10-01", start).await.unwrap();
    let dyn_store: Arc<dyn Store> = store.clone();
    let app = router(ApiState::new(dyn_store, clock.clone(), ApiConfig::default()));
    Api { app, store, clock, client }
}

async fn send(
    app: &axum::Router,
    request: Request<Body>,
) -> (StatusCode, axum::http::HeaderMap, Value) {
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let body = if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).unwrap() };
    (status, headers, body)
}

fn basic(id: &str, secret: &str) -> String {
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}")))
}

fn token_request(auth: &str, body: &str) -> Request<Body> {
    Request::post("/oauth2/token")
        .header(header::AUTHORIZATION, auth)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(body.to_string()))
        .unwrap()
}

async fn token(api: &Api) -> String {
    let (status, _, body) = send(
        &api.app,
        token_request(
            &basic(&api.client.client_id, &api.client.client_secret),
            "grant_type=client_credentials",
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["access_token"].as_str().unwrap().to_string()
}

fn get(path: &str, token: Option<&str>) -> Request<Body> {
    let mut builder = Request::get(path);
    if let Some(token) = token {
        builder = builder.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    builder.body(Body::empty()).unwrap()
}

async fn add_vehicle(store: &MemoryStore, id: &str, user: &str, created: DateTime<Utc>) {
    // The user belongs to the test's client, so its devices are the client's.
    store
        .put_user(UserRecord { id: user.into(), client_id: "client-a".into(), created_at: created })
        .await
        .unwrap();
    let device = DeviceRef {
        id: id.into(),
        user_id: user.into(),
        device_type: VendorType::Vehicle,
        vendor_id: format!("VIN-{id}"),
        site_id: None,
    };
    store
        .put_device(DeviceRecord {
            device,
            vendor: "TESLA".into(),
            account_id: "a".into(),
            created_at: created,
        })
        .await
        .unwrap();
    let snapshot = Snapshot {
        device_id: id.into(),
        user_id: user.into(),
        device_type: VendorType::Vehicle,
        version: 1,
        observed_at: created,
        resource: json!({"id": id, "userId": user, "vendor": "TESLA"}),
    };
    store.put_snapshot(snapshot, 0).await.unwrap();
}

#[tokio::test]
async fn token_endpoint_issues_and_rejects() {
    let api = api().await;
    let (status, headers, body) = send(
        &api.app,
        token_request(
            &basic(&api.client.client_id, &api.client.client_secret),
            "grant_type=client_credentials",
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(body["expires_in"], 3600);
    assert!(body["access_token"].as_str().unwrap().len() >= 40);
    assert_eq!(headers["enode-version"], "2024-10-01");

    let (status, _, body) = send(
        &api.app,
        token_request(&basic(&api.client.client_id, "wrong"), "grant_type=client_credentials"),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"], "invalid_client");

    let (status, _, body) = send(
        &api.app,
        token_request(
            &basic(&api.client.client_id, &api.client.client_secret),
            "grant_type=password",
        ),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "unsupported_grant_type");

    let (status, _, body) =
        send(&api.app, token_request("Basic !!", "grant_type=client_credentials")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"], "invalid_client");
}

#[tokio::test]
async fn resources_need_a_valid_unexpired_bearer_token() {
    let api = api().await;
    for token in [None, Some("not-a-token")] {
        let (status, headers, body) = send(&api.app, get("/vehicles", token)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(headers[header::CONTENT_TYPE], "application/problem+json");
        assert_eq!(body["title"], "Unauthorized");
        assert!(body["type"].as_str().unwrap().starts_with("https://"));
    }
    let token = token(&api).await;
    let (status, _, _) = send(&api.app, get("/vehicles", Some(&token))).await;
    assert_eq!(status, StatusCode::OK);
    api.clock.advance(std::time::Duration::from_secs(3601));
    let (status, _, _) = send(&api.app, get("/vehicles", Some(&token))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn vehicles_list_get_and_paginate_from_the_store() {
    let api = api().await;
    let t0 = api.clock.now();
    for i in 0..5 {
        add_vehicle(
            &api.store,
            &format!("v{i}"),
            if i < 3 { "u1" } else { "u2" },
            t0 + chrono::Duration::seconds(i),
        )
        .await;
    }
    let token = token(&api).await;
    let (status, _, body) = send(&api.app, get("/vehicles?pageSize=2", Some(&token))).await;
    assert_eq!(status, StatusCode::OK);
    let ids: Vec<&str> =
        body["data"].as_array().unwrap().iter().map(|v| v["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["v4", "v3"], "newest first");
    let after = body["pagination"]["after"].as_str().unwrap().to_string();
    let (_, _, body) =
        send(&api.app, get(&format!("/vehicles?pageSize=2&after={after}"), Some(&token))).await;
    let ids: Vec<&str> =
        body["data"].as_array().unwrap().iter().map(|v| v["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["v2", "v1"]);

    let (_, _, body) = send(&api.app, get("/users/u2/vehicles", Some(&token))).await;
    assert_eq!(body["data"].as_array().unwrap().len(), 2);

    let (status, _, body) = send(&api.app, get("/vehicles/v1", Some(&token))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["userId"], "u1");

    // A vehicle is not a battery: each collection serves only its own device type.
    let (status, _, _) = send(&api.app, get("/batteries/v1", Some(&token))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, body) = send(&api.app, get("/batteries", Some(&token))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["data"], json!([]));

    let (status, headers, body) = send(&api.app, get("/vehicles/nope", Some(&token))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(headers[header::CONTENT_TYPE], "application/problem+json");
    assert!(body["detail"].as_str().unwrap().contains("nope"));
}

#[tokio::test]
async fn invalid_requests_get_problems_naming_the_field() {
    let api = api().await;
    let token = token(&api).await;
    for query in ["pageSize=0", "pageSize=abc", "pageSize=1001"] {
        let (status, _, body) =
            send(&api.app, get(&format!("/vehicles?{query}"), Some(&token))).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
        assert!(body["detail"].as_str().unwrap().contains("pageSize"), "{body}");
    }
    let (status, _, body) = send(&api.app, get("/vehicles?after=garbage!", Some(&token))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["detail"].as_str().unwrap().contains("cursor"), "{body}");

    let request = Request::get("/vehicles")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header("Enode-Version", "1999-01-01")
        .body(Body::empty())
        .unwrap();
    let (status, _, body) = send(&api.app, request).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["detail"].as_str().unwrap().contains("Enode-Version"));

    let (status, _, _) = send(&api.app, get("/no-such-route", Some(&token))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn action_routes_answer_503_without_an_executor() {
    // This deployment has no executor (an API-only one): creating, reading and cancelling
    // actions is unavailable, named as such, while the device itself still reads.
    let api = api().await;
    add_vehicle(&api.store, "v1", "u1", api.clock.now()).await;
    let token = token(&api).await;
    for (path, body) in [
        ("/vehicles/v1/charging", r#"{"action":"START"}"#),
        ("/vehicles/v1/max-current", r#"{"maxCurrent":16}"#),
        ("/vehicles/actions/a1/cancel", ""),
    ] {
        let request = Request::post(path)
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body))
            .unwrap();
        let (status, headers, problem) = send(&api.app, request).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{path}: {problem}");
        assert_eq!(headers[header::CONTENT_TYPE], "application/problem+json");
        assert!(problem["detail"].as_str().unwrap().contains("executor"), "{problem}");
    }
    let (status, _, _) = send(&api.app, get("/vehicles/actions/a1", Some(&token))).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    let (status, _, _) = send(&api.app, get("/vehicles/v1", Some(&token))).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn readiness_reflects_the_store() {
    let api = api().await;
    let (status, _, body) = send(&api.app, get("/health/ready", None)).await;
    assert_eq!((status, body), (StatusCode::NO_CONTENT, Value::Null));

    // A store that answers every command with an error (a Redis stand-in on loopback whose
    // PING fails): 503 problem, without a token like the 204.
    let (address, server) = failing_redis().await;
    let config = RedisConfig::new(format!("redis://{address}"), "ready-test");
    let store: Arc<dyn Store> = Arc::new(RedisStore::connect(config).await.unwrap());
    let app = router(ApiState::new(store, api.clock.clone(), ApiConfig::default()));
    let (status, headers, body) = send(&app, get("/health/ready", None)).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(headers[header::CONTENT_TYPE], "application/problem+json");
    assert_eq!(body["title"], "Service Unavailable");
    server.abort();
}

/// A loopback server speaking just enough RESP to be connected to, answering every command
/// with an error. Returns its address and the task serving it.
async fn failing_redis() -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buffer = Vec::new();
                let mut chunk = [0u8; 4096];
                while let Ok(n) = socket.read(&mut chunk).await {
                    if n == 0 {
                        return;
                    }
                    buffer.extend_from_slice(&chunk[..n]);
                    while let Some(used) = resp_command_length(&buffer) {
                        buffer.drain(..used);
                        if socket.write_all(b"-ERR the store is down\r\n").await.is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    (address, server)
}

/// The length of the first complete RESP command (an array of bulk strings) in `buffer`.
fn resp_command_length(buffer: &[u8]) -> Option<usize> {
    fn line(buffer: &[u8], at: usize, marker: u8) -> Option<(usize, usize)> {
        if buffer.get(at) != Some(&marker) {
            return None;
        }
        let end = at + buffer[at..].windows(2).position(|w| w == b"\r\n")?;
        let number = std::str::from_utf8(&buffer[at + 1..end]).ok()?.parse().ok()?;
        Some((number, end + 2))
    }
    let (count, mut at) = line(buffer, 0, b'*')?;
    for _ in 0..count {
        let (length, start) = line(buffer, at, b'$')?;
        at = start + length + 2;
        if at > buffer.len() {
            return None;
        }
    }
    Some(at)
}
