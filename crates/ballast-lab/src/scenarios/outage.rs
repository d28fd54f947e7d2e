//! Total outage: every backend fails its health check and answers 503. Measures how the
//! clients are answered and how much traffic still reaches the backends once the proxy had
//! time to notice (two failed checks plus a second).

use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::env::{http_status, open_loop, Settings, Stage};
use super::figures::{joined, p99_ms, percent, secs};
use crate::backend::Knobs;
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
    let mut stage = Stage::new(settings, "total-outage", target, 3).await?;
    let mut topo = stage.topology(&[0, 1, 2], Balance::RoundRobin);
    topo.sorry_page = true;
    let addr = stage.start_proxy(peer, &topo).await?;
    let epoch = Instant::now();
    let spec = open_loop(settings, addr, epoch);
    let task = tokio::spawn(load::run(spec, Some(progress)));
    tokio::time::sleep_until((epoch + settings.duration / 3).into()).await;

    let at = secs(epoch.elapsed());
    let down = Knobs {
        health_fail: true,
        error_ratio: 1.0,
        error_status: 503,
        ..Knobs::default()
    };
    let injected = stage.set_knobs(&[0, 1, 2], &down).await.is_ok();
    let health = http_status(stage.backends[0].addr, "/healthz").await;
    let detect = topo.health_interval * topo.fall + Duration::from_secs(1);
    tokio::time::sleep(detect).await;
    let detected_at = secs(epoch.elapsed());
    let before = stage.backend_requests().await;
    let stats = joined(task.await)?;
    let after = stage.backend_requests().await;

    // Share of requests after the fault that got an HTTP answer (any status) rather than a
    // broken connection or a timeout.
    let first = at.ceil() as u32;
    let (mut answered, mut all) = (0, 0);
    for s in stats.timeline.iter().filter(|s| s.t >= first) {
        let http = s.ok + s.errors.status_5xx + s.errors.status_4xx;
        answered += http;
        all += http + s.errors.connect + s.errors.timeout + s.errors.io;
    }
    let mut run = Run::default();
    run.metrics.insert(
        "answered".into(),
        (percent(answered, all) * 100.0).round() / 100.0,
    );
    run.metrics
        .insert("leak".into(), after.saturating_sub(before) as f64);
    run.metrics.insert("p99_ms".into(), p99_ms(&stats));
    run.notes.push(format!(
        "Requests reaching backends are counted from t={detected_at:.1}s (fault + {:.1}s) to the end.",
        detect.as_secs_f64()
    ));
    run.backend_requests = after;
    run.fault = Some(Fault {
        what: "all backends fail health checks and answer 503".into(),
        at_s: at,
        injected,
        seen: health == Some(503),
        evidence: format!(
            "GET /healthz straight to b1 answered {}",
            health.map_or_else(|| "nothing".to_string(), |s| s.to_string())
        ),
    });
    run.load = stats;
    Ok(run)
}
