//! Webhook delivery state: each webhook's durable cursor into the event log (its outbox),
//! its failure bookkeeping, and a lease so one gateway instance at a time delivers it.
//!
//! The webhook definitions themselves (url, secret, event filter ...) are generic resources of
//! kind `webhook` (see [`crate::ResourceStore`]); this module keeps what changes with every
//! delivery, apart from them, so an API update and a delivery never fight over one version.
//!
//! The outbox is the event log itself: the events pending for a webhook are the log's events
//! after [`WebhookState::cursor`] that belong to it. Nothing is copied per webhook, and a
//! delivery is acknowledged by moving the cursor with a compare-and-set on
//! [`WebhookState::version`]: a writer that read the state before another one moved the cursor
//! loses, so two instances never move a cursor backwards.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::StoreResult;

/// What changes with every delivery attempt of one webhook.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookState {
    /// The webhook id.
    pub webhook_id: String,
    /// Incremented by every successful put; the first put yields 1.
    pub version: u64,
    /// The id of the last event acknowledged (or skipped, or dropped); `None` = from the start
    /// of the log.
    pub cursor: Option<String>,
    /// Whether deliveries are made; false after the retry window ran out.
    pub active: bool,
    /// The last 2xx answer to a delivery or test.
    pub last_success: Option<DateTime<Utc>>,
    /// When the current run of failures began (`None` while healthy).
    pub failing_since: Option<DateTime<Utc>>,
    /// Failed attempts since the last success.
    pub attempts: u32,
    /// Not before this time is the next delivery attempted (`None` = whenever due).
    pub next_attempt_at: Option<DateTime<Utc>>,
}

impl WebhookState {
    /// The state of a new webhook: active, healthy, with its cursor at `cursor`.
    pub fn new(webhook_id: impl Into<String>, cursor: Option<String>) -> Self {
        Self {
            webhook_id: webhook_id.into(),
            version: 0,
            cursor,
            active: true,
            last_success: None,
            failing_since: None,
            attempts: 0,
            next_attempt_at: None,
        }
    }
}

/// Webhook delivery state and leases.
#[async_trait]
pub trait WebhookStore: Send + Sync {
    /// The delivery state of a webhook.
    async fn get_webhook_state(&self, webhook_id: &str) -> StoreResult<Option<WebhookState>>;
    /// Stores a webhook's state if the stored version equals `expected_version` (0 = new);
    /// returns the new version or `StoreError::Conflict`.
    async fn put_webhook_state(
        &self,
        state: WebhookState,
        expected_version: u64,
    ) -> StoreResult<u64>;
    /// Removes a webhook's state and lease. Returns whether the state existed.
    async fn delete_webhook_state(&self, webhook_id: &str) -> StoreResult<bool>;
    /// Takes (or renews) the delivery lease of a webhook for `owner` until `until`: succeeds
    /// when nobody holds it, `owner` already holds it, or the holder's lease ended at or
    /// before `now`. Returns whether `owner` holds it now.
    async fn lease_webhook(
        &self,
        webhook_id: &str,
        owner: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> StoreResult<bool>;
    /// Gives the lease up if `owner` holds it (otherwise changes nothing).
    async fn release_webhook(&self, webhook_id: &str, owner: &str) -> StoreResult<()>;
}
