//! oemgate-ecobee: the ecobee thermostat cloud adapter (HVAC), and a simulator of ecobee's
//! cloud (feature `sim`).
//!
//! [`EcobeeAdapter`] implements [`VendorAdapter`] and [`HvacApi`] against
//! `https://api.ecobee.com/1` (`/thermostatSummary`, `/thermostat`) and ecobee's PIN
//! authorization (`https://api.ecobee.com/authorize`, `/token`, without the version prefix).
//!
//! # Layout
//!
//! - [`client`]: HTTP (bearer token, per-request timeouts) and the classification of every
//!   ecobee failure into an [`ErrorKind`] (the table is in that module's docs): ecobee answers
//!   API errors with HTTP 500 and `{"status":{"code":N,"message":..}}`; code **14** is an
//!   expired token (`AuthExpired`), codes 1 and 16 invalid or revoked authorization
//!   (`Unauthorized`).
//! - [`model`]: ecobee's JSON (only the fields read; tolerant of anything extra) and the
//!   request bodies (selection, `setHold`, `resumeProgram`).
//! - [`map`]: pure functions from ecobee's JSON to the normalized [`oemgate_core::Hvac`], and
//!   from a permanent hold to ecobee's `setHold` ([`map::plan_permanent_hold`]); units, modes,
//!   holds, capabilities and interventions are documented there.
//! - `sim` (feature `sim`): `EcobeeSim`, ecobee's cloud as an axum router over
//!   `oemgate_sim::World`. It expects to be mounted under **`/ecobee`** of an
//!   `oemgate_sim::SimHost`; [`EcobeeConfig::for_base_url`] with
//!   `http://host/ecobee` points the adapter at it (API under `/ecobee/1`, authorization under
//!   `/ecobee`).
//!
//! # Linking and credentials
//!
//! ecobee's PIN flow: [`EcobeeAdapter::request_pin`] asks for a PIN
//! (`GET /authorize?response_type=ecobeePin&client_id=<API key>&scope=smartWrite`), the user
//! enters the PIN in the ecobee portal (My Apps), and [`EcobeeAdapter::exchange_pin`] turns
//! the code that came with the PIN into [`Credentials`]
//! (`POST /token?grant_type=ecobeePin&code=..&client_id=..`). Before the user entered the PIN
//! the exchange is `PreconditionFailed` (`authorization_pending`); an expired PIN is
//! `Unauthorized`. Access tokens last an hour; `POST /token?grant_type=refresh_token` returns a
//! new access **and refresh** token, and the adapter treats the old refresh token as spent
//! (reusing it is `Unauthorized`). `Credentials::extra["scope"]` keeps the granted scope
//! (`smartWrite`, or `smartRead` for a read-only link).
//!
//! # Reads and change detection
//!
//! A poll first reads the cheap `GET /1/thermostatSummary` (1 request) for the account, with
//! the equipment status. Its `revisionList` has one entry per thermostat,
//! `id:name:connected:thermostatRev:alertsRev:runtimeRev:intervalRev` (revisions are
//! `YYMMDDHHMMSS` strings, compared as strings). Only when a revision that feeds the
//! normalized resource changed since the last full read — the connected flag, the
//! thermostat revision (mode, holds, program, settings) or the runtime revision
//! (temperatures, setpoints, equipment) — does the adapter read the full thermostat
//! (`GET /1/thermostat`, selection `thermostats`, with runtime, settings, equipment status,
//! program and events: 1 more request). The alerts revision and the interval revision (new
//! 15-minute history data, which moves four times an hour) do not trigger a read.
//! [`VendorAdapter::poll_cost`] is therefore 2, and a poll reports 1 or 2 requests.
//!
//! The field order of the entries is **unconfirmed** (the reference says so). The adapter
//! verifies it on every full read: the thermostat object carries its own `thermostatRev` and
//! `runtime.runtimeRev`, and only when they equal the summary's third and fifth revision does
//! it rely on those positions. Until then (or if ecobee's order ever differed) it compares
//! all four revisions and the connected flag, so a change is never missed; the price is a
//! full read every 15 minutes.
//!
//! **The in-memory cache.** To serve an unchanged thermostat without the full read the adapter
//! keeps, per account and thermostat, the last full read, the revision entry it was taken at
//! and whether that read confirmed the field order. It holds no credentials (A4.1) and nothing that must survive a restart: an empty cache
//! (new process, another gateway instance, evicted entry) only costs one full read. It is
//! bounded ([`CACHE_CAPACITY`] thermostats; the oldest entry goes first). A cached read is
//! always combined with the fresh summary: connectivity and the running equipment
//! (`isReachable`, `isActive`) come from the summary, the rest from the thermostat as of its
//! unchanged revisions. Commands also use the cached read, for the current setpoints and the
//! thermostat's setpoint ranges (below). [`EcobeeAdapter::forget_account`] drops an account's
//! entries.
//!
//! [`VendorAdapter::poll_batch`] reads the summary once for all thermostats of the account and
//! the changed ones together (up to 25 per request, ecobee's limit per selection); the summary
//! is counted on the first observation, each full read on the first thermostat it served.
//!
//! # Commands
//!
//! `POST /1/thermostat?format=json` with a `thermostats` selection of the one thermostat:
//! - permanent hold: `thermostat.settings.hvacMode` (`heat`, `cool`, `auto`, `off`) plus, except
//!   for `OFF`, the function `setHold` with `holdType: indefinite` and both `heatHoldTemp` and
//!   `coolHoldTemp` in tenths of °F (ecobee requires both; ecobee runs the functions first,
//!   then applies the settings, in one request);
//! - follow schedule: the function `resumeProgram` with `resumeAll: true` (cancels every
//!   stacked hold, not only the latest).
//!
//! Arguments are checked before any request (`Rejected`): finite, within the thermostat's
//! setpoint ranges (known from the last full read, else 40–95 °F), and the cool setpoint at
//! least `heatCoolMinDelta` above the heat setpoint. A mode the thermostat's equipment cannot
//! run (known from the last full read) and any command on an account linked read-only are
//! `Unsupported` before any request. See [`map::plan_permanent_hold`] for the setpoint the mode
//! does not use.
//!
//! # Limits
//!
//! ecobee publishes no numeric quotas; its guidance is to poll no more often than every
//! **3 minutes** ([`MIN_POLL_INTERVAL`]). [`VendorAdapter::limits`] declares that per linked
//! account ([`QuotaScope::Account`], as the summary covers the whole account):
//! - 2 requests per minute with a burst of 2 (one poll, summary plus full read, back to back;
//!   the burst must cover [`POLL_COST`] or the scheduler could never admit a poll);
//! - a daily quota of 960 requests per account: one 2-request poll every 3 minutes for a day,
//!   which the scheduler paces evenly (ecobee has no daily quota as such: this is the 3-minute
//!   guidance expressed in the one unit the limits have for a long-run pace);
//! - one request at a time per account; no pricing (ecobee does not bill).
//!
//! # Quirks, and decisions where the reference says "unconfirmed"
//!
//! - Every temperature is an integer in tenths of °F; oemgate reports °C ([`map`]).
//! - Token expiry is HTTP 500 with status 14, not a 401; a 2xx with a non-zero status code is
//!   treated as that error too.
//! - The field order of the revision entries is unconfirmed: the adapter checks it against
//!   each full read and falls back to comparing every revision (see above).
//! - Refresh-token lifetime is unconfirmed: an expired refresh token is refused like a spent
//!   one (`invalid_grant`, `Unauthorized`) and the user links again.
//! - Whether ecobee invalidates the old refresh token on refresh is unconfirmed; the adapter
//!   always stores the new one and the simulator spends the old one (the stricter behaviour).
//! - ecobee's throttling answer is unpublished: the adapter reads a 429 (with `Retry-After`) or
//!   any status whose message says "too many requests" as `RateLimited`.
//! - A command for a disconnected thermostat: ecobee's answer is unpublished; a status 3
//!   "Processing error" that says the thermostat is not connected is `DeviceOffline`.
//! - The Auth0 web flow pyecobee also supports is not implemented: the PIN flow is ecobee's
//!   documented one for API-key applications.

pub mod client;
pub mod map;
pub mod model;
#[cfg(feature = "sim")]
pub mod sim;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use oemgate_core::{
    AccountRef, AdapterError, AdapterResult, Clock, CommandReceipt, Credentials, DailyQuota,
    DeviceRef, DeviceState, DiscoveredDevice, ErrorKind, HvacApi, HvacMode, Observation,
    QuotaScope, VendorAdapter, VendorInfo, VendorLimits, VendorType,
};

pub use client::{EcobeeApiError, api_error_of};
use client::{EcobeeClient, VENDOR};
use map::{HoldRefusal, Live};
use model::{
    Function, MAX_SELECTION, Revision, Selection, SettingsUpdate, Thermostat, ThermostatRequest,
    ThermostatResponse, ThermostatSummary, ThermostatUpdate, TokenResponse, UpdateRequest,
};

/// The API base URL (`/1`).
pub const API_BASE_URL: &str = "https://api.ecobee.com/1";
/// The host of `/authorize` and `/token` (no version prefix).
pub const AUTH_BASE_URL: &str = "https://api.ecobee.com";
/// The key in [`Credentials::extra`] that holds the granted scope (not a secret).
pub const EXTRA_SCOPE: &str = "scope";
/// ecobee's guidance: poll a thermostat no more often than this.
pub const MIN_POLL_INTERVAL: Duration = Duration::from_secs(3 * 60);
/// The most requests one poll costs: the summary plus the full read.
pub const POLL_COST: u32 = 2;
/// The most thermostats the read cache holds (per adapter, over all accounts).
pub const CACHE_CAPACITY: usize = 10_000;
/// The longest access-token lifetime believed (ecobee says an hour).
const MAX_TOKEN_LIFETIME_SECS: i64 = 10 * 365 * 86_400;

const DEVICE_TYPES: &[VendorType] = &[VendorType::Hvac];

/// The limits the adapter declares (see the crate docs).
pub const DECLARED_LIMITS: VendorLimits = VendorLimits {
    requests_per_minute: 2,
    burst: POLL_COST,
    rate_scope: QuotaScope::Account,
    daily_quota: Some(DailyQuota { requests: 960, per: QuotaScope::Account }),
    max_concurrent: 1,
    pricing: None,
};

/// The scope an application asks for when it requests a PIN.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum EcobeeScope {
    /// Read-only access.
    SmartRead,
    /// Read and write access (holds, modes, programs).
    #[default]
    SmartWrite,
    /// Energy-management (utility) thermostats.
    Ems,
}

impl EcobeeScope {
    /// ecobee's spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            EcobeeScope::SmartRead => "smartRead",
            EcobeeScope::SmartWrite => "smartWrite",
            EcobeeScope::Ems => "ems",
        }
    }
}

/// Where the adapter finds ecobee and who it is there.
#[derive(Clone)]
pub struct EcobeeConfig {
    /// The API base URL, ending in `/1`.
    pub api_base_url: String,
    /// The base URL of `/authorize` and `/token`.
    pub auth_base_url: String,
    /// The application's API key (ecobee's `client_id`).
    pub api_key: String,
    /// The scope asked for when requesting a PIN.
    pub scope: EcobeeScope,
    /// Timeout of one HTTP request, connection included.
    pub request_timeout: Duration,
}

impl EcobeeConfig {
    /// Production URLs for the application with `api_key`, asking for `smartWrite`.
    pub fn new(api_key: impl Into<String>) -> Self {
        Self {
            api_base_url: API_BASE_URL.to_owned(),
            auth_base_url: AUTH_BASE_URL.to_owned(),
            api_key: api_key.into(),
            scope: EcobeeScope::SmartWrite,
            request_timeout: Duration::from_secs(30),
        }
    }

    /// These settings against a simulator mounted at `base` (`http://127.0.0.1:port/ecobee`).
    pub fn for_base_url(mut self, base: &str) -> Self {
        let base = base.trim_end_matches('/');
        self.api_base_url = format!("{base}/1");
        self.auth_base_url = base.to_owned();
        self
    }
}

impl fmt::Debug for EcobeeConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EcobeeConfig")
            .field("api_base_url", &self.api_base_url)
            .field("auth_base_url", &self.auth_base_url)
            .field("api_key", &"<redacted>")
            .field("scope", &self.scope)
            .field("request_timeout", &self.request_timeout)
            .finish()
    }
}

/// A PIN to show the user, and the code to exchange once they entered it.
#[derive(Clone, PartialEq, Eq)]
pub struct EcobeePin {
    /// What the user enters in the ecobee portal (My Apps → Add application).
    pub pin: String,
    /// The authorization code for [`EcobeeAdapter::exchange_pin`].
    pub code: String,
    /// The scope asked for.
    pub scope: Option<String>,
    /// When the PIN stops working.
    pub expires_at: Option<DateTime<Utc>>,
    /// How often ecobee allows trying the exchange.
    pub interval: Option<Duration>,
}

impl fmt::Debug for EcobeePin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EcobeePin")
            .field("pin", &self.pin)
            .field("code", &"<redacted>")
            .field("scope", &self.scope)
            .field("expires_at", &self.expires_at)
            .field("interval", &self.interval)
            .finish()
    }
}

/// The last full read of one thermostat and the revision entry it was taken at.
#[derive(Clone, Debug)]
struct CachedRead {
    revision: Revision,
    /// The read's own `thermostatRev` and `runtime.runtimeRev` equal the summary entry's
    /// third and fifth revision: ecobee's documented field order holds for this thermostat.
    order_confirmed: bool,
    thermostat: Thermostat,
    stored_at: DateTime<Utc>,
}

impl CachedRead {
    fn new(revision: Revision, thermostat: Thermostat, stored_at: DateTime<Utc>) -> Self {
        let order_confirmed = order_confirmed(&revision, &thermostat);
        Self { revision, order_confirmed, thermostat, stored_at }
    }
}

/// Whether a full read confirms the summary's field order: its own revisions are the ones
/// at the documented positions.
fn order_confirmed(revision: &Revision, thermostat: &Thermostat) -> bool {
    let runtime_rev = thermostat.runtime.as_ref().and_then(|r| r.runtime_rev.as_deref());
    thermostat.thermostat_rev.as_deref() == Some(revision.thermostat_rev.as_str())
        && runtime_rev == Some(revision.runtime_rev.as_str())
}

/// Whether a thermostat must be read in full, given its cached read and the summary's entry
/// now: when the connected flag, the thermostat revision or the runtime revision changed (the
/// alerts and the 15-minute interval data do not feed the normalized resource) — or, until a
/// full read confirmed the field order, when any revision changed.
fn needs_full_read(cached: &CachedRead, now: &Revision) -> bool {
    if cached.order_confirmed {
        cached.revision.connected != now.connected
            || cached.revision.thermostat_rev != now.thermostat_rev
            || cached.revision.runtime_rev != now.runtime_rev
    } else {
        cached.revision.key() != now.key()
    }
}

/// The bounded read cache, keyed by `(account_id, identifier)`.
#[derive(Debug, Default)]
struct ReadCache {
    entries: HashMap<(String, String), CachedRead>,
}

impl ReadCache {
    fn fresh(&self, account: &str, revision: &Revision) -> Option<Thermostat> {
        self.entries
            .get(&(account.to_owned(), revision.identifier.clone()))
            .filter(|c| !needs_full_read(c, revision))
            .map(|c| c.thermostat.clone())
    }

    fn latest(&self, account: &str, id: &str) -> Option<Thermostat> {
        self.entries.get(&(account.to_owned(), id.to_owned())).map(|c| c.thermostat.clone())
    }

    fn put(&mut self, account: &str, read: CachedRead) {
        let key = (account.to_owned(), read.thermostat.identifier.clone());
        if !self.entries.contains_key(&key) && self.entries.len() >= CACHE_CAPACITY {
            let oldest =
                self.entries.iter().min_by_key(|(_, c)| c.stored_at).map(|(k, _)| k.clone());
            if let Some(oldest) = oldest {
                self.entries.remove(&oldest);
            }
        }
        self.entries.insert(key, read);
    }
}

/// The ecobee adapter. See the [crate docs](crate).
pub struct EcobeeAdapter {
    config: EcobeeConfig,
    client: EcobeeClient,
    clock: Arc<dyn Clock>,
    info: VendorInfo,
    cache: Mutex<ReadCache>,
}

impl fmt::Debug for EcobeeAdapter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EcobeeAdapter").field("config", &self.config).finish_non_exhaustive()
    }
}

fn copy_error(e: &AdapterError) -> AdapterError {
    let mut copy = AdapterError::new(e.kind(), e.vendor(), e.message().to_owned());
    if let Some(after) = e.retry_after() {
        copy = copy.with_retry_after(after);
    }
    copy
}

/// Fails every member with `e`: the first gets the error itself (with its source), the others
/// copies.
fn fail_members(
    out: &mut [Option<AdapterResult<Observation>>],
    members: &[usize],
    e: AdapterError,
) {
    let copy = copy_error(&e);
    let mut original = Some(e);
    for &i in members {
        out[i] = Some(Err(original.take().unwrap_or_else(|| copy_error(&copy))));
    }
}

fn unsupported_type(device: &DeviceRef, what: &str) -> AdapterError {
    AdapterError::new(
        ErrorKind::Unsupported,
        VENDOR,
        format!("{what} is not supported for device type {}", device.device_type),
    )
}

/// ecobee identifiers are serial numbers; anything that could break a selection is refused.
fn identifier(device: &DeviceRef) -> AdapterResult<&str> {
    let id = device.vendor_id.trim();
    let valid = !id.is_empty()
        && id.len() <= 64
        && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if valid {
        Ok(id)
    } else {
        Err(AdapterError::new(
            ErrorKind::NotFound,
            VENDOR,
            format!("{:?} is not an ecobee thermostat identifier", device.vendor_id),
        ))
    }
}

/// What a poll has once the summary is read.
#[derive(Clone, Copy)]
struct Polled<'a> {
    account: &'a AccountRef,
    token: &'a str,
    summary: &'a SummaryView,
    devices: &'a [&'a DeviceRef],
}

/// The summary's entries by identifier, and the equipment status per identifier.
struct SummaryView {
    revisions: Vec<Revision>,
    status: BTreeMap<String, String>,
}

impl SummaryView {
    fn of(summary: ThermostatSummary) -> AdapterResult<Self> {
        let mut revisions = Vec::with_capacity(summary.revision_list.len());
        for (i, line) in summary.revision_list.iter().enumerate() {
            let Some(r) = Revision::parse(line) else {
                return Err(AdapterError::new(
                    ErrorKind::Protocol,
                    VENDOR,
                    format!(
                        "thermostatSummary: revisionList entry {i} is not id:name:connected:revisions"
                    ),
                ));
            };
            revisions.push(r);
        }
        let status = summary
            .status_list
            .unwrap_or_default()
            .iter()
            .filter_map(|l| model::parse_status_line(l))
            .map(|(id, s)| (id.to_owned(), s.to_owned()))
            .collect();
        Ok(Self { revisions, status })
    }

    fn revision(&self, id: &str) -> Option<&Revision> {
        self.revisions.iter().find(|r| r.identifier == id)
    }
}

impl EcobeeAdapter {
    /// An adapter with its own HTTP client. `clock` stamps observations and computes
    /// credential expiry.
    pub fn new(config: EcobeeConfig, clock: Arc<dyn Clock>) -> Self {
        let connect = config.request_timeout.min(Duration::from_secs(10));
        let http = reqwest::Client::builder()
            .connect_timeout(connect)
            .user_agent(concat!("oemgate-ecobee/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default();
        Self::with_http_client(config, clock, http)
    }

    /// An adapter sharing an existing HTTP client (connection pool). The per-request timeout
    /// of `config` still applies.
    pub fn with_http_client(
        config: EcobeeConfig,
        clock: Arc<dyn Clock>,
        http: reqwest::Client,
    ) -> Self {
        let client = EcobeeClient::new(
            http,
            &config.api_base_url,
            &config.auth_base_url,
            &config.api_key,
            config.request_timeout,
            clock.clone(),
        );
        let info = VendorInfo { name: VENDOR, display_name: "ecobee", device_types: DEVICE_TYPES };
        Self { config, client, clock, info, cache: Mutex::new(ReadCache::default()) }
    }

    /// The configuration.
    pub fn config(&self) -> &EcobeeConfig {
        &self.config
    }

    fn cache(&self) -> MutexGuard<'_, ReadCache> {
        // The cache is only ever replaced entry by entry; a poisoned one is still consistent.
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How many thermostats the read cache holds.
    pub fn cached_reads(&self) -> usize {
        self.cache().entries.len()
    }

    /// Drops the cached reads of an account (e.g. when it is unlinked).
    pub fn forget_account(&self, account_id: &str) {
        self.cache().entries.retain(|(a, _), _| a != account_id);
    }

    /// Step one of linking: asks ecobee for a PIN the user enters in the ecobee portal.
    pub async fn request_pin(&self) -> AdapterResult<EcobeePin> {
        let pin = self.client.authorize(self.config.scope.as_str()).await?;
        let now = self.clock.now();
        Ok(EcobeePin {
            pin: pin.ecobee_pin,
            code: pin.code,
            scope: pin.scope,
            expires_at: pin
                .expires_in
                .filter(|m| (0..=100_000).contains(m))
                .and_then(chrono::Duration::try_minutes)
                .map(|d| now + d),
            interval: pin.interval.and_then(|s| u64::try_from(s).ok()).map(Duration::from_secs),
        })
    }

    /// Step two of linking: once the user entered the PIN, exchanges its code for
    /// credentials. Before that it is `PreconditionFailed` (`authorization_pending`); with an
    /// expired PIN `Unauthorized`.
    pub async fn exchange_pin(&self, code: &str) -> AdapterResult<Credentials> {
        let grant = [("grant_type", "ecobeePin"), ("code", code)];
        let token = self.client.token(&grant, "ecobeePin exchange").await?;
        Ok(self.credentials_from(token, None, BTreeMap::new()))
    }

    fn credentials_from(
        &self,
        token: TokenResponse,
        old_refresh: Option<&str>,
        mut extra: BTreeMap<String, String>,
    ) -> Credentials {
        let now = self.clock.now();
        let expires_at = token
            .expires_in
            .filter(|s| *s >= 0)
            .and_then(|s| chrono::Duration::try_seconds(s.min(MAX_TOKEN_LIFETIME_SECS)))
            .map(|d| now + d);
        if let Some(scope) = token.scope.filter(|s| !s.trim().is_empty()) {
            extra.insert(EXTRA_SCOPE.to_owned(), scope);
        }
        Credentials {
            access_token: token.access_token,
            refresh_token: token
                .refresh_token
                .filter(|t| !t.trim().is_empty())
                .or_else(|| old_refresh.map(str::to_owned)),
            expires_at,
            extra,
        }
    }

    /// The bearer token, or `AuthExpired` without a request when it is known to be expired.
    fn bearer<'a>(&self, account: &'a AccountRef) -> AdapterResult<&'a str> {
        account.credentials.bearer(VENDOR, self.clock.now())
    }

    fn can_write(account: &AccountRef) -> bool {
        map::can_write(account.credentials.extra.get(EXTRA_SCOPE).map(String::as_str))
    }

    async fn summary(&self, token: &str) -> AdapterResult<SummaryView> {
        let request = ThermostatRequest {
            selection: Selection { include_equipment_status: true, ..Selection::registered() },
        };
        let summary: ThermostatSummary =
            self.client.read(token, "/thermostatSummary", &request, "thermostatSummary").await?;
        SummaryView::of(summary)
    }

    async fn full_read(&self, token: &str, ids: &[&str]) -> AdapterResult<Vec<Thermostat>> {
        let request = ThermostatRequest { selection: Selection::thermostats(ids).with_full_read() };
        let answer: ThermostatResponse =
            self.client.read(token, "/thermostat", &request, "thermostat").await?;
        Ok(answer.thermostat_list)
    }

    /// Polls thermostats of one account: one summary, then one full read per 25 thermostats
    /// whose revisions changed. One result per device, in order; requests are counted on the
    /// first observation each served (see the crate docs).
    async fn poll_many(
        &self,
        account: &AccountRef,
        devices: &[&DeviceRef],
    ) -> Vec<AdapterResult<Observation>> {
        let mut out: Vec<Option<AdapterResult<Observation>>> =
            devices.iter().map(|_| None).collect();
        let mut wanted: Vec<(usize, &str)> = Vec::new();
        for (i, device) in devices.iter().enumerate() {
            if device.device_type != VendorType::Hvac {
                out[i] = Some(Err(unsupported_type(device, "read")));
                continue;
            }
            match identifier(device) {
                Ok(id) => wanted.push((i, id)),
                Err(e) => out[i] = Some(Err(e)),
            }
        }
        let members: Vec<usize> = wanted.iter().map(|(i, _)| *i).collect();
        if !wanted.is_empty() {
            match self.bearer(account) {
                Err(e) => fail_members(&mut out, &members, e),
                Ok(token) => match self.summary(token).await {
                    Err(e) => fail_members(&mut out, &members, e),
                    Ok(summary) => {
                        let polled = Polled { account, token, summary: &summary, devices };
                        self.poll_with_summary(polled, &wanted, &mut out).await;
                    }
                },
            }
        }
        out.into_iter()
            .map(|r| {
                r.unwrap_or_else(|| {
                    Err(AdapterError::new(ErrorKind::Protocol, VENDOR, "thermostat was not read"))
                })
            })
            .collect()
    }

    async fn poll_with_summary(
        &self,
        polled: Polled<'_>,
        wanted: &[(usize, &str)],
        out: &mut [Option<AdapterResult<Observation>>],
    ) {
        let Polled { account, token, summary, devices } = polled;
        let account_id = account.account_id.as_str();
        // What each found thermostat maps from, and which need a full read.
        let mut found: Vec<(usize, &Revision, Option<Thermostat>)> = Vec::new();
        for &(i, id) in wanted {
            match summary.revision(id) {
                None => {
                    out[i] = Some(Err(AdapterError::new(
                        ErrorKind::NotFound,
                        VENDOR,
                        format!("thermostat {id} is not on the account"),
                    )));
                }
                Some(rev) => {
                    let cached = self.cache().fresh(account_id, rev);
                    found.push((i, rev, cached));
                }
            }
        }
        // One request per chunk of changed thermostats; the summary is the first claim.
        let mut claims: Vec<(u32, Vec<usize>)> = vec![(1, found.iter().map(|f| f.0).collect())];
        let stale: Vec<usize> = (0..found.len()).filter(|k| found[*k].2.is_none()).collect();
        let mut failure: Option<AdapterError> = None;
        for chunk in stale.chunks(MAX_SELECTION) {
            let indices: Vec<usize> = chunk.iter().map(|k| found[*k].0).collect();
            if let Some(e) = &failure {
                for &i in &indices {
                    out[i] = Some(Err(copy_error(e)));
                }
                continue;
            }
            let ids: Vec<&str> = chunk.iter().map(|k| found[*k].1.identifier.as_str()).collect();
            claims.push((1, indices.clone()));
            match self.full_read(token, &ids).await {
                Err(e) => {
                    failure = Some(copy_error(&e));
                    fail_members(out, &indices, e);
                }
                Ok(list) => {
                    let now = self.clock.now();
                    for &k in chunk {
                        let (i, rev) = (found[k].0, found[k].1);
                        match list.iter().find(|t| t.identifier == rev.identifier) {
                            Some(t) => {
                                let read = CachedRead::new(rev.clone(), t.clone(), now);
                                self.cache().put(account_id, read);
                                found[k].2 = Some(t.clone());
                            }
                            None => {
                                out[i] = Some(Err(AdapterError::new(
                                    ErrorKind::NotFound,
                                    VENDOR,
                                    format!(
                                        "thermostat {}: the read did not return it",
                                        rev.identifier
                                    ),
                                )));
                            }
                        }
                    }
                }
            }
        }
        let now = self.clock.now();
        let can_write = Self::can_write(account);
        for (i, rev, thermostat) in &found {
            let Some(thermostat) = thermostat else { continue };
            if out[*i].is_some() {
                continue;
            }
            let live = Live {
                connected: Some(rev.connected),
                equipment_status: summary.status.get(&rev.identifier).map(String::as_str),
            };
            out[*i] = Some(Ok(Observation {
                state: DeviceState::Hvac(Box::new(map::hvac_from_thermostat(
                    devices[*i],
                    thermostat,
                    live,
                    can_write,
                    now,
                ))),
                observed_at: now,
                asleep: false,
                requests: 0,
            }));
        }
        // Count every request sent on an observation: on the first one it served, else on the
        // first successful one.
        let first_ok = out.iter().position(|r| matches!(r, Some(Ok(_))));
        for (count, members) in claims {
            let target =
                members.iter().copied().find(|&i| matches!(out[i], Some(Ok(_)))).or(first_ok);
            if let Some(Some(Ok(obs))) = target.and_then(|t| out.get_mut(t)) {
                obs.requests += count;
            }
        }
    }

    async fn update(
        &self,
        account: &AccountRef,
        device: &DeviceRef,
        plan: impl FnOnce(Option<&Thermostat>) -> AdapterResult<UpdateRequest>,
        what: &str,
    ) -> AdapterResult<CommandReceipt> {
        if device.device_type != VendorType::Hvac {
            return Err(unsupported_type(device, what));
        }
        let id = identifier(device)?;
        if !Self::can_write(account) {
            return Err(AdapterError::new(
                ErrorKind::Unsupported,
                VENDOR,
                format!("{what}: the account was linked read-only (smartRead)"),
            ));
        }
        let known = self.cache().latest(&account.account_id, id);
        let update = plan(known.as_ref())?;
        let token = self.bearer(account)?;
        self.client.update(token, &update, what).await?;
        tracing::debug!(target: "oemgate_ecobee", thermostat = id, what, "update accepted");
        Ok(CommandReceipt { vendor_action_id: None, requests: 1 })
    }
}

#[async_trait]
impl VendorAdapter for EcobeeAdapter {
    fn info(&self) -> &VendorInfo {
        &self.info
    }

    /// See the crate docs: ecobee's 3-minute guidance per account.
    fn limits(&self) -> VendorLimits {
        DECLARED_LIMITS
    }

    fn poll_cost(&self, device_type: VendorType) -> u32 {
        if device_type == VendorType::Hvac { POLL_COST } else { 1 }
    }

    async fn refresh_credentials(&self, account: &AccountRef) -> AdapterResult<Credentials> {
        let Some(refresh) = account.credentials.refresh_token.as_deref().filter(|t| !t.is_empty())
        else {
            return Err(AdapterError::new(
                ErrorKind::Unauthorized,
                VENDOR,
                "no refresh token; the user must link the account again",
            ));
        };
        let grant = [("grant_type", "refresh_token"), ("refresh_token", refresh)];
        let token = self.client.token(&grant, "token refresh").await?;
        Ok(self.credentials_from(token, Some(refresh), account.credentials.extra.clone()))
    }

    /// `GET /1/thermostatSummary`: every thermostat registered to the user.
    async fn discover(&self, account: &AccountRef) -> AdapterResult<Vec<DiscoveredDevice>> {
        let token = self.bearer(account)?;
        let summary = self.summary(token).await?;
        Ok(map::discovered_devices(&summary.revisions))
    }

    fn hvacs(&self) -> Option<&dyn HvacApi> {
        Some(self)
    }

    /// One summary for all of the account's thermostats, and one full read per 25 changed
    /// ones (see the crate docs).
    async fn poll_batch(
        &self,
        account: &AccountRef,
        devices: &[DeviceRef],
    ) -> Vec<AdapterResult<Observation>> {
        let refs: Vec<&DeviceRef> = devices.iter().collect();
        self.poll_many(account, &refs).await
    }
}

#[async_trait]
impl HvacApi for EcobeeAdapter {
    /// `thermostatSummary`, and the full thermostat when its revisions changed.
    async fn read_hvac(
        &self,
        account: &AccountRef,
        device: &DeviceRef,
    ) -> AdapterResult<Observation> {
        self.poll_many(account, &[device]).await.pop().unwrap_or_else(|| {
            Err(AdapterError::new(ErrorKind::Protocol, VENDOR, "read produced no result"))
        })
    }

    /// `settings.hvacMode` plus an `indefinite` `setHold` (none for `OFF`).
    async fn set_permanent_hold(
        &self,
        account: &AccountRef,
        device: &DeviceRef,
        mode: HvacMode,
        heat_setpoint: Option<f64>,
        cool_setpoint: Option<f64>,
    ) -> AdapterResult<CommandReceipt> {
        let id = device.vendor_id.trim().to_owned();
        let plan = |known: Option<&Thermostat>| {
            let plan = map::plan_permanent_hold(mode, heat_setpoint, cool_setpoint, known)
                .map_err(|refusal| match refusal {
                    HoldRefusal::Invalid(why) => AdapterError::new(
                        ErrorKind::Rejected,
                        VENDOR,
                        format!("permanent hold: {why}"),
                    ),
                    HoldRefusal::ModeNotCapable(why) => AdapterError::new(
                        ErrorKind::Unsupported,
                        VENDOR,
                        format!("permanent hold: {why}"),
                    ),
                })?;
            Ok(UpdateRequest {
                selection: Selection::thermostats(&[id.as_str()]),
                functions: plan
                    .hold
                    .map(|(heat, cool)| vec![Function::set_indefinite_hold(heat, cool)])
                    .unwrap_or_default(),
                thermostat: Some(ThermostatUpdate {
                    settings: Some(SettingsUpdate { hvac_mode: Some(plan.hvac_mode.to_owned()) }),
                }),
            })
        };
        self.update(account, device, plan, "setHold").await
    }

    /// `resumeProgram` with `resumeAll: true`.
    async fn follow_schedule(
        &self,
        account: &AccountRef,
        device: &DeviceRef,
    ) -> AdapterResult<CommandReceipt> {
        let id = device.vendor_id.trim().to_owned();
        let plan = |_: Option<&Thermostat>| {
            Ok(UpdateRequest {
                selection: Selection::thermostats(&[id.as_str()]),
                functions: vec![Function::resume_program(true)],
                thermostat: None,
            })
        };
        self.update(account, device, plan, "resumeProgram").await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oemgate_core::{Command, ManualClock};

    fn adapter() -> EcobeeAdapter {
        // Port 9 (discard) on localhost: any request that got out would fail as Transient.
        let config = EcobeeConfig::new("k3y-value").for_base_url("http://127.0.0.1:9");
        let clock = Arc::new(ManualClock::new(chrono::DateTime::UNIX_EPOCH));
        EcobeeAdapter::new(config, clock)
    }

    fn account() -> AccountRef {
        AccountRef {
            user_id: "u".into(),
            vendor: VENDOR.into(),
            account_id: "a".into(),
            credentials: Credentials { access_token: "t".into(), ..Default::default() },
        }
    }

    fn device(device_type: VendorType, id: &str) -> DeviceRef {
        DeviceRef {
            id: "d".into(),
            user_id: "u".into(),
            device_type,
            vendor_id: id.into(),
            site_id: None,
        }
    }

    fn revision(connected: bool, revs: [&str; 4]) -> Revision {
        Revision {
            identifier: "1".into(),
            name: "n".into(),
            connected,
            thermostat_rev: revs[0].into(),
            alerts_rev: revs[1].into(),
            runtime_rev: revs[2].into(),
            interval_rev: revs[3].into(),
        }
    }

    fn thermostat(thermostat_rev: Option<&str>, runtime_rev: Option<&str>) -> Thermostat {
        let json = serde_json::json!({
            "identifier": "1",
            "thermostatRev": thermostat_rev,
            "runtime": { "runtimeRev": runtime_rev },
        });
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn serves_hvac_only() {
        let a = adapter();
        assert_eq!(a.info().name, "ECOBEE");
        assert_eq!(a.info().device_types, DEVICE_TYPES);
        assert!(a.hvacs().is_some() && a.chargers().is_none() && a.vehicles().is_none());
        assert_eq!(a.poll_cost(VendorType::Hvac), 2);
    }

    #[test]
    fn limits_express_the_three_minute_guidance() {
        let l = adapter().limits();
        assert_eq!(l.rate_scope, QuotaScope::Account);
        assert!(l.burst >= POLL_COST && l.burst <= l.requests_per_minute);
        let daily = l.daily_quota.unwrap();
        assert_eq!(daily.per, QuotaScope::Account);
        let polls_per_day = 86_400 / MIN_POLL_INTERVAL.as_secs();
        assert_eq!(u64::from(daily.requests), polls_per_day * u64::from(POLL_COST));
        assert!(l.pricing.is_none());
    }

    #[test]
    fn confirmed_order_ignores_alerts_and_interval_revisions() {
        let at = revision(true, ["t1", "a1", "r1", "i1"]);
        let confirmed = CachedRead::new(at.clone(), thermostat(Some("t1"), Some("r1")), Utc::now());
        assert!(confirmed.order_confirmed);
        assert!(!needs_full_read(&confirmed, &revision(true, ["t1", "a2", "r1", "i2"])));
        assert!(needs_full_read(&confirmed, &revision(true, ["t2", "a1", "r1", "i1"])));
        assert!(needs_full_read(&confirmed, &revision(true, ["t1", "a1", "r2", "i1"])));
        assert!(needs_full_read(&confirmed, &revision(false, ["t1", "a1", "r1", "i1"])));
        // A read that does not carry matching revisions does not confirm the order: every
        // revision counts.
        for t in [thermostat(None, None), thermostat(Some("r1"), Some("t1"))] {
            let unconfirmed = CachedRead::new(at.clone(), t, Utc::now());
            assert!(!unconfirmed.order_confirmed);
            assert!(!needs_full_read(&unconfirmed, &at));
            assert!(needs_full_read(&unconfirmed, &revision(true, ["t1", "a1", "r1", "i2"])));
        }
    }

    #[test]
    fn the_cache_is_bounded() {
        let mut cache = ReadCache::default();
        let t0 = chrono::DateTime::UNIX_EPOCH;
        for n in 0..=CACHE_CAPACITY {
            let mut t = thermostat(None, None);
            t.identifier = n.to_string();
            let at = t0 + chrono::Duration::seconds(i64::try_from(n).unwrap());
            cache.put("a", CachedRead::new(revision(true, ["1", "1", "1", "1"]), t, at));
        }
        assert_eq!(cache.entries.len(), CACHE_CAPACITY);
        assert!(cache.latest("a", "0").is_none(), "the oldest went first");
        assert!(cache.latest("a", &CACHE_CAPACITY.to_string()).is_some());
    }

    #[tokio::test]
    async fn refusals_before_any_request() {
        let a = adapter();
        let hvac = device(VendorType::Hvac, "311000000001");
        let charger = device(VendorType::Charger, "1");
        let e = a.execute(&account(), &charger, &Command::StartCharging).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unsupported);
        let e = a.execute(&account(), &hvac, &Command::StartCharging).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unsupported);
        let e = a.poll(&account(), &device(VendorType::Hvac, "../x")).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound);
        let hold = Command::SetPermanentHold {
            mode: HvacMode::Heat,
            heat_setpoint: Some(f64::INFINITY),
            cool_setpoint: None,
        };
        assert_eq!(
            a.execute(&account(), &hvac, &hold).await.unwrap_err().kind(),
            ErrorKind::Rejected
        );
        let mut read_only = account();
        read_only.credentials.extra.insert(EXTRA_SCOPE.into(), "smartRead".into());
        let e = a.execute(&read_only, &hvac, &Command::FollowSchedule).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unsupported);
        let mut expired = account();
        expired.credentials.expires_at = Some(chrono::DateTime::UNIX_EPOCH);
        assert_eq!(a.poll(&expired, &hvac).await.unwrap_err().kind(), ErrorKind::AuthExpired);
        assert_eq!(a.discover(&expired).await.unwrap_err().kind(), ErrorKind::AuthExpired);
        let e = a.execute(&expired, &hvac, &Command::FollowSchedule).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::AuthExpired);
        let batch = a.poll_batch(&expired, &[hvac.clone(), device(VendorType::Hvac, "2")]).await;
        assert!(
            batch.iter().all(|r| r.as_ref().is_err_and(|e| e.kind() == ErrorKind::AuthExpired))
        );
        let mut no_token = account();
        no_token.credentials.access_token.clear();
        assert_eq!(a.poll(&no_token, &hvac).await.unwrap_err().kind(), ErrorKind::Unauthorized);
        let e = a.refresh_credentials(&account()).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unauthorized, "no refresh token");
        // A request that does go out fails as Transient (nothing listens on port 9).
        let e = a.poll(&account(), &hvac).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Transient);
    }

    #[test]
    fn debug_redacts_secrets() {
        let config = EcobeeConfig::new("k3y-value");
        assert!(!format!("{config:?}").contains("k3y-value"));
        assert!(!format!("{:?}", adapter()).contains("k3y-value"));
        let pin = EcobeePin {
            pin: "ab12".into(),
            code: "s3cret-code".into(),
            scope: None,
            expires_at: None,
            interval: None,
        };
        assert!(!format!("{pin:?}").contains("s3cret-code"));
    }
}
