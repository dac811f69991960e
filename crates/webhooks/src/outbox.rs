//! A webhook's outbox: its delivery state in the store, and the state changes the API makes
//! (creation, reactivation, a successful test).

use chrono::{DateTime, Utc};
use oemgate_store::{Store, StoreError, StoreResult, WebhookState};

/// How often a read-modify-write of a webhook's state is retried when another writer got in.
const WRITE_ATTEMPTS: usize = 8;

/// Creates the delivery state of a new webhook: active, with its cursor at the newest event,
/// so it receives what happens from now on. An existing state is left alone.
pub async fn create_state(store: &dyn Store, webhook_id: &str) -> StoreResult<WebhookState> {
    let cursor = store.latest_event_id().await?;
    let mut state = WebhookState::new(webhook_id, cursor);
    match store.put_webhook_state(state.clone(), 0).await {
        Ok(version) => {
            state.version = version;
            Ok(state)
        }
        Err(StoreError::Conflict { .. }) => store
            .get_webhook_state(webhook_id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("webhook-state {webhook_id}"))),
        Err(err) => Err(err),
    }
}

/// Applies `change` to the stored state with a compare-and-set, retrying on conflicts;
/// creates the state first when it is missing. Returns the state written.
pub async fn update_state(
    store: &dyn Store,
    webhook_id: &str,
    change: impl Fn(&mut WebhookState) -> StoreResult<()>,
) -> StoreResult<WebhookState> {
    let mut last_conflict = None;
    for _ in 0..WRITE_ATTEMPTS {
        let mut state = match store.get_webhook_state(webhook_id).await? {
            Some(state) => state,
            None => create_state(store, webhook_id).await?,
        };
        let expected = state.version;
        change(&mut state)?;
        match store.put_webhook_state(state.clone(), expected).await {
            Ok(version) => {
                state.version = version;
                return Ok(state);
            }
            Err(err @ StoreError::Conflict { .. }) => last_conflict = Some(err),
            Err(err) => return Err(err),
        }
    }
    Err(last_conflict.unwrap_or_else(|| StoreError::NotFound(webhook_id.to_owned())))
}

/// Reactivates a webhook (a PATCH, or a successful test): healthy and due now. An inactive
/// webhook's pending events were dropped when it was deactivated and it queued nothing since,
/// so its cursor moves to the newest event; an active one keeps its pending events.
/// `success` records a successful delivery (the test) as `lastSuccess`.
pub async fn reactivate(
    store: &dyn Store,
    webhook_id: &str,
    success: Option<DateTime<Utc>>,
) -> StoreResult<WebhookState> {
    let latest = store.latest_event_id().await?;
    update_state(store, webhook_id, |state| {
        if !state.active {
            state.cursor.clone_from(&latest);
            state.active = true;
        }
        state.failing_since = None;
        state.attempts = 0;
        state.next_attempt_at = None;
        if success.is_some() {
            state.last_success = success;
        }
        Ok(())
    })
    .await
}
