//! Home battery: how much it charges or discharges for an operation mode.
//!
//! Sign convention: battery power is **positive while charging** (power flows into the
//! battery, like a load) and negative while discharging. Charging and discharging are
//! loss-free in this model (round-trip efficiency is deliberately left out).

use serde::{Deserialize, Serialize};

/// Below this distance from a bound the battery counts as at the bound (absorbs float
/// rounding at the exact instant a bound is reached).
pub const SOC_EPS: f64 = 1e-6;

/// A home battery's operation mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum BatteryMode {
    /// Self-consumption: charge from PV surplus, discharge to cover the household.
    SelfReliance,
    /// Charge at the maximum rate (from the grid if PV is not enough) until full.
    ImportFocus,
    /// Discharge at the maximum rate (exporting what the house does not use) down to the
    /// reserve.
    ExportFocus,
    /// Like [`BatteryMode::SelfReliance`], except inside the configured cheap window, where
    /// it charges from the grid at the maximum rate.
    TimeOfUse,
    /// Backup: keep the charge for outages. Charges from PV surplus only, never discharges.
    Backup,
    /// Hold: neither charge nor discharge.
    Idle,
}

impl BatteryMode {
    /// The Enode-style spelling (`SELF_RELIANCE`, ...); `Backup` has no Enode counterpart
    /// and is spelled `BACKUP`.
    pub fn as_str(self) -> &'static str {
        match self {
            BatteryMode::SelfReliance => "SELF_RELIANCE",
            BatteryMode::ImportFocus => "IMPORT_FOCUS",
            BatteryMode::ExportFocus => "EXPORT_FOCUS",
            BatteryMode::TimeOfUse => "TIME_OF_USE",
            BatteryMode::Backup => "BACKUP",
            BatteryMode::Idle => "IDLE",
        }
    }
}

impl From<oemgate_core::BatteryOperationMode> for BatteryMode {
    fn from(mode: oemgate_core::BatteryOperationMode) -> Self {
        use oemgate_core::BatteryOperationMode as M;
        match mode {
            M::ImportFocus => BatteryMode::ImportFocus,
            M::ExportFocus => BatteryMode::ExportFocus,
            M::TimeOfUse => BatteryMode::TimeOfUse,
            M::SelfReliance => BatteryMode::SelfReliance,
            M::Idle => BatteryMode::Idle,
        }
    }
}

impl From<BatteryMode> for oemgate_core::BatteryConfigOperationMode {
    fn from(mode: BatteryMode) -> Self {
        use oemgate_core::BatteryConfigOperationMode as M;
        match mode {
            BatteryMode::ImportFocus => M::ImportFocus,
            BatteryMode::ExportFocus => M::ExportFocus,
            BatteryMode::TimeOfUse => M::TimeOfUse,
            BatteryMode::SelfReliance => M::SelfReliance,
            BatteryMode::Idle => M::Idle,
            BatteryMode::Backup => M::Unknown,
        }
    }
}

/// The state of one home battery. Fields are public so tests can set them through
/// `World::update_battery`.
#[derive(Clone, Debug, PartialEq)]
pub struct BatteryModel {
    /// Usable capacity in kWh.
    pub capacity_kwh: f64,
    /// State of charge in %.
    pub soc_pct: f64,
    /// Reserve in %: never discharged below this.
    pub reserve_pct: f64,
    /// Operation mode.
    pub mode: BatteryMode,
    /// Maximum charge power in W.
    pub max_charge_w: f64,
    /// Maximum discharge power in W.
    pub max_discharge_w: f64,
    /// Local hours `[start, end)` of the cheap window for [`BatteryMode::TimeOfUse`]
    /// (may wrap midnight, e.g. `(22.0, 6.0)`).
    pub cheap_window: (f64, f64),
    /// Current power in W (positive charging).
    pub power_w: f64,
    /// Energy charged so far in kWh.
    pub charged_kwh: f64,
    /// Energy discharged so far in kWh.
    pub discharged_kwh: f64,
    /// Cloud connectivity of the device.
    pub online: bool,
}

impl BatteryModel {
    /// Whether local hour `h` is inside the cheap window.
    pub fn in_cheap_window(&self, local_hour: f64) -> bool {
        in_window(local_hour, self.cheap_window)
    }

    /// Integrates `secs` seconds at the current power, keeping the state of charge within
    /// `[0, 100]`.
    pub fn integrate(&mut self, secs: f64) {
        if secs <= 0.0 || self.capacity_kwh <= 0.0 {
            return;
        }
        let kwh = self.power_w * secs / 3_600_000.0;
        self.soc_pct = (self.soc_pct + kwh / self.capacity_kwh * 100.0).clamp(0.0, 100.0);
        if kwh > 0.0 {
            self.charged_kwh += kwh;
        } else {
            self.discharged_kwh -= kwh;
        }
    }

    /// Seconds until the current power drives the state of charge to a bound (full when
    /// charging, the reserve when discharging); `None` when idle or not approaching one.
    pub fn secs_to_bound(&self) -> Option<f64> {
        secs_to_bound(self.soc_pct, self.reserve_pct, self.capacity_kwh, self.power_w)
    }
}

/// Whether `h` lies in `[start, end)`, wrapping midnight when `start > end`.
pub fn in_window(h: f64, (start, end): (f64, f64)) -> bool {
    let h = h.rem_euclid(24.0);
    if start <= end { h >= start && h < end } else { h >= start || h < end }
}

/// The inputs of [`battery_power_w`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BatteryInputs {
    /// Operation mode.
    pub mode: BatteryMode,
    /// State of charge in %.
    pub soc_pct: f64,
    /// Reserve in %.
    pub reserve_pct: f64,
    /// Maximum charge power in W.
    pub max_charge_w: f64,
    /// Maximum discharge power in W.
    pub max_discharge_w: f64,
    /// PV production minus household consumption in W (positive: surplus).
    pub surplus_w: f64,
    /// Whether a time-of-use cheap window is active.
    pub cheap_window: bool,
}

/// The battery's power in W (positive charging) for a mode and situation.
///
/// Invariants (tested): never charges when full, never discharges at or below the reserve,
/// never exceeds its power limits, self-consumption never charges from the grid nor
/// discharges into it.
pub fn battery_power_w(i: BatteryInputs) -> f64 {
    let can_charge = i.soc_pct < 100.0 - SOC_EPS;
    let can_discharge = i.soc_pct > i.reserve_pct.clamp(0.0, 100.0) + SOC_EPS;
    let max_c = i.max_charge_w.max(0.0);
    let max_d = i.max_discharge_w.max(0.0);
    let self_consume = || {
        if i.surplus_w > 0.0 {
            if can_charge { i.surplus_w.min(max_c) } else { 0.0 }
        } else if can_discharge {
            -(-i.surplus_w).min(max_d)
        } else {
            0.0
        }
    };
    match i.mode {
        BatteryMode::SelfReliance => self_consume(),
        BatteryMode::TimeOfUse if i.cheap_window => {
            if can_charge {
                max_c
            } else {
                0.0
            }
        }
        BatteryMode::TimeOfUse => self_consume(),
        BatteryMode::ImportFocus => {
            if can_charge {
                max_c
            } else {
                0.0
            }
        }
        BatteryMode::ExportFocus => {
            if can_discharge {
                -max_d
            } else {
                0.0
            }
        }
        BatteryMode::Backup => {
            if can_charge && i.surplus_w > 0.0 {
                i.surplus_w.min(max_c)
            } else {
                0.0
            }
        }
        BatteryMode::Idle => 0.0,
    }
}

/// Seconds until `power_w` drives `soc_pct` to 100 % (charging) or to the reserve
/// (discharging); `None` if idle or already there.
pub fn secs_to_bound(
    soc_pct: f64,
    reserve_pct: f64,
    capacity_kwh: f64,
    power_w: f64,
) -> Option<f64> {
    if capacity_kwh <= 0.0 || power_w == 0.0 || !power_w.is_finite() {
        return None;
    }
    let target = if power_w > 0.0 { 100.0 } else { reserve_pct.clamp(0.0, 100.0).min(soc_pct) };
    let delta_kwh = (target - soc_pct) / 100.0 * capacity_kwh;
    let secs = delta_kwh / (power_w / 1000.0) * 3600.0;
    (secs > 1e-6).then_some(secs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn inputs(mode: BatteryMode, soc: f64, surplus: f64) -> BatteryInputs {
        BatteryInputs {
            mode,
            soc_pct: soc,
            reserve_pct: 20.0,
            max_charge_w: 5000.0,
            max_discharge_w: 5000.0,
            surplus_w: surplus,
            cheap_window: false,
        }
    }

    #[test]
    fn modes_behave() {
        assert_eq!(battery_power_w(inputs(BatteryMode::SelfReliance, 50.0, 1200.0)), 1200.0);
        assert_eq!(battery_power_w(inputs(BatteryMode::SelfReliance, 50.0, -800.0)), -800.0);
        assert_eq!(battery_power_w(inputs(BatteryMode::SelfReliance, 20.0, -800.0)), 0.0);
        assert_eq!(battery_power_w(inputs(BatteryMode::SelfReliance, 100.0, 800.0)), 0.0);
        assert_eq!(battery_power_w(inputs(BatteryMode::ImportFocus, 50.0, -800.0)), 5000.0);
        assert_eq!(battery_power_w(inputs(BatteryMode::ExportFocus, 50.0, 800.0)), -5000.0);
        assert_eq!(battery_power_w(inputs(BatteryMode::Idle, 50.0, 800.0)), 0.0);
        assert_eq!(battery_power_w(inputs(BatteryMode::Backup, 50.0, -800.0)), 0.0);
        let mut tou = inputs(BatteryMode::TimeOfUse, 50.0, -800.0);
        assert_eq!(battery_power_w(tou), -800.0);
        tou.cheap_window = true;
        assert_eq!(battery_power_w(tou), 5000.0);
    }

    #[test]
    fn windows_wrap_midnight() {
        assert!(in_window(23.0, (22.0, 6.0)));
        assert!(in_window(2.0, (22.0, 6.0)));
        assert!(!in_window(12.0, (22.0, 6.0)));
        assert!(in_window(3.0, (1.0, 5.0)));
    }

    fn any_mode() -> impl Strategy<Value = BatteryMode> {
        prop_oneof![
            Just(BatteryMode::SelfReliance),
            Just(BatteryMode::ImportFocus),
            Just(BatteryMode::ExportFocus),
            Just(BatteryMode::TimeOfUse),
            Just(BatteryMode::Backup),
            Just(BatteryMode::Idle),
        ]
    }

    proptest! {
        /// Integrating any sequence of modes and situations keeps the state of charge in
        /// [0, 100] and never takes it below the reserve by discharging.
        #[test]
        fn soc_stays_in_bounds(
            start in 0.0f64..=100.0,
            reserve in 0.0f64..=100.0,
            steps in proptest::collection::vec((any_mode(), -8000.0f64..8000.0, any::<bool>(), 1.0f64..900.0), 1..60),
        ) {
            let mut b = BatteryModel {
                capacity_kwh: 10.0, soc_pct: start, reserve_pct: reserve, mode: BatteryMode::Idle,
                max_charge_w: 5000.0, max_discharge_w: 5000.0, cheap_window: (1.0, 5.0),
                power_w: 0.0, charged_kwh: 0.0, discharged_kwh: 0.0, online: true,
            };
            for (mode, surplus, cheap, secs) in steps {
                let before = b.soc_pct;
                b.power_w = battery_power_w(BatteryInputs {
                    mode, soc_pct: b.soc_pct, reserve_pct: b.reserve_pct,
                    max_charge_w: b.max_charge_w, max_discharge_w: b.max_discharge_w,
                    surplus_w: surplus, cheap_window: cheap,
                });
                // The world splits steps at the instant a bound is reached; do the same.
                let secs = b.secs_to_bound().map_or(secs, |s| s.min(secs));
                b.integrate(secs);
                prop_assert!((0.0..=100.0).contains(&b.soc_pct));
                if b.power_w < 0.0 {
                    prop_assert!(b.soc_pct >= reserve.min(before) - 1e-6);
                }
                if mode == BatteryMode::SelfReliance {
                    // Never from or to the grid: |power| <= |surplus| and same sign.
                    prop_assert!(b.power_w * surplus >= 0.0);
                    prop_assert!(b.power_w.abs() <= surplus.abs() + 1e-9);
                }
            }
        }
    }
}
