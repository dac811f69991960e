//! Turning a user's linking step (an OAuth code, a login, an API key) into vendor credentials.
//!
//! Each vendor crate offers its own linking call; this module is the one place that knows
//! which vendor takes which step, so the demo (and later the link page) stay vendor-agnostic.

use std::sync::Arc;

use oemgate_core::{AdapterError, Clock, Credentials, ErrorKind};

use crate::app;
use crate::config::Config;
use crate::sim::LinkStep;

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
        _ => Err(mismatch()),
    }
}
