//! Observation history: a compact sample per successful poll of the devices whose statistics
//! the API serves (inverter production; vehicle and charger charging), kept per device with
//! bounded retention.
//!
//! The poller appends one [`Sample`] per stored snapshot through [`record_snapshot`], which
//! picks the few numbers statistics need out of the served resource JSON; the API reads a
//! device's samples over a time range and computes statistics from them.
//!
//! Retention: each append passes how many samples to keep for the device
//! ([`DEFAULT_HISTORY_KEEP`] from the poller); older ones are dropped on append, so the history
//! never grows beyond that per device. Samples are ordered by `at`; samples with the same `at` come in no
//! particular order.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use oemgate_core::VendorType;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::StoreResult;
use crate::traits::Snapshot;

/// Samples kept per device by default: about five weeks at one poll a minute, two at one
/// every 20 s, enough for a month of inverter statistics at the default poll bound.
pub const DEFAULT_HISTORY_KEEP: usize = 50_000;

/// One observation of a device, compact.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// When it was observed (kept in whole milliseconds).
    pub at: DateTime<Utc>,
    /// Power in kW: an inverter's production rate, a vehicle's or charger's charge rate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kw: Option<f64>,
    /// A cumulative energy counter in kWh (an inverter's lifetime production).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kwh: Option<f64>,
    /// Whether the device was active: producing (inverter) or charging (vehicle, charger).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active: Option<bool>,
}

/// The history of devices.
#[async_trait]
pub trait HistoryStore: Send + Sync {
    /// Appends a sample for a device and drops its oldest beyond the newest `keep`.
    async fn append_sample(&self, device_id: &str, sample: Sample, keep: usize) -> StoreResult<()>;
    /// A device's samples with `from <= at < to`, oldest first.
    async fn samples(
        &self,
        device_id: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> StoreResult<Vec<Sample>>;
    /// Forgets a device's history.
    async fn delete_history(&self, device_id: &str) -> StoreResult<()>;
}

/// The sample a snapshot yields, for the device classes with statistics; `None` otherwise
/// (and when the resource says nothing statistics could use).
pub fn sample_of(snapshot: &Snapshot) -> Option<Sample> {
    let number = |v: &Value, f: &str| v.get(f).and_then(Value::as_f64);
    let flag = |v: &Value, f: &str| v.get(f).and_then(Value::as_bool);
    let (state, kw, kwh, active) = match snapshot.device_type {
        VendorType::Inverter => {
            let s = snapshot.resource.get("productionState")?;
            (s, "productionRate", Some("totalLifetimeProduction"), "isProducing")
        }
        VendorType::Vehicle | VendorType::Charger => {
            let s = snapshot.resource.get("chargeState")?;
            (s, "chargeRate", None, "isCharging")
        }
        _ => return None,
    };
    let sample = Sample {
        at: snapshot.observed_at,
        kw: number(state, kw),
        kwh: kwh.and_then(|f| number(state, f)),
        active: flag(state, active),
    };
    (sample.kw.is_some() || sample.kwh.is_some() || sample.active.is_some()).then_some(sample)
}

/// Appends the snapshot's sample, if it yields one, keeping [`DEFAULT_HISTORY_KEEP`].
pub async fn record_snapshot<S: HistoryStore + ?Sized>(
    store: &S,
    snapshot: &Snapshot,
) -> StoreResult<()> {
    match sample_of(snapshot) {
        Some(sample) => {
            store.append_sample(&snapshot.device_id, sample, DEFAULT_HISTORY_KEEP).await
        }
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn snapshot(device_type: VendorType, resource: Value) -> Snapshot {
        Snapshot {
            device_id: "d".into(),
            user_id: "u".into(),
            device_type,
            version: 1,
            observed_at: "2030-01-01T00:00:00Z".parse().unwrap_or_default(),
            resource,
        }
    }

    #[test]
    fn inverters_and_chargers_yield_samples_others_do_not() {
        let inverter = snapshot(
            VendorType::Inverter,
            json!({"productionState": {"productionRate": 2.5, "totalLifetimeProduction": 100.0,
                   "isProducing": true}}),
        );
        let sample = sample_of(&inverter).expect("sample");
        assert_eq!((sample.kw, sample.kwh, sample.active), (Some(2.5), Some(100.0), Some(true)));
        let vehicle = snapshot(
            VendorType::Vehicle,
            json!({"chargeState": {"chargeRate": 7.0, "isCharging": true}}),
        );
        let sample = sample_of(&vehicle).expect("sample");
        assert_eq!((sample.kw, sample.kwh, sample.active), (Some(7.0), None, Some(true)));
        let unknown = snapshot(VendorType::Vehicle, json!({"chargeState": {"chargeRate": null}}));
        assert_eq!(sample_of(&unknown), None);
        let hvac = snapshot(VendorType::Hvac, json!({"chargeState": {"chargeRate": 1.0}}));
        assert_eq!(sample_of(&hvac), None);
    }
}
