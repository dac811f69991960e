//! [`WebhookStore`] on Redis.
//!
//! `{p}:webhook:<id>` (hash): `version`, `body` (the state JSON), `indexes` (always empty),
//! written by the shared versioned compare-and-set script. `{p}:webhook-lease:<id>` (hash):
//! `owner`, `until` (epoch ms); taking and releasing run as Lua scripts so the check and the
//! write are one atomic step. The lease key carries a TTL relative to the lease's own length
//! (plus a day) only to garbage-collect it; whether a lease holds is decided by `now`.

use std::sync::LazyLock;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use redis::Script;

use super::{RedisStore, with_version};
use crate::codec::{encode, to_millis};
use crate::error::StoreResult;
use crate::webhooks::{WebhookState, WebhookStore};

/// KEYS: the lease hash. ARGV: owner, now (ms), until (ms), TTL (ms). Returns 1 when `owner`
/// holds the lease afterwards.
static LEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local holder = redis.call('HGET', KEYS[1], 'owner')
local held_until = tonumber(redis.call('HGET', KEYS[1], 'until'))
if holder and holder ~= ARGV[1] and held_until and held_until > tonumber(ARGV[2]) then
  return 0
end
redis.call('HSET', KEYS[1], 'owner', ARGV[1], 'until', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1
"#,
    )
});

/// KEYS: the lease hash. ARGV: owner. Deletes the lease when `owner` holds it.
static RELEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
if redis.call('HGET', KEYS[1], 'owner') == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
"#,
    )
});

/// How long a lease key outlives its lease before Redis collects it.
const LEASE_GRACE_MS: i64 = 24 * 3600 * 1000;

impl RedisStore {
    fn webhook_state_key(&self, webhook_id: &str) -> String {
        format!("{}:webhook:{webhook_id}", self.keys.tag)
    }

    fn webhook_lease_key(&self, webhook_id: &str) -> String {
        format!("{}:webhook-lease:{webhook_id}", self.keys.tag)
    }
}

#[async_trait]
impl WebhookStore for RedisStore {
    async fn get_webhook_state(&self, webhook_id: &str) -> StoreResult<Option<WebhookState>> {
        let stored = self.read_one_versioned(self.webhook_state_key(webhook_id)).await?;
        Ok(stored.map(with_version(|s: &mut WebhookState| &mut s.version)))
    }

    async fn put_webhook_state(
        &self,
        mut state: WebhookState,
        expected_version: u64,
    ) -> StoreResult<u64> {
        let key = self.webhook_state_key(&state.webhook_id);
        state.version = expected_version + 1;
        let mut invocation = self.scripts.put_versioned.prepare_invoke();
        invocation
            .key(&key)
            .arg(expected_version)
            .arg(encode(&key, &state)?)
            .arg(&state.webhook_id);
        self.compare_and_set("put_webhook_state", &key, expected_version, invocation).await
    }

    async fn delete_webhook_state(&self, webhook_id: &str) -> StoreResult<bool> {
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("DEL")
            .arg(self.webhook_state_key(webhook_id))
            .cmd("DEL")
            .arg(self.webhook_lease_key(webhook_id))
            .ignore();
        let (deleted,): (i64,) = self.query_pipeline("delete_webhook_state", &pipe).await?;
        Ok(deleted > 0)
    }

    async fn lease_webhook(
        &self,
        webhook_id: &str,
        owner: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let until_ms = to_millis(until);
        let ttl = (until_ms - to_millis(now)).max(1) + LEASE_GRACE_MS;
        let mut invocation = LEASE.key(self.webhook_lease_key(webhook_id));
        invocation.arg(owner).arg(to_millis(now)).arg(until_ms).arg(ttl);
        let held: i64 = self.invoke("lease_webhook", invocation).await?;
        Ok(held == 1)
    }

    async fn release_webhook(&self, webhook_id: &str, owner: &str) -> StoreResult<()> {
        let mut invocation = RELEASE.key(self.webhook_lease_key(webhook_id));
        invocation.arg(owner);
        let _: i64 = self.invoke("release_webhook", invocation).await?;
        Ok(())
    }
}
