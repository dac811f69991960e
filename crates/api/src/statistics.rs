//! Statistics computed from the stored observation history (see `oemgate_store::history`):
//!
//! | route | success | failures |
//! |---|---|---|
//! | `GET /inverters/{inverterId}/statistics?year=&month=[&day=]` | 200 final, 202 still changing | 400, 404 |
//! | `GET /users/{userId}/statistics/charging?startDate=&type=[&endDate=&id=&locationId=&resolution=&utcOffset=]` | 200 | 400, 404 |
//! | `GET /users/{userId}/statistics/charging/sessions?startDate=&type=[&endDate=&id=&locationId=]` | 200 | 400, 404 |
//!
//! Inverter statistics follow the document: a day (`year, month, day`) in `QUARTER_HOUR`
//! buckets, a month (`year, month`) in `DAY` buckets, both in the inverter's time zone (its
//! `timezone`, UTC when it has none). A bucket's value is what the lifetime production counter
//! rose by; `null` without a sample in the bucket. The answer is 202 with `retryAfter`
//! ([`RETRY_AFTER`] from now) while the interval has not ended yet, since later polls will
//! still fill it; 200 once it has.
//!
//! Charging statistics integrate the charge rate of the user's vehicles or chargers (the rate
//! last seen held until the next sample, see `compute`). Only buckets with data appear.
//! HVAC units report no charging, so their statistics are empty. `endDate` defaults to now.
//!
//! # Prices
//!
//! Energy is priced with the tariff of the Location the device charges at:
//!
//! 1. A charger (or HVAC unit) is at the Location the client assigned it to
//!    (`PUT /chargers/{id}`), the same `locationId` its sessions report.
//! 2. A vehicle is at the Location its stored resource names (`location.id`), if any.
//! 3. That Location's tariff schedule (`PUT /locations/{id}/tariff`) says which rate of the
//!    client's tariff applies when, in the Location's time zone; the rate's `cost` is the
//!    price per kWh. Costs are taken as the tariff holds them now, in the tariff's own unit
//!    of money (tariffs carry no currency; oemgate converts nothing).
//!
//! Each stretch of constant power is split where the rate changes (see `pricing`), so a
//! charge across a peak/off-peak boundary pays each rate for the energy charged under it.
//! `costSum` is the sum of energy times rate; `price` is `{min, max}` of the rates applied to
//! charged energy and `mean` the cost per priced kWh (`costSum` over the priced energy).
//! The assignment in force now prices the whole range: the history does not record where a
//! device was.
//!
//! Without a tariff (no Location, no schedule, or time no interval covers) energy is
//! unpriced: it adds nothing to `costSum`, and a bucket or session with no priced energy
//! keeps the fallback `price` `{0, 0, 0}` and `costSum` 0. `nonSmartPrice` and
//! `estimatedSavings` stay null: oemgate does not yet record what smart charging moved.

pub mod compute;
pub mod pricing;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{
    DateTime, Datelike as _, Duration, FixedOffset, NaiveDate, SecondsFormat, TimeZone, Utc,
};
use oemgate_core::VendorType;
use oemgate_store::{DeviceRecord, PageRequest};
use serde::Deserialize;
use serde_json::{Value, json};

use self::compute::Resolution;
use self::pricing::{Cost, RateSchedule};
use crate::ApiState;
use crate::access;
use crate::auth::ClientId;
use crate::locations::DEVICE_LOCATION_KIND;
use crate::openapi::{Op, Routes};
use crate::problem::Problem;
use crate::tariffs;

/// How long a client is asked to wait before asking again for statistics still changing.
pub const RETRY_AFTER: Duration = Duration::minutes(15);

fn timestamp(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn query<T>(q: Result<Query<T>, QueryRejection>) -> Result<T, Problem> {
    q.map(|Query(q)| q).map_err(|e| Problem::bad_request(format!("invalid query string: {e}")))
}

fn integer(
    field: &str,
    value: Option<&str>,
    range: std::ops::RangeInclusive<u32>,
) -> Result<Option<u32>, Problem> {
    let Some(value) = value else { return Ok(None) };
    match value.trim().parse::<u32>() {
        Ok(n) if range.contains(&n) => Ok(Some(n)),
        _ => Err(Problem::bad_request(format!(
            "\"{field}\" must be an integer from {} to {}, got {value:?}.",
            range.start(),
            range.end()
        ))),
    }
}

#[derive(Debug, Deserialize)]
struct InverterQuery {
    year: Option<String>,
    month: Option<String>,
    day: Option<String>,
}

/// `GET /inverters/{inverterId}/statistics`.
async fn inverter_statistics(
    State(state): State<ApiState>,
    client: ClientId,
    Path(id): Path<String>,
    q: Result<Query<InverterQuery>, QueryRejection>,
) -> Result<Response, Problem> {
    let q = query(q)?;
    let year = integer("year", q.year.as_deref(), 1969..=2999)?
        .ok_or_else(|| Problem::bad_request("\"year\" is required."))?;
    let month = integer("month", q.month.as_deref(), 1..=12)?
        .ok_or_else(|| Problem::bad_request("\"month\" is required."))?;
    let day = integer("day", q.day.as_deref(), 1..=31)?;
    let first = NaiveDate::from_ymd_opt(year as i32, month, day.unwrap_or(1)).ok_or_else(|| {
        Problem::bad_request(format!(
            "\"day\" {} does not exist in {year}-{month:02}.",
            day.unwrap_or(1)
        ))
    })?;
    access::device_for_client(&state, &client, VendorType::Inverter, &id).await?;
    let snapshot = state.store.get_snapshot(&id).await?;
    let zone: chrono_tz::Tz = snapshot
        .as_ref()
        .and_then(|s| s.resource.get("timezone").and_then(Value::as_str))
        .and_then(|name| name.parse().ok())
        .unwrap_or(chrono_tz::UTC);
    let midnight = |date: NaiveDate| -> DateTime<Utc> {
        zone.from_local_datetime(&date.and_time(chrono::NaiveTime::MIN))
            .earliest()
            .map(|d| d.with_timezone(&Utc))
            // A zone skipping midnight: the day starts an hour later.
            .unwrap_or_else(|| Utc.from_utc_datetime(&date.and_time(chrono::NaiveTime::MIN)))
    };
    let (edges, key) = match day {
        Some(_) => {
            let (start, end) = (midnight(first), midnight(first + Duration::days(1)));
            let mut edges = vec![start];
            while let Some(&last) = edges.last().filter(|t| **t < end) {
                edges.push((last + Duration::minutes(15)).min(end));
            }
            (edges, "QUARTER_HOUR")
        }
        None => {
            let mut edges = Vec::new();
            let mut date = first;
            while date.month0() + 1 == month {
                edges.push(midnight(date));
                date += Duration::days(1);
            }
            edges.push(midnight(date));
            (edges, "DAY")
        }
    };
    let (start, end) = (edges[0], edges[edges.len() - 1]);
    // A day before the interval gives the counter's baseline for its first bucket.
    let samples = state.store.samples(&id, start - Duration::days(1), end).await?;
    let values = compute::production(&samples, &edges);
    let data: Vec<Value> = edges
        .iter()
        .zip(values)
        .map(|(at, value)| {
            json!({ "date": at.with_timezone(&zone).to_rfc3339_opts(SecondsFormat::Secs, false),
                    "value": value })
        })
        .collect();
    let mut body = json!({
        "timezone": zone.name(),
        "resolutions": { key: { "unit": "kWh", "data": data } },
    });
    let now = state.clock.now();
    if end > now {
        body["retryAfter"] = json!(timestamp(now + RETRY_AFTER));
        return Ok((StatusCode::ACCEPTED, Json(body)).into_response());
    }
    Ok(Json(body).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ChargingQuery {
    start_date: Option<String>,
    end_date: Option<String>,
    location_id: Option<String>,
    id: Option<String>,
    #[serde(rename = "type")]
    device_type: Option<String>,
    utc_offset: Option<String>,
    resolution: Option<String>,
}

fn date(field: &str, value: &str) -> Result<DateTime<Utc>, Problem> {
    DateTime::parse_from_rfc3339(value.trim()).map(|d| d.with_timezone(&Utc)).map_err(|_| {
        Problem::bad_request(format!(
            "\"{field}\" must be an RFC 3339 date-time such as \"2021-03-21T00:15:00.000Z\", got {value:?}."
        ))
    })
}

/// The validated common part of both charging routes.
struct ChargingRequest {
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    /// The devices with the Location each is at.
    devices: Vec<(DeviceRecord, Option<String>)>,
    /// The priced tariff schedule of each device's Location, in the order of `devices`.
    schedules: Vec<Option<RateSchedule>>,
}

async fn charging_request(
    state: &ApiState,
    client: &ClientId,
    user_id: &str,
    q: &ChargingQuery,
) -> Result<ChargingRequest, Problem> {
    let from = match q.start_date.as_deref() {
        Some(v) => date("startDate", v)?,
        None => return Err(Problem::bad_request("\"startDate\" is required.")),
    };
    let to = match q.end_date.as_deref() {
        Some(v) => date("endDate", v)?,
        None => state.clock.now(),
    };
    if to <= from {
        return Err(Problem::bad_request("\"endDate\" must be after \"startDate\"."));
    }
    let device_type = match q.device_type.as_deref() {
        Some("charger") => VendorType::Charger,
        Some("vehicle") => VendorType::Vehicle,
        Some("hvac") => VendorType::Hvac,
        Some(other) => {
            return Err(Problem::bad_request(format!(
                "\"type\" must be one of charger, vehicle, hvac; got {other:?}."
            )));
        }
        None => return Err(Problem::bad_request("\"type\" is required.")),
    };
    if let Some(location) = q.location_id.as_deref() {
        uuid::Uuid::parse_str(location).map_err(|_| {
            Problem::bad_request(format!("\"locationId\" must be a UUID, got {location:?}."))
        })?;
    }
    access::user_for_client(state, client, user_id).await?;
    let records = match q.id.as_deref() {
        Some(id) => {
            let record = access::device_for_client(state, client, device_type, id).await?;
            if record.device.user_id != user_id {
                return Err(Problem::not_found(format!(
                    "No {} with id {id:?} was found.",
                    device_type.as_str()
                )));
            }
            vec![record]
        }
        None => {
            let filter =
                access::client_filter(client, Some(user_id.to_string()), Some(device_type));
            let mut all = Vec::new();
            let mut page =
                PageRequest { page_size: oemgate_store::MAX_PAGE_SIZE, ..PageRequest::default() };
            loop {
                let got = state.store.list_devices(&filter, &page).await?;
                all.extend(got.items);
                match got.after {
                    Some(after) => page.after = Some(after),
                    None => break,
                }
            }
            all
        }
    };
    let ids: Vec<&str> = records.iter().map(|r| r.device.id.as_str()).collect();
    let assignments = state.store.get_resources(DEVICE_LOCATION_KIND, &ids).await?;
    let mut devices: Vec<(DeviceRecord, Option<String>)> = Vec::new();
    for (record, assignment) in records.into_iter().zip(assignments) {
        let mut location = assignment
            .and_then(|l| l.body.get("locationId").and_then(Value::as_str).map(str::to_string));
        if location.is_none() && record.device.device_type == VendorType::Vehicle {
            // A vehicle is at the Location its stored resource names.
            location = state.store.get_snapshot(&record.device.id).await?.and_then(|s| {
                s.resource.pointer("/location/id").and_then(Value::as_str).map(str::to_string)
            });
        }
        if q.location_id.as_deref().is_none_or(|wanted| location.as_deref() == Some(wanted)) {
            devices.push((record, location));
        }
    }
    let mut loaded: Vec<(String, Option<RateSchedule>)> = Vec::new();
    let mut schedules = Vec::with_capacity(devices.len());
    for (_, location) in &devices {
        let Some(location) = location else {
            schedules.push(None);
            continue;
        };
        let schedule = match loaded.iter().find(|(id, _)| id == location) {
            Some((_, schedule)) => schedule.clone(),
            None => {
                let schedule = tariffs::rate_schedule(state, client, location).await?;
                loaded.push((location.clone(), schedule.clone()));
                schedule
            }
        };
        schedules.push(schedule);
    }
    Ok(ChargingRequest { from, to, devices, schedules })
}

/// `price` and `costSum` of some charged energy: the fallback `{0, 0, 0}` and 0 when none of
/// it was priced.
fn price_json(cost: &Cost) -> (Value, f64) {
    match cost.price() {
        Some(price) => (json!({"min": price.min, "max": price.max, "mean": price.mean}), cost.cost),
        None => (json!({"min": 0.0, "max": 0.0, "mean": 0.0}), 0.0),
    }
}

/// `nonSmartPrice`: unknown, since oemgate does not record what smart charging moved.
fn no_non_smart_price() -> Value {
    json!({"min": null, "max": null, "mean": null})
}

fn kw_json(kw: Option<compute::Aggregates>) -> Value {
    let kw = kw.unwrap_or(compute::Aggregates { min: 0.0, max: 0.0, mean: 0.0 });
    json!({"min": kw.min, "max": kw.max, "mean": kw.mean})
}

/// `GET /users/{userId}/statistics/charging`.
async fn charging_statistics(
    State(state): State<ApiState>,
    client: ClientId,
    Path(user_id): Path<String>,
    q: Result<Query<ChargingQuery>, QueryRejection>,
) -> Result<Json<Vec<Value>>, Problem> {
    let q = query(q)?;
    let resolution = match q.resolution.as_deref() {
        None => Resolution::Day,
        Some(name) => Resolution::parse(name).ok_or_else(|| {
            Problem::bad_request(format!(
                "\"resolution\" must be one of QUARTER_HOUR, HALF_HOUR, HOUR, DAY, WEEK, MONTH, YEAR; got {name:?}."
            ))
        })?,
    };
    let offset = match q.utc_offset.as_deref() {
        None => FixedOffset::east_opt(0),
        Some(hours) => hours
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|h| h.is_finite() && h.abs() <= 14.0)
            .and_then(|h| FixedOffset::east_opt((h * 3600.0).round() as i32)),
    }
    .ok_or_else(|| {
        Problem::bad_request("\"utcOffset\" must be a number of hours from -14 to 14.")
    })?;
    let request = charging_request(&state, &client, &user_id, &q).await?;
    let mut histories = Vec::new();
    for (record, _) in &request.devices {
        // From a gap's length before the start, so the power held into the range counts.
        let since = request.from - compute::MAX_GAP;
        histories.push(state.store.samples(&record.device.id, since, request.to).await?);
    }
    let schedules: Vec<Option<&RateSchedule>> =
        request.schedules.iter().map(Option::as_ref).collect();
    let buckets = compute::charging_buckets(
        &histories,
        &schedules,
        request.from,
        request.to,
        resolution,
        offset,
    );
    Ok(Json(
        buckets
            .into_iter()
            .map(|b| {
                let (price, cost_sum) = price_json(&b.cost);
                json!({
                    "kw": kw_json(b.kw),
                    "kwhSum": b.kwh,
                    "price": price,
                    "costSum": cost_sum,
                    "nonSmartPrice": no_non_smart_price(),
                    "estimatedSavings": null,
                    "date": timestamp(b.start),
                })
            })
            .collect(),
    ))
}

/// `GET /users/{userId}/statistics/charging/sessions`.
async fn charging_sessions(
    State(state): State<ApiState>,
    client: ClientId,
    Path(user_id): Path<String>,
    q: Result<Query<ChargingQuery>, QueryRejection>,
) -> Result<Json<Vec<Value>>, Problem> {
    let q = query(q)?;
    let request = charging_request(&state, &client, &user_id, &q).await?;
    let mut out = Vec::new();
    for ((record, location), schedule) in request.devices.iter().zip(&request.schedules) {
        // A session active at the start began before it: read a day further back.
        let since = request.from - Duration::days(1);
        let samples = state.store.samples(&record.device.id, since, request.to).await?;
        let pieces = compute::pieces(&samples);
        for session in compute::sessions(&samples) {
            if session.to < request.from || session.from >= request.to {
                continue;
            }
            // The session's energy, priced the same way as `kwhSum` counts it.
            let mut cost = Cost::default();
            for piece in &pieces {
                cost.add_piece(schedule.as_ref(), piece, session.from, session.to);
            }
            let (price, cost_sum) = price_json(&cost);
            out.push((
                session.from,
                json!({
                    "kw": kw_json(session.kw),
                    "kwhSum": session.kwh,
                    "price": price,
                    "costSum": cost_sum,
                    "id": record.device.id,
                    "locationId": location,
                    "from": timestamp(session.from),
                    "to": timestamp(session.to),
                    "nonSmartPrice": no_non_smart_price(),
                    "estimatedSavings": null,
                }),
            ));
        }
    }
    out.sort_by_key(|(from, _)| *from);
    Ok(Json(out.into_iter().map(|(_, v)| v).collect()))
}

/// The routes (behind the bearer check).
pub fn routes() -> Routes {
    let nullable_number = json!({"type": ["number", "null"]});
    let aggregate = json!({
        "type": ["object", "null"],
        "description": "Minimum, maximum and mean over the interval.",
        "properties": {"min": nullable_number, "max": nullable_number, "mean": nullable_number}
    });
    let bucket = json!({
        "type": "object",
        "required": ["kw", "kwhSum", "price", "costSum", "nonSmartPrice", "estimatedSavings", "date"],
        "properties": {
            "kw": aggregate,
            "kwhSum": {"type": "number"},
            "price": aggregate,
            "costSum": nullable_number,
            "nonSmartPrice": aggregate,
            "estimatedSavings": nullable_number,
            "date": {"type": "string", "format": "date-time"}
        }
    });
    let session = json!({
        "type": "object",
        "required": ["id", "from", "to", "kw", "kwhSum", "price", "costSum", "nonSmartPrice", "estimatedSavings"],
        "properties": {
            "id": {"type": "string", "description": "The charging device."},
            "locationId": {"type": ["string", "null"]},
            "from": {"type": "string", "format": "date-time"},
            "to": {"type": "string", "format": "date-time"},
            "kw": aggregate,
            "kwhSum": {"type": "number"},
            "price": aggregate,
            "costSum": nullable_number,
            "nonSmartPrice": aggregate,
            "estimatedSavings": nullable_number
        }
    });
    let production = json!({
        "type": "object",
        "required": ["timezone", "resolutions"],
        "properties": {
            "timezone": {"type": "string"},
            "retryAfter": {"type": "string", "format": "date-time",
                           "description": "When the still-running interval is worth asking again."},
            "resolutions": {"type": "object", "additionalProperties": {
                "type": "object",
                "required": ["unit", "data"],
                "properties": {
                    "unit": {"type": "string", "enum": ["kWh"]},
                    "data": {"type": "array", "items": {
                        "type": "object",
                        "required": ["date", "value"],
                        "properties": {"date": {"type": "string"}, "value": {"type": ["number", "null"]}}
                    }}
                }
            }}
        }
    });
    let charging_query = |op: Op| {
        op.path("userId", "ID of the user.")
            .query_required(
                "startDate",
                json!({"type": "string", "format": "date-time"}),
                "Start (inclusive).",
            )
            .query(
                "endDate",
                json!({"type": "string", "format": "date-time"}),
                "End (exclusive); default now.",
            )
            .query("locationId", json!({"type": "string"}), "Only charging at this location.")
            .query("id", json!({"type": "string"}), "Only this vehicle or charger.")
            .query(
                "type",
                json!({"type": "string", "enum": ["vehicle", "charger", "hvac"]}),
                "Only this device type.",
            )
    };
    Routes::new()
        .get(
            "/inverters/{inverterId}/statistics",
            Op::new("getInverterStatistics", "Statistics", "Get an inverter's production")
                .describe(
                    "Energy produced per quarter hour of a day, or per day of a month, in the \
                     inverter's time zone. A range that is not over yet answers 202 with \
                     `retryAfter`.",
                )
                .path("inverterId", "ID of the inverter.")
                .query_required("year", json!({"type": "integer", "minimum": 1969, "maximum": 2999}), "Year.")
                .query_required("month", json!({"type": "integer", "minimum": 1, "maximum": 12}), "Month.")
                .query("day", json!({"type": "integer", "minimum": 1, "maximum": 31}), "Day; the month when absent.")
                .ok_schema(200, "The production.", production.clone())
                .ok_schema(202, "The production so far; the range is not over.", production),
            inverter_statistics,
        )
        .get(
            "/users/{userId}/statistics/charging",
            charging_query(Op::new("getChargingStatistics", "Statistics", "Get a user's charging statistics"))
                .query(
                    "utcOffset",
                    json!({"type": "number", "minimum": -14, "maximum": 14}),
                    "Hours from UTC that bucket boundaries follow.",
                )
                .query(
                    "resolution",
                    json!({"type": "string", "enum": ["QUARTER_HOUR", "HALF_HOUR", "HOUR", "DAY", "WEEK", "MONTH", "YEAR"]}),
                    "Bucket size; DAY when absent.",
                )
                .ok_schema(200, "One bucket per interval.", json!({"type": "array", "items": bucket})),
            charging_statistics,
        )
        .get(
            "/users/{userId}/statistics/charging/sessions",
            charging_query(Op::new("getChargingSessions", "Statistics", "Get a user's charging sessions"))
                .ok_schema(200, "The sessions.", json!({"type": "array", "items": session})),
            charging_sessions,
        )
}
