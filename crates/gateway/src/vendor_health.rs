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

    #[test]
    fn catalogue_ids_are_unique() {
        let mut ids: Vec<String> = intervention_catalogue().into_iter().map(|i| i.id).collect();
        let n = ids.len();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), n);
        assert!(n >= 5);
    }
}
