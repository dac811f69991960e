//! The storage contract every backend implements.
//!
//! The traits are split by concern (devices and snapshots, actions, the poll schedule, API
//! clients and tokens, accounts, the event log) and gathered in [`Store`], which is what the
//! rest of oemgate holds as `Arc<dyn Store>`. The conformance suite in
//! [`crate::conformance`] pins the behaviour; both backends run it.
//!
//! Conventions every backend keeps:
//!
//! - Lists are newest first by `created_at` at millisecond precision, ties broken by id
//!   (descending), and paged with opaque cursors (see [`PageRequest`]).
//! - Versions start at 1; a put with the wrong `expected_version` changes nothing and fails
//!   with `StoreError::Conflict` carrying the stored version.
//! - Schedule times are kept in whole milliseconds.
//! - Nothing reads the wall clock to decide an outcome: callers pass `now`.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use oemgate_core::{AccountRef, DeviceRef, VendorType};
use serde::{Deserialize, Serialize};

use crate::error::StoreResult;

/// A device registered with oemgate: who owns it, which vendor account reads it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeviceRecord {
    /// The device reference (id, user, class, vendor id, site).
    pub device: DeviceRef,
    /// The vendor ("TESLA").
    pub vendor: String,
    /// The vendor account that reads it (see [`AccountRecord`]).
    pub account_id: String,
    /// When oemgate first saw the device; list order is newest first by this.
    pub created_at: DateTime<Utc>,
}

/// The latest normalized state of a device.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Snapshot {
    /// The device id.
    pub device_id: String,
    /// The owning user.
    pub user_id: String,
    /// The device class.
    pub device_type: VendorType,
    /// Incremented by every successful put; the first put yields 1.
    pub version: u64,
    /// When the state was observed.
    pub observed_at: DateTime<Utc>,
    /// The Enode-style resource JSON as served by the API.
    pub resource: serde_json::Value,
}

/// Which devices a list covers.
///
/// `client_id` restricts the list to devices of users owned by that API client (see
/// [`UserStore`]): a device belongs to the client that owned its user when the device was
/// registered, so register users before their devices.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeviceFilter {
    /// Only this user's devices.
    pub user_id: Option<String>,
    /// Only devices of this class.
    pub device_type: Option<VendorType>,
    /// Only devices of this API client's users.
    pub client_id: Option<String>,
}

impl DeviceFilter {
    /// Whether a device passes the user and type parts of the filter (the client part needs
    /// the store, which knows which client a device was registered under).
    pub fn matches(&self, device: &DeviceRef) -> bool {
        self.user_id.as_ref().is_none_or(|user| *user == device.user_id)
            && self.device_type.as_ref().is_none_or(|kind| *kind == device.device_type)
    }
}

/// A page request: `after`/`before` are opaque cursors from a previous [`Page`].
///
/// At most one of them may be set (both is `StoreError::InvalidCursor`, as is a cursor the
/// store did not hand out). `before` yields the `page_size` items just newer than the cursor,
/// still newest first. A cursor stays valid when its item is deleted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PageRequest {
    /// Items after this cursor (older).
    pub after: Option<String>,
    /// Items before this cursor (newer).
    pub before: Option<String>,
    /// At most this many items (1..=1000, clamped into that range; the API defaults to 50).
    pub page_size: usize,
}

impl Default for PageRequest {
    fn default() -> Self {
        Self { after: None, before: None, page_size: 50 }
    }
}

/// One page of a list, newest first, with cursors to move on.
#[derive(Clone, Debug, PartialEq)]
pub struct Page<T> {
    /// The items.
    pub items: Vec<T>,
    /// Cursor for the next (older) page, when there is one.
    pub after: Option<String>,
    /// Cursor for the previous (newer) page, when there is one.
    pub before: Option<String>,
}

/// Devices and their latest snapshots.
#[async_trait]
pub trait DeviceStore: Send + Sync {
    /// Registers or replaces a device. `created_at` of an existing record is kept.
    async fn put_device(&self, record: DeviceRecord) -> StoreResult<()>;
    /// The device with this id.
    async fn get_device(&self, device_id: &str) -> StoreResult<Option<DeviceRecord>>;
    /// Removes a device, its snapshot and its schedule entry. Returns whether it existed.
    async fn delete_device(&self, device_id: &str) -> StoreResult<bool>;
    /// Lists devices, newest `created_at` first.
    async fn list_devices(
        &self,
        filter: &DeviceFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<DeviceRecord>>;

    /// The latest snapshot of a device.
    async fn get_snapshot(&self, device_id: &str) -> StoreResult<Option<Snapshot>>;
    /// Stores a snapshot if the stored version equals `expected_version` (0 = none stored yet)
    /// and returns the new version. Otherwise fails with `StoreError::Conflict`. The device must
    /// be registered (else `StoreError::NotFound`).
    async fn put_snapshot(&self, snapshot: Snapshot, expected_version: u64) -> StoreResult<u64>;
    /// Lists snapshots of registered devices in the device list order (newest device first);
    /// devices without a snapshot yet are left out.
    async fn list_snapshots(
        &self,
        filter: &DeviceFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<Snapshot>>;
}

/// The state of an action, as far as the store cares.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActionRecord {
    /// The action id.
    pub id: String,
    /// The device it targets.
    pub target_id: String,
    /// Whether it is still PENDING (indexed for the executor).
    pub pending: bool,
    /// Incremented by every successful put; the first put yields 1.
    pub version: u64,
    /// The Enode-style action JSON plus executor bookkeeping.
    pub body: serde_json::Value,
}

/// Durable actions.
#[async_trait]
pub trait ActionStore: Send + Sync {
    /// Stores an action if the stored version equals `expected_version` (0 = new); returns
    /// the new version or `StoreError::Conflict`.
    async fn put_action(&self, action: ActionRecord, expected_version: u64) -> StoreResult<u64>;
    /// The action with this id.
    async fn get_action(&self, action_id: &str) -> StoreResult<Option<ActionRecord>>;
    /// The pending actions targeting a device, in id order.
    async fn pending_actions_for(&self, target_id: &str) -> StoreResult<Vec<ActionRecord>>;
    /// All pending actions (for the executor to pick up after a restart), in id order.
    async fn pending_actions(&self) -> StoreResult<Vec<ActionRecord>>;
}

/// The poll schedule: devices ordered by when they are due.
#[async_trait]
pub trait ScheduleStore: Send + Sync {
    /// Sets when a device is next due (insert or move).
    async fn schedule(&self, device_id: &str, due: DateTime<Utc>) -> StoreResult<()>;
    /// Moves a device's due time earlier, never later; inserts it if absent. Returns the due
    /// time in force afterwards.
    async fn schedule_earlier(
        &self,
        device_id: &str,
        due: DateTime<Utc>,
    ) -> StoreResult<DateTime<Utc>>;
    /// When a device is due, if scheduled.
    async fn due_at(&self, device_id: &str) -> StoreResult<Option<DateTime<Utc>>>;
    /// Atomically takes up to `limit` devices of schedule shard `shard` (see
    /// [`crate::shard_of`]) due at or before `now`, earliest first, and moves each to
    /// `lease_until` so no other instance takes it before this one reschedules it (or dies and
    /// the lease runs out). Returns each device with the due time it had before the claim.
    /// Ties are taken in device id order. A shard outside `0..SCHEDULE_SHARDS` holds nothing.
    async fn claim_due(
        &self,
        shard: u16,
        now: DateTime<Utc>,
        limit: usize,
        lease_until: DateTime<Utc>,
    ) -> StoreResult<Vec<(String, DateTime<Utc>)>>;
    /// Removes a device from the schedule.
    async fn unschedule(&self, device_id: &str) -> StoreResult<()>;
    /// How many devices are scheduled.
    async fn schedule_len(&self) -> StoreResult<usize>;
    /// Records a refresh hint for a device at `now` and says whether it may bring a poll
    /// forward: true unless a hint was already taken less than `min_interval` before `now`.
    /// Shared by all instances, so a burst of hints through any of them yields one poll.
    async fn take_hint(
        &self,
        device_id: &str,
        now: DateTime<Utc>,
        min_interval: std::time::Duration,
    ) -> StoreResult<bool>;
}

/// An API client (OAuth2 client credentials).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiClient {
    /// The client id.
    pub client_id: String,
    /// A hash of the client secret (never the secret itself).
    pub secret_hash: String,
    /// The API version the client is pinned to.
    pub api_version: String,
    /// When the client was created.
    pub created_at: DateTime<Utc>,
    /// A human-readable name given at creation.
    #[serde(default)]
    pub name: String,
    /// Bumped by every secret rotation; a token carries the generation it was issued under
    /// and stops working when the client's moves on.
    #[serde(default)]
    pub generation: u64,
    /// When the client was revoked; a revoked client gets no tokens and its tokens fail.
    #[serde(default)]
    pub revoked_at: Option<DateTime<Utc>>,
}

/// An issued bearer token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccessToken {
    /// A hash of the token (never the token itself).
    pub token_hash: String,
    /// The client it was issued to.
    pub client_id: String,
    /// When it stops working.
    pub expires_at: DateTime<Utc>,
    /// The client's [`ApiClient::generation`] when the token was issued.
    #[serde(default)]
    pub client_generation: u64,
}

/// API clients and their tokens.
#[async_trait]
pub trait ClientStore: Send + Sync {
    /// Creates or replaces a client.
    async fn put_client(&self, client: ApiClient) -> StoreResult<()>;
    /// The client with this id.
    async fn get_client(&self, client_id: &str) -> StoreResult<Option<ApiClient>>;
    /// Every client, oldest first (ties by id).
    async fn list_clients(&self) -> StoreResult<Vec<ApiClient>>;
    /// Stores an issued token; it expires from the store at `expires_at` (by the backend's
    /// wall clock, at the earliest: expiry as callers see it is decided by `now` in
    /// [`ClientStore::get_token`]).
    async fn put_token(&self, token: AccessToken) -> StoreResult<()>;
    /// The token with this hash, if stored and not expired at `now` (`now < expires_at`).
    async fn get_token(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<AccessToken>>;
}

/// A linked vendor account with its (already encrypted or opaque) credentials.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountRecord {
    /// The account.
    pub account: AccountRef,
    /// Incremented by every successful put; the first put yields 1. Credential refreshes
    /// compare-and-set on it so two instances never both spend a single-use refresh token.
    pub version: u64,
    /// When the vendor rejected the credentials for good (revoked, password changed): the
    /// account is no longer polled and the user's `linkedVendors` entry shows
    /// `isValid: false` until the user links the vendor again. `None` while valid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invalid_since: Option<DateTime<Utc>>,
}

/// Linked vendor accounts.
#[async_trait]
pub trait AccountStore: Send + Sync {
    /// Stores an account if the stored version equals `expected_version` (0 = new); returns
    /// the new version or `StoreError::Conflict`. New credentials are valid: a put clears
    /// [`AccountRecord::invalid_since`].
    async fn put_account(&self, account: AccountRef, expected_version: u64) -> StoreResult<u64>;
    /// Marks an account's credentials invalid since `at` and bumps its version, so that a
    /// credential refresh racing with it loses its compare-and-set. Returns true when this
    /// call marked it; false when it was already invalid or does not exist (so exactly one
    /// caller reports the invalidation).
    async fn invalidate_account(&self, account_id: &str, at: DateTime<Utc>) -> StoreResult<bool>;
    /// The account with this id.
    async fn get_account(&self, account_id: &str) -> StoreResult<Option<AccountRecord>>;
    /// All accounts of a user, in account id order.
    async fn accounts_of_user(&self, user_id: &str) -> StoreResult<Vec<AccountRecord>>;
    /// Removes an account and its credentials. Returns whether it existed.
    async fn delete_account(&self, account_id: &str) -> StoreResult<bool>;
}

/// A user of the API, owned by one API client.
///
/// User ids are chosen by the client (any stable string) and are unique across the
/// deployment: the first client to create an id owns it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserRecord {
    /// The user id.
    pub id: String,
    /// The API client that owns the user.
    pub client_id: String,
    /// When the user was created; list order is newest first by this.
    pub created_at: DateTime<Utc>,
}

/// Users and which API client owns them.
#[async_trait]
pub trait UserStore: Send + Sync {
    /// Creates the user unless its id is taken, atomically, and returns the record in force:
    /// the given one when created, the stored one (possibly another client's) when not.
    async fn put_user(&self, user: UserRecord) -> StoreResult<UserRecord>;
    /// The user with this id.
    async fn get_user(&self, user_id: &str) -> StoreResult<Option<UserRecord>>;
    /// Removes the user record (not its devices or accounts). Returns whether it existed.
    async fn delete_user(&self, user_id: &str) -> StoreResult<bool>;
    /// A client's users, newest `created_at` first.
    async fn list_users(
        &self,
        client_id: &str,
        page: &PageRequest,
    ) -> StoreResult<Page<UserRecord>>;
}

/// A JSON resource owned by a user of an API client: locations, schedules, tariffs,
/// smart-charging policies ... one generic record so every such resource gets the same
/// storage, ownership, versioning and paging.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceRecord {
    /// What it is ("location"); lowercase letters, digits and '-' only (it is part of keys).
    pub kind: String,
    /// Its id, unique within the kind.
    pub id: String,
    /// The owning user.
    pub user_id: String,
    /// The API client owning that user.
    pub client_id: String,
    /// When it was created; kept from the first put. List order is newest first by this.
    pub created_at: DateTime<Utc>,
    /// Incremented by every successful put; the first put yields 1.
    pub version: u64,
    /// The resource as the API serves it (or whatever the kind needs). Its `secrets` member,
    /// if any, is sealed at rest by a backend with an encryption key (see
    /// [`crate::sealing::SECRETS_FIELD`]).
    pub body: serde_json::Value,
}

/// Whose resources a list covers.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ResourceOwner {
    /// Every resource of the kind owned by this API client's users.
    Client(String),
    /// Every resource of the kind owned by this user.
    User(String),
}

/// Generic user-owned JSON resources.
#[async_trait]
pub trait ResourceStore: Send + Sync {
    /// Stores a resource if the stored version equals `expected_version` (0 = new); returns
    /// the new version or `StoreError::Conflict`. A replacement keeps the first `created_at`
    /// and may move the resource to another user.
    async fn put_resource(
        &self,
        resource: ResourceRecord,
        expected_version: u64,
    ) -> StoreResult<u64>;
    /// The resource of this kind and id.
    async fn get_resource(&self, kind: &str, id: &str) -> StoreResult<Option<ResourceRecord>>;
    /// The resources of this kind with these ids, in the order asked (`None` where absent),
    /// in one round trip: for laying per-item resources over a page of something else.
    async fn get_resources(
        &self,
        kind: &str,
        ids: &[&str],
    ) -> StoreResult<Vec<Option<ResourceRecord>>>;
    /// Removes a resource. Returns whether it existed.
    async fn delete_resource(&self, kind: &str, id: &str) -> StoreResult<bool>;
    /// Resources of one kind and owner, newest `created_at` first.
    async fn list_resources(
        &self,
        kind: &str,
        owner: &ResourceOwner,
        page: &PageRequest,
    ) -> StoreResult<Page<ResourceRecord>>;
}

/// One entry of the event log.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    /// Assigned by the log on append: strictly increasing, opaque, comparable as a string
    /// only through the log itself.
    pub id: String,
    /// The event name ("user:vehicle:updated").
    pub event: String,
    /// The owning user.
    pub user_id: String,
    /// When it happened.
    pub created_at: DateTime<Utc>,
    /// The event payload.
    pub payload: serde_json::Value,
}

/// How many events a backend keeps by default; it then drops the oldest.
pub const DEFAULT_EVENT_LOG_CAP: usize = 1_000_000;

/// The append-only event log.
#[async_trait]
pub trait EventLog: Send + Sync {
    /// Appends an event (its `id` is ignored and assigned) and returns the assigned id.
    async fn append_event(&self, event: Event) -> StoreResult<String>;
    /// Events after `after` (None = from the start), oldest first, at most `limit`. An id
    /// this log did not hand out is `StoreError::InvalidCursor`. Backends may trim the oldest
    /// events beyond a configured cap.
    async fn read_events(&self, after: Option<&str>, limit: usize) -> StoreResult<Vec<Event>>;
    /// The id of the newest event (None while the log is empty): reading after it yields
    /// only events appended later.
    async fn latest_event_id(&self) -> StoreResult<Option<String>>;
}

/// Everything a backend provides.
#[async_trait]
pub trait Store:
    DeviceStore
    + ActionStore
    + ScheduleStore
    + ClientStore
    + AccountStore
    + UserStore
    + ResourceStore
    + EventLog
    + crate::link_sessions::LinkSessionStore
    + crate::history::HistoryStore
    + crate::webhooks::WebhookStore
{
    /// The backend's name ("memory", "redis") for logs and health.
    fn backend(&self) -> &'static str;
    /// Checks the backend is reachable (a PING for Redis).
    async fn ping(&self) -> StoreResult<()>;
}
