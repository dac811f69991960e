//! Device resources, served from the store's snapshots. A GET never calls a vendor.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use oemgate_core::VendorType;
use oemgate_store::{DeviceFilter, Page, Snapshot};
use serde_json::Value;

use crate::ApiState;
use crate::pagination::{PageQuery, Paginated, PaginationCursors};
use crate::problem::Problem;

fn query(q: Result<Query<PageQuery>, QueryRejection>) -> Result<PageQuery, Problem> {
    q.map(|Query(q)| q).map_err(|e| Problem::bad_request(format!("invalid query string: {e}")))
}

fn envelope(page: Page<Snapshot>) -> Json<Paginated<Value>> {
    Json(Paginated {
        data: page.items.into_iter().map(|s| s.resource).collect(),
        pagination: PaginationCursors { after: page.after, before: page.before },
    })
}

async fn list(
    state: &ApiState,
    filter: DeviceFilter,
    q: PageQuery,
) -> Result<Json<Paginated<Value>>, Problem> {
    let page = state.store.list_snapshots(&filter, &q.to_request()?).await?;
    Ok(envelope(page))
}

async fn get_one(
    state: &ApiState,
    device_type: VendorType,
    id: &str,
) -> Result<Json<Value>, Problem> {
    let noun = device_type.as_str();
    match state.store.get_snapshot(id).await? {
        Some(snapshot) if snapshot.device_type == device_type => Ok(Json(snapshot.resource)),
        _ => Err(Problem::not_found(format!("No {noun} with id {id:?} was found."))),
    }
}

/// `GET /vehicles`
pub async fn list_vehicles(
    State(state): State<ApiState>,
    q: Result<Query<PageQuery>, QueryRejection>,
) -> Result<Json<Paginated<Value>>, Problem> {
    let filter = DeviceFilter { user_id: None, device_type: Some(VendorType::Vehicle) };
    list(&state, filter, query(q)?).await
}

/// `GET /users/{userId}/vehicles`
pub async fn list_user_vehicles(
    State(state): State<ApiState>,
    Path(user_id): Path<String>,
    q: Result<Query<PageQuery>, QueryRejection>,
) -> Result<Json<Paginated<Value>>, Problem> {
    let filter = DeviceFilter { user_id: Some(user_id), device_type: Some(VendorType::Vehicle) };
    list(&state, filter, query(q)?).await
}

/// `GET /vehicles/{vehicleId}`
pub async fn get_vehicle(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, Problem> {
    get_one(&state, VendorType::Vehicle, &id).await
}
