//! Vendor health, integrations, interventions and statistics through the running demo: the
//! poller's reads become history the statistics are computed from.

use oemgate_core::{Clock, VendorType};
use oemgate_store::{DeviceFilter, PageRequest};
use serde_json::Value;

use crate::support::{demo, poll_for, token};

async fn get(http: &reqwest::Client, url: String, token: &str) -> (u16, Value) {
    let response = http.get(url).bearer_auth(token).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn vendor_health_and_statistics_follow_the_pollers_reads() {
    let (demo, clock) = demo(4, None).await;
    poll_for(&demo, &clock, 30).await;
    let http = reqwest::Client::new();
    let api = &demo.api_url;
    let t = token(&http, &demo).await;

    let (status, body) = get(&http, format!("{api}/health/inverters"), &t).await;
    assert_eq!(status, 200, "{body}");
    let vendors: Vec<&str> =
        body.as_array().unwrap().iter().map(|v| v["vendor"].as_str().unwrap()).collect();
    assert!(vendors.contains(&"SOLAREDGE") && vendors.contains(&"ENPHASE"), "{body}");
    assert!(body.as_array().unwrap().iter().all(|v| v["status"] == "READY"), "{body}");
    let (status, body) = get(&http, format!("{api}/integrations?assetTypes=vehicle"), &t).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.as_array().unwrap().iter().any(|v| v["vendor"] == "TESLA"), "{body}");
    let (status, body) = get(&http, format!("{api}/interventions"), &t).await;
    assert_eq!(status, 200, "{body}");
    let first = body[0]["id"].as_str().expect("a catalogue").to_string();
    let (status, body) = get(&http, format!("{api}/interventions/{first}"), &t).await;
    assert_eq!((status, body["id"].as_str()), (200, Some(first.as_str())));

    let all = PageRequest { page_size: 1000, ..PageRequest::default() };
    let devices = demo.store.list_devices(&DeviceFilter::default(), &all).await.unwrap().items;
    let inverter = devices
        .iter()
        .find(|d| d.device.device_type == VendorType::Inverter)
        .expect("the demo links inverters");
    // Today (the demo clock's day) is still being filled: 202 with the polled half hour.
    let url = format!("{api}/inverters/{}/statistics?year=2026&month=6&day=1", inverter.device.id);
    let (status, body) = get(&http, url, &t).await;
    assert_eq!(status, 202, "{body}");
    assert!(body["retryAfter"].is_string(), "{body}");
    let data = body["resolutions"]["QUARTER_HOUR"]["data"].as_array().unwrap();
    assert!(data.iter().any(|d| d["value"].is_number()), "no polled bucket in {body}");

    // A vehicle the poller read awake (a sleeping one's first reads carry no charge state,
    // so they leave no sample).
    let from = "2026-06-01T00:00:00Z".parse().unwrap();
    let mut vehicle = None;
    for d in devices.iter().filter(|d| d.device.device_type == VendorType::Vehicle) {
        if !demo.store.samples(&d.device.id, from, clock.now()).await.unwrap().is_empty() {
            vehicle = Some(d);
            break;
        }
    }
    let vehicle = vehicle.expect("an awake vehicle");
    let user = &vehicle.device.user_id;
    let url = format!(
        "{api}/users/{user}/statistics/charging?startDate=2026-06-01T00:00:00Z&type=vehicle&resolution=HOUR"
    );
    let (status, body) = get(&http, url, &t).await;
    assert_eq!(status, 200, "{body}");
    // Every polled hour of the user's vehicles has a bucket.
    assert!(!body.as_array().unwrap().is_empty(), "{body}");
    let url = format!(
        "{api}/users/{user}/statistics/charging/sessions?startDate=2026-06-01T00:00:00Z&type=vehicle"
    );
    let (status, body) = get(&http, url, &t).await;
    assert_eq!(status, 200, "{body}");
}
