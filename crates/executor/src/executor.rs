//! The I/O edge: creating, reading and cancelling actions, and the tick that drives every
//! pending action (send, wake, retry, confirm, time out) through the vendor adapters.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use oemgate_core::{
    AccountRef, ActionFailureReason, ActionState, AdapterError, Clock, Command, CommandReceipt,
    ErrorKind, FailureReasonType, VendorAdapter, VendorType,
};
use oemgate_scheduler::Adapters;
use oemgate_scheduler::Poller;
use oemgate_scheduler::breaker::BreakerConfig;
use oemgate_scheduler::diff::updated_fields;
use oemgate_scheduler::limits::{Admission, Ticket, VendorGate};
use oemgate_store::{ActionRecord, DeviceRecord, Event, Store, StoreError};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use thiserror::Error;
use tracing::{debug, info, warn};

use crate::action::{ActionRequest, Bookkeeping, StoredAction, VendorAction, reason};
use crate::config::ExecutorConfig;
use crate::plan::{
    Attempt, AttemptResult, Backoff, Finish, Observed, PlanInput, RetryBudget, Step, after_attempt,
    backoff, plan,
};
use crate::rules::{Refusal, check_creation, device_state, same_target, validate};

/// The event appended on every change of an action.
pub const ACTION_EVENT: &str = "user:vendor-action:updated";

/// Failures of the executor itself (a failed vendor request is part of an action's life, not
/// an error).
#[derive(Debug, Error)]
pub enum ExecutorError {
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
}

/// Why an action was not created.
#[derive(Debug, Error)]
pub enum CreateError {
    /// Invalid request, or the device cannot do it, or a precondition fails that will not
    /// change within the window (the API answers 400).
    #[error("{0}")]
    Refused(Refusal),
    /// No device of that class with that id (404).
    #[error("no {device_type} with id {id:?}")]
    NotFound {
        /// The class the route names.
        device_type: VendorType,
        /// The id asked for.
        id: String,
    },
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
}

/// Why an action was not cancelled.
#[derive(Debug, Error)]
pub enum CancelError {
    /// No such action for this device class (404).
    #[error("action not found")]
    NotFound,
    /// The action had already left PENDING; here it is, unchanged (409).
    #[error("action already resolved")]
    AlreadyResolved(Box<VendorAction>),
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
}

/// A created (or re-requested) action.
#[derive(Clone, Debug, PartialEq)]
pub struct Created {
    /// The action.
    pub action: VendorAction,
    /// It was already pending with the same kind and target state, and is returned again.
    pub existing: bool,
}

/// Counters for metrics and the demo's summary line.
#[derive(Debug, Default)]
pub struct ExecutorStats {
    /// Actions created.
    pub created: AtomicU64,
    /// Actions CONFIRMED.
    pub confirmed: AtomicU64,
    /// Actions FAILED.
    pub failed: AtomicU64,
    /// Actions CANCELLED (any reason).
    pub cancelled: AtomicU64,
    /// Command requests sent to vendors.
    pub commands: AtomicU64,
    /// Wake-up requests sent.
    pub wakes: AtomicU64,
    /// Requests that failed and were scheduled for a retry.
    pub retries: AtomicU64,
    /// Retries the budget held back.
    pub budget_denied: AtomicU64,
}

/// What one tick did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TickReport {
    /// Pending actions looked at.
    pub pending: usize,
    /// Commands sent (accepted or not).
    pub commands: usize,
    /// Wake-ups sent.
    pub wakes: usize,
    /// Actions that left PENDING.
    pub finished: usize,
    /// Actions another instance holds.
    pub leased_elsewhere: usize,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Driven {
    Finished,
    Command,
    Wake,
    Waiting,
    LeasedElsewhere,
    Skipped,
}

enum Resolved {
    Done(Box<VendorAction>),
    Terminal(Box<VendorAction>),
    Missing,
}

/// Drives actions: one per gateway instance; several instances share the work through
/// leases on the action records.
pub struct Executor {
    store: Arc<dyn Store>,
    adapters: Adapters,
    gates: HashMap<String, Arc<VendorGate>>,
    clock: Arc<dyn Clock>,
    config: ExecutorConfig,
    owner: String,
    budgets: Mutex<HashMap<String, RetryBudget>>,
    rng: Mutex<SmallRng>,
    stats: Arc<ExecutorStats>,
    create_lock: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Executor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Executor")
            .field("owner", &self.owner)
            .field("adapters", &self.adapters)
            .field("config", &self.config)
            .finish()
    }
}

fn add(t: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    t + chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

impl Executor {
    /// An executor over `store` sending through `adapters`, on `clock`. It has its own
    /// vendor gates built from the adapters' declared limits; share the poller's with
    /// [`Executor::with_gates_from`] so commands and reads count against the same limits.
    pub fn new(
        store: Arc<dyn Store>,
        adapters: Adapters,
        clock: Arc<dyn Clock>,
        config: ExecutorConfig,
    ) -> Self {
        let gates = adapters
            .iter()
            .map(|(vendor, adapter)| {
                let gate = VendorGate::new(
                    vendor,
                    adapter.limits(),
                    BreakerConfig::default(),
                    Arc::clone(&clock),
                );
                (vendor.to_string(), Arc::new(gate))
            })
            .collect();
        Self {
            store,
            adapters,
            gates,
            clock,
            config,
            owner: uuid::Uuid::new_v4().to_string(),
            budgets: Mutex::new(HashMap::new()),
            rng: Mutex::new(SmallRng::seed_from_u64(0x0e6a7e)),
            stats: Arc::new(ExecutorStats::default()),
            create_lock: tokio::sync::Mutex::new(()),
        }
    }

    /// Uses the poller's vendor gates (rate limits, quotas, holds after 429s, breakers).
    pub fn with_gates_from(mut self, poller: &Poller) -> Self {
        for vendor in self.adapters.vendors().map(str::to_string).collect::<Vec<_>>() {
            if let Some(gate) = poller.vendor_gate(&vendor) {
                self.gates.insert(vendor, gate);
            }
        }
        self
    }

    /// Names this instance in leases (default: a random id per executor).
    pub fn with_owner(mut self, owner: impl Into<String>) -> Self {
        self.owner = owner.into();
        self
    }

    /// Seeds the backoff jitter (simulations pass their seed).
    pub fn with_seed(self, seed: u64) -> Self {
        *self.rng.lock().unwrap_or_else(|e| e.into_inner()) = SmallRng::seed_from_u64(seed);
        self
    }

    /// The lease owner name of this instance.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// The settings.
    pub fn config(&self) -> &ExecutorConfig {
        &self.config
    }

    /// The counters.
    pub fn stats(&self) -> Arc<ExecutorStats> {
        Arc::clone(&self.stats)
    }

    fn jitter(&self) -> f64 {
        self.rng.lock().unwrap_or_else(|e| e.into_inner()).random::<f64>()
    }

    fn retry(&self) -> Backoff {
        Backoff { base: self.config.retry_backoff_base, max: self.config.retry_backoff_max }
    }

    // ---- the API's side -----------------------------------------------------------------

    /// Creates an action for the `device_type` device `device_id`.
    ///
    /// Checks the request on its own, then the device (404 when unknown or of another
    /// class), then its latest snapshot: capabilities, setpoint ranges and the preconditions
    /// that will not change within the window. A pending action for the device with the same
    /// kind and target state is returned as is (`existing`); any other pending action for it
    /// is cancelled (CONFLICT) before the new one is stored.
    pub async fn create(
        &self,
        device_type: VendorType,
        device_id: &str,
        request: ActionRequest,
    ) -> Result<Created, CreateError> {
        let target = request.target();
        if !target.device_types().contains(&device_type) {
            return Err(CreateError::Refused(Refusal::Precondition(format!(
                "A {} cannot take a {} action.",
                device_type.as_str(),
                target.name()
            ))));
        }
        validate(&request, self.config.max_current_limit).map_err(CreateError::Refused)?;
        let not_found = || CreateError::NotFound { device_type, id: device_id.to_string() };
        let device = self
            .store
            .get_device(device_id)
            .await?
            .filter(|d| d.device.device_type == device_type)
            .ok_or_else(not_found)?;
        if let Some(snapshot) = self.store.get_snapshot(device_id).await?
            && let Some(state) = device_state(snapshot.device_type, &snapshot.resource)
        {
            check_creation(&request, &state).map_err(CreateError::Refused)?;
        }

        // One creation at a time per instance, so two identical requests racing through the
        // same instance yield one action.
        let _guard = self.create_lock.lock().await;
        let pending = self.store.pending_actions_for(device_id).await?;
        let mut others = Vec::new();
        for record in &pending {
            match StoredAction::from_record(record) {
                Ok(s) if s.action.state() == ActionState::Pending => {
                    if same_target(&s.action.target(), &target) {
                        return Ok(Created { action: s.action, existing: true });
                    }
                    others.push(s.action.id().to_string());
                }
                Ok(_) => {}
                Err(err) => warn!(error = %err, "skipping an undecodable pending action"),
            }
        }
        let now = self.clock.now();
        let id = uuid::Uuid::new_v4().to_string();
        for old in others {
            let detail = format!("A newer action ({id}) for this device replaced this one.");
            let conflict = reason(FailureReasonType::Conflict, detail);
            self.resolve(&old, ActionState::Cancelled, Some(conflict), None).await?;
        }
        let action = VendorAction::new(
            id,
            device.device.user_id.clone(),
            device_id.to_string(),
            device_type,
            &request,
            now,
        );
        let policy = self.config.policy(&device.vendor);
        let book = Bookkeeping {
            vendor: device.vendor.clone(),
            deadline: Some(add(now, policy.timeout)),
            ..Bookkeeping::default()
        };
        let stored = StoredAction { action, book, version: 0 };
        self.store.put_action(stored.to_record(), 0).await?;
        self.stats.created.fetch_add(1, Ordering::Relaxed);
        self.append_event(&stored.action, None).await?;
        info!(action = %stored.action.id(), device = device_id, kind = target.name(), "action created");
        Ok(Created { action: stored.action, existing: false })
    }

    /// The action with this id, if it targets a `device_type` device.
    pub async fn get(
        &self,
        device_type: VendorType,
        action_id: &str,
    ) -> Result<Option<VendorAction>, StoreError> {
        let Some(record) = self.store.get_action(action_id).await? else { return Ok(None) };
        match StoredAction::from_record(&record) {
            Ok(s) if s.action.device_type() == device_type => Ok(Some(s.action)),
            Ok(_) => Ok(None),
            Err(err) => Err(StoreError::corrupt(format!("action {action_id}"), err)),
        }
    }

    /// Cancels a pending action (CANCELLED, REQUESTED_CANCELLATION). A command already queued
    /// in the vendor's cloud may still run.
    pub async fn cancel(
        &self,
        device_type: VendorType,
        action_id: &str,
    ) -> Result<VendorAction, CancelError> {
        if self.get(device_type, action_id).await?.is_none() {
            return Err(CancelError::NotFound);
        }
        let why = reason(
            FailureReasonType::RequestedCancellation,
            "The action was cancelled by request.",
        );
        match self.resolve(action_id, ActionState::Cancelled, Some(why), None).await? {
            Resolved::Done(action) => Ok(*action),
            Resolved::Terminal(action) => Err(CancelError::AlreadyResolved(action)),
            Resolved::Missing => Err(CancelError::NotFound),
        }
    }

    /// Moves a pending action to a terminal state with a compare-and-set (retried on
    /// conflicts), appending the event. `book` replaces the bookkeeping when given.
    async fn resolve(
        &self,
        action_id: &str,
        state: ActionState,
        why: Option<ActionFailureReason>,
        book: Option<&Bookkeeping>,
    ) -> Result<Resolved, StoreError> {
        for _ in 0..8 {
            let Some(record) = self.store.get_action(action_id).await? else {
                return Ok(Resolved::Missing);
            };
            let mut stored = StoredAction::from_record(&record)
                .map_err(|e| StoreError::corrupt(format!("action {action_id}"), e))?;
            if stored.action.state().is_terminal() {
                return Ok(Resolved::Terminal(Box::new(stored.action)));
            }
            let before = stored.action.to_json();
            stored.action.finish(state, why.clone(), self.clock.now());
            if let Some(book) = book {
                stored.book = book.clone();
            }
            match self.store.put_action(stored.to_record(), record.version).await {
                Ok(_) => {
                    self.count_finish(&stored.action);
                    self.append_event(&stored.action, Some(&before)).await?;
                    return Ok(Resolved::Done(Box::new(stored.action)));
                }
                Err(StoreError::Conflict { .. }) => continue,
                Err(err) => return Err(err),
            }
        }
        Err(StoreError::Conflict { key: format!("action {action_id}"), expected: 0, actual: 0 })
    }

    fn count_finish(&self, action: &VendorAction) {
        let state = action.state();
        let counter = match state {
            ActionState::Confirmed => &self.stats.confirmed,
            ActionState::Failed => &self.stats.failed,
            _ => &self.stats.cancelled,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        let why = action.failure_reason().map_or("", |r| r.r#type.as_str());
        metrics::counter!(
            "oemgate_actions_total",
            "kind" => action.target().name(),
            "state" => state.as_str(),
            "reason" => why
        )
        .increment(1);
        info!(action = %action.id(), state = state.as_str(), reason = why, "action resolved");
    }

    async fn append_event(
        &self,
        action: &VendorAction,
        before: Option<&Value>,
    ) -> Result<(), StoreError> {
        let after = action.to_json();
        let fields = updated_fields(before.unwrap_or(&json!({})), &after);
        let event = Event {
            id: String::new(),
            event: ACTION_EVENT.to_string(),
            user_id: action.user_id().to_string(),
            created_at: self.clock.now(),
            payload: json!({
                "user": { "id": action.user_id() },
                "vendorAction": after,
                "updatedFields": fields,
            }),
        };
        self.store.append_event(event).await.map(|_| ())
    }

    // ---- driving ------------------------------------------------------------------------

    /// Drives every pending action one step: confirms, times out, cancels, wakes, sends or
    /// re-sends as [`plan`] decides. Actions another instance holds a lease on are left to it.
    pub async fn tick(&self) -> Result<TickReport, ExecutorError> {
        let pending = self.store.pending_actions().await?;
        let mut report = TickReport { pending: pending.len(), ..TickReport::default() };
        let outcomes: Vec<_> = futures::stream::iter(pending)
            .map(|record| async move { self.drive(record).await })
            .buffer_unordered(self.config.max_in_flight.max(1))
            .collect()
            .await;
        for outcome in outcomes {
            match outcome {
                Ok(Driven::Finished) => report.finished += 1,
                Ok(Driven::Command) => report.commands += 1,
                Ok(Driven::Wake) => report.wakes += 1,
                Ok(Driven::LeasedElsewhere) => report.leased_elsewhere += 1,
                Ok(Driven::Waiting | Driven::Skipped) => {}
                Err(err) => warn!(error = %err, "store failed while driving an action"),
            }
        }
        Ok(report)
    }

    /// Runs ticks until `shutdown` resolves; store failures are logged and retried.
    pub async fn run(self: Arc<Self>, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        info!(owner = %self.owner, "executor started");
        loop {
            if let Err(err) = self.tick().await {
                warn!(error = %err, "executor tick failed");
            }
            let wait = self.clock.to_real(self.config.tick).max(Duration::from_millis(5));
            tokio::select! {
                _ = &mut shutdown => break,
                _ = tokio::time::sleep(wait) => {}
            }
        }
        info!("executor stopped");
    }

    async fn drive(&self, record: ActionRecord) -> Result<Driven, ExecutorError> {
        let now = self.clock.now();
        let stored = match StoredAction::from_record(&record) {
            Ok(s) => s,
            Err(err) => {
                warn!(error = %err, "skipping an undecodable pending action");
                return Ok(Driven::Skipped);
            }
        };
        if stored.action.state().is_terminal() {
            return Ok(Driven::Skipped);
        }
        if stored.book.leased_by_other(&self.owner, now) {
            return Ok(Driven::LeasedElsewhere);
        }
        let id = stored.action.id().to_string();
        let target_id = stored.action.target_id().to_string();
        let Some(device) = self.store.get_device(&target_id).await? else {
            let why = reason(
                FailureReasonType::NotFound,
                "The device was deleted while the action was pending.",
            );
            self.resolve(&id, ActionState::Cancelled, Some(why), None).await?;
            return Ok(Driven::Finished);
        };
        let policy = self.config.policy(&device.vendor);
        let target = stored.action.target();
        let snapshot = self.store.get_snapshot(&target_id).await?;
        let observed = snapshot.as_ref().and_then(|s| {
            device_state(s.device_type, &s.resource)
                .map(|state| Observed::of(&target, &state, s.observed_at))
        });
        let created_at = stored.action.created_at();
        let deadline = stored.book.deadline.unwrap_or_else(|| add(created_at, policy.timeout));
        let input = PlanInput {
            now,
            created_at,
            deadline,
            is_vehicle: device.device.device_type == VendorType::Vehicle,
            book: &stored.book,
            observed: observed.as_ref(),
            policy: &policy,
        };
        let (step, book) = plan(&input);
        match step {
            Step::Finish(Finish { state, reason }) => {
                self.resolve(&id, state, reason, Some(&book)).await?;
                Ok(Driven::Finished)
            }
            Step::Wait { until } => {
                if book != stored.book {
                    self.save_book(&stored, book).await?;
                }
                debug!(action = %id, %until, "waiting");
                Ok(Driven::Waiting)
            }
            Step::Wake => self.attempt(stored, book, &device, Attempt::Wake).await,
            Step::Send => self.attempt(stored, book, &device, Attempt::Command).await,
        }
    }

    /// Stores new bookkeeping for a still-pending action (compare-and-set; a conflict means
    /// someone else changed it and the next tick looks again).
    async fn save_book(
        &self,
        stored: &StoredAction,
        book: Bookkeeping,
    ) -> Result<Option<u64>, StoreError> {
        let next = StoredAction { action: stored.action.clone(), book, version: stored.version };
        match self.store.put_action(next.to_record(), stored.version).await {
            Ok(v) => Ok(Some(v)),
            Err(StoreError::Conflict { .. }) => Ok(None),
            Err(err) => Err(err),
        }
    }

    async fn attempt(
        &self,
        stored: StoredAction,
        mut book: Bookkeeping,
        device: &DeviceRecord,
        attempt: Attempt,
    ) -> Result<Driven, ExecutorError> {
        let now = self.clock.now();
        let id = stored.action.id().to_string();
        let policy = self.config.policy(&device.vendor);
        // Take (or renew) the lease with a compare-and-set: only one instance sends.
        book.owner = Some(self.owner.clone());
        book.lease_until = Some(add(now, self.config.lease));
        let Some(version) = self.save_book(&stored, book.clone()).await? else {
            return Ok(Driven::Skipped);
        };
        let mut leased =
            StoredAction { action: stored.action.clone(), book: book.clone(), version };

        let vendor = device.vendor.clone();
        let retry = book.failures > 0;
        let allowed = {
            let mut budgets = self.budgets.lock().unwrap_or_else(|e| e.into_inner());
            let budget = budgets
                .entry(vendor.clone())
                .or_insert_with(|| RetryBudget::new(self.config.retry_budget));
            if retry {
                budget.try_withdraw(now)
            } else {
                budget.deposit(now);
                true
            }
        };
        if !allowed {
            self.stats.budget_denied.fetch_add(1, Ordering::Relaxed);
            let delay = backoff(book.failures, None, self.retry(), self.jitter());
            book.not_before = Some(add(now, delay));
            debug!(action = %id, vendor = %vendor, "retry budget exhausted; retrying later");
            self.save_book(&leased, book).await?;
            return Ok(Driven::Waiting);
        }

        let command = match attempt {
            Attempt::Command => stored.action.target().command(),
            Attempt::Wake => Command::WakeUp,
        };
        let result = self.request(device, &command).await?;
        let sent = !matches!(result, AttemptResult::Deferred { .. });
        if !sent {
            let mut budgets = self.budgets.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(budget) = budgets.get_mut(&vendor) {
                budget.refund(retry);
            }
        }
        let label = match &result {
            AttemptResult::Accepted => "accepted",
            AttemptResult::Deferred { .. } => "deferred",
            AttemptResult::Failed { kind, .. } => kind.as_str(),
        };
        metrics::counter!(
            "oemgate_action_requests_total",
            "vendor" => vendor.clone(),
            "request" => command.name(),
            "outcome" => label
        )
        .increment(1);
        if sent && attempt == Attempt::Wake {
            // Wake-ups cost money (Tesla bills them) and battery: count them apart.
            metrics::counter!("oemgate_vehicle_wakeups_total", "vendor" => vendor.clone())
                .increment(1);
        }
        if sent {
            let counter =
                if attempt == Attempt::Wake { &self.stats.wakes } else { &self.stats.commands };
            counter.fetch_add(1, Ordering::Relaxed);
        }
        if let AttemptResult::Failed { kind, message, .. } = &result {
            self.stats.retries.fetch_add(1, Ordering::Relaxed);
            debug!(action = %id, vendor = %vendor, request = command.name(), kind = kind.as_str(), message, "request failed");
        }
        let done = self.clock.now();
        let (book, finish) =
            after_attempt(&book, attempt, &result, done, &policy, self.retry(), self.jitter());
        if matches!(result, AttemptResult::Accepted) {
            // Look at the device soon: the poller reads it on the action-pending cadence, and
            // this brings the first read forward.
            let due = add(done, self.config.confirm_poll);
            self.store.schedule_earlier(&device.device.id, due).await?;
        }
        if let Some(Finish { state, reason }) = finish {
            self.resolve(&id, state, reason, Some(&book)).await?;
            return Ok(Driven::Finished);
        }
        leased.book = book;
        if self.save_book(&leased, leased.book.clone()).await?.is_none() {
            // Changed meanwhile (most likely cancelled or superseded through the API): keep
            // our counters if it is still pending.
            if let Some(record) = self.store.get_action(&id).await?
                && let Ok(mut latest) = StoredAction::from_record(&record)
                && latest.action.state() == ActionState::Pending
            {
                latest.book = leased.book.clone();
                self.save_book(&latest, latest.book.clone()).await?;
            }
        }
        Ok(match (sent, attempt) {
            (false, _) => Driven::Waiting,
            (true, Attempt::Command) => Driven::Command,
            (true, Attempt::Wake) => Driven::Wake,
        })
    }

    fn gate(&self, vendor: &str) -> Option<Arc<VendorGate>> {
        self.gates.get(vendor).cloned()
    }

    /// Sends one command through the vendor's gate and adapter; refreshes expired
    /// credentials once (compare-and-set, like the poller).
    async fn request(
        &self,
        device: &DeviceRecord,
        command: &Command,
    ) -> Result<AttemptResult, StoreError> {
        let failed = |kind: ErrorKind, message: String| AttemptResult::Failed {
            kind,
            retry_after: None,
            message,
        };
        let Some(adapter) = self.adapters.get(&device.vendor).cloned() else {
            return Ok(failed(
                ErrorKind::Unsupported,
                format!("no adapter registered for vendor {}", device.vendor),
            ));
        };
        let Some(account) = self.store.get_account(&device.account_id).await? else {
            return Ok(failed(
                ErrorKind::Unauthorized,
                format!("account {} is not linked", device.account_id),
            ));
        };
        let Some(gate) = self.gate(&device.vendor) else {
            return Ok(failed(
                ErrorKind::Unsupported,
                format!("no limits known for vendor {}", device.vendor),
            ));
        };
        let limits = *gate.limits();
        let d = &device.device;
        let site = d.site_id.as_deref();
        let rate_key = VendorGate::scope_key(limits.rate_scope, &device.account_id, site, &d.id);
        let quota_key = limits.daily_quota.map_or_else(
            || rate_key.clone(),
            |q| VendorGate::scope_key(q.per, &device.account_id, site, &d.id),
        );
        let ticket = match gate.admit(&rate_key, &quota_key, 1) {
            Admission::Go(ticket) => ticket,
            Admission::Defer { until, .. } => return Ok(AttemptResult::Deferred { until }),
        };
        let first = adapter.execute(&account.account, d, command).await;
        settle(&gate, &rate_key, ticket, &first);
        let err = match first {
            Ok(_) => return Ok(AttemptResult::Accepted),
            Err(err) => err,
        };
        if err.kind() != ErrorKind::AuthExpired {
            return Ok(failure(&err));
        }
        let refreshed =
            match self.refresh(adapter.as_ref(), &account.account, account.version).await {
                Ok(account) => account,
                Err(RefreshError::Store(err)) => return Err(err),
                Err(RefreshError::Adapter(err)) => return Ok(failure(&err)),
            };
        let ticket = match gate.admit(&rate_key, &quota_key, 1) {
            Admission::Go(ticket) => ticket,
            Admission::Defer { until, .. } => return Ok(AttemptResult::Deferred { until }),
        };
        let second = adapter.execute(&refreshed, d, command).await;
        settle(&gate, &rate_key, ticket, &second);
        Ok(match second {
            Ok(_) => AttemptResult::Accepted,
            Err(err) => failure(&err),
        })
    }

    async fn refresh(
        &self,
        adapter: &dyn VendorAdapter,
        account: &AccountRef,
        version: u64,
    ) -> Result<AccountRef, RefreshError> {
        let credentials =
            adapter.refresh_credentials(account).await.map_err(RefreshError::Adapter)?;
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
}

enum RefreshError {
    Adapter(AdapterError),
    Store(StoreError),
}

impl From<StoreError> for RefreshError {
    fn from(err: StoreError) -> Self {
        RefreshError::Store(err)
    }
}

fn failure(err: &AdapterError) -> AttemptResult {
    AttemptResult::Failed {
        kind: err.kind(),
        retry_after: err.retry_after(),
        message: err.to_string(),
    }
}

fn settle(
    gate: &VendorGate,
    rate_key: &str,
    ticket: Ticket,
    result: &Result<CommandReceipt, AdapterError>,
) {
    let requests = match result {
        Ok(receipt) => {
            gate.record(rate_key, None);
            receipt.requests
        }
        Err(err) => {
            gate.record(rate_key, Some((err.kind(), err.retry_after())));
            1
        }
    };
    metrics::counter!("oemgate_vendor_requests_total", "vendor" => gate.vendor().to_string())
        .increment(u64::from(requests));
    drop(ticket);
}
