//! HTTP calls to ecobee's API (`/1/thermostatSummary`, `/1/thermostat`) and its PIN
//! authorization endpoints (`/authorize`, `/token`), and the classification of every failure
//! into an [`ErrorKind`].
//!
//! The client never retries: one call is one HTTP request, so callers can count requests.
//! Neither URLs (token requests carry codes and refresh tokens in the query string, as ecobee
//! documents) nor bodies are logged; reqwest errors are attached with `without_url()`.
//!
//! ecobee signals API errors with **HTTP 500** and a status object,
//! `{"status":{"code":N,"message":"..."}}`, whatever went wrong. The code decides
//! ([`classify_api_error`]):
//!
//! | ecobee answer | kind |
//! |---|---|
//! | connection error, timeout, body cut off | `Transient` |
//! | 429, or any answer whose message says "too many requests" / "rate limit" | `RateLimited`, `retry_after` from `Retry-After` (seconds or HTTP date), else none |
//! | status **14** "Authentication token has expired" | `AuthExpired` (refresh, then call again) |
//! | status **1** "Authentication failed", **16** "Token has been deauthorized by user" | `Unauthorized` (the user must authorize the application again) |
//! | status 2 "Not authorized" naming the token's scope (a `smartRead` token writing) | `Unauthorized` |
//! | status 2 "Not authorized" otherwise (a thermostat that is not the user's) | `NotFound` |
//! | status 3 "Processing error" saying the thermostat is not connected | `DeviceOffline` |
//! | status 3 otherwise | `Transient` |
//! | status 7 "Validation error", 8 "Invalid function", 11 "Function error", 15 "Duplicate data" | `Rejected` |
//! | status 4, 5, 6, 9, 10, 12, 13 (the request itself is wrong: an adapter bug) | `Protocol` |
//! | other 5xx (502/503/504 pages, unknown codes on a 5xx) | `Transient` |
//! | 401 without a status code | `AuthExpired`; 403 `Unauthorized`; 404 `NotFound`; 400/422 `Rejected`; 409/412 `PreconditionFailed` |
//! | anything else | `Protocol` |
//! | 2xx whose body does not parse | `Protocol` with the serde error as source |
//! | 2xx whose status code is not 0 | as that code above |
//!
//! The authorization endpoints answer OAuth errors ([`classify_token_error`]):
//! `authorization_pending` (the user has not entered the PIN yet) is `PreconditionFailed`;
//! `slow_down` is `RateLimited`; `invalid_grant` (spent, revoked or unknown refresh token or
//! code), `authorization_expired` (the PIN expired), `invalid_client`,
//! `unauthorized_client`, `access_denied`, `invalid_scope`, `account_locked`,
//! `account_disabled` are `Unauthorized` (the user must link again); `invalid_request`,
//! `unsupported_grant_type`, `not_supported` are `Protocol`; 5xx are `Transient`.

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use oemgate_core::{AdapterError, AdapterResult, Clock, ErrorKind};
use reqwest::header::HeaderMap;
use serde::de::DeserializeOwned;

use crate::model::{
    OAuthError, PinResponse, StatusBody, ThermostatRequest, TokenResponse, UpdateRequest,
};

/// The vendor name on every error.
pub(crate) const VENDOR: &str = "ECOBEE";

/// ecobee's status code for an expired access token.
pub const STATUS_TOKEN_EXPIRED: i64 = 14;
/// ecobee's status code for failed authentication (invalid token or credentials).
pub const STATUS_AUTH_FAILED: i64 = 1;
/// ecobee's status code for a token the user deauthorized.
pub const STATUS_TOKEN_DEAUTHORIZED: i64 = 16;

/// ecobee's own error, attached as the `source` of an [`AdapterError`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct EcobeeApiError {
    /// The HTTP status.
    pub http_status: u16,
    /// ecobee's status code, when the body had one.
    pub code: Option<i64>,
    /// The OAuth `error`, for the authorization endpoints.
    pub error: Option<String>,
    /// ecobee's message (or the OAuth `error_description`, or the start of the raw body).
    pub message: String,
}

impl fmt::Display for EcobeeApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HTTP {}", self.http_status)?;
        if let Some(code) = self.code {
            write!(f, ", status {code}")?;
        }
        if let Some(error) = &self.error {
            write!(f, ", {error}")?;
        }
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        Ok(())
    }
}

impl EcobeeApiError {
    fn text(&self) -> String {
        format!("{} {}", self.error.as_deref().unwrap_or(""), self.message).to_ascii_lowercase()
    }

    fn says_rate_limited(&self) -> bool {
        let text = self.text();
        text.contains("too many requests")
            || text.contains("rate limit")
            || text.contains("throttl")
    }

    fn says_not_connected(&self) -> bool {
        let text = self.text();
        text.contains("not connected") || text.contains("disconnected") || text.contains("offline")
    }
}

fn raw_head(body: &[u8]) -> String {
    String::from_utf8_lossy(body).trim().chars().take(300).collect()
}

/// Reads an error body in ecobee's shapes (status object or OAuth error), falling back to the
/// raw text (at most 300 characters: bodies may hold personal data).
pub fn parse_error_body(http_status: u16, body: &[u8]) -> EcobeeApiError {
    if let Ok(StatusBody { status: Some(status) }) = serde_json::from_slice::<StatusBody>(body)
        && (status.code.is_some() || status.message.is_some())
    {
        return EcobeeApiError {
            http_status,
            code: status.code,
            error: None,
            message: status.message.unwrap_or_default(),
        };
    }
    if let Ok(oauth) = serde_json::from_slice::<OAuthError>(body)
        && oauth.error.is_some()
    {
        return EcobeeApiError {
            http_status,
            code: None,
            error: oauth.error,
            message: oauth.error_description.unwrap_or_default(),
        };
    }
    EcobeeApiError { http_status, code: None, error: None, message: raw_head(body) }
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

fn rate_limited(
    api: EcobeeApiError,
    headers: &HeaderMap,
    what: &str,
    now: DateTime<Utc>,
) -> AdapterError {
    let mut err =
        AdapterError::new(ErrorKind::RateLimited, VENDOR, format!("{what}: rate limited"));
    if let Some(after) = retry_after_header(headers, now) {
        err = err.with_retry_after(after);
    }
    err.with_source(api)
}

/// Classifies an answer of the API (`/1/...`) that is an error: any non-2xx, or a 2xx whose
/// status code is not 0. `what` names the call for the message ("thermostatSummary").
pub fn classify_api_error(
    http_status: u16,
    headers: &HeaderMap,
    body: &[u8],
    what: &str,
    now: DateTime<Utc>,
) -> AdapterError {
    let api = parse_error_body(http_status, body);
    if http_status == 429 || api.says_rate_limited() {
        return rate_limited(api, headers, what, now);
    }
    let by_code = api.code.filter(|c| *c != 0).map(|code| match code {
        STATUS_TOKEN_EXPIRED => {
            (ErrorKind::AuthExpired, format!("{what}: the access token has expired"))
        }
        STATUS_AUTH_FAILED | STATUS_TOKEN_DEAUTHORIZED => (
            ErrorKind::Unauthorized,
            format!("{what}: authorization invalid or revoked; the user must link again"),
        ),
        2 if api.text().contains("scope") => (
            ErrorKind::Unauthorized,
            format!("{what}: the granted scope does not allow this; link again with smartWrite"),
        ),
        2 => (ErrorKind::NotFound, format!("{what}: thermostat not on the account")),
        3 if api.says_not_connected() => {
            (ErrorKind::DeviceOffline, format!("{what}: the thermostat is not connected"))
        }
        3 => (ErrorKind::Transient, format!("{what}: processing error at ecobee")),
        7 | 8 | 11 | 15 => (ErrorKind::Rejected, format!("{what}: refused ({})", api.message)),
        4 | 5 | 6 | 9 | 10 | 12 | 13 => {
            (ErrorKind::Protocol, format!("{what}: ecobee refused the request's form"))
        }
        _ if (500..600).contains(&http_status) => {
            (ErrorKind::Transient, format!("{what}: server error (status {code})"))
        }
        _ => (ErrorKind::Protocol, format!("{what}: unexpected status {code}")),
    });
    let (kind, message) = by_code.unwrap_or_else(|| match http_status {
        401 => (ErrorKind::AuthExpired, format!("{what}: access token rejected")),
        403 => (ErrorKind::Unauthorized, format!("{what}: forbidden")),
        404 => (ErrorKind::NotFound, format!("{what}: not found")),
        400 | 422 => (ErrorKind::Rejected, format!("{what}: refused")),
        409 | 412 => (ErrorKind::PreconditionFailed, format!("{what}: not possible now")),
        500..=599 => (ErrorKind::Transient, format!("{what}: server error {http_status}")),
        _ => (ErrorKind::Protocol, format!("{what}: unexpected HTTP status {http_status}")),
    });
    AdapterError::new(kind, VENDOR, message).with_source(api)
}

/// Classifies a non-2xx answer of `/authorize` or `/token`.
pub fn classify_token_error(
    http_status: u16,
    headers: &HeaderMap,
    body: &[u8],
    what: &str,
    now: DateTime<Utc>,
) -> AdapterError {
    let api = parse_error_body(http_status, body);
    if http_status == 429 || api.error.as_deref() == Some("slow_down") {
        return rate_limited(api, headers, what, now);
    }
    if (500..600).contains(&http_status) {
        return classify_api_error(http_status, headers, body, what, now);
    }
    let kind = match api.error.as_deref() {
        Some("authorization_pending") => ErrorKind::PreconditionFailed,
        Some(
            "invalid_grant"
            | "authorization_expired"
            | "invalid_client"
            | "unauthorized_client"
            | "access_denied"
            | "invalid_scope"
            | "account_locked"
            | "account_disabled",
        ) => ErrorKind::Unauthorized,
        Some("invalid_request" | "unsupported_grant_type" | "not_supported") => ErrorKind::Protocol,
        _ if matches!(http_status, 400 | 401 | 403) => ErrorKind::Unauthorized,
        _ => ErrorKind::Protocol,
    };
    let message = match kind {
        ErrorKind::PreconditionFailed => {
            format!("{what}: the user has not entered the PIN in the ecobee portal yet")
        }
        ErrorKind::Unauthorized => format!(
            "{what}: grant refused ({}); the user must link the account again",
            api.error.as_deref().unwrap_or("no reason given")
        ),
        _ => format!("{what}: unexpected answer (HTTP {http_status})"),
    };
    AdapterError::new(kind, VENDOR, message).with_source(api)
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
        tracing::debug!(target: "oemgate_ecobee", what, body = %raw_head(body), "unparseable body");
        AdapterError::new(ErrorKind::Protocol, VENDOR, format!("{what}: unexpected response body"))
            .with_source(e)
    })
}

/// Decodes a 2xx answer of the API: a status code other than 0 is an error as
/// [`classify_api_error`] says, anything that does not parse a `Protocol` error.
pub fn decode_api<T: DeserializeOwned>(
    http_status: u16,
    headers: &HeaderMap,
    body: &[u8],
    what: &str,
    now: DateTime<Utc>,
) -> AdapterResult<T> {
    if let Ok(StatusBody { status: Some(status) }) = serde_json::from_slice::<StatusBody>(body)
        && status.code.is_some_and(|c| c != 0)
    {
        return Err(classify_api_error(http_status, headers, body, what, now));
    }
    decode(body, what)
}

/// The HTTP side of the adapter: base URLs, the application's API key, timeouts.
#[derive(Clone)]
pub(crate) struct EcobeeClient {
    http: reqwest::Client,
    api_base: String,
    auth_base: String,
    api_key: String,
    timeout: Duration,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for EcobeeClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EcobeeClient")
            .field("api_base", &self.api_base)
            .field("auth_base", &self.auth_base)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl EcobeeClient {
    pub(crate) fn new(
        http: reqwest::Client,
        api_base: &str,
        auth_base: &str,
        api_key: &str,
        timeout: Duration,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            http,
            api_base: api_base.trim_end_matches('/').to_owned(),
            auth_base: auth_base.trim_end_matches('/').to_owned(),
            api_key: api_key.to_owned(),
            timeout,
            clock,
        }
    }

    /// `GET {api}{path}?json={"selection":...}` with the bearer token.
    pub(crate) async fn read<T: DeserializeOwned>(
        &self,
        token: &str,
        path: &str,
        request: &ThermostatRequest,
        what: &str,
    ) -> AdapterResult<T> {
        let json = serde_json::to_string(request).map_err(|e| {
            AdapterError::new(ErrorKind::Protocol, VENDOR, format!("{what}: selection"))
                .with_source(e)
        })?;
        let request = self
            .http
            .get(format!("{}{path}", self.api_base))
            .query(&[("json", json.as_str())])
            .bearer_auth(token)
            .header(reqwest::header::ACCEPT, "application/json")
            .timeout(self.timeout);
        let (status, headers, body) = send(request, what).await?;
        let now = self.clock.now();
        if !(200..300).contains(&status) {
            return Err(classify_api_error(status, &headers, &body, what, now));
        }
        decode_api(status, &headers, &body, what, now)
    }

    /// `POST {api}/thermostat?format=json` with an update; success is status code 0.
    pub(crate) async fn update(
        &self,
        token: &str,
        update: &UpdateRequest,
        what: &str,
    ) -> AdapterResult<()> {
        let request = self
            .http
            .post(format!("{}/thermostat", self.api_base))
            .query(&[("format", "json")])
            .bearer_auth(token)
            .header(reqwest::header::ACCEPT, "application/json")
            .json(update)
            .timeout(self.timeout);
        let (status, headers, body) = send(request, what).await?;
        let now = self.clock.now();
        if !(200..300).contains(&status) {
            return Err(classify_api_error(status, &headers, &body, what, now));
        }
        let answer: StatusBody = decode_api(status, &headers, &body, what, now)?;
        match answer.status.and_then(|s| s.code) {
            Some(0) => Ok(()),
            _ => Err(AdapterError::new(
                ErrorKind::Protocol,
                VENDOR,
                format!("{what}: the answer has no status code 0"),
            )),
        }
    }

    /// `GET {auth}/authorize?response_type=ecobeePin&client_id=..&scope=..`.
    pub(crate) async fn authorize(&self, scope: &str) -> AdapterResult<PinResponse> {
        let what = "authorize (PIN request)";
        let request = self
            .http
            .get(format!("{}/authorize", self.auth_base))
            .query(&[
                ("response_type", "ecobeePin"),
                ("client_id", self.api_key.as_str()),
                ("scope", scope),
            ])
            .header(reqwest::header::ACCEPT, "application/json")
            .timeout(self.timeout);
        let (status, headers, body) = send(request, what).await?;
        if !(200..300).contains(&status) {
            return Err(classify_token_error(status, &headers, &body, what, self.clock.now()));
        }
        decode(&body, what)
    }

    /// `POST {auth}/token?grant_type=..&..&client_id=..`: the grant's parameters travel in
    /// the query string, as ecobee documents.
    pub(crate) async fn token(
        &self,
        grant: &[(&str, &str)],
        what: &str,
    ) -> AdapterResult<TokenResponse> {
        let mut query: Vec<(&str, &str)> = grant.to_vec();
        query.push(("client_id", self.api_key.as_str()));
        let request = self
            .http
            .post(format!("{}/token", self.auth_base))
            .query(&query)
            .header(reqwest::header::ACCEPT, "application/json")
            .header(reqwest::header::CONTENT_LENGTH, "0")
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
        target: "oemgate_ecobee",
        what,
        status,
        bytes = body.len(),
        millis = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        "ecobee response"
    );
    Ok((status, headers, body.to_vec()))
}

/// The [`EcobeeApiError`] behind an adapter error, if there is one.
pub fn api_error_of(err: &AdapterError) -> Option<&EcobeeApiError> {
    StdError::source(err).and_then(|s| s.downcast_ref::<EcobeeApiError>())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use reqwest::header::HeaderValue;

    fn now() -> DateTime<Utc> {
        Utc.timestamp_opt(1_780_000_000, 0).unwrap()
    }

    fn status(code: i64, message: &str) -> String {
        serde_json::json!({ "status": { "code": code, "message": message } }).to_string()
    }

    fn kind(http: u16, body: &str) -> ErrorKind {
        classify_api_error(http, &HeaderMap::new(), body.as_bytes(), "test", now()).kind()
    }

    #[test]
    fn classifies_status_codes() {
        let expired = "Authentication token has expired. Refresh your tokens.";
        assert_eq!(kind(500, &status(14, expired)), ErrorKind::AuthExpired);
        assert_eq!(kind(500, &status(1, "Authentication failed.")), ErrorKind::Unauthorized);
        assert_eq!(
            kind(500, &status(16, "Invalid token. Token has been deauthorized by user.")),
            ErrorKind::Unauthorized
        );
        assert_eq!(kind(500, &status(2, "Not authorized.")), ErrorKind::NotFound);
        assert_eq!(
            kind(
                500,
                &status(2, "Not authorized. The token's scope (smartRead) does not allow updates.")
            ),
            ErrorKind::Unauthorized
        );
        assert_eq!(kind(500, &status(3, "Processing error.")), ErrorKind::Transient);
        assert_eq!(
            kind(500, &status(3, "Processing error. Thermostat is not connected.")),
            ErrorKind::DeviceOffline
        );
        assert_eq!(kind(500, &status(7, "Validation error.")), ErrorKind::Rejected);
        assert_eq!(kind(500, &status(8, "Invalid function.")), ErrorKind::Rejected);
        assert_eq!(kind(500, &status(6, "Too many thermostats")), ErrorKind::Protocol);
        assert_eq!(kind(500, &status(9, "Invalid selection.")), ErrorKind::Protocol);
        assert_eq!(kind(500, &status(99, "?")), ErrorKind::Transient);
        assert_eq!(kind(500, "Internal Server Error"), ErrorKind::Transient);
        assert_eq!(kind(503, "<html>503 Service Unavailable</html>"), ErrorKind::Transient);
        assert_eq!(kind(401, ""), ErrorKind::AuthExpired);
        assert_eq!(kind(403, ""), ErrorKind::Unauthorized);
        assert_eq!(kind(404, ""), ErrorKind::NotFound);
        assert_eq!(kind(409, ""), ErrorKind::PreconditionFailed);
        assert_eq!(kind(418, ""), ErrorKind::Protocol);
    }

    #[test]
    fn rate_limits_take_retry_after() {
        let mut headers = HeaderMap::new();
        headers.insert("retry-after", HeaderValue::from_static("37"));
        let body = status(3, "Too many requests.");
        let e = classify_api_error(429, &headers, body.as_bytes(), "thermostat", now());
        assert_eq!(e.kind(), ErrorKind::RateLimited);
        assert_eq!(e.retry_after(), Some(Duration::from_secs(37)));
        assert_eq!(api_error_of(&e).and_then(|a| a.code), Some(3));
        // ecobee's "too many requests" as a 500 status: rate limited, no signal, no guess.
        let e = classify_api_error(500, &HeaderMap::new(), body.as_bytes(), "x", now());
        assert_eq!(e.kind(), ErrorKind::RateLimited);
        assert_eq!(e.retry_after(), None);
        // An HTTP date.
        let mut headers = HeaderMap::new();
        let at = (now() + chrono::Duration::seconds(90)).to_rfc2822();
        headers.insert("retry-after", HeaderValue::from_str(&at).unwrap());
        let e = classify_api_error(429, &headers, b"", "x", now());
        assert_eq!(e.retry_after(), Some(Duration::from_secs(90)));
    }

    #[test]
    fn token_errors() {
        let tk = |http: u16, error: &str| {
            let body = serde_json::json!({ "error": error, "error_description": "d" }).to_string();
            classify_token_error(http, &HeaderMap::new(), body.as_bytes(), "token", now()).kind()
        };
        assert_eq!(tk(400, "invalid_grant"), ErrorKind::Unauthorized);
        assert_eq!(tk(400, "authorization_expired"), ErrorKind::Unauthorized);
        assert_eq!(tk(401, "invalid_client"), ErrorKind::Unauthorized);
        assert_eq!(tk(400, "authorization_pending"), ErrorKind::PreconditionFailed);
        assert_eq!(tk(400, "slow_down"), ErrorKind::RateLimited);
        assert_eq!(tk(400, "unsupported_grant_type"), ErrorKind::Protocol);
        assert_eq!(tk(400, "something_new"), ErrorKind::Unauthorized);
        assert_eq!(tk(503, "whatever"), ErrorKind::Transient);
        let e = classify_token_error(500, &HeaderMap::new(), b"oops", "token", now());
        assert_eq!(e.kind(), ErrorKind::Transient);
    }

    #[test]
    fn bodies_that_do_not_parse_are_protocol_errors() {
        use crate::model::ThermostatSummary;
        let e = decode::<ThermostatSummary>(b"{\"revisionList\":[\"1:a:tr", "summary").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Protocol);
        assert!(StdError::source(&e).unwrap().is::<serde_json::Error>());
        let e = decode::<ThermostatSummary>(b"<html>maintenance</html>", "summary").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Protocol);
        let e = decode::<ThermostatSummary>(b"{}", "summary").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Protocol, "revisionList is required");
        // A 200 carrying an error status is that error.
        let body = status(14, "expired");
        let e =
            decode_api::<ThermostatSummary>(200, &HeaderMap::new(), body.as_bytes(), "s", now())
                .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::AuthExpired);
    }

    #[test]
    fn raw_error_text_is_capped() {
        let long = "x".repeat(1000);
        assert_eq!(parse_error_body(500, long.as_bytes()).message.len(), 300);
    }
}
