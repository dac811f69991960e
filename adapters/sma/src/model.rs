//! SMA's JSON: only the fields the adapter reads, tolerant of everything else.
//!
//! Shapes follow SMA's Monitoring API (`/v1/plants`, `/v1/plants/{plantId}/devices`,
//! `.../measurements/sets/{setType}/{period}`) and its Keycloak-style token endpoint. Ids come
//! as strings (`"25057"`, GUIDs for Sunny Portal Classic plants) but numbers are accepted too.
//! Lists that are `null` read as empty; a list whose key is missing is a protocol error (the
//! body is not SMA's).
//!
//! Measurement values are `Option<f64>`: SMA omits keys a plant has no device for (a PV-only
//! plant has no `battery*` keys) and may send `null` for an interval without data. Units
//! depend on the period: power in W for `Recent`, `Day` and `Week`, energy in Wh for `Month`,
//! `Year` and `Total`.

use serde::{Deserialize, Deserializer};

/// An id SMA sends as a string or as a number, kept as a string.
fn id_string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Id {
        Text(String),
        Number(serde_json::Number),
    }
    Ok(match Id::deserialize(d)? {
        Id::Text(s) => s,
        Id::Number(n) => n.to_string(),
    })
}

/// A list that must be present but may be `null` (read as empty).
fn null_as_empty<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

/// The token endpoint's answer (`POST /oauth2/token`).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct TokenResponse {
    /// The bearer token (about 5 minutes).
    pub access_token: String,
    /// The refresh token (SMA issues a new one on every refresh).
    #[serde(default)]
    pub refresh_token: Option<String>,
    /// Seconds until the access token expires (300 at SMA).
    #[serde(default)]
    pub expires_in: Option<i64>,
    /// Seconds until the refresh token expires (Keycloak's field).
    #[serde(default)]
    pub refresh_expires_in: Option<i64>,
    /// `Bearer`.
    #[serde(default)]
    pub token_type: Option<String>,
}

/// An OAuth error from the token endpoint (`{"error":"invalid_grant",...}`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct OAuthErrorBody {
    /// `invalid_grant`, `invalid_client`, ...
    #[serde(default)]
    pub error: Option<String>,
    /// Human text.
    #[serde(default)]
    pub error_description: Option<String>,
}

/// An error body of the Monitoring API and its gateway: `{"statusCode":429,"message":"..."}`
/// or `{"code":"...","message":"..."}`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiErrorBody {
    /// Human text ("Rate limit is exceeded. Try again in 37 seconds.").
    #[serde(default)]
    pub message: Option<String>,
    /// SMA's error code, as text or number.
    #[serde(default)]
    pub code: Option<serde_json::Value>,
    /// The HTTP status, repeated by the gateway.
    #[serde(default)]
    pub status_code: Option<u16>,
}

/// A PV plant (an SMA site).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Plant {
    /// Numeric for ennexOS plants, a GUID for Sunny Portal Classic plants.
    #[serde(deserialize_with = "id_string")]
    pub plant_id: String,
    /// The owner's name for the plant.
    #[serde(default)]
    pub name: Option<String>,
    /// IANA time zone of the plant; measurement times are local to it.
    #[serde(default)]
    pub timezone: Option<String>,
}

/// `GET /v1/plants`: the plants the token may read (empty until the owner consented).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct PlantList {
    /// The plants.
    #[serde(deserialize_with = "null_as_empty")]
    pub plants: Vec<Plant>,
}

/// One device of a plant.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Device {
    /// SMA's device id.
    #[serde(deserialize_with = "id_string")]
    pub device_id: String,
    /// The owner's name for it.
    #[serde(default)]
    pub name: Option<String>,
    /// SMA's device class: `Solar Inverters`, `Battery Inverter`, `Monitoring and control`,
    /// `Sensor technology`, ...
    #[serde(default, rename = "type")]
    pub device_type: Option<String>,
    /// Product name (`SB5.0-1AV-41`, `Sunny Home Manager 2.0`, `Energy Meter`).
    #[serde(default)]
    pub product: Option<String>,
    /// SMA's product id.
    #[serde(default)]
    pub product_id: Option<i64>,
    /// Serial number.
    #[serde(default)]
    pub serial: Option<String>,
    /// Nameplate AC power in W (inverters).
    #[serde(default)]
    pub generator_power: Option<f64>,
    /// False for devices removed from the plant.
    #[serde(default)]
    pub is_active: Option<bool>,
}

/// `GET /v1/plants/{plantId}/devices`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct PlantDevices {
    /// The plant.
    #[serde(default)]
    pub plant: Option<Plant>,
    /// Its devices.
    #[serde(deserialize_with = "null_as_empty")]
    pub devices: Vec<Device>,
}

/// One interval of an `EnergyBalance` set (W for `Recent`, Wh for `Total`).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BalancePoint {
    /// Start of the interval, local time of the plant without offset
    /// (`2020-03-23T12:40:00`).
    #[serde(default)]
    pub time: Option<String>,
    /// PV production.
    #[serde(default)]
    pub pv_generation: Option<f64>,
    /// Consumption of the household.
    #[serde(default)]
    pub total_consumption: Option<f64>,
    /// Into the battery.
    #[serde(default)]
    pub battery_charging: Option<f64>,
    /// Out of the battery.
    #[serde(default)]
    pub battery_discharging: Option<f64>,
    /// State of charge in %.
    #[serde(default)]
    pub battery_state_of_charge: Option<f64>,
    /// Exported to the grid.
    #[serde(default)]
    pub grid_feed_in: Option<f64>,
    /// Imported from the grid.
    #[serde(default)]
    pub grid_consumption: Option<f64>,
    /// PV used on site.
    #[serde(default)]
    pub self_consumption: Option<f64>,
}

/// A measurement set: `{"plant":{..},"setType":"EnergyBalance","resolution":"FiveMinutes",
/// "set":[..]}` (device sets also carry `device`).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MeasurementSet {
    /// The plant the set belongs to.
    #[serde(default)]
    pub plant: Option<Plant>,
    /// `EnergyBalance`, `EnergyAndPowerPv`, ...
    #[serde(default)]
    pub set_type: Option<String>,
    /// `FiveMinutes`, `OneDay`, `OneYear`, ...
    #[serde(default)]
    pub resolution: Option<String>,
    /// The intervals, oldest first. Empty when the plant sent nothing yet.
    #[serde(deserialize_with = "null_as_empty")]
    pub set: Vec<BalancePoint>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_as_strings_or_numbers() {
        let p: Plant = serde_json::from_str(r#"{"plantId":25057}"#).unwrap();
        assert_eq!(p.plant_id, "25057");
        let p: Plant = serde_json::from_str(r#"{"plantId":"a1b2-c3","extra":1}"#).unwrap();
        assert_eq!(p.plant_id, "a1b2-c3");
        assert!(serde_json::from_str::<Plant>(r#"{"plantId":null}"#).is_err());
    }

    #[test]
    fn null_lists_are_empty_missing_lists_are_errors() {
        let l: PlantList = serde_json::from_str(r#"{"plants":null}"#).unwrap();
        assert!(l.plants.is_empty());
        assert!(serde_json::from_str::<PlantList>("{}").is_err());
        assert!(serde_json::from_str::<MeasurementSet>(r#"{"setType":"EnergyBalance"}"#).is_err());
        let s: MeasurementSet = serde_json::from_str(r#"{"set":[{"time":null}]}"#).unwrap();
        assert_eq!(s.set, vec![BalancePoint::default()]);
    }
}
