//! Letting idle cars fall asleep.
//!
//! A Tesla only sleeps after about 15 minutes without data requests: every `vehicle_data`
//! counts as activity. A gateway that reads an idle, online car every few minutes (the
//! default freshness bound is 7) would keep every car awake forever, draining its battery
//! and paying for every read. So the adapter does what TeslaMate does: once a car has been
//! idle for [`SleepPolicy::idle_before_suspend`] (no charging, no driving, nothing changed
//! between full reads), it stops calling `vehicle_data` for [`SleepPolicy::suspend_for`]
//! and answers reads from the vehicles list plus the last full read. The car falls asleep in
//! that window; then the list says `asleep` and reads go on as for any sleeping car. If it
//! is still online when the window ends, one full read is made and, if still idle, the
//! next window starts.
//!
//! Activity resets the idle clock: charging, driving (`shift_state` D/R/N or a speed),
//! a change of plug, charging state, charge limit, current setting, odometer or position
//! between two full reads, and any command or wake-up sent through the adapter (so the
//! executor's confirmation reads are never answered from the cache).
//!
//! Trade-off: while reads are suspended, a change of an idle car that does not wake
//! anything Tesla reports in the list (say, a drive starting and ending inside the window)
//! shows up to `suspend_for` late. The world's plug-in after arriving home (1–10 minutes)
//! is inside the idle period and is seen.
//!
//! The state is per adapter instance and soft: losing it (a restart, another instance
//! taking the car over) costs at most one extra full read.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};
use oemgate_core::{PowerDeliveryState, Vehicle};

use crate::model::VehicleData;

/// How long a car must be idle before reads are suspended, by default.
pub const DEFAULT_IDLE_BEFORE_SUSPEND: Duration = Duration::from_secs(15 * 60);
/// How long reads stay suspended, by default (longer than Tesla's ~15 minutes to sleep).
pub const DEFAULT_SUSPEND_FOR: Duration = Duration::from_secs(21 * 60);

/// When to stop reading an idle car so that it can sleep. See the [module docs](self).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SleepPolicy {
    /// Idle time (between full reads that saw no activity) before reads are suspended.
    pub idle_before_suspend: Duration,
    /// How long reads stay suspended.
    pub suspend_for: Duration,
}

impl Default for SleepPolicy {
    fn default() -> Self {
        Self { idle_before_suspend: DEFAULT_IDLE_BEFORE_SUSPEND, suspend_for: DEFAULT_SUSPEND_FOR }
    }
}

#[derive(Debug)]
struct Track {
    last: Vehicle,
    active_at: DateTime<Utc>,
    suspended_until: Option<DateTime<Utc>>,
}

/// Per-VIN idle tracking.
#[derive(Debug, Default)]
pub(crate) struct SleepTracker {
    policy: Option<SleepPolicy>,
    cars: Mutex<HashMap<String, Track>>,
}

fn add(t: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(d).ok().and_then(|d| t.checked_add_signed(d)).unwrap_or(t)
}

impl SleepTracker {
    pub(crate) fn new(policy: Option<SleepPolicy>) -> Self {
        Self { policy, cars: Mutex::new(HashMap::new()) }
    }

    pub(crate) fn policy(&self) -> Option<SleepPolicy> {
        self.policy
    }

    fn cars(&self) -> std::sync::MutexGuard<'_, HashMap<String, Track>> {
        // Every update is a single insert or field write: a poisoned map is consistent.
        self.cars.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Before reading an online car: the vehicle to answer with when reads are suspended
    /// (the last full read, `lastSeen` moved to `now`), else `None` (read it).
    pub(crate) fn suspended(&self, vin: &str, now: DateTime<Utc>) -> Option<Vehicle> {
        let policy = self.policy?;
        let mut cars = self.cars();
        let track = cars.get_mut(vin)?;
        let answer = |track: &Track| {
            let mut v = track.last.clone();
            v.last_seen = now;
            v.is_reachable = Some(true);
            v
        };
        match track.suspended_until {
            Some(until) if now < until => Some(answer(track)),
            Some(_) => {
                // The window is over and the car is still online: read it once.
                track.suspended_until = None;
                None
            }
            None if now >= add(track.active_at, policy.idle_before_suspend) => {
                track.suspended_until = Some(add(now, policy.suspend_for));
                tracing::debug!(target: "oemgate_tesla", vin, "idle: suspending data reads");
                Some(answer(track))
            }
            None => None,
        }
    }

    /// After a full read.
    pub(crate) fn observed(
        &self,
        vin: &str,
        vehicle: &Vehicle,
        data: &VehicleData,
        now: DateTime<Utc>,
    ) {
        if self.policy.is_none() {
            return;
        }
        let mut cars = self.cars();
        let active = match cars.get(vin) {
            None => true,
            Some(track) => is_active(vehicle, data) || changed(&track.last, vehicle),
        };
        let track = cars.entry(vin.to_owned()).or_insert_with(|| Track {
            last: vehicle.clone(),
            active_at: now,
            suspended_until: None,
        });
        track.last = vehicle.clone();
        if active {
            track.active_at = now;
        }
    }

    /// The car is asleep or offline: the next online read starts afresh.
    pub(crate) fn not_online(&self, vin: &str) {
        if self.policy.is_some() {
            self.cars().remove(vin);
        }
    }

    /// A command or wake-up was sent: read the car for real from now on.
    pub(crate) fn activity(&self, vin: &str, now: DateTime<Utc>) {
        if let Some(track) = self.cars().get_mut(vin) {
            track.active_at = now;
            track.suspended_until = None;
        }
    }
}

fn is_active(vehicle: &Vehicle, data: &VehicleData) -> bool {
    let charging =
        vehicle.charge_state.power_delivery_state == PowerDeliveryState::PluggedInCharging;
    let driving = data.drive_state.as_ref().is_some_and(|d| {
        let shift = d.shift_state.as_deref().map(str::trim).unwrap_or_default();
        matches!(shift, "D" | "R" | "N") || d.speed.is_some_and(|s| s > 0.0)
    });
    charging || driving
}

fn changed(before: &Vehicle, now: &Vehicle) -> bool {
    let (a, b) = (&before.charge_state, &now.charge_state);
    let moved = |x: Option<f64>, y: Option<f64>, eps: f64| match (x, y) {
        (Some(x), Some(y)) => (x - y).abs() > eps,
        (None, None) => false,
        _ => true,
    };
    a.power_delivery_state != b.power_delivery_state
        || a.is_plugged_in != b.is_plugged_in
        || moved(a.charge_limit, b.charge_limit, 0.0)
        || moved(a.max_current, b.max_current, 0.0)
        || moved(before.odometer.distance, now.odometer.distance, 0.05)
        || moved(before.location.latitude, now.location.latitude, 1e-5)
        || moved(before.location.longitude, now.location.longitude, 1e-5)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::map::vehicle_from_data;
    use crate::model::Envelope;
    use chrono::TimeZone;
    use oemgate_core::{DeviceRef, VendorType};

    fn data(raw: &str) -> VehicleData {
        serde_json::from_str::<Envelope<VehicleData>>(raw).unwrap().response.unwrap()
    }

    fn device() -> DeviceRef {
        DeviceRef {
            id: "v".into(),
            user_id: "u".into(),
            device_type: VendorType::Vehicle,
            vendor_id: "VIN".into(),
            site_id: None,
        }
    }

    #[test]
    fn idle_cars_are_suspended_then_read_again() {
        let t0 = Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap();
        let at = |min: i64| t0 + chrono::Duration::minutes(min);
        let tracker = SleepTracker::new(Some(SleepPolicy::default()));
        let stopped = data(include_str!("../tests/fixtures/vehicle_data_reference.json"));
        let v = vehicle_from_data(&device(), &stopped, None, t0);
        assert!(tracker.suspended("VIN", t0).is_none(), "unknown car: read it");
        tracker.observed("VIN", &v, &stopped, t0);
        tracker.observed("VIN", &v, &stopped, at(7));
        assert!(tracker.suspended("VIN", at(14)).is_none());
        let cached = tracker.suspended("VIN", at(15)).expect("idle for 15 minutes");
        assert_eq!(cached.last_seen, at(15));
        assert_eq!(cached.charge_state, v.charge_state);
        assert!(tracker.suspended("VIN", at(35)).is_some(), "still inside the 21 minutes");
        assert!(tracker.suspended("VIN", at(36)).is_none(), "window over: one full read");
        tracker.observed("VIN", &v, &stopped, at(36));
        assert!(tracker.suspended("VIN", at(38)).is_some(), "still idle: next window");
        // A command makes the car active again.
        tracker.activity("VIN", at(40));
        assert!(tracker.suspended("VIN", at(41)).is_none());
        // A charging car is never suspended.
        let charging = data(include_str!("../tests/fixtures/vehicle_data_charging.json"));
        let c = vehicle_from_data(&device(), &charging, None, at(41));
        for m in [41, 60, 80] {
            tracker.observed("VIN", &c, &charging, at(m));
            assert!(tracker.suspended("VIN", at(m + 2)).is_none());
        }
        // Asleep: forgotten.
        tracker.not_online("VIN");
        assert!(tracker.suspended("VIN", at(200)).is_none());
        // Disabled: never suspends.
        let off = SleepTracker::new(None);
        off.observed("VIN", &v, &stopped, t0);
        assert!(off.suspended("VIN", at(600)).is_none());
    }
}
