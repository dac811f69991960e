//! Pure mapping from Wallbox's JSON to the normalized [`Charger`], from the groups list to
//! discovered devices, and from token answers to credential expiry.
//!
//! No I/O and no clock: the caller passes the [`DeviceRef`] (for `id` and `userId`) and the
//! time of the observation.
//!
//! # Status codes
//!
//! Wallbox reports one `status_id`; the groups follow the Wallbox portal's
//! `chargerStatuses.js` (as Home Assistant and the `wallbox` Python client copy it), refined
//! where one group holds states that Enode tells apart:
//!
//! | `status_id` | Wallbox | `powerDeliveryState` | plugged | charging |
//! |---|---|---|---|---|
//! | 193, 194, 195 | Charging | `PLUGGED_IN:CHARGING` | true | true |
//! | 196 | Discharging (Quasar) | `PLUGGED_IN:DISCHARGING` | true | false |
//! | 178, 182 | Paused | `PLUGGED_IN:STOPPED` | true | false |
//! | 177, 179 | Scheduled | `PLUGGED_IN:STOPPED` | true | false |
//! | 189 | Waiting in queue by Eco-Smart | `PLUGGED_IN:STOPPED` | true | false |
//! | 210 | Locked, car connected | `PLUGGED_IN:STOPPED` | true | false |
//! | 180, 181 | Waiting for car demand (the car takes no power: full, or its own timer) | `PLUGGED_IN:NO_POWER` | true | false |
//! | 164 | Waiting | `PLUGGED_IN:INITIALIZING` | true | false |
//! | 183–186 | Waiting in queue by Power Sharing / Power Boost | `PLUGGED_IN:INITIALIZING` | true | false |
//! | 187, 188 | Waiting: MID failed / MID safety margin exceeded | `PLUGGED_IN:FAULT` | true | false |
//! | 161, 162 | Ready (no car) | `UNPLUGGED` | false | false |
//! | 165, 209 | Locked (no car) | `UNPLUGGED` | false | false |
//! | 14, 15 | Error | `UNKNOWN` | null | false |
//! | 166 | Updating | `UNKNOWN` | null | false |
//! | 0, 163 | Disconnected: the charger is not connected to Wallbox's cloud | `UNKNOWN`, `isReachable: false` | null | null |
//! | anything else | | `UNKNOWN` | null | null |
//!
//! # Units and signs
//!
//! - `charging_power` is kW already; `chargeRate` is it while charging, **negative** while a
//!   bidirectional Quasar discharges (status 196; the sign convention of batteries), and
//!   `null` in every other state (Enode: "only available when actively charging").
//! - `config_data.max_charging_current` (A) is `maxCurrent`. `max_available_power` is the
//!   hardware's maximum in **amperes** despite its name (Home Assistant shows it in A).
//! - `last_sync` (`"2023-08-18 06:50:26"`, no zone; taken as UTC) is `chargeState.lastUpdated`
//!   when present and not in the future, else the read time. `lastSeen` is the read time.
//! - A token's `ttl` and `refresh_token_ttl` are expiry **instants in epoch milliseconds**
//!   ([`epoch_ms`]).
//!
//! # Capabilities
//!
//! Wallbox's cloud starts, stops (remote actions 1 and 2) and limits the current
//! (`maxChargingCurrent`) of every charger it serves, so every capability is capable and no
//! intervention is named.
//!
//! # What Wallbox does not give
//!
//! No production year (`year` is `null`), no coordinates, no Enode location (`location` is
//! all `null`). The model is read from the part number's prefix (`PLP1-…` is a Pulsar Plus) or
//! the list's `chargerType` (`PulsarPlus`), else the part number itself.

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use oemgate_core::{
    Capability, Charger, ChargerCapabilities, ChargerChargeState, ChargerInformation,
    ChargerLocation, ChargerPowerDeliveryState, ChargerVendor, DeviceRef, DiscoveredDevice,
    VendorType,
};

use crate::model::{ChargerStatus, GroupCharger, GroupsResponse};

/// The brand on every resource.
pub const BRAND: &str = "Wallbox";

/// The scopes a linked Wallbox account grants.
pub const CHARGER_SCOPES: &[&str] = &["charger:control:charging", "charger:read:data"];

/// Wallbox's status groups (see the module docs for the codes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StatusGroup {
    /// 193–195.
    Charging,
    /// 196 (bidirectional chargers).
    Discharging,
    /// 178, 182.
    Paused,
    /// 177, 179.
    Scheduled,
    /// 180, 181: waiting for car demand.
    WaitingForCar,
    /// 164.
    Waiting,
    /// 183–186: waiting in the Power Sharing or Power Boost queue.
    WaitingInQueue,
    /// 187, 188: the MID meter failed or its safety margin was exceeded.
    WaitingMid,
    /// 189: waiting for solar surplus (Eco-Smart).
    WaitingEcoSmart,
    /// 161, 162: no car connected.
    Ready,
    /// 0, 163: not connected to the cloud.
    Disconnected,
    /// 165, 209: locked, no car.
    Locked,
    /// 210: locked with a car connected.
    LockedCarConnected,
    /// 14, 15.
    Error,
    /// 166: firmware update.
    Updating,
    /// A code Wallbox did not document.
    Unknown,
}

/// The group of a `status_id`.
pub fn status_group(code: Option<i64>) -> StatusGroup {
    match code {
        Some(193..=195) => StatusGroup::Charging,
        Some(196) => StatusGroup::Discharging,
        Some(178 | 182) => StatusGroup::Paused,
        Some(177 | 179) => StatusGroup::Scheduled,
        Some(180 | 181) => StatusGroup::WaitingForCar,
        Some(164) => StatusGroup::Waiting,
        Some(183..=186) => StatusGroup::WaitingInQueue,
        Some(187 | 188) => StatusGroup::WaitingMid,
        Some(189) => StatusGroup::WaitingEcoSmart,
        Some(161 | 162) => StatusGroup::Ready,
        Some(0 | 163) => StatusGroup::Disconnected,
        Some(165 | 209) => StatusGroup::Locked,
        Some(210) => StatusGroup::LockedCarConnected,
        Some(14 | 15) => StatusGroup::Error,
        Some(166) => StatusGroup::Updating,
        _ => StatusGroup::Unknown,
    }
}

/// How a status group reads in Enode's terms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Delivery {
    /// `powerDeliveryState`.
    pub state: ChargerPowerDeliveryState,
    /// `isPluggedIn`.
    pub plugged_in: Option<bool>,
    /// `isCharging`.
    pub charging: Option<bool>,
    /// `isReachable`.
    pub reachable: bool,
}

/// The Enode view of a status group (the table in the module docs).
pub fn delivery(group: StatusGroup) -> Delivery {
    use ChargerPowerDeliveryState as S;
    let plugged = |state| Delivery {
        state,
        plugged_in: Some(true),
        charging: Some(state == S::PluggedInCharging),
        reachable: true,
    };
    match group {
        StatusGroup::Charging => plugged(S::PluggedInCharging),
        StatusGroup::Discharging => plugged(S::PluggedInDischarging),
        StatusGroup::Paused
        | StatusGroup::Scheduled
        | StatusGroup::WaitingEcoSmart
        | StatusGroup::LockedCarConnected => plugged(S::PluggedInStopped),
        StatusGroup::WaitingForCar => plugged(S::PluggedInNoPower),
        StatusGroup::Waiting | StatusGroup::WaitingInQueue => plugged(S::PluggedInInitializing),
        StatusGroup::WaitingMid => plugged(S::PluggedInFault),
        StatusGroup::Ready | StatusGroup::Locked => Delivery {
            state: S::Unplugged,
            plugged_in: Some(false),
            charging: Some(false),
            reachable: true,
        },
        StatusGroup::Error | StatusGroup::Updating => {
            Delivery { state: S::Unknown, plugged_in: None, charging: Some(false), reachable: true }
        }
        StatusGroup::Disconnected => {
            Delivery { state: S::Unknown, plugged_in: None, charging: None, reachable: false }
        }
        StatusGroup::Unknown => {
            Delivery { state: S::Unknown, plugged_in: None, charging: None, reachable: true }
        }
    }
}

/// `chargeRate` in kW: the charging power while charging, its negative while discharging,
/// `null` otherwise (and when Wallbox gives no number).
pub fn charge_rate_kw(group: StatusGroup, charging_power_kw: Option<f64>) -> Option<f64> {
    let p = charging_power_kw.filter(|p| p.is_finite())?;
    match group {
        StatusGroup::Charging => Some(p.max(0.0)),
        StatusGroup::Discharging => Some(-p.abs()),
        _ => None,
    }
}

/// A current in A that is a plausible setting (finite, positive).
fn amps(a: Option<f64>) -> Option<f64> {
    a.filter(|a| a.is_finite() && *a > 0.0)
}

/// The model from a part number's prefix (best effort: `PLP` is confirmed by Wallbox's
/// own example; the others follow Wallbox's part-number scheme).
pub fn model_from_part_number(part_number: &str) -> Option<&'static str> {
    let prefix: String =
        part_number.trim().chars().take_while(char::is_ascii_alphabetic).collect::<String>();
    match prefix.to_ascii_uppercase().as_str() {
        "PLP" => Some("Pulsar Plus"),
        "PLM" => Some("Pulsar Max"),
        "PUP" | "PLS" => Some("Pulsar"),
        "CMX" => Some("Commander 2"),
        "CPB" => Some("Copper SB"),
        "QSX" | "QS" => Some("Quasar"),
        _ => None,
    }
}

/// The model from the list's `chargerType` (`PulsarPlus` → `Pulsar Plus`, `CopperSB` →
/// `Copper SB`).
pub fn model_from_charger_type(charger_type: &str) -> String {
    let mut out = String::new();
    let mut prev_lower = false;
    for c in charger_type.trim().chars() {
        if c.is_ascii_uppercase() && prev_lower {
            out.push(' ');
        }
        prev_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        out.push(c);
    }
    out
}

/// `last_sync` (`"2023-08-18 06:50:26"`, also with fractions or a `T`) as UTC, if it parses.
pub fn parse_last_sync(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
        .map(|naive| Utc.from_utc_datetime(&naive))
}

/// An epoch in **milliseconds** (a token's `ttl`) as UTC. Values below 1e11 (before March
/// 1973 in milliseconds) are not plausible expiry instants (some clients were seen with
/// durations there) and give `None`: the vendor's 401 tells instead.
pub fn epoch_ms(ms: Option<f64>) -> Option<DateTime<Utc>> {
    let ms = ms.filter(|m| m.is_finite() && (1.0e11..1.0e14).contains(m))?;
    // Bounded above, so the cast is exact after flooring.
    #[allow(clippy::cast_possible_truncation)]
    let whole = ms.floor() as i64;
    Utc.timestamp_millis_opt(whole).single()
}

/// What both reads (status, groups list) say about one charger.
struct Parts {
    status_id: Option<i64>,
    charging_power: Option<f64>,
    max_current: Option<f64>,
    serial: Option<String>,
    model: Option<String>,
    updated: Option<DateTime<Utc>>,
}

fn capabilities() -> ChargerCapabilities {
    ChargerCapabilities {
        information: Capability::capable(),
        charge_state: Capability::capable(),
        start_charging: Capability::capable(),
        stop_charging: Capability::capable(),
        set_max_current: Capability::capable(),
    }
}

fn build(device: &DeviceRef, p: Parts, observed_at: DateTime<Utc>) -> Charger {
    let group = status_group(p.status_id);
    let d = delivery(group);
    let updated = p.updated.filter(|t| *t <= observed_at).unwrap_or(observed_at);
    Charger {
        id: device.id.clone(),
        user_id: device.user_id.clone(),
        vendor: ChargerVendor::Wallbox,
        last_seen: observed_at,
        is_reachable: d.reachable,
        charge_state: ChargerChargeState {
            is_plugged_in: d.plugged_in,
            is_charging: d.charging,
            charge_rate: charge_rate_kw(group, p.charging_power),
            last_updated: Some(updated),
            max_current: amps(p.max_current),
            power_delivery_state: d.state,
            plugged_in_vehicle_id: None,
        },
        capabilities: capabilities(),
        scopes: CHARGER_SCOPES.iter().map(|s| (*s).to_owned()).collect(),
        information: ChargerInformation {
            brand: BRAND.to_owned(),
            model: p.model.unwrap_or_else(|| BRAND.to_owned()),
            year: None,
            serial_number: p.serial.unwrap_or_else(|| device.vendor_id.clone()),
        },
        location: ChargerLocation { id: None, last_updated: None },
    }
}

/// The normalized charger from `GET chargers/status/{id}`.
pub fn charger_from_status(
    device: &DeviceRef,
    status: &ChargerStatus,
    observed_at: DateTime<Utc>,
) -> Charger {
    let config = status.config_data.clone().unwrap_or_default();
    let part = config.part_number.as_deref();
    let model = part.map(|p| model_from_part_number(p).map_or_else(|| p.to_owned(), str::to_owned));
    let parts = Parts {
        status_id: status.status_id,
        charging_power: status.charging_power,
        max_current: config.max_charging_current,
        serial: config.serial_number.or(config.charger_id),
        model,
        updated: status.last_sync.as_deref().and_then(parse_last_sync),
    };
    build(device, parts, observed_at)
}

/// The normalized charger from its entry in `GET v3/chargers/groups` (the batched read). The
/// list carries no sync time: `lastUpdated` is the read time.
pub fn charger_from_group_entry(
    device: &DeviceRef,
    entry: &GroupCharger,
    observed_at: DateTime<Utc>,
) -> Charger {
    let parts = Parts {
        status_id: entry.status,
        charging_power: entry.charging_power,
        max_current: entry.max_charging_current,
        serial: entry.serial_number.clone(),
        model: entry.charger_type.as_deref().map(model_from_charger_type),
        updated: None,
    };
    build(device, parts, observed_at)
}

/// Every charger of the groups list, once each: the charger id as vendor id, the group
/// (Wallbox's location) as site, the user's name for it as display name.
pub fn discovered_devices(groups: &GroupsResponse) -> Vec<DiscoveredDevice> {
    let mut out: Vec<DiscoveredDevice> = Vec::new();
    for group in &groups.result.groups {
        for charger in &group.chargers {
            if out.iter().any(|d| d.vendor_id == charger.id) {
                continue;
            }
            out.push(DiscoveredDevice {
                device_type: VendorType::Charger,
                vendor_id: charger.id.clone(),
                site_id: group.id.clone(),
                display_name: charger.name.clone(),
            });
        }
    }
    out
}

/// The entry of `charger_id` in the groups list.
pub fn find_in_groups<'a>(
    groups: &'a GroupsResponse,
    charger_id: &str,
) -> Option<&'a GroupCharger> {
    groups.result.groups.iter().flat_map(|g| g.chargers.iter()).find(|c| c.id == charger_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_documented_code_has_a_group() {
        let documented = [
            0, 14, 15, 161, 162, 163, 164, 165, 166, 177, 178, 179, 180, 181, 182, 183, 184, 185,
            186, 187, 188, 189, 193, 194, 195, 196, 209, 210,
        ];
        for code in documented {
            assert_ne!(status_group(Some(code)), StatusGroup::Unknown, "{code}");
        }
        assert_eq!(status_group(Some(1)), StatusGroup::Unknown);
        assert_eq!(status_group(None), StatusGroup::Unknown);
    }

    #[test]
    fn plugged_states_are_consistent() {
        for code in 0..300 {
            let d = delivery(status_group(Some(code)));
            if let Some(plugged) = d.plugged_in {
                assert_eq!(plugged, d.state.is_plugged_in(), "{code}");
            } else {
                assert_eq!(d.state, ChargerPowerDeliveryState::Unknown, "{code}");
            }
            if d.charging == Some(true) {
                assert_eq!(d.plugged_in, Some(true));
            }
        }
    }

    #[test]
    fn charge_rate_signs() {
        assert_eq!(charge_rate_kw(StatusGroup::Charging, Some(7.4)), Some(7.4));
        assert_eq!(charge_rate_kw(StatusGroup::Discharging, Some(5.0)), Some(-5.0));
        assert_eq!(charge_rate_kw(StatusGroup::Discharging, Some(-5.0)), Some(-5.0));
        assert_eq!(charge_rate_kw(StatusGroup::Paused, Some(0.0)), None);
        assert_eq!(charge_rate_kw(StatusGroup::Charging, None), None);
        assert_eq!(charge_rate_kw(StatusGroup::Charging, Some(f64::NAN)), None);
    }

    #[test]
    fn models() {
        assert_eq!(model_from_part_number("PLP1-0-2-4-9-002-E"), Some("Pulsar Plus"));
        assert_eq!(model_from_part_number("XYZ1"), None);
        assert_eq!(model_from_charger_type("PulsarPlus"), "Pulsar Plus");
        assert_eq!(model_from_charger_type("CopperSB"), "Copper SB");
        assert_eq!(model_from_charger_type("Quasar"), "Quasar");
    }

    #[test]
    fn times() {
        let t = parse_last_sync("2023-08-18 06:50:26").unwrap();
        assert_eq!(t, Utc.with_ymd_and_hms(2023, 8, 18, 6, 50, 26).unwrap());
        assert_eq!(parse_last_sync("2023-08-17 20:01:46.000000").unwrap().timestamp(), 1692302506);
        assert!(parse_last_sync("yesterday").is_none());
        let e = epoch_ms(Some(1_781_546_400_000.0)).unwrap();
        assert_eq!(e.timestamp(), 1_781_546_400);
        assert_eq!(epoch_ms(Some(145_656_758.0)), None, "a duration, not an instant");
        assert_eq!(epoch_ms(None), None);
        assert_eq!(epoch_ms(Some(f64::INFINITY)), None);
    }
}
