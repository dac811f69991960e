//! Link sessions: what `POST /users/{userId}/link` hands out and the link page spends.
//!
//! A session is created once, read any number of times while the user walks through the
//! vendor's auth flow, and taken exactly once when the flow ends (success, cancel or vendor
//! error). Taking is atomic in every backend, so two browser tabs racing to finish the same
//! session cannot both link an account. Sessions are keyed by a hash of the token, never the
//! token itself, like access tokens.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use oemgate_core::VendorType;
use serde::{Deserialize, Serialize};

use crate::error::StoreResult;

/// How long a backend keeps a session after it expired, so that opening an expired link
/// still says "expired" rather than "unknown" for a while.
pub const LINK_SESSION_GRACE: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// [`LINK_SESSION_GRACE`] as a chrono duration.
pub(crate) fn grace() -> chrono::TimeDelta {
    chrono::TimeDelta::seconds(LINK_SESSION_GRACE.as_secs() as i64)
}

/// A linking session created through the API.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LinkSession {
    /// A hash of the link token (the key).
    pub token_hash: String,
    /// The API client that created it.
    pub client_id: String,
    /// The user the linked account will belong to.
    pub user_id: String,
    /// The vendor, when the client chose one (skips brand selection).
    pub vendor: Option<String>,
    /// The asset type, when the client chose one.
    pub vendor_type: Option<VendorType>,
    /// The scopes the user is asked to grant.
    pub scopes: Vec<String>,
    /// The language of the link page.
    pub language: String,
    /// Where the user goes when the flow ends.
    pub redirect_uri: String,
    /// `system`, `light` or `dark`.
    pub color_scheme: String,
    /// For a relink: the account whose credentials the flow replaces.
    pub relink_account_id: Option<String>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it stops working (`now >= expires_at` is expired).
    pub expires_at: DateTime<Utc>,
}

/// What a lookup or a take found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LinkSessionLookup {
    /// The session is usable (for a take: it is now spent, and this caller owns it).
    Open(Box<LinkSession>),
    /// It was already taken.
    Used,
    /// It expired before being taken.
    Expired,
    /// No such session (never created, or expired long ago).
    NotFound,
}

/// Link sessions.
#[async_trait]
pub trait LinkSessionStore: Send + Sync {
    /// Stores a new session. Backends keep it until [`LINK_SESSION_GRACE`] after it expires
    /// (measured as a duration from `created_at`, so no wall clock is involved).
    async fn put_link_session(&self, session: LinkSession) -> StoreResult<()>;
    /// Looks a session up at `now` without spending it.
    async fn get_link_session(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<LinkSessionLookup>;
    /// Atomically spends a session at `now`: exactly one caller ever gets
    /// [`LinkSessionLookup::Open`]; later calls get `Used`. An expired session is not spent.
    async fn take_link_session(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<LinkSessionLookup>;
}
