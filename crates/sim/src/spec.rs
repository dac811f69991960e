//! How sites and devices start out (`*Spec`, all with plausible defaults) and the world's
//! configuration ([`WorldConfig`]).

use std::collections::HashMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::command::LatencyProfile;
use crate::fault::FaultConfig;
use crate::physics::battery::BatteryMode;
use crate::physics::hvac::{HvacHold, HvacMode, HvacSchedule};
use crate::physics::vehicle::{DrivingPattern, PowerState};

/// World-wide settings. Deserializable, so the gateway config can embed it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WorldConfig {
    /// Command latency per vendor (lower-case vendor name).
    pub latency: HashMap<String, LatencyProfile>,
    /// Command latency of vendors not in `latency`.
    pub default_latency: LatencyProfile,
    /// Faults scheduled at start (`start_after` counts from `World::new`).
    pub faults: FaultConfig,
    /// An online vehicle with nothing keeping it awake falls asleep after this long.
    #[serde(with = "humantime_serde")]
    pub sleep_after: Duration,
    /// A requested wake-up completes after a uniform draw from this range, seconds.
    pub wake_delay_secs: (f64, f64),
    /// Changes older than this are dropped from the truth log (`None`: keep all).
    #[serde(with = "humantime_serde")]
    pub truth_retention: Option<Duration>,
}

impl Default for WorldConfig {
    fn default() -> Self {
        Self {
            latency: HashMap::new(),
            default_latency: LatencyProfile::default(),
            faults: FaultConfig::default(),
            sleep_after: Duration::from_secs(15 * 60),
            wake_delay_secs: (10.0, 30.0),
            truth_retention: Some(Duration::from_secs(7 * 86_400)),
        }
    }
}

impl WorldConfig {
    /// The latency profile of `vendor`.
    pub fn latency_for(&self, vendor: &str) -> LatencyProfile {
        self.latency.get(vendor).copied().unwrap_or(self.default_latency)
    }
}

/// A site (home).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SiteSpec {
    /// Display name.
    pub name: String,
    /// Latitude (degrees north).
    pub latitude: f64,
    /// Longitude (degrees east).
    pub longitude: f64,
    /// IANA time zone name (reported only; the physics uses `utc_offset_minutes`).
    pub timezone: String,
    /// Fixed offset of local time from UTC, minutes (no daylight saving in the model).
    pub utc_offset_minutes: i32,
    /// Night-time house load, W (the daily pattern multiplies it).
    pub base_load_w: f64,
}

impl Default for SiteSpec {
    fn default() -> Self {
        Self {
            name: "Home".to_owned(),
            latitude: 59.9139,
            longitude: 10.7522,
            timezone: "Europe/Oslo".to_owned(),
            utc_offset_minutes: 60,
            base_load_w: 350.0,
        }
    }
}

/// An electric vehicle, starting parked at its home site.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct VehicleSpec {
    /// Vendor whose cloud exposes it.
    pub vendor: String,
    /// The owner's name for the car.
    pub name: String,
    /// Make (`Tesla`).
    pub make: String,
    /// Model (`Model Y`).
    pub model: String,
    /// Model year.
    pub year: u16,
    /// Usable capacity, kWh.
    pub capacity_kwh: f64,
    /// State of charge, %.
    pub battery_level: f64,
    /// Charge limit, % (50–100).
    pub charge_limit: f64,
    /// Efficiency, km per kWh.
    pub km_per_kwh: f64,
    /// Odometer, km.
    pub odometer_km: f64,
    /// Charging current setting, A.
    pub amps: u32,
    /// The car's maximum charging current, A.
    pub max_amps: u32,
    /// Voltage of its connection when not on a site charger, V.
    pub voltage: f64,
    /// Phases of its connection when not on a site charger.
    pub phases: u32,
    /// On-board charger limit, kW.
    pub max_ac_kw: f64,
    /// Plugged in at the start.
    pub plugged_in: bool,
    /// Charging at the start (if plugged in and below the limit).
    pub charging: bool,
    /// Starts charging by itself when plugged in below the limit.
    pub charge_on_plug: bool,
    /// Connectivity at the start (a charging car is always online).
    pub power_state: PowerState,
    /// How it drives.
    pub pattern: DrivingPattern,
}

impl Default for VehicleSpec {
    fn default() -> Self {
        Self {
            vendor: "tesla".to_owned(),
            name: "My car".to_owned(),
            make: "Tesla".to_owned(),
            model: "Model Y".to_owned(),
            year: 2024,
            capacity_kwh: 75.0,
            battery_level: 60.0,
            charge_limit: 80.0,
            km_per_kwh: 6.0,
            odometer_km: 15_000.0,
            amps: 16,
            max_amps: 16,
            voltage: 230.0,
            phases: 3,
            max_ac_kw: 11.0,
            plugged_in: false,
            charging: false,
            charge_on_plug: true,
            power_state: PowerState::Online,
            pattern: DrivingPattern::default(),
        }
    }
}

/// A home battery.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BatterySpec {
    /// Vendor.
    pub vendor: String,
    /// Display name.
    pub name: String,
    /// Usable capacity, kWh.
    pub capacity_kwh: f64,
    /// State of charge, %.
    pub soc_pct: f64,
    /// Reserve, %.
    pub reserve_pct: f64,
    /// Operation mode.
    pub mode: BatteryMode,
    /// Maximum charge power, W.
    pub max_charge_w: f64,
    /// Maximum discharge power, W.
    pub max_discharge_w: f64,
    /// Cheap window for `TimeOfUse`, local hours `[start, end)`.
    pub cheap_window: (f64, f64),
}

impl Default for BatterySpec {
    fn default() -> Self {
        Self {
            vendor: "tesla".to_owned(),
            name: "Powerwall".to_owned(),
            capacity_kwh: 13.5,
            soc_pct: 50.0,
            reserve_pct: 20.0,
            mode: BatteryMode::SelfReliance,
            max_charge_w: 5000.0,
            max_discharge_w: 5000.0,
            cheap_window: (1.0, 5.0),
        }
    }
}

/// A PV inverter.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct InverterSpec {
    /// Vendor.
    pub vendor: String,
    /// Display name.
    pub name: String,
    /// Peak (nameplate) power of the array, W.
    pub capacity_w: f64,
    /// Production counter at the start, kWh.
    pub lifetime_kwh: f64,
}

impl Default for InverterSpec {
    fn default() -> Self {
        Self {
            vendor: "enphase".to_owned(),
            name: "Solar".to_owned(),
            capacity_w: 6000.0,
            lifetime_kwh: 12_000.0,
        }
    }
}

/// A grid meter (it reads the site's grid connection).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MeterSpec {
    /// Vendor.
    pub vendor: String,
    /// Display name.
    pub name: String,
}

impl Default for MeterSpec {
    fn default() -> Self {
        Self { vendor: "enphase".to_owned(), name: "Grid meter".to_owned() }
    }
}

/// An EV charger (wallbox).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ChargerSpec {
    /// Vendor.
    pub vendor: String,
    /// Display name.
    pub name: String,
    /// Current limit setting, A.
    pub max_current_a: f64,
    /// Hardware/installation maximum, A.
    pub hardware_max_a: f64,
    /// Phases.
    pub phases: u32,
    /// Voltage per phase, V.
    pub voltage: f64,
    /// Energy counter at the start, kWh.
    pub lifetime_kwh: f64,
}

impl Default for ChargerSpec {
    fn default() -> Self {
        Self {
            vendor: "easee".to_owned(),
            name: "Wallbox".to_owned(),
            max_current_a: 16.0,
            hardware_max_a: 32.0,
            phases: 3,
            voltage: 230.0,
            lifetime_kwh: 3_000.0,
        }
    }
}

/// An HVAC unit with a thermostat.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HvacSpec {
    /// Vendor.
    pub vendor: String,
    /// Display name.
    pub name: String,
    /// Mode under a permanent hold.
    pub mode: HvacMode,
    /// Permanent hold or schedule at the start.
    pub hold: HvacHold,
    /// Heat setpoint under a permanent hold, °C.
    pub heat_setpoint: f64,
    /// Cool setpoint under a permanent hold, °C.
    pub cool_setpoint: f64,
    /// The schedule.
    pub schedule: HvacSchedule,
    /// Indoor temperature at the start, °C.
    pub indoor_c: f64,
    /// Electrical power while heating, W.
    pub heat_power_w: f64,
    /// Electrical power while cooling, W.
    pub cool_power_w: f64,
    /// House time constant towards outdoor temperature, hours.
    pub house_tau_h: f64,
    /// Time constant while running, hours.
    pub active_tau_h: f64,
}

impl Default for HvacSpec {
    fn default() -> Self {
        Self {
            vendor: "ecobee".to_owned(),
            name: "Thermostat".to_owned(),
            mode: HvacMode::Heat,
            hold: HvacHold::Schedule,
            heat_setpoint: 21.0,
            cool_setpoint: 25.0,
            schedule: HvacSchedule::default(),
            indoor_c: 20.0,
            heat_power_w: 3000.0,
            cool_power_w: 2500.0,
            house_tau_h: 12.0,
            active_tau_h: 1.5,
        }
    }
}
