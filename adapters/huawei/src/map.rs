//! Pure mapping from FusionSolar's JSON to the normalized [`Inverter`], [`Battery`] and
//! [`Meter`] (plus discovery entries and plant KPIs).
//!
//! No I/O and no clock: the caller passes the [`DeviceRef`] (for `id`, `userId` and the
//! plant), the server's `params.currentTime` and the time of the observation.
//!
//! Units and signs (normalized: kW, kWh, %, charge and import positive):
//! - Inverter `active_power` is **kW** already; it is clamped at 0 (a standby inverter reads a
//!   few watts negative at night), so production is never negative. `total_cap` is kWh.
//! - Battery `ch_discharge_power` is **W**, positive while **charging** (the reference marks
//!   this unconfirmed; it is Huawei's convention for residential batteries, devTypeId 39):
//!   `chargeRate = ch_discharge_power / 1000`. `status` follows the same sign exactly
//!   (`> 0` CHARGING, `< 0` DISCHARGING, `0` IDLE); `battery_status` 3 (faulty) is FAULT.
//! - Meter `active_power` is **W** (since SmartPVMS 24.7.0; before, grid meters reported kW —
//!   this adapter assumes a current version) and positive while **exporting**, Huawei's
//!   feed-in convention for its power sensors (the reference marks the sign unconfirmed):
//!   `power = -active_power / 1000`, so import is positive as Enode wants.
//!
//! Other choices:
//! - Reachability: `run_state` 1 (connected) when present, else the meter's `meter_status`
//!   or the battery's `battery_status` (0 is offline), else whether the live value is there.
//!   An unreachable device has its live fields `null` (counters the cloud still reports are
//!   kept).
//! - `lastUpdated` of live values is the server's `params.currentTime`, capped at the
//!   observation time (never in the future); `lastSeen` is the observation time.
//! - The KPI calls name neither the model nor the plant's name nor an installation date:
//!   `information.model` is the device type's name ("Residential inverter", "Battery",
//!   "Power sensor"), `siteName` the plant code (the constructed fallback), and
//!   `installationDate` the Unix epoch, a stable placeholder. `location` is all `null` and the
//!   inverter's `timezone` is `null`.
//! - Battery `batteryCapacity` and `dischargeLimit` are `null`: FusionSolar's real-time KPIs
//!   report neither the usable capacity nor the backup reserve.
//! - Battery modes ([`operation_mode`]): `ch_discharge_model` 4 (automatic charge/discharge,
//!   i.e. maximise self-consumption) and 7 (remote scheduling, maximum self-use) →
//!   `SELF_RELIANCE`; 2 (time-of-use price), 6 (TOU) and 9 (remote scheduling, TOU) →
//!   `TIME_OF_USE`; every other code (0 none, 1 forced charge/discharge, 3 fixed, 5/8 fully
//!   fed to grid, 10–12 AI control and third-party dispatch) → `UNKNOWN`; absent → `null`.
//! - Battery capabilities: all five modes are **not capable**, each naming
//!   [`BATTERY_CONTROL_INTERVENTION_ID`]: the Northbound battery-control interfaces are not
//!   confirmed, so the adapter sends no battery command (see the crate docs).
//! - Inverter capabilities: `productionState` and `productionStatistics` are capable
//!   (FusionSolar serves day, month and year KPIs per device and plant). Meter capabilities:
//!   `measuresConsumption` and `measuresProduction` are capable (the power sensor is
//!   bidirectional: `reverse_active_cap` is drawn, `active_cap` fed in).

use chrono::{DateTime, TimeZone, Utc};
use oemgate_core::{
    Battery, BatteryCapabilities, BatteryChargeState, BatteryChargeStatus, BatteryConfig,
    BatteryConfigOperationMode, BatteryInformation, BatteryVendor, Capability, DeviceLocation,
    DeviceRef, DiscoveredDevice, Intervention, InterventionDomain, InterventionResolution,
    Inverter, InverterCapabilities, InverterInformation, InverterProductionState, InverterVendor,
    Meter, MeterCapabilities, MeterEnergyState, MeterInformation, MeterVendor, ResolutionAccess,
    ResolutionAgent, Vendor, VendorType,
};

use crate::model::{
    BatteryKpi, DevKpiItem, DevType, DeviceKey, DeviceListEntry, InverterKpi, MeterKpi,
    StationKpiItem,
};

/// The brand on every resource.
pub const BRAND: &str = "Huawei";

/// Intervention: FusionSolar's Northbound API offers oemgate no battery control (every
/// operation mode). Stable: clients may store it.
pub const BATTERY_CONTROL_INTERVENTION_ID: &str = "8e5b7c1a-4f2d-4a9e-b3c6-0d1f2e3a4b5c";

/// The scopes oemgate reports on every Huawei inverter.
pub const INVERTER_SCOPES: &[&str] = &["inverter:read:data", "inverter:read:location"];
/// The scopes oemgate reports on every Huawei battery (read-only: no control scope).
pub const BATTERY_SCOPES: &[&str] = &["battery:read:data", "battery:read:location"];
/// The scopes oemgate reports on every Huawei meter.
pub const METER_SCOPES: &[&str] = &["meter:read:data", "meter:read:location"];

/// W → kW, with `-0.0` turned into `0.0`.
pub fn w_to_kw(w: f64) -> f64 {
    w / 1000.0 + 0.0
}

/// The time live values are stamped with: the server's `currentTime`, never after
/// `observed_at`; `observed_at` without one.
pub fn value_time(
    current_time: Option<DateTime<Utc>>,
    observed_at: DateTime<Utc>,
) -> DateTime<Utc> {
    current_time.map_or(observed_at, |t| t.min(observed_at))
}

/// The placeholder installation date (the KPI calls give none): the Unix epoch.
pub fn installation_placeholder() -> DateTime<Utc> {
    DateTime::UNIX_EPOCH
}

fn site_name(device: &DeviceRef) -> String {
    device
        .site_id
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map_or_else(|| "FusionSolar plant".to_owned(), str::to_owned)
}

fn empty_location() -> DeviceLocation {
    DeviceLocation { id: None, longitude: None, latitude: None, last_updated: None }
}

fn scopes(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

/// Reachable from `run_state` (1), else from a status code (`!= 0`), else from `fallback`.
fn reachable(run_state: Option<i64>, status: Option<i64>, fallback: bool) -> bool {
    match (run_state, status) {
        (Some(run), _) => run == 1,
        (None, Some(status)) => status != 0,
        (None, None) => fallback,
    }
}

/// The normalized inverter from its `getDevRealKpi` entry.
pub fn inverter_from_kpi(
    device: &DeviceRef,
    key: &DeviceKey,
    item: &DevKpiItem<InverterKpi>,
    current_time: Option<DateTime<Utc>>,
    observed_at: DateTime<Utc>,
) -> Inverter {
    let kpi = &item.data_item_map;
    let is_reachable = reachable(kpi.run_state, None, kpi.active_power.is_some());
    let production_rate = if is_reachable { kpi.active_power.map(|p| p.max(0.0)) } else { None };
    let lifetime = kpi.total_cap.filter(|e| *e >= 0.0);
    let any = production_rate.is_some() || lifetime.is_some();
    Inverter {
        id: device.id.clone(),
        user_id: device.user_id.clone(),
        vendor: InverterVendor::Huawei,
        last_seen: observed_at,
        is_reachable,
        production_state: InverterProductionState {
            production_rate,
            is_producing: production_rate.map(|p| p > 0.0),
            total_lifetime_production: lifetime,
            last_updated: any.then(|| value_time(current_time, observed_at)),
        },
        timezone: None,
        capabilities: InverterCapabilities {
            production_state: Capability::capable(),
            production_statistics: Capability::capable(),
        },
        scopes: scopes(INVERTER_SCOPES),
        information: InverterInformation {
            id: key.dev_id.clone(),
            sn: item.sn.clone().filter(|s| !s.trim().is_empty()),
            brand: BRAND.to_owned(),
            model: key.dev_type.model_name().to_owned(),
            site_name: site_name(device),
            installation_date: installation_placeholder(),
        },
        location: empty_location(),
        hem_system_id: None,
    }
}

/// The normalized battery from its `getDevRealKpi` entry.
pub fn battery_from_kpi(
    device: &DeviceRef,
    key: &DeviceKey,
    item: &DevKpiItem<BatteryKpi>,
    current_time: Option<DateTime<Utc>>,
    observed_at: DateTime<Utc>,
) -> Battery {
    let kpi = &item.data_item_map;
    let is_reachable = reachable(kpi.run_state, kpi.battery_status, kpi.battery_soc.is_some());
    let (level, rate) = if is_reachable {
        (kpi.battery_soc.filter(|l| (0.0..=100.0).contains(l)), kpi.ch_discharge_power.map(w_to_kw))
    } else {
        (None, None)
    };
    let status = battery_status(is_reachable, kpi.battery_status, kpi.ch_discharge_power);
    let mode = operation_mode(kpi.ch_discharge_model);
    let stamp = value_time(current_time, observed_at);
    let live = level.is_some() || rate.is_some() || status.is_some();
    Battery {
        id: device.id.clone(),
        user_id: device.user_id.clone(),
        vendor: BatteryVendor::Huawei,
        last_seen: observed_at,
        is_reachable,
        charge_state: BatteryChargeState {
            status,
            battery_capacity: None,
            battery_level: level,
            charge_rate: rate,
            discharge_limit: None,
            last_updated: live.then_some(stamp),
        },
        config: BatteryConfig { operation_mode: mode, last_updated: mode.map(|_| stamp) },
        information: BatteryInformation {
            id: key.dev_id.clone(),
            brand: BRAND.to_owned(),
            model: key.dev_type.model_name().to_owned(),
            site_name: site_name(device),
            installation_date: installation_placeholder(),
        },
        capabilities: battery_capabilities(),
        scopes: scopes(BATTERY_SCOPES),
        location: empty_location(),
        hem_system_id: None,
    }
}

/// The battery's status: `battery_status` 3 → FAULT, else the sign of `ch_discharge_power`
/// (W, positive charging); `null` when unreachable or without power.
pub fn battery_status(
    reachable: bool,
    battery_status: Option<i64>,
    ch_discharge_power_w: Option<f64>,
) -> Option<BatteryChargeStatus> {
    if battery_status == Some(3) {
        return Some(BatteryChargeStatus::Fault);
    }
    if !reachable {
        return None;
    }
    let p = ch_discharge_power_w?;
    Some(if p > 0.0 {
        BatteryChargeStatus::Charging
    } else if p < 0.0 {
        BatteryChargeStatus::Discharging
    } else {
        BatteryChargeStatus::Idle
    })
}

/// The Enode mode for `ch_discharge_model` (see the module docs); absent → `None`.
pub fn operation_mode(ch_discharge_model: Option<i64>) -> Option<BatteryConfigOperationMode> {
    Some(match ch_discharge_model? {
        4 | 7 => BatteryConfigOperationMode::SelfReliance,
        2 | 6 | 9 => BatteryConfigOperationMode::TimeOfUse,
        _ => BatteryConfigOperationMode::Unknown,
    })
}

/// No mode can be set through FusionSolar: every capability is false and names
/// [`BATTERY_CONTROL_INTERVENTION_ID`].
pub fn battery_capabilities() -> BatteryCapabilities {
    let no = || Capability {
        is_capable: false,
        intervention_ids: vec![BATTERY_CONTROL_INTERVENTION_ID.to_owned()],
    };
    BatteryCapabilities {
        export_focus: no(),
        import_focus: no(),
        time_of_use: no(),
        self_reliance: no(),
        idle: Some(no()),
    }
}

/// The interventions [`battery_capabilities`] names, for an interventions endpoint.
pub fn battery_interventions() -> Vec<Intervention> {
    let introduced_at = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).single().unwrap_or_default();
    vec![Intervention {
        id: BATTERY_CONTROL_INTERVENTION_ID.to_owned(),
        vendor: Some(Vendor::Huawei),
        vendor_type: Some(VendorType::Battery),
        brand: Some(BRAND.to_owned()),
        introduced_at,
        domain: InterventionDomain::Account,
        resolution: InterventionResolution {
            title: "Battery control is not available through Huawei FusionSolar".to_owned(),
            description: "The FusionSolar Northbound API that oemgate uses reads the battery \
                          but offers no operation-mode control oemgate can rely on. Change the \
                          working mode in the FusionSolar app (*Device > Battery > Working \
                          mode*) or ask the installer; oemgate keeps showing the mode in use."
                .to_owned(),
            access: ResolutionAccess::Remote,
            agent: ResolutionAgent::User,
            action: None,
        },
    }]
}

/// The normalized meter from its `getDevRealKpi` entry.
pub fn meter_from_kpi(
    device: &DeviceRef,
    key: &DeviceKey,
    item: &DevKpiItem<MeterKpi>,
    current_time: Option<DateTime<Utc>>,
    observed_at: DateTime<Utc>,
) -> Meter {
    let kpi = &item.data_item_map;
    let is_reachable = reachable(kpi.run_state, kpi.meter_status, kpi.active_power.is_some());
    let power = if is_reachable { kpi.active_power.map(import_kw) } else { None };
    Meter {
        id: device.id.clone(),
        user_id: device.user_id.clone(),
        vendor: MeterVendor::Huawei,
        last_seen: observed_at,
        is_reachable,
        information: MeterInformation {
            brand: BRAND.to_owned(),
            model: key.dev_type.model_name().to_owned(),
            site_name: site_name(device),
            installation_date: installation_placeholder(),
        },
        energy_state: MeterEnergyState {
            power,
            last_updated: power.map(|_| value_time(current_time, observed_at)),
        },
        location: empty_location(),
        capabilities: MeterCapabilities {
            measures_consumption: Capability::capable(),
            measures_production: Capability::capable(),
        },
        scopes: scopes(METER_SCOPES),
        hem_system_id: None,
    }
}

/// Enode's meter power (kW, import positive) from the meter's `active_power` (W, export
/// positive).
pub fn import_kw(active_power_w: f64) -> f64 {
    w_to_kw(-active_power_w)
}

/// A discovered device for a `getDevList` entry; `None` for device types oemgate does not
/// map (dongles, EMIs, C&I storage, ...) and for ids that are not numeric.
pub fn discovered_device(entry: &DeviceListEntry) -> Option<DiscoveredDevice> {
    let dev_type = DevType::from_id(entry.dev_type_id)?;
    let key = DeviceKey::new(dev_type, entry.id.clone())?;
    Some(DiscoveredDevice {
        device_type: dev_type.class(),
        vendor_id: key.to_string(),
        site_id: entry.station_code.clone().filter(|s| !s.trim().is_empty()),
        display_name: entry.dev_name.clone().filter(|n| !n.trim().is_empty()),
    })
}

/// A plant's health (`real_health_state`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlantHealth {
    /// 1: disconnected.
    Disconnected,
    /// 2: faulty.
    Faulty,
    /// 3: healthy.
    Healthy,
}

/// A plant's real-time KPIs (`getStationRealKpi`), in normalized units.
#[derive(Clone, Debug, PartialEq)]
pub struct PlantKpi {
    /// The plant code.
    pub station_code: String,
    /// Its health; `None` for an absent or unknown code.
    pub health: Option<PlantHealth>,
    /// Yield today, kWh.
    pub day_production_kwh: Option<f64>,
    /// Yield this month, kWh.
    pub month_production_kwh: Option<f64>,
    /// Lifetime yield, kWh.
    pub total_production_kwh: Option<f64>,
    /// Income today, in the plant's currency.
    pub day_income: Option<f64>,
    /// Lifetime income, in the plant's currency.
    pub total_income: Option<f64>,
    /// The server's time of the values.
    pub updated_at: DateTime<Utc>,
}

/// The KPIs of one plant (energies are kWh already).
pub fn plant_kpi(
    item: &StationKpiItem,
    current_time: Option<DateTime<Utc>>,
    observed_at: DateTime<Utc>,
) -> PlantKpi {
    let m = &item.data_item_map;
    let energy = |v: Option<f64>| v.filter(|e| *e >= 0.0);
    PlantKpi {
        station_code: item.station_code.clone(),
        health: match m.real_health_state {
            Some(1) => Some(PlantHealth::Disconnected),
            Some(2) => Some(PlantHealth::Faulty),
            Some(3) => Some(PlantHealth::Healthy),
            _ => None,
        },
        day_production_kwh: energy(m.day_power),
        month_production_kwh: energy(m.month_power),
        total_production_kwh: energy(m.total_power),
        day_income: m.day_income,
        total_income: m.total_income,
        updated_at: value_time(current_time, observed_at),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_and_units() {
        assert_eq!(w_to_kw(1500.0), 1.5);
        assert_eq!(import_kw(2000.0), -2.0, "export (positive at Huawei) is negative");
        assert_eq!(import_kw(-750.0), 0.75, "import is positive");
        assert!(import_kw(0.0).is_sign_positive());
        assert_eq!(battery_status(true, Some(2), Some(10.0)), Some(BatteryChargeStatus::Charging));
        assert_eq!(
            battery_status(true, Some(2), Some(-10.0)),
            Some(BatteryChargeStatus::Discharging)
        );
        assert_eq!(battery_status(true, Some(1), Some(0.0)), Some(BatteryChargeStatus::Idle));
        assert_eq!(battery_status(true, Some(3), Some(5.0)), Some(BatteryChargeStatus::Fault));
        assert_eq!(battery_status(false, Some(0), Some(5.0)), None);
        assert_eq!(battery_status(true, None, None), None);
    }

    #[test]
    fn modes() {
        use BatteryConfigOperationMode as M;
        assert_eq!(operation_mode(None), None);
        assert_eq!(operation_mode(Some(4)), Some(M::SelfReliance));
        assert_eq!(operation_mode(Some(7)), Some(M::SelfReliance));
        for tou in [2, 6, 9] {
            assert_eq!(operation_mode(Some(tou)), Some(M::TimeOfUse));
        }
        for other in [0, 1, 3, 5, 8, 10, 11, 12, 99, -1] {
            assert_eq!(operation_mode(Some(other)), Some(M::Unknown));
        }
    }

    #[test]
    fn every_battery_capability_names_the_intervention() {
        let caps = battery_capabilities();
        let ids: Vec<String> = battery_interventions().into_iter().map(|i| i.id).collect();
        for cap in [
            &caps.export_focus,
            &caps.import_focus,
            &caps.time_of_use,
            &caps.self_reliance,
            caps.idle.as_ref().unwrap(),
        ] {
            assert!(!cap.is_capable);
            assert_eq!(cap.intervention_ids, ids);
        }
    }
}
