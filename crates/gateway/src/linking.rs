//! Turning a user's linking step (an OAuth code, a login, an API key) into vendor credentials.
//!
//! Each vendor crate offers its own linking call; this module is the one place that knows
//! which vendor takes which step, so the demo (and later the link page) stay vendor-agnostic.

use std::sync::Arc;

use oemgate_core::{AdapterError, Clock, Credentials, ErrorKind};

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
