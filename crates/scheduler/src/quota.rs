//! Sharing a scarce daily quota between the devices that count against it: a pure function.
//!
//! When a vendor's daily quota (SolarEdge's 300 requests per site, tado's 100 per account on
//! the free tier) cannot pay for every device's context bound, something has to give. The
//! rule, in the order the issue sets: devices with a pending action first, then charging (and
//! smart-charge plans), then the default context, then sleeping. A priority level gets its
//! full demand while the budget lasts; the first level that does not fit shares what is left
//! in proportion to its demand; lower levels get only their floor.
//!
//! The floor keeps every device alive: a fifth of the budget is split evenly between all
//! devices first, so a burst of charging cars never starves a sleeping one completely.
//! Only 90% of the quota is planned; the rest is headroom for refresh hints, retries after
//! errors and re-reads after a token refresh, which the plan cannot foresee.

use std::time::Duration;

use oemgate_core::PollContext;

/// The share of the quota the plan spends; the rest is headroom.
pub const PLANNED_SHARE: f64 = 0.9;
/// The share of the planned budget split evenly between all devices before priorities.
pub const FLOOR_SHARE: f64 = 0.2;

const DAY_SECS: f64 = 86_400.0;

/// What one device would like: its context's poll interval, the requests one poll costs, and
/// its context (which sets its priority).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Demand {
    /// The interval the device's context asks for.
    pub interval: Duration,
    /// Requests per poll.
    pub cost: u32,
    /// The device's context.
    pub context: PollContext,
}

/// The rank of a context when a quota is short: lower is served first.
pub fn rank(context: PollContext) -> u8 {
    match context {
        PollContext::ActionPending => 0,
        PollContext::Charging | PollContext::SmartChargePlan => 1,
        PollContext::Default => 2,
        PollContext::Sleeping => 3,
    }
}

/// The interval each device may be polled at so that all of them together stay within
/// `requests_per_day` (times [`PLANNED_SHARE`]). Never shorter than the device's own
/// interval; equal to it for every device when the quota suffices.
pub fn allocate(requests_per_day: u32, demands: &[Demand]) -> Vec<Duration> {
    let budget = f64::from(requests_per_day) * PLANNED_SHARE;
    let want: Vec<f64> = demands
        .iter()
        .map(|d| DAY_SECS / d.interval.as_secs_f64().max(1.0) * f64::from(d.cost.max(1)))
        .collect();
    if demands.is_empty() || want.iter().sum::<f64>() <= budget {
        return demands.iter().map(|d| d.interval).collect();
    }
    let floor_each = budget * FLOOR_SHARE / demands.len() as f64;
    let mut grant: Vec<f64> = want.iter().map(|w| w.min(floor_each)).collect();
    let mut remaining = budget - grant.iter().sum::<f64>();
    for level in 0..=3 {
        let members: Vec<usize> =
            (0..demands.len()).filter(|&i| rank(demands[i].context) == level).collect();
        let extra: f64 = members.iter().map(|&i| want[i] - grant[i]).sum();
        if extra <= 0.0 {
            continue;
        }
        let share = (remaining / extra).clamp(0.0, 1.0);
        for &i in &members {
            grant[i] += share * (want[i] - grant[i]);
        }
        remaining -= share * extra;
    }
    demands
        .iter()
        .zip(grant.into_iter().zip(want))
        .map(|(d, (g, w))| {
            if g >= w * (1.0 - 1e-9) {
                return d.interval;
            }
            let seconds = DAY_SECS * f64::from(d.cost.max(1)) / g.max(f64::MIN_POSITIVE);
            // Round up to whole milliseconds so the plan never overspends by rounding.
            let stretched = Duration::from_millis((seconds * 1000.0).ceil().min(1e15) as u64);
            stretched.max(d.interval)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn demand(minutes: u64, cost: u32, context: PollContext) -> Demand {
        Demand { interval: Duration::from_secs(minutes * 60), cost, context }
    }

    fn spend(demands: &[Demand], intervals: &[Duration]) -> f64 {
        demands
            .iter()
            .zip(intervals)
            .map(|(d, i)| DAY_SECS / i.as_secs_f64() * f64::from(d.cost))
            .sum()
    }

    #[test]
    fn enough_quota_changes_nothing() {
        let demands = [demand(7, 1, PollContext::Default), demand(2, 1, PollContext::Charging)];
        assert_eq!(allocate(10_000, &demands), vec![demands[0].interval, demands[1].interval]);
    }

    #[test]
    fn a_short_quota_serves_charging_before_default_before_sleeping() {
        // tado free tier: 100 requests a day for three devices of one account.
        let demands = [
            demand(2, 1, PollContext::Charging),
            demand(7, 1, PollContext::Default),
            demand(20, 1, PollContext::Sleeping),
        ];
        let got = allocate(100, &demands);
        assert!(got[0] < got[1] && got[1] <= got[2], "{got:?}");
        assert!(spend(&demands, &got) <= 90.0 + 1e-6);
        // Every device keeps at least its floor: 18 requests a day between three = 6 each.
        assert!(got.iter().all(|i| *i <= Duration::from_secs(86_400 / 6 + 1)), "{got:?}");
    }

    #[test]
    fn a_pending_action_keeps_its_interval_when_the_budget_allows() {
        // 300 a day, 4 devices: the action-pending one (every 10 s would need 8640) cannot
        // be served fully; it gets everything above the others' floors.
        let demands = [
            demand(7, 1, PollContext::Default),
            demand(7, 1, PollContext::Default),
            demand(7, 1, PollContext::Default),
            Demand {
                interval: Duration::from_secs(10),
                cost: 1,
                context: PollContext::ActionPending,
            },
        ];
        let got = allocate(300, &demands);
        assert!(got[3] < got[0], "{got:?}");
        let floor_interval = 86_400.0 / (270.0 * 0.2 / 4.0);
        assert!((got[0].as_secs_f64() - floor_interval).abs() < 1.0, "{got:?}");
    }

    proptest! {
        /// The plan never spends more than the planned share of the quota, never shortens an
        /// interval, keeps every device at or above its floor, and gives a device more than
        /// its floor only when every more urgent device got its full demand.
        #[test]
        fn plans_stay_within_quota_and_priority(
            quota in 1u32..20_000,
            raw in prop::collection::vec((1u64..3600, 1u32..4, 0usize..5), 1..40),
        ) {
            let demands: Vec<Demand> = raw
                .iter()
                .map(|&(secs, cost, c)| Demand {
                    interval: Duration::from_secs(secs),
                    cost,
                    context: PollContext::ALL[c],
                })
                .collect();
            let got = allocate(quota, &demands);
            prop_assert_eq!(got.len(), demands.len());
            let budget = f64::from(quota) * PLANNED_SHARE;
            prop_assert!(spend(&demands, &got) <= budget * (1.0 + 1e-9) + 1e-6);
            let floor_each = budget * FLOOR_SHARE / demands.len() as f64;
            for (d, i) in demands.iter().zip(&got) {
                prop_assert!(*i >= d.interval);
                let granted = DAY_SECS / i.as_secs_f64() * f64::from(d.cost);
                let want = DAY_SECS / d.interval.as_secs_f64() * f64::from(d.cost);
                // Intervals are rounded up to whole milliseconds: allow for that.
                prop_assert!(granted >= want.min(floor_each) * (1.0 - 1e-4) - 1e-9);
            }
            for (b, ib) in demands.iter().zip(&got) {
                let b_granted = DAY_SECS / ib.as_secs_f64() * f64::from(b.cost);
                let b_want = DAY_SECS / b.interval.as_secs_f64() * f64::from(b.cost);
                if b_granted <= b_want.min(floor_each) * (1.0 + 1e-6) + 1e-9 {
                    continue;
                }
                // b got more than its floor: every more urgent device got all it asked for.
                for (a, ia) in demands.iter().zip(&got) {
                    if rank(a.context) < rank(b.context) {
                        prop_assert!(*ia <= a.interval + Duration::from_millis(1), "{:?} {:?}", a, ia);
                    }
                }
            }
        }
    }
}
