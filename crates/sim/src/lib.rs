//! oemgate-sim: the simulated world behind every vendor-cloud simulator.
//!
//! No vendor cloud is reachable from tests, the demo or the loadtest, so each vendor
//! simulator (Tesla, Enphase, SolarEdge, ...) renders *this* world in its own API. One
//! world holds homes ([sites](World::add_site)) with PV inverters, house load, home
//! batteries, grid meters, EV chargers, HVAC units, and vehicles that commute, come home,
//! plug in, charge and fall asleep. Vendor simulators read snapshots, send
//! [commands](World::command) that land after a per-vendor latency, and ask the
//! [`FaultInjector`] how to misbehave; tests check what really happened in the
//! [ground-truth log](World::changes_since).
//!
//! # Layout
//!
//! - [`world`]: [`World`], the shared handle: building, reading, commanding, truth,
//!   mutators for tests.
//! - `site` (internal): one site's event-driven stepping; [`STEP`], [`InverterModel`],
//!   [`MeterModel`].
//! - [`physics`]: pure models and functions (solar, load, battery, vehicle, charger, HVAC).
//! - [`spec`]: how things start out ([`SiteSpec`], [`VehicleSpec`], ...) and
//!   [`WorldConfig`].
//! - [`state`]: the snapshots accessors return ([`VehicleState`], [`SiteState`], ...).
//! - [`command`]: [`WorldCommand`], [`CommandRejected`], tickets, outcomes, stats,
//!   [`LatencyProfile`].
//! - [`truth`]: [`Change`], [`ChangeKind`], [`ChangeCause`].
//! - [`fault`]: [`Fault`], [`FaultInjector`], [`FaultConfig`].
//! - [`fleet`]: [`fleet::generate`] for synthetic, reproducible fleets.
//! - [`host`]: [`SimHost`], serving vendor routers under path prefixes with a
//!   [`RequestLog`].
//! - [`rng`]: counter-based noise and reproducible streams.
//! - [`ids`]: [`SiteId`], [`DeviceId`], [`DeviceKind`].
//!
//! # Time and stepping
//!
//! The world never sleeps and runs no timers: it reads a [`oemgate_core::Clock`] (system,
//! `ScaledClock` for the accelerated demo, `ManualClock` in tests) and advances lazily to
//! `clock.now()` whenever a site is read or commanded, or on [`World::advance_to`]. Rates
//! (PV, load, thermostat, battery and charging power) are re-evaluated on a fixed
//! [`STEP`] of **10 s of simulated time** (aligned to the Unix epoch) and at every discrete
//! event; in between the state integrates exactly. Discrete events (command effects,
//! wake-ups, departures, arrivals, plug-ins, reaching a charge limit, falling asleep) happen
//! at their exact instants and are logged with them. Thermostat decisions and HVAC schedule
//! switches carry the grid instant.
//!
//! # Determinism
//!
//! Same seed + same calls at the same clock readings => identical world and identical
//! change log. Noise (clouds, load, weather) and daily driving plans are pure functions of
//! the seed, the site/device id and time, so they do not depend on how often the world is
//! read; event-driven draws (plug-in decisions, wake delays) come from per-device streams
//! and command latencies from per-vendor streams. Reading more or less often changes
//! results at most by floating-point rounding.
//!
//! # Sign conventions
//!
//! All powers are in W (vehicle charging power in kW), consumption side positive:
//!
//! - `grid_w`: **positive = import**, negative = export.
//! - `battery_w` / `BatteryState::power_w`: **positive = charging**, negative = discharging.
//! - `pv_w`, `load_w`, `ev_w`, `hvac_w`: never negative.
//! - Balance, exact in every snapshot: `grid_w = load_w + ev_w + hvac_w + battery_w - pv_w`.
//!   `load_w` is the house load without EV charging and HVAC; `ev_w` counts only vehicles
//!   parked at home.
//! - Energy counters (`import_kwh`, `export_kwh`, `pv_kwh`, battery `charged_kwh`/
//!   `discharged_kwh`) only grow.
//!
//! # Not modelled
//!
//! Daylight saving time (sites have a fixed UTC offset), battery and charging losses,
//! temperature effects on batteries, DC fast charging, charging away from home (except when
//! a test plugs a car in), vehicles without a home site.

pub mod command;
pub mod fault;
pub mod fleet;
pub mod host;
pub mod http;
pub mod ids;
pub mod physics;
pub mod rng;
mod site;
pub mod spec;
pub mod state;
pub mod truth;
pub mod world;

pub use command::{
    CommandOutcome, CommandRejected, CommandStats, CommandTicket, LatencyProfile, WorldCommand,
};
pub use fault::{Fault, FaultConfig, FaultInjector, FaultRule, ScheduledFault, TIMEOUT_HANG};
pub use fleet::{FleetSpec, Household, VendorWeight};
pub use host::{HostError, RequestLog, RequestRecord, SimHost};
pub use ids::{DeviceId, DeviceInfo, DeviceKind, SiteId};
pub use physics::battery::{BatteryMode, BatteryModel};
pub use physics::charger::{ChargerModel, ChargerStatus};
pub use physics::hvac::{HvacActivity, HvacHold, HvacMode, HvacModel, HvacSchedule};
pub use physics::vehicle::{ChargeState, DrivingPattern, PowerState, VehicleModel};
pub use site::{InverterModel, MeterModel, STEP};
pub use spec::{
    BatterySpec, ChargerSpec, HvacSpec, InverterSpec, MeterSpec, SiteSpec, VehicleSpec, WorldConfig,
};
pub use state::{
    BatteryState, BatteryStatus, ChargerState, HvacState, InverterState, MeterState, SiteState,
    VehicleState,
};
pub use truth::{Change, ChangeCause, ChangeKind};
pub use world::{WakeCount, WakeOutcome, World, WorldError};
