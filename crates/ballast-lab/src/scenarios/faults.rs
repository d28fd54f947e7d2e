//! One of three backends goes wrong under steady open-loop load: it crashes, hangs, slows
//! down or starts answering errors. The fault comes a third of the way into the run, so each
//! report shows before, during and after.

use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::env::{open_loop, Settings, Stage};
use super::figures::{joined, p99_ms, percent, ratio, recovery_s, secs, window, worst_p99_ms};
use crate::backend::{Knobs, LatencyKnob};
use crate::load;
use crate::peers::{Balance, Peer};
use crate::result::{Fault, LoadStats, Run, Target};
use crate::LabError;

/// The backend that misbehaves (b2).
const VICTIM: usize = 1;

fn fault_at(settings: &Settings) -> Duration {
    settings.duration / 3
}

/// Starts the stage and the load, sleeps until the fault time; returns what is needed to
/// inject the fault and collect the load.
async fn start(
    settings: &Settings,
    name: &str,
    target: Target,
    peer: Option<&dyn Peer>,
    balance: Balance,
    progress: Arc<AtomicU64>,
) -> Result<
    (
        Stage,
        tokio::task::JoinHandle<Result<LoadStats, LabError>>,
        Instant,
    ),
    LabError,
> {
    let mut stage = Stage::new(settings, name, target, 3).await?;
    let topo = stage.topology(&[0, 1, 2], balance);
    let addr = stage.start_proxy(peer, &topo).await?;
    let epoch = Instant::now();
    let spec = open_loop(settings, addr, epoch);
    let task = tokio::spawn(load::run(spec, Some(progress)));
    tokio::time::sleep_until((epoch + fault_at(settings)).into()).await;
    Ok((stage, task, epoch))
}

pub async fn crash(
    settings: &Settings,
    target: Target,
    peer: Option<&dyn Peer>,
    progress: Arc<AtomicU64>,
) -> Result<Run, LabError> {
    let (mut stage, task, epoch) = start(
        settings,
        "backend-crash",
        target,
        peer,
        Balance::RoundRobin,
        progress,
    )
    .await?;
    let victim_before = stage.backend_stats().await[VICTIM]
        .as_ref()
        .map_or(0, |s| s.requests);
    let at = secs(epoch.elapsed());
    let victim = &mut stage.backends[VICTIM];
    let injected = victim.proc.signal(libc::SIGKILL);
    let exited = victim.proc.wait_exit(Duration::from_secs(2));
    let refused = tokio::net::TcpStream::connect(victim.addr).await.is_err();
    let fault = Fault {
        what: format!("SIGKILL backend {}", victim.name),
        at_s: at,
        injected,
        seen: exited && refused,
        evidence: format!(
            "{} {}; its port {}",
            victim.name,
            if exited { "exited" } else { "did not exit" },
            if refused {
                "refuses connections"
            } else {
                "still accepts connections"
            }
        ),
    };
    let stats = joined(task.await)?;
    let mut run = Run::default();
    run.metrics
        .insert("errors".into(), stats.errors.total() as f64);
    run.metrics
        .insert("recovery_s".into(), recovery_s(&stats.timeline, at));
    // The killed backend's count, as read just before the kill.
    run.backend_requests = stage.backend_requests().await + victim_before;
    run.fault = Some(fault);
    run.load = stats;
    Ok(run)
}

pub async fn hang(
    settings: &Settings,
    target: Target,
    peer: Option<&dyn Peer>,
    progress: Arc<AtomicU64>,
) -> Result<Run, LabError> {
    let (stage, task, epoch) = start(
        settings,
        "backend-hang",
        target,
        peer,
        Balance::RoundRobin,
        progress,
    )
    .await?;
    let at = secs(epoch.elapsed());
    let victim = &stage.backends[VICTIM];
    let injected = victim.proc.signal(libc::SIGSTOP);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let stopped = victim.proc.stopped();
    let fault = Fault {
        what: format!("SIGSTOP backend {}", victim.name),
        at_s: at,
        injected,
        seen: stopped,
        evidence: format!(
            "{} is {} (process state from /proc)",
            victim.name,
            if stopped { "stopped" } else { "not stopped" }
        ),
    };
    let stats = joined(task.await)?;
    victim.proc.signal(libc::SIGCONT);
    let mut run = Run::default();
    run.metrics
        .insert("errors".into(), stats.errors.total() as f64);
    run.metrics
        .insert("recovery_s".into(), recovery_s(&stats.timeline, at));
    run.metrics.insert("p99_ms".into(), p99_ms(&stats));
    run.backend_requests = stage.backend_requests().await;
    run.fault = Some(fault);
    run.load = stats;
    Ok(run)
}

pub async fn slow(
    settings: &Settings,
    target: Target,
    peer: Option<&dyn Peer>,
    progress: Arc<AtomicU64>,
) -> Result<Run, LabError> {
    let (stage, task, epoch) = start(
        settings,
        "slow-backend",
        target,
        peer,
        Balance::LoadAware,
        progress,
    )
    .await?;
    let at = secs(epoch.elapsed());
    let victim = &stage.backends[VICTIM];
    let knobs = Knobs {
        latency: Some(LatencyKnob::Fixed { ms: 300.0 }),
        ..Knobs::default()
    };
    let injected = victim.control.set_knobs(&knobs).await.is_ok();
    // Evidence straight from the backend, past any proxy: one request timed directly.
    let t0 = Instant::now();
    let direct = super::env::http_status(victim.addr, "/").await;
    let took = t0.elapsed();
    // Let balancers notice, then count who gets what.
    tokio::time::sleep(Duration::from_secs(2).min(settings.duration / 4)).await;
    let settle = secs(epoch.elapsed());
    let before = stage.backend_stats().await;
    let stats = joined(task.await)?;
    let after = stage.backend_stats().await;
    let delta = |i: usize| {
        let a = after[i].as_ref().map_or(0, |s| s.requests);
        a.saturating_sub(before[i].as_ref().map_or(0, |s| s.requests))
    };
    let total: u64 = (0..stage.backends.len()).map(delta).sum();
    let mut run = Run::default();
    run.metrics
        .insert("p99_after_ms".into(), worst_p99_ms(&stats.timeline, settle));
    run.metrics.insert(
        "slow_share".into(),
        (ratio(delta(VICTIM) as f64, total as f64) * 1000.0).round() / 10.0,
    );
    run.notes.push(format!(
        "p99 after the slowdown is the worst per-second p99 from t={settle:.0}s to the end."
    ));
    run.backend_requests = after.iter().flatten().map(|s| s.requests).sum();
    run.fault = Some(Fault {
        what: format!("backend {} +300 ms", victim.name),
        at_s: at,
        injected,
        seen: direct == Some(200) && took >= Duration::from_millis(290),
        evidence: format!(
            "a request sent straight to {} took {} ms",
            victim.name,
            took.as_millis()
        ),
    });
    run.load = stats;
    Ok(run)
}

pub async fn error_storm(
    settings: &Settings,
    target: Target,
    peer: Option<&dyn Peer>,
    progress: Arc<AtomicU64>,
) -> Result<Run, LabError> {
    let (stage, task, epoch) = start(
        settings,
        "error-storm",
        target,
        peer,
        Balance::RoundRobin,
        progress,
    )
    .await?;
    let at = secs(epoch.elapsed());
    let victim = &stage.backends[VICTIM];
    let knobs = Knobs {
        error_ratio: 0.5,
        error_status: 503,
        ..Knobs::default()
    };
    let injected = victim.control.set_knobs(&knobs).await.is_ok();
    // Count from the next whole second, where the per-second client timeline starts too.
    let from = at.ceil();
    tokio::time::sleep_until((epoch + Duration::from_secs_f64(from)).into()).await;
    let before = stage.backend_requests().await;
    let stats = joined(task.await)?;
    let after = stage.backend_stats().await;
    let upstream: u64 = after
        .iter()
        .flatten()
        .map(|s| s.requests)
        .sum::<u64>()
        .saturating_sub(before);
    let errors_sent = after[VICTIM].as_ref().map_or(0, |s| s.errors_sent);
    let (ok, err) = window(&stats.timeline, from);
    let mut run = Run::default();
    run.metrics.insert(
        "success".into(),
        (percent(ok, ok + err) * 100.0).round() / 100.0,
    );
    run.metrics.insert(
        "amplification".into(),
        (ratio(upstream as f64, (ok + err) as f64) * 1000.0).round() / 1000.0,
    );
    run.backend_requests = after.iter().flatten().map(|s| s.requests).sum();
    run.fault = Some(Fault {
        what: format!("backend {} answers 50% 503", victim.name),
        at_s: at,
        injected,
        seen: errors_sent > 0,
        evidence: format!("{} sent {errors_sent} error responses", victim.name),
    });
    run.load = stats;
    Ok(run)
}
