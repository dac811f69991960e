//! Shared building blocks: timestamps, capabilities, vendor types, the any-vendor enum, the
//! geo-located device location, and the serde helpers behind `Nullable` / `OptionalNullable`.

use serde::{Deserialize, Serialize};

/// Every timestamp in the model: UTC, serialized as RFC 3339 (`"2020-04-07T17:04:26Z"`).
pub type Timestamp = chrono::DateTime<chrono::Utc>;

/// A string did not match any documented value of an enum (from a `FromStr` impl).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseEnumError {
    /// The enum's Rust name.
    pub type_name: &'static str,
    /// The rejected input.
    pub value: String,
}

impl ParseEnumError {
    /// A new error for `value` not being a value of `type_name`.
    pub fn new(type_name: &'static str, value: &str) -> Self {
        Self { type_name, value: value.to_owned() }
    }
}

impl std::fmt::Display for ParseEnumError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "unknown {} value {:?}", self.type_name, self.value)
    }
}

impl std::error::Error for ParseEnumError {}

/// Serde helper for `Nullable[T]` fields: the key must be present, its value may be `null`.
///
/// Plain `Option<T>` fields would accept a missing key as `None`; routing the field through
/// `deserialize_with` makes serde report `missing field` instead.
pub(crate) mod nullable {
    use serde::{Deserialize, Deserializer};

    /// Deserializes a present-but-maybe-null value.
    pub(crate) fn deserialize<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
    where
        D: Deserializer<'de>,
        T: Deserialize<'de>,
    {
        Option::<T>::deserialize(deserializer)
    }
}

/// Serde helper for `OptionalNullable[T]` fields (`Option<Option<T>>`): absent is `None`,
/// `null` is `Some(None)`, a value is `Some(Some(v))`. Pair it with
/// `#[serde(default, skip_serializing_if = "Option::is_none")]` so all three round-trip.
pub(crate) mod optional_nullable {
    use serde::{Deserialize, Deserializer};

    /// Deserializes a present key (value or `null`) as `Some(..)`.
    pub(crate) fn deserialize<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
    where
        D: Deserializer<'de>,
        T: Deserialize<'de>,
    {
        Option::<T>::deserialize(deserializer).map(Some)
    }
}

/// Whether a device supports a feature, and which interventions could make it capable.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Capability {
    /// Fully capable; `false` means partial or missing support.
    pub is_capable: bool,
    /// IDs of interventions the user can make to change this capability.
    pub intervention_ids: Vec<String>,
}

impl Capability {
    /// A capable capability with no interventions.
    pub fn capable() -> Self {
        Self { is_capable: true, intervention_ids: Vec::new() }
    }

    /// An incapable capability with no interventions.
    pub fn incapable() -> Self {
        Self { is_capable: false, intervention_ids: Vec::new() }
    }
}

wire_enum! {
    /// A device class (schema `VendorType`, also `AssetType`).
    pub enum VendorType {
        Vehicle => "vehicle",
        Charger => "charger",
        Hvac => "hvac",
        Inverter => "inverter",
        Battery => "battery",
        Meter => "meter",
    }
}

/// A device's position and the Enode-style Location it is at (vehicles, batteries, meters and
/// inverters; schema `GetVehicleLocation`, `BatteryLocation`, `MeterLocation`,
/// `InverterLocation`, which share these four fields).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeviceLocation {
    /// ID of the Location the device is at, if any.
    #[serde(deserialize_with = "nullable::deserialize")]
    #[schema(required = true)]
    pub id: Option<String>,
    /// Longitude in degrees.
    #[serde(deserialize_with = "nullable::deserialize")]
    #[schema(required = true)]
    pub longitude: Option<f64>,
    /// Latitude in degrees.
    #[serde(deserialize_with = "nullable::deserialize")]
    #[schema(required = true)]
    pub latitude: Option<f64>,
    /// Time of the last received position.
    #[serde(deserialize_with = "nullable::deserialize")]
    #[schema(required = true)]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_updated: Option<Timestamp>,
}

wire_enum! {
    /// Any vendor of any device class (schema `UserResponseVendor` / `InterventionVendor`: the union of
    /// the six per-class vendor enums).
    pub enum Vendor {
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
        Zaptec => "ZAPTEC",
        Easee => "EASEE",
        Wallbox => "WALLBOX",
        Eo => "EO",
        ChargeAmps => "CHARGEAMPS",
        EvBox => "EVBOX",
        GoE => "GOE",
        ChargePoint => "CHARGEPOINT",
        EnelX => "ENELX",
        Ohme => "OHME",
        Garo => "GARO",
        Schneider => "SCHNEIDER",
        PodPoint => "PODPOINT",
        Keba => "KEBA",
        Hypervolt => "HYPERVOLT",
        MyEnergi => "MYENERGI",
        Heidelberg => "HEIDELBERG",
        Alfen => "ALFEN",
        Tado => "TADO",
        Mill => "MILL",
        Adax => "ADAX",
        Ecobee => "ECOBEE",
        Sensibo => "SENSIBO",
        Honeywell => "HONEYWELL",
        Resideo => "RESIDEO",
        Mitsubishi => "MITSUBISHI",
        Micromatic => "MICROMATIC",
        Nibe => "NIBE",
        Panasonic => "PANASONIC",
        Toshiba => "TOSHIBA",
        Daikin => "DAIKIN",
        Nest => "NEST",
        Fujitsu => "FUJITSU",
        Bosch => "BOSCH",
        Netatmo => "NETATMO",
        Enphase => "ENPHASE",
        GivEnergy => "GIVENERGY",
        Huawei => "HUAWEI",
        SolarEdge => "SOLAREDGE",
        Sma => "SMA",
        FoxEss => "FOXESS",
        SolaX => "SOLAX",
        Solis => "SOLIS",
        Afore => "AFORE",
        ApSystems => "APSYSTEMS",
        CsiSolar => "CSISolar",
        Deye => "Deye",
        Fronius => "FRONIUS",
        GoodWe => "GOODWE",
        Growatt => "GROWATT",
        Hoymiles => "Hoymiles",
        Invt => "INVT",
        Sofar => "SOFAR",
        SolArk => "SOLARK",
        SolPlanet => "SOLPLANET",
        Sungrow => "SUNGROW",
        SunSynk => "SUNSYNK",
        Tsun => "TSUN",
    }
}
