//! The poll loop: the I/O edge of the scheduler.
//!
//! Each tick claims the devices that are due from the store's schedule (a lease, so another
//! instance does not poll them too), reads them through their vendor's adapter, stores the
//! snapshot with a compare-and-set on its version, appends a change event when something
//! changed and puts the device back on the schedule at the time the planner chose. An
//! instance that dies mid-poll loses nothing: the lease runs out and another instance claims
//! the device.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use oemgate_core::{
    AccountRef, AdapterError, Clock, ErrorKind, Observation, PollContext, VendorAdapter,
};
use oemgate_store::{DeviceRecord, Event, Snapshot, Store, StoreError};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use thiserror::Error;
use tracing::{debug, info, warn};

use crate::breaker::BreakerConfig;
use crate::diff::{merge_known, updated_fields};
use crate::limits::{Admission, DeferReason, Ticket, VendorGate};
use crate::planner::{Planner, PlannerConfig, detect_context};

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
}

/// What one poll did.
#[derive(Clone, Debug, PartialEq)]
pub enum PollOutcome {
    /// Stored a snapshot; `changed` lists the updated fields (all fields on first sight).
    Stored {
        /// Updated fields.
        changed: Vec<String>,
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
    config: PollerConfig,
    rng: Mutex<SmallRng>,
    failures: Mutex<HashMap<String, u32>>,
    stats: Arc<PollerStats>,
}

impl std::fmt::Debug for Poller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Poller")
            .field("adapters", &self.adapters)
            .field("config", &self.config)
            .finish()
    }
}

impl Poller {
    /// A poller over `store` using `adapters`, reading time from `clock`. `seed` seeds the
    /// jitter so simulations are reproducible.
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
            config,
            rng: Mutex::new(SmallRng::seed_from_u64(seed)),
            failures: Mutex::new(HashMap::new()),
            stats: Arc::new(PollerStats::default()),
        }
    }

    /// The counters.
    pub fn stats(&self) -> Arc<PollerStats> {
        Arc::clone(&self.stats)
    }

    fn jitter(&self) -> f64 {
        self.rng.lock().unwrap_or_else(|e| e.into_inner()).random::<f64>()
    }

    /// Registers a device and schedules its first poll within the startup spread.
    pub async fn register(&self, record: DeviceRecord) -> Result<(), SchedulerError> {
        let id = record.device.id.clone();
        self.store.put_device(record).await?;
        let due =
            self.planner.initial_due(self.clock.now(), self.config.startup_spread, self.jitter());
        self.store.schedule(&id, due).await?;
        Ok(())
    }

    /// Claims the due devices and polls them. Returns what it did.
    pub async fn tick(&self) -> Result<TickReport, SchedulerError> {
        let now = self.clock.now();
        let lease_until =
            now + chrono::Duration::from_std(self.config.lease).unwrap_or(chrono::Duration::MAX);
        let claimed = self.store.claim_due(now, self.config.batch_size, lease_until).await?;
        for (_, due) in &claimed {
            let lag = (now - *due).to_std().unwrap_or_default();
            metrics::histogram!("oemgate_schedule_lag_seconds").record(lag.as_secs_f64());
        }
        let outcomes: Vec<_> = futures::stream::iter(claimed)
            .map(|(id, _)| async move { self.poll_device(&id).await })
            .buffer_unordered(self.config.max_in_flight.max(1))
            .collect()
            .await;
        let mut report = TickReport::default();
        for outcome in outcomes {
            report.polled += 1;
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
        let result = self.read(&record).await;
        let outcome = match result {
            Ok(observation) => self.store_observation(&record, observation).await?,
            Err(err) => self.handle_failure(&record, err).await?,
        };
        let label = match &outcome {
            PollOutcome::Stored { changed, .. } if changed.is_empty() => "unchanged",
            PollOutcome::Stored { .. } => "changed",
            PollOutcome::Failed { kind, .. } => kind.as_str(),
            PollOutcome::Deferred { reason, .. } => reason.as_str(),
            PollOutcome::Missing => "missing",
        };
        metrics::counter!("oemgate_polls_total", "vendor" => record.vendor.clone(), "outcome" => label)
            .increment(1);
        if let Some(gate) = self.gates.get(&record.vendor) {
            metrics::gauge!("oemgate_breaker_state", "vendor" => record.vendor.clone())
                .set(gate.breaker_state().gauge() as f64);
        }
        Ok(outcome)
    }

    async fn read(&self, record: &DeviceRecord) -> Result<Observation, ReadError> {
        let adapter = self.adapters.get(&record.vendor).ok_or_else(|| {
            ReadError::Adapter(AdapterError::new(
                ErrorKind::Unsupported,
                "GATEWAY",
                format!("no adapter registered for vendor {}", record.vendor),
            ))
        })?;
        let account = self.store.get_account(&record.account_id).await?.ok_or_else(|| {
            ReadError::Adapter(AdapterError::new(
                ErrorKind::Unauthorized,
                "GATEWAY",
                format!("account {} is not linked", record.account_id),
            ))
        })?;
        let gate = self.gate(&record.vendor)?;
        let limits = gate.limits();
        let device = &record.device;
        let site = device.site_id.as_deref();
        let rate_key =
            VendorGate::scope_key(limits.rate_scope, &record.account_id, site, &device.id);
        let quota_key = limits.daily_quota.map_or_else(
            || rate_key.clone(),
            |q| VendorGate::scope_key(q.per, &record.account_id, site, &device.id),
        );
        let cost = adapter.poll_cost(device.device_type);
        // Refresh credentials that are about to expire before spending rate or quota budget on
        // a read that would only come back AuthExpired (tado's tokens live 10 minutes, SMA's
        // 5: without this, every other poll would cost its budget twice).
        let expiring = account
            .account
            .credentials
            .expires_at
            .is_some_and(|at| at <= self.clock.now() + chrono::Duration::seconds(30));
        let account = if expiring && account.account.credentials.refresh_token.is_some() {
            let refreshed =
                self.refresh(adapter.as_ref(), &account.account, account.version).await?;
            oemgate_store::AccountRecord { account: refreshed, version: account.version + 1 }
        } else {
            account
        };
        let ticket = self.admit(&gate, &rate_key, &quota_key, cost)?;
        let first = adapter.poll(&account.account, device).await;
        self.settle(&gate, &rate_key, ticket, &first);
        match first {
            Ok(observation) => Ok(observation),
            Err(err) if err.kind() == ErrorKind::AuthExpired => {
                let refreshed =
                    self.refresh(adapter.as_ref(), &account.account, account.version).await?;
                let ticket = self.admit(&gate, &rate_key, &quota_key, cost)?;
                let second = adapter.poll(&refreshed, device).await;
                self.settle(&gate, &rate_key, ticket, &second);
                Ok(second?)
            }
            Err(err) => Err(err.into()),
        }
    }

    fn gate(&self, vendor: &str) -> Result<Arc<VendorGate>, ReadError> {
        self.gates.get(vendor).cloned().ok_or_else(|| {
            ReadError::Adapter(AdapterError::new(
                ErrorKind::Unsupported,
                "GATEWAY",
                format!("no adapter registered for vendor {vendor}"),
            ))
        })
    }

    fn admit(
        &self,
        gate: &VendorGate,
        rate_key: &str,
        quota_key: &str,
        cost: u32,
    ) -> Result<Ticket, ReadError> {
        match gate.admit(rate_key, quota_key, cost) {
            Admission::Go(ticket) => Ok(ticket),
            Admission::Defer { until, reason } => Err(ReadError::Deferred { until, reason }),
        }
    }

    /// Counts the requests a call made and tells the gate how it went.
    fn settle(
        &self,
        gate: &VendorGate,
        rate_key: &str,
        ticket: Ticket,
        result: &Result<Observation, AdapterError>,
    ) {
        let vendor = gate.vendor().to_string();
        let requests = match result {
            Ok(observation) => {
                gate.record(rate_key, None);
                observation.requests
            }
            Err(err) => {
                if err.kind() == ErrorKind::RateLimited {
                    metrics::counter!("oemgate_vendor_rate_limited_total", "vendor" => vendor.clone())
                        .increment(1);
                }
                gate.record(rate_key, Some((err.kind(), err.retry_after())));
                1
            }
        };
        self.count_requests(requests);
        metrics::counter!("oemgate_vendor_requests_total", "vendor" => vendor)
            .increment(u64::from(requests));
        drop(ticket);
    }

    /// The interval a device's share of its vendor's daily quota allows, if the vendor has one.
    fn quota_stretch(&self, record: &DeviceRecord) -> Option<chrono::Duration> {
        let gate = self.gates.get(&record.vendor)?;
        let adapter = self.adapters.get(&record.vendor)?;
        let quota = gate.limits().daily_quota?;
        let device = &record.device;
        let key = VendorGate::scope_key(
            quota.per,
            &record.account_id,
            device.site_id.as_deref(),
            &device.id,
        );
        let interval =
            gate.quota_interval(&key, &device.id, adapter.poll_cost(device.device_type))?;
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

    /// Refreshes an account's credentials and stores them with a compare-and-set, so that
    /// two instances never both spend a single-use refresh token: the loser of the race
    /// reloads the winner's credentials instead.
    async fn refresh(
        &self,
        adapter: &dyn VendorAdapter,
        account: &AccountRef,
        version: u64,
    ) -> Result<AccountRef, ReadError> {
        let credentials = adapter.refresh_credentials(account).await?;
        self.count_requests(1);
        self.stats.credential_refreshes.fetch_add(1, Ordering::Relaxed);
        let mut updated = account.clone();
        updated.credentials = credentials;
        match self.store.put_account(updated.clone(), version).await {
            Ok(_) => Ok(updated),
            Err(StoreError::Conflict { .. }) => {
                let latest = self.store.get_account(&account.account_id).await?;
                Ok(latest.map(|r| r.account).unwrap_or(updated))
            }
            Err(err) => Err(err.into()),
        }
    }

    fn count_requests(&self, n: u32) {
        self.stats.vendor_requests.fetch_add(u64::from(n), Ordering::Relaxed);
    }

    async fn store_observation(
        &self,
        record: &DeviceRecord,
        observation: Observation,
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
        let device_type = record.device.device_type;
        let snapshot = Snapshot {
            device_id: record.device.id.clone(),
            user_id: record.device.user_id.clone(),
            device_type,
            version: expected + 1,
            observed_at: observation.observed_at,
            resource: resource.clone(),
        };
        match self.store.put_snapshot(snapshot, expected).await {
            Ok(_) => {
                if !changed.is_empty() {
                    self.stats.changes.fetch_add(1, Ordering::Relaxed);
                    let (verb, fields) = if previous.is_none() {
                        ("discovered", Vec::new())
                    } else {
                        ("updated", changed.clone())
                    };
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
            }
            // Another instance stored a newer read meanwhile; ours is not newer, drop it.
            Err(StoreError::Conflict { .. }) => {
                debug!(device = %record.device.id, "snapshot superseded")
            }
            Err(err) => return Err(err.into()),
        }
        let context =
            self.with_pending_actions(&record.device.id, detect_context(&observation)).await?;
        if let Some(prev) = &previous {
            // How old the stored data was when this read replaced it: the freshness the API
            // served, per context.
            let age = (observation.observed_at - prev.observed_at).to_std().unwrap_or_default();
            metrics::histogram!("oemgate_data_age_seconds", "context" => context.as_str())
                .record(age.as_secs_f64());
        }
        let mut next_due = self.planner.next_due(self.clock.now(), context, self.jitter());
        if let Some(stretched) = self.quota_stretch(record) {
            // A daily quota that cannot meet the context's bound for every device sharing it
            // stretches all of them evenly (pending actions excepted: they are few and short).
            if context != PollContext::ActionPending {
                let floor = self.clock.now() + stretched;
                if floor > next_due {
                    metrics::counter!("oemgate_polls_stretched_total", "vendor" => record.vendor.clone())
                        .increment(1);
                    next_due = floor;
                }
            }
        }
        self.store.schedule(&record.device.id, next_due).await?;
        Ok(PollOutcome::Stored { changed, context, next_due })
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
            ReadError::Deferred { until, reason } => {
                self.stats.deferrals.fetch_add(1, Ordering::Relaxed);
                // Spread deferred devices over a few seconds so they do not all return at
                // the same instant and get deferred again together.
                let spread = chrono::Duration::milliseconds((self.jitter() * 5000.0) as i64);
                let next_due = until.max(self.clock.now()) + spread;
                debug!(device = %record.device.id, reason = reason.as_str(), %next_due, "poll deferred");
                self.store.schedule(&record.device.id, next_due).await?;
                return Ok(PollOutcome::Deferred { reason, next_due });
            }
            ReadError::Adapter(err) => err,
        };
        self.stats.polls_failed.fetch_add(1, Ordering::Relaxed);
        let now = self.clock.now();
        let next_due = if err.kind() == ErrorKind::DeviceAsleep {
            // Asleep is not a failure of the vendor: come back on the sleeping bound (or the
            // action-pending interval while an action waits for the car).
            let context =
                self.with_pending_actions(&record.device.id, PollContext::Sleeping).await?;
            self.planner.next_due(now, context, self.jitter())
        } else {
            let failures = {
                let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
                let n = map.entry(record.device.id.clone()).or_insert(0);
                *n = n.saturating_add(1);
                *n
            };
            self.planner.retry_due(now, failures, err.kind(), err.retry_after(), self.jitter())
        };
        warn!(device = %record.device.id, vendor = %record.vendor, error = %err, %next_due, "poll failed");
        self.store.schedule(&record.device.id, next_due).await?;
        Ok(PollOutcome::Failed { kind: err.kind(), next_due })
    }
}

enum ReadError {
    Adapter(AdapterError),
    Store(StoreError),
    Deferred { until: DateTime<Utc>, reason: DeferReason },
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
