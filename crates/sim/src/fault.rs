//! Fault injection per vendor, timed on the simulated clock.
//!
//! The world only *stores and times* faults; each vendor simulator renders them in its
//! own style (Tesla's 429 JSON, Enphase's HTML 503, ...). A vendor simulator asks
//! [`FaultInjector::active`] at the start of every request and, for token revocation,
//! [`FaultInjector::take_revocation`].
//!
//! How simulators are expected to render each [`Fault`]:
//!
//! | fault | rendering |
//! |---|---|
//! | `RateLimit{retry_after}` | 429 with `Retry-After` (whole seconds) in the vendor's error body |
//! | `ServerError{status}` | that 5xx status with the vendor's error body |
//! | `Hang{duration}` | wait `duration` of *clock* time ([`Fault::hang_real`] converts it to real time), then answer normally |
//! | `Timeout` | hold the request open for [`TIMEOUT_HANG`] of *real* time (longer than any client timeout), so the client's own timeout fires; the answer, if any, is a 504 |
//! | `Malformed` | 200 with a body that is not valid JSON for the route |
//! | `Truncated` | 200 with the correct body cut off midway |
//! | `RevokeTokens` | one-shot: on the next request, invalidate every token of the vendor (via [`FaultInjector::take_revocation`]) |
//! | `Outage` | every request fails: 503 or a dropped connection, vendor's choice |
//!
//! Faults expire on the simulated clock: with a `ScaledClock` at 60x a 5-minute outage
//! lasts 5 real seconds. A later `set` for a vendor wins over an earlier one while both
//! are active.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};
use oemgate_core::Clock;
use serde::{Deserialize, Serialize};

/// How long (real time) a simulator holds a request open for [`Fault::Timeout`].
pub const TIMEOUT_HANG: Duration = Duration::from_secs(300);

fn default_status() -> u16 {
    500
}

/// A fault a vendor simulator injects into its responses.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "fault", rename_all = "snake_case")]
pub enum Fault {
    /// 429 with `Retry-After`.
    RateLimit {
        /// The `Retry-After` value.
        #[serde(with = "humantime_serde")]
        retry_after: Duration,
    },
    /// A 5xx answer.
    ServerError {
        /// The HTTP status (500 when omitted in config).
        #[serde(default = "default_status")]
        status: u16,
    },
    /// Answer normally, but only after this much clock time.
    Hang {
        /// The delay (clock time). Spelled `hang` in config, since a rule's `duration` is
        /// the length of its window.
        #[serde(with = "humantime_serde", rename = "hang")]
        duration: Duration,
    },
    /// Never answer in time: hold the request open for [`TIMEOUT_HANG`] real time.
    Timeout,
    /// 200 with an unparseable body.
    Malformed,
    /// 200 with the body cut off.
    Truncated,
    /// One-shot: invalidate every token of the vendor.
    RevokeTokens,
    /// All requests fail (503 or connection error).
    Outage,
}

impl Fault {
    /// The real time a simulator should wait before answering (or giving up on) a request
    /// under this fault: `Hang` converted through the clock's speed, `Timeout` as
    /// [`TIMEOUT_HANG`]; `None` for faults that answer at once.
    pub fn hang_real(&self, clock: &dyn Clock) -> Option<Duration> {
        match self {
            Fault::Hang { duration } => Some(clock.to_real(*duration)),
            Fault::Timeout => Some(TIMEOUT_HANG),
            _ => None,
        }
    }

    /// A short name (`rate_limit`, `outage`, ...), as used in config.
    pub fn name(&self) -> &'static str {
        match self {
            Fault::RateLimit { .. } => "rate_limit",
            Fault::ServerError { .. } => "server_error",
            Fault::Hang { .. } => "hang",
            Fault::Timeout => "timeout",
            Fault::Malformed => "malformed",
            Fault::Truncated => "truncated",
            Fault::RevokeTokens => "revoke_tokens",
            Fault::Outage => "outage",
        }
    }
}

/// One configured fault: `{ fault = "outage", start_after = "10m", duration = "5m" }`,
/// with the fault's own fields inline (`retry_after = "30s"`, `status = 503`,
/// `hang = "20s"`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultRule {
    /// The fault (tagged by `fault`, its fields inline).
    #[serde(flatten)]
    pub fault: Fault,
    /// When it starts, relative to the world's start.
    #[serde(with = "humantime_serde", default)]
    pub start_after: Duration,
    /// How long it lasts; absent: until cleared.
    #[serde(with = "humantime_serde", default)]
    pub duration: Option<Duration>,
}

/// `[sim.faults]`: vendor -> rules.
///
/// ```toml
/// [sim.faults]
/// tesla = [
///   { fault = "rate_limit", retry_after = "30s", start_after = "10m", duration = "2m" },
///   { fault = "hang", hang = "20s", start_after = "30m", duration = "10m" },
///   { fault = "outage", start_after = "1h", duration = "5m" },
///   { fault = "revoke_tokens", start_after = "2h" },
/// ]
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct FaultConfig(pub BTreeMap<String, Vec<FaultRule>>);

/// A fault as stored: a window on the simulated clock.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ScheduledFault {
    /// The vendor.
    pub vendor: String,
    /// The fault.
    pub fault: Fault,
    /// Start of the window.
    pub start: DateTime<Utc>,
    /// End of the window (exclusive); `None`: until cleared.
    pub end: Option<DateTime<Utc>>,
    seq: u64,
}

impl ScheduledFault {
    fn covers(&self, now: DateTime<Utc>) -> bool {
        self.start <= now && self.end.is_none_or(|end| now < end)
    }
}

#[derive(Debug, Default)]
struct Book {
    faults: Vec<ScheduledFault>,
    next_seq: u64,
}

/// Shared, cloneable store of faults per vendor; all clones see the same faults.
#[derive(Clone)]
pub struct FaultInjector {
    book: Arc<Mutex<Book>>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for FaultInjector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultInjector").field("faults", &self.lock().faults).finish()
    }
}

fn plus(t: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(d)
        .ok()
        .and_then(|d| t.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

impl FaultInjector {
    /// An empty injector timed by `clock`.
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self { book: Arc::new(Mutex::new(Book::default())), clock }
    }

    fn lock(&self) -> MutexGuard<'_, Book> {
        // A panic while holding this lock cannot leave the book inconsistent (every
        // mutation is a single push or retain), so a poisoned lock is still usable.
        self.book.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Injects `fault` for `vendor` from now, for `for_duration` of clock time (`None`:
    /// until [`FaultInjector::clear`]).
    pub fn set(&self, vendor: &str, fault: Fault, for_duration: Option<Duration>) {
        let now = self.clock.now();
        self.schedule(vendor, fault, now, for_duration);
    }

    /// Injects `fault` for `vendor` from `start` for `duration` (`None`: until cleared).
    pub fn schedule(
        &self,
        vendor: &str,
        fault: Fault,
        start: DateTime<Utc>,
        duration: Option<Duration>,
    ) {
        let mut book = self.lock();
        let seq = book.next_seq;
        book.next_seq += 1;
        book.faults.push(ScheduledFault {
            vendor: vendor.to_owned(),
            fault,
            start,
            end: duration.map(|d| plus(start, d)),
            seq,
        });
    }

    /// Schedules an outage of `vendor` from `start` for `duration`.
    pub fn schedule_outage(&self, vendor: &str, start: DateTime<Utc>, duration: Duration) {
        self.schedule(vendor, Fault::Outage, start, Some(duration));
    }

    /// Removes every fault of `vendor`, active or scheduled.
    pub fn clear(&self, vendor: &str) {
        self.lock().faults.retain(|f| f.vendor != vendor);
    }

    /// Removes every fault of every vendor.
    pub fn clear_all(&self) {
        self.lock().faults.clear();
    }

    /// The fault active for `vendor` now (the most recently set one if several are), or
    /// `None`. Never returns [`Fault::RevokeTokens`]: see [`FaultInjector::take_revocation`].
    pub fn active(&self, vendor: &str) -> Option<Fault> {
        self.active_at(vendor, self.clock.now())
    }

    /// Like [`FaultInjector::active`] at an explicit instant.
    pub fn active_at(&self, vendor: &str, now: DateTime<Utc>) -> Option<Fault> {
        let mut book = self.lock();
        // Expired windows are dropped here, so the book stays small in long runs. A due
        // revocation stays until taken: it is an event, not a window.
        book.faults.retain(|f| f.fault == Fault::RevokeTokens || f.end.is_none_or(|end| end > now));
        book.faults
            .iter()
            .filter(|f| f.vendor == vendor && f.fault != Fault::RevokeTokens && f.covers(now))
            .max_by_key(|f| f.seq)
            .map(|f| f.fault.clone())
    }

    /// Whether a token revocation for `vendor` is due; returns `true` once per revocation
    /// (it is consumed). The simulator then invalidates all of the vendor's tokens.
    pub fn take_revocation(&self, vendor: &str) -> bool {
        let now = self.clock.now();
        let mut book = self.lock();
        let due = book
            .faults
            .iter()
            .position(|f| f.vendor == vendor && f.fault == Fault::RevokeTokens && f.start <= now);
        match due {
            Some(i) => {
                book.faults.remove(i);
                true
            }
            None => false,
        }
    }

    /// Everything stored for `vendor` (active, scheduled, and pending revocations).
    pub fn list(&self, vendor: &str) -> Vec<ScheduledFault> {
        self.lock().faults.iter().filter(|f| f.vendor == vendor).cloned().collect()
    }

    /// Schedules every rule of `config`, with `start_after` counted from `origin`.
    pub fn apply_config(&self, config: &FaultConfig, origin: DateTime<Utc>) {
        for (vendor, rules) in &config.0 {
            for rule in rules {
                self.schedule(
                    vendor,
                    rule.fault.clone(),
                    plus(origin, rule.start_after),
                    rule.duration,
                );
            }
        }
    }
}
