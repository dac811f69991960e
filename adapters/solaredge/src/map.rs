//! Pure mapping from SolarEdge's JSON ([`crate::model`]) to the normalized resources. No I/O,
//! no clock: the read time comes in as `now`.
//!
//! Units and signs:
//! - `overview`: power in W → kW, energy in Wh → kWh. Production is never negative (a
//!   negative reading is clamped to 0).
//! - `currentPowerFlow`: every `currentPower` is **unsigned**, in the flow's `unit` (`kW`,
//!   sometimes `W`; an unknown unit gives `null`). The direction comes only from the
//!   `connections` list, whose node names come in any case (`GRID`, `Grid`, `Load`), so they
//!   are compared lower-cased:
//!   - GRID is *export* when `grid` is the `to` of a connection (meter power negative) and
//!     *import* when it is a `from` (positive).
//!   - STORAGE is *charging* when `storage` is a `to` (`chargeRate` positive) and
//!     *discharging* when it is a `from` (negative). Without a connection the node's
//!     `status` (`Charging` / `Discharging`, unconfirmed) decides; without either, a non-zero
//!     value has no known sign and maps to `null`.
//! - `storageData` (used for capacity and model, and for live values of a site with several
//!   batteries, where the power flow only has their sum): nameplate and energies in Wh →
//!   kWh, `power` in W → kW, positive while charging (SolarEdge's spec copy; unconfirmed).
//! - Every time SolarEdge sends is site-local without an offset; it is converted with the
//!   site's IANA `location.timeZone` (chrono-tz). Without a usable zone the time is not
//!   guessed: `lastUpdated` falls back to the read time.
//!
//! Reachability: the overview's `lastUpdateTime` older than [`OVERVIEW_STALE_AFTER`], a
//! power-flow node with status `Disabled`, or a newest telemetry older than
//! [`TELEMETRY_STALE_AFTER`] make the device unreachable; its live values are then `null`.
//!
//! Capabilities: the Monitoring API is read-only. Every battery operation mode is
//! `isCapable: false` with [`READ_ONLY_INTERVENTION_ID`]; inverters report production state
//! and statistics, meters measure both directions.

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeDelta, TimeZone, Utc};
use chrono_tz::Tz;
use oemgate_core::{
    Battery, BatteryCapabilities, BatteryChargeState, BatteryChargeStatus, BatteryConfig,
    BatteryInformation, BatteryVendor, Capability, DeviceLocation, DeviceRef, Intervention,
    InterventionDomain, InterventionResolution, Inverter, InverterCapabilities,
    InverterInformation, InverterProductionState, InverterVendor, Meter, MeterCapabilities,
    MeterEnergyState, MeterInformation, MeterVendor, ResolutionAccess, ResolutionAgent, Vendor,
    VendorType,
};

use crate::model::{Connection, Overview, PowerFlow, Site, StorageBattery, StorageData, Telemetry};

/// The brand on every resource.
pub const BRAND: &str = "SolarEdge";

/// Intervention: the SolarEdge Monitoring API is read-only, so oemgate cannot change a
/// battery's operation mode. Stable: clients may store it.
pub const READ_ONLY_INTERVENTION_ID: &str = "5b0e2f61-8c3a-4d7e-9a12-6f4c8b3e1d07";

/// An overview whose `lastUpdateTime` is older than this is stale: the inverter stopped
/// reporting (SolarEdge inverters upload every few minutes while they have a connection).
pub const OVERVIEW_STALE_AFTER: TimeDelta = TimeDelta::hours(1);

/// A battery whose newest telemetry is older than this is unreachable (SolarEdge stores
/// storage telemetry every 5 minutes).
pub const TELEMETRY_STALE_AFTER: TimeDelta = TimeDelta::minutes(30);

/// The format of SolarEdge's date-times (`2024-01-15 10:30:00`), site-local.
pub const LOCAL_TIME_FORMAT: &str = "%Y-%m-%d %H:%M:%S";

/// Scopes reported on every inverter.
pub const INVERTER_SCOPES: &[&str] = &["inverter:read:data", "inverter:read:location"];
/// Scopes reported on every meter.
pub const METER_SCOPES: &[&str] = &["meter:read:data", "meter:read:location"];
/// Scopes reported on every battery (no control scope: the API is read-only).
pub const BATTERY_SCOPES: &[&str] = &["battery:read:data", "battery:read:location"];

fn owned(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

// ------------------------------------------------------------------ time

/// The site's time zone, if it names one chrono-tz knows.
pub fn site_time_zone(site: &Site) -> Option<Tz> {
    site.location.as_ref()?.time_zone.as_deref()?.trim().parse::<Tz>().ok()
}

/// A site-local `YYYY-MM-DD hh:mm:ss` as UTC. In the hour a DST change repeats, the earlier
/// instant; a local time the change skips, or anything unparseable, is `None`.
pub fn local_to_utc(local: &str, tz: Tz) -> Option<DateTime<Utc>> {
    let naive = NaiveDateTime::parse_from_str(local.trim(), LOCAL_TIME_FORMAT).ok()?;
    tz.from_local_datetime(&naive).earliest().map(|t| t.with_timezone(&Utc))
}

/// `t` as SolarEdge writes it for the site (`YYYY-MM-DD hh:mm:ss` in `tz`).
pub fn format_local(t: DateTime<Utc>, tz: Tz) -> String {
    t.with_timezone(&tz).format(LOCAL_TIME_FORMAT).to_string()
}

/// A site-local date (`YYYY-MM-DD`) as the UTC instant its day starts in `tz` (UTC when the
/// zone is unknown: a date does not need more precision), never after `now`.
pub fn local_date_to_utc(date: &str, tz: Option<Tz>, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let day = NaiveDate::parse_from_str(date.trim(), "%Y-%m-%d").ok()?;
    let midnight = day.and_hms_opt(0, 0, 0)?;
    let t = match tz {
        Some(tz) => tz.from_local_datetime(&midnight).earliest()?.with_timezone(&Utc),
        None => Utc.from_utc_datetime(&midnight),
    };
    Some(t.min(now))
}

/// The `startTime` / `endTime` of a `storageData` request that holds the newest telemetry:
/// the last day up to a little after `now`, in the site's time. Without the zone, UTC padded
/// by 14 hours each way (every offset on Earth), still well inside SolarEdge's one-week
/// maximum.
pub fn storage_window(now: DateTime<Utc>, tz: Option<Tz>) -> (String, String) {
    match tz {
        Some(tz) => (
            format_local(now - TimeDelta::days(1), tz),
            format_local(now + TimeDelta::hours(1), tz),
        ),
        None => {
            let fmt = |t: DateTime<Utc>| t.format(LOCAL_TIME_FORMAT).to_string();
            (fmt(now - TimeDelta::hours(38)), fmt(now + TimeDelta::hours(14)))
        }
    }
}

/// The site's installation date as an instant, or the Unix epoch when SolarEdge does not say
/// (the resource requires a value; the epoch is an obvious placeholder, not a guess).
pub fn installation_date(site: &Site, now: DateTime<Utc>) -> DateTime<Utc> {
    site.installation_date
        .as_deref()
        .and_then(|d| local_date_to_utc(d, site_time_zone(site), now))
        .unwrap_or(DateTime::UNIX_EPOCH)
}

/// The site's name, or "SolarEdge site {id}".
pub fn site_name(site: &Site) -> String {
    site.name
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map_or_else(|| format!("SolarEdge site {}", site.id), str::to_owned)
}

fn no_location() -> DeviceLocation {
    DeviceLocation { id: None, longitude: None, latitude: None, last_updated: None }
}

fn finite(x: Option<f64>) -> Option<f64> {
    x.filter(|v| v.is_finite())
}

/// Watts (or watt-hours) to kilo-, `+ 0.0` turning a -0.0 into 0.0.
fn kilo(x: f64) -> f64 {
    x / 1000.0 + 0.0
}

// ------------------------------------------------------------------ power flow

/// kW per unit of a power flow's values: `kW` → 1, `W` → 0.001, `MW` → 1000 (any case).
/// `None` for a unit the adapter does not know; an absent unit is SolarEdge's usual `kW`.
pub fn kw_per_unit(unit: Option<&str>) -> Option<f64> {
    match unit.map(|u| u.trim().to_ascii_lowercase()).as_deref() {
        None | Some("kw") => Some(1.0),
        Some("w") => Some(0.001),
        Some("mw") => Some(1000.0),
        Some(_) => None,
    }
}

/// Which way power flows at a node, from the connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// The node is only ever a `to`: power flows into it.
    Into,
    /// The node is only ever a `from`: power flows out of it.
    OutOf,
    /// No connection names it (or it is both, which SolarEdge never sends).
    Unknown,
}

/// The direction at `node` (lower case) according to `connections`.
pub fn direction(connections: &[Connection], node: &str) -> Direction {
    let is = |name: &str| name.trim().eq_ignore_ascii_case(node);
    let into = connections.iter().any(|c| is(&c.to));
    let out = connections.iter().any(|c| is(&c.from));
    match (into, out) {
        (true, false) => Direction::Into,
        (false, true) => Direction::OutOf,
        _ => Direction::Unknown,
    }
}

fn is_disabled(status: Option<&str>) -> bool {
    status.is_some_and(|s| s.trim().eq_ignore_ascii_case("disabled"))
}

/// A node's magnitude in kW (unsigned), `None` when absent, not finite or in an unknown unit.
fn magnitude_kw(value: Option<f64>, per_unit: Option<f64>) -> Option<f64> {
    Some(finite(value)?.abs() * per_unit?)
}

/// Signs a magnitude: `positive` when power flows the way that counts as positive.
fn signed(magnitude: Option<f64>, positive: Option<bool>) -> Option<f64> {
    let m = magnitude?;
    if m == 0.0 {
        return Some(0.0);
    }
    positive.map(|p| if p { m } else { -m })
}

/// A node of the flow as the normalized model wants it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NodeReading {
    /// The node is reporting (its status is not `Disabled`).
    pub reachable: bool,
    /// Power in kW, signed the normalized way for the node (see [`FlowReading`]).
    pub power_kw: Option<f64>,
}

/// The storage node.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StorageReading {
    /// The node is reporting.
    pub reachable: bool,
    /// kW, positive while charging.
    pub charge_rate_kw: Option<f64>,
    /// State of charge, %.
    pub level: Option<f64>,
    /// From the rate's sign, else the node's status text.
    pub status: Option<BatteryChargeStatus>,
}

/// A power flow with directions applied.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FlowReading {
    /// The grid (meter): positive importing, negative exporting. `None`: no GRID node.
    pub grid: Option<NodeReading>,
    /// PV production, never negative. `None`: no PV node.
    pub pv: Option<NodeReading>,
    /// The batteries together. `None`: no STORAGE node.
    pub storage: Option<StorageReading>,
}

/// Applies the connections to a power flow.
pub fn read_power_flow(flow: &PowerFlow) -> FlowReading {
    let per_unit = kw_per_unit(flow.unit.as_deref());
    let grid = flow.grid.as_ref().map(|node| {
        let positive = match direction(&flow.connections, "grid") {
            Direction::OutOf => Some(true),
            Direction::Into => Some(false),
            Direction::Unknown => None,
        };
        let reachable = !is_disabled(node.status.as_deref());
        let power = signed(magnitude_kw(node.current_power, per_unit), positive);
        NodeReading { reachable, power_kw: power.filter(|_| reachable) }
    });
    let pv = flow.pv.as_ref().map(|node| {
        let reachable = !is_disabled(node.status.as_deref());
        let power = magnitude_kw(node.current_power, per_unit);
        NodeReading { reachable, power_kw: power.filter(|_| reachable) }
    });
    let storage = flow.storage.as_ref().map(|node| {
        let status_text = node.status.as_deref().map(|s| s.trim().to_ascii_lowercase());
        let positive = match direction(&flow.connections, "storage") {
            Direction::Into => Some(true),
            Direction::OutOf => Some(false),
            Direction::Unknown => match status_text.as_deref() {
                Some("charging") => Some(true),
                Some("discharging") => Some(false),
                _ => None,
            },
        };
        let reachable = !is_disabled(node.status.as_deref());
        let rate = signed(magnitude_kw(node.current_power, per_unit), positive);
        let status = match rate {
            Some(r) => Some(status_from_rate(r)),
            None => positive.map(|p| {
                if p { BatteryChargeStatus::Charging } else { BatteryChargeStatus::Discharging }
            }),
        };
        let level = finite(node.charge_level).map(|l| l.clamp(0.0, 100.0));
        StorageReading {
            reachable,
            charge_rate_kw: rate.filter(|_| reachable),
            level: level.filter(|_| reachable),
            status: status.filter(|_| reachable),
        }
    });
    FlowReading { grid, pv, storage }
}

/// `CHARGING`, `DISCHARGING` or `IDLE` from a rate in kW (positive charging).
pub fn status_from_rate(rate_kw: f64) -> BatteryChargeStatus {
    if rate_kw > 0.0 {
        BatteryChargeStatus::Charging
    } else if rate_kw < 0.0 {
        BatteryChargeStatus::Discharging
    } else {
        BatteryChargeStatus::Idle
    }
}

// ------------------------------------------------------------------ inverter

/// The inverter (a SolarEdge site's PV production, all its inverters together) from the
/// site and its overview.
pub fn inverter(
    device: &DeviceRef,
    site: &Site,
    overview: &Overview,
    now: DateTime<Utc>,
) -> Inverter {
    let tz = site_time_zone(site);
    let updated = overview
        .last_update_time
        .as_deref()
        .zip(tz)
        .and_then(|(t, tz)| local_to_utc(t, tz))
        .map(|t| t.min(now));
    let reachable = updated.is_none_or(|t| now - t <= OVERVIEW_STALE_AFTER);
    let rate = finite(overview.current_power.as_ref().and_then(|p| p.power))
        .map(|w| kilo(w.max(0.0)))
        .filter(|_| reachable);
    let lifetime =
        finite(overview.life_time_data.as_ref().and_then(|e| e.energy)).map(|wh| kilo(wh.max(0.0)));
    Inverter {
        id: device.id.clone(),
        user_id: device.user_id.clone(),
        vendor: InverterVendor::SolarEdge,
        last_seen: now,
        is_reachable: reachable,
        production_state: InverterProductionState {
            production_rate: rate,
            is_producing: rate.map(|r| r > 0.0),
            total_lifetime_production: lifetime,
            last_updated: Some(updated.unwrap_or(now)),
        },
        timezone: tz.map(|tz| tz.name().to_owned()),
        capabilities: InverterCapabilities {
            production_state: Capability::capable(),
            production_statistics: Capability::capable(),
        },
        scopes: owned(INVERTER_SCOPES),
        information: InverterInformation {
            id: device.vendor_id.clone(),
            sn: None,
            brand: BRAND.to_owned(),
            model: site
                .site_type
                .as_deref()
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .unwrap_or("Inverter")
                .to_owned(),
            site_name: site_name(site),
            installation_date: installation_date(site, now),
        },
        location: no_location(),
        hem_system_id: None,
    }
}

// ------------------------------------------------------------------ meter

/// The meter (the site's grid connection) from the site and its power flow. A flow without
/// a GRID node, or with a `Disabled` one, reads as unreachable.
pub fn meter(device: &DeviceRef, site: &Site, flow: &FlowReading, now: DateTime<Utc>) -> Meter {
    let grid = flow.grid.filter(|g| g.reachable);
    Meter {
        id: device.id.clone(),
        user_id: device.user_id.clone(),
        vendor: MeterVendor::SolarEdge,
        last_seen: now,
        is_reachable: grid.is_some(),
        information: MeterInformation {
            brand: BRAND.to_owned(),
            model: "Import/export meter".to_owned(),
            site_name: site_name(site),
            installation_date: installation_date(site, now),
        },
        energy_state: MeterEnergyState {
            power: grid.and_then(|g| g.power_kw),
            // currentPowerFlow carries no timestamp: the value is as of the read.
            last_updated: Some(now),
        },
        location: no_location(),
        capabilities: MeterCapabilities {
            measures_consumption: Capability::capable(),
            measures_production: Capability::capable(),
        },
        scopes: owned(METER_SCOPES),
        hem_system_id: None,
    }
}

// ------------------------------------------------------------------ battery

/// A battery's live values, from the power flow or from its telemetry.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BatteryLive {
    /// Reporting.
    pub reachable: bool,
    /// kW, positive while charging.
    pub charge_rate_kw: Option<f64>,
    /// State of charge, %.
    pub level: Option<f64>,
    /// What it is doing.
    pub status: Option<BatteryChargeStatus>,
    /// When the values were measured.
    pub last_updated: DateTime<Utc>,
}

/// The newest telemetry sample that has a timestamp (SolarEdge sends them oldest first; the
/// order is not trusted).
pub fn newest_telemetry(battery: &StorageBattery) -> Option<&Telemetry> {
    battery
        .telemetries
        .iter()
        .filter_map(|t| {
            let at =
                NaiveDateTime::parse_from_str(t.time_stamp.as_deref()?.trim(), LOCAL_TIME_FORMAT)
                    .ok()?;
            Some((at, t))
        })
        .max_by_key(|(at, _)| *at)
        .map(|(_, t)| t)
}

/// The live values of `battery`: from the power flow's STORAGE node when the site has exactly
/// one battery (the node is the sum of all of them), else from the battery's newest
/// telemetry.
pub fn battery_live(
    flow: Option<&FlowReading>,
    data: &StorageData,
    battery: &StorageBattery,
    tz: Option<Tz>,
    now: DateTime<Utc>,
) -> BatteryLive {
    let single = data.batteries.len() == 1;
    if single && let Some(storage) = flow.and_then(|f| f.storage) {
        return BatteryLive {
            reachable: storage.reachable,
            charge_rate_kw: storage.charge_rate_kw,
            level: storage.level,
            status: storage.status,
            last_updated: now,
        };
    }
    let Some(sample) = newest_telemetry(battery) else {
        return BatteryLive {
            reachable: false,
            charge_rate_kw: None,
            level: None,
            status: None,
            last_updated: now,
        };
    };
    let at = sample
        .time_stamp
        .as_deref()
        .zip(tz)
        .and_then(|(t, tz)| local_to_utc(t, tz))
        .map(|t| t.min(now));
    let reachable = at.is_none_or(|t| now - t <= TELEMETRY_STALE_AFTER);
    let rate = finite(sample.power).map(kilo).filter(|_| reachable);
    BatteryLive {
        reachable,
        charge_rate_kw: rate,
        level: finite(sample.battery_percentage_state)
            .map(|l| l.clamp(0.0, 100.0))
            .filter(|_| reachable),
        status: rate.map(status_from_rate),
        last_updated: at.unwrap_or(now),
    }
}

/// The battery's usable capacity in kWh: the newest `fullPackEnergyAvailable`, else the
/// nameplate.
pub fn battery_capacity_kwh(battery: &StorageBattery) -> Option<f64> {
    let full = newest_telemetry(battery).and_then(|t| finite(t.full_pack_energy_available));
    full.or(finite(battery.nameplate)).filter(|wh| *wh > 0.0).map(kilo)
}

/// Every operation mode: not capable, the Monitoring API being read-only.
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

/// The battery `battery` of `site`, with its live values.
pub fn battery(
    device: &DeviceRef,
    site: &Site,
    battery: &StorageBattery,
    live: &BatteryLive,
    now: DateTime<Utc>,
) -> Battery {
    Battery {
        id: device.id.clone(),
        user_id: device.user_id.clone(),
        vendor: BatteryVendor::SolarEdge,
        last_seen: now,
        is_reachable: live.reachable,
        charge_state: BatteryChargeState {
            status: live.status,
            battery_capacity: battery_capacity_kwh(battery),
            battery_level: live.level,
            charge_rate: live.charge_rate_kw,
            // The Monitoring API does not expose the backup reserve.
            discharge_limit: None,
            last_updated: Some(live.last_updated),
        },
        // Nor the storage profile (operation mode).
        config: BatteryConfig { operation_mode: None, last_updated: None },
        information: BatteryInformation {
            id: battery.serial_number.clone(),
            brand: BRAND.to_owned(),
            model: battery
                .model_number
                .as_deref()
                .map(str::trim)
                .filter(|m| !m.is_empty())
                .unwrap_or("Battery")
                .to_owned(),
            site_name: site_name(site),
            installation_date: installation_date(site, now),
        },
        capabilities: battery_capabilities(),
        scopes: owned(BATTERY_SCOPES),
        location: no_location(),
        hem_system_id: None,
    }
}

/// The interventions the capabilities name, for an interventions endpoint.
pub fn interventions() -> Vec<Intervention> {
    let introduced_at = Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).single().unwrap_or_default();
    vec![Intervention {
        id: READ_ONLY_INTERVENTION_ID.to_owned(),
        vendor: Some(Vendor::SolarEdge),
        vendor_type: Some(VendorType::Battery),
        brand: Some(BRAND.to_owned()),
        introduced_at,
        domain: InterventionDomain::Account,
        resolution: InterventionResolution {
            title: "SolarEdge batteries cannot be controlled through oemgate".to_owned(),
            description: "The SolarEdge Monitoring API that oemgate uses is read-only: it \
                          reports production, consumption and battery state, but cannot \
                          change the storage profile. Change the battery's mode in the \
                          mySolarEdge app, or ask your installer."
                .to_owned(),
            access: ResolutionAccess::Remote,
            agent: ResolutionAgent::User,
            action: None,
        },
    }]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn(from: &str, to: &str) -> Connection {
        Connection { from: from.into(), to: to.into() }
    }

    #[test]
    fn directions_ignore_case() {
        let c = [conn("PV", "Load"), conn("LOAD", "Grid"), conn("pv", "STORAGE")];
        assert_eq!(direction(&c, "grid"), Direction::Into);
        assert_eq!(direction(&c, "storage"), Direction::Into);
        assert_eq!(direction(&c, "pv"), Direction::OutOf);
        assert_eq!(direction(&[], "grid"), Direction::Unknown);
        let both = [conn("GRID", "Load"), conn("PV", "Grid")];
        assert_eq!(direction(&both, "grid"), Direction::Unknown);
    }

    #[test]
    fn units() {
        assert_eq!(kw_per_unit(Some("kW")), Some(1.0));
        assert_eq!(kw_per_unit(Some("KW")), Some(1.0));
        assert_eq!(kw_per_unit(Some("W")), Some(0.001));
        assert_eq!(kw_per_unit(Some("MW")), Some(1000.0));
        assert_eq!(kw_per_unit(None), Some(1.0));
        assert_eq!(kw_per_unit(Some("kWh")), None);
    }

    #[test]
    fn local_times_follow_dst() {
        let tz: Tz = "Europe/Amsterdam".parse().unwrap();
        let winter = local_to_utc("2024-01-15 10:30:00", tz).unwrap();
        assert_eq!(winter, Utc.with_ymd_and_hms(2024, 1, 15, 9, 30, 0).unwrap());
        let summer = local_to_utc("2024-07-15 10:30:00", tz).unwrap();
        assert_eq!(summer, Utc.with_ymd_and_hms(2024, 7, 15, 8, 30, 0).unwrap());
        // Skipped hour and garbage.
        assert_eq!(local_to_utc("2024-03-31 02:30:00", tz), None);
        assert_eq!(local_to_utc("15/01/2024 10:30", tz), None);
        // Repeated hour: the earlier instant.
        let fold = local_to_utc("2024-10-27 02:30:00", tz).unwrap();
        assert_eq!(fold, Utc.with_ymd_and_hms(2024, 10, 27, 0, 30, 0).unwrap());
        assert_eq!(format_local(winter, tz), "2024-01-15 10:30:00");
    }

    #[test]
    fn dates_never_lie_in_the_future() {
        let now = Utc.with_ymd_and_hms(2024, 1, 15, 23, 30, 0).unwrap();
        let tz: Tz = "Pacific/Auckland".parse().unwrap();
        assert_eq!(
            local_date_to_utc("2019-03-01", Some(tz), now),
            Some(Utc.with_ymd_and_hms(2019, 2, 28, 11, 0, 0).unwrap())
        );
        assert_eq!(local_date_to_utc("2024-01-16", None, now), Some(now));
        assert_eq!(local_date_to_utc("soon", None, now), None);
    }

    #[test]
    fn storage_window_is_within_a_week() {
        let now = Utc.with_ymd_and_hms(2024, 1, 15, 12, 0, 0).unwrap();
        let tz: Tz = "Europe/Oslo".parse().unwrap();
        assert_eq!(
            storage_window(now, Some(tz)),
            ("2024-01-14 13:00:00".to_owned(), "2024-01-15 14:00:00".to_owned())
        );
        assert_eq!(
            storage_window(now, None),
            ("2024-01-13 22:00:00".to_owned(), "2024-01-16 02:00:00".to_owned())
        );
    }

    #[test]
    fn read_only_capabilities_name_the_intervention() {
        let caps = battery_capabilities();
        for c in [&caps.export_focus, &caps.import_focus, &caps.time_of_use, &caps.self_reliance] {
            assert!(!c.is_capable);
            assert_eq!(c.intervention_ids, vec![READ_ONLY_INTERVENTION_ID.to_owned()]);
        }
        assert_eq!(interventions()[0].id, READ_ONLY_INTERVENTION_ID);
    }
}
