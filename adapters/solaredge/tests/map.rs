//! SolarEdge's JSON (recorded shapes in `tests/fixtures`, starting with the examples of the
//! vendor reference) mapped to the normalized resources: values, units, signs, time zones.

// Test code: unwrap is fine.
#![allow(clippy::unwrap_used)]

use chrono::{DateTime, TimeZone, Utc};
use oemgate_core::{BatteryChargeStatus, DeviceRef, InverterVendor, MeterVendor, VendorType};
use oemgate_solaredge::map::{self, READ_ONLY_INTERVENTION_ID};
use oemgate_solaredge::model::{
    BulkOverviewResponse, OverviewResponse, PowerFlowResponse, ProblemBody, Site,
    SiteDetailsResponse, SitesListResponse, StorageDataResponse,
};
use serde::de::DeserializeOwned;

fn fixture<T: DeserializeOwned>(name: &str) -> T {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Half an hour after the examples' `lastUpdateTime` (10:30 in Amsterdam = 09:30 UTC).
fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 1, 15, 10, 0, 0).unwrap()
}

fn site() -> Site {
    fixture::<SiteDetailsResponse>("site_details.json").details
}

fn device(device_type: VendorType, vendor_id: &str) -> DeviceRef {
    DeviceRef {
        id: "oem-1".into(),
        user_id: "user-1".into(),
        device_type,
        vendor_id: vendor_id.into(),
        site_id: Some("1234567".into()),
    }
}

fn flow(name: &str) -> map::FlowReading {
    map::read_power_flow(&fixture::<PowerFlowResponse>(name).site_current_power_flow)
}

fn close(a: Option<f64>, b: f64) -> bool {
    a.is_some_and(|a| (a - b).abs() < 1e-9)
}

#[test]
fn reference_overview_maps_w_and_wh_to_kw_and_kwh() {
    let overview = fixture::<OverviewResponse>("overview.json").overview;
    let inv = map::inverter(&device(VendorType::Inverter, "1234567"), &site(), &overview, now());
    assert_eq!(inv.id, "oem-1");
    assert_eq!(inv.user_id, "user-1");
    assert_eq!(inv.vendor, InverterVendor::SolarEdge);
    assert!(inv.is_reachable);
    let p = &inv.production_state;
    assert!(close(p.production_rate, 6.5005), "6500.5 W is 6.5005 kW: {:?}", p.production_rate);
    assert_eq!(p.is_producing, Some(true));
    assert!(close(p.total_lifetime_production, 45_678.9), "45 678 900 Wh: {p:?}");
    // 10:30 in Amsterdam (UTC+1 in January).
    assert_eq!(p.last_updated, Some(Utc.with_ymd_and_hms(2024, 1, 15, 9, 30, 0).unwrap()));
    assert_eq!(inv.timezone.as_deref(), Some("Europe/Amsterdam"));
    assert_eq!(inv.information.id, "1234567");
    assert_eq!(inv.information.brand, "SolarEdge");
    assert_eq!(inv.information.site_name, "Zonnedak Dijkstraat");
    // The installation day starts at midnight in Amsterdam.
    assert_eq!(
        inv.information.installation_date,
        Utc.with_ymd_and_hms(2019, 2, 28, 23, 0, 0).unwrap()
    );
    assert!(inv.capabilities.production_state.is_capable);
    assert_eq!(inv.last_seen, now());
}

#[test]
fn a_stale_overview_is_unreachable_and_production_never_negative() {
    let overview = fixture::<OverviewResponse>("overview.json").overview;
    let later = Utc.with_ymd_and_hms(2024, 1, 15, 12, 0, 0).unwrap();
    let inv = map::inverter(&device(VendorType::Inverter, "1234567"), &site(), &overview, later);
    assert!(!inv.is_reachable);
    assert_eq!(inv.production_state.production_rate, None);
    assert_eq!(inv.production_state.is_producing, None);
    assert!(close(inv.production_state.total_lifetime_production, 45_678.9));

    let mut negative = overview.clone();
    negative.current_power.as_mut().unwrap().power = Some(-12.0);
    let inv = map::inverter(&device(VendorType::Inverter, "1234567"), &site(), &negative, now());
    assert_eq!(inv.production_state.production_rate, Some(0.0));
    assert_eq!(inv.production_state.is_producing, Some(false));
}

#[test]
fn an_overview_with_everything_missing_maps_to_nulls() {
    let overview = fixture::<OverviewResponse>("overview_minimal.json").overview;
    let bare: Site = serde_json::from_str(r#"{"id":42}"#).unwrap();
    let inv = map::inverter(&device(VendorType::Inverter, "42"), &bare, &overview, now());
    assert!(inv.is_reachable, "no time to call it stale");
    assert_eq!(inv.production_state.production_rate, None);
    assert_eq!(inv.production_state.is_producing, None);
    assert_eq!(inv.production_state.total_lifetime_production, None);
    assert_eq!(inv.production_state.last_updated, Some(now()));
    assert_eq!(inv.timezone, None);
    assert_eq!(inv.information.site_name, "SolarEdge site 42");
    assert_eq!(inv.information.installation_date, DateTime::UNIX_EPOCH);
}

#[test]
fn reference_power_flow_exports_and_charges() {
    let f = flow("current_power_flow.json");
    // LOAD -> Grid: the grid is a `to`, so the site exports 0.8 kW.
    let m = map::meter(&device(VendorType::Meter, "1234567"), &site(), &f, now());
    assert_eq!(m.vendor, MeterVendor::SolarEdge);
    assert!(m.is_reachable);
    assert!(close(m.energy_state.power, -0.8), "{:?}", m.energy_state.power);
    assert_eq!(m.energy_state.last_updated, Some(now()));
    // PV -> Storage: charging at 2.3 kW, 78 %.
    let s = f.storage.unwrap();
    assert!(close(s.charge_rate_kw, 2.3));
    assert!(close(s.level, 78.0));
    assert_eq!(s.status, Some(BatteryChargeStatus::Charging));
    assert!(close(f.pv.unwrap().power_kw, 6.5));
}

#[test]
fn importing_and_discharging() {
    let f = flow("current_power_flow_importing_discharging.json");
    assert!(close(f.grid.unwrap().power_kw, 1.25), "GRID -> Load is import, positive");
    let s = f.storage.unwrap();
    assert!(close(s.charge_rate_kw, -1.8), "STORAGE -> Load is discharging, negative");
    assert_eq!(s.status, Some(BatteryChargeStatus::Discharging));
    assert!(close(f.pv.unwrap().power_kw, 0.0));
}

#[test]
fn watts_and_mixed_case_names() {
    let f = flow("current_power_flow_watts.json");
    assert!(close(f.grid.unwrap().power_kw, -2.4), "2400 W exported: {:?}", f.grid);
    assert!(close(f.pv.unwrap().power_kw, 3.01));
    assert_eq!(f.storage, None);
}

#[test]
fn disabled_nodes_are_unreachable() {
    let f = flow("current_power_flow_disabled.json");
    let m = map::meter(&device(VendorType::Meter, "1234567"), &site(), &f, now());
    assert!(!m.is_reachable);
    assert_eq!(m.energy_state.power, None);
    let s = f.storage.unwrap();
    assert!(!s.reachable);
    assert_eq!((s.charge_rate_kw, s.level, s.status), (None, None, None));
}

#[test]
fn storage_status_decides_without_a_connection() {
    let f = flow("current_power_flow_storage_status_only.json");
    let s = f.storage.unwrap();
    assert!(close(s.charge_rate_kw, -0.8));
    assert_eq!(s.level, None);
    // Without a meter there is no GRID node: the meter is unreachable.
    let m = map::meter(&device(VendorType::Meter, "1234567"), &site(), &f, now());
    assert!(!m.is_reachable);
}

#[test]
fn an_empty_power_flow_has_no_nodes() {
    let f = flow("current_power_flow_empty.json");
    assert_eq!((f.grid, f.pv, f.storage), (None, None, None));
}

#[test]
fn a_single_battery_reads_the_power_flow() {
    let f = flow("current_power_flow.json");
    let data = fixture::<StorageDataResponse>("storage_data.json").storage_data;
    let b = &data.batteries[0];
    let tz = map::site_time_zone(&site());
    let live = map::battery_live(Some(&f), &data, b, tz, now());
    let bat = map::battery(&device(VendorType::Battery, "7E1234AB-01"), &site(), b, &live, now());
    assert!(bat.is_reachable);
    let c = &bat.charge_state;
    assert!(close(c.charge_rate, 2.3));
    assert!(close(c.battery_level, 78.0));
    assert_eq!(c.status, Some(BatteryChargeStatus::Charging));
    // fullPackEnergyAvailable of the newest sample, Wh -> kWh.
    assert!(close(c.battery_capacity, 9.45));
    assert_eq!(c.discharge_limit, None);
    assert_eq!(c.last_updated, Some(now()));
    assert_eq!(bat.config.operation_mode, None);
    assert_eq!(bat.information.id, "7E1234AB-01");
    assert_eq!(bat.information.model, "BAT-10K1PS0B-01");
    for cap in [
        &bat.capabilities.export_focus,
        &bat.capabilities.import_focus,
        &bat.capabilities.time_of_use,
        &bat.capabilities.self_reliance,
    ] {
        assert!(!cap.is_capable);
        assert_eq!(cap.intervention_ids, [READ_ONLY_INTERVENTION_ID]);
    }
}

#[test]
fn several_batteries_read_their_own_telemetry() {
    let f = flow("current_power_flow_importing_discharging.json");
    let data = fixture::<StorageDataResponse>("storage_data_two_batteries.json").storage_data;
    let tz = map::site_time_zone(&site());
    // The newest sample (10:30 Amsterdam = 09:30 UTC), whatever the order: -1500 W.
    let first = map::battery_live(Some(&f), &data, &data.batteries[0], tz, now());
    assert!(first.reachable);
    assert!(close(first.charge_rate_kw, -1.5));
    assert!(close(first.level, 64.0));
    assert_eq!(first.status, Some(BatteryChargeStatus::Discharging));
    assert_eq!(first.last_updated, Utc.with_ymd_and_hms(2024, 1, 15, 9, 30, 0).unwrap());
    // The second one last reported at 07:00 local: stale.
    let second = map::battery_live(Some(&f), &data, &data.batteries[1], tz, now());
    assert!(!second.reachable);
    assert_eq!((second.charge_rate_kw, second.level), (None, None));
    assert!(close(map::battery_capacity_kwh(&data.batteries[1]), 9.5));
}

#[test]
fn sites_list_and_bulk_overview() {
    let list = fixture::<SitesListResponse>("sites_list.json").sites;
    assert_eq!(list.count, Some(2));
    assert_eq!(list.site[0].id, "1234567");
    assert_eq!(map::site_name(&list.site[1]), "SolarEdge site 2345678");
    assert_eq!(map::installation_date(&list.site[1], now()), DateTime::UNIX_EPOCH);
    assert_eq!(map::site_time_zone(&list.site[1]).map(|t| t.name()), Some("Australia/Sydney"));

    let bulk = fixture::<BulkOverviewResponse>("overview_bulk.json").sites_overviews;
    assert_eq!(bulk.site_energy_list.len(), 2);
    let sydney = &bulk.site_energy_list[1];
    assert_eq!(sydney.site_id, "2345678");
    let inv = map::inverter(
        &device(VendorType::Inverter, "2345678"),
        &list.site[1],
        &sydney.site_overview,
        now(),
    );
    // 20:55 in Sydney (UTC+11 in January) is 09:55 UTC.
    assert_eq!(
        inv.production_state.last_updated,
        Some(Utc.with_ymd_and_hms(2024, 1, 15, 9, 55, 0).unwrap())
    );
    assert_eq!(inv.production_state.is_producing, Some(false));
    assert!(close(inv.production_state.total_lifetime_production, 1200.0));
}

#[test]
fn the_error_body_parses() {
    let p = fixture::<ProblemBody>("error_unauthorized.json");
    assert_eq!(p.status, Some(401));
    assert_eq!(p.title.as_deref(), Some("Unauthorized - Authentication Failed"));
}

#[test]
fn resources_serialize_as_enode_json() {
    let overview = fixture::<OverviewResponse>("overview.json").overview;
    let inv = map::inverter(&device(VendorType::Inverter, "1234567"), &site(), &overview, now());
    let json = serde_json::to_value(&inv).unwrap();
    assert_eq!(json["vendor"], "SOLAREDGE");
    assert_eq!(json["productionState"]["lastUpdated"], "2024-01-15T09:30:00Z");
    assert_eq!(json["information"]["sn"], serde_json::Value::Null);
}
