//! The checks. Each starts its own fresh harness and panics with a message naming the vendor,
//! the check and the seed on the first rule it finds broken.

use std::collections::{BTreeMap, BTreeSet};
use std::error::Error as StdError;
use std::fmt::{self, Display};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use oemgate_core::{
    AccountRef, AdapterError, AdapterResult, Clock, Command, DeviceRef, ErrorKind, Observation,
    VendorType,
};
use serde_json::Value;

use crate::expect::{Expectation, check_all, lookup};
use crate::harness::{
    ConformanceTarget, Fault, Harness, SHORT_REQUEST_TIMEOUT, StartOptions, UnsupportedCase,
};
use crate::rules::{
    capability_pointer, commands_with_capability, foreign_command, limit_violations,
    takes_commands, timestamp_problems,
};

/// The `Retry-After` the rate-limit check injects.
pub const INJECTED_RETRY_AFTER: Duration = Duration::from_secs(37);

/// How long the timeout check lets a call run (real time) before it fails the adapter for
/// having no request timeout.
pub const TIMEOUT_CHECK_LIMIT: Duration = Duration::from_secs(5);

/// Runs every check, each on a fresh harness.
pub async fn run_all<T: ConformanceTarget + ?Sized>(target: &T) {
    discovery(target).await;
    poll_matches_world(target).await;
    commands_take_effect(target).await;
    unsupported_commands(target).await;
    rate_limit(target).await;
    server_errors(target).await;
    timeouts(target).await;
    bad_bodies(target).await;
    expired_token(target).await;
    revoked_credentials(target).await;
    declared_limits(target).await;
    request_accounting(target).await;
    reads_never_wake(target).await;
}

/// Who is being checked, for failure messages.
struct Ctx {
    vendor: &'static str,
    check: &'static str,
    seed: u64,
}

impl Ctx {
    fn fail(&self, message: impl Display) -> ! {
        panic!(
            "[{}] conformance check `{}` (seed {}): {message}",
            self.vendor, self.check, self.seed
        )
    }

    fn fail_all(&self, what: &str, problems: &[String]) {
        if !problems.is_empty() {
            self.fail(format!("{what}:\n  - {}", problems.join("\n  - ")));
        }
    }
}

async fn start<T: ConformanceTarget + ?Sized>(
    target: &T,
    check: &'static str,
    options: StartOptions,
) -> (Harness<T::World>, Ctx) {
    let harness = match target.start(options).await {
        Ok(h) => h,
        Err(e) => panic!(
            "conformance check `{check}` (seed {}): ConformanceTarget::start failed: {e:#}",
            options.seed
        ),
    };
    let ctx = Ctx { vendor: harness.adapter.info().name, check, seed: options.seed };
    if harness.devices.is_empty() {
        ctx.fail("the harness declares no devices; the world must hold at least one");
    }
    (harness, ctx)
}

/// An adapter error with its kind, retry_after and source chain.
struct Described<'a>(&'a AdapterError);

impl Display for Described<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} [kind {:?}]", self.0, self.0.kind())?;
        let mut source = StdError::source(self.0);
        while let Some(e) = source {
            write!(f, ": {e}")?;
            source = e.source();
        }
        Ok(())
    }
}

fn has_serde_source(err: &AdapterError) -> bool {
    let mut source = StdError::source(err);
    while let Some(e) = source {
        if e.is::<serde_json::Error>() {
            return true;
        }
        source = e.source();
    }
    false
}

/// Runs an adapter call on its own task so a panic becomes a clear failure.
async fn guarded<T, F>(ctx: &Ctx, what: &str, call: F) -> T
where
    T: Send + 'static,
    F: Future<Output = T> + Send + 'static,
{
    match tokio::spawn(call).await {
        Ok(v) => v,
        Err(e) if e.is_panic() => ctx.fail(format!("the adapter panicked during {what}")),
        Err(e) => ctx.fail(format!("{what} did not finish: {e}")),
    }
}

async fn poll<W>(
    h: &Harness<W>,
    ctx: &Ctx,
    account: &AccountRef,
    device: &DeviceRef,
) -> AdapterResult<Observation> {
    let (adapter, account, device) = (Arc::clone(&h.adapter), account.clone(), device.clone());
    let what = format!("poll of {} {}", device.device_type, device.vendor_id);
    guarded(ctx, &what, async move { adapter.poll(&account, &device).await }).await
}

async fn discover<W>(
    h: &Harness<W>,
    ctx: &Ctx,
    account: &AccountRef,
) -> AdapterResult<Vec<oemgate_core::DiscoveredDevice>> {
    let (adapter, account) = (Arc::clone(&h.adapter), account.clone());
    guarded(ctx, "discover", async move { adapter.discover(&account).await }).await
}

async fn execute<W>(
    h: &Harness<W>,
    ctx: &Ctx,
    device: &DeviceRef,
    command: &Command,
) -> AdapterResult<oemgate_core::CommandReceipt> {
    let (adapter, account) = (Arc::clone(&h.adapter), h.account.clone());
    let (device, command) = (device.clone(), command.clone());
    let what = format!("{} on {} {}", command.name(), device.device_type, device.vendor_id);
    guarded(ctx, &what, async move { adapter.execute(&account, &device, &command).await }).await
}

async fn refresh<W>(
    h: &Harness<W>,
    ctx: &Ctx,
    account: &AccountRef,
) -> AdapterResult<oemgate_core::Credentials> {
    let (adapter, account) = (Arc::clone(&h.adapter), account.clone());
    guarded(ctx, "refresh_credentials", async move { adapter.refresh_credentials(&account).await })
        .await
}

fn expect_ok<T>(ctx: &Ctx, result: AdapterResult<T>, what: &str) -> T {
    match result {
        Ok(v) => v,
        Err(e) => ctx.fail(format!("{what} failed: {}", Described(&e))),
    }
}

fn expect_kind<T: fmt::Debug>(
    ctx: &Ctx,
    result: AdapterResult<T>,
    allowed: &[ErrorKind],
    what: &str,
) -> AdapterError {
    match result {
        Ok(v) => ctx.fail(format!("{what}: expected {allowed:?}, but it succeeded with {v:?}")),
        Err(e) if !allowed.contains(&e.kind()) => {
            ctx.fail(format!("{what}: expected {allowed:?}, got {}", Described(&e)))
        }
        Err(e) if e.vendor() != ctx.vendor => ctx.fail(format!(
            "{what}: the error names vendor {:?}, not {:?}",
            e.vendor(),
            ctx.vendor
        )),
        Err(e) => e,
    }
}

fn label(device: &DeviceRef) -> String {
    format!("{} {}", device.device_type, device.vendor_id)
}

/// After a fault is cleared, the same call works again (nothing is poisoned).
async fn recovers<W>(h: &Harness<W>, ctx: &Ctx, after: &str) {
    let device = &h.devices[0].device;
    let result = poll(h, ctx, &h.account, device).await;
    expect_ok(ctx, result, &format!("poll of {} after {after} was cleared", label(device)));
}

/// `discover` returns exactly the world's devices of the account: each once, with the right
/// type, vendor id and site id, and only types the adapter declares (spec A6.3).
pub async fn discovery<T: ConformanceTarget + ?Sized>(target: &T) {
    let (h, ctx) = start(target, "discovery", StartOptions::from_env()).await;
    let info = h.adapter.info();
    if h.account.vendor != info.name {
        ctx.fail(format!("the account's vendor {:?} is not {:?}", h.account.vendor, info.name));
    }
    let found = expect_ok(&ctx, discover(&h, &ctx, &h.account).await, "discover");

    let mut problems = Vec::new();
    let mut discovered = BTreeMap::new();
    for d in &found {
        let key = (d.device_type.as_str(), d.vendor_id.clone());
        if discovered.insert(key, d.site_id.clone()).is_some() {
            problems.push(format!("{} {} is listed twice", d.device_type, d.vendor_id));
        }
        if !info.device_types.contains(&d.device_type) {
            problems.push(format!(
                "{} {} has a type the adapter does not declare in info().device_types",
                d.device_type, d.vendor_id
            ));
        }
    }
    let expected: BTreeMap<_, _> = h
        .devices
        .iter()
        .map(|e| ((e.device.device_type.as_str(), e.device.vendor_id.clone()), &e.device.site_id))
        .collect();
    for ((t, id), site) in &expected {
        match discovered.get(&(*t, id.clone())) {
            None => problems.push(format!("{t} {id} is in the world but was not discovered")),
            Some(found_site) if found_site != *site => {
                problems.push(format!("{t} {id}: site_id {found_site:?}, the world says {site:?}"))
            }
            Some(_) => {}
        }
    }
    for (t, id) in discovered.keys() {
        if !expected.contains_key(&(*t, id.clone())) {
            problems.push(format!("{t} {id} was discovered but is not the account's"));
        }
    }
    ctx.fail_all("discovery does not match the world", &problems);
}

/// A poll of every device matches the world's truth within unit tolerance, carries the
/// reference's id, user and vendor, is stamped with the clock's time and has no timestamp
/// from the future (spec A6.4, A8).
pub async fn poll_matches_world<T: ConformanceTarget + ?Sized>(target: &T) {
    let (h, ctx) = start(target, "poll_matches_world", StartOptions::from_env()).await;
    let now = h.clock.now();
    let mut problems = Vec::new();
    for expected in &h.devices {
        let device = &expected.device;
        let name = label(device);
        let obs =
            expect_ok(&ctx, poll(&h, &ctx, &h.account, device).await, &format!("poll of {name}"));
        if obs.state.device_type() != device.device_type {
            problems.push(format!("{name}: the state is a {}", obs.state.device_type()));
        }
        if obs.observed_at != now {
            problems.push(format!(
                "{name}: observed_at {} is not the clock's time {}",
                obs.observed_at.to_rfc3339(),
                now.to_rfc3339()
            ));
        }
        if obs.requests == 0 {
            problems.push(format!("{name}: the observation reports 0 requests"));
        }
        let json = obs.state.to_json();
        let mut expectations = vec![
            Expectation::string("/id", device.id.clone()),
            Expectation::string("/userId", device.user_id.clone()),
        ];
        if json.get("vendor").is_some() {
            expectations.push(Expectation::string("/vendor", h.adapter.info().name));
        }
        let truth = (h.truth)(&h.world, expected);
        if truth.is_empty() {
            problems.push(format!("{name}: the truth function gives no expectations"));
        }
        expectations.extend(truth);
        problems.extend(check_all(&json, &expectations).iter().map(|m| format!("{name}: {m}")));
        problems.extend(timestamp_problems(&json, now).iter().map(|p| format!("{name}: {p}")));
    }
    ctx.fail_all("polled resources do not match the world", &problems);
}

/// Every supported command, on a fresh harness each: the device's capability for it is true,
/// the vendor accepts it, the receipt counts the requests sent, and once the clock moved
/// past the command latency the world shows the effect (spec A7.3). Every capability a
/// device reports as true has a command case, and every device class that takes commands
/// has at least one command case or unsupported case.
pub async fn commands_take_effect<T: ConformanceTarget + ?Sized>(target: &T) {
    let options = StartOptions::from_env();
    let (first, ctx) = start(target, "commands_take_effect", options).await;
    let count = first.commands.len();
    let types: BTreeSet<&str> =
        first.devices.iter().map(|e| e.device.device_type.as_str()).collect();
    let classes = VendorType::ALL.iter().filter(|t| types.contains(t.as_str()));
    for &t in classes.filter(|t| takes_commands(**t)) {
        let covered = first.commands.iter().any(|c| c.device.device_type == t)
            || first.unsupported.iter().any(|c| c.device.device_type == t);
        if !covered {
            ctx.fail(format!(
                "the world has {t} devices but the harness declares no command case for them"
            ));
        }
    }
    // Every capability a device reports as true is a supported command: it needs a case.
    let covered: BTreeSet<(&str, &str)> = first
        .commands
        .iter()
        .filter_map(|c| {
            let t = c.device.device_type;
            capability_pointer(t, &c.command).map(|p| (t.as_str(), p))
        })
        .collect();
    for expected in first.devices.iter().filter(|e| takes_commands(e.device.device_type)) {
        let device = &expected.device;
        let what = format!("poll of {}", label(device));
        let obs = expect_ok(&ctx, poll(&first, &ctx, &first.account, device).await, &what);
        let json = obs.state.to_json();
        for command in commands_with_capability(device.device_type) {
            let Some(pointer) = capability_pointer(device.device_type, &command) else {
                continue;
            };
            let capable = lookup(&json, &format!("{pointer}/isCapable")).ok();
            if capable == Some(&Value::Bool(true))
                && !covered.contains(&(device.device_type.as_str(), pointer))
            {
                ctx.fail(format!(
                    "{} reports {pointer} capable, but the harness has no command case for \
                     {command:?} on a {}",
                    label(device),
                    device.device_type
                ));
            }
        }
    }
    let mut next = Some(first);
    for index in 0..count {
        let mut h = match next.take() {
            Some(h) => h,
            None => start(target, "commands_take_effect", options).await.0,
        };
        if h.commands.len() != count {
            ctx.fail(format!(
                "start() is not deterministic: {count} command cases first, {} now",
                h.commands.len()
            ));
        }
        let case = std::mem::take(&mut h.commands)
            .into_iter()
            .nth(index)
            .expect("index is below the number of cases");
        let device = &case.device;
        let what = format!("{} on {} ({})", case.command.name(), label(device), case.effect);
        if let Some(prepare) = &case.prepare {
            prepare(&h.world);
            h.control.settle();
        }
        if let Some(pointer) = capability_pointer(device.device_type, &case.command) {
            let before = format!("poll of {} before {what}", label(device));
            let obs = expect_ok(&ctx, poll(&h, &ctx, &h.account, device).await, &before);
            let capable = Expectation::bool(format!("{pointer}/isCapable"), true);
            if let Err(m) = capable.check(&obs.state.to_json()) {
                ctx.fail(format!("{what} is a supported command but {m}"));
            }
        }
        if (case.took_effect)(&h.world) {
            ctx.fail(format!("{what}: took_effect already holds before the command"));
        }
        let before = h.requests.count();
        let receipt = expect_ok(&ctx, execute(&h, &ctx, device, &case.command).await, &what);
        let sent = h.requests.count().saturating_sub(before);
        if u64::from(receipt.requests) != sent {
            ctx.fail(format!(
                "{what}: the receipt reports {} requests, the simulator received {sent}",
                receipt.requests
            ));
        }
        h.clock.advance(case.settle);
        h.control.settle();
        if !(case.took_effect)(&h.world) {
            ctx.fail(format!(
                "{what}: the vendor accepted it but the world shows no effect {:?} later",
                case.settle
            ));
        }
    }
}

/// Every unsupported command (the harness's, plus one command of another device class per
/// device) fails as `Unsupported` without a request; where the resource has a capability
/// for it, it is false with at least one intervention (spec A7.1, A7.2).
pub async fn unsupported_commands<T: ConformanceTarget + ?Sized>(target: &T) {
    let (h, ctx) = start(target, "unsupported_commands", StartOptions::from_env()).await;
    let mut cases = h.unsupported.clone();
    for e in &h.devices {
        let t = e.device.device_type;
        cases.push(UnsupportedCase::new(e.device.clone(), foreign_command(t)));
        if t != VendorType::Vehicle {
            cases.push(UnsupportedCase::new(e.device.clone(), Command::WakeUp));
        }
    }
    for case in &cases {
        let device = &case.device;
        let what = format!("{} on {}", case.command.name(), label(device));
        if let Some(pointer) = capability_pointer(device.device_type, &case.command) {
            let before = format!("poll of {} before {what}", label(device));
            let obs = expect_ok(&ctx, poll(&h, &ctx, &h.account, device).await, &before);
            let json = obs.state.to_json();
            let capable = Expectation::bool(format!("{pointer}/isCapable"), false);
            if let Err(m) = capable.check(&json) {
                ctx.fail(format!("{what} is unsupported but {m}"));
            }
            let ids = lookup(&json, &format!("{pointer}/interventionIds")).ok();
            let has_intervention = ids
                .and_then(Value::as_array)
                .is_some_and(|a| !a.is_empty() && a.iter().all(Value::is_string));
            if !has_intervention {
                ctx.fail(format!(
                    "{what} is unsupported but {pointer}/interventionIds names no intervention \
                     (found {})",
                    ids.map_or_else(|| "<absent>".to_owned(), Value::to_string)
                ));
            }
        }
        let before = h.requests.count();
        let result = execute(&h, &ctx, device, &case.command).await;
        expect_kind(&ctx, result, &[ErrorKind::Unsupported], &what);
        let sent = h.requests.count().saturating_sub(before);
        if sent != 0 {
            ctx.fail(format!("{what}: sent {sent} requests before failing as unsupported"));
        }
    }
}

/// A 429 with `Retry-After` becomes `RateLimited` with that `retry_after`, on discovery and
/// polls (spec A2.2).
pub async fn rate_limit<T: ConformanceTarget + ?Sized>(target: &T) {
    let (h, ctx) = start(target, "rate_limit", StartOptions::from_env()).await;
    let device = &h.devices[0].device;
    h.control.inject_fault(Fault::RateLimit { retry_after: INJECTED_RETRY_AFTER });
    let check = |e: AdapterError, what: &str| match e.retry_after() {
        Some(after) if after.abs_diff(INJECTED_RETRY_AFTER) <= Duration::from_secs(1) => {}
        other => ctx.fail(format!(
            "{what}: retry_after is {other:?}, the vendor said {INJECTED_RETRY_AFTER:?}"
        )),
    };
    let e = expect_kind(
        &ctx,
        discover(&h, &ctx, &h.account).await,
        &[ErrorKind::RateLimited],
        "discover under a 429",
    );
    check(e, "discover under a 429");
    let what = format!("poll of {} under a 429", label(device));
    let e = expect_kind(
        &ctx,
        poll(&h, &ctx, &h.account, device).await,
        &[ErrorKind::RateLimited],
        &what,
    );
    check(e, &what);
    h.control.clear_faults();
    recovers(&h, &ctx, "the 429").await;
}

/// 5xx answers and outages are `Transient` (spec A2.1).
pub async fn server_errors<T: ConformanceTarget + ?Sized>(target: &T) {
    let (h, ctx) = start(target, "server_errors", StartOptions::from_env()).await;
    let device = &h.devices[0].device;
    let faults = [
        Fault::ServerError { status: 500 },
        Fault::ServerError { status: 502 },
        Fault::ServerError { status: 503 },
        Fault::ServerError { status: 504 },
        Fault::Outage,
    ];
    for fault in faults {
        h.control.inject_fault(fault.clone());
        let what = format!("discover under {fault:?}");
        expect_kind(&ctx, discover(&h, &ctx, &h.account).await, &[ErrorKind::Transient], &what);
        let what = format!("poll of {} under {fault:?}", label(device));
        expect_kind(&ctx, poll(&h, &ctx, &h.account, device).await, &[ErrorKind::Transient], &what);
        h.control.clear_faults();
        recovers(&h, &ctx, &format!("{fault:?}")).await;
    }
}

/// A hanging or timing-out vendor is `Transient` within the adapter's request timeout. The
/// one check on real time: the adapter is built with [`SHORT_REQUEST_TIMEOUT`] (spec A3.2).
pub async fn timeouts<T: ConformanceTarget + ?Sized>(target: &T) {
    let options =
        StartOptions { request_timeout: SHORT_REQUEST_TIMEOUT, ..StartOptions::from_env() };
    let (h, ctx) = start(target, "timeouts", options).await;
    let device = &h.devices[0].device;
    for fault in [Fault::Hang { duration: Duration::from_secs(30) }, Fault::Timeout] {
        h.control.inject_fault(fault.clone());
        let what = format!("poll of {} under {fault:?}", label(device));
        let started = Instant::now();
        let result = tokio::time::timeout(TIMEOUT_CHECK_LIMIT, poll(&h, &ctx, &h.account, device))
            .await
            .unwrap_or_else(|_| {
                ctx.fail(format!(
                    "{what} still runs after {TIMEOUT_CHECK_LIMIT:?} (request timeout \
                     {SHORT_REQUEST_TIMEOUT:?}): does every request carry a timeout?"
                ))
            });
        expect_kind(&ctx, result, &[ErrorKind::Transient], &what);
        h.control.clear_faults();
        note(&what, started.elapsed());
    }
    recovers(&h, &ctx, "the timeouts").await;
}

/// A line for `--nocapture` runs.
fn note(what: &str, took: Duration) {
    eprintln!("oemgate-testkit: {what} gave up after {took:?}");
}

/// Malformed and truncated bodies are `Protocol` errors with the serde error as source, on
/// discovery and on every device's poll, and never panic (spec A2.1, A2.3).
pub async fn bad_bodies<T: ConformanceTarget + ?Sized>(target: &T) {
    let (h, ctx) = start(target, "bad_bodies", StartOptions::from_env()).await;
    for fault in [Fault::Malformed, Fault::Truncated] {
        h.control.inject_fault(fault.clone());
        let check_source = |e: &AdapterError, what: &str| {
            if !has_serde_source(e) {
                ctx.fail(format!(
                    "{what}: the Protocol error has no serde_json::Error in its source chain: {}",
                    Described(e)
                ));
            }
        };
        let what = format!("discover under {fault:?}");
        let e =
            expect_kind(&ctx, discover(&h, &ctx, &h.account).await, &[ErrorKind::Protocol], &what);
        check_source(&e, &what);
        for expected in &h.devices {
            let device = &expected.device;
            let what = format!("poll of {} under {fault:?}", label(device));
            let result = poll(&h, &ctx, &h.account, device).await;
            let e = expect_kind(&ctx, result, &[ErrorKind::Protocol], &what);
            check_source(&e, &what);
        }
        h.control.clear_faults();
        recovers(&h, &ctx, &format!("{fault:?}")).await;
    }
}

/// An expired access token is `AuthExpired`; one `refresh_credentials` returns working
/// credentials and the call then succeeds; a reused single-use refresh token is
/// `Unauthorized` (spec A4.2–A4.4). Skipped for API-key vendors.
pub async fn expired_token<T: ConformanceTarget + ?Sized>(target: &T) {
    let auth = target.auth();
    if !auth.refreshes {
        eprintln!("oemgate-testkit: expired_token skipped: the vendor has no refresh tokens");
        return;
    }
    let (mut h, ctx) = start(target, "expired_token", StartOptions::from_env()).await;
    let device = h.devices[0].device.clone();
    h.control.expire_access_token(&mut h.account).await;
    let what = format!("poll of {} with an expired access token", label(&device));
    let result = poll(&h, &ctx, &h.account, &device).await;
    expect_kind(&ctx, result, &[ErrorKind::AuthExpired], &what);

    let spent = h.account.clone();
    let fresh = expect_ok(&ctx, refresh(&h, &ctx, &spent).await, "refresh_credentials");
    if fresh.access_token == spent.credentials.access_token {
        ctx.fail("refresh_credentials returned the expired access token");
    }
    if fresh.refresh_token.as_deref().is_none_or(str::is_empty) {
        ctx.fail("refresh_credentials returned no refresh token (return the old one if kept)");
    }
    if let Some(expires_at) = fresh.expires_at
        && expires_at <= h.clock.now()
    {
        ctx.fail(format!("the refreshed token expires at {expires_at}, which is not after now"));
    }
    h.account.credentials = fresh;
    let what = format!("poll of {} right after the one refresh", label(&device));
    expect_ok(&ctx, poll(&h, &ctx, &h.account, &device).await, &what);

    if auth.single_use_refresh_tokens {
        let what = "refresh_credentials with the spent single-use refresh token";
        expect_kind(&ctx, refresh(&h, &ctx, &spent).await, &[ErrorKind::Unauthorized], what);
    }
}

/// Revoked credentials are `Unauthorized` on calls (or `AuthExpired` where the vendor cannot
/// tell, see [`crate::AuthBehaviour`]) and on refresh (spec A4.5).
pub async fn revoked_credentials<T: ConformanceTarget + ?Sized>(target: &T) {
    let auth = target.auth();
    let (h, ctx) = start(target, "revoked_credentials", StartOptions::from_env()).await;
    let device = &h.devices[0].device;
    h.control.revoke_credentials(&h.account).await;
    let allowed: &[ErrorKind] = if auth.revoked_token_reads_as_expired {
        &[ErrorKind::Unauthorized, ErrorKind::AuthExpired]
    } else {
        &[ErrorKind::Unauthorized]
    };
    let what = format!("poll of {} with revoked credentials", label(device));
    expect_kind(&ctx, poll(&h, &ctx, &h.account, device).await, allowed, &what);
    let what = "discover with revoked credentials";
    expect_kind(&ctx, discover(&h, &ctx, &h.account).await, allowed, what);
    let what = "refresh_credentials with revoked credentials";
    expect_kind(&ctx, refresh(&h, &ctx, &h.account).await, &[ErrorKind::Unauthorized], what);
}

/// The adapter's declared `limits()` are sane and no more generous than the vendor's
/// published limits (spec A5.1–A5.3).
pub async fn declared_limits<T: ConformanceTarget + ?Sized>(target: &T) {
    let (h, ctx) = start(target, "declared_limits", StartOptions::from_env()).await;
    let problems = limit_violations(&h.adapter.limits(), &target.published_limits());
    ctx.fail_all("the declared limits are not truthful", &problems);
}

/// `Observation::requests` equals the requests the simulator received, for a poll of each
/// device and for one `poll_batch` of all of them, and no poll costs more than the
/// adapter's `poll_cost` for the device class (spec A5.5).
pub async fn request_accounting<T: ConformanceTarget + ?Sized>(target: &T) {
    let (h, ctx) = start(target, "request_accounting", StartOptions::from_env()).await;
    let mut problems = Vec::new();
    for expected in &h.devices {
        let device = &expected.device;
        let before = h.requests.count();
        let what = format!("poll of {}", label(device));
        let obs = expect_ok(&ctx, poll(&h, &ctx, &h.account, device).await, &what);
        let sent = h.requests.count().saturating_sub(before);
        if u64::from(obs.requests) != sent {
            problems.push(format!(
                "{what}: reports {} requests, the simulator received {sent}",
                obs.requests
            ));
        }
        let bound = h.adapter.poll_cost(device.device_type);
        if sent > u64::from(bound) {
            problems.push(format!(
                "{what}: cost {sent} requests, more than poll_cost({}) = {bound}, the budget \
                 the scheduler reserves",
                device.device_type
            ));
        }
    }
    let devices: Vec<DeviceRef> = h.devices.iter().map(|e| e.device.clone()).collect();
    let (adapter, account) = (Arc::clone(&h.adapter), h.account.clone());
    let before = h.requests.count();
    let batch_devices = devices.clone();
    let results =
        guarded(
            &ctx,
            "poll_batch",
            async move { adapter.poll_batch(&account, &batch_devices).await },
        )
        .await;
    let sent = h.requests.count().saturating_sub(before);
    if results.len() != devices.len() {
        problems.push(format!(
            "poll_batch of {} devices returned {} results",
            devices.len(),
            results.len()
        ));
    }
    let mut reported = 0u64;
    for (device, result) in devices.iter().zip(&results) {
        match result {
            Ok(obs) => reported += u64::from(obs.requests),
            Err(e) => {
                problems.push(format!("poll_batch: {} failed: {}", label(device), Described(e)))
            }
        }
    }
    if reported != sent {
        problems.push(format!(
            "poll_batch of {} devices reports {reported} requests, the simulator received {sent}",
            devices.len()
        ));
    }
    ctx.fail_all("reported request counts are not truthful", &problems);
}

/// Reading a sleeping device reports it asleep and unreachable and leaves it asleep in the
/// world (spec A6.1). Targets with vehicles must declare at least one sleeping device.
pub async fn reads_never_wake<T: ConformanceTarget + ?Sized>(target: &T) {
    let (h, ctx) = start(target, "reads_never_wake", StartOptions::from_env()).await;
    if h.sleeping.is_empty() {
        if h.devices.iter().any(|e| e.device.device_type == VendorType::Vehicle) {
            ctx.fail("the world has vehicles but the harness declares no sleeping device");
        }
        return;
    }
    for case in &h.sleeping {
        let name = label(&case.device);
        if !(case.asleep)(&h.world) {
            ctx.fail(format!("{name} is not asleep in the world before the read"));
        }
        for round in 1..=3 {
            let what = format!("read #{round} of sleeping {name}");
            let obs = expect_ok(&ctx, poll(&h, &ctx, &h.account, &case.device).await, &what);
            if !obs.asleep {
                ctx.fail(format!("{what}: the observation is not marked asleep"));
            }
            let json = obs.state.to_json();
            if let Some(reachable) = json.get("isReachable")
                && reachable != &Value::Bool(false)
            {
                ctx.fail(format!("{what}: isReachable is {reachable}, not false"));
            }
            if !(case.asleep)(&h.world) {
                ctx.fail(format!("{what} woke the device up"));
            }
        }
    }
}
