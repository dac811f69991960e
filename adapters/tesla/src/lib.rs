//! oemgate-tesla: the Tesla Fleet API adapter (vehicles and Powerwall energy sites), and a
//! simulator of Tesla's cloud.
//!
//! [`TeslaAdapter`] implements [`VendorAdapter`], [`VehicleApi`] and [`BatteryApi`] against
//! the Fleet API (`/api/1/...`) and Tesla's OAuth token endpoint (`/oauth2/v3/token`).
//!
//! Discovery reads `GET /api/1/products`: vehicles (by VIN) and energy sites with a battery
//! (`resource_type: "battery"`; vendor id and site id are the `energy_site_id`). Solar-only
//! sites are skipped.
//!
//! Vehicles: reads never wake a car. [`VehicleApi::read_vehicle`] first asks the cheap
//! vehicles list for the car's `state`, and only an `online` car is read with
//! `vehicle_data`. A sleeping or offline car yields an [`Observation`] with `asleep: true`,
//! `isReachable: false` and its live fields `null`. Reads also let idle cars fall asleep:
//! `vehicle_data` keeps a Tesla awake, so after 15 idle minutes the adapter answers from the
//! list and its last full read for 21 minutes (see [`sleep`] and
//! [`TeslaAdapter::with_sleep_policy`]).
//!
//! Powerwalls: [`BatteryApi::read_battery`] reads `live_status` and `site_info` (two
//! requests) and maps them with [`map::battery_from_site`] (sign conventions, modes and
//! interventions are documented there). [`BatteryApi::set_operation_mode`] posts
//! `default_real_mode` (`IMPORT_FOCUS` → `backup`, `SELF_RELIANCE` → `self_consumption`,
//! `TIME_OF_USE` → `autonomous`); `EXPORT_FOCUS` and `IDLE` are `Unsupported` without any
//! request. [`TeslaAdapter::set_backup_reserve`] sets the reserve (Enode's
//! `dischargeLimit`).
//!
//! Layout:
//! - [`client`]: HTTP calls (bearer auth, timeouts) and the classification of every Tesla
//!   failure into an [`ErrorKind`] (the table is in that module's docs).
//! - [`model`]: Tesla's JSON, only the fields we read, tolerant of anything extra.
//! - [`map`]: pure functions from Tesla's JSON to the normalized [`Vehicle`] and
//!   [`oemgate_core::Battery`].
//! - `sim` (feature `sim`): `TeslaSim`, an axum simulator of Tesla's cloud.
//!
//! Commands: success means Tesla accepted the command (`result: true`, or an energy
//! command's 2xx `code`), not that the device did it. A refusal (`result: false`) is
//! `Rejected` when the car already is in the requested state (`already_set`, `is_charging`,
//! `not_charging`; [`CommandRefused::is_no_op`] tells the executor to treat it as
//! UNNECESSARY), `PreconditionFailed` when the car cannot do it now (`disconnected`,
//! `complete`, `no_power`, ...), else `Rejected` (see [`client::command_outcome`]).
//!
//! Region: the account's credentials may carry the region's base URL in
//! `extra["api_base_url"]` ([`EXTRA_API_BASE_URL`]); it overrides
//! [`TeslaConfig::api_base_url`]. A request to the wrong region fails with `Protocol` and the
//! message names the right base URL.
//!
//! Limits: see [`VendorAdapter::limits`] on [`TeslaAdapter`]. Tesla also documents energy
//! limits the scheduler should respect through its polling cadence:
//! [`ENERGY_SITE_MIN_POLL_INTERVAL`] per site for live data, and
//! [`ENERGY_SETTINGS_PER_SITE_PER_DAY`] settings changes per site and day.
//!
//! [`Vehicle`]: oemgate_core::Vehicle

pub mod client;
pub mod map;
pub mod model;
#[cfg(feature = "sim")]
pub mod sim;
pub mod sleep;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use oemgate_core::{
    AccountRef, AdapterError, AdapterResult, BatteryApi, BatteryOperationMode, Clock,
    CommandReceipt, Credentials, DeviceRef, DeviceState, DiscoveredDevice, ErrorKind, Observation,
    Pricing, QuotaScope, Vehicle, VehicleApi, VendorAdapter, VendorInfo, VendorLimits, VendorType,
};

pub use client::{CommandRefused, TeslaApiError};
use client::{TeslaClient, VENDOR, command_outcome, energy_command_outcome};
use model::{
    CommandResponse, EnergyCommandResponse, LiveStatus, SiteInfo, TokenResponse, VehicleData,
    VehicleListEntry,
};
pub use sleep::SleepPolicy;

/// Fleet API base URL, North America and Asia-Pacific.
pub const NA_API_BASE_URL: &str = "https://fleet-api.prd.na.vn.cloud.tesla.com";
/// Fleet API base URL, Europe, Middle East and Africa.
pub const EU_API_BASE_URL: &str = "https://fleet-api.prd.eu.vn.cloud.tesla.com";
/// Fleet API base URL, China.
pub const CN_API_BASE_URL: &str = "https://fleet-api.prd.cn.vn.cloud.tesla.cn";
/// Tesla's token endpoint host (`/oauth2/v3/token`).
pub const AUTH_BASE_URL: &str = "https://fleet-auth.prd.vn.cloud.tesla.com";
/// The key in [`Credentials::extra`] that holds the account's regional API base URL.
pub const EXTRA_API_BASE_URL: &str = "api_base_url";

/// The `endpoints` a poll asks `vehicle_data` for. Beyond charge, climate, drive and
/// location it asks for `vehicle_config` (model) and `vehicle_state` (odometer): same request,
/// same price.
pub const VEHICLE_DATA_ENDPOINTS: &str =
    "charge_state;climate_state;drive_state;location_data;vehicle_config;vehicle_state";

/// The highest charging current the adapter sends; larger values are refused locally.
pub const MAX_CHARGING_AMPS: f64 = 80.0;

/// Tesla asks integrations not to read an energy site's live data more often than this
/// (the 2024 "Discovery" plan's "1 per site per 5 minutes").
pub const ENERGY_SITE_MIN_POLL_INTERVAL: Duration = Duration::from_secs(5 * 60);

/// Energy settings changes (operation mode, backup reserve) Tesla allows per site and day.
pub const ENERGY_SETTINGS_PER_SITE_PER_DAY: u32 = 5;

/// Where Tesla owners sign in (the authorize step of the code grant).
pub const AUTHORIZE_BASE_URL: &str = "https://auth.tesla.com";
/// The scopes the authorize step asks for.
const AUTHORIZE_SCOPES: &str = "openid offline_access user_data vehicle_device_data vehicle_cmds \
                                vehicle_charging_cmds energy_device_data energy_cmds";
const DEVICE_TYPES: &[VendorType] = &[VendorType::Vehicle, VendorType::Battery];

/// Where the adapter finds Tesla and who it is there.
#[derive(Clone)]
pub struct TeslaConfig {
    /// The Fleet API base URL of the default region (accounts may override it, see
    /// [`EXTRA_API_BASE_URL`]).
    pub api_base_url: String,
    /// The base URL of the token endpoint.
    pub auth_base_url: String,
    /// The OAuth client id of the application.
    pub client_id: String,
    /// The OAuth client secret (sent on code exchange and refresh when not empty).
    pub client_secret: String,
    /// Timeout of one HTTP request, connection included.
    pub request_timeout: Duration,
}

impl TeslaConfig {
    /// Production URLs (North America region) for the given application.
    pub fn new(client_id: impl Into<String>, client_secret: impl Into<String>) -> Self {
        Self {
            api_base_url: NA_API_BASE_URL.to_owned(),
            auth_base_url: AUTH_BASE_URL.to_owned(),
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            request_timeout: Duration::from_secs(30),
        }
    }
}

impl fmt::Debug for TeslaConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TeslaConfig")
            .field("api_base_url", &self.api_base_url)
            .field("auth_base_url", &self.auth_base_url)
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("request_timeout", &self.request_timeout)
            .finish()
    }
}

/// The Tesla Fleet API adapter (vehicles and Powerwall energy sites).
pub struct TeslaAdapter {
    config: TeslaConfig,
    client: TeslaClient,
    clock: Arc<dyn Clock>,
    info: VendorInfo,
    sleep: sleep::SleepTracker,
}

impl fmt::Debug for TeslaAdapter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TeslaAdapter").field("config", &self.config).finish_non_exhaustive()
    }
}

impl TeslaAdapter {
    /// An adapter with its own HTTP client. `clock` stamps observations and computes
    /// credential expiry.
    pub fn new(config: TeslaConfig, clock: Arc<dyn Clock>) -> Self {
        let connect = config.request_timeout.min(Duration::from_secs(10));
        let http = reqwest::Client::builder()
            .connect_timeout(connect)
            .user_agent(concat!("oemgate-tesla/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default();
        Self::with_http_client(config, clock, http)
    }

    /// An adapter sharing an existing HTTP client (connection pool). The per-request timeout
    /// of `config` still applies.
    pub fn with_http_client(
        config: TeslaConfig,
        clock: Arc<dyn Clock>,
        http: reqwest::Client,
    ) -> Self {
        let client = TeslaClient::new(
            http,
            &config.auth_base_url,
            &config.client_id,
            &config.client_secret,
            config.request_timeout,
        );
        let info = VendorInfo { name: VENDOR, display_name: "Tesla", device_types: DEVICE_TYPES };
        let sleep = sleep::SleepTracker::new(Some(SleepPolicy::default()));
        Self { config, client, clock, info, sleep }
    }

    /// Replaces the policy that lets idle cars sleep ([`SleepPolicy::default`] unless
    /// changed); `None` reads every online car with `vehicle_data` on every poll (which
    /// keeps polled cars awake).
    pub fn with_sleep_policy(mut self, policy: Option<SleepPolicy>) -> Self {
        self.sleep = sleep::SleepTracker::new(policy);
        self
    }

    /// The policy that lets idle cars sleep, if any.
    pub fn sleep_policy(&self) -> Option<SleepPolicy> {
        self.sleep.policy()
    }

    /// The configuration.
    pub fn config(&self) -> &TeslaConfig {
        &self.config
    }

    /// Where to send the owner to sign in and approve the application (Tesla redirects back
    /// to `redirect_uri` with `?code=..&state=..`). Asks for every scope the adapter uses:
    /// data, commands and energy, plus `offline_access` for a refresh token.
    pub fn authorize_url(&self, redirect_uri: &str, state: &str) -> String {
        // Tesla signs owners in on auth.tesla.com while tokens come from fleet-auth; any
        // other configured auth base (a simulator, a proxy) serves both.
        let auth = match self.config.auth_base_url.trim_end_matches('/') {
            AUTH_BASE_URL => AUTHORIZE_BASE_URL,
            other => other,
        };
        let base = format!("{auth}/oauth2/v3/authorize");
        let pairs = [
            ("response_type", "code"),
            ("client_id", self.config.client_id.as_str()),
            ("redirect_uri", redirect_uri),
            ("scope", AUTHORIZE_SCOPES),
            ("state", state),
        ];
        match reqwest::Url::parse_with_params(&base, pairs) {
            Ok(url) => url.to_string(),
            // A malformed base URL is a configuration error the token call reports anyway;
            // hand out the bare base so the failure is visible at the vendor.
            Err(_) => base,
        }
    }

    /// Exchanges an authorization code (from Tesla's authorize redirect) for credentials.
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
                    ("audience", &self.config.api_base_url),
                ],
                "authorization_code exchange",
            )
            .await?;
        Ok(self.credentials_from(token, None, Default::default()))
    }

    fn credentials_from(
        &self,
        token: TokenResponse,
        old_refresh: Option<&str>,
        extra: std::collections::BTreeMap<String, String>,
    ) -> Credentials {
        let now = self.clock.now();
        let expires_at = token
            .expires_in
            .filter(|s| *s >= 0)
            .and_then(|s| chrono::Duration::try_seconds(s.min(10 * 365 * 86_400)))
            .map(|d| now + d);
        Credentials {
            access_token: token.access_token,
            refresh_token: token.refresh_token.or_else(|| old_refresh.map(str::to_owned)),
            expires_at,
            extra,
        }
    }

    /// The regional base URL for this account.
    fn base_url<'a>(&'a self, account: &'a AccountRef) -> &'a str {
        account
            .credentials
            .extra
            .get(EXTRA_API_BASE_URL)
            .map(String::as_str)
            .filter(|u| !u.trim().is_empty())
            .unwrap_or(&self.config.api_base_url)
    }

    /// The bearer token, or `AuthExpired` without a request when it is known to be expired
    /// (an expired token's 401 would be billed).
    fn bearer<'a>(&self, account: &'a AccountRef) -> AdapterResult<&'a str> {
        account.credentials.bearer(VENDOR, self.clock.now())
    }

    async fn list_vehicles(&self, account: &AccountRef) -> AdapterResult<Vec<VehicleListEntry>> {
        let token = self.bearer(account)?;
        self.client.get(self.base_url(account), token, "/api/1/vehicles", "vehicles").await
    }

    async fn list_products(&self, account: &AccountRef) -> AdapterResult<Vec<model::Product>> {
        let token = self.bearer(account)?;
        let values: Vec<serde_json::Value> =
            self.client.get(self.base_url(account), token, "/api/1/products", "products").await?;
        Ok(model::products_from_values(values))
    }

    async fn energy_get<T: serde::de::DeserializeOwned>(
        &self,
        account: &AccountRef,
        site: &str,
        endpoint: &str,
    ) -> AdapterResult<T> {
        let token = self.bearer(account)?;
        let path = format!("/api/1/energy_sites/{site}/{endpoint}");
        self.client.get(self.base_url(account), token, &path, endpoint).await.map_err(energy_error)
    }

    async fn energy_command(
        &self,
        account: &AccountRef,
        site: &str,
        endpoint: &str,
        body: serde_json::Value,
    ) -> AdapterResult<CommandReceipt> {
        let token = self.bearer(account)?;
        let path = format!("/api/1/energy_sites/{site}/{endpoint}");
        let response: EnergyCommandResponse = self
            .client
            .post(self.base_url(account), token, &path, Some(&body), endpoint)
            .await
            .map_err(energy_error)?;
        energy_command_outcome(endpoint, &response)?;
        tracing::debug!(target: "oemgate_tesla", site, endpoint, "energy command accepted");
        Ok(CommandReceipt { vendor_action_id: None, requests: 1 })
    }

    /// Sets a Powerwall's backup reserve (Enode's `dischargeLimit`) in percent, 0..=100.
    /// Success means Tesla accepted it.
    pub async fn set_backup_reserve(
        &self,
        account: &AccountRef,
        device: &DeviceRef,
        percent: f64,
    ) -> AdapterResult<CommandReceipt> {
        let site = checked_site_id(device)?;
        if !percent.is_finite() || !(0.0..=100.0).contains(&percent) {
            return Err(AdapterError::new(
                ErrorKind::Rejected,
                VENDOR,
                format!("backup reserve {percent} % is outside 0..=100 %"),
            ));
        }
        // In range and finite, so the cast is exact after rounding.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let whole = percent.round() as u32;
        let body = serde_json::json!({ "backup_reserve_percent": whole });
        self.energy_command(account, site, "backup", body).await
    }

    async fn vehicle_data(&self, account: &AccountRef, vin: &str) -> AdapterResult<VehicleData> {
        let token = self.bearer(account)?;
        let path = format!("/api/1/vehicles/{vin}/vehicle_data?endpoints={VEHICLE_DATA_ENDPOINTS}");
        self.client.get(self.base_url(account), token, &path, "vehicle_data").await
    }

    async fn command(
        &self,
        account: &AccountRef,
        device: &DeviceRef,
        command: &str,
        body: Option<serde_json::Value>,
    ) -> AdapterResult<CommandReceipt> {
        let vin = checked_vin(device)?;
        let token = self.bearer(account)?;
        self.sleep.activity(vin, self.clock.now());
        let path = format!("/api/1/vehicles/{vin}/command/{command}");
        let response: CommandResponse =
            self.client.post(self.base_url(account), token, &path, body.as_ref(), command).await?;
        command_outcome(command, &response)?;
        tracing::debug!(target: "oemgate_tesla", vin, command, "command accepted");
        Ok(CommandReceipt { vendor_action_id: None, requests: 1 })
    }

    /// Reads one car given its vehicles-list entry. Returns the observation and the number
    /// of requests it took (0 or 1: the list request is counted by the caller).
    async fn read_with_entry(
        &self,
        account: &AccountRef,
        device: &DeviceRef,
        entry: &VehicleListEntry,
    ) -> AdapterResult<(Vehicle, bool, u32)> {
        use model::ConnectionState;
        if entry.connection() != ConnectionState::Online {
            self.sleep.not_online(&entry.vin);
            let now = self.clock.now();
            return Ok((map::vehicle_asleep(device, entry, now), true, 0));
        }
        if let Some(mut cached) = self.sleep.suspended(&entry.vin, self.clock.now()) {
            // Idle: let it fall asleep (see `sleep`). The list is fresh, so is the name.
            cached.id.clone_from(&device.id);
            cached.user_id.clone_from(&device.user_id);
            if let Some(name) = entry.display_name.clone().filter(|n| !n.trim().is_empty()) {
                cached.information.display_name = Some(name);
            }
            return Ok((cached, false, 0));
        }
        match self.vehicle_data(account, &entry.vin).await {
            Ok(data) => {
                let now = self.clock.now();
                let vehicle = map::vehicle_from_data(device, &data, Some(entry), now);
                self.sleep.observed(&entry.vin, &vehicle, &data, now);
                Ok((vehicle, false, 1))
            }
            // It fell asleep between the two calls: report it asleep rather than fail.
            Err(e) if e.kind() == ErrorKind::DeviceAsleep => {
                self.sleep.not_online(&entry.vin);
                let now = self.clock.now();
                Ok((map::vehicle_asleep(device, entry, now), true, 1))
            }
            Err(e) => Err(e),
        }
    }

    fn observation(&self, vehicle: Vehicle, asleep: bool, requests: u32) -> Observation {
        Observation {
            state: DeviceState::Vehicle(Box::new(vehicle)),
            observed_at: self.clock.now(),
            asleep,
            requests,
        }
    }
}

/// The VIN for a URL path: only ASCII letters and digits (VINs, numeric ids).
fn checked_vin(device: &DeviceRef) -> AdapterResult<&str> {
    let vin = device.vendor_id.as_str();
    if vin.is_empty() || vin.len() > 32 || !vin.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(AdapterError::new(
            ErrorKind::NotFound,
            VENDOR,
            format!("{vin:?} is not a Tesla vehicle id"),
        ));
    }
    Ok(vin)
}

/// The energy site id for a URL path: ASCII letters, digits, `-` and `_` (Tesla's are
/// numeric).
fn checked_site_id(device: &DeviceRef) -> AdapterResult<&str> {
    let id = device.vendor_id.as_str();
    let ok = !id.is_empty()
        && id.len() <= 40
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !ok {
        return Err(AdapterError::new(
            ErrorKind::NotFound,
            VENDOR,
            format!("{id:?} is not a Tesla energy site id"),
        ));
    }
    Ok(id)
}

/// Energy sites do not sleep: Tesla's 408 ("device unavailable") on an energy route means
/// the gateway is offline.
fn energy_error(e: AdapterError) -> AdapterError {
    if e.kind() != ErrorKind::DeviceAsleep {
        return e;
    }
    let mut copy = AdapterError::new(
        ErrorKind::DeviceOffline,
        e.vendor(),
        e.message().replace("vehicle is offline or asleep", "energy site is offline"),
    );
    if let Some(after) = e.retry_after() {
        copy = copy.with_retry_after(after);
    }
    copy.with_source(e)
}

fn not_in_list(vin: &str) -> AdapterError {
    AdapterError::new(ErrorKind::NotFound, VENDOR, format!("vehicle {vin} is not on the account"))
}

/// Rebuilds an error for a second device of a batch (errors are not `Clone`).
fn copy_error(e: &AdapterError) -> AdapterError {
    let mut copy = AdapterError::new(e.kind(), e.vendor(), e.message().to_owned());
    if let Some(after) = e.retry_after() {
        copy = copy.with_retry_after(after);
    }
    copy
}

#[async_trait]
impl VendorAdapter for TeslaAdapter {
    fn info(&self) -> &VendorInfo {
        &self.info
    }

    /// Tesla bills per request (pay-per-use since 2025) and rate-limits per account and
    /// vehicle. Sixty requests a minute per account with a small burst keeps well inside the
    /// per-vehicle limits Tesla documents for data, commands and wakes.
    fn limits(&self) -> VendorLimits {
        VendorLimits {
            requests_per_minute: 60,
            burst: 10,
            rate_scope: QuotaScope::Account,
            daily_quota: None,
            max_concurrent: 4,
            pricing: Some(Pricing { data_request: 0.002, command: 0.001, wake: 0.02 }),
        }
    }

    /// A vehicle read is the vehicles list plus `vehicle_data`; a battery read is
    /// `live_status` plus `site_info`.
    fn poll_cost(&self, device_type: VendorType) -> u32 {
        match device_type {
            VendorType::Vehicle | VendorType::Battery => 2,
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
        Ok(self.credentials_from(token, Some(refresh), account.credentials.extra.clone()))
    }

    /// One `GET /api/1/products`: every vehicle (vendor id = VIN) and every energy site with
    /// a battery (vendor id = site id = `energy_site_id`).
    async fn discover(&self, account: &AccountRef) -> AdapterResult<Vec<DiscoveredDevice>> {
        let products = self.list_products(account).await?;
        let mut found = Vec::new();
        for product in &products {
            if let Some(v) = product.vehicle() {
                found.push(DiscoveredDevice {
                    device_type: VendorType::Vehicle,
                    vendor_id: v.vin,
                    site_id: None,
                    display_name: v.display_name.filter(|n| !n.trim().is_empty()),
                });
            } else if let Some(site) = product.energy_site() {
                found.push(DiscoveredDevice {
                    device_type: VendorType::Battery,
                    vendor_id: site.energy_site_id.clone(),
                    site_id: Some(site.energy_site_id),
                    display_name: site.site_name,
                });
            }
        }
        Ok(found)
    }

    fn vehicles(&self) -> Option<&dyn VehicleApi> {
        Some(self)
    }

    fn batteries(&self) -> Option<&dyn BatteryApi> {
        Some(self)
    }

    /// One vehicles-list request for all the vehicles of the batch, then `vehicle_data` for
    /// each online car (the list request is counted on the first vehicle's observation).
    /// Other devices (batteries) are read one by one. With fewer than two vehicles there is
    /// nothing to share and every device is polled on its own.
    async fn poll_batch(
        &self,
        account: &AccountRef,
        devices: &[DeviceRef],
    ) -> Vec<AdapterResult<Observation>> {
        let vehicles = devices.iter().filter(|d| d.device_type == VendorType::Vehicle).count();
        if vehicles < 2 {
            let mut out = Vec::with_capacity(devices.len());
            for device in devices {
                out.push(self.poll(account, device).await);
            }
            return out;
        }
        // On a failed list every vehicle gets the error: the first one the original (with its
        // source), the others copies.
        let (list, mut list_error, template) = match self.list_vehicles(account).await {
            Ok(list) => (list, None, None),
            Err(e) => {
                let copy = copy_error(&e);
                (Vec::new(), Some(e), Some(copy))
            }
        };
        let mut list_request_counted = false;
        let mut out = Vec::with_capacity(devices.len());
        for device in devices {
            if device.device_type != VendorType::Vehicle {
                out.push(self.poll(account, device).await);
                continue;
            }
            if let Some(template) = &template {
                out.push(Err(list_error.take().unwrap_or_else(|| copy_error(template))));
                continue;
            }
            let entry = checked_vin(device)
                .and_then(|vin| list.iter().find(|e| e.vin == vin).ok_or_else(|| not_in_list(vin)));
            let result = match entry {
                Err(e) => Err(e),
                Ok(entry) => self.read_with_entry(account, device, entry).await.map(
                    |(vehicle, asleep, n)| {
                        let extra = u32::from(!list_request_counted);
                        list_request_counted = true;
                        self.observation(vehicle, asleep, n + extra)
                    },
                ),
            };
            out.push(result);
        }
        out
    }
}

#[async_trait]
impl VehicleApi for TeslaAdapter {
    async fn read_vehicle(
        &self,
        account: &AccountRef,
        device: &DeviceRef,
    ) -> AdapterResult<Observation> {
        let vin = checked_vin(device)?;
        let list = self.list_vehicles(account).await?;
        let entry = list.iter().find(|e| e.vin == vin).ok_or_else(|| not_in_list(vin))?;
        let (vehicle, asleep, n) = self.read_with_entry(account, device, entry).await?;
        Ok(self.observation(vehicle, asleep, 1 + n))
    }

    async fn wake_up(
        &self,
        account: &AccountRef,
        device: &DeviceRef,
    ) -> AdapterResult<CommandReceipt> {
        let vin = checked_vin(device)?;
        let token = self.bearer(account)?;
        self.sleep.activity(vin, self.clock.now());
        let path = format!("/api/1/vehicles/{vin}/wake_up");
        // Any JSON `response` means accepted; the car's `state` in it is only logged.
        let answer: serde_json::Value =
            self.client.post(self.base_url(account), token, &path, None, "wake_up").await?;
        let state = answer.get("state").and_then(serde_json::Value::as_str).unwrap_or("?");
        tracing::debug!(target: "oemgate_tesla", vin, state, "wake_up sent");
        Ok(CommandReceipt { vendor_action_id: None, requests: 1 })
    }

    async fn set_charging(
        &self,
        account: &AccountRef,
        device: &DeviceRef,
        start: bool,
    ) -> AdapterResult<CommandReceipt> {
        let command = if start { "charge_start" } else { "charge_stop" };
        self.command(account, device, command, None).await
    }

    async fn set_max_current(
        &self,
        account: &AccountRef,
        device: &DeviceRef,
        amps: f64,
    ) -> AdapterResult<CommandReceipt> {
        if !amps.is_finite() || !(0.0..=MAX_CHARGING_AMPS).contains(&amps) {
            return Err(AdapterError::new(
                ErrorKind::Rejected,
                VENDOR,
                format!("charging current {amps} A is outside 0..={MAX_CHARGING_AMPS} A"),
            ));
        }
        // In range and finite, so the cast is exact after rounding.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let whole = amps.round() as u32;
        let body = serde_json::json!({ "charging_amps": whole });
        self.command(account, device, "set_charging_amps", Some(body)).await
    }
}

#[async_trait]
impl BatteryApi for TeslaAdapter {
    /// `live_status` then `site_info` (two requests), mapped by [`map::battery_from_site`].
    async fn read_battery(
        &self,
        account: &AccountRef,
        device: &DeviceRef,
    ) -> AdapterResult<Observation> {
        let site = checked_site_id(device)?;
        let live: LiveStatus = self.energy_get(account, site, "live_status").await?;
        let info: SiteInfo = self.energy_get(account, site, "site_info").await?;
        let now = self.clock.now();
        let battery = map::battery_from_site(device, Some(&live), &info, now);
        Ok(Observation {
            state: DeviceState::Battery(Box::new(battery)),
            observed_at: now,
            asleep: false,
            requests: 2,
        })
    }

    /// `POST .../operation` with the mode's `default_real_mode`. `EXPORT_FOCUS` and `IDLE` do
    /// not exist at Tesla: `Unsupported`, before any request.
    async fn set_operation_mode(
        &self,
        account: &AccountRef,
        device: &DeviceRef,
        mode: BatteryOperationMode,
    ) -> AdapterResult<CommandReceipt> {
        let Some(tesla) = map::tesla_mode(mode) else {
            return Err(AdapterError::new(
                ErrorKind::Unsupported,
                VENDOR,
                format!("Tesla Powerwall has no {} mode", mode.as_str()),
            ));
        };
        let site = checked_site_id(device)?;
        let body = serde_json::json!({ "default_real_mode": tesla });
        self.energy_command(account, site, "operation", body).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oemgate_core::ManualClock;

    fn adapter() -> TeslaAdapter {
        // Port 9 (discard) on localhost: any request that got out would fail as Transient.
        let mut config = TeslaConfig::new("id", "secret");
        config.api_base_url = "http://127.0.0.1:9".into();
        config.auth_base_url = "http://127.0.0.1:9".into();
        let clock = Arc::new(ManualClock::new(chrono::DateTime::UNIX_EPOCH));
        TeslaAdapter::new(config, clock)
    }

    fn account() -> AccountRef {
        AccountRef {
            user_id: "u".into(),
            vendor: "TESLA".into(),
            account_id: "a".into(),
            credentials: Credentials { access_token: "t".into(), ..Default::default() },
        }
    }

    fn site(id: &str) -> DeviceRef {
        DeviceRef {
            id: "bat".into(),
            user_id: "u".into(),
            device_type: VendorType::Battery,
            vendor_id: id.into(),
            site_id: Some(id.into()),
        }
    }

    #[test]
    fn serves_vehicles_and_batteries() {
        let a = adapter();
        assert_eq!(a.info().device_types, [VendorType::Vehicle, VendorType::Battery]);
        assert!(a.vehicles().is_some());
        assert!(a.batteries().is_some());
        assert!(a.chargers().is_none());
        assert_eq!(a.poll_cost(VendorType::Vehicle), 2);
        assert_eq!(a.poll_cost(VendorType::Battery), 2);
        assert_eq!(a.sleep_policy(), Some(SleepPolicy::default()));
        assert_eq!(a.with_sleep_policy(None).sleep_policy(), None);
    }

    #[tokio::test]
    async fn modes_tesla_lacks_fail_before_any_request() {
        let a = adapter();
        for mode in [BatteryOperationMode::ExportFocus, BatteryOperationMode::Idle] {
            let command = oemgate_core::Command::SetOperationMode { mode };
            let e = a.execute(&account(), &site("123"), &command).await.unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Unsupported, "{e}");
        }
        let e = a.poll(&account(), &site("12/../3")).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound);
        let e = a.set_backup_reserve(&account(), &site("123"), 101.0).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Rejected);
    }
}
