#![allow(clippy::unwrap_used)]
//! FusionSolar answers (the reference's example plus richer recorded shapes, anonymized)
//! mapped to the normalized resources: values, units and signs.

use std::error::Error as _;

use chrono::{DateTime, TimeZone, Utc};
use oemgate_core::{
    BatteryChargeStatus, BatteryConfigOperationMode, DeviceRef, ErrorKind, VendorType,
};
use oemgate_huawei::client::{
    classify_failure, classify_login_failure, current_time, decode_data, decode_envelope,
};
use oemgate_huawei::map::{self, PlantHealth};
use oemgate_huawei::model::{
    BatteryKpi, DevKpiItem, DeviceListEntry, InverterKpi, MeterKpi, StationKpiItem, StationPage,
};
use oemgate_huawei::{DevType, DeviceKey};
use reqwest::header::HeaderMap;
use serde::de::DeserializeOwned;
use serde_json::Value;

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The fixture's `data` and `params.currentTime`.
fn answer<T: DeserializeOwned>(name: &str) -> (T, Option<DateTime<Utc>>) {
    let env = decode_envelope(&fixture(name), name).unwrap();
    assert!(env.success, "{name}");
    let time = current_time(&env);
    (decode_data(env.data, name).unwrap(), time)
}

/// `params.currentTime` of every fixture: 2023-11-14T22:13:20Z.
fn server_time() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2023, 11, 14, 22, 13, 20).unwrap()
}

/// The read happened a little after the server stamped the answer.
fn observed() -> DateTime<Utc> {
    server_time() + chrono::Duration::seconds(2)
}

fn device(device_type: VendorType, key: &DeviceKey) -> DeviceRef {
    DeviceRef {
        id: "dev-1".into(),
        user_id: "user-1".into(),
        device_type,
        vendor_id: key.to_string(),
        site_id: Some("NE=33554875".into()),
    }
}

fn key(dev_type: DevType, id: &str) -> DeviceKey {
    DeviceKey::new(dev_type, id).unwrap()
}

fn close(actual: Option<f64>, expected: f64) {
    let actual = actual.unwrap_or_else(|| panic!("expected {expected}, found null"));
    assert!((actual - expected).abs() < 1e-9, "expected {expected}, found {actual}");
}

// ---------------------------------------------------------------- the reference's example

#[test]
fn reference_station_real_kpi() {
    let (items, time): (Vec<StationKpiItem>, _) = answer("station_real_kpi_reference.json");
    assert_eq!(time, Some(server_time()));
    assert_eq!(items.len(), 1);
    let kpi = map::plant_kpi(&items[0], time, observed());
    assert_eq!(kpi.station_code, "NE=33554875");
    assert_eq!(kpi.health, Some(PlantHealth::Healthy));
    close(kpi.day_production_kwh, 12.5);
    close(kpi.month_production_kwh, 310.2);
    close(kpi.total_production_kwh, 3560.2);
    close(kpi.day_income, 2.1);
    close(kpi.total_income, 540.0);
    assert_eq!(kpi.updated_at, server_time());
}

#[test]
fn station_real_kpi_states_and_loose_values() {
    let (items, time): (Vec<StationKpiItem>, _) = answer("station_real_kpi_states.json");
    let kpis: Vec<_> = items.iter().map(|i| map::plant_kpi(i, time, observed())).collect();
    assert_eq!(kpis.len(), 4);
    assert_eq!(kpis[0].health, Some(PlantHealth::Disconnected));
    close(kpis[0].day_production_kwh, 0.0);
    assert_eq!(kpis[1].health, Some(PlantHealth::Faulty), "\"2\" is read as 2");
    close(kpis[1].day_production_kwh, 7.25);
    close(kpis[1].total_production_kwh, 1500.0);
    assert_eq!(kpis[1].day_income, None);
    assert_eq!(kpis[2].health, None);
    assert_eq!(kpis[2].day_production_kwh, None, "N/A is not a number");
    assert_eq!(kpis[3].total_production_kwh, None, "a null dataItemMap is empty");
}

// ---------------------------------------------------------------- discovery

#[test]
fn plant_list() {
    let (page, _): (StationPage, _) = answer("stations.json");
    let codes: Vec<&str> = page.list.iter().map(|s| s.plant_code.as_str()).collect();
    assert_eq!(codes, ["NE=33554875", "NE=33554876"]);
    assert_eq!(page.page_count, Some(1));
    assert_eq!(page.list[1].capacity, Some(3.3));
}

#[test]
fn device_list_keeps_the_mapped_types() {
    let (entries, _): (Vec<DeviceListEntry>, _) = answer("dev_list.json");
    let found: Vec<_> = entries.iter().filter_map(map::discovered_device).collect();
    let summary: Vec<(VendorType, &str, Option<&str>, Option<&str>)> = found
        .iter()
        .map(|d| {
            (d.device_type, d.vendor_id.as_str(), d.site_id.as_deref(), d.display_name.as_deref())
        })
        .collect();
    assert_eq!(
        summary,
        [
            (VendorType::Inverter, "38:1000000033593104", Some("NE=33554875"), Some("Inverter-1")),
            (VendorType::Battery, "39:1000000033593105", Some("NE=33554875"), Some("Battery")),
            (VendorType::Meter, "47:1000000033593106", Some("NE=33554875"), Some("Meter")),
            (
                VendorType::Inverter,
                "1:1000000033593109",
                Some("NE=33554876"),
                Some("Cabin inverter")
            ),
            (
                VendorType::Meter,
                "17:1000000033593110",
                Some("NE=33554876"),
                Some("Cabin grid meter")
            ),
        ],
        "dongles (62), EMIs (10) and C&I storage (41) are skipped"
    );
}

// ---------------------------------------------------------------- inverters

#[test]
fn inverter_producing() {
    let (items, time): (Vec<DevKpiItem<InverterKpi>>, _) = answer("dev_real_kpi_inverter.json");
    let k = key(DevType::ResidentialInverter, "1000000033593104");
    let inv =
        map::inverter_from_kpi(&device(VendorType::Inverter, &k), &k, &items[0], time, observed());
    assert_eq!(inv.id, "dev-1");
    assert_eq!(inv.user_id, "user-1");
    assert!(inv.is_reachable);
    close(inv.production_state.production_rate, 4.253); // kW already
    assert_eq!(inv.production_state.is_producing, Some(true));
    close(inv.production_state.total_lifetime_production, 12_345.67); // kWh
    assert_eq!(inv.production_state.last_updated, Some(server_time()));
    assert_eq!(inv.last_seen, observed());
    assert_eq!(inv.information.id, "1000000033593104");
    assert_eq!(inv.information.sn.as_deref(), Some("HV2150012345"));
    assert_eq!(inv.information.brand, "Huawei");
    assert_eq!(inv.information.model, "Residential inverter");
    assert_eq!(inv.information.site_name, "NE=33554875");
    assert!(inv.capabilities.production_state.is_capable);
    assert!(inv.capabilities.production_statistics.is_capable);
    assert_eq!(inv.timezone, None);
    let json = serde_json::to_value(&inv).unwrap();
    assert_eq!(json["vendor"], "HUAWEI");
    assert_eq!(json["productionState"]["lastUpdated"], "2023-11-14T22:13:20Z");
    assert_eq!(json["location"]["latitude"], Value::Null);
}

#[test]
fn inverter_at_night_never_produces_negative_power() {
    let (items, time): (Vec<DevKpiItem<InverterKpi>>, _) =
        answer("dev_real_kpi_inverter_night.json");
    let k = key(DevType::ResidentialInverter, "1000000033593104");
    let inv =
        map::inverter_from_kpi(&device(VendorType::Inverter, &k), &k, &items[0], time, observed());
    assert!(inv.is_reachable);
    close(inv.production_state.production_rate, 0.0);
    assert_eq!(inv.production_state.is_producing, Some(false));
    close(inv.production_state.total_lifetime_production, 12_348.25);
    assert_eq!(inv.information.sn, None);
}

#[test]
fn inverter_offline_has_null_live_values() {
    let (items, time): (Vec<DevKpiItem<InverterKpi>>, _) =
        answer("dev_real_kpi_inverter_offline.json");
    let k = key(DevType::ResidentialInverter, "1000000033593104");
    let inv =
        map::inverter_from_kpi(&device(VendorType::Inverter, &k), &k, &items[0], time, observed());
    assert!(!inv.is_reachable);
    assert_eq!(inv.production_state.production_rate, None);
    assert_eq!(inv.production_state.is_producing, None);
    assert_eq!(inv.production_state.total_lifetime_production, None);
    assert_eq!(inv.production_state.last_updated, None);
}

// ---------------------------------------------------------------- batteries

fn battery(name: &str) -> oemgate_core::Battery {
    let (items, time): (Vec<DevKpiItem<BatteryKpi>>, _) = answer(name);
    let k = key(DevType::Battery, "1000000033593105");
    map::battery_from_kpi(&device(VendorType::Battery, &k), &k, &items[0], time, observed())
}

#[test]
fn battery_charging_is_positive_kw() {
    let b = battery("dev_real_kpi_battery_charging.json");
    assert!(b.is_reachable);
    close(b.charge_state.battery_level, 64.0);
    close(b.charge_state.charge_rate, 2.5); // 2500 W charging
    assert_eq!(b.charge_state.status, Some(BatteryChargeStatus::Charging));
    assert_eq!(b.charge_state.battery_capacity, None, "the KPIs give no capacity");
    assert_eq!(b.charge_state.discharge_limit, None, "nor the reserve");
    assert_eq!(b.charge_state.last_updated, Some(server_time()));
    assert_eq!(b.config.operation_mode, Some(BatteryConfigOperationMode::SelfReliance));
    assert_eq!(b.config.last_updated, Some(server_time()));
    assert_eq!(b.information.id, "1000000033593105");
    assert_eq!(b.information.model, "Battery");
    let json = serde_json::to_value(&b).unwrap();
    assert_eq!(json["vendor"], "HUAWEI");
    for mode in ["exportFocus", "importFocus", "timeOfUse", "selfReliance", "idle"] {
        assert_eq!(json["capabilities"][mode]["isCapable"], false, "{mode}");
        assert_eq!(
            json["capabilities"][mode]["interventionIds"][0],
            map::BATTERY_CONTROL_INTERVENTION_ID,
            "{mode}"
        );
    }
}

#[test]
fn battery_discharging_is_negative_kw() {
    let b = battery("dev_real_kpi_battery_discharging.json");
    close(b.charge_state.battery_level, 37.5);
    close(b.charge_state.charge_rate, -1.83); // "-1830" W, discharging
    assert_eq!(b.charge_state.status, Some(BatteryChargeStatus::Discharging));
    assert_eq!(b.config.operation_mode, Some(BatteryConfigOperationMode::TimeOfUse));
}

#[test]
fn battery_idle_and_unmapped_mode() {
    let b = battery("dev_real_kpi_battery_idle.json");
    close(b.charge_state.battery_level, 100.0);
    close(b.charge_state.charge_rate, 0.0);
    assert!(b.charge_state.charge_rate.unwrap().is_sign_positive());
    assert_eq!(b.charge_state.status, Some(BatteryChargeStatus::Idle));
    assert_eq!(
        b.config.operation_mode,
        Some(BatteryConfigOperationMode::Unknown),
        "5: fed to grid"
    );
}

#[test]
fn battery_offline() {
    let b = battery("dev_real_kpi_battery_offline.json");
    assert!(!b.is_reachable);
    assert_eq!(b.charge_state.battery_level, None);
    assert_eq!(b.charge_state.charge_rate, None);
    assert_eq!(b.charge_state.status, None);
    assert_eq!(b.charge_state.last_updated, None);
    assert_eq!(b.config.operation_mode, None);
    assert_eq!(b.config.last_updated, None);
}

// ---------------------------------------------------------------- meters

fn meter(name: &str, dev_type: DevType) -> oemgate_core::Meter {
    let (items, time): (Vec<DevKpiItem<MeterKpi>>, _) = answer(name);
    let k = key(dev_type, "1000000033593106");
    map::meter_from_kpi(&device(VendorType::Meter, &k), &k, &items[0], time, observed())
}

#[test]
fn meter_export_is_negative_kw() {
    let m = meter("dev_real_kpi_meter_export.json", DevType::PowerSensor);
    assert!(m.is_reachable, "meter_status 1 without run_state");
    close(m.energy_state.power, -3.12); // 3120 W fed in
    assert_eq!(m.energy_state.last_updated, Some(server_time()));
    assert!(m.capabilities.measures_consumption.is_capable);
    assert!(m.capabilities.measures_production.is_capable);
    assert_eq!(m.information.model, "Power sensor");
    assert_eq!(serde_json::to_value(&m).unwrap()["vendor"], "HUAWEI");
}

#[test]
fn meter_import_is_positive_kw() {
    let m = meter("dev_real_kpi_meter_import.json", DevType::GridMeter);
    close(m.energy_state.power, 0.8455); // "-845.5" W drawn from the grid
    assert_eq!(m.information.model, "Grid meter");
}

#[test]
fn meter_offline_and_sparse() {
    let m = meter("dev_real_kpi_meter_offline.json", DevType::PowerSensor);
    assert!(!m.is_reachable);
    assert_eq!(m.energy_state.power, None);
    assert_eq!(m.energy_state.last_updated, None);
    // No params (no currentTime) and an empty map: nothing known, nothing invented.
    let m = meter("dev_real_kpi_meter_sparse.json", DevType::PowerSensor);
    assert!(!m.is_reachable);
    assert_eq!(m.energy_state.power, None);
}

#[test]
fn value_times_never_lie_in_the_future() {
    let (items, time): (Vec<DevKpiItem<MeterKpi>>, _) = answer("dev_real_kpi_meter_export.json");
    let k = key(DevType::PowerSensor, "1000000033593106");
    let early = server_time() - chrono::Duration::seconds(30);
    let m = map::meter_from_kpi(&device(VendorType::Meter, &k), &k, &items[0], time, early);
    assert_eq!(m.energy_state.last_updated, Some(early));
    assert_eq!(m.last_seen, early);
}

// ---------------------------------------------------------------- errors

#[test]
fn error_envelopes() {
    let classify = |name: &str| {
        let env = decode_envelope(&fixture(name), name).unwrap();
        assert!(!env.success);
        classify_failure(&env, &HeaderMap::new(), observed(), "getDevRealKpi")
    };
    let e = classify("error_session_expired.json");
    assert_eq!(e.kind(), ErrorKind::AuthExpired);
    let e = classify("error_access_frequency.json");
    assert_eq!(e.kind(), ErrorKind::RateLimited);
    assert_eq!(e.retry_after(), None, "FusionSolar sends no wait");
    assert!(e.source().unwrap().to_string().contains("ACCESS_FREQUENCY_IS_TOO_HIGH"));
    assert_eq!(classify("error_no_permission.json").kind(), ErrorKind::Unauthorized);

    let env = decode_envelope(&fixture("error_login_failed.json"), "login").unwrap();
    let e = classify_login_failure(&env, &HeaderMap::new(), observed(), "login");
    assert_eq!(e.kind(), ErrorKind::Unauthorized);
    assert!(!e.to_string().contains("user_or_value"), "the message stays generic: {e}");

    let e = decode_envelope(&fixture("error_framework_exception.json"), "getDevList").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Protocol);

    let env = decode_envelope(&fixture("login_success.json"), "login").unwrap();
    assert!(env.success);
    assert_eq!(env.data, Value::Null);
}

#[test]
fn truncated_fixtures_are_protocol_errors() {
    for name in ["dev_real_kpi_inverter.json", "stations.json", "dev_list.json"] {
        let body = fixture(name);
        let e = decode_envelope(&body[..body.len() / 2], name).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Protocol);
        assert!(e.source().unwrap().is::<serde_json::Error>());
    }
}

// ---------------------------------------------------------------- properties

mod properties {
    use super::*;
    use proptest::prelude::*;

    fn scalar() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<f64>().prop_map(|f| serde_json::json!(f)),
            any::<i64>().prop_map(|i| serde_json::json!(i)),
            any::<bool>().prop_map(Value::Bool),
            "[-0-9.eNA/ ]{0,8}".prop_map(Value::String),
            Just(serde_json::json!({"nested": [1, 2]})),
        ]
    }

    fn field() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("battery_soc".to_owned()),
            Just("ch_discharge_power".to_owned()),
            Just("battery_status".to_owned()),
            Just("ch_discharge_model".to_owned()),
            Just("run_state".to_owned()),
            Just("active_power".to_owned()),
            Just("meter_status".to_owned()),
            Just("total_cap".to_owned()),
            "[a-z_]{1,12}",
        ]
    }

    proptest! {
        #[test]
        fn battery_status_follows_the_charge_rate_sign(p in -20_000.0f64..20_000.0) {
            let rate = map::w_to_kw(p);
            match map::battery_status(true, Some(2), Some(p)) {
                Some(BatteryChargeStatus::Charging) => prop_assert!(rate > 0.0),
                Some(BatteryChargeStatus::Discharging) => prop_assert!(rate < 0.0),
                Some(BatteryChargeStatus::Idle) => prop_assert_eq!(rate, 0.0),
                other => prop_assert!(false, "{other:?}"),
            }
        }

        #[test]
        fn meter_power_is_import_positive(feed_in_w in -50_000.0f64..50_000.0) {
            prop_assert!((map::import_kw(feed_in_w) + feed_in_w / 1000.0).abs() < 1e-12);
        }

        /// Whatever FusionSolar puts in a KPI map, the entry decodes and maps without panic,
        /// and nothing negative is reported as production.
        #[test]
        fn any_kpi_map_decodes_and_maps(
            values in proptest::collection::btree_map(field(), scalar(), 0..10)
        ) {
            let item = serde_json::json!({ "devId": 7, "dataItemMap": values });
            let battery: DevKpiItem<BatteryKpi> = serde_json::from_value(item.clone()).unwrap();
            let meter: DevKpiItem<MeterKpi> = serde_json::from_value(item.clone()).unwrap();
            let inverter: DevKpiItem<InverterKpi> = serde_json::from_value(item).unwrap();
            let k = key(DevType::Battery, "7");
            let b = map::battery_from_kpi(&device(VendorType::Battery, &k), &k, &battery, None, observed());
            if let Some(level) = b.charge_state.battery_level {
                prop_assert!((0.0..=100.0).contains(&level));
            }
            let k = key(DevType::PowerSensor, "7");
            map::meter_from_kpi(&device(VendorType::Meter, &k), &k, &meter, None, observed());
            let k = key(DevType::ResidentialInverter, "7");
            let i = map::inverter_from_kpi(&device(VendorType::Inverter, &k), &k, &inverter, None, observed());
            if let Some(rate) = i.production_state.production_rate {
                prop_assert!(rate >= 0.0 && rate.is_finite());
            }
        }
    }
}
