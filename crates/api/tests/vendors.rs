//! Vendor health, integrations and interventions through the router, with an injected
//! [`VendorHealth`] whose answers the test controls.
#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use chrono::{DateTime, Utc};
use http_body_util::BodyExt;
use oemgate_api::vendors::{VendorHealth, VendorReport, VendorStatus};
use oemgate_api::{ApiConfig, ApiState, ClientCredentials, create_client, router};
use oemgate_core::{
    Intervention, InterventionDomain, InterventionResolution, ManualClock, ResolutionAccess,
    ResolutionAgent, Vendor, VendorType,
};
use oemgate_store::{MemoryStore, Store};
use serde_json::Value;
use tower::ServiceExt;

struct Fake {
    statuses: Mutex<Vec<VendorStatus>>,
}

const EXPORT_ID: &str = "3b0e9f5c-2d47-4f1a-9c8e-e7a1d5b40f21";
const WRITE_ID: &str = "6f1c2b8e-0d4a-4e7b-9a35-c2e81f5d7b40";

fn intervention(id: &str, vendor: Vendor, vendor_type: VendorType) -> Intervention {
    Intervention {
        id: id.into(),
        vendor: Some(vendor),
        vendor_type: Some(vendor_type),
        brand: Some("Brand".into()),
        introduced_at: "2025-01-01T00:00:00Z".parse().unwrap(),
        domain: InterventionDomain::Device,
        resolution: InterventionResolution {
            title: "Title".into(),
            description: "Steps".into(),
            access: ResolutionAccess::Remote,
            agent: ResolutionAgent::User,
            action: None,
        },
    }
}

impl VendorHealth for Fake {
    fn vendors(&self) -> Vec<VendorReport> {
        let statuses = self.statuses.lock().unwrap().clone();
        vec![
            VendorReport {
                vendor: "EASEE".into(),
                display_name: "Easee".into(),
                device_types: vec![VendorType::Charger],
                status: statuses[0],
            },
            VendorReport {
                vendor: "TESLA".into(),
                display_name: "Tesla".into(),
                device_types: vec![VendorType::Vehicle, VendorType::Battery, VendorType::Charger],
                status: statuses[1],
            },
        ]
    }

    fn interventions(&self) -> Vec<Intervention> {
        vec![
            intervention(EXPORT_ID, Vendor::Enphase, VendorType::Battery),
            intervention(WRITE_ID, Vendor::Ecobee, VendorType::Hvac),
        ]
    }

    /// English and German only.
    fn languages(&self) -> Vec<&'static str> {
        vec!["en-US", "de-DE"]
    }

    fn interventions_in(&self, language: &str) -> Vec<Intervention> {
        let mut all = self.interventions();
        if language == "de-DE" {
            for i in &mut all {
                i.resolution.title = "Titel".into();
                i.resolution.description = "Schritte".into();
            }
        }
        all
    }
}

struct Api {
    app: axum::Router,
    fake: Arc<Fake>,
    token: String,
}

async fn api(with_health: bool) -> Api {
    let start: DateTime<Utc> = "2030-03-01T08:00:00Z".parse().unwrap();
    let clock = Arc::new(ManualClock::new(start));
    let store = Arc::new(MemoryStore::new());
    let credentials =
        ClientCredentials { client_id: "client-a".into(), client_secret: "secret-a".into() };
    create_client(store.as_ref(), &credentials, "2024-10-01", start).await.unwrap();
    let fake =
        Arc::new(Fake { statuses: Mutex::new(vec![VendorStatus::Ready, VendorStatus::Ready]) });
    let dyn_store: Arc<dyn Store> = store;
    let mut state = ApiState::new(dyn_store, clock, ApiConfig::default());
    if with_health {
        state = state.with_vendor_health(fake.clone());
    }
    let app = router(state);
    let mut api = Api { app, fake, token: String::new() };
    let (status, _, body) = api
        .raw(
            Request::post("/oauth2/token")
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from(
                    "grant_type=client_credentials&client_id=client-a&client_secret=secret-a",
                ))
                .unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    api.token = body["access_token"].as_str().unwrap().to_string();
    api
}

impl Api {
    async fn raw(&self, request: Request<Body>) -> (StatusCode, axum::http::HeaderMap, Value) {
        let response = self.app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let body =
            if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).unwrap() };
        (status, headers, body)
    }

    async fn get(&self, path: &str) -> (StatusCode, axum::http::HeaderMap, Value) {
        let request = Request::get(path)
            .header(header::AUTHORIZATION, format!("Bearer {}", self.token))
            .body(Body::empty())
            .unwrap();
        self.raw(request).await
    }
}

fn vendors_of(body: &Value) -> Vec<(String, String)> {
    body.as_array()
        .unwrap_or_else(|| panic!("not an array: {body}"))
        .iter()
        .map(|v| {
            (v["vendor"].as_str().unwrap().to_string(), v["status"].as_str().unwrap().to_string())
        })
        .collect()
}

#[tokio::test]
async fn health_lists_the_vendors_of_a_type_with_their_status() {
    let api = api(true).await;
    let (status, _, body) = api.get("/health/chargers").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        vendors_of(&body),
        [("EASEE".to_string(), "READY".to_string()), ("TESLA".into(), "READY".into())]
    );
    let first = &body[0];
    assert_eq!(first["displayName"], "Easee");
    assert_eq!(first["portalName"], "Easee");
    assert_eq!(first["linkingStatus"], "READY");
    assert_eq!(first.as_object().unwrap().len(), 5, "{first}");

    *api.fake.statuses.lock().unwrap() =
        vec![VendorStatus::ElevatedErrorRate, VendorStatus::Outage];
    let (_, _, body) = api.get("/health/chargers").await;
    assert_eq!(
        vendors_of(&body),
        [
            ("EASEE".to_string(), "ELEVATED_ERROR_RATE".to_string()),
            ("TESLA".into(), "OUTAGE".into())
        ]
    );
    let (_, _, body) = api.get("/health/vehicles").await;
    assert_eq!(vendors_of(&body), [("TESLA".to_string(), "OUTAGE".to_string())]);
    let (status, _, body) = api.get("/health/hvacs").await;
    assert_eq!((status, body), (StatusCode::OK, Value::Array(vec![])));
    let (status, _, body) = api.get("/health/batteries").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(vendors_of(&body), [("TESLA".to_string(), "OUTAGE".to_string())]);
    for path in ["/health/meters", "/health/inverters"] {
        let (status, _, body) = api.get(path).await;
        assert_eq!((status, body), (StatusCode::OK, Value::Array(vec![])), "{path}");
    }

    // The readiness check is still its own unauthenticated route.
    let (status, _, _) = api.raw(Request::get("/health/ready").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn health_errors() {
    let api = api(true).await;
    let (status, headers, body) = api.get("/health/toasters").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(headers[header::CONTENT_TYPE], "application/problem+json");
    let (status, _, _) =
        api.raw(Request::get("/health/chargers").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // Without an injected vendor view nothing is claimed healthy.
    let api = api_without().await;
    for path in [
        "/health/chargers",
        "/integrations",
        "/interventions",
        &format!("/interventions/{EXPORT_ID}"),
    ] {
        let (status, _, body) = api.get(path).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{path}: {body}");
    }
}

async fn api_without() -> Api {
    api(false).await
}

#[tokio::test]
async fn integrations_list_vendors_with_asset_types_and_scopes() {
    let api = api(true).await;
    *api.fake.statuses.lock().unwrap() = vec![VendorStatus::Ready, VendorStatus::Outage];
    let (status, _, body) = api.get("/integrations").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body.as_array().unwrap().len(), 2);
    let tesla = &body[1];
    assert_eq!(tesla["vendor"], "TESLA");
    assert_eq!(tesla["status"], "OUTAGE");
    assert_eq!(tesla["assetTypes"], serde_json::json!(["battery", "charger", "vehicle"]));
    let scopes: Vec<&str> =
        tesla["scopes"].as_array().unwrap().iter().map(|s| s.as_str().unwrap()).collect();
    assert!(scopes.contains(&"vehicle:control:charging"), "{scopes:?}");
    assert!(scopes.contains(&"battery:read:data"), "{scopes:?}");
    assert!(!scopes.iter().any(|s| s.starts_with("hvac:")), "{scopes:?}");

    let (_, _, body) = api.get("/integrations?assetTypes=vehicle").await;
    assert_eq!(vendors_of(&body), [("TESLA".to_string(), "OUTAGE".to_string())]);
    assert_eq!(body[0]["assetTypes"], serde_json::json!(["vehicle"]));

    let (status, _, body) = api.get("/integrations?assetTypes=vehicle,toaster").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["detail"].as_str().unwrap().contains("assetTypes"), "{body}");
}

#[tokio::test]
async fn interventions_list_filter_translate_and_fall_back_to_english() {
    let api = api(true).await;
    let (status, headers, body) = api.get("/interventions").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(headers[header::CONTENT_LANGUAGE], "en-US");
    assert_eq!(body.as_array().unwrap().len(), 2);
    let first = &body[0];
    for field in ["id", "vendor", "vendorType", "brand", "introducedAt", "domain", "resolution"] {
        assert!(first.get(field).is_some(), "{field} missing in {first}");
    }
    assert_eq!(first["resolution"]["access"], "Remote");

    assert_eq!(first["resolution"]["title"], "Title");

    // A translated language: its texts, and Content-Language says so.
    let (_, headers, body) = api.get("/interventions?language=de-DE&vendorType=hvac").await;
    assert_eq!(headers[header::CONTENT_LANGUAGE], "de-DE");
    let ids: Vec<&str> =
        body.as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [WRITE_ID]);
    assert_eq!(body[0]["resolution"]["title"], "Titel");
    assert_eq!(body[0]["resolution"]["description"], "Schritte");
    // Codes match without regard to case.
    let (_, headers, body) = api.get("/interventions?language=DE-de").await;
    assert_eq!(headers[header::CONTENT_LANGUAGE], "de-DE");
    assert_eq!(body[0]["resolution"]["title"], "Titel");
    // A documented language without translations, and an empty one: en-US.
    for language in ["ja-JP", ""] {
        let (status, headers, body) = api.get(&format!("/interventions?language={language}")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(headers[header::CONTENT_LANGUAGE], "en-US", "{language}");
        assert_eq!(body[0]["resolution"]["title"], "Title", "{language}");
    }
    let (_, _, body) = api.get("/interventions?vendor=ENPHASE").await;
    assert_eq!(body[0]["id"], EXPORT_ID);
    assert_eq!(body.as_array().unwrap().len(), 1);
    let (_, _, body) = api.get("/interventions?language=sv-SE&vendor=NOBODY").await;
    assert_eq!(body, Value::Array(vec![]));

    // Not one of the document's language codes: 400 naming the parameter.
    for language in ["xx-XX", "german", "de"] {
        let (status, _, body) = api.get(&format!("/interventions?language={language}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{language}: {body}");
        assert!(body["detail"].as_str().unwrap().contains("\"language\""), "{body}");
        let (status, _, _) =
            api.get(&format!("/interventions/{WRITE_ID}?language={language}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{language}");
    }

    let (status, _, body) = api.get("/interventions?vendorType=toaster").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["detail"].as_str().unwrap().contains("vendorType"), "{body}");
}

#[tokio::test]
async fn intervention_by_id() {
    let api = api(true).await;
    let (status, headers, body) =
        api.get(&format!("/interventions/{WRITE_ID}?language=fr-FR")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(headers[header::CONTENT_LANGUAGE], "en-US", "no French texts: the fallback");
    assert_eq!(body["id"], WRITE_ID);
    assert_eq!(body["vendor"], "ECOBEE");
    assert_eq!(body["resolution"]["title"], "Title");
    let (status, headers, body) =
        api.get(&format!("/interventions/{WRITE_ID}?language=de-DE")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(headers[header::CONTENT_LANGUAGE], "de-DE");
    assert_eq!(body["resolution"]["title"], "Titel");
    let (status, _, body) = api.get("/interventions/00000000-0000-0000-0000-000000000000").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    // A filter that excludes it: not found either.
    let (status, _, _) = api.get(&format!("/interventions/{WRITE_ID}?vendorType=battery")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // A filter that is not one: 400 naming it.
    let (status, _, body) = api.get(&format!("/interventions/{WRITE_ID}?vendorType=toaster")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["detail"].as_str().unwrap().contains("vendorType"), "{body}");
}
