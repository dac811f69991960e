//! Read-only snapshots of sites and devices, as returned by the world's accessors. Plain
//! `Clone` data: taking one never holds a lock, and each carries the instant (`at`) it
//! describes.
//!
//! Power sign convention everywhere: consumption-side positive. `grid_w > 0` imports,
//! `battery_w > 0` charges the battery, `pv_w >= 0` is production.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{DeviceId, SiteId};
use crate::physics::battery::BatteryMode;
use crate::physics::charger::ChargerStatus;
use crate::physics::hvac::{HvacActivity, HvacHold, HvacMode, HvacSchedule};
use crate::physics::vehicle::{ChargeState, PowerState};

/// A vehicle.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VehicleState {
    /// Id.
    pub id: DeviceId,
    /// Home site.
    pub site: SiteId,
    /// Vendor.
    pub vendor: String,
    /// Owner's name for it.
    pub name: String,
    /// Make.
    pub make: String,
    /// Model.
    pub model: String,
    /// Model year.
    pub year: u16,
    /// The instant this snapshot describes.
    pub at: DateTime<Utc>,
    /// Connectivity.
    pub power_state: PowerState,
    /// A requested wake-up is in progress.
    pub waking: bool,
    /// State of charge, %.
    pub battery_level: f64,
    /// Usable capacity, kWh.
    pub capacity_kwh: f64,
    /// Range at the current level, km.
    pub range_km: f64,
    /// Charge limit, %.
    pub charge_limit: f64,
    /// The charge port.
    pub charge_state: ChargeState,
    /// A cable is connected.
    pub plugged_in: bool,
    /// Charging now.
    pub charging: bool,
    /// Charging current setting, A.
    pub charge_amps: u32,
    /// The car's maximum charging current, A.
    pub max_amps: u32,
    /// The current actually drawn (setting limited by the charger), A; 0 unless charging.
    pub actual_amps: f64,
    /// Connection voltage, V.
    pub voltage: f64,
    /// Connection phases.
    pub phases: u32,
    /// On-board charger limit, kW.
    pub max_ac_kw: f64,
    /// Charging power, kW.
    pub charge_power_kw: f64,
    /// Energy added in this charging session, kWh.
    pub charge_energy_added_kwh: f64,
    /// Minutes to the charge limit at the current power (0 unless charging).
    pub minutes_to_limit: f64,
    /// The site charger it is plugged into.
    pub charger: Option<DeviceId>,
    /// Odometer, km.
    pub odometer_km: f64,
    /// Position.
    pub latitude: f64,
    /// Position.
    pub longitude: f64,
    /// Heading, degrees.
    pub heading: f64,
    /// Speed, km/h (0 unless driving).
    pub speed_kmh: f64,
    /// Driving now.
    pub driving: bool,
    /// Parked at home.
    pub at_home: bool,
    /// Last moment something kept it awake.
    pub last_activity: DateTime<Utc>,
}

/// Whether a battery charges, discharges or idles.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum BatteryStatus {
    /// Power into the battery.
    Charging,
    /// Power out of the battery.
    Discharging,
    /// Neither.
    Idle,
}

/// A home battery.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BatteryState {
    /// Id.
    pub id: DeviceId,
    /// Site.
    pub site: SiteId,
    /// Vendor.
    pub vendor: String,
    /// Display name.
    pub name: String,
    /// The instant this snapshot describes.
    pub at: DateTime<Utc>,
    /// Cloud connectivity.
    pub online: bool,
    /// Usable capacity, kWh.
    pub capacity_kwh: f64,
    /// State of charge, %.
    pub soc_pct: f64,
    /// Reserve, %.
    pub reserve_pct: f64,
    /// Operation mode.
    pub mode: BatteryMode,
    /// Power, W: positive charging, negative discharging.
    pub power_w: f64,
    /// From the sign of `power_w`.
    pub status: BatteryStatus,
    /// Maximum charge power, W.
    pub max_charge_w: f64,
    /// Maximum discharge power, W.
    pub max_discharge_w: f64,
    /// Energy charged since added, kWh.
    pub charged_kwh: f64,
    /// Energy discharged since added, kWh.
    pub discharged_kwh: f64,
}

/// A PV inverter.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InverterState {
    /// Id.
    pub id: DeviceId,
    /// Site.
    pub site: SiteId,
    /// Vendor.
    pub vendor: String,
    /// Display name.
    pub name: String,
    /// The instant this snapshot describes.
    pub at: DateTime<Utc>,
    /// Cloud connectivity.
    pub online: bool,
    /// Nameplate, W.
    pub capacity_w: f64,
    /// Production now, W (>= 0).
    pub production_w: f64,
    /// Production counter, kWh.
    pub lifetime_kwh: f64,
}

/// A grid meter.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MeterState {
    /// Id.
    pub id: DeviceId,
    /// Site.
    pub site: SiteId,
    /// Vendor.
    pub vendor: String,
    /// Display name.
    pub name: String,
    /// The instant this snapshot describes.
    pub at: DateTime<Utc>,
    /// Cloud connectivity.
    pub online: bool,
    /// Grid power, W: positive import, negative export.
    pub power_w: f64,
    /// Energy imported since the site was added, kWh.
    pub import_kwh: f64,
    /// Energy exported since the site was added, kWh.
    pub export_kwh: f64,
}

/// An EV charger.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChargerState {
    /// Id.
    pub id: DeviceId,
    /// Site.
    pub site: SiteId,
    /// Vendor.
    pub vendor: String,
    /// Display name.
    pub name: String,
    /// The instant this snapshot describes.
    pub at: DateTime<Utc>,
    /// Cloud connectivity.
    pub online: bool,
    /// What it reports.
    pub status: ChargerStatus,
    /// The vehicle plugged in.
    pub vehicle: Option<DeviceId>,
    /// A vehicle is plugged in.
    pub plugged_in: bool,
    /// Delivering power.
    pub charging: bool,
    /// Power delivered, W (the vehicle's charging power).
    pub power_w: f64,
    /// Current limit setting, A.
    pub max_current_a: f64,
    /// Hardware maximum, A.
    pub hardware_max_a: f64,
    /// Lowest settable current, A.
    pub min_current_a: f64,
    /// Phases.
    pub phases: u32,
    /// Voltage per phase, V.
    pub voltage: f64,
    /// Energy in the current session, kWh.
    pub session_kwh: f64,
    /// Energy counter, kWh.
    pub lifetime_kwh: f64,
}

/// An HVAC unit.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HvacState {
    /// Id.
    pub id: DeviceId,
    /// Site.
    pub site: SiteId,
    /// Vendor.
    pub vendor: String,
    /// Display name.
    pub name: String,
    /// The instant this snapshot describes.
    pub at: DateTime<Utc>,
    /// Cloud connectivity.
    pub online: bool,
    /// Mode in effect.
    pub mode: HvacMode,
    /// Permanent hold or schedule.
    pub hold: HvacHold,
    /// Heat setpoint in effect, °C.
    pub heat_setpoint: f64,
    /// Cool setpoint in effect, °C.
    pub cool_setpoint: f64,
    /// Indoor temperature, °C.
    pub indoor_c: f64,
    /// Outdoor temperature at the site, °C.
    pub outdoor_c: f64,
    /// What it is doing.
    pub activity: HvacActivity,
    /// Electrical power, W.
    pub power_w: f64,
    /// The schedule it follows when not holding.
    pub schedule: HvacSchedule,
}

/// A site's power balance and counters.
///
/// `grid_w = load_w + ev_w + hvac_w + battery_w - pv_w` holds exactly in every snapshot.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SiteState {
    /// Id.
    pub id: SiteId,
    /// Display name.
    pub name: String,
    /// The instant this snapshot describes.
    pub at: DateTime<Utc>,
    /// Latitude.
    pub latitude: f64,
    /// Longitude.
    pub longitude: f64,
    /// IANA time zone name.
    pub timezone: String,
    /// Offset of local time from UTC, minutes.
    pub utc_offset_minutes: i32,
    /// PV production, W (>= 0).
    pub pv_w: f64,
    /// House load without EV charging and HVAC, W (>= 0).
    pub load_w: f64,
    /// Home batteries, W: positive charging, negative discharging.
    pub battery_w: f64,
    /// EV charging of vehicles at home, W (>= 0).
    pub ev_w: f64,
    /// HVAC consumption, W (>= 0).
    pub hvac_w: f64,
    /// Grid, W: positive import, negative export.
    pub grid_w: f64,
    /// Outdoor temperature, °C.
    pub outdoor_c: f64,
    /// Energy imported since the site was added, kWh.
    pub import_kwh: f64,
    /// Energy exported since the site was added, kWh.
    pub export_kwh: f64,
    /// Energy produced by PV since the site was added, kWh.
    pub pv_kwh: f64,
    /// Its devices (vehicles: those whose home it is).
    pub devices: Vec<DeviceId>,
}
