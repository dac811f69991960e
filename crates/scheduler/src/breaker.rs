//! A circuit breaker per vendor: after repeated server-side failures, stop sending requests
//! and probe now and then, so a vendor outage costs one request per probe interval instead of
//! one per device.
//!
//! Pure: every method takes the current time; the poller owns one breaker per vendor.

use std::time::Duration;

use chrono::{DateTime, Utc};
use oemgate_core::ErrorKind;
use serde::{Deserialize, Serialize};

/// Breaker settings.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BreakerConfig {
    /// Consecutive server-side failures (Transient) that open the breaker.
    pub failure_threshold: u32,
    /// How long the breaker stays open before letting one probe through.
    #[serde(with = "oemgate_core::context::humanize")]
    pub probe_interval: Duration,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self { failure_threshold: 5, probe_interval: Duration::from_secs(60) }
    }
}

/// Where the breaker is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    /// Requests flow.
    Closed,
    /// Requests are held back until the probe time.
    Open,
    /// One probe is in flight; its outcome closes or reopens the breaker.
    HalfOpen,
}

impl BreakerState {
    /// A number for the breaker-state gauge (0 closed, 1 half-open, 2 open).
    pub fn gauge(self) -> i64 {
        match self {
            BreakerState::Closed => 0,
            BreakerState::HalfOpen => 1,
            BreakerState::Open => 2,
        }
    }
}

/// What the breaker says about sending a request now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Permit {
    /// Go ahead.
    Go,
    /// Go ahead: this request is the half-open probe.
    Probe,
    /// Hold back until this time.
    NotBefore(DateTime<Utc>),
}

/// The breaker of one vendor.
#[derive(Clone, Debug)]
pub struct Breaker {
    config: BreakerConfig,
    state: BreakerState,
    consecutive_failures: u32,
    open_until: DateTime<Utc>,
}

impl Breaker {
    /// A closed breaker.
    pub fn new(config: BreakerConfig) -> Self {
        Self {
            config,
            state: BreakerState::Closed,
            consecutive_failures: 0,
            open_until: DateTime::<Utc>::MIN_UTC,
        }
    }

    /// The current state.
    pub fn state(&self) -> BreakerState {
        self.state
    }

    /// Whether a request may go out at `now`. An open breaker whose probe time has come lets
    /// exactly one request through and turns half-open; while the probe is out, others wait.
    pub fn permit(&mut self, now: DateTime<Utc>) -> Permit {
        match self.state {
            BreakerState::Closed => Permit::Go,
            BreakerState::Open if now >= self.open_until => {
                self.state = BreakerState::HalfOpen;
                // If the probe never reports back (its instance died), allow another later.
                self.open_until = now + probe(self.config.probe_interval);
                Permit::Probe
            }
            BreakerState::Open => Permit::NotBefore(self.open_until),
            BreakerState::HalfOpen if now >= self.open_until => {
                self.open_until = now + probe(self.config.probe_interval);
                Permit::Probe
            }
            BreakerState::HalfOpen => Permit::NotBefore(self.open_until),
        }
    }

    /// Until when side requests that must not become the probe (token refreshes) should
    /// wait: `None` while closed or once the probe time has come.
    pub fn blocked_until(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        (self.state != BreakerState::Closed && now < self.open_until).then_some(self.open_until)
    }

    /// Records a request's outcome: `None` for success, else the error kind.
    /// Only server-side trouble (Transient) counts towards opening; a rate limit, a device
    /// that sleeps or a bad credential says nothing about the vendor's health.
    pub fn record(&mut self, now: DateTime<Utc>, outcome: Option<ErrorKind>) {
        match outcome {
            Some(ErrorKind::Transient) => {
                self.consecutive_failures = self.consecutive_failures.saturating_add(1);
                let trip = self.state == BreakerState::HalfOpen
                    || self.consecutive_failures >= self.config.failure_threshold.max(1);
                if trip {
                    self.state = BreakerState::Open;
                    self.open_until = now + probe(self.config.probe_interval);
                }
            }
            Some(ErrorKind::Protocol) => {}
            _ => {
                self.consecutive_failures = 0;
                self.state = BreakerState::Closed;
            }
        }
    }
}

fn probe(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn t(secs: i64) -> DateTime<Utc> {
        DateTime::<Utc>::UNIX_EPOCH + chrono::Duration::seconds(1_800_000_000 + secs)
    }

    #[test]
    fn opens_after_threshold_probes_and_closes_on_success() {
        let mut b = Breaker::new(BreakerConfig {
            failure_threshold: 3,
            probe_interval: Duration::from_secs(60),
        });
        for i in 0..3 {
            assert_eq!(b.permit(t(i)), Permit::Go);
            b.record(t(i), Some(ErrorKind::Transient));
        }
        assert_eq!(b.state(), BreakerState::Open);
        assert_eq!(b.permit(t(10)), Permit::NotBefore(t(62)));
        assert_eq!(b.permit(t(62)), Permit::Probe);
        assert_eq!(b.permit(t(63)), Permit::NotBefore(t(122)), "one probe at a time");
        b.record(t(64), Some(ErrorKind::Transient));
        assert_eq!(b.state(), BreakerState::Open, "a failed probe reopens");
        assert_eq!(b.permit(t(124)), Permit::Probe);
        b.record(t(125), None);
        assert_eq!(b.state(), BreakerState::Closed);
        assert_eq!(b.permit(t(126)), Permit::Go);
    }

    #[test]
    fn rate_limits_and_device_errors_do_not_open_it() {
        let mut b = Breaker::new(BreakerConfig::default());
        for i in 0..20 {
            b.record(
                t(i),
                Some(if i % 2 == 0 { ErrorKind::RateLimited } else { ErrorKind::DeviceAsleep }),
            );
        }
        assert_eq!(b.state(), BreakerState::Closed);
    }

    proptest! {
        /// However failures and time interleave, an open breaker lets at most one request
        /// through per probe interval.
        #[test]
        fn at_most_one_request_per_probe_interval_while_failing(steps in 1usize..400, gap in 1i64..30) {
            let mut b = Breaker::new(BreakerConfig { failure_threshold: 2, probe_interval: Duration::from_secs(60) });
            let mut sent = Vec::new();
            for i in 0..steps as i64 {
                let now = t(i * gap);
                if !matches!(b.permit(now), Permit::NotBefore(_)) {
                    sent.push(i * gap);
                    b.record(now, Some(ErrorKind::Transient));
                }
            }
            // After the two that open it, requests are at least one interval apart.
            for pair in sent.iter().skip(1).collect::<Vec<_>>().windows(2) {
                prop_assert!(*pair[1] - *pair[0] >= 60 || sent.len() <= 2);
            }
        }
    }
}
