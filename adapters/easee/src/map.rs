//! Pure mapping from Easee's JSON to the normalized [`Charger`], and from the account's
//! products to discovered devices.
//!
//! No I/O and no clock: the caller passes the [`DeviceRef`] (for `id` and `userId`) and the
//! time of the read.
//!
//! # Units and signs
//!
//! Easee reports `totalPower` in **kW** (not W) and currents in A, which are the normalized
//! units: `chargeRate = totalPower` and `maxCurrent = dynamicChargerCurrent`, unconverted.
//! Chargers only deliver power, so a (noise) negative `totalPower` is reported as `0`.
//! `chargeRate` is only given while charging (Enode: "null any other time").
//!
//! # Operating modes
//!
//! | `chargerOpMode` | Easee | `powerDeliveryState` |
//! |---|---|---|
//! | 0 | offline | `UNKNOWN` |
//! | 1 | disconnected | `UNPLUGGED` |
//! | 2 | awaiting start (stopped, paused, or waiting for a start command) | `PLUGGED_IN:STOPPED` |
//! | 3 | charging | `PLUGGED_IN:CHARGING` |
//! | 4 | completed (the car stopped drawing power) | `PLUGGED_IN:STOPPED` (the charger enum has no `COMPLETE`) |
//! | 5 | error | `PLUGGED_IN:FAULT` |
//! | 6 | ready to charge (waiting for the car to draw power) | `PLUGGED_IN:INITIALIZING`; with `reasonForNoCurrent` 79 "EV is not charging": `PLUGGED_IN:NO_POWER` |
//! | 7 | awaiting authorization | `PLUGGED_IN:STOPPED` (a start command authorizes) |
//! | 8 | de-authorizing | `PLUGGED_IN:STOPPED` |
//! | other | (firmware-internal codes) | `UNKNOWN` |
//!
//! `isPluggedIn` follows the state (null for `UNKNOWN`), `isCharging` is mode 3. Easee's
//! `cableLocked` is not used: a cable locked permanently (`lockCablePermanently`) reads locked
//! without a car.
//!
//! # Reachability and timestamps
//!
//! `isReachable` is Easee's `isOnline` (mode 0 when absent). An offline charger's live values
//! are the cloud's stale cache: `isPluggedIn`, `isCharging`, `chargeRate` are then `null` and
//! `powerDeliveryState` `UNKNOWN` (the scheduler keeps the last known values); `maxCurrent`, a
//! setting, is still reported. `chargeState.lastUpdated` is Easee's `latestPulse` (never later
//! than the read); `lastSeen` is the read time while the charger is online, else its last pulse.
//!
//! # Capabilities
//!
//! Every Easee charger can start, stop and limit its current through the cloud: all
//! capabilities are capable, without interventions. A charger that answers commands with an
//! error (offline, no car) fails the command, not the capability.
//!
//! # Information
//!
//! Easee's state carries no model: it comes from the serial's prefix ([`model_of_serial`]),
//! `EH` Easee Home, `EC` Easee Charge (Easee does not document the prefixes: **unconfirmed**).
//! The serial is the charger id. No year.

use chrono::{DateTime, NaiveDateTime, Utc};
use oemgate_core::{
    Capability, Charger, ChargerCapabilities, ChargerChargeState, ChargerInformation,
    ChargerLocation, ChargerPowerDeliveryState, ChargerVendor, DeviceRef, DiscoveredDevice,
    VendorType,
};

use crate::model::{ChargerState, ProductSite};

/// The brand on every resource.
pub const BRAND: &str = "Easee";

/// The scopes oemgate reports on every Easee charger.
pub const CHARGER_SCOPES: &[&str] = &["charger:control:charging", "charger:read:data"];

/// `reasonForNoCurrent` 79: "EV is not charging" (the car takes no power).
pub const REASON_EV_NOT_CHARGING: i64 = 79;

/// Easee's `chargerOpMode` codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OpMode {
    /// 0: the charger is not connected to the cloud.
    Offline,
    /// 1: no car.
    Disconnected,
    /// 2: a car is connected, the charger waits for a start (stopped or paused).
    AwaitingStart,
    /// 3: charging.
    Charging,
    /// 4: the car stopped taking power (full, or its own schedule).
    Completed,
    /// 5: error.
    Error,
    /// 6: ready, waiting for the car to draw power.
    ReadyToCharge,
    /// 7: waiting for the user to authorize (RFID, app).
    AwaitingAuthorization,
    /// 8: ending an authorization.
    DeAuthorizing,
    /// Any other code.
    Other(i64),
}

impl OpMode {
    /// The mode of a code.
    pub const fn from_code(code: i64) -> Self {
        match code {
            0 => OpMode::Offline,
            1 => OpMode::Disconnected,
            2 => OpMode::AwaitingStart,
            3 => OpMode::Charging,
            4 => OpMode::Completed,
            5 => OpMode::Error,
            6 => OpMode::ReadyToCharge,
            7 => OpMode::AwaitingAuthorization,
            8 => OpMode::DeAuthorizing,
            other => OpMode::Other(other),
        }
    }

    /// Easee's code.
    pub const fn code(self) -> i64 {
        match self {
            OpMode::Offline => 0,
            OpMode::Disconnected => 1,
            OpMode::AwaitingStart => 2,
            OpMode::Charging => 3,
            OpMode::Completed => 4,
            OpMode::Error => 5,
            OpMode::ReadyToCharge => 6,
            OpMode::AwaitingAuthorization => 7,
            OpMode::DeAuthorizing => 8,
            OpMode::Other(code) => code,
        }
    }
}

/// The power delivery state of an op mode (see the module docs).
pub fn power_delivery_state(
    mode: OpMode,
    reason_for_no_current: Option<i64>,
) -> ChargerPowerDeliveryState {
    match mode {
        OpMode::Disconnected => ChargerPowerDeliveryState::Unplugged,
        OpMode::AwaitingStart
        | OpMode::Completed
        | OpMode::AwaitingAuthorization
        | OpMode::DeAuthorizing => ChargerPowerDeliveryState::PluggedInStopped,
        OpMode::Charging => ChargerPowerDeliveryState::PluggedInCharging,
        OpMode::Error => ChargerPowerDeliveryState::PluggedInFault,
        OpMode::ReadyToCharge if reason_for_no_current == Some(REASON_EV_NOT_CHARGING) => {
            ChargerPowerDeliveryState::PluggedInNoPower
        }
        OpMode::ReadyToCharge => ChargerPowerDeliveryState::PluggedInInitializing,
        OpMode::Offline | OpMode::Other(_) => ChargerPowerDeliveryState::Unknown,
    }
}

/// The model name from a serial's prefix (`EH` Easee Home, `EC` Easee Charge).
pub fn model_of_serial(serial: &str) -> &'static str {
    let prefix: String = serial.chars().take(2).collect::<String>().to_ascii_uppercase();
    match prefix.as_str() {
        "EH" => "Home",
        "EC" => "Charge",
        _ => "Charger",
    }
}

/// Parses Easee's timestamps: RFC 3339 (`2020-07-18T20:01:16Z`), or without an offset
/// (`2020-03-06T08:52:52.512105`, which Easee means as UTC). `None` if neither.
pub fn parse_timestamp(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f").ok().map(|n| n.and_utc())
}

/// The normalized charger from `GET /api/chargers/{id}/state`, read at `observed_at`.
pub fn charger_from_state(
    device: &DeviceRef,
    state: &ChargerState,
    observed_at: DateTime<Utc>,
) -> Charger {
    let mode = OpMode::from_code(state.charger_op_mode);
    let online = state.is_online.unwrap_or(mode != OpMode::Offline);
    let pulse = state.latest_pulse.as_deref().and_then(parse_timestamp).map(|t| t.min(observed_at));
    let delivery = if online {
        power_delivery_state(mode, state.reason_for_no_current)
    } else {
        ChargerPowerDeliveryState::Unknown
    };
    let known = delivery != ChargerPowerDeliveryState::Unknown;
    let charging = delivery == ChargerPowerDeliveryState::PluggedInCharging;
    let charge_rate = if charging {
        state.total_power.filter(|p| p.is_finite()).map(|p| p.max(0.0))
    } else {
        None
    };
    let max_current = state.dynamic_charger_current.filter(|a| a.is_finite() && *a >= 0.0);
    let last_seen = if online { observed_at } else { pulse.unwrap_or(observed_at) };
    let serial = device.vendor_id.clone();
    Charger {
        id: device.id.clone(),
        user_id: device.user_id.clone(),
        vendor: ChargerVendor::Easee,
        last_seen,
        is_reachable: online,
        charge_state: ChargerChargeState {
            is_plugged_in: known.then(|| delivery.is_plugged_in()),
            is_charging: known.then_some(charging),
            charge_rate,
            last_updated: Some(pulse.unwrap_or(observed_at)),
            max_current,
            power_delivery_state: delivery,
            plugged_in_vehicle_id: None,
        },
        capabilities: capabilities(),
        scopes: CHARGER_SCOPES.iter().map(|s| (*s).to_owned()).collect(),
        information: ChargerInformation {
            brand: BRAND.to_owned(),
            model: model_of_serial(&serial).to_owned(),
            year: None,
            serial_number: serial,
        },
        location: ChargerLocation { id: None, last_updated: None },
    }
}

/// What every Easee charger can do through the cloud (see the module docs).
pub fn capabilities() -> ChargerCapabilities {
    ChargerCapabilities {
        information: Capability::capable(),
        charge_state: Capability::capable(),
        start_charging: Capability::capable(),
        stop_charging: Capability::capable(),
        set_max_current: Capability::capable(),
    }
}

/// The chargers of `GET /api/accounts/products`: each once (the first site that lists it), with
/// its serial as vendor id and its site's id as site id; the display name is the charger's.
pub fn discovered_devices(sites: &[ProductSite]) -> Vec<DiscoveredDevice> {
    let mut found: Vec<DiscoveredDevice> = Vec::new();
    for site in sites {
        for charger in site.circuits.iter().flat_map(|c| &c.chargers) {
            let serial = charger.id.trim();
            if serial.is_empty() || found.iter().any(|d| d.vendor_id == serial) {
                continue;
            }
            let name =
                charger.name.as_deref().map(str::trim).filter(|n| !n.is_empty()).map(str::to_owned);
            found.push(DiscoveredDevice {
                device_type: VendorType::Charger,
                vendor_id: serial.to_owned(),
                site_id: Some(site.id.clone()),
                display_name: name,
            });
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn op_modes_round_trip() {
        for code in -1..120 {
            assert_eq!(OpMode::from_code(code).code(), code);
        }
    }

    #[test]
    fn timestamps() {
        let t = parse_timestamp("2020-07-18T20:01:16Z").map(|t| t.to_rfc3339());
        assert_eq!(t.as_deref(), Some("2020-07-18T20:01:16+00:00"));
        let t = parse_timestamp("2020-03-06T08:52:52.512105").map(|t| t.timestamp());
        assert_eq!(t, Some(1_583_484_772));
        assert_eq!(parse_timestamp("yesterday"), None);
    }

    #[test]
    fn models_from_serials() {
        assert_eq!(model_of_serial("EH123456"), "Home");
        assert_eq!(model_of_serial("ec000001"), "Charge");
        assert_eq!(model_of_serial("X"), "Charger");
        assert_eq!(model_of_serial(""), "Charger");
    }
}
