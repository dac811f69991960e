//! SMA's cloud, simulated on the shared [`World`] and served as an axum [`Router`] (expected
//! under the prefix [`PREFIX`] `/sma` of an `oemgate_sim::SimHost`; both the Monitoring API
//! and the token endpoint are served from it).
//!
//! [`SmaSim`] renders the world's sites as SMA plants and the world's devices of vendor
//! [`WORLD_VENDOR`] (`"sma"`) at those sites as SMA devices, in SMA's JSON:
//!
//! | route | what |
//! |---|---|
//! | `GET /oauth2/auth` | code grant: with `login_hint` (the simulated user's e-mail) redirects to `redirect_uri?code=..&state=..`; without it a sign-in form; `decision=deny` redirects with `error=access_denied` |
//! | `POST /oauth2/token` | `authorization_code` and `refresh_token` grants (form, client id and secret in the form) |
//! | `GET /v1/plants` | the account's plants; **empty** until the owner consented |
//! | `GET /v1/plants/{plantId}` | one plant |
//! | `GET /v1/plants/{plantId}/devices` (and `/devices/lean`) | its SMA devices: `Solar Inverters`, `Battery Inverter`, `Monitoring and control` (Sunny Home Manager 2.0) |
//! | `GET /v1/plants/{plantId}/measurements/sets/EnergyBalance/Recent` | the latest five-minute interval: powers in W |
//! | `GET /v1/plants/{plantId}/measurements/sets/EnergyBalance/Total` | lifetime energies in Wh, one interval for the current year |
//! | `GET /v1/devices/{deviceId}` | device details |
//! | `GET /v1/devices/{deviceId}/measurements/sets` | the device's sets |
//! | `GET /v1/devices/{deviceId}/measurements/sets/{EnergyAndPowerPv,EnergyAndPowerBattery,EnergyAndPowerInOut}/Recent` | device-level powers in W |
//!
//! Values come from the world at the request's clock time; an interval's `time` is the start
//! of the current five-minute interval in the plant's local time (its IANA zone, without
//! offset). SMA omits the keys of a device class a plant lacks, and so does the simulator for
//! classes whose SMA devices are all offline in the world (no device online: `"set": []`).
//!
//! **Auth** (Keycloak-like): authorization codes are single-use and live
//! [`SmaSimConfig::code_lifetime`]; access tokens live [`SmaSimConfig::access_token_lifetime`]
//! (300 s, as at SMA); every refresh issues a new refresh token, while the old one stays valid
//! until it expires ([`SmaSimConfig::refresh_token_lifetime`], two days). An expired, unknown
//! or revoked access token gets the same 401 with `WWW-Authenticate: Bearer
//! error="invalid_token"`; a spent code or a dead refresh token gets 400 `invalid_grant`;
//! wrong client credentials 401 `invalid_client`.
//!
//! **Consent**: an account starts with consent given; [`SmaSim::set_consent`] withdraws it.
//! Without consent the plant list is empty and the account's plant routes answer 403. Plants
//! and devices of other accounts answer 404.
//!
//! **Rate limit**: each application (client id) has a token bucket of
//! [`SmaSimConfig::bucket_size`] requests to the Monitoring API, refilled completely every
//! [`SmaSimConfig::bucket_refill`] (five minutes) counted from its first request. When it is
//! empty the answer is 429 with `Retry-After` (whole seconds to the refill) and the gateway's
//! body `{"statusCode":429,"message":"Rate limit is exceeded. Try again in N seconds."}`.
//!
//! **Faults**: `world.faults()` for vendor `"sma"` (the world's lower-case vendor name) or
//! `"SMA"` apply to every route at the start of every request:
//!
//! | fault | rendering |
//! |---|---|
//! | `RateLimit { retry_after }` | 429, `Retry-After: <ceil secs>`, the gateway's rate-limit body |
//! | `ServerError { status }` | that status (500 if not 5xx) with `{"statusCode":..,"message":"Internal server error"}` |
//! | `Outage` | 503 with `{"statusCode":503,"message":"Service Unavailable"}` |
//! | `Hang { duration }` | answers normally after the duration (clock time, converted to real time) |
//! | `Timeout` | holds the request for `TIMEOUT_HANG` of real time, then 504 |
//! | `Malformed` | 200 with a `application/json` maintenance page in HTML |
//! | `Truncated` | the correct 2xx body cut in half |
//! | `RevokeTokens` | one-shot: every access and refresh token of every account is revoked |

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Datelike, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use oemgate_sim::{
    DeviceId, DeviceInfo, DeviceKind, Fault, SiteId, SiteState, TIMEOUT_HANG, World,
};
use serde_json::{Map, Value, json};

/// The mount prefix the adapter's base URLs expect.
pub const PREFIX: &str = "/sma";
/// The vendor name of SMA's devices in the world (and of its faults and command stats).
pub const WORLD_VENDOR: &str = "sma";
/// The keys under which faults for SMA are looked up in `world.faults()`.
pub const FAULT_KEYS: [&str; 2] = [WORLD_VENDOR, "SMA"];
/// The application the simulator knows unless configured otherwise.
pub const DEFAULT_CLIENT_ID: &str = "oemgate-demo";
/// Its secret.
pub const DEFAULT_CLIENT_SECRET: &str = "oemgate-demo-secret";
/// The redirect URI the codes of [`SmaSim::create_account`] are bound to by default.
pub const DEFAULT_REDIRECT_URI: &str = "https://oemgate.example/oauth/sma/callback";

const VENDOR_NAME: &str = "SMA Solar Technology AG";
const INTERVAL_SECS: i64 = 300;

/// How the simulated cloud behaves.
#[derive(Clone, PartialEq, Eq)]
pub struct SmaSimConfig {
    /// The application's client id.
    pub client_id: String,
    /// The application's client secret.
    pub client_secret: String,
    /// The redirect URI [`SmaSim::create_account`] binds its codes to.
    pub redirect_uri: String,
    /// Access token lifetime (SMA: about 5 minutes).
    pub access_token_lifetime: Duration,
    /// Refresh token lifetime (about 2 days).
    pub refresh_token_lifetime: Duration,
    /// Authorization code lifetime.
    pub code_lifetime: Duration,
    /// Requests per bucket refill, per application.
    pub bucket_size: u32,
    /// How often the bucket is refilled.
    pub bucket_refill: Duration,
}

impl Default for SmaSimConfig {
    fn default() -> Self {
        Self {
            client_id: DEFAULT_CLIENT_ID.to_owned(),
            client_secret: DEFAULT_CLIENT_SECRET.to_owned(),
            redirect_uri: DEFAULT_REDIRECT_URI.to_owned(),
            access_token_lifetime: Duration::from_secs(300),
            refresh_token_lifetime: Duration::from_secs(2 * 86_400),
            code_lifetime: Duration::from_secs(10 * 60),
            bucket_size: crate::DEFAULT_BUCKET_SIZE,
            bucket_refill: crate::BUCKET_REFILL,
        }
    }
}

impl fmt::Debug for SmaSimConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmaSimConfig")
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("redirect_uri", &self.redirect_uri)
            .field("access_token_lifetime", &self.access_token_lifetime)
            .field("refresh_token_lifetime", &self.refresh_token_lifetime)
            .field("code_lifetime", &self.code_lifetime)
            .field("bucket_size", &self.bucket_size)
            .field("bucket_refill", &self.bucket_refill)
            .finish()
    }
}

/// What a user has in hand to link a simulated account: the code grant's code (bound to
/// [`SmaLink::redirect_uri`]) and the e-mail SMA knows them by.
#[derive(Clone, PartialEq, Eq)]
pub struct SmaLink {
    /// The account's id in the simulator.
    pub account_id: String,
    /// The owner's e-mail (the `login_hint` of `/oauth2/auth`).
    pub login: String,
    /// A single-use authorization code for the account.
    pub authorization_code: String,
    /// The redirect URI the code is bound to (send it with the code).
    pub redirect_uri: String,
    /// The account's plant ids, in the order of the sites given.
    pub plant_ids: Vec<String>,
}

impl fmt::Debug for SmaLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmaLink")
            .field("account_id", &self.account_id)
            .field("login", &self.login)
            .field("authorization_code", &"<redacted>")
            .field("redirect_uri", &self.redirect_uri)
            .field("plant_ids", &self.plant_ids)
            .finish()
    }
}

#[derive(Clone, Debug)]
struct Account {
    login: String,
    sites: Vec<SiteId>,
    consent: bool,
}

#[derive(Clone, Debug)]
struct Code {
    account: String,
    redirect_uri: String,
    expires_at: DateTime<Utc>,
}

#[derive(Clone, Debug)]
struct Token {
    account: String,
    expires_at: DateTime<Utc>,
}

#[derive(Clone, Debug)]
struct Bucket {
    remaining: u32,
    period_start: DateTime<Utc>,
}

#[derive(Debug, Default)]
struct SimState {
    accounts: BTreeMap<String, Account>,
    codes: BTreeMap<String, Code>,
    access: BTreeMap<String, Token>,
    refresh: BTreeMap<String, Token>,
    bucket: Option<Bucket>,
    serial: u64,
}

/// The simulated SMA cloud. Cheap to clone (shared state).
#[derive(Clone)]
pub struct SmaSim {
    world: World,
    config: Arc<SmaSimConfig>,
    state: Arc<Mutex<SimState>>,
    seed: u64,
}

impl fmt::Debug for SmaSim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.lock();
        f.debug_struct("SmaSim")
            .field("config", &self.config)
            .field("accounts", &state.accounts.len())
            .finish_non_exhaustive()
    }
}

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

fn plus(t: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(d)
        .ok()
        .and_then(|d| t.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// The trailing digits of a world id (`site-000012` -> 12).
fn trailing_number(id: &str) -> Option<u64> {
    let digits: String = id.chars().rev().take_while(char::is_ascii_digit).collect();
    let digits: String = digits.chars().rev().collect();
    digits.parse().ok()
}

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0 + 0.0
}

/// A JSON error of SMA's gateway.
fn gateway_error(status: StatusCode, message: &str) -> SimResponse {
    SimResponse::json(status, &json!({ "statusCode": status.as_u16(), "message": message }))
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> SimResponse {
    SimResponse::json(status, &json!({ "error": error, "error_description": description }))
}

struct SimResponse {
    status: StatusCode,
    headers: Vec<(header::HeaderName, String)>,
    body: String,
}

impl SimResponse {
    fn json(status: StatusCode, value: &Value) -> Self {
        Self { status, headers: Vec::new(), body: value.to_string() }
    }

    fn ok(value: &Value) -> Self {
        Self::json(StatusCode::OK, value)
    }

    fn with_header(mut self, name: header::HeaderName, value: String) -> Self {
        self.headers.push((name, value));
        self
    }
}

impl IntoResponse for SimResponse {
    fn into_response(self) -> Response {
        let mut response = (self.status, self.body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        for (name, value) in self.headers {
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.insert(name, value);
            }
        }
        response
    }
}

/// A request as the routes see it.
struct Call {
    method: Method,
    segments: Vec<String>,
    query: Option<String>,
    bearer: Option<String>,
    body: Bytes,
}

fn query_pairs(raw: &str) -> BTreeMap<String, String> {
    reqwest::Url::parse(&format!("http://sim/?{raw}"))
        .map(|u| u.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect())
        .unwrap_or_default()
}

async fn handle(
    State(sim): State<SmaSim>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let segments =
        uri.path().split('/').filter(|s| !s.is_empty()).map(str::to_owned).collect::<Vec<_>>();
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(|t| t.trim().to_owned());
    let call = Call { method, segments, query: uri.query().map(str::to_owned), bearer, body };
    sim.answer(call).await
}

impl SmaSim {
    /// A simulator over `world` with the default application ([`DEFAULT_CLIENT_ID`]).
    pub fn new(world: World) -> Self {
        Self::with_config(world, SmaSimConfig::default())
    }

    /// A simulator over `world` with `config`.
    pub fn with_config(world: World, config: SmaSimConfig) -> Self {
        let seed = world.seed();
        Self {
            world,
            config: Arc::new(config),
            state: Arc::new(Mutex::new(SimState::default())),
            seed,
        }
    }

    /// The world.
    pub fn world(&self) -> &World {
        &self.world
    }

    /// The configuration.
    pub fn config(&self) -> &SmaSimConfig {
        &self.config
    }

    fn lock(&self) -> MutexGuard<'_, SimState> {
        // Every mutation is a single insert/remove; a poisoned lock is still consistent.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The simulator's routes (state shared with this handle and its clones).
    pub fn router(&self) -> Router {
        Router::new().fallback(handle).with_state(self.clone())
    }

    /// SMA's plant id for a world site (numeric, like ennexOS plants): `site-000012` ->
    /// `5000012`. Stable for a site.
    pub fn plant_id(&self, site: &SiteId) -> String {
        match trailing_number(site.as_str()) {
            Some(n) => (5_000_000 + n).to_string(),
            None => {
                (10_000_000 + splitmix(self.seed ^ hash_str(site.as_str())) % 1_000_000).to_string()
            }
        }
    }

    /// SMA's device id for a world device (numeric): `6`, a digit for the kind (1 inverter,
    /// 2 battery, 3 meter), the world id's number (`inv-000002` -> `61000002`). Stable.
    pub fn device_id(&self, device: &DeviceId) -> String {
        let kind = match device.as_str().split('-').next() {
            Some("inv") => 1,
            Some("bat") => 2,
            Some("mtr") => 3,
            _ => 9,
        };
        match trailing_number(device.as_str()) {
            Some(n) => format!("6{kind}{n:06}"),
            None => {
                format!("69{:09}", splitmix(self.seed ^ hash_str(device.as_str())) % 1_000_000_000)
            }
        }
    }

    fn next_secret(&self, state: &mut SimState, prefix: &str) -> String {
        state.serial += 1;
        let a = splitmix(self.seed ^ state.serial.wrapping_mul(0x5851_F42D_4C95_7F2D));
        let b = splitmix(a ^ state.serial);
        format!("{prefix}{a:016x}{b:016x}")
    }

    /// Creates an account owning `sites` (the SMA devices there become its devices), with
    /// consent given, and returns what its owner links with.
    pub fn create_account(&self, sites: &[SiteId]) -> SmaLink {
        let now = self.world.now();
        let plant_ids = sites.iter().map(|s| self.plant_id(s)).collect();
        let mut state = self.lock();
        let n = state.accounts.len() + 1;
        let account_id = format!("sma-account-{n:04}");
        let login = format!("owner{n:04}@example.com");
        state.accounts.insert(
            account_id.clone(),
            Account { login: login.clone(), sites: sites.to_vec(), consent: true },
        );
        let redirect_uri = self.config.redirect_uri.clone();
        let code = self.issue_code(&mut state, &account_id, &redirect_uri, now);
        SmaLink { account_id, login, authorization_code: code, redirect_uri, plant_ids }
    }

    fn issue_code(
        &self,
        state: &mut SimState,
        account: &str,
        redirect_uri: &str,
        now: DateTime<Utc>,
    ) -> String {
        let code = self.next_secret(state, "code.");
        state.codes.insert(
            code.clone(),
            Code {
                account: account.to_owned(),
                redirect_uri: redirect_uri.to_owned(),
                expires_at: plus(now, self.config.code_lifetime),
            },
        );
        code
    }

    /// A fresh authorization code for an existing account (the owner logs in again), bound
    /// to `redirect_uri`. `None` for an unknown account.
    pub fn authorization_code(&self, account_id: &str, redirect_uri: &str) -> Option<String> {
        let now = self.world.now();
        let mut state = self.lock();
        state.accounts.contains_key(account_id).then_some(())?;
        Some(self.issue_code(&mut state, account_id, redirect_uri, now))
    }

    /// Gives (`true`) or withdraws (`false`) the owner's consent. Returns false for an unknown
    /// account.
    pub fn set_consent(&self, account_id: &str, given: bool) -> bool {
        match self.lock().accounts.get_mut(account_id) {
            Some(a) => {
                a.consent = given;
                true
            }
            None => false,
        }
    }

    /// Adds a site to an account (a plant the owner registered later).
    pub fn add_site(&self, account_id: &str, site: &SiteId) -> bool {
        match self.lock().accounts.get_mut(account_id) {
            Some(a) => {
                if !a.sites.contains(site) {
                    a.sites.push(site.clone());
                }
                true
            }
            None => false,
        }
    }

    /// Makes every access token of the account expire now (refresh tokens stay valid).
    pub fn expire_access_tokens(&self, account_id: &str) {
        let now = self.world.now();
        for token in self.lock().access.values_mut().filter(|t| t.account == account_id) {
            token.expires_at = token.expires_at.min(now);
        }
    }

    /// Revokes every access and refresh token of the account (the owner removed the app).
    pub fn revoke(&self, account_id: &str) {
        let mut state = self.lock();
        state.access.retain(|_, t| t.account != account_id);
        state.refresh.retain(|_, t| t.account != account_id);
        state.codes.retain(|_, c| c.account != account_id);
    }

    /// Revokes every token of every account.
    pub fn revoke_all(&self) {
        let mut state = self.lock();
        state.access.clear();
        state.refresh.clear();
    }

    /// Requests left in the application's bucket now (a fresh bucket when never used).
    pub fn bucket_remaining(&self) -> u32 {
        let now = self.world.now();
        let mut state = self.lock();
        self.refill(&mut state, now);
        state.bucket.as_ref().map_or(self.config.bucket_size, |b| b.remaining)
    }

    fn refill(&self, state: &mut SimState, now: DateTime<Utc>) {
        let period = chrono::Duration::from_std(self.config.bucket_refill)
            .unwrap_or(chrono::Duration::MAX)
            .max(chrono::Duration::seconds(1));
        if let Some(b) = &mut state.bucket
            && now - b.period_start >= period
        {
            let periods = (now - b.period_start).num_seconds() / period.num_seconds().max(1);
            b.period_start += period * i32::try_from(periods).unwrap_or(i32::MAX);
            b.remaining = self.config.bucket_size;
        }
    }

    /// Takes one request from the bucket, or says how long until the refill.
    fn take_from_bucket(&self, now: DateTime<Utc>) -> Result<(), u64> {
        let mut state = self.lock();
        self.refill(&mut state, now);
        let size = self.config.bucket_size;
        let bucket = state.bucket.get_or_insert(Bucket { remaining: size, period_start: now });
        if bucket.remaining == 0 {
            let refill_at = plus(bucket.period_start, self.config.bucket_refill);
            let secs = (refill_at - now).num_milliseconds().max(0);
            return Err(u64::try_from((secs + 999) / 1000).unwrap_or(0).max(1));
        }
        bucket.remaining -= 1;
        Ok(())
    }

    async fn answer(&self, call: Call) -> Response {
        let faults = self.world.faults();
        let mut revoke = false;
        for key in FAULT_KEYS {
            revoke |= faults.take_revocation(key);
        }
        if revoke {
            self.revoke_all();
        }
        let fault = FAULT_KEYS.iter().find_map(|key| faults.active(key));
        let mut truncate = false;
        match fault {
            Some(Fault::RateLimit { retry_after }) => {
                let secs = retry_after.as_secs_f64().ceil();
                return rate_limited(format!("{secs}")).into_response();
            }
            Some(Fault::ServerError { status }) => {
                let status = StatusCode::from_u16(status)
                    .ok()
                    .filter(StatusCode::is_server_error)
                    .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                return gateway_error(status, "Internal server error").into_response();
            }
            Some(Fault::Outage) => {
                return gateway_error(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable")
                    .into_response();
            }
            Some(Fault::Malformed) => {
                return SimResponse {
                    status: StatusCode::OK,
                    headers: Vec::new(),
                    body: "<!DOCTYPE html><html><head><title>Sunny Portal</title></head>\
                           <body><h1>Maintenance</h1><p>We will be back soon.</p></body></html>"
                        .to_owned(),
                }
                .into_response();
            }
            Some(Fault::Timeout) => {
                tokio::time::sleep(TIMEOUT_HANG).await;
                return gateway_error(StatusCode::GATEWAY_TIMEOUT, "Gateway Timeout")
                    .into_response();
            }
            Some(fault @ Fault::Hang { .. }) => {
                if let Some(real) = fault.hang_real(self.world.clock().as_ref()) {
                    tokio::time::sleep(real).await;
                }
            }
            Some(Fault::Truncated) => truncate = true,
            Some(Fault::RevokeTokens) | None => {}
        }
        let mut response = self.route(&call);
        if truncate && response.status.is_success() {
            let mut cut = response.body.len() / 2;
            while !response.body.is_char_boundary(cut) {
                cut -= 1;
            }
            response.body.truncate(cut);
        }
        response.into_response()
    }

    fn route(&self, call: &Call) -> SimResponse {
        let segments: Vec<&str> = call.segments.iter().map(String::as_str).collect();
        let get = call.method == Method::GET;
        match segments.as_slice() {
            ["oauth2", "token"] if call.method == Method::POST => self.token(call),
            ["oauth2", "auth"] if get => self.authorize(call),
            ["oauth2", ..] => oauth_error(StatusCode::NOT_FOUND, "invalid_request", "Not found"),
            ["v1", ..] if !get => {
                gateway_error(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed")
            }
            ["v1", rest @ ..] => {
                let now = self.world.now();
                let account = match self.authenticate(call, now) {
                    Ok(account) => account,
                    Err(r) => return r,
                };
                if let Err(secs) = self.take_from_bucket(now) {
                    return rate_limited(secs.to_string());
                }
                self.monitoring(&account, rest, now)
            }
            _ => gateway_error(StatusCode::NOT_FOUND, "Resource not found"),
        }
    }

    // ---- auth --------------------------------------------------------------------------

    fn token(&self, call: &Call) -> SimResponse {
        let now = self.world.now();
        let form = query_pairs(&String::from_utf8_lossy(&call.body));
        let field = |k: &str| form.get(k).map(String::as_str).unwrap_or("");
        if field("client_id") != self.config.client_id
            || field("client_secret") != self.config.client_secret
        {
            return oauth_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "Invalid client or Invalid client credentials",
            );
        }
        let mut state = self.lock();
        let account = match field("grant_type") {
            "authorization_code" => {
                // A code is single-use: it is gone whatever the outcome.
                let code = state.codes.remove(field("code"));
                match code {
                    Some(c) if c.expires_at > now && c.redirect_uri == field("redirect_uri") => {
                        c.account
                    }
                    Some(c) if c.expires_at > now => {
                        return oauth_error(
                            StatusCode::BAD_REQUEST,
                            "invalid_grant",
                            "Incorrect redirect_uri",
                        );
                    }
                    _ => {
                        return oauth_error(
                            StatusCode::BAD_REQUEST,
                            "invalid_grant",
                            "Code not valid",
                        );
                    }
                }
            }
            "refresh_token" => match state.refresh.get(field("refresh_token")) {
                Some(t) if t.expires_at > now => t.account.clone(),
                _ => {
                    return oauth_error(
                        StatusCode::BAD_REQUEST,
                        "invalid_grant",
                        "Token is not active",
                    );
                }
            },
            _ => {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "unsupported_grant_type",
                    "Unsupported grant_type",
                );
            }
        };
        let access = self.next_secret(&mut state, "eyJhbGciOiJSUzI1NiJ9.");
        let refresh = self.next_secret(&mut state, "eyJhbGciOiJIUzI1NiJ9.");
        state.access.insert(
            access.clone(),
            Token {
                account: account.clone(),
                expires_at: plus(now, self.config.access_token_lifetime),
            },
        );
        state.refresh.insert(
            refresh.clone(),
            Token { account, expires_at: plus(now, self.config.refresh_token_lifetime) },
        );
        SimResponse::ok(&json!({
            "access_token": access,
            "expires_in": self.config.access_token_lifetime.as_secs(),
            "refresh_expires_in": self.config.refresh_token_lifetime.as_secs(),
            "refresh_token": refresh,
            "token_type": "Bearer",
            "not-before-policy": 0,
            "scope": "profile email",
        }))
        .with_header(header::CACHE_CONTROL, "no-store".to_owned())
    }

    /// The code grant's authorize step for an already logged-in owner (`login_hint`).
    fn authorize(&self, call: &Call) -> SimResponse {
        let now = self.world.now();
        let q = query_pairs(call.query.as_deref().unwrap_or(""));
        let field = |k: &str| q.get(k).map(String::as_str).unwrap_or("");
        if field("client_id") != self.config.client_id || field("response_type") != "code" {
            return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "Invalid parameter");
        }
        let redirect_uri = field("redirect_uri");
        let Ok(mut target) = reqwest::Url::parse(redirect_uri) else {
            return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "Invalid redirect_uri");
        };
        if field("decision") == "deny" {
            target
                .query_pairs_mut()
                .append_pair("error", "access_denied")
                .append_pair("error_description", "The owner denied access")
                .append_pair("state", field("state"));
            return SimResponse {
                status: StatusCode::FOUND,
                headers: Vec::new(),
                body: String::new(),
            }
            .with_header(header::LOCATION, target.to_string());
        }
        if field("login_hint").is_empty() {
            let page = oemgate_sim::http::authorize_form("SMA", "auth", &q, None);
            return SimResponse { status: StatusCode::OK, headers: Vec::new(), body: page }
                .with_header(header::CONTENT_TYPE, "text/html; charset=utf-8".to_owned());
        }
        let mut state = self.lock();
        let account = state
            .accounts
            .iter()
            .find(|(_, a)| a.login.eq_ignore_ascii_case(field("login_hint")))
            .map(|(id, _)| id.clone());
        let Some(account) = account else {
            return oauth_error(StatusCode::BAD_REQUEST, "access_denied", "Unknown user");
        };
        let code = self.issue_code(&mut state, &account, redirect_uri, now);
        target.query_pairs_mut().append_pair("code", &code).append_pair("state", field("state"));
        SimResponse { status: StatusCode::FOUND, headers: Vec::new(), body: String::new() }
            .with_header(header::LOCATION, target.to_string())
    }

    fn authenticate(&self, call: &Call, now: DateTime<Utc>) -> Result<Account, SimResponse> {
        let unauthorized = |description: &str| {
            gateway_error(StatusCode::UNAUTHORIZED, "Unauthorized").with_header(
                header::WWW_AUTHENTICATE,
                format!("Bearer error=\"invalid_token\", error_description=\"{description}\""),
            )
        };
        let Some(bearer) = call.bearer.as_deref() else {
            return Err(gateway_error(StatusCode::UNAUTHORIZED, "Unauthorized")
                .with_header(header::WWW_AUTHENTICATE, "Bearer".to_owned()));
        };
        let state = self.lock();
        let Some(token) = state.access.get(bearer) else {
            return Err(unauthorized("The token is not valid"));
        };
        if token.expires_at <= now {
            return Err(unauthorized("The token is expired"));
        }
        state
            .accounts
            .get(&token.account)
            .cloned()
            .ok_or_else(|| unauthorized("The token is not valid"))
    }

    // ---- monitoring --------------------------------------------------------------------

    fn monitoring(&self, account: &Account, path: &[&str], now: DateTime<Utc>) -> SimResponse {
        match path {
            ["plants"] => {
                let plants: Vec<Value> = if account.consent {
                    account.sites.iter().filter_map(|s| self.plant_json(s)).collect()
                } else {
                    Vec::new()
                };
                SimResponse::ok(&json!({ "plants": plants }))
            }
            ["plants", plant, rest @ ..] => {
                let site = match self.plant_of(account, plant) {
                    Ok(site) => site,
                    Err(r) => return r,
                };
                let Some(plant_json) = self.plant_json(&site) else {
                    return plant_not_found();
                };
                match rest {
                    [] => SimResponse::ok(&plant_json),
                    ["devices"] => {
                        let devices: Vec<Value> = self
                            .sma_devices(&site)
                            .iter()
                            .map(|d| self.device_json(d, false))
                            .collect();
                        SimResponse::ok(&json!({ "plant": plant_json, "devices": devices }))
                    }
                    ["devices", "lean"] => {
                        let devices: Vec<Value> = self
                            .sma_devices(&site)
                            .iter()
                            .map(|d| self.device_json(d, true))
                            .collect();
                        SimResponse::ok(&json!({ "plant": plant_json, "devices": devices }))
                    }
                    ["measurements", "sets", "EnergyBalance", "Recent"] => {
                        let point = self.recent_balance(&site, now);
                        SimResponse::ok(&json!({
                            "plant": plant_json,
                            "setType": "EnergyBalance",
                            "resolution": "FiveMinutes",
                            "set": point.map_or_else(Vec::new, |p| vec![Value::Object(p)]),
                        }))
                    }
                    ["measurements", "sets", "EnergyBalance", "Total"] => {
                        let point = self.total_balance(&site);
                        SimResponse::ok(&json!({
                            "plant": plant_json,
                            "setType": "EnergyBalance",
                            "resolution": "OneYear",
                            "set": point.map_or_else(Vec::new, |p| vec![Value::Object(p)]),
                        }))
                    }
                    _ => gateway_error(StatusCode::NOT_FOUND, "Resource not found"),
                }
            }
            ["devices", device, rest @ ..] => {
                let (site, info) = match self.device_of(account, device) {
                    Ok(found) => found,
                    Err(r) => return r,
                };
                let Some(plant_json) = self.plant_json(&site) else {
                    return plant_not_found();
                };
                let device_head = json!({
                    "deviceId": self.device_id(&info.id),
                    "name": self.device_name(&info),
                    "timezone": plant_json.get("timezone").cloned().unwrap_or(Value::Null),
                });
                let set_name = match info.kind {
                    DeviceKind::Inverter => "EnergyAndPowerPv",
                    DeviceKind::Battery => "EnergyAndPowerBattery",
                    _ => "EnergyAndPowerInOut",
                };
                match rest {
                    [] => SimResponse::ok(&json!({
                        "plant": plant_json,
                        "details": self.device_details(&info),
                    })),
                    ["measurements", "sets"] => SimResponse::ok(&json!({
                        "plant": plant_json,
                        "device": device_head,
                        "sets": [set_name],
                    })),
                    ["measurements", "sets", set, "Recent"] if *set == set_name => {
                        let point = self.device_recent(&info, &site, now);
                        SimResponse::ok(&json!({
                            "plant": plant_json,
                            "device": device_head,
                            "setType": set_name,
                            "resolution": "FiveMinutes",
                            "set": point.map_or_else(Vec::new, |p| vec![Value::Object(p)]),
                        }))
                    }
                    _ => gateway_error(StatusCode::NOT_FOUND, "Resource not found"),
                }
            }
            _ => gateway_error(StatusCode::NOT_FOUND, "Resource not found"),
        }
    }

    /// The account's site with plant id `plant`: 404 when it is not the account's, 403 when
    /// the owner has not consented.
    fn plant_of(&self, account: &Account, plant: &str) -> Result<SiteId, SimResponse> {
        let site = account.sites.iter().find(|s| self.plant_id(s) == plant).cloned();
        match site {
            None => Err(plant_not_found()),
            Some(_) if !account.consent => Err(gateway_error(
                StatusCode::FORBIDDEN,
                "The plant owner has not granted access to this plant",
            )),
            Some(site) => Ok(site),
        }
    }

    fn device_of(
        &self,
        account: &Account,
        device: &str,
    ) -> Result<(SiteId, DeviceInfo), SimResponse> {
        for site in &account.sites {
            if let Some(info) =
                self.sma_devices(site).into_iter().find(|d| self.device_id(&d.id) == device)
            {
                if !account.consent {
                    return Err(gateway_error(
                        StatusCode::FORBIDDEN,
                        "The plant owner has not granted access to this plant",
                    ));
                }
                return Ok((site.clone(), info));
            }
        }
        Err(gateway_error(StatusCode::NOT_FOUND, "Device not found"))
    }

    /// The SMA inverters, batteries and meters of a site: inverters first, then batteries,
    /// then meters, each by id.
    fn sma_devices(&self, site: &SiteId) -> Vec<DeviceInfo> {
        self.world
            .devices_of_site(site)
            .into_iter()
            .filter(|d| {
                d.vendor == WORLD_VENDOR
                    && matches!(
                        d.kind,
                        DeviceKind::Inverter | DeviceKind::Battery | DeviceKind::Meter
                    )
            })
            .collect()
    }

    fn plant_json(&self, site: &SiteId) -> Option<Value> {
        let s = self.world.site(site)?;
        Some(json!({ "plantId": self.plant_id(site), "name": s.name, "timezone": s.timezone }))
    }

    fn device_name(&self, info: &DeviceInfo) -> String {
        let name = match info.kind {
            DeviceKind::Inverter => self.world.inverter(&info.id).map(|d| d.name),
            DeviceKind::Battery => self.world.battery(&info.id).map(|d| d.name),
            DeviceKind::Meter => self.world.meter(&info.id).map(|d| d.name),
            _ => None,
        };
        name.unwrap_or_else(|| info.id.to_string())
    }

    fn serial(&self, info: &DeviceInfo) -> String {
        format!("30{:08}", splitmix(self.seed ^ hash_str(info.id.as_str())) % 100_000_000)
    }

    fn device_json(&self, info: &DeviceInfo, lean: bool) -> Value {
        let mut d = Map::new();
        d.insert("deviceId".into(), json!(self.device_id(&info.id)));
        d.insert("name".into(), json!(self.device_name(info)));
        let (kind, product, product_id) = match info.kind {
            DeviceKind::Inverter => ("Solar Inverters", "SB5.0-1AV-41", 9319),
            DeviceKind::Battery => ("Battery Inverter", "SBS5.0-10", 9356),
            _ => ("Monitoring and control", "Sunny Home Manager 2.0", 9343),
        };
        d.insert("type".into(), json!(kind));
        if lean {
            return Value::Object(d);
        }
        let timezone = self.world.site(&info.site).map(|s| s.timezone);
        d.insert("timezone".into(), json!(timezone));
        d.insert("product".into(), json!(product));
        d.insert("productId".into(), json!(product_id));
        d.insert("serial".into(), json!(self.serial(info)));
        d.insert("vendor".into(), json!(VENDOR_NAME));
        if info.kind == DeviceKind::Inverter
            && let Some(inv) = self.world.inverter(&info.id)
        {
            d.insert("generatorPower".into(), json!(round3(inv.capacity_w)));
        }
        d.insert("isActive".into(), json!(true));
        Value::Object(d)
    }

    fn device_details(&self, info: &DeviceInfo) -> Value {
        let mut d = match self.device_json(info, false) {
            Value::Object(d) => d,
            _ => Map::new(),
        };
        d.insert("firmwareVersion".into(), json!("4.1.5.R"));
        d.insert("communicationProtocol".into(), json!("Speedwire"));
        let started = self.world.started_at();
        d.insert("startUpUtc".into(), json!(started.format("%Y-%m-%dT%H:%M:%S").to_string()));
        d.insert("isResetted".into(), json!(false));
        Value::Object(d)
    }

    // ---- measurements ------------------------------------------------------------------

    /// The current five-minute interval of the site's SMA devices, in W. `None` when no SMA
    /// device of the site is online.
    fn recent_balance(&self, site: &SiteId, now: DateTime<Utc>) -> Option<Map<String, Value>> {
        let state = self.world.site(site)?;
        let devices = self.sma_devices(site);
        let mut pv: Option<f64> = None;
        let mut battery: Option<(f64, f64, f64, f64)> = None; // charging, discharging, soc*cap, cap
        let mut grid: Option<f64> = None;
        for d in &devices {
            match d.kind {
                DeviceKind::Inverter => {
                    if let Some(inv) = self.world.inverter(&d.id).filter(|i| i.online) {
                        *pv.get_or_insert(0.0) += inv.production_w.max(0.0);
                    }
                }
                DeviceKind::Battery => {
                    if let Some(b) = self.world.battery(&d.id).filter(|b| b.online) {
                        let acc = battery.get_or_insert((0.0, 0.0, 0.0, 0.0));
                        acc.0 += b.power_w.max(0.0);
                        acc.1 += (-b.power_w).max(0.0);
                        acc.2 += b.soc_pct * b.capacity_kwh;
                        acc.3 += b.capacity_kwh;
                    }
                }
                DeviceKind::Meter => {
                    if grid.is_none()
                        && let Some(m) = self.world.meter(&d.id).filter(|m| m.online)
                    {
                        grid = Some(m.power_w);
                    }
                }
                _ => {}
            }
        }
        if pv.is_none() && battery.is_none() && grid.is_none() {
            return None;
        }
        let mut p = Map::new();
        p.insert("time".into(), json!(interval_start(&state, now)));
        if let Some(pv) = pv {
            p.insert("pvGeneration".into(), json!(round3(pv)));
        }
        if let Some(grid) = grid {
            let battery_net = battery.map_or(0.0, |b| b.0 - b.1);
            let consumption = (grid + pv.unwrap_or(0.0) - battery_net).max(0.0);
            p.insert("totalConsumption".into(), json!(round3(consumption)));
        }
        if let Some((charging, discharging, soc_cap, cap)) = battery {
            p.insert("batteryCharging".into(), json!(round3(charging)));
            p.insert("batteryDischarging".into(), json!(round3(discharging)));
            if cap > 0.0 {
                p.insert("batteryStateOfCharge".into(), json!(round3(soc_cap / cap)));
            }
        }
        if let Some(grid) = grid {
            p.insert("gridFeedIn".into(), json!(round3((-grid).max(0.0))));
            p.insert("gridConsumption".into(), json!(round3(grid.max(0.0))));
            if let Some(pv) = pv {
                p.insert("selfConsumption".into(), json!(round3((pv - (-grid).max(0.0)).max(0.0))));
            }
        }
        Some(p)
    }

    /// The site's lifetime energies in Wh, one interval for the current year. `None` when the
    /// site has no SMA device.
    fn total_balance(&self, site: &SiteId) -> Option<Map<String, Value>> {
        let state = self.world.site(site)?;
        let devices = self.sma_devices(site);
        if devices.is_empty() {
            return None;
        }
        let mut p = Map::new();
        let local = local_time(&state, state.at);
        p.insert("time".into(), json!(format!("{:04}-01-01T00:00:00", local.year())));
        let inverters: Vec<_> = devices
            .iter()
            .filter(|d| d.kind == DeviceKind::Inverter)
            .filter_map(|d| self.world.inverter(&d.id))
            .collect();
        if !inverters.is_empty() {
            let wh: f64 = inverters.iter().map(|i| i.lifetime_kwh * 1000.0).sum();
            p.insert("pvGeneration".into(), json!(round3(wh)));
        }
        let batteries: Vec<_> = devices
            .iter()
            .filter(|d| d.kind == DeviceKind::Battery)
            .filter_map(|d| self.world.battery(&d.id))
            .collect();
        if !batteries.is_empty() {
            let charged: f64 = batteries.iter().map(|b| b.charged_kwh * 1000.0).sum();
            let discharged: f64 = batteries.iter().map(|b| b.discharged_kwh * 1000.0).sum();
            p.insert("batteryCharging".into(), json!(round3(charged)));
            p.insert("batteryDischarging".into(), json!(round3(discharged)));
        }
        if devices.iter().any(|d| d.kind == DeviceKind::Meter) {
            p.insert("gridFeedIn".into(), json!(round3(state.export_kwh * 1000.0)));
            p.insert("gridConsumption".into(), json!(round3(state.import_kwh * 1000.0)));
        }
        Some(p)
    }

    /// One device's current interval, in W. `None` when it is offline.
    fn device_recent(
        &self,
        info: &DeviceInfo,
        site: &SiteId,
        now: DateTime<Utc>,
    ) -> Option<Map<String, Value>> {
        let state = self.world.site(site)?;
        let mut p = Map::new();
        p.insert("time".into(), json!(interval_start(&state, now)));
        match info.kind {
            DeviceKind::Inverter => {
                let inv = self.world.inverter(&info.id).filter(|i| i.online)?;
                p.insert("pvGeneration".into(), json!(round3(inv.production_w.max(0.0))));
            }
            DeviceKind::Battery => {
                let b = self.world.battery(&info.id).filter(|b| b.online)?;
                p.insert("batteryCharging".into(), json!(round3(b.power_w.max(0.0))));
                p.insert("batteryDischarging".into(), json!(round3((-b.power_w).max(0.0))));
                p.insert("batteryStateOfCharge".into(), json!(round3(b.soc_pct)));
            }
            _ => {
                let m = self.world.meter(&info.id).filter(|m| m.online)?;
                p.insert("gridFeedIn".into(), json!(round3((-m.power_w).max(0.0))));
                p.insert("gridConsumption".into(), json!(round3(m.power_w.max(0.0))));
            }
        }
        Some(p)
    }
}

fn plant_not_found() -> SimResponse {
    gateway_error(StatusCode::NOT_FOUND, "Plant not found")
}

fn rate_limited(secs: String) -> SimResponse {
    gateway_error(
        StatusCode::TOO_MANY_REQUESTS,
        &format!("Rate limit is exceeded. Try again in {secs} seconds."),
    )
    .with_header(header::RETRY_AFTER, secs)
}

fn hash_str(s: &str) -> u64 {
    s.bytes()
        .fold(0xCBF2_9CE4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01B3))
}

/// `t` in the site's local time: its IANA zone when known, else its fixed UTC offset.
fn local_time(site: &SiteState, t: DateTime<Utc>) -> NaiveDateTime {
    match site.timezone.parse::<Tz>() {
        Ok(tz) => tz.from_utc_datetime(&t.naive_utc()).naive_local(),
        Err(_) => t.naive_utc() + chrono::Duration::minutes(i64::from(site.utc_offset_minutes)),
    }
}

/// The start of the five-minute interval holding `now`, local to the site, as SMA writes it.
fn interval_start(site: &SiteState, now: DateTime<Utc>) -> String {
    let secs = now.timestamp();
    let start = secs - secs.rem_euclid(INTERVAL_SECS);
    let start = Utc.timestamp_opt(start, 0).single().unwrap_or(now);
    local_time(site, start).format("%Y-%m-%dT%H:%M:%S").to_string()
}
