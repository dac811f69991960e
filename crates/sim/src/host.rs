//! [`SimHost`]: serves vendor simulators' routers under path prefixes on one listener, and
//! logs every request per prefix in a [`RequestLog`] timestamped with the world's clock.
//!
//! ```no_run
//! # async fn demo(clock: std::sync::Arc<dyn oemgate_core::Clock>, tesla: axum::Router) -> std::io::Result<()> {
//! use oemgate_sim::SimHost;
//! let mut host = SimHost::new(clock);
//! host.mount("/tesla", tesla).map_err(std::io::Error::other)?;
//! let log = host.request_log();
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! tokio::spawn(host.serve(listener));
//! // ... later: log.count("/tesla"), log.requests_in_window("/tesla", from, to)
//! # Ok(()) }
//! ```
//!
//! A request is logged when it *arrives* (before the simulator answers, so a request that
//! hangs still counts), and its status is filled in when the answer leaves. The adapter
//! conformance kit uses this to check that an adapter never exceeds its declared request
//! limits and that it fails before any HTTP call when it should.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::Response;
use chrono::{DateTime, Utc};
use oemgate_core::Clock;
use serde::Serialize;

/// A problem mounting a router.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostError {
    /// The prefix is empty, `/`, lacks a leading `/`, ends with `/` or has a `{`.
    #[error("invalid mount prefix {0:?}: use a path like \"/tesla\"")]
    InvalidPrefix(String),
    /// Two routers at the same prefix.
    #[error("prefix {0} is already mounted")]
    Duplicate(String),
}

/// One logged request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RequestRecord {
    /// Arrival order, across prefixes.
    pub seq: u64,
    /// The mount prefix (`/tesla`).
    pub prefix: String,
    /// Arrival time on the world's clock.
    pub at: DateTime<Utc>,
    /// HTTP method.
    pub method: String,
    /// Path below the prefix (`/api/1/vehicles`).
    pub path: String,
    /// Response status, once answered.
    pub status: Option<u16>,
}

#[derive(Debug, Default)]
struct LogInner {
    next_seq: u64,
    by_prefix: BTreeMap<String, Vec<RequestRecord>>,
}

/// Shared log of the requests a [`SimHost`] received, per prefix.
#[derive(Clone, Debug, Default)]
pub struct RequestLog {
    inner: Arc<Mutex<LogInner>>,
}

impl RequestLog {
    fn lock(&self) -> MutexGuard<'_, LogInner> {
        // Records are pushed or updated in single statements; a poisoned log is consistent.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn arrive(&self, prefix: &str, at: DateTime<Utc>, method: &str, path: &str) -> u64 {
        let mut inner = self.lock();
        inner.next_seq += 1;
        let seq = inner.next_seq;
        inner.by_prefix.entry(prefix.to_owned()).or_default().push(RequestRecord {
            seq,
            prefix: prefix.to_owned(),
            at,
            method: method.to_owned(),
            path: path.to_owned(),
            status: None,
        });
        seq
    }

    fn answered(&self, prefix: &str, seq: u64, status: u16) {
        let mut inner = self.lock();
        if let Some(records) = inner.by_prefix.get_mut(prefix)
            && let Some(r) = records.iter_mut().rev().find(|r| r.seq == seq)
        {
            r.status = Some(status);
        }
    }

    /// Requests received under `prefix`.
    pub fn count(&self, prefix: &str) -> usize {
        self.lock().by_prefix.get(prefix).map_or(0, Vec::len)
    }

    /// Requests received under every prefix.
    pub fn total(&self) -> usize {
        self.lock().by_prefix.values().map(Vec::len).sum()
    }

    /// Requests under `prefix` that arrived in `[from, to)` (world clock).
    pub fn requests_in_window(
        &self,
        prefix: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> usize {
        self.lock()
            .by_prefix
            .get(prefix)
            .map_or(0, |rs| rs.iter().filter(|r| r.at >= from && r.at < to).count())
    }

    /// The most requests under `prefix` in any window of length `window` (sliding over
    /// arrivals): what a rate limit of "N per window" must bound.
    pub fn max_in_any_window(&self, prefix: &str, window: Duration) -> usize {
        let Ok(window) = chrono::Duration::from_std(window) else { return self.count(prefix) };
        let inner = self.lock();
        let Some(records) = inner.by_prefix.get(prefix) else { return 0 };
        let mut times: Vec<DateTime<Utc>> = records.iter().map(|r| r.at).collect();
        times.sort();
        let mut best = 0;
        let mut start = 0;
        for end in 0..times.len() {
            while times[end] - times[start] >= window {
                start += 1;
            }
            best = best.max(end - start + 1);
        }
        best
    }

    /// The records under `prefix`, in arrival order.
    pub fn records(&self, prefix: &str) -> Vec<RequestRecord> {
        self.lock().by_prefix.get(prefix).cloned().unwrap_or_default()
    }

    /// Forgets everything.
    pub fn reset(&self) {
        self.lock().by_prefix.clear();
    }
}

/// Serves vendor routers under path prefixes. See the [module docs](self).
pub struct SimHost {
    clock: Arc<dyn Clock>,
    mounts: Vec<(String, Router)>,
    log: RequestLog,
}

impl std::fmt::Debug for SimHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let prefixes: Vec<&str> = self.mounts.iter().map(|(p, _)| p.as_str()).collect();
        f.debug_struct("SimHost").field("prefixes", &prefixes).finish()
    }
}

impl SimHost {
    /// A host with no routers; request times come from `clock` (use the world's).
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self { clock, mounts: Vec::new(), log: RequestLog::default() }
    }

    /// Mounts `router` under `prefix` (e.g. `/tesla`): a request to `/tesla/api/1/x`
    /// reaches the router as `/api/1/x`.
    pub fn mount(&mut self, prefix: &str, router: Router) -> Result<&mut Self, HostError> {
        let valid = prefix.len() > 1
            && prefix.starts_with('/')
            && !prefix.ends_with('/')
            && !prefix.contains('{');
        if !valid {
            return Err(HostError::InvalidPrefix(prefix.to_owned()));
        }
        if self.mounts.iter().any(|(p, _)| p == prefix) {
            return Err(HostError::Duplicate(prefix.to_owned()));
        }
        self.mounts.push((prefix.to_owned(), router));
        Ok(self)
    }

    /// The request log (shared with the running host).
    pub fn request_log(&self) -> RequestLog {
        self.log.clone()
    }

    /// The prefixes mounted so far.
    pub fn prefixes(&self) -> Vec<String> {
        self.mounts.iter().map(|(p, _)| p.clone()).collect()
    }

    /// The combined router, with request logging per prefix.
    ///
    /// The logging layer wraps the outer router (not each nested one), so requests under
    /// a prefix that no route matches (404s from the fallback) are counted too.
    pub fn router(&self) -> Router {
        let mut app = Router::new();
        for (prefix, router) in &self.mounts {
            app = app.nest(prefix, router.clone());
        }
        let log = self.log.clone();
        let clock = self.clock.clone();
        let prefixes: Arc<Vec<String>> = Arc::new(self.prefixes());
        app.layer(middleware::from_fn(move |req: Request, next: Next| {
            let log = log.clone();
            let clock = clock.clone();
            let prefixes = prefixes.clone();
            async move {
                let path = req.uri().path();
                let mounted = prefixes.iter().find(|p| {
                    path.strip_prefix(p.as_str())
                        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
                });
                let Some(prefix) = mounted.cloned() else {
                    return next.run(req).await;
                };
                let below = &path[prefix.len()..];
                let seq = log.arrive(&prefix, clock.now(), req.method().as_str(), below);
                let response: Response = next.run(req).await;
                log.answered(&prefix, seq, response.status().as_u16());
                response
            }
        }))
    }

    /// Serves until the listener fails.
    pub async fn serve(self, listener: tokio::net::TcpListener) -> std::io::Result<()> {
        axum::serve(listener, self.router()).await
    }

    /// Serves until `signal` completes, then finishes in-flight requests.
    pub async fn serve_with_shutdown<F>(
        self,
        listener: tokio::net::TcpListener,
        signal: F,
    ) -> std::io::Result<()>
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        axum::serve(listener, self.router()).with_graceful_shutdown(signal).await
    }
}
