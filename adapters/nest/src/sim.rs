//! A simulator of Google's Smart Device Management API and Google's OAuth token endpoint over
//! `oemgate_sim::World`, as an axum [`Router`] meant to be mounted under [`PREFIX`] (`/nest`)
//! of an `oemgate_sim::SimHost`.
//!
//! ```no_run
//! # async fn demo(world: oemgate_sim::World) -> anyhow::Result<()> {
//! use oemgate_nest::sim::{NestSim, PREFIX};
//! let sim = NestSim::new(world.clone());
//! let mut host = oemgate_sim::SimHost::new(world.clock());
//! host.mount(PREFIX, sim.router())?;
//! // A household shares its Nest thermostats: the sim hands out the consent redirect's code.
//! let link = sim.create_account(&world.sites());
//! // ... NestAdapter::exchange_code(&link.code, &link.redirect_uri)
//! # Ok(()) }
//! ```
//!
//! # What it serves (paths below the mount prefix)
//!
//! - `POST /oauth2/v4/token` (Google's token endpoint; form body, the client in the form):
//!   `grant_type=authorization_code` (single-use code bound to its redirect URI, valid
//!   [`CODE_LIFETIME`]) and `grant_type=refresh_token`. Access tokens live
//!   [`ACCESS_TOKEN_LIFETIME`] (`expires_in` 3599); refresh tokens are reusable and not
//!   rotated (a refresh answers no `refresh_token`), and expire only if
//!   [`NestSimConfig::refresh_token_lifetime`] says so (Google's 7 days for apps in testing).
//!   Refused grants are 400 `invalid_grant`, a wrong client 401 `invalid_client`.
//! - `GET /partnerconnections/{project}/auth`: the consent page. With `login_hint` (the Google
//!   account of a user from [`NestSim::create_account`]) it redirects to
//!   `redirect_uri?code=..&state=..` (a code bound to that redirect URI, consent restored);
//!   without it a sign-in form; `decision=deny` redirects with `error=access_denied`.
//! - `GET /v1/enterprises/{project}/devices`, `GET …/devices/{id}`,
//!   `POST …/devices/{id}:executeCommand`, `GET …/structures`, `GET …/structures/{id}`.
//!
//! Every API call needs a bearer token: missing, unknown, expired and revoked tokens are all
//! 401 `UNAUTHENTICATED` with `WWW-Authenticate: Bearer … error="invalid_token"`. A user who
//! removed the project's access ([`NestSim::remove_access`]) gets 403 `PERMISSION_DENIED`; a
//! wrong project 404. The Sandbox limits are enforced per user over any 60 s
//! ([`LIST_QPM`], [`GET_QPM`], [`EXECUTE_QPM`], [`STRUCTURES_QPM`], and
//! [`TRAIT_COMMAND_QPM`] per device and command), answered 429 `RESOURCE_EXHAUSTED` "Rate
//! limited for the ExecuteDeviceCommand API for the user." with `errors[].reason`
//! `rateLimitExceeded` and, as observed, no retry hint.
//!
//! # The world as SDM sees it
//!
//! A Google account is created by [`NestSim::create_account`] with the world sites it shares
//! (each a *structure*); its devices are the HVAC units of those sites with vendor
//! [`WORLD_VENDOR`] (`nest`), each a `sdm.devices.types.THERMOSTAT` in a room. Device,
//! structure and room ids are opaque strings derived from the world's seed and ids
//! ([`NestSim::sdm_device_id`], [`NestSim::structure_id`]).
//!
//! | world | SDM |
//! |---|---|
//! | mode `Off`/`Heat`/`Cool`/`Auto` | `ThermostatMode.mode` `OFF`/`HEAT`/`COOL`/`HEATCOOL` |
//! | heat/cool setpoints | `ThermostatTemperatureSetpoint` (only the mode's; empty in OFF and Eco) |
//! | activity | `ThermostatHvac.status` `OFF`/`HEATING`/`COOLING` |
//! | indoor temperature | `Temperature.ambientTemperatureCelsius` (0.01 °C) |
//! | online | `Connectivity.status`; while offline the last values seen online are shown |
//! | hold / schedule | nothing: SDM has no schedule API |
//!
//! Commands go through `world.command("nest", …)` so the world's latency and ground truth
//! apply: `ThermostatMode.SetMode` is `SetHvacHold { mode, None, None }` (keeps the
//! setpoints), `SetHeat`/`SetCool`/`SetRange` are `SetHvacHold` with the mode and the new
//! setpoint(s). SDM's own checks come first: the device online ("Device is offline.",
//! 400 `FAILED_PRECONDITION`), the mode available (400 `INVALID_ARGUMENT`), a setpoint command
//! matching the mode — the mode as the cloud knows it, including a `SetMode` still in flight —
//! (400 `FAILED_PRECONDITION` "… command not allowed in current thermostat mode."), Eco off,
//! and values within 9–32 °C and 1.5 °C apart in `HEATCOOL` (400 `INVALID_ARGUMENT`). The
//! world's own refusals map to the same errors; "already set" is a success (`{}`), as SDM
//! accepts a command that changes nothing. Every command is answered `{}` once accepted,
//! before the world applied it.
//!
//! What the world lacks is kept here, vendor side: **Eco** ([`NestSim::set_eco`]; the world has
//! no Eco, so while Eco is on the SDM view shows the Eco temperatures and empty setpoints but
//! the world keeps heating to its own setpoints), the available modes of the installation
//! ([`NestSim::set_available_modes`]), the display scale ([`NestSim::set_fahrenheit`]) and the
//! last values seen online. `ThermostatEco.SetMode` only changes the vendor-side Eco flag.
//!
//! # Faults
//!
//! `world.faults().active("nest")` (or `"NEST"`) is rendered in Google's style: `RateLimit` as
//! 429 `RESOURCE_EXHAUSTED` with a `google.rpc.RetryInfo` detail whose `retryDelay` is the
//! fault's `retry_after` (Google's standard retry signal; the SDM's own 429s carry none);
//! `ServerError` 502 as the Google front end's HTML page and other statuses as JSON
//! (`INTERNAL`, `UNAVAILABLE`, `DEADLINE_EXCEEDED`); `Outage` as 503 `UNAVAILABLE`; `Hang`
//! waits, then answers; `Timeout` holds the request for `TIMEOUT_HANG`, then 504; `Malformed`
//! is a 200 HTML page; `Truncated` the right body cut in half; `RevokeTokens` revokes every
//! token on the next request (401 on calls, `invalid_grant` on refresh). Faults apply to the
//! token endpoint as well.

use oemgate_sim::http::{parse_form, truncate};
use std::collections::{BTreeMap, HashMap, VecDeque};
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
    CommandOutcome, CommandRejected, DeviceId, DeviceInfo, DeviceKind, Fault, HvacActivity,
    HvacMode as WorldMode, HvacState, SiteId, TIMEOUT_HANG, World, WorldCommand,
};
use serde_json::{Map, Value, json};

use crate::map::{
    COOL_RANGE, HEAT_RANGE, MIN_HEAT_COOL_GAP, SET_COOL, SET_ECO, SET_HEAT, SET_MODE, SET_RANGE,
};
use crate::model::THERMOSTAT_TYPE;

/// Where the simulator expects to be mounted.
pub const PREFIX: &str = "/nest";
/// The vendor name of Nest devices in the world (and of its command latency).
pub const WORLD_VENDOR: &str = "nest";
/// The vendor name faults are looked up by (`"NEST"` works too).
pub const FAULT_VENDOR: &str = "nest";
/// The Device Access project id of the default configuration.
pub const DEFAULT_PROJECT_ID: &str = "5c4b1e2a-9f3d-4e6b-a8c7-1d2e3f4a5b6c";
/// The OAuth client id of the default configuration.
pub const DEFAULT_CLIENT_ID: &str = "123456789012-oemgatesim.apps.googleusercontent.com";
/// The OAuth client secret of the default configuration.
pub const DEFAULT_CLIENT_SECRET: &str = "GOCSPX-oemgate-sim-nest";
/// The redirect URI accounts are linked with by default.
pub const DEFAULT_REDIRECT_URI: &str = "https://oemgate.example/link/nest/callback";
/// How long an access token works (`expires_in` 3599).
pub const ACCESS_TOKEN_LIFETIME: Duration = Duration::from_secs(3599);
/// How long an authorization code can be exchanged.
pub const CODE_LIFETIME: Duration = Duration::from_secs(10 * 60);
/// Sandbox: `devices.list` per user per minute.
pub const LIST_QPM: usize = 5;
/// Sandbox: `devices.get` per user per minute.
pub const GET_QPM: usize = 10;
/// Sandbox: `devices.executeCommand` per user per minute.
pub const EXECUTE_QPM: usize = 10;
/// Sandbox: `structures.*` per user per minute.
pub const STRUCTURES_QPM: usize = 5;
/// Sandbox: each trait command per user and device per minute.
pub const TRAIT_COMMAND_QPM: usize = 5;
/// Eco temperatures of a thermostat nobody configured, °C (heat below, cool above).
pub const DEFAULT_ECO: (f64, f64) = (16.0, 28.0);

const ROOMS: &[&str] = &["Living Room", "Hallway", "Upstairs", "Kitchen", "Entryway", "Den"];

/// How the simulator behaves.
#[derive(Clone)]
pub struct NestSimConfig {
    /// The Device Access project id (the `enterprises/{id}` of every path).
    pub project_id: String,
    /// The OAuth client id.
    pub client_id: String,
    /// The OAuth client secret.
    pub client_secret: String,
    /// The redirect URI of the codes [`NestSim::create_account`] hands out.
    pub redirect_uri: String,
    /// Access-token lifetime.
    pub access_token_lifetime: Duration,
    /// Refresh-token lifetime (`None`: until revoked, as for published apps; Google gives apps
    /// in testing 7 days).
    pub refresh_token_lifetime: Option<Duration>,
    /// Enforce the Sandbox rate limits.
    pub enforce_rate_limits: bool,
}

impl Default for NestSimConfig {
    fn default() -> Self {
        Self {
            project_id: DEFAULT_PROJECT_ID.to_owned(),
            client_id: DEFAULT_CLIENT_ID.to_owned(),
            client_secret: DEFAULT_CLIENT_SECRET.to_owned(),
            redirect_uri: DEFAULT_REDIRECT_URI.to_owned(),
            access_token_lifetime: ACCESS_TOKEN_LIFETIME,
            refresh_token_lifetime: None,
            enforce_rate_limits: true,
        }
    }
}

impl fmt::Debug for NestSimConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NestSimConfig")
            .field("project_id", &self.project_id)
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("redirect_uri", &self.redirect_uri)
            .field("access_token_lifetime", &self.access_token_lifetime)
            .field("refresh_token_lifetime", &self.refresh_token_lifetime)
            .field("enforce_rate_limits", &self.enforce_rate_limits)
            .finish()
    }
}

/// What a user has after consenting at the Partner Connections Manager: the redirect's code.
#[derive(Clone, PartialEq, Eq)]
pub struct NestLink {
    /// The Google account (an e-mail address; the sim's user id).
    pub user: String,
    /// A fresh single-use authorization code (valid [`CODE_LIFETIME`]).
    pub code: String,
    /// The redirect URI the code is bound to.
    pub redirect_uri: String,
    /// The Device Access project the user consented to.
    pub project_id: String,
}

impl fmt::Debug for NestLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NestLink")
            .field("user", &self.user)
            .field("code", &"<redacted>")
            .field("redirect_uri", &self.redirect_uri)
            .field("project_id", &self.project_id)
            .finish()
    }
}

#[derive(Debug)]
struct User {
    sites: Vec<SiteId>,
    access_removed: bool,
}

#[derive(Debug)]
struct Code {
    user: String,
    redirect_uri: String,
    expires_at: DateTime<Utc>,
}

#[derive(Debug)]
struct Token {
    user: String,
    expires_at: Option<DateTime<Utc>>,
    revoked: bool,
}

/// What SDM knows of a thermostat that the world does not model.
#[derive(Clone, Debug)]
struct DeviceSide {
    eco: bool,
    eco_temps: (f64, f64),
    available: Vec<WorldMode>,
    fahrenheit: bool,
    /// The last mode command accepted and its world ticket.
    pending: Option<(WorldMode, u64)>,
    /// The last state seen while online.
    last_online: Option<HvacState>,
}

impl Default for DeviceSide {
    fn default() -> Self {
        Self {
            eco: false,
            eco_temps: DEFAULT_ECO,
            available: vec![WorldMode::Heat, WorldMode::Cool, WorldMode::Auto, WorldMode::Off],
            fahrenheit: false,
            pending: None,
            last_online: None,
        }
    }
}

#[derive(Debug)]
struct SimState {
    config: NestSimConfig,
    users: BTreeMap<String, User>,
    codes: HashMap<String, Code>,
    access: HashMap<String, Token>,
    refresh: HashMap<String, Token>,
    devices: HashMap<DeviceId, DeviceSide>,
    usage: HashMap<String, VecDeque<DateTime<Utc>>>,
    serial: u64,
    next_user: u64,
}

/// The simulated SDM API and Google token endpoint. Cheap to clone; clones share everything.
#[derive(Clone)]
pub struct NestSim {
    world: World,
    clock: Arc<dyn Clock>,
    state: Arc<Mutex<SimState>>,
}

impl fmt::Debug for NestSim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.lock();
        f.debug_struct("NestSim")
            .field("project_id", &s.config.project_id)
            .field("users", &s.users.len())
            .finish_non_exhaustive()
    }
}

// ---- responses -----------------------------------------------------------------------------

fn json_response(status: StatusCode, body: &Value) -> Response {
    let mut response = (status, body.to_string()).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json; charset=UTF-8"));
    response
}

fn ok(body: Value) -> Response {
    json_response(StatusCode::OK, &body)
}

/// Google's error shape.
fn google_error(status: StatusCode, rpc: &str, message: &str) -> Response {
    let body = json!({ "error": { "code": status.as_u16(), "message": message, "status": rpc } });
    json_response(status, &body)
}

fn failed_precondition(message: &str) -> Response {
    google_error(StatusCode::BAD_REQUEST, "FAILED_PRECONDITION", message)
}

fn invalid_argument(message: &str) -> Response {
    google_error(StatusCode::BAD_REQUEST, "INVALID_ARGUMENT", message)
}

fn not_found(message: &str) -> Response {
    google_error(StatusCode::NOT_FOUND, "NOT_FOUND", message)
}

fn unauthenticated(message: &str) -> Response {
    let mut response = google_error(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED", message);
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(
            "Bearer realm=\"https://accounts.google.com/\", error=\"invalid_token\"",
        ),
    );
    response
}

const INVALID_CREDENTIALS: &str = "Request had invalid authentication credentials. Expected OAuth \
    2 access token, login cookie or other valid authentication credential. See \
    https://developers.google.com/identity/sign-in/web/devconsole-project.";

const MISSING_CREDENTIALS: &str = "Request is missing required authentication credential. \
    Expected OAuth 2 access token, login cookie or other valid authentication credential. See \
    https://developers.google.com/identity/sign-in/web/devconsole-project.";

/// The 429 SDM answers when a limit is hit (as seen in the field: no retry hint).
fn rate_limited(message: &str) -> Response {
    let body = json!({ "error": {
        "code": 429,
        "message": message,
        "errors": [{ "message": message, "domain": "global", "reason": "rateLimitExceeded" }],
        "status": "RESOURCE_EXHAUSTED",
    }});
    json_response(StatusCode::TOO_MANY_REQUESTS, &body)
}

/// The injected 429: Google's `RetryInfo` carries the wait.
fn rate_limited_with_retry(retry_after: Duration) -> Response {
    let secs = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
    let message = "Resource has been exhausted (e.g. check quota).";
    let body = json!({ "error": {
        "code": 429,
        "message": message,
        "errors": [{ "message": message, "domain": "global", "reason": "rateLimitExceeded" }],
        "status": "RESOURCE_EXHAUSTED",
        "details": [{
            "@type": "type.googleapis.com/google.rpc.RetryInfo",
            "retryDelay": format!("{secs}s"),
        }],
    }});
    json_response(StatusCode::TOO_MANY_REQUESTS, &body)
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    json_response(status, &json!({ "error": error, "error_description": description }))
}

fn html(status: StatusCode, title: &str, text: &str) -> Response {
    let page = format!(
        "<!DOCTYPE html>\n<html lang=en>\n  <meta charset=utf-8>\n  <title>{title}</title>\n  \
         <p><b>{}.</b> <ins>That’s an error.</ins>\n  <p>{text} <ins>That’s all we know.</ins>\n",
        status.as_u16()
    );
    let mut response = (status, page).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=UTF-8"));
    response
}

fn server_error(status: u16) -> Response {
    let status = StatusCode::from_u16(status)
        .ok()
        .filter(|s| s.is_server_error())
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    match status.as_u16() {
        502 => html(
            status,
            "Error 502 (Server Error)!!1",
            "The server encountered a temporary error and could not complete your request.\
             <p>Please try again in 30 seconds.",
        ),
        500 => google_error(status, "INTERNAL", "Internal error encountered."),
        503 => google_error(status, "UNAVAILABLE", "The service is currently unavailable."),
        504 => google_error(
            status,
            "DEADLINE_EXCEEDED",
            "Deadline expired before operation could complete.",
        ),
        _ => google_error(status, "UNKNOWN", "Unknown error."),
    }
}

// ---- helpers -------------------------------------------------------------------------------

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

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// An opaque, URL-safe id like Google's (`AVPHwEu…`).
fn opaque(prefix: &str, parts: &[u64]) -> String {
    let mut out = String::from(prefix);
    for (i, p) in parts.iter().enumerate() {
        let mut v = hash(&[*p, i as u64, 0x5D_4E57]);
        for _ in 0..10 {
            out.push(char::from(ALPHABET[(v & 63) as usize]));
            v >>= 6;
        }
    }
    out
}

fn sdm_mode(mode: WorldMode) -> &'static str {
    match mode {
        WorldMode::Off => "OFF",
        WorldMode::Heat => "HEAT",
        WorldMode::Cool => "COOL",
        WorldMode::Auto => "HEATCOOL",
    }
}

fn world_mode(sdm: &str) -> Option<WorldMode> {
    match sdm {
        "OFF" => Some(WorldMode::Off),
        "HEAT" => Some(WorldMode::Heat),
        "COOL" => Some(WorldMode::Cool),
        "HEATCOOL" => Some(WorldMode::Auto),
        _ => None,
    }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// The name SDM's rate-limit message gives a command.
fn command_label(command: &str) -> &'static str {
    match command {
        SET_MODE => "SetThermostatMode",
        SET_HEAT => "SetThermostatHeatTemperature",
        SET_COOL => "SetThermostatCoolTemperature",
        SET_RANGE => "SetThermostatTemperatureRange",
        SET_ECO => "SetThermostatEcoMode",
        _ => "DeviceCommand",
    }
}

fn not_allowed_in_mode(command: &str) -> Response {
    failed_precondition(&format!("{command} command not allowed in current thermostat mode."))
}

/// A setpoint parameter in range, or the `INVALID_ARGUMENT` message.
fn celsius_param(
    params: &Map<String, Value>,
    key: &str,
    (min, max): (f64, f64),
    what: &str,
) -> Result<f64, String> {
    let value = params
        .get(key)
        .and_then(Value::as_f64)
        .filter(|v| v.is_finite())
        .ok_or_else(|| format!("Invalid value at 'params.{key}'."))?;
    if (min..=max).contains(&value) {
        Ok(value)
    } else {
        Err(format!("{what} setpoint {value} is out of range ({min}..{max} Celsius)."))
    }
}

async fn handle(
    State(sim): State<NestSim>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    sim.apply_revocation();
    let fault = sim.active_fault();
    match &fault {
        Some(Fault::RateLimit { retry_after }) => return rate_limited_with_retry(*retry_after),
        Some(Fault::ServerError { status }) => return server_error(*status),
        Some(Fault::Outage) => {
            return google_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "UNAVAILABLE",
                "The service is currently unavailable.",
            );
        }
        Some(Fault::Hang { .. }) => {
            if let Some(wait) = fault.as_ref().and_then(|f| f.hang_real(sim.clock.as_ref())) {
                tokio::time::sleep(wait).await;
            }
        }
        Some(Fault::Timeout) => {
            tokio::time::sleep(TIMEOUT_HANG).await;
            return server_error(504);
        }
        Some(Fault::Malformed) => {
            return html(
                StatusCode::OK,
                "Sign in - Google Accounts",
                "Please sign in to continue to Smart Device Management.",
            );
        }
        Some(Fault::Truncated | Fault::RevokeTokens) | None => {}
    }
    let response = sim.route(&method, &uri, &headers, &body);
    if matches!(fault, Some(Fault::Truncated)) { truncate(response).await } else { response }
}

impl NestSim {
    /// A simulator over `world` with the default project and OAuth client.
    pub fn new(world: World) -> Self {
        Self::with_config(world, NestSimConfig::default())
    }

    /// A simulator over `world` with `config`.
    pub fn with_config(world: World, config: NestSimConfig) -> Self {
        let clock = world.clock();
        let state = SimState {
            config,
            users: BTreeMap::new(),
            codes: HashMap::new(),
            access: HashMap::new(),
            refresh: HashMap::new(),
            devices: HashMap::new(),
            usage: HashMap::new(),
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

    /// The configuration.
    pub fn config(&self) -> NestSimConfig {
        self.lock().config.clone()
    }

    /// The Device Access project id.
    pub fn project_id(&self) -> String {
        self.lock().config.project_id.clone()
    }

    /// The SDM device id a world device is exposed as (stable for a seed).
    pub fn sdm_device_id(&self, device: &DeviceId) -> String {
        opaque("AVPHwEu", &[self.world.seed(), hash_str(device.as_str()), 1, 2])
    }

    /// The SDM structure id a world site is exposed as (stable for a seed).
    pub fn structure_id(&self, site: &SiteId) -> String {
        opaque("AVPHwEv", &[self.world.seed(), hash_str(site.as_str()), 3])
    }

    fn room_id(&self, device: &DeviceId) -> String {
        opaque("AVPHwEw", &[self.world.seed(), hash_str(device.as_str()), 4])
    }

    fn room_name(&self, device: &DeviceId) -> &'static str {
        let i = hash(&[self.world.seed(), hash_str(device.as_str())]) % ROOMS.len() as u64;
        ROOMS[usize::try_from(i).unwrap_or(0)]
    }

    fn new_secret(s: &mut SimState, seed: u64, kind: u64) -> String {
        s.serial += 1;
        let a = hash(&[seed, kind, s.serial]);
        let b = hash(&[a, s.serial, 0x6E_E57]);
        format!("{a:016x}{b:016x}")
    }

    /// Creates a Google account sharing `sites` (their Nest thermostats) with the project, and
    /// returns what the consent redirect hands over: an authorization code.
    pub fn create_account(&self, sites: &[SiteId]) -> NestLink {
        let now = self.clock.now();
        let seed = self.world.seed();
        let mut s = self.lock();
        s.next_user += 1;
        let user = format!("nest.user{}@example.invalid", s.next_user);
        s.users.insert(user.clone(), User { sites: sites.to_vec(), access_removed: false });
        let redirect_uri = s.config.redirect_uri.clone();
        let project_id = s.config.project_id.clone();
        let code = Self::issue_code(&mut s, seed, &user, &redirect_uri, now);
        NestLink { user, code, redirect_uri, project_id }
    }

    /// A fresh authorization code for an existing user (they consent again, e.g. to relink
    /// after a revocation; it also gives the project its access back); `None` for an unknown
    /// user.
    pub fn new_authorization_code(&self, user: &str) -> Option<String> {
        let now = self.clock.now();
        let seed = self.world.seed();
        let mut s = self.lock();
        s.users.get_mut(user)?.access_removed = false;
        let redirect_uri = s.config.redirect_uri.clone();
        Some(Self::issue_code(&mut s, seed, user, &redirect_uri, now))
    }

    fn issue_code(
        s: &mut SimState,
        seed: u64,
        user: &str,
        redirect_uri: &str,
        now: DateTime<Utc>,
    ) -> String {
        let code = format!("4/0A{}", Self::new_secret(s, seed, 1));
        s.codes.insert(
            code.clone(),
            Code {
                user: user.to_owned(),
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
            token.expires_at = Some(token.expires_at.map_or(now, |t| t.min(now)));
        }
    }

    /// Revokes every token of a user (they removed the app in their Google account).
    pub fn revoke_user(&self, user: &str) {
        let mut guard = self.lock();
        let s = &mut *guard;
        for token in s.access.values_mut().chain(s.refresh.values_mut()) {
            if token.user == user {
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

    /// The user removed the project's access in the Partner Connections Manager: tokens still
    /// work, every API call is 403 `PERMISSION_DENIED` until they consent again.
    pub fn remove_access(&self, user: &str) {
        if let Some(u) = self.lock().users.get_mut(user) {
            u.access_removed = true;
        }
    }

    /// Turns Eco (`MANUAL_ECO`) on or off, as the user would in the Nest app.
    pub fn set_eco(&self, device: &DeviceId, on: bool) {
        self.lock().devices.entry(device.clone()).or_default().eco = on;
    }

    /// Sets a thermostat's Eco temperatures (heat below, cool above), °C.
    pub fn set_eco_temperatures(&self, device: &DeviceId, heat: f64, cool: f64) {
        self.lock().devices.entry(device.clone()).or_default().eco_temps = (heat, cool);
    }

    /// Sets the modes the installation supports (a heat-only system: `[Heat, Off]`).
    pub fn set_available_modes(&self, device: &DeviceId, modes: &[WorldMode]) {
        self.lock().devices.entry(device.clone()).or_default().available = modes.to_vec();
    }

    /// Makes the thermostat display °F (`Settings.temperatureScale`; values stay °C).
    pub fn set_fahrenheit(&self, device: &DeviceId, fahrenheit: bool) {
        self.lock().devices.entry(device.clone()).or_default().fahrenheit = fahrenheit;
    }

    /// Enables or disables the Sandbox rate limits.
    pub fn set_enforce_rate_limits(&self, enforce: bool) {
        let mut s = self.lock();
        s.config.enforce_rate_limits = enforce;
        s.usage.clear();
    }

    fn apply_revocation(&self) {
        let faults = self.world.faults();
        let due = faults.take_revocation(FAULT_VENDOR) | faults.take_revocation("NEST");
        if due {
            self.revoke_all_tokens();
        }
    }

    fn active_fault(&self) -> Option<Fault> {
        let faults = self.world.faults();
        faults.active(FAULT_VENDOR).or_else(|| faults.active("NEST"))
    }

    fn route(&self, method: &Method, uri: &Uri, headers: &HeaderMap, body: &[u8]) -> Response {
        let now = self.clock.now();
        let segments: Vec<&str> = uri.path().split('/').filter(|s| !s.is_empty()).collect();
        match segments.as_slice() {
            ["oauth2", "v4", "token"] | ["token"] if method == Method::POST => {
                let mut params = parse_form(uri.query().unwrap_or(""));
                if let Ok(form) = std::str::from_utf8(body) {
                    params.extend(parse_form(form.trim()));
                }
                self.token(&params, now)
            }
            ["oauth2", "v4", "token"] | ["token"] => {
                oauth_error(StatusCode::METHOD_NOT_ALLOWED, "invalid_request", "Method not allowed")
            }
            ["partnerconnections", project, "auth"] if method == Method::GET => {
                self.consent(project, parse_form(uri.query().unwrap_or("")), now)
            }
            ["v1", "enterprises", project, rest @ ..] => {
                self.api(method, project, rest, headers, body, now)
            }
            _ => not_found("Method not found."),
        }
    }

    // ---- OAuth -------------------------------------------------------------------------------

    /// The Partner Connections Manager: the user signs in and shares their devices.
    fn consent(
        &self,
        project: &str,
        params: BTreeMap<String, String>,
        now: DateTime<Utc>,
    ) -> Response {
        let field = |k: &str| params.get(k).map(String::as_str).unwrap_or("");
        let seed = self.world.seed();
        let mut s = self.lock();
        if project != s.config.project_id
            || field("client_id") != s.config.client_id
            || field("response_type") != "code"
        {
            return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "Invalid request");
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
                ("error_description", "The user did not share any device"),
            ]);
        }
        let form = |status: StatusCode, message: Option<&str>| {
            let page = oemgate_sim::http::authorize_form("Google Nest", "auth", &params, message);
            let mut response = (status, page).into_response();
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
            response
        };
        if field("login_hint").is_empty() {
            return form(StatusCode::OK, None);
        }
        let login = field("login_hint").to_ascii_lowercase();
        let Some(user) = s.users.get_mut(&login) else {
            return form(StatusCode::UNAUTHORIZED, Some("Unknown Google account."));
        };
        user.access_removed = false;
        let code = Self::issue_code(&mut s, seed, &login, field("redirect_uri"), now);
        redirect(&[("code", &code)])
    }

    fn token(&self, params: &BTreeMap<String, String>, now: DateTime<Utc>) -> Response {
        let seed = self.world.seed();
        let mut s = self.lock();
        let param = |k: &str| params.get(k).map(String::as_str).unwrap_or("");
        if param("client_id") != s.config.client_id {
            return oauth_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "The OAuth client was not found.",
            );
        }
        if param("client_secret") != s.config.client_secret {
            return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", "Unauthorized");
        }
        let (user, issue_refresh) = match param("grant_type") {
            "authorization_code" => match s.codes.remove(param("code")) {
                Some(c) if c.redirect_uri != param("redirect_uri") => {
                    return oauth_error(
                        StatusCode::BAD_REQUEST,
                        "redirect_uri_mismatch",
                        "Bad Request",
                    );
                }
                Some(c) if now < c.expires_at => (c.user, true),
                _ => return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", "Bad Request"),
            },
            "refresh_token" => {
                let usable = s
                    .refresh
                    .get(param("refresh_token"))
                    .filter(|t| !t.revoked && t.expires_at.is_none_or(|end| now < end));
                match usable {
                    Some(t) => (t.user.clone(), false),
                    None => {
                        return oauth_error(
                            StatusCode::BAD_REQUEST,
                            "invalid_grant",
                            "Token has been expired or revoked.",
                        );
                    }
                }
            }
            "" => {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "Missing grant_type",
                );
            }
            other => {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "unsupported_grant_type",
                    &format!("Invalid grant_type: {other}"),
                );
            }
        };
        let access = format!("ya29.a0{}", Self::new_secret(&mut s, seed, 10));
        let lifetime = s.config.access_token_lifetime;
        s.access.insert(
            access.clone(),
            Token { user: user.clone(), expires_at: Some(plus(now, lifetime)), revoked: false },
        );
        let mut body = json!({
            "access_token": access,
            "expires_in": lifetime.as_secs(),
            "scope": crate::SDM_SCOPE,
            "token_type": "Bearer",
        });
        if issue_refresh {
            let refresh = format!("1//0{}", Self::new_secret(&mut s, seed, 11));
            let expires_at = s.config.refresh_token_lifetime.map(|d| plus(now, d));
            s.refresh.insert(refresh.clone(), Token { user, expires_at, revoked: false });
            body["refresh_token"] = json!(refresh);
        }
        ok(body)
    }

    // ---- API ---------------------------------------------------------------------------------

    /// Counts a request against a per-minute limit; false when the limit is reached.
    fn admit(s: &mut SimState, key: String, limit: usize, now: DateTime<Utc>) -> bool {
        if !s.config.enforce_rate_limits {
            return true;
        }
        let window = s.usage.entry(key).or_default();
        let start = now - chrono::Duration::seconds(60);
        while window.front().is_some_and(|t| *t <= start) {
            window.pop_front();
        }
        if window.len() >= limit {
            return false;
        }
        window.push_back(now);
        true
    }

    fn api(
        &self,
        method: &Method,
        project: &str,
        rest: &[&str],
        headers: &HeaderMap,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Response {
        let mut s = self.lock();
        let Some(token) = bearer(headers) else {
            return unauthenticated(MISSING_CREDENTIALS);
        };
        let user = match s.access.get(token) {
            Some(t) if !t.revoked && t.expires_at.is_none_or(|end| now < end) => t.user.clone(),
            _ => return unauthenticated(INVALID_CREDENTIALS),
        };
        let Some(account) = s.users.get(&user) else {
            return unauthenticated(INVALID_CREDENTIALS);
        };
        if account.access_removed {
            return google_error(
                StatusCode::FORBIDDEN,
                "PERMISSION_DENIED",
                "The caller does not have permission",
            );
        }
        let sites = account.sites.clone();
        if project != s.config.project_id {
            return not_found(&format!("Enterprise enterprises/{project} not found."));
        }
        let get = method == Method::GET;
        let limited =
            |api: &str| rate_limited(&format!("Rate limited for the {api} API for the user."));
        match rest {
            ["devices"] if get => {
                if !Self::admit(&mut s, format!("{user} list"), LIST_QPM, now) {
                    return limited("ListDevices");
                }
                let devices: Vec<Value> = self
                    .devices_of(&sites)
                    .iter()
                    .filter_map(|info| self.render_device(&mut s, project, info))
                    .collect();
                // Protobuf JSON leaves an empty list out.
                if devices.is_empty() { ok(json!({})) } else { ok(json!({ "devices": devices })) }
            }
            ["devices", id] if get && !id.contains(':') => {
                if !Self::admit(&mut s, format!("{user} get"), GET_QPM, now) {
                    return limited("GetDevice");
                }
                match self.find_device(&sites, id) {
                    Some(info) => match self.render_device(&mut s, project, &info) {
                        Some(device) => ok(device),
                        None => self.device_not_found(project, id),
                    },
                    None => self.device_not_found(project, id),
                }
            }
            ["devices", id_command] if method == Method::POST => {
                let Some((id, "executeCommand")) = id_command.split_once(':') else {
                    return not_found("Method not found.");
                };
                if !Self::admit(&mut s, format!("{user} execute"), EXECUTE_QPM, now) {
                    return limited("ExecuteDeviceCommand");
                }
                let Some(info) = self.find_device(&sites, id) else {
                    return self.device_not_found(project, id);
                };
                self.execute(&mut s, &user, &info, body, now)
            }
            ["structures"] if get => {
                if !Self::admit(&mut s, format!("{user} structures"), STRUCTURES_QPM, now) {
                    return limited("ListStructures");
                }
                let structures: Vec<Value> =
                    sites.iter().map(|site| self.render_structure(project, site)).collect();
                if structures.is_empty() {
                    ok(json!({}))
                } else {
                    ok(json!({ "structures": structures }))
                }
            }
            ["structures", id] if get => {
                if !Self::admit(&mut s, format!("{user} structures"), STRUCTURES_QPM, now) {
                    return limited("GetStructure");
                }
                match sites.iter().find(|site| self.structure_id(site) == *id) {
                    Some(site) => ok(self.render_structure(project, site)),
                    None => not_found(&format!(
                        "Structure enterprises/{project}/structures/{id} not found."
                    )),
                }
            }
            _ => not_found("Method not found."),
        }
    }

    fn device_not_found(&self, project: &str, id: &str) -> Response {
        not_found(&format!("Device enterprises/{project}/devices/{id} not found."))
    }

    /// The Nest thermostats of the user's sites, in id order.
    fn devices_of(&self, sites: &[SiteId]) -> Vec<DeviceInfo> {
        sites
            .iter()
            .flat_map(|site| self.world.devices_of_site(site))
            .filter(|d| d.kind == DeviceKind::Hvac && d.vendor == WORLD_VENDOR)
            .collect()
    }

    fn find_device(&self, sites: &[SiteId], sdm_id: &str) -> Option<DeviceInfo> {
        self.devices_of(sites).into_iter().find(|d| self.sdm_device_id(&d.id) == sdm_id)
    }

    fn render_structure(&self, project: &str, site: &SiteId) -> Value {
        let name = self.world.site(site).map(|s| s.name).unwrap_or_default();
        json!({
            "name": format!("enterprises/{project}/structures/{}", self.structure_id(site)),
            "traits": { "sdm.structures.traits.Info": { "customName": name } },
        })
    }

    /// A thermostat as SDM shows it: the world's state (the last state seen online while
    /// offline) plus what only SDM knows.
    fn render_device(&self, s: &mut SimState, project: &str, info: &DeviceInfo) -> Option<Value> {
        let live = self.world.hvac(&info.id)?;
        let side = s.devices.entry(info.id.clone()).or_default();
        let h = if live.online {
            side.last_online = Some(live.clone());
            live.clone()
        } else {
            side.last_online.clone().unwrap_or_else(|| live.clone())
        };
        let structure = self.structure_id(&info.site);
        let room = format!(
            "enterprises/{project}/structures/{structure}/rooms/{}",
            self.room_id(&info.id)
        );
        let setpoints = if side.eco {
            json!({})
        } else {
            match h.mode {
                WorldMode::Heat => json!({ "heatCelsius": h.heat_setpoint }),
                WorldMode::Cool => json!({ "coolCelsius": h.cool_setpoint }),
                WorldMode::Auto => {
                    json!({ "heatCelsius": h.heat_setpoint, "coolCelsius": h.cool_setpoint })
                }
                WorldMode::Off => json!({}),
            }
        };
        let hvac_status = match h.activity {
            HvacActivity::Idle => "OFF",
            HvacActivity::Heating => "HEATING",
            HvacActivity::Cooling => "COOLING",
        };
        let available: Vec<&str> = side.available.iter().map(|m| sdm_mode(*m)).collect();
        Some(json!({
            "name": format!("enterprises/{project}/devices/{}", self.sdm_device_id(&info.id)),
            "type": THERMOSTAT_TYPE,
            "assignee": room,
            "traits": {
                "sdm.devices.traits.Info": { "customName": h.name },
                "sdm.devices.traits.Connectivity": {
                    "status": if live.online { "ONLINE" } else { "OFFLINE" },
                },
                "sdm.devices.traits.Fan": {},
                "sdm.devices.traits.ThermostatMode": {
                    "mode": sdm_mode(h.mode),
                    "availableModes": available,
                },
                "sdm.devices.traits.ThermostatEco": {
                    "availableModes": ["OFF", "MANUAL_ECO"],
                    "mode": if side.eco { "MANUAL_ECO" } else { "OFF" },
                    "heatCelsius": side.eco_temps.0,
                    "coolCelsius": side.eco_temps.1,
                },
                "sdm.devices.traits.ThermostatHvac": { "status": hvac_status },
                "sdm.devices.traits.Settings": {
                    "temperatureScale": if side.fahrenheit { "FAHRENHEIT" } else { "CELSIUS" },
                },
                "sdm.devices.traits.ThermostatTemperatureSetpoint": setpoints,
                "sdm.devices.traits.Temperature": {
                    "ambientTemperatureCelsius": round2(h.indoor_c),
                },
            },
            "parentRelations": [{ "parent": room, "displayName": self.room_name(&info.id) }],
        }))
    }

    /// The mode as the cloud knows it: a mode command still in flight counts.
    fn projected_mode(&self, side: &DeviceSide, h: &HvacState) -> WorldMode {
        match side.pending {
            Some((mode, ticket))
                if matches!(
                    self.world.command_outcome(ticket),
                    Some(CommandOutcome::Pending { .. })
                ) =>
            {
                mode
            }
            _ => h.mode,
        }
    }

    fn execute(
        &self,
        s: &mut SimState,
        user: &str,
        info: &DeviceInfo,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Response {
        let Ok(request) = serde_json::from_slice::<Value>(body) else {
            return invalid_argument("Invalid JSON payload received.");
        };
        let Some(command) = request.get("command").and_then(Value::as_str) else {
            return invalid_argument("Invalid value at 'command'.");
        };
        let empty = Map::new();
        let params = request.get("params").and_then(Value::as_object).unwrap_or(&empty);
        if ![SET_MODE, SET_HEAT, SET_COOL, SET_RANGE, SET_ECO].contains(&command) {
            return not_found(&format!("Command {command} not found."));
        }
        let key = format!("{user} {} {command}", info.id);
        if !Self::admit(s, key, TRAIT_COMMAND_QPM, now) {
            return rate_limited(&format!(
                "Rate limited for the {} command for the user.",
                command_label(command)
            ));
        }
        let Some(h) = self.world.hvac(&info.id) else {
            return not_found("Device not found.");
        };
        if !h.online {
            return failed_precondition("Device is offline.");
        }
        let side = s.devices.entry(info.id.clone()).or_default().clone();
        let mode_now = self.projected_mode(&side, &h);
        let hold = |mode: WorldMode, heat: Option<f64>, cool: Option<f64>| {
            WorldCommand::SetHvacHold { mode, heat_setpoint: heat, cool_setpoint: cool }
        };
        let world_command = match command {
            SET_MODE => {
                let mode = params.get("mode").and_then(Value::as_str).and_then(world_mode);
                let Some(mode) = mode else {
                    return invalid_argument("Invalid value at 'params.mode'.");
                };
                if !side.available.contains(&mode) {
                    return invalid_argument(&format!(
                        "Thermostat mode {} is not available on this device.",
                        sdm_mode(mode)
                    ));
                }
                hold(mode, None, None)
            }
            SET_ECO => {
                let eco = match params.get("mode").and_then(Value::as_str) {
                    Some("MANUAL_ECO") => true,
                    Some("OFF") => false,
                    _ => return invalid_argument("Invalid value at 'params.mode'."),
                };
                if mode_now == WorldMode::Off || eco == side.eco {
                    return not_allowed_in_mode(command);
                }
                s.devices.entry(info.id.clone()).or_default().eco = eco;
                return ok(json!({}));
            }
            _ => {
                if side.eco {
                    return failed_precondition(
                        "Command not allowed when thermostat in MANUAL_ECO mode.",
                    );
                }
                let needed = match command {
                    SET_HEAT => WorldMode::Heat,
                    SET_COOL => WorldMode::Cool,
                    _ => WorldMode::Auto,
                };
                if mode_now != needed {
                    return not_allowed_in_mode(command);
                }
                let heat = if command == SET_COOL {
                    None
                } else {
                    match celsius_param(params, "heatCelsius", HEAT_RANGE, "Heat") {
                        Ok(v) => Some(v),
                        Err(why) => return invalid_argument(&why),
                    }
                };
                let cool = if command == SET_HEAT {
                    None
                } else {
                    match celsius_param(params, "coolCelsius", COOL_RANGE, "Cool") {
                        Ok(v) => Some(v),
                        Err(why) => return invalid_argument(&why),
                    }
                };
                if let (Some(heat), Some(cool)) = (heat, cool)
                    && cool - heat < MIN_HEAT_COOL_GAP - 1e-9
                {
                    return invalid_argument(&format!(
                        "Cool setpoint must be at least {MIN_HEAT_COOL_GAP} Celsius above the \
                         heat setpoint."
                    ));
                }
                hold(needed, heat, cool)
            }
        };
        let WorldCommand::SetHvacHold { mode, .. } = world_command else {
            return ok(json!({}));
        };
        match self.world.command(WORLD_VENDOR, &info.id, world_command) {
            Ok(ticket) => {
                s.devices.entry(info.id.clone()).or_default().pending = Some((mode, ticket.id));
                ok(json!({}))
            }
            Err(CommandRejected::AlreadySet) => ok(json!({})),
            Err(CommandRejected::Offline) => failed_precondition("Device is offline."),
            Err(CommandRejected::InvalidValue(why)) => invalid_argument(&why),
            Err(CommandRejected::UnknownDevice { .. }) => not_found("Device not found."),
            Err(other) => failed_precondition(&other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_opaque_and_url_safe() {
        let a = opaque("AVPHwEu", &[1, 2, 3]);
        assert_eq!(a.len(), 7 + 30);
        assert!(crate::map::is_valid_device_id(&a));
        assert_ne!(a, opaque("AVPHwEu", &[1, 2, 4]));
        assert_eq!(a, opaque("AVPHwEu", &[1, 2, 3]));
    }

    #[test]
    fn forms_decode() {
        let f = parse_form("a=1&redirect_uri=https%3A%2F%2Fx%2Fcb&b=x+y&c");
        assert_eq!(f["redirect_uri"], "https://x/cb");
        assert_eq!(f["b"], "x y");
        assert_eq!(f["c"], "");
    }

    #[test]
    fn modes_round_trip() {
        for m in [WorldMode::Off, WorldMode::Heat, WorldMode::Cool, WorldMode::Auto] {
            assert_eq!(world_mode(sdm_mode(m)), Some(m));
        }
        assert_eq!(world_mode("ECO"), None);
    }
}
