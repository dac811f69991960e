//! oemgate-tado: the tado° (v3/v3+) thermostat cloud adapter, and a simulator of tado's cloud
//! (feature `sim`).
//!
//! [`TadoAdapter`] implements [`VendorAdapter`] and [`HvacApi`] against tado's API v2
//! (`https://my.tado.com/api/v2`) and its OAuth server (`https://login.tado.com/oauth2`).
//! tado X uses another API (`hops.tado.com`, rooms instead of zones) and is not covered.
//!
//! # Layout
//!
//! - [`client`]: HTTP (bearer token, per-request timeout), the device-code and refresh grants,
//!   and the classification of every tado failure into an [`ErrorKind`] (the table is in that
//!   module's docs), including tado's daily-quota 429 with its `RateLimit` headers.
//! - [`model`]: tado's JSON, only the fields read, tolerant of anything extra.
//! - [`map`]: pure functions from a zone state to the normalized [`oemgate_core::Hvac`], from
//!   the zone list to discovered devices and from a permanent hold to tado's overlay body;
//!   units, modes, holds and capabilities are documented there.
//! - `sim` (feature `sim`): `TadoSim`, tado's cloud as an axum router over
//!   `oemgate_sim::World`. It expects to be mounted under **`/tado`** of an
//!   `oemgate_sim::SimHost`; [`TadoConfig::for_base_url`] with `http://host/tado` points the
//!   adapter at it (API at `/tado/api/v2`, OAuth at `/tado/oauth2`).
//!
//! # Linking and credentials
//!
//! OAuth 2 **device code** grant (tado removed the password grant in March 2025), with tado's
//! public client id [`DEFAULT_CLIENT_ID`]:
//!
//! 1. [`TadoAdapter::start_device_authorization`] (`POST /oauth2/device_authorize`) returns
//!    the `user_code` and `verification_uri_complete` to show the user, and the
//!    `device_code` (valid 300 s; poll every `interval` = 5 s).
//! 2. The user approves in a browser.
//! 3. [`TadoAdapter::exchange_device_code`] (`POST /oauth2/token`,
//!    `grant_type=urn:ietf:params:oauth:grant-type:device_code`) turns the device code into
//!    [`Credentials`]. Before the approval it fails as `PreconditionFailed`
//!    (`authorization_pending`), when polled too fast as `RateLimited` (`slow_down`); the
//!    caller polls, the adapter never loops.
//!
//! Access tokens live **10 minutes** (`expires_in` 599). Every refresh returns a **new refresh
//! token** and spends the old one: the caller must store it, and a reused refresh token is
//! `Unauthorized`. `Credentials::extra["tado_user_id"]` keeps tado's user id when the token
//! endpoint sends it (not a secret).
//!
//! # Devices and requests
//!
//! One HVAC unit per **heating zone** of each home the account sees (`GET /me`, then
//! `GET /homes/{homeId}/zones` per home); vendor id `"{homeId}:{zoneId}"`, site id the home
//! id. A read is **one request**: `GET /homes/{homeId}/zones/{zoneId}/state`
//! ([`VendorAdapter::poll_cost`] is 1). [`VendorAdapter::poll_batch`] reads every zone of a
//! home with one `GET /homes/{homeId}/zoneStates`, counted once.
//!
//! Commands: a permanent hold is `PUT /homes/{homeId}/zones/{zoneId}/overlay` with
//! termination `MANUAL` (`HEAT` with a setpoint of 5–25 °C, or `OFF`); following the schedule
//! is `DELETE …/overlay`. `COOL` and `AUTO` are `Unsupported` and bad setpoints `Rejected`,
//! both before any request.
//!
//! # Limits
//!
//! Since late 2025 tado limits each **account** to **100 API requests a day**, or **20 000**
//! with the paid Auto-Assist subscription ([`TadoTier`], set in [`TadoConfig::tier`], default
//! [`TadoTier::Free`]). [`VendorAdapter::limits`] declares that quota per
//! [`QuotaScope::Account`]. tado publishes no per-minute rate; the adapter declares a modest
//! one ([`RATE_PER_MINUTE`], burst [`BURST`], [`MAX_CONCURRENT`] in flight) so a burst of
//! polls cannot spend the day's quota in a minute. tado does not bill per request.
//!
//! # Quirks and decisions where the reference says "unconfirmed"
//!
//! - The API was "never officially supported for third parties": paths and shapes follow
//!   PyTado and Home Assistant.
//! - Over quota tado answers 429 with `RateLimit-Policy`/`RateLimit` headers and only
//!   *possibly* `Retry-After`: `retry_after` comes from `Retry-After`, else from the
//!   `RateLimit` header's `t` (seconds until the quota resets), else it is `None`.
//! - The exact error bodies of the API are not documented; the client reads tado's
//!   `{"errors":[{"code","title"}]}` shape and OAuth's `{"error","error_description"}`, and
//!   classifies by status first. A 403 (`accessDenied`: the home is not the account's) is
//!   `NotFound`; a 422 whose code or title says the zone is offline is `DeviceOffline`.
//! - tado answers an expired, unknown and revoked access token alike (401): such calls are
//!   `AuthExpired`, and the refresh that follows tells a revoked grant (`Unauthorized`).
//! - Refresh-token validity (30 days, unconfirmed) does not matter here: an expired refresh
//!   token is refused like a spent one and the user links again.
//! - The token grants are sent as a form body (OAuth's standard), the device authorization's
//!   `client_id` and `scope` in the query string as the reference shows.
//! - A zone state has no zone name: reads construct the display name (see [`map`]) rather
//!   than spend a second request per poll; discovery reports the user's zone names.
//! - Setpoints are rounded to 0.1 °C before they are sent.

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
    AccountRef, AdapterError, AdapterResult, Clock, CommandReceipt, Credentials, DailyQuota,
    DeviceRef, DeviceState, DiscoveredDevice, ErrorKind, HvacApi, HvacMode, Observation,
    QuotaScope, VendorAdapter, VendorInfo, VendorLimits, VendorType,
};

pub use client::{RateLimitInfo, TadoApiError, api_error_of};
use client::{TadoClient, VENDOR};
use model::{DeviceAuthorization, Me, Overlay, TokenResponse, Zone, ZoneState, ZoneStates};

/// The API base URL.
pub const API_BASE_URL: &str = "https://my.tado.com/api/v2";
/// The OAuth server (`/oauth2/device_authorize`, `/oauth2/token`).
pub const AUTH_BASE_URL: &str = "https://login.tado.com";
/// tado's public OAuth client id for the device-code flow.
pub const DEFAULT_CLIENT_ID: &str = "1bb50063-6b0c-4d11-bd99-387f4a91cc46";
/// The device-code grant type.
pub const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
/// The key in [`Credentials::extra`] that holds tado's user id.
pub const EXTRA_USER_ID: &str = "tado_user_id";
/// The per-minute rate the adapter declares (tado publishes none).
pub const RATE_PER_MINUTE: u32 = 30;
/// The burst the adapter declares.
pub const BURST: u32 = 5;
/// The concurrent requests the adapter declares.
pub const MAX_CONCURRENT: u32 = 2;
/// The longest access-token lifetime believed (tado says 10 minutes).
const MAX_TOKEN_LIFETIME_SECS: i64 = 86_400;

const DEVICE_TYPES: &[VendorType] = &[VendorType::Hvac];

/// tado's subscription tiers, which set the account's daily API quota.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum TadoTier {
    /// No subscription: 100 requests per day per account.
    #[default]
    Free,
    /// The paid Auto-Assist subscription: 20 000 requests per day per account.
    AutoAssist,
}

impl TadoTier {
    /// Both tiers.
    pub const ALL: [TadoTier; 2] = [TadoTier::Free, TadoTier::AutoAssist];

    /// The account's daily request quota.
    pub const fn daily_quota(self) -> u32 {
        match self {
            TadoTier::Free => 100,
            TadoTier::AutoAssist => 20_000,
        }
    }

    /// A name for configuration (`free`, `auto_assist`).
    pub const fn name(self) -> &'static str {
        match self {
            TadoTier::Free => "free",
            TadoTier::AutoAssist => "auto_assist",
        }
    }

    /// Reads a tier name (`free`, `auto_assist`, `auto-assist`, `autoassist`; any case).
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim().to_ascii_lowercase().replace(['-', ' '], "_");
        match s.as_str() {
            "free" => Some(TadoTier::Free),
            "auto_assist" | "autoassist" => Some(TadoTier::AutoAssist),
            _ => None,
        }
    }

    /// The limits the adapter declares for this tier (see the crate docs).
    pub const fn declared_limits(self) -> VendorLimits {
        VendorLimits {
            requests_per_minute: RATE_PER_MINUTE,
            burst: BURST,
            rate_scope: QuotaScope::Account,
            daily_quota: Some(DailyQuota {
                requests: self.daily_quota(),
                per: QuotaScope::Account,
            }),
            max_concurrent: MAX_CONCURRENT,
            pricing: None,
        }
    }
}

/// Where the adapter finds tado.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TadoConfig {
    /// The API base URL, ending in `/api/v2`.
    pub api_base_url: String,
    /// The OAuth server's base URL (the host of `/oauth2/...`).
    pub auth_base_url: String,
    /// The OAuth client id (tado's public device-flow client; not a secret).
    pub client_id: String,
    /// The accounts' subscription tier (decides the declared daily quota).
    pub tier: TadoTier,
    /// Timeout of one HTTP request, connection included.
    pub request_timeout: Duration,
}

impl Default for TadoConfig {
    fn default() -> Self {
        Self {
            api_base_url: API_BASE_URL.to_owned(),
            auth_base_url: AUTH_BASE_URL.to_owned(),
            client_id: DEFAULT_CLIENT_ID.to_owned(),
            tier: TadoTier::Free,
            request_timeout: Duration::from_secs(30),
        }
    }
}

impl TadoConfig {
    /// Production URLs, tado's public client, the free tier.
    pub fn new() -> Self {
        Self::default()
    }

    /// These settings against a simulator mounted at `base` (`http://127.0.0.1:port/tado`).
    pub fn for_base_url(mut self, base: &str) -> Self {
        let base = base.trim_end_matches('/');
        self.api_base_url = format!("{base}/api/v2");
        self.auth_base_url = base.to_owned();
        self
    }
}

/// The tado adapter.
pub struct TadoAdapter {
    config: TadoConfig,
    client: TadoClient,
    clock: Arc<dyn Clock>,
    info: VendorInfo,
}

impl fmt::Debug for TadoAdapter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TadoAdapter").field("config", &self.config).finish_non_exhaustive()
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

/// Whether an error concerns the whole account, so a batch stops at once.
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

fn unsupported(what: impl Into<String>) -> AdapterError {
    AdapterError::new(ErrorKind::Unsupported, VENDOR, what)
}

/// The home and zone of an HVAC device reference, before any request.
fn zone_of(device: &DeviceRef) -> AdapterResult<(u64, u64)> {
    if device.device_type != VendorType::Hvac {
        return Err(unsupported(format!(
            "tado serves HVAC units (heating zones), not a {}",
            device.device_type
        )));
    }
    map::parse_vendor_id(&device.vendor_id).ok_or_else(|| {
        AdapterError::new(
            ErrorKind::NotFound,
            VENDOR,
            format!("{:?} is not a tado zone id (homeId:zoneId)", device.vendor_id),
        )
    })
}

impl TadoAdapter {
    /// An adapter with its own HTTP client. `clock` stamps observations and computes
    /// credential expiry.
    pub fn new(config: TadoConfig, clock: Arc<dyn Clock>) -> Self {
        let connect = config.request_timeout.min(Duration::from_secs(10));
        let http = reqwest::Client::builder()
            .connect_timeout(connect)
            .user_agent(concat!("oemgate-tado/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default();
        Self::with_http_client(config, clock, http)
    }

    /// An adapter sharing an existing HTTP client (connection pool). The per-request timeout
    /// of `config` still applies.
    pub fn with_http_client(
        config: TadoConfig,
        clock: Arc<dyn Clock>,
        http: reqwest::Client,
    ) -> Self {
        let client = TadoClient::new(
            http,
            &config.api_base_url,
            &config.auth_base_url,
            &config.client_id,
            config.request_timeout,
            clock.clone(),
        );
        let info = VendorInfo { name: VENDOR, display_name: "tado°", device_types: DEVICE_TYPES };
        Self { config, client, clock, info }
    }

    /// The configuration.
    pub fn config(&self) -> &TadoConfig {
        &self.config
    }

    /// Linking, step 1: asks tado for a device code. Show the user `user_code` and
    /// `verification_uri_complete`; then poll [`TadoAdapter::exchange_device_code`] every
    /// `interval` seconds until the user approved (one request).
    pub async fn start_device_authorization(&self) -> AdapterResult<DeviceAuthorization> {
        self.client.device_authorize().await
    }

    /// Linking, step 3: exchanges an approved device code for credentials (one request).
    /// Not approved yet: `PreconditionFailed` (tado's `authorization_pending`, see
    /// [`api_error_of`]); polled too fast: `RateLimited` (`slow_down`); denied or expired:
    /// `Unauthorized` (start over).
    pub async fn exchange_device_code(&self, device_code: &str) -> AdapterResult<Credentials> {
        let grant = [("grant_type", DEVICE_CODE_GRANT), ("device_code", device_code)];
        let token = self.client.token(&grant, "device code exchange").await?;
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
        if let Some(uid) = token.user_id.filter(|u| !u.trim().is_empty()) {
            extra.insert(EXTRA_USER_ID.to_owned(), uid);
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

    /// Maps one zone state read now.
    fn observe(
        &self,
        device: &DeviceRef,
        state: &ZoneState,
        requests: u32,
    ) -> AdapterResult<Observation> {
        let now = self.clock.now();
        match map::hvac_from_state(device, state, now) {
            Ok(hvac) => Ok(Observation {
                state: DeviceState::Hvac(Box::new(hvac)),
                observed_at: now,
                asleep: false,
                requests,
            }),
            Err(e) => Err(AdapterError::new(
                ErrorKind::Unsupported,
                VENDOR,
                format!("zone {}: oemgate serves tado heating zones only", device.vendor_id),
            )
            .with_source(e)),
        }
    }

    /// Reads the zones of one home with `zoneStates` (one request) and maps each device.
    async fn poll_home(
        &self,
        token: &str,
        home: u64,
        devices: &[(&DeviceRef, u64)],
    ) -> Vec<AdapterResult<Observation>> {
        let path = format!("/homes/{home}/zoneStates");
        let read: AdapterResult<ZoneStates> = self.client.get(token, &path, "zone states").await;
        let states = match read {
            Ok(states) => states,
            Err(e) => {
                let mut out = Vec::with_capacity(devices.len());
                let mut first = Some(e);
                for _ in devices {
                    let err = match first.take() {
                        Some(e) => e,
                        None => match out.first() {
                            Some(Err(e)) => copy_error(e),
                            _ => AdapterError::new(ErrorKind::Protocol, VENDOR, "zone states"),
                        },
                    };
                    out.push(Err(err));
                }
                return out;
            }
        };
        let mut counted = false;
        let mut out = Vec::with_capacity(devices.len());
        for (device, zone) in devices {
            let result = match states.zone_states.get(&zone.to_string()) {
                Some(state) => self.observe(device, state, u32::from(!counted)),
                None => Err(AdapterError::new(
                    ErrorKind::NotFound,
                    VENDOR,
                    format!("zone states: home {home} has no zone {zone}"),
                )),
            };
            if result.is_ok() {
                counted = true;
            }
            out.push(result);
        }
        out
    }
}

#[async_trait]
impl VendorAdapter for TadoAdapter {
    fn info(&self) -> &VendorInfo {
        &self.info
    }

    /// The tier's daily quota per account (see [`TadoTier::declared_limits`]).
    fn limits(&self) -> VendorLimits {
        self.config.tier.declared_limits()
    }

    /// One request: the zone state.
    fn poll_cost(&self, _device_type: VendorType) -> u32 {
        1
    }

    /// `POST /oauth2/token` with `grant_type=refresh_token`; the answer's new refresh token
    /// replaces the spent one.
    async fn refresh_credentials(&self, account: &AccountRef) -> AdapterResult<Credentials> {
        let Some(refresh) = account.credentials.refresh_token.as_deref().filter(|t| !t.is_empty())
        else {
            return Err(AdapterError::new(
                ErrorKind::Unauthorized,
                VENDOR,
                "no refresh token; the user must link the tado account again",
            ));
        };
        let grant = [("grant_type", "refresh_token"), ("refresh_token", refresh)];
        let token = self.client.token(&grant, "token refresh").await?;
        Ok(self.credentials_from(token, Some(refresh), account.credentials.extra.clone()))
    }

    /// `GET /me`, then `GET /homes/{homeId}/zones` per home: every heating zone.
    async fn discover(&self, account: &AccountRef) -> AdapterResult<Vec<DiscoveredDevice>> {
        let token = self.bearer(account)?;
        let me: Me = self.client.get(token, "/me", "me").await?;
        let mut seen = std::collections::BTreeSet::new();
        let mut found = Vec::new();
        for home in me.homes.iter().filter(|h| seen.insert(h.id)) {
            let path = format!("/homes/{}/zones", home.id);
            let zones: Vec<Zone> = self.client.get(token, &path, "zones").await?;
            found.extend(map::discovered_devices(home, &zones));
        }
        Ok(found)
    }

    fn hvacs(&self) -> Option<&dyn HvacApi> {
        Some(self)
    }

    /// One `GET /homes/{homeId}/zoneStates` per home for all of its zones, counted once; stops
    /// at the first account-wide failure (rate limit, auth, outage, unparseable answer).
    async fn poll_batch(
        &self,
        account: &AccountRef,
        devices: &[DeviceRef],
    ) -> Vec<AdapterResult<Observation>> {
        let mut out: Vec<Option<AdapterResult<Observation>>> =
            devices.iter().map(|_| None).collect();
        let mut homes: Vec<(u64, Vec<(usize, u64)>)> = Vec::new();
        for (i, device) in devices.iter().enumerate() {
            match zone_of(device) {
                Err(e) => out[i] = Some(Err(e)),
                Ok((home, zone)) => match homes.iter_mut().find(|(h, _)| *h == home) {
                    Some((_, members)) => members.push((i, zone)),
                    None => homes.push((home, vec![(i, zone)])),
                },
            }
        }
        let mut stop: Option<AdapterError> = self.bearer(account).err();
        let token = account.credentials.access_token.as_str();
        for (home, members) in &homes {
            if let Some(e) = &stop {
                for (i, _) in members {
                    out[*i] = Some(Err(copy_error(e)));
                }
                continue;
            }
            let refs: Vec<(&DeviceRef, u64)> =
                members.iter().map(|(i, zone)| (&devices[*i], *zone)).collect();
            let results = self.poll_home(token, *home, &refs).await;
            for ((i, _), result) in members.iter().zip(results) {
                if stop.is_none()
                    && let Err(e) = &result
                    && account_wide(e.kind())
                {
                    stop = Some(copy_error(e));
                }
                out[*i] = Some(result);
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
impl HvacApi for TadoAdapter {
    /// `GET /homes/{homeId}/zones/{zoneId}/state`.
    async fn read_hvac(
        &self,
        account: &AccountRef,
        device: &DeviceRef,
    ) -> AdapterResult<Observation> {
        let (home, zone) = zone_of(device)?;
        let token = self.bearer(account)?;
        let path = format!("/homes/{home}/zones/{zone}/state");
        let state: ZoneState = self.client.get(token, &path, "zone state").await?;
        self.observe(device, &state, 1)
    }

    /// `PUT /homes/{homeId}/zones/{zoneId}/overlay` with termination `MANUAL`.
    async fn set_permanent_hold(
        &self,
        account: &AccountRef,
        device: &DeviceRef,
        mode: HvacMode,
        heat_setpoint: Option<f64>,
        cool_setpoint: Option<f64>,
    ) -> AdapterResult<CommandReceipt> {
        let (home, zone) = zone_of(device)?;
        let body = match map::permanent_hold_overlay(mode, heat_setpoint, cool_setpoint) {
            Ok(body) => body,
            Err(map::HoldRefusal::Unsupported(why)) => return Err(unsupported(why)),
            Err(map::HoldRefusal::Rejected(why)) => {
                return Err(AdapterError::new(ErrorKind::Rejected, VENDOR, why));
            }
        };
        let token = self.bearer(account)?;
        let path = format!("/homes/{home}/zones/{zone}/overlay");
        let _echo: Overlay = self.client.put(token, &path, &body, "overlay").await?;
        tracing::debug!(target: "oemgate_tado", home, zone, mode = mode.as_str(), "overlay set");
        Ok(CommandReceipt { vendor_action_id: None, requests: 1 })
    }

    /// `DELETE /homes/{homeId}/zones/{zoneId}/overlay` (tado answers 204 with or without an
    /// overlay).
    async fn follow_schedule(
        &self,
        account: &AccountRef,
        device: &DeviceRef,
    ) -> AdapterResult<CommandReceipt> {
        let (home, zone) = zone_of(device)?;
        let token = self.bearer(account)?;
        let path = format!("/homes/{home}/zones/{zone}/overlay");
        self.client.delete(token, &path, "overlay removal").await?;
        tracing::debug!(target: "oemgate_tado", home, zone, "overlay removed");
        Ok(CommandReceipt { vendor_action_id: None, requests: 1 })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oemgate_core::{Command, ManualClock};

    fn adapter() -> TadoAdapter {
        // Port 9 (discard) on localhost: any request that got out would fail as Transient.
        let config = TadoConfig::new().for_base_url("http://127.0.0.1:9");
        let clock = Arc::new(ManualClock::new(chrono::DateTime::UNIX_EPOCH));
        TadoAdapter::new(config, clock)
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
            site_id: id.split(':').next().map(str::to_owned),
        }
    }

    #[test]
    fn serves_hvac_only() {
        let a = adapter();
        assert_eq!(a.info().name, "TADO");
        assert_eq!(a.info().device_types, DEVICE_TYPES);
        assert!(a.hvacs().is_some());
        assert!(a.vehicles().is_none() && a.chargers().is_none() && a.batteries().is_none());
        assert_eq!(a.poll_cost(VendorType::Hvac), 1);
    }

    #[test]
    fn limits_follow_the_tier() {
        assert_eq!(adapter().limits(), TadoTier::Free.declared_limits());
        for tier in TadoTier::ALL {
            let l = tier.declared_limits();
            assert_eq!(l.rate_scope, QuotaScope::Account);
            assert!(l.burst >= 1 && l.burst <= l.requests_per_minute);
            let q = l.daily_quota.unwrap();
            assert_eq!((q.requests, q.per), (tier.daily_quota(), QuotaScope::Account));
            assert!(l.pricing.is_none());
            assert_eq!(TadoTier::parse(tier.name()), Some(tier));
        }
        assert_eq!(TadoTier::Free.daily_quota(), 100);
        assert_eq!(TadoTier::AutoAssist.daily_quota(), 20_000);
        assert_eq!(TadoTier::parse("Auto-Assist"), Some(TadoTier::AutoAssist));
        assert_eq!(TadoTier::parse("premium"), None);
    }

    #[tokio::test]
    async fn refusals_before_any_request() {
        let a = adapter();
        let zone = device(VendorType::Hvac, "123:1");
        for (command, kind) in [
            (
                Command::SetPermanentHold {
                    mode: HvacMode::Cool,
                    heat_setpoint: None,
                    cool_setpoint: Some(24.0),
                },
                ErrorKind::Unsupported,
            ),
            (
                Command::SetPermanentHold {
                    mode: HvacMode::Auto,
                    heat_setpoint: Some(20.0),
                    cool_setpoint: Some(24.0),
                },
                ErrorKind::Unsupported,
            ),
            (
                Command::SetPermanentHold {
                    mode: HvacMode::Heat,
                    heat_setpoint: Some(30.0),
                    cool_setpoint: None,
                },
                ErrorKind::Rejected,
            ),
            (
                Command::SetPermanentHold {
                    mode: HvacMode::Heat,
                    heat_setpoint: None,
                    cool_setpoint: None,
                },
                ErrorKind::Rejected,
            ),
            (Command::StartCharging, ErrorKind::Unsupported),
            (Command::WakeUp, ErrorKind::Unsupported),
        ] {
            let e = a.execute(&account(), &zone, &command).await.unwrap_err();
            assert_eq!(e.kind(), kind, "{command:?}");
        }
        let e = a.poll(&account(), &device(VendorType::Hvac, "123/../1")).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound);
        let e = a.poll(&account(), &device(VendorType::Charger, "123:1")).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unsupported);
        let mut expired = account();
        expired.credentials.expires_at = Some(chrono::DateTime::UNIX_EPOCH);
        let e = a.poll(&expired, &zone).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::AuthExpired);
        let e = a.discover(&expired).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::AuthExpired);
        let e = a.execute(&expired, &zone, &Command::FollowSchedule).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::AuthExpired);
        let batch = a
            .poll_batch(
                &expired,
                &[device(VendorType::Hvac, "1:1"), device(VendorType::Hvac, "2:1")],
            )
            .await;
        assert!(
            batch.iter().all(|r| r.as_ref().is_err_and(|e| e.kind() == ErrorKind::AuthExpired))
        );
        let mut none = account();
        none.credentials.access_token.clear();
        let e = a.refresh_credentials(&none).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unauthorized);
    }

    #[test]
    fn debug_redacts_nothing_secret_because_config_has_none() {
        let text = format!("{:?}", adapter());
        assert!(text.contains("127.0.0.1:9"), "{text}");
    }
}
