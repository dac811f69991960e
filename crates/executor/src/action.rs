//! Actions as the executor keeps them: the request, the target it wants the device to
//! reach, the Enode-style action object ([`VendorAction`]) and the executor's bookkeeping,
//! and how the two are stored together in an [`ActionRecord`].

use chrono::{DateTime, Utc};
use oemgate_core::{
    ActionFailureReason, ActionState, BatteryOperationMode, ChargeAction, ChargeActionKind,
    ChargeableType, Command, FailureReasonType, HvacAction, HvacActionFollowSchedule,
    HvacActionPermanentHold, HvacPermanentHold, HvacTargetType, MaxCurrentAction,
    OperationModeAction, OperationModeTargetType, PermanentHoldTargetState, ScheduledHoldType,
    ScheduledTargetState, SetBatteryOperationModePayload, TargetMaxCurrent, VendorType,
};
use oemgate_store::ActionRecord;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// What an API client asked for (the body of one of the action routes, parsed).
#[derive(Clone, Debug, PartialEq)]
pub enum ActionRequest {
    /// `POST /{vehicles|chargers}/{id}/charging` `{"action": "START"|"STOP"}`.
    Charging(ChargeActionKind),
    /// `POST /{vehicles|chargers}/{id}/max-current` `{"maxCurrent": n}`.
    MaxCurrent(f64),
    /// `POST /batteries/{id}/operation-mode` `{"operationMode": ...}`.
    OperationMode(BatteryOperationMode),
    /// `POST /hvacs/{id}/permanent-hold` `{"mode": ..., "heatSetpoint"/"coolSetpoint": ...}`.
    PermanentHold(HvacPermanentHold),
    /// `POST /hvacs/{id}/follow-schedule`.
    FollowSchedule,
}

impl ActionRequest {
    /// The target state the action will drive the device to.
    pub fn target(&self) -> Target {
        match self {
            ActionRequest::Charging(kind) => Target::Charging(*kind),
            ActionRequest::MaxCurrent(amps) => Target::MaxCurrent(*amps),
            ActionRequest::OperationMode(mode) => Target::OperationMode(*mode),
            ActionRequest::PermanentHold(hold) => Target::PermanentHold(hold.target_state()),
            ActionRequest::FollowSchedule => Target::FollowSchedule,
        }
    }
}

/// The state an action wants its device in.
#[derive(Clone, Debug, PartialEq)]
pub enum Target {
    /// `powerDeliveryState` `PLUGGED_IN:CHARGING` (START) or `PLUGGED_IN:STOPPED` /
    /// `PLUGGED_IN:COMPLETE` (STOP).
    Charging(ChargeActionKind),
    /// `chargeState.maxCurrent` equal to this many amperes.
    MaxCurrent(f64),
    /// `config.operationMode` equal to this mode.
    OperationMode(BatteryOperationMode),
    /// Thermostat mode, setpoints and `holdType: PERMANENT`.
    PermanentHold(PermanentHoldTargetState),
    /// Thermostat `holdType: SCHEDULED`.
    FollowSchedule,
}

impl Target {
    /// The command that moves a device towards this target.
    pub fn command(&self) -> Command {
        match self {
            Target::Charging(ChargeActionKind::Start) => Command::StartCharging,
            Target::Charging(ChargeActionKind::Stop) => Command::StopCharging,
            Target::MaxCurrent(amps) => Command::SetMaxCurrent { amps: *amps },
            Target::OperationMode(mode) => Command::SetOperationMode { mode: *mode },
            Target::PermanentHold(state) => {
                let (heat_setpoint, cool_setpoint) = setpoints(state);
                Command::SetPermanentHold { mode: state.mode(), heat_setpoint, cool_setpoint }
            }
            Target::FollowSchedule => Command::FollowSchedule,
        }
    }

    /// The device classes this target applies to.
    pub fn device_types(&self) -> &'static [VendorType] {
        match self {
            Target::Charging(_) | Target::MaxCurrent(_) => {
                &[VendorType::Vehicle, VendorType::Charger]
            }
            Target::OperationMode(_) => &[VendorType::Battery],
            Target::PermanentHold(_) | Target::FollowSchedule => &[VendorType::Hvac],
        }
    }

    /// A short name for logs and metrics ("charging", "max_current", ...).
    pub fn name(&self) -> &'static str {
        match self {
            Target::Charging(_) => "charging",
            Target::MaxCurrent(_) => "max_current",
            Target::OperationMode(_) => "operation_mode",
            Target::PermanentHold(_) => "permanent_hold",
            Target::FollowSchedule => "follow_schedule",
        }
    }
}

/// The heat and cool setpoints of a permanent-hold target.
pub fn setpoints(state: &PermanentHoldTargetState) -> (Option<f64>, Option<f64>) {
    match state {
        PermanentHoldTargetState::Cool(s) => (None, Some(s.cool_setpoint)),
        PermanentHoldTargetState::Heat(s) => (Some(s.heat_setpoint), None),
        PermanentHoldTargetState::Auto(s) => (Some(s.heat_setpoint), Some(s.cool_setpoint)),
        PermanentHoldTargetState::Off(_) => (None, None),
    }
}

/// An action as the API serves it: one of the core model's action types, serialized exactly
/// as the Enode-style JSON.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum VendorAction {
    /// A charge action (`POST .../charging`).
    Charge(ChargeAction),
    /// A max-current action (`POST .../max-current`).
    MaxCurrent(MaxCurrentAction),
    /// A battery operation-mode action.
    OperationMode(OperationModeAction),
    /// An HVAC permanent-hold or follow-schedule action.
    Hvac(HvacAction),
}

/// The fields every action type shares, borrowed.
struct Common<'a> {
    id: &'a str,
    user_id: &'a str,
    target_id: &'a str,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    completed_at: Option<DateTime<Utc>>,
    state: ActionState,
}

macro_rules! with_action {
    ($self:expr, $a:ident => $body:expr) => {
        match $self {
            VendorAction::Charge($a) => $body,
            VendorAction::MaxCurrent($a) => $body,
            VendorAction::OperationMode($a) => $body,
            VendorAction::Hvac(HvacAction::PermanentHold($a)) => $body,
            VendorAction::Hvac(HvacAction::FollowSchedule($a)) => $body,
        }
    };
}

impl VendorAction {
    /// A new PENDING action for `request` on `target_id` (a `device_type` device of `user_id`).
    pub fn new(
        id: String,
        user_id: String,
        target_id: String,
        device_type: VendorType,
        request: &ActionRequest,
        now: DateTime<Utc>,
    ) -> Self {
        let chargeable = if device_type == VendorType::Charger {
            ChargeableType::Charger
        } else {
            ChargeableType::Vehicle
        };
        let state = ActionState::Pending;
        match request {
            ActionRequest::Charging(kind) => VendorAction::Charge(ChargeAction {
                id,
                user_id,
                created_at: now,
                updated_at: now,
                completed_at: None,
                state,
                target_id,
                target_type: chargeable,
                kind: *kind,
                failure_reason: None,
                entity_id: None,
                entity_type: None,
                chargeable_id: None,
                chargeable_type: None,
            }),
            ActionRequest::MaxCurrent(amps) => VendorAction::MaxCurrent(MaxCurrentAction {
                id,
                user_id,
                created_at: now,
                updated_at: now,
                completed_at: None,
                state,
                target_id,
                target_type: chargeable,
                target_state: TargetMaxCurrent { max_current: *amps },
                failure_reason: None,
            }),
            ActionRequest::OperationMode(mode) => {
                VendorAction::OperationMode(OperationModeAction {
                    id,
                    user_id,
                    created_at: now,
                    updated_at: now,
                    completed_at: None,
                    state,
                    target_id,
                    target_type: OperationModeTargetType::Battery,
                    target_state: SetBatteryOperationModePayload { operation_mode: *mode },
                    failure_reason: Some(None),
                })
            }
            ActionRequest::PermanentHold(hold) => {
                VendorAction::Hvac(HvacAction::PermanentHold(HvacActionPermanentHold {
                    id,
                    user_id,
                    created_at: now,
                    updated_at: now,
                    completed_at: None,
                    state,
                    target_id,
                    target_type: HvacTargetType::Hvac,
                    target: hold.target_state(),
                    failure_reason: Some(None),
                }))
            }
            ActionRequest::FollowSchedule => {
                VendorAction::Hvac(HvacAction::FollowSchedule(HvacActionFollowSchedule {
                    id,
                    user_id,
                    created_at: now,
                    updated_at: now,
                    completed_at: None,
                    state,
                    target_id,
                    target_type: HvacTargetType::Hvac,
                    target: ScheduledTargetState { hold_type: ScheduledHoldType::Scheduled },
                    failure_reason: Some(None),
                }))
            }
        }
    }

    fn common(&self) -> Common<'_> {
        with_action!(self, a => Common {
            id: &a.id,
            user_id: &a.user_id,
            target_id: &a.target_id,
            created_at: a.created_at,
            updated_at: a.updated_at,
            completed_at: a.completed_at,
            state: a.state,
        })
    }

    /// The action id.
    pub fn id(&self) -> &str {
        self.common().id
    }

    /// The user owning the target.
    pub fn user_id(&self) -> &str {
        self.common().user_id
    }

    /// The device it controls.
    pub fn target_id(&self) -> &str {
        self.common().target_id
    }

    /// When it was created.
    pub fn created_at(&self) -> DateTime<Utc> {
        self.common().created_at
    }

    /// When it last changed.
    pub fn updated_at(&self) -> DateTime<Utc> {
        self.common().updated_at
    }

    /// When it left PENDING.
    pub fn completed_at(&self) -> Option<DateTime<Utc>> {
        self.common().completed_at
    }

    /// Its state.
    pub fn state(&self) -> ActionState {
        self.common().state
    }

    /// Why it did not succeed, if it did not.
    pub fn failure_reason(&self) -> Option<&ActionFailureReason> {
        match self {
            VendorAction::Charge(a) => a.failure_reason.as_ref(),
            VendorAction::MaxCurrent(a) => a.failure_reason.as_ref(),
            VendorAction::OperationMode(a) => a.failure_reason.as_ref().and_then(Option::as_ref),
            VendorAction::Hvac(HvacAction::PermanentHold(a)) => {
                a.failure_reason.as_ref().and_then(Option::as_ref)
            }
            VendorAction::Hvac(HvacAction::FollowSchedule(a)) => {
                a.failure_reason.as_ref().and_then(Option::as_ref)
            }
        }
    }

    /// The class of the device it controls.
    pub fn device_type(&self) -> VendorType {
        let chargeable = |t: ChargeableType| match t {
            ChargeableType::Vehicle => VendorType::Vehicle,
            ChargeableType::Charger => VendorType::Charger,
        };
        match self {
            VendorAction::Charge(a) => chargeable(a.target_type),
            VendorAction::MaxCurrent(a) => chargeable(a.target_type),
            VendorAction::OperationMode(_) => VendorType::Battery,
            VendorAction::Hvac(_) => VendorType::Hvac,
        }
    }

    /// The state it drives the device to.
    pub fn target(&self) -> Target {
        match self {
            VendorAction::Charge(a) => Target::Charging(a.kind),
            VendorAction::MaxCurrent(a) => Target::MaxCurrent(a.target_state.max_current),
            VendorAction::OperationMode(a) => Target::OperationMode(a.target_state.operation_mode),
            VendorAction::Hvac(HvacAction::PermanentHold(a)) => {
                Target::PermanentHold(a.target.clone())
            }
            VendorAction::Hvac(HvacAction::FollowSchedule(_)) => Target::FollowSchedule,
        }
    }

    /// Leaves PENDING: `state` with `reason` (none for CONFIRMED) at `now`.
    pub fn finish(
        &mut self,
        state: ActionState,
        reason: Option<ActionFailureReason>,
        now: DateTime<Utc>,
    ) {
        match self {
            VendorAction::Charge(a) => a.failure_reason = reason,
            VendorAction::MaxCurrent(a) => a.failure_reason = reason,
            VendorAction::OperationMode(a) => a.failure_reason = Some(reason),
            VendorAction::Hvac(HvacAction::PermanentHold(a)) => a.failure_reason = Some(reason),
            VendorAction::Hvac(HvacAction::FollowSchedule(a)) => a.failure_reason = Some(reason),
        }
        with_action!(self, a => {
            a.state = state;
            a.updated_at = now;
            a.completed_at = Some(now);
        });
    }

    /// The Enode-style JSON.
    pub fn to_json(&self) -> Value {
        // Plain data structs always serialize.
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    fn kind_tag(&self) -> &'static str {
        match self {
            VendorAction::Charge(_) => "charge",
            VendorAction::MaxCurrent(_) => "max_current",
            VendorAction::OperationMode(_) => "operation_mode",
            VendorAction::Hvac(_) => "hvac",
        }
    }
}

/// A failure reason of `kind` with `detail`.
pub fn reason(kind: FailureReasonType, detail: impl Into<String>) -> ActionFailureReason {
    ActionFailureReason { r#type: kind, detail: detail.into() }
}

/// What the executor remembers about an action besides its Enode-style JSON.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Bookkeeping {
    /// The vendor ("TESLA"), for the per-vendor policy.
    pub vendor: String,
    /// When the action times out (createdAt + the vendor's timeout at creation).
    pub deadline: Option<DateTime<Utc>>,
    /// The executor instance driving the action.
    pub owner: Option<String>,
    /// Until when `owner` holds the action.
    pub lease_until: Option<DateTime<Utc>>,
    /// Command requests sent (whatever their outcome).
    pub attempts: u32,
    /// Of those, the ones that may have reached the device (accepted, or lost in transit).
    pub maybe_effective: u32,
    /// Of those, the ones the vendor accepted.
    pub accepted: u32,
    /// When the vendor last accepted the command.
    pub last_accepted_at: Option<DateTime<Utc>>,
    /// Consecutive failed requests (the backoff exponent).
    pub failures: u32,
    /// No request before this time (backoff, `retry_after`, vendor limits, budget).
    pub not_before: Option<DateTime<Utc>>,
    /// Wake-up requests sent.
    pub wakes: u32,
    /// When the last wake-up request was accepted.
    pub wake_sent_at: Option<DateTime<Utc>>,
    /// Since when the vehicle is known to be asleep (cleared by a reachable observation).
    pub asleep_since: Option<DateTime<Utc>>,
    /// The vendor has no wake-up (its adapter answered `Unsupported`): commands go to the
    /// vehicle as they are.
    pub wake_unsupported: bool,
    /// Since when a precondition is known to be unmet.
    pub unmet_since: Option<DateTime<Utc>>,
    /// Which precondition.
    pub unmet_reason: Option<String>,
    /// The last request error, for operators.
    pub last_error: Option<String>,
}

impl Bookkeeping {
    /// Whether another instance holds the lease at `now`.
    pub fn leased_by_other(&self, me: &str, now: DateTime<Utc>) -> bool {
        match (&self.owner, self.lease_until) {
            (Some(owner), Some(until)) => owner != me && until > now,
            _ => false,
        }
    }
}

/// An action as stored: its Enode-style JSON and the bookkeeping.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredAction {
    /// The API's view.
    pub action: VendorAction,
    /// The executor's notes.
    pub book: Bookkeeping,
    /// The record's version (for compare-and-set).
    pub version: u64,
}

/// A stored action that does not decode.
#[derive(Debug, thiserror::Error)]
#[error("action record {id} does not decode: {message}")]
pub struct DecodeError {
    /// The record id.
    pub id: String,
    /// What is wrong.
    pub message: String,
}

impl StoredAction {
    /// The record to store (its `version` is set by the store on put).
    pub fn to_record(&self) -> ActionRecord {
        ActionRecord {
            id: self.action.id().to_string(),
            target_id: self.action.target_id().to_string(),
            pending: self.action.state() == ActionState::Pending,
            version: self.version,
            body: json!({
                "kind": self.action.kind_tag(),
                "action": self.action.to_json(),
                "executor": self.book,
            }),
        }
    }

    /// Decodes a record written by [`StoredAction::to_record`].
    pub fn from_record(record: &ActionRecord) -> Result<Self, DecodeError> {
        let err = |message: String| DecodeError { id: record.id.clone(), message };
        let body = &record.body;
        let action = body.get("action").cloned().unwrap_or(Value::Null);
        let action = match body.get("kind").and_then(Value::as_str) {
            Some("charge") => serde_json::from_value(action).map(VendorAction::Charge),
            Some("max_current") => serde_json::from_value(action).map(VendorAction::MaxCurrent),
            Some("operation_mode") => {
                serde_json::from_value(action).map(VendorAction::OperationMode)
            }
            Some("hvac") => serde_json::from_value(action).map(VendorAction::Hvac),
            other => return Err(err(format!("unknown kind {other:?}"))),
        }
        .map_err(|e| err(e.to_string()))?;
        let book = match body.get("executor") {
            Some(v) => serde_json::from_value(v.clone()).map_err(|e| err(e.to_string()))?,
            None => Bookkeeping::default(),
        };
        Ok(Self { action, book, version: record.version })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oemgate_core::{AutoPermanentHold, HeatPermanentHold};

    fn now() -> DateTime<Utc> {
        "2026-06-01T07:00:00Z".parse().unwrap()
    }

    fn all_requests() -> Vec<(VendorType, ActionRequest)> {
        vec![
            (VendorType::Vehicle, ActionRequest::Charging(ChargeActionKind::Start)),
            (VendorType::Charger, ActionRequest::Charging(ChargeActionKind::Stop)),
            (VendorType::Vehicle, ActionRequest::MaxCurrent(16.0)),
            (VendorType::Battery, ActionRequest::OperationMode(BatteryOperationMode::ImportFocus)),
            (
                VendorType::Hvac,
                ActionRequest::PermanentHold(HvacPermanentHold::Heat(HeatPermanentHold {
                    heat_setpoint: 21.5,
                })),
            ),
            (
                VendorType::Hvac,
                ActionRequest::PermanentHold(HvacPermanentHold::Auto(AutoPermanentHold {
                    cool_setpoint: 25.0,
                    heat_setpoint: 20.0,
                })),
            ),
            (VendorType::Hvac, ActionRequest::FollowSchedule),
        ]
    }

    #[test]
    fn every_kind_round_trips_through_a_record_and_matches_the_core_schema() {
        for (device_type, request) in all_requests() {
            let mut action = VendorAction::new(
                "a1".into(),
                "u1".into(),
                "d1".into(),
                device_type,
                &request,
                now(),
            );
            assert_eq!(action.device_type(), device_type);
            assert_eq!(action.target(), request.target());
            let stored =
                StoredAction { action: action.clone(), book: Bookkeeping::default(), version: 3 };
            let back = StoredAction::from_record(&stored.to_record()).unwrap();
            assert_eq!(back, stored);
            let json = action.to_json();
            assert_eq!(json["state"], "PENDING");
            assert_eq!(json["completedAt"], Value::Null);
            assert!(json.get("failureReason").is_some(), "{json}");

            action.finish(
                ActionState::Cancelled,
                Some(reason(FailureReasonType::Conflict, "replaced")),
                now(),
            );
            let json = action.to_json();
            assert_eq!(json["failureReason"]["type"], "CONFLICT");
            assert_eq!(json["completedAt"], "2026-06-01T07:00:00Z");
            assert!(!stored.to_record().body.is_null());
        }
    }

    #[test]
    fn hvac_commands_carry_the_setpoints() {
        let hold = ActionRequest::PermanentHold(HvacPermanentHold::Auto(AutoPermanentHold {
            cool_setpoint: 25.0,
            heat_setpoint: 20.0,
        }));
        assert_eq!(
            hold.target().command(),
            Command::SetPermanentHold {
                mode: oemgate_core::HvacMode::Auto,
                heat_setpoint: Some(20.0),
                cool_setpoint: Some(25.0)
            }
        );
    }

    #[test]
    fn leases() {
        let mut book = Bookkeeping::default();
        assert!(!book.leased_by_other("me", now()));
        book.owner = Some("other".into());
        book.lease_until = Some(now() + chrono::Duration::seconds(1));
        assert!(book.leased_by_other("me", now()));
        assert!(!book.leased_by_other("other", now()));
        assert!(!book.leased_by_other("me", now() + chrono::Duration::seconds(1)));
    }
}
