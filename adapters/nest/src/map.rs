//! Pure mapping between the SDM API and oemgate: SDM devices → the normalized [`Hvac`] and
//! [`DiscoveredDevice`]s, and a permanent hold → the SDM commands that set it.
//!
//! No I/O and no clock: the caller passes the [`DeviceRef`] (for `id` and `userId`) and the
//! time of the observation.
//!
//! # Devices and ids
//!
//! Only devices of type `sdm.devices.types.THERMOSTAT` are HVAC units; cameras, doorbells and
//! displays the user shared as well are skipped by discovery. The vendor id is the device's id
//! (the last segment of `enterprises/{project}/devices/{id}`), the site id the *structure*
//! (home) of its first parent relation (`enterprises/{p}/structures/{s}/rooms/{r}`).
//!
//! # Units
//!
//! SDM reports and takes temperatures in **°C, always**: `sdm.devices.traits.Settings.
//! temperatureScale` (`FAHRENHEIT` on US devices) only says how the thermostat *displays*
//! them and is never used to convert. Values are passed through unrounded.
//!
//! # Modes, setpoints and holds
//!
//! | SDM `ThermostatMode.mode` | normalized mode | setpoints reported |
//! |---|---|---|
//! | `HEAT` | `HEAT` | `heatCelsius` |
//! | `COOL` | `COOL` | `coolCelsius` |
//! | `HEATCOOL` | `AUTO` | both |
//! | `OFF` | `OFF` | none |
//! | anything else, trait missing | `UNKNOWN` | what SDM gives |
//!
//! With Eco on (`ThermostatEco.mode` = `MANUAL_ECO`) SDM leaves the setpoint trait empty and
//! the thermostat keeps the Eco temperatures, so those are reported as the setpoints in effect
//! (again only the ones the mode uses).
//!
//! `holdType` is always `null`: SDM has no schedule API and does not say whether the setpoints
//! come from the user's schedule, from Eco or from a manual change.
//!
//! A permanent hold is `ThermostatMode.SetMode` followed by the setpoint command of that mode
//! ([`hold_commands`]): `SetHeat {heatCelsius}` (HEAT), `SetCool {coolCelsius}` (COOL),
//! `SetRange {heatCelsius, coolCelsius}` (AUTO = `HEATCOOL`), nothing more for OFF. SDM refuses
//! a setpoint command the thermostat's mode does not allow (400 `FAILED_PRECONDITION`), which
//! is why the mode is always sent first.
//!
//! # Capabilities and interventions
//!
//! - `capableModes` are `ThermostatMode.availableModes` (a heat-only system has no `COOL` or
//!   `AUTO`).
//! - The setpoint ranges are the Nest thermostats' documented limits, [`HEAT_RANGE`] and
//!   [`COOL_RANGE`] (9–32 °C), for the modes the system has; SDM itself publishes none.
//!   `setpointDifferenceRange.min` is [`MIN_HEAT_COOL_GAP`] (Nest keeps heat and cool at least
//!   1.5 °C / 3 °F apart in Heat•Cool; **unconfirmed** for SDM), `max` is `null`.
//! - `setPermanentHold` is capable when the thermostat has the mode trait and Eco is off. With
//!   Eco on, SDM refuses setpoint commands: not capable, [`ECO_MODE_INTERVENTION_ID`] (the
//!   adapter does not turn the user's Eco off on its own). Without the mode trait:
//!   [`MODE_CONTROL_INTERVENTION_ID`].
//! - `setFollowSchedule` is never capable: SDM has no schedule API
//!   ([`FOLLOW_SCHEDULE_INTERVENTION_ID`]).
//!
//! # What SDM does not give
//!
//! No power (`consumptionRate` is `null`), no model (`null`), no timestamps on `GET` (only
//! Pub/Sub events carry them): `lastUpdated` is the read time while the thermostat is online
//! and `null` while it is offline (SDM then shows its last known values, of unknown age).

use chrono::{DateTime, TimeZone, Utc};
use oemgate_core::{
    Capability, DeviceRef, DiscoveredDevice, Hvac, HvacCapabilities, HvacCategory, HvacInformation,
    HvacLocation, HvacMode, HvacTemperatureState, HvacThermostatState, HvacVendor, Intervention,
    InterventionDomain, InterventionResolution, ResolutionAccess, ResolutionAgent,
    TemperatureDifferenceRange, TemperatureRange, Vendor, VendorType,
};
use serde_json::{Value, json};

use crate::model::{Device, THERMOSTAT_TYPE};

/// The brand on every resource.
pub const BRAND: &str = "Google Nest";

/// Heat setpoints a Nest thermostat accepts, °C (inclusive).
pub const HEAT_RANGE: (f64, f64) = (9.0, 32.0);
/// Cool setpoints a Nest thermostat accepts, °C (inclusive).
pub const COOL_RANGE: (f64, f64) = (9.0, 32.0);
/// The least difference between the heat and cool setpoints in `HEATCOOL`, °C.
pub const MIN_HEAT_COOL_GAP: f64 = 1.5;

/// Intervention: SDM has no schedule API, so oemgate cannot return a Nest thermostat to its
/// schedule. Stable: clients may store it.
pub const FOLLOW_SCHEDULE_INTERVENTION_ID: &str = "5d2c8e61-7a4f-4b39-9e0d-c1f3a8b2d604";
/// Intervention: Eco is on; setpoints cannot be changed until the user turns it off. Stable.
pub const ECO_MODE_INTERVENTION_ID: &str = "a91e4f27-3c6b-4d85-b0f2-6e7d9c1a5b38";
/// Intervention: the thermostat does not expose its mode to Device Access. Stable.
pub const MODE_CONTROL_INTERVENTION_ID: &str = "e47b0c39-2f8d-4a16-8c5e-93d1b7f2a06c";

/// The scopes oemgate reports on every Nest thermostat.
pub const HVAC_SCOPES: &[&str] = &["hvac:control:mode", "hvac:read:data"];

/// `sdm.devices.commands.ThermostatMode.SetMode`.
pub const SET_MODE: &str = "sdm.devices.commands.ThermostatMode.SetMode";
/// `sdm.devices.commands.ThermostatTemperatureSetpoint.SetHeat`.
pub const SET_HEAT: &str = "sdm.devices.commands.ThermostatTemperatureSetpoint.SetHeat";
/// `sdm.devices.commands.ThermostatTemperatureSetpoint.SetCool`.
pub const SET_COOL: &str = "sdm.devices.commands.ThermostatTemperatureSetpoint.SetCool";
/// `sdm.devices.commands.ThermostatTemperatureSetpoint.SetRange`.
pub const SET_RANGE: &str = "sdm.devices.commands.ThermostatTemperatureSetpoint.SetRange";
/// `sdm.devices.commands.ThermostatEco.SetMode` (the adapter never sends it).
pub const SET_ECO: &str = "sdm.devices.commands.ThermostatEco.SetMode";

/// The normalized mode of an SDM thermostat mode.
pub fn hvac_mode(sdm: &str) -> HvacMode {
    match sdm {
        "HEAT" => HvacMode::Heat,
        "COOL" => HvacMode::Cool,
        "HEATCOOL" => HvacMode::Auto,
        "OFF" => HvacMode::Off,
        _ => HvacMode::Unknown,
    }
}

/// The SDM spelling of a normalized mode (`None` for `UNKNOWN`).
pub fn sdm_mode(mode: HvacMode) -> Option<&'static str> {
    match mode {
        HvacMode::Heat => Some("HEAT"),
        HvacMode::Cool => Some("COOL"),
        HvacMode::Auto => Some("HEATCOOL"),
        HvacMode::Off => Some("OFF"),
        HvacMode::Unknown => None,
    }
}

/// The device id in `enterprises/{project}/devices/{id}`.
pub fn device_id(name: &str) -> Option<&str> {
    let (_, id) = name.rsplit_once("/devices/")?;
    (!id.is_empty() && !id.contains('/')).then_some(id)
}

/// Whether an SDM device id is safe in a URL path (Google's ids are URL-safe base64-like).
pub fn is_valid_device_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 512
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// The structure (home) a device is in, from its parent relations.
pub fn structure_id(device: &Device) -> Option<String> {
    device.parent_relations.iter().find_map(|p| {
        let mut parts = p.parent.split('/');
        parts.find(|s| *s == "structures")?;
        parts.next().filter(|s| !s.is_empty()).map(str::to_owned)
    })
}

/// The room name of a device (its first parent relation's `displayName`).
pub fn room_name(device: &Device) -> Option<String> {
    device
        .parent_relations
        .iter()
        .find_map(|p| p.display_name.as_deref().map(str::trim).filter(|n| !n.is_empty()))
        .map(str::to_owned)
}

/// A name for humans: the device's custom name, else its room's, else `Nest Thermostat`.
pub fn display_name(device: &Device) -> String {
    device
        .traits
        .info
        .as_ref()
        .and_then(|i| i.custom_name.as_deref())
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(str::to_owned)
        .or_else(|| room_name(device))
        .unwrap_or_else(|| "Nest Thermostat".to_owned())
}

/// Whether the device is a thermostat.
pub fn is_thermostat(device: &Device) -> bool {
    device.device_type == THERMOSTAT_TYPE
}

/// The discovered HVAC unit for a device, `None` for anything but a thermostat (or a name
/// without a usable id).
pub fn discovered_device(device: &Device) -> Option<DiscoveredDevice> {
    if !is_thermostat(device) {
        return None;
    }
    let id = device_id(&device.name).filter(|id| is_valid_device_id(id))?;
    Some(DiscoveredDevice {
        device_type: VendorType::Hvac,
        vendor_id: id.to_owned(),
        site_id: structure_id(device),
        display_name: Some(display_name(device)),
    })
}

fn incapable(id: &str) -> Capability {
    Capability { is_capable: false, intervention_ids: vec![id.to_owned()] }
}

fn eco_active(device: &Device) -> bool {
    device.traits.thermostat_eco.as_ref().is_some_and(|e| e.is_active())
}

/// The modes the thermostat reports as available (`None` without the mode trait).
pub fn capable_modes(device: &Device) -> Option<Vec<HvacMode>> {
    let trait_ = device.traits.thermostat_mode.as_ref()?;
    let mut modes: Vec<HvacMode> = Vec::new();
    for m in trait_.available_modes.iter().map(|m| hvac_mode(m)) {
        if m != HvacMode::Unknown && !modes.contains(&m) {
            modes.push(m);
        }
    }
    Some(modes)
}

/// What the thermostat can do through SDM (see the module docs).
pub fn capabilities(device: &Device) -> HvacCapabilities {
    let modes = capable_modes(device);
    let has = |m: HvacMode| modes.as_ref().is_some_and(|ms| ms.contains(&m));
    let range = |(min, max): (f64, f64)| TemperatureRange { min: Some(min), max: Some(max) };
    let heats = has(HvacMode::Heat) || has(HvacMode::Auto);
    let cools = has(HvacMode::Cool) || has(HvacMode::Auto);
    let set_permanent_hold = if device.traits.thermostat_mode.is_none() {
        incapable(MODE_CONTROL_INTERVENTION_ID)
    } else if eco_active(device) {
        incapable(ECO_MODE_INTERVENTION_ID)
    } else {
        Capability::capable()
    };
    HvacCapabilities {
        capable_modes: modes.clone(),
        heat_setpoint_range: heats.then(|| range(HEAT_RANGE)),
        cool_setpoint_range: cools.then(|| range(COOL_RANGE)),
        setpoint_difference_range: has(HvacMode::Auto)
            .then_some(TemperatureDifferenceRange { min: Some(MIN_HEAT_COOL_GAP), max: None }),
        set_follow_schedule: incapable(FOLLOW_SCHEDULE_INTERVENTION_ID),
        set_permanent_hold,
    }
}

/// The setpoints in effect for `mode`: Eco's while Eco is on, else the setpoint trait's; only
/// those the mode uses.
pub fn setpoints(device: &Device, mode: HvacMode) -> (Option<f64>, Option<f64>) {
    let (heat, cool) = match device.traits.thermostat_eco.as_ref().filter(|e| e.is_active()) {
        Some(eco) => (eco.heat_celsius, eco.cool_celsius),
        None => device
            .traits
            .setpoint
            .as_ref()
            .map_or((None, None), |s| (s.heat_celsius, s.cool_celsius)),
    };
    let finite = |v: Option<f64>| v.filter(|x| x.is_finite());
    let (heat, cool) = (finite(heat), finite(cool));
    match mode {
        HvacMode::Heat => (heat, None),
        HvacMode::Cool => (None, cool),
        HvacMode::Auto => (heat, cool),
        HvacMode::Off => (None, None),
        HvacMode::Unknown => (heat, cool),
    }
}

/// Whether the thermostat is reachable (`Connectivity` not `OFFLINE`; a device without the
/// trait was just read, so it counts as reachable).
pub fn is_online(device: &Device) -> bool {
    device.traits.connectivity.as_ref().and_then(|c| c.status.as_deref()) != Some("OFFLINE")
}

/// The normalized HVAC unit of an SDM thermostat read at `observed_at`.
pub fn hvac_from_device(
    reference: &DeviceRef,
    device: &Device,
    observed_at: DateTime<Utc>,
) -> Hvac {
    let online = is_online(device);
    let mode = device
        .traits
        .thermostat_mode
        .as_ref()
        .and_then(|m| m.mode.as_deref())
        .map_or(HvacMode::Unknown, hvac_mode);
    let (heat_setpoint, cool_setpoint) = setpoints(device, mode);
    let current_temperature = device
        .traits
        .temperature
        .as_ref()
        .and_then(|t| t.ambient_temperature_celsius)
        .filter(|t| t.is_finite());
    let is_active = matches!(
        device.traits.thermostat_hvac.as_ref().and_then(|h| h.status.as_deref()),
        Some("HEATING" | "COOLING")
    );
    // SDM gives no timestamps on reads: the read time while online, unknown while offline.
    let last_updated = online.then_some(observed_at);
    Hvac {
        id: reference.id.clone(),
        user_id: reference.user_id.clone(),
        vendor: HvacVendor::Nest,
        last_seen: observed_at,
        is_reachable: online,
        consumption_rate: None,
        information: HvacInformation {
            brand: BRAND.to_owned(),
            model: None,
            display_name: display_name(device),
            group_name: room_name(device),
            category: HvacCategory::Aggregator,
        },
        temperature_state: HvacTemperatureState { current_temperature, is_active, last_updated },
        thermostat_state: HvacThermostatState {
            mode,
            heat_setpoint,
            cool_setpoint,
            hold_type: None,
            last_updated,
        },
        scopes: HVAC_SCOPES.iter().map(|s| (*s).to_owned()).collect(),
        capabilities: capabilities(device),
        location: HvacLocation { id: None },
    }
}

/// One `executeCommand` body.
#[derive(Clone, Debug, PartialEq)]
pub struct SdmCommand {
    /// The command's full name.
    pub command: &'static str,
    /// Its params.
    pub params: Value,
}

impl SdmCommand {
    /// The request body `{"command": …, "params": …}`.
    pub fn body(&self) -> Value {
        json!({ "command": self.command, "params": self.params })
    }

    /// The command's short name (`ThermostatMode.SetMode`) for messages.
    pub fn short_name(&self) -> &'static str {
        self.command.strip_prefix("sdm.devices.commands.").unwrap_or(self.command)
    }
}

fn check_range(what: &str, value: f64, (min, max): (f64, f64)) -> Result<f64, String> {
    if !value.is_finite() {
        return Err(format!("{what} setpoint {value} is not a number"));
    }
    if !(min..=max).contains(&value) {
        return Err(format!("{what} setpoint {value} °C is outside {min}..={max} °C"));
    }
    Ok(value)
}

/// The SDM commands that put a thermostat on a hold of `mode` with the given setpoints, or why
/// the arguments are invalid (refused locally, before any request).
///
/// A missing setpoint keeps the thermostat's current one (only the mode is sent); AUTO takes
/// both setpoints or neither; setpoints a mode does not use are ignored.
pub fn hold_commands(
    mode: HvacMode,
    heat: Option<f64>,
    cool: Option<f64>,
) -> Result<Vec<SdmCommand>, String> {
    let Some(sdm) = sdm_mode(mode) else {
        return Err("a hold needs a mode (HEAT, COOL, AUTO or OFF), not UNKNOWN".to_owned());
    };
    let mut out = vec![SdmCommand { command: SET_MODE, params: json!({ "mode": sdm }) }];
    match mode {
        HvacMode::Heat => {
            if let Some(h) = heat {
                let h = check_range("heat", h, HEAT_RANGE)?;
                out.push(SdmCommand { command: SET_HEAT, params: json!({ "heatCelsius": h }) });
            }
        }
        HvacMode::Cool => {
            if let Some(c) = cool {
                let c = check_range("cool", c, COOL_RANGE)?;
                out.push(SdmCommand { command: SET_COOL, params: json!({ "coolCelsius": c }) });
            }
        }
        HvacMode::Auto => match (heat, cool) {
            (Some(h), Some(c)) => {
                let h = check_range("heat", h, HEAT_RANGE)?;
                let c = check_range("cool", c, COOL_RANGE)?;
                if c - h < MIN_HEAT_COOL_GAP - 1e-9 {
                    return Err(format!(
                        "in AUTO the cool setpoint ({c} °C) must be at least \
                         {MIN_HEAT_COOL_GAP} °C above the heat setpoint ({h} °C)"
                    ));
                }
                out.push(SdmCommand {
                    command: SET_RANGE,
                    params: json!({ "heatCelsius": h, "coolCelsius": c }),
                });
            }
            (None, None) => {}
            _ => return Err("AUTO takes both setpoints or neither".to_owned()),
        },
        HvacMode::Off | HvacMode::Unknown => {}
    }
    Ok(out)
}

/// The interventions this adapter names, for an interventions endpoint.
pub fn interventions() -> Vec<Intervention> {
    let introduced_at = Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).single().unwrap_or_default();
    let make =
        |id: &str, domain: InterventionDomain, title: &str, description: &str| Intervention {
            id: id.to_owned(),
            vendor: Some(Vendor::Nest),
            vendor_type: Some(VendorType::Hvac),
            brand: Some(BRAND.to_owned()),
            introduced_at,
            domain,
            resolution: InterventionResolution {
                title: title.to_owned(),
                description: description.to_owned(),
                access: ResolutionAccess::Remote,
                agent: ResolutionAgent::User,
                action: None,
            },
        };
    vec![
        make(
            FOLLOW_SCHEDULE_INTERVENTION_ID,
            InterventionDomain::Device,
            "Returning to the schedule is not available for Nest thermostats",
            "Google's Device Access API has no schedule control. The schedule can be resumed \
             in the Google Home or Nest app; a manual change made there lasts until the next \
             scheduled temperature.",
        ),
        make(
            ECO_MODE_INTERVENTION_ID,
            InterventionDomain::Device,
            "Eco mode is on",
            "While Eco is on, the thermostat keeps its Eco temperatures and refuses new \
             setpoints. Turn Eco off in the Google Home or Nest app (or on the thermostat).",
        ),
        make(
            MODE_CONTROL_INTERVENTION_ID,
            InterventionDomain::Account,
            "The thermostat's mode is not shared",
            "The thermostat does not expose its mode to Device Access. Share the thermostat \
             with oemgate again in the Google Home app (Partner connections) and allow control.",
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ParentRelation, SetpointTrait, ThermostatEcoTrait, ThermostatModeTrait};

    fn thermostat(mode: &str) -> Device {
        let mut d = Device {
            name: "enterprises/p1/devices/d1".into(),
            device_type: THERMOSTAT_TYPE.into(),
            traits: Default::default(),
            parent_relations: vec![ParentRelation {
                parent: "enterprises/p1/structures/s1/rooms/r1".into(),
                display_name: Some("Living".into()),
            }],
        };
        d.traits.thermostat_mode = Some(ThermostatModeTrait {
            mode: Some(mode.into()),
            available_modes: vec!["HEAT".into(), "COOL".into(), "HEATCOOL".into(), "OFF".into()],
        });
        d.traits.setpoint =
            Some(SetpointTrait { heat_celsius: Some(20.0), cool_celsius: Some(24.0) });
        d
    }

    #[test]
    fn modes_round_trip() {
        for mode in [HvacMode::Heat, HvacMode::Cool, HvacMode::Auto, HvacMode::Off] {
            assert_eq!(hvac_mode(sdm_mode(mode).unwrap()), mode);
        }
        assert_eq!(sdm_mode(HvacMode::Unknown), None);
        assert_eq!(hvac_mode("ECO"), HvacMode::Unknown);
    }

    #[test]
    fn ids_and_structures() {
        let d = thermostat("HEAT");
        assert_eq!(device_id(&d.name), Some("d1"));
        assert_eq!(device_id("enterprises/p1/devices/"), None);
        assert_eq!(device_id("enterprises/p1/structures/s1"), None);
        assert_eq!(structure_id(&d).as_deref(), Some("s1"));
        assert!(is_valid_device_id("AVPHwEu-_x.9"));
        assert!(!is_valid_device_id("a/../b"));
        assert!(!is_valid_device_id("d1:executeCommand"));
        assert!(!is_valid_device_id(""));
        let found = discovered_device(&d).unwrap();
        assert_eq!(found.vendor_id, "d1");
        assert_eq!(found.site_id.as_deref(), Some("s1"));
        assert_eq!(found.display_name.as_deref(), Some("Living"));
    }

    #[test]
    fn setpoints_follow_the_mode() {
        assert_eq!(setpoints(&thermostat("HEAT"), HvacMode::Heat), (Some(20.0), None));
        assert_eq!(setpoints(&thermostat("COOL"), HvacMode::Cool), (None, Some(24.0)));
        assert_eq!(setpoints(&thermostat("HEATCOOL"), HvacMode::Auto), (Some(20.0), Some(24.0)));
        assert_eq!(setpoints(&thermostat("OFF"), HvacMode::Off), (None, None));
        let mut eco = thermostat("HEAT");
        eco.traits.setpoint = Some(SetpointTrait::default());
        eco.traits.thermostat_eco = Some(ThermostatEcoTrait {
            mode: Some("MANUAL_ECO".into()),
            available_modes: vec![],
            heat_celsius: Some(15.5),
            cool_celsius: Some(28.0),
        });
        assert_eq!(setpoints(&eco, HvacMode::Heat), (Some(15.5), None));
        let caps = capabilities(&eco);
        assert!(!caps.set_permanent_hold.is_capable);
        assert_eq!(caps.set_permanent_hold.intervention_ids, vec![ECO_MODE_INTERVENTION_ID]);
    }

    #[test]
    fn holds_become_commands() {
        let c = hold_commands(HvacMode::Heat, Some(21.5), None).unwrap();
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].body(), json!({"command": SET_MODE, "params": {"mode": "HEAT"}}));
        assert_eq!(c[1].body(), json!({"command": SET_HEAT, "params": {"heatCelsius": 21.5}}));
        assert_eq!(c[1].short_name(), "ThermostatTemperatureSetpoint.SetHeat");
        let c = hold_commands(HvacMode::Cool, Some(18.0), Some(25.0)).unwrap();
        assert_eq!(c[1].body(), json!({"command": SET_COOL, "params": {"coolCelsius": 25.0}}));
        let c = hold_commands(HvacMode::Auto, Some(19.0), Some(24.0)).unwrap();
        assert_eq!(c[0].params, json!({"mode": "HEATCOOL"}));
        assert_eq!(c[1].params, json!({"heatCelsius": 19.0, "coolCelsius": 24.0}));
        assert_eq!(hold_commands(HvacMode::Off, Some(19.0), None).unwrap().len(), 1);
        assert_eq!(hold_commands(HvacMode::Heat, None, None).unwrap().len(), 1);
        assert_eq!(hold_commands(HvacMode::Auto, None, None).unwrap().len(), 1);
        for (mode, heat, cool) in [
            (HvacMode::Unknown, None, None),
            (HvacMode::Heat, Some(8.9), None),
            (HvacMode::Heat, Some(f64::NAN), None),
            (HvacMode::Cool, None, Some(32.5)),
            (HvacMode::Auto, Some(21.0), Some(22.0)),
            (HvacMode::Auto, Some(21.0), None),
        ] {
            assert!(hold_commands(mode, heat, cool).is_err(), "{mode:?} {heat:?} {cool:?}");
        }
        assert!(hold_commands(HvacMode::Auto, Some(21.0), Some(22.5)).is_ok());
    }

    #[test]
    fn interventions_cover_every_named_id() {
        let ids: Vec<String> = interventions().into_iter().map(|i| i.id).collect();
        for id in [
            FOLLOW_SCHEDULE_INTERVENTION_ID,
            ECO_MODE_INTERVENTION_ID,
            MODE_CONTROL_INTERVENTION_ID,
        ] {
            assert!(ids.contains(&id.to_owned()));
        }
        let caps = capabilities(&thermostat("HEAT"));
        assert!(caps.set_permanent_hold.is_capable);
        assert!(!caps.set_follow_schedule.is_capable);
        assert!(caps.set_follow_schedule.intervention_ids.iter().all(|id| ids.contains(id)));
    }
}
