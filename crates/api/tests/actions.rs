//! Every action route through the router: creating (200 PENDING, 400 naming the field, 404
//! for unknown ids, another client's devices and devices of another type), reading and
//! cancelling (200, 404, 409 with the resolved action). The executor has no adapters: the
//! API's side of an action ends once it is stored, which is what these tests look at (the
//! commands themselves are tested end to end).
#![allow(clippy::unwrap_used)]

use axum::http::{Method, StatusCode, header};
use chrono::{DateTime, Utc};
use oemgate_core::VendorType;
use oemgate_store::ActionStore;
use serde_json::{Value, json};

mod common;

use common::{Api, Response, SeedDevice, api};

fn start() -> DateTime<Utc> {
    "2030-03-01T08:00:00Z".parse().unwrap()
}

impl Api {
    async fn user(&self, id: &str, client: &str) {
        self.seed_user(id, client, start()).await;
    }

    async fn device(&self, id: &str, user: &str, kind: VendorType) {
        let account = format!("acc-{user}");
        let resource = json!({ "id": id, "userId": user, "vendor": "TESLA" });
        let seed = SeedDevice {
            id,
            user,
            kind,
            vendor: "TESLA",
            account: &account,
            at: start(),
            resource: Some(resource),
        };
        self.seed_device(seed).await;
    }

    async fn post(&self, token: &str, path: &str, body: Value) -> Response {
        self.call(token, Method::POST, path, Some(body)).await
    }
}

/// Client-a's user "ua" owns va (vehicle), ca (charger), ba (battery), ha (HVAC); client-b's
/// user "ub" owns vb, cb, bb, hb.
async fn world() -> (Api, String, String) {
    let api = api().await;
    api.user("ua", "client-a").await;
    api.user("ub", "client-b").await;
    for (suffix, user) in [("a", "ua"), ("b", "ub")] {
        for (prefix, kind) in [
            ("v", VendorType::Vehicle),
            ("c", VendorType::Charger),
            ("b", VendorType::Battery),
            ("h", VendorType::Hvac),
        ] {
            api.device(&format!("{prefix}{suffix}"), user, kind).await;
        }
    }
    let a = api.token("client-a").await;
    let b = api.token("client-b").await;
    (api, a, b)
}

/// A creating route: its path on client-a's device, a valid body, and bad bodies with the
/// field each must name.
struct Create {
    path: &'static str,
    valid: Value,
    bad: Vec<(Value, &'static str)>,
    target_type: &'static str,
}

fn creates() -> Vec<Create> {
    let charging_bad = vec![
        (json!({ "action": "GO" }), "action"),
        (json!({}), "action"),
        (json!({ "action": 1 }), "action"),
    ];
    let current_bad = vec![
        (json!({ "maxCurrent": "ten" }), "maxCurrent"),
        (json!({}), "maxCurrent"),
        (json!({ "maxCurrent": -3 }), "maxCurrent"),
        (json!({ "maxCurrent": 0 }), "maxCurrent"),
    ];
    vec![
        Create {
            path: "/vehicles/va/charging",
            valid: json!({ "action": "START" }),
            bad: charging_bad.clone(),
            target_type: "vehicle",
        },
        Create {
            path: "/vehicles/va/max-current",
            valid: json!({ "maxCurrent": 16 }),
            bad: current_bad.clone(),
            target_type: "vehicle",
        },
        Create {
            path: "/chargers/ca/charging",
            valid: json!({ "action": "STOP" }),
            bad: charging_bad,
            target_type: "charger",
        },
        Create {
            path: "/chargers/ca/max-current",
            valid: json!({ "maxCurrent": 10 }),
            bad: current_bad,
            target_type: "charger",
        },
        Create {
            path: "/batteries/ba/operation-mode",
            valid: json!({ "operationMode": "IMPORT_FOCUS" }),
            bad: vec![
                (json!({ "operationMode": "TURBO" }), "operationMode"),
                (json!({ "mode": "IDLE" }), "operationMode"),
            ],
            target_type: "battery",
        },
        Create {
            path: "/hvacs/ha/permanent-hold",
            valid: json!({ "mode": "HEAT", "heatSetpoint": 21.5 }),
            bad: vec![
                (json!({ "mode": "WARM" }), "mode"),
                (json!({ "mode": "HEAT" }), "heatSetpoint"),
                (json!({ "mode": "HEAT", "heatSetpoint": "warm" }), "heatSetpoint"),
                (json!({ "mode": "COOL", "coolSetpoint": 500 }), "coolSetpoint"),
            ],
            target_type: "hvac",
        },
        Create {
            path: "/hvacs/ha/follow-schedule",
            valid: json!({}),
            bad: vec![(json!([1]), "")],
            target_type: "hvac",
        },
    ]
}

/// The path on another device: `/vehicles/va/charging` -> `/vehicles/{id}/charging`.
fn on(path: &str, id: &str) -> String {
    let mut segments: Vec<&str> = path.split('/').collect();
    segments[2] = id;
    segments.join("/")
}

#[tokio::test]
async fn every_creating_route_answers_200_400_and_404() {
    let (api, a, b) = world().await;
    for create in creates() {
        let path = create.path;
        for (body, field) in &create.bad {
            let response = api.post(&a, path, body.clone()).await;
            if field.is_empty() {
                response.is_problem(StatusCode::BAD_REQUEST);
            } else {
                response.names(field);
            }
        }
        let response = api.raw(&a, Method::POST, path, "{not json").await;
        response.is_problem(StatusCode::BAD_REQUEST);
        assert!(response.detail().contains("JSON"), "{path}: {}", response.detail());

        // Another client's device (same type), an unknown id, a device of another type.
        let own = path.split('/').nth(2).unwrap();
        let other_type = if own == "va" { "ca" } else { "va" };
        let other_client = format!("{}b", &own[..1]);
        for id in [other_client.as_str(), "unknown", other_type] {
            let response = api.post(&a, &on(path, id), create.valid.clone()).await;
            response.is_problem(StatusCode::NOT_FOUND);
            assert!(response.detail().contains(id), "{path} on {id}: {}", response.detail());
        }
        api.post(&b, path, create.valid.clone()).await.is_problem(StatusCode::NOT_FOUND);

        let created = api.post(&a, path, create.valid.clone()).await;
        assert_eq!(created.status, StatusCode::OK, "{path}: {}", created.body);
        assert_eq!(created.headers[header::CONTENT_TYPE], "application/json");
        assert_eq!(created.body["state"], "PENDING", "{}", created.body);
        assert_eq!(created.body["targetId"], own);
        assert_eq!(created.body["targetType"], create.target_type);
        assert_eq!(created.body["userId"], "ua");
        // The same request while it is pending answers the same action.
        let again = api.post(&a, path, create.valid.clone()).await;
        assert_eq!(again.status, StatusCode::OK);
        assert_eq!(again.body["id"], created.body["id"]);
    }
    // Nothing was created for client-b's devices.
    for id in ["vb", "cb", "bb", "hb"] {
        assert!(api.store.pending_actions_for(id).await.unwrap().is_empty(), "{id}");
    }
}

#[tokio::test]
async fn every_collections_actions_are_read_and_cancelled_by_their_client_only() {
    let (api, a, b) = world().await;
    let bodies = [
        ("/vehicles/va/charging", json!({ "action": "START" })),
        ("/chargers/ca/charging", json!({ "action": "START" })),
        ("/batteries/ba/operation-mode", json!({ "operationMode": "IDLE" })),
        ("/hvacs/ha/follow-schedule", json!({})),
    ];
    let mut ids = Vec::new();
    for (path, body) in bodies {
        let created = api.post(&a, path, body).await;
        assert_eq!(created.status, StatusCode::OK, "{path}: {}", created.body);
        ids.push(created.body["id"].as_str().unwrap().to_string());
    }
    let [vehicle, charger, battery, hvac] = [&ids[0], &ids[1], &ids[2], &ids[3]];
    let actions = [
        (
            format!("/vehicles/actions/{vehicle}"),
            format!("/vehicles/actions/{vehicle}/cancel"),
            format!("/chargers/actions/{vehicle}"),
        ),
        (
            format!("/chargers/actions/{charger}"),
            format!("/chargers/actions/{charger}/cancel"),
            format!("/batteries/actions/{charger}"),
        ),
        (
            format!("/batteries/actions/{battery}"),
            format!("/batteries/actions/{battery}/cancel"),
            format!("/hvacs/actions/{battery}"),
        ),
        (
            format!("/hvacs/actions/{hvac}"),
            format!("/hvacs/actions/{hvac}/cancel"),
            format!("/vehicles/actions/{hvac}"),
        ),
    ];
    for (read, cancel, elsewhere) in &actions {
        let got = api.get(&a, read).await;
        assert_eq!(got.status, StatusCode::OK, "{read}: {}", got.body);
        assert_eq!(got.body["state"], "PENDING");
        // Another client, another collection, an unknown id: 404, for reads and cancels.
        api.get(&b, read).await.is_problem(StatusCode::NOT_FOUND);
        api.get(&a, elsewhere).await.is_problem(StatusCode::NOT_FOUND);
        api.call(&b, Method::POST, cancel, None).await.is_problem(StatusCode::NOT_FOUND);
        let elsewhere_cancel = format!("{elsewhere}/cancel");
        api.call(&a, Method::POST, &elsewhere_cancel, None).await.is_problem(StatusCode::NOT_FOUND);
        assert_eq!(api.get(&a, read).await.body["state"], "PENDING", "{read}: untouched");

        let cancelled = api.call(&a, Method::POST, cancel, None).await;
        assert_eq!(cancelled.status, StatusCode::OK, "{cancel}: {}", cancelled.body);
        assert_eq!(cancelled.body["state"], "CANCELLED");
        assert_eq!(cancelled.body["failureReason"]["type"], "REQUESTED_CANCELLATION");
        // Resolved already: 409 carrying the action as it is, not a problem.
        let again = api.call(&a, Method::POST, cancel, None).await;
        assert_eq!(again.status, StatusCode::CONFLICT, "{cancel}: {}", again.body);
        assert_eq!(again.headers[header::CONTENT_TYPE], "application/json");
        assert_eq!(again.body, cancelled.body);
        assert_eq!(api.get(&a, read).await.body, cancelled.body);
    }
    let unknown = uuid::Uuid::new_v4();
    for plural in ["vehicles", "chargers", "batteries", "hvacs"] {
        let read = format!("/{plural}/actions/{unknown}");
        api.get(&a, &read).await.is_problem(StatusCode::NOT_FOUND);
        let cancel = format!("{read}/cancel");
        api.call(&a, Method::POST, &cancel, None).await.is_problem(StatusCode::NOT_FOUND);
    }
}
