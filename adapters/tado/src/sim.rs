//! A simulator of tado's cloud (API v2 and the device-code OAuth server) over
//! `oemgate_sim::World`, as an axum [`Router`] meant to be mounted under [`PREFIX`] (`/tado`)
//! of an `oemgate_sim::SimHost`.
//!
//! ```no_run
//! # async fn demo(world: oemgate_sim::World) -> anyhow::Result<()> {
//! use oemgate_tado::sim::{TadoSim, PREFIX};
//! use oemgate_tado::{TadoAdapter, TadoConfig};
//! let sim = TadoSim::new(world.clone());
//! let mut host = oemgate_sim::SimHost::new(world.clock());
//! host.mount(PREFIX, sim.router())?;
//! # let base = String::new();
//! let adapter = TadoAdapter::new(TadoConfig::new().for_base_url(&base), world.clock());
//! // A household has a tado account; linking is tado's device-code flow:
//! let link = sim.create_account(&world.sites());
//! let auth = adapter.start_device_authorization().await?;
//! // The user logs in at verification_uri_complete and approves (here: directly).
//! sim.approve_device(&auth.user_code, &link.username, &link.password);
//! let credentials = adapter.exchange_device_code(&auth.device_code).await?;
//! # let _ = credentials; Ok(()) }
//! ```
//!
//! # What it serves (paths below the mount prefix)
//!
//! - `POST /oauth2/device_authorize?client_id=..&scope=offline_access`: a device code (valid
//!   [`DEVICE_CODE_LIFETIME`], `interval` [`POLL_INTERVAL`]) and a user code.
//! - `GET /oauth2/device?user_code=..` (the `verification_uri_complete`): a login page;
//!   `POST /oauth2/device` with the form `user_code`, `username`, `password` approves the code
//!   (or [`TadoSim::approve_device`]).
//! - `POST /oauth2/token` (form body or query): `grant_type=urn:ietf:params:oauth:grant-type:
//!   device_code` (`authorization_pending`, `slow_down` when polled faster than the interval,
//!   `expired_token`, `access_denied`) and `grant_type=refresh_token`. Access tokens live
//!   [`ACCESS_TOKEN_LIFETIME`] (`expires_in` 599); refresh tokens are single-use (each refresh
//!   returns a new one) and live [`REFRESH_TOKEN_LIFETIME`]. Every grant needs tado's client id.
//! - `GET /api/v2/me`, `/homes/{homeId}`, `/homes/{homeId}/zones`, `/homes/{homeId}/zoneStates`,
//!   `/homes/{homeId}/zones/{zoneId}/state`, `/homes/{homeId}/zones/{zoneId}/capabilities`, and
//!   `GET|PUT|DELETE /homes/{homeId}/zones/{zoneId}/overlay`.
//!
//! # The world as tado sees it
//!
//! Each world site given to an account ([`TadoSim::create_account`]) is a tado *home*; each of
//! its HVAC units of vendor [`WORLD_VENDOR`] (`tado`) is a **heating zone** (zone ids 1, 2, …
//! in the order the sim first sees them, stable). A home can also get a vendor-side hot-water
//! zone ([`TadoSim::add_hot_water_zone`]), which the world does not model.
//!
//! A zone's setting is the world unit's: mode `HEAT` (and `AUTO`, whose heating half is all a
//! radiator can do) is power `ON` at the heat setpoint, `OFF` (and `COOL`) is power `OFF`.
//! A world unit on a permanent hold shows a `MANUAL` overlay; one that follows its schedule
//! has no overlay and a `nextScheduleChange` from the world's day/night schedule. The heating
//! power is 0 % while the unit idles and grows with the distance to the setpoint while it
//! heats. While the world unit is offline, `link.state` is `OFFLINE` and the inside
//! temperature is the last one read while it was online (with its old timestamp).
//!
//! Overlays go to the world as commands (so its command latency applies): a `PUT` with power
//! `ON` is `SetHvacHold { HEAT, celsius }`, with power `OFF` `SetHvacHold { OFF }`, a `DELETE`
//! is `HvacFollowSchedule`; tado accepts both even when nothing changes. The world has no
//! temporary holds, so `TIMER` and `NEXT_TIME_BLOCK` terminations are kept vendor-side and
//! ended lazily: the first request to the home after the expiry sends `HvacFollowSchedule`.
//! An overlay for an offline zone is refused with 422 `zoneOffline` (a simulator decision: the
//! world cannot hold it until the zone is back).
//!
//! # Quota
//!
//! Each account may make [`oemgate_tado::TadoTier::daily_quota`](crate::TadoTier::daily_quota)
//! API requests per UTC day (100 free, 20 000 with Auto-Assist; [`TadoSim::set_tier`]). Every
//! API answer carries `RateLimit-Policy: "perday";q=<quota>;w=86400` and
//! `RateLimit: "perday";r=<left>`; over quota the answer is 429 with `RateLimit:
//! "perday";r=0;t=<seconds to midnight UTC>` and no `Retry-After`. OAuth calls do not count.
//!
//! # Faults
//!
//! `world.faults().active("tado")` (or `"TADO"`) is rendered in tado's style on every route:
//! `RateLimit` as a 429 with `Retry-After` and `RateLimit: "perday";r=0;t=<retry_after>`;
//! `ServerError` 500 as tado's JSON error and 502/503/504 as the load balancer's HTML page;
//! `Outage` as a 503 HTML page; `Hang` waits, then answers; `Timeout` holds the request for
//! `TIMEOUT_HANG`, then 504; `Malformed` is a 200 HTML maintenance page; `Truncated` the right
//! body cut in half; `RevokeTokens` invalidates every token on the next request (401 on the
//! API like an expired token, `invalid_grant` on refresh).

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
use chrono::{DateTime, Utc};
use oemgate_core::Clock;
use oemgate_sim::rng::{hash, hash_str};
use oemgate_sim::{
    CommandRejected, DeviceId, DeviceKind, Fault, HvacActivity, HvacHold, HvacMode, HvacSchedule,
    HvacState, SiteId, TIMEOUT_HANG, World, WorldCommand,
};
use serde_json::{Value, json};

use crate::TadoTier;
use crate::map::{HEAT_SETPOINT_MAX_C, HEAT_SETPOINT_MIN_C, fahrenheit_to_celsius};

/// Where the simulator expects to be mounted.
pub const PREFIX: &str = "/tado";
/// The vendor name of tado devices in the world (and of its command latency).
pub const WORLD_VENDOR: &str = "tado";
/// The vendor name faults are looked up by (`"TADO"` works too).
pub const FAULT_VENDOR: &str = "tado";
/// How long an access token works (tado: 10 minutes; `expires_in` says 599).
pub const ACCESS_TOKEN_LIFETIME: Duration = Duration::from_secs(600);
/// How long a refresh token works (30 days; unconfirmed).
pub const REFRESH_TOKEN_LIFETIME: Duration = Duration::from_secs(30 * 86_400);
/// How long a device code can be approved and exchanged.
pub const DEVICE_CODE_LIFETIME: Duration = Duration::from_secs(300);
/// The polling interval a device authorization asks for.
pub const POLL_INTERVAL: Duration = Duration::from_secs(5);

const DAY_SECS: i64 = 86_400;

/// How the simulator behaves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TadoSimConfig {
    /// The OAuth client id every grant must carry (tado's public device-flow client).
    pub client_id: String,
    /// The tier new accounts get.
    pub default_tier: TadoTier,
    /// Access-token lifetime.
    pub access_token_lifetime: Duration,
    /// Refresh-token lifetime.
    pub refresh_token_lifetime: Duration,
}

impl Default for TadoSimConfig {
    fn default() -> Self {
        Self {
            client_id: crate::DEFAULT_CLIENT_ID.to_owned(),
            default_tier: TadoTier::Free,
            access_token_lifetime: ACCESS_TOKEN_LIFETIME,
            refresh_token_lifetime: REFRESH_TOKEN_LIFETIME,
        }
    }
}

/// What a user has when linking a tado account: the login they type when approving the device
/// code at `verification_uri_complete`, and their homes.
#[derive(Clone, PartialEq, Eq)]
pub struct TadoLink {
    /// tado's user id.
    pub user_id: String,
    /// The login (an e-mail address).
    pub username: String,
    /// The password.
    pub password: String,
    /// The account's homes (one per site given).
    pub home_ids: Vec<u64>,
}

impl fmt::Debug for TadoLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TadoLink")
            .field("user_id", &self.user_id)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("home_ids", &self.home_ids)
            .finish()
    }
}

#[derive(Debug, Default)]
struct Usage {
    day: i64,
    count: u32,
}

#[derive(Debug)]
struct Account {
    name: String,
    username: String,
    password: String,
    homes: Vec<u64>,
    tier: TadoTier,
    usage: Usage,
}

#[derive(Debug, Clone)]
enum ZoneKind {
    Heating(DeviceId),
    HotWater { power_on: bool, overlay: bool },
}

#[derive(Debug, Clone)]
struct ZoneEntry {
    id: u64,
    kind: ZoneKind,
    created: DateTime<Utc>,
}

#[derive(Debug)]
struct Home {
    site: SiteId,
    zones: Vec<ZoneEntry>,
    next_zone: u64,
}

#[derive(Debug)]
struct DeviceCode {
    user_code: String,
    expires_at: DateTime<Utc>,
    approved_by: Option<String>,
    denied: bool,
    spent: bool,
    interval_secs: i64,
    next_poll_at: DateTime<Utc>,
}

#[derive(Debug)]
struct Token {
    user_id: String,
    expires_at: DateTime<Utc>,
    revoked: bool,
    spent: bool,
}

/// A temporary overlay the world cannot hold by itself.
#[derive(Debug, Clone, Copy)]
struct TemporaryOverlay {
    timer_secs: Option<u64>,
    expires_at: DateTime<Utc>,
}

/// The last inside temperature read while a zone was online.
#[derive(Debug, Clone, Copy)]
struct Snapshot {
    indoor_c: f64,
    at: DateTime<Utc>,
}

#[derive(Debug)]
struct SimState {
    config: TadoSimConfig,
    accounts: BTreeMap<String, Account>,
    homes: BTreeMap<u64, Home>,
    by_site: HashMap<SiteId, u64>,
    device_codes: HashMap<String, DeviceCode>,
    access: HashMap<String, Token>,
    refresh: HashMap<String, Token>,
    temporary: HashMap<DeviceId, TemporaryOverlay>,
    snapshots: HashMap<DeviceId, Snapshot>,
    serial: u64,
    next_user: u64,
}

/// The simulated tado cloud. Cheap to clone; clones share everything.
#[derive(Clone)]
pub struct TadoSim {
    world: World,
    clock: Arc<dyn Clock>,
    state: Arc<Mutex<SimState>>,
}

impl fmt::Debug for TadoSim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.lock();
        f.debug_struct("TadoSim")
            .field("accounts", &s.accounts.len())
            .field("homes", &s.homes.len())
            .finish_non_exhaustive()
    }
}

// ---- responses ----------------------------------------------------------------------------

fn json_response(status: StatusCode, body: &Value) -> Response {
    let mut response = (status, body.to_string()).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json;charset=UTF-8"));
    response
}

fn ok(body: &Value) -> Response {
    json_response(StatusCode::OK, body)
}

/// tado's API error shape.
fn api_error(status: StatusCode, code: &str, title: &str) -> Response {
    json_response(status, &json!({ "errors": [{ "code": code, "title": title }] }))
}

fn unauthorized() -> Response {
    api_error(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "Full authentication is required to access this resource",
    )
}

fn not_found(title: &str) -> Response {
    api_error(StatusCode::NOT_FOUND, "notFound", title)
}

fn access_denied() -> Response {
    api_error(StatusCode::FORBIDDEN, "accessDenied", "Access denied")
}

fn invalid(title: &str) -> Response {
    api_error(StatusCode::UNPROCESSABLE_ENTITY, "invalidSetting", title)
}

fn method_not_allowed() -> Response {
    api_error(StatusCode::METHOD_NOT_ALLOWED, "methodNotAllowed", "Request method not supported")
}

/// The OAuth error shape of login.tado.com.
fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    json_response(status, &json!({ "error": error, "error_description": description }))
}

fn html(status: StatusCode, title: &str, text: &str) -> Response {
    let page = format!(
        "<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n<center><h1>{title}</h1>\
         </center>\r\n<p>{text}</p>\r\n</body>\r\n</html>\r\n"
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
        502 => html(status, "502 Bad Gateway", ""),
        503 => html(status, "503 Service Temporarily Unavailable", ""),
        504 => html(status, "504 Gateway Time-out", ""),
        _ => api_error(status, "internalServerError", "An internal server error occurred"),
    }
}

fn set_header(response: &mut Response, name: &'static str, value: String) {
    if let Ok(v) = HeaderValue::from_str(&value) {
        response.headers_mut().insert(name, v);
    }
}

fn quota_headers(response: &mut Response, quota: u32, remaining: u32, reset: Option<i64>) {
    set_header(response, "ratelimit-policy", format!("\"perday\";q={quota};w={DAY_SECS}"));
    let mut value = format!("\"perday\";r={remaining}");
    if let Some(t) = reset {
        value.push_str(&format!(";t={t}"));
    }
    set_header(response, "ratelimit", value);
}

fn too_many_requests(quota: u32, reset_secs: i64, retry_after: Option<i64>) -> Response {
    let mut response = api_error(
        StatusCode::TOO_MANY_REQUESTS,
        "tooManyRequests",
        "The daily request limit of this account is used up",
    );
    quota_headers(&mut response, quota, 0, Some(reset_secs));
    if let Some(after) = retry_after {
        set_header(&mut response, "retry-after", after.to_string());
    }
    response
}

// ---- helpers ------------------------------------------------------------------------------

fn parse_query(q: &str) -> BTreeMap<String, String> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (url_decode(k), url_decode(v))
        })
        .collect()
}

/// Query parameters, completed by a form body.
fn params(uri: &Uri, body: &[u8]) -> BTreeMap<String, String> {
    let mut params = parse_query(uri.query().unwrap_or(""));
    if let Ok(form) = std::str::from_utf8(body) {
        for (k, v) in parse_query(form.trim()) {
            params.entry(k).or_insert(v);
        }
    }
    params
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer ")).map(str::trim)
}

fn plus(t: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(d)
        .ok()
        .and_then(|d| t.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

fn round_to(x: f64, decimals: i32) -> f64 {
    let f = 10f64.powi(decimals);
    (x * f).round() / f
}

fn celsius_to_fahrenheit(c: f64) -> f64 {
    c * 9.0 / 5.0 + 32.0
}

fn temperature(c: f64) -> Value {
    json!({ "celsius": round_to(c, 2), "fahrenheit": round_to(celsius_to_fahrenheit(c), 2) })
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// A heating setting for a world mode and heat setpoint.
fn heating_setting(mode: HvacMode, heat_c: f64) -> Value {
    match mode {
        HvacMode::Heat | HvacMode::Auto => json!({
            "type": "HEATING",
            "power": "ON",
            "temperature": temperature(round_to(heat_c, 1)),
        }),
        HvacMode::Off | HvacMode::Cool => {
            json!({ "type": "HEATING", "power": "OFF", "temperature": null })
        }
    }
}

/// The local hour of `t` at a fixed UTC offset.
fn local_hour(t: DateTime<Utc>, offset_min: i32) -> f64 {
    let secs = (t.timestamp() + i64::from(offset_min) * 60).rem_euclid(DAY_SECS);
    secs as f64 / 3600.0
}

/// The next instant after `now` at which the schedule switches (day or night start).
fn next_switch(now: DateTime<Utc>, offset_min: i32, schedule: &HvacSchedule) -> DateTime<Utc> {
    let hour = local_hour(now, offset_min);
    let ahead = |start: f64| {
        let start = start.rem_euclid(24.0);
        let mut d = start - hour;
        if d <= 1e-9 {
            d += 24.0;
        }
        d
    };
    let hours = ahead(schedule.day_start_hour).min(ahead(schedule.night_start_hour));
    let secs = (hours * 3600.0).round();
    // At most a day ahead, so the cast cannot overflow.
    #[allow(clippy::cast_possible_truncation)]
    let secs = secs as i64;
    now + chrono::Duration::seconds(secs.max(1))
}

fn secs_to_next_midnight(now: DateTime<Utc>) -> i64 {
    let into = now.timestamp().rem_euclid(DAY_SECS);
    DAY_SECS - into
}

/// The serial number of a world unit's radiator thermostat.
fn serial_of(id: &DeviceId) -> String {
    format!("VA{:010}", hash_str(id.as_str()) % 10_000_000_000)
}

struct Admitted {
    user_id: String,
    quota: u32,
    remaining: u32,
}

async fn handle(
    State(sim): State<TadoSim>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    sim.apply_revocation();
    let fault = sim.active_fault();
    match &fault {
        Some(Fault::RateLimit { retry_after }) => {
            let secs = i64::try_from(retry_after.as_secs()).unwrap_or(i64::MAX / 2);
            let secs = if retry_after.subsec_nanos() > 0 { secs + 1 } else { secs };
            let quota = sim.lock().config.default_tier.daily_quota();
            return too_many_requests(quota, secs, Some(secs));
        }
        Some(Fault::ServerError { status }) => return server_error(*status),
        Some(Fault::Outage) => {
            return html(
                StatusCode::SERVICE_UNAVAILABLE,
                "503 Service Temporarily Unavailable",
                "",
            );
        }
        Some(Fault::Hang { .. }) => {
            if let Some(wait) = fault.as_ref().and_then(|f| f.hang_real(sim.clock.as_ref())) {
                tokio::time::sleep(wait).await;
            }
        }
        Some(Fault::Timeout) => {
            tokio::time::sleep(TIMEOUT_HANG).await;
            return html(StatusCode::GATEWAY_TIMEOUT, "504 Gateway Time-out", "");
        }
        Some(Fault::Malformed) => {
            return html(
                StatusCode::OK,
                "tado° maintenance",
                "We are performing scheduled maintenance. Please try again later.",
            );
        }
        Some(Fault::Truncated | Fault::RevokeTokens) | None => {}
    }
    let response = sim.route(&method, &uri, &headers, &body);
    if matches!(fault, Some(Fault::Truncated)) { truncate(response).await } else { response }
}

impl TadoSim {
    /// A simulator over `world` with the default configuration (tado's client id, new
    /// accounts on the free tier).
    pub fn new(world: World) -> Self {
        Self::with_config(world, TadoSimConfig::default())
    }

    /// A simulator over `world` with `config`.
    pub fn with_config(world: World, config: TadoSimConfig) -> Self {
        let clock = world.clock();
        let state = SimState {
            config,
            accounts: BTreeMap::new(),
            homes: BTreeMap::new(),
            by_site: HashMap::new(),
            device_codes: HashMap::new(),
            access: HashMap::new(),
            refresh: HashMap::new(),
            temporary: HashMap::new(),
            snapshots: HashMap::new(),
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

    fn new_secret(s: &mut SimState, seed: u64, kind: u64) -> String {
        s.serial += 1;
        let a = hash(&[seed, kind, s.serial]);
        let b = hash(&[a, s.serial, 0x7AD0]);
        format!("{a:016x}{b:016x}")
    }

    fn home_of(s: &mut SimState, site: &SiteId) -> u64 {
        if let Some(id) = s.by_site.get(site) {
            return *id;
        }
        let digits: String = site.as_str().chars().filter(char::is_ascii_digit).collect();
        let mut id = match digits.parse::<u64>() {
            Ok(n) if n < 1_000_000 => 1_000_000 + n,
            _ => 10_000_000 + hash_str(site.as_str()) % 80_000_000,
        };
        while s.homes.contains_key(&id) {
            id += 1;
        }
        s.homes.insert(id, Home { site: site.clone(), zones: Vec::new(), next_zone: 1 });
        s.by_site.insert(site.clone(), id);
        id
    }

    /// Gives every tado HVAC unit of the home's site a zone id (new units get the next ids).
    fn sync_home(&self, s: &mut SimState, home: u64, now: DateTime<Utc>) {
        let Some(site) = s.homes.get(&home).map(|h| h.site.clone()) else { return };
        let units: Vec<DeviceId> = self
            .world
            .devices_of_site(&site)
            .into_iter()
            .filter(|d| d.kind == DeviceKind::Hvac && d.vendor == WORLD_VENDOR)
            .map(|d| d.id)
            .collect();
        let Some(h) = s.homes.get_mut(&home) else { return };
        for unit in units {
            let known =
                h.zones.iter().any(|z| matches!(&z.kind, ZoneKind::Heating(id) if *id == unit));
            if !known {
                h.zones.push(ZoneEntry {
                    id: h.next_zone,
                    kind: ZoneKind::Heating(unit),
                    created: now,
                });
                h.next_zone += 1;
            }
        }
    }

    /// The home id a site is exposed as (assigned on first use, stable for a seed).
    pub fn home_id(&self, site: &SiteId) -> u64 {
        let now = self.clock.now();
        let mut s = self.lock();
        let home = Self::home_of(&mut s, site);
        self.sync_home(&mut s, home, now);
        home
    }

    /// The home and zone ids a world HVAC unit of vendor `tado` is exposed as.
    pub fn zone_id(&self, device: &DeviceId) -> Option<(u64, u64)> {
        let info = self.world.device_info(device)?;
        if info.kind != DeviceKind::Hvac || info.vendor != WORLD_VENDOR {
            return None;
        }
        let home = self.home_id(&info.site);
        let s = self.lock();
        let zone = s.homes.get(&home)?.zones.iter().find_map(|z| match &z.kind {
            ZoneKind::Heating(id) if id == device => Some(z.id),
            _ => None,
        })?;
        Some((home, zone))
    }

    /// The adapter's vendor id of a world unit (`"{homeId}:{zoneId}"`).
    pub fn vendor_id(&self, device: &DeviceId) -> Option<String> {
        self.zone_id(device).map(|(home, zone)| crate::map::vendor_id(home, zone))
    }

    /// Adds a vendor-side hot-water zone to the site's home (not an HVAC unit; discovery
    /// skips it). Returns its zone id.
    pub fn add_hot_water_zone(&self, site: &SiteId) -> u64 {
        let now = self.clock.now();
        let mut s = self.lock();
        let home = Self::home_of(&mut s, site);
        self.sync_home(&mut s, home, now);
        let Some(h) = s.homes.get_mut(&home) else { return 0 };
        let id = h.next_zone;
        h.next_zone += 1;
        h.zones.push(ZoneEntry {
            id,
            kind: ZoneKind::HotWater { power_on: true, overlay: false },
            created: now,
        });
        id
    }

    /// Creates a tado account (on the configured default tier) whose homes are `sites`, and
    /// returns the login its user types when approving a device code.
    pub fn create_account(&self, sites: &[SiteId]) -> TadoLink {
        let tier = self.lock().config.default_tier;
        self.create_account_with_tier(sites, tier)
    }

    /// Like [`TadoSim::create_account`], on `tier`.
    pub fn create_account_with_tier(&self, sites: &[SiteId], tier: TadoTier) -> TadoLink {
        let now = self.clock.now();
        let seed = self.world.seed();
        let names: Vec<String> = sites
            .iter()
            .map(|site| self.world.site(site).map_or_else(|| "Home".to_owned(), |st| st.name))
            .collect();
        let mut s = self.lock();
        s.next_user += 1;
        let user_id = format!("{:016x}", hash(&[seed, 0x05E2, s.next_user]));
        let username = format!("tado-user{}@example.invalid", s.next_user);
        let password = Self::new_secret(&mut s, seed, 3);
        let mut home_ids = Vec::new();
        for site in sites {
            let home = Self::home_of(&mut s, site);
            self.sync_home(&mut s, home, now);
            if !home_ids.contains(&home) {
                home_ids.push(home);
            }
        }
        let name = names.first().cloned().unwrap_or_else(|| "tado user".to_owned());
        s.accounts.insert(
            user_id.clone(),
            Account {
                name,
                username: username.clone(),
                password: password.clone(),
                homes: home_ids.clone(),
                tier,
                usage: Usage::default(),
            },
        );
        TadoLink { user_id, username, password, home_ids }
    }

    /// Changes an account's tier (its daily quota).
    pub fn set_tier(&self, user_id: &str, tier: TadoTier) {
        if let Some(a) = self.lock().accounts.get_mut(user_id) {
            a.tier = tier;
        }
    }

    /// Sets how many API requests the account made today (to test the quota).
    pub fn set_quota_used(&self, user_id: &str, used: u32) {
        let day = self.clock.now().timestamp().div_euclid(DAY_SECS);
        if let Some(a) = self.lock().accounts.get_mut(user_id) {
            a.usage = Usage { day, count: used };
        }
    }

    /// API requests the account made today.
    pub fn quota_used(&self, user_id: &str) -> u32 {
        let day = self.clock.now().timestamp().div_euclid(DAY_SECS);
        self.lock()
            .accounts
            .get(user_id)
            .filter(|a| a.usage.day == day)
            .map_or(0, |a| a.usage.count)
    }

    /// The browser step of the device-code flow: the user logs in and approves `user_code`.
    /// `false` for an unknown, expired or already used code or a wrong login.
    pub fn approve_device(&self, user_code: &str, username: &str, password: &str) -> bool {
        let now = self.clock.now();
        let mut guard = self.lock();
        let s = &mut *guard;
        let Some(user) = s
            .accounts
            .iter()
            .find(|(_, a)| a.username == username && a.password == password)
            .map(|(id, _)| id.clone())
        else {
            return false;
        };
        let code = s.device_codes.values_mut().find(|c| {
            c.user_code.eq_ignore_ascii_case(user_code.trim()) && !c.spent && now < c.expires_at
        });
        match code {
            Some(c) if !c.denied => {
                c.approved_by = Some(user);
                true
            }
            _ => false,
        }
    }

    /// The user declines `user_code` in the browser.
    pub fn deny_device(&self, user_code: &str) -> bool {
        let mut s = self.lock();
        match s.device_codes.values_mut().find(|c| c.user_code == user_code && !c.spent) {
            Some(c) => {
                c.denied = true;
                true
            }
            None => false,
        }
    }

    /// Makes every access token expired now (their refresh tokens still work).
    pub fn expire_access_tokens(&self) {
        let now = self.clock.now();
        for token in self.lock().access.values_mut() {
            token.expires_at = token.expires_at.min(now);
        }
    }

    /// Revokes every token of a user (they logged out everywhere or changed the password).
    pub fn revoke_account(&self, user_id: &str) {
        let mut guard = self.lock();
        let s = &mut *guard;
        for token in s.access.values_mut().chain(s.refresh.values_mut()) {
            if token.user_id == user_id {
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

    fn apply_revocation(&self) {
        let faults = self.world.faults();
        let due = faults.take_revocation(FAULT_VENDOR) | faults.take_revocation("TADO");
        if due {
            self.revoke_all_tokens();
        }
    }

    fn active_fault(&self) -> Option<Fault> {
        let faults = self.world.faults();
        faults.active(FAULT_VENDOR).or_else(|| faults.active("TADO"))
    }

    fn route(&self, method: &Method, uri: &Uri, headers: &HeaderMap, body: &[u8]) -> Response {
        let now = self.clock.now();
        let segments: Vec<&str> = uri.path().split('/').filter(|s| !s.is_empty()).collect();
        match segments.as_slice() {
            ["oauth2", "device_authorize"] if method == Method::POST => {
                self.device_authorize(&params(uri, body), headers, now)
            }
            ["oauth2", "token"] if method == Method::POST => self.token(&params(uri, body), now),
            ["oauth2", "device"] if method == Method::GET => {
                let user_code = params(uri, body).get("user_code").cloned().unwrap_or_default();
                login_page(&user_code)
            }
            ["oauth2", "device"] if method == Method::POST => {
                let p = params(uri, body);
                let get = |k: &str| p.get(k).map(String::as_str).unwrap_or("");
                if self.approve_device(get("user_code"), get("username"), get("password")) {
                    html(StatusCode::OK, "Device connected", "You can close this window.")
                } else {
                    html(StatusCode::UNAUTHORIZED, "Login failed", "Wrong login or code.")
                }
            }
            ["oauth2", ..] => oauth_error(StatusCode::NOT_FOUND, "not_found", "Not found"),
            ["api", "v2", rest @ ..] => self.api(method, rest, headers, body, now),
            _ => not_found("The requested resource was not found"),
        }
    }

    // ---- OAuth -------------------------------------------------------------------------

    fn device_authorize(
        &self,
        p: &BTreeMap<String, String>,
        headers: &HeaderMap,
        now: DateTime<Utc>,
    ) -> Response {
        let seed = self.world.seed();
        let mut s = self.lock();
        if p.get("client_id") != Some(&s.config.client_id) {
            return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", "Invalid client_id");
        }
        let device_code = Self::new_secret(&mut s, seed, 20);
        const ALPHABET: &[u8] = b"BCDFGHJKLMNPQRSTVWXZ23456789";
        let mut x = hash(&[seed, 21, s.serial]);
        let user_code: String = (0..6)
            .map(|_| {
                let c = ALPHABET[(x % ALPHABET.len() as u64) as usize];
                x /= ALPHABET.len() as u64;
                char::from(c)
            })
            .collect();
        let interval = i64::try_from(POLL_INTERVAL.as_secs()).unwrap_or(5);
        s.device_codes.insert(
            device_code.clone(),
            DeviceCode {
                user_code: user_code.clone(),
                expires_at: plus(now, DEVICE_CODE_LIFETIME),
                approved_by: None,
                denied: false,
                spent: false,
                interval_secs: interval,
                next_poll_at: now,
            },
        );
        let host =
            headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("login.tado.com");
        let verification = format!("http://{host}{PREFIX}/oauth2/device");
        ok(&json!({
            "device_code": device_code,
            "expires_in": DEVICE_CODE_LIFETIME.as_secs(),
            "interval": interval,
            "user_code": user_code,
            "verification_uri": verification,
            "verification_uri_complete": format!("{verification}?user_code={user_code}"),
        }))
    }

    fn token(&self, p: &BTreeMap<String, String>, now: DateTime<Utc>) -> Response {
        let seed = self.world.seed();
        let mut guard = self.lock();
        let s = &mut *guard;
        let param = |k: &str| p.get(k).map(String::as_str).unwrap_or("");
        if param("client_id") != s.config.client_id {
            return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", "Invalid client_id");
        }
        let user_id = match param("grant_type") {
            crate::DEVICE_CODE_GRANT => {
                let Some(code) = s.device_codes.get_mut(param("device_code")) else {
                    return oauth_error(
                        StatusCode::BAD_REQUEST,
                        "invalid_grant",
                        "The device code is invalid",
                    );
                };
                if code.spent {
                    return oauth_error(
                        StatusCode::BAD_REQUEST,
                        "invalid_grant",
                        "The device code was already used",
                    );
                }
                if now >= code.expires_at {
                    return oauth_error(
                        StatusCode::BAD_REQUEST,
                        "expired_token",
                        "The device code has expired",
                    );
                }
                if code.denied {
                    return oauth_error(
                        StatusCode::BAD_REQUEST,
                        "access_denied",
                        "The user denied the request",
                    );
                }
                if let Some(user) = code.approved_by.clone() {
                    code.spent = true;
                    user
                } else if now < code.next_poll_at {
                    code.interval_secs += 5;
                    code.next_poll_at = now + chrono::Duration::seconds(code.interval_secs);
                    return oauth_error(
                        StatusCode::BAD_REQUEST,
                        "slow_down",
                        "The client is polling too fast",
                    );
                } else {
                    code.next_poll_at = now + chrono::Duration::seconds(code.interval_secs);
                    return oauth_error(
                        StatusCode::BAD_REQUEST,
                        "authorization_pending",
                        "The authorization request is still pending",
                    );
                }
            }
            "refresh_token" => {
                let Some(t) = s.refresh.get_mut(param("refresh_token")) else {
                    return oauth_error(
                        StatusCode::BAD_REQUEST,
                        "invalid_grant",
                        "The refresh token is invalid",
                    );
                };
                if t.revoked || t.spent || now >= t.expires_at {
                    return oauth_error(
                        StatusCode::BAD_REQUEST,
                        "invalid_grant",
                        "The refresh token is invalid or expired",
                    );
                }
                t.spent = true;
                t.user_id.clone()
            }
            other => {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "unsupported_grant_type",
                    &format!("Unsupported grant type {other:?}"),
                );
            }
        };
        let access = format!("eyJ{}", Self::new_secret(s, seed, 10));
        let refresh = Self::new_secret(s, seed, 11);
        let (access_life, refresh_life) =
            (s.config.access_token_lifetime, s.config.refresh_token_lifetime);
        let token = |lifetime| Token {
            user_id: user_id.clone(),
            expires_at: plus(now, lifetime),
            revoked: false,
            spent: false,
        };
        s.access.insert(access.clone(), token(access_life));
        s.refresh.insert(refresh.clone(), token(refresh_life));
        ok(&json!({
            "access_token": access,
            "expires_in": access_life.as_secs().saturating_sub(1),
            "refresh_token": refresh,
            "scope": "offline_access",
            "token_type": "Bearer",
            "userId": user_id,
        }))
    }

    // ---- API ---------------------------------------------------------------------------

    /// Authenticates and counts one API request against the account's daily quota.
    fn admit(
        s: &mut SimState,
        headers: &HeaderMap,
        now: DateTime<Utc>,
    ) -> Result<Admitted, Box<Response>> {
        let token = bearer(headers).ok_or_else(|| Box::new(unauthorized()))?;
        let user_id = match s.access.get(token) {
            Some(t) if !t.revoked && now < t.expires_at => t.user_id.clone(),
            _ => return Err(Box::new(unauthorized())),
        };
        let account = s.accounts.get_mut(&user_id).ok_or_else(|| Box::new(unauthorized()))?;
        let quota = account.tier.daily_quota();
        let day = now.timestamp().div_euclid(DAY_SECS);
        if account.usage.day != day {
            account.usage = Usage { day, count: 0 };
        }
        if account.usage.count >= quota {
            return Err(Box::new(too_many_requests(quota, secs_to_next_midnight(now), None)));
        }
        account.usage.count += 1;
        Ok(Admitted { user_id, quota, remaining: quota - account.usage.count })
    }

    fn api(
        &self,
        method: &Method,
        path: &[&str],
        headers: &HeaderMap,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Response {
        let mut guard = self.lock();
        let s = &mut *guard;
        let admitted = match Self::admit(s, headers, now) {
            Ok(a) => a,
            Err(response) => return *response,
        };
        let mut response = self.api_route(s, &admitted.user_id, method, path, body, now);
        quota_headers(&mut response, admitted.quota, admitted.remaining, None);
        response
    }

    fn api_route(
        &self,
        s: &mut SimState,
        user: &str,
        method: &Method,
        path: &[&str],
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Response {
        let get = method == Method::GET;
        if path == ["me"] {
            return if get { self.me(s, user) } else { method_not_allowed() };
        }
        let ["homes", home, rest @ ..] = path else {
            return not_found("The requested resource was not found");
        };
        let Some(home) = home.parse::<u64>().ok().filter(|h| s.homes.contains_key(h)) else {
            return not_found(&format!("home {home} not found"));
        };
        let mine = s.accounts.get(user).is_some_and(|a| a.homes.contains(&home));
        if !mine {
            return access_denied();
        }
        self.sync_home(s, home, now);
        self.expire_temporary(s, home, now);
        match rest {
            [] if get => self.home(s, home),
            ["zones"] if get => self.zones(s, home, now),
            ["zoneStates"] if get => self.zone_states(s, home, now),
            ["zones", zone, tail @ ..] => {
                let entry = zone.parse::<u64>().ok().and_then(|z| {
                    s.homes.get(&home).and_then(|h| h.zones.iter().find(|e| e.id == z)).cloned()
                });
                let Some(entry) = entry else {
                    return not_found(&format!("zone {zone} not found"));
                };
                match (tail, method.as_str()) {
                    (["state"], "GET") => ok(&self.zone_state(s, home, &entry, now)),
                    (["capabilities"], "GET") => ok(&capabilities(&entry)),
                    (["overlay"], "GET") => self.get_overlay(s, home, &entry, now),
                    (["overlay"], "PUT") => self.put_overlay(s, home, &entry, body, now),
                    (["overlay"], "DELETE") => self.delete_overlay(s, home, &entry),
                    (["state" | "capabilities" | "overlay"], _) => method_not_allowed(),
                    _ => not_found("The requested resource was not found"),
                }
            }
            [] | ["zones"] | ["zoneStates"] => method_not_allowed(),
            _ => not_found("The requested resource was not found"),
        }
    }

    fn me(&self, s: &SimState, user: &str) -> Response {
        let Some(account) = s.accounts.get(user) else { return unauthorized() };
        let homes: Vec<Value> = account
            .homes
            .iter()
            .map(|id| {
                let name = s
                    .homes
                    .get(id)
                    .and_then(|h| self.world.site(&h.site))
                    .map_or_else(|| "Home".to_owned(), |st| st.name);
                json!({ "id": id, "name": name })
            })
            .collect();
        ok(&json!({
            "name": account.name,
            "email": account.username,
            "username": account.username,
            "id": user,
            "homes": homes,
            "locale": "en_GB",
            "mobileDevices": [],
        }))
    }

    fn home(&self, s: &SimState, home: u64) -> Response {
        let Some(h) = s.homes.get(&home) else { return not_found("home not found") };
        let site = self.world.site(&h.site);
        ok(&json!({
            "id": home,
            "name": site.as_ref().map_or("Home", |st| st.name.as_str()),
            "dateTimeZone": site.as_ref().map_or("UTC", |st| st.timezone.as_str()),
            "temperatureUnit": "CELSIUS",
            "partner": null,
            "simpleSmartScheduleEnabled": true,
            "awayRadiusInMeters": 400.0,
            "installationCompleted": true,
            "zonesCount": h.zones.len(),
        }))
    }

    fn zones(&self, s: &SimState, home: u64, now: DateTime<Utc>) -> Response {
        let Some(h) = s.homes.get(&home) else { return not_found("home not found") };
        let zones: Vec<Value> = h
            .zones
            .iter()
            .map(|z| match &z.kind {
                ZoneKind::Heating(id) => {
                    let unit = self.world.hvac(id);
                    let online = unit.as_ref().is_some_and(|u| u.online);
                    let serial = serial_of(id);
                    json!({
                        "id": z.id,
                        "name": unit.as_ref().map_or("Heating", |u| u.name.as_str()),
                        "type": "HEATING",
                        "dateCreated": rfc3339(z.created),
                        "deviceTypes": ["VA02"],
                        "devices": [{
                            "deviceType": "VA02",
                            "serialNo": serial,
                            "shortSerialNo": serial,
                            "currentFwVersion": "57.2",
                            "connectionState": { "value": online, "timestamp": rfc3339(now) },
                            "characteristics": {
                                "capabilities": ["INSIDE_TEMPERATURE_MEASUREMENT", "IDENTIFY"]
                            },
                            "batteryState": "NORMAL",
                            "duties": ["ZONE_UI", "ZONE_DRIVER", "ZONE_LEADER"],
                        }],
                        "reportAvailable": false,
                        "supportsDazzle": true,
                        "dazzleEnabled": true,
                        "dazzleMode": { "supported": true, "enabled": true },
                        "openWindowDetection": {
                            "supported": true, "enabled": true, "timeoutInSeconds": 900
                        },
                    })
                }
                ZoneKind::HotWater { .. } => json!({
                    "id": z.id,
                    "name": "Hot Water",
                    "type": "HOT_WATER",
                    "dateCreated": rfc3339(z.created),
                    "deviceTypes": ["BU01"],
                    "devices": [{
                        "deviceType": "BU01",
                        "serialNo": format!("BU{:010}", home % 10_000_000_000),
                        "currentFwVersion": "81.1",
                        "connectionState": { "value": true, "timestamp": rfc3339(now) },
                        "characteristics": { "capabilities": [] },
                        "duties": ["ZONE_DRIVER"],
                    }],
                    "reportAvailable": false,
                    "supportsDazzle": false,
                    "dazzleEnabled": false,
                }),
            })
            .collect();
        ok(&Value::Array(zones))
    }

    fn zone_states(&self, s: &mut SimState, home: u64, now: DateTime<Utc>) -> Response {
        let entries: Vec<ZoneEntry> =
            s.homes.get(&home).map(|h| h.zones.clone()).unwrap_or_default();
        let mut states = serde_json::Map::new();
        for entry in &entries {
            states.insert(entry.id.to_string(), self.zone_state(s, home, entry, now));
        }
        ok(&json!({ "zoneStates": states }))
    }

    /// Ends vendor-side temporary overlays whose time is up (the world returns to its
    /// schedule after its command latency).
    fn expire_temporary(&self, s: &mut SimState, home: u64, now: DateTime<Utc>) {
        let Some(h) = s.homes.get(&home) else { return };
        let due: Vec<DeviceId> = h
            .zones
            .iter()
            .filter_map(|z| match &z.kind {
                ZoneKind::Heating(id) => Some(id.clone()),
                ZoneKind::HotWater { .. } => None,
            })
            .filter(|id| s.temporary.get(id).is_some_and(|t| t.expires_at <= now))
            .collect();
        for id in due {
            s.temporary.remove(&id);
            // Already on the schedule (or offline): nothing to end.
            let _ = self.world.command(WORLD_VENDOR, &id, WorldCommand::HvacFollowSchedule);
        }
    }

    fn overlay_json(&self, s: &SimState, unit: &HvacState, now: DateTime<Utc>) -> Value {
        let setting = heating_setting(unit.mode, unit.heat_setpoint);
        let termination = match s.temporary.get(&unit.id) {
            Some(t) => match t.timer_secs {
                Some(duration) => json!({
                    "type": "TIMER",
                    "typeSkillBasedApp": "TIMER",
                    "durationInSeconds": duration,
                    "expiry": rfc3339(t.expires_at),
                    "remainingTimeInSeconds": (t.expires_at - now).num_seconds().max(0),
                    "projectedExpiry": rfc3339(t.expires_at),
                }),
                None => json!({
                    "type": "TADO_MODE",
                    "typeSkillBasedApp": "NEXT_TIME_BLOCK",
                    "projectedExpiry": rfc3339(t.expires_at),
                }),
            },
            None => json!({
                "type": "MANUAL",
                "typeSkillBasedApp": "MANUAL",
                "projectedExpiry": null,
            }),
        };
        json!({ "type": "MANUAL", "setting": setting, "termination": termination })
    }

    fn zone_state(
        &self,
        s: &mut SimState,
        home: u64,
        entry: &ZoneEntry,
        now: DateTime<Utc>,
    ) -> Value {
        let id = match &entry.kind {
            ZoneKind::Heating(id) => id,
            ZoneKind::HotWater { power_on, overlay } => {
                let setting = json!({
                    "type": "HOT_WATER",
                    "power": if *power_on { "ON" } else { "OFF" },
                    "temperature": null,
                });
                let overlay_json = overlay.then(|| {
                    json!({
                        "type": "MANUAL",
                        "setting": setting.clone(),
                        "termination": {
                            "type": "MANUAL", "typeSkillBasedApp": "MANUAL", "projectedExpiry": null
                        },
                    })
                });
                return json!({
                    "tadoMode": "HOME",
                    "geolocationOverride": false,
                    "geolocationOverrideDisableTime": null,
                    "preparation": null,
                    "setting": setting,
                    "overlayType": overlay.then_some("MANUAL"),
                    "overlay": overlay_json,
                    "openWindow": null,
                    "link": { "state": "ONLINE" },
                    "activityDataPoints": {},
                    "sensorDataPoints": {},
                });
            }
        };
        let Some(unit) = self.world.hvac(id) else {
            return json!({ "tadoMode": "HOME", "setting": null, "link": { "state": "OFFLINE" } });
        };
        let offset = s
            .homes
            .get(&home)
            .and_then(|h| self.world.site(&h.site))
            .map_or(0, |st| st.utc_offset_minutes);
        let overlay = (unit.hold == HvacHold::Permanent).then(|| self.overlay_json(s, &unit, now));
        let next_change = (unit.hold == HvacHold::Schedule).then(|| {
            let at = next_switch(now, offset, &unit.schedule);
            let (heat, _) = unit.schedule.setpoints_at(local_hour(at, offset));
            json!({ "start": rfc3339(at), "setting": heating_setting(unit.schedule.mode, heat) })
        });
        let (link, activity, sensors) = if unit.online {
            s.snapshots.insert(id.clone(), Snapshot { indoor_c: unit.indoor_c, at: unit.at });
            let power = match unit.activity {
                HvacActivity::Heating => round_to(
                    (50.0 + 40.0 * (unit.heat_setpoint - unit.indoor_c)).clamp(10.0, 100.0),
                    1,
                ),
                HvacActivity::Idle | HvacActivity::Cooling => 0.0,
            };
            let humidity = round_to((45.0 + 2.0 * (21.0 - unit.indoor_c)).clamp(30.0, 65.0), 1);
            (
                json!({ "state": "ONLINE" }),
                json!({ "heatingPower": {
                    "type": "PERCENTAGE", "percentage": power, "timestamp": rfc3339(unit.at)
                } }),
                json!({
                    "insideTemperature": {
                        "celsius": round_to(unit.indoor_c, 2),
                        "fahrenheit": round_to(celsius_to_fahrenheit(unit.indoor_c), 2),
                        "timestamp": rfc3339(unit.at),
                        "type": "TEMPERATURE",
                        "precision": { "celsius": 0.1, "fahrenheit": 0.1 },
                    },
                    "humidity": {
                        "type": "PERCENTAGE", "percentage": humidity, "timestamp": rfc3339(unit.at)
                    },
                }),
            )
        } else {
            let sensors = match s.snapshots.get(id) {
                Some(snap) => json!({ "insideTemperature": {
                    "celsius": round_to(snap.indoor_c, 2),
                    "fahrenheit": round_to(celsius_to_fahrenheit(snap.indoor_c), 2),
                    "timestamp": rfc3339(snap.at),
                    "type": "TEMPERATURE",
                    "precision": { "celsius": 0.1, "fahrenheit": 0.1 },
                } }),
                None => json!({}),
            };
            (
                json!({ "state": "OFFLINE", "reason": {
                    "code": "disconnectedDevice", "title": "There is a disconnected device."
                } }),
                json!({}),
                sensors,
            )
        };
        json!({
            "tadoMode": "HOME",
            "geolocationOverride": false,
            "geolocationOverrideDisableTime": null,
            "preparation": null,
            "setting": heating_setting(unit.mode, unit.heat_setpoint),
            "overlayType": overlay.as_ref().map(|_| "MANUAL"),
            "overlay": overlay,
            "openWindow": null,
            "nextScheduleChange": next_change,
            "nextTimeBlock": next_change.as_ref().map(|c| json!({ "start": c["start"] })),
            "link": link,
            "activityDataPoints": activity,
            "sensorDataPoints": sensors,
        })
    }

    fn get_overlay(
        &self,
        s: &SimState,
        _home: u64,
        entry: &ZoneEntry,
        now: DateTime<Utc>,
    ) -> Response {
        let missing = || not_found(&format!("No overlay found for zone {}", entry.id));
        match &entry.kind {
            ZoneKind::Heating(id) => match self.world.hvac(id) {
                Some(unit) if unit.hold == HvacHold::Permanent => {
                    ok(&self.overlay_json(s, &unit, now))
                }
                _ => missing(),
            },
            ZoneKind::HotWater { power_on, overlay: true } => ok(&json!({
                "type": "MANUAL",
                "setting": { "type": "HOT_WATER", "power": if *power_on { "ON" } else { "OFF" } },
                "termination": { "type": "MANUAL", "typeSkillBasedApp": "MANUAL", "projectedExpiry": null },
            })),
            ZoneKind::HotWater { .. } => missing(),
        }
    }

    fn put_overlay(
        &self,
        s: &mut SimState,
        home: u64,
        entry: &ZoneEntry,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Response {
        let Ok(request) = serde_json::from_slice::<Value>(body) else {
            return api_error(
                StatusCode::BAD_REQUEST,
                "malformedRequest",
                "The request body is not valid JSON",
            );
        };
        let setting = &request["setting"];
        let zone_type = setting["type"].as_str().unwrap_or("");
        let expected = match entry.kind {
            ZoneKind::Heating(_) => "HEATING",
            ZoneKind::HotWater { .. } => "HOT_WATER",
        };
        if zone_type != expected {
            return invalid(&format!("setting.type must be {expected} for zone {}", entry.id));
        }
        let power_on = match setting["power"].as_str() {
            Some("ON") => true,
            Some("OFF") => false,
            _ => return invalid("setting.power must be ON or OFF"),
        };
        let termination = &request["termination"];
        let kind = termination["typeSkillBasedApp"]
            .as_str()
            .or_else(|| termination["type"].as_str())
            .unwrap_or("");
        let timer = match kind {
            "MANUAL" => None,
            "TIMER" => match termination["durationInSeconds"].as_u64().filter(|d| *d > 0) {
                Some(d) => Some(Some(d)),
                None => return invalid("a TIMER termination needs durationInSeconds > 0"),
            },
            "NEXT_TIME_BLOCK" | "TADO_MODE" => Some(None),
            _ => return invalid("termination must be MANUAL, TIMER or NEXT_TIME_BLOCK"),
        };
        let id = match &entry.kind {
            ZoneKind::Heating(id) => id.clone(),
            ZoneKind::HotWater { .. } => {
                if let Some(h) = s.homes.get_mut(&home)
                    && let Some(z) = h.zones.iter_mut().find(|z| z.id == entry.id)
                {
                    z.kind = ZoneKind::HotWater { power_on, overlay: true };
                }
                return ok(&json!({
                    "type": "MANUAL",
                    "setting": { "type": "HOT_WATER", "power": if power_on { "ON" } else { "OFF" } },
                    "termination": { "type": "MANUAL", "typeSkillBasedApp": "MANUAL", "projectedExpiry": null },
                }));
            }
        };
        let heat = if power_on {
            let t = &setting["temperature"];
            let c = t["celsius"]
                .as_f64()
                .or_else(|| t["fahrenheit"].as_f64().map(fahrenheit_to_celsius));
            match c.filter(|c| c.is_finite()) {
                Some(c)
                    if (HEAT_SETPOINT_MIN_C..=HEAT_SETPOINT_MAX_C).contains(&round_to(c, 1)) =>
                {
                    Some(round_to(c, 1))
                }
                Some(c) => {
                    return invalid(&format!(
                        "temperature {c} must be between {HEAT_SETPOINT_MIN_C} and {HEAT_SETPOINT_MAX_C} °C"
                    ));
                }
                None => return invalid("setting.temperature is required when the power is ON"),
            }
        } else {
            None
        };
        let command = WorldCommand::SetHvacHold {
            mode: if power_on { HvacMode::Heat } else { HvacMode::Off },
            heat_setpoint: heat,
            cool_setpoint: None,
        };
        match self.world.command(WORLD_VENDOR, &id, command) {
            Ok(_) | Err(CommandRejected::AlreadySet) => {}
            Err(CommandRejected::Offline) => {
                return api_error(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "zoneOffline",
                    "The zone's devices are offline",
                );
            }
            Err(CommandRejected::InvalidValue(why)) => return invalid(&why),
            Err(CommandRejected::UnknownDevice { .. }) => {
                return not_found(&format!("zone {} not found", entry.id));
            }
            Err(other) => return invalid(&other.to_string()),
        }
        let offset = s
            .homes
            .get(&home)
            .and_then(|h| self.world.site(&h.site))
            .map_or(0, |st| st.utc_offset_minutes);
        let mut termination_json =
            json!({ "type": "MANUAL", "typeSkillBasedApp": "MANUAL", "projectedExpiry": null });
        match timer {
            None => {
                s.temporary.remove(&id);
            }
            Some(duration) => {
                let expires_at = match duration {
                    Some(d) => plus(now, Duration::from_secs(d)),
                    None => match self.world.hvac(&id) {
                        Some(unit) => next_switch(now, offset, &unit.schedule),
                        None => now,
                    },
                };
                s.temporary
                    .insert(id.clone(), TemporaryOverlay { timer_secs: duration, expires_at });
                termination_json = match duration {
                    Some(d) => json!({
                        "type": "TIMER", "typeSkillBasedApp": "TIMER", "durationInSeconds": d,
                        "expiry": rfc3339(expires_at), "remainingTimeInSeconds": d,
                        "projectedExpiry": rfc3339(expires_at),
                    }),
                    None => json!({
                        "type": "TADO_MODE", "typeSkillBasedApp": "NEXT_TIME_BLOCK",
                        "projectedExpiry": rfc3339(expires_at),
                    }),
                };
            }
        }
        let setting_json = match heat {
            Some(c) => json!({ "type": "HEATING", "power": "ON", "temperature": temperature(c) }),
            None => json!({ "type": "HEATING", "power": "OFF", "temperature": null }),
        };
        ok(&json!({ "type": "MANUAL", "setting": setting_json, "termination": termination_json }))
    }

    fn delete_overlay(&self, s: &mut SimState, home: u64, entry: &ZoneEntry) -> Response {
        let id = match &entry.kind {
            ZoneKind::Heating(id) => id.clone(),
            ZoneKind::HotWater { .. } => {
                if let Some(h) = s.homes.get_mut(&home)
                    && let Some(z) = h.zones.iter_mut().find(|z| z.id == entry.id)
                {
                    z.kind = ZoneKind::HotWater { power_on: true, overlay: false };
                }
                return StatusCode::NO_CONTENT.into_response();
            }
        };
        s.temporary.remove(&id);
        match self.world.command(WORLD_VENDOR, &id, WorldCommand::HvacFollowSchedule) {
            Ok(_) | Err(CommandRejected::AlreadySet) => StatusCode::NO_CONTENT.into_response(),
            Err(CommandRejected::Offline) => api_error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "zoneOffline",
                "The zone's devices are offline",
            ),
            Err(CommandRejected::UnknownDevice { .. }) => {
                not_found(&format!("zone {} not found", entry.id))
            }
            Err(other) => invalid(&other.to_string()),
        }
    }
}

fn capabilities(entry: &ZoneEntry) -> Value {
    match entry.kind {
        ZoneKind::Heating(_) => json!({
            "type": "HEATING",
            "temperatures": {
                "celsius": { "min": HEAT_SETPOINT_MIN_C, "max": HEAT_SETPOINT_MAX_C, "step": 0.1 },
                "fahrenheit": { "min": 41, "max": 77, "step": 0.1 },
            },
        }),
        ZoneKind::HotWater { .. } => json!({ "type": "HOT_WATER", "canSetTemperature": false }),
    }
}

fn login_page(user_code: &str) -> Response {
    let code: String = user_code.chars().filter(char::is_ascii_alphanumeric).take(16).collect();
    let page = format!(
        "<html><head><title>tado° login</title></head><body>\
         <h1>Connect a device to your tado° account</h1>\
         <form method=\"post\"><input type=\"hidden\" name=\"user_code\" value=\"{code}\">\
         <p>Code: {code}</p>\
         <input name=\"username\" placeholder=\"E-mail\"><input name=\"password\" type=\"password\">\
         <button type=\"submit\">Confirm</button></form></body></html>"
    );
    let mut response = (StatusCode::OK, page).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn query_decoding() {
        let q = parse_query("a=1&u=https%3A%2F%2Fx.example%2Fcb&b=x+y&c&d=%zz&e=%4");
        assert_eq!(q["a"], "1");
        assert_eq!(q["u"], "https://x.example/cb");
        assert_eq!(q["b"], "x y");
        assert_eq!(q["c"], "");
        assert_eq!(q["d"], "%zz");
        assert_eq!(q["e"], "%4");
    }

    #[test]
    fn schedule_switches() {
        let schedule = HvacSchedule::default(); // day 6:00, night 22:00
        // 09:00 UTC at UTC+1 is 10:00 local: the next switch is 22:00 local = 21:00 UTC.
        let now = Utc.with_ymd_and_hms(2026, 1, 15, 9, 0, 0).unwrap();
        assert_eq!(
            next_switch(now, 60, &schedule),
            Utc.with_ymd_and_hms(2026, 1, 15, 21, 0, 0).unwrap()
        );
        // 23:00 local: 06:00 local next day = 05:00 UTC.
        let late = Utc.with_ymd_and_hms(2026, 1, 15, 22, 0, 0).unwrap();
        assert_eq!(
            next_switch(late, 60, &schedule),
            Utc.with_ymd_and_hms(2026, 1, 16, 5, 0, 0).unwrap()
        );
        assert_eq!(secs_to_next_midnight(now), 15 * 3600);
    }

    #[test]
    fn settings() {
        assert_eq!(heating_setting(HvacMode::Heat, 20.54)["temperature"]["celsius"], json!(20.5));
        assert_eq!(heating_setting(HvacMode::Off, 20.0)["power"], json!("OFF"));
        assert_eq!(heating_setting(HvacMode::Auto, 20.0)["power"], json!("ON"));
        assert_eq!(heating_setting(HvacMode::Cool, 20.0)["power"], json!("OFF"));
    }
}
