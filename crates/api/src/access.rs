//! Who may see what. API clients own users; users own their devices, locations, schedules
//! and everything else. Every handler that takes a user id or a resource id from a request
//! goes through these functions, so the ownership rule lives in one place: a resource that
//! belongs to another client answers 404 exactly like one that does not exist.
//!
//! A user belongs to the client that created it ([`ensure_user`]: linking and location
//! creation create users). A device belongs to its user, so to that user's client; device
//! lists are restricted with [`client_filter`], which the store serves from a per-client
//! index. Actions belong to the client of the device they target.

use oemgate_core::VendorType;
use oemgate_store::{DeviceFilter, DeviceRecord, ResourceRecord, UserRecord};

use crate::ApiState;
use crate::auth::ClientId;
use crate::problem::Problem;

fn no_device(device_type: VendorType, id: &str) -> Problem {
    Problem::not_found(format!("No {} with id {id:?} was found.", device_type.as_str()))
}

fn no_user(user_id: &str) -> Problem {
    Problem::not_found_titled(
        "User does not exist",
        format!("Could not find user with ID {user_id:?}."),
    )
}

/// Whether the device's user belongs to the client.
async fn owns_device(
    state: &ApiState,
    client: &ClientId,
    record: &DeviceRecord,
) -> Result<bool, Problem> {
    Ok(state
        .store
        .get_user(&record.device.user_id)
        .await?
        .is_some_and(|user| user.client_id == client.0))
}

/// The device `id` of class `device_type`, if the client may see it; 404 otherwise.
pub async fn device_for_client(
    state: &ApiState,
    client: &ClientId,
    device_type: VendorType,
    id: &str,
) -> Result<DeviceRecord, Problem> {
    match state.store.get_device(id).await? {
        Some(record)
            if record.device.device_type == device_type
                && owns_device(state, client, &record).await? =>
        {
            Ok(record)
        }
        _ => Err(no_device(device_type, id)),
    }
}

/// The user, if it exists and belongs to the client; 404 otherwise.
pub async fn user_for_client(
    state: &ApiState,
    client: &ClientId,
    user_id: &str,
) -> Result<UserRecord, Problem> {
    match state.store.get_user(user_id).await? {
        Some(user) if user.client_id == client.0 => Ok(user),
        _ => Err(no_user(user_id)),
    }
}

/// Creates the user for the client if it is new (linking and location creation create users)
/// and returns it; 404 when the id is taken by another client's user.
pub async fn ensure_user(
    state: &ApiState,
    client: &ClientId,
    user_id: &str,
) -> Result<UserRecord, Problem> {
    if user_id.trim().is_empty() {
        return Err(Problem::bad_request("\"userId\" must not be empty."));
    }
    let user = UserRecord {
        id: user_id.to_string(),
        client_id: client.0.clone(),
        created_at: state.clock.now(),
    };
    let stored = state.store.put_user(user).await?;
    if stored.client_id == client.0 { Ok(stored) } else { Err(no_user(user_id)) }
}

/// A device filter restricted to the client's users (and optionally one user and type).
pub fn client_filter(
    client: &ClientId,
    user_id: Option<String>,
    device_type: Option<VendorType>,
) -> DeviceFilter {
    DeviceFilter { user_id, device_type, client_id: Some(client.0.clone()) }
}

/// The resource of `kind` and `id`, if it belongs to one of the client's users; 404 (with
/// `noun` in the detail) otherwise.
pub async fn resource_for_client(
    state: &ApiState,
    client: &ClientId,
    kind: &str,
    noun: &str,
    id: &str,
) -> Result<ResourceRecord, Problem> {
    match state.store.get_resource(kind, id).await? {
        Some(resource) if resource.client_id == client.0 => Ok(resource),
        _ => Err(Problem::not_found(format!("No {noun} with id {id:?} was found."))),
    }
}

/// Checks that an action, whose target device belongs to `owner` (the user recorded in the
/// action), is the client's; 404 as for an unknown action otherwise. The user decides, not
/// the device, so an action stays visible to its client after its device was unlinked.
pub async fn action_for_client(
    state: &ApiState,
    client: &ClientId,
    action_id: &str,
    owner: &str,
) -> Result<(), Problem> {
    match state.store.get_user(owner).await? {
        Some(user) if user.client_id == client.0 => Ok(()),
        _ => Err(Problem::not_found(format!("No action with id {action_id:?} was found."))),
    }
}
