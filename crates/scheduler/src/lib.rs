//! oemgate-scheduler: decides when each device is read and runs the reads.
//!
//! Layout:
//! - [`planner`]: pure functions. Which [`PollContext`](oemgate_core::PollContext) an
//!   observation puts a device in, and when its next poll is due so that a change is seen
//!   within the context's bound. [`PollPolicy`] makes that choice pluggable: the adaptive
//!   [`Planner`] is the default; the load test compares fixed intervals with it.
//! - [`diff`]: pure functions over resource JSON: which fields changed between two snapshots,
//!   and how a sleeping vehicle's partial read merges into its last known state.
//! - [`error_rate`]: a vendor's failed share of calls over a rolling window (pure), for the
//!   API's vendor health.
//! - [`breaker`]: the per-vendor circuit breaker (pure state machine).
//! - [`limits`]: [`VendorGate`](limits::VendorGate), the declared vendor limits enforced before
//!   a request goes out (rate per scope key, daily quota pace and count, concurrency, holds
//!   after rate-limit answers, the breaker).
//! - [`quota`]: pure. How a daily quota too small for every device's bound is shared, by
//!   context priority (pending action, charging, default, sleeping).
//! - [`poller`]: the I/O edge. Claims due devices from the store's schedule, calls the
//!   vendor adapter, stores the snapshot, appends change events and reschedules.
//!
//! The scheduler owns retries: adapters classify errors, the poller decides what to do
//! (refresh credentials on `AuthExpired`, honour `retry_after`, back off after errors).

pub mod breaker;
pub mod diff;
pub mod error_rate;
pub mod limits;
pub mod planner;
pub mod poller;
pub mod quota;

pub use planner::{Planner, PlannerConfig, PollPolicy, detect_context};
pub use poller::{
    Adapters, PollOutcome, Poller, PollerConfig, PollerStats, SchedulerError, TickReport,
};
