//! HTTP calls to the FusionSolar Northbound API (`/thirdData/...`) and the classification of
//! every failure into an [`ErrorKind`].
//!
//! Every call is a `POST` with a JSON body; after login the session token travels in the
//! `XSRF-TOKEN` request header. FusionSolar answers errors with **HTTP 200** and an envelope
//! `{"success":false,"failCode":…,"message":…,"data":…}`, so the envelope decides, not the
//! status. The client never retries: one call is one HTTP request.
//!
//! | FusionSolar answer | kind |
//! |---|---|
//! | connection error, timeout, body cut off by the connection | `Transient` |
//! | HTTP 5xx (gateway errors, outages) | `Transient` |
//! | HTTP 429 | `RateLimited`, `retry_after` from `Retry-After` |
//! | other non-2xx status | `Protocol` |
//! | 2xx body that is not the envelope (HTML, truncated JSON, no `success`) | `Protocol`, serde error as source |
//! | 2xx framework error body (`exceptionId`, parameter errors) | `Protocol` |
//! | `failCode` 305 (not logged in, session expired or ended by a newer login) | `AuthExpired` |
//! | `failCode` 407 (`ACCESS_FREQUENCY_IS_TOO_HIGH`) | `RateLimited`; `retry_after` only from a `Retry-After` header (FusionSolar sends none, so normally `None`) |
//! | `failCode` 429 (system-wide flow control, "retry after more than 1 minute") | `RateLimited`, `retry_after` from `Retry-After`, else 60 s |
//! | `failCode` 20618 (daily quota of the API account used up) | `RateLimited`; the reset time is not documented, so `retry_after` is `None` without a header |
//! | `failCode` 401 (no rights to this interface), 20056 (user not authorized), 20002 / 20003 (API account disabled / expired), 20400 (login failed) | `Unauthorized` |
//! | `failCode` 20004 (server error), 20200 (system busy) | `Transient` |
//! | `failCode` 20015 (more than 100 plants), 20604–20606 (bad time arguments) | `Rejected` |
//! | any other `failCode` | `Protocol` |
//!
//! Login is classified on its own: any refusal there other than the rate-limit and transient
//! codes means the user name or password no longer works (wrong, changed, account disabled
//! or expired), which only the user can fix: `Unauthorized`.
//!
//! Nothing here logs a token, a password or a user name; a body that does not parse is never
//! logged, only its length.

use std::fmt;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use oemgate_core::{AdapterError, AdapterResult, Clock, ErrorKind};
use reqwest::header::HeaderMap;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::sync::Arc;

use crate::model::{Envelope, FrameworkException, LoginRequest, LogoutRequest};

/// The vendor name on every error.
pub(crate) const VENDOR: &str = "HUAWEI";

/// The request header that carries the session token.
pub const TOKEN_HEADER: &str = "XSRF-TOKEN";

/// The response header of `login` that carries the new session token.
pub const LOGIN_TOKEN_HEADER: &str = "xsrf-token";

/// The path of every Northbound call below the base URL.
pub const API_PATH: &str = "/thirdData";

/// FusionSolar's `failCode`s the adapter tells apart.
pub mod fail_code {
    /// Not logged in: the session expired, was ended by a newer login, or never existed.
    pub const NOT_LOGGED_IN: i64 = 305;
    /// The API account has no rights to this interface.
    pub const NO_PERMISSION: i64 = 401;
    /// `ACCESS_FREQUENCY_IS_TOO_HIGH`: the per-account, per-interface limit was hit.
    pub const TOO_FREQUENT: i64 = 407;
    /// System-wide flow control: "retry after more than one minute".
    pub const SYSTEM_FLOW_CONTROL: i64 = 429;
    /// The API account is disabled.
    pub const ACCOUNT_DISABLED: i64 = 20002;
    /// The API account has expired.
    pub const ACCOUNT_EXPIRED: i64 = 20003;
    /// Server error.
    pub const SERVER_ERROR: i64 = 20004;
    /// More than 100 plants in one call.
    pub const TOO_MANY_PLANTS: i64 = 20015;
    /// The Northbound user is not authorized.
    pub const USER_NOT_AUTHORIZED: i64 = 20056;
    /// System busy.
    pub const SYSTEM_BUSY: i64 = 20200;
    /// Login failed: wrong user name or password, locked account, expired password.
    pub const LOGIN_FAILED: i64 = 20400;
    /// Bad time arguments (start after end, negative, in the future).
    pub const BAD_TIME: std::ops::RangeInclusive<i64> = 20604..=20606;
    /// The API account's daily call quota is used up.
    pub const DAILY_QUOTA: i64 = 20618;
}

/// What [`fail_code::SYSTEM_FLOW_CONTROL`] asks for: more than a minute.
pub const SYSTEM_FLOW_CONTROL_WAIT: Duration = Duration::from_secs(60);

/// FusionSolar's own error (`success: false`), attached as the `source` of an
/// [`AdapterError`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct HuaweiApiError {
    /// The interface (`getDevRealKpi`).
    pub call: String,
    /// The `failCode`, if the envelope had one.
    pub fail_code: Option<i64>,
    /// The `message`, often empty.
    pub message: String,
    /// The `data` text (`ACCESS_FREQUENCY_IS_TOO_HIGH`), if it was a text.
    pub data: String,
}

impl fmt::Display for HuaweiApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: success=false", self.call)?;
        if let Some(code) = self.fail_code {
            write!(f, " failCode={code}")?;
        }
        if !self.message.is_empty() {
            write!(f, " message={:?}", self.message)?;
        }
        if !self.data.is_empty() {
            write!(f, " data={:?}", self.data)?;
        }
        Ok(())
    }
}

impl HuaweiApiError {
    fn from_envelope(env: &Envelope, call: &str) -> Self {
        let data = match &env.data {
            Value::String(s) => excerpt(s),
            _ => String::new(),
        };
        Self {
            call: call.to_owned(),
            fail_code: env.fail_code,
            message: env.message.as_deref().map(excerpt).unwrap_or_default(),
            data,
        }
    }
}

/// A non-2xx HTTP answer, attached as the `source` of an [`AdapterError`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{call}: HTTP {status}")]
pub struct HuaweiHttpError {
    /// The interface.
    pub call: String,
    /// The status.
    pub status: u16,
}

/// A framework error body (`exceptionId`), attached as the `source` of an [`AdapterError`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{call}: framework exception {exception_id}")]
pub struct HuaweiFrameworkError {
    /// The interface.
    pub call: String,
    /// The exception id (`framwork.remote.Paramerror`).
    pub exception_id: String,
}

/// At most 120 characters of a vendor text, for messages.
fn excerpt(s: &str) -> String {
    s.trim().chars().take(120).collect()
}

fn err(kind: ErrorKind, message: impl Into<String>) -> AdapterError {
    AdapterError::new(kind, VENDOR, message)
}

/// Classifies an envelope with `success: false` from any call but login.
pub fn classify_failure(
    env: &Envelope,
    headers: &HeaderMap,
    now: DateTime<Utc>,
    what: &str,
) -> AdapterError {
    let source = HuaweiApiError::from_envelope(env, what);
    let header_wait = retry_after(headers, now);
    let code = env.fail_code.unwrap_or(-1);
    let (kind, message) = match code {
        fail_code::NOT_LOGGED_IN => {
            (ErrorKind::AuthExpired, format!("{what}: not logged in or session expired (305)"))
        }
        fail_code::TOO_FREQUENT => {
            let e = err(ErrorKind::RateLimited, format!("{what}: access frequency too high (407)"));
            return with_wait(e, header_wait).with_source(source);
        }
        fail_code::SYSTEM_FLOW_CONTROL => {
            let e = err(ErrorKind::RateLimited, format!("{what}: system flow control (429)"));
            let wait = header_wait.or(Some(SYSTEM_FLOW_CONTROL_WAIT));
            return with_wait(e, wait).with_source(source);
        }
        fail_code::DAILY_QUOTA => {
            let e = err(
                ErrorKind::RateLimited,
                format!("{what}: the API account's daily quota is used up (20618)"),
            );
            return with_wait(e, header_wait).with_source(source);
        }
        fail_code::NO_PERMISSION => {
            (ErrorKind::Unauthorized, format!("{what}: the API account has no rights to it (401)"))
        }
        fail_code::USER_NOT_AUTHORIZED
        | fail_code::ACCOUNT_DISABLED
        | fail_code::ACCOUNT_EXPIRED
        | fail_code::LOGIN_FAILED => (
            ErrorKind::Unauthorized,
            format!("{what}: the API account is refused ({code}); the user must link it again"),
        ),
        fail_code::SERVER_ERROR | fail_code::SYSTEM_BUSY => {
            (ErrorKind::Transient, format!("{what}: server error or busy ({code})"))
        }
        fail_code::TOO_MANY_PLANTS => {
            (ErrorKind::Rejected, format!("{what}: more than 100 plants in one call (20015)"))
        }
        c if fail_code::BAD_TIME.contains(&c) => {
            (ErrorKind::Rejected, format!("{what}: bad time arguments ({c})"))
        }
        -1 => (ErrorKind::Protocol, format!("{what}: success=false without a failCode")),
        c => (ErrorKind::Protocol, format!("{what}: unexpected failCode {c}")),
    };
    err(kind, message).with_source(source)
}

/// Classifies an envelope with `success: false` from `login`.
pub fn classify_login_failure(
    env: &Envelope,
    headers: &HeaderMap,
    now: DateTime<Utc>,
    what: &str,
) -> AdapterError {
    match env.fail_code {
        Some(
            fail_code::TOO_FREQUENT
            | fail_code::SYSTEM_FLOW_CONTROL
            | fail_code::DAILY_QUOTA
            | fail_code::SERVER_ERROR
            | fail_code::SYSTEM_BUSY,
        ) => classify_failure(env, headers, now, what),
        code => {
            let code = code.map_or_else(|| "no failCode".to_owned(), |c| c.to_string());
            err(
                ErrorKind::Unauthorized,
                format!("{what}: login refused ({code}); the user must link the account again"),
            )
            .with_source(HuaweiApiError::from_envelope(env, what))
        }
    }
}

/// Classifies a non-2xx HTTP answer.
pub fn classify_status(
    status: u16,
    headers: &HeaderMap,
    now: DateTime<Utc>,
    what: &str,
) -> AdapterError {
    let source = HuaweiHttpError { call: what.to_owned(), status };
    match status {
        429 => {
            let e = err(ErrorKind::RateLimited, format!("{what}: rate limited (HTTP 429)"));
            with_wait(e, retry_after(headers, now)).with_source(source)
        }
        500..=599 => err(ErrorKind::Transient, format!("{what}: server error (HTTP {status})"))
            .with_source(source),
        _ => err(ErrorKind::Protocol, format!("{what}: unexpected HTTP status {status}"))
            .with_source(source),
    }
}

fn with_wait(e: AdapterError, wait: Option<Duration>) -> AdapterError {
    match wait {
        Some(wait) => e.with_retry_after(wait),
        None => e,
    }
}

/// `Retry-After` as seconds or an HTTP date (relative to `now`); `None` without the header.
pub fn retry_after(headers: &HeaderMap, now: DateTime<Utc>) -> Option<Duration> {
    let value = headers.get("retry-after")?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<f64>() {
        return (secs.is_finite() && (0.0..1.0e9).contains(&secs))
            .then(|| Duration::from_secs_f64(secs));
    }
    let at = DateTime::parse_from_rfc2822(value).ok()?.with_timezone(&Utc);
    Some((at - now).to_std().unwrap_or(Duration::ZERO))
}

/// Decodes a 2xx body as the envelope; anything else is a protocol error with the serde
/// error as source (a framework exception body gets its own message).
pub fn decode_envelope(body: &[u8], what: &str) -> AdapterResult<Envelope> {
    match serde_json::from_slice::<Envelope>(body) {
        Ok(env) => Ok(env),
        Err(e) => {
            if let Ok(exception) = serde_json::from_slice::<FrameworkException>(body) {
                return Err(err(
                    ErrorKind::Protocol,
                    format!("{what}: framework exception {}", excerpt(&exception.exception_id)),
                )
                .with_source(HuaweiFrameworkError {
                    call: what.to_owned(),
                    exception_id: excerpt(&exception.exception_id),
                }));
            }
            tracing::debug!(target: "oemgate_huawei", what, bytes = body.len(), error = %e,
                "body is not a FusionSolar envelope");
            Err(err(ErrorKind::Protocol, format!("{what}: unexpected response body ({e})"))
                .with_source(e))
        }
    }
}

/// Decodes the `data` of a successful envelope.
pub fn decode_data<T: DeserializeOwned>(data: Value, what: &str) -> AdapterResult<T> {
    serde_json::from_value(data).map_err(|e| {
        err(ErrorKind::Protocol, format!("{what}: unexpected data ({e})")).with_source(e)
    })
}

/// The server's time of an answer (`params.currentTime`, epoch ms).
pub fn current_time(env: &Envelope) -> Option<DateTime<Utc>> {
    env.params.current_time.and_then(DateTime::from_timestamp_millis)
}

/// A decoded successful answer.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Answer<T> {
    /// `data`.
    pub data: T,
    /// `params.currentTime`.
    pub current_time: Option<DateTime<Utc>>,
}

/// The HTTP side of the adapter.
#[derive(Clone)]
pub(crate) struct HuaweiClient {
    http: reqwest::Client,
    timeout: Duration,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for HuaweiClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HuaweiClient").field("timeout", &self.timeout).finish_non_exhaustive()
    }
}

/// A raw answer: status, headers, body.
struct Raw {
    status: u16,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl HuaweiClient {
    pub(crate) fn new(http: reqwest::Client, timeout: Duration, clock: Arc<dyn Clock>) -> Self {
        Self { http, timeout, clock }
    }

    fn url(base: &str, name: &str) -> String {
        format!("{}{API_PATH}/{name}", base.trim_end_matches('/'))
    }

    async fn post<B: Serialize + ?Sized>(
        &self,
        base: &str,
        token: Option<&str>,
        name: &str,
        body: &B,
    ) -> AdapterResult<Raw> {
        let mut request = self.http.post(Self::url(base, name)).json(body).timeout(self.timeout);
        if let Some(token) = token {
            request = request.header(TOKEN_HEADER, token);
        }
        let started = Instant::now();
        let response = request.send().await.map_err(|e| transport_error(e, name))?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.bytes().await.map_err(|e| transport_error(e, name))?;
        tracing::debug!(
            target: "oemgate_huawei",
            call = name,
            status,
            bytes = body.len(),
            ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            "fusionsolar response"
        );
        Ok(Raw { status, headers, body: body.to_vec() })
    }

    /// `POST {base}/thirdData/{name}` with the session token; decodes `data` as `T`.
    pub(crate) async fn call<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        base: &str,
        token: &str,
        name: &str,
        body: &B,
    ) -> AdapterResult<Answer<T>> {
        let raw = self.post(base, Some(token), name, body).await?;
        let now = self.clock.now();
        if !(200..300).contains(&raw.status) {
            return Err(classify_status(raw.status, &raw.headers, now, name));
        }
        let env = decode_envelope(&raw.body, name)?;
        if !env.success {
            return Err(classify_failure(&env, &raw.headers, now, name));
        }
        let current_time = current_time(&env);
        let data = decode_data(env.data, name)?;
        Ok(Answer { data, current_time })
    }

    /// `POST {base}/thirdData/login`; returns the session token from the `xsrf-token` header
    /// (or the `XSRF-TOKEN` cookie).
    pub(crate) async fn login(
        &self,
        base: &str,
        user_name: &str,
        system_code: &str,
    ) -> AdapterResult<String> {
        const WHAT: &str = "login";
        let body = LoginRequest { user_name, system_code };
        let raw = self.post(base, None, WHAT, &body).await?;
        let now = self.clock.now();
        if !(200..300).contains(&raw.status) {
            return Err(classify_status(raw.status, &raw.headers, now, WHAT));
        }
        let env = decode_envelope(&raw.body, WHAT)?;
        if !env.success {
            return Err(classify_login_failure(&env, &raw.headers, now, WHAT));
        }
        session_token(&raw.headers).ok_or_else(|| {
            err(ErrorKind::Protocol, "login: success without an xsrf-token header or cookie")
        })
    }

    /// `POST {base}/thirdData/logout` for `token`.
    pub(crate) async fn logout(&self, base: &str, token: &str) -> AdapterResult<()> {
        let body = LogoutRequest { xsrf_token: token };
        let _: Answer<Value> = self.call(base, token, "logout", &body).await?;
        Ok(())
    }
}

/// The token of a login answer: the `xsrf-token` header, else the `XSRF-TOKEN` cookie.
pub fn session_token(headers: &HeaderMap) -> Option<String> {
    let header = headers
        .get(LOGIN_TOKEN_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|t| !t.is_empty());
    if let Some(token) = header {
        return Some(token.to_owned());
    }
    headers.get_all(reqwest::header::SET_COOKIE).iter().find_map(|v| {
        let cookie = v.to_str().ok()?;
        let (name, rest) = cookie.split_once('=')?;
        if !name.trim().eq_ignore_ascii_case("XSRF-TOKEN") {
            return None;
        }
        let value = rest.split(';').next()?.trim();
        (!value.is_empty()).then(|| value.to_owned())
    })
}

/// Maps a transport failure (no complete HTTP answer) to an error.
fn transport_error(e: reqwest::Error, what: &str) -> AdapterError {
    if e.is_builder() {
        return err(
            ErrorKind::Protocol,
            format!("{what}: could not build the request (base URL?)"),
        )
        .with_source(e.without_url());
    }
    let message = if e.is_timeout() {
        format!("{what}: request timed out")
    } else if e.is_connect() {
        format!("{what}: connection failed")
    } else {
        format!("{what}: request failed")
    };
    err(ErrorKind::Transient, message).with_source(e.without_url())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use reqwest::header::HeaderValue;
    use std::error::Error as _;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 6, 1, 12, 0, 0).unwrap()
    }

    fn env(code: i64) -> Envelope {
        serde_json::from_value(serde_json::json!({
            "success": false, "failCode": code, "message": null, "data": "TEXT"
        }))
        .unwrap()
    }

    fn kind(code: i64) -> ErrorKind {
        classify_failure(&env(code), &HeaderMap::new(), now(), "getDevRealKpi").kind()
    }

    #[test]
    fn fail_codes() {
        assert_eq!(kind(305), ErrorKind::AuthExpired);
        assert_eq!(kind(407), ErrorKind::RateLimited);
        assert_eq!(kind(429), ErrorKind::RateLimited);
        assert_eq!(kind(20618), ErrorKind::RateLimited);
        assert_eq!(kind(401), ErrorKind::Unauthorized);
        assert_eq!(kind(20002), ErrorKind::Unauthorized);
        assert_eq!(kind(20003), ErrorKind::Unauthorized);
        assert_eq!(kind(20056), ErrorKind::Unauthorized);
        assert_eq!(kind(20400), ErrorKind::Unauthorized);
        assert_eq!(kind(20004), ErrorKind::Transient);
        assert_eq!(kind(20200), ErrorKind::Transient);
        assert_eq!(kind(20015), ErrorKind::Rejected);
        assert_eq!(kind(20605), ErrorKind::Rejected);
        assert_eq!(kind(12345), ErrorKind::Protocol);
        let e = classify_failure(&env(407), &HeaderMap::new(), now(), "getDevRealKpi");
        assert_eq!(e.retry_after(), None, "FusionSolar gives no wait: no guess");
        let source = e.source().unwrap().downcast_ref::<HuaweiApiError>().unwrap();
        assert_eq!(source.fail_code, Some(407));
        assert_eq!(source.data, "TEXT");
        assert!(e.message().starts_with("getDevRealKpi: "), "{e}");
        let e = classify_failure(&env(429), &HeaderMap::new(), now(), "x");
        assert_eq!(e.retry_after(), Some(SYSTEM_FLOW_CONTROL_WAIT));
    }

    #[test]
    fn retry_after_header_wins() {
        let mut headers = HeaderMap::new();
        headers.insert("retry-after", HeaderValue::from_static("37"));
        let e = classify_failure(&env(407), &headers, now(), "stations");
        assert_eq!(e.retry_after(), Some(Duration::from_secs(37)));
        let mut headers = HeaderMap::new();
        headers.insert("retry-after", HeaderValue::from_static("Mon, 01 Jun 2026 12:01:30 GMT"));
        assert_eq!(retry_after(&headers, now()), Some(Duration::from_secs(90)));
        let mut headers = HeaderMap::new();
        headers.insert("retry-after", HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&headers, now()), None);
    }

    #[test]
    fn login_refusals_need_relink() {
        let login = |code| classify_login_failure(&env(code), &HeaderMap::new(), now(), "login");
        assert_eq!(login(20400).kind(), ErrorKind::Unauthorized);
        assert_eq!(login(20002).kind(), ErrorKind::Unauthorized);
        assert_eq!(login(305).kind(), ErrorKind::Unauthorized);
        assert_eq!(login(99999).kind(), ErrorKind::Unauthorized);
        assert_eq!(login(407).kind(), ErrorKind::RateLimited);
        assert_eq!(login(20004).kind(), ErrorKind::Transient);
    }

    #[test]
    fn statuses() {
        let status = |s| classify_status(s, &HeaderMap::new(), now(), "stations").kind();
        assert_eq!(status(500), ErrorKind::Transient);
        assert_eq!(status(503), ErrorKind::Transient);
        assert_eq!(status(429), ErrorKind::RateLimited);
        assert_eq!(status(404), ErrorKind::Protocol);
        assert_eq!(status(302), ErrorKind::Protocol);
    }

    #[test]
    fn bad_bodies_are_protocol_errors_with_serde_sources() {
        for body in [&b"<html>login</html>"[..], b"{\"success\":true,\"data\":[", b"{}", b""] {
            let e = decode_envelope(body, "stations").unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Protocol);
            assert!(e.source().unwrap().is::<serde_json::Error>(), "{e}");
        }
        let e = decode_envelope(
            br#"{"exceptionId":"framwork.remote.Paramerror","exceptionType":"ROA_EXFRAME_EXCEPTION"}"#,
            "getDevList",
        )
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Protocol);
        assert!(e.message().contains("framwork.remote.Paramerror"));
        let e = decode_data::<Vec<u32>>(serde_json::json!({"a": 1}), "getDevList").unwrap_err();
        assert!(e.source().unwrap().is::<serde_json::Error>());
    }

    #[test]
    fn login_token_from_header_or_cookie() {
        let mut headers = HeaderMap::new();
        headers.insert("xsrf-token", HeaderValue::from_static("abc"));
        assert_eq!(session_token(&headers).as_deref(), Some("abc"));
        let mut headers = HeaderMap::new();
        headers.append("set-cookie", HeaderValue::from_static("JSESSIONID=1; Path=/"));
        headers.append("set-cookie", HeaderValue::from_static("XSRF-TOKEN=def; Path=/; Secure"));
        assert_eq!(session_token(&headers).as_deref(), Some("def"));
        assert_eq!(session_token(&HeaderMap::new()), None);
    }
}
