//! Configuration: config/default.toml's structure, loaded with figment.
//!
//! Sources, later ones winning: the built-in defaults (the same values as
//! config/default.toml), an optional `--config FILE`, then environment variables
//! `OEMGATE_SECTION__KEY` (for example `OEMGATE_STORE__BACKEND=redis`). Every struct denies
//! unknown keys, so a typo is an error that names the key instead of a silently ignored line.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Toml};
use oemgate_core::ContextDelays;
use oemgate_core::context::humanize;
use oemgate_executor::{ExecutorConfig, RetryBudgetConfig, VendorOverride, VendorPolicy};
use oemgate_scheduler::breaker::BreakerConfig;
use oemgate_scheduler::{PlannerConfig, PollerConfig};
use serde::{Deserialize, Serialize};

/// The built-in defaults: config/default.toml, compiled in so the binary needs no files.
pub const DEFAULT_TOML: &str = include_str!("../../../config/default.toml");

/// The whole configuration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The HTTP API server.
    pub server: ServerConfig,
    /// The store backend.
    pub store: StoreConfig,
    /// API settings.
    pub api: ApiSection,
    /// Polling.
    pub scheduler: SchedulerSection,
    /// Actions.
    pub executor: ExecutorSection,
    /// Webhook deliveries.
    pub webhooks: WebhooksSection,
    /// Logs.
    pub telemetry: TelemetryConfig,
    /// Vendor clouds.
    pub vendors: VendorsConfig,
    /// The vendor simulators (`oemgate sim`, `oemgate demo`).
    pub sim: SimConfig,
}

/// `[server]`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Address the API listens on.
    pub listen: SocketAddr,
    /// How long in-flight requests get to finish on shutdown.
    #[serde(with = "humanize")]
    pub shutdown_grace: Duration,
    /// The base URL users' browsers reach this server at (link pages and the vendors' OAuth
    /// redirect URI); empty: `http://{listen}`.
    pub public_url: String,
}

/// Which store backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// In-process, nothing survives a restart.
    Memory,
    /// Redis (shared by several instances).
    Redis,
}

/// `[store]`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// "memory" or "redis".
    pub backend: Backend,
    /// Redis URL, for the redis backend.
    pub redis_url: String,
    /// Prefix of every Redis key.
    pub key_prefix: String,
    /// Base64 of 32 random bytes sealing vendor credentials at rest in Redis (required with
    /// the redis backend; unused in memory). `Debug` never shows it.
    pub encryption_key: SecretString,
}

/// A configured secret: read like a string, never printed by `Debug`.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SecretString(pub String);

impl std::fmt::Debug for SecretString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_empty() { "\"\"" } else { "<redacted>" })
    }
}

impl StoreConfig {
    /// The credential key, if one is configured (validated at load).
    pub fn credential_key(&self) -> Result<Option<oemgate_store::CredentialKey>, ConfigError> {
        if self.encryption_key.0.trim().is_empty() {
            return Ok(None);
        }
        oemgate_store::CredentialKey::from_base64(&self.encryption_key.0).map(Some).map_err(|err| {
            ConfigError(format!(
                "store.encryption_key must be the base64 of 32 random bytes: {err}"
            ))
        })
    }
}

/// `[api]`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiSection {
    /// Lifetime of access tokens.
    #[serde(with = "humanize")]
    pub token_ttl: Duration,
    /// At most one refresh hint per device per this interval brings a poll forward.
    #[serde(with = "humanize")]
    pub refresh_hint_interval: Duration,
}

/// `[scheduler]`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchedulerSection {
    /// Freshness bounds per context.
    pub delays: ContextDelays,
    /// Allowance for the duration of one poll.
    #[serde(with = "humanize")]
    pub poll_latency: Duration,
    /// Share of an interval taken off at random.
    pub jitter: f64,
    /// First retry delay after a failure.
    #[serde(with = "humanize")]
    pub error_backoff_base: Duration,
    /// Longest retry delay.
    #[serde(with = "humanize")]
    pub error_backoff_max: Duration,
    /// Devices claimed per tick.
    pub batch_size: usize,
    /// Polls in flight per instance.
    pub max_in_flight: usize,
    /// How long a claimed device is leased.
    #[serde(with = "humanize")]
    pub lease: Duration,
    /// First polls of new devices spread over this long.
    #[serde(with = "humanize")]
    pub startup_spread: Duration,
    /// Time between ticks when idle.
    #[serde(with = "humanize")]
    pub tick: Duration,
    /// The per-vendor circuit breaker.
    pub breaker: BreakerConfig,
}

impl SchedulerSection {
    /// The poller settings.
    pub fn poller(&self) -> PollerConfig {
        PollerConfig {
            planner: PlannerConfig {
                delays: self.delays,
                poll_latency: self.poll_latency,
                jitter: self.jitter,
                error_backoff_base: self.error_backoff_base,
                error_backoff_max: self.error_backoff_max,
            },
            batch_size: self.batch_size,
            max_in_flight: self.max_in_flight,
            lease: self.lease,
            startup_spread: self.startup_spread,
            tick: self.tick,
            breaker: self.breaker,
        }
    }
}

/// `[executor]`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecutorSection {
    /// Time between executor ticks.
    #[serde(with = "humanize")]
    pub tick: Duration,
    /// An action not confirmed this long after its creation fails (NO_RESPONSE).
    #[serde(with = "humanize")]
    pub timeout: Duration,
    /// An accepted but unconfirmed command is sent again after this long.
    #[serde(with = "humanize")]
    pub resend_interval: Duration,
    /// How long a precondition may stay unmet before the action is cancelled.
    #[serde(with = "humanize")]
    pub precondition_grace: Duration,
    /// How long to wait for a woken vehicle before waking it again.
    #[serde(with = "humanize")]
    pub wake_timeout: Duration,
    /// How long an instance owns an action it drives.
    #[serde(with = "humanize")]
    pub lease: Duration,
    /// First retry delay after a failed request.
    #[serde(with = "humanize")]
    pub retry_backoff_base: Duration,
    /// Longest retry delay.
    #[serde(with = "humanize")]
    pub retry_backoff_max: Duration,
    /// Actions driven concurrently per tick.
    pub max_in_flight: usize,
    /// Highest `maxCurrent` accepted, in amperes.
    pub max_current_limit: f64,
    /// The retry budget per vendor.
    pub retry_budget: RetryBudgetConfig,
    /// Per-vendor overrides of the timings, by lower-case vendor name.
    #[serde(default)]
    pub vendors: BTreeMap<String, VendorOverride>,
}

impl ExecutorSection {
    /// The executor settings; `confirm_poll` is the scheduler's action-pending delay.
    pub fn executor(&self, confirm_poll: Duration) -> ExecutorConfig {
        ExecutorConfig {
            tick: self.tick,
            defaults: VendorPolicy {
                timeout: self.timeout,
                resend_interval: self.resend_interval,
                precondition_grace: self.precondition_grace,
                wake_timeout: self.wake_timeout,
            },
            vendors: self.vendors.clone(),
            lease: self.lease,
            retry_backoff_base: self.retry_backoff_base,
            retry_backoff_max: self.retry_backoff_max,
            retry_budget: self.retry_budget,
            max_in_flight: self.max_in_flight,
            max_current_limit: self.max_current_limit,
            confirm_poll,
        }
    }
}

/// `[webhooks]`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhooksSection {
    /// A webhook failing this long has its pending events dropped and is deactivated.
    #[serde(with = "humanize")]
    pub retry_window: Duration,
    /// A receiver must answer 2xx within this long.
    #[serde(with = "humanize")]
    pub timeout: Duration,
    /// First retry delay after a failed delivery; doubles per failure ...
    #[serde(with = "humanize")]
    pub backoff_min: Duration,
    /// ... up to this.
    #[serde(with = "humanize")]
    pub backoff_max: Duration,
    /// Webhooks delivered at once per instance.
    pub concurrency: usize,
    /// How often the dispatcher looks for due webhooks.
    #[serde(with = "humanize")]
    pub tick: Duration,
    /// How long an instance owns a webhook it delivers (renewed per batch).
    #[serde(with = "humanize")]
    pub lease: Duration,
    /// Accept `http://` and loopback URLs (the demo turns this on).
    pub allow_insecure_loopback: bool,
    /// When not empty, the only hosts webhooks may call (`*.example.com` for subdomains).
    #[serde(default)]
    pub allowed_hosts: Vec<String>,
}

impl WebhooksSection {
    /// The dispatcher settings.
    pub fn dispatcher(&self) -> oemgate_webhooks::DispatcherConfig {
        oemgate_webhooks::DispatcherConfig {
            retry_window: self.retry_window,
            concurrency: self.concurrency,
            backoff_min: self.backoff_min,
            backoff_max: self.backoff_max,
            tick: self.tick,
            lease: self.lease,
            ..oemgate_webhooks::DispatcherConfig::default()
        }
    }

    /// The URL rules deliveries and the API apply.
    pub fn policy(&self) -> oemgate_webhooks::UrlPolicy {
        oemgate_webhooks::UrlPolicy {
            allow_insecure_loopback: self.allow_insecure_loopback,
            allowed_hosts: self.allowed_hosts.clone(),
        }
    }
}

/// Log output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Human,
    /// One JSON object per line.
    Json,
}

/// `[telemetry]`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetryConfig {
    /// "human" or "json".
    pub log_format: LogFormat,
    /// A tracing filter ("info", "oemgate=debug,info").
    pub log_level: String,
}

/// `[vendors]`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VendorsConfig {
    /// Tesla Fleet API.
    pub tesla: TeslaSection,
    /// Enphase Enlighten API v4.
    pub enphase: EnphaseSection,
    /// Huawei FusionSolar Northbound API.
    pub huawei: HuaweiSection,
    /// SolarEdge Monitoring API.
    pub solaredge: SolarEdgeSection,
    /// SMA monitoring API.
    pub sma: SmaSection,
    /// Easee chargers.
    pub easee: BaseUrlSection,
    /// Zaptec chargers.
    pub zaptec: WallboxSection,
    /// Wallbox chargers.
    pub wallbox: WallboxSection,
    /// ecobee thermostats.
    pub ecobee: EcobeeSection,
    /// tado thermostats.
    pub tado: TadoSection,
    /// Google Nest Smart Device Management.
    pub nest: NestSection,
}

/// A vendor that needs only a base URL (`[vendors.easee]`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BaseUrlSection {
    /// Whether the adapter is registered.
    pub enabled: bool,
    /// API base URL.
    pub base_url: String,
    /// Per-request timeout.
    #[serde(with = "humanize")]
    pub request_timeout: Duration,
}

/// `[vendors.wallbox]` and `[vendors.zaptec]`: an API and a sign-in base URL.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WallboxSection {
    /// Whether the adapter is registered.
    pub enabled: bool,
    /// API base URL.
    pub api_base_url: String,
    /// Sign-in base URL.
    pub auth_base_url: String,
    /// Per-request timeout.
    #[serde(with = "humanize")]
    pub request_timeout: Duration,
}

/// `[vendors.ecobee]`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EcobeeSection {
    /// Whether the adapter is registered.
    pub enabled: bool,
    /// API base URL (ending in /1).
    pub api_base_url: String,
    /// Base URL of /authorize and /token.
    pub auth_base_url: String,
    /// The application's API key.
    pub api_key: String,
    /// Per-request timeout.
    #[serde(with = "humanize")]
    pub request_timeout: Duration,
}

/// tado subscription tiers (they set the daily quota).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TadoTierName {
    /// 100 requests per day per account.
    Free,
    /// 20,000 requests per day per account.
    AutoAssist,
}

/// `[vendors.tado]`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TadoSection {
    /// Whether the adapter is registered.
    pub enabled: bool,
    /// API base URL.
    pub api_base_url: String,
    /// OAuth base URL (device-code flow).
    pub auth_base_url: String,
    /// OAuth client id.
    pub client_id: String,
    /// The accounts' subscription tier.
    pub tier: TadoTierName,
    /// Per-request timeout.
    #[serde(with = "humanize")]
    pub request_timeout: Duration,
}

/// `[vendors.nest]`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NestSection {
    /// Whether the adapter is registered.
    pub enabled: bool,
    /// SDM API base URL.
    pub api_base_url: String,
    /// Token endpoint.
    pub token_url: String,
    /// Consent page base URL.
    pub auth_base_url: String,
    /// Device Access project id.
    pub project_id: String,
    /// OAuth client id.
    pub client_id: String,
    /// OAuth client secret.
    pub client_secret: String,
    /// Per-request timeout.
    #[serde(with = "humanize")]
    pub request_timeout: Duration,
}

/// Enphase API plans (they set the declared limits).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EnphasePlanName {
    /// 10 per minute, 1,000 per month.
    Watt,
    /// 50 per minute, 50,000 per month.
    Kilowatt,
    /// 100 per minute, 300,000 per month.
    Megawatt,
    /// 300 per minute, 1.5 million per month.
    Partner,
}

impl From<EnphasePlanName> for oemgate_enphase::EnphasePlan {
    fn from(plan: EnphasePlanName) -> Self {
        match plan {
            EnphasePlanName::Watt => oemgate_enphase::EnphasePlan::Watt,
            EnphasePlanName::Kilowatt => oemgate_enphase::EnphasePlan::Kilowatt,
            EnphasePlanName::Megawatt => oemgate_enphase::EnphasePlan::Megawatt,
            EnphasePlanName::Partner => oemgate_enphase::EnphasePlan::Partner,
        }
    }
}

/// `[vendors.enphase]`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnphaseSection {
    /// Whether the adapter is registered.
    pub enabled: bool,
    /// API base URL, ending in /api/v4.
    pub api_base_url: String,
    /// Base URL of /oauth/token.
    pub auth_base_url: String,
    /// The application's API key.
    pub api_key: String,
    /// OAuth client id.
    pub client_id: String,
    /// OAuth client secret.
    pub client_secret: String,
    /// The application's plan.
    pub plan: EnphasePlanName,
    /// Per-request timeout.
    #[serde(with = "humanize")]
    pub request_timeout: Duration,
}

/// `[vendors.huawei]`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HuaweiSection {
    /// Whether the adapter is registered.
    pub enabled: bool,
    /// Northbound base URL (region specific).
    pub base_url: String,
    /// Per-request timeout.
    #[serde(with = "humanize")]
    pub request_timeout: Duration,
}

/// `[vendors.solaredge]`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SolarEdgeSection {
    /// Whether the adapter is registered.
    pub enabled: bool,
    /// Monitoring API base URL.
    pub api_base_url: String,
    /// Per-request timeout.
    #[serde(with = "humanize")]
    pub request_timeout: Duration,
}

/// `[vendors.sma]`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmaSection {
    /// Whether the adapter is registered.
    pub enabled: bool,
    /// Monitoring API base URL.
    pub api_base_url: String,
    /// Token endpoint base URL.
    pub auth_base_url: String,
    /// OAuth client id.
    pub client_id: String,
    /// OAuth client secret.
    pub client_secret: String,
    /// Requests per 5-minute token-bucket refill, per the contract's package.
    pub bucket_size: u32,
    /// Per-request timeout.
    #[serde(with = "humanize")]
    pub request_timeout: Duration,
}

/// `[vendors.tesla]`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeslaSection {
    /// Whether the adapter is registered.
    pub enabled: bool,
    /// Fleet API base URL (region specific).
    pub api_base_url: String,
    /// Token endpoint base URL.
    pub auth_base_url: String,
    /// OAuth client id.
    pub client_id: String,
    /// OAuth client secret.
    pub client_secret: String,
    /// Per-request timeout.
    #[serde(with = "humanize")]
    pub request_timeout: Duration,
}

/// `[sim]`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimConfig {
    /// Address the simulators listen on (each vendor under its own path prefix).
    pub listen: SocketAddr,
    /// Seed of the simulated world.
    pub seed: u64,
    /// Households in the synthetic fleet.
    pub fleet: usize,
    /// Time acceleration (1.0 = real time).
    pub speed: f64,
    /// Faults per vendor (world vendor names: tesla, enphase, huawei, solaredge, sma).
    #[serde(default)]
    pub faults: oemgate_sim::FaultConfig,
}

/// A configuration problem, as one line naming the key or the file.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(String);

impl Config {
    /// Loads defaults, then `file` if given, then `OEMGATE_SECTION__KEY` variables.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        Self::figment(file)
            .and_then(|f| f.extract::<Config>().map_err(describe))
            .and_then(Config::validate)
    }

    fn figment(file: Option<&Path>) -> Result<Figment, ConfigError> {
        let mut figment = Figment::from(Toml::string(DEFAULT_TOML));
        if let Some(path) = file {
            if !path.exists() {
                return Err(ConfigError(format!("config file {} does not exist", path.display())));
            }
            figment = figment.merge(Toml::file(path));
        }
        // Only double-underscore names are config keys; OEMGATE_DEMO_CLIENT_ID and friends
        // belong to the CLI.
        let env = Env::prefixed("OEMGATE_").filter(|key| key.as_str().contains("__")).split("__");
        Ok(figment.merge(env))
    }

    /// Extracts a config from an in-memory TOML document layered over the defaults (tests).
    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
        Figment::from(Toml::string(DEFAULT_TOML))
            .merge(Toml::string(text))
            .extract::<Config>()
            .map_err(describe)
            .and_then(Config::validate)
    }

    /// The built-in defaults.
    pub fn defaults() -> Result<Config, ConfigError> {
        Self::from_toml("")
    }

    fn validate(self) -> Result<Config, ConfigError> {
        let s = &self.scheduler;
        if !(0.0..=0.5).contains(&s.jitter) {
            return Err(ConfigError(format!(
                "scheduler.jitter must be between 0 and 0.5, got {}",
                s.jitter
            )));
        }
        if s.batch_size == 0 || s.max_in_flight == 0 {
            return Err(ConfigError(
                "scheduler.batch_size and scheduler.max_in_flight must be at least 1".into(),
            ));
        }
        if !(self.sim.speed.is_finite() && self.sim.speed > 0.0) {
            return Err(ConfigError(format!(
                "sim.speed must be a positive number, got {}",
                self.sim.speed
            )));
        }
        let e = &self.executor;
        if e.max_in_flight == 0 {
            return Err(ConfigError("executor.max_in_flight must be at least 1".into()));
        }
        if !(e.max_current_limit.is_finite() && e.max_current_limit > 0.0) {
            return Err(ConfigError(format!(
                "executor.max_current_limit must be a positive number, got {}",
                e.max_current_limit
            )));
        }
        if !(e.retry_budget.ratio.is_finite() && e.retry_budget.ratio >= 0.0) {
            return Err(ConfigError(format!(
                "executor.retry_budget.ratio must be a number of at least 0, got {}",
                e.retry_budget.ratio
            )));
        }
        if e.timeout.is_zero() || e.resend_interval.is_zero() || e.lease.is_zero() {
            return Err(ConfigError(
                "executor.timeout, executor.resend_interval and executor.lease must be longer than 0"
                    .into(),
            ));
        }
        let w = &self.webhooks;
        if w.concurrency == 0 {
            return Err(ConfigError("webhooks.concurrency must be at least 1".into()));
        }
        if w.timeout.is_zero() || w.retry_window.is_zero() || w.backoff_min.is_zero() {
            return Err(ConfigError(
                "webhooks.timeout, webhooks.retry_window and webhooks.backoff_min must be longer \
                 than 0"
                    .into(),
            ));
        }
        if w.backoff_max < w.backoff_min {
            return Err(ConfigError(
                "webhooks.backoff_max must be at least webhooks.backoff_min".into(),
            ));
        }
        let key = self.store.credential_key()?;
        if self.store.backend == Backend::Redis && key.is_none() {
            return Err(ConfigError(
                "store.encryption_key is required with the redis backend (vendor credentials \
                 are encrypted at rest); make one with `openssl rand -base64 32`"
                    .into(),
            ));
        }
        if self.store.backend == Backend::Redis && !self.store.redis_url.starts_with("redis") {
            return Err(ConfigError(format!(
                "store.redis_url must be a redis:// or rediss:// URL, got {:?}",
                self.store.redis_url
            )));
        }
        Ok(self)
    }
}

/// One line for the first figment error: what is wrong, with the key and where it came from.
fn describe(err: figment::Error) -> ConfigError {
    let first = err.into_iter().next();
    match first {
        Some(e) => {
            let key = if e.path.is_empty() {
                String::new()
            } else {
                format!(" (key `{}`)", e.path.join("."))
            };
            let source = e.metadata.as_ref().map(|m| {
                let from = e
                    .metadata
                    .as_ref()
                    .and_then(|m| m.source.as_ref())
                    .map(|s| format!(" {s}"))
                    .unwrap_or_default();
                format!(" in {}{from}", m.name)
            });
            ConfigError(format!(
                "invalid configuration: {}{key}{}",
                e.kind,
                source.unwrap_or_default()
            ))
        }
        None => ConfigError("invalid configuration".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_load_and_match_the_contract() {
        let config = Config::from_toml("").unwrap();
        assert_eq!(config.scheduler.delays, ContextDelays::default());
        assert_eq!(config.store.backend, Backend::Memory);
        assert_eq!(config.server.listen.to_string(), "127.0.0.1:8080");
        assert!(!config.webhooks.allow_insecure_loopback, "insecure loopback is opt-in");
        let dispatcher = config.webhooks.dispatcher();
        assert_eq!(dispatcher.retry_window, Duration::from_secs(24 * 3600));
        assert_eq!(config.webhooks.timeout, Duration::from_secs(5));
        assert!(Config::from_toml("[webhooks]\nconcurrency = 0\n").is_err());
        assert!(Config::from_toml("[webhooks]\nbackoff_max = \"1s\"\n").is_err());
    }

    #[test]
    fn unknown_key_is_named() {
        let err = Config::from_toml("[scheduler]\nchargin = \"2m\"\n").unwrap_err().to_string();
        assert!(err.contains("chargin"), "{err}");
        assert!(!err.contains('\n'), "{err}");
    }

    #[test]
    fn malformed_duration_is_named() {
        let err = Config::from_toml("[scheduler.delays]\ncharging = \"2 minutes\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("scheduler.delays.charging"), "{err}");
        assert!(err.contains("unknown unit"), "{err}");
    }

    #[test]
    fn executor_defaults_and_vendor_overrides() {
        let config = Config::from_toml("").unwrap();
        let executor = config.executor.executor(config.scheduler.delays.action_pending);
        assert_eq!(executor.defaults, VendorPolicy::default());
        assert_eq!(executor.confirm_poll, Duration::from_secs(10));
        assert_eq!(executor.policy("TESLA").timeout, Duration::from_secs(1800));
        let config = Config::from_toml(
            "[executor.vendors.tesla]\nresend_interval = \"6m\"\ntimeout = \"45m\"\n",
        )
        .unwrap();
        let executor = config.executor.executor(Duration::from_secs(10));
        assert_eq!(executor.policy("TESLA").resend_interval, Duration::from_secs(360));
        assert_eq!(executor.policy("TESLA").timeout, Duration::from_secs(2700));
        assert_eq!(executor.policy("ENPHASE").timeout, Duration::from_secs(1800));
        let err = Config::from_toml("[executor.vendors.tesla]\nresend = \"6m\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("resend"), "{err}");
        let err =
            Config::from_toml("[executor]\ntimeout = \"30 minutes\"\n").unwrap_err().to_string();
        assert!(err.contains("executor.timeout"), "{err}");
        assert!(
            Config::from_toml("[executor]\nmax_current_limit = -1.0\n")
                .unwrap_err()
                .to_string()
                .contains("executor.max_current_limit")
        );
    }

    #[test]
    fn out_of_range_values_are_rejected() {
        assert!(
            Config::from_toml("[scheduler]\njitter = 2.0\n")
                .unwrap_err()
                .to_string()
                .contains("scheduler.jitter")
        );
        assert!(
            Config::from_toml("[sim]\nspeed = 0.0\n")
                .unwrap_err()
                .to_string()
                .contains("sim.speed")
        );
    }
}
