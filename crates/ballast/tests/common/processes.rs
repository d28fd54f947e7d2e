//! Real processes the tests start and kill: demo backends (`ballast backend`), the gateway
//! (`ballast run` with a config file, an access log and the admin API), and a slow HTTP server
//! inside the test process.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::rt::TokioIo;

use super::*;

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
        let mut g = Gateway {
            dir,
            config_path,
            admin,
            access_log,
            child: None,
        };
        g.spawn();
        g
    }

    /// Stops the process (SIGTERM, then waits) and starts it again on the same directory,
    /// config file and admin address: what an operator's restart does.
    pub fn restart(&mut self) {
        self.signal(libc::SIGTERM);
        if self.wait_exit(Duration::from_secs(15)).is_none() {
            panic!("ballast did not exit on SIGTERM: {}", self.stderr());
        }
        self.spawn();
    }

    /// Runs `ballast run` on this config (stderr appended to `stderr.log`) and waits until
    /// the admin API answers (by then every listener is bound).
    fn spawn(&mut self) {
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("stderr.log"))
            .unwrap();
        let child = Command::new(BIN)
            .args(["run", "--config"])
            .arg(&self.config_path)
            .env("BALLAST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("spawn ballast");
        self.child = Some(child);
        let g = self;
        let admin = g.admin;
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

    /// The servers of `upstream` as `/api/v1/status` shows them.
    pub fn servers_of(&self, upstream: &str) -> Vec<serde_json::Value> {
        let st = self.status();
        let up = st["upstreams"]
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["name"] == upstream)
            .unwrap_or_else(|| panic!("upstream {upstream} in status: {st}"));
        up["servers"].as_array().unwrap().clone()
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
