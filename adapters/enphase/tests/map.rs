//! The fixtures (Enphase's own examples from its v4 documentation, plus richer anonymized
//! answers) mapped to the normalized resources: values, units and signs.

#![allow(clippy::unwrap_used)]

use chrono::{DateTime, TimeZone, Utc};
use oemgate_core::{
    Battery, BatteryChargeStatus, BatteryConfigOperationMode, DeviceRef, ErrorKind, Inverter,
    Meter, VendorType,
};
use oemgate_enphase::client::{classify_api_error, decode};
use oemgate_enphase::map::{self, BatteryReadings};
use oemgate_enphase::model::{
    BatterySettings, BatteryTelemetry, LatestTelemetry, Summary, SystemDevices, SystemsPage,
    TokenResponse,
};
use reqwest::header::HeaderMap;
use serde::de::DeserializeOwned;

fn fixture<T: DeserializeOwned>(name: &str) -> T {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let bytes = std::fs::read(&path).unwrap();
    decode(&bytes, name).unwrap()
}

fn raw(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn device(device_type: VendorType, system: &str) -> DeviceRef {
    DeviceRef {
        id: format!("dev-{device_type}"),
        user_id: "user-1".into(),
        device_type,
        vendor_id: system.into(),
        site_id: Some(system.into()),
    }
}

/// A read time after every fixture's timestamps.
fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 1, 1, 12, 0, 0).unwrap()
}

fn ts(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn inverter(summary: &str) -> Inverter {
    map::inverter_from_summary(&device(VendorType::Inverter, "698910067"), &fixture(summary), now())
}

fn meter(latest: &str, summary: Option<&str>) -> Meter {
    let summary: Option<Summary> = summary.map(fixture);
    map::meter_from_telemetry(
        &device(VendorType::Meter, "2000001"),
        &fixture(latest),
        summary.as_ref(),
        now(),
    )
}

fn battery(summary: &str, latest: &str, telemetry: &str, settings: &str) -> Battery {
    let (summary, latest): (Summary, LatestTelemetry) = (fixture(summary), fixture(latest));
    let (telemetry, settings): (BatteryTelemetry, BatterySettings) =
        (fixture(telemetry), fixture(settings));
    let readings = BatteryReadings {
        summary: &summary,
        latest: &latest,
        telemetry: &telemetry,
        settings: &settings,
    };
    map::battery_from_readings(&device(VendorType::Battery, "2000001"), &readings, now())
}

/// The resource survives the Enode-style JSON round trip (its schema holds).
fn round_trips<T: serde::Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(value: &T) {
    let json = serde_json::to_value(value).unwrap();
    let back: T = serde_json::from_value(json).unwrap();
    assert_eq!(&back, value);
}

#[test]
fn reference_summary_maps_to_the_inverter() {
    let inv = inverter("summary.json");
    let p = &inv.production_state;
    // current_power 1930 W → 1.93 kW; energy_lifetime 6 400 000 Wh → 6 400 kWh.
    assert_eq!(p.production_rate, Some(1.93));
    assert_eq!(p.is_producing, Some(true));
    assert_eq!(p.total_lifetime_production, Some(6400.0));
    assert_eq!(p.last_updated, Some(ts("2019-05-09T11:10:31Z")));
    assert!(inv.is_reachable);
    assert_eq!(inv.id, "dev-inverter");
    assert_eq!(inv.user_id, "user-1");
    assert_eq!(inv.information.id, "698910067");
    assert_eq!(inv.information.brand, "Enphase");
    assert_eq!(inv.information.model, "IQ microinverter system (5 modules)");
    assert_eq!(inv.information.site_name, "Enphase system 698910067");
    assert_eq!(inv.information.installation_date, DateTime::UNIX_EPOCH, "no operational_at");
    assert_eq!(inv.information.sn, None);
    assert_eq!(inv.timezone, None);
    assert!(inv.capabilities.production_state.is_capable);
    let json = serde_json::to_value(&inv).unwrap();
    assert_eq!(json["vendor"], "ENPHASE");
    assert_eq!(json["productionState"]["productionRate"], 1.93);
    assert_eq!(json["location"]["latitude"], serde_json::Value::Null);
    round_trips(&inv);
}

#[test]
fn reference_battery_examples_map_with_the_live_power() {
    let b = battery(
        "summary.json",
        "latest_telemetry_charging_exporting.json",
        "telemetry_battery.json",
        "battery_settings.json",
    );
    let c = &b.charge_state;
    // "97%" is the latest state of charge; the interval's 25 % is older.
    assert_eq!(c.battery_level, Some(97.0));
    // battery_capacity_wh 3360 → 3.36 kWh.
    assert_eq!(c.battery_capacity, Some(3.36));
    // storage -3000 W (charging) → chargeRate +3 kW; not battery_charge_w (a maximum).
    assert_eq!(c.charge_rate, Some(3.0));
    assert_ne!(c.charge_rate, Some(1.28));
    assert_eq!(c.status, Some(BatteryChargeStatus::Charging));
    assert_eq!(c.discharge_limit, Some(95.0));
    assert_eq!(c.last_updated, Some(ts("2023-11-14T22:13:20Z")));
    assert_eq!(b.config.operation_mode, Some(BatteryConfigOperationMode::SelfReliance));
    assert_eq!(b.config.last_updated, Some(now()));
    assert!(b.is_reachable);
    assert_eq!(b.information.model, "IQ Battery");
    assert_eq!(b.information.id, "2000001");
    let caps = &b.capabilities;
    assert!(caps.self_reliance.is_capable && caps.time_of_use.is_capable);
    assert!(caps.import_focus.is_capable);
    assert!(!caps.export_focus.is_capable);
    assert_eq!(caps.export_focus.intervention_ids, [map::EXPORT_FOCUS_INTERVENTION_ID]);
    let idle = caps.idle.as_ref().unwrap();
    assert!(!idle.is_capable);
    assert_eq!(idle.intervention_ids, [map::IDLE_INTERVENTION_ID]);
    let json = serde_json::to_value(&b).unwrap();
    assert_eq!(json["vendor"], "ENPHASE");
    assert_eq!(json["chargeState"]["chargeRate"], 3.0);
    assert_eq!(json["config"]["operationMode"], "SELF_RELIANCE");
    round_trips(&b);
}

#[test]
fn discharging_battery_and_importing_meter() {
    let b = battery(
        "summary_night.json",
        "latest_telemetry_discharging_importing.json",
        "telemetry_battery_no_aggregate.json",
        "battery_settings_savings.json",
    );
    // storage +1500 W (discharging) → chargeRate -1.5 kW.
    assert_eq!(b.charge_state.charge_rate, Some(-1.5));
    assert_eq!(b.charge_state.status, Some(BatteryChargeStatus::Discharging));
    // No aggregate: the last interval's percent.
    assert_eq!(b.charge_state.battery_level, Some(61.0));
    // No battery fields in this summary: capacity unknown, not 0.
    assert_eq!(b.charge_state.battery_capacity, None);
    assert_eq!(b.config.operation_mode, Some(BatteryConfigOperationMode::TimeOfUse));
    assert_eq!(b.information.installation_date, ts("2022-04-15T05:20:00Z"));

    // consumption 2400 - production 0 - storage 1500 = 900 W imported → +0.9 kW.
    let m = meter("latest_telemetry_discharging_importing.json", Some("summary_night.json"));
    assert_eq!(m.energy_state.power, Some(0.9));
    assert_eq!(m.energy_state.last_updated, Some(ts("2023-11-14T21:58:20Z")), "the CT's own time");
    assert!(m.is_reachable);
    assert!(m.capabilities.measures_consumption.is_capable);
    assert!(m.capabilities.measures_production.is_capable);
    let json = serde_json::to_value(&m).unwrap();
    assert_eq!(json["vendor"], "ENPHASE");
    assert_eq!(json["energyState"]["power"], 0.9);
    round_trips(&m);

    let inv = inverter("summary_night.json");
    assert_eq!(inv.production_state.production_rate, Some(0.0));
    assert_eq!(inv.production_state.is_producing, Some(false));
    assert_eq!(inv.production_state.total_lifetime_production, Some(12345.678));
}

#[test]
fn exporting_meter_is_negative() {
    // consumption 640 - production 5230 - storage (-3000) = -1590 W: exporting.
    let m = meter("latest_telemetry_charging_exporting.json", Some("summary.json"));
    assert_eq!(m.energy_state.power, Some(-1.59));
    assert_eq!(m.energy_state.last_updated, Some(ts("2023-11-14T22:13:20Z")));
}

#[test]
fn a_system_without_consumption_ct_has_no_grid_reading() {
    let m = meter("latest_telemetry_production_only.json", None);
    assert_eq!(m.energy_state.power, None);
    assert_eq!(m.energy_state.last_updated, None);
    assert!(!m.is_reachable);
    assert!(!m.capabilities.measures_consumption.is_capable);
    assert_eq!(
        m.capabilities.measures_consumption.intervention_ids,
        [map::CONSUMPTION_METER_INTERVENTION_ID]
    );
    round_trips(&m);
}

#[test]
fn missing_and_null_fields_are_null() {
    for name in ["summary_nulls.json", "summary_minimal.json"] {
        let inv = inverter(name);
        let p = &inv.production_state;
        assert_eq!(p.production_rate, None, "{name}");
        assert_eq!(p.is_producing, None, "{name}");
        assert_eq!(p.total_lifetime_production, None, "{name}");
        assert_eq!(p.last_updated, None, "{name}");
        assert!(inv.is_reachable, "{name}: no status says otherwise");
        assert_eq!(inv.information.model, "IQ microinverter system");
        round_trips(&inv);
    }
    let b = battery(
        "summary_minimal.json",
        "latest_telemetry_production_only.json",
        "telemetry_battery_no_aggregate.json",
        "battery_settings_unknown_mode.json",
    );
    assert_eq!(b.charge_state.charge_rate, None, "no storage reading");
    assert_eq!(b.charge_state.status, None);
    assert_eq!(b.charge_state.battery_capacity, None);
    assert_eq!(b.charge_state.discharge_limit, None);
    assert_eq!(b.config.operation_mode, Some(BatteryConfigOperationMode::Unknown));
    round_trips(&b);
}

#[test]
fn a_gateway_that_stopped_reporting_is_unreachable_with_its_last_values() {
    let inv = inverter("summary_comm.json");
    assert!(!inv.is_reachable);
    assert_eq!(inv.production_state.total_lifetime_production, Some(12345.678));
    assert_eq!(inv.production_state.last_updated, Some(ts("2023-11-14T19:42:00Z")));
    let b = battery(
        "summary_comm.json",
        "latest_telemetry_charging_exporting.json",
        "telemetry_battery.json",
        "battery_settings.json",
    );
    assert!(!b.is_reachable);
    assert_eq!(b.charge_state.battery_capacity, Some(10.0));
    let m = meter("latest_telemetry_charging_exporting.json", Some("summary_comm.json"));
    assert!(!m.is_reachable);
}

#[test]
fn battery_modes_in_every_spelling() {
    let mode = |settings: &str| {
        let s: BatterySettings = fixture(settings);
        map::operation_mode(s.battery_mode.as_deref())
    };
    assert_eq!(mode("battery_settings.json"), Some(BatteryConfigOperationMode::SelfReliance));
    assert_eq!(
        mode("battery_settings_put_echo.json"),
        Some(BatteryConfigOperationMode::SelfReliance)
    );
    assert_eq!(mode("battery_settings_savings.json"), Some(BatteryConfigOperationMode::TimeOfUse));
    assert_eq!(
        mode("battery_settings_full_backup.json"),
        Some(BatteryConfigOperationMode::ImportFocus)
    );
    assert_eq!(
        mode("battery_settings_unknown_mode.json"),
        Some(BatteryConfigOperationMode::Unknown)
    );
    let full: BatterySettings = fixture("battery_settings_full_backup.json");
    assert_eq!(full.charge_from_grid.as_deref(), Some("enabled"));
    assert_eq!(full.reserve_soc, Some(100.0));
}

#[test]
fn discovery_lists_each_systems_devices() {
    let page: SystemsPage = fixture("systems_page.json");
    assert_eq!(page.total, Some(2));
    assert_eq!(page.systems.len(), 2);
    let full: SystemDevices = fixture("devices.json");
    let found = map::discovered_devices(&page.systems[0], &full);
    let types: Vec<VendorType> = found.iter().map(|d| d.device_type).collect();
    assert_eq!(types, [VendorType::Inverter, VendorType::Battery, VendorType::Meter]);
    for d in &found {
        assert_eq!(d.vendor_id, "2000001");
        assert_eq!(d.site_id.as_deref(), Some("2000001"));
        assert_eq!(d.display_name.as_deref(), Some("Villa Sol"));
    }
    // A disabled consumption CT is no meter; a blank name is no display name.
    let pv_only: SystemDevices = fixture("devices_production_only.json");
    let found = map::discovered_devices(&page.systems[1], &pv_only);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].device_type, VendorType::Inverter);
    assert_eq!(found[0].vendor_id, "2000003");
    assert_eq!(found[0].display_name, None);
}

#[test]
fn token_answer_parses() {
    let token: TokenResponse = fixture("token.json");
    assert_eq!(token.expires_in, Some(86_393));
    assert_eq!(token.enl_uid.as_deref(), Some("4100001"), "a numeric enl_uid");
    assert!(token.refresh_token.is_some());
    assert!(!format!("{token:?}").contains("eyJ"), "Debug redacts the tokens");
}

#[test]
fn error_examples_classify() {
    let at = Utc.timestamp_opt(1_623_825_683, 0).unwrap();
    let classify =
        |status, name: &str| classify_api_error(status, &HeaderMap::new(), &raw(name), "x", at);
    let e = classify(429, "error_429.json");
    assert_eq!(e.kind(), ErrorKind::RateLimited);
    assert_eq!(e.retry_after(), Some(std::time::Duration::from_secs(37)));
    assert_eq!(classify(405, "error_405.json").kind(), ErrorKind::Protocol);
    assert_eq!(classify(422, "error_422_no_encharge.json").kind(), ErrorKind::NotFound);
    assert_eq!(classify(401, "error_401_mismatch.json").kind(), ErrorKind::Unauthorized);
}

#[test]
fn timestamps_are_capped_at_the_read_time() {
    let early = Utc.timestamp_opt(1_557_400_000, 0).unwrap();
    let inv = map::inverter_from_summary(
        &device(VendorType::Inverter, "698910067"),
        &fixture("summary.json"),
        early,
    );
    assert_eq!(inv.production_state.last_updated, Some(early));
    assert_eq!(inv.last_seen, early);
}
