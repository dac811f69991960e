//! The `oemgate` command line: `serve`, `demo`, `sim`, `check-config` and `clients`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use oemgate::config::{Config, LogFormat};
use oemgate::{demo, telemetry};

#[derive(Debug, Parser)]
#[command(
    name = "oemgate",
    version,
    about = "An Enode-style gateway to energy-device vendor clouds"
)]
struct Cli {
    /// Log format (overrides telemetry.log_format).
    #[arg(long, global = true, value_enum)]
    log_format: Option<LogFormat>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the gateway against the configured vendor clouds.
    Serve(ConfigArg),
    /// Run vendor simulators, gateway and API in one process on a synthetic fleet.
    Demo(DemoArgs),
    /// Run only the vendor simulators.
    Sim(SimArgs),
    /// Validate a configuration (and reach its store) and exit.
    CheckConfig(ConfigArg),
    /// Administer API clients in the configured store. Needs store.backend = "redis": with
    /// the embedded memory store every process has its own store, so a client made here
    /// would be lost when the command exits.
    Clients(ClientsArgs),
}

#[derive(Debug, Args)]
struct ClientsArgs {
    #[command(flatten)]
    config: ConfigArg,
    #[command(subcommand)]
    command: ClientsSub,
}

#[derive(Debug, Subcommand)]
enum ClientsSub {
    /// Create a client; prints its id and secret (the secret only this once).
    Create {
        /// A name to recognise the client by.
        #[arg(long)]
        name: String,
    },
    /// Give a client a new secret (printed once); the old one and its tokens stop working.
    Rotate {
        /// The client id.
        #[arg(long)]
        id: String,
    },
    /// Revoke a client: no new tokens, and its tokens stop working immediately.
    Revoke {
        /// The client id.
        #[arg(long)]
        id: String,
    },
    /// List the clients (id, name, created, active or revoked).
    List,
}

#[derive(Debug, Args)]
struct ConfigArg {
    /// A TOML file layered over config/default.toml.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct DemoArgs {
    #[command(flatten)]
    config: ConfigArg,
    /// Address of the API.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Address of the vendor simulators (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:0")]
    sim_listen: SocketAddr,
    /// Vehicles in the synthetic fleet.
    #[arg(long)]
    fleet: Option<usize>,
    /// Time acceleration (60 = one simulated hour per real minute).
    #[arg(long)]
    speed: Option<f64>,
    /// Seed of the simulated world.
    #[arg(long)]
    seed: Option<u64>,
    /// API client id to create (random when absent).
    #[arg(long, env = "OEMGATE_DEMO_CLIENT_ID")]
    client_id: Option<String>,
    /// API client secret to create (random when absent).
    #[arg(long, env = "OEMGATE_DEMO_CLIENT_SECRET", hide_env_values = true)]
    client_secret: Option<String>,
    /// Log lines only, no live summary line.
    #[arg(long)]
    headless: bool,
}

#[derive(Debug, Args)]
struct SimArgs {
    #[command(flatten)]
    config: ConfigArg,
    /// Address of the simulators (overrides sim.listen).
    #[arg(long)]
    listen: Option<SocketAddr>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let file = match &cli.command {
        Command::Serve(c) | Command::CheckConfig(c) => c.config.clone(),
        Command::Demo(d) => d.config.config.clone(),
        Command::Sim(s) => s.config.config.clone(),
        Command::Clients(c) => c.config.config.clone(),
    };
    let config = match Config::load(file.as_deref()) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::from(2);
        }
    };
    telemetry::init(
        cli.log_format.unwrap_or(config.telemetry.log_format),
        &config.telemetry.log_level,
    );
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Serve(_) => oemgate::app::serve(config).await,
            Command::CheckConfig(_) => oemgate::app::check(&config).await,
            Command::Sim(args) => oemgate::sim::run(config, args.listen).await,
            Command::Clients(args) => {
                use oemgate::clients::ClientsCommand;
                let command = match args.command {
                    ClientsSub::Create { name } => ClientsCommand::Create { name },
                    ClientsSub::Rotate { id } => ClientsCommand::Rotate { id },
                    ClientsSub::Revoke { id } => ClientsCommand::Revoke { id },
                    ClientsSub::List => ClientsCommand::List,
                };
                oemgate::clients::run(&config, command).await
            }
            Command::Demo(args) => {
                let options = demo::DemoOptions {
                    listen: args.listen,
                    sim_listen: args.sim_listen,
                    fleet: args.fleet.unwrap_or(config.sim.fleet),
                    speed: args.speed.unwrap_or(config.sim.speed),
                    seed: args.seed.unwrap_or(config.sim.seed),
                    client_id: args.client_id,
                    client_secret: args.client_secret,
                    headless: args.headless,
                };
                demo::run(config, options).await
            }
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {}", one_line(&err));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes on one line, joined by ": ", leaving out a cause whose text the
/// line already contains (store and HTTP errors often repeat their source in their message).
fn one_line(err: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line.replace('\n', " ")
}
