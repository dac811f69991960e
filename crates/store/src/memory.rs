//! The embedded backend: everything in process memory, gone on restart.
//!
//! It is the default when no Redis is configured, and the reference the Redis backend is
//! checked against (both run [`crate::conformance`]). All state sits behind one
//! `std::sync::Mutex`: every operation is a short critical section with no `.await` inside, so
//! each call is trivially atomic (compare-and-set, claims) and a plain mutex is cheaper than an
//! async one.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::ops::Bound;
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use oemgate_core::AccountRef;

use crate::codec::{from_millis, to_millis};
use crate::error::{StoreError, StoreResult};
use crate::paging::{Direction, KeyRange, SortKey, page_keys};
use crate::traits::*;

mod history;
mod link_sessions;
mod webhooks;

/// The in-process store. Cheap to create; share it as `Arc<dyn Store>`.
#[derive(Debug)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
    event_log_cap: usize,
}

#[derive(Debug, Default)]
struct Inner {
    devices: HashMap<String, DeviceRecord>,
    /// Every device's sort key: the list order.
    device_order: BTreeSet<SortKey>,
    /// The API client each device was registered under (through its user).
    device_clients: HashMap<String, String>,
    snapshots: HashMap<String, Snapshot>,
    actions: HashMap<String, ActionRecord>,
    /// Ids of pending actions, kept sorted for the documented id order.
    pending: BTreeSet<String>,
    /// Due time (epoch ms) by device, and the same pairs ordered by time for claims.
    due: HashMap<String, i64>,
    /// One time-ordered queue per schedule shard.
    queue: Vec<BTreeSet<(i64, String)>>,
    /// Time (epoch ms) of the last refresh hint taken per device.
    hints: HashMap<String, i64>,
    clients: HashMap<String, ApiClient>,
    tokens: HashMap<String, AccessToken>,
    accounts: BTreeMap<String, AccountRecord>,
    users: HashMap<String, UserRecord>,
    /// Sort keys of each client's users.
    user_order: HashMap<String, BTreeSet<SortKey>>,
    /// Resources by (kind, id).
    resources: HashMap<(String, String), ResourceRecord>,
    /// Sort keys of resources by (kind, owner).
    resource_order: HashMap<(String, ResourceOwner), BTreeSet<SortKey>>,
    events: VecDeque<(u64, StoredEvent)>,
    last_event: u64,
    link_sessions: HashMap<String, link_sessions::Stored>,
    history: HashMap<String, std::collections::VecDeque<crate::history::Sample>>,
    webhook_states: HashMap<String, crate::webhooks::WebhookState>,
    /// Delivery leases by webhook: (owner, until).
    webhook_leases: HashMap<String, (String, DateTime<Utc>)>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    /// An empty store keeping up to [`DEFAULT_EVENT_LOG_CAP`] events.
    pub fn new() -> Self {
        Self::with_event_log_cap(DEFAULT_EVENT_LOG_CAP)
    }

    /// An empty store whose event log keeps at most `cap` events (at least one).
    pub fn with_event_log_cap(cap: usize) -> Self {
        Self { inner: Mutex::new(Inner::default()), event_log_cap: cap.max(1) }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave a half-applied write behind (every
        // mutation is checked before it starts), so a poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    async fn page<T>(
        &self,
        filter: &DeviceFilter,
        request: &PageRequest,
        with_snapshot: bool,
        item: impl Fn(&Inner, &str) -> Option<T>,
    ) -> StoreResult<Page<T>> {
        let index = MemoryIndex { store: self, filter, with_snapshot };
        let page = page_keys(&index, request).await?;
        let inner = self.lock();
        let items = page.keys.iter().filter_map(|key| item(&inner, key.id())).collect();
        Ok(Page { items, after: page.after, before: page.before })
    }
}

/// The device list seen through a filter, as [`page_keys`] reads it.
struct MemoryIndex<'a> {
    store: &'a MemoryStore,
    filter: &'a DeviceFilter,
    /// Only devices that have a snapshot (for `list_snapshots`).
    with_snapshot: bool,
}

impl KeyRange for MemoryIndex<'_> {
    async fn range(
        &self,
        from: Option<&SortKey>,
        direction: Direction,
        limit: usize,
    ) -> StoreResult<Vec<SortKey>> {
        let inner = self.store.lock();
        let wanted = |key: &&SortKey| {
            inner.devices.get(key.id()).is_some_and(|d| self.filter.matches(&d.device))
                && (!self.with_snapshot || inner.snapshots.contains_key(key.id()))
                && self.filter.client_id.as_ref().is_none_or(|client| {
                    inner.device_clients.get(key.id()).is_some_and(|c| c == client)
                })
        };
        Ok(range_of(&inner.device_order, from, direction, limit, wanted))
    }
}

/// Up to `limit` keys of `set` strictly beyond `from` in `direction` that pass `wanted`.
fn range_of(
    set: &BTreeSet<SortKey>,
    from: Option<&SortKey>,
    direction: Direction,
    limit: usize,
    wanted: impl FnMut(&&SortKey) -> bool,
) -> Vec<SortKey> {
    let bound = from.map_or(Bound::Unbounded, Bound::Excluded);
    match direction {
        Direction::Older => {
            set.range((Bound::Unbounded, bound)).rev().filter(wanted).take(limit).cloned().collect()
        }
        Direction::Newer => {
            set.range((bound, Bound::Unbounded)).filter(wanted).take(limit).cloned().collect()
        }
    }
}

/// Picks one sorted set of keys out of the store's state.
type SetPicker<'a> = Box<dyn Fn(&Inner) -> Option<&BTreeSet<SortKey>> + Send + Sync + 'a>;

/// A plain sorted set of keys (users of a client, resources of an owner).
struct SetIndex<'a> {
    store: &'a MemoryStore,
    set: SetPicker<'a>,
}

impl KeyRange for SetIndex<'_> {
    async fn range(
        &self,
        from: Option<&SortKey>,
        direction: Direction,
        limit: usize,
    ) -> StoreResult<Vec<SortKey>> {
        let inner = self.store.lock();
        Ok((self.set)(&inner)
            .map(|set| range_of(set, from, direction, limit, |_| true))
            .unwrap_or_default())
    }
}

/// Checks `expected` against the stored version (0 when absent) and returns the next one.
fn next_version(key: &str, stored: Option<u64>, expected: u64) -> StoreResult<u64> {
    let actual = stored.unwrap_or(0);
    if actual == expected {
        Ok(actual + 1)
    } else {
        Err(StoreError::Conflict { key: key.to_owned(), expected, actual })
    }
}

impl Inner {
    fn queue(&mut self, device_id: &str) -> &mut BTreeSet<(i64, String)> {
        let shard = usize::from(crate::shard_of(device_id));
        if self.queue.len() <= shard {
            self.queue.resize_with(usize::from(crate::SCHEDULE_SHARDS), BTreeSet::new);
        }
        &mut self.queue[shard]
    }

    fn unschedule(&mut self, device_id: &str) {
        if let Some(old) = self.due.remove(device_id) {
            self.queue(device_id).remove(&(old, device_id.to_owned()));
        }
    }

    fn schedule(&mut self, device_id: &str, due: i64) {
        self.unschedule(device_id);
        self.due.insert(device_id.to_owned(), due);
        self.queue(device_id).insert((due, device_id.to_owned()));
    }
}

/// A stored millisecond time back as a time (always in range: it came from one).
fn time(millis: i64) -> DateTime<Utc> {
    from_millis(millis).unwrap_or_default()
}

#[async_trait]
impl DeviceStore for MemoryStore {
    async fn put_device(&self, mut record: DeviceRecord) -> StoreResult<()> {
        let mut inner = self.lock();
        match inner.users.get(&record.device.user_id).map(|u| u.client_id.clone()) {
            Some(client) => inner.device_clients.insert(record.device.id.clone(), client),
            None => inner.device_clients.remove(&record.device.id),
        };
        if let Some(existing) = inner.devices.get(&record.device.id) {
            record.created_at = existing.created_at;
        } else {
            inner.device_order.insert(SortKey::new(record.created_at, &record.device.id));
        }
        inner.devices.insert(record.device.id.clone(), record);
        Ok(())
    }

    async fn get_device(&self, device_id: &str) -> StoreResult<Option<DeviceRecord>> {
        Ok(self.lock().devices.get(device_id).cloned())
    }

    async fn delete_device(&self, device_id: &str) -> StoreResult<bool> {
        let mut inner = self.lock();
        inner.snapshots.remove(device_id);
        inner.unschedule(device_id);
        inner.device_clients.remove(device_id);
        let Some(record) = inner.devices.remove(device_id) else {
            return Ok(false);
        };
        inner.device_order.remove(&SortKey::new(record.created_at, device_id));
        Ok(true)
    }

    async fn list_devices(
        &self,
        filter: &DeviceFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<DeviceRecord>> {
        self.page(filter, page, false, |inner, id| inner.devices.get(id).cloned()).await
    }

    async fn get_snapshot(&self, device_id: &str) -> StoreResult<Option<Snapshot>> {
        Ok(self.lock().snapshots.get(device_id).cloned())
    }

    async fn put_snapshot(
        &self,
        mut snapshot: Snapshot,
        expected_version: u64,
    ) -> StoreResult<u64> {
        let mut inner = self.lock();
        let id = snapshot.device_id.clone();
        if !inner.devices.contains_key(&id) {
            return Err(StoreError::NotFound(format!("device {id}")));
        }
        let stored = inner.snapshots.get(&id).map(|s| s.version);
        snapshot.version = next_version(&format!("snapshot {id}"), stored, expected_version)?;
        let version = snapshot.version;
        inner.snapshots.insert(id, snapshot);
        Ok(version)
    }

    async fn list_snapshots(
        &self,
        filter: &DeviceFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<Snapshot>> {
        self.page(filter, page, true, |inner, id| inner.snapshots.get(id).cloned()).await
    }
}

#[async_trait]
impl ActionStore for MemoryStore {
    async fn put_action(
        &self,
        mut action: ActionRecord,
        expected_version: u64,
    ) -> StoreResult<u64> {
        let mut inner = self.lock();
        let stored = inner.actions.get(&action.id).map(|a| a.version);
        action.version = next_version(&format!("action {}", action.id), stored, expected_version)?;
        let version = action.version;
        if action.pending {
            inner.pending.insert(action.id.clone());
        } else {
            inner.pending.remove(&action.id);
        }
        inner.actions.insert(action.id.clone(), action);
        Ok(version)
    }

    async fn get_action(&self, action_id: &str) -> StoreResult<Option<ActionRecord>> {
        Ok(self.lock().actions.get(action_id).cloned())
    }

    async fn pending_actions_for(&self, target_id: &str) -> StoreResult<Vec<ActionRecord>> {
        let inner = self.lock();
        let pending = inner.pending.iter().filter_map(|id| inner.actions.get(id));
        Ok(pending.filter(|a| a.target_id == target_id).cloned().collect())
    }

    async fn pending_actions(&self) -> StoreResult<Vec<ActionRecord>> {
        let inner = self.lock();
        Ok(inner.pending.iter().filter_map(|id| inner.actions.get(id)).cloned().collect())
    }
}

#[async_trait]
impl ScheduleStore for MemoryStore {
    async fn schedule(&self, device_id: &str, due: DateTime<Utc>) -> StoreResult<()> {
        self.lock().schedule(device_id, to_millis(due));
        Ok(())
    }

    async fn schedule_earlier(
        &self,
        device_id: &str,
        due: DateTime<Utc>,
    ) -> StoreResult<DateTime<Utc>> {
        let mut inner = self.lock();
        let due = to_millis(due);
        match inner.due.get(device_id) {
            Some(&current) if current <= due => Ok(time(current)),
            _ => {
                inner.schedule(device_id, due);
                Ok(time(due))
            }
        }
    }

    async fn due_at(&self, device_id: &str) -> StoreResult<Option<DateTime<Utc>>> {
        Ok(self.lock().due.get(device_id).map(|&due| time(due)))
    }

    async fn claim_due(
        &self,
        shard: u16,
        now: DateTime<Utc>,
        limit: usize,
        lease_until: DateTime<Utc>,
    ) -> StoreResult<Vec<(String, DateTime<Utc>)>> {
        let mut inner = self.lock();
        let now = to_millis(now);
        let Some(queue) = inner.queue.get(usize::from(shard)) else {
            return Ok(Vec::new());
        };
        let claimed: Vec<(i64, String)> =
            queue.iter().take_while(|(due, _)| *due <= now).take(limit).cloned().collect();
        let lease = to_millis(lease_until);
        for (_, device_id) in &claimed {
            inner.schedule(device_id, lease);
        }
        Ok(claimed.into_iter().map(|(due, id)| (id, time(due))).collect())
    }

    async fn unschedule(&self, device_id: &str) -> StoreResult<()> {
        self.lock().unschedule(device_id);
        Ok(())
    }

    async fn schedule_len(&self) -> StoreResult<usize> {
        Ok(self.lock().due.len())
    }

    async fn take_hint(
        &self,
        device_id: &str,
        now: DateTime<Utc>,
        min_interval: std::time::Duration,
    ) -> StoreResult<bool> {
        let now_ms = now.timestamp_millis();
        let interval_ms = i64::try_from(min_interval.as_millis()).unwrap_or(i64::MAX);
        let mut inner = self.lock();
        match inner.hints.get(device_id) {
            Some(last) if now_ms.saturating_sub(*last) < interval_ms => Ok(false),
            _ => {
                inner.hints.insert(device_id.to_string(), now_ms);
                Ok(true)
            }
        }
    }
}

#[async_trait]
impl ClientStore for MemoryStore {
    async fn put_client(&self, client: ApiClient) -> StoreResult<()> {
        self.lock().clients.insert(client.client_id.clone(), client);
        Ok(())
    }

    async fn get_client(&self, client_id: &str) -> StoreResult<Option<ApiClient>> {
        Ok(self.lock().clients.get(client_id).cloned())
    }

    async fn list_clients(&self) -> StoreResult<Vec<ApiClient>> {
        let mut clients: Vec<ApiClient> = self.lock().clients.values().cloned().collect();
        clients.sort_by(|a, b| {
            (to_millis(a.created_at), &a.client_id).cmp(&(to_millis(b.created_at), &b.client_id))
        });
        Ok(clients)
    }

    async fn put_token(&self, token: AccessToken) -> StoreResult<()> {
        let mut inner = self.lock();
        // Drop tokens past their expiry by the wall clock, as Redis does on its own, so a
        // long-running gateway does not accumulate them.
        let wall = Utc::now();
        inner.tokens.retain(|_, t| t.expires_at > wall);
        inner.tokens.insert(token.token_hash.clone(), token);
        Ok(())
    }

    async fn get_token(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<AccessToken>> {
        Ok(self.lock().tokens.get(token_hash).filter(|t| now < t.expires_at).cloned())
    }
}

#[async_trait]
impl AccountStore for MemoryStore {
    async fn put_account(&self, account: AccountRef, expected_version: u64) -> StoreResult<u64> {
        let mut inner = self.lock();
        let id = account.account_id.clone();
        let stored = inner.accounts.get(&id).map(|a| a.version);
        let version = next_version(&format!("account {id}"), stored, expected_version)?;
        inner.accounts.insert(id, AccountRecord { account, version, invalid_since: None });
        Ok(version)
    }

    async fn invalidate_account(&self, account_id: &str, at: DateTime<Utc>) -> StoreResult<bool> {
        let mut inner = self.lock();
        match inner.accounts.get_mut(account_id) {
            Some(record) if record.invalid_since.is_none() => {
                record.invalid_since = Some(at);
                record.version += 1;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn delete_account(&self, account_id: &str) -> StoreResult<bool> {
        Ok(self.lock().accounts.remove(account_id).is_some())
    }

    async fn get_account(&self, account_id: &str) -> StoreResult<Option<AccountRecord>> {
        Ok(self.lock().accounts.get(account_id).cloned())
    }

    async fn accounts_of_user(&self, user_id: &str) -> StoreResult<Vec<AccountRecord>> {
        let inner = self.lock();
        let mine = inner.accounts.values().filter(|a| a.account.user_id == user_id);
        Ok(mine.cloned().collect())
    }
}

#[async_trait]
impl UserStore for MemoryStore {
    async fn put_user(&self, user: UserRecord) -> StoreResult<UserRecord> {
        let mut inner = self.lock();
        if let Some(existing) = inner.users.get(&user.id) {
            return Ok(existing.clone());
        }
        inner
            .user_order
            .entry(user.client_id.clone())
            .or_default()
            .insert(SortKey::new(user.created_at, &user.id));
        inner.users.insert(user.id.clone(), user.clone());
        Ok(user)
    }

    async fn get_user(&self, user_id: &str) -> StoreResult<Option<UserRecord>> {
        Ok(self.lock().users.get(user_id).cloned())
    }

    async fn delete_user(&self, user_id: &str) -> StoreResult<bool> {
        let mut inner = self.lock();
        let Some(user) = inner.users.remove(user_id) else {
            return Ok(false);
        };
        if let Some(order) = inner.user_order.get_mut(&user.client_id) {
            order.remove(&SortKey::new(user.created_at, user_id));
        }
        Ok(true)
    }

    async fn list_users(
        &self,
        client_id: &str,
        page: &PageRequest,
    ) -> StoreResult<Page<UserRecord>> {
        let index =
            SetIndex { store: self, set: Box::new(|inner| inner.user_order.get(client_id)) };
        let keys = page_keys(&index, page).await?;
        let inner = self.lock();
        let items = keys.keys.iter().filter_map(|key| inner.users.get(key.id()).cloned()).collect();
        Ok(Page { items, after: keys.after, before: keys.before })
    }
}

impl Inner {
    /// Takes a resource out of its owners' list orders.
    fn unindex_resource(&mut self, resource: &ResourceRecord) {
        let key = SortKey::new(resource.created_at, &resource.id);
        for owner in resource_owners(resource) {
            if let Some(order) = self.resource_order.get_mut(&(resource.kind.clone(), owner)) {
                order.remove(&key);
            }
        }
    }
}

/// The two lists a resource is in.
fn resource_owners(resource: &ResourceRecord) -> [ResourceOwner; 2] {
    [
        ResourceOwner::Client(resource.client_id.clone()),
        ResourceOwner::User(resource.user_id.clone()),
    ]
}

#[async_trait]
impl ResourceStore for MemoryStore {
    async fn put_resource(
        &self,
        mut resource: ResourceRecord,
        expected_version: u64,
    ) -> StoreResult<u64> {
        let mut inner = self.lock();
        let id = (resource.kind.clone(), resource.id.clone());
        let stored = inner.resources.get(&id).cloned();
        let what = format!("{} {}", resource.kind, resource.id);
        resource.version =
            next_version(&what, stored.as_ref().map(|r| r.version), expected_version)?;
        // The first put's time wins.
        if let Some(stored) = &stored {
            resource.created_at = stored.created_at;
        }
        if let Some(stored) = &stored {
            inner.unindex_resource(stored);
        }
        let key = SortKey::new(resource.created_at, &resource.id);
        for owner in resource_owners(&resource) {
            inner
                .resource_order
                .entry((resource.kind.clone(), owner))
                .or_default()
                .insert(key.clone());
        }
        let version = resource.version;
        inner.resources.insert(id, resource);
        Ok(version)
    }

    async fn get_resource(&self, kind: &str, id: &str) -> StoreResult<Option<ResourceRecord>> {
        Ok(self.lock().resources.get(&(kind.to_owned(), id.to_owned())).cloned())
    }

    async fn get_resources(
        &self,
        kind: &str,
        ids: &[&str],
    ) -> StoreResult<Vec<Option<ResourceRecord>>> {
        let inner = self.lock();
        Ok(ids
            .iter()
            .map(|id| inner.resources.get(&(kind.to_owned(), (*id).to_owned())).cloned())
            .collect())
    }

    async fn delete_resource(&self, kind: &str, id: &str) -> StoreResult<bool> {
        let mut inner = self.lock();
        let Some(resource) = inner.resources.remove(&(kind.to_owned(), id.to_owned())) else {
            return Ok(false);
        };
        inner.unindex_resource(&resource);
        Ok(true)
    }

    async fn list_resources(
        &self,
        kind: &str,
        owner: &ResourceOwner,
        page: &PageRequest,
    ) -> StoreResult<Page<ResourceRecord>> {
        let order_key = (kind.to_owned(), owner.clone());
        let index = SetIndex {
            store: self,
            set: Box::new(move |inner| inner.resource_order.get(&order_key)),
        };
        let keys = page_keys(&index, page).await?;
        let inner = self.lock();
        let items = keys
            .keys
            .iter()
            .filter_map(|key| inner.resources.get(&(kind.to_owned(), key.id().to_owned())).cloned())
            .collect();
        Ok(Page { items, after: keys.after, before: keys.before })
    }
}

/// An event as the log keeps it: the payload as compact JSON text rather than a parsed
/// value, which takes several times the memory (a vehicle's resource is a tree of maps and
/// strings). At 10,000 devices the log fills its million events within a day, so this is
/// most of what the memory store holds.
#[derive(Debug)]
struct StoredEvent {
    event: Box<str>,
    user_id: Box<str>,
    created_at: DateTime<Utc>,
    payload: Box<str>,
}

impl StoredEvent {
    fn new(event: &Event) -> Self {
        Self {
            event: event.event.as_str().into(),
            user_id: event.user_id.as_str().into(),
            created_at: event.created_at,
            payload: event.payload.to_string().into_boxed_str(),
        }
    }

    fn event(&self, seq: u64) -> StoreResult<Event> {
        let payload = serde_json::from_str(&self.payload).map_err(|err| StoreError::Corrupt {
            key: format!("event {seq}"),
            message: err.to_string(),
        })?;
        Ok(Event {
            id: seq.to_string(),
            event: self.event.to_string(),
            user_id: self.user_id.to_string(),
            created_at: self.created_at,
            payload,
        })
    }
}

#[async_trait]
impl EventLog for MemoryStore {
    async fn append_event(&self, mut event: Event) -> StoreResult<String> {
        let mut inner = self.lock();
        inner.last_event += 1;
        let seq = inner.last_event;
        event.id = seq.to_string();
        inner.events.push_back((seq, StoredEvent::new(&event)));
        while inner.events.len() > self.event_log_cap {
            inner.events.pop_front();
        }
        Ok(seq.to_string())
    }

    async fn read_events(&self, after: Option<&str>, limit: usize) -> StoreResult<Vec<Event>> {
        let after = match after {
            None => 0,
            Some(id) => id.parse::<u64>().map_err(|_| StoreError::InvalidCursor(id.to_owned()))?,
        };
        let inner = self.lock();
        let start = inner.events.partition_point(|(seq, _)| *seq <= after);
        inner.events.iter().skip(start).take(limit).map(|(seq, e)| e.event(*seq)).collect()
    }

    async fn latest_event_id(&self) -> StoreResult<Option<String>> {
        let inner = self.lock();
        Ok((inner.last_event > 0).then(|| inner.last_event.to_string()))
    }
}

#[async_trait]
impl Store for MemoryStore {
    fn backend(&self) -> &'static str {
        "memory"
    }

    async fn ping(&self) -> StoreResult<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(n: u32) -> Event {
        Event {
            id: String::new(),
            event: "user:updated".to_owned(),
            user_id: "u".to_owned(),
            created_at: DateTime::default(),
            payload: serde_json::json!(n),
        }
    }

    #[tokio::test]
    async fn event_log_drops_the_oldest_beyond_its_cap() {
        let store = MemoryStore::with_event_log_cap(2);
        let mut ids = Vec::new();
        for n in 0..3 {
            ids.push(store.append_event(event(n)).await.unwrap());
        }
        let kept = store.read_events(None, 10).await.unwrap();
        assert_eq!(kept.iter().map(|e| e.id.clone()).collect::<Vec<_>>(), ids[1..]);
        // Reading after a dropped id still yields what follows it.
        assert_eq!(store.read_events(Some(&ids[0]), 10).await.unwrap(), kept);
    }
}
