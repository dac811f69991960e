//! The oemgate gateway: wiring, configuration, telemetry and the CLI's subcommands.
//!
//! The binary (`src/main.rs`) only parses the command line; everything it runs lives here
//! so that end-to-end tests drive the same code. Layout:
//! - [`config`]: figment configuration (defaults, file, environment), validated.
//! - [`telemetry`]: the tracing subscriber.
//! - [`shutdown`]: graceful shutdown handles and OS signals.
//! - [`app`]: building the store, the adapters, the poller and the API server from a config.
//! - [`linking`]: a user's linking step (code, login, API key) -> vendor credentials ->
//!   a stored account with registered devices.
//! - [`link_page`]: the HTML flow behind `linkUrl` that drives the vendor's auth flow.
//! - [`sim`]: the simulated world and every vendor simulator under one HTTP listener.
//! - [`demo`]: the whole system in one process on a synthetic fleet.
//! - [`vendor_health`]: the API's vendor status, integrations and interventions over the
//!   poller and the adapters.
//! - [`intervention_texts`]: the interventions' titles and descriptions in other languages
//!   than en-US, one table per intervention.
//! - [`clients`]: `oemgate clients ...`, API client administration in the shared store.

pub mod app;
pub mod clients;
pub mod config;
pub mod demo;
pub mod intervention_texts;
pub mod link_page;
pub mod linking;
pub mod shutdown;
pub mod sim;
pub mod telemetry;
pub mod vendor_health;
