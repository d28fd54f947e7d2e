//! Overload: the backends have a real capacity (each serves at most 4 requests at once, 20 ms
//! each: 600 req/s for three) and twice that is offered, 20% on a critical route and 80% on a
//! low-priority one.

use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::env::{Settings, Stage};
use super::figures::{joined, p99_ms, percent};
use crate::backend::{Knobs, LatencyKnob};
use crate::load::{self, LoadSpec, Mode};
use crate::peers::{Balance, Peer, Priorities};
use crate::result::{Fault, Run, Target};
use crate::LabError;

const PER_BACKEND_CONCURRENCY: usize = 4;
const SERVICE_MS: u64 = 20;

pub async fn run(
    settings: &Settings,
    target: Target,
    peer: Option<&dyn Peer>,
    progress: Arc<AtomicU64>,
) -> Result<Run, LabError> {
    let mut stage = Stage::new(settings, "overload", target, 3).await?;
    let knobs = Knobs {
        latency: Some(LatencyKnob::Fixed {
            ms: SERVICE_MS as f64,
        }),
        max_concurrency: Some(PER_BACKEND_CONCURRENCY),
        ..Knobs::default()
    };
    stage.set_knobs(&[0, 1, 2], &knobs).await?;
    let capacity = (3 * PER_BACKEND_CONCURRENCY) as f64 * 1000.0 / SERVICE_MS as f64;
    let mut topo = stage.topology(&[0, 1, 2], Balance::LoadAware);
    topo.priority = Some(Priorities {
        critical_prefix: "/critical/".into(),
        per_server_concurrency: PER_BACKEND_CONCURRENCY as u32,
    });
    let addr = stage.start_proxy(peer, &topo).await?;

    let epoch = Instant::now();
    let group = |path: &str, share: f64| {
        let mut spec = LoadSpec::new(addr);
        spec.path = path.into();
        spec.mode = Mode::Open {
            rate: 2.0 * capacity * share,
        };
        spec.duration = settings.duration;
        spec.request_timeout = Duration::from_secs(5);
        spec.max_connections = 512;
        spec.epoch = epoch;
        spec
    };
    let critical = tokio::spawn(load::run(
        group("/critical/item", 0.2),
        Some(progress.clone()),
    ));
    let low = tokio::spawn(load::run(group("/low/item", 0.8), Some(progress)));
    // Saturation evidence: a backend seen with every slot busy mid-run.
    tokio::time::sleep(settings.duration / 2).await;
    let busy = stage
        .backend_stats()
        .await
        .iter()
        .flatten()
        .map(|s| s.in_service)
        .max()
        .unwrap_or(0);
    let critical = joined(critical.await)?;
    let low = joined(low.await)?;

    let mut run = Run::default();
    run.metrics.insert(
        "critical_success".into(),
        (percent(critical.ok, critical.sent) * 100.0).round() / 100.0,
    );
    let goodput = (critical.ok_per_s + low.ok_per_s) / capacity * 100.0;
    run.metrics
        .insert("goodput".into(), (goodput * 10.0).round() / 10.0);
    run.metrics.insert("low_p99_ms".into(), p99_ms(&low));
    run.notes.push(format!(
        "Capacity {capacity:.0} req/s (3 backends × {PER_BACKEND_CONCURRENCY} concurrent × {SERVICE_MS} ms); offered {:.0} req/s.",
        2.0 * capacity
    ));
    run.backend_requests = stage.backend_requests().await;
    run.fault = Some(Fault {
        what: format!("offered 2× capacity ({:.0} req/s)", 2.0 * capacity),
        at_s: 0.0,
        injected: true,
        seen: busy as usize >= PER_BACKEND_CONCURRENCY,
        evidence: format!(
            "mid-run, the busiest backend had {busy} of {PER_BACKEND_CONCURRENCY} slots in service"
        ),
    });
    run.groups.insert("critical".into(), critical);
    run.groups.insert("low".into(), low.clone());
    run.load = low;
    Ok(run)
}
