//! The fixtures (Wallbox's own example from the reference, plus richer anonymized answers)
//! mapped to the normalized charger: values, units, signs and states.

#![allow(clippy::unwrap_used)]

use chrono::{DateTime, TimeZone, Utc};
use oemgate_core::{
    Charger, ChargerPowerDeliveryState as S, ChargerVendor, DeviceRef, ErrorKind, VendorType,
};
use oemgate_wallbox::client::{check_token, classify_api_error, classify_auth_error, decode};
use oemgate_wallbox::map::{self, StatusGroup};
use oemgate_wallbox::model::{ChargerStatus, GroupsResponse, TokenResponse};
use reqwest::header::{HeaderMap, HeaderValue};
use serde::de::DeserializeOwned;

fn raw(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn fixture<T: DeserializeOwned>(name: &str) -> T {
    decode(&raw(name), name).unwrap()
}

fn device(id: &str) -> DeviceRef {
    DeviceRef {
        id: "dev-1".into(),
        user_id: "user-1".into(),
        device_type: VendorType::Charger,
        vendor_id: id.into(),
        site_id: Some("280001".into()),
    }
}

/// A read time after every fixture's timestamps but the future one.
fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 13, 18, 0, 0).unwrap()
}

fn status(name: &str) -> Charger {
    map::charger_from_status(&device("700001"), &fixture::<ChargerStatus>(name), now())
}

fn assert_common(c: &Charger) {
    assert_eq!(c.id, "dev-1");
    assert_eq!(c.user_id, "user-1");
    assert_eq!(c.vendor, ChargerVendor::Wallbox);
    assert_eq!(c.last_seen, now());
    assert_eq!(c.information.brand, "Wallbox");
    assert_eq!(c.information.year, None);
    assert!(c.capabilities.start_charging.is_capable);
    assert!(c.capabilities.stop_charging.is_capable);
    assert!(c.capabilities.set_max_current.is_capable);
    assert!(c.capabilities.information.is_capable && c.capabilities.charge_state.is_capable);
    assert_eq!(c.scopes, ["charger:control:charging", "charger:read:data"]);
    assert_eq!(c.location.id, None);
    let json = serde_json::to_value(c).unwrap();
    assert_eq!(json["vendor"], "WALLBOX");
    // Round-trips as the Enode-style JSON.
    let back: Charger = serde_json::from_value(json).unwrap();
    assert_eq!(&back, c);
}

#[test]
fn the_reference_example() {
    // status_id 193 is CHARGING; the example's charging_power is 0 kW at that instant.
    let c = status("status_reference.json");
    assert_common(&c);
    assert!(c.is_reachable);
    assert_eq!(c.charge_state.power_delivery_state, S::PluggedInCharging);
    assert_eq!(c.charge_state.is_plugged_in, Some(true));
    assert_eq!(c.charge_state.is_charging, Some(true));
    assert_eq!(c.charge_state.charge_rate, Some(0.0), "kW as Wallbox sends it");
    assert_eq!(c.charge_state.max_current, Some(24.0), "A, config_data.max_charging_current");
    assert_eq!(c.charge_state.last_updated, Some(now()), "no last_sync: the read time");
    assert_eq!(c.information.serial_number, "20000");
    assert_eq!(c.information.model, "Pulsar Plus", "PLP1-…");
}

#[test]
fn the_reference_sign_in() {
    let t: TokenResponse = fixture("signin_reference.json");
    let t = check_token(t, "signin").unwrap();
    let a = &t.data.attributes;
    assert_eq!(a.user_id.as_deref(), Some("12345"));
    // ttl and refresh_token_ttl are epoch milliseconds: instants, not durations.
    assert_eq!(map::epoch_ms(a.ttl), Some(Utc.with_ymd_and_hms(2026, 6, 15, 18, 0, 0).unwrap()));
    assert_eq!(
        map::epoch_ms(a.refresh_token_ttl),
        Some(Utc.with_ymd_and_hms(2026, 7, 15, 18, 0, 0).unwrap())
    );
    let r: TokenResponse = fixture("refresh_without_refresh_token.json");
    assert_eq!(r.data.attributes.refresh_token, None);
    assert!(check_token(r, "refresh-token").is_ok());
}

#[test]
fn a_refusal_inside_a_200_sign_in() {
    let t: TokenResponse = fixture("signin_error_in_body.json");
    assert_eq!(check_token(t, "signin").unwrap_err().kind(), ErrorKind::Unauthorized);
}

#[test]
fn charging_with_power() {
    let c = status("status_charging.json");
    assert_common(&c);
    assert_eq!(c.charge_state.power_delivery_state, S::PluggedInCharging);
    assert_eq!(c.charge_state.is_charging, Some(true));
    assert_eq!(c.charge_state.charge_rate, Some(7.36));
    assert_eq!(c.charge_state.max_current, Some(32.0));
    assert_eq!(
        c.charge_state.last_updated,
        Some(Utc.with_ymd_and_hms(2023, 8, 18, 6, 50, 26).unwrap()),
        "last_sync, read as UTC"
    );
    assert_eq!(c.information.serial_number, "9988552");
    assert_eq!(c.information.model, "Pulsar Plus");
}

#[test]
fn paused_ready_waiting_locked() {
    let c = status("status_paused.json");
    assert_common(&c);
    assert_eq!(c.charge_state.power_delivery_state, S::PluggedInStopped);
    assert_eq!(
        (c.charge_state.is_plugged_in, c.charge_state.is_charging),
        (Some(true), Some(false))
    );
    assert_eq!(c.charge_state.charge_rate, None, "only while charging");
    assert_eq!(c.charge_state.max_current, Some(16.0));

    let c = status("status_ready.json");
    assert_common(&c);
    assert_eq!(c.charge_state.power_delivery_state, S::Unplugged);
    assert_eq!(
        (c.charge_state.is_plugged_in, c.charge_state.is_charging),
        (Some(false), Some(false))
    );
    assert_eq!(c.charge_state.charge_rate, None);
    assert_eq!(c.information.model, "Copper SB");

    let c = status("status_waiting_for_car.json");
    assert_eq!(c.charge_state.power_delivery_state, S::PluggedInNoPower);
    assert_eq!(c.charge_state.is_plugged_in, Some(true));
    assert_eq!(c.charge_state.is_charging, Some(false));

    let c = status("status_locked_car_connected.json");
    assert_eq!(c.charge_state.power_delivery_state, S::PluggedInStopped);
    assert_eq!(c.charge_state.is_plugged_in, Some(true));
    assert_eq!(c.charge_state.is_charging, Some(false));
}

#[test]
fn disconnected_from_the_cloud() {
    let c = status("status_disconnected.json");
    assert_common(&c);
    assert!(!c.is_reachable);
    assert_eq!(c.charge_state.power_delivery_state, S::Unknown);
    assert_eq!(c.charge_state.is_plugged_in, None);
    assert_eq!(c.charge_state.is_charging, None);
    assert_eq!(c.charge_state.charge_rate, None);
    assert_eq!(c.charge_state.max_current, Some(20.0), "the setting is still known");
    assert_eq!(
        c.charge_state.last_updated,
        Some(Utc.with_ymd_and_hms(2026, 6, 10, 8, 12, 3).unwrap()),
        "the last time Wallbox heard from it"
    );
}

#[test]
fn error_state() {
    let c = status("status_error.json");
    assert!(c.is_reachable);
    assert_eq!(c.charge_state.power_delivery_state, S::Unknown);
    assert_eq!(c.charge_state.is_plugged_in, None);
    assert_eq!(c.charge_state.is_charging, Some(false));
}

#[test]
fn discharging_is_negative() {
    let c = status("status_discharging.json");
    assert_eq!(c.charge_state.power_delivery_state, S::PluggedInDischarging);
    assert_eq!(c.charge_state.is_charging, Some(false));
    assert_eq!(c.charge_state.charge_rate, Some(-3.7), "negative while discharging");
    assert_eq!(c.information.model, "Quasar");
}

#[test]
fn numbers_as_strings_and_garbage() {
    let c = status("status_strings.json");
    assert_eq!(c.charge_state.power_delivery_state, S::PluggedInCharging);
    assert_eq!(c.charge_state.charge_rate, Some(11.04));
    assert_eq!(c.charge_state.max_current, Some(24.0));
    assert_eq!(c.charge_state.last_updated, Some(now()), "an unreadable last_sync");
    assert_eq!(c.information.serial_number, "20000");
    assert_eq!(c.information.model, "Wallbox", "no part number");
}

#[test]
fn every_optional_field_null() {
    let c = status("status_nulls.json");
    assert_common(&c);
    assert!(c.is_reachable);
    assert_eq!(c.charge_state.power_delivery_state, S::Unknown);
    assert_eq!(c.charge_state.is_plugged_in, None);
    assert_eq!(c.charge_state.is_charging, None);
    assert_eq!(c.charge_state.charge_rate, None);
    assert_eq!(c.charge_state.max_current, None);
    assert_eq!(c.information.serial_number, "700001", "falls back to the charger id");
    assert_eq!(c.information.model, "Wallbox");
}

#[test]
fn timestamps_never_lie_in_the_future() {
    let c = status("status_future_sync.json");
    assert_eq!(c.charge_state.last_updated, Some(now()));
}

#[test]
fn the_groups_list() {
    let groups: GroupsResponse = fixture("groups.json");
    let found = map::discovered_devices(&groups);
    let ids: Vec<(&str, Option<&str>, Option<&str>)> = found
        .iter()
        .map(|d| (d.vendor_id.as_str(), d.site_id.as_deref(), d.display_name.as_deref()))
        .collect();
    assert_eq!(
        ids,
        [
            ("700001", Some("280001"), Some("Garage")),
            ("700002", Some("280001"), Some("Carport")),
            ("700003", Some("280002"), Some("Cabin")),
        ]
    );
    assert!(found.iter().all(|d| d.device_type == VendorType::Charger));

    let entry = map::find_in_groups(&groups, "700001").unwrap();
    let c = map::charger_from_group_entry(&device("700001"), entry, now());
    assert_common(&c);
    assert_eq!(c.charge_state.power_delivery_state, S::PluggedInCharging);
    assert_eq!(c.charge_state.charge_rate, Some(11.04));
    assert_eq!(c.charge_state.max_current, Some(16.0));
    assert_eq!(c.charge_state.last_updated, Some(now()));
    assert_eq!(c.information.model, "Pulsar Plus");
    assert_eq!(c.information.serial_number, "700001");

    let entry = map::find_in_groups(&groups, "700003").unwrap();
    assert_eq!(entry.status, Some(178), "`state` is read as `status`");
    let c = map::charger_from_group_entry(&device("700003"), entry, now());
    assert_eq!(c.charge_state.power_delivery_state, S::PluggedInStopped);
    assert_eq!(c.information.model, "Wallbox");
    assert_eq!(c.information.serial_number, "700003");
    assert!(map::find_in_groups(&groups, "1").is_none());

    let sparse: GroupsResponse = fixture("groups_without_status.json");
    let entry = map::find_in_groups(&sparse, "9988552").unwrap();
    assert_eq!(entry.status, None, "the adapter reads this one's status instead");
    assert_eq!(map::discovered_devices(&sparse)[0].site_id.as_deref(), Some("289814"));
}

#[test]
fn the_update_echo_is_json() {
    let echo: serde_json::Value = fixture("charger_update_echo.json");
    assert_eq!(echo["data"]["chargerData"]["maxChargingCurrent"], 16);
}

#[test]
fn error_bodies_classify() {
    let now = now();
    let mut headers = HeaderMap::new();
    headers.insert("retry-after", HeaderValue::from_static("37"));
    let e = classify_api_error(429, &headers, &raw("error_429.json"), "chargers/status", now);
    assert_eq!(e.kind(), ErrorKind::RateLimited);
    assert_eq!(e.retry_after(), Some(std::time::Duration::from_secs(37)));
    assert_eq!(e.vendor(), "WALLBOX");
    assert!(e.message().contains("chargers/status"));

    let body = raw("error_409_disconnected.json");
    let e = classify_api_error(409, &HeaderMap::new(), &body, "remote-action", now);
    assert_eq!(e.kind(), ErrorKind::DeviceOffline);

    let body = raw("error_403_jsonapi.json");
    let e = classify_api_error(403, &HeaderMap::new(), &body, "v2/charger", now);
    assert_eq!(e.kind(), ErrorKind::Unauthorized);
    let api = oemgate_wallbox::api_error_of(&e).unwrap();
    assert_eq!(api.message, "Forbidden: The user has no permission on this charger");
    let e = classify_auth_error(403, &HeaderMap::new(), &body, "signin", now);
    assert_eq!(e.kind(), ErrorKind::Unauthorized);
}

#[test]
fn status_groups_follow_the_reference_table() {
    let table: &[(&[i64], StatusGroup)] = &[
        (&[193, 194, 195], StatusGroup::Charging),
        (&[161, 162], StatusGroup::Ready),
        (&[178, 182], StatusGroup::Paused),
        (&[177, 179], StatusGroup::Scheduled),
        (&[0, 163], StatusGroup::Disconnected),
        (&[14, 15], StatusGroup::Error),
        (&[196], StatusGroup::Discharging),
        (&[166], StatusGroup::Updating),
    ];
    for (codes, group) in table {
        for code in *codes {
            assert_eq!(map::status_group(Some(*code)), *group, "{code}");
        }
    }
    // The reference's WAITING (164, 180, 181, 183–189) and LOCKED (165, 209, 210), refined.
    for code in [164, 180, 181, 183, 184, 185, 186, 187, 188, 189] {
        let d = map::delivery(map::status_group(Some(code)));
        assert_eq!(d.plugged_in, Some(true), "{code}");
        assert_eq!(d.charging, Some(false), "{code}");
    }
    for (code, plugged) in [(165, false), (209, false), (210, true)] {
        assert_eq!(map::delivery(map::status_group(Some(code))).plugged_in, Some(plugged));
    }
}
