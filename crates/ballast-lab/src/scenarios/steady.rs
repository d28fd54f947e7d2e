//! Baseline: throughput and latency at equal CPU, closed loop, no fault.

use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Instant;

use super::env::{Settings, Stage};
use super::figures::ratio;
use crate::load::{self, LoadSpec, Mode};
use crate::peers::{Balance, Peer};
use crate::result::{Run, Target};
use crate::LabError;

/// Client connections of the closed loop.
const CONNECTIONS: usize = 64;

pub async fn baseline(
    settings: &Settings,
    target: Target,
    peer: Option<&dyn Peer>,
    progress: Arc<AtomicU64>,
) -> Result<Run, LabError> {
    let mut stage = Stage::new(settings, "baseline", target, 3).await?;
    let topo = stage.topology(&[0, 1, 2], Balance::RoundRobin);
    let addr = stage.start_proxy(peer, &topo).await?;
    // Warm-up: connections, pools and caches, not measured.
    let mut warm = LoadSpec::new(addr);
    warm.mode = Mode::Closed {
        connections: CONNECTIONS,
    };
    warm.duration = settings.duration.min(std::time::Duration::from_secs(2)) / 2;
    load::run(warm, None).await?;

    let before_backend = stage.backend_requests().await;
    let cpu0 = stage.proxy_cpu();
    let mut spec = LoadSpec::new(addr);
    spec.mode = Mode::Closed {
        connections: CONNECTIONS,
    };
    spec.duration = settings.duration;
    spec.epoch = Instant::now();
    let stats = load::run(spec, Some(progress)).await?;
    let cpu = stage.proxy_cpu() - cpu0;
    let after_backend = stage.backend_requests().await;

    let mut run = Run {
        backend_requests: after_backend.saturating_sub(before_backend),
        ..Run::default()
    };
    if peer.is_some() {
        run.metrics
            .insert("ok_per_cpu_s".into(), ratio(stats.ok as f64, cpu).round());
        run.metrics.insert(
            "proxy_cpu".into(),
            (ratio(cpu, stats.duration_s) * 1000.0).round() / 10.0,
        );
    } else {
        run.notes
            .push("No proxy: load goes straight to backend b1 (reference, not a peer).".into());
    }
    run.load = stats;
    Ok(run)
}
