//! `ballast`: the command line. Kept thin: parse arguments, set up logging, load the config
//! (exit 64 on a bad one), hand over to [`app`], and turn errors into exit codes.

mod admin_client;
mod alerting;
mod alerts_cmd;
mod app;
mod backend;
mod brain_api;
mod change_cmd;
mod changes;
mod config_cmd;
mod demo;
mod history;
mod incident_cmd;
mod incident_timeline;
mod incidents;
mod instances;
mod lab;
mod notify_cmd;
mod notifying;
mod remedy_cmd;
mod remedy_gateway;
mod remedying;
mod retention;
mod review;
mod review_cmd;
mod rollback;
mod rollback_cmd;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// mimalloc instead of glibc malloc: the proxy allocates small, short-lived buffers per request
/// and glibc's allocator was ~4.5% of the gateway's CPU in a profile (see bench/README.md).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Exit code for a configuration that was refused (EX_USAGE... EX_CONFIG is 78; 64 is the
/// conventional "usage/config error" operators script against).
const EXIT_BAD_CONFIG: u8 = 64;

#[derive(Parser)]
#[command(
    name = "ballast",
    version,
    about = "A gateway and operations brain that keeps a web service up."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway with a configuration file.
    Run {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Run a self-contained demo: three demo backends, the gateway on 127.0.0.1:8080, the admin API on 127.0.0.1:9900.
    Demo,
    /// Validate a configuration file without starting anything.
    Check {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Ask a running gateway to reload its configuration file.
    Reload {
        /// The running gateway's config (used to find its admin address and token).
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Admin address, if not taken from the config.
        #[arg(long)]
        admin: Option<String>,
    },
    /// Show listeners, routes, upstreams and servers of a running gateway.
    Status {
        #[arg(long, short)]
        config: Option<PathBuf>,
        #[arg(long)]
        admin: Option<String>,
    },
    /// Drain a server (no new requests; in-flight ones finish), or re-enable it with --enable.
    Drain {
        upstream: String,
        server: String,
        #[arg(long)]
        enable: bool,
        #[arg(long, short)]
        config: Option<PathBuf>,
        #[arg(long)]
        admin: Option<String>,
    },
    /// Remove cached answers: every route's, or one route's with --route, under a path with --prefix.
    Purge {
        #[arg(long)]
        route: Option<String>,
        /// Only paths starting with this, e.g. /img/
        #[arg(long)]
        prefix: Option<String>,
        #[arg(long, short)]
        config: Option<PathBuf>,
        #[arg(long)]
        admin: Option<String>,
    },
    /// The config history of a running gateway: versions applied or refused, their text, diffs.
    #[command(subcommand)]
    Config(config_cmd::ConfigCommand),
    /// Change markers (deploys, flags, data, infra, notes) and what changed recently.
    #[command(subcommand)]
    Change(change_cmd::ChangeCommand),
    /// Alerts of a running gateway: state and severity, rule, value, since when, and whether
    /// each is silenced, inhibited or acknowledged.
    Alerts(alerts_cmd::AlertsArgs),
    /// Acknowledge an alert (who and why are recorded; it keeps firing until it resolves).
    Ack(alerts_cmd::AckArgs),
    /// Silences: mute alerts matching labels for a while (add), see them (list), end one (expire).
    #[command(subcommand)]
    Silence(alerts_cmd::SilenceCommand),
    /// Notifications: send a test message to a receiver (test), see what was sent (log).
    #[command(subcommand)]
    Notify(notify_cmd::NotifyCommand),
    /// Automatic remediation: what it did (runs) and letting it act again on a target it gave
    /// up on (ack).
    #[command(subcommand)]
    Remedy(remedy_cmd::RemedyCommand),
    /// Incidents: list, show, open by hand, add notes, move through the lifecycle, export the
    /// post-mortem.
    #[command(subcommand)]
    Incident(incident_cmd::IncidentCommand),
    /// The threshold review: each rule's value over its history (percentiles), how often it
    /// fired and whether anyone acted, flags (no data, never fired, always firing, noisy) and
    /// proposed thresholds.
    Review(review_cmd::ReviewArgs),
    /// Roll a running gateway back to a recorded config version (by default the previous good
    /// one): it is validated, written to the config file (the replaced file is kept as
    /// NAME.bak.<UTC time>) and applied like a reload.
    Rollback {
        /// The version to restore (see `ballast config history`).
        version: Option<u64>,
        #[arg(long, short)]
        config: Option<PathBuf>,
        #[arg(long)]
        admin: Option<String>,
    },
    /// Measure Ballast against HAProxy and nginx under load and injected faults.
    Lab(lab::LabArgs),
    /// Run a lab backend (started by `lab`).
    #[command(hide = true)]
    LabBackend {
        #[arg(long)]
        listen: String,
        #[arg(long)]
        name: String,
    },
    /// Run a demo backend (used by `demo` and the tests).
    #[command(hide = true)]
    Backend {
        #[arg(long)]
        listen: String,
        #[arg(long)]
        name: String,
        /// Start it detached, write its pid here, and return once it listens.
        #[arg(long)]
        detach: Option<PathBuf>,
    },
}

fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("BALLAST_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // When stderr cannot be written (a full disk under `2>>file`), tracing-subscriber
        // would report it with `eprintln!`, which panics when stderr cannot be written: every
        // task that logs would die. Lost log lines are the lesser harm.
        .log_internal_errors(false)
        .init();
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check { config } => match ballast_config::load(&config) {
            Ok(cfg) => {
                if !certificates_ok(&cfg) {
                    return ExitCode::from(EXIT_BAD_CONFIG);
                }
                println!("{}: OK", config.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::from(EXIT_BAD_CONFIG)
            }
        },
        Command::Run { config } => {
            init_tracing();
            let source = ballast_config::Source::File(config);
            let loaded = match source.load() {
                Ok(l) => l,
                Err(e) => {
                    eprintln!("{e}");
                    return ExitCode::from(EXIT_BAD_CONFIG);
                }
            };
            // A certificate that cannot be served is a bad config too (the gateway reads the
            // files again when its listeners start, and logs the expiry warnings then).
            if let Some(e) = ballast_proxy::listener::tls::load_all(&loaded.config)
                .into_iter()
                .find_map(Result::err)
            {
                eprintln!("{e}");
                return ExitCode::from(EXIT_BAD_CONFIG);
            }
            exit(app::run(loaded, source))
        }
        Command::Demo => {
            init_tracing();
            exit(demo::run())
        }
        Command::Backend {
            listen,
            name,
            detach: None,
        } => exit(backend::run(&listen, &name)),
        Command::Backend {
            listen,
            name,
            detach: Some(pid_file),
        } => exit(backend::detach(&listen, &name, &pid_file)),
        Command::Lab(args) => exit(lab::run(args)),
        Command::Config(cmd) => exit(config_cmd::run(cmd)),
        Command::Change(cmd) => exit(change_cmd::run(cmd)),
        Command::Alerts(args) => exit(alerts_cmd::alerts(args)),
        Command::Ack(args) => exit(alerts_cmd::ack(args)),
        Command::Silence(cmd) => exit(alerts_cmd::silence(cmd)),
        Command::Notify(cmd) => exit(notify_cmd::notify(cmd)),
        Command::Remedy(cmd) => exit(remedy_cmd::remedy(cmd)),
        Command::Incident(cmd) => exit(incident_cmd::incident(cmd)),
        Command::Review(args) => exit(review_cmd::review(args)),
        Command::Rollback {
            version,
            config,
            admin,
        } => exit(rollback_cmd::run(version, config, admin)),
        Command::LabBackend { listen, name } => exit(lab::backend(&listen, &name)),
        Command::Reload { config, admin } => {
            exit(admin_client::call(config, admin, "POST", "/api/v1/reload"))
        }
        Command::Status { config, admin } => {
            exit(admin_client::call(config, admin, "GET", "/api/v1/status"))
        }
        Command::Drain {
            upstream,
            server,
            enable,
            config,
            admin,
        } => {
            let action = if enable { "enable" } else { "drain" };
            let path = format!("/api/v1/servers/{upstream}/{server}/{action}");
            exit(admin_client::call(config, admin, "POST", &path))
        }
        Command::Purge {
            route,
            prefix,
            config,
            admin,
        } => {
            let query: Vec<String> = [("route", route), ("prefix", prefix)]
                .into_iter()
                .filter_map(|(k, v)| Some(format!("{k}={}", admin_client::encode(&v?))))
                .collect();
            let mut path = "/api/v1/cache/purge".to_string();
            if !query.is_empty() {
                path = format!("{path}?{}", query.join("&"));
            }
            exit(admin_client::call(config, admin, "POST", &path))
        }
    }
}

/// Loads every https listener's certificates as start-up would: prints each error (and
/// returns false) and each "expires soon" warning.
fn certificates_ok(cfg: &ballast_config::Config) -> bool {
    let now = ballast_proxy::listener::tls::now_unix();
    let mut ok = true;
    for r in ballast_proxy::listener::tls::load_all(cfg) {
        match r {
            Ok(set) => {
                for w in set.warnings(now) {
                    println!("warning: {w}");
                }
            }
            Err(e) => {
                eprintln!("{e}");
                ok = false;
            }
        }
    }
    ok
}

fn exit(r: anyhow::Result<()>) -> ExitCode {
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ballast: {e:#}");
            ExitCode::FAILURE
        }
    }
}
