//! The executor's settings: the defaults, per-vendor overrides and the retry budget.

use std::collections::BTreeMap;
use std::time::Duration;

use oemgate_core::context::humanize;
use serde::{Deserialize, Serialize};

/// How one vendor's actions are driven: the resolved timings (defaults with the vendor's
/// overrides applied).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VendorPolicy {
    /// An action not confirmed this long after its creation ends FAILED (NO_RESPONSE).
    #[serde(with = "humanize")]
    pub timeout: Duration,
    /// A command accepted by the vendor but not confirmed by the device after this long is
    /// sent again.
    #[serde(with = "humanize")]
    pub resend_interval: Duration,
    /// How long a precondition (plugged in, power at the charger, no fault) may stay unmet
    /// before the action ends CANCELLED (FAILED_PRECONDITION).
    #[serde(with = "humanize")]
    pub precondition_grace: Duration,
    /// After a wake-up request, how long to wait for the vehicle to be reachable before
    /// asking again.
    #[serde(with = "humanize")]
    pub wake_timeout: Duration,
}

impl Default for VendorPolicy {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(30 * 60),
            resend_interval: Duration::from_secs(2 * 60),
            precondition_grace: Duration::from_secs(5 * 60),
            wake_timeout: Duration::from_secs(60),
        }
    }
}

/// Overrides of [`VendorPolicy`] for one vendor (`[executor.vendors.<vendor>]`); absent keys
/// keep the defaults.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VendorOverride {
    /// See [`VendorPolicy::timeout`].
    #[serde(default, with = "optional_duration", skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
    /// See [`VendorPolicy::resend_interval`].
    #[serde(default, with = "optional_duration", skip_serializing_if = "Option::is_none")]
    pub resend_interval: Option<Duration>,
    /// See [`VendorPolicy::precondition_grace`].
    #[serde(default, with = "optional_duration", skip_serializing_if = "Option::is_none")]
    pub precondition_grace: Option<Duration>,
    /// See [`VendorPolicy::wake_timeout`].
    #[serde(default, with = "optional_duration", skip_serializing_if = "Option::is_none")]
    pub wake_timeout: Option<Duration>,
}

/// A retry budget in the style of tower's `TpsBudget`: every first attempt of a command
/// deposits, every retry after an error withdraws, and retries are allowed while the
/// withdrawals within `window` stay below `min_retries` plus `ratio` times the deposits
/// within `window`. Kept per vendor, so a vendor that fails for everyone gets a bounded
/// trickle of retries instead of a storm.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryBudgetConfig {
    /// The sliding window deposits and withdrawals are counted over.
    #[serde(with = "humanize")]
    pub window: Duration,
    /// Retries allowed per window even without any first attempts.
    pub min_retries: u32,
    /// Extra retries allowed per first attempt in the window (0.2 = one retry per five
    /// commands).
    pub ratio: f64,
}

impl Default for RetryBudgetConfig {
    fn default() -> Self {
        Self { window: Duration::from_secs(60), min_retries: 10, ratio: 0.2 }
    }
}

/// Everything the executor is told.
#[derive(Clone, Debug, PartialEq)]
pub struct ExecutorConfig {
    /// Clock time between ticks of the background loop.
    pub tick: Duration,
    /// The timings of vendors without overrides.
    pub defaults: VendorPolicy,
    /// Per-vendor overrides, keyed by lower-case vendor name ("tesla").
    pub vendors: BTreeMap<String, VendorOverride>,
    /// How long an instance owns an action it is driving; another instance takes the action
    /// over once this runs out (the owner renews it whenever it acts).
    pub lease: Duration,
    /// First delay after a failed request (Transient, RateLimited, offline); doubles per
    /// consecutive failure. A vendor's `retry_after` wins when longer.
    pub retry_backoff_base: Duration,
    /// Longest delay between failed requests (a `retry_after` may ask for longer).
    pub retry_backoff_max: Duration,
    /// The retry budget per vendor.
    pub retry_budget: RetryBudgetConfig,
    /// Actions driven concurrently per tick.
    pub max_in_flight: usize,
    /// Highest `maxCurrent` accepted, in amperes (lower bound: above 0).
    pub max_current_limit: f64,
    /// After a command or wake-up is accepted, the device's next poll is brought forward to
    /// this long from now (the gateway passes the scheduler's `action_pending` delay).
    pub confirm_poll: Duration,
}

impl Default for ExecutorConfig {
    fn default() -> Self {
        Self {
            tick: Duration::from_secs(1),
            defaults: VendorPolicy::default(),
            vendors: BTreeMap::new(),
            lease: Duration::from_secs(60),
            retry_backoff_base: Duration::from_secs(5),
            retry_backoff_max: Duration::from_secs(120),
            retry_budget: RetryBudgetConfig::default(),
            max_in_flight: 32,
            max_current_limit: 80.0,
            confirm_poll: Duration::from_secs(10),
        }
    }
}

impl ExecutorConfig {
    /// The timings for `vendor` (any case): the defaults with its overrides applied.
    pub fn policy(&self, vendor: &str) -> VendorPolicy {
        let mut policy = self.defaults;
        let found = self
            .vendors
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(vendor))
            .map(|(_, o)| *o);
        if let Some(o) = found {
            policy.timeout = o.timeout.unwrap_or(policy.timeout);
            policy.resend_interval = o.resend_interval.unwrap_or(policy.resend_interval);
            policy.precondition_grace = o.precondition_grace.unwrap_or(policy.precondition_grace);
            policy.wake_timeout = o.wake_timeout.unwrap_or(policy.wake_timeout);
        }
        policy
    }
}

/// Serde for `Option<Duration>` as a human duration string ("2m").
pub mod optional_duration {
    use std::time::Duration;

    use oemgate_core::context::humanize::{format_duration, parse_duration};
    use serde::{Deserialize, Deserializer, Serializer};

    /// Serializes `Some(d)` like [`oemgate_core::context::humanize`], `None` as null.
    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_str(&format_duration(*d)),
            None => s.serialize_none(),
        }
    }

    /// Parses a duration string ("90s", "2m").
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        let text = Option::<String>::deserialize(d)?;
        text.map(|t| parse_duration(&t).map_err(serde::de::Error::custom)).transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_apply_per_vendor_in_any_case() {
        let mut config = ExecutorConfig::default();
        config.vendors.insert(
            "tesla".into(),
            VendorOverride { timeout: Some(Duration::from_secs(600)), ..Default::default() },
        );
        let tesla = config.policy("TESLA");
        assert_eq!(tesla.timeout, Duration::from_secs(600));
        assert_eq!(tesla.resend_interval, Duration::from_secs(120));
        assert_eq!(config.policy("ENPHASE"), VendorPolicy::default());
    }

    #[test]
    fn overrides_parse_and_deny_unknown_keys() {
        let o: VendorOverride = serde_json::from_str(r#"{"resend_interval": "6m"}"#).unwrap();
        assert_eq!(o.resend_interval, Some(Duration::from_secs(360)));
        assert!(serde_json::from_str::<VendorOverride>(r#"{"resend": "6m"}"#).is_err());
        assert!(serde_json::from_str::<VendorOverride>(r#"{"timeout": "6 minutes"}"#).is_err());
    }
}
