//! The API's view of vendors ([`oemgate_api::vendors::VendorHealth`]) over the poller: which
//! adapters are registered, how each vendor is doing according to its scheduler gate, and the
//! interventions the adapters can name. Lives in the gateway because only the gateway knows
//! the vendor crates.

use std::sync::Arc;

use oemgate_api::vendors::{VendorHealth, VendorReport, VendorStatus};
use oemgate_core::Intervention;
use oemgate_scheduler::Poller;
use oemgate_scheduler::breaker::BreakerState;

/// The status a vendor shows: an outage while its breaker is not closed (open, or half-open
/// waiting for its probe to succeed), an elevated error rate while its recent failed share is
/// above the scheduler's threshold, else ready.
pub fn status(breaker: BreakerState, error_rate_elevated: bool) -> VendorStatus {
    match breaker {
        BreakerState::Open | BreakerState::HalfOpen => VendorStatus::Outage,
        BreakerState::Closed if error_rate_elevated => VendorStatus::ElevatedErrorRate,
        BreakerState::Closed => VendorStatus::Ready,
    }
}

/// Every intervention an adapter in this build names.
pub fn intervention_catalogue() -> Vec<Intervention> {
    [
        oemgate_enphase::map::interventions(),
        oemgate_solaredge::map::interventions(),
        oemgate_zaptec::map::interventions(),
        oemgate_ecobee::map::interventions(),
        oemgate_nest::map::interventions(),
        oemgate_tesla::map::battery_interventions(),
        oemgate_sma::map::battery_interventions(),
        oemgate_huawei::map::battery_interventions(),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// [`VendorHealth`] over a running poller.
#[derive(Debug)]
pub struct PollerHealth {
    poller: Arc<Poller>,
}

impl PollerHealth {
    /// Reports on `poller`'s vendors.
    pub fn new(poller: Arc<Poller>) -> Self {
        Self { poller }
    }
}

impl VendorHealth for PollerHealth {
    fn vendors(&self) -> Vec<VendorReport> {
        let mut out: Vec<VendorReport> = self
            .poller
            .adapters()
            .iter()
            .map(|(name, adapter)| {
                let info = adapter.info();
                let status = match self.poller.vendor_gate(name) {
                    Some(gate) => status(gate.breaker_state(), gate.error_rate_elevated()),
                    None => VendorStatus::Ready,
                };
                VendorReport {
                    vendor: info.name.to_string(),
                    display_name: info.display_name.to_string(),
                    device_types: info.device_types.to_vec(),
                    status,
                }
            })
            .collect();
        out.sort_by(|a, b| a.vendor.cmp(&b.vendor));
        out
    }

    fn interventions(&self) -> Vec<Intervention> {
        let registered: Vec<String> =
            self.poller.adapters().vendors().map(str::to_string).collect();
        intervention_catalogue()
            .into_iter()
            .filter(|i| i.vendor.is_none_or(|v| registered.iter().any(|r| r == v.as_str())))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn breaker_decides_before_the_error_rate() {
        assert_eq!(status(BreakerState::Open, false), VendorStatus::Outage);
        assert_eq!(status(BreakerState::HalfOpen, true), VendorStatus::Outage);
        assert_eq!(status(BreakerState::Closed, true), VendorStatus::ElevatedErrorRate);
        assert_eq!(status(BreakerState::Closed, false), VendorStatus::Ready);
    }

    /// Over the gateway's real adapters and poller: every registered vendor is listed with
    /// its classes, READY at first, OUTAGE once its breaker opens; the interventions are
    /// those of registered vendors.
    #[test]
    fn reports_the_pollers_vendors_and_their_breakers() {
        let config = crate::config::Config::defaults().expect("defaults");
        let clock: Arc<dyn oemgate_core::Clock> = Arc::new(oemgate_core::ManualClock::new(
            "2030-01-01T00:00:00Z".parse().unwrap_or_default(),
        ));
        let adapters = crate::app::adapters(&config, Arc::clone(&clock), None);
        let store: Arc<dyn oemgate_store::Store> = Arc::new(oemgate_store::MemoryStore::new());
        let poller = Arc::new(Poller::new(
            store,
            adapters,
            Arc::clone(&clock),
            config.scheduler.poller(),
            1,
        ));
        let health = PollerHealth::new(Arc::clone(&poller));
        let vendors = health.vendors();
        let names: Vec<&str> = vendors.iter().map(|v| v.vendor.as_str()).collect();
        assert!(names.contains(&"TESLA") && names.contains(&"EASEE"), "{names:?}");
        assert!(vendors.iter().all(|v| v.status == VendorStatus::Ready));
        let tesla = vendors.iter().find(|v| v.vendor == "TESLA").map(|v| &v.device_types);
        assert!(tesla.is_some_and(|t| t.contains(&oemgate_core::VendorType::Vehicle)));

        let gate = poller.vendor_gate("TESLA").expect("gate");
        for _ in 0..10 {
            gate.record("k", Some((oemgate_core::ErrorKind::Transient, None)));
        }
        let status_of =
            |name: &str| health.vendors().into_iter().find(|v| v.vendor == name).map(|v| v.status);
        assert_eq!(status_of("TESLA"), Some(VendorStatus::Outage));
        assert_eq!(status_of("EASEE"), Some(VendorStatus::Ready));
        assert!(!health.interventions().is_empty());
    }

    #[test]
    fn catalogue_ids_are_unique() {
        let mut ids: Vec<String> = intervention_catalogue().into_iter().map(|i| i.id).collect();
        let n = ids.len();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), n);
        assert!(n >= 5);
    }

    /// Every intervention id an adapter puts on a capability resolves in the catalogue.
    #[test]
    fn catalogue_covers_the_ids_adapters_name() {
        let ids: Vec<String> = intervention_catalogue().into_iter().map(|i| i.id).collect();
        for named in [
            oemgate_tesla::map::EXPORT_FOCUS_INTERVENTION_ID,
            oemgate_tesla::map::IDLE_INTERVENTION_ID,
            oemgate_sma::map::READ_ONLY_INTERVENTION_ID,
            oemgate_huawei::map::BATTERY_CONTROL_INTERVENTION_ID,
            oemgate_enphase::map::IDLE_INTERVENTION_ID,
            oemgate_ecobee::map::WRITE_SCOPE_INTERVENTION_ID,
        ] {
            assert!(ids.iter().any(|id| id == named), "{named} missing");
        }
    }
}
