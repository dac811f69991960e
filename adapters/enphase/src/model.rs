//! Enphase Enlighten API v4 JSON, as far as the adapter reads it.
//!
//! Only the fields the mapping uses are declared; anything else Enphase sends is ignored.
//! Almost every field is optional (Enphase leaves battery fields out for systems without
//! batteries, and `null`s are common in the v4 examples); the mapping turns absence into
//! `null`. The few fields that identify an answer (`system_id`, the `systems` list, a token's
//! `access_token`) are required, so a body of the wrong shape fails to parse and becomes a
//! `Protocol` error.
//!
//! Numbers are read leniently: Enphase sends integers, but a float or a numeric string is
//! accepted too. Units are Enphase's own (W, Wh, epoch seconds, percent); [`crate::map`]
//! converts.

use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// A number that may come as an integer, a float or a numeric string; anything else is
/// `None` (a missing value, not an error).
fn lenient_f64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    let v = Option::<Value>::deserialize(d)?;
    Ok(v.as_ref().and_then(value_f64))
}

/// An epoch in seconds (integer or float).
fn lenient_epoch<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    let v = Option::<Value>::deserialize(d)?;
    Ok(v.as_ref().and_then(value_f64).filter(|f| f.is_finite() && f.abs() < 1.0e13).map(|f| {
        // In range (checked above), so the cast is exact after flooring.
        #[allow(clippy::cast_possible_truncation)]
        let secs = f.floor() as i64;
        secs
    }))
}

/// A string, or a number rendered as a string (`enl_uid` comes both ways).
fn lenient_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let v = Option::<Value>::deserialize(d)?;
    Ok(match v {
        Some(Value::String(s)) => Some(s),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    })
}

/// A system id: a non-negative integer, or a string of digits. Required where declared.
fn system_id<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let v = Value::deserialize(d)?;
    let id = match &v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse::<u64>().ok(),
        _ => None,
    };
    id.ok_or_else(|| serde::de::Error::custom(format!("system_id {v} is not a numeric id")))
}

fn value_f64(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    }
    .filter(|f| f.is_finite())
}

/// `POST /oauth/token`: the authorization-code, refresh and password grants.
#[derive(Clone, Deserialize)]
pub struct TokenResponse {
    /// The bearer token (a JWT at Enphase; opaque here).
    pub access_token: String,
    /// The new refresh token: every refresh issues one and spends the old.
    #[serde(default)]
    pub refresh_token: Option<String>,
    /// Seconds until the access token expires (about a day: `86393`).
    #[serde(default, deserialize_with = "lenient_epoch")]
    pub expires_in: Option<i64>,
    /// `bearer`.
    #[serde(default)]
    pub token_type: Option<String>,
    /// Enphase's id of the user that approved the application.
    #[serde(default, deserialize_with = "lenient_string")]
    pub enl_uid: Option<String>,
    /// Enphase's id of the application's client.
    #[serde(default, deserialize_with = "lenient_string")]
    pub enl_cid: Option<String>,
}

impl std::fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenResponse")
            .field("access_token", &"<redacted>")
            .field("refresh_token", &self.refresh_token.as_ref().map(|_| "<redacted>"))
            .field("expires_in", &self.expires_in)
            .field("enl_uid", &self.enl_uid)
            .finish_non_exhaustive()
    }
}

/// `GET /api/v4/systems?page=&size=`: one page of the user's systems.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct SystemsPage {
    /// Systems on the account, over all pages.
    #[serde(default, deserialize_with = "lenient_epoch")]
    pub total: Option<i64>,
    /// The page number (1-based).
    #[serde(default, deserialize_with = "lenient_epoch")]
    pub current_page: Option<i64>,
    /// The page size asked for.
    #[serde(default, deserialize_with = "lenient_epoch")]
    pub size: Option<i64>,
    /// Systems on this page.
    #[serde(default, deserialize_with = "lenient_epoch")]
    pub count: Option<i64>,
    /// The systems on this page (required: a page without the list is the wrong shape).
    pub systems: Vec<SystemEntry>,
}

/// One system of the systems list.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct SystemEntry {
    /// Enphase's numeric id of the system: oemgate's vendor id and site id.
    #[serde(deserialize_with = "system_id")]
    pub system_id: u64,
    /// The owner's name for the system.
    #[serde(default)]
    pub name: Option<String>,
    /// IANA time zone of the system.
    #[serde(default)]
    pub timezone: Option<String>,
    /// `normal`, `comm`, `micro`, `meter`, `battery`, ...
    #[serde(default)]
    pub status: Option<String>,
}

/// `GET /api/v4/systems/{id}/devices`: the system's devices, grouped by kind.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct SystemDevices {
    /// The system.
    #[serde(deserialize_with = "system_id")]
    pub system_id: u64,
    /// The devices by kind (required).
    pub devices: DeviceGroups,
}

/// The device kinds of a system. Kinds the system lacks are absent or empty.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct DeviceGroups {
    /// Microinverters (the PV array).
    #[serde(default)]
    pub micros: Vec<DeviceEntry>,
    /// Revenue-grade and CT meters (production, net or total consumption).
    #[serde(default)]
    pub meters: Vec<DeviceEntry>,
    /// IQ Gateways (Envoys).
    #[serde(default)]
    pub gateways: Vec<DeviceEntry>,
    /// IQ Batteries (Encharge).
    #[serde(default)]
    pub encharges: Vec<DeviceEntry>,
}

/// One device of a system.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct DeviceEntry {
    /// Enphase's device id.
    #[serde(default, deserialize_with = "lenient_epoch")]
    pub id: Option<i64>,
    /// Display name (`production`, `consumption`, `IQ8+ Microinverter`, ...).
    #[serde(default)]
    pub name: Option<String>,
    /// Serial number.
    #[serde(default, deserialize_with = "lenient_string")]
    pub serial_number: Option<String>,
    /// Model.
    #[serde(default)]
    pub model: Option<String>,
    /// Meters: `production`, `net-consumption` or `total-consumption`.
    #[serde(default)]
    pub config_type: Option<String>,
    /// `normal`, `comm`, ...
    #[serde(default)]
    pub status: Option<String>,
    /// Meters: `enabled` or `disabled`.
    #[serde(default)]
    pub state: Option<String>,
    /// Epoch seconds of its last report.
    #[serde(default, deserialize_with = "lenient_epoch")]
    pub last_report_at: Option<i64>,
}

impl DeviceEntry {
    /// Whether this meter measures the grid connection (a consumption CT, net or total), as
    /// opposed to the production meter.
    pub fn is_consumption_meter(&self) -> bool {
        let disabled = self.state.as_deref().is_some_and(|s| s.eq_ignore_ascii_case("disabled"));
        let kind = |s: &Option<String>| {
            s.as_deref().map(str::to_ascii_lowercase).is_some_and(|s| s.contains("consumption"))
        };
        !disabled && (kind(&self.config_type) || kind(&self.name))
    }
}

/// `GET /api/v4/systems/{id}/summary`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Summary {
    /// The system.
    #[serde(deserialize_with = "system_id")]
    pub system_id: u64,
    /// Production power in W at the last report.
    #[serde(default, deserialize_with = "lenient_f64")]
    pub current_power: Option<f64>,
    /// Production since the system was installed, Wh.
    #[serde(default, deserialize_with = "lenient_f64")]
    pub energy_lifetime: Option<f64>,
    /// Production today (the system's local day), Wh.
    #[serde(default, deserialize_with = "lenient_f64")]
    pub energy_today: Option<f64>,
    /// Epoch seconds of the end of the last reported interval.
    #[serde(default, deserialize_with = "lenient_epoch")]
    pub last_interval_end_at: Option<i64>,
    /// Epoch seconds of the gateway's last upload.
    #[serde(default, deserialize_with = "lenient_epoch")]
    pub last_report_at: Option<i64>,
    /// Number of PV modules (microinverters).
    #[serde(default, deserialize_with = "lenient_f64")]
    pub modules: Option<f64>,
    /// Epoch seconds since when the system is operational.
    #[serde(default, deserialize_with = "lenient_epoch")]
    pub operational_at: Option<i64>,
    /// Nameplate size of the array, W.
    #[serde(default, deserialize_with = "lenient_f64")]
    pub size_w: Option<f64>,
    /// `meter` or `microinverters`: where the production numbers come from.
    #[serde(default)]
    pub source: Option<String>,
    /// `normal`, `comm`, `micro`, `power`, `meter`, `meter_issue`, `battery`, ...
    #[serde(default)]
    pub status: Option<String>,
    /// The system's local date of `energy_today`.
    #[serde(default)]
    pub summary_date: Option<String>,
    /// The batteries' *maximum* charge rate, W (not a live value).
    #[serde(default, deserialize_with = "lenient_f64")]
    pub battery_charge_w: Option<f64>,
    /// The batteries' *maximum* discharge rate, W (not a live value).
    #[serde(default, deserialize_with = "lenient_f64")]
    pub battery_discharge_w: Option<f64>,
    /// Usable capacity of all batteries, Wh.
    #[serde(default, deserialize_with = "lenient_f64")]
    pub battery_capacity_wh: Option<f64>,
}

/// `GET /api/v4/systems/{id}/latest_telemetry`: the last reported power of the production
/// meter, the consumption meter and the batteries.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct LatestTelemetry {
    /// The system.
    #[serde(deserialize_with = "system_id")]
    pub system_id: u64,
    /// Epoch seconds of the gateway's last upload.
    #[serde(default, deserialize_with = "lenient_epoch")]
    pub last_report_at: Option<i64>,
    /// The readings (required).
    pub devices: TelemetryDevices,
}

/// The readings of [`LatestTelemetry`].
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct TelemetryDevices {
    /// One reading per meter the system has: `production`, `consumption`, `storage`.
    #[serde(default)]
    pub meters: Vec<MeterReading>,
}

impl TelemetryDevices {
    /// The reading of the meter called `name` (case-insensitive).
    pub fn meter(&self, name: &str) -> Option<&MeterReading> {
        self.meters.iter().find(|m| m.name.trim().eq_ignore_ascii_case(name))
    }
}

/// One meter of [`TelemetryDevices`].
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct MeterReading {
    /// `production`, `consumption` (the household's total consumption) or `storage` (the
    /// batteries).
    pub name: String,
    /// CT channel.
    #[serde(default, deserialize_with = "lenient_f64")]
    pub channel: Option<f64>,
    /// Power in W. `production` and `consumption` are not negative in normal operation;
    /// `storage` is **positive while the batteries discharge** (they produce into the home)
    /// and negative while they charge.
    #[serde(default, deserialize_with = "lenient_f64")]
    pub power: Option<f64>,
    /// Epoch seconds of the reading.
    #[serde(default, deserialize_with = "lenient_epoch")]
    pub last_report_at: Option<i64>,
}

/// `GET /api/v4/systems/{id}/telemetry/battery`: charge, discharge and state of charge per
/// interval.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct BatteryTelemetry {
    /// The system.
    #[serde(deserialize_with = "system_id")]
    pub system_id: u64,
    /// `week`, `day`, `15mins` or `5mins`.
    #[serde(default)]
    pub granularity: Option<String>,
    /// Batteries in the system.
    #[serde(default, deserialize_with = "lenient_f64")]
    pub total_devices: Option<f64>,
    /// The intervals, oldest first.
    #[serde(default)]
    pub intervals: Vec<BatteryInterval>,
    /// The latest state of charge of all batteries together, as a string: `"97%"`.
    #[serde(default, deserialize_with = "lenient_string")]
    pub last_reported_aggregate_soc: Option<String>,
}

/// One interval of [`BatteryTelemetry`].
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct BatteryInterval {
    /// Epoch seconds of the interval's end.
    #[serde(default, deserialize_with = "lenient_epoch")]
    pub end_at: Option<i64>,
    /// Energy into the batteries in the interval.
    #[serde(default)]
    pub charge: Option<EnergyCount>,
    /// Energy out of the batteries in the interval.
    #[serde(default)]
    pub discharge: Option<EnergyCount>,
    /// State of charge at the interval's end.
    #[serde(default)]
    pub soc: Option<SocReading>,
}

/// Energy of an interval.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct EnergyCount {
    /// Wh.
    #[serde(default, deserialize_with = "lenient_f64")]
    pub enwh: Option<f64>,
    /// Batteries that reported.
    #[serde(default, deserialize_with = "lenient_f64")]
    pub devices_reporting: Option<f64>,
}

/// State of charge of an interval.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct SocReading {
    /// Percent.
    #[serde(default, deserialize_with = "lenient_f64")]
    pub percent: Option<f64>,
    /// Batteries that reported.
    #[serde(default, deserialize_with = "lenient_f64")]
    pub devices_reporting: Option<f64>,
}

/// `GET /api/v4/systems/config/{id}/battery_settings` (and the echo of the `PUT`, which
/// lacks some fields and spells the mode differently).
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct BatterySettings {
    /// The system.
    #[serde(deserialize_with = "system_id")]
    pub system_id: u64,
    /// `Self - Consumption`, `Savings Mode`, `Full Backup` on GET; `self-consumption`,
    /// `savings-mode`, `full-backup` in the PUT echo ([`crate::map::parse_battery_mode`]
    /// reads every spelling).
    #[serde(default)]
    pub battery_mode: Option<String>,
    /// The reserve the batteries keep for outages, percent.
    #[serde(default, deserialize_with = "lenient_f64")]
    pub reserve_soc: Option<f64>,
    /// `enabled` or `disabled`.
    #[serde(default)]
    pub energy_independence: Option<String>,
    /// `enabled` or `disabled`: whether the batteries may charge from the grid.
    #[serde(default)]
    pub charge_from_grid: Option<String>,
    /// Below this state of charge the batteries shut down, percent.
    #[serde(default, deserialize_with = "lenient_f64")]
    pub battery_shutdown_level: Option<f64>,
}

/// Enphase's error bodies, both shapes: `{"message":..,"details":..,"code":..}` (plus
/// `period`, `period_start`, `period_end` and `limit` on a 429) and
/// `{"reason":"405","message":["Method not allowed"]}`. OAuth errors of the token endpoint
/// (`{"error":..,"error_description":..}`) are read too.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct ErrorBody {
    /// A string, or a list of strings (405/501 shape).
    #[serde(default)]
    pub message: Option<Value>,
    /// More text.
    #[serde(default, deserialize_with = "lenient_string")]
    pub details: Option<String>,
    /// The HTTP status again.
    #[serde(default, deserialize_with = "lenient_epoch")]
    pub code: Option<i64>,
    /// The 405/501 shape's status, as a string.
    #[serde(default, deserialize_with = "lenient_string")]
    pub reason: Option<String>,
    /// 429: `minute` or `month`.
    #[serde(default)]
    pub period: Option<String>,
    /// 429: epoch seconds the counting period started.
    #[serde(default, deserialize_with = "lenient_epoch")]
    pub period_start: Option<i64>,
    /// 429: epoch seconds the counting period ends (the quota resets then).
    #[serde(default, deserialize_with = "lenient_epoch")]
    pub period_end: Option<i64>,
    /// 429: the plan's limit for the period.
    #[serde(default, deserialize_with = "lenient_f64")]
    pub limit: Option<f64>,
    /// OAuth error code (`invalid_grant`, ...).
    #[serde(default)]
    pub error: Option<String>,
    /// OAuth error text.
    #[serde(default)]
    pub error_description: Option<String>,
}

impl ErrorBody {
    /// `message` as text (a list is joined with `; `).
    pub fn message_text(&self) -> String {
        match &self.message {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Array(items)) => {
                items.iter().filter_map(Value::as_str).collect::<Vec<_>>().join("; ")
            }
            Some(other) => other.to_string(),
            None => String::new(),
        }
    }
}
