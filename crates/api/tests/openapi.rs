//! The OpenAPI document: served, well formed, in sync with the committed copy, and naming
//! exactly the routes the router serves.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use serde_json::Value;

/// The committed copy, which reviewers read in diffs.
const COMMITTED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/openapi.json");

async fn document() -> Value {
    let api = common::api().await;
    let request = Request::get("/openapi.json").body(Body::empty()).unwrap();
    let response = api.send(request).await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.body);
    response.body
}

#[tokio::test]
async fn openapi_document_is_in_sync() {
    let generated = document().await;
    let pretty = serde_json::to_string_pretty(&generated).unwrap() + "\n";
    if std::env::var_os("OEMGATE_UPDATE_OPENAPI").is_some() {
        std::fs::write(COMMITTED, &pretty).unwrap();
    }
    let committed = std::fs::read_to_string(COMMITTED).unwrap_or_default();
    assert!(
        committed == pretty,
        "docs/openapi.json differs from the document the routes generate; run \
         `OEMGATE_UPDATE_OPENAPI=1 cargo test -p oemgate-api --test openapi` and review the diff"
    );
}

#[tokio::test]
async fn every_operation_is_well_formed() {
    let doc = document().await;
    assert_eq!(doc["openapi"], "3.1.0");
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    let mut ids = BTreeSet::new();
    for (path, methods) in doc["paths"].as_object().unwrap() {
        let templated: BTreeSet<&str> = path
            .split('/')
            .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .collect();
        for (method, op) in methods.as_object().unwrap() {
            let id = op["operationId"].as_str().unwrap();
            assert!(ids.insert(id.to_string()), "operationId {id} used twice");
            let declared: BTreeSet<&str> = op["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|p| p["in"] == "path")
                .map(|p| p["name"].as_str().unwrap())
                .collect();
            assert_eq!(templated, declared, "{method} {path}: path parameters");
            let responses = op["responses"].as_object().unwrap();
            assert!(
                responses.keys().any(|s| s.starts_with('2')),
                "{method} {path} documents no success"
            );
            assert!(responses.contains_key("400"), "{method} {path}: 400 (Enode-Version)");
            if op["security"] != serde_json::json!([]) {
                assert!(responses.contains_key("401"), "{method} {path}: 401");
            }
        }
    }
    // Every $ref resolves.
    let text = doc.to_string();
    for piece in text.split("\"$ref\":\"#/components/").skip(1) {
        let target = piece.split('"').next().unwrap();
        let (section, name) = target.split_once('/').unwrap();
        assert!(doc["components"][section].get(name).is_some(), "unresolved $ref {target}");
    }
    assert!(schemas.contains_key("Problem"));
}

/// Each documented operation is routed: without a token an authenticated one answers 401
/// (not the router's unknown-route 404 or 405), a public one anything but those.
#[tokio::test]
async fn every_documented_operation_is_routed() {
    let api = common::api().await;
    let doc = document().await;
    let mut count = 0;
    for (path, methods) in doc["paths"].as_object().unwrap() {
        let concrete: String = path
            .split('/')
            .map(|s| if s.starts_with('{') { "x" } else { s })
            .collect::<Vec<_>>()
            .join("/");
        for (method, op) in methods.as_object().unwrap() {
            count += 1;
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let request = Request::builder()
                .method(method.clone())
                .uri(&concrete)
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from("{}"))
                .unwrap();
            let response = api.send(request).await;
            if op["security"] == serde_json::json!([]) {
                assert_ne!(response.status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
                assert!(
                    !response.body["detail"].as_str().unwrap_or_default().contains("No such route"),
                    "{method} {path}: {}",
                    response.body
                );
            } else {
                assert_eq!(response.status, StatusCode::UNAUTHORIZED, "{method} {path}");
            }
        }
    }
    // The Enode paths (HEM and webhooks excepted) and oemgate's own few.
    assert!(count >= 85, "only {count} operations documented");
}
