//! Hosting the vendor simulators: one HTTP listener, one path prefix per vendor.
//!
//! | vendor | prefix   | what it serves                                   |
//! |--------|----------|--------------------------------------------------|
//! | Tesla  | `/tesla` | `/oauth2/v3/token`, `/api/1/vehicles/...`         |
//!
//! A vendor adapter is pointed at `http://<listen>/<prefix>` as its base URL.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use oemgate_core::Clock;
use oemgate_tesla::sim::{PowerState, TeslaSim, VehicleSpec};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::config::Config;
use crate::shutdown::Shutdown;

/// The path prefix of the Tesla simulator.
pub const TESLA_PREFIX: &str = "/tesla";

/// A simulated account, ready to be linked.
#[derive(Clone, Debug)]
pub struct SimAccount {
    /// The vendor ("TESLA").
    pub vendor: &'static str,
    /// The account's id in the simulator.
    pub account_id: String,
    /// A single-use OAuth authorization code for it.
    pub authorization_code: String,
    /// The vehicles' VINs.
    pub vins: Vec<String>,
}

/// Every vendor simulator on one clock.
#[derive(Clone)]
pub struct SimHost {
    /// Tesla's cloud.
    pub tesla: TeslaSim,
}

impl std::fmt::Debug for SimHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimHost").finish_non_exhaustive()
    }
}

impl SimHost {
    /// Simulators seeded with `seed`, reading time from `clock`.
    pub fn new(seed: u64, clock: Arc<dyn Clock>) -> Self {
        Self { tesla: TeslaSim::new(seed, clock) }
    }

    /// All simulators under their prefixes.
    pub fn router(&self) -> Router {
        Router::new().nest(TESLA_PREFIX, self.tesla.router())
    }

    /// Adds a synthetic fleet of `vehicles` cars, two per account, drawn from `seed`: a mix
    /// of plugged-in, charging, idle and sleeping cars around Oslo.
    pub fn populate(&self, vehicles: usize, seed: u64) -> Vec<SimAccount> {
        let mut rng = SmallRng::seed_from_u64(seed ^ 0x5eed_f1ee7);
        let mut accounts: Vec<SimAccount> = Vec::new();
        const CAR_TYPES: [&str; 4] = ["modely", "model3", "models", "modelx"];
        for i in 0..vehicles {
            if i % 2 == 0 {
                let (account_id, code) =
                    self.tesla.add_account(&format!("driver{}@example.com", i / 2));
                accounts.push(SimAccount {
                    vendor: "TESLA",
                    account_id,
                    authorization_code: code,
                    vins: Vec::new(),
                });
            }
            let plugged_in = rng.random_bool(0.4);
            let charging = plugged_in && rng.random_bool(0.5);
            let power_state = if charging || rng.random_bool(0.7) {
                PowerState::Online
            } else {
                PowerState::Asleep
            };
            let spec = VehicleSpec {
                display_name: Some(format!("Car {}", i + 1)),
                car_type: CAR_TYPES[i % CAR_TYPES.len()].to_string(),
                model_year: 2019 + (i % 6) as u16,
                battery_level: rng.random_range(15.0..90.0f64).round(),
                charge_limit: [80.0, 90.0, 100.0][i % 3],
                plugged_in,
                charging,
                power_state,
                odometer_km: rng.random_range(2_000.0..120_000.0f64).round(),
                latitude: 59.91 + rng.random_range(-0.1..0.1),
                longitude: 10.75 + rng.random_range(-0.2..0.2),
                ..VehicleSpec::default()
            };
            if let Some(account) = accounts.last_mut() {
                let vin = self.tesla.add_vehicle(&account.account_id, spec);
                account.vins.push(vin);
            }
        }
        accounts
    }

    /// Serves the simulators on `addr` until `shutdown`; returns the bound address.
    pub async fn serve(
        &self,
        addr: SocketAddr,
        shutdown: Shutdown,
    ) -> anyhow::Result<(SocketAddr, JoinHandle<()>)> {
        let listener =
            TcpListener::bind(addr).await.with_context(|| format!("cannot listen on {addr}"))?;
        let local = listener.local_addr().context("simulator listener has no address")?;
        let app = self.router();
        let task = tokio::spawn(async move {
            if let Err(err) =
                axum::serve(listener, app).with_graceful_shutdown(shutdown.wait()).await
            {
                tracing::error!(error = %err, "simulator server failed");
            }
        });
        Ok((local, task))
    }
}

/// `oemgate sim`: serves the simulators with the configured fleet until a signal, printing
/// each account's authorization code so a gateway can link it.
pub async fn run(config: Config, listen: Option<SocketAddr>) -> anyhow::Result<()> {
    let clock: Arc<dyn Clock> =
        Arc::new(oemgate_core::ScaledClock::new(chrono::Utc::now(), config.sim.speed));
    let host = SimHost::new(config.sim.seed, clock);
    let accounts = host.populate(config.sim.fleet, config.sim.seed);
    let (trigger, shutdown) = crate::shutdown::channel();
    let (addr, task) = host.serve(listen.unwrap_or(config.sim.listen), shutdown).await?;
    println!("vendor simulators on http://{addr}");
    println!(
        "  Tesla: http://{addr}{TESLA_PREFIX} (token endpoint {TESLA_PREFIX}/oauth2/v3/token)"
    );
    for account in &accounts {
        println!(
            "  {} account {}: authorization code {} ({} vehicles)",
            account.vendor,
            account.account_id,
            account.authorization_code,
            account.vins.len()
        );
    }
    crate::shutdown::os_signal().await;
    trigger.trigger();
    let _ = task.await;
    Ok(())
}
