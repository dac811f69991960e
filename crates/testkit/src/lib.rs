//! oemgate-testkit: the conformance suite every vendor adapter runs against its simulator.
//!
//! `docs/adapter-spec.md` says what an adapter must do; this crate checks it, the way
//! vector's component specs are enforced by a shared compliance test and sqlx runs one
//! conformance suite per driver. A vendor crate adds `oemgate-testkit` as a dev-dependency,
//! implements [`ConformanceTarget`] once in `tests/conformance.rs`, and invokes
//! [`conformance_tests!`], which expands to one `#[test]` per check:
//!
//! ```ignore
//! use oemgate_testkit::{ConformanceTarget, Harness, StartOptions};
//!
//! struct Tesla;
//!
//! #[async_trait::async_trait]
//! impl ConformanceTarget for Tesla {
//!     type World = oemgate_sim::World;
//!     async fn start(&self, options: StartOptions) -> anyhow::Result<Harness<Self::World>> {
//!         // seeded world + devices, SimHost on 127.0.0.1:0, adapter with
//!         // options.request_timeout and a ManualClock, account linked via the sim's OAuth
//!         todo!()
//!     }
//!     fn published_limits(&self) -> oemgate_core::VendorLimits { todo!() }
//! }
//!
//! oemgate_testkit::conformance_tests!(Tesla);   // tests conformance::discovery, ...
//! ```
//!
//! The checks (each a public async fn taking the target, each on a fresh [`Harness`]):
//!
//! | check | rule |
//! |---|---|
//! | [`discovery`] | discover returns exactly the account's devices, right types and sites |
//! | [`poll_matches_world`] | each poll matches the world's truth within unit tolerance |
//! | [`commands_take_effect`] | every supported command changes the world after its latency |
//! | [`unsupported_commands`] | unsupported commands fail as `Unsupported` before any request |
//! | [`rate_limit`] | 429 -> `RateLimited` with `retry_after` |
//! | [`server_errors`] | 5xx and outages -> `Transient` |
//! | [`timeouts`] | hangs and timeouts -> `Transient` within the request timeout |
//! | [`bad_bodies`] | malformed and truncated bodies -> `Protocol`, serde source, no panic |
//! | [`expired_token`] | `AuthExpired`, one refresh, then success; spent refresh tokens fail |
//! | [`revoked_credentials`] | `Unauthorized` on calls and on refresh |
//! | [`declared_limits`] | `limits()` sane and no more generous than the published limits |
//! | [`request_accounting`] | `Observation::requests` equals what the simulator received |
//! | [`reads_never_wake`] | reading a sleeping device leaves it asleep, reported asleep |
//!
//! Time: the world, the simulator and the adapter share the harness's [`ManualClock`]; checks
//! move it and never sleep. The one exception is [`timeouts`]: reqwest timeouts are real
//! time, so that check asks for an adapter built with [`SHORT_REQUEST_TIMEOUT`] (300 ms) and
//! a simulator that hangs; it takes about a second.
//!
//! The world is a type parameter ([`ConformanceTarget::World`]), `oemgate_sim::World` for
//! every real adapter (the kit's own self-test uses a small fake). Faults
//! ([`Fault`], re-exported from oemgate-sim) and token expiry and revocation go through the
//! target's [`VendorControl`] hooks; request counts through a [`RequestCounter`]
//! ([`SimRequests`] over `SimHost`'s request log).
//!
//! Failures panic with the vendor, the check, the seed and every broken rule found.
//! `OEMGATE_TESTKIT_SEED` replays a seed.
//!
//! [`ManualClock`]: oemgate_core::ManualClock

mod checks;
pub mod expect;
mod harness;
pub mod rules;

use std::future::Future;

pub use checks::*;
pub use expect::{Expectation, Expected, Mismatch, Tolerance};
pub use harness::*;

/// Runs `future` (a check) to completion on a fresh multi-threaded tokio runtime. Used by
/// [`conformance_tests!`]; also handy in a plain `#[test]`.
pub fn block_on<F: Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime for the conformance check")
        .block_on(future)
}

/// Expands to a module (default name `conformance`) with one `#[test]` per check, each
/// running the check against the target expression on its own tokio runtime:
///
/// ```ignore
/// oemgate_testkit::conformance_tests!(TeslaTarget::default());
/// oemgate_testkit::conformance_tests!(mod eu_region, TeslaTarget::eu());
/// ```
///
/// The expression is evaluated once per test, inside the module (which imports `super::*`).
#[macro_export]
macro_rules! conformance_tests {
    ($target:expr $(,)?) => {
        $crate::conformance_tests!(mod conformance, $target);
    };
    (mod $module:ident, $target:expr $(,)?) => {
        #[cfg(test)]
        mod $module {
            #[allow(unused_imports)]
            use super::*;

            $crate::conformance_tests!(@check $target;
                discovery,
                poll_matches_world,
                commands_take_effect,
                unsupported_commands,
                rate_limit,
                server_errors,
                timeouts,
                bad_bodies,
                expired_token,
                revoked_credentials,
                declared_limits,
                request_accounting,
                reads_never_wake,
            );
        }
    };
    (@check $target:expr; $($check:ident),+ $(,)?) => {
        $(
            #[test]
            fn $check() {
                $crate::block_on($crate::$check(&$target));
            }
        )+
    };
}
