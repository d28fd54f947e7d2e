//! Reload under load: a third of the way in, the configuration is rewritten (server b3
//! replaced by a new b4) and each proxy reloads it its own way (Ballast and nginx SIGHUP,
//! HAProxy SIGUSR2 to its master).

use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::env::{open_loop, Settings, Stage};
use super::figures::{joined, percent, secs};
use crate::load;
use crate::peers::{Balance, Peer};
use crate::result::{Fault, Run, Target};
use crate::LabError;

pub async fn run(
    settings: &Settings,
    target: Target,
    peer: Option<&dyn Peer>,
    progress: Arc<AtomicU64>,
) -> Result<Run, LabError> {
    let mut stage = Stage::new(settings, "reload", target, 4).await?;
    let topo = stage.topology(&[0, 1, 2], Balance::RoundRobin);
    let addr = stage.start_proxy(peer, &topo).await?;
    let epoch = Instant::now();
    let spec = open_loop(settings, addr, epoch);
    let task = tokio::spawn(load::run(spec, Some(progress)));
    tokio::time::sleep_until((epoch + settings.duration / 3).into()).await;

    let at = secs(epoch.elapsed());
    let mut injected = false;
    let mut evidence = String::new();
    if let (Some(peer), Some(proc)) = (peer, stage.proxy.as_ref()) {
        let new = stage.topology(&[0, 1, 3], Balance::RoundRobin);
        match peer.prepare(&new).and_then(|_| peer.reload(proc)) {
            Ok(()) => injected = true,
            Err(e) => evidence = format!("reload failed: {e}; "),
        }
    }
    tokio::time::sleep(Duration::from_secs(2).min(settings.duration / 4)).await;
    let before = stage.backend_stats().await;
    let stats = joined(task.await)?;
    let after = stage.backend_stats().await;
    let count = |v: &Vec<Option<crate::backend::BackendStats>>, i: usize| {
        v.get(i).and_then(Option::as_ref).map_or(0, |s| s.requests)
    };
    let new_delta = count(&after, 3).saturating_sub(count(&before, 3));
    let total_delta: u64 = (0..4)
        .map(|i| count(&after, i).saturating_sub(count(&before, i)))
        .sum();
    let mut run = Run::default();
    run.metrics
        .insert("errors".into(), stats.errors.total() as f64);
    run.metrics.insert(
        "new_share".into(),
        (percent(new_delta, total_delta) * 10.0).round() / 10.0,
    );
    run.backend_requests = (0..4).map(|i| count(&after, i)).sum();
    let b4 = count(&after, 3);
    evidence.push_str(&format!(
        "new server b4 received {b4} requests after the reload"
    ));
    run.fault = Some(Fault {
        what: "reload: b3 replaced by b4".into(),
        at_s: at,
        injected,
        seen: b4 > 0,
        evidence,
    });
    run.load = stats;
    Ok(run)
}
