//! Pure mapping from tado's JSON to the normalized [`Hvac`], from the zone lists to discovered
//! devices, and from a permanent-hold command to tado's overlay body.
//!
//! No I/O and no clock: the caller passes the [`DeviceRef`] (for `id` and `userId`) and the
//! time of the observation.
//!
//! # Devices and ids
//!
//! A tado *home* is a site; each of its **heating zones** (a room with its radiator
//! thermostats or a wall thermostat) is one HVAC unit. `AIR_CONDITIONING` and `HOT_WATER`
//! zones are not discovered. The vendor id is `"{homeId}:{zoneId}"` ([`vendor_id`]), the
//! site id the home id.
//!
//! # Units
//!
//! tado reports every temperature in °C **and** °F; °C is read, and the °F value is converted
//! (`(f - 32) * 5 / 9`) only when the °C value is missing ([`celsius`]). Setpoints sent to
//! tado are rounded to 0.1 °C (its step for heating zones).
//!
//! # Mode, setpoints, hold
//!
//! | tado zone state | normalized |
//! |---|---|
//! | `setting.power` `ON` | mode `HEAT`, `heatSetpoint` = `setting.temperature.celsius` |
//! | `setting.power` `OFF` | mode `OFF`, `heatSetpoint` `null` (tado sends no temperature) |
//! | anything else | mode `UNKNOWN`, `heatSetpoint` `null` |
//! | `overlay` `null` | `holdType` `SCHEDULED` (the zone follows its smart schedule, or tado's away setting) |
//! | overlay with termination `MANUAL` | `holdType` `PERMANENT` |
//! | overlay with termination `TIMER`, `TADO_MODE` / `NEXT_TIME_BLOCK` | `holdType` `null` (a temporary hold is neither) |
//!
//! A heating zone cannot cool: `coolSetpoint`, `coolSetpointRange` and
//! `setpointDifferenceRange` are `null`, `capableModes` is `[OFF, HEAT]` and
//! `heatSetpointRange` tado's 5–25 °C. `isActive` is `heatingPower.percentage > 0`;
//! `isReachable` is `link.state == ONLINE`. tado does not report the power the heating draws:
//! `consumptionRate` is `null`.
//!
//! # Capabilities
//!
//! Every heating zone can hold a setting (an overlay with termination `MANUAL`) and return to
//! its schedule (deleting the overlay), so both capabilities are capable and name no
//! intervention.
//!
//! # What a zone state does not give
//!
//! The state carries neither the zone's name nor its devices, and reading them costs a second
//! request against a quota of 100 a day, so a read leaves `information.model` and
//! `information.groupName` `null` and constructs `information.displayName` as
//! `tado heating zone {zoneId}`; discovery reports the user's zone name as `display_name`.
//! `thermostatState.lastUpdated` is the read time (tado gives no time for the setting);
//! `temperatureState.lastUpdated` is the sensor's own timestamp.

use chrono::{DateTime, Utc};
use oemgate_core::{
    Capability, DeviceRef, DiscoveredDevice, Hvac, HvacCapabilities, HvacCategory, HvacHoldType,
    HvacInformation, HvacLocation, HvacMode, HvacTemperatureState, HvacThermostatState, HvacVendor,
    TemperatureRange, VendorType,
};

use crate::model::{
    HomeRef, OverlayRequest, OverlaySetting, OverlayTermination, Setting, Temperature, Zone,
    ZoneState,
};

/// The brand on every resource.
pub const BRAND: &str = "tado";
/// The zone type oemgate serves.
pub const HEATING: &str = "HEATING";
/// The lowest heating setpoint tado accepts, °C.
pub const HEAT_SETPOINT_MIN_C: f64 = 5.0;
/// The highest heating setpoint tado accepts, °C.
pub const HEAT_SETPOINT_MAX_C: f64 = 25.0;
/// The scopes oemgate reports on every tado zone.
pub const HVAC_SCOPES: &[&str] = &["hvac:control:mode", "hvac:read:data"];

/// The vendor id of a zone: `"{homeId}:{zoneId}"`.
pub fn vendor_id(home: u64, zone: u64) -> String {
    format!("{home}:{zone}")
}

/// The home and zone ids of a vendor id made by [`vendor_id`] (`None` for anything else).
pub fn parse_vendor_id(id: &str) -> Option<(u64, u64)> {
    let (home, zone) = id.split_once(':')?;
    let number = |s: &str| {
        let ok = !s.is_empty() && s.len() <= 19 && s.bytes().all(|b| b.is_ascii_digit());
        if ok { s.parse::<u64>().ok() } else { None }
    };
    Some((number(home)?, number(zone)?))
}

/// The heating zones of a home, as discovered devices.
pub fn discovered_devices(home: &HomeRef, zones: &[Zone]) -> Vec<DiscoveredDevice> {
    zones
        .iter()
        .filter(|z| z.zone_type == HEATING)
        .map(|z| DiscoveredDevice {
            device_type: VendorType::Hvac,
            vendor_id: vendor_id(home.id, z.id),
            site_id: Some(home.id.to_string()),
            display_name: z.name.clone().filter(|n| !n.trim().is_empty()),
        })
        .collect()
}

/// °F to °C.
pub fn fahrenheit_to_celsius(f: f64) -> f64 {
    (f - 32.0) * 5.0 / 9.0
}

fn finite(x: Option<f64>) -> Option<f64> {
    x.filter(|v| v.is_finite())
}

/// A temperature in °C: tado's `celsius`, else its `fahrenheit` converted.
pub fn celsius(t: &Temperature) -> Option<f64> {
    finite(t.celsius).or_else(|| finite(t.fahrenheit).map(fahrenheit_to_celsius))
}

/// The normalized mode of a zone setting.
pub fn mode_of(setting: Option<&Setting>) -> HvacMode {
    match setting.and_then(|s| s.power.as_deref()) {
        Some("ON") => HvacMode::Heat,
        Some("OFF") => HvacMode::Off,
        _ => HvacMode::Unknown,
    }
}

/// The heating setpoint of a zone setting (only while the power is on).
pub fn heat_setpoint_of(setting: Option<&Setting>) -> Option<f64> {
    let setting = setting?;
    if setting.power.as_deref() != Some("ON") {
        return None;
    }
    setting.temperature.as_ref().and_then(celsius)
}

/// The hold type of a zone state (see the module docs).
pub fn hold_type_of(state: &ZoneState) -> Option<HvacHoldType> {
    let Some(overlay) = &state.overlay else {
        return Some(HvacHoldType::Scheduled);
    };
    let termination = overlay.termination.as_ref()?;
    let kind =
        termination.type_skill_based_app.as_deref().or(termination.termination_type.as_deref());
    match kind {
        Some("MANUAL") => Some(HvacHoldType::Permanent),
        _ => None,
    }
}

/// The zone's heating power, %, where tado reports it.
pub fn heating_power_of(state: &ZoneState) -> Option<f64> {
    finite(state.activity_data_points.as_ref()?.heating_power.as_ref()?.percentage)
}

/// Whether tado's cloud reaches the zone.
pub fn is_reachable(state: &ZoneState) -> bool {
    state.link.as_ref().and_then(|l| l.state.as_deref()) == Some("ONLINE")
}

/// The capabilities of every heating zone.
pub fn heating_capabilities() -> HvacCapabilities {
    HvacCapabilities {
        capable_modes: Some(vec![HvacMode::Off, HvacMode::Heat]),
        cool_setpoint_range: None,
        heat_setpoint_range: Some(TemperatureRange {
            min: Some(HEAT_SETPOINT_MIN_C),
            max: Some(HEAT_SETPOINT_MAX_C),
        }),
        setpoint_difference_range: None,
        set_follow_schedule: Capability::capable(),
        set_permanent_hold: Capability::capable(),
    }
}

/// The zone is not a heating zone (hot water or air conditioning), which oemgate does not
/// serve as an HVAC unit.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("zone of type {zone_type} is not a heating zone")]
pub struct NotAHeatingZone {
    /// The zone's type as tado spells it.
    pub zone_type: String,
}

/// The constructed display name of a zone (the state does not carry the user's name).
pub fn display_name(zone: Option<u64>) -> String {
    match zone {
        Some(zone) => format!("{BRAND} heating zone {zone}"),
        None => format!("{BRAND} heating zone"),
    }
}

/// Maps a zone state to the normalized HVAC unit, read at `observed_at`.
pub fn hvac_from_state(
    device: &DeviceRef,
    state: &ZoneState,
    observed_at: DateTime<Utc>,
) -> Result<Hvac, NotAHeatingZone> {
    let setting = state.setting.as_ref();
    if let Some(zone_type) = setting.and_then(|s| s.zone_type.as_deref())
        && zone_type != HEATING
    {
        return Err(NotAHeatingZone { zone_type: zone_type.to_owned() });
    }
    let inside = state.sensor_data_points.as_ref().and_then(|s| s.inside_temperature.as_ref());
    let current_temperature = inside.and_then(|t| {
        finite(t.celsius).or_else(|| finite(t.fahrenheit).map(fahrenheit_to_celsius))
    });
    let temperature_updated = match (inside.and_then(|t| t.timestamp), current_temperature) {
        (Some(at), _) => Some(at.min(observed_at)),
        (None, Some(_)) => Some(observed_at),
        (None, None) => None,
    };
    let is_active = heating_power_of(state).is_some_and(|p| p > 0.0);
    let zone = parse_vendor_id(&device.vendor_id).map(|(_, zone)| zone);
    Ok(Hvac {
        id: device.id.clone(),
        user_id: device.user_id.clone(),
        vendor: HvacVendor::Tado,
        last_seen: observed_at,
        is_reachable: is_reachable(state),
        consumption_rate: None,
        information: HvacInformation {
            brand: BRAND.to_owned(),
            model: None,
            display_name: display_name(zone),
            group_name: None,
            category: HvacCategory::Heating,
        },
        temperature_state: HvacTemperatureState {
            current_temperature,
            is_active,
            last_updated: temperature_updated,
        },
        thermostat_state: HvacThermostatState {
            mode: mode_of(setting),
            heat_setpoint: heat_setpoint_of(setting),
            cool_setpoint: None,
            hold_type: hold_type_of(state),
            last_updated: Some(observed_at),
        },
        scopes: HVAC_SCOPES.iter().map(|s| (*s).to_owned()).collect(),
        capabilities: heating_capabilities(),
        location: HvacLocation { id: None },
    })
}

/// Why a permanent hold cannot be sent to a heating zone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HoldRefusal {
    /// A heating zone cannot do this at all (COOL, AUTO).
    Unsupported(String),
    /// The arguments are invalid (missing or out-of-range setpoint).
    Rejected(String),
}

/// Rounds a setpoint to tado's 0.1 °C step.
pub fn round_setpoint(c: f64) -> f64 {
    (c * 10.0).round() / 10.0
}

/// The overlay body for a permanent hold: `HEAT` holds the power on at the heat setpoint
/// (5–25 °C), `OFF` switches the zone off; both with termination `MANUAL` (until cancelled).
pub fn permanent_hold_overlay(
    mode: HvacMode,
    heat_setpoint: Option<f64>,
    cool_setpoint: Option<f64>,
) -> Result<OverlayRequest, HoldRefusal> {
    let termination =
        OverlayTermination { type_skill_based_app: "MANUAL".to_owned(), duration_in_seconds: None };
    match mode {
        HvacMode::Heat => {
            if cool_setpoint.is_some() {
                return Err(HoldRefusal::Rejected(
                    "a HEAT hold takes no cooling setpoint (a tado heating zone cannot cool)"
                        .to_owned(),
                ));
            }
            let Some(heat) = heat_setpoint else {
                return Err(HoldRefusal::Rejected("a HEAT hold needs a heating setpoint".into()));
            };
            let valid = heat.is_finite()
                && (HEAT_SETPOINT_MIN_C..=HEAT_SETPOINT_MAX_C).contains(&round_setpoint(heat));
            if !valid {
                return Err(HoldRefusal::Rejected(format!(
                    "heating setpoint {heat} °C is outside tado's \
                     {HEAT_SETPOINT_MIN_C}–{HEAT_SETPOINT_MAX_C} °C"
                )));
            }
            Ok(OverlayRequest {
                setting: OverlaySetting {
                    zone_type: HEATING.to_owned(),
                    power: "ON".to_owned(),
                    temperature: Some(Temperature {
                        celsius: Some(round_setpoint(heat)),
                        fahrenheit: None,
                    }),
                },
                termination,
            })
        }
        HvacMode::Off => {
            if heat_setpoint.is_some() || cool_setpoint.is_some() {
                return Err(HoldRefusal::Rejected("an OFF hold takes no setpoints".to_owned()));
            }
            Ok(OverlayRequest {
                setting: OverlaySetting {
                    zone_type: HEATING.to_owned(),
                    power: "OFF".to_owned(),
                    temperature: None,
                },
                termination,
            })
        }
        HvacMode::Cool | HvacMode::Auto => Err(HoldRefusal::Unsupported(format!(
            "a tado heating zone cannot {}: its capable modes are OFF and HEAT",
            mode.as_str()
        ))),
        HvacMode::Unknown => {
            Err(HoldRefusal::Rejected("UNKNOWN is not a mode a hold can set".to_owned()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vendor_ids_round_trip() {
        assert_eq!(vendor_id(1_234_567, 3), "1234567:3");
        assert_eq!(parse_vendor_id("1234567:3"), Some((1_234_567, 3)));
        for bad in ["", "1", "1:", ":1", "a:1", "1:2:3", "1:-2", "1:2 ", "99999999999999999999:1"] {
            assert_eq!(parse_vendor_id(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn conversions() {
        assert!((fahrenheit_to_celsius(68.9) - 20.5).abs() < 0.01);
        assert_eq!(
            celsius(&Temperature { celsius: Some(20.5), fahrenheit: Some(0.0) }),
            Some(20.5)
        );
        assert_eq!(
            celsius(&Temperature { celsius: None, fahrenheit: Some(32.0) }),
            Some(0.0),
            "fahrenheit only"
        );
        assert_eq!(celsius(&Temperature { celsius: Some(f64::NAN), fahrenheit: None }), None);
        assert_eq!(round_setpoint(20.04), 20.0);
        assert_eq!(round_setpoint(20.06), 20.1);
    }

    #[test]
    fn holds_become_overlays() {
        let heat = permanent_hold_overlay(HvacMode::Heat, Some(21.0), None).unwrap();
        assert_eq!(heat.setting.power, "ON");
        assert_eq!(heat.setting.temperature.unwrap().celsius, Some(21.0));
        assert_eq!(heat.termination.type_skill_based_app, "MANUAL");
        let off = permanent_hold_overlay(HvacMode::Off, None, None).unwrap();
        assert_eq!(off.setting.power, "OFF");
        assert!(off.setting.temperature.is_none());
        for (mode, heat, cool) in [
            (HvacMode::Heat, None, None),
            (HvacMode::Heat, Some(4.9), None),
            (HvacMode::Heat, Some(25.2), None),
            (HvacMode::Heat, Some(f64::NAN), None),
            (HvacMode::Heat, Some(20.0), Some(25.0)),
            (HvacMode::Off, Some(20.0), None),
            (HvacMode::Unknown, None, None),
        ] {
            let r = permanent_hold_overlay(mode, heat, cool);
            assert!(matches!(r, Err(HoldRefusal::Rejected(_))), "{mode:?} {heat:?} {cool:?}");
        }
        for mode in [HvacMode::Cool, HvacMode::Auto] {
            let r = permanent_hold_overlay(mode, Some(20.0), Some(24.0));
            assert!(matches!(r, Err(HoldRefusal::Unsupported(_))), "{mode:?}");
        }
        // 25.04 rounds to 25.0 and is accepted.
        assert!(permanent_hold_overlay(HvacMode::Heat, Some(25.04), None).is_ok());
    }
}
