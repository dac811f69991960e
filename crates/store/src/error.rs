//! Store errors: what callers act on, with the backend's error as source.

use thiserror::Error;

/// Result alias for store calls.
pub type StoreResult<T> = Result<T, StoreError>;

/// Why a store call failed.
#[derive(Debug, Error)]
pub enum StoreError {
    /// A compare-and-set saw another version than expected.
    #[error("version conflict on {key}: expected {expected}, found {actual}")]
    Conflict {
        /// What was being written.
        key: String,
        /// The version the caller expected.
        expected: u64,
        /// The version stored.
        actual: u64,
    },
    /// The thing the write refers to does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// A cursor that this store did not hand out.
    #[error("invalid cursor {0:?}")]
    InvalidCursor(String),
    /// The backend cannot be reached or failed (Redis down, connection reset).
    #[error("store unavailable ({backend}): {message}")]
    Unavailable {
        /// "redis" or "memory".
        backend: &'static str,
        /// What failed.
        message: String,
        /// The backend's own error.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// Stored data that does not decode.
    #[error("corrupt record {key}: {message}")]
    Corrupt {
        /// The record's key.
        key: String,
        /// What was wrong.
        message: String,
    },
}

impl StoreError {
    /// A backend failure, with the backend's error kept as the source.
    pub fn unavailable(
        backend: &'static str,
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self::Unavailable { backend, message: message.into(), source: Some(Box::new(source)) }
    }

    /// A stored record that does not decode.
    pub fn corrupt(key: impl Into<String>, message: impl std::fmt::Display) -> Self {
        Self::Corrupt { key: key.into(), message: message.to_string() }
    }
}
