//! HTTP calls to SMA's Monitoring API and token endpoint, and the classification of every
//! failure into an [`ErrorKind`].
//!
//! The client never retries: one call is one HTTP request, with the adapter's
//! `request_timeout`. Classification of the Monitoring API (`/v1/...`):
//!
//! | SMA answer | kind |
//! |---|---|
//! | connection error, DNS, TLS, timeout, body cut off by the connection | `Transient` |
//! | 408, 5xx (gateway errors, maintenance, outage) | `Transient` |
//! | 429 (the per-credential token bucket is empty) | `RateLimited`, `retry_after` from `Retry-After` (seconds or HTTP date), else `RateLimit-Reset`, else the gateway's "Try again in N seconds." |
//! | 401 (access token expired, unknown or revoked: SMA cannot tell them apart) | `AuthExpired` |
//! | 403 (the owner's consent for the plant is missing or withdrawn) | `Unauthorized` |
//! | 404 (plant or device not on the account) | `NotFound` |
//! | any other status | `Protocol` |
//! | 2xx whose body is not the expected JSON (malformed, truncated, wrong shape) | `Protocol`, the serde error as source |
//!
//! The token endpoint (Keycloak) is classified on its own: 400/401 with `invalid_grant`,
//! `invalid_client`, `unauthorized_client` or anything else means the code or refresh token is
//! spent, expired or revoked, or the application's credentials are wrong: only a relink (or
//! the operator) can fix that, so `Unauthorized`. 429 and 5xx there are classified as above.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use oemgate_core::{AdapterError, AdapterResult, Clock, ErrorKind};
use reqwest::header::HeaderMap;
use serde::de::DeserializeOwned;

use crate::model::{ApiErrorBody, OAuthErrorBody, TokenResponse};

/// The vendor name on every error.
pub(crate) const VENDOR: &str = "SMA";

/// The tracing target of every log line.
const TARGET: &str = "oemgate_sma";

/// At most this much of an unparseable body is logged (at `debug`).
const BODY_LOG_CHARS: usize = 300;

/// SMA's own error, attached as the `source` of an [`AdapterError`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct SmaApiError {
    /// The HTTP status.
    pub status: u16,
    /// SMA's error code (`invalid_grant`, a gateway code), when it sent one.
    pub code: Option<String>,
    /// SMA's message (or the start of the raw body when it was not SMA's JSON).
    pub message: String,
}

impl fmt::Display for SmaApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HTTP {}", self.status)?;
        if let Some(code) = &self.code {
            write!(f, " {code}")?;
        }
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        Ok(())
    }
}

/// Classifies a non-2xx answer of the Monitoring API. `what` names the call ("plants",
/// "EnergyBalance/Recent"); `now` is the adapter clock's time (for `Retry-After` dates).
pub fn classify_api_error(
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
    what: &str,
    now: DateTime<Utc>,
) -> AdapterError {
    let api = parse_api_error(status, body);
    let (kind, message) = match status {
        429 => {
            let mut err =
                AdapterError::new(ErrorKind::RateLimited, VENDOR, format!("{what}: rate limited"));
            if let Some(after) = retry_after(headers, &api.message, now) {
                err = err.with_retry_after(after);
            }
            return err.with_source(api);
        }
        401 => (ErrorKind::AuthExpired, format!("{what}: access token rejected")),
        403 => (
            ErrorKind::Unauthorized,
            format!("{what}: forbidden (the plant owner's consent is missing or withdrawn)"),
        ),
        404 => (ErrorKind::NotFound, format!("{what}: not found")),
        408 => (ErrorKind::Transient, format!("{what}: request timeout at SMA")),
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
    now: DateTime<Utc>,
) -> AdapterError {
    match status {
        400 | 401 | 403 => {
            let api = parse_oauth_error(status, body);
            let code = api.code.clone().unwrap_or_else(|| "refused".to_owned());
            AdapterError::new(
                ErrorKind::Unauthorized,
                VENDOR,
                format!("{what}: grant refused ({code}); the user must link the account again"),
            )
            .with_source(api)
        }
        _ => classify_api_error(status, headers, body, what, now),
    }
}

/// The gateway's `{"statusCode":..,"message":..}` / `{"code":..,"message":..}`, else the
/// start of the raw text.
fn parse_api_error(status: u16, body: &[u8]) -> SmaApiError {
    match serde_json::from_slice::<ApiErrorBody>(body) {
        Ok(b) if b.message.is_some() || b.code.is_some() => SmaApiError {
            status,
            code: b.code.map(|c| match c {
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            }),
            message: b.message.unwrap_or_default(),
        },
        _ => SmaApiError { status, code: None, message: raw_text(body) },
    }
}

/// Keycloak's `{"error":..,"error_description":..}`, else the start of the raw text.
fn parse_oauth_error(status: u16, body: &[u8]) -> SmaApiError {
    match serde_json::from_slice::<OAuthErrorBody>(body) {
        Ok(b) if b.error.is_some() => {
            SmaApiError { status, code: b.error, message: b.error_description.unwrap_or_default() }
        }
        _ => parse_api_error(status, body),
    }
}

fn raw_text(body: &[u8]) -> String {
    String::from_utf8_lossy(body).trim().chars().take(BODY_LOG_CHARS).collect()
}

/// How long SMA asked us to wait: `Retry-After` (delta seconds or an HTTP date), else
/// `RateLimit-Reset` (seconds), else the gateway's "Try again in N seconds." in the body.
/// `None` without any signal.
pub fn retry_after(headers: &HeaderMap, message: &str, now: DateTime<Utc>) -> Option<Duration> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    header("retry-after")
        .and_then(|v| seconds(v).or_else(|| http_date(v, now)))
        .or_else(|| header("ratelimit-reset").and_then(seconds))
        .or_else(|| try_again_in(message))
}

fn seconds(v: &str) -> Option<Duration> {
    v.parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0 && *s < 1.0e9)
        .map(Duration::from_secs_f64)
}

fn http_date(v: &str, now: DateTime<Utc>) -> Option<Duration> {
    let at = DateTime::parse_from_rfc2822(v).ok()?.with_timezone(&Utc);
    Some((at - now).to_std().unwrap_or(Duration::ZERO))
}

/// "Rate limit is exceeded. Try again in 37 seconds." -> 37 s.
pub fn try_again_in(message: &str) -> Option<Duration> {
    let lower = message.to_ascii_lowercase();
    let start = lower.find("try again in")? + "try again in".len();
    let digits: String =
        lower[start..].trim_start().chars().take_while(char::is_ascii_digit).collect();
    let secs: u64 = digits.parse().ok()?;
    (secs < 1_000_000_000).then(|| Duration::from_secs(secs))
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
    } else {
        format!("{what}: request failed")
    };
    AdapterError::new(ErrorKind::Transient, VENDOR, message).with_source(err.without_url())
}

/// Decodes a 2xx body; anything that does not parse is a protocol error with the serde error
/// as source. At most 300 characters of the body are logged, at `debug`.
pub fn decode<T: DeserializeOwned>(body: &[u8], what: &str) -> AdapterResult<T> {
    serde_json::from_slice::<T>(body).map_err(|e| {
        tracing::debug!(target: TARGET, what, error = %e, body = %raw_text(body), "unexpected body");
        AdapterError::new(
            ErrorKind::Protocol,
            VENDOR,
            format!("{what}: unexpected response body ({e})"),
        )
        .with_source(e)
    })
}

/// The HTTP side of the adapter: base URLs, the OAuth client, timeouts.
#[derive(Clone)]
pub(crate) struct SmaClient {
    http: reqwest::Client,
    api_base_url: String,
    auth_base_url: String,
    client_id: String,
    client_secret: String,
    timeout: Duration,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for SmaClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmaClient")
            .field("api_base_url", &self.api_base_url)
            .field("auth_base_url", &self.auth_base_url)
            .field("client_id", &self.client_id)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl SmaClient {
    pub(crate) fn new(
        http: reqwest::Client,
        api_base_url: &str,
        auth_base_url: &str,
        client_id: &str,
        client_secret: &str,
        timeout: Duration,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            http,
            api_base_url: api_base_url.trim_end_matches('/').to_owned(),
            auth_base_url: auth_base_url.trim_end_matches('/').to_owned(),
            client_id: client_id.to_owned(),
            client_secret: client_secret.to_owned(),
            timeout,
            clock,
        }
    }

    /// The authorization URL a user opens to link an account (code grant).
    pub(crate) fn authorize_url(&self, redirect_uri: &str, state: &str) -> String {
        let mut url = match reqwest::Url::parse(&format!("{}/oauth2/auth", self.auth_base_url)) {
            Ok(url) => url,
            Err(_) => return format!("{}/oauth2/auth", self.auth_base_url),
        };
        url.query_pairs_mut()
            .append_pair("client_id", &self.client_id)
            .append_pair("response_type", "code")
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("state", state);
        url.into()
    }

    /// `GET {api_base}{path}` with the bearer token; decodes the JSON body.
    pub(crate) async fn get<T: DeserializeOwned>(
        &self,
        token: &str,
        path: &str,
        what: &str,
    ) -> AdapterResult<T> {
        let url = format!("{}{}", self.api_base_url, path);
        let request = self
            .http
            .get(url)
            .bearer_auth(token)
            .header(reqwest::header::ACCEPT, "application/json")
            .timeout(self.timeout);
        let (status, headers, body) = self.send(request, what).await?;
        if !(200..300).contains(&status) {
            return Err(classify_api_error(status, &headers, &body, what, self.clock.now()));
        }
        decode(&body, what)
    }

    /// `POST {auth_base}/oauth2/token` with a form: the grant's own fields plus the
    /// application's client id and secret.
    pub(crate) async fn token(
        &self,
        grant: &[(&str, &str)],
        what: &str,
    ) -> AdapterResult<TokenResponse> {
        let url = format!("{}/oauth2/token", self.auth_base_url);
        let mut form: Vec<(&str, &str)> = grant.to_vec();
        form.push(("client_id", &self.client_id));
        if !self.client_secret.is_empty() {
            form.push(("client_secret", &self.client_secret));
        }
        let request = self.http.post(url).form(&form).timeout(self.timeout);
        let (status, headers, body) = self.send(request, what).await?;
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

    async fn send(
        &self,
        request: reqwest::RequestBuilder,
        what: &str,
    ) -> AdapterResult<(u16, HeaderMap, Vec<u8>)> {
        let started = Instant::now();
        let response = request.send().await.map_err(|e| transport_error(e, what))?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.bytes().await.map_err(|e| transport_error(e, what))?;
        let ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        tracing::debug!(target: TARGET, what, status, bytes = body.len(), ms, "sma response");
        Ok((status, headers, body.to_vec()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use reqwest::header::HeaderValue;
    use std::error::Error as StdError;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 4, 20, 10, 0, 0).unwrap()
    }

    fn kind(status: u16, body: &str) -> ErrorKind {
        classify_api_error(status, &HeaderMap::new(), body.as_bytes(), "test", now()).kind()
    }

    #[test]
    fn classifies_statuses() {
        assert_eq!(kind(401, ""), ErrorKind::AuthExpired);
        assert_eq!(
            kind(403, r#"{"statusCode":403,"message":"no consent"}"#),
            ErrorKind::Unauthorized
        );
        assert_eq!(kind(404, r#"{"message":"plant not found"}"#), ErrorKind::NotFound);
        assert_eq!(kind(408, ""), ErrorKind::Transient);
        assert_eq!(kind(500, "<html>oops</html>"), ErrorKind::Transient);
        assert_eq!(kind(502, ""), ErrorKind::Transient);
        assert_eq!(
            kind(503, r#"{"statusCode":503,"message":"maintenance"}"#),
            ErrorKind::Transient
        );
        assert_eq!(kind(400, ""), ErrorKind::Protocol);
        assert_eq!(kind(418, ""), ErrorKind::Protocol);
        let e = classify_api_error(
            404,
            &HeaderMap::new(),
            br#"{"code":"E42","message":"x"}"#,
            "p",
            now(),
        );
        let source = StdError::source(&e).unwrap().downcast_ref::<SmaApiError>().unwrap();
        assert_eq!(source.code.as_deref(), Some("E42"));
        assert_eq!(e.message(), "p: not found");
    }

    #[test]
    fn rate_limits_read_every_signal() {
        let limited = |headers: HeaderMap, body: &str| {
            let e = classify_api_error(429, &headers, body.as_bytes(), "plants", now());
            assert_eq!(e.kind(), ErrorKind::RateLimited);
            e.retry_after()
        };
        let mut h = HeaderMap::new();
        h.insert("retry-after", HeaderValue::from_static("37"));
        assert_eq!(limited(h, ""), Some(Duration::from_secs(37)));
        let mut h = HeaderMap::new();
        h.insert("retry-after", HeaderValue::from_static("Mon, 20 Apr 2026 10:01:30 GMT"));
        assert_eq!(limited(h, ""), Some(Duration::from_secs(90)));
        let mut h = HeaderMap::new();
        h.insert("retry-after", HeaderValue::from_static("Mon, 20 Apr 2026 09:00:00 GMT"));
        assert_eq!(limited(h, ""), Some(Duration::ZERO), "a date in the past: no wait");
        let mut h = HeaderMap::new();
        h.insert("ratelimit-reset", HeaderValue::from_static("12"));
        assert_eq!(limited(h, ""), Some(Duration::from_secs(12)));
        let body =
            r#"{"statusCode":429,"message":"Rate limit is exceeded. Try again in 23 seconds."}"#;
        assert_eq!(limited(HeaderMap::new(), body), Some(Duration::from_secs(23)));
        assert_eq!(limited(HeaderMap::new(), r#"{"statusCode":429}"#), None, "no signal, no guess");
        let mut h = HeaderMap::new();
        h.insert("retry-after", HeaderValue::from_static("soon"));
        assert_eq!(limited(h, "{}"), None);
    }

    #[test]
    fn token_errors_need_relink() {
        for status in [400, 401] {
            let body = br#"{"error":"invalid_grant","error_description":"Token is not active"}"#;
            let e = classify_token_error(status, &HeaderMap::new(), body, "refresh", now());
            assert_eq!(e.kind(), ErrorKind::Unauthorized);
            let source = StdError::source(&e).unwrap().downcast_ref::<SmaApiError>().unwrap();
            assert_eq!(source.code.as_deref(), Some("invalid_grant"));
            assert_eq!(source.message, "Token is not active");
        }
        let e = classify_token_error(503, &HeaderMap::new(), b"", "refresh", now());
        assert_eq!(e.kind(), ErrorKind::Transient);
        let e = classify_token_error(429, &HeaderMap::new(), b"", "refresh", now());
        assert_eq!(e.kind(), ErrorKind::RateLimited);
    }

    #[test]
    fn bad_bodies_are_protocol_errors_with_serde_source() {
        for body in [&b"<html>maintenance</html>"[..], b"{\"plants\":[{\"plantId\":\"1\"", b""] {
            let e = decode::<crate::model::PlantList>(body, "plants").unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Protocol);
            assert!(StdError::source(&e).unwrap().is::<serde_json::Error>());
        }
    }

    #[test]
    fn try_again_parsing() {
        assert_eq!(try_again_in("Try again in 5 seconds."), Some(Duration::from_secs(5)));
        assert_eq!(try_again_in("try again in   120 seconds"), Some(Duration::from_secs(120)));
        assert_eq!(try_again_in("try again later"), None);
        assert_eq!(try_again_in(""), None);
    }
}
