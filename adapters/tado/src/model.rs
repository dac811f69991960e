//! tado's JSON (API v2 at `my.tado.com/api/v2` and the OAuth endpoints at `login.tado.com`):
//! only the fields the adapter reads, every one optional where tado may leave it out, and
//! tolerant of fields it does not know.
//!
//! Field names are tado's own (`camelCase` in the API, `snake_case` in OAuth answers).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

// ---- OAuth (login.tado.com) ---------------------------------------------------------------

/// `POST /oauth2/device_authorize`: the start of the device-code flow.
#[derive(Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct DeviceAuthorization {
    /// The secret the client polls the token endpoint with.
    pub device_code: String,
    /// The code the user confirms in the browser.
    pub user_code: String,
    /// Where the user goes (`https://login.tado.com/oauth2/device`).
    #[serde(default)]
    pub verification_uri: Option<String>,
    /// The same page with the user code filled in.
    #[serde(default)]
    pub verification_uri_complete: Option<String>,
    /// Seconds the device code stays valid (300).
    #[serde(default)]
    pub expires_in: Option<i64>,
    /// Seconds to wait between two polls of the token endpoint (5).
    #[serde(default)]
    pub interval: Option<u64>,
}

impl std::fmt::Debug for DeviceAuthorization {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceAuthorization")
            .field("device_code", &"<redacted>")
            .field("user_code", &self.user_code)
            .field("verification_uri", &self.verification_uri)
            .field("verification_uri_complete", &self.verification_uri_complete)
            .field("expires_in", &self.expires_in)
            .field("interval", &self.interval)
            .finish()
    }
}

/// `POST /oauth2/token`: a token pair (device-code grant or refresh).
#[derive(Clone, Deserialize)]
pub struct TokenResponse {
    /// The bearer token (a JWT, valid 10 minutes).
    pub access_token: String,
    /// The next refresh token (tado rotates it on every refresh).
    #[serde(default)]
    pub refresh_token: Option<String>,
    /// Seconds the access token lives (599).
    #[serde(default)]
    pub expires_in: Option<i64>,
    /// `bearer`.
    #[serde(default)]
    pub token_type: Option<String>,
    /// `offline_access`.
    #[serde(default)]
    pub scope: Option<String>,
    /// tado's user id, where the token endpoint sends it.
    #[serde(default, rename = "userId")]
    pub user_id: Option<String>,
}

impl std::fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenResponse")
            .field("access_token", &"<redacted>")
            .field("refresh_token", &self.refresh_token.as_ref().map(|_| "<redacted>"))
            .field("expires_in", &self.expires_in)
            .field("token_type", &self.token_type)
            .field("scope", &self.scope)
            .field("user_id", &self.user_id)
            .finish()
    }
}

/// An OAuth error answer (`{"error":"authorization_pending","error_description":".."}`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct OAuthError {
    /// `authorization_pending`, `slow_down`, `expired_token`, `access_denied`,
    /// `invalid_grant`, `invalid_client`, ...
    #[serde(default)]
    pub error: Option<String>,
    /// Human text.
    #[serde(default)]
    pub error_description: Option<String>,
}

// ---- API errors ---------------------------------------------------------------------------

/// tado's API error body: `{"errors":[{"code":"notFound","title":"zone 9 not found"}]}`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct ApiErrors {
    /// The errors (usually one).
    #[serde(default)]
    pub errors: Vec<ApiErrorEntry>,
}

/// One entry of [`ApiErrors`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct ApiErrorEntry {
    /// A machine code (`unauthorized`, `accessDenied`, `notFound`, `invalidSetting`, ...).
    #[serde(default)]
    pub code: Option<String>,
    /// Human text.
    #[serde(default)]
    pub title: Option<String>,
}

// ---- account and homes --------------------------------------------------------------------

/// `GET /me`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Me {
    /// tado's user id.
    #[serde(default)]
    pub id: Option<String>,
    /// The user's name.
    #[serde(default)]
    pub name: Option<String>,
    /// The homes the user can see (always present).
    pub homes: Vec<HomeRef>,
}

/// A home in [`Me::homes`].
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
pub struct HomeRef {
    /// The home id (a number).
    pub id: u64,
    /// The home's name.
    #[serde(default)]
    pub name: Option<String>,
}

/// One zone of `GET /homes/{homeId}/zones` (a JSON array of these).
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Zone {
    /// The zone id (a small number, per home).
    pub id: u64,
    /// The user's name for the zone ("Living room").
    #[serde(default)]
    pub name: Option<String>,
    /// `HEATING`, `AIR_CONDITIONING` or `HOT_WATER`.
    #[serde(rename = "type")]
    pub zone_type: String,
    /// The zone's devices (thermostats, radiator valves, bridges).
    #[serde(default)]
    pub devices: Vec<ZoneDevice>,
}

/// A device of a [`Zone`].
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ZoneDevice {
    /// `VA02` (smart radiator thermostat), `RU02` (smart thermostat), ...
    #[serde(default)]
    pub device_type: Option<String>,
    /// Serial number.
    #[serde(default)]
    pub serial_no: Option<String>,
}

// ---- zone state ---------------------------------------------------------------------------

/// `GET /homes/{homeId}/zones/{zoneId}/state`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ZoneState {
    /// `HOME` or `AWAY` (geofencing).
    #[serde(default)]
    pub tado_mode: Option<String>,
    /// The setting in effect (the overlay's or the schedule's).
    #[serde(default)]
    pub setting: Option<Setting>,
    /// The overlay's type (`MANUAL`), `null` without one.
    #[serde(default)]
    pub overlay_type: Option<String>,
    /// The overlay (manual control), `null` while the zone follows its schedule.
    #[serde(default)]
    pub overlay: Option<Overlay>,
    /// Whether tado's cloud reaches the zone's devices.
    #[serde(default)]
    pub link: Option<Link>,
    /// What the zone is doing (heating power).
    #[serde(default)]
    pub activity_data_points: Option<ActivityDataPoints>,
    /// What the zone measures.
    #[serde(default)]
    pub sensor_data_points: Option<SensorDataPoints>,
}

/// A zone setting: `{"type":"HEATING","power":"ON","temperature":{"celsius":21.0}}`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
pub struct Setting {
    /// The zone type the setting is for (`HEATING`, ...).
    #[serde(rename = "type", default)]
    pub zone_type: Option<String>,
    /// `ON` or `OFF`.
    #[serde(default)]
    pub power: Option<String>,
    /// The target temperature (`null` while the power is off).
    #[serde(default)]
    pub temperature: Option<Temperature>,
}

/// A temperature in both of tado's units.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
pub struct Temperature {
    /// °C.
    #[serde(default)]
    pub celsius: Option<f64>,
    /// °F.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fahrenheit: Option<f64>,
}

/// A zone overlay (manual control).
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
pub struct Overlay {
    /// `MANUAL`.
    #[serde(rename = "type", default)]
    pub overlay_type: Option<String>,
    /// The overlay's setting.
    #[serde(default)]
    pub setting: Option<Setting>,
    /// When it ends.
    #[serde(default)]
    pub termination: Option<Termination>,
}

/// When an overlay ends.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Termination {
    /// `MANUAL` (until cancelled), `TIMER`, `TADO_MODE` (until the next time block).
    #[serde(rename = "type", default)]
    pub termination_type: Option<String>,
    /// The app's name for it: `MANUAL`, `TIMER`, `NEXT_TIME_BLOCK`.
    #[serde(default)]
    pub type_skill_based_app: Option<String>,
    /// When a temporary overlay is expected to end.
    #[serde(default)]
    pub projected_expiry: Option<DateTime<Utc>>,
    /// A timer's length.
    #[serde(default)]
    pub duration_in_seconds: Option<u64>,
}

/// `{"state":"ONLINE"}` or `{"state":"OFFLINE","reason":{..}}`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct Link {
    /// `ONLINE` or `OFFLINE`.
    #[serde(default)]
    pub state: Option<String>,
}

/// `activityDataPoints`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ActivityDataPoints {
    /// How hard the zone heats, 0–100 %.
    #[serde(default)]
    pub heating_power: Option<Percentage>,
}

/// `{"type":"PERCENTAGE","percentage":45.2,"timestamp":".."}`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
pub struct Percentage {
    /// Percent.
    #[serde(default)]
    pub percentage: Option<f64>,
    /// When it was measured.
    #[serde(default)]
    pub timestamp: Option<DateTime<Utc>>,
}

/// `sensorDataPoints`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SensorDataPoints {
    /// The measured room temperature.
    #[serde(default)]
    pub inside_temperature: Option<TemperatureReading>,
    /// Relative humidity, %.
    #[serde(default)]
    pub humidity: Option<Percentage>,
}

/// A measured temperature with its time.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
pub struct TemperatureReading {
    /// °C.
    #[serde(default)]
    pub celsius: Option<f64>,
    /// °F.
    #[serde(default)]
    pub fahrenheit: Option<f64>,
    /// When it was measured.
    #[serde(default)]
    pub timestamp: Option<DateTime<Utc>>,
}

/// `GET /homes/{homeId}/zoneStates`: every zone's state, keyed by the zone id as a string.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ZoneStates {
    /// Zone id -> state.
    #[serde(default)]
    pub zone_states: BTreeMap<String, ZoneState>,
}

// ---- overlay request ----------------------------------------------------------------------

/// The body of `PUT /homes/{homeId}/zones/{zoneId}/overlay`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
pub struct OverlayRequest {
    /// The setting to hold.
    pub setting: OverlaySetting,
    /// When it ends.
    pub termination: OverlayTermination,
}

/// The setting of an [`OverlayRequest`].
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
pub struct OverlaySetting {
    /// `HEATING`.
    #[serde(rename = "type")]
    pub zone_type: String,
    /// `ON` or `OFF`.
    pub power: String,
    /// The target temperature (absent with the power off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<Temperature>,
}

/// The termination of an [`OverlayRequest`].
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OverlayTermination {
    /// `MANUAL`, `TIMER` or `NEXT_TIME_BLOCK`.
    pub type_skill_based_app: String,
    /// The timer's length, for `TIMER`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_in_seconds: Option<u64>,
}
