//! Meters: the `Meter` resource and its nested objects.

use serde::{Deserialize, Serialize};

use super::common::{Capability, DeviceLocation, Timestamp, Vendor, nullable, optional_nullable};

/// A meter's position and current Location (schema `MeterLocation`).
pub type MeterLocation = DeviceLocation;

/// An energy meter, e.g. a battery system's built-in grid meter (schema `Meter`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Meter {
    /// Meter ID.
    pub id: String,
    /// The user that linked this meter.
    pub user_id: String,
    /// The meter's vendor.
    pub vendor: MeterVendor,
    /// Last successful communication with the vendor, or when the meter was linked.
    #[schema(value_type = String, format = DateTime)]
    pub last_seen: Timestamp,
    /// Whether live data is currently reachable.
    pub is_reachable: bool,
    /// Descriptive information.
    pub information: MeterInformation,
    /// Latest power reading.
    pub energy_state: MeterEnergyState,
    /// Position and current Location.
    pub location: MeterLocation,
    /// What this meter measures.
    pub capabilities: MeterCapabilities,
    /// Scopes the user granted for this meter.
    pub scopes: Vec<String>,
    /// ID of the home energy management system this meter belongs to (OpenAPI-only; absent,
    /// `null` or a value).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "optional_nullable::deserialize"
    )]
    pub hem_system_id: Option<Option<String>>,
}

/// Descriptive information about a meter (schema `MeterInformation`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MeterInformation {
    /// Human-readable brand.
    pub brand: String,
    /// Model name.
    pub model: String,
    /// Site name set by the user, or a constructed fallback.
    pub site_name: String,
    /// Installation date.
    #[schema(value_type = String, format = DateTime)]
    pub installation_date: Timestamp,
}

/// Latest power reading of a meter (schema `MeterEnergyState`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MeterEnergyState {
    /// Power in kW: positive when importing from the grid, negative when exporting.
    #[serde(deserialize_with = "nullable::deserialize")]
    #[schema(required = true)]
    pub power: Option<f64>,
    /// Time of the last reading.
    #[serde(deserialize_with = "nullable::deserialize")]
    #[schema(required = true)]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_updated: Option<Timestamp>,
}

/// What a meter measures (schema `MeterCapabilities`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MeterCapabilities {
    /// Measures consumption (grid import).
    pub measures_consumption: Capability,
    /// Measures production (grid export).
    pub measures_production: Capability,
}

wire_enum! {
    /// A meter vendor (schema `MeterVendor`).
    pub enum MeterVendor {
        Enphase => "ENPHASE",
        GivEnergy => "GIVENERGY",
        Huawei => "HUAWEI",
        Tesla => "TESLA",
        Sma => "SMA",
        SolarEdge => "SOLAREDGE",
        FoxEss => "FOXESS",
        SolaX => "SOLAX",
        Solis => "SOLIS",
    }
}

impl From<MeterVendor> for Vendor {
    fn from(v: MeterVendor) -> Self {
        match v {
            MeterVendor::Enphase => Vendor::Enphase,
            MeterVendor::GivEnergy => Vendor::GivEnergy,
            MeterVendor::Huawei => Vendor::Huawei,
            MeterVendor::Tesla => Vendor::Tesla,
            MeterVendor::Sma => Vendor::Sma,
            MeterVendor::SolarEdge => Vendor::SolarEdge,
            MeterVendor::FoxEss => Vendor::FoxEss,
            MeterVendor::SolaX => Vendor::SolaX,
            MeterVendor::Solis => Vendor::Solis,
        }
    }
}
