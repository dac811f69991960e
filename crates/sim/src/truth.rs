//! Ground truth: every change to an observable discrete field, with the simulated instant
//! it happened.
//!
//! Discrete events (plugging in, charging starting/stopping/completing, sleep and wake,
//! drives, settings changed by commands) are logged with their exact instant: command
//! effects at their due time, wake-ups at the drawn delay, charge completion at the
//! computed instant the limit is reached, sleep at exactly `last_activity + sleep_after`.
//! Decisions the physics makes on its fixed step grid (the thermostat, schedule switches)
//! carry the grid instant. Continuous quantities (battery levels, powers, temperatures) are
//! not logged; read them through the world's state accessors.

use std::collections::VecDeque;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::DeviceId;
use crate::physics::battery::BatteryMode;
use crate::physics::hvac::{HvacActivity, HvacHold, HvacMode};

/// Why something changed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum ChangeCause {
    /// The simulation itself (driving, charging, schedules, sleep).
    Physics,
    /// The effect of a command (the ticket id from `World::command`).
    Command {
        /// The command's ticket id.
        ticket: u64,
    },
    /// A wake-up request (`World::wake_vehicle`).
    WakeRequest,
    /// A test or tool mutator (`plug_in`, `set_vehicle_power_state`, ...).
    External,
}

/// What changed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum ChangeKind {
    /// A cable was connected. On a vehicle `peer` is the charger (if a site charger), on a
    /// charger it is the vehicle.
    PluggedIn {
        /// The other end, if it is a simulated device.
        peer: Option<DeviceId>,
    },
    /// The cable was disconnected.
    Unplugged {
        /// The other end, if it was a simulated device.
        peer: Option<DeviceId>,
    },
    /// Charging began (vehicle, and the charger it is plugged into).
    ChargingStarted,
    /// Charging stopped before the limit (command, unplug, departure, no power).
    ChargingStopped,
    /// Charging reached the charge limit and stopped.
    ChargeComplete {
        /// Battery level at completion, %.
        level: f64,
    },
    /// The vehicle fell asleep.
    FellAsleep,
    /// The vehicle woke up (after a wake request, or to drive, or by a charger start).
    WokeUp,
    /// A device lost cloud connectivity.
    WentOffline,
    /// A device regained cloud connectivity.
    CameOnline,
    /// The vehicle started driving.
    DriveStarted {
        /// Whether it left from home.
        from_home: bool,
    },
    /// The vehicle arrived.
    DriveEnded {
        /// Distance of the drive, km.
        distance_km: f64,
        /// Whether it arrived at home.
        at_home: bool,
        /// Battery level on arrival, %.
        level: f64,
    },
    /// Vehicle charge limit.
    ChargeLimitChanged {
        /// Before, %.
        from: f64,
        /// After, %.
        to: f64,
    },
    /// Vehicle charging current setting.
    ChargeAmpsChanged {
        /// Before, A.
        from: u32,
        /// After, A.
        to: u32,
    },
    /// Battery operation mode.
    BatteryModeChanged {
        /// Before.
        from: BatteryMode,
        /// After.
        to: BatteryMode,
    },
    /// Battery reserve.
    ReserveChanged {
        /// Before, %.
        from: f64,
        /// After, %.
        to: f64,
    },
    /// Charger current limit.
    ChargerMaxCurrentChanged {
        /// Before, A.
        from: f64,
        /// After, A.
        to: f64,
    },
    /// HVAC mode.
    HvacModeChanged {
        /// Before.
        from: HvacMode,
        /// After.
        to: HvacMode,
    },
    /// HVAC setpoints in effect (by command or by the schedule switching day/night).
    SetpointChanged {
        /// Heat setpoint, °C.
        heat: f64,
        /// Cool setpoint, °C.
        cool: f64,
    },
    /// HVAC hold type (permanent hold vs schedule).
    HoldChanged {
        /// The new hold.
        hold: HvacHold,
    },
    /// HVAC started or stopped heating/cooling.
    HvacActivityChanged {
        /// What it does now.
        activity: HvacActivity,
    },
}

/// One logged change.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Change {
    /// The simulated instant it happened.
    pub at: DateTime<Utc>,
    /// The device it happened to.
    pub device: DeviceId,
    /// What changed.
    pub kind: ChangeKind,
    /// Why.
    pub cause: ChangeCause,
}

/// The log, kept sorted by `at` (sites advance independently, so a change can arrive
/// after later ones of another site; insertion keeps order, stable for equal instants).
#[derive(Debug, Default)]
pub(crate) struct Truth {
    log: VecDeque<Change>,
    retention: Option<chrono::Duration>,
}

impl Truth {
    pub(crate) fn new(retention: Option<std::time::Duration>) -> Self {
        Self {
            log: VecDeque::new(),
            retention: retention.and_then(|d| chrono::Duration::from_std(d).ok()),
        }
    }

    pub(crate) fn push(&mut self, change: Change) {
        // Most changes are the newest; search back from the end.
        let pos = self.log.iter().rposition(|c| c.at <= change.at).map_or(0, |i| i + 1);
        self.log.insert(pos, change);
    }

    /// Drops changes older than the retention before `now`.
    pub(crate) fn prune(&mut self, now: DateTime<Utc>) {
        if let Some(keep) = self.retention {
            let cutoff = now - keep;
            while self.log.front().is_some_and(|c| c.at < cutoff) {
                self.log.pop_front();
            }
        }
    }

    pub(crate) fn since(&self, t: DateTime<Utc>) -> Vec<Change> {
        let start = self.log.partition_point(|c| c.at < t);
        self.log.range(start..).cloned().collect()
    }

    pub(crate) fn between(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<Change> {
        let start = self.log.partition_point(|c| c.at < from);
        self.log.range(start..).take_while(|c| c.at < to).cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn change(secs: i64, device: &str) -> Change {
        Change {
            at: Utc.timestamp_opt(1_800_000_000 + secs, 0).single().unwrap_or_default(),
            device: DeviceId::new(device),
            kind: ChangeKind::FellAsleep,
            cause: ChangeCause::Physics,
        }
    }

    #[test]
    fn log_stays_sorted_and_stable_and_prunes() {
        let mut truth = Truth::new(Some(std::time::Duration::from_secs(100)));
        truth.push(change(10, "a"));
        truth.push(change(30, "b"));
        truth.push(change(20, "c"));
        truth.push(change(20, "d"));
        let order: Vec<&str> = truth.log.iter().map(|c| c.device.as_str()).collect();
        assert_eq!(order, ["a", "c", "d", "b"]);
        assert_eq!(truth.since(change(20, "x").at).len(), 3);
        assert_eq!(truth.between(change(20, "x").at, change(30, "x").at).len(), 2);
        truth.prune(change(115, "x").at);
        assert_eq!(truth.log.len(), 3);
    }
}
