//! oemgate-huawei: the Huawei FusionSolar Northbound API adapter (PV inverters, home
//! batteries, grid meters), and a simulator of FusionSolar (feature `sim`).
//!
//! [`HuaweiAdapter`] implements [`VendorAdapter`], [`InverterApi`], [`BatteryApi`] and
//! [`MeterApi`] against the Northbound ("thirdData", SmartPVMS) interface of a regional
//! FusionSolar host (`https://eu5.fusionsolar.huawei.com`, `intl.`, `sg5.`, ...).
//!
//! # Layout
//!
//! - [`client`]: the HTTP calls (every one a `POST` with a JSON body, the session token in
//!   the `XSRF-TOKEN` header, a per-request timeout) and the classification of every failure
//!   into an [`ErrorKind`]; the table is in that module's docs.
//! - [`model`]: FusionSolar's JSON (envelope, plants, devices, KPI maps), read leniently
//!   where FusionSolar is loose (numbers as strings, `"N/A"`), plus [`DeviceKey`].
//! - [`map`]: pure functions from FusionSolar's JSON to the normalized
//!   [`oemgate_core::Inverter`], [`oemgate_core::Battery`] and [`oemgate_core::Meter`]; the
//!   unit, sign and mode decisions are documented there.
//! - `sim` (feature `sim`): `HuaweiSim`, FusionSolar simulated on `oemgate_sim::World`, an
//!   axum router that expects to be mounted under **`/huawei`** (the adapter's base URL is
//!   then `http://<host>/huawei`).
//!
//! # Linking and credentials
//!
//! FusionSolar has no OAuth here: an installer or owner creates a Northbound API account
//! (user name + password, which FusionSolar calls `systemCode`) and the user types both into
//! the link flow. [`HuaweiAdapter::login`] logs in (`POST /thirdData/login`) and returns
//! [`Credentials`] with:
//! - `access_token`: the session token from the `xsrf-token` response header;
//! - `refresh_token`: the **password** (FusionSolar has no refresh token: a new session
//!   needs a new login);
//! - `extra["user_name"]` ([`EXTRA_USER_NAME`]) and, for [`HuaweiAdapter::login_with_base_url`],
//!   `extra["base_url"]` ([`EXTRA_BASE_URL`]), the account's regional host;
//! - `expires_at`: `None`. The session ends after about 30 minutes idle and every call
//!   extends it (unconfirmed); a stateless adapter cannot track a sliding expiry, so it
//!   learns about an expired session from `failCode` 305 (→ `AuthExpired`).
//!
//! [`VendorAdapter::refresh_credentials`] logs in again with the stored user name and
//! password. FusionSolar allows **one session per account: a second login kills the
//! first**, which is exactly what the caller's compare-and-set on the new credentials needs
//! (the old token stops working; the new one works at once). A refused login (wrong or
//! changed password, account disabled or expired) is `Unauthorized`: the user must link
//! again. A revoked account's old session reads as 305 like an expired one, so calls
//! yield `AuthExpired` and the refresh that follows `Unauthorized`. The password and user
//! name are never logged; [`Credentials`]' `Debug` redacts the password.
//!
//! # Devices and reads
//!
//! [`VendorAdapter::discover`] reads the plant list (`stations`, 100 per page, at most
//! [`MAX_STATION_PAGES`] pages) and then `getDevList` for up to 100 plants per call. Device
//! types 1 (string inverter) and 38 (residential inverter) become inverters, 39 batteries,
//! 47 (power sensor) and 17 (grid meter) meters; everything else (dongles, EMIs, C&I
//! storage 41, EMMA, ...) is skipped. A device's `vendor_id` is `"<devTypeId>:<devId>"`
//! ([`DeviceKey`]) because `getDevRealKpi` needs the type next to the id and one oemgate class
//! spans several FusionSolar types; its `site_id` is the plant code (`NE=…`).
//!
//! A poll is one `getDevRealKpi` (`{"devIds":"…","devTypeId":38}`). [`VendorAdapter::poll_batch`]
//! groups the devices by device type and reads up to [`MAX_IDS_PER_CALL`] of them per call;
//! the shared request is counted once, on the first device it answered.
//! [`HuaweiAdapter::read_plant_kpis`] reads `getStationRealKpi` for up to 100 plants per call.
//!
//! # Control
//!
//! None. The reference lists no confirmed battery-control interface (SmartPVMS 24.4+ has
//! asynchronous inverter active-power control; battery charge/discharge tasks "reportedly
//! exist" with unconfirmed paths and fields). Every battery operation mode is therefore
//! `isCapable: false` with the intervention [`map::BATTERY_CONTROL_INTERVENTION_ID`], and
//! [`BatteryApi::set_operation_mode`] fails as `Unsupported` before any request.
//!
//! # Limits
//!
//! FusionSolar allows roughly **one call per minute per interface and account, with one
//! concurrent request**, and answers more with `failCode` 407 (`ACCESS_FREQUENCY_IS_TOO_HIGH`)
//! without any `Retry-After`. oemgate's limits have one rate per scope, so the adapter
//! declares the strictest truthful reading: 1 request per minute per account, burst 1, one
//! concurrent request, no daily quota (the quota of the real-time KPI calls is unconfirmed)
//! and no pricing. A 407 is `RateLimited` with `retry_after: None` (no signal, no guess).
//!
//! # Quirks and decisions where the reference says "unconfirmed"
//!
//! - Battery `ch_discharge_power` (W) is taken as positive while charging; meter
//!   `active_power` (W, SmartPVMS ≥ 24.7.0) as positive while exporting (Huawei's feed-in
//!   convention), so the meter's sign is flipped. See [`map`].
//! - `real_health_state` 1/2/3 = disconnected/faulty/healthy, as the reference gives them.
//! - `ch_discharge_model` codes follow Huawei's list (4 automatic = self-consumption, 2/6/9
//!   time-of-use, ...); unknown codes map to `UNKNOWN`.
//! - The session lifetime is not tracked (see above); the undocumented login rate limit is
//!   treated like any other interface's.
//! - Daily-quota exhaustion (`failCode` 20618) is `RateLimited` without `retry_after`: when
//!   the quota resets is not documented.
//! - The newer OAuth "Connect" mode is not implemented.

pub mod client;
pub mod map;
pub mod model;
#[cfg(feature = "sim")]
pub mod sim;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use oemgate_core::{
    AccountRef, AdapterError, AdapterResult, BatteryApi, BatteryOperationMode, Clock,
    CommandReceipt, Credentials, DeviceRef, DeviceState, DiscoveredDevice, ErrorKind, InverterApi,
    MeterApi, Observation, QuotaScope, VendorAdapter, VendorInfo, VendorLimits, VendorType,
};

use client::{Answer, HuaweiClient, VENDOR};
pub use client::{HuaweiApiError, HuaweiFrameworkError, HuaweiHttpError};
pub use map::{PlantHealth, PlantKpi};
use model::{
    BatteryKpi, DevKpiItem, DevRealKpiRequest, DeviceListEntry, InverterKpi, MeterKpi,
    StationCodesRequest, StationKpiItem, StationPage, StationsRequest,
};
pub use model::{DevType, DeviceKey};

/// FusionSolar's European host.
pub const EU_BASE_URL: &str = "https://eu5.fusionsolar.huawei.com";
/// FusionSolar's international host.
pub const INTL_BASE_URL: &str = "https://intl.fusionsolar.huawei.com";
/// The key in [`Credentials::extra`] holding the Northbound user name.
pub const EXTRA_USER_NAME: &str = "user_name";
/// The key in [`Credentials::extra`] holding the account's regional base URL, when it is not
/// the configured one.
pub const EXTRA_BASE_URL: &str = "base_url";
/// Plants per `getDevList` / `getStationRealKpi` call and devices per `getDevRealKpi` call.
pub const MAX_IDS_PER_CALL: usize = 100;
/// The most plant-list pages (of 100) discovery reads.
pub const MAX_STATION_PAGES: u32 = 20;

const DEVICE_TYPES: &[VendorType] = &[VendorType::Inverter, VendorType::Battery, VendorType::Meter];

/// Where the adapter finds FusionSolar. There is no application credential: each account
/// brings its own Northbound user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HuaweiConfig {
    /// The default regional host (`https://eu5.fusionsolar.huawei.com`); accounts may
    /// override it with [`EXTRA_BASE_URL`]. The `/thirdData/...` paths are appended.
    pub base_url: String,
    /// Timeout of one HTTP request, connection included.
    pub request_timeout: Duration,
}

impl HuaweiConfig {
    /// A configuration for `base_url` with a 30-second request timeout.
    pub fn new(base_url: impl Into<String>) -> Self {
        Self { base_url: base_url.into(), request_timeout: Duration::from_secs(30) }
    }
}

impl Default for HuaweiConfig {
    fn default() -> Self {
        Self::new(EU_BASE_URL)
    }
}

/// The Huawei FusionSolar Northbound adapter.
pub struct HuaweiAdapter {
    config: HuaweiConfig,
    client: HuaweiClient,
    clock: Arc<dyn Clock>,
    info: VendorInfo,
}

impl fmt::Debug for HuaweiAdapter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HuaweiAdapter").field("config", &self.config).finish_non_exhaustive()
    }
}

/// The KPI answer of one `getDevRealKpi` call, by device class.
enum Kpis {
    Inverter(Vec<DevKpiItem<InverterKpi>>),
    Battery(Vec<DevKpiItem<BatteryKpi>>),
    Meter(Vec<DevKpiItem<MeterKpi>>),
}

fn err(kind: ErrorKind, message: impl Into<String>) -> AdapterError {
    AdapterError::new(kind, VENDOR, message)
}

/// Rebuilds an error for another device of a batch (errors are not `Clone`).
fn copy_error(e: &AdapterError) -> AdapterError {
    let mut copy = err(e.kind(), e.message().to_owned());
    if let Some(after) = e.retry_after() {
        copy = copy.with_retry_after(after);
    }
    copy
}

/// The device's [`DeviceKey`], checked against its class; `NotFound` (before any request)
/// when the `vendor_id` is not a FusionSolar id of that class.
fn device_key(device: &DeviceRef) -> AdapterResult<DeviceKey> {
    let key: DeviceKey = device
        .vendor_id
        .parse()
        .map_err(|e: model::BadDeviceKey| err(ErrorKind::NotFound, e.to_string()).with_source(e))?;
    if key.dev_type.class() != device.device_type {
        return Err(err(
            ErrorKind::NotFound,
            format!(
                "{} is a FusionSolar {}, not a {}",
                key,
                key.dev_type.class(),
                device.device_type
            ),
        ));
    }
    Ok(key)
}

impl HuaweiAdapter {
    /// An adapter with its own HTTP client. `clock` stamps observations.
    pub fn new(config: HuaweiConfig, clock: Arc<dyn Clock>) -> Self {
        let connect = config.request_timeout.min(Duration::from_secs(10));
        let http = reqwest::Client::builder()
            .connect_timeout(connect)
            .user_agent(concat!("oemgate-huawei/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default();
        Self::with_http_client(config, clock, http)
    }

    /// An adapter sharing an existing HTTP client. The per-request timeout of `config` still
    /// applies.
    pub fn with_http_client(
        config: HuaweiConfig,
        clock: Arc<dyn Clock>,
        http: reqwest::Client,
    ) -> Self {
        let client = HuaweiClient::new(http, config.request_timeout, clock.clone());
        let info = VendorInfo {
            name: VENDOR,
            display_name: "Huawei FusionSolar",
            device_types: DEVICE_TYPES,
        };
        Self { config, client, clock, info }
    }

    /// The configuration.
    pub fn config(&self) -> &HuaweiConfig {
        &self.config
    }

    /// Links an account: logs in with the Northbound user name and password (`systemCode`)
    /// at the configured host and returns its credentials (see the crate docs). One request.
    pub async fn login(&self, user_name: &str, system_code: &str) -> AdapterResult<Credentials> {
        self.login_at(None, user_name, system_code).await
    }

    /// Like [`HuaweiAdapter::login`] at another regional host, which the credentials then
    /// remember in [`EXTRA_BASE_URL`].
    pub async fn login_with_base_url(
        &self,
        base_url: &str,
        user_name: &str,
        system_code: &str,
    ) -> AdapterResult<Credentials> {
        self.login_at(Some(base_url), user_name, system_code).await
    }

    async fn login_at(
        &self,
        base_url: Option<&str>,
        user_name: &str,
        system_code: &str,
    ) -> AdapterResult<Credentials> {
        let user_name = user_name.trim();
        if user_name.is_empty() || system_code.is_empty() {
            return Err(err(ErrorKind::Rejected, "login: user name and password are required"));
        }
        let base = base_url.map(str::trim).filter(|b| !b.is_empty());
        let token = self
            .client
            .login(base.unwrap_or(&self.config.base_url), user_name, system_code)
            .await?;
        let mut extra = BTreeMap::new();
        extra.insert(EXTRA_USER_NAME.to_owned(), user_name.to_owned());
        if let Some(base) = base {
            extra.insert(EXTRA_BASE_URL.to_owned(), base.to_owned());
        }
        Ok(Credentials {
            access_token: token,
            refresh_token: Some(system_code.to_owned()),
            expires_at: None,
            extra,
        })
    }

    /// Ends the account's session (`POST /thirdData/logout`). One request.
    pub async fn logout(&self, account: &AccountRef) -> AdapterResult<()> {
        let token = self.token(account)?;
        self.client.logout(self.base_url(account), token).await
    }

    /// The real-time KPIs of plants (`getStationRealKpi`): one request per 100 plants.
    pub async fn read_plant_kpis(
        &self,
        account: &AccountRef,
        station_codes: &[String],
    ) -> AdapterResult<Vec<PlantKpi>> {
        let token = self.token(account)?;
        let base = self.base_url(account);
        let mut out = Vec::new();
        for chunk in station_codes.chunks(MAX_IDS_PER_CALL) {
            let body = StationCodesRequest { station_codes: chunk.join(",") };
            let answer: Answer<Vec<StationKpiItem>> =
                self.client.call(base, token, "getStationRealKpi", &body).await?;
            let now = self.clock.now();
            out.extend(answer.data.iter().map(|i| map::plant_kpi(i, answer.current_time, now)));
        }
        Ok(out)
    }

    /// The account's regional base URL.
    fn base_url<'a>(&'a self, account: &'a AccountRef) -> &'a str {
        account
            .credentials
            .extra
            .get(EXTRA_BASE_URL)
            .map(|u| u.trim())
            .filter(|u| !u.is_empty())
            .unwrap_or(&self.config.base_url)
    }

    /// The session token, or an error without a request when there is none (or it is known
    /// to be expired).
    fn token<'a>(&self, account: &'a AccountRef) -> AdapterResult<&'a str> {
        let creds = &account.credentials;
        if creds.access_token.trim().is_empty() {
            let kind = if creds.refresh_token.as_deref().is_some_and(|p| !p.is_empty()) {
                ErrorKind::AuthExpired
            } else {
                ErrorKind::Unauthorized
            };
            return Err(err(kind, "no FusionSolar session token"));
        }
        if let Some(expires_at) = creds.expires_at
            && expires_at <= self.clock.now()
        {
            return Err(err(
                ErrorKind::AuthExpired,
                format!("session expired at {}", expires_at.to_rfc3339()),
            ));
        }
        Ok(&creds.access_token)
    }

    /// One `getDevRealKpi` call for devices of one type (at most [`MAX_IDS_PER_CALL`]).
    async fn fetch(
        &self,
        account: &AccountRef,
        dev_type: DevType,
        dev_ids: &[&str],
    ) -> AdapterResult<(Kpis, Option<DateTime<Utc>>)> {
        let token = self.token(account)?;
        let base = self.base_url(account);
        let body = DevRealKpiRequest { dev_ids: dev_ids.join(","), dev_type_id: dev_type.id() };
        const WHAT: &str = "getDevRealKpi";
        Ok(match dev_type.class() {
            VendorType::Battery => {
                let a: Answer<Vec<DevKpiItem<BatteryKpi>>> =
                    self.client.call(base, token, WHAT, &body).await?;
                (Kpis::Battery(a.data), a.current_time)
            }
            VendorType::Meter => {
                let a: Answer<Vec<DevKpiItem<MeterKpi>>> =
                    self.client.call(base, token, WHAT, &body).await?;
                (Kpis::Meter(a.data), a.current_time)
            }
            _ => {
                let a: Answer<Vec<DevKpiItem<InverterKpi>>> =
                    self.client.call(base, token, WHAT, &body).await?;
                (Kpis::Inverter(a.data), a.current_time)
            }
        })
    }

    /// The normalized state of one device from a `getDevRealKpi` answer; `NotFound` when the
    /// answer does not hold it (not on the account, or deleted).
    fn state_of(
        kpis: &Kpis,
        device: &DeviceRef,
        key: &DeviceKey,
        current_time: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> AdapterResult<DeviceState> {
        let missing = || {
            err(ErrorKind::NotFound, format!("getDevRealKpi: device {key} is not on the account"))
        };
        let id = key.dev_id.as_str();
        Ok(match kpis {
            Kpis::Inverter(items) => {
                let item = items.iter().find(|i| i.dev_id == id).ok_or_else(missing)?;
                let inverter = map::inverter_from_kpi(device, key, item, current_time, now);
                DeviceState::Inverter(Box::new(inverter))
            }
            Kpis::Battery(items) => {
                let item = items.iter().find(|i| i.dev_id == id).ok_or_else(missing)?;
                let battery = map::battery_from_kpi(device, key, item, current_time, now);
                DeviceState::Battery(Box::new(battery))
            }
            Kpis::Meter(items) => {
                let item = items.iter().find(|i| i.dev_id == id).ok_or_else(missing)?;
                DeviceState::Meter(Box::new(map::meter_from_kpi(
                    device,
                    key,
                    item,
                    current_time,
                    now,
                )))
            }
        })
    }

    /// Reads one device of `class`: one request.
    async fn read(
        &self,
        account: &AccountRef,
        device: &DeviceRef,
        class: VendorType,
    ) -> AdapterResult<Observation> {
        if device.device_type != class {
            return Err(err(
                ErrorKind::NotFound,
                format!("{} is a {}, not a {class}", device.vendor_id, device.device_type),
            ));
        }
        let key = device_key(device)?;
        let (kpis, current_time) = self.fetch(account, key.dev_type, &[&key.dev_id]).await?;
        let now = self.clock.now();
        let state = Self::state_of(&kpis, device, &key, current_time, now)?;
        Ok(Observation { state, observed_at: now, asleep: false, requests: 1 })
    }

    async fn list_plants(&self, account: &AccountRef, token: &str) -> AdapterResult<Vec<String>> {
        let base = self.base_url(account);
        let mut codes: Vec<String> = Vec::new();
        let mut seen = BTreeSet::new();
        for page_no in 1..=MAX_STATION_PAGES {
            let body = StationsRequest { page_no, page_size: 100 };
            let answer: Answer<StationPage> =
                self.client.call(base, token, "stations", &body).await?;
            let page = answer.data;
            let empty = page.list.is_empty();
            for station in page.list {
                let code = station.plant_code.trim().to_owned();
                if !code.is_empty() && seen.insert(code.clone()) {
                    codes.push(code);
                }
            }
            let pages = page.page_count.unwrap_or(1);
            if empty || i64::from(page_no) >= pages {
                break;
            }
        }
        Ok(codes)
    }
}

#[async_trait]
impl VendorAdapter for HuaweiAdapter {
    fn info(&self) -> &VendorInfo {
        &self.info
    }

    /// FusionSolar: about one call per minute per interface and account, one concurrent
    /// request, no published daily quota for the real-time calls, no billing. Declared as 1
    /// request per minute per account (one rate covers every interface).
    fn limits(&self) -> VendorLimits {
        VendorLimits {
            requests_per_minute: 1,
            burst: 1,
            rate_scope: QuotaScope::Account,
            daily_quota: None,
            max_concurrent: 1,
            pricing: None,
        }
    }

    /// One `getDevRealKpi` per device (batched by [`VendorAdapter::poll_batch`]).
    fn poll_cost(&self, _device_type: VendorType) -> u32 {
        1
    }

    /// Logs in again with the stored user name and password: the new session token, the same
    /// password, the same extras. The old session dies with this login.
    async fn refresh_credentials(&self, account: &AccountRef) -> AdapterResult<Credentials> {
        let creds = &account.credentials;
        let user = creds.extra.get(EXTRA_USER_NAME).map(|u| u.trim()).filter(|u| !u.is_empty());
        let password = creds.refresh_token.as_deref().filter(|p| !p.is_empty());
        let (Some(user), Some(password)) = (user, password) else {
            return Err(err(
                ErrorKind::Unauthorized,
                "no FusionSolar user name or password stored; the user must link again",
            ));
        };
        let token = self.client.login(self.base_url(account), user, password).await?;
        Ok(Credentials {
            access_token: token,
            refresh_token: Some(password.to_owned()),
            expires_at: None,
            extra: creds.extra.clone(),
        })
    }

    /// `stations` (per page of 100), then `getDevList` per 100 plants: usually 2 requests.
    async fn discover(&self, account: &AccountRef) -> AdapterResult<Vec<DiscoveredDevice>> {
        let token = self.token(account)?;
        let plants = self.list_plants(account, token).await?;
        let base = self.base_url(account);
        let mut found = Vec::new();
        let mut seen = BTreeSet::new();
        for chunk in plants.chunks(MAX_IDS_PER_CALL) {
            let body = StationCodesRequest { station_codes: chunk.join(",") };
            let answer: Answer<Vec<DeviceListEntry>> =
                self.client.call(base, token, "getDevList", &body).await?;
            for entry in &answer.data {
                let Some(mut device) = map::discovered_device(entry) else { continue };
                if device.site_id.is_none() && chunk.len() == 1 {
                    device.site_id = Some(chunk[0].clone());
                }
                if seen.insert(device.vendor_id.clone()) {
                    found.push(device);
                }
            }
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

    /// Groups the devices by FusionSolar device type and reads up to [`MAX_IDS_PER_CALL`] of
    /// each type with one `getDevRealKpi`. The request is counted on the first observation it
    /// produced; on a failed call the first device gets the error, the others copies of it.
    async fn poll_batch(
        &self,
        account: &AccountRef,
        devices: &[DeviceRef],
    ) -> Vec<AdapterResult<Observation>> {
        let mut out: Vec<Option<AdapterResult<Observation>>> =
            devices.iter().map(|_| None).collect();
        let mut groups: BTreeMap<DevType, Vec<(usize, DeviceKey)>> = BTreeMap::new();
        for (index, device) in devices.iter().enumerate() {
            if !DEVICE_TYPES.contains(&device.device_type) {
                // Not a class FusionSolar serves: the default dispatch refuses it.
                out[index] = Some(self.poll(account, device).await);
                continue;
            }
            match device_key(device) {
                Ok(key) => groups.entry(key.dev_type).or_default().push((index, key)),
                Err(e) => out[index] = Some(Err(e)),
            }
        }
        for (dev_type, members) in groups {
            for chunk in members.chunks(MAX_IDS_PER_CALL) {
                let ids: Vec<&str> = chunk.iter().map(|(_, k)| k.dev_id.as_str()).collect();
                match self.fetch(account, dev_type, &ids).await {
                    Err(e) => {
                        let template = copy_error(&e);
                        let mut first = Some(e);
                        for (index, _) in chunk {
                            let e = first.take().unwrap_or_else(|| copy_error(&template));
                            out[*index] = Some(Err(e));
                        }
                    }
                    Ok((kpis, current_time)) => {
                        let now = self.clock.now();
                        let mut counted = false;
                        for (index, key) in chunk {
                            let device = &devices[*index];
                            let result = Self::state_of(&kpis, device, key, current_time, now).map(
                                |state| {
                                    let requests = u32::from(!counted);
                                    counted = true;
                                    Observation { state, observed_at: now, asleep: false, requests }
                                },
                            );
                            out[*index] = Some(result);
                        }
                    }
                }
            }
        }
        out.into_iter()
            .map(|r| r.unwrap_or_else(|| Err(err(ErrorKind::Protocol, "poll_batch: not read"))))
            .collect()
    }
}

#[async_trait]
impl InverterApi for HuaweiAdapter {
    /// One `getDevRealKpi` (devTypeId 1 or 38).
    async fn read_inverter(
        &self,
        account: &AccountRef,
        device: &DeviceRef,
    ) -> AdapterResult<Observation> {
        self.read(account, device, VendorType::Inverter).await
    }
}

#[async_trait]
impl MeterApi for HuaweiAdapter {
    /// One `getDevRealKpi` (devTypeId 47 or 17).
    async fn read_meter(
        &self,
        account: &AccountRef,
        device: &DeviceRef,
    ) -> AdapterResult<Observation> {
        self.read(account, device, VendorType::Meter).await
    }
}

#[async_trait]
impl BatteryApi for HuaweiAdapter {
    /// One `getDevRealKpi` (devTypeId 39).
    async fn read_battery(
        &self,
        account: &AccountRef,
        device: &DeviceRef,
    ) -> AdapterResult<Observation> {
        self.read(account, device, VendorType::Battery).await
    }

    /// Always `Unsupported`, before any request: FusionSolar's Northbound API offers no
    /// confirmed battery control (every mode's capability is false, see [`map`]).
    async fn set_operation_mode(
        &self,
        _account: &AccountRef,
        _device: &DeviceRef,
        mode: BatteryOperationMode,
    ) -> AdapterResult<CommandReceipt> {
        Err(err(
            ErrorKind::Unsupported,
            format!(
                "set_operation_mode {}: FusionSolar's Northbound API offers no battery control \
                 (intervention {})",
                mode.as_str(),
                map::BATTERY_CONTROL_INTERVENTION_ID
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oemgate_core::{Command, ManualClock};

    fn adapter() -> HuaweiAdapter {
        // Port 9 (discard) on localhost: any request that got out would fail as Transient.
        let config = HuaweiConfig::new("http://127.0.0.1:9");
        let clock = Arc::new(ManualClock::new(DateTime::UNIX_EPOCH));
        HuaweiAdapter::new(config, clock)
    }

    fn account(token: &str) -> AccountRef {
        AccountRef {
            user_id: "u".into(),
            vendor: "HUAWEI".into(),
            account_id: "a".into(),
            credentials: Credentials {
                access_token: token.into(),
                refresh_token: Some("pw".into()),
                ..Default::default()
            },
        }
    }

    fn device(device_type: VendorType, vendor_id: &str) -> DeviceRef {
        DeviceRef {
            id: "d".into(),
            user_id: "u".into(),
            device_type,
            vendor_id: vendor_id.into(),
            site_id: Some("NE=1".into()),
        }
    }

    #[test]
    fn serves_inverters_batteries_and_meters() {
        let a = adapter();
        assert_eq!(a.info().name, "HUAWEI");
        assert_eq!(a.info().device_types, DEVICE_TYPES);
        assert!(a.batteries().is_some() && a.meters().is_some() && a.inverters().is_some());
        assert!(a.vehicles().is_none() && a.chargers().is_none() && a.hvacs().is_none());
        let limits = a.limits();
        assert_eq!(limits.requests_per_minute, 1);
        assert_eq!(limits.rate_scope, QuotaScope::Account);
        assert_eq!(limits.max_concurrent, 1);
    }

    #[tokio::test]
    async fn refusals_before_any_request() {
        let a = adapter();
        let battery = device(VendorType::Battery, "39:1000000000000001");
        for mode in BatteryOperationMode::ALL {
            let command = Command::SetOperationMode { mode: *mode };
            let e = a.execute(&account("t"), &battery, &command).await.unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Unsupported, "{e}");
        }
        // A vendor id of the wrong class or shape is NotFound without a request.
        for (t, id) in [(VendorType::Inverter, "39:1"), (VendorType::Meter, "47:../1")] {
            let e = a.poll(&account("t"), &device(t, id)).await.unwrap_err();
            assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
        }
        // No token: AuthExpired when a password can log in again, else Unauthorized.
        let inverter = device(VendorType::Inverter, "38:1");
        let e = a.poll(&account(""), &inverter).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::AuthExpired);
        let mut no_password = account("");
        no_password.credentials.refresh_token = None;
        let e = a.poll(&no_password, &inverter).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unauthorized);
        let e = a.refresh_credentials(&account("t")).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unauthorized, "no user name stored");
        let e = a.login("", "pw").await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Rejected);
    }

    #[tokio::test]
    async fn unreachable_host_is_transient() {
        let a = adapter();
        let e = a.poll(&account("t"), &device(VendorType::Meter, "47:5")).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Transient, "{e}");
        let results = a
            .poll_batch(
                &account("t"),
                &[device(VendorType::Meter, "47:5"), device(VendorType::Meter, "47:6")],
            )
            .await;
        assert_eq!(results.len(), 2);
        assert!(
            results.iter().all(|r| r.as_ref().is_err_and(|e| e.kind() == ErrorKind::Transient))
        );
    }
}
