//! The adapter boundary: what a vendor crate implements and what crosses it.
//!
//! A vendor crate implements [`VendorAdapter`] (discovery, credential refresh, limits) and one
//! device-class trait per kind of device its cloud serves ([`VehicleApi`], [`ChargerApi`],
//! [`BatteryApi`], [`HvacApi`], [`MeterApi`], [`InverterApi`]). Callers that do not care about
//! the class use the provided [`VendorAdapter::poll`], [`VendorAdapter::poll_batch`] and
//! [`VendorAdapter::execute`], which dispatch on the device's type.
//!
//! Adapters are stateless with respect to credentials: they receive an [`AccountRef`] per
//! call and return [`crate::ErrorKind::AuthExpired`] when the access token no longer works. The
//! caller then calls [`VendorAdapter::refresh_credentials`], stores the result (some vendors
//! issue single-use refresh tokens) and tries again. No retry loop lives in an adapter.

use std::collections::BTreeMap;
use std::fmt;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{AdapterError, ErrorKind};
use crate::model::{
    Battery, BatteryOperationMode, Charger, Hvac, HvacMode, Inverter, Meter, Vehicle, VendorType,
};

/// The credentials of one linked vendor account.
///
/// `Debug` never prints the secrets.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Credentials {
    /// The bearer token (or API key for key-only vendors).
    pub access_token: String,
    /// The refresh token, where the vendor issues one.
    #[serde(default)]
    pub refresh_token: Option<String>,
    /// When the access token stops working, where the vendor says.
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
    /// Vendor-specific extras (region base URL, site id, ...). No secrets here.
    #[serde(default)]
    pub extra: BTreeMap<String, String>,
}

impl Credentials {
    /// The access token to send, or the error to return without sending anything: an empty
    /// token is `AuthExpired` when a refresh token can replace it (else `Unauthorized`), and a
    /// token known to have expired at `now` is `AuthExpired` (some vendors bill the 401).
    pub fn bearer(&self, vendor: &'static str, now: DateTime<Utc>) -> Result<&str, AdapterError> {
        if self.access_token.trim().is_empty() {
            let kind = if self.refresh_token.is_some() {
                ErrorKind::AuthExpired
            } else {
                ErrorKind::Unauthorized
            };
            return Err(AdapterError::new(kind, vendor, "no access token"));
        }
        if let Some(expires_at) = self.expires_at
            && expires_at <= now
        {
            return Err(AdapterError::new(
                ErrorKind::AuthExpired,
                vendor,
                format!("access token expired at {}", expires_at.to_rfc3339()),
            ));
        }
        Ok(&self.access_token)
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("access_token", &"<redacted>")
            .field("refresh_token", &self.refresh_token.as_ref().map(|_| "<redacted>"))
            .field("expires_at", &self.expires_at)
            .field("extra", &self.extra)
            .finish()
    }
}

/// One linked vendor account of a user.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountRef {
    /// The oemgate user that linked the account.
    pub user_id: String,
    /// The vendor name as in the API ("TESLA").
    pub vendor: String,
    /// A stable id for the account at the vendor (used for rate-limit keys).
    pub account_id: String,
    /// The account's credentials.
    pub credentials: Credentials,
}

/// A device oemgate knows about: its own id plus the vendor's handle on it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeviceRef {
    /// oemgate's id for the device (the API's `id`).
    pub id: String,
    /// The owning user.
    pub user_id: String,
    /// The device class.
    pub device_type: VendorType,
    /// The vendor's id for the device (VIN, serial, energy site id ...).
    pub vendor_id: String,
    /// The vendor site that holds the device, where the vendor has sites.
    #[serde(default)]
    pub site_id: Option<String>,
}

/// A device found on a linked account.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DiscoveredDevice {
    /// The device class.
    pub device_type: VendorType,
    /// The vendor's id for the device.
    pub vendor_id: String,
    /// The vendor site that holds it, where the vendor has sites.
    pub site_id: Option<String>,
    /// A name for humans (the vehicle's name, the site's name).
    pub display_name: Option<String>,
}

/// The normalized state of one device, as an adapter read it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "resource", rename_all = "lowercase")]
pub enum DeviceState {
    /// A vehicle.
    Vehicle(Box<Vehicle>),
    /// An EV charger.
    Charger(Box<Charger>),
    /// A home battery.
    Battery(Box<Battery>),
    /// An HVAC unit.
    Hvac(Box<Hvac>),
    /// A meter.
    Meter(Box<Meter>),
    /// A solar inverter.
    Inverter(Box<Inverter>),
}

impl DeviceState {
    /// The device class of this state.
    pub fn device_type(&self) -> VendorType {
        match self {
            DeviceState::Vehicle(_) => VendorType::Vehicle,
            DeviceState::Charger(_) => VendorType::Charger,
            DeviceState::Battery(_) => VendorType::Battery,
            DeviceState::Hvac(_) => VendorType::Hvac,
            DeviceState::Meter(_) => VendorType::Meter,
            DeviceState::Inverter(_) => VendorType::Inverter,
        }
    }

    /// The resource as Enode-style JSON.
    pub fn to_json(&self) -> serde_json::Value {
        let result = match self {
            DeviceState::Vehicle(v) => serde_json::to_value(v),
            DeviceState::Charger(v) => serde_json::to_value(v),
            DeviceState::Battery(v) => serde_json::to_value(v),
            DeviceState::Hvac(v) => serde_json::to_value(v),
            DeviceState::Meter(v) => serde_json::to_value(v),
            DeviceState::Inverter(v) => serde_json::to_value(v),
        };
        // Serializing plain data structs to a Value cannot fail (no maps with non-string keys).
        result.unwrap_or(serde_json::Value::Null)
    }
}

/// What one successful poll observed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Observation {
    /// The normalized resource.
    pub state: DeviceState,
    /// When the read happened (the caller's clock).
    pub observed_at: DateTime<Utc>,
    /// The vendor reported the device asleep; the read used the non-waking endpoint only and
    /// the live parts of the state were carried over or left null.
    pub asleep: bool,
    /// How many vendor requests the read cost (for metrics and pricing).
    pub requests: u32,
}

/// A command a device-class trait can carry out.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Command {
    /// Start charging (vehicle or charger).
    StartCharging,
    /// Stop charging (vehicle or charger).
    StopCharging,
    /// Set the maximum charging current in amperes (vehicle or charger).
    SetMaxCurrent {
        /// Amperes.
        amps: f64,
    },
    /// Set a battery's operation mode.
    SetOperationMode {
        /// The target mode.
        mode: BatteryOperationMode,
    },
    /// Put an HVAC unit on a permanent hold.
    SetPermanentHold {
        /// The hold's mode.
        mode: HvacMode,
        /// Heating setpoint in °C, for HEAT and AUTO.
        heat_setpoint: Option<f64>,
        /// Cooling setpoint in °C, for COOL and AUTO.
        cool_setpoint: Option<f64>,
    },
    /// Let an HVAC unit follow its own schedule again.
    FollowSchedule,
    /// Wake a sleeping vehicle (the executor sends this before a command when needed).
    WakeUp,
}

impl Command {
    /// A stable snake_case name for logs and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            Command::StartCharging => "start_charging",
            Command::StopCharging => "stop_charging",
            Command::SetMaxCurrent { .. } => "set_max_current",
            Command::SetOperationMode { .. } => "set_operation_mode",
            Command::SetPermanentHold { .. } => "set_permanent_hold",
            Command::FollowSchedule => "follow_schedule",
            Command::WakeUp => "wake_up",
        }
    }
}

/// The vendor accepted a command. Not a confirmation: only the observed state confirms.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CommandReceipt {
    /// The vendor's id for the command, where it gives one.
    pub vendor_action_id: Option<String>,
    /// How many vendor requests sending the command cost.
    pub requests: u32,
}

/// What a daily quota is counted per.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QuotaScope {
    /// Per API key or application.
    Key,
    /// Per vendor site (energy site, PV plant).
    Site,
    /// Per linked user account.
    Account,
    /// Per device (vehicle) as some vendors count.
    Device,
}

/// A request budget per day.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DailyQuota {
    /// Requests allowed per day.
    pub requests: u32,
    /// What the count is kept per.
    pub per: QuotaScope,
}

/// What a vendor charges per request, in US dollars.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Pricing {
    /// A data read.
    pub data_request: f64,
    /// A command.
    pub command: f64,
    /// A wake-up of a sleeping vehicle.
    pub wake: f64,
}

/// The limits a vendor's cloud imposes, as declared by its adapter.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct VendorLimits {
    /// Sustained requests per minute.
    pub requests_per_minute: u32,
    /// Requests allowed back to back before the per-minute rate applies.
    pub burst: u32,
    /// What the per-minute rate is counted per.
    pub rate_scope: QuotaScope,
    /// The daily quota, where the vendor has one.
    pub daily_quota: Option<DailyQuota>,
    /// Concurrent requests allowed.
    pub max_concurrent: u32,
    /// Price per request, where the vendor bills.
    pub pricing: Option<Pricing>,
}

/// Static facts about a vendor integration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VendorInfo {
    /// The vendor as the API spells it ("TESLA").
    pub name: &'static str,
    /// A name for humans ("Tesla").
    pub display_name: &'static str,
    /// The device classes it serves.
    pub device_types: &'static [VendorType],
}

/// Result alias for adapter calls.
pub type AdapterResult<T> = Result<T, AdapterError>;

/// Reads and commands of vehicles.
#[async_trait]
pub trait VehicleApi: Send + Sync {
    /// Reads the vehicle without ever waking it.
    async fn read_vehicle(
        &self,
        account: &AccountRef,
        device: &DeviceRef,
    ) -> AdapterResult<Observation>;
    /// Asks a sleeping vehicle to wake up. Returns once the request is accepted, not awake.
    async fn wake_up(
        &self,
        account: &AccountRef,
        device: &DeviceRef,
    ) -> AdapterResult<CommandReceipt>;
    /// Starts (`true`) or stops (`false`) charging.
    async fn set_charging(
        &self,
        account: &AccountRef,
        device: &DeviceRef,
        start: bool,
    ) -> AdapterResult<CommandReceipt>;
    /// Sets the charging current limit in amperes.
    async fn set_max_current(
        &self,
        account: &AccountRef,
        device: &DeviceRef,
        amps: f64,
    ) -> AdapterResult<CommandReceipt>;
}

/// Reads and commands of EV chargers.
#[async_trait]
pub trait ChargerApi: Send + Sync {
    /// Reads the charger.
    async fn read_charger(
        &self,
        account: &AccountRef,
        device: &DeviceRef,
    ) -> AdapterResult<Observation>;
    /// Starts (`true`) or stops (`false`) charging.
    async fn set_charging(
        &self,
        account: &AccountRef,
        device: &DeviceRef,
        start: bool,
    ) -> AdapterResult<CommandReceipt>;
    /// Sets the charging current limit in amperes.
    async fn set_max_current(
        &self,
        account: &AccountRef,
        device: &DeviceRef,
        amps: f64,
    ) -> AdapterResult<CommandReceipt>;
}

/// Reads and commands of home batteries.
#[async_trait]
pub trait BatteryApi: Send + Sync {
    /// Reads the battery.
    async fn read_battery(
        &self,
        account: &AccountRef,
        device: &DeviceRef,
    ) -> AdapterResult<Observation>;
    /// Sets the operation mode.
    async fn set_operation_mode(
        &self,
        account: &AccountRef,
        device: &DeviceRef,
        mode: BatteryOperationMode,
    ) -> AdapterResult<CommandReceipt>;
}

/// Reads and commands of HVAC units.
#[async_trait]
pub trait HvacApi: Send + Sync {
    /// Reads the HVAC unit.
    async fn read_hvac(
        &self,
        account: &AccountRef,
        device: &DeviceRef,
    ) -> AdapterResult<Observation>;
    /// Sets a permanent hold.
    async fn set_permanent_hold(
        &self,
        account: &AccountRef,
        device: &DeviceRef,
        mode: HvacMode,
        heat_setpoint: Option<f64>,
        cool_setpoint: Option<f64>,
    ) -> AdapterResult<CommandReceipt>;
    /// Returns the unit to its own schedule.
    async fn follow_schedule(
        &self,
        account: &AccountRef,
        device: &DeviceRef,
    ) -> AdapterResult<CommandReceipt>;
}

/// Reads of meters (read-only class).
#[async_trait]
pub trait MeterApi: Send + Sync {
    /// Reads the meter.
    async fn read_meter(
        &self,
        account: &AccountRef,
        device: &DeviceRef,
    ) -> AdapterResult<Observation>;
}

/// Reads of solar inverters (read-only class).
#[async_trait]
pub trait InverterApi: Send + Sync {
    /// Reads the inverter.
    async fn read_inverter(
        &self,
        account: &AccountRef,
        device: &DeviceRef,
    ) -> AdapterResult<Observation>;
}

/// One vendor cloud integration.
#[async_trait]
pub trait VendorAdapter: Send + Sync {
    /// Static facts: name, device classes.
    fn info(&self) -> &VendorInfo;

    /// The vendor's limits, which the scheduler never exceeds.
    fn limits(&self) -> VendorLimits;

    /// The most vendor requests one poll of a device of this class can cost (for example a
    /// cheap state check plus a data read). The scheduler reserves this much rate budget
    /// before polling, so it never overspends.
    fn poll_cost(&self, device_type: VendorType) -> u32 {
        let _ = device_type;
        1
    }

    /// Exchanges the refresh token for new credentials. The result replaces the old
    /// credentials in the store before anything else uses the account.
    async fn refresh_credentials(&self, account: &AccountRef) -> AdapterResult<Credentials>;

    /// Lists the devices of a linked account.
    async fn discover(&self, account: &AccountRef) -> AdapterResult<Vec<DiscoveredDevice>>;

    /// The vehicle operations, if this vendor serves vehicles.
    fn vehicles(&self) -> Option<&dyn VehicleApi> {
        None
    }
    /// The charger operations, if this vendor serves chargers.
    fn chargers(&self) -> Option<&dyn ChargerApi> {
        None
    }
    /// The battery operations, if this vendor serves batteries.
    fn batteries(&self) -> Option<&dyn BatteryApi> {
        None
    }
    /// The HVAC operations, if this vendor serves HVAC units.
    fn hvacs(&self) -> Option<&dyn HvacApi> {
        None
    }
    /// The meter reads, if this vendor serves meters.
    fn meters(&self) -> Option<&dyn MeterApi> {
        None
    }
    /// The inverter reads, if this vendor serves inverters.
    fn inverters(&self) -> Option<&dyn InverterApi> {
        None
    }

    /// Reads one device, dispatching on its class. Never wakes a sleeping vehicle.
    async fn poll(&self, account: &AccountRef, device: &DeviceRef) -> AdapterResult<Observation> {
        let unsupported = || unsupported(self.info().name, device.device_type, "read");
        match device.device_type {
            VendorType::Vehicle => {
                self.vehicles().ok_or_else(unsupported)?.read_vehicle(account, device).await
            }
            VendorType::Charger => {
                self.chargers().ok_or_else(unsupported)?.read_charger(account, device).await
            }
            VendorType::Battery => {
                self.batteries().ok_or_else(unsupported)?.read_battery(account, device).await
            }
            VendorType::Hvac => {
                self.hvacs().ok_or_else(unsupported)?.read_hvac(account, device).await
            }
            VendorType::Meter => {
                self.meters().ok_or_else(unsupported)?.read_meter(account, device).await
            }
            VendorType::Inverter => {
                self.inverters().ok_or_else(unsupported)?.read_inverter(account, device).await
            }
        }
    }

    /// Reads several devices of one account. Vendors whose API reads many devices per call
    /// override this to batch; the default reads them one by one. The result has one entry per
    /// input device, in order.
    async fn poll_batch(
        &self,
        account: &AccountRef,
        devices: &[DeviceRef],
    ) -> Vec<AdapterResult<Observation>> {
        let mut out = Vec::with_capacity(devices.len());
        for device in devices {
            out.push(self.poll(account, device).await);
        }
        out
    }

    /// Sends a command to a device, dispatching on its class. Success means the vendor
    /// accepted it, not that the device carried it out.
    async fn execute(
        &self,
        account: &AccountRef,
        device: &DeviceRef,
        command: &Command,
    ) -> AdapterResult<CommandReceipt> {
        let vendor = self.info().name;
        let no = || unsupported(vendor, device.device_type, command.name());
        match (device.device_type, command) {
            (VendorType::Vehicle, Command::StartCharging | Command::StopCharging) => {
                let start = matches!(command, Command::StartCharging);
                self.vehicles().ok_or_else(no)?.set_charging(account, device, start).await
            }
            (VendorType::Vehicle, Command::SetMaxCurrent { amps }) => {
                self.vehicles().ok_or_else(no)?.set_max_current(account, device, *amps).await
            }
            (VendorType::Vehicle, Command::WakeUp) => {
                self.vehicles().ok_or_else(no)?.wake_up(account, device).await
            }
            (VendorType::Charger, Command::StartCharging | Command::StopCharging) => {
                let start = matches!(command, Command::StartCharging);
                self.chargers().ok_or_else(no)?.set_charging(account, device, start).await
            }
            (VendorType::Charger, Command::SetMaxCurrent { amps }) => {
                self.chargers().ok_or_else(no)?.set_max_current(account, device, *amps).await
            }
            (VendorType::Battery, Command::SetOperationMode { mode }) => {
                self.batteries().ok_or_else(no)?.set_operation_mode(account, device, *mode).await
            }
            (
                VendorType::Hvac,
                Command::SetPermanentHold { mode, heat_setpoint, cool_setpoint },
            ) => {
                self.hvacs()
                    .ok_or_else(no)?
                    .set_permanent_hold(account, device, *mode, *heat_setpoint, *cool_setpoint)
                    .await
            }
            (VendorType::Hvac, Command::FollowSchedule) => {
                self.hvacs().ok_or_else(no)?.follow_schedule(account, device).await
            }
            _ => Err(no()),
        }
    }
}

fn unsupported(vendor: &'static str, device_type: VendorType, what: &str) -> AdapterError {
    AdapterError::new(
        ErrorKind::Unsupported,
        vendor,
        format!("{what} is not supported for device type {}", device_type.as_str()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_refuses_missing_and_expired_tokens_without_a_request() {
        let now: DateTime<Utc> = "2026-01-01T00:00:00Z".parse().unwrap();
        let mut creds = Credentials { access_token: "t".into(), ..Credentials::default() };
        assert_eq!(creds.bearer("X", now).unwrap(), "t");
        creds.expires_at = Some(now);
        assert_eq!(creds.bearer("X", now).unwrap_err().kind(), ErrorKind::AuthExpired);
        creds.expires_at = Some(now + chrono::Duration::seconds(1));
        assert!(creds.bearer("X", now).is_ok());
        creds.access_token = " ".into();
        assert_eq!(creds.bearer("X", now).unwrap_err().kind(), ErrorKind::Unauthorized);
        creds.refresh_token = Some("r".into());
        assert_eq!(creds.bearer("X", now).unwrap_err().kind(), ErrorKind::AuthExpired);
    }
}
