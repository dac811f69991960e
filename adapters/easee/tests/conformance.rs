//! The adapter conformance suite (oemgate-testkit) against the simulated Easee cloud.
//!
//! The world, on a winter evening at 60° N: Alice's Easee account holds two sites. At home, a
//! charger delivers about 11 kW to her car, a second Easee charger is free, and a Zaptec
//! charger (another vendor) hangs next to them; at the cabin a car is plugged into an Easee
//! charger but not charging. Bob's account holds a third site with a charger that Alice's
//! discovery must not return. The simulator is served by a `SimHost` under `/easee` on
//! 127.0.0.1, and the account is linked with the simulator's own login. Time only moves
//! through the `ManualClock`.

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use oemgate_core::{
    AccountRef, Command, DeviceRef, ManualClock, QuotaScope, VendorLimits, VendorType,
};
use oemgate_easee::sim::{EaseeSim, PREFIX, WORLD_VENDOR};
use oemgate_easee::{EaseeAdapter, EaseeConfig};
use oemgate_sim::{
    ChargerSpec, ChargerStatus, DeviceId, DrivingPattern, LatencyProfile, SimHost, SiteId,
    SiteSpec, VehicleSpec, World, WorldConfig,
};
use oemgate_testkit::{
    AuthBehaviour, CommandCase, ConformanceTarget, Expectation, ExpectedDevice, Fault, Harness,
    ServerGuard, SimRequests, StartOptions, VendorControl,
};

const USER: &str = "user-alice";
/// Every Easee command lands exactly this long after it is accepted.
const LATENCY: Duration = Duration::from_secs(5);

/// 20:00 local time in January (UTC+1): everyone is home.
fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 15, 19, 0, 0).unwrap()
}

fn charger_spec(name: &str, max_current_a: f64) -> ChargerSpec {
    ChargerSpec {
        vendor: WORLD_VENDOR.into(),
        name: name.into(),
        max_current_a,
        hardware_max_a: 32.0,
        phases: 3,
        voltage: 230.0,
        lifetime_kwh: 2_345.6,
    }
}

/// A car that stays home (no commute, no errands).
fn car(name: &str, charging: bool) -> VehicleSpec {
    VehicleSpec {
        vendor: "tesla".into(),
        name: name.into(),
        battery_level: 35.0,
        charge_limit: 90.0,
        max_amps: 32,
        amps: 32,
        max_ac_kw: 11.0,
        plugged_in: true,
        charging,
        charge_on_plug: charging,
        pattern: DrivingPattern { commute_km: None, errands_per_week: 0.0, plug_in_share: 1.0 },
        ..VehicleSpec::default()
    }
}

fn device(serial: &str, site: i64) -> DeviceRef {
    DeviceRef {
        id: format!("dev-{serial}"),
        user_id: USER.into(),
        device_type: VendorType::Charger,
        vendor_id: serial.into(),
        site_id: Some(site.to_string()),
    }
}

/// The power delivery state the world's charger must be reported in.
fn delivery(status: ChargerStatus) -> &'static str {
    match status {
        ChargerStatus::Available => "UNPLUGGED",
        ChargerStatus::Charging => "PLUGGED_IN:CHARGING",
        ChargerStatus::Plugged | ChargerStatus::Complete => "PLUGGED_IN:STOPPED",
    }
}

struct Control {
    world: World,
    sim: EaseeSim,
}

#[async_trait]
impl VendorControl for Control {
    async fn expire_access_token(&self, _account: &mut AccountRef) {
        // In the simulator, so the adapter meets Easee's 401.
        self.sim.expire_access_tokens();
    }

    async fn revoke_credentials(&self, _account: &AccountRef) {
        self.world.faults().set(WORLD_VENDOR, Fault::RevokeTokens, None);
    }

    fn inject_fault(&self, fault: Fault) {
        self.world.faults().set(WORLD_VENDOR, fault, None);
    }

    fn clear_faults(&self) {
        self.world.faults().clear(WORLD_VENDOR);
    }
}

/// The world of the module docs, its simulator and the ids that matter.
struct Setup {
    world: World,
    sim: EaseeSim,
    home: SiteId,
    cabin: SiteId,
    bobs: SiteId,
    /// Alice's chargers: (world id, site), charging at home, free at home, plugged at the cabin.
    chargers: [(DeviceId, SiteId); 3],
    bobs_charger: DeviceId,
}

fn setup(seed: u64, clock: Arc<ManualClock>) -> anyhow::Result<Setup> {
    let config = WorldConfig {
        latency: HashMap::from([(
            WORLD_VENDOR.to_owned(),
            LatencyProfile::fixed(LATENCY.as_secs_f64()),
        )]),
        ..WorldConfig::default()
    };
    let world = World::new(seed, clock, config);

    let home = world.add_site(SiteSpec { name: "Home".into(), ..SiteSpec::default() });
    // Chargers first: a car plugged in at home takes the first free charger.
    let busy = world.add_charger(&home, charger_spec("Garage", 16.0))?;
    let free = world.add_charger(&home, charger_spec("Driveway", 20.0))?;
    world.add_charger(
        &home,
        ChargerSpec { vendor: "zaptec".into(), ..charger_spec("Guest", 16.0) },
    )?;
    world.add_vehicle(&home, car("Alice's car", true))?;

    let cabin = world.add_site(SiteSpec { name: "Cabin".into(), ..SiteSpec::default() });
    let plugged = world.add_charger(&cabin, charger_spec("Cabin", 32.0))?;
    world.add_vehicle(&cabin, car("Alice's second car", false))?;

    let bobs = world.add_site(SiteSpec { name: "Bob's".into(), ..SiteSpec::default() });
    let bobs_charger = world.add_charger(&bobs, charger_spec("Bob's", 16.0))?;

    let sim = EaseeSim::new(world.clone());
    Ok(Setup {
        chargers: [(busy, home.clone()), (free, home.clone()), (plugged, cabin.clone())],
        world,
        sim,
        home,
        cabin,
        bobs,
        bobs_charger,
    })
}

struct Target;

#[async_trait]
impl ConformanceTarget for Target {
    type World = World;

    async fn start(&self, options: StartOptions) -> anyhow::Result<Harness<World>> {
        let clock = Arc::new(ManualClock::new(t0()));
        let Setup { world, sim, home, cabin, bobs, chargers, .. } =
            setup(options.seed, clock.clone())?;

        let mut host = SimHost::new(clock.clone());
        host.mount(PREFIX, sim.router())?;
        let requests = SimRequests::new(host.request_log(), PREFIX);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}{PREFIX}", listener.local_addr()?);
        let server = tokio::spawn(host.serve(listener));

        let config = EaseeConfig {
            request_timeout: options.request_timeout,
            ..EaseeConfig::new().for_base_url(&base)
        };
        let adapter = Arc::new(EaseeAdapter::new(config, clock.clone()));

        let login = sim.create_account(&[home, cabin]);
        sim.create_account(&[bobs]);
        let credentials = adapter.login(&login.user_name, &login.password).await?;
        let account = AccountRef {
            user_id: USER.into(),
            vendor: "EASEE".into(),
            account_id: login.user_name.clone(),
            credentials,
        };

        let refs: Vec<(DeviceRef, DeviceId)> = chargers
            .iter()
            .map(|(id, site)| {
                let serial = sim.serial_of(id).unwrap();
                (device(&serial, sim.site_id(site)), id.clone())
            })
            .collect();
        let devices =
            refs.iter().map(|(d, id)| ExpectedDevice::new(d.clone(), id.as_str())).collect();
        let (busy, busy_id) = refs[0].clone();
        let (plugged, plugged_id) = refs[2].clone();
        let settle = LATENCY * 3;
        let commands = vec![
            {
                let id = plugged_id.clone();
                CommandCase::new(
                    plugged,
                    Command::StartCharging,
                    "the cabin charger starts charging the plugged car",
                    settle,
                    move |w: &World| w.charger(&id).is_some_and(|c| c.charging),
                )
            },
            {
                let id = busy_id.clone();
                CommandCase::new(
                    busy.clone(),
                    Command::StopCharging,
                    "the garage charger stops charging",
                    settle,
                    move |w: &World| w.charger(&id).is_some_and(|c| c.plugged_in && !c.charging),
                )
            },
            {
                let id = busy_id.clone();
                CommandCase::new(
                    busy,
                    Command::SetMaxCurrent { amps: 10.0 },
                    "the garage charger's limit drops to 10 A",
                    settle,
                    move |w: &World| {
                        w.charger(&id).is_some_and(|c| (c.max_current_a - 10.0).abs() < 1e-9)
                    },
                )
            },
        ];

        Ok(Harness {
            adapter,
            account,
            clock,
            world: world.clone(),
            requests: Arc::new(requests),
            devices,
            commands,
            unsupported: Vec::new(),
            sleeping: Vec::new(),
            control: Box::new(Control { world, sim }),
            truth: Box::new(truth),
            keep_alive: vec![Box::new(ServerGuard::new(server))],
        })
    }

    /// Easee publishes no limits (vendor reference §6a: "no published numbers"). The numbers
    /// here are the community client pyeasee's, the only ones known to work: 500 requests per
    /// 300 s per login (100 per minute, all of which may come at once within a minute), per
    /// account. No daily quota, no concurrency limit published (pyeasee uses a handful of
    /// parallel requests; 4 here), no per-request price.
    fn published_limits(&self) -> VendorLimits {
        VendorLimits {
            requests_per_minute: 100,
            burst: 100,
            rate_scope: QuotaScope::Account,
            daily_quota: None,
            max_concurrent: 4,
            pricing: None,
        }
    }

    /// Login tokens with a refresh token that the simulator spends on use (Easee returns a new
    /// one with every refresh). An expired and a revoked access token are both a bare 401, so a
    /// call with a revoked token may be `AuthExpired`; the refresh that follows is refused.
    fn auth(&self) -> AuthBehaviour {
        AuthBehaviour {
            refreshes: true,
            single_use_refresh_tokens: true,
            revoked_token_reads_as_expired: true,
        }
    }
}

/// The world's truth per charger, in the normalized units.
fn truth(w: &World, e: &ExpectedDevice) -> Vec<Expectation> {
    let id = DeviceId::new(e.world_id.clone());
    let c = w.charger(&id).unwrap();
    let rate = c.charging.then_some(c.power_w / 1000.0);
    vec![
        Expectation::bool("/isReachable", c.online),
        Expectation::bool("/chargeState/isPluggedIn", c.plugged_in),
        Expectation::bool("/chargeState/isCharging", c.charging),
        Expectation::maybe_number("/chargeState/chargeRate", rate, oemgate_testkit::Tolerance::KW),
        Expectation::amps("/chargeState/maxCurrent", c.max_current_a),
        Expectation::string("/chargeState/powerDeliveryState", delivery(c.status)),
        Expectation::string("/information/brand", "Easee"),
        Expectation::string("/information/serialNumber", e.device.vendor_id.clone()),
        Expectation::bool("/capabilities/setMaxCurrent/isCapable", true),
    ]
}

oemgate_testkit::conformance_tests!(Target);

/// The world above has a charging, a free and a plugged-but-stopped charger, and another
/// vendor's charger at Alice's home.
#[test]
fn the_world_has_every_state() {
    oemgate_testkit::block_on(async {
        let clock = Arc::new(ManualClock::new(t0()));
        let s = setup(StartOptions::from_env().seed, clock).unwrap();
        let status: Vec<(ChargerStatus, f64)> = s
            .chargers
            .iter()
            .map(|(id, _)| s.world.charger(id).map(|c| (c.status, c.power_w)).unwrap())
            .collect();
        assert_eq!(status[0].0, ChargerStatus::Charging);
        assert!(status[0].1 > 10_000.0, "{status:?}");
        assert_eq!(status[1].0, ChargerStatus::Available);
        assert_eq!(status[2].0, ChargerStatus::Plugged);
        assert!(s.sim.serial_of(&s.bobs_charger).is_some());
        let foreign: Vec<_> = s
            .world
            .devices_of_site(&s.home)
            .into_iter()
            .filter(|d| d.vendor != WORLD_VENDOR)
            .collect();
        assert!(foreign.iter().any(|d| d.vendor == "zaptec"));
        assert!(foreign.iter().all(|d| s.sim.serial_of(&d.id).is_none()));
        assert_ne!(s.sim.site_id(&s.home), s.sim.site_id(&s.cabin));
        assert_ne!(s.sim.site_id(&s.home), s.sim.site_id(&s.bobs));
    });
}
