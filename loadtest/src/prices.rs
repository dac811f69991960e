//! The per-request price table (`prices.toml`; `--prices FILE` replaces it).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The default table, with its assumptions as comments.
pub const DEFAULT_PRICES: &str = include_str!("../prices.toml");

/// USD per request, per vendor (API spelling) and endpoint class.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Prices(pub BTreeMap<String, BTreeMap<String, f64>>);

impl Prices {
    /// Parses a table.
    pub fn parse(text: &str) -> Result<Self, toml::de::Error> {
        toml::from_str(text)
    }

    /// The built-in table.
    pub fn builtin() -> Self {
        // The built-in table is checked by a test; an unparsable one is an empty table.
        Self::parse(DEFAULT_PRICES).unwrap_or_default()
    }

    /// The price of one request of `class` to `vendor` (0 when not listed).
    pub fn price(&self, vendor: &str, class: &str) -> f64 {
        self.0.get(vendor).and_then(|c| c.get(class)).copied().unwrap_or(0.0)
    }

    /// Whether `vendor` bills per request.
    pub fn bills(&self, vendor: &str) -> bool {
        self.0.get(vendor).is_some_and(|c| c.values().any(|p| *p > 0.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_table_prices_tesla_only() {
        let p = Prices::parse(DEFAULT_PRICES).unwrap();
        assert_eq!(p.price("TESLA", "read"), 0.002);
        assert_eq!(p.price("TESLA", "wake"), 0.02);
        assert_eq!(p.price("ENPHASE", "read"), 0.0);
        assert!(p.bills("TESLA"));
        assert!(!p.bills("ENPHASE"));
    }
}
