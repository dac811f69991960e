//! Pure mapping from Tesla's JSON to the normalized [`Vehicle`].
//!
//! No I/O and no clock: the caller passes the [`DeviceRef`] (for `id` and `userId`) and the
//! time of the observation. Units: Tesla reports miles, oemgate reports kilometres.
//!
//! Choices worth knowing:
//! - `lastSeen` is the observation time. For a sleeping car the vendor gave no live data, so
//!   the caller (which sees [`oemgate_core::Observation::asleep`]) should keep the previous
//!   `lastSeen` and live fields when it merges.
//! - `batteryCapacity` is `null`: the Fleet API does not report usable capacity.
//! - `Starting` counts as charging (`PLUGGED_IN:CHARGING`, `isCharging: true`).
//! - `isFullyCharged` is true for `Complete`, or when the battery level has reached the
//!   charge limit; `null` when the charging state is unknown.
//! - `chargeRate` and `chargeTimeRemaining` are only set while charging.
//! - `maxCurrent` is the current set with `set_charging_amps` (`charge_amps`), falling back
//!   to `charge_current_request`, then `charge_current_request_max`.

use chrono::{DateTime, TimeZone, Utc};
use oemgate_core::{
    Capability, DeviceLocation, DeviceRef, PowerDeliveryState, Vehicle, VehicleCapabilities,
    VehicleChargeState, VehicleInformation, VehicleOdometer, VehicleSmartChargingPolicy,
    VehicleVendor,
};

use crate::model::{ChargeState, ChargingState, VehicleData, VehicleListEntry};

/// Kilometres per mile.
pub const KM_PER_MILE: f64 = 1.609_344;

/// The scopes oemgate asks Tesla for and reports on every vehicle.
pub const SCOPES: &[&str] =
    &["vehicle:control:charging", "vehicle:read:data", "vehicle:read:location"];

/// The vehicle as read from `vehicle_data` of an awake car.
///
/// `entry` is the car's line in the vehicles list when the caller has it (for the name).
pub fn vehicle_from_data(
    device: &DeviceRef,
    data: &VehicleData,
    entry: Option<&VehicleListEntry>,
    observed_at: DateTime<Utc>,
) -> Vehicle {
    let vin = data
        .vin
        .clone()
        .or_else(|| entry.map(|e| e.vin.clone()))
        .unwrap_or_else(|| device.vendor_id.clone());
    let car_type = data.vehicle_config.as_ref().and_then(|c| c.car_type.as_deref());
    let display_name = data
        .display_name
        .clone()
        .or_else(|| data.vehicle_state.as_ref().and_then(|s| s.vehicle_name.clone()))
        .or_else(|| entry.and_then(|e| e.display_name.clone()))
        .filter(|n| !n.trim().is_empty());

    let odometer = match &data.vehicle_state {
        Some(state) => VehicleOdometer {
            distance: state.odometer.filter(|m| *m >= 0.0).map(miles_to_km),
            last_updated: state
                .timestamp
                .and_then(from_epoch_ms)
                .or(state.odometer.map(|_| observed_at)),
        },
        None => VehicleOdometer { distance: None, last_updated: None },
    };

    let location = match &data.drive_state {
        Some(drive) => {
            let (latitude, longitude) = match (drive.latitude, drive.longitude) {
                (Some(lat), Some(lon)) if valid_coordinates(lat, lon) => (Some(lat), Some(lon)),
                _ => (None, None),
            };
            let last_updated = latitude.and_then(|_| {
                drive
                    .gps_as_of
                    .and_then(from_epoch_s)
                    .or_else(|| drive.timestamp.and_then(from_epoch_ms))
                    .or(Some(observed_at))
            });
            DeviceLocation { id: None, longitude, latitude, last_updated }
        }
        None => empty_location(),
    };

    Vehicle {
        id: device.id.clone(),
        user_id: device.user_id.clone(),
        vendor: VehicleVendor::Tesla,
        last_seen: observed_at,
        is_reachable: Some(true),
        information: information(&vin, car_type, display_name),
        charge_state: charge_state(&data.charge_state, observed_at),
        smart_charging_policy: default_smart_charging_policy(),
        odometer,
        capabilities: capabilities(),
        scopes: scopes(),
        location,
    }
}

/// The vehicle as far as the vehicles list tells for a car that is asleep or offline: the
/// static information only, live fields `null`, `isReachable: false`.
pub fn vehicle_asleep(
    device: &DeviceRef,
    entry: &VehicleListEntry,
    observed_at: DateTime<Utc>,
) -> Vehicle {
    let vin =
        if entry.vin.trim().is_empty() { device.vendor_id.clone() } else { entry.vin.clone() };
    Vehicle {
        id: device.id.clone(),
        user_id: device.user_id.clone(),
        vendor: VehicleVendor::Tesla,
        last_seen: observed_at,
        is_reachable: Some(false),
        information: information(
            &vin,
            None,
            entry.display_name.clone().filter(|n| !n.trim().is_empty()),
        ),
        charge_state: unknown_charge_state(),
        smart_charging_policy: default_smart_charging_policy(),
        odometer: VehicleOdometer { distance: None, last_updated: None },
        capabilities: capabilities(),
        scopes: scopes(),
        location: empty_location(),
    }
}

/// The normalized charge state from Tesla's `charge_state`.
pub fn charge_state(cs: &ChargeState, observed_at: DateTime<Utc>) -> VehicleChargeState {
    let parsed = cs.charging_state.as_deref().map(ChargingState::parse);
    let pds = power_delivery_state(cs.charging_state.as_deref());
    let known = !matches!(pds, PowerDeliveryState::Unknown);
    let charging = matches!(pds, PowerDeliveryState::PluggedInCharging);
    let battery_level = cs.battery_level.filter(|l| (0.0..=100.0).contains(l));
    let charge_limit = cs.charge_limit_soc.filter(|l| (0.0..=100.0).contains(l));
    let reached_limit = match (battery_level, charge_limit) {
        (Some(level), Some(limit)) => level >= limit,
        _ => false,
    };
    let minutes = cs
        .minutes_to_full_charge
        .or_else(|| cs.time_to_full_charge.map(|h| h * 60.0))
        .filter(|m| *m >= 0.0);
    VehicleChargeState {
        battery_level,
        range: cs.battery_range.filter(|r| *r >= 0.0).map(miles_to_km),
        is_plugged_in: known.then(|| pds.is_plugged_in()),
        is_charging: known.then_some(charging),
        is_fully_charged: known
            .then_some(matches!(parsed, Some(ChargingState::Complete)) || reached_limit),
        battery_capacity: None,
        charge_limit,
        charge_rate: if charging { cs.charger_power.filter(|p| *p >= 0.0) } else { None },
        charge_time_remaining: if charging { minutes } else { None },
        last_updated: cs.timestamp.and_then(from_epoch_ms).or(Some(observed_at)),
        max_current: cs
            .charge_amps
            .or(cs.charge_current_request)
            .or(cs.charge_current_request_max)
            .filter(|a| *a >= 0.0),
        power_delivery_state: pds,
        plugged_in_charger_id: None,
    }
}

/// Tesla's `charging_state` as a power delivery state; absent or unknown → `UNKNOWN`.
pub fn power_delivery_state(charging_state: Option<&str>) -> PowerDeliveryState {
    match charging_state.map(ChargingState::parse) {
        Some(ChargingState::Disconnected) => PowerDeliveryState::Unplugged,
        Some(ChargingState::Charging | ChargingState::Starting) => {
            PowerDeliveryState::PluggedInCharging
        }
        Some(ChargingState::Stopped) => PowerDeliveryState::PluggedInStopped,
        Some(ChargingState::Complete) => PowerDeliveryState::PluggedInComplete,
        Some(ChargingState::NoPower) => PowerDeliveryState::PluggedInNoPower,
        Some(ChargingState::Other(_)) | None => PowerDeliveryState::Unknown,
    }
}

/// A charge state with every live field `null` and `UNKNOWN` power delivery.
pub fn unknown_charge_state() -> VehicleChargeState {
    VehicleChargeState {
        battery_level: None,
        range: None,
        is_plugged_in: None,
        is_charging: None,
        is_fully_charged: None,
        battery_capacity: None,
        charge_limit: None,
        charge_rate: None,
        charge_time_remaining: None,
        last_updated: None,
        max_current: None,
        power_delivery_state: PowerDeliveryState::Unknown,
        plugged_in_charger_id: None,
    }
}

/// What oemgate can do with any Tesla: read everything, start/stop charging, set the
/// charging current, and so smart-charge it.
pub fn capabilities() -> VehicleCapabilities {
    VehicleCapabilities {
        information: Capability::capable(),
        charge_state: Capability::capable(),
        location: Capability::capable(),
        odometer: Capability::capable(),
        set_max_current: Capability::capable(),
        start_charging: Capability::capable(),
        stop_charging: Capability::capable(),
        smart_charging: Capability::capable(),
    }
}

/// [`SCOPES`] as owned strings.
pub fn scopes() -> Vec<String> {
    SCOPES.iter().map(|s| (*s).to_owned()).collect()
}

/// Smart charging off, no deadline, no minimum: what a freshly linked vehicle has.
pub fn default_smart_charging_policy() -> VehicleSmartChargingPolicy {
    VehicleSmartChargingPolicy { is_enabled: false, deadline: None, minimum_charge_limit: 0.0 }
}

fn information(
    vin: &str,
    car_type: Option<&str>,
    display_name: Option<String>,
) -> VehicleInformation {
    VehicleInformation {
        vin: Some(vin.to_owned()).filter(|v| !v.trim().is_empty()),
        brand: Some("Tesla".to_owned()),
        model: car_type.and_then(model_from_car_type).or_else(|| model_from_vin(vin)),
        year: model_year_from_vin(vin),
        display_name,
    }
}

fn empty_location() -> DeviceLocation {
    DeviceLocation { id: None, longitude: None, latitude: None, last_updated: None }
}

/// Miles to kilometres, rounded to 0.1 km.
pub fn miles_to_km(miles: f64) -> f64 {
    (miles * KM_PER_MILE * 10.0).round() / 10.0
}

fn valid_coordinates(lat: f64, lon: f64) -> bool {
    lat.is_finite()
        && lon.is_finite()
        && (-90.0..=90.0).contains(&lat)
        && (-180.0..=180.0).contains(&lon)
}

/// Epoch milliseconds to a time; out-of-range values → `None`.
pub fn from_epoch_ms(ms: i64) -> Option<DateTime<Utc>> {
    Utc.timestamp_millis_opt(ms).single().filter(|t| t.timestamp() > 0)
}

fn from_epoch_s(s: i64) -> Option<DateTime<Utc>> {
    Utc.timestamp_opt(s, 0).single().filter(|t| t.timestamp() > 0)
}

/// The model name for a `vehicle_config.car_type` (`modely` → `Model Y`).
pub fn model_from_car_type(car_type: &str) -> Option<String> {
    let name = match car_type.trim().to_ascii_lowercase().as_str() {
        "" => return None,
        "models" | "models2" | "lychee" => "Model S",
        "model3" | "highland" => "Model 3",
        "modelx" | "tamarind" => "Model X",
        "modely" | "juniper" => "Model Y",
        "cybertruck" => "Cybertruck",
        "roadster" => "Roadster",
        "semi" => "Semi",
        _ => return Some(car_type.trim().to_owned()),
    };
    Some(name.to_owned())
}

/// Tesla's world manufacturer identifiers (first three VIN characters).
const TESLA_WMIS: &[&str] = &["5YJ", "7SA", "7G2", "LRW", "XP7", "SFZ"];

fn tesla_vin(vin: &str) -> Option<&[u8]> {
    let bytes = vin.as_bytes();
    (bytes.len() == 17 && vin.is_ascii() && TESLA_WMIS.iter().any(|w| vin.starts_with(w)))
        .then_some(bytes)
}

/// The model from a Tesla VIN's fourth character, when the VIN is Tesla's.
pub fn model_from_vin(vin: &str) -> Option<String> {
    let name = match tesla_vin(vin)?.get(3)? {
        b'S' => "Model S",
        b'3' => "Model 3",
        b'X' => "Model X",
        b'Y' => "Model Y",
        b'C' => "Cybertruck",
        b'R' => "Roadster",
        _ => return None,
    };
    Some(name.to_owned())
}

/// The model year from a Tesla VIN's tenth character (`K` → 2019, `R` → 2024).
pub fn model_year_from_vin(vin: &str) -> Option<f64> {
    const LETTERS: &[u8] = b"ABCDEFGHJKLMNPRSTVWXY";
    let code = *tesla_vin(vin)?.get(9)?;
    let year = if let Some(i) = LETTERS.iter().position(|c| *c == code) {
        2010 + i32::try_from(i).ok()?
    } else if code.is_ascii_digit() && code != b'0' {
        let d = i32::from(code - b'0');
        // 8 and 9 were the Roadster's 2008 and 2009; 1..=7 are the next cycle.
        if d >= 8 { 2000 + d } else { 2030 + d }
    } else {
        return None;
    };
    Some(f64::from(year))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Envelope;
    use oemgate_core::VendorType;
    use proptest::prelude::*;

    fn device() -> DeviceRef {
        DeviceRef {
            id: "veh-1".into(),
            user_id: "user-1".into(),
            device_type: VendorType::Vehicle,
            vendor_id: "LRWXF7EK4KC700000".into(),
            site_id: None,
        }
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 1, 20, 0, 0, 0).unwrap()
    }

    fn data(raw: &str) -> VehicleData {
        serde_json::from_str::<Envelope<VehicleData>>(raw).unwrap().response.unwrap()
    }

    fn list(raw: &str) -> Vec<VehicleListEntry> {
        serde_json::from_str::<Envelope<Vec<VehicleListEntry>>>(raw).unwrap().response.unwrap()
    }

    #[test]
    fn reference_example_maps() {
        let d = data(include_str!("../tests/fixtures/vehicle_data_reference.json"));
        let v = vehicle_from_data(&device(), &d, None, now());
        assert_eq!(v.id, "veh-1");
        assert_eq!(v.user_id, "user-1");
        assert_eq!(v.vendor, VehicleVendor::Tesla);
        assert_eq!(v.is_reachable, Some(true));
        let cs = &v.charge_state;
        assert_eq!(cs.battery_level, Some(77.0));
        assert_eq!(cs.power_delivery_state, PowerDeliveryState::PluggedInStopped);
        assert_eq!(cs.is_plugged_in, Some(true));
        assert_eq!(cs.is_charging, Some(false));
        assert_eq!(cs.is_fully_charged, Some(false));
        assert_eq!(cs.charge_limit, Some(80.0));
        assert_eq!(cs.charge_rate, None, "only while charging");
        assert_eq!(cs.max_current, Some(16.0));
        assert_eq!(cs.range, None);
        assert_eq!(cs.last_updated, from_epoch_ms(1_705_707_520_649));
        assert_eq!(v.information.vin.as_deref(), Some("LRWXF7EK4KC700000"));
        assert_eq!(v.information.brand.as_deref(), Some("Tesla"));
        assert_eq!(v.information.year, Some(2019.0));
        assert_eq!(v.odometer.distance, None);
        assert_eq!(v.location.latitude, None);
        assert_eq!(v.scopes, scopes());
        // Serializes as the Enode-style JSON with every required key.
        let json = serde_json::to_value(&v).unwrap();
        assert_eq!(json["chargeState"]["powerDeliveryState"], "PLUGGED_IN:STOPPED");
        assert_eq!(json["vendor"], "TESLA");
        assert!(json["chargeState"]["chargeRate"].is_null());
    }

    #[test]
    fn charging_fixture_maps() {
        let d = data(include_str!("../tests/fixtures/vehicle_data_charging.json"));
        let v = vehicle_from_data(&device(), &d, None, now());
        let cs = &v.charge_state;
        assert_eq!(cs.power_delivery_state, PowerDeliveryState::PluggedInCharging);
        assert_eq!(cs.is_charging, Some(true));
        assert_eq!(cs.is_plugged_in, Some(true));
        assert_eq!(cs.is_fully_charged, Some(false));
        assert_eq!(cs.battery_level, Some(54.0));
        assert_eq!(cs.range, Some(miles_to_km(190.5)));
        assert_eq!(cs.charge_rate, Some(11.0));
        assert_eq!(cs.charge_time_remaining, Some(95.0));
        assert_eq!(cs.max_current, Some(16.0));
        assert_eq!(cs.charge_limit, Some(90.0));
        assert_eq!(v.information.model.as_deref(), Some("Model Y"));
        assert_eq!(v.information.year, Some(2023.0));
        assert_eq!(v.information.display_name.as_deref(), Some("Blue Thunder"));
        assert_eq!(v.odometer.distance, Some(miles_to_km(12_345.6)));
        assert_eq!(v.odometer.last_updated, from_epoch_ms(1_705_707_520_700));
        assert_eq!(v.location.latitude, Some(59.9139));
        assert_eq!(v.location.longitude, Some(10.7522));
        assert_eq!(v.location.last_updated, from_epoch_s(1_705_707_519));
        assert!((miles_to_km(190.5) - 306.6).abs() < 1e-9);
    }

    #[test]
    fn complete_and_disconnected_fixtures_map() {
        let d = data(include_str!("../tests/fixtures/vehicle_data_complete.json"));
        let cs = vehicle_from_data(&device(), &d, None, now()).charge_state;
        assert_eq!(cs.power_delivery_state, PowerDeliveryState::PluggedInComplete);
        assert_eq!(cs.is_fully_charged, Some(true));
        assert_eq!(cs.is_charging, Some(false));
        assert_eq!(cs.is_plugged_in, Some(true));

        let d = data(include_str!("../tests/fixtures/vehicle_data_disconnected.json"));
        let v = vehicle_from_data(&device(), &d, None, now());
        let cs = &v.charge_state;
        assert_eq!(cs.power_delivery_state, PowerDeliveryState::Unplugged);
        assert_eq!(cs.is_plugged_in, Some(false));
        assert_eq!(cs.is_charging, Some(false));
        assert_eq!(cs.charge_rate, None);
        assert_eq!(cs.charge_time_remaining, None);
        assert_eq!(v.information.model.as_deref(), Some("Model 3"));
        // Invalid coordinates are dropped rather than passed on.
        assert_eq!(v.location.latitude, None);
        assert_eq!(v.location.last_updated, None);
    }

    #[test]
    fn asleep_entry_maps_with_nulls() {
        let entries = list(include_str!("../tests/fixtures/vehicles_list.json"));
        assert_eq!(entries.len(), 3);
        let asleep = entries.iter().find(|e| e.state == "asleep").unwrap();
        let v = vehicle_asleep(&device(), asleep, now());
        assert_eq!(v.is_reachable, Some(false));
        assert_eq!(v.charge_state, unknown_charge_state());
        assert_eq!(v.information.vin.as_deref(), Some(asleep.vin.as_str()));
        assert_eq!(v.information.display_name.as_deref(), Some("Sleepy"));
        assert_eq!(v.information.model.as_deref(), Some("Model Y"));
        assert_eq!(v.odometer.distance, None);
        let json = serde_json::to_value(&v).unwrap();
        assert!(json["chargeState"]["batteryLevel"].is_null());
        assert!(json["chargeState"]["isFullyCharged"].is_null());
        assert_eq!(json["chargeState"]["powerDeliveryState"], "UNKNOWN");
        assert_eq!(json["isReachable"], false);
    }

    #[test]
    fn vin_decoding() {
        assert_eq!(model_year_from_vin("5YJ3E1EA7PF000001"), Some(2023.0));
        assert_eq!(model_year_from_vin("5YJSA1E2XJF000001"), Some(2018.0));
        assert_eq!(model_year_from_vin("WVWZZZ1JZ3W386752"), None, "not a Tesla");
        assert_eq!(model_year_from_vin("short"), None);
        assert_eq!(model_from_vin("7SAYGDEE1RF000001").as_deref(), Some("Model Y"));
        assert_eq!(model_from_car_type("models2").as_deref(), Some("Model S"));
        assert_eq!(model_from_car_type("futurecar").as_deref(), Some("futurecar"));
        assert_eq!(model_from_car_type(" "), None);
    }

    #[test]
    fn power_delivery_states() {
        use PowerDeliveryState as P;
        let cases = [
            (Some("Disconnected"), P::Unplugged),
            (Some("Charging"), P::PluggedInCharging),
            (Some("Starting"), P::PluggedInCharging),
            (Some("Stopped"), P::PluggedInStopped),
            (Some("Complete"), P::PluggedInComplete),
            (Some("NoPower"), P::PluggedInNoPower),
            (Some("Fancy"), P::Unknown),
            (None, P::Unknown),
        ];
        for (input, expected) in cases {
            assert_eq!(power_delivery_state(input), expected, "{input:?}");
        }
        let cs = charge_state(
            &ChargeState { charging_state: Some("Fancy".into()), ..Default::default() },
            now(),
        );
        assert_eq!(cs.is_plugged_in, None);
        assert_eq!(cs.is_fully_charged, None);
    }

    proptest! {
        #[test]
        fn any_charging_state_maps_without_panic(s in ".{0,20}") {
            let pds = power_delivery_state(Some(&s));
            let known = ["disconnected", "stopped", "starting", "charging", "complete", "nopower", "no_power"];
            if !known.contains(&s.trim().to_ascii_lowercase().as_str()) {
                prop_assert_eq!(pds, PowerDeliveryState::Unknown);
            }
        }

        #[test]
        fn any_charge_state_numbers_map_without_panic(
            level in proptest::option::of(any::<f64>()),
            range in proptest::option::of(any::<f64>()),
            power in proptest::option::of(any::<f64>()),
            limit in proptest::option::of(any::<f64>()),
            ts in proptest::option::of(any::<i64>()),
            state in proptest::option::of(prop_oneof![
                Just("Charging".to_owned()), Just("Complete".to_owned()), ".{0,8}"
            ]),
        ) {
            let cs = ChargeState {
                battery_level: level,
                battery_range: range,
                charger_power: power,
                charge_limit_soc: limit,
                timestamp: ts,
                charging_state: state,
                ..Default::default()
            };
            let out = charge_state(&cs, now());
            if let Some(l) = out.battery_level {
                prop_assert!((0.0..=100.0).contains(&l));
            }
            // Always serializable as JSON.
            prop_assert!(serde_json::to_string(&out).is_ok());
        }

        #[test]
        fn any_json_vehicle_data_maps_or_errors(raw in ".{0,200}") {
            if let Ok(env) = serde_json::from_str::<Envelope<VehicleData>>(&raw)
                && let Some(d) = env.response
            {
                let _ = vehicle_from_data(&device(), &d, None, now());
            }
        }
    }
}
