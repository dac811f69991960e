//! oemgate-wallbox: the Wallbox EV charger cloud adapter (Pulsar, Commander, Copper, Quasar),
//! and a simulator of Wallbox's cloud (feature `sim`).
//!
//! [`WallboxAdapter`] implements [`VendorAdapter`] and [`ChargerApi`] against
//! `https://api.wall-box.com` and Wallbox's user API `https://user-api.wall-box.com` (tokens).
//!
//! # Layout
//!
//! - [`client`]: HTTP (per-request timeouts, the `Partner` header on token calls) and the
//!   classification of every Wallbox failure into an [`ErrorKind`] (the table is in that
//!   module's docs).
//! - [`model`]: Wallbox's JSON, only the fields read, tolerant of anything extra and of
//!   numbers sent as strings.
//! - [`map`]: pure functions from Wallbox's JSON to the normalized [`oemgate_core::Charger`];
//!   the `status_id` table, units, signs and capabilities are documented there.
//! - `sim` (feature `sim`): `WallboxSim`, Wallbox's cloud (both hosts) as one axum router over
//!   `oemgate_sim::World`. It expects to be mounted under **`/wallbox`** of an
//!   `oemgate_sim::SimHost`; point [`WallboxConfig::for_base_url`] at
//!   `http://host/wallbox` (both base URLs are the mount then).
//!
//! # Linking and credentials
//!
//! Wallbox has no OAuth and no application credentials: the user's e-mail and password sign
//! in ([`WallboxAdapter::sign_in`]: `GET /users/signin` with HTTP Basic and the header
//! `Partner: wallbox`). The answer's `token` is the access token, `refresh_token` refreshes it
//! (`GET /users/refresh-token` with `Authorization: Bearer <refresh_token>`), and `ttl` /
//! `refresh_token_ttl` are the expiry **instants in epoch milliseconds** (not durations).
//! The password is never stored: when the refresh token is refused or expired, the user
//! links again. [`Credentials::extra`] keeps Wallbox's `user_id` ([`EXTRA_USER_ID`]) and the
//! refresh token's expiry ([`EXTRA_REFRESH_EXPIRES_AT`], RFC 3339); neither is a secret.
//!
//! # Devices, reads and commands
//!
//! - Discovery: `GET v3/chargers/groups`, every charger of every group once; vendor id is the
//!   charger id, site id the group (Wallbox's location).
//! - Read: `GET chargers/status/{id}` (1 request, [`VendorAdapter::poll_cost`]).
//!   [`VendorAdapter::poll_batch`] of two or more chargers reads the groups list once
//!   (1 request for all, counted on the first observation) and maps each charger's entry; a
//!   charger whose entry carries no status falls back to its own status read.
//! - Start / stop: `POST v3/chargers/{id}/remote-action` with `{"action":1}` (resume) or
//!   `{"action":2}` (pause).
//! - Current limit: `PUT v2/charger/{id}` with `{"maxChargingCurrent": n}`, whole amperes
//!   within 6–80 A (checked locally first; the charger refuses more than its hardware maximum).
//! - Lock / unlock (not an Enode command): [`WallboxAdapter::set_locked`], `{"locked":1|0}`.
//!
//! # Limits
//!
//! Wallbox publishes no numbers. The adapter declares the cadence Home Assistant's
//! integration settled on after Wallbox throttled it: about one read per charger per 30 s,
//! spread over the chargers of an account. [`declared_limits`]: 4 requests per minute per
//! account, burst 2, one request at a time, no daily quota, no pricing.
//!
//! # Quirks and decisions where the reference says "unconfirmed"
//!
//! - `max_available_power` is read as amperes (Home Assistant shows it in A).
//! - `DISCONNECTED` (0, 163) is read as "the charger is not connected to Wallbox's cloud"
//!   (`isReachable: false`), `READY` (161, 162) as "no car connected": the charger's own
//!   state machine calls the no-car state "Ready".
//! - `last_sync` carries no zone and is taken as UTC.
//! - A token answer that says `"error": true` or a 4xx `status` inside an HTTP 200 is a refusal.
//!   A `ttl` below 1e11 is not a plausible epoch-millisecond instant (some clients were seen
//!   sending durations) and is ignored: the vendor's 401 then tells.
//! - Wallbox answers an expired, unknown and revoked access token alike (401), so such calls
//!   are `AuthExpired`; the refresh that follows tells a revoked one (`Unauthorized`).
//! - The refresh answer may rotate the refresh token; the adapter keeps the old one when the
//!   answer has none. The simulator makes refresh tokens single-use, the stricter reading.
//! - Remote actions to a charger without a car, locked or with a full car are answered 409
//!   (`PreconditionFailed`); to a disconnected charger 409 with a "disconnected" message
//!   (`DeviceOffline`); a resume while charging is accepted as a no-op. The reply shapes of
//!   `remote-action` are not documented: any JSON is accepted.
//! - The groups list's live fields (`status`, `chargingPower`, `maxChargingCurrent`) follow
//!   the `v2/charger` spelling; an entry without `status` is read through its status instead.
//! - `maxChargingCurrent` takes whole amperes: a fractional request is rounded **down** (a
//!   limit must never be exceeded).

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
use chrono::{DateTime, Utc};
use oemgate_core::{
    AccountRef, AdapterError, AdapterResult, ChargerApi, Clock, CommandReceipt, Credentials,
    DeviceRef, DeviceState, DiscoveredDevice, ErrorKind, Observation, QuotaScope, VendorAdapter,
    VendorInfo, VendorLimits, VendorType,
};

use client::{AuthGrant, LOG_TARGET, VENDOR, WallboxClient};
pub use client::{WallboxApiError, api_error_of};
use model::{ChargerStatus, GroupsResponse, TokenResponse};

/// The API base URL.
pub const API_BASE_URL: &str = "https://api.wall-box.com";
/// The user API (sign-in and token refresh).
pub const AUTH_BASE_URL: &str = "https://user-api.wall-box.com";
/// The `Partner` header's value on token calls.
pub const PARTNER: &str = "wallbox";
/// The key in [`Credentials::extra`] that holds Wallbox's user id.
pub const EXTRA_USER_ID: &str = "user_id";
/// The key in [`Credentials::extra`] that holds the refresh token's expiry (RFC 3339).
pub const EXTRA_REFRESH_EXPIRES_AT: &str = "refresh_expires_at";
/// The lowest current a Wallbox charger can be limited to, A (IEC 61851).
pub const MIN_CURRENT_A: f64 = 6.0;
/// The highest current any Wallbox AC charger takes, A.
pub const MAX_CURRENT_A: f64 = 80.0;
/// Remote action: resume charging.
pub const ACTION_RESUME: u8 = 1;
/// Remote action: pause charging.
pub const ACTION_PAUSE: u8 = 2;

const DEVICE_TYPES: &[VendorType] = &[VendorType::Charger];

/// The limits this adapter declares (see the crate docs): 4 requests per minute per account,
/// burst 2, one at a time.
pub const fn declared_limits() -> VendorLimits {
    VendorLimits {
        requests_per_minute: 4,
        burst: 2,
        rate_scope: QuotaScope::Account,
        daily_quota: None,
        max_concurrent: 1,
        pricing: None,
    }
}

/// Where the adapter finds Wallbox.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WallboxConfig {
    /// The API base URL (`https://api.wall-box.com`).
    pub api_base_url: String,
    /// The user API's base URL (`https://user-api.wall-box.com`).
    pub auth_base_url: String,
    /// The `Partner` header on token calls (`wallbox`; not a secret).
    pub partner: String,
    /// Timeout of one HTTP request, connection included.
    pub request_timeout: Duration,
}

impl Default for WallboxConfig {
    fn default() -> Self {
        Self {
            api_base_url: API_BASE_URL.to_owned(),
            auth_base_url: AUTH_BASE_URL.to_owned(),
            partner: PARTNER.to_owned(),
            request_timeout: Duration::from_secs(30),
        }
    }
}

impl WallboxConfig {
    /// Production URLs, a 30 s request timeout.
    pub fn new() -> Self {
        Self::default()
    }

    /// These settings against a simulator mounted at `base` (`http://127.0.0.1:port/wallbox`),
    /// which serves both hosts.
    pub fn for_base_url(mut self, base: &str) -> Self {
        let base = base.trim_end_matches('/');
        self.api_base_url = base.to_owned();
        self.auth_base_url = base.to_owned();
        self
    }
}

/// The Wallbox adapter.
pub struct WallboxAdapter {
    config: WallboxConfig,
    client: WallboxClient,
    clock: Arc<dyn Clock>,
    info: VendorInfo,
}

impl fmt::Debug for WallboxAdapter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WallboxAdapter").field("config", &self.config).finish_non_exhaustive()
    }
}

/// A charger id for a URL path: digits only (Wallbox ids are numbers).
fn charger_id(device: &DeviceRef) -> AdapterResult<&str> {
    let id = device.vendor_id.as_str();
    if id.is_empty() || id.len() > 20 || !id.bytes().all(|b| b.is_ascii_digit()) {
        return Err(AdapterError::new(
            ErrorKind::NotFound,
            VENDOR,
            format!("{id:?} is not a Wallbox charger id"),
        ));
    }
    Ok(id)
}

fn not_a_charger(device: &DeviceRef, what: &str) -> AdapterError {
    AdapterError::new(
        ErrorKind::Unsupported,
        VENDOR,
        format!("{what} is not supported for device type {}", device.device_type),
    )
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

impl WallboxAdapter {
    /// An adapter with its own HTTP client. `clock` stamps observations and checks credential
    /// expiry.
    pub fn new(config: WallboxConfig, clock: Arc<dyn Clock>) -> Self {
        let connect = config.request_timeout.min(Duration::from_secs(10));
        let http = reqwest::Client::builder()
            .connect_timeout(connect)
            .user_agent(concat!("oemgate-wallbox/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default();
        Self::with_http_client(config, clock, http)
    }

    /// An adapter sharing an existing HTTP client (connection pool). The per-request timeout
    /// of `config` still applies.
    pub fn with_http_client(
        config: WallboxConfig,
        clock: Arc<dyn Clock>,
        http: reqwest::Client,
    ) -> Self {
        let client = WallboxClient::new(
            http,
            &config.api_base_url,
            &config.auth_base_url,
            &config.partner,
            config.request_timeout,
            clock.clone(),
        );
        let info = VendorInfo { name: VENDOR, display_name: "Wallbox", device_types: DEVICE_TYPES };
        Self { config, client, clock, info }
    }

    /// The configuration.
    pub fn config(&self) -> &WallboxConfig {
        &self.config
    }

    /// Links an account: signs in with the user's Wallbox e-mail and password (one request)
    /// and returns the credentials. The password is not kept. Wrong credentials are
    /// `Unauthorized`.
    pub async fn sign_in(&self, email: &str, password: &str) -> AdapterResult<Credentials> {
        if email.trim().is_empty() || password.is_empty() {
            return Err(AdapterError::new(
                ErrorKind::Unauthorized,
                VENDOR,
                "signin: e-mail and password are required",
            ));
        }
        let token = self.client.token(AuthGrant::Password { email, password }).await?;
        Ok(self.credentials_from(token, None, BTreeMap::new()))
    }

    fn credentials_from(
        &self,
        token: TokenResponse,
        old_refresh: Option<&str>,
        mut extra: BTreeMap<String, String>,
    ) -> Credentials {
        let a = token.data.attributes;
        if let Some(uid) = a.user_id.filter(|u| !u.trim().is_empty()) {
            extra.insert(EXTRA_USER_ID.to_owned(), uid);
        }
        let refresh_token = a.refresh_token.filter(|t| !t.trim().is_empty());
        let rotated = refresh_token.is_some();
        match map::epoch_ms(a.refresh_token_ttl) {
            Some(at) => {
                extra.insert(EXTRA_REFRESH_EXPIRES_AT.to_owned(), at.to_rfc3339());
            }
            // A new refresh token without a known expiry must not inherit the old one's.
            None if rotated => {
                extra.remove(EXTRA_REFRESH_EXPIRES_AT);
            }
            None => {}
        }
        Credentials {
            access_token: a.token,
            refresh_token: refresh_token.or_else(|| old_refresh.map(str::to_owned)),
            expires_at: map::epoch_ms(a.ttl),
            extra,
        }
    }

    /// The bearer token, or `AuthExpired` without a request when it is known to be expired.
    fn bearer<'a>(&self, account: &'a AccountRef) -> AdapterResult<&'a str> {
        account.credentials.bearer(VENDOR, self.clock.now())
    }

    async fn status(&self, token: &str, id: &str) -> AdapterResult<ChargerStatus> {
        self.client.get(token, &format!("chargers/status/{id}"), "chargers/status").await
    }

    async fn groups(&self, token: &str) -> AdapterResult<GroupsResponse> {
        self.client.get(token, "v3/chargers/groups", "v3/chargers/groups").await
    }

    fn observation(&self, charger: oemgate_core::Charger, requests: u32) -> Observation {
        Observation {
            state: DeviceState::Charger(Box::new(charger)),
            observed_at: self.clock.now(),
            asleep: false,
            requests,
        }
    }

    /// Reads one charger through its status (1 request).
    async fn read_one(
        &self,
        account: &AccountRef,
        device: &DeviceRef,
    ) -> AdapterResult<Observation> {
        if device.device_type != VendorType::Charger {
            return Err(not_a_charger(device, "read"));
        }
        let id = charger_id(device)?;
        let token = self.bearer(account)?;
        let status = self.status(token, id).await?;
        let charger = map::charger_from_status(device, &status, self.clock.now());
        Ok(self.observation(charger, 1))
    }

    async fn remote_action(
        &self,
        account: &AccountRef,
        device: &DeviceRef,
        action: u8,
    ) -> AdapterResult<CommandReceipt> {
        if device.device_type != VendorType::Charger {
            return Err(not_a_charger(device, "remote-action"));
        }
        let id = charger_id(device)?;
        let token = self.bearer(account)?;
        let path = format!("v3/chargers/{id}/remote-action");
        let body = serde_json::json!({ "action": action });
        let _reply: serde_json::Value = self
            .client
            .send_json(reqwest::Method::POST, token, &path, &body, "remote-action")
            .await?;
        tracing::debug!(target: LOG_TARGET, charger = id, action, "remote action accepted");
        Ok(CommandReceipt { vendor_action_id: None, requests: 1 })
    }

    async fn update_charger(
        &self,
        account: &AccountRef,
        device: &DeviceRef,
        body: serde_json::Value,
        what: &str,
    ) -> AdapterResult<CommandReceipt> {
        if device.device_type != VendorType::Charger {
            return Err(not_a_charger(device, what));
        }
        let id = charger_id(device)?;
        let token = self.bearer(account)?;
        let path = format!("v2/charger/{id}");
        let _echo: serde_json::Value =
            self.client.send_json(reqwest::Method::PUT, token, &path, &body, what).await?;
        tracing::debug!(target: LOG_TARGET, charger = id, what, "charger update accepted");
        Ok(CommandReceipt { vendor_action_id: None, requests: 1 })
    }

    /// Locks (`true`) or unlocks a charger (`PUT v2/charger/{id}` with `{"locked":1|0}`). A
    /// locked charger does not start a session until unlocked. Not an Enode command.
    pub async fn set_locked(
        &self,
        account: &AccountRef,
        device: &DeviceRef,
        locked: bool,
    ) -> AdapterResult<CommandReceipt> {
        let body = serde_json::json!({ "locked": u8::from(locked) });
        self.update_charger(account, device, body, "v2/charger lock").await
    }
}

/// The whole amperes Wallbox is sent for a requested limit: rounded down, within
/// [`MIN_CURRENT_A`]..=[`MAX_CURRENT_A`]; `None` when the request is not a valid limit.
pub fn whole_amps(amps: f64) -> Option<u32> {
    if !amps.is_finite() {
        return None;
    }
    // 1e-6 absorbs binary noise (15.999999999 means 16).
    let whole = (amps + 1e-6).floor();
    if !(MIN_CURRENT_A..=MAX_CURRENT_A).contains(&whole) {
        return None;
    }
    // Within 6..=80 (checked above), so the cast is exact.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let a = whole as u32;
    Some(a)
}

#[async_trait]
impl VendorAdapter for WallboxAdapter {
    fn info(&self) -> &VendorInfo {
        &self.info
    }

    /// See [`declared_limits`].
    fn limits(&self) -> VendorLimits {
        declared_limits()
    }

    fn poll_cost(&self, _device_type: VendorType) -> u32 {
        1
    }

    /// `GET /users/refresh-token` with the refresh token as bearer. A refresh token known to
    /// be expired is `Unauthorized` without a request.
    async fn refresh_credentials(&self, account: &AccountRef) -> AdapterResult<Credentials> {
        let creds = &account.credentials;
        let Some(refresh) = creds.refresh_token.as_deref().filter(|t| !t.trim().is_empty()) else {
            return Err(AdapterError::new(
                ErrorKind::Unauthorized,
                VENDOR,
                "no refresh token; the user must link the account again",
            ));
        };
        let refresh_expiry = creds
            .extra
            .get(EXTRA_REFRESH_EXPIRES_AT)
            .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
            .map(|t| t.with_timezone(&Utc));
        if let Some(at) = refresh_expiry
            && at <= self.clock.now()
        {
            return Err(AdapterError::new(
                ErrorKind::Unauthorized,
                VENDOR,
                format!(
                    "the refresh token expired at {}; the user must link the account again",
                    at.to_rfc3339()
                ),
            ));
        }
        let token = self.client.token(AuthGrant::Refresh { refresh_token: refresh }).await?;
        Ok(self.credentials_from(token, Some(refresh), creds.extra.clone()))
    }

    /// `GET v3/chargers/groups`: every charger of every group, once.
    async fn discover(&self, account: &AccountRef) -> AdapterResult<Vec<DiscoveredDevice>> {
        let token = self.bearer(account)?;
        let groups = self.groups(token).await?;
        Ok(map::discovered_devices(&groups))
    }

    fn chargers(&self) -> Option<&dyn ChargerApi> {
        Some(self)
    }

    /// Two or more chargers: one `GET v3/chargers/groups` for all of them (counted once, on the
    /// first observation), each mapped from its entry. See the crate docs.
    async fn poll_batch(
        &self,
        account: &AccountRef,
        devices: &[DeviceRef],
    ) -> Vec<AdapterResult<Observation>> {
        let mut out: Vec<Option<AdapterResult<Observation>>> =
            devices.iter().map(|_| None).collect();
        let mut batch: Vec<(usize, &str)> = Vec::new();
        for (i, device) in devices.iter().enumerate() {
            if device.device_type != VendorType::Charger {
                out[i] = Some(self.poll(account, device).await);
                continue;
            }
            match charger_id(device) {
                Ok(id) => batch.push((i, id)),
                Err(e) => out[i] = Some(Err(e)),
            }
        }
        if batch.len() == 1 {
            let (i, _) = batch[0];
            out[i] = Some(self.read_one(account, &devices[i]).await);
            batch.clear();
        }
        if !batch.is_empty() {
            let listed = match self.bearer(account) {
                Ok(token) => self.groups(token).await.map(|g| (token, g)),
                Err(e) => Err(e),
            };
            match listed {
                Err(e) => {
                    let mut first = Some(e);
                    for (i, _) in &batch {
                        let err = match first.take() {
                            Some(e) => e,
                            None => match out.iter().flatten().find_map(|r| r.as_ref().err()) {
                                Some(e) => copy_error(e),
                                None => AdapterError::new(
                                    ErrorKind::Protocol,
                                    VENDOR,
                                    "v3/chargers/groups failed",
                                ),
                            },
                        };
                        out[*i] = Some(Err(err));
                    }
                }
                Ok((token, groups)) => {
                    let mut unclaimed = 1u32;
                    for (i, id) in &batch {
                        let device = &devices[*i];
                        let result = match map::find_in_groups(&groups, id) {
                            None => Err(AdapterError::new(
                                ErrorKind::NotFound,
                                VENDOR,
                                format!("charger {id} is not on the account"),
                            )),
                            Some(entry) if entry.status.is_some() => {
                                let now = self.clock.now();
                                let charger = map::charger_from_group_entry(device, entry, now);
                                Ok(self.observation(charger, 0))
                            }
                            Some(_) => self.status(token, id).await.map(|status| {
                                let now = self.clock.now();
                                let charger = map::charger_from_status(device, &status, now);
                                self.observation(charger, 1)
                            }),
                        };
                        out[*i] = Some(result.map(|mut obs| {
                            obs.requests += std::mem::take(&mut unclaimed);
                            obs
                        }));
                    }
                }
            }
        }
        out.into_iter()
            .map(|r| {
                r.unwrap_or_else(|| {
                    Err(AdapterError::new(ErrorKind::Protocol, VENDOR, "charger was not read"))
                })
            })
            .collect()
    }
}

#[async_trait]
impl ChargerApi for WallboxAdapter {
    /// `GET chargers/status/{id}`.
    async fn read_charger(
        &self,
        account: &AccountRef,
        device: &DeviceRef,
    ) -> AdapterResult<Observation> {
        self.read_one(account, device).await
    }

    /// `POST v3/chargers/{id}/remote-action` with action 1 (resume) or 2 (pause).
    async fn set_charging(
        &self,
        account: &AccountRef,
        device: &DeviceRef,
        start: bool,
    ) -> AdapterResult<CommandReceipt> {
        let action = if start { ACTION_RESUME } else { ACTION_PAUSE };
        self.remote_action(account, device, action).await
    }

    /// `PUT v2/charger/{id}` with `maxChargingCurrent` in whole amperes ([`whole_amps`]); an
    /// invalid value is `Rejected` before any request.
    async fn set_max_current(
        &self,
        account: &AccountRef,
        device: &DeviceRef,
        amps: f64,
    ) -> AdapterResult<CommandReceipt> {
        let Some(whole) = whole_amps(amps) else {
            return Err(AdapterError::new(
                ErrorKind::Rejected,
                VENDOR,
                format!("max current {amps} A is outside {MIN_CURRENT_A}..={MAX_CURRENT_A} A"),
            ));
        };
        let body = serde_json::json!({ "maxChargingCurrent": whole });
        self.update_charger(account, device, body, "v2/charger maxChargingCurrent").await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oemgate_core::{BatteryOperationMode, Command, ManualClock};

    fn adapter() -> WallboxAdapter {
        // Port 9 (discard) on localhost: any request that got out would fail as Transient.
        let config = WallboxConfig::new().for_base_url("http://127.0.0.1:9");
        let clock = Arc::new(ManualClock::new(DateTime::UNIX_EPOCH));
        WallboxAdapter::new(config, clock)
    }

    fn account() -> AccountRef {
        AccountRef {
            user_id: "u".into(),
            vendor: VENDOR.into(),
            account_id: "a".into(),
            credentials: Credentials {
                access_token: "t".into(),
                refresh_token: Some("r".into()),
                ..Default::default()
            },
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

    #[test]
    fn serves_chargers_only() {
        let a = adapter();
        assert_eq!(a.info().name, "WALLBOX");
        assert_eq!(a.info().device_types, DEVICE_TYPES);
        assert!(a.chargers().is_some());
        assert!(a.vehicles().is_none() && a.hvacs().is_none() && a.batteries().is_none());
        assert_eq!(a.poll_cost(VendorType::Charger), 1);
        let l = a.limits();
        assert_eq!(l.rate_scope, QuotaScope::Account);
        assert!(l.burst >= 1 && l.burst <= l.requests_per_minute && l.max_concurrent >= 1);
    }

    #[test]
    fn amps_are_whole_and_in_range() {
        assert_eq!(whole_amps(16.0), Some(16));
        assert_eq!(whole_amps(15.9999999999), Some(16));
        assert_eq!(whole_amps(16.7), Some(16));
        assert_eq!(whole_amps(6.0), Some(6));
        assert_eq!(whole_amps(80.0), Some(80));
        assert_eq!(whole_amps(5.9), None);
        assert_eq!(whole_amps(81.0), None);
        assert_eq!(whole_amps(f64::NAN), None);
        assert_eq!(whole_amps(-16.0), None);
    }

    #[tokio::test]
    async fn refusals_before_any_request() {
        let a = adapter();
        let charger = device(VendorType::Charger, "700001");
        let e = a
            .execute(&account(), &charger, &Command::SetMaxCurrent { amps: 500.0 })
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Rejected);
        let e = a
            .execute(
                &account(),
                &charger,
                &Command::SetOperationMode { mode: BatteryOperationMode::Idle },
            )
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unsupported);
        let e = a.execute(&account(), &charger, &Command::WakeUp).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unsupported);
        let e = a.poll(&account(), &device(VendorType::Charger, "70/../1")).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound);

        let mut expired = account();
        expired.credentials.expires_at = Some(DateTime::UNIX_EPOCH);
        assert_eq!(a.poll(&expired, &charger).await.unwrap_err().kind(), ErrorKind::AuthExpired);
        assert_eq!(a.discover(&expired).await.unwrap_err().kind(), ErrorKind::AuthExpired);
        let batch = a.poll_batch(&expired, &[charger.clone(), charger.clone()]).await;
        assert!(
            batch.iter().all(|r| r.as_ref().is_err_and(|e| e.kind() == ErrorKind::AuthExpired))
        );

        let mut spent = account();
        spent.credentials.extra.insert(
            EXTRA_REFRESH_EXPIRES_AT.into(),
            (DateTime::UNIX_EPOCH + chrono::Duration::seconds(-1)).to_rfc3339(),
        );
        assert_eq!(
            a.refresh_credentials(&spent).await.unwrap_err().kind(),
            ErrorKind::Unauthorized
        );
        let mut none = account();
        none.credentials.refresh_token = None;
        assert_eq!(a.refresh_credentials(&none).await.unwrap_err().kind(), ErrorKind::Unauthorized);
        let e = a.sign_in("", "x").await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unauthorized);
    }

    #[test]
    fn credentials_from_token_answers() {
        let a = adapter();
        let token: TokenResponse = serde_json::from_str(
            r#"{"data":{"attributes":{"token":"acc","refresh_token":"ref","user_id":12345,
                "ttl":1781546400000,"refresh_token_ttl":1784138400000,"error":false,"status":200}}}"#,
        )
        .unwrap();
        let c = a.credentials_from(token, None, BTreeMap::new());
        assert_eq!(c.access_token, "acc");
        assert_eq!(c.refresh_token.as_deref(), Some("ref"));
        assert_eq!(c.expires_at.unwrap().timestamp(), 1_781_546_400);
        assert_eq!(c.extra[EXTRA_USER_ID], "12345");
        assert_eq!(c.extra[EXTRA_REFRESH_EXPIRES_AT], "2026-07-15T18:00:00+00:00");

        // A refresh answer without a refresh token keeps the old one and its expiry.
        let token: TokenResponse =
            serde_json::from_str(r#"{"data":{"attributes":{"token":"acc2","ttl":145656758}}}"#)
                .unwrap();
        let c2 = a.credentials_from(token, Some("ref"), c.extra.clone());
        assert_eq!(c2.refresh_token.as_deref(), Some("ref"));
        assert_eq!(c2.expires_at, None, "an implausible ttl is ignored");
        assert_eq!(c2.extra[EXTRA_REFRESH_EXPIRES_AT], c.extra[EXTRA_REFRESH_EXPIRES_AT]);
    }

    #[test]
    fn debug_shows_no_secrets() {
        let text = format!("{:?}", adapter());
        assert!(text.contains("WallboxAdapter"));
    }
}
