//! A simulator of Enphase's cloud (Enlighten API v4 and its OAuth endpoints) over
//! `oemgate_sim::World`, as an axum [`Router`] meant to be mounted under [`PREFIX`]
//! (`/enphase`) of an `oemgate_sim::SimHost`.
//!
//! ```no_run
//! # async fn demo(world: oemgate_sim::World) -> anyhow::Result<()> {
//! use oemgate_enphase::sim::{EnphaseSim, PREFIX};
//! let sim = EnphaseSim::new(world.clone());
//! let mut host = oemgate_sim::SimHost::new(world.clock());
//! host.mount(PREFIX, sim.router())?;
//! // A household links its Enphase account: the sim hands out what the user would receive.
//! let link = sim.create_account(&world.sites());
//! // ... EnphaseAdapter::exchange_code(&link.code, &link.redirect_uri)
//! # Ok(()) }
//! ```
//!
//! # What it serves (paths below the mount prefix)
//!
//! - `GET /oauth/authorize?response_type=code&client_id=..&redirect_uri=..&state=..`: the
//!   owner signs in with `login_hint` (their e-mail) and is redirected to
//!   `redirect_uri?code=..&state=..` (a code bound to that redirect URI); without
//!   `login_hint` a sign-in form; `decision=deny` redirects with `error=access_denied`.
//! - `POST /oauth/token`: `grant_type=authorization_code|refresh_token|password`, the grant's
//!   parameters in the query string (or a form body), the client as HTTP Basic. Access tokens
//!   live [`ACCESS_TOKEN_LIFETIME`] (`expires_in` 86393), refresh tokens a month and are
//!   single-use: every refresh issues a new one. Codes are single-use and bound to the
//!   redirect URI. The password grant works for Partner-plan applications only.
//! - `GET /api/v4/systems?page=&size=` (size 1..=100), `GET /api/v4/systems/{id}/summary`,
//!   `/devices`, `/latest_telemetry`, `/telemetry/battery?granularity=`, and
//!   `GET|PUT /api/v4/systems/config/{id}/battery_settings`.
//!
//! Every API call needs the application's `?key=` and a bearer token of the same client
//! (else 401 "API Key -Client mismatch"). Each application is limited by its plan per
//! calendar minute and per calendar month, answered with Enphase's 429 body (`period`,
//! `period_start`, `period_end`, `limit`; no `Retry-After`).
//!
//! # The world as Enphase sees it
//!
//! An Enphase *system* is a world site given to an account ([`EnphaseSim::create_account`]);
//! its devices are the site's devices of vendor [`WORLD_VENDOR`] (`enphase`): inverters are
//! the microinverter array, batteries the IQ Batteries, a meter the consumption CT. Several
//! devices of a kind are added up, as Enphase reports them. System ids are stable numbers
//! derived from the site id ([`EnphaseSim::system_id`]).
//!
//! Data lags like Enphase's: the gateway *uploads* at most every
//! [`EnphaseSimConfig::upload_interval`] (15 min by default; `Duration::ZERO` for live data),
//! on the first request after the interval; `summary`, `latest_telemetry` and
//! `telemetry/battery` show the last upload with its `last_report_at`. When every Enphase
//! device of a site is offline the gateway stops uploading and the status is `comm`; one
//! offline device shows as `micro`, `battery` or `meter_issue`. Battery settings are read from
//! the world as they are (a `PUT` shows once the world applied it, after the world's command
//! latency for `enphase`).
//!
//! Signs as Enphase's: `storage` power is positive while the batteries discharge;
//! `consumption` is the household's total (grid + Enphase production + battery discharge).
//!
//! Modes: `Self-consumption` ↔ `SelfReliance`, `Savings Mode` ↔ `TimeOfUse`, `Full Backup` ↔
//! `ImportFocus` when the system's *charge from grid* is enabled, else `Backup` (charges from
//! solar only). A world battery in `ExportFocus` or `Idle` (only tests put it there) reports
//! that Enode spelling, which Enphase does not have.
//!
//! # Faults
//!
//! `world.faults().active("ENPHASE")` (or `"enphase"`) is rendered in Enphase's style:
//! `RateLimit` as its 429 body with `period_end = now + retry_after`; `ServerError` 500 as its
//! JSON error and 502/503/504 as the load balancer's HTML page; `Outage` as a 503 HTML page;
//! `Hang` waits, then answers; `Timeout` holds the request for `TIMEOUT_HANG`, then 504;
//! `Malformed` is a 200 HTML maintenance page; `Truncated` the right body cut in half;
//! `RevokeTokens` invalidates every token on the next request (401 "Invalid access token";
//! their refresh tokens are refused with `invalid_grant`).

use oemgate_sim::http::{truncate, url_decode};
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use chrono::{DateTime, Datelike, TimeZone, Utc};
use oemgate_core::Clock;
use oemgate_sim::rng::{hash, hash_str};
use oemgate_sim::{
    BatteryMode, BatteryState, CommandRejected, Fault, InverterState, MeterState, SiteId,
    SiteState, TIMEOUT_HANG, World, WorldCommand,
};
use serde_json::{Value, json};

use crate::EnphasePlan;
use crate::map::EnphaseBatteryMode;

/// Where the simulator expects to be mounted.
pub const PREFIX: &str = "/enphase";
/// The vendor name of Enphase devices in the world (and of its command latency).
pub const WORLD_VENDOR: &str = "enphase";
/// The vendor name faults are looked up by (`"enphase"` works too).
pub const FAULT_VENDOR: &str = "ENPHASE";
/// The redirect URI accounts are linked with by default.
pub const DEFAULT_REDIRECT_URI: &str = "https://oemgate.example/link/enphase/callback";
/// How long an access token works (Enphase's `expires_in`: 86393 s, about a day).
pub const ACCESS_TOKEN_LIFETIME: Duration = Duration::from_secs(86_393);
/// How long a refresh token works (a month).
pub const REFRESH_TOKEN_LIFETIME: Duration = Duration::from_secs(30 * 86_400);
/// How long an authorization code can be exchanged.
pub const CODE_LIFETIME: Duration = Duration::from_secs(10 * 60);
/// How often a Wi-Fi or Ethernet gateway uploads.
pub const UPLOAD_INTERVAL: Duration = Duration::from_secs(15 * 60);
/// The largest `size` of the systems list.
pub const MAX_PAGE_SIZE: u64 = 100;
/// The batteries' shutdown level: the lowest reserve a PUT may set, percent.
pub const BATTERY_SHUTDOWN_LEVEL: f64 = 10.0;
/// Watts per microinverter when the sim splits an array into micros.
const WATTS_PER_MICRO: f64 = 350.0;

/// A developer application registered at Enphase.
#[derive(Clone, PartialEq, Eq)]
pub struct EnphaseApp {
    /// The API key (`?key=`).
    pub api_key: String,
    /// The OAuth client id.
    pub client_id: String,
    /// The OAuth client secret.
    pub client_secret: String,
    /// The plan, which sets the limits.
    pub plan: EnphasePlan,
}

impl Default for EnphaseApp {
    fn default() -> Self {
        Self {
            api_key: "sim-enphase-api-key".to_owned(),
            client_id: "sim-enphase-client".to_owned(),
            client_secret: "sim-enphase-secret".to_owned(),
            plan: EnphasePlan::Watt,
        }
    }
}

impl fmt::Debug for EnphaseApp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EnphaseApp")
            .field("api_key", &"<redacted>")
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("plan", &self.plan)
            .finish()
    }
}

/// How the simulator behaves.
#[derive(Clone, Debug)]
pub struct EnphaseSimConfig {
    /// The application linked accounts' codes are issued for (more: [`EnphaseSim::add_app`]).
    pub app: EnphaseApp,
    /// The redirect URI of the codes [`EnphaseSim::create_account`] hands out.
    pub redirect_uri: String,
    /// How often gateways upload (`Duration::ZERO`: every request sees the world live).
    pub upload_interval: Duration,
    /// Access-token lifetime.
    pub access_token_lifetime: Duration,
    /// Refresh-token lifetime.
    pub refresh_token_lifetime: Duration,
}

impl Default for EnphaseSimConfig {
    fn default() -> Self {
        Self {
            app: EnphaseApp::default(),
            redirect_uri: DEFAULT_REDIRECT_URI.to_owned(),
            upload_interval: UPLOAD_INTERVAL,
            access_token_lifetime: ACCESS_TOKEN_LIFETIME,
            refresh_token_lifetime: REFRESH_TOKEN_LIFETIME,
        }
    }
}

/// What a user has after linking an Enphase account: Enphase's user id, the login (for the
/// Partner plan's password grant) and an authorization code for the redirect URI.
#[derive(Clone, PartialEq, Eq)]
pub struct EnphaseLink {
    /// Enphase's user id (`enl_uid`).
    pub enl_uid: String,
    /// The login e-mail.
    pub email: String,
    /// The login password.
    pub password: String,
    /// A fresh single-use authorization code (valid [`CODE_LIFETIME`]).
    pub code: String,
    /// The redirect URI the code is bound to.
    pub redirect_uri: String,
}

impl fmt::Debug for EnphaseLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EnphaseLink")
            .field("enl_uid", &self.enl_uid)
            .field("email", &self.email)
            .field("password", &"<redacted>")
            .field("code", &"<redacted>")
            .field("redirect_uri", &self.redirect_uri)
            .finish()
    }
}

#[derive(Debug, Default)]
struct Usage {
    minute: i64,
    minute_count: u32,
    month: (i32, u32),
    month_count: u32,
}

#[derive(Debug)]
struct App {
    app: EnphaseApp,
    usage: Usage,
}

#[derive(Debug)]
struct Account {
    email: String,
    password: String,
    sites: Vec<SiteId>,
}

#[derive(Debug)]
struct Code {
    enl_uid: String,
    client_id: String,
    redirect_uri: String,
    expires_at: DateTime<Utc>,
}

#[derive(Debug)]
struct Token {
    enl_uid: String,
    client_id: String,
    expires_at: DateTime<Utc>,
    revoked: bool,
    spent: bool,
}

/// One upload of a gateway: what the cloud knows until the next.
#[derive(Clone, Debug)]
struct Upload {
    at: DateTime<Utc>,
    pv_w: Option<f64>,
    lifetime_wh: f64,
    consumption_w: Option<f64>,
    storage_w: Option<f64>,
    soc_pct: Option<f64>,
    charged_wh: f64,
    discharged_wh: f64,
    interval_charge_wh: f64,
    interval_discharge_wh: f64,
    day: i64,
    day_start_wh: f64,
}

#[derive(Debug, Default)]
struct SystemConfig {
    charge_from_grid: bool,
    energy_independence: bool,
}

#[derive(Debug)]
struct SimState {
    config: EnphaseSimConfig,
    apps: Vec<App>,
    accounts: BTreeMap<String, Account>,
    codes: HashMap<String, Code>,
    access: HashMap<String, Token>,
    refresh: HashMap<String, Token>,
    systems: BTreeMap<u64, SiteId>,
    by_site: HashMap<SiteId, u64>,
    uploads: HashMap<u64, Upload>,
    settings: HashMap<u64, SystemConfig>,
    serial: u64,
    next_uid: u64,
}

/// The simulated Enphase cloud. Cheap to clone; clones share everything.
#[derive(Clone)]
pub struct EnphaseSim {
    world: World,
    clock: Arc<dyn Clock>,
    state: Arc<Mutex<SimState>>,
}

impl fmt::Debug for EnphaseSim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.lock();
        f.debug_struct("EnphaseSim")
            .field("accounts", &s.accounts.len())
            .field("systems", &s.systems.len())
            .finish_non_exhaustive()
    }
}

/// The devices of one site that Enphase sees, read from the world at one instant.
struct SiteView {
    site: SiteState,
    inverters: Vec<InverterState>,
    batteries: Vec<BatteryState>,
    meters: Vec<MeterState>,
}

impl SiteView {
    fn status(&self) -> &'static str {
        let flags: Vec<bool> = self
            .inverters
            .iter()
            .map(|d| d.online)
            .chain(self.batteries.iter().map(|d| d.online))
            .chain(self.meters.iter().map(|d| d.online))
            .collect();
        if !flags.is_empty() && flags.iter().all(|online| !online) {
            "comm"
        } else if self.inverters.iter().any(|d| !d.online) {
            "micro"
        } else if self.batteries.iter().any(|d| !d.online) {
            "battery"
        } else if self.meters.iter().any(|d| !d.online) {
            "meter_issue"
        } else {
            "normal"
        }
    }

    fn gateway_online(&self) -> bool {
        self.status() != "comm"
    }

    fn local_day(&self, t: DateTime<Utc>) -> i64 {
        (t.timestamp() + i64::from(self.site.utc_offset_minutes) * 60).div_euclid(86_400)
    }

    fn capacity_w(&self) -> f64 {
        self.inverters.iter().map(|i| i.capacity_w).sum()
    }

    fn modules(&self) -> u64 {
        self.inverters.iter().map(|i| micros_of(i.capacity_w)).sum()
    }
}

fn micros_of(capacity_w: f64) -> u64 {
    let n = (capacity_w / WATTS_PER_MICRO).ceil();
    if n.is_finite() && n >= 1.0 { int(n).unsigned_abs() } else { 1 }
}

/// A finite number as an integer (Enphase reports whole W, Wh and percent).
fn int(x: f64) -> i64 {
    if x.is_finite() {
        // Clamped to the i64 range first, so the cast cannot wrap.
        #[allow(clippy::cast_possible_truncation)]
        let v = x.round().clamp(-9.0e18, 9.0e18) as i64;
        v
    } else {
        0
    }
}

fn plus(t: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(d)
        .ok()
        .and_then(|d| t.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

fn json_response(status: StatusCode, body: Value) -> Response {
    let mut response = (status, body.to_string()).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json;charset=UTF-8"));
    response
}

fn ok(body: Value) -> Response {
    json_response(StatusCode::OK, body)
}

/// Enphase's usual error shape.
fn api_error(status: StatusCode, message: &str, details: &str) -> Response {
    let body = json!({ "message": message, "details": details, "code": status.as_u16() });
    json_response(status, body)
}

fn unauthorized(details: &str) -> Response {
    api_error(StatusCode::UNAUTHORIZED, "Not Authorized", details)
}

fn not_found(details: &str) -> Response {
    api_error(StatusCode::NOT_FOUND, "Not Found", details)
}

fn bad_request(details: &str) -> Response {
    api_error(StatusCode::BAD_REQUEST, "Bad Request", details)
}

fn unprocessable(details: &str) -> Response {
    api_error(StatusCode::UNPROCESSABLE_ENTITY, "Unprocessable Entity", details)
}

/// The 405 shape.
fn method_not_allowed() -> Response {
    json_response(
        StatusCode::METHOD_NOT_ALLOWED,
        json!({ "reason": "405", "message": ["Method not allowed"] }),
    )
}

/// The OAuth error shape of the token endpoint.
fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    json_response(status, json!({ "error": error, "error_description": description }))
}

fn html(status: StatusCode, title: &str) -> Response {
    let page = format!(
        "<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n<center><h1>{title}</h1>\
         </center>\r\n</body>\r\n</html>\r\n"
    );
    let mut response = (status, page).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html"));
    response
}

fn too_many_requests(
    plan: EnphasePlan,
    period: &str,
    start: i64,
    end: i64,
    limit: u32,
) -> Response {
    let body = json!({
        "message": "Too Many Requests",
        "details": format!("Usage limit exceeded for plan {}", plan.name()),
        "code": 429,
        "period": period,
        "period_start": start,
        "period_end": end,
        "limit": limit,
    });
    json_response(StatusCode::TOO_MANY_REQUESTS, body)
}

fn server_error(status: u16) -> Response {
    let status = StatusCode::from_u16(status)
        .ok()
        .filter(|s| s.is_server_error())
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    match status.as_u16() {
        502 => html(status, "502 Bad Gateway"),
        503 => html(status, "503 Service Temporarily Unavailable"),
        504 => html(status, "504 Gateway Time-out"),
        _ => {
            api_error(status, status.canonical_reason().unwrap_or("Server Error"), "Internal error")
        }
    }
}

fn parse_query(q: &str) -> BTreeMap<String, String> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (url_decode(k), url_decode(v))
        })
        .collect()
}

fn basic_auth(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let encoded = value.strip_prefix("Basic ").or_else(|| value.strip_prefix("basic "))?;
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (id, secret) = text.split_once(':')?;
    Some((id.to_owned(), secret.to_owned()))
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer ")).map(str::trim)
}

/// The world's battery mode for an Enphase mode.
fn world_mode(mode: EnphaseBatteryMode, charge_from_grid: bool) -> BatteryMode {
    match mode {
        EnphaseBatteryMode::SelfConsumption => BatteryMode::SelfReliance,
        EnphaseBatteryMode::Savings => BatteryMode::TimeOfUse,
        EnphaseBatteryMode::FullBackup if charge_from_grid => BatteryMode::ImportFocus,
        EnphaseBatteryMode::FullBackup => BatteryMode::Backup,
    }
}

/// The Enphase mode a world battery mode shows as (`None`: Enphase has no such mode).
fn enphase_mode_of(mode: BatteryMode) -> Option<EnphaseBatteryMode> {
    match mode {
        BatteryMode::SelfReliance => Some(EnphaseBatteryMode::SelfConsumption),
        BatteryMode::TimeOfUse => Some(EnphaseBatteryMode::Savings),
        BatteryMode::ImportFocus | BatteryMode::Backup => Some(EnphaseBatteryMode::FullBackup),
        BatteryMode::ExportFocus | BatteryMode::Idle => None,
    }
}

fn enabled(flag: bool) -> &'static str {
    if flag { "enabled" } else { "disabled" }
}

async fn handle(
    State(sim): State<EnphaseSim>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    sim.apply_revocation();
    let fault = sim.active_fault();
    match &fault {
        Some(Fault::RateLimit { retry_after }) => {
            let now = sim.clock.now().timestamp();
            let secs = i64::try_from(retry_after.as_secs()).unwrap_or(i64::MAX / 2);
            let secs = if retry_after.subsec_nanos() > 0 { secs + 1 } else { secs };
            let plan = sim.lock().config.app.plan;
            return too_many_requests(plan, "minute", now, now + secs, plan.per_minute());
        }
        Some(Fault::ServerError { status }) => return server_error(*status),
        Some(Fault::Outage) => {
            return html(StatusCode::SERVICE_UNAVAILABLE, "503 Service Temporarily Unavailable");
        }
        Some(Fault::Hang { .. }) => {
            if let Some(wait) = fault.as_ref().and_then(|f| f.hang_real(sim.clock.as_ref())) {
                tokio::time::sleep(wait).await;
            }
        }
        Some(Fault::Timeout) => {
            tokio::time::sleep(TIMEOUT_HANG).await;
            return html(StatusCode::GATEWAY_TIMEOUT, "504 Gateway Time-out");
        }
        Some(Fault::Malformed) => {
            return html(StatusCode::OK, "Enlighten is down for scheduled maintenance");
        }
        Some(Fault::Truncated | Fault::RevokeTokens) | None => {}
    }
    let response = sim.route(&method, &uri, &headers, &body);
    if matches!(fault, Some(Fault::Truncated)) { truncate(response).await } else { response }
}

impl EnphaseSim {
    /// A simulator over `world` with the default configuration (the default application on
    /// the Watt plan, 15-minute uploads).
    pub fn new(world: World) -> Self {
        Self::with_config(world, EnphaseSimConfig::default())
    }

    /// A simulator over `world` with `config`.
    pub fn with_config(world: World, config: EnphaseSimConfig) -> Self {
        let clock = world.clock();
        let apps = vec![App { app: config.app.clone(), usage: Usage::default() }];
        let state = SimState {
            config,
            apps,
            accounts: BTreeMap::new(),
            codes: HashMap::new(),
            access: HashMap::new(),
            refresh: HashMap::new(),
            systems: BTreeMap::new(),
            by_site: HashMap::new(),
            uploads: HashMap::new(),
            settings: HashMap::new(),
            serial: 0,
            next_uid: 0,
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

    /// The default application (the one [`EnphaseSim::create_account`] issues codes for).
    pub fn app(&self) -> EnphaseApp {
        self.lock().config.app.clone()
    }

    /// Registers another application (for API-key/client mismatch tests, other plans).
    pub fn add_app(&self, app: EnphaseApp) {
        let mut s = self.lock();
        s.apps.retain(|a| a.app.api_key != app.api_key);
        s.apps.push(App { app, usage: Usage::default() });
    }

    /// Changes how often gateways upload (`Duration::ZERO`: live).
    pub fn set_upload_interval(&self, interval: Duration) {
        self.lock().config.upload_interval = interval;
    }

    /// Counts `requests` against the application's month (to test the monthly limit).
    pub fn set_monthly_usage(&self, api_key: &str, requests: u32) {
        let now = self.clock.now();
        let mut s = self.lock();
        if let Some(app) = s.apps.iter_mut().find(|a| a.app.api_key == api_key) {
            app.usage.month = (now.year(), now.month());
            app.usage.month_count = requests;
        }
    }

    /// The system id a site is exposed as (assigned on first use, stable for a seed).
    pub fn system_id(&self, site: &SiteId) -> u64 {
        let mut s = self.lock();
        Self::system_of(&mut s, site)
    }

    fn system_of(s: &mut SimState, site: &SiteId) -> u64 {
        if let Some(id) = s.by_site.get(site) {
            return *id;
        }
        let digits: String = site.as_str().chars().filter(char::is_ascii_digit).collect();
        let mut id = match digits.parse::<u64>() {
            Ok(n) if n < 1_000_000 => 2_000_000 + n,
            _ => 100_000_000 + hash_str(site.as_str()) % 800_000_000,
        };
        while s.systems.contains_key(&id) {
            id += 1;
        }
        s.systems.insert(id, site.clone());
        s.by_site.insert(site.clone(), id);
        id
    }

    fn new_secret(s: &mut SimState, seed: u64, kind: u64) -> String {
        s.serial += 1;
        let a = hash(&[seed, kind, s.serial]);
        let b = hash(&[a, s.serial, 0x00E1_1FA5]);
        format!("{a:016x}{b:016x}")
    }

    /// Creates an Enphase account owning `sites` (each becomes a system) and returns what the
    /// user has after approving the default application: an authorization code for
    /// [`EnphaseSimConfig::redirect_uri`], plus the login.
    pub fn create_account(&self, sites: &[SiteId]) -> EnphaseLink {
        let now = self.clock.now();
        let seed = self.world.seed();
        let mut s = self.lock();
        s.next_uid += 1;
        let enl_uid = (4_100_000 + s.next_uid).to_string();
        let email = format!("owner{enl_uid}@example.invalid");
        let password = Self::new_secret(&mut s, seed, 3);
        for site in sites {
            Self::system_of(&mut s, site);
        }
        let account =
            Account { email: email.clone(), password: password.clone(), sites: sites.to_vec() };
        s.accounts.insert(enl_uid.clone(), account);
        let redirect_uri = s.config.redirect_uri.clone();
        let code = Self::issue_code(&mut s, seed, &enl_uid, &redirect_uri, now);
        EnphaseLink { enl_uid, email, password, code, redirect_uri }
    }

    /// A fresh authorization code for an existing account (the user approves again, e.g. to
    /// relink after a revocation); `None` for an unknown user.
    pub fn new_authorization_code(&self, enl_uid: &str) -> Option<String> {
        let now = self.clock.now();
        let seed = self.world.seed();
        let mut s = self.lock();
        if !s.accounts.contains_key(enl_uid) {
            return None;
        }
        let redirect_uri = s.config.redirect_uri.clone();
        Some(Self::issue_code(&mut s, seed, enl_uid, &redirect_uri, now))
    }

    fn issue_code(
        s: &mut SimState,
        seed: u64,
        enl_uid: &str,
        redirect_uri: &str,
        now: DateTime<Utc>,
    ) -> String {
        let code: String = Self::new_secret(s, seed, 1).chars().take(6).collect();
        let code = format!("{code}{}", s.serial);
        let client_id = s.config.app.client_id.clone();
        s.codes.insert(
            code.clone(),
            Code {
                enl_uid: enl_uid.to_owned(),
                client_id,
                redirect_uri: redirect_uri.to_owned(),
                expires_at: plus(now, CODE_LIFETIME),
            },
        );
        code
    }

    /// Makes every access token expired now (their refresh tokens still work).
    pub fn expire_access_tokens(&self) {
        let now = self.clock.now();
        for token in self.lock().access.values_mut() {
            token.expires_at = token.expires_at.min(now);
        }
    }

    /// Revokes every token of a user (they removed the application's access).
    pub fn revoke_account(&self, enl_uid: &str) {
        let mut guard = self.lock();
        let s = &mut *guard;
        for token in s.access.values_mut().chain(s.refresh.values_mut()) {
            if token.enl_uid == enl_uid {
                token.revoked = true;
            }
        }
    }

    /// Revokes every token of every user.
    pub fn revoke_all_tokens(&self) {
        let mut guard = self.lock();
        let s = &mut *guard;
        for token in s.access.values_mut().chain(s.refresh.values_mut()) {
            token.revoked = true;
        }
    }

    /// Enables or disables a system's *charge from grid* (the user's setting in the Enphase
    /// App; decides whether `Full Backup` charges from the grid).
    pub fn set_charge_from_grid(&self, site: &SiteId, enabled: bool) {
        let mut s = self.lock();
        let id = Self::system_of(&mut s, site);
        s.settings.entry(id).or_default().charge_from_grid = enabled;
    }

    fn apply_revocation(&self) {
        let faults = self.world.faults();
        let due = faults.take_revocation(FAULT_VENDOR) | faults.take_revocation(WORLD_VENDOR);
        if due {
            self.revoke_all_tokens();
        }
    }

    fn active_fault(&self) -> Option<Fault> {
        let faults = self.world.faults();
        faults.active(FAULT_VENDOR).or_else(|| faults.active(WORLD_VENDOR))
    }

    fn route(&self, method: &Method, uri: &Uri, headers: &HeaderMap, body: &[u8]) -> Response {
        let now = self.clock.now();
        let query = parse_query(uri.query().unwrap_or(""));
        let segments: Vec<&str> = uri.path().split('/').filter(|s| !s.is_empty()).collect();
        match segments.as_slice() {
            ["oauth", "authorize"] if method == Method::GET => self.authorize(query, now),
            ["oauth", "token"] if method == Method::POST => self.token(query, headers, body, now),
            ["oauth", "token"] => method_not_allowed(),
            ["api", "v4", rest @ ..] => self.api(method, rest, &query, headers, body, now),
            _ => not_found("The requested resource was not found"),
        }
    }

    // ---- OAuth -----------------------------------------------------------------------------

    /// The authorize step of the code grant for the owner named by `login_hint`.
    fn authorize(&self, params: BTreeMap<String, String>, now: DateTime<Utc>) -> Response {
        let field = |k: &str| params.get(k).map(String::as_str).unwrap_or("");
        let seed = self.world.seed();
        let mut s = self.lock();
        if field("response_type") != "code"
            || !s.apps.iter().any(|a| a.app.client_id == field("client_id"))
        {
            return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "Invalid client_id");
        }
        let redirect = |pairs: &[(&str, &str)]| {
            let mut all = pairs.to_vec();
            all.push(("state", field("state")));
            match oemgate_sim::http::redirect_with(field("redirect_uri"), &all) {
                Some(location) => {
                    let mut response = StatusCode::FOUND.into_response();
                    if let Ok(value) = HeaderValue::from_str(&location) {
                        response.headers_mut().insert(header::LOCATION, value);
                    }
                    response
                }
                None => {
                    oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "Invalid redirect_uri")
                }
            }
        };
        if field("decision") == "deny" {
            return redirect(&[
                ("error", "access_denied"),
                ("error_description", "User denied access"),
            ]);
        }
        let form = |status: StatusCode, message: Option<&str>| {
            let page = oemgate_sim::http::authorize_form("Enphase", "authorize", &params, message);
            let mut response = (status, page).into_response();
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
            response
        };
        if field("login_hint").is_empty() {
            return form(StatusCode::OK, None);
        }
        let user = s
            .accounts
            .iter()
            .find(|(_, a)| a.email.eq_ignore_ascii_case(field("login_hint")))
            .map(|(uid, _)| uid.clone());
        let Some(enl_uid) = user else {
            return form(StatusCode::UNAUTHORIZED, Some("Unknown e-mail address."));
        };
        let code = Self::issue_code(&mut s, seed, &enl_uid, field("redirect_uri"), now);
        redirect(&[("code", &code)])
    }

    fn token(
        &self,
        mut params: BTreeMap<String, String>,
        headers: &HeaderMap,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Response {
        if let Ok(form) = std::str::from_utf8(body) {
            for (k, v) in parse_query(form.trim()) {
                params.entry(k).or_insert(v);
            }
        }
        let seed = self.world.seed();
        let mut s = self.lock();
        let Some((client_id, secret)) = basic_auth(headers) else {
            return oauth_error(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "Full authentication is required to access this resource",
            );
        };
        let Some(app) = s
            .apps
            .iter()
            .find(|a| a.app.client_id == client_id && a.app.client_secret == secret)
            .map(|a| a.app.clone())
        else {
            return oauth_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "Bad client credentials",
            );
        };
        let param = |k: &str| params.get(k).map(String::as_str).unwrap_or("");
        let enl_uid = match param("grant_type") {
            "authorization_code" => {
                let code = s.codes.remove(param("code"));
                match code {
                    Some(c)
                        if c.client_id == app.client_id
                            && c.redirect_uri == param("redirect_uri")
                            && now < c.expires_at =>
                    {
                        c.enl_uid
                    }
                    Some(c) if c.redirect_uri != param("redirect_uri") => {
                        return oauth_error(
                            StatusCode::BAD_REQUEST,
                            "invalid_grant",
                            "Redirect URI mismatch.",
                        );
                    }
                    _ => {
                        return oauth_error(
                            StatusCode::BAD_REQUEST,
                            "invalid_grant",
                            "Invalid authorization code",
                        );
                    }
                }
            }
            "refresh_token" => {
                let Some(t) = s.refresh.get_mut(param("refresh_token")) else {
                    return oauth_error(
                        StatusCode::BAD_REQUEST,
                        "invalid_grant",
                        "Invalid refresh token",
                    );
                };
                if t.revoked || t.spent || t.client_id != app.client_id {
                    return oauth_error(
                        StatusCode::BAD_REQUEST,
                        "invalid_grant",
                        "Invalid refresh token",
                    );
                }
                if now >= t.expires_at {
                    return oauth_error(
                        StatusCode::BAD_REQUEST,
                        "invalid_grant",
                        "Invalid refresh token (expired)",
                    );
                }
                t.spent = true;
                t.enl_uid.clone()
            }
            "password" if app.plan == EnphasePlan::Partner => {
                let user = s
                    .accounts
                    .iter()
                    .find(|(_, a)| a.email == param("username") && a.password == param("password"))
                    .map(|(uid, _)| uid.clone());
                match user {
                    Some(uid) => uid,
                    None => {
                        return oauth_error(
                            StatusCode::BAD_REQUEST,
                            "invalid_grant",
                            "Bad credentials",
                        );
                    }
                }
            }
            "password" => {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "unauthorized_client",
                    "Unauthorized grant type: password",
                );
            }
            other => {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "unsupported_grant_type",
                    &format!("Unsupported grant type: {other}"),
                );
            }
        };
        let access = Self::new_secret(&mut s, seed, 10);
        let refresh = Self::new_secret(&mut s, seed, 11);
        let jti = Self::new_secret(&mut s, seed, 12);
        let (access_life, refresh_life) =
            (s.config.access_token_lifetime, s.config.refresh_token_lifetime);
        let token = |lifetime| Token {
            enl_uid: enl_uid.clone(),
            client_id: app.client_id.clone(),
            expires_at: plus(now, lifetime),
            revoked: false,
            spent: false,
        };
        s.access.insert(access.clone(), token(access_life));
        s.refresh.insert(refresh.clone(), token(refresh_life));
        ok(json!({
            "access_token": access,
            "token_type": "bearer",
            "refresh_token": refresh,
            "expires_in": access_life.as_secs(),
            "scope": "read write",
            "enl_uid": enl_uid,
            "enl_cid": format!("{}", hash_str(&app.client_id) % 1_000_000),
            "enl_password_last_changed": "1600000000",
            "is_internal_app": false,
            "app_type": "system",
            "jti": jti,
        }))
    }

    // ---- API -------------------------------------------------------------------------------

    fn api(
        &self,
        method: &Method,
        path: &[&str],
        query: &BTreeMap<String, String>,
        headers: &HeaderMap,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Response {
        let mut s = self.lock();
        let Some(key) = query.get("key").filter(|k| !k.is_empty()) else {
            return unauthorized("API key is missing");
        };
        let Some(app) = s.apps.iter_mut().find(|a| &a.app.api_key == key) else {
            return unauthorized("Invalid API key");
        };
        if let Some(limited) = admit(app, now) {
            return limited;
        }
        let client_id = app.app.client_id.clone();
        let Some(token) = bearer(headers) else {
            return unauthorized("Bearer token is missing");
        };
        let enl_uid = match s.access.get(token) {
            None => return unauthorized("Invalid access token"),
            Some(t) if t.revoked => return unauthorized("Invalid access token"),
            Some(t) if t.client_id != client_id => return unauthorized("API Key -Client mismatch"),
            Some(t) if now >= t.expires_at => return unauthorized("Access token expired"),
            Some(t) => t.enl_uid.clone(),
        };
        let Some(sites) = s.accounts.get(&enl_uid).map(|a| a.sites.clone()) else {
            return unauthorized("Invalid access token");
        };
        let get = method == Method::GET;
        match path {
            ["systems"] if get => self.systems_list(&mut s, &sites, query, now),
            ["systems", id, "summary"] if get => {
                self.with_system(&mut s, &sites, id, |sim, s, id, view| {
                    sim.summary(s, id, view, now)
                })
            }
            ["systems", id, "devices"] if get => {
                self.with_system(&mut s, &sites, id, |_, _, id, view| devices(id, view, now))
            }
            ["systems", id, "latest_telemetry"] if get => {
                self.with_system(&mut s, &sites, id, |sim, s, id, view| {
                    sim.latest_telemetry(s, id, view, now)
                })
            }
            ["systems", id, "telemetry", "battery"] if get => {
                self.with_system(&mut s, &sites, id, |sim, s, id, view| {
                    sim.battery_telemetry(s, id, view, query, now)
                })
            }
            ["systems", "config", id, "battery_settings"] if get => {
                self.with_system(&mut s, &sites, id, |_, s, id, view| battery_settings(s, id, view))
            }
            ["systems", "config", id, "battery_settings"] if method == Method::PUT => self
                .with_system(&mut s, &sites, id, |sim, s, id, view| {
                    sim.put_battery_settings(s, id, view, body)
                }),
            ["systems"]
            | ["systems", _, "summary" | "devices" | "latest_telemetry"]
            | ["systems", _, "telemetry", "battery"]
            | ["systems", "config", _, "battery_settings"] => method_not_allowed(),
            _ => not_found("The requested resource was not found"),
        }
    }

    fn with_system(
        &self,
        s: &mut SimState,
        sites: &[SiteId],
        id: &str,
        f: impl FnOnce(&Self, &mut SimState, u64, &SiteView) -> Response,
    ) -> Response {
        let Some((system, site)) = id
            .parse::<u64>()
            .ok()
            .and_then(|id| s.systems.get(&id).map(|site| (id, site.clone())))
            .filter(|(_, site)| sites.contains(site))
        else {
            return not_found("System not found");
        };
        match self.view(&site) {
            Some(view) => f(self, s, system, &view),
            None => not_found("System not found"),
        }
    }

    fn view(&self, site: &SiteId) -> Option<SiteView> {
        let mut view = SiteView {
            site: self.world.site(site)?,
            inverters: Vec::new(),
            batteries: Vec::new(),
            meters: Vec::new(),
        };
        for info in self.world.devices_of_site(site) {
            if info.vendor != WORLD_VENDOR {
                continue;
            }
            match info.kind {
                oemgate_sim::DeviceKind::Inverter => {
                    view.inverters.extend(self.world.inverter(&info.id))
                }
                oemgate_sim::DeviceKind::Battery => {
                    view.batteries.extend(self.world.battery(&info.id))
                }
                oemgate_sim::DeviceKind::Meter => view.meters.extend(self.world.meter(&info.id)),
                _ => {}
            }
        }
        Some(view)
    }

    /// The system's last upload, uploading now if the interval passed and the gateway is
    /// online.
    fn upload(s: &mut SimState, system: u64, view: &SiteView, now: DateTime<Utc>) -> Upload {
        let interval = s.config.upload_interval;
        if let Some(last) = s.uploads.get(&system) {
            let due = plus(last.at, interval) <= now;
            if !due || !view.gateway_online() {
                return last.clone();
            }
        }
        let prev = s.uploads.get(&system).cloned();
        let pv_w = (!view.inverters.is_empty())
            .then(|| view.inverters.iter().map(|i| i.production_w).sum::<f64>());
        let lifetime_wh = view.inverters.iter().map(|i| i.lifetime_kwh * 1000.0).sum::<f64>();
        let battery_w = view.batteries.iter().map(|b| b.power_w).sum::<f64>();
        let capacity = view.batteries.iter().map(|b| b.capacity_kwh).sum::<f64>();
        let soc_pct = (capacity > 0.0).then(|| {
            view.batteries.iter().map(|b| b.soc_pct * b.capacity_kwh).sum::<f64>() / capacity
        });
        let charged_wh = view.batteries.iter().map(|b| b.charged_kwh * 1000.0).sum::<f64>();
        let discharged_wh = view.batteries.iter().map(|b| b.discharged_kwh * 1000.0).sum::<f64>();
        let day = view.local_day(now);
        let day_start_wh = match &prev {
            Some(p) if p.day == day => p.day_start_wh,
            Some(p) => p.lifetime_wh,
            None => lifetime_wh,
        };
        let upload = Upload {
            at: now,
            pv_w,
            lifetime_wh,
            consumption_w: (!view.meters.is_empty())
                .then(|| view.site.grid_w + pv_w.unwrap_or(0.0) - battery_w),
            storage_w: (!view.batteries.is_empty()).then_some(-battery_w),
            soc_pct,
            charged_wh,
            discharged_wh,
            interval_charge_wh: prev.as_ref().map_or(0.0, |p| charged_wh - p.charged_wh),
            interval_discharge_wh: prev.as_ref().map_or(0.0, |p| discharged_wh - p.discharged_wh),
            day,
            day_start_wh,
        };
        s.uploads.insert(system, upload.clone());
        upload
    }

    fn operational_at(&self, system: u64) -> i64 {
        let days = 365 + i64::try_from(system % 700).unwrap_or(0);
        (self.world.started_at() - chrono::Duration::days(days)).timestamp()
    }

    fn systems_list(
        &self,
        s: &mut SimState,
        sites: &[SiteId],
        query: &BTreeMap<String, String>,
        now: DateTime<Utc>,
    ) -> Response {
        let number = |k: &str, default: u64| match query.get(k) {
            None => Some(default),
            Some(v) => v.trim().parse::<u64>().ok(),
        };
        let (Some(page), Some(size)) = (number("page", 1), number("size", 10)) else {
            return bad_request("page and size must be positive integers");
        };
        if page == 0 {
            return bad_request("page must be greater than 0");
        }
        if !(1..=MAX_PAGE_SIZE).contains(&size) {
            return unprocessable("size must be between 1 and 100");
        }
        let mut ids: Vec<(u64, SiteId)> =
            sites.iter().map(|site| (Self::system_of(s, site), site.clone())).collect();
        ids.sort();
        ids.dedup();
        let total = ids.len();
        let skip = usize::try_from((page - 1).saturating_mul(size)).unwrap_or(usize::MAX);
        let take = usize::try_from(size).unwrap_or(usize::MAX);
        let mut systems = Vec::new();
        for (id, site) in ids.into_iter().skip(skip).take(take) {
            let Some(view) = self.view(&site) else { continue };
            let upload = Self::upload(s, id, &view, now);
            systems.push(json!({
                "system_id": id,
                "name": view.site.name,
                "public_name": "Residential System",
                "timezone": view.site.timezone,
                "address": { "city": null, "state": null, "country": null, "postal_code": null },
                "connection_type": "wifi",
                "energy_lifetime": int(upload.lifetime_wh),
                "energy_today": int(upload.lifetime_wh - upload.day_start_wh),
                "system_size": int(view.capacity_w()),
                "status": view.status(),
                "last_report_at": upload.at.timestamp(),
                "last_energy_at": upload.at.timestamp(),
                "operational_at": self.operational_at(id),
                "attachment_type": null,
                "interconnect_date": null,
                "reference": null,
                "other_references": [],
            }));
        }
        ok(json!({
            "total": total,
            "current_page": page,
            "size": size,
            "count": systems.len(),
            "items": "systems",
            "systems": systems,
        }))
    }

    fn summary(&self, s: &mut SimState, id: u64, view: &SiteView, now: DateTime<Utc>) -> Response {
        let upload = Self::upload(s, id, view, now);
        let local = upload.at + chrono::Duration::minutes(i64::from(view.site.utc_offset_minutes));
        let at = upload.at.timestamp();
        let mut body = json!({
            "system_id": id,
            "current_power": int(upload.pv_w.unwrap_or(0.0).max(0.0)),
            "energy_lifetime": int(upload.lifetime_wh),
            "energy_today": int(upload.lifetime_wh - upload.day_start_wh),
            "last_interval_end_at": at - at.rem_euclid(300),
            "last_report_at": at,
            "modules": view.modules(),
            "operational_at": self.operational_at(id),
            "size_w": int(view.capacity_w()),
            "source": if view.meters.is_empty() { "microinverters" } else { "meter" },
            "status": view.status(),
            "summary_date": local.date_naive().format("%Y-%m-%d").to_string(),
        });
        if !view.batteries.is_empty() {
            let sum = |f: fn(&BatteryState) -> f64| view.batteries.iter().map(f).sum::<f64>();
            body["battery_charge_w"] = json!(int(sum(|b| b.max_charge_w)));
            body["battery_discharge_w"] = json!(int(sum(|b| b.max_discharge_w)));
            body["battery_capacity_wh"] = json!(int(sum(|b| b.capacity_kwh * 1000.0)));
        }
        ok(body)
    }

    fn latest_telemetry(
        &self,
        s: &mut SimState,
        id: u64,
        view: &SiteView,
        now: DateTime<Utc>,
    ) -> Response {
        let upload = Self::upload(s, id, view, now);
        let at = upload.at.timestamp();
        let reading = |name: &str, power: f64| json!({ "name": name, "channel": 1, "power": int(power), "last_report_at": at });
        let mut meters = Vec::new();
        if let Some(pv) = upload.pv_w {
            meters.push(reading("production", pv.max(0.0)));
        }
        if let Some(consumption) = upload.consumption_w {
            meters.push(reading("consumption", consumption));
        }
        if let Some(storage) = upload.storage_w {
            meters.push(reading("storage", storage));
        }
        ok(json!({ "system_id": id, "last_report_at": at, "devices": { "meters": meters } }))
    }

    fn battery_telemetry(
        &self,
        s: &mut SimState,
        id: u64,
        view: &SiteView,
        query: &BTreeMap<String, String>,
        now: DateTime<Utc>,
    ) -> Response {
        let granularity = query.get("granularity").map_or("day", String::as_str);
        let span = match granularity {
            "week" => 7 * 86_400,
            "day" => 86_400,
            "15mins" => 900,
            "5mins" => 300,
            _ => return unprocessable("granularity must be one of week, day, 15mins, 5mins"),
        };
        if let Some(start) = query.get("start_at")
            && start.trim().parse::<i64>().is_err()
        {
            return unprocessable("start_at must be an epoch time in seconds");
        }
        if view.batteries.is_empty() {
            return unprocessable("System doesn't have encharge");
        }
        let upload = Self::upload(s, id, view, now);
        let end = upload.at.timestamp();
        let n = view.batteries.len();
        let soc = upload.soc_pct.map(int);
        ok(json!({
            "system_id": id,
            "granularity": granularity,
            "total_devices": n,
            "start_at": end - span,
            "end_at": end,
            "items": "intervals",
            "intervals": [{
                "end_at": end,
                "charge": { "enwh": int(upload.interval_charge_wh), "devices_reporting": n },
                "discharge": { "enwh": int(upload.interval_discharge_wh), "devices_reporting": n },
                "soc": { "percent": soc, "devices_reporting": n },
            }],
            "last_reported_aggregate_soc": soc.map(|p| format!("{p}%")),
        }))
    }

    fn put_battery_settings(
        &self,
        s: &mut SimState,
        id: u64,
        view: &SiteView,
        body: &[u8],
    ) -> Response {
        let Ok(Value::Object(fields)) = serde_json::from_slice::<Value>(body) else {
            return bad_request("Request body must be a JSON object");
        };
        if view.batteries.is_empty() {
            return unprocessable("System doesn't have encharge");
        }
        let mode = match fields.get("battery_mode") {
            None => None,
            Some(Value::String(m)) => {
                let exact = [
                    EnphaseBatteryMode::SelfConsumption,
                    EnphaseBatteryMode::Savings,
                    EnphaseBatteryMode::FullBackup,
                ]
                .into_iter()
                .find(|e| e.put_spelling() == m);
                match exact {
                    Some(e) => Some(e),
                    None => {
                        return bad_request(&format!(
                            "Invalid battery_mode {m:?}. Allowed values: Savings Mode, \
                             Self-consumption, Full Backup"
                        ));
                    }
                }
            }
            Some(_) => return bad_request("battery_mode must be a string"),
        };
        let reserve = match fields.get("reserve_soc") {
            None => None,
            Some(v) => match v.as_f64().filter(|r| r.fract() == 0.0) {
                Some(r) if (BATTERY_SHUTDOWN_LEVEL..=100.0).contains(&r) => Some(r),
                _ => {
                    return bad_request(&format!(
                        "reserve_soc must be an integer between {BATTERY_SHUTDOWN_LEVEL} and 100"
                    ));
                }
            },
        };
        let independence = match fields.get("energy_independence").map(Value::as_str) {
            None => None,
            Some(Some("enabled")) => Some(true),
            Some(Some("disabled")) => Some(false),
            Some(_) => return bad_request("energy_independence must be enabled or disabled"),
        };
        if mode.is_none() && reserve.is_none() && independence.is_none() {
            return bad_request("No battery settings to update");
        }
        let config = s.settings.entry(id).or_default();
        if let Some(flag) = independence {
            config.energy_independence = flag;
        }
        let charge_from_grid = config.charge_from_grid;
        let mut commands = Vec::new();
        if let Some(mode) = mode {
            commands.push(WorldCommand::SetBatteryMode(world_mode(mode, charge_from_grid)));
        }
        if let Some(reserve) = reserve {
            commands.push(WorldCommand::SetBatteryReserve(reserve));
        }
        for battery in &view.batteries {
            for command in &commands {
                match self.world.command(WORLD_VENDOR, &battery.id, command.clone()) {
                    Ok(_) | Err(CommandRejected::AlreadySet) => {}
                    Err(CommandRejected::Offline) => {
                        return unprocessable("System is not communicating with Enlighten");
                    }
                    Err(CommandRejected::InvalidValue(why)) => return bad_request(&why),
                    Err(CommandRejected::UnknownDevice { .. }) => {
                        return not_found("System not found");
                    }
                    Err(other) => return unprocessable(&other.to_string()),
                }
            }
        }
        let first = &view.batteries[0];
        let shown = mode.or_else(|| enphase_mode_of(first.mode));
        ok(json!({
            "system_id": id,
            "battery_mode": shown.map(EnphaseBatteryMode::echo_spelling),
            "reserve_soc": int(reserve.unwrap_or(first.reserve_pct)),
            "energy_independence": enabled(s.settings.get(&id).is_some_and(|c| c.energy_independence)),
        }))
    }
}

/// Admits one request of `app` now, or answers its plan's 429.
fn admit(app: &mut App, now: DateTime<Utc>) -> Option<Response> {
    let plan = app.app.plan;
    let u = &mut app.usage;
    let minute = now.timestamp().div_euclid(60) * 60;
    if u.minute != minute {
        u.minute = minute;
        u.minute_count = 0;
    }
    let month = (now.year(), now.month());
    if u.month != month {
        u.month = month;
        u.month_count = 0;
    }
    if u.month_count >= plan.per_month() {
        let start = Utc.with_ymd_and_hms(month.0, month.1, 1, 0, 0, 0).single();
        let (next_y, next_m) =
            if month.1 == 12 { (month.0 + 1, 1) } else { (month.0, month.1 + 1) };
        let end = Utc.with_ymd_and_hms(next_y, next_m, 1, 0, 0, 0).single();
        let (start, end) = (start.map_or(0, |t| t.timestamp()), end.map_or(0, |t| t.timestamp()));
        return Some(too_many_requests(plan, "month", start, end, plan.per_month()));
    }
    if u.minute_count >= plan.per_minute() {
        return Some(too_many_requests(plan, "minute", minute, minute + 60, plan.per_minute()));
    }
    u.minute_count += 1;
    u.month_count += 1;
    None
}

fn devices(id: u64, view: &SiteView, now: DateTime<Utc>) -> Response {
    let at = now.timestamp();
    let base = id % 100_000_000;
    let status = |online: bool| if online { "normal" } else { "comm" };
    let mut next_id = id * 100;
    let mut device_id = || {
        next_id += 1;
        next_id
    };
    let gateway_online = view.gateway_online();
    let gateways = vec![json!({
        "id": device_id(),
        "last_report_at": at,
        "name": "IQ Gateway",
        "serial_number": format!("1221{base:08}"),
        "part_number": "800-00654-r08",
        "sku": "SC100G-M230ROW",
        "model": "IQ Gateway",
        "status": status(gateway_online),
        "active": true,
        "emu_sw_version": "D8.2.4264",
    })];
    let mut micros = Vec::new();
    for (k, inverter) in view.inverters.iter().enumerate() {
        for m in 0..micros_of(inverter.capacity_w) {
            micros.push(json!({
                "id": device_id(),
                "last_report_at": at,
                "name": "IQ8+ Microinverter",
                "serial_number": format!("4822{base:08}{k:01}{m:02}"),
                "part_number": "800-01391-r03",
                "sku": "IQ8PLUS-72-M-INT",
                "model": "IQ8+",
                "status": status(inverter.online),
                "active": true,
            }));
        }
    }
    let mut meters = Vec::new();
    if !view.inverters.is_empty() {
        meters.push(json!({
            "id": device_id(),
            "last_report_at": at,
            "name": "production",
            "serial_number": format!("1221{base:08}EIM1"),
            "part_number": "800-00654-r08",
            "model": "Envoy-S-Metered",
            "status": status(gateway_online),
            "active": true,
            "state": "enabled",
            "config_type": "production",
        }));
    }
    for meter in &view.meters {
        meters.push(json!({
            "id": device_id(),
            "last_report_at": at,
            "name": "consumption",
            "serial_number": format!("1221{base:08}EIM2"),
            "part_number": "800-00654-r08",
            "model": "Envoy-S-Metered",
            "status": status(meter.online),
            "active": true,
            "state": "enabled",
            "config_type": "net-consumption",
        }));
    }
    let mut encharges = Vec::new();
    for (k, battery) in view.batteries.iter().enumerate() {
        encharges.push(json!({
            "id": device_id(),
            "last_report_at": at,
            "name": "IQ Battery 5P",
            "serial_number": format!("4823{base:08}{k:02}"),
            "part_number": "836-01510-r01",
            "sku": "IQBATTERY-5P-1P-INT",
            "model": "IQ Battery 5P",
            "status": status(battery.online),
            "active": true,
        }));
    }
    let total = gateways.len() + micros.len() + meters.len() + encharges.len();
    ok(json!({
        "system_id": id,
        "total_devices": total,
        "items": "devices",
        "devices": {
            "micros": micros,
            "meters": meters,
            "gateways": gateways,
            "encharges": encharges,
        },
    }))
}

fn battery_settings(s: &mut SimState, id: u64, view: &SiteView) -> Response {
    let Some(first) = view.batteries.first() else {
        return unprocessable("System doesn't have encharge");
    };
    let mode = match enphase_mode_of(first.mode) {
        Some(m) => m.get_spelling().to_owned(),
        None => first.mode.as_str().to_owned(),
    };
    let config = s.settings.entry(id).or_default();
    ok(json!({
        "system_id": id,
        "battery_mode": mode,
        "reserve_soc": int(first.reserve_pct),
        "energy_independence": enabled(config.energy_independence),
        "charge_from_grid": enabled(config.charge_from_grid),
        "battery_shutdown_level": int(BATTERY_SHUTDOWN_LEVEL),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_decoding() {
        let q = parse_query("a=1&redirect_uri=https%3A%2F%2Fx.example%2Fcb&b=x+y&c&d=%zz&e=%4");
        assert_eq!(q["a"], "1");
        assert_eq!(q["redirect_uri"], "https://x.example/cb");
        assert_eq!(q["b"], "x y");
        assert_eq!(q["c"], "");
        assert_eq!(q["d"], "%zz");
        assert_eq!(q["e"], "%4");
    }

    #[test]
    fn world_modes() {
        assert_eq!(world_mode(EnphaseBatteryMode::FullBackup, true), BatteryMode::ImportFocus);
        assert_eq!(world_mode(EnphaseBatteryMode::FullBackup, false), BatteryMode::Backup);
        for mode in [BatteryMode::SelfReliance, BatteryMode::TimeOfUse, BatteryMode::Backup] {
            let e = enphase_mode_of(mode).unwrap();
            assert_eq!(world_mode(e, false), mode);
        }
        assert_eq!(enphase_mode_of(BatteryMode::Idle), None);
    }

    #[test]
    fn integers() {
        assert_eq!(int(1.5), 2);
        assert_eq!(int(-1.5), -2);
        assert_eq!(int(f64::NAN), 0);
        assert_eq!(micros_of(6000.0), 18);
        assert_eq!(micros_of(0.0), 1);
    }
}
