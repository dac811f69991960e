//! Wallbox's JSON, as far as the adapter reads it.
//!
//! Only the fields the mapping uses are declared; anything else Wallbox sends (the status
//! answer is about 200 lines) is ignored. Almost every field is optional; the few that
//! identify an answer are required, so a body of the wrong shape fails to parse and becomes a
//! `Protocol` error:
//!
//! - a sign-in or refresh answer needs `data.attributes.token`,
//! - a charger status needs `status_id` (its value may still be `null`),
//! - the groups list needs `result.groups`.
//!
//! Numbers are read leniently: Wallbox sends integers and floats, and some clients have seen
//! numeric strings (`"added_energy": "44.697"`); anything that is not a number (`"xx"`) is a
//! missing value, not an error. Ids come as numbers or strings and are kept as strings.
//! Units are Wallbox's own (kW, kWh, A, epoch milliseconds for token expiry);
//! [`crate::map`] converts.

use serde::{Deserialize, Deserializer};
use serde_json::Value;

pub(crate) fn value_f64(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    }
    .filter(|f| f.is_finite())
}

/// A number that may come as an integer, a float or a numeric string; anything else is
/// `None`.
fn lenient_f64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    let v = Option::<Value>::deserialize(d)?;
    Ok(v.as_ref().and_then(value_f64))
}

/// An integer (or an integral float or numeric string); anything else is `None`.
fn lenient_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    let v = Option::<Value>::deserialize(d)?;
    Ok(v.as_ref().and_then(value_i64))
}

pub(crate) fn value_i64(v: &Value) -> Option<i64> {
    let f = value_f64(v)?;
    if f.fract() != 0.0 || f.abs() > 9.0e15 {
        return None;
    }
    // Integral and within ±9e15 (checked above), so the cast is exact.
    #[allow(clippy::cast_possible_truncation)]
    let i = f as i64;
    Some(i)
}

/// A string, or a number rendered as a string (ids and serial numbers come both ways).
fn lenient_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let v = Option::<Value>::deserialize(d)?;
    Ok(match v {
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    })
}

/// A flag that may be a boolean, `0`/`1` or `"true"`/`"false"` (`locked` is 0/1, the
/// sign-in's `error` has been seen as `false` and as `"false"`).
fn lenient_flag<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    let v = Option::<Value>::deserialize(d)?;
    Ok(match v {
        Some(Value::Bool(b)) => Some(b),
        Some(Value::Number(n)) => n.as_f64().map(|f| f != 0.0),
        Some(Value::String(s)) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "1" => Some(true),
            "false" | "0" => Some(false),
            _ => None,
        },
        _ => None,
    })
}

/// An id that must be there: a number or a non-empty string.
fn required_id<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let v = Value::deserialize(d)?;
    match &v {
        Value::Number(n) => Ok(n.to_string()),
        Value::String(s) if !s.trim().is_empty() => Ok(s.trim().to_owned()),
        _ => Err(serde::de::Error::custom(format!("id {v} is neither a number nor a string"))),
    }
}

// ---- authentication (user-api.wall-box.com) ------------------------------------------------

/// The answer of `GET /users/signin` and `GET /users/refresh-token`:
/// `{"data":{"attributes":{"token","refresh_token","user_id","ttl","refresh_token_ttl",
/// "error":false,"status":200}}}`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct TokenResponse {
    /// The JSON:API-style envelope.
    pub data: TokenData,
}

/// `data` of a token answer.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct TokenData {
    /// The token's attributes.
    pub attributes: TokenAttributes,
}

/// `data.attributes` of a token answer.
#[derive(Clone, PartialEq, Deserialize)]
pub struct TokenAttributes {
    /// The access token (a JWT), sent as `Bearer` to api.wall-box.com.
    pub token: String,
    /// The refresh token, sent as `Bearer` to `/users/refresh-token`.
    #[serde(default, deserialize_with = "lenient_string")]
    pub refresh_token: Option<String>,
    /// Wallbox's user id.
    #[serde(default, deserialize_with = "lenient_string")]
    pub user_id: Option<String>,
    /// When the access token expires, epoch **milliseconds** (not a duration).
    #[serde(default, deserialize_with = "lenient_f64")]
    pub ttl: Option<f64>,
    /// When the refresh token expires, epoch milliseconds.
    #[serde(default, deserialize_with = "lenient_f64")]
    pub refresh_token_ttl: Option<f64>,
    /// Wallbox's own error flag inside a 2xx answer.
    #[serde(default, deserialize_with = "lenient_flag")]
    pub error: Option<bool>,
    /// Wallbox's own status inside a 2xx answer (200; a 4xx here is a refusal).
    #[serde(default, deserialize_with = "lenient_i64")]
    pub status: Option<i64>,
}

impl std::fmt::Debug for TokenAttributes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenAttributes")
            .field("token", &"<redacted>")
            .field("refresh_token", &self.refresh_token.as_ref().map(|_| "<redacted>"))
            .field("user_id", &self.user_id)
            .field("ttl", &self.ttl)
            .field("refresh_token_ttl", &self.refresh_token_ttl)
            .field("error", &self.error)
            .field("status", &self.status)
            .finish()
    }
}

// ---- charger status (GET chargers/status/{id}) ---------------------------------------------

/// The answer of `GET chargers/status/{chargerId}`, the main read.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct ChargerStatus {
    /// The status code (`193` charging, `161` ready, ...; see [`crate::map::StatusGroup`]).
    /// Required key; a non-numeric value reads as `None` (unknown).
    #[serde(deserialize_with = "lenient_i64")]
    pub status_id: Option<i64>,
    /// The user's name for the charger.
    #[serde(default, deserialize_with = "lenient_string")]
    pub name: Option<String>,
    /// Power delivered to the car, kW.
    #[serde(default, deserialize_with = "lenient_f64")]
    pub charging_power: Option<f64>,
    /// The most current the charger can deliver, A (named "power", but amperes).
    #[serde(default, deserialize_with = "lenient_f64")]
    pub max_available_power: Option<f64>,
    /// Energy added in the current session, kWh.
    #[serde(default, deserialize_with = "lenient_f64")]
    pub added_energy: Option<f64>,
    /// When the cloud last heard from the charger: `"2023-08-18 06:50:26"` (UTC).
    #[serde(default, deserialize_with = "lenient_string")]
    pub last_sync: Option<String>,
    /// The charger's configuration.
    #[serde(default)]
    pub config_data: Option<ConfigData>,
}

/// `config_data` of a charger status.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct ConfigData {
    /// The charger id.
    #[serde(default, deserialize_with = "lenient_string")]
    pub charger_id: Option<String>,
    /// The user's name for the charger.
    #[serde(default, deserialize_with = "lenient_string")]
    pub name: Option<String>,
    /// The current limit setting, A.
    #[serde(default, deserialize_with = "lenient_f64")]
    pub max_charging_current: Option<f64>,
    /// The hardware's maximum, A.
    #[serde(default, deserialize_with = "lenient_f64")]
    pub max_available_current: Option<f64>,
    /// Locked (`1`) or unlocked (`0`).
    #[serde(default, deserialize_with = "lenient_flag")]
    pub locked: Option<bool>,
    /// Serial number.
    #[serde(default, deserialize_with = "lenient_string")]
    pub serial_number: Option<String>,
    /// Part number (`PLP1-0-2-4-9-002-E`: a Pulsar Plus).
    #[serde(default, deserialize_with = "lenient_string")]
    pub part_number: Option<String>,
    /// Firmware.
    #[serde(default)]
    pub software: Option<Software>,
    /// The installation's current limit for Power Boost, A.
    #[serde(default, deserialize_with = "lenient_f64")]
    pub icp_max_current: Option<f64>,
    /// The group (location) the charger belongs to.
    #[serde(default, deserialize_with = "lenient_string")]
    pub group_id: Option<String>,
}

/// `config_data.software`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct Software {
    /// The firmware version.
    #[serde(default, rename = "currentVersion", deserialize_with = "lenient_string")]
    pub current_version: Option<String>,
}

// ---- chargers list (GET v3/chargers/groups) ------------------------------------------------

/// The answer of `GET v3/chargers/groups`: every group (location) of the user with its
/// chargers.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct GroupsResponse {
    /// The envelope.
    pub result: GroupsResult,
}

/// `result` of the groups list.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct GroupsResult {
    /// The groups.
    pub groups: Vec<Group>,
}

/// One group (location) and its chargers.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Group {
    /// The group id.
    #[serde(default, deserialize_with = "lenient_string")]
    pub id: Option<String>,
    /// The group's name.
    #[serde(default, deserialize_with = "lenient_string")]
    pub name: Option<String>,
    /// Its chargers.
    #[serde(default)]
    pub chargers: Vec<GroupCharger>,
}

/// One charger in the groups list, with the live summary the list carries. The field names
/// follow the `v2/charger` spelling (`maxChargingCurrent`); `state` is accepted for `status`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupCharger {
    /// The charger id.
    #[serde(deserialize_with = "required_id")]
    pub id: String,
    /// The user's name for it.
    #[serde(default, deserialize_with = "lenient_string")]
    pub name: Option<String>,
    /// The status code, as in `status_id`.
    #[serde(default, alias = "state", deserialize_with = "lenient_i64")]
    pub status: Option<i64>,
    /// Power delivered, kW.
    #[serde(default, deserialize_with = "lenient_f64")]
    pub charging_power: Option<f64>,
    /// The current limit setting, A.
    #[serde(default, deserialize_with = "lenient_f64")]
    pub max_charging_current: Option<f64>,
    /// The hardware maximum, A.
    #[serde(default, deserialize_with = "lenient_f64")]
    pub max_available_current: Option<f64>,
    /// Energy in the current session, kWh.
    #[serde(default, deserialize_with = "lenient_f64")]
    pub added_energy: Option<f64>,
    /// Locked or not.
    #[serde(default, deserialize_with = "lenient_flag")]
    pub locked: Option<bool>,
    /// Serial number.
    #[serde(default, deserialize_with = "lenient_string")]
    pub serial_number: Option<String>,
    /// The product (`PulsarPlus`).
    #[serde(default, deserialize_with = "lenient_string")]
    pub charger_type: Option<String>,
    /// Firmware.
    #[serde(default, deserialize_with = "lenient_string")]
    pub software_version: Option<String>,
}

// ---- errors ---------------------------------------------------------------------------------

/// An error body in any of the shapes Wallbox and its front ends use: `{"error":true,
/// "status":404,"msg":"..."}`, `{"message":"..."}`, or JSON:API `{"errors":[{"title",
/// "detail"}]}`. Everything is optional.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct ErrorBody {
    /// Wallbox's message.
    #[serde(default, deserialize_with = "lenient_string")]
    pub msg: Option<String>,
    /// Another spelling of the message.
    #[serde(default, deserialize_with = "lenient_string")]
    pub message: Option<String>,
    /// The status repeated in the body.
    #[serde(default, deserialize_with = "lenient_i64")]
    pub status: Option<i64>,
    /// JSON:API errors.
    #[serde(default)]
    pub errors: Vec<JsonApiError>,
}

/// One JSON:API error.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct JsonApiError {
    /// Short title.
    #[serde(default, deserialize_with = "lenient_string")]
    pub title: Option<String>,
    /// Details.
    #[serde(default, deserialize_with = "lenient_string")]
    pub detail: Option<String>,
}

impl ErrorBody {
    /// The first message the body has, or `None`.
    pub fn text(&self) -> Option<String> {
        self.msg.clone().or_else(|| self.message.clone()).or_else(|| {
            self.errors.iter().find_map(|e| match (&e.title, &e.detail) {
                (Some(t), Some(d)) => Some(format!("{t}: {d}")),
                (Some(t), None) => Some(t.clone()),
                (None, Some(d)) => Some(d.clone()),
                (None, None) => None,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_lenient() {
        let s: ChargerStatus = serde_json::from_str(
            r#"{"status_id":"194","charging_power":"7.36","added_energy":"xx",
                "config_data":{"max_charging_current":16.0,"locked":"1","charger_id":123}}"#,
        )
        .unwrap();
        assert_eq!(s.status_id, Some(194));
        assert_eq!(s.charging_power, Some(7.36));
        assert_eq!(s.added_energy, None);
        let c = s.config_data.unwrap();
        assert_eq!(c.max_charging_current, Some(16.0));
        assert_eq!(c.locked, Some(true));
        assert_eq!(c.charger_id.as_deref(), Some("123"));
    }

    #[test]
    fn required_keys() {
        assert!(serde_json::from_str::<ChargerStatus>("{}").is_err());
        assert!(serde_json::from_str::<ChargerStatus>(r#"{"status_id":null}"#).is_ok());
        assert!(serde_json::from_str::<GroupsResponse>(r#"{"result":{}}"#).is_err());
        assert!(serde_json::from_str::<TokenResponse>(r#"{"data":{"attributes":{}}}"#).is_err());
        assert!(
            serde_json::from_str::<GroupsResponse>(r#"{"result":{"groups":[{"chargers":[{}]}]}}"#)
                .is_err(),
            "a charger without id"
        );
    }

    #[test]
    fn error_bodies() {
        let b: ErrorBody =
            serde_json::from_str(r#"{"error":true,"status":404,"msg":"x"}"#).unwrap();
        assert_eq!(b.text().as_deref(), Some("x"));
        let b: ErrorBody =
            serde_json::from_str(r#"{"errors":[{"title":"Forbidden","detail":"no"}]}"#).unwrap();
        assert_eq!(b.text().as_deref(), Some("Forbidden: no"));
    }

    #[test]
    fn token_debug_redacts() {
        let t: TokenResponse = serde_json::from_str(
            r#"{"data":{"attributes":{"token":"s3cret","refresh_token":"r3fresh"}}}"#,
        )
        .unwrap();
        let text = format!("{t:?}");
        assert!(!text.contains("s3cret") && !text.contains("r3fresh"), "{text}");
    }
}
