//! The Redis backend: shared state for several gateway instances.
//!
//! It talks to Redis through [`redis::aio::ConnectionManager`], which multiplexes one
//! connection and reconnects on its own after a drop; a failed call surfaces as
//! `StoreError::Unavailable` and the next one may succeed again.
//!
//! # Key layout
//!
//! Every key starts with the hash tag `{<prefix>}` (prefix `oemgate` by default), written `{p}`
//! below:
//!
//! - `{p}:device:<id>` (hash): `record` (JSON), `created` (the first `created_at`, which wins
//!   over the record's), `member` (its sort key), `indexes` and `snapshot_indexes` (JSON lists
//!   of the index keys it is in, so scripts can leave them after the owner or type changed).
//! - `{p}:idx:devices`, `{p}:idx:devices:user:<user>`, `{p}:idx:devices:type:<type>`,
//!   `{p}:idx:devices:type-user:<type>:<user>`, and for devices whose user has an API client
//!   `{p}:idx:devices:client:<client>`, `{p}:idx:devices:type-client:<type>:<client>` (sorted
//!   sets): device sort keys, all scored 0 and read with `ZRANGEBYLEX` (see `paging`).
//! - `{p}:idx:snapshots` and the same variants (sorted sets): the sort keys of devices
//!   that have a snapshot, so snapshot lists page exactly.
//! - `{p}:snapshot:<device id>` (hash): `version`, `body` (JSON).
//! - `{p}:action:<id>` (hash): `version`, `body` (JSON), `indexes`.
//! - `{p}:idx:actions:pending`, `{p}:idx:actions:pending:target:<device id>` (sets): pending
//!   action ids.
//! - `{p}:schedule:<shard>` (sorted sets, one per schedule shard, see [`crate::shard_of`]):
//!   device ids scored by due time in epoch milliseconds.
//! - `{p}:client:<id>` (string): API client JSON; `{p}:idx:clients` (set): every client id.
//! - `{p}:user:<id>` (hash): `record` (user JSON), `member` (sort key), `indexes`;
//!   `{p}:idx:users:client:<client>` (sorted set): sort keys of a client's users.
//! - `{p}:res:<kind>:<id>` (hash): `version`, `body` (resource JSON), `created` (the first
//!   `created_at`), `member`, `indexes`; `{p}:idx:res:<kind>:client:<client>` and
//!   `{p}:idx:res:<kind>:user:<user>` (sorted sets): resource sort keys per owner.
//! - `{p}:token:<hash>` (string): token JSON, expiring at `expires_at` (`SET ... PXAT`).
//!   A token record never changes once issued (a client's revocation and secret rotation
//!   live in the client record, which every bearer check reads), so each instance keeps the
//!   tokens it has read in memory until they expire (`TokenCache`): a bearer check
//!   then costs one round trip, for the client, instead of two.
//! - `{p}:account:<id>` (hash): `version`, `body` (account JSON; with a credential key the
//!   credentials are sealed, see [`crate::sealing`]), `indexes`.
//! - `{p}:idx:accounts:user:<user>` (set): account ids of a user.
//! - `{p}:link:<token hash>` (hash): a link session (see `link_sessions`).
//! - `{p}:history:<device id>` (sorted set): a device's observation samples (see `history`).
//! - `{p}:webhook:<id>` (hash): `version`, `body` (the webhook's delivery state JSON),
//!   `indexes`; `{p}:webhook-lease:<id>` (hash): `owner`, `until` (see `webhooks`).
//! - `{p}:events` (stream): field `event` holds the event JSON with an empty id; the stream
//!   entry id is the event id.
//!
//! Why one hash tag: Redis Cluster only runs a script or transaction whose keys live in one
//! slot, and the writes here span a record and its indexes. With one tag per store all keys
//! share a slot, so every script works unchanged on a cluster. The price is that one
//! deployment's data lives on one node; a deployment that outgrows a node shards by running
//! several prefixes (for example one per region or tenant group).
//!
//! Multi-key writes run as Lua scripts (see `scripts`) so they are atomic. Redis 6.2 or later
//! is required (`ZADD LT`, `SET PXAT`, exclusive `XRANGE` starts).

mod history;
mod link_sessions;
mod scripts;
mod webhooks;

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use oemgate_core::AccountRef;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, FromRedisValue, RedisError, ScriptInvocation};
use serde::de::DeserializeOwned;

use crate::codec::{decode, encode, from_millis, to_millis};
use crate::error::{StoreError, StoreResult};
use crate::paging::{Direction, KeyRange, SortKey, page_keys};
use crate::sealing;
use crate::traits::*;
use scripts::Scripts;

const BACKEND: &str = "redis";

/// Two fields of one hash as `HMGET` returns them (absent fields are `None`).
type HmGet<A> = (Option<A>, Option<Vec<u8>>);

/// How to reach Redis and where in it the store lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RedisConfig {
    /// `redis://[user:password@]host:port[/db]` (or `rediss://` where TLS is built in).
    pub url: String,
    /// The hash tag of every key (default `oemgate`); non-empty, without `{` or `}`.
    pub prefix: String,
    /// Bound on establishing the first connection, retries included (default 3 s).
    pub connect_timeout: Duration,
    /// Bound on a single call once connected (default 5 s), so a stalled Redis surfaces as
    /// `Unavailable` instead of hanging the caller.
    pub response_timeout: Duration,
    /// The event stream is trimmed to about this many entries (default
    /// [`DEFAULT_EVENT_LOG_CAP`]).
    pub event_log_max_len: usize,
    /// Seals account credentials at rest (see [`crate::sealing`]); `None` stores them in
    /// the clear (default).
    pub credential_key: Option<crate::sealing::CredentialKey>,
}

impl RedisConfig {
    /// The default key prefix.
    pub const DEFAULT_PREFIX: &'static str = "oemgate";

    /// Defaults for everything but the URL and the key prefix (see
    /// [`RedisConfig::DEFAULT_PREFIX`]).
    pub fn new(url: impl Into<String>, prefix: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            prefix: prefix.into(),
            connect_timeout: Duration::from_secs(3),
            response_timeout: Duration::from_secs(5),
            event_log_max_len: DEFAULT_EVENT_LOG_CAP,
            credential_key: None,
        }
    }

    /// The same settings with account credentials sealed under `key`.
    pub fn with_credential_key(mut self, key: crate::sealing::CredentialKey) -> Self {
        self.credential_key = Some(key);
        self
    }
}

/// The Redis-backed store. Cloning shares the connection.
#[derive(Clone)]
pub struct RedisStore {
    conn: ConnectionManager,
    keys: Keys,
    scripts: std::sync::Arc<Scripts>,
    event_log_max_len: usize,
    credential_key: Option<std::sync::Arc<crate::sealing::CredentialKey>>,
    tokens: std::sync::Arc<TokenCache>,
}

/// The tokens an instance has read, by hash, until they expire by the wall clock (when
/// Redis drops them too). At most [`TokenCache::CAPACITY`] entries: a full cache first
/// drops its expired tokens, then everything.
#[derive(Debug, Default)]
struct TokenCache {
    entries: std::sync::Mutex<std::collections::HashMap<String, AccessToken>>,
}

impl TokenCache {
    const CAPACITY: usize = 10_000;

    fn entries(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, AccessToken>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The cached token, if it is still stored in Redis by the wall clock `wall`.
    fn get(&self, token_hash: &str, wall: DateTime<Utc>) -> Option<AccessToken> {
        let mut entries = self.entries();
        match entries.get(token_hash) {
            Some(token) if wall < token.expires_at => Some(token.clone()),
            Some(_) => {
                entries.remove(token_hash);
                None
            }
            None => None,
        }
    }

    fn insert(&self, token: AccessToken, wall: DateTime<Utc>) {
        let mut entries = self.entries();
        if entries.len() >= Self::CAPACITY {
            entries.retain(|_, t| wall < t.expires_at);
            if entries.len() >= Self::CAPACITY {
                entries.clear();
            }
        }
        entries.insert(token.token_hash.clone(), token);
    }

    fn forget(&self, token_hash: &str) {
        self.entries().remove(token_hash);
    }
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore").field("tag", &self.keys.tag).finish_non_exhaustive()
    }
}

impl RedisStore {
    /// Connects, failing within `connect_timeout` when Redis cannot be reached. Errors name
    /// the address (with any password masked).
    pub async fn connect(config: RedisConfig) -> StoreResult<Self> {
        let address = redact_url(&config.url);
        if config.prefix.is_empty() || config.prefix.contains(['{', '}']) {
            return Err(StoreError::Unavailable {
                backend: BACKEND,
                message: format!(
                    "invalid key prefix {:?}: it must be non-empty and free of braces",
                    config.prefix
                ),
                source: None,
            });
        }
        let client = Client::open(config.url.as_str()).map_err(|err| {
            StoreError::unavailable(BACKEND, format!("invalid redis url {address}: {err}"), err)
        })?;
        let manager_config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(config.connect_timeout))
            .set_response_timeout(Some(config.response_timeout))
            // A few quick retries ride out a blip; an unreachable server still fails fast.
            .set_number_of_retries(2)
            .set_min_delay(Duration::from_millis(100))
            .set_max_delay(Duration::from_secs(1));
        let connecting = client.get_connection_manager_with_config(manager_config);
        let conn = match tokio::time::timeout(config.connect_timeout, connecting).await {
            Ok(Ok(conn)) => conn,
            Ok(Err(err)) => {
                let message = format!("cannot connect to {address}: {err}");
                return Err(StoreError::unavailable(BACKEND, message, err));
            }
            Err(elapsed) => {
                let message = format!(
                    "cannot connect to {address}: no connection within {:?}",
                    config.connect_timeout
                );
                return Err(StoreError::unavailable(BACKEND, message, elapsed));
            }
        };
        tracing::debug!(address = %address, prefix = %config.prefix, "connected to redis");
        Ok(Self {
            conn,
            keys: Keys { tag: format!("{{{}}}", config.prefix) },
            scripts: std::sync::Arc::new(Scripts::new()),
            event_log_max_len: config.event_log_max_len.max(1),
            credential_key: config.credential_key.map(std::sync::Arc::new),
            tokens: std::sync::Arc::new(TokenCache::default()),
        })
    }

    /// Deletes every key under this store's prefix and returns how many went: a deployment
    /// (or a test, or a benchmark) removing all it stored. Other prefixes are untouched.
    pub async fn purge(&self) -> StoreResult<u64> {
        let pattern = format!("{}:*", self.keys.tag);
        let mut cursor: u64 = 0;
        let mut deleted = 0;
        loop {
            let mut scan = redis::cmd("SCAN");
            scan.arg(cursor).arg("MATCH").arg(&pattern).arg("COUNT").arg(500);
            let (next, keys): (u64, Vec<String>) = self.query("SCAN", &scan).await?;
            if !keys.is_empty() {
                let removed: u64 = self.query("DEL", redis::cmd("DEL").arg(&keys)).await?;
                deleted += removed;
            }
            if next == 0 {
                return Ok(deleted);
            }
            cursor = next;
        }
    }

    /// Runs a command on a handle of the shared connection.
    async fn query<T: FromRedisValue>(&self, what: &str, cmd: &redis::Cmd) -> StoreResult<T> {
        let mut conn = self.conn.clone();
        cmd.query_async(&mut conn).await.map_err(|err| redis_error(what, err))
    }

    /// Runs a pipeline (one round trip) on a handle of the shared connection.
    async fn query_pipeline<T: FromRedisValue>(
        &self,
        what: &str,
        pipe: &redis::Pipeline,
    ) -> StoreResult<T> {
        let mut conn = self.conn.clone();
        pipe.query_async(&mut conn).await.map_err(|err| redis_error(what, err))
    }

    async fn invoke<T: FromRedisValue>(
        &self,
        what: &str,
        invocation: ScriptInvocation<'_>,
    ) -> StoreResult<T> {
        let mut conn = self.conn.clone();
        invocation.invoke_async(&mut conn).await.map_err(|err| redis_error(what, err))
    }

    /// Reads `version` and `body` of versioned records (snapshots, actions, accounts) in one
    /// round trip; absent records are `None`.
    async fn read_versioned<T: DeserializeOwned>(
        &self,
        keys: &[String],
    ) -> StoreResult<Vec<Option<(u64, T)>>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for key in keys {
            pipe.cmd("HMGET").arg(key).arg("version").arg("body");
        }
        let rows: Vec<HmGet<String>> = self.query_pipeline("HMGET", &pipe).await?;
        keys.iter()
            .zip(rows)
            .map(|(key, row)| match row {
                (Some(version), Some(body)) => {
                    let version = version
                        .parse::<u64>()
                        .map_err(|_| StoreError::corrupt(key, "undecodable version"))?;
                    Ok(Some((version, decode(key, &body)?)))
                }
                (None, None) => Ok(None),
                _ => Err(StoreError::corrupt(key, "version without body or body without version")),
            })
            .collect()
    }

    async fn read_one_versioned<T: DeserializeOwned>(
        &self,
        key: String,
    ) -> StoreResult<Option<(u64, T)>> {
        Ok(self.read_versioned(&[key]).await?.pop().flatten())
    }

    /// Reads device hashes in one round trip; absent devices are `None`.
    async fn read_devices(&self, ids: &[&str]) -> StoreResult<Vec<Option<DeviceRecord>>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = ids.iter().map(|id| self.keys.device(id)).collect();
        let mut pipe = redis::pipe();
        for key in &keys {
            pipe.cmd("HMGET").arg(key).arg("record").arg("created");
        }
        let rows: Vec<HmGet<Vec<u8>>> = self.query_pipeline("HMGET", &pipe).await?;
        keys.iter()
            .zip(rows)
            .map(|(key, row)| match row {
                (Some(record), Some(created)) => {
                    let mut record: DeviceRecord = decode(key, &record)?;
                    // The first registration's time wins; see PUT_DEVICE.
                    record.created_at = decode(key, &created)?;
                    Ok(Some(record))
                }
                (None, _) => Ok(None),
                (Some(_), None) => Err(StoreError::corrupt(key, "record without created time")),
            })
            .collect()
    }

    /// Runs a versioned compare-and-set script and turns its reply into the trait's result.
    async fn compare_and_set(
        &self,
        what: &str,
        key: &str,
        expected: u64,
        invocation: ScriptInvocation<'_>,
    ) -> StoreResult<u64> {
        let (status, version): (i64, u64) = self.invoke(what, invocation).await?;
        match status {
            1 => Ok(version),
            0 => Err(StoreError::Conflict { key: key.to_owned(), expected, actual: version }),
            _ => Err(StoreError::NotFound(key.to_owned())),
        }
    }

    async fn page<T>(
        &self,
        index: String,
        request: &PageRequest,
        fetch: impl AsyncFnOnce(Vec<&str>) -> StoreResult<Vec<Option<T>>>,
    ) -> StoreResult<Page<T>> {
        let index = RedisIndex { store: self, key: index };
        let page = page_keys(&index, request).await?;
        let ids = page.keys.iter().map(SortKey::id).collect();
        // A record deleted between reading the index and reading it is skipped.
        let items = fetch(ids).await?.into_iter().flatten().collect();
        Ok(Page { items, after: page.after, before: page.before })
    }
}

/// Maps a Redis failure: a script's `CORRUPT` reply is corrupt data, the rest is the backend
/// being unavailable (or misbehaving), which callers treat alike.
fn redis_error(what: &str, err: RedisError) -> StoreError {
    if err.code() == Some("CORRUPT") {
        let detail = err.detail().unwrap_or_default();
        let (key, message) = detail.rsplit_once(": ").unwrap_or((detail, "undecodable"));
        return StoreError::corrupt(key, message);
    }
    StoreError::unavailable(BACKEND, format!("{what}: {err}"), err)
}

/// Masks the password of a Redis URL for messages and logs.
fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rsplit_once('@') {
        Some((userinfo, host)) => {
            // A lone userinfo part may be a password too, so it is masked as well.
            let masked = userinfo
                .split_once(':')
                .map_or("***".to_owned(), |(user, _)| format!("{user}:***"));
            format!("{scheme}://{masked}@{host}{}", &rest[authority_end..])
        }
        None => url.to_owned(),
    }
}

/// The key names of one store (see the module doc for the layout).
#[derive(Clone, Debug)]
struct Keys {
    /// `{prefix}`: the hash tag every key starts with.
    tag: String,
}

impl Keys {
    fn device(&self, id: &str) -> String {
        format!("{}:device:{id}", self.tag)
    }

    fn snapshot(&self, device_id: &str) -> String {
        format!("{}:snapshot:{device_id}", self.tag)
    }

    /// The sorted set of `list` ("devices" or "snapshots") for a filter.
    fn list_index(&self, list: &str, user: Option<&str>, device_type: Option<&str>) -> String {
        let tag = &self.tag;
        // The type comes first in the combined key: types never contain ':', so no user id
        // can make two different (type, user) pairs collide.
        match (user, device_type) {
            (None, None) => format!("{tag}:idx:{list}"),
            (Some(user), None) => format!("{tag}:idx:{list}:user:{user}"),
            (None, Some(kind)) => format!("{tag}:idx:{list}:type:{kind}"),
            (Some(user), Some(kind)) => format!("{tag}:idx:{list}:type-user:{kind}:{user}"),
        }
    }

    /// The sorted set of `list` for one API client's devices, optionally of one type.
    fn client_index(&self, list: &str, client: &str, device_type: Option<&str>) -> String {
        let tag = &self.tag;
        match device_type {
            None => format!("{tag}:idx:{list}:client:{client}"),
            Some(kind) => format!("{tag}:idx:{list}:type-client:{kind}:{client}"),
        }
    }

    /// The sorted sets of `list` a device belongs to (four, six with a client).
    fn list_indexes_of(
        &self,
        list: &str,
        user: &str,
        device_type: &str,
        client: Option<&str>,
    ) -> Vec<String> {
        let mut indexes = vec![
            self.list_index(list, None, None),
            self.list_index(list, Some(user), None),
            self.list_index(list, None, Some(device_type)),
            self.list_index(list, Some(user), Some(device_type)),
        ];
        if let Some(client) = client {
            indexes.push(self.client_index(list, client, None));
            indexes.push(self.client_index(list, client, Some(device_type)));
        }
        indexes
    }

    /// A key that never holds anything: the index of a list known to be empty.
    fn empty_index(&self) -> String {
        format!("{}:idx:empty", self.tag)
    }

    fn clients(&self) -> String {
        format!("{}:idx:clients", self.tag)
    }

    fn user(&self, id: &str) -> String {
        format!("{}:user:{id}", self.tag)
    }

    fn users_of_client(&self, client: &str) -> String {
        format!("{}:idx:users:client:{client}", self.tag)
    }

    fn resource(&self, kind: &str, id: &str) -> String {
        format!("{}:res:{kind}:{id}", self.tag)
    }

    fn resources_of(&self, kind: &str, owner: &ResourceOwner) -> String {
        match owner {
            ResourceOwner::Client(client) => format!("{}:idx:res:{kind}:client:{client}", self.tag),
            ResourceOwner::User(user) => format!("{}:idx:res:{kind}:user:{user}", self.tag),
        }
    }

    fn action(&self, id: &str) -> String {
        format!("{}:action:{id}", self.tag)
    }

    fn pending_actions(&self) -> String {
        format!("{}:idx:actions:pending", self.tag)
    }

    fn pending_actions_for(&self, target_id: &str) -> String {
        format!("{}:idx:actions:pending:target:{target_id}", self.tag)
    }

    fn schedule(&self, shard: u16) -> String {
        format!("{}:schedule:{shard}", self.tag)
    }

    fn schedule_of(&self, device_id: &str) -> String {
        self.schedule(crate::shard_of(device_id))
    }

    fn client(&self, id: &str) -> String {
        format!("{}:client:{id}", self.tag)
    }

    fn hint(&self, device_id: &str) -> String {
        format!("{}:hint:{device_id}", self.tag)
    }

    fn token(&self, hash: &str) -> String {
        format!("{}:token:{hash}", self.tag)
    }

    fn account(&self, id: &str) -> String {
        format!("{}:account:{id}", self.tag)
    }

    fn accounts_of_user(&self, user_id: &str) -> String {
        format!("{}:idx:accounts:user:{user_id}", self.tag)
    }

    fn events(&self) -> String {
        format!("{}:events", self.tag)
    }
}

/// One list index, as [`page_keys`] reads it.
struct RedisIndex<'a> {
    store: &'a RedisStore,
    key: String,
}

impl KeyRange for RedisIndex<'_> {
    async fn range(
        &self,
        from: Option<&SortKey>,
        direction: Direction,
        limit: usize,
    ) -> StoreResult<Vec<SortKey>> {
        // Lex ranges: "(x" is exclusive, "-" and "+" are the ends.
        let bound = from.map(|key| format!("({}", key.as_str()));
        let (command, start, stop) = match direction {
            Direction::Older => ("ZREVRANGEBYLEX", bound.as_deref().unwrap_or("+"), "-"),
            Direction::Newer => ("ZRANGEBYLEX", bound.as_deref().unwrap_or("-"), "+"),
        };
        let mut cmd = redis::cmd(command);
        cmd.arg(&self.key).arg(start).arg(stop).arg("LIMIT").arg(0).arg(limit);
        let members: Vec<String> = self.store.query(command, &cmd).await?;
        members
            .iter()
            .map(|member| {
                SortKey::parse(member)
                    .ok_or_else(|| StoreError::corrupt(&self.key, format!("bad member {member:?}")))
            })
            .collect()
    }
}

/// A Redis score (epoch ms; a double, exact for such integers) as a time.
fn score_time(key: &str, score: f64) -> StoreResult<DateTime<Utc>> {
    from_millis(score as i64).ok_or_else(|| StoreError::corrupt(key, format!("bad score {score}")))
}

#[async_trait]
impl DeviceStore for RedisStore {
    async fn put_device(&self, record: DeviceRecord) -> StoreResult<()> {
        let id = &record.device.id;
        let device_key = self.keys.device(id);
        let kind = record.device.device_type.as_str();
        let user = &record.device.user_id;
        // The client is resolved once, at registration: users are created before their
        // devices and never change owner.
        let client = self.get_user(user).await?.map(|u| u.client_id);
        let devices = self.keys.list_indexes_of("devices", user, kind, client.as_deref());
        let snapshots = self.keys.list_indexes_of("snapshots", user, kind, client.as_deref());
        let mut invocation = self.scripts.put_device.prepare_invoke();
        invocation.key(&device_key).key(self.keys.snapshot(id));
        for index in devices.iter().chain(&snapshots) {
            invocation.key(index);
        }
        invocation
            .arg(encode(&device_key, &record)?)
            .arg(encode(&device_key, &record.created_at)?)
            .arg(SortKey::new(record.created_at, id).as_str())
            .arg(devices.len());
        let _: i64 = self.invoke("put_device", invocation).await?;
        Ok(())
    }

    async fn get_device(&self, device_id: &str) -> StoreResult<Option<DeviceRecord>> {
        Ok(self.read_devices(&[device_id]).await?.pop().flatten())
    }

    async fn delete_device(&self, device_id: &str) -> StoreResult<bool> {
        let mut invocation = self.scripts.delete_device.prepare_invoke();
        invocation
            .key(self.keys.device(device_id))
            .key(self.keys.snapshot(device_id))
            .key(self.keys.schedule_of(device_id))
            .arg(device_id);
        let deleted: i64 = self.invoke("delete_device", invocation).await?;
        Ok(deleted > 0)
    }

    async fn list_devices(
        &self,
        filter: &DeviceFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<DeviceRecord>> {
        let index = self.list_index("devices", filter).await?;
        self.page(index, page, async |ids| self.read_devices(&ids).await).await
    }

    async fn get_snapshot(&self, device_id: &str) -> StoreResult<Option<Snapshot>> {
        let stored = self.read_one_versioned(self.keys.snapshot(device_id)).await?;
        Ok(stored.map(with_version(|s: &mut Snapshot| &mut s.version)))
    }

    async fn put_snapshot(
        &self,
        mut snapshot: Snapshot,
        expected_version: u64,
    ) -> StoreResult<u64> {
        let key = self.keys.snapshot(&snapshot.device_id);
        snapshot.version = expected_version + 1;
        let mut invocation = self.scripts.put_snapshot.prepare_invoke();
        invocation
            .key(self.keys.device(&snapshot.device_id))
            .key(&key)
            .arg(expected_version)
            .arg(encode(&key, &snapshot)?);
        self.compare_and_set("put_snapshot", &key, expected_version, invocation).await.map_err(
            |err| match err {
                StoreError::NotFound(_) => {
                    StoreError::NotFound(format!("device {}", snapshot.device_id))
                }
                other => other,
            },
        )
    }

    async fn list_snapshots(
        &self,
        filter: &DeviceFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<Snapshot>> {
        let index = self.list_index("snapshots", filter).await?;
        self.page(index, page, async |ids| {
            let keys: Vec<String> = ids.iter().map(|id| self.keys.snapshot(id)).collect();
            let stored = self.read_versioned(&keys).await?;
            Ok(stored
                .into_iter()
                .map(|s| s.map(with_version(|s: &mut Snapshot| &mut s.version)))
                .collect())
        })
        .await
    }
}

impl RedisStore {
    async fn list_index(&self, kind: &str, filter: &DeviceFilter) -> StoreResult<String> {
        let device_type = filter.device_type.map(|t| t.as_str());
        match (&filter.client_id, &filter.user_id) {
            (Some(client), None) => Ok(self.keys.client_index(kind, client, device_type)),
            (Some(client), Some(user)) => {
                // The user's list, if the user is the client's (there is no user-and-client
                // index: a user belongs to one client).
                let owned = self.get_user(user).await?.is_some_and(|u| u.client_id == *client);
                Ok(if owned {
                    self.keys.list_index(kind, Some(user), device_type)
                } else {
                    self.keys.empty_index()
                })
            }
            (None, user) => Ok(self.keys.list_index(kind, user.as_deref(), device_type)),
        }
    }

    /// Reads user records in one round trip; absent users are `None`.
    async fn read_users(&self, ids: &[&str]) -> StoreResult<Vec<Option<UserRecord>>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = ids.iter().map(|id| self.keys.user(id)).collect();
        let mut pipe = redis::pipe();
        for key in &keys {
            pipe.cmd("HGET").arg(key).arg("record");
        }
        let rows: Vec<Option<Vec<u8>>> = self.query_pipeline("HGET", &pipe).await?;
        keys.iter()
            .zip(rows)
            .map(|(key, row)| row.map(|raw| decode(key, &raw)).transpose())
            .collect()
    }

    /// Reads resource hashes in one round trip; absent resources are `None`.
    async fn read_resources(&self, keys: &[String]) -> StoreResult<Vec<Option<ResourceRecord>>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for key in keys {
            pipe.cmd("HMGET").arg(key).arg("version").arg("body").arg("created");
        }
        type Row = (Option<String>, Option<Vec<u8>>, Option<Vec<u8>>);
        let rows: Vec<Row> = self.query_pipeline("HMGET", &pipe).await?;
        keys.iter()
            .zip(rows)
            .map(|(key, row)| match row {
                (Some(version), Some(body), Some(created)) => {
                    let mut record: ResourceRecord = decode(key, &body)?;
                    record.version = version
                        .parse::<u64>()
                        .map_err(|_| StoreError::corrupt(key, "undecodable version"))?;
                    // The first put's time wins; see PUT_INDEXED.
                    record.created_at = decode(key, &created)?;
                    sealing::open_resource_secrets(
                        self.credential_key.as_deref(),
                        key,
                        &mut record,
                    )?;
                    Ok(Some(record))
                }
                (None, None, None) => Ok(None),
                _ => Err(StoreError::corrupt(key, "incomplete resource")),
            })
            .collect()
    }

    /// Reads the versioned records whose ids a set holds, in id order.
    async fn read_set<T: DeserializeOwned>(
        &self,
        set: &str,
        record_key: impl Fn(&str) -> String,
    ) -> StoreResult<Vec<(u64, T)>> {
        let mut ids: Vec<String> = self.query("SMEMBERS", redis::cmd("SMEMBERS").arg(set)).await?;
        ids.sort();
        let keys: Vec<String> = ids.iter().map(|id| record_key(id)).collect();
        Ok(self.read_versioned(&keys).await?.into_iter().flatten().collect())
    }
}

/// Puts the authoritative stored version (the hash's `version` field) into a decoded record.
fn with_version<T>(field: impl Fn(&mut T) -> &mut u64) -> impl Fn((u64, T)) -> T {
    move |(version, mut record)| {
        *field(&mut record) = version;
        record
    }
}

#[async_trait]
impl ActionStore for RedisStore {
    async fn put_action(
        &self,
        mut action: ActionRecord,
        expected_version: u64,
    ) -> StoreResult<u64> {
        let key = self.keys.action(&action.id);
        action.version = expected_version + 1;
        let mut invocation = self.scripts.put_versioned.prepare_invoke();
        invocation.key(&key);
        if action.pending {
            invocation
                .key(self.keys.pending_actions())
                .key(self.keys.pending_actions_for(&action.target_id));
        }
        invocation.arg(expected_version).arg(encode(&key, &action)?).arg(&action.id);
        self.compare_and_set("put_action", &key, expected_version, invocation).await
    }

    async fn get_action(&self, action_id: &str) -> StoreResult<Option<ActionRecord>> {
        let stored = self.read_one_versioned(self.keys.action(action_id)).await?;
        Ok(stored.map(with_version(|a: &mut ActionRecord| &mut a.version)))
    }

    async fn pending_actions_for(&self, target_id: &str) -> StoreResult<Vec<ActionRecord>> {
        let set = self.keys.pending_actions_for(target_id);
        let stored = self.read_set(&set, |id| self.keys.action(id)).await?;
        Ok(stored.into_iter().map(with_version(|a: &mut ActionRecord| &mut a.version)).collect())
    }

    async fn pending_actions(&self) -> StoreResult<Vec<ActionRecord>> {
        let set = self.keys.pending_actions();
        let stored = self.read_set(&set, |id| self.keys.action(id)).await?;
        Ok(stored.into_iter().map(with_version(|a: &mut ActionRecord| &mut a.version)).collect())
    }
}

#[async_trait]
impl ScheduleStore for RedisStore {
    async fn schedule(&self, device_id: &str, due: DateTime<Utc>) -> StoreResult<()> {
        let mut cmd = redis::cmd("ZADD");
        cmd.arg(self.keys.schedule_of(device_id)).arg(to_millis(due)).arg(device_id);
        let _: i64 = self.query("ZADD", &cmd).await?;
        Ok(())
    }

    async fn schedule_earlier(
        &self,
        device_id: &str,
        due: DateTime<Utc>,
    ) -> StoreResult<DateTime<Utc>> {
        let key = self.keys.schedule_of(device_id);
        let mut invocation = self.scripts.schedule_earlier.prepare_invoke();
        invocation.key(&key).arg(to_millis(due)).arg(device_id);
        let score: f64 = self.invoke("schedule_earlier", invocation).await?;
        score_time(&key, score)
    }

    async fn due_at(&self, device_id: &str) -> StoreResult<Option<DateTime<Utc>>> {
        let key = self.keys.schedule_of(device_id);
        let mut cmd = redis::cmd("ZSCORE");
        cmd.arg(&key).arg(device_id);
        let score: Option<f64> = self.query("ZSCORE", &cmd).await?;
        score.map(|score| score_time(&key, score)).transpose()
    }

    async fn claim_due(
        &self,
        shard: u16,
        now: DateTime<Utc>,
        limit: usize,
        lease_until: DateTime<Utc>,
    ) -> StoreResult<Vec<(String, DateTime<Utc>)>> {
        if limit == 0 || shard >= crate::SCHEDULE_SHARDS {
            // LIMIT 0 0 is fine for Redis, but there is nothing to ask.
            return Ok(Vec::new());
        }
        let key = self.keys.schedule(shard);
        let mut invocation = self.scripts.claim_due.prepare_invoke();
        invocation.key(&key).arg(to_millis(now)).arg(limit).arg(to_millis(lease_until));
        let claimed: Vec<(String, f64)> = self.invoke("claim_due", invocation).await?;
        claimed.into_iter().map(|(id, score)| Ok((id, score_time(&key, score)?))).collect()
    }

    async fn unschedule(&self, device_id: &str) -> StoreResult<()> {
        let mut cmd = redis::cmd("ZREM");
        cmd.arg(self.keys.schedule_of(device_id)).arg(device_id);
        let _: i64 = self.query("ZREM", &cmd).await?;
        Ok(())
    }

    async fn schedule_len(&self) -> StoreResult<usize> {
        let mut pipe = redis::pipe();
        for shard in crate::all_shards() {
            pipe.cmd("ZCARD").arg(self.keys.schedule(shard));
        }
        let counts: Vec<usize> = self.query_pipeline("ZCARD", &pipe).await?;
        Ok(counts.into_iter().sum())
    }

    async fn take_hint(
        &self,
        device_id: &str,
        now: DateTime<Utc>,
        min_interval: std::time::Duration,
    ) -> StoreResult<bool> {
        let interval_ms = u64::try_from(min_interval.as_millis()).unwrap_or(u64::MAX);
        // Keep the marker for a day of real time at most; it only matters within the interval.
        let ttl_ms = interval_ms.clamp(1, 86_400_000);
        let mut invocation = self.scripts.take_hint.prepare_invoke();
        invocation.key(self.keys.hint(device_id)).arg(to_millis(now)).arg(interval_ms).arg(ttl_ms);
        let taken: i64 = self.invoke("take_hint", invocation).await?;
        Ok(taken == 1)
    }
}

#[async_trait]
impl ClientStore for RedisStore {
    async fn put_client(&self, client: ApiClient) -> StoreResult<()> {
        let key = self.keys.client(&client.client_id);
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("SET")
            .arg(&key)
            .arg(encode(&key, &client)?)
            .ignore()
            .cmd("SADD")
            .arg(self.keys.clients())
            .arg(&client.client_id)
            .ignore();
        let _: () = self.query_pipeline("put_client", &pipe).await?;
        Ok(())
    }

    async fn list_clients(&self) -> StoreResult<Vec<ApiClient>> {
        let ids: Vec<String> =
            self.query("SMEMBERS", redis::cmd("SMEMBERS").arg(self.keys.clients())).await?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = ids.iter().map(|id| self.keys.client(id)).collect();
        let raw: Vec<Option<Vec<u8>>> = self.query("MGET", redis::cmd("MGET").arg(&keys)).await?;
        let mut clients = keys
            .iter()
            .zip(raw)
            .filter_map(|(key, raw)| raw.map(|raw| decode::<ApiClient>(key, &raw)))
            .collect::<StoreResult<Vec<_>>>()?;
        clients.sort_by(|a, b| {
            (to_millis(a.created_at), &a.client_id).cmp(&(to_millis(b.created_at), &b.client_id))
        });
        Ok(clients)
    }

    async fn get_client(&self, client_id: &str) -> StoreResult<Option<ApiClient>> {
        let key = self.keys.client(client_id);
        let raw: Option<Vec<u8>> = self.query("GET", redis::cmd("GET").arg(&key)).await?;
        raw.map(|raw| decode(&key, &raw)).transpose()
    }

    async fn put_token(&self, token: AccessToken) -> StoreResult<()> {
        let key = self.keys.token(&token.token_hash);
        let expires_ms = to_millis(token.expires_at);
        if expires_ms <= 0 {
            // PXAT needs a positive time; such a token is expired for any `now` after 1970.
            return Ok(());
        }
        // PXAT takes the absolute expiry, so no clock arithmetic on our side; a time already
        // past makes Redis drop the key at once, which `get_token` would reject anyway.
        let mut cmd = redis::cmd("SET");
        cmd.arg(&key).arg(encode(&key, &token)?).arg("PXAT").arg(expires_ms);
        let _: () = self.query("SET", &cmd).await?;
        // Tokens are not rewritten in practice; should one be, the next read sees it.
        self.tokens.forget(&token.token_hash);
        Ok(())
    }

    async fn get_token(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<AccessToken>> {
        let wall = Utc::now();
        if let Some(token) = self.tokens.get(token_hash, wall) {
            return Ok(Some(token).filter(|t| now < t.expires_at));
        }
        let key = self.keys.token(token_hash);
        let raw: Option<Vec<u8>> = self.query("GET", redis::cmd("GET").arg(&key)).await?;
        let token: Option<AccessToken> = raw.map(|raw| decode(&key, &raw)).transpose()?;
        if let Some(token) = token.as_ref().filter(|t| wall < t.expires_at) {
            self.tokens.insert(token.clone(), wall);
        }
        Ok(token.filter(|t| now < t.expires_at))
    }
}

#[async_trait]
impl AccountStore for RedisStore {
    async fn put_account(&self, account: AccountRef, expected_version: u64) -> StoreResult<u64> {
        let key = self.keys.account(&account.account_id);
        let user_id = account.user_id.clone();
        let account_id = account.account_id.clone();
        let body = encode(&key, &self.account_body(&key, account)?)?;
        let mut invocation = self.scripts.put_versioned.prepare_invoke();
        invocation
            .key(&key)
            .key(self.keys.accounts_of_user(&user_id))
            .arg(expected_version)
            .arg(body)
            .arg(&account_id);
        self.compare_and_set("put_account", &key, expected_version, invocation).await
    }

    async fn invalidate_account(&self, account_id: &str, at: DateTime<Utc>) -> StoreResult<bool> {
        let key = self.keys.account(account_id);
        // Read, mark, compare-and-set; a concurrent put (a refresh, a relink) makes us read
        // again. A handful of rounds is plenty: puts of one account are rare.
        for _ in 0..8 {
            let Some((version, mut stored)) =
                self.read_one_versioned::<StoredAccount>(key.clone()).await?
            else {
                return Ok(false);
            };
            if stored.invalid_since.is_some() {
                return Ok(false);
            }
            stored.invalid_since = Some(at);
            let mut invocation = self.scripts.put_versioned.prepare_invoke();
            invocation
                .key(&key)
                .key(self.keys.accounts_of_user(stored.account.user_id()))
                .arg(version)
                .arg(encode(&key, &stored)?)
                .arg(account_id);
            match self.compare_and_set("invalidate_account", &key, version, invocation).await {
                Ok(_) => return Ok(true),
                Err(StoreError::Conflict { .. }) => continue,
                Err(err) => return Err(err),
            }
        }
        Err(StoreError::Conflict { key, expected: 0, actual: 0 })
    }

    async fn get_account(&self, account_id: &str) -> StoreResult<Option<AccountRecord>> {
        let key = self.keys.account(account_id);
        let stored = self.read_one_versioned(key.clone()).await?;
        stored.map(|(version, stored)| self.open_account(&key, version, stored)).transpose()
    }

    async fn accounts_of_user(&self, user_id: &str) -> StoreResult<Vec<AccountRecord>> {
        let set = self.keys.accounts_of_user(user_id);
        let stored = self.read_set(&set, |id| self.keys.account(id)).await?;
        stored
            .into_iter()
            .map(|(version, stored)| self.open_account(&set, version, stored))
            .collect()
    }

    async fn delete_account(&self, account_id: &str) -> StoreResult<bool> {
        let mut invocation = self.scripts.delete_versioned.prepare_invoke();
        invocation.key(self.keys.account(account_id)).arg(account_id);
        let deleted: i64 = self.invoke("delete_account", invocation).await?;
        Ok(deleted > 0)
    }
}

impl RedisStore {
    /// The body stored for an account: credentials sealed when a key is configured.
    fn account_body(&self, key: &str, account: AccountRef) -> StoreResult<StoredAccount> {
        let account = match &self.credential_key {
            Some(sealer) => sealing::StoredAccount::Sealed(sealing::seal(sealer, key, &account)?),
            None => sealing::StoredAccount::Plain(account),
        };
        Ok(StoredAccount { account, invalid_since: None })
    }

    /// An account record from its stored body (`what` names it in errors).
    fn open_account(
        &self,
        what: &str,
        version: u64,
        stored: StoredAccount,
    ) -> StoreResult<AccountRecord> {
        let account = sealing::open(self.credential_key.as_deref(), what, stored.account)?;
        Ok(AccountRecord { account, version, invalid_since: stored.invalid_since })
    }
}

/// An account's `body`: the account JSON (its credentials sealed when the store has a key,
/// see [`crate::sealing`]) plus its validity (absent while valid, so bodies written before
/// the flag existed read as valid). Invalidating rewrites the body without opening it.
#[derive(serde::Serialize, serde::Deserialize)]
struct StoredAccount {
    #[serde(flatten)]
    account: sealing::StoredAccount,
    #[serde(default, rename = "invalidSince", skip_serializing_if = "Option::is_none")]
    invalid_since: Option<DateTime<Utc>>,
}

#[async_trait]
impl UserStore for RedisStore {
    async fn put_user(&self, user: UserRecord) -> StoreResult<UserRecord> {
        let key = self.keys.user(&user.id);
        let mut invocation = self.scripts.create_indexed.prepare_invoke();
        invocation
            .key(&key)
            .key(self.keys.users_of_client(&user.client_id))
            .arg(encode(&key, &user)?)
            .arg(SortKey::new(user.created_at, &user.id).as_str());
        let stored: Vec<u8> = self.invoke("put_user", invocation).await?;
        decode(&key, &stored)
    }

    async fn get_user(&self, user_id: &str) -> StoreResult<Option<UserRecord>> {
        Ok(self.read_users(&[user_id]).await?.pop().flatten())
    }

    async fn delete_user(&self, user_id: &str) -> StoreResult<bool> {
        let mut invocation = self.scripts.delete_indexed.prepare_invoke();
        invocation.key(self.keys.user(user_id));
        let deleted: i64 = self.invoke("delete_user", invocation).await?;
        Ok(deleted > 0)
    }

    async fn list_users(
        &self,
        client_id: &str,
        page: &PageRequest,
    ) -> StoreResult<Page<UserRecord>> {
        let index = self.keys.users_of_client(client_id);
        self.page(index, page, async |ids| self.read_users(&ids).await).await
    }
}

#[async_trait]
impl ResourceStore for RedisStore {
    async fn put_resource(
        &self,
        mut resource: ResourceRecord,
        expected_version: u64,
    ) -> StoreResult<u64> {
        let key = self.keys.resource(&resource.kind, &resource.id);
        resource.version = expected_version + 1;
        sealing::seal_resource_secrets(self.credential_key.as_deref(), &key, &mut resource)?;
        let mut invocation = self.scripts.put_indexed.prepare_invoke();
        invocation
            .key(&key)
            .key(
                self.keys.resources_of(
                    &resource.kind,
                    &ResourceOwner::Client(resource.client_id.clone()),
                ),
            )
            .key(
                self.keys
                    .resources_of(&resource.kind, &ResourceOwner::User(resource.user_id.clone())),
            )
            .arg(expected_version)
            .arg(encode(&key, &resource)?)
            .arg(SortKey::new(resource.created_at, &resource.id).as_str())
            .arg(encode(&key, &resource.created_at)?);
        self.compare_and_set("put_resource", &key, expected_version, invocation).await
    }

    async fn get_resource(&self, kind: &str, id: &str) -> StoreResult<Option<ResourceRecord>> {
        Ok(self.read_resources(&[self.keys.resource(kind, id)]).await?.pop().flatten())
    }

    async fn get_resources(
        &self,
        kind: &str,
        ids: &[&str],
    ) -> StoreResult<Vec<Option<ResourceRecord>>> {
        let keys: Vec<String> = ids.iter().map(|id| self.keys.resource(kind, id)).collect();
        self.read_resources(&keys).await
    }

    async fn delete_resource(&self, kind: &str, id: &str) -> StoreResult<bool> {
        let mut invocation = self.scripts.delete_indexed.prepare_invoke();
        invocation.key(self.keys.resource(kind, id));
        let deleted: i64 = self.invoke("delete_resource", invocation).await?;
        Ok(deleted > 0)
    }

    async fn list_resources(
        &self,
        kind: &str,
        owner: &ResourceOwner,
        page: &PageRequest,
    ) -> StoreResult<Page<ResourceRecord>> {
        let index = self.keys.resources_of(kind, owner);
        self.page(index, page, async |ids| {
            let keys: Vec<String> = ids.iter().map(|id| self.keys.resource(kind, id)).collect();
            self.read_resources(&keys).await
        })
        .await
    }
}

/// The stream field that holds an event's JSON.
const EVENT_FIELD: &str = "event";

/// Whether `id` looks like a stream id (`<ms>-<seq>`), checked before Redis sees it so a bad
/// cursor is the caller's error, not an outage.
fn is_stream_id(id: &str) -> bool {
    id.split_once('-')
        .is_some_and(|(ms, seq)| ms.parse::<u64>().is_ok() && seq.parse::<u64>().is_ok())
}

#[async_trait]
impl EventLog for RedisStore {
    async fn append_event(&self, mut event: Event) -> StoreResult<String> {
        let key = self.keys.events();
        event.id = String::new();
        // "~" lets Redis trim whole macro nodes lazily: cheap, and the cap is approximate.
        let mut cmd = redis::cmd("XADD");
        cmd.arg(&key)
            .arg("MAXLEN")
            .arg("~")
            .arg(self.event_log_max_len)
            .arg("*")
            .arg(EVENT_FIELD)
            .arg(encode(&key, &event)?);
        self.query("XADD", &cmd).await
    }

    async fn read_events(&self, after: Option<&str>, limit: usize) -> StoreResult<Vec<Event>> {
        let start = match after {
            None => "-".to_owned(),
            Some(id) if is_stream_id(id) => format!("({id}"),
            Some(id) => return Err(StoreError::InvalidCursor(id.to_owned())),
        };
        if limit == 0 {
            return Ok(Vec::new());
        }
        let key = self.keys.events();
        let mut cmd = redis::cmd("XRANGE");
        cmd.arg(&key).arg(start).arg("+").arg("COUNT").arg(limit);
        let entries: Vec<(String, Vec<(String, Vec<u8>)>)> = self.query("XRANGE", &cmd).await?;
        entries
            .into_iter()
            .map(|(id, fields)| {
                let raw = fields
                    .into_iter()
                    .find_map(|(name, value)| (name == EVENT_FIELD).then_some(value))
                    .ok_or_else(|| StoreError::corrupt(format!("{key} {id}"), "no event field"))?;
                let mut event: Event = decode(&format!("{key} {id}"), &raw)?;
                event.id = id;
                Ok(event)
            })
            .collect()
    }

    async fn latest_event_id(&self) -> StoreResult<Option<String>> {
        let mut cmd = redis::cmd("XREVRANGE");
        cmd.arg(self.keys.events()).arg("+").arg("-").arg("COUNT").arg(1);
        let entries: Vec<(String, redis::Value)> = self.query("XREVRANGE", &cmd).await?;
        Ok(entries.into_iter().next().map(|(id, _)| id))
    }
}

#[async_trait]
impl Store for RedisStore {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    async fn ping(&self) -> StoreResult<()> {
        let _: String = self.query("PING", &redis::cmd("PING")).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords_only() {
        assert_eq!(redact_url("redis://127.0.0.1:6379/0"), "redis://127.0.0.1:6379/0");
        assert_eq!(redact_url("redis://:hunter2@host:6379"), "redis://:***@host:6379");
        assert_eq!(redact_url("rediss://me:pw@host/1"), "rediss://me:***@host/1");
        assert_eq!(redact_url("redis://secret@host"), "redis://***@host");
        assert_eq!(redact_url("unix:///tmp/redis.sock"), "unix:///tmp/redis.sock");
    }

    #[test]
    fn stream_ids_are_checked() {
        assert!(is_stream_id("1700000000000-0"));
        assert!(!is_stream_id("1700000000000"));
        assert!(!is_stream_id("abc-1"));
        assert!(!is_stream_id("1-2-3"));
    }
}
