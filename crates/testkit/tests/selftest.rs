//! The suite against a small fake vendor that follows the spec: every check must pass. Then a
//! few deliberately broken variants of the same adapter: each must fail the check meant for
//! it, with a message that says why.
//!
//! The fake is Tesla-shaped (a vehicle cloud with home batteries) and calls itself "TESLA"
//! only because that is the one vendor name both the vehicle and the battery enums know. Its
//! world is a mutex-guarded struct rather than `oemgate_sim::World`, served through
//! oemgate-sim's `SimHost` like every real simulator; the wiring is the same.

// clippy.toml allows unwrap inside #[test] fns only; the fake is test code too.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, TimeZone, Utc};
use oemgate_core::{
    AccountRef, AdapterError, AdapterResult, BatteryApi, BatteryOperationMode, Clock, Command,
    CommandReceipt, Credentials, DailyQuota, DeviceRef, DeviceState, DiscoveredDevice, ErrorKind,
    ManualClock, Observation, QuotaScope, VehicleApi, VendorAdapter, VendorInfo, VendorLimits,
    VendorType,
};
use oemgate_sim::SimHost;
use oemgate_testkit::{
    AuthBehaviour, CommandCase, ConformanceTarget, Expectation, ExpectedDevice, Fault, Harness,
    ServerGuard, SimRequests, SleepCase, StartOptions, Tolerance, UnsupportedCase, VendorControl,
};
use serde::Deserialize;
use serde_json::{Value, json};

const VENDOR: &str = "TESLA";
const PREFIX: &str = "/fake";
const USER: &str = "user-alice";
const ACCOUNT: &str = "alice";
const LATENCY: Duration = Duration::from_secs(10);
const ACCESS_LIFETIME: chrono::Duration = chrono::Duration::hours(1);
const NO_IDLE: &str = "intervention-no-idle-mode";

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 15, 12, 0, 0).unwrap()
}

// ---------------------------------------------------------------- the world

#[derive(Clone, Debug)]
struct Car {
    owner: &'static str,
    asleep: bool,
    plugged: bool,
    charging: bool,
    level: f64,
    max_current: f64,
}

#[derive(Clone, Debug)]
struct Pack {
    owner: &'static str,
    site: &'static str,
    level: f64,
    rate_kw: f64,
    mode: BatteryOperationMode,
}

#[derive(Debug)]
enum Effect {
    Charging(String, bool),
    Mode(String, BatteryOperationMode),
}

#[derive(Debug)]
struct Cloud {
    clock: Arc<ManualClock>,
    cars: BTreeMap<String, Car>,
    packs: BTreeMap<String, Pack>,
    access: String,
    access_expires: DateTime<Utc>,
    refresh: String,
    revoked: bool,
    serial: u32,
    fault: Option<Fault>,
    pending: Vec<(DateTime<Utc>, Effect)>,
}

#[derive(Clone, Debug)]
struct World(Arc<Mutex<Cloud>>);

impl World {
    fn new(clock: Arc<ManualClock>) -> Self {
        let car = |owner, asleep, level| Car {
            owner,
            asleep,
            plugged: true,
            charging: false,
            level,
            max_current: 16.0,
        };
        let mut cars = BTreeMap::new();
        cars.insert("VIN0001".to_owned(), car(ACCOUNT, false, 55.0));
        cars.insert("VIN0002".to_owned(), car(ACCOUNT, true, 80.0));
        cars.insert("VIN9999".to_owned(), car("bob", false, 20.0));
        let mut packs = BTreeMap::new();
        let pack = Pack {
            owner: ACCOUNT,
            site: "site-1",
            level: 70.0,
            rate_kw: -1.5,
            mode: BatteryOperationMode::SelfReliance,
        };
        packs.insert("PW1".to_owned(), pack);
        let now = clock.now();
        Self(Arc::new(Mutex::new(Cloud {
            clock,
            cars,
            packs,
            access: "access-0".into(),
            access_expires: now + ACCESS_LIFETIME,
            refresh: "refresh-0".into(),
            revoked: false,
            serial: 0,
            fault: None,
            pending: Vec::new(),
        })))
    }

    /// The state, with due command effects applied.
    fn state(&self) -> MutexGuard<'_, Cloud> {
        let mut s = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let now = s.clock.now();
        let pending = std::mem::take(&mut s.pending);
        for (due, effect) in pending {
            if due > now {
                s.pending.push((due, effect));
                continue;
            }
            match effect {
                Effect::Charging(vin, on) => {
                    if let Some(car) = s.cars.get_mut(&vin) {
                        car.charging = on;
                    }
                }
                Effect::Mode(id, mode) => {
                    if let Some(pack) = s.packs.get_mut(&id) {
                        pack.mode = mode;
                    }
                }
            }
        }
        s
    }

    fn car(&self, vin: &str) -> Car {
        self.state().cars[vin].clone()
    }

    fn pack(&self, id: &str) -> Pack {
        self.state().packs[id].clone()
    }
}

// ---------------------------------------------------------------- the vendor's cloud

fn error(status: StatusCode, code: &str) -> Response {
    (status, axum::Json(json!({ "error": code }))).into_response()
}

async fn serve(
    State(world): State<World>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let fault = world.state().fault.clone();
    match fault {
        Some(Fault::RateLimit { retry_after }) => {
            let mut r = error(StatusCode::TOO_MANY_REQUESTS, "rate_limited");
            let value = retry_after.as_secs().to_string().parse().unwrap();
            r.headers_mut().insert("retry-after", value);
            return r;
        }
        Some(Fault::ServerError { status }) => {
            return error(StatusCode::from_u16(status).unwrap(), "internal");
        }
        Some(Fault::Outage) => return error(StatusCode::SERVICE_UNAVAILABLE, "down"),
        Some(Fault::Hang { duration }) => tokio::time::sleep(duration).await,
        Some(Fault::Timeout) => tokio::time::sleep(Duration::from_secs(3600)).await,
        Some(Fault::Malformed) => return (StatusCode::OK, "<html>oops</html>").into_response(),
        Some(Fault::RevokeTokens) => world.state().revoked = true,
        Some(Fault::Truncated) | None => {}
    }
    let response = route(&world, &method, uri.path(), &headers, &body);
    if fault == Some(Fault::Truncated) {
        let (parts, body) = response.into_parts();
        let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap();
        let cut = bytes.slice(..bytes.len() / 2);
        let mut parts = parts;
        parts.headers.remove(axum::http::header::CONTENT_LENGTH);
        return Response::from_parts(parts, axum::body::Body::from(cut));
    }
    response
}

fn route(world: &World, method: &Method, path: &str, headers: &HeaderMap, body: &[u8]) -> Response {
    let mut s = world.state();
    let now = s.clock.now();
    if method == Method::POST && path == "/oauth/token" {
        let form: BTreeMap<String, String> = serde_json::from_slice(body).unwrap_or_default();
        if s.revoked || form.get("refresh_token") != Some(&s.refresh) {
            return error(StatusCode::UNAUTHORIZED, "invalid_grant");
        }
        s.serial += 1;
        s.access = format!("access-{}", s.serial);
        s.refresh = format!("refresh-{}", s.serial);
        s.access_expires = now + ACCESS_LIFETIME;
        let answer =
            json!({ "access_token": s.access, "refresh_token": s.refresh, "expires_in": 3600 });
        return axum::Json(answer).into_response();
    }
    let bearer = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("");
    if s.revoked {
        return error(StatusCode::UNAUTHORIZED, "access_revoked");
    }
    if bearer.strip_prefix("Bearer ") != Some(s.access.as_str()) {
        return error(StatusCode::UNAUTHORIZED, "invalid_token");
    }
    if now >= s.access_expires {
        return error(StatusCode::UNAUTHORIZED, "token_expired");
    }
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match (method.as_str(), segments.as_slice()) {
        ("GET", ["devices"]) => {
            let mut devices = Vec::new();
            for (vin, car) in &s.cars {
                if car.owner == ACCOUNT {
                    devices.push(json!({ "type": "vehicle", "id": vin, "site": null }));
                }
            }
            for (id, pack) in &s.packs {
                if pack.owner == ACCOUNT {
                    devices.push(json!({ "type": "battery", "id": id, "site": pack.site }));
                }
            }
            axum::Json(json!({ "devices": devices })).into_response()
        }
        ("GET", ["vehicles", vin]) => match s.cars.get(*vin).filter(|c| c.owner == ACCOUNT) {
            None => error(StatusCode::NOT_FOUND, "no_such_vehicle"),
            Some(c) if c.asleep => {
                axum::Json(json!({ "vin": vin, "asleep": true })).into_response()
            }
            Some(c) => axum::Json(json!({
                "vin": vin, "asleep": false, "level": c.level, "plugged": c.plugged,
                "charging": c.charging, "max_current": c.max_current
            }))
            .into_response(),
        },
        ("POST", ["vehicles", vin, "charge"]) => {
            let Some(car) = s.cars.get(*vin).filter(|c| c.owner == ACCOUNT) else {
                return error(StatusCode::NOT_FOUND, "no_such_vehicle");
            };
            if car.asleep {
                return error(StatusCode::REQUEST_TIMEOUT, "asleep");
            }
            let Ok(body) = serde_json::from_slice::<Value>(body) else {
                return error(StatusCode::BAD_REQUEST, "bad_body");
            };
            let on = body.get("start").and_then(Value::as_bool).unwrap_or(false);
            s.pending.push((
                now + chrono::Duration::from_std(LATENCY).unwrap(),
                Effect::Charging((*vin).to_owned(), on),
            ));
            axum::Json(json!({ "ok": true })).into_response()
        }
        ("GET", ["batteries", id]) => match s.packs.get(*id).filter(|p| p.owner == ACCOUNT) {
            None => error(StatusCode::NOT_FOUND, "no_such_battery"),
            Some(p) => axum::Json(json!({
                "id": id, "site": p.site, "level": p.level, "rate_kw": p.rate_kw,
                "mode": p.mode.as_str()
            }))
            .into_response(),
        },
        ("POST", ["batteries", id, "mode"]) => {
            if s.packs.get(*id).is_none_or(|p| p.owner != ACCOUNT) {
                return error(StatusCode::NOT_FOUND, "no_such_battery");
            }
            let mode = serde_json::from_slice::<Value>(body)
                .ok()
                .and_then(|b| b.get("mode").and_then(Value::as_str).map(str::to_owned))
                .and_then(|m| m.parse::<BatteryOperationMode>().ok());
            let Some(mode) = mode else {
                return error(StatusCode::BAD_REQUEST, "bad_mode");
            };
            s.pending.push((
                now + chrono::Duration::from_std(LATENCY).unwrap(),
                Effect::Mode((*id).to_owned(), mode),
            ));
            axum::Json(json!({ "ok": true })).into_response()
        }
        _ => error(StatusCode::NOT_FOUND, "no_route"),
    }
}

// ---------------------------------------------------------------- the adapter

/// Ways to break the adapter, one per negative test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Sabotage {
    None,
    PerDeviceLimits,
    SendsUnsupported,
    PanicsOnBadBody,
    FlipsBatterySign,
    UndercountsRequests,
    LowPollCost,
    IgnoresOtherAccounts,
    ClaimsMaxCurrent,
}

#[derive(Deserialize)]
struct DeviceList {
    devices: Vec<ListedDevice>,
}

#[derive(Deserialize)]
struct ListedDevice {
    #[serde(rename = "type")]
    kind: String,
    id: String,
    site: Option<String>,
}

#[derive(Deserialize)]
struct CarData {
    vin: String,
    asleep: bool,
    level: Option<f64>,
    plugged: Option<bool>,
    charging: Option<bool>,
    max_current: Option<f64>,
}

#[derive(Deserialize)]
struct PackData {
    id: String,
    site: String,
    level: f64,
    rate_kw: f64,
    mode: String,
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    refresh_token: String,
    expires_in: i64,
}

struct FakeAdapter {
    http: reqwest::Client,
    base: String,
    clock: Arc<ManualClock>,
    timeout: Duration,
    info: VendorInfo,
    sabotage: Sabotage,
}

fn err(kind: ErrorKind, message: impl Into<String>) -> AdapterError {
    AdapterError::new(kind, VENDOR, message)
}

impl FakeAdapter {
    fn bearer<'a>(&self, account: &'a AccountRef) -> AdapterResult<&'a str> {
        let c = &account.credentials;
        if c.expires_at.is_some_and(|t| t <= self.clock.now()) {
            return Err(err(ErrorKind::AuthExpired, "access token expired"));
        }
        Ok(&c.access_token)
    }

    async fn send(&self, request: reqwest::RequestBuilder, what: &str) -> AdapterResult<Vec<u8>> {
        let response = request.timeout(self.timeout).send().await.map_err(|e| {
            err(ErrorKind::Transient, format!("{what}: request failed"))
                .with_source(e.without_url())
        })?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .map(Duration::from_secs);
        let body = response.bytes().await.map_err(|e| {
            err(ErrorKind::Transient, format!("{what}: body failed")).with_source(e.without_url())
        })?;
        let code = serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|v| v.get("error").and_then(Value::as_str).map(str::to_owned))
            .unwrap_or_default();
        let kind = match (status, code.as_str()) {
            (200..=299, _) => return Ok(body.to_vec()),
            (429, _) => {
                let e = err(ErrorKind::RateLimited, format!("{what}: rate limited"));
                return Err(match retry_after {
                    Some(after) => e.with_retry_after(after),
                    None => e,
                });
            }
            (401, "token_expired" | "invalid_token") => ErrorKind::AuthExpired,
            (401, _) => ErrorKind::Unauthorized,
            (404, _) => ErrorKind::NotFound,
            (408, _) => ErrorKind::DeviceAsleep,
            (400, _) => ErrorKind::Rejected,
            (500..=599, _) => ErrorKind::Transient,
            _ => ErrorKind::Protocol,
        };
        Err(err(kind, format!("{what}: HTTP {status} {code}")))
    }

    fn decode<T: serde::de::DeserializeOwned>(&self, body: &[u8], what: &str) -> AdapterResult<T> {
        serde_json::from_slice(body).map_err(|e| {
            if self.sabotage == Sabotage::PanicsOnBadBody {
                panic!("cannot parse {what}");
            }
            err(ErrorKind::Protocol, format!("{what}: bad body ({e})")).with_source(e)
        })
    }

    async fn get<T: serde::de::DeserializeOwned>(
        &self,
        account: &AccountRef,
        path: &str,
    ) -> AdapterResult<T> {
        let token = self.bearer(account)?;
        let body = self
            .send(self.http.get(format!("{}{path}", self.base)).bearer_auth(token), path)
            .await?;
        self.decode(&body, path)
    }

    async fn post(
        &self,
        account: &AccountRef,
        path: &str,
        body: Value,
    ) -> AdapterResult<CommandReceipt> {
        let token = self.bearer(account)?;
        let request = self.http.post(format!("{}{path}", self.base)).bearer_auth(token).json(&body);
        self.send(request, path).await?;
        Ok(CommandReceipt { vendor_action_id: None, requests: 1 })
    }

    fn requests(&self, n: u32) -> u32 {
        if self.sabotage == Sabotage::UndercountsRequests { n.saturating_sub(1) } else { n }
    }
}

fn capability(capable: bool, intervention: Option<&str>) -> Value {
    json!({ "isCapable": capable, "interventionIds": intervention.map_or_else(Vec::new, |i| vec![i]) })
}

#[async_trait]
impl VendorAdapter for FakeAdapter {
    fn info(&self) -> &VendorInfo {
        &self.info
    }

    fn limits(&self) -> VendorLimits {
        let mut limits = published_limits();
        if self.sabotage == Sabotage::PerDeviceLimits {
            limits.rate_scope = QuotaScope::Device;
        }
        limits
    }

    fn poll_cost(&self, _device_type: VendorType) -> u32 {
        if self.sabotage == Sabotage::LowPollCost { 0 } else { 1 }
    }

    async fn refresh_credentials(&self, account: &AccountRef) -> AdapterResult<Credentials> {
        let Some(refresh) = account.credentials.refresh_token.as_deref() else {
            return Err(err(ErrorKind::Unauthorized, "no refresh token"));
        };
        let request = self
            .http
            .post(format!("{}/oauth/token", self.base))
            .json(&json!({ "grant_type": "refresh_token", "refresh_token": refresh }));
        let body = self.send(request, "refresh").await.map_err(|e| {
            if matches!(e.kind(), ErrorKind::AuthExpired | ErrorKind::Unauthorized) {
                err(ErrorKind::Unauthorized, "refresh refused; relink")
            } else {
                e
            }
        })?;
        let token: TokenAnswer = self.decode(&body, "refresh")?;
        Ok(Credentials {
            access_token: token.access_token,
            refresh_token: Some(token.refresh_token),
            expires_at: Some(self.clock.now() + chrono::Duration::seconds(token.expires_in)),
            extra: BTreeMap::new(),
        })
    }

    async fn discover(&self, account: &AccountRef) -> AdapterResult<Vec<DiscoveredDevice>> {
        let list: DeviceList = self.get(account, "/devices").await?;
        let mut out = Vec::new();
        for d in list.devices {
            let device_type = match d.kind.as_str() {
                "vehicle" => VendorType::Vehicle,
                "battery" => VendorType::Battery,
                other => return Err(err(ErrorKind::Protocol, format!("device type {other}"))),
            };
            out.push(DiscoveredDevice {
                device_type,
                vendor_id: d.id,
                site_id: d.site,
                display_name: None,
            });
        }
        if self.sabotage == Sabotage::IgnoresOtherAccounts {
            out.push(DiscoveredDevice {
                device_type: VendorType::Vehicle,
                vendor_id: "VIN9999".into(),
                site_id: None,
                display_name: None,
            });
        }
        Ok(out)
    }

    fn vehicles(&self) -> Option<&dyn VehicleApi> {
        Some(self)
    }

    fn batteries(&self) -> Option<&dyn BatteryApi> {
        Some(self)
    }
}

#[async_trait]
impl VehicleApi for FakeAdapter {
    async fn read_vehicle(
        &self,
        account: &AccountRef,
        device: &DeviceRef,
    ) -> AdapterResult<Observation> {
        let data: CarData = self.get(account, &format!("/vehicles/{}", device.vendor_id)).await?;
        let now = self.clock.now();
        let live = !data.asleep;
        let delivery = match (data.plugged, data.charging) {
            (Some(true), Some(true)) => "PLUGGED_IN:CHARGING",
            (Some(true), _) => "PLUGGED_IN:STOPPED",
            (Some(false), _) => "UNPLUGGED",
            _ => "UNKNOWN",
        };
        let json = json!({
            "id": device.id, "userId": device.user_id, "vendor": VENDOR, "lastSeen": now,
            "isReachable": live,
            "information": { "vin": data.vin, "brand": "Tesla", "model": null, "year": null, "displayName": null },
            "chargeState": {
                "batteryLevel": data.level, "range": null, "isPluggedIn": data.plugged,
                "isCharging": data.charging, "isFullyCharged": null, "batteryCapacity": null,
                "chargeLimit": null, "chargeRate": null, "chargeTimeRemaining": null,
                "lastUpdated": if live { Some(now) } else { None }, "maxCurrent": data.max_current,
                "powerDeliveryState": delivery, "pluggedInChargerId": null
            },
            "smartChargingPolicy": { "isEnabled": false, "deadline": null, "minimumChargeLimit": 0 },
            "odometer": { "distance": null, "lastUpdated": null },
            "capabilities": {
                "information": capability(true, None), "chargeState": capability(true, None),
                "location": capability(false, Some("intervention-no-location")),
                "odometer": capability(false, Some("intervention-no-odometer")),
                "setMaxCurrent": if self.sabotage == Sabotage::ClaimsMaxCurrent {
                    capability(true, None)
                } else {
                    capability(false, Some("intervention-no-amps"))
                },
                "startCharging": capability(true, None), "stopCharging": capability(true, None),
                "smartCharging": capability(false, Some("intervention-no-smart"))
            },
            "scopes": [],
            "location": { "id": null, "longitude": null, "latitude": null, "lastUpdated": null }
        });
        let vehicle = serde_json::from_value(json)
            .map_err(|e| err(ErrorKind::Protocol, "vehicle mapping").with_source(e))?;
        Ok(Observation {
            state: DeviceState::Vehicle(Box::new(vehicle)),
            observed_at: now,
            asleep: data.asleep,
            requests: self.requests(1),
        })
    }

    async fn wake_up(&self, _: &AccountRef, _: &DeviceRef) -> AdapterResult<CommandReceipt> {
        Err(err(ErrorKind::Unsupported, "the fake cloud cannot wake cars"))
    }

    async fn set_charging(
        &self,
        account: &AccountRef,
        device: &DeviceRef,
        start: bool,
    ) -> AdapterResult<CommandReceipt> {
        let path = format!("/vehicles/{}/charge", device.vendor_id);
        self.post(account, &path, json!({ "start": start })).await
    }

    async fn set_max_current(
        &self,
        _: &AccountRef,
        _: &DeviceRef,
        _: f64,
    ) -> AdapterResult<CommandReceipt> {
        Err(err(ErrorKind::Unsupported, "the fake cloud cannot set the current"))
    }
}

#[async_trait]
impl BatteryApi for FakeAdapter {
    async fn read_battery(
        &self,
        account: &AccountRef,
        device: &DeviceRef,
    ) -> AdapterResult<Observation> {
        let data: PackData = self.get(account, &format!("/batteries/{}", device.vendor_id)).await?;
        let now = self.clock.now();
        let rate =
            if self.sabotage == Sabotage::FlipsBatterySign { -data.rate_kw } else { data.rate_kw };
        let status = if rate > 0.0 {
            "CHARGING"
        } else if rate < 0.0 {
            "DISCHARGING"
        } else {
            "IDLE"
        };
        let json = json!({
            "id": device.id, "userId": device.user_id, "vendor": VENDOR, "lastSeen": now,
            "isReachable": true,
            "chargeState": {
                "status": status, "batteryCapacity": 13.5, "batteryLevel": data.level,
                "chargeRate": rate, "dischargeLimit": null, "lastUpdated": now
            },
            "config": { "operationMode": data.mode, "lastUpdated": now },
            "information": {
                "id": data.id, "brand": "Tesla", "model": "Powerwall", "siteName": data.site,
                "installationDate": "2024-01-01T00:00:00Z"
            },
            "capabilities": {
                "exportFocus": capability(true, None), "importFocus": capability(true, None),
                "timeOfUse": capability(true, None), "selfReliance": capability(true, None),
                "idle": capability(false, Some(NO_IDLE))
            },
            "scopes": [],
            "location": { "id": null, "longitude": null, "latitude": null, "lastUpdated": null }
        });
        let battery = serde_json::from_value(json)
            .map_err(|e| err(ErrorKind::Protocol, "battery mapping").with_source(e))?;
        Ok(Observation {
            state: DeviceState::Battery(Box::new(battery)),
            observed_at: now,
            asleep: false,
            requests: self.requests(1),
        })
    }

    async fn set_operation_mode(
        &self,
        account: &AccountRef,
        device: &DeviceRef,
        mode: BatteryOperationMode,
    ) -> AdapterResult<CommandReceipt> {
        if mode == BatteryOperationMode::Idle && self.sabotage != Sabotage::SendsUnsupported {
            return Err(err(ErrorKind::Unsupported, "Powerwalls have no idle mode"));
        }
        let path = format!("/batteries/{}/mode", device.vendor_id);
        self.post(account, &path, json!({ "mode": mode.as_str() })).await
    }
}

// ---------------------------------------------------------------- the target

fn published_limits() -> VendorLimits {
    VendorLimits {
        requests_per_minute: 60,
        burst: 10,
        rate_scope: QuotaScope::Account,
        daily_quota: Some(DailyQuota { requests: 5_000, per: QuotaScope::Account }),
        max_concurrent: 4,
        pricing: None,
    }
}

struct Control(World);

#[async_trait]
impl VendorControl for Control {
    async fn expire_access_token(&self, _account: &mut AccountRef) {
        let mut s = self.0.state();
        s.access_expires = s.clock.now();
    }

    async fn revoke_credentials(&self, _account: &AccountRef) {
        self.0.state().revoked = true;
    }

    fn inject_fault(&self, fault: Fault) {
        self.0.state().fault = Some(fault);
    }

    fn clear_faults(&self) {
        self.0.state().fault = None;
    }
}

struct Target(Sabotage);

/// The battery switches to `mode` (from another mode, so the case proves something).
fn mode_case(pack: &DeviceRef, mode: BatteryOperationMode) -> CommandCase<World> {
    let other = if mode == BatteryOperationMode::TimeOfUse {
        BatteryOperationMode::SelfReliance
    } else {
        BatteryOperationMode::TimeOfUse
    };
    CommandCase::new(
        pack.clone(),
        Command::SetOperationMode { mode },
        format!("switches to {mode}"),
        LATENCY * 2,
        move |w: &World| w.pack("PW1").mode == mode,
    )
    .prepare(move |w: &World| w.state().packs.get_mut("PW1").unwrap().mode = other)
}

fn device(device_type: VendorType, vendor_id: &str, site: Option<&str>) -> DeviceRef {
    DeviceRef {
        id: format!("dev-{vendor_id}"),
        user_id: USER.into(),
        device_type,
        vendor_id: vendor_id.into(),
        site_id: site.map(str::to_owned),
    }
}

#[async_trait]
impl ConformanceTarget for Target {
    type World = World;

    async fn start(&self, options: StartOptions) -> anyhow::Result<Harness<World>> {
        let clock = Arc::new(ManualClock::new(t0()));
        let world = World::new(Arc::clone(&clock));
        // Served through oemgate-sim's SimHost, which counts the requests per prefix.
        let router = axum::Router::new().fallback(serve).with_state(world.clone());
        let mut host = SimHost::new(clock.clone());
        host.mount(PREFIX, router)?;
        let requests = SimRequests::new(host.request_log(), PREFIX);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}{PREFIX}", listener.local_addr()?);
        let server = tokio::spawn(host.serve(listener));
        let adapter = Arc::new(FakeAdapter {
            http: reqwest::Client::new(),
            base,
            clock: Arc::clone(&clock),
            timeout: options.request_timeout,
            info: VendorInfo {
                name: VENDOR,
                display_name: "Fake",
                device_types: &[VendorType::Vehicle, VendorType::Battery],
            },
            sabotage: self.0,
        });
        let account = AccountRef {
            user_id: USER.into(),
            vendor: VENDOR.into(),
            account_id: ACCOUNT.into(),
            credentials: Credentials {
                access_token: "access-0".into(),
                refresh_token: Some("refresh-0".into()),
                expires_at: Some(t0() + ACCESS_LIFETIME),
                extra: BTreeMap::new(),
            },
        };
        let car = device(VendorType::Vehicle, "VIN0001", None);
        let sleeper = device(VendorType::Vehicle, "VIN0002", None);
        let pack = device(VendorType::Battery, "PW1", Some("site-1"));
        Ok(Harness {
            adapter,
            account,
            clock,
            world: world.clone(),
            requests: Arc::new(requests),
            devices: vec![
                ExpectedDevice::new(car.clone(), "VIN0001"),
                ExpectedDevice::new(sleeper.clone(), "VIN0002"),
                ExpectedDevice::new(pack.clone(), "PW1"),
            ],
            commands: vec![
                CommandCase::new(
                    car.clone(),
                    Command::StartCharging,
                    "starts charging",
                    LATENCY * 2,
                    |w: &World| w.car("VIN0001").charging,
                ),
                CommandCase::new(
                    car.clone(),
                    Command::StopCharging,
                    "stops charging",
                    LATENCY * 2,
                    |w: &World| !w.car("VIN0001").charging,
                )
                .prepare(|w: &World| w.state().cars.get_mut("VIN0001").unwrap().charging = true),
            ]
            .into_iter()
            .chain(
                [
                    BatteryOperationMode::ImportFocus,
                    BatteryOperationMode::ExportFocus,
                    BatteryOperationMode::TimeOfUse,
                    BatteryOperationMode::SelfReliance,
                ]
                .into_iter()
                .map(|mode| mode_case(&pack, mode)),
            )
            .collect(),
            unsupported: vec![
                UnsupportedCase::new(
                    pack.clone(),
                    Command::SetOperationMode { mode: BatteryOperationMode::Idle },
                ),
                UnsupportedCase::new(car.clone(), Command::SetMaxCurrent { amps: 10.0 }),
            ],
            sleeping: vec![SleepCase::new(sleeper, |w: &World| w.car("VIN0002").asleep)],
            control: Box::new(Control(world)),
            truth: Box::new(|w: &World, e: &ExpectedDevice| match e.device.device_type {
                VendorType::Vehicle => {
                    let car = w.car(&e.world_id);
                    if car.asleep {
                        vec![
                            Expectation::bool("/isReachable", false),
                            Expectation::null("/chargeState/batteryLevel"),
                            Expectation::string("/information/vin", e.world_id.clone()),
                        ]
                    } else {
                        vec![
                            Expectation::bool("/isReachable", true),
                            Expectation::percent("/chargeState/batteryLevel", car.level),
                            Expectation::bool("/chargeState/isCharging", car.charging),
                            Expectation::bool("/chargeState/isPluggedIn", car.plugged),
                            Expectation::amps("/chargeState/maxCurrent", car.max_current),
                        ]
                    }
                }
                _ => {
                    let pack = w.pack(&e.world_id);
                    vec![
                        Expectation::percent("/chargeState/batteryLevel", pack.level),
                        Expectation::number("/chargeState/chargeRate", pack.rate_kw, Tolerance::KW),
                        Expectation::string("/config/operationMode", pack.mode.as_str()),
                    ]
                }
            }),
            keep_alive: vec![Box::new(ServerGuard::new(server))],
        })
    }

    fn published_limits(&self) -> VendorLimits {
        published_limits()
    }

    fn auth(&self) -> AuthBehaviour {
        AuthBehaviour { single_use_refresh_tokens: true, ..AuthBehaviour::default() }
    }
}

// ---------------------------------------------------------------- the tests

// A conforming adapter passes every check, one test per check.
oemgate_testkit::conformance_tests!(Target(Sabotage::None));

#[test]
fn run_all_passes_for_a_conforming_adapter() {
    oemgate_testkit::block_on(oemgate_testkit::run_all(&Target(Sabotage::None)));
}

/// Runs `check` against a sabotaged adapter and returns its panic message.
fn failure<F, Fut>(sabotage: Sabotage, check: F) -> String
where
    F: FnOnce(Target) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let result = std::panic::catch_unwind(AssertUnwindSafe(|| {
        oemgate_testkit::block_on(async move { check(Target(sabotage)).await })
    }));
    let payload = result.expect_err("the check passed a broken adapter");
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_default()
}

#[test]
fn per_device_limits_fail_declared_limits() {
    let message = failure(Sabotage::PerDeviceLimits, |t| async move {
        oemgate_testkit::declared_limits(&t).await;
    });
    assert!(message.contains("[TESLA] conformance check `declared_limits`"), "{message}");
    assert!(message.contains("never per device"), "{message}");
}

#[test]
fn a_request_for_an_unsupported_mode_fails_unsupported_commands() {
    let message = failure(Sabotage::SendsUnsupported, |t| async move {
        oemgate_testkit::unsupported_commands(&t).await;
    });
    assert!(message.contains("set_operation_mode on battery PW1"), "{message}");
}

#[test]
fn a_panic_on_a_bad_body_fails_bad_bodies() {
    let message = failure(Sabotage::PanicsOnBadBody, |t| async move {
        oemgate_testkit::bad_bodies(&t).await;
    });
    assert!(message.contains("the adapter panicked during discover"), "{message}");
}

#[test]
fn a_flipped_sign_fails_poll_matches_world() {
    let message = failure(Sabotage::FlipsBatterySign, |t| async move {
        oemgate_testkit::poll_matches_world(&t).await;
    });
    assert!(
        message.contains("battery PW1: /chargeState/chargeRate: expected -1.5 ± 0.05, found 1.5"),
        "{message}"
    );
}

#[test]
fn undercounted_requests_fail_request_accounting() {
    let message = failure(Sabotage::UndercountsRequests, |t| async move {
        oemgate_testkit::request_accounting(&t).await;
    });
    assert!(message.contains("reports 0 requests, the simulator received 1"), "{message}");
}

#[test]
fn a_poll_dearer_than_poll_cost_fails_request_accounting() {
    let message = failure(Sabotage::LowPollCost, |t| async move {
        oemgate_testkit::request_accounting(&t).await;
    });
    assert!(message.contains("more than poll_cost(battery) = 0"), "{message}");
}

#[test]
fn another_accounts_device_fails_discovery() {
    let message = failure(Sabotage::IgnoresOtherAccounts, |t| async move {
        oemgate_testkit::discovery(&t).await;
    });
    assert!(
        message.contains("vehicle VIN9999 was discovered but is not the account's"),
        "{message}"
    );
}

#[test]
fn a_capability_without_a_command_case_fails_commands_take_effect() {
    let message = failure(Sabotage::ClaimsMaxCurrent, |t| async move {
        oemgate_testkit::commands_take_effect(&t).await;
    });
    assert!(
        message.contains("vehicle VIN0001 reports /capabilities/setMaxCurrent capable"),
        "{message}"
    );
}
