//! SMA's JSON (the examples of SMA's documentation and richer recorded shapes, anonymized)
//! mapped to the normalized resources: values, units (W -> kW, Wh -> kWh), signs (charging
//! and import positive) and timestamps (plant-local times -> UTC).

#![allow(clippy::unwrap_used)]

use chrono::{DateTime, TimeZone, Utc};
use oemgate_core::{
    BatteryChargeStatus, DeviceRef, DeviceState, ErrorKind, InverterVendor, VendorType,
};
use oemgate_sma::client::{classify_api_error, classify_token_error, decode};
use oemgate_sma::map::{self, READ_ONLY_INTERVENTION_ID};
use oemgate_sma::model::{MeasurementSet, PlantDevices, PlantList, TokenResponse};
use reqwest::header::HeaderMap;
use serde_json::json;

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn set(name: &str) -> MeasurementSet {
    decode(&fixture(name), name).unwrap()
}

fn device(t: VendorType, vendor_id: &str) -> DeviceRef {
    DeviceRef {
        id: format!("dev-{vendor_id}"),
        user_id: "user-1".into(),
        device_type: t,
        vendor_id: vendor_id.into(),
        site_id: Some("5000001".into()),
    }
}

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn close(a: Option<f64>, b: f64) {
    let a = a.unwrap_or_else(|| panic!("expected {b}, found null"));
    assert!((a - b).abs() < 1e-9, "expected {b}, found {a}");
}

/// The example of SMA's documentation (vendor-clouds.md, section 4), read at 11:42 UTC.
#[test]
fn reference_example_maps() {
    let recent = set("energy_balance_recent_reference.json");
    let now = utc("2020-03-23T11:42:00Z");
    // "2020-03-23T12:40:00" in Europe/Berlin is CET (UTC+1) before the 29 March switch.
    let measured = Some(utc("2020-03-23T11:40:00Z"));

    let inv = map::inverter_from_balance(&device(VendorType::Inverter, "16"), &recent, None, now);
    close(inv.production_state.production_rate, 3.110263); // 3110.263 W
    assert_eq!(inv.production_state.is_producing, Some(true));
    assert_eq!(inv.production_state.total_lifetime_production, None, "Recent has no total");
    assert_eq!(inv.production_state.last_updated, measured);
    assert_eq!(inv.timezone.as_deref(), Some("Europe/Berlin"));
    assert!(inv.is_reachable);
    assert_eq!(inv.vendor, InverterVendor::Sma);
    assert_eq!(inv.information.site_name, "Test Plant");
    assert_eq!(inv.information.id, "16");
    assert_eq!(inv.last_seen, now);

    let bat = map::battery_from_balance(&device(VendorType::Battery, "19"), &recent, now);
    close(bat.charge_state.charge_rate, 0.0);
    assert_eq!(bat.charge_state.status, Some(BatteryChargeStatus::Idle));
    close(bat.charge_state.battery_level, 65.25);
    assert_eq!(bat.charge_state.battery_capacity, None, "SMA does not report capacity");
    assert_eq!(bat.charge_state.discharge_limit, None);
    assert_eq!(bat.charge_state.last_updated, measured);
    assert_eq!(bat.config.operation_mode, None);
    assert!(bat.is_reachable);

    let meter = map::meter_from_balance(&device(VendorType::Meter, "20"), &recent, now);
    // gridConsumption 402.139 W - gridFeedIn 396.455 W = 5.684 W imported.
    close(meter.energy_state.power, 0.005684);
    assert_eq!(meter.energy_state.last_updated, measured);
    assert!(meter.is_reachable);
    assert!(meter.capabilities.measures_consumption.is_capable);
    assert!(meter.capabilities.measures_production.is_capable);
}

/// Midday in summer (CEST): PV exporting while the battery charges.
#[test]
fn charging_and_exporting() {
    let recent = set("energy_balance_recent_charging.json");
    let now = utc("2025-07-01T11:07:12Z");
    let measured = Some(utc("2025-07-01T11:05:00Z")); // 13:05 CEST

    let bat = map::battery_from_balance(&device(VendorType::Battery, "19"), &recent, now);
    close(bat.charge_state.charge_rate, 2.5);
    assert_eq!(bat.charge_state.status, Some(BatteryChargeStatus::Charging));
    close(bat.charge_state.battery_level, 48.5);
    assert_eq!(bat.charge_state.last_updated, measured);

    let meter = map::meter_from_balance(&device(VendorType::Meter, "20"), &recent, now);
    close(meter.energy_state.power, -3.02025); // export is negative

    let inv = map::inverter_from_balance(&device(VendorType::Inverter, "16"), &recent, None, now);
    close(inv.production_state.production_rate, 6.4205);
    assert_eq!(inv.production_state.last_updated, measured);
}

/// A winter evening: the battery covers most of the house, the rest is imported.
#[test]
fn discharging_and_importing_at_night() {
    let recent = set("energy_balance_recent_discharging.json");
    let now = utc("2025-12-01T21:00:00Z");

    let bat = map::battery_from_balance(&device(VendorType::Battery, "19"), &recent, now);
    close(bat.charge_state.charge_rate, -1.8); // discharging is negative
    assert_eq!(bat.charge_state.status, Some(BatteryChargeStatus::Discharging));
    close(bat.charge_state.battery_level, 72.0);
    assert_eq!(bat.charge_state.last_updated, Some(utc("2025-12-01T20:55:00Z"))); // 21:55 CET

    let meter = map::meter_from_balance(&device(VendorType::Meter, "20"), &recent, now);
    close(meter.energy_state.power, 0.35);

    let inv = map::inverter_from_balance(&device(VendorType::Inverter, "16"), &recent, None, now);
    close(inv.production_state.production_rate, 0.0);
    assert_eq!(inv.production_state.is_producing, Some(false));
    assert!(inv.is_reachable);
}

/// A PV-only plant: SMA omits the battery and grid keys; those stay null and unreachable.
#[test]
fn pv_only_plant_omits_keys() {
    let recent = set("energy_balance_recent_pv_only.json");
    let now = utc("2025-07-01T11:06:00Z");

    let inv = map::inverter_from_balance(&device(VendorType::Inverter, "31"), &recent, None, now);
    close(inv.production_state.production_rate, 2.1);
    assert_eq!(inv.information.site_name, "Garage roof");

    let bat = map::battery_from_balance(&device(VendorType::Battery, "32"), &recent, now);
    assert!(!bat.is_reachable);
    let cs = &bat.charge_state;
    assert_eq!(
        (cs.status, cs.battery_level, cs.charge_rate, cs.last_updated),
        (None, None, None, None)
    );

    let meter = map::meter_from_balance(&device(VendorType::Meter, "33"), &recent, now);
    assert!(!meter.is_reachable);
    assert_eq!(meter.energy_state.power, None);
    assert_eq!(meter.energy_state.last_updated, None);
}

/// Every value null, or no interval at all: everything null, nothing reachable, no zeros.
#[test]
fn nulls_and_empty_sets_stay_null() {
    let now = utc("2025-07-01T11:06:00Z");
    for name in ["energy_balance_recent_nulls.json", "energy_balance_recent_empty.json"] {
        let recent = set(name);
        let inv =
            map::inverter_from_balance(&device(VendorType::Inverter, "16"), &recent, None, now);
        let ps = &inv.production_state;
        assert_eq!((ps.production_rate, ps.is_producing, ps.last_updated), (None, None, None));
        assert!(!inv.is_reachable, "{name}");
        let bat = map::battery_from_balance(&device(VendorType::Battery, "19"), &recent, now);
        assert!(!bat.is_reachable, "{name}");
        assert_eq!(bat.charge_state.charge_rate, None);
        assert_eq!(bat.charge_state.battery_level, None);
        let meter = map::meter_from_balance(&device(VendorType::Meter, "20"), &recent, now);
        assert!(!meter.is_reachable, "{name}");
        assert_eq!(meter.energy_state.power, None);
    }
    let recent = set("energy_balance_recent_nulls.json");
    let inv = map::inverter_from_balance(&device(VendorType::Inverter, "16"), &recent, None, now);
    assert_eq!(inv.timezone, None);
    assert_eq!(inv.information.site_name, "SMA plant 5000001", "fallback name");
}

/// `EnergyBalance/Total` lists Wh per year: the lifetime production is their sum, in kWh.
#[test]
fn lifetime_production_from_total() {
    let total = set("energy_balance_total.json");
    close(map::lifetime_production_kwh(&total), 14_000.0);
    let recent = set("energy_balance_recent_charging.json");
    let now = utc("2025-07-01T11:07:12Z");
    let inv =
        map::inverter_from_balance(&device(VendorType::Inverter, "16"), &recent, Some(&total), now);
    close(inv.production_state.total_lifetime_production, 14_000.0);
    assert!(inv.capabilities.production_state.is_capable);
    assert!(inv.capabilities.production_statistics.is_capable);
    let empty = set("energy_balance_recent_empty.json");
    assert_eq!(map::lifetime_production_kwh(&empty), None);
}

/// A measurement time after the read (a skewed clock) is capped at the read time.
#[test]
fn timestamps_never_lie_in_the_future() {
    let recent = set("energy_balance_recent_charging.json");
    let now = utc("2025-07-01T11:00:00Z"); // before 13:05 CEST = 11:05 UTC
    let bat = map::battery_from_balance(&device(VendorType::Battery, "19"), &recent, now);
    assert_eq!(bat.charge_state.last_updated, Some(now));
}

/// The normalized JSON: read-only capabilities with the intervention, units in the names'
/// places.
#[test]
fn battery_json_is_read_only() {
    let recent = set("energy_balance_recent_charging.json");
    let now = utc("2025-07-01T11:07:12Z");
    let bat = map::battery_from_balance(&device(VendorType::Battery, "19"), &recent, now);
    let json = DeviceState::Battery(Box::new(bat)).to_json();
    for mode in ["exportFocus", "importFocus", "timeOfUse", "selfReliance", "idle"] {
        assert_eq!(
            json["capabilities"][mode],
            json!({ "isCapable": false, "interventionIds": [READ_ONLY_INTERVENTION_ID] }),
            "{mode}"
        );
    }
    assert_eq!(json["vendor"], "SMA");
    assert_eq!(json["chargeState"]["chargeRate"], json!(2.5));
    assert_eq!(json["chargeState"]["lastUpdated"], "2025-07-01T11:05:00Z");
    assert_eq!(json["scopes"], json!(["battery:read:data", "battery:read:location"]));
    let interventions = map::battery_interventions();
    assert_eq!(interventions.len(), 1);
    assert_eq!(interventions[0].id, READ_ONLY_INTERVENTION_ID);
}

#[test]
fn plants_and_consent() {
    let plants: PlantList = decode(&fixture("plants.json"), "plants").unwrap();
    assert_eq!(plants.plants.len(), 1);
    assert_eq!(plants.plants[0].plant_id, "25057");
    assert_eq!(plants.plants[0].timezone.as_deref(), Some("Europe/Berlin"));
    let pending: PlantList = decode(&fixture("plants_consent_pending.json"), "plants").unwrap();
    assert!(pending.plants.is_empty(), "no consent yet: an empty list, not an error");
    let many: PlantList = decode(&fixture("plants_many.json"), "plants").unwrap();
    let ids: Vec<&str> = many.plants.iter().map(|p| p.plant_id.as_str()).collect();
    assert_eq!(ids, ["5000001", "5000002", "6c1d2a8e-0f4b-4d7e-9b3a-2e5f7c9a1b04"]);
}

#[test]
fn devices_of_a_plant() {
    let devices: PlantDevices = decode(&fixture("plant_devices.json"), "devices").unwrap();
    let plant = devices.plant.clone().unwrap();
    let found = map::discovered_devices(&plant, &devices);
    let summary: Vec<(VendorType, &str, Option<&str>, Option<&str>)> = found
        .iter()
        .map(|d| {
            (d.device_type, d.vendor_id.as_str(), d.site_id.as_deref(), d.display_name.as_deref())
        })
        .collect();
    assert_eq!(
        summary,
        [
            (VendorType::Inverter, "16", Some("5000001"), Some("Roof south")),
            (VendorType::Battery, "19", Some("5000001"), Some("Sunny Boy Storage")),
            (VendorType::Meter, "20", Some("5000001"), Some("Home Manager")),
        ],
        "sensor, data manager, socket and the inactive inverter are skipped"
    );
}

#[test]
fn tokens_and_errors() {
    let token: TokenResponse = decode(&fixture("token.json"), "token").unwrap();
    assert_eq!(token.expires_in, Some(300));
    assert!(token.refresh_token.is_some());
    let now = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    let e =
        classify_api_error(429, &HeaderMap::new(), &fixture("error_rate_limited.json"), "x", now);
    assert_eq!(e.kind(), ErrorKind::RateLimited);
    assert_eq!(e.retry_after(), Some(std::time::Duration::from_secs(37)));
    let e = classify_token_error(
        400,
        &HeaderMap::new(),
        &fixture("error_invalid_grant.json"),
        "x",
        now,
    );
    assert_eq!(e.kind(), ErrorKind::Unauthorized);
}
