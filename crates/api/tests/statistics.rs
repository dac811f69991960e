//! Inverter and charging statistics through the router, over a memory store whose history
//! the test writes directly (the poller's part is covered in the scheduler and store crates).
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use chrono::{DateTime, Utc};
use http_body_util::BodyExt;
use oemgate_api::{ApiConfig, ApiState, ClientCredentials, create_client, router};
use oemgate_core::{DeviceRef, ManualClock, VendorType};
use oemgate_store::{
    DeviceRecord, DeviceStore, HistoryStore, MemoryStore, Sample, Snapshot, Store, UserRecord,
    UserStore,
};
use serde_json::{Value, json};
use tower::ServiceExt;

struct Api {
    app: axum::Router,
    store: Arc<MemoryStore>,
    tokens: Vec<String>,
}

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

async fn api() -> Api {
    let start = at("2030-03-01T08:00:00Z");
    let clock = Arc::new(ManualClock::new(start));
    let store = Arc::new(MemoryStore::new());
    for client in ["client-a", "client-b"] {
        let credentials = ClientCredentials {
            client_id: client.into(),
            client_secret: format!("{client}-secret"),
        };
        create_client(store.as_ref(), &credentials, "2024-10-01", start).await.unwrap();
    }
    let dyn_store: Arc<dyn Store> = store.clone();
    let app = router(ApiState::new(dyn_store, clock, ApiConfig::default()));
    let mut api = Api { app, store, tokens: Vec::new() };
    for client in ["client-a", "client-b"] {
        let request = Request::post("/oauth2/token")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(format!(
                "grant_type=client_credentials&client_id={client}&client_secret={client}-secret"
            )))
            .unwrap();
        let (_, body) = api.raw(request).await;
        api.tokens.push(body["access_token"].as_str().unwrap().to_string());
    }
    for (user, client) in [("u1", "client-a"), ("u2", "client-a"), ("other", "client-b")] {
        api.store
            .put_user(UserRecord { id: user.into(), client_id: client.into(), created_at: start })
            .await
            .unwrap();
    }
    api.device("inv1", "u1", VendorType::Inverter, json!({"timezone": "Europe/Oslo"})).await;
    api.device("veh1", "u1", VendorType::Vehicle, json!({})).await;
    api.device("veh2", "u2", VendorType::Vehicle, json!({})).await;
    for (t, kwh) in [
        ("2030-02-09T22:50:00Z", 100.0),
        ("2030-02-09T23:05:00Z", 101.0),
        ("2030-02-09T23:20:00Z", 103.0),
    ] {
        let sample = Sample { at: at(t), kw: Some(1.0), kwh: Some(kwh), active: Some(true) };
        api.store.append_sample("inv1", sample, 100).await.unwrap();
    }
    for (t, kw, charging) in [
        ("2030-02-20T09:30:00Z", 0.0, false),
        ("2030-02-20T10:00:00Z", 10.0, true),
        ("2030-02-20T10:30:00Z", 10.0, true),
        ("2030-02-20T11:00:00Z", 0.0, false),
    ] {
        let sample = Sample { at: at(t), kw: Some(kw), kwh: None, active: Some(charging) };
        api.store.append_sample("veh1", sample.clone(), 100).await.unwrap();
        api.store.append_sample("veh2", sample, 100).await.unwrap();
    }
    api
}

impl Api {
    async fn device(&self, id: &str, user: &str, kind: VendorType, extra: Value) {
        let created = at("2030-01-01T00:00:00Z");
        let device = DeviceRef {
            id: id.into(),
            user_id: user.into(),
            device_type: kind,
            vendor_id: format!("V-{id}"),
            site_id: None,
        };
        let record = DeviceRecord {
            device,
            vendor: "TESLA".into(),
            account_id: "acc".into(),
            created_at: created,
        };
        self.store.put_device(record).await.unwrap();
        let mut resource = json!({ "id": id, "userId": user });
        if let (Value::Object(r), Value::Object(e)) = (&mut resource, extra) {
            r.extend(e);
        }
        let snapshot = Snapshot {
            device_id: id.into(),
            user_id: user.into(),
            device_type: kind,
            version: 0,
            observed_at: created,
            resource,
        };
        self.store.put_snapshot(snapshot, 0).await.unwrap();
    }

    async fn raw(&self, request: Request<Body>) -> (StatusCode, Value) {
        let response = self.app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let body =
            if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).unwrap() };
        (status, body)
    }

    /// GET as client `client` (0 = client-a, 1 = client-b).
    async fn get(&self, client: usize, path: &str) -> (StatusCode, Value) {
        let request = Request::get(path)
            .header(header::AUTHORIZATION, format!("Bearer {}", self.tokens[client]))
            .body(Body::empty())
            .unwrap();
        self.raw(request).await
    }

    async fn problem(&self, client: usize, path: &str, status: StatusCode, needle: &str) {
        let (got, body) = self.get(client, path).await;
        assert_eq!(got, status, "{path}: {body}");
        let detail = body["detail"].as_str().unwrap_or_default();
        assert!(detail.contains(needle), "{path}: {needle:?} not in {body}");
    }
}

#[tokio::test]
async fn inverter_day_in_quarter_hours_in_the_inverters_zone() {
    let api = api().await;
    let (status, body) = api.get(0, "/inverters/inv1/statistics?year=2030&month=2&day=10").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["timezone"], "Europe/Oslo");
    let entry = &body["resolutions"]["QUARTER_HOUR"];
    assert_eq!(entry["unit"], "kWh");
    let data = entry["data"].as_array().unwrap();
    assert_eq!(data.len(), 96);
    assert_eq!(data[0], json!({"date": "2030-02-10T00:00:00+01:00", "value": 1.0}));
    assert_eq!(data[1], json!({"date": "2030-02-10T00:15:00+01:00", "value": 2.0}));
    assert_eq!(data[2]["value"], Value::Null);
    assert!(body.get("retryAfter").is_none());
}

#[tokio::test]
async fn inverter_month_in_days_and_202_while_the_interval_runs() {
    let api = api().await;
    let (status, body) = api.get(0, "/inverters/inv1/statistics?year=2030&month=2").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let data = body["resolutions"]["DAY"]["data"].as_array().unwrap();
    assert_eq!(data.len(), 28);
    assert_eq!(data[9], json!({"date": "2030-02-10T00:00:00+01:00", "value": 3.0}));
    assert_eq!(data[0]["value"], Value::Null);
    // The clock is at 2030-03-01T08:00Z: March is still being filled.
    let (status, body) = api.get(0, "/inverters/inv1/statistics?year=2030&month=3").await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["retryAfter"], "2030-03-01T08:15:00.000Z");
    assert_eq!(body["resolutions"]["DAY"]["data"].as_array().unwrap().len(), 31);
}

#[tokio::test]
async fn inverter_statistics_errors() {
    let api = api().await;
    let base = "/inverters/inv1/statistics";
    api.problem(0, &format!("{base}?month=2"), StatusCode::BAD_REQUEST, "year").await;
    api.problem(0, &format!("{base}?year=2030"), StatusCode::BAD_REQUEST, "month").await;
    api.problem(0, &format!("{base}?year=2030&month=13"), StatusCode::BAD_REQUEST, "month").await;
    api.problem(0, &format!("{base}?year=abc&month=1"), StatusCode::BAD_REQUEST, "year").await;
    api.problem(0, &format!("{base}?year=2030&month=2&day=30"), StatusCode::BAD_REQUEST, "day")
        .await;
    let query = "statistics?year=2030&month=2";
    api.problem(0, &format!("/inverters/nope/{query}"), StatusCode::NOT_FOUND, "nope").await;
    // A vehicle is no inverter; another client's inverter does not exist for this one.
    api.problem(0, &format!("/inverters/veh1/{query}"), StatusCode::NOT_FOUND, "veh1").await;
    api.problem(1, &format!("/inverters/inv1/{query}"), StatusCode::NOT_FOUND, "inv1").await;
}

const DAY: &str = "startDate=2030-02-20T00:00:00Z&endDate=2030-02-21T00:00:00Z";

#[tokio::test]
async fn charging_statistics_per_bucket() {
    let api = api().await;
    let (status, body) =
        api.get(0, &format!("/users/u1/statistics/charging?{DAY}&type=vehicle")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let buckets = body.as_array().unwrap();
    assert_eq!(buckets.len(), 1, "{body}");
    assert_eq!(buckets[0]["date"], "2030-02-20T00:00:00.000Z");
    assert_eq!(buckets[0]["kwhSum"], 10.0);
    assert_eq!(buckets[0]["kw"], json!({"min": 0.0, "max": 10.0, "mean": 5.0}));
    for field in ["price", "costSum", "nonSmartPrice", "estimatedSavings"] {
        assert!(buckets[0].get(field).is_some(), "{field} missing");
    }

    let (_, body) = api
        .get(
            0,
            &format!("/users/u1/statistics/charging?{DAY}&type=vehicle&resolution=HOUR&id=veh1"),
        )
        .await;
    let got: Vec<(String, f64)> = body
        .as_array()
        .unwrap()
        .iter()
        .map(|b| (b["date"].as_str().unwrap().to_string(), b["kwhSum"].as_f64().unwrap()))
        .collect();
    assert_eq!(
        got,
        [
            ("2030-02-20T09:00:00.000Z".to_string(), 0.0),
            ("2030-02-20T10:00:00.000Z".to_string(), 10.0),
            ("2030-02-20T11:00:00.000Z".to_string(), 0.0)
        ]
    );
    // No chargers, and a location nothing is assigned to: empty.
    let (status, body) =
        api.get(0, &format!("/users/u1/statistics/charging?{DAY}&type=charger")).await;
    assert_eq!((status, body), (StatusCode::OK, json!([])));
    let location = "4eaeb363-296d-4ccc-a973-7805e6f400bd";
    let (_, body) = api
        .get(0, &format!("/users/u1/statistics/charging?{DAY}&type=vehicle&locationId={location}"))
        .await;
    assert_eq!(body, json!([]));
}

#[tokio::test]
async fn charging_sessions_of_the_user() {
    let api = api().await;
    let (status, body) =
        api.get(0, &format!("/users/u1/statistics/charging/sessions?{DAY}&type=vehicle")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let sessions = body.as_array().unwrap();
    assert_eq!(sessions.len(), 1, "{body}");
    let s = &sessions[0];
    assert_eq!(s["id"], "veh1");
    assert_eq!(s["locationId"], Value::Null);
    assert_eq!(s["from"], "2030-02-20T10:00:00.000Z");
    assert_eq!(s["to"], "2030-02-20T11:00:00.000Z");
    assert_eq!(s["kwhSum"], 10.0);
    assert_eq!(s["kw"], json!({"min": 10.0, "max": 10.0, "mean": 10.0}));
    // A range after the session: none.
    let (_, body) = api
        .get(
            0,
            "/users/u1/statistics/charging/sessions?startDate=2030-02-20T12:00:00Z&type=vehicle",
        )
        .await;
    assert_eq!(body, json!([]));
}

#[tokio::test]
async fn charging_statistics_errors() {
    let api = api().await;
    for route in ["charging", "charging/sessions"] {
        let base = format!("/users/u1/statistics/{route}");
        api.problem(0, &format!("{base}?type=vehicle"), StatusCode::BAD_REQUEST, "startDate").await;
        api.problem(
            0,
            &format!("{base}?startDate=yesterday&type=vehicle"),
            StatusCode::BAD_REQUEST,
            "startDate",
        )
        .await;
        api.problem(0, &format!("{base}?{DAY}"), StatusCode::BAD_REQUEST, "type").await;
        api.problem(0, &format!("{base}?{DAY}&type=battery"), StatusCode::BAD_REQUEST, "type")
            .await;
        api.problem(
            0,
            &format!(
                "{base}?startDate=2030-02-21T00:00:00Z&endDate=2030-02-20T00:00:00Z&type=vehicle"
            ),
            StatusCode::BAD_REQUEST,
            "endDate",
        )
        .await;
        api.problem(
            0,
            &format!("{base}?{DAY}&type=vehicle&locationId=x"),
            StatusCode::BAD_REQUEST,
            "locationId",
        )
        .await;
        // Unknown user, another client's user, another user's device, an unknown device.
        let q = format!("{DAY}&type=vehicle");
        api.problem(
            0,
            &format!("/users/nobody/statistics/{route}?{q}"),
            StatusCode::NOT_FOUND,
            "nobody",
        )
        .await;
        api.problem(1, &format!("{base}?{q}"), StatusCode::NOT_FOUND, "u1").await;
        api.problem(0, &format!("{base}?{q}&id=veh2"), StatusCode::NOT_FOUND, "veh2").await;
        api.problem(0, &format!("{base}?{q}&id=nope"), StatusCode::NOT_FOUND, "nope").await;
    }
    let base = "/users/u1/statistics/charging";
    api.problem(
        0,
        &format!("{base}?{DAY}&type=vehicle&resolution=DECADE"),
        StatusCode::BAD_REQUEST,
        "resolution",
    )
    .await;
    api.problem(
        0,
        &format!("{base}?{DAY}&type=vehicle&utcOffset=abc"),
        StatusCode::BAD_REQUEST,
        "utcOffset",
    )
    .await;
}

mod common;

/// A device of `user` (registered with a snapshot) and its charging history:
/// `(time, kW, charging)` samples.
async fn charging_device(
    api: &common::Api,
    id: &str,
    user: &str,
    kind: VendorType,
    resource: Value,
    samples: &[(&str, f64, bool)],
) {
    let mut resource = resource;
    resource["id"] = json!(id);
    resource["userId"] = json!(user);
    let created = at("2030-01-01T00:00:00Z");
    let seed = common::SeedDevice {
        id,
        user,
        kind,
        vendor: "EASEE",
        account: "acc",
        at: created,
        resource: Some(resource),
    };
    api.seed_device(seed).await;
    for (t, kw, charging) in samples {
        let sample = Sample { at: at(t), kw: Some(*kw), kwh: None, active: Some(*charging) };
        api.store.append_sample(id, sample, 1000).await.unwrap();
    }
}

/// Wednesday 2030-02-20 in Oslo (UTC+1): off-peak (1.5 per kWh) before 07:00 and from 22:00
/// local, peak (3.25) from 07:00 to 22:00 local on weekdays. The charger `box` at that
/// Location charges 4 kW from 06:30 to 07:30 local (05:30-06:30 UTC, across the change to
/// peak) and again 4 kW from 13:00 to 13:30 local (all peak).
const BOX_SAMPLES: [(&str, f64, bool); 5] = [
    ("2030-02-20T05:00:00Z", 0.0, false),
    ("2030-02-20T05:30:00Z", 4.0, true),
    ("2030-02-20T06:30:00Z", 0.0, false),
    ("2030-02-20T12:00:00Z", 4.0, true),
    ("2030-02-20T12:30:00Z", 0.0, false),
];

const FEB_20: &str = "startDate=2030-02-20T00:00:00Z&endDate=2030-02-21T00:00:00Z";

/// A user `u1` of client-a with a Location "Home" in Oslo under the tariff above; returns
/// the token and the location id.
async fn home_with_tariff(api: &common::Api) -> (String, String) {
    use axum::http::Method;
    let a = api.token("client-a").await;
    let body = json!({
        "name": "Home", "latitude": 59.91, "longitude": 10.75, "timezoneName": "Europe/Oslo"
    });
    let created = api.call(&a, Method::POST, "/users/u1/locations", Some(body)).await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.body);
    let home = created.body["id"].as_str().unwrap().to_string();
    let rates = json!([{ "name": "PEAK", "cost": "3.25" }, { "name": "OFF-PEAK", "cost": "1.5" }]);
    let put = api.call(&a, Method::PUT, "/tariffs/flex", Some(rates)).await;
    assert_eq!(put.status, StatusCode::NO_CONTENT, "{}", put.body);
    let weekdays = json!([0, 1, 2, 3, 4]);
    let schedule = json!({ "tariffId": "flex", "tariffIntervals": [
        { "name": "OFF-PEAK", "weekdays": weekdays, "from": "00:00", "to": "07:00" },
        { "name": "PEAK", "weekdays": weekdays, "from": "07:00", "to": "22:00" },
        { "name": "OFF-PEAK", "weekdays": weekdays, "from": "22:00", "to": "24:00" }
    ]});
    let linked =
        api.call(&a, Method::PUT, &format!("/locations/{home}/tariff"), Some(schedule)).await;
    assert_eq!(linked.status, StatusCode::NO_CONTENT, "{}", linked.body);
    (a, home)
}

fn price(body: &Value) -> (f64, f64, f64) {
    let p = &body["price"];
    (p["min"].as_f64().unwrap(), p["max"].as_f64().unwrap(), p["mean"].as_f64().unwrap())
}

fn close(got: f64, want: f64) {
    assert!((got - want).abs() < 1e-9, "got {got}, want {want}");
}

#[tokio::test]
async fn charging_is_priced_with_the_tariff_of_the_chargers_location() {
    use axum::http::Method;
    let api = common::api().await;
    let (a, home) = home_with_tariff(&api).await;
    let charger = json!({ "location": { "id": null, "lastUpdated": null } });
    charging_device(&api, "box", "u1", VendorType::Charger, charger, &BOX_SAMPLES).await;
    let placed = api.call(&a, Method::PUT, "/chargers/box", Some(json!({ "locationId": home })));
    assert_eq!(placed.await.status, StatusCode::OK);

    // Sessions: the first spans the change to peak: 2 kWh at 1.5 and 2 kWh at 3.25.
    let sessions =
        api.get(&a, &format!("/users/u1/statistics/charging/sessions?{FEB_20}&type=charger")).await;
    assert_eq!(sessions.status, StatusCode::OK, "{}", sessions.body);
    let list = sessions.body.as_array().unwrap();
    assert_eq!(list.len(), 2, "{}", sessions.body);
    assert_eq!(list[0]["locationId"], home.as_str());
    assert_eq!(list[0]["kwhSum"], 4.0);
    close(list[0]["costSum"].as_f64().unwrap(), 2.0 * 1.5 + 2.0 * 3.25);
    assert_eq!(price(&list[0]), (1.5, 3.25, (2.0 * 1.5 + 2.0 * 3.25) / 4.0));
    // The second is all peak: 2 kWh at 3.25.
    assert_eq!(list[1]["kwhSum"], 2.0);
    close(list[1]["costSum"].as_f64().unwrap(), 6.5);
    assert_eq!(price(&list[1]), (3.25, 3.25, 3.25));
    assert_eq!(list[1]["nonSmartPrice"], json!({"min": null, "max": null, "mean": null}));
    assert_eq!(list[1]["estimatedSavings"], Value::Null);

    // Hourly buckets (UTC): 05:00-06:00 UTC is 06:00-07:00 local, off-peak; 06:00-07:00 UTC
    // peak. Each holds one rate period's half of the first session.
    let hourly = api
        .get(&a, &format!("/users/u1/statistics/charging?{FEB_20}&type=charger&resolution=HOUR"))
        .await;
    type Row = (String, f64, f64, (f64, f64, f64));
    let got: Vec<Row> = hourly
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            let date = b["date"].as_str().unwrap().to_string();
            (date, b["kwhSum"].as_f64().unwrap(), b["costSum"].as_f64().unwrap(), price(b))
        })
        .collect();
    assert_eq!(
        got,
        [
            ("2030-02-20T05:00:00.000Z".to_string(), 2.0, 3.0, (1.5, 1.5, 1.5)),
            ("2030-02-20T06:00:00.000Z".to_string(), 2.0, 6.5, (3.25, 3.25, 3.25)),
            ("2030-02-20T12:00:00.000Z".to_string(), 2.0, 6.5, (3.25, 3.25, 3.25)),
        ]
    );
    // The day: 6 kWh for 3 + 6.5 + 6.5.
    let day = api.get(&a, &format!("/users/u1/statistics/charging?{FEB_20}&type=charger")).await;
    let day = &day.body[0];
    assert_eq!(day["kwhSum"], 6.0);
    close(day["costSum"].as_f64().unwrap(), 16.0);
    let (min, max, mean) = price(day);
    assert_eq!((min, max), (1.5, 3.25));
    close(mean, 16.0 / 6.0);
}

#[tokio::test]
async fn a_vehicle_is_priced_at_the_location_its_resource_names() {
    let api = common::api().await;
    let (a, home) = home_with_tariff(&api).await;
    let at_home = json!({ "location": { "id": home, "latitude": 59.91, "longitude": 10.75 } });
    charging_device(&api, "car", "u1", VendorType::Vehicle, at_home, &BOX_SAMPLES).await;
    let sessions =
        api.get(&a, &format!("/users/u1/statistics/charging/sessions?{FEB_20}&type=vehicle")).await;
    let list = sessions.body.as_array().unwrap();
    assert_eq!(list.len(), 2, "{}", sessions.body);
    assert_eq!(list[0]["locationId"], home.as_str());
    close(list[0]["costSum"].as_f64().unwrap(), 9.5);
    // Filtering by that Location finds it.
    let filtered = api
        .get(&a, &format!("/users/u1/statistics/charging?{FEB_20}&type=vehicle&locationId={home}"))
        .await;
    close(filtered.body[0]["costSum"].as_f64().unwrap(), 16.0);
}

#[tokio::test]
async fn without_a_tariff_price_and_cost_keep_the_fallback() {
    use axum::http::Method;
    let api = common::api().await;
    let (a, home) = home_with_tariff(&api).await;
    // A vehicle at no Location, and a charger at a Location without a tariff schedule.
    charging_device(&api, "car", "u1", VendorType::Vehicle, json!({}), &BOX_SAMPLES).await;
    let body = json!({
        "name": "Cabin", "latitude": 61.0, "longitude": 9.0, "timezoneName": "Europe/Oslo"
    });
    let cabin = api.call(&a, Method::POST, "/users/u1/locations", Some(body)).await;
    let cabin = cabin.body["id"].as_str().unwrap().to_string();
    let charger = json!({ "location": { "id": null, "lastUpdated": null } });
    charging_device(&api, "box", "u1", VendorType::Charger, charger, &BOX_SAMPLES).await;
    let placed = api.call(&a, Method::PUT, "/chargers/box", Some(json!({ "locationId": cabin })));
    assert_eq!(placed.await.status, StatusCode::OK);
    assert_ne!(cabin, home);

    for kind in ["vehicle", "charger"] {
        let day = api.get(&a, &format!("/users/u1/statistics/charging?{FEB_20}&type={kind}")).await;
        assert_eq!(day.status, StatusCode::OK, "{}", day.body);
        assert_eq!(day.body[0]["kwhSum"], 6.0, "{kind}");
        assert_eq!(day.body[0]["costSum"], 0.0, "{kind}");
        assert_eq!(day.body[0]["price"], json!({"min": 0.0, "max": 0.0, "mean": 0.0}), "{kind}");
        assert_eq!(day.body[0]["estimatedSavings"], Value::Null);
        let sessions = api
            .get(&a, &format!("/users/u1/statistics/charging/sessions?{FEB_20}&type={kind}"))
            .await;
        for session in sessions.body.as_array().unwrap() {
            assert_eq!(session["costSum"], 0.0, "{kind}");
            assert_eq!(session["price"], json!({"min": 0.0, "max": 0.0, "mean": 0.0}));
        }
    }
}
