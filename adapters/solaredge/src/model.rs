//! SolarEdge Monitoring API JSON: only the fields the adapter reads, every one optional unless
//! the adapter cannot do without it, and tolerant of anything extra.
//!
//! Field names are SolarEdge's own (camelCase, power-flow nodes in upper case: `GRID`,
//! `LOAD`, `PV`, `STORAGE`). Units are as SolarEdge sends them; `map` converts:
//!
//! | where | unit |
//! |---|---|
//! | `overview.currentPower.power` | W |
//! | `overview.*Data.energy` | Wh |
//! | `siteCurrentPowerFlow.*.currentPower` | the flow's `unit` (normally `kW`), **unsigned** |
//! | `siteCurrentPowerFlow.STORAGE.chargeLevel` | % |
//! | `storageData.batteries[].nameplate` | Wh |
//! | `storageData` telemetry `power` | W, positive while charging (unconfirmed) |
//! | telemetry energies (`lifeTimeEnergyCharged`, `fullPackEnergyAvailable`, ...) | Wh |
//! | every date and time (`lastUpdateTime`, `timeStamp`, `installationDate`) | the site's local time, no offset |

use serde::{Deserialize, Deserializer};

/// A site id as SolarEdge sends it (a JSON number; a string is accepted too), as text.
fn id_string<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Id {
        Number(u64),
        Text(String),
    }
    Ok(match Id::deserialize(deserializer)? {
        Id::Number(n) => n.to_string(),
        Id::Text(s) => s,
    })
}

/// `GET /sites/list`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct SitesListResponse {
    /// The page of sites.
    pub sites: SitesList,
}

/// One page of the site list.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct SitesList {
    /// How many sites the key can see in total (all pages).
    #[serde(default)]
    pub count: Option<u64>,
    /// The sites of this page.
    #[serde(default)]
    pub site: Vec<Site>,
}

/// `GET /site/{siteId}/details`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct SiteDetailsResponse {
    /// The site.
    pub details: Site,
}

/// A site, as in the site list and in site details.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Site {
    /// SolarEdge's numeric site id, as text.
    #[serde(deserialize_with = "id_string")]
    pub id: String,
    /// The name the owner or installer gave the site.
    #[serde(default)]
    pub name: Option<String>,
    /// `Active`, `Pending` or `Disabled`.
    #[serde(default)]
    pub status: Option<String>,
    /// Peak power of the PV array, kWp.
    #[serde(default)]
    pub peak_power: Option<f64>,
    /// `YYYY-MM-DD`, site-local.
    #[serde(default)]
    pub installation_date: Option<String>,
    /// `Optimizers & Inverters`, ...
    #[serde(default, rename = "type")]
    pub site_type: Option<String>,
    /// Where the site is (only the time zone is read: addresses are personal data).
    #[serde(default)]
    pub location: Option<SiteLocation>,
}

/// The part of a site's location the adapter reads.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SiteLocation {
    /// IANA time zone name (`Europe/Amsterdam`): every time the API sends is in it.
    #[serde(default)]
    pub time_zone: Option<String>,
}

/// `GET /site/{siteId}/overview`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct OverviewResponse {
    /// The overview.
    pub overview: Overview,
}

/// A site's production overview.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Overview {
    /// `YYYY-MM-DD hh:mm:ss`, site-local: when the values were last updated.
    #[serde(default)]
    pub last_update_time: Option<String>,
    /// Lifetime production.
    #[serde(default)]
    pub life_time_data: Option<EnergyData>,
    /// Production this year.
    #[serde(default)]
    pub last_year_data: Option<EnergyData>,
    /// Production this month.
    #[serde(default)]
    pub last_month_data: Option<EnergyData>,
    /// Production today.
    #[serde(default)]
    pub last_day_data: Option<EnergyData>,
    /// Production now.
    #[serde(default)]
    pub current_power: Option<PowerData>,
    /// `INVERTER` or `METER`: what measured the production.
    #[serde(default)]
    pub measured_by: Option<String>,
}

/// An energy figure.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct EnergyData {
    /// Wh.
    #[serde(default)]
    pub energy: Option<f64>,
}

/// A power figure.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct PowerData {
    /// W.
    #[serde(default)]
    pub power: Option<f64>,
}

/// `GET /sites/{id},{id},.../overview` (the bulk version).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BulkOverviewResponse {
    /// The overviews.
    pub sites_overviews: BulkOverviews,
}

/// The overviews of a bulk call.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BulkOverviews {
    /// How many sites answered.
    #[serde(default)]
    pub count: Option<u64>,
    /// One entry per site (SolarEdge names the list `siteEnergyList` here too).
    #[serde(default)]
    pub site_energy_list: Vec<BulkOverviewEntry>,
}

/// One site of a bulk overview.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BulkOverviewEntry {
    /// The site.
    #[serde(deserialize_with = "id_string")]
    pub site_id: String,
    /// Its overview.
    pub site_overview: Overview,
}

/// `GET /site/{siteId}/currentPowerFlow`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PowerFlowResponse {
    /// The flow (an empty object for a site without power-flow data).
    pub site_current_power_flow: PowerFlow,
}

/// A site's current power flow: unsigned values per node, direction from `connections`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PowerFlow {
    /// Seconds between updates.
    #[serde(default)]
    pub update_refresh_rate: Option<f64>,
    /// Unit of every `currentPower` (`kW`, sometimes `W`).
    #[serde(default)]
    pub unit: Option<String>,
    /// Which way power flows, node to node; node names in inconsistent case.
    #[serde(default)]
    pub connections: Vec<Connection>,
    /// The grid connection (present with a SolarEdge meter).
    #[serde(default, rename = "GRID")]
    pub grid: Option<FlowNode>,
    /// The household consumption.
    #[serde(default, rename = "LOAD")]
    pub load: Option<FlowNode>,
    /// PV production.
    #[serde(default, rename = "PV")]
    pub pv: Option<FlowNode>,
    /// The batteries, together.
    #[serde(default, rename = "STORAGE")]
    pub storage: Option<StorageNode>,
}

/// One arrow of the power flow.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Connection {
    /// Source node (`PV`, `LOAD`, `GRID`, `STORAGE`, any case).
    pub from: String,
    /// Target node.
    pub to: String,
}

/// A node of the power flow.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FlowNode {
    /// `Active`, `Idle` or `Disabled`.
    #[serde(default)]
    pub status: Option<String>,
    /// Unsigned, in the flow's unit.
    #[serde(default)]
    pub current_power: Option<f64>,
}

/// The storage node of the power flow.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StorageNode {
    /// `Active`, `Idle`, `Disabled`, and (unconfirmed) `Charging` / `Discharging`.
    #[serde(default)]
    pub status: Option<String>,
    /// Unsigned, in the flow's unit.
    #[serde(default)]
    pub current_power: Option<f64>,
    /// State of charge, %.
    #[serde(default)]
    pub charge_level: Option<f64>,
    /// The charge is critically low.
    #[serde(default)]
    pub critical: Option<bool>,
}

/// `GET /site/{siteId}/storageData?startTime=..&endTime=..`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StorageDataResponse {
    /// The batteries.
    pub storage_data: StorageData,
}

/// The batteries of a site and their telemetry in the requested window.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StorageData {
    /// How many batteries the site has.
    #[serde(default)]
    pub battery_count: Option<u64>,
    /// One entry per battery.
    #[serde(default)]
    pub batteries: Vec<StorageBattery>,
}

/// One battery in `storageData`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StorageBattery {
    /// Nameplate capacity, Wh.
    #[serde(default)]
    pub nameplate: Option<f64>,
    /// Serial number: the battery's vendor id.
    pub serial_number: String,
    /// Model number.
    #[serde(default)]
    pub model_number: Option<String>,
    /// Number of telemetry entries.
    #[serde(default)]
    pub telemetry_count: Option<u64>,
    /// Telemetry in the requested window, oldest first.
    #[serde(default)]
    pub telemetries: Vec<Telemetry>,
}

/// One battery telemetry sample.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Telemetry {
    /// `YYYY-MM-DD hh:mm:ss`, site-local.
    #[serde(default)]
    pub time_stamp: Option<String>,
    /// W, positive while charging (unconfirmed).
    #[serde(default)]
    pub power: Option<f64>,
    /// SolarEdge's numeric battery state.
    #[serde(default)]
    pub battery_state: Option<f64>,
    /// Wh charged over the battery's life.
    #[serde(default)]
    pub life_time_energy_charged: Option<f64>,
    /// Wh discharged over the battery's life.
    #[serde(default)]
    pub life_time_energy_discharged: Option<f64>,
    /// Wh the battery holds when full (its usable capacity now).
    #[serde(default)]
    pub full_pack_energy_available: Option<f64>,
    /// °C.
    #[serde(default)]
    pub internal_temp: Option<f64>,
    /// Wh charged from the AC grid.
    #[serde(default, rename = "ACGridCharging")]
    pub ac_grid_charging: Option<f64>,
    /// State of charge, % (field name unconfirmed).
    #[serde(default)]
    pub battery_percentage_state: Option<f64>,
}

/// SolarEdge's error body (`application/problem+json`), where it sends one.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct ProblemBody {
    /// A URI naming the problem type.
    #[serde(default, rename = "type")]
    pub problem_type: Option<String>,
    /// A short title ("Unauthorized - Authentication Failed").
    #[serde(default)]
    pub title: Option<String>,
    /// The HTTP status repeated.
    #[serde(default)]
    pub status: Option<u16>,
    /// Details.
    #[serde(default)]
    pub detail: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_may_be_numbers_or_strings() {
        let a: Site = serde_json::from_str(r#"{"id":1234567}"#).unwrap();
        let b: Site = serde_json::from_str(r#"{"id":"1234567","name":"x"}"#).unwrap();
        assert_eq!(a.id, "1234567");
        assert_eq!(b.id, "1234567");
        assert!(serde_json::from_str::<Site>(r#"{"id":null}"#).is_err());
    }

    #[test]
    fn empty_power_flow_parses() {
        let r: PowerFlowResponse = serde_json::from_str(r#"{"siteCurrentPowerFlow":{}}"#).unwrap();
        assert_eq!(r.site_current_power_flow, PowerFlow::default());
    }
}
