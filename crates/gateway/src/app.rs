//! Wiring: store, adapters, poller and API server from a [`Config`].

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use oemgate_api::{ApiConfig, ApiState};
use oemgate_core::Clock;
use oemgate_enphase::{EnphaseAdapter, EnphaseConfig};
use oemgate_huawei::{HuaweiAdapter, HuaweiConfig};
use oemgate_scheduler::Adapters;
use oemgate_sma::{SmaAdapter, SmaConfig};
use oemgate_solaredge::{SolarEdgeAdapter, SolarEdgeConfig};
use oemgate_store::Store;
use oemgate_tesla::{TeslaAdapter, TeslaConfig};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::config::{Backend, Config};
use crate::shutdown::Shutdown;

/// Opens the configured store and checks that it answers.
pub async fn open_store(config: &Config) -> anyhow::Result<Arc<dyn Store>> {
    let store: Arc<dyn Store> = match config.store.backend {
        Backend::Memory => Arc::new(oemgate_store::MemoryStore::new()),
        Backend::Redis => {
            let mut redis_config =
                oemgate_store::RedisConfig::new(&config.store.redis_url, &config.store.key_prefix);
            if let Some(key) = config.store.credential_key()? {
                redis_config = redis_config.with_credential_key(key);
            }
            let redis = oemgate_store::RedisStore::connect(redis_config)
                .await
                .with_context(|| format!("store.redis_url {}", config.store.redis_url))?;
            Arc::new(redis)
        }
    };
    store
        .ping()
        .await
        .with_context(|| format!("store backend {} is not answering", store.backend()))?;
    Ok(store)
}

/// The vendor adapters enabled in the config. `sim_base` (the demo's simulator address,
/// `http://host:port`) overrides every vendor's base URLs with the simulator's prefixes.
pub fn adapters(config: &Config, clock: Arc<dyn Clock>, sim_base: Option<&str>) -> Adapters {
    let mut adapters = Adapters::new();
    let v = &config.vendors;
    if v.tesla.enabled {
        adapters.register(Arc::new(TeslaAdapter::new(
            tesla_config(config, sim_base),
            Arc::clone(&clock),
        )));
    }
    if v.enphase.enabled {
        adapters.register(Arc::new(EnphaseAdapter::new(
            enphase_config(config, sim_base),
            Arc::clone(&clock),
        )));
    }
    if v.huawei.enabled {
        adapters.register(Arc::new(HuaweiAdapter::new(
            huawei_config(config, sim_base),
            Arc::clone(&clock),
        )));
    }
    if v.solaredge.enabled {
        let se = SolarEdgeConfig {
            api_base_url: sim_base
                .map_or_else(|| v.solaredge.api_base_url.clone(), |b| format!("{b}/solaredge")),
            request_timeout: v.solaredge.request_timeout,
        };
        adapters.register(Arc::new(SolarEdgeAdapter::new(se, Arc::clone(&clock))));
    }
    if v.sma.enabled {
        adapters
            .register(Arc::new(SmaAdapter::new(sma_config(config, sim_base), Arc::clone(&clock))));
    }
    if v.easee.enabled {
        let easee = easee_config(config, sim_base);
        adapters.register(Arc::new(oemgate_easee::EaseeAdapter::new(easee, Arc::clone(&clock))));
    }
    if v.zaptec.enabled {
        let zaptec = zaptec_config(config, sim_base);
        adapters.register(Arc::new(oemgate_zaptec::ZaptecAdapter::new(zaptec, Arc::clone(&clock))));
    }
    if v.wallbox.enabled {
        let wallbox = wallbox_config(config, sim_base);
        adapters
            .register(Arc::new(oemgate_wallbox::WallboxAdapter::new(wallbox, Arc::clone(&clock))));
    }
    if v.ecobee.enabled {
        let ecobee = ecobee_config(config, sim_base);
        adapters.register(Arc::new(oemgate_ecobee::EcobeeAdapter::new(ecobee, Arc::clone(&clock))));
    }
    if v.tado.enabled {
        let tado = tado_config(config, sim_base);
        adapters.register(Arc::new(oemgate_tado::TadoAdapter::new(tado, Arc::clone(&clock))));
    }
    if v.nest.enabled {
        let nest = nest_config(config, sim_base);
        adapters.register(Arc::new(oemgate_nest::NestAdapter::new(nest, Arc::clone(&clock))));
    }
    adapters
}

/// The Easee adapter's settings.
pub fn easee_config(config: &Config, sim_base: Option<&str>) -> oemgate_easee::EaseeConfig {
    let e = &config.vendors.easee;
    let out = oemgate_easee::EaseeConfig {
        base_url: e.base_url.clone(),
        request_timeout: e.request_timeout,
    };
    match sim_base {
        Some(base) => out.for_base_url(&format!("{base}/easee")),
        None => out,
    }
}

/// The Zaptec adapter's settings.
pub fn zaptec_config(config: &Config, sim_base: Option<&str>) -> oemgate_zaptec::ZaptecConfig {
    let z = &config.vendors.zaptec;
    let mut out = oemgate_zaptec::ZaptecConfig::new().with_request_timeout(z.request_timeout);
    out.api_base_url = z.api_base_url.clone();
    out.auth_base_url = z.auth_base_url.clone();
    match sim_base {
        Some(base) => out.for_base_url(&format!("{base}/zaptec")),
        None => out,
    }
}

/// The Wallbox adapter's settings.
pub fn wallbox_config(config: &Config, sim_base: Option<&str>) -> oemgate_wallbox::WallboxConfig {
    let w = &config.vendors.wallbox;
    let mut out = oemgate_wallbox::WallboxConfig::new();
    out.api_base_url = w.api_base_url.clone();
    out.auth_base_url = w.auth_base_url.clone();
    out.request_timeout = w.request_timeout;
    match sim_base {
        Some(base) => out.for_base_url(&format!("{base}/wallbox")),
        None => out,
    }
}

/// The ecobee adapter's settings.
pub fn ecobee_config(config: &Config, sim_base: Option<&str>) -> oemgate_ecobee::EcobeeConfig {
    let e = &config.vendors.ecobee;
    let mut out = oemgate_ecobee::EcobeeConfig::new(&e.api_key);
    out.api_base_url = e.api_base_url.clone();
    out.auth_base_url = e.auth_base_url.clone();
    out.request_timeout = e.request_timeout;
    match sim_base {
        Some(base) => out.for_base_url(&format!("{base}/ecobee")),
        None => out,
    }
}

/// The tado adapter's settings.
pub fn tado_config(config: &Config, sim_base: Option<&str>) -> oemgate_tado::TadoConfig {
    let t = &config.vendors.tado;
    let out = oemgate_tado::TadoConfig {
        api_base_url: t.api_base_url.clone(),
        auth_base_url: t.auth_base_url.clone(),
        client_id: t.client_id.clone(),
        tier: match t.tier {
            crate::config::TadoTierName::Free => oemgate_tado::TadoTier::Free,
            crate::config::TadoTierName::AutoAssist => oemgate_tado::TadoTier::AutoAssist,
        },
        request_timeout: t.request_timeout,
    };
    match sim_base {
        Some(base) => out.for_base_url(&format!("{base}/tado")),
        None => out,
    }
}

/// The Nest SDM adapter's settings.
pub fn nest_config(config: &Config, sim_base: Option<&str>) -> oemgate_nest::NestConfig {
    let n = &config.vendors.nest;
    let mut out = oemgate_nest::NestConfig::new(&n.project_id, &n.client_id, &n.client_secret);
    out.api_base_url = n.api_base_url.clone();
    out.token_url = n.token_url.clone();
    out.auth_base_url = n.auth_base_url.clone();
    out.request_timeout = n.request_timeout;
    match sim_base {
        Some(base) => out.for_base_url(&format!("{base}/nest")),
        None => out,
    }
}

/// The Tesla adapter's settings.
pub fn tesla_config(config: &Config, sim_base: Option<&str>) -> TeslaConfig {
    let tesla = &config.vendors.tesla;
    let base = sim_base.map(|b| format!("{b}/tesla"));
    TeslaConfig {
        api_base_url: base.clone().unwrap_or_else(|| tesla.api_base_url.clone()),
        auth_base_url: base.unwrap_or_else(|| tesla.auth_base_url.clone()),
        client_id: tesla.client_id.clone(),
        client_secret: tesla.client_secret.clone(),
        request_timeout: tesla.request_timeout,
    }
}

/// The Enphase adapter's settings.
pub fn enphase_config(config: &Config, sim_base: Option<&str>) -> EnphaseConfig {
    let e = &config.vendors.enphase;
    let mut out = EnphaseConfig::new(&e.api_key, &e.client_id, &e.client_secret);
    out.api_base_url = e.api_base_url.clone();
    out.auth_base_url = e.auth_base_url.clone();
    out.plan = e.plan.into();
    out.request_timeout = e.request_timeout;
    match sim_base {
        Some(base) => out.for_base_url(&format!("{base}/enphase")),
        None => out,
    }
}

/// The FusionSolar adapter's settings.
pub fn huawei_config(config: &Config, sim_base: Option<&str>) -> HuaweiConfig {
    let h = &config.vendors.huawei;
    let mut out =
        HuaweiConfig::new(sim_base.map_or_else(|| h.base_url.clone(), |b| format!("{b}/huawei")));
    out.request_timeout = h.request_timeout;
    out
}

/// The SMA adapter's settings.
pub fn sma_config(config: &Config, sim_base: Option<&str>) -> SmaConfig {
    let s = &config.vendors.sma;
    let mut out = SmaConfig::new(&s.client_id, &s.client_secret);
    let base = sim_base.map(|b| format!("{b}/sma"));
    out.api_base_url = base.clone().unwrap_or_else(|| s.api_base_url.clone());
    out.auth_base_url = base.unwrap_or_else(|| s.auth_base_url.clone());
    out.bucket_size = s.bucket_size;
    out.request_timeout = s.request_timeout;
    out
}

/// The API's state from the config.
pub fn api_state(config: &Config, store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> ApiState {
    ApiState::new(
        store,
        clock,
        ApiConfig {
            token_ttl: config.api.token_ttl,
            refresh_hint_interval: config.api.refresh_hint_interval,
        },
    )
    .with_metrics(crate::telemetry::metrics())
}

/// The webhook sender (URL rules and the 5 s deadline) and the dispatcher over `store`.
pub fn webhooks(
    config: &Config,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    seed: u64,
) -> anyhow::Result<(Arc<oemgate_webhooks::Sender>, Arc<oemgate_webhooks::Dispatcher>)> {
    let sender = Arc::new(
        oemgate_webhooks::Sender::new(config.webhooks.policy(), config.webhooks.timeout)
            .context("building the webhook HTTP client")?,
    );
    let dispatcher = Arc::new(oemgate_webhooks::Dispatcher::new(
        store,
        clock,
        Arc::clone(&sender),
        config.webhooks.dispatcher(),
        seed,
    ));
    Ok((sender, dispatcher))
}

/// The action executor from the config: it sends through `adapters` (the poller's, so a
/// vendor's per-account state is shared) and counts its requests against the poller's vendor
/// gates.
pub fn executor(
    config: &Config,
    store: Arc<dyn Store>,
    adapters: Adapters,
    clock: Arc<dyn Clock>,
    poller: &oemgate_scheduler::Poller,
    seed: u64,
) -> oemgate_executor::Executor {
    let settings = config.executor.executor(config.scheduler.delays.action_pending);
    oemgate_executor::Executor::new(store, adapters, clock, settings)
        .with_gates_from(poller)
        .with_seed(seed)
}

/// Binds `addr` (port 0 picks a free port) for the API; returns the listener and the
/// address it got (needed for the link page's URLs before serving starts).
pub async fn bind_api(addr: SocketAddr) -> anyhow::Result<(TcpListener, SocketAddr)> {
    let listener =
        TcpListener::bind(addr).await.with_context(|| format!("cannot listen on {addr}"))?;
    let local = listener.local_addr().context("listener has no local address")?;
    Ok((listener, local))
}

/// Serves the API (and the link page, when given) on `listener` until `shutdown`.
pub fn serve_api(
    listener: TcpListener,
    state: ApiState,
    link_page: Option<std::sync::Arc<crate::link_page::LinkPage>>,
    shutdown: Shutdown,
) -> JoinHandle<()> {
    let mut app = oemgate_api::router(state);
    if let Some(page) = link_page {
        app = app.merge(crate::link_page::router(page));
    }
    tokio::spawn(async move {
        if let Err(err) = axum::serve(listener, app).with_graceful_shutdown(shutdown.wait()).await {
            tracing::error!(error = %err, "API server failed");
        }
    })
}

/// The base URL browsers reach this server at: `server.public_url`, else the bound address.
pub fn public_url(config: &Config, bound: SocketAddr) -> String {
    let configured = config.server.public_url.trim().trim_end_matches('/');
    if configured.is_empty() { format!("http://{bound}") } else { configured.to_string() }
}

/// `oemgate check-config`: the config parsed (done by the caller); now reach the store.
pub async fn check(config: &Config) -> anyhow::Result<()> {
    let store = open_store(config).await?;
    println!("configuration ok (store: {}, api: {})", store.backend(), config.server.listen);
    Ok(())
}

/// `oemgate serve`: API and poller against the configured vendor clouds until a signal.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    let clock: Arc<dyn Clock> = Arc::new(oemgate_core::SystemClock);
    let store = open_store(&config).await?;
    let adapters = adapters(&config, Arc::clone(&clock), None);
    let poller = Arc::new(oemgate_scheduler::Poller::new(
        Arc::clone(&store),
        adapters.clone(),
        Arc::clone(&clock),
        config.scheduler.poller(),
        rand_seed(),
    ));
    let executor = Arc::new(executor(
        &config,
        Arc::clone(&store),
        adapters,
        Arc::clone(&clock),
        &poller,
        rand_seed(),
    ));
    let (trigger, shutdown) = crate::shutdown::channel();
    let (listener, addr) = bind_api(config.server.listen).await?;
    let link_page = crate::link_page::LinkPage::new(
        config.clone(),
        Arc::clone(&clock),
        None,
        Arc::clone(&store),
        Arc::clone(&poller),
        &public_url(&config, addr),
    );
    let (sender, dispatcher) =
        webhooks(&config, Arc::clone(&store), Arc::clone(&clock), rand_seed())?;
    let state = api_state(&config, Arc::clone(&store), Arc::clone(&clock))
        .with_executor(Arc::clone(&executor))
        .with_linker(link_page.clone())
        .with_vendor_health(Arc::new(crate::vendor_health::PollerHealth::new(Arc::clone(&poller))))
        .with_webhooks(sender);
    let server = serve_api(listener, state, Some(link_page), shutdown.clone());
    let poll_task = tokio::spawn(Arc::clone(&poller).run(shutdown.clone().wait()));
    let executor_task = tokio::spawn(Arc::clone(&executor).run(shutdown.clone().wait()));
    let webhook_task = tokio::spawn(dispatcher.run(shutdown.clone().wait()));
    tracing::info!(%addr, store = store.backend(), "oemgate serving");
    crate::shutdown::os_signal().await;
    tracing::info!("shutting down");
    trigger.trigger();
    let grace = config.server.shutdown_grace;
    if tokio::time::timeout(grace, async {
        let _ = server.await;
        let _ = poll_task.await;
        let _ = executor_task.await;
        let _ = webhook_task.await;
    })
    .await
    .is_err()
    {
        tracing::warn!(?grace, "tasks did not finish within the shutdown grace period");
    }
    Ok(())
}

/// A seed for jitter in production (simulations pass their own).
pub fn rand_seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    nanos ^ u64::from(std::process::id()).rotate_left(32)
}
