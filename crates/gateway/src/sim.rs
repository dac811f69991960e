//! Hosting the vendor simulators: one simulated world, one HTTP listener, one path prefix
//! per vendor cloud.
//!
//! | vendor             | prefix       | adapter base URL(s)                                      |
//! |--------------------|--------------|----------------------------------------------------------|
//! | Tesla Fleet API    | `/tesla`     | api and auth: `http://<listen>/tesla`                    |
//! | Enphase v4         | `/enphase`   | api: `http://<listen>/enphase/api/v4`, auth: `/enphase`  |
//! | Huawei FusionSolar | `/huawei`    | `http://<listen>/huawei`                                 |
//! | SolarEdge          | `/solaredge` | `http://<listen>/solaredge`                              |
//! | SMA                | `/sma`       | api and auth: `http://<listen>/sma`                      |
//! | Easee              | `/easee`     | `http://<listen>/easee`                                  |
//! | Zaptec             | `/zaptec`    | api and auth: `http://<listen>/zaptec`                   |
//! | Wallbox            | `/wallbox`   | api and sign-in: `http://<listen>/wallbox`               |
//! | ecobee             | `/ecobee`    | api: `/ecobee/1`, auth: `http://<listen>/ecobee`         |
//! | tado               | `/tado`      | api: `/tado/api/v2`, auth: `http://<listen>/tado`        |
//! | Google Nest SDM    | `/nest`      | api: `/nest/v1`, token: `/nest/oauth2/v4/token`          |
//!
//! All simulators render the same [`World`]; faults from `[sim.faults]` are applied to it
//! at start-up, relative to the world's start.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use oemgate_core::Clock;
use oemgate_sim::fleet::{FleetSpec, VendorWeight};
use oemgate_sim::{DeviceId, SiteId, World, WorldConfig};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::config::Config;
use crate::shutdown::Shutdown;

/// How a user links one simulated account: what they would type or receive.
#[derive(Clone, PartialEq, Eq)]
pub enum LinkStep {
    /// OAuth authorization code (Tesla, Enphase, SMA) and the redirect URI it is bound to.
    AuthorizationCode {
        /// The single-use code.
        code: String,
        /// The redirect URI.
        redirect_uri: String,
    },
    /// A user name and password (FusionSolar's Northbound user).
    Login {
        /// User name.
        user_name: String,
        /// Password.
        password: String,
    },
    /// An API key (SolarEdge).
    ApiKey(String),
    /// An ecobee PIN the user entered in their ecobee portal; `code` is the authorization
    /// code that goes with it.
    Pin {
        /// The authorization code of the PIN.
        code: String,
    },
    /// A device code the user approved on the vendor's page (tado's device-code flow).
    DeviceCode {
        /// The device code to exchange.
        device_code: String,
    },
}

impl fmt::Debug for LinkStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LinkStep::AuthorizationCode { redirect_uri, .. } => {
                write!(f, "AuthorizationCode(<redacted>, {redirect_uri})")
            }
            LinkStep::Login { user_name, .. } => write!(f, "Login({user_name}, <redacted>)"),
            LinkStep::ApiKey(_) => f.write_str("ApiKey(<redacted>)"),
            LinkStep::DeviceCode { .. } => f.write_str("DeviceCode(<redacted>)"),
            LinkStep::Pin { .. } => f.write_str("Pin(<redacted>)"),
        }
    }
}

/// A simulated vendor account, ready to be linked.
#[derive(Clone, Debug)]
pub struct SimAccount {
    /// The vendor as the API spells it ("TESLA").
    pub vendor: &'static str,
    /// The household (world site) it belongs to.
    pub site: SiteId,
    /// The world devices it covers.
    pub devices: Vec<DeviceId>,
    /// What linking it takes.
    pub link: LinkStep,
    /// For OAuth vendors with a simulated sign-in page (Tesla, Enphase, SMA, Nest): the e-mail the
    /// owner signs in with there (`login_hint`); for ecobee the portal user who enters the
    /// PIN. For linking through the link page.
    pub login: Option<String>,
}

/// Every vendor simulator on one world.
#[derive(Clone)]
pub struct SimHost {
    /// The simulated world.
    pub world: World,
    /// Tesla's cloud.
    pub tesla: oemgate_tesla::sim::TeslaSim,
    /// Enphase's cloud.
    pub enphase: oemgate_enphase::sim::EnphaseSim,
    /// FusionSolar.
    pub huawei: oemgate_huawei::sim::HuaweiSim,
    /// SolarEdge's cloud.
    pub solaredge: oemgate_solaredge::sim::SolarEdgeSim,
    /// SMA's cloud.
    pub sma: oemgate_sma::sim::SmaSim,
    /// Easee's cloud.
    pub easee: oemgate_easee::sim::EaseeSim,
    /// Zaptec's cloud.
    pub zaptec: oemgate_zaptec::sim::ZaptecSim,
    /// Wallbox's cloud.
    pub wallbox: oemgate_wallbox::sim::WallboxSim,
    /// ecobee's cloud.
    pub ecobee: oemgate_ecobee::sim::EcobeeSim,
    /// tado's cloud.
    pub tado: oemgate_tado::sim::TadoSim,
    /// Google's SDM API.
    pub nest: oemgate_nest::sim::NestSim,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for SimHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimHost").finish_non_exhaustive()
    }
}

impl SimHost {
    /// A world seeded with `seed` on `clock`, with every vendor simulator configured to accept
    /// the applications configured in `config.vendors`.
    pub fn new(config: &Config, seed: u64, clock: Arc<dyn Clock>) -> anyhow::Result<Self> {
        let world_config =
            WorldConfig { faults: config.sim.faults.clone(), ..WorldConfig::default() };
        // The world schedules the configured faults relative to its start.
        let world = World::new(seed, Arc::clone(&clock), world_config);
        let enphase_app = oemgate_enphase::sim::EnphaseApp {
            api_key: config.vendors.enphase.api_key.clone(),
            client_id: config.vendors.enphase.client_id.clone(),
            client_secret: config.vendors.enphase.client_secret.clone(),
            plan: config.vendors.enphase.plan.into(),
        };
        let enphase = oemgate_enphase::sim::EnphaseSim::with_config(
            world.clone(),
            oemgate_enphase::sim::EnphaseSimConfig {
                app: enphase_app,
                ..oemgate_enphase::sim::EnphaseSimConfig::default()
            },
        );
        let sma = oemgate_sma::sim::SmaSim::with_config(
            world.clone(),
            oemgate_sma::sim::SmaSimConfig {
                client_id: config.vendors.sma.client_id.clone(),
                client_secret: config.vendors.sma.client_secret.clone(),
                ..oemgate_sma::sim::SmaSimConfig::default()
            },
        );
        Ok(Self {
            tesla: oemgate_tesla::sim::TeslaSim::new(world.clone()),
            enphase,
            huawei: oemgate_huawei::sim::HuaweiSim::new(world.clone()),
            solaredge: oemgate_solaredge::sim::SolarEdgeSim::new(world.clone()),
            sma,
            easee: oemgate_easee::sim::EaseeSim::new(world.clone()),
            zaptec: oemgate_zaptec::sim::ZaptecSim::new(world.clone()),
            wallbox: oemgate_wallbox::sim::WallboxSim::new(world.clone()),
            ecobee: oemgate_ecobee::sim::EcobeeSim::with_config(
                world.clone(),
                oemgate_ecobee::sim::EcobeeSimConfig {
                    api_keys: vec![config.vendors.ecobee.api_key.clone()],
                    ..oemgate_ecobee::sim::EcobeeSimConfig::default()
                },
            ),
            tado: oemgate_tado::sim::TadoSim::new(world.clone()),
            nest: oemgate_nest::sim::NestSim::with_config(
                world.clone(),
                oemgate_nest::sim::NestSimConfig {
                    project_id: config.vendors.nest.project_id.clone(),
                    client_id: config.vendors.nest.client_id.clone(),
                    client_secret: config.vendors.nest.client_secret.clone(),
                    ..oemgate_nest::sim::NestSimConfig::default()
                },
            ),
            world,
            clock,
        })
    }

    /// All simulators under their prefixes, with request counting per prefix.
    pub fn host(&self) -> anyhow::Result<oemgate_sim::SimHost> {
        let mut host = oemgate_sim::SimHost::new(Arc::clone(&self.clock));
        host.mount("/tesla", self.tesla.router())
            .and_then(|h| h.mount("/enphase", self.enphase.router()))
            .and_then(|h| h.mount("/huawei", self.huawei.router()))
            .and_then(|h| h.mount("/solaredge", self.solaredge.router()))
            .and_then(|h| h.mount("/sma", self.sma.router()))
            .and_then(|h| h.mount("/easee", self.easee.router()))
            .and_then(|h| h.mount("/zaptec", self.zaptec.router()))
            .and_then(|h| h.mount("/wallbox", self.wallbox.router()))
            .and_then(|h| h.mount("/ecobee", self.ecobee.router()))
            .and_then(|h| h.mount("/tado", self.tado.router()))
            .and_then(|h| h.mount("/nest", self.nest.router()))
            .map_err(|e| anyhow::anyhow!("mounting simulators: {e}"))?;
        Ok(host)
    }

    /// The router of all simulators (without request counting).
    pub fn router(&self) -> anyhow::Result<Router> {
        Ok(self.host()?.router())
    }

    /// Adds `households` synthetic homes drawn from `seed` (vehicles and Powerwalls from
    /// Tesla; PV, batteries and meters from Enphase, FusionSolar, SolarEdge and SMA; chargers
    /// and thermostats from the charger and HVAC vendors) and creates one vendor account per
    /// household and vendor. tado accounts come back as their login: linking them takes the
    /// device-code flow ([`SimHost::approve_device_code`]).
    pub fn populate(&self, households: usize, seed: u64) -> anyhow::Result<Vec<SimAccount>> {
        let weights = |list: &[(&str, f64)]| {
            list.iter()
                .map(|(vendor, weight)| VendorWeight {
                    vendor: (*vendor).to_string(),
                    weight: *weight,
                })
                .collect()
        };
        let spec = FleetSpec {
            households,
            battery_share: 0.5,
            pv_share: 0.8,
            meter_share: 0.6,
            charger_share: 0.6,
            hvac_share: 0.5,
            charger_vendors: weights(&CHARGER_VENDORS),
            hvac_vendors: weights(&HVAC_VENDORS),
            battery_vendors: weights(&[
                ("tesla", 0.3),
                ("enphase", 0.3),
                ("huawei", 0.2),
                ("solaredge", 0.1),
                ("sma", 0.1),
            ]),
            inverter_vendors: weights(&[
                ("enphase", 0.25),
                ("huawei", 0.25),
                ("solaredge", 0.25),
                ("sma", 0.25),
            ]),
            meter_vendors: weights(&[
                ("enphase", 0.25),
                ("huawei", 0.25),
                ("solaredge", 0.25),
                ("sma", 0.25),
            ]),
            salt: seed,
            ..FleetSpec::default()
        };
        let homes = oemgate_sim::fleet::generate(&self.world, &spec)
            .context("generating the synthetic fleet")?;
        let mut accounts = Vec::new();
        for home in homes {
            let site = home.site.clone();
            for vendor in VENDORS {
                let devices: Vec<DeviceId> = home
                    .devices()
                    .into_iter()
                    .filter(|id| {
                        self.world.device_info(id).is_some_and(|info| info.vendor == vendor)
                    })
                    .collect();
                if devices.is_empty() {
                    continue;
                }
                let sites = std::slice::from_ref(&site);
                let mut login = None;
                let (api_vendor, link) = match vendor {
                    "tesla" => {
                        let (account, code) = self
                            .tesla
                            .link(&devices)
                            .map_err(|e| anyhow::anyhow!("linking Tesla devices: {e}"))?;
                        login = self.tesla.login(&account);
                        (
                            "TESLA",
                            LinkStep::AuthorizationCode {
                                code,
                                redirect_uri: SIM_REDIRECT_URI.to_string(),
                            },
                        )
                    }
                    "enphase" => {
                        let link = self.enphase.create_account(sites);
                        login = Some(link.email.clone());
                        (
                            "ENPHASE",
                            LinkStep::AuthorizationCode {
                                code: link.code,
                                redirect_uri: link.redirect_uri,
                            },
                        )
                    }
                    "huawei" => {
                        let login = self.huawei.create_account(sites);
                        (
                            "HUAWEI",
                            LinkStep::Login {
                                user_name: login.user_name,
                                password: login.system_code,
                            },
                        )
                    }
                    "solaredge" => (
                        "SOLAREDGE",
                        LinkStep::ApiKey(self.solaredge.create_account(sites).api_key),
                    ),
                    "sma" => {
                        let link = self.sma.create_account(sites);
                        login = Some(link.login.clone());
                        let code = link.authorization_code;
                        (
                            "SMA",
                            LinkStep::AuthorizationCode { code, redirect_uri: link.redirect_uri },
                        )
                    }
                    "easee" => {
                        let login = self.easee.create_account(sites);
                        (
                            "EASEE",
                            LinkStep::Login {
                                user_name: login.user_name,
                                password: login.password,
                            },
                        )
                    }
                    "zaptec" => {
                        let login = self.zaptec.create_account(sites);
                        (
                            "ZAPTEC",
                            LinkStep::Login { user_name: login.username, password: login.password },
                        )
                    }
                    "wallbox" => {
                        let login = self.wallbox.create_account(sites);
                        (
                            "WALLBOX",
                            LinkStep::Login { user_name: login.email, password: login.password },
                        )
                    }
                    "ecobee" => {
                        let link = self.ecobee.create_account(sites);
                        login = Some(link.username.clone());
                        ("ECOBEE", LinkStep::Pin { code: link.code })
                    }
                    "nest" => {
                        let link = self.nest.create_account(sites);
                        login = Some(link.user.clone());
                        (
                            "NEST",
                            LinkStep::AuthorizationCode {
                                code: link.code,
                                redirect_uri: link.redirect_uri,
                            },
                        )
                    }
                    "tado" => {
                        // tado links by device code, which the gateway has to start; the
                        // household's login is what the user types on tado's page to approve it.
                        let link = self.tado.create_account(sites);
                        (
                            "TADO",
                            LinkStep::Login { user_name: link.username, password: link.password },
                        )
                    }
                    other => anyhow::bail!("no simulator for vendor {other}"),
                };
                accounts.push(SimAccount {
                    vendor: api_vendor,
                    site: site.clone(),
                    devices,
                    link,
                    login,
                });
            }
        }
        Ok(accounts)
    }

    /// Plays the user's part of tado's device-code flow: approves `user_code` with the
    /// household's login on the simulated tado page.
    pub fn approve_device_code(&self, user_code: &str, user_name: &str, password: &str) -> bool {
        self.tado.approve_device(user_code, user_name, password)
    }

    /// Serves the simulators on `addr` until `shutdown`; returns the bound address.
    pub async fn serve(
        &self,
        addr: SocketAddr,
        shutdown: Shutdown,
    ) -> anyhow::Result<(SocketAddr, JoinHandle<()>)> {
        let (local, task, _) = self.serve_logged(addr, shutdown).await?;
        Ok((local, task))
    }

    /// Like [`SimHost::serve`], also returning the log of every request the simulators
    /// received (per prefix, with the clock time), for checks of what the gateway sent.
    pub async fn serve_logged(
        &self,
        addr: SocketAddr,
        shutdown: Shutdown,
    ) -> anyhow::Result<(SocketAddr, JoinHandle<()>, oemgate_sim::RequestLog)> {
        let listener =
            TcpListener::bind(addr).await.with_context(|| format!("cannot listen on {addr}"))?;
        let local = listener.local_addr().context("simulator listener has no address")?;
        let host = self.host()?;
        let log = host.request_log();
        let task = tokio::spawn(async move {
            if let Err(err) = host.serve_with_shutdown(listener, shutdown.wait()).await {
                tracing::error!(error = %err, "simulator server failed");
            }
        });
        Ok((local, task, log))
    }
}

/// The world vendors with a simulator here, in linking order.
pub const VENDORS: [&str; 11] = [
    "tesla",
    "enphase",
    "huawei",
    "solaredge",
    "sma",
    "easee",
    "zaptec",
    "wallbox",
    "ecobee",
    "tado",
    "nest",
];

/// Charger vendors of the synthetic fleet.
const CHARGER_VENDORS: [(&str, f64); 3] = [("easee", 0.34), ("zaptec", 0.33), ("wallbox", 0.33)];

/// Thermostat vendors of the synthetic fleet.
const HVAC_VENDORS: [(&str, f64); 3] = [("ecobee", 0.34), ("tado", 0.33), ("nest", 0.33)];

/// The redirect URI the simulated Tesla accepts codes for.
pub const SIM_REDIRECT_URI: &str = "http://127.0.0.1/oemgate/link/callback";

/// `oemgate sim`: serves the simulators with the configured fleet until a signal, printing
/// each account's linking step so a gateway can link it.
pub async fn run(config: Config, listen: Option<SocketAddr>) -> anyhow::Result<()> {
    let clock: Arc<dyn Clock> =
        Arc::new(oemgate_core::ScaledClock::new(chrono::Utc::now(), config.sim.speed));
    let host = SimHost::new(&config, config.sim.seed, clock)?;
    let accounts = host.populate(config.sim.fleet, config.sim.seed)?;
    let (trigger, shutdown) = crate::shutdown::channel();
    let (addr, task) = host.serve(listen.unwrap_or(config.sim.listen), shutdown).await?;
    println!("vendor simulators on http://{addr}: /{}", VENDORS.join(" /"));
    for account in &accounts {
        let how = match &account.link {
            LinkStep::AuthorizationCode { code, .. } => format!("authorization code {code}"),
            LinkStep::Login { user_name, password } => format!("login {user_name} / {password}"),
            LinkStep::ApiKey(key) => format!("api key {key}"),
            LinkStep::DeviceCode { device_code } => format!("device code {device_code}"),
            LinkStep::Pin { code } => format!("ecobee PIN code {code}"),
        };
        println!(
            "  {:<9} household {}: {} devices, {how}",
            account.vendor,
            account.site,
            account.devices.len()
        );
    }
    crate::shutdown::os_signal().await;
    trigger.trigger();
    let _ = task.await;
    Ok(())
}
