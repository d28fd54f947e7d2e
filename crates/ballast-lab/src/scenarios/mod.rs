//! The ten lab scenarios of DESIGN.md §7. Each runs once per target on a fresh [`Stage`](env::Stage)
//! (new backend processes, a freshly started proxy), so no run inherits another's state.
//!
//! A scenario returns a [`Run`]: what the clients saw, what the backends received, the fault
//! it injected with the harness's own evidence that the fault took effect, and its specific
//! figures. Scenarios that need features Ballast does not have yet (retry budgets, shedding,
//! flood blocking, sorry pages) run anyway and measure what exists today.

pub mod env;
mod faults;
mod figures;
mod flood;
mod outage;
mod overload;
mod reload;
mod slow_clients;
mod steady;

use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use crate::peers::Peer;
use crate::result::{MetricSpec, Run, Target};
use crate::LabError;
use env::Settings;

/// Every scenario, in report order.
pub const ALL: [&str; 10] = [
    "baseline",
    "backend-crash",
    "backend-hang",
    "slow-backend",
    "error-storm",
    "overload",
    "total-outage",
    "reload",
    "slow-clients",
    "flood",
];

/// Title and one-sentence description.
pub fn describe(name: &str) -> Option<(&'static str, &'static str)> {
    Some(match name {
        "baseline" => ("Baseline throughput", "Requests/s and latency through each proxy at equal CPU, closed loop, and straight to one backend for reference."),
        "backend-crash" => ("Backend crash", "One of three backends is killed (SIGKILL) under load: client-visible errors and the time until no more errors."),
        "backend-hang" => ("Backend hang", "One of three backends stops answering (SIGSTOP) under load: errors, and the time until the proxy stops sending to it."),
        "slow-backend" => ("Slow backend", "One of three backends becomes 300 ms slower: p99 of the whole service and the share of requests still sent to the slow one."),
        "error-storm" => ("Error storm", "One of three backends answers 50% of requests with 503: client success rate and upstream requests per client request (amplification)."),
        "overload" => ("Overload", "Twice the backends' capacity is offered, 20% on a critical route and 80% on a low-priority one: critical success, goodput, latency."),
        "total-outage" => ("Total outage", "Every backend fails its health check and answers 503: how clients are answered, and how many requests still reach the backends once the outage is detected."),
        "reload" => ("Reload under load", "The configuration is changed (one server replaced by a new one) and reloaded under load: client-visible errors, and whether the new server gets traffic."),
        "slow-clients" => ("Slow clients", "Hundreds of connections send their request headers one byte at a time: the success rate and latency of normal clients."),
        "flood" => ("Flood", "One client sends 20x the rate of each of the others: time until it is blocked, and the others' success."),
        _ => return None,
    })
}

/// The scenario-specific figures and how to read them.
pub fn metrics(name: &str) -> Vec<MetricSpec> {
    let m = |key: &str, label: &str, unit: &str, higher: bool| MetricSpec {
        key: key.into(),
        label: label.into(),
        unit: unit.into(),
        higher_is_better: higher,
    };
    match name {
        "baseline" => vec![
            m("ok_per_cpu_s", "req per proxy CPU-second", "", true),
            m("proxy_cpu", "proxy CPU", "%", false),
        ],
        "backend-crash" => vec![
            m("errors", "client errors", "", false),
            m("recovery_s", "time to recovery", "s", false),
        ],
        "backend-hang" => vec![
            m("errors", "client errors", "", false),
            m("recovery_s", "time to recovery", "s", false),
            m("p99_ms", "p99", "ms", false),
        ],
        "slow-backend" => vec![
            m("p99_after_ms", "p99 after the slowdown", "ms", false),
            m("slow_share", "share sent to the slow server", "%", false),
        ],
        "error-storm" => vec![
            m("success", "client success", "%", true),
            m("amplification", "upstream req per client req", "", false),
        ],
        "overload" => vec![
            m("critical_success", "critical success", "%", true),
            m("goodput", "goodput of capacity", "%", true),
            m("low_p99_ms", "low-priority p99", "ms", false),
        ],
        "total-outage" => vec![
            m("answered", "answered with HTTP", "%", true),
            m(
                "leak",
                "requests reaching backends after detection",
                "",
                false,
            ),
            m("p99_ms", "p99", "ms", false),
        ],
        "reload" => vec![
            m("errors", "client errors", "", false),
            m(
                "new_share",
                "share to the new server after reload",
                "%",
                true,
            ),
        ],
        "slow-clients" => vec![
            m("normal_success", "normal clients' success", "%", true),
            m("normal_p99_ms", "normal clients' p99", "ms", false),
            m("slow_cut", "slow connections cut by the proxy", "", true),
        ],
        "flood" => vec![
            m("block_s", "time to block the flooder", "s", false),
            m("others_success", "other clients' success", "%", true),
        ],
        _ => Vec::new(),
    }
}

/// Whether a scenario also runs with no proxy, straight to a backend.
pub fn has_direct(name: &str) -> bool {
    name == "baseline"
}

/// Runs scenario `name` against `target` (`peer` is `None` for direct).
pub async fn run(
    name: &str,
    settings: &Settings,
    target: Target,
    peer: Option<&dyn Peer>,
    progress: Arc<AtomicU64>,
) -> Result<Run, LabError> {
    let mut run = match name {
        "baseline" => steady::baseline(settings, target, peer, progress).await?,
        "backend-crash" => faults::crash(settings, target, peer, progress).await?,
        "backend-hang" => faults::hang(settings, target, peer, progress).await?,
        "slow-backend" => faults::slow(settings, target, peer, progress).await?,
        "error-storm" => faults::error_storm(settings, target, peer, progress).await?,
        "overload" => overload::run(settings, target, peer, progress).await?,
        "total-outage" => outage::run(settings, target, peer, progress).await?,
        "reload" => reload::run(settings, target, peer, progress).await?,
        "slow-clients" => slow_clients::run(settings, target, peer, progress).await?,
        "flood" => flood::run(settings, target, peer, progress).await?,
        other => {
            return Err(LabError::Usage(format!(
                "unknown scenario '{other}' (known: {})",
                ALL.join(", ")
            )))
        }
    };
    run.target = Some(target);
    run.version = peer.map_or_else(|| "lab backend".to_string(), |p| p.version());
    Ok(run)
}
