//! Pure mapping from Zaptec's JSON to the normalized [`Charger`], and from the charger list
//! to discovered devices.
//!
//! No I/O and no clock: the caller passes the [`DeviceRef`] (for `id` and `userId`) and the
//! time of the read.
//!
//! # The state list
//!
//! `GET chargers/{id}/state` is a list of observations, each a [`state_id`] with a text value
//! and the charger's own timestamp ([`ChargerStates`]). The mapping reads:
//!
//! | StateId | Zaptec name | normalized |
//! |---|---|---|
//! | 710 | `ChargerOperationMode` | `powerDeliveryState`, `isPluggedIn`, `isCharging` |
//! | 513 | `TotalChargePower`, **W** | `chargeRate` in **kW** (`W / 1000`), only while charging |
//! | 708 | `ChargeCurrentSet`, A | `maxCurrent`, A |
//! | −2 | `IsOnline` (`1`/`0`) | `isReachable` |
//! | −1 | `Pulse` (timestamp only) | `lastSeen` of an offline charger |
//!
//! # Operation modes
//!
//! | 710 | Zaptec | `powerDeliveryState` | plugged | charging |
//! |---|---|---|---|---|
//! | 1 | `Disconnected` | `UNPLUGGED` | false | false |
//! | 2 | `Connected_Requesting` | `PLUGGED_IN:STOPPED` | true | false |
//! | 3 | `Connected_Charging` | `PLUGGED_IN:CHARGING` | true | true |
//! | 5 | `Connected_Finished` (paused by `StopChargingFinal`, or the car is done) | `PLUGGED_IN:STOPPED` | true | false |
//! | 0, anything else, missing | `Unknown` | `UNKNOWN` | null | null |
//!
//! `Connected_Requesting` has no exact Enode counterpart: the car is connected and the charger
//! waits (for the car to draw current, for authorisation, for an allocation). A start
//! (`ResumeCharging`) is what it takes, so it is reported as `PLUGGED_IN:STOPPED`, not as
//! `PLUGGED_IN:INITIALIZING` (which promises charging shortly). Zaptec cannot tell a car that
//! refuses power, so `PLUGGED_IN:NO_POWER` is never reported.
//!
//! # Units and signs
//!
//! - `chargeRate` = state 513 (W) / 1000, never negative (a negative reading is clamped to 0),
//!   and `null` unless the charger is charging (Enode: "only available when the charger is
//!   actively charging a vehicle, and is null any other time").
//! - `maxCurrent` = state 708 `ChargeCurrentSet` in A: the current the charger is set to offer
//!   (Zaptec allocates it from the installation's available current).
//! - Timestamps: Zaptec's `Timestamp` is UTC without a zone designator and with 0–7 fractional
//!   digits ([`parse_timestamp`]); RFC 3339 with a zone is read too. `chargeState.lastUpdated`
//!   is the newest timestamp of states 710, 513 and 708, never later than the read.
//! - `lastSeen` is the read time while Zaptec says the charger is online; for an offline
//!   charger it is the charger's last report (its `Pulse`, else its newest observation but
//!   `IsOnline`), since Zaptec then serves the values it last received, with their old
//!   timestamps.
//!
//! # Max current belongs to the installation
//!
//! Zaptec limits current per **installation** (`POST installation/{id}/update
//! {"availableCurrent":…}`), shared by all chargers of the installation through its load
//! balancing. The hierarchy (`GET installation/{id}/hierarchy`) says who shares it
//! ([`MaxCurrentControl`]):
//!
//! - the charger is the installation's only charger: the installation's limit *is* the
//!   charger's, and `setMaxCurrent` is capable;
//! - other chargers share the installation: setting it would change their limit too, so
//!   `setMaxCurrent` is not capable, with [`SHARED_INSTALLATION_INTERVENTION_ID`];
//! - the account may not see the installation (Zaptec answers 403: the user is not the
//!   installation's owner) or Zaptec names none: not capable, with
//!   [`INSTALLATION_ACCESS_INTERVENTION_ID`].
//!
//! Start and stop (`sendCommand` 507 `ResumeCharging` and 506 `StopChargingFinal`) work per
//! charger and are always capable.
//!
//! # Information
//!
//! `serialNumber` is the hierarchy's `DeviceId` (or `SerialNo`, `MID`) of the charger, else
//! the charger's GUID. `model` follows the serial number's prefix as Zaptec documents it
//! ("Identify device types": `ZAP`/`ZGB`/`ZAG` Go, `GPN`/`GPG` Go 2, `ZCS`/`ZPR`/`ZCH`/`ZPG`
//! Pro), else `Zaptec charger`. Zaptec gives no production year: `year` is `null`.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use oemgate_core::{
    Capability, Charger, ChargerCapabilities, ChargerChargeState, ChargerInformation,
    ChargerLocation, ChargerPowerDeliveryState, ChargerVendor, DeviceRef, DiscoveredDevice,
    Intervention, InterventionDomain, InterventionResolution, ResolutionAccess, ResolutionAgent,
    Vendor, VendorType,
};

use crate::model::{ChargerListItem, Hierarchy, StateObservation};

/// The brand on every charger.
pub const BRAND: &str = "Zaptec";

/// The scopes oemgate reports on every Zaptec charger.
pub const CHARGER_SCOPES: &[&str] = &["charger:control:charging", "charger:read:data"];

/// Intervention: the charger shares its installation's current limit with other chargers, so
/// its own maximum current cannot be set through Zaptec. Stable: clients may store it.
pub const SHARED_INSTALLATION_INTERVENTION_ID: &str = "7d3e1a94-5b2c-4f8e-a6d1-0c9b8e7f2a13";
/// Intervention: the Zaptec user has no owner rights on the charger's installation (or Zaptec
/// names none), so the installation's current limit cannot be set. Stable.
pub const INSTALLATION_ACCESS_INTERVENTION_ID: &str = "c41f8b2e-3d6a-4e97-9b05-6a2d1e8f7c34";

/// Zaptec's observation ids (`Observations` of `/api/constants`) the adapter reads or the
/// simulator serves.
pub mod state_id {
    /// `IsOcppConnected`.
    pub const IS_OCPP_CONNECTED: i64 = -3;
    /// `IsOnline`: `1` or `0`.
    pub const IS_ONLINE: i64 = -2;
    /// `Pulse`: the charger's heartbeat, a timestamp without a value.
    pub const PULSE: i64 = -1;
    /// `VoltagePhase1`, V (502, 503 the other phases).
    pub const VOLTAGE_PHASE1: i64 = 501;
    /// `VoltagePhase2`, V.
    pub const VOLTAGE_PHASE2: i64 = 502;
    /// `VoltagePhase3`, V.
    pub const VOLTAGE_PHASE3: i64 = 503;
    /// `CurrentPhase1`, A (508, 509 the other phases).
    pub const CURRENT_PHASE1: i64 = 507;
    /// `CurrentPhase2`, A.
    pub const CURRENT_PHASE2: i64 = 508;
    /// `CurrentPhase3`, A.
    pub const CURRENT_PHASE3: i64 = 509;
    /// `ChargerMaxCurrent`, A (the charger's own setting).
    pub const CHARGER_MAX_CURRENT: i64 = 510;
    /// `ChargerMinCurrent`, A.
    pub const CHARGER_MIN_CURRENT: i64 = 511;
    /// `TotalChargePower`, W.
    pub const TOTAL_CHARGE_POWER: i64 = 513;
    /// `SetPhases`.
    pub const SET_PHASES: i64 = 519;
    /// `TotalChargePowerSession`, kWh.
    pub const TOTAL_CHARGE_POWER_SESSION: i64 = 553;
    /// `ChargeCurrentInstallationMaxLimit`, A.
    pub const CHARGE_CURRENT_INSTALLATION_MAX_LIMIT: i64 = 707;
    /// `ChargeCurrentSet`, A.
    pub const CHARGE_CURRENT_SET: i64 = 708;
    /// `ChargerOperationMode` (see [`super::OperationMode`]).
    pub const CHARGER_OPERATION_MODE: i64 = 710;
    /// `IsEnabled`.
    pub const IS_ENABLED: i64 = 711;
    /// `FinalStopActive`: `1` while paused by `StopChargingFinal`.
    pub const FINAL_STOP_ACTIVE: i64 = 718;
    /// `InstallationId`.
    pub const INSTALLATION_ID: i64 = 800;
}

/// Zaptec's command ids (`Commands` of `/api/constants`) for `sendCommand`.
pub mod command_id {
    /// `RestartCharger`.
    pub const RESTART_CHARGER: u32 = 102;
    /// `StartCharging` (legacy).
    pub const START_CHARGING: u32 = 501;
    /// `StopCharging` (legacy).
    pub const STOP_CHARGING: u32 = 502;
    /// `StopChargingFinal`: pause; the charger stays paused until `ResumeCharging`.
    pub const STOP_CHARGING_FINAL: u32 = 506;
    /// `ResumeCharging`.
    pub const RESUME_CHARGING: u32 = 507;
    /// `DeauthorizeAndStop`.
    pub const DEAUTHORIZE_AND_STOP: u32 = 10_001;
}

/// Zaptec's `ErrorCodes` (of `/api/constants`) the adapter acts on.
pub mod error_code {
    /// `UnknownObject`.
    pub const UNKNOWN_OBJECT: i64 = 512;
    /// `UnknownCommand`.
    pub const UNKNOWN_COMMAND: i64 = 519;
    /// `ErrorCommunicatingWithDevice`: the charger is not connected to the cloud.
    pub const ERROR_COMMUNICATING_WITH_DEVICE: i64 = 520;
    /// `NotSupported`.
    pub const NOT_SUPPORTED: i64 = 527;
    /// `DeviceCommandRejected`: the charger refused the command in its current state.
    pub const DEVICE_COMMAND_REJECTED: i64 = 528;
    /// `InvalidFormat`.
    pub const INVALID_FORMAT: i64 = 529;
    /// `Forbidden`.
    pub const FORBIDDEN: i64 = 533;
}

/// `ChargerOperationMode` (state 710).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OperationMode {
    /// 0 `Unknown`.
    Unknown,
    /// 1 `Disconnected`.
    Disconnected,
    /// 2 `Connected_Requesting`.
    ConnectedRequesting,
    /// 3 `Connected_Charging`.
    ConnectedCharging,
    /// 5 `Connected_Finished`.
    ConnectedFinished,
    /// A value Zaptec did not document.
    Other(i64),
}

impl OperationMode {
    /// The mode of a 710 value.
    pub fn from_code(code: i64) -> Self {
        match code {
            0 => OperationMode::Unknown,
            1 => OperationMode::Disconnected,
            2 => OperationMode::ConnectedRequesting,
            3 => OperationMode::ConnectedCharging,
            5 => OperationMode::ConnectedFinished,
            other => OperationMode::Other(other),
        }
    }

    /// Zaptec's code.
    pub fn code(self) -> i64 {
        match self {
            OperationMode::Unknown => 0,
            OperationMode::Disconnected => 1,
            OperationMode::ConnectedRequesting => 2,
            OperationMode::ConnectedCharging => 3,
            OperationMode::ConnectedFinished => 5,
            OperationMode::Other(code) => code,
        }
    }

    /// The normalized power delivery state (see the module docs).
    pub fn power_delivery_state(self) -> ChargerPowerDeliveryState {
        match self {
            OperationMode::Disconnected => ChargerPowerDeliveryState::Unplugged,
            OperationMode::ConnectedRequesting | OperationMode::ConnectedFinished => {
                ChargerPowerDeliveryState::PluggedInStopped
            }
            OperationMode::ConnectedCharging => ChargerPowerDeliveryState::PluggedInCharging,
            OperationMode::Unknown | OperationMode::Other(_) => ChargerPowerDeliveryState::Unknown,
        }
    }

    /// Whether a car is connected, where the mode says.
    pub fn is_plugged_in(self) -> Option<bool> {
        match self {
            OperationMode::Disconnected => Some(false),
            OperationMode::ConnectedRequesting
            | OperationMode::ConnectedCharging
            | OperationMode::ConnectedFinished => Some(true),
            OperationMode::Unknown | OperationMode::Other(_) => None,
        }
    }

    /// Whether the charger delivers power, where the mode says.
    pub fn is_charging(self) -> Option<bool> {
        match self {
            OperationMode::ConnectedCharging => Some(true),
            OperationMode::Disconnected
            | OperationMode::ConnectedRequesting
            | OperationMode::ConnectedFinished => Some(false),
            OperationMode::Unknown | OperationMode::Other(_) => None,
        }
    }
}

/// Reads Zaptec's boolean spellings (`1`/`0`, `true`/`false`, `on`/`off`, `yes`/`no`, and
/// numbers like `1.000`).
pub fn parse_flag(s: &str) -> Option<bool> {
    let s = s.trim().to_ascii_lowercase();
    match s.as_str() {
        "true" | "on" | "yes" => Some(true),
        "false" | "off" | "no" => Some(false),
        other => other.parse::<f64>().ok().filter(|f| f.is_finite()).map(|f| f != 0.0),
    }
}

/// Reads a Zaptec timestamp: `2024-03-09T17:04:21.243` (UTC, no zone, 0–7 fractional digits),
/// or RFC 3339 with a zone. `None` for anything else.
pub fn parse_timestamp(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    let naive = NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
        .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f"))
        .ok()?;
    Some(Utc.from_utc_datetime(&naive))
}

/// A number in Zaptec's text (`"25.000"`, `" 7360.5 "`); `None` for anything not finite.
pub fn parse_number(s: &str) -> Option<f64> {
    s.trim().parse::<f64>().ok().filter(|f| f.is_finite())
}

/// One observation's value and time.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Reading {
    /// The text value, if the observation has one.
    pub value: Option<String>,
    /// The charger's timestamp, if it parses.
    pub at: Option<DateTime<Utc>>,
}

/// The state list by id (the last entry wins when Zaptec repeats an id).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ChargerStates {
    readings: BTreeMap<i64, Reading>,
}

impl ChargerStates {
    /// Indexes a state list.
    pub fn new(list: &[StateObservation]) -> Self {
        let readings = list
            .iter()
            .map(|o| {
                let reading = Reading {
                    value: o.value_as_string.clone(),
                    at: o.timestamp.as_deref().and_then(parse_timestamp),
                };
                (o.state_id, reading)
            })
            .collect();
        Self { readings }
    }

    /// Whether the list had no observation at all.
    pub fn is_empty(&self) -> bool {
        self.readings.is_empty()
    }

    /// The reading of `id`.
    pub fn get(&self, id: i64) -> Option<&Reading> {
        self.readings.get(&id)
    }

    /// The text value of `id`.
    pub fn text(&self, id: i64) -> Option<&str> {
        self.get(id).and_then(|r| r.value.as_deref())
    }

    /// The value of `id` as a finite number.
    pub fn number(&self, id: i64) -> Option<f64> {
        self.text(id).and_then(parse_number)
    }

    /// The value of `id` as a whole number (`"3"`, `"3.000"`).
    pub fn integer(&self, id: i64) -> Option<i64> {
        let n = self.number(id)?;
        // Whole and well inside the i64 range, so the cast is exact.
        #[allow(clippy::cast_possible_truncation)]
        let whole = (n.fract() == 0.0 && n.abs() < 9.0e15).then_some(n as i64);
        whole
    }

    /// The value of `id` as a flag.
    pub fn flag(&self, id: i64) -> Option<bool> {
        self.text(id).and_then(parse_flag)
    }

    /// The timestamp of `id`.
    pub fn at(&self, id: i64) -> Option<DateTime<Utc>> {
        self.get(id).and_then(|r| r.at)
    }

    /// The newest timestamp of any observation.
    pub fn newest(&self) -> Option<DateTime<Utc>> {
        self.readings.values().filter_map(|r| r.at).max()
    }

    /// The newest timestamp of any observation but `id`.
    pub fn newest_except(&self, id: i64) -> Option<DateTime<Utc>> {
        self.readings.iter().filter(|(k, _)| **k != id).filter_map(|(_, r)| r.at).max()
    }

    /// The operation mode (state 710); `None` when absent or not a number.
    pub fn operation_mode(&self) -> Option<OperationMode> {
        self.integer(state_id::CHARGER_OPERATION_MODE).map(OperationMode::from_code)
    }

    /// Whether Zaptec says the charger is online (state −2).
    pub fn is_online(&self) -> Option<bool> {
        self.flag(state_id::IS_ONLINE)
    }
}

/// What the hierarchy read of the charger's installation gave.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum InstallationView<'a> {
    /// The hierarchy.
    Hierarchy(&'a Hierarchy),
    /// Zaptec refused it (403: the user is not the installation's owner) or does not know it.
    NoAccess,
    /// The charger has no installation id.
    NoInstallation,
}

/// Who controls the charger's current limit (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MaxCurrentControl {
    /// The charger is the installation's only charger: its limit can be set.
    SoleCharger,
    /// The installation has this many chargers sharing its limit.
    Shared {
        /// The installation's chargers, this one included.
        chargers: usize,
    },
    /// The account cannot set the installation's limit (no access, no installation, or the
    /// charger is not in the installation's hierarchy).
    NoAccess,
}

impl MaxCurrentControl {
    /// The `setMaxCurrent` capability this control gives.
    pub fn capability(self) -> Capability {
        match self {
            MaxCurrentControl::SoleCharger => Capability::capable(),
            MaxCurrentControl::Shared { .. } => Capability {
                is_capable: false,
                intervention_ids: vec![SHARED_INSTALLATION_INTERVENTION_ID.to_owned()],
            },
            MaxCurrentControl::NoAccess => Capability {
                is_capable: false,
                intervention_ids: vec![INSTALLATION_ACCESS_INTERVENTION_ID.to_owned()],
            },
        }
    }
}

/// Whether a list or hierarchy entry is a charger (not a Zaptec Sense / Home APM meter, which
/// Zaptec lists alongside: device type 3, serials `APH`, `APG`, `APM`).
pub fn is_charger(item: &ChargerListItem) -> bool {
    let apm_serial =
        item.serial().is_some_and(|s| ["APH", "APG", "APM"].iter().any(|p| has_prefix(s, p)));
    item.device_type != Some(3) && !apm_serial
}

fn has_prefix(s: &str, prefix: &str) -> bool {
    s.get(..prefix.len()).is_some_and(|head| head.eq_ignore_ascii_case(prefix))
}

/// Who controls the current limit of charger `charger_id`, given its installation's view.
pub fn max_current_control(charger_id: &str, view: InstallationView<'_>) -> MaxCurrentControl {
    match view {
        InstallationView::Hierarchy(h) => {
            let chargers: Vec<&ChargerListItem> = h.chargers().filter(|c| is_charger(c)).collect();
            let mut ids: Vec<&str> = chargers.iter().map(|c| c.id.as_str()).collect();
            ids.sort_unstable();
            ids.dedup();
            let here = ids.iter().any(|id| id.eq_ignore_ascii_case(charger_id));
            match (here, ids.len()) {
                (false, _) => MaxCurrentControl::NoAccess,
                (true, 1) => MaxCurrentControl::SoleCharger,
                (true, n) => MaxCurrentControl::Shared { chargers: n },
            }
        }
        InstallationView::NoAccess | InstallationView::NoInstallation => {
            MaxCurrentControl::NoAccess
        }
    }
}

/// The model name for a serial number's prefix (Zaptec's "Identify device types").
pub fn model_name(serial: &str) -> &'static str {
    const MODELS: &[(&str, &[&str])] = &[
        ("Go", &["ZAP", "ZGB", "ZAG"]),
        ("Go 2", &["GPN", "GPG"]),
        ("Pro", &["ZCS", "ZPR", "ZCH", "ZPG"]),
        ("Sense", &["APH", "APG", "APM"]),
    ];
    MODELS
        .iter()
        .find(|(_, prefixes)| prefixes.iter().any(|p| has_prefix(serial.trim(), p)))
        .map_or("Zaptec charger", |(model, _)| model)
}

/// Maps one charger's state list (and its installation's view) to the normalized resource.
pub fn charger(
    device: &DeviceRef,
    states: &ChargerStates,
    view: InstallationView<'_>,
    observed_at: DateTime<Utc>,
) -> Charger {
    let not_after = |t: DateTime<Utc>| t.min(observed_at);
    let mode = states.operation_mode();
    let online = states.is_online();
    let is_reachable = online.unwrap_or(!states.is_empty());
    let is_charging = mode.and_then(OperationMode::is_charging);
    let charge_rate = if is_charging == Some(true) {
        states.number(state_id::TOTAL_CHARGE_POWER).map(|w| round_kw(w.max(0.0)))
    } else {
        None
    };
    let max_current = states.number(state_id::CHARGE_CURRENT_SET).filter(|a| *a >= 0.0);
    let charge_ids = [
        state_id::CHARGER_OPERATION_MODE,
        state_id::TOTAL_CHARGE_POWER,
        state_id::CHARGE_CURRENT_SET,
    ];
    let present = charge_ids.iter().any(|id| states.get(*id).is_some());
    let last_updated = present.then(|| {
        charge_ids.iter().filter_map(|id| states.at(*id)).max().map_or(observed_at, not_after)
    });
    let last_seen = if is_reachable {
        observed_at
    } else {
        states
            .at(state_id::PULSE)
            .or_else(|| states.newest_except(state_id::IS_ONLINE))
            .map_or(observed_at, not_after)
    };
    let control = max_current_control(&device.vendor_id, view);
    let entry = match view {
        InstallationView::Hierarchy(h) => {
            h.chargers().find(|c| c.id.eq_ignore_ascii_case(&device.vendor_id))
        }
        _ => None,
    };
    let serial = entry.and_then(ChargerListItem::serial).unwrap_or(&device.vendor_id).to_owned();
    Charger {
        id: device.id.clone(),
        user_id: device.user_id.clone(),
        vendor: ChargerVendor::Zaptec,
        last_seen,
        is_reachable,
        charge_state: ChargerChargeState {
            is_plugged_in: mode.and_then(OperationMode::is_plugged_in),
            is_charging,
            charge_rate,
            last_updated,
            max_current,
            power_delivery_state: mode
                .map_or(ChargerPowerDeliveryState::Unknown, OperationMode::power_delivery_state),
            plugged_in_vehicle_id: None,
        },
        capabilities: ChargerCapabilities {
            information: Capability::capable(),
            charge_state: Capability::capable(),
            start_charging: Capability::capable(),
            stop_charging: Capability::capable(),
            set_max_current: control.capability(),
        },
        scopes: CHARGER_SCOPES.iter().map(|s| (*s).to_owned()).collect(),
        information: ChargerInformation {
            brand: BRAND.to_owned(),
            model: model_name(&serial).to_owned(),
            year: None,
            serial_number: serial,
        },
        location: ChargerLocation { id: None, last_updated: None },
    }
}

/// W to kW, rounded to the watt.
pub fn round_kw(watts: f64) -> f64 {
    // `+ 0.0` turns a negative zero into zero.
    watts.round() / 1000.0 + 0.0
}

/// The chargers of a list, each once, as discovered devices: the GUID as vendor id, the
/// installation as site. Home APM meters are skipped.
pub fn discovered_devices(items: &[ChargerListItem]) -> Vec<DiscoveredDevice> {
    let mut seen = std::collections::BTreeSet::new();
    items
        .iter()
        .filter(|item| is_charger(item) && !item.id.trim().is_empty())
        .filter(|item| seen.insert(item.id.to_ascii_lowercase()))
        .map(|item| DiscoveredDevice {
            device_type: VendorType::Charger,
            vendor_id: item.id.clone(),
            site_id: item.installation_id.clone().filter(|s| !s.trim().is_empty()),
            display_name: item.name.clone().filter(|s| !s.trim().is_empty()),
        })
        .collect()
}

/// The body of `POST installation/{id}/update` that sets the available current of every
/// phase: `{"availableCurrent":16}` (whole amperes as an integer, as in Zaptec's examples).
pub fn installation_update_body(amps: f64) -> serde_json::Value {
    // Whole and small, so the cast is exact.
    #[allow(clippy::cast_possible_truncation)]
    let value = if amps.fract() == 0.0 && amps.abs() < 1.0e6 {
        serde_json::Value::from(amps as i64)
    } else {
        serde_json::Value::from(amps)
    };
    serde_json::json!({ "availableCurrent": value })
}

/// The interventions this adapter names, for an interventions endpoint.
pub fn interventions() -> Vec<Intervention> {
    let introduced_at = Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).single().unwrap_or_default();
    let make =
        |id: &str, domain: InterventionDomain, title: &str, description: &str| Intervention {
            id: id.to_owned(),
            vendor: Some(Vendor::Zaptec),
            vendor_type: Some(VendorType::Charger),
            brand: Some(BRAND.to_owned()),
            introduced_at,
            domain,
            resolution: InterventionResolution {
                title: title.to_owned(),
                description: description.to_owned(),
                access: ResolutionAccess::Remote,
                agent: ResolutionAgent::User,
                action: None,
            },
        };
    vec![
        make(
            SHARED_INSTALLATION_INTERVENTION_ID,
            InterventionDomain::Device,
            "The charger shares its installation's current limit",
            "Zaptec sets the available current per installation, and this installation has \
             several chargers that share it through load balancing. Changing it would change \
             the other chargers' limit too, so it cannot be set for this charger alone. The \
             installation's owner can set the available current in the Zaptec Portal, or have \
             the installer put this charger in an installation of its own.",
        ),
        make(
            INSTALLATION_ACCESS_INTERVENTION_ID,
            InterventionDomain::Account,
            "Owner access to the Zaptec installation is needed",
            "Zaptec sets the charging current per installation, and only the installation's \
             owner may change it. Ask the owner to grant this Zaptec user the *Owner* role on \
             the installation in the Zaptec Portal, then link the account again.",
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_in_zaptec_spellings() {
        let t = |s| parse_timestamp(s).map(|t| t.to_rfc3339());
        assert_eq!(t("2024-03-09T17:04:21.243").as_deref(), Some("2024-03-09T17:04:21.243+00:00"));
        assert_eq!(t("2024-03-09T17:04:21").as_deref(), Some("2024-03-09T17:04:21+00:00"));
        assert_eq!(
            t("2024-03-09T17:04:21.2430000").as_deref(),
            Some("2024-03-09T17:04:21.243+00:00")
        );
        assert_eq!(t("2024-03-09T18:04:21+01:00").as_deref(), Some("2024-03-09T17:04:21+00:00"));
        assert_eq!(t("2024-03-09T17:04:21.5Z").as_deref(), Some("2024-03-09T17:04:21.500+00:00"));
        assert_eq!(t("yesterday"), None);
        assert_eq!(t(""), None);
    }

    #[test]
    fn flags_and_numbers() {
        assert_eq!(parse_flag("1"), Some(true));
        assert_eq!(parse_flag("0.000"), Some(false));
        assert_eq!(parse_flag("True"), Some(true));
        assert_eq!(parse_flag("maybe"), None);
        assert_eq!(parse_number(" 25.000 "), Some(25.0));
        assert_eq!(parse_number("NaN"), None);
        assert_eq!(parse_number("inf"), None);
        assert_eq!(round_kw(7360.4), 7.36);
    }

    #[test]
    fn modes() {
        for (code, state) in [
            (1, ChargerPowerDeliveryState::Unplugged),
            (2, ChargerPowerDeliveryState::PluggedInStopped),
            (3, ChargerPowerDeliveryState::PluggedInCharging),
            (5, ChargerPowerDeliveryState::PluggedInStopped),
            (0, ChargerPowerDeliveryState::Unknown),
            (4, ChargerPowerDeliveryState::Unknown),
        ] {
            let mode = OperationMode::from_code(code);
            assert_eq!(mode.code(), code);
            assert_eq!(mode.power_delivery_state(), state, "{code}");
            assert_eq!(mode.is_plugged_in().is_some(), state != ChargerPowerDeliveryState::Unknown);
        }
    }

    #[test]
    fn models_from_serials() {
        assert_eq!(model_name("ZAP025320"), "Go");
        assert_eq!(model_name("zpr123456"), "Pro");
        assert_eq!(model_name("GPN000001"), "Go 2");
        assert_eq!(model_name("2c9b"), "Zaptec charger");
        assert_eq!(model_name(""), "Zaptec charger");
    }

    #[test]
    fn interventions_are_named_once() {
        let all = interventions();
        assert_eq!(all.len(), 2);
        assert_ne!(all[0].id, all[1].id);
        assert!(all.iter().all(|i| i.vendor == Some(Vendor::Zaptec)));
    }
}
