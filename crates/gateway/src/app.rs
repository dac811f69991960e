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
            let redis = oemgate_store::RedisStore::connect(oemgate_store::RedisConfig::new(
                &config.store.redis_url,
                &config.store.key_prefix,
            ))
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
    adapters
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
    ApiState {
        store,
        clock,
        config: ApiConfig {
            token_ttl: config.api.token_ttl,
            refresh_hint_interval: config.api.refresh_hint_interval,
        },
        metrics: Some(crate::telemetry::metrics()),
    }
}

/// Binds `addr` (port 0 picks a free port) and serves the API until `shutdown`.
/// Returns the bound address and the server task.
pub async fn serve_api(
    addr: SocketAddr,
    state: ApiState,
    shutdown: Shutdown,
) -> anyhow::Result<(SocketAddr, JoinHandle<()>)> {
    let listener =
        TcpListener::bind(addr).await.with_context(|| format!("cannot listen on {addr}"))?;
    let local = listener.local_addr().context("listener has no local address")?;
    let app = oemgate_api::router(state);
    let task = tokio::spawn(async move {
        if let Err(err) = axum::serve(listener, app).with_graceful_shutdown(shutdown.wait()).await {
            tracing::error!(error = %err, "API server failed");
        }
    });
    Ok((local, task))
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
        adapters,
        Arc::clone(&clock),
        config.scheduler.poller(),
        rand_seed(),
    ));
    let (trigger, shutdown) = crate::shutdown::channel();
    let state = api_state(&config, Arc::clone(&store), Arc::clone(&clock));
    let (addr, server) = serve_api(config.server.listen, state, shutdown.clone()).await?;
    let poll_task = tokio::spawn(Arc::clone(&poller).run(shutdown.clone().wait()));
    tracing::info!(%addr, store = store.backend(), "oemgate serving");
    crate::shutdown::os_signal().await;
    tracing::info!("shutting down");
    trigger.trigger();
    let grace = config.server.shutdown_grace;
    if tokio::time::timeout(grace, async {
        let _ = server.await;
        let _ = poll_task.await;
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
