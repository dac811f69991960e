//! Pure physics: functions and small models with no clock, no locking and no logging.
//!
//! The world (`crate::world`) decides *when* things happen and records changes; these
//! modules say *how much*: PV output for a sun position, house load for a time of day,
//! battery power for a mode, charging power for a connection, indoor temperature drift.
//! Everything here is deterministic and unit-tested (with proptest where there is an
//! invariant worth stating).

pub mod battery;
pub mod charger;
pub mod hvac;
pub mod load;
pub mod solar;
pub mod vehicle;
