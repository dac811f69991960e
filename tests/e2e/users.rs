//! Users through the running demo: the demo client owns the users it linked, a second API
//! client sees none of them, and unlinking takes devices off the poll schedule.

use std::collections::BTreeSet;
use std::time::Duration;

use oemgate_api::ClientCredentials;
use oemgate_core::Clock;
use oemgate_store::{DeviceFilter, PageRequest};
use serde_json::{Value, json};

use crate::support::{demo, token};

async fn get(http: &reqwest::Client, url: String, token: &str) -> (u16, Value) {
    let response = http.get(url).bearer_auth(token).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn delete(http: &reqwest::Client, url: String, token: &str) -> u16 {
    http.delete(url).bearer_auth(token).send().await.unwrap().status().as_u16()
}

fn ids(body: &Value) -> BTreeSet<String> {
    body["data"].as_array().unwrap().iter().map(|u| u["id"].as_str().unwrap().to_string()).collect()
}

#[tokio::test]
async fn the_demo_clients_users_are_its_own_and_can_be_unlinked() {
    let (demo, clock) = demo(4, None).await;
    for _ in 0..6 {
        clock.advance(Duration::from_secs(10));
        demo.poller.tick().await.unwrap();
    }
    let http = reqwest::Client::new();
    let api = &demo.api_url;
    let all = PageRequest { page_size: 1000, ..PageRequest::default() };
    let devices = demo.store.list_devices(&DeviceFilter::default(), &all).await.unwrap().items;
    let owners: BTreeSet<String> = devices.iter().map(|d| d.device.user_id.clone()).collect();

    // The demo client sees every user it linked, with valid linked vendors.
    let a = token(&http, &demo).await;
    let (status, users) = get(&http, format!("{api}/users?pageSize=1000"), &a).await;
    assert_eq!(status, 200, "{users}");
    assert_eq!(ids(&users), owners);
    let vehicle = devices
        .iter()
        .find(|d| d.vendor == "TESLA" && d.device.device_type == oemgate_core::VendorType::Vehicle)
        .expect("the demo links Tesla vehicles");
    let user = vehicle.device.user_id.clone();
    let (status, body) = get(&http, format!("{api}/users/{user}"), &a).await;
    assert_eq!(status, 200, "{body}");
    let linked = body["linkedVendors"].as_array().unwrap();
    assert!(
        linked.contains(&json!({ "vendor": "TESLA", "vendorType": "vehicle", "isValid": true })),
        "{body}"
    );

    // Another API client sees nothing of them.
    let other =
        ClientCredentials { client_id: "other".into(), client_secret: "other-secret".into() };
    oemgate_api::create_client(demo.store.as_ref(), &other, "2024-10-01", clock.now())
        .await
        .unwrap();
    let response = http
        .post(format!("{api}/oauth2/token"))
        .basic_auth("other", Some("other-secret"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    let b = response.json::<Value>().await.unwrap()["access_token"].as_str().unwrap().to_string();
    let (status, body) = get(&http, format!("{api}/users"), &b).await;
    assert_eq!((status, ids(&body).len()), (200, 0), "{body}");
    let (status, body) = get(&http, format!("{api}/vehicles"), &b).await;
    assert_eq!((status, ids(&body).len()), (200, 0), "{body}");
    for path in [format!("users/{user}"), format!("vehicles/{}", vehicle.device.id)] {
        assert_eq!(get(&http, format!("{api}/{path}"), &b).await.0, 404, "{path}");
    }
    assert_eq!(delete(&http, format!("{api}/users/{user}"), &b).await, 404);

    // The owner disconnects the vehicles, then unlinks the user.
    let a = token(&http, &demo).await;
    let status = delete(&http, format!("{api}/users/{user}/vendors/TESLA/vehicle"), &a).await;
    assert_eq!(status, 204);
    let (status, _) = get(&http, format!("{api}/vehicles/{}", vehicle.device.id), &a).await;
    assert_eq!(status, 404);
    assert_eq!(demo.store.due_at(&vehicle.device.id).await.unwrap(), None);
    let events = demo.store.read_events(None, 100_000).await.unwrap();
    assert!(events.iter().any(|e| e.event == "user:vehicle:deleted" && e.user_id == user));

    assert_eq!(delete(&http, format!("{api}/users/{user}"), &a).await, 204);
    let (_, users) = get(&http, format!("{api}/users?pageSize=1000"), &a).await;
    assert!(!ids(&users).contains(&user));
    let left = demo
        .store
        .list_devices(
            &DeviceFilter { user_id: Some(user.clone()), ..DeviceFilter::default() },
            &all,
        )
        .await
        .unwrap();
    assert!(left.items.is_empty());
    // The poller carries on without the user's devices.
    clock.advance(Duration::from_secs(60));
    demo.poller.tick().await.unwrap();
    demo.stop().await;
}
