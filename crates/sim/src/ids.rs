//! Identifiers of sites and devices in the simulated world.
//!
//! Ids are short, human-readable strings (`site-000001`, `veh-000003`, `bat-000002`, ...)
//! wrapped in newtypes. They `Display`, serialize as plain strings and sort by creation
//! order within a kind, so vendor simulators can derive stable vendor ids from them (a VIN,
//! a serial number) by hashing or formatting.

use std::fmt;

use serde::{Deserialize, Serialize};

macro_rules! string_id {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Wraps a string as an id (no validation: unknown ids simply find nothing).
            pub fn new(id: impl Into<String>) -> Self {
                Self(id.into())
            }

            /// The id as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                Self(s.to_owned())
            }
        }

        impl From<String> for $name {
            fn from(s: String) -> Self {
                Self(s)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

string_id! {
    /// A site (home): `site-000001`.
    SiteId
}

string_id! {
    /// A device of any kind: `veh-…`, `bat-…`, `inv-…`, `mtr-…`, `chg-…`, `hvac-…`.
    DeviceId
}

/// What kind of device an id names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceKind {
    /// An electric vehicle.
    Vehicle,
    /// A home battery.
    Battery,
    /// A PV inverter.
    Inverter,
    /// A grid meter.
    Meter,
    /// An EV charger (wallbox).
    Charger,
    /// A heating/cooling unit with a thermostat.
    Hvac,
}

impl DeviceKind {
    /// Lower-case name (`vehicle`, `battery`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            DeviceKind::Vehicle => "vehicle",
            DeviceKind::Battery => "battery",
            DeviceKind::Inverter => "inverter",
            DeviceKind::Meter => "meter",
            DeviceKind::Charger => "charger",
            DeviceKind::Hvac => "hvac",
        }
    }

    /// The prefix of generated ids of this kind.
    pub fn id_prefix(self) -> &'static str {
        match self {
            DeviceKind::Vehicle => "veh",
            DeviceKind::Battery => "bat",
            DeviceKind::Inverter => "inv",
            DeviceKind::Meter => "mtr",
            DeviceKind::Charger => "chg",
            DeviceKind::Hvac => "hvac",
        }
    }
}

impl fmt::Display for DeviceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a device belongs and who makes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceInfo {
    /// The device.
    pub id: DeviceId,
    /// Its kind.
    pub kind: DeviceKind,
    /// The vendor whose simulated cloud exposes it (lower case: `tesla`, `enphase`, ...).
    pub vendor: String,
    /// The site it belongs to (a vehicle's home).
    pub site: SiteId,
}
