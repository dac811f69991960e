//! HTTP calls to Wallbox's two hosts (`user-api.wall-box.com` for tokens, `api.wall-box.com`
//! for everything else), and the classification of every failure into an [`ErrorKind`].
//!
//! The client never retries: one call is one HTTP request, so callers can count requests.
//! Neither credentials nor bodies are logged (at most 300 characters of an unparseable body at
//! `debug`); reqwest errors are attached with `without_url()`.
//!
//! Wallbox signals errors with plain HTTP status codes and a small JSON body
//! (`{"error":true,"status":404,"msg":"..."}`); its front end answers 502–504 with HTML.
//! Classification of the API's answers ([`classify_api_error`]):
//!
//! | Wallbox answer | kind |
//! |---|---|
//! | connection error, timeout, body cut off | `Transient` |
//! | 5xx (JSON or an HTML page) | `Transient` |
//! | 429 | `RateLimited`; `retry_after` from `Retry-After` (seconds or HTTP date), else `RateLimit-Reset` / `X-RateLimit-Reset` (seconds, or an epoch), else `None` |
//! | 401 (expired, unknown or revoked token: Wallbox does not tell them apart) | `AuthExpired` |
//! | 403 (the user has no rights on the charger, e.g. a read-only shared user) | `Unauthorized` |
//! | 404 (charger not on the account) | `NotFound` |
//! | a 4xx whose message says the charger is disconnected or offline | `DeviceOffline` |
//! | 400, 422 | `Rejected` |
//! | 409, 412 (no car connected, charger locked, car full) | `PreconditionFailed` |
//! | any other status | `Protocol` |
//! | 2xx whose body does not parse | `Protocol` with the serde error as source |
//!
//! The token endpoints ([`classify_auth_error`]): 400, 401, 403 and 404 (wrong password, spent,
//! expired or revoked refresh token, missing `Partner` header) → `Unauthorized`; a 2xx whose
//! `data.attributes` carries `"error": true` or a 4xx `status` is the same refusal; the rest
//! as above.

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
pub(crate) const VENDOR: &str = "WALLBOX";
/// The `tracing` target.
pub(crate) const LOG_TARGET: &str = "oemgate_wallbox";

/// Wallbox's own error, attached as the `source` of an [`AdapterError`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct WallboxApiError {
    /// The HTTP status (or the `status` inside a 2xx token answer).
    pub status: u16,
    /// Wallbox's message (or the start of the raw body).
    pub message: String,
}

impl fmt::Display for WallboxApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HTTP {}", self.status)?;
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        Ok(())
    }
}

/// Reads an error body in any of Wallbox's shapes, falling back to the raw text (at most 300
/// characters: bodies may hold personal data).
pub fn parse_error_body(status: u16, body: &[u8]) -> WallboxApiError {
    let parsed = serde_json::from_slice::<ErrorBody>(body).ok().and_then(|b| b.text());
    let message = parsed.unwrap_or_else(|| {
        let raw = String::from_utf8_lossy(body);
        raw.trim().chars().take(300).collect()
    });
    WallboxApiError { status, message }
}

/// Seconds in a header value (integer or decimal), bounded.
fn header_secs(headers: &HeaderMap, name: &str) -> Option<f64> {
    let value = headers.get(name)?.to_str().ok()?.trim();
    value.parse::<f64>().ok().filter(|s| s.is_finite() && (0.0..1.0e12).contains(s))
}

/// How long Wallbox asked us to wait: `Retry-After` (seconds or an HTTP date), else
/// `RateLimit-Reset` (seconds) or `X-RateLimit-Reset` (seconds, or an epoch in seconds when
/// it is that large), relative to `now`. `None` without a signal.
pub fn retry_after(headers: &HeaderMap, now: DateTime<Utc>) -> Option<Duration> {
    if let Some(value) = headers.get(reqwest::header::RETRY_AFTER).and_then(|v| v.to_str().ok()) {
        let value = value.trim();
        if let Ok(secs) = value.parse::<f64>() {
            return (secs.is_finite() && (0.0..1.0e9).contains(&secs))
                .then(|| Duration::from_secs_f64(secs));
        }
        if let Ok(at) = DateTime::parse_from_rfc2822(value) {
            return Some((at.with_timezone(&Utc) - now).to_std().unwrap_or(Duration::ZERO));
        }
    }
    for name in ["ratelimit-reset", "x-ratelimit-reset"] {
        if let Some(secs) = header_secs(headers, name) {
            if secs >= 1.0e9 {
                // An epoch: the moment the window resets.
                let delta = secs - now.timestamp() as f64;
                return Some(Duration::from_secs_f64(delta.max(0.0)));
            }
            return Some(Duration::from_secs_f64(secs));
        }
    }
    None
}

/// Whether a message says the charger cannot be reached from the cloud.
fn says_offline(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("disconnected") || m.contains("offline") || m.contains("not connected")
}

/// Classifies a non-2xx answer of `api.wall-box.com`. `what` names the call for the message
/// ("chargers/status"); `now` turns an HTTP date or epoch in a rate-limit header into a wait.
pub fn classify_api_error(
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
    what: &str,
    now: DateTime<Utc>,
) -> AdapterError {
    let api = parse_error_body(status, body);
    let (kind, message) = match status {
        429 => {
            let mut err =
                AdapterError::new(ErrorKind::RateLimited, VENDOR, format!("{what}: rate limited"));
            if let Some(after) = retry_after(headers, now) {
                err = err.with_retry_after(after);
            }
            return err.with_source(api);
        }
        401 => (ErrorKind::AuthExpired, format!("{what}: access token rejected")),
        403 => (ErrorKind::Unauthorized, format!("{what}: forbidden for this user")),
        400..=499 if says_offline(&api.message) => {
            (ErrorKind::DeviceOffline, format!("{what}: the charger is disconnected"))
        }
        404 => (ErrorKind::NotFound, format!("{what}: not found")),
        400 | 422 => (ErrorKind::Rejected, format!("{what}: refused")),
        409 | 412 => (ErrorKind::PreconditionFailed, format!("{what}: not possible now")),
        500..=599 => (ErrorKind::Transient, format!("{what}: server error {status}")),
        _ => (ErrorKind::Protocol, format!("{what}: unexpected HTTP status {status}")),
    };
    AdapterError::new(kind, VENDOR, message).with_source(api)
}

/// Classifies a non-2xx answer of the token endpoints: a refused sign-in or refresh means only
/// the user can fix it (`Unauthorized`).
pub fn classify_auth_error(
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
    what: &str,
    now: DateTime<Utc>,
) -> AdapterError {
    match status {
        400 | 401 | 403 | 404 => {
            let api = parse_error_body(status, body);
            AdapterError::new(
                ErrorKind::Unauthorized,
                VENDOR,
                format!("{what}: refused; the user must link the account again"),
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
        tracing::debug!(target: LOG_TARGET, what, body = %head, "unparseable body");
        AdapterError::new(ErrorKind::Protocol, VENDOR, format!("{what}: unexpected response body"))
            .with_source(e)
    })
}

/// Checks a 2xx token answer: Wallbox repeats a status and an error flag inside it, and an
/// answer that says `"error": true` or a 4xx status is a refusal even with HTTP 200.
pub fn check_token(token: TokenResponse, what: &str) -> AdapterResult<TokenResponse> {
    let a = &token.data.attributes;
    let inner = a.status.and_then(|s| u16::try_from(s).ok()).filter(|s| *s >= 400);
    if a.error == Some(true) || inner.is_some() {
        let status = inner.unwrap_or(401);
        let api = WallboxApiError { status, message: "error flag in a 2xx token answer".into() };
        let kind = if status >= 500 { ErrorKind::Transient } else { ErrorKind::Unauthorized };
        return Err(
            AdapterError::new(kind, VENDOR, format!("{what}: refused ({status})")).with_source(api)
        );
    }
    if a.token.trim().is_empty() {
        return Err(AdapterError::new(ErrorKind::Protocol, VENDOR, format!("{what}: empty token")));
    }
    Ok(token)
}

/// The HTTP side of the adapter: base URLs, the `Partner` header, timeouts.
#[derive(Clone)]
pub(crate) struct WallboxClient {
    http: reqwest::Client,
    api_base: String,
    auth_base: String,
    partner: String,
    timeout: Duration,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for WallboxClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WallboxClient")
            .field("api_base", &self.api_base)
            .field("auth_base", &self.auth_base)
            .field("partner", &self.partner)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// How a token request authenticates.
pub(crate) enum AuthGrant<'a> {
    /// HTTP Basic with the user's e-mail and password (`/users/signin`).
    Password { email: &'a str, password: &'a str },
    /// The refresh token as a bearer (`/users/refresh-token`).
    Refresh { refresh_token: &'a str },
}

impl WallboxClient {
    pub(crate) fn new(
        http: reqwest::Client,
        api_base: &str,
        auth_base: &str,
        partner: &str,
        timeout: Duration,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            http,
            api_base: api_base.trim_end_matches('/').to_owned(),
            auth_base: auth_base.trim_end_matches('/').to_owned(),
            partner: partner.to_owned(),
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
        let url = format!("{}/{}", self.api_base, path.trim_start_matches('/'));
        self.http
            .request(method, url)
            .bearer_auth(token)
            .header(reqwest::header::ACCEPT, "application/json")
            .timeout(self.timeout)
    }

    /// `GET {api}/{path}` with the bearer token; decodes the JSON answer.
    pub(crate) async fn get<T: DeserializeOwned>(
        &self,
        token: &str,
        path: &str,
        what: &str,
    ) -> AdapterResult<T> {
        let request = self.api_request(reqwest::Method::GET, token, path);
        let (status, headers, body) = send(request, what).await?;
        if !(200..300).contains(&status) {
            return Err(classify_api_error(status, &headers, &body, what, self.clock.now()));
        }
        decode(&body, what)
    }

    /// `POST` or `PUT {api}/{path}` with the bearer token and a JSON body; decodes the answer.
    pub(crate) async fn send_json<T: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        token: &str,
        path: &str,
        body: &serde_json::Value,
        what: &str,
    ) -> AdapterResult<T> {
        let request = self.api_request(method, token, path).json(body);
        let (status, headers, body) = send(request, what).await?;
        if !(200..300).contains(&status) {
            return Err(classify_api_error(status, &headers, &body, what, self.clock.now()));
        }
        decode(&body, what)
    }

    /// `GET {auth}/users/signin` (HTTP Basic) or `GET {auth}/users/refresh-token` (the refresh
    /// token as bearer), both with the `Partner` header.
    pub(crate) async fn token(&self, grant: AuthGrant<'_>) -> AdapterResult<TokenResponse> {
        let (path, what) = match grant {
            AuthGrant::Password { .. } => ("users/signin", "signin"),
            AuthGrant::Refresh { .. } => ("users/refresh-token", "refresh-token"),
        };
        let url = format!("{}/{path}", self.auth_base);
        let request = self
            .http
            .get(url)
            .header("Partner", self.partner.as_str())
            .header(reqwest::header::ACCEPT, "application/json")
            .timeout(self.timeout);
        let request = match grant {
            AuthGrant::Password { email, password } => request.basic_auth(email, Some(password)),
            AuthGrant::Refresh { refresh_token } => request.bearer_auth(refresh_token),
        };
        let (status, headers, body) = send(request, what).await?;
        if !(200..300).contains(&status) {
            return Err(classify_auth_error(status, &headers, &body, what, self.clock.now()));
        }
        check_token(decode(&body, what)?, what)
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
        target: LOG_TARGET,
        what,
        status,
        bytes = body.len(),
        millis = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        "wallbox response"
    );
    Ok((status, headers, body.to_vec()))
}

/// The [`WallboxApiError`] behind an adapter error, if there is one.
pub fn api_error_of(err: &AdapterError) -> Option<&WallboxApiError> {
    StdError::source(err).and_then(|s| s.downcast_ref::<WallboxApiError>())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use reqwest::header::HeaderValue;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 6, 15, 18, 0, 0).unwrap()
    }

    fn kind(status: u16, body: &str) -> ErrorKind {
        classify_api_error(status, &HeaderMap::new(), body.as_bytes(), "test", now()).kind()
    }

    fn msg(status: u16, m: &str) -> String {
        serde_json::json!({ "error": true, "status": status, "msg": m }).to_string()
    }

    #[test]
    fn classifies_statuses() {
        assert_eq!(kind(401, &msg(401, "Expired token")), ErrorKind::AuthExpired);
        assert_eq!(kind(401, ""), ErrorKind::AuthExpired);
        assert_eq!(kind(403, &msg(403, "Forbidden")), ErrorKind::Unauthorized);
        assert_eq!(kind(404, &msg(404, "Charger not found")), ErrorKind::NotFound);
        assert_eq!(kind(409, &msg(409, "Charger is disconnected")), ErrorKind::DeviceOffline);
        assert_eq!(kind(409, &msg(409, "No car connected")), ErrorKind::PreconditionFailed);
        assert_eq!(kind(412, ""), ErrorKind::PreconditionFailed);
        assert_eq!(kind(400, &msg(400, "maxChargingCurrent out of range")), ErrorKind::Rejected);
        assert_eq!(kind(422, ""), ErrorKind::Rejected);
        assert_eq!(kind(500, &msg(500, "Internal Server Error")), ErrorKind::Transient);
        assert_eq!(kind(502, "<html><body>502 Bad Gateway</body></html>"), ErrorKind::Transient);
        assert_eq!(kind(503, ""), ErrorKind::Transient);
        assert_eq!(kind(418, ""), ErrorKind::Protocol);
        assert_eq!(kind(302, ""), ErrorKind::Protocol);
    }

    #[test]
    fn rate_limits_carry_the_vendors_wait() {
        let body = msg(429, "Too Many Requests");
        let mut headers = HeaderMap::new();
        headers.insert("retry-after", HeaderValue::from_static("37"));
        let e = classify_api_error(429, &headers, body.as_bytes(), "groups", now());
        assert_eq!(e.kind(), ErrorKind::RateLimited);
        assert_eq!(e.retry_after(), Some(Duration::from_secs(37)));
        assert_eq!(api_error_of(&e).map(|a| a.status), Some(429));

        let mut headers = HeaderMap::new();
        headers.insert("retry-after", HeaderValue::from_static("Mon, 15 Jun 2026 18:01:00 GMT"));
        let e = classify_api_error(429, &headers, b"", "groups", now());
        assert_eq!(e.retry_after(), Some(Duration::from_secs(60)));

        let mut headers = HeaderMap::new();
        headers.insert("x-ratelimit-reset", HeaderValue::from_static("12"));
        let e = classify_api_error(429, &headers, b"", "groups", now());
        assert_eq!(e.retry_after(), Some(Duration::from_secs(12)));

        let mut headers = HeaderMap::new();
        let epoch = (now().timestamp() + 30).to_string();
        headers.insert("x-ratelimit-reset", HeaderValue::from_str(&epoch).unwrap());
        let e = classify_api_error(429, &headers, b"", "groups", now());
        assert_eq!(e.retry_after(), Some(Duration::from_secs(30)));

        // No signal: no guess.
        let e = classify_api_error(429, &HeaderMap::new(), body.as_bytes(), "groups", now());
        assert_eq!(e.kind(), ErrorKind::RateLimited);
        assert_eq!(e.retry_after(), None);
    }

    #[test]
    fn token_refusals_need_relink() {
        for status in [400, 401, 403, 404] {
            let e = classify_auth_error(status, &HeaderMap::new(), b"{}", "signin", now());
            assert_eq!(e.kind(), ErrorKind::Unauthorized, "{status}");
        }
        let e = classify_auth_error(503, &HeaderMap::new(), b"", "refresh-token", now());
        assert_eq!(e.kind(), ErrorKind::Transient);
        let e = classify_auth_error(429, &HeaderMap::new(), b"", "signin", now());
        assert_eq!(e.kind(), ErrorKind::RateLimited);
    }

    #[test]
    fn error_flags_inside_a_200_token_answer() {
        let t: TokenResponse = serde_json::from_str(
            r#"{"data":{"attributes":{"token":"x","user_id":1,"ttl":1,"error":"false","status":404}}}"#,
        )
        .unwrap();
        assert_eq!(check_token(t, "signin").unwrap_err().kind(), ErrorKind::Unauthorized);
        let t: TokenResponse =
            serde_json::from_str(r#"{"data":{"attributes":{"token":"x","error":true}}}"#).unwrap();
        assert_eq!(check_token(t, "signin").unwrap_err().kind(), ErrorKind::Unauthorized);
        let t: TokenResponse =
            serde_json::from_str(r#"{"data":{"attributes":{"token":" ","status":200}}}"#).unwrap();
        assert_eq!(check_token(t, "signin").unwrap_err().kind(), ErrorKind::Protocol);
        let t: TokenResponse = serde_json::from_str(
            r#"{"data":{"attributes":{"token":"x","error":false,"status":200}}}"#,
        )
        .unwrap();
        assert!(check_token(t, "signin").is_ok());
    }

    #[test]
    fn bodies_that_do_not_parse_are_protocol_errors() {
        let e = decode::<crate::model::ChargerStatus>(b"{\"status_id\":19", "status").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Protocol);
        assert!(StdError::source(&e).unwrap().is::<serde_json::Error>());
        let e = decode::<crate::model::GroupsResponse>(b"<html>maintenance</html>", "groups")
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Protocol);
    }

    #[test]
    fn raw_error_text_is_capped() {
        let long = "x".repeat(1000);
        assert_eq!(parse_error_body(500, long.as_bytes()).message.len(), 300);
        assert_eq!(parse_error_body(404, br#"{"message":"gone"}"#).message, "gone");
    }
}
