//! The Smart Device Management API's JSON and Google's OAuth answers: only the fields the
//! adapter reads, tolerant of everything else (Google adds traits and fields freely).
//!
//! A device is `{"name", "type", "traits": {"sdm.devices.traits.X": {...}}, "parentRelations"}`.
//! Every trait is optional: SDM leaves a trait out when it does not apply to the device now (the
//! setpoint trait is empty while the thermostat is OFF or in Eco), and Google's protobuf JSON
//! leaves out empty lists and fields with default values (`GET devices` of an account without
//! devices is `{}`).

use serde::Deserialize;

/// The device type of thermostats.
pub const THERMOSTAT_TYPE: &str = "sdm.devices.types.THERMOSTAT";

/// `GET enterprises/{project}/devices`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct DeviceList {
    /// The devices the user shared with the project (absent when none).
    #[serde(default)]
    pub devices: Vec<Device>,
}

/// One device (`GET enterprises/{project}/devices/{device}` or an entry of the list).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Device {
    /// `enterprises/{project}/devices/{device}`.
    pub name: String,
    /// `sdm.devices.types.THERMOSTAT`, `...CAMERA`, `...DOORBELL`, `...DISPLAY`.
    #[serde(rename = "type", default)]
    pub device_type: String,
    /// The traits, by their full name.
    #[serde(default)]
    pub traits: Traits,
    /// Where the device is: `enterprises/{p}/structures/{s}/rooms/{r}` with the room's name.
    #[serde(default)]
    pub parent_relations: Vec<ParentRelation>,
}

/// A device's parent (a room of a structure).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ParentRelation {
    /// `enterprises/{p}/structures/{s}/rooms/{r}` (or `.../structures/{s}`).
    #[serde(default)]
    pub parent: String,
    /// The room's name as the user set it.
    #[serde(default)]
    pub display_name: Option<String>,
}

/// The traits the adapter reads.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct Traits {
    /// `sdm.devices.traits.Info`.
    #[serde(rename = "sdm.devices.traits.Info", default)]
    pub info: Option<InfoTrait>,
    /// `sdm.devices.traits.Connectivity`.
    #[serde(rename = "sdm.devices.traits.Connectivity", default)]
    pub connectivity: Option<ConnectivityTrait>,
    /// `sdm.devices.traits.Settings` (display only: values are always Celsius).
    #[serde(rename = "sdm.devices.traits.Settings", default)]
    pub settings: Option<SettingsTrait>,
    /// `sdm.devices.traits.ThermostatMode`.
    #[serde(rename = "sdm.devices.traits.ThermostatMode", default)]
    pub thermostat_mode: Option<ThermostatModeTrait>,
    /// `sdm.devices.traits.ThermostatEco`.
    #[serde(rename = "sdm.devices.traits.ThermostatEco", default)]
    pub thermostat_eco: Option<ThermostatEcoTrait>,
    /// `sdm.devices.traits.ThermostatHvac`.
    #[serde(rename = "sdm.devices.traits.ThermostatHvac", default)]
    pub thermostat_hvac: Option<ThermostatHvacTrait>,
    /// `sdm.devices.traits.ThermostatTemperatureSetpoint`.
    #[serde(rename = "sdm.devices.traits.ThermostatTemperatureSetpoint", default)]
    pub setpoint: Option<SetpointTrait>,
    /// `sdm.devices.traits.Temperature`.
    #[serde(rename = "sdm.devices.traits.Temperature", default)]
    pub temperature: Option<TemperatureTrait>,
    /// `sdm.devices.traits.Humidity`.
    #[serde(rename = "sdm.devices.traits.Humidity", default)]
    pub humidity: Option<HumidityTrait>,
}

/// `sdm.devices.traits.Info`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InfoTrait {
    /// The name the user gave the device (often empty for thermostats).
    #[serde(default)]
    pub custom_name: Option<String>,
}

/// `sdm.devices.traits.Connectivity`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct ConnectivityTrait {
    /// `ONLINE` or `OFFLINE`.
    #[serde(default)]
    pub status: Option<String>,
}

/// `sdm.devices.traits.Settings`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SettingsTrait {
    /// `CELSIUS` or `FAHRENHEIT`: how the device displays temperatures. Never a unit of the
    /// API's values.
    #[serde(default)]
    pub temperature_scale: Option<String>,
}

/// `sdm.devices.traits.ThermostatMode`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ThermostatModeTrait {
    /// `HEAT`, `COOL`, `HEATCOOL` or `OFF`.
    #[serde(default)]
    pub mode: Option<String>,
    /// The modes the installation supports (a heat-only system lacks `COOL` and `HEATCOOL`).
    #[serde(default)]
    pub available_modes: Vec<String>,
}

/// `sdm.devices.traits.ThermostatEco`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ThermostatEcoTrait {
    /// `MANUAL_ECO` or `OFF`.
    #[serde(default)]
    pub mode: Option<String>,
    /// `MANUAL_ECO`, `OFF`.
    #[serde(default)]
    pub available_modes: Vec<String>,
    /// Eco: heat below this, °C.
    #[serde(default)]
    pub heat_celsius: Option<f64>,
    /// Eco: cool above this, °C.
    #[serde(default)]
    pub cool_celsius: Option<f64>,
}

impl ThermostatEcoTrait {
    /// Whether Eco is on (the setpoint trait is then empty and refuses commands).
    pub fn is_active(&self) -> bool {
        self.mode.as_deref() == Some("MANUAL_ECO")
    }
}

/// `sdm.devices.traits.ThermostatHvac`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct ThermostatHvacTrait {
    /// `OFF`, `HEATING` or `COOLING`: what the equipment does now.
    #[serde(default)]
    pub status: Option<String>,
}

/// `sdm.devices.traits.ThermostatTemperatureSetpoint`: only the current mode's values.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SetpointTrait {
    /// Heat below this, °C (HEAT and HEATCOOL).
    #[serde(default)]
    pub heat_celsius: Option<f64>,
    /// Cool above this, °C (COOL and HEATCOOL).
    #[serde(default)]
    pub cool_celsius: Option<f64>,
}

/// `sdm.devices.traits.Temperature`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TemperatureTrait {
    /// The measured temperature, °C.
    #[serde(default)]
    pub ambient_temperature_celsius: Option<f64>,
}

/// `sdm.devices.traits.Humidity`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HumidityTrait {
    /// Relative humidity, %.
    #[serde(default)]
    pub ambient_humidity_percent: Option<f64>,
}

/// The body of `executeCommand`: `{}` for thermostat commands (camera commands return
/// `results`). Only checked to be a JSON object.
pub type CommandResponse = serde_json::Map<String, serde_json::Value>;

/// Google's token endpoint answer (`authorization_code` and `refresh_token` grants).
#[derive(Clone, Deserialize)]
pub struct TokenResponse {
    /// `ya29.…`.
    pub access_token: String,
    /// Seconds (3599).
    #[serde(default)]
    pub expires_in: Option<i64>,
    /// `1//…`: only on the code exchange (Google keeps the refresh token on refresh).
    #[serde(default)]
    pub refresh_token: Option<String>,
    /// The granted scopes, space separated.
    #[serde(default)]
    pub scope: Option<String>,
    /// `Bearer`.
    #[serde(default)]
    pub token_type: Option<String>,
}

impl std::fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenResponse")
            .field("access_token", &"<redacted>")
            .field("expires_in", &self.expires_in)
            .field("refresh_token", &self.refresh_token.as_ref().map(|_| "<redacted>"))
            .field("scope", &self.scope)
            .field("token_type", &self.token_type)
            .finish()
    }
}

/// `GET enterprises/{project}/structures` (not read by the adapter; the simulator serves it).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct StructureList {
    /// The structures (absent when none).
    #[serde(default)]
    pub structures: Vec<Structure>,
}

/// One structure (a home).
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Structure {
    /// `enterprises/{project}/structures/{structure}`.
    pub name: String,
    /// `sdm.structures.traits.Info` with `customName`.
    #[serde(default)]
    pub traits: serde_json::Map<String, serde_json::Value>,
}
