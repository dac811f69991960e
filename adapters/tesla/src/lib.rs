//! oemgate-tesla: the Tesla Fleet API vehicle adapter, and a simulator of Tesla's cloud.
//!
//! [`TeslaAdapter`] implements [`VendorAdapter`] and [`VehicleApi`] against the Fleet API
//! (`/api/1/...`) and Tesla's OAuth token endpoint (`/oauth2/v3/token`). Reads never wake a
//! car: [`VehicleApi::read_vehicle`] first asks the cheap vehicles list for the car's
//! `state`, and only an `online` car is read with `vehicle_data`. A sleeping or offline car
//! yields an [`Observation`] with `asleep: true`, `isReachable: false` and its live fields
//! `null`.
//!
//! Layout:
//! - [`client`]: HTTP calls (bearer auth, timeouts) and the classification of every Tesla
//!   failure into an [`ErrorKind`] (the table is in that module's docs).
//! - [`model`]: Tesla's JSON, only the fields we read, tolerant of anything extra.
//! - [`map`]: pure functions from Tesla's JSON to the normalized [`Vehicle`].
//! - `sim` (feature `sim`): `TeslaSim`, an axum simulator of Tesla's cloud (OAuth, vehicles
//!   list, `vehicle_data`, wake, charging commands, faults, request counters, a small
//!   per-vehicle physics driven by a [`Clock`]).
//!
//! Commands: success means Tesla accepted the command (`result: true`), not that the car
//! did it. A refusal (`result: false`) is `Rejected` when the car already is in the requested
//! state (`already_set`, `is_charging`, `not_charging`; [`CommandRefused::is_no_op`] tells
//! the executor to treat it as UNNECESSARY), `PreconditionFailed` when the car cannot do it
//! now (`disconnected`, `complete`, `no_power`, ...), else `Rejected`
//! (see [`client::command_outcome`]).
//!
//! Region: the account's credentials may carry the region's base URL in
//! `extra["api_base_url"]` ([`EXTRA_API_BASE_URL`]); it overrides
//! [`TeslaConfig::api_base_url`]. A request to the wrong region fails with `Protocol` and the
//! message names the right base URL.
//!
//! [`Vehicle`]: oemgate_core::Vehicle

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
    AccountRef, AdapterError, AdapterResult, Clock, CommandReceipt, Credentials, DeviceRef,
    DeviceState, DiscoveredDevice, ErrorKind, Observation, Pricing, QuotaScope, Vehicle,
    VehicleApi, VendorAdapter, VendorInfo, VendorLimits, VendorType,
};

pub use client::{CommandRefused, TeslaApiError};
use client::{TeslaClient, VENDOR, command_outcome};
use model::{CommandResponse, TokenResponse, VehicleData, VehicleListEntry};

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

const DEVICE_TYPES: &[VendorType] = &[VendorType::Vehicle];

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

/// The Tesla Fleet API adapter (vehicles).
pub struct TeslaAdapter {
    config: TeslaConfig,
    client: TeslaClient,
    clock: Arc<dyn Clock>,
    info: VendorInfo,
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
        Self { config, client, clock, info }
    }

    /// The configuration.
    pub fn config(&self) -> &TeslaConfig {
        &self.config
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
        let creds = &account.credentials;
        if creds.access_token.trim().is_empty() {
            let kind = if creds.refresh_token.is_some() {
                ErrorKind::AuthExpired
            } else {
                ErrorKind::Unauthorized
            };
            return Err(AdapterError::new(kind, VENDOR, "no access token"));
        }
        if let Some(expires_at) = creds.expires_at
            && expires_at <= self.clock.now()
        {
            return Err(AdapterError::new(
                ErrorKind::AuthExpired,
                VENDOR,
                format!("access token expired at {}", expires_at.to_rfc3339()),
            ));
        }
        Ok(&creds.access_token)
    }

    async fn list_vehicles(&self, account: &AccountRef) -> AdapterResult<Vec<VehicleListEntry>> {
        let token = self.bearer(account)?;
        self.client.get(self.base_url(account), token, "/api/1/vehicles", "vehicles").await
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
            let now = self.clock.now();
            return Ok((map::vehicle_asleep(device, entry, now), true, 0));
        }
        match self.vehicle_data(account, &entry.vin).await {
            Ok(data) => {
                let now = self.clock.now();
                Ok((map::vehicle_from_data(device, &data, Some(entry), now), false, 1))
            }
            // It fell asleep between the two calls: report it asleep rather than fail.
            Err(e) if e.kind() == ErrorKind::DeviceAsleep => {
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

    async fn discover(&self, account: &AccountRef) -> AdapterResult<Vec<DiscoveredDevice>> {
        let list = self.list_vehicles(account).await?;
        Ok(list
            .into_iter()
            .filter(|e| !e.vin.trim().is_empty())
            .map(|e| DiscoveredDevice {
                device_type: VendorType::Vehicle,
                vendor_id: e.vin,
                site_id: None,
                display_name: e.display_name,
            })
            .collect())
    }

    fn vehicles(&self) -> Option<&dyn VehicleApi> {
        Some(self)
    }

    /// One vehicles-list request for the whole batch, then `vehicle_data` for each online
    /// car. The list request is counted on the first device's observation.
    async fn poll_batch(
        &self,
        account: &AccountRef,
        devices: &[DeviceRef],
    ) -> Vec<AdapterResult<Observation>> {
        if devices.len() < 2 {
            let mut out = Vec::with_capacity(devices.len());
            for device in devices {
                out.push(self.poll(account, device).await);
            }
            return out;
        }
        let list = match self.list_vehicles(account).await {
            Ok(list) => list,
            Err(e) => {
                let mut out = Vec::with_capacity(devices.len());
                for _ in 1..devices.len() {
                    out.push(Err(copy_error(&e)));
                }
                out.insert(0, Err(e));
                return out;
            }
        };
        let mut list_request_counted = false;
        let mut out = Vec::with_capacity(devices.len());
        for device in devices {
            let result = if device.device_type != VendorType::Vehicle {
                self.poll(account, device).await
            } else {
                let entry = checked_vin(device).and_then(|vin| {
                    list.iter().find(|e| e.vin == vin).ok_or_else(|| not_in_list(vin))
                });
                match entry {
                    Err(e) => Err(e),
                    Ok(entry) => self.read_with_entry(account, device, entry).await.map(
                        |(vehicle, asleep, n)| {
                            let extra = u32::from(!list_request_counted);
                            list_request_counted = true;
                            self.observation(vehicle, asleep, n + extra)
                        },
                    ),
                }
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
