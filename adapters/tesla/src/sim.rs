//! A simulator of Tesla's cloud (vehicles only, for now), served as an axum [`Router`].
//!
//! [`TeslaSim`] holds accounts, OAuth grants and vehicles behind one `std` mutex (never held
//! across an await) and answers the Fleet API routes the adapter uses, in Tesla's JSON and
//! error shapes:
//!
//! | route | what |
//! |---|---|
//! | `POST /oauth2/v3/token` | `authorization_code` and `refresh_token` grants (form-encoded) |
//! | `GET /api/1/vehicles` | the account's cars with `state` `online`/`asleep`/`offline` |
//! | `GET /api/1/vehicles/{vin}/vehicle_data` | live data; 408 when the car is not online |
//! | `POST /api/1/vehicles/{vin}/wake_up` | starts waking; answers the current state at once |
//! | `POST /api/1/vehicles/{vin}/command/{command}` | `charge_start`, `charge_stop`, `set_charging_amps`, `set_charge_limit` |
//!
//! Auth: authorization codes and refresh tokens are single-use (a reused refresh token gets
//! 401 `login_required`); access tokens expire after
//! [`DEFAULT_ACCESS_TOKEN_LIFETIME`] (8 h, see [`TeslaSim::set_access_token_lifetime`]) and
//! then get 401 `token expired (401)`; unknown tokens get 401 `invalid bearer token`.
//!
//! Time: everything reads the [`Clock`] given to [`TeslaSim::new`]. The per-vehicle physics
//! ([`VehicleModel::step`]) advances lazily to the clock's time whenever a request arrives or
//! [`TeslaSim::advance_to`] is called. Command effects land after a latency drawn from a
//! seeded log-normal distribution (median [`COMMAND_LATENCY_MEDIAN_SECS`], at most
//! [`COMMAND_LATENCY_MAX_SECS`]); a woken car is online 10–30 s after `wake_up`; an idle car
//! falls asleep after [`SLEEP_AFTER`]; a seeded share of cars drive around now and then.
//! Given the seed and the same requests at the same clock times, the simulator is
//! deterministic.
//!
//! Faults ([`TeslaSim::set_fault`]) apply to the `/api/1` routes until cleared.

use std::collections::BTreeMap;
use std::f64::consts::PI;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::FormRejection;
use axum::extract::{Form, Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use oemgate_core::Clock;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

/// Access tokens live this long unless changed.
pub const DEFAULT_ACCESS_TOKEN_LIFETIME: Duration = Duration::from_secs(8 * 3600);
/// Refresh tokens expire after three months (if not used before).
pub const REFRESH_TOKEN_LIFETIME: Duration = Duration::from_secs(90 * 86_400);
/// An online car with nothing keeping it awake falls asleep after this long.
pub const SLEEP_AFTER: Duration = Duration::from_secs(15 * 60);
/// Median delay between an accepted command and its effect on the car.
pub const COMMAND_LATENCY_MEDIAN_SECS: f64 = 20.0;
/// Shortest delay between an accepted command and its effect.
pub const COMMAND_LATENCY_MIN_SECS: f64 = 3.0;
/// Longest delay between an accepted command and its effect.
pub const COMMAND_LATENCY_MAX_SECS: f64 = 120.0;
/// Share of cars that drive around when [`VehicleSpec::drives`] is `None`.
pub const DRIVING_SHARE: f64 = 0.3;
/// Mean time between trips of a driving car that is parked and not charging.
pub const MEAN_SECS_BETWEEN_TRIPS: f64 = 8.0 * 3600.0;

const MAX_STEP_SECS: f64 = 60.0;
const MIN_STEP_SECS: f64 = 1e-3;
const KM_PER_MILE: f64 = 1.609_344;

/// A fault the simulator injects into the `/api/1` routes until [`TeslaSim::clear_fault`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// 429 with `Retry-After`.
    RateLimit {
        /// The `Retry-After` value (whole seconds are sent).
        retry_after: Duration,
    },
    /// 500 with Tesla's error JSON.
    ServerError,
    /// 200 with a truncated, unparseable JSON body.
    Malformed,
    /// Revokes every access and refresh token issued so far. Takes effect at once and is not
    /// kept as a standing fault.
    RevokeTokens,
    /// 421 "user out of region, use base URL: {base_url}".
    WrongRegion {
        /// The base URL the error names.
        base_url: String,
    },
}

/// A vehicle's connectivity as Tesla reports it in `state`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PowerState {
    /// Awake: data and commands work.
    Online,
    /// Sleeping: wakes on `wake_up` (10–30 s) or when it starts driving.
    Asleep,
    /// No connectivity: stays so until [`TeslaSim::set_power_state`].
    Offline,
}

impl PowerState {
    /// Tesla's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            PowerState::Online => "online",
            PowerState::Asleep => "asleep",
            PowerState::Offline => "offline",
        }
    }
}

/// The charge port as the physics sees it (Tesla's `charging_state`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChargingStatus {
    /// No cable.
    Disconnected,
    /// Plugged in, not charging.
    Stopped,
    /// Charging.
    Charging,
    /// Plugged in at the charge limit.
    Complete,
    /// Plugged in, the charger delivers no power.
    NoPower,
}

impl ChargingStatus {
    /// Tesla's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ChargingStatus::Disconnected => "Disconnected",
            ChargingStatus::Stopped => "Stopped",
            ChargingStatus::Charging => "Charging",
            ChargingStatus::Complete => "Complete",
            ChargingStatus::NoPower => "NoPower",
        }
    }

    /// Whether a cable is connected.
    pub fn is_plugged_in(self) -> bool {
        self != ChargingStatus::Disconnected
    }
}

/// What an accepted command does to the car once its latency has passed.
#[derive(Clone, Debug, PartialEq)]
pub enum Effect {
    /// Begin charging (if still plugged in and below the limit).
    StartCharging,
    /// Stop charging.
    StopCharging,
    /// Set the charging current (clamped to the connection's maximum).
    SetAmps(u32),
    /// Set the charge limit in %.
    SetChargeLimit(f64),
}

/// A command effect waiting for its latency to pass.
#[derive(Clone, Debug, PartialEq)]
pub struct PendingEffect {
    /// Seconds until it lands.
    pub remaining_secs: f64,
    /// What it does.
    pub effect: Effect,
}

/// A drive in progress.
#[derive(Clone, Debug, PartialEq)]
pub struct Trip {
    /// Seconds of driving left.
    pub remaining_secs: f64,
    /// Constant speed of this trip.
    pub speed_kmh: f64,
}

/// How a simulated vehicle starts out.
#[derive(Clone, Debug, PartialEq)]
pub struct VehicleSpec {
    /// A fixed VIN; `None` (or a VIN already in use) generates a plausible one.
    pub vin: Option<String>,
    /// The owner's name for the car.
    pub display_name: Option<String>,
    /// Tesla's `car_type` (`modely`, `model3`, `models`, `modelx`, `cybertruck`).
    pub car_type: String,
    /// Model year (encoded in a generated VIN).
    pub model_year: u16,
    /// State of charge in %.
    pub battery_level: f64,
    /// Usable capacity in kWh.
    pub capacity_kwh: f64,
    /// Charge limit in %.
    pub charge_limit: f64,
    /// Plugged in at the start.
    pub plugged_in: bool,
    /// Charging at the start (only if plugged in and below the limit).
    pub charging: bool,
    /// Connectivity at the start (a charging car is always online).
    pub power_state: PowerState,
    /// Charging current setting in A.
    pub amps: u32,
    /// The connection's maximum current in A.
    pub max_amps: u32,
    /// Charger voltage in V.
    pub voltage: f64,
    /// Charger phases (3 in Europe, 1 in North America).
    pub phases: u32,
    /// Odometer in km.
    pub odometer_km: f64,
    /// Parking position.
    pub latitude: f64,
    /// Parking position.
    pub longitude: f64,
    /// Whether the car drives around now and then; `None` draws it ([`DRIVING_SHARE`]).
    pub drives: Option<bool>,
}

impl Default for VehicleSpec {
    fn default() -> Self {
        Self {
            vin: None,
            display_name: None,
            car_type: "modely".to_owned(),
            model_year: 2024,
            battery_level: 60.0,
            capacity_kwh: 75.0,
            charge_limit: 80.0,
            plugged_in: false,
            charging: false,
            power_state: PowerState::Online,
            amps: 16,
            max_amps: 16,
            voltage: 230.0,
            phases: 3,
            odometer_km: 15_000.0,
            latitude: 59.9139,
            longitude: 10.7522,
            drives: None,
        }
    }
}

/// The physics of one simulated vehicle. Fields are public so tests (and the later
/// simulated world) can read and set them.
#[derive(Clone, Debug, PartialEq)]
pub struct VehicleModel {
    /// State of charge in %.
    pub battery_level: f64,
    /// Usable capacity in kWh.
    pub capacity_kwh: f64,
    /// Efficiency, for range and driving consumption.
    pub km_per_kwh: f64,
    /// Charge limit in %.
    pub charge_limit: f64,
    /// The charge port.
    pub charging: ChargingStatus,
    /// Charging current setting in A.
    pub amps: u32,
    /// The connection's maximum current in A.
    pub max_amps: u32,
    /// Charger voltage in V.
    pub voltage: f64,
    /// Charger phases.
    pub phases: u32,
    /// Odometer in km.
    pub odometer_km: f64,
    /// Position.
    pub latitude: f64,
    /// Position.
    pub longitude: f64,
    /// Heading in degrees.
    pub heading: f64,
    /// Connectivity.
    pub power_state: PowerState,
    /// Seconds online with nothing keeping the car awake.
    pub idle_secs: f64,
    /// Seconds until a requested wake-up completes.
    pub waking_in: Option<f64>,
    /// The drive in progress.
    pub trip: Option<Trip>,
    /// Whether the car drives around now and then.
    pub drives: bool,
    /// Accepted command effects waiting for their latency.
    pub pending: Vec<PendingEffect>,
}

impl VehicleModel {
    /// The physics for a spec; `drives` is the resolved [`VehicleSpec::drives`].
    pub fn from_spec(spec: &VehicleSpec, drives: bool) -> Self {
        let limit = spec.charge_limit.clamp(50.0, 100.0);
        let level = spec.battery_level.clamp(0.0, 100.0);
        let charging = match (spec.plugged_in, spec.charging) {
            (false, _) => ChargingStatus::Disconnected,
            (true, _) if level >= limit => ChargingStatus::Complete,
            (true, true) => ChargingStatus::Charging,
            (true, false) => ChargingStatus::Stopped,
        };
        let power_state = if charging == ChargingStatus::Charging {
            PowerState::Online
        } else {
            spec.power_state
        };
        Self {
            battery_level: level,
            capacity_kwh: spec.capacity_kwh.max(1.0),
            km_per_kwh: 6.0,
            charge_limit: limit,
            charging,
            amps: spec.amps.min(spec.max_amps),
            max_amps: spec.max_amps,
            voltage: spec.voltage,
            phases: spec.phases.max(1),
            odometer_km: spec.odometer_km.max(0.0),
            latitude: spec.latitude,
            longitude: spec.longitude,
            heading: 0.0,
            power_state,
            idle_secs: 0.0,
            waking_in: None,
            trip: None,
            drives,
            pending: Vec::new(),
        }
    }

    /// Charging power in kW (0 unless charging).
    pub fn charger_power_kw(&self) -> f64 {
        if self.charging == ChargingStatus::Charging {
            f64::from(self.amps) * self.voltage * f64::from(self.phases) / 1000.0
        } else {
            0.0
        }
    }

    /// Range in km at the current state of charge.
    pub fn range_km(&self) -> f64 {
        self.battery_level / 100.0 * self.capacity_kwh * self.km_per_kwh
    }

    /// Minutes until the charge limit at the current power (0 unless charging).
    pub fn minutes_to_limit(&self) -> f64 {
        let power = self.charger_power_kw();
        if power <= 0.0 || self.battery_level >= self.charge_limit {
            return 0.0;
        }
        (self.charge_limit - self.battery_level) / 100.0 * self.capacity_kwh / power * 60.0
    }

    /// A request that keeps the car awake (data read, command) arrived.
    pub fn touch(&mut self) {
        self.idle_secs = 0.0;
    }

    /// Starts waking a sleeping car; returns whether a wake-up began.
    pub fn wake(&mut self, rng: &mut impl Rng) -> bool {
        if self.power_state == PowerState::Asleep && self.waking_in.is_none() {
            self.waking_in = Some(rng.random_range(10.0..=30.0));
            return true;
        }
        false
    }

    /// Queues a command effect.
    pub fn schedule(&mut self, effect: Effect, latency_secs: f64) {
        self.pending.push(PendingEffect { remaining_secs: latency_secs.max(0.0), effect });
    }

    /// Whether an effect of this kind waits.
    pub fn has_pending(&self, pred: impl Fn(&Effect) -> bool) -> bool {
        self.pending.iter().any(|p| pred(&p.effect))
    }

    /// Advances the physics by `dt`: charging, driving, falling asleep, waking up and the
    /// command effects whose latency passes, each at its exact time.
    pub fn step(&mut self, dt: Duration, rng: &mut impl Rng) {
        let mut left = dt.as_secs_f64();
        loop {
            self.apply_due(rng);
            if left <= 0.0 {
                break;
            }
            let mut h = left.min(MAX_STEP_SECS);
            for p in &self.pending {
                h = h.min(p.remaining_secs);
            }
            if let Some(w) = self.waking_in {
                h = h.min(w);
            }
            if let Some(t) = &self.trip {
                h = h.min(t.remaining_secs);
            }
            let power = self.charger_power_kw();
            if power > 0.0 {
                let secs = (self.charge_limit - self.battery_level) / 100.0 * self.capacity_kwh
                    / power
                    * 3600.0;
                h = h.min(secs);
            }
            if self.can_fall_asleep() {
                h = h.min(SLEEP_AFTER.as_secs_f64() - self.idle_secs);
            }
            let h = h.max(MIN_STEP_SECS).min(left);
            self.integrate(h, rng);
            for p in &mut self.pending {
                p.remaining_secs -= h;
            }
            if let Some(w) = &mut self.waking_in {
                *w -= h;
            }
            if let Some(t) = &mut self.trip {
                t.remaining_secs -= h;
            }
            left -= h;
        }
    }

    fn can_fall_asleep(&self) -> bool {
        self.power_state == PowerState::Online
            && self.trip.is_none()
            && self.waking_in.is_none()
            && self.charging != ChargingStatus::Charging
            && self.pending.is_empty()
    }

    fn integrate(&mut self, h: f64, rng: &mut impl Rng) {
        if let Some(trip) = &self.trip {
            let km = trip.speed_kmh * h / 3600.0;
            let kwh = km / self.km_per_kwh;
            self.battery_level = (self.battery_level - kwh / self.capacity_kwh * 100.0).max(0.0);
            self.odometer_km += km;
            let rad = self.heading.to_radians();
            self.latitude = (self.latitude + rad.cos() * km / 111.0).clamp(-89.0, 89.0);
            let lon_scale = (111.0 * self.latitude.to_radians().cos()).max(1.0);
            self.longitude = wrap_longitude(self.longitude + rad.sin() * km / lon_scale);
            self.idle_secs = 0.0;
            if self.battery_level < 5.0
                && let Some(t) = &mut self.trip
            {
                t.remaining_secs = t.remaining_secs.min(h);
            }
            return;
        }
        let power = self.charger_power_kw();
        if power > 0.0 {
            let kwh = power * h / 3600.0;
            self.battery_level =
                (self.battery_level + kwh / self.capacity_kwh * 100.0).min(self.charge_limit);
            self.idle_secs = 0.0;
            return;
        }
        if self.power_state == PowerState::Online {
            self.idle_secs += h;
        }
        let may_leave = self.drives
            && self.power_state != PowerState::Offline
            && self.charging != ChargingStatus::Charging
            && self.battery_level > 20.0
            && self.pending.is_empty();
        if may_leave {
            let p = 1.0 - (-h / MEAN_SECS_BETWEEN_TRIPS).exp();
            if rng.random::<f64>() < p {
                self.trip = Some(Trip {
                    remaining_secs: rng.random_range(600.0..2400.0),
                    speed_kmh: rng.random_range(30.0..90.0),
                });
                self.heading = rng.random_range(0.0..360.0);
                self.charging = ChargingStatus::Disconnected;
                self.power_state = PowerState::Online;
                self.waking_in = None;
                self.idle_secs = 0.0;
            }
        }
    }

    fn apply_due(&mut self, rng: &mut impl Rng) {
        const EPS: f64 = 1e-6;
        if self.pending.iter().any(|p| p.remaining_secs <= EPS) {
            let pending = std::mem::take(&mut self.pending);
            let (due, rest): (Vec<_>, Vec<_>) =
                pending.into_iter().partition(|p| p.remaining_secs <= EPS);
            self.pending = rest;
            for p in due {
                self.apply(&p.effect);
            }
        }
        if self.waking_in.is_some_and(|w| w <= EPS) {
            self.waking_in = None;
            if self.power_state == PowerState::Asleep {
                self.power_state = PowerState::Online;
                self.idle_secs = 0.0;
            }
        }
        if self.trip.as_ref().is_some_and(|t| t.remaining_secs <= EPS) {
            self.trip = None;
            self.idle_secs = 0.0;
            // Half the trips end at a charger; Tesla starts charging on plug-in.
            if rng.random::<f64>() < 0.5 {
                self.charging = if self.battery_level < self.charge_limit {
                    ChargingStatus::Charging
                } else {
                    ChargingStatus::Complete
                };
            }
        }
        if self.charging == ChargingStatus::Charging
            && self.battery_level >= self.charge_limit - EPS
        {
            self.battery_level = self.battery_level.min(self.charge_limit);
            self.charging = ChargingStatus::Complete;
        }
        if self.can_fall_asleep() && self.idle_secs >= SLEEP_AFTER.as_secs_f64() - EPS {
            self.power_state = PowerState::Asleep;
        }
    }

    /// Applies an effect now.
    pub fn apply(&mut self, effect: &Effect) {
        match effect {
            Effect::StartCharging => {
                if self.charging.is_plugged_in() && self.charging != ChargingStatus::NoPower {
                    self.charging = if self.battery_level < self.charge_limit {
                        ChargingStatus::Charging
                    } else {
                        ChargingStatus::Complete
                    };
                }
            }
            Effect::StopCharging => {
                if self.charging == ChargingStatus::Charging {
                    self.charging = ChargingStatus::Stopped;
                }
            }
            Effect::SetAmps(a) => self.amps = (*a).min(self.max_amps),
            Effect::SetChargeLimit(p) => {
                self.charge_limit = p.clamp(50.0, 100.0);
                match self.charging {
                    ChargingStatus::Complete if self.battery_level < self.charge_limit => {
                        self.charging = ChargingStatus::Charging;
                    }
                    ChargingStatus::Charging if self.battery_level >= self.charge_limit => {
                        self.charging = ChargingStatus::Complete;
                    }
                    _ => {}
                }
            }
        }
        self.idle_secs = 0.0;
    }
}

fn wrap_longitude(lon: f64) -> f64 {
    let wrapped = (lon + 180.0).rem_euclid(360.0) - 180.0;
    if wrapped.is_finite() { wrapped } else { 0.0 }
}

/// A latency from a log-normal with median [`COMMAND_LATENCY_MEDIAN_SECS`], clamped.
pub fn command_latency_secs(rng: &mut impl Rng) -> f64 {
    let u1: f64 = rng.random::<f64>().max(1e-12);
    let u2: f64 = rng.random();
    let z = (-2.0 * u1.ln()).sqrt() * (2.0 * PI * u2).cos();
    (COMMAND_LATENCY_MEDIAN_SECS * (0.6 * z).exp())
        .clamp(COMMAND_LATENCY_MIN_SECS, COMMAND_LATENCY_MAX_SECS)
}

/// Requests the simulator answered, per endpoint class.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RequestCounts {
    /// `POST /oauth2/v3/token`.
    pub token: u64,
    /// `GET /api/1/vehicles` (a data request in Tesla's billing).
    pub vehicle_list: u64,
    /// `GET .../vehicle_data`.
    pub vehicle_data: u64,
    /// `POST .../command/...`.
    pub commands: u64,
    /// `POST .../wake_up`.
    pub wakes: u64,
}

impl RequestCounts {
    /// Data requests: the vehicles list plus `vehicle_data`.
    pub fn data(&self) -> u64 {
        self.vehicle_list + self.vehicle_data
    }

    /// What these requests cost at Tesla's pay-per-use prices (USD; token requests free).
    pub fn cost_usd(&self) -> f64 {
        #[allow(clippy::cast_precision_loss)]
        let (d, c, w) = (self.data() as f64, self.commands as f64, self.wakes as f64);
        d * 0.002 + c * 0.001 + w * 0.02
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Class {
    Token,
    VehicleList,
    VehicleData,
    Command,
    Wake,
}

/// Tokens issued directly by [`TeslaSim::issue_tokens`].
#[derive(Clone, PartialEq, Eq)]
pub struct SimTokens {
    /// The bearer token.
    pub access_token: String,
    /// The single-use refresh token.
    pub refresh_token: String,
    /// When the access token expires on the simulator's clock.
    pub expires_at: DateTime<Utc>,
}

impl fmt::Debug for SimTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimTokens").field("expires_at", &self.expires_at).finish_non_exhaustive()
    }
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
}

#[derive(Debug)]
struct RefreshToken {
    account: String,
    expires_at: DateTime<Utc>,
    used: bool,
}

#[derive(Debug)]
struct SimAccount {
    number: u64,
}

#[derive(Debug)]
struct SimVehicle {
    account: String,
    vin: String,
    id: u64,
    vehicle_id: u64,
    display_name: Option<String>,
    car_type: String,
    model: VehicleModel,
    rng: StdRng,
}

#[derive(Debug)]
struct SimState {
    seed: u64,
    rng: StdRng,
    accounts: BTreeMap<String, SimAccount>,
    codes: BTreeMap<String, Grant>,
    access: BTreeMap<String, AccessToken>,
    refresh: BTreeMap<String, RefreshToken>,
    vehicles: BTreeMap<String, SimVehicle>,
    access_lifetime: Duration,
    fault: Option<Fault>,
    counts: RequestCounts,
    billed: RequestCounts,
    last_advanced: DateTime<Utc>,
    next_account: u64,
    next_vehicle: u64,
}

/// The simulated Tesla cloud. Cheap to clone (shared state).
#[derive(Clone)]
pub struct TeslaSim {
    inner: Arc<Mutex<SimState>>,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for TeslaSim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.lock();
        f.debug_struct("TeslaSim")
            .field("seed", &state.seed)
            .field("accounts", &state.accounts.len())
            .field("vehicles", &state.vehicles.len())
            .field("fault", &state.fault)
            .finish_non_exhaustive()
    }
}

/// A response in Tesla's shape.
#[derive(Debug)]
struct SimResponse {
    status: StatusCode,
    retry_after: Option<u64>,
    body: String,
}

impl SimResponse {
    fn ok(value: &Value) -> Self {
        Self { status: StatusCode::OK, retry_after: None, body: value.to_string() }
    }

    fn response(value: Value) -> Self {
        Self::ok(&json!({ "response": value }))
    }

    fn error(status: StatusCode, error: &str) -> Self {
        let body = json!({ "response": null, "error": error, "error_description": "" });
        Self { status, retry_after: None, body: body.to_string() }
    }

    fn oauth_error(status: StatusCode, error: &str, description: &str) -> Self {
        let body = json!({ "error": error, "error_description": description });
        Self { status, retry_after: None, body: body.to_string() }
    }

    fn asleep() -> Self {
        Self::error(
            StatusCode::REQUEST_TIMEOUT,
            "vehicle unavailable: vehicle is offline or asleep",
        )
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
        if let Some(secs) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

impl TeslaSim {
    /// An empty simulated cloud; `seed` drives every random draw, `clock` every time.
    pub fn new(seed: u64, clock: Arc<dyn Clock>) -> Self {
        let now = clock.now();
        let state = SimState {
            seed,
            rng: StdRng::seed_from_u64(seed),
            accounts: BTreeMap::new(),
            codes: BTreeMap::new(),
            access: BTreeMap::new(),
            refresh: BTreeMap::new(),
            vehicles: BTreeMap::new(),
            access_lifetime: DEFAULT_ACCESS_TOKEN_LIFETIME,
            fault: None,
            counts: RequestCounts::default(),
            billed: RequestCounts::default(),
            last_advanced: now,
            next_account: 800_001,
            next_vehicle: 100_001,
        };
        Self { inner: Arc::new(Mutex::new(state)), clock }
    }

    fn lock(&self) -> MutexGuard<'_, SimState> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Changes how long newly issued access tokens live.
    pub fn set_access_token_lifetime(&self, lifetime: Duration) {
        self.lock().access_lifetime = lifetime;
    }

    /// Adds an account; returns its id and a fresh (single-use) authorization code.
    pub fn add_account(&self, email: &str) -> (String, String) {
        let mut state = self.lock();
        let number = state.next_account;
        state.next_account += 1;
        let id = format!("{number}");
        tracing::debug!(target: "oemgate_tesla::sim", id, email, "account added");
        state.accounts.insert(id.clone(), SimAccount { number });
        let code = state.new_code(&id);
        (id, code)
    }

    /// Issues another authorization code for an existing account.
    pub fn authorization_code(&self, account: &str) -> Option<String> {
        let mut state = self.lock();
        state.accounts.contains_key(account).then(|| state.new_code(account))
    }

    /// Issues an access/refresh token pair for an account without the OAuth round trip.
    pub fn issue_tokens(&self, account: &str) -> Option<SimTokens> {
        let now = self.clock.now();
        let mut state = self.lock();
        state.accounts.contains_key(account).then(|| state.issue_tokens(account, now))
    }

    /// Adds a vehicle to an account (created if unknown); returns its VIN.
    pub fn add_vehicle(&self, account: &str, spec: VehicleSpec) -> String {
        let now = self.clock.now();
        let mut state = self.lock();
        state.advance(now);
        if !state.accounts.contains_key(account) {
            let number = state.next_account;
            state.next_account += 1;
            state.accounts.insert(account.to_owned(), SimAccount { number });
        }
        let n = state.next_vehicle;
        state.next_vehicle += 1;
        let mut rng = StdRng::seed_from_u64(state.seed ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let drives = spec.drives.unwrap_or_else(|| rng.random::<f64>() < DRIVING_SHARE);
        let vin = match &spec.vin {
            Some(vin) if !state.vehicles.contains_key(vin) => vin.clone(),
            _ => generate_vin(&spec.car_type, spec.model_year, n),
        };
        let vehicle = SimVehicle {
            account: account.to_owned(),
            vin: vin.clone(),
            id: n,
            vehicle_id: n + 900_000,
            display_name: spec.display_name.clone(),
            car_type: spec.car_type.clone(),
            model: VehicleModel::from_spec(&spec, drives),
            rng,
        };
        state.vehicles.insert(vin.clone(), vehicle);
        vin
    }

    /// The vehicle's physics as of the clock's now.
    pub fn vehicle(&self, vin: &str) -> Option<VehicleModel> {
        let now = self.clock.now();
        let mut state = self.lock();
        state.advance(now);
        state.vehicles.get(vin).map(|v| v.model.clone())
    }

    /// Changes a vehicle's physics (after advancing it to now); returns whether it exists.
    pub fn update_vehicle(&self, vin: &str, f: impl FnOnce(&mut VehicleModel)) -> bool {
        let now = self.clock.now();
        let mut state = self.lock();
        state.advance(now);
        match state.vehicles.get_mut(vin) {
            Some(v) => {
                f(&mut v.model);
                true
            }
            None => false,
        }
    }

    /// Sets a vehicle's connectivity (e.g. put it to sleep or offline at once).
    pub fn set_power_state(&self, vin: &str, power_state: PowerState) -> bool {
        self.update_vehicle(vin, |m| {
            m.power_state = power_state;
            m.waking_in = None;
            m.idle_secs = 0.0;
        })
    }

    /// Plugs the cable in; the car starts charging (as Teslas do) unless at its limit.
    pub fn plug_in(&self, vin: &str) -> bool {
        self.update_vehicle(vin, |m| {
            if m.trip.is_none() && !m.charging.is_plugged_in() {
                m.charging = if m.battery_level < m.charge_limit {
                    ChargingStatus::Charging
                } else {
                    ChargingStatus::Complete
                };
                m.power_state = PowerState::Online;
                m.idle_secs = 0.0;
            }
        })
    }

    /// Unplugs the cable.
    pub fn unplug(&self, vin: &str) -> bool {
        self.update_vehicle(vin, |m| {
            m.charging = ChargingStatus::Disconnected;
            m.idle_secs = 0.0;
        })
    }

    /// Advances every vehicle's physics to `now` (no-op if `now` is not later).
    pub fn advance_to(&self, now: DateTime<Utc>) {
        self.lock().advance(now);
    }

    /// Injects a fault into subsequent `/api/1` requests (see [`Fault`]).
    pub fn set_fault(&self, fault: Fault) {
        let mut state = self.lock();
        if fault == Fault::RevokeTokens {
            state.access.clear();
            state.refresh.clear();
        } else {
            state.fault = Some(fault);
        }
    }

    /// Removes the standing fault.
    pub fn clear_fault(&self) {
        self.lock().fault = None;
    }

    /// Every request answered so far, per endpoint class.
    pub fn request_counts(&self) -> RequestCounts {
        self.lock().counts
    }

    /// The requests Tesla would bill: those answered with a status below 500.
    pub fn billed_counts(&self) -> RequestCounts {
        self.lock().billed
    }

    /// Sets both counters to zero.
    pub fn reset_counts(&self) {
        let mut state = self.lock();
        state.counts = RequestCounts::default();
        state.billed = RequestCounts::default();
    }

    /// The simulator's routes (serve both the API and the auth base URL from it).
    pub fn router(&self) -> Router {
        Router::new()
            .route("/oauth2/v3/token", post(token_route))
            .route("/api/1/vehicles", get(vehicles_route))
            .route("/api/1/vehicles/{vin}/vehicle_data", get(vehicle_data_route))
            .route("/api/1/vehicles/{vin}/wake_up", post(wake_up_route))
            .route("/api/1/vehicles/{vin}/command/{command}", post(command_route))
            .fallback(fallback_route)
            .with_state(self.clone())
    }

    /// Serves [`TeslaSim::router`] on `listener` until the task is dropped.
    pub async fn serve(self, listener: tokio::net::TcpListener) -> std::io::Result<()> {
        axum::serve(listener, self.router()).await
    }

    fn token(&self, form: Result<BTreeMap<String, String>, String>) -> SimResponse {
        let now = self.clock.now();
        let mut state = self.lock();
        state.advance(now);
        let response = match form {
            Ok(form) => state.token_grant(&form, now),
            Err(e) => SimResponse::oauth_error(StatusCode::BAD_REQUEST, "invalid_request", &e),
        };
        state.record(Class::Token, response.status);
        response
    }

    /// The common path of `/api/1` routes: advance, fault, auth, then `inner`.
    fn api(
        &self,
        class: Class,
        headers: &HeaderMap,
        inner: impl FnOnce(&mut SimState, &str, DateTime<Utc>) -> SimResponse,
    ) -> SimResponse {
        let now = self.clock.now();
        let mut state = self.lock();
        state.advance(now);
        let response = match state.fault_response() {
            Some(r) => r,
            None => match state.authenticate(headers, now) {
                Ok(account) => inner(&mut state, &account, now),
                Err(r) => r,
            },
        };
        state.record(class, response.status);
        response
    }
}

impl SimState {
    fn token_string(&mut self, prefix: &str) -> String {
        format!("{prefix}{:032x}", self.rng.random::<u128>())
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
        self.access.insert(access.clone(), AccessToken { account: account.to_owned(), expires_at });
        self.refresh.insert(
            refresh.clone(),
            RefreshToken { account: account.to_owned(), expires_at: refresh_expires, used: false },
        );
        SimTokens { access_token: access, refresh_token: refresh, expires_at }
    }

    fn advance(&mut self, now: DateTime<Utc>) {
        if now <= self.last_advanced {
            return;
        }
        let dt = (now - self.last_advanced).to_std().unwrap_or_default();
        for v in self.vehicles.values_mut() {
            v.model.step(dt, &mut v.rng);
        }
        self.last_advanced = now;
    }

    fn record(&mut self, class: Class, status: StatusCode) {
        let bump = |c: &mut RequestCounts| match class {
            Class::Token => c.token += 1,
            Class::VehicleList => c.vehicle_list += 1,
            Class::VehicleData => c.vehicle_data += 1,
            Class::Command => c.commands += 1,
            Class::Wake => c.wakes += 1,
        };
        bump(&mut self.counts);
        if status.as_u16() < 500 {
            bump(&mut self.billed);
        }
    }

    fn fault_response(&self) -> Option<SimResponse> {
        match self.fault.as_ref()? {
            Fault::RateLimit { retry_after } => {
                let mut r = SimResponse::error(StatusCode::TOO_MANY_REQUESTS, "Too Many Requests");
                r.retry_after = Some(retry_after.as_secs());
                Some(r)
            }
            Fault::ServerError => {
                Some(SimResponse::error(StatusCode::INTERNAL_SERVER_ERROR, "internal server error"))
            }
            Fault::Malformed => Some(SimResponse {
                status: StatusCode::OK,
                retry_after: None,
                body: r#"{"response":{"id":100001,"vin":"5YJ3E1EA"#.to_owned(),
            }),
            Fault::WrongRegion { base_url } => Some(SimResponse::error(
                StatusCode::MISDIRECTED_REQUEST,
                &format!("user out of region, use base URL: {base_url}"),
            )),
            Fault::RevokeTokens => None,
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

    fn owned_vehicle(&mut self, account: &str, vin: &str) -> Result<&mut SimVehicle, SimResponse> {
        match self.vehicles.get_mut(vin) {
            Some(v) if v.account == account => Ok(v),
            _ => Err(SimResponse::error(StatusCode::NOT_FOUND, "not_found")),
        }
    }

    fn list(&self, account: &str) -> SimResponse {
        let number = self.accounts.get(account).map_or(0, |a| a.number);
        let entries: Vec<Value> = self
            .vehicles
            .values()
            .filter(|v| v.account == account)
            .map(|v| list_entry(v, number))
            .collect();
        let count = entries.len();
        SimResponse::ok(&json!({ "response": entries, "count": count }))
    }

    fn vehicle_data(
        &mut self,
        account: &str,
        vin: &str,
        query: Option<&str>,
        now: DateTime<Utc>,
    ) -> SimResponse {
        let number = self.accounts.get(account).map_or(0, |a| a.number);
        let vehicle = match self.owned_vehicle(account, vin) {
            Ok(v) => v,
            Err(r) => return r,
        };
        if vehicle.model.power_state != PowerState::Online {
            return SimResponse::asleep();
        }
        vehicle.model.touch();
        SimResponse::response(vehicle_data_json(vehicle, number, &endpoints(query), now))
    }

    fn wake_up(&mut self, account: &str, vin: &str) -> SimResponse {
        let number = self.accounts.get(account).map_or(0, |a| a.number);
        let vehicle = match self.owned_vehicle(account, vin) {
            Ok(v) => v,
            Err(r) => return r,
        };
        if vehicle.model.power_state == PowerState::Online {
            vehicle.model.touch();
        } else {
            vehicle.model.wake(&mut vehicle.rng);
        }
        SimResponse::response(list_entry(vehicle, number))
    }

    fn command(&mut self, account: &str, vin: &str, command: &str, body: &[u8]) -> SimResponse {
        let vehicle = match self.owned_vehicle(account, vin) {
            Ok(v) => v,
            Err(r) => return r,
        };
        let body: Value = if body.iter().all(u8::is_ascii_whitespace) {
            Value::Null
        } else {
            match serde_json::from_slice(body) {
                Ok(v) => v,
                Err(_) => return SimResponse::error(StatusCode::BAD_REQUEST, "invalid_field"),
            }
        };
        let known = ["charge_start", "charge_stop", "set_charging_amps", "set_charge_limit"];
        if !known.contains(&command) {
            return SimResponse::error(StatusCode::BAD_REQUEST, "invalid_command");
        }
        if vehicle.model.power_state != PowerState::Online {
            return SimResponse::asleep();
        }
        vehicle.model.touch();
        let model = &mut vehicle.model;
        let refused =
            |reason: &str| SimResponse::response(json!({"result": false, "reason": reason}));
        let effect = match command {
            "charge_start" => {
                let pending_start = model.has_pending(|e| *e == Effect::StartCharging);
                match model.charging {
                    ChargingStatus::Disconnected => return refused("disconnected"),
                    ChargingStatus::NoPower => return refused("no_power"),
                    ChargingStatus::Charging => return refused("is_charging"),
                    ChargingStatus::Complete => return refused("complete"),
                    ChargingStatus::Stopped if pending_start => return refused("is_charging"),
                    ChargingStatus::Stopped if model.battery_level >= model.charge_limit => {
                        return refused("complete");
                    }
                    ChargingStatus::Stopped => Effect::StartCharging,
                }
            }
            "charge_stop" => {
                let pending_start = model.has_pending(|e| *e == Effect::StartCharging);
                if model.charging == ChargingStatus::Charging || pending_start {
                    Effect::StopCharging
                } else {
                    return refused("not_charging");
                }
            }
            "set_charging_amps" => {
                let Some(amps) = body.get("charging_amps").and_then(json_u32) else {
                    return SimResponse::error(StatusCode::BAD_REQUEST, "invalid_field");
                };
                let amps = amps.min(model.max_amps);
                let pending = model.has_pending(|e| matches!(e, Effect::SetAmps(_)));
                if amps == model.amps && !pending {
                    return refused("already_set");
                }
                Effect::SetAmps(amps)
            }
            _ => {
                let Some(percent) = body.get("percent").and_then(json_u32) else {
                    return SimResponse::error(StatusCode::BAD_REQUEST, "invalid_field");
                };
                if !(50..=100).contains(&percent) {
                    return refused("invalid_charge_limit");
                }
                let pending = model.has_pending(|e| matches!(e, Effect::SetChargeLimit(_)));
                if (f64::from(percent) - model.charge_limit).abs() < 0.5 && !pending {
                    return refused("already_set");
                }
                Effect::SetChargeLimit(f64::from(percent))
            }
        };
        let latency = command_latency_secs(&mut vehicle.rng);
        vehicle.model.schedule(effect, latency);
        SimResponse::response(json!({"result": true, "reason": ""}))
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
            (k == "endpoints").then(|| v.replace("%3B", ";").replace("%3b", ";"))
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

fn list_entry(v: &SimVehicle, account_number: u64) -> Value {
    json!({
        "id": v.id,
        "user_id": account_number,
        "vehicle_id": v.vehicle_id,
        "vin": v.vin,
        "color": null,
        "access_type": "OWNER",
        "display_name": v.display_name,
        "option_codes": null,
        "granular_access": {"hide_private": false},
        "tokens": [format!("{:016x}", v.vehicle_id)],
        "state": v.model.power_state.as_str(),
        "in_service": false,
        "id_s": v.id.to_string(),
        "calendar_enabled": true,
        "api_version": 71,
        "backseat_token": null,
        "backseat_token_updated_at": null,
    })
}

fn round_to(x: f64, decimals: i32) -> f64 {
    let f = 10f64.powi(decimals);
    (x * f).round() / f
}

fn vehicle_data_json(
    v: &SimVehicle,
    account_number: u64,
    endpoints: &[String],
    now: DateTime<Utc>,
) -> Value {
    let m = &v.model;
    let ts = now.timestamp_millis();
    let wants = |name: &str| endpoints.iter().any(|e| e == name);
    let mut data = list_entry(v, account_number);
    let Some(obj) = data.as_object_mut() else { return data };
    let plugged = m.charging.is_plugged_in();
    let charging = m.charging == ChargingStatus::Charging;
    let range_mi = round_to(m.range_km() / KM_PER_MILE, 2);
    let minutes = m.minutes_to_limit();
    if wants("charge_state") {
        obj.insert(
            "charge_state".into(),
            json!({
                "battery_heater_on": false,
                "battery_level": m.battery_level.round(),
                "battery_range": range_mi,
                "charge_amps": m.amps,
                "charge_current_request": m.amps,
                "charge_current_request_max": m.max_amps,
                "charge_enable_request": charging,
                "charge_energy_added": 0.0,
                "charge_limit_soc": m.charge_limit.round(),
                "charge_limit_soc_max": 100,
                "charge_limit_soc_min": 50,
                "charge_limit_soc_std": 90,
                "charge_port_door_open": plugged,
                "charge_port_latch": if plugged { "Engaged" } else { "Disengaged" },
                "charge_rate": if charging { round_to(m.charger_power_kw() * m.km_per_kwh / KM_PER_MILE, 1) } else { 0.0 },
                "charger_actual_current": if charging { m.amps } else { 0 },
                "charger_phases": if charging { Some(m.phases) } else { None },
                "charger_pilot_current": m.max_amps,
                "charger_power": m.charger_power_kw().round(),
                "charger_voltage": if charging { m.voltage.round() } else if plugged { 2.0 } else { 0.0 },
                "charging_state": m.charging.as_str(),
                "conn_charge_cable": if plugged { "IEC" } else { "<invalid>" },
                "est_battery_range": round_to(range_mi * 0.9, 2),
                "fast_charger_present": false,
                "fast_charger_type": if plugged { "ACSingleWireCAN" } else { "<invalid>" },
                "ideal_battery_range": range_mi,
                "minutes_to_full_charge": minutes.round(),
                "scheduled_charging_mode": "Off",
                "scheduled_charging_pending": false,
                "scheduled_charging_start_time": null,
                "time_to_full_charge": round_to(minutes / 60.0, 2),
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
        let driving = m.trip.as_ref();
        let mut drive = json!({
            "heading": m.heading.round(),
            "power": if charging { -m.charger_power_kw().round() } else { 0.0 },
            "shift_state": if driving.is_some() { Some("D") } else { None },
            "speed": driving.map(|t| (t.speed_kmh / KM_PER_MILE).round()),
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
            d.insert("gps_as_of".into(), json!(now.timestamp()));
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
                "vehicle_name": v.display_name,
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

async fn token_route(
    State(sim): State<TeslaSim>,
    form: Result<Form<BTreeMap<String, String>>, FormRejection>,
) -> SimResponse {
    sim.token(form.map(|Form(f)| f).map_err(|e| e.body_text()))
}

async fn vehicles_route(State(sim): State<TeslaSim>, headers: HeaderMap) -> SimResponse {
    sim.api(Class::VehicleList, &headers, |state, account, _| state.list(account))
}

async fn vehicle_data_route(
    State(sim): State<TeslaSim>,
    Path(vin): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> SimResponse {
    sim.api(Class::VehicleData, &headers, |state, account, now| {
        state.vehicle_data(account, &vin, query.as_deref(), now)
    })
}

async fn wake_up_route(
    State(sim): State<TeslaSim>,
    Path(vin): Path<String>,
    headers: HeaderMap,
) -> SimResponse {
    sim.api(Class::Wake, &headers, |state, account, _| state.wake_up(account, &vin))
}

async fn command_route(
    State(sim): State<TeslaSim>,
    Path((vin, command)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> SimResponse {
    sim.api(Class::Command, &headers, |state, account, _| {
        state.command(account, &vin, &command, &body)
    })
}

async fn fallback_route() -> SimResponse {
    SimResponse::error(StatusCode::NOT_FOUND, "not_found")
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use oemgate_core::ManualClock;

    fn setup() -> (Arc<ManualClock>, TeslaSim) {
        let clock = Arc::new(ManualClock::new(Utc.with_ymd_and_hms(2025, 3, 1, 12, 0, 0).unwrap()));
        let sim = TeslaSim::new(7, clock.clone());
        (clock, sim)
    }

    #[test]
    fn generated_vins_are_valid() {
        let vin = generate_vin("modely", 2024, 123);
        assert_eq!(vin.len(), 17);
        assert!(vin.starts_with("7SAYGDEE"));
        assert_eq!(&vin[9..10], "R");
        assert_eq!(vin_check_digit(&vin), vin.chars().nth(8).unwrap());
        // A known-valid VIN (check digit 7 at position 9).
        assert_eq!(vin_check_digit("1M8GDM9AXKP042788"), 'X');
        assert_eq!(crate::map::model_year_from_vin(&vin), Some(2024.0));
        assert_eq!(crate::map::model_from_vin(&vin).as_deref(), Some("Model Y"));
    }

    #[test]
    fn charging_stops_at_the_limit() {
        let (clock, sim) = setup();
        let spec = VehicleSpec {
            battery_level: 70.0,
            charge_limit: 80.0,
            plugged_in: true,
            charging: true,
            drives: Some(false),
            ..Default::default()
        };
        let vin = sim.add_vehicle("a", spec);
        // 11.04 kW into 75 kWh: 10 % takes about 41 minutes.
        clock.advance(Duration::from_secs(20 * 60));
        let m = sim.vehicle(&vin).unwrap();
        assert_eq!(m.charging, ChargingStatus::Charging);
        assert!((m.battery_level - (70.0 + 11.04 / 3.0 / 75.0 * 100.0)).abs() < 0.01, "{m:?}");
        assert_eq!(m.power_state, PowerState::Online);
        clock.advance(Duration::from_secs(30 * 60));
        let m = sim.vehicle(&vin).unwrap();
        assert_eq!(m.charging, ChargingStatus::Complete);
        assert!((m.battery_level - 80.0).abs() < 1e-9);
        // Complete and idle: asleep 15 minutes after charging ended.
        clock.advance(Duration::from_secs(20 * 60));
        assert_eq!(sim.vehicle(&vin).unwrap().power_state, PowerState::Asleep);
    }

    #[test]
    fn idle_cars_fall_asleep_and_wake_within_30s() {
        let (clock, sim) = setup();
        let vin = sim.add_vehicle("a", VehicleSpec { drives: Some(false), ..Default::default() });
        clock.advance(Duration::from_secs(14 * 60));
        assert_eq!(sim.vehicle(&vin).unwrap().power_state, PowerState::Online);
        clock.advance(Duration::from_secs(61));
        assert_eq!(sim.vehicle(&vin).unwrap().power_state, PowerState::Asleep);
        let woke = sim.update_vehicle(&vin, |m| {
            assert!(m.wake(&mut StdRng::seed_from_u64(1)));
        });
        assert!(woke);
        clock.advance(Duration::from_secs(9));
        assert_eq!(sim.vehicle(&vin).unwrap().power_state, PowerState::Asleep);
        clock.advance(Duration::from_secs(22));
        assert_eq!(sim.vehicle(&vin).unwrap().power_state, PowerState::Online);
    }

    #[test]
    fn effects_land_after_their_latency() {
        let mut m = VehicleModel::from_spec(
            &VehicleSpec { plugged_in: true, drives: Some(false), ..Default::default() },
            false,
        );
        assert_eq!(m.charging, ChargingStatus::Stopped);
        let mut rng = StdRng::seed_from_u64(3);
        m.schedule(Effect::StartCharging, 20.0);
        m.step(Duration::from_secs(19), &mut rng);
        assert_eq!(m.charging, ChargingStatus::Stopped);
        m.step(Duration::from_secs(2), &mut rng);
        assert_eq!(m.charging, ChargingStatus::Charging);
        assert!(m.pending.is_empty());
    }

    #[test]
    fn latency_distribution_has_median_near_20s() {
        let mut rng = StdRng::seed_from_u64(11);
        let mut draws: Vec<f64> = (0..2001).map(|_| command_latency_secs(&mut rng)).collect();
        draws.sort_by(f64::total_cmp);
        let median = draws[1000];
        assert!((16.0..24.0).contains(&median), "median {median}");
        assert!(draws[0] >= COMMAND_LATENCY_MIN_SECS);
        assert!(draws[2000] <= COMMAND_LATENCY_MAX_SECS);
    }

    #[test]
    fn deterministic_given_seed_and_clock() {
        let run = || {
            let (clock, sim) = setup();
            let vins: Vec<String> = (0..20)
                .map(|i| {
                    sim.add_vehicle(
                        "a",
                        VehicleSpec { battery_level: 30.0 + f64::from(i), ..Default::default() },
                    )
                })
                .collect();
            for _ in 0..48 {
                clock.advance(Duration::from_secs(1800));
                sim.advance_to(clock.now());
            }
            vins.iter().map(|v| sim.vehicle(v).unwrap()).collect::<Vec<_>>()
        };
        let a = run();
        let b = run();
        assert_eq!(a, b);
        // Some cars drove (odometer rose), and no car's battery left 0..=100.
        assert!(a.iter().any(|m| m.odometer_km > 15_000.0 + 1.0), "nobody drove");
        assert!(a.iter().all(|m| (0.0..=100.0).contains(&m.battery_level)));
        assert!(a.iter().filter(|m| m.drives).all(|m| m.pending.is_empty()));
    }

    #[test]
    fn endpoints_query() {
        assert_eq!(
            endpoints(Some("endpoints=charge_state%3Bdrive_state")),
            ["charge_state", "drive_state"]
        );
        assert_eq!(endpoints(Some("x=1&endpoints=location_data")), ["location_data"]);
        assert_eq!(endpoints(None).len(), 5);
    }
}
