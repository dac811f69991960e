//! HTTP calls to the SolarEdge Monitoring API and the classification of every failure into
//! an [`ErrorKind`].
//!
//! Every request is a `GET` with the account's key as the `api_key` query parameter (the
//! key never appears in a log line or an error: reqwest errors are stripped of their URL).
//! The client never retries: one call is one HTTP request, so callers count requests.
//!
//! | SolarEdge answer | kind |
//! |---|---|
//! | connection error, timeout, body cut off by the connection | `Transient` |
//! | 5xx (SolarEdge's own or a load balancer's HTML page) | `Transient` |
//! | 429 (daily quota of the key or site, or more than 3 concurrent calls) | `RateLimited`, `retry_after` from `Retry-After` (seconds or HTTP date), `RateLimit-Reset` or `X-RateLimit-Reset`, else `None`: SolarEdge documents no header, and the reset time of its daily quota is not published |
//! | 401 (`application/problem+json` "Unauthorized - Authentication Failed") | `Unauthorized`: an API key does not expire and cannot be refreshed, so the user must link a new one |
//! | 403 (historic answer to a bad key; a key without access to the site) | `Unauthorized` |
//! | 402 | `RateLimited` (payment), no `retry_after` |
//! | 404 | `NotFound` |
//! | 400, 422 | `Rejected` |
//! | 409, 412 | `PreconditionFailed` |
//! | other statuses (e.g. 410 for a retired API) | `Protocol` |
//! | 2xx whose body is not the expected JSON | `Protocol`, the serde error as `source` |
//!
//! The vendor's error body (problem JSON, or at most 300 characters of whatever came) is the
//! `source` of every classified HTTP error, as a [`SolarEdgeApiError`].

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use oemgate_core::{AdapterError, AdapterResult, ErrorKind};
use reqwest::header::HeaderMap;
use serde::de::DeserializeOwned;

use crate::model::ProblemBody;

/// The vendor name on every error.
pub const VENDOR: &str = "SOLAREDGE";

/// How much of an unparseable body is kept (in an error's source, or logged at `debug`).
const BODY_EXCERPT: usize = 300;

/// SolarEdge's error answer, attached as the `source` of an [`AdapterError`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct SolarEdgeApiError {
    /// The HTTP status.
    pub status: u16,
    /// The problem's `title`, or the start of the raw body.
    pub title: String,
    /// The problem's `detail`, often empty.
    pub detail: String,
}

impl fmt::Display for SolarEdgeApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HTTP {}", self.status)?;
        if !self.title.is_empty() {
            write!(f, ": {}", self.title)?;
        }
        if !self.detail.is_empty() {
            write!(f, " ({})", self.detail)?;
        }
        Ok(())
    }
}

/// Reads SolarEdge's problem JSON, or keeps the start of the raw text.
pub fn parse_error_body(status: u16, body: &[u8]) -> SolarEdgeApiError {
    match serde_json::from_slice::<ProblemBody>(body) {
        Ok(p) if p.title.is_some() || p.detail.is_some() => SolarEdgeApiError {
            status,
            title: p.title.unwrap_or_default(),
            detail: p.detail.unwrap_or_default(),
        },
        _ => {
            let raw = String::from_utf8_lossy(body);
            let raw: String = raw.trim().chars().take(BODY_EXCERPT).collect();
            SolarEdgeApiError { status, title: raw, detail: String::new() }
        }
    }
}

/// How long the vendor asked us to wait: `Retry-After` (delay-seconds or an HTTP date), else
/// `RateLimit-Reset` or `X-RateLimit-Reset` (seconds). `None` without any of them.
pub fn retry_after(headers: &HeaderMap, now: DateTime<Utc>) -> Option<Duration> {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    let seconds = |v: &str| {
        v.parse::<f64>()
            .ok()
            .filter(|s| s.is_finite() && *s >= 0.0 && *s < 1.0e9)
            .map(Duration::from_secs_f64)
    };
    if let Some(v) = text("retry-after") {
        if let Some(d) = seconds(v) {
            return Some(d);
        }
        if let Ok(at) = DateTime::parse_from_rfc2822(v) {
            return Some((at.with_timezone(&Utc) - now).to_std().unwrap_or(Duration::ZERO));
        }
    }
    text("ratelimit-reset")
        .and_then(seconds)
        .or_else(|| text("x-ratelimit-reset").and_then(seconds))
}

/// Classifies a non-2xx answer. `what` names the call ("overview", "currentPowerFlow").
pub fn classify(
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
    what: &str,
    now: DateTime<Utc>,
) -> AdapterError {
    let api = parse_error_body(status, body);
    let (kind, message) = match status {
        401 => (
            ErrorKind::Unauthorized,
            format!("{what}: the API key was rejected; link the account with a valid key"),
        ),
        403 => (
            ErrorKind::Unauthorized,
            format!("{what}: the API key has no access (revoked, or not a key for this site)"),
        ),
        402 => (ErrorKind::RateLimited, format!("{what}: payment required")),
        404 => (ErrorKind::NotFound, format!("{what}: not found")),
        400 | 422 => (ErrorKind::Rejected, format!("{what}: request refused ({status})")),
        409 | 412 => {
            (ErrorKind::PreconditionFailed, format!("{what}: precondition failed ({status})"))
        }
        429 => {
            let mut err = AdapterError::new(
                ErrorKind::RateLimited,
                VENDOR,
                format!(
                    "{what}: rate limited (daily quota of the key or site, or too many concurrent calls)"
                ),
            );
            if let Some(after) = retry_after(headers, now) {
                err = err.with_retry_after(after);
            }
            return err.with_source(api);
        }
        500..=599 => (ErrorKind::Transient, format!("{what}: server error {status}")),
        410 => (ErrorKind::Protocol, format!("{what}: the vendor retired this API (410 Gone)")),
        _ => (ErrorKind::Protocol, format!("{what}: unexpected HTTP status {status}")),
    };
    AdapterError::new(kind, VENDOR, message).with_source(api)
}

/// Maps a failure without an HTTP answer (or with a body cut off by the connection).
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

/// Decodes a 2xx body; anything that does not parse is a `Protocol` error with the serde error
/// as its source. At most 300 characters of the body are logged, at `debug`.
pub fn decode<T: DeserializeOwned>(body: &[u8], what: &str) -> AdapterResult<T> {
    serde_json::from_slice::<T>(body).map_err(|e| {
        let excerpt: String = String::from_utf8_lossy(body).chars().take(BODY_EXCERPT).collect();
        tracing::debug!(target: "oemgate_solaredge", what, error = %e, body = %excerpt, "unexpected body");
        AdapterError::new(ErrorKind::Protocol, VENDOR, format!("{what}: unexpected response body"))
            .with_source(e)
    })
}

/// The HTTP side of the adapter: base URL and timeout. Holds no credentials.
#[derive(Clone)]
pub(crate) struct SolarEdgeClient {
    http: reqwest::Client,
    base_url: String,
    timeout: Duration,
}

impl fmt::Debug for SolarEdgeClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SolarEdgeClient")
            .field("base_url", &self.base_url)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl SolarEdgeClient {
    pub(crate) fn new(http: reqwest::Client, base_url: &str, timeout: Duration) -> Self {
        Self { http, base_url: base_url.trim_end_matches('/').to_owned(), timeout }
    }

    /// `GET {base}{path}?api_key=..&query..`, decoded as `T`. `now` is for an HTTP-date
    /// `Retry-After`.
    pub(crate) async fn get<T: DeserializeOwned>(
        &self,
        api_key: &str,
        path: &str,
        query: &[(&str, &str)],
        what: &str,
        now: DateTime<Utc>,
    ) -> AdapterResult<T> {
        let url = format!("{}{}", self.base_url, path);
        let request = self
            .http
            .get(url)
            .query(&[("api_key", api_key)])
            .query(query)
            .header(reqwest::header::ACCEPT, "application/json")
            .timeout(self.timeout);
        let started = std::time::Instant::now();
        let response = request.send().await.map_err(|e| transport_error(e, what))?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.bytes().await.map_err(|e| transport_error(e, what))?;
        tracing::debug!(
            target: "oemgate_solaredge",
            what,
            status,
            bytes = body.len(),
            ms = started.elapsed().as_millis() as u64,
            "solaredge response"
        );
        if !(200..300).contains(&status) {
            return Err(classify(status, &headers, &body, what, now));
        }
        decode(&body, what)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;
    use std::error::Error as StdError;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2024-01-15T10:00:00Z").unwrap().with_timezone(&Utc)
    }

    fn kind(status: u16, body: &str) -> ErrorKind {
        classify(status, &HeaderMap::new(), body.as_bytes(), "test", now()).kind()
    }

    #[test]
    fn classifies_statuses() {
        let problem = r#"{"type":"about:blank","title":"Unauthorized - Authentication Failed","status":401,"detail":"Invalid API key"}"#;
        assert_eq!(kind(401, problem), ErrorKind::Unauthorized);
        assert_eq!(kind(403, "Forbidden"), ErrorKind::Unauthorized);
        assert_eq!(kind(404, ""), ErrorKind::NotFound);
        assert_eq!(kind(400, ""), ErrorKind::Rejected);
        assert_eq!(kind(412, ""), ErrorKind::PreconditionFailed);
        assert_eq!(kind(500, ""), ErrorKind::Transient);
        assert_eq!(
            kind(503, "<html><body>503 Service Unavailable</body></html>"),
            ErrorKind::Transient
        );
        assert_eq!(kind(410, ""), ErrorKind::Protocol);
        assert_eq!(kind(418, ""), ErrorKind::Protocol);
        let e = classify(401, &HeaderMap::new(), problem.as_bytes(), "sites", now());
        let api = StdError::source(&e).unwrap().downcast_ref::<SolarEdgeApiError>().unwrap();
        assert_eq!(api.title, "Unauthorized - Authentication Failed");
        assert_eq!(api.detail, "Invalid API key");
        assert!(e.message().starts_with("sites: "));
    }

    #[test]
    fn rate_limits_read_only_real_signals() {
        let mut h = HeaderMap::new();
        h.insert("retry-after", HeaderValue::from_static("37"));
        let e = classify(429, &h, b"", "overview", now());
        assert_eq!(e.kind(), ErrorKind::RateLimited);
        assert_eq!(e.retry_after(), Some(Duration::from_secs(37)));

        let mut h = HeaderMap::new();
        h.insert("retry-after", HeaderValue::from_static("Mon, 15 Jan 2024 10:01:30 GMT"));
        assert_eq!(retry_after(&h, now()), Some(Duration::from_secs(90)));

        let mut h = HeaderMap::new();
        h.insert("x-ratelimit-reset", HeaderValue::from_static("12"));
        assert_eq!(retry_after(&h, now()), Some(Duration::from_secs(12)));

        // SolarEdge's own 429 carries no header: no guess.
        let e = classify(429, &HeaderMap::new(), b"", "overview", now());
        assert_eq!(e.retry_after(), None);
    }

    #[test]
    fn raw_bodies_are_cut() {
        let long = "x".repeat(1000);
        let api = parse_error_body(502, long.as_bytes());
        assert_eq!(api.title.len(), BODY_EXCERPT);
    }

    #[test]
    fn bad_bodies_are_protocol_errors_with_serde_source() {
        let e =
            decode::<crate::model::OverviewResponse>(b"{\"overview\":{", "overview").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Protocol);
        assert!(StdError::source(&e).unwrap().is::<serde_json::Error>());
        let e = decode::<crate::model::OverviewResponse>(b"<html>", "overview").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Protocol);
    }
}
