//! Tariffs: named price rates of an API client (`PUT /tariffs/{id}`), and the weekly
//! schedule saying which rate applies when at a location (`PUT /locations/{id}/tariff`).
//!
//! | route | success | failures |
//! |---|---|---|
//! | `PUT /tariffs/{tariffId}` `[{name, cost}]` | 204 | 400 |
//! | `GET /tariffs/{tariffId}` | 200 `[{name, cost}]` | 404 |
//! | `PUT /locations/{locationId}/tariff` `{tariffId, tariffIntervals}` | 204 | 400, 404 |
//! | `GET /locations/{locationId}/tariff` | 200 `[{weekday, fromHourMinute, toHourMinute, tariffId, tariffName}]` | 404 |
//!
//! A tariff belongs to the API client, not to a user, so it is stored under the id
//! `{length of clientId}:{clientId}/{tariffId}`: every client has its own tariff ids and never sees another's.
//! Interval times are local to the location's time zone (`from` inclusive, `to` exclusive,
//! `weekdays` 0 = Monday, every day when absent); the GET serves them in UTC, shifted by the
//! zone's offset at the clock's now and split where they cross midnight.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::Offset;
use oemgate_store::ResourceRecord;
use serde_json::{Map, Value, json};

use crate::ApiState;
use crate::access;
use crate::auth::ClientId;
use crate::body::{object, only_fields};
use crate::locations;
use crate::openapi::{Op, Routes};
use crate::problem::Problem;
use crate::resources::put_retrying;
use crate::schedules::{hour_minute, hour_minute_field, weekdays_field};
use crate::statistics::pricing::{RateInterval, RateSchedule};

/// The resource kind of tariffs (id from the client and tariff ids, no user).
pub const KIND: &str = "tariff";
/// The resource kind of a location's tariff schedule (id = location id).
pub const LOCATION_KIND: &str = "location-tariff";

const MINUTES_PER_DAY: i64 = 1440;
const MINUTES_PER_WEEK: i64 = 7 * MINUTES_PER_DAY;

fn bad(detail: String) -> Problem {
    Problem::bad_request(detail)
}

/// The client's length leads so that no client id and tariff id pair (either may hold '/')
/// spells another pair's id.
fn store_id(client: &ClientId, tariff_id: &str) -> String {
    format!("{}:{}/{tariff_id}", client.0.len(), client.0)
}

fn tariff_id_of(raw: &str) -> Result<String, Problem> {
    if raw.trim().is_empty() || raw.len() > 200 {
        return Err(bad(format!(
            "Path parameter \"tariffId\" must be 1 to 200 bytes, got {raw:?}."
        )));
    }
    Ok(raw.to_string())
}

/// A decimal cost string as the document's pattern allows: up to 9 digits before and after
/// the point, an optional sign.
fn is_cost(text: &str) -> bool {
    let digits = text.strip_prefix(['+', '-']).unwrap_or(text);
    let (whole, fraction) = match digits.split_once('.') {
        Some((w, f)) => (w, Some(f)),
        None => (digits, None),
    };
    let all_digits = |s: &str| s.chars().all(|c| c.is_ascii_digit());
    if !all_digits(whole)
        || whole.len() > 9
        || !fraction.is_none_or(|f| all_digits(f) && f.len() <= 9)
    {
        return false;
    }
    match fraction {
        None => !whole.is_empty(),
        Some(f) => !whole.is_empty() || !f.is_empty(),
    }
}

fn rates(body: &Bytes) -> Result<Vec<Value>, Problem> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(bad("The request body must be a JSON array of rates; it was empty.".into()));
    }
    let value: Value = serde_json::from_slice(body)
        .map_err(|err| bad(format!("The request body is not valid JSON: {err}")))?;
    let Value::Array(items) = value else {
        return Err(bad("The request body must be a JSON array of {name, cost} rates.".into()));
    };
    let mut names = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let Some(rate) = item.as_object() else {
            return Err(bad(format!("Item [{i}] must be an object {{name, cost}}, got {item}.")));
        };
        if let Some(key) = rate.keys().find(|k| *k != "name" && *k != "cost") {
            return Err(bad(format!(
                "Field \"[{i}].{key}\" is not allowed; allowed fields: name, cost."
            )));
        }
        let name = match rate.get("name") {
            Some(Value::String(name)) if !name.trim().is_empty() => name.clone(),
            other => {
                return Err(bad(format!(
                    "Field \"[{i}].name\" must be a non-empty string, got {}.",
                    other.unwrap_or(&Value::Null)
                )));
            }
        };
        match rate.get("cost") {
            Some(Value::String(cost)) if is_cost(cost) => {}
            other => {
                return Err(bad(format!(
                    "Field \"[{i}].cost\" must be a decimal string such as \"1.25\", got {}.",
                    other.unwrap_or(&Value::Null)
                )));
            }
        }
        // Intervals refer to rates by name, so a name must say which rate it is.
        if names.contains(&name) {
            return Err(bad(format!("Field \"[{i}].name\": rate {name:?} is listed twice.")));
        }
        names.push(name);
    }
    Ok(items)
}

async fn put_tariff(
    state: &ApiState,
    client: &ClientId,
    raw_id: &str,
    body: &Bytes,
) -> Result<StatusCode, Problem> {
    let tariff_id = tariff_id_of(raw_id)?;
    let rates = &rates(body)?;
    let id = &store_id(client, &tariff_id);
    put_retrying(state, "Tariff", &tariff_id, || async move {
        let stored = state.store.get_resource(KIND, id).await?;
        let record = ResourceRecord {
            kind: KIND.to_string(),
            id: id.clone(),
            // Tariffs are the client's, not a user's.
            user_id: String::new(),
            client_id: client.0.clone(),
            created_at: state.clock.now(),
            version: 0,
            body: Value::Array(rates.clone()),
        };
        Ok((record, stored.map_or(0, |s| s.version)))
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn tariff(state: &ApiState, client: &ClientId, tariff_id: &str) -> Result<Value, Problem> {
    match state.store.get_resource(KIND, &store_id(client, tariff_id)).await? {
        Some(record) if record.client_id == client.0 => Ok(record.body),
        _ => Err(Problem::not_found(format!("No tariff with id {tariff_id:?} was found."))),
    }
}

/// One validated interval: rate name, weekdays, minutes from and to.
struct Interval {
    name: String,
    weekdays: Vec<u32>,
    from: u32,
    to: u32,
}

fn intervals(body: &Map<String, Value>, rate_names: &[&str]) -> Result<Vec<Interval>, Problem> {
    let Some(items) = body.get("tariffIntervals") else {
        return Err(bad("Field \"tariffIntervals\" is required.".into()));
    };
    let Some(items) = items.as_array() else {
        return Err(bad(format!("Field \"tariffIntervals\" must be an array, got {items}.")));
    };
    let mut out: Vec<Interval> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let path = format!("tariffIntervals[{i}]");
        let Some(interval) = item.as_object() else {
            return Err(bad(format!("Field \"{path}\" must be an object, got {item}.")));
        };
        if let Some(key) =
            interval.keys().find(|k| !["name", "weekdays", "from", "to"].contains(&k.as_str()))
        {
            return Err(bad(format!(
                "Field \"{path}.{key}\" is not allowed; allowed fields: name, weekdays, from, to."
            )));
        }
        let name = match interval.get("name").and_then(Value::as_str) {
            Some(name) if rate_names.contains(&name) => name.to_string(),
            _ => {
                return Err(bad(format!(
                    "Field \"{path}.name\" must name a rate of the tariff ({}), got {}.",
                    rate_names.join(", "),
                    interval.get("name").unwrap_or(&Value::Null)
                )));
            }
        };
        let from = hour_minute_field(interval.get("from"), &format!("{path}.from"))?;
        let to = hour_minute_field(interval.get("to"), &format!("{path}.to"))?;
        if from >= to {
            return Err(bad(format!(
                "Field \"{path}.to\" must be later than \"{path}.from\" (to is exclusive; use 24:00 for midnight)."
            )));
        }
        let weekdays = match interval.get("weekdays") {
            Some(days) => weekdays_field(days, &format!("{path}.weekdays"))?,
            None => (0..7).collect(),
        };
        for earlier in &out {
            let shared = weekdays.iter().any(|d| earlier.weekdays.contains(d));
            if shared && from < earlier.to && earlier.from < to {
                return Err(bad(format!(
                    "Field \"{path}\": overlapping tariff schedule ({} {}-{} overlaps an earlier interval); ensure the schedule has no overlaps.",
                    name,
                    interval.get("from").and_then(Value::as_str).unwrap_or_default(),
                    interval.get("to").and_then(Value::as_str).unwrap_or_default(),
                )));
            }
        }
        out.push(Interval { name, weekdays, from, to });
    }
    Ok(out)
}

async fn put_location_tariff(
    state: &ApiState,
    client: &ClientId,
    location_id: &str,
    body: &Bytes,
) -> Result<StatusCode, Problem> {
    let location =
        access::resource_for_client(state, client, locations::KIND, "location", location_id)
            .await?;
    let body = object(body)?;
    only_fields(&body, &["tariffId", "tariffIntervals"])?;
    let tariff_id = match body.get("tariffId") {
        Some(Value::String(id)) if !id.is_empty() => id.clone(),
        other => {
            return Err(bad(format!(
                "Field \"tariffId\" must be a tariff id, got {}.",
                other.unwrap_or(&Value::Null)
            )));
        }
    };
    let rates = tariff(state, client, &tariff_id).await?;
    let names: Vec<&str> = rates
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r.get("name").and_then(Value::as_str))
        .collect();
    let parsed = intervals(&body, &names)?;
    let stored_intervals: Vec<Value> = parsed
        .iter()
        .map(|i| {
            json!({ "name": i.name, "weekdays": i.weekdays, "from": clock(i.from), "to": clock(i.to) })
        })
        .collect();
    let (location, tariff_id, stored_intervals) = (&location, &tariff_id, &stored_intervals);
    put_retrying(state, "Location", location_id, || async move {
        let stored = state.store.get_resource(LOCATION_KIND, location_id).await?;
        let record = ResourceRecord {
            kind: LOCATION_KIND.to_string(),
            id: location_id.to_string(),
            user_id: location.user_id.clone(),
            client_id: client.0.clone(),
            created_at: state.clock.now(),
            version: 0,
            body: json!({ "tariffId": tariff_id, "tariffIntervals": stored_intervals }),
        };
        Ok((record, stored.map_or(0, |s| s.version)))
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

fn clock(minutes: u32) -> String {
    format!("{:02}:{:02}", minutes / 60, minutes % 60)
}

/// `GET /locations/{id}/tariff`: the stored intervals in UTC, one entry per weekday; an
/// empty list when no tariff is linked.
async fn get_location_tariff(
    state: &ApiState,
    client: &ClientId,
    location_id: &str,
) -> Result<Json<Value>, Problem> {
    let location =
        access::resource_for_client(state, client, locations::KIND, "location", location_id)
            .await?;
    let Some(link) = state.store.get_resource(LOCATION_KIND, location_id).await? else {
        return Ok(Json(json!([])));
    };
    let zone: chrono_tz::Tz = location
        .body
        .get("timezoneName")
        .and_then(Value::as_str)
        .and_then(|z| z.parse().ok())
        .unwrap_or(chrono_tz::UTC);
    let offset =
        i64::from(state.clock.now().with_timezone(&zone).offset().fix().local_minus_utc() / 60);
    let tariff_id = link.body.get("tariffId").cloned().unwrap_or(Value::Null);
    let mut entries: Vec<(i64, i64, String)> = Vec::new();
    for interval in link.body.get("tariffIntervals").and_then(Value::as_array).into_iter().flatten()
    {
        let minutes = |f: &str| interval.get(f).and_then(Value::as_str).and_then(hour_minute);
        let (Some(from), Some(to)) = (minutes("from"), minutes("to")) else { continue };
        let name = interval.get("name").and_then(Value::as_str).unwrap_or_default().to_string();
        for day in interval.get("weekdays").and_then(Value::as_array).into_iter().flatten() {
            let Some(day) = day.as_i64() else { continue };
            // Week minutes in UTC, wrapped into the week, split at each UTC midnight.
            let mut start =
                (day * MINUTES_PER_DAY + i64::from(from) - offset).rem_euclid(MINUTES_PER_WEEK);
            let mut left = i64::from(to - from);
            while left > 0 {
                let day_end = (start / MINUTES_PER_DAY + 1) * MINUTES_PER_DAY;
                let end = (start + left).min(day_end);
                entries.push((start, end, name.clone()));
                left -= end - start;
                start = end % MINUTES_PER_WEEK;
            }
        }
    }
    entries.sort();
    let served: Vec<Value> = entries
        .into_iter()
        .map(|(start, end, name)| {
            let day = start / MINUTES_PER_DAY;
            let from = start - day * MINUTES_PER_DAY;
            let to = end - day * MINUTES_PER_DAY;
            json!({
                "weekday": day,
                "fromHourMinute": clock(from as u32),
                "toHourMinute": clock(to as u32),
                "tariffId": tariff_id,
                "tariffName": name,
            })
        })
        .collect();
    Ok(Json(Value::Array(served)))
}

/// The tariff schedule of the client's location `location_id` with every interval's rate
/// cost resolved from the tariff as stored now, for pricing charged energy (see
/// [`crate::statistics`]). `None` when the location is not the client's, has no schedule, or
/// its tariff is gone; an interval whose rate the tariff no longer names is left out (its
/// time has no rate).
pub async fn rate_schedule(
    state: &ApiState,
    client: &ClientId,
    location_id: &str,
) -> Result<Option<RateSchedule>, Problem> {
    let Some(location) = state
        .store
        .get_resource(locations::KIND, location_id)
        .await?
        .filter(|l| l.client_id == client.0)
    else {
        return Ok(None);
    };
    let Some(link) = state.store.get_resource(LOCATION_KIND, location_id).await? else {
        return Ok(None);
    };
    let Some(tariff_id) = link.body.get("tariffId").and_then(Value::as_str) else {
        return Ok(None);
    };
    let rates = match state.store.get_resource(KIND, &store_id(client, tariff_id)).await? {
        Some(record) if record.client_id == client.0 => record.body,
        _ => return Ok(None),
    };
    let cost_of = |name: &str| {
        rates.as_array().into_iter().flatten().find_map(|rate| {
            (rate.get("name").and_then(Value::as_str) == Some(name))
                .then(|| rate.get("cost").and_then(Value::as_str)?.parse::<f64>().ok())
                .flatten()
        })
    };
    let zone: chrono_tz::Tz = location
        .body
        .get("timezoneName")
        .and_then(Value::as_str)
        .and_then(|z| z.parse().ok())
        .unwrap_or(chrono_tz::UTC);
    let intervals = link
        .body
        .get("tariffIntervals")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|interval| {
            let minutes = |f: &str| interval.get(f).and_then(Value::as_str).and_then(hour_minute);
            let weekdays = interval
                .get("weekdays")
                .and_then(Value::as_array)?
                .iter()
                .filter_map(|d| d.as_u64().and_then(|d| u32::try_from(d).ok()))
                .collect();
            Some(RateInterval {
                weekdays,
                from: minutes("from")?,
                to: minutes("to")?,
                cost: cost_of(interval.get("name").and_then(Value::as_str)?)?,
            })
        })
        .collect();
    Ok(Some(RateSchedule { zone, intervals }))
}

/// Whether any of the user's locations has a tariff schedule (smart charging needs prices).
pub async fn user_has_tariff(state: &ApiState, user_id: &str) -> Result<bool, Problem> {
    let request = oemgate_store::PageRequest { page_size: 1, ..Default::default() };
    let page = state
        .store
        .list_resources(
            LOCATION_KIND,
            &oemgate_store::ResourceOwner::User(user_id.to_string()),
            &request,
        )
        .await?;
    Ok(!page.items.is_empty())
}

/// The tariff routes.
pub fn routes() -> Routes {
    let rates = json!({
        "type": "array",
        "description": "The tariff's named rates.",
        "items": {
            "type": "object",
            "required": ["name", "cost"],
            "properties": {
                "name": {"type": "string"},
                "cost": {"type": "string", "description": "Price per kWh, a decimal number as a string."}
            }
        }
    });
    let schedule_body = json!({
        "type": "object",
        "required": ["tariffId", "tariffIntervals"],
        "properties": {
            "tariffId": {"type": "string"},
            "tariffIntervals": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["name", "from", "to"],
                    "properties": {
                        "name": {"type": "string", "description": "A rate name of the tariff."},
                        "weekdays": {"type": "array", "items": {"type": "integer", "minimum": 0, "maximum": 6}},
                        "from": {"type": "string", "description": "HH:MM, local time."},
                        "to": {"type": "string", "description": "HH:MM, local time."}
                    }
                }
            }
        }
    });
    let schedule = json!({
        "type": "array",
        "description": "The weekly intervals in UTC.",
        "items": {
            "type": "object",
            "required": ["weekday", "fromHourMinute", "toHourMinute", "tariffId", "tariffName"],
            "properties": {
                "weekday": {"type": "integer", "minimum": 0, "maximum": 6},
                "fromHourMinute": {"type": "string"},
                "toHourMinute": {"type": "string"},
                "tariffId": {"type": "string"},
                "tariffName": {"type": "string"}
            }
        }
    });
    Routes::new()
        .put(
            "/tariffs/{tariffId}",
            Op::new("putTariff", "Tariffs", "Create or replace a tariff")
                .path("tariffId", "The client's ID for the tariff.")
                .body_schema(rates.clone())
                .empty(204, "The tariff is stored.")
                .problems(&[409]),
            |State(state): State<ApiState>,
             client: ClientId,
             Path(id): Path<String>,
             body: Bytes| async move { put_tariff(&state, &client, &id, &body).await },
        )
        .get(
            "/tariffs/{tariffId}",
            Op::new("getTariff", "Tariffs", "Get a tariff")
                .path("tariffId", "The client's ID for the tariff.")
                .ok_schema(200, "The tariff's rates.", rates),
            |State(state): State<ApiState>, client: ClientId, Path(id): Path<String>| async move {
                tariff(&state, &client, &id).await.map(Json)
            },
        )
        .put(
            "/locations/{locationId}/tariff",
            Op::new("putLocationTariff", "Tariffs", "Link a tariff to a location")
                .path("locationId", "ID of the location.")
                .body_schema(schedule_body)
                .empty(204, "The location's tariff schedule is stored.")
                .problems(&[409]),
            |State(state): State<ApiState>,
             client: ClientId,
             Path(id): Path<String>,
             body: Bytes| async move {
                put_location_tariff(&state, &client, &id, &body).await
            },
        )
        .get(
            "/locations/{locationId}/tariff",
            Op::new("getLocationTariff", "Tariffs", "Get a location's tariff schedule")
                .path("locationId", "ID of the location.")
                .ok_schema(200, "The schedule (empty without a tariff).", schedule),
            |State(state): State<ApiState>, client: ClientId, Path(id): Path<String>| async move {
                get_location_tariff(&state, &client, &id).await
            },
        )
}
