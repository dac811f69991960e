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

/// `POST /{plural}/{id}/refresh-hint`: asks for a poll within seconds. At most one hint per
/// device per `refresh_hint_interval` brings a poll forward; later ones are accepted (204)
/// and folded into it. 404 for an unknown device.
async fn refresh_hint(
    state: &ApiState,
    device_type: VendorType,
    id: &str,
) -> Result<axum::http::StatusCode, Problem> {
    match state.store.get_device(id).await? {
        Some(record) if record.device.device_type == device_type => {}
        _ => {
            return Err(Problem::not_found(format!(
                "No {} with id {id:?} was found.",
                device_type.as_str()
            )));
        }
    }
    let now = state.clock.now();
    if state.store.take_hint(id, now, state.config.refresh_hint_interval).await? {
        state.store.schedule_earlier(id, now).await?;
    }
    Ok(axum::http::StatusCode::NO_CONTENT)
}

/// The six device collections and their path segments.
pub const COLLECTIONS: [(VendorType, &str); 6] = [
    (VendorType::Vehicle, "vehicles"),
    (VendorType::Charger, "chargers"),
    (VendorType::Battery, "batteries"),
    (VendorType::Hvac, "hvacs"),
    (VendorType::Meter, "meters"),
    (VendorType::Inverter, "inverters"),
];

/// The routes of one device collection: `GET /{plural}`, `GET /{plural}/{id}` and
/// `GET /users/{userId}/{plural}`.
pub fn routes(device_type: VendorType, plural: &str) -> axum::Router<ApiState> {
    use axum::routing::get;
    axum::Router::new()
        .route(
            &format!("/{plural}"),
            get(
                move |State(state): State<ApiState>,
                      q: Result<Query<PageQuery>, QueryRejection>| async move {
                    let filter = DeviceFilter { user_id: None, device_type: Some(device_type) };
                    list(&state, filter, query(q)?).await
                },
            ),
        )
        .route(
            &format!("/{plural}/{{id}}"),
            get(move |State(state): State<ApiState>, Path(id): Path<String>| async move {
                get_one(&state, device_type, &id).await
            }),
        )
        .route(
            &format!("/{plural}/{{id}}/refresh-hint"),
            axum::routing::post(
                move |State(state): State<ApiState>, Path(id): Path<String>| async move {
                    refresh_hint(&state, device_type, &id).await
                },
            ),
        )
        .route(
            &format!("/users/{{user_id}}/{plural}"),
            get(
                move |State(state): State<ApiState>,
                      Path(user_id): Path<String>,
                      q: Result<Query<PageQuery>, QueryRejection>| async move {
                    let filter =
                        DeviceFilter { user_id: Some(user_id), device_type: Some(device_type) };
                    list(&state, filter, query(q)?).await
                },
            ),
        )
}
