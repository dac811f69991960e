//! Device resources, served from the store's snapshots. A GET never calls a vendor.
//!
//! Every route is scoped to the calling API client through [`crate::access`]: lists cover the
//! client's users only, and another client's device answers 404. Chargers and HVAC units also
//! carry the Location a client assigned to them (`PUT /chargers/{id}`, `PUT /hvacs/{id}`, see
//! [`crate::locations`]); the assignment is stored apart from the polled snapshot, which the
//! poller rewrites, and laid over it when served. Vehicles likewise carry their stored
//! smart-charging policy ([`crate::smart_charging`]).

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use oemgate_core::VendorType;
use oemgate_store::{DeviceFilter, Snapshot};
use serde_json::Value;

use crate::ApiState;
use crate::access::{self, client_filter};
use crate::auth::ClientId;
use crate::locations;
use crate::openapi::{Op, Routes};
use crate::pagination::{PageQuery, Paginated, PaginationCursors};
use crate::problem::Problem;
use crate::smart_charging;

/// The query string as page parameters (400 naming the problem otherwise).
pub fn query(q: Result<Query<PageQuery>, QueryRejection>) -> Result<PageQuery, Problem> {
    q.map(|Query(q)| q).map_err(|e| Problem::bad_request(format!("invalid query string: {e}")))
}

/// Snapshots' resources as served: with their assigned Locations laid over them (one store
/// round trip for the whole page).
pub async fn served(state: &ApiState, snapshots: Vec<Snapshot>) -> Result<Vec<Value>, Problem> {
    let located: Vec<&str> = snapshots
        .iter()
        .filter(|s| locations::has_location(s.device_type))
        .map(|s| s.device_id.as_str())
        .collect();
    let assignments = if located.is_empty() {
        Vec::new()
    } else {
        state.store.get_resources(locations::DEVICE_LOCATION_KIND, &located).await?
    };
    let mut assignments = assignments.into_iter().flatten();
    let mut next = assignments.next();
    let mut served = Vec::with_capacity(snapshots.len());
    for snapshot in snapshots {
        let mut resource = snapshot.resource;
        if next.as_ref().is_some_and(|a| a.id == snapshot.device_id) {
            if let Some(assignment) = next.take() {
                locations::overlay_location(snapshot.device_type, &assignment, &mut resource);
            }
            next = assignments.next();
        }
        served.push(resource);
    }
    overlay_policies(state, &mut served).await?;
    Ok(served)
}

/// Vehicles carry the smart-charging policy stored through the API (the default while none
/// is), never a vendor's idea of it: smart charging is oemgate's, not the car's.
async fn overlay_policies(state: &ApiState, served: &mut [Value]) -> Result<(), Problem> {
    let vehicles: Vec<usize> = served
        .iter()
        .enumerate()
        .filter(|(_, r)| r.get("smartChargingPolicy").is_some() && r["id"].is_string())
        .map(|(i, _)| i)
        .collect();
    if vehicles.is_empty() {
        return Ok(());
    }
    let ids: Vec<&str> = vehicles.iter().filter_map(|i| served[*i]["id"].as_str()).collect();
    let policies = state.store.get_resources(smart_charging::POLICY_KIND, &ids).await?;
    for (index, policy) in vehicles.into_iter().zip(policies) {
        served[index]["smartChargingPolicy"] = smart_charging::served_policy(policy.as_ref());
    }
    Ok(())
}

async fn list(
    state: &ApiState,
    filter: DeviceFilter,
    q: PageQuery,
) -> Result<Json<Paginated<Value>>, Problem> {
    let page = state.store.list_snapshots(&filter, &q.to_request()?).await?;
    Ok(Json(Paginated {
        data: served(state, page.items).await?,
        pagination: PaginationCursors { after: page.after, before: page.before },
    }))
}

/// The served resource of a device the client may see; 404 otherwise (also while it has no
/// snapshot yet: there is nothing to serve).
///
/// The ownership check (the device record, then its user), the snapshot and what is laid
/// over it (a charger's or HVAC unit's location assignment, a vehicle's policy) are
/// independent reads, so they run concurrently: the store pipelines them on its connection
/// and a GET waits for two round trips instead of four. Nothing is served unless the check
/// passes, and a failed check answers 404 whatever the other reads found.
pub async fn get_one(
    state: &ApiState,
    client: &ClientId,
    device_type: VendorType,
    id: &str,
) -> Result<Json<Value>, Problem> {
    let not_found =
        || Problem::not_found(format!("No {} with id {id:?} was found.", device_type.as_str()));
    let assignment = async {
        if !locations::has_location(device_type) {
            return Ok(None);
        }
        Ok::<_, Problem>(state.store.get_resource(locations::DEVICE_LOCATION_KIND, id).await?)
    };
    let policy = async {
        if device_type != VendorType::Vehicle {
            return Ok(None);
        }
        Ok::<_, Problem>(state.store.get_resource(smart_charging::POLICY_KIND, id).await?)
    };
    let snapshot = async { Ok::<_, Problem>(state.store.get_snapshot(id).await?) };
    let (_, snapshot, assignment, policy) = tokio::try_join!(
        access::device_for_client(state, client, device_type, id),
        snapshot,
        assignment,
        policy,
    )?;
    let Some(snapshot) = snapshot.filter(|s| s.device_type == device_type) else {
        return Err(not_found());
    };
    let carries_policy = snapshot.resource.get("smartChargingPolicy").is_some();
    if carries_policy && snapshot.resource["id"].as_str() != Some(id) {
        // A resource whose id is not the device's: its policy was not the one read above.
        return Ok(Json(served(state, vec![snapshot]).await?.pop().unwrap_or_default()));
    }
    let mut resource = snapshot.resource;
    if let Some(assignment) = &assignment {
        locations::overlay_location(device_type, assignment, &mut resource);
    }
    // As in `overlay_policies`: vehicles carry the stored policy (the default while none is).
    if carries_policy {
        resource["smartChargingPolicy"] = smart_charging::served_policy(policy.as_ref());
    }
    Ok(Json(resource))
}

/// `POST /{plural}/{id}/refresh-hint`: asks for a poll within seconds. At most one hint per
/// device per `refresh_hint_interval` brings a poll forward; later ones are accepted (204)
/// and folded into it. 404 for an unknown device.
async fn refresh_hint(
    state: &ApiState,
    client: &ClientId,
    device_type: VendorType,
    id: &str,
) -> Result<axum::http::StatusCode, Problem> {
    access::device_for_client(state, client, device_type, id).await?;
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

/// How a device collection is named in paths and in the document.
#[derive(Clone, Copy, Debug)]
pub struct Collection {
    /// The device class.
    pub device_type: VendorType,
    /// Path segment (`vehicles`).
    pub plural: &'static str,
    /// Path parameter of one device (`vehicleId`).
    pub id_param: &'static str,
    /// Document tag and operation-id stem, plural (`Vehicles`).
    pub title: &'static str,
    /// Operation-id stem, singular (`Vehicle`).
    pub singular: &'static str,
}

/// The collections, in [`COLLECTIONS`] order.
pub const NAMED_COLLECTIONS: [Collection; 6] = [
    Collection {
        device_type: VendorType::Vehicle,
        plural: "vehicles",
        id_param: "vehicleId",
        title: "Vehicles",
        singular: "Vehicle",
    },
    Collection {
        device_type: VendorType::Charger,
        plural: "chargers",
        id_param: "chargerId",
        title: "Chargers",
        singular: "Charger",
    },
    Collection {
        device_type: VendorType::Battery,
        plural: "batteries",
        id_param: "batteryId",
        title: "Batteries",
        singular: "Battery",
    },
    Collection {
        device_type: VendorType::Hvac,
        plural: "hvacs",
        id_param: "hvacId",
        title: "HVACs",
        singular: "Hvac",
    },
    Collection {
        device_type: VendorType::Meter,
        plural: "meters",
        id_param: "meterId",
        title: "Meters",
        singular: "Meter",
    },
    Collection {
        device_type: VendorType::Inverter,
        plural: "inverters",
        id_param: "inverterId",
        title: "Inverters",
        singular: "Inverter",
    },
];

/// The routes of every device collection.
pub fn routes() -> Routes {
    use oemgate_core::{Battery, Charger, Hvac, Inverter, Meter, Vehicle};
    collection_routes::<Vehicle>(NAMED_COLLECTIONS[0])
        .merge(collection_routes::<Charger>(NAMED_COLLECTIONS[1]))
        .merge(collection_routes::<Battery>(NAMED_COLLECTIONS[2]))
        .merge(collection_routes::<Hvac>(NAMED_COLLECTIONS[3]))
        .merge(collection_routes::<Meter>(NAMED_COLLECTIONS[4]))
        .merge(collection_routes::<Inverter>(NAMED_COLLECTIONS[5]))
}

/// The routes of one device collection, whose resources are `T`: `GET /{plural}`,
/// `GET /{plural}/{id}`, `POST /{plural}/{id}/refresh-hint` and `GET /users/{userId}/{plural}`.
fn collection_routes<T: utoipa::ToSchema>(c: Collection) -> Routes {
    let Collection { device_type, plural, id_param, title, singular } = c;
    let id_doc = format!("ID of the {}.", device_type.as_str());
    Routes::new()
        .get(
            &format!("/{plural}"),
            Op::new(&format!("list{title}"), title, &format!("List {plural}"))
                .describe(&format!(
                    "The {plural} of every user of the calling client, newest first, as last \
                     read from the vendor (a GET never calls a vendor)."
                ))
                .paged()
                .ok_list::<T>(&format!("A page of {plural}."))
                .link(&format!("get{singular}"), id_param, "/data/0/id")
                .link(&format!("refresh{singular}"), id_param, "/data/0/id"),
            move |State(state): State<ApiState>,
                  client: ClientId,
                  q: Result<Query<PageQuery>, QueryRejection>| async move {
                let filter = client_filter(&client, None, Some(device_type));
                list(&state, filter, query(q)?).await
            },
        )
        .get(
            &format!("/{plural}/{{{id_param}}}"),
            Op::new(&format!("get{singular}"), title, &format!("Get a {}", device_type.as_str()))
                .path(id_param, &id_doc)
                .ok::<T>(200, &format!("The {}.", device_type.as_str())),
            move |State(state): State<ApiState>, client: ClientId, Path(id): Path<String>| async move {
                get_one(&state, &client, device_type, &id).await
            },
        )
        .post(
            &format!("/{plural}/{{{id_param}}}/refresh-hint"),
            Op::new(
                &format!("refresh{singular}"),
                title,
                &format!("Refresh a {}'s data", device_type.as_str()),
            )
            .describe(
                "Asks for a read within seconds. At most one hint per device per refresh \
                 interval brings a poll forward; later ones are accepted and folded into it.",
            )
            .path(id_param, &id_doc)
            .empty(204, "The hint was accepted."),
            move |State(state): State<ApiState>, client: ClientId, Path(id): Path<String>| async move {
                refresh_hint(&state, &client, device_type, &id).await
            },
        )
        .get(
            &format!("/users/{{userId}}/{plural}"),
            Op::new(&format!("listUser{title}"), title, &format!("List a user's {plural}"))
                .path("userId", "ID of the user.")
                .paged()
                .ok_list::<T>(&format!("A page of the user's {plural}.")),
            move |State(state): State<ApiState>,
                  client: ClientId,
                  Path(user_id): Path<String>,
                  q: Result<Query<PageQuery>, QueryRejection>| async move {
                let q = query(q)?;
                access::user_for_client(&state, &client, &user_id).await?;
                let filter = client_filter(&client, Some(user_id), Some(device_type));
                list(&state, filter, q).await
            },
        )
}
