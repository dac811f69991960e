//! oemgate-zaptec: the Zaptec EV charger cloud adapter, and a simulator of Zaptec's cloud
//! (feature `sim`).
//!
//! [`ZaptecAdapter`] implements [`VendorAdapter`] and [`ChargerApi`] against
//! `https://api.zaptec.com/api/` and Zaptec's token endpoint `https://api.zaptec.com/oauth/token`.
//!
//! # Layout
//!
//! - [`client`]: HTTP (bearer token, per-request timeouts, no retries) and the classification
//!   of every Zaptec failure into an [`ErrorKind`] (the table is in that module's docs),
//!   including the API gateway's 429 and Zaptec's own `Code`s (`ErrorCodes` of
//!   `/api/constants`).
//! - [`model`]: Zaptec's JSON, only the fields read, in both of Zaptec's spellings
//!   (PascalCase as served, camelCase as in its OpenAPI schema).
//! - [`map`]: pure functions from the state list (and the installation's hierarchy) to the
//!   normalized [`oemgate_core::Charger`]; units, signs, modes, capabilities and interventions
//!   are documented there.
//! - `sim` (feature `sim`): `ZaptecSim`, Zaptec's cloud as an axum router over
//!   `oemgate_sim::World`. It expects to be mounted under **`/zaptec`** of an
//!   `oemgate_sim::SimHost`; [`ZaptecConfig::for_base_url`] with `http://host/zaptec` points
//!   the adapter at it (`/zaptec/api/...` and `/zaptec/oauth/token`).
//!
//! # Linking and credentials
//!
//! Zaptec has no authorization-code flow for third parties: its OAuth endpoint takes the
//! **password grant** (`grant_type=password&username&password`, form-encoded) and returns
//! `{"access_token","token_type":"Bearer","expires_in"}` **without a refresh token**. The user
//! types their Zaptec login into the link flow; [`ZaptecAdapter::login`] turns it into
//! [`Credentials`] with:
//! - `access_token`: the bearer token, `expires_at` = now + `expires_in` (about a day);
//! - `refresh_token`: the **password** (there is no refresh token: a new token needs a new
//!   login; `Credentials`' `Debug` redacts it, and it is never logged);
//! - `extra["username"]` ([`EXTRA_USERNAME`]): the login name (not a secret).
//!
//! [`VendorAdapter::refresh_credentials`] logs in again with them and keeps the password as
//! the "refresh token", so it is not single-use. Zaptec answers an expired, unknown or revoked
//! token alike (401), so such calls are `AuthExpired`; a refused login (wrong or changed
//! password, disabled user: 400 `invalid_grant`) is `Unauthorized` and the user must link
//! again. The adapter checks `expires_at` first and sends no request that is sure to fail.
//!
//! # Devices and reads
//!
//! [`VendorAdapter::discover`] pages through `GET chargers?PageIndex=&PageSize=100` (usually
//! one request). Every charger is a device with its GUID as `vendor_id` and its
//! `InstallationId` as `site_id`; Zaptec Sense / Home APM meters, which Zaptec lists alongside,
//! are skipped.
//!
//! A poll ([`VendorAdapter::poll_cost`] 2) reads `GET chargers/{id}/state`, a list of
//! `StateId` observations (710 operation mode, 513 power in W, 708 current set in A, −2
//! online, ...), and `GET installation/{id}/hierarchy`, which says whether the charger shares
//! its installation with other chargers (see *Max current* below). A 403 on the hierarchy (the
//! user is not the installation's owner) does not fail the read: it only makes `setMaxCurrent`
//! not capable. [`VendorAdapter::poll_batch`] reads each installation's hierarchy once for all
//! its chargers (the shared request is counted once, on the first charger it served) and stops
//! spending requests at the first account-wide failure (rate limit, auth, server error).
//!
//! # Commands
//!
//! - Start: `POST chargers/{id}/sendCommand/507` (`ResumeCharging`); stop:
//!   `POST chargers/{id}/sendCommand/506` (`StopChargingFinal`, a pause that holds until resumed).
//!   One request each. A refusal because the charger already is in that state is `Rejected`
//!   with a [`CommandRefused`] source ([`CommandRefused::is_no_op`]); no car, a full car:
//!   `PreconditionFailed`; an offline charger (`Code` 520): `DeviceOffline`.
//! - Max current: Zaptec limits current **per installation**
//!   (`POST installation/{id}/update {"availableCurrent":16}`), shared by the installation's
//!   chargers. The adapter sets it only for a charger that is its installation's only charger,
//!   where the installation's limit is the charger's: [`ChargerApi::set_max_current`] validates
//!   6–32 A locally (`Rejected` without a request), reads the hierarchy, and fails as
//!   `Unsupported` when other chargers share the installation or the user may not see it
//!   (Zaptec's hierarchy is live data, so this one read is needed to know; the capability
//!   reported by every poll already says so, and the API refuses the action up front),
//!   else posts the update: 2 requests.
//!
//! # Limits
//!
//! Zaptec's fair-use policy allows **10 requests per second per account** and asks clients to
//! honour `Retry-After` on 429. oemgate's limits are per minute with a burst; the scheduler's
//! bucket admits `burst + rate·1 s − 1` requests in any second, so the adapter declares
//! [`declared_limits`]: 420 per minute (7/s) with a burst of 4 per account, so no second ever
//! holds more than 10. Concurrency is bounded at 4; there is no daily quota and no price.
//! Zaptec also recommends changing an installation's current at most once per 15 minutes
//! (a third-party summary; unconfirmed); the per-minute limits cannot express a per-command
//! pace, so it is left to the caller's policy.
//!
//! # Quirks and decisions where the reference says "unconfirmed"
//!
//! - Timestamps in the state list carry no zone (UTC) and 0–7 fractional digits; values are
//!   strings (`"25.000"`), the `Pulse` (−1) has no value.
//! - The access token's lifetime comes from `expires_in` (Zaptec's is about 24 h); a token
//!   answer without it gets no `expires_at` and is found expired by its 401.
//! - Zaptec's error body (`{"Code","Details","Message"}` with the `ErrorCodes` of
//!   `/api/constants`) and the status codes of refused commands are not documented: `Code`
//!   528 `DeviceCommandRejected` is read as a refusal in the charger's current state, and
//!   520 `ErrorCommunicatingWithDevice` as an offline charger, whatever the HTTP status.
//! - The 429 body is the Azure API gateway's (`"Try again in N seconds."`), read when no
//!   `Retry-After` header came.
//! - `Connected_Requesting` (710 = 2) is reported as `PLUGGED_IN:STOPPED` (see [`map`]).
//! - `chargeRate` is `null` unless charging, as Enode documents it.

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
    AccountRef, AdapterError, AdapterResult, ChargerApi, Clock, CommandReceipt, Credentials,
    DeviceRef, DeviceState, DiscoveredDevice, ErrorKind, Observation, QuotaScope, VendorAdapter,
    VendorInfo, VendorLimits, VendorType,
};

pub use client::{CommandRefused, ZaptecApiError, api_error_of};
use client::{VENDOR, ZaptecClient};
use map::{ChargerStates, InstallationView, MaxCurrentControl, command_id};
use model::{ChargerList, Hierarchy, StateObservation, TokenResponse};

/// The API base URL.
pub const API_BASE_URL: &str = "https://api.zaptec.com/api";
/// The host of `/oauth/token`.
pub const AUTH_BASE_URL: &str = "https://api.zaptec.com";
/// The key in [`Credentials::extra`] that holds the Zaptec login name.
pub const EXTRA_USERNAME: &str = "username";
/// Chargers asked for per page of the charger list.
pub const CHARGERS_PAGE_SIZE: u32 = 100;
/// Discovery reads at most this many pages (5 000 chargers).
pub const MAX_CHARGER_PAGES: u32 = 50;
/// The lowest current the adapter sets, A (IEC 61851's minimum; Zaptec's chargers' too).
pub const MIN_CURRENT_A: f64 = 6.0;
/// The highest current the adapter sets, A (Zaptec Go and Pro deliver at most 32 A).
pub const MAX_CURRENT_A: f64 = 32.0;
/// Requests per poll of a charger: the state list and the installation's hierarchy.
pub const CHARGER_POLL_COST: u32 = 2;
/// The longest access-token lifetime believed.
const MAX_TOKEN_LIFETIME_SECS: i64 = 10 * 365 * 86_400;

const DEVICE_TYPES: &[VendorType] = &[VendorType::Charger];

/// Zaptec's published limit: requests per second per account (fair-use policy).
pub const PUBLISHED_REQUESTS_PER_SECOND: u32 = 10;

/// The limits the adapter declares (see the crate docs): at most 10 requests in any second.
pub const fn declared_limits() -> VendorLimits {
    let burst = 4;
    // burst + rate_per_second - 1 <= 10 in any one-second window.
    let per_second = PUBLISHED_REQUESTS_PER_SECOND + 1 - burst;
    VendorLimits {
        requests_per_minute: per_second * 60,
        burst,
        rate_scope: QuotaScope::Account,
        daily_quota: None,
        max_concurrent: 4,
        pricing: None,
    }
}

/// Where the adapter finds Zaptec. Zaptec has no application credentials: users log in with
/// their own user name and password.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ZaptecConfig {
    /// The API base URL, ending in `/api`.
    pub api_base_url: String,
    /// The base URL of `/oauth/token`.
    pub auth_base_url: String,
    /// Timeout of one HTTP request, connection included.
    pub request_timeout: Duration,
}

impl Default for ZaptecConfig {
    fn default() -> Self {
        Self {
            api_base_url: API_BASE_URL.to_owned(),
            auth_base_url: AUTH_BASE_URL.to_owned(),
            request_timeout: Duration::from_secs(10),
        }
    }
}

impl ZaptecConfig {
    /// Zaptec's production URLs with a 10 s request timeout.
    pub fn new() -> Self {
        Self::default()
    }

    /// These settings against a simulator mounted at `base` (`http://127.0.0.1:port/zaptec`).
    pub fn for_base_url(mut self, base: &str) -> Self {
        let base = base.trim_end_matches('/');
        self.api_base_url = format!("{base}/api");
        self.auth_base_url = base.to_owned();
        self
    }

    /// These settings with another request timeout.
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }
}

/// The Zaptec adapter.
pub struct ZaptecAdapter {
    config: ZaptecConfig,
    client: ZaptecClient,
    clock: Arc<dyn Clock>,
    info: VendorInfo,
}

impl fmt::Debug for ZaptecAdapter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ZaptecAdapter").field("config", &self.config).finish_non_exhaustive()
    }
}

/// Errors after which a batch spends no more requests on the account.
fn account_wide(kind: ErrorKind) -> bool {
    matches!(
        kind,
        ErrorKind::RateLimited
            | ErrorKind::AuthExpired
            | ErrorKind::Unauthorized
            | ErrorKind::Transient
    )
}

/// A copy of an error for the other devices of a batch (the source stays with the first).
fn copy_error(e: &AdapterError) -> AdapterError {
    let mut copy = AdapterError::new(e.kind(), VENDOR, e.message().to_owned());
    if let Some(after) = e.retry_after() {
        copy = copy.with_retry_after(after);
    }
    copy
}

/// A Zaptec GUID as used in paths; anything else would change the path.
fn path_id<'a>(id: &'a str, what: &str) -> AdapterResult<&'a str> {
    let id = id.trim();
    let valid = !id.is_empty()
        && id.len() <= 64
        && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if valid {
        Ok(id)
    } else {
        Err(AdapterError::new(
            ErrorKind::NotFound,
            VENDOR,
            format!("{what} id {id:?} is not a Zaptec id"),
        ))
    }
}

fn not_a_charger(device: &DeviceRef, what: &str) -> AdapterError {
    AdapterError::new(
        ErrorKind::Unsupported,
        VENDOR,
        format!("{what} is not supported for device type {}", device.device_type.as_str()),
    )
}

impl ZaptecAdapter {
    /// An adapter with its own HTTP client. `clock` stamps observations and computes
    /// credential expiry.
    pub fn new(config: ZaptecConfig, clock: Arc<dyn Clock>) -> Self {
        let connect = config.request_timeout.min(Duration::from_secs(10));
        let http = reqwest::Client::builder()
            .connect_timeout(connect)
            .user_agent(concat!("oemgate-zaptec/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default();
        Self::with_http_client(config, clock, http)
    }

    /// An adapter sharing an existing HTTP client (connection pool). The per-request timeout
    /// of `config` still applies.
    pub fn with_http_client(
        config: ZaptecConfig,
        clock: Arc<dyn Clock>,
        http: reqwest::Client,
    ) -> Self {
        let client = ZaptecClient::new(
            http,
            &config.api_base_url,
            &config.auth_base_url,
            config.request_timeout,
            clock.clone(),
        );
        let info = VendorInfo { name: VENDOR, display_name: "Zaptec", device_types: DEVICE_TYPES };
        Self { config, client, clock, info }
    }

    /// The configuration.
    pub fn config(&self) -> &ZaptecConfig {
        &self.config
    }

    /// Links an account: logs in with the user's Zaptec user name and password (OAuth password
    /// grant, one request) and returns the credentials to store (see the crate docs). A
    /// refused login is `Unauthorized`.
    pub async fn login(&self, username: &str, password: &str) -> AdapterResult<Credentials> {
        let username = username.trim();
        if username.is_empty() || password.is_empty() {
            return Err(AdapterError::new(
                ErrorKind::Unauthorized,
                VENDOR,
                "login: the Zaptec user name and password are required",
            ));
        }
        let token = self.client.token(username, password, "login").await?;
        let mut extra = BTreeMap::new();
        extra.insert(EXTRA_USERNAME.to_owned(), username.to_owned());
        Ok(self.credentials_from(token, password, extra))
    }

    fn credentials_from(
        &self,
        token: TokenResponse,
        password: &str,
        extra: BTreeMap<String, String>,
    ) -> Credentials {
        let now = self.clock.now();
        let expires_at = token
            .expires_in
            .filter(|s| *s >= 0)
            .and_then(|s| chrono::Duration::try_seconds(s.min(MAX_TOKEN_LIFETIME_SECS)))
            .map(|d| now + d);
        Credentials {
            access_token: token.access_token,
            refresh_token: Some(password.to_owned()),
            expires_at,
            extra,
        }
    }

    /// The bearer token, or `AuthExpired` without a request when it is known to be expired.
    fn bearer<'a>(&self, account: &'a AccountRef) -> AdapterResult<&'a str> {
        account.credentials.bearer(VENDOR, self.clock.now())
    }

    /// `GET chargers/{id}/state`.
    async fn read_states(&self, token: &str, charger: &str) -> AdapterResult<ChargerStates> {
        let path = format!("chargers/{charger}/state");
        let list: Vec<StateObservation> = self.client.get(token, &path, &[], "state").await?;
        Ok(ChargerStates::new(&list))
    }

    /// `GET installation/{id}/hierarchy`; `None` when Zaptec refuses it (403: the user is not
    /// the installation's owner) or does not know it (404).
    async fn read_hierarchy(
        &self,
        token: &str,
        installation: &str,
    ) -> AdapterResult<Option<Hierarchy>> {
        let path = format!("installation/{installation}/hierarchy");
        match self.client.get(token, &path, &[], "installation hierarchy").await {
            Ok(h) => Ok(Some(h)),
            Err(e) if matches!(e.kind(), ErrorKind::Unauthorized | ErrorKind::NotFound) => {
                tracing::debug!(target: "oemgate_zaptec", installation, kind = %e.kind(), "no access to the installation");
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    fn observation(
        &self,
        device: &DeviceRef,
        states: &ChargerStates,
        hierarchy: Option<&Option<Hierarchy>>,
        requests: u32,
    ) -> Observation {
        let now = self.clock.now();
        let view = match hierarchy {
            None => InstallationView::NoInstallation,
            Some(None) => InstallationView::NoAccess,
            Some(Some(h)) => InstallationView::Hierarchy(h),
        };
        let charger = map::charger(device, states, view, now);
        Observation {
            state: DeviceState::Charger(Box::new(charger)),
            observed_at: now,
            asleep: false,
            requests,
        }
    }

    /// Reads the chargers of one installation (`None`: chargers without one): each state list,
    /// then the hierarchy once. Returns the results in the order of `devices`, and the first
    /// account-wide failure.
    async fn poll_installation(
        &self,
        token: &str,
        installation: Option<&str>,
        devices: &[&DeviceRef],
    ) -> (Vec<AdapterResult<Observation>>, Option<AdapterError>) {
        let mut stop: Option<AdapterError> = None;
        let mut states: Vec<AdapterResult<ChargerStates>> = Vec::with_capacity(devices.len());
        for device in devices {
            if let Some(e) = &stop {
                states.push(Err(copy_error(e)));
                continue;
            }
            let result = match path_id(&device.vendor_id, "charger") {
                Ok(id) => self.read_states(token, id).await,
                Err(e) => Err(e),
            };
            if let Err(e) = &result
                && account_wide(e.kind())
            {
                stop = Some(copy_error(e));
            }
            states.push(result);
        }
        let any_ok = states.iter().any(Result::is_ok);
        let hierarchy = match installation {
            Some(inst) if any_ok && stop.is_none() => Some(self.read_hierarchy(token, inst).await),
            _ => None,
        };
        let (found, mut failed) = match hierarchy {
            Some(Ok(h)) => (Some(h), None),
            Some(Err(e)) => (None, Some(e)),
            None => (None, None),
        };
        // Every device after the first failure gets a copy; the first keeps the source.
        let failure_copy = failed.as_ref().or(stop.as_ref()).map(copy_error);
        if let Some(e) = &failed
            && stop.is_none()
            && account_wide(e.kind())
        {
            stop = Some(copy_error(e));
        }
        let mut hierarchy_counted = false;
        let mut out = Vec::with_capacity(devices.len());
        for (device, state) in devices.iter().zip(states) {
            let result = match (state, installation) {
                (Err(e), _) => Err(e),
                (Ok(s), None) => Ok(self.observation(device, &s, None, 1)),
                (Ok(s), Some(_)) => match (&found, failed.take()) {
                    (Some(h), _) => {
                        let extra = u32::from(!hierarchy_counted);
                        hierarchy_counted = true;
                        Ok(self.observation(device, &s, Some(h), 1 + extra))
                    }
                    (None, Some(e)) => Err(e),
                    (None, None) => Err(failure_copy.as_ref().map_or_else(
                        || AdapterError::new(ErrorKind::Protocol, VENDOR, "installation not read"),
                        copy_error,
                    )),
                },
            };
            out.push(result);
        }
        (out, stop)
    }

    fn installation_of(device: &DeviceRef) -> AdapterResult<Option<&str>> {
        match device.site_id.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            Some(site) => path_id(site, "installation").map(Some),
            None => Ok(None),
        }
    }

    async fn send_command(
        &self,
        account: &AccountRef,
        device: &DeviceRef,
        command: u32,
        what: &str,
    ) -> AdapterResult<CommandReceipt> {
        if device.device_type != VendorType::Charger {
            return Err(not_a_charger(device, what));
        }
        let charger = path_id(&device.vendor_id, "charger")?;
        let token = self.bearer(account)?;
        let path = format!("chargers/{charger}/sendCommand/{command}");
        self.client.post(token, &path, None, what).await?;
        tracing::debug!(target: "oemgate_zaptec", charger, command, "command accepted");
        Ok(CommandReceipt { vendor_action_id: None, requests: 1 })
    }
}

#[async_trait]
impl VendorAdapter for ZaptecAdapter {
    fn info(&self) -> &VendorInfo {
        &self.info
    }

    /// 10 requests per second per account, declared as [`declared_limits`].
    fn limits(&self) -> VendorLimits {
        declared_limits()
    }

    fn poll_cost(&self, device_type: VendorType) -> u32 {
        match device_type {
            VendorType::Charger => CHARGER_POLL_COST,
            _ => 1,
        }
    }

    /// Logs in again with the stored user name and password.
    async fn refresh_credentials(&self, account: &AccountRef) -> AdapterResult<Credentials> {
        let creds = &account.credentials;
        let user = creds.extra.get(EXTRA_USERNAME).map(|u| u.trim()).filter(|u| !u.is_empty());
        let password = creds.refresh_token.as_deref().filter(|p| !p.is_empty());
        let (Some(user), Some(password)) = (user, password) else {
            return Err(AdapterError::new(
                ErrorKind::Unauthorized,
                VENDOR,
                "no Zaptec user name or password stored; the user must link again",
            ));
        };
        let token = self.client.token(user, password, "token refresh (login)").await?;
        Ok(self.credentials_from(token, password, creds.extra.clone()))
    }

    /// `GET chargers?PageIndex=&PageSize=100`, page by page.
    async fn discover(&self, account: &AccountRef) -> AdapterResult<Vec<DiscoveredDevice>> {
        let token = self.bearer(account)?;
        let mut items = Vec::new();
        for page in 0..MAX_CHARGER_PAGES {
            let query =
                [("PageIndex", page.to_string()), ("PageSize", CHARGERS_PAGE_SIZE.to_string())];
            let list: ChargerList = self.client.get(token, "chargers", &query, "chargers").await?;
            let count = list.data.len();
            items.extend(list.data);
            let pages = list.pages.and_then(|p| u32::try_from(p).ok()).unwrap_or(1);
            if count == 0 || page + 1 >= pages {
                break;
            }
        }
        Ok(map::discovered_devices(&items))
    }

    fn chargers(&self) -> Option<&dyn ChargerApi> {
        Some(self)
    }

    /// Reads each installation's hierarchy once for all of its chargers (see the crate docs).
    async fn poll_batch(
        &self,
        account: &AccountRef,
        devices: &[DeviceRef],
    ) -> Vec<AdapterResult<Observation>> {
        let mut out: Vec<Option<AdapterResult<Observation>>> =
            devices.iter().map(|_| None).collect();
        let mut groups: Vec<(Option<String>, Vec<usize>)> = Vec::new();
        for (i, device) in devices.iter().enumerate() {
            if device.device_type != VendorType::Charger {
                out[i] = Some(self.poll(account, device).await);
                continue;
            }
            match Self::installation_of(device) {
                Err(e) => out[i] = Some(Err(e)),
                Ok(installation) => {
                    let key = installation.map(str::to_ascii_lowercase);
                    match groups.iter_mut().find(|(k, _)| *k == key) {
                        Some((_, members)) => members.push(i),
                        None => groups.push((key, vec![i])),
                    }
                }
            }
        }
        let mut stop: Option<AdapterError> = self.bearer(account).err();
        let token = account.credentials.access_token.as_str();
        for (_, members) in &groups {
            if let Some(e) = &stop {
                for &i in members {
                    out[i] = Some(Err(copy_error(e)));
                }
                continue;
            }
            let refs: Vec<&DeviceRef> = members.iter().map(|&i| &devices[i]).collect();
            let installation = Self::installation_of(refs[0]).ok().flatten();
            let (results, failure) = self.poll_installation(token, installation, &refs).await;
            for (&i, result) in members.iter().zip(results) {
                out[i] = Some(result);
            }
            if failure.is_some() {
                stop = failure;
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
impl ChargerApi for ZaptecAdapter {
    /// `GET chargers/{id}/state` and `GET installation/{id}/hierarchy`.
    async fn read_charger(
        &self,
        account: &AccountRef,
        device: &DeviceRef,
    ) -> AdapterResult<Observation> {
        if device.device_type != VendorType::Charger {
            return Err(not_a_charger(device, "read"));
        }
        path_id(&device.vendor_id, "charger")?;
        let installation = Self::installation_of(device)?;
        let token = self.bearer(account)?;
        let (mut results, _) = self.poll_installation(token, installation, &[device]).await;
        results.pop().unwrap_or_else(|| {
            Err(AdapterError::new(ErrorKind::Protocol, VENDOR, "read produced no result"))
        })
    }

    /// `sendCommand/507` (`ResumeCharging`) or `sendCommand/506` (`StopChargingFinal`).
    async fn set_charging(
        &self,
        account: &AccountRef,
        device: &DeviceRef,
        start: bool,
    ) -> AdapterResult<CommandReceipt> {
        if start {
            self.send_command(account, device, command_id::RESUME_CHARGING, "resume_charging").await
        } else {
            self.send_command(
                account,
                device,
                command_id::STOP_CHARGING_FINAL,
                "stop_charging_final",
            )
            .await
        }
    }

    /// Sets the available current of the charger's installation, when the charger is the
    /// installation's only charger (see the crate docs): the hierarchy, then
    /// `POST installation/{id}/update {"availableCurrent":amps}`.
    async fn set_max_current(
        &self,
        account: &AccountRef,
        device: &DeviceRef,
        amps: f64,
    ) -> AdapterResult<CommandReceipt> {
        if device.device_type != VendorType::Charger {
            return Err(not_a_charger(device, "set_max_current"));
        }
        if !amps.is_finite() || !(MIN_CURRENT_A..=MAX_CURRENT_A).contains(&amps) {
            return Err(AdapterError::new(
                ErrorKind::Rejected,
                VENDOR,
                format!("max current {amps} A is outside {MIN_CURRENT_A}..={MAX_CURRENT_A} A"),
            ));
        }
        let charger = path_id(&device.vendor_id, "charger")?;
        let Some(installation) = Self::installation_of(device)? else {
            return Err(AdapterError::new(
                ErrorKind::Unsupported,
                VENDOR,
                "set_max_current: Zaptec names no installation for this charger",
            ));
        };
        let token = self.bearer(account)?;
        let hierarchy = self.read_hierarchy(token, installation).await?;
        let view = match &hierarchy {
            Some(h) => InstallationView::Hierarchy(h),
            None => InstallationView::NoAccess,
        };
        match map::max_current_control(charger, view) {
            MaxCurrentControl::SoleCharger => {}
            MaxCurrentControl::Shared { chargers } => {
                return Err(AdapterError::new(
                    ErrorKind::Unsupported,
                    VENDOR,
                    format!(
                        "set_max_current: the installation's current is shared by {chargers} \
                         chargers"
                    ),
                ));
            }
            MaxCurrentControl::NoAccess => {
                return Err(AdapterError::new(
                    ErrorKind::Unsupported,
                    VENDOR,
                    "set_max_current: the Zaptec user may not change the installation",
                ));
            }
        }
        let path = format!("installation/{installation}/update");
        let body = map::installation_update_body(amps);
        self.client.post(token, &path, Some(&body), "installation update").await?;
        tracing::debug!(target: "oemgate_zaptec", installation, amps, "available current accepted");
        Ok(CommandReceipt { vendor_action_id: None, requests: 2 })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oemgate_core::{Command, ManualClock};

    fn adapter() -> ZaptecAdapter {
        // Port 9 (discard) on localhost: any request that got out would fail as Transient.
        let config = ZaptecConfig::new().for_base_url("http://127.0.0.1:9");
        let clock = Arc::new(ManualClock::new(chrono::DateTime::UNIX_EPOCH));
        ZaptecAdapter::new(config, clock)
    }

    fn account() -> AccountRef {
        AccountRef {
            user_id: "u".into(),
            vendor: VENDOR.into(),
            account_id: "a".into(),
            credentials: Credentials { access_token: "t".into(), ..Default::default() },
        }
    }

    fn device(id: &str, site: Option<&str>) -> DeviceRef {
        DeviceRef {
            id: "d".into(),
            user_id: "u".into(),
            device_type: VendorType::Charger,
            vendor_id: id.into(),
            site_id: site.map(Into::into),
        }
    }

    #[test]
    fn serves_chargers() {
        let a = adapter();
        assert_eq!(a.info().device_types, DEVICE_TYPES);
        assert_eq!(a.info().name, "ZAPTEC");
        assert!(a.chargers().is_some());
        assert!(a.vehicles().is_none() && a.hvacs().is_none() && a.batteries().is_none());
        assert_eq!(a.poll_cost(VendorType::Charger), 2);
    }

    #[test]
    fn limits_never_exceed_ten_per_second() {
        let l = declared_limits();
        assert_eq!(l.rate_scope, QuotaScope::Account);
        assert!(l.burst >= CHARGER_POLL_COST && l.burst <= l.requests_per_minute);
        assert!(l.burst + l.requests_per_minute / 60 - 1 <= PUBLISHED_REQUESTS_PER_SECOND);
        assert_eq!(l.requests_per_minute, 420);
        assert!(l.daily_quota.is_none() && l.pricing.is_none());
        assert_eq!(adapter().limits(), l);
    }

    #[tokio::test]
    async fn refusals_before_any_request() {
        let a = adapter();
        let d = device("2c9b6f1e-0000-4000-8000-000000000001", Some("inst-1"));
        for amps in [5.9, 32.5, f64::NAN, f64::INFINITY, -1.0] {
            let e = a.execute(&account(), &d, &Command::SetMaxCurrent { amps }).await.unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Rejected, "{amps}");
        }
        let no_site = device("2c9b6f1e-0000-4000-8000-000000000001", None);
        let e = a
            .execute(&account(), &no_site, &Command::SetMaxCurrent { amps: 16.0 })
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unsupported);
        let e = a.poll(&account(), &device("../x", Some("i"))).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound);
        let e = a.poll(&account(), &device("c", Some("a/b"))).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound);
        let e = a.execute(&account(), &d, &Command::WakeUp).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unsupported);
        let mut expired = account();
        expired.credentials.expires_at = Some(chrono::DateTime::UNIX_EPOCH);
        let e = a.poll(&expired, &d).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::AuthExpired);
        let e = a.discover(&expired).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::AuthExpired);
        let e = a.execute(&expired, &d, &Command::StartCharging).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::AuthExpired);
        let batch = a.poll_batch(&expired, &[d.clone(), device("c2", Some("inst-2"))]).await;
        assert!(
            batch.iter().all(|r| r.as_ref().is_err_and(|e| e.kind() == ErrorKind::AuthExpired))
        );
        let mut nothing = account();
        nothing.credentials = Credentials::default();
        let e = a.refresh_credentials(&nothing).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unauthorized);
        let e = a.login(" ", "pw").await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unauthorized);
    }

    #[tokio::test]
    async fn unreachable_host_is_transient() {
        let a = adapter();
        let e = a.login("user@example.invalid", "pw").await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Transient);
    }
}
