//! EV chargers: the `Charger` resource and its nested objects.

use serde::{Deserialize, Serialize};

use super::common::{Capability, Timestamp, Vendor, nullable, optional_nullable};
use super::vehicle::PowerDeliveryState;

/// An EV charger (schema `Charger`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Charger {
    /// Charger ID.
    pub id: String,
    /// The user that linked this charger.
    pub user_id: String,
    /// The charger's vendor.
    pub vendor: ChargerVendor,
    /// Last live data from the charger, or when it was linked.
    #[schema(value_type = String, format = DateTime)]
    pub last_seen: Timestamp,
    /// Whether live data is currently reachable.
    pub is_reachable: bool,
    /// Latest charge state.
    pub charge_state: ChargerChargeState,
    /// What this charger supports.
    pub capabilities: ChargerCapabilities,
    /// Scopes the user granted for this charger.
    pub scopes: Vec<String>,
    /// Descriptive information.
    pub information: ChargerInformation,
    /// The Location this charger is at.
    pub location: ChargerLocation,
}

/// Latest charging information; `null` means "cannot be determined" (schema
/// `ChargerChargeState`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChargerChargeState {
    /// A vehicle is connected.
    #[serde(deserialize_with = "nullable::deserialize")]
    #[schema(required = true)]
    pub is_plugged_in: Option<bool>,
    /// Actively charging.
    #[serde(deserialize_with = "nullable::deserialize")]
    #[schema(required = true)]
    pub is_charging: Option<bool>,
    /// Current charge rate in kW.
    #[serde(deserialize_with = "nullable::deserialize")]
    #[schema(required = true)]
    pub charge_rate: Option<f64>,
    /// Time of the last charge-state update.
    #[serde(deserialize_with = "nullable::deserialize")]
    #[schema(required = true)]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_updated: Option<Timestamp>,
    /// Maximum current the charger may deliver, in amperes.
    #[serde(deserialize_with = "nullable::deserialize")]
    #[schema(required = true)]
    pub max_current: Option<f64>,
    /// Power delivery between charger and vehicle.
    pub power_delivery_state: ChargerPowerDeliveryState,
    /// ID of the vehicle plugged into this charger, when both belong to the same user
    /// (OpenAPI-only; absent, `null` or a value).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "optional_nullable::deserialize"
    )]
    pub plugged_in_vehicle_id: Option<Option<String>>,
}

/// Descriptive information about a charger (schema `ChargerInformation`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChargerInformation {
    /// Human-readable brand ("Zaptec").
    pub brand: String,
    /// Model name.
    pub model: String,
    /// Production year.
    #[serde(deserialize_with = "nullable::deserialize")]
    #[schema(required = true)]
    pub year: Option<f64>,
    /// Serial number.
    pub serial_number: String,
}

/// What a charger supports (schema `ChargerCapabilities`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChargerCapabilities {
    /// Full availability of `information`.
    pub information: Capability,
    /// Full availability of `chargeState` (schema `Any`, OpenAPI `Capability`).
    pub charge_state: Capability,
    /// Supports the START charging command.
    pub start_charging: Capability,
    /// Supports the STOP charging command.
    pub stop_charging: Capability,
    /// Supports setting the maximum current.
    pub set_max_current: Capability,
}

/// The Location a charger is at (schema `ChargerLocation`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChargerLocation {
    /// ID of the Location, if any.
    #[serde(deserialize_with = "nullable::deserialize")]
    #[schema(required = true)]
    pub id: Option<String>,
    /// When the location was last updated.
    #[serde(deserialize_with = "nullable::deserialize")]
    #[schema(required = true)]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_updated: Option<Timestamp>,
}

wire_enum! {
    /// Power delivery between a charger and a vehicle (schema `ChargerPowerDeliveryState`: the
    /// vehicle values without `PLUGGED_IN:COMPLETE`).
    pub enum ChargerPowerDeliveryState {
        Unknown => "UNKNOWN",
        Unplugged => "UNPLUGGED",
        PluggedInInitializing => "PLUGGED_IN:INITIALIZING",
        PluggedInCharging => "PLUGGED_IN:CHARGING",
        PluggedInStopped => "PLUGGED_IN:STOPPED",
        PluggedInNoPower => "PLUGGED_IN:NO_POWER",
        PluggedInFault => "PLUGGED_IN:FAULT",
        PluggedInDischarging => "PLUGGED_IN:DISCHARGING",
    }
}

impl From<ChargerPowerDeliveryState> for PowerDeliveryState {
    fn from(state: ChargerPowerDeliveryState) -> Self {
        match state {
            ChargerPowerDeliveryState::Unknown => PowerDeliveryState::Unknown,
            ChargerPowerDeliveryState::Unplugged => PowerDeliveryState::Unplugged,
            ChargerPowerDeliveryState::PluggedInInitializing => {
                PowerDeliveryState::PluggedInInitializing
            }
            ChargerPowerDeliveryState::PluggedInCharging => PowerDeliveryState::PluggedInCharging,
            ChargerPowerDeliveryState::PluggedInStopped => PowerDeliveryState::PluggedInStopped,
            ChargerPowerDeliveryState::PluggedInNoPower => PowerDeliveryState::PluggedInNoPower,
            ChargerPowerDeliveryState::PluggedInFault => PowerDeliveryState::PluggedInFault,
            ChargerPowerDeliveryState::PluggedInDischarging => {
                PowerDeliveryState::PluggedInDischarging
            }
        }
    }
}

impl ChargerPowerDeliveryState {
    /// Whether a cable is connected (every `PLUGGED_IN:*` value).
    pub const fn is_plugged_in(&self) -> bool {
        !matches!(self, ChargerPowerDeliveryState::Unknown | ChargerPowerDeliveryState::Unplugged)
    }
}

wire_enum! {
    /// A charger vendor (schema `ChargerVendor`; `ALFEN` is OpenAPI-only, see the module notes).
    pub enum ChargerVendor {
        Zaptec => "ZAPTEC",
        Easee => "EASEE",
        Wallbox => "WALLBOX",
        Eo => "EO",
        ChargeAmps => "CHARGEAMPS",
        EvBox => "EVBOX",
        GoE => "GOE",
        ChargePoint => "CHARGEPOINT",
        EnelX => "ENELX",
        Tesla => "TESLA",
        Ohme => "OHME",
        Garo => "GARO",
        Schneider => "SCHNEIDER",
        PodPoint => "PODPOINT",
        Keba => "KEBA",
        Hypervolt => "HYPERVOLT",
        MyEnergi => "MYENERGI",
        Heidelberg => "HEIDELBERG",
        Alfen => "ALFEN",
    }
}

impl From<ChargerVendor> for Vendor {
    fn from(v: ChargerVendor) -> Self {
        match v {
            ChargerVendor::Zaptec => Vendor::Zaptec,
            ChargerVendor::Easee => Vendor::Easee,
            ChargerVendor::Wallbox => Vendor::Wallbox,
            ChargerVendor::Eo => Vendor::Eo,
            ChargerVendor::ChargeAmps => Vendor::ChargeAmps,
            ChargerVendor::EvBox => Vendor::EvBox,
            ChargerVendor::GoE => Vendor::GoE,
            ChargerVendor::ChargePoint => Vendor::ChargePoint,
            ChargerVendor::EnelX => Vendor::EnelX,
            ChargerVendor::Tesla => Vendor::Tesla,
            ChargerVendor::Ohme => Vendor::Ohme,
            ChargerVendor::Garo => Vendor::Garo,
            ChargerVendor::Schneider => Vendor::Schneider,
            ChargerVendor::PodPoint => Vendor::PodPoint,
            ChargerVendor::Keba => Vendor::Keba,
            ChargerVendor::Hypervolt => Vendor::Hypervolt,
            ChargerVendor::MyEnergi => Vendor::MyEnergi,
            ChargerVendor::Heidelberg => Vendor::Heidelberg,
            ChargerVendor::Alfen => Vendor::Alfen,
        }
    }
}
