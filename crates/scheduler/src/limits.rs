//! Vendor limits, enforced before a request goes out.
//!
//! One [`VendorGate`] per vendor holds:
//! - a GCRA rate limiter (governor) per scope key (the vendor account, API key or site the
//!   vendor counts against, never a device), with the vendor's per-minute rate and burst;
//! - a daily budget per scope key: a second GCRA that paces the daily quota evenly over the day
//!   (with an hour's worth of burst), plus a hard count per UTC day;
//! - a concurrency cap per scope key;
//! - a hold per scope key after a rate-limit answer, until the vendor's `retry_after`;
//! - the vendor's circuit breaker;
//! - the interval plans that share a scarce budget between the devices counted against it:
//!   a daily quota per quota key, and a per-minute rate the whole gateway shares.
//!
//! Time comes from the oemgate [`Clock`], so simulations at any speed and manual clocks in
//! tests see the same limits the real clock would.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::ops::Add;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use governor::clock::Reference;
use governor::nanos::Nanos;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use oemgate_core::{Clock, ErrorKind, QuotaScope, VendorLimits};

use crate::breaker::{Breaker, BreakerConfig, BreakerState, Permit};
use crate::quota::{Demand, allocate};

/// Nanoseconds since the Unix epoch on the oemgate clock: governor's notion of an instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ClockInstant(u64);

impl Add<Nanos> for ClockInstant {
    type Output = Self;
    fn add(self, other: Nanos) -> Self {
        Self(self.0.saturating_add(other.as_u64()))
    }
}

impl Reference for ClockInstant {
    fn duration_since(&self, earlier: Self) -> Nanos {
        Nanos::from(self.0.saturating_sub(earlier.0))
    }
    fn saturating_sub(&self, duration: Nanos) -> Self {
        Self(self.0.saturating_sub(duration.as_u64()))
    }
}

impl ClockInstant {
    fn of(t: DateTime<Utc>) -> Self {
        Self(t.timestamp_nanos_opt().map_or(0, |n| u64::try_from(n).unwrap_or(0)))
    }
    fn to_datetime(self) -> DateTime<Utc> {
        DateTime::<Utc>::from_timestamp_nanos(i64::try_from(self.0).unwrap_or(i64::MAX))
    }
}

/// The oemgate clock as a governor clock.
#[derive(Clone, Debug)]
pub struct GovernorClock(pub Arc<dyn Clock>);

impl governor::clock::Clock for GovernorClock {
    type Instant = ClockInstant;
    fn now(&self) -> ClockInstant {
        ClockInstant::of(self.0.now())
    }
}

type KeyedLimiter = RateLimiter<
    String,
    DefaultKeyedStateStore<String>,
    GovernorClock,
    governor::middleware::NoOpMiddleware<ClockInstant>,
>;

/// Why a request was held back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeferReason {
    /// The per-minute rate of the scope key is used up.
    RateLimit,
    /// The daily quota's pace or count is used up.
    DailyQuota,
    /// The scope key has its maximum of requests in flight.
    Concurrency,
    /// The vendor asked us to wait (`retry_after`).
    VendorHold,
    /// The vendor's breaker is open.
    BreakerOpen,
}

impl DeferReason {
    /// A label for metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            DeferReason::RateLimit => "rate_limit",
            DeferReason::DailyQuota => "daily_quota",
            DeferReason::Concurrency => "concurrency",
            DeferReason::VendorHold => "vendor_hold",
            DeferReason::BreakerOpen => "breaker_open",
        }
    }
}

/// The gate's answer.
#[derive(Debug)]
pub enum Admission {
    /// Send the request; drop the ticket when it is done.
    Go(Ticket),
    /// Do not send before `until`.
    Defer {
        /// The earliest time worth trying again.
        until: DateTime<Utc>,
        /// Why.
        reason: DeferReason,
    },
}

/// A request in flight; releases its concurrency slot when dropped.
#[derive(Debug)]
pub struct Ticket {
    gate: Arc<GateState>,
    key: String,
    /// This request is the breaker's half-open probe.
    pub probe: bool,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut inflight = self.gate.inflight.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = inflight.get_mut(&self.key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                inflight.remove(&self.key);
            }
        }
    }
}

#[derive(Debug)]
struct GateState {
    inflight: Mutex<HashMap<String, u32>>,
}

#[derive(Default)]
struct QuotaMembers {
    demands: std::collections::BTreeMap<String, Demand>,
    planned: HashMap<String, Duration>,
}

struct DailyCount {
    day: chrono::NaiveDate,
    used: u32,
}

/// The limits of one vendor.
pub struct VendorGate {
    vendor: String,
    limits: VendorLimits,
    clock: Arc<dyn Clock>,
    rate: Option<KeyedLimiter>,
    daily_pace: Option<KeyedLimiter>,
    daily_count: Mutex<HashMap<String, DailyCount>>,
    holds: Mutex<HashMap<String, DateTime<Utc>>>,
    /// Per rate key: the end of the slots handed to polls the per-minute rate held back.
    rate_queue: Mutex<HashMap<String, DateTime<Utc>>>,
    /// The interval plans, by plan key (a daily-quota key, or [`RATE_PLAN`] for a
    /// gateway-wide rate): what each device counted against it asks for, and was granted.
    quota_devices: Mutex<HashMap<String, QuotaMembers>>,
    breaker: Mutex<Breaker>,
    errors: Mutex<crate::error_rate::ErrorRate>,
    state: Arc<GateState>,
}

impl std::fmt::Debug for VendorGate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VendorGate")
            .field("vendor", &self.vendor)
            .field("limits", &self.limits)
            .finish()
    }
}

impl VendorGate {
    /// A gate for `vendor` with its declared `limits`.
    pub fn new(
        vendor: &str,
        limits: VendorLimits,
        breaker: BreakerConfig,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let governor_clock = GovernorClock(Arc::clone(&clock));
        let rate = NonZeroU32::new(limits.requests_per_minute).map(|rpm| {
            let burst = NonZeroU32::new(limits.burst.max(1)).unwrap_or(NonZeroU32::MIN);
            let quota = Quota::per_minute(rpm).allow_burst(burst);
            RateLimiter::new(quota, DefaultKeyedStateStore::default(), governor_clock.clone())
        });
        let daily_pace = limits.daily_quota.and_then(|q| {
            let per_day = NonZeroU32::new(q.requests)?;
            let period = Duration::from_secs(86_400).checked_div(per_day.get())?;
            // Up to an hour's share may be spent at once, so a refresh hint or a burst of
            // changes does not wait for the pace.
            let burst = NonZeroU32::new((per_day.get() / 24).max(1)).unwrap_or(NonZeroU32::MIN);
            Quota::with_period(period).map(|quota| {
                RateLimiter::new(
                    quota.allow_burst(burst),
                    DefaultKeyedStateStore::default(),
                    governor_clock.clone(),
                )
            })
        });
        Self {
            vendor: vendor.to_string(),
            limits,
            clock,
            rate,
            daily_pace,
            daily_count: Mutex::new(HashMap::new()),
            holds: Mutex::new(HashMap::new()),
            rate_queue: Mutex::new(HashMap::new()),
            quota_devices: Mutex::new(HashMap::new()),
            breaker: Mutex::new(Breaker::new(breaker)),
            errors: Mutex::new(crate::error_rate::ErrorRate::new()),
            state: Arc::new(GateState { inflight: Mutex::new(HashMap::new()) }),
        }
    }

    /// The vendor.
    pub fn vendor(&self) -> &str {
        &self.vendor
    }

    /// The declared limits.
    pub fn limits(&self) -> &VendorLimits {
        &self.limits
    }

    /// The key the vendor counts a request against.
    pub fn scope_key(
        scope: QuotaScope,
        account_id: &str,
        site_id: Option<&str>,
        device_id: &str,
    ) -> String {
        match scope {
            QuotaScope::Key => "key".to_string(),
            QuotaScope::Account => format!("account:{account_id}"),
            QuotaScope::Site => format!("site:{}", site_id.unwrap_or(account_id)),
            QuotaScope::Device => format!("device:{device_id}"),
        }
    }

    /// The breaker's state.
    pub fn breaker_state(&self) -> BreakerState {
        self.breaker.lock().unwrap_or_else(|e| e.into_inner()).state()
    }

    /// Whether the vendor's recent share of failed calls is elevated (see
    /// [`crate::error_rate`]).
    pub fn error_rate_elevated(&self) -> bool {
        self.errors.lock().unwrap_or_else(|e| e.into_inner()).elevated(self.clock.now())
    }

    /// Asks to send `cost` requests against `rate_key` (per-minute scope) and `quota_key`
    /// (daily-quota scope). Held back, it is told the earliest time the limit allows: for
    /// commands, which should go as soon as they can.
    pub fn admit(&self, rate_key: &str, quota_key: &str, cost: u32) -> Admission {
        self.admit_inner(rate_key, quota_key, cost, false)
    }

    /// Like [`Self::admit`], for a poll: held back by a per-minute rate the whole gateway
    /// shares ([`QuotaScope::Key`]), it is given the next free slot in the key's queue
    /// instead of the earliest time (see [`reserve`]).
    pub fn admit_poll(&self, rate_key: &str, quota_key: &str, cost: u32) -> Admission {
        self.admit_inner(rate_key, quota_key, cost, true)
    }

    fn admit_inner(&self, rate_key: &str, quota_key: &str, cost: u32, queued: bool) -> Admission {
        let now = self.clock.now();
        let cost = NonZeroU32::new(cost.max(1)).unwrap_or(NonZeroU32::MIN);
        let hold = self.holds.lock().unwrap_or_else(|e| e.into_inner()).get(rate_key).copied();
        if let Some(until) = hold
            && until > now
        {
            return Admission::Defer { until, reason: DeferReason::VendorHold };
        }
        {
            let inflight = self.state.inflight.lock().unwrap_or_else(|e| e.into_inner());
            if inflight.get(rate_key).copied().unwrap_or(0) >= self.limits.max_concurrent.max(1) {
                return Admission::Defer {
                    until: now + chrono::Duration::seconds(1),
                    reason: DeferReason::Concurrency,
                };
            }
        }
        if let Some(quota) = self.limits.daily_quota {
            let counts = self.daily_count.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(count) = counts.get(quota_key).filter(|c| c.day == now.date_naive())
                && count.used.saturating_add(cost.get()) > quota.requests
            {
                return Admission::Defer {
                    until: next_midnight(now),
                    reason: DeferReason::DailyQuota,
                };
            }
        }
        // Order matters: the breaker first (during an outage nothing else is spent), then the
        // per-minute rate, then the daily pace. A refusal consumes nothing; a pass is spent,
        // so a later refusal can waste a little per-minute budget but never exceed a limit,
        // and the scarcer daily quota is spent last.
        let probe = match self.breaker.lock().unwrap_or_else(|e| e.into_inner()).permit(now) {
            Permit::Go => false,
            Permit::Probe => true,
            Permit::NotBefore(until) => {
                return Admission::Defer { until, reason: DeferReason::BreakerOpen };
            }
        };
        if let Some(rate) = &self.rate {
            // More than the burst at once can never pass (Err): let such a request through
            // rather than starve it; adapters declare bursts above their per-poll cost.
            if let Ok(Err(not_until)) = rate.check_key_n(&rate_key.to_string(), cost) {
                let earliest = not_until.earliest_possible().to_datetime();
                let until = if queued && self.limits.rate_scope == QuotaScope::Key {
                    let steps = i32::try_from(cost.get()).unwrap_or(i32::MAX);
                    reserve(&self.rate_queue, rate_key, earliest, self.rate_step() * steps)
                } else {
                    earliest
                };
                return Admission::Defer { until, reason: DeferReason::RateLimit };
            }
        }
        if let Some(pace) = &self.daily_pace
            && let Ok(Err(not_until)) = pace.check_key_n(&quota_key.to_string(), cost)
        {
            return Admission::Defer {
                until: not_until.earliest_possible().to_datetime(),
                reason: DeferReason::DailyQuota,
            };
        }
        if self.limits.daily_quota.is_some() {
            let mut counts = self.daily_count.lock().unwrap_or_else(|e| e.into_inner());
            let entry = counts
                .entry(quota_key.to_string())
                .or_insert(DailyCount { day: now.date_naive(), used: 0 });
            if entry.day != now.date_naive() {
                *entry = DailyCount { day: now.date_naive(), used: 0 };
            }
            entry.used = entry.used.saturating_add(cost.get());
        }
        *self
            .state
            .inflight
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(rate_key.to_string())
            .or_insert(0) += 1;
        Admission::Go(Ticket { gate: Arc::clone(&self.state), key: rate_key.to_string(), probe })
    }

    /// Until when a token refresh should wait because the vendor is failing (the breaker is
    /// open): refreshes go to the vendor's auth server, which counts against no data quota,
    /// but during an outage they must not storm it either.
    pub fn refresh_blocked_until(&self) -> Option<DateTime<Utc>> {
        let now = self.clock.now();
        self.breaker.lock().unwrap_or_else(|e| e.into_inner()).blocked_until(now)
    }

    /// Accounts for `requests` already sent against `rate_key` that did not pass the gate
    /// (the discovery calls of a linking flow): they are taken from the rate budget. What
    /// the budget cannot cover is a debt: the key is held until the rate has paid it *and*
    /// refilled a burst (after the hold the limiter offers its whole burst again, which the
    /// vendor's window has not refilled), and at least a minute. Debts of successive calls
    /// add up, so linking forty SMA accounts in a row (three calls each against SMA's one
    /// application-wide bucket) cannot make the first polls overrun the bucket's window.
    pub fn spend(&self, rate_key: &str, requests: u32) {
        let Some(rate) = &self.rate else { return };
        let key = rate_key.to_string();
        let now = self.clock.now();
        let mut holds = self.holds.lock().unwrap_or_else(|e| e.into_inner());
        // While a debt is being paid, what the limiter refills is the payment: everything
        // more adds to the debt.
        let in_debt = holds.get(&key).is_some_and(|until| *until > now);
        let overflow = if in_debt {
            requests as usize
        } else {
            (0..requests).filter(|_| rate.check_key(&key).is_err()).count()
        };
        if overflow == 0 {
            return;
        }
        let period = self.rate_step();
        let entry = holds.entry(key).or_insert(now);
        let base = if *entry > now {
            *entry
        } else {
            now + period * i32::try_from(self.limits.burst.max(1)).unwrap_or(i32::MAX)
        };
        let paid = base + period * i32::try_from(overflow).unwrap_or(i32::MAX);
        *entry = paid.max(now + chrono::Duration::seconds(60));
    }

    /// The time one request takes of the per-minute rate (whole milliseconds, rounded up).
    fn rate_step(&self) -> chrono::Duration {
        let seconds = 60.0 / f64::from(self.limits.requests_per_minute.max(1));
        chrono::Duration::milliseconds((seconds * 1000.0).ceil() as i64)
    }

    /// Holds `rate_key` until `until`: nothing more is sent against it before then.
    pub fn hold(&self, rate_key: &str, until: DateTime<Utc>) {
        let mut holds = self.holds.lock().unwrap_or_else(|e| e.into_inner());
        let entry = holds.entry(rate_key.to_string()).or_insert(until);
        *entry = (*entry).max(until);
    }

    /// Records how a request went: feeds the breaker and, for a rate-limit answer, holds the
    /// scope key until the vendor's `retry_after` (or a minute when it did not say).
    pub fn record(&self, rate_key: &str, outcome: Option<(ErrorKind, Option<Duration>)>) {
        let now = self.clock.now();
        self.breaker
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .record(now, outcome.map(|(kind, _)| kind));
        self.errors.lock().unwrap_or_else(|e| e.into_inner()).record(now, outcome.map(|(k, _)| k));
        if let Some((ErrorKind::RateLimited, retry_after)) = outcome {
            let hold = retry_after.unwrap_or(Duration::from_secs(60));
            let until = now + chrono::Duration::from_std(hold).unwrap_or(chrono::Duration::MAX);
            let mut holds = self.holds.lock().unwrap_or_else(|e| e.into_inner());
            let entry = holds.entry(rate_key.to_string()).or_insert(until);
            *entry = (*entry).max(until);
        }
    }

    /// The interval at which a device sharing `quota_key` may be polled so that all the
    /// devices sharing it stay within the daily quota: `demand.interval` when the quota
    /// suffices, longer when it does not (see [`crate::quota`] for who gives way first).
    /// `None` when the vendor has no daily quota. Records the device's demand under the key,
    /// so the plan follows the devices actually polled and their current contexts.
    ///
    /// The poller stretches devices' intervals to this, so a scarce quota is spent by
    /// priority and evenly within a priority, instead of first come, first served, which
    /// would starve some devices while others keep their short bound.
    pub fn quota_interval(
        &self,
        quota_key: &str,
        device_id: &str,
        demand: Demand,
    ) -> Option<Duration> {
        let quota = self.limits.daily_quota?;
        Some(self.plan(quota_key, quota.requests, device_id, demand))
    }

    /// The same plan for a per-minute rate the whole gateway shares ([`QuotaScope::Key`]:
    /// SMA's bucket per application, SolarEdge's calls per source address): a day of the
    /// rate is the budget. `None` when the rate is per account, site or device (a few
    /// devices share it, and their bounds fit it by the adapters' declarations).
    ///
    /// Without it, a fleet whose bounds need more than the rate (1,233 SMA devices want about
    /// four times SMA's bucket) is served first come, first served: devices queue behind the
    /// rate, a charging battery waits as long as an idle meter, and every device is reported
    /// as keeping its bound while its data ages. With it, the rate is shared by priority like
    /// a quota, and the devices it cannot pay for are known ([`Self::stretched_interval`]).
    pub fn rate_interval(&self, device_id: &str, demand: Demand) -> Option<Duration> {
        let budget = self.rate_plan_budget()?;
        Some(self.plan(RATE_PLAN, budget, device_id, demand))
    }

    fn rate_plan_budget(&self) -> Option<u32> {
        (self.limits.rate_scope == QuotaScope::Key && self.limits.requests_per_minute > 0)
            .then(|| self.limits.requests_per_minute.saturating_mul(24 * 60))
    }

    /// Records `demand` for `device_id` under the plan `key` and returns its interval.
    fn plan(&self, key: &str, requests_per_day: u32, device_id: &str, demand: Demand) -> Duration {
        let mut map = self.quota_devices.lock().unwrap_or_else(|e| e.into_inner());
        let members = map.entry(key.to_string()).or_default();
        let changed = members.demands.insert(device_id.to_string(), demand) != Some(demand);
        if changed || !members.planned.contains_key(device_id) {
            let (ids, demands): (Vec<&String>, Vec<Demand>) =
                members.demands.iter().map(|(id, d)| (id, *d)).unzip();
            let plan = allocate(requests_per_day, &demands);
            let planned = ids.into_iter().cloned().zip(plan).collect();
            members.planned = planned;
        }
        members.planned.get(device_id).copied().unwrap_or(demand.interval)
    }

    /// The interval last planned for a device under `quota_key` (see
    /// [`VendorGate::quota_interval`]), if it was planned.
    pub fn planned_interval(&self, quota_key: &str, device_id: &str) -> Option<Duration> {
        let map = self.quota_devices.lock().unwrap_or_else(|e| e.into_inner());
        map.get(quota_key)?.planned.get(device_id).copied()
    }

    /// The planned interval of a device whose share of its daily quota (under `quota_key`)
    /// or of the gateway-wide rate is longer than its context asks for (the device cannot
    /// meet its bound); the longer of the two; `None` when it is not stretched.
    pub fn stretched_interval(&self, quota_key: Option<&str>, device_id: &str) -> Option<Duration> {
        let map = self.quota_devices.lock().unwrap_or_else(|e| e.into_inner());
        let stretched = |key: &str| {
            let members = map.get(key)?;
            let planned = members.planned.get(device_id).copied()?;
            let wanted = members.demands.get(device_id)?.interval;
            (planned > wanted).then_some(planned)
        };
        quota_key.and_then(stretched).into_iter().chain(stretched(RATE_PLAN)).max()
    }

    /// How many devices are currently planned at an interval longer than their context asks
    /// for, because the quota or the gateway-wide rate cannot pay for it.
    pub fn stretched_devices(&self) -> usize {
        let map = self.quota_devices.lock().unwrap_or_else(|e| e.into_inner());
        map.values()
            .flat_map(|m| {
                m.demands
                    .iter()
                    .filter(|(id, d)| m.planned.get(*id).is_some_and(|p| *p > d.interval))
            })
            .map(|(id, _)| id)
            .collect::<std::collections::HashSet<_>>()
            .len()
    }

    /// Removes a device from the quota plans (it was deleted or stopped being polled).
    pub fn forget_device(&self, device_id: &str) {
        let mut map = self.quota_devices.lock().unwrap_or_else(|e| e.into_inner());
        for members in map.values_mut() {
            if members.demands.remove(device_id).is_some() {
                members.planned.clear();
            }
        }
    }

    /// The largest share of its daily quota any key has used today (0 without a quota).
    pub fn quota_used_ratio(&self) -> f64 {
        let Some(quota) = self.limits.daily_quota else { return 0.0 };
        let today = self.clock.now().date_naive();
        let counts = self.daily_count.lock().unwrap_or_else(|e| e.into_inner());
        let used = counts.values().filter(|c| c.day == today).map(|c| c.used).max().unwrap_or(0);
        f64::from(used) / f64::from(quota.requests.max(1))
    }

    /// Gives back daily-quota budget reserved by [`VendorGate::admit`] but not spent (a batch
    /// read reserves the sum of its devices' costs and may need fewer requests).
    pub fn refund(&self, quota_key: &str, unused: u32) {
        if unused == 0 || self.limits.daily_quota.is_none() {
            return;
        }
        let today = self.clock.now().date_naive();
        let mut counts = self.daily_count.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = counts.get_mut(quota_key).filter(|c| c.day == today) {
            count.used = count.used.saturating_sub(unused);
        }
    }

    /// Requests counted against a daily quota key today.
    pub fn used_today(&self, quota_key: &str) -> u32 {
        let now = self.clock.now();
        self.daily_count
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(quota_key)
            .filter(|c| c.day == now.date_naive())
            .map_or(0, |c| c.used)
    }
}

/// A slot for a poll the per-minute rate held back: the earliest time the rate allows, or,
/// when polls held back before it already have the slots from then on, the first slot after
/// theirs.
///
/// Without the queue every poll held back on a key the whole gateway shares (SolarEdge's,
/// SMA's and Enphase's rates count every account) is told the same earliest time, comes
/// back together with the others, is held back again, and so on: at 10,000 devices the
/// scheduler deferred devices fifteen times for every read it made. With it, the polls
/// waiting on the key come back one rate-step apart, about when the rate lets each of them
/// through. A slot is a hint, not a promise: a request that was not held back (a command, a
/// device coming due) can take it, and the poll holding it then queues again.
///
/// Keys of one account or site have no queue, nor has the daily quota's pace (its keys are
/// accounts or sites): they hold a few devices, so there is little churn to save, and there
/// the same device held back again and again (a pending action polls every 10 s) would take
/// a new slot each time and push the queue ahead of the rate, starving the polls that
/// confirm commands while the commands, which do not queue, take the rate.
fn reserve(
    queue: &Mutex<HashMap<String, DateTime<Utc>>>,
    key: &str,
    earliest: DateTime<Utc>,
    step: chrono::Duration,
) -> DateTime<Utc> {
    let mut queue = queue.lock().unwrap_or_else(|e| e.into_inner());
    let tail = queue.entry(key.to_string()).or_insert(earliest);
    let slot = (*tail).max(earliest);
    *tail = slot + step;
    slot
}

/// The plan key of the gateway-wide rate (scope keys are `key`, `account:…`, `site:…`,
/// `device:…`, so it cannot collide with a quota key).
const RATE_PLAN: &str = "rate-plan";

fn next_midnight(now: DateTime<Utc>) -> DateTime<Utc> {
    let tomorrow = now.date_naive().succ_opt().unwrap_or(now.date_naive());
    tomorrow.and_hms_opt(0, 0, 0).map_or(now + chrono::Duration::days(1), |t| t.and_utc())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oemgate_core::{DailyQuota, ManualClock};
    use proptest::prelude::*;

    fn start() -> DateTime<Utc> {
        "2026-05-04T10:00:00Z".parse().unwrap()
    }

    fn limits(rpm: u32, burst: u32, daily: Option<u32>, concurrent: u32) -> VendorLimits {
        VendorLimits {
            requests_per_minute: rpm,
            burst,
            rate_scope: QuotaScope::Account,
            daily_quota: daily.map(|requests| DailyQuota { requests, per: QuotaScope::Site }),
            max_concurrent: concurrent,
            pricing: None,
        }
    }

    fn gate(l: VendorLimits) -> (VendorGate, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock::new(start()));
        (VendorGate::new("X", l, BreakerConfig::default(), clock.clone()), clock)
    }

    fn go(a: Admission) -> Ticket {
        match a {
            Admission::Go(t) => t,
            other => panic!("expected Go, got {other:?}"),
        }
    }

    fn deferred(a: Admission) -> (DateTime<Utc>, DeferReason) {
        match a {
            Admission::Defer { until, reason } => (until, reason),
            Admission::Go(_) => panic!("expected Defer"),
        }
    }

    #[test]
    fn burst_then_rate() {
        let (gate, clock) = gate(limits(60, 10, None, 100));
        for _ in 0..10 {
            drop(go(gate.admit("a", "a", 1)));
        }
        let (until, reason) = deferred(gate.admit("a", "a", 1));
        assert_eq!(reason, DeferReason::RateLimit);
        assert_eq!(until, start() + chrono::Duration::seconds(1));
        // Another account has its own budget.
        drop(go(gate.admit("b", "b", 1)));
        clock.advance(Duration::from_secs(1));
        drop(go(gate.admit("a", "a", 1)));
    }

    #[test]
    fn polls_held_back_on_the_gateways_key_get_successive_slots() {
        let gateway_wide = VendorLimits { rate_scope: QuotaScope::Key, ..limits(60, 2, None, 100) };
        let (gate, clock) = gate(gateway_wide);
        drop(go(gate.admit("a", "a", 2)));
        // Four polls held back at once come back a second apart (two for the one of cost 2),
        // not all at the first second the rate allows.
        let untils: Vec<_> = [1, 1, 2, 1]
            .into_iter()
            .map(|cost| deferred(gate.admit_poll("a", "a", cost)))
            .collect();
        let secs: Vec<i64> = untils.iter().map(|(u, _)| (*u - start()).num_seconds()).collect();
        assert_eq!(secs, vec![1, 2, 3, 5]);
        assert!(untils.iter().all(|(_, r)| *r == DeferReason::RateLimit));
        // A command is told the earliest time, ahead of the queued polls.
        assert_eq!(deferred(gate.admit("a", "a", 1)).0, start() + chrono::Duration::seconds(1));
        // Another key has its own queue.
        drop(go(gate.admit("b", "b", 2)));
        let (until, _) = deferred(gate.admit_poll("b", "b", 1));
        assert_eq!(until, start() + chrono::Duration::seconds(1));
        // Each comes back in its slot and is let through.
        for s in 1..=3 {
            clock.set(start() + chrono::Duration::seconds(s));
            drop(go(gate.admit_poll("a", "a", 1)));
        }
        // A queue whose slots have all passed starts again at the earliest time.
        clock.set(start() + chrono::Duration::seconds(60));
        drop(go(gate.admit_poll("a", "a", 2)));
        let (until, _) = deferred(gate.admit_poll("a", "a", 1));
        assert_eq!(until, start() + chrono::Duration::seconds(61));
    }

    #[test]
    fn polls_held_back_on_an_accounts_key_are_told_the_earliest_time() {
        let (gate, _clock) = gate(limits(60, 2, None, 100));
        drop(go(gate.admit_poll("a", "a", 2)));
        for _ in 0..3 {
            let (until, reason) = deferred(gate.admit_poll("a", "a", 1));
            assert_eq!(
                (until, reason),
                (start() + chrono::Duration::seconds(1), DeferReason::RateLimit)
            );
        }
    }

    #[test]
    fn a_gateway_wide_rate_is_shared_by_plan_when_it_cannot_pay_for_every_bound() {
        use crate::quota::Demand;
        use oemgate_core::PollContext;
        let demand = |minutes: u64, context| Demand {
            interval: Duration::from_secs(minutes * 60),
            cost: 1,
            context,
        };
        // One request a minute for the whole gateway: 1,440 a day, 1,296 planned.
        let gateway_wide = VendorLimits { rate_scope: QuotaScope::Key, ..limits(1, 1, None, 10) };
        let (gate, _) = gate(gateway_wide);
        // Two devices at 7 minutes (412 a day) fit: their intervals stay.
        assert_eq!(
            gate.rate_interval("a", demand(7, PollContext::Default)),
            Some(demand(7, PollContext::Default).interval)
        );
        assert_eq!(
            gate.rate_interval("b", demand(7, PollContext::Default)),
            Some(demand(7, PollContext::Default).interval)
        );
        assert_eq!(gate.stretched_devices(), 0);
        // Ten charging devices at 2 minutes want 7,200 a day: they share the rate, the
        // default devices keep only their floor.
        for i in 0..10 {
            gate.rate_interval(&format!("c{i}"), demand(2, PollContext::Charging));
        }
        let charging = gate.rate_interval("c0", demand(2, PollContext::Charging)).unwrap();
        let default = gate.rate_interval("a", demand(7, PollContext::Default)).unwrap();
        assert!(
            charging > Duration::from_secs(120) && charging < default,
            "{charging:?} {default:?}"
        );
        assert_eq!(gate.stretched_devices(), 12);
        assert_eq!(gate.stretched_interval(None, "c0"), Some(charging));
        // A per-account rate has no such plan.
        let (per_account, _) = super::tests::gate(limits(1, 1, None, 10));
        assert_eq!(per_account.rate_interval("a", demand(2, PollContext::Charging)), None);
        assert_eq!(per_account.stretched_interval(None, "a"), None);
    }

    #[test]
    fn polls_held_back_by_the_daily_pace_are_told_the_earliest_time() {
        let (gate, _clock) = gate(limits(1000, 100, Some(240), 100));
        for _ in 0..10 {
            drop(go(gate.admit_poll("a", "site1", 1)));
        }
        // One request per 6 minutes; no queue: the pace's keys hold a few devices each.
        for _ in 0..3 {
            let (until, reason) = deferred(gate.admit_poll("a", "site1", 1));
            assert_eq!(
                (until, reason),
                (start() + chrono::Duration::minutes(6), DeferReason::DailyQuota)
            );
        }
    }

    #[test]
    fn daily_quota_is_paced_and_capped() {
        let (gate, clock) = gate(limits(1000, 100, Some(240), 100));
        // 240 a day: one per 6 minutes, ten at once.
        for _ in 0..10 {
            drop(go(gate.admit("a", "site1", 1)));
        }
        let (until, reason) = deferred(gate.admit("a", "site1", 1));
        assert_eq!(reason, DeferReason::DailyQuota);
        assert_eq!(until, start() + chrono::Duration::minutes(6));
        let mut sent = 10;
        for _ in 0..(14 * 60 - 1) {
            clock.advance(Duration::from_secs(60));
            if let Admission::Go(_) = gate.admit("a", "site1", 1) {
                sent += 1;
            }
        }
        // 10:00 to midnight: never more than the quota, and the pace allowed what it promised.
        assert!(sent <= 240, "{sent}");
        assert!(sent >= 140, "{sent}");
        assert_eq!(gate.used_today("site1"), sent);
    }

    #[test]
    fn quota_interval_shares_the_daily_quota_between_devices() {
        use oemgate_core::PollContext;
        let (gate, clock) = gate(limits(1000, 100, Some(300), 100));
        let every =
            |secs: u64, context| Demand { interval: Duration::from_secs(secs), cost: 2, context };
        // One device polled at cost 2 every 7 min needs 412 a day: planned at 90% of 300.
        let one = gate.quota_interval("site", "d1", every(420, PollContext::Default)).unwrap();
        let close = |a: Duration, ms: u64| a.as_millis().abs_diff(u128::from(ms)) <= 1;
        assert!(close(one, 640_000), "{one:?}");
        // Three devices in the same context share it evenly: each every 1920 s.
        gate.quota_interval("site", "d2", every(420, PollContext::Default));
        let three = gate.quota_interval("site", "d3", every(420, PollContext::Default)).unwrap();
        assert!(close(three, 1_920_000), "{three:?}");
        assert_eq!(gate.planned_interval("site", "d1"), Some(three));
        assert_eq!(gate.stretched_devices(), 3);
        // A device that starts charging is served before the others.
        let charging =
            gate.quota_interval("site", "d2", every(110, PollContext::Charging)).unwrap();
        let default = gate.quota_interval("site", "d1", every(420, PollContext::Default)).unwrap();
        assert!(charging < three && default > three, "{charging:?} {default:?}");
        // A quota that suffices changes nothing; keys and quota-less vendors are independent.
        assert_eq!(
            gate.quota_interval("other", "d9", every(3600, PollContext::Default)),
            Some(Duration::from_secs(3600))
        );
        let (free, _) = super::tests::gate(limits(1000, 100, None, 100));
        assert_eq!(free.quota_interval("site", "d1", every(420, PollContext::Default)), None);
        // Forgetting a device gives its share back.
        gate.forget_device("d3");
        let two = gate.quota_interval("site", "d1", every(420, PollContext::Default)).unwrap();
        assert!(two < default);
        // Refunds give back reserved but unspent quota.
        drop(go(gate.admit("a", "site", 4)));
        gate.refund("site", 3);
        assert_eq!(gate.used_today("site"), 1);
        assert!((gate.quota_used_ratio() - 1.0 / 300.0).abs() < 1e-9);
        let _ = clock;
    }

    #[test]
    fn unmetered_requests_are_charged_and_an_overspent_window_is_waited_out() {
        let (gate, clock) = gate(limits(60, 10, None, 100));
        // Four discovery calls fit the burst: charged, nothing held.
        gate.spend("a", 4);
        for _ in 0..6 {
            drop(go(gate.admit("a", "a", 1)));
        }
        assert_eq!(deferred(gate.admit("a", "a", 1)).1, DeferReason::RateLimit);
        // Twenty more than the budget holds: the key waits a whole minute.
        gate.spend("b", 20);
        let (until, reason) = deferred(gate.admit("b", "b", 1));
        assert_eq!(
            (until, reason),
            (start() + chrono::Duration::seconds(60), DeferReason::VendorHold)
        );
        clock.advance(Duration::from_secs(60));
        drop(go(gate.admit("b", "b", 1)));
    }

    proptest! {
        /// Unmetered requests plus what the gate lets through afterwards never exceed what
        /// the declared rate allows in a vendor window starting at the first of them (SMA's
        /// bucket: the burst plus five minutes at the rate), however the unmetered requests
        /// come (one linking flow after another, a few calls each, seconds apart).
        #[test]
        fn unmetered_requests_and_later_admissions_stay_within_the_window(
            rpm in 1u32..120,
            burst_share in 0.0f64..1.0,
            batches in prop::collection::vec((1u32..8, 0u64..3), 1..40),
        ) {
            let burst = ((f64::from(rpm) * burst_share) as u32).clamp(1, rpm);
            let (gate, clock) = gate(limits(rpm, burst, None, 1000));
            let window = 300.0;
            let budget = f64::from(burst) + window * f64::from(rpm) / 60.0;
            let mut unmetered = 0u32;
            for (n, gap) in batches {
                gate.spend("k", n);
                unmetered += n;
                clock.advance(Duration::from_secs(gap));
            }
            let mut admitted = 0u32;
            let end = start() + chrono::Duration::seconds(window as i64);
            while clock.now() < end {
                while let Admission::Go(ticket) = gate.admit("k", "k", 1) {
                    drop(ticket);
                    admitted += 1;
                }
                clock.advance(Duration::from_millis(100));
            }
            // More unmetered requests than the window allows cannot be undone: then nothing
            // more may go in it.
            let room = (budget - f64::from(unmetered)).max(0.0);
            prop_assert!(
                f64::from(admitted) <= room,
                "{unmetered} unmetered, {admitted} admitted, the window allows {budget}"
            );
        }
    }

    #[test]
    fn concurrency_cap_releases_on_drop() {
        let (gate, _) = gate(limits(600, 100, None, 2));
        let a = go(gate.admit("a", "a", 1));
        let _b = go(gate.admit("a", "a", 1));
        assert_eq!(deferred(gate.admit("a", "a", 1)).1, DeferReason::Concurrency);
        drop(a);
        drop(go(gate.admit("a", "a", 1)));
    }

    #[test]
    fn retry_after_holds_the_key_and_breaker_opens_on_server_errors() {
        let (gate, clock) = gate(limits(600, 100, None, 10));
        gate.record("a", Some((ErrorKind::RateLimited, Some(Duration::from_secs(600)))));
        let (until, reason) = deferred(gate.admit("a", "a", 1));
        assert_eq!(
            (until, reason),
            (start() + chrono::Duration::seconds(600), DeferReason::VendorHold)
        );
        drop(go(gate.admit("b", "b", 1)));
        for _ in 0..5 {
            gate.record("b", Some((ErrorKind::Transient, None)));
        }
        assert_eq!(gate.breaker_state(), BreakerState::Open);
        assert_eq!(deferred(gate.admit("b", "b", 1)).1, DeferReason::BreakerOpen);
        clock.advance(Duration::from_secs(60));
        let probe = go(gate.admit("b", "b", 1));
        assert!(probe.probe);
        gate.record("b", None);
        assert_eq!(gate.breaker_state(), BreakerState::Closed);
    }

    #[test]
    fn error_rate_follows_recorded_outcomes_and_ages_out() {
        let (gate, clock) = gate(limits(600, 100, None, 10));
        for i in 0..12 {
            // One failure in three: above the 20 % threshold, never five in a row, so the
            // breaker stays closed while the rate is elevated.
            let outcome = (i % 3 == 0).then_some((ErrorKind::Transient, None));
            gate.record("a", outcome);
        }
        assert_eq!(gate.breaker_state(), BreakerState::Closed);
        assert!(gate.error_rate_elevated());
        clock.advance(Duration::from_secs(crate::error_rate::WINDOW_SECS as u64 + 60));
        assert!(!gate.error_rate_elevated());
    }

    proptest! {
        /// Whatever the pattern of attempts, no 60-second window sees more than
        /// burst + rate admissions for one key.
        #[test]
        fn never_exceeds_the_declared_rate(gaps in prop::collection::vec(0u64..4000, 1..400)) {
            let (gate, clock) = gate(limits(30, 5, None, 1000));
            let mut admitted: Vec<DateTime<Utc>> = Vec::new();
            for gap in gaps {
                clock.advance(Duration::from_millis(gap));
                if let Admission::Go(_) = gate.admit("k", "k", 1) {
                    admitted.push(clock.now());
                }
            }
            for (i, t) in admitted.iter().enumerate() {
                let window = admitted[i..].iter().take_while(|u| **u - *t < chrono::Duration::seconds(60)).count();
                prop_assert!(window <= 5 + 30, "{window} in a minute");
            }
        }
    }
}
