//! The one error type that crosses the adapter boundary.
//!
//! Like sqlx's `Error`, it pairs a portable [`ErrorKind`] (what the scheduler and executor act
//! on) with the vendor's own error as `source` (what an operator reads). Adapters classify;
//! they never retry. The scheduler and the executor own every retry decision.

use std::error::Error as StdError;
use std::fmt;
use std::time::Duration;

/// What went wrong, in terms every caller can act on without knowing the vendor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// Network failure, timeout, 5xx: try again later.
    Transient,
    /// The vendor says slow down; `retry_after` says for how long when it told us.
    RateLimited,
    /// The access token expired: refresh the credentials, then try again.
    AuthExpired,
    /// The credentials are no longer valid (revoked, refresh token used up): the user must relink.
    Unauthorized,
    /// The device sleeps and this call would need it awake.
    DeviceAsleep,
    /// The device is offline or unreachable from the vendor's cloud.
    DeviceOffline,
    /// The vendor does not know this device or account.
    NotFound,
    /// The vendor refused the command as such (invalid value, not allowed).
    Rejected,
    /// The command cannot take effect in the device's current state (unplugged, full, ...).
    PreconditionFailed,
    /// The vendor or device cannot do this at all.
    Unsupported,
    /// The vendor answered something we could not understand (malformed or unexpected body).
    Protocol,
}

impl ErrorKind {
    /// A stable snake_case name for logs and metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Transient => "transient",
            ErrorKind::RateLimited => "rate_limited",
            ErrorKind::AuthExpired => "auth_expired",
            ErrorKind::Unauthorized => "unauthorized",
            ErrorKind::DeviceAsleep => "device_asleep",
            ErrorKind::DeviceOffline => "device_offline",
            ErrorKind::NotFound => "not_found",
            ErrorKind::Rejected => "rejected",
            ErrorKind::PreconditionFailed => "precondition_failed",
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::Protocol => "protocol",
        }
    }

    /// Whether the same call may succeed later without anyone changing anything.
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            ErrorKind::Transient
                | ErrorKind::RateLimited
                | ErrorKind::AuthExpired
                | ErrorKind::DeviceOffline
        )
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error from a vendor adapter.
#[derive(Debug)]
pub struct AdapterError {
    kind: ErrorKind,
    vendor: &'static str,
    message: String,
    retry_after: Option<Duration>,
    source: Option<Box<dyn StdError + Send + Sync + 'static>>,
}

impl AdapterError {
    /// A new error of `kind` from `vendor` ("TESLA", "ENPHASE", ...) with a human message.
    pub fn new(kind: ErrorKind, vendor: &'static str, message: impl Into<String>) -> Self {
        Self { kind, vendor, message: message.into(), retry_after: None, source: None }
    }

    /// Attaches how long the vendor asked us to wait.
    pub fn with_retry_after(mut self, retry_after: Duration) -> Self {
        self.retry_after = Some(retry_after);
        self
    }

    /// Attaches the vendor's own error (HTTP error, JSON error, vendor error body).
    pub fn with_source(mut self, source: impl StdError + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    /// The portable kind.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The vendor that produced the error.
    pub fn vendor(&self) -> &'static str {
        self.vendor
    }

    /// The human message (never contains credentials).
    pub fn message(&self) -> &str {
        &self.message
    }

    /// How long the vendor asked us to wait before the next request, if it said.
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }
}

impl fmt::Display for AdapterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.vendor, self.kind, self.message)?;
        if let Some(after) = self.retry_after {
            write!(f, " (retry after {}s)", after.as_secs())?;
        }
        Ok(())
    }
}

impl StdError for AdapterError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source.as_deref().map(|e| e as &(dyn StdError + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_and_source() {
        let io = std::io::Error::other("connection reset");
        let err = AdapterError::new(ErrorKind::RateLimited, "TESLA", "429 from vehicle_data")
            .with_retry_after(Duration::from_secs(30))
            .with_source(io);
        assert_eq!(err.kind(), ErrorKind::RateLimited);
        assert_eq!(err.retry_after(), Some(Duration::from_secs(30)));
        assert_eq!(err.to_string(), "TESLA rate_limited: 429 from vehicle_data (retry after 30s)");
        assert_eq!(
            StdError::source(&err).map(|s| s.to_string()).as_deref(),
            Some("connection reset")
        );
        assert!(ErrorKind::Transient.is_retryable());
        assert!(!ErrorKind::Unauthorized.is_retryable());
    }
}
