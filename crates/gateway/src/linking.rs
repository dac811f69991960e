//! Turning a user's linking step (an OAuth code, a login, an API key) into vendor credentials,
//! and a linked account into registered devices.
//!
//! Each vendor crate offers its own linking call; this module is the one place that knows
//! which vendor takes which step ([`method`], [`authorize_url`], [`credentials`]), so the
//! demo and the link page stay vendor-agnostic. [`link_account`] stores the account and
//! registers what discovery finds; both the demo and the link page end there.

use std::sync::Arc;

use anyhow::Context;
use chrono::{DateTime, Utc};
use oemgate_core::{AccountRef, AdapterError, Clock, Credentials, ErrorKind, VendorAdapter};
use oemgate_scheduler::Poller;
use oemgate_store::{DeviceFilter, DeviceRecord, PageRequest, Store};

use crate::app;
use crate::config::Config;
use crate::sim::LinkStep;

/// Starts a device-code authorization (tado): the user opens `verification_uri` and types
/// `user_code`; then [`credentials`] with [`LinkStep::DeviceCode`] finishes the link.
pub async fn start_device_code(
    config: &Config,
    clock: Arc<dyn Clock>,
    sim_base: Option<&str>,
    vendor: &str,
) -> Result<oemgate_tado::model::DeviceAuthorization, AdapterError> {
    match vendor {
        "TADO" => {
            oemgate_tado::TadoAdapter::new(app::tado_config(config, sim_base), clock)
                .start_device_authorization()
                .await
        }
        _ => Err(AdapterError::new(
            ErrorKind::Unsupported,
            "GATEWAY",
            format!("{vendor} does not link with a device code"),
        )),
    }
}

/// Runs the linking step for `vendor` ("TESLA", "ENPHASE", ...) against the configured
/// vendor cloud (or the simulators under `sim_base`).
pub async fn credentials(
    config: &Config,
    clock: Arc<dyn Clock>,
    sim_base: Option<&str>,
    vendor: &str,
    step: &LinkStep,
) -> Result<Credentials, AdapterError> {
    let mismatch = || {
        AdapterError::new(
            ErrorKind::Rejected,
            "GATEWAY",
            format!("{vendor} cannot be linked with {step:?}"),
        )
    };
    match (vendor, step) {
        ("TESLA", LinkStep::AuthorizationCode { code, redirect_uri }) => {
            oemgate_tesla::TeslaAdapter::new(app::tesla_config(config, sim_base), clock)
                .exchange_code(code, redirect_uri)
                .await
        }
        ("ENPHASE", LinkStep::AuthorizationCode { code, redirect_uri }) => {
            oemgate_enphase::EnphaseAdapter::new(app::enphase_config(config, sim_base), clock)
                .exchange_code(code, redirect_uri)
                .await
        }
        ("SMA", LinkStep::AuthorizationCode { code, redirect_uri }) => {
            oemgate_sma::SmaAdapter::new(app::sma_config(config, sim_base), clock)
                .exchange_code(code, redirect_uri)
                .await
        }
        ("HUAWEI", LinkStep::Login { user_name, password }) => {
            oemgate_huawei::HuaweiAdapter::new(app::huawei_config(config, sim_base), clock)
                .login(user_name, password)
                .await
        }
        ("SOLAREDGE", LinkStep::ApiKey(key)) => {
            let se = oemgate_solaredge::SolarEdgeConfig {
                api_base_url: sim_base.map_or_else(
                    || config.vendors.solaredge.api_base_url.clone(),
                    |b| format!("{b}/solaredge"),
                ),
                request_timeout: config.vendors.solaredge.request_timeout,
            };
            oemgate_solaredge::SolarEdgeAdapter::new(se, clock).link_api_key(key).await
        }
        ("EASEE", LinkStep::Login { user_name, password }) => {
            oemgate_easee::EaseeAdapter::new(app::easee_config(config, sim_base), clock)
                .login(user_name, password)
                .await
        }
        ("ZAPTEC", LinkStep::Login { user_name, password }) => {
            oemgate_zaptec::ZaptecAdapter::new(app::zaptec_config(config, sim_base), clock)
                .login(user_name, password)
                .await
        }
        ("WALLBOX", LinkStep::Login { user_name, password }) => {
            oemgate_wallbox::WallboxAdapter::new(app::wallbox_config(config, sim_base), clock)
                .sign_in(user_name, password)
                .await
        }
        ("NEST", LinkStep::AuthorizationCode { code, redirect_uri }) => {
            oemgate_nest::NestAdapter::new(app::nest_config(config, sim_base), clock)
                .exchange_code(code, redirect_uri)
                .await
        }
        ("ECOBEE", LinkStep::Pin { code }) => {
            oemgate_ecobee::EcobeeAdapter::new(app::ecobee_config(config, sim_base), clock)
                .exchange_pin(code)
                .await
        }
        ("TADO", LinkStep::DeviceCode { device_code }) => {
            oemgate_tado::TadoAdapter::new(app::tado_config(config, sim_base), clock)
                .exchange_device_code(device_code)
                .await
        }
        _ => Err(mismatch()),
    }
}

/// How a user proves to a vendor that the account is theirs, as the link page asks for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkMethod {
    /// OAuth authorization code: the user signs in on the vendor's page and comes back with
    /// a code (Tesla, Enphase, SMA, Google Nest).
    AuthorizationCode,
    /// The vendor account's login: user name (or e-mail) and password (FusionSolar, Easee,
    /// Zaptec, Wallbox).
    Login {
        /// What the vendor calls the user name.
        user_label: &'static str,
        /// What the vendor calls the password.
        password_label: &'static str,
    },
    /// An API key from the vendor's portal (SolarEdge).
    ApiKey,
    /// The gateway asks the vendor for a code the user confirms on the vendor's own site,
    /// then collects the credentials (ecobee's PIN, tado's device code): see [`start_code`].
    UserCode,
}

/// A code for the user to confirm at the vendor, and the secret that collects the result.
#[derive(Clone)]
pub struct PendingCode {
    /// What the user enters or confirms at the vendor.
    pub user_code: String,
    /// Where the user confirms it, when the vendor says.
    pub verification_url: Option<String>,
    /// The secret that collects the credentials once the user confirmed (see
    /// [`collect_step`]).
    pub secret: String,
}

/// The step that turns a [`PendingCode`]'s secret into credentials.
pub fn collect_step(vendor: &str, secret: &str) -> Option<LinkStep> {
    match vendor {
        "ECOBEE" => Some(LinkStep::Pin { code: secret.to_string() }),
        "TADO" => Some(LinkStep::DeviceCode { device_code: secret.to_string() }),
        _ => None,
    }
}

impl std::fmt::Debug for PendingCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingCode")
            .field("user_code", &self.user_code)
            .field("verification_url", &self.verification_url)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// Starts a [`LinkMethod::UserCode`] link: an ecobee PIN (entered under My Apps in the
/// ecobee portal) or a tado device code (confirmed at tado's login page).
pub async fn start_code(
    config: &Config,
    clock: Arc<dyn Clock>,
    sim_base: Option<&str>,
    vendor: &str,
) -> Result<PendingCode, AdapterError> {
    match vendor {
        "ECOBEE" => {
            let pin =
                oemgate_ecobee::EcobeeAdapter::new(app::ecobee_config(config, sim_base), clock)
                    .request_pin()
                    .await?;
            Ok(PendingCode { user_code: pin.pin, verification_url: None, secret: pin.code })
        }
        _ => {
            let started = start_device_code(config, clock, sim_base, vendor).await?;
            Ok(PendingCode {
                user_code: started.user_code,
                verification_url: started.verification_uri_complete.or(started.verification_uri),
                secret: started.device_code,
            })
        }
    }
}

/// How `vendor` links on the link page; `None` for vendors the link page does not offer.
pub fn method(vendor: &str) -> Option<LinkMethod> {
    let login = |user_label, password_label| LinkMethod::Login { user_label, password_label };
    match vendor {
        "TESLA" | "ENPHASE" | "SMA" | "NEST" => Some(LinkMethod::AuthorizationCode),
        // FusionSolar's Northbound interface calls the password the "system code".
        "HUAWEI" => Some(login("Northbound user name", "System code")),
        "EASEE" | "ZAPTEC" => Some(login("User name", "Password")),
        "WALLBOX" => Some(login("E-mail", "Password")),
        "SOLAREDGE" => Some(LinkMethod::ApiKey),
        "ECOBEE" | "TADO" => Some(LinkMethod::UserCode),
        _ => None,
    }
}

/// The vendor's authorize URL for the code grant, coming back to `redirect_uri` with
/// `state`; `None` for vendors that do not link with an authorization code.
pub fn authorize_url(
    config: &Config,
    clock: Arc<dyn Clock>,
    sim_base: Option<&str>,
    vendor: &str,
    redirect_uri: &str,
    state: &str,
) -> Option<String> {
    match vendor {
        "TESLA" => Some(
            oemgate_tesla::TeslaAdapter::new(app::tesla_config(config, sim_base), clock)
                .authorize_url(redirect_uri, state),
        ),
        "ENPHASE" => Some(
            oemgate_enphase::EnphaseAdapter::new(app::enphase_config(config, sim_base), clock)
                .authorize_url(redirect_uri, Some(state)),
        ),
        "SMA" => Some(
            oemgate_sma::SmaAdapter::new(app::sma_config(config, sim_base), clock)
                .authorize_url(redirect_uri, state),
        ),
        "NEST" => Some(
            oemgate_nest::NestAdapter::new(app::nest_config(config, sim_base), clock)
                .authorize_url(redirect_uri, Some(state)),
        ),
        _ => None,
    }
}

/// Stores a linked account (replacing the credentials of `account_id` when it exists, which
/// is what a relink does, and clears its invalidation) and registers the devices discovery
/// finds that the user does not have yet; the account's devices it already has are put back
/// on the poll schedule. Returns how many new devices were registered.
pub async fn link_account(
    store: &dyn Store,
    poller: &Poller,
    adapter: &dyn VendorAdapter,
    user_id: &str,
    account_id: &str,
    credentials: Credentials,
    now: DateTime<Utc>,
) -> anyhow::Result<usize> {
    let vendor = adapter.info().name;
    let account = AccountRef {
        user_id: user_id.to_string(),
        vendor: vendor.to_string(),
        account_id: account_id.to_string(),
        credentials,
    };
    let version = store
        .get_account(account_id)
        .await
        .context("reading the linked account")?
        .map_or(0, |stored| stored.version);
    store.put_account(account.clone(), version).await.context("storing the linked account")?;
    let found = adapter
        .discover(&account)
        .await
        .with_context(|| format!("discovering {vendor} devices"))?;
    // Discovery's requests did not pass the vendor gate: charge them to it. Adapters list
    // an account's devices with one call plus about one per site, so that is the estimate.
    let sites: std::collections::HashSet<_> = found.iter().map(|d| &d.site_id).collect();
    let requests = u32::try_from(1 + sites.len()).unwrap_or(u32::MAX);
    poller.after_unmetered_requests(vendor, account_id, requests);
    let known = devices_of(store, user_id).await?;
    let mut registered = 0;
    for device in &found {
        let already = known.iter().find(|k| {
            k.vendor == vendor
                && k.device.vendor_id == device.vendor_id
                && k.device.device_type == device.device_type
        });
        if let Some(existing) = already {
            // A relink: the poller took the account's devices off the schedule when its
            // credentials were invalidated; registering them again (same id, same creation
            // time) puts them back.
            if existing.account_id == account_id {
                poller
                    .register(existing.clone())
                    .await
                    .context("rescheduling a relinked device")?;
            }
            continue;
        }
        let record = DeviceRecord {
            device: oemgate_core::DeviceRef {
                id: uuid::Uuid::new_v4().to_string(),
                user_id: user_id.to_string(),
                device_type: device.device_type,
                vendor_id: device.vendor_id.clone(),
                site_id: device.site_id.clone(),
            },
            vendor: vendor.to_string(),
            account_id: account_id.to_string(),
            created_at: now,
        };
        poller.register(record).await.context("registering a discovered device")?;
        registered += 1;
    }
    Ok(registered)
}

/// Every device of a user, walking all pages.
async fn devices_of(store: &dyn Store, user_id: &str) -> anyhow::Result<Vec<DeviceRecord>> {
    let filter = DeviceFilter { user_id: Some(user_id.to_string()), ..DeviceFilter::default() };
    let mut request = PageRequest { after: None, before: None, page_size: 500 };
    let mut all = Vec::new();
    loop {
        let page = store.list_devices(&filter, &request).await.context("listing devices")?;
        all.extend(page.items);
        match page.after {
            Some(after) => request.after = Some(after),
            None => return Ok(all),
        }
    }
}
