//! Users and the vendor accounts they linked.

use serde::{Deserialize, Serialize};

use super::common::{Vendor, VendorType};

/// A user and their linked vendors (schema `UserResponse`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct User {
    /// The user's ID.
    pub id: String,
    /// Vendor accounts the user linked.
    pub linked_vendors: Vec<LinkedVendor>,
}

/// One vendor account a user linked for one device class (schema `LinkedVendor`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LinkedVendor {
    /// The vendor.
    pub vendor: Vendor,
    /// The device class linked.
    pub vendor_type: VendorType,
    /// Whether the credentials still work; `false` means the user must relink.
    pub is_valid: bool,
}
