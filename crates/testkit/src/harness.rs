//! What a vendor crate gives the suite: a [`ConformanceTarget`] that starts a [`Harness`].

use std::any::Any;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use oemgate_core::{AccountRef, Command, DeviceRef, ManualClock, VendorAdapter, VendorLimits};

use crate::expect::Expectation;

pub use oemgate_sim::Fault;

/// The seed every check uses unless `OEMGATE_TESTKIT_SEED` says otherwise.
pub const DEFAULT_SEED: u64 = 0x0E36_A7E5;

/// The request timeout the adapter gets in every check but the timeout check.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The request timeout the adapter gets in the timeout check (real time: reqwest timeouts
/// cannot run on a manual clock).
pub const SHORT_REQUEST_TIMEOUT: Duration = Duration::from_millis(300);

/// How [`ConformanceTarget::start`] must build the harness.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StartOptions {
    /// Seed of the simulated world (same seed, same world, same devices and cases).
    pub seed: u64,
    /// The per-request timeout to build the adapter with.
    pub request_timeout: Duration,
}

impl Default for StartOptions {
    fn default() -> Self {
        Self { seed: DEFAULT_SEED, request_timeout: DEFAULT_REQUEST_TIMEOUT }
    }
}

impl StartOptions {
    /// The default options with the seed from `OEMGATE_TESTKIT_SEED` (decimal or `0x` hex)
    /// when set.
    pub fn from_env() -> Self {
        let seed = std::env::var("OEMGATE_TESTKIT_SEED").ok().and_then(|s| parse_seed(&s));
        Self { seed: seed.unwrap_or(DEFAULT_SEED), ..Self::default() }
    }
}

fn parse_seed(s: &str) -> Option<u64> {
    let s = s.trim();
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => s.parse().ok(),
    }
}

/// How the vendor's authentication behaves, as far as the checks care.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AuthBehaviour {
    /// The vendor issues refresh tokens (OAuth). `false` for API-key vendors: the
    /// expired-token check is skipped and a refresh must be `Unauthorized`.
    pub refreshes: bool,
    /// A refresh token works once; reusing it must be `Unauthorized`.
    pub single_use_refresh_tokens: bool,
    /// The vendor answers a revoked access token exactly like an expired one, so a call may
    /// be `AuthExpired` (the refresh that follows must still be `Unauthorized`).
    pub revoked_token_reads_as_expired: bool,
}

impl Default for AuthBehaviour {
    fn default() -> Self {
        Self {
            refreshes: true,
            single_use_refresh_tokens: false,
            revoked_token_reads_as_expired: false,
        }
    }
}

/// Vendor-specific hooks into the simulator: authentication and faults.
///
/// On `oemgate_sim::World` the fault hooks are one line each:
/// `world.faults().set(VENDOR, fault, None)` and `world.faults().clear(VENDOR)`, and
/// revocation can be `world.faults().set(VENDOR, Fault::RevokeTokens, None)`.
#[async_trait]
pub trait VendorControl: Send + Sync {
    /// Makes the account's access token expired. Prefer expiring it in the simulator (so the
    /// vendor's 401 path runs); an implementation may also move `expires_at` into the past.
    async fn expire_access_token(&self, account: &mut AccountRef);

    /// Revokes the account's access and refresh tokens in the simulator (the user removed
    /// the app's access at the vendor), effective from the next request.
    async fn revoke_credentials(&self, account: &AccountRef);

    /// Injects `fault` into every following request of this vendor until
    /// [`VendorControl::clear_faults`]. The suite injects `RateLimit`, `ServerError`,
    /// `Outage`, `Hang`, `Timeout`, `Malformed` and `Truncated`, rendered as the table in
    /// `oemgate_sim::fault` says (`Truncated`: a 200 whose JSON is cut short).
    fn inject_fault(&self, fault: Fault);

    /// Removes every injected fault.
    fn clear_faults(&self);

    /// Called after the suite moved the [`ManualClock`]: a world that does not advance lazily
    /// steps to the clock's time here. The default does nothing.
    fn settle(&self) {}
}

/// Counts the HTTP requests the vendor's simulator received: [`SimRequests`] over
/// `SimHost`'s request log, or any `Fn() -> u64` closure.
pub trait RequestCounter: Send + Sync {
    /// Requests received so far.
    fn count(&self) -> u64;
}

/// The requests a `SimHost` received under one vendor's prefix.
#[derive(Clone, Debug)]
pub struct SimRequests {
    log: oemgate_sim::RequestLog,
    prefix: String,
}

impl SimRequests {
    /// Counts `log`'s requests under `prefix` (`"/tesla"`).
    pub fn new(log: oemgate_sim::RequestLog, prefix: impl Into<String>) -> Self {
        Self { log, prefix: prefix.into() }
    }
}

impl RequestCounter for SimRequests {
    fn count(&self) -> u64 {
        u64::try_from(self.log.count(&self.prefix)).unwrap_or(u64::MAX)
    }
}

impl<F> RequestCounter for F
where
    F: Fn() -> u64 + Send + Sync,
{
    fn count(&self) -> u64 {
        self()
    }
}

/// A device the world holds for the linked account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExpectedDevice {
    /// The reference to poll with, built as the gateway builds it from discovery: a fresh
    /// `id`, the account's `user_id`, and the `device_type`, `vendor_id` and `site_id` that
    /// discovery must report.
    pub device: DeviceRef,
    /// The world's id for the device (what truth and predicates look up).
    pub world_id: String,
}

impl ExpectedDevice {
    /// A device and its world id.
    pub fn new(device: DeviceRef, world_id: impl Into<String>) -> Self {
        Self { device, world_id: world_id.into() }
    }
}

/// A closure over the world.
pub type WorldFn<W> = Box<dyn Fn(&W) + Send + Sync>;
/// A predicate on the world.
pub type WorldPredicate<W> = Box<dyn Fn(&W) -> bool + Send + Sync>;
/// The world's ground truth for a device, as expectations on its normalized resource.
pub type TruthFn<W> = Box<dyn Fn(&W, &ExpectedDevice) -> Vec<Expectation> + Send + Sync>;

/// A supported command and the proof, in the world, that it took effect.
pub struct CommandCase<W> {
    /// The device to command.
    pub device: DeviceRef,
    /// The command.
    pub command: Command,
    /// What the command does, for failure messages ("vehicle starts charging").
    pub effect: String,
    /// Puts the device where the command is possible and its effect not yet true (plugged
    /// in, awake, not charging). Runs before anything else.
    pub prepare: Option<WorldFn<W>>,
    /// How far the suite moves the clock after the vendor accepted the command: beyond the
    /// world's command latency (set a deterministic latency profile in `start`).
    pub settle: Duration,
    /// True once the command took effect.
    pub took_effect: WorldPredicate<W>,
}

impl<W> CommandCase<W> {
    /// A case: `device` gets `command`, and `took_effect` holds `settle` later.
    pub fn new(
        device: DeviceRef,
        command: Command,
        effect: impl Into<String>,
        settle: Duration,
        took_effect: impl Fn(&W) -> bool + Send + Sync + 'static,
    ) -> Self {
        Self {
            device,
            command,
            effect: effect.into(),
            prepare: None,
            settle,
            took_effect: Box::new(took_effect),
        }
    }

    /// Adds the preparation of the world.
    pub fn prepare(mut self, prepare: impl Fn(&W) + Send + Sync + 'static) -> Self {
        self.prepare = Some(Box::new(prepare));
        self
    }
}

impl<W> fmt::Debug for CommandCase<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CommandCase")
            .field("device", &self.device.vendor_id)
            .field("command", &self.command)
            .field("effect", &self.effect)
            .field("settle", &self.settle)
            .finish_non_exhaustive()
    }
}

/// A command the vendor or device cannot carry out: it must fail as `Unsupported` before any
/// request, and the device's capability for it must be false with an intervention.
#[derive(Clone, Debug, PartialEq)]
pub struct UnsupportedCase {
    /// The device.
    pub device: DeviceRef,
    /// The command it cannot do.
    pub command: Command,
}

impl UnsupportedCase {
    /// A case.
    pub fn new(device: DeviceRef, command: Command) -> Self {
        Self { device, command }
    }
}

/// A device that sleeps in the world: reading it must not wake it.
pub struct SleepCase<W> {
    /// The sleeping device.
    pub device: DeviceRef,
    /// True while the device still sleeps in the world.
    pub asleep: WorldPredicate<W>,
}

impl<W> SleepCase<W> {
    /// A case.
    pub fn new(device: DeviceRef, asleep: impl Fn(&W) -> bool + Send + Sync + 'static) -> Self {
        Self { device, asleep: Box::new(asleep) }
    }
}

/// A fresh simulated world, its vendor simulator served on loopback, an adapter pointed at
/// it and a linked account: everything one check needs.
pub struct Harness<W> {
    /// The adapter under test, built with [`StartOptions::request_timeout`] and `clock`.
    pub adapter: Arc<dyn VendorAdapter>,
    /// The linked account (credentials from the simulator's own linking flow).
    pub account: AccountRef,
    /// The clock the world, the simulator and the adapter all read.
    pub clock: Arc<ManualClock>,
    /// The simulated world (`oemgate_sim::World` for every real adapter).
    pub world: W,
    /// Requests the vendor's simulator received.
    pub requests: Arc<dyn RequestCounter>,
    /// Every device the world holds for `account` (the world SHOULD also hold another
    /// account's devices, which discovery must not return).
    pub devices: Vec<ExpectedDevice>,
    /// Every command the adapter supports, at least one per device class that takes commands.
    pub commands: Vec<CommandCase<W>>,
    /// Commands a device cannot do (capability false). Class mismatches are added by the
    /// suite.
    pub unsupported: Vec<UnsupportedCase>,
    /// Sleeping devices; required when the vendor has vehicles.
    pub sleeping: Vec<SleepCase<W>>,
    /// Authentication and fault hooks.
    pub control: Box<dyn VendorControl>,
    /// The world's ground truth per device, read at the clock's current time.
    pub truth: TruthFn<W>,
    /// Whatever must live as long as the harness (the server task guard, the `SimHost`).
    pub keep_alive: Vec<Box<dyn Any + Send>>,
}

impl<W> fmt::Debug for Harness<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Harness")
            .field("vendor", &self.adapter.info().name)
            .field("account", &self.account.account_id)
            .field("devices", &self.devices)
            .field("commands", &self.commands)
            .field("unsupported", &self.unsupported)
            .finish_non_exhaustive()
    }
}

/// One vendor adapter plus its simulator, as the suite sees it. Implemented once per vendor
/// crate, in `tests/conformance.rs`.
#[async_trait]
pub trait ConformanceTarget: Send + Sync {
    /// The simulated world type (`oemgate_sim::World`).
    type World: Send + Sync + 'static;

    /// Builds a fresh world from `options.seed` with this vendor's devices (and another
    /// account's), serves the vendor simulator on `127.0.0.1:0` through the world's HTTP host
    /// (so requests are counted), builds the adapter with `options.request_timeout`, a
    /// [`ManualClock`] and the simulator's URL, and links an account through the vendor's
    /// own flow (authorization code, API key).
    async fn start(&self, options: StartOptions) -> anyhow::Result<Harness<Self::World>>;

    /// The vendor's published limits (its documentation, cited in a comment), which the
    /// adapter's declared `limits()` must not exceed.
    fn published_limits(&self) -> VendorLimits;

    /// How the vendor's authentication behaves.
    fn auth(&self) -> AuthBehaviour {
        AuthBehaviour::default()
    }
}

/// Aborts a spawned server task when dropped; put it in [`Harness::keep_alive`].
#[derive(Debug)]
pub struct ServerGuard(tokio::task::AbortHandle);

impl ServerGuard {
    /// Guards the task behind `handle`.
    pub fn new<T>(handle: tokio::task::JoinHandle<T>) -> Self {
        Self(handle.abort_handle())
    }
}

impl Drop for ServerGuard {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_parse() {
        assert_eq!(parse_seed("42"), Some(42));
        assert_eq!(parse_seed(" 0x2A "), Some(42));
        assert_eq!(parse_seed("0Xff"), Some(255));
        assert_eq!(parse_seed("x"), None);
        assert_eq!(StartOptions::default().request_timeout, DEFAULT_REQUEST_TIMEOUT);
    }

    #[test]
    fn closures_count_requests() {
        let counter: Arc<dyn RequestCounter> = Arc::new(|| 7u64);
        assert_eq!(counter.count(), 7);
    }
}
