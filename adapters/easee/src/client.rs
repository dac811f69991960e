//! HTTP calls to Easee's cloud (`https://api.easee.com`) and the classification of every
//! failure into an [`ErrorKind`].
//!
//! One call is one HTTP request: the client never retries, sleeps or refreshes by itself, so
//! callers can count requests. Every request carries the adapter's per-request timeout.
//! Neither bodies (they hold tokens, passwords and personal data) nor tokens are logged;
//! reqwest errors are attached with `without_url()`.
//!
//! Easee's errors are ASP.NET ProblemDetails, extended with Easee's `errorCode` and
//! `errorCodeName` (`{"errorCode":100,"errorCodeName":"InvalidUserPassword","title":..,
//! "status":400,"detail":..}`); gateways in front of the API answer 502/503/504 with HTML.
//!
//! Classification of API answers ([`classify_api_error`]):
//!
//! | Easee answer | kind |
//! |---|---|
//! | connection error, timeout, body cut off in transit | `Transient` |
//! | 5xx (JSON or the gateway's HTML) | `Transient` |
//! | 429 | `RateLimited`; `retry_after` from `Retry-After` (seconds or HTTP date), else `None` |
//! | 401 (expired, unknown or revoked token: Easee answers them alike) | `AuthExpired` |
//! | 403 on a charger (the charger is not, or no longer, shared with the user) | `NotFound` |
//! | 403 on account calls (the account may not use the API) | `Unauthorized` |
//! | 404 | `NotFound` |
//! | 400 `NoCarConnected`, `CarFullyCharged`, `NoPowerToCar`; 409, 412 | `PreconditionFailed` |
//! | 400 `ChargerOffline` | `DeviceOffline` |
//! | other 400 (validation), 422 | `Rejected` |
//! | any other status | `Protocol` |
//! | 2xx whose body does not parse | `Protocol` with the serde error as source |
//!
//! The account endpoints (`login`, `refresh_token`, [`classify_token_error`]): 400, 401 and 403
//! (wrong password, spent, revoked or mismatched refresh token) are `Unauthorized` (the user
//! must link again); the rest as above.

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use oemgate_core::{AdapterError, AdapterResult, Clock, ErrorKind};
use reqwest::header::HeaderMap;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::model::{CommandReply, ErrorBody, LoginRequest, RefreshRequest, TokenResponse};

/// The vendor name on every error.
pub const VENDOR: &str = "EASEE";

/// `errorCodeName`s of commands refused because of the charger's state (a car must be
/// connected, and able to take power).
pub const PRECONDITION_ERRORS: &[&str] = &["NoCarConnected", "CarFullyCharged", "NoPowerToCar"];
/// `errorCodeName` of commands to a charger that is not connected to the cloud.
pub const OFFLINE_ERROR: &str = "ChargerOffline";

/// Easee's own error, attached as the `source` of an [`AdapterError`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct EaseeApiError {
    /// The HTTP status.
    pub status: u16,
    /// Easee's `errorCode`, when it sent one.
    pub error_code: Option<i64>,
    /// Easee's `errorCodeName` (`InvalidUserPassword`, ...), when it sent one.
    pub error_code_name: Option<String>,
    /// The `title` (or the start of a non-JSON body, at most 300 characters).
    pub title: String,
    /// The `detail`, often empty.
    pub detail: String,
}

impl fmt::Display for EaseeApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HTTP {}", self.status)?;
        if let Some(name) = &self.error_code_name {
            write!(f, " {name}")?;
        }
        if let Some(code) = self.error_code {
            write!(f, " (errorCode {code})")?;
        }
        if !self.title.is_empty() {
            write!(f, ": {}", self.title)?;
        }
        if !self.detail.is_empty() {
            write!(f, " ({})", self.detail)?;
        }
        Ok(())
    }
}

/// Reads an error body in Easee's shape, falling back to the raw text (at most 300
/// characters: bodies may hold personal data).
pub fn parse_error_body(status: u16, body: &[u8]) -> EaseeApiError {
    let parsed = serde_json::from_slice::<ErrorBody>(body)
        .ok()
        .filter(|b| b.error_code.is_some() || b.error_code_name.is_some() || b.title.is_some());
    match parsed {
        Some(b) => {
            let mut detail = b.detail.unwrap_or_default();
            if detail.is_empty()
                && let Some(errors) = b.errors.filter(|e| !e.is_null())
            {
                detail = errors.to_string().chars().take(300).collect();
            }
            EaseeApiError {
                status,
                error_code: b.error_code,
                error_code_name: b.error_code_name.filter(|n| !n.trim().is_empty()),
                title: b.title.unwrap_or_default(),
                detail,
            }
        }
        None => {
            let raw = String::from_utf8_lossy(body);
            EaseeApiError {
                status,
                error_code: None,
                error_code_name: None,
                title: raw.trim().chars().take(300).collect(),
                detail: String::new(),
            }
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

/// What a request is about, for the 403 classification.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// The account (products, chargers list).
    Account,
    /// One charger.
    Charger,
}

/// Classifies a non-2xx answer of the API. `what` names the call for the message
/// ("charger state"); `now` turns a `Retry-After` date into a wait.
pub fn classify_api_error(
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
    what: &str,
    scope: Scope,
    now: DateTime<Utc>,
) -> AdapterError {
    let api = parse_error_body(status, body);
    let name = api.error_code_name.as_deref().unwrap_or("");
    let (kind, message) = match status {
        429 => {
            let mut err =
                AdapterError::new(ErrorKind::RateLimited, VENDOR, format!("{what}: rate limited"));
            if let Some(after) = retry_after_header(headers, now) {
                err = err.with_retry_after(after);
            }
            return err.with_source(api);
        }
        401 => (ErrorKind::AuthExpired, format!("{what}: access token rejected")),
        403 if scope == Scope::Charger => {
            (ErrorKind::NotFound, format!("{what}: the charger is not shared with this account"))
        }
        403 => (ErrorKind::Unauthorized, format!("{what}: forbidden for this account")),
        404 => (ErrorKind::NotFound, format!("{what}: not found")),
        400 if PRECONDITION_ERRORS.contains(&name) => {
            (ErrorKind::PreconditionFailed, format!("{what}: not possible now ({name})"))
        }
        400 if name == OFFLINE_ERROR => {
            (ErrorKind::DeviceOffline, format!("{what}: the charger is offline"))
        }
        400 | 422 => (ErrorKind::Rejected, format!("{what}: refused ({})", api.title)),
        409 | 412 => (ErrorKind::PreconditionFailed, format!("{what}: not possible now")),
        500..=599 => (ErrorKind::Transient, format!("{what}: server error {status}")),
        _ => (ErrorKind::Protocol, format!("{what}: unexpected HTTP status {status}")),
    };
    AdapterError::new(kind, VENDOR, message).with_source(api)
}

/// Classifies a non-2xx answer of `login` or `refresh_token`: a refused login or refresh means
/// only the user can fix it (`Unauthorized`).
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
                format!("{what}: refused; the user must link the Easee account again"),
            )
            .with_source(api)
        }
        _ => classify_api_error(status, headers, body, what, Scope::Account, now),
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
        tracing::debug!(target: "oemgate_easee", what, body = %head, "unparseable body");
        AdapterError::new(ErrorKind::Protocol, VENDOR, format!("{what}: unexpected response body"))
            .with_source(e)
    })
}

/// Decodes a command's answer: an empty body is fine (no command id), anything else must be
/// Easee's command JSON.
pub fn decode_command_reply(body: &[u8], what: &str) -> AdapterResult<Option<CommandReply>> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    decode(body, what).map(Some)
}

/// The HTTP side of the adapter: base URL, timeout, clock.
#[derive(Clone)]
pub(crate) struct EaseeClient {
    http: reqwest::Client,
    base: String,
    timeout: Duration,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for EaseeClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EaseeClient")
            .field("base", &self.base)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl EaseeClient {
    pub(crate) fn new(
        http: reqwest::Client,
        base: &str,
        timeout: Duration,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self { http, base: base.trim_end_matches('/').to_owned(), timeout, clock }
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base))
            .header(reqwest::header::ACCEPT, "application/json")
            .timeout(self.timeout)
    }

    /// `GET {base}{path}` with the bearer token; decodes the JSON answer.
    pub(crate) async fn get<T: DeserializeOwned>(
        &self,
        token: &str,
        path: &str,
        what: &str,
        scope: Scope,
    ) -> AdapterResult<T> {
        let request = self.request(reqwest::Method::GET, path).bearer_auth(token);
        let (status, headers, body) = send(request, what).await?;
        if !(200..300).contains(&status) {
            return Err(classify_api_error(status, &headers, &body, what, scope, self.clock.now()));
        }
        decode(&body, what)
    }

    /// `POST {base}{path}` with the bearer token and an optional JSON body; decodes Easee's
    /// command answer.
    pub(crate) async fn command(
        &self,
        token: &str,
        path: &str,
        body: Option<&serde_json::Value>,
        what: &str,
    ) -> AdapterResult<Option<CommandReply>> {
        let mut request = self.request(reqwest::Method::POST, path).bearer_auth(token);
        request = match body {
            Some(json) => request.json(json),
            None => request.header(reqwest::header::CONTENT_LENGTH, "0"),
        };
        let (status, headers, body) = send(request, what).await?;
        if !(200..300).contains(&status) {
            return Err(classify_api_error(
                status,
                &headers,
                &body,
                what,
                Scope::Charger,
                self.clock.now(),
            ));
        }
        decode_command_reply(&body, what)
    }

    /// `POST /api/accounts/login`.
    pub(crate) async fn login(
        &self,
        user_name: &str,
        password: &str,
    ) -> AdapterResult<TokenResponse> {
        let body = LoginRequest { user_name, password };
        self.token("/api/accounts/login", &body, "login").await
    }

    /// `POST /api/accounts/refresh_token`.
    pub(crate) async fn refresh(
        &self,
        access_token: &str,
        refresh_token: &str,
    ) -> AdapterResult<TokenResponse> {
        let body = RefreshRequest { access_token, refresh_token };
        self.token("/api/accounts/refresh_token", &body, "token refresh").await
    }

    async fn token<B: Serialize>(
        &self,
        path: &str,
        body: &B,
        what: &str,
    ) -> AdapterResult<TokenResponse> {
        let request = self.request(reqwest::Method::POST, path).json(body);
        let (status, headers, body) = send(request, what).await?;
        if !(200..300).contains(&status) {
            return Err(classify_token_error(status, &headers, &body, what, self.clock.now()));
        }
        let token: TokenResponse = decode(&body, what)?;
        if token.access_token.trim().is_empty() {
            return Err(AdapterError::new(
                ErrorKind::Protocol,
                VENDOR,
                format!("{what}: empty accessToken"),
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
        target: "oemgate_easee",
        what,
        status,
        bytes = body.len(),
        millis = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        "easee response"
    );
    Ok((status, headers, body.to_vec()))
}

/// The [`EaseeApiError`] behind an adapter error, if there is one.
pub fn api_error_of(err: &AdapterError) -> Option<&EaseeApiError> {
    StdError::source(err).and_then(|s| s.downcast_ref::<EaseeApiError>())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use reqwest::header::HeaderValue;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 5, 1, 12, 0, 0).single().unwrap_or_default()
    }

    fn easee(status: u16, name: &str) -> String {
        serde_json::json!({
            "errorCode": 1, "errorCodeName": name, "type": null, "title": name,
            "status": status, "detail": null, "instance": null, "extensions": {}
        })
        .to_string()
    }

    fn kind(status: u16, body: &str, scope: Scope) -> ErrorKind {
        classify_api_error(status, &HeaderMap::new(), body.as_bytes(), "test", scope, now()).kind()
    }

    #[test]
    fn classifies_statuses() {
        use ErrorKind::*;
        assert_eq!(kind(401, "", Scope::Charger), AuthExpired);
        assert_eq!(kind(403, &easee(403, "Forbidden"), Scope::Charger), NotFound);
        assert_eq!(kind(403, &easee(403, "Forbidden"), Scope::Account), Unauthorized);
        assert_eq!(kind(404, &easee(404, "ChargerNotFound"), Scope::Charger), NotFound);
        assert_eq!(kind(400, &easee(400, "NoCarConnected"), Scope::Charger), PreconditionFailed);
        assert_eq!(kind(400, &easee(400, "CarFullyCharged"), Scope::Charger), PreconditionFailed);
        assert_eq!(kind(400, &easee(400, "ChargerOffline"), Scope::Charger), DeviceOffline);
        let validation = r#"{"type":"https://tools.ietf.org/html/rfc7231#section-6.5.1","title":"One or more validation errors occurred.","status":400,"errors":{"amps":["out of range"]}}"#;
        assert_eq!(kind(400, validation, Scope::Charger), Rejected);
        assert_eq!(kind(422, "", Scope::Charger), Rejected);
        assert_eq!(kind(409, "", Scope::Charger), PreconditionFailed);
        assert_eq!(kind(500, &easee(500, "InternalError"), Scope::Charger), Transient);
        assert_eq!(kind(503, "<html>503 Service Unavailable</html>", Scope::Account), Transient);
        assert_eq!(kind(418, "", Scope::Account), Protocol);
    }

    #[test]
    fn rate_limits_read_retry_after() {
        let mut headers = HeaderMap::new();
        headers.insert("retry-after", HeaderValue::from_static("37"));
        let e = classify_api_error(429, &headers, b"", "state", Scope::Charger, now());
        assert_eq!(e.kind(), ErrorKind::RateLimited);
        assert_eq!(e.retry_after(), Some(Duration::from_secs(37)));
        headers.insert("retry-after", HeaderValue::from_static("Wed, 01 May 2024 12:01:00 GMT"));
        let e = classify_api_error(429, &headers, b"", "state", Scope::Charger, now());
        assert_eq!(e.retry_after(), Some(Duration::from_secs(60)));
        let e = classify_api_error(429, &HeaderMap::new(), b"", "state", Scope::Charger, now());
        assert_eq!(e.kind(), ErrorKind::RateLimited);
        assert_eq!(e.retry_after(), None, "no signal, no guess");
    }

    #[test]
    fn token_errors_need_relink() {
        let body = easee(400, "InvalidUserPassword");
        let e = classify_token_error(400, &HeaderMap::new(), body.as_bytes(), "login", now());
        assert_eq!(e.kind(), ErrorKind::Unauthorized);
        let api = api_error_of(&e).cloned();
        assert_eq!(api.and_then(|a| a.error_code_name).as_deref(), Some("InvalidUserPassword"));
        let e = classify_token_error(503, &HeaderMap::new(), b"", "login", now());
        assert_eq!(e.kind(), ErrorKind::Transient);
    }

    #[test]
    fn bodies_that_do_not_parse_are_protocol_errors() {
        let e = decode::<crate::model::ChargerState>(b"{\"chargerOpMode\":3,\"totalP", "state")
            .err()
            .map(|e| (e.kind(), StdError::source(&e).is_some_and(|s| s.is::<serde_json::Error>())));
        assert_eq!(e, Some((ErrorKind::Protocol, true)));
        let e = decode::<crate::model::ChargerState>(b"{}", "state").err().map(|e| e.kind());
        assert_eq!(e, Some(ErrorKind::Protocol), "chargerOpMode is required");
        assert!(matches!(decode_command_reply(b"", "cmd"), Ok(None)));
        assert!(decode_command_reply(b"<html>", "cmd").is_err());
    }

    #[test]
    fn raw_error_text_is_capped() {
        let long = "x".repeat(1000);
        assert_eq!(parse_error_body(500, long.as_bytes()).title.len(), 300);
    }
}
