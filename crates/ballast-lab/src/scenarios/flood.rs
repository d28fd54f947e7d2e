//! Flood: five well-behaved clients (127.0.0.2-6) share the steady rate; a third of the way
//! in, a sixth client (127.0.0.9) starts sending twenty times the rate of each of them.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::env::{Settings, Stage};
use super::figures::{joined, percent, secs};
use crate::load::{self, LoadSpec, Mode};
use crate::peers::{Balance, Peer};
use crate::result::{Fault, LoadStats, Run, Target};
use crate::LabError;

const CLIENTS: u8 = 5;
const FLOOD_FACTOR: f64 = 20.0;

pub async fn run(
    settings: &Settings,
    target: Target,
    peer: Option<&dyn Peer>,
    progress: Arc<AtomicU64>,
) -> Result<Run, LabError> {
    let mut stage = Stage::new(settings, "flood", target, 3).await?;
    let per_client = settings.rate / f64::from(CLIENTS) / 2.0;
    let mut topo = stage.topology(&[0, 1, 2], Balance::RoundRobin);
    // Every proxy gets the same absolute per-client limit: 5× a normal client's rate.
    topo.flood_per_second = Some((per_client * 5.0).ceil() as u32);
    let addr = stage.start_proxy(peer, &topo).await?;
    let epoch = Instant::now();
    let mut normal = Vec::new();
    for i in 0..CLIENTS {
        let mut spec = LoadSpec::new(addr);
        spec.mode = Mode::Open { rate: per_client };
        spec.duration = settings.duration;
        spec.request_timeout = Duration::from_secs(5);
        spec.source_ip = Some(IpAddr::from([127, 0, 0, 2 + i]));
        spec.epoch = epoch;
        normal.push(tokio::spawn(load::run(spec, Some(progress.clone()))));
    }
    let fault_at = settings.duration / 3;
    tokio::time::sleep_until((epoch + fault_at).into()).await;
    let at = secs(epoch.elapsed());
    let mut spec = LoadSpec::new(addr);
    spec.mode = Mode::Open {
        rate: per_client * FLOOD_FACTOR,
    };
    spec.duration = settings.duration.saturating_sub(fault_at);
    spec.request_timeout = Duration::from_secs(5);
    spec.source_ip = Some(IpAddr::from([127, 0, 0, 9]));
    spec.epoch = epoch;
    let flooder = joined(tokio::spawn(load::run(spec, Some(progress))).await)?;

    let mut groups = BTreeMap::new();
    let (mut ok, mut sent) = (0, 0);
    let mut first: Option<LoadStats> = None;
    for (i, task) in normal.into_iter().enumerate() {
        let s = joined(task.await)?;
        ok += s.ok;
        sent += s.sent;
        groups.insert(format!("client 127.0.0.{}", 2 + i), s.clone());
        first.get_or_insert(s);
    }
    let mut run = Run::default();
    // Blocked: the first second in which the flooder got 429 or 403 answers.
    let blocked = flooder
        .timeline
        .iter()
        .find(|s| s.errors.status_4xx > 0)
        .map(|s| (f64::from(s.t) + 1.0 - at).max(0.0));
    match blocked {
        Some(b) => {
            run.metrics.insert("block_s".into(), b);
        }
        None => run
            .notes
            .push("The flooder was never blocked (no 4xx answers).".into()),
    }
    run.metrics.insert(
        "others_success".into(),
        (percent(ok, sent) * 100.0).round() / 100.0,
    );
    let each = if CLIENTS > 0 {
        sent / u64::from(CLIENTS)
    } else {
        0
    };
    run.backend_requests = stage.backend_requests().await;
    run.fault = Some(Fault {
        what: format!("client 127.0.0.9 floods at {FLOOD_FACTOR}× per-client rate"),
        at_s: at,
        injected: true,
        seen: flooder.sent as f64 >= 5.0 * each as f64,
        evidence: format!(
            "the flooder sent {} requests, each other client about {each}",
            flooder.sent
        ),
    });
    groups.insert("flooder 127.0.0.9".into(), flooder);
    run.groups = groups;
    run.load = first.unwrap_or_default();
    Ok(run)
}
