//! HVAC units: the `Hvac` resource (schema `GetHVACResponse`), its nested objects, and the
//! permanent-hold payloads and target states used by HVAC actions.

use serde::{Deserialize, Serialize};

use super::common::{Capability, Timestamp, Vendor, nullable};

/// A heater, heat pump, air conditioner or thermostat (schema `GetHVACResponse`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Hvac {
    /// HVAC unit ID.
    pub id: String,
    /// The user that linked this unit.
    pub user_id: String,
    /// The unit's vendor.
    pub vendor: HvacVendor,
    /// Last successful communication with the vendor, or when the unit was linked.
    #[schema(value_type = String, format = DateTime)]
    pub last_seen: Timestamp,
    /// Whether live data is currently reachable.
    pub is_reachable: bool,
    /// Current power consumption in kW.
    #[serde(deserialize_with = "nullable::deserialize")]
    #[schema(required = true)]
    pub consumption_rate: Option<f64>,
    /// Descriptive information.
    pub information: HvacInformation,
    /// Measured temperature.
    pub temperature_state: HvacTemperatureState,
    /// Current mode, setpoints and hold.
    pub thermostat_state: HvacThermostatState,
    /// Scopes the user granted for this unit.
    pub scopes: Vec<String>,
    /// What this unit supports.
    pub capabilities: HvacCapabilities,
    /// The Location this unit is at.
    pub location: HvacLocation,
}

/// Descriptive information about an HVAC unit (schema `GetHVACInformation`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HvacInformation {
    /// Human-readable brand.
    pub brand: String,
    /// Model name.
    #[serde(deserialize_with = "nullable::deserialize")]
    #[schema(required = true)]
    pub model: Option<String>,
    /// Name shown to the user.
    pub display_name: String,
    /// Group (room, zone) the unit belongs to.
    #[serde(deserialize_with = "nullable::deserialize")]
    #[schema(required = true)]
    pub group_name: Option<String>,
    /// Kind of unit.
    pub category: HvacCategory,
}

/// Measured temperature of an HVAC unit (schema `GetHVACTemperatureState`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HvacTemperatureState {
    /// Current temperature in °C.
    #[serde(deserialize_with = "nullable::deserialize")]
    #[schema(required = true)]
    pub current_temperature: Option<f64>,
    /// The unit is actively heating or cooling.
    pub is_active: bool,
    /// Time of the last temperature update.
    #[serde(deserialize_with = "nullable::deserialize")]
    #[schema(required = true)]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_updated: Option<Timestamp>,
}

/// Mode, setpoints and hold of an HVAC unit (schema `GetHVACThermostatState`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HvacThermostatState {
    /// Current mode.
    pub mode: HvacMode,
    /// Heating setpoint in °C.
    #[serde(deserialize_with = "nullable::deserialize")]
    #[schema(required = true)]
    pub heat_setpoint: Option<f64>,
    /// Cooling setpoint in °C.
    #[serde(deserialize_with = "nullable::deserialize")]
    #[schema(required = true)]
    pub cool_setpoint: Option<f64>,
    /// Whether the unit holds a setting or follows its schedule.
    #[serde(deserialize_with = "nullable::deserialize")]
    #[schema(required = true)]
    pub hold_type: Option<HvacHoldType>,
    /// Time of the last thermostat update.
    #[serde(deserialize_with = "nullable::deserialize")]
    #[schema(required = true)]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_updated: Option<Timestamp>,
}

/// What an HVAC unit supports (schema `GetHVACCapabilities`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HvacCapabilities {
    /// Modes the unit can be set to.
    #[serde(deserialize_with = "nullable::deserialize")]
    #[schema(required = true)]
    pub capable_modes: Option<Vec<HvacMode>>,
    /// Allowed cooling setpoints.
    #[serde(deserialize_with = "nullable::deserialize")]
    #[schema(required = true)]
    pub cool_setpoint_range: Option<TemperatureRange>,
    /// Allowed heating setpoints.
    #[serde(deserialize_with = "nullable::deserialize")]
    #[schema(required = true)]
    pub heat_setpoint_range: Option<TemperatureRange>,
    /// Allowed difference between heating and cooling setpoints in `AUTO`.
    #[serde(deserialize_with = "nullable::deserialize")]
    #[schema(required = true)]
    pub setpoint_difference_range: Option<TemperatureDifferenceRange>,
    /// Supports returning to the unit's schedule.
    pub set_follow_schedule: Capability,
    /// Supports permanent holds.
    pub set_permanent_hold: Capability,
}

/// A temperature range in °C with possibly unknown bounds (schema `NullableTemperatureRange`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TemperatureRange {
    /// Lower bound.
    #[serde(deserialize_with = "nullable::deserialize")]
    #[schema(required = true)]
    pub min: Option<f64>,
    /// Upper bound.
    #[serde(deserialize_with = "nullable::deserialize")]
    #[schema(required = true)]
    pub max: Option<f64>,
}

/// A range of temperature differences in °C (schema `NullableTemperatureDifferenceRange`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TemperatureDifferenceRange {
    /// Lower bound.
    #[serde(deserialize_with = "nullable::deserialize")]
    #[schema(required = true)]
    pub min: Option<f64>,
    /// Upper bound.
    #[serde(deserialize_with = "nullable::deserialize")]
    #[schema(required = true)]
    pub max: Option<f64>,
}

/// The Location an HVAC unit is at (schema `GetHVACLocation`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HvacLocation {
    /// ID of the Location, if any.
    #[serde(deserialize_with = "nullable::deserialize")]
    #[schema(required = true)]
    pub id: Option<String>,
}

wire_enum! {
    /// Kind of HVAC unit (schema `GetHVACCategory`).
    pub enum HvacCategory {
        Heating => "HEATING",
        Cooling => "COOLING",
        HeatPump => "HEAT_PUMP",
        Aggregator => "AGGREGATOR",
    }
}

wire_enum! {
    /// HVAC mode (schema `HvacMode`).
    pub enum HvacMode {
        /// Not available from the vendor or not supported.
        Unknown => "UNKNOWN",
        /// Turned off.
        Off => "OFF",
        /// Alternates between heating and cooling to stay within the setpoints.
        Auto => "AUTO",
        /// Cools only.
        Cool => "COOL",
        /// Heats only.
        Heat => "HEAT",
    }
}

wire_enum! {
    /// Whether an HVAC unit holds a setting or follows a schedule (schema `GetHVACHoldType`;
    /// values from the OpenAPI `HvacHoldType`).
    pub enum HvacHoldType {
        Permanent => "PERMANENT",
        Scheduled => "SCHEDULED",
    }
}

wire_enum! {
    /// The `holdType` of a permanent-hold target state: always `PERMANENT`.
    pub enum PermanentHoldType {
        Permanent => "PERMANENT",
    }
}

wire_enum! {
    /// The `holdType` of a follow-schedule target state: always `SCHEDULED`.
    pub enum ScheduledHoldType {
        Scheduled => "SCHEDULED",
    }
}

/// Body of a set-permanent-hold request, tagged by `mode` (schema `CoolPermanentHold`,
/// `HeatPermanentHold`, `AutoPermanentHold`, `OffPermanentHold`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "mode")]
pub enum HvacPermanentHold {
    /// `"mode": "COOL"`.
    #[serde(rename = "COOL")]
    Cool(CoolPermanentHold),
    /// `"mode": "HEAT"`.
    #[serde(rename = "HEAT")]
    Heat(HeatPermanentHold),
    /// `"mode": "AUTO"`.
    #[serde(rename = "AUTO")]
    Auto(AutoPermanentHold),
    /// `"mode": "OFF"`.
    #[serde(rename = "OFF")]
    Off(OffPermanentHold),
}

/// Cool to a setpoint (schema `CoolPermanentHold`, without its `mode` tag).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CoolPermanentHold {
    /// Cooling setpoint in °C.
    pub cool_setpoint: f64,
}

/// Heat to a setpoint (schema `HeatPermanentHold`, without its `mode` tag).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HeatPermanentHold {
    /// Heating setpoint in °C.
    pub heat_setpoint: f64,
}

/// Stay between two setpoints (schema `AutoPermanentHold`, without its `mode` tag).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AutoPermanentHold {
    /// Cooling setpoint in °C.
    pub cool_setpoint: f64,
    /// Heating setpoint in °C.
    pub heat_setpoint: f64,
}

/// Turn off (schema `OffPermanentHold`, without its `mode` tag).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OffPermanentHold {}

/// Target of a permanent-hold HVAC action, tagged by `mode` (schema `CoolTargetState`,
/// `HeatTargetState`, `AutoTargetState`, `OffTargetState`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "mode")]
pub enum PermanentHoldTargetState {
    /// `"mode": "COOL"`.
    #[serde(rename = "COOL")]
    Cool(CoolTargetState),
    /// `"mode": "HEAT"`.
    #[serde(rename = "HEAT")]
    Heat(HeatTargetState),
    /// `"mode": "AUTO"`.
    #[serde(rename = "AUTO")]
    Auto(AutoTargetState),
    /// `"mode": "OFF"`.
    #[serde(rename = "OFF")]
    Off(OffTargetState),
}

/// Cool to a setpoint, permanently (schema `CoolTargetState`, without its `mode` tag).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CoolTargetState {
    /// Cooling setpoint in °C.
    pub cool_setpoint: f64,
    /// Always `PERMANENT`.
    pub hold_type: PermanentHoldType,
}

/// Heat to a setpoint, permanently (schema `HeatTargetState`, without its `mode` tag).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HeatTargetState {
    /// Heating setpoint in °C.
    pub heat_setpoint: f64,
    /// Always `PERMANENT`.
    pub hold_type: PermanentHoldType,
}

/// Stay between two setpoints, permanently (schema `AutoTargetState`, without its `mode` tag).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AutoTargetState {
    /// Cooling setpoint in °C.
    pub cool_setpoint: f64,
    /// Heating setpoint in °C.
    pub heat_setpoint: f64,
    /// Always `PERMANENT`.
    pub hold_type: PermanentHoldType,
}

/// Off, permanently (schema `OffTargetState`, without its `mode` tag).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OffTargetState {
    /// Always `PERMANENT`.
    pub hold_type: PermanentHoldType,
}

/// Target of a follow-schedule HVAC action (schema `ScheduledTargetState`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScheduledTargetState {
    /// Always `SCHEDULED`.
    pub hold_type: ScheduledHoldType,
}

impl HvacPermanentHold {
    /// The hold's mode.
    pub const fn mode(&self) -> HvacMode {
        match self {
            HvacPermanentHold::Cool(_) => HvacMode::Cool,
            HvacPermanentHold::Heat(_) => HvacMode::Heat,
            HvacPermanentHold::Auto(_) => HvacMode::Auto,
            HvacPermanentHold::Off(_) => HvacMode::Off,
        }
    }

    /// The action target state this request asks for.
    pub fn target_state(&self) -> PermanentHoldTargetState {
        let hold_type = PermanentHoldType::Permanent;
        match self {
            HvacPermanentHold::Cool(h) => PermanentHoldTargetState::Cool(CoolTargetState {
                cool_setpoint: h.cool_setpoint,
                hold_type,
            }),
            HvacPermanentHold::Heat(h) => PermanentHoldTargetState::Heat(HeatTargetState {
                heat_setpoint: h.heat_setpoint,
                hold_type,
            }),
            HvacPermanentHold::Auto(h) => PermanentHoldTargetState::Auto(AutoTargetState {
                cool_setpoint: h.cool_setpoint,
                heat_setpoint: h.heat_setpoint,
                hold_type,
            }),
            HvacPermanentHold::Off(_) => {
                PermanentHoldTargetState::Off(OffTargetState { hold_type })
            }
        }
    }
}

impl PermanentHoldTargetState {
    /// The target's mode.
    pub const fn mode(&self) -> HvacMode {
        match self {
            PermanentHoldTargetState::Cool(_) => HvacMode::Cool,
            PermanentHoldTargetState::Heat(_) => HvacMode::Heat,
            PermanentHoldTargetState::Auto(_) => HvacMode::Auto,
            PermanentHoldTargetState::Off(_) => HvacMode::Off,
        }
    }
}

wire_enum! {
    /// An HVAC vendor (schema `HvacVendor`).
    pub enum HvacVendor {
        Tado => "TADO",
        Mill => "MILL",
        Adax => "ADAX",
        Ecobee => "ECOBEE",
        Sensibo => "SENSIBO",
        Honeywell => "HONEYWELL",
        Resideo => "RESIDEO",
        Mitsubishi => "MITSUBISHI",
        Micromatic => "MICROMATIC",
        Nibe => "NIBE",
        Panasonic => "PANASONIC",
        Toshiba => "TOSHIBA",
        Daikin => "DAIKIN",
        Nest => "NEST",
        Fujitsu => "FUJITSU",
        Bosch => "BOSCH",
        Netatmo => "NETATMO",
    }
}

impl From<HvacVendor> for Vendor {
    fn from(v: HvacVendor) -> Self {
        match v {
            HvacVendor::Tado => Vendor::Tado,
            HvacVendor::Mill => Vendor::Mill,
            HvacVendor::Adax => Vendor::Adax,
            HvacVendor::Ecobee => Vendor::Ecobee,
            HvacVendor::Sensibo => Vendor::Sensibo,
            HvacVendor::Honeywell => Vendor::Honeywell,
            HvacVendor::Resideo => Vendor::Resideo,
            HvacVendor::Mitsubishi => Vendor::Mitsubishi,
            HvacVendor::Micromatic => Vendor::Micromatic,
            HvacVendor::Nibe => Vendor::Nibe,
            HvacVendor::Panasonic => Vendor::Panasonic,
            HvacVendor::Toshiba => Vendor::Toshiba,
            HvacVendor::Daikin => Vendor::Daikin,
            HvacVendor::Nest => Vendor::Nest,
            HvacVendor::Fujitsu => Vendor::Fujitsu,
            HvacVendor::Bosch => Vendor::Bosch,
            HvacVendor::Netatmo => Vendor::Netatmo,
        }
    }
}
