//! List order, opaque cursors and the page algorithm, shared by both backends.
//!
//! Every listed record has a [`SortKey`]: its `created_at` in epoch milliseconds, made
//! order-preserving as 20 zero-padded digits, then `:` and its id. Byte order of the key is list
//! order (ascending = oldest first), so the memory backend keeps keys in a `BTreeSet` and the
//! Redis backend keeps them as members of a score-0 sorted set read with `ZRANGEBYLEX`, and
//! both page identically, ties on the same millisecond included (broken by id).
//!
//! A cursor is the sort key of the item a page ended (or started) at, base64url-encoded so
//! callers treat it as opaque. [`page_keys`] turns a [`PageRequest`] into the keys of one page
//! and its cursors, reading the backend through the small [`KeyRange`] trait.

use std::future::Future;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};

use crate::codec::to_millis;
use crate::error::{StoreError, StoreResult};
use crate::traits::PageRequest;

/// The largest page a store hands out; larger requests are clamped to it.
pub const MAX_PAGE_SIZE: usize = 1000;

/// Width of the time part of a sort key (`u64::MAX` has 20 digits).
const TIME_DIGITS: usize = 20;

/// A record's position in list order; see the module doc for the format.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct SortKey(String);

impl SortKey {
    /// The key of a record created at `created_at` with this id.
    pub(crate) fn new(created_at: DateTime<Utc>, id: &str) -> Self {
        // Flipping the sign bit maps i64 onto u64 preserving order, so times before 1970 still
        // sort correctly as fixed-width digits.
        let time = (to_millis(created_at) as u64) ^ (1 << 63);
        Self(format!("{time:0width$}:{id}", width = TIME_DIGITS))
    }

    /// Checks a string read back from a backend or a cursor.
    pub(crate) fn parse(raw: &str) -> Option<Self> {
        let (time, id) = raw.split_at_checked(TIME_DIGITS)?;
        let id = id.strip_prefix(':')?;
        let well_formed = time.bytes().all(|b| b.is_ascii_digit())
            && time.parse::<u64>().is_ok()
            && !id.is_empty();
        well_formed.then(|| Self(raw.to_owned()))
    }

    /// The record id.
    pub(crate) fn id(&self) -> &str {
        // `new` and `parse` guarantee the layout.
        &self.0[TIME_DIGITS + 1..]
    }

    /// The key as stored.
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }

    fn to_cursor(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0.as_bytes())
    }

    fn from_cursor(cursor: &str) -> StoreResult<Self> {
        URL_SAFE_NO_PAD
            .decode(cursor)
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .and_then(|raw| Self::parse(&raw))
            .ok_or_else(|| StoreError::InvalidCursor(cursor.to_owned()))
    }
}

/// Which way to read from a position.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Direction {
    /// Towards older records (descending keys).
    Older,
    /// Towards newer records (ascending keys).
    Newer,
}

/// An ordered set of sort keys a backend can read in either direction.
pub(crate) trait KeyRange: Sync {
    /// Up to `limit` keys strictly beyond `from` (from the newest or oldest end when `None`),
    /// nearest first.
    fn range(
        &self,
        from: Option<&SortKey>,
        direction: Direction,
        limit: usize,
    ) -> impl Future<Output = StoreResult<Vec<SortKey>>> + Send;
}

/// The keys of one page, newest first, with the cursors of its neighbours.
#[derive(Debug)]
pub(crate) struct PageKeys {
    pub(crate) keys: Vec<SortKey>,
    pub(crate) after: Option<String>,
    pub(crate) before: Option<String>,
}

/// Resolves a page request against an index.
///
/// `after` reads the `page_size` items just older than the cursor, `before` the `page_size`
/// items just newer (still returned newest first); giving both is an `InvalidCursor`. The
/// page's `after` cursor is set when older items exist, its `before` cursor when newer ones do.
/// An empty page past either end hands the request's cursor back the other way, so a client
/// that overshot can still turn around.
pub(crate) async fn page_keys(
    index: &impl KeyRange,
    request: &PageRequest,
) -> StoreResult<PageKeys> {
    let after = request.after.as_deref().map(SortKey::from_cursor).transpose()?;
    let before = request.before.as_deref().map(SortKey::from_cursor).transpose()?;
    let size = request.page_size.clamp(1, MAX_PAGE_SIZE);

    // Read one extra item in the direction of travel to learn whether another page follows.
    let (from, toward) = match (after, before) {
        (Some(_), Some(_)) => {
            return Err(StoreError::InvalidCursor(
                "after and before cannot be combined".to_owned(),
            ));
        }
        (None, Some(before)) => (Some(before), Direction::Newer),
        (after, None) => (after, Direction::Older),
    };
    let mut keys = index.range(from.as_ref(), toward, size + 1).await?;
    let more_ahead = keys.len() > size;
    keys.truncate(size);
    if toward == Direction::Newer {
        keys.reverse();
    }

    // Behind us there is something only if we started from a cursor; check it still is.
    let back = match toward {
        Direction::Older => Direction::Newer,
        Direction::Newer => Direction::Older,
    };
    let behind_anchor = match toward {
        Direction::Older => keys.first(),
        Direction::Newer => keys.last(),
    }
    .or(from.as_ref());
    let more_behind = match (&from, behind_anchor) {
        (Some(_), Some(anchor)) => !index.range(Some(anchor), back, 1).await?.is_empty(),
        _ => false,
    };

    let ahead_cursor = if more_ahead {
        match toward {
            Direction::Older => keys.last(),
            Direction::Newer => keys.first(),
        }
        .map(SortKey::to_cursor)
    } else {
        None
    };
    let behind_cursor = if more_behind { behind_anchor.map(SortKey::to_cursor) } else { None };
    let (after, before) = match toward {
        Direction::Older => (ahead_cursor, behind_cursor),
        Direction::Newer => (behind_cursor, ahead_cursor),
    };
    Ok(PageKeys { keys, after, before })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sort_keys_order_by_time_then_id() {
        let t = |ms| DateTime::from_timestamp_millis(ms).unwrap();
        let mut keys = [
            SortKey::new(t(2_000), "a"),
            SortKey::new(t(-5), "z"),
            SortKey::new(t(1_000), "b"),
            SortKey::new(t(1_000), "a"),
        ];
        keys.sort();
        let ids: Vec<_> = keys.iter().map(SortKey::id).collect();
        assert_eq!(ids, ["z", "a", "b", "a"]);
        assert_eq!(keys[1].as_str().len(), TIME_DIGITS + 2);
    }

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let key = SortKey::new(Utc::now(), "dev:1");
        assert_eq!(SortKey::from_cursor(&key.to_cursor()).unwrap(), key);
        for bad in ["", "not base64!", "Zm9v", &URL_SAFE_NO_PAD.encode("00000000000000000001:")] {
            assert!(
                matches!(SortKey::from_cursor(bad), Err(StoreError::InvalidCursor(_))),
                "{bad}"
            );
        }
    }
}
