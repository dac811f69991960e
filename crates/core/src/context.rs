//! Poll contexts and the freshness bound each one promises.
//!
//! The Enode-style contract: a real-world change shows up within 7 minutes by default, 2
//! minutes while charging or under a smart-charge plan, 20 minutes while a vehicle sleeps.
//! A pending action asks for much faster confirmation polls.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Why a device is being polled at the rate it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PollContext {
    /// Nothing special going on.
    Default,
    /// The device is charging (vehicle or charger) or a battery is moving energy.
    Charging,
    /// A smart-charge plan is active for the device.
    SmartChargePlan,
    /// The vehicle sleeps; only non-waking reads are allowed.
    Sleeping,
    /// An action is waiting for the device to confirm it.
    ActionPending,
}

impl PollContext {
    /// Every context, in priority order (most urgent first).
    pub const ALL: [PollContext; 5] = [
        PollContext::ActionPending,
        PollContext::Charging,
        PollContext::SmartChargePlan,
        PollContext::Default,
        PollContext::Sleeping,
    ];

    /// The snake_case name used in config keys, metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            PollContext::Default => "default",
            PollContext::Charging => "charging",
            PollContext::SmartChargePlan => "smart_charge_plan",
            PollContext::Sleeping => "sleeping",
            PollContext::ActionPending => "action_pending",
        }
    }
}

/// The freshness bound per context: the longest a change may go unobserved.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContextDelays {
    /// Bound in the default context (7 min).
    #[serde(with = "humanize")]
    pub default: Duration,
    /// Bound while charging (2 min).
    #[serde(with = "humanize")]
    pub charging: Duration,
    /// Bound under a smart-charge plan (2 min).
    #[serde(with = "humanize")]
    pub smart_charge_plan: Duration,
    /// Bound while a vehicle sleeps (20 min).
    #[serde(with = "humanize")]
    pub sleeping: Duration,
    /// Poll interval while an action waits for confirmation (10 s).
    #[serde(with = "humanize")]
    pub action_pending: Duration,
}

impl Default for ContextDelays {
    fn default() -> Self {
        Self {
            default: Duration::from_secs(7 * 60),
            charging: Duration::from_secs(2 * 60),
            smart_charge_plan: Duration::from_secs(2 * 60),
            sleeping: Duration::from_secs(20 * 60),
            action_pending: Duration::from_secs(10),
        }
    }
}

impl ContextDelays {
    /// The bound for `context`.
    pub fn for_context(&self, context: PollContext) -> Duration {
        match context {
            PollContext::Default => self.default,
            PollContext::Charging => self.charging,
            PollContext::SmartChargePlan => self.smart_charge_plan,
            PollContext::Sleeping => self.sleeping,
            PollContext::ActionPending => self.action_pending,
        }
    }
}

/// Durations as human strings ("7m", "90s", "1h 30m") in config and JSON.
pub mod humanize {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    /// Serializes `d` as whole seconds with an `s` suffix, or minutes when exact.
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_duration(*d))
    }

    /// Parses "500ms", "90s", "7m", "2h", "1d" or combinations like "1m30s".
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        parse_duration(&text).map_err(serde::de::Error::custom)
    }

    /// Formats a duration the way [`parse_duration`] reads it.
    pub fn format_duration(d: Duration) -> String {
        let ms = d.as_millis();
        if !ms.is_multiple_of(1000) {
            format!("{ms}ms")
        } else if d.as_secs().is_multiple_of(3600) && d.as_secs() > 0 {
            format!("{}h", d.as_secs() / 3600)
        } else if d.as_secs().is_multiple_of(60) && d.as_secs() > 0 {
            format!("{}m", d.as_secs() / 60)
        } else {
            format!("{}s", d.as_secs())
        }
    }

    /// Parses a duration such as "7m", "1m30s", "250ms" or "2h". Whitespace between parts
    /// is allowed; a bare number or an unknown unit is an error.
    pub fn parse_duration(text: &str) -> Result<Duration, String> {
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err(format!("invalid duration {text:?}: empty"));
        }
        let mut total = Duration::ZERO;
        let mut rest = trimmed;
        while !rest.is_empty() {
            rest = rest.trim_start();
            let digits = rest.chars().take_while(|c| c.is_ascii_digit()).count();
            if digits == 0 {
                return Err(format!("invalid duration {text:?}: expected a number at {rest:?}"));
            }
            let value: u64 = rest[..digits]
                .parse()
                .map_err(|_| format!("invalid duration {text:?}: number too large"))?;
            rest = rest[digits..].trim_start();
            let unit_len = rest.chars().take_while(|c| c.is_ascii_alphabetic()).count();
            let unit = &rest[..unit_len];
            rest = &rest[unit_len..];
            let part = match unit {
                "ms" => Duration::from_millis(value),
                "s" => Duration::from_secs(value),
                "m" => Duration::from_secs(value.saturating_mul(60)),
                "h" => Duration::from_secs(value.saturating_mul(3600)),
                "d" => Duration::from_secs(value.saturating_mul(86_400)),
                "" => {
                    return Err(format!(
                        "invalid duration {text:?}: missing unit (use ms, s, m, h or d)"
                    ));
                }
                other => {
                    return Err(format!(
                        "invalid duration {text:?}: unknown unit {other:?} (use ms, s, m, h or d)"
                    ));
                }
            };
            total = total.saturating_add(part);
        }
        Ok(total)
    }
}

#[cfg(test)]
mod tests {
    use super::humanize::{format_duration, parse_duration};
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn defaults_match_the_enode_contract() {
        let d = ContextDelays::default();
        assert_eq!(d.for_context(PollContext::Default), Duration::from_secs(420));
        assert_eq!(d.for_context(PollContext::Charging), Duration::from_secs(120));
        assert_eq!(d.for_context(PollContext::SmartChargePlan), Duration::from_secs(120));
        assert_eq!(d.for_context(PollContext::Sleeping), Duration::from_secs(1200));
        assert_eq!(d.for_context(PollContext::ActionPending), Duration::from_secs(10));
    }

    #[test]
    fn parses_and_rejects_durations() {
        assert_eq!(parse_duration("7m"), Ok(Duration::from_secs(420)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert!(parse_duration("7").unwrap_err().contains("missing unit"));
        assert!(parse_duration("7 minutes").unwrap_err().contains("unknown unit"));
        assert!(parse_duration("").is_err());
        assert!(parse_duration("m").is_err());
    }

    proptest! {
        #[test]
        fn format_then_parse_is_identity(ms in 0u64..10_000_000_000) {
            let d = Duration::from_millis(ms);
            prop_assert_eq!(parse_duration(&format_duration(d)), Ok(d));
        }
    }
}
