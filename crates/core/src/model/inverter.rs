//! Solar inverters: the `Inverter` resource and its nested objects.

use serde::{Deserialize, Serialize};

use super::common::{Capability, DeviceLocation, Timestamp, Vendor, nullable, optional_nullable};

/// An inverter's position and current Location (schema `InverterLocation`).
pub type InverterLocation = DeviceLocation;

/// A solar inverter (schema `Inverter`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Inverter {
    /// Inverter ID.
    pub id: String,
    /// The user that linked this inverter.
    pub user_id: String,
    /// The inverter's vendor.
    pub vendor: InverterVendor,
    /// Last live data from the inverter, or when it was linked.
    #[schema(value_type = String, format = DateTime)]
    pub last_seen: Timestamp,
    /// Whether live data is currently reachable.
    pub is_reachable: bool,
    /// Latest production state.
    pub production_state: InverterProductionState,
    /// IANA time zone of the inverter's location.
    #[serde(deserialize_with = "nullable::deserialize")]
    #[schema(required = true)]
    pub timezone: Option<String>,
    /// What this inverter supports.
    pub capabilities: InverterCapabilities,
    /// Scopes the user granted for this inverter.
    pub scopes: Vec<String>,
    /// Descriptive information.
    pub information: InverterInformation,
    /// Position and current Location.
    pub location: InverterLocation,
    /// ID of the home energy management system this inverter belongs to (OpenAPI-only;
    /// absent, `null` or a value).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "optional_nullable::deserialize"
    )]
    pub hem_system_id: Option<Option<String>>,
}

/// Latest solar production; `null` means "cannot be determined" (schema
/// `InverterProductionState`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InverterProductionState {
    /// Current production rate in kW.
    #[serde(deserialize_with = "nullable::deserialize")]
    #[schema(required = true)]
    pub production_rate: Option<f64>,
    /// Actively producing.
    #[serde(deserialize_with = "nullable::deserialize")]
    #[schema(required = true)]
    pub is_producing: Option<bool>,
    /// Lifetime production in kWh.
    #[serde(deserialize_with = "nullable::deserialize")]
    #[schema(required = true)]
    pub total_lifetime_production: Option<f64>,
    /// Time of the last production update.
    #[serde(deserialize_with = "nullable::deserialize")]
    #[schema(required = true)]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_updated: Option<Timestamp>,
}

/// Descriptive information about an inverter (schema `InverterInformation`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InverterInformation {
    /// The vendor's ID for the inverter (not the resource ID).
    pub id: String,
    /// Serial number.
    #[serde(deserialize_with = "nullable::deserialize")]
    #[schema(required = true)]
    pub sn: Option<String>,
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

/// What an inverter supports (schema `InverterCapabilities`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InverterCapabilities {
    /// Full availability of `productionState`.
    pub production_state: Capability,
    /// Production statistics available from the vendor.
    pub production_statistics: Capability,
}

wire_enum! {
    /// A solar-inverter vendor (schema `InverterVendor`; some spellings are mixed-case).
    pub enum InverterVendor {
        Afore => "AFORE",
        ApSystems => "APSYSTEMS",
        CsiSolar => "CSISolar",
        Deye => "Deye",
        Enphase => "ENPHASE",
        FoxEss => "FOXESS",
        Fronius => "FRONIUS",
        GivEnergy => "GIVENERGY",
        GoodWe => "GOODWE",
        Growatt => "GROWATT",
        Hoymiles => "Hoymiles",
        Huawei => "HUAWEI",
        Invt => "INVT",
        Sma => "SMA",
        Sofar => "SOFAR",
        SolarEdge => "SOLAREDGE",
        SolArk => "SOLARK",
        SolaX => "SOLAX",
        Solis => "SOLIS",
        SolPlanet => "SOLPLANET",
        Sungrow => "SUNGROW",
        SunSynk => "SUNSYNK",
        Tesla => "TESLA",
        Tsun => "TSUN",
    }
}

impl From<InverterVendor> for Vendor {
    fn from(v: InverterVendor) -> Self {
        match v {
            InverterVendor::Afore => Vendor::Afore,
            InverterVendor::ApSystems => Vendor::ApSystems,
            InverterVendor::CsiSolar => Vendor::CsiSolar,
            InverterVendor::Deye => Vendor::Deye,
            InverterVendor::Enphase => Vendor::Enphase,
            InverterVendor::FoxEss => Vendor::FoxEss,
            InverterVendor::Fronius => Vendor::Fronius,
            InverterVendor::GivEnergy => Vendor::GivEnergy,
            InverterVendor::GoodWe => Vendor::GoodWe,
            InverterVendor::Growatt => Vendor::Growatt,
            InverterVendor::Hoymiles => Vendor::Hoymiles,
            InverterVendor::Huawei => Vendor::Huawei,
            InverterVendor::Invt => Vendor::Invt,
            InverterVendor::Sma => Vendor::Sma,
            InverterVendor::Sofar => Vendor::Sofar,
            InverterVendor::SolarEdge => Vendor::SolarEdge,
            InverterVendor::SolArk => Vendor::SolArk,
            InverterVendor::SolaX => Vendor::SolaX,
            InverterVendor::Solis => Vendor::Solis,
            InverterVendor::SolPlanet => Vendor::SolPlanet,
            InverterVendor::Sungrow => Vendor::Sungrow,
            InverterVendor::SunSynk => Vendor::SunSynk,
            InverterVendor::Tesla => Vendor::Tesla,
            InverterVendor::Tsun => Vendor::Tsun,
        }
    }
}
