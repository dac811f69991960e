//! Electric vehicle physics, lifted from the first Tesla simulator's `VehicleModel` and
//! generalized: charging limited by car and charger, driving along planned outings between
//! home and a destination, and the connectivity state machine (online/asleep/offline).
//!
//! The model here is passive: the world (`crate::world`) calls [`VehicleModel::integrate`]
//! over intervals in which nothing discrete happens, and applies discrete events (trip
//! start/end, plug-in, wake-up, falling asleep, reaching the charge limit) at their exact
//! instants, which it finds with the `*_at`/`secs_to_*` helpers.

use chrono::{DateTime, Duration as ChronoDuration, Utc};
use serde::{Deserialize, Serialize};

use crate::rng::{SimRng, hash, unit};

/// Below this distance from the charge limit a charging car counts as complete.
pub const LEVEL_EPS: f64 = 1e-6;
/// Lowest settable charge limit in %.
pub const MIN_CHARGE_LIMIT: f64 = 50.0;
/// Highest settable charge limit in %.
pub const MAX_CHARGE_LIMIT: f64 = 100.0;
/// A trip is skipped when the round trip would leave less than this state of charge (%).
pub const MIN_LEVEL_AFTER_TRIP: f64 = 5.0;

/// A vehicle's connectivity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PowerState {
    /// Awake: data and commands work.
    Online,
    /// Sleeping: wakes on a wake-up request (10–30 s) or when it starts driving.
    Asleep,
    /// No connectivity: stays so until set back by a test.
    Offline,
}

impl PowerState {
    /// Lower-case spelling (`online`, `asleep`, `offline`), which is also Tesla's.
    pub fn as_str(self) -> &'static str {
        match self {
            PowerState::Online => "online",
            PowerState::Asleep => "asleep",
            PowerState::Offline => "offline",
        }
    }
}

/// The charge port as the physics sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChargeState {
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

impl ChargeState {
    /// Whether a cable is connected.
    pub fn is_plugged_in(self) -> bool {
        self != ChargeState::Disconnected
    }
}

/// Why a vehicle leaves home.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutingKind {
    /// Weekday commute to work and back.
    Commute,
    /// An occasional trip (shopping, visits, leisure).
    Errand,
}

/// A planned round trip from home: drive out, stay, drive back.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Outing {
    /// Why.
    pub kind: OutingKind,
    /// When it leaves home.
    pub depart_at: DateTime<Utc>,
    /// One-way distance in km.
    pub distance_km: f64,
    /// Average speed in km/h.
    pub speed_kmh: f64,
    /// How long it stays at the destination, in seconds.
    pub stay_secs: f64,
    /// Direction of the destination from home, in degrees.
    pub bearing_deg: f64,
}

impl Outing {
    /// One-way driving time in seconds.
    pub fn drive_secs(&self) -> f64 {
        self.distance_km / self.speed_kmh.max(1.0) * 3600.0
    }
}

/// A drive in progress: position, odometer and battery are interpolated from these, so
/// splitting the drive into more intervals never changes where the car ends up.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Trip {
    /// When it started.
    pub depart_at: DateTime<Utc>,
    /// When it arrives.
    pub arrive_at: DateTime<Utc>,
    /// Distance in km.
    pub distance_km: f64,
    /// Start position.
    pub from: (f64, f64),
    /// End position.
    pub to: (f64, f64),
    /// Whether it ends at home.
    pub to_home: bool,
    /// Battery level at departure, in %.
    pub start_level: f64,
    /// Odometer at departure, in km.
    pub start_odometer_km: f64,
    /// Return departure once at the destination (for outbound legs).
    pub stay_secs: f64,
}

impl Trip {
    /// Fraction of the trip done at `t` (0..=1).
    pub fn progress(&self, t: DateTime<Utc>) -> f64 {
        let total = secs_between(self.depart_at, self.arrive_at);
        if total <= 0.0 {
            return 1.0;
        }
        (secs_between(self.depart_at, t) / total).clamp(0.0, 1.0)
    }

    /// Average speed in km/h.
    pub fn speed_kmh(&self) -> f64 {
        let h = secs_between(self.depart_at, self.arrive_at) / 3600.0;
        if h > 0.0 { self.distance_km / h } else { 0.0 }
    }
}

/// Seconds from `a` to `b` (negative if `b` is earlier).
pub fn secs_between(a: DateTime<Utc>, b: DateTime<Utc>) -> f64 {
    let d = b - a;
    d.num_seconds() as f64 + f64::from(d.subsec_nanos()) * 1e-9
}

/// `t` plus `secs` seconds, rounded up to the nanosecond (so that a threshold computed as
/// "in `secs`" is reached, not missed by rounding).
pub fn add_secs(t: DateTime<Utc>, secs: f64) -> DateTime<Utc> {
    if !secs.is_finite() {
        return t;
    }
    let nanos = (secs * 1e9).ceil().clamp(-9.0e18, 9.0e18) as i64;
    t.checked_add_signed(ChronoDuration::nanoseconds(nanos)).unwrap_or(t)
}

/// Charging power in kW at a connection: `amps * voltage * phases / 1000`, capped by the
/// car's on-board charger (`car_max_ac_kw`) and, if given, the charger's maximum.
pub fn charge_power_kw(
    amps: f64,
    voltage: f64,
    phases: u32,
    car_max_ac_kw: f64,
    charger_max_kw: Option<f64>,
) -> f64 {
    let raw = amps.max(0.0) * voltage.max(0.0) * f64::from(phases.max(1)) / 1000.0;
    let mut kw = raw.min(car_max_ac_kw.max(0.0));
    if let Some(max) = charger_max_kw {
        kw = kw.min(max.max(0.0));
    }
    if kw.is_finite() { kw } else { 0.0 }
}

/// Moves `(lat, lon)` by `km` along `bearing_deg` (flat-earth approximation, fine for
/// the tens of kilometres cars drive here).
pub fn offset_position(lat: f64, lon: f64, bearing_deg: f64, km: f64) -> (f64, f64) {
    let rad = bearing_deg.to_radians();
    let new_lat = (lat + rad.cos() * km / 111.0).clamp(-89.0, 89.0);
    let lon_scale = (111.0 * new_lat.to_radians().cos()).max(1.0);
    (new_lat, wrap_longitude(lon + rad.sin() * km / lon_scale))
}

fn wrap_longitude(lon: f64) -> f64 {
    let wrapped = (lon + 180.0).rem_euclid(360.0) - 180.0;
    if wrapped.is_finite() { wrapped } else { 0.0 }
}

/// How a vehicle's days look.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DrivingPattern {
    /// One-way commute distance in km on weekdays; `None` for no commute.
    pub commute_km: Option<f64>,
    /// Mean number of errands (round trips) per week.
    pub errands_per_week: f64,
    /// Share of arrivals at home after which the driver plugs in (more likely when the
    /// battery is low: see [`plug_in_probability`]).
    pub plug_in_share: f64,
}

impl Default for DrivingPattern {
    fn default() -> Self {
        Self { commute_km: Some(18.0), errands_per_week: 3.0, plug_in_share: 0.5 }
    }
}

/// The chance the driver plugs in when arriving home at `level` %: the base share, rising
/// linearly to certainty as the battery approaches empty from 60 %.
pub fn plug_in_probability(share: f64, level: f64) -> f64 {
    let share = share.clamp(0.0, 1.0);
    let lowness = ((60.0 - level) / 60.0).clamp(0.0, 1.0);
    share + (1.0 - share) * lowness
}

/// The outings of one local day, seeded by `(key, day)` only, so they do not depend on how
/// the world is read. `midnight` is the UTC instant of local midnight of that day.
pub fn plan_day(
    key: u64,
    day: i64,
    weekend: bool,
    midnight: DateTime<Utc>,
    pattern: &DrivingPattern,
) -> Vec<Outing> {
    let h = |salt: u64| unit(hash(&[key, day as u64, salt]));
    let at_hour = |hours: f64| add_secs(midnight, hours * 3600.0);
    let mut outings = Vec::new();
    if let Some(km) = pattern.commute_km.filter(|km| *km > 0.0)
        && !weekend
        && h(1) < 0.92
    {
        // Leave between 06:45 and 08:30, stay a working day of 7.5–9.5 hours.
        let speed = 35.0 + 30.0 * h(2);
        let distance = km * (0.95 + 0.1 * h(3));
        let drive = distance / speed * 3600.0;
        outings.push(Outing {
            kind: OutingKind::Commute,
            depart_at: at_hour(6.75 + 1.75 * h(4)),
            distance_km: distance,
            speed_kmh: speed,
            stay_secs: (7.5 + 2.0 * h(5)) * 3600.0 - drive,
            bearing_deg: unit(hash(&[key, 0xBEA2])) * 360.0,
        });
    }
    // Errands: at most two a day, Poisson-ish from the weekly mean.
    let per_day = (pattern.errands_per_week.max(0.0) / 7.0).min(2.0);
    let mut rng = SimRng::new(hash(&[key, day as u64, 0xE22A]));
    let mut count = 0;
    let p_one = 1.0 - (-per_day).exp();
    if rng.chance(p_one) {
        count += 1;
        if rng.chance(p_one * 0.3) {
            count += 1;
        }
    }
    for _ in 0..count {
        // Errands on weekdays happen in the evening (after a commute), on weekends all day.
        let start = if weekend || pattern.commute_km.is_none() { 9.0 } else { 18.5 };
        let depart = start + rng.range(0.0, 20.5 - start);
        outings.push(Outing {
            kind: OutingKind::Errand,
            depart_at: at_hour(depart),
            distance_km: rng.range(2.0, 30.0),
            speed_kmh: rng.range(30.0, 70.0),
            stay_secs: rng.range(20.0, 150.0) * 60.0,
            bearing_deg: rng.range(0.0, 360.0),
        });
    }
    outings.sort_by_key(|o| o.depart_at);
    outings
}

/// The physics of one simulated vehicle. Fields are public so tests (and vendor
/// simulators) can read and set them through `World::update_vehicle`.
#[derive(Clone, Debug, PartialEq)]
pub struct VehicleModel {
    /// State of charge in %.
    pub battery_level: f64,
    /// Usable capacity in kWh.
    pub capacity_kwh: f64,
    /// Efficiency in km per kWh, for range and driving consumption.
    pub km_per_kwh: f64,
    /// Charge limit in %.
    pub charge_limit: f64,
    /// The charge port.
    pub charging: ChargeState,
    /// Charging current setting in A.
    pub amps: u32,
    /// The car's maximum charging current in A.
    pub max_amps: u32,
    /// Voltage of the connection in V.
    pub voltage: f64,
    /// Phases of the connection.
    pub phases: u32,
    /// The car's on-board (AC) charger limit in kW.
    pub max_ac_kw: f64,
    /// Energy added in the current charging session, in kWh.
    pub session_kwh: f64,
    /// Odometer in km.
    pub odometer_km: f64,
    /// Position.
    pub latitude: f64,
    /// Position.
    pub longitude: f64,
    /// Heading in degrees.
    pub heading: f64,
    /// Whether the car is parked at home (not driving, not away).
    pub at_home: bool,
    /// Connectivity.
    pub power_state: PowerState,
    /// Last moment something kept the car awake (drive, charge, command, data request);
    /// an online car with nothing going on falls asleep `sleep_after` later.
    pub last_activity: DateTime<Utc>,
    /// When a requested wake-up completes.
    pub waking_at: Option<DateTime<Utc>>,
    /// When the driver will plug in (after arriving home).
    pub plug_in_at: Option<DateTime<Utc>>,
    /// The drive in progress.
    pub trip: Option<Trip>,
    /// When the car leaves its destination to drive home (while away).
    pub return_at: Option<DateTime<Utc>>,
    /// Distance of the way home, km (while away).
    pub return_km: f64,
    /// Speed of the way home, km/h (while away).
    pub return_speed_kmh: f64,
    /// Whether the car starts charging by itself when plugged in below its limit.
    pub charge_on_plug: bool,
    /// The daily driving pattern.
    pub pattern: DrivingPattern,
    /// Today's remaining outings.
    pub plan: Vec<Outing>,
}

impl VehicleModel {
    /// Range in km at the current state of charge.
    pub fn range_km(&self) -> f64 {
        self.battery_level / 100.0 * self.capacity_kwh * self.km_per_kwh
    }

    /// Whether the car is driving.
    pub fn is_driving(&self) -> bool {
        self.trip.is_some()
    }

    /// Charging power in kW given the current available at the connection (`None`: the
    /// car's own setting only) — 0 unless charging.
    pub fn charge_power_kw(&self, charger_max_amps: Option<f64>) -> f64 {
        if self.charging != ChargeState::Charging {
            return 0.0;
        }
        let mut amps = f64::from(self.amps.min(self.max_amps));
        if let Some(limit) = charger_max_amps {
            amps = amps.min(limit);
        }
        charge_power_kw(amps, self.voltage, self.phases, self.max_ac_kw, None)
    }

    /// Seconds until the charge limit at `power_kw`; `None` if not charging.
    pub fn secs_to_limit(&self, power_kw: f64) -> Option<f64> {
        if power_kw <= 0.0 || self.capacity_kwh <= 0.0 {
            return None;
        }
        let secs = (self.charge_limit - self.battery_level) / 100.0 * self.capacity_kwh / power_kw
            * 3600.0;
        Some(secs.max(0.0))
    }

    /// Minutes until the charge limit at `power_kw` (0 unless charging).
    pub fn minutes_to_limit(&self, power_kw: f64) -> f64 {
        self.secs_to_limit(power_kw).map_or(0.0, |s| s / 60.0)
    }

    /// Whether nothing keeps the car awake.
    pub fn can_fall_asleep(&self) -> bool {
        self.power_state == PowerState::Online
            && self.trip.is_none()
            && self.waking_at.is_none()
            && self.charging != ChargeState::Charging
    }

    /// Energy in kWh the round trip of `outing` needs.
    pub fn outing_kwh(&self, outing: &Outing) -> f64 {
        2.0 * outing.distance_km / self.km_per_kwh.max(0.1)
    }

    /// Whether the battery allows `outing` with [`MIN_LEVEL_AFTER_TRIP`] to spare.
    pub fn can_make(&self, outing: &Outing) -> bool {
        let available = (self.battery_level - MIN_LEVEL_AFTER_TRIP) / 100.0 * self.capacity_kwh;
        available >= self.outing_kwh(outing)
    }

    /// Advances continuous quantities from `from` to `to` (nothing discrete happens in
    /// between): charging at `power_kw`, or driving along the trip.
    pub fn integrate(&mut self, from: DateTime<Utc>, to: DateTime<Utc>, power_kw: f64) {
        let secs = secs_between(from, to);
        if secs <= 0.0 {
            return;
        }
        if let Some(trip) = &self.trip {
            let p = trip.progress(to);
            let km = trip.distance_km * p;
            let kwh = km / self.km_per_kwh.max(0.1);
            self.battery_level =
                (trip.start_level - kwh / self.capacity_kwh.max(1e-9) * 100.0).clamp(0.0, 100.0);
            self.odometer_km = trip.start_odometer_km + km;
            self.latitude = trip.from.0 + (trip.to.0 - trip.from.0) * p;
            self.longitude = trip.from.1 + (trip.to.1 - trip.from.1) * p;
            return;
        }
        if power_kw > 0.0 && self.charging == ChargeState::Charging {
            let kwh = power_kw * secs / 3600.0;
            self.session_kwh += kwh;
            self.battery_level = (self.battery_level + kwh / self.capacity_kwh.max(1e-9) * 100.0)
                .min(self.charge_limit.max(self.battery_level));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use proptest::prelude::*;

    #[test]
    fn power_is_limited_by_car_and_charger() {
        assert!((charge_power_kw(16.0, 230.0, 3, 11.0, None) - 11.0).abs() < 1e-9);
        assert!((charge_power_kw(10.0, 230.0, 3, 11.0, None) - 6.9).abs() < 1e-9);
        assert!((charge_power_kw(32.0, 240.0, 1, 11.5, Some(7.4)) - 7.4).abs() < 1e-9);
        assert_eq!(charge_power_kw(-3.0, 230.0, 1, 11.0, None), 0.0);
    }

    #[test]
    fn weekday_plans_commute_and_weekends_do_not() {
        let midnight = Utc.with_ymd_and_hms(2026, 6, 1, 22, 0, 0).unwrap();
        let pattern = DrivingPattern { errands_per_week: 0.0, ..DrivingPattern::default() };
        let commuting = (0..20)
            .filter(|d| {
                plan_day(9, *d, false, midnight, &pattern)
                    .iter()
                    .any(|o| o.kind == OutingKind::Commute)
            })
            .count();
        assert!(commuting >= 15, "{commuting}");
        assert!(plan_day(9, 1, true, midnight, &pattern).is_empty());
        let a = plan_day(9, 3, false, midnight, &DrivingPattern::default());
        let b = plan_day(9, 3, false, midnight, &DrivingPattern::default());
        assert_eq!(a, b);
    }

    proptest! {
        #[test]
        fn charge_power_never_exceeds_caps(
            amps in 0.0f64..80.0, v in 100.0f64..250.0, phases in 1u32..=3,
            car in 1.0f64..22.0, chg in proptest::option::of(1.0f64..22.0),
        ) {
            let kw = charge_power_kw(amps, v, phases, car, chg);
            prop_assert!(kw >= 0.0 && kw <= car + 1e-9);
            if let Some(c) = chg { prop_assert!(kw <= c + 1e-9); }
        }

        #[test]
        fn plug_probability_is_monotone(share in 0.0f64..=1.0, a in 0.0f64..=100.0, b in 0.0f64..=100.0) {
            let (lo, hi) = if a < b { (a, b) } else { (b, a) };
            prop_assert!(plug_in_probability(share, lo) >= plug_in_probability(share, hi));
            prop_assert!((0.0..=1.0).contains(&plug_in_probability(share, lo)));
        }
    }
}
