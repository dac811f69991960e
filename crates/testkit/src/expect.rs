//! Expectations on a normalized resource: a JSON pointer and the value the world says it has.
//!
//! A target's truth function turns the simulated world's ground truth into a list of
//! [`Expectation`]s; the poll check looks each one up in the polled resource's JSON
//! ([`oemgate_core::DeviceState::to_json`]) and reports every [`Mismatch`] at once.
//!
//! Numbers match within a [`Tolerance`] (absolute, or relative to the expected value,
//! whichever is larger); the presets follow the normalized units (kW, kWh, %, km, °C, A).

use std::fmt;

use serde_json::Value;

/// How far a number may be from the expected value: `|actual - expected| <= max(abs, rel *
/// |expected|)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tolerance {
    /// Absolute tolerance, in the field's unit.
    pub abs: f64,
    /// Relative tolerance (0.01 = 1 %).
    pub rel: f64,
}

impl Tolerance {
    /// No difference allowed.
    pub const EXACT: Tolerance = Tolerance { abs: 0.0, rel: 0.0 };
    /// Power in kW: 50 W.
    pub const KW: Tolerance = Tolerance { abs: 0.05, rel: 0.0 };
    /// Energy in kWh: 50 Wh or 0.1 %, for large lifetime counters.
    pub const KWH: Tolerance = Tolerance { abs: 0.05, rel: 0.001 };
    /// Percentages (battery level, limits): half a point.
    pub const PERCENT: Tolerance = Tolerance { abs: 0.5, rel: 0.0 };
    /// Distances in km: 0.5 km or 0.1 % (mile conversions, odometers).
    pub const KM: Tolerance = Tolerance { abs: 0.5, rel: 0.001 };
    /// Temperatures in °C: a quarter degree (°F conversions).
    pub const CELSIUS: Tolerance = Tolerance { abs: 0.25, rel: 0.0 };
    /// Currents in A: half an ampere.
    pub const AMPS: Tolerance = Tolerance { abs: 0.5, rel: 0.0 };
    /// Minutes (time remaining): one minute.
    pub const MINUTES: Tolerance = Tolerance { abs: 1.0, rel: 0.0 };

    /// An absolute tolerance.
    pub const fn abs(abs: f64) -> Self {
        Tolerance { abs, rel: 0.0 }
    }

    /// Whether `actual` is within this tolerance of `expected`. NaN and infinities never match.
    pub fn accepts(&self, expected: f64, actual: f64) -> bool {
        if !expected.is_finite() || !actual.is_finite() {
            return false;
        }
        // The epsilon absorbs binary rounding (1.05 - 1.0 > 0.05 in f64).
        let allowed = self.abs.max(self.rel * expected.abs()) + 1e-9 * expected.abs().max(1.0);
        (actual - expected).abs() <= allowed
    }
}

/// The value a field must have.
#[derive(Clone, Debug, PartialEq)]
pub enum Expected {
    /// A number within a tolerance.
    Number {
        /// The true value.
        value: f64,
        /// How far the resource may be off.
        tolerance: Tolerance,
    },
    /// Exactly this boolean.
    Bool(bool),
    /// Exactly this string (enum values, ids, timestamps).
    String(String),
    /// `null` (present and null: the normalized resources serialize unknown values as null).
    Null,
    /// Present and not `null`, any value.
    NotNull,
    /// Exactly this JSON value (objects, arrays).
    Json(Value),
}

impl fmt::Display for Expected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expected::Number { value, tolerance } => {
                write!(f, "{value}")?;
                if tolerance.abs > 0.0 {
                    write!(f, " ± {}", tolerance.abs)?;
                }
                if tolerance.rel > 0.0 {
                    write!(f, " (or ± {} %)", tolerance.rel * 100.0)?;
                }
                Ok(())
            }
            Expected::Bool(b) => write!(f, "{b}"),
            Expected::String(s) => write!(f, "{s:?}"),
            Expected::Null => f.write_str("null"),
            Expected::NotNull => f.write_str("any non-null value"),
            Expected::Json(v) => write!(f, "{v}"),
        }
    }
}

/// One field of a normalized resource and the value the world says it has.
#[derive(Clone, Debug, PartialEq)]
pub struct Expectation {
    /// An RFC 6901 JSON pointer into the resource ("/chargeState/batteryLevel").
    pub pointer: String,
    /// The value it must have.
    pub expected: Expected,
}

impl Expectation {
    /// Any expectation.
    pub fn new(pointer: impl Into<String>, expected: Expected) -> Self {
        Self { pointer: pointer.into(), expected }
    }

    /// A number within `tolerance`.
    pub fn number(pointer: impl Into<String>, value: f64, tolerance: Tolerance) -> Self {
        Self::new(pointer, Expected::Number { value, tolerance })
    }

    /// A number within `tolerance`, or `null` when the world has no value.
    pub fn maybe_number(
        pointer: impl Into<String>,
        value: Option<f64>,
        tolerance: Tolerance,
    ) -> Self {
        match value {
            Some(value) => Self::number(pointer, value, tolerance),
            None => Self::null(pointer),
        }
    }

    /// Power in kW ([`Tolerance::KW`]).
    pub fn kw(pointer: impl Into<String>, value: f64) -> Self {
        Self::number(pointer, value, Tolerance::KW)
    }

    /// Energy in kWh ([`Tolerance::KWH`]).
    pub fn kwh(pointer: impl Into<String>, value: f64) -> Self {
        Self::number(pointer, value, Tolerance::KWH)
    }

    /// A percentage ([`Tolerance::PERCENT`]).
    pub fn percent(pointer: impl Into<String>, value: f64) -> Self {
        Self::number(pointer, value, Tolerance::PERCENT)
    }

    /// A distance in km ([`Tolerance::KM`]).
    pub fn km(pointer: impl Into<String>, value: f64) -> Self {
        Self::number(pointer, value, Tolerance::KM)
    }

    /// A temperature in °C ([`Tolerance::CELSIUS`]).
    pub fn celsius(pointer: impl Into<String>, value: f64) -> Self {
        Self::number(pointer, value, Tolerance::CELSIUS)
    }

    /// A current in A ([`Tolerance::AMPS`]).
    pub fn amps(pointer: impl Into<String>, value: f64) -> Self {
        Self::number(pointer, value, Tolerance::AMPS)
    }

    /// Exactly this boolean.
    pub fn bool(pointer: impl Into<String>, value: bool) -> Self {
        Self::new(pointer, Expected::Bool(value))
    }

    /// Exactly this string.
    pub fn string(pointer: impl Into<String>, value: impl Into<String>) -> Self {
        Self::new(pointer, Expected::String(value.into()))
    }

    /// `null`.
    pub fn null(pointer: impl Into<String>) -> Self {
        Self::new(pointer, Expected::Null)
    }

    /// Present and not `null`.
    pub fn not_null(pointer: impl Into<String>) -> Self {
        Self::new(pointer, Expected::NotNull)
    }

    /// Exactly this JSON value.
    pub fn json(pointer: impl Into<String>, value: Value) -> Self {
        Self::new(pointer, Expected::Json(value))
    }

    /// Checks the expectation against a resource's JSON.
    pub fn check(&self, resource: &Value) -> Result<(), Mismatch> {
        let mismatch = |actual: String, reason: &str| Mismatch {
            pointer: self.pointer.clone(),
            expected: self.expected.to_string(),
            actual,
            reason: reason.to_owned(),
        };
        let actual = match lookup(resource, &self.pointer) {
            Ok(actual) => actual,
            Err(e) => return Err(mismatch("<absent>".to_owned(), &e.to_string())),
        };
        let ok = match (&self.expected, actual) {
            (Expected::Number { value, tolerance }, Value::Number(n)) => {
                let Some(n) = n.as_f64() else {
                    return Err(mismatch(actual.to_string(), "not representable as f64"));
                };
                if !value.is_finite() {
                    return Err(mismatch(actual.to_string(), "the expected value is not finite"));
                }
                tolerance.accepts(*value, n)
            }
            (Expected::Number { .. }, _) => {
                return Err(mismatch(actual.to_string(), "not a number"));
            }
            (Expected::Bool(b), Value::Bool(a)) => a == b,
            (Expected::String(s), Value::String(a)) => a == s,
            (Expected::Null, Value::Null) => true,
            (Expected::NotNull, v) => !v.is_null(),
            (Expected::Json(j), v) => j == v,
            _ => false,
        };
        if ok { Ok(()) } else { Err(mismatch(actual.to_string(), "differs")) }
    }
}

/// A field that does not have the expected value.
#[derive(Clone, Debug, PartialEq)]
pub struct Mismatch {
    /// The JSON pointer.
    pub pointer: String,
    /// The expected value, as text.
    pub expected: String,
    /// The value found (JSON text, or `<absent>`).
    pub actual: String,
    /// Why it does not match.
    pub reason: String,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: expected {}, found {} ({})",
            self.pointer, self.expected, self.actual, self.reason
        )
    }
}

/// Checks every expectation; returns the mismatches (empty when all hold).
pub fn check_all(resource: &Value, expectations: &[Expectation]) -> Vec<Mismatch> {
    expectations.iter().filter_map(|e| e.check(resource).err()).collect()
}

/// Why a JSON pointer does not lead to a value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LookupError {
    /// Not an RFC 6901 pointer (it must be empty or start with `/`; `~` must be `~0` or `~1`).
    InvalidPointer(String),
    /// The pointer is valid but the resource has nothing there.
    Missing {
        /// The longest prefix of the pointer that exists.
        found: String,
        /// The first reference token that does not.
        token: String,
    },
}

impl fmt::Display for LookupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LookupError::InvalidPointer(p) => write!(f, "{p:?} is not a JSON pointer"),
            LookupError::Missing { found, token } => {
                let at = if found.is_empty() { "the root" } else { found.as_str() };
                write!(f, "{at} has no {token:?}")
            }
        }
    }
}

impl std::error::Error for LookupError {}

/// Looks up an RFC 6901 JSON pointer ("" is the whole document). Unlike
/// [`Value::pointer`] it says how far the pointer got, for readable failures.
pub fn lookup<'a>(resource: &'a Value, pointer: &str) -> Result<&'a Value, LookupError> {
    if pointer.is_empty() {
        return Ok(resource);
    }
    let Some(rest) = pointer.strip_prefix('/') else {
        return Err(LookupError::InvalidPointer(pointer.to_owned()));
    };
    let mut current = resource;
    let mut found = String::new();
    for raw in rest.split('/') {
        let token = unescape(raw).ok_or_else(|| LookupError::InvalidPointer(pointer.to_owned()))?;
        let next = match current {
            Value::Object(map) => map.get(&token),
            Value::Array(items) => array_index(&token).and_then(|i| items.get(i)),
            _ => None,
        };
        match next {
            Some(v) => {
                current = v;
                found.push('/');
                found.push_str(raw);
            }
            None => return Err(LookupError::Missing { found, token }),
        }
    }
    Ok(current)
}

/// `~1` -> `/`, `~0` -> `~`; any other `~` is invalid.
fn unescape(raw: &str) -> Option<String> {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c == '~' {
            match chars.next() {
                Some('0') => out.push('~'),
                Some('1') => out.push('/'),
                _ => return None,
            }
        } else {
            out.push(c);
        }
    }
    Some(out)
}

/// An array index token: `0` or digits without a leading zero.
fn array_index(token: &str) -> Option<usize> {
    let digits = !token.is_empty() && token.bytes().all(|b| b.is_ascii_digit());
    if !digits || (token.len() > 1 && token.starts_with('0')) {
        return None;
    }
    token.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc() -> Value {
        json!({
            "chargeState": { "batteryLevel": 80.4, "isCharging": true, "range": null },
            "information": { "brand": "Tesla" },
            "a/b": { "m~n": 1 },
            "list": [10, 20, 30],
            "capabilities": { "startCharging": { "isCapable": false, "interventionIds": ["x"] } }
        })
    }

    #[test]
    fn pointers_follow_rfc_6901() {
        let d = doc();
        assert_eq!(lookup(&d, "").unwrap(), &d);
        assert_eq!(lookup(&d, "/chargeState/batteryLevel").unwrap(), &json!(80.4));
        assert_eq!(lookup(&d, "/chargeState/range").unwrap(), &Value::Null);
        assert_eq!(lookup(&d, "/a~1b/m~0n").unwrap(), &json!(1));
        assert_eq!(lookup(&d, "/list/0").unwrap(), &json!(10));
        assert_eq!(lookup(&d, "/list/2").unwrap(), &json!(30));
        assert_eq!(
            lookup(&d, "/capabilities/startCharging/interventionIds/0").unwrap(),
            &json!("x")
        );
    }

    #[test]
    fn lookup_failures_say_how_far_they_got() {
        let d = doc();
        assert_eq!(
            lookup(&d, "/chargeState/chargeRate"),
            Err(LookupError::Missing { found: "/chargeState".into(), token: "chargeRate".into() })
        );
        assert_eq!(
            lookup(&d, "/nope/x"),
            Err(LookupError::Missing { found: String::new(), token: "nope".into() })
        );
        assert!(matches!(lookup(&d, "/list/3"), Err(LookupError::Missing { .. })));
        assert!(matches!(lookup(&d, "/list/01"), Err(LookupError::Missing { .. })));
        assert!(matches!(lookup(&d, "/list/-"), Err(LookupError::Missing { .. })));
        assert!(matches!(lookup(&d, "/list/0/deeper"), Err(LookupError::Missing { .. })));
        assert_eq!(
            lookup(&d, "chargeState"),
            Err(LookupError::InvalidPointer("chargeState".into()))
        );
        assert_eq!(lookup(&d, "/a~2b"), Err(LookupError::InvalidPointer("/a~2b".into())));
        assert_eq!(lookup(&d, "/a~"), Err(LookupError::InvalidPointer("/a~".into())));
        let e = lookup(&d, "/chargeState/chargeRate").unwrap_err().to_string();
        assert_eq!(e, "/chargeState has no \"chargeRate\"");
        assert_eq!(lookup(&d, "/x").unwrap_err().to_string(), "the root has no \"x\"");
    }

    #[test]
    fn tolerances() {
        assert!(Tolerance::EXACT.accepts(1.0, 1.0));
        assert!(!Tolerance::EXACT.accepts(1.0, 1.000_001));
        assert!(!Tolerance::KW.accepts(1.0, 1.051));
        assert!(Tolerance::PERCENT.accepts(80.0, 80.5));
        assert!(!Tolerance::PERCENT.accepts(80.0, 80.6));
        assert!(Tolerance::KWH.accepts(10_000.0, 10_009.0), "relative part for big counters");
        assert!(!Tolerance::KWH.accepts(10_000.0, 10_011.0));
        assert!(Tolerance::KWH.accepts(1.0, 1.05));
        assert!(!Tolerance::KW.accepts(f64::NAN, f64::NAN));
        assert!(!Tolerance::KW.accepts(1.0, f64::INFINITY));
        assert!(Tolerance::abs(2.0).accepts(-3.0, -1.0));
        assert!(Tolerance::KW.accepts(-3.0, -3.04), "signs count: discharging is negative");
        assert!(!Tolerance::KW.accepts(-3.0, 3.0));
    }

    #[test]
    fn expectations_match_and_explain() {
        let d = doc();
        let ok = [
            Expectation::percent("/chargeState/batteryLevel", 80.0),
            Expectation::bool("/chargeState/isCharging", true),
            Expectation::null("/chargeState/range"),
            Expectation::maybe_number("/chargeState/range", None, Tolerance::KM),
            Expectation::string("/information/brand", "Tesla"),
            Expectation::not_null("/information"),
            Expectation::json("/list", json!([10, 20, 30])),
        ];
        assert_eq!(check_all(&d, &ok), vec![]);

        let bad = [
            Expectation::percent("/chargeState/batteryLevel", 82.0),
            Expectation::bool("/chargeState/isCharging", false),
            Expectation::number("/chargeState/range", 300.0, Tolerance::KM),
            Expectation::kw("/chargeState/chargeRate", 7.0),
            Expectation::string("/information/brand", "tesla"),
            Expectation::not_null("/chargeState/range"),
            Expectation::null("/information/brand"),
            Expectation::number("/information/brand", 1.0, Tolerance::EXACT),
            Expectation::number("/list/0", f64::NAN, Tolerance::EXACT),
        ];
        let mismatches = check_all(&d, &bad);
        assert_eq!(mismatches.len(), bad.len(), "{mismatches:#?}");
        assert_eq!(
            mismatches[0].to_string(),
            "/chargeState/batteryLevel: expected 82 ± 0.5, found 80.4 (differs)"
        );
        assert_eq!(
            mismatches[2].to_string(),
            "/chargeState/range: expected 300 ± 0.5 (or ± 0.1 %), found null (not a number)"
        );
        assert_eq!(
            mismatches[3].to_string(),
            "/chargeState/chargeRate: expected 7 ± 0.05, found <absent> \
             (/chargeState has no \"chargeRate\")"
        );
        assert_eq!(mismatches[4].actual, "\"Tesla\"");
    }
}
