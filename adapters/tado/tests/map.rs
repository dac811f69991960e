//! The fixtures (the examples of tado's section in the vendor reference, plus richer anonymized
//! answers in the shapes PyTado's fixtures show) mapped to the normalized HVAC resource:
//! values, units and holds.

#![allow(clippy::unwrap_used)]

use chrono::{DateTime, TimeZone, Utc};
use oemgate_core::{
    DeviceRef, ErrorKind, Hvac, HvacCategory, HvacHoldType, HvacMode, HvacVendor, VendorType,
};
use oemgate_tado::client::{
    api_error_of, classify_api_error, classify_token_error, decode, rate_limit_of,
};
use oemgate_tado::map::{self, NotAHeatingZone};
use oemgate_tado::model::{
    DeviceAuthorization, HomeRef, Me, Overlay, OverlayRequest, TokenResponse, Zone, ZoneState,
    ZoneStates,
};
use reqwest::header::{HeaderMap, HeaderValue};
use serde::de::DeserializeOwned;

fn raw(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn fixture<T: DeserializeOwned>(name: &str) -> T {
    decode(&raw(name), name).unwrap()
}

fn device() -> DeviceRef {
    DeviceRef {
        id: "hvac-1".into(),
        user_id: "user-1".into(),
        device_type: VendorType::Hvac,
        vendor_id: "1234567:1".into(),
        site_id: Some("1234567".into()),
    }
}

/// A read time after every fixture's timestamps.
fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 1, 15, 11, 0, 0).unwrap()
}

fn ts(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn hvac(name: &str) -> Hvac {
    let state: ZoneState = fixture(name);
    let hvac = map::hvac_from_state(&device(), &state, now()).unwrap();
    round_trips(&hvac);
    hvac
}

/// The resource survives the Enode-style JSON round trip (its schema holds).
fn round_trips(value: &Hvac) {
    let json = serde_json::to_value(value).unwrap();
    let back: Hvac = serde_json::from_value(json).unwrap();
    assert_eq!(&back, value);
}

fn close(a: Option<f64>, b: f64) {
    let a = a.unwrap_or_else(|| panic!("expected {b}, found null"));
    assert!((a - b).abs() < 1e-9, "{a} != {b}");
}

/// Everything every heating zone has, whatever its state.
fn common(h: &Hvac) {
    assert_eq!(h.id, "hvac-1");
    assert_eq!(h.user_id, "user-1");
    assert_eq!(h.vendor, HvacVendor::Tado);
    assert_eq!(h.last_seen, now());
    assert_eq!(h.consumption_rate, None, "tado does not report power");
    assert_eq!(h.information.brand, "tado");
    assert_eq!(h.information.category, HvacCategory::Heating);
    assert_eq!(h.information.display_name, "tado heating zone 1");
    assert_eq!(h.information.model, None);
    assert_eq!(h.information.group_name, None);
    assert_eq!(h.thermostat_state.cool_setpoint, None, "a heating zone cannot cool");
    assert_eq!(h.thermostat_state.last_updated, Some(now()));
    let caps = &h.capabilities;
    assert_eq!(caps.capable_modes, Some(vec![HvacMode::Off, HvacMode::Heat]));
    let heat = caps.heat_setpoint_range.as_ref().unwrap();
    assert_eq!((heat.min, heat.max), (Some(5.0), Some(25.0)));
    assert_eq!(caps.cool_setpoint_range, None);
    assert_eq!(caps.setpoint_difference_range, None);
    assert!(
        caps.set_permanent_hold.is_capable && caps.set_permanent_hold.intervention_ids.is_empty()
    );
    assert!(
        caps.set_follow_schedule.is_capable && caps.set_follow_schedule.intervention_ids.is_empty()
    );
    assert_eq!(h.scopes, vec!["hvac:control:mode".to_owned(), "hvac:read:data".to_owned()]);
    assert_eq!(h.location.id, None);
}

/// The reference's example: a manual overlay heating to 20.5 °C, 20.65 °C inside, idle.
#[test]
fn reference_state_example() {
    let h = hvac("zone_state_manual.json");
    common(&h);
    assert!(h.is_reachable);
    assert_eq!(h.thermostat_state.mode, HvacMode::Heat);
    close(h.thermostat_state.heat_setpoint, 20.5);
    assert_eq!(h.thermostat_state.hold_type, Some(HvacHoldType::Permanent));
    close(h.temperature_state.current_temperature, 20.65);
    assert!(!h.temperature_state.is_active, "heating power 0 %");
    // The example's reading has no timestamp: the read time stands in.
    assert_eq!(h.temperature_state.last_updated, Some(now()));
}

/// The reference's overlay body is exactly what the adapter sends for a HEAT hold at 21 °C.
#[test]
fn reference_overlay_request() {
    let expected: OverlayRequest = fixture("overlay_request_manual.json");
    let ours = map::permanent_hold_overlay(HvacMode::Heat, Some(21.0), None).unwrap();
    assert_eq!(ours, expected);
    let json = serde_json::to_value(&ours).unwrap();
    let reference: serde_json::Value =
        serde_json::from_slice(&raw("overlay_request_manual.json")).unwrap();
    assert_eq!(json, reference);
    let off: serde_json::Value = serde_json::from_slice(&raw("overlay_request_off.json")).unwrap();
    let ours = map::permanent_hold_overlay(HvacMode::Off, None, None).unwrap();
    assert_eq!(serde_json::to_value(&ours).unwrap(), off);
    // Setpoints are rounded to tado's 0.1 °C.
    let ours = map::permanent_hold_overlay(HvacMode::Heat, Some(19.26), None).unwrap();
    assert_eq!(ours.setting.temperature.unwrap().celsius, Some(19.3));
}

/// The reference's device authorization (expires_in 300, interval 5).
#[test]
fn reference_device_authorization() {
    let auth: DeviceAuthorization = fixture("device_authorize.json");
    assert_eq!(auth.user_code, "7BQ5ZQ");
    assert_eq!(auth.expires_in, Some(300));
    assert_eq!(auth.interval, Some(5));
    assert_eq!(
        auth.verification_uri_complete.as_deref(),
        Some("https://login.tado.com/oauth2/device?user_code=7BQ5ZQ")
    );
    assert!(!format!("{auth:?}").contains(&auth.device_code), "Debug hides the device code");
    let token: TokenResponse = fixture("token.json");
    assert_eq!(token.expires_in, Some(599), "10-minute access tokens");
    assert!(token.refresh_token.is_some());
    assert_eq!(token.user_id.as_deref(), Some("5c8f9e0a1b2c3d4e5f6a7b8c"));
    let debug = format!("{token:?}");
    assert!(!debug.contains("eyJ") && !debug.contains("f3a1c2d4"), "{debug}");
}

/// Following the schedule, heating hard (62 %) towards 21 °C; the sensor's own timestamp.
#[test]
fn schedule_heating() {
    let h = hvac("zone_state_schedule.json");
    common(&h);
    assert!(h.is_reachable);
    assert_eq!(h.thermostat_state.mode, HvacMode::Heat);
    close(h.thermostat_state.heat_setpoint, 21.0);
    assert_eq!(h.thermostat_state.hold_type, Some(HvacHoldType::Scheduled));
    close(h.temperature_state.current_temperature, 19.31);
    assert!(h.temperature_state.is_active);
    assert_eq!(h.temperature_state.last_updated, Some(ts("2024-01-15T10:57:12.114Z")));
}

/// Switched off by hand: mode OFF, no setpoint (tado sends none), a permanent hold.
#[test]
fn manual_off() {
    let h = hvac("zone_state_off.json");
    common(&h);
    assert_eq!(h.thermostat_state.mode, HvacMode::Off);
    assert_eq!(h.thermostat_state.heat_setpoint, None);
    assert_eq!(h.thermostat_state.hold_type, Some(HvacHoldType::Permanent));
    close(h.temperature_state.current_temperature, 15.42);
    assert!(!h.temperature_state.is_active);
}

/// Temporary overlays (a timer, until the next time block) are neither permanent nor
/// scheduled: `holdType` null.
#[test]
fn temporary_overlays() {
    let h = hvac("zone_state_timer.json");
    common(&h);
    assert_eq!(h.thermostat_state.mode, HvacMode::Heat);
    close(h.thermostat_state.heat_setpoint, 23.5);
    assert_eq!(h.thermostat_state.hold_type, None);
    assert!(h.temperature_state.is_active);
    let h = hvac("zone_state_next_time_block.json");
    close(h.thermostat_state.heat_setpoint, 18.0);
    assert_eq!(h.thermostat_state.hold_type, None);
    assert!(!h.temperature_state.is_active);
}

/// An offline zone: unreachable, the last reading with its old timestamp, not active.
#[test]
fn offline_zone() {
    let h = hvac("zone_state_offline.json");
    common(&h);
    assert!(!h.is_reachable);
    assert_eq!(h.thermostat_state.mode, HvacMode::Heat);
    close(h.thermostat_state.heat_setpoint, 20.0);
    assert_eq!(h.thermostat_state.hold_type, Some(HvacHoldType::Scheduled));
    close(h.temperature_state.current_temperature, 19.8);
    assert_eq!(h.temperature_state.last_updated, Some(ts("2024-01-14T22:13:05Z")));
    assert!(!h.temperature_state.is_active);
}

/// Only °F given: converted to °C (71.6 °F = 22 °C, 68 °F = 20 °C).
#[test]
fn fahrenheit_is_converted() {
    let h = hvac("zone_state_fahrenheit.json");
    common(&h);
    let heat = h.thermostat_state.heat_setpoint.unwrap();
    assert!((heat - 22.0).abs() < 1e-9, "{heat}");
    let inside = h.temperature_state.current_temperature.unwrap();
    assert!((inside - 20.0).abs() < 1e-9, "{inside}");
    assert!(h.temperature_state.is_active);
    assert_eq!(h.thermostat_state.hold_type, Some(HvacHoldType::Permanent));
}

/// Every optional part null: nothing invented.
#[test]
fn nulls_stay_null() {
    let h = hvac("zone_state_nulls.json");
    common(&h);
    assert!(!h.is_reachable);
    assert_eq!(h.thermostat_state.mode, HvacMode::Unknown);
    assert_eq!(h.thermostat_state.heat_setpoint, None);
    assert_eq!(h.thermostat_state.hold_type, Some(HvacHoldType::Scheduled));
    assert_eq!(h.temperature_state.current_temperature, None);
    assert_eq!(h.temperature_state.last_updated, None);
    assert!(!h.temperature_state.is_active);
    // An empty object maps the same way.
    let empty: ZoneState = decode(b"{}", "empty").unwrap();
    assert_eq!(map::hvac_from_state(&device(), &empty, now()).unwrap(), h);
}

/// Away (geofencing) without an overlay: tado's away setting, reported as scheduled.
#[test]
fn away_mode() {
    let h = hvac("zone_state_away.json");
    close(h.thermostat_state.heat_setpoint, 16.0);
    assert_eq!(h.thermostat_state.hold_type, Some(HvacHoldType::Scheduled));
    close(h.temperature_state.current_temperature, 17.25);
}

/// A hot-water zone is not an HVAC unit.
#[test]
fn hot_water_is_refused() {
    let state: ZoneState = fixture("zone_state_hot_water.json");
    assert_eq!(
        map::hvac_from_state(&device(), &state, now()),
        Err(NotAHeatingZone { zone_type: "HOT_WATER".into() })
    );
}

/// The bulk read: each zone by its id.
#[test]
fn zone_states_bulk() {
    let states: ZoneStates = fixture("zone_states.json");
    assert_eq!(states.zone_states.len(), 3);
    let one = map::hvac_from_state(&device(), &states.zone_states["1"], now()).unwrap();
    close(one.thermostat_state.heat_setpoint, 21.0);
    assert!(one.temperature_state.is_active);
    let two = map::hvac_from_state(&device(), &states.zone_states["2"], now()).unwrap();
    assert_eq!(two.thermostat_state.mode, HvacMode::Off);
    close(two.temperature_state.current_temperature, 16.1);
    assert!(map::hvac_from_state(&device(), &states.zone_states["3"], now()).is_err());
}

/// Discovery: heating zones only, with the user's names, home id as site.
#[test]
fn discovery_lists_heating_zones() {
    let me: Me = fixture("me.json");
    assert_eq!(me.homes.len(), 2);
    let zones: Vec<Zone> = fixture("zones.json");
    let found = map::discovered_devices(&me.homes[0], &zones);
    assert_eq!(found.len(), 2, "hot water and AC zones are skipped");
    assert_eq!(found[0].vendor_id, "1234567:1");
    assert_eq!(found[0].site_id.as_deref(), Some("1234567"));
    assert_eq!(found[0].display_name.as_deref(), Some("Living room"));
    assert_eq!(found[1].vendor_id, "1234567:2");
    assert_eq!(found[1].display_name.as_deref(), Some("Bedroom"));
    assert!(found.iter().all(|d| d.device_type == VendorType::Hvac));
    let other = HomeRef { id: 2_345_678, name: None };
    assert_eq!(map::discovered_devices(&other, &zones)[0].vendor_id, "2345678:1");
}

/// tado's echo of a PUT overlay parses.
#[test]
fn overlay_echo() {
    let echo: Overlay = fixture("overlay_response_manual.json");
    let termination = echo.termination.unwrap();
    assert_eq!(termination.type_skill_based_app.as_deref(), Some("MANUAL"));
    assert_eq!(echo.setting.unwrap().temperature.unwrap().celsius, Some(21.0));
}

/// Error bodies and headers become the right kinds.
#[test]
fn error_fixtures() {
    let kind = |status: u16, name: &str| {
        classify_api_error(status, &HeaderMap::new(), &raw(name), "zone state", now()).kind()
    };
    assert_eq!(kind(401, "error_401.json"), ErrorKind::AuthExpired);
    assert_eq!(kind(403, "error_403.json"), ErrorKind::NotFound);
    assert_eq!(kind(404, "error_404.json"), ErrorKind::NotFound);
    assert_eq!(kind(422, "error_422.json"), ErrorKind::Rejected);

    let mut headers = HeaderMap::new();
    headers.insert("ratelimit-policy", HeaderValue::from_static("\"perday\";q=100;w=86400"));
    headers.insert("ratelimit", HeaderValue::from_static("\"perday\";r=0;t=46800"));
    let e = classify_api_error(429, &headers, &raw("error_429.json"), "zone state", now());
    assert_eq!(e.kind(), ErrorKind::RateLimited);
    assert_eq!(e.retry_after(), Some(std::time::Duration::from_secs(46_800)));
    assert_eq!(api_error_of(&e).unwrap().code, "tooManyRequests");
    assert_eq!(rate_limit_of(&headers).quota, Some(100));

    let e = classify_token_error(
        400,
        &HeaderMap::new(),
        &raw("oauth_authorization_pending.json"),
        "device code exchange",
        now(),
    );
    assert_eq!(e.kind(), ErrorKind::PreconditionFailed);
    let e = classify_token_error(
        400,
        &HeaderMap::new(),
        &raw("oauth_invalid_grant.json"),
        "token refresh",
        now(),
    );
    assert_eq!(e.kind(), ErrorKind::Unauthorized);
    assert_eq!(api_error_of(&e).unwrap().code, "invalid_grant");
}

/// Every state fixture maps without panicking and never reports a time after the read.
#[test]
fn no_future_timestamps() {
    for name in [
        "zone_state_manual.json",
        "zone_state_schedule.json",
        "zone_state_off.json",
        "zone_state_timer.json",
        "zone_state_next_time_block.json",
        "zone_state_offline.json",
        "zone_state_fahrenheit.json",
        "zone_state_nulls.json",
        "zone_state_away.json",
    ] {
        let state: ZoneState = fixture(name);
        let early = Utc.with_ymd_and_hms(2024, 1, 15, 10, 0, 0).unwrap();
        let h = map::hvac_from_state(&device(), &state, early).unwrap();
        if let Some(t) = h.temperature_state.last_updated {
            assert!(t <= early, "{name}: {t}");
        }
    }
}
