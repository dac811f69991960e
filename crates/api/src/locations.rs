//! Locations: named places of a user with coordinates and a time zone, and the assignment of
//! chargers and HVAC units to them.
//!
//! | route | success | failures |
//! |---|---|---|
//! | `GET /locations` | 200 the client's locations, paginated | 400 |
//! | `GET /users/{userId}/locations` | 200 the user's locations, paginated | 400, 404 |
//! | `POST /users/{userId}/locations` `{name, latitude, longitude, timezoneName}` | 200 location | 400, 404 |
//! | `GET /locations/{locationId}` | 200 location | 404 |
//! | `PUT /locations/{locationId}` (any of the four fields) | 200 location | 400, 404 |
//! | `DELETE /locations/{locationId}` | 200 the deleted location | 404 |
//! | `PUT /chargers/{id}`, `PUT /hvacs/{id}` `{locationId: uuid \| null}` | 200 device | 400, 404 |
//!
//! A location is a generic store resource of kind [`KIND`] whose body is the served JSON
//! (`id, userId, name, latitude, longitude, timezoneName, createdAt`). Creating a location
//! for a new user id creates the user for the client. A device's location is a resource of
//! kind [`DEVICE_LOCATION_KIND`] keyed by the device id, laid over the polled snapshot when
//! served; deleting a location clears the devices and schedules that pointed at it and
//! drops its tariff schedule.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use chrono::{DateTime, SecondsFormat, Utc};
use oemgate_core::VendorType;
use oemgate_store::{PageRequest, ResourceOwner, ResourceRecord};
use serde_json::{Map, Value, json};

use crate::ApiState;
use crate::access;
use crate::auth::ClientId;
use crate::body::{object, only_fields};
use crate::devices;
use crate::openapi::{Op, Routes};
use crate::pagination::{PageQuery, Paginated, PaginationCursors};
use crate::problem::Problem;
use crate::resources::put_retrying;

/// The resource kind of locations.
pub const KIND: &str = "location";
/// The resource kind of a device's assigned location (id = device id).
pub const DEVICE_LOCATION_KIND: &str = "device-location";

/// The longest location name accepted, in bytes.
const MAX_NAME_BYTES: usize = 200;

const FIELDS: [&str; 4] = ["name", "latitude", "longitude", "timezoneName"];

fn timestamp(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn served(record: &ResourceRecord) -> Value {
    let mut body = record.body.clone();
    if let Value::Object(map) = &mut body {
        // The store's created_at (the first put's) is authoritative.
        map.insert("createdAt".into(), Value::String(timestamp(record.created_at)));
    }
    body
}

fn number_in(
    body: &Map<String, Value>,
    field: &str,
    range: std::ops::RangeInclusive<f64>,
) -> Result<Option<f64>, Problem> {
    let Some(value) = body.get(field) else { return Ok(None) };
    match value.as_f64() {
        Some(n) if range.contains(&n) => Ok(Some(n)),
        _ => Err(Problem::bad_request(format!(
            "Field \"{field}\" must be a number from {} to {}, got {value}.",
            range.start(),
            range.end()
        ))),
    }
}

fn name_of(body: &Map<String, Value>) -> Result<Option<String>, Problem> {
    let Some(value) = body.get("name") else { return Ok(None) };
    match value.as_str() {
        Some(name) if !name.trim().is_empty() && name.len() <= MAX_NAME_BYTES => {
            Ok(Some(name.to_string()))
        }
        _ => Err(Problem::bad_request(format!(
            "Field \"name\" must be a non-empty string of at most 200 bytes, got {value}."
        ))),
    }
}

fn timezone_of(body: &Map<String, Value>) -> Result<Option<String>, Problem> {
    let Some(value) = body.get("timezoneName") else { return Ok(None) };
    match value.as_str().map(|s| (s, s.parse::<chrono_tz::Tz>())) {
        Some((name, Ok(_))) => Ok(Some(name.to_string())),
        _ => Err(Problem::bad_request(format!(
            "Field \"timezoneName\" must be an IANA time zone name such as \"Europe/Oslo\", got {value}."
        ))),
    }
}

/// The validated fields of a body; `required` for creation.
struct Fields {
    name: Option<String>,
    latitude: Option<f64>,
    longitude: Option<f64>,
    timezone: Option<String>,
}

fn fields(body: &Bytes, required: bool) -> Result<Fields, Problem> {
    let body = object(body)?;
    only_fields(&body, &FIELDS)?;
    let parsed = Fields {
        name: name_of(&body)?,
        latitude: number_in(&body, "latitude", -90.0..=90.0)?,
        longitude: number_in(&body, "longitude", -180.0..=180.0)?,
        timezone: timezone_of(&body)?,
    };
    if required {
        let missing = [
            ("name", parsed.name.is_none()),
            ("latitude", parsed.latitude.is_none()),
            ("longitude", parsed.longitude.is_none()),
            ("timezoneName", parsed.timezone.is_none()),
        ];
        if let Some((field, _)) = missing.iter().find(|(_, absent)| *absent) {
            return Err(Problem::bad_request(format!("Field \"{field}\" is required.")));
        }
    }
    Ok(parsed)
}

async fn list(
    state: &ApiState,
    owner: ResourceOwner,
    request: PageRequest,
) -> Result<Json<Paginated<Value>>, Problem> {
    let page = state.store.list_resources(KIND, &owner, &request).await?;
    Ok(Json(Paginated {
        data: page.items.iter().map(served).collect(),
        pagination: PaginationCursors { after: page.after, before: page.before },
    }))
}

async fn create(
    state: &ApiState,
    client: &ClientId,
    user_id: &str,
    body: &Bytes,
) -> Result<Json<Value>, Problem> {
    let fields = fields(body, true)?;
    let user = access::ensure_user(state, client, user_id).await?;
    let id = uuid::Uuid::new_v4().to_string();
    let now = state.clock.now();
    let record = ResourceRecord {
        kind: KIND.to_string(),
        id: id.clone(),
        user_id: user.id.clone(),
        client_id: client.0.clone(),
        created_at: now,
        version: 0,
        body: json!({
            "id": id,
            "userId": user.id,
            "name": fields.name,
            "latitude": fields.latitude,
            "longitude": fields.longitude,
            "timezoneName": fields.timezone,
            "createdAt": timestamp(now),
        }),
    };
    state.store.put_resource(record.clone(), 0).await?;
    Ok(Json(served(&record)))
}

async fn get_location(
    state: &ApiState,
    client: &ClientId,
    id: &str,
) -> Result<ResourceRecord, Problem> {
    access::resource_for_client(state, client, KIND, "location", id).await
}

async fn update(
    state: &ApiState,
    client: &ClientId,
    id: &str,
    body: &Bytes,
) -> Result<Json<Value>, Problem> {
    let fields = &fields(body, false)?;
    let record = put_retrying(state, "Location", id, || async move {
        let mut record = get_location(state, client, id).await?;
        if let Value::Object(map) = &mut record.body {
            let changes = [
                ("name", fields.name.clone().map(Value::from)),
                ("latitude", fields.latitude.map(Value::from)),
                ("longitude", fields.longitude.map(Value::from)),
                ("timezoneName", fields.timezone.clone().map(Value::from)),
            ];
            for (field, value) in changes {
                if let Some(value) = value {
                    map.insert(field.into(), value);
                }
            }
        }
        let expected = record.version;
        Ok((record, expected))
    })
    .await?;
    Ok(Json(served(&record)))
}

async fn delete(state: &ApiState, client: &ClientId, id: &str) -> Result<Json<Value>, Problem> {
    let record = get_location(state, client, id).await?;
    state.store.delete_resource(KIND, id).await?;
    // Its tariff schedule has no place left to apply to, and schedules that named it are
    // at no known location any more.
    state.store.delete_resource(crate::tariffs::LOCATION_KIND, id).await?;
    crate::schedules::forget_location(state, &record.user_id, id).await?;
    // Devices that pointed at it are at no known location any more.
    let mut page =
        PageRequest { page_size: oemgate_store::MAX_PAGE_SIZE, ..PageRequest::default() };
    loop {
        let assigned = state
            .store
            .list_resources(
                DEVICE_LOCATION_KIND,
                &ResourceOwner::User(record.user_id.clone()),
                &page,
            )
            .await?;
        for assignment in &assigned.items {
            if assignment.body.get("locationId").and_then(Value::as_str) == Some(id) {
                state.store.delete_resource(DEVICE_LOCATION_KIND, &assignment.id).await?;
            }
        }
        match assigned.after {
            Some(after) => page.after = Some(after),
            None => break,
        }
    }
    Ok(Json(served(&record)))
}

/// Whether devices of this type can be placed at a location (chargers and HVAC units).
pub fn has_location(device_type: VendorType) -> bool {
    matches!(device_type, VendorType::Charger | VendorType::Hvac)
}

/// Lays a device's location assignment over its served resource.
pub fn overlay_location(
    device_type: VendorType,
    assignment: &ResourceRecord,
    resource: &mut Value,
) {
    let Value::Object(map) = resource else { return };
    let location_id = assignment.body.get("locationId").cloned().unwrap_or(Value::Null);
    let location = match device_type {
        VendorType::Charger => json!({
            "id": location_id,
            "lastUpdated": assignment.body.get("lastUpdated").cloned().unwrap_or(Value::Null),
        }),
        _ => json!({ "id": location_id }),
    };
    map.insert("location".into(), location);
}

/// `PUT /chargers/{id}` and `PUT /hvacs/{id}`: assigns the device to one of its user's
/// locations (or none with `null`) and returns the device.
async fn set_device_location(
    state: &ApiState,
    client: &ClientId,
    device_type: VendorType,
    device_id: &str,
    body: &Bytes,
) -> Result<Json<Value>, Problem> {
    let device = access::device_for_client(state, client, device_type, device_id).await?;
    let body = object(body)?;
    only_fields(&body, &["locationId"])?;
    let location_id = match body.get("locationId") {
        None => return Err(Problem::bad_request("Field \"locationId\" is required.")),
        Some(Value::Null) => None,
        Some(Value::String(id)) if uuid::Uuid::parse_str(id).is_ok() => Some(id.clone()),
        Some(other) => {
            return Err(Problem::bad_request(format!(
                "Field \"locationId\" must be a location id (uuid) or null, got {other}."
            )));
        }
    };
    if let Some(id) = &location_id {
        let location = state.store.get_resource(KIND, id).await?;
        if location.is_none_or(|l| l.client_id != client.0 || l.user_id != device.device.user_id) {
            return Err(Problem::bad_request(format!(
                "Field \"locationId\": no location {id:?} belongs to the {}'s user.",
                device_type.as_str()
            )));
        }
    }
    let now = state.clock.now();
    let (device, location_id) = (&device, &location_id);
    put_retrying(state, "Device", device_id, || async move {
        let stored = state.store.get_resource(DEVICE_LOCATION_KIND, device_id).await?;
        let expected = stored.as_ref().map_or(0, |s| s.version);
        let record = ResourceRecord {
            kind: DEVICE_LOCATION_KIND.to_string(),
            id: device_id.to_string(),
            user_id: device.device.user_id.clone(),
            client_id: client.0.clone(),
            created_at: now,
            version: 0,
            body: json!({ "locationId": location_id, "lastUpdated": timestamp(now) }),
        };
        Ok((record, expected))
    })
    .await?;
    devices::get_one(state, client, device_type, device_id).await
}

/// The location routes and the two device location setters.
pub fn routes() -> Routes {
    use oemgate_core::{Charger, Hvac, Location};
    let body = |required: bool| {
        let mut schema = json!({
            "type": "object",
            "additionalProperties": false,
            "properties": {
                "name": {"type": "string", "minLength": 1, "maxLength": MAX_NAME_BYTES / 4,
                         "description": "Not blank; at most 200 bytes of UTF-8."},
                "latitude": {"type": "number", "minimum": -90, "maximum": 90},
                "longitude": {"type": "number", "minimum": -180, "maximum": 180},
                "timezoneName": {"type": "string", "description": "An IANA time zone name."}
            }
        });
        if required {
            schema["required"] = json!(FIELDS);
        }
        schema
    };
    let device_location = json!({
        "type": "object",
        "required": ["locationId"],
        "additionalProperties": false,
        "properties": {
            "locationId": {"type": ["string", "null"],
                           "description": "A location of the device's user, or null to clear it."}
        }
    });
    let location_id = ("locationId", "ID of the location.");
    Routes::new()
        .get(
            "/locations",
            Op::new("listLocations", "Locations", "List locations")
                .paged()
                .ok_list::<Location>("A page of the client's locations."),
            |State(state): State<ApiState>,
             client: ClientId,
             q: Result<Query<PageQuery>, QueryRejection>| async move {
                let request = devices::query(q)?.to_request()?;
                list(&state, ResourceOwner::Client(client.0.clone()), request).await
            },
        )
        .get(
            "/users/{userId}/locations",
            Op::new("listUserLocations", "Locations", "List a user's locations")
                .path("userId", "ID of the user.")
                .paged()
                .ok_list::<Location>("A page of the user's locations."),
            |State(state): State<ApiState>,
             client: ClientId,
             Path(user_id): Path<String>,
             q: Result<Query<PageQuery>, QueryRejection>| async move {
                let request = devices::query(q)?.to_request()?;
                access::user_for_client(&state, &client, &user_id).await?;
                list(&state, ResourceOwner::User(user_id), request).await
            },
        )
        .post(
            "/users/{userId}/locations",
            Op::new("createLocation", "Locations", "Create a location")
                .describe("Creates the user for the calling client when the id is new.")
                .path("userId", "ID of the user.")
                .body_schema(body(true))
                .ok::<Location>(200, "The new location."),
            |State(state): State<ApiState>,
             client: ClientId,
             Path(user_id): Path<String>,
             body: Bytes| async move { create(&state, &client, &user_id, &body).await },
        )
        .get(
            "/locations/{locationId}",
            Op::new("getLocation", "Locations", "Get a location")
                .path(location_id.0, location_id.1)
                .ok::<Location>(200, "The location."),
            |State(state): State<ApiState>, client: ClientId, Path(id): Path<String>| async move {
                get_location(&state, &client, &id).await.map(|r| Json(served(&r)))
            },
        )
        .put(
            "/locations/{locationId}",
            Op::new("updateLocation", "Locations", "Update a location")
                .path(location_id.0, location_id.1)
                .body_schema(body(false))
                .ok::<Location>(200, "The updated location.")
                .problems(&[409]),
            |State(state): State<ApiState>,
             client: ClientId,
             Path(id): Path<String>,
             body: Bytes| async move { update(&state, &client, &id, &body).await },
        )
        .delete(
            "/locations/{locationId}",
            Op::new("deleteLocation", "Locations", "Delete a location")
                .describe(
                    "Devices and schedules that pointed at it lose their location; its tariff \
                     schedule goes with it.",
                )
                .path(location_id.0, location_id.1)
                .ok::<Location>(200, "The deleted location."),
            |State(state): State<ApiState>, client: ClientId, Path(id): Path<String>| async move {
                delete(&state, &client, &id).await
            },
        )
        .put(
            "/chargers/{chargerId}",
            Op::new("setChargerLocation", "Chargers", "Set a charger's location")
                .path("chargerId", "ID of the charger.")
                .body_schema(device_location.clone())
                .ok::<Charger>(200, "The charger with its location.")
                .problems(&[409]),
            |State(state): State<ApiState>,
             client: ClientId,
             Path(id): Path<String>,
             body: Bytes| async move {
                set_device_location(&state, &client, VendorType::Charger, &id, &body).await
            },
        )
        .put(
            "/hvacs/{hvacId}",
            Op::new("setHvacLocation", "HVACs", "Set an HVAC unit's location")
                .path("hvacId", "ID of the HVAC unit.")
                .body_schema(device_location)
                .ok::<Hvac>(200, "The HVAC unit with its location.")
                .problems(&[409]),
            |State(state): State<ApiState>,
             client: ClientId,
             Path(id): Path<String>,
             body: Bytes| async move {
                set_device_location(&state, &client, VendorType::Hvac, &id, &body).await
            },
        )
}
