//! Open-loop latency benchmark of `GET /vehicles/{id}` over loopback with the Redis store.
//!
//! Run it with a Redis at `REDIS_URL` (default `redis://127.0.0.1:6379`):
//!
//! ```text
//! cargo bench -p oemgate-api --bench get_vehicle
//! OEMGATE_BENCH_RPS=2000 OEMGATE_BENCH_SECS=20 cargo bench -p oemgate-api --bench get_vehicle
//! ```
//!
//! What it does:
//! 1. Connects a [`RedisStore`] under a fresh key prefix (`oemgate-bench-<uuid>`, every key
//!    of which is deleted at the end, also after a failure) and serves the real
//!    [`oemgate_api::router`] on `127.0.0.1:0`.
//! 2. Creates an API client and gets a bearer token through `POST /oauth2/token`.
//! 3. Seeds one vehicle for a user of that client the way the poller does: the user, the
//!    device record and a snapshot holding the vehicle's resource, all through the `Store`
//!    trait.
//! 4. Fires `GET /vehicles/{id}` open loop: request `i` is due at `start + i / rate`, whatever
//!    earlier requests are doing, and its latency is measured from that *scheduled* time to
//!    the end of the response body. A stall therefore shows up in the latency of every
//!    request that should have been sent during it (no coordinated omission). Requests go
//!    over reqwest's keep-alive connection pool, which opens connections as concurrency
//!    demands.
//! 5. Discards a warm-up (`OEMGATE_BENCH_WARMUP_SECS`, default 2 s, same rate), then
//!    records `OEMGATE_BENCH_SECS` (default 20 s) at `OEMGATE_BENCH_RPS` (default 2000)
//!    into an HDR histogram and prints p50/p90/p99/p99.9/max, the achieved rate and the
//!    errors (transport failures and non-2xx responses, by status).
//!
//! Server and load generator share the process (and, on a small machine, the cores), so the
//! numbers include the client's own cost; they are an upper bound on the server's latency.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, bail};
use chrono::Utc;
use hdrhistogram::Histogram;
use oemgate_api::{ApiConfig, ApiState, ClientCredentials, create_client, router};
use oemgate_core::{DeviceRef, DeviceState, SystemClock, Vehicle, VendorType};
use oemgate_store::{DeviceRecord, RedisConfig, RedisStore, Snapshot, Store, UserRecord};
use std::time::Instant;

const USER_ID: &str = "bench-user";
const VEHICLE_ID: &str = "bench-vehicle";

fn env_number(name: &str, default: u64) -> anyhow::Result<u64> {
    match std::env::var(name) {
        Ok(value) => value.trim().parse().with_context(|| format!("{name}={value:?}")),
        Err(_) => Ok(default),
    }
}

fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

/// Deletes every key of the prefix (best effort).
async fn cleanup(prefix: &str) {
    if let Ok(store) = RedisStore::connect(RedisConfig::new(redis_url(), prefix)).await {
        let _ = store.purge().await;
    }
}

/// The vehicle resource as an adapter's read would produce it (parsed into the core model,
/// so the stored shape is exactly the poller's).
fn vehicle_resource() -> anyhow::Result<serde_json::Value> {
    let now = Utc::now().to_rfc3339();
    let capable = serde_json::json!({"isCapable": true, "interventionIds": []});
    let vehicle: Vehicle = serde_json::from_value(serde_json::json!({
        "id": VEHICLE_ID,
        "userId": USER_ID,
        "vendor": "TESLA",
        "lastSeen": now,
        "isReachable": true,
        "information": {
            "vin": "5YJ3E1EA7KF000001", "brand": "Tesla", "model": "Model 3", "year": 2022,
            "displayName": "Bench car"
        },
        "chargeState": {
            "batteryLevel": 64, "range": 301.5, "isPluggedIn": true, "isCharging": true,
            "isFullyCharged": false, "batteryCapacity": 75, "chargeLimit": 90,
            "chargeRate": 11.0, "chargeTimeRemaining": 95, "lastUpdated": now,
            "maxCurrent": 16, "powerDeliveryState": "PLUGGED_IN:CHARGING"
        },
        "smartChargingPolicy": {"isEnabled": false, "deadline": null, "minimumChargeLimit": 0},
        "odometer": {"distance": 24811.2, "lastUpdated": now},
        "capabilities": {
            "information": capable, "chargeState": capable, "location": capable,
            "odometer": capable, "setMaxCurrent": capable, "startCharging": capable,
            "stopCharging": capable, "smartCharging": capable
        },
        "scopes": ["vehicle:read:data", "vehicle:read:location", "vehicle:control:charging"],
        "location": {"id": null, "longitude": 10.75, "latitude": 59.91, "lastUpdated": now}
    }))
    .context("the bench vehicle does not fit the core model")?;
    Ok(DeviceState::Vehicle(Box::new(vehicle)).to_json())
}

/// The user, the device record and a first snapshot, written as the poller writes them.
async fn seed(store: &dyn Store, client_id: &str) -> anyhow::Result<()> {
    let now = Utc::now();
    store
        .put_user(UserRecord { id: USER_ID.into(), client_id: client_id.into(), created_at: now })
        .await?;
    store
        .put_device(DeviceRecord {
            device: DeviceRef {
                id: VEHICLE_ID.into(),
                user_id: USER_ID.into(),
                device_type: VendorType::Vehicle,
                vendor_id: "tesla-1".into(),
                site_id: None,
            },
            vendor: "TESLA".into(),
            account_id: "bench-account".into(),
            created_at: now,
        })
        .await?;
    let snapshot = Snapshot {
        device_id: VEHICLE_ID.into(),
        user_id: USER_ID.into(),
        device_type: VendorType::Vehicle,
        version: 1,
        observed_at: now,
        resource: vehicle_resource()?,
    };
    store.put_snapshot(snapshot, 0).await?;
    Ok(())
}

async fn token(
    http: &reqwest::Client,
    base: &str,
    creds: &ClientCredentials,
) -> anyhow::Result<String> {
    let response = http
        .post(format!("{base}/oauth2/token"))
        .basic_auth(&creds.client_id, Some(&creds.client_secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await?;
    let status = response.status();
    let body: serde_json::Value = response.json().await?;
    if !status.is_success() {
        bail!("POST /oauth2/token answered {status}: {body}");
    }
    body["access_token"].as_str().map(str::to_owned).context("no access_token in the answer")
}

/// What the measured phase saw.
struct Tally {
    latencies: Histogram<u64>,
    ok: u64,
    errors: BTreeMap<String, u64>,
    last_done: Option<Instant>,
}

/// Sends `count` requests, request `i` due at `start + i * interval`; records only when
/// `tally` is given. The schedule runs on an OS thread that sleeps with the kernel's
/// high-resolution timer: tokio's timer wheel rounds every wake-up to the next millisecond,
/// which would add up to a millisecond of the generator's own lateness to every sample.
async fn run_phase(
    http: &reqwest::Client,
    url: &str,
    bearer: &str,
    interval: Duration,
    count: u64,
    tally: Option<Arc<Mutex<Tally>>>,
) -> anyhow::Result<Instant> {
    let runtime = tokio::runtime::Handle::current();
    let (http, url, bearer) = (http.clone(), url.to_owned(), bearer.to_owned());
    let (start, in_flight) = tokio::task::spawn_blocking(move || {
        let start = Instant::now();
        let mut in_flight = Vec::with_capacity(usize::try_from(count).unwrap_or(0));
        for i in 0..count {
            let scheduled = start + interval.mul_f64(i as f64);
            let now = Instant::now();
            if scheduled > now {
                std::thread::sleep(scheduled - now);
            }
            let request = http.get(&url).bearer_auth(&bearer);
            let tally = tally.clone();
            in_flight.push(runtime.spawn(async move {
                let outcome = match request.send().await {
                    Ok(response) => {
                        let status = response.status();
                        match response.bytes().await {
                            Ok(_) if status.is_success() => Ok(()),
                            Ok(_) => Err(format!("HTTP {status}")),
                            Err(err) => Err(format!("body: {err}")),
                        }
                    }
                    Err(err) => Err(format!("send: {err}")),
                };
                let done = Instant::now();
                let Some(tally) = tally else { return };
                let mut tally = tally.lock().unwrap_or_else(|e| e.into_inner());
                match outcome {
                    Ok(()) => {
                        let micros = done.saturating_duration_since(scheduled).as_micros();
                        let micros = u64::try_from(micros).unwrap_or(u64::MAX).max(1);
                        tally.latencies.saturating_record(micros);
                        tally.ok += 1;
                    }
                    Err(kind) => *tally.errors.entry(kind).or_default() += 1,
                }
                tally.last_done = Some(tally.last_done.map_or(done, |last| last.max(done)));
            }));
        }
        (start, in_flight)
    })
    .await?;
    for request in in_flight {
        request.await?;
    }
    Ok(start)
}

/// The machine's load averages (Linux), to read the tail latencies against: on a small
/// machine other processes' CPU use shows up in them.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".to_owned())
}

fn ms(micros: u64) -> f64 {
    micros as f64 / 1000.0
}

async fn bench(prefix: &str) -> anyhow::Result<bool> {
    let rate = env_number("OEMGATE_BENCH_RPS", 2000)?;
    let secs = env_number("OEMGATE_BENCH_SECS", 20)?;
    let warmup_secs = env_number("OEMGATE_BENCH_WARMUP_SECS", 2)?;
    if rate == 0 || secs == 0 {
        bail!("OEMGATE_BENCH_RPS and OEMGATE_BENCH_SECS must be positive");
    }
    let url = redis_url();
    let store = RedisStore::connect(RedisConfig::new(&url, prefix))
        .await
        .with_context(|| format!("this benchmark needs Redis at {url} (set REDIS_URL)"))?;
    let store: Arc<dyn Store> = Arc::new(store);
    let credentials = ClientCredentials::generate();
    create_client(store.as_ref(), &credentials, oemgate_api::SUPPORTED_VERSIONS[0], Utc::now())
        .await?;

    let app = router(ApiState::new(store.clone(), Arc::new(SystemClock), ApiConfig::default()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address: SocketAddr = listener.local_addr()?;
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let base = format!("http://{address}");

    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .pool_idle_timeout(Duration::from_secs(60))
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(10))
        .build()?;
    let bearer = token(&http, &base, &credentials).await?;
    seed(store.as_ref(), &credentials.client_id).await?;
    let vehicle_url = format!("{base}/vehicles/{VEHICLE_ID}");
    let check = http.get(&vehicle_url).bearer_auth(&bearer).send().await?;
    let status = check.status();
    let body: serde_json::Value = check.json().await?;
    if !status.is_success() || body["id"] != VEHICLE_ID {
        bail!("GET /vehicles/{VEHICLE_ID} answered {status}: {body}");
    }

    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    println!(
        "GET /vehicles/{{id}}, Redis store, open loop at {rate} req/s: {warmup_secs} s warm-up, \
         {secs} s measured"
    );
    if warmup_secs > 0 {
        run_phase(&http, &vehicle_url, &bearer, interval, rate * warmup_secs, None).await?;
    }
    let tally = Arc::new(Mutex::new(Tally {
        latencies: Histogram::new_with_bounds(1, 60_000_000, 3)?,
        ok: 0,
        errors: BTreeMap::new(),
        last_done: None,
    }));
    let count = rate * secs;
    let load_before = load_average();
    let start =
        run_phase(&http, &vehicle_url, &bearer, interval, count, Some(tally.clone())).await?;
    server.abort();

    let tally = tally.lock().unwrap_or_else(|e| e.into_inner());
    println!("load average: {} before, {} after", load_before, load_average());
    let elapsed = tally.last_done.map_or(Duration::ZERO, |done| done - start).as_secs_f64();
    let h = &tally.latencies;
    let errors: u64 = tally.errors.values().sum();
    println!("requests:     {count} planned, {} ok, {errors} errors", tally.ok);
    for (kind, n) in &tally.errors {
        println!("  error {kind}: {n}");
    }
    println!(
        "achieved:     {:.1} req/s completed ({:.1} s from the first scheduled send to the last \
         response)",
        (tally.ok + errors) as f64 / elapsed.max(f64::EPSILON),
        elapsed
    );
    println!(
        "latency (ms, from the scheduled send): p50 {:.3}  p90 {:.3}  p99 {:.3}  p99.9 {:.3}  \
         max {:.3}  mean {:.3}",
        ms(h.value_at_quantile(0.50)),
        ms(h.value_at_quantile(0.90)),
        ms(h.value_at_quantile(0.99)),
        ms(h.value_at_quantile(0.999)),
        ms(h.max()),
        h.mean() / 1000.0
    );
    let p99_ok = h.value_at_quantile(0.99) < 5_000;
    println!("p99 < 5 ms: {}", if p99_ok { "yes" } else { "NO" });
    Ok(errors == 0)
}

fn main() -> anyhow::Result<()> {
    // `cargo bench` passes `--bench` (and filters); this harness has nothing to filter.
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let prefix = format!("oemgate-bench-{}", uuid::Uuid::new_v4().simple());
    let outcome = runtime.block_on(async {
        let outcome = tokio::spawn({
            let prefix = prefix.clone();
            async move { bench(&prefix).await }
        })
        .await;
        cleanup(&prefix).await;
        outcome
    });
    match outcome {
        Ok(Ok(true)) => Ok(()),
        Ok(Ok(false)) => bail!("some requests failed (see the error counts above)"),
        Ok(Err(err)) => Err(err),
        Err(join) => bail!("the benchmark panicked: {join}"),
    }
}
