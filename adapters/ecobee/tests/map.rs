//! The fixtures (the example JSON of ecobee's section in the reference, plus richer
//! anonymized answers) mapped to the normalized HVAC resource: values, units (tenths of °F →
//! °C) and states; and ecobee's error bodies classified.

#![allow(clippy::unwrap_used)]

use chrono::{DateTime, TimeZone, Utc};
use oemgate_core::{
    DeviceRef, ErrorKind, Hvac, HvacCategory, HvacHoldType, HvacMode, HvacVendor, VendorType,
};
use oemgate_ecobee::client::{classify_api_error, classify_token_error, decode};
use oemgate_ecobee::map::{self, Live, WRITE_SCOPE_INTERVENTION_ID};
use oemgate_ecobee::model::{
    Function, PinResponse, Revision, Selection, SettingsUpdate, StatusBody, Thermostat,
    ThermostatResponse, ThermostatSummary, ThermostatUpdate, TokenResponse, UpdateRequest,
    parse_status_line,
};
use reqwest::header::HeaderMap;
use serde::de::DeserializeOwned;

fn raw(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn fixture<T: DeserializeOwned>(name: &str) -> T {
    decode(&raw(name), name).unwrap()
}

fn thermostats(name: &str) -> Vec<Thermostat> {
    fixture::<ThermostatResponse>(name).thermostat_list
}

fn device(identifier: &str) -> DeviceRef {
    DeviceRef {
        id: "dev-hvac".into(),
        user_id: "user-1".into(),
        device_type: VendorType::Hvac,
        vendor_id: identifier.into(),
        site_id: None,
    }
}

/// A read time after every fixture's timestamps.
fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 15, 16, 20, 0).unwrap()
}

fn ts(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn hvac(t: &Thermostat, live: Live<'_>) -> Hvac {
    let h = map::hvac_from_thermostat(&device(&t.identifier), t, live, true, now());
    // The resource survives the Enode-style JSON round trip (its schema holds).
    let json = serde_json::to_value(&h).unwrap();
    let back: Hvac = serde_json::from_value(json).unwrap();
    assert_eq!(back, h);
    h
}

fn close(actual: Option<f64>, expected: f64) -> bool {
    actual.is_some_and(|a| (a - expected).abs() < 0.006)
}

#[test]
fn the_reference_example_maps_tenths_of_fahrenheit_to_celsius() {
    let list = thermostats("thermostat_reference.json");
    assert_eq!(list.len(), 1);
    let h = hvac(&list[0], Live::default());
    assert_eq!(h.id, "dev-hvac");
    assert_eq!(h.user_id, "user-1");
    assert_eq!(h.vendor, HvacVendor::Ecobee);
    assert!(h.is_reachable);
    assert_eq!(h.last_seen, now());
    assert_eq!(h.consumption_rate, None, "ecobee reports no power");
    // 715 = 71.5 °F = 21.94 °C; 690 = 69 °F = 20.56 °C; 750 = 75 °F = 23.89 °C.
    assert!(close(h.temperature_state.current_temperature, 21.94));
    assert!(close(h.thermostat_state.heat_setpoint, 20.56));
    assert!(close(h.thermostat_state.cool_setpoint, 23.89));
    assert_eq!(h.thermostat_state.mode, HvacMode::Auto);
    assert!(!h.temperature_state.is_active, "the fan alone neither heats nor cools");
    assert_eq!(h.thermostat_state.hold_type, None, "no events were included");
    assert_eq!(h.temperature_state.last_updated, Some(now()), "no ecobee timestamp: read time");
    assert_eq!(h.information.brand, "ecobee");
    assert_eq!(h.information.model.as_deref(), Some("ecobee3 Smart"));
    assert_eq!(h.information.display_name, "ecobee");
    assert_eq!(h.information.category, HvacCategory::Aggregator);
    assert_eq!(h.information.group_name, None);
    assert_eq!(h.location.id, None);
    // No stages or ranges in the example: unknown, not guessed.
    assert_eq!(h.capabilities.capable_modes, None);
    assert_eq!(h.capabilities.heat_setpoint_range, None);
    assert_eq!(h.capabilities.cool_setpoint_range, None);
    let delta = h.capabilities.setpoint_difference_range.as_ref().unwrap();
    assert!(close(delta.min, 2.78) && delta.max.is_none(), "heatCoolMinDelta 50 = 5 °F");
    assert!(h.capabilities.set_permanent_hold.is_capable);
    assert!(h.capabilities.set_follow_schedule.is_capable);
    assert_eq!(h.scopes, ["hvac:control:mode", "hvac:read:data"]);
}

#[test]
fn the_reference_summary_gives_revisions_and_equipment() {
    let summary: ThermostatSummary = fixture("thermostat_summary_reference.json");
    assert_eq!(summary.thermostat_count, Some(1));
    let r = Revision::parse(&summary.revision_list[0]).unwrap();
    assert_eq!(r.identifier, "8675309");
    assert_eq!(r.name, "ecobee");
    assert!(r.connected);
    assert_eq!(r.thermostat_rev, "260115160000");
    assert_eq!(r.runtime_rev, "260115161200");
    let status = summary.status_list.unwrap();
    assert_eq!(parse_status_line(&status[0]), Some(("8675309", "compCool1,fan")));
    // The summary's fresher equipment status wins over the thermostat's.
    let t = &thermostats("thermostat_reference.json")[0];
    let live = Live { connected: Some(true), equipment_status: Some("compCool1,fan") };
    assert!(hvac(t, live).temperature_state.is_active);
}

#[test]
fn summaries_with_colons_disconnected_thermostats_and_idle_equipment() {
    let summary: ThermostatSummary = fixture("thermostat_summary_two.json");
    let revisions: Vec<Revision> =
        summary.revision_list.iter().map(|l| Revision::parse(l).unwrap()).collect();
    assert_eq!(revisions[0].name, "Living Room: Main");
    assert_eq!(revisions[0].interval_rev, "260115161500");
    assert!(!revisions[1].connected);
    let status = summary.status_list.unwrap();
    assert_eq!(parse_status_line(&status[1]), Some(("311000000002", "")));
    let found = map::discovered_devices(&revisions);
    assert_eq!(found.len(), 2);
    assert!(found.iter().all(|d| d.device_type == VendorType::Hvac && d.site_id.is_none()));
    assert_eq!(found[0].vendor_id, "311000000001");
    assert_eq!(found[0].display_name.as_deref(), Some("Living Room: Main"));
    assert_eq!(found[1].display_name.as_deref(), Some("Cabin"));
}

#[test]
fn a_heat_pump_on_an_indefinite_hold_and_a_furnace_on_its_schedule() {
    let list = thermostats("thermostat_hold_and_schedule.json");
    let live = Live { connected: Some(true), equipment_status: Some("heatPump,fan") };
    let h = hvac(&list[0], live);
    assert!(close(h.temperature_state.current_temperature, 20.33), "686 = 68.6 °F");
    assert!(close(h.thermostat_state.heat_setpoint, 22.0), "716 = 71.6 °F");
    assert!(close(h.thermostat_state.cool_setpoint, 27.0), "806 = 80.6 °F");
    assert_eq!(h.thermostat_state.mode, HvacMode::Heat);
    assert_eq!(h.thermostat_state.hold_type, Some(HvacHoldType::Permanent));
    assert!(h.temperature_state.is_active);
    assert_eq!(h.temperature_state.last_updated, Some(ts("2026-01-15T16:15:44Z")));
    assert_eq!(h.thermostat_state.last_updated, Some(ts("2026-01-15T16:15:44Z")));
    assert_eq!(h.information.model.as_deref(), Some("ecobee4 Smart"));
    assert_eq!(
        h.capabilities.capable_modes,
        Some(vec![HvacMode::Off, HvacMode::Auto, HvacMode::Cool, HvacMode::Heat])
    );
    let heat = h.capabilities.heat_setpoint_range.as_ref().unwrap();
    assert!(close(heat.min, 7.22) && close(heat.max, 26.11), "45..79 °F");
    let cool = h.capabilities.cool_setpoint_range.as_ref().unwrap();
    assert!(close(cool.min, 18.33) && close(cool.max, 33.33), "65..92 °F");
    let delta = h.capabilities.setpoint_difference_range.as_ref().unwrap();
    assert!(close(delta.min, 2.22), "heatCoolMinDelta 40 = 4 °F");

    let h = hvac(&list[1], Live::default());
    assert!(close(h.temperature_state.current_temperature, 25.61), "781 = 78.1 °F");
    assert!(close(h.thermostat_state.heat_setpoint, 16.67), "620 = 62 °F");
    assert!(close(h.thermostat_state.cool_setpoint, 25.0), "770 = 77 °F");
    assert_eq!(h.thermostat_state.mode, HvacMode::Cool);
    assert_eq!(
        h.thermostat_state.hold_type,
        Some(HvacHoldType::Scheduled),
        "Smart Away is part of the schedule"
    );
    assert!(h.temperature_state.is_active, "compCool1");
    assert_eq!(
        h.capabilities.capable_modes,
        Some(vec![HvacMode::Off, HvacMode::Cool, HvacMode::Heat]),
        "auto is disabled"
    );
    assert_eq!(h.information.model.as_deref(), Some("ecobee3 lite Smart"));
}

#[test]
fn a_disconnected_thermostat_on_a_temporary_hold() {
    let list = thermostats("thermostat_offline_temporary_hold.json");
    let h = hvac(&list[0], Live::default());
    assert!(!h.is_reachable);
    // The last reported values stay, with ecobee's (old) timestamp.
    assert!(close(h.temperature_state.current_temperature, 10.11), "502 = 50.2 °F");
    assert_eq!(h.temperature_state.last_updated, Some(ts("2026-01-12T19:30:00Z")));
    assert!(close(h.thermostat_state.heat_setpoint, 10.0));
    assert!(close(h.thermostat_state.cool_setpoint, 32.22));
    assert_eq!(h.thermostat_state.mode, HvacMode::Off);
    assert_eq!(h.thermostat_state.hold_type, None, "a hold until the next transition");
    assert!(!h.temperature_state.is_active);
    assert_eq!(h.capabilities.capable_modes, Some(vec![HvacMode::Off, HvacMode::Heat]));
    assert_eq!(h.information.model.as_deref(), Some("ecobee Smart"));
    // The summary's flag wins over the read's.
    let live = Live { connected: Some(true), equipment_status: None };
    assert!(hvac(&list[0], live).is_reachable);
}

#[test]
fn auxiliary_heat_a_vacation_sentinels_and_future_timestamps() {
    let list = thermostats("thermostat_aux_heat_vacation.json");
    let h = hvac(&list[0], Live::default());
    assert_eq!(h.temperature_state.current_temperature, None, "-5002 is ecobee's 'unknown'");
    assert!(close(h.thermostat_state.heat_setpoint, 15.56), "\"600\" = 60 °F");
    assert!(close(h.thermostat_state.cool_setpoint, 29.44), "850.0 = 85 °F");
    assert_eq!(h.thermostat_state.mode, HvacMode::Heat, "auxHeatOnly heats");
    assert_eq!(h.thermostat_state.hold_type, None, "a vacation is neither schedule nor hold");
    assert!(h.temperature_state.is_active, "auxHeat1");
    assert_eq!(h.temperature_state.last_updated, Some(now()), "never in the future");
    assert_eq!(h.information.display_name, "ecobee Smart Thermostat Premium 411234567890");
    assert!(close(h.capabilities.setpoint_difference_range.unwrap().min, 1.67));
}

#[test]
fn every_optional_field_missing_or_null() {
    let list = thermostats("thermostat_minimal.json");
    assert_eq!(list[0].identifier, "511892759243", "a numeric identifier is read as text");
    for t in &list {
        let h = hvac(t, Live::default());
        assert!(h.is_reachable, "ecobee answered and did not say it is disconnected");
        assert_eq!(h.temperature_state.current_temperature, None);
        assert!(!h.temperature_state.is_active);
        assert_eq!(h.temperature_state.last_updated, Some(now()));
        assert_eq!(h.thermostat_state.mode, HvacMode::Unknown);
        assert_eq!(h.thermostat_state.heat_setpoint, None);
        assert_eq!(h.thermostat_state.cool_setpoint, None);
        assert_eq!(h.thermostat_state.hold_type, None);
        assert_eq!(h.information.model, None);
        assert_eq!(h.information.display_name, format!("ecobee thermostat {}", t.identifier));
        assert_eq!(h.capabilities.capable_modes, None);
        assert_eq!(h.capabilities.heat_setpoint_range, None);
        assert_eq!(h.capabilities.setpoint_difference_range, None);
    }
}

#[test]
fn a_read_only_link_cannot_hold_or_resume() {
    let t = &thermostats("thermostat_reference.json")[0];
    let h = map::hvac_from_thermostat(&device("8675309"), t, Live::default(), false, now());
    for cap in [&h.capabilities.set_permanent_hold, &h.capabilities.set_follow_schedule] {
        assert!(!cap.is_capable);
        assert_eq!(cap.intervention_ids, [WRITE_SCOPE_INTERVENTION_ID]);
    }
    assert_eq!(h.scopes, ["hvac:read:data"]);
}

#[test]
fn tokens_and_pins() {
    let token: TokenResponse = fixture("token.json");
    assert_eq!(token.expires_in, Some(3599));
    assert_eq!(token.scope.as_deref(), Some("smartWrite"));
    let text = format!("{token:?}");
    assert!(!text.contains("Rc7JE8P7") && !text.contains("og2Obost"), "{text}");
    let pin: PinResponse = fixture("authorize_pin.json");
    assert_eq!(pin.ecobee_pin, "bv29");
    assert_eq!(pin.expires_in, Some(9), "minutes");
    assert_eq!(pin.interval, Some(30), "seconds");
    assert!(!format!("{pin:?}").contains("uiEjHLyE"));
    let ok: StatusBody = fixture("update_success.json");
    assert_eq!(ok.status.unwrap().code, Some(0));
}

#[test]
fn error_bodies_are_classified() {
    let api = |name: &str| {
        classify_api_error(500, &HeaderMap::new(), &raw(name), "thermostat", now()).kind()
    };
    assert_eq!(api("error_token_expired.json"), ErrorKind::AuthExpired);
    assert_eq!(api("error_auth_failed.json"), ErrorKind::Unauthorized);
    assert_eq!(api("error_deauthorized.json"), ErrorKind::Unauthorized);
    assert_eq!(api("error_not_authorized.json"), ErrorKind::NotFound);
    assert_eq!(api("error_validation.json"), ErrorKind::Rejected);
    assert_eq!(api("error_processing.json"), ErrorKind::Transient);
    let token = |name: &str| {
        classify_token_error(400, &HeaderMap::new(), &raw(name), "token", now()).kind()
    };
    assert_eq!(token("token_error_invalid_grant.json"), ErrorKind::Unauthorized);
    assert_eq!(token("token_error_authorization_pending.json"), ErrorKind::PreconditionFailed);
}

#[test]
fn request_bodies_have_the_reference_shape() {
    // The reference's three update examples parse as the request model.
    let hold: UpdateRequest =
        serde_json::from_slice(&raw("update_set_hold_reference.json")).unwrap();
    assert_eq!(hold.selection.identifiers(), ["8675309"]);
    assert_eq!(hold.functions[0].function_type, "setHold");
    assert_eq!(hold.functions[0].params["heatHoldTemp"], 690);
    let resume: UpdateRequest =
        serde_json::from_slice(&raw("update_resume_program_reference.json")).unwrap();
    assert_eq!(resume.functions, [Function::resume_program(false)]);
    let mode: UpdateRequest =
        serde_json::from_slice(&raw("update_hvac_mode_reference.json")).unwrap();
    assert_eq!(
        mode.thermostat,
        Some(ThermostatUpdate {
            settings: Some(SettingsUpdate { hvac_mode: Some("heat".into()) })
        })
    );
    // What the adapter sends for an AUTO hold at 69/75 °F, in ecobee's spelling.
    let plan = map::plan_permanent_hold(HvacMode::Auto, Some(20.56), Some(23.89), None).unwrap();
    let (heat, cool) = plan.hold.unwrap();
    let sent = UpdateRequest {
        selection: Selection::thermostats(&["8675309"]),
        functions: vec![Function::set_indefinite_hold(heat, cool)],
        thermostat: Some(ThermostatUpdate {
            settings: Some(SettingsUpdate { hvac_mode: Some(plan.hvac_mode.into()) }),
        }),
    };
    assert_eq!(
        serde_json::to_value(&sent).unwrap(),
        serde_json::json!({
            "selection": { "selectionType": "thermostats", "selectionMatch": "8675309" },
            "functions": [{ "type": "setHold",
                            "params": { "holdType": "indefinite", "heatHoldTemp": 690, "coolHoldTemp": 750 } }],
            "thermostat": { "settings": { "hvacMode": "auto" } },
        })
    );
}
