//! Tesla's cloud, simulated: a thin, Tesla-shaped HTTP layer over the shared
//! [`oemgate_sim::World`].
//!
//! The world owns every device and all of the physics (charging, driving, sleeping, PV,
//! house load, batteries, command latency, faults, ground truth). [`TeslaSim`] only adds
//! what is Tesla's own: accounts and OAuth tokens, which world devices each account sees
//! (vehicles by VIN, energy sites by `energy_site_id`), regions, Tesla's JSON and error
//! shapes, Tesla-style fault rendering and per-billing-class request counters.
//!
//! Serve [`TeslaSim::router`] on its own or under a prefix of an [`oemgate_sim::SimHost`]
//! (`/tesla`); the adapter's API and auth base URLs are then `http://<host>/tesla`.
//!
//! | route | what |
//! |---|---|
//! | `GET /oauth2/v3/authorize` | code grant: with `login_hint` (the owner's e-mail, [`TeslaSim::login`]) redirects to `redirect_uri?code=..&state=..`; without it a sign-in form; `decision=deny` redirects with `error=access_denied` |
//! | `POST /oauth2/v3/token` | `authorization_code` and `refresh_token` grants (form-encoded) |
//! | `GET /api/1/vehicles` | the account's cars with `state` `online`/`asleep`/`offline`; never wakes or touches |
//! | `GET /api/1/products` | the account's cars and energy sites (`energy_site_id`, `resource_type: "battery"`) |
//! | `GET /api/1/vehicles/{vin}/vehicle_data` | live data (keeps the car awake); 408 when asleep or offline |
//! | `POST /api/1/vehicles/{vin}/wake_up` | asks the world to wake the car; answers the current state at once |
//! | `POST /api/1/vehicles/{vin}/command/{command}` | `charge_start`, `charge_stop`, `set_charging_amps`, `set_charge_limit` |
//! | `GET /api/1/energy_sites/{id}/live_status` | powers in W: `battery_power` > 0 discharging, `grid_power` > 0 importing |
//! | `GET /api/1/energy_sites/{id}/site_info` | mode, reserve, nameplates, components |
//! | `POST /api/1/energy_sites/{id}/operation` | `{"default_real_mode": "self_consumption"\|"autonomous"\|"backup"}` |
//! | `POST /api/1/energy_sites/{id}/backup` | `{"backup_reserve_percent": n}` |
//!
//! **Auth.** Authorization codes and refresh tokens are single-use (a spent or unknown
//! refresh token gets 401 `login_required`); refresh tokens expire after
//! [`REFRESH_TOKEN_LIFETIME`]; access tokens after [`DEFAULT_ACCESS_TOKEN_LIFETIME`]
//! ([`TeslaSim::set_access_token_lifetime`]), then 401 `token expired (401)`. Unknown tokens
//! get 401 `invalid bearer token`; revoked ones 401 `login_required`.
//!
//! **Regions** are path prefixes: `/{region}/api/1/...` with `region` one of `na`, `eu`,
//! `cn` ([`Region`]); the bare `/api/1/...` is region-less. An account bound to a region
//! ([`TeslaSim::link_in_region`], [`TeslaSim::set_region`]) that calls any other base path
//! gets 421 `user out of region, use base URL: http://<host><mount>/<region>` (the host
//! and mount prefix come from the request). Unbound accounts (the default) are served
//! everywhere. The token endpoint is global.
//!
//! **Commands** go to the world as [`WorldCommand`]s from vendor [`WORLD_VENDOR`]; Tesla
//! answers `{"result":true}` when the world accepts (the effect lands after the world's
//! latency) and `{"result":false,"reason":..}` when it refuses: `is_charging` /
//! `not_charging` (already in that state, for `charge_start` / `charge_stop`),
//! `already_set`, `disconnected`, `complete`, `no_power`, `driving`, `invalid_value`. A
//! sleeping or offline car gets 408. Energy commands answer `{"code":201,"message":"Updated"}`
//! (also when the value is already set); an offline Powerwall gets 408 `device unavailable`.
//!
//! **Modes.** Tesla's `default_real_mode` ↔ world [`BatteryMode`]: `self_consumption` ↔
//! `SelfReliance`, `autonomous` ↔ `TimeOfUse`, `backup` ↔ `Backup` (see
//! [`tesla_mode_of`], [`world_mode_of`]). World modes Tesla has no name for are shown as the
//! closest Tesla mode: `ImportFocus` and `Idle` as `backup`, `ExportFocus` as `autonomous`.
//!
//! **Energy sites.** One Tesla energy site per world site with Tesla batteries; several
//! Powerwalls at a site are one site (`battery_count`, summed nameplates and power,
//! energy-weighted charge). `solar_power` is the site's PV, `grid_power` the site's grid
//! power, `load_power = solar_power + battery_power + grid_power` (the gateway's balance).
//! While every Powerwall of a site is offline, `live_status` repeats the last values it
//! served, with their old `timestamp`.
//!
//! **Faults** come from `world.faults().active("tesla")` at the start of every request
//! (token endpoint included) and are rendered Tesla-style: `RateLimit` → 429 with
//! `Retry-After` and `RateLimit-Limit`/`-Remaining`/`-Reset`; `ServerError{status}` → that
//! status with Tesla's error JSON; `Outage` → 503; `Hang` → the normal answer after the
//! fault's clock duration converted to real time (`tokio::time::sleep`); `Timeout` → 504
//! after [`oemgate_sim::TIMEOUT_HANG`] of real time; `Malformed` → 200 with invalid JSON;
//! `Truncated` → the normal answer cut in half. A due `RevokeTokens` invalidates every code
//! and token issued so far (401 `login_required` from then on).
//!
//! **Counters** ([`RequestCounts`]) are kept per billing class (data, commands, wakes; token
//! requests are free); [`TeslaSim::billed_counts`] counts only answers below 500, as Tesla
//! bills, and [`RequestCounts::cost_usd`] prices them.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::extract::{OriginalUri, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, FixedOffset, Offset, TimeZone, Utc};
use oemgate_sim::rng::{hash, hash_str};
use oemgate_sim::{
    BatteryMode, ChargeState, CommandRejected, DeviceId, DeviceKind, Fault, PowerState, SiteId,
    TIMEOUT_HANG, VehicleState, World, WorldCommand,
};
use serde_json::{Value, json};

/// The vendor name of Tesla's devices, commands and faults in the world.
pub const WORLD_VENDOR: &str = "tesla";
/// The path prefix the simulator is mounted under in a [`oemgate_sim::SimHost`] by
/// convention (`http://<host>/tesla` is then both the API and the auth base URL).
pub const PREFIX: &str = "/tesla";
/// Access tokens live this long unless changed.
pub const DEFAULT_ACCESS_TOKEN_LIFETIME: Duration = Duration::from_secs(8 * 3600);
/// Refresh tokens expire after three months (if not used before).
pub const REFRESH_TOKEN_LIFETIME: Duration = Duration::from_secs(90 * 86_400);
/// Tesla's prices per billed request, USD.
pub const PRICE_DATA_USD: f64 = 0.002;
/// Price of a billed command, USD.
pub const PRICE_COMMAND_USD: f64 = 0.001;
/// Price of a billed wake-up, USD.
pub const PRICE_WAKE_USD: f64 = 0.02;
/// `RateLimit-Limit` sent with a simulated 429.
pub const RATE_LIMIT_LIMIT: u32 = 300;

const BODY_LIMIT: usize = 64 * 1024;
const KM_PER_MILE: f64 = 1.609_344;

/// A Fleet API region, served under the path prefix `/{region}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Region {
    /// North America and Asia-Pacific: `/na`.
    Na,
    /// Europe, Middle East and Africa: `/eu`.
    Eu,
    /// China: `/cn`.
    Cn,
}

impl Region {
    /// The path segment (`na`, `eu`, `cn`).
    pub fn as_str(self) -> &'static str {
        match self {
            Region::Na => "na",
            Region::Eu => "eu",
            Region::Cn => "cn",
        }
    }

    /// Parses a path segment.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "na" => Some(Region::Na),
            "eu" => Some(Region::Eu),
            "cn" => Some(Region::Cn),
            _ => None,
        }
    }
}

/// What went wrong setting up the simulator (not an HTTP answer).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SimError {
    /// The world has no such device or site.
    #[error("unknown world device or site {0}")]
    Unknown(String),
    /// The device is not Tesla's.
    #[error("{device} belongs to vendor {vendor}, not {WORLD_VENDOR}")]
    NotTesla {
        /// The device.
        device: DeviceId,
        /// Its vendor.
        vendor: String,
    },
    /// Tesla's cloud serves vehicles and batteries only.
    #[error("{device} is a {kind}; Tesla's cloud serves vehicles and batteries")]
    UnsupportedKind {
        /// The device.
        device: DeviceId,
        /// Its kind.
        kind: DeviceKind,
    },
    /// No such account.
    #[error("unknown account {0}")]
    UnknownAccount(String),
}

/// Requests the simulator answered, per endpoint class.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RequestCounts {
    /// `POST /oauth2/v3/token` (free).
    pub token: u64,
    /// `GET /api/1/vehicles` (data).
    pub vehicle_list: u64,
    /// `GET /api/1/products` (data).
    pub products: u64,
    /// `GET .../vehicle_data` (data).
    pub vehicle_data: u64,
    /// `GET .../live_status` and `.../site_info` (data).
    pub energy_data: u64,
    /// Vehicle commands and energy `operation`/`backup` (commands).
    pub commands: u64,
    /// `POST .../wake_up` (wakes).
    pub wakes: u64,
}

impl RequestCounts {
    /// Data requests: lists, products, `vehicle_data`, energy reads.
    pub fn data(&self) -> u64 {
        self.vehicle_list + self.products + self.vehicle_data + self.energy_data
    }

    /// Every counted request, token requests included.
    pub fn total(&self) -> u64 {
        self.token + self.data() + self.commands + self.wakes
    }

    /// What these requests cost at Tesla's pay-per-use prices (USD; token requests free).
    pub fn cost_usd(&self) -> f64 {
        #[allow(clippy::cast_precision_loss)]
        let (d, c, w) = (self.data() as f64, self.commands as f64, self.wakes as f64);
        d * PRICE_DATA_USD + c * PRICE_COMMAND_USD + w * PRICE_WAKE_USD
    }
}

/// Tokens issued directly by [`TeslaSim::issue_tokens`].
#[derive(Clone, PartialEq, Eq)]
pub struct SimTokens {
    /// The bearer token.
    pub access_token: String,
    /// The single-use refresh token.
    pub refresh_token: String,
    /// When the access token expires on the world's clock.
    pub expires_at: DateTime<Utc>,
}

impl fmt::Debug for SimTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimTokens").field("expires_at", &self.expires_at).finish_non_exhaustive()
    }
}

/// The Tesla world mode name of a world battery mode (closest Tesla mode for the modes
/// Tesla lacks: `ImportFocus` and `Idle` → `backup`, `ExportFocus` → `autonomous`).
pub fn tesla_mode_of(mode: BatteryMode) -> &'static str {
    match mode {
        BatteryMode::SelfReliance => "self_consumption",
        BatteryMode::TimeOfUse | BatteryMode::ExportFocus => "autonomous",
        BatteryMode::Backup | BatteryMode::ImportFocus | BatteryMode::Idle => "backup",
    }
}

/// The world battery mode a Tesla `default_real_mode` sets.
pub fn world_mode_of(default_real_mode: &str) -> Option<BatteryMode> {
    match default_real_mode {
        "self_consumption" => Some(BatteryMode::SelfReliance),
        "autonomous" => Some(BatteryMode::TimeOfUse),
        "backup" => Some(BatteryMode::Backup),
        _ => None,
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Class {
    Token,
    VehicleList,
    Products,
    VehicleData,
    EnergyData,
    Command,
    Wake,
}

#[derive(Debug)]
struct Grant {
    account: String,
    used: bool,
}

#[derive(Debug)]
struct AccessToken {
    account: String,
    expires_at: DateTime<Utc>,
    revoked: bool,
}

#[derive(Debug)]
struct RefreshToken {
    account: String,
    expires_at: DateTime<Utc>,
    used: bool,
}

#[derive(Debug)]
struct Account {
    number: u64,
    region: Option<Region>,
}

#[derive(Clone, Debug)]
struct SimVehicle {
    device: DeviceId,
    vin: String,
    id: u64,
    vehicle_id: u64,
    car_type: String,
    accounts: BTreeSet<String>,
}

#[derive(Clone, Debug)]
struct SimSite {
    site: SiteId,
    energy_site_id: u64,
    tesla_id: String,
    gateway_id: String,
    installation_date: DateTime<Utc>,
    batteries: Vec<DeviceId>,
    accounts: BTreeSet<String>,
    last_live: Option<Value>,
}

#[derive(Debug)]
struct SimState {
    seed: u64,
    serial: u64,
    access_lifetime: Duration,
    accounts: BTreeMap<String, Account>,
    codes: BTreeMap<String, Grant>,
    access: BTreeMap<String, AccessToken>,
    refresh: BTreeMap<String, RefreshToken>,
    vehicles: BTreeMap<String, SimVehicle>,
    vin_of: HashMap<DeviceId, String>,
    sites: BTreeMap<u64, SimSite>,
    site_of: HashMap<SiteId, u64>,
    counts: RequestCounts,
    billed: RequestCounts,
    next_account: u64,
    next_vehicle: u64,
}

/// The simulated Tesla cloud over a [`World`]. Cheap to clone (shared state).
#[derive(Clone)]
pub struct TeslaSim {
    world: World,
    inner: Arc<Mutex<SimState>>,
}

impl fmt::Debug for TeslaSim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.lock();
        f.debug_struct("TeslaSim")
            .field("accounts", &state.accounts.len())
            .field("vehicles", &state.vehicles.len())
            .field("energy_sites", &state.sites.len())
            .finish_non_exhaustive()
    }
}

/// The sign-in e-mail of account number `number`.
fn login_of(number: u64) -> String {
    format!("owner{number}@tesla.sim.invalid")
}

/// A response in Tesla's shape.
#[derive(Debug)]
struct SimResponse {
    status: StatusCode,
    headers: Vec<(&'static str, String)>,
    body: String,
}

impl SimResponse {
    fn ok(value: &Value) -> Self {
        Self { status: StatusCode::OK, headers: Vec::new(), body: value.to_string() }
    }

    fn response(value: Value) -> Self {
        Self::ok(&json!({ "response": value }))
    }

    fn error(status: StatusCode, error: &str) -> Self {
        let body = json!({ "response": null, "error": error, "error_description": "" });
        Self { status, headers: Vec::new(), body: body.to_string() }
    }

    fn oauth_error(status: StatusCode, error: &str, description: &str) -> Self {
        let body = json!({ "error": error, "error_description": description });
        Self { status, headers: Vec::new(), body: body.to_string() }
    }

    fn asleep() -> Self {
        Self::error(
            StatusCode::REQUEST_TIMEOUT,
            "vehicle unavailable: vehicle is offline or asleep",
        )
    }

    fn not_found() -> Self {
        Self::error(StatusCode::NOT_FOUND, "not_found")
    }

    fn refused(reason: &str) -> Self {
        Self::response(json!({ "result": false, "reason": reason }))
    }

    fn status(status: u16) -> StatusCode {
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl IntoResponse for SimResponse {
    fn into_response(self) -> Response {
        let mut response = (self.status, self.body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
        for (name, value) in self.headers {
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.insert(name, value);
            }
        }
        response
    }
}

/// A parsed request: the route, its path parameters and what the handlers need.
#[derive(Debug)]
struct Call {
    route: Route,
    region: Option<String>,
    /// The full request path, mount prefix included (the sign-in form posts back to it).
    path: String,
    /// The mount prefix and region before `/api/1`, as requested (`/tesla/eu`).
    base_path: String,
    host: Option<String>,
    headers: HeaderMap,
    query: Option<String>,
    body: Vec<u8>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Route {
    Authorize,
    Token,
    Vehicles,
    Products,
    VehicleData(String),
    WakeUp(String),
    Command(String, String),
    LiveStatus(String),
    SiteInfo(String),
    Operation(String),
    Backup(String),
}

impl Route {
    fn class(&self) -> Class {
        match self {
            Route::Token | Route::Authorize => Class::Token,
            Route::Vehicles => Class::VehicleList,
            Route::Products => Class::Products,
            Route::VehicleData(_) => Class::VehicleData,
            Route::WakeUp(_) => Class::Wake,
            Route::Command(..) | Route::Operation(_) | Route::Backup(_) => Class::Command,
            Route::LiveStatus(_) | Route::SiteInfo(_) => Class::EnergyData,
        }
    }

    /// Matches `method path` (below the router's mount); `Err` is the status to answer.
    fn parse(method: &Method, path: &str) -> Result<(Route, Option<String>), StatusCode> {
        let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
        if segs == ["oauth2", "v3", "authorize"] {
            return if method == Method::GET {
                Ok((Route::Authorize, None))
            } else {
                Err(StatusCode::METHOD_NOT_ALLOWED)
            };
        }
        if segs == ["oauth2", "v3", "token"] {
            return if method == Method::POST {
                Ok((Route::Token, None))
            } else {
                Err(StatusCode::METHOD_NOT_ALLOWED)
            };
        }
        let (region, rest) = match segs.as_slice() {
            [first, "api", ..] if *first != "api" => (Some((*first).to_owned()), &segs[1..]),
            _ => (None, &segs[..]),
        };
        let get = method == Method::GET;
        let post = method == Method::POST;
        let route = match rest {
            ["api", "1", "vehicles"] if get => Route::Vehicles,
            ["api", "1", "products"] if get => Route::Products,
            ["api", "1", "vehicles", vin, "vehicle_data"] if get => {
                Route::VehicleData((*vin).to_owned())
            }
            ["api", "1", "vehicles", vin, "wake_up"] if post => Route::WakeUp((*vin).to_owned()),
            ["api", "1", "vehicles", vin, "command", command] if post => {
                Route::Command((*vin).to_owned(), (*command).to_owned())
            }
            ["api", "1", "energy_sites", id, "live_status"] if get => {
                Route::LiveStatus((*id).to_owned())
            }
            ["api", "1", "energy_sites", id, "site_info"] if get => {
                Route::SiteInfo((*id).to_owned())
            }
            ["api", "1", "energy_sites", id, "operation"] if post => {
                Route::Operation((*id).to_owned())
            }
            ["api", "1", "energy_sites", id, "backup"] if post => Route::Backup((*id).to_owned()),
            ["api", "1", "vehicles" | "products"]
            | ["api", "1", "vehicles", _, "vehicle_data" | "wake_up"]
            | ["api", "1", "vehicles", _, "command", _]
            | [
                "api",
                "1",
                "energy_sites",
                _,
                "live_status" | "site_info" | "operation" | "backup",
            ] => {
                return Err(StatusCode::METHOD_NOT_ALLOWED);
            }
            _ => return Err(StatusCode::NOT_FOUND),
        };
        Ok((route, region))
    }
}

impl TeslaSim {
    /// Tesla's cloud over `world`. Token strings and vendor ids are derived from the
    /// world's seed, so the same world and the same calls give the same answers.
    pub fn new(world: World) -> Self {
        let state = SimState {
            seed: world.seed(),
            serial: 0,
            access_lifetime: DEFAULT_ACCESS_TOKEN_LIFETIME,
            accounts: BTreeMap::new(),
            codes: BTreeMap::new(),
            access: BTreeMap::new(),
            refresh: BTreeMap::new(),
            vehicles: BTreeMap::new(),
            vin_of: HashMap::new(),
            sites: BTreeMap::new(),
            site_of: HashMap::new(),
            counts: RequestCounts::default(),
            billed: RequestCounts::default(),
            next_account: 800_001,
            next_vehicle: 100_001,
        };
        Self { world, inner: Arc::new(Mutex::new(state)) }
    }

    fn lock(&self) -> MutexGuard<'_, SimState> {
        // Every mutation is small and self-contained; a poisoned lock is still consistent.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The world this cloud renders.
    pub fn world(&self) -> &World {
        &self.world
    }

    /// Changes how long newly issued access tokens live.
    pub fn set_access_token_lifetime(&self, lifetime: Duration) {
        self.lock().access_lifetime = lifetime;
    }

    /// Creates an account that sees `devices` (world vehicles and batteries of vendor
    /// `tesla`; a battery brings its whole site in as one energy site). Returns the account
    /// id and a fresh single-use authorization code. The account is not bound to a region.
    pub fn link(&self, devices: &[DeviceId]) -> Result<(String, String), SimError> {
        self.link_with(None, devices)
    }

    /// Like [`TeslaSim::link`], with the account bound to `region`: its API calls must use
    /// the `/{region}` base path.
    pub fn link_in_region(
        &self,
        region: Region,
        devices: &[DeviceId],
    ) -> Result<(String, String), SimError> {
        self.link_with(Some(region), devices)
    }

    /// Creates an account that sees every Tesla vehicle and battery of a world site.
    pub fn link_site(&self, site: &SiteId) -> Result<(String, String), SimError> {
        if !self.world.sites().contains(site) {
            return Err(SimError::Unknown(site.to_string()));
        }
        let devices: Vec<DeviceId> = self
            .world
            .devices_of_site(site)
            .into_iter()
            .filter(|d| {
                d.vendor == WORLD_VENDOR
                    && matches!(d.kind, DeviceKind::Vehicle | DeviceKind::Battery)
            })
            .map(|d| d.id)
            .collect();
        self.link(&devices)
    }

    fn link_with(
        &self,
        region: Option<Region>,
        devices: &[DeviceId],
    ) -> Result<(String, String), SimError> {
        let plan = self.plan(devices)?;
        let mut state = self.lock();
        let number = state.next_account;
        state.next_account += 1;
        let account = number.to_string();
        state.accounts.insert(account.clone(), Account { number, region });
        state.attach(&account, plan);
        let code = state.new_code(&account);
        tracing::debug!(target: "oemgate_tesla::sim", account, "account linked");
        Ok((account, code))
    }

    /// Adds more world devices to an existing account.
    pub fn add_to_account(&self, account: &str, devices: &[DeviceId]) -> Result<(), SimError> {
        let plan = self.plan(devices)?;
        let mut state = self.lock();
        if !state.accounts.contains_key(account) {
            return Err(SimError::UnknownAccount(account.to_owned()));
        }
        state.attach(account, plan);
        Ok(())
    }

    /// Binds an account to a region (`None`: served on every base path).
    pub fn set_region(&self, account: &str, region: Option<Region>) -> Result<(), SimError> {
        let mut state = self.lock();
        let acc = state
            .accounts
            .get_mut(account)
            .ok_or_else(|| SimError::UnknownAccount(account.into()))?;
        acc.region = region;
        Ok(())
    }

    /// Checks the devices and collects what attaching them needs (outside the sim's lock).
    fn plan(&self, devices: &[DeviceId]) -> Result<Vec<Planned>, SimError> {
        let mut plan = Vec::new();
        for device in devices {
            let info = self
                .world
                .device_info(device)
                .ok_or_else(|| SimError::Unknown(device.to_string()))?;
            if info.vendor != WORLD_VENDOR {
                return Err(SimError::NotTesla { device: device.clone(), vendor: info.vendor });
            }
            match info.kind {
                DeviceKind::Vehicle => {
                    let v = self
                        .world
                        .vehicle(device)
                        .ok_or_else(|| SimError::Unknown(device.to_string()))?;
                    plan.push(Planned::Vehicle {
                        device: device.clone(),
                        car_type: car_type(&v.model),
                        year: v.year,
                    });
                }
                DeviceKind::Battery => {
                    let batteries: Vec<DeviceId> = self
                        .world
                        .devices_of_site(&info.site)
                        .into_iter()
                        .filter(|d| d.vendor == WORLD_VENDOR && d.kind == DeviceKind::Battery)
                        .map(|d| d.id)
                        .collect();
                    plan.push(Planned::Site { site: info.site, batteries });
                }
                kind => return Err(SimError::UnsupportedKind { device: device.clone(), kind }),
            }
        }
        Ok(plan)
    }

    /// The e-mail the owner of `account` signs in with at the authorize page.
    pub fn login(&self, account: &str) -> Option<String> {
        self.lock().accounts.get(account).map(|a| login_of(a.number))
    }

    /// `GET /oauth2/v3/authorize`: the owner signs in (`login_hint`) and is sent back with a
    /// code, or denies and is sent back with `error=access_denied`.
    fn authorize_code(&self, call: &Call) -> SimResponse {
        let params = oemgate_sim::http::parse_form(call.query.as_deref().unwrap_or(""));
        let field = |k: &str| params.get(k).map(String::as_str).unwrap_or("");
        if field("response_type") != "code" || field("client_id").is_empty() {
            return SimResponse::oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "response_type=code and client_id are required",
            );
        }
        let redirect = |pairs: &[(&str, &str)]| {
            let mut all = pairs.to_vec();
            all.push(("state", field("state")));
            match oemgate_sim::http::redirect_with(field("redirect_uri"), &all) {
                Some(location) => SimResponse {
                    status: StatusCode::FOUND,
                    headers: vec![("location", location)],
                    body: String::new(),
                },
                None => SimResponse::oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "redirect_uri is not a valid URL",
                ),
            }
        };
        if field("decision") == "deny" {
            return redirect(&[
                ("error", "access_denied"),
                ("error_description", "The user denied access"),
            ]);
        }
        let form = |status: StatusCode, message: Option<&str>| SimResponse {
            status,
            headers: vec![("content-type", "text/html; charset=utf-8".to_owned())],
            body: oemgate_sim::http::authorize_form("Tesla", &call.path, &params, message),
        };
        let login = field("login_hint");
        if login.is_empty() {
            return form(StatusCode::OK, None);
        }
        let code = {
            let mut state = self.lock();
            let account = state
                .accounts
                .iter()
                .find(|(_, a)| login_of(a.number).eq_ignore_ascii_case(login))
                .map(|(id, _)| id.clone());
            account.map(|account| state.new_code(&account))
        };
        match code {
            Some(code) => redirect(&[("code", &code)]),
            None => form(StatusCode::UNAUTHORIZED, Some("Unknown e-mail address.")),
        }
    }

    /// Issues another authorization code for an existing account.
    pub fn authorization_code(&self, account: &str) -> Option<String> {
        let mut state = self.lock();
        state.accounts.contains_key(account).then(|| state.new_code(account))
    }

    /// Issues an access/refresh token pair for an account without the OAuth round trip.
    pub fn issue_tokens(&self, account: &str) -> Option<SimTokens> {
        let now = self.world.now();
        let mut state = self.lock();
        state.accounts.contains_key(account).then(|| state.issue_tokens(account, now))
    }

    /// Makes every access token issued so far expire now (they then get 401 `token expired
    /// (401)`); refresh tokens keep working.
    pub fn expire_access_tokens(&self) {
        let now = self.world.now();
        for token in self.lock().access.values_mut() {
            token.expires_at = token.expires_at.min(now);
        }
    }

    /// Invalidates every code and token issued so far (as a due `RevokeTokens` fault does).
    pub fn revoke_all_tokens(&self) {
        self.lock().revoke_all();
    }

    /// The VIN Tesla shows for a linked world vehicle.
    pub fn vin(&self, vehicle: &DeviceId) -> Option<String> {
        self.lock().vin_of.get(vehicle).cloned()
    }

    /// The world vehicle behind a VIN.
    pub fn vehicle_of_vin(&self, vin: &str) -> Option<DeviceId> {
        self.lock().vehicles.get(vin).map(|v| v.device.clone())
    }

    /// The `energy_site_id` Tesla shows for a linked world site (or a battery of it).
    pub fn energy_site_id(&self, site_or_battery: &str) -> Option<String> {
        let site = match self.world.device_info(&DeviceId::new(site_or_battery)) {
            Some(info) => info.site,
            None => SiteId::new(site_or_battery),
        };
        self.lock().site_of.get(&site).map(u64::to_string)
    }

    /// Every request answered so far, per endpoint class.
    pub fn request_counts(&self) -> RequestCounts {
        self.lock().counts
    }

    /// The requests Tesla would bill: those answered with a status below 500.
    pub fn billed_counts(&self) -> RequestCounts {
        self.lock().billed
    }

    /// What the billed requests so far cost, USD.
    pub fn cost_usd(&self) -> f64 {
        self.billed_counts().cost_usd()
    }

    /// Sets both counters to zero.
    pub fn reset_counts(&self) {
        let mut state = self.lock();
        state.counts = RequestCounts::default();
        state.billed = RequestCounts::default();
    }

    /// The simulator's routes; serve both the API and the auth base URL from it (alone or
    /// under a [`oemgate_sim::SimHost`] prefix).
    pub fn router(&self) -> Router {
        Router::new().fallback(handle).with_state(self.clone())
    }

    /// Serves [`TeslaSim::router`] on `listener` until the task is dropped.
    pub async fn serve(self, listener: tokio::net::TcpListener) -> std::io::Result<()> {
        axum::serve(listener, self.router()).await
    }

    /// The common path of every route: revocation, fault, then the route.
    async fn answer(&self, call: Call) -> SimResponse {
        let class = call.route.class();
        let faults = self.world.faults();
        if faults.take_revocation(WORLD_VENDOR) {
            self.lock().revoke_all();
        }
        let mut truncate = false;
        match faults.active(WORLD_VENDOR) {
            Some(Fault::RateLimit { retry_after }) => {
                let secs = retry_after.as_secs_f64().ceil().to_string();
                let mut r = SimResponse::error(StatusCode::TOO_MANY_REQUESTS, "Too Many Requests");
                r.headers = vec![
                    ("retry-after", secs.clone()),
                    ("ratelimit-limit", RATE_LIMIT_LIMIT.to_string()),
                    ("ratelimit-remaining", "0".to_owned()),
                    ("ratelimit-reset", secs),
                ];
                return self.finish(class, r);
            }
            Some(Fault::ServerError { status }) => {
                let status = SimResponse::status(status);
                return self.finish(class, SimResponse::error(status, "internal server error"));
            }
            Some(Fault::Outage) => {
                let r = SimResponse::error(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable");
                return self.finish(class, r);
            }
            Some(Fault::Malformed) => {
                let r = SimResponse {
                    status: StatusCode::OK,
                    headers: Vec::new(),
                    body: "{\"response\":<html>upstream says hello</html>".to_owned(),
                };
                return self.finish(class, r);
            }
            Some(Fault::Timeout) => {
                tokio::time::sleep(TIMEOUT_HANG).await;
                let r = SimResponse::error(StatusCode::GATEWAY_TIMEOUT, "gateway timeout");
                return self.finish(class, r);
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
        self.finish(class, response)
    }

    fn finish(&self, class: Class, response: SimResponse) -> SimResponse {
        self.lock().record(class, response.status);
        response
    }

    fn route(&self, call: &Call) -> SimResponse {
        let now = self.world.now();
        if call.route == Route::Token {
            let form = parse_form(&call.body);
            return self.lock().token_grant(&form, now);
        }
        if call.route == Route::Authorize {
            return self.authorize_code(call);
        }
        let account = match self.authorize(call, now) {
            Ok(account) => account,
            Err(r) => return r,
        };
        match &call.route {
            Route::Token | Route::Authorize => SimResponse::not_found(),
            Route::Vehicles => self.vehicles(&account),
            Route::Products => self.products(&account),
            Route::VehicleData(vin) => self.vehicle_data(&account, vin, call.query.as_deref()),
            Route::WakeUp(vin) => self.wake_up(&account, vin),
            Route::Command(vin, command) => self.command(&account, vin, command, &call.body),
            Route::LiveStatus(id) => self.live_status(&account, id),
            Route::SiteInfo(id) => self.site_info(&account, id),
            Route::Operation(id) => self.operation(&account, id, &call.body),
            Route::Backup(id) => self.backup(&account, id, &call.body),
        }
    }

    /// Bearer token, then region.
    fn authorize(&self, call: &Call, now: DateTime<Utc>) -> Result<String, SimResponse> {
        let state = self.lock();
        let account = state.authenticate(&call.headers, now)?;
        let bound = state.accounts.get(&account).and_then(|a| a.region);
        let requested = match call.region.as_deref() {
            None => None,
            Some(r) => Some(Region::parse(r).ok_or_else(SimResponse::not_found)?),
        };
        if let Some(home) = bound
            && requested != Some(home)
        {
            let base = match &call.region {
                Some(r) => call.base_path.strip_suffix(&format!("/{r}")).unwrap_or(&call.base_path),
                None => call.base_path.as_str(),
            };
            let host = call.host.as_deref().unwrap_or("localhost");
            let url = format!("http://{host}{base}/{}", home.as_str());
            return Err(SimResponse::error(
                StatusCode::MISDIRECTED_REQUEST,
                &format!("user out of region, use base URL: {url}"),
            ));
        }
        Ok(account)
    }

    fn vehicles_of(&self, account: &str) -> Vec<SimVehicle> {
        self.lock().vehicles.values().filter(|v| v.accounts.contains(account)).cloned().collect()
    }

    fn vehicle_for(&self, account: &str, vin: &str) -> Option<SimVehicle> {
        self.lock().vehicles.get(vin).filter(|v| v.accounts.contains(account)).cloned()
    }

    fn site_for(&self, account: &str, id: &str) -> Option<SimSite> {
        let id: u64 = id.parse().ok()?;
        self.lock().sites.get(&id).filter(|s| s.accounts.contains(account)).cloned()
    }

    fn account_number(&self, account: &str) -> u64 {
        self.lock().accounts.get(account).map_or(0, |a| a.number)
    }

    fn vehicles(&self, account: &str) -> SimResponse {
        let number = self.account_number(account);
        let entries: Vec<Value> = self
            .vehicles_of(account)
            .iter()
            .filter_map(|v| Some(list_entry(v, &self.world.vehicle(&v.device)?, number)))
            .collect();
        let count = entries.len();
        SimResponse::ok(&json!({ "response": entries, "count": count }))
    }

    fn products(&self, account: &str) -> SimResponse {
        let number = self.account_number(account);
        let mut entries: Vec<Value> = self
            .vehicles_of(account)
            .iter()
            .filter_map(|v| {
                let mut entry = list_entry(v, &self.world.vehicle(&v.device)?, number);
                if let Some(obj) = entry.as_object_mut() {
                    obj.insert("command_signing".into(), json!("allowed"));
                }
                Some(entry)
            })
            .collect();
        let sites: Vec<SimSite> =
            self.lock().sites.values().filter(|s| s.accounts.contains(account)).cloned().collect();
        for site in &sites {
            let Some(agg) = self.aggregate(site) else { continue };
            let solar = self.has_solar(&site.site);
            entries.push(json!({
                "energy_site_id": site.energy_site_id,
                "resource_type": "battery",
                "site_name": agg.site_name,
                "id": site.tesla_id,
                "gateway_id": site.gateway_id,
                "asset_site_id": format!("{:032x}", u128::from(site.energy_site_id)),
                "warp_site_number": format!("GA{}", site.energy_site_id % 1_000_000),
                "energy_left": round_to(agg.energy_left_wh, 1),
                "total_pack_energy": round_to(agg.capacity_wh, 0),
                "percentage_charged": round_to(agg.percent, 2),
                "battery_type": "ac_powerwall",
                "backup_capable": true,
                "battery_power": round_to(agg.battery_power_w, 0),
                "go_off_grid_test_banner_enabled": null,
                "storm_mode_enabled": false,
                "powerwall_onboarding_settings_set": true,
                "powerwall_tesla_electric_interested_in": null,
                "vpp_tour_enabled": null,
                "sync_grid_alert_enabled": true,
                "breaker_alert_enabled": false,
                "components": {
                    "battery": true,
                    "battery_type": "ac_powerwall",
                    "solar": solar,
                    "solar_type": if solar { Some("pv_panel") } else { None },
                    "grid": true,
                    "load_meter": true,
                    "market_type": "residential",
                    "wall_connectors": [],
                },
                "features": {"rate_plan_manager_no_pricing_constraint": true},
            }));
        }
        let count = entries.len();
        SimResponse::ok(&json!({ "response": entries, "count": count }))
    }

    fn vehicle_data(&self, account: &str, vin: &str, query: Option<&str>) -> SimResponse {
        let Some(v) = self.vehicle_for(account, vin) else { return SimResponse::not_found() };
        match self.world.touch_vehicle(&v.device) {
            Ok(PowerState::Online) => {}
            Ok(_) => return SimResponse::asleep(),
            Err(_) => return SimResponse::not_found(),
        }
        let Some(state) = self.world.vehicle(&v.device) else { return SimResponse::not_found() };
        let number = self.account_number(account);
        SimResponse::response(vehicle_data_json(&v, &state, number, &endpoints(query)))
    }

    fn wake_up(&self, account: &str, vin: &str) -> SimResponse {
        let Some(v) = self.vehicle_for(account, vin) else { return SimResponse::not_found() };
        if self.world.wake_vehicle(&v.device).is_err() {
            return SimResponse::not_found();
        }
        let Some(state) = self.world.vehicle(&v.device) else { return SimResponse::not_found() };
        SimResponse::response(list_entry(&v, &state, self.account_number(account)))
    }

    fn command(&self, account: &str, vin: &str, command: &str, body: &[u8]) -> SimResponse {
        let Some(v) = self.vehicle_for(account, vin) else { return SimResponse::not_found() };
        let Ok(body) = json_body(body) else {
            return SimResponse::error(StatusCode::BAD_REQUEST, "invalid_field");
        };
        let cmd = match command {
            "charge_start" => WorldCommand::StartCharging,
            "charge_stop" => WorldCommand::StopCharging,
            "set_charging_amps" => match body.get("charging_amps").and_then(json_u32) {
                Some(amps) => WorldCommand::SetChargeAmps(amps),
                None => return SimResponse::error(StatusCode::BAD_REQUEST, "invalid_field"),
            },
            "set_charge_limit" => match body.get("percent").and_then(json_u32) {
                Some(percent) => WorldCommand::SetChargeLimit(f64::from(percent)),
                None => return SimResponse::error(StatusCode::BAD_REQUEST, "invalid_field"),
            },
            _ => return SimResponse::error(StatusCode::BAD_REQUEST, "invalid_command"),
        };
        match self.world.command(WORLD_VENDOR, &v.device, cmd) {
            Ok(_) => SimResponse::response(json!({ "result": true, "reason": "" })),
            Err(rejected) => match rejected {
                CommandRejected::Asleep | CommandRejected::Offline => SimResponse::asleep(),
                CommandRejected::UnknownDevice { .. } => SimResponse::not_found(),
                CommandRejected::Unsupported { .. } => {
                    SimResponse::error(StatusCode::BAD_REQUEST, "invalid_command")
                }
                CommandRejected::AlreadySet => SimResponse::refused(match command {
                    "charge_start" => "is_charging",
                    "charge_stop" => "not_charging",
                    _ => "already_set",
                }),
                CommandRejected::NotPluggedIn => SimResponse::refused("disconnected"),
                CommandRejected::NoPower => SimResponse::refused("no_power"),
                CommandRejected::AtLimit => SimResponse::refused("complete"),
                CommandRejected::Driving => SimResponse::refused("driving"),
                CommandRejected::InvalidValue(_) => SimResponse::refused("invalid_value"),
            },
        }
    }

    fn has_solar(&self, site: &SiteId) -> bool {
        self.world.devices_of_site(site).iter().any(|d| d.kind == DeviceKind::Inverter)
    }

    fn aggregate(&self, site: &SimSite) -> Option<Aggregate> {
        let states: Vec<_> = site.batteries.iter().filter_map(|b| self.world.battery(b)).collect();
        let first = states.first()?;
        let capacity_wh: f64 = states.iter().map(|b| b.capacity_kwh * 1000.0).sum();
        let energy_left_wh: f64 = states.iter().map(|b| b.capacity_kwh * 10.0 * b.soc_pct).sum();
        let site_state = self.world.site(&site.site)?;
        Some(Aggregate {
            site_name: site_state.name.clone(),
            online: states.iter().any(|b| b.online),
            capacity_wh,
            energy_left_wh,
            percent: if capacity_wh > 0.0 { energy_left_wh / capacity_wh * 100.0 } else { 0.0 },
            // World: positive while charging. Tesla: positive while discharging.
            battery_power_w: -states.iter().map(|b| b.power_w).sum::<f64>() + 0.0,
            max_power_w: states.iter().map(|b| b.max_discharge_w).sum(),
            mode: first.mode,
            reserve_pct: first.reserve_pct,
            count: states.len(),
            names: states.iter().map(|b| b.name.clone()).collect(),
            site: site_state,
        })
    }

    fn live_status(&self, account: &str, id: &str) -> SimResponse {
        let Some(site) = self.site_for(account, id) else { return SimResponse::not_found() };
        let Some(agg) = self.aggregate(&site) else { return SimResponse::not_found() };
        if !agg.online
            && let Some(last) = site.last_live
        {
            return SimResponse::response(last);
        }
        let s = &agg.site;
        let solar = s.pv_w.max(0.0).round();
        let battery = agg.battery_power_w.round() + 0.0;
        let grid = s.grid_w.round() + 0.0;
        let offset = FixedOffset::east_opt(s.utc_offset_minutes * 60).unwrap_or(Utc.fix());
        let live = json!({
            "solar_power": solar,
            "energy_left": round_to(agg.energy_left_wh, 1),
            "total_pack_energy": round_to(agg.capacity_wh, 0),
            "percentage_charged": round_to(agg.percent, 2),
            "backup_capable": true,
            "battery_power": battery,
            "load_power": (solar + battery + grid).max(0.0),
            "grid_status": "Active",
            "grid_services_active": false,
            "grid_power": grid,
            "grid_services_power": 0,
            "generator_power": 0,
            "island_status": "on_grid",
            "storm_mode_active": false,
            "timestamp": s.at.with_timezone(&offset).to_rfc3339(),
            "wall_connectors": [],
        });
        if let Ok(n) = id.parse::<u64>()
            && let Some(stored) = self.lock().sites.get_mut(&n)
        {
            stored.last_live = Some(live.clone());
        }
        SimResponse::response(live)
    }

    fn site_info(&self, account: &str, id: &str) -> SimResponse {
        let Some(site) = self.site_for(account, id) else { return SimResponse::not_found() };
        let Some(agg) = self.aggregate(&site) else { return SimResponse::not_found() };
        let solar = self.has_solar(&site.site);
        let batteries: Vec<Value> = agg
            .names
            .iter()
            .enumerate()
            .map(|(i, name)| {
                json!({
                    "device_id": format!("{:x}-{i}", site.energy_site_id),
                    "din": format!("1092170-03-E--TG12{:08}", (site.energy_site_id + i as u64) % 100_000_000),
                    "serial_number": format!("TG12{:08}", (site.energy_site_id + i as u64) % 100_000_000),
                    "part_number": "1092170-03-E",
                    "part_type": 2,
                    "part_name": name,
                    "nameplate_max_charge_power": round_to(agg.max_power_w / agg.count.max(1) as f64, 0),
                    "nameplate_max_discharge_power": round_to(agg.max_power_w / agg.count.max(1) as f64, 0),
                    "nameplate_energy": round_to(agg.capacity_wh / agg.count.max(1) as f64, 0),
                })
            })
            .collect();
        SimResponse::response(json!({
            "id": site.tesla_id,
            "site_name": agg.site_name,
            "backup_reserve_percent": round_to(agg.reserve_pct, 0),
            "default_real_mode": tesla_mode_of(agg.mode),
            "installation_date": site.installation_date.to_rfc3339(),
            "user_settings": {
                "go_off_grid_test_banner_enabled": false,
                "storm_mode_enabled": false,
                "powerwall_onboarding_settings_set": true,
                "sync_grid_alert_enabled": true,
                "breaker_alert_enabled": false,
            },
            "components": {
                "solar": solar,
                "solar_type": if solar { Some("pv_panel") } else { None },
                "battery": true,
                "grid": true,
                "backup": true,
                "gateway": "teg",
                "load_meter": true,
                "tou_capable": true,
                "storm_mode_capable": true,
                "battery_type": "ac_powerwall",
                "configurable": true,
                "grid_services_enabled": false,
                "batteries": batteries,
                "disallow_charge_from_grid_with_solar_installed": true,
                "customer_preferred_export_rule": "pv_only",
                "net_meter_mode": "battery_ok",
            },
            "version": "24.4.0 sim",
            "battery_count": agg.count,
            "tou_settings": {"optimization_strategy": "economics", "schedule": []},
            "nameplate_power": round_to(agg.max_power_w, 0),
            "nameplate_energy": round_to(agg.capacity_wh, 0),
            "installation_time_zone": agg.site.timezone,
            "max_site_meter_power_ac": 1_000_000_000,
            "min_site_meter_power_ac": -1_000_000_000,
            "vpp_backup_reserve_percent": 0,
        }))
    }

    fn operation(&self, account: &str, id: &str, body: &[u8]) -> SimResponse {
        let Some(site) = self.site_for(account, id) else { return SimResponse::not_found() };
        let mode = json_body(body).ok().and_then(|b| {
            b.get("default_real_mode").and_then(Value::as_str).and_then(world_mode_of)
        });
        let Some(mode) = mode else {
            return SimResponse::error(StatusCode::BAD_REQUEST, "invalid_field");
        };
        self.energy_command(&site, WorldCommand::SetBatteryMode(mode))
    }

    fn backup(&self, account: &str, id: &str, body: &[u8]) -> SimResponse {
        let Some(site) = self.site_for(account, id) else { return SimResponse::not_found() };
        let percent = json_body(body).ok().and_then(|b| {
            b.get("backup_reserve_percent")
                .and_then(Value::as_f64)
                .filter(|p| (0.0..=100.0).contains(p))
        });
        let Some(percent) = percent else {
            return SimResponse::error(StatusCode::BAD_REQUEST, "invalid_field");
        };
        self.energy_command(&site, WorldCommand::SetBatteryReserve(percent))
    }

    fn energy_command(&self, site: &SimSite, cmd: WorldCommand) -> SimResponse {
        for battery in &site.batteries {
            match self.world.command(WORLD_VENDOR, battery, cmd.clone()) {
                Ok(_) | Err(CommandRejected::AlreadySet) => {}
                Err(CommandRejected::Offline | CommandRejected::Asleep) => {
                    return SimResponse::error(
                        StatusCode::REQUEST_TIMEOUT,
                        "device unavailable: energy site is offline",
                    );
                }
                Err(CommandRejected::UnknownDevice { .. }) => return SimResponse::not_found(),
                Err(_) => return SimResponse::error(StatusCode::BAD_REQUEST, "invalid_field"),
            }
        }
        SimResponse::response(json!({ "code": 201, "message": "Updated" }))
    }
}

/// What an energy site looks like right now, over its Powerwalls.
#[derive(Debug)]
struct Aggregate {
    site_name: String,
    online: bool,
    capacity_wh: f64,
    energy_left_wh: f64,
    percent: f64,
    battery_power_w: f64,
    max_power_w: f64,
    mode: BatteryMode,
    reserve_pct: f64,
    count: usize,
    names: Vec<String>,
    site: oemgate_sim::SiteState,
}

/// A device to attach to an account, checked against the world.
#[derive(Debug)]
enum Planned {
    Vehicle { device: DeviceId, car_type: String, year: u16 },
    Site { site: SiteId, batteries: Vec<DeviceId> },
}

impl SimState {
    fn next_serial(&mut self) -> u64 {
        self.serial += 1;
        self.serial
    }

    fn token_string(&mut self, prefix: &str) -> String {
        let n = self.next_serial();
        let a = hash(&[self.seed, n, 0x7E51A]);
        let b = hash(&[self.seed, n, 0x70CE4]);
        format!("{prefix}{a:016x}{b:016x}")
    }

    fn new_code(&mut self, account: &str) -> String {
        let code = self.token_string("sim-code-");
        self.codes.insert(code.clone(), Grant { account: account.to_owned(), used: false });
        code
    }

    fn issue_tokens(&mut self, account: &str, now: DateTime<Utc>) -> SimTokens {
        let access = self.token_string("sim-at-");
        let refresh = self.token_string("sim-rt-");
        let expires_at = now + chrono::Duration::from_std(self.access_lifetime).unwrap_or_default();
        let refresh_expires =
            now + chrono::Duration::from_std(REFRESH_TOKEN_LIFETIME).unwrap_or_default();
        self.access.insert(
            access.clone(),
            AccessToken { account: account.to_owned(), expires_at, revoked: false },
        );
        self.refresh.insert(
            refresh.clone(),
            RefreshToken { account: account.to_owned(), expires_at: refresh_expires, used: false },
        );
        SimTokens { access_token: access, refresh_token: refresh, expires_at }
    }

    fn revoke_all(&mut self) {
        for token in self.access.values_mut() {
            token.revoked = true;
        }
        for token in self.refresh.values_mut() {
            token.used = true;
        }
        for grant in self.codes.values_mut() {
            grant.used = true;
        }
        tracing::debug!(target: "oemgate_tesla::sim", "all tokens revoked");
    }

    fn attach(&mut self, account: &str, plan: Vec<Planned>) {
        for item in plan {
            match item {
                Planned::Vehicle { device, car_type, year } => {
                    if let Some(vin) = self.vin_of.get(&device).cloned() {
                        if let Some(v) = self.vehicles.get_mut(&vin) {
                            v.accounts.insert(account.to_owned());
                        }
                        continue;
                    }
                    let mut serial = hash(&[self.seed, hash_str(device.as_str())]) % 1_000_000;
                    let mut vin = generate_vin(&car_type, year, serial);
                    while self.vehicles.contains_key(&vin) {
                        serial = (serial + 1) % 1_000_000;
                        vin = generate_vin(&car_type, year, serial);
                    }
                    let id = self.next_vehicle;
                    self.next_vehicle += 1;
                    self.vin_of.insert(device.clone(), vin.clone());
                    self.vehicles.insert(
                        vin.clone(),
                        SimVehicle {
                            device,
                            vin,
                            id,
                            vehicle_id: id + 900_000,
                            car_type,
                            accounts: BTreeSet::from([account.to_owned()]),
                        },
                    );
                }
                Planned::Site { site, batteries } => {
                    if let Some(id) = self.site_of.get(&site).copied() {
                        if let Some(s) = self.sites.get_mut(&id) {
                            s.accounts.insert(account.to_owned());
                            s.batteries = batteries;
                        }
                        continue;
                    }
                    let h = hash(&[self.seed, hash_str(site.as_str()), 0x5173]);
                    let mut id = 2_252_000_000_000_000 + h % 1_000_000_000_000;
                    while self.sites.contains_key(&id) {
                        id += 1;
                    }
                    let days = i64::try_from(h % 1500).unwrap_or(0);
                    let installed =
                        Utc.with_ymd_and_hms(2020, 1, 1, 10, 0, 0).single().unwrap_or_default()
                            + chrono::Duration::days(days);
                    self.site_of.insert(site.clone(), id);
                    self.sites.insert(
                        id,
                        SimSite {
                            site,
                            energy_site_id: id,
                            tesla_id: format!(
                                "STE{}-{:05}",
                                installed.format("%Y%m%d"),
                                id % 100_000
                            ),
                            gateway_id: format!("1152100-14-J--CN32{:08}", h % 100_000_000),
                            installation_date: installed,
                            batteries,
                            accounts: BTreeSet::from([account.to_owned()]),
                            last_live: None,
                        },
                    );
                }
            }
        }
    }

    fn record(&mut self, class: Class, status: StatusCode) {
        let bump = |c: &mut RequestCounts| match class {
            Class::Token => c.token += 1,
            Class::VehicleList => c.vehicle_list += 1,
            Class::Products => c.products += 1,
            Class::VehicleData => c.vehicle_data += 1,
            Class::EnergyData => c.energy_data += 1,
            Class::Command => c.commands += 1,
            Class::Wake => c.wakes += 1,
        };
        bump(&mut self.counts);
        if status.as_u16() < 500 {
            bump(&mut self.billed);
        }
    }

    fn authenticate(&self, headers: &HeaderMap, now: DateTime<Utc>) -> Result<String, SimResponse> {
        let invalid = || SimResponse::error(StatusCode::UNAUTHORIZED, "invalid bearer token");
        let value =
            headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).ok_or_else(invalid)?;
        let token = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .map(str::trim)
            .ok_or_else(invalid)?;
        let access = self.access.get(token).ok_or_else(invalid)?;
        if access.revoked {
            return Err(SimResponse::error(StatusCode::UNAUTHORIZED, "login_required"));
        }
        if access.expires_at <= now {
            return Err(SimResponse::error(StatusCode::UNAUTHORIZED, "token expired (401)"));
        }
        Ok(access.account.clone())
    }

    fn token_grant(&mut self, form: &BTreeMap<String, String>, now: DateTime<Utc>) -> SimResponse {
        let field = |k: &str| form.get(k).map(String::as_str).unwrap_or_default();
        if field("client_id").is_empty() {
            return SimResponse::oauth_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "client_id is required",
            );
        }
        let account = match field("grant_type") {
            "authorization_code" => {
                if field("redirect_uri").is_empty() {
                    return SimResponse::oauth_error(
                        StatusCode::BAD_REQUEST,
                        "invalid_request",
                        "redirect_uri is required",
                    );
                }
                match self.codes.get_mut(field("code")) {
                    Some(grant) if !grant.used => {
                        grant.used = true;
                        grant.account.clone()
                    }
                    _ => {
                        return SimResponse::oauth_error(
                            StatusCode::BAD_REQUEST,
                            "invalid_grant",
                            "The authorization code is invalid or has been used",
                        );
                    }
                }
            }
            "refresh_token" => match self.refresh.get_mut(field("refresh_token")) {
                Some(rt) if !rt.used && rt.expires_at > now => {
                    rt.used = true;
                    rt.account.clone()
                }
                _ => {
                    return SimResponse::oauth_error(
                        StatusCode::UNAUTHORIZED,
                        "login_required",
                        "The refresh_token is invalid",
                    );
                }
            },
            other => {
                return SimResponse::oauth_error(
                    StatusCode::BAD_REQUEST,
                    "unsupported_grant_type",
                    &format!("grant_type {other:?} is not supported"),
                );
            }
        };
        let tokens = self.issue_tokens(&account, now);
        SimResponse::ok(&json!({
            "access_token": tokens.access_token,
            "refresh_token": tokens.refresh_token,
            "id_token": "sim-id-token",
            "expires_in": self.access_lifetime.as_secs(),
            "state": "",
            "token_type": "Bearer",
        }))
    }
}

/// The one handler: parses the request, then [`TeslaSim::answer`].
async fn handle(State(sim): State<TeslaSim>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let (route, region) = match Route::parse(&parts.method, parts.uri.path()) {
        Ok(found) => found,
        Err(status) => {
            let error =
                if status == StatusCode::NOT_FOUND { "not_found" } else { "method not allowed" };
            return SimResponse::error(status, error).into_response();
        }
    };
    let Ok(body) = axum::body::to_bytes(body, BODY_LIMIT).await else {
        return SimResponse::error(StatusCode::PAYLOAD_TOO_LARGE, "request too large")
            .into_response();
    };
    let full_path = parts
        .extensions
        .get::<OriginalUri>()
        .map_or_else(|| parts.uri.path().to_owned(), |o| o.0.path().to_owned());
    let base_path = full_path.find("/api/1/").map_or(String::new(), |i| full_path[..i].to_owned());
    let host = parts.headers.get(header::HOST).and_then(|h| h.to_str().ok()).map(str::to_owned);
    let call = Call {
        route,
        region,
        path: full_path.clone(),
        base_path,
        host,
        query: parts.uri.query().map(str::to_owned),
        headers: parts.headers,
        body: body.to_vec(),
    };
    sim.answer(call).await.into_response()
}

/// `application/x-www-form-urlencoded` into a map (last value wins).
fn parse_form(body: &[u8]) -> BTreeMap<String, String> {
    let text = String::from_utf8_lossy(body);
    text.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..=i + 2]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn json_body(body: &[u8]) -> Result<Value, serde_json::Error> {
    if body.iter().all(u8::is_ascii_whitespace) {
        Ok(Value::Null)
    } else {
        serde_json::from_slice(body)
    }
}

fn json_u32(v: &Value) -> Option<u32> {
    match v {
        Value::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// The `endpoints` of a `vehicle_data` query; all but `location_data` when absent.
fn endpoints(query: Option<&str>) -> Vec<String> {
    let requested = query.and_then(|q| {
        q.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=')?;
            (k == "endpoints").then(|| percent_decode(v))
        })
    });
    match requested {
        Some(list) => {
            list.split(';').map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect()
        }
        None => ["charge_state", "climate_state", "drive_state", "vehicle_config", "vehicle_state"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect(),
    }
}

/// Tesla's `car_type` for a world model name (`Model Y` → `modely`).
fn car_type(model: &str) -> String {
    let squashed: String =
        model.chars().filter(|c| !c.is_whitespace()).collect::<String>().to_ascii_lowercase();
    if squashed.is_empty() { "modely".to_owned() } else { squashed }
}

fn charging_state(state: ChargeState) -> &'static str {
    match state {
        ChargeState::Disconnected => "Disconnected",
        ChargeState::Stopped => "Stopped",
        ChargeState::Charging => "Charging",
        ChargeState::Complete => "Complete",
        ChargeState::NoPower => "NoPower",
    }
}

fn round_to(x: f64, decimals: i32) -> f64 {
    let f = 10f64.powi(decimals);
    (x * f).round() / f + 0.0
}

fn list_entry(v: &SimVehicle, state: &VehicleState, account_number: u64) -> Value {
    json!({
        "id": v.id,
        "user_id": account_number,
        "vehicle_id": v.vehicle_id,
        "vin": v.vin,
        "color": null,
        "access_type": "OWNER",
        "display_name": state.name,
        "option_codes": null,
        "granular_access": {"hide_private": false},
        "tokens": [format!("{:016x}", v.vehicle_id)],
        "state": state.power_state.as_str(),
        "in_service": false,
        "id_s": v.id.to_string(),
        "calendar_enabled": true,
        "api_version": 71,
        "backseat_token": null,
        "backseat_token_updated_at": null,
    })
}

fn vehicle_data_json(
    v: &SimVehicle,
    m: &VehicleState,
    account_number: u64,
    endpoints: &[String],
) -> Value {
    let ts = m.at.timestamp_millis();
    let wants = |name: &str| endpoints.iter().any(|e| e == name);
    let mut data = list_entry(v, m, account_number);
    let Some(obj) = data.as_object_mut() else { return data };
    let plugged = m.plugged_in;
    let charging = m.charge_state == ChargeState::Charging;
    let range_mi = round_to(m.range_km / KM_PER_MILE, 2);
    let km_per_kwh = if m.capacity_kwh > 0.0 && m.battery_level > 0.0 {
        m.range_km / (m.capacity_kwh * m.battery_level / 100.0)
    } else {
        6.0
    };
    if wants("charge_state") {
        obj.insert(
            "charge_state".into(),
            json!({
                "battery_heater_on": false,
                "battery_level": m.battery_level.round(),
                "battery_range": range_mi,
                "charge_amps": m.charge_amps,
                "charge_current_request": m.charge_amps,
                "charge_current_request_max": m.max_amps,
                "charge_enable_request": charging,
                "charge_energy_added": round_to(m.charge_energy_added_kwh, 2),
                "charge_limit_soc": m.charge_limit.round(),
                "charge_limit_soc_max": 100,
                "charge_limit_soc_min": 50,
                "charge_limit_soc_std": 90,
                "charge_port_door_open": plugged,
                "charge_port_latch": if plugged { "Engaged" } else { "Disengaged" },
                "charge_rate": if charging { round_to(m.charge_power_kw * km_per_kwh / KM_PER_MILE, 1) } else { 0.0 },
                "charger_actual_current": if charging { m.actual_amps.round() } else { 0.0 },
                "charger_phases": if charging { Some(m.phases) } else { None },
                "charger_pilot_current": m.max_amps,
                "charger_power": m.charge_power_kw.round() + 0.0,
                "charger_voltage": if charging { m.voltage.round() } else if plugged { 2.0 } else { 0.0 },
                "charging_state": charging_state(m.charge_state),
                "conn_charge_cable": if plugged { "IEC" } else { "<invalid>" },
                "est_battery_range": round_to(range_mi * 0.9, 2),
                "fast_charger_present": false,
                "fast_charger_type": if plugged { "ACSingleWireCAN" } else { "<invalid>" },
                "ideal_battery_range": range_mi,
                "minutes_to_full_charge": m.minutes_to_limit.round(),
                "scheduled_charging_mode": "Off",
                "scheduled_charging_pending": false,
                "scheduled_charging_start_time": null,
                "time_to_full_charge": round_to(m.minutes_to_limit / 60.0, 2),
                "timestamp": ts,
                "usable_battery_level": (m.battery_level - 1.0).max(0.0).round(),
                "user_charge_enable_request": null,
            }),
        );
    }
    if wants("climate_state") {
        obj.insert(
            "climate_state".into(),
            json!({"inside_temp": 19.5, "outside_temp": 8.0, "is_climate_on": false, "timestamp": ts}),
        );
    }
    if wants("drive_state") || wants("location_data") {
        let mut drive = json!({
            "heading": m.heading.round(),
            "power": if charging { -m.charge_power_kw.round() } else { 0.0 },
            "shift_state": if m.driving { Some("D") } else { None },
            "speed": if m.driving { Some((m.speed_kmh / KM_PER_MILE).round()) } else { None },
            "timestamp": ts,
        });
        if wants("location_data")
            && let Some(d) = drive.as_object_mut()
        {
            d.insert("latitude".into(), json!(round_to(m.latitude, 6)));
            d.insert("longitude".into(), json!(round_to(m.longitude, 6)));
            d.insert("native_latitude".into(), json!(round_to(m.latitude, 6)));
            d.insert("native_longitude".into(), json!(round_to(m.longitude, 6)));
            d.insert("native_type".into(), json!("wgs"));
            d.insert("gps_as_of".into(), json!(m.at.timestamp()));
        }
        obj.insert("drive_state".into(), drive);
    }
    if wants("vehicle_config") {
        obj.insert(
            "vehicle_config".into(),
            json!({"car_type": v.car_type, "trim_badging": "74d", "charge_port_type": "CCS", "timestamp": ts}),
        );
    }
    if wants("vehicle_state") {
        obj.insert(
            "vehicle_state".into(),
            json!({
                "car_version": "2024.26.7 sim",
                "locked": true,
                "odometer": round_to(m.odometer_km / KM_PER_MILE, 4),
                "vehicle_name": m.name,
                "timestamp": ts,
            }),
        );
    }
    data
}

/// A plausible 17-character Tesla VIN with a valid check digit.
fn generate_vin(car_type: &str, model_year: u16, serial: u64) -> String {
    let prefix = match car_type {
        "model3" => "5YJ3E1EA",
        "models" | "models2" => "5YJSA1E2",
        "modelx" => "5YJXCBE2",
        "cybertruck" => "7G2CEHED",
        _ => "7SAYGDEE",
    };
    const YEARS: &[u8] = b"ABCDEFGHJKLMNPRSTVWXY";
    let year = usize::from(model_year.saturating_sub(2010)) % YEARS.len();
    let year = char::from(YEARS.get(year).copied().unwrap_or(b'R'));
    let mut vin = format!("{prefix}0{year}F{:06}", serial % 1_000_000);
    let check = vin_check_digit(&vin);
    vin.replace_range(8..9, &check.to_string());
    vin
}

fn vin_check_digit(vin: &str) -> char {
    const WEIGHTS: [u32; 17] = [8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2];
    let value = |c: char| -> u32 {
        match c {
            '0'..='9' => c.to_digit(10).unwrap_or(0),
            'A' | 'J' => 1,
            'B' | 'K' | 'S' => 2,
            'C' | 'L' | 'T' => 3,
            'D' | 'M' | 'U' => 4,
            'E' | 'N' | 'V' => 5,
            'F' | 'W' => 6,
            'G' | 'P' | 'X' => 7,
            'H' | 'Y' => 8,
            'R' | 'Z' => 9,
            _ => 0,
        }
    };
    let sum: u32 = vin.chars().zip(WEIGHTS).map(|(c, w)| value(c) * w).sum();
    match sum % 11 {
        10 => 'X',
        d => char::from_digit(d, 10).unwrap_or('0'),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_vins_are_valid() {
        let vin = generate_vin("modely", 2024, 123);
        assert_eq!(vin.len(), 17);
        assert!(vin.starts_with("7SAYGDEE"));
        assert_eq!(&vin[9..10], "R");
        assert_eq!(vin_check_digit(&vin), vin.chars().nth(8).unwrap());
        assert_eq!(vin_check_digit("1M8GDM9AXKP042788"), 'X');
        assert_eq!(crate::map::model_year_from_vin(&vin), Some(2024.0));
        assert_eq!(crate::map::model_from_vin(&vin).as_deref(), Some("Model Y"));
        assert_eq!(car_type("Model 3"), "model3");
        assert_eq!(
            crate::map::model_from_car_type(&car_type("Model X")).as_deref(),
            Some("Model X")
        );
    }

    #[test]
    fn routes_parse_with_and_without_region() {
        let get = Method::GET;
        let post = Method::POST;
        assert_eq!(Route::parse(&get, "/api/1/vehicles"), Ok((Route::Vehicles, None)));
        assert_eq!(
            Route::parse(&get, "/eu/api/1/energy_sites/12/live_status"),
            Ok((Route::LiveStatus("12".into()), Some("eu".into())))
        );
        assert_eq!(
            Route::parse(&post, "/api/1/vehicles/VIN/command/charge_start"),
            Ok((Route::Command("VIN".into(), "charge_start".into()), None))
        );
        assert_eq!(Route::parse(&post, "/oauth2/v3/token"), Ok((Route::Token, None)));
        assert_eq!(
            Route::parse(&get, "/api/1/vehicles/VIN/wake_up"),
            Err(StatusCode::METHOD_NOT_ALLOWED)
        );
        assert_eq!(Route::parse(&get, "/api/2/vehicles"), Err(StatusCode::NOT_FOUND));
        assert_eq!(Route::parse(&get, "/"), Err(StatusCode::NOT_FOUND));
    }

    #[test]
    fn forms_and_queries_decode() {
        let form = parse_form(b"grant_type=refresh_token&redirect_uri=https%3A%2F%2Fx.example%2Fcb&a=b+c&bad=%zz&t=%4");
        assert_eq!(form["grant_type"], "refresh_token");
        assert_eq!(form["redirect_uri"], "https://x.example/cb");
        assert_eq!(form["a"], "b c");
        assert_eq!(form["bad"], "%zz");
        assert_eq!(form["t"], "%4");
        assert_eq!(
            endpoints(Some("endpoints=charge_state%3Bdrive_state")),
            ["charge_state", "drive_state"]
        );
        assert_eq!(endpoints(Some("x=1&endpoints=location_data")), ["location_data"]);
        assert_eq!(endpoints(None).len(), 5);
    }

    #[test]
    fn modes_round_trip() {
        for mode in ["self_consumption", "autonomous", "backup"] {
            assert_eq!(tesla_mode_of(world_mode_of(mode).unwrap()), mode);
        }
        assert_eq!(world_mode_of("storm"), None);
        assert_eq!(tesla_mode_of(BatteryMode::ImportFocus), "backup");
    }

    use chrono::TimeZone;
    use oemgate_core::ManualClock;
    use oemgate_sim::{BatterySpec, InverterSpec, SiteSpec, WorldConfig};

    fn world() -> (Arc<ManualClock>, World) {
        let start = Utc.with_ymd_and_hms(2025, 6, 2, 10, 0, 0).unwrap();
        let clock = Arc::new(ManualClock::new(start));
        let world = World::new(3, clock.clone(), WorldConfig::default());
        (clock, world)
    }

    fn call(sim: &TeslaSim, account: &str, route: Route) -> Call {
        let token = sim.issue_tokens(account).unwrap().access_token;
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, format!("Bearer {token}").parse().unwrap());
        Call {
            route,
            region: None,
            path: String::new(),
            base_path: String::new(),
            host: None,
            headers,
            query: None,
            body: Vec::new(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn hang_and_timeout_delay_the_answer() {
        let (_clock, world) = world();
        let sim = TeslaSim::new(world.clone());
        let (account, _) = sim.link(&[]).unwrap();
        world.faults().set(WORLD_VENDOR, Fault::Hang { duration: Duration::from_secs(20) }, None);
        let started = tokio::time::Instant::now();
        let r = sim.answer(call(&sim, &account, Route::Vehicles)).await;
        assert_eq!(r.status, StatusCode::OK);
        // A ManualClock runs at speed 1: 20 s of clock time is 20 s of (paused) real time.
        assert!(started.elapsed() >= Duration::from_secs(20));

        world.faults().set(WORLD_VENDOR, Fault::Timeout, None);
        let started = tokio::time::Instant::now();
        let r = sim.answer(call(&sim, &account, Route::Vehicles)).await;
        assert_eq!(r.status, StatusCode::GATEWAY_TIMEOUT);
        assert!(started.elapsed() >= TIMEOUT_HANG);
        assert_eq!(sim.request_counts().vehicle_list, 2);
        assert_eq!(sim.billed_counts().vehicle_list, 1, "the 504 is not billed");
    }

    #[tokio::test]
    async fn live_status_uses_teslas_sign_conventions() {
        let (clock, world) = world();
        let site = world.add_site(SiteSpec::default());
        world.add_inverter(&site, InverterSpec::default()).unwrap();
        let battery = world
            .add_battery(
                &site,
                BatterySpec {
                    mode: BatteryMode::ImportFocus,
                    soc_pct: 30.0,
                    ..BatterySpec::default()
                },
            )
            .unwrap();
        let sim = TeslaSim::new(world.clone());
        let (account, _) = sim.link(std::slice::from_ref(&battery)).unwrap();
        let id = sim.energy_site_id(battery.as_str()).unwrap();
        assert_eq!(sim.energy_site_id(site.as_str()), Some(id.clone()));
        clock.advance(Duration::from_secs(60));
        let r = sim.answer(call(&sim, &account, Route::LiveStatus(id.clone()))).await;
        assert_eq!(r.status, StatusCode::OK);
        let live: Value = serde_json::from_str(&r.body).unwrap();
        let live = &live["response"];
        let truth = world.battery(&battery).unwrap();
        let site_state = world.site(&site).unwrap();
        assert!(truth.power_w > 1000.0, "import focus charges: {truth:?}");
        let battery_power = live["battery_power"].as_f64().unwrap();
        assert!((battery_power + truth.power_w).abs() <= 0.5, "positive = discharging");
        let grid = live["grid_power"].as_f64().unwrap();
        assert!((grid - site_state.grid_w).abs() <= 0.5, "positive = importing");
        let (solar, load) =
            (live["solar_power"].as_f64().unwrap(), live["load_power"].as_f64().unwrap());
        assert!((load - (solar + battery_power + grid)).abs() < 1e-9);
        assert!((live["percentage_charged"].as_f64().unwrap() - truth.soc_pct).abs() < 0.01);

        let r = sim.answer(call(&sim, &account, Route::SiteInfo(id.clone()))).await;
        let info: Value = serde_json::from_str(&r.body).unwrap();
        let info = &info["response"];
        assert_eq!(info["default_real_mode"], "backup", "ImportFocus shows as backup");
        assert_eq!(info["nameplate_energy"], 13_500.0);
        assert_eq!(info["battery_count"], 1);
        assert_eq!(info["components"]["solar"], true);

        // An unknown site and another account's site are 404.
        let (other, _) = sim.link(&[]).unwrap();
        let r = sim.answer(call(&sim, &other, Route::LiveStatus(id))).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        let r = sim.answer(call(&sim, &account, Route::LiveStatus("1".into()))).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
    }

    #[test]
    fn linking_checks_the_world() {
        let (_clock, world) = world();
        let site = world.add_site(SiteSpec::default());
        let inverter = world.add_inverter(&site, InverterSpec::default()).unwrap();
        let foreign = world
            .add_battery(&site, BatterySpec { vendor: "enphase".into(), ..BatterySpec::default() })
            .unwrap();
        let sim = TeslaSim::new(world);
        assert!(matches!(sim.link(&[DeviceId::new("nope")]), Err(SimError::Unknown(_))));
        assert!(matches!(sim.link(&[foreign]), Err(SimError::NotTesla { .. })));
        assert!(matches!(
            sim.link(std::slice::from_ref(&inverter)),
            Err(SimError::NotTesla { .. })
        ));
        assert!(matches!(sim.add_to_account("404", &[]), Err(SimError::UnknownAccount(_))));
        // A site with no Tesla devices links as an empty account.
        let (account, code) = sim.link_site(&site).unwrap();
        assert!(code.starts_with("sim-code-"));
        assert!(sim.authorization_code(&account).is_some());
    }

    #[test]
    fn counts_price_billed_requests() {
        let counts = RequestCounts {
            vehicle_data: 500,
            commands: 1000,
            wakes: 50,
            token: 9,
            ..Default::default()
        };
        assert!((counts.cost_usd() - 3.0).abs() < 1e-9);
        assert_eq!(counts.total(), 1559);
    }
}
