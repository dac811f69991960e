//! oemgate-core: the vocabulary every other oemgate crate speaks.
//!
//! It holds no I/O and no runtime: no tokio, reqwest, redis or axum. Layout:
//!
//! - [`model`]: the normalized Enode-style resources (vehicle, charger, battery, HVAC, meter,
//!   inverter, actions, capabilities, interventions, locations, users), serialized field by
//!   field as the Enode-style JSON.
//! - [`adapter`]: the device-class traits ([`VehicleApi`], [`ChargerApi`], ...), the
//!   [`VendorAdapter`] trait every vendor crate implements, and the types that cross it
//!   (accounts, device references, observations, commands, [`VendorLimits`]).
//! - [`error`]: [`AdapterError`] with its portable [`ErrorKind`].
//! - [`context`]: [`PollContext`] and the context delays of the polling contract.
//! - [`clock`]: the [`Clock`] trait with system, scaled (accelerated) and manual clocks.

pub mod adapter;
pub mod clock;
pub mod context;
pub mod error;
pub mod model;

pub use adapter::*;
pub use clock::{Clock, ManualClock, ScaledClock, SystemClock};
pub use context::{ContextDelays, PollContext};
pub use error::{AdapterError, ErrorKind};
pub use model::*;
