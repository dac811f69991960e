//! Pure functions from SMA's JSON to the normalized resources. No I/O, no clock: the read
//! time comes in as `observed_at`.
//!
//! # Units and signs
//!
//! `EnergyBalance/Recent` carries powers in **W** (the average of the latest five-minute
//! interval); `EnergyBalance/Total` carries energies in **Wh**. Both are converted here:
//!
//! - inverter `productionRate` = `pvGeneration` / 1000 kW, never negative;
//!   `totalLifetimeProduction` = the sum of `pvGeneration` over the `Total` set / 1000 kWh.
//! - battery `chargeRate` = (`batteryCharging` - `batteryDischarging`) / 1000 kW: positive
//!   while charging (SMA's own "net battery power" is the opposite sign); `status` is
//!   `CHARGING`/`DISCHARGING` beyond [`IDLE_DEADBAND_W`], else `IDLE`; `batteryLevel` =
//!   `batteryStateOfCharge` (%).
//! - meter `power` = (`gridConsumption` - `gridFeedIn`) / 1000 kW: positive while importing.
//!
//! A key SMA omits (a PV-only plant has no `battery*` keys) or sends as `null` stays `null`;
//! a device class without any of its keys in the latest interval is `isReachable: false`.
//! SMA does not report a battery's capacity, reserve or operation mode, nor positions: those
//! are `null`.
//!
//! # Time
//!
//! SMA stamps an interval with its start in the plant's local time without an offset
//! (`"2020-03-23T12:40:00"`) and names the plant's IANA zone (`"Europe/Berlin"`).
//! [`parse_time`] converts that to UTC (an ambiguous hour at the end of daylight saving time
//! takes the earlier instant; a time with an explicit offset is taken as it is). `lastUpdated`
//! is that instant, capped at the read time; the read time when SMA gives none or it cannot be
//! placed (unknown zone, a time in the spring-forward gap).
//!
//! # Capabilities
//!
//! The Monitoring API is read-only: every battery operation mode is `isCapable: false` with
//! the intervention [`READ_ONLY_INTERVENTION_ID`] (described by [`battery_interventions`]).
//! Inverters report `productionState` and `productionStatistics` capable (SMA has history
//! sets); meters measure both directions.

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use oemgate_core::{
    Battery, BatteryCapabilities, BatteryChargeState, BatteryChargeStatus, BatteryConfig,
    BatteryInformation, BatteryVendor, Capability, DeviceLocation, DeviceRef, DiscoveredDevice,
    Intervention, InterventionDomain, InterventionResolution, Inverter, InverterCapabilities,
    InverterInformation, InverterProductionState, InverterVendor, Meter, MeterCapabilities,
    MeterEnergyState, MeterInformation, MeterVendor, ResolutionAccess, ResolutionAgent, Vendor,
    VendorType,
};

use crate::model::{BalancePoint, Device, MeasurementSet, Plant, PlantDevices};

/// The brand on every resource.
pub const BRAND: &str = "SMA";

/// Intervention: SMA's Monitoring API is read-only, no operation mode can be set through
/// it. Stable: clients may store it.
pub const READ_ONLY_INTERVENTION_ID: &str = "0b6f3c1e-5a7d-4e29-b8c4-2d91f6a0e357";

/// Below this net battery power (W) a battery counts as idle: five-minute averages of an
/// idle battery show a few watts of standby either way.
pub const IDLE_DEADBAND_W: f64 = 10.0;

/// The scopes oemgate reports on every SMA battery (no control scope: read-only).
pub const BATTERY_SCOPES: &[&str] = &["battery:read:data", "battery:read:location"];
/// The scopes oemgate reports on every SMA meter.
pub const METER_SCOPES: &[&str] = &["meter:read:data", "meter:read:location"];
/// The scopes oemgate reports on every SMA inverter.
pub const INVERTER_SCOPES: &[&str] = &["inverter:read:data", "inverter:read:location"];

/// The model name of an inverter: a balance read does not carry the product name.
pub const INVERTER_MODEL: &str = "Solar Inverter";
/// The model name of a battery (SMA's device class name).
pub const BATTERY_MODEL: &str = "Battery Inverter";
/// The model name of a meter (SMA's device class name).
pub const METER_MODEL: &str = "Energy Meter";

/// The device class oemgate serves a device of a plant as, or `None` for the ones it skips:
/// sensors, data managers, remote sockets, inactive (removed) devices.
///
/// | SMA `type` | product | class |
/// |---|---|---|
/// | `Solar Inverters` | any | inverter |
/// | `Battery Inverter` | any | battery |
/// | `Monitoring and control` | containing `Meter` or `Home Manager` | meter |
pub fn device_class(device: &Device) -> Option<VendorType> {
    if device.is_active == Some(false) {
        return None;
    }
    let kind = device.device_type.as_deref()?.trim().to_ascii_lowercase();
    let product = device.product.as_deref().unwrap_or("").to_ascii_lowercase();
    match kind.as_str() {
        "solar inverters" | "solar inverter" | "pv inverter" | "pv inverters" => {
            Some(VendorType::Inverter)
        }
        "battery inverter" | "battery inverters" | "battery" => Some(VendorType::Battery),
        "monitoring and control" | "energy meter" | "energy meters"
            if product.contains("meter") || product.contains("home manager") =>
        {
            Some(VendorType::Meter)
        }
        _ => None,
    }
}

/// The devices of one plant oemgate serves, with the plant as their site.
pub fn discovered_devices(plant: &Plant, devices: &PlantDevices) -> Vec<DiscoveredDevice> {
    devices
        .devices
        .iter()
        .filter_map(|d| {
            let device_type = device_class(d)?;
            Some(DiscoveredDevice {
                device_type,
                vendor_id: d.device_id.clone(),
                site_id: Some(plant.plant_id.clone()),
                display_name: d
                    .name
                    .as_deref()
                    .or(d.product.as_deref())
                    .map(str::trim)
                    .filter(|n| !n.is_empty())
                    .map(str::to_owned),
            })
        })
        .collect()
}

/// An SMA time as UTC: RFC 3339 with an offset as it is; a local time without offset
/// (`2020-03-23T12:40:00`, seconds optional) in the plant's IANA `timezone`. `None` when the
/// time does not parse, the zone is unknown, or the local time does not exist (spring-forward
/// gap). An ambiguous local time (the repeated hour in autumn) takes the earlier instant.
pub fn parse_time(time: &str, timezone: Option<&str>) -> Option<DateTime<Utc>> {
    let s = time.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    let naive = NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
        .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M"))
        .ok()?;
    let tz: Tz = timezone?.trim().parse().ok()?;
    tz.from_local_datetime(&naive).earliest().map(|t| t.with_timezone(&Utc))
}

/// W -> kW; `-0.0` becomes `0.0`.
pub fn w_to_kw(w: f64) -> f64 {
    w / 1000.0 + 0.0
}

/// Wh -> kWh.
pub fn wh_to_kwh(wh: f64) -> f64 {
    wh / 1000.0 + 0.0
}

fn finite(v: Option<f64>) -> Option<f64> {
    v.filter(|v| v.is_finite())
}

/// A power SMA reports as a magnitude (never negative in SMA's sets); negatives are clamped.
fn magnitude(v: Option<f64>) -> Option<f64> {
    finite(v).map(|v| v.max(0.0))
}

/// The latest interval of a set (SMA lists them oldest first).
pub fn latest(set: &MeasurementSet) -> Option<&BalancePoint> {
    set.set.last()
}

/// When the latest interval was measured, as UTC, capped at `observed_at`; `observed_at`
/// when SMA gives no time or it cannot be placed.
pub fn interval_time(set: &MeasurementSet, observed_at: DateTime<Utc>) -> DateTime<Utc> {
    let timezone = set.plant.as_ref().and_then(|p| p.timezone.as_deref());
    latest(set)
        .and_then(|p| p.time.as_deref())
        .and_then(|t| parse_time(t, timezone))
        .map_or(observed_at, |t| t.min(observed_at))
}

/// Net battery power in W, positive while charging: `batteryCharging - batteryDischarging`.
/// `None` when neither key is there.
pub fn battery_net_w(point: &BalancePoint) -> Option<f64> {
    let charging = magnitude(point.battery_charging);
    let discharging = magnitude(point.battery_discharging);
    if charging.is_none() && discharging.is_none() {
        return None;
    }
    Some(charging.unwrap_or(0.0) - discharging.unwrap_or(0.0))
}

/// Net grid power in W, positive while importing: `gridConsumption - gridFeedIn`. `None` when
/// neither key is there.
pub fn grid_net_w(point: &BalancePoint) -> Option<f64> {
    let import = magnitude(point.grid_consumption);
    let export = magnitude(point.grid_feed_in);
    if import.is_none() && export.is_none() {
        return None;
    }
    Some(import.unwrap_or(0.0) - export.unwrap_or(0.0))
}

/// The battery's status from its net power (W, positive while charging).
pub fn battery_status(net_w: f64) -> BatteryChargeStatus {
    if net_w > IDLE_DEADBAND_W {
        BatteryChargeStatus::Charging
    } else if net_w < -IDLE_DEADBAND_W {
        BatteryChargeStatus::Discharging
    } else {
        BatteryChargeStatus::Idle
    }
}

/// Lifetime PV production in kWh from an `EnergyBalance/Total` set (Wh per interval, summed:
/// SMA splits the total by year). `None` when no interval has `pvGeneration`.
pub fn lifetime_production_kwh(total: &MeasurementSet) -> Option<f64> {
    let values: Vec<f64> = total.set.iter().filter_map(|p| magnitude(p.pv_generation)).collect();
    (!values.is_empty()).then(|| wh_to_kwh(values.iter().sum()))
}

fn site_name(plant: Option<&Plant>, device: &DeviceRef) -> String {
    plant
        .and_then(|p| p.name.as_deref())
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(str::to_owned)
        .unwrap_or_else(|| match &device.site_id {
            Some(site) => format!("SMA plant {site}"),
            None => "SMA plant".to_owned(),
        })
}

fn no_location() -> DeviceLocation {
    DeviceLocation { id: None, longitude: None, latitude: None, last_updated: None }
}

fn scopes(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

/// What oemgate can do with an SMA battery through the Monitoring API: nothing. Every mode
/// is incapable with [`READ_ONLY_INTERVENTION_ID`].
pub fn battery_capabilities() -> BatteryCapabilities {
    let read_only = || Capability {
        is_capable: false,
        intervention_ids: vec![READ_ONLY_INTERVENTION_ID.into()],
    };
    BatteryCapabilities {
        export_focus: read_only(),
        import_focus: read_only(),
        time_of_use: read_only(),
        self_reliance: read_only(),
        idle: Some(read_only()),
    }
}

/// The intervention [`battery_capabilities`] names, for an interventions endpoint.
pub fn battery_interventions() -> Vec<Intervention> {
    let introduced_at = Utc.with_ymd_and_hms(2025, 7, 1, 0, 0, 0).single().unwrap_or_default();
    vec![Intervention {
        id: READ_ONLY_INTERVENTION_ID.to_owned(),
        vendor: Some(Vendor::Sma),
        vendor_type: Some(VendorType::Battery),
        brand: Some(BRAND.to_owned()),
        introduced_at,
        domain: InterventionDomain::Account,
        resolution: InterventionResolution {
            title: "Battery control is not available for SMA".to_owned(),
            description: "SMA's cloud API for Sunny Portal and ennexOS is read-only: it \
                          reports the battery but offers no way to change its operation mode. \
                          Change the battery's settings in Sunny Portal or the SMA Energy app, \
                          or ask your installer."
                .to_owned(),
            access: ResolutionAccess::Remote,
            agent: ResolutionAgent::User,
            action: None,
        },
    }]
}

/// The normalized battery of `device` from its plant's `EnergyBalance/Recent` set.
pub fn battery_from_balance(
    device: &DeviceRef,
    recent: &MeasurementSet,
    observed_at: DateTime<Utc>,
) -> Battery {
    let point = latest(recent).cloned().unwrap_or_default();
    let net_w = battery_net_w(&point);
    let level = finite(point.battery_state_of_charge).filter(|p| (0.0..=100.0).contains(p));
    let reachable = net_w.is_some() || level.is_some();
    let updated = reachable.then(|| interval_time(recent, observed_at));
    Battery {
        id: device.id.clone(),
        user_id: device.user_id.clone(),
        vendor: BatteryVendor::Sma,
        last_seen: observed_at,
        is_reachable: reachable,
        charge_state: BatteryChargeState {
            status: net_w.map(battery_status),
            battery_capacity: None,
            battery_level: level,
            charge_rate: net_w.map(w_to_kw),
            discharge_limit: None,
            last_updated: updated,
        },
        config: BatteryConfig { operation_mode: None, last_updated: None },
        information: BatteryInformation {
            id: device.vendor_id.clone(),
            brand: BRAND.to_owned(),
            model: BATTERY_MODEL.to_owned(),
            site_name: site_name(recent.plant.as_ref(), device),
            installation_date: DateTime::UNIX_EPOCH,
        },
        capabilities: battery_capabilities(),
        scopes: scopes(BATTERY_SCOPES),
        location: no_location(),
        hem_system_id: None,
    }
}

/// The normalized meter of `device` (the plant's grid connection point) from its plant's
/// `EnergyBalance/Recent` set.
pub fn meter_from_balance(
    device: &DeviceRef,
    recent: &MeasurementSet,
    observed_at: DateTime<Utc>,
) -> Meter {
    let point = latest(recent).cloned().unwrap_or_default();
    let net_w = grid_net_w(&point);
    Meter {
        id: device.id.clone(),
        user_id: device.user_id.clone(),
        vendor: MeterVendor::Sma,
        last_seen: observed_at,
        is_reachable: net_w.is_some(),
        information: MeterInformation {
            brand: BRAND.to_owned(),
            model: METER_MODEL.to_owned(),
            site_name: site_name(recent.plant.as_ref(), device),
            installation_date: DateTime::UNIX_EPOCH,
        },
        energy_state: MeterEnergyState {
            power: net_w.map(w_to_kw),
            last_updated: net_w.map(|_| interval_time(recent, observed_at)),
        },
        location: no_location(),
        capabilities: MeterCapabilities {
            measures_consumption: Capability::capable(),
            measures_production: Capability::capable(),
        },
        scopes: scopes(METER_SCOPES),
        hem_system_id: None,
    }
}

/// The normalized inverter of `device` from its plant's `EnergyBalance/Recent` set and, when
/// read, its `EnergyBalance/Total` set (lifetime production).
pub fn inverter_from_balance(
    device: &DeviceRef,
    recent: &MeasurementSet,
    total: Option<&MeasurementSet>,
    observed_at: DateTime<Utc>,
) -> Inverter {
    let point = latest(recent).cloned().unwrap_or_default();
    let pv_w = magnitude(point.pv_generation);
    let timezone = recent
        .plant
        .as_ref()
        .and_then(|p| p.timezone.as_deref())
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned);
    Inverter {
        id: device.id.clone(),
        user_id: device.user_id.clone(),
        vendor: InverterVendor::Sma,
        last_seen: observed_at,
        is_reachable: pv_w.is_some(),
        production_state: InverterProductionState {
            production_rate: pv_w.map(w_to_kw),
            is_producing: pv_w.map(|w| w > 0.0),
            total_lifetime_production: total.and_then(lifetime_production_kwh),
            last_updated: pv_w.map(|_| interval_time(recent, observed_at)),
        },
        timezone,
        capabilities: InverterCapabilities {
            production_state: Capability::capable(),
            production_statistics: Capability::capable(),
        },
        scopes: scopes(INVERTER_SCOPES),
        information: InverterInformation {
            id: device.vendor_id.clone(),
            sn: None,
            brand: BRAND.to_owned(),
            model: INVERTER_MODEL.to_owned(),
            site_name: site_name(recent.plant.as_ref(), device),
            installation_date: DateTime::UNIX_EPOCH,
        },
        location: no_location(),
        hem_system_id: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_times_become_utc() {
        let berlin = Some("Europe/Berlin");
        let t = |s: &str, tz| parse_time(s, tz).map(|t| t.to_rfc3339());
        assert_eq!(t("2020-03-23T12:40:00", berlin).as_deref(), Some("2020-03-23T11:40:00+00:00"));
        assert_eq!(t("2020-07-01T12:00:00", berlin).as_deref(), Some("2020-07-01T10:00:00+00:00"));
        assert_eq!(t("2020-07-01T12:00", berlin).as_deref(), Some("2020-07-01T10:00:00+00:00"));
        assert_eq!(t("2020-07-01T12:00:00Z", None).as_deref(), Some("2020-07-01T12:00:00+00:00"));
        assert_eq!(
            t("2020-07-01T12:00:00+02:00", None).as_deref(),
            Some("2020-07-01T10:00:00+00:00")
        );
        assert_eq!(t("2020-07-01T12:00:00", None), None, "no zone: cannot be placed");
        assert_eq!(t("2020-07-01T12:00:00", Some("Mars/Olympus")), None);
        assert_eq!(t("2020-03-29T02:30:00", berlin), None, "spring-forward gap");
        assert_eq!(
            t("2020-10-25T02:30:00", berlin).as_deref(),
            Some("2020-10-25T00:30:00+00:00"),
            "the repeated hour takes the earlier instant"
        );
        assert_eq!(t("yesterday", berlin), None);
    }

    #[test]
    fn device_classes() {
        let dev = |t: &str, p: &str, active: Option<bool>| Device {
            device_id: "1".into(),
            name: None,
            device_type: Some(t.into()),
            product: Some(p.into()),
            product_id: None,
            serial: None,
            generator_power: None,
            is_active: active,
        };
        assert_eq!(
            device_class(&dev("Solar Inverters", "SB5.0", Some(true))),
            Some(VendorType::Inverter)
        );
        assert_eq!(
            device_class(&dev("Battery Inverter", "SBS6.0-10", None)),
            Some(VendorType::Battery)
        );
        assert_eq!(
            device_class(&dev("Monitoring and control", "Sunny Home Manager 2.0", None)),
            Some(VendorType::Meter)
        );
        assert_eq!(
            device_class(&dev("Monitoring and control", "Energy Meter", None)),
            Some(VendorType::Meter)
        );
        assert_eq!(device_class(&dev("Monitoring and control", "EDMM-10", None)), None);
        assert_eq!(device_class(&dev("Sensor technology", "Satellite Sensor", None)), None);
        assert_eq!(device_class(&dev("Solar Inverters", "SB5.0", Some(false))), None);
    }

    #[test]
    fn signs_and_deadband() {
        let p = |c: Option<f64>, d: Option<f64>| BalancePoint {
            battery_charging: c,
            battery_discharging: d,
            ..BalancePoint::default()
        };
        assert_eq!(battery_net_w(&p(Some(1500.0), Some(0.0))), Some(1500.0));
        assert_eq!(battery_net_w(&p(Some(0.0), Some(800.0))), Some(-800.0));
        assert_eq!(battery_net_w(&p(None, Some(800.0))), Some(-800.0));
        assert_eq!(battery_net_w(&p(None, None)), None);
        assert_eq!(battery_net_w(&p(Some(f64::NAN), None)), None);
        assert_eq!(battery_status(1500.0), BatteryChargeStatus::Charging);
        assert_eq!(battery_status(-800.0), BatteryChargeStatus::Discharging);
        assert_eq!(battery_status(4.0), BatteryChargeStatus::Idle);
        let g = BalancePoint {
            grid_feed_in: Some(2000.0),
            grid_consumption: Some(0.0),
            ..Default::default()
        };
        assert_eq!(grid_net_w(&g), Some(-2000.0));
        assert_eq!(w_to_kw(-0.0).to_bits(), 0.0f64.to_bits());
    }
}
