//! HTTP calls to Zaptec's API (`https://api.zaptec.com/api/`) and its token endpoint
//! (`https://api.zaptec.com/oauth/token`), and the classification of every failure into an
//! [`ErrorKind`].
//!
//! The client never retries: one call is one HTTP request, so callers can count requests.
//! Every request carries the adapter's `request_timeout`. Neither tokens, passwords nor
//! bodies are logged; reqwest errors are attached with `without_url()`.
//!
//! Classification of the API's answers ([`classify_api_error`]):
//!
//! | Zaptec answer | kind |
//! |---|---|
//! | connection error, timeout, body cut off | `Transient` |
//! | 429 (the API gateway's `{"statusCode":429,"message":"Rate limit is exceeded. Try again in N seconds."}`) | `RateLimited`; `retry_after` from `Retry-After` (seconds or HTTP date), else the message's "Try again in N seconds", else `None` |
//! | `Code` 520 `ErrorCommunicatingWithDevice` (any status) | `DeviceOffline` |
//! | 5xx (Zaptec's JSON error, the gateway's HTML pages), outage | `Transient` |
//! | 401 (expired, unknown or revoked token: Zaptec answers all alike) | `AuthExpired` |
//! | 403 (`Code` 533: the user lacks the role, e.g. not the installation's owner) | `Unauthorized` |
//! | 404 (`Code` 512 `UnknownObject`) | `NotFound` |
//! | `Code` 528 `DeviceCommandRejected` saying the charger *already* is in the state | `Rejected`, with a [`CommandRefused`] source whose [`CommandRefused::is_no_op`] is true |
//! | `Code` 528 otherwise (no car connected, car full, ...) | `PreconditionFailed`, with a [`CommandRefused`] source |
//! | 409, 412 | `PreconditionFailed` |
//! | 400, 422 (`Code` 529 `InvalidFormat`, 519 `UnknownCommand`, ...) | `Rejected` |
//! | `Code` 527 `NotSupported` | `Unsupported` |
//! | other statuses | `Protocol` |
//! | 2xx whose body does not parse | `Protocol` with the serde error as source |
//!
//! The token endpoint ([`classify_token_error`]): 400/401/403 (`invalid_grant`: wrong or
//! changed password, disabled user) → `Unauthorized`; the rest as above.

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use oemgate_core::{AdapterError, AdapterResult, Clock, ErrorKind};
use reqwest::header::HeaderMap;
use serde::de::DeserializeOwned;

use crate::map::error_code;
use crate::model::{ErrorBody, TokenResponse};

/// The vendor name on every error.
pub(crate) const VENDOR: &str = "ZAPTEC";

/// Zaptec's own error, attached as the `source` of an [`AdapterError`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct ZaptecApiError {
    /// The HTTP status.
    pub status: u16,
    /// Zaptec's `Code` (its `ErrorCodes`), where the body has one.
    pub code: Option<i64>,
    /// Zaptec's `Message` (or the OAuth `error`, the gateway's `message`, or the start of the
    /// raw body).
    pub message: String,
    /// Zaptec's `Details` (or the OAuth `error_description`), often empty.
    pub details: String,
}

impl fmt::Display for ZaptecApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HTTP {}", self.status)?;
        if let Some(code) = self.code {
            write!(f, " (code {code})")?;
        }
        write!(f, ": {}", self.message)?;
        if !self.details.is_empty() {
            write!(f, " ({})", self.details)?;
        }
        Ok(())
    }
}

impl ZaptecApiError {
    fn text(&self) -> String {
        format!("{} {}", self.message, self.details).to_ascii_lowercase()
    }
}

/// A command the charger refused (`Code` 528 `DeviceCommandRejected`); the `source` of such
/// errors.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommandRefused {
    /// The command (`resume_charging`, `stop_charging_final`, `set_available_current`).
    pub command: String,
    /// Zaptec's message.
    pub reason: String,
}

impl fmt::Display for CommandRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} refused: {}", self.command, self.reason)
    }
}

impl StdError for CommandRefused {}

impl CommandRefused {
    /// Whether Zaptec said the charger already is in the requested state (charging already
    /// paused for a stop, already running for a resume): the executor treats the command as
    /// UNNECESSARY.
    pub fn is_no_op(&self) -> bool {
        self.reason.to_ascii_lowercase().contains("already")
    }

    /// Finds the refusal behind an adapter error, if the error is one.
    pub fn of(err: &AdapterError) -> Option<&CommandRefused> {
        StdError::source(err).and_then(|s| s.downcast_ref::<CommandRefused>())
    }
}

/// Reads an error body in any of Zaptec's shapes, falling back to the raw text (at most 300
/// characters: bodies may hold personal data).
pub fn parse_error_body(status: u16, body: &[u8]) -> ZaptecApiError {
    let parsed = serde_json::from_slice::<ErrorBody>(body).ok().filter(|b| {
        b.code.is_some()
            || b.message.is_some()
            || b.error.is_some()
            || b.gateway_message.is_some()
            || b.error_description.is_some()
    });
    match parsed {
        Some(b) => {
            let message = b
                .message
                .clone()
                .or_else(|| b.error.clone())
                .or_else(|| b.gateway_message.clone())
                .unwrap_or_default();
            let details = match &b.details {
                Some(serde_json::Value::String(s)) => s.clone(),
                Some(serde_json::Value::Null) | None => {
                    b.error_description.clone().unwrap_or_default()
                }
                Some(other) => other.to_string(),
            };
            let details: String = details.chars().take(300).collect();
            ZaptecApiError { status, code: b.code, message, details }
        }
        None => {
            let raw = String::from_utf8_lossy(body);
            let raw: String = raw.trim().chars().take(300).collect();
            ZaptecApiError { status, code: None, message: raw, details: String::new() }
        }
    }
}

/// `Retry-After` in seconds or as an HTTP date, relative to `now`.
pub fn retry_after_header(headers: &HeaderMap, now: DateTime<Utc>) -> Option<Duration> {
    let value = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<f64>() {
        return (secs.is_finite() && (0.0..1.0e9).contains(&secs))
            .then(|| Duration::from_secs_f64(secs));
    }
    let at = DateTime::parse_from_rfc2822(value).ok()?.with_timezone(&Utc);
    Some((at - now).to_std().unwrap_or(Duration::ZERO))
}

/// The wait in the gateway's "Try again in N seconds." message.
fn retry_after_message(message: &str) -> Option<Duration> {
    let lower = message.to_ascii_lowercase();
    let rest = &lower[lower.find("try again in")? + "try again in".len()..];
    let number: String =
        rest.trim_start().chars().take_while(|c| c.is_ascii_digit() || *c == '.').collect();
    let secs = number.parse::<f64>().ok().filter(|s| s.is_finite() && (0.0..1.0e9).contains(s))?;
    let unit = rest.trim_start()[number.len()..].trim_start();
    let secs = if unit.starts_with("min") { secs * 60.0 } else { secs };
    Some(Duration::from_secs_f64(secs))
}

/// Classifies a non-2xx answer of the API. `what` names the call for the message
/// ("state", "sendCommand 507"); `now` turns an HTTP-date `Retry-After` into a wait.
pub fn classify_api_error(
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
    what: &str,
    now: DateTime<Utc>,
) -> AdapterError {
    let api = parse_error_body(status, body);
    if status == 429 {
        let mut err =
            AdapterError::new(ErrorKind::RateLimited, VENDOR, format!("{what}: rate limited"));
        let after = retry_after_header(headers, now).or_else(|| retry_after_message(&api.message));
        if let Some(after) = after {
            err = err.with_retry_after(after);
        }
        return err.with_source(api);
    }
    let (kind, message) = match (status, api.code) {
        (_, Some(error_code::ERROR_COMMUNICATING_WITH_DEVICE)) => {
            (ErrorKind::DeviceOffline, format!("{what}: the charger is not connected to Zaptec"))
        }
        (_, Some(error_code::DEVICE_COMMAND_REJECTED)) if (400..500).contains(&status) => {
            let refused = CommandRefused { command: what.to_owned(), reason: api.message.clone() };
            let kind = if refused.is_no_op() {
                ErrorKind::Rejected
            } else {
                ErrorKind::PreconditionFailed
            };
            let message = format!("{what}: the charger refused it ({})", api.message);
            return AdapterError::new(kind, VENDOR, message).with_source(refused);
        }
        (_, Some(error_code::NOT_SUPPORTED)) if (400..500).contains(&status) => {
            (ErrorKind::Unsupported, format!("{what}: not supported by the charger"))
        }
        (500..=599, _) => (ErrorKind::Transient, format!("{what}: server error {status}")),
        (401, _) => (ErrorKind::AuthExpired, format!("{what}: access token rejected")),
        (403, _) => (ErrorKind::Unauthorized, format!("{what}: forbidden for this Zaptec user")),
        (404, _) => (ErrorKind::NotFound, format!("{what}: not found")),
        (409 | 412, _) => (ErrorKind::PreconditionFailed, format!("{what}: not possible now")),
        (400 | 422, _) => (ErrorKind::Rejected, format!("{what}: refused ({})", api.message)),
        _ => (ErrorKind::Protocol, format!("{what}: unexpected HTTP status {status}")),
    };
    if kind == ErrorKind::Transient && api.text().contains("communicating with device") {
        return AdapterError::new(
            ErrorKind::DeviceOffline,
            VENDOR,
            format!("{what}: the charger is not connected to Zaptec"),
        )
        .with_source(api);
    }
    AdapterError::new(kind, VENDOR, message).with_source(api)
}

/// Classifies a non-2xx answer of the token endpoint: a refused login means only the user can
/// fix it (`Unauthorized`).
pub fn classify_token_error(
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
    what: &str,
    now: DateTime<Utc>,
) -> AdapterError {
    match status {
        400 | 401 | 403 => {
            let api = parse_error_body(status, body);
            AdapterError::new(
                ErrorKind::Unauthorized,
                VENDOR,
                format!(
                    "{what}: login refused ({}); the user must link the account again",
                    api.message
                ),
            )
            .with_source(api)
        }
        _ => classify_api_error(status, headers, body, what, now),
    }
}

/// Maps a transport failure (no complete HTTP answer) to an error.
fn transport_error(err: reqwest::Error, what: &str) -> AdapterError {
    let message = if err.is_timeout() {
        format!("{what}: request timed out")
    } else if err.is_connect() {
        format!("{what}: connection failed")
    } else if err.is_builder() {
        return AdapterError::new(
            ErrorKind::Protocol,
            VENDOR,
            format!("{what}: could not build the request (bad base URL?)"),
        )
        .with_source(err.without_url());
    } else if err.is_body() || err.is_decode() {
        format!("{what}: connection dropped while reading the body")
    } else {
        format!("{what}: request failed")
    };
    AdapterError::new(ErrorKind::Transient, VENDOR, message).with_source(err.without_url())
}

/// Decodes a 2xx body; anything that does not parse is a protocol error with the serde error
/// as source. At most 300 characters of the body reach the `debug` log.
pub fn decode<T: DeserializeOwned>(body: &[u8], what: &str) -> AdapterResult<T> {
    serde_json::from_slice::<T>(body).map_err(|e| {
        let head: String = String::from_utf8_lossy(body).chars().take(300).collect();
        tracing::debug!(target: "oemgate_zaptec", what, body = %head, "unparseable body");
        AdapterError::new(ErrorKind::Protocol, VENDOR, format!("{what}: unexpected response body"))
            .with_source(e)
    })
}

/// The HTTP side of the adapter: base URLs and the per-request timeout.
#[derive(Clone)]
pub(crate) struct ZaptecClient {
    http: reqwest::Client,
    api_base: String,
    auth_base: String,
    timeout: Duration,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for ZaptecClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ZaptecClient")
            .field("api_base", &self.api_base)
            .field("auth_base", &self.auth_base)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl ZaptecClient {
    pub(crate) fn new(
        http: reqwest::Client,
        api_base: &str,
        auth_base: &str,
        timeout: Duration,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            http,
            api_base: api_base.trim_end_matches('/').to_owned(),
            auth_base: auth_base.trim_end_matches('/').to_owned(),
            timeout,
            clock,
        }
    }

    fn request(
        &self,
        method: reqwest::Method,
        token: &str,
        path: &str,
        query: &[(&str, String)],
    ) -> reqwest::RequestBuilder {
        let url = format!("{}/{}", self.api_base, path.trim_start_matches('/'));
        let mut builder = self
            .http
            .request(method, url)
            .bearer_auth(token)
            .header(reqwest::header::ACCEPT, "application/json")
            .timeout(self.timeout);
        if !query.is_empty() {
            builder = builder.query(query);
        }
        builder
    }

    /// `GET {api}/{path}?query` with the bearer token; decodes the JSON answer.
    pub(crate) async fn get<T: DeserializeOwned>(
        &self,
        token: &str,
        path: &str,
        query: &[(&str, String)],
        what: &str,
    ) -> AdapterResult<T> {
        let request = self.request(reqwest::Method::GET, token, path, query);
        let (status, headers, body) = send(request, what).await?;
        if !(200..300).contains(&status) {
            return Err(classify_api_error(status, &headers, &body, what, self.clock.now()));
        }
        decode(&body, what)
    }

    /// `POST {api}/{path}` with the bearer token and an optional JSON body. Zaptec answers
    /// commands with an empty (or irrelevant) 2xx body, which is not read.
    pub(crate) async fn post(
        &self,
        token: &str,
        path: &str,
        body: Option<&serde_json::Value>,
        what: &str,
    ) -> AdapterResult<()> {
        let mut request = self.request(reqwest::Method::POST, token, path, &[]);
        request = match body {
            Some(json) => request.json(json),
            None => request.header(reqwest::header::CONTENT_LENGTH, "0"),
        };
        let (status, headers, body) = send(request, what).await?;
        if !(200..300).contains(&status) {
            return Err(classify_api_error(status, &headers, &body, what, self.clock.now()));
        }
        Ok(())
    }

    /// `POST {auth}/oauth/token`, form-encoded `grant_type=password&username=..&password=..`.
    pub(crate) async fn token(
        &self,
        username: &str,
        password: &str,
        what: &str,
    ) -> AdapterResult<TokenResponse> {
        let url = format!("{}/oauth/token", self.auth_base);
        let form = form_encode(&[
            ("grant_type", "password"),
            ("username", username),
            ("password", password),
        ]);
        let request = self
            .http
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(reqwest::header::ACCEPT, "application/json")
            .body(form)
            .timeout(self.timeout);
        let (status, headers, body) = send(request, what).await?;
        if !(200..300).contains(&status) {
            return Err(classify_token_error(status, &headers, &body, what, self.clock.now()));
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

/// `application/x-www-form-urlencoded` encoding of `pairs`.
pub fn form_encode(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", encode_component(k), encode_component(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn encode_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' => {
                out.push(char::from(b));
            }
            b' ' => out.push('+'),
            other => out.push_str(&format!("%{other:02X}")),
        }
    }
    out
}

async fn send(
    request: reqwest::RequestBuilder,
    what: &str,
) -> AdapterResult<(u16, HeaderMap, Vec<u8>)> {
    let started = Instant::now();
    let response = request.send().await.map_err(|e| transport_error(e, what))?;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.bytes().await.map_err(|e| transport_error(e, what))?;
    tracing::debug!(
        target: "oemgate_zaptec",
        what,
        status,
        bytes = body.len(),
        millis = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        "zaptec response"
    );
    Ok((status, headers, body.to_vec()))
}

/// The [`ZaptecApiError`] behind an adapter error, if there is one.
pub fn api_error_of(err: &AdapterError) -> Option<&ZaptecApiError> {
    StdError::source(err).and_then(|s| s.downcast_ref::<ZaptecApiError>())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use reqwest::header::HeaderValue;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 15, 12, 0, 0).unwrap()
    }

    fn kind(status: u16, body: &str) -> ErrorKind {
        classify_api_error(status, &HeaderMap::new(), body.as_bytes(), "test", now()).kind()
    }

    fn zaptec(code: i64, message: &str) -> String {
        serde_json::json!({ "Code": code, "Details": null, "Message": message }).to_string()
    }

    #[test]
    fn classifies_statuses_and_codes() {
        assert_eq!(kind(401, ""), ErrorKind::AuthExpired);
        assert_eq!(kind(403, &zaptec(533, "Forbidden")), ErrorKind::Unauthorized);
        assert_eq!(kind(404, &zaptec(512, "Unknown object")), ErrorKind::NotFound);
        assert_eq!(
            kind(500, &zaptec(520, "Error communicating with device")),
            ErrorKind::DeviceOffline
        );
        assert_eq!(kind(500, "Error communicating with device"), ErrorKind::DeviceOffline);
        assert_eq!(
            kind(400, &zaptec(528, "Device command rejected: no vehicle is connected")),
            ErrorKind::PreconditionFailed
        );
        assert_eq!(
            kind(400, &zaptec(528, "Device command rejected: charging is already paused")),
            ErrorKind::Rejected
        );
        assert_eq!(kind(400, &zaptec(529, "Invalid format")), ErrorKind::Rejected);
        assert_eq!(kind(400, &zaptec(527, "Not supported")), ErrorKind::Unsupported);
        assert_eq!(kind(409, ""), ErrorKind::PreconditionFailed);
        assert_eq!(kind(500, &zaptec(500, "An error has occurred.")), ErrorKind::Transient);
        assert_eq!(kind(502, "<html>502 Bad Gateway</html>"), ErrorKind::Transient);
        assert_eq!(kind(503, ""), ErrorKind::Transient);
        assert_eq!(kind(418, ""), ErrorKind::Protocol);
        assert_eq!(kind(302, ""), ErrorKind::Protocol);
    }

    #[test]
    fn refusals_carry_a_typed_source() {
        let body = zaptec(528, "Device command rejected: charging is already paused");
        let e = classify_api_error(400, &HeaderMap::new(), body.as_bytes(), "stop", now());
        let refused = CommandRefused::of(&e).unwrap();
        assert!(refused.is_no_op());
        assert_eq!(refused.command, "stop");
        let body = zaptec(528, "Device command rejected: the vehicle is fully charged");
        let e = classify_api_error(400, &HeaderMap::new(), body.as_bytes(), "resume", now());
        assert!(!CommandRefused::of(&e).unwrap().is_no_op());
    }

    #[test]
    fn rate_limits_read_every_signal() {
        let body =
            br#"{"statusCode":429,"message":"Rate limit is exceeded. Try again in 7 seconds."}"#;
        let mut headers = HeaderMap::new();
        headers.insert("retry-after", HeaderValue::from_static("3"));
        let e = classify_api_error(429, &headers, body, "state", now());
        assert_eq!(e.kind(), ErrorKind::RateLimited);
        assert_eq!(e.retry_after(), Some(Duration::from_secs(3)), "the header wins");
        let e = classify_api_error(429, &HeaderMap::new(), body, "state", now());
        assert_eq!(e.retry_after(), Some(Duration::from_secs(7)), "the message's wait");
        let mut headers = HeaderMap::new();
        headers.insert("retry-after", HeaderValue::from_static("Thu, 15 Jan 2026 12:00:30 GMT"));
        let e = classify_api_error(429, &headers, b"", "state", now());
        assert_eq!(e.retry_after(), Some(Duration::from_secs(30)), "an HTTP date");
        let e = classify_api_error(429, &HeaderMap::new(), b"Too Many Requests", "state", now());
        assert_eq!(e.kind(), ErrorKind::RateLimited);
        assert_eq!(e.retry_after(), None, "no signal, no guess");
        assert_eq!(retry_after_message("Try again in 2 minutes"), Some(Duration::from_secs(120)));
    }

    #[test]
    fn login_refusals_need_relink() {
        let body = br#"{"error":"invalid_grant","error_description":"The user name or password is incorrect."}"#;
        let e = classify_token_error(400, &HeaderMap::new(), body, "login", now());
        assert_eq!(e.kind(), ErrorKind::Unauthorized);
        let api = api_error_of(&e).unwrap();
        assert_eq!(api.message, "invalid_grant");
        assert_eq!(api.details, "The user name or password is incorrect.");
        let e = classify_token_error(503, &HeaderMap::new(), b"", "login", now());
        assert_eq!(e.kind(), ErrorKind::Transient);
        let e = classify_token_error(429, &HeaderMap::new(), b"", "login", now());
        assert_eq!(e.kind(), ErrorKind::RateLimited);
    }

    #[test]
    fn bodies_that_do_not_parse_are_protocol_errors() {
        let e = decode::<Vec<crate::model::StateObservation>>(b"[{\"StateId\":71", "state")
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Protocol);
        assert!(StdError::source(&e).unwrap().is::<serde_json::Error>());
        let e = decode::<crate::model::ChargerList>(b"<html>down</html>", "chargers").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Protocol);
        let e = decode::<crate::model::ChargerList>(b"{}", "chargers").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Protocol, "Data is required");
    }

    #[test]
    fn form_encoding() {
        assert_eq!(
            form_encode(&[("username", "a+b@x.no"), ("password", "p w&=%")]),
            "username=a%2Bb%40x.no&password=p+w%26%3D%25"
        );
    }

    #[test]
    fn raw_error_text_is_capped() {
        let long = "x".repeat(1000);
        assert_eq!(parse_error_body(500, long.as_bytes()).message.len(), 300);
    }
}
