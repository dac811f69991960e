//! Actions: creating (charging, max current, battery operation mode, HVAC holds), reading and
//! cancelling them. The executor owns the actions; this module parses bodies (400 naming the
//! field) and picks the status codes.
//!
//! | route | success | failures |
//! |---|---|---|
//! | `POST /{vehicles,chargers}/{id}/charging` `{"action": "START"\|"STOP"}` | 200 action | 400, 404 |
//! | `POST /{vehicles,chargers}/{id}/max-current` `{"maxCurrent": n}` | 200 action | 400, 404 |
//! | `POST /batteries/{id}/operation-mode` `{"operationMode": ...}` | 200 action | 400, 404 |
//! | `POST /hvacs/{id}/permanent-hold` `{"mode": ..., "heatSetpoint"/"coolSetpoint"}` | 200 action | 400, 404 |
//! | `POST /hvacs/{id}/follow-schedule` | 200 action | 400, 404 |
//! | `GET /{vehicles,chargers,batteries,hvacs}/actions/{actionId}` | 200 action | 404 |
//! | `POST /{vehicles,chargers,batteries,hvacs}/actions/{actionId}/cancel` | 200 CANCELLED action | 404, 409 with the action |
//!
//! A request for the same kind and target state as the device's pending action returns that
//! action (200); another request cancels it (CANCELLED, CONFLICT). Without an executor (an
//! API-only deployment) the action routes answer 503.
//!
//! Devices and actions are checked through [`crate::access`]: another client's device or
//! action answers 404 like an unknown one.

use std::str::FromStr;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use oemgate_core::{
    AutoPermanentHold, BatteryOperationMode, ChargeActionKind, CoolPermanentHold,
    HeatPermanentHold, HvacPermanentHold, OffPermanentHold, VendorType,
};
use oemgate_executor::{ActionRequest, CancelError, CreateError, Executor, Refusal};
use serde_json::{Map, Value, json};

use crate::ApiState;
use crate::access;
use crate::auth::ClientId;
use crate::devices::Collection;
use crate::openapi::{Op, Routes};
use crate::problem::Problem;

/// The device collections that have actions, with their path segments.
pub const COLLECTIONS: [(VendorType, &str); 4] = [
    (VendorType::Vehicle, "vehicles"),
    (VendorType::Charger, "chargers"),
    (VendorType::Battery, "batteries"),
    (VendorType::Hvac, "hvacs"),
];

fn executor(state: &ApiState) -> Result<&Arc<Executor>, Problem> {
    state.executor.as_ref().ok_or_else(|| {
        Problem::unavailable("Actions are not available on this deployment (no executor).")
    })
}

/// The body as a JSON object (an empty body is an empty object).
fn object(body: &Bytes) -> Result<Map<String, Value>, Problem> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(Problem::bad_request("The request body must be a JSON object.")),
        Err(err) => Err(Problem::bad_request(format!("The request body is not valid JSON: {err}"))),
    }
}

fn missing(field: &str) -> Problem {
    Problem::bad_request(format!("Field \"{field}\" is required."))
}

fn one_of(field: &str, values: &[&str], got: &Value) -> Problem {
    Problem::bad_request(format!(
        "Field \"{field}\" must be one of {}, got {got}.",
        values.join(", ")
    ))
}

fn enum_field<T: FromStr>(
    body: &Map<String, Value>,
    field: &str,
    values: &[&str],
) -> Result<T, Problem> {
    let value = body.get(field).ok_or_else(|| missing(field))?;
    value
        .as_str()
        .filter(|s| values.contains(s))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| one_of(field, values, value))
}

fn number_field(body: &Map<String, Value>, field: &str) -> Result<f64, Problem> {
    let value = body.get(field).ok_or_else(|| missing(field))?;
    value.as_f64().filter(|n| n.is_finite()).ok_or_else(|| {
        Problem::bad_request(format!("Field \"{field}\" must be a number, got {value}."))
    })
}

/// Parses `{"action": "START"|"STOP"}`.
pub fn parse_charging(body: &Bytes) -> Result<ActionRequest, Problem> {
    let body = object(body)?;
    let kind: ChargeActionKind = enum_field(&body, "action", &["START", "STOP"])?;
    Ok(ActionRequest::Charging(kind))
}

/// Parses `{"maxCurrent": n}`.
pub fn parse_max_current(body: &Bytes) -> Result<ActionRequest, Problem> {
    let body = object(body)?;
    Ok(ActionRequest::MaxCurrent(number_field(&body, "maxCurrent")?))
}

/// Parses `{"operationMode": "IMPORT_FOCUS"|...}`.
pub fn parse_operation_mode(body: &Bytes) -> Result<ActionRequest, Problem> {
    let body = object(body)?;
    let values: Vec<&str> = BatteryOperationMode::ALL.iter().map(|m| m.as_str()).collect();
    let mode: BatteryOperationMode = enum_field(&body, "operationMode", &values)?;
    Ok(ActionRequest::OperationMode(mode))
}

/// Parses `{"mode": "COOL"|"HEAT"|"AUTO"|"OFF", "heatSetpoint"?: n, "coolSetpoint"?: n}`
/// (the setpoints each mode needs are required).
pub fn parse_permanent_hold(body: &Bytes) -> Result<ActionRequest, Problem> {
    let body = object(body)?;
    let field = "mode";
    let value = body.get(field).ok_or_else(|| missing(field))?;
    let modes = ["COOL", "HEAT", "AUTO", "OFF"];
    let hold = match value.as_str() {
        Some("COOL") => HvacPermanentHold::Cool(CoolPermanentHold {
            cool_setpoint: number_field(&body, "coolSetpoint")?,
        }),
        Some("HEAT") => HvacPermanentHold::Heat(HeatPermanentHold {
            heat_setpoint: number_field(&body, "heatSetpoint")?,
        }),
        Some("AUTO") => HvacPermanentHold::Auto(AutoPermanentHold {
            cool_setpoint: number_field(&body, "coolSetpoint")?,
            heat_setpoint: number_field(&body, "heatSetpoint")?,
        }),
        Some("OFF") => HvacPermanentHold::Off(OffPermanentHold {}),
        _ => return Err(one_of(field, &modes, value)),
    };
    Ok(ActionRequest::PermanentHold(hold))
}

fn refusal(refusal: Refusal) -> Problem {
    match refusal {
        Refusal::Invalid { field, message } => {
            Problem::bad_request(format!("Field \"{field}\" is invalid: {message}"))
        }
        Refusal::Precondition(detail) => Problem::precondition_failed(detail),
    }
}

async fn create(
    state: &ApiState,
    client: &ClientId,
    device_type: VendorType,
    id: &str,
    request: Result<ActionRequest, Problem>,
) -> Result<Response, Problem> {
    let executor = executor(state)?;
    access::device_for_client(state, client, device_type, id).await?;
    let request = request?;
    match executor.create(device_type, id, request).await {
        Ok(created) => Ok(Json(created.action).into_response()),
        Err(CreateError::Refused(r)) => Err(refusal(r)),
        Err(CreateError::NotFound { device_type, id }) => Err(Problem::not_found(format!(
            "No {} with id {id:?} was found.",
            device_type.as_str()
        ))),
        Err(CreateError::Store(err)) => Err(err.into()),
    }
}

async fn get_action(
    state: &ApiState,
    client: &ClientId,
    device_type: VendorType,
    action_id: &str,
) -> Result<Response, Problem> {
    let executor = executor(state)?;
    match executor.get(device_type, action_id).await? {
        Some(action) => {
            access::action_for_client(state, client, action_id, action.user_id()).await?;
            Ok(Json(action).into_response())
        }
        None => Err(Problem::not_found(format!("No action with id {action_id:?} was found."))),
    }
}

async fn cancel_action(
    state: &ApiState,
    client: &ClientId,
    device_type: VendorType,
    action_id: &str,
) -> Result<Response, Problem> {
    let executor = executor(state)?;
    // Ownership first: another client's action is 404 and stays untouched.
    match executor.get(device_type, action_id).await? {
        Some(action) => {
            access::action_for_client(state, client, action_id, action.user_id()).await?
        }
        None => {
            return Err(Problem::not_found(format!("No action with id {action_id:?} was found.")));
        }
    }
    match executor.cancel(device_type, action_id).await {
        Ok(action) => Ok(Json(action).into_response()),
        Err(CancelError::AlreadyResolved(action)) => {
            Ok((StatusCode::CONFLICT, Json(*action)).into_response())
        }
        Err(CancelError::NotFound) => {
            Err(Problem::not_found(format!("No action with id {action_id:?} was found.")))
        }
        Err(CancelError::Store(err)) => Err(err.into()),
    }
}

type Parser = fn(&Bytes) -> Result<ActionRequest, Problem>;

/// `POST path`: parses the body with `parse` and creates the action on the device.
fn create_op(routes: Routes, path: &str, op: Op, device_type: VendorType, parse: Parser) -> Routes {
    routes.post(
        path,
        op.problems(&[503]),
        move |State(state): State<ApiState>,
              client: ClientId,
              Path(id): Path<String>,
              body: Bytes| async move {
            create(&state, &client, device_type, &id, parse(&body)).await
        },
    )
}

/// The schema of the actions one collection can have.
fn action_schema(op: &mut Op, device_type: VendorType) -> Value {
    use oemgate_core::{ChargeAction, HvacAction, MaxCurrentAction, OperationModeAction};
    match device_type {
        VendorType::Battery => op.schema_of::<OperationModeAction>(),
        VendorType::Hvac => op.schema_of::<HvacAction>(),
        _ => {
            let charge = op.schema_of::<ChargeAction>();
            let max_current = op.schema_of::<MaxCurrentAction>();
            json!({"anyOf": [charge, max_current]})
        }
    }
}

/// The action routes of every collection.
pub fn routes() -> Routes {
    use oemgate_core::{
        ChargeAction, HvacAction, MaxCurrentAction, OperationModeAction,
        SetBatteryOperationModePayload,
    };
    let mut routes = Routes::new();
    for c in crate::devices::NAMED_COLLECTIONS {
        let Collection { device_type, plural, title, singular, .. } = c;
        if !COLLECTIONS.iter().any(|(t, _)| *t == device_type) {
            continue;
        }
        let mut get_op = Op::new(&format!("get{singular}Action"), title, "Get an action")
            .path("actionId", "ID of the action.");
        let schema = action_schema(&mut get_op, device_type);
        let get_op = get_op.ok_schema(200, "The action.", schema.clone()).problems(&[503]);
        let mut cancel_op = Op::new(&format!("cancel{singular}Action"), title, "Cancel an action")
            .describe(
                "Cancels a PENDING action: it turns CANCELLED and no more commands are sent. An \
                 action that already left PENDING answers 409 with the action as it is.",
            )
            .path("actionId", "ID of the action.");
        let schema = action_schema(&mut cancel_op, device_type);
        let cancel_op = cancel_op
            .ok_schema(200, "The cancelled action.", schema.clone())
            .ok_schema(
                409,
                "The action had already left PENDING; it is returned unchanged.",
                schema,
            )
            .problems(&[503]);
        routes =
            routes
                .get(
                    &format!("/{plural}/actions/{{actionId}}"),
                    get_op,
                    move |State(state): State<ApiState>,
                          client: ClientId,
                          Path(id): Path<String>| async move {
                        get_action(&state, &client, device_type, &id).await
                    },
                )
                .post(
                    &format!("/{plural}/actions/{{actionId}}/cancel"),
                    cancel_op,
                    move |State(state): State<ApiState>,
                          client: ClientId,
                          Path(id): Path<String>| async move {
                        cancel_action(&state, &client, device_type, &id).await
                    },
                );
    }
    for c in [crate::devices::NAMED_COLLECTIONS[0], crate::devices::NAMED_COLLECTIONS[1]] {
        let Collection { device_type, plural, id_param, title, singular } = c;
        let id_doc = format!("ID of the {}.", device_type.as_str());
        routes = create_op(
            routes,
            &format!("/{plural}/{{{id_param}}}/charging"),
            Op::new(&format!("control{singular}Charging"), title, "Start or stop charging")
                .describe(
                    "Creates an action the executor retries until the device's observed state \
                     confirms it. A request for the pending action's own target returns that \
                     action; another cancels it (CONFLICT).",
                )
                .path(id_param, &id_doc)
                .body_schema(json!({
                    "type": "object",
                    "required": ["action"],
                    "additionalProperties": false,
                    "properties": {"action": {"type": "string", "enum": ["START", "STOP"]}}
                }))
                .ok::<ChargeAction>(200, "The charge action."),
            device_type,
            parse_charging,
        );
        routes = create_op(
            routes,
            &format!("/{plural}/{{{id_param}}}/max-current"),
            Op::new(&format!("set{singular}MaxCurrent"), title, "Set the maximum charge current")
                .path(id_param, &id_doc)
                .body_schema(json!({
                    "type": "object",
                    "required": ["maxCurrent"],
                    "additionalProperties": false,
                    "properties": {"maxCurrent": {"type": "number", "description": "Amperes."}}
                }))
                .ok::<MaxCurrentAction>(200, "The max-current action."),
            device_type,
            parse_max_current,
        );
    }
    routes = create_op(
        routes,
        "/batteries/{batteryId}/operation-mode",
        Op::new("setBatteryOperationMode", "Batteries", "Set a battery's operation mode")
            .path("batteryId", "ID of the battery.")
            .body::<SetBatteryOperationModePayload>()
            .ok::<OperationModeAction>(200, "The operation-mode action."),
        VendorType::Battery,
        parse_operation_mode,
    );
    routes = create_op(
        routes,
        "/hvacs/{hvacId}/permanent-hold",
        Op::new("setHvacPermanentHold", "HVACs", "Hold an HVAC unit in a mode")
            .path("hvacId", "ID of the HVAC unit.")
            .body::<HvacPermanentHold>()
            .ok::<HvacAction>(200, "The HVAC action."),
        VendorType::Hvac,
        parse_permanent_hold,
    );
    create_op(
        routes,
        "/hvacs/{hvacId}/follow-schedule",
        Op::new("setHvacFollowSchedule", "HVACs", "Return an HVAC unit to its own schedule")
            .path("hvacId", "ID of the HVAC unit.")
            .body_schema(json!({"type": "object", "additionalProperties": false}))
            .ok::<HvacAction>(200, "The HVAC action."),
        VendorType::Hvac,
        |body| object(body).map(|_| ActionRequest::FollowSchedule),
    )
}
