//! The proxies under comparison, each configured from one shared [`Topology`].
//!
//! A scenario describes what it needs once (servers, timeouts, health checks, retries,
//! balancing); each [`Peer`] turns that into its own configuration file and command line, as
//! close to equivalent as the product allows. docs/lab.md documents the mapping, including
//! where a peer has no equivalent (open-source nginx has no active health checks).

mod ballast;
mod haproxy;
mod nginx;
pub mod process;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

pub use ballast::Ballast;
pub use haproxy::Haproxy;
pub use nginx::Nginx;

use crate::result::Target;
use crate::LabError;

/// How requests are spread over the servers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Balance {
    RoundRobin,
    /// Each proxy's latency- or load-aware choice: Ballast peak-EWMA (power of two choices),
    /// HAProxy `leastconn`, nginx `least_conn`.
    LoadAware,
}

/// What every proxy in a scenario is asked to do.
#[derive(Clone, Debug)]
pub struct Topology {
    /// Where the proxy listens for clients.
    pub listen: SocketAddr,
    /// Ballast's admin listener (metrics); unused by the peers.
    pub admin: SocketAddr,
    pub servers: Vec<SocketAddr>,
    pub balance: Balance,
    /// Active health check of `GET /healthz` (nginx: passive only).
    pub health_interval: Duration,
    pub health_timeout: Duration,
    pub rise: u32,
    pub fall: u32,
    pub connect_timeout: Duration,
    /// Time allowed for the server's response head.
    pub response_timeout: Duration,
    /// Total tries per request, the first included.
    pub attempts: u32,
    /// Per-client request limit (requests per second) where the scenario wants one.
    pub flood_per_second: Option<u32>,
    /// Serve a static sorry page instead of the proxy's own 502/503/504.
    pub sorry_page: bool,
    /// Priority classes: requests under this path prefix are critical, the rest low, and the
    /// proxy bounds the concurrency it sends to the backends.
    pub priority: Option<Priorities>,
    /// Where configs, logs and pid files go.
    pub dir: PathBuf,
}

/// Priority classes and admission control, where the scenario wants them.
#[derive(Clone, Debug)]
pub struct Priorities {
    /// Path prefix of the critical route.
    pub critical_prefix: String,
    /// What each backend can serve at once. Only HAProxy is told (`maxconn`, as an operator
    /// who measured the backends would); Ballast learns its limit from latency.
    pub per_server_concurrency: u32,
}

/// The sorry page body every proxy serves.
pub const SORRY_HTML: &str = "<!doctype html><title>Back soon</title><h1>Back soon</h1>\n";

/// One proxy product.
pub trait Peer: Send + Sync {
    fn target(&self) -> Target;
    /// Version string, e.g. "HAProxy 2.6.12" (or why it is unknown).
    fn version(&self) -> String;
    /// Writes the configuration for `topo` and returns the command that runs it in the
    /// foreground with one worker.
    fn prepare(&self, topo: &Topology) -> Result<Command, LabError>;
    /// Reloads the configuration written by the latest `prepare` into the running process.
    fn reload(&self, proc: &process::Proc) -> Result<(), LabError>;
}

/// The peer for a target.
pub fn peer(target: Target, ballast_bin: &Path) -> Option<Box<dyn Peer>> {
    match target {
        Target::Ballast => Some(Box::new(Ballast::new(ballast_bin))),
        Target::Haproxy => Some(Box::new(Haproxy)),
        Target::Nginx => Some(Box::new(Nginx)),
        Target::Direct => None,
    }
}

/// Duration in milliseconds, the unit every config format here accepts.
fn ms(d: Duration) -> u128 {
    d.as_millis().max(1)
}

fn write(path: &Path, text: &str) -> Result<(), LabError> {
    std::fs::write(path, text).map_err(|source| LabError::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// First line of a command's output (stdout or stderr), for version strings.
fn first_line(cmd: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(cmd).args(args).output().ok()?;
    let text = if out.stdout.is_empty() {
        out.stderr
    } else {
        out.stdout
    };
    String::from_utf8_lossy(&text)
        .lines()
        .next()
        .map(str::to_owned)
}

/// Whether `cmd` can be run at all.
pub fn installed(cmd: &str) -> bool {
    Command::new(cmd)
        .arg("-v")
        .output()
        .map(|o| o.status.success() || !o.stderr.is_empty())
        .unwrap_or(false)
}

/// The bare executable for a target, to check it is installed.
pub fn executable(target: Target) -> Option<&'static str> {
    match target {
        Target::Haproxy => Some("haproxy"),
        Target::Nginx => Some("nginx"),
        _ => None,
    }
}
