//! What the gateway did, as its poller reported it: every finished poll per device and the
//! scheduling lag of every claim. Compact (24 bytes a poll), since a 10,000-device day on a
//! 2-minute policy is seven million polls.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use oemgate_core::{ErrorKind, PollContext};
use oemgate_scheduler::poller::{PollObserver, PollOutcome, PollReport};

/// One finished poll of a device.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Poll {
    /// When the poll finished (clock milliseconds since the epoch).
    pub finished_ms: i64,
    /// When the stored read was taken (ms), if the poll stored one.
    pub observed_ms: Option<i64>,
    /// The context the stored read put the device in.
    pub context: Option<PollContext>,
    /// The error, if the vendor read failed.
    pub failed: Option<ErrorKind>,
}

impl Poll {
    /// The context the gateway knew the device in after this poll, if the poll told it:
    /// a stored read's context, or sleeping when the vendor said the car is asleep.
    pub fn known_context(&self) -> Option<PollContext> {
        match (self.context, self.failed) {
            (Some(context), _) => Some(context),
            (None, Some(ErrorKind::DeviceAsleep)) => Some(PollContext::Sleeping),
            (None, Some(_)) => Some(PollContext::Default),
            _ => None,
        }
    }
}

/// Deferred claims counted by (vendor, reason).
pub type Deferrals = BTreeMap<(String, &'static str), u64>;

/// Every poll per device id, in order, and the lag of every claim.
#[derive(Debug, Default)]
pub struct Journal {
    polls: Mutex<HashMap<String, Vec<Poll>>>,
    lags_ms: Mutex<Vec<u32>>,
    /// Deferred claims by (vendor, reason).
    deferred: Mutex<Deferrals>,
    /// Claims of devices due before this instant (ms) are not counted in the lag: they were
    /// due during setup (linking may advance the clock while it waits out vendor limits).
    lag_from_ms: Mutex<i64>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl PollObserver for Journal {
    fn observe(&self, report: &PollReport<'_>) {
        let poll = match report.outcome {
            PollOutcome::Stored { observed_at, context, .. } => Poll {
                finished_ms: report.finished_at.timestamp_millis(),
                observed_ms: Some(observed_at.timestamp_millis()),
                context: Some(*context),
                failed: None,
            },
            PollOutcome::Failed { kind, .. } => Poll {
                finished_ms: report.finished_at.timestamp_millis(),
                observed_ms: None,
                context: None,
                failed: Some(*kind),
            },
            PollOutcome::Deferred { reason, .. } => {
                *lock(&self.deferred)
                    .entry((report.device.vendor.clone(), reason.as_str()))
                    .or_default() += 1;
                return;
            }
            PollOutcome::Missing | PollOutcome::Stopped => return,
        };
        lock(&self.polls).entry(report.device.device.id.clone()).or_default().push(poll);
    }

    fn claimed(&self, _device_id: &str, due: DateTime<Utc>, now: DateTime<Utc>) {
        if due.timestamp_millis() < *lock(&self.lag_from_ms) {
            return;
        }
        let lag = (now - due).num_milliseconds().clamp(0, i64::from(u32::MAX));
        lock(&self.lags_ms).push(u32::try_from(lag).unwrap_or(u32::MAX));
    }
}

impl Journal {
    /// A device's polls, in the order they finished.
    pub fn of(&self, device: &str) -> Vec<Poll> {
        lock(&self.polls).get(device).cloned().unwrap_or_default()
    }

    /// Takes everything recorded so far: polls per device, claim lags (ms), deferrals.
    pub fn take(&self) -> (HashMap<String, Vec<Poll>>, Vec<u32>, Deferrals) {
        let polls = std::mem::take(&mut *lock(&self.polls));
        let lags = std::mem::take(&mut *lock(&self.lags_ms));
        let deferred = std::mem::take(&mut *lock(&self.deferred));
        (polls, lags, deferred)
    }

    /// Vendor reads finished so far (stored or failed; deferrals are not reads).
    pub fn reads(&self) -> u64 {
        lock(&self.polls).values().map(|p| p.len() as u64).sum()
    }

    /// Counts the lag only of claims due at or after `from`.
    pub fn lag_from(&self, from: DateTime<Utc>) {
        *lock(&self.lag_from_ms) = from.timestamp_millis();
    }

    /// The claim lags recorded so far (ms), leaving them recorded.
    pub fn lags_len(&self) -> usize {
        lock(&self.lags_ms).len()
    }

    /// The claim lags (ms) recorded from index `from` on.
    pub fn lags_since(&self, from: usize) -> Vec<u32> {
        lock(&self.lags_ms).get(from..).map(<[u32]>::to_vec).unwrap_or_default()
    }
}

/// The `q` quantile (0..=1) of sorted values, nearest rank; 0 for none.
pub fn quantile<T: Copy + Default>(sorted: &[T], q: f64) -> T {
    if sorted.is_empty() {
        return T::default();
    }
    let rank = (q.clamp(0.0, 1.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_by_nearest_rank() {
        let v: Vec<u32> = (1..=100).collect();
        assert_eq!(quantile(&v, 0.5), 50);
        assert_eq!(quantile(&v, 0.99), 99);
        assert_eq!(quantile(&v, 1.0), 100);
        assert_eq!(quantile(&v, 0.0), 1);
        assert_eq!(quantile::<u32>(&[], 0.5), 0);
    }

    #[test]
    fn claims_due_before_the_run_are_not_lag() {
        let journal = Journal::default();
        let t: DateTime<Utc> = "2026-06-01T00:00:00Z".parse().unwrap();
        journal.lag_from(t);
        let later = t + chrono::Duration::seconds(5);
        journal.claimed("a", t - chrono::Duration::seconds(30), later);
        journal.claimed("b", t, later);
        assert_eq!(journal.lags_since(0), vec![5000]);
    }

    #[test]
    fn asleep_reads_count_as_sleeping() {
        let p = Poll {
            finished_ms: 0,
            observed_ms: None,
            context: None,
            failed: Some(ErrorKind::DeviceAsleep),
        };
        assert_eq!(p.known_context(), Some(PollContext::Sleeping));
    }
}
