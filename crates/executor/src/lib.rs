//! oemgate-executor: device actions that are retried until the device confirms them.
//!
//! An API client asks for a target state (start or stop charging, a maximum current, a
//! battery operation mode, an HVAC permanent hold or schedule); the executor stores an
//! action and drives it until the device's *observed* state matches, the action times out,
//! a precondition stays unmet, or it is cancelled or superseded. A vendor's HTTP 200 to a
//! command is never confirmation: only a snapshot the poller stored confirms.
//!
//! Layout:
//! - [`action`]: the request, the [`Target`], the Enode-style [`VendorAction`] (the core
//!   model's action types, serialized exactly) and the executor's [`Bookkeeping`], stored
//!   together in one `ActionRecord` (`{"kind", "action", "executor"}`).
//! - [`rules`] (pure): target matching, preconditions, capabilities and request validation.
//! - [`plan`] (pure): the next step of a pending action, how a request's outcome updates the
//!   bookkeeping, backoff, and the per-vendor [`RetryBudget`].
//! - [`config`]: [`ExecutorConfig`] with per-vendor [`VendorPolicy`] overrides.
//! - [`executor`]: [`Executor`], the I/O edge: create, get and cancel for the API; `tick`
//!   and `run` drive every pending action.
//!
//! # Lifecycle
//!
//! - **Creation** refuses (400) what is invalid (named field), what the device cannot do
//!   (capabilities of the latest snapshot) and preconditions unlikely to change within the
//!   window (unplugged, no power, fault, fully charged, already in the desired state). One
//!   action per target: the same kind and target state returns the pending action; another
//!   one cancels it (CANCELLED, CONFLICT).
//! - **Sending**: the command goes out through the vendor's adapter and the vendor gate
//!   shared with the poller. Transient failures, rate limits (honouring `retry_after`),
//!   offline devices and expired credentials (refreshed once with compare-and-set) are
//!   retried with exponential backoff; retries spend a per-vendor budget. A vehicle known to
//!   sleep (its snapshot says unreachable, or the command says asleep) is sent `WakeUp`
//!   first, and the command follows once a snapshot shows it reachable.
//! - **Confirmation**: the poller polls a device with a pending action on the
//!   `action_pending` delay, and the executor brings a poll forward after each accepted
//!   request. The observed state confirms (START: `PLUGGED_IN:CHARGING`; STOP:
//!   `PLUGGED_IN:STOPPED` or `PLUGGED_IN:COMPLETE`; `maxCurrent`; `operationMode`;
//!   thermostat mode, setpoints and hold type). Reaching the target before any command
//!   request went out is CANCELLED (UNNECESSARY). An unconfirmed command is re-sent after
//!   the vendor's resend interval.
//! - **Ending**: FAILED (NO_RESPONSE) at the timeout; CANCELLED (FAILED_PRECONDITION) when
//!   a precondition stays unmet for the grace period; CANCELLED (REQUESTED_CANCELLATION) on
//!   cancel; CANCELLED (NOT_FOUND) when the device is deleted. Every change appends a
//!   `user:vendor-action:updated` event with `updatedFields`.
//! - **Durability**: actions live in the store; any executor resumes every pending action.
//!   An instance takes a lease (owner and expiry in the bookkeeping, written with the
//!   record's compare-and-set version) before it sends, so one instance drives an action
//!   at a time and another takes over when the lease runs out.

pub mod action;
pub mod config;
pub mod executor;
pub mod plan;
pub mod rules;

pub use action::{ActionRequest, Bookkeeping, StoredAction, Target, VendorAction};
pub use config::{ExecutorConfig, RetryBudgetConfig, VendorOverride, VendorPolicy};
pub use executor::{
    ACTION_EVENT, CancelError, CreateError, Created, Executor, ExecutorError, ExecutorStats,
    TickReport,
};
pub use plan::RetryBudget;
pub use rules::Refusal;
