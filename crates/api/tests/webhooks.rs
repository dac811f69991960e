//! Webhook routes: creation with validation naming the field, the duplicate-URL 400, listing
//! with pages, reading, updating (and reactivating), deleting, the test delivery against a
//! local receiver (signed, SUCCESS / FAILURE), client isolation, and 503 without a sender.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};

use axum::http::{HeaderMap, Method, StatusCode};
use common::Api;
use oemgate_store::WebhookStore;
use serde_json::{Value, json};

/// A receiver on loopback that records requests and answers `status`.
#[derive(Clone)]
struct Receiver {
    url: String,
    status: Arc<AtomicU16>,
    seen: Arc<Mutex<Vec<(HeaderMap, axum::body::Bytes)>>>,
}

async fn receiver(status: u16) -> Receiver {
    let seen: Arc<Mutex<Vec<(HeaderMap, axum::body::Bytes)>>> = Arc::default();
    let status = Arc::new(AtomicU16::new(status));
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post({
            let (seen, status) = (seen.clone(), status.clone());
            move |headers: HeaderMap, body: axum::body::Bytes| async move {
                seen.lock().unwrap().push((headers, body));
                (StatusCode::from_u16(status.load(Ordering::SeqCst)).unwrap(), "thanks")
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Receiver { url, status, seen }
}

async fn create(api: &Api, token: &str, body: Value) -> common::Response {
    api.call(token, Method::POST, "/webhooks", Some(body)).await
}

fn hook(url: &str) -> Value {
    json!({"url": url, "secret": "a-long-enough-secret"})
}

#[tokio::test]
async fn create_serves_the_webhook_without_its_secrets() {
    let api = common::api().await;
    let token = api.token("client-a").await;
    let response = create(
        &api,
        &token,
        json!({
            "url": "https://example.com/hooks",
            "secret": "a-long-enough-secret",
            "events": ["user:vehicle:updated", "user:charger:updated"],
            "apiVersion": "2024-10-01",
            "authentication": {"headerName": "x-api-key", "headerValue": "header-secret"}
        }),
    )
    .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.body);
    let body = &response.body;
    assert!(uuid::Uuid::parse_str(body["id"].as_str().unwrap()).is_ok());
    assert_eq!(body["url"], "https://example.com/hooks");
    assert_eq!(body["events"], json!(["user:vehicle:updated", "user:charger:updated"]));
    assert_eq!(body["isActive"], true);
    assert_eq!(body["lastSuccess"], Value::Null);
    assert_eq!(body["createdAt"], "2030-03-01T08:00:00.000Z");
    assert_eq!(body["apiVersion"], "2024-10-01");
    assert_eq!(body["authentication"], json!({"headerName": "x-api-key"}));
    let text = body.to_string();
    assert!(!text.contains("a-long-enough-secret") && !text.contains("header-secret"), "{text}");

    // Defaults: every event, the client's version, no header.
    let response = create(&api, &token, hook("https://example.com/other")).await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.body);
    assert_eq!(response.body["events"], json!(["*"]));
    assert_eq!(response.body["apiVersion"], Value::Null);
    assert_eq!(response.body["authentication"], Value::Null);
}

#[tokio::test]
async fn create_rejects_invalid_fields_naming_them_and_duplicate_urls() {
    let api = common::api().await;
    let token = api.token("client-a").await;
    let cases = [
        (json!({"secret": "a-long-enough-secret"}), "url"),
        (json!({"url": "https://example.com/h"}), "secret"),
        (hook("http://example.com/h"), "url"),
        (hook("https://10.1.2.3/h"), "url"),
        (hook("https://169.254.169.254/latest"), "url"),
        (hook("https://user:pw@example.com/h"), "url"),
        (hook("ftp://example.com/h"), "url"),
        (hook("https:/"), "url"),
        (json!({"url": 5, "secret": "a-long-enough-secret"}), "url"),
        (json!({"url": "https://example.com/h", "secret": "short"}), "secret"),
        (json!({"url": "https://example.com/h", "secret": "long-enough", "events": []}), "events"),
        (
            json!({"url": "https://example.com/h", "secret": "long-enough", "events": ["user:nope"]}),
            "events",
        ),
        (json!({"url": "https://example.com/h", "secret": "long-enough", "events": "*"}), "events"),
        (
            json!({"url": "https://example.com/h", "secret": "long-enough", "apiVersion": "2019-01-01"}),
            "apiVersion",
        ),
        (
            json!({"url": "https://example.com/h", "secret": "long-enough",
                   "authentication": {"headerName": "X-Upper", "headerValue": "v"}}),
            "authentication",
        ),
        (
            json!({"url": "https://example.com/h", "secret": "long-enough",
                   "authentication": {"headerName": "x-key"}}),
            "authentication",
        ),
    ];
    for (body, field) in cases {
        create(&api, &token, body).await.names(field);
    }
    let response = create(
        &api,
        &token,
        json!({"url": "https://example.com/h", "secret": "s3cret!", "extra": 1}),
    )
    .await;
    response.is_problem(StatusCode::BAD_REQUEST);
    api.raw(&token, Method::POST, "/webhooks", "{not json")
        .await
        .is_problem(StatusCode::BAD_REQUEST);

    let first = create(&api, &token, hook("https://example.com/dup")).await;
    assert_eq!(first.status, StatusCode::OK);
    let again = create(&api, &token, hook("https://example.com/dup")).await;
    again.names("url");
    assert!(again.detail().contains("already exists"), "{}", again.body);
    // Another client may use the same URL.
    let other = api.token("client-b").await;
    assert_eq!(create(&api, &other, hook("https://example.com/dup")).await.status, StatusCode::OK);
}

#[tokio::test]
async fn list_pages_through_the_clients_own_webhooks() {
    let api = common::api().await;
    let token = api.token("client-a").await;
    let mut ids = Vec::new();
    for n in 0..3 {
        api.clock.advance(std::time::Duration::from_secs(1));
        let response = create(&api, &token, hook(&format!("https://example.com/{n}"))).await;
        ids.push(response.body["id"].as_str().unwrap().to_owned());
    }
    let other = api.token("client-b").await;
    create(&api, &other, hook("https://example.com/b")).await;

    let page = api.get(&token, "/webhooks?pageSize=2").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert_eq!(page.ids(), [ids[2].clone(), ids[1].clone()], "newest first");
    let after = page.body["pagination"]["after"].as_str().unwrap().to_owned();
    let next = api.get(&token, &format!("/webhooks?pageSize=2&after={after}")).await;
    assert_eq!(next.ids(), [ids[0].clone()]);
    assert!(next.body["data"][0].get("secret").is_none());
    assert_eq!(api.get(&other, "/webhooks").await.ids().len(), 1);

    api.get(&token, "/webhooks?pageSize=0").await.is_problem(StatusCode::BAD_REQUEST);
    api.get(&token, "/webhooks?after=garbage").await.is_problem(StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn get_patch_and_delete_one_webhook_and_never_another_clients() {
    let api = common::api().await;
    let token = api.token("client-a").await;
    let other = api.token("client-b").await;
    let created = create(
        &api,
        &token,
        json!({
            "url": "https://example.com/a", "secret": "a-long-enough-secret",
            "authentication": {"headerName": "x-api-key", "headerValue": "v"}
        }),
    )
    .await;
    let id = created.body["id"].as_str().unwrap().to_owned();
    let path = format!("/webhooks/{id}");
    create(&api, &token, hook("https://example.com/taken")).await;

    let got = api.get(&token, &path).await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.body, created.body);
    api.get(&other, &path).await.is_problem(StatusCode::NOT_FOUND);
    api.get(&token, "/webhooks/unknown-id").await.is_problem(StatusCode::NOT_FOUND);

    // PATCH: only the given fields change; authentication null removes the header.
    let patched = api
        .call(&token, Method::PATCH, &path, Some(json!({
            "url": "https://example.com/b", "events": ["user:battery:updated"], "authentication": null
        })))
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.body);
    assert_eq!(patched.body["url"], "https://example.com/b");
    assert_eq!(patched.body["events"], json!(["user:battery:updated"]));
    assert_eq!(patched.body["authentication"], Value::Null);
    assert_eq!(patched.body["createdAt"], created.body["createdAt"]);
    api.call(&token, Method::PATCH, &path, Some(json!({"secret": "x"}))).await.names("secret");
    api.call(&token, Method::PATCH, &path, Some(json!({"url": "http://example.com/x"})))
        .await
        .names("url");
    let duplicate = api
        .call(&token, Method::PATCH, &path, Some(json!({"url": "https://example.com/taken"})))
        .await;
    duplicate.names("url");
    // Its own URL again is no duplicate.
    let same =
        api.call(&token, Method::PATCH, &path, Some(json!({"url": "https://example.com/b"}))).await;
    assert_eq!(same.status, StatusCode::OK, "{}", same.body);
    api.call(&other, Method::PATCH, &path, Some(json!({"events": ["*"]})))
        .await
        .is_problem(StatusCode::NOT_FOUND);

    // A PATCH reactivates a webhook the dispatcher deactivated.
    let mut state = api.store.get_webhook_state(&id).await.unwrap().unwrap();
    state.active = false;
    api.store.put_webhook_state(state.clone(), state.version).await.unwrap();
    assert_eq!(api.get(&token, &path).await.body["isActive"], false);
    let reactivated = api.call(&token, Method::PATCH, &path, Some(json!({"events": ["*"]}))).await;
    assert_eq!(reactivated.body["isActive"], true, "{}", reactivated.body);

    api.call(&other, Method::DELETE, &path, None).await.is_problem(StatusCode::NOT_FOUND);
    let deleted = api.call(&token, Method::DELETE, &path, None).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert!(api.store.get_webhook_state(&id).await.unwrap().is_none());
    api.get(&token, &path).await.is_problem(StatusCode::NOT_FOUND);
    api.call(&token, Method::DELETE, &path, None).await.is_problem(StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn test_delivers_a_signed_test_event_and_reports_the_answer() {
    let api = common::api().await;
    let token = api.token("client-a").await;
    let other = api.token("client-b").await;
    let up = receiver(200).await;
    let created = create(
        &api,
        &token,
        json!({
            "url": up.url, "secret": "a-long-enough-secret",
            "authentication": {"headerName": "x-api-key", "headerValue": "header-secret"}
        }),
    )
    .await;
    let id = created.body["id"].as_str().unwrap().to_owned();
    let path = format!("/webhooks/{id}/test");

    // Deactivated meanwhile; a successful test reactivates it and stamps lastSuccess.
    let mut state = api.store.get_webhook_state(&id).await.unwrap().unwrap();
    state.active = false;
    api.store.put_webhook_state(state.clone(), state.version).await.unwrap();

    let result = api.call(&token, Method::POST, &path, None).await;
    assert_eq!(result.status, StatusCode::OK, "{}", result.body);
    assert_eq!(result.body["status"], "SUCCESS", "{}", result.body);
    assert_eq!(result.body["response"]["code"], 200);
    assert_eq!(result.body["response"]["body"], "thanks");
    assert!(
        result.body["response"]["headers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| { h.as_str().unwrap().starts_with("content-type: ") })
    );
    {
        let seen = up.seen.lock().unwrap();
        assert_eq!(seen.len(), 1);
        let (headers, body) = &seen[0];
        let signature = headers["x-enode-signature"].to_str().unwrap();
        assert!(oemgate_webhooks::verify(b"a-long-enough-secret", body, signature));
        assert_eq!(headers["x-api-key"], "header-secret");
        assert!(headers.contains_key("x-enode-delivery"));
        let events: Value = serde_json::from_slice(body).unwrap();
        assert_eq!(events[0]["event"], "enode:webhook:test");
        assert_eq!(events[0]["version"], "2024-10-01");
        assert_eq!(events[0]["createdAt"], "2030-03-01T08:00:00.000Z");
    }
    let got = api.get(&token, &format!("/webhooks/{id}")).await;
    assert_eq!(got.body["isActive"], true);
    assert_eq!(got.body["lastSuccess"], "2030-03-01T08:00:00.000Z");

    // A non-2xx answer is a FAILURE with the response; nothing listening, with none.
    up.status.store(500, Ordering::SeqCst);
    let failed = api.call(&token, Method::POST, &path, None).await;
    assert_eq!(failed.status, StatusCode::OK);
    assert_eq!(failed.body["status"], "FAILURE");
    assert_eq!(failed.body["response"]["code"], 500);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed = format!("http://{}/hook", listener.local_addr().unwrap());
    drop(listener);
    let patched = api
        .call(&token, Method::PATCH, &format!("/webhooks/{id}"), Some(json!({"url": closed})))
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.body);
    let unreachable = api.call(&token, Method::POST, &path, None).await;
    assert_eq!(unreachable.body["status"], "FAILURE");
    assert_eq!(unreachable.body["response"], Value::Null);
    assert!(!unreachable.body["description"].as_str().unwrap().is_empty());

    api.call(&other, Method::POST, &path, None).await.is_problem(StatusCode::NOT_FOUND);
    api.call(&token, Method::POST, "/webhooks/unknown/test", None)
        .await
        .is_problem(StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn without_a_sender_every_webhook_route_answers_503() {
    use oemgate_api::{ApiConfig, ApiState, ClientCredentials, create_client, router};
    let api = common::api().await;
    let client =
        ClientCredentials { client_id: "client-c".into(), client_secret: "client-c-secret".into() };
    create_client(
        api.store.as_ref(),
        &client,
        "2024-10-01",
        oemgate_core::Clock::now(api.clock.as_ref()),
    )
    .await
    .unwrap();
    let bare = Api {
        app: router(ApiState::new(api.store.clone(), api.clock.clone(), ApiConfig::default())),
        store: api.store.clone(),
        clock: api.clock.clone(),
    };
    let token = bare.token("client-c").await;
    let requests = [
        (Method::POST, "/webhooks".to_owned(), Some(hook("https://example.com/h"))),
        (Method::GET, "/webhooks".to_owned(), None),
        (Method::GET, "/webhooks/w1".to_owned(), None),
        (Method::PATCH, "/webhooks/w1".to_owned(), Some(json!({"events": ["*"]}))),
        (Method::DELETE, "/webhooks/w1".to_owned(), None),
        (Method::POST, "/webhooks/w1/test".to_owned(), None),
    ];
    for (method, path, body) in requests {
        bare.call(&token, method, &path, body).await.is_problem(StatusCode::SERVICE_UNAVAILABLE);
    }
}
