//! A simulator of FusionSolar's Northbound API on [`oemgate_sim::World`] (feature `sim`).
//!
//! [`HuaweiSim::router`] serves the `POST /thirdData/{interface}` calls the adapter uses
//! (`login`, `logout`, `stations`, `getStationList`, `getStationRealKpi`, `getDevList`,
//! `getDevRealKpi`) and expects to be mounted under [`PREFIX`] (`/huawei`) of a
//! [`oemgate_sim::SimHost`]. It renders the world's devices whose vendor is
//! [`WORLD_VENDOR`] (`"huawei"`) on the sites of each account:
//! PV inverters as devTypeId 38, home batteries as 39 and grid meters as 47.
//!
//! Faithful to FusionSolar:
//! - Every answer to a call is **HTTP 200** with the envelope
//!   `{"success":…,"failCode":…,"message":…,"params":{…,"currentTime":ms},"data":…}`,
//!   errors included; a body that is not a JSON object is answered with the framework's
//!   `{"exceptionId":"framwork.remote.Paramerror",…}`.
//! - Login (`{"userName","systemCode"}`) returns the token in the `xsrf-token` header and an
//!   `XSRF-TOKEN` cookie; later calls send it in the `XSRF-TOKEN` header. **One session per
//!   account**: a login ends the account's previous session. A session ends after
//!   [`SESSION_IDLE`] without calls (each call extends it); an unknown, ended or idle session
//!   is `failCode` 305. A wrong user name or password is 20400, a disabled account 20002.
//! - Rate limits: one call per [`INTERFACE_WINDOW`] per account and interface (login
//!   included), else `failCode` 407 with `data: "ACCESS_FREQUENCY_IS_TOO_HIGH"` and no
//!   `Retry-After`. Calls answered 407 do not count. [`HuaweiSim::set_interface_rate_limit`]
//!   turns this off (the conformance suite reads many devices at one instant of a manual
//!   clock). More than 100 plants or devices in one call is `failCode` 20015.
//! - Units and signs: inverter `active_power` kW, battery `ch_discharge_power` W positive
//!   while charging, meter `active_power` W positive while **exporting** (the world's grid
//!   power with its sign flipped), energies kWh. Offline devices report `run_state` 0 and
//!   `null` values.
//!
//! Faults (`world.faults().active("HUAWEI")`, or `"huawei"` as the world spells vendors; a
//! fault under `"HUAWEI"` wins while both are set):
//!
//! | fault | rendering |
//! |---|---|
//! | `RateLimit{retry_after}` | HTTP 200, `failCode` 407 `ACCESS_FREQUENCY_IS_TOO_HIGH`, **plus** `Retry-After` (FusionSolar sends none; the header carries the injected wait to the adapter, which reads it when present) |
//! | `ServerError{status}` | that status with the gateway's HTML error page |
//! | `Outage` | 503 with the gateway's HTML error page |
//! | `Hang{duration}` | waits `duration` of clock time, then answers normally |
//! | `Timeout` | holds the request [`oemgate_sim::TIMEOUT_HANG`] (real time), then 504 |
//! | `Malformed` | HTTP 200 with FusionSolar's HTML login page instead of JSON |
//! | `Truncated` | HTTP 200 with the correct body cut in half |
//! | `RevokeTokens` | every account's API access is disabled and every session ends (calls: 305, login: 20002) |
//!
//! Not modelled: the one-concurrent-request limit (a request hung by a fault would block the
//! next one), daily quotas, control interfaces, the day and month counters before the first
//! read of a day or month (the world keeps no calendar counters, so `day_power`,
//! `month_power` and `day_cap` count from the first read in the period), incomes (`null`).

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use axum::routing::post;
use chrono::{DateTime, Datelike, Utc};
use oemgate_sim::{
    BatteryMode, DeviceId, DeviceInfo, DeviceKind, Fault, SiteId, TIMEOUT_HANG, World,
};
use serde_json::{Map, Value, json};

use crate::client::fail_code;
use crate::model::{DevType, DeviceKey};

/// The world's vendor name of the devices FusionSolar exposes.
pub const WORLD_VENDOR: &str = "huawei";
/// The vendor name faults are looked up under first (then [`WORLD_VENDOR`]).
pub const FAULT_VENDOR: &str = "HUAWEI";
/// The path prefix the router expects to be mounted under.
pub const PREFIX: &str = "/huawei";
/// A session ends after this long without calls.
pub const SESSION_IDLE: Duration = Duration::from_secs(30 * 60);
/// One call per account and interface per this window.
pub const INTERFACE_WINDOW: Duration = Duration::from_secs(60);

/// What a user receives when an installer creates a Northbound API account: the user name
/// and password (`systemCode`) to type into the link flow. `Debug` hides the password.
#[derive(Clone, PartialEq, Eq)]
pub struct HuaweiLogin {
    /// The Northbound user name.
    pub user_name: String,
    /// Its password.
    pub system_code: String,
}

impl fmt::Debug for HuaweiLogin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HuaweiLogin")
            .field("user_name", &self.user_name)
            .field("system_code", &"<redacted>")
            .finish()
    }
}

#[derive(Debug)]
struct Account {
    system_code: String,
    sites: Vec<SiteId>,
    disabled: bool,
}

#[derive(Debug)]
struct Session {
    user: String,
    last_used: DateTime<Utc>,
}

#[derive(Debug)]
struct SimState {
    accounts: BTreeMap<String, Account>,
    sessions: HashMap<String, Session>,
    next_account: u64,
    next_token: u64,
    session_idle: Duration,
    rate_window: Option<Duration>,
    last_call: HashMap<(String, String), DateTime<Utc>>,
    /// (counter key, period) -> the counter's value at the first read in the period.
    baselines: HashMap<(String, i64), f64>,
}

#[derive(Debug)]
struct Shared {
    world: World,
    state: Mutex<SimState>,
}

/// FusionSolar's Northbound API on a [`World`]. Cheap to clone; clones share everything.
#[derive(Clone, Debug)]
pub struct HuaweiSim {
    shared: Arc<Shared>,
}

/// An answer before it becomes an HTTP response.
struct Reply {
    status: StatusCode,
    headers: Vec<(header::HeaderName, String)>,
    body: Vec<u8>,
    content_type: &'static str,
}

const JSON: &str = "application/json;charset=UTF-8";
const HTML: &str = "text/html;charset=UTF-8";

impl Reply {
    fn json(value: &Value) -> Self {
        Self {
            status: StatusCode::OK,
            headers: Vec::new(),
            body: serde_json::to_vec(value).unwrap_or_default(),
            content_type: JSON,
        }
    }

    fn html(status: StatusCode, html: String) -> Self {
        Self { status, headers: Vec::new(), body: html.into_bytes(), content_type: HTML }
    }

    fn into_response(self) -> Response {
        let mut response = Response::new(Body::from(self.body));
        *response.status_mut() = self.status;
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(self.content_type));
        for (name, value) in self.headers {
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.append(name, value);
            }
        }
        response
    }
}

fn millis(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn round(x: f64, decimals: i32) -> f64 {
    let f = 10f64.powi(decimals);
    (x * f).round() / f + 0.0
}

/// splitmix64: deterministic tokens and passwords from the seed.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// The number behind a world id (`site-000012` → 12), or a stable hash below 10^6.
fn serial(id: &str) -> u64 {
    let digits = id.rsplit('-').next().unwrap_or("");
    match digits.parse::<u64>() {
        Ok(n) if n < 10_000_000 => n,
        _ => {
            // FNV-1a.
            let mut h: u64 = 0xcbf2_9ce4_8422_2325;
            for b in id.bytes() {
                h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
            }
            h % 1_000_000
        }
    }
}

/// FusionSolar's device type for a world device kind (38, 39, 47), if FusionSolar has it.
pub fn dev_type(kind: DeviceKind) -> Option<DevType> {
    match kind {
        DeviceKind::Inverter => Some(DevType::ResidentialInverter),
        DeviceKind::Battery => Some(DevType::Battery),
        DeviceKind::Meter => Some(DevType::PowerSensor),
        _ => None,
    }
}

/// The plant code of a world site (`site-000012` → `NE=33554012`).
pub fn station_code(site: &SiteId) -> String {
    format!("NE={}", 33_554_000 + serial(site.as_str()))
}

/// The FusionSolar device id (`devId`) of a world device: 16 digits, stable.
pub fn dev_id(device: &DeviceId, kind: DeviceKind) -> String {
    let kind_code: u64 = match kind {
        DeviceKind::Inverter => 1,
        DeviceKind::Battery => 2,
        DeviceKind::Meter => 3,
        _ => 9,
    };
    (1_000_000_000_000_000 + kind_code * 10_000_000 + serial(device.as_str())).to_string()
}

/// The adapter's `vendor_id` ([`DeviceKey`]) of a world device FusionSolar exposes.
pub fn device_key(device: &DeviceId, kind: DeviceKind) -> Option<DeviceKey> {
    DeviceKey::new(dev_type(kind)?, dev_id(device, kind))
}

fn esn(device: &DeviceId, kind: DeviceKind) -> String {
    let prefix = match kind {
        DeviceKind::Inverter => "HV21",
        DeviceKind::Battery => "LU22",
        _ => "DT23",
    };
    format!("{prefix}{:08}", serial(device.as_str()))
}

/// `ch_discharge_model` for a world battery mode.
pub fn mode_code(mode: BatteryMode) -> i64 {
    match mode {
        BatteryMode::SelfReliance => 4,
        BatteryMode::TimeOfUse => 6,
        BatteryMode::ImportFocus | BatteryMode::ExportFocus => 1,
        BatteryMode::Backup | BatteryMode::Idle => 0,
    }
}

fn envelope(success: bool, code: i64, message: Value, params: Value, data: Value) -> Value {
    json!({ "success": success, "failCode": code, "message": message, "params": params, "data": data })
}

fn failure(code: i64, data: &str, params: Value) -> Reply {
    Reply::json(&envelope(false, code, Value::Null, params, json!(data)))
}

fn framework_exception(field: &str) -> Reply {
    Reply::json(&json!({
        "exceptionId": "framwork.remote.Paramerror",
        "exceptionType": "ROA_EXFRAME_EXCEPTION",
        "descArgs": null,
        "reasonArgs": [field],
        "detailArgs": [format!("{field} is invalid")],
        "reasonArgsI18N": null,
        "detailArgsI18N": null
    }))
}

fn error_page(status: StatusCode) -> Reply {
    let code = status.as_u16();
    let reason = status.canonical_reason().unwrap_or("Error");
    Reply::html(
        status,
        format!(
            "<html><head><title>{code} {reason}</title></head><body><center><h1>{code} {reason}\
             </h1></center><hr><center>FusionSolar</center></body></html>"
        ),
    )
}

fn login_page() -> Reply {
    Reply::html(
        StatusCode::OK,
        "<!DOCTYPE html><html><head><title>FusionSolar</title></head><body>\
         <div id=\"login\">Session timed out. Please log in again.</div></body></html>"
            .to_owned(),
    )
}

/// The comma-separated codes of a field, trimmed, without empties.
fn codes(body: &Map<String, Value>, field: &str) -> Option<Vec<String>> {
    let text = body.get(field)?.as_str()?;
    Some(text.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect())
}

fn integer(body: &Map<String, Value>, field: &str) -> Option<i64> {
    match body.get(field)? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

impl HuaweiSim {
    /// A FusionSolar cloud over `world`, with no accounts yet.
    pub fn new(world: World) -> Self {
        let state = SimState {
            accounts: BTreeMap::new(),
            sessions: HashMap::new(),
            next_account: 0,
            next_token: 0,
            session_idle: SESSION_IDLE,
            rate_window: Some(INTERFACE_WINDOW),
            last_call: HashMap::new(),
            baselines: HashMap::new(),
        };
        Self { shared: Arc::new(Shared { world, state: Mutex::new(state) }) }
    }

    fn lock(&self) -> MutexGuard<'_, SimState> {
        // Every mutation is a few map operations; a poisoned lock is still consistent.
        self.shared.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The world.
    pub fn world(&self) -> &World {
        &self.shared.world
    }

    /// Creates a Northbound API account holding `sites` (their `"huawei"` inverters,
    /// batteries and meters) and returns what the user types to link it.
    pub fn create_account(&self, sites: &[SiteId]) -> HuaweiLogin {
        let seed = self.shared.world.seed();
        let mut state = self.lock();
        state.next_account += 1;
        let n = state.next_account;
        let user_name = format!("nbi_user_{n:03}");
        let system_code = format!("Nbi@{:012x}", mix(seed ^ mix(n)) & 0xFFFF_FFFF_FFFF);
        state.accounts.insert(
            user_name.clone(),
            Account { system_code: system_code.clone(), sites: sites.to_vec(), disabled: false },
        );
        HuaweiLogin { user_name, system_code }
    }

    /// Sets the per-account, per-interface limit window (`None`: no limit). Default
    /// [`INTERFACE_WINDOW`].
    pub fn set_interface_rate_limit(&self, window: Option<Duration>) {
        let mut state = self.lock();
        state.rate_window = window;
        state.last_call.clear();
    }

    /// Sets how long a session lives without calls. Default [`SESSION_IDLE`].
    pub fn set_session_idle_timeout(&self, idle: Duration) {
        self.lock().session_idle = idle;
    }

    /// Ends every session of `user_name` now (as if it had idled out): its token answers
    /// 305, and a new login works. Returns whether it had one.
    pub fn expire_sessions(&self, user_name: &str) -> bool {
        let mut state = self.lock();
        let before = state.sessions.len();
        state.sessions.retain(|_, s| s.user != user_name);
        state.sessions.len() != before
    }

    /// Disables the API account (the owner removed oemgate's access): its sessions end
    /// (305) and logins are refused (20002). Returns whether the account exists.
    pub fn revoke_account(&self, user_name: &str) -> bool {
        let mut state = self.lock();
        state.sessions.retain(|_, s| s.user != user_name);
        match state.accounts.get_mut(user_name) {
            Some(account) => {
                account.disabled = true;
                true
            }
            None => false,
        }
    }

    /// The number of live sessions of `user_name` (0 or 1).
    pub fn sessions_of(&self, user_name: &str) -> usize {
        self.lock().sessions.values().filter(|s| s.user == user_name).count()
    }

    /// The router, to mount under [`PREFIX`].
    pub fn router(&self) -> Router {
        Router::new()
            .route("/thirdData/{interface}", post(handle))
            .fallback(|| async { error_page(StatusCode::NOT_FOUND).into_response() })
            .with_state(self.clone())
    }

    fn active_fault(&self) -> Option<Fault> {
        let faults = self.shared.world.faults();
        if faults.take_revocation(FAULT_VENDOR) | faults.take_revocation(WORLD_VENDOR) {
            let mut state = self.lock();
            state.sessions.clear();
            for account in state.accounts.values_mut() {
                account.disabled = true;
            }
        }
        faults.active(FAULT_VENDOR).or_else(|| faults.active(WORLD_VENDOR))
    }

    /// One call, after faults.
    fn answer(&self, interface: &str, headers: &HeaderMap, body: &[u8]) -> Reply {
        let now = self.shared.world.now();
        let request = match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(map)) => map,
            _ => return framework_exception("body"),
        };
        let mut params = request.clone();
        params.insert("currentTime".to_owned(), json!(millis(now)));
        let params = Value::Object(params);
        if interface == "login" {
            return self.login(&request, params, now);
        }
        let token = headers.get("xsrf-token").and_then(|v| v.to_str().ok()).unwrap_or("");
        let user = {
            let mut state = self.lock();
            let idle =
                chrono::Duration::from_std(state.session_idle).unwrap_or(chrono::Duration::MAX);
            let live = state.sessions.get(token).filter(|s| now - s.last_used <= idle);
            let Some(user) = live.map(|s| s.user.clone()) else {
                state.sessions.remove(token);
                return failure(fail_code::NOT_LOGGED_IN, "USER_MUST_RELOGIN", params);
            };
            if !state.limit(&user, interface, now) {
                return failure(fail_code::TOO_FREQUENT, "ACCESS_FREQUENCY_IS_TOO_HIGH", params);
            }
            if let Some(session) = state.sessions.get_mut(token) {
                session.last_used = now;
            }
            user
        };
        let sites = {
            let state = self.lock();
            state.accounts.get(&user).map(|a| a.sites.clone()).unwrap_or_default()
        };
        let data = match interface {
            "logout" => {
                self.lock().sessions.remove(token);
                Value::Null
            }
            "stations" => match self.stations(&request, &sites) {
                Ok(data) => data,
                Err(reply) => return reply,
            },
            "getStationList" => self.station_list(&sites),
            "getStationRealKpi" => {
                let Some(codes) = codes(&request, "stationCodes") else {
                    return framework_exception("stationCodes");
                };
                if codes.len() > 100 {
                    return failure(fail_code::TOO_MANY_PLANTS, "STATION_NUM_OVER_LIMIT", params);
                }
                self.station_kpis(&codes, &sites)
            }
            "getDevList" => {
                let Some(codes) = codes(&request, "stationCodes") else {
                    return framework_exception("stationCodes");
                };
                if codes.len() > 100 {
                    return failure(fail_code::TOO_MANY_PLANTS, "STATION_NUM_OVER_LIMIT", params);
                }
                self.dev_list(&codes, &sites)
            }
            "getDevRealKpi" => {
                let (Some(ids), Some(type_id)) =
                    (codes(&request, "devIds"), integer(&request, "devTypeId"))
                else {
                    return framework_exception("devIds");
                };
                if ids.len() > 100 {
                    return failure(fail_code::TOO_MANY_PLANTS, "DEVICE_NUM_OVER_LIMIT", params);
                }
                self.dev_kpis(&ids, type_id, &sites)
            }
            _ => return error_page(StatusCode::NOT_FOUND),
        };
        Reply::json(&envelope(true, 0, Value::Null, params, data))
    }

    fn login(&self, request: &Map<String, Value>, params: Value, now: DateTime<Utc>) -> Reply {
        let field = |name: &str| request.get(name).and_then(Value::as_str).unwrap_or("");
        let (user, code) = (field("userName"), field("systemCode"));
        let seed = self.shared.world.seed();
        let mut state = self.lock();
        let Some(account) = state.accounts.get(user).filter(|a| a.system_code == code) else {
            return failure(fail_code::LOGIN_FAILED, "user.login.user_or_value_invalid", params);
        };
        if account.disabled {
            return failure(fail_code::ACCOUNT_DISABLED, "API_ACCOUNT_DISABLED", params);
        }
        if !state.limit(user, "login", now) {
            return failure(fail_code::TOO_FREQUENT, "ACCESS_FREQUENCY_IS_TOO_HIGH", params);
        }
        // One session per account: this login ends the previous one.
        state.sessions.retain(|_, s| s.user != user);
        state.next_token += 1;
        let token = format!(
            "x-{:016x}{:016x}",
            mix(seed ^ mix(state.next_token)),
            mix(state.next_token.wrapping_mul(31))
        );
        state.sessions.insert(token.clone(), Session { user: user.to_owned(), last_used: now });
        drop(state);
        let mut reply = Reply::json(&envelope(true, 0, Value::Null, params, Value::Null));
        reply.headers.push((header::HeaderName::from_static("xsrf-token"), token.clone()));
        reply.headers.push((header::SET_COOKIE, format!("XSRF-TOKEN={token}; Path=/; Secure")));
        reply
    }

    /// The account's plants that exist in the world.
    fn plants(&self, sites: &[SiteId]) -> Vec<oemgate_sim::SiteState> {
        sites.iter().filter_map(|s| self.shared.world.site(s)).collect()
    }

    fn stations(&self, request: &Map<String, Value>, sites: &[SiteId]) -> Result<Value, Reply> {
        let page_no = integer(request, "pageNo").unwrap_or(1);
        let page_size = integer(request, "pageSize").unwrap_or(20);
        if page_no < 1 || !(1..=100).contains(&page_size) {
            return Err(framework_exception("pageSize"));
        }
        let plants = self.plants(sites);
        let total = plants.len();
        let size = usize::try_from(page_size).unwrap_or(100);
        let skip = usize::try_from(page_no - 1).unwrap_or(usize::MAX).saturating_mul(size);
        let list: Vec<Value> = plants
            .iter()
            .skip(skip)
            .take(size)
            .map(|p| {
                json!({
                    "plantCode": station_code(&p.id),
                    "plantName": p.name,
                    "plantAddress": null,
                    "longitude": format!("{:.6}", p.longitude),
                    "latitude": format!("{:.6}", p.latitude),
                    "capacity": round(self.capacity_kwp(&p.id), 3),
                    "contactPerson": "",
                    "contactMethod": "",
                    "gridConnectionDate": "2024-05-01T10:00:00+00:00"
                })
            })
            .collect();
        Ok(json!({
            "list": list,
            "pageCount": total.div_ceil(size).max(1),
            "pageNo": page_no,
            "pageSize": page_size,
            "total": total
        }))
    }

    fn station_list(&self, sites: &[SiteId]) -> Value {
        let list: Vec<Value> = self
            .plants(sites)
            .iter()
            .map(|p| {
                json!({
                    "stationCode": station_code(&p.id),
                    "stationName": p.name,
                    "stationAddr": null,
                    "capacity": round(self.capacity_kwp(&p.id) / 1000.0, 6),
                    "buildState": null,
                    "combineType": null,
                    "aidType": 0,
                    "stationLinkman": null,
                    "linkmanPho": null
                })
            })
            .collect();
        Value::Array(list)
    }

    /// The plant's FusionSolar devices.
    fn devices_of(&self, site: &SiteId) -> Vec<DeviceInfo> {
        self.shared
            .world
            .devices_of_site(site)
            .into_iter()
            .filter(|d| d.vendor == WORLD_VENDOR && dev_type(d.kind).is_some())
            .collect()
    }

    fn capacity_kwp(&self, site: &SiteId) -> f64 {
        self.devices_of(site)
            .iter()
            .filter_map(|d| self.shared.world.inverter(&d.id))
            .map(|i| i.capacity_w / 1000.0)
            .sum()
    }

    /// A counter's growth since the first read in the current `period`.
    fn since_period_start(&self, key: String, period: i64, value: f64) -> f64 {
        let mut state = self.lock();
        let base = *state.baselines.entry((key, period)).or_insert(value);
        (value - base).max(0.0)
    }

    fn station_kpis(&self, codes: &[String], sites: &[SiteId]) -> Value {
        let mut out = Vec::new();
        for site in sites {
            let code = station_code(site);
            if !codes.contains(&code) {
                continue;
            }
            let Some(plant) = self.shared.world.site(site) else { continue };
            let inverters: Vec<_> = self
                .devices_of(site)
                .iter()
                .filter_map(|d| self.shared.world.inverter(&d.id))
                .collect();
            let online = inverters.iter().filter(|i| i.online).count();
            let health = match online {
                0 => 1,
                n if n == inverters.len() => 3,
                _ => 2,
            };
            let total: f64 = inverters.iter().map(|i| i.lifetime_kwh).sum();
            let local = plant.at + chrono::Duration::minutes(i64::from(plant.utc_offset_minutes));
            let day = i64::from(local.num_days_from_ce());
            let month = i64::from(local.year()) * 12 + i64::from(local.month0());
            let day_power = self.since_period_start(format!("{code}/day"), day, total);
            let month_power = self.since_period_start(format!("{code}/month"), month, total);
            out.push(json!({
                "stationCode": code,
                "dataItemMap": {
                    "real_health_state": health,
                    "day_power": round(day_power, 2),
                    "month_power": round(month_power, 2),
                    "total_power": round(total, 2),
                    "day_income": null,
                    "total_income": null
                }
            }));
        }
        Value::Array(out)
    }

    fn dev_list(&self, codes: &[String], sites: &[SiteId]) -> Value {
        let mut out = Vec::new();
        for site in sites {
            let code = station_code(site);
            if !codes.contains(&code) {
                continue;
            }
            for d in self.devices_of(site) {
                let Some(key) = device_key(&d.id, d.kind) else { continue };
                let (name, inv_type) = match d.kind {
                    DeviceKind::Inverter => {
                        (self.shared.world.inverter(&d.id).map(|i| i.name), Some("SUN2000-6KTL-L1"))
                    }
                    DeviceKind::Battery => (self.shared.world.battery(&d.id).map(|b| b.name), None),
                    _ => (self.shared.world.meter(&d.id).map(|m| m.name), None),
                };
                let Ok(id) = key.dev_id.parse::<u64>() else { continue };
                out.push(json!({
                    "id": id,
                    "devName": name.unwrap_or_default(),
                    "devTypeId": key.dev_type.id(),
                    "esnCode": esn(&d.id, d.kind),
                    "stationCode": code,
                    "invType": inv_type,
                    "softwareVersion": "V100R001C00SPC135",
                    "optimizerNumber": if d.kind == DeviceKind::Inverter { json!(0) } else { Value::Null },
                    "longitude": null,
                    "latitude": null
                }));
            }
        }
        Value::Array(out)
    }

    fn dev_kpis(&self, ids: &[String], type_id: i64, sites: &[SiteId]) -> Value {
        let mut out = Vec::new();
        for site in sites {
            for d in self.devices_of(site) {
                let Some(key) = device_key(&d.id, d.kind) else { continue };
                if i64::from(key.dev_type.id()) != type_id || !ids.contains(&key.dev_id) {
                    continue;
                }
                let Some(map) = self.kpi_map(&d) else { continue };
                let Ok(id) = key.dev_id.parse::<u64>() else { continue };
                out.push(json!({ "devId": id, "sn": esn(&d.id, d.kind), "dataItemMap": map }));
            }
        }
        Value::Array(out)
    }

    fn kpi_map(&self, d: &DeviceInfo) -> Option<Value> {
        let world = &self.shared.world;
        match d.kind {
            DeviceKind::Inverter => {
                let i = world.inverter(&d.id)?;
                if !i.online {
                    return Some(json!({
                        "active_power": null, "mppt_power": null, "day_cap": null,
                        "total_cap": null, "efficiency": null, "temperature": null,
                        "run_state": 0, "inverter_state": null, "elec_freq": null
                    }));
                }
                let site = world.site(&d.site)?;
                let kw = i.production_w / 1000.0;
                let producing = i.production_w > 0.0;
                let local = site.at + chrono::Duration::minutes(i64::from(site.utc_offset_minutes));
                let day = self.since_period_start(
                    format!("{}/day", d.id),
                    i64::from(local.num_days_from_ce()),
                    i.lifetime_kwh,
                );
                let amps = i.production_w / (3.0 * 230.0);
                let load = if i.capacity_w > 0.0 { i.production_w / i.capacity_w } else { 0.0 };
                Some(json!({
                    "active_power": round(kw, 3),
                    "mppt_power": round(if producing { kw / 0.98 } else { 0.0 }, 3),
                    "day_cap": round(day, 2),
                    "total_cap": round(i.lifetime_kwh, 2),
                    "efficiency": if producing { 98.0 } else { 0.0 },
                    "temperature": round(site.outdoor_c + 5.0 + 20.0 * load, 1),
                    "run_state": 1,
                    "inverter_state": if producing { 512 } else { 40960 },
                    "elec_freq": 50.0,
                    "power_factor": 1.0,
                    "a_u": 230.1, "b_u": 229.8, "c_u": 230.4,
                    "a_i": round(amps, 2), "b_i": round(amps, 2), "c_i": round(amps, 2),
                    "pv1_u": if producing { 360.0 } else { 0.0 },
                    "pv1_i": round(if producing { i.production_w / 0.98 / 360.0 } else { 0.0 }, 2)
                }))
            }
            DeviceKind::Battery => {
                let b = world.battery(&d.id)?;
                if !b.online {
                    return Some(json!({
                        "battery_soc": null, "battery_soh": null, "ch_discharge_power": null,
                        "max_charge_power": null, "max_discharge_power": null,
                        "charge_cap": null, "discharge_cap": null, "battery_status": 0,
                        "ch_discharge_model": null, "busbar_u": null, "run_state": 0
                    }));
                }
                let power = round(b.power_w, 1);
                Some(json!({
                    "battery_soc": round(b.soc_pct, 1),
                    "battery_soh": 100.0,
                    "ch_discharge_power": power,
                    "max_charge_power": round(b.max_charge_w, 0),
                    "max_discharge_power": round(b.max_discharge_w, 0),
                    "charge_cap": round(b.charged_kwh, 2),
                    "discharge_cap": round(b.discharged_kwh, 2),
                    "battery_status": if power == 0.0 { 1 } else { 2 },
                    "ch_discharge_model": mode_code(b.mode),
                    "busbar_u": round(380.0 + b.soc_pct * 0.4, 1),
                    "run_state": 1
                }))
            }
            _ => {
                let m = world.meter(&d.id)?;
                if !m.online {
                    return Some(json!({
                        "active_power": null, "meter_u": null, "meter_i": null,
                        "grid_frequency": null, "power_factor": null, "active_cap": null,
                        "reverse_active_cap": null, "meter_status": 0, "run_state": 0
                    }));
                }
                // FusionSolar's power sensor: positive while feeding in (exporting).
                let feed_in = -m.power_w;
                Some(json!({
                    "active_power": round(feed_in, 1),
                    "meter_u": 230.2,
                    "meter_i": round(m.power_w.abs() / (3.0 * 230.2), 2),
                    "grid_frequency": 50.0,
                    "power_factor": 0.99,
                    "active_cap": round(m.export_kwh, 2),
                    "reverse_active_cap": round(m.import_kwh, 2),
                    "meter_status": 1,
                    "run_state": 1,
                    "active_power_a": round(feed_in / 3.0, 1),
                    "active_power_b": round(feed_in / 3.0, 1),
                    "active_power_c": round(feed_in / 3.0, 1)
                }))
            }
        }
    }
}

impl SimState {
    /// Whether `user` may call `interface` now; records the call when it may.
    fn limit(&mut self, user: &str, interface: &str, now: DateTime<Utc>) -> bool {
        let Some(window) = self.rate_window else { return true };
        let window = chrono::Duration::from_std(window).unwrap_or(chrono::Duration::MAX);
        let key = (user.to_owned(), interface.to_owned());
        if let Some(last) = self.last_call.get(&key)
            && now - *last < window
        {
            return false;
        }
        self.last_call.insert(key, now);
        true
    }
}

async fn handle(
    State(sim): State<HuaweiSim>,
    Path(interface): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let fault = sim.active_fault();
    let clock = sim.shared.world.clock();
    match &fault {
        Some(Fault::RateLimit { retry_after }) => {
            let now = sim.shared.world.now();
            let mut reply = failure(
                fail_code::TOO_FREQUENT,
                "ACCESS_FREQUENCY_IS_TOO_HIGH",
                json!({ "currentTime": millis(now) }),
            );
            reply.headers.push((header::RETRY_AFTER, retry_after.as_secs().to_string()));
            return reply.into_response();
        }
        Some(Fault::ServerError { status }) => {
            let status = StatusCode::from_u16(*status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return error_page(status).into_response();
        }
        Some(Fault::Outage) => return error_page(StatusCode::SERVICE_UNAVAILABLE).into_response(),
        Some(Fault::Timeout) => {
            tokio::time::sleep(TIMEOUT_HANG).await;
            return error_page(StatusCode::GATEWAY_TIMEOUT).into_response();
        }
        Some(Fault::Malformed) => return login_page().into_response(),
        Some(f @ Fault::Hang { .. }) => {
            if let Some(wait) = f.hang_real(clock.as_ref()) {
                tokio::time::sleep(wait).await;
            }
        }
        Some(Fault::Truncated | Fault::RevokeTokens) | None => {}
    }
    let mut reply = sim.answer(&interface, &headers, &body);
    if fault == Some(Fault::Truncated) {
        let keep = reply.body.len() / 2;
        reply.body.truncate(keep);
    }
    reply.into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_and_distinct() {
        let inv = DeviceId::new("inv-000003");
        let bat = DeviceId::new("bat-000003");
        assert_eq!(dev_id(&inv, DeviceKind::Inverter), "1000000010000003");
        assert_eq!(dev_id(&bat, DeviceKind::Battery), "1000000020000003");
        assert_eq!(station_code(&SiteId::new("site-000012")), "NE=33554012");
        let key = device_key(&inv, DeviceKind::Inverter).unwrap();
        assert_eq!(key.to_string(), "38:1000000010000003");
        assert!(device_key(&DeviceId::new("veh-000001"), DeviceKind::Vehicle).is_none());
        assert_eq!(serial("weird"), serial("weird"));
        assert!(serial("weird") < 1_000_000);
        assert_eq!(mode_code(BatteryMode::SelfReliance), 4);
        assert_eq!(round(-0.0001, 2), 0.0);
        assert!(round(-0.0001, 2).is_sign_positive());
    }

    #[test]
    fn login_has_no_secret_in_debug() {
        let login = HuaweiLogin { user_name: "u".into(), system_code: "secret".into() };
        assert!(!format!("{login:?}").contains("secret"));
    }
}
