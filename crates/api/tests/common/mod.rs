//! The HTTP harness the API tests share: the router over a memory store with a manual
//! clock (starting 2030-03-01T08:00Z: stores drop tokens that expired by the wall clock, so
//! a clock in the past would lose them) and two API clients, `client-a` and `client-b`.
#![allow(dead_code, clippy::unwrap_used)]

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use chrono::{DateTime, Utc};
use http_body_util::BodyExt;
use oemgate_api::{ApiConfig, ApiState, ClientCredentials, create_client, router};
use oemgate_core::ManualClock;
use oemgate_executor::{Executor, ExecutorConfig};
use oemgate_store::{DeviceStore, MemoryStore, Store, UserStore};
use serde_json::Value;
use tower::ServiceExt;

pub struct Api {
    pub app: axum::Router,
    pub store: Arc<MemoryStore>,
    pub clock: Arc<ManualClock>,
}

pub struct Response {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: Value,
}

impl Response {
    pub fn ids(&self) -> Vec<String> {
        self.body["data"]
            .as_array()
            .unwrap_or_else(|| panic!("no data in {}", self.body))
            .iter()
            .map(|item| item["id"].as_str().unwrap().to_string())
            .collect()
    }

    pub fn detail(&self) -> String {
        self.body["detail"].as_str().unwrap_or_default().to_string()
    }

    pub fn is_problem(&self, status: StatusCode) {
        assert_eq!(self.status, status, "{}", self.body);
        assert_eq!(self.headers[header::CONTENT_TYPE], "application/problem+json");
        assert!(self.body["type"].as_str().unwrap().starts_with("https://"), "{}", self.body);
    }

    /// A 400 problem whose detail names `field`.
    pub fn names(&self, field: &str) {
        self.is_problem(StatusCode::BAD_REQUEST);
        assert!(self.detail().contains(&format!("\"{field}\"")), "{field}: {}", self.body);
    }
}

pub async fn api() -> Api {
    let start: DateTime<Utc> = "2030-03-01T08:00:00Z".parse().unwrap();
    let clock = Arc::new(ManualClock::new(start));
    let store = Arc::new(MemoryStore::new());
    let dyn_store: Arc<dyn Store> = store.clone();
    for client in ["client-a", "client-b"] {
        let credentials = ClientCredentials {
            client_id: client.into(),
            client_secret: format!("{client}-secret"),
        };
        create_client(store.as_ref(), &credentials, "2024-10-01", start).await.unwrap();
    }
    let executor = Executor::new(
        dyn_store.clone(),
        oemgate_scheduler::Adapters::new(),
        clock.clone(),
        ExecutorConfig::default(),
    );
    // Loopback allowed: the tests' receivers listen on 127.0.0.1.
    let webhooks = oemgate_webhooks::Sender::new(
        oemgate_webhooks::UrlPolicy { allow_insecure_loopback: true, allowed_hosts: Vec::new() },
        std::time::Duration::from_secs(5),
    )
    .unwrap();
    let app = router(
        ApiState::new(dyn_store, clock.clone(), ApiConfig::default())
            .with_executor(Arc::new(executor))
            .with_webhooks(Arc::new(webhooks)),
    );
    Api { app, store, clock }
}

impl Api {
    pub async fn send(&self, request: Request<Body>) -> Response {
        let response = self.app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let body =
            if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).unwrap() };
        Response { status, headers, body }
    }

    pub async fn token(&self, client: &str) -> String {
        let body = format!(
            "grant_type=client_credentials&client_id={client}&client_secret={client}-secret"
        );
        let request = Request::post("/oauth2/token")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(body))
            .unwrap();
        let response = self.send(request).await;
        assert_eq!(response.status, StatusCode::OK, "{}", response.body);
        response.body["access_token"].as_str().unwrap().to_string()
    }

    pub async fn call(
        &self,
        token: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Response {
        let builder = Request::builder()
            .method(method)
            .uri(path)
            .header(header::AUTHORIZATION, format!("Bearer {token}"));
        let request = match body {
            Some(body) => builder
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(body.to_string()))
                .unwrap(),
            None => builder.body(Body::empty()).unwrap(),
        };
        self.send(request).await
    }

    pub async fn get(&self, token: &str, path: &str) -> Response {
        self.call(token, Method::GET, path, None).await
    }

    pub async fn raw(&self, token: &str, method: Method, path: &str, body: &str) -> Response {
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string()))
            .unwrap();
        self.send(request).await
    }
}

/// A device as the poller would have stored it, for seeding tests.
pub struct SeedDevice<'a> {
    pub id: &'a str,
    pub user: &'a str,
    pub kind: oemgate_core::VendorType,
    pub vendor: &'a str,
    pub account: &'a str,
    pub at: DateTime<Utc>,
    /// The snapshot's resource; `None` stores the device without a snapshot.
    pub resource: Option<Value>,
}

impl Api {
    /// A user owned by `client`, created at `at`.
    pub async fn seed_user(&self, id: &str, client: &str, at: DateTime<Utc>) {
        let record =
            oemgate_store::UserRecord { id: id.into(), client_id: client.into(), created_at: at };
        self.store.put_user(record).await.unwrap();
    }

    /// A device (and its snapshot, when it has a resource), as the poller stores them.
    pub async fn seed_device(&self, seed: SeedDevice<'_>) {
        let device = oemgate_core::DeviceRef {
            id: seed.id.into(),
            user_id: seed.user.into(),
            device_type: seed.kind,
            vendor_id: format!("V-{}", seed.id),
            site_id: None,
        };
        let record = oemgate_store::DeviceRecord {
            device,
            vendor: seed.vendor.into(),
            account_id: seed.account.into(),
            created_at: seed.at,
        };
        self.store.put_device(record).await.unwrap();
        if let Some(resource) = seed.resource {
            let snapshot = oemgate_store::Snapshot {
                device_id: seed.id.into(),
                user_id: seed.user.into(),
                device_type: seed.kind,
                version: 1,
                observed_at: seed.at,
                resource,
            };
            self.store.put_snapshot(snapshot, 0).await.unwrap();
        }
    }
}
