//! The heuristics compared: the adaptive planner (the gateway's default) and two fixed-interval
//! baselines, behind the scheduler's [`PollPolicy`] trait.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use oemgate_core::{PollContext, VendorType};
use oemgate_scheduler::{Planner, PlannerConfig, PollPolicy};
use serde::{Deserialize, Serialize};

/// A polling heuristic the load test runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Heuristic {
    /// The adaptive planner: the interval follows the device's context bound.
    #[serde(rename = "adaptive")]
    Adaptive,
    /// Every device every 2 minutes (the shortest bound).
    #[serde(rename = "fixed-2min")]
    Fixed2Min,
    /// A fixed interval per device class ([`FixedPolicy::per_class`]).
    #[serde(rename = "fixed-per-class")]
    FixedPerClass,
}

impl Heuristic {
    /// Every heuristic, in report order.
    pub const ALL: [Heuristic; 3] =
        [Heuristic::Adaptive, Heuristic::Fixed2Min, Heuristic::FixedPerClass];

    /// The name used in reports and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Heuristic::Adaptive => "adaptive",
            Heuristic::Fixed2Min => "fixed-2min",
            Heuristic::FixedPerClass => "fixed-per-class",
        }
    }

    /// Parses [`Heuristic::name`].
    pub fn parse(name: &str) -> Option<Heuristic> {
        Heuristic::ALL.into_iter().find(|h| h.name() == name)
    }

    /// The policy for the poller.
    pub fn policy(self, planner: PlannerConfig) -> Arc<dyn PollPolicy> {
        let action_pending = planner.delays.action_pending;
        match self {
            Heuristic::Adaptive => Arc::new(Planner::new(planner)),
            Heuristic::Fixed2Min => {
                Arc::new(FixedPolicy::every(Duration::from_secs(120), action_pending))
            }
            Heuristic::FixedPerClass => Arc::new(FixedPolicy::per_class(action_pending)),
        }
    }
}

/// A fixed interval per device class, whatever the device does.
///
/// The one exception is a pending action: the executor needs the device read on the
/// action-pending interval to confirm its command, and that is not a freshness heuristic, so
/// every policy keeps it.
#[derive(Clone, Debug, PartialEq)]
pub struct FixedPolicy {
    name: &'static str,
    /// Interval per class: vehicle, charger, battery, HVAC, meter, inverter.
    intervals: [Duration; 6],
    action_pending: Duration,
}

impl FixedPolicy {
    /// `interval` for every device.
    pub fn every(interval: Duration, action_pending: Duration) -> Self {
        Self { name: "fixed-2min", intervals: [interval; 6], action_pending }
    }

    /// Vehicles, chargers and batteries every 2 minutes (their charging bound: they charge or
    /// move energy for hours every day, and a fixed policy cannot know when); HVAC units,
    /// meters and inverters every 7 minutes (the default bound).
    pub fn per_class(action_pending: Duration) -> Self {
        let two = Duration::from_secs(120);
        let seven = Duration::from_secs(420);
        Self {
            name: "fixed-per-class",
            intervals: [two, two, two, seven, seven, seven],
            action_pending,
        }
    }

    /// The interval of a device class.
    pub fn interval(&self, device_type: VendorType) -> Duration {
        let i = match device_type {
            VendorType::Vehicle => 0,
            VendorType::Charger => 1,
            VendorType::Battery => 2,
            VendorType::Hvac => 3,
            VendorType::Meter => 4,
            VendorType::Inverter => 5,
        };
        self.intervals[i]
    }
}

impl PollPolicy for FixedPolicy {
    fn name(&self) -> &str {
        self.name
    }

    fn next_due(
        &self,
        now: DateTime<Utc>,
        device_type: VendorType,
        context: PollContext,
        _jitter_unit: f64,
    ) -> DateTime<Utc> {
        let interval = if context == PollContext::ActionPending {
            self.action_pending
        } else {
            self.interval(device_type)
        };
        now + chrono::Duration::from_std(interval).unwrap_or(chrono::Duration::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        "2026-06-01T00:00:00Z".parse().unwrap()
    }

    #[test]
    fn fixed_policies_ignore_the_context_except_a_pending_action() {
        let p = FixedPolicy::per_class(Duration::from_secs(10));
        let s = |d: DateTime<Utc>| (d - now()).num_seconds();
        assert_eq!(s(p.next_due(now(), VendorType::Vehicle, PollContext::Sleeping, 0.5)), 120);
        assert_eq!(s(p.next_due(now(), VendorType::Hvac, PollContext::Charging, 0.5)), 420);
        assert_eq!(s(p.next_due(now(), VendorType::Meter, PollContext::ActionPending, 0.5)), 10);
        let two = FixedPolicy::every(Duration::from_secs(120), Duration::from_secs(10));
        assert_eq!(s(two.next_due(now(), VendorType::Inverter, PollContext::Default, 0.9)), 120);
        // What the quota and rate plans count as demand is the policy's own interval.
        assert_eq!(
            PollPolicy::interval(&p, VendorType::Vehicle, PollContext::Sleeping),
            Duration::from_secs(120)
        );
        assert_eq!(
            PollPolicy::interval(&p, VendorType::Meter, PollContext::ActionPending),
            Duration::from_secs(10)
        );
    }

    #[test]
    fn heuristics_round_trip_their_names() {
        for h in Heuristic::ALL {
            assert_eq!(Heuristic::parse(h.name()), Some(h));
            assert_eq!(h.policy(PlannerConfig::default()).name(), h.name());
        }
        assert_eq!(Heuristic::parse("nope"), None);
    }
}
