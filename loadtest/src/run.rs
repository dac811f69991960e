//! One run: a fleet on a manual clock, the real gateway pipeline ticked by hand, one
//! heuristic. What it measures is turned into numbers by [`crate::analysis`].

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::{DateTime, Utc};
use oemgate::config::Config;
use oemgate::demo::{Demo, DemoOptions, DemoParts};
use oemgate_core::{Clock, ManualClock, VendorType};
use oemgate_sim::{DeviceKind, Fault};
use oemgate_store::{DeviceFilter, DeviceRecord, PageRequest, Store};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::journal::{Journal, quantile};
use crate::policy::Heuristic;
use crate::prices::Prices;
use crate::report::{ActionsReport, Stats};

/// The fleet generator's households hold about this many devices each (vehicles, chargers,
/// batteries, PV inverters, meters and thermostats; measured on the demo's fleet mix).
pub const DEVICES_PER_HOUSEHOLD: f64 = 3.9;

/// A vendor fault over a window of the run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FaultWindow {
    /// Vendor as the simulators are mounted ("enphase").
    pub vendor: String,
    /// Start, from the run's start.
    pub start: Duration,
    /// Length.
    pub duration: Duration,
}

impl FaultWindow {
    /// Parses `VENDOR:START:DURATION` ("enphase:2h:30m").
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut parts = s.splitn(3, ':');
        let (Some(vendor), Some(start), Some(duration)) =
            (parts.next(), parts.next(), parts.next())
        else {
            return Err(format!("{s:?}: expected VENDOR:START:DURATION, e.g. enphase:2h:30m"));
        };
        let vendor = vendor.to_lowercase();
        if !oemgate::sim::VENDORS.contains(&vendor.as_str()) {
            return Err(format!("{s:?}: unknown vendor {vendor:?}"));
        }
        let start = humantime::parse_duration(start).map_err(|e| format!("{s:?}: start: {e}"))?;
        let duration =
            humantime::parse_duration(duration).map_err(|e| format!("{s:?}: duration: {e}"))?;
        Ok(Self { vendor, start, duration })
    }

    /// As written on the command line.
    pub fn describe(&self, kind: &str) -> String {
        format!(
            "{kind} {}:{}:{}",
            self.vendor,
            humantime::format_duration(self.start),
            humantime::format_duration(self.duration)
        )
    }
}

/// What a run does.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Households (the fleet generator's unit; about [`DEVICES_PER_HOUSEHOLD`] devices each).
    pub households: usize,
    /// World and fleet seed.
    pub seed: u64,
    /// Simulated hours.
    pub hours: f64,
    /// Simulated time per tick.
    pub tick: Duration,
    /// Link only these vendors (API spelling, "TESLA"); all when None.
    pub vendors: Option<Vec<String>>,
    /// Vendor outages.
    pub outages: Vec<FaultWindow>,
    /// 429 storms.
    pub storms: Vec<FaultWindow>,
    /// Charge START/STOP actions per simulated hour.
    pub actions_per_hour: f64,
    /// Redis URL (memory store when None).
    pub redis: Option<String>,
    /// Per-request prices.
    pub prices: Prices,
    /// When the simulated day starts.
    pub start: DateTime<Utc>,
    /// Show a progress bar.
    pub progress: bool,
    /// After each heuristic, write its report here as `partial-<heuristic>.json` (so a long
    /// run that is stopped keeps what it finished).
    pub checkpoint_dir: Option<std::path::PathBuf>,
    /// The gateway configuration the pipeline runs with (`--config`, like `oemgate serve
    /// --config`): the scheduler's context delays, jitter, batch size, breaker, the
    /// executor's settings. Its delays are also the bounds freshness is held to.
    pub config: Config,
}

/// What one heuristic's run recorded, before analysis.
pub struct RunData {
    /// The heuristic.
    pub heuristic: Heuristic,
    /// The demo (stopped by [`crate::analyse`] after reading it).
    pub demo: Demo,
    /// The run's Redis store, purged by [`crate::analyse`] when the demo has stopped.
    pub redis: RunRedis,
    /// The poll journal.
    pub journal: Arc<Journal>,
    /// Run start and end on the simulated clock.
    pub start: DateTime<Utc>,
    /// End of the run.
    pub end: DateTime<Utc>,
    /// Every gateway device.
    pub devices: Vec<DeviceRecord>,
    /// Vendor requests per vendor (API spelling) and endpoint class, with statuses.
    pub requests: BTreeMap<String, VendorTally>,
    /// Highest daily-quota use seen per vendor with a quota.
    pub quota_used_max: BTreeMap<String, f64>,
    /// Devices the poller held below their context's bound (a quota or gateway-wide rate
    /// stretched their interval) at any minute of the run.
    pub quota_limited: std::collections::HashSet<String>,
    /// Wall seconds of setup (simulators, linking, discovery).
    pub setup_wall: f64,
    /// Wall seconds of the simulated run.
    pub run_wall: f64,
    /// CPU seconds of the simulated run.
    pub cpu: f64,
    /// Peak resident memory of the process during the run, MiB.
    pub peak_rss_mib: f64,
    /// Whether the peak was reset at the run's start (else it is the process's peak).
    pub peak_is_per_run: bool,
    /// Wall milliseconds each tick took (poller until drained, executor).
    pub tick_wall_ms: Vec<f64>,
    /// The command load.
    pub actions: Option<ActionsReport>,
}

/// Requests one vendor received.
#[derive(Clone, Debug, Default)]
pub struct VendorTally {
    /// Per endpoint class.
    pub by_class: BTreeMap<String, u64>,
    /// HTTP 429 answers.
    pub rate_limited: u64,
    /// 5xx answers.
    pub server_errors: u64,
    /// Money at the price table, USD.
    pub usd: f64,
}

/// The endpoint class of a simulator request: `auth` (token, sign-in), `wake`, `command`
/// (a write: a vendor command or setting) or `read`. FusionSolar reads by POST, so for it
/// only paths that name a command count as writes.
pub fn endpoint_class(vendor: &str, method: &str, path: &str) -> &'static str {
    let p = path.to_ascii_lowercase();
    if ["token", "oauth", "login", "auth", "signin", "sign-in", "device_authorize"]
        .iter()
        .any(|k| p.contains(k))
    {
        "auth"
    } else if p.contains("wake") {
        "wake"
    } else if p.contains("command") || (method != "GET" && !vendor.eq_ignore_ascii_case("huawei")) {
        "command"
    } else {
        "read"
    }
}

fn drain_requests(demo: &Demo, prices: &Prices, into: &mut BTreeMap<String, VendorTally>) {
    for vendor in oemgate::sim::VENDORS {
        let records = demo.sim_requests.records(&format!("/{vendor}"));
        if records.is_empty() {
            continue;
        }
        let api = vendor.to_uppercase();
        let tally = into.entry(api.clone()).or_default();
        for r in records {
            let class = endpoint_class(vendor, &r.method, &r.path);
            *tally.by_class.entry(class.to_string()).or_default() += 1;
            match r.status {
                Some(429) => tally.rate_limited += 1,
                Some(s) if s >= 500 => tally.server_errors += 1,
                _ => {}
            }
            // Vendors bill answered requests below 500 (the price table says which).
            if r.status.is_some_and(|s| s < 500) {
                tally.usd += prices.price(&api, class);
            }
        }
    }
    demo.sim_requests.reset();
}

/// Every device in the store.
pub async fn all_devices(store: &dyn Store) -> anyhow::Result<Vec<DeviceRecord>> {
    let mut out = Vec::new();
    let mut page = PageRequest { page_size: 1000, ..Default::default() };
    loop {
        let got = store.list_devices(&DeviceFilter::default(), &page).await?;
        let done = got.after.is_none() || got.items.is_empty();
        out.extend(got.items);
        if done {
            return Ok(out);
        }
        page.after = got.after;
    }
}

/// The Redis store of a run, if it uses one: its keys are deleted when the run is done.
pub type RunRedis = Option<Arc<oemgate_store::RedisStore>>;

/// Deletes a finished run's keys from Redis (a load test leaves nothing behind).
pub async fn purge(redis: RunRedis) -> anyhow::Result<()> {
    if let Some(store) = redis {
        store.purge().await.context("deleting the run's keys from Redis")?;
    }
    Ok(())
}

/// Starts a demo for `heuristic` on a manual clock at `options.start`, with `observer`.
pub async fn start_demo(
    options: &RunOptions,
    heuristic: Heuristic,
    observer: Arc<Journal>,
) -> anyhow::Result<(Demo, Arc<ManualClock>, RunRedis)> {
    let config = options.config.clone();
    let planner = config.scheduler.poller().planner;
    let clock = Arc::new(ManualClock::new(options.start));
    let redis: RunRedis = match &options.redis {
        Some(url) => {
            // A fresh key prefix per run, so runs never see each other's data.
            let prefix = format!(
                "oemgate-loadtest-{}-{}-{}",
                heuristic.name(),
                std::process::id(),
                Utc::now().timestamp_millis()
            );
            let store = oemgate_store::RedisStore::connect(oemgate_store::RedisConfig::new(
                url.clone(),
                prefix,
            ))
            .await
            .with_context(|| format!("connecting to Redis at {url}"))?;
            Some(Arc::new(store))
        }
        None => None,
    };
    let store = redis.clone().map(|s| s as Arc<dyn Store>);
    let demo_options = DemoOptions {
        listen: "127.0.0.1:0".parse()?,
        sim_listen: "127.0.0.1:0".parse()?,
        fleet: options.households,
        speed: 1.0,
        seed: options.seed,
        client_id: Some("loadtest".into()),
        client_secret: Some("loadtest-secret".into()),
        headless: true,
    };
    let parts = DemoParts {
        clock: Some(clock.clone()),
        store,
        manual_polling: true,
        observer: Some(observer),
        unlinked: false,
        policy: Some(heuristic.policy(planner)),
        vendors: options.vendors.clone(),
        pace_linking: Some(clock.clone()),
    };
    let demo = Demo::start_with(config, demo_options, parts).await?;
    Ok((demo, clock, redis))
}

/// Runs one heuristic over the simulated hours.
pub async fn run(
    options: &RunOptions,
    heuristic: Heuristic,
    bar: &indicatif::ProgressBar,
) -> anyhow::Result<RunData> {
    let setup_started = Instant::now();
    let journal = Arc::new(Journal::default());
    let (demo, clock, redis) = start_demo(options, heuristic, Arc::clone(&journal)).await?;
    let setup_wall = setup_started.elapsed().as_secs_f64();
    let batch_size = options.config.scheduler.poller().batch_size.max(1);

    let start = clock.now();
    journal.lag_from(start);
    for w in &options.outages {
        demo.sim.world.faults().schedule_outage(&w.vendor, start + chrono_of(w.start), w.duration);
    }
    for w in &options.storms {
        let fault = Fault::RateLimit { retry_after: Duration::from_secs(60) };
        demo.sim.world.faults().schedule(
            &w.vendor,
            fault,
            start + chrono_of(w.start),
            Some(w.duration),
        );
    }
    // Linking and discovery are setup, not polling.
    demo.sim_requests.reset();
    let devices = all_devices(demo.store.as_ref()).await?;
    let mut actions = ActionLoad::new(options, &devices);

    let tick = options.tick.max(Duration::from_millis(100));
    let steps = ((options.hours * 3600.0) / tick.as_secs_f64()).round().max(1.0) as u64;
    let steps_per_hour = ((3600.0 / tick.as_secs_f64()).round() as u64).max(1);
    bar.set_length(steps);
    bar.set_position(0);
    bar.set_message(format!("{} ({} devices)", heuristic.name(), devices.len()));

    let peak_is_per_run = crate::procstat::reset_peak_rss();
    let cpu_before = crate::procstat::cpu_seconds().unwrap_or(0.0);
    let run_started = Instant::now();
    let mut requests = BTreeMap::new();
    let mut quota_used_max = BTreeMap::new();
    let mut quota_limited = std::collections::HashSet::new();
    let steps_per_minute = ((60.0 / tick.as_secs_f64()).round() as u64).max(1);
    let mut tick_wall_ms = Vec::with_capacity(steps as usize);
    let http = reqwest::Client::new();
    for step in 1..=steps {
        clock.advance(tick);
        let t = Instant::now();
        loop {
            let report = demo.poller.tick().await.context("poller tick")?;
            if report.polled < batch_size {
                break;
            }
        }
        demo.executor.tick().await.context("executor tick")?;
        tick_wall_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        actions.step(&demo, &http, clock.now(), tick).await?;
        if step % steps_per_minute == 0 || step == steps {
            sample_quota_limited(&demo, &devices, &mut quota_limited);
        }
        if step % steps_per_hour == 0 || step == steps {
            drain_requests(&demo, &options.prices, &mut requests);
            sample_quota(&demo, &mut quota_used_max);
            if bar.is_hidden() {
                eprintln!(
                    "{}: simulated hour {:.0} of {}, {:.0} s wall",
                    heuristic.name(),
                    step as f64 / steps_per_hour as f64,
                    options.hours,
                    run_started.elapsed().as_secs_f64()
                );
            }
        }
        bar.set_position(step);
    }
    let run_wall = run_started.elapsed().as_secs_f64();
    let cpu = crate::procstat::cpu_seconds().unwrap_or(0.0) - cpu_before;
    let peak_rss_mib = crate::procstat::peak_rss_mib().unwrap_or(0.0);
    let end = clock.now();
    demo.sim.world.advance_to(end);
    let actions = actions.finish(&demo).await?;
    Ok(RunData {
        heuristic,
        demo,
        redis,
        journal,
        start,
        end,
        devices,
        requests,
        quota_used_max,
        quota_limited,
        setup_wall,
        run_wall,
        cpu,
        peak_rss_mib,
        peak_is_per_run,
        tick_wall_ms,
        actions,
    })
}

/// Adds the devices whose interval a quota or a gateway-wide rate stretches now. Sampled
/// every simulated minute: a device limited for part of the day is limited, even if the plan
/// can pay for its bound again by the end of the run.
fn sample_quota_limited(
    demo: &Demo,
    devices: &[DeviceRecord],
    into: &mut std::collections::HashSet<String>,
) {
    for d in devices {
        if !into.contains(&d.device.id) && demo.poller.quota_limited_interval(d).is_some() {
            into.insert(d.device.id.clone());
        }
    }
}

fn sample_quota(demo: &Demo, into: &mut BTreeMap<String, f64>) {
    for vendor in oemgate::sim::VENDORS {
        let api = vendor.to_uppercase();
        if let Some(gate) = demo.poller.vendor_gate(&api)
            && gate.limits().daily_quota.is_some()
        {
            let used = gate.quota_used_ratio();
            let entry = into.entry(api).or_insert(0.0);
            *entry = entry.max(used);
        }
    }
}

/// Converts a std duration for clock arithmetic.
pub fn chrono_of(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

/// Charge START/STOP actions created through the API at a steady rate on random vehicles and
/// chargers.
struct ActionLoad {
    per_hour: f64,
    owed: f64,
    targets: Vec<(VendorType, String)>,
    rng: SmallRng,
    token: Option<(String, DateTime<Utc>)>,
    created: Vec<(VendorType, String)>,
    rejected: BTreeMap<String, u64>,
}

impl ActionLoad {
    fn new(options: &RunOptions, devices: &[DeviceRecord]) -> Self {
        let targets = devices
            .iter()
            .filter(|d| matches!(d.device.device_type, VendorType::Vehicle | VendorType::Charger))
            .map(|d| (d.device.device_type, d.device.id.clone()))
            .collect();
        Self {
            per_hour: options.actions_per_hour.max(0.0),
            owed: 0.0,
            targets,
            rng: SmallRng::seed_from_u64(options.seed ^ 0x0ac7_10e5),
            token: None,
            created: Vec::new(),
            rejected: BTreeMap::new(),
        }
    }

    async fn token(
        &mut self,
        demo: &Demo,
        http: &reqwest::Client,
        now: DateTime<Utc>,
    ) -> anyhow::Result<String> {
        if let Some((token, at)) = &self.token
            && now - *at < chrono::Duration::minutes(30)
        {
            return Ok(token.clone());
        }
        let response = http
            .post(format!("{}/oauth2/token", demo.api_url))
            .basic_auth(&demo.client.client_id, Some(&demo.client.client_secret))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await?;
        anyhow::ensure!(response.status().is_success(), "token request: {}", response.status());
        let body: serde_json::Value = response.json().await?;
        let token = body["access_token"]
            .as_str()
            .context("token response without access_token")?
            .to_string();
        self.token = Some((token.clone(), now));
        Ok(token)
    }

    async fn step(
        &mut self,
        demo: &Demo,
        http: &reqwest::Client,
        now: DateTime<Utc>,
        tick: Duration,
    ) -> anyhow::Result<()> {
        if self.per_hour <= 0.0 || self.targets.is_empty() {
            return Ok(());
        }
        self.owed += self.per_hour * tick.as_secs_f64() / 3600.0;
        while self.owed >= 1.0 {
            self.owed -= 1.0;
            let (device_type, id) =
                self.targets[self.rng.random_range(0..self.targets.len())].clone();
            let action = if self.rng.random_bool(0.5) { "START" } else { "STOP" };
            let plural = if device_type == VendorType::Vehicle { "vehicles" } else { "chargers" };
            let token = self.token(demo, http, now).await?;
            let response = http
                .post(format!("{}/{plural}/{id}/charging", demo.api_url))
                .bearer_auth(token)
                .json(&serde_json::json!({ "action": action }))
                .send()
                .await?;
            let status = response.status().as_u16();
            let body: serde_json::Value = response.json().await.unwrap_or_default();
            match body["id"].as_str() {
                Some(action_id) if status == 200 => {
                    self.created.push((device_type, action_id.to_string()));
                }
                _ => {
                    let reason = body["title"].as_str().unwrap_or("").to_string();
                    *self
                        .rejected
                        .entry(format!("{status} {reason}").trim().to_string())
                        .or_default() += 1;
                }
            }
        }
        Ok(())
    }

    async fn finish(self, demo: &Demo) -> anyhow::Result<Option<ActionsReport>> {
        if self.per_hour <= 0.0 {
            return Ok(None);
        }
        let mut outcomes: BTreeMap<String, u64> = BTreeMap::new();
        let mut latencies = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for (device_type, id) in &self.created {
            // An identical pending action is returned again rather than created twice.
            if !seen.insert(id.clone()) {
                continue;
            }
            let Some(action) = demo.executor.get(*device_type, id).await? else { continue };
            let state = action.state();
            *outcomes.entry(state.as_str().to_string()).or_default() += 1;
            if state == oemgate_core::ActionState::Confirmed
                && let Some(done) = action.completed_at()
            {
                latencies.push((done - action.created_at()).num_milliseconds() as f64 / 1000.0);
            }
        }
        latencies.sort_by(f64::total_cmp);
        Ok(Some(ActionsReport {
            requested: self.created.len() as u64 + self.rejected.values().sum::<u64>(),
            created: seen.len() as u64,
            rejected: self.rejected,
            outcomes,
            confirmation_latency_s: Stats::of_sorted(&latencies),
        }))
    }
}

/// Vehicles in the world, for the wake counts.
pub fn world_vehicles(demo: &Demo) -> Vec<oemgate_sim::DeviceId> {
    demo.sim.world.devices_of_kind(DeviceKind::Vehicle).into_iter().map(|d| d.id).collect()
}

/// Quantile helper re-exported for the report.
pub fn q(sorted: &[f64], p: f64) -> f64 {
    quantile(sorted, p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_windows_parse() {
        let w = FaultWindow::parse("Enphase:2h:30m").unwrap();
        assert_eq!(w.vendor, "enphase");
        assert_eq!(w.start, Duration::from_secs(7200));
        assert_eq!(w.duration, Duration::from_secs(1800));
        assert!(FaultWindow::parse("nobody:1h:1m").is_err());
        assert!(FaultWindow::parse("tesla:1h").is_err());
        assert!(FaultWindow::parse("tesla:soon:1m").is_err());
    }

    #[test]
    fn endpoint_classes() {
        assert_eq!(endpoint_class("tesla", "POST", "/oauth2/v3/token"), "auth");
        assert_eq!(endpoint_class("tesla", "POST", "/api/1/vehicles/1/wake_up"), "wake");
        assert_eq!(
            endpoint_class("tesla", "POST", "/api/1/vehicles/1/command/charge_start"),
            "command"
        );
        assert_eq!(endpoint_class("tesla", "GET", "/api/1/vehicles/1/vehicle_data"), "read");
        assert_eq!(endpoint_class("huawei", "POST", "/thirdData/getStationRealKpi"), "read");
        assert_eq!(endpoint_class("easee", "POST", "/api/chargers/x/commands/start"), "command");
    }
}
