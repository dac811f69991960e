//! Schedules: per-device rules saying when a vehicle or charger should charge (CHARGE) or
//! which temperature an HVAC unit should hold (TEMPERATURE), stored as resources. They are
//! only stored and reported here; carrying them out is the scheduler's job (a later issue).
//!
//! | route | success | failures |
//! |---|---|---|
//! | `GET /users/{userId}/schedules` | 200 the user's schedules, paginated | 400, 404 |
//! | `POST /users/{userId}/schedules` (a whole schedule) | 200 schedule | 400, 404 |
//! | `GET /schedules/{scheduleId}` | 200 schedule | 404 |
//! | `PUT /schedules/{scheduleId}` (any of the fields) | 200 schedule | 400, 404 |
//! | `DELETE /schedules/{scheduleId}` | 204 | 404 |
//! | `GET /schedules/{scheduleId}/status` | 200 status at the clock's now | 404 |
//!
//! A rule applies at an instant when every filter it has matches: `weekdays` (0 = Monday)
//! and `hourMinute` (`from` inclusive, `to` exclusive, wrapping over midnight when `from` is
//! later than `to`) are read in the local time of the schedule's location (a charge
//! schedule's `locationId`, else the location the target device is assigned to; UTC
//! without either), and
//! `fromTimestamp` (inclusive) / `toTimestamp` (exclusive) are instants. The first rule that
//! applies decides; when none does, the default (`defaultShouldCharge` /
//! `defaultTargetState`) holds.
//!
//! The status (`GET /schedules/{id}/status`) evaluates that at the clock's now against the
//! target's stored snapshot. CHARGE: `shouldCharge` is the schedule's outcome, `isPluggedIn`
//! and `isCharging` come from the snapshot's `chargeState` (false without one), `needsCharge`
//! is "below the charge limit and not full" for vehicles and always true for chargers (a
//! charger cannot know); `state` is `INACTIVE:DISABLED` when disabled, `INACTIVE:OVERRIDDEN`
//! during a smart override, `INACTIVE:INCAPABLE` when the snapshot is missing or says the
//! device cannot start or stop charging, else `ALIGNED` when `isCharging` equals
//! `isChargingExpected` and `MISALIGNED` otherwise. TEMPERATURE: `current` is read from the
//! snapshot's `thermostatState`, `expected` is the outcome, and `state` compares them the
//! same way. `PENDING` and `INACTIVE:AWAY` are never reported: no executor acts on schedules
//! yet, and nothing tells a vehicle's presence at the location. `upcomingTransitions` lists
//! every change of the outcome within the next 7 days; `changedAt` is the last change within
//! the past 7 days, but not before the schedule was last written.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use chrono::{DateTime, Datelike, Duration, SecondsFormat, Timelike, Utc};
use oemgate_core::VendorType;
use oemgate_store::{PageRequest, ResourceOwner, ResourceRecord, StoreError};
use serde_json::{Map, Value, json};

use crate::ApiState;
use crate::access;
use crate::auth::ClientId;
use crate::body::{object, only_fields};
use crate::devices;
use crate::locations;
use crate::openapi::{Op, Routes};
use crate::pagination::{PageQuery, Paginated, PaginationCursors};
use crate::problem::Problem;
use crate::resources::put_retrying;
use crate::smart_charging;

/// The resource kind of schedules.
pub const KIND: &str = "schedule";

const CHARGE_FIELDS: [&str; 6] =
    ["targetId", "locationId", "targetType", "isEnabled", "defaultShouldCharge", "rules"];
const TEMPERATURE_FIELDS: [&str; 5] =
    ["targetId", "targetType", "isEnabled", "defaultTargetState", "rules"];
const FILTER_FIELDS: [&str; 4] = ["hourMinute", "fromTimestamp", "toTimestamp", "weekdays"];

/// How far ahead `upcomingTransitions` and how far back `changedAt` look.
const HORIZON_MINUTES: i64 = 7 * 24 * 60;

fn timestamp(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn bad(detail: String) -> Problem {
    Problem::bad_request(detail)
}

/// Minutes since midnight of an `HH:MM` clock time (`24:00` is 1440); `None` when malformed.
pub fn hour_minute(text: &str) -> Option<u32> {
    let (hours, minutes) = text.split_once(':')?;
    if hours.len() != 2 || minutes.len() != 2 {
        return None;
    }
    let hours: u32 = hours.parse().ok()?;
    let minutes: u32 = minutes.parse().ok()?;
    match (hours, minutes) {
        (24, 0) => Some(1440),
        (0..=23, 0..=59) => Some(hours * 60 + minutes),
        _ => None,
    }
}

/// An `HH:MM` string field at `path`; 400 naming it otherwise.
pub fn hour_minute_field(value: Option<&Value>, path: &str) -> Result<u32, Problem> {
    match value {
        None => Err(bad(format!("Field \"{path}\" is required."))),
        Some(v) => v.as_str().and_then(hour_minute).ok_or_else(|| {
            bad(format!("Field \"{path}\" must be a time \"HH:MM\" (00:00 to 24:00), got {v}."))
        }),
    }
}

/// Weekdays 0 (Monday) to 6 (Sunday) at `path`.
pub fn weekdays_field(value: &Value, path: &str) -> Result<Vec<u32>, Problem> {
    let items = value
        .as_array()
        .ok_or_else(|| bad(format!("Field \"{path}\" must be an array of weekdays 0 to 6.")))?;
    items
        .iter()
        .enumerate()
        .map(|(i, item)| match item.as_u64() {
            Some(day @ 0..=6) => Ok(day as u32),
            _ => Err(bad(format!(
                "Field \"{path}[{i}]\" must be a weekday from 0 (Monday) to 6 (Sunday), got {item}."
            ))),
        })
        .collect()
}

fn boolean(body: &Map<String, Value>, field: &str, path: &str) -> Result<bool, Problem> {
    match body.get(field) {
        None => Err(bad(format!("Field \"{path}\" is required."))),
        Some(Value::Bool(b)) => Ok(*b),
        Some(other) => Err(bad(format!("Field \"{path}\" must be a boolean, got {other}."))),
    }
}

fn instant(value: &Value, path: &str) -> Result<DateTime<Utc>, Problem> {
    value
        .as_str()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc))
        .ok_or_else(|| bad(format!("Field \"{path}\" must be an RFC 3339 date-time, got {value}.")))
}

fn number(body: &Map<String, Value>, field: &str, path: &str) -> Result<(), Problem> {
    match body.get(field) {
        Some(v) if v.is_number() => Ok(()),
        Some(v) => Err(bad(format!("Field \"{path}.{field}\" must be a number, got {v}."))),
        None => Err(bad(format!("Field \"{path}.{field}\" is required."))),
    }
}

/// Checks a temperature target state (`COOL`, `HEAT`, `AUTO`, `OFF` permanent holds, or
/// `{holdType: SCHEDULED}` to follow the device's own schedule).
fn target_state(value: Option<&Value>, path: &str) -> Result<(), Problem> {
    let Some(value) = value else { return Err(bad(format!("Field \"{path}\" is required."))) };
    let Some(state) = value.as_object() else {
        return Err(bad(format!("Field \"{path}\" must be an object, got {value}.")));
    };
    let hold = state.get("holdType").and_then(Value::as_str);
    let fields: &[&str] = match (hold, state.get("mode").and_then(Value::as_str)) {
        (Some("SCHEDULED"), _) => &["holdType"],
        (Some("PERMANENT"), Some("COOL")) => &["holdType", "mode", "coolSetpoint"],
        (Some("PERMANENT"), Some("HEAT")) => &["holdType", "mode", "heatSetpoint"],
        (Some("PERMANENT"), Some("AUTO")) => &["holdType", "mode", "coolSetpoint", "heatSetpoint"],
        (Some("PERMANENT"), Some("OFF")) => &["holdType", "mode"],
        (Some("PERMANENT"), _) => {
            return Err(bad(format!(
                "Field \"{path}.mode\" must be one of COOL, HEAT, AUTO, OFF, got {}.",
                state.get("mode").unwrap_or(&Value::Null)
            )));
        }
        _ => {
            return Err(bad(format!(
                "Field \"{path}.holdType\" must be PERMANENT or SCHEDULED, got {}.",
                state.get("holdType").unwrap_or(&Value::Null)
            )));
        }
    };
    if let Some(key) = state.keys().find(|k| !fields.contains(&k.as_str())) {
        return Err(bad(format!(
            "Field \"{path}.{key}\" is not allowed here; allowed fields: {}.",
            fields.join(", ")
        )));
    }
    for setpoint in fields.iter().filter(|f| f.ends_with("Setpoint")) {
        number(state, setpoint, path)?;
    }
    Ok(())
}

fn rules(value: Option<&Value>, charge: bool) -> Result<(), Problem> {
    let Some(value) = value else { return Err(bad("Field \"rules\" is required.".into())) };
    let Some(items) = value.as_array() else {
        return Err(bad(format!("Field \"rules\" must be an array, got {value}.")));
    };
    let outcome = if charge { "shouldCharge" } else { "targetState" };
    for (i, item) in items.iter().enumerate() {
        let path = format!("rules[{i}]");
        let Some(rule) = item.as_object() else {
            return Err(bad(format!("Field \"{path}\" must be an object, got {item}.")));
        };
        if let Some(key) =
            rule.keys().find(|k| *k != outcome && !FILTER_FIELDS.contains(&k.as_str()))
        {
            return Err(bad(format!(
                "Field \"{path}.{key}\" is not allowed; allowed fields: {}, {outcome}.",
                FILTER_FIELDS.join(", ")
            )));
        }
        if let Some(window) = rule.get("hourMinute") {
            let Some(window) = window.as_object() else {
                return Err(bad(format!(
                    "Field \"{path}.hourMinute\" must be an object {{from, to}}."
                )));
            };
            if let Some(key) = window.keys().find(|k| *k != "from" && *k != "to") {
                return Err(bad(format!("Field \"{path}.hourMinute.{key}\" is not allowed.")));
            }
            hour_minute_field(window.get("from"), &format!("{path}.hourMinute.from"))?;
            hour_minute_field(window.get("to"), &format!("{path}.hourMinute.to"))?;
        }
        let from = rule.get("fromTimestamp").map(|v| instant(v, &format!("{path}.fromTimestamp")));
        let to = rule.get("toTimestamp").map(|v| instant(v, &format!("{path}.toTimestamp")));
        if let (Some(from), Some(to)) = (from.transpose()?, to.transpose()?)
            && from >= to
        {
            return Err(bad(format!(
                "Field \"{path}.toTimestamp\" must be later than \"{path}.fromTimestamp\"."
            )));
        }
        if let Some(days) = rule.get("weekdays") {
            weekdays_field(days, &format!("{path}.weekdays"))?;
        }
        if charge {
            boolean(rule, "shouldCharge", &format!("{path}.shouldCharge"))?;
        } else {
            target_state(rule.get("targetState"), &format!("{path}.targetState"))?;
        }
    }
    Ok(())
}

fn target_type(value: Option<&Value>) -> Result<VendorType, Problem> {
    match value.and_then(Value::as_str) {
        Some("vehicle") => Ok(VendorType::Vehicle),
        Some("charger") => Ok(VendorType::Charger),
        Some("hvac") => Ok(VendorType::Hvac),
        _ => Err(bad(format!(
            "Field \"targetType\" must be one of vehicle, charger, hvac, got {}.",
            value.unwrap_or(&Value::Null)
        ))),
    }
}

/// Validates a whole schedule body (every field present) of `user_id` and returns it in
/// the served field order, without `id`.
async fn validated(
    state: &ApiState,
    client: &ClientId,
    user_id: &str,
    body: &Map<String, Value>,
) -> Result<Map<String, Value>, Problem> {
    let kind = target_type(body.get("targetType"))?;
    let charge = kind != VendorType::Hvac;
    let allowed: &[&str] = if charge { &CHARGE_FIELDS } else { &TEMPERATURE_FIELDS };
    only_fields(body, allowed)?;
    for field in allowed {
        if !body.contains_key(*field) {
            return Err(bad(format!("Field \"{field}\" is required.")));
        }
    }
    let target_id = match body.get("targetId") {
        Some(Value::String(id)) if !id.is_empty() => id.clone(),
        other => {
            return Err(bad(format!(
                "Field \"targetId\" must be a non-empty device id, got {}.",
                other.unwrap_or(&Value::Null)
            )));
        }
    };
    let is_enabled = boolean(body, "isEnabled", "isEnabled")?;
    let default = if charge {
        Value::Bool(boolean(body, "defaultShouldCharge", "defaultShouldCharge")?)
    } else {
        target_state(body.get("defaultTargetState"), "defaultTargetState")?;
        body.get("defaultTargetState").cloned().unwrap_or(Value::Null)
    };
    rules(body.get("rules"), charge)?;
    let location_id = if charge {
        match body.get("locationId") {
            Some(Value::Null) | None => Value::Null,
            Some(Value::String(id)) if uuid::Uuid::parse_str(id).is_ok() => {
                let location = state.store.get_resource(locations::KIND, id).await?;
                if location.is_none_or(|l| l.client_id != client.0 || l.user_id != user_id) {
                    return Err(bad(format!(
                        "Field \"locationId\": no location {id:?} belongs to the user."
                    )));
                }
                Value::String(id.clone())
            }
            Some(other) => {
                return Err(bad(format!(
                    "Field \"locationId\" must be a location id (uuid) or null, got {other}."
                )));
            }
        }
    } else {
        Value::Null
    };
    // The target must be a device of that type belonging to this very user.
    let owned = match access::device_for_client(state, client, kind, &target_id).await {
        Ok(device) => device.device.user_id == user_id,
        Err(_) => false,
    };
    if !owned {
        return Err(bad(format!(
            "Field \"targetId\": no {} {target_id:?} belongs to the user.",
            kind.as_str()
        )));
    }
    let mut out = Map::new();
    out.insert("targetType".into(), Value::String(kind.as_str().to_string()));
    out.insert("targetId".into(), Value::String(target_id));
    if charge {
        out.insert("locationId".into(), location_id);
    }
    out.insert("isEnabled".into(), Value::Bool(is_enabled));
    out.insert(if charge { "defaultShouldCharge" } else { "defaultTargetState" }.into(), default);
    out.insert("rules".into(), body.get("rules").cloned().unwrap_or_else(|| json!([])));
    Ok(out)
}

/// The stored body carries `updatedAt` for the status's `changedAt`; it is not served.
fn served(record: &ResourceRecord) -> Value {
    let mut body = record.body.clone();
    if let Value::Object(map) = &mut body {
        map.remove("updatedAt");
    }
    body
}

fn record_of(
    id: &str,
    user_id: &str,
    client: &ClientId,
    now: DateTime<Utc>,
    fields: Map<String, Value>,
) -> ResourceRecord {
    let mut body = Map::new();
    body.insert("id".into(), Value::String(id.to_string()));
    body.extend(fields);
    body.insert("updatedAt".into(), Value::String(timestamp(now)));
    ResourceRecord {
        kind: KIND.to_string(),
        id: id.to_string(),
        user_id: user_id.to_string(),
        client_id: client.0.clone(),
        created_at: now,
        version: 0,
        body: Value::Object(body),
    }
}

async fn create(
    state: &ApiState,
    client: &ClientId,
    user_id: &str,
    body: &Bytes,
) -> Result<Json<Value>, Problem> {
    let user = access::user_for_client(state, client, user_id).await?;
    let body = object(body)?;
    let fields = validated(state, client, &user.id, &body).await?;
    let id = uuid::Uuid::new_v4().to_string();
    let takes_over = fields.get("targetType").and_then(Value::as_str) == Some("vehicle")
        && fields.get("isEnabled").and_then(Value::as_bool) == Some(true);
    let target = fields.get("targetId").and_then(Value::as_str).unwrap_or_default().to_string();
    let record = record_of(&id, &user.id, client, state.clock.now(), fields);
    state.store.put_resource(record.clone(), 0).await?;
    if takes_over {
        // One controller at a time: an enabled schedule ends the vehicle's smart charging.
        let vehicle =
            access::device_for_client(state, client, VendorType::Vehicle, &target).await?;
        smart_charging::disable_policy(state, &vehicle).await?;
    }
    Ok(Json(served(&record)))
}

/// Disables the user's enabled schedules of `target_id` (smart charging takes over).
pub async fn disable_for_target(
    state: &ApiState,
    user_id: &str,
    target_id: &str,
) -> Result<(), Problem> {
    rewrite_where(state, user_id, |body| {
        if body["targetId"].as_str() != Some(target_id) || body["isEnabled"] != Value::Bool(true) {
            return false;
        }
        body["isEnabled"] = Value::Bool(false);
        true
    })
    .await
}

/// Sets `locationId` to null in the user's schedules that named the deleted location.
pub async fn forget_location(
    state: &ApiState,
    user_id: &str,
    location_id: &str,
) -> Result<(), Problem> {
    rewrite_where(state, user_id, |body| {
        if body["locationId"].as_str() != Some(location_id) {
            return false;
        }
        body["locationId"] = Value::Null;
        true
    })
    .await
}

/// Rewrites every schedule of the user that `change` changed (it answers whether it did).
async fn rewrite_where(
    state: &ApiState,
    user_id: &str,
    change: impl Fn(&mut Value) -> bool,
) -> Result<(), Problem> {
    let owner = ResourceOwner::User(user_id.to_string());
    let mut request =
        PageRequest { page_size: oemgate_store::MAX_PAGE_SIZE, ..PageRequest::default() };
    loop {
        let page = state.store.list_resources(KIND, &owner, &request).await?;
        for mut record in page.items {
            if !change(&mut record.body) {
                continue;
            }
            let expected = record.version;
            record.body["updatedAt"] = Value::String(timestamp(state.clock.now()));
            match state.store.put_resource(record, expected).await {
                // A concurrent write won; it is the user's newer intent.
                Ok(_) | Err(StoreError::Conflict { .. }) => {}
                Err(err) => return Err(err.into()),
            }
        }
        match page.after {
            Some(after) => request.after = Some(after),
            None => return Ok(()),
        }
    }
}

async fn get_schedule(
    state: &ApiState,
    client: &ClientId,
    id: &str,
) -> Result<ResourceRecord, Problem> {
    access::resource_for_client(state, client, KIND, "schedule", id).await
}

/// `PUT /schedules/{id}`: the given fields replace the stored ones and the result is
/// validated as a whole; switching between charge and temperature targets drops the fields
/// the other kind does not have, so the body must then supply the new kind's fields.
async fn update(
    state: &ApiState,
    client: &ClientId,
    id: &str,
    body: &Bytes,
) -> Result<Json<Value>, Problem> {
    let partial = &object(body)?;
    let mut union: Vec<&str> = CHARGE_FIELDS.to_vec();
    union.push("defaultTargetState");
    only_fields(partial, &union)?;
    let record = put_retrying(state, "Schedule", id, || async move {
        let stored = get_schedule(state, client, id).await?;
        let mut merged = stored.body.as_object().cloned().unwrap_or_default();
        merged.remove("id");
        merged.remove("updatedAt");
        let new_type = partial.get("targetType").or(merged.get("targetType")).cloned();
        let charge = new_type.as_ref().and_then(Value::as_str) != Some("hvac");
        let allowed: &[&str] = if charge { &CHARGE_FIELDS } else { &TEMPERATURE_FIELDS };
        merged.retain(|key, _| allowed.contains(&key.as_str()));
        merged.extend(partial.clone());
        let fields = validated(state, client, &stored.user_id, &merged).await?;
        let mut record = record_of(id, &stored.user_id, client, state.clock.now(), fields);
        record.created_at = stored.created_at;
        Ok((record, stored.version))
    })
    .await?;
    Ok(Json(served(&record)))
}

async fn delete(state: &ApiState, client: &ClientId, id: &str) -> Result<StatusCode, Problem> {
    get_schedule(state, client, id).await?;
    state.store.delete_resource(KIND, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A rule read once for evaluating it at many instants.
struct Rule {
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    weekdays: Option<Vec<u32>>,
    window: Option<(u32, u32)>,
    outcome: Value,
}

/// A stored schedule read once: its rules in order, the default and the local zone.
struct Compiled {
    rules: Vec<Rule>,
    default: Value,
    zone: chrono_tz::Tz,
}

fn instant_of(value: Option<&Value>) -> Option<DateTime<Utc>> {
    value
        .and_then(Value::as_str)
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc))
}

impl Compiled {
    fn new(schedule: &Map<String, Value>, zone: chrono_tz::Tz) -> Self {
        let charge = schedule.get("targetType").and_then(Value::as_str) != Some("hvac");
        let (field, default) = if charge {
            ("shouldCharge", "defaultShouldCharge")
        } else {
            ("targetState", "defaultTargetState")
        };
        let rules = schedule
            .get("rules")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|rule| Rule {
                from: instant_of(rule.get("fromTimestamp")),
                to: instant_of(rule.get("toTimestamp")),
                weekdays: rule
                    .get("weekdays")
                    .and_then(Value::as_array)
                    .map(|days| days.iter().filter_map(|d| d.as_u64()).map(|d| d as u32).collect()),
                window: rule.get("hourMinute").and_then(|w| {
                    let edge = |f: &str| w.get(f).and_then(Value::as_str).and_then(hour_minute);
                    Some((edge("from")?, edge("to")?))
                }),
                outcome: rule.get(field).cloned().unwrap_or(Value::Null),
            })
            .collect();
        Self { rules, default: schedule.get(default).cloned().unwrap_or(Value::Null), zone }
    }

    /// The outcome the schedule asks for at `at`: the first applying rule's, else the
    /// default.
    fn outcome(&self, at: DateTime<Utc>) -> &Value {
        let local = at.with_timezone(&self.zone);
        let weekday = local.weekday().num_days_from_monday();
        let minute = local.hour() * 60 + local.minute();
        let applies = |rule: &&Rule| {
            rule.from.is_none_or(|from| at >= from)
                && rule.to.is_none_or(|to| at < to)
                && rule.weekdays.as_ref().is_none_or(|days| days.contains(&weekday))
                && rule.window.is_none_or(|(from, to)| {
                    // `to` is exclusive; a window ending before it starts wraps midnight.
                    if from <= to {
                        (from..to).contains(&minute)
                    } else {
                        minute >= from || minute < to
                    }
                })
        };
        self.rules.iter().find(applies).map_or(&self.default, |rule| &rule.outcome)
    }

    /// The instants the outcome may change in `(from, to]`: every whole minute (wall-clock
    /// rules move on whole minutes in every zone) and the rules' own timestamps.
    fn candidates(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<DateTime<Utc>> {
        let mut out = Vec::new();
        let first = from.with_second(0).and_then(|t| t.with_nanosecond(0)).unwrap_or(from);
        let mut t = first + Duration::minutes(1);
        while t <= to {
            out.push(t);
            t += Duration::minutes(1);
        }
        for rule in &self.rules {
            out.extend(
                [rule.from, rule.to].into_iter().flatten().filter(|at| *at > from && *at <= to),
            );
        }
        out.sort();
        out.dedup();
        out
    }
}

/// The zone the schedule's wall-clock rules are read in.
async fn zone_of(
    state: &ApiState,
    schedule: &Map<String, Value>,
) -> Result<chrono_tz::Tz, Problem> {
    let location_id = match schedule.get("locationId").and_then(Value::as_str) {
        Some(id) => Some(id.to_string()),
        None => match schedule.get("targetId").and_then(Value::as_str) {
            Some(target) => {
                state.store.get_resource(locations::DEVICE_LOCATION_KIND, target).await?.and_then(
                    |a| a.body.get("locationId").and_then(Value::as_str).map(str::to_string),
                )
            }
            None => None,
        },
    };
    let Some(location_id) = location_id else { return Ok(chrono_tz::UTC) };
    let location = state.store.get_resource(locations::KIND, &location_id).await?;
    Ok(location
        .and_then(|l| {
            l.body.get("timezoneName").and_then(Value::as_str).and_then(|z| z.parse().ok())
        })
        .unwrap_or(chrono_tz::UTC))
}

/// The device's current temperature target from its snapshot's thermostat state.
fn current_target(snapshot: &Value) -> Value {
    let thermostat = &snapshot["thermostatState"];
    match thermostat["holdType"].as_str() {
        Some("SCHEDULED") => json!({ "holdType": "SCHEDULED" }),
        Some("PERMANENT") => match thermostat["mode"].as_str() {
            Some("COOL") => {
                json!({ "coolSetpoint": thermostat["coolSetpoint"], "mode": "COOL", "holdType": "PERMANENT" })
            }
            Some("HEAT") => {
                json!({ "heatSetpoint": thermostat["heatSetpoint"], "mode": "HEAT", "holdType": "PERMANENT" })
            }
            Some("AUTO") => json!({
                "coolSetpoint": thermostat["coolSetpoint"], "heatSetpoint": thermostat["heatSetpoint"],
                "mode": "AUTO", "holdType": "PERMANENT"
            }),
            Some("OFF") => json!({ "mode": "OFF", "holdType": "PERMANENT" }),
            _ => Value::Null,
        },
        _ => Value::Null,
    }
}

fn same_target(a: &Value, b: &Value) -> bool {
    // Setpoints compare as numbers (21 and 21.0 are the same setpoint).
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter().all(|(k, v)| {
                    y.get(k).is_some_and(|w| match (v.as_f64(), w.as_f64()) {
                        (Some(p), Some(q)) => (p - q).abs() < 1e-9,
                        _ => v == w,
                    })
                })
        }
        _ => a == b,
    }
}

/// `GET /schedules/{id}/status`, derived at the clock's now (see the module docs for rules).
async fn status(state: &ApiState, client: &ClientId, id: &str) -> Result<Json<Value>, Problem> {
    let record = get_schedule(state, client, id).await?;
    let schedule = record.body.as_object().cloned().unwrap_or_default();
    let now = state.clock.now();
    let zone = zone_of(state, &schedule).await?;
    let target_id = schedule.get("targetId").and_then(Value::as_str).unwrap_or_default();
    let snapshot = state.store.get_snapshot(target_id).await?.map(|s| s.resource);
    let compiled = Compiled::new(&schedule, zone);
    let expected = compiled.outcome(now).clone();
    // changedAt: the latest instant within the horizon at which the outcome became what it
    // is now, but never before the schedule was last written.
    let updated_at = schedule
        .get("updatedAt")
        .and_then(Value::as_str)
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map_or(record.created_at, |t| t.with_timezone(&Utc));
    let back = (now - Duration::minutes(HORIZON_MINUTES)).max(updated_at);
    let mut changed_at = back;
    for at in compiled.candidates(back, now) {
        if compiled.outcome(at - Duration::milliseconds(1)) != compiled.outcome(at) {
            changed_at = at;
        }
    }
    let mut transitions = Vec::new();
    let mut last = &expected;
    for at in compiled.candidates(now, now + Duration::minutes(HORIZON_MINUTES)) {
        let next = compiled.outcome(at);
        if next != last {
            transitions.push((at, next.clone()));
            last = next;
        }
    }
    let enabled = schedule.get("isEnabled").and_then(Value::as_bool).unwrap_or(false);
    let charge = schedule.get("targetType").and_then(Value::as_str) != Some("hvac");
    if charge {
        let should_charge = expected.as_bool().unwrap_or(false);
        let charge_state =
            snapshot.as_ref().map(|s| s["chargeState"].clone()).unwrap_or(Value::Null);
        let is_charging = charge_state["isCharging"].as_bool().unwrap_or(false);
        let is_plugged_in = charge_state["isPluggedIn"].as_bool().unwrap_or(false);
        // A vehicle needs charge below its charge limit; a charger cannot tell, so it
        // always does (the car behind it decides).
        let needs_charge = match schedule.get("targetType").and_then(Value::as_str) {
            Some("vehicle") => {
                !charge_state["isFullyCharged"].as_bool().unwrap_or(false)
                    && match (
                        charge_state["batteryLevel"].as_f64(),
                        charge_state["chargeLimit"].as_f64(),
                    ) {
                        (Some(level), Some(limit)) => level < limit,
                        _ => true,
                    }
            }
            _ => true,
        };
        let expected_charging = needs_charge && is_plugged_in && should_charge;
        let override_body = smart_charging::active_override(state, target_id).await?;
        let override_active = override_body.is_some();
        let capable = snapshot.as_ref().is_some_and(|s| {
            s["capabilities"]["startCharging"]["isCapable"].as_bool().unwrap_or(true)
                && s["capabilities"]["stopCharging"]["isCapable"].as_bool().unwrap_or(true)
        });
        let state_name = if !enabled {
            "INACTIVE:DISABLED"
        } else if override_active {
            "INACTIVE:OVERRIDDEN"
        } else if !capable {
            "INACTIVE:INCAPABLE"
        } else if is_charging == expected_charging {
            "ALIGNED"
        } else {
            "MISALIGNED"
        };
        Ok(Json(json!({
            "scheduleId": record.id,
            "scheduleType": "CHARGE",
            "changedAt": timestamp(changed_at),
            "state": state_name,
            "isCharging": is_charging,
            "isChargingExpected": expected_charging,
            "isChargingExpectedParts": {
                "needsCharge": needs_charge,
                "isPluggedIn": is_plugged_in,
                "shouldCharge": should_charge,
            },
            "upcomingTransitions": transitions
                .iter()
                .map(|(at, v)| json!({ "at": timestamp(*at), "shouldCharge": v.as_bool().unwrap_or(false) }))
                .collect::<Vec<_>>(),
            "smartOverride": override_body.unwrap_or(Value::Null),
        })))
    } else {
        let current = snapshot.as_ref().map_or(Value::Null, current_target);
        let state_name = if !enabled {
            "INACTIVE:DISABLED"
        } else if snapshot.is_none() {
            "INACTIVE:INCAPABLE"
        } else if same_target(&current, &expected) {
            "ALIGNED"
        } else {
            "MISALIGNED"
        };
        Ok(Json(json!({
            "scheduleId": record.id,
            "scheduleType": "TEMPERATURE",
            "changedAt": timestamp(changed_at),
            "state": state_name,
            "current": current,
            "expected": expected,
            "upcomingTransitions": transitions
                .iter()
                .map(|(at, v)| json!({ "at": timestamp(*at), "target": v }))
                .collect::<Vec<_>>(),
        })))
    }
}

/// The schedule routes.
pub fn routes() -> Routes {
    let schedule = json!({
        "type": "object",
        "description": "A CHARGE schedule (vehicles, chargers: `locationId`, \
            `defaultShouldCharge`, rules with `shouldCharge`) or a TEMPERATURE schedule (HVAC \
            units: `defaultTargetState`, rules with `targetState`).",
        "required": ["id", "targetType", "targetId", "isEnabled", "rules"],
        "properties": {
            "id": {"type": "string"},
            "targetType": {"type": "string", "enum": ["vehicle", "charger", "hvac"]},
            "targetId": {"type": "string"},
            "locationId": {"type": ["string", "null"]},
            "isEnabled": {"type": "boolean"},
            "defaultShouldCharge": {"type": "boolean"},
            "defaultTargetState": {"type": ["object", "null"]},
            "rules": {"type": "array", "items": {"type": "object"}}
        }
    });
    let schedule_body = json!({
        "type": "object",
        "description": "The schedule's fields (`targetType`, `targetId`, `isEnabled`, \
            `locationId`, `defaultShouldCharge` or `defaultTargetState`, `rules`); all are \
            required on creation, any subset on update.",
        "properties": {
            "targetType": {"type": "string", "enum": ["vehicle", "charger", "hvac"]},
            "targetId": {"type": "string"},
            "locationId": {"type": ["string", "null"]},
            "isEnabled": {"type": "boolean"},
            "defaultShouldCharge": {"type": "boolean"},
            "defaultTargetState": {"type": "object"},
            "rules": {"type": "array", "items": {"type": "object"}}
        }
    });
    let status_schema = json!({
        "type": "object",
        "required": ["scheduleId", "scheduleType", "changedAt", "state", "upcomingTransitions"],
        "properties": {
            "scheduleId": {"type": "string"},
            "scheduleType": {"type": "string", "enum": ["CHARGE", "TEMPERATURE"]},
            "changedAt": {"type": "string", "format": "date-time"},
            "state": {"type": "string", "enum": [
                "ALIGNED", "MISALIGNED", "PENDING", "INACTIVE:OVERRIDDEN", "INACTIVE:DISABLED",
                "INACTIVE:AWAY", "INACTIVE:INCAPABLE"]},
            "isCharging": {"type": "boolean"},
            "isChargingExpected": {"type": "boolean"},
            "isChargingExpectedParts": {"type": "object"},
            "smartOverride": {"type": ["object", "null"]},
            "current": {"type": ["object", "null"]},
            "expected": {"type": ["object", "null"]},
            "upcomingTransitions": {"type": "array", "items": {"type": "object"}}
        }
    });
    let schedule_id = ("scheduleId", "ID of the schedule.");
    Routes::new()
        .get(
            "/users/{userId}/schedules",
            Op::new("listSchedules", "Schedules", "List a user's schedules")
                .path("userId", "ID of the user.")
                .paged()
                .ok_list_of("A page of schedules.", schedule_ref()),
            |State(state): State<ApiState>,
             client: ClientId,
             Path(user_id): Path<String>,
             q: Result<Query<PageQuery>, QueryRejection>| async move {
                let request: PageRequest = devices::query(q)?.to_request()?;
                access::user_for_client(&state, &client, &user_id).await?;
                let page = state
                    .store
                    .list_resources(KIND, &ResourceOwner::User(user_id), &request)
                    .await?;
                Ok::<_, Problem>(Json(Paginated {
                    data: page.items.iter().map(served).collect(),
                    pagination: PaginationCursors { after: page.after, before: page.before },
                }))
            },
        )
        .post(
            "/users/{userId}/schedules",
            Op::new("createSchedule", "Schedules", "Create a schedule")
                .path("userId", "ID of the user.")
                .with_schema("Schedule", schedule)
                .body_schema(schedule_body.clone())
                .ok_schema(200, "The new schedule.", schedule_ref()),
            |State(state): State<ApiState>,
             client: ClientId,
             Path(user_id): Path<String>,
             body: Bytes| async move { create(&state, &client, &user_id, &body).await },
        )
        .get(
            "/schedules/{scheduleId}",
            Op::new("getSchedule", "Schedules", "Get a schedule")
                .path(schedule_id.0, schedule_id.1)
                .ok_schema(200, "The schedule.", schedule_ref()),
            |State(state): State<ApiState>, client: ClientId, Path(id): Path<String>| async move {
                get_schedule(&state, &client, &id).await.map(|r| Json(served(&r)))
            },
        )
        .put(
            "/schedules/{scheduleId}",
            Op::new("updateSchedule", "Schedules", "Update a schedule")
                .path(schedule_id.0, schedule_id.1)
                .body_schema(schedule_body)
                .ok_schema(200, "The updated schedule.", schedule_ref())
                .problems(&[409]),
            |State(state): State<ApiState>,
             client: ClientId,
             Path(id): Path<String>,
             body: Bytes| async move { update(&state, &client, &id, &body).await },
        )
        .delete(
            "/schedules/{scheduleId}",
            Op::new("deleteSchedule", "Schedules", "Delete a schedule")
                .path(schedule_id.0, schedule_id.1)
                .empty(204, "The schedule is gone."),
            |State(state): State<ApiState>, client: ClientId, Path(id): Path<String>| async move {
                delete(&state, &client, &id).await
            },
        )
        .get(
            "/schedules/{scheduleId}/status",
            Op::new("getScheduleStatus", "Schedules", "Get a schedule's status")
                .describe("Evaluated at now against the target's last stored state.")
                .path(schedule_id.0, schedule_id.1)
                .ok_schema(200, "The status.", status_schema),
            |State(state): State<ApiState>, client: ClientId, Path(id): Path<String>| async move {
                status(&state, &client, &id).await
            },
        )
}

fn schedule_ref() -> Value {
    crate::openapi::schema_ref("Schedule")
}
