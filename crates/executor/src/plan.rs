//! The executor's decisions as pure functions: what to do next with a pending action given
//! the clock, its bookkeeping and the latest observation ([`plan`]); how a request's outcome
//! updates the bookkeeping ([`after_attempt`]); how long to back off ([`backoff`]); and the
//! per-vendor [`RetryBudget`].

use std::collections::VecDeque;
use std::time::Duration;

use chrono::{DateTime, Utc};
use oemgate_core::context::humanize::format_duration;
use oemgate_core::{ActionFailureReason, ActionState, DeviceState, ErrorKind, FailureReasonType};

use crate::action::{Bookkeeping, Target, reason};
use crate::config::{RetryBudgetConfig, VendorPolicy};
use crate::rules::{Precondition, precondition, reachable, reached};

/// What the latest snapshot says about a pending action's device.
#[derive(Clone, Debug, PartialEq)]
pub struct Observed {
    /// When the snapshot was read from the vendor.
    pub observed_at: DateTime<Utc>,
    /// Whether the device was reachable (`None`: not reported).
    pub reachable: Option<bool>,
    /// Whether the device was in the target state (`None`: the state does not say).
    pub reached: Option<bool>,
    /// The action's preconditions on that state.
    pub precondition: Precondition,
}

impl Observed {
    /// Evaluates `state`, observed at `observed_at`, for `target`.
    pub fn of(target: &Target, state: &DeviceState, observed_at: DateTime<Utc>) -> Self {
        Self {
            observed_at,
            reachable: reachable(state),
            reached: reached(target, state),
            precondition: precondition(target, state),
        }
    }
}

/// How an action ends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finish {
    /// The terminal state.
    pub state: ActionState,
    /// Why, unless CONFIRMED.
    pub reason: Option<ActionFailureReason>,
}

impl Finish {
    fn confirmed() -> Self {
        Self { state: ActionState::Confirmed, reason: None }
    }

    fn with(state: ActionState, kind: FailureReasonType, detail: impl Into<String>) -> Self {
        Self { state, reason: Some(reason(kind, detail)) }
    }
}

/// The next step for a pending action.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Leave PENDING.
    Finish(Finish),
    /// Ask the sleeping vehicle to wake up.
    Wake,
    /// Send the command.
    Send,
    /// Nothing to do before `until` (or before a new observation).
    Wait {
        /// When a time-driven step (resend, retry, wake, timeout, grace) is due.
        until: DateTime<Utc>,
    },
}

/// Everything [`plan`] looks at.
#[derive(Clone, Copy, Debug)]
pub struct PlanInput<'a> {
    /// The clock reading.
    pub now: DateTime<Utc>,
    /// When the action was created.
    pub created_at: DateTime<Utc>,
    /// When it times out.
    pub deadline: DateTime<Utc>,
    /// Whether the target is a vehicle (only vehicles sleep and get woken).
    pub is_vehicle: bool,
    /// The bookkeeping so far.
    pub book: &'a Bookkeeping,
    /// The latest snapshot's verdict, if there is a snapshot.
    pub observed: Option<&'a Observed>,
    /// The vendor's timings.
    pub policy: &'a VendorPolicy,
}

fn add(t: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    t + chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

/// Decides the next step of a pending action, and returns the bookkeeping updated with what
/// the observation taught (an unmet precondition and since when, a sleeping vehicle).
///
/// In order:
/// 1. The target state observed: CONFIRMED when a command may have caused it and the
///    observation is not older than the action; CANCELLED (UNNECESSARY) when no command
///    request has gone out yet.
/// 2. A precondition unmet for the vendor's grace period: CANCELLED (FAILED_PRECONDITION).
/// 3. The deadline passed: FAILED (NO_RESPONSE), or CANCELLED (FAILED_PRECONDITION) when a
///    precondition is unmet at that moment.
/// 4. A precondition unmet (within its grace): wait, sending nothing.
/// 5. A vehicle known to sleep: wake it (again after `wake_timeout`), then wait for an
///    observation that says it is reachable.
/// 6. Send the command when none was accepted yet, or `resend_interval` after the last one
///    accepted, never before `not_before` (backoff, `retry_after`, vendor limits).
pub fn plan(input: &PlanInput<'_>) -> (Step, Bookkeeping) {
    let now = input.now;
    let policy = input.policy;
    let mut book = input.book.clone();

    if let Some(o) = input.observed {
        if o.reached == Some(true) {
            if book.maybe_effective == 0 {
                let finish = Finish::with(
                    ActionState::Cancelled,
                    FailureReasonType::Unnecessary,
                    "The device reached the desired state before any command was sent.",
                );
                return (Step::Finish(finish), book);
            }
            if o.observed_at >= input.created_at {
                return (Step::Finish(Finish::confirmed()), book);
            }
        }
        match &o.precondition {
            Precondition::Unmet(why) => {
                if book.unmet_since.is_none() {
                    book.unmet_since = Some(o.observed_at.max(input.created_at));
                    book.unmet_reason = Some(why.clone());
                }
            }
            Precondition::Met => {
                if book.unmet_since.is_some_and(|since| o.observed_at > since) {
                    book.unmet_since = None;
                    book.unmet_reason = None;
                }
            }
            Precondition::Unknown => {}
        }
        if input.is_vehicle {
            match o.reachable {
                Some(false) if book.asleep_since.is_none() => {
                    book.asleep_since = Some(o.observed_at);
                }
                Some(true) if book.asleep_since.is_some_and(|since| o.observed_at > since) => {
                    book.asleep_since = None;
                }
                _ => {}
            }
        }
    }

    let unmet = |book: &Bookkeeping| {
        let why = book.unmet_reason.clone().unwrap_or_else(|| "a precondition failed".into());
        Finish::with(ActionState::Cancelled, FailureReasonType::FailedPrecondition, why)
    };
    if let Some(since) = book.unmet_since
        && now >= add(since, policy.precondition_grace)
    {
        let finish = unmet(&book);
        return (Step::Finish(finish), book);
    }
    if now >= input.deadline {
        if book.unmet_since.is_some() {
            let finish = unmet(&book);
            return (Step::Finish(finish), book);
        }
        let window = (input.deadline - input.created_at).to_std().unwrap_or_default();
        let finish = Finish::with(
            ActionState::Failed,
            FailureReasonType::NoResponse,
            format!(
                "The device did not reach the desired state within {}.",
                format_duration(window)
            ),
        );
        return (Step::Finish(finish), book);
    }
    let wait = |until: DateTime<Utc>| Step::Wait { until: until.min(input.deadline) };
    if let Some(since) = book.unmet_since {
        return (wait(add(since, policy.precondition_grace)), book);
    }
    let not_before = book.not_before.filter(|t| *t > now);
    if input.is_vehicle
        && !book.wake_unsupported
        && let Some(asleep) = book.asleep_since
    {
        let wake_due = match book.wake_sent_at {
            // A wake-up sent after the car was seen asleep is under way; a car that does not
            // come online (offline, out of coverage) is asked less and less often: wake-ups
            // are the most expensive request.
            Some(sent) if sent >= asleep => add(sent, wake_interval(policy, book.wakes)),
            _ => now,
        };
        let due = not_before.map_or(wake_due, |nb| nb.max(wake_due));
        return if now >= due { (Step::Wake, book) } else { (wait(due), book) };
    }
    let send_due = book.last_accepted_at.map_or(now, |t| add(t, policy.resend_interval));
    let due = not_before.map_or(send_due, |nb| nb.max(send_due));
    if now >= due { (Step::Send, book) } else { (wait(due), book) }
}

/// How long after the `wakes`-th wake-up request (1 = first) to ask again if the vehicle
/// is still not reachable: `wake_timeout`, doubling per further wake-up, at most 16 times.
pub fn wake_interval(policy: &VendorPolicy, wakes: u32) -> Duration {
    policy.wake_timeout.saturating_mul(1u32 << wakes.saturating_sub(1).min(4))
}

/// Which request an attempt was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attempt {
    /// The action's command.
    Command,
    /// A wake-up.
    Wake,
}

/// How a request went.
#[derive(Clone, Debug, PartialEq)]
pub enum AttemptResult {
    /// The vendor accepted it (not a confirmation).
    Accepted,
    /// Vendor limits (rate, quota, concurrency, a hold after a 429, an open breaker) held it
    /// back until `until`; nothing was sent.
    Deferred {
        /// The earliest time worth trying again.
        until: DateTime<Utc>,
    },
    /// It failed.
    Failed {
        /// The error's kind.
        kind: ErrorKind,
        /// How long the vendor asked us to wait.
        retry_after: Option<Duration>,
        /// The error message.
        message: String,
    },
}

/// The retry delays.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// First delay; doubles per consecutive failure.
    pub base: Duration,
    /// Longest delay (a `retry_after` may ask for longer).
    pub max: Duration,
}

/// The delay after the `failures`-th consecutive failure (1 = first): `base` doubling up to
/// `max`, with the upper half jittered by `jitter_unit` in [0, 1) so failed actions do not
/// return together; the vendor's `retry_after` wins when longer.
pub fn backoff(
    failures: u32,
    retry_after: Option<Duration>,
    config: Backoff,
    jitter_unit: f64,
) -> Duration {
    let exponent = failures.saturating_sub(1).min(16);
    let raw = config.base.saturating_mul(1u32 << exponent).min(config.max);
    let delay = raw.mul_f64(0.5 + 0.5 * jitter_unit.clamp(0.0, 1.0));
    match retry_after {
        Some(after) if after > delay => after,
        _ => delay,
    }
}

/// Updates the bookkeeping with the outcome of a request sent at `now`; returns how the action
/// ends when the outcome decides it (the vendor does not know the device, or it cannot do
/// this at all).
///
/// - Accepted: counted; the command is re-sent after the resend interval unless confirmed.
/// - Transient, Protocol, RateLimited, DeviceOffline, AuthExpired (after a failed refresh):
///   retried after [`backoff`] (honouring `retry_after`). A transient failure of a command
///   may still have reached the device, so it counts as maybe effective.
/// - DeviceAsleep: the vehicle is asleep; the next step wakes it.
/// - PreconditionFailed: the precondition is unmet from now (the grace period runs).
/// - Rejected (a refused value, or a no-op such as "already charging"), Unauthorized: tried
///   again after the resend interval; meanwhile the observation decides.
/// - NotFound: CANCELLED (NOT_FOUND). Unsupported: CANCELLED (FAILED_PRECONDITION).
pub fn after_attempt(
    book: &Bookkeeping,
    attempt: Attempt,
    result: &AttemptResult,
    now: DateTime<Utc>,
    policy: &VendorPolicy,
    retry: Backoff,
    jitter_unit: f64,
) -> (Bookkeeping, Option<Finish>) {
    let mut book = book.clone();
    match result {
        AttemptResult::Accepted => {
            match attempt {
                Attempt::Command => {
                    book.attempts += 1;
                    book.maybe_effective += 1;
                    book.accepted += 1;
                    book.last_accepted_at = Some(now);
                }
                Attempt::Wake => {
                    book.wakes += 1;
                    book.wake_sent_at = Some(now);
                }
            }
            book.failures = 0;
            book.not_before = None;
            book.last_error = None;
            (book, None)
        }
        AttemptResult::Deferred { until } => {
            book.not_before = Some((*until).max(now));
            (book, None)
        }
        AttemptResult::Failed { kind, retry_after, message } => {
            if attempt == Attempt::Command {
                book.attempts += 1;
            }
            book.last_error = Some(format!("{kind}: {message}"));
            let retry_later = |book: &mut Bookkeeping| {
                book.failures = book.failures.saturating_add(1);
                let delay = backoff(book.failures, *retry_after, retry, jitter_unit);
                book.not_before = Some(add(now, delay));
            };
            match kind {
                ErrorKind::Transient | ErrorKind::Protocol => {
                    if attempt == Attempt::Command {
                        book.maybe_effective += 1;
                    }
                    retry_later(&mut book);
                }
                ErrorKind::RateLimited | ErrorKind::DeviceOffline | ErrorKind::AuthExpired => {
                    retry_later(&mut book);
                }
                ErrorKind::DeviceAsleep
                    if attempt == Attempt::Command && !book.wake_unsupported =>
                {
                    book.asleep_since = Some(now);
                    book.not_before = None;
                }
                ErrorKind::Unsupported | ErrorKind::Rejected if attempt == Attempt::Wake => {
                    // No wake-up at this vendor: send the command as it is from now on.
                    book.wake_unsupported = true;
                    book.asleep_since = None;
                    book.not_before = None;
                }
                ErrorKind::DeviceAsleep => retry_later(&mut book),
                ErrorKind::PreconditionFailed => {
                    if book.unmet_since.is_none() {
                        book.unmet_since = Some(now);
                        book.unmet_reason = Some(message.clone());
                    }
                    retry_later(&mut book);
                }
                ErrorKind::Rejected | ErrorKind::Unauthorized => {
                    book.not_before = Some(add(now, policy.resend_interval));
                }
                ErrorKind::NotFound => {
                    let finish = Finish::with(
                        ActionState::Cancelled,
                        FailureReasonType::NotFound,
                        format!("The vendor does not know the device: {message}"),
                    );
                    return (book, Some(finish));
                }
                ErrorKind::Unsupported => {
                    let finish = Finish::with(
                        ActionState::Cancelled,
                        FailureReasonType::FailedPrecondition,
                        format!("The device cannot do this: {message}"),
                    );
                    return (book, Some(finish));
                }
            }
            (book, None)
        }
    }
}

/// A retry budget (see [`RetryBudgetConfig`]): first attempts deposit, retries withdraw.
/// Pure: every call takes the time.
#[derive(Clone, Debug)]
pub struct RetryBudget {
    config: RetryBudgetConfig,
    deposits: VecDeque<DateTime<Utc>>,
    withdrawals: VecDeque<DateTime<Utc>>,
}

impl RetryBudget {
    /// An empty budget.
    pub fn new(config: RetryBudgetConfig) -> Self {
        Self { config, deposits: VecDeque::new(), withdrawals: VecDeque::new() }
    }

    fn prune(&mut self, now: DateTime<Utc>) {
        let window =
            chrono::Duration::from_std(self.config.window).unwrap_or(chrono::Duration::MAX);
        let horizon = now.checked_sub_signed(window).unwrap_or(DateTime::<Utc>::MIN_UTC);
        while self.deposits.front().is_some_and(|t| *t <= horizon) {
            self.deposits.pop_front();
        }
        while self.withdrawals.front().is_some_and(|t| *t <= horizon) {
            self.withdrawals.pop_front();
        }
    }

    /// Records a first attempt at `now`.
    pub fn deposit(&mut self, now: DateTime<Utc>) {
        self.prune(now);
        self.deposits.push_back(now);
    }

    /// Retries allowed in the window ending at `now`.
    pub fn allowance(&mut self, now: DateTime<Utc>) -> usize {
        self.prune(now);
        let ratio = if self.config.ratio.is_finite() { self.config.ratio.max(0.0) } else { 0.0 };
        let earned = (ratio * self.deposits.len() as f64).floor() as usize;
        (self.config.min_retries as usize).saturating_add(earned)
    }

    /// Takes one retry at `now` if the budget allows; `false` means do not retry now.
    pub fn try_withdraw(&mut self, now: DateTime<Utc>) -> bool {
        let allowed = self.allowance(now);
        if self.withdrawals.len() < allowed {
            self.withdrawals.push_back(now);
            true
        } else {
            false
        }
    }

    /// Gives back the latest deposit (`retry == false`) or withdrawal (`retry == true`): the
    /// request it was taken for never went out (vendor limits held it back).
    pub fn refund(&mut self, retry: bool) {
        if retry {
            self.withdrawals.pop_back();
        } else {
            self.deposits.pop_back();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn t0() -> DateTime<Utc> {
        "2026-06-01T07:00:00Z".parse().unwrap()
    }

    fn secs(n: i64) -> chrono::Duration {
        chrono::Duration::seconds(n)
    }

    fn policy() -> VendorPolicy {
        VendorPolicy::default()
    }

    fn observed(at: DateTime<Utc>, reached: Option<bool>, pre: Precondition) -> Observed {
        Observed { observed_at: at, reachable: Some(true), reached, precondition: pre }
    }

    fn input<'a>(
        now: DateTime<Utc>,
        book: &'a Bookkeeping,
        observed: Option<&'a Observed>,
        policy: &'a VendorPolicy,
    ) -> PlanInput<'a> {
        PlanInput {
            now,
            created_at: t0(),
            deadline: t0() + secs(1800),
            is_vehicle: true,
            book,
            observed,
            policy,
        }
    }

    const RETRY: Backoff = Backoff { base: Duration::from_secs(5), max: Duration::from_secs(120) };

    #[test]
    fn a_new_action_sends_then_waits_for_the_resend_interval() {
        let p = policy();
        let book = Bookkeeping::default();
        assert_eq!(plan(&input(t0(), &book, None, &p)).0, Step::Send);
        let (book, end) =
            after_attempt(&book, Attempt::Command, &AttemptResult::Accepted, t0(), &p, RETRY, 0.0);
        assert!(end.is_none());
        assert_eq!(book.accepted, 1);
        let o = observed(t0() + secs(10), Some(false), Precondition::Met);
        assert_eq!(
            plan(&input(t0() + secs(10), &book, Some(&o), &p)).0,
            Step::Wait { until: t0() + secs(120) }
        );
        assert_eq!(plan(&input(t0() + secs(120), &book, Some(&o), &p)).0, Step::Send);
    }

    #[test]
    fn confirmation_needs_a_command_and_a_fresh_observation() {
        let p = policy();
        let untouched = Bookkeeping::default();
        let reached = observed(t0() + secs(5), Some(true), Precondition::Met);
        let (step, _) = plan(&input(t0() + secs(5), &untouched, Some(&reached), &p));
        let Step::Finish(f) = step else { panic!("{step:?}") };
        assert_eq!(f.state, ActionState::Cancelled);
        assert_eq!(f.reason.unwrap().r#type, FailureReasonType::Unnecessary);

        let sent = Bookkeeping {
            maybe_effective: 1,
            accepted: 1,
            last_accepted_at: Some(t0()),
            ..Default::default()
        };
        let (step, _) = plan(&input(t0() + secs(5), &sent, Some(&reached), &p));
        assert_eq!(step, Step::Finish(Finish::confirmed()));
        // A snapshot older than the action does not confirm it.
        let old = observed(t0() - secs(5), Some(true), Precondition::Met);
        let (step, _) = plan(&input(t0() + secs(5), &sent, Some(&old), &p));
        assert!(matches!(step, Step::Wait { .. }), "{step:?}");
    }

    #[test]
    fn timeout_is_exact_and_confirmation_wins_at_the_deadline() {
        let p = policy();
        let sent = Bookkeeping {
            maybe_effective: 1,
            accepted: 1,
            last_accepted_at: Some(t0()),
            ..Default::default()
        };
        let deadline = t0() + secs(1800);
        let not_yet = observed(deadline - secs(1), Some(false), Precondition::Met);
        let (step, _) = plan(&input(deadline - secs(1), &sent, Some(&not_yet), &p));
        assert!(!matches!(step, Step::Finish(_)), "{step:?}");
        let (step, _) = plan(&input(deadline, &sent, Some(&not_yet), &p));
        let Step::Finish(f) = step else { panic!() };
        assert_eq!(f.state, ActionState::Failed);
        assert_eq!(f.reason.unwrap().r#type, FailureReasonType::NoResponse);
        let reached = observed(deadline, Some(true), Precondition::Met);
        let (step, _) = plan(&input(deadline, &sent, Some(&reached), &p));
        assert_eq!(step, Step::Finish(Finish::confirmed()));
    }

    #[test]
    fn an_unmet_precondition_pauses_sending_and_cancels_after_the_grace() {
        let p = policy();
        let sent = Bookkeeping {
            maybe_effective: 1,
            accepted: 1,
            last_accepted_at: Some(t0()),
            ..Default::default()
        };
        let unplugged =
            observed(t0() + secs(30), Some(false), Precondition::Unmet("unplugged".into()));
        let (step, book) = plan(&input(t0() + secs(30), &sent, Some(&unplugged), &p));
        assert_eq!(book.unmet_since, Some(t0() + secs(30)));
        assert_eq!(step, Step::Wait { until: t0() + secs(330) });
        // Past the resend interval nothing is sent while unmet.
        let later =
            observed(t0() + secs(200), Some(false), Precondition::Unmet("unplugged".into()));
        let (step, book) = plan(&input(t0() + secs(200), &book, Some(&later), &p));
        assert!(matches!(step, Step::Wait { .. }));
        let (step, _) = plan(&input(t0() + secs(330), &book, Some(&later), &p));
        let Step::Finish(f) = step else { panic!() };
        assert_eq!(f.state, ActionState::Cancelled);
        let r = f.reason.unwrap();
        assert_eq!(r.r#type, FailureReasonType::FailedPrecondition);
        assert_eq!(r.detail, "unplugged");
        // Plugged in again in time: the grace clock stops and sending resumes.
        let back = observed(t0() + secs(250), Some(false), Precondition::Met);
        let (step, book) = plan(&input(t0() + secs(250), &book, Some(&back), &p));
        assert_eq!(book.unmet_since, None);
        assert_eq!(step, Step::Send);
    }

    #[test]
    fn a_sleeping_vehicle_is_woken_once_per_wake_timeout_then_commanded() {
        let p = policy();
        let book = Bookkeeping::default();
        let asleep = Observed {
            observed_at: t0() - secs(60),
            reachable: Some(false),
            reached: Some(false),
            precondition: Precondition::Met,
        };
        let (step, book) = plan(&input(t0(), &book, Some(&asleep), &p));
        assert_eq!(step, Step::Wake);
        let (book, _) =
            after_attempt(&book, Attempt::Wake, &AttemptResult::Accepted, t0(), &p, RETRY, 0.0);
        let still = Observed { observed_at: t0() + secs(10), ..asleep.clone() };
        let (step, book) = plan(&input(t0() + secs(10), &book, Some(&still), &p));
        assert_eq!(step, Step::Wait { until: t0() + secs(60) });
        let (step, _) = plan(&input(t0() + secs(60), &book, Some(&still), &p));
        assert_eq!(step, Step::Wake);
        // A car that stays unreachable is woken less and less often.
        let (twice, _) = after_attempt(
            &book,
            Attempt::Wake,
            &AttemptResult::Accepted,
            t0() + secs(60),
            &p,
            RETRY,
            0.0,
        );
        let (step, _) = plan(&input(t0() + secs(90), &twice, Some(&still), &p));
        assert_eq!(step, Step::Wait { until: t0() + secs(180) });
        assert_eq!(wake_interval(&p, 9), Duration::from_secs(16 * 60));
        let awake = Observed { observed_at: t0() + secs(25), reachable: Some(true), ..asleep };
        let (step, book) = plan(&input(t0() + secs(25), &book, Some(&awake), &p));
        assert_eq!(book.asleep_since, None);
        assert_eq!(step, Step::Send);
        // The command says asleep after all: wake again.
        let (book, _) = after_attempt(
            &book,
            Attempt::Command,
            &AttemptResult::Failed {
                kind: ErrorKind::DeviceAsleep,
                retry_after: None,
                message: "408".into(),
            },
            t0() + secs(26),
            &p,
            RETRY,
            0.0,
        );
        assert_eq!(plan(&input(t0() + secs(26), &book, Some(&awake), &p)).0, Step::Wake);
        assert_eq!(book.maybe_effective, 0);
        // A vendor without wake-ups: the command goes out as it is.
        let unsupported = AttemptResult::Failed {
            kind: ErrorKind::Unsupported,
            retry_after: None,
            message: "no wake_up".into(),
        };
        let (book, end) =
            after_attempt(&book, Attempt::Wake, &unsupported, t0() + secs(27), &p, RETRY, 0.0);
        assert!(end.is_none());
        assert_eq!(plan(&input(t0() + secs(27), &book, Some(&still), &p)).0, Step::Send);
    }

    #[test]
    fn errors_back_off_and_honour_retry_after() {
        let p = policy();
        let book = Bookkeeping::default();
        let limited = AttemptResult::Failed {
            kind: ErrorKind::RateLimited,
            retry_after: Some(Duration::from_secs(30)),
            message: "429".into(),
        };
        let (book, end) = after_attempt(&book, Attempt::Command, &limited, t0(), &p, RETRY, 0.0);
        assert!(end.is_none());
        assert_eq!(book.not_before, Some(t0() + secs(30)));
        assert_eq!(book.maybe_effective, 0);
        assert_eq!(
            plan(&input(t0() + secs(29), &book, None, &p)).0,
            Step::Wait { until: t0() + secs(30) }
        );
        assert_eq!(plan(&input(t0() + secs(30), &book, None, &p)).0, Step::Send);
        let transient = AttemptResult::Failed {
            kind: ErrorKind::Transient,
            retry_after: None,
            message: "503".into(),
        };
        let (book, _) =
            after_attempt(&book, Attempt::Command, &transient, t0() + secs(30), &p, RETRY, 0.0);
        assert_eq!(book.failures, 2);
        assert_eq!(book.maybe_effective, 1, "a 5xx may have reached the car");
        assert_eq!(book.not_before, Some(t0() + secs(35)));
        for (kind, state, reason) in [
            (ErrorKind::NotFound, ActionState::Cancelled, FailureReasonType::NotFound),
            (ErrorKind::Unsupported, ActionState::Cancelled, FailureReasonType::FailedPrecondition),
        ] {
            let failed = AttemptResult::Failed { kind, retry_after: None, message: "x".into() };
            let (_, end) = after_attempt(&book, Attempt::Command, &failed, t0(), &p, RETRY, 0.0);
            let end = end.unwrap();
            assert_eq!((end.state, end.reason.unwrap().r#type), (state, reason));
        }
        let rejected = AttemptResult::Failed {
            kind: ErrorKind::Rejected,
            retry_after: None,
            message: "is_charging".into(),
        };
        let (book, _) = after_attempt(&book, Attempt::Command, &rejected, t0(), &p, RETRY, 0.0);
        assert_eq!(book.not_before, Some(t0() + secs(120)));
        let deferred = AttemptResult::Deferred { until: t0() + secs(7) };
        let (book, _) = after_attempt(&book, Attempt::Command, &deferred, t0(), &p, RETRY, 0.0);
        assert_eq!(book.not_before, Some(t0() + secs(7)));
    }

    #[test]
    fn the_budget_allows_min_retries_plus_a_share_of_first_attempts() {
        let config =
            RetryBudgetConfig { window: Duration::from_secs(60), min_retries: 2, ratio: 0.5 };
        let mut budget = RetryBudget::new(config);
        assert!(budget.try_withdraw(t0()));
        assert!(budget.try_withdraw(t0()));
        assert!(!budget.try_withdraw(t0()));
        budget.deposit(t0());
        budget.deposit(t0());
        assert!(budget.try_withdraw(t0()));
        assert!(!budget.try_withdraw(t0()));
        // The window slides.
        assert!(budget.try_withdraw(t0() + secs(60)));
    }

    fn arb_book() -> impl Strategy<Value = Bookkeeping> {
        (
            0u32..3,
            proptest::option::of(-100i64..2000),
            proptest::option::of(-100i64..2000),
            proptest::option::of(-100i64..2000),
            proptest::option::of(-100i64..2000),
            proptest::option::of(-100i64..2000),
        )
            .prop_map(|(effective, accepted, not_before, unmet, asleep, wake)| {
                Bookkeeping {
                    maybe_effective: effective,
                    accepted: effective,
                    last_accepted_at: accepted.filter(|_| effective > 0).map(|s| t0() + secs(s)),
                    not_before: not_before.map(|s| t0() + secs(s)),
                    unmet_since: unmet.map(|s| t0() + secs(s)),
                    unmet_reason: unmet.map(|_| "unplugged".into()),
                    asleep_since: asleep.map(|s| t0() + secs(s)),
                    wake_sent_at: wake.map(|s| t0() + secs(s)),
                    ..Default::default()
                }
            })
    }

    fn arb_observed() -> impl Strategy<Value = Option<Observed>> {
        proptest::option::of(
            (
                -100i64..2000,
                proptest::option::of(any::<bool>()),
                proptest::option::of(any::<bool>()),
                0u8..3,
            )
                .prop_map(|(at, reachable, reached, pre)| Observed {
                    observed_at: t0() + secs(at),
                    reachable,
                    reached,
                    precondition: match pre {
                        0 => Precondition::Met,
                        1 => Precondition::Unknown,
                        _ => Precondition::Unmet("unplugged".into()),
                    },
                }),
        )
    }

    proptest! {
        /// Whatever the state, the plan never lets an action outlive its deadline, never
        /// confirms without a matching observation, never sends before `not_before`, and
        /// any wait ends in the future but no later than the deadline.
        #[test]
        fn plans_respect_deadline_confirmation_and_backoff(
            book in arb_book(),
            observed in arb_observed(),
            now in 0i64..2100,
            vehicle in any::<bool>(),
        ) {
            let p = policy();
            let now = t0() + secs(now);
            let mut i = input(now, &book, observed.as_ref(), &p);
            i.is_vehicle = vehicle;
            let (step, _) = plan(&i);
            let deadline = t0() + secs(1800);
            match step {
                Step::Finish(f) => {
                    let reached = observed.as_ref().is_some_and(|o| o.reached == Some(true));
                    if f.state == ActionState::Confirmed {
                        prop_assert!(reached);
                        prop_assert!(book.maybe_effective > 0);
                    }
                    if f.state == ActionState::Failed {
                        prop_assert!(now >= deadline);
                    }
                }
                Step::Send | Step::Wake => {
                    prop_assert!(now < deadline);
                    prop_assert!(book.not_before.is_none_or(|nb| nb <= now));
                    if step == Step::Send {
                        prop_assert!(book.last_accepted_at.is_none_or(|t| now >= t + secs(120)));
                    }
                }
                Step::Wait { until } => {
                    prop_assert!(now < deadline);
                    prop_assert!(until > now, "wait until {until} at {now}");
                    prop_assert!(until <= deadline);
                }
            }
        }

        #[test]
        fn backoff_honours_retry_after_and_stays_bounded(
            failures in 1u32..40,
            after in proptest::option::of(0u64..10_000),
            j in 0.0f64..1.0,
        ) {
            let after = after.map(Duration::from_secs);
            let d = backoff(failures, after, RETRY, j);
            prop_assert!(after.is_none_or(|a| d >= a));
            prop_assert!(d <= RETRY.max.max(after.unwrap_or_default()));
            prop_assert!(d >= RETRY.base / 2);
            let next = backoff(failures + 1, after, RETRY, j);
            prop_assert!(next >= d);
        }

        /// In any window ending at a granted retry, granted retries never exceed the
        /// minimum plus the ratio of first attempts in that window.
        #[test]
        fn the_budget_never_allows_a_storm(
            ops in prop::collection::vec((0u64..5_000, any::<bool>()), 1..300),
        ) {
            let config = RetryBudgetConfig { window: Duration::from_secs(60), min_retries: 3, ratio: 0.25 };
            let mut budget = RetryBudget::new(config);
            let mut now = t0();
            let mut deposits = Vec::new();
            let mut granted = Vec::new();
            for (gap_ms, deposit) in ops {
                now += chrono::Duration::milliseconds(gap_ms as i64);
                if deposit {
                    budget.deposit(now);
                    deposits.push(now);
                } else if budget.try_withdraw(now) {
                    granted.push(now);
                }
            }
            for t in &granted {
                let in_window = |x: &&DateTime<Utc>| **x > *t - secs(60) && **x <= *t;
                let g = granted.iter().filter(in_window).count();
                let d = deposits.iter().filter(in_window).count();
                prop_assert!(g <= 3 + (0.25 * d as f64).floor() as usize, "{g} retries for {d} first attempts");
            }
        }
    }
}
