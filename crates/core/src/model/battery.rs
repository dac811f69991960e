//! Home batteries: the `Battery` resource, its nested objects and operation modes.

use serde::{Deserialize, Serialize};

use super::common::{Capability, DeviceLocation, Timestamp, Vendor, nullable, optional_nullable};

/// A battery's position and current Location (schema `BatteryLocation`).
pub type BatteryLocation = DeviceLocation;

/// A residential energy-storage unit (schema `Battery`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Battery {
    /// Battery ID.
    pub id: String,
    /// The user that linked this battery.
    pub user_id: String,
    /// The battery's vendor.
    pub vendor: BatteryVendor,
    /// Last successful communication with the vendor, or when the battery was linked.
    #[schema(value_type = String, format = DateTime)]
    pub last_seen: Timestamp,
    /// Whether live data is currently reachable.
    pub is_reachable: bool,
    /// Latest charge state.
    pub charge_state: BatteryChargeState,
    /// Current configuration.
    pub config: BatteryConfig,
    /// Descriptive information.
    pub information: BatteryInformation,
    /// Which operation modes this battery supports.
    pub capabilities: BatteryCapabilities,
    /// Scopes the user granted for this battery.
    pub scopes: Vec<String>,
    /// Position and current Location.
    pub location: BatteryLocation,
    /// ID of the home energy management system this battery belongs to (schema `?`, OpenAPI
    /// required and nullable; absent, `null` or a value).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "optional_nullable::deserialize"
    )]
    pub hem_system_id: Option<Option<String>>,
}

/// Latest charge information; `null` means "cannot be determined" (schema
/// `BatteryChargeState`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BatteryChargeState {
    /// Power delivery state of the battery.
    #[serde(deserialize_with = "nullable::deserialize")]
    #[schema(required = true)]
    pub status: Option<BatteryChargeStatus>,
    /// Capacity in kWh.
    #[serde(deserialize_with = "nullable::deserialize")]
    #[schema(required = true)]
    pub battery_capacity: Option<f64>,
    /// Remaining charge in percent.
    #[serde(deserialize_with = "nullable::deserialize")]
    #[schema(required = true)]
    pub battery_level: Option<f64>,
    /// Charge rate in kW; positive while charging.
    #[serde(deserialize_with = "nullable::deserialize")]
    #[schema(required = true)]
    pub charge_rate: Option<f64>,
    /// User-set reserve in percent below which the battery does not discharge.
    #[serde(deserialize_with = "nullable::deserialize")]
    #[schema(required = true)]
    pub discharge_limit: Option<f64>,
    /// Time of the last charge-state update.
    #[serde(deserialize_with = "nullable::deserialize")]
    #[schema(required = true)]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_updated: Option<Timestamp>,
}

/// A battery's configuration (schema `BatteryConfig`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BatteryConfig {
    /// Current operation mode.
    #[serde(deserialize_with = "nullable::deserialize")]
    #[schema(required = true)]
    pub operation_mode: Option<BatteryConfigOperationMode>,
    /// Time of the last configuration update.
    #[serde(deserialize_with = "nullable::deserialize")]
    #[schema(required = true)]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_updated: Option<Timestamp>,
}

/// Descriptive information about a battery (schema `BatteryInformation`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BatteryInformation {
    /// The vendor's ID for the battery (changes over time; not the resource ID).
    pub id: String,
    /// Human-readable brand ("Tesla").
    pub brand: String,
    /// Model name.
    pub model: String,
    /// Site name set by the user, or a constructed fallback.
    pub site_name: String,
    /// Installation date.
    #[schema(value_type = String, format = DateTime)]
    pub installation_date: Timestamp,
}

/// Which operation modes a battery supports (schema `BatteryCapabilities`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BatteryCapabilities {
    /// Supports `EXPORT_FOCUS`.
    pub export_focus: Capability,
    /// Supports `IMPORT_FOCUS`.
    pub import_focus: Capability,
    /// Supports `TIME_OF_USE`.
    pub time_of_use: Capability,
    /// Supports `SELF_RELIANCE`.
    pub self_reliance: Capability,
    /// Supports `IDLE` (OpenAPI-only; absent when not reported).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle: Option<Capability>,
}

wire_enum! {
    /// What a battery is doing (schema `BatteryChargeStateStatus`; values from the OpenAPI).
    pub enum BatteryChargeStatus {
        Charging => "CHARGING",
        Discharging => "DISCHARGING",
        Idle => "IDLE",
        Fault => "FAULT",
        Unknown => "UNKNOWN",
    }
}

wire_enum! {
    /// An operation mode a battery can be set to (schema
    /// `SetBatteryOperationModePayloadOperationMode`; `IDLE` is OpenAPI-only).
    pub enum BatteryOperationMode {
        /// Prioritize charging the battery.
        ImportFocus => "IMPORT_FOCUS",
        /// Prioritize discharging to the household and grid.
        ExportFocus => "EXPORT_FOCUS",
        /// Follow a user-defined time-of-use schedule.
        TimeOfUse => "TIME_OF_USE",
        /// Minimize reliance on the grid.
        SelfReliance => "SELF_RELIANCE",
        /// Neither charge nor discharge.
        Idle => "IDLE",
    }
}

wire_enum! {
    /// The operation mode a battery reports (schema `BatteryConfigOperationMode`; values from the
    /// OpenAPI): the settable modes plus `UNKNOWN`.
    pub enum BatteryConfigOperationMode {
        /// Prioritize charging the battery.
        ImportFocus => "IMPORT_FOCUS",
        /// Prioritize discharging to the household and grid.
        ExportFocus => "EXPORT_FOCUS",
        /// Follow a user-defined time-of-use schedule.
        TimeOfUse => "TIME_OF_USE",
        /// Minimize reliance on the grid.
        SelfReliance => "SELF_RELIANCE",
        /// Neither charge nor discharge.
        Idle => "IDLE",
        /// The vendor reports a mode oemgate does not map.
        Unknown => "UNKNOWN",
    }
}

impl From<BatteryOperationMode> for BatteryConfigOperationMode {
    fn from(mode: BatteryOperationMode) -> Self {
        match mode {
            BatteryOperationMode::ImportFocus => BatteryConfigOperationMode::ImportFocus,
            BatteryOperationMode::ExportFocus => BatteryConfigOperationMode::ExportFocus,
            BatteryOperationMode::TimeOfUse => BatteryConfigOperationMode::TimeOfUse,
            BatteryOperationMode::SelfReliance => BatteryConfigOperationMode::SelfReliance,
            BatteryOperationMode::Idle => BatteryConfigOperationMode::Idle,
        }
    }
}

impl BatteryConfigOperationMode {
    /// The settable mode this reported mode corresponds to (`None` for `UNKNOWN`).
    pub const fn settable(&self) -> Option<BatteryOperationMode> {
        match self {
            BatteryConfigOperationMode::ImportFocus => Some(BatteryOperationMode::ImportFocus),
            BatteryConfigOperationMode::ExportFocus => Some(BatteryOperationMode::ExportFocus),
            BatteryConfigOperationMode::TimeOfUse => Some(BatteryOperationMode::TimeOfUse),
            BatteryConfigOperationMode::SelfReliance => Some(BatteryOperationMode::SelfReliance),
            BatteryConfigOperationMode::Idle => Some(BatteryOperationMode::Idle),
            BatteryConfigOperationMode::Unknown => None,
        }
    }
}

impl BatteryCapabilities {
    /// The capability for setting `mode`.
    pub fn for_mode(&self, mode: BatteryOperationMode) -> Option<&Capability> {
        match mode {
            BatteryOperationMode::ImportFocus => Some(&self.import_focus),
            BatteryOperationMode::ExportFocus => Some(&self.export_focus),
            BatteryOperationMode::TimeOfUse => Some(&self.time_of_use),
            BatteryOperationMode::SelfReliance => Some(&self.self_reliance),
            BatteryOperationMode::Idle => self.idle.as_ref(),
        }
    }
}

wire_enum! {
    /// A home-battery vendor (schema `BatteryVendor`).
    pub enum BatteryVendor {
        Tesla => "TESLA",
        Enphase => "ENPHASE",
        GivEnergy => "GIVENERGY",
        Huawei => "HUAWEI",
        SolarEdge => "SOLAREDGE",
        Sma => "SMA",
        FoxEss => "FOXESS",
        SolaX => "SOLAX",
        Solis => "SOLIS",
    }
}

impl From<BatteryVendor> for Vendor {
    fn from(v: BatteryVendor) -> Self {
        match v {
            BatteryVendor::Tesla => Vendor::Tesla,
            BatteryVendor::Enphase => Vendor::Enphase,
            BatteryVendor::GivEnergy => Vendor::GivEnergy,
            BatteryVendor::Huawei => Vendor::Huawei,
            BatteryVendor::SolarEdge => Vendor::SolarEdge,
            BatteryVendor::Sma => Vendor::Sma,
            BatteryVendor::FoxEss => Vendor::FoxEss,
            BatteryVendor::SolaX => Vendor::SolaX,
            BatteryVendor::Solis => Vendor::Solis,
        }
    }
}
