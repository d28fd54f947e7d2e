//! Shared support for the integration tests: real `ballast` processes, real demo-backend
//! processes (so they can be killed), and small HTTP clients over real sockets.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;

pub const BIN: &str = env!("CARGO_BIN_EXE_ballast");

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Polls `f` until it is true or `within` passes; panics with `what` on timeout.
pub fn wait_until(what: &str, within: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < within, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn port_open(addr: SocketAddr) -> bool {
    TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
}

/// Whether an HTTP server answers on `addr` (with any status).
fn http_answers(addr: SocketAddr) -> bool {
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    if s.write_all(b"GET /api/v1/status HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut buf = [0u8; 5];
    s.read_exact(&mut buf).is_ok() && &buf == b"HTTP/"
}

/// A unique scratch directory for one test.
pub fn scratch(name: &str) -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "ballast-test-{}-{}-{}",
        name,
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A demo backend process (`ballast backend`); killed on drop.
pub struct Backend {
    pub name: String,
    pub addr: SocketAddr,
    child: Option<Child>,
}

impl Backend {
    pub fn start(name: &str) -> Self {
        Self::start_on(name, free_port())
    }

    pub fn start_on(name: &str, port: u16) -> Self {
        Self::start_at(name, local(port))
    }

    /// A backend on `addr`: any loopback IP (127.0.0.2, ...) works on Linux without setup.
    pub fn start_at(name: &str, addr: SocketAddr) -> Self {
        let mut b = Backend {
            name: name.to_string(),
            addr,
            child: None,
        };
        b.revive();
        b
    }

    /// (Re)starts the process on the same address.
    pub fn revive(&mut self) {
        let child = Command::new(BIN)
            .args([
                "backend",
                "--listen",
                &self.addr.to_string(),
                "--name",
                &self.name,
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn backend");
        self.child = Some(child);
        let addr = self.addr;
        wait_until(
            &format!("backend {} to listen", self.name),
            Duration::from_secs(10),
            || port_open(addr),
        );
    }

    /// SIGKILL: the process dies mid-whatever, as in a crash.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Application requests served (health checks and control calls excluded).
    pub fn app_count(&self) -> u64 {
        let (code, body) = raw_http(
            self.addr,
            "GET /_ctl/app-count HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n",
        );
        assert_eq!(code, 200, "{body}");
        body.trim().parse().unwrap()
    }

    /// Makes every application request answer `status` (200 heals it).
    pub fn force(&self, status: u16) {
        let (code, body) = raw_http(
            self.addr,
            &format!("POST /_ctl/fail/{status} HTTP/1.1\r\nHost: b\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"),
        );
        assert_eq!(code, 200, "{body}");
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A `ballast run` process with its config file and access log; killed on drop.
pub struct Gateway {
    pub dir: PathBuf,
    pub config_path: PathBuf,
    pub admin: SocketAddr,
    pub access_log: PathBuf,
    child: Option<Child>,
}

impl Gateway {
    /// Starts ballast with `config`; `{ADMIN}` and `{ACCESS_LOG}` in the text are replaced.
    /// Waits until the admin API answers (by then every listener is bound).
    pub fn start(name: &str, config: &str) -> Self {
        let dir = scratch(name);
        let admin: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let access_log = dir.join("access.log");
        let config_path = dir.join("ballast.toml");
        let text = config
            .replace("{ADMIN}", &admin.to_string())
            .replace("{ACCESS_LOG}", &access_log.display().to_string());
        std::fs::write(&config_path, text).unwrap();
        let stderr = std::fs::File::create(dir.join("stderr.log")).unwrap();
        let child = Command::new(BIN)
            .args(["run", "--config"])
            .arg(&config_path)
            .env("BALLAST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("spawn ballast");
        let mut g = Gateway {
            dir,
            config_path,
            admin,
            access_log,
            child: Some(child),
        };
        let start = Instant::now();
        // Not just the port: the admin socket is bound before the listeners, but the API only
        // answers once the gateway has bound them.
        while !http_answers(admin) {
            if let Some(status) = g.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("ballast exited with {status}: {}", g.stderr());
            }
            assert!(
                start.elapsed() < Duration::from_secs(15),
                "ballast did not start: {}",
                g.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        // The admin socket is bound before the listeners, but served only after every
        // listener is bound: any answer (even 401) means the gateway is ready.
        wait_until("the admin API to answer", Duration::from_secs(15), || {
            if let Some(status) = g.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("ballast exited with {status}: {}", g.stderr());
            }
            g.admin_get("/api/v1/status").0 != 0
        });
        g
    }

    /// Whether the process is still running (reaps it if it exited).
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => c.try_wait().unwrap().is_none(),
            None => false,
        }
    }

    /// The metrics text from the admin API.
    pub fn metrics(&self) -> String {
        let (code, body) = self.admin_get("/metrics");
        assert_eq!(code, 200, "{body}");
        body
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.join("stderr.log")).unwrap_or_default()
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().expect("running").id() as i32
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: sending a signal to our own child process.
        unsafe {
            libc::kill(self.pid(), sig);
        }
    }

    /// Rewrites the config file (same placeholders as `start`).
    pub fn write_config(&self, config: &str) {
        let text = config
            .replace("{ADMIN}", &self.admin.to_string())
            .replace("{ACCESS_LOG}", &self.access_log.display().to_string());
        std::fs::write(&self.config_path, text).unwrap();
    }

    /// Waits for the process to exit and returns its exit code.
    pub fn wait_exit(&mut self, within: Duration) -> Option<i32> {
        let start = Instant::now();
        let child = self.child.as_mut()?;
        loop {
            if let Some(st) = child.try_wait().unwrap() {
                self.child = None;
                return st.code();
            }
            if start.elapsed() > within {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `GET` on the admin API, returning (status, body).
    pub fn admin_get(&self, path: &str) -> (u16, String) {
        raw_http(
            self.admin,
            &format!("GET {path} HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n"),
        )
    }

    /// `POST` on the admin API, returning (status, body).
    pub fn admin_post(&self, path: &str) -> (u16, String) {
        raw_http(
            self.admin,
            &format!("POST {path} HTTP/1.1\r\nHost: admin\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"),
        )
    }

    /// Every event in `/api/v1/events` of the given `kind`, oldest first.
    pub fn events_of(&self, kind: &str) -> Vec<serde_json::Value> {
        let (code, body) = self.admin_get("/api/v1/events");
        assert_eq!(code, 200, "{body}");
        let all: Vec<serde_json::Value> = serde_json::from_str(&body).unwrap();
        all.into_iter().filter(|e| e["kind"] == kind).collect()
    }

    /// The status JSON.
    pub fn status(&self) -> serde_json::Value {
        let (code, body) = self.admin_get("/api/v1/status");
        assert_eq!(code, 200, "{body}");
        serde_json::from_str(&body).unwrap()
    }

    /// State string (`up`, `down`, `ejected`, `draining`) of `server` in `upstream`.
    pub fn server_state(&self, upstream: &str, server: SocketAddr) -> String {
        let st = self.status();
        st["upstreams"]
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["name"] == upstream)
            .and_then(|u| {
                u["servers"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|s| s["addr"] == server.to_string())
            })
            .map(|s| s["state"].as_str().unwrap().to_string())
            .unwrap_or_default()
    }

    /// Access log lines parsed as JSON.
    pub fn access_lines(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(&self.access_log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Sends raw bytes, reads until the server closes (or 5 s), returns (status, body).
pub fn raw_http(addr: SocketAddr, request: &str) -> (u16, String) {
    let text = raw_exchange(addr, request.as_bytes());
    parse_status(&text)
}

/// Sends raw bytes and returns everything read until close or a 5 s timeout.
pub fn raw_exchange(addr: SocketAddr, request: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(request).unwrap();
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    String::from_utf8_lossy(&buf).into_owned()
}

/// (status, body) of a raw HTTP/1.1 response text.
pub fn parse_status(text: &str) -> (u16, String) {
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// A response as the tests see it.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: String,
}

impl Reply {
    /// The `x-backend` header: which demo backend answered.
    pub fn backend(&self) -> Option<&str> {
        self.headers.get("x-backend").and_then(|v| v.to_str().ok())
    }
}

/// One keep-alive HTTP/1.1 connection to the gateway.
pub struct Conn {
    addr: SocketAddr,
    sender: SendRequest<Full<Bytes>>,
}

impl Conn {
    pub async fn open(addr: SocketAddr) -> std::io::Result<Self> {
        let stream = tokio::net::TcpStream::connect(addr).await?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(std::io::Error::other)?;
        tokio::spawn(conn);
        Ok(Self { addr, sender })
    }

    /// Sends a request on this connection; `Err` is a client-visible failure.
    pub async fn request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Result<Reply, String> {
        self.sender.ready().await.map_err(|e| e.to_string())?;
        let mut b = http::Request::builder().method(method).uri(path);
        // A `host` among `headers` replaces the default one.
        if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
            b = b.header("host", self.addr.to_string());
        }
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let req = b.body(Full::new(Bytes::from(body.to_string()))).unwrap();
        let resp = self
            .sender
            .send_request(req)
            .await
            .map_err(|e| e.to_string())?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        Ok(Reply {
            status,
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        })
    }

    pub async fn get(&mut self, path: &str) -> Result<Reply, String> {
        self.request("GET", path, &[], "").await
    }
}

/// One request on a fresh connection.
pub async fn get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Result<Reply, String> {
    let mut c = Conn::open(addr).await.map_err(|e| e.to_string())?;
    c.request("GET", path, headers, "").await
}

/// Runs `n` concurrent keep-alive clients, each sending requests in a loop until `stop` says so
/// or `per_client` requests were sent. Returns (ok, errors, error samples).
pub async fn load(
    addr: SocketAddr,
    clients: usize,
    per_client: usize,
    path: &'static str,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> (usize, usize, Vec<String>) {
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let stop = stop.clone();
        tasks.push(tokio::spawn(async move {
            let (mut ok, mut err, mut samples) = (0usize, 0usize, Vec::new());
            let mut conn = None;
            for _ in 0..per_client {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                if conn.is_none() {
                    conn = Conn::open(addr).await.ok();
                }
                let Some(c) = conn.as_mut() else {
                    err += 1;
                    samples.push("connect to gateway failed".to_string());
                    continue;
                };
                match c.get(path).await {
                    Ok(r) if r.status == 200 => ok += 1,
                    Ok(r) => {
                        err += 1;
                        samples.push(format!("status {} {}", r.status, r.body.trim()));
                    }
                    Err(e) => {
                        err += 1;
                        samples.push(e);
                        conn = None;
                    }
                }
            }
            (ok, err, samples)
        }));
    }
    let (mut ok, mut err, mut samples) = (0, 0, Vec::new());
    for t in tasks {
        let (o, e, s) = t.await.unwrap();
        ok += o;
        err += e;
        samples.extend(s.into_iter().take(3));
    }
    (ok, err, samples)
}

/// A current-thread runtime for tests that drive async clients from a plain `#[test]`.
pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// `127.0.0.1:port`.
pub fn local(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// The value of the first sample in OpenMetrics `text` whose series (name and labels, as
/// written) starts with `series`.
pub fn metric_value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find(|l| l.starts_with(series))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// Runs the `ballast` binary with `args` (killed after 30 s); returns (exit code, stdout, stderr).
pub fn cli(args: &[&str]) -> (Option<i32>, String, String) {
    let dir = scratch("cli");
    let out = std::fs::File::create(dir.join("out")).unwrap();
    let err = std::fs::File::create(dir.join("err")).unwrap();
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .expect("spawn ballast");
    let start = Instant::now();
    let code = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st.code();
        }
        if start.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("`ballast {}` did not finish within 30 s", args.join(" "));
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap_or_default();
    (code, read("out"), read("err"))
}

/// Requests served so far by a demo backend, asked directly (this request included).
pub fn backend_count(b: &Backend) -> u64 {
    let (code, body) = raw_http(
        b.addr,
        "GET /_ctl/count HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(code, 200, "{body}");
    body.trim().parse().unwrap()
}

/// An HTTP/1.1 server inside the test process (on the calling tokio runtime) that waits
/// `delay` before answering every request with 200 and `x-backend: NAME`, to stand for a
/// slow server next to the demo backends. Stops accepting when dropped.
pub struct DelayedServer {
    pub name: String,
    pub addr: SocketAddr,
    served: std::sync::Arc<std::sync::atomic::AtomicU64>,
    accept: tokio::task::JoinHandle<()>,
}

impl DelayedServer {
    pub async fn start(name: &str, delay: Duration) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind delayed server");
        let addr = listener.local_addr().unwrap();
        let served = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let header = http::HeaderValue::from_str(name).expect("name usable as a header value");
        let count = served.clone();
        let accept = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let _ = stream.set_nodelay(true);
                let (header, count) = (header.clone(), count.clone());
                let svc = hyper::service::service_fn(
                    move |_req: http::Request<hyper::body::Incoming>| {
                        let (header, count) = (header.clone(), count.clone());
                        async move {
                            count.fetch_add(1, Ordering::Relaxed);
                            tokio::time::sleep(delay).await;
                            let mut resp =
                                http::Response::new(Full::new(Bytes::from_static(b"slow\n")));
                            resp.headers_mut().insert("x-backend", header);
                            Ok::<_, std::convert::Infallible>(resp)
                        }
                    },
                );
                tokio::spawn(async move {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        DelayedServer {
            name: name.to_string(),
            addr,
            served,
            accept,
        }
    }

    /// Requests received so far.
    pub fn served(&self) -> u64 {
        self.served.load(Ordering::Relaxed)
    }
}

impl Drop for DelayedServer {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// Async version of [`wait_until`]: polls `f` every 20 ms without blocking a runtime worker.
pub async fn wait_for(what: &str, within: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < within, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

impl Reply {
    /// The value this response sets for cookie `name` (from `Set-Cookie`), if any.
    pub fn set_cookie(&self, name: &str) -> Option<String> {
        self.headers
            .get_all(http::header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(|v| v.split(';').next())
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_string())
    }
}

/// What a batch of requests saw: successes per answering backend, and failures.
#[derive(Debug, Default)]
pub struct Tally {
    pub ok: usize,
    pub errors: usize,
    /// A few failures, for the assertion message.
    pub samples: Vec<String>,
    /// 200 answers per `x-backend` (`?` when the header is missing).
    pub by_backend: std::collections::BTreeMap<String, usize>,
}

impl Tally {
    pub fn total(&self) -> usize {
        self.ok + self.errors
    }

    /// 200 answers from backend `name`.
    pub fn of(&self, name: &str) -> usize {
        self.by_backend.get(name).copied().unwrap_or(0)
    }

    fn add(&mut self, r: Result<Reply, String>) {
        match r {
            Ok(r) if r.status == 200 => {
                self.ok += 1;
                *self
                    .by_backend
                    .entry(r.backend().unwrap_or("?").to_string())
                    .or_default() += 1;
            }
            Ok(r) => {
                self.errors += 1;
                if self.samples.len() < 10 {
                    self.samples
                        .push(format!("status {} {}", r.status, r.body.trim()));
                }
            }
            Err(e) => {
                self.errors += 1;
                if self.samples.len() < 10 {
                    self.samples.push(e);
                }
            }
        }
    }

    fn merge(&mut self, other: Tally) {
        self.ok += other.ok;
        self.errors += other.errors;
        for s in other.samples {
            if self.samples.len() < 10 {
                self.samples.push(s);
            }
        }
        for (k, v) in other.by_backend {
            *self.by_backend.entry(k).or_default() += v;
        }
    }
}

/// `n` sequential `GET path` requests (with `headers`) on one keep-alive connection, reopened
/// after a failure.
pub async fn tally_requests(
    addr: SocketAddr,
    n: usize,
    path: &str,
    headers: &[(&str, &str)],
) -> Tally {
    let mut t = Tally::default();
    let mut conn: Option<Conn> = None;
    for _ in 0..n {
        if conn.is_none() {
            conn = Conn::open(addr).await.ok();
        }
        let Some(c) = conn.as_mut() else {
            t.add(Err("connect to gateway failed".into()));
            continue;
        };
        let r = c.request("GET", path, headers, "").await;
        if r.is_err() {
            conn = None;
        }
        t.add(r);
    }
    t
}

/// Concurrent keep-alive clients sending `GET path` in a loop until stopped, counting as they
/// go so a test can act after a given number of requests.
pub struct LoadRun {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    done: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    tasks: Vec<tokio::task::JoinHandle<Tally>>,
}

impl LoadRun {
    pub fn start(addr: SocketAddr, clients: usize, path: &str) -> Self {
        use std::sync::atomic::{AtomicBool, AtomicUsize};
        use std::sync::Arc;
        let stop = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicUsize::new(0));
        let tasks = (0..clients)
            .map(|_| {
                let (stop, done, path) = (stop.clone(), done.clone(), path.to_string());
                tokio::spawn(async move {
                    let mut t = Tally::default();
                    let mut conn: Option<Conn> = None;
                    while !stop.load(Ordering::Relaxed) {
                        if conn.is_none() {
                            conn = Conn::open(addr).await.ok();
                        }
                        let r = match conn.as_mut() {
                            Some(c) => c.get(&path).await,
                            None => {
                                tokio::time::sleep(Duration::from_millis(10)).await;
                                Err("connect to gateway failed".into())
                            }
                        };
                        if r.is_err() {
                            conn = None;
                        }
                        t.add(r);
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                    t
                })
            })
            .collect();
        Self { stop, done, tasks }
    }

    /// Requests completed so far (successful or not).
    pub fn completed(&self) -> usize {
        self.done.load(Ordering::Relaxed)
    }

    /// Stops the clients (each finishes its current request) and adds up what they saw.
    pub async fn finish(self) -> Tally {
        self.stop.store(true, Ordering::Relaxed);
        let mut total = Tally::default();
        for t in self.tasks {
            total.merge(t.await.expect("load client panicked"));
        }
        total
    }
}

/// Extra lines for [`one_upstream_config`], each placed inside its table.
#[derive(Default, Clone, Copy)]
pub struct Extra<'a> {
    pub admin: &'a str,
    pub listener: &'a str,
    pub upstream: &'a str,
}

/// Config text for the common test shape: one listener `web` on 127.0.0.1:`port`, one catch-all
/// route, one upstream `app` of `servers` (address, weight); the access log goes to
/// `{ACCESS_LOG}` and the admin API to `{ADMIN}` (filled in by [`Gateway::start`]).
pub fn one_upstream_config(port: u16, extra: Extra<'_>, servers: &[(SocketAddr, u32)]) -> String {
    let servers: Vec<String> = servers
        .iter()
        .map(|(a, w)| format!(r#"{{ addr = "{a}", weight = {w} }}"#))
        .collect();
    format!(
        r#"
[admin]
listen = "{{ADMIN}}"
{admin}
[log]
access = "{{ACCESS_LOG}}"
[[listener]]
name = "web"
listen = "127.0.0.1:{port}"
{listener}
[[route]]
upstream = "app"
[[upstream]]
name = "app"
{upstream}
servers = [{servers}]
"#,
        admin = extra.admin,
        listener = extra.listener,
        upstream = extra.upstream,
        servers = servers.join(", "),
    )
}

/// The part every test config starts with: admin on `{ADMIN}`, the access log to
/// `{ACCESS_LOG}` (both filled in by [`Gateway::start`]), one listener `web` on
/// 127.0.0.1:`port`. Routes and upstreams follow.
pub fn preamble(port: u16) -> String {
    format!(
        r#"
[admin]
listen = "{{ADMIN}}"
[log]
access = "{{ACCESS_LOG}}"
[[listener]]
name = "web"
listen = "127.0.0.1:{port}"
"#
    )
}

/// (address, 1) for each address.
pub fn weight1(addrs: &[SocketAddr]) -> Vec<(SocketAddr, u32)> {
    addrs.iter().map(|a| (*a, 1)).collect()
}
