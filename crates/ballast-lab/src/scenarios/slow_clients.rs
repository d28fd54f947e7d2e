//! Slow clients: a third of the way in, hundreds of connections start sending their request
//! headers one byte at a time (slowloris) from another client address, while normal clients
//! keep their steady rate.

use std::net::IpAddr;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Instant;

use super::env::{open_loop, Settings, Stage};
use super::figures::{joined, percent, secs, window, worst_p99_ms};
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
    let mut stage = Stage::new(settings, "slow-clients", target, 3).await?;
    let topo = stage.topology(&[0, 1, 2], Balance::RoundRobin);
    let addr = stage.start_proxy(peer, &topo).await?;
    let epoch = Instant::now();
    let mut spec = open_loop(settings, addr, epoch);
    spec.source_ip = Some(IpAddr::from([127, 0, 0, 2]));
    let task = tokio::spawn(load::run(spec, Some(progress)));
    let fault_at = settings.duration / 3;
    tokio::time::sleep_until((epoch + fault_at).into()).await;

    let at = secs(epoch.elapsed());
    let count = if settings.quick { 100 } else { 500 };
    let slow = tokio::spawn(load::slow_clients(
        addr,
        count,
        settings.duration.saturating_sub(fault_at),
        Some(IpAddr::from([127, 0, 0, 3])),
    ));
    let stats = joined(task.await)?;
    let slow = slow
        .await
        .map_err(|e| LabError::Process(format!("slow clients task failed: {e}")))?;
    let (ok, err) = window(&stats.timeline, at);
    let mut run = Run::default();
    run.metrics.insert(
        "normal_success".into(),
        (percent(ok, ok + err) * 100.0).round() / 100.0,
    );
    run.metrics
        .insert("normal_p99_ms".into(), worst_p99_ms(&stats.timeline, at));
    run.metrics
        .insert("slow_cut".into(), slow.closed_by_server as f64);
    run.notes.push(format!(
        "Slow connections: {} opened (each one the proxy closes is reopened), {} closed by the proxy, {} open at the end. Normal clients' p99 is the worst per-second p99 after the fault.",
        slow.opened, slow.closed_by_server, slow.open_at_end
    ));
    run.backend_requests = stage.backend_requests().await;
    run.fault = Some(Fault {
        what: format!("{count} slowloris connections from 127.0.0.3"),
        at_s: at,
        injected: true,
        seen: slow.opened as usize >= count,
        evidence: format!("{} slow connections were opened", slow.opened),
    });
    run.load = stats;
    Ok(run)
}
