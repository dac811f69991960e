//! A vendor's recent error rate (pure): the share of failed vendor calls over a rolling
//! window, for the API's vendor health (`ELEVATED_ERROR_RATE`).
//!
//! The window is [`WINDOW_SECS`] long, kept as [`BUCKETS`] per-interval counters so memory
//! stays constant however many calls go out. The rate counts as elevated when at least
//! [`MIN_CALLS`] calls fall in the window and more than [`ELEVATED_SHARE`] of them failed:
//! the minimum keeps one failed call of a quiet vendor from flagging it.
//!
//! What counts as a failure: server-side trouble (`Transient`) and answers we could not
//! understand (`Protocol`). A rate-limit answer is not counted at all (it is our pace, not the
//! vendor's health); every other outcome (success, a sleeping or offline device, a bad
//! credential) shows the vendor answering properly and counts as a good call.

use chrono::{DateTime, Utc};
use oemgate_core::ErrorKind;

/// Length of the rolling window, in seconds.
pub const WINDOW_SECS: i64 = 600;
/// Number of buckets the window is kept in.
pub const BUCKETS: usize = 10;
/// Calls needed in the window before the rate can count as elevated.
pub const MIN_CALLS: u64 = 10;
/// Share of failed calls above which the rate is elevated.
pub const ELEVATED_SHARE: f64 = 0.2;

const BUCKET_SECS: i64 = WINDOW_SECS / BUCKETS as i64;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Bucket {
    /// The bucket's index (seconds since the epoch / bucket length); stale when older than
    /// the window.
    index: i64,
    calls: u64,
    failed: u64,
}

/// Failed and total calls over the last [`WINDOW_SECS`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ErrorRate {
    buckets: [Bucket; BUCKETS],
}

fn bucket_index(now: DateTime<Utc>) -> i64 {
    now.timestamp().div_euclid(BUCKET_SECS)
}

impl ErrorRate {
    /// An empty window.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records one call's outcome at `now`: `None` for success, else the error kind.
    pub fn record(&mut self, now: DateTime<Utc>, outcome: Option<ErrorKind>) {
        let failed = match outcome {
            Some(ErrorKind::RateLimited) => return,
            Some(ErrorKind::Transient | ErrorKind::Protocol) => true,
            _ => false,
        };
        let index = bucket_index(now);
        let slot = &mut self.buckets[index.rem_euclid(BUCKETS as i64) as usize];
        if slot.index != index {
            *slot = Bucket { index, calls: 0, failed: 0 };
        }
        slot.calls += 1;
        slot.failed += u64::from(failed);
    }

    /// `(failed, calls)` in the window ending at `now`.
    pub fn counts(&self, now: DateTime<Utc>) -> (u64, u64) {
        let current = bucket_index(now);
        self.buckets
            .iter()
            .filter(|b| b.calls > 0 && b.index <= current && current - b.index < BUCKETS as i64)
            .fold((0, 0), |(f, c), b| (f + b.failed, c + b.calls))
    }

    /// Whether the failed share in the window ending at `now` is elevated.
    pub fn elevated(&self, now: DateTime<Utc>) -> bool {
        let (failed, calls) = self.counts(now);
        calls >= MIN_CALLS && failed as f64 > ELEVATED_SHARE * calls as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(secs: i64) -> DateTime<Utc> {
        DateTime::<Utc>::UNIX_EPOCH + chrono::Duration::seconds(1_800_000_000 + secs)
    }

    #[test]
    fn few_calls_are_never_elevated() {
        let mut rate = ErrorRate::new();
        for i in 0..(MIN_CALLS as i64 - 1) {
            rate.record(t(i), Some(ErrorKind::Transient));
        }
        assert_eq!(rate.counts(t(10)), (MIN_CALLS - 1, MIN_CALLS - 1));
        assert!(!rate.elevated(t(10)));
    }

    #[test]
    fn above_the_share_is_elevated_at_or_below_is_not() {
        let mut rate = ErrorRate::new();
        for i in 0..8 {
            rate.record(t(i), None);
        }
        rate.record(t(8), Some(ErrorKind::Transient));
        rate.record(t(9), Some(ErrorKind::Protocol));
        // 2 of 10 = 20 %: not above the threshold.
        assert!(!rate.elevated(t(10)));
        rate.record(t(10), Some(ErrorKind::Transient));
        // 3 of 11.
        assert!(rate.elevated(t(11)));
    }

    #[test]
    fn rate_limits_are_ignored_and_other_errors_are_good_calls() {
        let mut rate = ErrorRate::new();
        for i in 0..20 {
            rate.record(t(i), Some(ErrorKind::RateLimited));
        }
        assert_eq!(rate.counts(t(20)), (0, 0));
        for i in 0..20 {
            rate.record(t(i), Some(ErrorKind::DeviceAsleep));
        }
        assert_eq!(rate.counts(t(20)), (0, 20));
        assert!(!rate.elevated(t(20)));
    }

    #[test]
    fn failures_age_out_of_the_window() {
        let mut rate = ErrorRate::new();
        for i in 0..20 {
            rate.record(t(i), Some(ErrorKind::Transient));
        }
        assert!(rate.elevated(t(30)));
        assert!(rate.elevated(t(WINDOW_SECS - BUCKET_SECS)));
        // Once every bucket holding them is older than the window, they are gone.
        assert_eq!(rate.counts(t(WINDOW_SECS + BUCKET_SECS)), (0, 0));
        assert!(!rate.elevated(t(WINDOW_SECS + BUCKET_SECS)));
        // A reused slot starts afresh.
        rate.record(t(WINDOW_SECS * 3), None);
        assert_eq!(rate.counts(t(WINDOW_SECS * 3)), (0, 1));
    }
}
