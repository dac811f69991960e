//! [`World`]: the shared simulated world every vendor simulator reads and commands.
//!
//! A `World` is a cheap `Clone` handle (`Arc<Mutex<…>>` inside, a `std` mutex that is never
//! held across an `.await`). Every read or command first advances the site(s) involved to
//! `clock.now()`; [`World::advance_to`] advances everything. Sites advance independently
//! and lazily, so reading one vehicle of a 10 000-home fleet costs one site's physics.
//! See the crate docs for determinism, stepping and sign conventions.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, Utc};
use oemgate_core::Clock;
use serde::{Deserialize, Serialize};

use crate::command::{CommandOutcome, CommandRejected, CommandStats, CommandTicket, WorldCommand};
use crate::fault::FaultInjector;
use crate::ids::{DeviceId, DeviceInfo, DeviceKind, SiteId};
use crate::physics::battery::{BatteryModel, SOC_EPS};
use crate::physics::charger::{ChargerModel, ChargerStatus, MIN_CURRENT_A};
use crate::physics::hvac::{HvacActivity, HvacHold, HvacModel};
use crate::physics::vehicle::{ChargeState, LEVEL_EPS, PowerState, VehicleModel, add_secs};
use crate::rng::{SimRng, hash, hash_str};
use crate::site::{
    Dev, InverterModel, MeterModel, Out, Params, PendingEffect, SiteSim, VehicleSim,
};
use crate::spec::{
    BatterySpec, ChargerSpec, HvacSpec, InverterSpec, MeterSpec, SiteSpec, VehicleSpec, WorldConfig,
};
use crate::state::{
    BatteryState, BatteryStatus, ChargerState, HvacState, InverterState, MeterState, SiteState,
    VehicleState,
};
use crate::truth::{Change, ChangeCause, ChangeKind, Truth};

/// A world operation on something that does not exist (or is not what was expected).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WorldError {
    /// No such site.
    #[error("unknown site {0}")]
    UnknownSite(SiteId),
    /// No such device.
    #[error("unknown device {0}")]
    UnknownDevice(DeviceId),
    /// The device is of another kind.
    #[error("{device} is a {actual}, not a {expected}")]
    WrongKind {
        /// The device.
        device: DeviceId,
        /// The kind the operation needs.
        expected: DeviceKind,
        /// Its kind.
        actual: DeviceKind,
    },
}

/// Wake-up counters of one vehicle.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WakeCount {
    /// Calls to [`World::wake_vehicle`].
    pub requested: u64,
    /// Asleep -> online transitions those calls caused.
    pub performed: u64,
}

/// What [`World::wake_vehicle`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum WakeOutcome {
    /// It was online already (the request counts as activity).
    AlreadyOnline,
    /// It is waking and will be online at `ready_at`.
    Waking {
        /// When it will be online.
        ready_at: DateTime<Utc>,
    },
    /// It is offline and cannot be woken.
    Offline,
}

#[derive(Debug)]
struct Entry {
    site: SiteId,
    kind: DeviceKind,
    vendor: String,
}

#[derive(Debug, Default)]
struct CommandBook {
    next_ticket: u64,
    /// Ticket -> (site of the device, outcome).
    outcomes: HashMap<u64, (SiteId, CommandOutcome)>,
    stats: BTreeMap<String, CommandStats>,
    rngs: HashMap<String, SimRng>,
}

#[derive(Debug)]
struct Inner {
    seed: u64,
    config: WorldConfig,
    params: Params,
    started_at: DateTime<Utc>,
    sites: BTreeMap<SiteId, SiteSim>,
    index: HashMap<DeviceId, Entry>,
    next_site: u64,
    next_device: BTreeMap<DeviceKind, u64>,
    truth: Truth,
    book: CommandBook,
    wakes: HashMap<DeviceId, WakeCount>,
}

impl Inner {
    fn absorb(&mut self, out: Out, now: DateTime<Utc>) {
        for change in out.changes {
            if change.kind == ChangeKind::WokeUp && change.cause == ChangeCause::WakeRequest {
                self.wakes.entry(change.device.clone()).or_default().performed += 1;
            }
            self.truth.push(change);
        }
        for (vendor, ticket, outcome) in out.outcomes {
            let stats = self.book.stats.entry(vendor).or_default();
            match outcome {
                CommandOutcome::Applied { .. } => stats.applied += 1,
                CommandOutcome::Failed { .. } => stats.failed += 1,
                _ => {}
            }
            if let Some(entry) = self.book.outcomes.get_mut(&ticket) {
                entry.1 = outcome;
            }
        }
        self.truth.prune(now);
    }

    fn advance_site(&mut self, site: &SiteId, now: DateTime<Utc>) {
        let params = self.params;
        let mut out = Out::default();
        if let Some(s) = self.sites.get_mut(site) {
            s.advance(now, &params, &mut out);
        }
        self.absorb(out, now);
    }

    fn advance_all(&mut self, now: DateTime<Utc>) {
        let params = self.params;
        let mut out = Out::default();
        for s in self.sites.values_mut() {
            s.advance(now, &params, &mut out);
        }
        self.absorb(out, now);
    }

    fn entry(&self, id: &DeviceId) -> Result<&Entry, WorldError> {
        self.index.get(id).ok_or_else(|| WorldError::UnknownDevice(id.clone()))
    }

    /// Advances the device's site to `now` and returns it, checking the kind.
    fn site_of(
        &mut self,
        id: &DeviceId,
        kind: DeviceKind,
        now: DateTime<Utc>,
    ) -> Result<&mut SiteSim, WorldError> {
        let entry = self.entry(id)?;
        if entry.kind != kind {
            return Err(WorldError::WrongKind {
                device: id.clone(),
                expected: kind,
                actual: entry.kind,
            });
        }
        let site = entry.site.clone();
        self.advance_site(&site, now);
        self.sites.get_mut(&site).ok_or(WorldError::UnknownSite(site))
    }

    fn new_device_id(&mut self, kind: DeviceKind) -> DeviceId {
        let n = self.next_device.entry(kind).or_insert(0);
        *n += 1;
        DeviceId::new(format!("{}-{:06}", kind.id_prefix(), n))
    }

    /// Registers a new device on a site (advanced to `now`), returning its id.
    fn register(
        &mut self,
        site: &SiteId,
        kind: DeviceKind,
        vendor: &str,
        now: DateTime<Utc>,
    ) -> Result<DeviceId, WorldError> {
        if !self.sites.contains_key(site) {
            return Err(WorldError::UnknownSite(site.clone()));
        }
        self.advance_site(site, now);
        let id = self.new_device_id(kind);
        self.index
            .insert(id.clone(), Entry { site: site.clone(), kind, vendor: vendor.to_owned() });
        Ok(id)
    }

    fn site_mut(&mut self, site: &SiteId) -> Result<&mut SiteSim, WorldError> {
        self.sites.get_mut(site).ok_or_else(|| WorldError::UnknownSite(site.clone()))
    }

    fn device_key(&self, id: &DeviceId) -> u64 {
        hash(&[self.seed, hash_str(id.as_str())])
    }
}

/// The simulated world. See the [module docs](self).
#[derive(Clone)]
pub struct World {
    inner: Arc<Mutex<Inner>>,
    clock: Arc<dyn Clock>,
    faults: FaultInjector,
}

impl std::fmt::Debug for World {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let inner = self.lock();
        f.debug_struct("World")
            .field("seed", &inner.seed)
            .field("sites", &inner.sites.len())
            .field("devices", &inner.index.len())
            .finish()
    }
}

impl World {
    /// An empty world with `seed`, timed by `clock`, starting at `clock.now()`. Faults in
    /// `config.faults` are scheduled relative to that start.
    pub fn new(seed: u64, clock: Arc<dyn Clock>, config: WorldConfig) -> Self {
        let started_at = clock.now();
        let faults = FaultInjector::new(clock.clone());
        faults.apply_config(&config.faults, started_at);
        let params = Params {
            sleep_after_secs: config.sleep_after.as_secs_f64(),
            wake_delay: config.wake_delay_secs,
        };
        let inner = Inner {
            seed,
            truth: Truth::new(config.truth_retention),
            config,
            params,
            started_at,
            sites: BTreeMap::new(),
            index: HashMap::new(),
            next_site: 0,
            next_device: BTreeMap::new(),
            book: CommandBook::default(),
            wakes: HashMap::new(),
        };
        Self { inner: Arc::new(Mutex::new(inner)), clock, faults }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic inside the world is a bug that a test will report; later callers (other
        // request handlers) still get a usable world instead of a cascade of poison panics.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    // ---- basics ------------------------------------------------------------------------

    /// The seed.
    pub fn seed(&self) -> u64 {
        self.lock().seed
    }

    /// The clock.
    pub fn clock(&self) -> Arc<dyn Clock> {
        self.clock.clone()
    }

    /// `clock.now()`.
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// When the world was created.
    pub fn started_at(&self) -> DateTime<Utc> {
        self.lock().started_at
    }

    /// The configuration.
    pub fn config(&self) -> WorldConfig {
        self.lock().config.clone()
    }

    /// Sets the command latency profile of `vendor` (lower-case world vendor name) from now
    /// on; commands already accepted keep their drawn latency.
    pub fn set_latency(&self, vendor: &str, profile: crate::LatencyProfile) {
        self.lock().config.latency.insert(vendor.to_owned(), profile);
    }

    /// The fault injector (shared: clones see the same faults).
    pub fn faults(&self) -> FaultInjector {
        self.faults.clone()
    }

    /// Advances every site to `now` (normally `clock.now()`; reads and commands do this
    /// for the sites they touch). Never moves backwards.
    pub fn advance_to(&self, now: DateTime<Utc>) {
        self.lock().advance_all(now);
    }

    // ---- building ----------------------------------------------------------------------

    /// Adds a site.
    pub fn add_site(&self, spec: SiteSpec) -> SiteId {
        let now = self.clock.now();
        let mut inner = self.lock();
        inner.next_site += 1;
        let id = SiteId::new(format!("site-{:06}", inner.next_site));
        let key = hash(&[inner.seed, hash_str(id.as_str())]);
        inner.sites.insert(id.clone(), SiteSim::new(id.clone(), spec, key, now));
        id
    }

    /// Adds a vehicle whose home is `site`, parked there.
    pub fn add_vehicle(&self, site: &SiteId, spec: VehicleSpec) -> Result<DeviceId, WorldError> {
        let now = self.clock.now();
        let mut inner = self.lock();
        let id = inner.register(site, DeviceKind::Vehicle, &spec.vendor, now)?;
        let key = inner.device_key(&id);
        let s = inner.site_mut(site)?;
        let limit = spec.charge_limit.clamp(50.0, 100.0);
        let level = spec.battery_level.clamp(0.0, 100.0);
        let m = VehicleModel {
            battery_level: level,
            capacity_kwh: spec.capacity_kwh.max(1.0),
            km_per_kwh: spec.km_per_kwh.max(0.5),
            charge_limit: limit,
            charging: ChargeState::Disconnected,
            amps: spec.amps.min(spec.max_amps),
            max_amps: spec.max_amps,
            voltage: spec.voltage,
            phases: spec.phases.max(1),
            max_ac_kw: spec.max_ac_kw.max(0.0),
            session_kwh: 0.0,
            odometer_km: spec.odometer_km.max(0.0),
            latitude: s.spec.latitude,
            longitude: s.spec.longitude,
            heading: 0.0,
            at_home: true,
            power_state: spec.power_state,
            last_activity: now,
            waking_at: None,
            plug_in_at: None,
            trip: None,
            return_at: None,
            return_km: 0.0,
            return_speed_kmh: 40.0,
            charge_on_plug: spec.charge_on_plug,
            pattern: spec.pattern.clone(),
            plan: Vec::new(),
        };
        s.vehicles.insert(
            id.clone(),
            VehicleSim {
                vendor: spec.vendor.clone(),
                name: spec.name.clone(),
                make: spec.make.clone(),
                model: spec.model.clone(),
                year: spec.year,
                key,
                rng: SimRng::new(hash(&[key, 0x5EED])),
                own_voltage: spec.voltage,
                own_phases: spec.phases.max(1),
                m,
                power_kw: 0.0,
            },
        );
        if spec.plugged_in {
            // The starting state is not a change: plug in silently.
            let mut scratch = Out::default();
            s.plug_in(&id, now, &ChangeCause::External, &mut scratch);
            if let Some(v) = s.vehicles.get_mut(&id) {
                v.m.charging = if v.m.battery_level >= v.m.charge_limit - LEVEL_EPS {
                    ChargeState::Complete
                } else if spec.charging {
                    ChargeState::Charging
                } else {
                    ChargeState::Stopped
                };
                // plug_in wakes the car; restore the requested connectivity unless charging.
                v.m.power_state = if v.m.charging == ChargeState::Charging {
                    PowerState::Online
                } else {
                    spec.power_state
                };
            }
        }
        // Re-plan today so the new car gets its outings (plans are pure, so the other cars'
        // remaining outings are unchanged).
        s.planned_day = None;
        s.dirty = true;
        Ok(id)
    }

    /// Adds a home battery.
    pub fn add_battery(&self, site: &SiteId, spec: BatterySpec) -> Result<DeviceId, WorldError> {
        let now = self.clock.now();
        let mut inner = self.lock();
        let id = inner.register(site, DeviceKind::Battery, &spec.vendor, now)?;
        let s = inner.site_mut(site)?;
        let m = BatteryModel {
            capacity_kwh: spec.capacity_kwh.max(0.1),
            soc_pct: spec.soc_pct.clamp(0.0, 100.0),
            reserve_pct: spec.reserve_pct.clamp(0.0, 100.0),
            mode: spec.mode,
            max_charge_w: spec.max_charge_w.max(0.0),
            max_discharge_w: spec.max_discharge_w.max(0.0),
            cheap_window: spec.cheap_window,
            power_w: 0.0,
            charged_kwh: 0.0,
            discharged_kwh: 0.0,
            online: true,
        };
        s.batteries.insert(id.clone(), Dev { vendor: spec.vendor, name: spec.name, m });
        s.dirty = true;
        Ok(id)
    }

    /// Adds a PV inverter.
    pub fn add_inverter(&self, site: &SiteId, spec: InverterSpec) -> Result<DeviceId, WorldError> {
        let now = self.clock.now();
        let mut inner = self.lock();
        let id = inner.register(site, DeviceKind::Inverter, &spec.vendor, now)?;
        let s = inner.site_mut(site)?;
        let m = InverterModel {
            capacity_w: spec.capacity_w.max(0.0),
            production_w: 0.0,
            lifetime_kwh: spec.lifetime_kwh.max(0.0),
            online: true,
        };
        s.inverters.insert(id.clone(), Dev { vendor: spec.vendor, name: spec.name, m });
        s.dirty = true;
        Ok(id)
    }

    /// Adds a grid meter.
    pub fn add_meter(&self, site: &SiteId, spec: MeterSpec) -> Result<DeviceId, WorldError> {
        let now = self.clock.now();
        let mut inner = self.lock();
        let id = inner.register(site, DeviceKind::Meter, &spec.vendor, now)?;
        let s = inner.site_mut(site)?;
        s.meters.insert(
            id.clone(),
            Dev { vendor: spec.vendor, name: spec.name, m: MeterModel { online: true } },
        );
        Ok(id)
    }

    /// Adds an EV charger. A vehicle already plugged in at home without a charger is
    /// connected to it.
    pub fn add_charger(&self, site: &SiteId, spec: ChargerSpec) -> Result<DeviceId, WorldError> {
        let now = self.clock.now();
        let mut inner = self.lock();
        let id = inner.register(site, DeviceKind::Charger, &spec.vendor, now)?;
        let s = inner.site_mut(site)?;
        let hardware_max_a = spec.hardware_max_a.max(MIN_CURRENT_A);
        let mut m = ChargerModel {
            max_current_a: spec.max_current_a.clamp(MIN_CURRENT_A, hardware_max_a),
            hardware_max_a,
            phases: spec.phases.max(1),
            voltage: spec.voltage,
            vehicle: None,
            session_kwh: 0.0,
            lifetime_kwh: spec.lifetime_kwh.max(0.0),
            online: true,
        };
        let taken: Vec<DeviceId> =
            s.chargers.values().filter_map(|c| c.m.vehicle.clone()).collect();
        if let Some((vid, v)) = s
            .vehicles
            .iter_mut()
            .find(|(vid, v)| v.m.at_home && v.m.charging.is_plugged_in() && !taken.contains(vid))
        {
            m.vehicle = Some(vid.clone());
            v.m.voltage = m.voltage;
            v.m.phases = m.phases;
        }
        s.chargers.insert(id.clone(), Dev { vendor: spec.vendor, name: spec.name, m });
        s.dirty = true;
        Ok(id)
    }

    /// Adds an HVAC unit.
    pub fn add_hvac(&self, site: &SiteId, spec: HvacSpec) -> Result<DeviceId, WorldError> {
        let now = self.clock.now();
        let mut inner = self.lock();
        let id = inner.register(site, DeviceKind::Hvac, &spec.vendor, now)?;
        let s = inner.site_mut(site)?;
        let (mode, heat, cool) = match spec.hold {
            HvacHold::Permanent => (spec.mode, spec.heat_setpoint, spec.cool_setpoint),
            HvacHold::Schedule => {
                let (heat, cool) = spec.schedule.setpoints_at(s.local_hour(now));
                (spec.schedule.mode, heat, cool)
            }
        };
        let m = HvacModel {
            mode,
            heat_setpoint: heat,
            cool_setpoint: cool,
            hold: spec.hold,
            schedule: spec.schedule,
            indoor_c: spec.indoor_c,
            activity: HvacActivity::Idle,
            heat_power_w: spec.heat_power_w.max(0.0),
            cool_power_w: spec.cool_power_w.max(0.0),
            house_tau_h: spec.house_tau_h.max(0.1),
            active_tau_h: spec.active_tau_h.max(0.05),
            online: true,
        };
        s.hvacs.insert(id.clone(), Dev { vendor: spec.vendor, name: spec.name, m });
        s.dirty = true;
        Ok(id)
    }

    // ---- listing -----------------------------------------------------------------------

    /// All sites, in creation order.
    pub fn sites(&self) -> Vec<SiteId> {
        self.lock().sites.keys().cloned().collect()
    }

    /// A device's kind, vendor and site.
    pub fn device_info(&self, id: &DeviceId) -> Option<DeviceInfo> {
        let inner = self.lock();
        inner.index.get(id).map(|e| DeviceInfo {
            id: id.clone(),
            kind: e.kind,
            vendor: e.vendor.clone(),
            site: e.site.clone(),
        })
    }

    fn infos(&self, keep: impl Fn(&Entry) -> bool) -> Vec<DeviceInfo> {
        let inner = self.lock();
        let mut out: Vec<DeviceInfo> = inner
            .index
            .iter()
            .filter(|(_, e)| keep(e))
            .map(|(id, e)| DeviceInfo {
                id: id.clone(),
                kind: e.kind,
                vendor: e.vendor.clone(),
                site: e.site.clone(),
            })
            .collect();
        out.sort_by(|a, b| (a.kind, &a.id).cmp(&(b.kind, &b.id)));
        out
    }

    /// Every device, sorted by kind and id.
    pub fn devices(&self) -> Vec<DeviceInfo> {
        self.infos(|_| true)
    }

    /// The devices of a site (vehicles: those whose home it is), sorted by kind and id.
    ///
    /// Read from the site's own device maps rather than by scanning every device: vendor
    /// simulators call this on every site-scoped request, and a scan made each request cost
    /// the size of the whole world (a quarter of the CPU at 10,000 devices).
    pub fn devices_of_site(&self, site: &SiteId) -> Vec<DeviceInfo> {
        let inner = self.lock();
        let Some(sim) = inner.sites.get(site) else { return Vec::new() };
        let mut out: Vec<DeviceInfo> = sim
            .device_ids()
            .into_iter()
            .filter_map(|id| {
                let e = inner.index.get(&id).filter(|e| &e.site == site)?;
                Some(DeviceInfo {
                    id,
                    kind: e.kind,
                    vendor: e.vendor.clone(),
                    site: e.site.clone(),
                })
            })
            .collect();
        out.sort_by(|a, b| (a.kind, &a.id).cmp(&(b.kind, &b.id)));
        out
    }

    /// The devices a vendor's cloud exposes.
    pub fn devices_of_vendor(&self, vendor: &str) -> Vec<DeviceInfo> {
        self.infos(|e| e.vendor == vendor)
    }

    /// The devices of one kind.
    pub fn devices_of_kind(&self, kind: DeviceKind) -> Vec<DeviceInfo> {
        self.infos(|e| e.kind == kind)
    }

    // ---- reading -----------------------------------------------------------------------

    /// A site's power balance and counters.
    pub fn site(&self, id: &SiteId) -> Option<SiteState> {
        let now = self.clock.now();
        let mut inner = self.lock();
        inner.advance_site(id, now);
        let s = inner.sites.get(id)?;
        Some(SiteState {
            id: s.id.clone(),
            name: s.spec.name.clone(),
            at: s.t,
            latitude: s.spec.latitude,
            longitude: s.spec.longitude,
            timezone: s.spec.timezone.clone(),
            utc_offset_minutes: s.spec.utc_offset_minutes,
            pv_w: s.pv_w,
            load_w: s.load_w,
            battery_w: s.battery_w,
            ev_w: s.ev_w,
            hvac_w: s.hvac_w,
            grid_w: s.grid_w,
            outdoor_c: s.outdoor_c,
            import_kwh: s.import_kwh,
            export_kwh: s.export_kwh,
            pv_kwh: s.pv_kwh,
            devices: s.device_ids(),
        })
    }

    /// A vehicle (`None` if unknown or not a vehicle).
    pub fn vehicle(&self, id: &DeviceId) -> Option<VehicleState> {
        let now = self.clock.now();
        let mut inner = self.lock();
        let s = inner.site_of(id, DeviceKind::Vehicle, now).ok()?;
        let v = s.vehicles.get(id)?;
        let m = &v.m;
        let charger_amps = s.charger_amps_for(id);
        let actual_amps = if m.charging == ChargeState::Charging && v.power_kw > 0.0 {
            let amps = f64::from(m.amps.min(m.max_amps));
            let amps = charger_amps.map_or(amps, |c| amps.min(c));
            // The car's on-board limit may cap the current below the setting.
            amps.min(v.power_kw * 1000.0 / (m.voltage.max(1.0) * f64::from(m.phases.max(1))))
        } else {
            0.0
        };
        Some(VehicleState {
            id: id.clone(),
            site: s.id.clone(),
            vendor: v.vendor.clone(),
            name: v.name.clone(),
            make: v.make.clone(),
            model: v.model.clone(),
            year: v.year,
            at: s.t,
            power_state: m.power_state,
            waking: m.waking_at.is_some(),
            battery_level: m.battery_level,
            capacity_kwh: m.capacity_kwh,
            range_km: m.range_km(),
            charge_limit: m.charge_limit,
            charge_state: m.charging,
            plugged_in: m.charging.is_plugged_in(),
            charging: m.charging == ChargeState::Charging,
            charge_amps: m.amps,
            max_amps: m.max_amps,
            actual_amps,
            voltage: m.voltage,
            phases: m.phases,
            max_ac_kw: m.max_ac_kw,
            charge_power_kw: v.power_kw,
            charge_energy_added_kwh: m.session_kwh,
            minutes_to_limit: m.minutes_to_limit(v.power_kw),
            charger: s.charger_of(id),
            odometer_km: m.odometer_km,
            latitude: m.latitude,
            longitude: m.longitude,
            heading: m.heading,
            speed_kmh: m.trip.as_ref().map_or(0.0, |t| t.speed_kmh()),
            driving: m.trip.is_some(),
            at_home: m.at_home,
            last_activity: m.last_activity,
        })
    }

    /// A home battery.
    pub fn battery(&self, id: &DeviceId) -> Option<BatteryState> {
        let now = self.clock.now();
        let mut inner = self.lock();
        let s = inner.site_of(id, DeviceKind::Battery, now).ok()?;
        let b = s.batteries.get(id)?;
        let status = if b.m.power_w > 0.0 {
            BatteryStatus::Charging
        } else if b.m.power_w < 0.0 {
            BatteryStatus::Discharging
        } else {
            BatteryStatus::Idle
        };
        Some(BatteryState {
            id: id.clone(),
            site: s.id.clone(),
            vendor: b.vendor.clone(),
            name: b.name.clone(),
            at: s.t,
            online: b.m.online,
            capacity_kwh: b.m.capacity_kwh,
            soc_pct: b.m.soc_pct,
            reserve_pct: b.m.reserve_pct,
            mode: b.m.mode,
            power_w: b.m.power_w,
            status,
            max_charge_w: b.m.max_charge_w,
            max_discharge_w: b.m.max_discharge_w,
            charged_kwh: b.m.charged_kwh,
            discharged_kwh: b.m.discharged_kwh,
        })
    }

    /// A PV inverter.
    pub fn inverter(&self, id: &DeviceId) -> Option<InverterState> {
        let now = self.clock.now();
        let mut inner = self.lock();
        let s = inner.site_of(id, DeviceKind::Inverter, now).ok()?;
        let i = s.inverters.get(id)?;
        Some(InverterState {
            id: id.clone(),
            site: s.id.clone(),
            vendor: i.vendor.clone(),
            name: i.name.clone(),
            at: s.t,
            online: i.m.online,
            capacity_w: i.m.capacity_w,
            production_w: i.m.production_w,
            lifetime_kwh: i.m.lifetime_kwh,
        })
    }

    /// A grid meter.
    pub fn meter(&self, id: &DeviceId) -> Option<MeterState> {
        let now = self.clock.now();
        let mut inner = self.lock();
        let s = inner.site_of(id, DeviceKind::Meter, now).ok()?;
        let m = s.meters.get(id)?;
        Some(MeterState {
            id: id.clone(),
            site: s.id.clone(),
            vendor: m.vendor.clone(),
            name: m.name.clone(),
            at: s.t,
            online: m.m.online,
            power_w: s.grid_w,
            import_kwh: s.import_kwh,
            export_kwh: s.export_kwh,
        })
    }

    /// An EV charger.
    pub fn charger(&self, id: &DeviceId) -> Option<ChargerState> {
        let now = self.clock.now();
        let mut inner = self.lock();
        let s = inner.site_of(id, DeviceKind::Charger, now).ok()?;
        let c = s.chargers.get(id)?;
        let vehicle = c.m.vehicle.as_ref().and_then(|vid| s.vehicles.get(vid));
        let (status, power_kw) = match vehicle {
            None => (ChargerStatus::Available, 0.0),
            Some(v) => match v.m.charging {
                ChargeState::Charging => (ChargerStatus::Charging, v.power_kw),
                ChargeState::Complete => (ChargerStatus::Complete, 0.0),
                _ => (ChargerStatus::Plugged, 0.0),
            },
        };
        Some(ChargerState {
            id: id.clone(),
            site: s.id.clone(),
            vendor: c.vendor.clone(),
            name: c.name.clone(),
            at: s.t,
            online: c.m.online,
            status,
            vehicle: c.m.vehicle.clone(),
            plugged_in: vehicle.is_some(),
            charging: status == ChargerStatus::Charging,
            power_w: power_kw * 1000.0,
            max_current_a: c.m.max_current_a,
            hardware_max_a: c.m.hardware_max_a,
            min_current_a: MIN_CURRENT_A,
            phases: c.m.phases,
            voltage: c.m.voltage,
            session_kwh: c.m.session_kwh,
            lifetime_kwh: c.m.lifetime_kwh,
        })
    }

    /// An HVAC unit.
    pub fn hvac(&self, id: &DeviceId) -> Option<HvacState> {
        let now = self.clock.now();
        let mut inner = self.lock();
        let s = inner.site_of(id, DeviceKind::Hvac, now).ok()?;
        let h = s.hvacs.get(id)?;
        Some(HvacState {
            id: id.clone(),
            site: s.id.clone(),
            vendor: h.vendor.clone(),
            name: h.name.clone(),
            at: s.t,
            online: h.m.online,
            mode: h.m.mode,
            hold: h.m.hold,
            heat_setpoint: h.m.heat_setpoint,
            cool_setpoint: h.m.cool_setpoint,
            indoor_c: h.m.indoor_c,
            outdoor_c: s.outdoor_c,
            activity: h.m.activity,
            power_w: h.m.power_w(),
            schedule: h.m.schedule.clone(),
        })
    }

    // ---- vehicles: wake, touch ---------------------------------------------------------

    /// Asks a vehicle to wake up: a sleeping car is online after a seeded 10–30 s (see
    /// [`WorldConfig::wake_delay_secs`]); an online car counts it as activity.
    pub fn wake_vehicle(&self, id: &DeviceId) -> Result<WakeOutcome, WorldError> {
        let now = self.clock.now();
        let mut inner = self.lock();
        let params = inner.params;
        inner.wakes.entry(id.clone()).or_default();
        let s = inner.site_of(id, DeviceKind::Vehicle, now)?;
        let outcome = match s.vehicles.get(id).map(|v| v.m.power_state) {
            Some(PowerState::Online) => {
                if let Some(v) = s.vehicles.get_mut(id) {
                    v.m.last_activity = v.m.last_activity.max(now);
                }
                WakeOutcome::AlreadyOnline
            }
            Some(PowerState::Asleep) => match s.start_wake(id, now, &params) {
                Some(ready_at) => WakeOutcome::Waking { ready_at },
                None => WakeOutcome::AlreadyOnline,
            },
            _ => WakeOutcome::Offline,
        };
        inner.wakes.entry(id.clone()).or_default().requested += 1;
        Ok(outcome)
    }

    /// A data request that keeps a car awake arrived: resets the idle timer of an online
    /// car. Returns the power state (vendor sims answer "asleep" without data otherwise).
    pub fn touch_vehicle(&self, id: &DeviceId) -> Result<PowerState, WorldError> {
        let now = self.clock.now();
        let mut inner = self.lock();
        let s = inner.site_of(id, DeviceKind::Vehicle, now)?;
        let v = s.vehicles.get_mut(id).ok_or_else(|| WorldError::UnknownDevice(id.clone()))?;
        if v.m.power_state == PowerState::Online {
            v.m.last_activity = v.m.last_activity.max(now);
        }
        Ok(v.m.power_state)
    }

    /// Wake-up counters of a vehicle (zeros if never asked).
    pub fn wake_count(&self, id: &DeviceId) -> WakeCount {
        self.lock().wakes.get(id).copied().unwrap_or_default()
    }

    // ---- commands ----------------------------------------------------------------------

    /// Sends a command from `vendor`'s cloud to a device. Checks preconditions now (against
    /// the state projected through commands in flight), then queues the effect after a
    /// latency drawn from the vendor's [`crate::LatencyProfile`]. See [`crate::command`].
    pub fn command(
        &self,
        vendor: &str,
        device: &DeviceId,
        cmd: WorldCommand,
    ) -> Result<CommandTicket, CommandRejected> {
        let now = self.clock.now();
        let mut inner = self.lock();
        inner.book.stats.entry(vendor.to_owned()).or_default().received += 1;
        let result = Self::accept(&mut inner, vendor, device, cmd, now);
        let stats = inner.book.stats.entry(vendor.to_owned()).or_default();
        match &result {
            Ok(ticket) => {
                stats.accepted += 1;
                if ticket.lost {
                    stats.lost += 1;
                }
            }
            Err(_) => stats.rejected += 1,
        }
        result
    }

    fn accept(
        inner: &mut Inner,
        vendor: &str,
        device: &DeviceId,
        cmd: WorldCommand,
        now: DateTime<Utc>,
    ) -> Result<CommandTicket, CommandRejected> {
        let unknown =
            || CommandRejected::UnknownDevice { device: device.clone(), vendor: vendor.to_owned() };
        let entry = inner.index.get(device).ok_or_else(unknown)?;
        if entry.vendor != vendor {
            return Err(unknown());
        }
        let site = entry.site.clone();
        inner.advance_site(&site, now);
        let s = inner.sites.get(&site).ok_or_else(unknown)?;
        s.projected(device).check(device, &cmd)?;
        let profile = inner.config.latency_for(vendor);
        let seed = inner.seed;
        let rng =
            inner.book.rngs.entry(vendor.to_owned()).or_insert_with(|| SimRng::keyed(seed, vendor));
        let latency = profile.sample(rng);
        inner.book.next_ticket += 1;
        let id = inner.book.next_ticket;
        let due_at = add_secs(now, latency.unwrap_or(profile.median_secs.max(0.0)));
        let ticket = CommandTicket {
            id,
            vendor: vendor.to_owned(),
            device: device.clone(),
            command: cmd.clone(),
            received_at: now,
            due_at,
            lost: latency.is_none(),
        };
        let s = inner.sites.get_mut(&site).ok_or_else(unknown)?;
        if let Some(v) = s.vehicles.get_mut(device) {
            // A command is activity: the car stays awake for it.
            v.m.last_activity = v.m.last_activity.max(now);
        }
        if latency.is_some() {
            let pos = s.effects.partition_point(|e| (e.due_at, e.ticket) <= (due_at, id));
            s.effects.insert(
                pos,
                PendingEffect {
                    ticket: id,
                    vendor: vendor.to_owned(),
                    device: device.clone(),
                    command: cmd,
                    due_at,
                },
            );
            inner.book.outcomes.insert(id, (site, CommandOutcome::Pending { due_at }));
        } else {
            inner.book.outcomes.insert(id, (site, CommandOutcome::Lost));
        }
        Ok(ticket)
    }

    /// What became of a command (advances the device's site first).
    pub fn command_outcome(&self, ticket: u64) -> Option<CommandOutcome> {
        let now = self.clock.now();
        let mut inner = self.lock();
        let site = inner.book.outcomes.get(&ticket)?.0.clone();
        inner.advance_site(&site, now);
        inner.book.outcomes.get(&ticket).map(|(_, o)| o.clone())
    }

    /// Command counters of a vendor (advances the world first).
    pub fn command_stats(&self, vendor: &str) -> CommandStats {
        let now = self.clock.now();
        let mut inner = self.lock();
        inner.advance_all(now);
        inner.book.stats.get(vendor).copied().unwrap_or_default()
    }

    /// Command counters over all vendors (advances the world first).
    pub fn command_stats_total(&self) -> CommandStats {
        let now = self.clock.now();
        let mut inner = self.lock();
        inner.advance_all(now);
        let mut total = CommandStats::default();
        for s in inner.book.stats.values() {
            total.add(s);
        }
        total
    }

    // ---- ground truth ------------------------------------------------------------------

    /// Changes with `at >= t`, in time order (advances the world first).
    pub fn changes_since(&self, t: DateTime<Utc>) -> Vec<Change> {
        let now = self.clock.now();
        let mut inner = self.lock();
        inner.advance_all(now);
        inner.truth.since(t)
    }

    /// Changes with `from <= at < to`, in time order (advances the world first).
    pub fn changes_between(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<Change> {
        let now = self.clock.now();
        let mut inner = self.lock();
        inner.advance_all(now);
        inner.truth.between(from, to)
    }

    /// Changes of one device with `at >= t`.
    pub fn device_changes_since(&self, device: &DeviceId, t: DateTime<Utc>) -> Vec<Change> {
        self.changes_since(t).into_iter().filter(|c| &c.device == device).collect()
    }

    // ---- mutators for tests and tools --------------------------------------------------

    /// Plugs a vehicle in now (into the site charger if at home and it is free). Starts
    /// charging if the car does so on plug-in. No-op if already plugged in or driving.
    pub fn plug_in(&self, vehicle: &DeviceId) -> Result<(), WorldError> {
        self.vehicle_op(vehicle, |s, now, out| s.plug_in(vehicle, now, &ChangeCause::External, out))
    }

    /// Unplugs a vehicle now.
    pub fn unplug(&self, vehicle: &DeviceId) -> Result<(), WorldError> {
        self.vehicle_op(vehicle, |s, now, out| s.unplug(vehicle, now, &ChangeCause::External, out))
    }

    /// Sets a vehicle's connectivity now, logging the transition (cause `External`).
    pub fn set_vehicle_power_state(
        &self,
        vehicle: &DeviceId,
        state: PowerState,
    ) -> Result<(), WorldError> {
        self.vehicle_op(vehicle, |s, now, out| {
            let Some(v) = s.vehicles.get_mut(vehicle) else { return };
            let old = v.m.power_state;
            if old == state {
                return;
            }
            let cause = ChangeCause::External;
            let kind = match (old, state) {
                (PowerState::Offline, PowerState::Online) => ChangeKind::CameOnline,
                (_, PowerState::Online) => ChangeKind::WokeUp,
                (_, PowerState::Asleep) => ChangeKind::FellAsleep,
                (_, PowerState::Offline) => ChangeKind::WentOffline,
            };
            v.m.power_state = state;
            v.m.waking_at = None;
            if state == PowerState::Online {
                v.m.last_activity = v.m.last_activity.max(now);
            }
            out.changes.push(Change { at: now, device: vehicle.clone(), kind, cause });
        })
    }

    fn vehicle_op(
        &self,
        id: &DeviceId,
        f: impl FnOnce(&mut SiteSim, DateTime<Utc>, &mut Out),
    ) -> Result<(), WorldError> {
        let now = self.clock.now();
        let mut inner = self.lock();
        let mut out = Out::default();
        let s = inner.site_of(id, DeviceKind::Vehicle, now)?;
        let at = s.t.max(now);
        f(s, at, &mut out);
        s.dirty = true;
        inner.absorb(out, now);
        Ok(())
    }

    /// Edits a vehicle's physics directly (not logged). The result is normalized: levels
    /// and limits clamped, a charging car at its limit becomes complete.
    pub fn update_vehicle(
        &self,
        id: &DeviceId,
        f: impl FnOnce(&mut VehicleModel),
    ) -> Result<(), WorldError> {
        self.vehicle_op(id, |s, _, _| {
            let Some(v) = s.vehicles.get_mut(id) else { return };
            f(&mut v.m);
            let m = &mut v.m;
            m.battery_level = m.battery_level.clamp(0.0, 100.0);
            m.charge_limit = m.charge_limit.clamp(50.0, 100.0);
            m.amps = m.amps.min(m.max_amps);
            if m.charging == ChargeState::Charging && m.battery_level >= m.charge_limit - LEVEL_EPS
            {
                m.charging = ChargeState::Complete;
            }
            let unplugged = !m.charging.is_plugged_in();
            if unplugged {
                for c in s.chargers.values_mut() {
                    if c.m.vehicle.as_ref() == Some(id) {
                        c.m.vehicle = None;
                    }
                }
            }
        })
    }

    fn device_op<R>(
        &self,
        id: &DeviceId,
        kind: DeviceKind,
        f: impl FnOnce(&mut SiteSim, DateTime<Utc>, &mut Out) -> R,
    ) -> Result<R, WorldError> {
        let now = self.clock.now();
        let mut inner = self.lock();
        let mut out = Out::default();
        let s = inner.site_of(id, kind, now)?;
        let at = s.t.max(now);
        let r = f(s, at, &mut out);
        s.dirty = true;
        inner.absorb(out, now);
        Ok(r)
    }

    /// Edits a home battery directly (not logged; state of charge and reserve clamped).
    pub fn update_battery(
        &self,
        id: &DeviceId,
        f: impl FnOnce(&mut BatteryModel),
    ) -> Result<(), WorldError> {
        self.device_op(id, DeviceKind::Battery, |s, _, _| {
            if let Some(b) = s.batteries.get_mut(id) {
                f(&mut b.m);
                b.m.soc_pct = b.m.soc_pct.clamp(0.0, 100.0);
                b.m.reserve_pct = b.m.reserve_pct.clamp(0.0, 100.0);
                if b.m.soc_pct >= 100.0 - SOC_EPS {
                    b.m.soc_pct = 100.0;
                }
            }
        })
    }

    /// Edits a charger directly (not logged; the current limit is clamped to its range).
    pub fn update_charger(
        &self,
        id: &DeviceId,
        f: impl FnOnce(&mut ChargerModel),
    ) -> Result<(), WorldError> {
        self.device_op(id, DeviceKind::Charger, |s, _, _| {
            if let Some(c) = s.chargers.get_mut(id) {
                f(&mut c.m);
                c.m.max_current_a =
                    c.m.max_current_a.clamp(MIN_CURRENT_A, c.m.hardware_max_a.max(MIN_CURRENT_A));
            }
        })
    }

    /// Edits an HVAC unit directly (not logged).
    pub fn update_hvac(
        &self,
        id: &DeviceId,
        f: impl FnOnce(&mut HvacModel),
    ) -> Result<(), WorldError> {
        self.device_op(id, DeviceKind::Hvac, |s, _, _| {
            if let Some(h) = s.hvacs.get_mut(id) {
                f(&mut h.m);
            }
        })
    }

    /// Edits an inverter directly (not logged).
    pub fn update_inverter(
        &self,
        id: &DeviceId,
        f: impl FnOnce(&mut InverterModel),
    ) -> Result<(), WorldError> {
        self.device_op(id, DeviceKind::Inverter, |s, _, _| {
            if let Some(i) = s.inverters.get_mut(id) {
                f(&mut i.m);
            }
        })
    }

    /// Sets the cloud connectivity of any device now, logging `WentOffline`/`CameOnline`.
    /// For vehicles this is [`World::set_vehicle_power_state`] with `Offline`/`Online`.
    pub fn set_device_online(&self, id: &DeviceId, online: bool) -> Result<(), WorldError> {
        let kind = self.lock().entry(id)?.kind;
        if kind == DeviceKind::Vehicle {
            let state = if online { PowerState::Online } else { PowerState::Offline };
            return self.set_vehicle_power_state(id, state);
        }
        self.device_op(id, kind, |s, now, out| {
            let flag = match kind {
                DeviceKind::Battery => s.batteries.get_mut(id).map(|d| &mut d.m.online),
                DeviceKind::Inverter => s.inverters.get_mut(id).map(|d| &mut d.m.online),
                DeviceKind::Meter => s.meters.get_mut(id).map(|d| &mut d.m.online),
                DeviceKind::Charger => s.chargers.get_mut(id).map(|d| &mut d.m.online),
                DeviceKind::Hvac => s.hvacs.get_mut(id).map(|d| &mut d.m.online),
                DeviceKind::Vehicle => None,
            };
            if let Some(flag) = flag
                && *flag != online
            {
                *flag = online;
                let kind = if online { ChangeKind::CameOnline } else { ChangeKind::WentOffline };
                out.changes.push(Change {
                    at: now,
                    device: id.clone(),
                    kind,
                    cause: ChangeCause::External,
                });
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn world_is_send_sync_clone() {
        fn assert_traits<T: Send + Sync + Clone + 'static>() {}
        assert_traits::<World>();
        assert_traits::<crate::FaultInjector>();
    }

    #[test]
    fn a_sites_devices_are_the_devices_whose_site_it_is() {
        let clock = Arc::new(oemgate_core::ManualClock::new(DateTime::UNIX_EPOCH));
        let world = World::new(3, clock, WorldConfig::default());
        let spec = crate::fleet::FleetSpec { households: 40, ..Default::default() };
        let households = crate::fleet::generate(&world, &spec).unwrap();
        let mut seen = 0;
        for household in &households {
            let scanned = world.infos(|e| e.site == household.site);
            assert_eq!(world.devices_of_site(&household.site), scanned);
            seen += scanned.len();
        }
        assert!(seen > households.len(), "households have devices: {seen}");
        assert_eq!(seen, world.devices().len(), "every device is some site's");
    }

    #[test]
    fn latency_profiles_can_be_changed_at_run_time() {
        let clock = Arc::new(oemgate_core::ManualClock::new(DateTime::UNIX_EPOCH));
        let world = World::new(1, clock, WorldConfig::default());
        let fixed = crate::LatencyProfile::fixed(300.0);
        world.set_latency("tesla", fixed);
        assert_eq!(world.config().latency_for("tesla"), fixed);
        assert_eq!(world.config().latency_for("enphase"), crate::LatencyProfile::default());
    }
}
