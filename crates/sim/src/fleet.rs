//! A synthetic fleet: households with a seeded, reproducible mix of devices, so the demo
//! and the loadtest can build realistic worlds in one call.
//!
//! Everything is drawn from a stream keyed by the world's seed and [`FleetSpec::salt`], so
//! the same world seed and spec give the same fleet. Vendors are drawn per device from
//! weighted lists.

use serde::{Deserialize, Serialize};

use crate::ids::{DeviceId, SiteId};
use crate::physics::battery::BatteryMode;
use crate::physics::hvac::HvacHold;
use crate::physics::vehicle::{DrivingPattern, PowerState};
use crate::rng::{SimRng, hash};
use crate::spec::{
    BatterySpec, ChargerSpec, HvacSpec, InverterSpec, MeterSpec, SiteSpec, VehicleSpec,
};
use crate::world::{World, WorldError};

/// A vendor with a relative weight.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VendorWeight {
    /// Vendor name (lower case, as the simulators are mounted).
    pub vendor: String,
    /// Relative weight.
    pub weight: f64,
}

fn vendors(list: &[(&str, f64)]) -> Vec<VendorWeight> {
    list.iter().map(|(v, w)| VendorWeight { vendor: (*v).to_owned(), weight: *w }).collect()
}

/// What the fleet looks like.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FleetSpec {
    /// Number of households (sites).
    pub households: usize,
    /// Share of households with at least one vehicle.
    pub vehicle_share: f64,
    /// Share of vehicle households with a second vehicle.
    pub second_vehicle_share: f64,
    /// Share with a home battery.
    pub battery_share: f64,
    /// Share with PV (an inverter).
    pub pv_share: f64,
    /// Share with a grid meter (households with PV or a battery always get one).
    pub meter_share: f64,
    /// Share of vehicle households with a charger.
    pub charger_share: f64,
    /// Share with an HVAC unit.
    pub hvac_share: f64,
    /// Centre of the area the homes are spread over.
    pub center: (f64, f64),
    /// Radius of that area, km.
    pub radius_km: f64,
    /// Time zone name of the homes.
    pub timezone: String,
    /// UTC offset of the homes, minutes.
    pub utc_offset_minutes: i32,
    /// Vehicle vendors.
    pub vehicle_vendors: Vec<VendorWeight>,
    /// Battery vendors.
    pub battery_vendors: Vec<VendorWeight>,
    /// Inverter vendors.
    pub inverter_vendors: Vec<VendorWeight>,
    /// Meter vendors.
    pub meter_vendors: Vec<VendorWeight>,
    /// Charger vendors.
    pub charger_vendors: Vec<VendorWeight>,
    /// HVAC vendors.
    pub hvac_vendors: Vec<VendorWeight>,
    /// Mixed into the seed, to build several different fleets in one world.
    pub salt: u64,
}

impl Default for FleetSpec {
    fn default() -> Self {
        Self {
            households: 10,
            vehicle_share: 0.8,
            second_vehicle_share: 0.2,
            battery_share: 0.3,
            pv_share: 0.5,
            meter_share: 0.3,
            charger_share: 0.6,
            hvac_share: 0.3,
            center: (59.9139, 10.7522),
            radius_km: 25.0,
            timezone: "Europe/Oslo".to_owned(),
            utc_offset_minutes: 60,
            vehicle_vendors: vendors(&[("tesla", 1.0)]),
            battery_vendors: vendors(&[("tesla", 0.5), ("enphase", 0.5)]),
            inverter_vendors: vendors(&[("enphase", 0.5), ("solaredge", 0.5)]),
            meter_vendors: vendors(&[("enphase", 0.5), ("solaredge", 0.5)]),
            charger_vendors: vendors(&[("easee", 0.5), ("zaptec", 0.5)]),
            hvac_vendors: vendors(&[("ecobee", 1.0)]),
            salt: 0,
        }
    }
}

/// One generated household.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Household {
    /// The site.
    pub site: SiteId,
    /// Its vehicles (0–2).
    pub vehicles: Vec<DeviceId>,
    /// Home battery.
    pub battery: Option<DeviceId>,
    /// PV inverter.
    pub inverter: Option<DeviceId>,
    /// Grid meter.
    pub meter: Option<DeviceId>,
    /// EV charger.
    pub charger: Option<DeviceId>,
    /// HVAC unit.
    pub hvac: Option<DeviceId>,
}

impl Household {
    /// All its devices.
    pub fn devices(&self) -> Vec<DeviceId> {
        let mut all = self.vehicles.clone();
        all.extend(
            [&self.battery, &self.inverter, &self.meter, &self.charger, &self.hvac]
                .into_iter()
                .flatten()
                .cloned(),
        );
        all
    }
}

fn pick(rng: &mut SimRng, list: &[VendorWeight], fallback: &str) -> String {
    let total: f64 = list.iter().map(|v| v.weight.max(0.0)).sum();
    if total <= 0.0 {
        return fallback.to_owned();
    }
    let mut x = rng.unit() * total;
    for v in list {
        x -= v.weight.max(0.0);
        if x < 0.0 {
            return v.vendor.clone();
        }
    }
    list.last().map_or_else(|| fallback.to_owned(), |v| v.vendor.clone())
}

const CARS: &[(&str, &str, f64, f64)] = &[
    // make, model, capacity kWh, max AC kW
    ("Tesla", "Model Y", 75.0, 11.0),
    ("Tesla", "Model 3", 57.5, 11.0),
    ("Tesla", "Model S", 95.0, 11.5),
    ("Tesla", "Model X", 95.0, 11.5),
];

fn vehicle_spec(rng: &mut SimRng, vendor: String, n: usize) -> VehicleSpec {
    let (make, model, capacity, max_ac) =
        CARS[(rng.unit() * CARS.len() as f64) as usize % CARS.len()];
    let commute = rng.chance(0.7).then(|| rng.range(3.0, 45.0));
    let level = rng.range(25.0, 90.0);
    let limit = [80.0, 80.0, 85.0, 90.0, 100.0][(rng.unit() * 5.0) as usize % 5];
    VehicleSpec {
        vendor,
        name: format!("Car {n}"),
        make: make.to_owned(),
        model: model.to_owned(),
        year: 2019 + (rng.unit() * 7.0) as u16,
        capacity_kwh: capacity,
        battery_level: level,
        charge_limit: limit,
        km_per_kwh: rng.range(5.0, 7.0),
        odometer_km: rng.range(2_000.0, 120_000.0),
        amps: 16,
        max_amps: if rng.chance(0.5) { 16 } else { 32 },
        voltage: 230.0,
        phases: if rng.chance(0.8) { 3 } else { 1 },
        max_ac_kw: max_ac,
        plugged_in: rng.chance(0.4),
        charging: false,
        charge_on_plug: rng.chance(0.9),
        power_state: if rng.chance(0.7) { PowerState::Asleep } else { PowerState::Online },
        pattern: DrivingPattern {
            commute_km: commute,
            errands_per_week: rng.range(1.0, 7.0),
            plug_in_share: rng.range(0.3, 0.9),
        },
    }
}

/// Builds `spec.households` households into `world` and returns them in order.
pub fn generate(world: &World, spec: &FleetSpec) -> Result<Vec<Household>, WorldError> {
    let mut rng = SimRng::new(hash(&[world.seed(), 0xF1EE7, spec.salt]));
    let mut households = Vec::with_capacity(spec.households);
    for n in 1..=spec.households {
        let bearing = rng.range(0.0, 360.0);
        // sqrt for a uniform spread over the disc.
        let dist = spec.radius_km.max(0.0) * rng.unit().sqrt();
        let (lat, lon) =
            crate::physics::vehicle::offset_position(spec.center.0, spec.center.1, bearing, dist);
        let site = world.add_site(SiteSpec {
            name: format!("Household {n}"),
            latitude: lat,
            longitude: lon,
            timezone: spec.timezone.clone(),
            utc_offset_minutes: spec.utc_offset_minutes,
            base_load_w: rng.range(200.0, 600.0),
        });
        let mut h = Household {
            site: site.clone(),
            vehicles: Vec::new(),
            battery: None,
            inverter: None,
            meter: None,
            charger: None,
            hvac: None,
        };
        let has_vehicle = rng.chance(spec.vehicle_share);
        let vehicles =
            if has_vehicle { 1 + usize::from(rng.chance(spec.second_vehicle_share)) } else { 0 };
        let has_pv = rng.chance(spec.pv_share);
        let has_battery = rng.chance(spec.battery_share);
        let has_meter = has_pv || has_battery || rng.chance(spec.meter_share);
        let has_charger = has_vehicle && rng.chance(spec.charger_share);
        let has_hvac = rng.chance(spec.hvac_share);
        // Add the charger before the cars so a car starting plugged in is on it.
        if has_charger {
            let vendor = pick(&mut rng, &spec.charger_vendors, "easee");
            let max = if rng.chance(0.5) { 16.0 } else { 32.0 };
            h.charger = Some(world.add_charger(
                &site,
                ChargerSpec {
                    vendor,
                    max_current_a: max,
                    hardware_max_a: 32.0,
                    ..ChargerSpec::default()
                },
            )?);
        }
        for k in 0..vehicles {
            let vendor = pick(&mut rng, &spec.vehicle_vendors, "tesla");
            let vs = vehicle_spec(&mut rng, vendor, n * 10 + k);
            h.vehicles.push(world.add_vehicle(&site, vs)?);
        }
        if has_pv {
            let vendor = pick(&mut rng, &spec.inverter_vendors, "enphase");
            let capacity_w = (rng.range(3.0, 12.0) * 2.0).round() / 2.0 * 1000.0;
            h.inverter = Some(world.add_inverter(
                &site,
                InverterSpec { vendor, capacity_w, ..InverterSpec::default() },
            )?);
        }
        if has_battery {
            let vendor = pick(&mut rng, &spec.battery_vendors, "tesla");
            let capacity = [5.0, 10.0, 13.5, 13.5, 20.0][(rng.unit() * 5.0) as usize % 5];
            let mode =
                if rng.chance(0.8) { BatteryMode::SelfReliance } else { BatteryMode::TimeOfUse };
            h.battery = Some(world.add_battery(
                &site,
                BatterySpec {
                    vendor,
                    capacity_kwh: capacity,
                    soc_pct: rng.range(20.0, 90.0),
                    reserve_pct: [10.0, 20.0, 30.0][(rng.unit() * 3.0) as usize % 3],
                    mode,
                    max_charge_w: capacity / 13.5 * 5000.0,
                    max_discharge_w: capacity / 13.5 * 5000.0,
                    ..BatterySpec::default()
                },
            )?);
        }
        if has_meter {
            let vendor = pick(&mut rng, &spec.meter_vendors, "enphase");
            h.meter = Some(world.add_meter(&site, MeterSpec { vendor, ..MeterSpec::default() })?);
        }
        if has_hvac {
            let vendor = pick(&mut rng, &spec.hvac_vendors, "ecobee");
            let hold = if rng.chance(0.7) { HvacHold::Schedule } else { HvacHold::Permanent };
            h.hvac = Some(world.add_hvac(
                &site,
                HvacSpec { vendor, hold, indoor_c: rng.range(17.0, 22.0), ..HvacSpec::default() },
            )?);
        }
        households.push(h);
    }
    Ok(households)
}
