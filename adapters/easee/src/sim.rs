//! A simulator of Easee's cloud (`https://api.easee.com`) over `oemgate_sim::World`, as an
//! axum [`Router`] meant to be mounted under [`PREFIX`] (`/easee`) of an
//! `oemgate_sim::SimHost`.
//!
//! ```no_run
//! # async fn demo(world: oemgate_sim::World) -> anyhow::Result<()> {
//! use oemgate_easee::sim::{EaseeSim, PREFIX};
//! let sim = EaseeSim::new(world.clone());
//! let mut host = oemgate_sim::SimHost::new(world.clock());
//! host.mount(PREFIX, sim.router())?;
//! // A household links its Easee account: the sim hands out the login the user would type.
//! let login = sim.create_account(&world.sites());
//! // ... EaseeAdapter::login(&login.user_name, &login.password)
//! # Ok(()) }
//! ```
//!
//! # What it serves (paths below the mount prefix)
//!
//! - `POST /api/accounts/login {"userName","password"}` and
//!   `POST /api/accounts/refresh_token {"accessToken","refreshToken"}`, both answering
//!   `{"accessToken","expiresIn","accessClaims":["User"],"tokenType":"Bearer","refreshToken"}`.
//!   Access tokens live [`ACCESS_TOKEN_LIFETIME`] (an hour, as Easee documents). A refresh
//!   needs the access token its refresh token was issued with, issues a new pair and spends
//!   the old refresh token (single use; **unconfirmed** at Easee). A wrong login is 400
//!   `InvalidUserPassword`, a refused refresh 400 `InvalidRefreshToken`.
//! - `GET /api/accounts/products`: the user's sites, each with one circuit holding its Easee
//!   chargers; `GET /api/chargers`: the user's chargers.
//! - `GET /api/chargers/{serial}/state` and `/config`.
//! - `POST /api/chargers/{serial}/commands/{start_charging|stop_charging|pause_charging|
//!   resume_charging|toggle_charging|set_dynamic_charger_current}` and
//!   `POST /api/chargers/{serial}/settings {"dynamicChargerCurrent":..}`, answered `202
//!   Accepted` with `{"device","commandId","ticks"}` (a list for settings). The effect lands
//!   after the world's command latency for `easee`.
//!
//! Every API call needs a bearer token: none, an unknown, expired or revoked token are all 401
//! with an empty body and ASP.NET's `WWW-Authenticate: Bearer error="invalid_token"` (with
//! `error_description="The token expired at '...'"` for an expired one). A charger that exists
//! but is not the user's is 403, an unknown serial 404.
//!
//! # The world as Easee sees it
//!
//! An Easee *site* is a world site given to an account ([`EaseeSim::create_account`]); its
//! chargers are the site's chargers of vendor [`WORLD_VENDOR`] (`easee`), on one circuit.
//! Serials (`EH` + 6 characters) and site ids are derived from the world's ids and the seed,
//! so they are stable for a seed ([`EaseeSim::serial_of`], [`EaseeSim::site_id`]).
//!
//! `chargerOpMode`: offline 0 (`isOnline` false, the last pulse kept), no car 1, a connected
//! car not charging 2 (awaiting start), charging 3, the car at its limit 4, a car that takes
//! no power 6 with `reasonForNoCurrent` 79. `totalPower` is the car's charging power in kW,
//! `dynamicChargerCurrent` the world charger's current limit, `maxChargerCurrent` (config) its
//! hardware maximum.
//!
//! Vendor-side state the world does not have: the *pause*. `pause_charging` (and a dynamic
//! current of 0) stops charging in the world and makes the state read a dynamic current of 0
//! until `resume_charging`, `start_charging` or a dynamic current of 6 A or more (which resume
//! charging). The dynamic current's time to live (`minutes`) is accepted but not modelled, and
//! `resume_charging` does not raise the limit to the maximum as the real cloud seems to.
//!
//! Refusals: commands need the charger online (400 `ChargerOffline`) and, except
//! `set_dynamic_charger_current`, a car (400 `NoCarConnected`); a start is refused for a car at
//! its limit (400 `CarFullyCharged`) or one that takes no power (400 `NoPowerToCar`); a
//! current out of range is a 400 validation problem. A command that would change nothing
//! (start while charging) is accepted: the charger ignores it.
//!
//! # Limits
//!
//! Easee publishes none; the simulator enforces what pyeasee keeps to, per user: 500 requests
//! per rolling 300 s on the API and 10 per rolling hour on site endpoints
//! (`/api/accounts/products`). Beyond, 429 with `Retry-After` (seconds until the window
//! admits the request) and Easee's error body. Login and refresh are not counted.
//!
//! # Faults
//!
//! `world.faults().active("easee")`, rendered in Easee's style: `RateLimit` as its 429 with
//! `Retry-After`; `ServerError` 500 as a ProblemDetails JSON, 502/503/504 as the gateway's
//! HTML page; `Outage` as a 503 HTML page; `Hang` waits, then answers; `Timeout` holds the
//! request for `TIMEOUT_HANG`, then 504; `Malformed` is a 200 HTML maintenance page;
//! `Truncated` the right body cut in half; `RevokeTokens` revokes every access and refresh
//! token on the next request (401 on calls, 400 on refresh).

use oemgate_sim::http::truncate;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, SecondsFormat, Timelike, Utc};
use oemgate_core::Clock;
use oemgate_sim::rng::{hash, hash_str};
use oemgate_sim::{
    ChangeKind, ChargeState, ChargerState as WorldCharger, ChargerStatus, CommandRejected,
    DeviceId, DeviceKind, Fault, SiteId, TIMEOUT_HANG, World, WorldCommand,
};
use serde_json::{Value, json};

/// Where the simulator expects to be mounted.
pub const PREFIX: &str = "/easee";
/// The vendor name of Easee devices in the world, of its command latency and of its faults.
pub const WORLD_VENDOR: &str = "easee";
/// How long an access token works (Easee: an hour).
pub const ACCESS_TOKEN_LIFETIME: Duration = Duration::from_secs(3600);
/// How long a refresh token works (not documented; a month here).
pub const REFRESH_TOKEN_LIFETIME: Duration = Duration::from_secs(30 * 86_400);
/// API requests per user per [`RATE_WINDOW`].
pub const RATE_LIMIT: usize = 500;
/// The window of [`RATE_LIMIT`].
pub const RATE_WINDOW: Duration = Duration::from_secs(300);
/// Site-endpoint requests per user per [`SITE_RATE_WINDOW`].
pub const SITE_RATE_LIMIT: usize = 10;
/// The window of [`SITE_RATE_LIMIT`].
pub const SITE_RATE_WINDOW: Duration = Duration::from_secs(3600);
/// The rated current of the simulated circuits, A.
const CIRCUIT_RATED_A: f64 = 40.0;
/// Seconds between 0001-01-01 and 1970-01-01 (for .NET ticks).
const DOTNET_EPOCH_OFFSET_SECS: i64 = 62_135_596_800;

/// How the simulator behaves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EaseeSimConfig {
    /// Access-token lifetime (`expiresIn`).
    pub access_token_lifetime: Duration,
    /// Refresh-token lifetime.
    pub refresh_token_lifetime: Duration,
    /// API requests per user per `rate_window`.
    pub rate_limit: usize,
    /// The rolling window of `rate_limit`.
    pub rate_window: Duration,
    /// Site-endpoint requests per user per `site_rate_window`.
    pub site_rate_limit: usize,
    /// The rolling window of `site_rate_limit`.
    pub site_rate_window: Duration,
}

impl Default for EaseeSimConfig {
    fn default() -> Self {
        Self {
            access_token_lifetime: ACCESS_TOKEN_LIFETIME,
            refresh_token_lifetime: REFRESH_TOKEN_LIFETIME,
            rate_limit: RATE_LIMIT,
            rate_window: RATE_WINDOW,
            site_rate_limit: SITE_RATE_LIMIT,
            site_rate_window: SITE_RATE_WINDOW,
        }
    }
}

/// What a user types to link an Easee account: the login of the Easee app.
#[derive(Clone, PartialEq, Eq)]
pub struct EaseeLogin {
    /// The user name (an e-mail address).
    pub user_name: String,
    /// The password.
    pub password: String,
}

impl fmt::Debug for EaseeLogin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EaseeLogin")
            .field("user_name", &self.user_name)
            .field("password", &"<redacted>")
            .finish()
    }
}

#[derive(Debug)]
struct Account {
    password: String,
    sites: Vec<SiteId>,
    calls: VecDeque<DateTime<Utc>>,
    site_calls: VecDeque<DateTime<Utc>>,
}

#[derive(Debug)]
struct AccessToken {
    user: String,
    expires_at: DateTime<Utc>,
    revoked: bool,
}

#[derive(Debug)]
struct RefreshToken {
    user: String,
    access: String,
    expires_at: DateTime<Utc>,
    revoked: bool,
    spent: bool,
}

/// What Easee's cloud knows about a charger beyond the world.
#[derive(Debug, Default)]
struct ChargerCloud {
    paused: bool,
}

#[derive(Debug)]
struct SimState {
    config: EaseeSimConfig,
    accounts: BTreeMap<String, Account>,
    access: HashMap<String, AccessToken>,
    refresh: HashMap<String, RefreshToken>,
    serials: BTreeMap<String, DeviceId>,
    by_device: HashMap<DeviceId, String>,
    site_ids: BTreeMap<i64, SiteId>,
    by_site: HashMap<SiteId, i64>,
    chargers: HashMap<DeviceId, ChargerCloud>,
    serial: u64,
    next_user: u64,
}

/// The simulated Easee cloud. Cheap to clone; clones share everything.
#[derive(Clone)]
pub struct EaseeSim {
    world: World,
    clock: Arc<dyn Clock>,
    state: Arc<Mutex<SimState>>,
}

impl fmt::Debug for EaseeSim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.lock();
        f.debug_struct("EaseeSim")
            .field("accounts", &s.accounts.len())
            .field("chargers", &s.serials.len())
            .finish_non_exhaustive()
    }
}

// ---- responses -------------------------------------------------------------------------

fn json_response(status: StatusCode, body: &Value) -> Response {
    let mut response = (status, body.to_string()).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json; charset=utf-8"));
    response
}

/// Easee's error: ProblemDetails with `errorCode` and `errorCodeName`.
fn easee_error(status: StatusCode, code: i64, name: &str, title: &str) -> Response {
    let body = json!({
        "errorCode": code,
        "errorCodeName": name,
        "type": null,
        "title": title,
        "status": status.as_u16(),
        "detail": "[Empty in production]",
        "instance": null,
        "extensions": {},
    });
    json_response(status, &body)
}

/// ASP.NET's validation problem.
fn validation_error(field: &str, message: &str) -> Response {
    let body = json!({
        "type": "https://tools.ietf.org/html/rfc7231#section-6.5.1",
        "title": "One or more validation errors occurred.",
        "status": 400,
        "errors": { field: [message] },
    });
    json_response(StatusCode::BAD_REQUEST, &body)
}

fn empty(status: StatusCode) -> Response {
    status.into_response()
}

fn unauthorized(description: Option<&str>) -> Response {
    let value = match description {
        Some(d) => format!("Bearer error=\"invalid_token\", error_description=\"{d}\""),
        None => "Bearer error=\"invalid_token\"".to_owned(),
    };
    let mut response = empty(StatusCode::UNAUTHORIZED);
    if let Ok(v) = HeaderValue::from_str(&value) {
        response.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    response
}

fn too_many_requests(retry_after: Duration) -> Response {
    let secs = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
    let mut response =
        easee_error(StatusCode::TOO_MANY_REQUESTS, 429, "TooManyRequests", "Too many requests");
    if let Ok(v) = HeaderValue::from_str(&secs.max(1).to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, v);
    }
    response
}

fn html(status: StatusCode, title: &str) -> Response {
    let page = format!(
        "<!DOCTYPE html>\r\n<html><head><title>{title}</title></head>\r\n<body><h1>{title}</h1>\
         </body></html>\r\n"
    );
    let mut response = (status, page).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html"));
    response
}

fn server_error(status: u16) -> Response {
    let status = StatusCode::from_u16(status)
        .ok()
        .filter(|s| s.is_server_error())
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    match status.as_u16() {
        502 => html(status, "502 Bad Gateway"),
        503 => html(status, "503 Service Unavailable"),
        504 => html(status, "504 Gateway Timeout"),
        code => easee_error(
            status,
            i64::from(code),
            "InternalServerError",
            status.canonical_reason().unwrap_or("Server Error"),
        ),
    }
}

fn plus(t: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(d)
        .ok()
        .and_then(|d| t.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// `2020-07-18T20:01:16Z` (whole seconds, as Easee's `latestPulse`).
fn pulse_time(t: DateTime<Utc>) -> String {
    t.with_nanosecond(0).unwrap_or(t).to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// `2020-03-06T08:52:52.512105` (no offset, as Easee's `createdOn`).
fn naive_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6f").to_string()
}

/// .NET ticks (100 ns since 0001-01-01) of `t`.
fn ticks(t: DateTime<Utc>) -> i64 {
    (t.timestamp() + DOTNET_EPOCH_OFFSET_SECS)
        .saturating_mul(10_000_000)
        .saturating_add(i64::from(t.timestamp_subsec_nanos() / 100))
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer ")).map(str::trim)
}

/// A JSON field by its camelCase name or ASP.NET's case-insensitive match.
fn field<'a>(body: &'a Value, name: &str) -> Option<&'a Value> {
    let map = body.as_object()?;
    map.get(name).or_else(|| map.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v))
}

fn string_field<'a>(body: &'a Value, name: &str) -> Option<&'a str> {
    field(body, name).and_then(Value::as_str)
}

/// Admits one request into a rolling window, or says how long to wait.
fn admit(
    calls: &mut VecDeque<DateTime<Utc>>,
    limit: usize,
    window: Duration,
    now: DateTime<Utc>,
) -> Result<(), Duration> {
    let window_c = chrono::Duration::from_std(window).unwrap_or(chrono::Duration::MAX);
    while calls.front().is_some_and(|t| *t + window_c <= now) {
        calls.pop_front();
    }
    if calls.len() >= limit.max(1) {
        let oldest = calls.front().copied().unwrap_or(now);
        let wait = (oldest + window_c - now).to_std().unwrap_or(Duration::ZERO);
        return Err(wait);
    }
    calls.push_back(now);
    Ok(())
}

/// The command ids Easee answers with (48 SetDynamicChargerCurrent and 25 start are from
/// community logs; the others are the simulator's).
fn command_id(command: &str) -> i64 {
    match command {
        "start_charging" => 25,
        "stop_charging" => 26,
        "toggle_charging" => 27,
        _ => 48,
    }
}

async fn handle(
    State(sim): State<EaseeSim>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    sim.apply_revocation();
    let fault = sim.world.faults().active(WORLD_VENDOR);
    match &fault {
        Some(Fault::RateLimit { retry_after }) => return too_many_requests(*retry_after),
        Some(Fault::ServerError { status }) => return server_error(*status),
        Some(Fault::Outage) => {
            return html(StatusCode::SERVICE_UNAVAILABLE, "503 Service Unavailable");
        }
        Some(Fault::Hang { .. }) => {
            if let Some(wait) = fault.as_ref().and_then(|f| f.hang_real(sim.clock.as_ref())) {
                tokio::time::sleep(wait).await;
            }
        }
        Some(Fault::Timeout) => {
            tokio::time::sleep(TIMEOUT_HANG).await;
            return html(StatusCode::GATEWAY_TIMEOUT, "504 Gateway Timeout");
        }
        Some(Fault::Malformed) => {
            return html(StatusCode::OK, "Easee Cloud is down for maintenance");
        }
        Some(Fault::Truncated | Fault::RevokeTokens) | None => {}
    }
    let response = sim.route(&method, &uri, &headers, &body);
    if matches!(fault, Some(Fault::Truncated)) { truncate(response).await } else { response }
}

impl EaseeSim {
    /// A simulator over `world` with the default configuration.
    pub fn new(world: World) -> Self {
        Self::with_config(world, EaseeSimConfig::default())
    }

    /// A simulator over `world` with `config`.
    pub fn with_config(world: World, config: EaseeSimConfig) -> Self {
        let clock = world.clock();
        let state = SimState {
            config,
            accounts: BTreeMap::new(),
            access: HashMap::new(),
            refresh: HashMap::new(),
            serials: BTreeMap::new(),
            by_device: HashMap::new(),
            site_ids: BTreeMap::new(),
            by_site: HashMap::new(),
            chargers: HashMap::new(),
            serial: 0,
            next_user: 0,
        };
        Self { world, clock, state: Arc::new(Mutex::new(state)) }
    }

    fn lock(&self) -> MutexGuard<'_, SimState> {
        // Every mutation is a few field writes; a poisoned state is still consistent enough
        // for a simulator.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The router, to mount under [`PREFIX`]. Clones share the simulator's state.
    pub fn router(&self) -> Router {
        Router::new().fallback(handle).with_state(self.clone())
    }

    /// The world.
    pub fn world(&self) -> &World {
        &self.world
    }

    /// Creates an Easee account owning `sites` and returns its login.
    pub fn create_account(&self, sites: &[SiteId]) -> EaseeLogin {
        let seed = self.world.seed();
        let mut s = self.lock();
        s.next_user += 1;
        let user_name = format!("easee-user-{}@example.invalid", s.next_user);
        let password = Self::new_secret(&mut s, seed, 3).chars().take(20).collect::<String>();
        for site in sites {
            Self::site_of(&mut s, site);
        }
        let account = Account {
            password: password.clone(),
            sites: sites.to_vec(),
            calls: VecDeque::new(),
            site_calls: VecDeque::new(),
        };
        s.accounts.insert(user_name.clone(), account);
        EaseeLogin { user_name, password }
    }

    /// The serial a world charger is exposed as (assigned on first use, stable for a seed);
    /// `None` if the device is not an Easee charger.
    pub fn serial_of(&self, device: &DeviceId) -> Option<String> {
        let info = self.world.device_info(device)?;
        if info.kind != DeviceKind::Charger || info.vendor != WORLD_VENDOR {
            return None;
        }
        let seed = self.world.seed();
        let mut s = self.lock();
        Some(Self::serial_for(&mut s, seed, device))
    }

    /// The Easee site id a world site is exposed as (stable for a seed).
    pub fn site_id(&self, site: &SiteId) -> i64 {
        let mut s = self.lock();
        Self::site_of(&mut s, site)
    }

    /// Makes every access token expired now (their refresh tokens still work).
    pub fn expire_access_tokens(&self) {
        let now = self.clock.now();
        for token in self.lock().access.values_mut() {
            token.expires_at = token.expires_at.min(now);
        }
    }

    /// Revokes every token of a user (they changed their password, or logged out everywhere).
    pub fn revoke_account(&self, user_name: &str) {
        let mut guard = self.lock();
        let s = &mut *guard;
        s.access.values_mut().filter(|t| t.user == user_name).for_each(|t| t.revoked = true);
        s.refresh.values_mut().filter(|t| t.user == user_name).for_each(|t| t.revoked = true);
    }

    /// Revokes every token of every user.
    pub fn revoke_all_tokens(&self) {
        let mut guard = self.lock();
        let s = &mut *guard;
        s.access.values_mut().for_each(|t| t.revoked = true);
        s.refresh.values_mut().for_each(|t| t.revoked = true);
    }

    /// Whether a charger is paused at Easee (`pause_charging`, or a dynamic current of 0).
    pub fn is_paused(&self, device: &DeviceId) -> bool {
        self.lock().chargers.get(device).is_some_and(|c| c.paused)
    }

    fn apply_revocation(&self) {
        if self.world.faults().take_revocation(WORLD_VENDOR) {
            self.revoke_all_tokens();
        }
    }

    fn new_secret(s: &mut SimState, seed: u64, kind: u64) -> String {
        s.serial += 1;
        let a = hash(&[seed, kind, s.serial]);
        let b = hash(&[a, s.serial, 0x00EA_5EE0]);
        format!("{a:016x}{b:016x}")
    }

    fn serial_for(s: &mut SimState, seed: u64, device: &DeviceId) -> String {
        if let Some(serial) = s.by_device.get(device) {
            return serial.clone();
        }
        const ALPHABET: &[u8] = b"0123456789ABCDEFGHJKLMNPRSTUVWXYZ";
        let mut salt = 0u64;
        let serial = loop {
            let mut h = hash(&[seed, hash_str(device.as_str()), 0x00EA_5EE1, salt]);
            let mut serial = String::from("EH");
            for _ in 0..6 {
                let len = ALPHABET.len() as u64;
                let i = usize::try_from(h % len).unwrap_or(0);
                serial.push(char::from(ALPHABET[i]));
                h /= len;
            }
            if !s.serials.contains_key(&serial) {
                break serial;
            }
            salt += 1;
        };
        s.serials.insert(serial.clone(), device.clone());
        s.by_device.insert(device.clone(), serial.clone());
        serial
    }

    fn site_of(s: &mut SimState, site: &SiteId) -> i64 {
        if let Some(id) = s.by_site.get(site) {
            return *id;
        }
        let digits: String = site.as_str().chars().filter(char::is_ascii_digit).collect();
        let mut id = match digits.parse::<i64>() {
            Ok(n) if n < 1_000_000 => 100_000 + n,
            _ => 2_000_000 + i64::try_from(hash_str(site.as_str()) % 900_000_000).unwrap_or(0),
        };
        while s.site_ids.contains_key(&id) {
            id += 1;
        }
        s.site_ids.insert(id, site.clone());
        s.by_site.insert(site.clone(), id);
        id
    }

    /// The Easee chargers of a world site, in id order.
    fn chargers_of_site(&self, site: &SiteId) -> Vec<DeviceId> {
        self.world
            .devices_of_site(site)
            .into_iter()
            .filter(|d| d.kind == DeviceKind::Charger && d.vendor == WORLD_VENDOR)
            .map(|d| d.id)
            .collect()
    }

    // ---- routing -------------------------------------------------------------------------

    fn route(&self, method: &Method, uri: &Uri, headers: &HeaderMap, body: &[u8]) -> Response {
        let now = self.clock.now();
        let segments: Vec<&str> = uri.path().split('/').filter(|s| !s.is_empty()).collect();
        let post = method == Method::POST;
        match segments.as_slice() {
            ["api", "accounts", "login"] if post => self.login(body, now),
            ["api", "accounts", "refresh_token"] if post => self.refresh(body, now),
            ["api", "accounts", "login" | "refresh_token"] => empty(StatusCode::METHOD_NOT_ALLOWED),
            ["api", rest @ ..] => self.api(method, rest, headers, body, now),
            _ => empty(StatusCode::NOT_FOUND),
        }
    }

    // ---- accounts --------------------------------------------------------------------------

    fn issue_tokens(&self, s: &mut SimState, user: &str, now: DateTime<Utc>) -> Response {
        let seed = self.world.seed();
        let access = Self::new_secret(s, seed, 10);
        let refresh = Self::new_secret(s, seed, 11);
        let (access_life, refresh_life) =
            (s.config.access_token_lifetime, s.config.refresh_token_lifetime);
        s.access.insert(
            access.clone(),
            AccessToken {
                user: user.to_owned(),
                expires_at: plus(now, access_life),
                revoked: false,
            },
        );
        s.refresh.insert(
            refresh.clone(),
            RefreshToken {
                user: user.to_owned(),
                access: access.clone(),
                expires_at: plus(now, refresh_life),
                revoked: false,
                spent: false,
            },
        );
        json_response(
            StatusCode::OK,
            &json!({
                "accessToken": access,
                "expiresIn": access_life.as_secs(),
                "accessClaims": ["User"],
                "tokenType": "Bearer",
                "refreshToken": refresh,
            }),
        )
    }

    fn login(&self, body: &[u8], now: DateTime<Utc>) -> Response {
        let Ok(body) = serde_json::from_slice::<Value>(body) else {
            return validation_error("$", "The JSON value could not be converted.");
        };
        let (Some(user), Some(password)) =
            (string_field(&body, "userName"), string_field(&body, "password"))
        else {
            return validation_error("UserName", "The UserName field is required.");
        };
        let mut s = self.lock();
        let user = s
            .accounts
            .iter()
            .find(|(name, a)| name.eq_ignore_ascii_case(user.trim()) && a.password == password)
            .map(|(name, _)| name.clone());
        match user {
            Some(user) => self.issue_tokens(&mut s, &user, now),
            None => easee_error(
                StatusCode::BAD_REQUEST,
                100,
                "InvalidUserPassword",
                "Invalid user name or password",
            ),
        }
    }

    fn refresh(&self, body: &[u8], now: DateTime<Utc>) -> Response {
        let Ok(body) = serde_json::from_slice::<Value>(body) else {
            return validation_error("$", "The JSON value could not be converted.");
        };
        let (Some(access), Some(refresh)) =
            (string_field(&body, "accessToken"), string_field(&body, "refreshToken"))
        else {
            return validation_error("RefreshToken", "The RefreshToken field is required.");
        };
        let refused = || {
            easee_error(
                StatusCode::BAD_REQUEST,
                101,
                "InvalidRefreshToken",
                "The refresh token is not valid",
            )
        };
        let mut s = self.lock();
        let user = match s.refresh.get_mut(refresh) {
            Some(t) if !t.revoked && !t.spent && t.access == access && now < t.expires_at => {
                t.spent = true;
                t.user.clone()
            }
            _ => return refused(),
        };
        if !s.accounts.contains_key(&user) {
            return refused();
        }
        self.issue_tokens(&mut s, &user, now)
    }

    // ---- API -------------------------------------------------------------------------------

    fn api(
        &self,
        method: &Method,
        path: &[&str],
        headers: &HeaderMap,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Response {
        let user = {
            let s = self.lock();
            let Some(token) = bearer(headers) else { return unauthorized(None) };
            match s.access.get(token) {
                None => return unauthorized(None),
                Some(t) if t.revoked => return unauthorized(None),
                Some(t) if now >= t.expires_at => {
                    let at = t.expires_at.format("%m/%d/%Y %H:%M:%S").to_string();
                    return unauthorized(Some(&format!("The token expired at '{at}'")));
                }
                Some(t) => t.user.clone(),
            }
        };
        let site_endpoint = matches!(path, ["accounts", "products"] | ["sites", ..]);
        {
            let mut guard = self.lock();
            let s = &mut *guard;
            let config = s.config.clone();
            let Some(account) = s.accounts.get_mut(&user) else { return unauthorized(None) };
            if let Err(wait) = admit(&mut account.calls, config.rate_limit, config.rate_window, now)
            {
                return too_many_requests(wait);
            }
            if site_endpoint
                && let Err(wait) = admit(
                    &mut account.site_calls,
                    config.site_rate_limit,
                    config.site_rate_window,
                    now,
                )
            {
                return too_many_requests(wait);
            }
        }
        let get = method == Method::GET;
        let post = method == Method::POST;
        match path {
            ["accounts", "products"] if get => self.products(&user, now),
            ["chargers"] if get => self.chargers_list(&user, now),
            ["chargers", serial, "state"] if get => {
                self.with_charger(&user, serial, |sim, id| sim.state(id, now))
            }
            ["chargers", serial, "config"] if get => {
                self.with_charger(&user, serial, |sim, id| sim.config(id))
            }
            ["chargers", serial, "commands", command] if post => {
                self.with_charger(&user, serial, |sim, id| {
                    sim.command(id, serial, command, body, now)
                })
            }
            ["chargers", serial, "settings"] if post => {
                self.with_charger(&user, serial, |sim, id| sim.settings(id, serial, body, now))
            }
            ["accounts", "products"]
            | ["chargers"]
            | ["chargers", _, "state" | "config" | "settings"]
            | ["chargers", _, "commands", _] => empty(StatusCode::METHOD_NOT_ALLOWED),
            _ => empty(StatusCode::NOT_FOUND),
        }
    }

    /// The user's sites with Easee chargers, and those chargers.
    fn account_chargers(&self, user: &str) -> Vec<(SiteId, Vec<DeviceId>)> {
        let sites = self.lock().accounts.get(user).map(|a| a.sites.clone()).unwrap_or_default();
        sites
            .into_iter()
            .map(|site| {
                let chargers = self.chargers_of_site(&site);
                (site, chargers)
            })
            .filter(|(_, chargers)| !chargers.is_empty())
            .collect()
    }

    fn charger_entry(&self, s: &mut SimState, id: &DeviceId, name: &str) -> Value {
        let seed = self.world.seed();
        let serial = Self::serial_for(s, seed, id);
        let created = naive_time(self.world.started_at());
        json!({
            "id": serial,
            "name": name,
            "color": 1,
            "createdOn": created,
            "updatedOn": created,
            "backPlate": {
                "id": format!("{:014X}", hash(&[seed, hash_str(id.as_str()), 0xBAC0]) >> 8),
                "masterBackPlateId": format!("{:014X}", hash(&[seed, hash_str(id.as_str()), 0xBAC0]) >> 8),
            },
            "levelOfAccess": 1,
            "productCode": 1,
            "userRole": 1,
        })
    }

    fn products(&self, user: &str, now: DateTime<Utc>) -> Response {
        let sites = self.account_chargers(user);
        let mut out = Vec::new();
        for (site, chargers) in sites {
            let name = self.world.site(&site).map_or_else(|| "Home".to_owned(), |st| st.name);
            let mut entries = Vec::new();
            for id in &chargers {
                let charger_name = self.world.charger(id).map_or_else(String::new, |c| c.name);
                let mut s = self.lock();
                entries.push(self.charger_entry(&mut s, id, &charger_name));
            }
            let site_id = self.site_id(&site);
            let created = naive_time(self.world.started_at());
            out.push(json!({
                "id": site_id,
                "siteKey": format!("{:04X}-{:04X}", site_id % 0xFFFF, (site_id / 7) % 0xFFFF),
                "name": name,
                "levelOfAccess": 1,
                "createdOn": created,
                "updatedOn": naive_time(now),
                "ratedCurrent": CIRCUIT_RATED_A,
                "circuits": [{
                    "id": site_id * 10 + 1,
                    "siteId": site_id,
                    "circuitPanelId": 1,
                    "panelName": "1",
                    "ratedCurrent": CIRCUIT_RATED_A,
                    "chargers": entries,
                    "masterBackplate": null,
                    "useDynamicMaster": false,
                    "parentCircuitId": null,
                }],
                "equalizers": [],
            }));
        }
        json_response(StatusCode::OK, &Value::Array(out))
    }

    fn chargers_list(&self, user: &str, _now: DateTime<Utc>) -> Response {
        let mut out = Vec::new();
        for (_, chargers) in self.account_chargers(user) {
            for id in &chargers {
                let name = self.world.charger(id).map_or_else(String::new, |c| c.name);
                let mut s = self.lock();
                out.push(self.charger_entry(&mut s, id, &name));
            }
        }
        json_response(StatusCode::OK, &Value::Array(out))
    }

    /// Runs `f` on the user's charger `serial`: 404 for an unknown serial, 403 for another
    /// user's charger.
    fn with_charger(
        &self,
        user: &str,
        serial: &str,
        f: impl FnOnce(&Self, &DeviceId) -> Response,
    ) -> Response {
        let Some(id) = self.resolve_serial(serial) else {
            return easee_error(StatusCode::NOT_FOUND, 404, "ChargerNotFound", "Charger not found");
        };
        let mine = self.account_chargers(user).iter().any(|(_, chargers)| chargers.contains(&id));
        if !mine {
            return easee_error(StatusCode::FORBIDDEN, 403, "Forbidden", "Access denied");
        }
        f(self, &id)
    }

    /// The world charger behind a serial. Serials are derived from the seed and the world's
    /// ids, so a serial stored before a restart of the simulator resolves before any listing.
    fn resolve_serial(&self, serial: &str) -> Option<DeviceId> {
        if let Some(id) = self.lock().serials.get(serial) {
            return Some(id.clone());
        }
        let seed = self.world.seed();
        let chargers: Vec<DeviceId> = self
            .world
            .devices_of_vendor(WORLD_VENDOR)
            .into_iter()
            .filter(|d| d.kind == DeviceKind::Charger)
            .map(|d| d.id)
            .collect();
        let mut s = self.lock();
        for id in &chargers {
            Self::serial_for(&mut s, seed, id);
        }
        s.serials.get(serial).cloned()
    }

    /// When an offline charger last reported (the world's `WentOffline`, else the start).
    fn last_pulse(&self, id: &DeviceId) -> DateTime<Utc> {
        let start = self.world.started_at();
        self.world
            .device_changes_since(id, start)
            .iter()
            .rev()
            .find(|c| c.kind == ChangeKind::WentOffline)
            .map_or(start, |c| c.at)
    }

    /// The charger's vehicle takes no power.
    fn no_power(&self, c: &WorldCharger) -> bool {
        c.vehicle
            .as_ref()
            .and_then(|v| self.world.vehicle(v))
            .is_some_and(|v| v.charge_state == ChargeState::NoPower)
    }

    fn state(&self, id: &DeviceId, now: DateTime<Utc>) -> Response {
        let Some(c) = self.world.charger(id) else {
            return easee_error(StatusCode::NOT_FOUND, 404, "ChargerNotFound", "Charger not found");
        };
        let no_power = self.no_power(&c);
        let paused = {
            let mut s = self.lock();
            let cloud = s.chargers.entry(id.clone()).or_default();
            if c.charging || !c.plugged_in {
                // Charging again (the car or the app restarted it): no longer paused. An unplug
                // ends the session it paused.
                cloud.paused = false;
            }
            cloud.paused
        };
        let (mode, reason) = if !c.online {
            (0, None)
        } else {
            match c.status {
                ChargerStatus::Available => (1, Some(50)),
                ChargerStatus::Charging => (3, Some(0)),
                ChargerStatus::Complete => (4, Some(79)),
                ChargerStatus::Plugged if no_power => (6, Some(79)),
                ChargerStatus::Plugged if paused => (2, Some(52)),
                ChargerStatus::Plugged => (2, Some(54)),
            }
        };
        let charging = c.online && c.charging;
        let phases = f64::from(c.phases.max(1));
        let output_current = if charging { c.power_w / (c.voltage.max(1.0) * phases) } else { 0.0 };
        let pulse = if c.online { now } else { self.last_pulse(id) };
        let body = json!({
            "smartCharging": false,
            "cableLocked": c.plugged_in,
            "chargerOpMode": mode,
            "totalPower": if charging { c.power_w / 1000.0 } else { 0.0 },
            "sessionEnergy": c.session_kwh,
            "energyPerHour": if charging { c.power_w / 1000.0 } else { 0.0 },
            "wiFiRSSI": -61,
            "cellRSSI": -73,
            "localRSSI": null,
            "outputPhase": if charging { if c.phases >= 3 { 30 } else { 10 } } else { 0 },
            "dynamicCircuitCurrentP1": CIRCUIT_RATED_A,
            "dynamicCircuitCurrentP2": CIRCUIT_RATED_A,
            "dynamicCircuitCurrentP3": CIRCUIT_RATED_A,
            "latestPulse": pulse_time(pulse),
            "chargerFirmware": 313,
            "latestFirmware": 313,
            "voltage": c.voltage,
            "chargerRAT": 1,
            "lockCablePermanently": false,
            "outputCurrent": output_current,
            "isOnline": c.online,
            "ledMode": if charging { 18 } else { 17 },
            "cableRating": 32000.0,
            "dynamicChargerCurrent": if paused { 0.0 } else { c.max_current_a },
            "reasonForNoCurrent": reason,
            "wiFiAPEnabled": false,
            "lifetimeEnergy": c.lifetime_kwh,
        });
        json_response(StatusCode::OK, &body)
    }

    fn config(&self, id: &DeviceId) -> Response {
        let Some(c) = self.world.charger(id) else {
            return easee_error(StatusCode::NOT_FOUND, 404, "ChargerNotFound", "Charger not found");
        };
        let body = json!({
            "isEnabled": true,
            "lockCablePermanently": false,
            "authorizationRequired": false,
            "remoteStartRequired": false,
            "smartButtonEnabled": false,
            "wiFiSSID": null,
            "detectedPowerGridType": 1,
            "offlineChargingMode": 0,
            "circuitMaxCurrentP1": CIRCUIT_RATED_A,
            "circuitMaxCurrentP2": CIRCUIT_RATED_A,
            "circuitMaxCurrentP3": CIRCUIT_RATED_A,
            "enableIdleCurrent": false,
            "limitToSinglePhaseCharging": c.phases < 3,
            "phaseMode": 2,
            "localNodeType": 1,
            "localAuthorizationRequired": false,
            "localRadioChannel": 6,
            "localShortAddress": 0,
            "localParentAddrOrNumOfNodes": 0,
            "localPreAuthorizeEnabled": true,
            "localAuthorizeOfflineEnabled": true,
            "allowOfflineTxForUnknownId": true,
            "maxChargerCurrent": c.hardware_max_a,
            "ledStripBrightness": null,
        });
        json_response(StatusCode::OK, &body)
    }

    /// The answer to an accepted command.
    fn accepted(&self, serial: &str, command: &str, now: DateTime<Utc>, list: bool) -> Response {
        let one =
            json!({ "device": serial, "commandId": command_id(command), "ticks": ticks(now) });
        let body = if list { Value::Array(vec![one]) } else { one };
        json_response(StatusCode::ACCEPTED, &body)
    }

    /// Sends a world command; `Err` is the refusal in Easee's style. A command that changes
    /// nothing is accepted (the charger ignores it).
    fn send(&self, id: &DeviceId, command: WorldCommand) -> Result<(), Refusal> {
        match self.world.command(WORLD_VENDOR, id, command) {
            Ok(_) | Err(CommandRejected::AlreadySet) => Ok(()),
            Err(e) => Err(Box::new(refusal(&e))),
        }
    }

    fn command(
        &self,
        id: &DeviceId,
        serial: &str,
        command: &str,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Response {
        let Some(c) = self.world.charger(id) else {
            return easee_error(StatusCode::NOT_FOUND, 404, "ChargerNotFound", "Charger not found");
        };
        if command == "set_dynamic_charger_current" {
            let body = serde_json::from_slice::<Value>(body).unwrap_or(Value::Null);
            let Some(amps) = field(&body, "amps").and_then(Value::as_f64) else {
                return validation_error("amps", "The amps field is required.");
            };
            return match self.set_dynamic_current(id, &c, amps) {
                Ok(()) => self.accepted(serial, command, now, false),
                Err(refused) => *refused,
            };
        }
        if !matches!(
            command,
            "start_charging"
                | "stop_charging"
                | "pause_charging"
                | "resume_charging"
                | "toggle_charging"
        ) {
            return empty(StatusCode::NOT_FOUND);
        }
        if !c.online {
            return refusal(&CommandRejected::Offline);
        }
        if !c.plugged_in {
            return refusal(&CommandRejected::NotPluggedIn);
        }
        let start = match command {
            "start_charging" | "resume_charging" => true,
            "toggle_charging" => !c.charging,
            _ => false,
        };
        let result = if start {
            self.send(id, WorldCommand::ChargerStart)
        } else {
            self.send(id, WorldCommand::ChargerStop)
        };
        if let Err(refused) = result {
            return *refused;
        }
        self.lock().chargers.entry(id.clone()).or_default().paused = command == "pause_charging";
        self.accepted(serial, command, now, false)
    }

    /// `set_dynamic_charger_current` and the `dynamicChargerCurrent` setting: 0 pauses, 6 A up
    /// to the charger's maximum sets the limit (and resumes a pause).
    fn set_dynamic_current(
        &self,
        id: &DeviceId,
        c: &WorldCharger,
        amps: f64,
    ) -> Result<(), Refusal> {
        if !c.online {
            return Err(Box::new(refusal(&CommandRejected::Offline)));
        }
        if amps == 0.0 {
            if c.charging {
                self.send(id, WorldCommand::ChargerStop)?;
            }
            self.lock().chargers.entry(id.clone()).or_default().paused = true;
            return Ok(());
        }
        if !amps.is_finite() || amps < c.min_current_a || amps > c.hardware_max_a {
            return Err(Box::new(validation_error(
                "amps",
                &format!(
                    "The value must be 0 or between {} and {}.",
                    c.min_current_a, c.hardware_max_a
                ),
            )));
        }
        self.send(id, WorldCommand::SetChargerMaxCurrent(amps))?;
        let was_paused = {
            let mut s = self.lock();
            let cloud = s.chargers.entry(id.clone()).or_default();
            std::mem::replace(&mut cloud.paused, false)
        };
        if was_paused && c.plugged_in && !c.charging {
            // Raising the limit of a paused charger lets the car draw again; a car that cannot
            // (full, no power) simply stays where it is.
            let _ = self.world.command(WORLD_VENDOR, id, WorldCommand::ChargerStart);
        }
        Ok(())
    }

    fn settings(&self, id: &DeviceId, serial: &str, body: &[u8], now: DateTime<Utc>) -> Response {
        let Some(c) = self.world.charger(id) else {
            return easee_error(StatusCode::NOT_FOUND, 404, "ChargerNotFound", "Charger not found");
        };
        let body = serde_json::from_slice::<Value>(body).unwrap_or(Value::Null);
        let Some(amps) = field(&body, "dynamicChargerCurrent").and_then(Value::as_f64) else {
            return validation_error(
                "$",
                "The simulator supports only the dynamicChargerCurrent setting.",
            );
        };
        match self.set_dynamic_current(id, &c, amps) {
            Ok(()) => self.accepted(serial, "set_dynamic_charger_current", now, true),
            Err(refused) => *refused,
        }
    }
}

/// A refusal, ready to send (boxed: responses are large).
type Refusal = Box<Response>;

/// A world refusal in Easee's style.
fn refusal(e: &CommandRejected) -> Response {
    match e {
        CommandRejected::NotPluggedIn => easee_error(
            StatusCode::BAD_REQUEST,
            701,
            "NoCarConnected",
            "The command requires a connected car",
        ),
        CommandRejected::AtLimit => easee_error(
            StatusCode::BAD_REQUEST,
            702,
            "CarFullyCharged",
            "The car does not accept more energy",
        ),
        CommandRejected::NoPower => {
            easee_error(StatusCode::BAD_REQUEST, 703, "NoPowerToCar", "The car does not draw power")
        }
        CommandRejected::Offline => easee_error(
            StatusCode::BAD_REQUEST,
            704,
            "ChargerOffline",
            "The charger is not connected to Easee Cloud",
        ),
        CommandRejected::InvalidValue(message) => validation_error("amps", message),
        CommandRejected::UnknownDevice { .. } => {
            easee_error(StatusCode::NOT_FOUND, 404, "ChargerNotFound", "Charger not found")
        }
        other => easee_error(StatusCode::BAD_REQUEST, 700, "CommandRejected", &other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn ticks_count_from_year_one() {
        let t = Utc.with_ymd_and_hms(2023, 8, 3, 5, 30, 40).single().unwrap_or_default();
        // Community log: 2023-08-03 05:30:40.70668 UTC was 638266374407066800.
        let with_fraction = t + chrono::Duration::microseconds(706_680);
        assert_eq!(ticks(with_fraction), 638_266_374_407_066_800);
    }

    #[test]
    fn rolling_windows_admit_and_tell_the_wait() {
        let t0 = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).single().unwrap_or_default();
        let mut calls = VecDeque::new();
        let window = Duration::from_secs(300);
        for i in 0..3 {
            assert!(admit(&mut calls, 3, window, t0 + chrono::Duration::seconds(i)).is_ok());
        }
        let later = t0 + chrono::Duration::seconds(100);
        assert_eq!(admit(&mut calls, 3, window, later), Err(Duration::from_secs(200)));
        assert!(admit(&mut calls, 3, window, t0 + chrono::Duration::seconds(300)).is_ok());
    }

    #[test]
    fn times_in_easee_s_spellings() {
        let t = Utc.with_ymd_and_hms(2020, 7, 18, 20, 1, 16).single().unwrap_or_default()
            + chrono::Duration::milliseconds(512);
        assert_eq!(pulse_time(t), "2020-07-18T20:01:16Z");
        assert_eq!(naive_time(t), "2020-07-18T20:01:16.512000");
    }
}
