//! SolarEdge's Monitoring API, simulated on the shared [`World`] (feature `sim`).
//!
//! [`SolarEdgeSim::router`] answers SolarEdge's real paths, below the mount prefix
//! ([`crate::SIM_PREFIX`], `/solaredge`, in a `SimHost`):
//!
//! | path | answer |
//! |---|---|
//! | `GET /sites/list?size=&startIndex=` | `{"sites":{"count","site":[...]}}`, 100 a page at most |
//! | `GET /site/{id}/details` | `{"details":{...}}` |
//! | `GET /site/{id}/overview` | `{"overview":{...}}`: W and Wh |
//! | `GET /sites/{id},{id},.../overview` | `{"sitesOverviews":{"count","siteEnergyList":[{"siteId","siteOverview"}]}}`, 100 sites at most |
//! | `GET /site/{id}/currentPowerFlow` | `{"siteCurrentPowerFlow":{...}}`: unsigned kW, direction in `connections` |
//! | `GET /site/{id}/storageData?startTime=&endTime=[&serials=]` | `{"storageData":{"batteryCount","batteries":[...]}}`, window at most a week |
//!
//! What the world looks like through SolarEdge: a world site linked to an account (see
//! [`SolarEdgeSim::create_account`]) is a SolarEdge site with a 7-digit id. Its devices of
//! vendor [`WORLD_VENDOR`] (`"solaredge"`) show up: inverters as the site's `PV` node and
//! overview (all of them summed), the first meter as the `GRID` node (the site's grid
//! power), batteries as the `STORAGE` node (summed) and one `storageData` battery each,
//! with the serial number [`battery_serial`]. `LOAD` is the consumption SolarEdge infers
//! (grid + PV − storage). A device that is offline in the world makes its node `Disabled`
//! (and stops its telemetry and the overview's `lastUpdateTime`). Times are written in the
//! site's local time, in its IANA zone (`location.timeZone`; a site whose zone chrono-tz does
//! not know is shown in `Etc/GMT±h` of its fixed offset).
//!
//! Authentication: the `api_key` query parameter. An unknown or revoked key is a 401
//! `application/problem+json` ("Unauthorized - Authentication Failed"); a site the key does
//! not cover is a 403.
//!
//! Limits, as SolarEdge publishes them: 300 requests a day per key and 300 per site (a bulk
//! call counts once for each of its sites; the day is the UTC day of the world's clock), and
//! 3 concurrent requests (counted per key: `SimHost` does not tell the simulator the client's
//! address), each answered 429 beyond, **without** `Retry-After`, as SolarEdge does.
//!
//! Faults (`world.faults()` for [`FAULT_VENDOR`] `"SOLAREDGE"`, or [`WORLD_VENDOR`]):
//!
//! | fault | rendering |
//! |---|---|
//! | `RateLimit{retry_after}` | 429 problem JSON with `Retry-After` (whole seconds, rounded up) |
//! | `ServerError{status}` | that status with a problem JSON body |
//! | `Outage` | 503 with a load balancer's HTML page |
//! | `Hang{duration}` | waits `duration` of clock time (converted to real time), then answers |
//! | `Timeout` | holds the request [`TIMEOUT_HANG`] of real time, then 504 |
//! | `Malformed` | 200 with an HTML maintenance page instead of JSON |
//! | `Truncated` | the right answer cut in half |
//! | `RevokeTokens` | on the next request, every API key is revoked (401 from then on) |

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeDelta, Utc};
use chrono_tz::Tz;
use oemgate_sim::rng::{hash, hash_str};
use oemgate_sim::{
    BatteryState, DeviceId, DeviceKind, Fault, InverterState, MeterState, SiteId, SiteState,
    TIMEOUT_HANG, World,
};
use serde_json::{Value, json};

use crate::map::{LOCAL_TIME_FORMAT, format_local};
use crate::{DAILY_REQUESTS, MAX_BULK_SITES, MAX_CONCURRENT, SITES_PAGE_SIZE};

/// The vendor name of SolarEdge devices in the world.
pub const WORLD_VENDOR: &str = "solaredge";

/// The vendor name faults are set under (`world.faults().set(FAULT_VENDOR, ..)`); faults set
/// under [`WORLD_VENDOR`] apply too.
pub const FAULT_VENDOR: &str = "SOLAREDGE";

/// The longest `storageData` window SolarEdge accepts.
pub const MAX_STORAGE_WINDOW: TimeDelta = TimeDelta::days(7);

/// What a user receives when linking a simulated SolarEdge account: the API key to paste,
/// and (for information) the SolarEdge ids of the sites it covers. `Debug` hides the key.
#[derive(Clone, PartialEq, Eq)]
pub struct SimAccount {
    /// The account's API key (what [`crate::SolarEdgeAdapter::link_api_key`] takes).
    pub api_key: String,
    /// The SolarEdge site ids the key covers, in the order of the world sites given.
    pub site_ids: Vec<String>,
}

impl fmt::Debug for SimAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimAccount")
            .field("api_key", &"<redacted>")
            .field("site_ids", &self.site_ids)
            .finish()
    }
}

/// The serial number SolarEdge reports for a world battery.
pub fn battery_serial(device: &DeviceId) -> String {
    format!("7E{:010X}", hash_str(device.as_str()) & 0xFF_FFFF_FFFF)
}

#[derive(Debug)]
struct KeyEntry {
    account_id: u64,
    sites: Vec<String>,
    revoked: bool,
}

#[derive(Debug, Default)]
struct SimState {
    keys: BTreeMap<String, KeyEntry>,
    /// SolarEdge site id -> world site.
    sites: BTreeMap<String, SiteId>,
    /// World site -> SolarEdge site id.
    se_ids: HashMap<SiteId, String>,
    /// Requests per day: `key:{api_key}` and `site:{id}`.
    usage: HashMap<String, (NaiveDate, u32)>,
    /// Requests in flight per key.
    inflight: HashMap<String, u32>,
    /// When each site's SolarEdge inverters last reported.
    pv_seen: HashMap<SiteId, DateTime<Utc>>,
    /// Lifetime production of each inverter when its account was created (for the period
    /// figures of the overview).
    baselines: HashMap<DeviceId, f64>,
    accounts: u64,
}

struct Inner {
    world: World,
    state: Mutex<SimState>,
}

/// SolarEdge's cloud over a [`World`]. Cheap to clone; clones share everything.
#[derive(Clone)]
pub struct SolarEdgeSim {
    inner: Arc<Inner>,
}

impl fmt::Debug for SolarEdgeSim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.lock();
        f.debug_struct("SolarEdgeSim")
            .field("accounts", &state.keys.len())
            .field("sites", &state.sites.len())
            .finish_non_exhaustive()
    }
}

/// One call, after routing.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Call {
    SitesList,
    Details(String),
    Overview(String),
    BulkOverview(Vec<String>),
    PowerFlow(String),
    StorageData(String),
}

impl Call {
    /// The sites the call touches (each counted once against its daily quota).
    fn sites(&self) -> Vec<String> {
        match self {
            Call::SitesList => Vec::new(),
            Call::Details(s) | Call::Overview(s) | Call::PowerFlow(s) | Call::StorageData(s) => {
                vec![s.clone()]
            }
            Call::BulkOverview(ids) => {
                let unique: BTreeSet<&String> = ids.iter().collect();
                unique.into_iter().cloned().collect()
            }
        }
    }
}

/// An answer before faults post-process it.
struct Answer {
    status: StatusCode,
    content_type: &'static str,
    body: String,
    retry_after: Option<u64>,
}

impl Answer {
    fn json(value: &Value) -> Self {
        Self {
            status: StatusCode::OK,
            content_type: "application/json;charset=UTF-8",
            body: value.to_string(),
            retry_after: None,
        }
    }

    fn problem(status: StatusCode, title: &str, detail: &str) -> Self {
        let body = json!({
            "type": "about:blank",
            "title": title,
            "status": status.as_u16(),
            "detail": detail,
        });
        Self {
            status,
            content_type: "application/problem+json",
            body: body.to_string(),
            retry_after: None,
        }
    }

    fn html(status: StatusCode, body: &str) -> Self {
        Self { status, content_type: "text/html", body: body.to_owned(), retry_after: None }
    }

    fn into_response(self) -> Response {
        let mut response = (self.status, Body::from(self.body)).into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(self.content_type));
        if let Some(secs) = self.retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

const OUTAGE_PAGE: &str = "<html>\r\n<head><title>503 Service Temporarily Unavailable</title></head>\r\n\
<body>\r\n<center><h1>503 Service Temporarily Unavailable</h1></center>\r\n</body>\r\n</html>\r\n";

const MAINTENANCE_PAGE: &str = "<!DOCTYPE html><html><head><title>SolarEdge</title></head>\
<body><h1>monitoring is under maintenance</h1></body></html>";

fn too_many(detail: &str) -> Answer {
    Answer::problem(StatusCode::TOO_MANY_REQUESTS, "Too Many Requests", detail)
}

fn unauthorized() -> Answer {
    Answer::problem(
        StatusCode::UNAUTHORIZED,
        "Unauthorized - Authentication Failed",
        "Invalid or missing api_key",
    )
}

fn bad_request(detail: &str) -> Answer {
    Answer::problem(StatusCode::BAD_REQUEST, "Bad Request", detail)
}

/// Rounds to `digits` decimals, turning -0.0 into 0.0.
fn round(x: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (x * f).round() / f + 0.0
}

/// A percentage as SolarEdge writes `chargeLevel`: a whole number.
fn percent(level: f64) -> i64 {
    // Clamped to 0..=100 first, so the cast is exact.
    #[allow(clippy::cast_possible_truncation)]
    let whole = level.clamp(0.0, 100.0).round() as i64;
    whole
}

/// The zone a world site's times are shown in.
fn site_zone(state: &SiteState) -> Tz {
    if let Ok(tz) = state.timezone.trim().parse::<Tz>() {
        return tz;
    }
    let minutes = state.utc_offset_minutes;
    if minutes % 60 == 0 {
        // Etc/GMT zones have the POSIX sign: Etc/GMT-1 is UTC+1.
        let name = match -minutes / 60 {
            0 => "Etc/GMT".to_owned(),
            h if h > 0 => format!("Etc/GMT+{h}"),
            h => format!("Etc/GMT{h}"),
        };
        if let Ok(tz) = name.parse::<Tz>() {
            return tz;
        }
    }
    Tz::UTC
}

/// The SolarEdge devices of one site, read at the same instant.
struct SiteView {
    se_id: String,
    state: SiteState,
    tz: Tz,
    inverters: Vec<InverterState>,
    batteries: Vec<(String, BatteryState)>,
    meter: Option<MeterState>,
}

impl SiteView {
    fn pv_online(&self) -> bool {
        self.inverters.iter().any(|i| i.online)
    }

    fn pv_w(&self) -> f64 {
        self.inverters.iter().filter(|i| i.online).map(|i| i.production_w.max(0.0)).sum()
    }

    fn storage_online(&self) -> bool {
        self.batteries.iter().any(|(_, b)| b.online)
    }

    fn storage_w(&self) -> f64 {
        self.batteries.iter().filter(|(_, b)| b.online).map(|(_, b)| b.power_w).sum()
    }

    fn local(&self, t: DateTime<Utc>) -> String {
        format_local(t, self.tz)
    }

    fn local_date(&self, t: DateTime<Utc>) -> String {
        t.with_timezone(&self.tz).format("%Y-%m-%d").to_string()
    }
}

impl SolarEdgeSim {
    /// SolarEdge's cloud over `world`, with no accounts yet.
    pub fn new(world: World) -> Self {
        Self { inner: Arc::new(Inner { world, state: Mutex::new(SimState::default()) }) }
    }

    /// The world.
    pub fn world(&self) -> &World {
        &self.inner.world
    }

    fn lock(&self) -> MutexGuard<'_, SimState> {
        // Every mutation is a single insert or update: a poisoned state is still consistent.
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Creates a SolarEdge account holding the world `sites` and returns what the user gets
    /// to link it: a fresh API key (32 upper-case letters and digits, like SolarEdge's) and
    /// the SolarEdge ids of the sites. A world site keeps its SolarEdge id across accounts.
    pub fn create_account(&self, sites: &[SiteId]) -> SimAccount {
        let seed = self.inner.world.seed();
        let mut baselines = Vec::new();
        for site in sites {
            for info in self.inner.world.devices_of_site(site) {
                if info.vendor == WORLD_VENDOR
                    && info.kind == DeviceKind::Inverter
                    && let Some(inv) = self.inner.world.inverter(&info.id)
                {
                    baselines.push((info.id, inv.lifetime_kwh));
                }
            }
        }
        let mut state = self.lock();
        state.accounts += 1;
        let account_id = state.accounts;
        let mut api_key = String::new();
        let mut round = 0u64;
        while api_key.is_empty() || state.keys.contains_key(&api_key) {
            api_key = (0..32u64)
                .map(|i| {
                    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
                    let h = hash(&[seed, 0x5E_0A11, account_id, round, i]);
                    // The modulo keeps the index below 36.
                    #[allow(clippy::cast_possible_truncation)]
                    let index = (h % ALPHABET.len() as u64) as usize;
                    char::from(ALPHABET[index])
                })
                .collect();
            round += 1;
        }
        let mut site_ids = Vec::new();
        for site in sites {
            let id = match state.se_ids.get(site) {
                Some(id) => id.clone(),
                None => {
                    let digits: String =
                        site.as_str().chars().filter(char::is_ascii_digit).collect();
                    let mut n = 3_100_000 + digits.parse::<u64>().unwrap_or(0) % 800_000;
                    while state.sites.contains_key(&n.to_string()) {
                        n += 1;
                    }
                    let id = n.to_string();
                    state.sites.insert(id.clone(), site.clone());
                    state.se_ids.insert(site.clone(), id.clone());
                    id
                }
            };
            if !site_ids.contains(&id) {
                site_ids.push(id);
            }
        }
        for (device, lifetime) in baselines {
            state.baselines.entry(device).or_insert(lifetime);
        }
        state.keys.insert(
            api_key.clone(),
            KeyEntry { account_id, sites: site_ids.clone(), revoked: false },
        );
        SimAccount { api_key, site_ids }
    }

    /// Revokes one API key (the user deleted it in the portal). Returns whether it existed.
    pub fn revoke_key(&self, api_key: &str) -> bool {
        let mut state = self.lock();
        match state.keys.get_mut(api_key) {
            Some(entry) => {
                entry.revoked = true;
                true
            }
            None => false,
        }
    }

    /// Revokes every API key.
    pub fn revoke_all(&self) {
        for entry in self.lock().keys.values_mut() {
            entry.revoked = true;
        }
    }

    /// The SolarEdge id of a world site, once an account holds it.
    pub fn site_id(&self, site: &SiteId) -> Option<String> {
        self.lock().se_ids.get(site).cloned()
    }

    /// Requests counted today against an API key's daily quota.
    pub fn requests_today_for_key(&self, api_key: &str) -> u32 {
        self.usage(&format!("key:{api_key}"))
    }

    /// Requests counted today against a site's daily quota.
    pub fn requests_today_for_site(&self, site_id: &str) -> u32 {
        self.usage(&format!("site:{site_id}"))
    }

    fn usage(&self, scope: &str) -> u32 {
        let today = self.inner.world.now().date_naive();
        self.lock().usage.get(scope).filter(|(day, _)| *day == today).map_or(0, |(_, n)| *n)
    }

    /// The router (stateful; clones share the simulator). Mount it under
    /// [`crate::SIM_PREFIX`].
    pub fn router(&self) -> Router {
        Router::new()
            .route("/sites/list", get(sites_list))
            .route("/site/{id}/details", get(details))
            .route("/site/{id}/overview", get(overview))
            .route("/sites/{ids}/overview", get(bulk_overview))
            .route("/site/{id}/currentPowerFlow", get(power_flow))
            .route("/site/{id}/storageData", get(storage_data))
            .fallback(not_found)
            .with_state(self.clone())
    }

    // ------------------------------------------------------------ the request pipeline

    /// Revocation, the faults a front end answers at once, authentication, a concurrency
    /// slot (held while a `Hang` or `Timeout` fault keeps the request waiting, and freed when
    /// the client gives up), the daily quotas, then the call itself; `Malformed` and
    /// `Truncated` spoil the answer last.
    async fn serve(&self, call: Call, query: &HashMap<String, String>) -> Response {
        let world = &self.inner.world;
        let faults = world.faults();
        if faults.take_revocation(FAULT_VENDOR) | faults.take_revocation(WORLD_VENDOR) {
            self.revoke_all();
        }
        let fault = faults.active(FAULT_VENDOR).or_else(|| faults.active(WORLD_VENDOR));
        match &fault {
            Some(Fault::RateLimit { retry_after }) => {
                let mut answer = too_many("Too many requests, try again later");
                let secs = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
                answer.retry_after = Some(secs);
                return answer.into_response();
            }
            Some(Fault::ServerError { status }) => {
                let status = StatusCode::from_u16(*status)
                    .ok()
                    .filter(StatusCode::is_server_error)
                    .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                let title = status.canonical_reason().unwrap_or("Server Error");
                return Answer::problem(status, title, "Internal error, please try again later")
                    .into_response();
            }
            Some(Fault::Outage) => {
                return Answer::html(StatusCode::SERVICE_UNAVAILABLE, OUTAGE_PAGE).into_response();
            }
            _ => {}
        }
        let (key, sites) = match self.authorize(&call, query) {
            Ok(found) => found,
            Err(answer) => return answer.into_response(),
        };
        let Some(_slot) = self.acquire(&key) else {
            return too_many("Too many concurrent requests").into_response();
        };
        match &fault {
            Some(f @ Fault::Hang { .. }) => {
                if let Some(wait) = f.hang_real(world.clock().as_ref()) {
                    tokio::time::sleep(wait).await;
                }
            }
            Some(Fault::Timeout) => {
                tokio::time::sleep(TIMEOUT_HANG).await;
                return Answer::problem(StatusCode::GATEWAY_TIMEOUT, "Gateway Timeout", "")
                    .into_response();
            }
            _ => {}
        }
        let answer = match self.count(&key, &sites) {
            Err(answer) => answer,
            Ok(()) => match self.route(&call, &key, query) {
                Ok(value) => Answer::json(&value),
                Err(answer) => answer,
            },
        };
        let answer = match fault {
            Some(Fault::Malformed) => Answer::html(StatusCode::OK, MAINTENANCE_PAGE),
            Some(Fault::Truncated) => {
                let mut cut = answer.body.len() / 2;
                while !answer.body.is_char_boundary(cut) {
                    cut -= 1;
                }
                Answer { body: answer.body[..cut].to_owned(), ..answer }
            }
            _ => answer,
        };
        answer.into_response()
    }

    /// The request's key and the sites it touches, or the 401 / 403 SolarEdge answers.
    fn authorize(
        &self,
        call: &Call,
        query: &HashMap<String, String>,
    ) -> Result<(String, Vec<String>), Answer> {
        let Some(key) = query.get("api_key").map(|k| k.trim().to_owned()) else {
            return Err(unauthorized());
        };
        let sites = call.sites();
        let state = self.lock();
        let Some(entry) = state.keys.get(&key).filter(|e| !e.revoked) else {
            return Err(unauthorized());
        };
        if let Some(foreign) = sites.iter().find(|s| !entry.sites.contains(s)) {
            return Err(Answer::problem(
                StatusCode::FORBIDDEN,
                "Forbidden",
                &format!("Site {foreign} is not accessible with this api_key"),
            ));
        }
        drop(state);
        Ok((key, sites))
    }

    fn acquire(&self, key: &str) -> Option<Slot> {
        let mut state = self.lock();
        let n = state.inflight.entry(key.to_owned()).or_insert(0);
        if *n >= MAX_CONCURRENT {
            return None;
        }
        *n += 1;
        Some(Slot { sim: self.clone(), key: key.to_owned() })
    }

    /// Counts the request against the key's and each site's daily quota, or refuses it.
    fn count(&self, key: &str, sites: &[String]) -> Result<(), Answer> {
        let today = self.inner.world.now().date_naive();
        let mut state = self.lock();
        let scopes: Vec<String> = std::iter::once(format!("key:{key}"))
            .chain(sites.iter().map(|s| format!("site:{s}")))
            .collect();
        let used = |state: &SimState, scope: &str| {
            state.usage.get(scope).filter(|(day, _)| *day == today).map_or(0, |(_, n)| *n)
        };
        if scopes.iter().any(|s| used(&state, s) >= DAILY_REQUESTS) {
            return Err(too_many("Daily request limit exceeded"));
        }
        for scope in scopes {
            let n = used(&state, &scope) + 1;
            state.usage.insert(scope, (today, n));
        }
        Ok(())
    }

    fn route(
        &self,
        call: &Call,
        key: &str,
        query: &HashMap<String, String>,
    ) -> Result<Value, Answer> {
        match call {
            Call::SitesList => self.sites_list(key, query),
            Call::Details(id) => Ok(json!({ "details": self.site_json(&self.view(id)?) })),
            Call::Overview(id) => Ok(json!({ "overview": self.overview_json(&self.view(id)?) })),
            Call::BulkOverview(ids) => {
                let mut list = Vec::new();
                for id in ids {
                    let view = self.view(id)?;
                    list.push(json!({
                        "siteId": id.parse::<u64>().unwrap_or_default(),
                        "siteOverview": self.overview_json(&view),
                    }));
                }
                Ok(json!({ "sitesOverviews": { "count": list.len(), "siteEnergyList": list } }))
            }
            Call::PowerFlow(id) => {
                Ok(json!({ "siteCurrentPowerFlow": power_flow_json(&self.view(id)?) }))
            }
            Call::StorageData(id) => self.storage_json(&self.view(id)?, query),
        }
    }

    // ------------------------------------------------------------ rendering the world

    fn view(&self, se_id: &str) -> Result<SiteView, Answer> {
        let not_found = || {
            Answer::problem(StatusCode::NOT_FOUND, "Not Found", &format!("Site {se_id} not found"))
        };
        let site = self.lock().sites.get(se_id).cloned().ok_or_else(not_found)?;
        let world = &self.inner.world;
        let state = world.site(&site).ok_or_else(not_found)?;
        let mut view = SiteView {
            se_id: se_id.to_owned(),
            tz: site_zone(&state),
            state,
            inverters: Vec::new(),
            batteries: Vec::new(),
            meter: None,
        };
        for info in world.devices_of_site(&site) {
            if info.vendor != WORLD_VENDOR {
                continue;
            }
            match info.kind {
                DeviceKind::Inverter => view.inverters.extend(world.inverter(&info.id)),
                DeviceKind::Battery => {
                    if let Some(b) = world.battery(&info.id) {
                        view.batteries.push((battery_serial(&info.id), b));
                    }
                }
                DeviceKind::Meter if view.meter.is_none() => view.meter = world.meter(&info.id),
                _ => {}
            }
        }
        if view.pv_online() {
            self.lock().pv_seen.insert(site, view.state.at);
        }
        Ok(view)
    }

    fn site_json(&self, view: &SiteView) -> Value {
        let (account_id, started) = {
            let state = self.lock();
            let account = state
                .keys
                .values()
                .filter(|e| e.sites.contains(&view.se_id))
                .map(|e| e.account_id)
                .min()
                .unwrap_or(0);
            (account, self.inner.world.started_at())
        };
        let peak_kw: f64 = view.inverters.iter().map(|i| i.capacity_w / 1000.0).sum();
        let id = view.se_id.parse::<u64>().unwrap_or_default();
        json!({
            "id": id,
            "name": view.state.name,
            "accountId": account_id,
            "status": "Active",
            "peakPower": round(peak_kw, 2),
            "lastUpdateTime": view.local_date(view.state.at),
            "installationDate": view.local_date(started),
            "ptoDate": null,
            "notes": "",
            "type": "Optimizers & Inverters",
            "location": {
                "country": "",
                "city": "",
                "address": "",
                "address2": "",
                "zip": "",
                "timeZone": view.tz.name(),
                "countryCode": "",
            },
            "primaryModule": { "manufacturerName": "", "modelName": "", "maximumPower": 0.0 },
            "uris": {
                "DETAILS": format!("/site/{id}/details"),
                "DATA_PERIOD": format!("/site/{id}/dataPeriod"),
                "OVERVIEW": format!("/site/{id}/overview"),
            },
            "publicSettings": { "isPublic": false },
        })
    }

    fn sites_list(&self, key: &str, query: &HashMap<String, String>) -> Result<Value, Answer> {
        let size = match query.get("size") {
            None => SITES_PAGE_SIZE,
            Some(s) => match s.trim().parse::<usize>() {
                Ok(n) if (1..=SITES_PAGE_SIZE).contains(&n) => n,
                _ => return Err(bad_request("size must be between 1 and 100")),
            },
        };
        let start = match query.get("startIndex") {
            None => 0,
            Some(s) => s.trim().parse::<usize>().map_err(|_| bad_request("bad startIndex"))?,
        };
        let ids = self.lock().keys.get(key).map(|e| e.sites.clone()).unwrap_or_default();
        let mut page = Vec::new();
        for id in ids.iter().skip(start).take(size) {
            page.push(self.site_json(&self.view(id)?));
        }
        Ok(json!({ "sites": { "count": ids.len(), "site": page } }))
    }

    fn overview_json(&self, view: &SiteView) -> Value {
        let (last_seen, baseline) = {
            let state = self.lock();
            let site = state.sites.get(&view.se_id).cloned();
            let seen = site.and_then(|s| state.pv_seen.get(&s).copied());
            let baseline: f64 = view
                .inverters
                .iter()
                .map(|i| state.baselines.get(&i.id).copied().unwrap_or(i.lifetime_kwh))
                .sum();
            (seen, baseline)
        };
        let lifetime_kwh: f64 = view.inverters.iter().map(|i| i.lifetime_kwh).sum();
        let since_wh = round((lifetime_kwh - baseline).max(0.0) * 1000.0, 0);
        let updated = if view.pv_online() {
            view.state.at
        } else {
            last_seen.unwrap_or_else(|| self.inner.world.started_at())
        };
        json!({
            "lastUpdateTime": view.local(updated),
            "lifeTimeData": { "energy": round(lifetime_kwh * 1000.0, 0), "revenue": 0.0 },
            "lastYearData": { "energy": since_wh },
            "lastMonthData": { "energy": since_wh },
            "lastDayData": { "energy": since_wh },
            "currentPower": { "power": round(view.pv_w(), 1) },
            "measuredBy": "INVERTER",
        })
    }

    fn storage_json(
        &self,
        view: &SiteView,
        query: &HashMap<String, String>,
    ) -> Result<Value, Answer> {
        let parse = |name: &str| {
            query
                .get(name)
                .and_then(|v| NaiveDateTime::parse_from_str(v.trim(), LOCAL_TIME_FORMAT).ok())
                .ok_or_else(|| {
                    bad_request(&format!("{name} is missing or not yyyy-MM-dd HH:mm:ss"))
                })
        };
        let start = parse("startTime")?;
        let end = parse("endTime")?;
        if end < start || end - start > MAX_STORAGE_WINDOW {
            return Err(bad_request(
                "the period between startTime and endTime must be at most one week",
            ));
        }
        let serials: Option<BTreeSet<String>> = query
            .get("serials")
            .map(|s| s.split(',').map(|p| p.trim().to_owned()).filter(|p| !p.is_empty()).collect());
        let now_local = view.state.at.with_timezone(&view.tz).naive_local();
        let in_window = start <= now_local && now_local <= end;
        let mut batteries = Vec::new();
        for (serial, b) in &view.batteries {
            if serials.as_ref().is_some_and(|s| !s.contains(serial)) {
                continue;
            }
            let mut telemetries = Vec::new();
            if b.online && in_window {
                telemetries.push(json!({
                    "timeStamp": view.local(b.at),
                    "power": round(b.power_w, 1),
                    "batteryState": 3,
                    "lifeTimeEnergyCharged": round(b.charged_kwh * 1000.0, 0),
                    "lifeTimeEnergyDischarged": round(b.discharged_kwh * 1000.0, 0),
                    "fullPackEnergyAvailable": round(b.capacity_kwh * 1000.0, 0),
                    "internalTemp": 24.5,
                    "ACGridCharging": 0.0,
                    "batteryPercentageState": round(b.soc_pct, 1),
                }));
            }
            batteries.push(json!({
                "nameplate": round(b.capacity_kwh * 1000.0, 0),
                "serialNumber": serial,
                "modelNumber": "BAT-10K1PS0B-01",
                "telemetryCount": telemetries.len(),
                "telemetries": telemetries,
            }));
        }
        Ok(json!({ "storageData": { "batteryCount": batteries.len(), "batteries": batteries } }))
    }
}

/// The current power flow of a site as SolarEdge draws it: unsigned kW per node, arrows in
/// `connections` (node names in SolarEdge's inconsistent case).
fn power_flow_json(view: &SiteView) -> Value {
    let kw = |w: f64| round(w / 1000.0, 2);
    let mut flow = serde_json::Map::new();
    flow.insert("updateRefreshRate".into(), json!(3));
    flow.insert("unit".into(), json!("kW"));
    let has_pv = !view.inverters.is_empty();
    let has_storage = !view.batteries.is_empty();
    let pv = if has_pv && view.pv_online() { kw(view.pv_w()) } else { 0.0 };
    let storage = if has_storage && view.storage_online() { kw(view.storage_w()) } else { 0.0 };
    let meter = view.meter.as_ref().filter(|m| m.online);
    let grid = meter.map_or(0.0, |m| kw(m.power_w));
    let load = meter.map(|m| kw((m.power_w + view.pv_w() - view.storage_w()).max(0.0)));
    let mut connections = Vec::new();
    let mut connect = |from: &str, to: &str| connections.push(json!({ "from": from, "to": to }));
    if pv > 0.0 && load.is_some_and(|l| l > 0.0) {
        connect("PV", "Load");
    }
    if storage > 0.0 {
        // Charged from the sun when it shines, else from the grid (or, without a meter to
        // say so, from "the house", as SolarEdge draws it).
        let source = if pv > 0.0 {
            "PV"
        } else if grid > 0.0 || meter.is_none() {
            "GRID"
        } else {
            "LOAD"
        };
        connect(source, "Storage");
    } else if storage < 0.0 {
        connect("STORAGE", "Load");
    }
    if grid < 0.0 {
        connect("LOAD", "Grid");
    } else if grid > 0.0 {
        connect("GRID", "Load");
    }
    flow.insert("connections".into(), Value::Array(connections));
    let active = |online: bool, value: f64| {
        if !online {
            "Disabled"
        } else if value != 0.0 {
            "Active"
        } else {
            "Idle"
        }
    };
    if let Some(m) = &view.meter {
        flow.insert(
            "GRID".into(),
            json!({ "status": active(m.online, grid), "currentPower": grid.abs() }),
        );
        if let Some(load) = load {
            flow.insert("LOAD".into(), json!({ "status": "Active", "currentPower": load }));
        }
    }
    if has_pv {
        flow.insert(
            "PV".into(),
            json!({ "status": active(view.pv_online(), pv), "currentPower": pv }),
        );
    }
    if has_storage {
        let online = view.storage_online();
        let status = if !online {
            "Disabled"
        } else if storage > 0.0 {
            "Charging"
        } else if storage < 0.0 {
            "Discharging"
        } else {
            "Idle"
        };
        let capacity: f64 = view.batteries.iter().map(|(_, b)| b.capacity_kwh).sum();
        let level = if capacity > 0.0 {
            view.batteries.iter().map(|(_, b)| b.soc_pct * b.capacity_kwh).sum::<f64>() / capacity
        } else {
            0.0
        };
        flow.insert(
            "STORAGE".into(),
            json!({
                "status": status,
                "currentPower": storage.abs(),
                "chargeLevel": percent(level),
                "critical": level < 10.0,
            }),
        );
    }
    Value::Object(flow)
}

/// A request slot of a key, released when dropped (also when the request is cancelled).
struct Slot {
    sim: SolarEdgeSim,
    key: String,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut state = self.sim.lock();
        if let Some(n) = state.inflight.get_mut(&self.key) {
            *n = n.saturating_sub(1);
        }
    }
}

// ---------------------------------------------------------------- handlers

type Params = Query<HashMap<String, String>>;

async fn sites_list(State(sim): State<SolarEdgeSim>, Query(q): Params) -> Response {
    sim.serve(Call::SitesList, &q).await
}

async fn details(
    State(sim): State<SolarEdgeSim>,
    Path(id): Path<String>,
    Query(q): Params,
) -> Response {
    sim.serve(Call::Details(id), &q).await
}

async fn overview(
    State(sim): State<SolarEdgeSim>,
    Path(id): Path<String>,
    Query(q): Params,
) -> Response {
    sim.serve(Call::Overview(id), &q).await
}

async fn bulk_overview(
    State(sim): State<SolarEdgeSim>,
    Path(ids): Path<String>,
    Query(q): Params,
) -> Response {
    let mut unique = BTreeSet::new();
    let ids: Vec<String> = ids
        .split(',')
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty() && unique.insert(s.clone()))
        .collect();
    if ids.is_empty() || ids.len() > MAX_BULK_SITES {
        return bad_request("a bulk call takes 1 to 100 site ids").into_response();
    }
    sim.serve(Call::BulkOverview(ids), &q).await
}

async fn power_flow(
    State(sim): State<SolarEdgeSim>,
    Path(id): Path<String>,
    Query(q): Params,
) -> Response {
    sim.serve(Call::PowerFlow(id), &q).await
}

async fn storage_data(
    State(sim): State<SolarEdgeSim>,
    Path(id): Path<String>,
    Query(q): Params,
) -> Response {
    sim.serve(Call::StorageData(id), &q).await
}

async fn not_found() -> Response {
    Answer::problem(StatusCode::NOT_FOUND, "Not Found", "No such resource").into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use oemgate_core::ManualClock;
    use oemgate_sim::{BatterySpec, InverterSpec, MeterSpec, SiteSpec, WorldConfig};

    fn sim() -> (SolarEdgeSim, SimAccount, SiteId) {
        let t0 = DateTime::parse_from_rfc3339("2026-04-15T10:00:00Z").unwrap().with_timezone(&Utc);
        let clock = Arc::new(ManualClock::new(t0));
        let world = World::new(7, clock, WorldConfig::default());
        let site = world.add_site(SiteSpec::default());
        let vendor = WORLD_VENDOR.to_owned();
        world
            .add_inverter(&site, InverterSpec { vendor: vendor.clone(), ..Default::default() })
            .unwrap();
        world.add_meter(&site, MeterSpec { vendor: vendor.clone(), ..Default::default() }).unwrap();
        world.add_battery(&site, BatterySpec { vendor, ..Default::default() }).unwrap();
        let sim = SolarEdgeSim::new(world);
        let account = sim.create_account(std::slice::from_ref(&site));
        (sim, account, site)
    }

    fn q(key: &str) -> HashMap<String, String> {
        HashMap::from([("api_key".to_owned(), key.to_owned())])
    }

    #[tokio::test]
    async fn concurrency_beyond_three_is_429() {
        let (sim, account, _) = sim();
        let slots: Vec<Slot> = (0..3).map(|_| sim.acquire(&account.api_key).unwrap()).collect();
        let r = sim.serve(Call::SitesList, &q(&account.api_key)).await;
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        assert!(r.headers().get(header::RETRY_AFTER).is_none());
        drop(slots);
        let r = sim.serve(Call::SitesList, &q(&account.api_key)).await;
        assert_eq!(r.status(), StatusCode::OK);
    }

    #[tokio::test]
    async fn hanging_requests_hold_their_slot_until_cancelled() {
        let (sim, account, _) = sim();
        let hang = Fault::Hang { duration: std::time::Duration::from_secs(3600) };
        sim.world().faults().set(FAULT_VENDOR, hang, None);
        let hung: Vec<_> = (0..3)
            .map(|_| {
                let (sim, key) = (sim.clone(), account.api_key.clone());
                tokio::spawn(async move { sim.serve(Call::SitesList, &q(&key)).await })
            })
            .collect();
        while sim.lock().inflight.get(&account.api_key).copied().unwrap_or(0) < 3 {
            tokio::task::yield_now().await;
        }
        let r = sim.serve(Call::SitesList, &q(&account.api_key)).await;
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        // The clients give up: their slots are free again.
        for task in hung {
            task.abort();
            assert!(task.await.unwrap_err().is_cancelled());
        }
        sim.world().faults().clear(FAULT_VENDOR);
        let r = sim.serve(Call::SitesList, &q(&account.api_key)).await;
        assert_eq!(r.status(), StatusCode::OK);
    }

    #[tokio::test]
    async fn daily_quota_per_key_and_site() {
        let (sim, account, _) = sim();
        let id = account.site_ids[0].clone();
        for _ in 0..DAILY_REQUESTS {
            let r = sim.serve(Call::PowerFlow(id.clone()), &q(&account.api_key)).await;
            assert_eq!(r.status(), StatusCode::OK);
        }
        assert_eq!(sim.requests_today_for_site(&id), DAILY_REQUESTS);
        let r = sim.serve(Call::PowerFlow(id.clone()), &q(&account.api_key)).await;
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        assert!(r.headers().get(header::RETRY_AFTER).is_none());
        // The key is spent too (the site list touches no site).
        let r = sim.serve(Call::SitesList, &q(&account.api_key)).await;
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    }

    #[tokio::test]
    async fn keys_and_sites_are_checked() {
        let (sim, account, _) = sim();
        let r = sim.serve(Call::SitesList, &q("NOPE")).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(r.headers()[header::CONTENT_TYPE], "application/problem+json");
        let r = sim.serve(Call::Overview("3999999".into()), &q(&account.api_key)).await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        assert!(sim.revoke_key(&account.api_key));
        let r = sim.serve(Call::SitesList, &q(&account.api_key)).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }

    #[test]
    fn zones_for_unknown_names_use_the_offset() {
        let (sim, _, site) = sim();
        let mut state = sim.world().site(&site).unwrap();
        assert_eq!(site_zone(&state), chrono_tz::Europe::Oslo);
        state.timezone = "Atlantis/Capital".into();
        assert_eq!(site_zone(&state).name(), "Etc/GMT-1");
        state.utc_offset_minutes = -300;
        assert_eq!(site_zone(&state).name(), "Etc/GMT+5");
        state.utc_offset_minutes = 330;
        assert_eq!(site_zone(&state), Tz::UTC);
    }
}
