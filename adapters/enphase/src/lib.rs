//! oemgate-enphase: the Enphase Enlighten API v4 adapter (solar inverters, IQ Batteries and
//! consumption meters), and a simulator of Enphase's cloud (feature `sim`).
//!
//! [`EnphaseAdapter`] implements [`VendorAdapter`], [`InverterApi`], [`BatteryApi`] and
//! [`MeterApi`] against `https://api.enphaseenergy.com/api/v4` and Enphase's OAuth token
//! endpoint (`/oauth/token`).
//!
//! # Layout
//!
//! - [`client`]: HTTP (API key on every call plus the bearer token, per-request timeouts) and
//!   the classification of every Enphase failure into an [`ErrorKind`] (the table is in that
//!   module's docs), including Enphase's own 429 body with its `period_end`.
//! - [`model`]: Enphase's JSON, only the fields read, tolerant of anything extra.
//! - [`map`]: pure functions from Enphase's JSON to the normalized [`oemgate_core::Inverter`],
//!   [`oemgate_core::Battery`] and [`oemgate_core::Meter`]; units, signs, modes, capabilities
//!   and interventions are documented there.
//! - `sim` (feature `sim`): `EnphaseSim`, Enphase's cloud as an axum router over
//!   `oemgate_sim::World`. It expects to be mounted under **`/enphase`** of an
//!   `oemgate_sim::SimHost`; point [`EnphaseConfig::api_base_url`] at
//!   `http://host/enphase/api/v4` and [`EnphaseConfig::auth_base_url`] at
//!   `http://host/enphase`.
//!
//! # Linking and credentials
//!
//! OAuth 2 authorization code: the user approves the application at
//! [`EnphaseAdapter::authorize_url`], and [`EnphaseAdapter::exchange_code`] turns the code into
//! [`Credentials`] (`POST /oauth/token?grant_type=authorization_code&redirect_uri=..&code=..`
//! with HTTP Basic `client_id:client_secret`). Partner-plan applications use the password grant
//! instead ([`EnphaseAdapter::exchange_password`]). Access tokens last about a day
//! (`expires_in` 86393); every refresh issues a **new refresh token** and spends the old one,
//! so a reused refresh token is `Unauthorized`. Every API call also carries the application's
//! API key (`?key=`); a key of another application than the token's client is answered 401
//! "API Key -Client mismatch", which is `Unauthorized` (configuration, not expiry).
//! `Credentials::extra["enl_uid"]` keeps Enphase's user id (not a secret).
//!
//! # Devices
//!
//! Everything at Enphase is per *system* (one IQ Gateway). Discovery pages through
//! `GET /systems?page=&size=100` and reads `GET /systems/{id}/devices` per system: an inverter
//! when it has microinverters, a battery when it has IQ Batteries, a meter when it has a
//! consumption CT. All three use the system id as vendor id and site id.
//!
//! Reads (requests per poll, the [`VendorAdapter::poll_cost`]):
//! - inverter: `summary` (1);
//! - meter: `latest_telemetry` + `summary` for the status (2);
//! - battery: `summary` (capacity, status) + `latest_telemetry` (power) +
//!   `telemetry/battery` (state of charge) + `battery_settings` (mode, reserve) (4).
//!
//! [`VendorAdapter::poll_batch`] reads each system's endpoints once for all its devices
//! (a system's inverter, meter and battery cost 4 requests together instead of 7), counts
//! every shared request once, and stops at the first account-wide failure (rate limit, auth,
//! outage, an answer that does not parse) instead of spending more requests.
//!
//! Commands: `PUT /systems/config/{id}/battery_settings` with `battery_mode`
//! (`SELF_RELIANCE` → `Self-consumption`, `TIME_OF_USE` → `Savings Mode`, `IMPORT_FOCUS` →
//! `Full Backup`; case-sensitive) or `reserve_soc` ([`EnphaseAdapter::set_battery_reserve`],
//! Enode's `dischargeLimit`). `EXPORT_FOCUS` and `IDLE` do not exist at Enphase: `Unsupported`
//! without a request, and their capabilities are false with an intervention.
//!
//! # Limits
//!
//! Enphase limits each application (API key) per plan: per minute and per month
//! ([`EnphasePlan`]). [`VendorAdapter::limits`] declares them per [`QuotaScope::Key`]: the
//! monthly quota as a daily one of `monthly / 31` (never more than the month allows), and a
//! per-minute rate lowered by `burst - 1` because Enphase counts per calendar minute while the
//! scheduler's bucket allows `burst + rate - 1` requests in any 60 s. Enphase does not bill
//! per request (plans are subscriptions): no [`oemgate_core::Pricing`].
//!
//! # Quirks and decisions where the reference says "unconfirmed"
//!
//! - The cloud's data lags: gateways upload every 15 min (Wi-Fi/Ethernet) or 6 h (cellular).
//!   `lastUpdated` carries Enphase's `last_report_at`, so the lag is visible.
//! - `latest_telemetry`'s shape (meters `production`, `consumption`, `storage` in W, with
//!   `storage` positive while discharging, and `consumption` the household's total) is not
//!   in the reference; the grid power is derived as `consumption - production - storage`.
//! - The PUT echo spells modes differently from the GET (`self-consumption` vs
//!   `Self - Consumption`); [`map::parse_battery_mode`] reads every spelling.
//! - `battery_settings` PUT fields are taken as individually optional (only the changed field
//!   is sent); the reference does not say.
//! - The refresh-token lifetime (a month vs a week) does not matter here: an expired refresh
//!   token is refused like a spent one and the user relinks.
//! - An expired or unknown (e.g. revoked) access token is answered alike (401); such calls are
//!   `AuthExpired`, and the refresh that follows tells a revoked grant (`Unauthorized`).
//! - 501 "Not Implemented" is `Unsupported`, not `Transient`: retrying cannot help.
//! - The summary's `battery_charge_w` / `battery_discharge_w` are maximum rates and are never
//!   reported as live charge rates.

pub mod client;
pub mod map;
pub mod model;
#[cfg(feature = "sim")]
pub mod sim;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use oemgate_core::{
    AccountRef, AdapterError, AdapterResult, BatteryApi, BatteryOperationMode, Clock,
    CommandReceipt, Credentials, DailyQuota, DeviceRef, DeviceState, DiscoveredDevice, ErrorKind,
    InverterApi, MeterApi, Observation, QuotaScope, VendorAdapter, VendorInfo, VendorLimits,
    VendorType,
};

use client::{Call, EnphaseClient, VENDOR};
pub use client::{EnphaseApiError, api_error_of};
use model::{
    BatterySettings, BatteryTelemetry, LatestTelemetry, Summary, SystemDevices, SystemsPage,
    TokenResponse,
};

/// The API base URL (`/api/v4`).
pub const API_BASE_URL: &str = "https://api.enphaseenergy.com/api/v4";
/// The host of `/oauth/authorize` and `/oauth/token`.
pub const AUTH_BASE_URL: &str = "https://api.enphaseenergy.com";
/// The key in [`Credentials::extra`] that holds Enphase's user id (`enl_uid`).
pub const EXTRA_ENL_UID: &str = "enl_uid";
/// Systems asked for per page of the systems list (Enphase's maximum).
pub const SYSTEMS_PAGE_SIZE: u32 = 100;
/// Discovery reads at most this many pages (10 000 systems).
pub const MAX_SYSTEM_PAGES: u32 = 100;
/// The longest access-token lifetime believed (Enphase says about a day).
const MAX_TOKEN_LIFETIME_SECS: i64 = 10 * 365 * 86_400;

const DEVICE_TYPES: &[VendorType] = &[VendorType::Inverter, VendorType::Battery, VendorType::Meter];

/// The largest number of requests one poll costs (a battery), and the burst declared so a
/// poll always fits in the scheduler's bucket.
const BATTERY_POLL_COST: u32 = 4;

/// Enphase's API plans and their published limits (developer-v4.enphase.com, "Plans").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum EnphasePlan {
    /// Free: 10 requests per minute, 1 000 per month; system- and site-level data only.
    #[default]
    Watt,
    /// 50 per minute, 50 000 per month.
    Kilowatt,
    /// 100 per minute, 300 000 per month.
    Megawatt,
    /// 300 per minute, 1.5 million per month; the password grant instead of the code flow.
    Partner,
}

impl EnphasePlan {
    /// Every plan.
    pub const ALL: [EnphasePlan; 4] =
        [EnphasePlan::Watt, EnphasePlan::Kilowatt, EnphasePlan::Megawatt, EnphasePlan::Partner];

    /// The plan's name as Enphase spells it (in its 429 body).
    pub const fn name(self) -> &'static str {
        match self {
            EnphasePlan::Watt => "Watt",
            EnphasePlan::Kilowatt => "Kilowatt",
            EnphasePlan::Megawatt => "Megawatt",
            EnphasePlan::Partner => "Partner",
        }
    }

    /// Published requests per minute.
    pub const fn per_minute(self) -> u32 {
        match self {
            EnphasePlan::Watt => 10,
            EnphasePlan::Kilowatt => 50,
            EnphasePlan::Megawatt => 100,
            EnphasePlan::Partner => 300,
        }
    }

    /// Published requests per month.
    pub const fn per_month(self) -> u32 {
        match self {
            EnphasePlan::Watt => 1_000,
            EnphasePlan::Kilowatt => 50_000,
            EnphasePlan::Megawatt => 300_000,
            EnphasePlan::Partner => 1_500_000,
        }
    }

    /// The monthly quota as a daily one that never exceeds the month (`monthly / 31`).
    pub const fn per_day(self) -> u32 {
        self.per_month() / 31
    }

    /// The limits the adapter declares for this plan (see the crate docs).
    pub const fn declared_limits(self) -> VendorLimits {
        let burst = BATTERY_POLL_COST;
        VendorLimits {
            requests_per_minute: self.per_minute() - (burst - 1),
            burst,
            rate_scope: QuotaScope::Key,
            daily_quota: Some(DailyQuota { requests: self.per_day(), per: QuotaScope::Key }),
            max_concurrent: 2,
            pricing: None,
        }
    }

    /// Reads a plan name (case-insensitive).
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.name().eq_ignore_ascii_case(s.trim()))
    }
}

/// Where the adapter finds Enphase and who it is there.
#[derive(Clone)]
pub struct EnphaseConfig {
    /// The API base URL, ending in `/api/v4`.
    pub api_base_url: String,
    /// The base URL of `/oauth/authorize` and `/oauth/token`.
    pub auth_base_url: String,
    /// The application's API key (sent as `?key=` on every API call).
    pub api_key: String,
    /// The application's OAuth client id.
    pub client_id: String,
    /// The application's OAuth client secret.
    pub client_secret: String,
    /// The application's plan (decides the declared limits).
    pub plan: EnphasePlan,
    /// Timeout of one HTTP request, connection included.
    pub request_timeout: Duration,
}

impl EnphaseConfig {
    /// Production URLs for the given application, on the free Watt plan.
    pub fn new(
        api_key: impl Into<String>,
        client_id: impl Into<String>,
        client_secret: impl Into<String>,
    ) -> Self {
        Self {
            api_base_url: API_BASE_URL.to_owned(),
            auth_base_url: AUTH_BASE_URL.to_owned(),
            api_key: api_key.into(),
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            plan: EnphasePlan::Watt,
            request_timeout: Duration::from_secs(30),
        }
    }

    /// These settings against a simulator mounted at `base` (`http://127.0.0.1:port/enphase`).
    pub fn for_base_url(mut self, base: &str) -> Self {
        let base = base.trim_end_matches('/');
        self.api_base_url = format!("{base}/api/v4");
        self.auth_base_url = base.to_owned();
        self
    }
}

impl fmt::Debug for EnphaseConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EnphaseConfig")
            .field("api_base_url", &self.api_base_url)
            .field("auth_base_url", &self.auth_base_url)
            .field("api_key", &"<redacted>")
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("plan", &self.plan)
            .field("request_timeout", &self.request_timeout)
            .finish()
    }
}

/// The Enphase Enlighten API v4 adapter.
pub struct EnphaseAdapter {
    config: EnphaseConfig,
    client: EnphaseClient,
    clock: Arc<dyn Clock>,
    info: VendorInfo,
}

impl fmt::Debug for EnphaseAdapter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EnphaseAdapter").field("config", &self.config).finish_non_exhaustive()
    }
}

/// One of a system's read endpoints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Endpoint {
    Summary,
    Latest,
    BatteryTelemetry,
    Settings,
}

impl Endpoint {
    const ORDER: [Endpoint; 4] =
        [Endpoint::Summary, Endpoint::Latest, Endpoint::BatteryTelemetry, Endpoint::Settings];

    fn needed_by(device_type: VendorType) -> &'static [Endpoint] {
        match device_type {
            VendorType::Inverter => &[Endpoint::Summary],
            VendorType::Meter => &[Endpoint::Summary, Endpoint::Latest],
            VendorType::Battery => &Endpoint::ORDER,
            _ => &[],
        }
    }
}

/// What the reads of one system fetched.
#[derive(Default)]
struct SystemReads {
    summary: Option<Summary>,
    latest: Option<LatestTelemetry>,
    telemetry: Option<BatteryTelemetry>,
    settings: Option<BatterySettings>,
    sent: u32,
    error: Option<AdapterError>,
}

impl SystemReads {
    fn has(&self, endpoint: Endpoint) -> bool {
        match endpoint {
            Endpoint::Summary => self.summary.is_some(),
            Endpoint::Latest => self.latest.is_some(),
            Endpoint::BatteryTelemetry => self.telemetry.is_some(),
            Endpoint::Settings => self.settings.is_some(),
        }
    }
}

/// Rebuilds an error for another device of a batch (errors are not `Clone`).
fn copy_error(e: &AdapterError) -> AdapterError {
    let mut copy = AdapterError::new(e.kind(), e.vendor(), e.message().to_owned());
    if let Some(after) = e.retry_after() {
        copy = copy.with_retry_after(after);
    }
    if let Some(api) = api_error_of(e) {
        copy = copy.with_source(api.clone());
    }
    copy
}

/// Whether an error concerns the whole account or application, so a batch stops at once.
fn account_wide(kind: ErrorKind) -> bool {
    matches!(
        kind,
        ErrorKind::RateLimited
            | ErrorKind::AuthExpired
            | ErrorKind::Unauthorized
            | ErrorKind::Transient
            | ErrorKind::Protocol
    )
}

/// The system id of a device, for a URL path: digits only.
fn system_id(device: &DeviceRef) -> AdapterResult<&str> {
    let id = device.vendor_id.as_str();
    if id.is_empty() || id.len() > 20 || !id.bytes().all(|b| b.is_ascii_digit()) {
        return Err(AdapterError::new(
            ErrorKind::NotFound,
            VENDOR,
            format!("{id:?} is not an Enphase system id"),
        ));
    }
    Ok(id)
}

/// Percent-encodes a query value (RFC 3986 unreserved characters stay).
fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl EnphaseAdapter {
    /// An adapter with its own HTTP client. `clock` stamps observations and computes
    /// credential expiry.
    pub fn new(config: EnphaseConfig, clock: Arc<dyn Clock>) -> Self {
        let connect = config.request_timeout.min(Duration::from_secs(10));
        let http = reqwest::Client::builder()
            .connect_timeout(connect)
            .user_agent(concat!("oemgate-enphase/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default();
        Self::with_http_client(config, clock, http)
    }

    /// An adapter sharing an existing HTTP client (connection pool). The per-request timeout
    /// of `config` still applies.
    pub fn with_http_client(
        config: EnphaseConfig,
        clock: Arc<dyn Clock>,
        http: reqwest::Client,
    ) -> Self {
        let client = EnphaseClient::new(
            http,
            &config.api_base_url,
            &config.auth_base_url,
            &config.api_key,
            &config.client_id,
            &config.client_secret,
            config.request_timeout,
            clock.clone(),
        );
        let info = VendorInfo { name: VENDOR, display_name: "Enphase", device_types: DEVICE_TYPES };
        Self { config, client, clock, info }
    }

    /// The configuration.
    pub fn config(&self) -> &EnphaseConfig {
        &self.config
    }

    /// Where to send the user to approve the application (Enphase redirects back to
    /// `redirect_uri` with `?code=`).
    pub fn authorize_url(&self, redirect_uri: &str, state: Option<&str>) -> String {
        let mut url = format!(
            "{}/oauth/authorize?response_type=code&client_id={}&redirect_uri={}",
            self.config.auth_base_url.trim_end_matches('/'),
            encode(&self.config.client_id),
            encode(redirect_uri)
        );
        if let Some(state) = state {
            url.push_str("&state=");
            url.push_str(&encode(state));
        }
        url
    }

    /// Exchanges an authorization code (from the authorize redirect) for credentials.
    pub async fn exchange_code(
        &self,
        code: &str,
        redirect_uri: &str,
    ) -> AdapterResult<Credentials> {
        let grant =
            [("grant_type", "authorization_code"), ("redirect_uri", redirect_uri), ("code", code)];
        let token = self.client.token(&grant, "authorization_code exchange").await?;
        Ok(self.credentials_from(token, None, BTreeMap::new()))
    }

    /// Partner plan: logs the user in with the password grant.
    pub async fn exchange_password(
        &self,
        username: &str,
        password: &str,
    ) -> AdapterResult<Credentials> {
        let grant = [("grant_type", "password"), ("username", username), ("password", password)];
        let token = self.client.token(&grant, "password grant").await?;
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
        if let Some(uid) = token.enl_uid.filter(|u| !u.trim().is_empty()) {
            extra.insert(EXTRA_ENL_UID.to_owned(), uid);
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

    async fn fetch(
        &self,
        token: &str,
        system: &str,
        endpoint: Endpoint,
        reads: &mut SystemReads,
    ) -> AdapterResult<()> {
        reads.sent += 1;
        match endpoint {
            Endpoint::Summary => {
                let path = format!("/systems/{system}/summary");
                let call = Call { token, path: &path, query: &[], what: "summary" };
                reads.summary = Some(self.client.get(call).await?);
            }
            Endpoint::Latest => {
                let path = format!("/systems/{system}/latest_telemetry");
                let call = Call { token, path: &path, query: &[], what: "latest_telemetry" };
                reads.latest = Some(self.client.get(call).await?);
            }
            Endpoint::BatteryTelemetry => {
                let path = format!("/systems/{system}/telemetry/battery");
                let query = [("granularity", "15mins".to_owned())];
                let call = Call { token, path: &path, query: &query, what: "telemetry/battery" };
                reads.telemetry = Some(self.client.get(call).await?);
            }
            Endpoint::Settings => {
                let path = format!("/systems/config/{system}/battery_settings");
                let call = Call { token, path: &path, query: &[], what: "battery_settings" };
                reads.settings = Some(self.client.get(call).await?);
            }
        }
        Ok(())
    }

    /// Fetches what `types` need of one system, each endpoint once, stopping at the first
    /// failure.
    async fn read_system(&self, token: &str, system: &str, types: &[VendorType]) -> SystemReads {
        let mut reads = SystemReads::default();
        for endpoint in Endpoint::ORDER {
            if !types.iter().any(|t| Endpoint::needed_by(*t).contains(&endpoint)) {
                continue;
            }
            if let Err(e) = self.fetch(token, system, endpoint, &mut reads).await {
                reads.error = Some(e);
                break;
            }
        }
        reads
    }

    /// The normalized state of `device` from a system's reads (all it needs is there).
    fn state_of(&self, device: &DeviceRef, reads: &SystemReads) -> Option<DeviceState> {
        let now = self.clock.now();
        match device.device_type {
            VendorType::Inverter => {
                let summary = reads.summary.as_ref()?;
                let inverter = map::inverter_from_summary(device, summary, now);
                Some(DeviceState::Inverter(Box::new(inverter)))
            }
            VendorType::Meter => {
                let latest = reads.latest.as_ref()?;
                let meter = map::meter_from_telemetry(device, latest, reads.summary.as_ref(), now);
                Some(DeviceState::Meter(Box::new(meter)))
            }
            VendorType::Battery => {
                let readings = map::BatteryReadings {
                    summary: reads.summary.as_ref()?,
                    latest: reads.latest.as_ref()?,
                    telemetry: reads.telemetry.as_ref()?,
                    settings: reads.settings.as_ref()?,
                };
                let battery = map::battery_from_readings(device, &readings, now);
                Some(DeviceState::Battery(Box::new(battery)))
            }
            _ => None,
        }
    }

    /// Reads the devices of one system (all of `devices` have that system id) and maps them.
    /// Every request sent is counted on an observation: each on the first device that needs
    /// it, and what no successful device claimed on the first successful one.
    async fn poll_system(
        &self,
        token: &str,
        system: &str,
        devices: &[&DeviceRef],
    ) -> (Vec<AdapterResult<Observation>>, Option<ErrorKind>) {
        let types: Vec<VendorType> = devices.iter().map(|d| d.device_type).collect();
        let mut reads = self.read_system(token, system, &types).await;
        let failure = reads.error.as_ref().map(AdapterError::kind);
        let mut claimed: Vec<Endpoint> = Vec::new();
        let mut out: Vec<AdapterResult<Observation>> = Vec::with_capacity(devices.len());
        let mut first_ok: Option<usize> = None;
        let mut counted = 0u32;
        for device in devices {
            let needs = Endpoint::needed_by(device.device_type);
            let complete = needs.iter().all(|e| reads.has(*e));
            let state = if complete { self.state_of(device, &reads) } else { None };
            match state {
                Some(state) => {
                    let fresh: Vec<Endpoint> =
                        needs.iter().copied().filter(|e| !claimed.contains(e)).collect();
                    let requests = u32::try_from(fresh.len()).unwrap_or(u32::MAX);
                    claimed.extend(fresh);
                    counted += requests;
                    first_ok.get_or_insert(out.len());
                    out.push(Ok(Observation {
                        state,
                        observed_at: self.clock.now(),
                        asleep: false,
                        requests,
                    }));
                }
                None => {
                    let err = match (reads.error.take(), &failure) {
                        (Some(e), _) => e,
                        (None, Some(_)) => match out.iter().find_map(|r| r.as_ref().err()) {
                            Some(e) => copy_error(e),
                            None => AdapterError::new(
                                ErrorKind::Protocol,
                                VENDOR,
                                format!("system {system}: read incomplete"),
                            ),
                        },
                        (None, None) => AdapterError::new(
                            ErrorKind::Unsupported,
                            VENDOR,
                            format!("read is not supported for device type {}", device.device_type),
                        ),
                    };
                    out.push(Err(err));
                }
            }
        }
        if let Some(Ok(obs)) = first_ok.and_then(|i| out.get_mut(i)) {
            obs.requests += reads.sent.saturating_sub(counted);
        }
        (out, failure)
    }

    /// Reads one device of a class this adapter serves.
    async fn read_one(
        &self,
        account: &AccountRef,
        device: &DeviceRef,
        expected: VendorType,
    ) -> AdapterResult<Observation> {
        if device.device_type != expected {
            return Err(AdapterError::new(
                ErrorKind::Unsupported,
                VENDOR,
                format!("read of a {} as a {expected}", device.device_type),
            ));
        }
        let system = system_id(device)?;
        let token = self.bearer(account)?;
        let (mut results, _) = self.poll_system(token, system, &[device]).await;
        results.pop().unwrap_or_else(|| {
            Err(AdapterError::new(ErrorKind::Protocol, VENDOR, "read produced no result"))
        })
    }

    async fn put_battery_settings(
        &self,
        account: &AccountRef,
        device: &DeviceRef,
        body: serde_json::Value,
    ) -> AdapterResult<CommandReceipt> {
        if device.device_type != VendorType::Battery {
            return Err(AdapterError::new(
                ErrorKind::Unsupported,
                VENDOR,
                format!("battery settings of a {}", device.device_type),
            ));
        }
        let system = system_id(device)?;
        let token = self.bearer(account)?;
        let path = format!("/systems/config/{system}/battery_settings");
        let call = Call { token, path: &path, query: &[], what: "battery_settings update" };
        // The echo is only checked to be JSON: its spelling differs from the GET's.
        let _echo: serde_json::Value = self.client.put(call, &body).await?;
        tracing::debug!(target: "oemgate_enphase", system, "battery settings accepted");
        Ok(CommandReceipt { vendor_action_id: None, requests: 1 })
    }

    /// Sets the batteries' reserve (Enode's `dischargeLimit`) in percent, 0..=100 (Enphase
    /// refuses values below the system's `battery_shutdown_level`). Success means Enphase
    /// accepted it.
    pub async fn set_battery_reserve(
        &self,
        account: &AccountRef,
        device: &DeviceRef,
        percent: f64,
    ) -> AdapterResult<CommandReceipt> {
        if !percent.is_finite() || !(0.0..=100.0).contains(&percent) {
            return Err(AdapterError::new(
                ErrorKind::Rejected,
                VENDOR,
                format!("battery reserve {percent} % is outside 0..=100 %"),
            ));
        }
        // In range and finite, so the cast is exact after rounding.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let whole = percent.round() as u32;
        self.put_battery_settings(account, device, serde_json::json!({ "reserve_soc": whole }))
            .await
    }
}

#[async_trait]
impl VendorAdapter for EnphaseAdapter {
    fn info(&self) -> &VendorInfo {
        &self.info
    }

    /// The plan's limits per API key (see [`EnphasePlan::declared_limits`]).
    fn limits(&self) -> VendorLimits {
        self.config.plan.declared_limits()
    }

    fn poll_cost(&self, device_type: VendorType) -> u32 {
        let n = Endpoint::needed_by(device_type).len();
        u32::try_from(n).unwrap_or(BATTERY_POLL_COST).max(1)
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

    /// `GET /systems` page by page, then `GET /systems/{id}/devices` per system.
    async fn discover(&self, account: &AccountRef) -> AdapterResult<Vec<DiscoveredDevice>> {
        let token = self.bearer(account)?;
        let mut systems = Vec::new();
        for page in 1..=MAX_SYSTEM_PAGES {
            let query = [("page", page.to_string()), ("size", SYSTEMS_PAGE_SIZE.to_string())];
            let call = Call { token, path: "/systems", query: &query, what: "systems" };
            let listed: SystemsPage = self.client.get(call).await?;
            let count = listed.systems.len();
            systems.extend(listed.systems);
            let total = listed.total.and_then(|t| usize::try_from(t).ok());
            let done = count < SYSTEMS_PAGE_SIZE as usize
                || total.is_some_and(|total| systems.len() >= total);
            if done {
                break;
            }
        }
        let mut seen = std::collections::BTreeSet::new();
        systems.retain(|s| seen.insert(s.system_id));
        let mut found = Vec::new();
        for system in &systems {
            let path = format!("/systems/{}/devices", system.system_id);
            let call = Call { token, path: &path, query: &[], what: "devices" };
            let devices: SystemDevices = self.client.get(call).await?;
            found.extend(map::discovered_devices(system, &devices));
        }
        Ok(found)
    }

    fn batteries(&self) -> Option<&dyn BatteryApi> {
        Some(self)
    }

    fn meters(&self) -> Option<&dyn MeterApi> {
        Some(self)
    }

    fn inverters(&self) -> Option<&dyn InverterApi> {
        Some(self)
    }

    /// Reads each system's endpoints once for all of its devices (see the crate docs).
    async fn poll_batch(
        &self,
        account: &AccountRef,
        devices: &[DeviceRef],
    ) -> Vec<AdapterResult<Observation>> {
        let mut out: Vec<Option<AdapterResult<Observation>>> =
            devices.iter().map(|_| None).collect();
        // Devices of other classes and malformed ids fail on their own, without requests.
        let mut groups: Vec<(String, Vec<usize>)> = Vec::new();
        for (i, device) in devices.iter().enumerate() {
            if !DEVICE_TYPES.contains(&device.device_type) {
                out[i] = Some(self.poll(account, device).await);
                continue;
            }
            match system_id(device) {
                Err(e) => out[i] = Some(Err(e)),
                Ok(system) => match groups.iter_mut().find(|(s, _)| s == system) {
                    Some((_, members)) => members.push(i),
                    None => groups.push((system.to_owned(), vec![i])),
                },
            }
        }
        // A known-expired token fails every device without a request; so does the first
        // account-wide failure for the systems after it.
        let mut stop: Option<AdapterError> = self.bearer(account).err();
        let token = account.credentials.access_token.as_str();
        for (system, members) in &groups {
            if let Some(e) = &stop {
                for &i in members {
                    out[i] = Some(Err(copy_error(e)));
                }
                continue;
            }
            let refs: Vec<&DeviceRef> = members.iter().map(|&i| &devices[i]).collect();
            let (results, failure) = self.poll_system(token, system, &refs).await;
            for (&i, result) in members.iter().zip(results) {
                if stop.is_none()
                    && failure.is_some_and(account_wide)
                    && let Err(e) = &result
                {
                    stop = Some(copy_error(e));
                }
                out[i] = Some(result);
            }
        }
        out.into_iter()
            .map(|r| {
                r.unwrap_or_else(|| {
                    Err(AdapterError::new(ErrorKind::Protocol, VENDOR, "device was not read"))
                })
            })
            .collect()
    }
}

#[async_trait]
impl InverterApi for EnphaseAdapter {
    /// `GET /systems/{id}/summary`.
    async fn read_inverter(
        &self,
        account: &AccountRef,
        device: &DeviceRef,
    ) -> AdapterResult<Observation> {
        self.read_one(account, device, VendorType::Inverter).await
    }
}

#[async_trait]
impl MeterApi for EnphaseAdapter {
    /// `GET /systems/{id}/summary` and `/latest_telemetry`.
    async fn read_meter(
        &self,
        account: &AccountRef,
        device: &DeviceRef,
    ) -> AdapterResult<Observation> {
        self.read_one(account, device, VendorType::Meter).await
    }
}

#[async_trait]
impl BatteryApi for EnphaseAdapter {
    /// `summary`, `latest_telemetry`, `telemetry/battery` and `battery_settings`.
    async fn read_battery(
        &self,
        account: &AccountRef,
        device: &DeviceRef,
    ) -> AdapterResult<Observation> {
        self.read_one(account, device, VendorType::Battery).await
    }

    /// `PUT battery_settings` with the mode's Enphase spelling. `EXPORT_FOCUS` and `IDLE` do
    /// not exist at Enphase: `Unsupported`, before any request.
    async fn set_operation_mode(
        &self,
        account: &AccountRef,
        device: &DeviceRef,
        mode: BatteryOperationMode,
    ) -> AdapterResult<CommandReceipt> {
        let Some(enphase) = map::enphase_mode(mode) else {
            return Err(AdapterError::new(
                ErrorKind::Unsupported,
                VENDOR,
                format!("Enphase IQ Batteries have no {} mode", mode.as_str()),
            ));
        };
        let body = serde_json::json!({ "battery_mode": enphase.put_spelling() });
        self.put_battery_settings(account, device, body).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oemgate_core::{Command, ManualClock};

    fn adapter() -> EnphaseAdapter {
        // Port 9 (discard) on localhost: any request that got out would fail as Transient.
        let config = EnphaseConfig::new("key", "id", "secret").for_base_url("http://127.0.0.1:9");
        let clock = Arc::new(ManualClock::new(chrono::DateTime::UNIX_EPOCH));
        EnphaseAdapter::new(config, clock)
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
            site_id: Some(id.into()),
        }
    }

    #[test]
    fn serves_inverters_batteries_and_meters() {
        let a = adapter();
        assert_eq!(a.info().device_types, DEVICE_TYPES);
        assert!(a.batteries().is_some() && a.meters().is_some() && a.inverters().is_some());
        assert!(a.vehicles().is_none() && a.chargers().is_none() && a.hvacs().is_none());
        assert_eq!(a.poll_cost(VendorType::Inverter), 1);
        assert_eq!(a.poll_cost(VendorType::Meter), 2);
        assert_eq!(a.poll_cost(VendorType::Battery), 4);
    }

    #[test]
    fn limits_follow_the_plan() {
        for plan in EnphasePlan::ALL {
            let l = plan.declared_limits();
            assert_eq!(l.rate_scope, QuotaScope::Key);
            assert!(l.burst >= BATTERY_POLL_COST && l.burst <= l.requests_per_minute);
            // Any 60 s of the scheduler's bucket stays within one calendar minute's allowance.
            assert!(l.burst + l.requests_per_minute - 1 <= plan.per_minute());
            let daily = l.daily_quota.unwrap();
            assert!(daily.requests * 31 <= plan.per_month());
            assert_eq!(daily.per, QuotaScope::Key);
            assert!(l.pricing.is_none());
        }
        assert_eq!(EnphasePlan::Watt.declared_limits().requests_per_minute, 7);
        assert_eq!(EnphasePlan::Kilowatt.per_day(), 1612);
        assert_eq!(EnphasePlan::parse("kilowatt"), Some(EnphasePlan::Kilowatt));
        assert_eq!(adapter().limits(), EnphasePlan::Watt.declared_limits());
    }

    #[tokio::test]
    async fn refusals_before_any_request() {
        let a = adapter();
        for mode in [BatteryOperationMode::ExportFocus, BatteryOperationMode::Idle] {
            let command = Command::SetOperationMode { mode };
            let e = a.execute(&account(), &device(VendorType::Battery, "123"), &command).await;
            assert_eq!(e.unwrap_err().kind(), ErrorKind::Unsupported);
        }
        let e = a.poll(&account(), &device(VendorType::Battery, "12/../3")).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound);
        let e = a
            .set_battery_reserve(&account(), &device(VendorType::Battery, "123"), 101.0)
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Rejected);
        let mut expired = account();
        expired.credentials.expires_at = Some(chrono::DateTime::UNIX_EPOCH);
        let e = a.poll(&expired, &device(VendorType::Inverter, "123")).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::AuthExpired);
        let e = a.discover(&expired).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::AuthExpired);
        let batch = a
            .poll_batch(
                &expired,
                &[device(VendorType::Inverter, "1"), device(VendorType::Meter, "2")],
            )
            .await;
        assert!(
            batch.iter().all(|r| r.as_ref().is_err_and(|e| e.kind() == ErrorKind::AuthExpired))
        );
    }

    #[test]
    fn authorize_url_encodes() {
        let url = adapter().authorize_url("https://x.example/cb?a=1", Some("s t"));
        assert_eq!(
            url,
            "http://127.0.0.1:9/oauth/authorize?response_type=code&client_id=id\
             &redirect_uri=https%3A%2F%2Fx.example%2Fcb%3Fa%3D1&state=s%20t"
        );
    }

    #[test]
    fn debug_redacts_secrets() {
        let config = EnphaseConfig::new("k3y-value", "id", "s3cret-value");
        let text = format!("{config:?}");
        assert!(!text.contains("k3y-value") && !text.contains("s3cret-value"), "{text}");
        let clock = Arc::new(ManualClock::new(chrono::DateTime::UNIX_EPOCH));
        let text = format!("{:?}", EnphaseAdapter::new(config, clock));
        assert!(!text.contains("k3y-value") && !text.contains("s3cret-value"), "{text}");
    }
}
