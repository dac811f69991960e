//! oemgate-store: where oemgate keeps its state.
//!
//! The rest of oemgate holds an `Arc<dyn Store>` and never knows which backend it talks to.
//! Two backends implement the contract:
//!
//! - [`MemoryStore`]: in process, the embedded default for a single instance and for tests.
//! - [`RedisStore`]: Redis, for several gateway instances sharing devices, the poll schedule,
//!   actions, tokens and the event log. Its key layout is documented in [`redis_store`].
//!
//! Layout:
//!
//! - `traits`: the storage traits ([`DeviceStore`], [`ActionStore`], [`ScheduleStore`],
//!   [`ClientStore`], [`AccountStore`], [`EventLog`], gathered in [`Store`]) and their records.
//! - [`history`]: [`HistoryStore`], compact per-device observation samples for statistics.
//! - `link_sessions`: [`LinkSessionStore`], the single-use sessions of the link page.
//! - [`webhooks`]: [`WebhookStore`], each webhook's cursor into the event log, its failure
//!   bookkeeping and its delivery lease.
//! - `error`: [`StoreError`], what callers act on (conflict, not found, unavailable ...).
//! - `shard`: which schedule shard a device lives in ([`shard_of`]).
//! - [`memory`], [`redis_store`]: the backends.
//! - [`conformance`]: the behaviour both backends must show, as a reusable test kit.
//! - `paging` and `codec` (private): the list order, cursors and encodings both backends
//!   share, so they page and round-trip identically.
//!
//! - [`sealing`]: account credentials encrypted at rest under a [`CredentialKey`].
//!
//! [`connect`] picks the backend from configuration.

mod codec;
pub mod conformance;
mod error;
pub mod history;
mod link_sessions;
pub mod memory;
mod paging;
pub mod redis_store;
pub mod sealing;
mod shard;
mod traits;
pub mod webhooks;

use std::sync::Arc;

pub use error::*;
pub use history::{HistoryStore, Sample};
pub use link_sessions::*;
pub use memory::MemoryStore;
pub use paging::MAX_PAGE_SIZE;
pub use redis_store::{RedisConfig, RedisStore};
pub use sealing::CredentialKey;
pub use shard::{SCHEDULE_SHARDS, all_shards, shard_of, stable_hash};
pub use traits::*;
pub use webhooks::{WebhookState, WebhookStore};

/// Opens the configured store: in memory when `url` is `None`, else Redis at `url` with keys
/// under `prefix` (see [`RedisConfig`] for the defaults of everything else).
pub async fn connect(url: Option<&str>, prefix: &str) -> StoreResult<Arc<dyn Store>> {
    match url {
        None => Ok(Arc::new(MemoryStore::new())),
        Some(url) => Ok(Arc::new(RedisStore::connect(RedisConfig::new(url, prefix)).await?)),
    }
}
