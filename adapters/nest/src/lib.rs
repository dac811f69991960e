//! oemgate-nest: the Google Nest Smart Device Management (SDM) adapter for Nest thermostats,
//! and a simulator of the SDM API and Google's OAuth endpoint (feature `sim`).
//!
//! [`NestAdapter`] implements [`VendorAdapter`] and [`HvacApi`] against
//! `https://smartdevicemanagement.googleapis.com/v1/enterprises/{project-id}/…` (a Device
//! Access project) and Google's token endpoint `https://www.googleapis.com/oauth2/v4/token`.
//!
//! # Layout
//!
//! - [`client`]: HTTP (bearer token, per-request timeouts) and the classification of every
//!   SDM and OAuth failure into an [`ErrorKind`] (the table is in that module's docs),
//!   including Google's 429 `RESOURCE_EXHAUSTED` and its `google.rpc.RetryInfo`.
//! - [`model`]: SDM's JSON (devices with their traits, token answers), only the fields read.
//! - [`map`]: pure functions SDM device → normalized [`oemgate_core::Hvac`] and
//!   [`DiscoveredDevice`], and hold → SDM commands; units, modes, capabilities and
//!   interventions are documented there.
//! - `sim` (feature `sim`): `NestSim`, the SDM API and Google's token endpoint as an axum
//!   router over `oemgate_sim::World`. It expects to be mounted under **`/nest`** of an
//!   `oemgate_sim::SimHost`; [`NestConfig::for_base_url`] with `http://host/nest` points the
//!   adapter at it (`/nest/v1/…` and `/nest/oauth2/v4/token`).
//!
//! # Linking and credentials
//!
//! Google OAuth 2 authorization code. The user consents at the Partner Connections Manager,
//! [`NestAdapter::authorize_url`]
//! (`https://nestservices.google.com/partnerconnections/{project-id}/auth?…&scope=https://www.googleapis.com/auth/sdm.service`),
//! and **picks the devices** the project may see there; Google redirects back with `?code=`,
//! and [`NestAdapter::exchange_code`] turns it into [`Credentials`] (`POST` the token endpoint
//! with a form body `grant_type=authorization_code&code&redirect_uri&client_id&client_secret`).
//! Access tokens last about an hour (`expires_in` 3599). Refresh tokens are **not rotated**: a
//! refresh answers a new access token only, and the refresh token stays valid (reusable)
//! until the user revokes the access, so [`VendorAdapter::refresh_credentials`] returns the old
//! refresh token. A revoked access token is answered exactly like an expired one (401
//! `UNAUTHENTICATED`), so such a call is `AuthExpired`; the refresh that follows gets
//! `invalid_grant` ("Token has been expired or revoked.") and is `Unauthorized`. Apps whose
//! OAuth consent screen is in *testing* get refresh tokens that expire after 7 days; that
//! shows as the same `invalid_grant`.
//!
//! # Devices
//!
//! `GET …/devices` lists every device the user shared; only `sdm.devices.types.THERMOSTAT`
//! are HVAC units (cameras and doorbells are skipped). The vendor id is the device id, the
//! site id the structure (home) from `parentRelations`. Discovery costs one request.
//!
//! Reads: `GET …/devices/{id}` (1 request, [`VendorAdapter::poll_cost`]).
//! [`VendorAdapter::poll_batch`] reads all of an account's thermostats with **one**
//! `GET …/devices` (the list carries every device's traits) and counts that request once.
//!
//! Commands ([`HvacApi::set_permanent_hold`]): `POST …/devices/{id}:executeCommand` with
//! `ThermostatMode.SetMode` and then the mode's setpoint command (`SetHeat`, `SetCool`,
//! `SetRange`), 1–2 requests; success is `{}`. SDM refuses a setpoint command the current mode
//! does not allow (400 `FAILED_PRECONDITION`: `PreconditionFailed`), which is why the mode goes
//! first. If the mode was accepted but the setpoint refused, the mode change stays (SDM has no
//! transactions). Arguments are checked locally first (finite, 9–32 °C, AUTO 1.5 °C apart).
//! [`HvacApi::follow_schedule`] is `Unsupported` before any request: SDM has no schedule API.
//!
//! # Limits
//!
//! Google publishes per-project-per-user limits for the Sandbox (the tier every Device Access
//! project starts in): `devices.executeCommand` 10, `devices.get` 10, `devices.list` 5 and
//! `structures.*` 5 queries per minute, and 5 per minute per trait command per device. The
//! scheduler keeps one bucket per account for every call, so the declared rate is the
//! strictest of them, 5 per minute per [`QuotaScope::Account`], expressed as 4 per minute with
//! a burst of 2 (the scheduler's bucket admits `burst + rate - 1` = 5 requests in any 60 s,
//! and the largest call, a hold, takes 2). No daily quota is published and Google does not
//! bill per request (Device Access has a one-time registration fee): no pricing.
//!
//! # Quirks and decisions where the reference says "unconfirmed"
//!
//! - Temperatures are always °C; `Settings.temperatureScale` is display only.
//! - The 429 body is `RESOURCE_EXHAUSTED` "Rate limited for the ExecuteDeviceCommand API for the
//!   user." (as seen in the field), without `Retry-After`: `retry_after` is taken from a
//!   `Retry-After` header or a `google.rpc.RetryInfo` detail when Google sends one, else it is
//!   `None`.
//! - A command to an offline thermostat is 400 `FAILED_PRECONDITION` "Device is offline."
//!   (seen in the field): `DeviceOffline`, told apart from other precondition failures by the
//!   message.
//! - With Eco on, the setpoint trait is empty and setpoint commands are refused: the Eco
//!   temperatures are reported as the setpoints in effect, and `setPermanentHold` is not
//!   capable (intervention) — the adapter does not switch the user's Eco off.
//! - A manual change on a real Nest lasts until the next scheduled setpoint when the user's
//!   schedule is on; SDM cannot tell or change that, so `holdType` is `null` and the hold is
//!   "permanent" only as far as SDM can make it.
//! - Setpoint ranges (9–32 °C) and the 1.5 °C Heat•Cool gap are Nest's documented device
//!   limits, not API data.
//! - Pub/Sub events (near-real-time updates) are not used: polling only.

pub mod client;
pub mod map;
pub mod model;
#[cfg(feature = "sim")]
pub mod sim;

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use oemgate_core::{
    AccountRef, AdapterError, AdapterResult, Clock, CommandReceipt, Credentials, DeviceRef,
    DeviceState, DiscoveredDevice, ErrorKind, HvacApi, HvacMode, Observation, QuotaScope,
    VendorAdapter, VendorInfo, VendorLimits, VendorType,
};

pub use client::{NestApiError, api_error_of};
use client::{NestClient, VENDOR};
use model::{CommandResponse, Device, DeviceList, TokenResponse};

/// The SDM API base URL (`/v1`).
pub const API_BASE_URL: &str = "https://smartdevicemanagement.googleapis.com/v1";
/// Google's OAuth token endpoint.
pub const TOKEN_URL: &str = "https://www.googleapis.com/oauth2/v4/token";
/// The host of the Partner Connections Manager (the consent page).
pub const AUTH_BASE_URL: &str = "https://nestservices.google.com";
/// The OAuth scope of the SDM API.
pub const SDM_SCOPE: &str = "https://www.googleapis.com/auth/sdm.service";
/// The longest access-token lifetime believed.
const MAX_TOKEN_LIFETIME_SECS: i64 = 10 * 365 * 86_400;

const DEVICE_TYPES: &[VendorType] = &[VendorType::Hvac];

/// The limits declared for the Sandbox tier (see the crate docs).
pub const DECLARED_LIMITS: VendorLimits = VendorLimits {
    requests_per_minute: 4,
    burst: 2,
    rate_scope: QuotaScope::Account,
    daily_quota: None,
    max_concurrent: 2,
    pricing: None,
};

/// Where the adapter finds Google and which Device Access project it is.
#[derive(Clone)]
pub struct NestConfig {
    /// The SDM API base URL, ending in `/v1`.
    pub api_base_url: String,
    /// Google's token endpoint.
    pub token_url: String,
    /// The host of `/partnerconnections/{project-id}/auth`.
    pub auth_base_url: String,
    /// The Device Access project id (a UUID).
    pub project_id: String,
    /// The OAuth client id of the Google Cloud project linked to the Device Access project.
    pub client_id: String,
    /// The OAuth client secret.
    pub client_secret: String,
    /// Timeout of one HTTP request, connection included.
    pub request_timeout: Duration,
}

impl NestConfig {
    /// Production URLs for the given project and OAuth client.
    pub fn new(
        project_id: impl Into<String>,
        client_id: impl Into<String>,
        client_secret: impl Into<String>,
    ) -> Self {
        Self {
            api_base_url: API_BASE_URL.to_owned(),
            token_url: TOKEN_URL.to_owned(),
            auth_base_url: AUTH_BASE_URL.to_owned(),
            project_id: project_id.into(),
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            request_timeout: Duration::from_secs(30),
        }
    }

    /// These settings against a simulator mounted at `base` (`http://127.0.0.1:port/nest`):
    /// the API at `{base}/v1`, the token endpoint at `{base}/oauth2/v4/token`.
    pub fn for_base_url(mut self, base: &str) -> Self {
        let base = base.trim_end_matches('/');
        self.api_base_url = format!("{base}/v1");
        self.token_url = format!("{base}/oauth2/v4/token");
        self.auth_base_url = base.to_owned();
        self
    }
}

impl fmt::Debug for NestConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NestConfig")
            .field("api_base_url", &self.api_base_url)
            .field("token_url", &self.token_url)
            .field("auth_base_url", &self.auth_base_url)
            .field("project_id", &self.project_id)
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("request_timeout", &self.request_timeout)
            .finish()
    }
}

/// The Google Nest SDM adapter.
pub struct NestAdapter {
    config: NestConfig,
    client: NestClient,
    clock: Arc<dyn Clock>,
    info: VendorInfo,
}

impl fmt::Debug for NestAdapter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NestAdapter").field("config", &self.config).finish_non_exhaustive()
    }
}

/// An error shared by every device of a batch (errors are not `Clone`): its `Display` and
/// source chain are the original's.
#[derive(Debug)]
struct Shared(Arc<AdapterError>);

impl fmt::Display for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl StdError for Shared {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        StdError::source(self.0.as_ref())
    }
}

fn share(e: &Arc<AdapterError>) -> AdapterError {
    let mut copy = AdapterError::new(e.kind(), e.vendor(), e.message().to_owned());
    if let Some(after) = e.retry_after() {
        copy = copy.with_retry_after(after);
    }
    copy.with_source(Shared(Arc::clone(e)))
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

fn wrong_class(device: &DeviceRef, what: &str) -> AdapterError {
    AdapterError::new(
        ErrorKind::Unsupported,
        VENDOR,
        format!("{what} is not supported for device type {}", device.device_type),
    )
}

impl NestAdapter {
    /// An adapter with its own HTTP client. `clock` stamps observations and computes
    /// credential expiry.
    pub fn new(config: NestConfig, clock: Arc<dyn Clock>) -> Self {
        let connect = config.request_timeout.min(Duration::from_secs(10));
        let http = reqwest::Client::builder()
            .connect_timeout(connect)
            .user_agent(concat!("oemgate-nest/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default();
        Self::with_http_client(config, clock, http)
    }

    /// An adapter sharing an existing HTTP client (connection pool). The per-request timeout
    /// of `config` still applies.
    pub fn with_http_client(
        config: NestConfig,
        clock: Arc<dyn Clock>,
        http: reqwest::Client,
    ) -> Self {
        let client = NestClient::new(
            http,
            &config.api_base_url,
            &config.token_url,
            &config.client_id,
            &config.client_secret,
            config.request_timeout,
            clock.clone(),
        );
        let info =
            VendorInfo { name: VENDOR, display_name: "Google Nest", device_types: DEVICE_TYPES };
        Self { config, client, clock, info }
    }

    /// The configuration.
    pub fn config(&self) -> &NestConfig {
        &self.config
    }

    /// Where to send the user to consent and pick devices (the Partner Connections Manager;
    /// Google redirects back to `redirect_uri` with `?code=`).
    pub fn authorize_url(&self, redirect_uri: &str, state: Option<&str>) -> String {
        let mut url = format!(
            "{}/partnerconnections/{}/auth?redirect_uri={}&access_type=offline&prompt=consent\
             &client_id={}&response_type=code&scope={}",
            self.config.auth_base_url.trim_end_matches('/'),
            encode(&self.config.project_id),
            encode(redirect_uri),
            encode(&self.config.client_id),
            encode(SDM_SCOPE),
        );
        if let Some(state) = state {
            url.push_str("&state=");
            url.push_str(&encode(state));
        }
        url
    }

    /// Exchanges the authorization code of the consent redirect for credentials (one request).
    pub async fn exchange_code(
        &self,
        code: &str,
        redirect_uri: &str,
    ) -> AdapterResult<Credentials> {
        let grant =
            [("grant_type", "authorization_code"), ("code", code), ("redirect_uri", redirect_uri)];
        let token = self.client.token(&grant, "authorization_code exchange").await?;
        Ok(self.credentials_from(token, None))
    }

    fn credentials_from(&self, token: TokenResponse, old_refresh: Option<&str>) -> Credentials {
        let now = self.clock.now();
        let expires_at = token
            .expires_in
            .filter(|s| *s >= 0)
            .and_then(|s| chrono::Duration::try_seconds(s.min(MAX_TOKEN_LIFETIME_SECS)))
            .map(|d| now + d);
        Credentials {
            access_token: token.access_token,
            refresh_token: token
                .refresh_token
                .filter(|t| !t.trim().is_empty())
                .or_else(|| old_refresh.map(str::to_owned)),
            expires_at,
            extra: Default::default(),
        }
    }

    /// The bearer token, or `AuthExpired` without a request when it is known to be expired.
    fn bearer<'a>(&self, account: &'a AccountRef) -> AdapterResult<&'a str> {
        account.credentials.bearer(VENDOR, self.clock.now())
    }

    fn devices_path(&self) -> String {
        format!("/enterprises/{}/devices", self.config.project_id)
    }

    /// The device id of a reference, checked to be safe in a URL path.
    fn device_id<'a>(&self, device: &'a DeviceRef) -> AdapterResult<&'a str> {
        let id = device.vendor_id.as_str();
        if !map::is_valid_device_id(id) {
            return Err(AdapterError::new(
                ErrorKind::NotFound,
                VENDOR,
                format!("{id:?} is not an SDM device id"),
            ));
        }
        Ok(id)
    }

    fn observation(
        &self,
        device: &DeviceRef,
        sdm: &Device,
        requests: u32,
    ) -> AdapterResult<Observation> {
        if !map::is_thermostat(sdm) {
            return Err(AdapterError::new(
                ErrorKind::NotFound,
                VENDOR,
                format!("device {} is a {:?}, not a thermostat", device.vendor_id, sdm.device_type),
            ));
        }
        let now = self.clock.now();
        let hvac = map::hvac_from_device(device, sdm, now);
        Ok(Observation {
            state: DeviceState::Hvac(Box::new(hvac)),
            observed_at: now,
            asleep: false,
            requests,
        })
    }

    async fn list(&self, token: &str) -> AdapterResult<DeviceList> {
        self.client.get(token, &self.devices_path(), "devices.list").await
    }
}

#[async_trait]
impl VendorAdapter for NestAdapter {
    fn info(&self) -> &VendorInfo {
        &self.info
    }

    /// Google's Sandbox limits per project and user (see the crate docs).
    fn limits(&self) -> VendorLimits {
        DECLARED_LIMITS
    }

    fn poll_cost(&self, _device_type: VendorType) -> u32 {
        1
    }

    /// `grant_type=refresh_token`; Google keeps the refresh token, so the old one is returned.
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
        let mut fresh = self.credentials_from(token, Some(refresh));
        fresh.extra = account.credentials.extra.clone();
        Ok(fresh)
    }

    /// `GET …/devices`: the thermostats the user shared.
    async fn discover(&self, account: &AccountRef) -> AdapterResult<Vec<DiscoveredDevice>> {
        let token = self.bearer(account)?;
        let listed = self.list(token).await?;
        let mut found: Vec<DiscoveredDevice> = Vec::new();
        for d in listed.devices.iter().filter_map(map::discovered_device) {
            if !found.iter().any(|f| f.vendor_id == d.vendor_id) {
                found.push(d);
            }
        }
        Ok(found)
    }

    fn hvacs(&self) -> Option<&dyn HvacApi> {
        Some(self)
    }

    /// One `GET …/devices` for two or more thermostats (one `GET …/devices/{id}` for a single
    /// one), counted once, on the first device read successfully.
    async fn poll_batch(
        &self,
        account: &AccountRef,
        devices: &[DeviceRef],
    ) -> Vec<AdapterResult<Observation>> {
        let mut out: Vec<Option<AdapterResult<Observation>>> =
            devices.iter().map(|_| None).collect();
        let mut thermostats: Vec<usize> = Vec::new();
        for (i, device) in devices.iter().enumerate() {
            if device.device_type != VendorType::Hvac {
                out[i] = Some(self.poll(account, device).await);
            } else if let Err(e) = self.device_id(device) {
                out[i] = Some(Err(e));
            } else {
                thermostats.push(i);
            }
        }
        if thermostats.len() == 1 {
            let i = thermostats[0];
            out[i] = Some(self.read_hvac(account, &devices[i]).await);
        } else if !thermostats.is_empty() {
            let listed = match self.bearer(account) {
                Ok(token) => self.list(token).await.map_err(Arc::new),
                Err(e) => Err(Arc::new(e)),
            };
            // A bearer failure sent nothing; a list failure cost one request nobody can carry.
            let mut unclaimed: u32 = u32::from(self.bearer(account).is_ok());
            for &i in &thermostats {
                let device = &devices[i];
                let result = match &listed {
                    Err(e) => Err(share(e)),
                    Ok(list) => {
                        let found = list
                            .devices
                            .iter()
                            .find(|d| map::device_id(&d.name) == Some(device.vendor_id.as_str()));
                        match found {
                            Some(sdm) => self.observation(device, sdm, unclaimed),
                            None => Err(AdapterError::new(
                                ErrorKind::NotFound,
                                VENDOR,
                                format!("devices.list: device {} is not shared", device.vendor_id),
                            )),
                        }
                    }
                };
                if result.is_ok() {
                    unclaimed = 0;
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
impl HvacApi for NestAdapter {
    /// `GET …/devices/{id}`.
    async fn read_hvac(
        &self,
        account: &AccountRef,
        device: &DeviceRef,
    ) -> AdapterResult<Observation> {
        if device.device_type != VendorType::Hvac {
            return Err(wrong_class(device, "read_hvac"));
        }
        let id = self.device_id(device)?;
        let token = self.bearer(account)?;
        let path = format!("{}/{id}", self.devices_path());
        let sdm: Device = self.client.get(token, &path, "devices.get").await?;
        self.observation(device, &sdm, 1)
    }

    /// `ThermostatMode.SetMode`, then `SetHeat` / `SetCool` / `SetRange` (see the crate docs).
    async fn set_permanent_hold(
        &self,
        account: &AccountRef,
        device: &DeviceRef,
        mode: HvacMode,
        heat_setpoint: Option<f64>,
        cool_setpoint: Option<f64>,
    ) -> AdapterResult<CommandReceipt> {
        if device.device_type != VendorType::Hvac {
            return Err(wrong_class(device, "set_permanent_hold"));
        }
        let commands = map::hold_commands(mode, heat_setpoint, cool_setpoint)
            .map_err(|why| AdapterError::new(ErrorKind::Rejected, VENDOR, why))?;
        let id = self.device_id(device)?;
        let token = self.bearer(account)?;
        let path = format!("{}/{id}:executeCommand", self.devices_path());
        let mut sent = 0u32;
        for command in &commands {
            let what = format!("executeCommand {}", command.short_name());
            sent += 1;
            let _: CommandResponse = self.client.post(token, &path, &command.body(), &what).await?;
        }
        tracing::debug!(target: "oemgate_nest", device = id, mode = mode.as_str(), "hold accepted");
        Ok(CommandReceipt { vendor_action_id: None, requests: sent })
    }

    /// SDM has no schedule API: `Unsupported`, before any request.
    async fn follow_schedule(
        &self,
        _account: &AccountRef,
        device: &DeviceRef,
    ) -> AdapterResult<CommandReceipt> {
        Err(AdapterError::new(
            ErrorKind::Unsupported,
            VENDOR,
            format!(
                "follow_schedule: the SDM API has no schedule control (device {})",
                device.vendor_id
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oemgate_core::{Command, ManualClock};

    fn adapter() -> NestAdapter {
        // Port 9 (discard) on localhost: any request that got out would fail as Transient.
        let config = NestConfig::new("proj-1", "client.apps.googleusercontent.com", "secret")
            .for_base_url("http://127.0.0.1:9/nest");
        let clock = Arc::new(ManualClock::new(chrono::DateTime::UNIX_EPOCH));
        NestAdapter::new(config, clock)
    }

    fn account() -> AccountRef {
        AccountRef {
            user_id: "u".into(),
            vendor: VENDOR.into(),
            account_id: "a".into(),
            credentials: Credentials { access_token: "t".into(), ..Default::default() },
        }
    }

    fn device(id: &str) -> DeviceRef {
        DeviceRef {
            id: "d".into(),
            user_id: "u".into(),
            device_type: VendorType::Hvac,
            vendor_id: id.into(),
            site_id: None,
        }
    }

    #[test]
    fn serves_hvac_only() {
        let a = adapter();
        assert_eq!(a.info().name, "NEST");
        assert_eq!(a.info().device_types, DEVICE_TYPES);
        assert!(a.hvacs().is_some());
        assert!(a.vehicles().is_none() && a.chargers().is_none() && a.batteries().is_none());
        assert_eq!(a.poll_cost(VendorType::Hvac), 1);
        let l = a.limits();
        assert_eq!(l.rate_scope, QuotaScope::Account);
        assert!(l.burst >= 2 && l.burst <= l.requests_per_minute);
        assert!(l.burst + l.requests_per_minute - 1 <= 5, "any 60 s stay within 5 requests");
    }

    #[tokio::test]
    async fn refusals_before_any_request() {
        let a = adapter();
        let e = a.execute(&account(), &device("d1"), &Command::FollowSchedule).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unsupported);
        let e = a.execute(&account(), &device("d1"), &Command::StartCharging).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unsupported);
        for (mode, heat, cool) in [
            (HvacMode::Heat, Some(40.0), None),
            (HvacMode::Auto, Some(21.0), Some(21.5)),
            (HvacMode::Unknown, None, None),
            (HvacMode::Cool, None, Some(f64::INFINITY)),
        ] {
            let command =
                Command::SetPermanentHold { mode, heat_setpoint: heat, cool_setpoint: cool };
            let e = a.execute(&account(), &device("d1"), &command).await.unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Rejected, "{command:?}");
        }
        let e = a.poll(&account(), &device("d1/../x")).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound);
        let mut expired = account();
        expired.credentials.expires_at = Some(chrono::DateTime::UNIX_EPOCH);
        let e = a.poll(&expired, &device("d1")).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::AuthExpired);
        let e = a.discover(&expired).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::AuthExpired);
        let batch = a.poll_batch(&expired, &[device("d1"), device("d2")]).await;
        assert!(
            batch.iter().all(|r| r.as_ref().is_err_and(|e| e.kind() == ErrorKind::AuthExpired))
        );
        let e = a.refresh_credentials(&account()).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unauthorized, "no refresh token");
    }

    #[test]
    fn authorize_url_encodes() {
        let url = adapter().authorize_url("https://x.example/cb?a=1", Some("s t"));
        assert_eq!(
            url,
            "http://127.0.0.1:9/nest/partnerconnections/proj-1/auth\
             ?redirect_uri=https%3A%2F%2Fx.example%2Fcb%3Fa%3D1&access_type=offline\
             &prompt=consent&client_id=client.apps.googleusercontent.com&response_type=code\
             &scope=https%3A%2F%2Fwww.googleapis.com%2Fauth%2Fsdm.service&state=s%20t"
        );
    }

    #[test]
    fn debug_redacts_secrets() {
        let config = NestConfig::new("p", "id", "s3cret-value");
        let text = format!("{config:?}");
        assert!(!text.contains("s3cret-value"), "{text}");
        let clock = Arc::new(ManualClock::new(chrono::DateTime::UNIX_EPOCH));
        let text = format!("{:?}", NestAdapter::new(config, clock));
        assert!(!text.contains("s3cret-value"), "{text}");
    }

    #[test]
    fn shared_errors_keep_the_chain() {
        let api = NestApiError {
            status: 429,
            rpc_status: "RESOURCE_EXHAUSTED".into(),
            message: "Rate limited".into(),
            reason: None,
            retry_delay: None,
        };
        let original = Arc::new(
            AdapterError::new(ErrorKind::RateLimited, VENDOR, "devices.list: rate limited")
                .with_retry_after(Duration::from_secs(5))
                .with_source(api.clone()),
        );
        let copy = share(&original);
        assert_eq!(copy.kind(), ErrorKind::RateLimited);
        assert_eq!(copy.retry_after(), Some(Duration::from_secs(5)));
        assert_eq!(api_error_of(&copy), Some(&api));
    }
}
