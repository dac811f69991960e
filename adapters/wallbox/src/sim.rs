//! A simulator of Wallbox's cloud (the user API's token endpoints and the charger API) over
//! `oemgate_sim::World`, as one axum [`Router`] meant to be mounted under [`PREFIX`]
//! (`/wallbox`) of an `oemgate_sim::SimHost`. Both of Wallbox's hosts are served under the
//! one prefix (their paths do not overlap).
//!
//! ```no_run
//! # async fn demo(world: oemgate_sim::World) -> anyhow::Result<()> {
//! use oemgate_wallbox::sim::{PREFIX, WallboxSim};
//! let sim = WallboxSim::new(world.clone());
//! let mut host = oemgate_sim::SimHost::new(world.clock());
//! host.mount(PREFIX, sim.router())?;
//! // A household links its Wallbox account: the sim hands out the user's login.
//! let login = sim.create_account(&world.sites());
//! // ... WallboxAdapter::sign_in(&login.email, &login.password)
//! # Ok(()) }
//! ```
//!
//! # What it serves (paths below the mount prefix)
//!
//! - `GET /users/signin`: HTTP Basic (e-mail:password) and `Partner: wallbox`; answers
//!   `{"data":{"attributes":{"token","refresh_token","user_id","ttl","refresh_token_ttl",
//!   "error":false,"status":200}}}` with `ttl`s as epoch milliseconds. Wrong credentials: 403.
//! - `GET /users/refresh-token`: the refresh token as bearer, `Partner: wallbox`; same answer.
//!   Refresh tokens are **single-use** (each refresh issues a new one) and last
//!   [`REFRESH_TOKEN_LIFETIME`]; access tokens last [`ACCESS_TOKEN_LIFETIME`] (both
//!   unconfirmed at Wallbox; set by [`WallboxSimConfig`]). A spent, expired, revoked or
//!   unknown refresh token: 401.
//! - `GET /v3/chargers/groups`: `{"result":{"groups":[{"id","name","chargers":[...]}]}}`, one
//!   group per site of the account, each charger with its live summary (`status`,
//!   `chargingPower` kW, `maxChargingCurrent` A, ...).
//! - `GET /chargers/status/{id}`: the full status (`status_id`, `charging_power` kW,
//!   `added_energy` kWh, `max_available_power` A, `last_sync`, `config_data`, ...).
//! - `POST /v3/chargers/{id}/remote-action` `{"action":1|2|3|5|9}`: 1 resumes
//!   (`WorldCommand::ChargerStart`), 2 pauses (`ChargerStop`); 3 (restart), 5 (firmware
//!   update) and 9 (resume schedule) are accepted and change nothing.
//! - `PUT /v2/charger/{id}` `{"maxChargingCurrent": n}` (whole amperes, 6 to the hardware
//!   maximum; `SetChargerMaxCurrent`) and/or `{"locked": 1|0}`.
//! - `POST /chargers/config/{id}` `{"icp_max_current": n}` or `{"energyCost": x}` (stored).
//!
//! API calls need `Authorization: Bearer <token>`: a missing, unknown, revoked or expired
//! token is 401 (Wallbox does not tell them apart). A charger that is not on the account is
//! 404. Each user may send [`WallboxSimConfig::requests_per_minute`] requests per calendar
//! minute (sign-ins and refreshes included): beyond that 429 with `Retry-After` (Wallbox
//! publishes no numbers; the default is generous, the adapter declares far less).
//!
//! # The world as Wallbox sees it
//!
//! A Wallbox account owns world sites ([`WallboxSim::create_account`]); each site is a Wallbox
//! *group* (location) and its chargers of vendor [`WORLD_VENDOR`] (`wallbox`) are the group's
//! chargers. Charger ids (which are also the serial numbers) and group ids are stable numbers
//! derived from the world ids ([`WallboxSim::charger_id`], [`WallboxSim::group_id`]).
//! Commands go through `World::command("wallbox", ...)`, so the world's latency and ground
//! truth apply; a reply only means Wallbox accepted the command.
//!
//! `status_id` from the world: offline → 0 (Disconnected); charging → 194; no car → 161
//! (Ready) or 209 when locked; a car connected → 210 when locked, 181 when the charger gives
//! no power, 180 (waiting for car demand) when the car is full, else 178 (Paused).
//!
//! Vendor-side state the world lacks, kept by the simulator: the **lock** (a locked charger
//! refuses a resume with 409; it does not stop a session the car starts by itself, as the
//! world cannot know of the lock), the ICP current and energy price, the last time the
//! charger was online (`last_sync` of a disconnected charger).
//!
//! Preconditions as Wallbox answers them: a resume without a car, with a full car, with no
//! power, or on a locked charger is 409; any command to a disconnected charger is 409
//! "Charger is disconnected"; a resume while charging or a pause while paused is accepted and
//! changes nothing.
//!
//! # Faults
//!
//! `world.faults().active("wallbox")` is rendered in Wallbox's style on every request, token
//! calls included: `RateLimit` as 429 with `Retry-After` (whole seconds) and Wallbox's JSON
//! error; `ServerError` 500 as Wallbox's JSON error and 502/503/504 as the front end's HTML
//! page; `Outage` as a 503 HTML page; `Hang` waits (clock time converted to real time), then
//! answers; `Timeout` holds the request for `TIMEOUT_HANG`, then 504; `Malformed` is a 200
//! HTML maintenance page; `Truncated` the right body cut in half; `RevokeTokens` invalidates
//! every token on the next request (401 on the API, 401 on refresh).

use oemgate_sim::http::truncate;
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
use chrono::{DateTime, Utc};
use oemgate_core::Clock;
use oemgate_sim::rng::{hash, hash_str};
use oemgate_sim::{
    ChargeState, ChargerState, CommandRejected, DeviceId, DeviceKind, Fault, SiteId, TIMEOUT_HANG,
    VehicleState, World, WorldCommand,
};
use serde_json::{Value, json};

/// Where the simulator expects to be mounted.
pub const PREFIX: &str = "/wallbox";
/// The vendor name of Wallbox devices in the world, of its command latency and of its faults.
pub const WORLD_VENDOR: &str = "wallbox";
/// How long an access token works (unconfirmed at Wallbox).
pub const ACCESS_TOKEN_LIFETIME: Duration = Duration::from_secs(60 * 60);
/// How long a refresh token works (unconfirmed at Wallbox).
pub const REFRESH_TOKEN_LIFETIME: Duration = Duration::from_secs(30 * 86_400);
/// Requests each user may send per calendar minute by default.
pub const REQUESTS_PER_MINUTE: u32 = 60;
/// The lowest current a charger can be limited to, A.
const MIN_CURRENT: f64 = 6.0;
/// Range Wallbox's app estimates per kWh added, km.
const KM_PER_KWH: f64 = 6.0;
/// Charger ids start here (`chg-000003` is charger 700003).
const CHARGER_ID_BASE: u64 = 700_000;
/// Group ids start here (`site-000002` is group 280002).
const GROUP_ID_BASE: u64 = 280_000;
/// User ids start here.
const USER_ID_BASE: u64 = 286_100;
const PART_NUMBER: &str = "PLP1-0-2-4-9-002-E";
const CHARGER_TYPE: &str = "PulsarPlus";
const FIRMWARE: &str = "6.6.15";

/// How the simulator behaves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WallboxSimConfig {
    /// Access-token lifetime.
    pub access_token_lifetime: Duration,
    /// Refresh-token lifetime.
    pub refresh_token_lifetime: Duration,
    /// Requests per user per calendar minute before 429.
    pub requests_per_minute: u32,
    /// The `Partner` header token calls must carry.
    pub partner: String,
}

impl Default for WallboxSimConfig {
    fn default() -> Self {
        Self {
            access_token_lifetime: ACCESS_TOKEN_LIFETIME,
            refresh_token_lifetime: REFRESH_TOKEN_LIFETIME,
            requests_per_minute: REQUESTS_PER_MINUTE,
            partner: crate::PARTNER.to_owned(),
        }
    }
}

/// What a user has for linking a Wallbox account: the login of the Wallbox app.
#[derive(Clone, PartialEq, Eq)]
pub struct WallboxLogin {
    /// Wallbox's user id.
    pub user_id: u64,
    /// The login e-mail.
    pub email: String,
    /// The password.
    pub password: String,
}

impl fmt::Debug for WallboxLogin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WallboxLogin")
            .field("user_id", &self.user_id)
            .field("email", &self.email)
            .field("password", &"<redacted>")
            .finish()
    }
}

#[derive(Debug)]
struct Account {
    email: String,
    password: String,
    sites: Vec<SiteId>,
    /// The calendar minute (epoch minute) being counted, and its count.
    window: i64,
    used: u32,
}

#[derive(Debug)]
struct Token {
    user_id: u64,
    expires_at: DateTime<Utc>,
    revoked: bool,
    spent: bool,
}

/// What Wallbox keeps about a charger that the world does not.
#[derive(Debug, Default)]
struct ChargerExtra {
    locked: bool,
    icp_max_current: Option<f64>,
    energy_price: Option<f64>,
    last_online: Option<DateTime<Utc>>,
}

#[derive(Debug)]
struct SimState {
    config: WallboxSimConfig,
    accounts: BTreeMap<u64, Account>,
    access: HashMap<String, Token>,
    refresh: HashMap<String, Token>,
    chargers: BTreeMap<u64, DeviceId>,
    by_device: HashMap<DeviceId, u64>,
    groups: BTreeMap<u64, SiteId>,
    by_site: HashMap<SiteId, u64>,
    extra: HashMap<DeviceId, ChargerExtra>,
    serial: u64,
    next_user: u64,
}

/// The simulated Wallbox cloud. Cheap to clone; clones share everything.
#[derive(Clone)]
pub struct WallboxSim {
    world: World,
    clock: Arc<dyn Clock>,
    state: Arc<Mutex<SimState>>,
}

impl fmt::Debug for WallboxSim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.lock();
        f.debug_struct("WallboxSim")
            .field("accounts", &s.accounts.len())
            .field("chargers", &s.chargers.len())
            .finish_non_exhaustive()
    }
}

// ---- responses ------------------------------------------------------------------------------

fn json_response(status: StatusCode, body: &Value) -> Response {
    let mut response = (status, body.to_string()).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

fn ok(body: &Value) -> Response {
    json_response(StatusCode::OK, body)
}

/// Wallbox's error shape.
fn error(status: StatusCode, msg: &str) -> Response {
    json_response(status, &json!({ "error": true, "status": status.as_u16(), "msg": msg }))
}

fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "Not found")
}

fn charger_not_found() -> Response {
    error(StatusCode::NOT_FOUND, "Charger not found")
}

fn method_not_allowed() -> Response {
    error(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed")
}

fn disconnected() -> Response {
    error(StatusCode::CONFLICT, "Charger is disconnected")
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
    let mut response = error(StatusCode::TOO_MANY_REQUESTS, "Too Many Requests");
    if let Ok(v) = HeaderValue::from_str(&retry_after_secs.to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, v);
    }
    response
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
        _ => error(status, status.canonical_reason().unwrap_or("Server Error")),
    }
}

// ---- helpers --------------------------------------------------------------------------------

fn basic_auth(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let encoded = value.strip_prefix("Basic ").or_else(|| value.strip_prefix("basic "))?;
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
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

/// A finite number rounded to `digits` decimals (Wallbox sends 2 for kW, 3 for kWh).
fn round(x: f64, digits: i32) -> f64 {
    if !x.is_finite() {
        return 0.0;
    }
    let f = 10f64.powi(digits);
    (x * f).round() / f
}

/// A finite number as a whole integer.
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

/// The number in an id like `chg-000003`, if small.
fn id_number(id: &str) -> Option<u64> {
    let digits: String = id.chars().filter(char::is_ascii_digit).collect();
    digits.parse::<u64>().ok().filter(|n| *n < 100_000)
}

/// The `status_id` Wallbox reports for a world charger (see the module docs).
pub fn status_id(charger: &ChargerState, vehicle: Option<&VehicleState>, locked: bool) -> i64 {
    if !charger.online {
        return 0;
    }
    if charger.charging {
        return 194;
    }
    if charger.vehicle.is_none() {
        return if locked { 209 } else { 161 };
    }
    if locked {
        return 210;
    }
    match vehicle {
        Some(v) if v.charge_state == ChargeState::NoPower => 181,
        Some(v)
            if v.charge_state == ChargeState::Complete
                || v.battery_level >= v.charge_limit - oemgate_sim::physics::vehicle::LEVEL_EPS =>
        {
            180
        }
        _ => 178,
    }
}

/// The world command's refusal as Wallbox answers it; `None` when Wallbox accepts (no-op).
fn refusal(rejected: CommandRejected) -> Option<Response> {
    let conflict = |msg: &str| Some(error(StatusCode::CONFLICT, msg));
    match rejected {
        CommandRejected::AlreadySet => None,
        CommandRejected::Offline => Some(disconnected()),
        CommandRejected::NotPluggedIn => conflict("No car connected"),
        CommandRejected::AtLimit => conflict("The car does not demand charge"),
        CommandRejected::NoPower => conflict("No power available for the car"),
        CommandRejected::Asleep | CommandRejected::Driving => conflict("The car is not ready"),
        CommandRejected::InvalidValue(why) => Some(error(StatusCode::BAD_REQUEST, &why)),
        CommandRejected::Unsupported { .. } => {
            Some(error(StatusCode::BAD_REQUEST, "Action not supported by this charger"))
        }
        CommandRejected::UnknownDevice { .. } => Some(charger_not_found()),
    }
}

async fn handle(
    State(sim): State<WallboxSim>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    sim.apply_revocation();
    let fault = sim.world.faults().active(WORLD_VENDOR);
    match &fault {
        Some(Fault::RateLimit { retry_after }) => {
            let secs = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
            return too_many_requests(secs);
        }
        Some(Fault::ServerError { status }) => return server_error(*status),
        Some(Fault::Outage) => {
            return html(StatusCode::SERVICE_UNAVAILABLE, "503 Service Temporarily Unavailable");
        }
        Some(f @ Fault::Hang { .. }) => {
            if let Some(wait) = f.hang_real(sim.clock.as_ref()) {
                tokio::time::sleep(wait).await;
            }
        }
        Some(Fault::Timeout) => {
            tokio::time::sleep(TIMEOUT_HANG).await;
            return html(StatusCode::GATEWAY_TIMEOUT, "504 Gateway Time-out");
        }
        Some(Fault::Malformed) => {
            return html(StatusCode::OK, "Wallbox is down for maintenance");
        }
        Some(Fault::Truncated | Fault::RevokeTokens) | None => {}
    }
    let response = sim.route(&method, &uri, &headers, &body);
    if matches!(fault, Some(Fault::Truncated)) { truncate(response).await } else { response }
}

impl WallboxSim {
    /// A simulator over `world` with the default configuration.
    pub fn new(world: World) -> Self {
        Self::with_config(world, WallboxSimConfig::default())
    }

    /// A simulator over `world` with `config`.
    pub fn with_config(world: World, config: WallboxSimConfig) -> Self {
        let clock = world.clock();
        let state = SimState {
            config,
            accounts: BTreeMap::new(),
            access: HashMap::new(),
            refresh: HashMap::new(),
            chargers: BTreeMap::new(),
            by_device: HashMap::new(),
            groups: BTreeMap::new(),
            by_site: HashMap::new(),
            extra: HashMap::new(),
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

    /// Creates a Wallbox account owning `sites` (each becomes a group with its Wallbox
    /// chargers) and returns the login the user signs in with.
    pub fn create_account(&self, sites: &[SiteId]) -> WallboxLogin {
        let seed = self.world.seed();
        let mut s = self.lock();
        s.next_user += 1;
        let user_id = USER_ID_BASE + s.next_user;
        let email = format!("owner{user_id}@example.invalid");
        let password = Self::new_secret(&mut s, seed, 3);
        for site in sites {
            Self::group_of(&mut s, site);
        }
        self.register_chargers(&mut s, sites);
        let account = Account {
            email: email.clone(),
            password: password.clone(),
            sites: sites.to_vec(),
            window: i64::MIN,
            used: 0,
        };
        s.accounts.insert(user_id, account);
        WallboxLogin { user_id, email, password }
    }

    /// The Wallbox charger id (also its serial number) of a world charger (assigned on first
    /// use, stable for a world).
    pub fn charger_id(&self, device: &DeviceId) -> u64 {
        let mut s = self.lock();
        Self::charger_of(&mut s, device)
    }

    /// The group id a site is exposed as.
    pub fn group_id(&self, site: &SiteId) -> u64 {
        let mut s = self.lock();
        Self::group_of(&mut s, site)
    }

    /// Makes every access token expired now (their refresh tokens still work).
    pub fn expire_access_tokens(&self) {
        let now = self.clock.now();
        for token in self.lock().access.values_mut() {
            token.expires_at = token.expires_at.min(now);
        }
    }

    /// Revokes every token of a user (e.g. the password was changed).
    pub fn revoke_user(&self, user_id: u64) {
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

    /// Locks or unlocks a charger as the user would in the Wallbox app.
    pub fn set_locked(&self, device: &DeviceId, locked: bool) {
        self.lock().extra.entry(device.clone()).or_default().locked = locked;
    }

    /// Whether a charger is locked.
    pub fn is_locked(&self, device: &DeviceId) -> bool {
        self.lock().extra.get(device).is_some_and(|e| e.locked)
    }

    fn apply_revocation(&self) {
        if self.world.faults().take_revocation(WORLD_VENDOR) {
            self.revoke_all_tokens();
        }
    }

    fn new_secret(s: &mut SimState, seed: u64, kind: u64) -> String {
        s.serial += 1;
        let a = hash(&[seed, kind, s.serial]);
        let b = hash(&[a, s.serial, 0x0057_A11B]);
        format!("{a:016x}{b:016x}")
    }

    /// A JWT-looking opaque token.
    fn new_token(s: &mut SimState, seed: u64, kind: u64) -> String {
        let body = Self::new_secret(s, seed, kind);
        let sig = Self::new_secret(s, seed, kind + 100);
        format!("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.{body}.{sig}")
    }

    fn charger_of(s: &mut SimState, device: &DeviceId) -> u64 {
        if let Some(id) = s.by_device.get(device) {
            return *id;
        }
        let mut id = match id_number(device.as_str()) {
            Some(n) => CHARGER_ID_BASE + n,
            None => 1_000_000 + hash_str(device.as_str()) % 8_000_000,
        };
        while s.chargers.contains_key(&id) {
            id += 1;
        }
        s.chargers.insert(id, device.clone());
        s.by_device.insert(device.clone(), id);
        id
    }

    fn group_of(s: &mut SimState, site: &SiteId) -> u64 {
        if let Some(id) = s.by_site.get(site) {
            return *id;
        }
        let mut id = match id_number(site.as_str()) {
            Some(n) => GROUP_ID_BASE + n,
            None => 400_000 + hash_str(site.as_str()) % 500_000,
        };
        while s.groups.contains_key(&id) {
            id += 1;
        }
        s.groups.insert(id, site.clone());
        s.by_site.insert(site.clone(), id);
        id
    }

    /// The Wallbox chargers of a site, in id order.
    fn site_chargers(&self, site: &SiteId) -> Vec<DeviceId> {
        self.world
            .devices_of_site(site)
            .into_iter()
            .filter(|d| d.kind == DeviceKind::Charger && d.vendor == WORLD_VENDOR)
            .map(|d| d.id)
            .collect()
    }

    fn register_chargers(&self, s: &mut SimState, sites: &[SiteId]) {
        for site in sites {
            for device in self.site_chargers(site) {
                Self::charger_of(s, &device);
            }
        }
    }

    /// The world charger behind a charger id of the account, if it is the account's.
    fn resolve(&self, s: &mut SimState, sites: &[SiteId], id: &str) -> Option<DeviceId> {
        let id = id.trim().parse::<u64>().ok()?;
        if !s.chargers.contains_key(&id) {
            // A charger added to the world after the account was created.
            self.register_chargers(s, sites);
        }
        let device = s.chargers.get(&id)?.clone();
        let info = self.world.device_info(&device)?;
        let mine = info.kind == DeviceKind::Charger
            && info.vendor == WORLD_VENDOR
            && sites.contains(&info.site);
        mine.then_some(device)
    }

    /// Counts a request of `user_id`; the 429 when the minute's allowance is spent.
    fn admit(s: &mut SimState, user_id: u64, now: DateTime<Utc>) -> Option<Response> {
        let limit = s.config.requests_per_minute;
        let account = s.accounts.get_mut(&user_id)?;
        let window = now.timestamp().div_euclid(60);
        if account.window != window {
            account.window = window;
            account.used = 0;
        }
        if account.used >= limit {
            let left = (window + 1) * 60 - now.timestamp();
            return Some(too_many_requests(u64::try_from(left.max(1)).unwrap_or(60)));
        }
        account.used += 1;
        None
    }

    fn partner_ok(s: &SimState, headers: &HeaderMap) -> bool {
        headers
            .get("partner")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|p| p.trim() == s.config.partner)
    }

    fn route(&self, method: &Method, uri: &Uri, headers: &HeaderMap, body: &[u8]) -> Response {
        let now = self.clock.now();
        let segments: Vec<&str> = uri.path().split('/').filter(|s| !s.is_empty()).collect();
        match segments.as_slice() {
            ["users", "signin"] if method == Method::GET => self.signin(headers, now),
            ["users", "refresh-token"] if method == Method::GET => self.refresh(headers, now),
            ["users", "signin" | "refresh-token"] => method_not_allowed(),
            _ => self.api(method, &segments, headers, body, now),
        }
    }

    // ---- tokens ------------------------------------------------------------------------------

    fn signin(&self, headers: &HeaderMap, now: DateTime<Utc>) -> Response {
        let mut s = self.lock();
        if !Self::partner_ok(&s, headers) {
            return error(StatusCode::BAD_REQUEST, "Missing or unknown Partner header");
        }
        let Some((email, password)) = basic_auth(headers) else {
            return error(StatusCode::UNAUTHORIZED, "Authentication required");
        };
        let user = s
            .accounts
            .iter()
            .find(|(_, a)| a.email.eq_ignore_ascii_case(email.trim()))
            .map(|(id, _)| *id);
        let Some(user_id) = user else {
            return error(StatusCode::FORBIDDEN, "Invalid credentials");
        };
        if let Some(limited) = Self::admit(&mut s, user_id, now) {
            return limited;
        }
        if s.accounts.get(&user_id).is_none_or(|a| a.password != password) {
            return error(StatusCode::FORBIDDEN, "Invalid credentials");
        }
        self.issue_tokens(&mut s, user_id, now)
    }

    fn refresh(&self, headers: &HeaderMap, now: DateTime<Utc>) -> Response {
        let mut s = self.lock();
        if !Self::partner_ok(&s, headers) {
            return error(StatusCode::BAD_REQUEST, "Missing or unknown Partner header");
        }
        let Some(presented) = bearer(headers) else {
            return error(StatusCode::UNAUTHORIZED, "Authentication required");
        };
        let user_id = match s.refresh.get(presented) {
            None => return error(StatusCode::UNAUTHORIZED, "Invalid refresh token"),
            Some(t) if t.revoked || t.spent => {
                return error(StatusCode::UNAUTHORIZED, "Invalid refresh token");
            }
            Some(t) if now >= t.expires_at => {
                return error(StatusCode::UNAUTHORIZED, "Expired refresh token");
            }
            Some(t) => t.user_id,
        };
        if let Some(limited) = Self::admit(&mut s, user_id, now) {
            return limited;
        }
        if let Some(t) = s.refresh.get_mut(presented) {
            t.spent = true;
        }
        self.issue_tokens(&mut s, user_id, now)
    }

    fn issue_tokens(&self, s: &mut SimState, user_id: u64, now: DateTime<Utc>) -> Response {
        let seed = self.world.seed();
        let access = Self::new_token(s, seed, 10);
        let refresh = Self::new_token(s, seed, 11);
        let access_expires = plus(now, s.config.access_token_lifetime);
        let refresh_expires = plus(now, s.config.refresh_token_lifetime);
        let token = |expires_at| Token { user_id, expires_at, revoked: false, spent: false };
        s.access.insert(access.clone(), token(access_expires));
        s.refresh.insert(refresh.clone(), token(refresh_expires));
        ok(&json!({
            "data": {
                "attributes": {
                    "token": access,
                    "refresh_token": refresh,
                    "user_id": user_id,
                    "ttl": access_expires.timestamp_millis(),
                    "refresh_token_ttl": refresh_expires.timestamp_millis(),
                    "error": false,
                    "status": 200,
                }
            }
        }))
    }

    // ---- API ---------------------------------------------------------------------------------

    fn api(
        &self,
        method: &Method,
        path: &[&str],
        headers: &HeaderMap,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Response {
        let known = matches!(
            path,
            ["v3", "chargers", "groups"]
                | ["chargers", "status", _]
                | ["v3", "chargers", _, "remote-action"]
                | ["v2", "charger", _]
                | ["chargers", "config", _]
        );
        if !known {
            return not_found();
        }
        let mut s = self.lock();
        let Some(presented) = bearer(headers) else {
            return error(StatusCode::UNAUTHORIZED, "Authentication required");
        };
        let user_id = match s.access.get(presented) {
            None => return error(StatusCode::UNAUTHORIZED, "Invalid token"),
            Some(t) if t.revoked => return error(StatusCode::UNAUTHORIZED, "Invalid token"),
            Some(t) if now >= t.expires_at => {
                return error(StatusCode::UNAUTHORIZED, "Expired token");
            }
            Some(t) => t.user_id,
        };
        if let Some(limited) = Self::admit(&mut s, user_id, now) {
            return limited;
        }
        let Some(sites) = s.accounts.get(&user_id).map(|a| a.sites.clone()) else {
            return error(StatusCode::UNAUTHORIZED, "Invalid token");
        };
        let get = method == Method::GET;
        match path {
            ["v3", "chargers", "groups"] if get => self.groups(&mut s, &sites, now),
            ["chargers", "status", id] if get => match self.resolve(&mut s, &sites, id) {
                Some(device) => self.status(&mut s, &device, now),
                None => charger_not_found(),
            },
            ["v3", "chargers", id, "remote-action"] if method == Method::POST => {
                match self.resolve(&mut s, &sites, id) {
                    Some(device) => self.remote_action(&s, &device, body),
                    None => charger_not_found(),
                }
            }
            ["v2", "charger", id] if method == Method::PUT => {
                match self.resolve(&mut s, &sites, id) {
                    Some(device) => self.update_charger(&mut s, &device, body, now),
                    None => charger_not_found(),
                }
            }
            ["chargers", "config", id] if method == Method::POST => {
                match self.resolve(&mut s, &sites, id) {
                    Some(device) => self.config(&mut s, &device, body),
                    None => charger_not_found(),
                }
            }
            _ => method_not_allowed(),
        }
    }

    /// The world charger and the car on it, noting when the charger was last online.
    fn read(
        &self,
        s: &mut SimState,
        device: &DeviceId,
    ) -> Option<(ChargerState, Option<VehicleState>)> {
        let charger = self.world.charger(device)?;
        let vehicle = charger.vehicle.as_ref().and_then(|v| self.world.vehicle(v));
        if charger.online {
            s.extra.entry(device.clone()).or_default().last_online = Some(charger.at);
        }
        Some((charger, vehicle))
    }

    fn groups(&self, s: &mut SimState, sites: &[SiteId], now: DateTime<Utc>) -> Response {
        let mut listed: Vec<(u64, SiteId)> =
            sites.iter().map(|site| (Self::group_of(s, site), site.clone())).collect();
        listed.sort();
        listed.dedup();
        let mut groups = Vec::new();
        for (group_id, site) in listed {
            let Some(site_state) = self.world.site(&site) else { continue };
            let mut chargers = Vec::new();
            for device in self.site_chargers(&site) {
                let id = Self::charger_of(s, &device);
                let Some((c, v)) = self.read(s, &device) else { continue };
                let extra = s.extra.entry(device.clone()).or_default();
                let code = status_id(&c, v.as_ref(), extra.locked);
                let power = if code == 194 { round(c.power_w / 1000.0, 2) } else { 0.0 };
                chargers.push(json!({
                    "id": id,
                    "uid": charger_uid(id),
                    "name": c.name,
                    "chargerType": CHARGER_TYPE,
                    "serialNumber": id.to_string(),
                    "softwareVersion": FIRMWARE,
                    "image": null,
                    "status": code,
                    "maxChargingCurrent": int(c.max_current_a),
                    "maxAvailableCurrent": int(c.hardware_max_a),
                    "chargingPower": power,
                    "addedEnergy": round(c.session_kwh, 3),
                    "locked": u8::from(extra.locked),
                    "operationMode": "wallbox",
                    "ocppConnectionStatus": 0,
                    "midStatus": 0,
                    "remoteAction": 0,
                    "lastConnection": extra.last_online.unwrap_or(now).timestamp(),
                }));
            }
            groups.push(json!({
                "id": group_id,
                "uid": format!("{:x}", hash(&[group_id, 0x6712])),
                "name": site_state.name,
                "chargers": chargers,
            }));
        }
        ok(&json!({ "result": { "groups": groups } }))
    }

    fn status(&self, s: &mut SimState, device: &DeviceId, now: DateTime<Utc>) -> Response {
        let id = Self::charger_of(s, device);
        let home = self.world.device_info(device).map(|i| i.site);
        let group_id = home.as_ref().map_or(0, |site| Self::group_of(s, site));
        let owner = s
            .accounts
            .iter()
            .find(|(_, a)| home.as_ref().is_some_and(|site| a.sites.contains(site)))
            .map_or(0, |(user, _)| *user);
        let Some((c, v)) = self.read(s, device) else { return charger_not_found() };
        let site = self.world.site(&c.site);
        let extra = s.extra.entry(device.clone()).or_default();
        let code = status_id(&c, v.as_ref(), extra.locked);
        let charging = code == 194;
        let power = if charging { round(c.power_w / 1000.0, 2) } else { 0.0 };
        let price = extra.energy_price.unwrap_or(0.25);
        let synced =
            if c.online { c.at } else { extra.last_online.unwrap_or(self.world.started_at()) };
        let synced = synced.min(now);
        let config_data = json!({
            "charger_id": id,
            "uid": charger_uid(id),
            "serial_number": id.to_string(),
            "name": c.name,
            "locked": u8::from(extra.locked),
            "auto_lock": 0,
            "auto_lock_time": 60,
            "multiuser": 0,
            "max_charging_current": int(c.max_current_a),
            "language": "EN",
            "icp_max_current": extra.icp_max_current.map_or(0, int),
            "grid_type": 1,
            "energy_price": price,
            "unlock_user_id": null,
            "max_available_current": int(c.hardware_max_a),
            "live_refresh_time": 30,
            "update_refresh_time": 300,
            "owner_id": owner,
            "remote_action": 0,
            "plan": { "plan_name": "Basic", "features": ["DEFAULT_FEATURE"] },
            "sync_timestamp": synced.timestamp(),
            "currency": { "id": 1, "name": "Euro Member Countries", "symbol": "€", "code": "EUR" },
            "charger_load_type": "Private",
            "timezone": site.as_ref().map(|s| s.timezone.clone()),
            "part_number": PART_NUMBER,
            "software": {
                "updateAvailable": false,
                "currentVersion": FIRMWARE,
                "latestVersion": FIRMWARE,
                "fileName": format!("plp1_{FIRMWARE}.tar"),
            },
            "available": 1,
            "operation_mode": "wallbox",
            "mid_enabled": 0,
            "group_id": group_id,
            "ecosmart": { "enabled": false, "mode": 0, "percentage": 100 },
        });
        ok(&json!({
            "user_id": owner,
            "user_name": format!("Owner {owner}"),
            "car_id": 1,
            "car_plate": "",
            "depot_price": price,
            "last_sync": synced.format("%Y-%m-%d %H:%M:%S").to_string(),
            "power_sharing_status": 0,
            "mid_status": 0,
            "status_id": code,
            "name": c.name,
            "charging_power": power,
            "max_available_power": int(c.hardware_max_a),
            "depot_name": site.as_ref().map(|s| s.name.clone()),
            "charging_speed": int(power * KM_PER_KWH),
            "added_range": int(c.session_kwh * KM_PER_KWH),
            "added_energy": round(c.session_kwh, 3),
            "added_green_energy": 0,
            "added_discharged_energy": 0,
            "added_grid_energy": round(c.session_kwh, 3),
            "finished": !charging,
            "cost": round(c.session_kwh * price, 2),
            "current_mode": c.phases,
            "preventive_discharge": false,
            "state_of_charge": null,
            "ocpp_status": 0,
            "config_data": config_data,
        }))
    }

    fn remote_action(&self, s: &SimState, device: &DeviceId, body: &[u8]) -> Response {
        let action = serde_json::from_slice::<Value>(body)
            .ok()
            .and_then(|v| v.get("action").and_then(crate::model::value_i64));
        let Some(action) = action else {
            return error(StatusCode::BAD_REQUEST, "action is required");
        };
        let Some(charger) = self.world.charger(device) else { return charger_not_found() };
        let command = match action {
            1 => Some(WorldCommand::ChargerStart),
            2 => Some(WorldCommand::ChargerStop),
            3 | 5 | 9 => None,
            _ => return error(StatusCode::BAD_REQUEST, "Unknown action"),
        };
        if !charger.online {
            return disconnected();
        }
        if action == 1 && s.extra.get(device).is_some_and(|e| e.locked) {
            return error(StatusCode::CONFLICT, "Charger is locked");
        }
        if let Some(command) = command
            && let Err(rejected) = self.world.command(WORLD_VENDOR, device, command)
            && let Some(refused) = refusal(rejected)
        {
            return refused;
        }
        ok(&json!({ "id": charger_id_of(s, device), "action": action, "status": "accepted" }))
    }

    fn update_charger(
        &self,
        s: &mut SimState,
        device: &DeviceId,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Response {
        let Ok(Value::Object(fields)) = serde_json::from_slice::<Value>(body) else {
            return error(StatusCode::BAD_REQUEST, "Request body must be a JSON object");
        };
        let Some(charger) = self.world.charger(device) else { return charger_not_found() };
        let hardware = int(charger.hardware_max_a);
        let current = match fields.get("maxChargingCurrent") {
            None => None,
            Some(v) => match crate::model::value_i64(v) {
                Some(a) if (int(MIN_CURRENT)..=hardware).contains(&a) => Some(a),
                _ => {
                    return error(
                        StatusCode::BAD_REQUEST,
                        &format!("maxChargingCurrent must be an integer between 6 and {hardware}"),
                    );
                }
            },
        };
        let locked = match fields.get("locked") {
            None => None,
            Some(Value::Bool(b)) => Some(*b),
            Some(v) => match crate::model::value_i64(v) {
                Some(0) => Some(false),
                Some(1) => Some(true),
                _ => return error(StatusCode::BAD_REQUEST, "locked must be 0 or 1"),
            },
        };
        if current.is_none() && locked.is_none() {
            return error(StatusCode::BAD_REQUEST, "Nothing to update");
        }
        if !charger.online {
            return disconnected();
        }
        if let Some(amps) = current {
            #[allow(clippy::cast_precision_loss)]
            let amps = amps as f64;
            if let Err(rejected) =
                self.world.command(WORLD_VENDOR, device, WorldCommand::SetChargerMaxCurrent(amps))
                && let Some(refused) = refusal(rejected)
            {
                return refused;
            }
        }
        let extra = s.extra.entry(device.clone()).or_default();
        if let Some(flag) = locked {
            extra.locked = flag;
        }
        let locked_now = extra.locked;
        let vehicle = charger.vehicle.as_ref().and_then(|v| self.world.vehicle(v));
        let code = status_id(&charger, vehicle.as_ref(), locked_now);
        let id = Self::charger_of(s, device);
        let group = self.world.device_info(device).map_or(0, |i| Self::group_of(s, &i.site));
        ok(&json!({
            "data": {
                "chargerData": {
                    "id": id,
                    "uid": charger_uid(id),
                    "serialNumber": id.to_string(),
                    "name": charger.name,
                    "group": group,
                    "chargerType": CHARGER_TYPE,
                    "softwareVersion": FIRMWARE,
                    "status": code,
                    "maxAvailableCurrent": hardware,
                    "maxChargingCurrent": current.unwrap_or_else(|| int(charger.max_current_a)),
                    "locked": u8::from(locked_now),
                    "lastConnection": now.timestamp(),
                }
            }
        }))
    }

    fn config(&self, s: &mut SimState, device: &DeviceId, body: &[u8]) -> Response {
        let Ok(Value::Object(fields)) = serde_json::from_slice::<Value>(body) else {
            return error(StatusCode::BAD_REQUEST, "Request body must be a JSON object");
        };
        let Some(charger) = self.world.charger(device) else { return charger_not_found() };
        let icp = match fields.get("icp_max_current") {
            None => None,
            Some(v) => match crate::model::value_f64(v) {
                Some(a) if (0.0..=1000.0).contains(&a) => Some(a),
                _ => return error(StatusCode::BAD_REQUEST, "icp_max_current is out of range"),
            },
        };
        let price = match fields.get("energyCost").or_else(|| fields.get("energy_price")) {
            None => None,
            Some(v) => match crate::model::value_f64(v) {
                Some(p) if p >= 0.0 => Some(p),
                _ => return error(StatusCode::BAD_REQUEST, "energyCost must be a positive number"),
            },
        };
        if icp.is_none() && price.is_none() {
            return error(StatusCode::BAD_REQUEST, "Nothing to update");
        }
        if !charger.online {
            return disconnected();
        }
        let id = Self::charger_of(s, device);
        let extra = s.extra.entry(device.clone()).or_default();
        if icp.is_some() {
            extra.icp_max_current = icp;
        }
        if price.is_some() {
            extra.energy_price = price;
        }
        ok(&json!({
            "charger_id": id,
            "icp_max_current": extra.icp_max_current.map_or(0, int),
            "energy_price": extra.energy_price.unwrap_or(0.25),
        }))
    }
}

/// A charger's `uid` (a stable opaque string).
fn charger_uid(id: u64) -> String {
    format!("{:x}", hash(&[id, 0x551D]))
}

fn charger_id_of(s: &SimState, device: &DeviceId) -> u64 {
    s.by_device.get(device).copied().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helpers() {
        assert_eq!(id_number("chg-000003"), Some(3));
        assert_eq!(id_number("site-000012"), Some(12));
        assert_eq!(id_number("x"), None);
        assert_eq!(round(7.3649, 2), 7.36);
        assert_eq!(int(15.6), 16);
        assert_eq!(int(f64::NAN), 0);
    }
}
