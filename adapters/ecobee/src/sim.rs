//! A simulator of ecobee's cloud (API v1 and its PIN authorization) over
//! `oemgate_sim::World`, as an axum [`Router`] meant to be mounted under [`PREFIX`]
//! (`/ecobee`) of an `oemgate_sim::SimHost`.
//!
//! ```no_run
//! # async fn demo(world: oemgate_sim::World) -> anyhow::Result<()> {
//! use oemgate_ecobee::sim::{EcobeeSim, PREFIX};
//! let sim = EcobeeSim::new(world.clone());
//! let mut host = oemgate_sim::SimHost::new(world.clock());
//! host.mount(PREFIX, sim.router())?;
//! // A household links its ecobee account: it entered the application's PIN in the portal,
//! // and the application holds the code that came with the PIN.
//! let link = sim.create_account(&world.sites());
//! // ... EcobeeAdapter::exchange_pin(&link.code)
//! # Ok(()) }
//! ```
//!
//! # What it serves (paths below the mount prefix)
//!
//! - `GET /authorize?response_type=ecobeePin&client_id=<API key>&scope=smartRead|smartWrite|ems`
//!   → `{ecobeePin, code, scope, expires_in (minutes), interval (seconds)}`. The user enters
//!   the PIN in the portal ([`EcobeeSim::authorize_pin`]).
//! - `POST /token?grant_type=ecobeePin&code=..&client_id=..` → tokens once the PIN was entered
//!   (`authorization_pending` before, `authorization_expired` after [`PIN_LIFETIME`]); codes
//!   are single-use. `POST /token?grant_type=refresh_token&refresh_token=..&client_id=..` → a
//!   new access and refresh token; the old refresh token is spent. Parameters may also come as
//!   a form body. Access tokens live [`ACCESS_TOKEN_LIFETIME`] (`expires_in` 3599), refresh
//!   tokens [`REFRESH_TOKEN_LIFETIME`]. Errors are OAuth JSON with HTTP 400 (`invalid_grant`,
//!   ...) or 401 (`invalid_client`).
//! - `GET /1/thermostatSummary?json={"selection":..}` → `thermostatCount`, `revisionList`
//!   (`id:name:connected:thermostatRev:alertsRev:runtimeRev:intervalRev`) and, with
//!   `includeEquipmentStatus`, `statusList` (`id:equipment,csv`).
//! - `GET /1/thermostat?json={"selection":..}` → `page` and `thermostatList` with the
//!   objects the selection includes (`includeRuntime`, `includeSettings`,
//!   `includeEquipmentStatus`, `includeProgram`, `includeEvents`).
//! - `POST /1/thermostat?format=json` with `selection`, `functions` (`setHold`,
//!   `resumeProgram`) and `thermostat.settings.hvacMode` → `{"status":{"code":0,..}}`.
//!
//! Selections are `registered` or `thermostats` (at most 25 identifiers, else status 6); a
//! thermostat that is not the user's is status 2 "Not authorized.". Every API error is HTTP 500
//! with `{"status":{"code":N,"message":..}}`, ecobee's style: 1 no or unknown token, 14 expired
//! token, 16 deauthorized (revoked) token, 4/5 a `json` or body that does not parse, 7
//! validation errors (hold temperatures outside the thermostat's ranges or too close together,
//! a mode the equipment cannot run), 8 an unknown function, 12 a POST to the summary, 3 a
//! command for a disconnected thermostat. Each account may send [`EcobeeSimConfig::requests_per_minute`]
//! API requests per calendar minute (ecobee publishes no number; 60 by default); beyond that
//! the answer is 429 with `Retry-After` and status 3 "too many requests".
//!
//! # The world as ecobee sees it
//!
//! An ecobee account owns the world's HVAC units of vendor [`WORLD_VENDOR`] (`ecobee`) at the
//! sites given to [`EcobeeSim::create_account`]; each is a thermostat whose identifier is a
//! stable 12-digit number derived from the device id ([`EcobeeSim::identifier`]).
//!
//! The cloud holds what the thermostat last **reported**, refreshed lazily whenever a request
//! touches the thermostat:
//! - a change of mode, hold or program climate (`home` by day, `sleep` by night of the world's
//!   schedule) bumps `thermostatRev`;
//! - the thermostat reports its runtime (and bumps `runtimeRev`) when a setpoint or the running
//!   equipment changes, when it (dis)connects, and when the indoor temperature moved by at
//!   least [`EcobeeSimConfig::report_deadband_f10`] tenths of °F (0.3 °F by default) since the
//!   last report; in between ecobee shows the last reported temperature;
//! - `intervalRev` moves every 15 minutes while connected (the interval-data upload);
//! - `alertsRev` never moves (no alerts are simulated).
//!
//! Revisions are `YYMMDDHHMMSS` of the change (UTC) and strictly increase per thermostat (a
//! second change within the same second gets the next second), so a change is never hidden
//! by an equal string. A disconnected thermostat (world device offline) keeps its last values
//! with `connected: false`.
//!
//! Units as ecobee's: every temperature in tenths of °F (integers). Modes: the world's
//! `HEAT`/`COOL`/`AUTO`/`OFF` are `heat`/`cool`/`auto`/`off`. A world permanent hold is a
//! running `hold` event that ends ten years after it started (ecobee's `indefinite`); a unit
//! following its schedule has no events.
//!
//! Commands go through `world.command("ecobee", ..)`, so the world's latency applies:
//! `setHold` → `SetHvacHold` with the hold temperatures in °C and the mode of
//! `settings.hvacMode` (else the current one); `hvacMode` alone → `SetHvacHold` with the
//! setpoints kept; `resumeProgram` → `HvacFollowSchedule`. A command that would change nothing
//! succeeds (ecobee does not complain).
//!
//! What the world does not have and the simulator models itself: the equipment (heat pump,
//! furnace, air conditioner: [`EcobeeEquipment`], a heat pump unless
//! [`EcobeeSim::set_equipment`] says otherwise; the world's snapshot carries no heating or
//! cooling capacity), the thermostat's setpoint ranges (ecobee's defaults, 45–79 °F heat and
//! 65–92 °F cool, inside the world's 5–30 °C and 15–35 °C), the humidity (a constant 40 %),
//! temporary holds (`nextTransition`, `holdHours`, `dateTime` are accepted but held until
//! resumed, as the world has only permanent holds), and ecobee's program, whose mode is the
//! world schedule's mode (ecobee's programs do not change the mode; the world's do).
//!
//! # Faults
//!
//! `world.faults().active("ecobee")` (or `"ECOBEE"`) is rendered in ecobee's style:
//! `RateLimit` as 429 with `Retry-After` and status 3 "too many requests"; `ServerError` 500 as
//! ecobee's status 3 "Processing error" and 502/503/504 as the load balancer's HTML page;
//! `Outage` as a 503 HTML page; `Hang` waits, then answers; `Timeout` holds the request for
//! `TIMEOUT_HANG`, then 504; `Malformed` is a 200 HTML maintenance page; `Truncated` the right
//! body cut in half; `RevokeTokens` deauthorizes every token on the next request (status 16;
//! refresh tokens are refused with `invalid_grant`).

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
use oemgate_sim::physics::battery::in_window;
use oemgate_sim::rng::{hash, hash_str};
use oemgate_sim::{
    CommandRejected, DeviceId, DeviceKind, Fault, HvacActivity, HvacHold, HvacMode, HvacState,
    SiteId, TIMEOUT_HANG, World, WorldCommand,
};
use serde_json::{Value, json};

use crate::map::{celsius_to_f10, f10_to_celsius};
use crate::model::{MAX_SELECTION, Revision, Selection, ThermostatRequest};

/// Where the simulator expects to be mounted.
pub const PREFIX: &str = "/ecobee";
/// The vendor name of ecobee devices in the world (and of its command latency and faults).
pub const WORLD_VENDOR: &str = "ecobee";
/// The API key of the application the simulator knows by default.
pub const DEFAULT_API_KEY: &str = "sim-ecobee-api-key";
/// How long an access token works (`expires_in` 3599).
pub const ACCESS_TOKEN_LIFETIME: Duration = Duration::from_secs(3600);
/// How long a refresh token works.
pub const REFRESH_TOKEN_LIFETIME: Duration = Duration::from_secs(365 * 86_400);
/// How long a PIN can be entered and its code exchanged (`expires_in` 9, in minutes).
pub const PIN_LIFETIME: Duration = Duration::from_secs(9 * 60);
/// How often the application may try the PIN exchange, seconds.
pub const PIN_INTERVAL_SECS: u64 = 30;
/// How often a connected thermostat uploads its interval data.
pub const INTERVAL_UPLOAD: Duration = Duration::from_secs(15 * 60);

/// ecobee's default setpoint ranges and separation, tenths of °F.
const HEAT_RANGE: (i64, i64) = (450, 790);
const COOL_RANGE: (i64, i64) = (650, 920);
const MIN_DELTA: i64 = 50;
const HUMIDITY: i64 = 40;

/// The HVAC equipment behind a thermostat (the world does not say; see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct EcobeeEquipment {
    /// A heat pump (heats and cools with its compressor).
    pub has_heat_pump: bool,
    /// Conventional (furnace, boiler, auxiliary) heat stages.
    pub heat_stages: u32,
    /// Cooling stages (a heat pump's compressor counts here).
    pub cool_stages: u32,
}

impl EcobeeEquipment {
    /// A single-stage heat pump (the default).
    pub const HEAT_PUMP: Self = Self { has_heat_pump: true, heat_stages: 0, cool_stages: 1 };
    /// A furnace without air conditioning (heat only).
    pub const FURNACE: Self = Self { has_heat_pump: false, heat_stages: 1, cool_stages: 0 };
    /// A furnace with an air conditioner.
    pub const FURNACE_AND_AC: Self = Self { has_heat_pump: false, heat_stages: 1, cool_stages: 1 };

    /// Whether it can heat.
    pub const fn can_heat(&self) -> bool {
        self.has_heat_pump || self.heat_stages > 0
    }

    /// Whether it can cool.
    pub const fn can_cool(&self) -> bool {
        self.has_heat_pump || self.cool_stages > 0
    }

    /// Whether it can run `hvacMode`.
    fn allows(&self, hvac_mode: &str) -> bool {
        match hvac_mode {
            "off" => true,
            "heat" | "auxHeatOnly" => self.can_heat(),
            "cool" => self.can_cool(),
            "auto" => self.can_heat() && self.can_cool(),
            _ => false,
        }
    }

    /// The equipment status while the world unit does `activity`.
    fn status(&self, activity: HvacActivity) -> &'static str {
        match activity {
            HvacActivity::Idle => "",
            HvacActivity::Heating if self.has_heat_pump => "heatPump,fan",
            HvacActivity::Heating => "auxHeat1,fan",
            HvacActivity::Cooling => "compCool1,fan",
        }
    }
}

impl Default for EcobeeEquipment {
    fn default() -> Self {
        Self::HEAT_PUMP
    }
}

/// How the simulator behaves.
#[derive(Clone)]
pub struct EcobeeSimConfig {
    /// The API keys of the applications ecobee knows (the first one issues the PINs of
    /// [`EcobeeSim::create_account`]).
    pub api_keys: Vec<String>,
    /// Access-token lifetime.
    pub access_token_lifetime: Duration,
    /// Refresh-token lifetime.
    pub refresh_token_lifetime: Duration,
    /// PIN lifetime.
    pub pin_lifetime: Duration,
    /// API requests per account per calendar minute (`None`: unlimited).
    pub requests_per_minute: Option<u32>,
    /// How far (tenths of °F) the indoor temperature must move before the thermostat reports
    /// it again.
    pub report_deadband_f10: i64,
    /// The `modelNumber` of every thermostat.
    pub model_number: String,
}

impl Default for EcobeeSimConfig {
    fn default() -> Self {
        Self {
            api_keys: vec![DEFAULT_API_KEY.to_owned()],
            access_token_lifetime: ACCESS_TOKEN_LIFETIME,
            refresh_token_lifetime: REFRESH_TOKEN_LIFETIME,
            pin_lifetime: PIN_LIFETIME,
            requests_per_minute: Some(60),
            report_deadband_f10: 3,
            model_number: "athenaSmart".to_owned(),
        }
    }
}

impl fmt::Debug for EcobeeSimConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EcobeeSimConfig")
            .field("api_keys", &self.api_keys.len())
            .field("access_token_lifetime", &self.access_token_lifetime)
            .field("refresh_token_lifetime", &self.refresh_token_lifetime)
            .field("pin_lifetime", &self.pin_lifetime)
            .field("requests_per_minute", &self.requests_per_minute)
            .field("report_deadband_f10", &self.report_deadband_f10)
            .field("model_number", &self.model_number)
            .finish()
    }
}

/// What a household has after linking its ecobee account: the login, the PIN it entered in
/// the ecobee portal for the default application, and the code the application received with
/// that PIN (for `EcobeeAdapter::exchange_pin`).
#[derive(Clone, PartialEq, Eq)]
pub struct EcobeeLink {
    /// The ecobee login (an e-mail); also a stable account id.
    pub username: String,
    /// The login password.
    pub password: String,
    /// The PIN the user entered (already authorized).
    pub pin: String,
    /// The authorization code that came with the PIN (single-use, valid [`PIN_LIFETIME`]).
    pub code: String,
    /// The scope the user approved (`smartWrite` or `smartRead`).
    pub scope: String,
}

impl fmt::Debug for EcobeeLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EcobeeLink")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("pin", &self.pin)
            .field("code", &"<redacted>")
            .field("scope", &self.scope)
            .finish()
    }
}

/// What the simulator served, for tests.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EcobeeSimStats {
    /// `GET /1/thermostatSummary` answered with data.
    pub summary_reads: u64,
    /// `GET /1/thermostat` answered with data.
    pub thermostat_reads: u64,
    /// Full reads per thermostat identifier (a thermostat in a `GET /1/thermostat` answer).
    pub full_reads: BTreeMap<String, u64>,
    /// Updates accepted.
    pub updates: u64,
    /// Requests answered 429 by the per-account limit.
    pub throttled: u64,
}

impl EcobeeSimStats {
    /// Full reads of one thermostat.
    pub fn full_reads_of(&self, identifier: &str) -> u64 {
        self.full_reads.get(identifier).copied().unwrap_or(0)
    }
}

#[derive(Debug)]
struct Account {
    password: String,
    sites: Vec<SiteId>,
}

#[derive(Debug)]
struct Pin {
    pin: String,
    client_id: String,
    scope: String,
    expires_at: DateTime<Utc>,
    authorized_by: Option<String>,
    used: bool,
}

#[derive(Debug)]
struct Token {
    username: String,
    client_id: String,
    scope: String,
    expires_at: DateTime<Utc>,
    revoked: bool,
    spent: bool,
}

/// What ecobee's cloud knows about one thermostat: its last report.
#[derive(Clone, Debug)]
struct Cloud {
    identifier: String,
    name: String,
    connected: bool,
    actual_f10: i64,
    heat_f10: i64,
    cool_f10: i64,
    hvac_mode: &'static str,
    hold: HvacHold,
    hold_since: DateTime<Utc>,
    climate: &'static str,
    equipment: &'static str,
    thermostat_rev: DateTime<Utc>,
    alerts_rev: DateTime<Utc>,
    runtime_rev: DateTime<Utc>,
    interval_rev: DateTime<Utc>,
    interval_slot: i64,
    thermostat_modified: DateTime<Utc>,
    runtime_modified: DateTime<Utc>,
    status_modified: DateTime<Utc>,
    first_connected: DateTime<Utc>,
    connect_time: DateTime<Utc>,
    disconnect_time: Option<DateTime<Utc>>,
    utc_offset_minutes: i32,
    day_heat_f10: i64,
    day_cool_f10: i64,
    night_heat_f10: i64,
    night_cool_f10: i64,
}

impl Cloud {
    fn revision(&self) -> Revision {
        Revision {
            identifier: self.identifier.clone(),
            name: self.name.clone(),
            connected: self.connected,
            thermostat_rev: rev(self.thermostat_rev),
            alerts_rev: rev(self.alerts_rev),
            runtime_rev: rev(self.runtime_rev),
            interval_rev: rev(self.interval_rev),
        }
    }
}

#[derive(Debug)]
struct SimState {
    config: EcobeeSimConfig,
    accounts: BTreeMap<String, Account>,
    pins: HashMap<String, Pin>,
    access: HashMap<String, Token>,
    refresh: HashMap<String, Token>,
    clouds: HashMap<DeviceId, Cloud>,
    identifiers: BTreeMap<String, DeviceId>,
    by_device: HashMap<DeviceId, String>,
    equipment: HashMap<DeviceId, EcobeeEquipment>,
    usage: HashMap<String, (i64, u32)>,
    stats: EcobeeSimStats,
    serial: u64,
    next_user: u64,
}

/// The simulated ecobee cloud. Cheap to clone; clones share everything.
#[derive(Clone)]
pub struct EcobeeSim {
    world: World,
    clock: Arc<dyn Clock>,
    state: Arc<Mutex<SimState>>,
}

impl fmt::Debug for EcobeeSim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.lock();
        f.debug_struct("EcobeeSim")
            .field("accounts", &s.accounts.len())
            .field("thermostats", &s.clouds.len())
            .finish_non_exhaustive()
    }
}

// ---- small helpers --------------------------------------------------------------------------

fn plus(t: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(d)
        .ok()
        .and_then(|d| t.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// A revision string (`YYMMDDHHMMSS`, UTC).
fn rev(t: DateTime<Utc>) -> String {
    t.format("%y%m%d%H%M%S").to_string()
}

/// ecobee's date-time format (UTC).
fn stamp(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}

/// Moves a revision to `now`, or one second past its old value if that is not later.
fn bump(revision: &mut DateTime<Utc>, now: DateTime<Utc>) {
    *revision = now.max(*revision + chrono::Duration::seconds(1));
}

fn local(t: DateTime<Utc>, offset_minutes: i32) -> DateTime<Utc> {
    t + chrono::Duration::minutes(i64::from(offset_minutes))
}

fn f10(celsius: f64) -> i64 {
    celsius_to_f10(celsius).unwrap_or(0)
}

fn c_of(tenths: i64) -> f64 {
    // Hold temperatures are small integers, exact in f64.
    #[allow(clippy::cast_precision_loss)]
    let t = tenths as f64;
    f10_to_celsius(t)
}

fn ecobee_mode(mode: HvacMode) -> &'static str {
    match mode {
        HvacMode::Off => "off",
        HvacMode::Heat => "heat",
        HvacMode::Cool => "cool",
        HvacMode::Auto => "auto",
    }
}

fn world_mode(hvac_mode: &str) -> Option<HvacMode> {
    match hvac_mode {
        "off" => Some(HvacMode::Off),
        "heat" | "auxHeatOnly" => Some(HvacMode::Heat),
        "cool" => Some(HvacMode::Cool),
        "auto" => Some(HvacMode::Auto),
        _ => None,
    }
}

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

fn success() -> Value {
    json!({ "status": { "code": 0, "message": "" } })
}

/// ecobee's error style: HTTP 500 with a status code and message.
fn status_error(code: i64, message: &str) -> Response {
    json_response(
        StatusCode::INTERNAL_SERVER_ERROR,
        &json!({ "status": { "code": code, "message": message } }),
    )
}

fn auth_failed() -> Response {
    status_error(1, "Authentication failed.")
}

fn not_authorized() -> Response {
    status_error(2, "Not authorized.")
}

fn validation(why: &str) -> Response {
    status_error(7, &format!("Validation error. {why}"))
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    json_response(
        status,
        &json!({
            "error": error,
            "error_description": description,
            "error_uri": "https://tools.ietf.org/html/rfc6749#section-5.2",
        }),
    )
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

fn too_many_requests(retry_after_secs: u64) -> Response {
    let mut response = json_response(
        StatusCode::TOO_MANY_REQUESTS,
        &json!({ "status": { "code": 3, "message": "Processing error. Too many requests, slow down." } }),
    );
    if let Ok(value) = HeaderValue::from_str(&retry_after_secs.to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

fn server_error(status: u16) -> Response {
    let status = StatusCode::from_u16(status)
        .ok()
        .filter(|s| s.is_server_error())
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    match status.as_u16() {
        500 => status_error(3, "Processing error. An internal error occurred."),
        502 => html(status, "502 Bad Gateway"),
        503 => html(status, "503 Service Temporarily Unavailable"),
        504 => html(status, "504 Gateway Time-out"),
        _ => html(status, status.canonical_reason().unwrap_or("Server Error")),
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

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer ")).map(str::trim)
}

fn int_param(params: &Value, key: &str) -> Option<i64> {
    let v = params.get(key)?;
    v.as_i64()
        .or_else(|| {
            v.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 1.0e9).map(|f| {
                // Integral and small (checked above).
                #[allow(clippy::cast_possible_truncation)]
                let n = f as i64;
                n
            })
        })
        .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
}

async fn handle(
    State(sim): State<EcobeeSim>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    sim.apply_revocation();
    let fault = sim.active_fault();
    match &fault {
        Some(Fault::RateLimit { retry_after }) => {
            let secs = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
            return too_many_requests(secs);
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
            return html(StatusCode::OK, "ecobee is down for scheduled maintenance");
        }
        Some(Fault::Truncated | Fault::RevokeTokens) | None => {}
    }
    let response = sim.route(&method, &uri, &headers, &body);
    if matches!(fault, Some(Fault::Truncated)) { truncate(response).await } else { response }
}

/// ecobee's status code and message for an error answer (HTTP 500).
#[derive(Debug)]
struct ApiError(i64, String);

impl ApiError {
    fn new(code: i64, message: &str) -> Self {
        Self(code, message.to_owned())
    }

    fn not_authorized() -> Self {
        Self::new(2, "Not authorized.")
    }

    fn validation(why: &str) -> Self {
        Self(7, format!("Validation error. {why}"))
    }

    fn response(self) -> Response {
        status_error(self.0, &self.1)
    }
}

/// A parsed update: what to do to each thermostat.
struct Update {
    devices: Vec<DeviceId>,
    hold: Option<(i64, i64)>,
    resume: bool,
    hvac_mode: Option<String>,
}

impl EcobeeSim {
    /// A simulator over `world` with the default configuration.
    pub fn new(world: World) -> Self {
        Self::with_config(world, EcobeeSimConfig::default())
    }

    /// A simulator over `world` with `config`.
    pub fn with_config(world: World, config: EcobeeSimConfig) -> Self {
        let clock = world.clock();
        let state = SimState {
            config,
            accounts: BTreeMap::new(),
            pins: HashMap::new(),
            access: HashMap::new(),
            refresh: HashMap::new(),
            clouds: HashMap::new(),
            identifiers: BTreeMap::new(),
            by_device: HashMap::new(),
            equipment: HashMap::new(),
            usage: HashMap::new(),
            stats: EcobeeSimStats::default(),
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

    /// The API key of the default application.
    pub fn api_key(&self) -> String {
        self.lock().config.api_keys.first().cloned().unwrap_or_else(|| DEFAULT_API_KEY.to_owned())
    }

    /// What the simulator served so far.
    pub fn stats(&self) -> EcobeeSimStats {
        self.lock().stats.clone()
    }

    /// The identifier a world HVAC unit has at ecobee (stable for a device id).
    pub fn identifier(&self, device: &DeviceId) -> String {
        Self::identifier_of(&mut self.lock(), device)
    }

    fn identifier_of(s: &mut SimState, device: &DeviceId) -> String {
        if let Some(id) = s.by_device.get(device) {
            return id.clone();
        }
        let digits: String = device.as_str().chars().filter(char::is_ascii_digit).collect();
        let mut n = match digits.parse::<u64>() {
            Ok(n) if n < 100_000_000 => 311_000_000_000 + n,
            _ => 411_000_000_000 + hash_str(device.as_str()) % 500_000_000_000,
        };
        while s.identifiers.contains_key(&n.to_string()) {
            n += 1;
        }
        let id = n.to_string();
        s.identifiers.insert(id.clone(), device.clone());
        s.by_device.insert(device.clone(), id.clone());
        id
    }

    /// Sets the equipment behind a thermostat (default: a heat pump).
    pub fn set_equipment(&self, device: &DeviceId, equipment: EcobeeEquipment) {
        self.lock().equipment.insert(device.clone(), equipment);
    }

    /// The revision entry ecobee holds for a thermostat now, as the last request that touched
    /// it left it (`None` before any).
    pub fn revision_line(&self, identifier: &str) -> Option<String> {
        let s = self.lock();
        let device = s.identifiers.get(identifier)?;
        s.clouds.get(device).map(|c| c.revision().render())
    }

    fn new_secret(s: &mut SimState, seed: u64, kind: u64) -> String {
        s.serial += 1;
        let a = hash(&[seed, kind, s.serial]);
        let b = hash(&[a, s.serial, 0x0EC0_BEE5]);
        format!("{a:016x}{b:016x}")
    }

    fn new_pin(s: &mut SimState, seed: u64) -> String {
        const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
        loop {
            s.serial += 1;
            let mut x = hash(&[seed, 0x0B1B, s.serial]);
            let mut pin = String::with_capacity(4);
            for _ in 0..4 {
                let k = usize::try_from(x % ALPHABET.len() as u64).unwrap_or(0);
                pin.push(char::from(ALPHABET[k]));
                x /= ALPHABET.len() as u64;
            }
            if !s.pins.values().any(|p| p.pin == pin && !p.used) {
                return pin;
            }
        }
    }

    fn issue_pin(
        s: &mut SimState,
        seed: u64,
        client_id: &str,
        scope: &str,
        now: DateTime<Utc>,
    ) -> (String, String) {
        let pin = Self::new_pin(s, seed);
        let code = Self::new_secret(s, seed, 1);
        let expires_at = plus(now, s.config.pin_lifetime);
        s.pins.insert(
            code.clone(),
            Pin {
                pin: pin.clone(),
                client_id: client_id.to_owned(),
                scope: scope.to_owned(),
                expires_at,
                authorized_by: None,
                used: false,
            },
        );
        (pin, code)
    }

    /// Creates an ecobee account owning the ecobee thermostats at `sites` and returns what
    /// the user has after authorizing the default application with `smartWrite`: see
    /// [`EcobeeLink`].
    pub fn create_account(&self, sites: &[SiteId]) -> EcobeeLink {
        self.create_account_with_scope(sites, "smartWrite")
    }

    /// Like [`EcobeeSim::create_account`], approving `scope` (`smartRead` for a read-only
    /// link).
    pub fn create_account_with_scope(&self, sites: &[SiteId], scope: &str) -> EcobeeLink {
        let now = self.clock.now();
        let seed = self.world.seed();
        let mut s = self.lock();
        s.next_user += 1;
        let username = format!("owner{}@example.invalid", 7_300 + s.next_user);
        let password = Self::new_secret(&mut s, seed, 3);
        s.accounts.insert(
            username.clone(),
            Account { password: password.clone(), sites: sites.to_vec() },
        );
        let client_id = s.config.api_keys.first().cloned().unwrap_or_default();
        let (pin, code) = Self::issue_pin(&mut s, seed, &client_id, scope, now);
        if let Some(p) = s.pins.get_mut(&code) {
            p.authorized_by = Some(username.clone());
        }
        EcobeeLink { username, password, pin, code, scope: scope.to_owned() }
    }

    /// The user enters `pin` in the ecobee portal (My Apps → Add application): the
    /// application's code for it can then be exchanged. `false` for an unknown, used or
    /// expired PIN or an unknown user.
    pub fn authorize_pin(&self, username: &str, pin: &str) -> bool {
        let now = self.clock.now();
        let mut s = self.lock();
        if !s.accounts.contains_key(username) {
            return false;
        }
        let found = s
            .pins
            .values_mut()
            .find(|p| p.pin.eq_ignore_ascii_case(pin.trim()) && !p.used && now < p.expires_at);
        match found {
            Some(p) => {
                p.authorized_by = Some(username.to_owned());
                true
            }
            None => false,
        }
    }

    /// Checks a login (the portal's), for tools.
    pub fn check_login(&self, username: &str, password: &str) -> bool {
        self.lock().accounts.get(username).is_some_and(|a| a.password == password)
    }

    /// Makes every access token expired now (their refresh tokens still work).
    pub fn expire_access_tokens(&self) {
        let now = self.clock.now();
        for token in self.lock().access.values_mut() {
            token.expires_at = token.expires_at.min(now);
        }
    }

    /// Deauthorizes every token of a user (they removed the application in the portal).
    pub fn revoke_account(&self, username: &str) {
        let mut guard = self.lock();
        let s = &mut *guard;
        for token in s.access.values_mut().chain(s.refresh.values_mut()) {
            if token.username == username {
                token.revoked = true;
            }
        }
    }

    /// Deauthorizes every token of every user.
    pub fn revoke_all_tokens(&self) {
        let mut guard = self.lock();
        let s = &mut *guard;
        for token in s.access.values_mut().chain(s.refresh.values_mut()) {
            token.revoked = true;
        }
    }

    fn apply_revocation(&self) {
        let faults = self.world.faults();
        let due = faults.take_revocation(WORLD_VENDOR) | faults.take_revocation("ECOBEE");
        if due {
            self.revoke_all_tokens();
        }
    }

    fn active_fault(&self) -> Option<Fault> {
        let faults = self.world.faults();
        faults.active(WORLD_VENDOR).or_else(|| faults.active("ECOBEE"))
    }

    fn route(&self, method: &Method, uri: &Uri, headers: &HeaderMap, body: &[u8]) -> Response {
        let now = self.clock.now();
        let query = parse_query(uri.query().unwrap_or(""));
        let segments: Vec<&str> = uri.path().split('/').filter(|s| !s.is_empty()).collect();
        match (method, segments.as_slice()) {
            (&Method::GET, ["authorize"]) => self.authorize(&query, now),
            (&Method::POST, ["token"]) => self.token(query, body, now),
            (_, ["authorize" | "token"]) => {
                oauth_error(StatusCode::METHOD_NOT_ALLOWED, "invalid_request", "Method not allowed")
            }
            (_, ["1", rest @ ..]) => self.api(method, rest, &query, headers, body, now),
            _ => html(StatusCode::NOT_FOUND, "404 Not Found"),
        }
    }

    // ---- authorization -------------------------------------------------------------------

    fn authorize(&self, query: &BTreeMap<String, String>, now: DateTime<Utc>) -> Response {
        let seed = self.world.seed();
        let mut s = self.lock();
        let param = |k: &str| query.get(k).map(String::as_str).unwrap_or("");
        if param("response_type") != "ecobeePin" {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "The request is missing a required parameter or is malformed: response_type.",
            );
        }
        let client_id = param("client_id").to_owned();
        if !s.config.api_keys.contains(&client_id) {
            return oauth_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "Authentication error, invalid authentication method, lack of credentials, etc.",
            );
        }
        let scope = param("scope").to_owned();
        if !matches!(scope.as_str(), "smartRead" | "smartWrite" | "ems") {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_scope",
                "The requested scope is invalid, unknown, or malformed.",
            );
        }
        let minutes = s.config.pin_lifetime.as_secs() / 60;
        let (pin, code) = Self::issue_pin(&mut s, seed, &client_id, &scope, now);
        ok(&json!({
            "ecobeePin": pin,
            "code": code,
            "scope": scope,
            "expires_in": minutes,
            "interval": PIN_INTERVAL_SECS,
        }))
    }

    fn token(
        &self,
        mut params: BTreeMap<String, String>,
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
        let param = |k: &str| params.get(k).map(String::as_str).unwrap_or("");
        let client_id = param("client_id").to_owned();
        if !s.config.api_keys.contains(&client_id) {
            return oauth_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "Authentication error, invalid authentication method, lack of credentials, etc.",
            );
        }
        let invalid_grant = || {
            oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_grant",
                "The authorization grant, token or credentials are invalid, expired, revoked, \
                 do not match the redirection URI or were issued to another client.",
            )
        };
        let (username, scope) = match param("grant_type") {
            "ecobeePin" => {
                let Some(pin) = s.pins.get_mut(param("code")) else { return invalid_grant() };
                if pin.used || pin.client_id != client_id {
                    return invalid_grant();
                }
                if now >= pin.expires_at {
                    return oauth_error(
                        StatusCode::BAD_REQUEST,
                        "authorization_expired",
                        "The authorization has expired waiting for user to authorize.",
                    );
                }
                let Some(user) = pin.authorized_by.clone() else {
                    return oauth_error(
                        StatusCode::BAD_REQUEST,
                        "authorization_pending",
                        "Waiting for user to authorize application.",
                    );
                };
                pin.used = true;
                (user, pin.scope.clone())
            }
            "refresh_token" => {
                let Some(t) = s.refresh.get_mut(param("refresh_token")) else {
                    return invalid_grant();
                };
                if t.revoked || t.spent || t.client_id != client_id || now >= t.expires_at {
                    return invalid_grant();
                }
                t.spent = true;
                (t.username.clone(), t.scope.clone())
            }
            other => {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "unsupported_grant_type",
                    &format!("The authorization grant type {other:?} is not supported."),
                );
            }
        };
        let access = Self::new_secret(&mut s, seed, 10);
        let refresh = Self::new_secret(&mut s, seed, 11);
        let (access_life, refresh_life) =
            (s.config.access_token_lifetime, s.config.refresh_token_lifetime);
        let token = |lifetime| Token {
            username: username.clone(),
            client_id: client_id.clone(),
            scope: scope.clone(),
            expires_at: plus(now, lifetime),
            revoked: false,
            spent: false,
        };
        s.access.insert(access.clone(), token(access_life));
        s.refresh.insert(refresh.clone(), token(refresh_life));
        ok(&json!({
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": access_life.as_secs().saturating_sub(1),
            "refresh_token": refresh,
            "scope": scope,
        }))
    }

    // ---- API ------------------------------------------------------------------------------

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
        let Some(token) = bearer(headers) else { return auth_failed() };
        let (username, scope) = match s.access.get(token) {
            None => return auth_failed(),
            Some(t) if t.revoked => {
                return status_error(
                    16,
                    "Invalid token. Token has been deauthorized by user. You must re-request \
                     authorization.",
                );
            }
            Some(t) if now >= t.expires_at => {
                return status_error(
                    14,
                    "Authentication token has expired. Refresh your tokens. Please refer to our \
                     documentation for more information.",
                );
            }
            Some(t) => (t.username.clone(), t.scope.clone()),
        };
        if let Some(limit) = s.config.requests_per_minute {
            let minute = now.timestamp().div_euclid(60);
            let usage = s.usage.entry(username.clone()).or_insert((minute, 0));
            if usage.0 != minute {
                *usage = (minute, 0);
            }
            if usage.1 >= limit {
                s.stats.throttled += 1;
                let wait = (minute + 1) * 60 - now.timestamp();
                return too_many_requests(u64::try_from(wait.max(1)).unwrap_or(60));
            }
            usage.1 += 1;
        }
        let Some(sites) = s.accounts.get(&username).map(|a| a.sites.clone()) else {
            return auth_failed();
        };
        let owned = self.thermostats_of(&mut s, &sites);
        match (method, path) {
            (&Method::GET, ["thermostatSummary"]) => {
                self.summary(&mut s, &owned, query.get("json").map(String::as_str), now)
            }
            (&Method::GET, ["thermostat"]) => {
                self.thermostats(&mut s, &owned, query.get("json").map(String::as_str), now)
            }
            (&Method::POST, ["thermostat"]) => {
                if scope == "smartRead" {
                    return status_error(
                        2,
                        "Not authorized. The token's scope (smartRead) does not allow updates.",
                    );
                }
                self.update(&mut s, &owned, body)
            }
            (&Method::POST, ["thermostatSummary"]) => {
                status_error(12, "Post not supported for request.")
            }
            (_, ["thermostat"]) => status_error(13, "Get not supported for request."),
            _ => html(StatusCode::NOT_FOUND, "404 Not Found"),
        }
    }

    /// The account's thermostats: `(identifier, device)`, by identifier.
    fn thermostats_of(&self, s: &mut SimState, sites: &[SiteId]) -> Vec<(String, DeviceId)> {
        let mut out = Vec::new();
        for site in sites {
            for info in self.world.devices_of_site(site) {
                if info.kind == DeviceKind::Hvac && info.vendor == WORLD_VENDOR {
                    let id = Self::identifier_of(s, &info.id);
                    out.push((id, info.id));
                }
            }
        }
        out.sort();
        out.dedup();
        out
    }

    /// Resolves a selection to the account's thermostats, or ecobee's error.
    fn select(
        owned: &[(String, DeviceId)],
        json: Option<&str>,
    ) -> Result<(Selection, Vec<(String, DeviceId)>), ApiError> {
        let Some(json) = json else {
            return Err(ApiError::new(4, "Serialization error. Missing json request body."));
        };
        let Ok(request) = serde_json::from_str::<ThermostatRequest>(json) else {
            return Err(ApiError::new(4, "Serialization error. Malformed json."));
        };
        let selection = request.selection;
        let chosen = Self::resolve(owned, &selection)?;
        Ok((selection, chosen))
    }

    fn resolve(
        owned: &[(String, DeviceId)],
        selection: &Selection,
    ) -> Result<Vec<(String, DeviceId)>, ApiError> {
        match selection.selection_type.as_str() {
            "registered" => Ok(owned.to_vec()),
            "thermostats" => {
                let ids = selection.identifiers();
                if ids.is_empty() {
                    return Err(ApiError::new(9, "Invalid selection. No thermostats selected."));
                }
                if ids.len() > MAX_SELECTION {
                    return Err(ApiError::new(
                        6,
                        "Too many thermostats in selection match criteria. Maximum 25 per \
                         selection request.",
                    ));
                }
                let mut chosen = Vec::new();
                for id in ids {
                    match owned.iter().find(|(i, _)| i == id) {
                        Some(found) => {
                            if !chosen.contains(found) {
                                chosen.push(found.clone());
                            }
                        }
                        None => return Err(ApiError::not_authorized()),
                    }
                }
                Ok(chosen)
            }
            _ => Err(ApiError::new(9, "Invalid selection. Unsupported selectionType.")),
        }
    }

    /// Brings ecobee's view of a thermostat up to date with the world (see the module docs).
    fn observe(&self, s: &mut SimState, id: &str, device: &DeviceId, now: DateTime<Utc>) {
        let Some(h) = self.world.hvac(device) else { return };
        let offset = self.world.site(&h.site).map_or(0, |site| site.utc_offset_minutes);
        let equipment = s.equipment.get(device).copied().unwrap_or_default();
        let deadband = s.config.report_deadband_f10.max(0);
        let local_hour = local(now, offset).timestamp().rem_euclid(86_400) as f64 / 3600.0;
        let climate =
            if in_window(local_hour, (h.schedule.day_start_hour, h.schedule.night_start_hour)) {
                "home"
            } else {
                "sleep"
            };
        let slot = now
            .timestamp()
            .div_euclid(i64::try_from(INTERVAL_UPLOAD.as_secs()).unwrap_or(900).max(1));
        let seen = Seen::of(&h, equipment);
        match s.clouds.get_mut(device) {
            None => {
                let first_connected = self.world.started_at() - chrono::Duration::days(400);
                s.clouds.insert(
                    device.clone(),
                    Cloud {
                        identifier: id.to_owned(),
                        name: h.name.clone(),
                        connected: h.online,
                        actual_f10: seen.actual_f10,
                        heat_f10: seen.heat_f10,
                        cool_f10: seen.cool_f10,
                        hvac_mode: seen.hvac_mode,
                        hold: h.hold,
                        hold_since: now,
                        climate,
                        equipment: seen.equipment,
                        thermostat_rev: now,
                        alerts_rev: first_connected,
                        runtime_rev: now,
                        interval_rev: now,
                        interval_slot: slot,
                        thermostat_modified: now,
                        runtime_modified: now,
                        status_modified: now,
                        first_connected,
                        connect_time: self.world.started_at(),
                        disconnect_time: (!h.online).then_some(now),
                        utc_offset_minutes: offset,
                        day_heat_f10: f10(h.schedule.day_heat_c),
                        day_cool_f10: f10(h.schedule.day_cool_c),
                        night_heat_f10: f10(h.schedule.night_heat_c),
                        night_cool_f10: f10(h.schedule.night_cool_c),
                    },
                );
            }
            Some(c) => {
                c.name.clone_from(&h.name);
                c.utc_offset_minutes = offset;
                if !h.online {
                    if c.connected {
                        c.connected = false;
                        c.disconnect_time = Some(now);
                        bump(&mut c.runtime_rev, now);
                    }
                    return;
                }
                let mut report = false;
                if !c.connected {
                    c.connected = true;
                    c.connect_time = now;
                    report = true;
                }
                let hold_changed = c.hold != h.hold;
                let setpoints_changed = c.heat_f10 != seen.heat_f10 || c.cool_f10 != seen.cool_f10;
                if c.hvac_mode != seen.hvac_mode
                    || hold_changed
                    || c.climate != climate
                    || (setpoints_changed && h.hold == HvacHold::Permanent)
                {
                    if hold_changed {
                        c.hold = h.hold;
                        c.hold_since = now;
                    }
                    c.hvac_mode = seen.hvac_mode;
                    c.climate = climate;
                    c.thermostat_modified = now;
                    bump(&mut c.thermostat_rev, now);
                }
                if c.equipment != seen.equipment {
                    c.status_modified = now;
                    report = true;
                }
                if setpoints_changed || (seen.actual_f10 - c.actual_f10).abs() >= deadband.max(1) {
                    report = true;
                }
                if report {
                    c.actual_f10 = seen.actual_f10;
                    c.heat_f10 = seen.heat_f10;
                    c.cool_f10 = seen.cool_f10;
                    c.equipment = seen.equipment;
                    c.runtime_modified = now;
                    bump(&mut c.runtime_rev, now);
                }
                if slot > c.interval_slot {
                    c.interval_slot = slot;
                    bump(&mut c.interval_rev, now);
                }
            }
        }
    }

    fn summary(
        &self,
        s: &mut SimState,
        owned: &[(String, DeviceId)],
        json: Option<&str>,
        now: DateTime<Utc>,
    ) -> Response {
        let (selection, chosen) = match Self::select(owned, json) {
            Ok(x) => x,
            Err(e) => return e.response(),
        };
        let mut revisions = Vec::new();
        let mut statuses = Vec::new();
        for (id, device) in &chosen {
            self.observe(s, id, device, now);
            if let Some(c) = s.clouds.get(device) {
                revisions.push(c.revision().render());
                statuses.push(format!("{id}:{}", c.equipment));
            }
        }
        s.stats.summary_reads += 1;
        let mut body = json!({
            "thermostatCount": revisions.len(),
            "revisionList": revisions,
            "status": { "code": 0, "message": "" },
        });
        if selection.include_equipment_status {
            body["statusList"] = json!(statuses);
        }
        ok(&body)
    }

    fn thermostats(
        &self,
        s: &mut SimState,
        owned: &[(String, DeviceId)],
        json: Option<&str>,
        now: DateTime<Utc>,
    ) -> Response {
        let (selection, chosen) = match Self::select(owned, json) {
            Ok(x) => x,
            Err(e) => return e.response(),
        };
        let mut list = Vec::new();
        for (id, device) in &chosen {
            self.observe(s, id, device, now);
            let equipment = s.equipment.get(device).copied().unwrap_or_default();
            let model = s.config.model_number.clone();
            if let Some(c) = s.clouds.get(device) {
                list.push(render_thermostat(c, &selection, equipment, &model, now));
                *s.stats.full_reads.entry(id.clone()).or_insert(0) += 1;
            }
        }
        s.stats.thermostat_reads += 1;
        let n = list.len();
        ok(&json!({
            "page": { "page": 1, "totalPages": 1, "pageSize": n, "total": n },
            "thermostatList": list,
            "status": { "code": 0, "message": "" },
        }))
    }

    /// Parses and validates an update against ecobee's rules, before anything is sent.
    fn parse_update(
        s: &SimState,
        owned: &[(String, DeviceId)],
        body: &[u8],
    ) -> Result<Update, ApiError> {
        let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(body) else {
            return Err(ApiError::new(4, "Serialization error. Malformed json."));
        };
        let Some(selection) =
            body.get("selection").and_then(|v| serde_json::from_value::<Selection>(v.clone()).ok())
        else {
            return Err(ApiError::new(5, "Invalid request format. Missing selection."));
        };
        let chosen = Self::resolve(owned, &selection)?;
        let hvac_mode = match body.get("thermostat").and_then(|t| t.pointer("/settings/hvacMode")) {
            None => None,
            Some(Value::String(m)) if world_mode(m).is_some() => Some(m.clone()),
            Some(other) => {
                return Err(ApiError::validation(&format!("Invalid hvacMode {other}.")));
            }
        };
        let mut hold = None;
        let mut resume = false;
        let functions = match body.get("functions") {
            None => Vec::new(),
            Some(Value::Array(fs)) => fs.clone(),
            Some(_) => return Err(ApiError::new(5, "Invalid request format. functions.")),
        };
        for function in &functions {
            let params = function.get("params").cloned().unwrap_or(Value::Null);
            match function.get("type").and_then(Value::as_str) {
                Some("setHold") => {
                    let hold_type = params.get("holdType").and_then(Value::as_str).unwrap_or("");
                    if !matches!(
                        hold_type,
                        "indefinite" | "nextTransition" | "holdHours" | "dateTime"
                    ) {
                        return Err(ApiError::validation(&format!(
                            "Invalid holdType {hold_type:?}."
                        )));
                    }
                    let climate = params.get("holdClimateRef").and_then(Value::as_str);
                    let temps = match (
                        int_param(&params, "heatHoldTemp"),
                        int_param(&params, "coolHoldTemp"),
                        climate,
                    ) {
                        (Some(h), Some(c), _) => Some((h, c)),
                        (_, _, Some(_)) => None,
                        _ => {
                            return Err(ApiError::validation(
                                "setHold requires heatHoldTemp and coolHoldTemp or holdClimateRef.",
                            ));
                        }
                    };
                    if let Some((h, c)) = temps {
                        if !(HEAT_RANGE.0..=HEAT_RANGE.1).contains(&h) {
                            return Err(ApiError::validation(&format!(
                                "heatHoldTemp {h} is outside the heat range {}..{}.",
                                HEAT_RANGE.0, HEAT_RANGE.1
                            )));
                        }
                        if !(COOL_RANGE.0..=COOL_RANGE.1).contains(&c) {
                            return Err(ApiError::validation(&format!(
                                "coolHoldTemp {c} is outside the cool range {}..{}.",
                                COOL_RANGE.0, COOL_RANGE.1
                            )));
                        }
                        if c - h < MIN_DELTA {
                            return Err(ApiError::validation(&format!(
                                "coolHoldTemp must be at least {MIN_DELTA} above heatHoldTemp."
                            )));
                        }
                        hold = Some((h, c));
                    } else {
                        // A climate hold: the program's setpoints of that climate, for every
                        // selected thermostat alike (they share the default program here).
                        let c = chosen.first().and_then(|(_, d)| s.clouds.get(d));
                        hold = match (climate, c) {
                            (Some("home" | "away"), Some(c)) => {
                                Some((c.day_heat_f10, c.day_cool_f10))
                            }
                            (Some("sleep"), Some(c)) => Some((c.night_heat_f10, c.night_cool_f10)),
                            (Some(other), _) => {
                                return Err(ApiError::validation(&format!(
                                    "Unknown climate {other:?}."
                                )));
                            }
                            _ => Some((680, 770)),
                        };
                    }
                }
                Some("resumeProgram") => resume = true,
                Some(_) => return Err(ApiError::new(8, "Invalid function.")),
                None => return Err(ApiError::new(5, "Invalid request format. Function type.")),
            }
        }
        if let Some(mode) = &hvac_mode {
            for (id, device) in &chosen {
                let equipment = s.equipment.get(device).copied().unwrap_or_default();
                if !equipment.allows(mode) {
                    return Err(ApiError::validation(&format!(
                        "hvacMode {mode} is not supported by the equipment of thermostat {id}."
                    )));
                }
            }
        }
        Ok(Update {
            devices: chosen.into_iter().map(|(_, d)| d).collect(),
            hold,
            resume,
            hvac_mode,
        })
    }

    fn update(&self, s: &mut SimState, owned: &[(String, DeviceId)], body: &[u8]) -> Response {
        let update = match Self::parse_update(s, owned, body) {
            Ok(u) => u,
            Err(e) => return e.response(),
        };
        for device in &update.devices {
            let current = self.world.hvac(device).map(|h| h.mode);
            let mode = update.hvac_mode.as_deref().and_then(world_mode);
            let mut commands = Vec::new();
            if update.resume {
                commands.push(WorldCommand::HvacFollowSchedule);
            }
            match (update.hold, mode) {
                (Some((h, c)), mode) => commands.push(WorldCommand::SetHvacHold {
                    mode: mode.or(current).unwrap_or(HvacMode::Auto),
                    heat_setpoint: Some(c_of(h)),
                    cool_setpoint: Some(c_of(c)),
                }),
                (None, Some(mode)) => commands.push(WorldCommand::SetHvacHold {
                    mode,
                    heat_setpoint: None,
                    cool_setpoint: None,
                }),
                (None, None) => {}
            }
            for command in commands {
                match self.world.command(WORLD_VENDOR, device, command) {
                    Ok(_) | Err(CommandRejected::AlreadySet) => {}
                    Err(CommandRejected::Offline) => {
                        let id = s.by_device.get(device).cloned().unwrap_or_default();
                        return status_error(
                            3,
                            &format!("Processing error. Thermostat {id} is not connected."),
                        );
                    }
                    Err(CommandRejected::InvalidValue(why)) => return validation(&why),
                    Err(CommandRejected::UnknownDevice { .. }) => return not_authorized(),
                    Err(CommandRejected::Unsupported { .. }) => {
                        return status_error(8, "Invalid function.");
                    }
                    Err(other) => {
                        return status_error(3, &format!("Processing error. {other}."));
                    }
                }
            }
        }
        s.stats.updates += 1;
        ok(&success())
    }
}

/// The world unit as the thermostat would report it now.
struct Seen {
    actual_f10: i64,
    heat_f10: i64,
    cool_f10: i64,
    hvac_mode: &'static str,
    equipment: &'static str,
}

impl Seen {
    fn of(h: &HvacState, equipment: EcobeeEquipment) -> Self {
        Self {
            actual_f10: f10(h.indoor_c),
            heat_f10: f10(h.heat_setpoint),
            cool_f10: f10(h.cool_setpoint),
            hvac_mode: ecobee_mode(h.mode),
            equipment: equipment.status(h.activity),
        }
    }
}

fn render_thermostat(
    c: &Cloud,
    selection: &Selection,
    equipment: EcobeeEquipment,
    model: &str,
    now: DateTime<Utc>,
) -> Value {
    let local_now = local(now, c.utc_offset_minutes);
    let mut t = json!({
        "identifier": c.identifier,
        "name": c.name,
        "thermostatRev": rev(c.thermostat_rev),
        "isRegistered": true,
        "modelNumber": model,
        "brand": "ecobee",
        "features": "Home,HomeKit",
        "lastModified": stamp(c.thermostat_modified),
        "thermostatTime": stamp(local_now),
        "utcTime": stamp(now),
    });
    if selection.include_runtime {
        let interval = local_now.timestamp().rem_euclid(86_400) / 300;
        t["runtime"] = json!({
            "runtimeRev": rev(c.runtime_rev),
            "connected": c.connected,
            "firstConnected": stamp(c.first_connected),
            "connectDateTime": stamp(c.connect_time),
            "disconnectDateTime": c.disconnect_time.map(stamp).unwrap_or_default(),
            "lastModified": stamp(c.runtime_modified),
            "lastStatusModified": stamp(c.status_modified),
            "runtimeDate": local_now.format("%Y-%m-%d").to_string(),
            "runtimeInterval": interval,
            "actualTemperature": c.actual_f10,
            "actualHumidity": HUMIDITY,
            "rawTemperature": c.actual_f10,
            "showIconMode": 0,
            "desiredHeat": c.heat_f10,
            "desiredCool": c.cool_f10,
            "desiredHumidity": 36,
            "desiredDehumidity": 60,
            "desiredFanMode": "auto",
            "desiredHeatRange": [HEAT_RANGE.0, HEAT_RANGE.1],
            "desiredCoolRange": [COOL_RANGE.0, COOL_RANGE.1],
        });
    }
    if selection.include_settings {
        t["settings"] = json!({
            "hvacMode": c.hvac_mode,
            "lastServiceDate": "2025-01-01",
            "heatCoolMinDelta": MIN_DELTA,
            "holdAction": "nextTransition",
            "useCelsius": false,
            "hasHeatPump": equipment.has_heat_pump,
            "hasForcedAir": true,
            "hasBoiler": false,
            "heatStages": equipment.heat_stages,
            "coolStages": equipment.cool_stages,
            "autoHeatCoolFeatureEnabled": equipment.can_heat() && equipment.can_cool(),
            "heatRangeHigh": HEAT_RANGE.1,
            "heatRangeLow": HEAT_RANGE.0,
            "coolRangeHigh": COOL_RANGE.1,
            "coolRangeLow": COOL_RANGE.0,
            "heatMaxTemp": 1200,
            "coolMinTemp": -100,
        });
    }
    if selection.include_equipment_status {
        t["equipmentStatus"] = json!(c.equipment);
    }
    if selection.include_program {
        t["program"] = json!({
            "currentClimateRef": c.climate,
            "climates": [
                { "name": "Home", "climateRef": "home", "isOccupied": true,
                  "heatTemp": c.day_heat_f10, "coolTemp": c.day_cool_f10 },
                { "name": "Sleep", "climateRef": "sleep", "isOccupied": true,
                  "heatTemp": c.night_heat_f10, "coolTemp": c.night_cool_f10 },
            ],
        });
    }
    if selection.include_events {
        let events = if c.hold == HvacHold::Permanent {
            let start = local(c.hold_since, c.utc_offset_minutes);
            let end = start + chrono::Duration::days(3652);
            vec![json!({
                "type": "hold",
                "name": "auto",
                "running": true,
                "startDate": start.format("%Y-%m-%d").to_string(),
                "startTime": start.format("%H:%M:%S").to_string(),
                "endDate": end.format("%Y-%m-%d").to_string(),
                "endTime": end.format("%H:%M:%S").to_string(),
                "isOccupied": false,
                "isCoolOff": matches!(c.hvac_mode, "heat" | "off"),
                "isHeatOff": matches!(c.hvac_mode, "cool" | "off"),
                "coolHoldTemp": c.cool_f10,
                "heatHoldTemp": c.heat_f10,
                "fan": "auto",
                "isTemperatureAbsolute": true,
                "isTemperatureRelative": false,
                "holdClimateRef": "",
            })]
        } else {
            Vec::new()
        };
        t["events"] = json!(events);
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn query_decoding() {
        let q = parse_query("json=%7B%22a%22%3A1%7D&b=x+y&c");
        assert_eq!(q["json"], "{\"a\":1}");
        assert_eq!(q["b"], "x y");
        assert_eq!(q["c"], "");
    }

    #[test]
    fn revisions_increase_strictly() {
        let t = Utc.with_ymd_and_hms(2026, 6, 15, 9, 30, 0).unwrap();
        let mut r = t;
        bump(&mut r, t);
        assert_eq!(rev(r), "260615093001");
        bump(&mut r, t + chrono::Duration::minutes(3));
        assert_eq!(rev(r), "260615093300");
        assert_eq!(stamp(t), "2026-06-15 09:30:00");
    }

    #[test]
    fn equipment() {
        let hp = EcobeeEquipment::HEAT_PUMP;
        assert!(hp.allows("auto") && hp.allows("cool") && hp.allows("heat") && hp.allows("off"));
        let furnace = EcobeeEquipment::FURNACE;
        assert!(
            !furnace.allows("cool") && !furnace.allows("auto") && furnace.allows("auxHeatOnly")
        );
        assert_eq!(hp.status(HvacActivity::Heating), "heatPump,fan");
        assert_eq!(furnace.status(HvacActivity::Heating), "auxHeat1,fan");
        assert_eq!(hp.status(HvacActivity::Idle), "");
    }

    #[test]
    fn modes_round_trip() {
        for mode in [HvacMode::Off, HvacMode::Heat, HvacMode::Cool, HvacMode::Auto] {
            assert_eq!(world_mode(ecobee_mode(mode)), Some(mode));
        }
        assert_eq!(world_mode("auxHeatOnly"), Some(HvacMode::Heat));
        assert_eq!(world_mode("emergency"), None);
    }
}
