//! The six device collections through the router, each the same way: the client's list, one
//! device, refresh hints and the per-user list, with every failure (400 for bad page
//! parameters, 404 for unknown ids, another client's ids and devices of another type).
#![allow(clippy::unwrap_used)]

use axum::http::{Method, StatusCode};
use chrono::{DateTime, Utc};
use oemgate_core::VendorType;
use oemgate_store::ScheduleStore;
use serde_json::{Value, json};

mod common;

use common::{Api, SeedDevice, api};

fn start() -> DateTime<Utc> {
    "2030-03-01T08:00:00Z".parse().unwrap()
}

/// One collection with the paths a test sends, written out: client-a's device is `<x>-a`
/// (user "ua"), client-b's `<x>-b` (user "ub").
struct Collection {
    kind: VendorType,
    own: &'static str,
    other: &'static str,
    list: &'static str,
    one: &'static str,
    hint: &'static str,
    of_user: &'static str,
}

const COLLECTIONS: [Collection; 6] = [
    Collection {
        kind: VendorType::Vehicle,
        own: "vehicle-a",
        other: "vehicle-b",
        list: "/vehicles",
        one: "/vehicles/vehicle-a",
        hint: "/vehicles/vehicle-a/refresh-hint",
        of_user: "/users/ua/vehicles",
    },
    Collection {
        kind: VendorType::Charger,
        own: "charger-a",
        other: "charger-b",
        list: "/chargers",
        one: "/chargers/charger-a",
        hint: "/chargers/charger-a/refresh-hint",
        of_user: "/users/ua/chargers",
    },
    Collection {
        kind: VendorType::Battery,
        own: "battery-a",
        other: "battery-b",
        list: "/batteries",
        one: "/batteries/battery-a",
        hint: "/batteries/battery-a/refresh-hint",
        of_user: "/users/ua/batteries",
    },
    Collection {
        kind: VendorType::Hvac,
        own: "hvac-a",
        other: "hvac-b",
        list: "/hvacs",
        one: "/hvacs/hvac-a",
        hint: "/hvacs/hvac-a/refresh-hint",
        of_user: "/users/ua/hvacs",
    },
    Collection {
        kind: VendorType::Meter,
        own: "meter-a",
        other: "meter-b",
        list: "/meters",
        one: "/meters/meter-a",
        hint: "/meters/meter-a/refresh-hint",
        of_user: "/users/ua/meters",
    },
    Collection {
        kind: VendorType::Inverter,
        own: "inverter-a",
        other: "inverter-b",
        list: "/inverters",
        one: "/inverters/inverter-a",
        hint: "/inverters/inverter-a/refresh-hint",
        of_user: "/users/ua/inverters",
    },
];

impl Api {
    async fn user(&self, id: &str, client: &str) {
        self.seed_user(id, client, start()).await;
    }

    /// A device with a snapshot, due for its next poll an hour from the start.
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
        self.store.schedule(id, start() + chrono::Duration::hours(1)).await.unwrap();
    }
}

/// Client-a's user "ua" and client-b's user "ub", each with one device of every type.
async fn world() -> (Api, String, String) {
    let api = api().await;
    api.user("ua", "client-a").await;
    api.user("ub", "client-b").await;
    for c in &COLLECTIONS {
        api.device(c.own, "ua", c.kind).await;
        api.device(c.other, "ub", c.kind).await;
    }
    let a = api.token("client-a").await;
    let b = api.token("client-b").await;
    (api, a, b)
}

/// A device of `c`'s user that is of another type (the next collection's).
fn of_another_type(c: &Collection) -> &'static str {
    let index = COLLECTIONS.iter().position(|x| x.kind == c.kind).unwrap();
    COLLECTIONS[(index + 1) % COLLECTIONS.len()].own
}

#[tokio::test]
async fn every_collection_lists_only_the_clients_own_devices() {
    let (api, a, b) = world().await;
    for c in &COLLECTIONS {
        let listed = api.get(&a, c.list).await;
        assert_eq!(listed.status, StatusCode::OK, "{}: {}", c.list, listed.body);
        assert_eq!(listed.ids(), [c.own], "{}", c.list);
        assert_eq!(listed.body["data"][0]["userId"], "ua");
        assert_eq!(listed.body["pagination"], json!({ "after": null, "before": null }));
        assert_eq!(api.get(&b, c.list).await.ids(), [c.other], "{}", c.list);
        for query in ["pageSize=0", "pageSize=1001", "pageSize=abc", "after=garbage"] {
            let path = format!("{}?{query}", c.list);
            api.get(&a, &path).await.is_problem(StatusCode::BAD_REQUEST);
        }
    }
}

#[tokio::test]
async fn every_collection_reads_one_device_and_hides_the_others() {
    let (api, a, b) = world().await;
    for c in &COLLECTIONS {
        let read = api.get(&a, c.one).await;
        assert_eq!(read.status, StatusCode::OK, "{}: {}", c.one, read.body);
        assert_eq!(read.body["id"], c.own);
        assert_eq!(read.body["userId"], "ua");
        let list = c.list;
        // Another client's device, an unknown id, and the user's device of another type.
        for id in [c.other, "unknown", of_another_type(c)] {
            let response = api.get(&a, &format!("{list}/{id}")).await;
            response.is_problem(StatusCode::NOT_FOUND);
            assert!(response.detail().contains(id), "{list}/{id}: {}", response.detail());
        }
        api.get(&b, c.one).await.is_problem(StatusCode::NOT_FOUND);
    }
}

#[tokio::test]
async fn every_collection_takes_refresh_hints_for_the_clients_own_devices() {
    let (api, a, b) = world().await;
    let later = start() + chrono::Duration::hours(1);
    for c in &COLLECTIONS {
        let hinted = api.call(&a, Method::POST, c.hint, None).await;
        assert_eq!(hinted.status, StatusCode::NO_CONTENT, "{}: {}", c.hint, hinted.body);
        assert_eq!(hinted.body, Value::Null);
        assert_eq!(api.store.due_at(c.own).await.unwrap(), Some(start()), "poll brought forward");
        // A second hint within the interval is accepted and folded into the first.
        let again = api.call(&a, Method::POST, c.hint, None).await;
        assert_eq!(again.status, StatusCode::NO_CONTENT);

        let list = c.list;
        for id in [c.other, "unknown", of_another_type(c)] {
            let path = format!("{list}/{id}/refresh-hint");
            api.call(&a, Method::POST, &path, None).await.is_problem(StatusCode::NOT_FOUND);
        }
        api.call(&b, Method::POST, c.hint, None).await.is_problem(StatusCode::NOT_FOUND);
        assert_eq!(api.store.due_at(c.other).await.unwrap(), Some(later), "untouched");
    }
}

#[tokio::test]
async fn every_collection_lists_a_users_devices() {
    let (api, a, b) = world().await;
    for c in &COLLECTIONS {
        let listed = api.get(&a, c.of_user).await;
        assert_eq!(listed.status, StatusCode::OK, "{}: {}", c.of_user, listed.body);
        assert_eq!(listed.ids(), [c.own]);
        let plural = c.list.trim_start_matches('/');
        // The other client's user, an unknown user: 404 naming the user.
        for user in ["ub", "nobody"] {
            let response = api.get(&a, &format!("/users/{user}/{plural}")).await;
            response.is_problem(StatusCode::NOT_FOUND);
            assert_eq!(response.body["title"], "User does not exist");
        }
        api.get(&b, c.of_user).await.is_problem(StatusCode::NOT_FOUND);
        assert_eq!(api.get(&b, &format!("/users/ub/{plural}")).await.ids(), [c.other]);
        for query in ["pageSize=0", "pageSize=1001", "before=garbage"] {
            let path = format!("{}?{query}", c.of_user);
            api.get(&a, &path).await.is_problem(StatusCode::BAD_REQUEST);
        }
    }
}
