//! EV charger (wallbox): limits the current of the vehicle plugged into it.
//!
//! The charger has no energy of its own: its power is the power of the vehicle plugged
//! into it. It adds a current limit (its max current setting, within its hardware range)
//! and can pause/resume the session (`ChargerStop`/`ChargerStart`).

use serde::{Deserialize, Serialize};

use crate::ids::DeviceId;

/// Lowest current a charger can be set to (IEC 61851 minimum), A.
pub const MIN_CURRENT_A: f64 = 6.0;

/// What a charger reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChargerStatus {
    /// No vehicle connected.
    Available,
    /// A vehicle is connected, not charging (stopped, or waiting for a start).
    Plugged,
    /// Delivering power.
    Charging,
    /// The vehicle is at its charge limit.
    Complete,
}

/// The state of one charger. Fields are public so tests can set them through
/// `World::update_charger`.
#[derive(Clone, Debug, PartialEq)]
pub struct ChargerModel {
    /// Current limit setting, A.
    pub max_current_a: f64,
    /// The hardware's (and installation's) maximum current, A.
    pub hardware_max_a: f64,
    /// Phases of the installation.
    pub phases: u32,
    /// Voltage per phase, V.
    pub voltage: f64,
    /// The vehicle plugged into it.
    pub vehicle: Option<DeviceId>,
    /// Energy delivered in the current session, kWh.
    pub session_kwh: f64,
    /// Energy delivered ever, kWh.
    pub lifetime_kwh: f64,
    /// Cloud connectivity.
    pub online: bool,
}

impl ChargerModel {
    /// The most power the charger delivers at its current setting, kW.
    pub fn max_power_kw(&self) -> f64 {
        charger_limit_kw(self.max_current_a, self.voltage, self.phases)
    }
}

/// The power limit in kW of a charger set to `max_current_a`.
pub fn charger_limit_kw(max_current_a: f64, voltage: f64, phases: u32) -> f64 {
    max_current_a.max(0.0) * voltage.max(0.0) * f64::from(phases.max(1)) / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_is_amps_times_volts_times_phases() {
        assert!((charger_limit_kw(16.0, 230.0, 3) - 11.04).abs() < 1e-9);
        assert!((charger_limit_kw(32.0, 240.0, 1) - 7.68).abs() < 1e-9);
    }
}
