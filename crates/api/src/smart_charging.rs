//! Smart charging of vehicles as stored resources: the per-vehicle policy, the status
//! derived from it, smart overrides and smart-charging plans. No planner exists yet (a later
//! issue), so no plan is ever made: the plan route answers 404 and the status never reports
//! a `PLAN:*` state except `PLAN:EXECUTING:OVERRIDDEN` while an override is active.
//!
//! | route | success | failures |
//! |---|---|---|
//! | `GET /vehicles/{id}/smart-charging-policy` | 200 policy (the default when none stored) | 404 |
//! | `PUT /vehicles/{id}/smart-charging-policy` (any of `isEnabled, deadline, minimumChargeLimit`) | 200 policy | 400, 404 |
//! | `GET /vehicles/{id}/smart-charging-status` | 200 status | 404 |
//! | `POST /vehicles/{id}/smart-override` | 200 override | 404 |
//! | `DELETE /vehicles/{id}/smart-override` | 200 ended override | 404 (also when none is active) |
//! | `GET /vehicles/{id}/smart-charging-plans/{planId}` | 200 plan | 404 |
//!
//! The status's `state`: `DISABLED` when the policy is off; `PLAN:EXECUTING:OVERRIDDEN`
//! while an override is active; `UNKNOWN` when none of the user's locations has a tariff (no
//! prices to plan with); `FULLY_CHARGED` when the snapshot says the vehicle is full or at its
//! charge limit; `CONSIDERING` otherwise (enabled, waiting for a plan). `stateChangedAt` is
//! the latest change of the inputs that decided the state (policy write, override start,
//! snapshot observation), so it is never earlier than the true change.
//!
//! Smart charging and schedules never control a vehicle together: enabling the policy
//! disables the vehicle's enabled schedules, and creating an enabled schedule for a vehicle
//! disables its policy (see [`disable_policy`]).

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use chrono::{DateTime, SecondsFormat, Utc};
use oemgate_core::VendorType;
use oemgate_store::{DeviceRecord, PageRequest, ResourceOwner, ResourceRecord, StoreError};
use serde_json::{Map, Value, json};

use crate::ApiState;
use crate::access;
use crate::auth::ClientId;
use crate::body::{object, only_fields};
use crate::openapi::{Op, Routes};
use crate::problem::Problem;
use crate::resources::put_retrying;
use crate::schedules::{self, hour_minute};
use crate::tariffs;

/// The resource kind of a vehicle's policy (id = vehicle id).
pub const POLICY_KIND: &str = "smart-charging-policy";
/// The resource kind of a vehicle's active smart override (id = vehicle id).
pub const OVERRIDE_KIND: &str = "smart-override";
/// The resource kind of smart-charging plans (made by the planner, a later issue).
pub const PLAN_KIND: &str = "smart-charging-plan";

fn timestamp(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn bad(detail: String) -> Problem {
    Problem::bad_request(detail)
}

fn default_policy() -> Value {
    json!({ "isEnabled": false, "deadline": null, "minimumChargeLimit": 0 })
}

/// The policy as served: the stored one, or the default (disabled) when none is stored.
pub fn served_policy(record: Option<&ResourceRecord>) -> Value {
    let Some(record) = record else { return default_policy() };
    json!({
        "isEnabled": record.body["isEnabled"],
        "deadline": record.body["deadline"],
        "minimumChargeLimit": record.body["minimumChargeLimit"],
    })
}

async fn vehicle(state: &ApiState, client: &ClientId, id: &str) -> Result<DeviceRecord, Problem> {
    access::device_for_client(state, client, VendorType::Vehicle, id).await
}

async fn snapshot_of(state: &ApiState, id: &str) -> Result<Value, Problem> {
    Ok(state.store.get_snapshot(id).await?.map_or(Value::Null, |s| s.resource))
}

/// Writes the policy of `vehicle` through compare-and-set, `change` editing the served
/// fields; returns the stored record.
async fn write_policy(
    state: &ApiState,
    vehicle: &DeviceRecord,
    client_id: &str,
    change: impl Fn(&mut Map<String, Value>),
) -> Result<ResourceRecord, Problem> {
    let id = &vehicle.device.id;
    let change = &change;
    put_retrying(state, "The policy of vehicle", id, || async move {
        let stored = state.store.get_resource(POLICY_KIND, id).await?;
        let mut body = served_policy(stored.as_ref()).as_object().cloned().unwrap_or_default();
        change(&mut body);
        body.insert("updatedAt".into(), Value::String(timestamp(state.clock.now())));
        let record = ResourceRecord {
            kind: POLICY_KIND.to_string(),
            id: id.clone(),
            user_id: vehicle.device.user_id.clone(),
            client_id: client_id.to_string(),
            created_at: state.clock.now(),
            version: 0,
            body: Value::Object(body),
        };
        Ok((record, stored.map_or(0, |s| s.version)))
    })
    .await
}

/// Turns smart charging off for a vehicle whose policy is on (a schedule takes over).
pub async fn disable_policy(state: &ApiState, vehicle: &DeviceRecord) -> Result<(), Problem> {
    let stored = state.store.get_resource(POLICY_KIND, &vehicle.device.id).await?;
    if let Some(stored) = stored
        && stored.body["isEnabled"].as_bool() == Some(true)
    {
        write_policy(state, vehicle, &stored.client_id, |body| {
            body.insert("isEnabled".into(), Value::Bool(false));
        })
        .await?;
    }
    Ok(())
}

async fn put_policy(
    state: &ApiState,
    client: &ClientId,
    id: &str,
    body: &Bytes,
) -> Result<Json<Value>, Problem> {
    let vehicle = vehicle(state, client, id).await?;
    let body = object(body)?;
    only_fields(&body, &["isEnabled", "deadline", "minimumChargeLimit"])?;
    let is_enabled = match body.get("isEnabled") {
        None => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(other) => {
            return Err(bad(format!("Field \"isEnabled\" must be a boolean, got {other}.")));
        }
    };
    let deadline = match body.get("deadline") {
        None => None,
        Some(value) => match value.as_str() {
            Some(text) if hour_minute(text).is_some() => Some(text.to_string()),
            _ => {
                return Err(bad(format!(
                    "Field \"deadline\" must be a time \"HH:MM\" (00:00 to 24:00), got {value}."
                )));
            }
        },
    };
    let minimum = match body.get("minimumChargeLimit") {
        None => None,
        Some(value) => match value.as_f64() {
            Some(n) if (0.0..=100.0).contains(&n) => Some(n),
            _ => {
                return Err(bad(format!(
                    "Field \"minimumChargeLimit\" must be a percentage from 0 to 100, got {value}."
                )));
            }
        },
    };
    let stored = state.store.get_resource(POLICY_KIND, id).await?;
    let current = served_policy(stored.as_ref());
    let enabled = is_enabled.unwrap_or(current["isEnabled"].as_bool().unwrap_or(false));
    let has_deadline = deadline.is_some() || current["deadline"].is_string();
    if enabled && !has_deadline {
        return Err(bad("Field \"deadline\" is required to enable smart charging.".into()));
    }
    let snapshot = snapshot_of(state, id).await?;
    let limit = snapshot["chargeState"]["chargeLimit"].as_f64();
    let effective_minimum = minimum.or(current["minimumChargeLimit"].as_f64()).unwrap_or(0.0);
    if let Some(limit) = limit
        && effective_minimum > limit
    {
        return Err(bad(format!(
            "Field \"minimumChargeLimit\" ({effective_minimum}) must not exceed the vehicle's charge limit ({limit})."
        )));
    }
    if enabled && !tariffs::user_has_tariff(state, &vehicle.device.user_id).await? {
        return Err(bad(
            "Field \"isEnabled\": cannot activate smart charging; the user has no location with a tariff (PUT /locations/{locationId}/tariff).".into(),
        ));
    }
    let record = write_policy(state, &vehicle, &client.0, |body| {
        if let Some(b) = is_enabled {
            body.insert("isEnabled".into(), Value::Bool(b));
        }
        if let Some(d) = &deadline {
            body.insert("deadline".into(), Value::String(d.clone()));
        }
        if let Some(m) = minimum {
            body.insert("minimumChargeLimit".into(), json!(m));
        }
    })
    .await?;
    if is_enabled == Some(true) {
        schedules::disable_for_target(state, &vehicle.device.user_id, id).await?;
    }
    Ok(Json(served_policy(Some(&record))))
}

/// The vehicle's active override as served (with `userId` and `vendor`), if any.
pub async fn active_override(state: &ApiState, vehicle_id: &str) -> Result<Option<Value>, Problem> {
    Ok(state.store.get_resource(OVERRIDE_KIND, vehicle_id).await?.map(|r| r.body))
}

async fn create_override(
    state: &ApiState,
    client: &ClientId,
    id: &str,
) -> Result<Json<Value>, Problem> {
    let vehicle = vehicle(state, client, id).await?;
    if let Some(active) = active_override(state, id).await? {
        // One override at a time; asking again answers the running one.
        return Ok(Json(active));
    }
    let now = state.clock.now();
    let body = json!({
        "createdAt": timestamp(now),
        "endedAt": null,
        "targetType": "vehicle",
        "targetId": id,
        // No vendor action is sent: executing overrides comes with the scheduler.
        "vendorActionId": null,
        "userId": vehicle.device.user_id,
        "vendor": vehicle.vendor,
    });
    let record = ResourceRecord {
        kind: OVERRIDE_KIND.to_string(),
        id: id.to_string(),
        user_id: vehicle.device.user_id.clone(),
        client_id: client.0.clone(),
        created_at: now,
        version: 0,
        body: body.clone(),
    };
    match state.store.put_resource(record, 0).await {
        Ok(_) => Ok(Json(body)),
        // Another request created it in between: answer that one.
        Err(StoreError::Conflict { .. }) => {
            Ok(Json(active_override(state, id).await?.unwrap_or(body)))
        }
        Err(err) => Err(err.into()),
    }
}

async fn end_override(
    state: &ApiState,
    client: &ClientId,
    id: &str,
) -> Result<Json<Value>, Problem> {
    vehicle(state, client, id).await?;
    let Some(mut active) = active_override(state, id).await? else {
        return Err(Problem::not_found(format!("No smart override exists for vehicle {id:?}.")));
    };
    if !state.store.delete_resource(OVERRIDE_KIND, id).await? {
        return Err(Problem::not_found(format!("No smart override exists for vehicle {id:?}.")));
    }
    active["endedAt"] = Value::String(timestamp(state.clock.now()));
    Ok(Json(active))
}

fn time_of(value: &Value) -> Option<DateTime<Utc>> {
    value.as_str().and_then(|s| DateTime::parse_from_rfc3339(s).ok()).map(|t| t.with_timezone(&Utc))
}

async fn status(state: &ApiState, client: &ClientId, id: &str) -> Result<Json<Value>, Problem> {
    let vehicle = vehicle(state, client, id).await?;
    let now = state.clock.now();
    let policy = state.store.get_resource(POLICY_KIND, id).await?;
    let enabled = policy.as_ref().is_some_and(|p| p.body["isEnabled"].as_bool() == Some(true));
    let policy_changed =
        policy.as_ref().and_then(|p| time_of(&p.body["updatedAt"])).unwrap_or(vehicle.created_at);
    let smart_override = active_override(state, id).await?;
    let snapshot = state.store.get_snapshot(id).await?;
    let observed = snapshot.as_ref().map_or(vehicle.created_at, |s| s.observed_at);
    let resource = snapshot.map_or(Value::Null, |s| s.resource);
    let charge = &resource["chargeState"];
    let full = charge["isFullyCharged"].as_bool() == Some(true)
        || matches!((charge["batteryLevel"].as_f64(), charge["chargeLimit"].as_f64()), (Some(l), Some(c)) if l >= c);
    let (state_name, changed_at) = if !enabled {
        ("DISABLED", policy_changed)
    } else if let Some(active) = &smart_override {
        ("PLAN:EXECUTING:OVERRIDDEN", time_of(&active["createdAt"]).unwrap_or(policy_changed))
    } else if !tariffs::user_has_tariff(state, &vehicle.device.user_id).await? {
        ("UNKNOWN", policy_changed)
    } else if full {
        ("FULLY_CHARGED", policy_changed.max(observed))
    } else {
        ("CONSIDERING", policy_changed.max(observed))
    };
    let consideration = if enabled {
        json!({
            "isPluggedIn": charge["isPluggedIn"].as_bool().unwrap_or(false),
            "isCharging": charge["isCharging"].as_bool().unwrap_or(false),
            // The vehicle is at one of its user's locations.
            "atChargingLocation": resource["location"]["id"].is_string(),
            "hasTimeEstimate": charge["chargeTimeRemaining"].is_number(),
        })
    } else {
        Value::Null
    };
    Ok(Json(json!({
        "updatedAt": timestamp(now),
        "vehicleId": id,
        "userId": vehicle.device.user_id,
        "vendor": vehicle.vendor,
        "state": state_name,
        "stateChangedAt": timestamp(changed_at),
        "consideration": consideration,
        "plan": null,
        "smartOverride": smart_override,
    })))
}

/// A plan of the vehicle by id, or its newest with `latest`; 404 when there is none (no
/// planner makes plans yet).
async fn plan(
    state: &ApiState,
    client: &ClientId,
    vehicle_id: &str,
    plan_id: &str,
) -> Result<Json<Value>, Problem> {
    let vehicle = vehicle(state, client, vehicle_id).await?;
    let missing = || {
        Problem::not_found(format!(
            "No smart charging plan {plan_id:?} was found for vehicle {vehicle_id:?}."
        ))
    };
    if plan_id == "latest" {
        let mut request =
            PageRequest { page_size: oemgate_store::MAX_PAGE_SIZE, ..PageRequest::default() };
        loop {
            let page = state
                .store
                .list_resources(
                    PLAN_KIND,
                    &ResourceOwner::User(vehicle.device.user_id.clone()),
                    &request,
                )
                .await?;
            if let Some(found) =
                page.items.into_iter().find(|p| p.body["vehicleId"].as_str() == Some(vehicle_id))
            {
                return Ok(Json(found.body));
            }
            match page.after {
                Some(after) => request.after = Some(after),
                None => return Err(missing()),
            }
        }
    }
    match state.store.get_resource(PLAN_KIND, plan_id).await? {
        Some(found)
            if found.client_id == client.0
                && found.body["vehicleId"].as_str() == Some(vehicle_id) =>
        {
            Ok(Json(found.body))
        }
        _ => Err(missing()),
    }
}

/// The smart-charging routes.
pub fn routes() -> Routes {
    let policy = json!({
        "type": "object",
        "required": ["isEnabled", "deadline", "minimumChargeLimit"],
        "properties": {
            "isEnabled": {"type": "boolean"},
            "deadline": {"type": ["string", "null"], "description": "HH:MM, local time."},
            "minimumChargeLimit": {"type": "number", "minimum": 0, "maximum": 100}
        }
    });
    let policy_body = json!({
        "type": "object",
        "additionalProperties": false,
        "properties": {
            "isEnabled": {"type": "boolean"},
            "deadline": {"type": ["string", "null"], "description": "HH:MM, local time."},
            "minimumChargeLimit": {"type": "number", "minimum": 0, "maximum": 100}
        }
    });
    let smart_override = json!({
        "type": "object",
        "required": ["createdAt", "endedAt", "targetType", "targetId", "vendorActionId", "userId", "vendor"],
        "properties": {
            "createdAt": {"type": "string", "format": "date-time"},
            "endedAt": {"type": ["string", "null"], "format": "date-time"},
            "targetType": {"type": "string", "enum": ["vehicle"]},
            "targetId": {"type": "string"},
            "vendorActionId": {"type": ["string", "null"]},
            "userId": {"type": "string"},
            "vendor": {"type": "string"}
        }
    });
    let status_schema = json!({
        "type": "object",
        "required": ["updatedAt", "vehicleId", "userId", "vendor", "state", "stateChangedAt",
                     "consideration", "plan", "smartOverride"],
        "properties": {
            "updatedAt": {"type": "string", "format": "date-time"},
            "vehicleId": {"type": "string"},
            "userId": {"type": "string"},
            "vendor": {"type": "string"},
            "state": {"type": "string"},
            "stateChangedAt": {"type": "string", "format": "date-time"},
            "consideration": {"type": ["object", "null"]},
            "plan": {"type": ["object", "null"]},
            "smartOverride": {"oneOf": [{"type": "null"}, crate::openapi::schema_ref("SmartOverride")]}
        }
    });
    let vehicle_id = ("vehicleId", "ID of the vehicle.");
    Routes::new()
        .get(
            "/vehicles/{vehicleId}/smart-charging-policy",
            Op::new(
                "getSmartChargingPolicy",
                "Smart charging",
                "Get a vehicle's smart-charging policy",
            )
            .path(vehicle_id.0, vehicle_id.1)
            .with_schema("SmartChargingPolicy", policy)
            .ok_schema(
                200,
                "The policy (the default while none is stored).",
                policy_ref(),
            ),
            |State(state): State<ApiState>, client: ClientId, Path(id): Path<String>| async move {
                vehicle(&state, &client, &id).await?;
                let stored = state.store.get_resource(POLICY_KIND, &id).await?;
                Ok::<_, Problem>(Json(served_policy(stored.as_ref())))
            },
        )
        .put(
            "/vehicles/{vehicleId}/smart-charging-policy",
            Op::new(
                "putSmartChargingPolicy",
                "Smart charging",
                "Update a vehicle's smart-charging policy",
            )
            .path(vehicle_id.0, vehicle_id.1)
            .body_schema(policy_body)
            .ok_schema(200, "The policy.", policy_ref())
            .problems(&[409]),
            |State(state): State<ApiState>,
             client: ClientId,
             Path(id): Path<String>,
             body: Bytes| async move { put_policy(&state, &client, &id, &body).await },
        )
        .get(
            "/vehicles/{vehicleId}/smart-charging-status",
            Op::new(
                "getSmartChargingStatus",
                "Smart charging",
                "Get a vehicle's smart-charging status",
            )
            .path(vehicle_id.0, vehicle_id.1)
            .with_schema("SmartOverride", smart_override)
            .ok_schema(200, "The status.", status_schema),
            |State(state): State<ApiState>, client: ClientId, Path(id): Path<String>| async move {
                status(&state, &client, &id).await
            },
        )
        .post(
            "/vehicles/{vehicleId}/smart-override",
            Op::new(
                "createSmartOverride",
                "Smart charging",
                "Charge now, overriding smart charging",
            )
            .path(vehicle_id.0, vehicle_id.1)
            .ok_schema(200, "The active override.", override_ref()),
            |State(state): State<ApiState>, client: ClientId, Path(id): Path<String>| async move {
                create_override(&state, &client, &id).await
            },
        )
        .delete(
            "/vehicles/{vehicleId}/smart-override",
            Op::new("endSmartOverride", "Smart charging", "End a smart override")
                .path(vehicle_id.0, vehicle_id.1)
                .ok_schema(200, "The ended override.", override_ref()),
            |State(state): State<ApiState>, client: ClientId, Path(id): Path<String>| async move {
                end_override(&state, &client, &id).await
            },
        )
        .get(
            "/vehicles/{vehicleId}/smart-charging-plans/{smartChargingPlanId}",
            Op::new("getSmartChargingPlan", "Smart charging", "Get a smart-charging plan")
                .describe("`latest` names the newest plan. No planner makes plans yet: 404.")
                .path(vehicle_id.0, vehicle_id.1)
                .path("smartChargingPlanId", "ID of the plan, or `latest`.")
                .ok_schema(200, "The plan.", json!({"type": "object"})),
            |State(state): State<ApiState>,
             client: ClientId,
             Path((id, plan_id)): Path<(String, String)>| async move {
                plan(&state, &client, &id, &plan_id).await
            },
        )
}

fn policy_ref() -> Value {
    crate::openapi::schema_ref("SmartChargingPolicy")
}

fn override_ref() -> Value {
    crate::openapi::schema_ref("SmartOverride")
}
