//! Interventions: steps a user can take to make a device capable of something.

use serde::{Deserialize, Serialize};

use super::common::{Timestamp, Vendor, VendorType, nullable};

/// A user-resolvable issue blocking a capability (schema `IntegrationAgnosticIntervention`;
/// an `IntegrationIntervention` is the same object with `vendor`, `vendorType` and `brand`
/// non-null, so one struct covers both).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Intervention {
    /// Intervention ID.
    pub id: String,
    /// The vendor it applies to; `null` when not specific to one vendor.
    #[serde(deserialize_with = "nullable::deserialize")]
    #[schema(required = true)]
    pub vendor: Option<Vendor>,
    /// The device class it applies to; `null` when not specific to one class.
    #[serde(deserialize_with = "nullable::deserialize")]
    #[schema(required = true)]
    pub vendor_type: Option<VendorType>,
    /// Human-readable brand; `null` when not specific to one brand.
    #[serde(deserialize_with = "nullable::deserialize")]
    #[schema(required = true)]
    pub brand: Option<String>,
    /// When the intervention was introduced.
    #[schema(value_type = String, format = DateTime)]
    pub introduced_at: Timestamp,
    /// Whether it concerns the vendor account or a device setting.
    pub domain: InterventionDomain,
    /// How to resolve it.
    pub resolution: InterventionResolution,
}

/// How to resolve an intervention (schema `Resolution1` / `Resolution2`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InterventionResolution {
    /// Localized title.
    pub title: String,
    /// Localized Markdown description of the steps.
    pub description: String,
    /// Where it is resolved.
    pub access: ResolutionAccess,
    /// Who can resolve it.
    pub agent: ResolutionAgent,
    /// An action the user takes to resolve it, if any.
    #[serde(deserialize_with = "nullable::deserialize")]
    #[schema(required = true)]
    pub action: Option<ResolutionAction>,
}

wire_enum! {
    /// What an intervention concerns (schema `Domain1` / `Domain2`).
    pub enum InterventionDomain {
        /// The vendor service account.
        Account => "Account",
        /// A setting on the device.
        Device => "Device",
    }
}

wire_enum! {
    /// Where an intervention is resolved (schema `Access1` / `Access2`).
    pub enum ResolutionAccess {
        /// Remotely, e.g. in the vendor's app.
        Remote => "Remote",
        /// On the device itself.
        Physical => "Physical",
    }
}

wire_enum! {
    /// Who resolves an intervention (schema `Agent1` / `Agent2`).
    pub enum ResolutionAgent {
        /// The user.
        User => "User",
        /// A third party, e.g. a licensed installer.
        ThirdParty => "ThirdParty",
    }
}

wire_enum! {
    /// Action that resolves an intervention (schema `Action1` / `Action2`; values from the
    /// OpenAPI).
    pub enum ResolutionAction {
        /// Relink the account through Link UI.
        Link => "Link",
    }
}
