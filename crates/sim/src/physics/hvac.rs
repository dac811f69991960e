//! HVAC: outdoor temperature, a thermostat with hysteresis, and indoor temperature drift.
//!
//! Indoor temperature relaxes exponentially: towards the outdoor temperature with the
//! house's time constant when the unit is idle, and towards a point past the setpoint with
//! a much shorter one while heating or cooling. The thermostat switches with a hysteresis
//! of [`HYSTERESIS_C`] so the unit cycles instead of chattering.

use serde::{Deserialize, Serialize};

use crate::rng::{hash, value_noise};

/// Half-width of the thermostat's dead band, °C.
pub const HYSTERESIS_C: f64 = 0.4;

/// Thermostat mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum HvacMode {
    /// Turned off.
    Off,
    /// Heats to the heat setpoint.
    Heat,
    /// Cools to the cool setpoint.
    Cool,
    /// Heats below the heat setpoint and cools above the cool setpoint.
    Auto,
}

impl HvacMode {
    /// Enode-style spelling (`OFF`, `HEAT`, `COOL`, `AUTO`).
    pub fn as_str(self) -> &'static str {
        match self {
            HvacMode::Off => "OFF",
            HvacMode::Heat => "HEAT",
            HvacMode::Cool => "COOL",
            HvacMode::Auto => "AUTO",
        }
    }
}

impl From<HvacMode> for oemgate_core::HvacMode {
    fn from(mode: HvacMode) -> Self {
        match mode {
            HvacMode::Off => oemgate_core::HvacMode::Off,
            HvacMode::Heat => oemgate_core::HvacMode::Heat,
            HvacMode::Cool => oemgate_core::HvacMode::Cool,
            HvacMode::Auto => oemgate_core::HvacMode::Auto,
        }
    }
}

/// What the unit is doing right now.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HvacActivity {
    /// Not running.
    Idle,
    /// Heating.
    Heating,
    /// Cooling.
    Cooling,
}

/// Whether the unit holds a setting or follows its schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HvacHold {
    /// Holds the mode and setpoints set by a command (Enode `PERMANENT`).
    Permanent,
    /// Follows the day/night schedule (Enode `SCHEDULED`).
    Schedule,
}

/// A simple day/night schedule (local hours).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HvacSchedule {
    /// Mode while following the schedule.
    pub mode: HvacMode,
    /// Local hour the day period starts.
    pub day_start_hour: f64,
    /// Local hour the night period starts.
    pub night_start_hour: f64,
    /// Heat setpoint during the day, °C.
    pub day_heat_c: f64,
    /// Cool setpoint during the day, °C.
    pub day_cool_c: f64,
    /// Heat setpoint at night, °C.
    pub night_heat_c: f64,
    /// Cool setpoint at night, °C.
    pub night_cool_c: f64,
}

impl Default for HvacSchedule {
    fn default() -> Self {
        Self {
            mode: HvacMode::Auto,
            day_start_hour: 6.0,
            night_start_hour: 22.0,
            day_heat_c: 21.0,
            day_cool_c: 25.0,
            night_heat_c: 17.0,
            night_cool_c: 27.0,
        }
    }
}

impl HvacSchedule {
    /// `(heat, cool)` setpoints at a local hour.
    pub fn setpoints_at(&self, local_hour: f64) -> (f64, f64) {
        if super::battery::in_window(local_hour, (self.day_start_hour, self.night_start_hour)) {
            (self.day_heat_c, self.day_cool_c)
        } else {
            (self.night_heat_c, self.night_cool_c)
        }
    }
}

/// The state of one HVAC unit. Fields are public so tests can set them through
/// `World::update_hvac`.
#[derive(Clone, Debug, PartialEq)]
pub struct HvacModel {
    /// Mode in effect (the schedule's while following it).
    pub mode: HvacMode,
    /// Heat setpoint in effect, °C.
    pub heat_setpoint: f64,
    /// Cool setpoint in effect, °C.
    pub cool_setpoint: f64,
    /// Permanent hold or schedule.
    pub hold: HvacHold,
    /// The schedule.
    pub schedule: HvacSchedule,
    /// Indoor temperature, °C.
    pub indoor_c: f64,
    /// What it is doing.
    pub activity: HvacActivity,
    /// Electrical power while heating, W.
    pub heat_power_w: f64,
    /// Electrical power while cooling, W.
    pub cool_power_w: f64,
    /// Time constant of the house towards outdoor temperature, hours.
    pub house_tau_h: f64,
    /// Time constant while the unit runs, hours.
    pub active_tau_h: f64,
    /// Cloud connectivity.
    pub online: bool,
}

impl HvacModel {
    /// Electrical power now, W.
    pub fn power_w(&self) -> f64 {
        match self.activity {
            HvacActivity::Idle => 0.0,
            HvacActivity::Heating => self.heat_power_w,
            HvacActivity::Cooling => self.cool_power_w,
        }
    }

    /// Integrates `secs` seconds at outdoor temperature `outdoor_c`.
    pub fn integrate(&mut self, secs: f64, outdoor_c: f64) {
        self.indoor_c = indoor_after(self, outdoor_c, secs);
    }
}

/// Outdoor temperature in °C: seasonal mean by latitude, a diurnal swing peaking at 15:00
/// local time and seeded weather noise.
pub fn outdoor_temp_c(
    site_key: u64,
    latitude: f64,
    day_of_year: u32,
    local_hour: f64,
    t_secs: f64,
) -> f64 {
    let lat = latitude.clamp(-90.0, 90.0);
    let annual_mean = 27.0 - 0.35 * lat.abs();
    let amplitude = 2.0 + 0.2 * lat.abs();
    // Coldest around mid-January in the north (day 15), mid-July in the south.
    let phase = if lat >= 0.0 { 15.0 } else { 197.0 };
    let season = -(2.0 * std::f64::consts::PI * (f64::from(day_of_year) - phase) / 365.0).cos();
    let diurnal = (2.0 * std::f64::consts::PI * (local_hour - 9.0) / 24.0).sin() * 4.0;
    let weather = (value_noise(hash(&[site_key, 0x7E3F]), t_secs, 3.0 * 86_400.0) - 0.5) * 8.0;
    annual_mean + amplitude * season + diurnal + weather
}

/// The thermostat's decision with hysteresis, given what the unit is doing now.
pub fn thermostat(
    mode: HvacMode,
    indoor_c: f64,
    heat_c: f64,
    cool_c: f64,
    now: HvacActivity,
) -> HvacActivity {
    let heat = || {
        if indoor_c < heat_c - HYSTERESIS_C
            || (now == HvacActivity::Heating && indoor_c < heat_c + HYSTERESIS_C)
        {
            Some(HvacActivity::Heating)
        } else {
            None
        }
    };
    let cool = || {
        if indoor_c > cool_c + HYSTERESIS_C
            || (now == HvacActivity::Cooling && indoor_c > cool_c - HYSTERESIS_C)
        {
            Some(HvacActivity::Cooling)
        } else {
            None
        }
    };
    let decided = match mode {
        HvacMode::Off => None,
        HvacMode::Heat => heat(),
        HvacMode::Cool => cool(),
        HvacMode::Auto => heat().or_else(cool),
    };
    decided.unwrap_or(HvacActivity::Idle)
}

/// Indoor temperature after `secs` seconds: exact exponential relaxation towards the
/// outdoor temperature (idle) or towards 2 °C past the active setpoint (running).
pub fn indoor_after(m: &HvacModel, outdoor_c: f64, secs: f64) -> f64 {
    if secs <= 0.0 {
        return m.indoor_c;
    }
    let (target, tau_h) = match m.activity {
        HvacActivity::Idle => (outdoor_c, m.house_tau_h),
        HvacActivity::Heating => (m.heat_setpoint + 2.0, m.active_tau_h),
        HvacActivity::Cooling => (m.cool_setpoint - 2.0, m.active_tau_h),
    };
    let tau = (tau_h * 3600.0).max(1.0);
    target + (m.indoor_c - target) * (-secs / tau).exp()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn model(activity: HvacActivity, indoor: f64) -> HvacModel {
        HvacModel {
            mode: HvacMode::Heat,
            heat_setpoint: 21.0,
            cool_setpoint: 25.0,
            hold: HvacHold::Permanent,
            schedule: HvacSchedule::default(),
            indoor_c: indoor,
            activity,
            heat_power_w: 3000.0,
            cool_power_w: 2500.0,
            house_tau_h: 12.0,
            active_tau_h: 1.0,
            online: true,
        }
    }

    #[test]
    fn thermostat_has_hysteresis() {
        assert_eq!(
            thermostat(HvacMode::Heat, 20.0, 21.0, 25.0, HvacActivity::Idle),
            HvacActivity::Heating
        );
        assert_eq!(
            thermostat(HvacMode::Heat, 21.2, 21.0, 25.0, HvacActivity::Heating),
            HvacActivity::Heating
        );
        assert_eq!(
            thermostat(HvacMode::Heat, 21.2, 21.0, 25.0, HvacActivity::Idle),
            HvacActivity::Idle
        );
        assert_eq!(
            thermostat(HvacMode::Auto, 26.0, 21.0, 25.0, HvacActivity::Idle),
            HvacActivity::Cooling
        );
        assert_eq!(
            thermostat(HvacMode::Off, 5.0, 21.0, 25.0, HvacActivity::Idle),
            HvacActivity::Idle
        );
        assert_eq!(
            thermostat(HvacMode::Cool, 5.0, 21.0, 25.0, HvacActivity::Idle),
            HvacActivity::Idle
        );
    }

    #[test]
    fn schedule_switches_day_and_night() {
        let s = HvacSchedule::default();
        assert_eq!(s.setpoints_at(12.0), (21.0, 25.0));
        assert_eq!(s.setpoints_at(23.0), (17.0, 27.0));
        assert_eq!(s.setpoints_at(3.0), (17.0, 27.0));
    }

    proptest! {
        #[test]
        fn idle_drifts_towards_outdoor(indoor in -10.0f64..35.0, outdoor in -20.0f64..40.0, secs in 1.0f64..100_000.0) {
            let m = model(HvacActivity::Idle, indoor);
            let after = indoor_after(&m, outdoor, secs);
            prop_assert!((after - outdoor).abs() <= (indoor - outdoor).abs() + 1e-9);
        }

        #[test]
        fn heating_warms_a_cold_house(indoor in -10.0f64..20.0, secs in 1.0f64..10_000.0) {
            let m = model(HvacActivity::Heating, indoor);
            prop_assert!(indoor_after(&m, -5.0, secs) > indoor);
        }
    }
}
