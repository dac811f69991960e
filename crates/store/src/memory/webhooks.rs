//! [`WebhookStore`] in memory.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{MemoryStore, next_version};
use crate::error::StoreResult;
use crate::webhooks::{WebhookState, WebhookStore};

#[async_trait]
impl WebhookStore for MemoryStore {
    async fn get_webhook_state(&self, webhook_id: &str) -> StoreResult<Option<WebhookState>> {
        Ok(self.lock().webhook_states.get(webhook_id).cloned())
    }

    async fn put_webhook_state(
        &self,
        mut state: WebhookState,
        expected_version: u64,
    ) -> StoreResult<u64> {
        let mut inner = self.lock();
        let stored = inner.webhook_states.get(&state.webhook_id).map(|s| s.version);
        state.version =
            next_version(&format!("webhook-state {}", state.webhook_id), stored, expected_version)?;
        let version = state.version;
        inner.webhook_states.insert(state.webhook_id.clone(), state);
        Ok(version)
    }

    async fn delete_webhook_state(&self, webhook_id: &str) -> StoreResult<bool> {
        let mut inner = self.lock();
        inner.webhook_leases.remove(webhook_id);
        Ok(inner.webhook_states.remove(webhook_id).is_some())
    }

    async fn lease_webhook(
        &self,
        webhook_id: &str,
        owner: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let mut inner = self.lock();
        let free = inner
            .webhook_leases
            .get(webhook_id)
            .is_none_or(|(holder, held_until)| holder == owner || *held_until <= now);
        if free {
            inner.webhook_leases.insert(webhook_id.to_owned(), (owner.to_owned(), until));
        }
        Ok(free)
    }

    async fn release_webhook(&self, webhook_id: &str, owner: &str) -> StoreResult<()> {
        let mut inner = self.lock();
        if inner.webhook_leases.get(webhook_id).is_some_and(|(holder, _)| holder == owner) {
            inner.webhook_leases.remove(webhook_id);
        }
        Ok(())
    }
}
