//! The dispatcher: delivers every webhook's pending events, at least once, in order.
//!
//! One turn for one webhook ([`Dispatcher::turn`]): skip it when inactive or not due (backing
//! off), take its lease (so one instance delivers it at a time), then repeatedly read up to
//! `batch_size` pending events (events after the cursor that belong to the webhook's client's
//! users and match its filter), POST them as one signed JSON array, and on a 2xx move the
//! cursor past them (compare-and-set, so it never moves backwards). A failure keeps the cursor
//! and schedules the next attempt with exponential backoff and jitter; a webhook failing for
//! longer than the retry window has its pending events dropped and is deactivated.
//!
//! At least once: the cursor moves only after the receiver acknowledged; a crash between the
//! acknowledgement and the cursor write means the batch is sent again (same event ids, new
//! `x-enode-delivery`). Order: a webhook's events go out in log order, one batch at a time;
//! a failed batch is retried before anything after it.
//!
//! [`Dispatcher::tick`] runs one turn for every webhook and waits for them (tests step it on a
//! manual clock); [`Dispatcher::run`] starts turns as webhooks fall due, at most `concurrency`
//! at a time, never waiting for one webhook before starting another's, so a slow or dead
//! receiver delays nobody else.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use futures::StreamExt;
use oemgate_core::Clock;
use oemgate_store::{Event, PageRequest, ResourceOwner, Store, StoreError, WebhookState};
use rand::{Rng, SeedableRng};
use serde_json::Value;
use tracing::{debug, info, warn};

use crate::model::{KIND, Webhook};
use crate::outbox;
use crate::render::render;
use crate::sender::Sender;

/// How the dispatcher paces and bounds itself.
#[derive(Clone, Debug)]
pub struct DispatcherConfig {
    /// How long a webhook may keep failing before its pending events are dropped and it is
    /// deactivated (Enode: 24 h).
    pub retry_window: Duration,
    /// Turns (webhooks being delivered) at a time.
    pub concurrency: usize,
    /// Events per POST (Enode: up to 100).
    pub batch_size: usize,
    /// The first retry delay; it doubles per failed attempt ...
    pub backoff_min: Duration,
    /// ... up to this.
    pub backoff_max: Duration,
    /// How often [`Dispatcher::run`] looks for due webhooks (clock time).
    pub tick: Duration,
    /// How long a turn's lease lasts (clock time); renewed before every batch.
    pub lease: Duration,
    /// Batches one turn sends at most before giving others their turn.
    pub max_batches_per_turn: usize,
    /// Events one look for pending events reads at most (the rest waits for the next turn).
    pub scan_limit: usize,
}

impl Default for DispatcherConfig {
    fn default() -> Self {
        Self {
            retry_window: Duration::from_secs(24 * 3600),
            concurrency: 16,
            batch_size: 100,
            backoff_min: Duration::from_secs(30),
            backoff_max: Duration::from_secs(3600),
            tick: Duration::from_secs(1),
            lease: Duration::from_secs(60),
            max_batches_per_turn: 10,
            scan_limit: 10_000,
        }
    }
}

/// The delay before retry number `attempts` (1 = after the first failure): `backoff_min`
/// doubling per attempt, at most `backoff_max`, then shortened by up to a quarter by `jitter`
/// (in `0..1`) so failing webhooks do not retry in lockstep.
pub fn backoff_delay(attempts: u32, min: Duration, max: Duration, jitter: f64) -> Duration {
    let doublings = attempts.saturating_sub(1).min(32);
    let full = min.saturating_mul(1u32 << doublings.min(31)).min(max);
    let jitter = if jitter.is_finite() { jitter.clamp(0.0, 1.0) } else { 0.0 };
    full.mul_f64(1.0 - 0.25 * jitter)
}

/// Counters since start (also exported as Prometheus metrics).
#[derive(Debug, Default)]
pub struct DispatcherStats {
    /// POSTs acknowledged with a 2xx.
    pub deliveries_ok: AtomicU64,
    /// POSTs that failed (non-2xx, timeout, connection error).
    pub deliveries_failed: AtomicU64,
    /// Events acknowledged.
    pub events_delivered: AtomicU64,
    /// Events dropped when a webhook ran out of its retry window.
    pub events_dropped: AtomicU64,
    /// Webhooks deactivated.
    pub deactivated: AtomicU64,
}

/// What one turn did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TurnReport {
    /// Batches acknowledged.
    pub acknowledged: usize,
    /// Batches that failed.
    pub failed: usize,
    /// Events acknowledged.
    pub events: usize,
    /// Whether the webhook was deactivated.
    pub deactivated: bool,
}

/// Errors of a turn (the store failing); the next turn tries again.
#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Pending events found after a cursor.
struct Pending {
    /// Matching events, oldest first, at most a batch.
    events: Vec<Event>,
    /// The last event looked at: the cursor once these are acknowledged.
    through: Option<String>,
}

/// Delivers webhooks.
pub struct Dispatcher {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    sender: Arc<Sender>,
    config: DispatcherConfig,
    owner: String,
    stats: Arc<DispatcherStats>,
    rng: Mutex<rand::rngs::SmallRng>,
}

impl std::fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dispatcher")
            .field("owner", &self.owner)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Dispatcher {
    /// A dispatcher over `store`, sending through `sender`; `seed` seeds the backoff jitter.
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        sender: Arc<Sender>,
        config: DispatcherConfig,
        seed: u64,
    ) -> Self {
        Self {
            store,
            clock,
            sender,
            config,
            owner: format!("webhooks-{}", uuid::Uuid::new_v4().simple()),
            stats: Arc::default(),
            rng: Mutex::new(rand::rngs::SmallRng::seed_from_u64(seed)),
        }
    }

    /// The counters.
    pub fn stats(&self) -> Arc<DispatcherStats> {
        Arc::clone(&self.stats)
    }

    /// Every webhook of every client.
    pub async fn webhooks(&self) -> Result<Vec<Webhook>, DispatchError> {
        let mut all = Vec::new();
        for client in self.store.list_clients().await? {
            let owner = ResourceOwner::Client(client.client_id.clone());
            let mut request =
                PageRequest { page_size: oemgate_store::MAX_PAGE_SIZE, ..PageRequest::default() };
            loop {
                let page = self.store.list_resources(KIND, &owner, &request).await?;
                for record in &page.items {
                    match Webhook::from_record(record) {
                        Ok(webhook) => all.push(webhook),
                        Err(err) => {
                            warn!(webhook = %record.id, error = %err, "undecodable webhook skipped")
                        }
                    }
                }
                match page.after {
                    Some(after) => request.after = Some(after),
                    None => break,
                }
            }
        }
        Ok(all)
    }

    /// One turn for every webhook, at most `concurrency` at a time; waits for all of them.
    pub async fn tick(&self) -> Result<Vec<TurnReport>, DispatchError> {
        let webhooks = self.webhooks().await?;
        let mut turns = Vec::with_capacity(webhooks.len());
        for webhook in &webhooks {
            turns.push(self.turn(webhook));
        }
        let reports = futures::stream::iter(turns)
            .buffer_unordered(self.config.concurrency.max(1))
            .collect::<Vec<_>>()
            .await;
        reports.into_iter().collect()
    }

    /// Starts turns as webhooks fall due until `shutdown` resolves. A webhook whose turn is
    /// still running (a slow receiver) is skipped, not waited for.
    pub async fn run(self: Arc<Self>, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        info!(owner = %self.owner, "webhook dispatcher started");
        let in_flight: Arc<Mutex<HashSet<String>>> = Arc::default();
        let permits = Arc::new(tokio::sync::Semaphore::new(self.config.concurrency.max(1)));
        loop {
            match self.webhooks().await {
                Ok(webhooks) => {
                    for webhook in webhooks {
                        let fresh = lock(&in_flight).insert(webhook.id.clone());
                        if !fresh {
                            continue;
                        }
                        let this = Arc::clone(&self);
                        let in_flight = Arc::clone(&in_flight);
                        let permits = Arc::clone(&permits);
                        tokio::spawn(async move {
                            if let Ok(_permit) = permits.acquire_owned().await
                                && let Err(err) = this.turn(&webhook).await
                            {
                                warn!(webhook = %webhook.id, error = %err, "webhook turn failed");
                            }
                            lock(&in_flight).remove(&webhook.id);
                        });
                    }
                }
                Err(err) => warn!(error = %err, "listing webhooks failed"),
            }
            let wait = self.clock.to_real(self.config.tick).max(Duration::from_millis(5));
            tokio::select! {
                _ = &mut shutdown => break,
                _ = tokio::time::sleep(wait) => {}
            }
        }
        info!("webhook dispatcher stopped");
    }

    fn lease_until(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        // A turn's batch takes up to the send timeout in real time; on a fast clock that is
        // more clock time, so the lease stretches with the clock's speed.
        let speed = self.clock.speed();
        let lease = if speed.is_finite() && speed > 1.0 {
            self.config.lease.mul_f64(speed)
        } else {
            self.config.lease
        };
        later(now, lease)
    }

    /// One turn for one webhook: deliver its pending events if it is active and due.
    pub async fn turn(&self, webhook: &Webhook) -> Result<TurnReport, DispatchError> {
        let mut report = TurnReport::default();
        let now = self.clock.now();
        let state = match self.store.get_webhook_state(&webhook.id).await? {
            Some(state) => state,
            // Created through the API with its state; a missing one (a crash in between)
            // starts now, unless the webhook was deleted since it was listed.
            None if self.store.get_resource(KIND, &webhook.id).await?.is_some() => {
                outbox::create_state(self.store.as_ref(), &webhook.id).await?
            }
            None => return Ok(report),
        };
        if !state.active || state.next_attempt_at.is_some_and(|at| at > now) {
            return Ok(report);
        }
        if !self.store.lease_webhook(&webhook.id, &self.owner, now, self.lease_until(now)).await? {
            debug!(webhook = %webhook.id, "leased by another instance");
            return Ok(report);
        }
        let outcome = self.deliver(webhook, &mut report).await;
        if let Err(err) = self.store.release_webhook(&webhook.id, &self.owner).await {
            debug!(webhook = %webhook.id, error = %err, "releasing the lease failed; it expires");
        }
        outcome.map(|()| report)
    }

    async fn deliver(
        &self,
        webhook: &Webhook,
        report: &mut TurnReport,
    ) -> Result<(), DispatchError> {
        let version = match &webhook.api_version {
            Some(version) => version.clone(),
            None => self
                .store
                .get_client(&webhook.client_id)
                .await?
                .map(|c| c.api_version)
                .unwrap_or_else(|| crate::DEFAULT_VERSION.to_owned()),
        };
        for batch in 0..self.config.max_batches_per_turn.max(1) {
            let now = self.clock.now();
            if batch > 0
                && !self
                    .store
                    .lease_webhook(&webhook.id, &self.owner, now, self.lease_until(now))
                    .await?
            {
                return Ok(());
            }
            // Fresh after the lease: another instance may have moved the cursor meanwhile.
            let Some(state) = self.store.get_webhook_state(&webhook.id).await? else {
                return Ok(());
            };
            if !state.active || state.next_attempt_at.is_some_and(|at| at > now) {
                return Ok(());
            }
            let pending = self.pending(webhook, state.cursor.as_deref()).await?;
            let Some(through) = pending.through.clone() else { return Ok(()) };
            if pending.events.is_empty() {
                // Only events for others: move past them without a delivery.
                self.advance(&state, through, None).await?;
                continue;
            }
            let rendered: Vec<Value> = pending.events.iter().map(|e| render(e, &version)).collect();
            let body = serde_json::to_vec(&rendered).unwrap_or_default();
            let sent = self.sender.send(webhook, body).await;
            let now = self.clock.now();
            if sent.acknowledged() {
                let count = pending.events.len();
                report.acknowledged += 1;
                report.events += count;
                self.stats.deliveries_ok.fetch_add(1, Ordering::Relaxed);
                self.stats.events_delivered.fetch_add(count as u64, Ordering::Relaxed);
                metrics::counter!("oemgate_webhook_deliveries_total", "outcome" => "success")
                    .increment(1);
                metrics::counter!("oemgate_webhook_events_delivered_total").increment(count as u64);
                debug!(webhook = %webhook.id, delivery = %sent.delivery_id, events = count, "delivered");
                if !self.advance(&state, through, Some(now)).await? {
                    return Ok(());
                }
            } else {
                report.failed += 1;
                self.stats.deliveries_failed.fetch_add(1, Ordering::Relaxed);
                metrics::counter!("oemgate_webhook_deliveries_total", "outcome" => "failure")
                    .increment(1);
                report.deactivated = self.fail(webhook, state, now, &sent.describe()).await?;
                return Ok(());
            }
        }
        Ok(())
    }

    /// Moves the cursor to `through` if nobody moved it since `state` was read; `success`
    /// marks an acknowledged delivery (resets the backoff). A concurrent write that left the
    /// cursor alone (a PATCH, a test) is merged with; one that moved the cursor (another
    /// instance, a reactivation) wins. Returns whether the cursor moved.
    async fn advance(
        &self,
        state: &WebhookState,
        through: String,
        success: Option<DateTime<Utc>>,
    ) -> Result<bool, DispatchError> {
        let mut current = state.clone();
        for _ in 0..4 {
            let mut next = current.clone();
            next.cursor = Some(through.clone());
            if success.is_some() {
                next.last_success = success;
                next.failing_since = None;
                next.attempts = 0;
                next.next_attempt_at = None;
            }
            match self.store.put_webhook_state(next, current.version).await {
                Ok(_) => return Ok(true),
                Err(StoreError::Conflict { .. }) => {
                    match self.store.get_webhook_state(&state.webhook_id).await? {
                        Some(fresh) if fresh.cursor == state.cursor && fresh.active => {
                            current = fresh;
                        }
                        _ => break,
                    }
                }
                Err(err) => return Err(err.into()),
            }
        }
        // The events may go out again, which at-least-once allows.
        debug!(webhook = %state.webhook_id, "cursor moved by someone else; left as is");
        Ok(false)
    }

    /// Records a failed delivery: back off, or past the retry window drop and deactivate.
    /// Returns whether the webhook was deactivated.
    async fn fail(
        &self,
        webhook: &Webhook,
        state: WebhookState,
        now: DateTime<Utc>,
        why: &str,
    ) -> Result<bool, DispatchError> {
        let mut next = state.clone();
        let since = state.failing_since.unwrap_or(now);
        next.failing_since = Some(since);
        next.attempts = state.attempts.saturating_add(1);
        let window = TimeDelta::from_std(self.config.retry_window).unwrap_or(TimeDelta::MAX);
        let expired = now - since >= window;
        let mut dropped = 0;
        if expired {
            let latest = self.store.latest_event_id().await?;
            dropped =
                self.count_pending(webhook, state.cursor.as_deref(), latest.as_deref()).await?;
            next.cursor = latest;
            next.active = false;
            next.failing_since = None;
            next.attempts = 0;
            next.next_attempt_at = None;
        } else {
            let jitter = lock(&self.rng).random::<f64>();
            let delay = backoff_delay(
                next.attempts,
                self.config.backoff_min,
                self.config.backoff_max,
                jitter,
            );
            let retry = later(now, delay);
            // The last attempt falls on the end of the window, not up to a delay past it.
            let end = later(since, self.config.retry_window);
            next.next_attempt_at = Some(retry.min(end).max(now));
        }
        match self.store.put_webhook_state(next.clone(), state.version).await {
            Ok(_) => {}
            Err(StoreError::Conflict { .. }) => {
                debug!(webhook = %webhook.id, "state changed meanwhile; failure not recorded");
                return Ok(false);
            }
            Err(err) => return Err(err.into()),
        }
        if expired {
            self.stats.events_dropped.fetch_add(dropped, Ordering::Relaxed);
            self.stats.deactivated.fetch_add(1, Ordering::Relaxed);
            metrics::counter!("oemgate_webhook_events_dropped_total").increment(dropped);
            metrics::counter!("oemgate_webhook_deactivations_total").increment(1);
            warn!(
                webhook = %webhook.id,
                client = %webhook.client_id,
                failing_since = %since,
                dropped,
                last_error = why,
                "webhook failed for longer than its retry window: pending events dropped, webhook deactivated"
            );
            Ok(true)
        } else {
            info!(
                webhook = %webhook.id,
                attempts = next.attempts,
                next_attempt = ?next.next_attempt_at,
                error = why,
                "webhook delivery failed; retrying later"
            );
            Ok(false)
        }
    }

    /// The webhook's pending events after `cursor`: up to a batch of matching events, and
    /// the last event looked at (`None` when there is nothing after the cursor).
    async fn pending(
        &self,
        webhook: &Webhook,
        cursor: Option<&str>,
    ) -> Result<Pending, DispatchError> {
        const PAGE: usize = 500;
        let mut owners: HashMap<String, bool> = HashMap::new();
        let mut after = cursor.map(str::to_owned);
        let mut events = Vec::new();
        let mut scanned = 0;
        loop {
            let page = self.store.read_events(after.as_deref(), PAGE).await?;
            let full = page.len() == PAGE;
            for event in page {
                scanned += 1;
                after = Some(event.id.clone());
                if webhook.wants(&event.event) && self.belongs(webhook, &event, &mut owners).await?
                {
                    events.push(event);
                    if events.len() >= self.config.batch_size.max(1) {
                        return Ok(Pending { events, through: after });
                    }
                }
            }
            if !full || scanned >= self.config.scan_limit {
                let through = if after.as_deref() == cursor { None } else { after };
                return Ok(Pending { events, through });
            }
        }
    }

    /// How many of the webhook's events lie after `cursor` up to and including `until`.
    async fn count_pending(
        &self,
        webhook: &Webhook,
        cursor: Option<&str>,
        until: Option<&str>,
    ) -> Result<u64, DispatchError> {
        const PAGE: usize = 1000;
        let Some(until) = until else { return Ok(0) };
        let mut owners: HashMap<String, bool> = HashMap::new();
        let mut after = cursor.map(str::to_owned);
        let mut count = 0;
        loop {
            let page = self.store.read_events(after.as_deref(), PAGE).await?;
            let full = page.len() == PAGE;
            for event in page {
                if webhook.wants(&event.event) && self.belongs(webhook, &event, &mut owners).await?
                {
                    count += 1;
                }
                if event.id == until {
                    return Ok(count);
                }
                after = Some(event.id);
            }
            if !full {
                return Ok(count);
            }
        }
    }

    /// Whether the event's user belongs to the webhook's client (memoized per look).
    async fn belongs(
        &self,
        webhook: &Webhook,
        event: &Event,
        owners: &mut HashMap<String, bool>,
    ) -> Result<bool, DispatchError> {
        if let Some(known) = owners.get(&event.user_id) {
            return Ok(*known);
        }
        let mine = self
            .store
            .get_user(&event.user_id)
            .await?
            .is_some_and(|user| user.client_id == webhook.client_id);
        owners.insert(event.user_id.clone(), mine);
        Ok(mine)
    }
}

/// `time + by`, saturating at the latest representable time.
fn later(time: DateTime<Utc>, by: Duration) -> DateTime<Utc> {
    TimeDelta::from_std(by)
        .ok()
        .and_then(|by| time.checked_add_signed(by))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_the_minimum_to_the_cap_with_bounded_jitter() {
        let (min, max) = (Duration::from_secs(30), Duration::from_secs(3600));
        let delays: Vec<u64> = (1..=9).map(|n| backoff_delay(n, min, max, 0.0).as_secs()).collect();
        assert_eq!(delays, [30, 60, 120, 240, 480, 960, 1920, 3600, 3600]);
        assert_eq!(backoff_delay(1000, min, max, 0.0), max);
        assert_eq!(backoff_delay(1, min, max, 1.0), Duration::from_millis(22_500));
        assert_eq!(backoff_delay(8, min, max, 0.5), Duration::from_secs(3150));
        assert_eq!(backoff_delay(3, min, max, f64::NAN), Duration::from_secs(120));
        assert_eq!(backoff_delay(0, min, max, 0.0), min);
    }
}
