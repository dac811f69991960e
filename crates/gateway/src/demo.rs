//! `oemgate demo`: simulators, gateway and API in one process, on the embedded store.
//!
//! The demo links every simulated account the way a real user would (authorization code
//! exchanged at the simulated token endpoint), discovers the devices, and lets the poller
//! keep them fresh. [`Demo::start`] is also what the end-to-end tests run.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Context;
use chrono::Utc;
use oemgate_api::ClientCredentials;
use oemgate_core::{Clock, ScaledClock};
use oemgate_executor::Executor;
use oemgate_scheduler::{Poller, PollerStats};
use oemgate_store::{Store, UserRecord};
use tokio::task::JoinHandle;

use crate::app;
use crate::config::Config;
use crate::shutdown::{self, ShutdownTrigger};
use crate::sim::{SimAccount, SimHost};

/// Knobs of a demo run.
#[derive(Clone, Debug)]
pub struct DemoOptions {
    /// API address (port 0 picks one).
    pub listen: SocketAddr,
    /// Simulator address (port 0 picks one).
    pub sim_listen: SocketAddr,
    /// Vehicles in the fleet.
    pub fleet: usize,
    /// Time acceleration.
    pub speed: f64,
    /// World seed.
    pub seed: u64,
    /// API client id (random when None).
    pub client_id: Option<String>,
    /// API client secret (random when None).
    pub client_secret: Option<String>,
    /// No live summary line.
    pub headless: bool,
}

/// What the end-to-end tests swap in; the CLI uses the defaults.
#[derive(Clone, Default)]
pub struct DemoParts {
    /// The clock (default: a [`ScaledClock`] at `speed`, starting now).
    pub clock: Option<Arc<dyn Clock>>,
    /// The store (default: the embedded memory store).
    pub store: Option<Arc<dyn Store>>,
    /// Do not start the background poll and executor loops; the caller drives
    /// [`Demo::poller`] and [`Demo::executor`] itself.
    pub manual_polling: bool,
    /// Told about every poll (tests and the load test compare it with the world's truth).
    pub observer: Option<Arc<dyn oemgate_scheduler::poller::PollObserver>>,
    /// Create the simulated vendor accounts but do not link them: [`Demo::accounts`] lists
    /// them for linking through the link page.
    pub unlinked: bool,
    /// The polling heuristic (default: the adaptive planner).
    pub policy: Option<Arc<dyn oemgate_scheduler::PollPolicy>>,
    /// Link only the accounts of these vendors (API spelling, "TESLA"); all when None.
    pub vendors: Option<Vec<String>>,
    /// When a vendor rate-limits linking (a large simulated fleet links faster than vendors
    /// allow), advance this manual clock by the vendor's retry-after and try again; without
    /// it the demo waits the retry-after on its own clock.
    pub pace_linking: Option<Arc<oemgate_core::ManualClock>>,
}

impl std::fmt::Debug for DemoParts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DemoParts")
            .field("manual_polling", &self.manual_polling)
            .field("unlinked", &self.unlinked)
            .finish_non_exhaustive()
    }
}

/// The adapter error behind a linking error, if there is one.
fn adapter_error(err: &anyhow::Error) -> Option<&oemgate_core::AdapterError> {
    err.chain().find_map(|e| e.downcast_ref::<oemgate_core::AdapterError>())
}

/// How often linking one account is tried when the vendor rate-limits it.
const LINK_ATTEMPTS: u32 = 10;

/// The wait a vendor's rate-limit answer asks for, if `err` is one (a minute if it names
/// none).
fn rate_limited(err: &anyhow::Error) -> Option<Duration> {
    adapter_error(err)
        .filter(|e| e.kind() == oemgate_core::ErrorKind::RateLimited)
        .map(|e| e.retry_after().unwrap_or(Duration::from_secs(60)))
}

/// A simulated account as the demo linked it.
#[derive(Clone, Debug)]
pub struct LinkedAccount {
    /// The simulated account (vendor, household, world devices).
    pub account: crate::sim::SimAccount,
    /// The gateway's account id (the devices' `account_id`).
    pub account_id: String,
    /// The user that linked it.
    pub user_id: String,
}

/// A running demo.
pub struct Demo {
    /// The API base URL.
    pub api_url: String,
    /// The simulators' base URL.
    pub sim_url: String,
    /// The API client created for the demo.
    pub client: ClientCredentials,
    /// The store (embedded memory).
    pub store: Arc<dyn Store>,
    /// The simulators.
    pub sim: SimHost,
    /// The demo's clock.
    pub clock: Arc<dyn Clock>,
    /// The poller (tick it by hand under [`DemoParts::manual_polling`]).
    pub poller: Arc<Poller>,
    /// The action executor (tick it by hand under [`DemoParts::manual_polling`]).
    pub executor: Arc<Executor>,
    /// The webhook dispatcher (tick it by hand under [`DemoParts::manual_polling`]).
    pub webhooks: Arc<oemgate_webhooks::Dispatcher>,
    /// Poll counters.
    pub stats: Arc<PollerStats>,
    /// Devices registered.
    pub devices: usize,
    /// Every simulated account the demo linked, with the gateway's account and user ids.
    pub linked: Vec<LinkedAccount>,
    /// Every request the vendor simulators received.
    pub sim_requests: oemgate_sim::RequestLog,
    /// The simulated vendor accounts (linked at start unless [`DemoParts::unlinked`]).
    pub accounts: Vec<SimAccount>,
    trigger: ShutdownTrigger,
    tasks: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for Demo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Demo")
            .field("api_url", &self.api_url)
            .field("sim_url", &self.sim_url)
            .finish()
    }
}

impl Demo {
    /// Starts simulators, links the fleet, starts poller and API.
    pub async fn start(config: Config, options: DemoOptions) -> anyhow::Result<Demo> {
        Self::start_with(config, options, DemoParts::default()).await
    }

    /// Like [`Demo::start`] with parts swapped in.
    pub async fn start_with(
        config: Config,
        options: DemoOptions,
        parts: DemoParts,
    ) -> anyhow::Result<Demo> {
        anyhow::ensure!(
            options.speed.is_finite() && options.speed > 0.0,
            "--speed must be a positive number"
        );
        // Webhook receivers of a demo listen on this machine, usually over plain http.
        let mut config = config;
        config.webhooks.allow_insecure_loopback = true;
        let clock: Arc<dyn Clock> =
            parts.clock.unwrap_or_else(|| Arc::new(ScaledClock::new(Utc::now(), options.speed)));
        let (trigger, shutdown) = shutdown::channel();

        let sim = SimHost::new(&config, options.seed, Arc::clone(&clock))?;
        let accounts = sim.populate(options.fleet, options.seed)?;
        let (sim_addr, sim_task, sim_requests) =
            sim.serve_logged(options.sim_listen, shutdown.clone()).await?;
        let sim_url = format!("http://{sim_addr}");

        let store: Arc<dyn Store> =
            parts.store.unwrap_or_else(|| Arc::new(oemgate_store::MemoryStore::new()));
        let adapters = app::adapters(&config, Arc::clone(&clock), Some(&sim_url));
        let mut poller = Poller::new(
            Arc::clone(&store),
            adapters.clone(),
            Arc::clone(&clock),
            config.scheduler.poller(),
            options.seed,
        );
        if let Some(observer) = parts.observer {
            poller = poller.with_observer(observer);
        }
        if let Some(policy) = parts.policy {
            poller = poller.with_policy(policy);
        }
        let poller = Arc::new(poller);

        let client = ClientCredentials {
            client_id: options
                .client_id
                .clone()
                .unwrap_or_else(|| ClientCredentials::generate().client_id),
            client_secret: options
                .client_secret
                .clone()
                .unwrap_or_else(|| ClientCredentials::generate().client_secret),
        };
        oemgate_api::create_client(
            store.as_ref(),
            &client,
            oemgate_api::SUPPORTED_VERSIONS[0],
            clock.now(),
        )
        .await
        .context("creating the demo API client")?;

        // Link every simulated account as its user would (authorization code, login or API
        // key), then discover its devices. One user per household, owned by the demo client.
        let mut users: std::collections::HashMap<String, String> = std::collections::HashMap::new();
        let mut devices = 0;
        let mut linked = Vec::with_capacity(accounts.len());
        let mut deferred = Vec::new();
        let to_link = if parts.unlinked { &[][..] } else { &accounts[..] };
        for (n, account) in to_link.iter().enumerate() {
            if parts.vendors.as_ref().is_some_and(|v| !v.iter().any(|v| v == account.vendor)) {
                continue;
            }
            let Some(adapter) = adapters.get(account.vendor) else { continue };
            let step = match (account.vendor, &account.link) {
                // tado links by device code: the gateway starts it, the user approves it on
                // tado's page with their login (played by the simulator), then we exchange it.
                ("TADO", crate::sim::LinkStep::Login { user_name, password }) => {
                    let started = crate::linking::start_device_code(
                        &config,
                        Arc::clone(&clock),
                        Some(&sim_url),
                        account.vendor,
                    )
                    .await
                    .context("starting tado's device-code flow")?;
                    sim.approve_device_code(&started.user_code, user_name, password);
                    crate::sim::LinkStep::DeviceCode { device_code: started.device_code }
                }
                (_, step) => step.clone(),
            };
            let credentials = crate::linking::credentials(
                &config,
                Arc::clone(&clock),
                Some(&sim_url),
                account.vendor,
                &step,
            )
            .await
            .with_context(|| {
                format!("linking simulated {} account of {}", account.vendor, account.site)
            })?;
            let user_id = users
                .entry(account.site.to_string())
                .or_insert_with(|| uuid::Uuid::new_v4().to_string())
                .clone();
            let account_id = format!("{}:{n}", account.vendor.to_lowercase());
            // The user comes first: a device belongs to the client its user had when it was
            // registered.
            let user = store
                .put_user(UserRecord {
                    id: user_id.clone(),
                    client_id: client.client_id.clone(),
                    created_at: clock.now(),
                })
                .await
                .context("creating the user")?;
            anyhow::ensure!(
                user.client_id == client.client_id,
                "user {user_id} belongs to another API client"
            );
            let first = crate::linking::link_account(
                store.as_ref(),
                &poller,
                adapter.as_ref(),
                &user_id,
                &account_id,
                credentials.clone(),
                clock.now(),
            )
            .await;
            match first {
                Ok(n) => {
                    devices += n;
                    linked.push(LinkedAccount { account: account.clone(), account_id, user_id });
                }
                // The vendor's limit is spent: link this account after the others, so the
                // wait does not age the authorization codes of accounts not yet exchanged.
                Err(err) if rate_limited(&err).is_some() => {
                    deferred.push((account.clone(), account_id, user_id, credentials));
                }
                Err(err) => return Err(err),
            }
        }
        for (account, account_id, user_id, mut credentials) in deferred {
            let Some(adapter) = adapters.get(account.vendor) else { continue };
            let mut attempt = 0;
            devices += loop {
                let result = crate::linking::link_account(
                    store.as_ref(),
                    &poller,
                    adapter.as_ref(),
                    &user_id,
                    &account_id,
                    credentials.clone(),
                    clock.now(),
                )
                .await;
                let retry_after = match &result {
                    Err(err) if attempt < LINK_ATTEMPTS => rate_limited(err),
                    _ => None,
                };
                let expired = matches!(&result, Err(err) if attempt < LINK_ATTEMPTS
                    && adapter_error(err).is_some_and(|e| e.kind() == oemgate_core::ErrorKind::AuthExpired));
                if expired {
                    // The wait outlived a short-lived access token (SMA's five minutes).
                    attempt += 1;
                    let account_ref = oemgate_core::AccountRef {
                        user_id: user_id.clone(),
                        vendor: account.vendor.to_string(),
                        account_id: account_id.clone(),
                        credentials: credentials.clone(),
                    };
                    credentials = adapter
                        .refresh_credentials(&account_ref)
                        .await
                        .with_context(|| format!("refreshing {} credentials", account.vendor))?;
                    continue;
                }
                match (result, retry_after) {
                    (Ok(n), _) => break n,
                    (Err(_), Some(after)) => {
                        attempt += 1;
                        match &parts.pace_linking {
                            Some(manual) => manual.advance(after),
                            None => tokio::time::sleep(clock.to_real(after)).await,
                        }
                    }
                    (Err(err), None) => return Err(err),
                }
            };
            linked.push(LinkedAccount { account, account_id, user_id });
        }

        let executor = Arc::new(app::executor(
            &config,
            Arc::clone(&store),
            adapters,
            Arc::clone(&clock),
            &poller,
            options.seed,
        ));
        let (listener, api_addr) = app::bind_api(options.listen).await?;
        let link_page = crate::link_page::LinkPage::new(
            config.clone(),
            Arc::clone(&clock),
            Some(sim_url.clone()),
            Arc::clone(&store),
            Arc::clone(&poller),
            &app::public_url(&config, api_addr),
        );
        let (sender, webhooks) =
            app::webhooks(&config, Arc::clone(&store), Arc::clone(&clock), options.seed)?;
        let state = app::api_state(&config, Arc::clone(&store), Arc::clone(&clock))
            .with_webhooks(sender)
            .with_executor(Arc::clone(&executor))
            .with_linker(link_page.clone())
            .with_vendor_health(Arc::new(crate::vendor_health::PollerHealth::new(Arc::clone(
                &poller,
            ))));
        let api_task = app::serve_api(listener, state, Some(link_page), shutdown.clone());
        let stats = poller.stats();
        let mut tasks = vec![sim_task, api_task];
        if !parts.manual_polling {
            tasks.push(tokio::spawn(Arc::clone(&poller).run(shutdown.clone().wait())));
            tasks.push(tokio::spawn(Arc::clone(&executor).run(shutdown.clone().wait())));
            tasks.push(tokio::spawn(Arc::clone(&webhooks).run(shutdown.wait())));
        }

        Ok(Demo {
            api_url: format!("http://{api_addr}"),
            sim_url,
            client,
            store,
            sim,
            clock,
            poller,
            executor,
            webhooks,
            stats,
            devices,
            linked,
            sim_requests,
            accounts,
            trigger,
            tasks,
        })
    }

    /// One line about what the gateway did so far.
    pub fn summary(&self) -> String {
        let s = &self.stats;
        format!(
            "sim time {} | devices {} | polls ok {} failed {} | vendor requests {} | changes {} | token refreshes {} | actions {} confirmed {}",
            self.clock.now().format("%Y-%m-%d %H:%M:%S"),
            self.devices,
            s.polls_ok.load(Ordering::Relaxed),
            s.polls_failed.load(Ordering::Relaxed),
            s.vendor_requests.load(Ordering::Relaxed),
            s.changes.load(Ordering::Relaxed),
            s.credential_refreshes.load(Ordering::Relaxed),
            self.executor.stats().created.load(Ordering::Relaxed),
            self.executor.stats().confirmed.load(Ordering::Relaxed),
        )
    }

    /// Stops every task and waits for them.
    pub async fn stop(self) {
        self.trigger.trigger();
        for task in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
        }
    }
}

/// `oemgate demo`: runs until Ctrl-C or SIGTERM, printing a summary every few seconds.
pub async fn run(config: Config, options: DemoOptions) -> anyhow::Result<()> {
    let headless = options.headless;
    let demo = Demo::start(config, options).await?;
    println!("oemgate demo is running");
    println!("  API base URL:   {}", demo.api_url);
    println!("  client id:      {}", demo.client.client_id);
    println!("  client secret:  {}", demo.client.client_secret);
    println!("  simulators:     {} (/{})", demo.sim_url, crate::sim::VENDORS.join(" /"));
    println!("  devices linked: {}", demo.devices);
    println!(
        "  try: curl -s -u {}:{} -d grant_type=client_credentials {}/oauth2/token",
        demo.client.client_id, demo.client.client_secret, demo.api_url
    );
    let _ = std::io::stdout().flush();
    let signal = shutdown::os_signal();
    tokio::pin!(signal);
    let mut every = tokio::time::interval(Duration::from_secs(5));
    loop {
        tokio::select! {
            _ = &mut signal => break,
            _ = every.tick() => {
                if headless {
                    tracing::info!(summary = %demo.summary(), "demo");
                } else {
                    print!("\r{}   ", demo.summary());
                    let _ = std::io::stdout().flush();
                }
            }
        }
    }
    if !headless {
        println!();
    }
    tracing::info!("shutting down");
    demo.stop().await;
    Ok(())
}
