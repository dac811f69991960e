//! Pure mapping from Enphase's JSON to the normalized [`Inverter`], [`Battery`] and
//! [`Meter`], and from the systems list to discovered devices.
//!
//! No I/O and no clock: the caller passes the [`DeviceRef`] (for `id` and `userId`) and the
//! time of the observation.
//!
//! # Devices and ids
//!
//! Enphase's API is organised by *system* (one IQ Gateway with its microinverters, meters and
//! IQ Batteries), and every read and setting is per system. oemgate exposes per system at
//! most one inverter (the microinverter array), one battery (all IQ Batteries together, as
//! Enphase reports them) and one meter (the consumption CT). All three use the numeric
//! `system_id` as vendor id and as site id ([`discovered_devices`]).
//!
//! # Units and signs
//!
//! - Enphase reports power in W and energy in Wh; oemgate reports kW and kWh ([`w_to_kw`],
//!   [`wh_to_kwh`]), rounded to the watt (Enphase reports whole watts).
//! - Inverter `productionRate` is the summary's `current_power`, never negative.
//! - Battery `chargeRate`: `latest_telemetry`'s `storage` meter is positive while the
//!   batteries **discharge**; Enode's `chargeRate` is positive while **charging**, so
//!   `chargeRate = -storage / 1000` ([`charge_rate_kw`]). The summary's `battery_charge_w` and
//!   `battery_discharge_w` are maximum rates, not live values, and are not used.
//! - Meter `power` (positive = import): `latest_telemetry` gives the household's total
//!   `consumption`, the `production` and the `storage` power, not the grid. The gateway
//!   computes total consumption as net (grid) + production + battery discharge, so
//!   `grid = consumption - production - storage` ([`grid_power_w`]); a missing `production`
//!   or `storage` reading counts as 0 (the gateway did not add it either).
//! - Battery level: `last_reported_aggregate_soc` is a string (`"97%"`, [`parse_percent`]);
//!   the last interval's `soc.percent` is the fallback.
//! - Timestamps are epoch seconds, mapped to UTC and never later than the read time.
//!
//! # Operation modes
//!
//! | Enphase `battery_mode` | Enode mode |
//! |---|---|
//! | `Self-consumption` (GET: `Self - Consumption`) | `SELF_RELIANCE` |
//! | `Savings Mode` | `TIME_OF_USE` (charges and discharges by the user's tariff) |
//! | `Full Backup` | `IMPORT_FOCUS` (keeps the batteries full: from solar, and from the grid when the user enabled *charge from grid*; Enode: "leveraged energy sources depend on the configuration of the battery") |
//! | anything else | `UNKNOWN` |
//!
//! `EXPORT_FOCUS` and `IDLE` do not exist at Enphase: their capabilities are not capable and
//! name [`EXPORT_FOCUS_INTERVENTION_ID`] and [`IDLE_INTERVENTION_ID`].
//!
//! # Reachability
//!
//! The summary's `status` is the vendor's own health flag: `comm` (the gateway stopped
//! reporting) makes every device unreachable, `micro` the inverter, `battery` the battery,
//! `meter`/`meter_issue` the meter, `retired` all of them. The values of an unreachable device
//! are still the vendor's last report, with its (old) timestamp in `lastUpdated`.
//!
//! # What Enphase does not give
//!
//! The v4 API has no coordinates (addresses only): `location` is all `null`. The summary has
//! no time zone and no system name: `timezone` is `null` and `siteName` the constructed
//! `Enphase system <id>`. `installationDate` is `operational_at`, or the Unix epoch when
//! Enphase sends none (a stable placeholder; the field is required). The inverter's `sn` is
//! `null`: the array has one serial per microinverter, none for the whole.

use chrono::{DateTime, TimeZone, Utc};
use oemgate_core::{
    Battery, BatteryCapabilities, BatteryChargeState, BatteryChargeStatus, BatteryConfig,
    BatteryConfigOperationMode, BatteryInformation, BatteryOperationMode, BatteryVendor,
    Capability, DeviceLocation, DeviceRef, DiscoveredDevice, Intervention, InterventionDomain,
    InterventionResolution, Inverter, InverterCapabilities, InverterInformation,
    InverterProductionState, InverterVendor, Meter, MeterCapabilities, MeterEnergyState,
    MeterInformation, MeterVendor, ResolutionAccess, ResolutionAgent, Vendor, VendorType,
};

use crate::model::{
    BatterySettings, BatteryTelemetry, LatestTelemetry, Summary, SystemDevices, SystemEntry,
    TelemetryDevices,
};

/// The brand on every resource.
pub const BRAND: &str = "Enphase";

/// Intervention: Enphase has no mode that forces the IQ Battery to export (`EXPORT_FOCUS`).
/// Stable: clients may store it.
pub const EXPORT_FOCUS_INTERVENTION_ID: &str = "3b0e9f5c-2d47-4f1a-9c8e-e7a1d5b40f21";
/// Intervention: Enphase has no mode that holds the IQ Battery idle (`IDLE`). Stable.
pub const IDLE_INTERVENTION_ID: &str = "8c4f2a61-95d3-4e0b-b7a2-1f6e3d9c5a07";
/// Intervention: the system has no consumption CT, so it cannot measure the grid. Stable.
pub const CONSUMPTION_METER_INTERVENTION_ID: &str = "d2a7c3e9-4b18-4f6d-8e25-9a0b7c1f3e64";

/// The scopes oemgate reports on every Enphase inverter.
pub const INVERTER_SCOPES: &[&str] = &["inverter:read:data", "inverter:read:location"];
/// The scopes oemgate reports on every Enphase battery.
pub const BATTERY_SCOPES: &[&str] =
    &["battery:control:operation_mode", "battery:read:data", "battery:read:location"];
/// The scopes oemgate reports on every Enphase meter.
pub const METER_SCOPES: &[&str] = &["meter:read:data", "meter:read:location"];

/// The battery modes Enphase has.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EnphaseBatteryMode {
    /// `Self-consumption`: charge from solar surplus, discharge to cover the household.
    SelfConsumption,
    /// `Savings Mode`: charge and discharge by the user's time-of-use tariff.
    Savings,
    /// `Full Backup`: keep the batteries full for outages; never discharge otherwise.
    FullBackup,
}

impl EnphaseBatteryMode {
    /// The exact spelling the `PUT battery_settings` body takes (case sensitive).
    pub const fn put_spelling(self) -> &'static str {
        match self {
            EnphaseBatteryMode::SelfConsumption => "Self-consumption",
            EnphaseBatteryMode::Savings => "Savings Mode",
            EnphaseBatteryMode::FullBackup => "Full Backup",
        }
    }

    /// The spelling of `GET battery_settings` (`Self - Consumption`, sic).
    pub const fn get_spelling(self) -> &'static str {
        match self {
            EnphaseBatteryMode::SelfConsumption => "Self - Consumption",
            EnphaseBatteryMode::Savings => "Savings Mode",
            EnphaseBatteryMode::FullBackup => "Full Backup",
        }
    }

    /// The spelling of the `PUT` echo (`self-consumption`).
    pub const fn echo_spelling(self) -> &'static str {
        match self {
            EnphaseBatteryMode::SelfConsumption => "self-consumption",
            EnphaseBatteryMode::Savings => "savings-mode",
            EnphaseBatteryMode::FullBackup => "full-backup",
        }
    }

    /// The Enode mode this Enphase mode is reported as.
    pub const fn enode(self) -> BatteryConfigOperationMode {
        match self {
            EnphaseBatteryMode::SelfConsumption => BatteryConfigOperationMode::SelfReliance,
            EnphaseBatteryMode::Savings => BatteryConfigOperationMode::TimeOfUse,
            EnphaseBatteryMode::FullBackup => BatteryConfigOperationMode::ImportFocus,
        }
    }
}

/// The Enphase mode to set for an Enode mode; `None` for the modes Enphase does not have
/// (`EXPORT_FOCUS`, `IDLE`).
pub const fn enphase_mode(mode: BatteryOperationMode) -> Option<EnphaseBatteryMode> {
    match mode {
        BatteryOperationMode::SelfReliance => Some(EnphaseBatteryMode::SelfConsumption),
        BatteryOperationMode::TimeOfUse => Some(EnphaseBatteryMode::Savings),
        BatteryOperationMode::ImportFocus => Some(EnphaseBatteryMode::FullBackup),
        BatteryOperationMode::ExportFocus | BatteryOperationMode::Idle => None,
    }
}

/// Reads any of Enphase's spellings of a battery mode (`Self - Consumption`,
/// `self-consumption`, `Savings Mode`, `savings-mode`, `Full Backup`, `full_backup`, ...):
/// case, spaces, hyphens and underscores do not matter.
pub fn parse_battery_mode(s: &str) -> Option<EnphaseBatteryMode> {
    let key: String =
        s.chars().filter(char::is_ascii_alphanumeric).map(|c| c.to_ascii_lowercase()).collect();
    match key.as_str() {
        "selfconsumption" => Some(EnphaseBatteryMode::SelfConsumption),
        "savingsmode" | "savings" | "costsavings" => Some(EnphaseBatteryMode::Savings),
        "fullbackup" | "backup" | "backuponly" => Some(EnphaseBatteryMode::FullBackup),
        _ => None,
    }
}

/// The Enode mode for Enphase's `battery_mode`: unknown strings → `UNKNOWN`, absent or
/// blank → `None` (`null`).
pub fn operation_mode(battery_mode: Option<&str>) -> Option<BatteryConfigOperationMode> {
    let s = battery_mode.map(str::trim).filter(|s| !s.is_empty())?;
    Some(parse_battery_mode(s).map_or(BatteryConfigOperationMode::Unknown, |m| m.enode()))
}

/// W → kW, rounded to the watt; `None` for non-finite input. Never `-0.0`.
pub fn w_to_kw(w: f64) -> Option<f64> {
    w.is_finite().then(|| w.round() / 1000.0 + 0.0)
}

/// Wh → kWh, rounded to the watt-hour; `None` for non-finite input.
pub fn wh_to_kwh(wh: f64) -> Option<f64> {
    w_to_kw(wh)
}

/// Enode's `chargeRate` (kW, positive while charging) from the `storage` meter (W, positive
/// while discharging).
pub fn charge_rate_kw(storage_power_w: Option<f64>) -> Option<f64> {
    storage_power_w.and_then(|p| w_to_kw(-p))
}

/// The battery's status from its charge rate.
pub fn battery_status(charge_rate_kw: Option<f64>) -> Option<BatteryChargeStatus> {
    let rate = charge_rate_kw?;
    Some(if rate > 0.0 {
        BatteryChargeStatus::Charging
    } else if rate < 0.0 {
        BatteryChargeStatus::Discharging
    } else {
        BatteryChargeStatus::Idle
    })
}

/// The grid power in W (positive = import) from `latest_telemetry`'s meters:
/// `consumption - production - storage`. `None` without a consumption reading.
pub fn grid_power_w(meters: &TelemetryDevices) -> Option<f64> {
    let power = |name: &str| meters.meter(name).and_then(|m| m.power);
    let consumption = power("consumption")?;
    Some(consumption - power("production").unwrap_or(0.0) - power("storage").unwrap_or(0.0))
}

/// `"97%"`, `"97"`, `" 97.5 % "` → a percentage in `0..=100`; anything else → `None`.
pub fn parse_percent(s: &str) -> Option<f64> {
    let s = s.trim();
    let s = s.strip_suffix('%').unwrap_or(s).trim();
    s.parse::<f64>().ok().filter(|p| p.is_finite() && (0.0..=100.0).contains(p))
}

/// An epoch in seconds as UTC, capped at `now` (a vendor clock ahead of ours must not put
/// timestamps in the future).
pub fn epoch_at_most(secs: Option<i64>, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let t = Utc.timestamp_opt(secs?, 0).single()?;
    Some(t.min(now))
}

/// Which device class a reachability question is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    /// The microinverters.
    Inverter,
    /// The IQ Batteries.
    Battery,
    /// The consumption meter.
    Meter,
}

/// Whether the summary's `status` leaves `part` reachable (see the module docs). No status
/// at all counts as reachable.
pub fn reachable(status: Option<&str>, part: Part) -> bool {
    let Some(status) = status.map(|s| s.trim().to_ascii_lowercase()) else { return true };
    let down: &[&str] = match part {
        Part::Inverter => &["comm", "micro", "retired"],
        Part::Battery => &["comm", "battery", "retired"],
        Part::Meter => &["comm", "meter", "meter_issue", "retired"],
    };
    !down.contains(&status.as_str())
}

fn scopes(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

fn empty_location() -> DeviceLocation {
    DeviceLocation { id: None, longitude: None, latitude: None, last_updated: None }
}

fn site_name(device: &DeviceRef) -> String {
    format!("{BRAND} system {}", device.site_id.as_deref().unwrap_or(&device.vendor_id))
}

fn installation_date(summary: Option<&Summary>, now: DateTime<Utc>) -> DateTime<Utc> {
    epoch_at_most(summary.and_then(|s| s.operational_at), now).unwrap_or(DateTime::UNIX_EPOCH)
}

fn incapable(id: &str) -> Capability {
    Capability { is_capable: false, intervention_ids: vec![id.to_owned()] }
}

/// The devices of one system: an inverter when it has microinverters, a battery when it has
/// IQ Batteries, a meter when it has an enabled consumption CT. Vendor id and site id are the
/// system id; the display name is the system's name.
pub fn discovered_devices(system: &SystemEntry, devices: &SystemDevices) -> Vec<DiscoveredDevice> {
    let id = system.system_id.to_string();
    let name = system.name.as_deref().map(str::trim).filter(|n| !n.is_empty()).map(str::to_owned);
    let groups = &devices.devices;
    let mut found = Vec::new();
    let mut push = |device_type| {
        found.push(DiscoveredDevice {
            device_type,
            vendor_id: id.clone(),
            site_id: Some(id.clone()),
            display_name: name.clone(),
        });
    };
    if !groups.micros.is_empty() {
        push(VendorType::Inverter);
    }
    if !groups.encharges.is_empty() {
        push(VendorType::Battery);
    }
    if groups.meters.iter().any(|m| m.is_consumption_meter()) {
        push(VendorType::Meter);
    }
    found
}

/// The normalized inverter (the system's microinverter array) from the summary.
pub fn inverter_from_summary(
    device: &DeviceRef,
    summary: &Summary,
    observed_at: DateTime<Utc>,
) -> Inverter {
    let power_w = summary.current_power.filter(|w| w.is_finite());
    let production_rate = power_w.and_then(|w| w_to_kw(w.max(0.0)));
    let lifetime = summary.energy_lifetime.filter(|wh| *wh >= 0.0).and_then(wh_to_kwh);
    let any_value = production_rate.is_some() || lifetime.is_some();
    let reported = epoch_at_most(summary.last_report_at, observed_at)
        .or_else(|| epoch_at_most(summary.last_interval_end_at, observed_at));
    let model = match summary.modules.filter(|m| *m >= 1.0) {
        Some(n) => format!("IQ microinverter system ({n} modules)"),
        None => "IQ microinverter system".to_owned(),
    };
    Inverter {
        id: device.id.clone(),
        user_id: device.user_id.clone(),
        vendor: InverterVendor::Enphase,
        last_seen: observed_at,
        is_reachable: reachable(summary.status.as_deref(), Part::Inverter),
        production_state: InverterProductionState {
            production_rate,
            is_producing: power_w.map(|w| w > 0.0),
            total_lifetime_production: lifetime,
            last_updated: if any_value { reported.or(Some(observed_at)) } else { None },
        },
        timezone: None,
        capabilities: InverterCapabilities {
            production_state: Capability::capable(),
            production_statistics: Capability::capable(),
        },
        scopes: scopes(INVERTER_SCOPES),
        information: InverterInformation {
            id: device.vendor_id.clone(),
            sn: None,
            brand: BRAND.to_owned(),
            model,
            site_name: site_name(device),
            installation_date: installation_date(Some(summary), observed_at),
        },
        location: empty_location(),
        hem_system_id: None,
    }
}

/// The normalized meter (the system's consumption CT) from `latest_telemetry`, with the
/// summary's `status` for reachability when it was read.
pub fn meter_from_telemetry(
    device: &DeviceRef,
    latest: &LatestTelemetry,
    summary: Option<&Summary>,
    observed_at: DateTime<Utc>,
) -> Meter {
    let consumption = latest.devices.meter("consumption");
    let power = grid_power_w(&latest.devices).and_then(w_to_kw);
    let reported = consumption
        .and_then(|m| epoch_at_most(m.last_report_at, observed_at))
        .or_else(|| epoch_at_most(latest.last_report_at, observed_at));
    let status_ok = reachable(summary.and_then(|s| s.status.as_deref()), Part::Meter);
    let measures = if consumption.is_some() {
        Capability::capable()
    } else {
        incapable(CONSUMPTION_METER_INTERVENTION_ID)
    };
    Meter {
        id: device.id.clone(),
        user_id: device.user_id.clone(),
        vendor: MeterVendor::Enphase,
        last_seen: observed_at,
        is_reachable: consumption.is_some() && status_ok,
        information: MeterInformation {
            brand: BRAND.to_owned(),
            model: "IQ Gateway consumption CT".to_owned(),
            site_name: site_name(device),
            installation_date: installation_date(summary, observed_at),
        },
        energy_state: MeterEnergyState {
            power,
            last_updated: if power.is_some() { reported.or(Some(observed_at)) } else { None },
        },
        location: empty_location(),
        capabilities: MeterCapabilities {
            measures_consumption: measures.clone(),
            measures_production: measures,
        },
        scopes: scopes(METER_SCOPES),
        hem_system_id: None,
    }
}

/// The four reads a battery observation is made of.
#[derive(Clone, Copy, Debug)]
pub struct BatteryReadings<'a> {
    /// `summary`: capacity, status, installation date.
    pub summary: &'a Summary,
    /// `latest_telemetry`: the `storage` power.
    pub latest: &'a LatestTelemetry,
    /// `telemetry/battery`: the state of charge.
    pub telemetry: &'a BatteryTelemetry,
    /// `battery_settings`: mode and reserve.
    pub settings: &'a BatterySettings,
}

/// The state of charge: `last_reported_aggregate_soc`, else the last interval's percent.
pub fn battery_level(telemetry: &BatteryTelemetry) -> Option<f64> {
    telemetry.last_reported_aggregate_soc.as_deref().and_then(parse_percent).or_else(|| {
        telemetry
            .intervals
            .iter()
            .rev()
            .find_map(|i| i.soc.as_ref().and_then(|s| s.percent))
            .filter(|p| (0.0..=100.0).contains(p))
    })
}

/// What oemgate can do with IQ Batteries: `SELF_RELIANCE`, `TIME_OF_USE` and
/// `IMPORT_FOCUS`; not `EXPORT_FOCUS` nor `IDLE` (each with its intervention).
pub fn battery_capabilities() -> BatteryCapabilities {
    BatteryCapabilities {
        export_focus: incapable(EXPORT_FOCUS_INTERVENTION_ID),
        import_focus: Capability::capable(),
        time_of_use: Capability::capable(),
        self_reliance: Capability::capable(),
        idle: Some(incapable(IDLE_INTERVENTION_ID)),
    }
}

/// The normalized battery (all IQ Batteries of the system) from its four reads.
pub fn battery_from_readings(
    device: &DeviceRef,
    r: &BatteryReadings<'_>,
    observed_at: DateTime<Utc>,
) -> Battery {
    let storage = r.latest.devices.meter("storage");
    let charge_rate = charge_rate_kw(storage.and_then(|m| m.power));
    let level = battery_level(r.telemetry);
    let capacity = r.summary.battery_capacity_wh.filter(|wh| *wh > 0.0).and_then(wh_to_kwh);
    let reserve = r.settings.reserve_soc.filter(|p| (0.0..=100.0).contains(p));
    let reported = storage
        .and_then(|m| epoch_at_most(m.last_report_at, observed_at))
        .or_else(|| epoch_at_most(r.latest.last_report_at, observed_at));
    let live = charge_rate.is_some() || level.is_some();
    let mode = operation_mode(r.settings.battery_mode.as_deref());
    Battery {
        id: device.id.clone(),
        user_id: device.user_id.clone(),
        vendor: BatteryVendor::Enphase,
        last_seen: observed_at,
        is_reachable: reachable(r.summary.status.as_deref(), Part::Battery),
        charge_state: BatteryChargeState {
            status: battery_status(charge_rate),
            battery_capacity: capacity,
            battery_level: level,
            charge_rate,
            discharge_limit: reserve,
            last_updated: if live { reported.or(Some(observed_at)) } else { None },
        },
        config: BatteryConfig { last_updated: mode.map(|_| observed_at), operation_mode: mode },
        information: BatteryInformation {
            id: device.vendor_id.clone(),
            brand: BRAND.to_owned(),
            model: "IQ Battery".to_owned(),
            site_name: site_name(device),
            installation_date: installation_date(Some(r.summary), observed_at),
        },
        capabilities: battery_capabilities(),
        scopes: scopes(BATTERY_SCOPES),
        location: empty_location(),
        hem_system_id: None,
    }
}

/// The interventions this adapter names, for an interventions endpoint.
pub fn interventions() -> Vec<Intervention> {
    let introduced_at = Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).single().unwrap_or_default();
    let make = |id: &str,
                vendor_type: VendorType,
                access: ResolutionAccess,
                agent: ResolutionAgent,
                title: &str,
                description: &str| Intervention {
        id: id.to_owned(),
        vendor: Some(Vendor::Enphase),
        vendor_type: Some(vendor_type),
        brand: Some(BRAND.to_owned()),
        introduced_at,
        domain: InterventionDomain::Device,
        resolution: InterventionResolution {
            title: title.to_owned(),
            description: description.to_owned(),
            access,
            agent,
            action: None,
        },
    };
    vec![
        make(
            EXPORT_FOCUS_INTERVENTION_ID,
            VendorType::Battery,
            ResolutionAccess::Remote,
            ResolutionAgent::User,
            "Export focus is not available on Enphase IQ Batteries",
            "Enphase offers no mode that forces the IQ Batteries to discharge to the grid. \
             *Savings Mode* (`TIME_OF_USE`) discharges during the peak hours of the tariff \
             set in the Enphase App, and exports where battery export is allowed.",
        ),
        make(
            IDLE_INTERVENTION_ID,
            VendorType::Battery,
            ResolutionAccess::Remote,
            ResolutionAgent::User,
            "Idle is not available on Enphase IQ Batteries",
            "Enphase offers no mode that holds the IQ Batteries idle. Raising the battery \
             reserve in the Enphase App stops them from discharging.",
        ),
        make(
            CONSUMPTION_METER_INTERVENTION_ID,
            VendorType::Meter,
            ResolutionAccess::Physical,
            ResolutionAgent::ThirdParty,
            "The Enphase system has no consumption meter",
            "The IQ Gateway measures the grid connection only with consumption CTs. An \
             Enphase installer can install and enable them.",
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_round_trip_through_every_spelling() {
        for mode in [
            EnphaseBatteryMode::SelfConsumption,
            EnphaseBatteryMode::Savings,
            EnphaseBatteryMode::FullBackup,
        ] {
            assert_eq!(parse_battery_mode(mode.put_spelling()), Some(mode));
            assert_eq!(parse_battery_mode(mode.get_spelling()), Some(mode));
            assert_eq!(parse_battery_mode(mode.echo_spelling()), Some(mode));
        }
        assert_eq!(
            parse_battery_mode("SELF_CONSUMPTION"),
            Some(EnphaseBatteryMode::SelfConsumption)
        );
        assert_eq!(
            operation_mode(Some("Self - Consumption")),
            Some(BatteryConfigOperationMode::SelfReliance)
        );
        assert_eq!(operation_mode(Some("Storm Guard")), Some(BatteryConfigOperationMode::Unknown));
        assert_eq!(operation_mode(Some("  ")), None);
        assert_eq!(operation_mode(None), None);
        for mode in BatteryOperationMode::ALL {
            match enphase_mode(*mode) {
                Some(e) => assert_eq!(e.enode(), BatteryConfigOperationMode::from(*mode)),
                None => assert!(matches!(
                    mode,
                    BatteryOperationMode::ExportFocus | BatteryOperationMode::Idle
                )),
            }
        }
    }

    #[test]
    fn units_and_signs() {
        assert_eq!(w_to_kw(1930.0), Some(1.93));
        assert_eq!(w_to_kw(-0.2), Some(0.0));
        assert!(w_to_kw(-0.2).is_some_and(|v| v.is_sign_positive()));
        assert_eq!(w_to_kw(f64::NAN), None);
        assert_eq!(wh_to_kwh(6_400_000.0), Some(6400.0));
        // Storage positive = discharging → chargeRate negative.
        assert_eq!(charge_rate_kw(Some(1500.0)), Some(-1.5));
        assert_eq!(charge_rate_kw(Some(-2500.0)), Some(2.5));
        assert_eq!(battery_status(Some(-1.5)), Some(BatteryChargeStatus::Discharging));
        assert_eq!(battery_status(Some(2.5)), Some(BatteryChargeStatus::Charging));
        assert_eq!(battery_status(Some(0.0)), Some(BatteryChargeStatus::Idle));
        assert_eq!(battery_status(None), None);
        assert_eq!(parse_percent("97%"), Some(97.0));
        assert_eq!(parse_percent(" 42.5 % "), Some(42.5));
        assert_eq!(parse_percent("140%"), None);
        assert_eq!(parse_percent("n/a"), None);
    }

    #[test]
    fn reachability_follows_the_status() {
        assert!(reachable(None, Part::Meter));
        assert!(reachable(Some("normal"), Part::Battery));
        assert!(!reachable(Some("comm"), Part::Inverter));
        assert!(!reachable(Some("micro"), Part::Inverter));
        assert!(reachable(Some("micro"), Part::Battery));
        assert!(!reachable(Some("meter_issue"), Part::Meter));
        assert!(!reachable(Some("BATTERY"), Part::Battery));
    }

    #[test]
    fn timestamps_never_lie_in_the_future() {
        let now = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let later = now.timestamp() + 60;
        assert_eq!(epoch_at_most(Some(later), now), Some(now));
        assert_eq!(epoch_at_most(Some(0), now), Some(DateTime::UNIX_EPOCH));
        assert_eq!(epoch_at_most(None, now), None);
    }

    #[test]
    fn interventions_cover_every_named_id() {
        let ids: Vec<String> = interventions().into_iter().map(|i| i.id).collect();
        let caps = battery_capabilities();
        for cap in [&caps.export_focus, caps.idle.as_ref().unwrap()] {
            assert!(!cap.is_capable);
            assert!(cap.intervention_ids.iter().all(|id| ids.contains(id)));
        }
        assert!(ids.contains(&CONSUMPTION_METER_INTERVENTION_ID.to_owned()));
    }
}
