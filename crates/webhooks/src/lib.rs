//! oemgate-webhooks: change events pushed to API clients, signed, batched, at least once.
//!
//! A client registers webhooks through the API (`crates/api/src/webhooks.rs`); every event
//! the gateway appends to the store's event log (device discovered / updated / deleted with
//! `updatedFields`, `user:vendor-action:updated`, `user:credentials:invalidated` ...) is
//! delivered to each active webhook of the owning client whose `events` filter matches.
//!
//! Layout:
//! - [`model`]: the [`Webhook`] as stored (a store resource of kind [`model::KIND`]), the
//!   subscription event names and the field rules (secret, events, authentication header).
//! - [`url_rules`]: which URLs a webhook may call (below).
//! - [`signing`]: `x-enode-signature: sha1=<hex HMAC-SHA1 of the raw body, keyed with the
//!   secret>`.
//! - [`render`]: events as receivers see them, per API version, each with a stable `id`.
//! - [`sender`]: one signed POST with a 5 s deadline; also the test delivery.
//! - [`outbox`]: a webhook's delivery state in the store (creation, reactivation).
//! - [`dispatcher`]: the at-least-once delivery loop.
//!
//! # Delivery
//!
//! The outbox is the event log itself plus, per webhook, a durable cursor (the last
//! acknowledged event id) and failure bookkeeping in the store
//! ([`oemgate_store::WebhookStore`]). Each POST carries a JSON array of up to 100 events in
//! log order, `content-type: application/json`, `x-enode-delivery` (a fresh uuid per POST),
//! `x-enode-signature` and the webhook's optional authentication header. Only a 2xx within
//! 5 s acknowledges a batch and moves the cursor past it (compare-and-set: it never moves
//! backwards, and a lease keeps two instances from delivering one webhook at once). A failure
//! keeps the cursor and retries after 30 s, doubling up to 1 h, each delay shortened by a
//! random up to 25 %; a success resets that. When a webhook has been failing for longer than
//! the retry window (24 h by default), its pending events are dropped (counted in
//! `oemgate_webhook_events_dropped_total` and logged at warn) and it becomes inactive until
//! a successful test or a PATCH reactivates it. A crash after the receiver acknowledged but
//! before the cursor moved resends the batch: receivers de-duplicate on each event's `id`.
//!
//! # URL rules
//!
//! A webhook URL is 8 to 200 characters and absolute, with scheme `https`, no user
//! information (`user:pass@`) and no fragment. Hosts that are IP literals (in any spelling
//! the URL parser normalizes, IPv4-mapped IPv6 included) are refused when they are private
//! (10/8, 172.16/12, 192.168/16, fc00::/7), shared (100.64/10), link-local (169.254/16,
//! fe80::/10), the cloud metadata address (169.254.169.254, fd00:ec2::254), multicast,
//! unspecified (0.0.0.0/8, ::), reserved (240/4, broadcast) or loopback (127/8, ::1;
//! `localhost` and `*.localhost` by name). With `allow_insecure_loopback` (the demo and the
//! tests set it; the default is off) loopback is accepted, and then with `http` as well;
//! `http` to anything else never is. An operator can narrow this further with
//! `allowed_hosts` (exact host names or IP literals, or `*.example.com` for subdomains): when
//! it is not empty, no other host is called. Redirects are not followed. The rules are checked when a
//! webhook is created or changed and again before every delivery. Host names are not
//! resolved at validation: a public name that resolves to an internal address is not caught
//! here and belongs to egress filtering.

pub mod dispatcher;
pub mod model;
pub mod outbox;
pub mod render;
pub mod sender;
pub mod signing;
pub mod url_rules;

pub use dispatcher::{Dispatcher, DispatcherConfig, DispatcherStats, TurnReport, backoff_delay};
pub use model::{Authentication, Webhook};
pub use sender::{ReceiverResponse, SendError, Sender, Sent};
pub use signing::{sign, verify};
pub use url_rules::{UrlError, UrlPolicy, check_url};

/// The API version events are rendered in when neither the webhook nor its client names one.
pub const DEFAULT_VERSION: &str = "2024-10-01";
