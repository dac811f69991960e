//! One site's simulation: its devices, its clock position and the event-driven stepping.
//!
//! # Stepping
//!
//! Rates (PV power, house load, thermostat decisions, battery power, charging power) are
//! re-evaluated on a fixed grid of [`STEP`] (10 s of simulated time, aligned to the Unix
//! epoch) and at every discrete event; between those instants they are constant and the
//! state is integrated exactly. Discrete events — command effects, wake-ups, departures
//! and arrivals, plug-ins, a charge limit or battery bound being reached, falling asleep —
//! are boundaries of their own, so they happen and are logged at their exact instant.
//!
//! A read at an arbitrary instant integrates up to that instant without re-evaluating
//! rates, so reading more or less often does not change what the site does (up to
//! floating-point rounding); all randomness is either counter-based on time (`crate::rng`)
//! or drawn from per-device streams only when an event happens.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, Duration as ChronoDuration, TimeZone, Utc};

use crate::command::{CommandOutcome, CommandRejected, WorldCommand};
use crate::ids::{DeviceId, SiteId};
use crate::physics::battery::{BatteryInputs, BatteryModel, battery_power_w};
use crate::physics::charger::{ChargerModel, MIN_CURRENT_A};
use crate::physics::hvac::{HvacHold, HvacModel, outdoor_temp_c, thermostat};
use crate::physics::load::{house_load_w, load_noise};
use crate::physics::solar::{cloudiness, solar_output_w};
use crate::physics::vehicle::{
    ChargeState, LEVEL_EPS, MAX_CHARGE_LIMIT, MIN_CHARGE_LIMIT, Outing, PowerState, Trip,
    VehicleModel, add_secs, offset_position, plan_day, plug_in_probability, secs_between,
};
use crate::rng::SimRng;
use crate::spec::SiteSpec;
use crate::truth::{Change, ChangeCause, ChangeKind};

/// The fixed step on which rates are re-evaluated (simulated time).
pub const STEP: std::time::Duration = std::time::Duration::from_secs(STEP_SECS as u64);
const STEP_SECS: i64 = 10;
/// Most discrete events handled at one instant before moving on (a guard against an event
/// that keeps rescheduling itself at the same instant).
const MAX_EVENTS_PER_INSTANT: usize = 256;

/// A PV inverter's state. Fields are public so tests can set them through
/// `World::update_inverter`.
#[derive(Clone, Debug, PartialEq)]
pub struct InverterModel {
    /// Nameplate, W.
    pub capacity_w: f64,
    /// Production now, W.
    pub production_w: f64,
    /// Production counter, kWh.
    pub lifetime_kwh: f64,
    /// Cloud connectivity.
    pub online: bool,
}

/// A grid meter's state (it measures the site; only connectivity is its own).
#[derive(Clone, Debug, PartialEq)]
pub struct MeterModel {
    /// Cloud connectivity.
    pub online: bool,
}

#[derive(Clone, Debug)]
pub(crate) struct Dev<M> {
    pub vendor: String,
    pub name: String,
    pub m: M,
}

#[derive(Clone, Debug)]
pub(crate) struct VehicleSim {
    pub vendor: String,
    pub name: String,
    pub make: String,
    pub model: String,
    pub year: u16,
    pub key: u64,
    pub rng: SimRng,
    /// Connection when not on a site charger.
    pub own_voltage: f64,
    pub own_phases: u32,
    pub m: VehicleModel,
    /// Charging power in effect since the last rate evaluation, kW.
    pub power_kw: f64,
}

#[derive(Clone, Debug)]
pub(crate) struct PendingEffect {
    pub ticket: u64,
    pub vendor: String,
    pub device: DeviceId,
    pub command: WorldCommand,
    pub due_at: DateTime<Utc>,
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct Params {
    pub sleep_after_secs: f64,
    pub wake_delay: (f64, f64),
}

/// What an operation on a site produced, for the world to file.
#[derive(Debug, Default)]
pub(crate) struct Out {
    pub changes: Vec<Change>,
    pub outcomes: Vec<(String, u64, CommandOutcome)>,
}

impl Out {
    fn log(&mut self, at: DateTime<Utc>, device: &DeviceId, kind: ChangeKind, cause: &ChangeCause) {
        self.changes.push(Change { at, device: device.clone(), kind, cause: cause.clone() });
    }
}

#[derive(Clone, Debug)]
pub(crate) struct SiteSim {
    pub id: SiteId,
    pub spec: SiteSpec,
    pub key: u64,
    /// The instant the state describes.
    pub t: DateTime<Utc>,
    /// Rates must be re-evaluated before integrating further.
    pub dirty: bool,
    pub planned_day: Option<i64>,
    pub pv_w: f64,
    pub load_w: f64,
    pub hvac_w: f64,
    pub ev_w: f64,
    pub battery_w: f64,
    pub grid_w: f64,
    pub outdoor_c: f64,
    pub import_kwh: f64,
    pub export_kwh: f64,
    pub pv_kwh: f64,
    pub vehicles: BTreeMap<DeviceId, VehicleSim>,
    pub batteries: BTreeMap<DeviceId, Dev<BatteryModel>>,
    pub inverters: BTreeMap<DeviceId, Dev<InverterModel>>,
    pub meters: BTreeMap<DeviceId, Dev<MeterModel>>,
    pub chargers: BTreeMap<DeviceId, Dev<ChargerModel>>,
    pub hvacs: BTreeMap<DeviceId, Dev<HvacModel>>,
    /// Command effects waiting for their latency, ordered by (due, ticket).
    pub effects: Vec<PendingEffect>,
}

fn next_grid(t: DateTime<Utc>) -> DateTime<Utc> {
    let secs = t.timestamp().div_euclid(STEP_SECS).saturating_add(1).saturating_mul(STEP_SECS);
    Utc.timestamp_opt(secs, 0).single().unwrap_or(DateTime::<Utc>::MAX_UTC)
}

fn unix_secs_f64(t: DateTime<Utc>) -> f64 {
    t.timestamp() as f64 + f64::from(t.timestamp_subsec_nanos()) * 1e-9
}

impl SiteSim {
    pub fn new(id: SiteId, spec: SiteSpec, key: u64, t: DateTime<Utc>) -> Self {
        Self {
            id,
            spec,
            key,
            t,
            dirty: true,
            planned_day: None,
            pv_w: 0.0,
            load_w: 0.0,
            hvac_w: 0.0,
            ev_w: 0.0,
            battery_w: 0.0,
            grid_w: 0.0,
            outdoor_c: 10.0,
            import_kwh: 0.0,
            export_kwh: 0.0,
            pv_kwh: 0.0,
            vehicles: BTreeMap::new(),
            batteries: BTreeMap::new(),
            inverters: BTreeMap::new(),
            meters: BTreeMap::new(),
            chargers: BTreeMap::new(),
            hvacs: BTreeMap::new(),
            effects: Vec::new(),
        }
    }

    // ---- time of day -------------------------------------------------------------------

    fn offset_secs(&self) -> i64 {
        i64::from(self.spec.utc_offset_minutes) * 60
    }

    /// Local hour of day (0..24).
    pub fn local_hour(&self, t: DateTime<Utc>) -> f64 {
        let local = unix_secs_f64(t) + self.offset_secs() as f64;
        local.rem_euclid(86_400.0) / 3600.0
    }

    /// Local day number (days since 1970-01-01 local).
    pub fn local_day(&self, t: DateTime<Utc>) -> i64 {
        (t.timestamp() + self.offset_secs()).div_euclid(86_400)
    }

    /// Saturday or Sunday (1970-01-01 was a Thursday).
    pub fn is_weekend(day: i64) -> bool {
        (day + 3).rem_euclid(7) >= 5
    }

    fn day_of_year(&self, t: DateTime<Utc>) -> u32 {
        (t + ChronoDuration::seconds(self.offset_secs())).ordinal()
    }

    fn local_midnight(&self, day: i64) -> DateTime<Utc> {
        let secs = day.saturating_mul(86_400) - self.offset_secs();
        Utc.timestamp_opt(secs, 0).single().unwrap_or(self.t)
    }

    // ---- lookups -----------------------------------------------------------------------

    pub fn device_ids(&self) -> Vec<DeviceId> {
        let mut ids: Vec<DeviceId> = Vec::new();
        ids.extend(self.vehicles.keys().cloned());
        ids.extend(self.batteries.keys().cloned());
        ids.extend(self.inverters.keys().cloned());
        ids.extend(self.meters.keys().cloned());
        ids.extend(self.chargers.keys().cloned());
        ids.extend(self.hvacs.keys().cloned());
        ids
    }

    /// The site charger a vehicle is plugged into.
    pub fn charger_of(&self, vehicle: &DeviceId) -> Option<DeviceId> {
        self.chargers
            .iter()
            .find(|(_, c)| c.m.vehicle.as_ref() == Some(vehicle))
            .map(|(id, _)| id.clone())
    }

    /// The current limit (A) a vehicle's charger imposes, if it is on one.
    pub fn charger_amps_for(&self, vehicle: &DeviceId) -> Option<f64> {
        self.chargers
            .values()
            .find(|c| c.m.vehicle.as_ref() == Some(vehicle))
            .map(|c| c.m.max_current_a)
    }

    fn has_pending(&self, device: &DeviceId) -> bool {
        self.effects.iter().any(|e| &e.device == device)
    }

    fn can_sleep(&self, vid: &DeviceId, v: &VehicleSim) -> bool {
        v.m.can_fall_asleep() && !self.has_pending(vid)
    }

    // ---- stepping ----------------------------------------------------------------------

    /// Advances to `to` (no-op if the site is already there or later).
    pub fn advance(&mut self, to: DateTime<Utc>, p: &Params, out: &mut Out) {
        loop {
            self.process_due(p, out);
            if self.dirty {
                self.recompute(out);
                self.dirty = false;
            }
            if self.t >= to {
                break;
            }
            let boundary = self.next_boundary(p);
            let next = boundary.min(to);
            self.integrate(self.t, next);
            self.t = next;
            if next == boundary {
                self.dirty = true;
            }
        }
    }

    fn next_boundary(&self, p: &Params) -> DateTime<Utc> {
        let t = self.t;
        let mut b = next_grid(t);
        let mut consider = |c: DateTime<Utc>| {
            if c > t && c < b {
                b = c;
            }
        };
        if let Some(e) = self.effects.first() {
            consider(e.due_at);
        }
        for (vid, v) in &self.vehicles {
            let m = &v.m;
            if let Some(w) = m.waking_at {
                consider(w);
            }
            if let Some(at) = m.plug_in_at {
                consider(at);
            }
            if let Some(trip) = &m.trip {
                consider(trip.arrive_at);
            } else if !m.at_home
                && let Some(r) = m.return_at
            {
                consider(r);
            }
            if let Some(o) = m.plan.first() {
                consider(o.depart_at);
            }
            if self.can_sleep(vid, v) {
                consider(add_secs(m.last_activity, p.sleep_after_secs));
            }
            if let Some(secs) = m.secs_to_limit(v.power_kw).filter(|s| *s > 0.0) {
                consider(add_secs(t, secs));
            }
        }
        for b in self.batteries.values() {
            if let Some(secs) = b.m.secs_to_bound() {
                consider(add_secs(t, secs));
            }
        }
        b
    }

    fn integrate(&mut self, from: DateTime<Utc>, to: DateTime<Utc>) {
        let secs = secs_between(from, to);
        if secs <= 0.0 {
            return;
        }
        let hours = secs / 3600.0;
        for v in self.vehicles.values_mut() {
            v.m.integrate(from, to, v.power_kw);
        }
        for c in self.chargers.values_mut() {
            if let Some(v) = c.m.vehicle.as_ref().and_then(|vid| self.vehicles.get(vid)) {
                let kwh = v.power_kw * hours;
                c.m.session_kwh += kwh;
                c.m.lifetime_kwh += kwh;
            }
        }
        for b in self.batteries.values_mut() {
            b.m.integrate(secs);
        }
        for h in self.hvacs.values_mut() {
            h.m.integrate(secs, self.outdoor_c);
        }
        for i in self.inverters.values_mut() {
            i.m.lifetime_kwh += i.m.production_w * hours / 1000.0;
        }
        self.pv_kwh += self.pv_w * hours / 1000.0;
        if self.grid_w > 0.0 {
            self.import_kwh += self.grid_w * hours / 1000.0;
        } else {
            self.export_kwh -= self.grid_w * hours / 1000.0;
        }
    }

    /// Re-evaluates every rate at `self.t` (fixed-step decisions happen here).
    fn recompute(&mut self, out: &mut Out) {
        let t = self.t;
        let ts = unix_secs_f64(t);
        let day = self.local_day(t);
        let weekend = Self::is_weekend(day);
        if self.planned_day != Some(day) {
            let midnight = self.local_midnight(day);
            for v in self.vehicles.values_mut() {
                v.m.plan = plan_day(v.key, day, weekend, midnight, &v.m.pattern)
                    .into_iter()
                    .filter(|o| o.depart_at >= t)
                    .collect();
            }
            self.planned_day = Some(day);
        }
        let local_h = self.local_hour(t);
        let doy = self.day_of_year(t);
        let (lat, lon) = (self.spec.latitude, self.spec.longitude);
        self.outdoor_c = outdoor_temp_c(self.key, lat, doy, local_h, ts);

        let solar_h = (ts / 3600.0 + lon / 15.0).rem_euclid(24.0);
        let cloud = cloudiness(self.key, ts);
        let mut pv = 0.0;
        for i in self.inverters.values_mut() {
            i.m.production_w = solar_output_w(i.m.capacity_w, lat, doy, solar_h, cloud);
            pv += i.m.production_w;
        }
        let load = house_load_w(self.spec.base_load_w, local_h, weekend, load_noise(self.key, ts));

        let mut hvac_w = 0.0;
        let physics = ChangeCause::Physics;
        for (id, h) in &mut self.hvacs {
            if h.m.hold == HvacHold::Schedule {
                let (heat, cool) = h.m.schedule.setpoints_at(local_h);
                if h.m.mode != h.m.schedule.mode {
                    out.log(
                        t,
                        id,
                        ChangeKind::HvacModeChanged { from: h.m.mode, to: h.m.schedule.mode },
                        &physics,
                    );
                    h.m.mode = h.m.schedule.mode;
                }
                if h.m.heat_setpoint != heat || h.m.cool_setpoint != cool {
                    h.m.heat_setpoint = heat;
                    h.m.cool_setpoint = cool;
                    out.log(t, id, ChangeKind::SetpointChanged { heat, cool }, &physics);
                }
            }
            let activity = thermostat(
                h.m.mode,
                h.m.indoor_c,
                h.m.heat_setpoint,
                h.m.cool_setpoint,
                h.m.activity,
            );
            if activity != h.m.activity {
                h.m.activity = activity;
                out.log(t, id, ChangeKind::HvacActivityChanged { activity }, &physics);
            }
            hvac_w += h.m.power_w();
        }

        let mut ev_w = 0.0;
        let limits: Vec<(DeviceId, Option<f64>)> =
            self.vehicles.keys().map(|id| (id.clone(), self.charger_amps_for(id))).collect();
        for (id, limit) in limits {
            if let Some(v) = self.vehicles.get_mut(&id) {
                v.power_kw = v.m.charge_power_kw(limit);
                if v.m.at_home && v.m.trip.is_none() {
                    ev_w += v.power_kw * 1000.0;
                }
            }
        }

        let mut surplus = pv - load - hvac_w - ev_w;
        let mut battery_w = 0.0;
        for b in self.batteries.values_mut() {
            let power = battery_power_w(BatteryInputs {
                mode: b.m.mode,
                soc_pct: b.m.soc_pct,
                reserve_pct: b.m.reserve_pct,
                max_charge_w: b.m.max_charge_w,
                max_discharge_w: b.m.max_discharge_w,
                surplus_w: surplus,
                cheap_window: b.m.in_cheap_window(local_h),
            });
            b.m.power_w = power;
            surplus -= power;
            battery_w += power;
        }
        self.pv_w = pv;
        self.load_w = load;
        self.hvac_w = hvac_w;
        self.ev_w = ev_w;
        self.battery_w = battery_w;
        self.grid_w = load + hvac_w + ev_w + battery_w - pv;
    }

    /// Handles every discrete event due at or before `self.t`.
    fn process_due(&mut self, p: &Params, out: &mut Out) {
        let now = self.t;
        for _ in 0..MAX_EVENTS_PER_INSTANT {
            let mut progressed = false;
            while self.effects.first().is_some_and(|e| e.due_at <= now) {
                let effect = self.effects.remove(0);
                self.apply_effect(effect, out);
                progressed = true;
            }
            let ids: Vec<DeviceId> = self.vehicles.keys().cloned().collect();
            for vid in &ids {
                progressed |= self.vehicle_event(vid, now, p, out);
            }
            if !progressed {
                break;
            }
        }
    }

    /// Handles at most one due event of a vehicle; returns whether one happened.
    fn vehicle_event(
        &mut self,
        vid: &DeviceId,
        now: DateTime<Utc>,
        p: &Params,
        out: &mut Out,
    ) -> bool {
        let can_sleep = self.vehicles.get(vid).is_some_and(|v| self.can_sleep(vid, v));
        let Some(v) = self.vehicles.get_mut(vid) else { return false };
        if let Some(w) = v.m.waking_at.filter(|w| *w <= now) {
            v.m.waking_at = None;
            if v.m.power_state == PowerState::Asleep {
                v.m.power_state = PowerState::Online;
                v.m.last_activity = w;
                out.log(w, vid, ChangeKind::WokeUp, &ChangeCause::WakeRequest);
            }
            return true;
        }
        if v.m.trip.as_ref().is_some_and(|t| t.arrive_at <= now) {
            self.end_trip(vid, out);
            return true;
        }
        if v.m.trip.is_none()
            && !v.m.at_home
            && let Some(r) = v.m.return_at.filter(|r| *r <= now)
        {
            self.start_return(vid, r, out);
            return true;
        }
        if v.m.plan.first().is_some_and(|o| o.depart_at <= now) {
            let outing = v.m.plan.remove(0);
            let go = v.m.at_home
                && v.m.trip.is_none()
                && v.m.power_state != PowerState::Offline
                && v.m.can_make(&outing);
            if go {
                self.start_outing(vid, outing, out);
            }
            return true;
        }
        if let Some(at) = v.m.plug_in_at.filter(|at| *at <= now) {
            v.m.plug_in_at = None;
            self.plug_in(vid, at, &ChangeCause::Physics, out);
            return true;
        }
        if v.m.charging == ChargeState::Charging
            && v.m.battery_level >= v.m.charge_limit - LEVEL_EPS
        {
            v.m.battery_level = v.m.battery_level.min(v.m.charge_limit.max(0.0));
            self.set_charge_state(vid, ChargeState::Complete, now, &ChangeCause::Physics, out);
            return true;
        }
        if can_sleep {
            let at = add_secs(v.m.last_activity, p.sleep_after_secs);
            if at <= now {
                v.m.power_state = PowerState::Asleep;
                out.log(at, vid, ChangeKind::FellAsleep, &ChangeCause::Physics);
                return true;
            }
        }
        false
    }

    // ---- vehicle transitions -----------------------------------------------------------

    /// Logs a vehicle change, echoed on its charger for plug/charging changes.
    fn log_vehicle(
        &self,
        vid: &DeviceId,
        at: DateTime<Utc>,
        kind: ChangeKind,
        cause: &ChangeCause,
        out: &mut Out,
    ) {
        let echo = matches!(
            kind,
            ChangeKind::ChargingStarted
                | ChangeKind::ChargingStopped
                | ChangeKind::ChargeComplete { .. }
        );
        if echo && let Some(cid) = self.charger_of(vid) {
            out.log(at, &cid, kind.clone(), cause);
        }
        out.log(at, vid, kind, cause);
    }

    /// Wakes a sleeping vehicle because something needs it (drive, charge, plug).
    fn wake_for(&mut self, vid: &DeviceId, at: DateTime<Utc>, cause: &ChangeCause, out: &mut Out) {
        if let Some(v) = self.vehicles.get_mut(vid)
            && v.m.power_state == PowerState::Asleep
        {
            v.m.power_state = PowerState::Online;
            v.m.waking_at = None;
            out.log(at, vid, ChangeKind::WokeUp, cause);
        }
    }

    /// Moves the charge port to `new`, logging the meaningful transitions.
    pub fn set_charge_state(
        &mut self,
        vid: &DeviceId,
        new: ChargeState,
        at: DateTime<Utc>,
        cause: &ChangeCause,
        out: &mut Out,
    ) {
        let Some(v) = self.vehicles.get_mut(vid) else { return };
        let old = v.m.charging;
        if old == new {
            return;
        }
        v.m.charging = new;
        v.m.last_activity = v.m.last_activity.max(at);
        let level = v.m.battery_level;
        self.dirty = true;
        match (old, new) {
            (_, ChargeState::Charging) => {
                self.wake_for(vid, at, cause, out);
                self.log_vehicle(vid, at, ChangeKind::ChargingStarted, cause, out);
            }
            (ChargeState::Charging, ChargeState::Complete) => {
                self.log_vehicle(vid, at, ChangeKind::ChargeComplete { level }, cause, out);
            }
            (ChargeState::Charging, _) => {
                self.log_vehicle(vid, at, ChangeKind::ChargingStopped, cause, out);
            }
            _ => {}
        }
    }

    /// Connects a cable (to the site charger if at home and it is free).
    pub fn plug_in(
        &mut self,
        vid: &DeviceId,
        at: DateTime<Utc>,
        cause: &ChangeCause,
        out: &mut Out,
    ) {
        let Some(v) = self.vehicles.get(vid) else { return };
        if v.m.charging.is_plugged_in() || v.m.trip.is_some() {
            return;
        }
        let at_home = v.m.at_home;
        let charger = if at_home {
            self.chargers.iter().find(|(_, c)| c.m.vehicle.is_none()).map(|(id, _)| id.clone())
        } else {
            None
        };
        let connection = charger.as_ref().and_then(|cid| self.chargers.get_mut(cid)).map(|c| {
            c.m.vehicle = Some(vid.clone());
            c.m.session_kwh = 0.0;
            (c.m.voltage, c.m.phases)
        });
        let Some(v) = self.vehicles.get_mut(vid) else { return };
        let (voltage, phases) = connection.unwrap_or((v.own_voltage, v.own_phases));
        v.m.voltage = voltage;
        v.m.phases = phases;
        v.m.charging = ChargeState::Stopped;
        v.m.session_kwh = 0.0;
        v.m.last_activity = v.m.last_activity.max(at);
        let (on_plug, full) =
            (v.m.charge_on_plug, v.m.battery_level >= v.m.charge_limit - LEVEL_EPS);
        out.log(at, vid, ChangeKind::PluggedIn { peer: charger.clone() }, cause);
        if let Some(cid) = &charger {
            out.log(at, cid, ChangeKind::PluggedIn { peer: Some(vid.clone()) }, cause);
        }
        // Cars wake up when a cable is connected.
        self.wake_for(vid, at, cause, out);
        if full {
            self.set_charge_state(vid, ChargeState::Complete, at, cause, out);
        } else if on_plug {
            self.set_charge_state(vid, ChargeState::Charging, at, cause, out);
        }
        self.dirty = true;
    }

    /// Disconnects the cable.
    pub fn unplug(
        &mut self,
        vid: &DeviceId,
        at: DateTime<Utc>,
        cause: &ChangeCause,
        out: &mut Out,
    ) {
        let Some(v) = self.vehicles.get(vid) else { return };
        if !v.m.charging.is_plugged_in() {
            return;
        }
        if v.m.charging == ChargeState::Charging {
            // Logs ChargingStopped on the vehicle and its charger while still connected.
            self.set_charge_state(vid, ChargeState::Stopped, at, cause, out);
        }
        let charger = self.charger_of(vid);
        if let Some(c) = charger.as_ref().and_then(|cid| self.chargers.get_mut(cid)) {
            c.m.vehicle = None;
        }
        if let Some(v) = self.vehicles.get_mut(vid) {
            v.m.charging = ChargeState::Disconnected;
            v.m.last_activity = v.m.last_activity.max(at);
            v.m.voltage = v.own_voltage;
            v.m.phases = v.own_phases;
        }
        out.log(at, vid, ChangeKind::Unplugged { peer: charger.clone() }, cause);
        if let Some(cid) = &charger {
            out.log(at, cid, ChangeKind::Unplugged { peer: Some(vid.clone()) }, cause);
        }
        self.dirty = true;
    }

    fn start_outing(&mut self, vid: &DeviceId, outing: Outing, out: &mut Out) {
        let at = outing.depart_at;
        let physics = ChangeCause::Physics;
        self.unplug(vid, at, &physics, out);
        self.wake_for(vid, at, &physics, out);
        let home = (self.spec.latitude, self.spec.longitude);
        let Some(v) = self.vehicles.get_mut(vid) else { return };
        let dest = offset_position(home.0, home.1, outing.bearing_deg, outing.distance_km);
        v.m.trip = Some(Trip {
            depart_at: at,
            arrive_at: add_secs(at, outing.drive_secs()),
            distance_km: outing.distance_km,
            from: (v.m.latitude, v.m.longitude),
            to: dest,
            to_home: false,
            start_level: v.m.battery_level,
            start_odometer_km: v.m.odometer_km,
            stay_secs: outing.stay_secs,
        });
        v.m.heading = outing.bearing_deg;
        v.m.at_home = false;
        v.m.waking_at = None;
        v.m.plug_in_at = None;
        v.m.return_km = outing.distance_km;
        v.m.return_speed_kmh = outing.speed_kmh;
        v.m.last_activity = at;
        out.log(at, vid, ChangeKind::DriveStarted { from_home: true }, &physics);
        self.dirty = true;
    }

    fn start_return(&mut self, vid: &DeviceId, at: DateTime<Utc>, out: &mut Out) {
        let physics = ChangeCause::Physics;
        self.wake_for(vid, at, &physics, out);
        let home = (self.spec.latitude, self.spec.longitude);
        let Some(v) = self.vehicles.get_mut(vid) else { return };
        let drive_secs = v.m.return_km / v.m.return_speed_kmh.max(1.0) * 3600.0;
        v.m.return_at = None;
        v.m.trip = Some(Trip {
            depart_at: at,
            arrive_at: add_secs(at, drive_secs),
            distance_km: v.m.return_km,
            from: (v.m.latitude, v.m.longitude),
            to: home,
            to_home: true,
            start_level: v.m.battery_level,
            start_odometer_km: v.m.odometer_km,
            stay_secs: 0.0,
        });
        v.m.heading = (v.m.heading + 180.0).rem_euclid(360.0);
        v.m.last_activity = at;
        out.log(at, vid, ChangeKind::DriveStarted { from_home: false }, &physics);
        self.dirty = true;
    }

    fn end_trip(&mut self, vid: &DeviceId, out: &mut Out) {
        let Some(v) = self.vehicles.get_mut(vid) else { return };
        let Some(trip) = v.m.trip.take() else { return };
        let at = trip.arrive_at;
        // Final values from the trip itself, not from accumulated steps.
        let kwh = trip.distance_km / v.m.km_per_kwh.max(0.1);
        v.m.battery_level =
            (trip.start_level - kwh / v.m.capacity_kwh.max(1e-9) * 100.0).clamp(0.0, 100.0);
        v.m.odometer_km = trip.start_odometer_km + trip.distance_km;
        (v.m.latitude, v.m.longitude) = trip.to;
        v.m.last_activity = at;
        let level = v.m.battery_level;
        out.log(
            at,
            vid,
            ChangeKind::DriveEnded { distance_km: trip.distance_km, at_home: trip.to_home, level },
            &ChangeCause::Physics,
        );
        if trip.to_home {
            v.m.at_home = true;
            let p = plug_in_probability(v.m.pattern.plug_in_share, level);
            if v.rng.chance(p) {
                let delay = v.rng.range(60.0, 600.0);
                v.m.plug_in_at = Some(add_secs(at, delay));
            }
        } else {
            v.m.return_at = Some(add_secs(at, trip.stay_secs.max(60.0)));
        }
        self.dirty = true;
    }

    // ---- commands ----------------------------------------------------------------------

    /// Preconditions of `cmd` on `device` against the current state.
    pub fn check(&self, device: &DeviceId, cmd: &WorldCommand) -> Result<(), CommandRejected> {
        use WorldCommand as C;
        let unsupported = || CommandRejected::Unsupported {
            device: device.clone(),
            command: cmd.name().to_owned(),
        };
        if let Some(v) = self.vehicles.get(device) {
            let m = &v.m;
            if !matches!(
                cmd,
                C::StartCharging | C::StopCharging | C::SetChargeAmps(_) | C::SetChargeLimit(_)
            ) {
                return Err(unsupported());
            }
            match m.power_state {
                PowerState::Offline => return Err(CommandRejected::Offline),
                PowerState::Asleep => return Err(CommandRejected::Asleep),
                PowerState::Online => {}
            }
            return match cmd {
                C::StartCharging => match m.charging {
                    _ if m.trip.is_some() => Err(CommandRejected::Driving),
                    ChargeState::Disconnected => Err(CommandRejected::NotPluggedIn),
                    ChargeState::NoPower => Err(CommandRejected::NoPower),
                    ChargeState::Charging => Err(CommandRejected::AlreadySet),
                    ChargeState::Complete => Err(CommandRejected::AtLimit),
                    ChargeState::Stopped if m.battery_level >= m.charge_limit - LEVEL_EPS => {
                        Err(CommandRejected::AtLimit)
                    }
                    ChargeState::Stopped => Ok(()),
                },
                C::StopCharging if m.charging == ChargeState::Charging => Ok(()),
                C::StopCharging => Err(CommandRejected::AlreadySet),
                C::SetChargeAmps(0) => {
                    Err(CommandRejected::InvalidValue("charging amps must be at least 1".into()))
                }
                C::SetChargeAmps(a) if (*a).min(m.max_amps) == m.amps => {
                    Err(CommandRejected::AlreadySet)
                }
                C::SetChargeLimit(p) if !(MIN_CHARGE_LIMIT..=MAX_CHARGE_LIMIT).contains(p) => {
                    Err(CommandRejected::InvalidValue(format!(
                        "charge limit {p} is not within 50..=100"
                    )))
                }
                C::SetChargeLimit(p) if (p - m.charge_limit).abs() < 1e-9 => {
                    Err(CommandRejected::AlreadySet)
                }
                _ => Ok(()),
            };
        }
        if let Some(b) = self.batteries.get(device) {
            if !b.m.online && matches!(cmd, C::SetBatteryMode(_) | C::SetBatteryReserve(_)) {
                return Err(CommandRejected::Offline);
            }
            return match cmd {
                C::SetBatteryMode(mode) if *mode == b.m.mode => Err(CommandRejected::AlreadySet),
                C::SetBatteryMode(_) => Ok(()),
                C::SetBatteryReserve(r) if !(0.0..=100.0).contains(r) => {
                    Err(CommandRejected::InvalidValue(format!("reserve {r} is not within 0..=100")))
                }
                C::SetBatteryReserve(r) if (r - b.m.reserve_pct).abs() < 1e-9 => {
                    Err(CommandRejected::AlreadySet)
                }
                C::SetBatteryReserve(_) => Ok(()),
                _ => Err(unsupported()),
            };
        }
        if let Some(c) = self.chargers.get(device) {
            if !matches!(cmd, C::SetChargerMaxCurrent(_) | C::ChargerStart | C::ChargerStop) {
                return Err(unsupported());
            }
            if !c.m.online {
                return Err(CommandRejected::Offline);
            }
            let vehicle = c.m.vehicle.as_ref().and_then(|vid| self.vehicles.get(vid));
            return match cmd {
                C::SetChargerMaxCurrent(a) if !(MIN_CURRENT_A..=c.m.hardware_max_a).contains(a) => {
                    Err(CommandRejected::InvalidValue(format!(
                        "max current {a} is not within {MIN_CURRENT_A}..={}",
                        c.m.hardware_max_a
                    )))
                }
                C::SetChargerMaxCurrent(a) if (a - c.m.max_current_a).abs() < 1e-9 => {
                    Err(CommandRejected::AlreadySet)
                }
                C::SetChargerMaxCurrent(_) => Ok(()),
                C::ChargerStart => match vehicle {
                    None => Err(CommandRejected::NotPluggedIn),
                    Some(v) if v.m.charging == ChargeState::Charging => {
                        Err(CommandRejected::AlreadySet)
                    }
                    Some(v) if v.m.charging == ChargeState::NoPower => {
                        Err(CommandRejected::NoPower)
                    }
                    Some(v) if v.m.battery_level >= v.m.charge_limit - LEVEL_EPS => {
                        Err(CommandRejected::AtLimit)
                    }
                    Some(_) => Ok(()),
                },
                _ => match vehicle {
                    Some(v) if v.m.charging == ChargeState::Charging => Ok(()),
                    _ => Err(CommandRejected::AlreadySet),
                },
            };
        }
        if let Some(h) = self.hvacs.get(device) {
            if !matches!(cmd, C::SetHvacHold { .. } | C::HvacFollowSchedule) {
                return Err(unsupported());
            }
            if !h.m.online {
                return Err(CommandRejected::Offline);
            }
            return match cmd {
                C::SetHvacHold { mode, heat_setpoint, cool_setpoint } => {
                    let heat = heat_setpoint.unwrap_or(h.m.heat_setpoint);
                    let cool = cool_setpoint.unwrap_or(h.m.cool_setpoint);
                    if !(5.0..=30.0).contains(&heat) {
                        return Err(CommandRejected::InvalidValue(format!(
                            "heat setpoint {heat} is not within 5..=30"
                        )));
                    }
                    if !(15.0..=35.0).contains(&cool) {
                        return Err(CommandRejected::InvalidValue(format!(
                            "cool setpoint {cool} is not within 15..=35"
                        )));
                    }
                    if *mode == crate::physics::hvac::HvacMode::Auto && heat > cool - 1.0 {
                        return Err(CommandRejected::InvalidValue(
                            "in AUTO the heat setpoint must be at least 1 °C below the cool setpoint".into(),
                        ));
                    }
                    let same = h.m.hold == HvacHold::Permanent
                        && h.m.mode == *mode
                        && (heat - h.m.heat_setpoint).abs() < 1e-9
                        && (cool - h.m.cool_setpoint).abs() < 1e-9;
                    if same { Err(CommandRejected::AlreadySet) } else { Ok(()) }
                }
                _ if h.m.hold == HvacHold::Schedule => Err(CommandRejected::AlreadySet),
                _ => Ok(()),
            };
        }
        Err(unsupported())
    }

    /// This site as it will be once the effects in flight for `device` have landed (for
    /// command-time `AlreadySet` checks).
    pub fn projected(&self, device: &DeviceId) -> SiteSim {
        let mut proj = self.clone();
        let mut scratch = Out::default();
        for e in self.effects.iter().filter(|e| &e.device == device) {
            if proj.check(&e.device, &e.command).is_ok() {
                proj.apply(&e.device, &e.command, e.due_at, &ChangeCause::Physics, &mut scratch);
            }
        }
        proj
    }

    fn apply_effect(&mut self, e: PendingEffect, out: &mut Out) {
        let at = e.due_at;
        let cause = ChangeCause::Command { ticket: e.ticket };
        let outcome = match self.check(&e.device, &e.command) {
            Ok(()) => {
                self.apply(&e.device, &e.command, at, &cause, out);
                CommandOutcome::Applied { at }
            }
            // The state already matches (e.g. two identical commands in flight): harmless.
            Err(CommandRejected::AlreadySet) => CommandOutcome::Applied { at },
            Err(reason) => CommandOutcome::Failed { at, reason },
        };
        if let Some(v) = self.vehicles.get_mut(&e.device) {
            v.m.last_activity = v.m.last_activity.max(at);
        }
        out.outcomes.push((e.vendor, e.ticket, outcome));
    }

    /// Applies `cmd` to `device` at `at` (preconditions already checked).
    pub fn apply(
        &mut self,
        device: &DeviceId,
        cmd: &WorldCommand,
        at: DateTime<Utc>,
        cause: &ChangeCause,
        out: &mut Out,
    ) {
        use WorldCommand as C;
        self.dirty = true;
        if let Some(v) = self.vehicles.get_mut(device) {
            v.m.last_activity = v.m.last_activity.max(at);
            match cmd {
                C::StartCharging => {
                    let new = if v.m.battery_level < v.m.charge_limit - LEVEL_EPS {
                        ChargeState::Charging
                    } else {
                        ChargeState::Complete
                    };
                    self.set_charge_state(device, new, at, cause, out);
                }
                C::StopCharging => {
                    self.set_charge_state(device, ChargeState::Stopped, at, cause, out)
                }
                C::SetChargeAmps(a) => {
                    let new = (*a).min(v.m.max_amps);
                    if new != v.m.amps {
                        out.log(
                            at,
                            device,
                            ChangeKind::ChargeAmpsChanged { from: v.m.amps, to: new },
                            cause,
                        );
                        v.m.amps = new;
                    }
                }
                C::SetChargeLimit(p) => {
                    let new = p.clamp(MIN_CHARGE_LIMIT, MAX_CHARGE_LIMIT);
                    if new != v.m.charge_limit {
                        out.log(
                            at,
                            device,
                            ChangeKind::ChargeLimitChanged { from: v.m.charge_limit, to: new },
                            cause,
                        );
                        v.m.charge_limit = new;
                    }
                    let (state, level) = (v.m.charging, v.m.battery_level);
                    // Raising the limit of a complete car resumes charging; lowering it
                    // below the level of a charging car completes it.
                    if state == ChargeState::Complete && level < new - LEVEL_EPS {
                        self.set_charge_state(device, ChargeState::Charging, at, cause, out);
                    } else if state == ChargeState::Charging && level >= new - LEVEL_EPS {
                        self.set_charge_state(device, ChargeState::Complete, at, cause, out);
                    }
                }
                _ => {}
            }
            return;
        }
        if let Some(b) = self.batteries.get_mut(device) {
            match cmd {
                C::SetBatteryMode(mode) if *mode != b.m.mode => {
                    out.log(
                        at,
                        device,
                        ChangeKind::BatteryModeChanged { from: b.m.mode, to: *mode },
                        cause,
                    );
                    b.m.mode = *mode;
                }
                C::SetBatteryReserve(r) if *r != b.m.reserve_pct => {
                    out.log(
                        at,
                        device,
                        ChangeKind::ReserveChanged { from: b.m.reserve_pct, to: *r },
                        cause,
                    );
                    b.m.reserve_pct = *r;
                }
                _ => {}
            }
            return;
        }
        if let Some(c) = self.chargers.get_mut(device) {
            let vehicle = c.m.vehicle.clone();
            match cmd {
                C::SetChargerMaxCurrent(a) if *a != c.m.max_current_a => {
                    out.log(
                        at,
                        device,
                        ChangeKind::ChargerMaxCurrentChanged { from: c.m.max_current_a, to: *a },
                        cause,
                    );
                    c.m.max_current_a = *a;
                }
                C::ChargerStart => {
                    if let Some(vid) = vehicle {
                        self.set_charge_state(&vid, ChargeState::Charging, at, cause, out);
                    }
                }
                C::ChargerStop => {
                    if let Some(vid) = vehicle {
                        self.set_charge_state(&vid, ChargeState::Stopped, at, cause, out);
                    }
                }
                _ => {}
            }
            return;
        }
        let local_h = self.local_hour(at);
        if let Some(h) = self.hvacs.get_mut(device) {
            let (mode, heat, cool, hold) = match cmd {
                C::SetHvacHold { mode, heat_setpoint, cool_setpoint } => (
                    *mode,
                    heat_setpoint.unwrap_or(h.m.heat_setpoint),
                    cool_setpoint.unwrap_or(h.m.cool_setpoint),
                    HvacHold::Permanent,
                ),
                C::HvacFollowSchedule => {
                    let (heat, cool) = h.m.schedule.setpoints_at(local_h);
                    (h.m.schedule.mode, heat, cool, HvacHold::Schedule)
                }
                _ => return,
            };
            if hold != h.m.hold {
                out.log(at, device, ChangeKind::HoldChanged { hold }, cause);
                h.m.hold = hold;
            }
            if mode != h.m.mode {
                out.log(
                    at,
                    device,
                    ChangeKind::HvacModeChanged { from: h.m.mode, to: mode },
                    cause,
                );
                h.m.mode = mode;
            }
            if heat != h.m.heat_setpoint || cool != h.m.cool_setpoint {
                out.log(at, device, ChangeKind::SetpointChanged { heat, cool }, cause);
                h.m.heat_setpoint = heat;
                h.m.cool_setpoint = cool;
            }
        }
    }

    /// Draws a wake-up delay and starts waking a sleeping vehicle; returns when it will be
    /// online (`None` if it is not asleep).
    pub fn start_wake(
        &mut self,
        vid: &DeviceId,
        now: DateTime<Utc>,
        p: &Params,
    ) -> Option<DateTime<Utc>> {
        let v = self.vehicles.get_mut(vid)?;
        if v.m.power_state != PowerState::Asleep {
            return None;
        }
        if let Some(w) = v.m.waking_at {
            return Some(w);
        }
        let delay = v.rng.range(p.wake_delay.0, p.wake_delay.1.max(p.wake_delay.0));
        let at = add_secs(now, delay);
        v.m.waking_at = Some(at);
        Some(at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_is_aligned_to_the_step() {
        let t = Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 3).single().unwrap_or_default();
        assert_eq!(
            next_grid(t),
            Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 10).single().unwrap_or_default()
        );
        let g = Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 10).single().unwrap_or_default();
        assert_eq!(
            next_grid(g),
            Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 20).single().unwrap_or_default()
        );
    }

    #[test]
    fn weekends() {
        // 2026-03-07 is a Saturday.
        let sat = Utc.with_ymd_and_hms(2026, 3, 7, 12, 0, 0).single().unwrap_or_default();
        let site = SiteSim::new(SiteId::new("s"), SiteSpec::default(), 1, sat);
        assert!(SiteSim::is_weekend(site.local_day(sat)));
        assert!(!SiteSim::is_weekend(site.local_day(sat + ChronoDuration::days(2))));
    }
}
