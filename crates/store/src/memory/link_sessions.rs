//! [`LinkSessionStore`] in memory: one map behind the store's own mutex discipline.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::MemoryStore;
use crate::error::StoreResult;
use crate::link_sessions::{LinkSession, LinkSessionLookup, LinkSessionStore};

/// A stored session and when it was taken.
#[derive(Debug)]
pub(super) struct Stored {
    session: LinkSession,
    used_at: Option<DateTime<Utc>>,
}

fn lookup(stored: Option<&Stored>, now: DateTime<Utc>) -> LinkSessionLookup {
    match stored {
        None => LinkSessionLookup::NotFound,
        Some(s) if s.used_at.is_some() => LinkSessionLookup::Used,
        Some(s) if now >= s.session.expires_at => LinkSessionLookup::Expired,
        Some(s) => LinkSessionLookup::Open(Box::new(s.session.clone())),
    }
}

#[async_trait]
impl LinkSessionStore for MemoryStore {
    async fn put_link_session(&self, session: LinkSession) -> StoreResult<()> {
        let mut inner = self.lock();
        // Drop sessions past their grace so the map does not grow forever; "now" is taken
        // from the new session, which is as good as any caller's clock here.
        let cutoff = session.created_at;
        inner
            .link_sessions
            .retain(|_, s| s.session.expires_at + crate::link_sessions::grace() > cutoff);
        inner.link_sessions.insert(session.token_hash.clone(), Stored { session, used_at: None });
        Ok(())
    }

    async fn get_link_session(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<LinkSessionLookup> {
        Ok(lookup(self.lock().link_sessions.get(token_hash), now))
    }

    async fn take_link_session(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<LinkSessionLookup> {
        let mut inner = self.lock();
        let stored = inner.link_sessions.get_mut(token_hash);
        let found = lookup(stored.as_deref(), now);
        if let (LinkSessionLookup::Open(_), Some(stored)) = (&found, stored) {
            stored.used_at = Some(now);
        }
        Ok(found)
    }
}
