//! oemgate-sma: the SMA Monitoring API adapter (Sunny Portal / ennexOS, read-only) for PV
//! inverters, home batteries and energy meters, and a simulator of SMA's cloud.
//!
//! [`SmaAdapter`] implements [`VendorAdapter`], [`InverterApi`], [`BatteryApi`] and
//! [`MeterApi`] against SMA's Monitoring API (`https://monitoring.smaapis.de/v1/...`) and its
//! token endpoint (`https://auth.smaapis.de/oauth2/token`).
//!
//! # Layout
//!
//! - [`client`]: HTTP (bearer auth, per-request timeout) and the classification of every SMA
//!   failure into an [`ErrorKind`] (the table is in that module's docs).
//! - [`model`]: SMA's JSON, only the fields read, tolerant of anything extra.
//! - [`map`]: pure functions from SMA's JSON to the normalized [`Inverter`], [`Battery`] and
//!   [`Meter`] (units, signs, time zones, capabilities and interventions are documented there).
//! - `sim` (feature `sim`): `SmaSim`, SMA's cloud simulated on `oemgate_sim::World`, expected
//!   to be mounted under **`/sma`** of an `oemgate_sim::SimHost` (both base URLs of the
//!   adapter then point at `http://<host>/sma`).
//!
//! # Linking and credentials
//!
//! SMA issues OAuth2 client credentials to integrators under contract. A user links through
//! the authorization-code grant: [`SmaAdapter::authorize_url`], then
//! [`SmaAdapter::exchange_code`] turns the code into [`Credentials`]. Access tokens live about
//! five minutes (`expires_in: 300`); the adapter computes `expires_at` and answers
//! `AuthExpired` without a request once it has passed, so the caller refreshes (SMA's own
//! sample refreshes every five minutes). SMA rotates refresh tokens: every refresh returns a
//! new one, which [`VendorAdapter::refresh_credentials`] hands back (the old one is kept when a
//! refresh answer lacks one). A revoked token gets the same 401 as an expired one, so a call
//! with revoked credentials is `AuthExpired` and the refresh that follows `Unauthorized`.
//!
//! Until the plant owner has given consent, SMA lists **no plants** instead of refusing:
//! [`VendorAdapter::discover`] then returns an empty list, not an error. A plant whose consent
//! is missing or withdrawn answers 403, which is `Unauthorized`.
//!
//! # Reads and batching
//!
//! Discovery reads `GET /v1/plants` and `GET /v1/plants/{plantId}/devices` per plant
//! (`1 + plants` requests). Inverters (`Solar Inverters`), batteries (`Battery Inverter`) and
//! energy meters (`Monitoring and control` devices whose product is a meter or a Sunny Home
//! Manager) are served; sensors, data managers, sockets and inactive devices are skipped. The
//! vendor id is SMA's `deviceId`, the site id the `plantId`.
//!
//! Every read uses the plant's `EnergyBalance/Recent` set (one request, the latest
//! five-minute interval in W): batteries and meters cost one request, inverters two (plus
//! `EnergyBalance/Total` for the lifetime production, in Wh), see
//! [`VendorAdapter::poll_cost`]. Since the set describes the whole plant,
//! [`VendorAdapter::poll_batch`] reads it **once per plant** for all the batch's devices of
//! that plant (and `Total` once if the batch has an inverter there), and counts each shared
//! request on the first observation that used it.
//!
//! # Commands
//!
//! The Monitoring API is read-only. Battery operation modes are all `isCapable: false` with
//! the intervention [`map::READ_ONLY_INTERVENTION_ID`], and [`BatteryApi::set_operation_mode`]
//! fails as `Unsupported` before any request.
//!
//! # Limits
//!
//! Since 1 July 2025 SMA gives each API credential a token bucket that refills every five
//! minutes; a 429 carries `Retry-After`. The bucket's size depends on the contract package and
//! is not published, so it is configured ([`SmaConfig::bucket_size`], default
//! [`DEFAULT_BUCKET_SIZE`]). [`VendorAdapter::limits`] declares a rate that can never empty
//! the bucket within one refill period (see [`limits_for_bucket`]), per application key.
//!
//! # Decisions where SMA's documentation is silent (unconfirmed)
//!
//! - Measurement times carry no offset; they are read as local time of the plant's IANA
//!   `timezone` ([`map::parse_time`]). `lastUpdated` never lies after the read time.
//! - The token bucket is counted per application (client id), so the rate scope is `Key`; a
//!   bucket per user token would only be more generous.
//! - The gateway's error body is `{"statusCode":..,"message":..}`; when a 429 lacks
//!   `Retry-After`, its "Try again in N seconds." is the signal.
//! - `EnergyBalance/Total` may list one interval per year; the lifetime production is the sum.
//! - `EnergyBalance` describes the plant: a plant with several PV inverters or batteries
//!   reports the plant's total on each of them (device-level sets would split them at one
//!   request per device; residential plants have one of each).
//! - SMA does not report a battery's capacity, reserve or mode, a device's position or its
//!   installation date in these reads: those are `null` (installation date: the Unix epoch,
//!   since the model requires one).
//! - Sunny Portal Classic plants (GUID ids) lag up to two hours; their data is read the same
//!   way, with `lastUpdated` telling its age.
//!
//! Not implemented: SMA's back-channel ("custom flow") consent by e-mail, the Live API, and
//! history reads beyond the lifetime total.
//!
//! [`Inverter`]: oemgate_core::Inverter
//! [`Battery`]: oemgate_core::Battery
//! [`Meter`]: oemgate_core::Meter

pub mod client;
pub mod map;
pub mod model;
#[cfg(feature = "sim")]
pub mod sim;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use oemgate_core::{
    AccountRef, AdapterError, AdapterResult, BatteryApi, BatteryOperationMode, Clock,
    CommandReceipt, Credentials, DeviceRef, DeviceState, DiscoveredDevice, ErrorKind, InverterApi,
    MeterApi, Observation, QuotaScope, VendorAdapter, VendorInfo, VendorLimits, VendorType,
};

pub use client::SmaApiError;
use client::{SmaClient, VENDOR};
use model::{MeasurementSet, PlantDevices, PlantList, TokenResponse};

/// Monitoring API base URL (production); paths start with `/v1`.
pub const API_BASE_URL: &str = "https://monitoring.smaapis.de";
/// Token endpoint host (production); the endpoint is `/oauth2/token`.
pub const AUTH_BASE_URL: &str = "https://auth.smaapis.de";
/// Monitoring API base URL of SMA's sandbox.
pub const SANDBOX_API_BASE_URL: &str = "https://sandbox.smaapis.de/monitoring";
/// Token endpoint host of SMA's sandbox.
pub const SANDBOX_AUTH_BASE_URL: &str = "https://sandbox-auth.smaapis.de";

/// The token bucket size assumed when the contract's package does not say (SMA does not
/// publish it): 300 requests per refill.
pub const DEFAULT_BUCKET_SIZE: u32 = 300;
/// How often SMA refills the token bucket.
pub const BUCKET_REFILL: Duration = Duration::from_secs(5 * 60);
/// Concurrent requests per application (SMA publishes none; SMA's sample client is
/// sequential).
pub const MAX_CONCURRENT: u32 = 4;

/// `EnergyBalance` periods the adapter reads.
const RECENT: &str = "Recent";
const TOTAL: &str = "Total";

const DEVICE_TYPES: &[VendorType] = &[VendorType::Inverter, VendorType::Battery, VendorType::Meter];

/// The limits for a token bucket of `bucket_size` requests refilled every
/// [`BUCKET_REFILL`]: a rate `r` per minute with a burst of `r` sends at most `r + 5r`
/// requests in any five minutes, so `r = bucket_size / 6` never empties the bucket.
pub fn limits_for_bucket(bucket_size: u32) -> VendorLimits {
    let per_minute = (bucket_size / 6).max(1);
    VendorLimits {
        requests_per_minute: per_minute,
        burst: per_minute,
        rate_scope: QuotaScope::Key,
        daily_quota: None,
        max_concurrent: MAX_CONCURRENT,
        pricing: None,
    }
}

/// Where the adapter finds SMA and who it is there.
#[derive(Clone)]
pub struct SmaConfig {
    /// The Monitoring API base URL (without `/v1`).
    pub api_base_url: String,
    /// The base URL of the token endpoint (without `/oauth2/token`).
    pub auth_base_url: String,
    /// The application's OAuth client id (issued by SMA).
    pub client_id: String,
    /// The application's OAuth client secret.
    pub client_secret: String,
    /// Timeout of one HTTP request, connection included.
    pub request_timeout: Duration,
    /// The size of the application's token bucket (requests per [`BUCKET_REFILL`]), as the
    /// contract's package says.
    pub bucket_size: u32,
}

impl SmaConfig {
    /// Production URLs for the given application.
    pub fn new(client_id: impl Into<String>, client_secret: impl Into<String>) -> Self {
        Self {
            api_base_url: API_BASE_URL.to_owned(),
            auth_base_url: AUTH_BASE_URL.to_owned(),
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            request_timeout: Duration::from_secs(30),
            bucket_size: DEFAULT_BUCKET_SIZE,
        }
    }

    /// SMA's sandbox URLs for the given application.
    pub fn sandbox(client_id: impl Into<String>, client_secret: impl Into<String>) -> Self {
        Self {
            api_base_url: SANDBOX_API_BASE_URL.to_owned(),
            auth_base_url: SANDBOX_AUTH_BASE_URL.to_owned(),
            ..Self::new(client_id, client_secret)
        }
    }
}

impl fmt::Debug for SmaConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmaConfig")
            .field("api_base_url", &self.api_base_url)
            .field("auth_base_url", &self.auth_base_url)
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("request_timeout", &self.request_timeout)
            .field("bucket_size", &self.bucket_size)
            .finish()
    }
}

/// The SMA Monitoring API adapter (inverters, batteries, meters; read-only).
pub struct SmaAdapter {
    config: SmaConfig,
    client: SmaClient,
    clock: Arc<dyn Clock>,
    info: VendorInfo,
}

impl fmt::Debug for SmaAdapter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmaAdapter").field("config", &self.config).finish_non_exhaustive()
    }
}

impl SmaAdapter {
    /// An adapter with its own HTTP client. `clock` stamps observations and computes
    /// credential expiry.
    pub fn new(config: SmaConfig, clock: Arc<dyn Clock>) -> Self {
        let connect = config.request_timeout.min(Duration::from_secs(10));
        let http = reqwest::Client::builder()
            .connect_timeout(connect)
            .user_agent(concat!("oemgate-sma/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default();
        Self::with_http_client(config, clock, http)
    }

    /// An adapter sharing an existing HTTP client (connection pool). The per-request timeout
    /// of `config` still applies.
    pub fn with_http_client(
        config: SmaConfig,
        clock: Arc<dyn Clock>,
        http: reqwest::Client,
    ) -> Self {
        let client = SmaClient::new(
            http,
            &config.api_base_url,
            &config.auth_base_url,
            &config.client_id,
            &config.client_secret,
            config.request_timeout,
            clock.clone(),
        );
        let info = VendorInfo { name: VENDOR, display_name: "SMA", device_types: DEVICE_TYPES };
        Self { config, client, clock, info }
    }

    /// The configuration.
    pub fn config(&self) -> &SmaConfig {
        &self.config
    }

    /// The URL of SMA's login and consent page for linking an account (authorization-code
    /// grant); SMA redirects to `redirect_uri` with `code` and `state`.
    pub fn authorize_url(&self, redirect_uri: &str, state: &str) -> String {
        self.client.authorize_url(redirect_uri, state)
    }

    /// Exchanges an authorization code (from SMA's redirect) for credentials. One request.
    pub async fn exchange_code(
        &self,
        code: &str,
        redirect_uri: &str,
    ) -> AdapterResult<Credentials> {
        let token = self
            .client
            .token(
                &[
                    ("grant_type", "authorization_code"),
                    ("code", code),
                    ("redirect_uri", redirect_uri),
                ],
                "authorization_code exchange",
            )
            .await?;
        Ok(self.credentials_from(token, None))
    }

    fn credentials_from(&self, token: TokenResponse, old_refresh: Option<&str>) -> Credentials {
        let now = self.clock.now();
        let expires_at = token
            .expires_in
            .filter(|s| *s >= 0)
            .and_then(|s| chrono::Duration::try_seconds(s.min(10 * 365 * 86_400)))
            .map(|d| now + d);
        Credentials {
            access_token: token.access_token,
            refresh_token: token
                .refresh_token
                .filter(|t| !t.is_empty())
                .or_else(|| old_refresh.map(str::to_owned)),
            expires_at,
            extra: Default::default(),
        }
    }

    /// The bearer token, or `AuthExpired` without a request when it is known to be expired.
    fn bearer<'a>(&self, account: &'a AccountRef) -> AdapterResult<&'a str> {
        account.credentials.bearer(VENDOR, self.clock.now())
    }

    /// `GET /v1/plants/{plantId}/measurements/sets/EnergyBalance/{period}`.
    async fn balance(
        &self,
        account: &AccountRef,
        plant: &str,
        period: &str,
    ) -> AdapterResult<MeasurementSet> {
        let token = self.bearer(account)?;
        let path = format!("/v1/plants/{plant}/measurements/sets/EnergyBalance/{period}");
        let what = format!("EnergyBalance/{period}");
        self.client.get(token, &path, &what).await
    }

    fn observation(&self, state: DeviceState, requests: u32) -> Observation {
        Observation { state, observed_at: self.clock.now(), asleep: false, requests }
    }

    fn map_one(
        &self,
        device: &DeviceRef,
        recent: &MeasurementSet,
        total: Option<&MeasurementSet>,
    ) -> DeviceState {
        let now = self.clock.now();
        match device.device_type {
            VendorType::Inverter => DeviceState::Inverter(Box::new(map::inverter_from_balance(
                device, recent, total, now,
            ))),
            VendorType::Battery => {
                DeviceState::Battery(Box::new(map::battery_from_balance(device, recent, now)))
            }
            _ => DeviceState::Meter(Box::new(map::meter_from_balance(device, recent, now))),
        }
    }

    /// Reads one device of a class this adapter serves: `Recent`, plus `Total` for inverters.
    async fn read(&self, account: &AccountRef, device: &DeviceRef) -> AdapterResult<Observation> {
        let plant = checked_plant_id(device)?;
        let recent = self.balance(account, plant, RECENT).await?;
        let (total, requests) = if device.device_type == VendorType::Inverter {
            (Some(self.balance(account, plant, TOTAL).await?), 2)
        } else {
            (None, 1)
        };
        let state = self.map_one(device, &recent, total.as_ref());
        Ok(self.observation(state, requests))
    }
}

/// An id for a URL path: ASCII letters, digits, `-` and `_` (ennexOS ids are numeric, Sunny
/// Portal Classic ids GUIDs).
fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The plant of a device, checked for use in a path.
fn checked_plant_id(device: &DeviceRef) -> AdapterResult<&str> {
    match device.site_id.as_deref() {
        Some(id) if valid_id(id) => Ok(id),
        Some(id) => Err(AdapterError::new(
            ErrorKind::NotFound,
            VENDOR,
            format!("{id:?} is not an SMA plant id"),
        )),
        None => Err(AdapterError::new(
            ErrorKind::NotFound,
            VENDOR,
            format!("device {} has no SMA plant id (site_id)", device.vendor_id),
        )),
    }
}

/// Rebuilds an error for another device of a batch (errors are not `Clone`).
fn copy_error(e: &AdapterError) -> AdapterError {
    let mut copy = AdapterError::new(e.kind(), e.vendor(), e.message().to_owned());
    if let Some(after) = e.retry_after() {
        copy = copy.with_retry_after(after);
    }
    copy
}

/// Hands out one error to several devices: the original to the first, copies to the rest.
struct SharedError {
    original: Option<AdapterError>,
    template: AdapterError,
}

impl SharedError {
    fn new(e: AdapterError) -> Self {
        Self { template: copy_error(&e), original: Some(e) }
    }

    fn next(&mut self) -> AdapterError {
        self.original.take().unwrap_or_else(|| copy_error(&self.template))
    }
}

#[async_trait]
impl VendorAdapter for SmaAdapter {
    fn info(&self) -> &VendorInfo {
        &self.info
    }

    /// [`limits_for_bucket`] of the configured bucket size: per application key, no daily
    /// quota (the bucket is the only limit), no pricing (SMA bills per contract, not per
    /// request).
    fn limits(&self) -> VendorLimits {
        limits_for_bucket(self.config.bucket_size)
    }

    /// Two requests for an inverter (`Recent` and `Total`), one for a battery or a meter.
    fn poll_cost(&self, device_type: VendorType) -> u32 {
        match device_type {
            VendorType::Inverter => 2,
            _ => 1,
        }
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
        let token = self
            .client
            .token(&[("grant_type", "refresh_token"), ("refresh_token", refresh)], "token refresh")
            .await?;
        let mut fresh = self.credentials_from(token, Some(refresh));
        fresh.extra = account.credentials.extra.clone();
        Ok(fresh)
    }

    /// `GET /v1/plants`, then `GET /v1/plants/{plantId}/devices` for each plant. No plants
    /// (the owner has not consented yet) is an empty list, not an error.
    async fn discover(&self, account: &AccountRef) -> AdapterResult<Vec<DiscoveredDevice>> {
        let token = self.bearer(account)?;
        let list: PlantList = self.client.get(token, "/v1/plants", "plants").await?;
        if list.plants.is_empty() {
            tracing::debug!(target: "oemgate_sma", "no plants: consent not given yet?");
        }
        let mut found = Vec::new();
        for plant in &list.plants {
            if !valid_id(&plant.plant_id) {
                return Err(AdapterError::new(
                    ErrorKind::Protocol,
                    VENDOR,
                    format!("plants: {:?} is not a usable plant id", plant.plant_id),
                ));
            }
            let token = self.bearer(account)?;
            let path = format!("/v1/plants/{}/devices", plant.plant_id);
            let devices: PlantDevices = self.client.get(token, &path, "plant devices").await?;
            found.extend(map::discovered_devices(plant, &devices));
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

    /// One `EnergyBalance/Recent` per plant for all of the batch's devices there, plus one
    /// `EnergyBalance/Total` if an inverter is among them. Each shared request is counted on
    /// the first successful observation that used it. Results are in input order.
    async fn poll_batch(
        &self,
        account: &AccountRef,
        devices: &[DeviceRef],
    ) -> Vec<AdapterResult<Observation>> {
        let mut out: Vec<Option<AdapterResult<Observation>>> =
            devices.iter().map(|_| None).collect();
        let mut groups: Vec<(&str, Vec<usize>)> = Vec::new();
        for (i, device) in devices.iter().enumerate() {
            if !DEVICE_TYPES.contains(&device.device_type) {
                out[i] = Some(self.poll(account, device).await);
                continue;
            }
            match checked_plant_id(device) {
                Err(e) => out[i] = Some(Err(e)),
                Ok(plant) => match groups.iter_mut().find(|(p, _)| *p == plant) {
                    Some((_, members)) => members.push(i),
                    None => groups.push((plant, vec![i])),
                },
            }
        }
        for (plant, members) in groups {
            let recent = match self.balance(account, plant, RECENT).await {
                Ok(recent) => recent,
                Err(e) => {
                    let mut shared = SharedError::new(e);
                    for i in members {
                        out[i] = Some(Err(shared.next()));
                    }
                    continue;
                }
            };
            let wants_total =
                members.iter().any(|&i| devices[i].device_type == VendorType::Inverter);
            let mut total = if wants_total {
                Some(self.balance(account, plant, TOTAL).await.map_err(SharedError::new))
            } else {
                None
            };
            let (mut recent_counted, mut total_counted) = (false, false);
            for i in members {
                let device = &devices[i];
                let uses_total = device.device_type == VendorType::Inverter;
                let total_set = match (&mut total, uses_total) {
                    (Some(Err(shared)), true) => {
                        out[i] = Some(Err(shared.next()));
                        continue;
                    }
                    (Some(Ok(set)), true) => Some(&*set),
                    _ => None,
                };
                let state = self.map_one(device, &recent, total_set);
                let mut requests = u32::from(!recent_counted);
                recent_counted = true;
                if uses_total {
                    requests += u32::from(!total_counted);
                    total_counted = true;
                }
                out[i] = Some(Ok(self.observation(state, requests)));
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
impl InverterApi for SmaAdapter {
    /// `EnergyBalance/Recent` and `EnergyBalance/Total` of the inverter's plant (two
    /// requests), mapped by [`map::inverter_from_balance`].
    async fn read_inverter(
        &self,
        account: &AccountRef,
        device: &DeviceRef,
    ) -> AdapterResult<Observation> {
        self.read(account, device).await
    }
}

#[async_trait]
impl MeterApi for SmaAdapter {
    /// `EnergyBalance/Recent` of the meter's plant (one request), mapped by
    /// [`map::meter_from_balance`].
    async fn read_meter(
        &self,
        account: &AccountRef,
        device: &DeviceRef,
    ) -> AdapterResult<Observation> {
        self.read(account, device).await
    }
}

#[async_trait]
impl BatteryApi for SmaAdapter {
    /// `EnergyBalance/Recent` of the battery's plant (one request), mapped by
    /// [`map::battery_from_balance`].
    async fn read_battery(
        &self,
        account: &AccountRef,
        device: &DeviceRef,
    ) -> AdapterResult<Observation> {
        self.read(account, device).await
    }

    /// SMA's Monitoring API cannot control batteries: `Unsupported`, before any request.
    async fn set_operation_mode(
        &self,
        _account: &AccountRef,
        _device: &DeviceRef,
        mode: BatteryOperationMode,
    ) -> AdapterResult<CommandReceipt> {
        Err(AdapterError::new(
            ErrorKind::Unsupported,
            VENDOR,
            format!(
                "set_operation_mode {}: SMA's Monitoring API is read-only (intervention {})",
                mode.as_str(),
                map::READ_ONLY_INTERVENTION_ID
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oemgate_core::{Command, ManualClock};

    fn adapter() -> SmaAdapter {
        // Port 9 (discard) on localhost: any request that got out would fail as Transient.
        let mut config = SmaConfig::new("id", "secret");
        config.api_base_url = "http://127.0.0.1:9".into();
        config.auth_base_url = "http://127.0.0.1:9".into();
        let clock = Arc::new(ManualClock::new(chrono::DateTime::UNIX_EPOCH));
        SmaAdapter::new(config, clock)
    }

    fn account() -> AccountRef {
        AccountRef {
            user_id: "u".into(),
            vendor: "SMA".into(),
            account_id: "a".into(),
            credentials: Credentials { access_token: "t".into(), ..Default::default() },
        }
    }

    fn device(t: VendorType, site: Option<&str>) -> DeviceRef {
        DeviceRef {
            id: "d".into(),
            user_id: "u".into(),
            device_type: t,
            vendor_id: "4711".into(),
            site_id: site.map(str::to_owned),
        }
    }

    #[test]
    fn serves_inverters_batteries_and_meters() {
        let a = adapter();
        assert_eq!(a.info().name, "SMA");
        assert!(a.inverters().is_some() && a.batteries().is_some() && a.meters().is_some());
        assert!(a.vehicles().is_none() && a.chargers().is_none() && a.hvacs().is_none());
        assert_eq!(a.poll_cost(VendorType::Inverter), 2);
        assert_eq!(a.poll_cost(VendorType::Battery), 1);
        assert_eq!(a.poll_cost(VendorType::Meter), 1);
        let debug = format!("{:?}", a.config());
        assert!(!debug.contains("secret\"") && debug.contains("<redacted>"), "{debug}");
    }

    #[test]
    fn limits_never_empty_the_bucket() {
        for size in [1, 6, 60, 300, 1000] {
            let l = limits_for_bucket(size);
            assert!(l.burst >= 1 && l.burst <= l.requests_per_minute);
            assert!(size < 6 || l.burst + 5 * l.requests_per_minute <= size, "{size}: {l:?}");
            assert_eq!(l.rate_scope, QuotaScope::Key);
        }
        assert_eq!(limits_for_bucket(DEFAULT_BUCKET_SIZE).requests_per_minute, 50);
    }

    #[tokio::test]
    async fn battery_control_fails_before_any_request() {
        let a = adapter();
        for mode in BatteryOperationMode::ALL {
            let command = Command::SetOperationMode { mode: *mode };
            let e = a
                .execute(&account(), &device(VendorType::Battery, Some("1")), &command)
                .await
                .unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Unsupported, "{e}");
        }
    }

    #[tokio::test]
    async fn bad_plant_ids_are_not_sent() {
        let a = adapter();
        let e = a.poll(&account(), &device(VendorType::Meter, Some("1/../2"))).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound);
        let e = a.poll(&account(), &device(VendorType::Meter, None)).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound);
    }

    #[tokio::test]
    async fn expired_tokens_fail_before_any_request() {
        let a = adapter();
        let mut acc = account();
        acc.credentials.expires_at = Some(chrono::DateTime::UNIX_EPOCH);
        let e = a.poll(&acc, &device(VendorType::Meter, Some("1"))).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::AuthExpired);
        acc.credentials.access_token = String::new();
        let e = a.discover(&acc).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unauthorized, "no token and no refresh token");
        let e = a.refresh_credentials(&acc).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unauthorized);
    }
}
