//! Pure mapping from ecobee's JSON to the normalized [`Hvac`], from the thermostat summary to
//! discovered devices, and from a permanent-hold command to ecobee's hold (the reverse
//! direction, [`plan_permanent_hold`]).
//!
//! No I/O and no clock: the caller passes the [`DeviceRef`] (for `id` and `userId`) and the
//! time of the observation.
//!
//! # Units
//!
//! ecobee reports every temperature as an integer in **tenths of °F** (715 = 71.5 °F), and
//! setpoint differences the same way (`heatCoolMinDelta` 50 = 5 °F). oemgate reports °C:
//! [`f10_to_celsius`] (`(t / 10 - 32) * 5 / 9`, rounded to 0.01 °C), [`f10_delta_to_celsius`]
//! for differences, and [`celsius_to_f10`] back (rounded to the tenth of °F, so a round trip is
//! off by at most 0.03 °C). Values outside -50..150 °F are ecobee's "unknown" sentinels and map
//! to `null`. ecobee gives no power: `consumptionRate` is `null`.
//!
//! # Modes and holds
//!
//! | ecobee `settings.hvacMode` | Enode `mode` |
//! |---|---|
//! | `heat`, `auxHeatOnly` | `HEAT` |
//! | `cool` | `COOL` |
//! | `auto` | `AUTO` |
//! | `off` | `OFF` |
//! | anything else, or no settings | `UNKNOWN` |
//!
//! `heatSetpoint` / `coolSetpoint` are the setpoints in effect, `runtime.desiredHeat` /
//! `desiredCool`, whatever the mode (ecobee always reports both).
//!
//! `holdType` comes from the running events: a running `hold` event that lasts a year or more
//! (ecobee's `indefinite` holds end years after they start) is `PERMANENT`; no running event,
//! or only ecobee's own Smart Home/Away adjustments (`autoHome`, `autoAway`), is `SCHEDULED`;
//! a temporary hold (`nextTransition`, `holdHours`, `dateTime`), a vacation, demand response or
//! Quick Save is neither and maps to `null`; without the events object it is `null` too.
//!
//! `isActive` is true while heating or cooling equipment runs: `heatPump*`, `auxHeat*`,
//! `compCool*` in the equipment status (`fan`, humidifiers and ventilators alone are not
//! heating or cooling). The summary's `statusList` is the fresher source and wins.
//!
//! # Capabilities and interventions
//!
//! - `capableModes`: `OFF` always; `HEAT` with heat stages or a heat pump; `COOL` with cooling
//!   stages or a heat pump; `AUTO` with both unless `autoHeatCoolFeatureEnabled` is false.
//!   `null` when the settings do not say (no stage information).
//! - `heatSetpointRange` / `coolSetpointRange`: `settings.heat/coolRangeLow/High` in °C.
//! - `setpointDifferenceRange`: `min` = `heatCoolMinDelta` in °C, no `max`.
//! - `setPermanentHold` and `setFollowSchedule` (`setHold` indefinite and `resumeProgram`):
//!   capable when the account granted the `smartWrite` (or `ems`) scope; an account linked
//!   read-only (`smartRead`) is not capable and names [`WRITE_SCOPE_INTERVENTION_ID`] (relink
//!   granting write access), described by [`interventions`].
//!
//! # Other fields
//!
//! `category` is `AGGREGATOR` (a smart thermostat in front of the household's HVAC system).
//! `model` is ecobee's marketing name for the `modelNumber` ([`model_name`]). `isReachable` is
//! the summary's connected flag (else `runtime.connected`). `temperatureState.lastUpdated` is
//! `runtime.lastModified`, `thermostatState.lastUpdated` the later of the thermostat's and the
//! runtime's `lastModified` (both UTC), never later than the read; the read time when ecobee
//! gives none. ecobee has no rooms per thermostat and no sites: `groupName` and `location.id`
//! are `null`, and discovered thermostats have no site id.

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};
use oemgate_core::{
    Capability, DeviceRef, DiscoveredDevice, Hvac, HvacCapabilities, HvacCategory, HvacHoldType,
    HvacInformation, HvacLocation, HvacMode, HvacTemperatureState, HvacThermostatState, HvacVendor,
    Intervention, InterventionDomain, InterventionResolution, ResolutionAccess, ResolutionAction,
    ResolutionAgent, TemperatureDifferenceRange, TemperatureRange, Vendor, VendorType,
};

use crate::model::{Event, Revision, Settings, Thermostat};

/// The brand on every resource.
pub const BRAND: &str = "ecobee";

/// Intervention: the account was linked read-only (`smartRead`); relinking with write access
/// (`smartWrite`) makes holds and schedules controllable. Stable: clients may store it.
pub const WRITE_SCOPE_INTERVENTION_ID: &str = "6f1c2b8e-0d4a-4e7b-9a35-c2e81f5d7b40";

/// The scopes reported for an account that may control the thermostat.
pub const WRITE_SCOPES: &[&str] = &["hvac:control:mode", "hvac:read:data"];
/// The scopes reported for a read-only account.
pub const READ_SCOPES: &[&str] = &["hvac:read:data"];

/// The heat setpoint assumed when ecobee's current one is unknown, tenths of °F (20 °C).
pub const DEFAULT_HEAT_F10: i64 = 680;
/// The cool setpoint assumed when ecobee's current one is unknown, tenths of °F (25 °C).
pub const DEFAULT_COOL_F10: i64 = 770;
/// ecobee's default `heatCoolMinDelta` (5 °F), used when the settings are unknown.
pub const DEFAULT_MIN_DELTA_F10: i64 = 50;
/// The widest setpoint accepted without knowing the thermostat's ranges: 40 °F (4.4 °C).
pub const ABSOLUTE_MIN_F10: i64 = 400;
/// The widest setpoint accepted without knowing the thermostat's ranges: 95 °F (35 °C).
pub const ABSOLUTE_MAX_F10: i64 = 950;

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// Whether a temperature in tenths of °F is a real reading (not a sentinel like -5002).
fn plausible_f10(tenths: f64) -> Option<f64> {
    (tenths.is_finite() && (-500.0..=1500.0).contains(&tenths)).then_some(tenths)
}

/// Tenths of °F to °C, rounded to 0.01 °C.
pub fn f10_to_celsius(tenths: f64) -> f64 {
    round2((tenths / 10.0 - 32.0) * 5.0 / 9.0)
}

/// A difference in tenths of °F to °C, rounded to 0.01 °C.
pub fn f10_delta_to_celsius(tenths: f64) -> f64 {
    round2(tenths / 10.0 * 5.0 / 9.0)
}

/// °C to whole tenths of °F; `None` for values that are not finite or absurd.
pub fn celsius_to_f10(celsius: f64) -> Option<i64> {
    if !celsius.is_finite() || !(-100.0..=100.0).contains(&celsius) {
        return None;
    }
    let tenths = ((celsius * 9.0 / 5.0 + 32.0) * 10.0).round();
    // Bounded by the range check above, so the cast is exact.
    #[allow(clippy::cast_possible_truncation)]
    let tenths = tenths as i64;
    Some(tenths)
}

fn temp(tenths: Option<f64>) -> Option<f64> {
    tenths.and_then(plausible_f10).map(f10_to_celsius)
}

/// ecobee's `hvacMode` as an Enode mode.
pub fn hvac_mode(ecobee: &str) -> HvacMode {
    match ecobee.trim() {
        "heat" | "auxHeatOnly" => HvacMode::Heat,
        "cool" => HvacMode::Cool,
        "auto" => HvacMode::Auto,
        "off" => HvacMode::Off,
        _ => HvacMode::Unknown,
    }
}

/// The `hvacMode` an Enode mode is set as (`None` for `UNKNOWN`).
pub fn ecobee_mode(mode: HvacMode) -> Option<&'static str> {
    match mode {
        HvacMode::Heat => Some("heat"),
        HvacMode::Cool => Some("cool"),
        HvacMode::Auto => Some("auto"),
        HvacMode::Off => Some("off"),
        HvacMode::Unknown => None,
    }
}

/// Whether an equipment status (CSV) has heating or cooling equipment running.
pub fn is_active(equipment_status: &str) -> bool {
    equipment_status
        .split(',')
        .map(str::trim)
        .any(|e| e.starts_with("heatPump") || e.starts_with("auxHeat") || e.starts_with("compCool"))
}

fn parse_date(s: Option<&str>) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(s?.trim(), "%Y-%m-%d").ok()
}

/// Whether a hold event is indefinite: it ends a year or more after it started.
fn indefinite(event: &Event) -> Option<bool> {
    let start = parse_date(event.start_date.as_deref())?;
    let end = parse_date(event.end_date.as_deref())?;
    Some((end - start).num_days() >= 365)
}

/// The hold type from the events (see the module docs); `None` without the events object.
pub fn hold_type(events: Option<&[Event]>) -> Option<HvacHoldType> {
    let events = events?;
    let running: Vec<&Event> = events.iter().filter(|e| e.running == Some(true)).collect();
    let kind = |e: &Event| e.event_type.clone().unwrap_or_default();
    if running.iter().any(|e| kind(e) == "hold" && indefinite(e) == Some(true)) {
        return Some(HvacHoldType::Permanent);
    }
    let scheduled = running.iter().all(|e| matches!(kind(e).as_str(), "autoAway" | "autoHome"));
    scheduled.then_some(HvacHoldType::Scheduled)
}

/// The modes the settings allow (see the module docs); `None` when they do not say.
pub fn capable_modes(settings: &Settings) -> Option<Vec<HvacMode>> {
    let heat_pump = settings.has_heat_pump;
    if heat_pump.is_none() && settings.heat_stages.is_none() && settings.cool_stages.is_none() {
        return None;
    }
    let heat_pump = heat_pump == Some(true);
    let heat = heat_pump || settings.heat_stages.is_some_and(|n| n > 0);
    let cool = heat_pump || settings.cool_stages.is_some_and(|n| n > 0);
    let mut modes = vec![HvacMode::Off];
    if heat && cool && settings.auto_heat_cool_feature_enabled != Some(false) {
        modes.push(HvacMode::Auto);
    }
    if cool {
        modes.push(HvacMode::Cool);
    }
    if heat {
        modes.push(HvacMode::Heat);
    }
    Some(modes)
}

fn range(low: Option<f64>, high: Option<f64>) -> Option<TemperatureRange> {
    let (min, max) = (temp(low), temp(high));
    (min.is_some() || max.is_some()).then_some(TemperatureRange { min, max })
}

/// A UTC date-time as ecobee writes it (`2026-06-15 09:30:00`); RFC 3339 is accepted too.
pub fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S")
        .ok()
        .map(|t| Utc.from_utc_datetime(&t))
        .or_else(|| DateTime::parse_from_rfc3339(s).ok().map(|t| t.with_timezone(&Utc)))
}

fn time_at_most(s: Option<&str>, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    s.and_then(parse_time).map(|t| t.min(now))
}

/// ecobee's name for a `modelNumber`; unknown model numbers are passed through.
pub fn model_name(model_number: &str) -> String {
    let name = match model_number.trim() {
        "idtSmart" => "ecobee Smart",
        "idtEms" => "ecobee Smart EMS",
        "siSmart" => "ecobee Si Smart",
        "siEms" => "ecobee Si EMS",
        "athenaSmart" => "ecobee3 Smart",
        "athenaEms" => "ecobee3 EMS",
        "corSmart" => "Carrier or Bryant Cor",
        "nikeSmart" => "ecobee3 lite Smart",
        "nikeEms" => "ecobee3 lite EMS",
        "apolloSmart" => "ecobee4 Smart",
        "vulcanSmart" => "ecobee SmartThermostat",
        "aresSmart" => "ecobee Smart Thermostat Premium",
        "artemisSmart" => "ecobee Smart Thermostat Enhanced",
        "" => "ecobee thermostat",
        other => other,
    };
    name.to_owned()
}

/// Whether an account's granted scope lets it control thermostats. `smartWrite` and `ems`
/// do; `smartRead` does not; an unknown scope is taken as the `smartWrite` the adapter asks
/// for.
pub fn can_write(scope: Option<&str>) -> bool {
    match scope.map(str::trim) {
        Some(s) if !s.is_empty() => s
            .split([',', ' '])
            .any(|p| p.eq_ignore_ascii_case("smartWrite") || p.eq_ignore_ascii_case("ems")),
        _ => true,
    }
}

/// What the summary says about a thermostat right now (fresher than a cached full read).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Live<'a> {
    /// The summary's connected flag.
    pub connected: Option<bool>,
    /// The summary's equipment status.
    pub equipment_status: Option<&'a str>,
}

/// A thermostat read as the normalized HVAC resource. `live` overrides the connected flag
/// and equipment status of `thermostat` (which may come from a cached read); `can_write`
/// is whether the account granted write access ([`can_write`]).
pub fn hvac_from_thermostat(
    device: &DeviceRef,
    thermostat: &Thermostat,
    live: Live<'_>,
    can_write: bool,
    observed_at: DateTime<Utc>,
) -> Hvac {
    let runtime = thermostat.runtime.clone().unwrap_or_default();
    let settings = thermostat.settings.clone();
    let equipment = live.equipment_status.or(thermostat.equipment_status.as_deref());
    let model = thermostat.model_number.as_deref().filter(|m| !m.trim().is_empty());
    let display_name = thermostat
        .name
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(str::to_owned)
        .unwrap_or_else(|| {
            format!("{} {}", model_name(model.unwrap_or("")), thermostat.identifier)
        });
    let runtime_updated = time_at_most(runtime.last_modified.as_deref(), observed_at);
    let config_updated = time_at_most(thermostat.last_modified.as_deref(), observed_at);
    let thermostat_updated = match (config_updated, runtime_updated) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    };
    let capability = || {
        if can_write {
            Capability::capable()
        } else {
            Capability {
                is_capable: false,
                intervention_ids: vec![WRITE_SCOPE_INTERVENTION_ID.to_owned()],
            }
        }
    };
    let scopes = if can_write { WRITE_SCOPES } else { READ_SCOPES };
    Hvac {
        id: device.id.clone(),
        user_id: device.user_id.clone(),
        vendor: HvacVendor::Ecobee,
        last_seen: observed_at,
        is_reachable: live.connected.or(runtime.connected).unwrap_or(true),
        consumption_rate: None,
        information: HvacInformation {
            brand: BRAND.to_owned(),
            model: model.map(model_name),
            display_name,
            group_name: None,
            category: HvacCategory::Aggregator,
        },
        temperature_state: HvacTemperatureState {
            current_temperature: temp(runtime.actual_temperature),
            is_active: equipment.is_some_and(is_active),
            last_updated: Some(runtime_updated.unwrap_or(observed_at)),
        },
        thermostat_state: HvacThermostatState {
            mode: settings
                .as_ref()
                .and_then(|s| s.hvac_mode.as_deref())
                .map_or(HvacMode::Unknown, hvac_mode),
            heat_setpoint: temp(runtime.desired_heat),
            cool_setpoint: temp(runtime.desired_cool),
            hold_type: hold_type(thermostat.events.as_deref()),
            last_updated: Some(thermostat_updated.unwrap_or(observed_at)),
        },
        scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
        capabilities: HvacCapabilities {
            capable_modes: settings.as_ref().and_then(capable_modes),
            cool_setpoint_range: settings
                .as_ref()
                .and_then(|s| range(s.cool_range_low, s.cool_range_high)),
            heat_setpoint_range: settings
                .as_ref()
                .and_then(|s| range(s.heat_range_low, s.heat_range_high)),
            setpoint_difference_range: settings
                .as_ref()
                .and_then(|s| s.heat_cool_min_delta)
                .filter(|d| d.is_finite() && *d >= 0.0)
                .map(|d| TemperatureDifferenceRange {
                    min: Some(f10_delta_to_celsius(d)),
                    max: None,
                }),
            set_follow_schedule: capability(),
            set_permanent_hold: capability(),
        },
        location: HvacLocation { id: None },
    }
}

/// The thermostats of a summary as discovered devices (ecobee has no sites).
pub fn discovered_devices(revisions: &[Revision]) -> Vec<DiscoveredDevice> {
    let mut seen = std::collections::BTreeSet::new();
    revisions
        .iter()
        .filter(|r| seen.insert(r.identifier.clone()))
        .map(|r| DiscoveredDevice {
            device_type: VendorType::Hvac,
            vendor_id: r.identifier.clone(),
            site_id: None,
            display_name: Some(r.name.trim().to_owned()).filter(|n| !n.is_empty()),
        })
        .collect()
}

/// Why a permanent hold cannot be sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HoldRefusal {
    /// The arguments are wrong (missing, not finite, out of range): `Rejected`.
    Invalid(String),
    /// The thermostat cannot run that mode at all: `Unsupported`.
    ModeNotCapable(String),
}

/// What a permanent hold sends to ecobee.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HoldPlan {
    /// `settings.hvacMode`.
    pub hvac_mode: &'static str,
    /// `setHold` `indefinite` with `(heatHoldTemp, coolHoldTemp)` in tenths of °F; `None` for
    /// `OFF`, which needs no setpoints.
    pub hold: Option<(i64, i64)>,
}

fn whole(x: Option<f64>) -> Option<i64> {
    x.and_then(plausible_f10).map(|t| {
        // Plausible readings are small, so the cast is exact after rounding.
        #[allow(clippy::cast_possible_truncation)]
        let t = t.round() as i64;
        t
    })
}

fn show(tenths: i64) -> String {
    // Small integers convert to f64 exactly.
    #[allow(clippy::cast_precision_loss)]
    let c = f10_to_celsius(tenths as f64);
    format!("{c} °C")
}

/// Turns a permanent hold (setpoints in °C) into ecobee's `hvacMode` plus an `indefinite`
/// `setHold`. ecobee's `setHold` needs both hold temperatures whatever the mode, separated by
/// at least `heatCoolMinDelta`: the setpoint the mode does not use keeps its current value
/// (from `known`, the last full read, when there is one), moved just far enough to keep the
/// separation. `known` also supplies the thermostat's setpoint ranges and capable modes;
/// without it ecobee's defaults and [`ABSOLUTE_MIN_F10`]..=[`ABSOLUTE_MAX_F10`] apply and
/// ecobee itself refuses what the thermostat does not allow.
pub fn plan_permanent_hold(
    mode: HvacMode,
    heat_setpoint: Option<f64>,
    cool_setpoint: Option<f64>,
    known: Option<&Thermostat>,
) -> Result<HoldPlan, HoldRefusal> {
    let Some(hvac_mode) = ecobee_mode(mode) else {
        return Err(HoldRefusal::Invalid(
            "UNKNOWN is not a mode a thermostat can be set to".into(),
        ));
    };
    let settings = known.and_then(|t| t.settings.as_ref());
    if let Some(modes) = settings.and_then(capable_modes)
        && !modes.contains(&mode)
    {
        return Err(HoldRefusal::ModeNotCapable(format!(
            "the thermostat's equipment cannot run mode {}",
            mode.as_str()
        )));
    }
    let convert = |what: &str, c: Option<f64>| -> Result<Option<i64>, HoldRefusal> {
        match c {
            None => Ok(None),
            Some(c) => celsius_to_f10(c).map(Some).ok_or_else(|| {
                HoldRefusal::Invalid(format!("{what} setpoint {c} °C is not a temperature"))
            }),
        }
    };
    let heat = convert("heat", heat_setpoint)?;
    let cool = convert("cool", cool_setpoint)?;
    if mode == HvacMode::Off {
        return Ok(HoldPlan { hvac_mode, hold: None });
    }
    let bound = |low: Option<f64>, high: Option<f64>| {
        let low = whole(low).unwrap_or(ABSOLUTE_MIN_F10);
        let high = whole(high).unwrap_or(ABSOLUTE_MAX_F10);
        (low.min(high), high.max(low))
    };
    let heat_range =
        bound(settings.and_then(|s| s.heat_range_low), settings.and_then(|s| s.heat_range_high));
    let cool_range =
        bound(settings.and_then(|s| s.cool_range_low), settings.and_then(|s| s.cool_range_high));
    let delta = whole(settings.and_then(|s| s.heat_cool_min_delta))
        .filter(|d| *d >= 0)
        .unwrap_or(DEFAULT_MIN_DELTA_F10);
    let runtime = known.and_then(|t| t.runtime.as_ref());
    let current_heat = whole(runtime.and_then(|r| r.desired_heat)).unwrap_or(DEFAULT_HEAT_F10);
    let current_cool = whole(runtime.and_then(|r| r.desired_cool)).unwrap_or(DEFAULT_COOL_F10);
    let check = |what: &str, t: i64, (low, high): (i64, i64)| {
        if (low..=high).contains(&t) {
            Ok(t)
        } else {
            Err(HoldRefusal::Invalid(format!(
                "{what} setpoint {} is outside the thermostat's {}..={}",
                show(t),
                show(low),
                show(high)
            )))
        }
    };
    let require = |what: &str, t: Option<i64>| {
        t.ok_or_else(|| {
            HoldRefusal::Invalid(format!("a {} hold needs a {what} setpoint", mode.as_str()))
        })
    };
    let (h, c) = match mode {
        HvacMode::Heat => {
            let h = check("heat", require("heat", heat)?, heat_range)?;
            let c = match cool {
                Some(c) => check("cool", c, cool_range)?,
                None => current_cool.max(h + delta).clamp(cool_range.0, cool_range.1),
            };
            (h, c)
        }
        HvacMode::Cool => {
            let c = check("cool", require("cool", cool)?, cool_range)?;
            let h = match heat {
                Some(h) => check("heat", h, heat_range)?,
                None => current_heat.min(c - delta).clamp(heat_range.0, heat_range.1),
            };
            (h, c)
        }
        _ => {
            let h = check("heat", require("heat", heat)?, heat_range)?;
            let c = check("cool", require("cool", cool)?, cool_range)?;
            (h, c)
        }
    };
    if c - h < delta {
        // Small integers convert to f64 exactly.
        #[allow(clippy::cast_precision_loss)]
        let delta_c = f10_delta_to_celsius(delta as f64);
        return Err(HoldRefusal::Invalid(format!(
            "the cool setpoint {} must be at least {delta_c} °C above the heat setpoint {}",
            show(c),
            show(h)
        )));
    }
    Ok(HoldPlan { hvac_mode, hold: Some((h, c)) })
}

/// The interventions this adapter names, for an interventions endpoint.
pub fn interventions() -> Vec<Intervention> {
    let introduced_at = Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).single().unwrap_or_default();
    vec![Intervention {
        id: WRITE_SCOPE_INTERVENTION_ID.to_owned(),
        vendor: Some(Vendor::Ecobee),
        vendor_type: Some(VendorType::Hvac),
        brand: Some(BRAND.to_owned()),
        introduced_at,
        domain: InterventionDomain::Account,
        resolution: InterventionResolution {
            title: "The ecobee account was linked read-only".to_owned(),
            description: "The ecobee account granted oemgate read access only (`smartRead`). \
                          Link it again and approve the application with write access \
                          (`smartWrite`) in the ecobee portal to set holds and resume the \
                          schedule."
                .to_owned(),
            access: ResolutionAccess::Remote,
            agent: ResolutionAgent::User,
            action: Some(ResolutionAction::Link),
        },
    }]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Runtime;

    #[test]
    fn conversions() {
        assert_eq!(f10_to_celsius(715.0), 21.94);
        assert_eq!(f10_to_celsius(320.0), 0.0);
        assert_eq!(f10_to_celsius(680.0), 20.0);
        assert_eq!(f10_delta_to_celsius(50.0), 2.78);
        assert_eq!(celsius_to_f10(20.0), Some(680));
        assert_eq!(celsius_to_f10(21.5), Some(707));
        assert_eq!(celsius_to_f10(f64::NAN), None);
        assert_eq!(temp(Some(-5002.0)), None);
        for tenths in 400..950 {
            #[allow(clippy::cast_precision_loss)]
            let c = f10_to_celsius(tenths as f64);
            assert_eq!(celsius_to_f10(c), Some(tenths));
        }
    }

    #[test]
    fn modes() {
        assert_eq!(hvac_mode("auxHeatOnly"), HvacMode::Heat);
        assert_eq!(hvac_mode("heat"), HvacMode::Heat);
        assert_eq!(hvac_mode("cool"), HvacMode::Cool);
        assert_eq!(hvac_mode("auto"), HvacMode::Auto);
        assert_eq!(hvac_mode("off"), HvacMode::Off);
        assert_eq!(hvac_mode("emergencyHeat?"), HvacMode::Unknown);
        for mode in [HvacMode::Heat, HvacMode::Cool, HvacMode::Auto, HvacMode::Off] {
            assert_eq!(hvac_mode(ecobee_mode(mode).unwrap()), mode);
        }
        assert!(is_active("heatPump,fan") && is_active("auxHeat2") && is_active("compCool1"));
        assert!(!is_active("fan") && !is_active("") && !is_active("humidifier,ventilator"));
    }

    #[test]
    fn scopes() {
        assert!(can_write(Some("smartWrite")) && can_write(Some("ems")) && can_write(None));
        assert!(!can_write(Some("smartRead")));
    }

    fn known(heat: f64, cool: f64) -> Thermostat {
        Thermostat {
            identifier: "1".into(),
            name: None,
            thermostat_rev: None,
            model_number: None,
            last_modified: None,
            utc_time: None,
            runtime: Some(Runtime {
                desired_heat: Some(heat),
                desired_cool: Some(cool),
                ..Runtime::default()
            }),
            settings: Some(Settings {
                heat_cool_min_delta: Some(50.0),
                heat_stages: Some(1),
                cool_stages: Some(0),
                has_heat_pump: Some(false),
                heat_range_low: Some(450.0),
                heat_range_high: Some(790.0),
                cool_range_low: Some(650.0),
                cool_range_high: Some(920.0),
                ..Settings::default()
            }),
            equipment_status: None,
            program: None,
            events: None,
        }
    }

    #[test]
    fn holds_keep_the_other_setpoint_and_the_separation() {
        let plan = plan_permanent_hold(HvacMode::Heat, Some(20.0), None, None).unwrap();
        assert_eq!(plan, HoldPlan { hvac_mode: "heat", hold: Some((680, 770)) });
        let plan = plan_permanent_hold(HvacMode::Heat, Some(24.0), None, None).unwrap();
        assert_eq!(plan.hold, Some((752, 802)));
        let plan = plan_permanent_hold(HvacMode::Cool, None, Some(22.0), None).unwrap();
        assert_eq!(plan, HoldPlan { hvac_mode: "cool", hold: Some((666, 716)) });
        let plan = plan_permanent_hold(HvacMode::Cool, None, Some(19.0), None).unwrap();
        assert_eq!(plan.hold, Some((612, 662)));
        let plan = plan_permanent_hold(HvacMode::Auto, Some(19.0), Some(24.0), None).unwrap();
        assert_eq!(plan, HoldPlan { hvac_mode: "auto", hold: Some((662, 752)) });
        let plan = plan_permanent_hold(HvacMode::Off, None, None, None).unwrap();
        assert_eq!(plan, HoldPlan { hvac_mode: "off", hold: None });
        let k = known(698.0, 806.0);
        let plan = plan_permanent_hold(HvacMode::Heat, Some(20.0), None, Some(&k)).unwrap();
        assert_eq!(plan.hold, Some((680, 806)));
    }

    #[test]
    fn holds_refuse_bad_arguments() {
        let invalid = |r: Result<HoldPlan, HoldRefusal>| matches!(r, Err(HoldRefusal::Invalid(_)));
        assert!(invalid(plan_permanent_hold(HvacMode::Unknown, Some(20.0), None, None)));
        assert!(invalid(plan_permanent_hold(HvacMode::Heat, None, Some(25.0), None)));
        assert!(invalid(plan_permanent_hold(HvacMode::Heat, Some(f64::NAN), None, None)));
        assert!(invalid(plan_permanent_hold(HvacMode::Auto, Some(20.0), None, None)));
        assert!(invalid(plan_permanent_hold(HvacMode::Auto, Some(22.0), Some(23.0), None)));
        assert!(invalid(plan_permanent_hold(HvacMode::Heat, Some(40.0), None, None)));
        let k = known(698.0, 806.0);
        assert!(invalid(plan_permanent_hold(HvacMode::Heat, Some(28.0), None, Some(&k))));
        assert!(matches!(
            plan_permanent_hold(HvacMode::Cool, None, Some(24.0), Some(&k)),
            Err(HoldRefusal::ModeNotCapable(_))
        ));
    }

    #[test]
    fn hold_types() {
        let event = |t: &str, running: bool, start: &str, end: &str| Event {
            event_type: Some(t.into()),
            running: Some(running),
            start_date: Some(start.into()),
            end_date: Some(end.into()),
            ..Event::default()
        };
        assert_eq!(hold_type(None), None);
        assert_eq!(hold_type(Some(&[])), Some(HvacHoldType::Scheduled));
        let indefinite = event("hold", true, "2026-06-15", "2035-01-01");
        assert_eq!(
            hold_type(Some(std::slice::from_ref(&indefinite))),
            Some(HvacHoldType::Permanent)
        );
        let temporary = event("hold", true, "2026-06-15", "2026-06-15");
        assert_eq!(hold_type(Some(&[temporary])), None);
        let ended = event("hold", false, "2026-06-15", "2035-01-01");
        assert_eq!(hold_type(Some(&[ended])), Some(HvacHoldType::Scheduled));
        let away = event("autoAway", true, "2026-06-15", "2026-06-15");
        assert_eq!(hold_type(Some(&[away])), Some(HvacHoldType::Scheduled));
        let vacation = event("vacation", true, "2026-06-15", "2026-06-30");
        assert_eq!(hold_type(Some(&[vacation, indefinite])), Some(HvacHoldType::Permanent));
    }

    #[test]
    fn interventions_cover_every_named_id() {
        let ids: Vec<String> = interventions().into_iter().map(|i| i.id).collect();
        assert_eq!(ids, [WRITE_SCOPE_INTERVENTION_ID]);
    }
}
