//! Easee's JSON (`https://api.easee.com/api/...`): only the fields the adapter reads, tolerant
//! of every field it does not know.
//!
//! Easee's API is an ASP.NET service: JSON keys are camelCase, numbers are often floats
//! (`"expiresIn": 86400.0`, `"dynamicChargerCurrent": 32.0`), ids of sites and circuits are
//! numbers while charger ids are serial-number strings (`"EH123456"`), and errors are
//! ProblemDetails objects extended with Easee's own `errorCode` / `errorCodeName`.

use serde::{Deserialize, Deserializer, Serialize};

/// `POST /api/accounts/login` body.
#[derive(Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LoginRequest<'a> {
    /// The user's e-mail address or phone number.
    pub user_name: &'a str,
    /// The user's password.
    pub password: &'a str,
}

impl std::fmt::Debug for LoginRequest<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginRequest")
            .field("user_name", &self.user_name)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// `POST /api/accounts/refresh_token` body: Easee wants the (possibly expired) access token
/// together with its refresh token.
#[derive(Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RefreshRequest<'a> {
    /// The access token the refresh token was issued with.
    pub access_token: &'a str,
    /// The refresh token.
    pub refresh_token: &'a str,
}

impl std::fmt::Debug for RefreshRequest<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RefreshRequest").finish_non_exhaustive()
    }
}

/// The answer of login and refresh:
/// `{"accessToken","expiresIn":3600,"accessClaims":["User"],"tokenType":"Bearer","refreshToken"}`.
#[derive(Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenResponse {
    /// The bearer token.
    pub access_token: String,
    /// Lifetime in seconds (an integer in Easee's docs, a float in pyeasee's fixture).
    #[serde(default)]
    pub expires_in: Option<f64>,
    /// The token's claims (`["User"]`).
    #[serde(default)]
    pub access_claims: Vec<String>,
    /// `Bearer`.
    #[serde(default)]
    pub token_type: Option<String>,
    /// The refresh token.
    #[serde(default)]
    pub refresh_token: Option<String>,
}

impl std::fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenResponse")
            .field("expires_in", &self.expires_in)
            .field("access_claims", &self.access_claims)
            .field("token_type", &self.token_type)
            .finish_non_exhaustive()
    }
}

/// `GET /api/chargers/{id}/state`: the charger's live state.
///
/// Only `chargerOpMode` is required: a state without it says nothing. Units: `totalPower` kW,
/// `sessionEnergy` and `lifetimeEnergy` kWh, currents A, `voltage` V.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChargerState {
    /// The operating mode code (see [`crate::map::OpMode`]).
    pub charger_op_mode: i64,
    /// Power delivered to the car, kW.
    #[serde(default)]
    pub total_power: Option<f64>,
    /// Energy of the current (or last) session, kWh.
    #[serde(default)]
    pub session_energy: Option<f64>,
    /// Energy counter of the charger, kWh.
    #[serde(default)]
    pub lifetime_energy: Option<f64>,
    /// Current offered to the car, A.
    #[serde(default)]
    pub output_current: Option<f64>,
    /// The volatile current limit (`set_dynamic_charger_current`), A.
    #[serde(default)]
    pub dynamic_charger_current: Option<f64>,
    /// Voltage, V.
    #[serde(default)]
    pub voltage: Option<f64>,
    /// Whether the charger is connected to Easee's cloud now.
    #[serde(default)]
    pub is_online: Option<bool>,
    /// Whether the cable is locked in the charger (a cable is in).
    #[serde(default)]
    pub cable_locked: Option<bool>,
    /// Easee's own smart charging is on.
    #[serde(default)]
    pub smart_charging: Option<bool>,
    /// Why no current flows (a code; see [`crate::map::REASON_EV_NOT_CHARGING`]).
    #[serde(default)]
    pub reason_for_no_current: Option<i64>,
    /// When the charger last reported to the cloud (`2020-07-18T20:01:16Z`).
    #[serde(default)]
    pub latest_pulse: Option<String>,
    /// Phase code of the output (`30` three-phase, ...).
    #[serde(default)]
    pub output_phase: Option<i64>,
}

/// One site of `GET /api/accounts/products`: the user's sites with their circuits and the
/// chargers on them.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProductSite {
    /// Easee's site id (a number; strings are accepted too).
    #[serde(deserialize_with = "id_string")]
    pub id: String,
    /// The site's name.
    #[serde(default)]
    pub name: Option<String>,
    /// The site's circuits (fuse groups), each with its chargers.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub circuits: Vec<Circuit>,
}

/// A circuit of a site.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Circuit {
    /// The circuit id.
    #[serde(default, deserialize_with = "optional_id_string")]
    pub id: Option<String>,
    /// The chargers on the circuit.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub chargers: Vec<ChargerEntry>,
}

/// A charger as listed by `GET /api/chargers` and inside sites and circuits.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChargerEntry {
    /// The charger's serial number (`EH123456`), its id everywhere in the API.
    pub id: String,
    /// The owner's name for it.
    #[serde(default)]
    pub name: Option<String>,
    /// The product line (`1` Easee Home).
    #[serde(default)]
    pub product_code: Option<i64>,
    /// The access level the user has.
    #[serde(default)]
    pub level_of_access: Option<i64>,
    /// The user's role on the charger.
    #[serde(default)]
    pub user_role: Option<i64>,
}

/// The `202 Accepted` answer to a command: `{"device":"EH..","commandId":48,"ticks":...}`
/// (seen in community logs; Easee does not document it). `ticks` are .NET ticks (100 ns since
/// 0001-01-01) and identify the command together with its id.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CommandResponse {
    /// The charger's serial.
    #[serde(default)]
    pub device: Option<String>,
    /// The charger command's id (`48` SetDynamicChargerCurrent, `25` start ...).
    #[serde(default)]
    pub command_id: Option<i64>,
    /// When Easee queued it, in .NET ticks.
    #[serde(default)]
    pub ticks: Option<i64>,
}

/// A command answer: one object, or a list (settings changes answer one per setting).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum CommandReply {
    /// One command.
    One(CommandResponse),
    /// Several commands.
    Many(Vec<CommandResponse>),
}

impl CommandReply {
    /// The first command of the answer.
    pub fn first(&self) -> Option<&CommandResponse> {
        match self {
            CommandReply::One(c) => Some(c),
            CommandReply::Many(list) => list.first(),
        }
    }
}

/// `POST /api/chargers/{id}/commands/set_dynamic_charger_current` body: `amps` is the limit,
/// `minutes` a time to live (`0` = until changed; the value is volatile and resets when the
/// charger reboots).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct DynamicCurrentRequest {
    /// The limit, A.
    pub amps: f64,
    /// Time to live, minutes (`0` = until changed).
    #[serde(default)]
    pub minutes: u32,
}

/// Easee's error body: an ASP.NET ProblemDetails with Easee's `errorCode` and
/// `errorCodeName`, or the framework's validation problem with `errors`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorBody {
    /// Easee's numeric error code.
    #[serde(default)]
    pub error_code: Option<i64>,
    /// Easee's error name (`InvalidUserPassword`, `NoCarConnected`, ...).
    #[serde(default)]
    pub error_code_name: Option<String>,
    /// A short human summary.
    #[serde(default)]
    pub title: Option<String>,
    /// The HTTP status, repeated.
    #[serde(default)]
    pub status: Option<i64>,
    /// Details, often empty in production.
    #[serde(default)]
    pub detail: Option<String>,
    /// Validation errors per field.
    #[serde(default)]
    pub errors: Option<serde_json::Value>,
}

/// An id that Easee sends as a number (sites, circuits), accepted as a number or a string.
fn id_string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    match serde_json::Value::deserialize(d)? {
        serde_json::Value::Number(n) => Ok(n.to_string()),
        serde_json::Value::String(s) if !s.trim().is_empty() => Ok(s),
        other => Err(serde::de::Error::custom(format!("expected an id, found {other}"))),
    }
}

fn optional_id_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    match Option::<serde_json::Value>::deserialize(d)? {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::Number(n)) => Ok(Some(n.to_string())),
        Some(serde_json::Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(serde::de::Error::custom(format!("expected an id, found {other}"))),
    }
}

fn null_as_empty<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_numbers_or_strings() {
        let site: ProductSite =
            serde_json::from_str(r#"{"id":54321,"circuits":[{"id":"7","chargers":null}]}"#)
                .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(site.id, "54321");
        assert_eq!(site.circuits[0].id.as_deref(), Some("7"));
        assert!(site.circuits[0].chargers.is_empty());
        assert!(serde_json::from_str::<ProductSite>(r#"{"id":null}"#).is_err());
    }

    #[test]
    fn command_replies_are_one_or_many() {
        let one: CommandReply =
            serde_json::from_str(r#"{"device":"EH1","commandId":48,"ticks":1}"#)
                .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(one.first().and_then(|c| c.command_id), Some(48));
        let many: CommandReply = serde_json::from_str(r#"[{"device":"EH1","commandId":25}]"#)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(many.first().and_then(|c| c.command_id), Some(25));
    }

    #[test]
    fn debug_redacts_secrets() {
        let login = LoginRequest { user_name: "a@b.c", password: "hunter2" };
        assert!(!format!("{login:?}").contains("hunter2"));
        let refresh = RefreshRequest { access_token: "acc", refresh_token: "ref" };
        let text = format!("{refresh:?}");
        assert!(!text.contains("acc") && !text.contains("ref\""), "{text}");
    }
}
