//! oemgate-solaredge: the SolarEdge Monitoring API adapter (read-only PV inverters, home
//! batteries and grid meters), and a simulator of SolarEdge's cloud (feature `sim`).
//!
//! [`SolarEdgeAdapter`] implements [`VendorAdapter`], [`InverterApi`], [`MeterApi`] and
//! [`BatteryApi`] against `https://monitoringapi.solaredge.com`.
//!
//! # Layout
//!
//! - [`client`]: the HTTP calls (`api_key` query parameter, per-request timeout) and the
//!   classification of every SolarEdge failure into an [`ErrorKind`] (table in its docs).
//! - [`model`]: SolarEdge's JSON, only the fields read, tolerant of anything extra.
//! - [`map`]: pure functions from SolarEdge's JSON to the normalized [`Inverter`],
//!   [`Meter`] and [`Battery`] (units, signs, time zones and capabilities are documented
//!   there).
//! - `sim` (feature `sim`): `SolarEdgeSim`, SolarEdge's cloud as an axum `Router` over
//!   `oemgate_sim::World`, to be mounted under [`SIM_PREFIX`] (`/solaredge`) of a
//!   `SimHost`; the adapter's base URL is then `http://host:port/solaredge`.
//!
//! # Linking and credentials
//!
//! SolarEdge has no OAuth: a user links an account by pasting an API key (an account key for
//! all their sites, or a site key). [`SolarEdgeAdapter::link_api_key`] checks the key with
//! one `GET /sites/list` and returns it as [`Credentials::access_token`], without refresh
//! token or expiry. Keys do not expire, so [`VendorAdapter::refresh_credentials`] always
//! fails as `Unauthorized` without a request, and a key SolarEdge refuses (401, or 403 for a
//! key without access) is `Unauthorized`: the user must link a new key.
//!
//! # Devices and endpoints
//!
//! | device | `vendor_id` | `site_id` | single read (requests) |
//! |---|---|---|---|
//! | inverter: the site's PV production (all its inverters together) | site id | site id | `details` + `overview` (2) |
//! | meter: the site's grid connection | site id | site id | `details` + `currentPowerFlow` (2) |
//! | battery | battery serial number | site id | `details` + `currentPowerFlow` + `storageData` (3) |
//!
//! [`VendorAdapter::discover`] reads `GET /sites/list` (100 sites a page), then each site's
//! `currentPowerFlow`: a `PV` node means an inverter, a `GRID` node a meter, a `STORAGE`
//! node batteries, whose serial numbers come from the site's `storageData`.
//!
//! [`VendorAdapter::poll_batch`] reads many devices of one account together: one page of
//! `/sites/list` for the sites' names and time zones, the **bulk** overview
//! `GET /sites/{id},{id},.../overview` (up to 100 sites per call) for every inverter, and one
//! `currentPowerFlow` and one `storageData` per site shared by its meter and batteries. Each
//! shared request is counted once, on the first observation that used it.
//!
//! # Quirks and decisions
//!
//! - `currentPowerFlow` values are unsigned; the direction comes only from `connections`,
//!   whose node names come in any case (`GRID`, `Grid`, `Load`): the grid exports when `grid`
//!   is a `to`, the storage charges when `storage` is a `to` (see [`map`]).
//! - Every time SolarEdge sends is site-local without an offset. The adapter converts it
//!   with the site's IANA `location.timeZone` (chrono-tz, so summer time is right) and never
//!   guesses: without a zone, `lastUpdated` is the read time.
//! - The power flow has no timestamp: meter and battery `lastUpdated` are the read time. The
//!   overview's `lastUpdateTime` is the inverter's `lastUpdated`; older than
//!   [`map::OVERVIEW_STALE_AFTER`] it makes the inverter unreachable.
//! - A node whose `status` is `Disabled` reads as unreachable with `null` live values
//!   (SolarEdge documents `Active`, `Idle`, `Disabled`; `Charging`/`Discharging` on storage is
//!   **unconfirmed** and only used when no connection gives the direction).
//! - `storageData` telemetry `power` positive while charging and `batteryPercentageState`
//!   are **unconfirmed**: they are only used for sites with several batteries, where the
//!   power flow gives just the sum.
//! - The API does not expose the battery's operation mode nor its backup reserve:
//!   `config.operationMode` and `chargeState.dischargeLimit` are `null`.
//! - The API is read-only: every battery mode capability is `isCapable: false` with
//!   [`map::READ_ONLY_INTERVENTION_ID`], and `SetOperationMode` fails as `Unsupported`
//!   before any request.
//! - The 401 `application/problem+json` answer to a bad key is **unconfirmed** (older
//!   reports show 403): both are `Unauthorized`.
//! - SolarEdge's 429 has no `Retry-After` and the reset time of the daily quota is not
//!   published, so `retry_after` is only set when a header says it.
//! - A site id that is not all digits, or a battery without a site id, is `NotFound`
//!   without a request.
//!
//! # Limits
//!
//! SolarEdge allows 300 requests a day per account key and 300 per site (bulk calls count
//! once per site), at most 3 concurrent calls per source IP, and answers 429 beyond. See
//! [`VendorAdapter::limits`] on [`SolarEdgeAdapter`].
//!
//! [`Inverter`]: oemgate_core::Inverter
//! [`Meter`]: oemgate_core::Meter
//! [`Battery`]: oemgate_core::Battery

pub mod client;
pub mod map;
pub mod model;
#[cfg(feature = "sim")]
pub mod sim;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use oemgate_core::{
    AccountRef, AdapterError, AdapterResult, BatteryApi, BatteryOperationMode, Clock,
    CommandReceipt, Credentials, DailyQuota, DeviceRef, DeviceState, DiscoveredDevice, ErrorKind,
    InverterApi, MeterApi, Observation, QuotaScope, VendorAdapter, VendorInfo, VendorLimits,
    VendorType,
};

use client::SolarEdgeClient;
pub use client::{SolarEdgeApiError, VENDOR};
use model::{
    BulkOverviewResponse, Overview, OverviewResponse, PowerFlow, PowerFlowResponse, Site,
    SiteDetailsResponse, SitesList, SitesListResponse, StorageData, StorageDataResponse,
};

/// The production base URL.
pub const API_BASE_URL: &str = "https://monitoringapi.solaredge.com";

/// The path prefix the simulator expects to be mounted under in a `SimHost`.
pub const SIM_PREFIX: &str = "/solaredge";

/// Requests SolarEdge allows per day and account key (and, separately, per site).
pub const DAILY_REQUESTS: u32 = 300;

/// Concurrent calls SolarEdge allows per source IP.
pub const MAX_CONCURRENT: u32 = 3;

/// Sites per bulk call (SolarEdge's maximum).
pub const MAX_BULK_SITES: usize = 100;

/// Sites per page of `/sites/list` (SolarEdge's maximum).
pub const SITES_PAGE_SIZE: usize = 100;

/// Pages of `/sites/list` discovery reads at most (10 000 sites).
pub const MAX_SITE_PAGES: usize = 100;

const DEVICE_TYPES: &[VendorType] = &[VendorType::Inverter, VendorType::Battery, VendorType::Meter];

/// Where the adapter finds SolarEdge. SolarEdge has no application credentials: each account
/// brings its own API key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SolarEdgeConfig {
    /// The Monitoring API base URL ([`API_BASE_URL`], or the simulator's
    /// `http://host:port/solaredge`).
    pub api_base_url: String,
    /// Timeout of one HTTP request, connection included.
    pub request_timeout: Duration,
}

impl SolarEdgeConfig {
    /// The production URL with a 30 s request timeout.
    pub fn new() -> Self {
        Self { api_base_url: API_BASE_URL.to_owned(), request_timeout: Duration::from_secs(30) }
    }
}

impl Default for SolarEdgeConfig {
    fn default() -> Self {
        Self::new()
    }
}

/// The SolarEdge Monitoring API adapter (inverters, batteries and meters, read-only).
pub struct SolarEdgeAdapter {
    config: SolarEdgeConfig,
    client: SolarEdgeClient,
    clock: Arc<dyn Clock>,
    info: VendorInfo,
}

impl fmt::Debug for SolarEdgeAdapter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SolarEdgeAdapter").field("config", &self.config).finish_non_exhaustive()
    }
}

fn err(kind: ErrorKind, message: impl Into<String>) -> AdapterError {
    AdapterError::new(kind, VENDOR, message)
}

/// A site id for a URL path: SolarEdge's are numeric.
fn checked_site_id(id: &str) -> AdapterResult<&str> {
    if id.is_empty() || id.len() > 20 || !id.bytes().all(|b| b.is_ascii_digit()) {
        return Err(err(ErrorKind::NotFound, format!("{id:?} is not a SolarEdge site id")));
    }
    Ok(id)
}

/// The site a device is read through: the vendor id for inverters and meters, the site id for
/// batteries.
fn device_site(device: &DeviceRef) -> AdapterResult<&str> {
    match device.device_type {
        VendorType::Inverter | VendorType::Meter => checked_site_id(&device.vendor_id),
        VendorType::Battery => match device.site_id.as_deref() {
            Some(site) => checked_site_id(site),
            None => Err(err(
                ErrorKind::NotFound,
                format!("battery {} has no SolarEdge site id", device.vendor_id),
            )),
        },
        other => Err(err(
            ErrorKind::Unsupported,
            format!("SolarEdge serves no {} devices", other.as_str()),
        )),
    }
}

/// Rebuilds an error for a second device of a batch (errors are not `Clone`).
fn copy_error(e: &AdapterError) -> AdapterError {
    let mut copy = AdapterError::new(e.kind(), e.vendor(), e.message().to_owned());
    if let Some(after) = e.retry_after() {
        copy = copy.with_retry_after(after);
    }
    copy
}

/// A shared answer of a batch: the value, or the error (the original for the first device
/// that needs it, copies for the others).
enum Fetched<T> {
    Ok(T),
    Err { original: Option<AdapterError>, template: AdapterError },
}

impl<T> Fetched<T> {
    fn from(result: AdapterResult<T>) -> Self {
        match result {
            Ok(v) => Fetched::Ok(v),
            Err(e) => Fetched::Err { template: copy_error(&e), original: Some(e) },
        }
    }

    fn error(&mut self) -> Option<AdapterError> {
        match self {
            Fetched::Ok(_) => None,
            Fetched::Err { original, template } => {
                Some(original.take().unwrap_or_else(|| copy_error(template)))
            }
        }
    }
}

/// The requests of a batch, each counted on the first observation that used it.
#[derive(Default)]
struct Ledger {
    uncounted: HashMap<String, u32>,
}

impl Ledger {
    fn add(&mut self, key: impl Into<String>, requests: u32) {
        *self.uncounted.entry(key.into()).or_insert(0) += requests;
    }

    fn take(&mut self, keys: &[String]) -> u32 {
        keys.iter().map(|k| self.uncounted.remove(k).unwrap_or(0)).sum()
    }
}

impl SolarEdgeAdapter {
    /// An adapter with its own HTTP client. `clock` stamps observations and converts
    /// SolarEdge's site-local times.
    pub fn new(config: SolarEdgeConfig, clock: Arc<dyn Clock>) -> Self {
        let connect = config.request_timeout.min(Duration::from_secs(10));
        let http = reqwest::Client::builder()
            .connect_timeout(connect)
            .user_agent(concat!("oemgate-solaredge/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default();
        Self::with_http_client(config, clock, http)
    }

    /// An adapter sharing an existing HTTP client. The per-request timeout of `config` still
    /// applies.
    pub fn with_http_client(
        config: SolarEdgeConfig,
        clock: Arc<dyn Clock>,
        http: reqwest::Client,
    ) -> Self {
        let client = SolarEdgeClient::new(http, &config.api_base_url, config.request_timeout);
        let info =
            VendorInfo { name: VENDOR, display_name: "SolarEdge", device_types: DEVICE_TYPES };
        Self { config, client, clock, info }
    }

    /// The configuration.
    pub fn config(&self) -> &SolarEdgeConfig {
        &self.config
    }

    /// Links an account from the API key the user pasted (an account key or a site key):
    /// checks it with one `GET /sites/list` and returns it as credentials without refresh
    /// token or expiry. A key SolarEdge refuses is `Unauthorized`; one that is empty or has
    /// characters no key has is `Rejected` without a request.
    pub async fn link_api_key(&self, api_key: &str) -> AdapterResult<Credentials> {
        let key = api_key.trim();
        if key.is_empty() || key.len() > 256 || !key.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(err(ErrorKind::Rejected, "that is not a SolarEdge API key"));
        }
        let _: SitesListResponse = self
            .client
            .get(key, "/sites/list", &[("size", "1")], "sites/list", self.clock.now())
            .await?;
        Ok(Credentials {
            access_token: key.to_owned(),
            refresh_token: None,
            expires_at: None,
            extra: BTreeMap::new(),
        })
    }

    /// The account's API key, or `Unauthorized` without a request.
    fn api_key<'a>(&self, account: &'a AccountRef) -> AdapterResult<&'a str> {
        let key = account.credentials.access_token.trim();
        if key.is_empty() {
            return Err(err(ErrorKind::Unauthorized, "the account has no SolarEdge API key"));
        }
        Ok(key)
    }

    async fn get<T: serde::de::DeserializeOwned>(
        &self,
        key: &str,
        path: &str,
        query: &[(&str, &str)],
        what: &str,
    ) -> AdapterResult<T> {
        self.client.get(key, path, query, what, self.clock.now()).await
    }

    async fn site_details(&self, key: &str, site: &str) -> AdapterResult<Site> {
        let path = format!("/site/{site}/details");
        let r: SiteDetailsResponse = self.get(key, &path, &[], "details").await?;
        Ok(r.details)
    }

    async fn sites_page(&self, key: &str, start_index: usize) -> AdapterResult<SitesList> {
        let size = SITES_PAGE_SIZE.to_string();
        let start = start_index.to_string();
        let query = [("size", size.as_str()), ("startIndex", start.as_str())];
        let r: SitesListResponse = self.get(key, "/sites/list", &query, "sites/list").await?;
        Ok(r.sites)
    }

    /// Pages through `/sites/list` until `enough` says so or every site was read. Returns the
    /// sites and the number of requests.
    async fn list_sites(
        &self,
        key: &str,
        enough: impl Fn(&[Site]) -> bool,
    ) -> AdapterResult<(Vec<Site>, u32)> {
        let mut sites: Vec<Site> = Vec::new();
        let mut requests = 0;
        for _ in 0..MAX_SITE_PAGES {
            let page = self.sites_page(key, sites.len()).await?;
            requests += 1;
            let got = page.site.len();
            sites.extend(page.site);
            let total = page.count.and_then(|c| usize::try_from(c).ok()).unwrap_or(sites.len());
            if got == 0 || sites.len() >= total || enough(&sites) {
                break;
            }
        }
        Ok((sites, requests))
    }

    async fn overview(&self, key: &str, site: &str) -> AdapterResult<Overview> {
        let path = format!("/site/{site}/overview");
        let r: OverviewResponse = self.get(key, &path, &[], "overview").await?;
        Ok(r.overview)
    }

    async fn bulk_overview(
        &self,
        key: &str,
        sites: &[&str],
    ) -> AdapterResult<HashMap<String, Overview>> {
        let path = format!("/sites/{}/overview", sites.join(","));
        let r: BulkOverviewResponse = self.get(key, &path, &[], "overview (bulk)").await?;
        Ok(r.sites_overviews
            .site_energy_list
            .into_iter()
            .map(|e| (e.site_id, e.site_overview))
            .collect())
    }

    async fn power_flow(&self, key: &str, site: &str) -> AdapterResult<PowerFlow> {
        let path = format!("/site/{site}/currentPowerFlow");
        let r: PowerFlowResponse = self.get(key, &path, &[], "currentPowerFlow").await?;
        Ok(r.site_current_power_flow)
    }

    async fn storage_data(
        &self,
        key: &str,
        site: &str,
        tz: Option<Tz>,
    ) -> AdapterResult<StorageData> {
        let (start, end) = map::storage_window(self.clock.now(), tz);
        let path = format!("/site/{site}/storageData");
        let query = [("startTime", start.as_str()), ("endTime", end.as_str())];
        let r: StorageDataResponse = self.get(key, &path, &query, "storageData").await?;
        Ok(r.storage_data)
    }

    fn observation(&self, state: DeviceState, now: DateTime<Utc>, requests: u32) -> Observation {
        Observation { state, observed_at: now, asleep: false, requests }
    }

    fn inverter_observation(
        &self,
        device: &DeviceRef,
        site: &Site,
        overview: &Overview,
        requests: u32,
    ) -> Observation {
        let now = self.clock.now();
        let inverter = map::inverter(device, site, overview, now);
        self.observation(DeviceState::Inverter(Box::new(inverter)), now, requests)
    }

    fn meter_observation(
        &self,
        device: &DeviceRef,
        site: &Site,
        flow: &PowerFlow,
        requests: u32,
    ) -> Observation {
        let now = self.clock.now();
        let meter = map::meter(device, site, &map::read_power_flow(flow), now);
        self.observation(DeviceState::Meter(Box::new(meter)), now, requests)
    }

    fn battery_observation(
        &self,
        device: &DeviceRef,
        site: &Site,
        flow: &PowerFlow,
        data: &StorageData,
        requests: u32,
    ) -> AdapterResult<Observation> {
        let Some(battery) = data.batteries.iter().find(|b| b.serial_number == device.vendor_id)
        else {
            return Err(err(
                ErrorKind::NotFound,
                format!("battery {} is not on site {}", device.vendor_id, site.id),
            ));
        };
        let now = self.clock.now();
        let reading = map::read_power_flow(flow);
        let live = map::battery_live(Some(&reading), data, battery, map::site_time_zone(site), now);
        let state = map::battery(device, site, battery, &live, now);
        Ok(self.observation(DeviceState::Battery(Box::new(state)), now, requests))
    }
}

#[async_trait]
impl VendorAdapter for SolarEdgeAdapter {
    fn info(&self) -> &VendorInfo {
        &self.info
    }

    /// SolarEdge's published limits: 300 requests a day per account key and 300 per site
    /// (declared per account: each linked account is one key, and its sites share the key's
    /// 300, so no site can exceed its own), and at most 3 concurrent calls per source IP,
    /// which is the whole gateway: the rate scope is therefore `Key`. SolarEdge publishes no
    /// per-minute rate; 180 a minute with a burst of 3 (the concurrency) is what three calls
    /// of about a second each at a time allow. The daily quotas are the real budget, but the
    /// rate is shared by every linked account: at 60 a minute (what this said before) the
    /// load test's 10,000-device fleet (about 1,250 SolarEdge devices) got 0.6 requests per
    /// device-hour; at 1,000 devices, where the rate is not the limit, they get about 9.
    /// No pricing: the API is free.
    fn limits(&self) -> VendorLimits {
        VendorLimits {
            requests_per_minute: 180,
            burst: MAX_CONCURRENT,
            rate_scope: QuotaScope::Key,
            daily_quota: Some(DailyQuota { requests: DAILY_REQUESTS, per: QuotaScope::Account }),
            max_concurrent: MAX_CONCURRENT,
            pricing: None,
        }
    }

    /// Inverter and meter reads cost 2 requests, battery reads 3.
    fn poll_cost(&self, device_type: VendorType) -> u32 {
        match device_type {
            VendorType::Battery => 3,
            VendorType::Inverter | VendorType::Meter => 2,
            _ => 0,
        }
    }

    /// API keys do not expire and cannot be refreshed: always `Unauthorized` (the user must
    /// link a new key), without a request.
    async fn refresh_credentials(&self, _account: &AccountRef) -> AdapterResult<Credentials> {
        Err(err(
            ErrorKind::Unauthorized,
            "SolarEdge API keys cannot be refreshed; the user must link a new key",
        ))
    }

    /// `/sites/list`, then per site `currentPowerFlow` (PV → inverter, GRID → meter) and, for
    /// a site with a STORAGE node, `storageData` (one battery per serial number).
    async fn discover(&self, account: &AccountRef) -> AdapterResult<Vec<DiscoveredDevice>> {
        let key = self.api_key(account)?;
        let (sites, _) = self.list_sites(key, |_| false).await?;
        let mut found = Vec::new();
        for site in &sites {
            let Ok(id) = checked_site_id(&site.id) else {
                tracing::debug!(target: "oemgate_solaredge", site = %site.id, "skipping a site with a non-numeric id");
                continue;
            };
            let name = map::site_name(site);
            let flow = self.power_flow(key, id).await?;
            let device = |device_type, vendor_id: &str, display: String| DiscoveredDevice {
                device_type,
                vendor_id: vendor_id.to_owned(),
                site_id: Some(id.to_owned()),
                display_name: Some(display),
            };
            if flow.pv.is_some() {
                found.push(device(VendorType::Inverter, id, name.clone()));
            }
            if flow.grid.is_some() {
                found.push(device(VendorType::Meter, id, format!("{name} grid meter")));
            }
            if flow.storage.is_some() {
                let data = self.storage_data(key, id, map::site_time_zone(site)).await?;
                let mut seen = BTreeSet::new();
                for battery in &data.batteries {
                    let serial = battery.serial_number.trim();
                    if !serial.is_empty() && seen.insert(serial.to_owned()) {
                        found.push(device(
                            VendorType::Battery,
                            serial,
                            format!("{name} battery {serial}"),
                        ));
                    }
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

    /// Reads the devices together (see the crate docs): one `/sites/list` page, one bulk
    /// overview per 100 inverter sites, one `currentPowerFlow` and one `storageData` per
    /// site. With fewer than two SolarEdge devices there is nothing to share and each is
    /// polled on its own.
    async fn poll_batch(
        &self,
        account: &AccountRef,
        devices: &[DeviceRef],
    ) -> Vec<AdapterResult<Observation>> {
        let mut out: Vec<Option<AdapterResult<Observation>>> =
            devices.iter().map(|_| None).collect();
        let mut planned: Vec<(usize, String)> = Vec::new();
        for (i, device) in devices.iter().enumerate() {
            match device_site(device) {
                Ok(site) => planned.push((i, site.to_owned())),
                Err(e) => out[i] = Some(Err(e)),
            }
        }
        if planned.len() < 2 {
            for (i, _) in &planned {
                out[*i] = Some(self.poll(account, &devices[*i]).await);
            }
            return out.into_iter().flatten().collect();
        }
        let key = match self.api_key(account) {
            Ok(key) => key,
            Err(e) => {
                for (i, _) in &planned {
                    out[*i] = Some(Err(copy_error(&e)));
                }
                return out.into_iter().flatten().collect();
            }
        };
        let mut ledger = Ledger::default();

        // Names and time zones of the sites.
        let wanted: BTreeSet<String> = planned.iter().map(|(_, s)| s.clone()).collect();
        let listed = self
            .list_sites(key, |sites| {
                let have: BTreeSet<&str> = sites.iter().map(|s| s.id.as_str()).collect();
                wanted.iter().all(|w| have.contains(w.as_str()))
            })
            .await;
        let sites: HashMap<String, Site> = match listed {
            Ok((sites, requests)) => {
                ledger.add("sites", requests);
                sites.into_iter().map(|s| (s.id.clone(), s)).collect()
            }
            Err(e) => {
                let mut shared = Fetched::<()>::from(Err(e));
                for (i, _) in &planned {
                    out[*i] = shared.error().map(Err);
                }
                return out.into_iter().flatten().collect();
            }
        };

        // Which shared reads each site needs.
        let mut overview_sites: Vec<&str> = Vec::new();
        let mut flow_sites: BTreeSet<&str> = BTreeSet::new();
        let mut storage_sites: BTreeSet<&str> = BTreeSet::new();
        for (i, site) in &planned {
            if !sites.contains_key(site) {
                continue;
            }
            match devices[*i].device_type {
                VendorType::Inverter => {
                    if !overview_sites.contains(&site.as_str()) {
                        overview_sites.push(site);
                    }
                }
                VendorType::Meter => {
                    flow_sites.insert(site);
                }
                _ => {
                    flow_sites.insert(site);
                    storage_sites.insert(site);
                }
            }
        }

        // Bulk overviews: the chunk each inverter site was asked in, the failed chunks, and
        // the overviews that came back.
        let mut chunk_of: HashMap<String, String> = HashMap::new();
        let mut failed_chunks: HashMap<String, Fetched<()>> = HashMap::new();
        let mut overviews: HashMap<String, Overview> = HashMap::new();
        for (n, chunk) in overview_sites.chunks(MAX_BULK_SITES).enumerate() {
            let chunk_key = format!("overview:{n}");
            for site in chunk {
                chunk_of.insert((*site).to_owned(), chunk_key.clone());
            }
            match self.bulk_overview(key, chunk).await {
                Ok(found) => {
                    ledger.add(chunk_key, 1);
                    overviews.extend(found);
                }
                Err(e) => {
                    failed_chunks.insert(chunk_key, Fetched::from(Err(e)));
                }
            }
        }
        let mut flows: HashMap<String, Fetched<PowerFlow>> = HashMap::new();
        for site in &flow_sites {
            let result = self.power_flow(key, site).await;
            if result.is_ok() {
                ledger.add(format!("flow:{site}"), 1);
            }
            flows.insert((*site).to_owned(), Fetched::from(result));
        }
        let mut storages: HashMap<String, Fetched<StorageData>> = HashMap::new();
        for site in &storage_sites {
            let tz = sites.get(*site).and_then(map::site_time_zone);
            let result = self.storage_data(key, site, tz).await;
            if result.is_ok() {
                ledger.add(format!("storage:{site}"), 1);
            }
            storages.insert((*site).to_owned(), Fetched::from(result));
        }

        for (i, site_id) in &planned {
            let device = &devices[*i];
            let Some(site) = sites.get(site_id) else {
                out[*i] = Some(Err(err(
                    ErrorKind::NotFound,
                    format!("site {site_id} is not on the account"),
                )));
                continue;
            };
            let result = match device.device_type {
                VendorType::Inverter => {
                    let chunk = chunk_of.get(site_id).cloned().unwrap_or_default();
                    if let Some(failed) = failed_chunks.get_mut(&chunk) {
                        Err(failed
                            .error()
                            .unwrap_or_else(|| err(ErrorKind::Transient, "overview (bulk) failed")))
                    } else if let Some(overview) = overviews.get(site_id) {
                        let n = ledger.take(&["sites".to_owned(), chunk]);
                        Ok(self.inverter_observation(device, site, overview, n))
                    } else {
                        Err(err(
                            ErrorKind::NotFound,
                            format!("the bulk overview has no site {site_id}"),
                        ))
                    }
                }
                VendorType::Meter => match flows.get_mut(site_id) {
                    Some(Fetched::Ok(flow)) => {
                        let n = ledger.take(&["sites".to_owned(), format!("flow:{site_id}")]);
                        Ok(self.meter_observation(device, site, flow, n))
                    }
                    Some(failed) => Err(failed
                        .error()
                        .unwrap_or_else(|| err(ErrorKind::Transient, "currentPowerFlow failed"))),
                    None => Err(err(ErrorKind::Transient, "currentPowerFlow was not read")),
                },
                _ => {
                    let flow = flows.get_mut(site_id);
                    let flow = match flow {
                        Some(Fetched::Ok(flow)) => Ok(&*flow),
                        Some(failed) => Err(failed.error().unwrap_or_else(|| {
                            err(ErrorKind::Transient, "currentPowerFlow failed")
                        })),
                        None => Err(err(ErrorKind::Transient, "currentPowerFlow was not read")),
                    };
                    match (flow, storages.get_mut(site_id)) {
                        (Err(e), _) => Err(e),
                        (Ok(flow), Some(Fetched::Ok(data))) => {
                            let keys = [
                                "sites".to_owned(),
                                format!("flow:{site_id}"),
                                format!("storage:{site_id}"),
                            ];
                            // Count the requests only if the observation is built.
                            match self.battery_observation(device, site, flow, data, 0) {
                                Ok(mut obs) => {
                                    obs.requests = ledger.take(&keys);
                                    Ok(obs)
                                }
                                Err(e) => Err(e),
                            }
                        }
                        (Ok(_), Some(failed)) => Err(failed
                            .error()
                            .unwrap_or_else(|| err(ErrorKind::Transient, "storageData failed"))),
                        (Ok(_), None) => Err(err(ErrorKind::Transient, "storageData was not read")),
                    }
                }
            };
            out[*i] = Some(result);
        }
        out.into_iter().flatten().collect()
    }
}

#[async_trait]
impl InverterApi for SolarEdgeAdapter {
    /// `details` + `overview` (2 requests).
    async fn read_inverter(
        &self,
        account: &AccountRef,
        device: &DeviceRef,
    ) -> AdapterResult<Observation> {
        let site_id = checked_site_id(&device.vendor_id)?;
        let key = self.api_key(account)?;
        let site = self.site_details(key, site_id).await?;
        let overview = self.overview(key, site_id).await?;
        Ok(self.inverter_observation(device, &site, &overview, 2))
    }
}

#[async_trait]
impl MeterApi for SolarEdgeAdapter {
    /// `details` + `currentPowerFlow` (2 requests).
    async fn read_meter(
        &self,
        account: &AccountRef,
        device: &DeviceRef,
    ) -> AdapterResult<Observation> {
        let site_id = checked_site_id(&device.vendor_id)?;
        let key = self.api_key(account)?;
        let site = self.site_details(key, site_id).await?;
        let flow = self.power_flow(key, site_id).await?;
        Ok(self.meter_observation(device, &site, &flow, 2))
    }
}

#[async_trait]
impl BatteryApi for SolarEdgeAdapter {
    /// `details` + `currentPowerFlow` + `storageData` (3 requests).
    async fn read_battery(
        &self,
        account: &AccountRef,
        device: &DeviceRef,
    ) -> AdapterResult<Observation> {
        let site_id = device_site(device)?;
        let key = self.api_key(account)?;
        let site = self.site_details(key, site_id).await?;
        let flow = self.power_flow(key, site_id).await?;
        let data = self.storage_data(key, site_id, map::site_time_zone(&site)).await?;
        self.battery_observation(device, &site, &flow, &data, 3)
    }

    /// The Monitoring API is read-only: `Unsupported`, before any request.
    async fn set_operation_mode(
        &self,
        _account: &AccountRef,
        _device: &DeviceRef,
        mode: BatteryOperationMode,
    ) -> AdapterResult<CommandReceipt> {
        Err(err(
            ErrorKind::Unsupported,
            format!(
                "set_operation_mode {}: the SolarEdge Monitoring API is read-only",
                mode.as_str()
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oemgate_core::{Command, ManualClock};

    fn adapter() -> SolarEdgeAdapter {
        // Port 9 (discard) on localhost: a request that got out would fail as Transient.
        let config = SolarEdgeConfig {
            api_base_url: "http://127.0.0.1:9".into(),
            request_timeout: Duration::from_secs(1),
        };
        SolarEdgeAdapter::new(config, Arc::new(ManualClock::new(DateTime::UNIX_EPOCH)))
    }

    fn account(key: &str) -> AccountRef {
        AccountRef {
            user_id: "u".into(),
            vendor: VENDOR.into(),
            account_id: "a".into(),
            credentials: Credentials { access_token: key.into(), ..Default::default() },
        }
    }

    fn device(device_type: VendorType, vendor_id: &str, site: Option<&str>) -> DeviceRef {
        DeviceRef {
            id: "d".into(),
            user_id: "u".into(),
            device_type,
            vendor_id: vendor_id.into(),
            site_id: site.map(str::to_owned),
        }
    }

    #[test]
    fn serves_inverters_batteries_and_meters() {
        let a = adapter();
        assert_eq!(a.info().name, "SOLAREDGE");
        assert!(a.inverters().is_some() && a.meters().is_some() && a.batteries().is_some());
        assert!(a.vehicles().is_none() && a.chargers().is_none() && a.hvacs().is_none());
        let limits = a.limits();
        assert_eq!(
            limits.daily_quota,
            Some(DailyQuota { requests: 300, per: QuotaScope::Account })
        );
        assert_eq!(limits.max_concurrent, 3);
        assert!(limits.burst >= a.poll_cost(VendorType::Battery));
    }

    #[tokio::test]
    async fn refused_before_any_request() {
        let a = adapter();
        let bat = device(VendorType::Battery, "7E0001", Some("3100001"));
        for mode in BatteryOperationMode::ALL {
            let e = a
                .execute(&account("KEY"), &bat, &Command::SetOperationMode { mode: *mode })
                .await
                .unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Unsupported, "{e}");
        }
        let e = a.refresh_credentials(&account("KEY")).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unauthorized);
        let e = a.poll(&account(""), &device(VendorType::Meter, "1", None)).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unauthorized);
        let e =
            a.poll(&account("KEY"), &device(VendorType::Meter, "1/../2", None)).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound);
        let e =
            a.poll(&account("KEY"), &device(VendorType::Battery, "7E", None)).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound);
        let e = a.link_api_key("not a key!").await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Rejected);
    }

    #[tokio::test]
    async fn unreachable_host_is_transient() {
        let e = adapter()
            .poll(&account("KEY"), &device(VendorType::Inverter, "3100001", None))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Transient, "{e}");
    }
}
