//! Commands to devices: what they are, why they are rejected, how long they take.
//!
//! `World::command` checks preconditions against the device's state *projected* through
//! commands still in flight (so a second `StartCharging` while one is pending is
//! `AlreadySet`), draws a latency from the vendor's [`LatencyProfile`] and queues the
//! effect. When the latency has passed, the preconditions are checked again against the
//! state *then* (the car may have been unplugged meanwhile): a failure is recorded as
//! [`CommandOutcome::Failed`]; a command that would change nothing any more is applied as a
//! no-op. A lost command (drawn with the profile's `loss_share`) is never applied.

use serde::{Deserialize, Serialize};

use chrono::{DateTime, Utc};

use crate::ids::DeviceId;
use crate::physics::battery::BatteryMode;
use crate::physics::hvac::HvacMode;
use crate::rng::SimRng;

/// A command to a simulated device.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum WorldCommand {
    /// Vehicle: start charging.
    StartCharging,
    /// Vehicle: stop charging.
    StopCharging,
    /// Vehicle: charging current setting in A (clamped to the car's maximum).
    SetChargeAmps(u32),
    /// Vehicle: charge limit in % (50–100).
    SetChargeLimit(f64),
    /// Battery: operation mode.
    SetBatteryMode(BatteryMode),
    /// Battery: reserve in % (0–100).
    SetBatteryReserve(f64),
    /// Charger: current limit in A (6 to the hardware maximum).
    SetChargerMaxCurrent(f64),
    /// Charger: start (resume) charging the plugged vehicle.
    ChargerStart,
    /// Charger: stop (pause) charging the plugged vehicle.
    ChargerStop,
    /// HVAC: hold a mode and setpoints permanently (`None` keeps the current setpoint).
    SetHvacHold {
        /// Mode.
        mode: HvacMode,
        /// Heat setpoint, °C (5–30).
        heat_setpoint: Option<f64>,
        /// Cool setpoint, °C (15–35).
        cool_setpoint: Option<f64>,
    },
    /// HVAC: return to the schedule.
    HvacFollowSchedule,
}

impl WorldCommand {
    /// A short name (`start_charging`, ...), for messages and stats.
    pub fn name(&self) -> &'static str {
        match self {
            WorldCommand::StartCharging => "start_charging",
            WorldCommand::StopCharging => "stop_charging",
            WorldCommand::SetChargeAmps(_) => "set_charge_amps",
            WorldCommand::SetChargeLimit(_) => "set_charge_limit",
            WorldCommand::SetBatteryMode(_) => "set_battery_mode",
            WorldCommand::SetBatteryReserve(_) => "set_battery_reserve",
            WorldCommand::SetChargerMaxCurrent(_) => "set_charger_max_current",
            WorldCommand::ChargerStart => "charger_start",
            WorldCommand::ChargerStop => "charger_stop",
            WorldCommand::SetHvacHold { .. } => "set_hvac_hold",
            WorldCommand::HvacFollowSchedule => "hvac_follow_schedule",
        }
    }
}

/// Why a command was refused (at command time) or failed (at effect time).
#[derive(Clone, Debug, PartialEq, thiserror::Error, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "reason")]
pub enum CommandRejected {
    /// No such device, or it belongs to another vendor.
    #[error("unknown device {device} for vendor {vendor}")]
    UnknownDevice {
        /// The device.
        device: DeviceId,
        /// The vendor that asked.
        vendor: String,
    },
    /// The command does not apply to this kind of device.
    #[error("{command} is not supported by {device}")]
    Unsupported {
        /// The device.
        device: DeviceId,
        /// The command's name.
        command: String,
    },
    /// The vehicle is asleep (vendor sims answer e.g. Tesla's 408).
    #[error("device is asleep")]
    Asleep,
    /// The device has no connectivity.
    #[error("device is offline")]
    Offline,
    /// Charging needs a cable.
    #[error("no vehicle is plugged in")]
    NotPluggedIn,
    /// The charger delivers no power.
    #[error("no power at the charger")]
    NoPower,
    /// The vehicle is at its charge limit or the battery is full.
    #[error("already at the charge limit")]
    AtLimit,
    /// The device is already in the requested state (vendor sims say `already_set`).
    #[error("already set")]
    AlreadySet,
    /// A value out of range.
    #[error("invalid value: {0}")]
    InvalidValue(String),
    /// The vehicle is driving.
    #[error("vehicle is driving")]
    Driving,
}

/// The receipt of an accepted command.
///
/// `due_at` and `lost` are ground truth for tests and reports; a vendor simulator must not
/// reveal them (real clouds do not know either).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CommandTicket {
    /// Unique per world, increasing.
    pub id: u64,
    /// The vendor that sent it.
    pub vendor: String,
    /// The device.
    pub device: DeviceId,
    /// The command.
    pub command: WorldCommand,
    /// When it was accepted.
    pub received_at: DateTime<Utc>,
    /// When it takes (or would have taken) effect.
    pub due_at: DateTime<Utc>,
    /// Whether it will never be applied.
    pub lost: bool,
}

/// What became of an accepted command.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum CommandOutcome {
    /// Waiting for its latency.
    Pending {
        /// When it lands.
        due_at: DateTime<Utc>,
    },
    /// Applied (possibly as a no-op because the state already matched).
    Applied {
        /// When.
        at: DateTime<Utc>,
    },
    /// Its effect-time precondition failed.
    Failed {
        /// When.
        at: DateTime<Utc>,
        /// Why.
        reason: CommandRejected,
    },
    /// Lost: never applied.
    Lost,
}

/// Command counters (per vendor, or totals).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandStats {
    /// Every call to `World::command`.
    pub received: u64,
    /// Refused at command time.
    pub rejected: u64,
    /// Accepted (a ticket was issued).
    pub accepted: u64,
    /// Applied after their latency.
    pub applied: u64,
    /// Failed their effect-time precondition.
    pub failed: u64,
    /// Lost (counted when accepted: the loss is decided then).
    pub lost: u64,
}

impl CommandStats {
    /// Accepted commands neither applied, failed nor lost yet.
    pub fn pending(&self) -> u64 {
        self.accepted.saturating_sub(self.applied + self.failed + self.lost)
    }

    pub(crate) fn add(&mut self, other: &CommandStats) {
        self.received += other.received;
        self.rejected += other.rejected;
        self.accepted += other.accepted;
        self.applied += other.applied;
        self.failed += other.failed;
        self.lost += other.lost;
    }
}

/// A vendor's command latency: log-normal around `median_secs` with shape `sigma`, capped
/// at `max_secs`; a `loss_share` of commands is lost entirely.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LatencyProfile {
    /// Median latency in seconds.
    pub median_secs: f64,
    /// Log-normal shape (0 = always the median; 0.8 gives a long tail).
    pub sigma: f64,
    /// Cap in seconds.
    pub max_secs: f64,
    /// Share of commands lost (0–1).
    pub loss_share: f64,
}

impl Default for LatencyProfile {
    /// Median 20 s, sigma 0.8 (5 % of commands take over a minute), capped at 5 minutes,
    /// nothing lost.
    fn default() -> Self {
        Self { median_secs: 20.0, sigma: 0.8, max_secs: 300.0, loss_share: 0.0 }
    }
}

impl LatencyProfile {
    /// A profile that applies every command after exactly `secs` (tests).
    pub fn fixed(secs: f64) -> Self {
        Self { median_secs: secs, sigma: 0.0, max_secs: secs.max(0.0), loss_share: 0.0 }
    }

    /// Draws a latency in seconds, or `None` if the command is lost. Always draws the same
    /// number of values, so the loss share does not shift later latencies.
    pub fn sample(&self, rng: &mut SimRng) -> Option<f64> {
        let lost = rng.unit() < self.loss_share;
        let z = rng.normal();
        let median = if self.median_secs.is_finite() { self.median_secs.max(0.0) } else { 0.0 };
        let sigma = if self.sigma.is_finite() { self.sigma.max(0.0) } else { 0.0 };
        let max = if self.max_secs.is_finite() { self.max_secs.max(0.0) } else { median };
        let secs = (median * (sigma * z).exp()).min(max);
        (!lost).then_some(secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_median_and_tail() {
        let profile = LatencyProfile::default();
        let mut rng = SimRng::new(1);
        let mut xs: Vec<f64> = (0..4001).filter_map(|_| profile.sample(&mut rng)).collect();
        xs.sort_by(f64::total_cmp);
        let median = xs[xs.len() / 2];
        assert!((16.0..24.0).contains(&median), "{median}");
        assert!(xs.iter().any(|x| *x > 60.0));
        assert!(xs.iter().all(|x| *x <= 300.0));
    }

    #[test]
    fn loss_share_one_loses_everything() {
        let profile = LatencyProfile { loss_share: 1.0, ..LatencyProfile::default() };
        let mut rng = SimRng::new(2);
        assert!((0..100).all(|_| profile.sample(&mut rng).is_none()));
        let fixed = LatencyProfile::fixed(7.0);
        assert_eq!(fixed.sample(&mut rng), Some(7.0));
    }
}
