//! Who may see what. API clients own users; users own their devices, locations, schedules
//! and everything else. Every handler that takes a user id or a resource id from a request
//! goes through these functions, so the ownership rule lives in one place: a resource that
//! belongs to another client answers 404 exactly like one that does not exist.
//!
//! Until users are stored as records owned by a client, every user and device is visible to
//! every authenticated client (the behaviour before client isolation); the signatures are the
//! contract the handlers rely on.

use oemgate_core::VendorType;
use oemgate_store::DeviceRecord;

use crate::ApiState;
use crate::auth::ClientId;
use crate::problem::Problem;

/// The device `id` of class `device_type`, if the client may see it; 404 otherwise.
pub async fn device_for_client(
    state: &ApiState,
    client: &ClientId,
    device_type: VendorType,
    id: &str,
) -> Result<DeviceRecord, Problem> {
    let _ = client;
    match state.store.get_device(id).await? {
        Some(record) if record.device.device_type == device_type => Ok(record),
        _ => Err(Problem::not_found(format!(
            "No {} with id {id:?} was found.",
            device_type.as_str()
        ))),
    }
}

/// Checks that the user exists and belongs to the client; 404 otherwise.
pub async fn user_for_client(
    state: &ApiState,
    client: &ClientId,
    user_id: &str,
) -> Result<(), Problem> {
    let _ = (state, client, user_id);
    Ok(())
}

/// Creates the user for the client if it is new (linking creates users); 404 when the id is
/// taken by another client's user.
pub async fn ensure_user(
    state: &ApiState,
    client: &ClientId,
    user_id: &str,
) -> Result<(), Problem> {
    let _ = (state, client, user_id);
    Ok(())
}
