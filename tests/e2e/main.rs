//! End-to-end tests: the whole gateway (simulators, adapters, poller, store, API) in one
//! process, talking HTTP over loopback. One test binary; one module per area.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod actions;
mod demo;
mod freshness;
mod linking;
mod statistics;
mod support;
mod users;
mod webhooks;
