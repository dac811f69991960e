//! HTTP calls to the Enlighten API v4 and Enphase's token endpoint, and the classification of
//! every failure into an [`ErrorKind`].
//!
//! Every API call carries **both** the application's API key (`?key=`) and the user's bearer
//! token. The client never retries: one call is one HTTP request, so callers can count
//! requests. Neither URLs (they hold the API key, and token requests hold codes and refresh
//! tokens) nor bodies are logged; reqwest errors are attached with `without_url()`.
//!
//! Classification of the API's answers ([`classify_api_error`]):
//!
//! | Enphase answer | kind |
//! |---|---|
//! | connection error, timeout, body cut off | `Transient` |
//! | 5xx (incl. Enphase's 550–552 "data temporarily unavailable"), HTML outage pages | `Transient` |
//! | 501 "Not Implemented" | `Unsupported` (the vendor cannot do it, retrying will not help) |
//! | 429 `{"message":"Too Many Requests",...,"period":"minute","period_end":..}` | `RateLimited`; `retry_after` from `Retry-After` if sent, else `period_end - now` (a `month` period waits for the month's end) |
//! | 401 "API Key -Client mismatch", invalid or missing API key | `Unauthorized` (the application is misconfigured; a token refresh cannot help) |
//! | any other 401 (expired or unknown access token) | `AuthExpired` |
//! | 403 (plan or feature not available to the application) | `Unauthorized` |
//! | 404 | `NotFound` |
//! | 422 "System doesn't have encharge" | `NotFound` (no battery on that system) |
//! | a 4xx saying the system is not communicating | `DeviceOffline` |
//! | 400, other 422 | `Rejected` |
//! | 409, 412 | `PreconditionFailed` |
//! | other statuses (incl. 405 `{"reason":"405",...}`) | `Protocol` |
//! | 2xx whose body does not parse | `Protocol` with the serde error as source |
//!
//! The token endpoint ([`classify_token_error`]): 400/401/403 (`invalid_grant`, spent or
//! revoked refresh token, bad code, bad client) → `Unauthorized`; the rest as above.

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use oemgate_core::{AdapterError, AdapterResult, Clock, ErrorKind};
use reqwest::header::HeaderMap;
use serde::de::DeserializeOwned;

use crate::model::{ErrorBody, TokenResponse};

/// The vendor name on every error.
pub(crate) const VENDOR: &str = "ENPHASE";

/// Enphase's own error, attached as the `source` of an [`AdapterError`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct EnphaseApiError {
    /// The HTTP status.
    pub status: u16,
    /// Enphase's `message` (or OAuth `error`, or the start of the raw body).
    pub message: String,
    /// Enphase's `details` (or OAuth `error_description`), often empty.
    pub details: String,
    /// 429: the counting period (`minute`, `month`).
    pub period: Option<String>,
    /// 429: when the period ends (epoch seconds).
    pub period_end: Option<i64>,
}

impl fmt::Display for EnphaseApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HTTP {}: {}", self.status, self.message)?;
        if !self.details.is_empty() {
            write!(f, " ({})", self.details)?;
        }
        Ok(())
    }
}

impl EnphaseApiError {
    fn text(&self) -> String {
        format!("{} {}", self.message, self.details).to_ascii_lowercase()
    }
}

/// Reads an error body in any of Enphase's shapes, falling back to the raw text (at most 300
/// characters: bodies may hold personal data).
pub fn parse_error_body(status: u16, body: &[u8]) -> EnphaseApiError {
    let parsed = serde_json::from_slice::<ErrorBody>(body).ok().filter(|b| {
        b.message.is_some() || b.details.is_some() || b.error.is_some() || b.reason.is_some()
    });
    match parsed {
        Some(b) => {
            let message = match (b.message_text(), &b.error) {
                (m, _) if !m.is_empty() => m,
                (_, Some(e)) => e.clone(),
                _ => b.reason.clone().unwrap_or_default(),
            };
            let details = b.details.clone().or(b.error_description.clone()).unwrap_or_default();
            EnphaseApiError { status, message, details, period: b.period, period_end: b.period_end }
        }
        None => {
            let raw = String::from_utf8_lossy(body);
            let raw: String = raw.trim().chars().take(300).collect();
            EnphaseApiError {
                status,
                message: raw,
                details: String::new(),
                period: None,
                period_end: None,
            }
        }
    }
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

/// Classifies a non-2xx answer of the API (`/api/v4/...`). `what` names the call for the
/// message ("summary", "battery_settings"); `now` turns a 429's `period_end` into a wait.
pub fn classify_api_error(
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
    what: &str,
    now: DateTime<Utc>,
) -> AdapterError {
    let api = parse_error_body(status, body);
    let text = api.text();
    let offline = text.contains("not communicating")
        || text.contains("not reporting")
        || text.contains("offline");
    let (kind, message) = match status {
        429 => {
            let period = api.period.clone().unwrap_or_else(|| "minute".to_owned());
            let mut err = AdapterError::new(
                ErrorKind::RateLimited,
                VENDOR,
                format!("{what}: rate limited (plan limit per {period})"),
            );
            let from_body = api.period_end.map(|end| {
                let secs = end.saturating_sub(now.timestamp()).max(0);
                Duration::from_secs(u64::try_from(secs).unwrap_or(0))
            });
            if let Some(after) = retry_after_header(headers, now).or(from_body) {
                err = err.with_retry_after(after);
            }
            return err.with_source(api);
        }
        401 if text.contains("mismatch") || text.contains("api key") => (
            ErrorKind::Unauthorized,
            format!("{what}: the API key does not belong to the OAuth client ({})", api.details),
        ),
        401 => (ErrorKind::AuthExpired, format!("{what}: access token rejected ({})", api.details)),
        403 => (ErrorKind::Unauthorized, format!("{what}: forbidden ({})", api.message)),
        400..=499 if offline => {
            (ErrorKind::DeviceOffline, format!("{what}: the system is not reporting"))
        }
        404 => (ErrorKind::NotFound, format!("{what}: not found")),
        422 if text.contains("encharge") || text.contains("battery") => {
            (ErrorKind::NotFound, format!("{what}: the system has no battery"))
        }
        400 | 422 => (ErrorKind::Rejected, format!("{what}: refused ({})", api.details)),
        409 | 412 => (ErrorKind::PreconditionFailed, format!("{what}: not possible now")),
        501 => (ErrorKind::Unsupported, format!("{what}: not implemented by Enphase")),
        500..=599 => (ErrorKind::Transient, format!("{what}: server error {status}")),
        _ => (ErrorKind::Protocol, format!("{what}: unexpected HTTP status {status}")),
    };
    AdapterError::new(kind, VENDOR, message).with_source(api)
}

/// Classifies a non-2xx answer of the token endpoint: a refused grant means only the user can
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
                    "{what}: grant refused ({}); the user must link the account again",
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
        tracing::debug!(target: "oemgate_enphase", what, body = %head, "unparseable body");
        AdapterError::new(ErrorKind::Protocol, VENDOR, format!("{what}: unexpected response body"))
            .with_source(e)
    })
}

/// The HTTP side of the adapter: base URLs, API key, OAuth client, timeouts.
#[derive(Clone)]
pub(crate) struct EnphaseClient {
    http: reqwest::Client,
    api_base: String,
    auth_base: String,
    api_key: String,
    client_id: String,
    client_secret: String,
    timeout: Duration,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for EnphaseClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EnphaseClient")
            .field("api_base", &self.api_base)
            .field("auth_base", &self.auth_base)
            .field("client_id", &self.client_id)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// The parts of a request the client needs besides the URL.
pub(crate) struct Call<'a> {
    /// The bearer token.
    pub token: &'a str,
    /// Path below the API base (`/systems/123/summary`).
    pub path: &'a str,
    /// Query parameters besides the key.
    pub query: &'a [(&'a str, String)],
    /// The call's name for messages and logs.
    pub what: &'a str,
}

impl EnphaseClient {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        http: reqwest::Client,
        api_base: &str,
        auth_base: &str,
        api_key: &str,
        client_id: &str,
        client_secret: &str,
        timeout: Duration,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            http,
            api_base: api_base.trim_end_matches('/').to_owned(),
            auth_base: auth_base.trim_end_matches('/').to_owned(),
            api_key: api_key.to_owned(),
            client_id: client_id.to_owned(),
            client_secret: client_secret.to_owned(),
            timeout,
            clock,
        }
    }

    fn api_request(&self, method: reqwest::Method, call: &Call<'_>) -> reqwest::RequestBuilder {
        let url = format!("{}{}", self.api_base, call.path);
        let mut query: Vec<(&str, &str)> = vec![("key", self.api_key.as_str())];
        query.extend(call.query.iter().map(|(k, v)| (*k, v.as_str())));
        self.http
            .request(method, url)
            .query(&query)
            .bearer_auth(call.token)
            .header(reqwest::header::ACCEPT, "application/json")
            .timeout(self.timeout)
    }

    /// `GET {api}{path}?key=..&query..` with the bearer token; decodes the JSON answer.
    pub(crate) async fn get<T: DeserializeOwned>(&self, call: Call<'_>) -> AdapterResult<T> {
        let request = self.api_request(reqwest::Method::GET, &call);
        let (status, headers, body) = send(request, call.what).await?;
        if !(200..300).contains(&status) {
            return Err(classify_api_error(status, &headers, &body, call.what, self.clock.now()));
        }
        decode(&body, call.what)
    }

    /// `PUT {api}{path}?key=..` with the bearer token and a JSON body.
    pub(crate) async fn put<T: DeserializeOwned>(
        &self,
        call: Call<'_>,
        body: &serde_json::Value,
    ) -> AdapterResult<T> {
        let request = self.api_request(reqwest::Method::PUT, &call).json(body);
        let (status, headers, body) = send(request, call.what).await?;
        if !(200..300).contains(&status) {
            return Err(classify_api_error(status, &headers, &body, call.what, self.clock.now()));
        }
        decode(&body, call.what)
    }

    /// `POST {auth}/oauth/token?grant..` with HTTP Basic `client_id:client_secret`. The grant's
    /// parameters travel in the query string, as Enphase documents.
    pub(crate) async fn token(
        &self,
        grant: &[(&str, &str)],
        what: &str,
    ) -> AdapterResult<TokenResponse> {
        let url = format!("{}/oauth/token", self.auth_base);
        let request = self
            .http
            .post(url)
            .query(grant)
            .basic_auth(&self.client_id, Some(&self.client_secret))
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
        target: "oemgate_enphase",
        what,
        status,
        bytes = body.len(),
        millis = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        "enphase response"
    );
    Ok((status, headers, body.to_vec()))
}

/// The [`EnphaseApiError`] behind an adapter error, if there is one.
pub fn api_error_of(err: &AdapterError) -> Option<&EnphaseApiError> {
    StdError::source(err).and_then(|s| s.downcast_ref::<EnphaseApiError>())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use reqwest::header::HeaderValue;

    fn now() -> DateTime<Utc> {
        Utc.timestamp_opt(1_623_825_683, 0).unwrap()
    }

    fn kind(status: u16, body: &str) -> ErrorKind {
        classify_api_error(status, &HeaderMap::new(), body.as_bytes(), "test", now()).kind()
    }

    fn usual(message: &str, details: &str, code: u16) -> String {
        serde_json::json!({ "message": message, "details": details, "code": code }).to_string()
    }

    #[test]
    fn classifies_statuses() {
        assert_eq!(
            kind(401, &usual("Not Authorized", "API Key -Client mismatch", 401)),
            ErrorKind::Unauthorized
        );
        assert_eq!(
            kind(401, &usual("Not Authorized", "Invalid API key", 401)),
            ErrorKind::Unauthorized
        );
        assert_eq!(
            kind(401, &usual("Not Authorized", "Access token expired", 401)),
            ErrorKind::AuthExpired
        );
        assert_eq!(
            kind(401, &usual("Not Authorized", "Invalid access token", 401)),
            ErrorKind::AuthExpired
        );
        assert_eq!(kind(401, ""), ErrorKind::AuthExpired);
        assert_eq!(
            kind(403, &usual("Forbidden", "Not available for plan Watt", 403)),
            ErrorKind::Unauthorized
        );
        assert_eq!(kind(404, &usual("Not Found", "System not found", 404)), ErrorKind::NotFound);
        assert_eq!(
            kind(422, &usual("Unprocessable Entity", "System doesn't have encharge", 422)),
            ErrorKind::NotFound
        );
        assert_eq!(
            kind(
                422,
                &usual("Unprocessable Entity", "System is not communicating with Enlighten", 422)
            ),
            ErrorKind::DeviceOffline
        );
        assert_eq!(
            kind(422, &usual("Unprocessable Entity", "reserve_soc too low", 422)),
            ErrorKind::Rejected
        );
        assert_eq!(
            kind(400, &usual("Bad Request", "Invalid battery_mode", 400)),
            ErrorKind::Rejected
        );
        assert_eq!(kind(409, ""), ErrorKind::PreconditionFailed);
        assert_eq!(
            kind(405, r#"{"reason":"405","message":["Method not allowed"]}"#),
            ErrorKind::Protocol
        );
        assert_eq!(
            kind(501, r#"{"reason":"501","message":["Not Implemented"]}"#),
            ErrorKind::Unsupported
        );
        assert_eq!(kind(500, &usual("Internal Server Error", "", 500)), ErrorKind::Transient);
        assert_eq!(
            kind(503, "<html><body>503 Service Temporarily Unavailable</body></html>"),
            ErrorKind::Transient
        );
        assert_eq!(
            kind(550, &usual("Data Temporarily Unavailable", "", 550)),
            ErrorKind::Transient
        );
        assert_eq!(kind(418, ""), ErrorKind::Protocol);
    }

    #[test]
    fn the_405_shape_is_read() {
        let e = parse_error_body(405, br#"{"reason":"405","message":["Method not allowed"]}"#);
        assert_eq!(e.message, "Method not allowed");
    }

    #[test]
    fn rate_limits_wait_for_the_period_end() {
        // The reference's example: period_end 1623825720, now 1623825683 → 37 s.
        let body = br#"{"message":"Too Many Requests","details":"Usage limit exceeded for plan Kilowatt","code":429,"period":"minute","period_start":1623825660,"period_end":1623825720,"limit":5}"#;
        let e = classify_api_error(429, &HeaderMap::new(), body, "summary", now());
        assert_eq!(e.kind(), ErrorKind::RateLimited);
        assert_eq!(e.retry_after(), Some(Duration::from_secs(37)));
        assert_eq!(api_error_of(&e).and_then(|a| a.period.clone()).as_deref(), Some("minute"));
        // A Retry-After header wins.
        let mut headers = HeaderMap::new();
        headers.insert("retry-after", HeaderValue::from_static("12"));
        let e = classify_api_error(429, &headers, body, "summary", now());
        assert_eq!(e.retry_after(), Some(Duration::from_secs(12)));
        // A period that already ended: retry now.
        let later = now() + chrono::Duration::minutes(5);
        let e = classify_api_error(429, &HeaderMap::new(), body, "summary", later);
        assert_eq!(e.retry_after(), Some(Duration::ZERO));
        // No signal at all: no guess.
        let e = classify_api_error(429, &HeaderMap::new(), b"Too Many Requests", "summary", now());
        assert_eq!(e.kind(), ErrorKind::RateLimited);
        assert_eq!(e.retry_after(), None);
    }

    #[test]
    fn token_errors_need_relink() {
        let body = br#"{"error":"invalid_grant","error_description":"Invalid refresh token"}"#;
        let e = classify_token_error(400, &HeaderMap::new(), body, "refresh", now());
        assert_eq!(e.kind(), ErrorKind::Unauthorized);
        assert_eq!(api_error_of(&e).map(|a| a.message.clone()).as_deref(), Some("invalid_grant"));
        let e = classify_token_error(503, &HeaderMap::new(), b"", "refresh", now());
        assert_eq!(e.kind(), ErrorKind::Transient);
    }

    #[test]
    fn bodies_that_do_not_parse_are_protocol_errors() {
        let e = decode::<crate::model::Summary>(b"{\"system_id\":1,\"current_po", "summary")
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Protocol);
        assert!(StdError::source(&e).unwrap().is::<serde_json::Error>());
        let e =
            decode::<crate::model::Summary>(b"<html>maintenance</html>", "summary").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Protocol);
        let e = decode::<crate::model::Summary>(b"{}", "summary").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Protocol, "system_id is required");
    }

    #[test]
    fn raw_error_text_is_capped() {
        let long = "x".repeat(1000);
        assert_eq!(parse_error_body(500, long.as_bytes()).message.len(), 300);
    }
}
