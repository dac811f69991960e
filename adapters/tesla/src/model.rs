//! Tesla Fleet API JSON, as far as the adapter reads it.
//!
//! Only the fields the mapping uses are declared; everything else Tesla sends is ignored.
//! Almost every field is optional: Tesla leaves blocks out depending on the `endpoints`
//! query, the car model and the firmware, and the mapping turns absence into `null`.
//! Numbers are read leniently (an integer, a float or `null`), because Tesla is not
//! consistent about `battery_range` vs `battery_level` types across firmware versions.

use serde::{Deserialize, Deserializer};

/// The envelope every Fleet API answer comes in: `{"response": ...}`.
#[derive(Clone, Debug, Deserialize)]
pub struct Envelope<T> {
    /// The payload; `null` on errors.
    pub response: Option<T>,
}

/// Tesla's error body: `{"response":null,"error":"...","error_description":""}`.
///
/// The token endpoint uses the OAuth shape `{"error":"...","error_description":"..."}`,
/// which this type reads as well.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct ErrorBody {
    /// A key (`login_required`) or a sentence (`vehicle unavailable: ...`).
    #[serde(default)]
    pub error: Option<String>,
    /// More text, often empty.
    #[serde(default)]
    pub error_description: Option<String>,
}

/// One entry of `GET /api/1/vehicles`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct VehicleListEntry {
    /// Tesla's numeric id (the path parameter of the old Owner API).
    #[serde(default)]
    pub id: Option<u64>,
    /// The VIN: the id oemgate keeps for the car.
    pub vin: String,
    /// The owner's name for the car.
    #[serde(default)]
    pub display_name: Option<String>,
    /// `online`, `asleep` or `offline`.
    pub state: String,
    /// Whether the car is at a service center.
    #[serde(default)]
    pub in_service: Option<bool>,
}

impl VehicleListEntry {
    /// The connection state as an enum.
    pub fn connection(&self) -> ConnectionState {
        ConnectionState::parse(&self.state)
    }
}

/// The `state` of a vehicle as the Fleet API reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnectionState {
    /// Awake and reachable: `vehicle_data` and commands work.
    Online,
    /// Sleeping: only the vehicles list works without waking the car.
    Asleep,
    /// Not reachable (no connectivity, or a sleeping car on newer firmware).
    Offline,
    /// Anything else Tesla might send.
    Unknown,
}

impl ConnectionState {
    /// Parses Tesla's string (case-insensitive).
    pub fn parse(s: &str) -> Self {
        match s.trim().to_ascii_lowercase().as_str() {
            "online" => ConnectionState::Online,
            "asleep" => ConnectionState::Asleep,
            "offline" => ConnectionState::Offline,
            _ => ConnectionState::Unknown,
        }
    }
}

/// `GET /api/1/vehicles/{vin}/vehicle_data` response.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct VehicleData {
    /// Tesla's numeric id.
    #[serde(default)]
    pub id: Option<u64>,
    /// The VIN.
    #[serde(default)]
    pub vin: Option<String>,
    /// The owner's name for the car.
    #[serde(default)]
    pub display_name: Option<String>,
    /// `online` (always, when data came back).
    #[serde(default)]
    pub state: Option<String>,
    /// The charging block. Required: it is what a poll is for.
    pub charge_state: ChargeState,
    /// Position and motion.
    #[serde(default)]
    pub drive_state: Option<DriveState>,
    /// Static configuration (model, trim).
    #[serde(default)]
    pub vehicle_config: Option<VehicleConfig>,
    /// Odometer, software version, name.
    #[serde(default)]
    pub vehicle_state: Option<VehicleState>,
    /// Temperatures (not mapped yet; read for completeness of the fixture checks).
    #[serde(default)]
    pub climate_state: Option<ClimateState>,
}

/// `charge_state` of `vehicle_data`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct ChargeState {
    /// State of charge in %.
    #[serde(default, deserialize_with = "lenient_f64")]
    pub battery_level: Option<f64>,
    /// Rated range in miles.
    #[serde(default, deserialize_with = "lenient_f64")]
    pub battery_range: Option<f64>,
    /// `Disconnected`, `Stopped`, `Charging`, `Complete`, `Starting`, `NoPower`.
    #[serde(default)]
    pub charging_state: Option<String>,
    /// Charging power in kW (an integer in practice).
    #[serde(default, deserialize_with = "lenient_f64")]
    pub charger_power: Option<f64>,
    /// The charge limit in %.
    #[serde(default, deserialize_with = "lenient_f64")]
    pub charge_limit_soc: Option<f64>,
    /// The current the car asks for, in A (the user's setting).
    #[serde(default, deserialize_with = "lenient_f64")]
    pub charge_current_request: Option<f64>,
    /// The highest current the car may ask for on this connection, in A.
    #[serde(default, deserialize_with = "lenient_f64")]
    pub charge_current_request_max: Option<f64>,
    /// The current set with `set_charging_amps`, in A.
    #[serde(default, deserialize_with = "lenient_f64")]
    pub charge_amps: Option<f64>,
    /// The current actually flowing, in A.
    #[serde(default, deserialize_with = "lenient_f64")]
    pub charger_actual_current: Option<f64>,
    /// Voltage at the charger, in V.
    #[serde(default, deserialize_with = "lenient_f64")]
    pub charger_voltage: Option<f64>,
    /// Minutes until the charge limit is reached (while charging).
    #[serde(default, deserialize_with = "lenient_f64")]
    pub minutes_to_full_charge: Option<f64>,
    /// Hours until the charge limit is reached (while charging).
    #[serde(default, deserialize_with = "lenient_f64")]
    pub time_to_full_charge: Option<f64>,
    /// Epoch milliseconds of this block.
    #[serde(default, deserialize_with = "lenient_i64")]
    pub timestamp: Option<i64>,
}

/// `drive_state` of `vehicle_data` (location comes in here with `location_data`).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct DriveState {
    /// Degrees.
    #[serde(default, deserialize_with = "lenient_f64")]
    pub latitude: Option<f64>,
    /// Degrees.
    #[serde(default, deserialize_with = "lenient_f64")]
    pub longitude: Option<f64>,
    /// `P`, `D`, `R`, `N` or null.
    #[serde(default)]
    pub shift_state: Option<String>,
    /// mph, null when parked.
    #[serde(default, deserialize_with = "lenient_f64")]
    pub speed: Option<f64>,
    /// Epoch seconds of the GPS fix.
    #[serde(default, deserialize_with = "lenient_i64")]
    pub gps_as_of: Option<i64>,
    /// Epoch milliseconds of this block.
    #[serde(default, deserialize_with = "lenient_i64")]
    pub timestamp: Option<i64>,
}

/// `vehicle_config` of `vehicle_data`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct VehicleConfig {
    /// `models`, `models2`, `model3`, `modelx`, `modely`, `cybertruck`, ...
    #[serde(default)]
    pub car_type: Option<String>,
    /// `74d`, `p100d`, ...
    #[serde(default)]
    pub trim_badging: Option<String>,
}

/// `vehicle_state` of `vehicle_data`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct VehicleState {
    /// Odometer in miles.
    #[serde(default, deserialize_with = "lenient_f64")]
    pub odometer: Option<f64>,
    /// The owner's name for the car.
    #[serde(default)]
    pub vehicle_name: Option<String>,
    /// Firmware version.
    #[serde(default)]
    pub car_version: Option<String>,
    /// Epoch milliseconds of this block.
    #[serde(default, deserialize_with = "lenient_i64")]
    pub timestamp: Option<i64>,
}

/// `climate_state` of `vehicle_data`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct ClimateState {
    /// Cabin temperature in °C.
    #[serde(default, deserialize_with = "lenient_f64")]
    pub inside_temp: Option<f64>,
    /// Outside temperature in °C.
    #[serde(default, deserialize_with = "lenient_f64")]
    pub outside_temp: Option<f64>,
}

/// A command's answer: `{"response":{"result":true,"reason":""}}`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct CommandResponse {
    /// Whether the car accepted the command.
    pub result: bool,
    /// Why not (`already_set`, `not_charging`, `is_charging`, `disconnected`, `complete`...).
    #[serde(default)]
    pub reason: Option<String>,
}

/// `POST /oauth2/v3/token` success.
#[derive(Clone, Deserialize)]
pub struct TokenResponse {
    /// The bearer token.
    pub access_token: String,
    /// The next refresh token (single-use).
    #[serde(default)]
    pub refresh_token: Option<String>,
    /// Seconds the access token is valid.
    #[serde(default, deserialize_with = "lenient_i64")]
    pub expires_in: Option<i64>,
    /// `Bearer`.
    #[serde(default)]
    pub token_type: Option<String>,
}

impl std::fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenResponse")
            .field("access_token", &"<redacted>")
            .field("refresh_token", &self.refresh_token.as_ref().map(|_| "<redacted>"))
            .field("expires_in", &self.expires_in)
            .field("token_type", &self.token_type)
            .finish()
    }
}

/// The `charging_state` strings, parsed. Unknown strings are kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChargingState {
    /// No cable.
    Disconnected,
    /// Plugged in, not charging.
    Stopped,
    /// Charging about to begin.
    Starting,
    /// Charging.
    Charging,
    /// The charge limit is reached.
    Complete,
    /// Plugged in but the charger delivers no power.
    NoPower,
    /// Anything else.
    Other(String),
}

impl ChargingState {
    /// Parses Tesla's string (case-insensitive, surrounding blanks ignored).
    pub fn parse(s: &str) -> Self {
        match s.trim().to_ascii_lowercase().as_str() {
            "disconnected" => ChargingState::Disconnected,
            "stopped" => ChargingState::Stopped,
            "starting" => ChargingState::Starting,
            "charging" => ChargingState::Charging,
            "complete" => ChargingState::Complete,
            "nopower" | "no_power" => ChargingState::NoPower,
            _ => ChargingState::Other(s.to_owned()),
        }
    }

    /// Tesla's spelling.
    pub fn as_str(&self) -> &str {
        match self {
            ChargingState::Disconnected => "Disconnected",
            ChargingState::Stopped => "Stopped",
            ChargingState::Starting => "Starting",
            ChargingState::Charging => "Charging",
            ChargingState::Complete => "Complete",
            ChargingState::NoPower => "NoPower",
            ChargingState::Other(s) => s,
        }
    }
}

/// A JSON number (integer or float), a numeric string, or null/absent.
/// Anything else (an object, a bool, a non-numeric string) reads as `None`.
fn lenient_f64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    let value = Option::<serde_json::Value>::deserialize(d)?;
    Ok(value.and_then(|v| match v {
        serde_json::Value::Number(n) => n.as_f64().filter(|f| f.is_finite()),
        serde_json::Value::String(s) => s.trim().parse::<f64>().ok().filter(|f| f.is_finite()),
        _ => None,
    }))
}

/// Like [`lenient_f64`], truncated to an integer.
fn lenient_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    let value = lenient_f64(d)?;
    Ok(value.and_then(|f| {
        if f.abs() < 9.0e15 {
            #[allow(clippy::cast_possible_truncation)]
            Some(f as i64)
        } else {
            None
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_reference_example() {
        let raw = r#"{"response":{"id":1234,"vin":"LRWXF7EK4KC700000","state":"online",
 "charge_state":{"battery_level":77,"charging_state":"Stopped","charger_power":0,
  "charge_amps":16,"charge_current_request":16,"charge_current_request_max":16,
  "charger_actual_current":0,"charger_voltage":2,"charge_limit_soc":80,
  "charge_port_latch":"Engaged","conn_charge_cable":"IEC","timestamp":1705707520649}}}"#;
        let env: Envelope<VehicleData> = serde_json::from_str(raw).unwrap();
        let data = env.response.unwrap();
        assert_eq!(data.vin.as_deref(), Some("LRWXF7EK4KC700000"));
        assert_eq!(data.charge_state.battery_level, Some(77.0));
        assert_eq!(data.charge_state.timestamp, Some(1_705_707_520_649));
        assert_eq!(data.charge_state.charging_state.as_deref(), Some("Stopped"));
        assert!(data.drive_state.is_none());
    }

    #[test]
    fn lenient_numbers() {
        let raw = r#"{"battery_level":"55.5","battery_range":null,"charger_power":{},"timestamp":1.7e12}"#;
        let cs: ChargeState = serde_json::from_str(raw).unwrap();
        assert_eq!(cs.battery_level, Some(55.5));
        assert_eq!(cs.battery_range, None);
        assert_eq!(cs.charger_power, None);
        assert_eq!(cs.timestamp, Some(1_700_000_000_000));
    }

    #[test]
    fn charging_state_parse_round_trip() {
        for s in ["Disconnected", "Stopped", "Starting", "Charging", "Complete", "NoPower"] {
            assert_eq!(ChargingState::parse(s).as_str(), s);
        }
        assert_eq!(ChargingState::parse("Weird"), ChargingState::Other("Weird".into()));
        assert_eq!(ConnectionState::parse("ASLEEP"), ConnectionState::Asleep);
        assert_eq!(ConnectionState::parse("waking"), ConnectionState::Unknown);
    }
}
