//! HTTP calls to the Smart Device Management API and Google's OAuth token endpoint, and the
//! classification of every failure into an [`ErrorKind`].
//!
//! The client never retries: one call is one HTTP request, so callers can count requests.
//! Neither URLs' secrets nor bodies are logged (token requests carry codes, refresh tokens and
//! the client secret in the form body); reqwest errors are attached with `without_url()`.
//!
//! SDM answers errors in Google's standard shape,
//! `{"error":{"code":400,"message":"…","status":"FAILED_PRECONDITION","details":[…]}}`
//! ([`classify_api_error`]):
//!
//! | SDM answer | kind |
//! |---|---|
//! | connection error, timeout, body cut off | `Transient` |
//! | 5xx (`INTERNAL`, `UNAVAILABLE`, `DEADLINE_EXCEEDED`, the front end's HTML 502) | `Transient` |
//! | 501 `UNIMPLEMENTED` | `Unsupported` |
//! | 429 `RESOURCE_EXHAUSTED` ("Rate limited for the ExecuteDeviceCommand API for the user.") | `RateLimited`; `retry_after` from `Retry-After`, else the body's `google.rpc.RetryInfo.retryDelay`, else `None` |
//! | 401 `UNAUTHENTICATED` (expired, unknown **or revoked** access token: Google answers them alike) | `AuthExpired` |
//! | 403 `PERMISSION_DENIED` (the user removed the project's access, or the scope is missing) | `Unauthorized` |
//! | 404 `NOT_FOUND` (device or enterprise unknown, or not shared with the project) | `NotFound` |
//! | 400 `FAILED_PRECONDITION` "Device is offline." | `DeviceOffline` |
//! | 400 `FAILED_PRECONDITION` (a setpoint command the mode does not allow, Eco is on) | `PreconditionFailed` |
//! | 409 `ABORTED`, 412 | `PreconditionFailed` |
//! | 400 `INVALID_ARGUMENT` and any other 400, 422 | `Rejected` |
//! | other statuses | `Protocol` |
//! | 2xx whose body does not parse | `Protocol` with the serde error as source |
//!
//! The token endpoint ([`classify_token_error`]) answers OAuth's shape,
//! `{"error":"invalid_grant","error_description":"Token has been expired or revoked."}`: 400/401
//! (`invalid_grant`, `invalid_client`, `unauthorized_client`) → `Unauthorized` (only a new
//! consent helps); the rest as above.

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use oemgate_core::{AdapterError, AdapterResult, Clock, ErrorKind};
use reqwest::header::HeaderMap;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::model::TokenResponse;

/// The vendor name on every error.
pub(crate) const VENDOR: &str = "NEST";

/// The log target.
const TARGET: &str = "oemgate_nest";

/// Google's own error, attached as the `source` of an [`AdapterError`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct NestApiError {
    /// The HTTP status.
    pub status: u16,
    /// The RPC status (`FAILED_PRECONDITION`, `RESOURCE_EXHAUSTED`) or the OAuth `error`
    /// (`invalid_grant`); empty when the body had neither.
    pub rpc_status: String,
    /// The message (or `error_description`, or the start of a non-JSON body).
    pub message: String,
    /// `errors[].reason` (`rateLimitExceeded`), where given.
    pub reason: Option<String>,
    /// `google.rpc.RetryInfo.retryDelay`, where given.
    pub retry_delay: Option<Duration>,
}

impl fmt::Display for NestApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HTTP {}", self.status)?;
        if !self.rpc_status.is_empty() {
            write!(f, " {}", self.rpc_status)?;
        }
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        Ok(())
    }
}

/// Reads a protobuf JSON duration (`"37s"`, `"1.500s"`).
pub fn parse_proto_duration(s: &str) -> Option<Duration> {
    let secs: f64 = s.trim().strip_suffix('s')?.trim().parse().ok()?;
    (secs.is_finite() && (0.0..1.0e9).contains(&secs)).then(|| Duration::from_secs_f64(secs))
}

fn capped(body: &[u8]) -> String {
    String::from_utf8_lossy(body).trim().chars().take(300).collect()
}

/// Reads an error body in Google's API shape or OAuth's shape, falling back to the raw text
/// (at most 300 characters: bodies may hold personal data).
pub fn parse_error_body(status: u16, body: &[u8]) -> NestApiError {
    let mut out = NestApiError {
        status,
        rpc_status: String::new(),
        message: String::new(),
        reason: None,
        retry_delay: None,
    };
    let Ok(json) = serde_json::from_slice::<Value>(body) else {
        out.message = capped(body);
        return out;
    };
    let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_owned);
    match json.get("error") {
        Some(Value::Object(e)) => {
            out.rpc_status = text(e.get("status")).unwrap_or_default();
            out.message = text(e.get("message")).unwrap_or_default();
            out.reason = e
                .get("errors")
                .and_then(Value::as_array)
                .and_then(|a| a.iter().find_map(|x| text(x.get("reason"))));
            out.retry_delay = e.get("details").and_then(Value::as_array).and_then(|details| {
                details.iter().find_map(|d| {
                    let is_retry_info = d
                        .get("@type")
                        .and_then(Value::as_str)
                        .is_some_and(|t| t.ends_with("google.rpc.RetryInfo"));
                    if !is_retry_info {
                        return None;
                    }
                    d.get("retryDelay").and_then(Value::as_str).and_then(parse_proto_duration)
                })
            });
        }
        Some(Value::String(e)) => {
            out.rpc_status = e.clone();
            out.message = text(json.get("error_description")).unwrap_or_default();
        }
        _ => out.message = capped(body),
    }
    out
}

/// `Retry-After` in seconds or as an HTTP date, relative to `now`.
fn retry_after_header(headers: &HeaderMap, now: DateTime<Utc>) -> Option<Duration> {
    let value = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<f64>() {
        return (secs.is_finite() && (0.0..1.0e9).contains(&secs))
            .then(|| Duration::from_secs_f64(secs));
    }
    let at = DateTime::parse_from_rfc2822(value).ok()?.with_timezone(&Utc);
    Some((at - now).to_std().unwrap_or(Duration::ZERO))
}

/// Classifies a non-2xx answer of the SDM API. `what` names the call for the message
/// ("devices.get", "executeCommand ThermostatMode.SetMode"); `now` reads an HTTP-date
/// `Retry-After`.
pub fn classify_api_error(
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
    what: &str,
    now: DateTime<Utc>,
) -> AdapterError {
    let api = parse_error_body(status, body);
    let rpc = api.rpc_status.as_str();
    let (kind, message) = match status {
        429 => {
            let mut err = AdapterError::new(
                ErrorKind::RateLimited,
                VENDOR,
                format!("{what}: rate limited ({})", api.message),
            );
            if let Some(after) = retry_after_header(headers, now).or(api.retry_delay) {
                err = err.with_retry_after(after);
            }
            return err.with_source(api);
        }
        401 => (ErrorKind::AuthExpired, format!("{what}: access token rejected")),
        403 => (
            ErrorKind::Unauthorized,
            format!("{what}: permission denied; the user must grant access again"),
        ),
        404 => (ErrorKind::NotFound, format!("{what}: not found")),
        400 if rpc == "FAILED_PRECONDITION"
            && api.message.to_ascii_lowercase().contains("offline") =>
        {
            (ErrorKind::DeviceOffline, format!("{what}: the device is offline"))
        }
        400 if rpc == "FAILED_PRECONDITION" => {
            (ErrorKind::PreconditionFailed, format!("{what}: not possible now ({})", api.message))
        }
        409 | 412 => (ErrorKind::PreconditionFailed, format!("{what}: not possible now")),
        400 | 422 => (ErrorKind::Rejected, format!("{what}: refused ({})", api.message)),
        501 => (ErrorKind::Unsupported, format!("{what}: not implemented by SDM")),
        500..=599 => (ErrorKind::Transient, format!("{what}: server error {status}")),
        _ => (ErrorKind::Protocol, format!("{what}: unexpected HTTP status {status}")),
    };
    AdapterError::new(kind, VENDOR, message).with_source(api)
}

/// Classifies a non-2xx answer of the token endpoint: a refused grant or client means only a
/// new consent helps (`Unauthorized`).
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
                format!("{what}: grant refused ({}); the user must link the account again", {
                    if api.rpc_status.is_empty() { "no reason given" } else { &api.rpc_status }
                }),
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
        tracing::debug!(target: TARGET, what, body = %capped(body), "unparseable body");
        AdapterError::new(ErrorKind::Protocol, VENDOR, format!("{what}: unexpected response body"))
            .with_source(e)
    })
}

/// The HTTP side of the adapter: base URLs, OAuth client, timeouts.
#[derive(Clone)]
pub(crate) struct NestClient {
    http: reqwest::Client,
    api_base: String,
    token_url: String,
    client_id: String,
    client_secret: String,
    timeout: Duration,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for NestClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NestClient")
            .field("api_base", &self.api_base)
            .field("token_url", &self.token_url)
            .field("client_id", &self.client_id)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl NestClient {
    pub(crate) fn new(
        http: reqwest::Client,
        api_base: &str,
        token_url: &str,
        client_id: &str,
        client_secret: &str,
        timeout: Duration,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            http,
            api_base: api_base.trim_end_matches('/').to_owned(),
            token_url: token_url.to_owned(),
            client_id: client_id.to_owned(),
            client_secret: client_secret.to_owned(),
            timeout,
            clock,
        }
    }

    fn api_request(
        &self,
        method: reqwest::Method,
        token: &str,
        path: &str,
    ) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.api_base))
            .bearer_auth(token)
            .header(reqwest::header::ACCEPT, "application/json")
            .timeout(self.timeout)
    }

    async fn answer<T: DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
        what: &str,
    ) -> AdapterResult<T> {
        let (status, headers, body) = send(request, what).await?;
        if !(200..300).contains(&status) {
            return Err(classify_api_error(status, &headers, &body, what, self.clock.now()));
        }
        decode(&body, what)
    }

    /// `GET {api}{path}` with the bearer token; decodes the JSON answer.
    pub(crate) async fn get<T: DeserializeOwned>(
        &self,
        token: &str,
        path: &str,
        what: &str,
    ) -> AdapterResult<T> {
        let request = self.api_request(reqwest::Method::GET, token, path);
        self.answer(request, what).await
    }

    /// `POST {api}{path}` with the bearer token and a JSON body.
    pub(crate) async fn post<T: DeserializeOwned>(
        &self,
        token: &str,
        path: &str,
        body: &Value,
        what: &str,
    ) -> AdapterResult<T> {
        let request = self.api_request(reqwest::Method::POST, token, path).json(body);
        self.answer(request, what).await
    }

    /// `POST {token_url}` with the grant and the client as a form body (Google's way).
    pub(crate) async fn token(
        &self,
        grant: &[(&str, &str)],
        what: &str,
    ) -> AdapterResult<TokenResponse> {
        let mut form: Vec<(&str, &str)> = vec![
            ("client_id", self.client_id.as_str()),
            ("client_secret", self.client_secret.as_str()),
        ];
        form.extend_from_slice(grant);
        let request = self
            .http
            .post(&self.token_url)
            .form(&form)
            .header(reqwest::header::ACCEPT, "application/json")
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
        target: TARGET,
        what,
        status,
        bytes = body.len(),
        millis = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        "nest response"
    );
    Ok((status, headers, body.to_vec()))
}

/// The [`NestApiError`] behind an adapter error, if there is one (also through the shared
/// copies a batch hands to every device).
pub fn api_error_of(err: &AdapterError) -> Option<&NestApiError> {
    let mut source = StdError::source(err);
    while let Some(e) = source {
        if let Some(api) = e.downcast_ref::<NestApiError>() {
            return Some(api);
        }
        source = e.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use reqwest::header::HeaderValue;
    use serde_json::json;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 15, 8, 0, 0).unwrap()
    }

    fn google(code: u16, status: &str, message: &str) -> String {
        json!({ "error": { "code": code, "message": message, "status": status } }).to_string()
    }

    fn kind(status: u16, body: &str) -> ErrorKind {
        classify_api_error(status, &HeaderMap::new(), body.as_bytes(), "test", now()).kind()
    }

    #[test]
    fn classifies_statuses() {
        let cases = [
            (400, "FAILED_PRECONDITION", "Device is offline.", ErrorKind::DeviceOffline),
            (
                400,
                "FAILED_PRECONDITION",
                "sdm.devices.commands.ThermostatTemperatureSetpoint.SetHeat command not allowed \
                 in current thermostat mode.",
                ErrorKind::PreconditionFailed,
            ),
            (
                400,
                "FAILED_PRECONDITION",
                "Command not allowed when thermostat in MANUAL_ECO mode.",
                ErrorKind::PreconditionFailed,
            ),
            (400, "INVALID_ARGUMENT", "Invalid value for heatCelsius.", ErrorKind::Rejected),
            (
                401,
                "UNAUTHENTICATED",
                "Request had invalid authentication credentials.",
                ErrorKind::AuthExpired,
            ),
            (
                403,
                "PERMISSION_DENIED",
                "The caller does not have permission",
                ErrorKind::Unauthorized,
            ),
            (404, "NOT_FOUND", "Device enterprises/p/devices/d not found.", ErrorKind::NotFound),
            (409, "ABORTED", "Aborted", ErrorKind::PreconditionFailed),
            (500, "INTERNAL", "Internal error encountered.", ErrorKind::Transient),
            (503, "UNAVAILABLE", "The service is currently unavailable.", ErrorKind::Transient),
            (
                504,
                "DEADLINE_EXCEEDED",
                "Deadline expired before operation could complete.",
                ErrorKind::Transient,
            ),
            (501, "UNIMPLEMENTED", "Not implemented", ErrorKind::Unsupported),
            (418, "", "", ErrorKind::Protocol),
        ];
        for (status, rpc, message, expected) in cases {
            assert_eq!(kind(status, &google(status, rpc, message)), expected, "{status} {message}");
        }
        assert_eq!(
            kind(502, "<html><title>Error 502 (Server Error)!!1</title></html>"),
            ErrorKind::Transient
        );
        assert_eq!(kind(400, ""), ErrorKind::Rejected);
        assert_eq!(kind(401, ""), ErrorKind::AuthExpired);
    }

    #[test]
    fn rate_limits_read_every_signal() {
        let observed = json!({"error":{"code":429,"message":"Rate limited for the ExecuteDeviceCommand API for the user.","errors":[{"message":"Rate limited for the ExecuteDeviceCommand API for the user.","domain":"global","reason":"rateLimitExceeded"}],"status":"RESOURCE_EXHAUSTED"}}).to_string();
        let e = classify_api_error(429, &HeaderMap::new(), observed.as_bytes(), "x", now());
        assert_eq!(e.kind(), ErrorKind::RateLimited);
        assert_eq!(e.retry_after(), None, "no signal, no guess");
        assert_eq!(
            api_error_of(&e).and_then(|a| a.reason.clone()).as_deref(),
            Some("rateLimitExceeded")
        );

        let with_info = json!({"error":{"code":429,"message":"Resource has been exhausted","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"37s"}]}}).to_string();
        let e = classify_api_error(429, &HeaderMap::new(), with_info.as_bytes(), "x", now());
        assert_eq!(e.retry_after(), Some(Duration::from_secs(37)));

        let mut headers = HeaderMap::new();
        headers.insert("retry-after", HeaderValue::from_static("12"));
        let e = classify_api_error(429, &headers, with_info.as_bytes(), "x", now());
        assert_eq!(e.retry_after(), Some(Duration::from_secs(12)), "the header wins");

        let mut headers = HeaderMap::new();
        headers.insert("retry-after", HeaderValue::from_static("Thu, 15 Jan 2026 08:01:00 GMT"));
        let e = classify_api_error(429, &headers, b"", "x", now());
        assert_eq!(e.retry_after(), Some(Duration::from_secs(60)));
    }

    #[test]
    fn proto_durations() {
        assert_eq!(parse_proto_duration("37s"), Some(Duration::from_secs(37)));
        assert_eq!(parse_proto_duration("1.500s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_proto_duration("37"), None);
        assert_eq!(parse_proto_duration("-1s"), None);
        assert_eq!(parse_proto_duration("NaNs"), None);
    }

    #[test]
    fn token_errors_need_relink() {
        let body = br#"{"error":"invalid_grant","error_description":"Token has been expired or revoked."}"#;
        let e = classify_token_error(400, &HeaderMap::new(), body, "token refresh", now());
        assert_eq!(e.kind(), ErrorKind::Unauthorized);
        let api = api_error_of(&e).unwrap();
        assert_eq!(api.rpc_status, "invalid_grant");
        assert_eq!(api.message, "Token has been expired or revoked.");
        let body =
            br#"{"error":"invalid_client","error_description":"The OAuth client was not found."}"#;
        let e = classify_token_error(401, &HeaderMap::new(), body, "token refresh", now());
        assert_eq!(e.kind(), ErrorKind::Unauthorized);
        let e = classify_token_error(503, &HeaderMap::new(), b"", "token refresh", now());
        assert_eq!(e.kind(), ErrorKind::Transient);
    }

    #[test]
    fn bodies_that_do_not_parse_are_protocol_errors() {
        let e = decode::<crate::model::Device>(b"{\"name\":\"enterprises/p/dev", "devices.get")
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Protocol);
        assert!(StdError::source(&e).unwrap().is::<serde_json::Error>());
        let e = decode::<crate::model::Device>(b"<html>Sign in</html>", "devices.get").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Protocol);
        let e = decode::<crate::model::Device>(b"{}", "devices.get").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Protocol, "name is required");
    }

    #[test]
    fn raw_error_text_is_capped() {
        let long = "x".repeat(1000);
        assert_eq!(parse_error_body(500, long.as_bytes()).message.len(), 300);
    }
}
