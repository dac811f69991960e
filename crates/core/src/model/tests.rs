//! Unit tests of the model's null-versus-absent conventions and enum spellings.

use serde_json::json;

use super::*;

fn charger_state(plugged_in_vehicle_id: Option<Option<String>>) -> ChargerChargeState {
    ChargerChargeState {
        is_plugged_in: None,
        is_charging: Some(false),
        charge_rate: None,
        last_updated: None,
        max_current: Some(16.0),
        power_delivery_state: ChargerPowerDeliveryState::Unplugged,
        plugged_in_vehicle_id,
    }
}

#[test]
fn nullable_none_serializes_as_null() {
    let value = serde_json::to_value(charger_state(None)).expect("serialize");
    let object = value.as_object().expect("object");
    assert_eq!(object.get("isPluggedIn"), Some(&serde_json::Value::Null));
    assert_eq!(object.get("chargeRate"), Some(&serde_json::Value::Null));
    assert_eq!(object.get("lastUpdated"), Some(&serde_json::Value::Null));
    assert_eq!(object.get("maxCurrent"), Some(&json!(16.0)));
}

#[test]
fn optional_none_is_absent() {
    let value = serde_json::to_value(charger_state(None)).expect("serialize");
    assert!(!value.as_object().expect("object").contains_key("pluggedInVehicleId"));

    let location = Location {
        name: "Home".into(),
        latitude: 59.9,
        longitude: 10.7,
        id: "loc".into(),
        user_id: "user".into(),
        timezone_name: None,
        created_at: None,
    };
    let value = serde_json::to_value(location).expect("serialize");
    let object = value.as_object().expect("object");
    assert!(!object.contains_key("timezoneName"));
    assert!(!object.contains_key("createdAt"));
}

#[test]
fn optional_nullable_keeps_null_apart_from_absent() {
    let null = serde_json::to_value(charger_state(Some(None))).expect("serialize");
    assert_eq!(null.get("pluggedInVehicleId"), Some(&serde_json::Value::Null));
    let back: ChargerChargeState = serde_json::from_value(null).expect("deserialize");
    assert_eq!(back.plugged_in_vehicle_id, Some(None));

    let set = serde_json::to_value(charger_state(Some(Some("v1".into())))).expect("serialize");
    assert_eq!(set.get("pluggedInVehicleId"), Some(&json!("v1")));

    let mut absent = serde_json::to_value(charger_state(None)).expect("serialize");
    absent.as_object_mut().expect("object").remove("pluggedInVehicleId");
    let back: ChargerChargeState = serde_json::from_value(absent).expect("deserialize");
    assert_eq!(back.plugged_in_vehicle_id, None);
}

#[test]
fn nullable_key_must_be_present() {
    let mut value = serde_json::to_value(charger_state(None)).expect("serialize");
    value.as_object_mut().expect("object").remove("chargeRate");
    let err = serde_json::from_value::<ChargerChargeState>(value).expect_err("missing key");
    assert!(err.to_string().contains("missing field `chargeRate`"), "{err}");
}

#[test]
fn optional_accepts_absent_and_skips_on_output() {
    let value = json!({"name": "Home", "latitude": 1, "longitude": 2, "id": "l", "userId": "u"});
    let location: Location = serde_json::from_value(value).expect("deserialize");
    assert_eq!(location.timezone_name, None);
    assert_eq!(location.created_at, None);
}

#[test]
fn enum_spellings_round_trip() {
    fn check<T>(all: &[T])
    where
        T: Copy + std::fmt::Debug + PartialEq + serde::Serialize + serde::de::DeserializeOwned,
        T: std::fmt::Display + std::str::FromStr,
        <T as std::str::FromStr>::Err: std::fmt::Debug,
    {
        for v in all {
            let wire = serde_json::to_value(v).expect("serialize");
            assert_eq!(wire, json!(v.to_string()));
            assert_eq!(serde_json::from_value::<T>(wire).expect("deserialize"), *v);
            assert_eq!(v.to_string().parse::<T>().expect("parse"), *v);
        }
    }
    check(VendorType::ALL);
    check(Vendor::ALL);
    check(VehicleVendor::ALL);
    check(ChargerVendor::ALL);
    check(BatteryVendor::ALL);
    check(HvacVendor::ALL);
    check(MeterVendor::ALL);
    check(InverterVendor::ALL);
    check(PowerDeliveryState::ALL);
    check(ChargerPowerDeliveryState::ALL);
    check(BatteryChargeStatus::ALL);
    check(BatteryOperationMode::ALL);
    check(BatteryConfigOperationMode::ALL);
    check(HvacMode::ALL);
    check(HvacHoldType::ALL);
    check(HvacCategory::ALL);
    check(ActionState::ALL);
    check(FailureReasonType::ALL);
    check(ChargeableType::ALL);
    check(ChargeActionKind::ALL);
    check(InterventionDomain::ALL);
    check(ResolutionAccess::ALL);
    check(ResolutionAgent::ALL);
    check(ResolutionAction::ALL);
}

#[test]
fn documented_spellings() {
    assert_eq!(PowerDeliveryState::PluggedInCharging.as_str(), "PLUGGED_IN:CHARGING");
    assert_eq!(BatteryOperationMode::ImportFocus.as_str(), "IMPORT_FOCUS");
    assert_eq!(ChargeableType::Vehicle.as_str(), "vehicle");
    assert_eq!(ChargeableType::Charger.as_str(), "charger");
    assert_eq!(InverterVendor::CsiSolar.as_str(), "CSISolar");
    assert_eq!(InverterVendor::Hoymiles.as_str(), "Hoymiles");
    assert_eq!(VehicleVendor::ALL.len(), 48);
    assert_eq!(ChargerVendor::ALL.len(), 19);
    assert_eq!(InverterVendor::ALL.len(), 24);
    let err = "PLUGGED_IN:WHATEVER".parse::<PowerDeliveryState>().expect_err("unknown");
    assert_eq!(err.to_string(), "unknown PowerDeliveryState value \"PLUGGED_IN:WHATEVER\"");
}

#[test]
fn every_class_vendor_converts_to_the_same_spelling() {
    for v in VehicleVendor::ALL {
        assert_eq!(Vendor::from(*v).as_str(), v.as_str());
    }
    for v in ChargerVendor::ALL {
        assert_eq!(Vendor::from(*v).as_str(), v.as_str());
    }
    for v in BatteryVendor::ALL {
        assert_eq!(Vendor::from(*v).as_str(), v.as_str());
    }
    for v in HvacVendor::ALL {
        assert_eq!(Vendor::from(*v).as_str(), v.as_str());
    }
    for v in MeterVendor::ALL {
        assert_eq!(Vendor::from(*v).as_str(), v.as_str());
    }
    for v in InverterVendor::ALL {
        assert_eq!(Vendor::from(*v).as_str(), v.as_str());
    }
}

#[test]
fn permanent_hold_is_tagged_by_mode() {
    let hold: HvacPermanentHold =
        serde_json::from_value(json!({"mode": "AUTO", "coolSetpoint": 24, "heatSetpoint": 20}))
            .expect("deserialize");
    assert_eq!(hold.mode(), HvacMode::Auto);
    let target = serde_json::to_value(hold.target_state()).expect("serialize");
    assert_eq!(
        target,
        json!({"mode": "AUTO", "coolSetpoint": 24.0, "heatSetpoint": 20.0, "holdType": "PERMANENT"})
    );
    let off = serde_json::to_value(HvacPermanentHold::Off(OffPermanentHold {})).expect("off");
    assert_eq!(off, json!({"mode": "OFF"}));
    assert!(serde_json::from_value::<HvacPermanentHold>(json!({"mode": "HEAT"})).is_err());
    assert!(serde_json::from_value::<HvacPermanentHold>(json!({"mode": "DRY"})).is_err());
}

#[test]
fn power_delivery_state_helpers() {
    assert!(PowerDeliveryState::PluggedInComplete.is_plugged_in());
    assert!(!PowerDeliveryState::Unplugged.is_plugged_in());
    assert_eq!(
        PowerDeliveryState::from(ChargerPowerDeliveryState::PluggedInFault),
        PowerDeliveryState::PluggedInFault
    );
    for s in ChargerPowerDeliveryState::ALL {
        assert_eq!(PowerDeliveryState::from(*s).as_str(), s.as_str());
    }
}
