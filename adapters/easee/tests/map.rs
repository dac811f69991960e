//! The fixtures (the example JSON of Easee's section in the vendor reference, plus richer
//! anonymized answers) mapped to the normalized charger: values, units and signs.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use oemgate_core::{
    Charger, ChargerPowerDeliveryState, ChargerVendor, DeviceRef, ErrorKind, VendorType,
};
use oemgate_easee::client::{
    Scope, api_error_of, classify_api_error, classify_token_error, decode, decode_command_reply,
};
use oemgate_easee::map::{self, OpMode};
use oemgate_easee::model::{
    ChargerEntry, ChargerState, DynamicCurrentRequest, ProductSite, TokenResponse,
};
use reqwest::header::{HeaderMap, HeaderValue};
use serde::de::DeserializeOwned;

fn raw(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn fixture<T: DeserializeOwned>(name: &str) -> T {
    decode(&raw(name), name).unwrap()
}

fn device(serial: &str) -> DeviceRef {
    DeviceRef {
        id: "charger-1".into(),
        user_id: "user-1".into(),
        device_type: VendorType::Charger,
        vendor_id: serial.into(),
        site_id: Some("54321".into()),
    }
}

/// A read time after every fixture's timestamps (but one).
fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 1, 1, 12, 0, 0).unwrap()
}

fn ts(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn charger(name: &str) -> Charger {
    let state: ChargerState = fixture(name);
    let charger = map::charger_from_state(&device("EH123456"), &state, now());
    // The resource survives the Enode-style JSON round trip (its schema holds).
    let json = serde_json::to_value(&charger).unwrap();
    let back: Charger = serde_json::from_value(json).unwrap();
    assert_eq!(back, charger);
    charger
}

#[test]
fn the_reference_example_awaits_a_start() {
    let c = charger("charger_state_reference.json");
    assert_eq!(c.id, "charger-1");
    assert_eq!(c.user_id, "user-1");
    assert_eq!(c.vendor, ChargerVendor::Easee);
    assert!(c.is_reachable);
    assert_eq!(c.last_seen, now());
    let s = &c.charge_state;
    assert_eq!(s.power_delivery_state, ChargerPowerDeliveryState::PluggedInStopped);
    assert_eq!(s.is_plugged_in, Some(true));
    assert_eq!(s.is_charging, Some(false));
    assert_eq!(s.charge_rate, None, "only while charging");
    // dynamicChargerCurrent is in A, like maxCurrent: 32.0 stays 32.0.
    assert_eq!(s.max_current, Some(32.0));
    assert_eq!(s.last_updated, Some(ts("2020-07-18T20:01:16Z")));
    assert_eq!(c.information.brand, "Easee");
    assert_eq!(c.information.model, "Home");
    assert_eq!(c.information.serial_number, "EH123456");
    assert_eq!(c.information.year, None);
    assert_eq!(c.location.id, None);
    assert!(c.capabilities.start_charging.is_capable);
    assert!(c.capabilities.stop_charging.is_capable);
    assert!(c.capabilities.set_max_current.is_capable);
    assert!(c.capabilities.start_charging.intervention_ids.is_empty());
    assert_eq!(c.scopes, ["charger:control:charging", "charger:read:data"]);
    // The JSON as the API serves it.
    let json = serde_json::to_value(&c).unwrap();
    assert_eq!(json["vendor"], "EASEE");
    assert_eq!(json["chargeState"]["powerDeliveryState"], "PLUGGED_IN:STOPPED");
    assert_eq!(json["chargeState"]["chargeRate"], serde_json::Value::Null);
    assert_eq!(json["lastSeen"], "2024-01-01T12:00:00Z");
}

#[test]
fn charging_reports_total_power_in_kw_unconverted() {
    let c = charger("charger_state_charging.json");
    let s = &c.charge_state;
    assert_eq!(s.power_delivery_state, ChargerPowerDeliveryState::PluggedInCharging);
    assert_eq!(s.is_plugged_in, Some(true));
    assert_eq!(s.is_charging, Some(true));
    // totalPower is kW at Easee already (11.0412 kW, not 11 041 W nor 0.011 kW).
    assert_eq!(s.charge_rate, Some(11.0412));
    assert!(s.charge_rate.unwrap() > 0.0, "charging is positive");
    assert_eq!(s.max_current, Some(16.0));
    assert_eq!(s.last_updated, Some(ts("2024-01-01T11:59:30Z")));
}

#[test]
fn every_op_mode_maps() {
    use ChargerPowerDeliveryState as P;
    let cases = [
        ("charger_state_disconnected.json", P::Unplugged, Some(false), Some(false)),
        ("charger_state_completed.json", P::PluggedInStopped, Some(true), Some(false)),
        ("charger_state_ready_to_charge.json", P::PluggedInInitializing, Some(true), Some(false)),
        ("charger_state_no_power.json", P::PluggedInNoPower, Some(true), Some(false)),
        ("charger_state_error.json", P::PluggedInFault, Some(true), Some(false)),
        ("charger_state_awaiting_authorization.json", P::PluggedInStopped, Some(true), Some(false)),
        ("charger_state_paused.json", P::PluggedInStopped, Some(true), Some(false)),
        ("charger_state_unknown_mode.json", P::Unknown, None, None),
    ];
    for (name, delivery, plugged, charging) in cases {
        let c = charger(name);
        let s = &c.charge_state;
        assert_eq!(s.power_delivery_state, delivery, "{name}");
        assert_eq!(s.is_plugged_in, plugged, "{name}");
        assert_eq!(s.is_charging, charging, "{name}");
        assert_eq!(s.charge_rate, None, "{name}: not charging, no rate");
        assert!(c.is_reachable, "{name}");
    }
    // Reasons only matter in mode 6.
    assert_eq!(
        map::power_delivery_state(OpMode::Completed, Some(map::REASON_EV_NOT_CHARGING)),
        ChargerPowerDeliveryState::PluggedInStopped
    );
    assert_eq!(
        map::power_delivery_state(OpMode::from_code(8), None),
        ChargerPowerDeliveryState::PluggedInStopped
    );
}

#[test]
fn a_paused_charger_reports_its_zero_dynamic_current() {
    let c = charger("charger_state_paused.json");
    assert_eq!(c.charge_state.max_current, Some(0.0));
}

#[test]
fn offline_chargers_report_no_live_values() {
    for name in ["charger_state_offline.json", "charger_state_offline_mode.json"] {
        let c = charger(name);
        assert!(!c.is_reachable, "{name}");
        let s = &c.charge_state;
        assert_eq!(s.power_delivery_state, ChargerPowerDeliveryState::Unknown, "{name}");
        assert_eq!(s.is_plugged_in, None, "{name}");
        assert_eq!(s.is_charging, None, "{name}: the cloud's cached mode 3 is stale");
        assert_eq!(s.charge_rate, None, "{name}");
        assert_eq!(s.max_current, Some(16.0), "{name}: a setting, still known");
        assert_eq!(c.last_seen, ts("2023-12-31T22:14:09Z"), "{name}: the last pulse");
        assert_eq!(s.last_updated, Some(ts("2023-12-31T22:14:09Z")), "{name}");
    }
}

#[test]
fn missing_and_null_fields_are_null_never_zero() {
    let c = charger("charger_state_nulls.json");
    let s = &c.charge_state;
    // isOnline null: reachability from the mode (3 is not offline).
    assert!(c.is_reachable);
    assert_eq!(s.power_delivery_state, ChargerPowerDeliveryState::PluggedInCharging);
    assert_eq!(s.is_charging, Some(true));
    assert_eq!(s.charge_rate, None, "totalPower null is not 0 kW");
    assert_eq!(s.max_current, None);
    assert_eq!(s.last_updated, Some(now()), "no pulse: the read time");

    let c = charger("charger_state_minimal.json");
    assert!(c.is_reachable);
    assert_eq!(c.charge_state.power_delivery_state, ChargerPowerDeliveryState::Unplugged);
    assert_eq!(c.charge_state.max_current, None);
}

#[test]
fn timestamps_never_lie_in_the_future_and_power_is_never_negative() {
    let c = charger("charger_state_future_pulse.json");
    assert_eq!(c.charge_state.last_updated, Some(now()), "a pulse 7 s ahead is clamped");
    assert_eq!(c.charge_state.charge_rate, Some(0.0), "-0.004 kW of noise is 0");
    assert_eq!(c.charge_state.max_current, Some(10.0));
}

#[test]
fn products_become_discovered_chargers() {
    let sites: Vec<ProductSite> = fixture("products.json");
    let found = map::discovered_devices(&sites);
    let summary: Vec<(&str, Option<&str>, Option<&str>)> = found
        .iter()
        .map(|d| (d.vendor_id.as_str(), d.site_id.as_deref(), d.display_name.as_deref()))
        .collect();
    assert_eq!(
        summary,
        [
            ("EH123497", Some("54321"), Some("Easee Home 12349")),
            ("EH777001", Some("54321"), None),
            ("EC000042", Some("98765"), Some("Cabin charger")),
        ]
    );
    assert!(found.iter().all(|d| d.device_type == VendorType::Charger));
    assert_eq!(map::model_of_serial("EC000042"), "Charge");
}

#[test]
fn the_chargers_list_parses() {
    let list: Vec<ChargerEntry> = fixture("chargers.json");
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].id, "EH12345");
    assert_eq!(list[0].product_code, Some(1));
}

#[test]
fn tokens_with_integer_and_float_lifetimes() {
    let t: TokenResponse = fixture("token_reference.json");
    assert_eq!(t.access_token, "anonymized-access-token");
    assert_eq!(t.expires_in, Some(3600.0));
    assert_eq!(t.refresh_token.as_deref(), Some("anonymized-refresh-token"));
    assert_eq!(t.access_claims, ["User"]);
    assert_eq!(t.token_type.as_deref(), Some("Bearer"));
    let t: TokenResponse = fixture("token_float_expiry.json");
    assert_eq!(t.expires_in, Some(86_400.0));
}

#[test]
fn the_dynamic_current_request_has_the_reference_shape() {
    let request: DynamicCurrentRequest = fixture("set_dynamic_charger_current_request.json");
    assert_eq!(request, DynamicCurrentRequest { amps: 16.0, minutes: 0 });
    let json = serde_json::to_value(request).unwrap();
    assert_eq!(json, serde_json::json!({"amps": 16.0, "minutes": 0}));
}

#[test]
fn command_answers() {
    let reply = decode_command_reply(&raw("command_accepted.json"), "pause").unwrap().unwrap();
    let first = reply.first().unwrap();
    assert_eq!(first.device.as_deref(), Some("EH630000"));
    assert_eq!(first.command_id, Some(48));
    assert_eq!(first.ticks, Some(638_266_374_407_066_800));
    let reply = decode_command_reply(&raw("settings_accepted.json"), "settings").unwrap().unwrap();
    assert_eq!(reply.first().and_then(|c| c.command_id), Some(48));
}

#[test]
fn error_fixtures_classify() {
    let e = classify_token_error(
        400,
        &HeaderMap::new(),
        &raw("error_400_invalid_user_password.json"),
        "login",
        now(),
    );
    assert_eq!(e.kind(), ErrorKind::Unauthorized);
    assert_eq!(api_error_of(&e).unwrap().error_code, Some(100));

    let classify = |status, name: &str| {
        classify_api_error(status, &HeaderMap::new(), &raw(name), "cmd", Scope::Charger, now())
    };
    assert_eq!(
        classify(400, "error_400_no_car_connected.json").kind(),
        ErrorKind::PreconditionFailed
    );
    let e = classify(400, "error_400_validation.json");
    assert_eq!(e.kind(), ErrorKind::Rejected);
    assert!(api_error_of(&e).unwrap().detail.contains("between 6 and 32"));

    let mut headers = HeaderMap::new();
    headers.insert("retry-after", HeaderValue::from_static("12"));
    let e =
        classify_api_error(429, &headers, &raw("error_429.json"), "state", Scope::Charger, now());
    assert_eq!(e.kind(), ErrorKind::RateLimited);
    assert_eq!(e.retry_after(), Some(Duration::from_secs(12)));
}

#[test]
fn fixtures_cut_short_are_protocol_errors() {
    for name in ["charger_state_charging.json", "products.json", "token_reference.json"] {
        let bytes = raw(name);
        let cut = &bytes[..bytes.len() / 2];
        let e = decode::<serde_json::Value>(cut, name).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Protocol, "{name}");
        let source = std::error::Error::source(&e).unwrap();
        assert!(source.is::<serde_json::Error>(), "{name}");
    }
}
