//! Locations: user-defined places (home, cabin) that devices are matched against.

use serde::{Deserialize, Serialize};

use super::common::Timestamp;

/// A user's Location (schema `LocationResponse`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Location {
    /// User-supplied name.
    pub name: String,
    /// Latitude in degrees.
    pub latitude: f64,
    /// Longitude in degrees.
    pub longitude: f64,
    /// Location ID.
    pub id: String,
    /// The user the Location belongs to.
    pub user_id: String,
    /// IANA time zone used for schedules, tariffs and deadlines (UTC when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone_name: Option<String>,
    /// When the Location was created (OpenAPI-only; absent when not known).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub created_at: Option<Timestamp>,
}
