//! HTTP calls to the Fleet API and Tesla's token endpoint, and the classification of every
//! failure into an [`ErrorKind`].
//!
//! The client never retries: one call is one HTTP request, so callers can count requests
//! (and Tesla bills every answer below 500). Classification, in order:
//!
//! | Tesla answer | kind |
//! |---|---|
//! | connection error, timeout, other 5xx, 540 | `Transient` |
//! | 401 `token expired` / `invalid bearer token` / other text | `AuthExpired` |
//! | 401 `login_required`, `mobile_access_disabled` | `Unauthorized` |
//! | 403 (missing scopes) | `Unauthorized` |
//! | 403/4xx "Vehicle Command Protocol required" | `Unsupported` (needs signed commands) |
//! | 400, 422 | `Rejected` |
//! | 402 (billing limit of the application) | `RateLimited`, retry after 1 h |
//! | 404 | `NotFound` |
//! | 405 | `Unsupported` |
//! | 408, or any 5xx whose text says "offline or asleep" | `DeviceAsleep` |
//! | 412 | `PreconditionFailed` |
//! | 421 (wrong region) | `Protocol`; the message names the region's base URL |
//! | 429 | `RateLimited` with `Retry-After` (or `RateLimit-Reset`) as `retry_after` |
//! | other 4xx | `Protocol` |
//! | 2xx with a body that is not the expected JSON | `Protocol` with the serde error as source |
//!
//! The token endpoint is classified on its own: any 400/401/403 there means the code or the
//! refresh token is spent, expired or revoked, which only the user can fix (`Unauthorized`).

use std::error::Error as StdError;
use std::fmt;
use std::time::Duration;

use oemgate_core::{AdapterError, AdapterResult, ErrorKind};
use reqwest::header::HeaderMap;
use serde::de::DeserializeOwned;

use crate::model::{CommandResponse, EnergyCommandResponse, Envelope, ErrorBody, TokenResponse};

/// The vendor name on every error.
pub(crate) const VENDOR: &str = "TESLA";

/// Tesla's own error, attached as the `source` of an [`AdapterError`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct TeslaApiError {
    /// The HTTP status.
    pub status: u16,
    /// Tesla's `error` text (or the raw body, trimmed, when it was not Tesla's JSON).
    pub error: String,
    /// Tesla's `error_description`, often empty.
    pub description: String,
}

impl fmt::Display for TeslaApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HTTP {}: {}", self.status, self.error)?;
        if !self.description.is_empty() {
            write!(f, " ({})", self.description)?;
        }
        Ok(())
    }
}

/// A command the car answered with `result: false`; the `source` of such errors.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommandRefused {
    /// The command (`charge_start`, ...).
    pub command: String,
    /// Tesla's `reason`.
    pub reason: String,
}

impl fmt::Display for CommandRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} refused: {}", self.command, self.reason)
    }
}

impl StdError for CommandRefused {}

impl CommandRefused {
    /// Whether the reason says the car already is in the requested state (`already_set`,
    /// `is_charging` for a start, `not_charging` for a stop): the executor treats the
    /// command as UNNECESSARY.
    pub fn is_no_op(&self) -> bool {
        let reason = normalize(&self.reason);
        reason.starts_with("already")
            || (self.command == "charge_start" && reason == "is_charging")
            || (self.command == "charge_stop" && reason == "not_charging")
    }

    /// Finds the refusal behind an adapter error, if the error is one.
    pub fn of(err: &AdapterError) -> Option<&CommandRefused> {
        StdError::source(err).and_then(|s| s.downcast_ref::<CommandRefused>())
    }
}

fn normalize(s: &str) -> String {
    s.trim().to_ascii_lowercase().replace([' ', '-'], "_")
}

/// Reasons meaning the car cannot do it in its current state, whatever we send.
const PRECONDITION_REASONS: &[&str] = &[
    "disconnected",
    "not_plugged_in",
    "cable_not_connected",
    "complete",
    "charging_complete",
    "no_power",
    "nopower",
    "user_present",
    "in_service",
];

/// Turns a command's `{"result":..,"reason":..}` into success or a classified error.
///
/// - `result: true` → `Ok`.
/// - `already_set`, `already …`, `is_charging` on `charge_start`, `not_charging` on
///   `charge_stop` → `Rejected` (the car already is in the requested state; see
///   [`CommandRefused::is_no_op`]).
/// - `disconnected`, `complete`, `no_power` and similar → `PreconditionFailed`.
/// - a reason mentioning the Vehicle Command Protocol → `Unsupported`.
/// - anything else → `Rejected`.
pub fn command_outcome(command: &str, response: &CommandResponse) -> AdapterResult<()> {
    if response.result {
        return Ok(());
    }
    let reason = response.reason.clone().unwrap_or_default();
    let refused = CommandRefused { command: command.to_owned(), reason: reason.clone() };
    let norm = normalize(&reason);
    let (kind, message) = if refused.is_no_op() {
        (
            ErrorKind::Rejected,
            format!("{command} refused: already in the requested state ({reason})"),
        )
    } else if PRECONDITION_REASONS.contains(&norm.as_str()) {
        (ErrorKind::PreconditionFailed, format!("{command} not possible now: {reason}"))
    } else if norm.contains("vehicle_command_protocol") {
        (ErrorKind::Unsupported, format!("{command} needs signed commands: {reason}"))
    } else {
        (ErrorKind::Rejected, format!("{command} refused: {reason}"))
    };
    Err(AdapterError::new(kind, VENDOR, message).with_source(refused))
}

/// Turns an energy command's `{"code":201,"message":"Updated"}` into success or `Rejected`:
/// a missing code or a 2xx code is success (Tesla answers 201 "Updated").
pub fn energy_command_outcome(
    command: &str,
    response: &EnergyCommandResponse,
) -> AdapterResult<()> {
    match response.code {
        None => Ok(()),
        Some(code) if (200..300).contains(&code) => Ok(()),
        Some(code) => {
            let reason = response.message.clone().unwrap_or_default();
            let refused = CommandRefused { command: command.to_owned(), reason: reason.clone() };
            Err(AdapterError::new(
                ErrorKind::Rejected,
                VENDOR,
                format!("{command} refused: {code} {reason}"),
            )
            .with_source(refused))
        }
    }
}

/// Classifies a non-2xx answer of the Fleet API (`/api/1/...`).
///
/// `what` names the call for the message ("vehicle_data", "charge_start").
pub fn classify_api_error(
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
    what: &str,
) -> AdapterError {
    let api = parse_error_body(status, body);
    let text = format!("{} {}", api.error, api.description).to_ascii_lowercase();
    let asleep = text.contains("offline or asleep")
        || text.contains("vehicle unavailable")
        || text.contains("vehicle is offline");
    let (kind, message) = match status {
        408 => (ErrorKind::DeviceAsleep, format!("{what}: vehicle is offline or asleep")),
        500..=599 if asleep => {
            (ErrorKind::DeviceAsleep, format!("{what}: vehicle is offline or asleep ({status})"))
        }
        401 if text.contains("login_required") || text.contains("mobile_access_disabled") => (
            ErrorKind::Unauthorized,
            format!("{what}: credentials no longer valid ({})", api.error),
        ),
        401 => (ErrorKind::AuthExpired, format!("{what}: access token rejected ({})", api.error)),
        _ if text.contains("vehicle command protocol") => (
            ErrorKind::Unsupported,
            format!("{what}: the vehicle requires signed commands (Vehicle Command Protocol)"),
        ),
        403 => (ErrorKind::Unauthorized, format!("{what}: forbidden ({})", api.error)),
        400 | 422 => (ErrorKind::Rejected, format!("{what}: bad request ({})", api.error)),
        402 => {
            let err = AdapterError::new(
                ErrorKind::RateLimited,
                VENDOR,
                format!("{what}: payment required (the application's billing limit)"),
            )
            .with_retry_after(Duration::from_secs(3600))
            .with_source(api);
            return err;
        }
        404 => (ErrorKind::NotFound, format!("{what}: not found")),
        405 => (ErrorKind::Unsupported, format!("{what}: method not allowed")),
        412 => {
            (ErrorKind::PreconditionFailed, format!("{what}: precondition failed ({})", api.error))
        }
        421 => {
            let hint = region_hint(&format!("{} {}", api.error, api.description));
            let message = match hint {
                Some(url) => format!("{what}: account is in another region, use base URL {url}"),
                None => format!("{what}: account is in another region ({})", api.error),
            };
            (ErrorKind::Protocol, message)
        }
        429 => {
            let mut err =
                AdapterError::new(ErrorKind::RateLimited, VENDOR, format!("{what}: rate limited"));
            if let Some(after) = retry_after(headers) {
                err = err.with_retry_after(after);
            }
            return err.with_source(api);
        }
        500..=599 => (ErrorKind::Transient, format!("{what}: server error {status}")),
        _ => (ErrorKind::Protocol, format!("{what}: unexpected HTTP status {status}")),
    };
    AdapterError::new(kind, VENDOR, message).with_source(api)
}

/// Classifies a non-2xx answer of the token endpoint.
pub fn classify_token_error(
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
    what: &str,
) -> AdapterError {
    let api = parse_error_body(status, body);
    match status {
        400 | 401 | 403 => AdapterError::new(
            ErrorKind::Unauthorized,
            VENDOR,
            format!("{what}: grant refused ({}); the user must link the account again", api.error),
        )
        .with_source(api),
        _ => classify_api_error(status, headers, body, what),
    }
}

/// Reads Tesla's error JSON, or falls back to the raw text.
fn parse_error_body(status: u16, body: &[u8]) -> TeslaApiError {
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(ErrorBody { error, error_description }) if error.is_some() => TeslaApiError {
            status,
            error: error.unwrap_or_default(),
            description: error_description.unwrap_or_default(),
        },
        _ => {
            let raw = String::from_utf8_lossy(body);
            let raw: String = raw.trim().chars().take(300).collect();
            TeslaApiError { status, error: raw, description: String::new() }
        }
    }
}

/// The first `https://...` URL in a 421 text ("user out of region, use base URL: https://…").
pub fn region_hint(text: &str) -> Option<String> {
    let start = text.find("https://").or_else(|| text.find("http://"))?;
    let url: String = text[start..]
        .chars()
        .take_while(|c| !c.is_whitespace() && !matches!(c, '"' | '\'' | ',' | ')' | '>'))
        .collect();
    let url = url.trim_end_matches(['.', ';', '/']).to_owned();
    (url.len() > "https://".len()).then_some(url)
}

/// `Retry-After` in seconds, else `RateLimit-Reset` in seconds.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let seconds = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s >= 0.0 && *s < 1.0e9)
            .map(Duration::from_secs_f64)
    };
    seconds("retry-after").or_else(|| seconds("ratelimit-reset"))
}

/// Maps a transport failure (no HTTP answer) to an error.
fn transport_error(err: reqwest::Error, what: &str) -> AdapterError {
    let message = if err.is_timeout() {
        format!("{what}: request timed out")
    } else if err.is_connect() {
        format!("{what}: connection failed")
    } else if err.is_builder() {
        let e = AdapterError::new(
            ErrorKind::Protocol,
            VENDOR,
            format!("{what}: could not build the request (bad base URL?)"),
        );
        return e.with_source(err.without_url());
    } else {
        format!("{what}: request failed")
    };
    AdapterError::new(ErrorKind::Transient, VENDOR, message).with_source(err.without_url())
}

/// Decodes a 2xx body; anything that does not parse is a protocol error.
pub fn decode<T: DeserializeOwned>(body: &[u8], what: &str) -> AdapterResult<T> {
    serde_json::from_slice::<T>(body).map_err(|e| {
        AdapterError::new(
            ErrorKind::Protocol,
            VENDOR,
            format!("{what}: unexpected response body ({e})"),
        )
        .with_source(e)
    })
}

/// Decodes `{"response": T}`; a null or absent `response` is a protocol error.
pub fn decode_envelope<T: DeserializeOwned>(body: &[u8], what: &str) -> AdapterResult<T> {
    let env: Envelope<T> = decode(body, what)?;
    env.response.ok_or_else(|| {
        AdapterError::new(ErrorKind::Protocol, VENDOR, format!("{what}: response is null"))
    })
}

/// The HTTP side of the adapter: base URLs, OAuth client, timeouts.
#[derive(Clone)]
pub(crate) struct TeslaClient {
    http: reqwest::Client,
    auth_base_url: String,
    client_id: String,
    client_secret: String,
    timeout: Duration,
}

impl fmt::Debug for TeslaClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TeslaClient")
            .field("auth_base_url", &self.auth_base_url)
            .field("client_id", &self.client_id)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl TeslaClient {
    pub(crate) fn new(
        http: reqwest::Client,
        auth_base_url: &str,
        client_id: &str,
        client_secret: &str,
        timeout: Duration,
    ) -> Self {
        Self {
            http,
            auth_base_url: auth_base_url.trim_end_matches('/').to_owned(),
            client_id: client_id.to_owned(),
            client_secret: client_secret.to_owned(),
            timeout,
        }
    }

    /// `GET {base}{path}` with the bearer token; decodes `{"response": T}`.
    pub(crate) async fn get<T: DeserializeOwned>(
        &self,
        base: &str,
        token: &str,
        path: &str,
        what: &str,
    ) -> AdapterResult<T> {
        let url = format!("{}{}", base.trim_end_matches('/'), path);
        let request = self.http.get(url).bearer_auth(token).timeout(self.timeout);
        let (status, headers, body) = send(request, what).await?;
        if !(200..300).contains(&status) {
            return Err(classify_api_error(status, &headers, &body, what));
        }
        decode_envelope(&body, what)
    }

    /// `POST {base}{path}` with the bearer token and an optional JSON body.
    pub(crate) async fn post<T: DeserializeOwned>(
        &self,
        base: &str,
        token: &str,
        path: &str,
        body: Option<&serde_json::Value>,
        what: &str,
    ) -> AdapterResult<T> {
        let url = format!("{}{}", base.trim_end_matches('/'), path);
        let mut request = self.http.post(url).bearer_auth(token).timeout(self.timeout);
        request = match body {
            Some(json) => request.json(json),
            None => request.header(reqwest::header::CONTENT_LENGTH, "0"),
        };
        let (status, headers, body) = send(request, what).await?;
        if !(200..300).contains(&status) {
            return Err(classify_api_error(status, &headers, &body, what));
        }
        decode_envelope(&body, what)
    }

    /// `POST {auth_base}/oauth2/v3/token` with a form; `grant` holds the grant's own fields.
    pub(crate) async fn token(
        &self,
        grant: &[(&str, &str)],
        what: &str,
    ) -> AdapterResult<TokenResponse> {
        let url = format!("{}/oauth2/v3/token", self.auth_base_url);
        let mut form: Vec<(&str, &str)> = grant.to_vec();
        form.push(("client_id", &self.client_id));
        if !self.client_secret.is_empty() {
            form.push(("client_secret", &self.client_secret));
        }
        let request = self.http.post(url).form(&form).timeout(self.timeout);
        let (status, headers, body) = send(request, what).await?;
        if !(200..300).contains(&status) {
            return Err(classify_token_error(status, &headers, &body, what));
        }
        let token: TokenResponse = decode(&body, what)?;
        if token.access_token.trim().is_empty() {
            return Err(AdapterError::new(
                ErrorKind::Protocol,
                VENDOR,
                format!("{what}: empty access_token"),
            ));
        }
        Ok(token)
    }
}

async fn send(
    request: reqwest::RequestBuilder,
    what: &str,
) -> AdapterResult<(u16, HeaderMap, Vec<u8>)> {
    let response = request.send().await.map_err(|e| transport_error(e, what))?;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.bytes().await.map_err(|e| transport_error(e, what))?;
    tracing::debug!(target: "oemgate_tesla", what, status, bytes = body.len(), "tesla response");
    Ok((status, headers, body.to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn kind(status: u16, body: &str) -> ErrorKind {
        classify_api_error(status, &HeaderMap::new(), body.as_bytes(), "test").kind()
    }

    fn err(e: &str) -> String {
        format!(r#"{{"response":null,"error":"{e}","error_description":""}}"#)
    }

    #[test]
    fn classifies_statuses() {
        assert_eq!(kind(401, &err("token expired (401)")), ErrorKind::AuthExpired);
        assert_eq!(kind(401, &err("invalid bearer token")), ErrorKind::AuthExpired);
        assert_eq!(kind(401, &err("login_required")), ErrorKind::Unauthorized);
        assert_eq!(kind(401, &err("mobile_access_disabled")), ErrorKind::Unauthorized);
        assert_eq!(kind(403, &err("Unauthorized missing scopes")), ErrorKind::Unauthorized);
        assert_eq!(kind(404, ""), ErrorKind::NotFound);
        assert_eq!(
            kind(408, &err("vehicle unavailable: vehicle is offline or asleep")),
            ErrorKind::DeviceAsleep
        );
        assert_eq!(
            kind(500, &err("vehicle unavailable: vehicle is offline or asleep")),
            ErrorKind::DeviceAsleep
        );
        assert_eq!(kind(500, &err("internal error")), ErrorKind::Transient);
        assert_eq!(kind(503, "<html>bad gateway</html>"), ErrorKind::Transient);
        assert_eq!(kind(540, &err("device unexpected response")), ErrorKind::Transient);
        assert_eq!(kind(412, ""), ErrorKind::PreconditionFailed);
        assert_eq!(kind(400, &err("invalid_field")), ErrorKind::Rejected);
        assert_eq!(kind(418, ""), ErrorKind::Protocol);
        assert_eq!(
            kind(403, &err("Tesla Vehicle Command Protocol required, please refer to the docs")),
            ErrorKind::Unsupported
        );
        let payment = classify_api_error(402, &HeaderMap::new(), b"", "x");
        assert_eq!(payment.kind(), ErrorKind::RateLimited);
        assert_eq!(payment.retry_after(), Some(Duration::from_secs(3600)));
    }

    #[test]
    fn rate_limit_reads_retry_after() {
        let mut headers = HeaderMap::new();
        headers.insert("retry-after", HeaderValue::from_static("42"));
        let e = classify_api_error(429, &headers, b"", "vehicle_data");
        assert_eq!(e.kind(), ErrorKind::RateLimited);
        assert_eq!(e.retry_after(), Some(Duration::from_secs(42)));
        let mut headers = HeaderMap::new();
        headers.insert("ratelimit-reset", HeaderValue::from_static("7"));
        let e = classify_api_error(429, &headers, b"", "vehicle_data");
        assert_eq!(e.retry_after(), Some(Duration::from_secs(7)));
        let e = classify_api_error(429, &HeaderMap::new(), b"", "vehicle_data");
        assert_eq!(e.retry_after(), None);
    }

    #[test]
    fn wrong_region_names_the_base_url() {
        let body =
            err("user out of region, use base URL: https://fleet-api.prd.eu.vn.cloud.tesla.com");
        let e = classify_api_error(421, &HeaderMap::new(), body.as_bytes(), "vehicles");
        assert_eq!(e.kind(), ErrorKind::Protocol);
        assert!(e.message().contains("https://fleet-api.prd.eu.vn.cloud.tesla.com"), "{e}");
        assert_eq!(region_hint("no url here"), None);
        assert_eq!(region_hint("see https://x.example/."), Some("https://x.example".into()));
    }

    #[test]
    fn token_errors_need_relink() {
        let body = br#"{"error":"login_required","error_description":"refresh token reused"}"#;
        let e = classify_token_error(401, &HeaderMap::new(), body, "refresh");
        assert_eq!(e.kind(), ErrorKind::Unauthorized);
        let source = StdError::source(&e).unwrap().downcast_ref::<TeslaApiError>().unwrap();
        assert_eq!(source.error, "login_required");
        let e = classify_token_error(503, &HeaderMap::new(), b"", "refresh");
        assert_eq!(e.kind(), ErrorKind::Transient);
    }

    #[test]
    fn command_reasons() {
        let refuse = |cmd: &str, reason: &str| {
            command_outcome(cmd, &CommandResponse { result: false, reason: Some(reason.into()) })
                .unwrap_err()
        };
        assert!(
            command_outcome("charge_start", &CommandResponse { result: true, reason: None })
                .is_ok()
        );
        let e = refuse("set_charging_amps", "already_set");
        assert_eq!(e.kind(), ErrorKind::Rejected);
        assert!(CommandRefused::of(&e).unwrap().is_no_op());
        let e = refuse("charge_start", "is_charging");
        assert_eq!(e.kind(), ErrorKind::Rejected);
        assert!(CommandRefused::of(&e).unwrap().is_no_op());
        let e = refuse("charge_stop", "not_charging");
        assert!(CommandRefused::of(&e).unwrap().is_no_op());
        let e = refuse("charge_start", "disconnected");
        assert_eq!(e.kind(), ErrorKind::PreconditionFailed);
        assert!(!CommandRefused::of(&e).unwrap().is_no_op());
        assert_eq!(refuse("charge_start", "complete").kind(), ErrorKind::PreconditionFailed);
        assert_eq!(refuse("charge_start", "something new").kind(), ErrorKind::Rejected);
        assert_eq!(refuse("charge_start", "").kind(), ErrorKind::Rejected);
    }

    #[test]
    fn energy_command_codes() {
        let answer = |code: Option<i64>, message: &str| EnergyCommandResponse {
            code,
            message: Some(message.to_owned()),
        };
        assert!(energy_command_outcome("operation", &answer(Some(201), "Updated")).is_ok());
        assert!(energy_command_outcome("operation", &answer(None, "")).is_ok());
        let e = energy_command_outcome("backup", &answer(Some(400), "invalid")).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Rejected);
        assert_eq!(CommandRefused::of(&e).unwrap().reason, "invalid");
    }

    #[test]
    fn bodies_that_do_not_parse_are_protocol_errors() {
        let e = decode_envelope::<crate::model::VehicleData>(b"{\"response\":{\"vin\":", "x")
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Protocol);
        assert!(StdError::source(&e).unwrap().is::<serde_json::Error>());
        let e =
            decode_envelope::<crate::model::VehicleData>(b"{\"response\":null}", "x").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Protocol);
        let e =
            decode_envelope::<crate::model::VehicleData>(b"{\"response\":{}}", "x").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Protocol, "charge_state is required");
    }
}
