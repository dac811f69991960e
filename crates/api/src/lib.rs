//! oemgate-api: the Enode-style REST API, as an axum [`Router`].
//!
//! Layout:
//! - [`access`]: which users and resources an API client may see (others answer 404).
//! - [`auth`]: OAuth2 client credentials (`POST /oauth2/token`), API clients, bearer checks.
//! - [`problem`]: `application/problem+json` errors; the only place that picks HTTP status
//!   codes for failures.
//! - [`version`]: the `Enode-Version` header (request override, response echo).
//! - [`pagination`]: `after` / `before` / `pageSize` query parameters and the list envelope.
//! - [`devices`]: device resources read from the store's snapshots (a GET never calls a vendor).
//! - [`actions`]: creating, reading and cancelling actions through the executor (charging,
//!   max current, battery operation mode, HVAC holds).
//! - [`link`]: `POST /users/{userId}/link` and `POST /assets/{assetId}/relink`, single-use link
//!   sessions for the gateway's link page (injected as a [`link::Linker`]).
//! - [`health`]: the readiness check, `GET /health/ready`, and `GET /metrics`.
//! - [`users`]: the client's users, their linked vendors, unlinking and disconnecting.
//! - [`locations`]: locations CRUD and assigning chargers and HVAC units to them.
//! - [`schedules`]: charge and temperature schedules, stored, with a status derived at now.
//! - [`tariffs`]: a client's tariffs and the tariff schedules of locations.
//! - [`smart_charging`]: vehicle smart-charging policies, status, overrides and plans.
//! - [`vendors`]: vendor health per device type, integrations and the interventions
//!   catalogue, from an injected [`vendors::VendorHealth`].
//! - [`statistics`]: inverter production and user charging statistics from the stored
//!   observation history.
//! - [`webhooks`]: webhook subscriptions (CRUD and the test delivery); delivery itself is
//!   `oemgate-webhooks`, whose sender is injected.
//! - [`body`]: JSON request bodies and the body size limit.
//! - `resources` (crate-private): the compare-and-set read-modify-write of a store resource,
//!   retried when another writer got in between, which the resource handlers share.
//! - [`openapi`]: the OpenAPI 3.1 document, generated from the route registrations (every
//!   route is mounted together with its documentation), served at `GET /openapi.json`.
//!
//! Conventions every route keeps: unknown routes answer 404 and known routes with another
//! method 405, both problem+json; bodies over [`body::MAX_BODY_BYTES`] answer 413; malformed
//! JSON answers 400 naming the issue; lists take `pageSize` (default
//! [`pagination::DEFAULT_PAGE_SIZE`], at most [`pagination::MAX_PAGE_SIZE`]) and one of
//! `after`/`before`; an unknown `Enode-Version` request header answers 400.
//!
//! Every handler reads through `Arc<dyn Store>`; nothing here knows which backend is in use.
//! Actions go through [`oemgate_executor::Executor`], which knows no vendor either.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use oemgate_core::Clock;
use oemgate_store::Store;

use crate::openapi::{Op, Routes};

pub mod access;
pub mod actions;
pub mod auth;
pub mod body;
pub mod devices;
pub mod health;
pub mod link;
pub mod locations;
pub mod openapi;
pub mod pagination;
pub mod problem;
mod resources;
pub mod schedules;
pub mod smart_charging;
pub mod statistics;
pub mod tariffs;
pub mod users;
pub mod vendors;
pub mod version;
pub mod webhooks;

pub use auth::{
    ClientCredentials, create_client, create_named_client, revoke_client, rotate_client_secret,
};
pub use problem::Problem;

/// The API versions this server speaks, newest first. The first is the default for new clients.
pub const SUPPORTED_VERSIONS: &[&str] = &["2024-10-01"];

/// Settings of the API.
#[derive(Clone, Debug)]
pub struct ApiConfig {
    /// Lifetime of issued access tokens.
    pub token_ttl: Duration,
    /// At most one refresh hint per device per this interval brings a poll forward.
    pub refresh_hint_interval: Duration,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            token_ttl: Duration::from_secs(3600),
            refresh_hint_interval: Duration::from_secs(30),
        }
    }
}

/// Renders the process's metrics in the Prometheus text format.
pub type MetricsRender = Arc<dyn Fn() -> String + Send + Sync>;

/// What every handler shares.
#[derive(Clone)]
pub struct ApiState {
    /// The store.
    pub store: Arc<dyn Store>,
    /// The clock (token expiry).
    pub clock: Arc<dyn Clock>,
    /// Settings.
    pub config: ApiConfig,
    /// The metrics renderer behind `GET /metrics` (404 when absent).
    pub metrics: Option<MetricsRender>,
    /// The action executor behind the action routes (503 when absent).
    pub executor: Option<Arc<oemgate_executor::Executor>>,
    /// The link page behind the linking routes (503 when absent).
    pub linker: Option<Arc<dyn link::Linker>>,
    /// Vendor status, integrations and interventions behind `/health/{type}`,
    /// `/integrations` and `/interventions` (503 when absent).
    pub vendor_health: Option<Arc<dyn vendors::VendorHealth>>,
    /// The webhook sender (its URL policy and the test delivery) behind `/webhooks`
    /// (503 when absent).
    pub webhooks: Option<Arc<oemgate_webhooks::Sender>>,
}

impl ApiState {
    /// The state over `store`, `clock` and `config`, with no metrics, executor, linker, vendor
    /// health or webhook sender: the routes needing one answer as documented on its field
    /// until the matching `with_*` method supplies it.
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, config: ApiConfig) -> Self {
        Self {
            store,
            clock,
            config,
            metrics: None,
            executor: None,
            linker: None,
            vendor_health: None,
            webhooks: None,
        }
    }

    /// Serves `GET /metrics` from `metrics`.
    #[must_use]
    pub fn with_metrics(mut self, metrics: MetricsRender) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Runs the action routes through `executor`.
    #[must_use]
    pub fn with_executor(mut self, executor: Arc<oemgate_executor::Executor>) -> Self {
        self.executor = Some(executor);
        self
    }

    /// Serves the linking routes through `linker`.
    #[must_use]
    pub fn with_linker(mut self, linker: Arc<dyn link::Linker>) -> Self {
        self.linker = Some(linker);
        self
    }

    /// Answers `/health/{type}`, `/integrations` and `/interventions` from `vendor_health`.
    #[must_use]
    pub fn with_vendor_health(mut self, vendor_health: Arc<dyn vendors::VendorHealth>) -> Self {
        self.vendor_health = Some(vendor_health);
        self
    }

    /// Serves `/webhooks` with `webhooks` (its URL policy and the test delivery).
    #[must_use]
    pub fn with_webhooks(mut self, webhooks: Arc<oemgate_webhooks::Sender>) -> Self {
        self.webhooks = Some(webhooks);
        self
    }
}

impl std::fmt::Debug for ApiState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiState")
            .field("backend", &self.store.backend())
            .field("config", &self.config)
            .field("executor", &self.executor.is_some())
            .field("linker", &self.linker.is_some())
            .field("vendor_health", &self.vendor_health.is_some())
            .field("webhooks", &self.webhooks.is_some())
            .finish()
    }
}

/// The API router.
pub fn router(state: ApiState) -> Router {
    router_and_document(state).0
}

/// The API router and its OpenAPI document (also served at `GET /openapi.json`).
pub fn router_and_document(state: ApiState) -> (Router, Arc<serde_json::Value>) {
    let (authenticated, authenticated_doc) = devices::routes()
        .merge(actions::routes())
        .merge(users::routes())
        .merge(locations::routes())
        .merge(link::routes())
        .merge(schedules::routes())
        .merge(tariffs::routes())
        .merge(smart_charging::routes())
        .merge(vendors::routes())
        .merge(statistics::routes())
        .merge(webhooks::routes())
        .into_parts();
    // The document describes itself too, so its route is registered before it is rendered.
    let cell: Arc<std::sync::OnceLock<Arc<serde_json::Value>>> = Arc::default();
    let (public, public_doc) = public_routes(Arc::clone(&cell)).into_parts();
    let document = Arc::new(public_doc.merge(authenticated_doc).render());
    let _ = cell.set(Arc::clone(&document));
    let router =
        public
            .merge(authenticated.route_layer(axum::middleware::from_fn_with_state(
                state.clone(),
                auth::require_bearer,
            )))
            .fallback(problem::not_found_route)
            .layer(axum::extract::DefaultBodyLimit::max(body::MAX_BODY_BYTES))
            .layer(axum::middleware::from_fn(problem::conventions))
            .layer(axum::middleware::from_fn(version::echo_version))
            .with_state(state);
    (router, document)
}

/// The routes callable without a bearer token; `/openapi.json` serves what `document` holds.
fn public_routes(document: Arc<std::sync::OnceLock<Arc<serde_json::Value>>>) -> Routes {
    let token = serde_json::json!({
        "type": "object",
        "required": ["access_token", "expires_in", "token_type", "scope"],
        "properties": {
            "access_token": {"type": "string"},
            "expires_in": {"type": "integer", "description": "Seconds until the token expires."},
            "token_type": {"type": "string", "enum": ["bearer"]},
            "scope": {"type": "string"}
        }
    });
    let oauth_error = serde_json::json!({
        "type": "object",
        "required": ["error", "error_description"],
        "properties": {"error": {"type": "string"}, "error_description": {"type": "string"}}
    });
    Routes::new()
        .post(
            "/oauth2/token",
            Op::new("getToken", "Authentication", "Get an access token")
                .describe(
                    "OAuth2 client credentials: `grant_type=client_credentials`, with the client \
                     id and secret in HTTP Basic auth or in the form. Errors follow RFC 6749 \
                     (`{error, error_description}`), not problem+json.",
                )
                .public()
                .form_body(serde_json::json!({
                    "type": "object",
                    "required": ["grant_type"],
                    "properties": {
                        "grant_type": {"type": "string", "enum": ["client_credentials"]},
                        "client_id": {"type": "string"},
                        "client_secret": {"type": "string"}
                    }
                }))
                .ok_schema(200, "The token.", token)
                .response(
                    400,
                    serde_json::json!({
                        "description": "Not a valid token request (an OAuth2 error), or an \
                            unsupported Enode-Version (a problem).",
                        "content": {
                            "application/json": {"schema": oauth_error.clone()},
                            "application/problem+json": {"schema": openapi::schema_ref("Problem")}
                        }
                    }),
                )
                .ok_schema(401, "The client credentials are wrong.", oauth_error),
            auth::token,
        )
        .get(
            "/health/ready",
            Op::new("ready", "Health", "Check readiness")
                .public()
                .empty(204, "Ready: the store answers.")
                .problems(&[503]),
            health::ready,
        )
        .get(
            "/openapi.json",
            Op::new("openapi", "Health", "This OpenAPI document").public().ok_schema(
                200,
                "The OpenAPI 3.1 document.",
                serde_json::json!({"type": "object"}),
            ),
            move || {
                let document = document.get().cloned().unwrap_or_default();
                async move { axum::Json(document.as_ref().clone()) }
            },
        )
        .get(
            "/metrics",
            Op::new("metrics", "Health", "Prometheus metrics")
                .public()
                .text(200, "The metrics in the Prometheus text format.")
                .problems(&[404]),
            health::metrics,
        )
}
