//! When to poll next: pure functions of the observation, the context and the clock reading.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use chrono::{DateTime, Utc};
use oemgate_core::{ContextDelays, ErrorKind, Observation, PollContext, VendorType};
use serde::{Deserialize, Serialize};

/// The planner's settings.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlannerConfig {
    /// The freshness bound per context.
    pub delays: ContextDelays,
    /// The longest a poll is expected to take (request plus store write). It is subtracted
    /// from the bound, because the bound runs from the real-world change to the stored
    /// snapshot, not to the start of the next poll.
    #[serde(with = "oemgate_core::context::humanize")]
    pub poll_latency: Duration,
    /// Up to this share of the interval is taken off at random, so devices that were
    /// scheduled together drift apart instead of polling in lockstep. Jitter only ever makes
    /// a poll earlier, so it never breaks a bound.
    pub jitter: f64,
    /// First retry delay after a failed poll; doubles per consecutive failure.
    #[serde(with = "oemgate_core::context::humanize")]
    pub error_backoff_base: Duration,
    /// Longest retry delay after failures.
    #[serde(with = "oemgate_core::context::humanize")]
    pub error_backoff_max: Duration,
}

impl Default for PlannerConfig {
    fn default() -> Self {
        Self {
            delays: ContextDelays::default(),
            poll_latency: Duration::from_secs(20),
            jitter: 0.1,
            error_backoff_base: Duration::from_secs(15),
            error_backoff_max: Duration::from_secs(20 * 60),
        }
    }
}

/// Which context an observation puts its device in.
///
/// Charging: a vehicle or charger whose charge state says it is charging, or a battery moving
/// energy. Sleeping: the vendor reported the vehicle asleep. Otherwise the default context.
pub fn detect_context(observation: &Observation) -> PollContext {
    if observation.asleep {
        return PollContext::Sleeping;
    }
    let resource = observation.state.to_json();
    let charge_state = &resource["chargeState"];
    let charging = charge_state["isCharging"].as_bool() == Some(true)
        || charge_state["powerDeliveryState"].as_str() == Some("PLUGGED_IN:CHARGING")
        || matches!(charge_state["status"].as_str(), Some("CHARGING" | "DISCHARGING"));
    if charging { PollContext::Charging } else { PollContext::Default }
}

/// Plans poll times.
#[derive(Clone, Debug)]
pub struct Planner {
    config: PlannerConfig,
}

impl Planner {
    /// A planner with these settings.
    pub fn new(config: PlannerConfig) -> Self {
        Self { config }
    }

    /// The settings.
    pub fn config(&self) -> &PlannerConfig {
        &self.config
    }

    /// The interval between the end of one poll and the start of the next in `context`,
    /// before jitter: the bound less the expected poll latency, never below one second.
    /// [`PollContext::ActionPending`]'s delay is a poll interval rather than a freshness
    /// bound, so it is used as it is (still at least one second).
    pub fn interval(&self, context: PollContext) -> Duration {
        let delay = self.config.delays.for_context(context);
        if context == PollContext::ActionPending {
            return delay.max(Duration::from_secs(1));
        }
        delay.saturating_sub(self.config.poll_latency).max(Duration::from_secs(1))
    }

    /// When the next poll is due after a successful poll that ended at `now`.
    ///
    /// `jitter_unit` is a number in [0, 1) (from the caller's RNG, so this stays pure).
    pub fn next_due(
        &self,
        now: DateTime<Utc>,
        context: PollContext,
        jitter_unit: f64,
    ) -> DateTime<Utc> {
        let interval = self.interval(context);
        let jitter = self.config.jitter.clamp(0.0, 0.5) * jitter_unit.clamp(0.0, 1.0);
        now + to_chrono(interval.mul_f64(1.0 - jitter))
    }

    /// When to try again after the `failures`-th consecutive failed poll (1 = first failure).
    ///
    /// A vendor's `retry_after` wins when it is longer than our own backoff. The delay never
    /// exceeds `error_backoff_max`, except when the vendor asked for longer.
    pub fn retry_due(
        &self,
        now: DateTime<Utc>,
        failures: u32,
        kind: ErrorKind,
        retry_after: Option<Duration>,
        jitter_unit: f64,
    ) -> DateTime<Utc> {
        // backon's exponential schedule (base, doubling, capped), without its own jitter:
        // ours comes from the caller's seeded RNG so simulations stay reproducible.
        let mut schedule = ExponentialBuilder::new()
            .with_min_delay(self.config.error_backoff_base)
            .with_max_delay(self.config.error_backoff_max)
            .with_factor(2.0)
            .without_max_times()
            .build();
        let nth = usize::try_from(failures.saturating_sub(1).min(32)).unwrap_or(32);
        let mut delay = schedule.nth(nth).unwrap_or(self.config.error_backoff_max);
        // Errors that will not heal by themselves wait the longest.
        if matches!(kind, ErrorKind::Unauthorized | ErrorKind::NotFound | ErrorKind::Unsupported) {
            delay = self.config.error_backoff_max;
        }
        // Spread retries over the upper half of the delay so failed devices do not return
        // together.
        let delay = delay.mul_f64(0.5 + 0.5 * jitter_unit.clamp(0.0, 1.0));
        let delay = match retry_after {
            Some(after) if after > delay => after,
            _ => delay,
        };
        now + to_chrono(delay)
    }

    /// When a newly registered device gets its first poll: spread over the first
    /// `spread` so a restart with many devices does not stampede the vendor.
    pub fn initial_due(
        &self,
        now: DateTime<Utc>,
        spread: Duration,
        jitter_unit: f64,
    ) -> DateTime<Utc> {
        now + to_chrono(spread.mul_f64(jitter_unit.clamp(0.0, 1.0)))
    }
}

/// The polling heuristic: when a device that was just read successfully is read next.
///
/// The poller asks its policy after every successful read (and after a read that found a
/// vehicle asleep). Retries after failures, quota stretching and vendor limits stay the
/// poller's: a policy only chooses the interval of healthy reads. The default is the
/// adaptive [`Planner`] (context bound less the poll latency); the load test plugs in
/// fixed-interval policies to compare them on the same fleet.
pub trait PollPolicy: Send + Sync + std::fmt::Debug {
    /// A short name for reports ("adaptive", "fixed-2min").
    fn name(&self) -> &str;

    /// When the next poll of a device of `device_type`, now in `context`, is due after a
    /// read that ended at `now`. `jitter_unit` is in [0, 1) from the poller's seeded RNG.
    fn next_due(
        &self,
        now: DateTime<Utc>,
        device_type: VendorType,
        context: PollContext,
        jitter_unit: f64,
    ) -> DateTime<Utc>;

    /// The interval the policy asks for a device of `device_type` in `context`, without
    /// jitter: what the quota and rate plans count as the device's demand. By default the
    /// time to [`Self::next_due`] with no jitter.
    fn interval(&self, device_type: VendorType, context: PollContext) -> Duration {
        let at = DateTime::<Utc>::UNIX_EPOCH;
        (self.next_due(at, device_type, context, 0.0) - at).to_std().unwrap_or_default()
    }
}

/// The adaptive policy: the interval follows the device's context ([`Planner::next_due`]).
impl PollPolicy for Planner {
    fn name(&self) -> &str {
        "adaptive"
    }

    fn next_due(
        &self,
        now: DateTime<Utc>,
        _device_type: VendorType,
        context: PollContext,
        jitter_unit: f64,
    ) -> DateTime<Utc> {
        Planner::next_due(self, now, context, jitter_unit)
    }
}

fn to_chrono(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-01-01T12:00:00Z").unwrap().with_timezone(&Utc)
    }

    #[test]
    fn the_policy_interval_of_the_planner_is_its_context_interval() {
        let planner = Planner::new(PlannerConfig::default());
        for context in PollContext::ALL {
            let policy: &dyn PollPolicy = &planner;
            assert_eq!(policy.interval(VendorType::Meter, context), planner.interval(context));
        }
    }

    #[test]
    fn interval_leaves_room_for_poll_latency() {
        let planner = Planner::new(PlannerConfig::default());
        assert_eq!(planner.interval(PollContext::Default), Duration::from_secs(400));
        assert_eq!(planner.interval(PollContext::Charging), Duration::from_secs(100));
        assert_eq!(planner.interval(PollContext::Sleeping), Duration::from_secs(1180));
        assert_eq!(planner.interval(PollContext::ActionPending), Duration::from_secs(10));
    }

    #[test]
    fn the_planner_as_a_policy_is_the_adaptive_planner() {
        let planner = Planner::new(PlannerConfig::default());
        let policy: &dyn PollPolicy = &planner;
        assert_eq!(policy.name(), "adaptive");
        for ctx in PollContext::ALL {
            for device_type in [VendorType::Vehicle, VendorType::Hvac] {
                assert_eq!(
                    policy.next_due(now(), device_type, ctx, 0.3),
                    planner.next_due(now(), ctx, 0.3)
                );
            }
        }
    }

    #[test]
    fn retry_after_wins_over_shorter_backoff() {
        let planner = Planner::new(PlannerConfig::default());
        let due = planner.retry_due(
            now(),
            1,
            ErrorKind::RateLimited,
            Some(Duration::from_secs(600)),
            0.0,
        );
        assert_eq!(due, now() + chrono::Duration::seconds(600));
        let due = planner.retry_due(now(), 1, ErrorKind::Transient, None, 1.0);
        assert_eq!(due, now() + chrono::Duration::seconds(15));
        let due = planner.retry_due(now(), 30, ErrorKind::Transient, None, 1.0);
        assert_eq!(due, now() + chrono::Duration::seconds(1200));
    }

    proptest! {
        /// A change right after a poll is seen by the next poll's end within the bound; a
        /// pending action is polled at most its interval apart.
        #[test]
        fn next_due_keeps_every_bound(ctx in prop::sample::select(PollContext::ALL.to_vec()), j in 0.0f64..1.0) {
            let planner = Planner::new(PlannerConfig::default());
            let due = planner.next_due(now(), ctx, j);
            if ctx == PollContext::ActionPending {
                let interval = planner.config().delays.action_pending;
                prop_assert!(due <= now() + to_chrono(interval));
                prop_assert!(due > now());
                return Ok(());
            }
            let latency = planner.config().poll_latency;
            let seen_by = due + to_chrono(latency);
            let bound = planner.config().delays.for_context(ctx).max(latency + Duration::from_secs(1));
            prop_assert!(seen_by <= now() + to_chrono(bound));
            prop_assert!(due > now());
        }

        #[test]
        fn backoff_grows_and_is_capped(failures in 1u32..64, j in 0.0f64..1.0) {
            let planner = Planner::new(PlannerConfig::default());
            let a = planner.retry_due(now(), failures, ErrorKind::Transient, None, j);
            let b = planner.retry_due(now(), failures + 1, ErrorKind::Transient, None, j);
            prop_assert!(b >= a);
            prop_assert!(b <= now() + chrono::Duration::seconds(1200));
        }
    }
}
