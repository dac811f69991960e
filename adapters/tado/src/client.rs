//! HTTP calls to tado's API v2 (`my.tado.com/api/v2`) and to its OAuth server
//! (`login.tado.com/oauth2`), and the classification of every failure into an [`ErrorKind`].
//!
//! The client never retries: one call is one HTTP request, so callers can count requests.
//! Every request carries the adapter's `request_timeout`. Tokens, device codes and bodies are
//! never logged; reqwest errors are attached with `without_url()`.
//!
//! # tado's rate limiting
//!
//! Since late 2025 every API answer carries IETF-draft rate-limit headers:
//! `RateLimit-Policy: "perday";q=100;w=86400` (the account's daily quota) and
//! `RateLimit: "perday";r=42` (what is left). Over quota tado answers **429**; `RateLimit`
//! then also carries `t=<seconds until the quota resets>`, and a `Retry-After` may come along.
//! [`rate_limit_of`] reads both headers.
//!
//! # Classification of API answers ([`classify_api_error`])
//!
//! | tado answer | kind |
//! |---|---|
//! | connection error, timeout, body cut off | `Transient` |
//! | 5xx (tado's JSON or the load balancer's HTML) | `Transient` |
//! | 429 | `RateLimited`; `retry_after` from `Retry-After`, else `RateLimit`'s `t`, else none |
//! | 401 (expired, unknown or revoked access token: tado answers them alike) | `AuthExpired` |
//! | 403 `accessDenied` (the home is not the account's) | `NotFound` |
//! | 404 (home, zone or overlay unknown) | `NotFound` |
//! | 422 / 409 whose code or title says the zone is offline | `DeviceOffline` |
//! | 400, 422 (invalid setting, temperature out of range) | `Rejected` |
//! | 409, 412 | `PreconditionFailed` |
//! | other statuses | `Protocol` |
//! | 2xx whose body does not parse | `Protocol` with the serde error as source |
//!
//! # Classification of token answers ([`classify_token_error`])
//!
//! | login.tado.com answer | kind |
//! |---|---|
//! | 400 `authorization_pending` (device code not approved yet) | `PreconditionFailed` |
//! | 400 `slow_down` (polled faster than `interval`) | `RateLimited` (`retry_after` only from `Retry-After`) |
//! | 400/401/403 `invalid_grant` (spent, expired or revoked refresh token), `expired_token`, `access_denied`, `invalid_client` | `Unauthorized`: the user must link again |
//! | 429, 5xx, transport | as for the API |
//!
//! The tado error code travels as the source ([`TadoApiError`], see [`api_error_of`]).

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use oemgate_core::{AdapterError, AdapterResult, Clock, ErrorKind};
use reqwest::header::HeaderMap;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::model::{ApiErrors, DeviceAuthorization, OAuthError, TokenResponse};

/// The vendor name on every error.
pub(crate) const VENDOR: &str = "TADO";
/// The logging target.
const TARGET: &str = "oemgate_tado";

/// tado's own error (API `errors[0]` or OAuth `error`), attached as the `source` of an
/// [`AdapterError`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct TadoApiError {
    /// The HTTP status.
    pub status: u16,
    /// tado's code (`notFound`, `accessDenied`, OAuth's `invalid_grant`, ...), or empty.
    pub code: String,
    /// tado's text (at most 300 characters of a raw body that is not tado's JSON).
    pub title: String,
    /// The rate-limit headers of the answer.
    pub rate_limit: RateLimitInfo,
}

impl fmt::Display for TadoApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HTTP {}", self.status)?;
        if !self.code.is_empty() {
            write!(f, " {}", self.code)?;
        }
        if !self.title.is_empty() {
            write!(f, ": {}", self.title)?;
        }
        Ok(())
    }
}

/// What tado's `RateLimit-Policy` and `RateLimit` headers say.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RateLimitInfo {
    /// The quota (`q`) of the policy.
    pub quota: Option<u64>,
    /// The policy's window in seconds (`w`, 86400 for the daily quota).
    pub window_secs: Option<u64>,
    /// Requests left (`r`).
    pub remaining: Option<u64>,
    /// Seconds until the quota resets (`t`; only sent once the limit is hit).
    pub reset_secs: Option<u64>,
}

/// The `key=value` parameters of one structured-field item (`"perday";r=0;t=3600`).
fn sf_params(item: &str) -> impl Iterator<Item = (&str, &str)> {
    item.split(';').skip(1).filter_map(|p| {
        let (k, v) = p.split_once('=')?;
        Some((k.trim(), v.trim().trim_matches('"')))
    })
}

fn sf_number(v: &str) -> Option<u64> {
    // Integers only; a decimal is cut to whole seconds.
    let whole = v.split('.').next()?;
    whole.parse::<u64>().ok()
}

/// Reads `RateLimit-Policy` and `RateLimit` (several policies: the one that blocks wins).
pub fn rate_limit_of(headers: &HeaderMap) -> RateLimitInfo {
    let mut info = RateLimitInfo::default();
    for value in headers.get_all("ratelimit-policy") {
        let Ok(text) = value.to_str() else { continue };
        for item in text.split(',') {
            for (k, v) in sf_params(item) {
                match k {
                    "q" => info.quota = sf_number(v).or(info.quota),
                    "w" => info.window_secs = sf_number(v).or(info.window_secs),
                    _ => {}
                }
            }
        }
    }
    for value in headers.get_all("ratelimit") {
        let Ok(text) = value.to_str() else { continue };
        for item in text.split(',') {
            let mut remaining = None;
            let mut reset = None;
            for (k, v) in sf_params(item) {
                match k {
                    "r" => remaining = sf_number(v),
                    "t" => reset = sf_number(v),
                    _ => {}
                }
            }
            if let Some(r) = remaining {
                info.remaining = Some(info.remaining.map_or(r, |old| old.min(r)));
            }
            if let Some(t) = reset {
                info.reset_secs = Some(info.reset_secs.map_or(t, |old| old.max(t)));
            }
        }
    }
    info
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

/// Reads an error body in tado's API shape (`{"errors":[..]}`) or the OAuth shape
/// (`{"error":..}`), falling back to at most 300 characters of the raw text.
pub fn parse_error_body(status: u16, headers: &HeaderMap, body: &[u8]) -> TadoApiError {
    let rate_limit = rate_limit_of(headers);
    if let Ok(api) = serde_json::from_slice::<ApiErrors>(body)
        && let Some(first) = api.errors.first()
    {
        return TadoApiError {
            status,
            code: first.code.clone().unwrap_or_default(),
            title: first.title.clone().unwrap_or_default(),
            rate_limit,
        };
    }
    if let Ok(oauth) = serde_json::from_slice::<OAuthError>(body)
        && oauth.error.is_some()
    {
        return TadoApiError {
            status,
            code: oauth.error.unwrap_or_default(),
            title: oauth.error_description.unwrap_or_default(),
            rate_limit,
        };
    }
    let raw = String::from_utf8_lossy(body);
    TadoApiError {
        status,
        code: String::new(),
        title: raw.trim().chars().take(300).collect(),
        rate_limit,
    }
}

fn rate_limited(
    api: TadoApiError,
    headers: &HeaderMap,
    what: &str,
    now: DateTime<Utc>,
) -> AdapterError {
    let quota = api.rate_limit.quota.map_or_else(String::new, |q| format!(" of {q} requests"));
    let mut err = AdapterError::new(
        ErrorKind::RateLimited,
        VENDOR,
        format!("{what}: rate limited (daily quota{quota} used up)"),
    );
    let from_header = api.rate_limit.reset_secs.map(Duration::from_secs);
    if let Some(after) = retry_after_header(headers, now).or(from_header) {
        err = err.with_retry_after(after);
    }
    err.with_source(api)
}

/// Classifies a non-2xx answer of the API. `what` names the call for the message
/// (`zone state`, `overlay`); `now` turns a `Retry-After` date into a wait.
pub fn classify_api_error(
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
    what: &str,
    now: DateTime<Utc>,
) -> AdapterError {
    let api = parse_error_body(status, headers, body);
    let text = format!("{} {}", api.code, api.title).to_ascii_lowercase();
    let offline = text.contains("offline") || text.contains("disconnected");
    let (kind, message) = match status {
        429 => return rate_limited(api, headers, what, now),
        401 => (ErrorKind::AuthExpired, format!("{what}: access token rejected")),
        403 => (ErrorKind::NotFound, format!("{what}: the home is not on this tado account")),
        404 => (ErrorKind::NotFound, format!("{what}: not found")),
        409 | 422 if offline => {
            (ErrorKind::DeviceOffline, format!("{what}: the zone's devices are offline"))
        }
        400 | 422 => (ErrorKind::Rejected, format!("{what}: refused ({})", api.title)),
        409 | 412 => (ErrorKind::PreconditionFailed, format!("{what}: not possible now")),
        500..=599 => (ErrorKind::Transient, format!("{what}: server error {status}")),
        _ => (ErrorKind::Protocol, format!("{what}: unexpected HTTP status {status}")),
    };
    AdapterError::new(kind, VENDOR, message).with_source(api)
}

/// Classifies a non-2xx answer of the token endpoints (see the module docs).
pub fn classify_token_error(
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
    what: &str,
    now: DateTime<Utc>,
) -> AdapterError {
    let api = parse_error_body(status, headers, body);
    match (status, api.code.as_str()) {
        (400, "authorization_pending") => AdapterError::new(
            ErrorKind::PreconditionFailed,
            VENDOR,
            format!("{what}: the user has not approved the device code yet; poll again later"),
        )
        .with_source(api),
        (400, "slow_down") => {
            let mut err = AdapterError::new(
                ErrorKind::RateLimited,
                VENDOR,
                format!("{what}: polled too fast; add 5 s to the polling interval"),
            );
            if let Some(after) = retry_after_header(headers, now) {
                err = err.with_retry_after(after);
            }
            err.with_source(api)
        }
        (400 | 401 | 403, _) => {
            let message = format!(
                "{what}: grant refused ({}); the user must link the tado account again",
                if api.code.is_empty() { "no error code" } else { api.code.as_str() }
            );
            AdapterError::new(ErrorKind::Unauthorized, VENDOR, message).with_source(api)
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
        tracing::debug!(target: TARGET, what, body = %head, "unparseable body");
        AdapterError::new(ErrorKind::Protocol, VENDOR, format!("{what}: unexpected response body"))
            .with_source(e)
    })
}

/// Percent-encodes a form or query value (RFC 3986 unreserved characters stay).
pub(crate) fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn form(params: &[(&str, &str)]) -> String {
    params.iter().map(|(k, v)| format!("{}={}", encode(k), encode(v))).collect::<Vec<_>>().join("&")
}

/// The HTTP side of the adapter: base URLs, OAuth client, timeouts.
#[derive(Clone)]
pub(crate) struct TadoClient {
    http: reqwest::Client,
    api_base: String,
    auth_base: String,
    client_id: String,
    timeout: Duration,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for TadoClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TadoClient")
            .field("api_base", &self.api_base)
            .field("auth_base", &self.auth_base)
            .field("client_id", &self.client_id)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl TadoClient {
    pub(crate) fn new(
        http: reqwest::Client,
        api_base: &str,
        auth_base: &str,
        client_id: &str,
        timeout: Duration,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            http,
            api_base: api_base.trim_end_matches('/').to_owned(),
            auth_base: auth_base.trim_end_matches('/').to_owned(),
            client_id: client_id.to_owned(),
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

    async fn api_call(
        &self,
        request: reqwest::RequestBuilder,
        what: &str,
    ) -> AdapterResult<Vec<u8>> {
        let (status, headers, body) = send(request, what).await?;
        if !(200..300).contains(&status) {
            return Err(classify_api_error(status, &headers, &body, what, self.clock.now()));
        }
        Ok(body)
    }

    /// `GET {api}{path}` with the bearer token; decodes the JSON answer.
    pub(crate) async fn get<T: DeserializeOwned>(
        &self,
        token: &str,
        path: &str,
        what: &str,
    ) -> AdapterResult<T> {
        let body = self.api_call(self.api_request(reqwest::Method::GET, token, path), what).await?;
        decode(&body, what)
    }

    /// `PUT {api}{path}` with a JSON body; decodes the JSON answer.
    pub(crate) async fn put<B: Serialize, T: DeserializeOwned>(
        &self,
        token: &str,
        path: &str,
        body: &B,
        what: &str,
    ) -> AdapterResult<T> {
        let request = self.api_request(reqwest::Method::PUT, token, path).json(body);
        let body = self.api_call(request, what).await?;
        decode(&body, what)
    }

    /// `DELETE {api}{path}`; tado answers 204 without a body.
    pub(crate) async fn delete(&self, token: &str, path: &str, what: &str) -> AdapterResult<()> {
        self.api_call(self.api_request(reqwest::Method::DELETE, token, path), what).await?;
        Ok(())
    }

    /// `POST {auth}/oauth2/device_authorize?client_id=..&scope=offline_access`.
    pub(crate) async fn device_authorize(&self) -> AdapterResult<DeviceAuthorization> {
        let what = "device_authorize";
        let url = format!("{}/oauth2/device_authorize", self.auth_base);
        let request = self
            .http
            .post(url)
            .query(&[("client_id", self.client_id.as_str()), ("scope", "offline_access")])
            .header(reqwest::header::ACCEPT, "application/json")
            .header(reqwest::header::CONTENT_LENGTH, "0")
            .timeout(self.timeout);
        let (status, headers, body) = send(request, what).await?;
        if !(200..300).contains(&status) {
            return Err(classify_token_error(status, &headers, &body, what, self.clock.now()));
        }
        let auth: DeviceAuthorization = decode(&body, what)?;
        if auth.device_code.trim().is_empty() || auth.user_code.trim().is_empty() {
            return Err(AdapterError::new(
                ErrorKind::Protocol,
                VENDOR,
                format!("{what}: empty device_code or user_code"),
            ));
        }
        Ok(auth)
    }

    /// `POST {auth}/oauth2/token` with the grant as a form body (plus the public client id).
    pub(crate) async fn token(
        &self,
        grant: &[(&str, &str)],
        what: &str,
    ) -> AdapterResult<TokenResponse> {
        let url = format!("{}/oauth2/token", self.auth_base);
        let mut params = vec![("client_id", self.client_id.as_str())];
        params.extend_from_slice(grant);
        let request = self
            .http
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(reqwest::header::ACCEPT, "application/json")
            .body(form(&params))
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
    let remaining = rate_limit_of(&headers).remaining;
    tracing::debug!(
        target: TARGET,
        what,
        status,
        bytes = body.len(),
        quota_remaining = remaining,
        millis = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        "tado response"
    );
    Ok((status, headers, body.to_vec()))
}

/// The [`TadoApiError`] behind an adapter error, if there is one.
pub fn api_error_of(err: &AdapterError) -> Option<&TadoApiError> {
    StdError::source(err).and_then(|s| s.downcast_ref::<TadoApiError>())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use reqwest::header::HeaderValue;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 11, 20, 12, 0, 0).unwrap()
    }

    fn kind(status: u16, body: &str) -> ErrorKind {
        classify_api_error(status, &HeaderMap::new(), body.as_bytes(), "test", now()).kind()
    }

    fn errors(code: &str, title: &str) -> String {
        serde_json::json!({ "errors": [{ "code": code, "title": title }] }).to_string()
    }

    #[test]
    fn classifies_api_statuses() {
        assert_eq!(
            kind(401, &errors("unauthorized", "Access token expired")),
            ErrorKind::AuthExpired
        );
        assert_eq!(kind(401, ""), ErrorKind::AuthExpired);
        assert_eq!(kind(403, &errors("accessDenied", "Access denied")), ErrorKind::NotFound);
        assert_eq!(kind(404, &errors("notFound", "zone 9 not found")), ErrorKind::NotFound);
        assert_eq!(
            kind(422, &errors("invalidSetting", "temperature must be between 5 and 25")),
            ErrorKind::Rejected
        );
        assert_eq!(kind(400, &errors("malformedRequest", "bad json")), ErrorKind::Rejected);
        assert_eq!(
            kind(422, &errors("zoneOffline", "the zone is offline")),
            ErrorKind::DeviceOffline
        );
        assert_eq!(kind(409, ""), ErrorKind::PreconditionFailed);
        assert_eq!(kind(500, &errors("internalServerError", "oops")), ErrorKind::Transient);
        assert_eq!(
            kind(503, "<html><body>503 Service Unavailable</body></html>"),
            ErrorKind::Transient
        );
        assert_eq!(kind(418, ""), ErrorKind::Protocol);
    }

    #[test]
    fn quota_headers_are_read() {
        let mut headers = HeaderMap::new();
        headers.insert("ratelimit-policy", HeaderValue::from_static("\"perday\";q=100;w=86400"));
        headers.insert("ratelimit", HeaderValue::from_static("\"perday\";r=0;t=3600"));
        let info = rate_limit_of(&headers);
        assert_eq!(
            info,
            RateLimitInfo {
                quota: Some(100),
                window_secs: Some(86_400),
                remaining: Some(0),
                reset_secs: Some(3600)
            }
        );
        let e = classify_api_error(429, &headers, b"", "zone state", now());
        assert_eq!(e.kind(), ErrorKind::RateLimited);
        assert_eq!(e.retry_after(), Some(Duration::from_secs(3600)));
        assert!(e.message().contains("100 requests"), "{}", e.message());
        // Retry-After wins over t.
        headers.insert("retry-after", HeaderValue::from_static("37"));
        let e = classify_api_error(429, &headers, b"", "zone state", now());
        assert_eq!(e.retry_after(), Some(Duration::from_secs(37)));
        // An HTTP date.
        headers.insert("retry-after", HeaderValue::from_static("Thu, 20 Nov 2025 12:01:00 GMT"));
        let e = classify_api_error(429, &headers, b"", "zone state", now());
        assert_eq!(e.retry_after(), Some(Duration::from_secs(60)));
        // No signal: no guess.
        let e = classify_api_error(429, &HeaderMap::new(), b"", "zone state", now());
        assert_eq!(e.retry_after(), None);
        // Several policies: the blocking one wins.
        let mut two = HeaderMap::new();
        two.insert(
            "ratelimit",
            HeaderValue::from_static("\"perminute\";r=5;t=20, \"perday\";r=0;t=7200"),
        );
        assert_eq!(rate_limit_of(&two).reset_secs, Some(7200));
        assert_eq!(rate_limit_of(&two).remaining, Some(0));
    }

    #[test]
    fn token_errors() {
        let k = |status: u16, error: &str| {
            let body = serde_json::json!({ "error": error, "error_description": "x" }).to_string();
            classify_token_error(status, &HeaderMap::new(), body.as_bytes(), "token", now())
        };
        let pending = k(400, "authorization_pending");
        assert_eq!(pending.kind(), ErrorKind::PreconditionFailed);
        assert_eq!(api_error_of(&pending).unwrap().code, "authorization_pending");
        assert_eq!(k(400, "slow_down").kind(), ErrorKind::RateLimited);
        assert_eq!(k(400, "slow_down").retry_after(), None);
        for e in ["invalid_grant", "expired_token", "access_denied", "invalid_request"] {
            assert_eq!(k(400, e).kind(), ErrorKind::Unauthorized, "{e}");
        }
        assert_eq!(k(401, "invalid_client").kind(), ErrorKind::Unauthorized);
        assert_eq!(k(503, "").kind(), ErrorKind::Transient);
        assert_eq!(k(429, "").kind(), ErrorKind::RateLimited);
    }

    #[test]
    fn bodies_that_do_not_parse_are_protocol_errors() {
        let e = decode::<crate::model::ZoneState>(
            b"{\"tadoMode\":\"HOME\",\"setting\":{\"ty",
            "zone state",
        )
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Protocol);
        assert!(StdError::source(&e).unwrap().is::<serde_json::Error>());
        let e = decode::<crate::model::ZoneState>(b"<html>maintenance</html>", "zone state")
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Protocol);
        let e = decode::<crate::model::Me>(b"[]", "me").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Protocol, "wrong shape");
    }

    #[test]
    fn raw_error_text_is_capped() {
        let long = "x".repeat(1000);
        assert_eq!(parse_error_body(500, &HeaderMap::new(), long.as_bytes()).title.len(), 300);
    }

    #[test]
    fn forms_are_encoded() {
        assert_eq!(
            form(&[("grant_type", "urn:ietf:params:oauth:grant-type:device_code"), ("a", "b c")]),
            "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code&a=b%20c"
        );
    }
}
