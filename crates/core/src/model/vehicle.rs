//! Vehicles: the `Vehicle` resource (schema `GetVehicleResponse`) and its nested objects.

use serde::{Deserialize, Serialize};

use super::common::{Capability, DeviceLocation, Timestamp, Vendor, nullable, optional_nullable};

/// A vehicle's position and current Location (schema `GetVehicleLocation`).
pub type VehicleLocation = DeviceLocation;

/// An electric or plug-in hybrid vehicle (schema `GetVehicleResponse`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Vehicle {
    /// Vehicle ID.
    pub id: String,
    /// The user that linked this vehicle.
    pub user_id: String,
    /// The vehicle's make.
    pub vendor: VehicleVendor,
    /// Last live data from the vehicle, or when it was linked.
    #[schema(value_type = String, format = DateTime)]
    pub last_seen: Timestamp,
    /// Whether live data is currently reachable; `false` means delayed updates.
    #[serde(deserialize_with = "nullable::deserialize")]
    #[schema(required = true)]
    pub is_reachable: Option<bool>,
    /// Descriptive information.
    pub information: VehicleInformation,
    /// Latest charge state.
    pub charge_state: VehicleChargeState,
    /// Smart-charging configuration.
    pub smart_charging_policy: VehicleSmartChargingPolicy,
    /// Odometer reading.
    pub odometer: VehicleOdometer,
    /// What this vehicle supports.
    pub capabilities: VehicleCapabilities,
    /// Scopes the user granted for this vehicle.
    pub scopes: Vec<String>,
    /// GPS position and current Location.
    pub location: VehicleLocation,
}

/// Descriptive information about a vehicle (schema `VehicleInformation`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct VehicleInformation {
    /// Vehicle identification number.
    #[serde(deserialize_with = "nullable::deserialize")]
    #[schema(required = true)]
    pub vin: Option<String>,
    /// Human-readable brand ("Tesla").
    #[serde(deserialize_with = "nullable::deserialize")]
    #[schema(required = true)]
    pub brand: Option<String>,
    /// Model name.
    #[serde(deserialize_with = "nullable::deserialize")]
    #[schema(required = true)]
    pub model: Option<String>,
    /// Production year.
    #[serde(deserialize_with = "nullable::deserialize")]
    #[schema(required = true)]
    pub year: Option<f64>,
    /// User-defined nickname.
    #[serde(deserialize_with = "nullable::deserialize")]
    #[schema(required = true)]
    pub display_name: Option<String>,
}

/// Latest battery and charging information; `null` means "cannot be determined" (schema
/// `VehicleChargeState`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct VehicleChargeState {
    /// Remaining battery in percent.
    #[serde(deserialize_with = "nullable::deserialize")]
    #[schema(required = true)]
    pub battery_level: Option<f64>,
    /// Estimated remaining range in kilometers.
    #[serde(deserialize_with = "nullable::deserialize")]
    #[schema(required = true)]
    pub range: Option<f64>,
    /// Connected to a charger, charging or not.
    #[serde(deserialize_with = "nullable::deserialize")]
    #[schema(required = true)]
    pub is_plugged_in: Option<bool>,
    /// Actively charging.
    #[serde(deserialize_with = "nullable::deserialize")]
    #[schema(required = true)]
    pub is_charging: Option<bool>,
    /// Reached the charge limit; `null` when `powerDeliveryState` is `UNKNOWN`.
    #[serde(deserialize_with = "nullable::deserialize")]
    #[schema(required = true)]
    pub is_fully_charged: Option<bool>,
    /// Usable battery capacity in kWh.
    #[serde(deserialize_with = "nullable::deserialize")]
    #[schema(required = true)]
    pub battery_capacity: Option<f64>,
    /// Charge limit in percent of capacity; `null` means not reported (assume 100).
    #[serde(deserialize_with = "nullable::deserialize")]
    #[schema(required = true)]
    pub charge_limit: Option<f64>,
    /// Current charge rate in kW; only while charging.
    #[serde(deserialize_with = "nullable::deserialize")]
    #[schema(required = true)]
    pub charge_rate: Option<f64>,
    /// Minutes until the charging intent completes; only while charging.
    #[serde(deserialize_with = "nullable::deserialize")]
    #[schema(required = true)]
    pub charge_time_remaining: Option<f64>,
    /// Time of the last charge-state update.
    #[serde(deserialize_with = "nullable::deserialize")]
    #[schema(required = true)]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_updated: Option<Timestamp>,
    /// Maximum current the vehicle draws from the charger, in amperes.
    #[serde(deserialize_with = "nullable::deserialize")]
    #[schema(required = true)]
    pub max_current: Option<f64>,
    /// Power delivery between vehicle and charger.
    pub power_delivery_state: PowerDeliveryState,
    /// ID of the charger this vehicle is plugged into, when both belong to the same user
    /// (`OptionalNullable`: absent, `null` or a value).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "optional_nullable::deserialize"
    )]
    pub plugged_in_charger_id: Option<Option<String>>,
}

/// Smart-charging configuration of a vehicle (schema `VehicleSmartChargingPolicy`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct VehicleSmartChargingPolicy {
    /// Smart charging may control this vehicle.
    pub is_enabled: bool,
    /// Hour-minute deadline ("07:00") for a full charge.
    #[serde(deserialize_with = "nullable::deserialize")]
    #[schema(required = true)]
    pub deadline: Option<String>,
    /// Charge immediately up to this percentage regardless of price.
    pub minimum_charge_limit: f64,
}

/// Odometer reading (schema `VehicleOdometer`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct VehicleOdometer {
    /// Distance in kilometers.
    #[serde(deserialize_with = "nullable::deserialize")]
    #[schema(required = true)]
    pub distance: Option<f64>,
    /// Time of the last odometer update.
    #[serde(deserialize_with = "nullable::deserialize")]
    #[schema(required = true)]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_updated: Option<Timestamp>,
}

/// What a vehicle supports (schema `VehicleCapabilities`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct VehicleCapabilities {
    /// Full availability of `information`.
    pub information: Capability,
    /// Full availability of `chargeState`.
    pub charge_state: Capability,
    /// Full availability of `location`.
    pub location: Capability,
    /// Full availability of `odometer`.
    pub odometer: Capability,
    /// Supports setting the maximum charge current.
    pub set_max_current: Capability,
    /// Supports the START charging command.
    pub start_charging: Capability,
    /// Supports the STOP charging command.
    pub stop_charging: Capability,
    /// Supports smart charging (may change over time).
    pub smart_charging: Capability,
}

wire_enum! {
    /// Power delivery between a vehicle and its charger (schema `VehiclePowerDeliveryState`; the
    /// charger's variant, without `PLUGGED_IN:COMPLETE`, is [`crate::model::ChargerPowerDeliveryState`]).
    pub enum PowerDeliveryState {
        Unknown => "UNKNOWN",
        Unplugged => "UNPLUGGED",
        PluggedInInitializing => "PLUGGED_IN:INITIALIZING",
        PluggedInCharging => "PLUGGED_IN:CHARGING",
        PluggedInStopped => "PLUGGED_IN:STOPPED",
        PluggedInComplete => "PLUGGED_IN:COMPLETE",
        PluggedInNoPower => "PLUGGED_IN:NO_POWER",
        PluggedInFault => "PLUGGED_IN:FAULT",
        PluggedInDischarging => "PLUGGED_IN:DISCHARGING",
    }
}

/// The vehicle spelling of [`PowerDeliveryState`] (schema `VehiclePowerDeliveryState`).
pub type VehiclePowerDeliveryState = PowerDeliveryState;

impl PowerDeliveryState {
    /// Whether a cable is connected (every `PLUGGED_IN:*` value).
    pub const fn is_plugged_in(&self) -> bool {
        !matches!(self, PowerDeliveryState::Unknown | PowerDeliveryState::Unplugged)
    }
}

wire_enum! {
    /// A vehicle make (schema `VehicleVendor`).
    pub enum VehicleVendor {
        Acura => "ACURA",
        Audi => "AUDI",
        Bmw => "BMW",
        Honda => "HONDA",
        Hyundai => "HYUNDAI",
        Jaguar => "JAGUAR",
        LandRover => "LANDROVER",
        Kia => "KIA",
        Mercedes => "MERCEDES",
        Mini => "MINI",
        Nissan => "NISSAN",
        Peugeot => "PEUGEOT",
        Porsche => "PORSCHE",
        Renault => "RENAULT",
        Seat => "SEAT",
        Skoda => "SKODA",
        Tesla => "TESLA",
        Volkswagen => "VOLKSWAGEN",
        Volvo => "VOLVO",
        Ford => "FORD",
        Opel => "OPEL",
        Ds => "DS",
        Toyota => "TOYOTA",
        Lexus => "LEXUS",
        Citroen => "CITROEN",
        Cupra => "CUPRA",
        Vauxhall => "VAUXHALL",
        Fiat => "FIAT",
        Rivian => "RIVIAN",
        Nio => "NIO",
        Chevrolet => "CHEVROLET",
        Gmc => "GMC",
        Cadillac => "CADILLAC",
        Xpeng => "XPENG",
        Polestar => "POLESTAR",
        Subaru => "SUBARU",
        Jeep => "JEEP",
        Mazda => "MAZDA",
        Mg => "MG",
        Chrysler => "CHRYSLER",
        Dodge => "DODGE",
        Ram => "RAM",
        AlfaRomeo => "ALFAROMEO",
        Lancia => "LANCIA",
        Lucid => "LUCID",
        Byd => "BYD",
        Dacia => "DACIA",
        Alpine => "ALPINE",
    }
}

impl From<VehicleVendor> for Vendor {
    fn from(v: VehicleVendor) -> Self {
        match v {
            VehicleVendor::Acura => Vendor::Acura,
            VehicleVendor::Audi => Vendor::Audi,
            VehicleVendor::Bmw => Vendor::Bmw,
            VehicleVendor::Honda => Vendor::Honda,
            VehicleVendor::Hyundai => Vendor::Hyundai,
            VehicleVendor::Jaguar => Vendor::Jaguar,
            VehicleVendor::LandRover => Vendor::LandRover,
            VehicleVendor::Kia => Vendor::Kia,
            VehicleVendor::Mercedes => Vendor::Mercedes,
            VehicleVendor::Mini => Vendor::Mini,
            VehicleVendor::Nissan => Vendor::Nissan,
            VehicleVendor::Peugeot => Vendor::Peugeot,
            VehicleVendor::Porsche => Vendor::Porsche,
            VehicleVendor::Renault => Vendor::Renault,
            VehicleVendor::Seat => Vendor::Seat,
            VehicleVendor::Skoda => Vendor::Skoda,
            VehicleVendor::Tesla => Vendor::Tesla,
            VehicleVendor::Volkswagen => Vendor::Volkswagen,
            VehicleVendor::Volvo => Vendor::Volvo,
            VehicleVendor::Ford => Vendor::Ford,
            VehicleVendor::Opel => Vendor::Opel,
            VehicleVendor::Ds => Vendor::Ds,
            VehicleVendor::Toyota => Vendor::Toyota,
            VehicleVendor::Lexus => Vendor::Lexus,
            VehicleVendor::Citroen => Vendor::Citroen,
            VehicleVendor::Cupra => Vendor::Cupra,
            VehicleVendor::Vauxhall => Vendor::Vauxhall,
            VehicleVendor::Fiat => Vendor::Fiat,
            VehicleVendor::Rivian => Vendor::Rivian,
            VehicleVendor::Nio => Vendor::Nio,
            VehicleVendor::Chevrolet => Vendor::Chevrolet,
            VehicleVendor::Gmc => Vendor::Gmc,
            VehicleVendor::Cadillac => Vendor::Cadillac,
            VehicleVendor::Xpeng => Vendor::Xpeng,
            VehicleVendor::Polestar => Vendor::Polestar,
            VehicleVendor::Subaru => Vendor::Subaru,
            VehicleVendor::Jeep => Vendor::Jeep,
            VehicleVendor::Mazda => Vendor::Mazda,
            VehicleVendor::Mg => Vendor::Mg,
            VehicleVendor::Chrysler => Vendor::Chrysler,
            VehicleVendor::Dodge => Vendor::Dodge,
            VehicleVendor::Ram => Vendor::Ram,
            VehicleVendor::AlfaRomeo => Vendor::AlfaRomeo,
            VehicleVendor::Lancia => Vendor::Lancia,
            VehicleVendor::Lucid => Vendor::Lucid,
            VehicleVendor::Byd => Vendor::Byd,
            VehicleVendor::Dacia => Vendor::Dacia,
            VehicleVendor::Alpine => Vendor::Alpine,
        }
    }
}
