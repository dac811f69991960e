//! The pure rules behind the checks: declared vs published limits, where a command's
//! capability lives in a resource, and which timestamps a resource may carry.

use chrono::{DateTime, Utc};
use oemgate_core::{BatteryOperationMode, Command, QuotaScope, VendorLimits, VendorType};
use serde_json::Value;

/// How coarse a scope is: a bucket per key holds every account, an account every site, a
/// site every device. A declared scope may be coarser than the vendor's, never finer.
pub fn scope_rank(scope: QuotaScope) -> u8 {
    match scope {
        QuotaScope::Device => 0,
        QuotaScope::Site => 1,
        QuotaScope::Account => 2,
        QuotaScope::Key => 3,
    }
}

/// Everything wrong with `declared` (an adapter's `limits()`) given the vendor's
/// `published` limits (spec A5). Empty when the declaration is sane and truthful.
///
/// A declaration may be stricter than the vendor (fewer requests, a coarser scope, a quota the
/// vendor does not have, a higher price) but never more generous, and its rate scope is
/// never `Device`.
pub fn limit_violations(declared: &VendorLimits, published: &VendorLimits) -> Vec<String> {
    let mut out = Vec::new();
    let d = declared;
    let p = published;
    if d.rate_scope == QuotaScope::Device {
        out.push(
            "rate_scope is Device: rates are counted per key, site or account, never per \
             device (per-device buckets multiply the budget by the fleet size)"
                .to_owned(),
        );
    }
    if scope_rank(d.rate_scope) < scope_rank(p.rate_scope) {
        out.push(format!(
            "rate_scope {:?} is finer than the vendor's {:?}",
            d.rate_scope, p.rate_scope
        ));
    }
    if d.requests_per_minute == 0 {
        out.push("requests_per_minute is 0".to_owned());
    }
    if d.requests_per_minute > p.requests_per_minute {
        out.push(format!(
            "requests_per_minute {} exceeds the published {}",
            d.requests_per_minute, p.requests_per_minute
        ));
    }
    if d.burst == 0 {
        out.push("burst is 0 (at least one request must be allowed)".to_owned());
    }
    if d.burst > d.requests_per_minute {
        out.push(format!(
            "burst {} exceeds requests_per_minute {}",
            d.burst, d.requests_per_minute
        ));
    }
    if d.burst > p.burst {
        out.push(format!("burst {} exceeds the published {}", d.burst, p.burst));
    }
    if d.max_concurrent == 0 {
        out.push("max_concurrent is 0".to_owned());
    }
    if d.max_concurrent > p.max_concurrent {
        out.push(format!(
            "max_concurrent {} exceeds the published {}",
            d.max_concurrent, p.max_concurrent
        ));
    }
    match (d.daily_quota, p.daily_quota) {
        (None, Some(pq)) => out.push(format!(
            "no daily_quota declared, but the vendor allows {} requests per day per {:?}",
            pq.requests, pq.per
        )),
        (Some(dq), Some(pq)) => {
            if dq.requests > pq.requests {
                out.push(format!(
                    "daily_quota {} exceeds the published {}",
                    dq.requests, pq.requests
                ));
            }
            if scope_rank(dq.per) < scope_rank(pq.per) {
                out.push(format!(
                    "daily_quota is counted per {:?}, finer than the vendor's {:?}",
                    dq.per, pq.per
                ));
            }
        }
        (Some(dq), None) if dq.requests == 0 => out.push("daily_quota of 0 requests".to_owned()),
        (Some(_), None) | (None, None) => {}
    }
    match (d.pricing, p.pricing) {
        (None, Some(_)) => out.push("no pricing declared, but the vendor bills".to_owned()),
        (Some(_), None) => out.push("pricing declared, but the vendor does not bill".to_owned()),
        (Some(dp), Some(pp)) => {
            for (what, dv, pv) in [
                ("data_request", dp.data_request, pp.data_request),
                ("command", dp.command, pp.command),
                ("wake", dp.wake, pp.wake),
            ] {
                if !dv.is_finite() || dv < 0.0 {
                    out.push(format!("pricing.{what} {dv} is not a price"));
                } else if dv + 1e-12 < pv {
                    out.push(format!("pricing.{what} {dv} is below the published {pv}"));
                }
            }
        }
        (None, None) => {}
    }
    out
}

/// The JSON pointer of the capability that says whether `command` works on a device of
/// `device_type`, where the resource has one (`None` for wake-ups and class mismatches).
pub fn capability_pointer(device_type: VendorType, command: &Command) -> Option<&'static str> {
    use VendorType::{Battery, Charger, Hvac, Vehicle};
    let pointer = match (device_type, command) {
        (Vehicle | Charger, Command::StartCharging) => "/capabilities/startCharging",
        (Vehicle | Charger, Command::StopCharging) => "/capabilities/stopCharging",
        (Vehicle | Charger, Command::SetMaxCurrent { .. }) => "/capabilities/setMaxCurrent",
        (Battery, Command::SetOperationMode { mode }) => match mode {
            BatteryOperationMode::ImportFocus => "/capabilities/importFocus",
            BatteryOperationMode::ExportFocus => "/capabilities/exportFocus",
            BatteryOperationMode::TimeOfUse => "/capabilities/timeOfUse",
            BatteryOperationMode::SelfReliance => "/capabilities/selfReliance",
            BatteryOperationMode::Idle => "/capabilities/idle",
        },
        (Hvac, Command::SetPermanentHold { .. }) => "/capabilities/setPermanentHold",
        (Hvac, Command::FollowSchedule) => "/capabilities/setFollowSchedule",
        _ => return None,
    };
    Some(pointer)
}

/// One command per capability a device of `device_type` can have (`SetMaxCurrent` with 16 A,
/// one `SetOperationMode` per mode, ...): with [`capability_pointer`], every capability that
/// maps to a command.
pub fn commands_with_capability(device_type: VendorType) -> Vec<Command> {
    use oemgate_core::HvacMode;
    match device_type {
        VendorType::Vehicle | VendorType::Charger => vec![
            Command::StartCharging,
            Command::StopCharging,
            Command::SetMaxCurrent { amps: 16.0 },
        ],
        VendorType::Battery => BatteryOperationMode::ALL
            .iter()
            .map(|mode| Command::SetOperationMode { mode: *mode })
            .collect(),
        VendorType::Hvac => vec![
            Command::SetPermanentHold {
                mode: HvacMode::Heat,
                heat_setpoint: Some(20.0),
                cool_setpoint: None,
            },
            Command::FollowSchedule,
        ],
        VendorType::Meter | VendorType::Inverter => Vec::new(),
    }
}

/// A command that belongs to another device class than `device_type`: every adapter must
/// refuse it as `Unsupported` without a request.
pub fn foreign_command(device_type: VendorType) -> Command {
    match device_type {
        VendorType::Vehicle | VendorType::Charger => {
            Command::SetOperationMode { mode: BatteryOperationMode::SelfReliance }
        }
        VendorType::Hvac => Command::StartCharging,
        VendorType::Battery | VendorType::Meter | VendorType::Inverter => Command::FollowSchedule,
    }
}

/// Whether devices of this class take commands at all.
pub fn takes_commands(device_type: VendorType) -> bool {
    matches!(
        device_type,
        VendorType::Vehicle | VendorType::Charger | VendorType::Battery | VendorType::Hvac
    )
}

/// Every `lastSeen` / `lastUpdated` in a resource that is not an RFC 3339 UTC time at or
/// before `now` (spec A8.3), as `pointer: problem` lines.
pub fn timestamp_problems(resource: &Value, now: DateTime<Utc>) -> Vec<String> {
    let mut out = Vec::new();
    walk_timestamps(resource, &mut String::new(), now, &mut out);
    out
}

fn walk_timestamps(value: &Value, path: &mut String, now: DateTime<Utc>, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                let len = path.len();
                path.push('/');
                path.push_str(&key.replace('~', "~0").replace('/', "~1"));
                if matches!(key.as_str(), "lastSeen" | "lastUpdated") {
                    check_timestamp(v, path, now, out);
                }
                walk_timestamps(v, path, now, out);
                path.truncate(len);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                let len = path.len();
                path.push('/');
                path.push_str(&i.to_string());
                walk_timestamps(v, path, now, out);
                path.truncate(len);
            }
        }
        _ => {}
    }
}

fn check_timestamp(value: &Value, path: &str, now: DateTime<Utc>, out: &mut Vec<String>) {
    match value {
        Value::Null => {}
        Value::String(s) => match DateTime::parse_from_rfc3339(s) {
            Err(e) => out.push(format!("{path}: {s:?} is not RFC 3339 ({e})")),
            Ok(t) if t.offset().local_minus_utc() != 0 => {
                out.push(format!("{path}: {s:?} is not in UTC"));
            }
            Ok(t) if t.with_timezone(&Utc) > now => {
                out.push(format!("{path}: {s} lies after the clock's now ({})", now.to_rfc3339()));
            }
            Ok(_) => {}
        },
        other => out.push(format!("{path}: {other} is not a timestamp string")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use oemgate_core::{DailyQuota, HvacMode, Pricing};
    use serde_json::json;

    fn published() -> VendorLimits {
        VendorLimits {
            requests_per_minute: 60,
            burst: 10,
            rate_scope: QuotaScope::Account,
            daily_quota: Some(DailyQuota { requests: 300, per: QuotaScope::Site }),
            max_concurrent: 4,
            pricing: Some(Pricing { data_request: 0.002, command: 0.001, wake: 0.02 }),
        }
    }

    #[test]
    fn truthful_and_stricter_declarations_pass() {
        assert_eq!(limit_violations(&published(), &published()), Vec::<String>::new());
        let stricter = VendorLimits {
            requests_per_minute: 30,
            burst: 5,
            rate_scope: QuotaScope::Key,
            daily_quota: Some(DailyQuota { requests: 250, per: QuotaScope::Account }),
            max_concurrent: 1,
            pricing: Some(Pricing { data_request: 0.003, command: 0.001, wake: 0.02 }),
        };
        assert_eq!(limit_violations(&stricter, &published()), Vec::<String>::new());
        let per_vehicle_vendor = VendorLimits { rate_scope: QuotaScope::Device, ..published() };
        assert_eq!(limit_violations(&published(), &per_vehicle_vendor), Vec::<String>::new());
    }

    #[test]
    fn generous_or_insane_declarations_fail() {
        let p = published();
        let check = |d: VendorLimits, needle: &str| {
            let v = limit_violations(&d, &p);
            assert!(v.iter().any(|m| m.contains(needle)), "{needle:?} not in {v:#?}");
        };
        check(VendorLimits { rate_scope: QuotaScope::Device, ..p }, "never per device");
        check(VendorLimits { rate_scope: QuotaScope::Site, ..p }, "finer than the vendor's");
        check(VendorLimits { requests_per_minute: 120, ..p }, "exceeds the published 60");
        check(VendorLimits { requests_per_minute: 0, burst: 0, ..p }, "requests_per_minute is 0");
        check(VendorLimits { burst: 0, ..p }, "burst is 0");
        check(VendorLimits { requests_per_minute: 5, ..p }, "exceeds requests_per_minute 5");
        check(VendorLimits { burst: 11, ..p }, "burst 11 exceeds the published 10");
        check(VendorLimits { max_concurrent: 0, ..p }, "max_concurrent is 0");
        check(VendorLimits { max_concurrent: 8, ..p }, "max_concurrent 8 exceeds");
        check(VendorLimits { daily_quota: None, ..p }, "no daily_quota declared");
        check(
            VendorLimits {
                daily_quota: Some(DailyQuota { requests: 301, per: QuotaScope::Site }),
                ..p
            },
            "daily_quota 301 exceeds",
        );
        check(
            VendorLimits {
                daily_quota: Some(DailyQuota { requests: 300, per: QuotaScope::Device }),
                ..p
            },
            "finer than the vendor's Site",
        );
        check(VendorLimits { pricing: None, ..p }, "the vendor bills");
        check(
            VendorLimits {
                pricing: Some(Pricing { data_request: 0.001, command: 0.001, wake: 0.02 }),
                ..p
            },
            "pricing.data_request 0.001 is below",
        );
        check(
            VendorLimits {
                pricing: Some(Pricing { data_request: f64::NAN, command: 0.001, wake: 0.02 }),
                ..p
            },
            "is not a price",
        );
        let free = VendorLimits { pricing: None, daily_quota: None, ..p };
        let v = limit_violations(&p, &free);
        assert_eq!(v, vec!["pricing declared, but the vendor does not bill".to_owned()]);
    }

    #[test]
    fn capability_pointers() {
        assert_eq!(
            capability_pointer(VendorType::Vehicle, &Command::StartCharging),
            Some("/capabilities/startCharging")
        );
        assert_eq!(
            capability_pointer(VendorType::Charger, &Command::SetMaxCurrent { amps: 16.0 }),
            Some("/capabilities/setMaxCurrent")
        );
        assert_eq!(
            capability_pointer(
                VendorType::Battery,
                &Command::SetOperationMode { mode: BatteryOperationMode::ImportFocus }
            ),
            Some("/capabilities/importFocus")
        );
        let hold = Command::SetPermanentHold {
            mode: HvacMode::Heat,
            heat_setpoint: Some(20.0),
            cool_setpoint: None,
        };
        assert_eq!(
            capability_pointer(VendorType::Hvac, &hold),
            Some("/capabilities/setPermanentHold")
        );
        assert_eq!(capability_pointer(VendorType::Vehicle, &Command::WakeUp), None);
        assert_eq!(capability_pointer(VendorType::Battery, &Command::StartCharging), None);
        for t in VendorType::ALL {
            let c = foreign_command(*t);
            assert_eq!(capability_pointer(*t, &c), None, "{t}: {c:?} must be foreign");
            for c in commands_with_capability(*t) {
                assert!(capability_pointer(*t, &c).is_some(), "{t}: {c:?} has a capability");
            }
        }
        assert_eq!(commands_with_capability(VendorType::Battery).len(), 5);
        assert!(commands_with_capability(VendorType::Meter).is_empty());
        assert!(takes_commands(VendorType::Battery));
        assert!(!takes_commands(VendorType::Meter));
    }

    #[test]
    fn timestamps_must_be_utc_and_not_in_the_future() {
        let now = Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap();
        let resource = json!({
            "lastSeen": "2026-01-01T12:00:00Z",
            "chargeState": { "lastUpdated": "2026-01-01T12:00:01Z" },
            "config": { "lastUpdated": null },
            "location": { "lastUpdated": "yesterday" },
            "odometer": { "lastUpdated": "2026-01-01T13:00:00+02:00" },
            "list": [{ "lastUpdated": 5 }],
            "information": { "installationDate": "2030-01-01T00:00:00Z" }
        });
        let problems = timestamp_problems(&resource, now);
        assert_eq!(problems.len(), 4, "{problems:#?}");
        assert!(
            problems[0].starts_with("/chargeState/lastUpdated: 2026-01-01T12:00:01Z lies after")
        );
        assert!(problems[1].starts_with("/location/lastUpdated: \"yesterday\" is not RFC 3339"));
        assert_eq!(
            problems[2],
            "/odometer/lastUpdated: \"2026-01-01T13:00:00+02:00\" is not in UTC"
        );
        assert_eq!(problems[3], "/list/0/lastUpdated: 5 is not a timestamp string");
    }
}
