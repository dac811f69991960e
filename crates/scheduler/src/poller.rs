//! The poll loop: the I/O edge of the scheduler.
//!
//! Each tick claims the devices that are due from the store's schedule (a lease, so another
//! instance does not poll them too), reads them through their vendor's adapter, stores the
//! snapshot with a compare-and-set on its version, appends a change event when something
//! changed and puts the device back on the schedule at the time the planner chose. An
//! instance that dies mid-poll loses nothing: the lease runs out and another instance claims
//! the device.
//!
//! - Shards: the schedule is split into [`oemgate_store::SCHEDULE_SHARDS`] shards and a
//!   poller claims only from the shards its [`ShardOwnership`] names ([`AllShards`] when it
//!   runs alone), so ownership can be split between instances without restructuring.
//! - Batches: the devices of one vendor account claimed in the same tick are read with one
//!   [`VendorAdapter::poll_batch`] call, so a vendor that returns many devices per request is
//!   asked once. Devices read together get the same jitter, so they stay due together.
//! - Credentials: expiring tokens are refreshed before a read; `AuthExpired` refreshes once
//!   and retries; `Unauthorized` marks the account's credentials invalid, appends a
//!   `user:credentials:invalidated` event and stops polling the account's devices until the
//!   user links the vendor again.
//! - Quotas: a daily quota that cannot pay for every device's bound is shared by priority
//!   (see [`crate::quota`]); the stretch shows in `oemgate_polls_stretched_total` and
//!   `oemgate_quota_stretched_devices`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use oemgate_core::{
    AdapterError, Clock, DeviceRef, ErrorKind, Observation, PollContext, VendorAdapter,
};
use oemgate_store::{
    AccountRecord, DeviceFilter, DeviceRecord, Event, PageRequest, Snapshot, Store, StoreError,
};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use thiserror::Error;
use tracing::{debug, info, warn};

use crate::breaker::BreakerConfig;
use crate::diff::{merge_known, updated_fields};
use crate::limits::{Admission, DeferReason, Ticket, VendorGate};
use crate::planner::{Planner, PlannerConfig, PollPolicy, detect_context};
use crate::quota::Demand;

/// Errors of the poll loop itself (a failed vendor read is an outcome, not an error).
#[derive(Debug, Error)]
pub enum SchedulerError {
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
}

/// The vendor adapters the gateway knows, by vendor name ("TESLA").
#[derive(Clone, Default)]
pub struct Adapters {
    by_vendor: HashMap<String, Arc<dyn VendorAdapter>>,
}

impl std::fmt::Debug for Adapters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.by_vendor.keys()).finish()
    }
}

impl Adapters {
    /// No adapters.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an adapter under its vendor name.
    pub fn register(&mut self, adapter: Arc<dyn VendorAdapter>) {
        self.by_vendor.insert(adapter.info().name.to_string(), adapter);
    }

    /// The adapter for a vendor.
    pub fn get(&self, vendor: &str) -> Option<&Arc<dyn VendorAdapter>> {
        self.by_vendor.get(vendor)
    }

    /// The registered vendor names.
    pub fn vendors(&self) -> impl Iterator<Item = &str> {
        self.by_vendor.keys().map(String::as_str)
    }

    /// Every adapter with its vendor name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Arc<dyn VendorAdapter>)> {
        self.by_vendor.iter().map(|(k, v)| (k.as_str(), v))
    }
}

/// Settings of the poll loop.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PollerConfig {
    /// Planner settings (context delays, latency allowance, jitter, backoff).
    #[serde(flatten)]
    pub planner: PlannerConfig,
    /// Devices claimed per tick.
    pub batch_size: usize,
    /// Polls in flight at once per instance.
    pub max_in_flight: usize,
    /// How long a claimed device stays leased to this instance.
    #[serde(with = "oemgate_core::context::humanize")]
    pub lease: Duration,
    /// Newly registered devices get their first poll spread over this long.
    #[serde(with = "oemgate_core::context::humanize")]
    pub startup_spread: Duration,
    /// Clock time between ticks when nothing is due.
    #[serde(with = "oemgate_core::context::humanize")]
    pub tick: Duration,
    /// The per-vendor circuit breaker.
    pub breaker: BreakerConfig,
}

impl Default for PollerConfig {
    fn default() -> Self {
        Self {
            planner: PlannerConfig::default(),
            batch_size: 256,
            max_in_flight: 32,
            lease: Duration::from_secs(120),
            startup_spread: Duration::from_secs(30),
            tick: Duration::from_secs(1),
            breaker: BreakerConfig::default(),
        }
    }
}

/// Counters for metrics and the demo's summary line.
#[derive(Debug, Default)]
pub struct PollerStats {
    /// Successful polls.
    pub polls_ok: AtomicU64,
    /// Failed polls.
    pub polls_failed: AtomicU64,
    /// Vendor requests made by polls.
    pub vendor_requests: AtomicU64,
    /// Snapshots that changed.
    pub changes: AtomicU64,
    /// Credential refreshes.
    pub credential_refreshes: AtomicU64,
    /// Polls held back by a vendor limit or an open breaker.
    pub deferrals: AtomicU64,
    /// Accounts whose credentials the vendor rejected (each counted once).
    pub accounts_invalidated: AtomicU64,
    /// Devices read as part of a batch of two or more.
    pub batched_polls: AtomicU64,
}

/// What one poll did.
#[derive(Clone, Debug, PartialEq)]
pub enum PollOutcome {
    /// Stored a snapshot; `changed` lists the updated fields (all fields on first sight).
    Stored {
        /// Updated fields.
        changed: Vec<String>,
        /// When the vendor's data was read.
        observed_at: DateTime<Utc>,
        /// The context the device is now in.
        context: PollContext,
        /// When it is due next.
        next_due: DateTime<Utc>,
    },
    /// The vendor read failed; the device is retried at `next_due`.
    Failed {
        /// The error's kind.
        kind: ErrorKind,
        /// When it is retried.
        next_due: DateTime<Utc>,
    },
    /// A vendor limit or the vendor's breaker held the poll back until `next_due`.
    Deferred {
        /// Which limit.
        reason: DeferReason,
        /// When it is tried again.
        next_due: DateTime<Utc>,
    },
    /// The device no longer exists; it was taken off the schedule.
    Missing,
    /// The account's credentials are invalid: the device was taken off the schedule until
    /// the user links the vendor again.
    Stopped,
}

/// Which schedule shards this instance polls.
pub trait ShardOwnership: Send + Sync + std::fmt::Debug {
    /// The shards owned now. Asked once per tick, so ownership may change between ticks.
    fn owned(&self) -> Vec<u16>;
}

/// Every shard: a single instance, or several instances that all poll everything (safe: the
/// store's claims lease each device to one of them).
#[derive(Clone, Copy, Debug, Default)]
pub struct AllShards;

impl ShardOwnership for AllShards {
    fn owned(&self) -> Vec<u16> {
        oemgate_store::all_shards().collect()
    }
}

/// A fixed set of shards (for tests and static partitioning).
#[derive(Clone, Debug, Default)]
pub struct StaticShards(pub Vec<u16>);

impl ShardOwnership for StaticShards {
    fn owned(&self) -> Vec<u16> {
        self.0.clone()
    }
}

/// One finished poll, as told to a [`PollObserver`].
#[derive(Debug)]
pub struct PollReport<'a> {
    /// The device.
    pub device: &'a DeviceRecord,
    /// What happened.
    pub outcome: &'a PollOutcome,
    /// The clock when the poll finished.
    pub finished_at: DateTime<Utc>,
}

/// Told about every poll a poller finishes: for load tests and acceptance tests that compare
/// what was read when against the ground truth.
pub trait PollObserver: Send + Sync {
    /// Called once per polled device, after the snapshot is stored and the device rescheduled.
    fn observe(&self, report: &PollReport<'_>);

    /// Called once per claimed device when a tick claims it: it was due at `due` and claimed
    /// at `now` (the scheduling lag is `now - due`). Does nothing unless overridden.
    fn claimed(&self, device_id: &str, due: DateTime<Utc>, now: DateTime<Utc>) {
        let _ = (device_id, due, now);
    }
}

/// Requests per vendor since the poller started, for the requests-per-device-hour gauge.
#[derive(Default)]
struct VendorUsage {
    requests: u64,
    devices: HashSet<String>,
    since: Option<DateTime<Utc>>,
}

/// What one tick did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TickReport {
    /// Devices polled.
    pub polled: usize,
    /// Of those, failed.
    pub failed: usize,
}

/// The poll loop of one gateway instance.
pub struct Poller {
    store: Arc<dyn Store>,
    adapters: Adapters,
    gates: HashMap<String, Arc<VendorGate>>,
    clock: Arc<dyn Clock>,
    planner: Planner,
    policy: Arc<dyn PollPolicy>,
    config: PollerConfig,
    ownership: Arc<dyn ShardOwnership>,
    observer: Option<Arc<dyn PollObserver>>,
    rng: Mutex<SmallRng>,
    failures: Mutex<HashMap<String, u32>>,
    usage: Mutex<HashMap<String, VendorUsage>>,
    next_shard: AtomicU64,
    stats: Arc<PollerStats>,
}

impl std::fmt::Debug for Poller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Poller")
            .field("adapters", &self.adapters)
            .field("config", &self.config)
            .field("ownership", &self.ownership)
            .finish()
    }
}

/// The most devices of one account read in one batch; larger groups are split, so one huge
/// account cannot hold a tick for long.
const MAX_BATCH: usize = 100;

impl Poller {
    /// A poller over `store` using `adapters`, reading time from `clock`. `seed` seeds the
    /// jitter so simulations are reproducible. It owns every shard until
    /// [`Poller::with_ownership`] says otherwise.
    pub fn new(
        store: Arc<dyn Store>,
        adapters: Adapters,
        clock: Arc<dyn Clock>,
        config: PollerConfig,
        seed: u64,
    ) -> Self {
        let gates = adapters
            .iter()
            .map(|(vendor, adapter)| {
                let gate =
                    VendorGate::new(vendor, adapter.limits(), config.breaker, Arc::clone(&clock));
                (vendor.to_string(), Arc::new(gate))
            })
            .collect();
        Self {
            store,
            adapters,
            gates,
            clock,
            planner: Planner::new(config.planner),
            policy: Arc::new(Planner::new(config.planner)),
            config,
            ownership: Arc::new(AllShards),
            observer: None,
            rng: Mutex::new(SmallRng::seed_from_u64(seed)),
            failures: Mutex::new(HashMap::new()),
            usage: Mutex::new(HashMap::new()),
            next_shard: AtomicU64::new(0),
            stats: Arc::new(PollerStats::default()),
        }
    }

    /// Polls only the shards `ownership` names.
    pub fn with_ownership(mut self, ownership: Arc<dyn ShardOwnership>) -> Self {
        self.ownership = ownership;
        self
    }

    /// Chooses the next poll after each successful read with `policy` instead of the
    /// adaptive planner (the default). Retries, quota stretching and limits are unchanged.
    pub fn with_policy(mut self, policy: Arc<dyn PollPolicy>) -> Self {
        self.policy = policy;
        self
    }

    /// The polling policy in use.
    pub fn policy(&self) -> &Arc<dyn PollPolicy> {
        &self.policy
    }

    /// Tells `observer` about every finished poll.
    pub fn with_observer(mut self, observer: Arc<dyn PollObserver>) -> Self {
        self.observer = Some(observer);
        self
    }

    /// The counters.
    pub fn stats(&self) -> Arc<PollerStats> {
        Arc::clone(&self.stats)
    }

    fn jitter(&self) -> f64 {
        self.rng.lock().unwrap_or_else(|e| e.into_inner()).random::<f64>()
    }

    /// Registers a device and schedules its first poll within the startup spread. The devices
    /// of one account get the same offset, so they fall due together and are read in one
    /// batch where the vendor allows it.
    pub async fn register(&self, record: DeviceRecord) -> Result<(), SchedulerError> {
        let id = record.device.id.clone();
        let unit = unit_hash(&format!("{}/{}", record.vendor, record.account_id));
        self.store.put_device(record).await?;
        let due = self.planner.initial_due(self.clock.now(), self.config.startup_spread, unit);
        self.store.schedule(&id, due).await?;
        Ok(())
    }

    /// Tells the vendor's gate that `requests` it did not meter were just sent for an
    /// account (linking and discovery run outside the poller), so the first polls of the
    /// new devices do not add to an already spent vendor window.
    pub fn after_unmetered_requests(&self, vendor: &str, account_id: &str, requests: u32) {
        let Some(gate) = self.gates.get(vendor) else { return };
        let key = VendorGate::scope_key(gate.limits().rate_scope, account_id, None, "");
        gate.spend(&key, requests);
    }

    /// Claims the due devices of the owned shards and polls them. Returns what it did.
    pub async fn tick(&self) -> Result<TickReport, SchedulerError> {
        let now = self.clock.now();
        let lease_until =
            now + chrono::Duration::from_std(self.config.lease).unwrap_or(chrono::Duration::MAX);
        let shards = self.ownership.owned();
        let mut claimed = Vec::new();
        if !shards.is_empty() {
            // Start at a different shard each tick, so when the batch fills up no shard is
            // always the one left for later.
            let start = (self.next_shard.fetch_add(1, Ordering::Relaxed) as usize) % shards.len();
            for shard in shards.iter().cycle().skip(start).take(shards.len()) {
                let room = self.config.batch_size.saturating_sub(claimed.len());
                if room == 0 {
                    break;
                }
                claimed.extend(self.store.claim_due(*shard, now, room, lease_until).await?);
            }
        }
        for (id, due) in &claimed {
            let lag = (now - *due).to_std().unwrap_or_default();
            metrics::histogram!("oemgate_schedule_lag_seconds").record(lag.as_secs_f64());
            if let Some(observer) = &self.observer {
                observer.claimed(id, *due, now);
            }
        }
        let mut report = TickReport::default();
        // Group the devices by vendor account, so one batch read serves them.
        let mut groups: BTreeMap<(String, String), Vec<DeviceRecord>> = BTreeMap::new();
        for (id, _) in claimed {
            report.polled += 1;
            match self.store.get_device(&id).await {
                Ok(Some(record)) => groups
                    .entry((record.vendor.clone(), record.account_id.clone()))
                    .or_default()
                    .push(record),
                Ok(None) => self.store.unschedule(&id).await?,
                Err(err) => {
                    report.failed += 1;
                    warn!(device = %id, error = %err, "store failed while loading a claimed device");
                }
            }
        }
        let batches: Vec<Vec<DeviceRecord>> = groups
            .into_values()
            .flat_map(|group| {
                group.chunks(MAX_BATCH).map(<[DeviceRecord]>::to_vec).collect::<Vec<_>>()
            })
            .collect();
        let outcomes: Vec<Vec<Result<PollOutcome, SchedulerError>>> =
            futures::stream::iter(batches)
                .map(|batch| async move { self.poll_group(batch).await })
                .buffer_unordered(self.config.max_in_flight.max(1))
                .collect()
                .await;
        for outcome in outcomes.into_iter().flatten() {
            match outcome {
                Ok(PollOutcome::Failed { .. }) => report.failed += 1,
                Ok(_) => {}
                Err(err) => {
                    // The device stays leased; when the lease runs out it is claimed again.
                    report.failed += 1;
                    warn!(error = %err, "store failed during poll");
                }
            }
        }
        self.export_gauges();
        Ok(report)
    }

    /// Runs ticks until `shutdown` resolves. Store failures are logged and retried after
    /// the tick interval; they never end the loop.
    pub async fn run(self: Arc<Self>, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        info!(vendors = ?self.adapters, "poller started");
        loop {
            let busy = match self.tick().await {
                Ok(report) => report.polled >= self.config.batch_size,
                Err(err) => {
                    warn!(error = %err, "poll tick failed");
                    false
                }
            };
            let wait = if busy {
                Duration::ZERO
            } else {
                self.clock.to_real(self.config.tick).max(Duration::from_millis(5))
            };
            tokio::select! {
                _ = &mut shutdown => break,
                _ = tokio::time::sleep(wait) => {}
            }
        }
        info!("poller stopped");
    }

    /// Polls one device now and reschedules it.
    pub async fn poll_device(&self, device_id: &str) -> Result<PollOutcome, SchedulerError> {
        let Some(record) = self.store.get_device(device_id).await? else {
            self.store.unschedule(device_id).await?;
            return Ok(PollOutcome::Missing);
        };
        let mut outcomes = self.poll_group(vec![record]).await;
        outcomes.pop().unwrap_or(Ok(PollOutcome::Missing))
    }

    /// Reads the devices of one vendor account (one batch where the vendor allows it), then
    /// stores, reschedules and reports each.
    async fn poll_group(
        &self,
        records: Vec<DeviceRecord>,
    ) -> Vec<Result<PollOutcome, SchedulerError>> {
        let results = match self.read_group(&records).await {
            Ok(results) => results,
            Err(err) => {
                let message = err.to_string();
                return records
                    .iter()
                    .map(|_| {
                        Err(SchedulerError::Store(StoreError::Unavailable {
                            backend: "store",
                            message: message.clone(),
                            source: None,
                        }))
                    })
                    .collect();
            }
        };
        if records.len() > 1 {
            self.stats.batched_polls.fetch_add(records.len() as u64, Ordering::Relaxed);
        }
        // One jitter for the whole group: devices read together that stay in the same
        // context stay due together, so the next read is a batch again.
        let jitter = self.jitter();
        let mut outcomes = Vec::with_capacity(records.len());
        for (record, result) in records.iter().zip(results) {
            let outcome = match result {
                Ok(observation) => self.store_observation(record, observation, jitter).await,
                Err(err) => self.handle_failure(record, err).await,
            };
            if let Ok(outcome) = &outcome {
                self.report(record, outcome);
            }
            outcomes.push(outcome);
        }
        outcomes
    }

    fn report(&self, record: &DeviceRecord, outcome: &PollOutcome) {
        let label = match outcome {
            PollOutcome::Stored { changed, .. } if changed.is_empty() => "unchanged",
            PollOutcome::Stored { .. } => "changed",
            PollOutcome::Failed { kind, .. } => kind.as_str(),
            PollOutcome::Deferred { reason, .. } => reason.as_str(),
            PollOutcome::Missing => "missing",
            PollOutcome::Stopped => "stopped",
        };
        metrics::counter!("oemgate_polls_total", "vendor" => record.vendor.clone(), "outcome" => label)
            .increment(1);
        if let Some(observer) = &self.observer {
            observer.observe(&PollReport {
                device: record,
                outcome,
                finished_at: self.clock.now(),
            });
        }
    }

    /// Exports the per-vendor gauges: breaker state, quota use, quota-stretched devices and
    /// requests per device-hour.
    fn export_gauges(&self) {
        for (vendor, gate) in &self.gates {
            let vendor = vendor.clone();
            metrics::gauge!("oemgate_breaker_state", "vendor" => vendor.clone())
                .set(gate.breaker_state().gauge() as f64);
            if gate.limits().daily_quota.is_some() {
                metrics::gauge!("oemgate_quota_used_ratio", "vendor" => vendor.clone())
                    .set(gate.quota_used_ratio());
                metrics::gauge!("oemgate_quota_stretched_devices", "vendor" => vendor.clone())
                    .set(gate.stretched_devices() as f64);
            }
            if let Some(rate) = self.requests_per_device_hour(&vendor) {
                metrics::gauge!("oemgate_vendor_requests_per_device_hour", "vendor" => vendor)
                    .set(rate);
            }
        }
    }

    /// Vendor requests per polled device per hour since this poller first polled the vendor
    /// (at least a minute, so the first polls do not read as a huge rate).
    pub fn requests_per_device_hour(&self, vendor: &str) -> Option<f64> {
        let usage = self.usage.lock().unwrap_or_else(|e| e.into_inner());
        let usage = usage.get(vendor)?;
        let since = usage.since?;
        let hours =
            ((self.clock.now() - since).num_milliseconds() as f64 / 3_600_000.0).max(1.0 / 60.0);
        let devices = usage.devices.len().max(1) as f64;
        Some(usage.requests as f64 / devices / hours)
    }

    /// Reads the devices of one account. One entry per device, in order; `Err` only when
    /// the store failed.
    async fn read_group(
        &self,
        records: &[DeviceRecord],
    ) -> Result<Vec<Result<Observation, ReadError>>, StoreError> {
        let Some(first) = records.first() else { return Ok(Vec::new()) };
        let all = |make: &dyn Fn() -> ReadError| records.iter().map(|_| Err(make())).collect();
        let gateway_error = |kind, message: String| {
            move || ReadError::Adapter(AdapterError::new(kind, "GATEWAY", message.clone()))
        };
        let Some(adapter) = self.adapters.get(&first.vendor).cloned() else {
            let message = format!("no adapter registered for vendor {}", first.vendor);
            return Ok(all(&gateway_error(ErrorKind::Unsupported, message)));
        };
        let Some(gate) = self.gates.get(&first.vendor).cloned() else {
            let message = format!("no adapter registered for vendor {}", first.vendor);
            return Ok(all(&gateway_error(ErrorKind::Unsupported, message)));
        };
        let Some(account) = self.store.get_account(&first.account_id).await? else {
            let message = format!("account {} is not linked", first.account_id);
            return Ok(all(&gateway_error(ErrorKind::Unauthorized, message)));
        };
        if account.invalid_since.is_some() {
            return Ok(all(&|| ReadError::AccountInvalid));
        }
        let mut account = account;
        let mut refreshed = false;

        // Split by the keys the vendor counts against: one admission per key.
        let limits = *gate.limits();
        let mut by_key: BTreeMap<(String, String), Vec<usize>> = BTreeMap::new();
        for (i, record) in records.iter().enumerate() {
            let device = &record.device;
            let site = device.site_id.as_deref();
            let rate_key =
                VendorGate::scope_key(limits.rate_scope, &record.account_id, site, &device.id);
            let quota_key = limits.daily_quota.map_or_else(
                || rate_key.clone(),
                |q| VendorGate::scope_key(q.per, &record.account_id, site, &device.id),
            );
            by_key.entry((rate_key, quota_key)).or_default().push(i);
        }
        let mut out: Vec<Option<Result<Observation, ReadError>>> =
            records.iter().map(|_| None).collect();
        // A batch is admitted at the sum of its devices' costs (the most it can spend), so a
        // batch never asks for more than the vendor's burst at once: larger groups are split
        // (FusionSolar allows one call a minute; its devices are then read one by one).
        let burst = if limits.requests_per_minute > 0 { limits.burst.max(1) } else { u32::MAX };
        let chunks = by_key.into_iter().flat_map(|(keys, indices)| {
            let mut chunks: Vec<((String, String), Vec<usize>)> = Vec::new();
            let mut current: Vec<usize> = Vec::new();
            let mut cost = 0u32;
            for i in indices {
                let c = adapter.poll_cost(records[i].device.device_type).max(1);
                if !current.is_empty() && cost.saturating_add(c) > burst {
                    chunks.push((keys.clone(), std::mem::take(&mut current)));
                    cost = 0;
                }
                current.push(i);
                cost = cost.saturating_add(c);
            }
            if !current.is_empty() {
                chunks.push((keys, current));
            }
            chunks
        });
        let chunks: Vec<_> = chunks.collect();
        for ((rate_key, quota_key), indices) in chunks {
            let devices: Vec<DeviceRef> =
                indices.iter().map(|&i| records[i].device.clone()).collect();
            let keys = Keys { rate: &rate_key, quota: &quota_key };
            let target = Target { adapter: adapter.as_ref(), gate: &gate, keys };
            let admitted = match self.admit(target, &devices) {
                Ok(admitted) => admitted,
                Err(deferred) => {
                    for &i in &indices {
                        out[i] = Some(Err(deferred.duplicate()));
                    }
                    continue;
                }
            };
            // Refresh credentials that are about to expire once the read is admitted, before
            // sending it: a read that would only come back AuthExpired wastes its budget
            // (tado's tokens live 10 minutes, SMA's 5), and a refresh for a read the gate
            // then holds back is wasted too (the token can expire again before the read is
            // admitted: SMA's refreshes outnumbered its reads four to one at 10,000 devices).
            if !refreshed && self.expiring(&account) {
                match self.refresh(adapter.as_ref(), &gate, &account).await {
                    Ok(fresh) => {
                        account = fresh;
                        refreshed = true;
                    }
                    Err(ReadError::Store(err)) => return Err(err),
                    Err(err) => {
                        admitted.unused(target);
                        for &i in &indices {
                            out[i] = Some(Err(err.duplicate()));
                        }
                        continue;
                    }
                }
            }
            let mut results = self.read_admitted(target, &account, &devices, admitted).await;
            // An expired token: refresh once (shared by the whole group) and read again.
            let expired: Vec<usize> = (0..results.len())
                .filter(|&j| matches!(&results[j], Err(e) if e.kind() == ErrorKind::AuthExpired))
                .collect();
            if !expired.is_empty() && !refreshed {
                match self.refresh(adapter.as_ref(), &gate, &account).await {
                    Ok(fresh) => {
                        account = fresh;
                        refreshed = true;
                        let again: Vec<DeviceRef> =
                            expired.iter().map(|&j| devices[j].clone()).collect();
                        let retried = self.read_batch(target, &account, &again).await;
                        for (&j, result) in expired.iter().zip(retried) {
                            results[j] = result;
                        }
                    }
                    Err(ReadError::Store(err)) => return Err(err),
                    Err(err) => {
                        for &j in &expired {
                            results[j] = Err(err.duplicate());
                        }
                    }
                }
            }
            for (&i, result) in indices.iter().zip(results) {
                out[i] = Some(result);
            }
        }
        Ok(out
            .into_iter()
            .map(|r| {
                r.unwrap_or_else(|| {
                    Err(ReadError::Adapter(AdapterError::new(
                        ErrorKind::Protocol,
                        "GATEWAY",
                        "the adapter returned no result for a device",
                    )))
                })
            })
            .collect())
    }

    /// Whether the account's access token expires within the next 30 seconds and can be
    /// refreshed.
    fn expiring(&self, account: &AccountRecord) -> bool {
        let credentials = &account.account.credentials;
        credentials.refresh_token.is_some()
            && credentials
                .expires_at
                .is_some_and(|at| at <= self.clock.now() + chrono::Duration::seconds(30))
    }

    /// Asks the gate to let a read of `devices` through. The admission reserves the sum of
    /// the devices' costs (an upper bound, so a limit is never exceeded).
    fn admit(&self, target: Target<'_>, devices: &[DeviceRef]) -> Result<Admitted, ReadError> {
        let Target { adapter, gate, keys } = target;
        let costs: Vec<u32> = devices.iter().map(|d| adapter.poll_cost(d.device_type)).collect();
        let reserved: u32 = costs.iter().sum();
        match gate.admit_poll(keys.rate, keys.quota, reserved) {
            Admission::Go(ticket) => Ok(Admitted { ticket, costs, reserved }),
            Admission::Defer { until, reason } => Err(ReadError::Deferred { until, reason }),
        }
    }

    /// One admission and one read: see [`Self::read_admitted`].
    async fn read_batch(
        &self,
        target: Target<'_>,
        account: &AccountRecord,
        devices: &[DeviceRef],
    ) -> Vec<Result<Observation, ReadError>> {
        match self.admit(target, devices) {
            Ok(admitted) => self.read_admitted(target, account, devices, admitted).await,
            Err(deferred) => devices.iter().map(|_| Err(deferred.duplicate())).collect(),
        }
    }

    /// One `poll_batch` call and one accounting for devices that share rate and quota keys,
    /// under an admission: what the batch did not spend goes back to the daily count.
    async fn read_admitted(
        &self,
        target: Target<'_>,
        account: &AccountRecord,
        devices: &[DeviceRef],
        admitted: Admitted,
    ) -> Vec<Result<Observation, ReadError>> {
        let Target { adapter, gate, keys } = target;
        let Admitted { ticket, costs, reserved } = admitted;
        let mut results = adapter.poll_batch(&account.account, devices).await;
        if results.len() != devices.len() {
            let message = format!(
                "poll_batch returned {} results for {} devices",
                results.len(),
                devices.len()
            );
            results = devices
                .iter()
                .map(|_| Err(AdapterError::new(ErrorKind::Protocol, "GATEWAY", message.clone())))
                .collect();
        }
        // Requests spent: what each observation says, and each failed device's full cost
        // (we cannot know how far a failed read got, so we assume the worst for the quota).
        let spent: u32 = results
            .iter()
            .zip(&costs)
            .map(|(r, cost)| match r {
                Ok(observation) => observation.requests,
                Err(_) => *cost,
            })
            .sum();
        gate.refund(keys.quota, reserved.saturating_sub(spent));
        // The breaker and holds see the batch as one call: it went through if any device
        // was read; otherwise the first error speaks for it.
        let first_error = results.iter().find_map(|r| r.as_ref().err());
        let vendor = gate.vendor().to_string();
        match (results.iter().any(Result::is_ok), first_error) {
            (false, Some(err)) => {
                if err.kind() == ErrorKind::RateLimited {
                    metrics::counter!("oemgate_vendor_rate_limited_total", "vendor" => vendor.clone())
                        .increment(1);
                }
                gate.record(keys.rate, Some((err.kind(), err.retry_after())));
            }
            _ => gate.record(keys.rate, None),
        }
        drop(ticket);
        self.count_requests(&vendor, devices, spent);
        results.into_iter().map(|r| r.map_err(ReadError::Adapter)).collect()
    }

    fn count_requests(&self, vendor: &str, devices: &[DeviceRef], n: u32) {
        self.stats.vendor_requests.fetch_add(u64::from(n), Ordering::Relaxed);
        metrics::counter!("oemgate_vendor_requests_total", "vendor" => vendor.to_string())
            .increment(u64::from(n));
        let mut usage = self.usage.lock().unwrap_or_else(|e| e.into_inner());
        let entry = usage.entry(vendor.to_string()).or_default();
        entry.requests += u64::from(n);
        entry.since.get_or_insert_with(|| self.clock.now());
        entry.devices.extend(devices.iter().map(|d| d.id.clone()));
    }

    /// The device's vendor gate and the key its daily quota is counted against, if the vendor
    /// has a daily quota.
    fn quota_key(&self, record: &DeviceRecord) -> Option<(&Arc<VendorGate>, String)> {
        let gate = self.gates.get(&record.vendor)?;
        let quota = gate.limits().daily_quota?;
        let device = &record.device;
        let site = device.site_id.as_deref();
        Some((gate, VendorGate::scope_key(quota.per, &record.account_id, site, &device.id)))
    }

    /// The interval the device's vendor quota, or the vendor's gateway-wide rate, allows for
    /// `context` (the longer), if the vendor has either.
    fn quota_stretch(
        &self,
        record: &DeviceRecord,
        context: PollContext,
    ) -> Option<chrono::Duration> {
        let gate = self.gates.get(&record.vendor)?;
        let adapter = self.adapters.get(&record.vendor)?;
        let demand = Demand {
            // The policy's own interval: a fixed policy wants more than the adaptive
            // planner, and a plan that counted less would leave the excess to queue.
            interval: self.policy.interval(record.device.device_type, context),
            cost: adapter.poll_cost(record.device.device_type),
            context,
        };
        let id = &record.device.id;
        let quota =
            self.quota_key(record).and_then(|(gate, key)| gate.quota_interval(&key, id, demand));
        let interval = quota.into_iter().chain(gate.rate_interval(id, demand)).max()?;
        chrono::Duration::from_std(interval).ok()
    }

    /// The registered adapters.
    pub fn adapters(&self) -> &Adapters {
        &self.adapters
    }

    /// The gate of a vendor, for metrics and health.
    pub fn vendor_gate(&self, vendor: &str) -> Option<Arc<VendorGate>> {
        self.gates.get(vendor).cloned()
    }

    /// The interval a device's vendor quota (or gateway-wide rate) currently allows it, when
    /// that is longer than its context asks for: the device cannot meet its bound and is
    /// reported as quota-limited. `None` for devices whose bound the limits can pay for.
    pub fn quota_limited_interval(&self, record: &DeviceRecord) -> Option<Duration> {
        let gate = self.gates.get(&record.vendor)?;
        let key = self.quota_key(record).map(|(_, key)| key);
        gate.stretched_interval(key.as_deref(), &record.device.id)
    }

    /// Refreshes an account's credentials and stores them with a compare-and-set, so that
    /// two instances never both spend a single-use refresh token: the loser of the race
    /// reloads the winner's credentials instead.
    ///
    /// While the vendor's breaker is open the refresh waits for the probe time instead of
    /// hammering the vendor's token endpoint. It spends no data rate or quota budget (token
    /// endpoints are not counted against them) and its outcome does not feed the breaker
    /// (the auth server may answer while the data API is down).
    async fn refresh(
        &self,
        adapter: &dyn VendorAdapter,
        gate: &VendorGate,
        account: &AccountRecord,
    ) -> Result<AccountRecord, ReadError> {
        if let Some(until) = gate.refresh_blocked_until() {
            return Err(ReadError::Deferred { until, reason: DeferReason::BreakerOpen });
        }
        let credentials = adapter.refresh_credentials(&account.account).await;
        self.count_requests(adapter.info().name, &[], 1);
        let credentials = credentials?;
        self.stats.credential_refreshes.fetch_add(1, Ordering::Relaxed);
        let mut updated = account.account.clone();
        updated.credentials = credentials;
        match self.store.put_account(updated.clone(), account.version).await {
            Ok(version) => Ok(AccountRecord { account: updated, version, invalid_since: None }),
            Err(StoreError::Conflict { .. }) => {
                let latest = self.store.get_account(&account.account.account_id).await?;
                Ok(latest.unwrap_or(AccountRecord {
                    account: updated,
                    version: account.version + 1,
                    invalid_since: None,
                }))
            }
            Err(err) => Err(err.into()),
        }
    }

    async fn store_observation(
        &self,
        record: &DeviceRecord,
        observation: Observation,
        jitter: f64,
    ) -> Result<PollOutcome, SchedulerError> {
        self.failures.lock().unwrap_or_else(|e| e.into_inner()).remove(&record.device.id);
        self.stats.polls_ok.fetch_add(1, Ordering::Relaxed);
        let previous = self.store.get_snapshot(&record.device.id).await?;
        let fresh = observation.state.to_json();
        let (resource, changed, expected) = match &previous {
            Some(prev) => {
                let resource =
                    if observation.asleep { merge_known(&prev.resource, &fresh) } else { fresh };
                let changed = updated_fields(&prev.resource, &resource);
                (resource, changed, prev.version)
            }
            None => (fresh, vec!["*".to_string()], 0),
        };
        let snapshot = Snapshot {
            device_id: record.device.id.clone(),
            user_id: record.device.user_id.clone(),
            device_type: record.device.device_type,
            version: expected + 1,
            observed_at: observation.observed_at,
            resource: resource.clone(),
        };
        let verb = if previous.is_none() { "discovered" } else { "updated" };
        // The statistics' history: one compact sample per successful read.
        oemgate_store::history::record_snapshot(self.store.as_ref(), &snapshot).await?;
        self.put_snapshot(record, snapshot, expected, verb, &changed).await?;
        let context =
            self.with_pending_actions(&record.device.id, detect_context(&observation)).await?;
        if let Some(prev) = &previous {
            // How old the stored data was when this read replaced it: the freshness the API
            // served, per context.
            let age = (observation.observed_at - prev.observed_at).to_std().unwrap_or_default();
            metrics::histogram!("oemgate_data_age_seconds", "context" => context.as_str())
                .record(age.as_secs_f64());
        }
        let mut next_due =
            self.policy.next_due(self.clock.now(), record.device.device_type, context, jitter);
        if let Some(stretched) = self.quota_stretch(record, context) {
            let floor = self.clock.now() + stretched;
            if floor > next_due {
                metrics::counter!(
                    "oemgate_polls_stretched_total",
                    "vendor" => record.vendor.clone(),
                    "context" => context.as_str()
                )
                .increment(1);
                next_due = floor;
            }
        }
        self.store.schedule(&record.device.id, next_due).await?;
        Ok(PollOutcome::Stored { changed, observed_at: observation.observed_at, context, next_due })
    }

    /// Stores a snapshot with a compare-and-set and appends the change event when something
    /// changed. A conflict means another instance stored a newer read meanwhile: ours is not
    /// newer, so it is dropped.
    async fn put_snapshot(
        &self,
        record: &DeviceRecord,
        snapshot: Snapshot,
        expected: u64,
        verb: &str,
        changed: &[String],
    ) -> Result<(), SchedulerError> {
        let resource = snapshot.resource.clone();
        match self.store.put_snapshot(snapshot, expected).await {
            Ok(_) => {
                if !changed.is_empty() {
                    self.stats.changes.fetch_add(1, Ordering::Relaxed);
                    let fields = if verb == "discovered" { Vec::new() } else { changed.to_vec() };
                    let device_type = record.device.device_type;
                    let event = Event {
                        id: String::new(),
                        event: format!("user:{}:{verb}", device_type.as_str()),
                        user_id: record.device.user_id.clone(),
                        created_at: self.clock.now(),
                        payload: serde_json::json!({
                            device_type.as_str(): resource,
                            "updatedFields": fields,
                        }),
                    };
                    self.store.append_event(event).await?;
                }
                Ok(())
            }
            Err(StoreError::Conflict { .. }) => {
                debug!(device = %record.device.id, "snapshot superseded");
                Ok(())
            }
            Err(err) => Err(err.into()),
        }
    }

    /// `context`, unless an action waits for the device to confirm it: then
    /// [`PollContext::ActionPending`], so the executor sees the effect of its command within
    /// the action-pending interval.
    async fn with_pending_actions(
        &self,
        device_id: &str,
        context: PollContext,
    ) -> Result<PollContext, StoreError> {
        let pending = self.store.pending_actions_for(device_id).await?;
        Ok(if pending.is_empty() { context } else { PollContext::ActionPending })
    }

    async fn handle_failure(
        &self,
        record: &DeviceRecord,
        err: ReadError,
    ) -> Result<PollOutcome, SchedulerError> {
        let err = match err {
            ReadError::Store(err) => return Err(err.into()),
            ReadError::AccountInvalid => {
                self.stop_polling(record).await?;
                return Ok(PollOutcome::Stopped);
            }
            ReadError::Deferred { until, reason } => {
                self.stats.deferrals.fetch_add(1, Ordering::Relaxed);
                // Spread deferred devices over a few seconds so they do not all return at
                // the same instant and get deferred again together.
                let spread = chrono::Duration::milliseconds((self.jitter() * 5000.0) as i64);
                let next_due = until.max(self.clock.now()) + spread;
                debug!(device = %record.device.id, reason = reason.as_str(), %next_due, "poll deferred");
                if reason == DeferReason::BreakerOpen {
                    // The vendor is failing: its devices cannot be read, and say so.
                    self.mark_unreachable(record).await?;
                }
                self.store.schedule(&record.device.id, next_due).await?;
                return Ok(PollOutcome::Deferred { reason, next_due });
            }
            ReadError::Adapter(err) => err,
        };
        self.stats.polls_failed.fetch_add(1, Ordering::Relaxed);
        if err.kind() == ErrorKind::Unauthorized {
            warn!(device = %record.device.id, vendor = %record.vendor, error = %err, "credentials rejected; polling stops until the user relinks");
            self.invalidate_account(record).await?;
            self.stop_polling(record).await?;
            return Ok(PollOutcome::Stopped);
        }
        let now = self.clock.now();
        let failures = {
            let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
            let n = map.entry(record.device.id.clone()).or_insert(0);
            *n = n.saturating_add(1);
            *n
        };
        let next_due = if err.kind() == ErrorKind::DeviceAsleep {
            // Asleep is not a failure of the vendor: come back on the sleeping bound (or the
            // action-pending interval while an action waits for the car).
            let context =
                self.with_pending_actions(&record.device.id, PollContext::Sleeping).await?;
            self.policy.next_due(now, record.device.device_type, context, self.jitter())
        } else {
            let due =
                self.planner.retry_due(now, failures, err.kind(), err.retry_after(), self.jitter());
            if matches!(err.kind(), ErrorKind::Transient | ErrorKind::Protocol)
                && err.retry_after().is_none()
            {
                // Errors that heal by themselves (an outage) never push a device past its
                // default bound: the vendor's breaker, not each device's backoff, keeps an
                // outage from costing requests, and when it ends every device is read again
                // within one bound.
                due.min(self.planner.next_due(now, PollContext::Default, 0.0))
            } else {
                due
            }
        };
        // A failure while the vendor's breaker is not closed (a failed probe) is an outage
        // speaking: the device cannot be read, whatever its own failure count.
        let vendor_down = self
            .gates
            .get(&record.vendor)
            .is_some_and(|g| g.breaker_state() != crate::breaker::BreakerState::Closed);
        if unreachable_after(err.kind(), failures)
            || (vendor_down && err.kind() == ErrorKind::Transient)
        {
            self.mark_unreachable(record).await?;
        }
        warn!(device = %record.device.id, vendor = %record.vendor, error = %err, %next_due, "poll failed");
        self.store.schedule(&record.device.id, next_due).await?;
        Ok(PollOutcome::Failed { kind: err.kind(), next_due })
    }

    /// Keeps the last known state but says the device cannot be read now: `isReachable`
    /// becomes false (an `updated` event tells subscribers). `lastSeen` stays what the vendor
    /// last reported.
    async fn mark_unreachable(&self, record: &DeviceRecord) -> Result<(), SchedulerError> {
        let Some(previous) = self.store.get_snapshot(&record.device.id).await? else {
            return Ok(());
        };
        if previous.resource.get("isReachable") != Some(&serde_json::Value::Bool(true)) {
            return Ok(());
        }
        let mut resource = previous.resource.clone();
        resource["isReachable"] = serde_json::Value::Bool(false);
        let snapshot = Snapshot { resource, version: previous.version + 1, ..previous.clone() };
        let changed = ["isReachable".to_string()];
        self.put_snapshot(record, snapshot, previous.version, "updated", &changed).await
    }

    /// Marks the device's account invalid and, the first time, tells the user through a
    /// `user:credentials:invalidated` event and stops polling the account's other devices.
    async fn invalidate_account(&self, record: &DeviceRecord) -> Result<(), SchedulerError> {
        let now = self.clock.now();
        if !self.store.invalidate_account(&record.account_id, now).await? {
            return Ok(());
        }
        self.stats.accounts_invalidated.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("oemgate_credentials_invalidated_total", "vendor" => record.vendor.clone())
            .increment(1);
        let user_id = record.device.user_id.clone();
        let event = Event {
            id: String::new(),
            event: "user:credentials:invalidated".to_string(),
            user_id: user_id.clone(),
            created_at: now,
            payload: serde_json::json!({ "user": { "id": user_id }, "vendor": record.vendor }),
        };
        self.store.append_event(event).await?;
        // The account's other devices leave the schedule now rather than each spending one
        // more rejected request.
        let filter = DeviceFilter { user_id: Some(user_id), ..DeviceFilter::default() };
        let mut page = PageRequest { page_size: 1000, ..PageRequest::default() };
        loop {
            let devices = self.store.list_devices(&filter, &page).await?;
            for other in devices.items.iter().filter(|d| d.account_id == record.account_id) {
                self.stop_polling(other).await?;
            }
            match devices.after {
                Some(after) if !devices.items.is_empty() => page.after = Some(after),
                _ => break,
            }
        }
        Ok(())
    }

    async fn stop_polling(&self, record: &DeviceRecord) -> Result<(), SchedulerError> {
        self.store.unschedule(&record.device.id).await?;
        self.failures.lock().unwrap_or_else(|e| e.into_inner()).remove(&record.device.id);
        if let Some(gate) = self.gates.get(&record.vendor) {
            gate.forget_device(&record.device.id);
        }
        Ok(())
    }
}

/// Whether a failure of `kind`, the `failures`-th in a row, means the device cannot be read:
/// at once when the vendor says so (offline, unknown), after two in a row for errors that may
/// be a blip. Our own limits (rate limits, deferrals) never make a device unreachable.
fn unreachable_after(kind: ErrorKind, failures: u32) -> bool {
    match kind {
        ErrorKind::DeviceOffline | ErrorKind::NotFound => true,
        ErrorKind::Transient | ErrorKind::Protocol => failures >= 2,
        _ => false,
    }
}

/// A number in [0, 1) from a string: the same for the same string.
fn unit_hash(s: &str) -> f64 {
    (oemgate_store::stable_hash(s) >> 11) as f64 / (1u64 << 53) as f64
}

/// The keys a batch is counted against.
#[derive(Clone, Copy)]
struct Keys<'a> {
    rate: &'a str,
    quota: &'a str,
}

/// A read the gate let through: the ticket (dropped when the read is done) and what it
/// reserved.
struct Admitted {
    ticket: Ticket,
    costs: Vec<u32>,
    reserved: u32,
}

impl Admitted {
    /// Nothing was sent after all: the reserved daily quota goes back.
    fn unused(self, target: Target<'_>) {
        target.gate.refund(target.keys.quota, self.reserved);
    }
}

/// What a batch is read through: the vendor's adapter, its gate and the keys the batch is
/// counted against.
#[derive(Clone, Copy)]
struct Target<'a> {
    adapter: &'a dyn VendorAdapter,
    gate: &'a VendorGate,
    keys: Keys<'a>,
}

enum ReadError {
    Adapter(AdapterError),
    Store(StoreError),
    Deferred {
        until: DateTime<Utc>,
        reason: DeferReason,
    },
    /// The account's credentials were rejected earlier; nothing is sent.
    AccountInvalid,
}

impl ReadError {
    fn kind(&self) -> ErrorKind {
        match self {
            ReadError::Adapter(err) => err.kind(),
            ReadError::AccountInvalid => ErrorKind::Unauthorized,
            ReadError::Store(_) | ReadError::Deferred { .. } => ErrorKind::Transient,
        }
    }

    /// A copy, to hand a failure shared by a group (a refresh) to each of its devices.
    fn duplicate(&self) -> ReadError {
        match self {
            ReadError::Adapter(err) => {
                let copy = AdapterError::new(err.kind(), err.vendor(), err.message());
                ReadError::Adapter(match err.retry_after() {
                    Some(after) => copy.with_retry_after(after),
                    None => copy,
                })
            }
            ReadError::Store(err) => ReadError::Store(StoreError::Unavailable {
                backend: "store",
                message: err.to_string(),
                source: None,
            }),
            ReadError::Deferred { until, reason } => {
                ReadError::Deferred { until: *until, reason: *reason }
            }
            ReadError::AccountInvalid => ReadError::AccountInvalid,
        }
    }
}

impl From<AdapterError> for ReadError {
    fn from(err: AdapterError) -> Self {
        ReadError::Adapter(err)
    }
}

impl From<StoreError> for ReadError {
    fn from(err: StoreError) -> Self {
        ReadError::Store(err)
    }
}
