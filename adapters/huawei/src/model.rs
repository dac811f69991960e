//! FusionSolar Northbound JSON: the request bodies the adapter sends and the parts of the
//! answers it reads. Unknown fields are ignored everywhere.
//!
//! FusionSolar is loose with types: ids come as numbers or strings, KPI values as numbers,
//! numeric strings (`"10000"`), `null` or placeholders such as `"N/A"`. The KPI maps are
//! therefore read leniently: a value that is not a finite number becomes `None` instead of
//! failing the whole answer (one odd sensor value must not hide the others). The envelope
//! itself (`success`) and the lists are strict: a body without them is a protocol error.

use std::fmt;
use std::str::FromStr;

use oemgate_core::VendorType;
use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize};
use serde_json::Value;

// ---------------------------------------------------------------- lenient scalars

/// A number from a number, a numeric string, or nothing (`null`, `"N/A"`, objects, ...).
pub(crate) fn number_of(value: &Value) -> Option<f64> {
    let n = match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    };
    n.filter(|n| n.is_finite())
}

/// Serde helper: a lenient `Option<f64>` (see [`number_of`]); never fails.
pub(crate) fn lenient_f64<'de, D>(deserializer: D) -> Result<Option<f64>, D::Error>
where
    D: Deserializer<'de>,
{
    let value = Value::deserialize(deserializer)?;
    Ok(number_of(&value))
}

/// Serde helper: a lenient integer code (`3`, `3.0`, `"3"`); never fails.
pub(crate) fn lenient_i64<'de, D>(deserializer: D) -> Result<Option<i64>, D::Error>
where
    D: Deserializer<'de>,
{
    let value = Value::deserialize(deserializer)?;
    Ok(integer_of(&value))
}

fn integer_of(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64().or_else(|| {
            n.as_f64().filter(|f| f.is_finite() && f.fract() == 0.0 && f.abs() < 9.0e15).map(
                // Integral and far inside i64's range: the cast is exact.
                #[allow(clippy::cast_possible_truncation)]
                |f| f as i64,
            )
        }),
        Value::String(s) => s.trim().parse::<i64>().ok(),
        _ => None,
    }
}

/// Serde helper: an optional text (`null` → `None`, numbers → their text).
pub(crate) fn lenient_string<'de, D>(deserializer: D) -> Result<Option<String>, D::Error>
where
    D: Deserializer<'de>,
{
    let value = Value::deserialize(deserializer)?;
    Ok(match value {
        Value::String(s) => Some(s),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    })
}

/// Serde helper: a required id that may be a number or a string (`1000000033593104` or
/// `"1000000033593104"`), as text.
pub(crate) fn id_string<'de, D>(deserializer: D) -> Result<String, D::Error>
where
    D: Deserializer<'de>,
{
    match Value::deserialize(deserializer)? {
        Value::String(s) if !s.trim().is_empty() => Ok(s.trim().to_owned()),
        Value::Number(n) if n.is_u64() || n.is_i64() => Ok(n.to_string()),
        other => Err(de::Error::custom(format!("expected a device id, found {other}"))),
    }
}

/// Serde helper: a required device type id (`38` or `"38"`).
fn type_id<'de, D>(deserializer: D) -> Result<u32, D::Error>
where
    D: Deserializer<'de>,
{
    let value = Value::deserialize(deserializer)?;
    integer_of(&value)
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| de::Error::custom(format!("expected a devTypeId, found {value}")))
}

/// Serde helper: `null` or absent → `T::default()`.
fn null_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

// ---------------------------------------------------------------- envelope

/// The envelope of every answer, `HTTP 200` included for errors:
/// `{"success":false,"failCode":407,"message":null,"data":"ACCESS_FREQUENCY_IS_TOO_HIGH"}`.
///
/// `data` is kept as raw JSON: on errors it is a text, on success the call's own shape.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Envelope {
    /// Whether the call worked.
    pub success: bool,
    /// `0` on success, the error code otherwise (305 session expired, 407 too frequent, ...).
    #[serde(default, deserialize_with = "lenient_i64")]
    pub fail_code: Option<i64>,
    /// A message, often `null`.
    #[serde(default, deserialize_with = "lenient_string")]
    pub message: Option<String>,
    /// Echo of the request plus the server's time.
    #[serde(default, deserialize_with = "null_default")]
    pub params: Params,
    /// The payload (or an error text such as `ACCESS_FREQUENCY_IS_TOO_HIGH`).
    #[serde(default)]
    pub data: Value,
}

/// `params` of an answer.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Params {
    /// The server's time of the answer, epoch milliseconds.
    #[serde(default, deserialize_with = "lenient_i64")]
    pub current_time: Option<i64>,
}

/// The body of an error from Huawei's web framework (parameter errors), which has no
/// envelope: `{"exceptionId":"framwork.remote.Paramerror","exceptionType":"ROA_EXFRAME_EXCEPTION"}`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FrameworkException {
    /// The exception id.
    pub exception_id: String,
    /// The exception type.
    #[serde(default, deserialize_with = "lenient_string")]
    pub exception_type: Option<String>,
}

// ---------------------------------------------------------------- requests

/// `POST /thirdData/login`. The password field is called `systemCode`.
#[derive(Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LoginRequest<'a> {
    /// The Northbound API user.
    pub user_name: &'a str,
    /// Its password.
    pub system_code: &'a str,
}

impl fmt::Debug for LoginRequest<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoginRequest")
            .field("user_name", &"<redacted>")
            .field("system_code", &"<redacted>")
            .finish()
    }
}

/// `POST /thirdData/logout`.
#[derive(Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LogoutRequest<'a> {
    /// The session token to end.
    pub xsrf_token: &'a str,
}

/// `POST /thirdData/stations` (one page of the plant list).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StationsRequest {
    /// Page number, from 1.
    pub page_no: u32,
    /// Page size, at most 100.
    pub page_size: u32,
}

/// A body with comma-separated plant codes (`getDevList`, `getStationRealKpi`), at most 100.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StationCodesRequest {
    /// `"NE=123,NE=456"`.
    pub station_codes: String,
}

/// `POST /thirdData/getDevRealKpi`: up to 100 devices of one device type.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DevRealKpiRequest {
    /// `"1000000033593104,1000000033593105"`.
    pub dev_ids: String,
    /// The device type all of them have.
    pub dev_type_id: u32,
}

// ---------------------------------------------------------------- answers

/// `data` of `stations`: one page of plants.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StationPage {
    /// The plants of this page.
    #[serde(deserialize_with = "null_default")]
    pub list: Vec<Station>,
    /// How many pages there are.
    #[serde(default, deserialize_with = "lenient_i64")]
    pub page_count: Option<i64>,
    /// This page's number.
    #[serde(default, deserialize_with = "lenient_i64")]
    pub page_no: Option<i64>,
    /// How many plants there are.
    #[serde(default, deserialize_with = "lenient_i64")]
    pub total: Option<i64>,
}

/// A plant of the `stations` list.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Station {
    /// The plant code (`NE=33554875`), the id every other call uses.
    pub plant_code: String,
    /// The plant's name.
    #[serde(default, deserialize_with = "lenient_string")]
    pub plant_name: Option<String>,
    /// Installed capacity, kWp.
    #[serde(default, deserialize_with = "lenient_f64")]
    pub capacity: Option<f64>,
}

/// A device of `getDevList`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeviceListEntry {
    /// The device id (`devId` in the KPI calls).
    #[serde(deserialize_with = "id_string")]
    pub id: String,
    /// The device's name.
    #[serde(default, deserialize_with = "lenient_string")]
    pub dev_name: Option<String>,
    /// The device type (38 residential inverter, 39 battery, 47 power sensor, ...).
    #[serde(deserialize_with = "type_id")]
    pub dev_type_id: u32,
    /// The serial number.
    #[serde(default, deserialize_with = "lenient_string")]
    pub esn_code: Option<String>,
    /// The plant that holds it.
    #[serde(default, deserialize_with = "lenient_string")]
    pub station_code: Option<String>,
    /// Inverter model (`SUN2000-6KTL-L1`), inverters only.
    #[serde(default, deserialize_with = "lenient_string")]
    pub inv_type: Option<String>,
    /// Firmware version.
    #[serde(default, deserialize_with = "lenient_string")]
    pub software_version: Option<String>,
}

/// One plant of `getStationRealKpi`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StationKpiItem {
    /// The plant code.
    pub station_code: String,
    /// Its values.
    #[serde(default, deserialize_with = "null_default")]
    pub data_item_map: StationKpiMap,
}

/// `dataItemMap` of a plant: energies in kWh, incomes in the plant's currency.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct StationKpiMap {
    /// 1 disconnected, 2 faulty, 3 healthy.
    #[serde(default, deserialize_with = "lenient_i64")]
    pub real_health_state: Option<i64>,
    /// Yield today, kWh.
    #[serde(default, deserialize_with = "lenient_f64")]
    pub day_power: Option<f64>,
    /// Yield this month, kWh.
    #[serde(default, deserialize_with = "lenient_f64")]
    pub month_power: Option<f64>,
    /// Lifetime yield, kWh.
    #[serde(default, deserialize_with = "lenient_f64")]
    pub total_power: Option<f64>,
    /// Income today.
    #[serde(default, deserialize_with = "lenient_f64")]
    pub day_income: Option<f64>,
    /// Lifetime income.
    #[serde(default, deserialize_with = "lenient_f64")]
    pub total_income: Option<f64>,
}

/// One device of `getDevRealKpi`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", bound(deserialize = "T: Deserialize<'de> + Default"))]
pub struct DevKpiItem<T> {
    /// The device id.
    #[serde(deserialize_with = "id_string")]
    pub dev_id: String,
    /// The serial number, where the version reports it.
    #[serde(default, deserialize_with = "lenient_string")]
    pub sn: Option<String>,
    /// Its values.
    #[serde(default, deserialize_with = "null_default")]
    pub data_item_map: T,
}

/// `dataItemMap` of an inverter (devTypeId 1 or 38).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct InverterKpi {
    /// AC output power, **kW**.
    #[serde(default, deserialize_with = "lenient_f64")]
    pub active_power: Option<f64>,
    /// DC input power, kW.
    #[serde(default, deserialize_with = "lenient_f64")]
    pub mppt_power: Option<f64>,
    /// Yield today, kWh.
    #[serde(default, deserialize_with = "lenient_f64")]
    pub day_cap: Option<f64>,
    /// Lifetime yield, kWh.
    #[serde(default, deserialize_with = "lenient_f64")]
    pub total_cap: Option<f64>,
    /// Efficiency, %.
    #[serde(default, deserialize_with = "lenient_f64")]
    pub efficiency: Option<f64>,
    /// Internal temperature, °C.
    #[serde(default, deserialize_with = "lenient_f64")]
    pub temperature: Option<f64>,
    /// 1 connected, 0 disconnected.
    #[serde(default, deserialize_with = "lenient_i64")]
    pub run_state: Option<i64>,
    /// Detailed state code (512 on-grid, ...).
    #[serde(default, deserialize_with = "lenient_i64")]
    pub inverter_state: Option<i64>,
    /// Grid frequency, Hz.
    #[serde(default, deserialize_with = "lenient_f64")]
    pub elec_freq: Option<f64>,
}

/// `dataItemMap` of a battery (devTypeId 39).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct BatteryKpi {
    /// State of charge, %.
    #[serde(default, deserialize_with = "lenient_f64")]
    pub battery_soc: Option<f64>,
    /// State of health, %.
    #[serde(default, deserialize_with = "lenient_f64")]
    pub battery_soh: Option<f64>,
    /// Charge (positive) or discharge (negative) power, **W**.
    #[serde(default, deserialize_with = "lenient_f64")]
    pub ch_discharge_power: Option<f64>,
    /// Maximum charge power, W.
    #[serde(default, deserialize_with = "lenient_f64")]
    pub max_charge_power: Option<f64>,
    /// Maximum discharge power, W.
    #[serde(default, deserialize_with = "lenient_f64")]
    pub max_discharge_power: Option<f64>,
    /// Energy charged, kWh.
    #[serde(default, deserialize_with = "lenient_f64")]
    pub charge_cap: Option<f64>,
    /// Energy discharged, kWh.
    #[serde(default, deserialize_with = "lenient_f64")]
    pub discharge_cap: Option<f64>,
    /// 0 offline, 1 standby, 2 running, 3 faulty, 4 hibernating.
    #[serde(default, deserialize_with = "lenient_i64")]
    pub battery_status: Option<i64>,
    /// The charge/discharge mode (see [`crate::map::operation_mode`]).
    #[serde(default, deserialize_with = "lenient_i64")]
    pub ch_discharge_model: Option<i64>,
    /// Bus voltage, V.
    #[serde(default, deserialize_with = "lenient_f64")]
    pub busbar_u: Option<f64>,
    /// 1 connected, 0 disconnected.
    #[serde(default, deserialize_with = "lenient_i64")]
    pub run_state: Option<i64>,
}

/// `dataItemMap` of a meter (devTypeId 47 power sensor, 17 grid meter).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct MeterKpi {
    /// Active power at the grid connection, **W**, positive while **exporting** (Huawei's
    /// feed-in convention, see [`crate::map`]).
    #[serde(default, deserialize_with = "lenient_f64")]
    pub active_power: Option<f64>,
    /// Voltage, V.
    #[serde(default, deserialize_with = "lenient_f64")]
    pub meter_u: Option<f64>,
    /// Current, A.
    #[serde(default, deserialize_with = "lenient_f64")]
    pub meter_i: Option<f64>,
    /// Grid frequency, Hz.
    #[serde(default, deserialize_with = "lenient_f64")]
    pub grid_frequency: Option<f64>,
    /// Power factor.
    #[serde(default, deserialize_with = "lenient_f64")]
    pub power_factor: Option<f64>,
    /// Positive active energy (fed to the grid), kWh.
    #[serde(default, deserialize_with = "lenient_f64")]
    pub active_cap: Option<f64>,
    /// Reverse active energy (drawn from the grid), kWh.
    #[serde(default, deserialize_with = "lenient_f64")]
    pub reverse_active_cap: Option<f64>,
    /// 0 offline, 1 normal.
    #[serde(default, deserialize_with = "lenient_i64")]
    pub meter_status: Option<i64>,
    /// 1 connected, 0 disconnected (not every version sends it).
    #[serde(default, deserialize_with = "lenient_i64")]
    pub run_state: Option<i64>,
}

// ---------------------------------------------------------------- device types and keys

/// The FusionSolar device types this adapter maps. Others (EMI 10, dongles 62, C&I ESS 41,
/// EMMA 23070, ...) are skipped by discovery.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DevType {
    /// 1: string inverter.
    StringInverter,
    /// 38: residential inverter.
    ResidentialInverter,
    /// 39: (residential) battery.
    Battery,
    /// 47: power sensor (the residential grid meter).
    PowerSensor,
    /// 17: grid meter.
    GridMeter,
}

impl DevType {
    /// Every mapped type.
    pub const ALL: [DevType; 5] = [
        DevType::StringInverter,
        DevType::ResidentialInverter,
        DevType::Battery,
        DevType::PowerSensor,
        DevType::GridMeter,
    ];

    /// The type for a `devTypeId`, if mapped.
    pub fn from_id(id: u32) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.id() == id)
    }

    /// FusionSolar's `devTypeId`.
    pub const fn id(self) -> u32 {
        match self {
            DevType::StringInverter => 1,
            DevType::ResidentialInverter => 38,
            DevType::Battery => 39,
            DevType::PowerSensor => 47,
            DevType::GridMeter => 17,
        }
    }

    /// The oemgate device class.
    pub const fn class(self) -> VendorType {
        match self {
            DevType::StringInverter | DevType::ResidentialInverter => VendorType::Inverter,
            DevType::Battery => VendorType::Battery,
            DevType::PowerSensor | DevType::GridMeter => VendorType::Meter,
        }
    }

    /// A model name for the normalized resource (the KPI calls do not name the model).
    pub const fn model_name(self) -> &'static str {
        match self {
            DevType::StringInverter => "String inverter",
            DevType::ResidentialInverter => "Residential inverter",
            DevType::Battery => "Battery",
            DevType::PowerSensor => "Power sensor",
            DevType::GridMeter => "Grid meter",
        }
    }
}

/// How oemgate names a FusionSolar device: `"<devTypeId>:<devId>"` (`"38:1000000033593104"`).
///
/// `getDevRealKpi` needs the device type next to the id, and one oemgate class spans several
/// FusionSolar types (inverter: 1 or 38; meter: 47 or 17), so the type is part of the
/// `vendor_id`. It is stable: both numbers never change for a device.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeviceKey {
    /// The device type.
    pub dev_type: DevType,
    /// The device id (decimal digits).
    pub dev_id: String,
}

impl DeviceKey {
    /// A key; `None` when `dev_id` is not 1–24 decimal digits.
    pub fn new(dev_type: DevType, dev_id: impl Into<String>) -> Option<Self> {
        let dev_id = dev_id.into();
        valid_dev_id(&dev_id).then_some(Self { dev_type, dev_id })
    }
}

fn valid_dev_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 24 && id.bytes().all(|b| b.is_ascii_digit())
}

impl fmt::Display for DeviceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.dev_type.id(), self.dev_id)
    }
}

/// A `vendor_id` that is not a [`DeviceKey`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a FusionSolar device id (\"<devTypeId>:<devId>\")")]
pub struct BadDeviceKey(pub String);

impl FromStr for DeviceKey {
    type Err = BadDeviceKey;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || BadDeviceKey(s.chars().take(64).collect());
        let (type_id, dev_id) = s.split_once(':').ok_or_else(bad)?;
        let dev_type = type_id.parse::<u32>().ok().and_then(DevType::from_id).ok_or_else(bad)?;
        DeviceKey::new(dev_type, dev_id).ok_or_else(bad)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lenient_values() {
        assert_eq!(number_of(&json!(1.5)), Some(1.5));
        assert_eq!(number_of(&json!("10000")), Some(10_000.0));
        assert_eq!(number_of(&json!(" 2.5 ")), Some(2.5));
        assert_eq!(number_of(&json!("N/A")), None);
        assert_eq!(number_of(&json!(null)), None);
        assert_eq!(number_of(&json!({"a": 1})), None);
        assert_eq!(integer_of(&json!("3")), Some(3));
        assert_eq!(integer_of(&json!(3.0)), Some(3));
        assert_eq!(integer_of(&json!(3.5)), None);
        let kpi: InverterKpi =
            serde_json::from_value(json!({"active_power": "N/A", "run_state": "1"})).unwrap();
        assert_eq!(kpi.active_power, None);
        assert_eq!(kpi.run_state, Some(1));
    }

    #[test]
    fn ids_are_numbers_or_strings() {
        let item: DevKpiItem<MeterKpi> =
            serde_json::from_value(json!({"devId": 1000000033593104u64, "dataItemMap": null}))
                .unwrap();
        assert_eq!(item.dev_id, "1000000033593104");
        assert_eq!(item.data_item_map, MeterKpi::default());
        let item: DevKpiItem<MeterKpi> =
            serde_json::from_value(json!({"devId": "42", "dataItemMap": {}})).unwrap();
        assert_eq!(item.dev_id, "42");
        assert!(serde_json::from_value::<DevKpiItem<MeterKpi>>(json!({"devId": null})).is_err());
    }

    #[test]
    fn device_keys() {
        let key: DeviceKey = "38:1000000033593104".parse().unwrap();
        assert_eq!(key.dev_type, DevType::ResidentialInverter);
        assert_eq!(key.to_string(), "38:1000000033593104");
        for bad in ["", "38", "38:", "38:12a", "99:1", ":1", "38:1:2", "38:../1", "x:1"] {
            assert!(bad.parse::<DeviceKey>().is_err(), "{bad}");
        }
        for t in DevType::ALL {
            assert_eq!(DevType::from_id(t.id()), Some(t));
        }
        assert_eq!(DevType::from_id(41), None);
    }

    #[test]
    fn envelope_errors_carry_text_data() {
        let env: Envelope = serde_json::from_str(
            r#"{"success":false,"failCode":407,"message":null,"data":"ACCESS_FREQUENCY_IS_TOO_HIGH"}"#,
        )
        .unwrap();
        assert!(!env.success);
        assert_eq!(env.fail_code, Some(407));
        assert_eq!(env.data, json!("ACCESS_FREQUENCY_IS_TOO_HIGH"));
        assert!(serde_json::from_str::<Envelope>(r#"{"failCode":0}"#).is_err());
    }
}
