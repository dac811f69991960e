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

use crate::diff::{merge_known, updated_fields};
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
        Self {
            store,
            adapters,
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
        match result {
            Ok(observation) => self.store_observation(&record, observation).await,
            Err(err) => self.handle_failure(&record, err).await,
        }
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
        match adapter.poll(&account.account, &record.device).await {
            Ok(observation) => {
                self.count_requests(observation.requests);
                Ok(observation)
            }
            Err(err) if err.kind() == ErrorKind::AuthExpired => {
                self.count_requests(1);
                let refreshed =
                    self.refresh(adapter.as_ref(), &account.account, account.version).await?;
                let observation = adapter.poll(&refreshed, &record.device).await?;
                self.count_requests(observation.requests);
                Ok(observation)
            }
            Err(err) => {
                self.count_requests(1);
                Err(err.into())
            }
        }
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
        let context = detect_context(&observation);
        let next_due = self.planner.next_due(self.clock.now(), context, self.jitter());
        self.store.schedule(&record.device.id, next_due).await?;
        Ok(PollOutcome::Stored { changed, context, next_due })
    }

    async fn handle_failure(
        &self,
        record: &DeviceRecord,
        err: ReadError,
    ) -> Result<PollOutcome, SchedulerError> {
        let err = match err {
            ReadError::Store(err) => return Err(err.into()),
            ReadError::Adapter(err) => err,
        };
        self.stats.polls_failed.fetch_add(1, Ordering::Relaxed);
        let now = self.clock.now();
        let next_due = if err.kind() == ErrorKind::DeviceAsleep {
            // Asleep is not a failure of the vendor: come back on the sleeping bound.
            self.planner.next_due(now, PollContext::Sleeping, self.jitter())
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
