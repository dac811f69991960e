//! Round-trip tests of the Enode-style model against example JSON.
//!
//! Every fixture is parsed into its model type, serialized back, and compared with the
//! original as JSON values: the same keys at every level (a missing or extra field fails),
//! nulls stay nulls, numbers compare numerically (`80` equals `80.0`) and RFC 3339 timestamps
//! compare as instants (`…26.000Z` equals `…26Z`, chrono's canonical form). The comparison
//! reports the JSON path of the first difference.
//!
//! Fixture sources (under `tests/fixtures/`, embedded with `include_str!`):
//!
//! - `charge_action.json`, `max_current_action.json`: verbatim response examples from the prose
//!   API reference (the four ChargeAction examples there are identical).
//! - `intervention_reference_verbatim.json`: the prose reference's intervention example,
//!   verbatim; it does not conform to the data model and is expected to be rejected.
//!   `intervention.json` is the same example with exactly those three points corrected.
//! - `charger.json`, `hvac.json`: the OpenAPI's whole-object examples.
//! - `vehicle.json`, `battery.json`, `meter.json`, `inverter.json`, `operation_mode_action.json`,
//!   `hvac_action_*.json`, `location.json`, `user.json`: built from the OpenAPI's
//!   per-property `example` values (values without an example were filled in).
//! - `*_nulls.json`, `*_minimal.json`, `*_without_failure_reason.json`: variants with every
//!   `Nullable` field null and without the OpenAPI-only optional fields.

use std::fmt::Debug;

use oemgate_core::model::*;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

// ---------------------------------------------------------------------------------------------
// Comparison helper
// ---------------------------------------------------------------------------------------------

/// Compares two JSON values; `Err` names the JSON path of the first difference.
fn json_diff(path: &str, expected: &Value, actual: &Value) -> Result<(), String> {
    match (expected, actual) {
        (Value::Null, Value::Null) => Ok(()),
        (Value::Bool(a), Value::Bool(b)) if a == b => Ok(()),
        (Value::Number(a), Value::Number(b)) => match (a.as_f64(), b.as_f64()) {
            (Some(x), Some(y)) if x == y => Ok(()),
            _ => Err(format!("{path}: number {a} != {b}")),
        },
        (Value::String(a), Value::String(b)) => {
            if a == b || same_instant(a, b) {
                Ok(())
            } else {
                Err(format!("{path}: string {a:?} != {b:?}"))
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            if a.len() != b.len() {
                return Err(format!("{path}: array length {} != {}", a.len(), b.len()));
            }
            a.iter()
                .zip(b)
                .enumerate()
                .try_for_each(|(i, (x, y))| json_diff(&format!("{path}[{i}]"), x, y))
        }
        (Value::Object(a), Value::Object(b)) => {
            if let Some(key) = a.keys().find(|k| !b.contains_key(*k)) {
                return Err(format!("{path}.{key}: missing after round trip"));
            }
            if let Some(key) = b.keys().find(|k| !a.contains_key(*k)) {
                return Err(format!("{path}.{key}: extra key after round trip"));
            }
            a.iter().try_for_each(|(key, x)| json_diff(&format!("{path}.{key}"), x, &b[key]))
        }
        _ => Err(format!("{path}: {expected} != {actual}")),
    }
}

/// Both strings are RFC 3339 timestamps denoting the same instant.
fn same_instant(a: &str, b: &str) -> bool {
    match (chrono::DateTime::parse_from_rfc3339(a), chrono::DateTime::parse_from_rfc3339(b)) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}

/// Parses `text` as `T`, serializes it back and asserts the result equals the original JSON.
/// Also checks that re-parsing the output yields an equal `T`. Returns the parsed value.
fn assert_round_trip<T>(name: &str, text: &str) -> T
where
    T: Serialize + DeserializeOwned + PartialEq + Debug,
{
    let original: Value =
        serde_json::from_str(text).unwrap_or_else(|e| panic!("{name}: fixture is not JSON: {e}"));
    let parsed: T = serde_json::from_str(text)
        .unwrap_or_else(|e| panic!("{name}: does not deserialize into the model: {e}"));
    let produced =
        serde_json::to_value(&parsed).unwrap_or_else(|e| panic!("{name}: does not serialize: {e}"));
    if let Err(diff) = json_diff("$", &original, &produced) {
        panic!("{name}: round trip differs at {diff}\n  produced: {produced}");
    }
    let reparsed: T = serde_json::from_value(produced)
        .unwrap_or_else(|e| panic!("{name}: output does not deserialize again: {e}"));
    assert_eq!(parsed, reparsed, "{name}: second round trip changed the value");
    parsed
}

/// Parses `value` as `T`, expecting an error whose message contains `needle`.
fn assert_rejected<T>(value: Value, needle: &str)
where
    T: DeserializeOwned + Debug,
{
    match serde_json::from_value::<T>(value) {
        Ok(parsed) => panic!("expected an error containing {needle:?}, got {parsed:?}"),
        Err(e) => assert!(e.to_string().contains(needle), "error {e:?} lacks {needle:?}"),
    }
}

/// A fixture as a JSON value.
fn fixture(text: &str) -> Value {
    serde_json::from_str(text).expect("fixture is JSON")
}

/// The object at a JSON pointer, mutably.
fn object_at<'a>(value: &'a mut Value, pointer: &str) -> &'a mut serde_json::Map<String, Value> {
    value
        .pointer_mut(pointer)
        .and_then(Value::as_object_mut)
        .unwrap_or_else(|| panic!("no object at {pointer}"))
}

// ---------------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------------

const VEHICLE: &str = include_str!("fixtures/vehicle.json");
const VEHICLE_NULLS: &str = include_str!("fixtures/vehicle_nulls.json");
const CHARGER: &str = include_str!("fixtures/charger.json");
const CHARGER_NULLS: &str = include_str!("fixtures/charger_nulls.json");
const BATTERY: &str = include_str!("fixtures/battery.json");
const BATTERY_NULLS: &str = include_str!("fixtures/battery_nulls.json");
const HVAC: &str = include_str!("fixtures/hvac.json");
const HVAC_NULLS: &str = include_str!("fixtures/hvac_nulls.json");
const METER: &str = include_str!("fixtures/meter.json");
const METER_NULLS: &str = include_str!("fixtures/meter_nulls.json");
const INVERTER: &str = include_str!("fixtures/inverter.json");
const INVERTER_NULLS: &str = include_str!("fixtures/inverter_nulls.json");
const CHARGE_ACTION: &str = include_str!("fixtures/charge_action.json");
const CHARGE_ACTION_CHARGER: &str = include_str!("fixtures/charge_action_charger.json");
const MAX_CURRENT_ACTION: &str = include_str!("fixtures/max_current_action.json");
const MAX_CURRENT_ACTION_PENDING: &str = include_str!("fixtures/max_current_action_pending.json");
const OPERATION_MODE_ACTION: &str = include_str!("fixtures/operation_mode_action.json");
const OPERATION_MODE_ACTION_NO_REASON: &str =
    include_str!("fixtures/operation_mode_action_without_failure_reason.json");
const HVAC_ACTION_PERMANENT_HOLD: &str = include_str!("fixtures/hvac_action_permanent_hold.json");
const HVAC_ACTION_PERMANENT_HOLD_NO_REASON: &str =
    include_str!("fixtures/hvac_action_permanent_hold_without_failure_reason.json");
const HVAC_ACTION_FOLLOW_SCHEDULE: &str = include_str!("fixtures/hvac_action_follow_schedule.json");
const INTERVENTION: &str = include_str!("fixtures/intervention.json");
const INTERVENTION_AGNOSTIC: &str = include_str!("fixtures/intervention_agnostic.json");
const INTERVENTION_REFERENCE_VERBATIM: &str =
    include_str!("fixtures/intervention_reference_verbatim.json");
const LOCATION: &str = include_str!("fixtures/location.json");
const LOCATION_MINIMAL: &str = include_str!("fixtures/location_minimal.json");
const USER: &str = include_str!("fixtures/user.json");

// ---------------------------------------------------------------------------------------------
// Devices
// ---------------------------------------------------------------------------------------------

#[test]
fn vehicle_round_trips() {
    let vehicle: Vehicle = assert_round_trip("vehicle.json", VEHICLE);
    assert_eq!(vehicle.vendor, VehicleVendor::Tesla);
    assert_eq!(vehicle.charge_state.power_delivery_state, PowerDeliveryState::PluggedInCharging);
    assert_eq!(vehicle.charge_state.battery_level, Some(66.0));
    assert_eq!(
        vehicle.charge_state.plugged_in_charger_id,
        Some(Some("e7d4db80-4fca-4781-ac70-14108f560706".to_owned()))
    );
    assert_eq!(vehicle.location.id.as_deref(), Some("07f8368d-be7e-4dbd-8cf0-94d00dd67ad3"));
    assert!(!vehicle.capabilities.set_max_current.is_capable);
}

#[test]
fn vehicle_with_nulls_round_trips() {
    let vehicle: Vehicle = assert_round_trip("vehicle_nulls.json", VEHICLE_NULLS);
    assert_eq!(vehicle.is_reachable, None);
    assert_eq!(vehicle.vendor, VehicleVendor::AlfaRomeo);
    assert_eq!(vehicle.charge_state.power_delivery_state, PowerDeliveryState::Unknown);
    assert_eq!(vehicle.charge_state.plugged_in_charger_id, Some(None));
    assert_eq!(
        vehicle.location,
        VehicleLocation { id: None, longitude: None, latitude: None, last_updated: None }
    );
}

#[test]
fn charger_round_trips() {
    let charger: Charger = assert_round_trip("charger.json", CHARGER);
    assert_eq!(charger.vendor, ChargerVendor::Zaptec);
    assert_eq!(charger.information.year, None);
    assert_eq!(
        charger.charge_state.power_delivery_state,
        ChargerPowerDeliveryState::PluggedInCharging
    );
    assert!(charger.charge_state.plugged_in_vehicle_id.is_some());
}

#[test]
fn charger_with_nulls_round_trips() {
    let charger: Charger = assert_round_trip("charger_nulls.json", CHARGER_NULLS);
    assert_eq!(charger.vendor, ChargerVendor::Alfen);
    assert_eq!(charger.charge_state.plugged_in_vehicle_id, None);
    assert_eq!(charger.location, ChargerLocation { id: None, last_updated: None });
}

#[test]
fn battery_round_trips() {
    let battery: Battery = assert_round_trip("battery.json", BATTERY);
    assert_eq!(battery.charge_state.status, Some(BatteryChargeStatus::Charging));
    assert_eq!(battery.config.operation_mode, Some(BatteryConfigOperationMode::ImportFocus));
    assert_eq!(
        battery.capabilities.for_mode(BatteryOperationMode::Idle).map(|c| c.is_capable),
        Some(false)
    );
}

#[test]
fn battery_with_nulls_round_trips() {
    let battery: Battery = assert_round_trip("battery_nulls.json", BATTERY_NULLS);
    assert_eq!(battery.charge_state.status, None);
    assert_eq!(battery.config.operation_mode, Some(BatteryConfigOperationMode::Unknown));
    assert_eq!(battery.hem_system_id, Some(None));
    assert_eq!(battery.capabilities.idle, None);
}

#[test]
fn hvac_round_trips() {
    let hvac: Hvac = assert_round_trip("hvac.json", HVAC);
    assert_eq!(hvac.vendor, HvacVendor::Adax);
    assert_eq!(hvac.thermostat_state.mode, HvacMode::Heat);
    assert_eq!(hvac.thermostat_state.hold_type, Some(HvacHoldType::Permanent));
    assert_eq!(
        hvac.capabilities.capable_modes,
        Some(vec![HvacMode::Heat, HvacMode::Cool, HvacMode::Off])
    );
}

#[test]
fn hvac_with_nulls_round_trips() {
    let hvac: Hvac = assert_round_trip("hvac_nulls.json", HVAC_NULLS);
    assert_eq!(hvac.thermostat_state.hold_type, None);
    assert_eq!(hvac.capabilities.capable_modes, None);
    assert_eq!(
        hvac.capabilities.heat_setpoint_range,
        Some(TemperatureRange { min: None, max: Some(30.0) })
    );
}

#[test]
fn meter_round_trips() {
    let meter: Meter = assert_round_trip("meter.json", METER);
    assert_eq!(meter.energy_state.power, Some(2.2));
    let meter: Meter = assert_round_trip("meter_nulls.json", METER_NULLS);
    assert_eq!(meter.hem_system_id, None);
    assert_eq!(meter.energy_state.power, None);
}

#[test]
fn inverter_round_trips() {
    let inverter: Inverter = assert_round_trip("inverter.json", INVERTER);
    assert_eq!(inverter.hem_system_id, Some(None));
    assert_eq!(inverter.timezone.as_deref(), Some("Europe/Oslo"));
    let inverter: Inverter = assert_round_trip("inverter_nulls.json", INVERTER_NULLS);
    assert_eq!(inverter.vendor, InverterVendor::CsiSolar);
    assert_eq!(inverter.information.sn, None);
}

// ---------------------------------------------------------------------------------------------
// Actions, interventions, locations, users
// ---------------------------------------------------------------------------------------------

#[test]
fn charge_action_reference_example_round_trips() {
    let action: ChargeAction = assert_round_trip("charge_action.json", CHARGE_ACTION);
    assert_eq!(action.state, ActionState::Pending);
    assert_eq!(action.target_type, ChargeableType::Vehicle);
    assert_eq!(action.kind, ChargeActionKind::Start);
    assert_eq!(
        action.failure_reason,
        Some(ActionFailureReason {
            r#type: FailureReasonType::NoResponse,
            detail: "The chargeable device remained unreachable.".to_owned(),
        })
    );
    assert_eq!(action.entity_id.as_deref(), Some("string"));
}

#[test]
fn charge_action_for_charger_round_trips() {
    let action: ChargeAction =
        assert_round_trip("charge_action_charger.json", CHARGE_ACTION_CHARGER);
    assert_eq!(action.target_type, ChargeableType::Charger);
    assert_eq!(action.failure_reason, None);
    assert_eq!(action.entity_id, None);
}

#[test]
fn max_current_action_round_trips() {
    let action: MaxCurrentAction = assert_round_trip("max_current_action.json", MAX_CURRENT_ACTION);
    assert_eq!(action.target_state, TargetMaxCurrent { max_current: 10.0 });
    assert_eq!(action.target_type, ChargeableType::Vehicle);
    let action: MaxCurrentAction =
        assert_round_trip("max_current_action_pending.json", MAX_CURRENT_ACTION_PENDING);
    assert_eq!(action.target_type, ChargeableType::Charger);
    assert_eq!(action.completed_at, None);
    assert_eq!(action.failure_reason, None);
}

#[test]
fn operation_mode_action_round_trips() {
    let action: OperationModeAction =
        assert_round_trip("operation_mode_action.json", OPERATION_MODE_ACTION);
    assert_eq!(action.target_state.operation_mode, BatteryOperationMode::ImportFocus);
    assert!(matches!(action.failure_reason, Some(Some(_))));
    let action: OperationModeAction = assert_round_trip(
        "operation_mode_action_without_failure_reason.json",
        OPERATION_MODE_ACTION_NO_REASON,
    );
    assert_eq!(action.state, ActionState::Cancelled);
    assert_eq!(action.failure_reason, None);
}

#[test]
fn hvac_permanent_hold_action_round_trips() {
    let action: HvacActionPermanentHold =
        assert_round_trip("hvac_action_permanent_hold.json", HVAC_ACTION_PERMANENT_HOLD);
    assert_eq!(action.target.mode(), HvacMode::Cool);
    assert_eq!(
        action.target,
        PermanentHoldTargetState::Cool(CoolTargetState {
            cool_setpoint: 21.0,
            hold_type: PermanentHoldType::Permanent,
        })
    );
    let action: HvacAction =
        assert_round_trip("hvac_action_permanent_hold.json", HVAC_ACTION_PERMANENT_HOLD);
    assert!(matches!(action, HvacAction::PermanentHold(_)));
    let action: HvacAction = assert_round_trip(
        "hvac_action_permanent_hold_without_failure_reason.json",
        HVAC_ACTION_PERMANENT_HOLD_NO_REASON,
    );
    assert_eq!(action.state(), ActionState::Cancelled);
}

#[test]
fn hvac_follow_schedule_action_round_trips() {
    let action: HvacActionFollowSchedule =
        assert_round_trip("hvac_action_follow_schedule.json", HVAC_ACTION_FOLLOW_SCHEDULE);
    assert_eq!(action.failure_reason, Some(None));
    let action: HvacAction =
        assert_round_trip("hvac_action_follow_schedule.json", HVAC_ACTION_FOLLOW_SCHEDULE);
    assert!(matches!(action, HvacAction::FollowSchedule(_)));
    assert_eq!(action.id(), "4eaeb363-296d-4ccc-a973-7805e6f400bd");
}

#[test]
fn every_permanent_hold_target_state_round_trips() {
    for target in [
        json!({"coolSetpoint": 21, "mode": "COOL", "holdType": "PERMANENT"}),
        json!({"heatSetpoint": 22.5, "mode": "HEAT", "holdType": "PERMANENT"}),
        json!({"coolSetpoint": 24, "heatSetpoint": 20, "mode": "AUTO", "holdType": "PERMANENT"}),
        json!({"mode": "OFF", "holdType": "PERMANENT"}),
    ] {
        let mut action = fixture(HVAC_ACTION_PERMANENT_HOLD);
        action["target"] = target;
        let text = action.to_string();
        let parsed: HvacAction = assert_round_trip("permanent hold target", &text);
        assert!(matches!(parsed, HvacAction::PermanentHold(_)));
    }
}

#[test]
fn every_permanent_hold_payload_round_trips() {
    for payload in [
        json!({"coolSetpoint": 21, "mode": "COOL"}),
        json!({"heatSetpoint": 22.5, "mode": "HEAT"}),
        json!({"coolSetpoint": 24, "heatSetpoint": 20, "mode": "AUTO"}),
        json!({"mode": "OFF"}),
    ] {
        let hold: HvacPermanentHold = assert_round_trip("permanent hold", &payload.to_string());
        let target = serde_json::to_value(hold.target_state()).expect("serialize");
        assert_eq!(target["mode"], payload["mode"]);
        assert_eq!(target["holdType"], json!("PERMANENT"));
    }
}

#[test]
fn intervention_round_trips() {
    let intervention: Intervention = assert_round_trip("intervention.json", INTERVENTION);
    assert_eq!(intervention.vendor, Some(Vendor::Audi));
    assert_eq!(intervention.vendor_type, Some(VendorType::Vehicle));
    assert_eq!(intervention.domain, InterventionDomain::Account);
    assert_eq!(intervention.resolution.access, ResolutionAccess::Remote);
    assert_eq!(intervention.resolution.agent, ResolutionAgent::User);
    assert_eq!(intervention.resolution.action, None);

    let agnostic: Intervention =
        assert_round_trip("intervention_agnostic.json", INTERVENTION_AGNOSTIC);
    assert_eq!((agnostic.vendor, agnostic.vendor_type, agnostic.brand), (None, None, None));
    assert_eq!(agnostic.resolution.action, Some(ResolutionAction::Link));
}

/// The prose reference's intervention example breaks the data model in exactly three places
/// (see the model's module notes); `intervention.json` is that example with those corrected.
#[test]
fn reference_intervention_example_is_rejected_and_differs_only_where_documented() {
    let mut verbatim = fixture(INTERVENTION_REFERENCE_VERBATIM);
    assert_rejected::<Intervention>(verbatim.clone(), "unknown variant `string`");

    verbatim["vendorType"] = json!("vehicle");
    // chrono's message for a timestamp without a UTC offset.
    assert_rejected::<Intervention>(verbatim.clone(), "premature end of input");
    let mut no_offset = verbatim.clone();
    no_offset["introducedAt"] = json!("2023-03-16T00:00:00Z");
    assert_rejected::<Intervention>(no_offset, "missing field `action`");

    verbatim["introducedAt"] = json!("2023-03-16T00:00:00Z");
    object_at(&mut verbatim, "/resolution").insert("action".to_owned(), Value::Null);
    assert_eq!(verbatim, fixture(INTERVENTION));
}

#[test]
fn location_round_trips() {
    let location: Location = assert_round_trip("location.json", LOCATION);
    assert_eq!(location.timezone_name.as_deref(), Some("Europe/Oslo"));
    assert!(location.created_at.is_some());
    let location: Location = assert_round_trip("location_minimal.json", LOCATION_MINIMAL);
    assert_eq!((location.timezone_name, location.created_at), (None, None));
}

#[test]
fn user_round_trips() {
    let user: User = assert_round_trip("user.json", USER);
    assert_eq!(
        user.linked_vendors[0],
        LinkedVendor { vendor: Vendor::Tesla, vendor_type: VendorType::Vehicle, is_valid: true }
    );
    assert_eq!(user.linked_vendors[1].vendor, Vendor::from(InverterVendor::Hoymiles));
}

// ---------------------------------------------------------------------------------------------
// Negative tests
// ---------------------------------------------------------------------------------------------

#[test]
fn unknown_enum_values_are_rejected() {
    let mut vehicle = fixture(VEHICLE);
    vehicle["chargeState"]["powerDeliveryState"] = json!("PLUGGED_IN:WHATEVER");
    assert_rejected::<Vehicle>(vehicle, "unknown variant `PLUGGED_IN:WHATEVER`");

    // COMPLETE exists for vehicles only.
    let mut charger = fixture(CHARGER);
    charger["chargeState"]["powerDeliveryState"] = json!("PLUGGED_IN:COMPLETE");
    assert_rejected::<Charger>(charger, "unknown variant `PLUGGED_IN:COMPLETE`");

    let mut vehicle = fixture(VEHICLE);
    vehicle["vendor"] = json!("tesla");
    assert_rejected::<Vehicle>(vehicle, "unknown variant `tesla`");

    let mut action = fixture(CHARGE_ACTION);
    action["targetType"] = json!("battery");
    assert_rejected::<ChargeAction>(action, "unknown variant `battery`");

    let mut action = fixture(CHARGE_ACTION);
    action["failureReason"]["type"] = json!("TIMEOUT");
    assert_rejected::<ChargeAction>(action, "unknown variant `TIMEOUT`");

    let mut battery = fixture(BATTERY);
    battery["config"]["operationMode"] = json!("FOCUS_IMPORT");
    assert_rejected::<Battery>(battery, "unknown variant `FOCUS_IMPORT`");

    // UNKNOWN is reported, never requested.
    let mut action = fixture(OPERATION_MODE_ACTION);
    action["targetState"]["operationMode"] = json!("UNKNOWN");
    assert_rejected::<OperationModeAction>(action, "unknown variant `UNKNOWN`");

    let mut hvac = fixture(HVAC);
    hvac["thermostatState"]["mode"] = json!("DRY");
    assert_rejected::<Hvac>(hvac, "unknown variant `DRY`");

    let mut action = fixture(HVAC_ACTION_PERMANENT_HOLD);
    action["target"]["holdType"] = json!("TEMPORARY");
    assert_rejected::<HvacAction>(action, "unknown variant `TEMPORARY`");
}

#[test]
fn missing_required_fields_are_rejected() {
    let mut vehicle = fixture(VEHICLE);
    object_at(&mut vehicle, "").remove("vendor");
    assert_rejected::<Vehicle>(vehicle, "missing field `vendor`");

    let mut vehicle = fixture(VEHICLE);
    object_at(&mut vehicle, "").remove("location");
    assert_rejected::<Vehicle>(vehicle, "missing field `location`");

    // A Nullable field may be null but not absent.
    let mut vehicle = fixture(VEHICLE);
    object_at(&mut vehicle, "/chargeState").remove("batteryLevel");
    assert_rejected::<Vehicle>(vehicle, "missing field `batteryLevel`");

    let mut charger = fixture(CHARGER);
    object_at(&mut charger, "/information").remove("year");
    assert_rejected::<Charger>(charger, "missing field `year`");

    let mut hvac = fixture(HVAC);
    object_at(&mut hvac, "/capabilities").remove("setPermanentHold");
    assert_rejected::<Hvac>(hvac, "missing field `setPermanentHold`");

    let mut action = fixture(MAX_CURRENT_ACTION);
    object_at(&mut action, "").remove("failureReason");
    assert_rejected::<MaxCurrentAction>(action, "missing field `failureReason`");

    let mut action = fixture(HVAC_ACTION_PERMANENT_HOLD);
    object_at(&mut action, "/target").remove("coolSetpoint");
    assert_rejected::<HvacAction>(action, "missing field `coolSetpoint`");

    let mut user = fixture(USER);
    object_at(&mut user, "/linkedVendors/0").remove("isValid");
    assert_rejected::<User>(user, "missing field `isValid`");

    // The OpenAPI's own cancel-endpoint example omits userId and is rejected.
    let mut action = fixture(CHARGE_ACTION_CHARGER);
    object_at(&mut action, "").remove("userId");
    assert_rejected::<ChargeAction>(action, "missing field `userId`");
}

#[test]
fn wrong_types_are_rejected() {
    let mut battery = fixture(BATTERY);
    battery["isReachable"] = Value::Null;
    assert_rejected::<Battery>(battery, "invalid type: null");

    let mut meter = fixture(METER);
    meter["lastSeen"] = json!("yesterday");
    assert_rejected::<Meter>(meter, "input contains invalid characters");
}

// ---------------------------------------------------------------------------------------------
// The comparison helper itself
// ---------------------------------------------------------------------------------------------

#[test]
fn json_diff_reports_the_first_difference_by_path() {
    let a = json!({"a": {"b": [1, {"c": null}]}, "t": "2024-01-07T17:04:26.000Z"});
    assert_eq!(json_diff("$", &a, &a), Ok(()));
    let same = json!({"a": {"b": [1.0, {"c": null}]}, "t": "2024-01-07T17:04:26Z"});
    assert_eq!(json_diff("$", &a, &same), Ok(()));

    let missing = json!({"a": {"b": [1, {}]}, "t": "2024-01-07T17:04:26Z"});
    assert_eq!(json_diff("$", &a, &missing), Err("$.a.b[1].c: missing after round trip".into()));

    let extra = json!({"a": {"b": [1, {"c": null, "d": 1}]}, "t": "2024-01-07T17:04:26Z"});
    assert_eq!(json_diff("$", &a, &extra), Err("$.a.b[1].d: extra key after round trip".into()));

    let not_null = json!({"a": {"b": [1, {"c": 0}]}, "t": "2024-01-07T17:04:26Z"});
    assert_eq!(json_diff("$", &a, &not_null), Err("$.a.b[1].c: null != 0".into()));

    let number = json!({"a": {"b": [2, {"c": null}]}, "t": "2024-01-07T17:04:26Z"});
    assert_eq!(json_diff("$", &a, &number), Err("$.a.b[0]: number 1 != 2".into()));

    let instant = json!({"a": {"b": [1, {"c": null}]}, "t": "2024-01-07T17:04:27Z"});
    assert!(json_diff("$", &a, &instant).is_err_and(|e| e.starts_with("$.t: string")));

    assert!(json_diff("$", &json!("80"), &json!(80)).is_err());
    assert!(json_diff("$", &json!([1]), &json!([1, 2])).is_err());
}
