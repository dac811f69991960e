//! The fixtures (the SDM example of the vendor reference, plus richer anonymized answers in
//! SDM's and Google's shapes) mapped to the normalized resources: values, units and signs.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use oemgate_core::{DeviceRef, ErrorKind, Hvac, HvacCategory, HvacMode, VendorType};
use oemgate_nest::client::{classify_api_error, classify_token_error, decode};
use oemgate_nest::map::{self, ECO_MODE_INTERVENTION_ID, FOLLOW_SCHEDULE_INTERVENTION_ID};
use oemgate_nest::model::{CommandResponse, Device, DeviceList, StructureList, TokenResponse};
use oemgate_nest::{api_error_of, map::SdmCommand};
use reqwest::header::HeaderMap;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

fn raw(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn fixture<T: DeserializeOwned>(name: &str) -> T {
    decode(&raw(name), name).unwrap()
}

fn reference(vendor_id: &str) -> DeviceRef {
    DeviceRef {
        id: "hvac-1".into(),
        user_id: "user-1".into(),
        device_type: VendorType::Hvac,
        vendor_id: vendor_id.into(),
        site_id: None,
    }
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 15, 7, 30, 0).unwrap()
}

fn hvac(name: &str) -> Hvac {
    let device: Device = fixture(name);
    let id = map::device_id(&device.name).unwrap().to_owned();
    let h = map::hvac_from_device(&reference(&id), &device, now());
    // The resource survives the Enode-style JSON round trip (its schema holds).
    let json = serde_json::to_value(&h).unwrap();
    let back: Hvac = serde_json::from_value(json).unwrap();
    assert_eq!(back, h);
    h
}

fn json_of(h: &Hvac) -> Value {
    serde_json::to_value(h).unwrap()
}

#[test]
fn the_reference_example_maps() {
    let h = hvac("device_reference.json");
    assert_eq!(h.id, "hvac-1");
    assert_eq!(h.user_id, "user-1");
    let j = json_of(&h);
    assert_eq!(j["vendor"], "NEST");
    assert_eq!(j["isReachable"], true);
    assert_eq!(j["lastSeen"], "2026-01-15T07:30:00Z");
    assert_eq!(j["consumptionRate"], Value::Null, "SDM gives no power");
    // °C straight through, no conversion.
    assert_eq!(j["temperatureState"]["currentTemperature"], 20.4);
    assert_eq!(j["temperatureState"]["isActive"], true, "ThermostatHvac HEATING");
    assert_eq!(j["temperatureState"]["lastUpdated"], "2026-01-15T07:30:00Z");
    assert_eq!(j["thermostatState"]["mode"], "HEAT");
    assert_eq!(j["thermostatState"]["heatSetpoint"], 21.0);
    assert_eq!(j["thermostatState"]["coolSetpoint"], Value::Null);
    assert_eq!(j["thermostatState"]["holdType"], Value::Null, "SDM has no schedule state");
    assert_eq!(j["information"]["brand"], "Google Nest");
    assert_eq!(j["information"]["model"], Value::Null);
    assert_eq!(j["information"]["displayName"], "Living", "no custom name: the room's");
    assert_eq!(j["information"]["groupName"], "Living");
    assert_eq!(j["information"]["category"], "AGGREGATOR");
    assert_eq!(j["capabilities"]["capableModes"], json!(["HEAT", "COOL", "AUTO", "OFF"]));
    assert_eq!(j["capabilities"]["heatSetpointRange"], json!({"min": 9.0, "max": 32.0}));
    assert_eq!(j["capabilities"]["coolSetpointRange"], json!({"min": 9.0, "max": 32.0}));
    assert_eq!(j["capabilities"]["setpointDifferenceRange"], json!({"min": 1.5, "max": null}));
    assert_eq!(
        j["capabilities"]["setPermanentHold"],
        json!({"isCapable": true, "interventionIds": []})
    );
    assert_eq!(
        j["capabilities"]["setFollowSchedule"],
        json!({"isCapable": false, "interventionIds": [FOLLOW_SCHEDULE_INTERVENTION_ID]})
    );
    assert_eq!(j["scopes"], json!(["hvac:control:mode", "hvac:read:data"]));
    assert_eq!(j["location"], json!({"id": null}));
    let d: Device = fixture("device_reference.json");
    let found = map::discovered_device(&d).unwrap();
    assert_eq!(found.device_type, VendorType::Hvac);
    assert_eq!(found.vendor_id, "d1");
    assert_eq!(found.site_id.as_deref(), Some("s1"));
}

#[test]
fn heatcool_reports_both_setpoints_while_cooling() {
    let h = hvac("device_heatcool_cooling.json");
    assert_eq!(h.thermostat_state.mode, HvacMode::Auto, "HEATCOOL is AUTO");
    assert_eq!(h.thermostat_state.heat_setpoint, Some(19.5));
    assert_eq!(h.thermostat_state.cool_setpoint, Some(24.5));
    assert!(h.temperature_state.is_active, "COOLING");
    assert_eq!(h.temperature_state.current_temperature, Some(25.179993), "unrounded °C");
    assert_eq!(h.information.display_name, "Upstairs");
    assert_eq!(h.information.category, HvacCategory::Aggregator);
    assert!(h.capabilities.set_permanent_hold.is_capable, "Eco is OFF");
}

#[test]
fn cool_mode_reports_only_the_cool_setpoint() {
    let h = hvac("device_cool_idle.json");
    assert_eq!(h.thermostat_state.mode, HvacMode::Cool);
    assert_eq!(h.thermostat_state.heat_setpoint, None);
    assert_eq!(h.thermostat_state.cool_setpoint, Some(23.0));
    assert!(!h.temperature_state.is_active, "ThermostatHvac OFF is idle");
    assert_eq!(h.information.display_name, "Bedroom", "an empty custom name is no name");
}

#[test]
fn off_has_no_setpoints() {
    let h = hvac("device_off.json");
    assert_eq!(h.thermostat_state.mode, HvacMode::Off);
    assert_eq!(h.thermostat_state.heat_setpoint, None);
    assert_eq!(h.thermostat_state.cool_setpoint, None);
    assert!(!h.temperature_state.is_active);
    assert_eq!(h.temperature_state.current_temperature, Some(11.2));
    assert_eq!(h.information.display_name, "Cabin");
    assert!(h.capabilities.set_permanent_hold.is_capable);
}

#[test]
fn eco_reports_the_eco_temperatures_and_blocks_holds() {
    let h = hvac("device_eco.json");
    assert_eq!(h.thermostat_state.mode, HvacMode::Heat);
    assert_eq!(h.thermostat_state.heat_setpoint, Some(15.5), "Eco's heat temperature");
    assert_eq!(h.thermostat_state.cool_setpoint, None, "HEAT uses no cool setpoint");
    let cap = &h.capabilities.set_permanent_hold;
    assert!(!cap.is_capable);
    assert_eq!(cap.intervention_ids, vec![ECO_MODE_INTERVENTION_ID.to_owned()]);
    let ids: Vec<String> = map::interventions().into_iter().map(|i| i.id).collect();
    assert!(cap.intervention_ids.iter().all(|id| ids.contains(id)));
}

#[test]
fn offline_is_unreachable_with_unknown_age() {
    let h = hvac("device_offline.json");
    assert!(!h.is_reachable);
    assert_eq!(h.last_seen, now(), "the read itself succeeded");
    assert_eq!(h.temperature_state.current_temperature, Some(19.1), "SDM's last known value");
    assert_eq!(h.temperature_state.last_updated, None, "of unknown age");
    assert_eq!(h.thermostat_state.last_updated, None);
    assert_eq!(h.information.display_name, "Nest Thermostat", "no custom or room name");
    assert_eq!(h.information.group_name, None);
    assert_eq!(h.capabilities.capable_modes, Some(vec![HvacMode::Heat, HvacMode::Off]));
    assert!(h.capabilities.cool_setpoint_range.is_none(), "a heat-only system");
    assert!(h.capabilities.setpoint_difference_range.is_none());
}

#[test]
fn fahrenheit_display_does_not_convert() {
    let h = hvac("device_fahrenheit_heat_only.json");
    // temperatureScale FAHRENHEIT is display only: the values are °C (68.999 °F = 20.5555 °C).
    assert_eq!(h.thermostat_state.heat_setpoint, Some(20.555542));
    assert_eq!(h.temperature_state.current_temperature, Some(19.98999));
    assert_eq!(
        h.capabilities.capable_modes,
        Some(vec![HvacMode::Heat, HvacMode::Off]),
        "heat-only"
    );
    assert!(h.capabilities.heat_setpoint_range.is_some());
    assert!(h.capabilities.cool_setpoint_range.is_none());
}

#[test]
fn a_thermostat_without_traits_maps_to_nulls() {
    let h = hvac("device_minimal.json");
    let j = json_of(&h);
    assert_eq!(j["isReachable"], true, "read successfully, no connectivity trait");
    assert_eq!(j["thermostatState"]["mode"], "UNKNOWN");
    assert_eq!(j["thermostatState"]["heatSetpoint"], Value::Null);
    assert_eq!(j["thermostatState"]["coolSetpoint"], Value::Null);
    assert_eq!(j["temperatureState"]["currentTemperature"], Value::Null);
    assert_eq!(j["temperatureState"]["isActive"], false);
    assert_eq!(j["capabilities"]["capableModes"], Value::Null);
    assert_eq!(j["capabilities"]["heatSetpointRange"], Value::Null);
    assert_eq!(j["capabilities"]["setPermanentHold"]["isCapable"], false);
    assert_eq!(j["information"]["displayName"], "Nest Thermostat");
    let d: Device = fixture("device_minimal.json");
    let found = map::discovered_device(&d).unwrap();
    assert_eq!(found.site_id, None, "no parent relation, no structure");
}

#[test]
fn discovery_keeps_thermostats_only() {
    let list: DeviceList = fixture("devices_list.json");
    assert_eq!(list.devices.len(), 4);
    let found: Vec<_> = list.devices.iter().filter_map(map::discovered_device).collect();
    assert_eq!(found.len(), 2, "the camera and the doorbell are no HVAC units");
    assert_eq!(found[0].vendor_id, "AVPHwEuT1");
    assert_eq!(found[0].site_id.as_deref(), Some("s1"));
    assert_eq!(found[0].display_name.as_deref(), Some("Living Room"));
    assert_eq!(found[1].vendor_id, "AVPHwEuT2");
    assert_eq!(found[1].site_id.as_deref(), Some("s2"));
    assert_eq!(found[1].display_name.as_deref(), Some("Office"));
    let empty: DeviceList = fixture("devices_empty.json");
    assert!(empty.devices.is_empty(), "protobuf JSON leaves an empty list out");
    let structures: StructureList = fixture("structures.json");
    assert_eq!(structures.structures.len(), 1);
}

#[test]
fn the_reference_command_is_what_a_heat_hold_sends() {
    let request: Value =
        serde_json::from_slice(&raw("execute_command_set_heat_request.json")).unwrap();
    let commands: Vec<SdmCommand> = map::hold_commands(HvacMode::Heat, Some(21.5), None).unwrap();
    assert_eq!(commands.len(), 2, "mode first, then the setpoint");
    assert_eq!(
        commands[0].body(),
        json!({"command": "sdm.devices.commands.ThermostatMode.SetMode", "params": {"mode": "HEAT"}})
    );
    assert_eq!(commands[1].body(), request);
    let answer: CommandResponse = fixture("execute_command_ok.json");
    assert!(answer.is_empty(), "success is {{}}");
}

#[test]
fn tokens_parse() {
    let t: TokenResponse = fixture("token.json");
    assert_eq!(t.expires_in, Some(3599));
    assert!(t.refresh_token.is_some());
    assert!(!format!("{t:?}").contains("anonymized"), "Debug redacts tokens");
    let t: TokenResponse = fixture("token_refresh.json");
    assert_eq!(t.refresh_token, None, "Google keeps the refresh token");
}

fn classify(status: u16, name: &str) -> oemgate_core::AdapterError {
    classify_api_error(status, &HeaderMap::new(), &raw(name), "test", now())
}

#[test]
fn errors_classify() {
    let cases = [
        (400, "error_failed_precondition.json", ErrorKind::PreconditionFailed),
        (400, "error_device_offline.json", ErrorKind::DeviceOffline),
        (400, "error_eco_active.json", ErrorKind::PreconditionFailed),
        (401, "error_unauthenticated.json", ErrorKind::AuthExpired),
        (403, "error_permission_denied.json", ErrorKind::Unauthorized),
        (404, "error_not_found.json", ErrorKind::NotFound),
        (500, "error_internal.json", ErrorKind::Transient),
        (503, "error_unavailable.json", ErrorKind::Transient),
        (429, "error_rate_limited.json", ErrorKind::RateLimited),
    ];
    for (status, name, kind) in cases {
        let e = classify(status, name);
        assert_eq!(e.kind(), kind, "{name}");
        assert_eq!(e.vendor(), "NEST");
        assert!(api_error_of(&e).is_some(), "{name}: Google's error is the source");
    }
    assert_eq!(classify(429, "error_rate_limited.json").retry_after(), None, "no hint, no guess");
    let e = classify(429, "error_rate_limited_retry_info.json");
    assert_eq!(e.retry_after(), Some(Duration::from_secs(37)));
    let e = classify_token_error(
        400,
        &HeaderMap::new(),
        &raw("token_invalid_grant.json"),
        "refresh",
        now(),
    );
    assert_eq!(e.kind(), ErrorKind::Unauthorized);
}
