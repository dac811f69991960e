//! Actions: the charge, max-current, battery operation-mode and HVAC actions, their states and
//! failure reasons.

use serde::{Deserialize, Deserializer, Serialize};

use super::battery::BatteryOperationMode;
use super::common::{Timestamp, nullable, optional_nullable};
use super::hvac::{PermanentHoldTargetState, ScheduledHoldType, ScheduledTargetState};

wire_enum! {
    /// The real-time status of an action (schema `ActionState`).
    pub enum ActionState {
        /// Commands are being sent and the target watched.
        Pending => "PENDING",
        /// The target reached the desired state.
        Confirmed => "CONFIRMED",
        /// The target did not respond before the timeout; no more commands are sent.
        Failed => "FAILED",
        /// A precondition was not met in time, or a newer action overrode this one.
        Cancelled => "CANCELLED",
    }
}

impl ActionState {
    /// Whether the action has left `PENDING`.
    pub const fn is_terminal(&self) -> bool {
        !matches!(self, ActionState::Pending)
    }
}

wire_enum! {
    /// Machine-readable category of an action failure (schema `ChargeActionType`,
    /// `MaxCurrentActionType`, `VehicleActionType1/2`; OpenAPI `ActionFailureReason.type`).
    pub enum FailureReasonType {
        /// The device did not react within the action's timeout window.
        NoResponse => "NO_RESPONSE",
        /// The device did not meet the action's preconditions within the window.
        FailedPrecondition => "FAILED_PRECONDITION",
        /// A newer action for this device replaced this one.
        Conflict => "CONFLICT",
        /// The device was deleted while the action was pending.
        NotFound => "NOT_FOUND",
        /// The device was already in the desired state.
        Unnecessary => "UNNECESSARY",
        /// Cancelled by the controlling owner (a schedule, a smart override, a user).
        RequestedCancellation => "REQUESTED_CANCELLATION",
    }
}

/// Why an action did not succeed (schema `ChargeActionFailureReason`,
/// `MaxCurrentActionFailureReason`, `VehicleActionFailureReason1/2`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ActionFailureReason {
    /// High-level category (JSON `type`).
    pub r#type: FailureReasonType,
    /// Human-readable explanation.
    pub detail: String,
}

wire_enum! {
    /// The kind of device a charge or max-current action targets (schema
    /// `ChargeableVendorType`).
    pub enum ChargeableType {
        Vehicle => "vehicle",
        Charger => "charger",
    }
}

wire_enum! {
    /// Start or stop charging (schema `ChargingAction`).
    pub enum ChargeActionKind {
        Start => "START",
        Stop => "STOP",
    }
}

wire_enum! {
    /// Target type of a battery operation-mode action: always `battery`.
    pub enum OperationModeTargetType {
        Battery => "battery",
    }
}

wire_enum! {
    /// Target type of an HVAC action: always `hvac`.
    pub enum HvacTargetType {
        Hvac => "hvac",
    }
}

/// An action starting or stopping charging on a vehicle or charger (schema `ChargeAction`,
/// also `VehicleActionChargeAction`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChargeAction {
    /// Action ID.
    pub id: String,
    /// The user owning the target.
    pub user_id: String,
    /// When the action was created.
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    /// When the action was last updated.
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
    /// When the action left `PENDING`.
    #[serde(deserialize_with = "nullable::deserialize")]
    #[schema(required = true)]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub completed_at: Option<Timestamp>,
    /// Current state.
    pub state: ActionState,
    /// ID of the controlled vehicle or charger.
    pub target_id: String,
    /// Whether the target is a vehicle or a charger.
    pub target_type: ChargeableType,
    /// START or STOP.
    pub kind: ChargeActionKind,
    /// Why the action failed, when it did.
    #[serde(deserialize_with = "nullable::deserialize")]
    #[schema(required = true)]
    pub failure_reason: Option<ActionFailureReason>,
    /// Deprecated alias of `targetId` (prose reference examples only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entity_id: Option<String>,
    /// Deprecated alias of `targetType` (prose reference examples only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entity_type: Option<String>,
    /// Deprecated alias of `targetId` (prose reference examples only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chargeable_id: Option<String>,
    /// Deprecated alias of `targetType` (prose reference examples only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chargeable_type: Option<String>,
}

/// Desired maximum current (schema `TargetMaxCurrent`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TargetMaxCurrent {
    /// Maximum current in amperes (> 0).
    pub max_current: f64,
}

/// An action setting the maximum current of a charger or vehicle (schema `MaxCurrentAction`,
/// also `VehicleActionMaxCurrentAction`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MaxCurrentAction {
    /// Action ID.
    pub id: String,
    /// The user owning the target.
    pub user_id: String,
    /// When the action was created.
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    /// When the action was last updated.
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
    /// When the action left `PENDING`.
    #[serde(deserialize_with = "nullable::deserialize")]
    #[schema(required = true)]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub completed_at: Option<Timestamp>,
    /// Current state.
    pub state: ActionState,
    /// ID of the controlled vehicle or charger.
    pub target_id: String,
    /// Whether the target is a vehicle or a charger.
    pub target_type: ChargeableType,
    /// The desired maximum current.
    pub target_state: TargetMaxCurrent,
    /// Why the action failed, when it did.
    #[serde(deserialize_with = "nullable::deserialize")]
    #[schema(required = true)]
    pub failure_reason: Option<ActionFailureReason>,
}

/// Desired battery operation mode (schema `SetBatteryOperationModePayload`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SetBatteryOperationModePayload {
    /// The mode to set.
    pub operation_mode: BatteryOperationMode,
}

/// An action setting a battery's operation mode (schema `OperationModeAction`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OperationModeAction {
    /// Action ID.
    pub id: String,
    /// The user owning the target.
    pub user_id: String,
    /// When the action was created.
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    /// When the action was last updated.
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
    /// When the action left `PENDING`.
    #[serde(deserialize_with = "nullable::deserialize")]
    #[schema(required = true)]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub completed_at: Option<Timestamp>,
    /// Current state.
    pub state: ActionState,
    /// ID of the controlled battery.
    pub target_id: String,
    /// Always `battery`.
    pub target_type: OperationModeTargetType,
    /// The desired operation mode.
    pub target_state: SetBatteryOperationModePayload,
    /// Why the action failed (OpenAPI-only; absent, `null` or a value).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "optional_nullable::deserialize"
    )]
    pub failure_reason: Option<Option<ActionFailureReason>>,
}

/// An action putting an HVAC unit on a permanent hold (schema `HvacActionPermanentHold`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HvacActionPermanentHold {
    /// Action ID.
    pub id: String,
    /// The user owning the target.
    pub user_id: String,
    /// When the action was created.
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    /// When the action was last updated.
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
    /// When the action left `PENDING`.
    #[serde(deserialize_with = "nullable::deserialize")]
    #[schema(required = true)]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub completed_at: Option<Timestamp>,
    /// Current state.
    pub state: ActionState,
    /// ID of the controlled HVAC unit.
    pub target_id: String,
    /// Always `hvac`.
    pub target_type: HvacTargetType,
    /// The desired hold.
    pub target: PermanentHoldTargetState,
    /// Why the action failed (OpenAPI-only; absent, `null` or a value).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "optional_nullable::deserialize"
    )]
    pub failure_reason: Option<Option<ActionFailureReason>>,
}

/// An action returning an HVAC unit to its schedule (schema `HvacActionFollowSchedule`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HvacActionFollowSchedule {
    /// Action ID.
    pub id: String,
    /// The user owning the target.
    pub user_id: String,
    /// When the action was created.
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    /// When the action was last updated.
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
    /// When the action left `PENDING`.
    #[serde(deserialize_with = "nullable::deserialize")]
    #[schema(required = true)]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub completed_at: Option<Timestamp>,
    /// Current state.
    pub state: ActionState,
    /// ID of the controlled HVAC unit.
    pub target_id: String,
    /// Always `hvac`.
    pub target_type: HvacTargetType,
    /// Always `{"holdType": "SCHEDULED"}`.
    pub target: ScheduledTargetState,
    /// Why the action failed (OpenAPI-only; absent, `null` or a value).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "optional_nullable::deserialize"
    )]
    pub failure_reason: Option<Option<ActionFailureReason>>,
}

/// Any HVAC action (OpenAPI `HvacAction`: `HvacActionPermanentHold | HvacActionFollowSchedule`).
///
/// Serialized untagged. Deserialization picks the variant from `target.holdType`
/// (`"SCHEDULED"` is a follow-schedule action, anything else a permanent hold), so errors name
/// the offending field instead of "did not match any variant".
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum HvacAction {
    /// A permanent hold.
    PermanentHold(HvacActionPermanentHold),
    /// A return to the unit's schedule.
    FollowSchedule(HvacActionFollowSchedule),
}

impl<'de> Deserialize<'de> for HvacAction {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;

        let value = serde_json::Value::deserialize(deserializer)?;
        let scheduled = value
            .get("target")
            .and_then(|target| target.get("holdType"))
            .and_then(serde_json::Value::as_str)
            == Some(ScheduledHoldType::Scheduled.as_str());
        if scheduled {
            serde_json::from_value(value).map(HvacAction::FollowSchedule).map_err(D::Error::custom)
        } else {
            serde_json::from_value(value).map(HvacAction::PermanentHold).map_err(D::Error::custom)
        }
    }
}

impl HvacAction {
    /// Action ID.
    pub fn id(&self) -> &str {
        match self {
            HvacAction::PermanentHold(a) => &a.id,
            HvacAction::FollowSchedule(a) => &a.id,
        }
    }

    /// Current state.
    pub fn state(&self) -> ActionState {
        match self {
            HvacAction::PermanentHold(a) => a.state,
            HvacAction::FollowSchedule(a) => a.state,
        }
    }
}
