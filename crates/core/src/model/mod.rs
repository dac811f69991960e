//! The normalized Enode-style resource model: devices (vehicle, charger, battery, HVAC, meter,
//! inverter), actions, capabilities, interventions, locations and users, serialized field by
//! field as the Enode-style JSON.
//!
//! Conventions, following the data model (`name?` / `Nullable[...]` / `Name{A,B}`):
//!
//! - JSON names are camelCase; enum values keep their documented spelling exactly
//!   (`"PLUGGED_IN:CHARGING"`, `"IMPORT_FOCUS"`, `"vehicle"`, `"CSISolar"`).
//! - `Nullable[T]` is `Option<T>`: always serialized (`null` for `None`), and the key must be
//!   present when deserializing (a missing key is a `missing field` error).
//! - `field?` is `Option<T>` with `#[serde(default, skip_serializing_if = "Option::is_none")]`.
//! - `OptionalNullable[T]` (absent, `null` or a value) is `Option<Option<T>>`: `None` is
//!   absent, `Some(None)` is `null`.
//! - Timestamps are [`Timestamp`] (`DateTime<Utc>`), numbers `f64`.
//! - Unknown JSON keys are ignored on input (Enode treats added fields as non-breaking).
//!
//! Where the data model (enode-schema) and the OpenAPI 2024-10-01 document disagree, the data
//! model decides what is required; OpenAPI-only fields are optional so both shapes round-trip:
//!
//! - `ChargerChargeState.pluggedInVehicleId`: OpenAPI-only (optional, nullable) →
//!   `Option<Option<String>>`, skipped when absent.
//! - `Battery.hemSystemId`: data model `?`, OpenAPI required and nullable →
//!   `Option<Option<String>>`, skipped when absent, `null` kept.
//! - `Meter.hemSystemId`, `Inverter.hemSystemId`: OpenAPI-only (required, nullable) →
//!   `Option<Option<String>>`, skipped when absent.
//! - `BatteryCapabilities.idle`: OpenAPI-only → `Option<Capability>`, skipped when absent.
//! - `OperationModeAction.failureReason`, `HvacActionPermanentHold.failureReason`,
//!   `HvacActionFollowSchedule.failureReason`: OpenAPI-only (required, nullable) →
//!   `Option<Option<ActionFailureReason>>`, skipped when absent.
//! - `LocationResponse.createdAt`: OpenAPI-only (required) → `Option<Timestamp>`, skipped
//!   when absent.
//! - `ChargerCapabilities.chargeState`: data model says `Any`, OpenAPI `Capability` →
//!   [`Capability`] like every sibling.
//! - `ChargerVendor` gains `ALFEN` and `BatteryOperationMode` (the settable mode) gains
//!   `IDLE`: both OpenAPI-only enum values, accepted so OpenAPI data parses.
//! - Enums whose values the data model does not list take the OpenAPI's:
//!   `BatteryChargeStatus` (CHARGING, DISCHARGING, IDLE, FAULT, UNKNOWN),
//!   `BatteryConfigOperationMode` (the settable modes plus UNKNOWN), `HvacHoldType`
//!   (PERMANENT, SCHEDULED), `ResolutionAction` (Link).
//! - `Vehicle.location` (with `id`) is required, as in the data model's `GetVehicleResponse`;
//!   the OpenAPI's `Vehicle` component lacks it but its `GET /vehicles/{vehicleId}` response
//!   adds it as required, so the two agree.
//! - `ChargeAction.entityId` / `entityType` / `chargeableId` / `chargeableType`: in neither
//!   document's schema, but in every ChargeAction example of the prose reference (marked
//!   deprecated there) → optional `String`s, skipped when absent.
//! - `Intervention`: one struct with the `IntegrationAgnosticIntervention` shape (nullable
//!   `vendor`, `vendorType`, `brand`); `vendor` is the union [`Vendor`] of all vendor enums.
//!   The prose reference's intervention example is rejected on purpose: it has
//!   `"vendorType": "string"` (not a `VendorType`), an `introducedAt` without a UTC offset,
//!   and no `resolution.action` (required and nullable in both documents).
//! - The OpenAPI's cancel-endpoint action examples omit `userId` (required in both documents)
//!   and are rejected likewise.

#[macro_use]
mod macros;

mod action;
mod battery;
mod charger;
mod common;
mod hvac;
mod intervention;
mod inverter;
mod location;
mod meter;
mod user;
mod vehicle;

#[cfg(test)]
mod tests;

pub use action::*;
pub use battery::*;
pub use charger::*;
pub use common::*;
pub use hvac::*;
pub use intervention::*;
pub use inverter::*;
pub use location::*;
pub use meter::*;
pub use user::*;
pub use vehicle::*;
