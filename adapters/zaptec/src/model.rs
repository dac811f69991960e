//! Zaptec's JSON: only the fields the adapter reads, tolerant of anything extra.
//!
//! Zaptec's live API answers in PascalCase (`StateId`, `ValueAsString`, `Data`), while its
//! published OpenAPI schema spells the same fields in camelCase; every field here accepts
//! both spellings. Fields Zaptec may leave out or send as `null` are `Option`s (the hierarchy's
//! `Chargers` and `Name` are nullable per Zaptec's docs; the `Pulse` observation has no
//! `ValueAsString`).

use serde::{Deserialize, Deserializer};

/// A number Zaptec sends either as a JSON number or as a numeric string.
fn lenient_i64<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum NumOrString {
        Int(i64),
        Float(f64),
        Text(String),
    }
    match NumOrString::deserialize(deserializer)? {
        NumOrString::Int(n) => Ok(n),
        NumOrString::Float(f) if f.is_finite() && f.fract() == 0.0 && f.abs() < 9.0e15 => {
            // Checked to be a whole number well inside the i64 range.
            #[allow(clippy::cast_possible_truncation)]
            let n = f as i64;
            Ok(n)
        }
        NumOrString::Float(f) => {
            Err(serde::de::Error::custom(format!("{f} is not a whole number")))
        }
        NumOrString::Text(s) => s
            .trim()
            .parse::<i64>()
            .map_err(|_| serde::de::Error::custom(format!("{s:?} is not a whole number"))),
    }
}

/// Like [`lenient_i64`] for an optional field: `null` is `None`.
fn lenient_opt_i64<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<i64>, D::Error> {
    #[derive(Deserialize)]
    struct Wrap(#[serde(deserialize_with = "lenient_i64")] i64);
    Ok(Option::<Wrap>::deserialize(deserializer)?.map(|w| w.0))
}

/// A boolean Zaptec sends as `true`/`false`, `1`/`0` or a string of either.
fn lenient_opt_bool<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<bool>, D::Error> {
    let value = Option::<serde_json::Value>::deserialize(deserializer)?;
    Ok(value.and_then(|v| match v {
        serde_json::Value::Bool(b) => Some(b),
        serde_json::Value::Number(n) => n.as_f64().map(|f| f != 0.0),
        serde_json::Value::String(s) => crate::map::parse_flag(&s),
        _ => None,
    }))
}

/// `POST /oauth/token` (password grant): `{"access_token","token_type":"Bearer","expires_in"}`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct TokenResponse {
    /// The bearer token.
    pub access_token: String,
    /// `Bearer`.
    #[serde(default)]
    pub token_type: Option<String>,
    /// Lifetime in seconds (about a day).
    #[serde(default, deserialize_with = "lenient_opt_i64")]
    pub expires_in: Option<i64>,
}

/// One observation of `GET chargers/{id}/state`.
///
/// `[{"ChargerId":"…","StateId":710,"Timestamp":"2024-03-09T17:04:21.243","ValueAsString":"3"}]`.
/// The timestamp has no zone (it is UTC) and a variable number of fractional digits; every
/// value is a string (`"25.000"`, `"1"`, JSON text for some ids).
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct StateObservation {
    /// The charger (a GUID).
    #[serde(rename = "ChargerId", alias = "chargerId", default)]
    pub charger_id: Option<String>,
    /// What is observed (710 operation mode, 513 power, ...; see [`crate::map::state_id`]).
    #[serde(rename = "StateId", alias = "stateId", deserialize_with = "lenient_i64")]
    pub state_id: i64,
    /// When the charger reported it (UTC, usually without a zone designator).
    #[serde(rename = "Timestamp", alias = "timestamp", default)]
    pub timestamp: Option<String>,
    /// The value as text; absent for the `Pulse` (-1) observation.
    #[serde(rename = "ValueAsString", alias = "valueAsString", default)]
    pub value_as_string: Option<String>,
}

/// A page of `GET chargers`: `{"Pages":1,"Data":[…]}`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct ChargerList {
    /// How many pages there are.
    #[serde(rename = "Pages", alias = "pages", default, deserialize_with = "lenient_opt_i64")]
    pub pages: Option<i64>,
    /// The chargers of this page.
    #[serde(rename = "Data", alias = "data")]
    pub data: Vec<ChargerListItem>,
}

/// One charger of the list (or `GET chargers/{id}`).
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct ChargerListItem {
    /// The charger's GUID, used in every path.
    #[serde(rename = "Id", alias = "id")]
    pub id: String,
    /// The owner's name for it.
    #[serde(rename = "Name", alias = "name", default)]
    pub name: Option<String>,
    /// The serial number (`ZAP025320`).
    #[serde(rename = "DeviceId", alias = "deviceId", default)]
    pub device_id: Option<String>,
    /// The serial number again (older field).
    #[serde(rename = "SerialNo", alias = "serialNo", default)]
    pub serial_no: Option<String>,
    /// The meter id, often the serial number.
    #[serde(rename = "MID", alias = "mid", default)]
    pub mid: Option<String>,
    /// The installation it belongs to.
    #[serde(rename = "InstallationId", alias = "installationId", default)]
    pub installation_id: Option<String>,
    /// The installation's name.
    #[serde(rename = "InstallationName", alias = "installationName", default)]
    pub installation_name: Option<String>,
    /// Zaptec's device type (1 Pro/Smart, 2 Portable, 3 Home APM meter, 4 Go, ...).
    #[serde(
        rename = "DeviceType",
        alias = "deviceType",
        default,
        deserialize_with = "lenient_opt_i64"
    )]
    pub device_type: Option<i64>,
    /// Whether the charger is connected to Zaptec's cloud.
    #[serde(
        rename = "IsOnline",
        alias = "isOnline",
        default,
        deserialize_with = "lenient_opt_bool"
    )]
    pub is_online: Option<bool>,
    /// The operation mode (as state 710).
    #[serde(
        rename = "OperatingMode",
        alias = "operatingMode",
        default,
        deserialize_with = "lenient_opt_i64"
    )]
    pub operating_mode: Option<i64>,
    /// Whether the charger is active.
    #[serde(rename = "Active", alias = "active", default, deserialize_with = "lenient_opt_bool")]
    pub active: Option<bool>,
}

impl ChargerListItem {
    /// The serial number, from whichever field carries one.
    pub fn serial(&self) -> Option<&str> {
        [&self.device_id, &self.serial_no, &self.mid]
            .into_iter()
            .flatten()
            .map(|s| s.trim())
            .find(|s| !s.is_empty())
    }
}

/// `GET installation/{id}/hierarchy`: the installation's circuits and their chargers.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Hierarchy {
    /// The installation's GUID.
    #[serde(rename = "Id", alias = "id")]
    pub id: String,
    /// Its name (nullable).
    #[serde(rename = "Name", alias = "name", default)]
    pub name: Option<String>,
    /// The circuits (nullable).
    #[serde(rename = "Circuits", alias = "circuits", default)]
    pub circuits: Option<Vec<Circuit>>,
}

impl Hierarchy {
    /// Every charger of every circuit.
    pub fn chargers(&self) -> impl Iterator<Item = &ChargerListItem> {
        self.circuits.iter().flatten().flat_map(|c| c.chargers.iter().flatten())
    }
}

/// One circuit of an installation.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Circuit {
    /// The circuit's GUID.
    #[serde(rename = "Id", alias = "id", default)]
    pub id: Option<String>,
    /// Its name (nullable).
    #[serde(rename = "Name", alias = "name", default)]
    pub name: Option<String>,
    /// The circuit's fuse, in A.
    #[serde(rename = "MaxCurrent", alias = "maxCurrent", default)]
    pub max_current: Option<f64>,
    /// Its chargers (nullable).
    #[serde(rename = "Chargers", alias = "chargers", default)]
    pub chargers: Option<Vec<ChargerListItem>>,
}

/// Every error body Zaptec's hosts send, all fields optional:
///
/// - the API's own: `{"Code":528,"Details":null,"Message":"Device command rejected"}`
///   (`Code` from the `ErrorCodes` of `/api/constants`);
/// - the token endpoint's OAuth error: `{"error":"invalid_grant","error_description":"…"}`;
/// - the API gateway's rate limit: `{"statusCode":429,"message":"Rate limit is exceeded. Try
///   again in 1 seconds."}`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct ErrorBody {
    /// Zaptec's error code.
    #[serde(rename = "Code", default, deserialize_with = "lenient_opt_i64")]
    pub code: Option<i64>,
    /// Zaptec's message.
    #[serde(rename = "Message", default)]
    pub message: Option<String>,
    /// Zaptec's details (text or an object).
    #[serde(rename = "Details", default)]
    pub details: Option<serde_json::Value>,
    /// OAuth error code.
    #[serde(default)]
    pub error: Option<String>,
    /// OAuth error text.
    #[serde(default)]
    pub error_description: Option<String>,
    /// The gateway's status code.
    #[serde(rename = "statusCode", default, deserialize_with = "lenient_opt_i64")]
    pub status_code: Option<i64>,
    /// The gateway's message.
    #[serde(rename = "message", default)]
    pub gateway_message: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_spellings_and_lenient_numbers() {
        let pascal: Vec<StateObservation> = serde_json::from_str(
            r#"[{"ChargerId":"a","StateId":710,"Timestamp":"2024-03-09T17:04:21.243","ValueAsString":"3"},
                {"ChargerId":"a","StateId":-1,"Timestamp":"2024-03-09T17:13:38.907"}]"#,
        )
        .unwrap();
        assert_eq!(pascal[0].state_id, 710);
        assert_eq!(pascal[1].value_as_string, None);
        let camel: Vec<StateObservation> =
            serde_json::from_str(r#"[{"stateId":"513","valueAsString":"7360.5"}]"#).unwrap();
        assert_eq!(camel[0].state_id, 513);
        assert!(serde_json::from_str::<Vec<StateObservation>>(r#"[{"StateId":"x"}]"#).is_err());
        let item: ChargerListItem =
            serde_json::from_str(r#"{"Id":"c","IsOnline":"1","DeviceType":4.0}"#).unwrap();
        assert_eq!(item.is_online, Some(true));
        assert_eq!(item.device_type, Some(4));
        let h: Hierarchy =
            serde_json::from_str(r#"{"Id":"i","Name":null,"Circuits":[{"Chargers":null}]}"#)
                .unwrap();
        assert_eq!(h.chargers().count(), 0);
    }
}
