//! Schedules, tariffs and vehicle smart charging, through the router over a memory store
//! with a manual clock and two API clients.
#![allow(clippy::unwrap_used)]

use axum::http::{Method, StatusCode};
use chrono::{DateTime, Utc};
use oemgate_core::{Clock, DeviceRef, VendorType};
use oemgate_store::{DeviceRecord, DeviceStore, ResourceStore, Snapshot, UserRecord, UserStore};
use serde_json::{Value, json};

mod common;

use common::{Api, Response, api};

/// 2030-03-01 is a Friday; Oslo is at UTC+1 until the end of March.
fn start() -> DateTime<Utc> {
    "2030-03-01T08:00:00Z".parse().unwrap()
}

impl Api {
    async fn user(&self, id: &str, client: &str) {
        let record = UserRecord { id: id.into(), client_id: client.into(), created_at: start() };
        assert_eq!(self.store.put_user(record).await.unwrap().client_id, client);
    }

    /// A device of `user` whose snapshot is `resource` (with id, userId and vendor added).
    async fn device(&self, id: &str, user: &str, kind: VendorType, mut resource: Value) {
        let device = DeviceRef {
            id: id.into(),
            user_id: user.into(),
            device_type: kind,
            vendor_id: format!("V-{id}"),
            site_id: None,
        };
        let vendor = if kind == VendorType::Hvac { "ECOBEE" } else { "TESLA" };
        let record = DeviceRecord {
            device,
            vendor: vendor.into(),
            account_id: "acc".into(),
            created_at: start(),
        };
        self.store.put_device(record).await.unwrap();
        resource["id"] = json!(id);
        resource["userId"] = json!(user);
        resource["vendor"] = json!(vendor);
        self.snapshot(id, user, kind, resource, 0).await;
    }

    async fn snapshot(
        &self,
        id: &str,
        user: &str,
        kind: VendorType,
        resource: Value,
        version: u64,
    ) {
        let snapshot = Snapshot {
            device_id: id.into(),
            user_id: user.into(),
            device_type: kind,
            version: 0,
            observed_at: self.clock.now(),
            resource,
        };
        self.store.put_snapshot(snapshot, version).await.unwrap();
    }

    async fn location(&self, token: &str, user: &str) -> String {
        let body = json!({
            "name": "Home", "latitude": 59.91, "longitude": 10.75, "timezoneName": "Europe/Oslo"
        });
        let response =
            self.call(token, Method::POST, &format!("/users/{user}/locations"), Some(body)).await;
        assert_eq!(response.status, StatusCode::OK, "{}", response.body);
        response.body["id"].as_str().unwrap().to_string()
    }

    async fn put(&self, token: &str, path: &str, body: Value) -> Response {
        self.call(token, Method::PUT, path, Some(body)).await
    }

    async fn post(&self, token: &str, path: &str, body: Value) -> Response {
        self.call(token, Method::POST, path, Some(body)).await
    }

    async fn delete(&self, token: &str, path: &str) -> Response {
        self.call(token, Method::DELETE, path, None).await
    }
}

fn vehicle(level: f64, limit: f64, plugged_in: bool, charging: bool) -> Value {
    json!({
        "chargeState": {
            "batteryLevel": level, "chargeLimit": limit, "isPluggedIn": plugged_in,
            "isCharging": charging, "isFullyCharged": level >= 100.0, "chargeTimeRemaining": null
        },
        "location": { "id": null, "latitude": null, "longitude": null, "lastUpdated": null },
        "smartChargingPolicy": { "isEnabled": true, "deadline": "06:00", "minimumChargeLimit": 5 },
        "capabilities": {
            "startCharging": { "isCapable": true }, "stopCharging": { "isCapable": true }
        }
    })
}

fn hvac(mode: &str, heat: f64) -> Value {
    json!({ "thermostatState": {
        "mode": mode, "heatSetpoint": heat, "coolSetpoint": null, "holdType": "PERMANENT"
    }})
}

/// Two clients; client-a's user "ua" with vehicle "v1", charger "c1", HVAC "h1" and a
/// location in Oslo; client-b's user "ub" with vehicle "vb".
async fn world() -> (Api, String, String, String) {
    let api = api().await;
    api.user("ua", "client-a").await;
    api.user("ub", "client-b").await;
    api.device("v1", "ua", VendorType::Vehicle, vehicle(50.0, 80.0, true, false)).await;
    api.device("c1", "ua", VendorType::Charger, json!({ "chargeState": {} })).await;
    api.device("h1", "ua", VendorType::Hvac, hvac("HEAT", 20.0)).await;
    api.device("vb", "ub", VendorType::Vehicle, vehicle(50.0, 80.0, true, false)).await;
    let a = api.token("client-a").await;
    let b = api.token("client-b").await;
    let location = api.location(&a, "ua").await;
    (api, a, b, location)
}

fn charge_schedule(target: &str, location: &str) -> Value {
    json!({
        "targetType": "vehicle", "targetId": target, "locationId": location, "isEnabled": true,
        "defaultShouldCharge": false,
        "rules": [{ "hourMinute": { "from": "22:00", "to": "06:00" }, "shouldCharge": true }]
    })
}

#[tokio::test]
async fn schedules_are_created_listed_read_updated_and_deleted() {
    let (api, a, b, location) = world().await;
    let created = api.post(&a, "/users/ua/schedules", charge_schedule("v1", &location)).await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.body);
    let id = created.body["id"].as_str().unwrap().to_string();
    let mut expected = charge_schedule("v1", &location);
    expected["id"] = json!(id);
    assert_eq!(created.body, expected);

    // Every declared constraint of the body is checked, naming the field.
    let mut cases: Vec<(Value, &str)> = Vec::new();
    let with = |field: &str, value: Value| {
        let mut body = charge_schedule("v1", &location);
        body[field] = value;
        body
    };
    let without = |field: &str| {
        let mut body = charge_schedule("v1", &location);
        body.as_object_mut().unwrap().remove(field);
        body
    };
    cases.push((with("targetType", json!("battery")), "targetType"));
    cases.push((without("defaultShouldCharge"), "defaultShouldCharge"));
    cases.push((without("locationId"), "locationId"));
    cases.push((with("isEnabled", json!("yes")), "isEnabled"));
    cases.push((with("targetId", json!("vb")), "targetId"));
    cases.push((with("targetId", json!("c1")), "targetId"));
    cases.push((with("targetId", json!("")), "targetId"));
    cases.push((with("locationId", json!(uuid::Uuid::new_v4().to_string())), "locationId"));
    cases.push((with("locationId", json!("home")), "locationId"));
    cases.push((with("rules", json!({})), "rules"));
    cases.push((with("color", json!("red")), "color"));
    cases.push((
        with(
            "rules",
            json!([{ "hourMinute": { "from": "25:00", "to": "06:00" }, "shouldCharge": true }]),
        ),
        "rules[0].hourMinute.from",
    ));
    cases.push((
        with("rules", json!([{ "hourMinute": { "from": "22:00" }, "shouldCharge": true }])),
        "rules[0].hourMinute.to",
    ));
    cases.push((
        with("rules", json!([{ "weekdays": [1, 7], "shouldCharge": true }])),
        "rules[0].weekdays[1]",
    ));
    cases.push((
        with("rules", json!([{ "fromTimestamp": "tomorrow", "shouldCharge": true }])),
        "rules[0].fromTimestamp",
    ));
    cases.push((
        with(
            "rules",
            json!([{ "fromTimestamp": "2030-03-02T00:00:00Z", "toTimestamp": "2030-03-01T00:00:00Z", "shouldCharge": true }]),
        ),
        "rules[0].toTimestamp",
    ));
    cases.push((with("rules", json!([{ "weekdays": [1] }])), "rules[0].shouldCharge"));
    cases.push((
        with("rules", json!([{ "targetState": {}, "shouldCharge": true }])),
        "rules[0].targetState",
    ));
    for (body, field) in cases {
        api.post(&a, "/users/ua/schedules", body).await.names(field);
    }
    api.raw(&a, Method::POST, "/users/ua/schedules", "{not json")
        .await
        .is_problem(StatusCode::BAD_REQUEST);

    // Temperature schedules for HVAC units take target states instead.
    let temperature = json!({
        "targetType": "hvac", "targetId": "h1", "isEnabled": true,
        "defaultTargetState": { "mode": "HEAT", "heatSetpoint": 20, "holdType": "PERMANENT" },
        "rules": [{
            "hourMinute": { "from": "23:00", "to": "07:00" },
            "targetState": { "mode": "HEAT", "heatSetpoint": 17, "holdType": "PERMANENT" }
        }, { "weekdays": [5, 6], "targetState": { "holdType": "SCHEDULED" } }]
    });
    let hvac_schedule = api.post(&a, "/users/ua/schedules", temperature.clone()).await;
    assert_eq!(hvac_schedule.status, StatusCode::OK, "{}", hvac_schedule.body);
    let hvac_id = hvac_schedule.body["id"].as_str().unwrap().to_string();
    let mut bad_mode = temperature.clone();
    bad_mode["defaultTargetState"] = json!({ "mode": "DRY", "holdType": "PERMANENT" });
    api.post(&a, "/users/ua/schedules", bad_mode).await.names("defaultTargetState.mode");
    let mut no_setpoint = temperature.clone();
    no_setpoint["defaultTargetState"] = json!({ "mode": "COOL", "holdType": "PERMANENT" });
    api.post(&a, "/users/ua/schedules", no_setpoint).await.names("defaultTargetState.coolSetpoint");
    let mut with_location = temperature.clone();
    with_location["locationId"] = json!(location);
    api.post(&a, "/users/ua/schedules", with_location).await.names("locationId");

    // Unknown and foreign users answer 404.
    api.post(&a, "/users/nobody/schedules", charge_schedule("v1", &location))
        .await
        .is_problem(StatusCode::NOT_FOUND);
    api.post(&b, "/users/ua/schedules", charge_schedule("v1", &location))
        .await
        .is_problem(StatusCode::NOT_FOUND);

    // Lists are the user's, newest first, paginated.
    api.clock.advance(std::time::Duration::from_secs(1));
    let third = api.post(&a, "/users/ua/schedules", charge_schedule("v1", &location)).await;
    let third_id = third.body["id"].as_str().unwrap().to_string();
    let listed = api.get(&a, "/users/ua/schedules").await;
    assert_eq!(listed.status, StatusCode::OK);
    assert_eq!(listed.ids()[0], third_id);
    assert_eq!(listed.ids().len(), 3);
    let paged = api.get(&a, "/users/ua/schedules?pageSize=1").await;
    assert_eq!(paged.ids(), std::slice::from_ref(&third_id));
    assert!(paged.body["pagination"]["after"].is_string(), "{}", paged.body);
    api.get(&a, "/users/ua/schedules?pageSize=0").await.is_problem(StatusCode::BAD_REQUEST);
    api.get(&b, "/users/ua/schedules").await.is_problem(StatusCode::NOT_FOUND);
    api.get(&a, "/users/nobody/schedules").await.is_problem(StatusCode::NOT_FOUND);
    assert!(api.get(&b, "/users/ub/schedules").await.ids().is_empty());

    // Read, update (partial), delete.
    assert_eq!(api.get(&a, &format!("/schedules/{id}")).await.body, expected);
    api.get(&b, &format!("/schedules/{id}")).await.is_problem(StatusCode::NOT_FOUND);
    api.get(&a, "/schedules/unknown").await.is_problem(StatusCode::NOT_FOUND);
    let updated = api.put(&a, &format!("/schedules/{id}"), json!({ "isEnabled": false })).await;
    assert_eq!(updated.status, StatusCode::OK, "{}", updated.body);
    expected["isEnabled"] = json!(false);
    assert_eq!(updated.body, expected);
    assert_eq!(api.get(&a, &format!("/schedules/{id}")).await.body, expected);
    api.put(&a, &format!("/schedules/{id}"), json!({ "defaultShouldCharge": 1 }))
        .await
        .names("defaultShouldCharge");
    api.put(&a, &format!("/schedules/{id}"), json!({ "targetId": "h1" })).await.names("targetId");
    api.put(&a, &format!("/schedules/{id}"), json!({ "isEnabled": true, "extra": 1 }))
        .await
        .names("extra");
    api.put(&b, &format!("/schedules/{id}"), json!({ "isEnabled": true }))
        .await
        .is_problem(StatusCode::NOT_FOUND);
    api.put(&a, "/schedules/unknown", json!({ "isEnabled": true }))
        .await
        .is_problem(StatusCode::NOT_FOUND);
    // Switching the target to the HVAC unit needs the temperature fields.
    api.put(&a, &format!("/schedules/{id}"), json!({ "targetType": "hvac", "targetId": "h1" }))
        .await
        .names("defaultTargetState");
    let switched = api
        .put(
            &a,
            &format!("/schedules/{id}"),
            json!({ "targetType": "hvac", "targetId": "h1", "defaultTargetState": { "holdType": "SCHEDULED" }, "rules": [] }),
        )
        .await;
    assert_eq!(switched.status, StatusCode::OK, "{}", switched.body);
    assert!(
        switched.body.get("locationId").is_none()
            && switched.body.get("defaultShouldCharge").is_none()
    );

    // Deleting the location a schedule names leaves the schedule at no location.
    let second_location = api.location(&a, "ua").await;
    let named = api
        .put(&a, &format!("/schedules/{third_id}"), json!({ "locationId": second_location }))
        .await;
    assert_eq!(named.body["locationId"], json!(second_location), "{}", named.body);
    api.delete(&a, &format!("/locations/{second_location}")).await;
    assert_eq!(
        api.get(&a, &format!("/schedules/{third_id}")).await.body["locationId"],
        Value::Null
    );

    api.delete(&b, &format!("/schedules/{id}")).await.is_problem(StatusCode::NOT_FOUND);
    let deleted = api.delete(&a, &format!("/schedules/{id}")).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert_eq!(deleted.body, Value::Null);
    api.delete(&a, &format!("/schedules/{id}")).await.is_problem(StatusCode::NOT_FOUND);
    api.get(&a, &format!("/schedules/{id}")).await.is_problem(StatusCode::NOT_FOUND);

    // Unlinking the user takes its schedules along.
    assert_eq!(api.delete(&a, "/users/ua").await.status, StatusCode::NO_CONTENT);
    assert!(api.store.get_resource("schedule", &hvac_id).await.unwrap().is_none());
    assert!(api.store.get_resource("schedule", &third_id).await.unwrap().is_none());
}

#[tokio::test]
async fn schedule_status_follows_the_rules_at_the_clocks_now() {
    let (api, a, b, location) = world().await;
    let created = api.post(&a, "/users/ua/schedules", charge_schedule("v1", &location)).await;
    let id = created.body["id"].as_str().unwrap().to_string();
    let path = format!("/schedules/{id}/status");

    // 08:00Z is 09:00 in Oslo: outside 22:00-06:00, so the default (no charging) holds,
    // and the idle vehicle is aligned with it.
    let status = api.get(&a, &path).await;
    assert_eq!(status.status, StatusCode::OK, "{}", status.body);
    assert_eq!(
        status.body,
        json!({
            "scheduleId": id,
            "scheduleType": "CHARGE",
            "changedAt": "2030-03-01T08:00:00.000Z",
            "state": "ALIGNED",
            "isCharging": false,
            "isChargingExpected": false,
            "isChargingExpectedParts": { "needsCharge": true, "isPluggedIn": true, "shouldCharge": false },
            "upcomingTransitions": status.body["upcomingTransitions"].clone(),
            "smartOverride": null,
        })
    );
    let transitions = status.body["upcomingTransitions"].as_array().unwrap();
    assert_eq!(transitions.len(), 14, "two a day for a week: {transitions:?}");
    assert_eq!(transitions[0], json!({ "at": "2030-03-01T21:00:00.000Z", "shouldCharge": true }));
    assert_eq!(transitions[1], json!({ "at": "2030-03-02T05:00:00.000Z", "shouldCharge": false }));
    api.get(&b, &path).await.is_problem(StatusCode::NOT_FOUND);

    // Without a locationId, the rules are read where the target is assigned: 08:00Z is
    // 09:00 at the charger's Oslo location, inside 09:00-10:00 (UTC would be outside).
    let charger = json!({
        "targetType": "charger", "targetId": "c1", "locationId": null, "isEnabled": true,
        "defaultShouldCharge": false,
        "rules": [{ "hourMinute": { "from": "09:00", "to": "10:00" }, "shouldCharge": true }]
    });
    let charger_id = api.post(&a, "/users/ua/schedules", charger).await.body["id"].clone();
    let charger_path = format!("/schedules/{}/status", charger_id.as_str().unwrap());
    let in_utc = api.get(&a, &charger_path).await.body;
    assert_eq!(in_utc["isChargingExpectedParts"]["shouldCharge"], false, "{in_utc}");
    assert_eq!(in_utc["state"], "ALIGNED");
    let assigned = api.put(&a, "/chargers/c1", json!({ "locationId": location })).await;
    assert_eq!(assigned.status, StatusCode::OK, "{}", assigned.body);
    let in_oslo = api.get(&a, &charger_path).await.body;
    assert_eq!(in_oslo["isChargingExpectedParts"]["shouldCharge"], true, "{in_oslo}");
    // A charger cannot tell whether the car needs charge, and it is not plugged in.
    assert_eq!(in_oslo["isChargingExpectedParts"]["needsCharge"], true);
    assert_eq!(in_oslo["isChargingExpected"], false);
    assert_eq!(in_oslo["upcomingTransitions"][0]["at"], "2030-03-01T09:00:00.000Z");

    // At 21:30Z (22:30 local) the rule applies; the idle vehicle is now misaligned.
    api.clock.set("2030-03-01T21:30:00Z".parse().unwrap());
    // Tokens live an hour; take fresh ones at the new time.
    let a = api.token("client-a").await;
    let status = api.get(&a, &path).await;
    assert_eq!(status.body["state"], "MISALIGNED", "{}", status.body);
    assert_eq!(status.body["changedAt"], "2030-03-01T21:00:00.000Z");
    assert_eq!(status.body["isChargingExpected"], true);
    assert_eq!(status.body["upcomingTransitions"][0]["at"], "2030-03-02T05:00:00.000Z");
    // Charging, it is aligned again; full, it no longer needs charge.
    api.snapshot("v1", "ua", VendorType::Vehicle, vehicle(50.0, 80.0, true, true), 1).await;
    assert_eq!(api.get(&a, &path).await.body["state"], "ALIGNED");
    api.snapshot("v1", "ua", VendorType::Vehicle, vehicle(80.0, 80.0, true, false), 2).await;
    let full = api.get(&a, &path).await;
    assert_eq!(full.body["isChargingExpectedParts"]["needsCharge"], false);
    assert_eq!(full.body["state"], "ALIGNED");

    // A timestamp-bounded rule ahead of the others wins while it lasts.
    let bounded = json!({ "rules": [
        { "fromTimestamp": "2030-03-01T21:00:00Z", "toTimestamp": "2030-03-01T21:45:00Z", "shouldCharge": false },
        { "hourMinute": { "from": "22:00", "to": "06:00" }, "shouldCharge": true }
    ]});
    api.put(&a, &format!("/schedules/{id}"), bounded).await;
    let status = api.get(&a, &path).await;
    assert_eq!(status.body["isChargingExpectedParts"]["shouldCharge"], false, "{}", status.body);
    assert_eq!(
        status.body["upcomingTransitions"][0],
        json!({ "at": "2030-03-01T21:45:00.000Z", "shouldCharge": true })
    );

    // An override or a disabled schedule makes it inactive.
    assert_eq!(api.post(&a, "/vehicles/v1/smart-override", json!({})).await.status, StatusCode::OK);
    let status = api.get(&a, &path).await;
    assert_eq!(status.body["state"], "INACTIVE:OVERRIDDEN");
    assert_eq!(status.body["smartOverride"]["targetId"], "v1");
    api.put(&a, &format!("/schedules/{id}"), json!({ "isEnabled": false })).await;
    assert_eq!(api.get(&a, &path).await.body["state"], "INACTIVE:DISABLED");

    // Temperature schedules compare the thermostat with the expected target.
    let temperature = json!({
        "targetType": "hvac", "targetId": "h1", "isEnabled": true,
        "defaultTargetState": { "mode": "HEAT", "heatSetpoint": 20, "holdType": "PERMANENT" },
        "rules": [{ "hourMinute": { "from": "22:00", "to": "07:00" },
                    "targetState": { "mode": "HEAT", "heatSetpoint": 17, "holdType": "PERMANENT" } }]
    });
    let hvac_id = api.post(&a, "/users/ua/schedules", temperature).await.body["id"]
        .as_str()
        .unwrap()
        .to_string();
    let hvac_path = format!("/schedules/{hvac_id}/status");
    // No location for the unit: rules read in UTC, so 21:30Z is before 22:00.
    let status = api.get(&a, &hvac_path).await;
    assert_eq!(status.body["scheduleType"], "TEMPERATURE");
    assert_eq!(status.body["state"], "ALIGNED", "{}", status.body);
    assert_eq!(
        status.body["current"],
        json!({ "mode": "HEAT", "heatSetpoint": 20.0, "holdType": "PERMANENT" })
    );
    assert_eq!(status.body["upcomingTransitions"][0]["at"], "2030-03-01T22:00:00.000Z");
    api.clock.set("2030-03-01T22:30:00Z".parse().unwrap());
    let (a, b) = (api.token("client-a").await, api.token("client-b").await);
    let status = api.get(&a, &hvac_path).await;
    assert_eq!(status.body["state"], "MISALIGNED");
    assert_eq!(status.body["expected"]["heatSetpoint"], 17);

    api.get(&b, &path).await.is_problem(StatusCode::NOT_FOUND);
    api.get(&a, "/schedules/unknown/status").await.is_problem(StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn tariffs_are_stored_per_client_and_linked_to_locations() {
    let (api, a, b, location) = world().await;
    let rates = json!([{ "name": "PEAK", "cost": "2.50" }, { "name": "OFFPEAK", "cost": ".75" }]);
    let put = api.put(&a, "/tariffs/home", rates.clone()).await;
    assert_eq!(put.status, StatusCode::NO_CONTENT, "{}", put.body);
    let got = api.get(&a, "/tariffs/home").await;
    assert_eq!((got.status, got.body), (StatusCode::OK, rates.clone()));
    api.get(&a, "/tariffs/unknown").await.is_problem(StatusCode::NOT_FOUND);
    // Tariff ids are per client: client-b neither sees nor changes client-a's.
    api.get(&b, "/tariffs/home").await.is_problem(StatusCode::NOT_FOUND);
    let other = json!([{ "name": "FLAT", "cost": "1" }]);
    assert_eq!(api.put(&b, "/tariffs/home", other.clone()).await.status, StatusCode::NO_CONTENT);
    assert_eq!(api.get(&b, "/tariffs/home").await.body, other);
    assert_eq!(api.get(&a, "/tariffs/home").await.body, rates);

    for (body, field) in [
        (json!({ "name": "X", "cost": "1" }), None),
        (json!([{ "name": "X", "cost": "abc" }]), Some("[0].cost")),
        (json!([{ "name": "X", "cost": 1.5 }]), Some("[0].cost")),
        (json!([{ "name": "", "cost": "1" }]), Some("[0].name")),
        (json!([{ "name": "X", "cost": "1" }, { "name": "X", "cost": "2" }]), Some("[1].name")),
        (json!([{ "name": "X", "cost": "1", "currency": "EUR" }]), Some("[0].currency")),
    ] {
        let response = api.put(&a, "/tariffs/bad", body).await;
        match field {
            Some(field) => response.names(field),
            None => response.is_problem(StatusCode::BAD_REQUEST),
        }
    }
    api.raw(&a, Method::PUT, "/tariffs/bad", "").await.is_problem(StatusCode::BAD_REQUEST);
    api.get(&a, "/tariffs/bad").await.is_problem(StatusCode::NOT_FOUND);

    // Linking: local intervals (Oslo, UTC+1) are served in UTC, split at UTC midnight.
    let path = format!("/locations/{location}/tariff");
    assert_eq!(api.get(&a, &path).await.body, json!([]));
    let link = json!({ "tariffId": "home", "tariffIntervals": [
        { "name": "PEAK", "weekdays": [0], "from": "07:00", "to": "22:00" },
        { "name": "OFFPEAK", "weekdays": [0], "from": "22:00", "to": "24:00" },
        { "name": "OFFPEAK", "weekdays": [6], "from": "00:00", "to": "07:00" }
    ]});
    let linked = api.put(&a, &path, link.clone()).await;
    assert_eq!(linked.status, StatusCode::NO_CONTENT, "{}", linked.body);
    let entry = |weekday: u32, from: &str, to: &str, name: &str| json!({ "weekday": weekday, "fromHourMinute": from, "toHourMinute": to, "tariffId": "home", "tariffName": name });
    let got = api.get(&a, &path).await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(
        got.body,
        json!([
            entry(0, "06:00", "21:00", "PEAK"),
            entry(0, "21:00", "23:00", "OFFPEAK"),
            entry(5, "23:00", "24:00", "OFFPEAK"),
            entry(6, "00:00", "06:00", "OFFPEAK"),
        ])
    );

    // Failures: overlaps and bad intervals 400; unknown tariff or location 404.
    let intervals = |list: Value| json!({ "tariffId": "home", "tariffIntervals": list });
    for (body, field) in [
        (
            intervals(
                json!([{ "name": "PEAK", "from": "07:00", "to": "22:00" }, { "name": "OFFPEAK", "weekdays": [3], "from": "21:00", "to": "24:00" }]),
            ),
            "tariffIntervals[1]",
        ),
        (
            intervals(json!([{ "name": "NIGHT", "from": "00:00", "to": "06:00" }])),
            "tariffIntervals[0].name",
        ),
        (
            intervals(json!([{ "name": "PEAK", "from": "08:00", "to": "08:00" }])),
            "tariffIntervals[0].to",
        ),
        (
            intervals(json!([{ "name": "PEAK", "from": "8:00", "to": "09:00" }])),
            "tariffIntervals[0].from",
        ),
        (
            intervals(json!([{ "name": "PEAK", "weekdays": [9], "from": "08:00", "to": "09:00" }])),
            "tariffIntervals[0].weekdays[0]",
        ),
        (json!({ "tariffId": "home" }), "tariffIntervals"),
        (json!({ "tariffIntervals": [] }), "tariffId"),
    ] {
        api.put(&a, &path, body).await.names(field);
    }
    api.put(&a, &path, json!({ "tariffId": "nope", "tariffIntervals": [] }))
        .await
        .is_problem(StatusCode::NOT_FOUND);
    let unknown = format!("/locations/{}/tariff", uuid::Uuid::new_v4());
    api.put(&a, &unknown, link.clone()).await.is_problem(StatusCode::NOT_FOUND);
    api.get(&a, &unknown).await.is_problem(StatusCode::NOT_FOUND);
    api.put(&b, &path, link.clone()).await.is_problem(StatusCode::NOT_FOUND);
    api.get(&b, &path).await.is_problem(StatusCode::NOT_FOUND);
    // The failures changed nothing; a new link replaces the old one.
    assert_eq!(api.get(&a, &path).await.body.as_array().unwrap().len(), 4);
    let replaced =
        intervals(json!([{ "name": "PEAK", "weekdays": [2], "from": "12:00", "to": "13:00" }]));
    assert_eq!(api.put(&a, &path, replaced).await.status, StatusCode::NO_CONTENT);
    assert_eq!(api.get(&a, &path).await.body, json!([entry(2, "11:00", "12:00", "PEAK")]));

    // Deleting the location takes its tariff schedule along.
    api.delete(&a, &format!("/locations/{location}")).await;
    assert!(api.store.get_resource("location-tariff", &location).await.unwrap().is_none());
}

#[tokio::test]
async fn vehicle_smart_charging_policy_status_overrides_and_plans() {
    let (api, a, b, location) = world().await;
    let policy = "/vehicles/v1/smart-charging-policy";
    let status = "/vehicles/v1/smart-charging-status";
    let default = json!({ "isEnabled": false, "deadline": null, "minimumChargeLimit": 0 });
    assert_eq!(api.get(&a, policy).await.body, default);
    assert_eq!(api.get(&a, "/vehicles/v1").await.body["smartChargingPolicy"], default);
    let disabled = api.get(&a, status).await;
    assert_eq!(disabled.status, StatusCode::OK);
    assert_eq!(
        disabled.body,
        json!({
            "updatedAt": "2030-03-01T08:00:00.000Z", "vehicleId": "v1", "userId": "ua", "vendor": "TESLA",
            "state": "DISABLED", "stateChangedAt": "2030-03-01T08:00:00.000Z",
            "consideration": null, "plan": null, "smartOverride": null
        })
    );

    // Validation, each failure naming its field.
    for (body, field) in [
        (json!({ "isEnabled": true }), "deadline"),
        (json!({ "deadline": "7:00" }), "deadline"),
        (json!({ "deadline": null }), "deadline"),
        (json!({ "isEnabled": "on" }), "isEnabled"),
        (json!({ "minimumChargeLimit": 150 }), "minimumChargeLimit"),
        (json!({ "minimumChargeLimit": 90 }), "minimumChargeLimit"),
        (json!({ "maximumChargeLimit": 90 }), "maximumChargeLimit"),
        // No tariff anywhere: nothing to plan with.
        (json!({ "isEnabled": true, "deadline": "07:00" }), "isEnabled"),
    ] {
        api.put(&a, policy, body).await.names(field);
    }
    assert_eq!(api.get(&a, policy).await.body, default, "failures store nothing");
    let saved = api.put(&a, policy, json!({ "deadline": "07:00", "minimumChargeLimit": 20 })).await;
    assert_eq!(saved.status, StatusCode::OK, "{}", saved.body);
    assert_eq!(
        saved.body,
        json!({ "isEnabled": false, "deadline": "07:00", "minimumChargeLimit": 20.0 })
    );
    // The vehicle resource carries the stored policy, not the snapshot's.
    assert_eq!(api.get(&a, "/vehicles/v1").await.body["smartChargingPolicy"], saved.body);
    let listed = api.get(&a, "/users/ua/vehicles").await;
    assert_eq!(listed.body["data"][0]["smartChargingPolicy"], saved.body);

    // With a tariff at the user's location it can be enabled; the deadline is kept.
    api.put(&a, "/tariffs/t", json!([{ "name": "FLAT", "cost": "1" }])).await;
    let link = json!({ "tariffId": "t", "tariffIntervals": [{ "name": "FLAT", "from": "00:00", "to": "24:00" }] });
    assert_eq!(
        api.put(&a, &format!("/locations/{location}/tariff"), link).await.status,
        StatusCode::NO_CONTENT
    );
    api.clock.advance(std::time::Duration::from_secs(60));
    let enabled = api.put(&a, policy, json!({ "isEnabled": true })).await;
    assert_eq!(
        enabled.body,
        json!({ "isEnabled": true, "deadline": "07:00", "minimumChargeLimit": 20.0 })
    );
    let considering = api.get(&a, status).await.body;
    assert_eq!(considering["state"], "CONSIDERING", "{considering}");
    assert_eq!(considering["stateChangedAt"], "2030-03-01T08:01:00.000Z");
    assert_eq!(
        considering["consideration"],
        json!({ "isPluggedIn": true, "isCharging": false, "atChargingLocation": false, "hasTimeEstimate": false })
    );
    api.snapshot("v1", "ua", VendorType::Vehicle, vehicle(80.0, 80.0, true, false), 1).await;
    assert_eq!(api.get(&a, status).await.body["state"], "FULLY_CHARGED");

    // Overrides: one at a time, ended once; 404 when there is none.
    api.clock.advance(std::time::Duration::from_secs(60));
    let started = api.post(&a, "/vehicles/v1/smart-override", json!({})).await;
    assert_eq!(started.status, StatusCode::OK);
    let override_body = json!({
        "createdAt": "2030-03-01T08:02:00.000Z", "endedAt": null, "targetType": "vehicle",
        "targetId": "v1", "vendorActionId": null, "userId": "ua", "vendor": "TESLA"
    });
    assert_eq!(started.body, override_body);
    api.clock.advance(std::time::Duration::from_secs(60));
    assert_eq!(api.post(&a, "/vehicles/v1/smart-override", json!({})).await.body, override_body);
    let overridden = api.get(&a, status).await.body;
    assert_eq!(overridden["state"], "PLAN:EXECUTING:OVERRIDDEN");
    assert_eq!(overridden["smartOverride"], override_body);
    api.delete(&b, "/vehicles/v1/smart-override").await.is_problem(StatusCode::NOT_FOUND);
    let ended = api.delete(&a, "/vehicles/v1/smart-override").await;
    assert_eq!(ended.status, StatusCode::OK);
    assert_eq!(ended.body["endedAt"], "2030-03-01T08:03:00.000Z");
    api.delete(&a, "/vehicles/v1/smart-override").await.is_problem(StatusCode::NOT_FOUND);
    assert_eq!(api.get(&a, status).await.body["smartOverride"], Value::Null);

    // One controller at a time: an enabled schedule switches smart charging off, and
    // enabling smart charging switches the schedule off.
    let schedule = api.post(&a, "/users/ua/schedules", charge_schedule("v1", &location)).await;
    let schedule_id = schedule.body["id"].as_str().unwrap().to_string();
    assert_eq!(api.get(&a, policy).await.body["isEnabled"], false);
    assert_eq!(api.get(&a, status).await.body["state"], "DISABLED");
    api.put(&a, policy, json!({ "isEnabled": true })).await;
    assert_eq!(api.get(&a, &format!("/schedules/{schedule_id}")).await.body["isEnabled"], false);

    // No planner makes plans yet: every plan id is 404.
    api.get(&a, "/vehicles/v1/smart-charging-plans/latest").await.is_problem(StatusCode::NOT_FOUND);
    api.get(&a, &format!("/vehicles/v1/smart-charging-plans/{}", uuid::Uuid::new_v4()))
        .await
        .is_problem(StatusCode::NOT_FOUND);

    // Another client's vehicle, unknown ids and non-vehicles answer 404 everywhere.
    for vehicle_id in ["vb", "unknown", "c1"] {
        for (method, suffix) in [
            (Method::GET, "smart-charging-policy"),
            (Method::PUT, "smart-charging-policy"),
            (Method::GET, "smart-charging-status"),
            (Method::POST, "smart-override"),
            (Method::DELETE, "smart-override"),
            (Method::GET, "smart-charging-plans/latest"),
        ] {
            let body = (method == Method::PUT).then(|| json!({ "minimumChargeLimit": 10 }));
            let path = format!("/vehicles/{vehicle_id}/{suffix}");
            api.call(&a, method, &path, body).await.is_problem(StatusCode::NOT_FOUND);
        }
    }
    assert_eq!(api.get(&b, "/vehicles/vb/smart-charging-policy").await.status, StatusCode::OK);

    // Unlinking the user removes the policy.
    api.delete(&a, "/users/ua").await;
    assert!(api.store.get_resource("smart-charging-policy", "v1").await.unwrap().is_none());
}
