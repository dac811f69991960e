//! The CI smoke run: a few hundred devices for two simulated hours, adaptive against
//! fixed-2-min, and the report's invariants: no bound violations outside quota-limited
//! devices, no vendor limit exceeded (no rate-limit answer), adaptive cheaper than fixed.

use std::time::Duration;

use oemgate_loadtest::policy::Heuristic;
use oemgate_loadtest::prices::Prices;
use oemgate_loadtest::report::Report;
use oemgate_loadtest::run::RunOptions;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_fleet_keeps_every_bound_and_adaptive_is_cheaper_than_fixed() {
    let options = RunOptions {
        households: 64,
        seed: 7,
        hours: 2.0,
        tick: Duration::from_secs(10),
        vendors: None,
        outages: Vec::new(),
        storms: Vec::new(),
        actions_per_hour: 20.0,
        redis: None,
        prices: Prices::builtin(),
        start: "2026-06-01T06:00:00Z".parse().unwrap(),
        progress: false,
        checkpoint_dir: None,
        config: oemgate::config::Config::defaults().unwrap(),
    };
    let heuristics = [Heuristic::Adaptive, Heuristic::Fixed2Min];
    let bar = indicatif::ProgressBar::hidden();
    let report = oemgate_loadtest::compare(&options, &heuristics, "smoke".into(), &bar)
        .await
        .expect("the load test runs");

    assert!(report.fleet.devices >= 200, "a few hundred devices: {}", report.fleet.devices);
    assert_eq!(report.fleet.by_vendor.len(), 11, "every vendor: {:?}", report.fleet.by_vendor);
    let adaptive = &report.heuristics[0];
    let fixed = &report.heuristics[1];
    assert_eq!(adaptive.heuristic, "adaptive");
    assert_eq!(fixed.heuristic, "fixed-2min");

    // Ground truth was checked, and every change outside quota-limited devices was seen
    // within its context's bound.
    assert!(adaptive.freshness.changes_checked > 100, "{:?}", adaptive.freshness);
    assert_eq!(
        adaptive.freshness.violations, 0,
        "late: {:#?}",
        adaptive.freshness.violation_examples
    );
    assert!(adaptive.freshness.per_context.contains_key("default"));
    // Every quota-limited device is counted, not only those that had changes.
    let limited: u64 = adaptive.freshness.quota_limited_by_vendor.values().sum();
    assert!(limited >= adaptive.freshness.quota_limited_devices, "{:?}", adaptive.freshness);

    // No declared vendor limit exceeded: the simulators answer 429 past their limits.
    for h in &report.heuristics {
        assert_eq!(h.rate_limited_responses, 0, "{}: {:?}", h.heuristic, h.requests.by_vendor);
        assert!(h.polls.stored > 0);
        assert!(h.scheduling.lag_seconds.count > 0);
    }
    // Served data is never older than the longest bound (sleeping, 20 min, plus a tick)
    // on devices whose quota pays for their bounds.
    assert!(!adaptive.data_age_bound_keeping.is_empty());
    for hour in &adaptive.data_age_bound_keeping {
        assert!(hour.max_s <= 1200.0 + 60.0, "{hour:?}");
    }
    // Polling never woke a car (actions may: START on a sleeping car wakes it).
    assert!(adaptive.car_wakeups.requested <= adaptive.actions.as_ref().map_or(0, |a| a.requested));

    // Adaptive reads fewer times than every-2-minutes, and the minimum is below both.
    assert!(
        adaptive.requests.total < fixed.requests.total,
        "adaptive {} vs fixed {}",
        adaptive.requests.total,
        fixed.requests.total
    );
    let minimum = &report.theoretical_minimum;
    assert!(minimum.reads_per_device_hour > 0.0);
    assert!(minimum.ratio["fixed-2min"] > minimum.ratio["adaptive"]);

    // Actions went through the API and were decided.
    let actions = adaptive.actions.as_ref().expect("an action load was configured");
    assert!(actions.requested >= 30, "{actions:?}");

    // The output files, and report.json reads back into the schema.
    let dir = tempfile::tempdir().unwrap();
    oemgate_loadtest::write_report(dir.path(), &report).unwrap();
    let json = std::fs::read_to_string(dir.path().join("report.json")).unwrap();
    let back: Report = serde_json::from_str(&json).unwrap();
    assert_eq!(back.schema_version, oemgate_loadtest::report::SCHEMA_VERSION);
    assert_eq!(back.heuristics.len(), 2);
    for name in ["report.md", "latency-cdf.svg", "requests.svg", "data-age.svg"] {
        let text = std::fs::read_to_string(dir.path().join(name)).unwrap();
        assert!(!text.is_empty(), "{name}");
    }
}

/// `--redis`: the same pipeline on the Redis store, which it leaves as it found it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_on_redis_reads_the_fleet_and_leaves_no_keys_behind() {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let options = RunOptions {
        households: 8,
        seed: 11,
        hours: 0.5,
        tick: Duration::from_secs(5),
        vendors: None,
        outages: Vec::new(),
        storms: Vec::new(),
        actions_per_hour: 0.0,
        redis: Some(url.clone()),
        prices: Prices::builtin(),
        start: "2026-06-01T06:00:00Z".parse().unwrap(),
        progress: false,
        checkpoint_dir: None,
        config: oemgate::config::Config::defaults().unwrap(),
    };
    let bar = indicatif::ProgressBar::hidden();
    let report =
        oemgate_loadtest::compare(&options, &[Heuristic::Adaptive], "redis smoke".into(), &bar)
            .await
            .expect("the load test runs on Redis");
    assert_eq!(report.simulation.store, "redis");
    let adaptive = &report.heuristics[0];
    assert!(report.fleet.devices >= 20, "{:?}", report.fleet);
    assert!(adaptive.polls.stored >= report.fleet.devices as u64, "{:?}", adaptive.polls);
    assert_eq!(adaptive.rate_limited_responses, 0);

    let client = redis::Client::open(url).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let left: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{{oemgate-loadtest-adaptive-{}-*", std::process::id()))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(left.is_empty(), "{} keys left behind, e.g. {:?}", left.len(), left.first());
}

/// `--config`: the gateway's own configuration file drives the pipeline, so a change of
/// policy can be measured before it reaches production. Longer default and sleeping delays
/// cost fewer requests, and the report holds freshness to the configured bounds.
#[test]
fn a_config_file_changes_the_policy_the_run_measures() {
    let dir = tempfile::tempdir().unwrap();
    let run = |name: &str, config: Option<&str>| {
        let out = dir.path().join(name);
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_oemgate-loadtest"));
        cmd.args(["--households", "12", "--hours", "1", "--tick", "10s", "--quiet"])
            .args(["--heuristics", "adaptive", "--start", "2026-06-01T10:00:00Z", "--out"])
            .arg(&out);
        if let Some(text) = config {
            let path = dir.path().join(format!("{name}.toml"));
            std::fs::write(&path, text).unwrap();
            cmd.arg("--config").arg(path);
        }
        let output = cmd.output().unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        let json = std::fs::read_to_string(out.join("report.json")).unwrap();
        serde_json::from_str::<Report>(&json).unwrap()
    };
    let base = run("defaults", None);
    let relaxed =
        run("relaxed", Some("[scheduler.delays]\ndefault = \"15m\"\nsleeping = \"40m\"\n"));
    assert_eq!(base.simulation.bounds_seconds["default"], 420.0);
    assert_eq!(relaxed.simulation.bounds_seconds["default"], 900.0);
    assert_eq!(relaxed.simulation.bounds_seconds["sleeping"], 2400.0);
    let (b, r) = (&base.heuristics[0].requests, &relaxed.heuristics[0].requests);
    assert!(r.total < b.total, "15 min default: {} requests, 7 min: {}", r.total, b.total);

    // A bad file is refused with the key named, before anything runs.
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[scheduler]\njitter = 3.0\n").unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_oemgate-loadtest"))
        .args(["--households", "2", "--hours", "1", "--quiet", "--config"])
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("scheduler.jitter"), "{stderr}");
}
