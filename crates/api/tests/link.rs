//! `POST /users/{userId}/link` and `POST /assets/{assetId}/relink` through the router: the
//! session they store, every validation failure (400 naming the field), 401 and 503.
//! The link page itself lives in the gateway and is tested end to end there.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use chrono::{DateTime, Utc};
use http_body_util::BodyExt;
use oemgate_api::link::{LinkableVendor, Linker, link_token_hash};
use oemgate_api::{ApiConfig, ApiState, ClientCredentials, create_client, router};
use oemgate_core::{DeviceRef, ManualClock, VendorType};
use oemgate_store::{
    AccountStore, DeviceRecord, DeviceStore, LinkSessionLookup, LinkSessionStore, MemoryStore,
    Store, UserStore,
};
use serde_json::{Value, json};
use tower::ServiceExt;

/// A linker offering Tesla (vehicles, batteries) and SolarEdge (inverters, batteries, meters).
struct TwoVendors;

impl Linker for TwoVendors {
    fn vendors(&self) -> Vec<LinkableVendor> {
        vec![
            LinkableVendor {
                vendor: "TESLA".into(),
                types: vec![VendorType::Vehicle, VendorType::Battery],
            },
            LinkableVendor {
                vendor: "SOLAREDGE".into(),
                types: vec![VendorType::Inverter, VendorType::Battery, VendorType::Meter],
            },
        ]
    }

    fn link_url(&self, token: &str) -> String {
        format!("https://gateway.example/link/{token}")
    }
}

struct Api {
    app: axum::Router,
    store: Arc<MemoryStore>,
    token: String,
    start: DateTime<Utc>,
}

async fn api(linker: bool) -> Api {
    let start: DateTime<Utc> = "2026-03-01T08:00:00Z".parse().unwrap();
    let clock = Arc::new(ManualClock::new(start));
    let store = Arc::new(MemoryStore::new());
    let client = ClientCredentials { client_id: "client-a".into(), client_secret: "s3cret".into() };
    create_client(store.as_ref(), &client, "2024-10-01", start).await.unwrap();
    let dyn_store: Arc<dyn Store> = store.clone();
    let mut state = ApiState::new(dyn_store, clock, ApiConfig::default());
    if linker {
        state = state.with_linker(Arc::new(TwoVendors));
    }
    let app = router(state);
    let response = app
        .clone()
        .oneshot(
            Request::post("/oauth2/token")
                .header(header::AUTHORIZATION, "Basic Y2xpZW50LWE6czNjcmV0")
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from("grant_type=client_credentials"))
                .unwrap(),
        )
        .await
        .unwrap();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let body: Value = serde_json::from_slice(&bytes).unwrap();
    let token = body["access_token"].as_str().unwrap().to_string();
    Api { app, store, token, start }
}

async fn post(api: &Api, path: &str, body: &str, bearer: bool) -> (StatusCode, String, Value) {
    let mut request = Request::post(path).header(header::CONTENT_TYPE, "application/json");
    if bearer {
        request = request.header(header::AUTHORIZATION, format!("Bearer {}", api.token));
    }
    let response =
        api.app.clone().oneshot(request.body(Body::from(body.to_string())).unwrap()).await.unwrap();
    let status = response.status();
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let body = if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).unwrap() };
    (status, content_type, body)
}

fn valid() -> Value {
    json!({
        "vendor": "TESLA",
        "vendorType": "vehicle",
        "scopes": ["vehicle:read:data", "vehicle:control:charging"],
        "language": "en-GB",
        "redirectUri": "https://app.example/callback/enode",
        "colorScheme": "light"
    })
}

#[tokio::test]
async fn link_returns_a_single_use_session_valid_for_a_day() {
    let api = self::api(true).await;
    let (status, _, body) = post(&api, "/users/user-1/link", &valid().to_string(), true).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let token = body["linkToken"].as_str().unwrap();
    assert!(token.len() >= 40, "256 random bits: {token}");
    assert_eq!(body["linkUrl"], format!("https://gateway.example/link/{token}"));
    assert_eq!(body.as_object().unwrap().len(), 2);
    let LinkSessionLookup::Open(session) =
        api.store.get_link_session(&link_token_hash(token), api.start).await.unwrap()
    else {
        panic!("session not stored")
    };
    assert_eq!(session.user_id, "user-1");
    assert_eq!(session.client_id, "client-a");
    assert_eq!(session.vendor.as_deref(), Some("TESLA"));
    assert_eq!(session.vendor_type, Some(VendorType::Vehicle));
    assert_eq!(session.scopes, ["vehicle:read:data", "vehicle:control:charging"]);
    assert_eq!(session.language, "en-GB");
    assert_eq!(session.color_scheme, "light");
    assert_eq!(session.redirect_uri, "https://app.example/callback/enode");
    assert_eq!(session.expires_at - session.created_at, chrono::TimeDelta::hours(24));
    // The token itself is not what the store is keyed by.
    assert_eq!(
        api.store.get_link_session(token, api.start).await.unwrap(),
        LinkSessionLookup::NotFound
    );

    // Minimal body: no vendor (brand selection on the page), type inferred from the scopes,
    // default color scheme; a second call makes a different token.
    let minimal = json!({
        "scopes": ["inverter:read:data"],
        "language": "browser",
        "redirectUri": "myapp://linked"
    });
    let (status, _, second) = post(&api, "/users/user-1/link", &minimal.to_string(), true).await;
    assert_eq!(status, StatusCode::OK, "{second}");
    assert_ne!(second["linkToken"], body["linkToken"]);
    let token = second["linkToken"].as_str().unwrap();
    let LinkSessionLookup::Open(session) =
        api.store.get_link_session(&link_token_hash(token), api.start).await.unwrap()
    else {
        panic!("session not stored")
    };
    assert_eq!((session.vendor, session.vendor_type), (None, None));
    assert_eq!(session.color_scheme, "system");
}

#[tokio::test]
async fn link_rejects_each_bad_field_naming_it() {
    let api = self::api(true).await;
    let with = |field: &str, value: Value| {
        let mut body = valid();
        body[field] = value;
        body
    };
    let without = |field: &str| {
        let mut body = valid();
        body.as_object_mut().unwrap().remove(field);
        body
    };
    let long_uri = format!("https://app.example/{}", "a".repeat(500));
    let cases: Vec<(Value, &str)> = vec![
        (with("vendor", json!("VOLKSWAGEN")), "\"vendor\""),
        (with("vendor", json!(7)), "\"vendor\""),
        (with("vendorType", json!("boat")), "\"vendorType\""),
        (with("vendorType", json!("inverter")), "\"scopes\""),
        (with("scopes", json!([])), "\"scopes\""),
        (with("scopes", json!("vehicle:read:data")), "\"scopes\""),
        (with("scopes", json!(["vehicle:read:everything"])), "\"scopes\""),
        (with("scopes", json!(["vehicle:control:charging"])), "\"scopes\""),
        (without("scopes"), "\"scopes\""),
        (with("language", json!("xx-XX")), "\"language\""),
        (without("language"), "\"language\""),
        (with("redirectUri", json!("/relative/path")), "\"redirectUri\""),
        (with("redirectUri", json!("https://")), "\"redirectUri\""),
        (with("redirectUri", json!(long_uri)), "\"redirectUri\""),
        (without("redirectUri"), "\"redirectUri\""),
        (with("colorScheme", json!("sepia")), "\"colorScheme\""),
        (with("username", json!("bob")), "\"username\""),
        // Tesla cannot link an inverter, although the scopes are consistent.
        (
            json!({"vendor": "TESLA", "vendorType": "inverter", "scopes": ["inverter:read:data"],
                   "language": "en-US", "redirectUri": "https://app.example/cb"}),
            "\"vendorType\"",
        ),
        // Nobody here links thermostats.
        (
            json!({"scopes": ["hvac:read:data"], "language": "en-US",
                   "redirectUri": "https://app.example/cb"}),
            "\"scopes\"",
        ),
    ];
    for (body, field) in cases {
        let (status, content_type, problem) =
            post(&api, "/users/user-1/link", &body.to_string(), true).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body} -> {problem}");
        assert_eq!(content_type, "application/problem+json");
        let detail = problem["detail"].as_str().unwrap();
        assert!(detail.contains(field), "{body}: {detail:?} should name {field}");
    }
    for raw in ["{not json", "[1,2]", ""] {
        let (status, _, problem) = post(&api, "/users/user-1/link", raw, true).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{raw:?} -> {problem}");
    }
}

#[tokio::test]
async fn link_needs_a_token_and_a_link_page() {
    let api = self::api(true).await;
    let (status, _, _) = post(&api, "/users/user-1/link", &valid().to_string(), false).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let without = self::api(false).await;
    let (status, content_type, problem) =
        post(&without, "/users/user-1/link", &valid().to_string(), true).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{problem}");
    assert_eq!(content_type, "application/problem+json");
    let (status, _, _) = post(&without, "/assets/x/relink", "{}", true).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn relink_binds_the_session_to_the_assets_account() {
    let api = self::api(true).await;
    // The asset's user belongs to the calling client (another client's asset is unknown).
    api.store
        .put_user(oemgate_store::UserRecord {
            id: "user-9".into(),
            client_id: "client-a".into(),
            created_at: api.start,
        })
        .await
        .unwrap();
    api.store
        .put_device(DeviceRecord {
            device: DeviceRef {
                id: "veh-1".into(),
                user_id: "user-9".into(),
                device_type: VendorType::Vehicle,
                vendor_id: "VIN1".into(),
                site_id: None,
            },
            vendor: "TESLA".into(),
            account_id: "tesla-account-1".into(),
            created_at: api.start,
        })
        .await
        .unwrap();
    let body = json!({"language": "nb-NO", "redirectUri": "https://app.example/relinked"});
    let (status, _, response) = post(&api, "/assets/veh-1/relink", &body.to_string(), true).await;
    assert_eq!(status, StatusCode::OK, "{response}");
    let token = response["linkToken"].as_str().unwrap();
    assert_eq!(response["linkUrl"], format!("https://gateway.example/link/{token}"));
    let LinkSessionLookup::Open(session) =
        api.store.get_link_session(&link_token_hash(token), api.start).await.unwrap()
    else {
        panic!("session not stored")
    };
    assert_eq!(session.user_id, "user-9");
    assert_eq!(session.vendor.as_deref(), Some("TESLA"));
    assert_eq!(session.relink_account_id.as_deref(), Some("tesla-account-1"));
    assert_eq!(session.language, "nb-NO");

    // An asset whose account still has valid credentials is already linked: 400.
    let account = oemgate_core::AccountRef {
        user_id: "user-9".into(),
        vendor: "TESLA".into(),
        account_id: "tesla-account-1".into(),
        credentials: oemgate_core::Credentials::default(),
    };
    api.store.put_account(account, 0).await.unwrap();
    let (status, _, problem) = post(&api, "/assets/veh-1/relink", &body.to_string(), true).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");
    assert!(problem["detail"].as_str().unwrap().contains("already linked"), "{problem}");
    // Once invalidated it can be relinked again.
    api.store.invalidate_account("tesla-account-1", api.start).await.unwrap();
    let (status, _, problem) = post(&api, "/assets/veh-1/relink", &body.to_string(), true).await;
    assert_eq!(status, StatusCode::OK, "{problem}");

    // Unknown asset: 400, as the reference documents.
    let (status, _, problem) = post(&api, "/assets/nope/relink", &body.to_string(), true).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");
    assert!(problem["detail"].as_str().unwrap().contains("nope"));
    // Bad fields name the field; link-only fields are not accepted.
    for (bad, field) in [
        (json!({"language": "en-US"}), "\"redirectUri\""),
        (json!({"language": "klingon", "redirectUri": "https://a.example/"}), "\"language\""),
        (
            json!({"language": "en-US", "redirectUri": "https://a.example/", "scopes": []}),
            "\"scopes\"",
        ),
    ] {
        let (status, _, problem) = post(&api, "/assets/veh-1/relink", &bad.to_string(), true).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad} -> {problem}");
        assert!(problem["detail"].as_str().unwrap().contains(field), "{problem}");
    }
}

#[tokio::test]
async fn another_clients_user_and_asset_cannot_be_linked() {
    let api = self::api(true).await;
    // User "theirs" and its vehicle belong to client-b; the token is client-a's.
    api.store
        .put_user(oemgate_store::UserRecord {
            id: "theirs".into(),
            client_id: "client-b".into(),
            created_at: api.start,
        })
        .await
        .unwrap();
    api.store
        .put_device(DeviceRecord {
            device: DeviceRef {
                id: "their-car".into(),
                user_id: "theirs".into(),
                device_type: VendorType::Vehicle,
                vendor_id: "VIN2".into(),
                site_id: None,
            },
            vendor: "TESLA".into(),
            account_id: "their-account".into(),
            created_at: api.start,
        })
        .await
        .unwrap();
    let (status, content_type, problem) =
        post(&api, "/users/theirs/link", &valid().to_string(), true).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{problem}");
    assert_eq!(content_type, "application/problem+json");
    assert_eq!(problem["title"], "User does not exist");
    // The reference answers 400 for an asset that cannot be relinked; another client's is
    // told apart from an unknown one in no way.
    let body = json!({"language": "en-US", "redirectUri": "https://app.example/relinked"});
    let (status, _, theirs) = post(&api, "/assets/their-car/relink", &body.to_string(), true).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{theirs}");
    let (_, _, unknown) = post(&api, "/assets/no-car/relink", &body.to_string(), true).await;
    assert_eq!(
        theirs["detail"].as_str().unwrap().replace("their-car", "X"),
        unknown["detail"].as_str().unwrap().replace("no-car", "X")
    );
    assert!(theirs.get("linkToken").is_none());
}
