//! Small conversions both backends share: times as epoch milliseconds and JSON records.
//!
//! Schedule times and list order are kept in whole milliseconds in both backends (Redis scores
//! are doubles, exact for millisecond epochs), so a due time read back may have lost its
//! sub-millisecond part, the same in memory as in Redis.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{StoreError, StoreResult};

/// A time as epoch milliseconds.
pub(crate) fn to_millis(time: DateTime<Utc>) -> i64 {
    time.timestamp_millis()
}

/// Epoch milliseconds as a time; `None` when out of chrono's range.
pub(crate) fn from_millis(millis: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_millis(millis)
}

/// Encodes a record for storage. Our own types always serialize, so a failure is a bug in a
/// caller-supplied `serde_json::Value` (which cannot fail) or a type; it is reported, not
/// panicked on.
pub(crate) fn encode<T: Serialize>(key: &str, value: &T) -> StoreResult<String> {
    serde_json::to_string(value).map_err(|err| StoreError::corrupt(key, err))
}

/// Decodes a stored record; anything that does not decode is `Corrupt`.
pub(crate) fn decode<T: DeserializeOwned>(key: &str, raw: &[u8]) -> StoreResult<T> {
    serde_json::from_slice(raw).map_err(|err| StoreError::corrupt(key, err))
}
