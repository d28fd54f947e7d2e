//! Idle upstream connections are closed within the pool's `idle_timeout` whether or not
//! requests arrive (the gateway's sweeper), counted at the backend: a small HTTP server in the
//! test process that knows how many connections it has open. Also after a reload that shortens
//! the timeout (the sweeper follows the config in force).

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use http_body_util::Full;
use hyper_util::rt::TokioIo;

/// An HTTP/1.1 keep-alive server that answers every request after `delay` and counts the
/// connections it has open (and the most it ever had).
struct CountingServer {
    addr: SocketAddr,
    open: Arc<AtomicUsize>,
    peak: Arc<AtomicUsize>,
    accept: tokio::task::JoinHandle<()>,
}

/// Decrements the open count when a connection's task ends, however it ends.
struct Open(Arc<AtomicUsize>);

impl Drop for Open {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl CountingServer {
    async fn start(delay: Duration) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (open, peak) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let (o, p) = (open.clone(), peak.clone());
        let accept = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let now = o.fetch_add(1, Ordering::SeqCst) + 1;
                p.fetch_max(now, Ordering::SeqCst);
                let guard = Open(o.clone());
                let svc = hyper::service::service_fn(
                    move |_req: http::Request<hyper::body::Incoming>| async move {
                        tokio::time::sleep(delay).await;
                        Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(
                            Bytes::from_static(b"ok\n"),
                        )))
                    },
                );
                tokio::spawn(async move {
                    let _guard = guard;
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        CountingServer {
            addr,
            open,
            peak,
            accept,
        }
    }

    fn open(&self) -> usize {
        self.open.load(Ordering::SeqCst)
    }
}

impl Drop for CountingServer {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

fn config(port: u16, server: SocketAddr, idle_timeout: &str) -> String {
    format!(
        // A generous connect timeout: the burst opens up to 200 upstream connections at once on a
        // shared 2-core machine, and this test is about closing them, not about opening them.
        "{}\n[[route]]\nupstream = \"app\"\ntimeout = {{ connect = \"5s\" }}\n[[upstream]]\nname = \"app\"\npool = {{ idle_timeout = \"{idle_timeout}\" }}\nservers = [{{ addr = \"{server}\" }}]\n",
        preamble(port)
    )
}

/// `clients` concurrent client connections, each sending `per_client` requests; all must
/// succeed.
async fn burst(addr: SocketAddr, clients: usize, per_client: usize) {
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            tokio::spawn(async move {
                let mut c = Conn::open(addr).await.expect("connect to the gateway");
                for _ in 0..per_client {
                    let r = c.get("/").await.expect("request through the gateway");
                    assert_eq!(r.status, 200);
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("client task");
    }
}

/// Runs a burst, then measures how long the backend keeps connections from the gateway open
/// with no traffic at all. Returns (connections open right after the burst, time to zero).
async fn idle_connections_close(s: &CountingServer, addr: SocketAddr) -> (usize, Duration) {
    burst(addr, 200, 3).await;
    let after = s.open();
    let quiet = Instant::now();
    wait_for(
        "the backend's connections from the gateway to close",
        Duration::from_secs(30),
        || s.open() == 0,
    )
    .await;
    (after, quiet.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_upstream_connections_close_without_traffic() {
    let s = CountingServer::start(Duration::from_millis(100)).await;
    let port = free_port();
    let gw = Gateway::start("pool-idle", &config(port, s.addr, "2s"));
    let addr = local(port);

    let (after, took) = idle_connections_close(&s, addr).await;
    let peak = s.peak.load(Ordering::SeqCst);
    eprintln!("peak {peak}, open after the burst {after}, all closed after {took:?}");
    assert!(
        peak >= 50,
        "the burst should have opened many upstream connections: {peak}"
    );
    assert!(
        after >= 50,
        "idle connections stay pooled right after the burst: {after}"
    );
    // idle_timeout + 1 s, plus slack for a noisy machine (before the sweeper: never).
    assert!(
        took <= Duration::from_secs(2 + 1) + Duration::from_millis(1500),
        "the backend still had connections from the gateway {took:?} after the burst"
    );
    assert!(
        took >= Duration::from_millis(1500),
        "closed after {took:?}: sooner than the 2 s idle timeout allows"
    );

    // A reload to a shorter timeout: the sweeper follows the config in force.
    gw.write_config(&config(port, s.addr, "1s"));
    let (code, body) = gw.admin_post("/api/v1/reload");
    assert_eq!(code, 200, "{body}");
    let (after, took) = idle_connections_close(&s, addr).await;
    eprintln!("after the reload: open after the burst {after}, all closed after {took:?}");
    // With a 1 s timeout, connections the burst stopped using early may already be gone when
    // a slow machine finishes it (seen in CI: 40 of ~200); the last ones are still pooled.
    assert!(
        after > 0,
        "the burst's last connections stay pooled: {after}"
    );
    assert!(
        took <= Duration::from_secs(1 + 1) + Duration::from_millis(1500),
        "after the reload, connections stayed {took:?}"
    );
}
