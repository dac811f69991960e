//! Users, locations, client isolation and the shared HTTP conventions, through the router
//! over a memory store with a manual clock and two API clients.
#![allow(clippy::unwrap_used)]

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use chrono::{DateTime, Utc};
use oemgate_core::{AccountRef, Credentials, VendorType};
use oemgate_store::{
    AccountStore, DeviceFilter, DeviceStore, EventLog, PageRequest, ScheduleStore, UserRecord,
    UserStore,
};
use serde_json::{Value, json};

mod common;

use common::{Api, SeedDevice, api};

impl Api {
    /// A user of `client`, created `seconds` after the start.
    async fn user(&self, id: &str, client: &str, seconds: i64) {
        let created_at = self.clock_start() + chrono::Duration::seconds(seconds);
        let stored = self
            .store
            .put_user(UserRecord { id: id.into(), client_id: client.into(), created_at })
            .await
            .unwrap();
        assert_eq!(stored.client_id, client);
    }

    fn clock_start(&self) -> DateTime<Utc> {
        "2030-03-01T08:00:00Z".parse().unwrap()
    }

    /// A linked account of `user`.
    async fn account(&self, id: &str, user: &str, vendor: &str) {
        let account = AccountRef {
            user_id: user.into(),
            vendor: vendor.into(),
            account_id: id.into(),
            credentials: Credentials { access_token: "t".into(), ..Credentials::default() },
        };
        self.store.put_account(account, 0).await.unwrap();
    }

    /// A device with a snapshot and a poll schedule entry.
    async fn device(&self, id: &str, user: &str, kind: VendorType, vendor: &str, account: &str) {
        let created = self.clock_start();
        let mut resource = json!({ "id": id, "userId": user, "vendor": vendor });
        match kind {
            VendorType::Charger => {
                resource["location"] = json!({ "id": null, "lastUpdated": null })
            }
            VendorType::Hvac => resource["location"] = json!({ "id": null }),
            _ => {}
        }
        let seed =
            SeedDevice { id, user, kind, vendor, account, at: created, resource: Some(resource) };
        self.seed_device(seed).await;
        self.store.schedule(id, created).await.unwrap();
    }

    async fn device_ids_of(&self, user: &str) -> Vec<String> {
        let filter = DeviceFilter { user_id: Some(user.into()), ..DeviceFilter::default() };
        let page = PageRequest { page_size: 100, ..PageRequest::default() };
        let mut ids: Vec<String> = self
            .store
            .list_devices(&filter, &page)
            .await
            .unwrap()
            .items
            .into_iter()
            .map(|d| d.device.id)
            .collect();
        ids.sort();
        ids
    }

    async fn event_names(&self) -> Vec<String> {
        self.store.read_events(None, 1000).await.unwrap().into_iter().map(|e| e.event).collect()
    }

    async fn location(&self, token: &str, user: &str, name: &str) -> String {
        let body = json!({
            "name": name, "latitude": 59.91, "longitude": 10.75, "timezoneName": "Europe/Oslo"
        });
        let response =
            self.call(token, Method::POST, &format!("/users/{user}/locations"), Some(body)).await;
        assert_eq!(response.status, StatusCode::OK, "{}", response.body);
        response.body["id"].as_str().unwrap().to_string()
    }
}

#[tokio::test]
async fn two_clients_see_only_their_own_users_devices_actions_and_locations() {
    let api = api().await;
    api.user("ua", "client-a", 0).await;
    api.user("ub", "client-b", 1).await;
    api.device("va", "ua", VendorType::Vehicle, "TESLA", "acc-a").await;
    api.device("ca", "ua", VendorType::Charger, "EASEE", "acc-a2").await;
    api.device("ha", "ua", VendorType::Hvac, "TADO", "acc-a3").await;
    api.device("vb", "ub", VendorType::Vehicle, "TESLA", "acc-b").await;
    let a = api.token("client-a").await;
    let b = api.token("client-b").await;

    // Lists hold only the caller's own.
    assert_eq!(api.get(&a, "/users").await.ids(), ["ua"]);
    assert_eq!(api.get(&b, "/users").await.ids(), ["ub"]);
    assert_eq!(api.get(&a, "/vehicles").await.ids(), ["va"]);
    assert_eq!(api.get(&a, "/chargers").await.ids(), ["ca"]);
    assert_eq!(api.get(&b, "/vehicles").await.ids(), ["vb"]);
    assert!(api.get(&b, "/chargers").await.ids().is_empty());
    assert_eq!(api.get(&a, "/users/ua/vehicles").await.ids(), ["va"]);

    // The other client's user and device ids answer 404, whatever the route.
    for path in ["/users/ub", "/users/ub/vehicles", "/users/ub/locations", "/vehicles/vb"] {
        api.get(&a, path).await.is_problem(StatusCode::NOT_FOUND);
    }
    assert_eq!(api.get(&a, "/users/ub").await.body["title"], "User does not exist");
    for (method, path, body) in [
        (Method::POST, "/vehicles/vb/refresh-hint", None),
        (Method::POST, "/vehicles/vb/charging", Some(json!({ "action": "START" }))),
        (Method::POST, "/vehicles/vb/max-current", Some(json!({ "maxCurrent": 16 }))),
        (Method::DELETE, "/users/ub", None),
        (Method::DELETE, "/users/ub/authorization", None),
        (Method::DELETE, "/users/ub/vendors/TESLA", None),
        (Method::DELETE, "/users/ub/vendors/TESLA/vehicle", None),
    ] {
        api.call(&a, method.clone(), path, body).await.is_problem(StatusCode::NOT_FOUND);
    }
    // Nothing of client B's was touched.
    assert_eq!(api.device_ids_of("ub").await, ["vb"]);
    assert!(api.store.get_user("ub").await.unwrap().is_some());
    assert_eq!(api.store.due_at("vb").await.unwrap(), Some(api.clock_start()), "no hint taken");

    // An action on B's vehicle is B's: A cannot read or cancel it.
    let created = api
        .call(&b, Method::POST, "/vehicles/vb/charging", Some(json!({ "action": "START" })))
        .await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.body);
    let action = created.body["id"].as_str().unwrap().to_string();
    api.get(&a, &format!("/vehicles/actions/{action}")).await.is_problem(StatusCode::NOT_FOUND);
    api.call(&a, Method::POST, &format!("/vehicles/actions/{action}/cancel"), None)
        .await
        .is_problem(StatusCode::NOT_FOUND);
    let read = api.get(&b, &format!("/vehicles/actions/{action}")).await;
    assert_eq!(read.status, StatusCode::OK);
    assert_eq!(read.body["state"], "PENDING", "A's cancel changed nothing");

    // Locations: B's are invisible to A, and A cannot create one for B's user.
    let location = api.location(&b, "ub", "B home").await;
    for method in [Method::GET, Method::DELETE] {
        api.call(&a, method, &format!("/locations/{location}"), None)
            .await
            .is_problem(StatusCode::NOT_FOUND);
    }
    api.call(&a, Method::PUT, &format!("/locations/{location}"), Some(json!({ "name": "x" })))
        .await
        .is_problem(StatusCode::NOT_FOUND);
    assert!(api.get(&a, "/locations").await.ids().is_empty());
    assert_eq!(api.get(&b, "/locations").await.ids(), [location.as_str()]);
    let body = json!({ "name": "n", "latitude": 1, "longitude": 2, "timezoneName": "UTC" });
    api.call(&a, Method::POST, "/users/ub/locations", Some(body))
        .await
        .is_problem(StatusCode::NOT_FOUND);
    let assign =
        api.call(&a, Method::PUT, "/chargers/ca", Some(json!({ "locationId": location }))).await;
    assign.is_problem(StatusCode::BAD_REQUEST);
    assert!(assign.detail().contains("locationId"), "{}", assign.detail());
    // Nor can B place A's charger or HVAC unit, even at no location.
    for path in ["/chargers/ca", "/hvacs/ha"] {
        api.call(&b, Method::PUT, path, Some(json!({ "locationId": null })))
            .await
            .is_problem(StatusCode::NOT_FOUND);
    }
    assert_eq!(api.get(&b, &format!("/locations/{location}")).await.body["name"], "B home");
}

#[tokio::test]
async fn users_are_listed_newest_first_and_read_with_their_linked_vendors() {
    let api = api().await;
    for (n, user) in ["u1", "u2", "u3"].iter().enumerate() {
        api.user(user, "client-a", n as i64).await;
    }
    let a = api.token("client-a").await;

    let first = api.get(&a, "/users?pageSize=2").await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(first.ids(), ["u3", "u2"]);
    assert_eq!(first.body["data"][0]["createdAt"], "2030-03-01T08:00:02.000Z");
    assert_eq!(first.body["data"][0]["scopes"], json!(["all"]));
    assert_eq!(first.body["pagination"]["before"], Value::Null);
    let after = first.body["pagination"]["after"].as_str().unwrap().to_string();
    let second = api.get(&a, &format!("/users?pageSize=2&after={after}")).await;
    assert_eq!(second.ids(), ["u1"]);
    assert_eq!(second.body["pagination"]["after"], Value::Null);
    let before = second.body["pagination"]["before"].as_str().unwrap().to_string();
    assert_eq!(
        api.get(&a, &format!("/users?pageSize=2&before={before}")).await.ids(),
        ["u3", "u2"]
    );
    // The default page holds them all.
    assert_eq!(api.get(&a, "/users").await.ids(), ["u3", "u2", "u1"]);
    for query in [
        format!("after={after}&before={before}"),
        "pageSize=0".into(),
        "pageSize=1001".into(),
        "after=garbage".into(),
    ] {
        api.get(&a, &format!("/users?{query}")).await.is_problem(StatusCode::BAD_REQUEST);
    }

    // Linked vendors come from the user's accounts and the device types they read.
    api.account("tesla-1", "u1", "TESLA").await;
    api.account("enphase-1", "u1", "ENPHASE").await;
    api.account("idle-1", "u1", "SMA").await;
    api.device("car", "u1", VendorType::Vehicle, "TESLA", "tesla-1").await;
    api.device("wall", "u1", VendorType::Battery, "TESLA", "tesla-1").await;
    api.device("pv", "u1", VendorType::Inverter, "ENPHASE", "enphase-1").await;
    assert!(api.store.invalidate_account("enphase-1", api.clock_start()).await.unwrap());
    let user = api.get(&a, "/users/u1").await;
    assert_eq!(user.status, StatusCode::OK, "{}", user.body);
    assert_eq!(
        user.body,
        json!({
            "id": "u1",
            "linkedVendors": [
                { "vendor": "ENPHASE", "vendorType": "inverter", "isValid": false },
                { "vendor": "TESLA", "vendorType": "battery", "isValid": true },
                { "vendor": "TESLA", "vendorType": "vehicle", "isValid": true },
            ]
        })
    );
    assert_eq!(api.get(&a, "/users/u2").await.body, json!({ "id": "u2", "linkedVendors": [] }));
    let missing = api.get(&a, "/users/nobody").await;
    missing.is_problem(StatusCode::NOT_FOUND);
    assert!(missing.detail().contains("nobody"));
}

#[tokio::test]
async fn unlinking_a_user_removes_everything_and_announces_the_devices() {
    let api = api().await;
    api.user("u1", "client-a", 0).await;
    api.account("tesla-1", "u1", "TESLA").await;
    api.device("car", "u1", VendorType::Vehicle, "TESLA", "tesla-1").await;
    api.device("box", "u1", VendorType::Charger, "TESLA", "tesla-1").await;
    let a = api.token("client-a").await;
    let location = api.location(&a, "u1", "Home").await;

    let response = api.call(&a, Method::DELETE, "/users/u1", None).await;
    assert_eq!(response.status, StatusCode::NO_CONTENT, "{}", response.body);
    assert_eq!(response.body, Value::Null);
    api.get(&a, "/users/u1").await.is_problem(StatusCode::NOT_FOUND);
    assert!(api.get(&a, "/users").await.ids().is_empty());
    assert!(api.device_ids_of("u1").await.is_empty());
    assert_eq!(api.store.get_snapshot("car").await.unwrap(), None);
    assert_eq!(api.store.due_at("car").await.unwrap(), None, "unscheduled");
    assert_eq!(api.store.due_at("box").await.unwrap(), None, "unscheduled");
    assert!(api.store.accounts_of_user("u1").await.unwrap().is_empty());
    api.get(&a, &format!("/locations/{location}")).await.is_problem(StatusCode::NOT_FOUND);
    let mut events = api.event_names().await;
    events.sort();
    assert_eq!(events, ["user:charger:deleted", "user:vehicle:deleted"]);
    let deleted = api.store.read_events(None, 10).await.unwrap();
    assert!(deleted.iter().any(|e| e.payload["vehicle"]["id"] == "car"), "{deleted:?}");

    api.call(&a, Method::DELETE, "/users/u1", None).await.is_problem(StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn deauthorizing_a_user_keeps_the_user_and_its_locations() {
    let api = api().await;
    api.user("u1", "client-a", 0).await;
    api.account("tesla-1", "u1", "TESLA").await;
    api.device("car", "u1", VendorType::Vehicle, "TESLA", "tesla-1").await;
    let a = api.token("client-a").await;
    let location = api.location(&a, "u1", "Home").await;

    let response = api.call(&a, Method::DELETE, "/users/u1/authorization", None).await;
    assert_eq!(response.status, StatusCode::NO_CONTENT, "{}", response.body);
    assert_eq!(api.get(&a, "/users/u1").await.body, json!({ "id": "u1", "linkedVendors": [] }));
    assert!(api.device_ids_of("u1").await.is_empty());
    assert_eq!(api.store.due_at("car").await.unwrap(), None);
    assert!(api.store.accounts_of_user("u1").await.unwrap().is_empty());
    assert_eq!(api.get(&a, &format!("/locations/{location}")).await.status, StatusCode::OK);
    assert!(api.event_names().await.is_empty(), "no events for a deauthorized user");

    api.call(&a, Method::DELETE, "/users/nobody/authorization", None)
        .await
        .is_problem(StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn disconnecting_a_vendor_or_one_of_its_types() {
    let api = api().await;
    api.user("u1", "client-a", 0).await;
    api.account("tesla-1", "u1", "TESLA").await;
    api.account("enphase-1", "u1", "ENPHASE").await;
    api.device("car", "u1", VendorType::Vehicle, "TESLA", "tesla-1").await;
    api.device("wall", "u1", VendorType::Battery, "TESLA", "tesla-1").await;
    api.device("pv", "u1", VendorType::Inverter, "ENPHASE", "enphase-1").await;
    let a = api.token("client-a").await;

    // One type: the battery goes, the account stays while it still reads the car.
    let response = api.call(&a, Method::DELETE, "/users/u1/vendors/TESLA/battery", None).await;
    assert_eq!(response.status, StatusCode::NO_CONTENT, "{}", response.body);
    assert_eq!(api.device_ids_of("u1").await, ["car", "pv"]);
    assert!(api.store.get_account("tesla-1").await.unwrap().is_some());
    assert_eq!(api.event_names().await, ["user:battery:deleted"]);

    let bad = api.call(&a, Method::DELETE, "/users/u1/vendors/TESLA/toaster", None).await;
    bad.is_problem(StatusCode::BAD_REQUEST);
    assert!(bad.detail().contains("vendorType"), "{}", bad.detail());
    let bad = api.call(&a, Method::DELETE, "/users/u1/vendors/TES%20LA", None).await;
    bad.is_problem(StatusCode::BAD_REQUEST);
    assert!(bad.detail().contains("vendor"), "{}", bad.detail());

    // The whole vendor: its devices and accounts; the other vendor is untouched.
    let response = api.call(&a, Method::DELETE, "/users/u1/vendors/TESLA", None).await;
    assert_eq!(response.status, StatusCode::NO_CONTENT);
    assert_eq!(api.device_ids_of("u1").await, ["pv"]);
    assert!(api.store.get_account("tesla-1").await.unwrap().is_none());
    assert!(api.store.get_account("enphase-1").await.unwrap().is_some());
    assert_eq!(api.event_names().await, ["user:battery:deleted", "user:vehicle:deleted"]);
    assert_eq!(
        api.get(&a, "/users/u1").await.body["linkedVendors"],
        json!([{ "vendor": "ENPHASE", "vendorType": "inverter", "isValid": true }])
    );

    // The last type of a vendor takes its account along.
    let response = api.call(&a, Method::DELETE, "/users/u1/vendors/ENPHASE/inverter", None).await;
    assert_eq!(response.status, StatusCode::NO_CONTENT);
    assert!(api.store.get_account("enphase-1").await.unwrap().is_none());

    api.call(&a, Method::DELETE, "/users/nobody/vendors/TESLA", None)
        .await
        .is_problem(StatusCode::NOT_FOUND);
    api.call(&a, Method::DELETE, "/users/nobody/vendors/TESLA/vehicle", None)
        .await
        .is_problem(StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn locations_are_created_listed_read_updated_and_deleted() {
    let api = api().await;
    let a = api.token("client-a").await;

    // Creating a location for a new user id creates the user.
    let body = json!({
        "name": "Home", "latitude": 59.91, "longitude": 10.75, "timezoneName": "Europe/Oslo"
    });
    let created = api.call(&a, Method::POST, "/users/u1/locations", Some(body)).await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.body);
    let home = created.body["id"].as_str().unwrap().to_string();
    assert!(uuid::Uuid::parse_str(&home).is_ok(), "{home}");
    assert_eq!(
        created.body,
        json!({
            "id": home, "userId": "u1", "name": "Home", "latitude": 59.91, "longitude": 10.75,
            "timezoneName": "Europe/Oslo", "createdAt": "2030-03-01T08:00:00.000Z"
        })
    );
    assert_eq!(api.get(&a, "/users").await.ids(), ["u1"]);
    api.clock.advance(std::time::Duration::from_secs(60));
    let cabin = api.location(&a, "u1", "Cabin").await;
    api.clock.advance(std::time::Duration::from_secs(60));
    let other = api.location(&a, "u2", "Other").await;

    assert_eq!(api.get(&a, "/locations").await.ids(), [other.clone(), cabin.clone(), home.clone()]);
    let page = api.get(&a, "/locations?pageSize=1").await;
    assert_eq!(page.ids(), [other.as_str()]);
    let after = page.body["pagination"]["after"].as_str().unwrap().to_string();
    assert_eq!(
        api.get(&a, &format!("/locations?pageSize=1&after={after}")).await.ids(),
        [cabin.as_str()]
    );
    assert_eq!(api.get(&a, "/users/u1/locations").await.ids(), [cabin.clone(), home.clone()]);
    api.get(&a, "/users/nobody/locations").await.is_problem(StatusCode::NOT_FOUND);
    api.get(&a, "/locations?pageSize=0").await.is_problem(StatusCode::BAD_REQUEST);
    api.get(&a, "/users/u1/locations?after=x&before=y").await.is_problem(StatusCode::BAD_REQUEST);

    let read = api.get(&a, &format!("/locations/{home}")).await;
    assert_eq!(read.status, StatusCode::OK);
    assert_eq!(read.body, created.body);
    api.get(&a, "/locations/no-such-location").await.is_problem(StatusCode::NOT_FOUND);

    // Updates change only the given fields.
    let updated = api
        .call(
            &a,
            Method::PUT,
            &format!("/locations/{home}"),
            Some(json!({ "name": "Villa", "timezoneName": "UTC" })),
        )
        .await;
    assert_eq!(updated.status, StatusCode::OK, "{}", updated.body);
    assert_eq!(updated.body["name"], "Villa");
    assert_eq!(updated.body["timezoneName"], "UTC");
    assert_eq!(updated.body["latitude"], 59.91);
    assert_eq!(updated.body["createdAt"], "2030-03-01T08:00:00.000Z");
    assert_eq!(api.get(&a, &format!("/locations/{home}")).await.body, updated.body);
    api.call(&a, Method::PUT, "/locations/nope", Some(json!({ "name": "x" })))
        .await
        .is_problem(StatusCode::NOT_FOUND);

    // Validation names the field, on create and update.
    let valid = json!({ "name": "n", "latitude": 1.0, "longitude": 2.0, "timezoneName": "UTC" });
    let with = |field: &str, value: Value| {
        let mut body = valid.clone();
        body[field] = value;
        body
    };
    let without = |field: &str| {
        let mut body = valid.clone();
        body.as_object_mut().unwrap().remove(field);
        body
    };
    // (body, field named, whether an update with it is fine: updates need no field)
    for (body, field, update_ok) in [
        (without("name"), "name", true),
        (without("latitude"), "latitude", true),
        (without("longitude"), "longitude", true),
        (without("timezoneName"), "timezoneName", true),
        (with("timezoneName", json!("Mars/Olympus_Mons")), "timezoneName", false),
        (with("timezoneName", json!(3)), "timezoneName", false),
        (with("latitude", json!(91)), "latitude", false),
        (with("longitude", json!(-180.5)), "longitude", false),
        (with("latitude", json!("north")), "latitude", false),
        (with("name", json!("")), "name", false),
        (with("color", json!("red")), "color", false),
    ] {
        let response = api.call(&a, Method::POST, "/users/u1/locations", Some(body.clone())).await;
        response.is_problem(StatusCode::BAD_REQUEST);
        assert!(
            response.detail().contains(&format!("\"{field}\"")),
            "{body}: {}",
            response.detail()
        );
        let response =
            api.call(&a, Method::PUT, &format!("/locations/{cabin}"), Some(body.clone())).await;
        if update_ok {
            assert_eq!(response.status, StatusCode::OK, "{body}: {}", response.body);
        } else {
            response.is_problem(StatusCode::BAD_REQUEST);
            assert!(
                response.detail().contains(&format!("\"{field}\"")),
                "{body}: {}",
                response.detail()
            );
        }
    }
    for raw in ["{", "[1]", "", "null"] {
        let response = api.raw(&a, Method::POST, "/users/u1/locations", raw).await;
        response.is_problem(StatusCode::BAD_REQUEST);
        assert!(response.detail().contains("JSON"), "{raw}: {}", response.detail());
    }
    let response = api.raw(&a, Method::PUT, &format!("/locations/{cabin}"), "{\"name\":").await;
    response.is_problem(StatusCode::BAD_REQUEST);
    assert!(response.detail().contains("not valid JSON"), "{}", response.detail());

    // DELETE answers the deleted location; afterwards it is gone.
    let deleted = api.call(&a, Method::DELETE, &format!("/locations/{home}"), None).await;
    assert_eq!(deleted.status, StatusCode::OK);
    assert_eq!(deleted.body, updated.body);
    api.get(&a, &format!("/locations/{home}")).await.is_problem(StatusCode::NOT_FOUND);
    api.call(&a, Method::DELETE, &format!("/locations/{home}"), None)
        .await
        .is_problem(StatusCode::NOT_FOUND);
    assert_eq!(api.get(&a, "/users/u1/locations").await.ids(), [cabin]);
}

#[tokio::test]
async fn chargers_and_hvacs_are_placed_at_their_users_locations() {
    let api = api().await;
    api.user("u1", "client-a", 0).await;
    api.user("u2", "client-a", 1).await;
    api.device("box", "u1", VendorType::Charger, "EASEE", "acc").await;
    api.device("box2", "u1", VendorType::Charger, "EASEE", "acc").await;
    api.device("heat", "u1", VendorType::Hvac, "TADO", "acc2").await;
    api.device("car", "u1", VendorType::Vehicle, "TESLA", "acc3").await;
    let a = api.token("client-a").await;
    let home = api.location(&a, "u1", "Home").await;
    let elsewhere = api.location(&a, "u2", "Elsewhere").await;

    let placed =
        api.call(&a, Method::PUT, "/chargers/box", Some(json!({ "locationId": home }))).await;
    assert_eq!(placed.status, StatusCode::OK, "{}", placed.body);
    assert_eq!(placed.body["id"], "box");
    assert_eq!(placed.body["location"]["id"], home.as_str());
    assert_eq!(placed.body["location"]["lastUpdated"], "2030-03-01T08:00:00.000Z");
    assert_eq!(api.get(&a, "/chargers/box").await.body["location"]["id"], home.as_str());
    // In lists, each charger carries its own placement (the unplaced one none).
    let listed = api.get(&a, "/chargers").await;
    assert_eq!(listed.ids(), ["box2", "box"]);
    assert_eq!(listed.body["data"][0]["location"]["id"], Value::Null);
    assert_eq!(listed.body["data"][1]["location"]["id"], home.as_str());
    assert_eq!(
        api.get(&a, "/users/u1/chargers").await.body["data"][1]["location"]["id"],
        home.as_str()
    );

    let placed =
        api.call(&a, Method::PUT, "/hvacs/heat", Some(json!({ "locationId": home }))).await;
    assert_eq!(placed.status, StatusCode::OK, "{}", placed.body);
    assert_eq!(placed.body["location"], json!({ "id": home }));

    // Only a location of the device's own user; a uuid or null; nothing else.
    for (body, what) in [
        (json!({ "locationId": elsewhere }), "locationId"),
        (json!({ "locationId": uuid::Uuid::new_v4().to_string() }), "locationId"),
        (json!({ "locationId": "not-a-uuid" }), "locationId"),
        (json!({ "locationId": 7 }), "locationId"),
        (json!({}), "locationId"),
        (json!({ "locationId": null, "name": "x" }), "name"),
    ] {
        let response = api.call(&a, Method::PUT, "/chargers/box", Some(body.clone())).await;
        response.is_problem(StatusCode::BAD_REQUEST);
        assert!(response.detail().contains(what), "{body}: {}", response.detail());
    }
    api.raw(&a, Method::PUT, "/hvacs/heat", "{oops").await.is_problem(StatusCode::BAD_REQUEST);
    // Not a charger, or no such device: 404.
    api.call(&a, Method::PUT, "/chargers/car", Some(json!({ "locationId": null })))
        .await
        .is_problem(StatusCode::NOT_FOUND);
    api.call(&a, Method::PUT, "/hvacs/nope", Some(json!({ "locationId": null })))
        .await
        .is_problem(StatusCode::NOT_FOUND);

    // null takes the charger off its location.
    let cleared =
        api.call(&a, Method::PUT, "/chargers/box", Some(json!({ "locationId": null }))).await;
    assert_eq!(cleared.status, StatusCode::OK);
    assert_eq!(cleared.body["location"]["id"], Value::Null);

    // Deleting a location takes its devices off it.
    assert_eq!(
        api.call(&a, Method::DELETE, &format!("/locations/{home}"), None).await.status,
        StatusCode::OK
    );
    assert_eq!(api.get(&a, "/hvacs/heat").await.body["location"], json!({ "id": null }));
}

#[tokio::test]
async fn wrong_methods_oversized_bodies_and_unknown_versions_get_problems() {
    let api = api().await;
    api.user("u1", "client-a", 0).await;
    let a = api.token("client-a").await;

    let response = api.call(&a, Method::DELETE, "/vehicles", None).await;
    response.is_problem(StatusCode::METHOD_NOT_ALLOWED);
    assert!(response.headers[header::ALLOW].to_str().unwrap().contains("GET"));
    assert!(response.detail().contains("DELETE"), "{}", response.detail());
    api.call(&a, Method::PATCH, "/locations", None)
        .await
        .is_problem(StatusCode::METHOD_NOT_ALLOWED);

    // Over the body limit, announced or not, is 413; just under it is read (and validated).
    let big = format!("{{\"name\":\"{}\"}}", "x".repeat(oemgate_api::body::MAX_BODY_BYTES));
    api.raw(&a, Method::POST, "/users/u1/locations", &big)
        .await
        .is_problem(StatusCode::PAYLOAD_TOO_LARGE);
    let chunks = vec![Ok::<_, std::io::Error>(big.clone().into_bytes())];
    let request = Request::post("/users/u1/locations")
        .header(header::AUTHORIZATION, format!("Bearer {a}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from_stream(futures_stream(chunks)))
        .unwrap();
    api.send(request).await.is_problem(StatusCode::PAYLOAD_TOO_LARGE);
    let fits = format!("{{\"name\":\"{}\"}}", "x".repeat(1000));
    let response = api.raw(&a, Method::POST, "/users/u1/locations", &fits).await;
    response.is_problem(StatusCode::BAD_REQUEST);

    let request = Request::get("/users")
        .header(header::AUTHORIZATION, format!("Bearer {a}"))
        .header("Enode-Version", "2020-01-01")
        .body(Body::empty())
        .unwrap();
    let response = api.send(request).await;
    response.is_problem(StatusCode::BAD_REQUEST);
    assert!(response.detail().contains("Enode-Version"));
    let request = Request::get("/users")
        .header(header::AUTHORIZATION, format!("Bearer {a}"))
        .header("Enode-Version", "2024-10-01")
        .body(Body::empty())
        .unwrap();
    let response = api.send(request).await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(response.headers["enode-version"], "2024-10-01");

    api.get(&a, "/no/such/route").await.is_problem(StatusCode::NOT_FOUND);
    // A path parameter that is not UTF-8: axum's own rejection, as a problem.
    let response = api.get(&a, "/users/%FF").await;
    response.is_problem(StatusCode::BAD_REQUEST);
    assert!(!response.detail().is_empty());
    // Without a token, the new routes are closed too.
    let request = Request::get("/users").body(Body::empty()).unwrap();
    api.send(request).await.is_problem(StatusCode::UNAUTHORIZED);
}

/// A body stream of the given chunks (no Content-Length).
fn futures_stream(
    chunks: Vec<Result<Vec<u8>, std::io::Error>>,
) -> impl futures::Stream<Item = Result<Vec<u8>, std::io::Error>> + Send + 'static {
    futures::stream::iter(chunks)
}
