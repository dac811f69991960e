//! oemgate-loadtest: runs the gateway pipeline against a simulated fleet once per polling
//! heuristic and reports freshness against ground truth, vendor requests, money, wake-ups,
//! scheduling lag, CPU and memory; `capacity` finds the largest fleet this machine sustains.
//! See loadtest/README.md.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use oemgate_loadtest::capacity::{self, CapacityOptions};
use oemgate_loadtest::policy::Heuristic;
use oemgate_loadtest::prices::Prices;
use oemgate_loadtest::run::{DEVICES_PER_HOUSEHOLD, FaultWindow, RunOptions};

#[derive(Parser, Debug)]
#[command(
    name = "oemgate-loadtest",
    version,
    about = "Polling heuristics measured at scale against ground truth"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Compare the heuristics on one fleet (the default).
    Run(RunArgs),
    /// Find the largest fleet the pipeline sustains with scheduling lag p99 under a second.
    Capacity(CapacityArgs),
}

#[derive(Args, Debug, Clone)]
struct Common {
    /// About this many devices (households of about 3.9 devices are generated to reach it).
    #[arg(long, default_value_t = 1000)]
    devices: usize,
    /// Exactly this many households instead of --devices.
    #[arg(long)]
    households: Option<usize>,
    /// World and fleet seed.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Link only these vendors (comma-separated: tesla,enphase,...).
    #[arg(long, value_delimiter = ',')]
    vendors: Option<Vec<String>>,
    /// Vendor outage VENDOR:START:DURATION (e.g. enphase:2h:30m); repeatable.
    #[arg(long = "outage")]
    outages: Vec<String>,
    /// 429 storm VENDOR:START:DURATION; repeatable.
    #[arg(long = "storm429")]
    storms: Vec<String>,
    /// Redis URL (default: the embedded memory store).
    #[arg(long)]
    redis: Option<String>,
    /// Per-request price table (TOML; default: the built-in loadtest/prices.toml).
    #[arg(long)]
    prices: Option<PathBuf>,
    /// Simulated start (RFC 3339).
    #[arg(long, default_value = "2026-06-01T00:00:00Z")]
    start: String,
    /// Gateway configuration file (TOML, as for `oemgate serve --config`): scheduler delays,
    /// jitter, breaker, executor settings. Default: the built-in defaults.
    #[arg(long)]
    config: Option<PathBuf>,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

#[derive(Args, Debug, Clone)]
struct RunArgs {
    #[command(flatten)]
    common: Common,
    /// Simulated hours.
    #[arg(long, default_value_t = 24.0)]
    hours: f64,
    /// Simulated time per tick. The default is the poller's own run-loop tick
    /// (`scheduler.tick`); a longer one is faster but lets a limiter with a small burst send
    /// only that burst per tick, and delays every due device by up to a tick.
    #[arg(long, default_value = "1s")]
    tick: humantime::Duration,
    /// Heuristics to run (comma-separated; default all: adaptive,fixed-2min,fixed-per-class).
    #[arg(long, value_delimiter = ',')]
    heuristics: Option<Vec<String>>,
    /// Charge START/STOP actions per simulated hour on random vehicles and chargers.
    #[arg(long, default_value_t = 0.0)]
    actions_per_hour: f64,
    /// Write report.json, report.md and SVG charts here.
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Args, Debug, Clone)]
struct CapacityArgs {
    #[command(flatten)]
    common: Common,
    /// Devices of the first step (doubled each step).
    #[arg(long, default_value_t = 1000)]
    start_devices: usize,
    /// The most devices tried.
    #[arg(long, default_value_t = 64_000)]
    max_devices: usize,
    /// Clock speed in the measured window (load of devices × speed in real time).
    #[arg(long, default_value_t = 10.0)]
    speed: f64,
    /// Simulated warm-up before the window.
    #[arg(long, default_value = "15m")]
    warmup: humantime::Duration,
    /// Wall length of the measured window.
    #[arg(long, default_value = "30s")]
    window: humantime::Duration,
    /// Lag p99 limit.
    #[arg(long, default_value = "1s")]
    max_lag: humantime::Duration,
    /// Write capacity.json and capacity.md here.
    #[arg(long)]
    out: Option<PathBuf>,
}

fn options(
    common: &Common,
    hours: f64,
    tick: Duration,
    actions_per_hour: f64,
) -> anyhow::Result<RunOptions> {
    let households = common.households.unwrap_or_else(|| {
        ((common.devices as f64) / DEVICES_PER_HOUSEHOLD).ceil().max(1.0) as usize
    });
    let parse = |list: &[String]| -> anyhow::Result<Vec<FaultWindow>> {
        list.iter().map(|s| FaultWindow::parse(s).map_err(anyhow::Error::msg)).collect()
    };
    let prices = match &common.prices {
        Some(path) => Prices::parse(
            &std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?,
        )
        .with_context(|| format!("parsing {}", path.display()))?,
        None => Prices::builtin(),
    };
    let vendors = match &common.vendors {
        Some(list) => {
            let mut out = Vec::new();
            for v in list {
                let v = v.trim().to_lowercase();
                anyhow::ensure!(
                    oemgate::sim::VENDORS.contains(&v.as_str()),
                    "unknown vendor {v:?} (known: {})",
                    oemgate::sim::VENDORS.join(", ")
                );
                out.push(v.to_uppercase());
            }
            Some(out)
        }
        None => None,
    };
    anyhow::ensure!(hours > 0.0 && hours.is_finite(), "--hours must be positive");
    Ok(RunOptions {
        households,
        seed: common.seed,
        hours,
        tick,
        vendors,
        outages: parse(&common.outages)?,
        storms: parse(&common.storms)?,
        actions_per_hour,
        redis: common.redis.clone(),
        prices,
        start: common.start.parse().context("--start must be RFC 3339")?,
        progress: !common.quiet,
        checkpoint_dir: None,
        config: oemgate::config::Config::load(common.config.as_deref())
            .map_err(|e| anyhow::anyhow!("--config: {e}"))?,
    })
}

fn progress_bar(quiet: bool) -> indicatif::ProgressBar {
    if quiet || !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(1);
    let style = indicatif::ProgressStyle::with_template(
        "{spinner} {msg:40} [{bar:40}] {pos}/{len} ticks, {elapsed_precise} (eta {eta})",
    )
    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
    .progress_chars("=> ");
    bar.set_style(style);
    bar.enable_steady_tick(Duration::from_millis(250));
    bar
}

fn write(dir: &Path, name: &str, text: &str) -> anyhow::Result<()> {
    std::fs::write(dir.join(name), text)
        .with_context(|| format!("writing {}", dir.join(name).display()))
}

async fn run(args: RunArgs, command: String) -> anyhow::Result<()> {
    let mut options = options(&args.common, args.hours, args.tick.into(), args.actions_per_hour)?;
    options.checkpoint_dir = args.out.clone();
    let heuristics = match &args.heuristics {
        Some(names) => names
            .iter()
            .map(|n| Heuristic::parse(n.trim()).with_context(|| format!("unknown heuristic {n:?}")))
            .collect::<anyhow::Result<Vec<_>>>()?,
        None => Heuristic::ALL.to_vec(),
    };
    let bar = progress_bar(args.common.quiet);
    let started = Instant::now();
    let report = oemgate_loadtest::compare(&options, &heuristics, command, &bar).await?;
    bar.finish_and_clear();
    let markdown = report.markdown();
    if let Some(dir) = &args.out {
        oemgate_loadtest::write_report(dir, &report)?;
    }
    println!("{markdown}");
    println!("total wall time: {:.0} s", started.elapsed().as_secs_f64());
    Ok(())
}

async fn capacity(args: CapacityArgs, command: String) -> anyhow::Result<()> {
    let options = options(&args.common, 1.0, Duration::from_secs(10), 0.0)?;
    let capacity = CapacityOptions {
        start_devices: args.start_devices,
        max_devices: args.max_devices,
        speed: args.speed,
        warmup: args.warmup.into(),
        window: args.window.into(),
        max_lag: args.max_lag.into(),
    };
    let bar = progress_bar(args.common.quiet);
    let started = Instant::now();
    let report = capacity::search(&options, &capacity, command, &bar).await?;
    bar.finish_and_clear();
    let markdown = report.markdown();
    if let Some(dir) = &args.out {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        write(dir, "capacity.json", &serde_json::to_string_pretty(&report)?)?;
        write(dir, "capacity.md", &markdown)?;
    }
    println!("{markdown}");
    println!("total wall time: {:.0} s", started.elapsed().as_secs_f64());
    Ok(())
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Capacity(args)) => capacity(args, command).await,
        Some(Command::Run(args)) => run(args, command).await,
        None => run(cli.run, command).await,
    }
}
