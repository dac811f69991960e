//! oemgate-easee: the Easee EV charger cloud adapter, and a simulator of Easee's cloud
//! (feature `sim`).
//!
//! [`EaseeAdapter`] implements [`VendorAdapter`] and [`ChargerApi`] against
//! `https://api.easee.com` (the REST API; the SignalR stream at `streams.easee.com` is not
//! used: polling and commands only).
//!
//! # Layout
//!
//! - [`client`]: HTTP (bearer token, per-request timeouts) and the classification of every
//!   Easee failure into an [`ErrorKind`] (the table is in that module's docs), including
//!   Easee's 429 with `Retry-After`.
//! - [`model`]: Easee's JSON, only the fields read, tolerant of anything extra.
//! - [`map`]: pure functions from Easee's charger state to the normalized
//!   [`oemgate_core::Charger`] (op modes, units, reachability, capabilities are documented
//!   there) and from the account's products to discovered devices.
//! - `sim` (feature `sim`): `EaseeSim`, Easee's cloud as an axum router over
//!   `oemgate_sim::World`. It expects to be mounted under **`/easee`** of an
//!   `oemgate_sim::SimHost`; point [`EaseeConfig::base_url`] at `http://host/easee`
//!   ([`EaseeConfig::for_base_url`]).
//!
//! # Linking and credentials
//!
//! Easee has no OAuth and no application registration: the user's own login.
//! [`EaseeAdapter::login`] sends `POST /api/accounts/login {"userName","password"}` once and
//! turns the answer into [`Credentials`]; the password is never stored. Access tokens last
//! `expiresIn` seconds (Easee's docs: an hour; pyeasee's fixture shows a day: the adapter
//! believes whatever Easee sends). [`VendorAdapter::refresh_credentials`] sends
//! `POST /api/accounts/refresh_token {"accessToken","refreshToken"}`: Easee wants the old
//! access token with its refresh token.
//!
//! # Devices and requests
//!
//! Chargers only. Discovery is one `GET /api/accounts/products` (the user's sites with their
//! circuits and chargers): vendor id = the charger's serial (`EH123456`), site id = Easee's
//! site id. A poll is one `GET /api/chargers/{serial}/state` ([`VendorAdapter::poll_cost`]
//! 1). Commands are one `POST /api/chargers/{serial}/commands/...` each:
//!
//! | oemgate | Easee |
//! |---|---|
//! | `StartCharging` | `start_charging` |
//! | `StopCharging` | `stop_charging` |
//! | `SetMaxCurrent{amps}` | `set_dynamic_charger_current {"amps":amps,"minutes":0}` (6..=32 A, checked locally) |
//!
//! [`EaseeAdapter::send_command`] also sends `pause_charging`, `resume_charging` and
//! `set_dynamic_charger_current` with a time to live ([`EaseeCommand`]).
//!
//! # Limits
//!
//! Easee publishes no numbers (**unconfirmed**). pyeasee, the community client, keeps itself to
//! 500 requests per 300 s per login and 10 per hour on site endpoints. [`VendorAdapter::limits`]
//! declares 90 requests per minute with a burst of 10 per account ([`QuotaScope::Account`]):
//! in any 300 s the scheduler's bucket then allows at most 10 + 5 × 90 = 460 < 500. No daily
//! quota, no pricing. Discovery is the only call on a site endpoint.
//!
//! # Quirks and decisions where the reference says "unconfirmed"
//!
//! - Start/stop use `start_charging`/`stop_charging`, not `pause_charging`/`resume_charging`:
//!   community logs show that pause and resume are implemented by setting the dynamic charger
//!   current (command 48) to 0 and back to the maximum, which would overwrite the limit set
//!   with `SetMaxCurrent`, and that `resume_charging` does not start a charger that awaits a
//!   start after plug-in.
//! - `maxCurrent` is the volatile `dynamicChargerCurrent` (what `SetMaxCurrent` sets). A
//!   charger paused through the app reads 0 A there, and that is what is reported.
//! - The command answer (HTTP 202 `{"device","commandId","ticks"}`, from community logs) is
//!   read leniently: an empty body is accepted; `commandId:ticks` becomes the
//!   `vendor_action_id`.
//! - Error names (`InvalidUserPassword`, `NoCarConnected`, `CarFullyCharged`,
//!   `NoPowerToCar`, `ChargerOffline`) are Easee's ProblemDetails `errorCodeName`s as the
//!   simulator spells them; only `InvalidUserPassword` is seen in the wild.
//! - A charger of another user answers 403: on a charger that is `NotFound` (not on this
//!   account), not `Unauthorized` (which would make the user relink the whole account).
//! - An expired, unknown or revoked access token are all 401: `AuthExpired`; the refresh that
//!   follows tells a revoked login (`Unauthorized`). Refresh tokens are treated as
//!   single-use: the new one Easee returns replaces the old.
//! - The dynamic current's time to live (`minutes`) is always 0 (until changed) for
//!   `SetMaxCurrent`; it still resets when the charger reboots.
//! - No batching: Easee's only multi-charger read, `GET /api/sites/{id}/state`, is a site
//!   endpoint that pyeasee found limited to 10 requests per hour.

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
    AccountRef, AdapterError, AdapterResult, ChargerApi, Clock, CommandReceipt, Credentials,
    DeviceRef, DeviceState, DiscoveredDevice, ErrorKind, Observation, QuotaScope, VendorAdapter,
    VendorInfo, VendorLimits, VendorType,
};

pub use client::{EaseeApiError, VENDOR, api_error_of};
use client::{EaseeClient, Scope};
use model::{ChargerState, CommandReply, DynamicCurrentRequest, ProductSite, TokenResponse};

/// Easee's API host.
pub const API_BASE_URL: &str = "https://api.easee.com";
/// The lowest current `SetMaxCurrent` accepts (IEC 61851), A.
pub const MIN_CURRENT_A: f64 = 6.0;
/// The highest current an Easee charger delivers, A.
pub const MAX_CURRENT_A: f64 = 32.0;
/// The longest access-token lifetime believed.
const MAX_TOKEN_LIFETIME_SECS: f64 = 10.0 * 365.0 * 86_400.0;

const DEVICE_TYPES: &[VendorType] = &[VendorType::Charger];

/// The limits the adapter declares (see the crate docs).
pub const LIMITS: VendorLimits = VendorLimits {
    requests_per_minute: 90,
    burst: 10,
    rate_scope: QuotaScope::Account,
    daily_quota: None,
    max_concurrent: 4,
    pricing: None,
};

/// Where the adapter finds Easee.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EaseeConfig {
    /// The API host (`https://api.easee.com`), without `/api`.
    pub base_url: String,
    /// Timeout of one HTTP request, connection included.
    pub request_timeout: Duration,
}

impl Default for EaseeConfig {
    fn default() -> Self {
        Self { base_url: API_BASE_URL.to_owned(), request_timeout: Duration::from_secs(20) }
    }
}

impl EaseeConfig {
    /// Production settings.
    pub fn new() -> Self {
        Self::default()
    }

    /// These settings against a simulator mounted at `base` (`http://127.0.0.1:port/easee`).
    pub fn for_base_url(mut self, base: &str) -> Self {
        self.base_url = base.trim_end_matches('/').to_owned();
        self
    }
}

/// A charger command of Easee's, for [`EaseeAdapter::send_command`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum EaseeCommand {
    /// `start_charging`: start (authorize) a session on a charger that awaits a start.
    StartCharging,
    /// `stop_charging`: stop the session; the charger awaits a start.
    StopCharging,
    /// `pause_charging`: pause (Easee sets the dynamic charger current to 0).
    PauseCharging,
    /// `resume_charging`: resume (Easee restores the dynamic charger current).
    ResumeCharging,
    /// `set_dynamic_charger_current`: the volatile current limit, A (6..=32), for `minutes`
    /// (0 = until changed).
    SetDynamicChargerCurrent {
        /// The limit, A.
        amps: f64,
        /// Time to live, minutes (0 = until changed).
        minutes: u32,
    },
}

impl EaseeCommand {
    /// The command's path segment.
    pub const fn path(&self) -> &'static str {
        match self {
            EaseeCommand::StartCharging => "start_charging",
            EaseeCommand::StopCharging => "stop_charging",
            EaseeCommand::PauseCharging => "pause_charging",
            EaseeCommand::ResumeCharging => "resume_charging",
            EaseeCommand::SetDynamicChargerCurrent { .. } => "set_dynamic_charger_current",
        }
    }
}

/// The Easee cloud adapter.
pub struct EaseeAdapter {
    config: EaseeConfig,
    client: EaseeClient,
    clock: Arc<dyn Clock>,
    info: VendorInfo,
}

impl fmt::Debug for EaseeAdapter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EaseeAdapter").field("config", &self.config).finish_non_exhaustive()
    }
}

impl EaseeAdapter {
    /// An adapter with its own HTTP client. `clock` stamps observations and computes
    /// credential expiry.
    pub fn new(config: EaseeConfig, clock: Arc<dyn Clock>) -> Self {
        let connect = config.request_timeout.min(Duration::from_secs(10));
        let http = reqwest::Client::builder()
            .connect_timeout(connect)
            .user_agent(concat!("oemgate-easee/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default();
        Self::with_http_client(config, clock, http)
    }

    /// An adapter sharing an existing HTTP client (connection pool). The per-request timeout
    /// of `config` still applies.
    pub fn with_http_client(
        config: EaseeConfig,
        clock: Arc<dyn Clock>,
        http: reqwest::Client,
    ) -> Self {
        let client =
            EaseeClient::new(http, &config.base_url, config.request_timeout, clock.clone());
        let info = VendorInfo { name: VENDOR, display_name: "Easee", device_types: DEVICE_TYPES };
        Self { config, client, clock, info }
    }

    /// The configuration.
    pub fn config(&self) -> &EaseeConfig {
        &self.config
    }

    /// Links an account: logs in with the user's Easee user name (e-mail or phone number) and
    /// password, once, and returns the credentials to store. A wrong login is `Unauthorized`.
    pub async fn login(&self, user_name: &str, password: &str) -> AdapterResult<Credentials> {
        if user_name.trim().is_empty() || password.is_empty() {
            return Err(AdapterError::new(
                ErrorKind::Unauthorized,
                VENDOR,
                "login: user name and password are required",
            ));
        }
        let token = self.client.login(user_name.trim(), password).await?;
        Ok(self.credentials_from(token, None))
    }

    fn credentials_from(&self, token: TokenResponse, old_refresh: Option<&str>) -> Credentials {
        let now = self.clock.now();
        let expires_at = token
            .expires_in
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map(|s| s.min(MAX_TOKEN_LIFETIME_SECS))
            .and_then(|s| chrono::Duration::from_std(Duration::from_secs_f64(s)).ok())
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

    /// The charger's serial, checked before it goes into a path.
    fn serial<'a>(&self, device: &'a DeviceRef) -> AdapterResult<&'a str> {
        if device.device_type != VendorType::Charger {
            return Err(AdapterError::new(
                ErrorKind::Unsupported,
                VENDOR,
                format!("Easee serves chargers, not a {}", device.device_type),
            ));
        }
        let serial = device.vendor_id.as_str();
        let valid = !serial.is_empty()
            && serial.len() <= 32
            && serial.chars().all(|c| c.is_ascii_alphanumeric());
        if valid {
            Ok(serial)
        } else {
            Err(AdapterError::new(
                ErrorKind::NotFound,
                VENDOR,
                format!("{serial:?} is not an Easee charger serial"),
            ))
        }
    }

    /// Sends one of Easee's charger commands. Success means Easee accepted it (HTTP 202), not
    /// that the charger carried it out. `SetDynamicChargerCurrent` outside 6..=32 A (or 0 A,
    /// which Easee treats as a pause) is `Rejected` without a request.
    pub async fn send_command(
        &self,
        account: &AccountRef,
        device: &DeviceRef,
        command: EaseeCommand,
    ) -> AdapterResult<CommandReceipt> {
        let serial = self.serial(device)?;
        let body = match command {
            EaseeCommand::SetDynamicChargerCurrent { amps, minutes } => {
                if !amps.is_finite() || !(MIN_CURRENT_A..=MAX_CURRENT_A).contains(&amps) {
                    return Err(AdapterError::new(
                        ErrorKind::Rejected,
                        VENDOR,
                        format!(
                            "max current {amps} A is outside {MIN_CURRENT_A}..={MAX_CURRENT_A} A"
                        ),
                    ));
                }
                let request = DynamicCurrentRequest { amps, minutes };
                Some(serde_json::to_value(request).map_err(|e| {
                    AdapterError::new(ErrorKind::Protocol, VENDOR, "command body").with_source(e)
                })?)
            }
            _ => None,
        };
        let token = self.bearer(account)?;
        let path = format!("/api/chargers/{serial}/commands/{}", command.path());
        let reply = self.client.command(token, &path, body.as_ref(), command.path()).await?;
        tracing::debug!(target: "oemgate_easee", serial, command = command.path(), "accepted");
        Ok(CommandReceipt { vendor_action_id: action_id(reply.as_ref()), requests: 1 })
    }
}

/// `commandId:ticks` of a command answer.
fn action_id(reply: Option<&CommandReply>) -> Option<String> {
    let first = reply?.first()?;
    match (first.command_id, first.ticks) {
        (Some(id), Some(ticks)) => Some(format!("{id}:{ticks}")),
        (Some(id), None) => Some(id.to_string()),
        (None, Some(ticks)) => Some(ticks.to_string()),
        (None, None) => None,
    }
}

#[async_trait]
impl VendorAdapter for EaseeAdapter {
    fn info(&self) -> &VendorInfo {
        &self.info
    }

    /// See the crate docs: 90 per minute, burst 10, per account.
    fn limits(&self) -> VendorLimits {
        LIMITS
    }

    fn poll_cost(&self, device_type: VendorType) -> u32 {
        let _ = device_type;
        1
    }

    /// `POST /api/accounts/refresh_token` with the stored access and refresh tokens.
    async fn refresh_credentials(&self, account: &AccountRef) -> AdapterResult<Credentials> {
        let creds = &account.credentials;
        let Some(refresh) = creds.refresh_token.as_deref().filter(|t| !t.trim().is_empty()) else {
            return Err(AdapterError::new(
                ErrorKind::Unauthorized,
                VENDOR,
                "no refresh token; the user must link the Easee account again",
            ));
        };
        let token = self.client.refresh(&creds.access_token, refresh).await?;
        Ok(self.credentials_from(token, Some(refresh)))
    }

    /// `GET /api/accounts/products`: the user's sites, circuits and chargers.
    async fn discover(&self, account: &AccountRef) -> AdapterResult<Vec<DiscoveredDevice>> {
        let token = self.bearer(account)?;
        let sites: Vec<ProductSite> =
            self.client.get(token, "/api/accounts/products", "products", Scope::Account).await?;
        Ok(map::discovered_devices(&sites))
    }

    fn chargers(&self) -> Option<&dyn ChargerApi> {
        Some(self)
    }
}

#[async_trait]
impl ChargerApi for EaseeAdapter {
    /// `GET /api/chargers/{serial}/state`.
    async fn read_charger(
        &self,
        account: &AccountRef,
        device: &DeviceRef,
    ) -> AdapterResult<Observation> {
        let serial = self.serial(device)?;
        let token = self.bearer(account)?;
        let path = format!("/api/chargers/{serial}/state");
        let state: ChargerState =
            self.client.get(token, &path, "charger state", Scope::Charger).await?;
        let now = self.clock.now();
        let charger = map::charger_from_state(device, &state, now);
        Ok(Observation {
            state: DeviceState::Charger(Box::new(charger)),
            observed_at: now,
            asleep: false,
            requests: 1,
        })
    }

    /// `start_charging` / `stop_charging`.
    async fn set_charging(
        &self,
        account: &AccountRef,
        device: &DeviceRef,
        start: bool,
    ) -> AdapterResult<CommandReceipt> {
        let command = if start { EaseeCommand::StartCharging } else { EaseeCommand::StopCharging };
        self.send_command(account, device, command).await
    }

    /// `set_dynamic_charger_current {"amps":amps,"minutes":0}`.
    async fn set_max_current(
        &self,
        account: &AccountRef,
        device: &DeviceRef,
        amps: f64,
    ) -> AdapterResult<CommandReceipt> {
        let command = EaseeCommand::SetDynamicChargerCurrent { amps, minutes: 0 };
        self.send_command(account, device, command).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oemgate_core::{BatteryOperationMode, Command, ManualClock};

    fn adapter() -> EaseeAdapter {
        // Port 9 (discard) on localhost: any request that got out would fail as Transient.
        let config = EaseeConfig::new().for_base_url("http://127.0.0.1:9/");
        let clock = Arc::new(ManualClock::new(chrono::DateTime::UNIX_EPOCH));
        EaseeAdapter::new(config, clock)
    }

    fn account() -> AccountRef {
        AccountRef {
            user_id: "u".into(),
            vendor: VENDOR.into(),
            account_id: "a".into(),
            credentials: Credentials { access_token: "t".into(), ..Default::default() },
        }
    }

    fn charger(serial: &str) -> DeviceRef {
        DeviceRef {
            id: "d".into(),
            user_id: "u".into(),
            device_type: VendorType::Charger,
            vendor_id: serial.into(),
            site_id: Some("1".into()),
        }
    }

    #[test]
    fn serves_chargers_only() {
        let a = adapter();
        assert_eq!(a.info().device_types, DEVICE_TYPES);
        assert!(a.chargers().is_some());
        assert!(a.vehicles().is_none() && a.hvacs().is_none() && a.batteries().is_none());
        assert_eq!(a.poll_cost(VendorType::Charger), 1);
        assert_eq!(a.config().base_url, "http://127.0.0.1:9");
    }

    #[test]
    fn limits_fit_pyeasee_s_budget() {
        let l = adapter().limits();
        assert_eq!(l.rate_scope, QuotaScope::Account);
        assert!(l.burst >= 1 && l.burst <= l.requests_per_minute);
        // Any 300 s of the scheduler's bucket stays within 500 requests, any 60 s within 100.
        assert!(l.burst + 5 * l.requests_per_minute <= 500);
        assert!(l.burst + l.requests_per_minute <= 100);
        assert!(l.daily_quota.is_none() && l.pricing.is_none());
    }

    #[tokio::test]
    async fn refusals_before_any_request() {
        let a = adapter();
        let kind = |r: AdapterResult<CommandReceipt>| r.err().map(|e| e.kind());
        for amps in [0.0, 5.9, 32.5, f64::NAN, f64::INFINITY] {
            let command = Command::SetMaxCurrent { amps };
            let r = a.execute(&account(), &charger("EH123456"), &command).await;
            assert_eq!(kind(r), Some(ErrorKind::Rejected), "{amps}");
        }
        let mode = Command::SetOperationMode { mode: BatteryOperationMode::Idle };
        let r = a.execute(&account(), &charger("EH123456"), &mode).await;
        assert_eq!(kind(r), Some(ErrorKind::Unsupported));
        let e = a.poll(&account(), &charger("EH12/../3")).await.err().map(|e| e.kind());
        assert_eq!(e, Some(ErrorKind::NotFound));
        let mut expired = account();
        expired.credentials.expires_at = Some(chrono::DateTime::UNIX_EPOCH);
        let e = a.poll(&expired, &charger("EH123456")).await.err().map(|e| e.kind());
        assert_eq!(e, Some(ErrorKind::AuthExpired));
        let e = a.discover(&expired).await.err().map(|e| e.kind());
        assert_eq!(e, Some(ErrorKind::AuthExpired));
        let e = a.refresh_credentials(&account()).await.err().map(|e| e.kind());
        assert_eq!(e, Some(ErrorKind::Unauthorized), "no refresh token");
        let e = a.login("", "x").await.err().map(|e| e.kind());
        assert_eq!(e, Some(ErrorKind::Unauthorized));
    }

    #[tokio::test]
    async fn unreachable_host_is_transient() {
        let e = adapter().poll(&account(), &charger("EH123456")).await.err().map(|e| e.kind());
        assert_eq!(e, Some(ErrorKind::Transient));
    }

    #[test]
    fn action_ids() {
        use model::CommandResponse;
        let reply = CommandReply::One(CommandResponse {
            device: Some("EH1".into()),
            command_id: Some(48),
            ticks: Some(638_266_374_407_066_800),
        });
        assert_eq!(action_id(Some(&reply)).as_deref(), Some("48:638266374407066800"));
        assert_eq!(action_id(None), None);
        assert_eq!(action_id(Some(&CommandReply::Many(vec![]))), None);
    }
}
