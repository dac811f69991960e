//! A simulator of Zaptec's cloud (`api.zaptec.com`: the API under `/api` and the OAuth token
//! endpoint) over `oemgate_sim::World`, as an axum [`Router`] meant to be mounted under
//! [`PREFIX`] (`/zaptec`) of an `oemgate_sim::SimHost`.
//!
//! ```no_run
//! # async fn demo(world: oemgate_sim::World) -> anyhow::Result<()> {
//! use oemgate_zaptec::sim::{PREFIX, ZaptecSim};
//! let sim = ZaptecSim::new(world.clone());
//! let mut host = oemgate_sim::SimHost::new(world.clock());
//! host.mount(PREFIX, sim.router())?;
//! // A household links its Zaptec account: the sim hands out the login the user would type.
//! let login = sim.create_account(&world.sites());
//! // ... ZaptecAdapter::login(&login.username, &login.password)
//! # Ok(()) }
//! ```
//!
//! # What it serves (paths below the mount prefix; matched case-insensitively, as Zaptec's
//! ASP.NET routes are)
//!
//! - `POST /oauth/token`, form-encoded `grant_type=password&username=..&password=..`: answers
//!   `{"access_token","token_type":"Bearer","expires_in":86400}`, no refresh token. A wrong
//!   login is 400 `{"error":"invalid_grant","error_description":"The user name or password is
//!   incorrect."}`.
//! - `GET /api/chargers?PageIndex=&PageSize=` (`{"Pages","Data"}`), `GET /api/chargers/{id}`,
//!   `GET /api/chargers/{id}/state` (the list of `StateId` observations),
//!   `POST /api/chargers/{id}/sendCommand/{commandId}` (507 `ResumeCharging` and 501; 506
//!   `StopChargingFinal`, 502 and 10001 `DeauthorizeAndStop`; 102 `RestartCharger` is a no-op),
//!   `POST /api/chargers/{id}/authorizecharge` (a no-op),
//!   `GET /api/installation`, `GET /api/installation/{id}`,
//!   `GET /api/installation/{id}/hierarchy`,
//!   `POST /api/installation/{id}/update {"availableCurrent":16}` (or all three
//!   `availableCurrentPhase1..3`), and `GET /api/constants`.
//!
//! Every API call needs a bearer token of the login flow (else 401 with
//! `WWW-Authenticate: Bearer error="invalid_token"` and no body: expired, unknown and revoked
//! tokens alike). Each account may send [`RATE_LIMIT_PER_SECOND`] requests per second of the
//! world's clock ([`ZaptecSimConfig::rate_limit_per_second`]); more get the API gateway's
//! 429 `{"statusCode":429,"message":"Rate limit is exceeded. Try again in 1 seconds."}` with
//! `Retry-After: 1`.
//!
//! # The world as Zaptec sees it
//!
//! A Zaptec *installation* is a world site given to an account ([`ZaptecSim::create_account`]);
//! its chargers are the site's chargers of vendor [`WORLD_VENDOR`] (`zaptec`), all on one
//! circuit. Ids are GUIDs derived from the world's seed and ids ([`ZaptecSim::charger_id`],
//! [`ZaptecSim::installation_id`]); serial numbers are `ZAP` (Go) or, for chargers whose name
//! says "Pro", `ZPR`, with the world id's number.
//!
//! The state list renders the world's charger: 710 from its status (`Available` 1, `Charging`
//! 3, `Complete` 5, `Plugged` 2, or 5 while paused by `StopChargingFinal`, which the simulator
//! remembers as `FinalStopActive` 718 until a resume or an unplug), 513 its power in W, 553 the
//! session's kWh, 708 its current limit, 707 the installation's available current, 510/511
//! its hardware range, 501–503 and 507–509 voltages and currents, −2 `IsOnline`, −1 `Pulse`.
//! Like Zaptec's, each observation's `Timestamp` is when its value last changed (no zone,
//! trailing zeros of the milliseconds dropped), the `Pulse` the last report. The simulated
//! charger reports when the cloud is asked, so a change carries the time of the first read
//! that saw it. While a charger
//! is offline the cloud serves what it last received, with `IsOnline` `0`.
//!
//! Commands go through `World::command("zaptec", ...)`, so the world's latency applies:
//! `ResumeCharging` → `ChargerStart`, `StopChargingFinal` → `ChargerStop`. An installation
//! update sets the available current of the installation, and every online charger of it gets
//! `SetChargerMaxCurrent(min(available, its hardware maximum))` (the world has no load
//! balancing between chargers; an offline charger keeps its limit, the update is not replayed
//! when it comes back). Values outside 6 A to the installation's maximum are refused (0,
//! which pauses an installation at Zaptec, is not modelled).
//!
//! Refusals in Zaptec's error style `{"Code":…,"Details":null,"Message":…}` with the
//! `ErrorCodes` of `/api/constants`: a charger not on the account 404 `Code` 512; the world's
//! `Offline` 500 `Code` 520 `ErrorCommunicatingWithDevice`; no car, no power, a full car,
//! driving, or a command the charger is already in the state of 400 `Code` 528
//! `DeviceCommandRejected` (the latter saying "already"); an invalid value 400 `Code` 529; a
//! user without the owner role on the installation ([`ZaptecRole::User`]) 403 `Code` 533 on
//! the installation's endpoints and on `GET chargers/{id}`.
//!
//! # Faults
//!
//! `world.faults().active("zaptec")` (or `"ZAPTEC"`) is rendered in Zaptec's style:
//! `RateLimit` as the gateway's 429 with `Retry-After` (whole seconds, rounded up) and the
//! same wait in the message; `ServerError` 500 as Zaptec's JSON error, 502/503/504 as the
//! gateway's HTML page; `Outage` as a 503 HTML page; `Hang` waits, then answers; `Timeout`
//! holds the request for `TIMEOUT_HANG`, then 504; `Malformed` is a 200 with the Zaptec
//! Portal's HTML page; `Truncated` the right body cut in half; `RevokeTokens` invalidates
//! every token on the next request and changes every account's password (the user changed
//! it), so logging in again with the stored one is refused.

use oemgate_sim::http::{parse_form, truncate};
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
    ChargerState, ChargerStatus, CommandRejected, DeviceId, DeviceKind, Fault, SiteId,
    TIMEOUT_HANG, World, WorldCommand,
};
use serde_json::{Value, json};

use crate::map::{command_id, error_code, state_id};

/// Where the simulator expects to be mounted.
pub const PREFIX: &str = "/zaptec";
/// The vendor name of Zaptec devices in the world (and of its command latency and faults).
pub const WORLD_VENDOR: &str = "zaptec";
/// The other spelling faults are looked up by.
pub const FAULT_VENDOR_UPPER: &str = "ZAPTEC";
/// How long an access token works (`expires_in` 86400: a day).
pub const ACCESS_TOKEN_LIFETIME: Duration = Duration::from_secs(86_400);
/// Requests per second per account (Zaptec's fair-use policy).
pub const RATE_LIMIT_PER_SECOND: u32 = 10;
/// The page size of the charger list when none is asked for.
pub const DEFAULT_PAGE_SIZE: usize = 100;
/// The largest page size served.
pub const MAX_PAGE_SIZE: usize = 500;
/// The lowest available current an installation takes, A.
pub const MIN_AVAILABLE_CURRENT_A: f64 = 6.0;

/// How the simulator behaves.
#[derive(Clone, Debug, PartialEq)]
pub struct ZaptecSimConfig {
    /// Access-token lifetime.
    pub access_token_lifetime: Duration,
    /// Requests per clock second per account (`None`: unlimited, for tests that make many
    /// requests without moving the clock).
    pub rate_limit_per_second: Option<u32>,
}

impl Default for ZaptecSimConfig {
    fn default() -> Self {
        Self {
            access_token_lifetime: ACCESS_TOKEN_LIFETIME,
            rate_limit_per_second: Some(RATE_LIMIT_PER_SECOND),
        }
    }
}

/// The role a Zaptec user has on the installations of its account.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ZaptecRole {
    /// Owner (and user): sees the hierarchy, may change the installation.
    #[default]
    Owner,
    /// User only: may read and start/stop the chargers, not the installation.
    User,
}

impl ZaptecRole {
    /// The `CurrentUserRoles` bits (`UserRoles` of `/api/constants`: 1 User, 2 Owner).
    pub fn bits(self) -> u32 {
        match self {
            ZaptecRole::Owner => 3,
            ZaptecRole::User => 1,
        }
    }
}

/// What a user types to link a Zaptec account: the login.
#[derive(Clone, PartialEq, Eq)]
pub struct ZaptecLogin {
    /// The user name (an e-mail address).
    pub username: String,
    /// The password.
    pub password: String,
    /// Zaptec's user id (a GUID; not needed to link).
    pub user_id: String,
}

impl fmt::Debug for ZaptecLogin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ZaptecLogin")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("user_id", &self.user_id)
            .finish()
    }
}

#[derive(Debug)]
struct Account {
    password: String,
    sites: Vec<SiteId>,
    role: ZaptecRole,
}

#[derive(Debug)]
struct Token {
    username: String,
    expires_at: DateTime<Utc>,
    revoked: bool,
}

/// What the cloud last received from one charger.
#[derive(Debug, Default)]
struct Memo {
    /// StateId -> (value, when it last changed).
    values: BTreeMap<i64, (Option<String>, DateTime<Utc>)>,
    /// Paused by `StopChargingFinal`.
    final_stop: bool,
    /// The cloud has heard from it at least once.
    seen: bool,
}

#[derive(Debug)]
struct SimState {
    config: ZaptecSimConfig,
    accounts: BTreeMap<String, Account>,
    tokens: HashMap<String, Token>,
    available: HashMap<SiteId, f64>,
    memos: HashMap<DeviceId, Memo>,
    usage: HashMap<String, (i64, u32)>,
    serial: u64,
    next_user: u64,
}

/// The simulated Zaptec cloud. Cheap to clone; clones share everything.
#[derive(Clone)]
pub struct ZaptecSim {
    world: World,
    clock: Arc<dyn Clock>,
    state: Arc<Mutex<SimState>>,
}

impl fmt::Debug for ZaptecSim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.lock();
        f.debug_struct("ZaptecSim")
            .field("accounts", &s.accounts.len())
            .field("tokens", &s.tokens.len())
            .finish_non_exhaustive()
    }
}

// ---- rendering helpers ---------------------------------------------------------------------

fn json_response(status: StatusCode, body: &Value) -> Response {
    let mut response = (status, body.to_string()).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json; charset=utf-8"));
    response
}

fn ok(body: &Value) -> Response {
    json_response(StatusCode::OK, body)
}

/// A 200 without a body (commands, updates).
fn empty_ok() -> Response {
    let mut response = StatusCode::OK.into_response();
    response.headers_mut().insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
    response
}

/// Zaptec's error shape.
fn zaptec_error(status: StatusCode, code: i64, message: &str) -> Response {
    let body = json!({ "Code": code, "Details": null, "StackTrace": null, "Message": message });
    json_response(status, &body)
}

fn unknown_object() -> Response {
    zaptec_error(StatusCode::NOT_FOUND, error_code::UNKNOWN_OBJECT, "Unknown object")
}

fn forbidden() -> Response {
    zaptec_error(StatusCode::FORBIDDEN, error_code::FORBIDDEN, "Forbidden")
}

fn rejected(message: &str) -> Response {
    zaptec_error(
        StatusCode::BAD_REQUEST,
        error_code::DEVICE_COMMAND_REJECTED,
        &format!("Device command rejected: {message}"),
    )
}

fn invalid(message: &str) -> Response {
    zaptec_error(StatusCode::BAD_REQUEST, error_code::INVALID_FORMAT, message)
}

fn oauth_error(error: &str, description: &str) -> Response {
    json_response(
        StatusCode::BAD_REQUEST,
        &json!({ "error": error, "error_description": description }),
    )
}

fn unauthorized() -> Response {
    let mut response = StatusCode::UNAUTHORIZED.into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer error=\"invalid_token\""),
    );
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

/// The API gateway's 429.
fn too_many_requests(secs: u64) -> Response {
    let body = json!({
        "statusCode": 429,
        "message": format!("Rate limit is exceeded. Try again in {secs} seconds."),
    });
    let mut response = json_response(StatusCode::TOO_MANY_REQUESTS, &body);
    if let Ok(value) = HeaderValue::from_str(&secs.to_string()) {
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
        502 => html(status, "502 - Web server received an invalid response"),
        503 => html(status, "503 - Service Unavailable"),
        504 => html(status, "504 - Gateway Timeout"),
        _ => {
            let body = json!({
                "Code": 500,
                "Details": null,
                "StackTrace": null,
                "Message": "An error has occurred.",
            });
            json_response(status, &body)
        }
    }
}

/// Zaptec's timestamp: UTC without a zone, milliseconds with trailing zeros dropped.
pub fn zaptec_timestamp(t: DateTime<Utc>) -> String {
    let text = t.format("%Y-%m-%dT%H:%M:%S%.3f").to_string();
    let trimmed = text.trim_end_matches('0');
    trimmed.strip_suffix('.').unwrap_or(trimmed).to_owned()
}

fn fmt3(x: f64) -> String {
    let x = if x.is_finite() { x } else { 0.0 };
    format!("{x:.3}")
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer ")).map(str::trim)
}

/// A GUID-shaped id derived from `parts`.
fn guid(parts: &[u64]) -> String {
    let a = hash(parts);
    let b = hash(&[a, 0x2A97_EC00_D00D_F00D]);
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0x0fff,
        0x8000 | ((b >> 48) & 0x3fff),
        b & 0xffff_ffff_ffff
    )
}

async fn handle(
    State(sim): State<ZaptecSim>,
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
            return html(StatusCode::SERVICE_UNAVAILABLE, "503 - Service Unavailable");
        }
        Some(Fault::Hang { .. }) => {
            if let Some(wait) = fault.as_ref().and_then(|f| f.hang_real(sim.clock.as_ref())) {
                tokio::time::sleep(wait).await;
            }
        }
        Some(Fault::Timeout) => {
            tokio::time::sleep(TIMEOUT_HANG).await;
            return html(StatusCode::GATEWAY_TIMEOUT, "504 - Gateway Timeout");
        }
        Some(Fault::Malformed) => return html(StatusCode::OK, "Zaptec Portal"),
        Some(Fault::Truncated | Fault::RevokeTokens) | None => {}
    }
    let response = sim.route(&method, &uri, &headers, &body);
    if matches!(fault, Some(Fault::Truncated)) { truncate(response).await } else { response }
}

/// One charger of an account, with its world state.
struct Seen {
    id: DeviceId,
    site: SiteId,
    state: ChargerState,
}

impl ZaptecSim {
    /// A simulator over `world` with the default configuration (10 requests per second per
    /// account, day-long tokens).
    pub fn new(world: World) -> Self {
        Self::with_config(world, ZaptecSimConfig::default())
    }

    /// A simulator over `world` with `config`.
    pub fn with_config(world: World, config: ZaptecSimConfig) -> Self {
        let clock = world.clock();
        let state = SimState {
            config,
            accounts: BTreeMap::new(),
            tokens: HashMap::new(),
            available: HashMap::new(),
            memos: HashMap::new(),
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

    /// Changes the per-account rate limit (`None`: unlimited).
    pub fn set_rate_limit(&self, per_second: Option<u32>) {
        self.lock().config.rate_limit_per_second = per_second;
    }

    /// The GUID a world charger is exposed as.
    pub fn charger_id(&self, device: &DeviceId) -> String {
        guid(&[self.world.seed(), 0xC4A6, hash_str(device.as_str())])
    }

    /// The GUID of the installation a site is exposed as.
    pub fn installation_id(&self, site: &SiteId) -> String {
        guid(&[self.world.seed(), 0x1257, hash_str(site.as_str())])
    }

    fn circuit_id(&self, site: &SiteId) -> String {
        guid(&[self.world.seed(), 0xC1C0, hash_str(site.as_str())])
    }

    /// The serial number of a world charger (`ZAP000003`, or `ZPR…` for a "Pro").
    pub fn serial_number(&self, device: &DeviceId) -> String {
        let name = self.world.charger(device).map(|c| c.name).unwrap_or_default();
        let prefix = if name.to_ascii_lowercase().contains("pro") { "ZPR" } else { "ZAP" };
        let digits: String = device.as_str().chars().filter(char::is_ascii_digit).collect();
        let number = digits.parse::<u64>().unwrap_or_else(|_| hash_str(device.as_str()));
        format!("{prefix}{:06}", number % 1_000_000)
    }

    fn new_secret(s: &mut SimState, seed: u64, kind: u64) -> String {
        s.serial += 1;
        let a = hash(&[seed, kind, s.serial]);
        let b = hash(&[a, s.serial, 0x2A97_EC5E]);
        format!("{a:016x}{b:016x}")
    }

    /// Creates a Zaptec account owning the installations of `sites` and returns its login.
    pub fn create_account(&self, sites: &[SiteId]) -> ZaptecLogin {
        self.create_account_with_role(sites, ZaptecRole::Owner)
    }

    /// Creates a Zaptec account with `role` on the installations of `sites`.
    pub fn create_account_with_role(&self, sites: &[SiteId], role: ZaptecRole) -> ZaptecLogin {
        let seed = self.world.seed();
        let mut s = self.lock();
        s.next_user += 1;
        let n = s.next_user;
        let username = format!("zaptec.user{n}@example.invalid");
        let password = Self::new_secret(&mut s, seed, 7);
        let user_id = guid(&[seed, 0x05E2, n]);
        let account = Account { password: password.clone(), sites: sites.to_vec(), role };
        s.accounts.insert(username.clone(), account);
        ZaptecLogin { username, password, user_id }
    }

    /// The user changed the password: old tokens keep working until they expire (as at
    /// Zaptec), but logging in needs the new password, which is returned.
    pub fn change_password(&self, username: &str) -> Option<String> {
        let seed = self.world.seed();
        let mut s = self.lock();
        let password = Self::new_secret(&mut s, seed, 8);
        let account = s.accounts.get_mut(username)?;
        account.password = password.clone();
        Some(password)
    }

    /// Makes every access token expired now.
    pub fn expire_access_tokens(&self) {
        let now = self.clock.now();
        for token in self.lock().tokens.values_mut() {
            token.expires_at = token.expires_at.min(now);
        }
    }

    /// Revokes every token of a user and changes their password.
    pub fn revoke_account(&self, username: &str) {
        let seed = self.world.seed();
        let mut guard = self.lock();
        let s = &mut *guard;
        for token in s.tokens.values_mut() {
            if token.username == username {
                token.revoked = true;
            }
        }
        let password = Self::new_secret(s, seed, 9);
        if let Some(account) = s.accounts.get_mut(username) {
            account.password = password;
        }
    }

    /// Revokes every token of every user and changes every password.
    pub fn revoke_all(&self) {
        let users: Vec<String> = self.lock().accounts.keys().cloned().collect();
        for user in users {
            self.revoke_account(&user);
        }
        for token in self.lock().tokens.values_mut() {
            token.revoked = true;
        }
    }

    fn apply_revocation(&self) {
        let faults = self.world.faults();
        let due = faults.take_revocation(WORLD_VENDOR) | faults.take_revocation(FAULT_VENDOR_UPPER);
        if due {
            self.revoke_all();
        }
    }

    fn active_fault(&self) -> Option<Fault> {
        let faults = self.world.faults();
        faults.active(WORLD_VENDOR).or_else(|| faults.active(FAULT_VENDOR_UPPER))
    }

    /// Counts a request of `username` against the per-second limit; the 429 when over it.
    fn rate_limited(
        &self,
        s: &mut SimState,
        username: &str,
        now: DateTime<Utc>,
    ) -> Option<Response> {
        let limit = s.config.rate_limit_per_second?;
        let second = now.timestamp();
        let usage = s.usage.entry(username.to_owned()).or_insert((second, 0));
        if usage.0 != second {
            *usage = (second, 0);
        }
        usage.1 += 1;
        (usage.1 > limit).then(|| too_many_requests(1))
    }

    fn route(&self, method: &Method, uri: &Uri, headers: &HeaderMap, body: &[u8]) -> Response {
        let now = self.clock.now();
        let path = uri.path().to_ascii_lowercase();
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let query = parse_form(uri.query().unwrap_or(""))
            .into_iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v))
            .collect::<BTreeMap<_, _>>();
        match segments.as_slice() {
            ["oauth", "token"] if method == Method::POST => self.token(body, now),
            ["oauth", "token"] => StatusCode::METHOD_NOT_ALLOWED.into_response(),
            ["api", rest @ ..] => self.api(method, rest, &query, headers, body, now),
            _ => StatusCode::NOT_FOUND.into_response(),
        }
    }

    // ---- OAuth ---------------------------------------------------------------------------

    fn token(&self, body: &[u8], now: DateTime<Utc>) -> Response {
        let form = parse_form(std::str::from_utf8(body).unwrap_or("").trim());
        let param = |k: &str| form.get(k).map(String::as_str).unwrap_or("");
        let seed = self.world.seed();
        let mut guard = self.lock();
        let s = &mut *guard;
        let username = param("username").trim().to_owned();
        if s.accounts.contains_key(&username)
            && let Some(limited) = self.rate_limited(s, &username, now)
        {
            return limited;
        }
        if param("grant_type") != "password" {
            return oauth_error("unsupported_grant_type", "The grant type is not supported.");
        }
        let valid = s.accounts.get(&username).is_some_and(|a| a.password == param("password"));
        if !valid {
            return oauth_error("invalid_grant", "The user name or password is incorrect.");
        }
        let token = Self::new_secret(s, seed, 1);
        let lifetime = s.config.access_token_lifetime;
        let expires_at = chrono::Duration::from_std(lifetime)
            .ok()
            .and_then(|d| now.checked_add_signed(d))
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        s.tokens.insert(token.clone(), Token { username, expires_at, revoked: false });
        ok(&json!({
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": lifetime.as_secs(),
        }))
    }

    // ---- the API -------------------------------------------------------------------------

    fn api(
        &self,
        method: &Method,
        rest: &[&str],
        query: &BTreeMap<String, String>,
        headers: &HeaderMap,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Response {
        let (sites, role) = {
            let mut guard = self.lock();
            let s = &mut *guard;
            let token = bearer(headers).and_then(|t| s.tokens.get(t));
            let Some(token) = token.filter(|t| !t.revoked && now < t.expires_at) else {
                return unauthorized();
            };
            let username = token.username.clone();
            let Some(account) = s.accounts.get(&username) else { return unauthorized() };
            let (sites, role) = (account.sites.clone(), account.role);
            if let Some(limited) = self.rate_limited(s, &username, now) {
                return limited;
            }
            (sites, role)
        };
        let owner = role == ZaptecRole::Owner;
        let verb = if method == Method::GET {
            "GET"
        } else if method == Method::POST {
            "POST"
        } else {
            "OTHER"
        };
        match (verb, rest) {
            ("GET", ["chargers"]) => self.charger_list(&sites, role, query),
            ("GET", ["chargers", id]) if owner => match self.find_charger(&sites, id) {
                Some(c) => ok(&self.charger_item(&c, role)),
                None => unknown_object(),
            },
            ("GET", ["chargers", _]) => forbidden(),
            ("GET", ["chargers", id, "state"]) => match self.find_charger(&sites, id) {
                Some(c) => ok(&self.state_list(&c)),
                None => unknown_object(),
            },
            ("POST", ["chargers", id, "sendcommand", command]) => {
                match self.find_charger(&sites, id) {
                    Some(c) => self.send_command(&c, command),
                    None => unknown_object(),
                }
            }
            ("POST", ["chargers", id, "authorizecharge"]) => match self.find_charger(&sites, id) {
                Some(_) => empty_ok(),
                None => unknown_object(),
            },
            ("GET", ["installation"]) => self.installation_list(&sites, role),
            (_, ["installation", id, ..]) if self.find_site(&sites, id).is_none() => {
                unknown_object()
            }
            (_, ["installation", ..]) if !owner => forbidden(),
            ("GET", ["installation", id]) => match self.find_site(&sites, id) {
                Some(site) => ok(&self.installation_json(&site, role)),
                None => unknown_object(),
            },
            ("GET", ["installation", id, "hierarchy"]) => match self.find_site(&sites, id) {
                Some(site) => ok(&self.hierarchy(&site)),
                None => unknown_object(),
            },
            ("POST", ["installation", id, "update"]) => match self.find_site(&sites, id) {
                Some(site) => self.update_installation(&site, body),
                None => unknown_object(),
            },
            ("GET", ["constants"]) => ok(&constants()),
            _ => StatusCode::NOT_FOUND.into_response(),
        }
    }

    /// The Zaptec chargers of `sites`, read from the world now.
    fn chargers_of(&self, sites: &[SiteId]) -> Vec<Seen> {
        let mut out = Vec::new();
        for site in sites {
            for info in self.world.devices_of_site(site) {
                if info.kind != DeviceKind::Charger || info.vendor != WORLD_VENDOR {
                    continue;
                }
                if let Some(state) = self.world.charger(&info.id) {
                    out.push(Seen { id: info.id, site: site.clone(), state });
                }
            }
        }
        out
    }

    fn find_charger(&self, sites: &[SiteId], guid: &str) -> Option<Seen> {
        self.chargers_of(sites).into_iter().find(|c| self.charger_id(&c.id) == guid)
    }

    fn find_site(&self, sites: &[SiteId], guid: &str) -> Option<SiteId> {
        sites.iter().find(|s| self.installation_id(s) == guid).cloned()
    }

    fn site_name(&self, site: &SiteId) -> String {
        self.world.site(site).map_or_else(|| "Home".to_owned(), |s| s.name)
    }

    /// The installation's maximum current: the largest hardware maximum of its chargers.
    fn installation_max(&self, site: &SiteId) -> f64 {
        self.chargers_of(std::slice::from_ref(site))
            .iter()
            .map(|c| c.state.hardware_max_a)
            .fold(None, |acc: Option<f64>, x| Some(acc.map_or(x, |a| a.max(x))))
            .unwrap_or(32.0)
    }

    /// The installation's available current (until set: its chargers' largest limit).
    fn available_current(&self, site: &SiteId) -> f64 {
        if let Some(a) = self.lock().available.get(site) {
            return *a;
        }
        self.chargers_of(std::slice::from_ref(site))
            .iter()
            .map(|c| c.state.max_current_a)
            .fold(None, |acc: Option<f64>, x| Some(acc.map_or(x, |a| a.max(x))))
            .unwrap_or(32.0)
    }

    fn device_type(&self, id: &DeviceId) -> u32 {
        if self.serial_number(id).starts_with("ZPR") { 1 } else { 4 }
    }

    /// Brings the cloud's memory of a charger up to date and returns it as (id, value, time).
    fn refresh(&self, c: &Seen) -> Vec<(i64, Option<String>, DateTime<Utc>)> {
        let available = self.available_current(&c.site);
        let installation = self.installation_id(&c.site);
        let started = self.world.started_at();
        let mut s = self.lock();
        let memo = s.memos.entry(c.id.clone()).or_default();
        let st = &c.state;
        if st.status == ChargerStatus::Available {
            memo.final_stop = false;
        }
        let values = state_values(st, memo.final_stop, available, &installation);
        if st.online || !memo.seen {
            let at = if st.online { st.at } else { started };
            for (id, value) in values {
                match memo.values.get(&id) {
                    Some((old, _)) if *old == value => {}
                    _ => {
                        memo.values.insert(id, (value, at));
                    }
                }
            }
            memo.values.insert(state_id::PULSE, (None, at));
            memo.seen = true;
        } else {
            // The cloud noticed the disconnect after the last heartbeat it received.
            let offline = Some("0".to_owned());
            let last_heard = memo.values.get(&state_id::PULSE).map_or(st.at, |(_, t)| *t);
            if memo.values.get(&state_id::IS_ONLINE).is_none_or(|(v, _)| *v != offline) {
                memo.values.insert(state_id::IS_ONLINE, (offline, last_heard));
            }
        }
        memo.values.iter().map(|(id, (v, t))| (*id, v.clone(), *t)).collect()
    }

    fn operating_mode(values: &[(i64, Option<String>, DateTime<Utc>)]) -> i64 {
        values
            .iter()
            .find(|(id, _, _)| *id == state_id::CHARGER_OPERATION_MODE)
            .and_then(|(_, v, _)| v.as_deref())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }

    fn state_list(&self, c: &Seen) -> Value {
        let charger = self.charger_id(&c.id);
        let list: Vec<Value> = self
            .refresh(c)
            .into_iter()
            .map(|(id, value, at)| {
                let mut o = json!({
                    "ChargerId": charger,
                    "StateId": id,
                    "Timestamp": zaptec_timestamp(at),
                });
                if let (Some(v), Some(map)) = (value, o.as_object_mut()) {
                    map.insert("ValueAsString".to_owned(), Value::String(v));
                }
                o
            })
            .collect();
        Value::Array(list)
    }

    fn charger_item(&self, c: &Seen, role: ZaptecRole) -> Value {
        let values = self.refresh(c);
        let online = values
            .iter()
            .find(|(id, _, _)| *id == state_id::IS_ONLINE)
            .is_some_and(|(_, v, _)| v.as_deref() == Some("1"));
        let serial = self.serial_number(&c.id);
        json!({
            "OperatingMode": Self::operating_mode(&values),
            "IsOnline": online,
            "Id": self.charger_id(&c.id),
            "MID": serial,
            "DeviceId": serial,
            "SerialNo": serial,
            "Name": c.state.name,
            "CreatedOnDate": zaptec_timestamp(self.world.started_at()),
            "CircuitId": self.circuit_id(&c.site),
            "Active": true,
            "CurrentUserRoles": role.bits(),
            "DeviceType": self.device_type(&c.id),
            "InstallationName": self.site_name(&c.site),
            "InstallationId": self.installation_id(&c.site),
            "AuthenticationType": 0,
            "IsAuthorizationRequired": false,
        })
    }

    fn charger_list(
        &self,
        sites: &[SiteId],
        role: ZaptecRole,
        query: &BTreeMap<String, String>,
    ) -> Response {
        let size = match query.get("pagesize").map(|v| v.parse::<usize>()) {
            None => DEFAULT_PAGE_SIZE,
            Some(Ok(n)) if (1..=MAX_PAGE_SIZE).contains(&n) => n,
            Some(_) => return invalid("PageSize must be between 1 and 500"),
        };
        let index = match query.get("pageindex").map(|v| v.parse::<usize>()) {
            None => 0,
            Some(Ok(n)) => n,
            Some(Err(_)) => return invalid("PageIndex must be a number"),
        };
        let all = self.chargers_of(sites);
        let pages = all.len().div_ceil(size);
        let data: Vec<Value> = all
            .iter()
            .skip(index.saturating_mul(size))
            .take(size)
            .map(|c| self.charger_item(c, role))
            .collect();
        ok(&json!({ "Pages": pages, "Message": null, "Data": data }))
    }

    fn installation_json(&self, site: &SiteId, role: ZaptecRole) -> Value {
        let available = self.available_current(site);
        json!({
            "Id": self.installation_id(site),
            "Name": self.site_name(site),
            "Active": true,
            "AuthenticationType": 0,
            "CurrentUserRoles": role.bits(),
            "InstallationType": 1,
            "NetworkType": 4,
            "AvailableCurrent": available,
            "AvailableCurrentPhase1": available,
            "AvailableCurrentPhase2": available,
            "AvailableCurrentPhase3": available,
            "MaxCurrent": self.installation_max(site),
        })
    }

    fn installation_list(&self, sites: &[SiteId], role: ZaptecRole) -> Response {
        let data: Vec<Value> = sites.iter().map(|s| self.installation_json(s, role)).collect();
        ok(&json!({ "Pages": 1, "Message": null, "Data": data }))
    }

    fn hierarchy(&self, site: &SiteId) -> Value {
        let chargers: Vec<Value> = self
            .chargers_of(std::slice::from_ref(site))
            .iter()
            .map(|c| {
                let serial = self.serial_number(&c.id);
                json!({
                    "Id": self.charger_id(&c.id),
                    "Name": c.state.name,
                    "DeviceId": serial,
                    "SerialNo": serial,
                    "MID": serial,
                    "DeviceType": self.device_type(&c.id),
                    "Active": true,
                    "IsOnline": c.state.online,
                })
            })
            .collect();
        json!({
            "Id": self.installation_id(site),
            "Name": self.site_name(site),
            "NetworkType": 4,
            "Circuits": [{
                "Id": self.circuit_id(site),
                "Name": "Circuit 1",
                "MaxCurrent": self.installation_max(site),
                "IsActive": true,
                "Chargers": chargers,
            }],
        })
    }

    fn send_command(&self, c: &Seen, command: &str) -> Response {
        let Ok(code) = command.parse::<u32>() else {
            return zaptec_error(
                StatusCode::BAD_REQUEST,
                error_code::UNKNOWN_COMMAND,
                "Unknown command",
            );
        };
        let (cmd, stop) = match code {
            command_id::RESUME_CHARGING | command_id::START_CHARGING => {
                (WorldCommand::ChargerStart, false)
            }
            command_id::STOP_CHARGING_FINAL
            | command_id::STOP_CHARGING
            | command_id::DEAUTHORIZE_AND_STOP => (WorldCommand::ChargerStop, true),
            command_id::RESTART_CHARGER if c.state.online => return empty_ok(),
            command_id::RESTART_CHARGER => return offline(),
            _ => {
                return zaptec_error(
                    StatusCode::BAD_REQUEST,
                    error_code::UNKNOWN_COMMAND,
                    "Unknown command",
                );
            }
        };
        if !c.state.online {
            return offline();
        }
        if stop && c.state.status == ChargerStatus::Available {
            return rejected("no vehicle is connected");
        }
        match self.world.command(WORLD_VENDOR, &c.id, cmd) {
            Ok(_) => {
                self.lock().memos.entry(c.id.clone()).or_default().final_stop = stop;
                empty_ok()
            }
            Err(reason) => command_refusal(&reason, stop),
        }
    }

    fn update_installation(&self, site: &SiteId, body: &[u8]) -> Response {
        let Ok(Value::Object(fields)) = serde_json::from_slice::<Value>(body) else {
            return invalid("The request body is not a valid installation update");
        };
        let field =
            |name: &str| fields.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v);
        let number = |v: &Value| match v {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => s.trim().parse::<f64>().ok(),
            _ => None,
        };
        let phases: Vec<Option<&Value>> =
            (1..=3).map(|p| field(&format!("availableCurrentPhase{p}"))).collect();
        let value = match (field("availableCurrent"), phases.iter().filter(|p| p.is_some()).count())
        {
            (Some(v), 0) => number(v),
            (None, 3) => phases
                .iter()
                .flatten()
                .map(|v| number(v))
                .try_fold(f64::INFINITY, |acc, x| x.map(|x| acc.min(x))),
            (None, 0) => {
                return zaptec_error(
                    StatusCode::BAD_REQUEST,
                    503,
                    "Missing required data: availableCurrent",
                );
            }
            _ => {
                return invalid(
                    "Either availableCurrent or all of availableCurrentPhase1..3 must be set",
                );
            }
        };
        let max = self.installation_max(site);
        let Some(amps) = value.filter(|a| a.is_finite()) else {
            return invalid("AvailableCurrent must be a number");
        };
        if !(MIN_AVAILABLE_CURRENT_A..=max).contains(&amps) {
            return invalid(&format!(
                "AvailableCurrent must be between {MIN_AVAILABLE_CURRENT_A} and {max} A"
            ));
        }
        self.lock().available.insert(site.clone(), amps);
        for c in self.chargers_of(std::slice::from_ref(site)) {
            if !c.state.online {
                continue;
            }
            let target = amps.min(c.state.hardware_max_a);
            // AlreadySet (the charger has that limit) is fine: the update is idempotent.
            let _ =
                self.world.command(WORLD_VENDOR, &c.id, WorldCommand::SetChargerMaxCurrent(target));
        }
        empty_ok()
    }
}

fn offline() -> Response {
    zaptec_error(
        StatusCode::INTERNAL_SERVER_ERROR,
        error_code::ERROR_COMMUNICATING_WITH_DEVICE,
        "Error communicating with device",
    )
}

/// A world refusal in Zaptec's style.
fn command_refusal(reason: &CommandRejected, stop: bool) -> Response {
    match reason {
        CommandRejected::UnknownDevice { .. } => unknown_object(),
        CommandRejected::Unsupported { .. } => {
            zaptec_error(StatusCode::BAD_REQUEST, error_code::NOT_SUPPORTED, "Not supported")
        }
        CommandRejected::Asleep | CommandRejected::Offline => offline(),
        CommandRejected::NotPluggedIn => rejected("no vehicle is connected"),
        CommandRejected::NoPower => rejected("the vehicle does not accept power"),
        CommandRejected::AtLimit => rejected("the vehicle is fully charged"),
        CommandRejected::Driving => rejected("no vehicle is connected"),
        CommandRejected::AlreadySet if stop => rejected("charging is already paused"),
        CommandRejected::AlreadySet => rejected("charging is already running"),
        CommandRejected::InvalidValue(v) => invalid(&format!("Invalid value: {v}")),
    }
}

/// The observations of a charger's state, as Zaptec's charger reports them.
fn state_values(
    c: &ChargerState,
    final_stop: bool,
    available: f64,
    installation: &str,
) -> Vec<(i64, Option<String>)> {
    let plugged = c.status != ChargerStatus::Available;
    let mode = match c.status {
        ChargerStatus::Available => 1,
        ChargerStatus::Charging => 3,
        ChargerStatus::Complete => 5,
        ChargerStatus::Plugged if final_stop => 5,
        ChargerStatus::Plugged => 2,
    };
    let phases = c.phases.clamp(1, 3);
    let amps = if c.charging && c.voltage > 0.0 {
        c.power_w / (c.voltage * f64::from(phases))
    } else {
        0.0
    };
    let mut out = vec![
        (state_id::IS_ONLINE, Some(if c.online { "1" } else { "0" }.to_owned())),
        (state_id::CHARGER_MAX_CURRENT, Some(fmt3(c.hardware_max_a))),
        (state_id::CHARGER_MIN_CURRENT, Some(fmt3(c.min_current_a))),
        (state_id::TOTAL_CHARGE_POWER, Some(fmt3(c.power_w.max(0.0)))),
        (state_id::TOTAL_CHARGE_POWER_SESSION, Some(fmt3(c.session_kwh))),
        (state_id::CHARGE_CURRENT_INSTALLATION_MAX_LIMIT, Some(fmt3(available))),
        (state_id::CHARGE_CURRENT_SET, Some(fmt3(c.max_current_a))),
        (state_id::CHARGER_OPERATION_MODE, Some(mode.to_string())),
        (state_id::IS_ENABLED, Some("1".to_owned())),
        (
            state_id::FINAL_STOP_ACTIVE,
            Some(if final_stop && plugged { "1" } else { "0" }.to_owned()),
        ),
        (state_id::INSTALLATION_ID, Some(installation.to_owned())),
    ];
    let voltages = [state_id::VOLTAGE_PHASE1, state_id::VOLTAGE_PHASE2, state_id::VOLTAGE_PHASE3];
    let currents = [state_id::CURRENT_PHASE1, state_id::CURRENT_PHASE2, state_id::CURRENT_PHASE3];
    for (i, (v, a)) in voltages.into_iter().zip(currents).enumerate() {
        let live = u32::try_from(i).is_ok_and(|i| i < phases);
        out.push((v, Some(fmt3(if live { c.voltage } else { 0.0 }))));
        out.push((a, Some(fmt3(if live { amps } else { 0.0 }))));
    }
    out
}

/// A subset of `GET /api/constants`.
fn constants() -> Value {
    json!({
        "ChargerOperationModes": {
            "Unknown": 0, "Disconnected": 1, "Connected_Requesting": 2,
            "Connected_Charging": 3, "Connected_Finished": 5
        },
        "Commands": {
            "RestartCharger": command_id::RESTART_CHARGER,
            "StartCharging": command_id::START_CHARGING,
            "StopCharging": command_id::STOP_CHARGING,
            "StopChargingFinal": command_id::STOP_CHARGING_FINAL,
            "ResumeCharging": command_id::RESUME_CHARGING,
            "DeauthorizeAndStop": command_id::DEAUTHORIZE_AND_STOP
        },
        "Observations": {
            "IsOnline": state_id::IS_ONLINE, "Pulse": state_id::PULSE,
            "VoltagePhase1": state_id::VOLTAGE_PHASE1, "VoltagePhase2": state_id::VOLTAGE_PHASE2,
            "VoltagePhase3": state_id::VOLTAGE_PHASE3, "CurrentPhase1": state_id::CURRENT_PHASE1,
            "CurrentPhase2": state_id::CURRENT_PHASE2, "CurrentPhase3": state_id::CURRENT_PHASE3,
            "ChargerMaxCurrent": state_id::CHARGER_MAX_CURRENT,
            "ChargerMinCurrent": state_id::CHARGER_MIN_CURRENT,
            "TotalChargePower": state_id::TOTAL_CHARGE_POWER,
            "TotalChargePowerSession": state_id::TOTAL_CHARGE_POWER_SESSION,
            "ChargeCurrentInstallationMaxLimit": state_id::CHARGE_CURRENT_INSTALLATION_MAX_LIMIT,
            "ChargeCurrentSet": state_id::CHARGE_CURRENT_SET,
            "ChargerOperationMode": state_id::CHARGER_OPERATION_MODE,
            "IsEnabled": state_id::IS_ENABLED,
            "FinalStopActive": state_id::FINAL_STOP_ACTIVE,
            "InstallationId": state_id::INSTALLATION_ID
        },
        "ErrorCodes": {
            "UnknownObject": error_code::UNKNOWN_OBJECT,
            "UnknownCommand": error_code::UNKNOWN_COMMAND,
            "ErrorCommunicatingWithDevice": error_code::ERROR_COMMUNICATING_WITH_DEVICE,
            "NotSupported": error_code::NOT_SUPPORTED,
            "DeviceCommandRejected": error_code::DEVICE_COMMAND_REJECTED,
            "InvalidFormat": error_code::INVALID_FORMAT,
            "Forbidden": error_code::FORBIDDEN
        },
        "UserRoles": { "None": 0, "User": 1, "Owner": 2, "Maintainer": 4, "Administrator": 8 }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn timestamps_look_like_zaptecs() {
        let t = Utc.with_ymd_and_hms(2024, 3, 9, 17, 4, 21).unwrap();
        assert_eq!(zaptec_timestamp(t), "2024-03-09T17:04:21");
        let t = t + chrono::Duration::milliseconds(520);
        assert_eq!(zaptec_timestamp(t), "2024-03-09T17:04:21.52");
        assert_eq!(
            crate::map::parse_timestamp(&zaptec_timestamp(t)),
            Some(t),
            "the adapter reads them back"
        );
    }

    #[test]
    fn guids_are_guid_shaped_and_stable() {
        let g = guid(&[1, 2, 3]);
        assert_eq!(g.len(), 36);
        assert_eq!(g.matches('-').count(), 4);
        assert_eq!(g, guid(&[1, 2, 3]));
        assert_ne!(g, guid(&[1, 2, 4]));
    }

    #[test]
    fn forms_decode() {
        let f = parse_form("grant_type=password&username=a%2Bb%40x.no&password=p+w%26%3D%25");
        assert_eq!(f["username"], "a+b@x.no");
        assert_eq!(f["password"], "p w&=%");
        assert_eq!(oemgate_sim::http::url_decode("%zz%4"), "%zz%4");
    }
}
