//! Pure rules over the normalized device state: is the target reached, are the preconditions
//! met, can the device do this at all, and is a request valid. No I/O, no clock.

use oemgate_core::{
    BatteryConfigOperationMode, ChargeActionKind, DeviceState, HvacHoldType, HvacMode,
    HvacPermanentHold, PowerDeliveryState, TemperatureRange, VendorType,
};

use crate::action::{ActionRequest, Target, setpoints};

/// Vendors set charging currents in whole amperes: a reported current within this much of
/// the target counts as equal.
pub const CURRENT_TOLERANCE_A: f64 = 0.5;

/// Vendors that work in °F (or in half degrees) round setpoints: a reported setpoint within
/// this much of the target counts as equal.
pub const SETPOINT_TOLERANCE_C: f64 = 0.3;

/// Whether a precondition of an action holds on an observed state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Precondition {
    /// Nothing stands in the way.
    Met,
    /// The state does not say (unknown power delivery, nothing reported).
    Unknown,
    /// This stands in the way (for humans, e.g. "the vehicle is unplugged").
    Unmet(String),
}

/// The power delivery state of a vehicle or charger.
fn power_delivery(state: &DeviceState) -> Option<PowerDeliveryState> {
    match state {
        DeviceState::Vehicle(v) => Some(v.charge_state.power_delivery_state),
        DeviceState::Charger(c) => Some(c.charge_state.power_delivery_state.into()),
        _ => None,
    }
}

/// The maximum current a vehicle or charger reports.
fn max_current(state: &DeviceState) -> Option<f64> {
    match state {
        DeviceState::Vehicle(v) => v.charge_state.max_current,
        DeviceState::Charger(c) => c.charge_state.max_current,
        _ => None,
    }
}

fn noun(state: &DeviceState) -> &'static str {
    state.device_type().as_str()
}

/// Whether the observed `state` is the target: `Some(true)` reached, `Some(false)` not yet,
/// `None` the state does not say (unknown power delivery, no value reported, wrong class).
pub fn reached(target: &Target, state: &DeviceState) -> Option<bool> {
    match target {
        Target::Charging(kind) => {
            let pds = power_delivery(state)?;
            if pds == PowerDeliveryState::Unknown {
                return None;
            }
            Some(match kind {
                ChargeActionKind::Start => pds == PowerDeliveryState::PluggedInCharging,
                ChargeActionKind::Stop => matches!(
                    pds,
                    PowerDeliveryState::PluggedInStopped | PowerDeliveryState::PluggedInComplete
                ),
            })
        }
        Target::MaxCurrent(amps) => {
            let current = max_current(state)?;
            Some((current - amps).abs() <= CURRENT_TOLERANCE_A)
        }
        Target::OperationMode(mode) => match state {
            DeviceState::Battery(b) => {
                let reported = b.config.operation_mode?;
                if reported == BatteryConfigOperationMode::Unknown {
                    return None;
                }
                Some(reported == BatteryConfigOperationMode::from(*mode))
            }
            _ => None,
        },
        Target::PermanentHold(target) => match state {
            DeviceState::Hvac(h) => {
                let t = &h.thermostat_state;
                if t.mode == HvacMode::Unknown {
                    return None;
                }
                let (heat, cool) = setpoints(target);
                let close = |want: Option<f64>, got: Option<f64>| match (want, got) {
                    (None, _) => true,
                    (Some(w), Some(g)) => (w - g).abs() <= SETPOINT_TOLERANCE_C,
                    (Some(_), None) => false,
                };
                // A vendor that cannot tell the hold type (null: Nest's SDM API has no holds)
                // confirms on mode and setpoints alone; a known hold type must be PERMANENT.
                Some(
                    t.mode == target.mode()
                        && t.hold_type.is_none_or(|hold| hold == HvacHoldType::Permanent)
                        && close(heat, t.heat_setpoint)
                        && close(cool, t.cool_setpoint),
                )
            }
            _ => None,
        },
        Target::FollowSchedule => match state {
            DeviceState::Hvac(h) => {
                h.thermostat_state.hold_type.map(|hold| hold == HvacHoldType::Scheduled)
            }
            _ => None,
        },
    }
}

/// Whether the device is reachable, as far as the state says.
pub fn reachable(state: &DeviceState) -> Option<bool> {
    match state {
        DeviceState::Vehicle(v) => v.is_reachable,
        DeviceState::Charger(c) => Some(c.is_reachable),
        DeviceState::Battery(b) => Some(b.is_reachable),
        DeviceState::Hvac(h) => Some(h.is_reachable),
        DeviceState::Meter(m) => Some(m.is_reachable),
        DeviceState::Inverter(i) => Some(i.is_reachable),
    }
}

/// The preconditions of a pending action on an observed state. Charging (START and STOP)
/// needs a cable, power at the charger and no fault, and START a battery below its limit.
/// Max current, operation mode and HVAC holds have none beyond the device being reachable,
/// which the executor waits for rather than giving up on.
pub fn precondition(target: &Target, state: &DeviceState) -> Precondition {
    let Target::Charging(kind) = target else { return Precondition::Met };
    let Some(pds) = power_delivery(state) else { return Precondition::Unknown };
    let full =
        matches!(state, DeviceState::Vehicle(v) if v.charge_state.is_fully_charged == Some(true));
    match pds {
        PowerDeliveryState::Unknown => Precondition::Unknown,
        PowerDeliveryState::Unplugged => {
            Precondition::Unmet(format!("the {} is unplugged", noun(state)))
        }
        PowerDeliveryState::PluggedInNoPower => {
            Precondition::Unmet("the charger delivers no power (PLUGGED_IN:NO_POWER)".into())
        }
        PowerDeliveryState::PluggedInFault => {
            Precondition::Unmet("charging is faulted (PLUGGED_IN:FAULT)".into())
        }
        PowerDeliveryState::PluggedInComplete if *kind == ChargeActionKind::Start => {
            Precondition::Unmet("the vehicle is fully charged".into())
        }
        _ if *kind == ChargeActionKind::Start
            && full
            && pds != PowerDeliveryState::PluggedInCharging =>
        {
            Precondition::Unmet("the vehicle is fully charged".into())
        }
        _ => Precondition::Met,
    }
}

/// Why a request is refused before an action is created (the API answers 400).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// A request field is invalid: `field` names it (JSON name, e.g. `maxCurrent`).
    #[error("{field}: {message}")]
    Invalid {
        /// The JSON field.
        field: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// The device cannot do this at all (a capability is false), or a precondition fails
    /// that is unlikely to change within the action's window (unplugged, fully charged,
    /// already in the desired state).
    #[error("{0}")]
    Precondition(String),
}

fn invalid(field: &'static str, message: impl Into<String>) -> Refusal {
    Refusal::Invalid { field, message: message.into() }
}

/// Checks a request on its own (ranges, finiteness), before the device is looked at.
pub fn validate(request: &ActionRequest, max_current_limit: f64) -> Result<(), Refusal> {
    match request {
        ActionRequest::MaxCurrent(amps)
            if !amps.is_finite() || *amps <= 0.0 || *amps > max_current_limit =>
        {
            return Err(invalid(
                "maxCurrent",
                format!("must be above 0 and at most {max_current_limit} A, got {amps}"),
            ));
        }
        ActionRequest::PermanentHold(hold) => {
            let (heat, cool) = match hold {
                HvacPermanentHold::Cool(h) => (None, Some(h.cool_setpoint)),
                HvacPermanentHold::Heat(h) => (Some(h.heat_setpoint), None),
                HvacPermanentHold::Auto(h) => (Some(h.heat_setpoint), Some(h.cool_setpoint)),
                HvacPermanentHold::Off(_) => (None, None),
            };
            for (field, value) in [("heatSetpoint", heat), ("coolSetpoint", cool)] {
                if let Some(v) = value
                    && !(-50.0..=100.0).contains(&v)
                {
                    return Err(invalid(field, format!("{v} °C is not a plausible setpoint")));
                }
            }
            if let (Some(h), Some(c)) = (heat, cool)
                && h > c
            {
                return Err(invalid(
                    "heatSetpoint",
                    format!("must not be above coolSetpoint ({h} > {c})"),
                ));
            }
        }
        _ => {}
    }
    Ok(())
}

fn within(range: Option<&TemperatureRange>, value: f64) -> bool {
    range.is_none_or(|r| {
        r.min.is_none_or(|min| value >= min) && r.max.is_none_or(|max| value <= max)
    })
}

fn range_text(range: Option<&TemperatureRange>) -> String {
    let bound = |b: Option<f64>| b.map_or_else(|| "?".to_string(), |v| v.to_string());
    range.map_or_else(String::new, |r| format!("{}..={} °C", bound(r.min), bound(r.max)))
}

/// Checks a request against the device's latest state at creation: its capabilities (a
/// capability that is false refuses the request), setpoints inside the capability ranges, and
/// the preconditions that are unlikely to change within the window (unplugged, no power,
/// fault, fully charged, already in the desired state).
pub fn check_creation(request: &ActionRequest, state: &DeviceState) -> Result<(), Refusal> {
    let target = request.target();
    let noun = noun(state);
    let incapable =
        |what: &str| Refusal::Precondition(format!("The {noun} is not capable of {what}."));
    match (request, state) {
        (ActionRequest::Charging(kind), DeviceState::Vehicle(_) | DeviceState::Charger(_)) => {
            let capable = match (state, kind) {
                (DeviceState::Vehicle(v), ChargeActionKind::Start) => {
                    v.capabilities.start_charging.is_capable
                }
                (DeviceState::Vehicle(v), ChargeActionKind::Stop) => {
                    v.capabilities.stop_charging.is_capable
                }
                (DeviceState::Charger(c), ChargeActionKind::Start) => {
                    c.capabilities.start_charging.is_capable
                }
                (DeviceState::Charger(c), ChargeActionKind::Stop) => {
                    c.capabilities.stop_charging.is_capable
                }
                _ => false,
            };
            if !capable {
                return Err(incapable(match kind {
                    ChargeActionKind::Start => "starting to charge",
                    ChargeActionKind::Stop => "stopping charging",
                }));
            }
        }
        (ActionRequest::MaxCurrent(_), DeviceState::Vehicle(v)) => {
            if !v.capabilities.set_max_current.is_capable {
                return Err(incapable("setting the maximum current"));
            }
        }
        (ActionRequest::MaxCurrent(_), DeviceState::Charger(c)) => {
            if !c.capabilities.set_max_current.is_capable {
                return Err(incapable("setting the maximum current"));
            }
        }
        (ActionRequest::OperationMode(mode), DeviceState::Battery(b)) => {
            if !b.capabilities.for_mode(*mode).is_some_and(|c| c.is_capable) {
                return Err(incapable(&format!("the {} operation mode", mode.as_str())));
            }
        }
        (ActionRequest::PermanentHold(hold), DeviceState::Hvac(h)) => {
            let caps = &h.capabilities;
            if !caps.set_permanent_hold.is_capable {
                return Err(incapable("permanent holds"));
            }
            let mode = hold.mode();
            if let Some(modes) = &caps.capable_modes
                && !modes.contains(&mode)
            {
                return Err(invalid(
                    "mode",
                    format!("the hvac cannot be set to {}", mode.as_str()),
                ));
            }
            let (heat, cool) = setpoints(&hold.target_state());
            if let Some(v) = heat
                && !within(caps.heat_setpoint_range.as_ref(), v)
            {
                return Err(invalid(
                    "heatSetpoint",
                    format!("{v} °C is outside {}", range_text(caps.heat_setpoint_range.as_ref())),
                ));
            }
            if let Some(v) = cool
                && !within(caps.cool_setpoint_range.as_ref(), v)
            {
                return Err(invalid(
                    "coolSetpoint",
                    format!("{v} °C is outside {}", range_text(caps.cool_setpoint_range.as_ref())),
                ));
            }
            if let (Some(h), Some(c), Some(range)) =
                (heat, cool, caps.setpoint_difference_range.as_ref())
            {
                let diff = c - h;
                if range.min.is_some_and(|min| diff < min)
                    || range.max.is_some_and(|max| diff > max)
                {
                    return Err(invalid(
                        "coolSetpoint",
                        format!(
                            "coolSetpoint - heatSetpoint = {diff} °C is outside {}..={} °C",
                            range.min.map_or_else(|| "?".into(), |v| v.to_string()),
                            range.max.map_or_else(|| "?".into(), |v| v.to_string())
                        ),
                    ));
                }
            }
        }
        (ActionRequest::FollowSchedule, DeviceState::Hvac(h)) => {
            if !h.capabilities.set_follow_schedule.is_capable {
                return Err(incapable("following its schedule"));
            }
        }
        _ => {
            return Err(Refusal::Precondition(format!(
                "A {noun} cannot take a {} action.",
                target.name()
            )));
        }
    }
    if let Precondition::Unmet(why) = precondition(&target, state) {
        return Err(Refusal::Precondition(format!("Precondition failed: {why}.")));
    }
    if reached(&target, state) == Some(true) {
        return Err(Refusal::Precondition(format!("The {noun} is already in the desired state.")));
    }
    Ok(())
}

/// Parses a snapshot's resource JSON as the state of a `device_type` device.
pub fn device_state(device_type: VendorType, resource: &serde_json::Value) -> Option<DeviceState> {
    let r = resource.clone();
    let parsed = match device_type {
        VendorType::Vehicle => serde_json::from_value(r).map(|v| DeviceState::Vehicle(Box::new(v))),
        VendorType::Charger => serde_json::from_value(r).map(|v| DeviceState::Charger(Box::new(v))),
        VendorType::Battery => serde_json::from_value(r).map(|v| DeviceState::Battery(Box::new(v))),
        VendorType::Hvac => serde_json::from_value(r).map(|v| DeviceState::Hvac(Box::new(v))),
        VendorType::Meter => serde_json::from_value(r).map(|v| DeviceState::Meter(Box::new(v))),
        VendorType::Inverter => {
            serde_json::from_value(r).map(|v| DeviceState::Inverter(Box::new(v)))
        }
    };
    parsed.ok()
}

/// Whether `target` is the same kind and target state as `other` (a repeated request).
pub fn same_target(target: &Target, other: &Target) -> bool {
    match (target, other) {
        (Target::MaxCurrent(a), Target::MaxCurrent(b)) => (a - b).abs() < 1e-9,
        (Target::PermanentHold(a), Target::PermanentHold(b)) => {
            let (ah, ac) = setpoints(a);
            let (bh, bc) = setpoints(b);
            let eq = |x: Option<f64>, y: Option<f64>| match (x, y) {
                (Some(x), Some(y)) => (x - y).abs() < 1e-9,
                (None, None) => true,
                _ => false,
            };
            a.mode() == b.mode() && eq(ah, bh) && eq(ac, bc)
        }
        _ => target == other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oemgate_core::{
        AutoPermanentHold, BatteryOperationMode, CoolPermanentHold, HeatPermanentHold,
        OffPermanentHold,
    };
    use proptest::prelude::*;
    use serde_json::{Value, json};

    fn fixture(device_type: VendorType, edit: impl FnOnce(&mut Value)) -> DeviceState {
        let text = match device_type {
            VendorType::Vehicle => include_str!("../tests/fixtures/vehicle.json"),
            VendorType::Charger => include_str!("../tests/fixtures/charger.json"),
            VendorType::Battery => include_str!("../tests/fixtures/battery.json"),
            _ => include_str!("../tests/fixtures/hvac.json"),
        };
        let mut value: Value = serde_json::from_str(text).unwrap();
        edit(&mut value);
        device_state(device_type, &value).expect("fixture parses")
    }

    fn vehicle(pds: &str) -> DeviceState {
        fixture(VendorType::Vehicle, |v| {
            v["chargeState"]["powerDeliveryState"] = pds.into();
            v["chargeState"]["isFullyCharged"] = (pds == "PLUGGED_IN:COMPLETE").into();
        })
    }

    const START: Target = Target::Charging(ChargeActionKind::Start);
    const STOP: Target = Target::Charging(ChargeActionKind::Stop);

    #[test]
    fn charging_targets_follow_the_power_delivery_state() {
        assert_eq!(reached(&START, &vehicle("PLUGGED_IN:CHARGING")), Some(true));
        assert_eq!(reached(&START, &vehicle("PLUGGED_IN:STOPPED")), Some(false));
        assert_eq!(reached(&START, &vehicle("UNKNOWN")), None);
        assert_eq!(reached(&STOP, &vehicle("PLUGGED_IN:STOPPED")), Some(true));
        assert_eq!(reached(&STOP, &vehicle("PLUGGED_IN:COMPLETE")), Some(true));
        assert_eq!(reached(&STOP, &vehicle("PLUGGED_IN:CHARGING")), Some(false));
        let charger = fixture(VendorType::Charger, |c| {
            c["chargeState"]["powerDeliveryState"] = "PLUGGED_IN:STOPPED".into();
        });
        assert_eq!(reached(&STOP, &charger), Some(true));
        assert_eq!(reached(&START, &charger), Some(false));
    }

    #[test]
    fn charging_preconditions() {
        for (pds, start, stop) in [
            ("UNPLUGGED", false, false),
            ("PLUGGED_IN:NO_POWER", false, false),
            ("PLUGGED_IN:FAULT", false, false),
            ("PLUGGED_IN:COMPLETE", false, true),
            ("PLUGGED_IN:STOPPED", true, true),
            ("PLUGGED_IN:CHARGING", true, true),
        ] {
            let state = vehicle(pds);
            assert_eq!(precondition(&START, &state) == Precondition::Met, start, "START {pds}");
            assert_eq!(precondition(&STOP, &state) == Precondition::Met, stop, "STOP {pds}");
        }
        assert_eq!(precondition(&START, &vehicle("UNKNOWN")), Precondition::Unknown);
        assert_eq!(
            precondition(&Target::MaxCurrent(10.0), &vehicle("UNPLUGGED")),
            Precondition::Met
        );
    }

    #[test]
    fn creation_refuses_what_cannot_work() {
        let start = ActionRequest::Charging(ChargeActionKind::Start);
        let stop = ActionRequest::Charging(ChargeActionKind::Stop);
        assert_eq!(check_creation(&start, &vehicle("PLUGGED_IN:STOPPED")), Ok(()));
        for (request, pds, needle) in [
            (&start, "UNPLUGGED", "unplugged"),
            (&start, "PLUGGED_IN:COMPLETE", "fully charged"),
            (&start, "PLUGGED_IN:CHARGING", "already in the desired state"),
            (&stop, "PLUGGED_IN:STOPPED", "already in the desired state"),
            (&start, "PLUGGED_IN:FAULT", "FAULT"),
        ] {
            let Err(Refusal::Precondition(detail)) = check_creation(request, &vehicle(pds)) else {
                panic!("{request:?} on {pds} should be refused");
            };
            assert!(detail.contains(needle), "{detail}");
        }
        // The vehicle fixture cannot set its max current (an intervention).
        let err = check_creation(&ActionRequest::MaxCurrent(10.0), &vehicle("PLUGGED_IN:STOPPED"));
        assert!(matches!(err, Err(Refusal::Precondition(d)) if d.contains("not capable")));
        // A battery mode its capabilities lack.
        let battery = fixture(VendorType::Battery, |_| {});
        let idle = ActionRequest::OperationMode(BatteryOperationMode::Idle);
        assert!(matches!(check_creation(&idle, &battery), Err(Refusal::Precondition(_))));
        let import = ActionRequest::OperationMode(BatteryOperationMode::ImportFocus);
        assert!(
            matches!(check_creation(&import, &battery), Err(Refusal::Precondition(d)) if d.contains("already"))
        );
        let tou = ActionRequest::OperationMode(BatteryOperationMode::TimeOfUse);
        assert_eq!(check_creation(&tou, &battery), Ok(()));
        // A charging request on a battery.
        assert!(check_creation(&start, &battery).is_err());
    }

    #[test]
    fn hvac_holds_check_modes_and_setpoint_ranges() {
        let hvac = fixture(VendorType::Hvac, |_| {});
        let heat = |t: f64| {
            ActionRequest::PermanentHold(HvacPermanentHold::Heat(HeatPermanentHold {
                heat_setpoint: t,
            }))
        };
        assert_eq!(check_creation(&heat(20.0), &hvac), Ok(()));
        assert!(matches!(
            check_creation(&heat(22.0), &hvac),
            Err(Refusal::Precondition(d)) if d.contains("already")
        ));
        assert!(matches!(
            check_creation(&heat(30.0), &hvac),
            Err(Refusal::Invalid { field: "heatSetpoint", .. })
        ));
        let cool = ActionRequest::PermanentHold(HvacPermanentHold::Cool(CoolPermanentHold {
            cool_setpoint: 10.0,
        }));
        assert!(matches!(
            check_creation(&cool, &hvac),
            Err(Refusal::Invalid { field: "coolSetpoint", .. })
        ));
        let auto = ActionRequest::PermanentHold(HvacPermanentHold::Auto(AutoPermanentHold {
            cool_setpoint: 24.0,
            heat_setpoint: 20.0,
        }));
        // AUTO is not among the fixture's capable modes.
        assert!(matches!(
            check_creation(&auto, &hvac),
            Err(Refusal::Invalid { field: "mode", .. })
        ));
        let off = ActionRequest::PermanentHold(HvacPermanentHold::Off(OffPermanentHold {}));
        assert_eq!(check_creation(&off, &hvac), Ok(()));
        assert_eq!(check_creation(&ActionRequest::FollowSchedule, &hvac), Ok(()));
        let scheduled =
            fixture(VendorType::Hvac, |h| h["thermostatState"]["holdType"] = "SCHEDULED".into());
        assert!(check_creation(&ActionRequest::FollowSchedule, &scheduled).is_err());
        let incapable = fixture(VendorType::Hvac, |h| {
            h["capabilities"]["setFollowSchedule"] =
                json!({"isCapable": false, "interventionIds": []});
        });
        assert!(matches!(
            check_creation(&ActionRequest::FollowSchedule, &incapable),
            Err(Refusal::Precondition(d)) if d.contains("not capable")
        ));
        // Reaching a hold: mode, hold type and setpoints within the tolerance.
        let target = heat(21.8).target();
        let at = |t: f64, hold: &str| {
            fixture(VendorType::Hvac, |h| {
                h["thermostatState"]["heatSetpoint"] = t.into();
                h["thermostatState"]["holdType"] = hold.into();
            })
        };
        assert_eq!(reached(&target, &at(22.0, "PERMANENT")), Some(true));
        assert_eq!(reached(&target, &at(22.0, "SCHEDULED")), Some(false));
        assert_eq!(reached(&target, &at(21.0, "PERMANENT")), Some(false));
    }

    #[test]
    fn validation_names_the_field() {
        for amps in [0.0, -1.0, 81.0, f64::NAN, f64::INFINITY] {
            let err = validate(&ActionRequest::MaxCurrent(amps), 80.0).unwrap_err();
            assert!(matches!(err, Refusal::Invalid { field: "maxCurrent", .. }), "{amps}");
        }
        assert_eq!(validate(&ActionRequest::MaxCurrent(6.0), 80.0), Ok(()));
        let auto = ActionRequest::PermanentHold(HvacPermanentHold::Auto(AutoPermanentHold {
            cool_setpoint: 18.0,
            heat_setpoint: 22.0,
        }));
        assert!(matches!(
            validate(&auto, 80.0),
            Err(Refusal::Invalid { field: "heatSetpoint", .. })
        ));
    }

    #[test]
    fn repeated_requests_are_recognised() {
        assert!(same_target(&Target::MaxCurrent(16.0), &Target::MaxCurrent(16.0)));
        assert!(!same_target(&Target::MaxCurrent(16.0), &Target::MaxCurrent(10.0)));
        assert!(same_target(&START, &START));
        assert!(!same_target(&START, &STOP));
        assert!(!same_target(&START, &Target::MaxCurrent(16.0)));
    }

    proptest! {
        /// A max-current target is reached exactly when the reported current is within the
        /// tolerance, whatever the numbers.
        #[test]
        fn max_current_matching_is_a_tolerance_band(target in 1.0f64..80.0, reported in 0.0f64..100.0) {
            let state = fixture(VendorType::Charger, |c| c["chargeState"]["maxCurrent"] = reported.into());
            let got = reached(&Target::MaxCurrent(target), &state);
            prop_assert_eq!(got, Some((reported - target).abs() <= CURRENT_TOLERANCE_A));
        }

        /// Creation never accepts a request whose target is already reached, and a START
        /// is never accepted on an unplugged device.
        #[test]
        fn creation_never_accepts_the_current_state(
            pds in prop::sample::select(vec![
                "UNKNOWN", "UNPLUGGED", "PLUGGED_IN:INITIALIZING", "PLUGGED_IN:CHARGING",
                "PLUGGED_IN:STOPPED", "PLUGGED_IN:COMPLETE", "PLUGGED_IN:NO_POWER", "PLUGGED_IN:FAULT",
            ]),
            start in any::<bool>(),
        ) {
            let kind = if start { ChargeActionKind::Start } else { ChargeActionKind::Stop };
            let request = ActionRequest::Charging(kind);
            let state = vehicle(pds);
            if check_creation(&request, &state).is_ok() {
                prop_assert_ne!(reached(&request.target(), &state), Some(true));
                prop_assert!(pds != "UNPLUGGED");
            }
        }
    }
}
