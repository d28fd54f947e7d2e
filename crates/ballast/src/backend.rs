//! The demo backend: a small HTTP server run as its own process by `ballast demo` and by the
//! tests, so it can really be killed. Every answer carries `x-backend: NAME`.
//!
//! - `/healthz`: 200 `ok`, or 503 after `POST /_ctl/health/fail` (until `/_ctl/health/ok`)
//! - `/status/N`: answers status N; `?no-retry` adds `Ballast-No-Retry: 1`, `?retry-after=S`
//!   adds `Retry-After: S`
//! - `POST /_ctl/fail/N`: from now on every application request answers status N (`0` stops)
//! - `/_ctl/app-count`: application requests so far (not health checks, not `/_ctl`)
//! - `/slow/MS`: answers after MS milliseconds
//! - `/cacheable...` (any path below it too): `count=N from NAME` where N counts this backend's application requests (this
//!   one included); `?max-age=S` sends `Cache-Control: max-age=S`, `?cc=TEXT` sends
//!   `Cache-Control: TEXT` (e.g. `cc=no-store`), `?vary=NAME` sends `Vary: NAME` and adds the
//!   request's value of that header to the body, `?etag=V` sends `ETag: "V"`, `?size=N` pads
//!   the body to N bytes
//! - `/headers`: the request headers as JSON
//! - `/echo`: streams the request body back
//! - `/consume`: reads the whole request body, then answers with its length
//! - `/_ctl/count`: requests served so far
//! - `POST /_ctl/notify`: a webhook receiver for the demo: prints the notification's title
//! - an `Upgrade` request: `101`, then echoes bytes on the upgraded connection
//! - anything else: `hello from NAME`

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use http::{header, Request, Response, StatusCode};
use http_body_util::{combinators::BoxBody, BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;

struct State {
    name: String,
    healthy: AtomicBool,
    served: AtomicU64,
    /// Application requests (not `/healthz`, not `/_ctl/...`).
    app: AtomicU64,
    /// Status forced on every application request; 0 = none.
    forced: std::sync::atomic::AtomicU16,
}

type Body = BoxBody<Bytes, hyper::Error>;

fn text(status: StatusCode, s: impl Into<Bytes>) -> Response<Body> {
    let mut r = Response::new(
        Full::new(s.into())
            .map_err(|n: Infallible| match n {})
            .boxed(),
    );
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain"),
    );
    r
}

async fn handle(mut req: Request<Incoming>, st: Arc<State>) -> Result<Response<Body>, Infallible> {
    st.served.fetch_add(1, Relaxed);
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let control = path == "/healthz" || path.starts_with("/_ctl/");
    if !control {
        st.app.fetch_add(1, Relaxed);
    }
    let forced = st.forced.load(Relaxed);
    let mut resp = if !control && forced != 0 {
        let status = StatusCode::from_u16(forced).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        text(status, format!("forced status {forced}\n"))
    } else if req.headers().contains_key(header::UPGRADE) {
        let on = hyper::upgrade::on(&mut req);
        tokio::spawn(async move {
            if let Ok(up) = on.await {
                let (mut r, mut w) = tokio::io::split(TokioIo::new(up));
                let _ = tokio::io::copy(&mut r, &mut w).await;
            }
        });
        let mut r = text(StatusCode::SWITCHING_PROTOCOLS, "");
        r.headers_mut().insert(
            header::CONNECTION,
            http::HeaderValue::from_static("upgrade"),
        );
        let proto = req.headers()[header::UPGRADE].clone();
        r.headers_mut().insert(header::UPGRADE, proto);
        r
    } else if path == "/healthz" {
        if st.healthy.load(Relaxed) {
            text(StatusCode::OK, "ok\n")
        } else {
            text(StatusCode::SERVICE_UNAVAILABLE, "failing\n")
        }
    } else if path == "/_ctl/health/fail" || path == "/_ctl/health/ok" {
        st.healthy.store(path.ends_with("/ok"), Relaxed);
        text(StatusCode::OK, "done\n")
    } else if path == "/_ctl/count" {
        text(StatusCode::OK, st.served.load(Relaxed).to_string())
    } else if path == "/_ctl/app-count" {
        text(StatusCode::OK, st.app.load(Relaxed).to_string())
    } else if let Some(code) = path.strip_prefix("/_ctl/fail/") {
        st.forced.store(code.parse().unwrap_or(0), Relaxed);
        text(StatusCode::OK, "done\n")
    } else if let Some(code) = path.strip_prefix("/status/") {
        let status = code
            .parse::<u16>()
            .ok()
            .and_then(|c| StatusCode::from_u16(c).ok())
            .unwrap_or(StatusCode::BAD_REQUEST);
        let mut r = text(status, format!("status {}\n", status.as_u16()));
        for item in query.split('&') {
            if item == "no-retry" {
                r.headers_mut()
                    .insert("ballast-no-retry", http::HeaderValue::from_static("1"));
            } else if let Some(v) = item.strip_prefix("retry-after=") {
                if let Ok(v) = http::HeaderValue::from_str(v) {
                    r.headers_mut().insert(header::RETRY_AFTER, v);
                }
            }
        }
        r
    } else if let Some(ms) = path.strip_prefix("/slow/") {
        tokio::time::sleep(Duration::from_millis(ms.parse().unwrap_or(100))).await;
        text(StatusCode::OK, format!("slow hello from {}\n", st.name))
    } else if path.starts_with("/cacheable") {
        let n = st.app.load(Relaxed);
        let mut body = format!("count={n} from {}", st.name);
        let mut r_headers = http::HeaderMap::new();
        let mut size = 0;
        for item in query.split('&') {
            let (k, v) = item.split_once('=').unwrap_or((item, ""));
            let cc = match k {
                "max-age" => Some(format!("max-age={v}")),
                "cc" => Some(v.to_string()),
                _ => None,
            };
            if let Some(v) = cc.and_then(|c| http::HeaderValue::from_str(&c).ok()) {
                r_headers.insert(header::CACHE_CONTROL, v);
            }
            if k == "vary" {
                let seen = req.headers().get(v).and_then(|h| h.to_str().ok());
                body.push_str(&format!(" {v}={}", seen.unwrap_or("-")));
                if let Ok(v) = http::HeaderValue::from_str(v) {
                    r_headers.insert(header::VARY, v);
                }
            }
            if k == "etag" {
                if let Ok(v) = http::HeaderValue::from_str(&format!("\"{v}\"")) {
                    r_headers.insert(header::ETAG, v);
                }
            }
            if k == "size" {
                size = v.parse().unwrap_or(0);
            }
        }
        body.push('\n');
        if body.len() < size {
            body.push_str(&".".repeat(size - body.len()));
        }
        let mut r = text(StatusCode::OK, body);
        r.headers_mut().extend(r_headers);
        r
    } else if path == "/headers" {
        let map: serde_json::Map<String, serde_json::Value> = req
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.to_string(),
                    serde_json::Value::String(String::from_utf8_lossy(v.as_bytes()).into()),
                )
            })
            .collect();
        text(StatusCode::OK, serde_json::Value::Object(map).to_string())
    } else if path == "/_ctl/notify" {
        // The demo's webhook receiver: prints each notification's title, as a chat would.
        match req.into_body().collect().await {
            Ok(b) => {
                let body = b.to_bytes();
                let title = serde_json::from_slice::<serde_json::Value>(&body)
                    .ok()
                    .and_then(|v| v.get("title")?.as_str().map(str::to_string))
                    .unwrap_or_else(|| format!("{} bytes, not a Ballast webhook", body.len()));
                eprintln!("[{} received a notification] {title}", st.name);
                text(StatusCode::OK, "ok\n")
            }
            Err(_) => text(StatusCode::BAD_REQUEST, "body aborted\n"),
        }
    } else if path == "/consume" {
        // Reads the whole body before answering (as most application servers do).
        match req.into_body().collect().await {
            Ok(b) => text(StatusCode::OK, format!("{}\n", b.to_bytes().len())),
            Err(_) => text(StatusCode::BAD_REQUEST, "body aborted\n"),
        }
    } else if path == "/echo" {
        let mut r = Response::new(req.into_body().boxed());
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/octet-stream"),
        );
        r
    } else {
        text(StatusCode::OK, format!("hello from {}\n", st.name))
    };
    if let Ok(v) = http::HeaderValue::from_str(&st.name) {
        resp.headers_mut().insert("x-backend", v);
    }
    Ok(resp)
}

/// Serves until killed.
/// Starts the backend as a detached process (its own session, no terminal), writes its pid to
/// `pid_file` and returns once it accepts connections: what a service manager's start does,
/// so the demo's restart remedy has a command to run.
pub fn detach(listen: &str, name: &str, pid_file: &std::path::Path) -> anyhow::Result<()> {
    use std::os::unix::process::CommandExt;
    let exe = std::env::current_exe().context("cannot find the ballast executable")?;
    let mut cmd = std::process::Command::new(exe);
    cmd.args(["backend", "--listen", listen, "--name", name])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    // SAFETY: setsid(2) is async-signal-safe and touches no memory of this process.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let child = cmd
        .spawn()
        .with_context(|| format!("cannot start backend {name}"))?;
    std::fs::write(pid_file, format!("{}\n", child.id()))
        .with_context(|| format!("cannot write {}", pid_file.display()))?;
    let addr: std::net::SocketAddr = listen
        .parse()
        .with_context(|| format!("{listen} is not an address"))?;
    let start = std::time::Instant::now();
    while start.elapsed() < std::time::Duration::from_secs(10) {
        if std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_millis(200))
            .is_ok()
        {
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    anyhow::bail!("backend {name} did not listen on {listen} within 10 s")
}

pub fn run(listen: &str, name: &str) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let state = Arc::new(State {
        name: name.to_string(),
        healthy: AtomicBool::new(true),
        served: AtomicU64::new(0),
        app: AtomicU64::new(0),
        forced: std::sync::atomic::AtomicU16::new(0),
    });
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("backend {name}: cannot listen on {listen}"))?;
        loop {
            let (stream, _) = listener.accept().await?;
            let _ = stream.set_nodelay(true);
            let st = state.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req| handle(req, st.clone()));
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection_with_upgrades(TokioIo::new(stream), svc)
                    .await;
            });
        }
    })
}
