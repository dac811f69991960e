//! The fixtures (the examples of Zaptec's section of the vendor reference, plus richer
//! anonymized answers in Zaptec's real shapes) mapped to the normalized charger: values, units
//! and signs.

#![allow(clippy::unwrap_used)]

use chrono::{DateTime, TimeZone, Utc};
use oemgate_core::{Charger, ChargerPowerDeliveryState, DeviceRef, ErrorKind, VendorType};
use oemgate_zaptec::client::{classify_api_error, classify_token_error, decode, parse_error_body};
use oemgate_zaptec::map::{
    self, ChargerStates, INSTALLATION_ACCESS_INTERVENTION_ID, InstallationView, MaxCurrentControl,
    SHARED_INSTALLATION_INTERVENTION_ID,
};
use oemgate_zaptec::model::{ChargerList, Hierarchy, StateObservation, TokenResponse};
use oemgate_zaptec::{CommandRefused, api_error_of};
use reqwest::header::{HeaderMap, HeaderValue};
use serde::de::DeserializeOwned;

const GARAGE: &str = "5273dba1-4e80-49ae-ac44-9420ae596ad3";
const CARPORT_LEFT: &str = "aa1e305c-402a-383a-7c33-eba7270a5e6b";
const CARPORT_RIGHT: &str = "9d1e44c0-7b0a-4c55-8e1f-0a4b2d7c6e31";

fn raw(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn fixture<T: DeserializeOwned>(name: &str) -> T {
    decode(&raw(name), name).unwrap()
}

fn ts(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// A read time after every fixture's timestamps.
fn read_at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 6, 1, 12, 0, 0).unwrap()
}

fn device(charger: &str) -> DeviceRef {
    DeviceRef {
        id: "dev-1".into(),
        user_id: "user-1".into(),
        device_type: VendorType::Charger,
        vendor_id: charger.into(),
        site_id: Some("037cd0c2-5969-4002-a298-f63e3769752e".into()),
    }
}

fn states(name: &str) -> ChargerStates {
    let list: Vec<StateObservation> = fixture(name);
    ChargerStates::new(&list)
}

fn charger(state: &str, charger_id: &str, hierarchy: Option<&str>) -> Charger {
    let h: Option<Hierarchy> = hierarchy.map(fixture);
    let view = match &h {
        Some(h) => InstallationView::Hierarchy(h),
        None => InstallationView::NoAccess,
    };
    map::charger(&device(charger_id), &states(state), view, read_at())
}

/// Serializes, checks the wire spelling and reads back.
fn round_trips(c: &Charger) -> serde_json::Value {
    let json = serde_json::to_value(c).unwrap();
    let back: Charger = serde_json::from_value(json.clone()).unwrap();
    assert_eq!(&back, c);
    assert_eq!(json["vendor"], "ZAPTEC");
    json
}

#[test]
fn the_reference_state_example() {
    // vendor-clouds.md §6b: [{"ChargerId":"…","StateId":710,"Timestamp":"…","ValueAsString":"3"}]
    let c = charger("state_reference.json", GARAGE, Some("hierarchy_single.json"));
    let s = &c.charge_state;
    assert_eq!(s.power_delivery_state, ChargerPowerDeliveryState::PluggedInCharging);
    assert_eq!(s.is_plugged_in, Some(true));
    assert_eq!(s.is_charging, Some(true));
    // No 513 in the example: the rate is unknown, not 0.
    assert_eq!(s.charge_rate, None);
    assert_eq!(s.max_current, None);
    // The naive timestamp is UTC.
    assert_eq!(s.last_updated, Some(ts("2024-03-09T17:04:21.243Z")));
    assert!(c.is_reachable, "a charger that reports is reachable unless −2 says otherwise");
    assert_eq!(c.last_seen, read_at());
    round_trips(&c);
}

#[test]
fn the_reference_token_and_login_error() {
    let t: TokenResponse = fixture("token.json");
    assert_eq!(t.token_type.as_deref(), Some("Bearer"));
    assert_eq!(t.expires_in, Some(86_400));
    assert!(!t.access_token.is_empty());
    // "Bad credentials give 400 with error_description."
    let e = classify_token_error(
        400,
        &HeaderMap::new(),
        &raw("token_error_400.json"),
        "login",
        read_at(),
    );
    assert_eq!(e.kind(), ErrorKind::Unauthorized);
    assert_eq!(api_error_of(&e).unwrap().details, "The user name or password is incorrect.");
}

#[test]
fn the_reference_installation_update_body() {
    // vendor-clouds.md §6b: POST installation/{id}/update {"availableCurrent":16}
    let expected: serde_json::Value = fixture("installation_update_request.json");
    assert_eq!(map::installation_update_body(16.0), expected);
}

#[test]
fn a_charging_go_alone_on_its_installation() {
    let c = charger("state_charging.json", GARAGE, Some("hierarchy_single.json"));
    let s = &c.charge_state;
    assert_eq!(s.power_delivery_state, ChargerPowerDeliveryState::PluggedInCharging);
    assert_eq!(s.is_charging, Some(true));
    // 513 TotalChargePower "7360.520" W → 7.361 kW (rounded to the watt), positive.
    assert_eq!(s.charge_rate, Some(7.361));
    // 708 ChargeCurrentSet "16.000" A.
    assert_eq!(s.max_current, Some(16.0));
    // The newest of 710, 513 and 708.
    assert_eq!(s.last_updated, Some(ts("2024-03-09T17:10:39.223Z")));
    assert!(c.is_reachable);
    assert!(c.capabilities.set_max_current.is_capable, "the Sense meter is not a charger");
    assert!(c.capabilities.start_charging.is_capable && c.capabilities.stop_charging.is_capable);
    assert_eq!(c.information.brand, "Zaptec");
    assert_eq!(c.information.serial_number, "ZAP000123");
    assert_eq!(c.information.model, "Go");
    assert_eq!(c.information.year, None);
    assert_eq!(c.scopes, ["charger:control:charging", "charger:read:data"]);
    let json = round_trips(&c);
    assert_eq!(json["chargeState"]["chargeRate"], 7.361);
    assert_eq!(json["chargeState"]["powerDeliveryState"], "PLUGGED_IN:CHARGING");
    assert_eq!(json["chargeState"]["lastUpdated"], "2024-03-09T17:10:39.223Z");
}

#[test]
fn connected_requesting_is_stopped_with_no_rate() {
    let c = charger("state_connected_requesting.json", GARAGE, Some("hierarchy_single.json"));
    let s = &c.charge_state;
    assert_eq!(s.power_delivery_state, ChargerPowerDeliveryState::PluggedInStopped);
    assert_eq!(s.is_plugged_in, Some(true));
    assert_eq!(s.is_charging, Some(false));
    // Not charging: chargeRate is null (Enode), even though 513 says 0 W.
    assert_eq!(s.charge_rate, None);
    assert_eq!(s.max_current, Some(25.0));
}

#[test]
fn paused_and_finished_are_stopped() {
    for (name, max) in [("state_paused.json", 32.0), ("state_finished.json", 10.0)] {
        let c = charger(name, CARPORT_RIGHT, Some("hierarchy_shared.json"));
        let s = &c.charge_state;
        assert_eq!(s.power_delivery_state, ChargerPowerDeliveryState::PluggedInStopped, "{name}");
        assert_eq!(s.is_plugged_in, Some(true), "{name}");
        assert_eq!(s.is_charging, Some(false), "{name}");
        assert_eq!(s.charge_rate, None, "{name}");
        assert_eq!(s.max_current, Some(max), "{name}");
    }
    let paused = states("state_paused.json");
    assert_eq!(paused.flag(map::state_id::FINAL_STOP_ACTIVE), Some(true));
}

#[test]
fn disconnected_is_unplugged() {
    let c = charger("state_disconnected.json", CARPORT_LEFT, Some("hierarchy_shared.json"));
    let s = &c.charge_state;
    assert_eq!(s.power_delivery_state, ChargerPowerDeliveryState::Unplugged);
    assert_eq!(s.is_plugged_in, Some(false));
    assert_eq!(s.is_charging, Some(false));
    assert_eq!(s.charge_rate, None);
    assert_eq!(s.max_current, Some(32.0));
}

#[test]
fn shared_installation_cannot_set_max_current() {
    let c = charger("state_disconnected.json", CARPORT_LEFT, Some("hierarchy_shared.json"));
    let cap = &c.capabilities.set_max_current;
    assert!(!cap.is_capable);
    assert_eq!(cap.intervention_ids, [SHARED_INSTALLATION_INTERVENTION_ID]);
    // Serial from the hierarchy; the ZPR prefix is a Pro.
    assert_eq!(c.information.serial_number, "ZPR004711");
    assert_eq!(c.information.model, "Pro");
    let h: Hierarchy = fixture("hierarchy_shared.json");
    assert_eq!(
        map::max_current_control(CARPORT_RIGHT, InstallationView::Hierarchy(&h)),
        MaxCurrentControl::Shared { chargers: 2 }
    );
}

#[test]
fn no_installation_access_cannot_set_max_current() {
    // The hierarchy was refused (403): no serial number either, the GUID stands in.
    let c = charger("state_charging.json", GARAGE, None);
    let cap = &c.capabilities.set_max_current;
    assert!(!cap.is_capable);
    assert_eq!(cap.intervention_ids, [INSTALLATION_ACCESS_INTERVENTION_ID]);
    assert_eq!(c.information.serial_number, GARAGE);
    assert_eq!(c.information.model, "Zaptec charger");
    // A hierarchy that does not hold the charger.
    let h: Hierarchy = fixture("hierarchy_single.json");
    assert_eq!(
        map::max_current_control(CARPORT_LEFT, InstallationView::Hierarchy(&h)),
        MaxCurrentControl::NoAccess
    );
    assert_eq!(
        map::max_current_control(GARAGE, InstallationView::NoInstallation),
        MaxCurrentControl::NoAccess
    );
}

#[test]
fn an_offline_charger_shows_its_last_report() {
    let c = charger("state_offline.json", CARPORT_LEFT, Some("hierarchy_shared.json"));
    assert!(!c.is_reachable);
    // lastSeen: the charger's last heartbeat (Pulse), not the read time.
    assert_eq!(c.last_seen, ts("2025-05-16T14:22:40.19Z"));
    let s = &c.charge_state;
    // The cloud's last values, with their own time.
    assert_eq!(s.power_delivery_state, ChargerPowerDeliveryState::PluggedInCharging);
    assert_eq!(s.charge_rate, Some(3.68));
    assert_eq!(s.last_updated, Some(ts("2025-05-16T14:20:00.3Z")));
}

#[test]
fn missing_null_and_garbage_values_are_null() {
    let c = charger("state_nulls.json", CARPORT_LEFT, Some("hierarchy_shared.json"));
    let s = &c.charge_state;
    // 710 = 4 is not a documented mode.
    assert_eq!(s.power_delivery_state, ChargerPowerDeliveryState::Unknown);
    assert_eq!(s.is_plugged_in, None);
    assert_eq!(s.is_charging, None);
    assert_eq!(s.charge_rate, None);
    assert_eq!(s.max_current, None, "708 without a value");
    assert_eq!(s.last_updated, Some(ts("2025-05-16T13:07:45.803Z")), "only 710 has a time");
    assert!(c.is_reachable);
    round_trips(&c);

    let c = charger("state_empty.json", CARPORT_LEFT, Some("hierarchy_shared.json"));
    let s = &c.charge_state;
    assert_eq!(s.power_delivery_state, ChargerPowerDeliveryState::Unknown);
    assert_eq!(
        (s.is_plugged_in, s.is_charging, s.charge_rate, s.max_current),
        (None, None, None, None)
    );
    assert_eq!(s.last_updated, None);
    assert!(!c.is_reachable, "a charger that never reported");
    assert_eq!(c.last_seen, read_at());
    round_trips(&c);
}

#[test]
fn the_schemas_camel_case_spelling() {
    let c = charger("state_camel_case.json", GARAGE, Some("hierarchy_camel_case.json"));
    let s = &c.charge_state;
    assert!(c.is_reachable);
    assert_eq!(s.power_delivery_state, ChargerPowerDeliveryState::PluggedInCharging);
    assert_eq!(s.charge_rate, Some(11.04));
    assert_eq!(s.max_current, Some(16.0));
    // Offsets are honoured: 15:07:40.1+02:00 is 13:07:40.1Z, older than 710's time.
    assert_eq!(s.last_updated, Some(ts("2025-05-16T13:07:45.803Z")));
    assert!(c.capabilities.set_max_current.is_capable);
    assert_eq!(c.information.serial_number, "ZGB000777");
    assert_eq!(c.information.model, "Go");
}

#[test]
fn timestamps_never_lie_in_the_future() {
    let early = Utc.with_ymd_and_hms(2024, 3, 9, 17, 5, 0).unwrap();
    let c = map::charger(
        &device(GARAGE),
        &states("state_charging.json"),
        InstallationView::NoAccess,
        early,
    );
    assert_eq!(c.charge_state.last_updated, Some(early));
    assert_eq!(c.last_seen, early);
}

#[test]
fn the_charger_list_is_discovered_once_each() {
    let list: ChargerList = fixture("chargers.json");
    assert_eq!(list.pages, Some(1));
    let found = map::discovered_devices(&list.data);
    let ids: Vec<&str> = found.iter().map(|d| d.vendor_id.as_str()).collect();
    // The duplicate is listed once, the Sense meter (type 3) is skipped.
    assert_eq!(ids, [GARAGE, CARPORT_LEFT, "c3d4e5f6-a7b8-4c9d-8e0f-1a2b3c4d5e6f"]);
    assert!(found.iter().all(|d| d.device_type == VendorType::Charger));
    assert_eq!(found[0].site_id.as_deref(), Some("037cd0c2-5969-4002-a298-f63e3769752e"));
    assert_eq!(found[0].display_name.as_deref(), Some("Garage"));
    assert_eq!(found[2].site_id, None);
    assert_eq!(found[2].display_name, None);
}

#[test]
fn error_bodies_classify() {
    let now = read_at();
    let kind = |status: u16, name: &str| {
        classify_api_error(status, &HeaderMap::new(), &raw(name), name, now).kind()
    };
    assert_eq!(kind(403, "error_403.json"), ErrorKind::Unauthorized);
    assert_eq!(kind(404, "error_404.json"), ErrorKind::NotFound);
    assert_eq!(kind(500, "error_device_offline.json"), ErrorKind::DeviceOffline);
    assert_eq!(kind(500, "error_500.json"), ErrorKind::Transient);
    assert_eq!(kind(400, "error_command_no_vehicle.json"), ErrorKind::PreconditionFailed);

    let e =
        classify_api_error(400, &HeaderMap::new(), &raw("error_command_already.json"), "stop", now);
    assert_eq!(e.kind(), ErrorKind::Rejected);
    assert!(CommandRefused::of(&e).unwrap().is_no_op());

    let mut headers = HeaderMap::new();
    headers.insert("retry-after", HeaderValue::from_static("1"));
    let e = classify_api_error(429, &headers, &raw("error_429.json"), "state", now);
    assert_eq!(e.kind(), ErrorKind::RateLimited);
    assert_eq!(e.retry_after(), Some(std::time::Duration::from_secs(1)));
    let e = classify_api_error(429, &HeaderMap::new(), &raw("error_429.json"), "state", now);
    assert_eq!(e.retry_after(), Some(std::time::Duration::from_secs(1)), "from the message");

    let api = parse_error_body(520, &raw("error_device_offline.json"));
    assert_eq!(api.code, Some(520));
    assert_eq!(api.message, "Error communicating with device");
}

proptest::proptest! {
    /// Any bytes: a parsed list or a Protocol error, never a panic.
    #[test]
    fn any_body_decodes_or_fails_cleanly(body in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
        if let Err(e) = decode::<Vec<StateObservation>>(&body, "state") {
            proptest::prop_assert_eq!(e.kind(), ErrorKind::Protocol);
        }
        let _ = parse_error_body(400, &body);
    }

    /// Any values and timestamps: the mapping never panics, never reports a negative rate,
    /// never a time after the read, and reports a rate only while charging.
    #[test]
    fn any_state_list_maps_sanely(
        entries in proptest::collection::vec(
            (
                proptest::sample::select(vec![-2i64, -1, 510, 513, 553, 708, 710, 718]),
                proptest::option::of("[-0-9.a-z ]{0,12}"),
                proptest::option::of("20[0-9]{2}-[01][0-9]-[0-3][0-9]T[0-2][0-9]:[0-5][0-9]:[0-5][0-9](\\.[0-9]{1,7})?"),
            ),
            0..12,
        )
    ) {
        let list: Vec<StateObservation> = entries
            .into_iter()
            .map(|(id, value, at)| StateObservation {
                charger_id: Some(GARAGE.into()),
                state_id: id,
                timestamp: at,
                value_as_string: value,
            })
            .collect();
        let c = map::charger(&device(GARAGE), &ChargerStates::new(&list), InstallationView::NoAccess, read_at());
        let s = &c.charge_state;
        proptest::prop_assert!(s.charge_rate.is_none_or(|r| r >= 0.0 && r.is_finite()));
        proptest::prop_assert!(s.charge_rate.is_none() || s.is_charging == Some(true));
        proptest::prop_assert!(s.last_updated.is_none_or(|t| t <= read_at()));
        proptest::prop_assert!(c.last_seen <= read_at());
        round_trips(&c);
    }
}
