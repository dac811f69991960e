//! Users of an API client: listing, reading with their linked vendors, and removing them or
//! parts of what they linked.
//!
//! | route | success | failures |
//! |---|---|---|
//! | `GET /users` | 200 the client's users, paginated | 400 |
//! | `GET /users/{userId}` | 200 `{id, linkedVendors: [{vendor, vendorType, isValid}]}` | 404 |
//! | `DELETE /users/{userId}` | 204: accounts, devices, locations and the user are gone | 404 |
//! | `DELETE /users/{userId}/authorization` | 204: accounts and devices gone, the user stays | 404 |
//! | `DELETE /users/{userId}/vendors/{vendor}` | 204: that vendor's accounts and devices gone | 400, 404 |
//! | `DELETE /users/{userId}/vendors/{vendor}/{vendorType}` | 204: that vendor's devices of the type gone; its accounts too once they read no other device | 400, 404 |
//!
//! `linkedVendors` has one entry per vendor and device type the user's accounts read (an
//! account that has no device yet is not listed); `isValid` is false when any such account's
//! credentials were rejected (`invalid_since` set). Removing devices deletes them with their
//! snapshots and poll schedule entries and appends `user:{type}:deleted` events, except for
//! `DELETE /users/{userId}/authorization`, which (like the reference API) sends no events.

use std::collections::{BTreeMap, BTreeSet};

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use oemgate_core::VendorType;
use oemgate_store::{DeviceRecord, Event, PageRequest, ResourceOwner};
use serde_json::{Value, json};

use crate::ApiState;
use crate::access::{self, client_filter};
use crate::auth::ClientId;
use crate::devices;
use crate::locations;
use crate::openapi::{Op, Routes};
use crate::pagination::{PageQuery, Paginated, PaginationCursors};
use crate::problem::Problem;

/// Resource kinds owned by a user that go with the user. Kinds added later (schedules,
/// tariffs, policies) are listed here so unlinking a user leaves nothing behind.
pub const USER_RESOURCE_KINDS: &[&str] = &[
    locations::KIND,
    locations::DEVICE_LOCATION_KIND,
    crate::schedules::KIND,
    crate::tariffs::LOCATION_KIND,
    crate::smart_charging::POLICY_KIND,
    crate::smart_charging::OVERRIDE_KIND,
    crate::smart_charging::PLAN_KIND,
];

/// Every device of a user (all pages).
async fn devices_of(
    state: &ApiState,
    client: &ClientId,
    user_id: &str,
) -> Result<Vec<DeviceRecord>, Problem> {
    let filter = client_filter(client, Some(user_id.to_string()), None);
    let mut request =
        PageRequest { page_size: oemgate_store::MAX_PAGE_SIZE, ..PageRequest::default() };
    let mut all = Vec::new();
    loop {
        let page = state.store.list_devices(&filter, &request).await?;
        all.extend(page.items);
        match page.after {
            Some(after) => request.after = Some(after),
            None => return Ok(all),
        }
    }
}

/// Deletes devices (snapshot and schedule entry included) and, when `announce`, appends a
/// `user:{type}:deleted` event for each, carrying the last served state.
async fn remove_devices(
    state: &ApiState,
    devices: &[DeviceRecord],
    announce: bool,
) -> Result<(), Problem> {
    for record in devices {
        let id = &record.device.id;
        let kind = record.device.device_type.as_str();
        let last = state.store.get_snapshot(id).await?;
        state.store.delete_device(id).await?;
        state.store.delete_resource(locations::DEVICE_LOCATION_KIND, id).await?;
        // Per-vehicle smart charging goes with the vehicle.
        state.store.delete_resource(crate::smart_charging::POLICY_KIND, id).await?;
        state.store.delete_resource(crate::smart_charging::OVERRIDE_KIND, id).await?;
        if announce {
            let resource = last.map(|s| s.resource).unwrap_or_else(|| json!({ "id": id }));
            state
                .store
                .append_event(Event {
                    id: String::new(),
                    event: format!("user:{kind}:deleted"),
                    user_id: record.device.user_id.clone(),
                    created_at: state.clock.now(),
                    payload: json!({ kind: resource }),
                })
                .await?;
        }
    }
    Ok(())
}

async fn list(
    state: &ApiState,
    client: &ClientId,
    q: PageQuery,
) -> Result<Json<Paginated<Value>>, Problem> {
    let page = state.store.list_users(&client.0, &q.to_request()?).await?;
    let data = page
        .items
        .into_iter()
        .map(|user| {
            json!({
                "id": user.id,
                "createdAt": user.created_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                // Deprecated in the reference API; oemgate grants linked users every scope.
                "scopes": ["all"],
            })
        })
        .collect();
    Ok(Json(Paginated {
        data,
        pagination: PaginationCursors { after: page.after, before: page.before },
    }))
}

async fn get_user(
    state: &ApiState,
    client: &ClientId,
    user_id: &str,
) -> Result<Json<Value>, Problem> {
    let user = access::user_for_client(state, client, user_id).await?;
    let accounts = state.store.accounts_of_user(&user.id).await?;
    let valid: BTreeMap<String, bool> = accounts
        .iter()
        .map(|a| (a.account.account_id.clone(), a.invalid_since.is_none()))
        .collect();
    // (vendor, type) -> all accounts reading it valid.
    let mut linked: BTreeMap<(String, &'static str), bool> = BTreeMap::new();
    for device in devices_of(state, client, &user.id).await? {
        let Some(account_valid) = valid.get(&device.account_id) else { continue };
        let entry = linked
            .entry((device.vendor.clone(), device.device.device_type.as_str()))
            .or_insert(true);
        *entry &= *account_valid;
    }
    let linked_vendors: Vec<Value> = linked
        .into_iter()
        .map(|((vendor, vendor_type), is_valid)| {
            json!({ "vendor": vendor, "vendorType": vendor_type, "isValid": is_valid })
        })
        .collect();
    Ok(Json(json!({ "id": user.id, "linkedVendors": linked_vendors })))
}

/// `DELETE /users/{userId}`: everything of the user, then the user.
async fn unlink(state: &ApiState, client: &ClientId, user_id: &str) -> Result<StatusCode, Problem> {
    let user = access::user_for_client(state, client, user_id).await?;
    remove_devices(state, &devices_of(state, client, &user.id).await?, true).await?;
    for account in state.store.accounts_of_user(&user.id).await? {
        state.store.delete_account(&account.account.account_id).await?;
    }
    for kind in USER_RESOURCE_KINDS {
        let owner = ResourceOwner::User(user.id.clone());
        let request =
            PageRequest { page_size: oemgate_store::MAX_PAGE_SIZE, ..PageRequest::default() };
        loop {
            // Always the first page: what it held is deleted before the next read.
            let page = state.store.list_resources(kind, &owner, &request).await?;
            if page.items.is_empty() {
                break;
            }
            for resource in page.items {
                state.store.delete_resource(kind, &resource.id).await?;
            }
        }
    }
    state.store.delete_user(&user.id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /users/{userId}/authorization`: credentials and the devices they read; the user
/// and its locations stay.
async fn deauthorize(
    state: &ApiState,
    client: &ClientId,
    user_id: &str,
) -> Result<StatusCode, Problem> {
    let user = access::user_for_client(state, client, user_id).await?;
    remove_devices(state, &devices_of(state, client, &user.id).await?, false).await?;
    for account in state.store.accounts_of_user(&user.id).await? {
        state.store.delete_account(&account.account.account_id).await?;
    }
    Ok(StatusCode::NO_CONTENT)
}

fn vendor_name(vendor: &str) -> Result<String, Problem> {
    let valid = !vendor.is_empty()
        && vendor.len() <= 40
        && vendor.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if valid {
        Ok(vendor.to_string())
    } else {
        Err(Problem::bad_request(format!(
            "Path parameter \"vendor\" must be a vendor name such as \"TESLA\", got {vendor:?}."
        )))
    }
}

fn vendor_type(raw: &str) -> Result<VendorType, Problem> {
    devices::COLLECTIONS.iter().map(|(t, _)| *t).find(|t| t.as_str() == raw).ok_or_else(|| {
        let names: Vec<&str> = devices::COLLECTIONS.iter().map(|(t, _)| t.as_str()).collect();
        Problem::bad_request(format!(
            "Path parameter \"vendorType\" must be one of {}, got {raw:?}.",
            names.join(", ")
        ))
    })
}

/// `DELETE /users/{userId}/vendors/{vendor}[/{vendorType}]`.
async fn disconnect(
    state: &ApiState,
    client: &ClientId,
    user_id: &str,
    vendor: &str,
    only: Option<VendorType>,
) -> Result<StatusCode, Problem> {
    let user = access::user_for_client(state, client, user_id).await?;
    let same_vendor = |name: &str| name.eq_ignore_ascii_case(vendor);
    let devices = devices_of(state, client, &user.id).await?;
    let (going, staying): (Vec<DeviceRecord>, Vec<DeviceRecord>) = devices
        .into_iter()
        .filter(|d| same_vendor(&d.vendor))
        .partition(|d| only.is_none_or(|kind| d.device.device_type == kind));
    remove_devices(state, &going, true).await?;
    // An account goes once it reads no remaining device of the user.
    let still_read: BTreeSet<&str> = staying.iter().map(|d| d.account_id.as_str()).collect();
    for account in state.store.accounts_of_user(&user.id).await? {
        let id = &account.account.account_id;
        if same_vendor(&account.account.vendor) && !still_read.contains(id.as_str()) {
            state.store.delete_account(id).await?;
        }
    }
    Ok(StatusCode::NO_CONTENT)
}

/// The user routes.
pub fn routes() -> Routes {
    let user_item = json!({
        "type": "object",
        "required": ["id", "createdAt", "scopes"],
        "properties": {
            "id": {"type": "string"},
            "createdAt": {"type": "string", "format": "date-time"},
            "scopes": {"type": "array", "items": {"type": "string"},
                       "description": "Deprecated; linked users are granted every scope."}
        }
    });
    let user = json!({
        "type": "object",
        "required": ["id", "linkedVendors"],
        "properties": {
            "id": {"type": "string"},
            "linkedVendors": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["vendor", "vendorType", "isValid"],
                    "properties": {
                        "vendor": {"type": "string"},
                        "vendorType": {"type": "string",
                                       "enum": VendorType::ALL.iter().map(|t| t.as_str()).collect::<Vec<_>>()},
                        "isValid": {"type": "boolean",
                                    "description": "False once the vendor rejected the credentials."}
                    }
                }
            }
        }
    });
    let user_id = ("userId", "ID of the user.");
    Routes::new()
        .get(
            "/users",
            Op::new("listUsers", "Users", "List users")
                .paged()
                .ok_list_of("A page of users.", user_item)
                .link("getUser", "userId", "/data/0/id")
                .link("listUserVehicles", "userId", "/data/0/id")
                .link("listUserLocations", "userId", "/data/0/id")
                .link("listSchedules", "userId", "/data/0/id")
                .link("getChargingStatistics", "userId", "/data/0/id"),
            |State(state): State<ApiState>,
             client: ClientId,
             q: Result<Query<PageQuery>, QueryRejection>| async move {
                list(&state, &client, devices::query(q)?).await
            },
        )
        .get(
            "/users/{userId}",
            Op::new("getUser", "Users", "Get a user and the vendors it linked")
                .path(user_id.0, user_id.1)
                .ok_schema(200, "The user.", user),
            |State(state): State<ApiState>, client: ClientId, Path(id): Path<String>| async move {
                get_user(&state, &client, &id).await
            },
        )
        .delete(
            "/users/{userId}",
            Op::new("unlinkUser", "Users", "Delete a user with everything it linked")
                .path(user_id.0, user_id.1)
                .empty(204, "The user, its accounts, devices and resources are gone."),
            |State(state): State<ApiState>, client: ClientId, Path(id): Path<String>| async move {
                unlink(&state, &client, &id).await
            },
        )
        .delete(
            "/users/{userId}/authorization",
            Op::new("deauthorizeUser", "Users", "Delete a user's vendor credentials and devices")
                .path(user_id.0, user_id.1)
                .empty(204, "The accounts and their devices are gone; the user stays."),
            |State(state): State<ApiState>, client: ClientId, Path(id): Path<String>| async move {
                deauthorize(&state, &client, &id).await
            },
        )
        .delete(
            "/users/{userId}/vendors/{vendor}",
            Op::new("disconnectVendor", "Users", "Disconnect a vendor from a user")
                .path(user_id.0, user_id.1)
                .path("vendor", "The vendor, e.g. TESLA.")
                .empty(204, "The vendor's accounts and devices are gone."),
            |State(state): State<ApiState>,
             client: ClientId,
             Path((id, vendor)): Path<(String, String)>| async move {
                let vendor = vendor_name(&vendor)?;
                disconnect(&state, &client, &id, &vendor, None).await
            },
        )
        .delete(
            "/users/{userId}/vendors/{vendor}/{vendorType}",
            Op::new("disconnectVendorType", "Users", "Disconnect one device type of a vendor")
                .path(user_id.0, user_id.1)
                .path("vendor", "The vendor, e.g. TESLA.")
                .path("vendorType", "The device type, e.g. vehicle.")
                .empty(204, "The vendor's devices of that type are gone."),
            |State(state): State<ApiState>,
             client: ClientId,
             Path((id, vendor, kind)): Path<(String, String, String)>| async move {
                let vendor = vendor_name(&vendor)?;
                let kind = vendor_type(&kind)?;
                disconnect(&state, &client, &id, &vendor, Some(kind)).await
            },
        )
}
