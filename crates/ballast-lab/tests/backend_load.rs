//! The lab backend and the load generator against each other, over real sockets.
//!
//! Bounds on counts are generous on purpose: the machine running the tests is shared, so
//! nothing here asserts on speed.

use std::collections::BTreeSet;
use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ballast_lab::backend::{self, BackendControl, Knobs, LatencyKnob};
use ballast_lab::load::{self, LoadSpec, Mode, Protocol};
use ballast_lab::result::LoadStats;
use ballast_lab::LabError;
use bytes::Bytes;
use http::{HeaderMap, Method, Request};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::{TcpListener, TcpSocket, TcpStream};

const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// Starts an in-process backend on a free port.
async fn start_backend(name: &str) -> SocketAddr {
    let listener = TcpListener::bind((LOCALHOST, 0)).await.expect("bind");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(backend::serve(listener, name.to_owned()));
    addr
}

/// A port nothing listens on.
async fn closed_port() -> SocketAddr {
    let listener = TcpListener::bind((LOCALHOST, 0)).await.expect("bind");
    listener.local_addr().expect("local addr")
}

struct Answer {
    status: u16,
    headers: HeaderMap,
    body: Bytes,
}

/// One HTTP/1.1 request on a fresh connection (from `source` when given).
async fn call_from(
    addr: SocketAddr,
    source: Option<IpAddr>,
    method: Method,
    path: &str,
    body: &str,
) -> Result<Answer, String> {
    let stream = match source {
        None => TcpStream::connect(addr).await.map_err(|e| e.to_string())?,
        Some(ip) => {
            let socket = TcpSocket::new_v4().map_err(|e| e.to_string())?;
            socket
                .bind(SocketAddr::new(ip, 0))
                .map_err(|e| e.to_string())?;
            socket.connect(addr).await.map_err(|e| e.to_string())?
        }
    };
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr.to_string())
        .body(Full::new(Bytes::from(body.to_owned())))
        .map_err(|e| e.to_string())?;
    let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    Ok(Answer {
        status,
        headers,
        body,
    })
}

async fn get(addr: SocketAddr, path: &str) -> Answer {
    within(
        Duration::from_secs(10),
        call_from(addr, None, Method::GET, path, ""),
    )
    .await
    .unwrap_or_else(|e| panic!("GET {path}: {e}"))
}

async fn within<T>(
    limit: Duration,
    f: impl std::future::Future<Output = Result<T, String>>,
) -> Result<T, String> {
    tokio::time::timeout(limit, f)
        .await
        .map_err(|_| format!("no answer within {limit:?}"))?
}

async fn set(ctl: &BackendControl, knobs: Knobs) {
    ctl.set_knobs(&knobs).await.expect("set knobs");
}

fn assert_timeline_contiguous(stats: &LoadStats) {
    assert!(!stats.timeline.is_empty(), "empty timeline: {stats:?}");
    for pair in stats.timeline.windows(2) {
        assert_eq!(pair[0].t + 1, pair[1].t, "timeline has a gap: {stats:?}");
    }
}

async fn run_load(spec: LoadSpec) -> LoadStats {
    load::run(spec, None).await.expect("load run")
}

// ---------------------------------------------------------------------------------------
// Backend

#[tokio::test]
async fn backend_default_answer_and_headers() {
    let addr = start_backend("b1").await;
    let a = get(addr, "/anything?x=1").await;
    assert_eq!(a.status, 200);
    assert_eq!(&a.body[..], b"ok\n");
    assert_eq!(
        a.headers.get("x-backend").and_then(|v| v.to_str().ok()),
        Some("b1")
    );
    assert_eq!(
        a.headers.get("x-lab-peer").and_then(|v| v.to_str().ok()),
        Some("127.0.0.1")
    );
    let h = get(addr, "/healthz").await;
    assert_eq!((h.status, &h.body[..]), (200, &b"ok"[..]));
}

#[tokio::test]
async fn backend_knobs_change_responses() {
    let addr = start_backend("b1").await;
    let ctl = BackendControl::new(addr);
    ctl.wait_ready(Duration::from_secs(5)).await.expect("ready");

    set(
        &ctl,
        Knobs {
            error_ratio: 1.0,
            error_status: 500,
            ..Knobs::default()
        },
    )
    .await;
    for _ in 0..10 {
        assert_eq!(get(addr, "/").await.status, 500);
    }
    // Health checks are not application requests: no injected errors there.
    assert_eq!(get(addr, "/healthz").await.status, 200);

    set(
        &ctl,
        Knobs {
            size: 10_000,
            ..Knobs::default()
        },
    )
    .await;
    let a = get(addr, "/big").await;
    assert_eq!((a.status, a.body.len()), (200, 10_000));
    assert!(a.body.starts_with(b"ok\nok\n"));

    set(
        &ctl,
        Knobs {
            health_fail: true,
            ..Knobs::default()
        },
    )
    .await;
    assert_eq!(get(addr, "/healthz").await.status, 503);
    assert_eq!(get(addr, "/").await.status, 200);

    let knobs = Knobs {
        latency: Some(LatencyKnob::Uniform {
            min_ms: 1.0,
            max_ms: 3.0,
        }),
        max_concurrency: Some(8),
        ..Knobs::default()
    };
    set(&ctl, knobs.clone()).await;
    assert_eq!(ctl.knobs().await.expect("knobs"), knobs);
    assert_eq!(get(addr, "/").await.status, 200);
}

#[tokio::test]
async fn backend_counts_app_requests_not_health_checks() {
    let addr = start_backend("counted").await;
    let ctl = BackendControl::new(addr);
    for _ in 0..3 {
        get(addr, "/").await;
    }
    for _ in 0..2 {
        get(addr, "/healthz").await;
    }
    ctl.stats().await.expect("stats");
    ctl.knobs().await.expect("knobs");
    let s = ctl.stats().await.expect("stats");
    assert_eq!(s.name, "counted");
    assert_eq!((s.requests, s.health_checks, s.errors_sent), (3, 2, 0));
    assert_eq!(s.in_service, 0);

    set(
        &ctl,
        Knobs {
            error_ratio: 1.0,
            ..Knobs::default()
        },
    )
    .await;
    assert_eq!(get(addr, "/").await.status, 503);
    let s = ctl.stats().await.expect("stats");
    assert_eq!((s.requests, s.errors_sent), (4, 1));

    ctl.reset().await.expect("reset");
    let s = ctl.stats().await.expect("stats");
    assert_eq!((s.requests, s.health_checks, s.errors_sent), (0, 0, 0));
}

#[tokio::test]
async fn backend_reads_and_discards_request_bodies() {
    let addr = start_backend("b1").await;
    let big = "x".repeat(300_000);
    let a = within(
        Duration::from_secs(10),
        call_from(addr, None, Method::POST, "/upload", &big),
    )
    .await
    .expect("post");
    assert_eq!((a.status, &a.body[..]), (200, &b"ok\n"[..]));
}

#[tokio::test]
async fn backend_hang_holds_requests_while_control_answers() {
    let addr = start_backend("hung").await;
    let ctl = BackendControl::new(addr);
    set(
        &ctl,
        Knobs {
            hang: true,
            ..Knobs::default()
        },
    )
    .await;

    let short = tokio::time::timeout(Duration::from_millis(300), get(addr, "/")).await;
    assert!(short.is_err(), "a hung backend answered");
    let health = tokio::time::timeout(Duration::from_millis(300), get(addr, "/healthz")).await;
    assert!(health.is_err(), "a hung backend answered its health check");

    // A request waiting while the harness un-hangs the backend gets its answer.
    let waiting = tokio::spawn(async move { get(addr, "/waiting").await.status });
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let s = ctl.stats().await.expect("stats while hung");
        if s.requests >= 2 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the waiting request never arrived"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(ctl.knobs().await.expect("knobs while hung").hang);

    set(&ctl, Knobs::default()).await;
    let status = tokio::time::timeout(Duration::from_secs(10), waiting)
        .await
        .expect("the waiting request was not released")
        .expect("join");
    assert_eq!(status, 200);
    assert_eq!(get(addr, "/").await.status, 200);
    assert_eq!(get(addr, "/healthz").await.status, 200);
}

#[tokio::test]
async fn backend_refuses_bad_knobs() {
    let addr = start_backend("b1").await;
    let ctl = BackendControl::new(addr);
    for bad in [
        "{not json",
        r#"{"latency_ms": 5}"#,
        r#"{"error_ratio": 2}"#,
        r#"{"latency": {"kind": "fixed"}}"#,
        "",
    ] {
        let a = within(
            Duration::from_secs(10),
            call_from(addr, None, Method::PUT, "/_lab/knobs", bad),
        )
        .await
        .expect("put");
        assert_eq!(a.status, 400, "{bad:?} accepted");
        let msg = String::from_utf8_lossy(&a.body);
        assert!(
            msg.contains("knobs") || msg.contains("error_ratio"),
            "{msg}"
        );
    }
    assert_eq!(ctl.knobs().await.expect("knobs"), Knobs::default());
    // The client refuses invalid knobs before sending them.
    let err = ctl
        .set_knobs(&Knobs {
            error_ratio: -1.0,
            ..Knobs::default()
        })
        .await;
    assert!(matches!(err, Err(LabError::Usage(_))), "{err:?}");
    // Unknown control endpoints and wrong methods are answered, not crashed on.
    assert_eq!(get(addr, "/_lab/nope").await.status, 404);
    assert_eq!(get(addr, "/_lab/reset").await.status, 405);
}

#[tokio::test]
async fn backend_max_concurrency_queues_the_rest() {
    let addr = start_backend("narrow").await;
    let ctl = BackendControl::new(addr);
    set(
        &ctl,
        Knobs {
            latency: Some(LatencyKnob::Fixed { ms: 400.0 }),
            max_concurrency: Some(1),
            ..Knobs::default()
        },
    )
    .await;
    let clients: Vec<_> = (0..3)
        .map(|_| tokio::spawn(async move { get(addr, "/").await.status }))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut saw_queue = false;
    while Instant::now() < deadline {
        let s = ctl.stats().await.expect("stats");
        assert!(s.in_service <= 1, "max_concurrency 1 exceeded: {s:?}");
        if s.queued >= 1 && s.in_service == 1 {
            saw_queue = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(saw_queue, "no request ever waited");
    for c in clients {
        assert_eq!(c.await.expect("join"), 200);
    }
    let s = ctl.stats().await.expect("stats");
    assert_eq!((s.requests, s.in_service, s.queued), (3, 0, 0));
}

#[tokio::test]
async fn backend_control_client_reports_failures() {
    let ctl = BackendControl::new(closed_port().await);
    let err = ctl.wait_ready(Duration::from_millis(200)).await;
    assert!(matches!(err, Err(LabError::Http { .. })), "{err:?}");
    assert!(matches!(ctl.stats().await, Err(LabError::Http { .. })));
    // Nothing to crash: that is an error, not a success.
    assert!(matches!(ctl.crash().await, Err(LabError::Http { .. })));
}

#[tokio::test]
async fn backend_shows_the_client_address() {
    let addr = start_backend("b1").await;
    let a = within(
        Duration::from_secs(10),
        call_from(
            addr,
            Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3))),
            Method::GET,
            "/",
            "",
        ),
    )
    .await
    .expect("get from 127.0.0.3");
    assert_eq!(
        a.headers.get("x-lab-peer").and_then(|v| v.to_str().ok()),
        Some("127.0.0.3")
    );
}

// ---------------------------------------------------------------------------------------
// Load generator

#[tokio::test]
async fn closed_loop_against_backend() {
    let addr = start_backend("b1").await;
    let progress = Arc::new(AtomicU64::new(0));
    let spec = LoadSpec::new(addr)
        .closed(4)
        .duration(Duration::from_secs(1));
    let s = load::run(spec, Some(progress.clone()))
        .await
        .expect("load run");
    assert!(s.ok > 0, "{s:?}");
    assert_eq!(s.errors.total(), 0, "{s:?}");
    assert_eq!(s.sent, s.ok);
    assert_eq!(s.statuses.keys().copied().collect::<Vec<_>>(), vec![200]);
    assert_eq!(progress.load(Relaxed), s.sent);
    assert!(s.duration_s > 0.5 && s.ok_per_s > 0.0, "{s:?}");
    assert!(s.latency.p50_us > 0 && s.latency.max_us >= s.latency.p99_us);
    assert_timeline_contiguous(&s);
    assert_eq!(s.timeline.iter().map(|x| x.ok).sum::<u64>(), s.ok);
    let backend = BackendControl::new(addr).stats().await.expect("stats");
    assert_eq!(backend.requests, s.sent);
}

#[tokio::test]
async fn open_loop_keeps_its_rate() {
    let addr = start_backend("b1").await;
    let epoch = Instant::now();
    let spec = LoadSpec::new(addr)
        .open(200.0)
        .duration(Duration::from_secs(2))
        .epoch(epoch);
    let s = run_load(spec).await;
    assert!((300..=500).contains(&s.sent), "sent {}: {s:?}", s.sent);
    assert_eq!(s.ok, s.sent, "{s:?}");
    assert_eq!(s.errors.total(), 0);
    assert_timeline_contiguous(&s);
    assert_eq!(s.timeline.first().map(|x| x.t), Some(0));
    assert_eq!(s.timeline.iter().map(|x| x.ok).sum::<u64>(), s.ok);
}

#[tokio::test]
async fn open_loop_counts_injected_errors() {
    let addr = start_backend("flaky").await;
    set(
        &BackendControl::new(addr),
        Knobs {
            error_ratio: 0.5,
            ..Knobs::default()
        },
    )
    .await;
    let spec = LoadSpec::new(addr)
        .open(200.0)
        .duration(Duration::from_secs(1));
    let s = run_load(spec).await;
    let share = s.errors.status_5xx as f64 / s.sent as f64;
    assert!((0.2..=0.8).contains(&share), "5xx share {share}: {s:?}");
    assert_eq!(s.ok + s.errors.status_5xx, s.sent, "{s:?}");
    assert_eq!(s.statuses.get(&503).copied(), Some(s.errors.status_5xx));
}

#[tokio::test]
async fn closed_port_gives_connect_errors() {
    let addr = closed_port().await;
    for mode in [Mode::Open { rate: 50.0 }, Mode::Closed { connections: 2 }] {
        let mut spec = LoadSpec::new(addr).duration(Duration::from_millis(500));
        spec.mode = mode;
        let s = run_load(spec).await;
        assert!(s.errors.connect > 0, "{mode:?}: {s:?}");
        assert_eq!(s.ok, 0);
        assert_eq!(s.errors.total(), s.sent, "{mode:?}: {s:?}");
        assert_timeline_contiguous(&s);
    }
}

#[tokio::test]
async fn hung_backend_gives_timeouts() {
    let addr = start_backend("hung").await;
    let ctl = BackendControl::new(addr);
    set(
        &ctl,
        Knobs {
            hang: true,
            ..Knobs::default()
        },
    )
    .await;
    for mode in [Mode::Open { rate: 20.0 }, Mode::Closed { connections: 2 }] {
        let mut spec = LoadSpec::new(addr)
            .duration(Duration::from_secs(1))
            .request_timeout(Duration::from_millis(300));
        spec.mode = mode;
        let s = run_load(spec).await;
        assert!(s.errors.timeout > 0, "{mode:?}: {s:?}");
        assert_eq!(s.ok, 0, "{mode:?}: {s:?}");
        assert_eq!(s.errors.total(), s.sent, "{mode:?}: {s:?}");
        // No response completed, so no latency figures.
        assert_eq!(s.latency.max_us, 0);
    }
    // Control still answers, and un-hanging restores service.
    set(&ctl, Knobs::default()).await;
    let s = run_load(
        LoadSpec::new(addr)
            .closed(1)
            .duration(Duration::from_millis(300)),
    )
    .await;
    assert!(s.ok > 0 && s.errors.total() == 0, "{s:?}");
}

#[tokio::test]
async fn open_loop_queues_when_connections_run_out() {
    // One connection, 50 ms per request: capacity 20 req/s for an offered 60 req/s. Nothing
    // may be dropped; the excess waits (and the latency shows it) or times out.
    let addr = start_backend("slow").await;
    set(
        &BackendControl::new(addr),
        Knobs {
            latency: Some(LatencyKnob::Fixed { ms: 50.0 }),
            ..Knobs::default()
        },
    )
    .await;
    let spec = LoadSpec::new(addr)
        .open(60.0)
        .max_connections(1)
        .duration(Duration::from_secs(1))
        .request_timeout(Duration::from_secs(5));
    let s = run_load(spec).await;
    assert_eq!(s.ok + s.errors.total(), s.sent, "{s:?}");
    assert!(s.sent >= 40, "{s:?}");
    assert_eq!(s.errors.total(), 0, "{s:?}");
    // The last requests waited for the earlier ones: far more than one service time.
    assert!(s.latency.max_us >= 500_000, "{s:?}");
}

#[tokio::test]
async fn h2c_against_backend() {
    let addr = start_backend("b1").await;
    let closed = run_load(
        LoadSpec::new(addr)
            .protocol(Protocol::H2c)
            .closed(2)
            .duration(Duration::from_millis(500)),
    )
    .await;
    assert!(closed.ok > 0 && closed.errors.total() == 0, "{closed:?}");
    let open = run_load(
        LoadSpec::new(addr)
            .protocol(Protocol::H2c)
            .open(100.0)
            .duration(Duration::from_secs(1)),
    )
    .await;
    assert!(open.sent >= 50, "{open:?}");
    assert_eq!(open.ok, open.sent, "{open:?}");
}

/// A server that answers 204 and remembers every client address it saw.
async fn recording_server() -> (SocketAddr, Arc<Mutex<BTreeSet<IpAddr>>>) {
    let listener = TcpListener::bind((LOCALHOST, 0)).await.expect("bind");
    let addr = listener.local_addr().expect("local addr");
    let seen = Arc::new(Mutex::new(BTreeSet::new()));
    let record = seen.clone();
    tokio::spawn(async move {
        while let Ok((stream, peer)) = listener.accept().await {
            if let Ok(mut s) = record.lock() {
                s.insert(peer.ip());
            }
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(|_req| async {
                    let mut r = http::Response::new(Full::new(Bytes::new()));
                    *r.status_mut() = http::StatusCode::NO_CONTENT;
                    Ok::<_, Infallible>(r)
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    (addr, seen)
}

#[tokio::test]
async fn source_ip_is_what_the_server_sees() {
    let (addr, seen) = recording_server().await;
    let source = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
    for spec in [
        LoadSpec::new(addr).closed(2),
        LoadSpec::new(addr).open(50.0),
        LoadSpec::new(addr).closed(1).protocol(Protocol::H2c),
    ] {
        let s = run_load(spec.source_ip(source).duration(Duration::from_millis(300))).await;
        assert!(s.ok > 0 && s.errors.total() == 0, "{s:?}");
        assert_eq!(s.statuses.keys().copied().collect::<Vec<_>>(), vec![204]);
    }
    let seen = seen.lock().expect("lock").clone();
    assert_eq!(seen, BTreeSet::from([source]));
}

#[tokio::test]
async fn bad_specs_are_refused() {
    let addr = closed_port().await;
    for spec in [
        LoadSpec::new(addr).open(0.0),
        LoadSpec::new(addr).open(f64::NAN),
        LoadSpec::new(addr).closed(0),
        LoadSpec::new(addr).path("no-slash"),
        LoadSpec::new(addr).duration(Duration::ZERO),
        LoadSpec::new(addr).max_connections(0),
        LoadSpec::new(addr).source_ip("::1".parse().expect("ip")),
    ] {
        let r = load::run(spec.clone(), None).await;
        assert!(matches!(r, Err(LabError::Usage(_))), "{spec:?}: {r:?}");
    }
}

#[tokio::test]
async fn slow_clients_hold_connections() {
    let addr = start_backend("b1").await;
    // Each client starts within the first second; the backend has no header timeout, so
    // all of them are still trickling at the end.
    let s = load::slow_clients(addr, 5, Duration::from_millis(2000), None).await;
    assert_eq!(s.opened, 5, "{s:?}");
    assert_eq!(s.open_at_end, 5, "{s:?}");
    assert_eq!((s.closed_by_server, s.connect_errors), (0, 0), "{s:?}");
    // The backend never saw a complete request from them.
    let stats = BackendControl::new(addr).stats().await.expect("stats");
    assert_eq!(stats.requests, 0);
}

#[tokio::test]
async fn slow_clients_reopen_what_the_server_closes() {
    // A server that closes every connection at once.
    let listener = TcpListener::bind((LOCALHOST, 0)).await.expect("bind");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            drop(stream);
        }
    });
    let s = load::slow_clients(addr, 2, Duration::from_millis(2500), None).await;
    assert!(s.closed_by_server >= 2, "{s:?}");
    assert!(s.opened > 2, "{s:?}");
    assert_eq!(s.open_at_end, 0, "{s:?}");
}
