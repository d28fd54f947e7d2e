//! The stage a scenario runs on: lab backends as separate processes, one proxy under test,
//! addresses and timing. Everything started here is stopped when the [`Stage`] is dropped.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::backend::{BackendControl, BackendStats, Knobs};
use crate::load::{LoadSpec, Mode};
use crate::peers::process::Proc;
use crate::peers::{Balance, Peer, Topology};
use crate::result::Target;
use crate::LabError;

/// CPU plan: the proxy under test gets CPU 0; backends and the load generator share CPU 1.
pub const PROXY_CPU: usize = 0;
pub const LOAD_CPU: usize = 1;

/// Ports used on 127.0.0.1. Every run reuses them, one run at a time.
pub const BACKEND_BASE_PORT: u16 = 19301;
pub const PROXY_PORT: u16 = 19380;
pub const ADMIN_PORT: u16 = 19390;

/// Settings shared by every scenario of a lab invocation.
#[derive(Clone, Debug)]
pub struct Settings {
    pub quick: bool,
    /// Length of each run's load.
    pub duration: Duration,
    /// Open-loop request rate of the main client population.
    pub rate: f64,
    /// The `ballast` binary (runs Ballast and the lab backends).
    pub ballast_bin: PathBuf,
    /// Where work files (configs, logs) go.
    pub work: PathBuf,
}

/// One backend process and its control client.
pub struct Backend {
    pub name: String,
    pub addr: SocketAddr,
    pub proc: Proc,
    pub control: BackendControl,
}

/// Backends plus, once started, the proxy under test.
pub struct Stage {
    pub dir: PathBuf,
    pub backends: Vec<Backend>,
    pub proxy: Option<Proc>,
    pub target: Target,
    ballast_bin: PathBuf,
}

impl Stage {
    /// Starts `n` backends named b1..bn and waits until each answers.
    pub async fn new(
        settings: &Settings,
        scenario: &str,
        target: Target,
        n: usize,
    ) -> Result<Stage, LabError> {
        let dir = settings.work.join(format!("{scenario}-{}", target.name()));
        std::fs::create_dir_all(&dir)
            .map_err(LabError::io(format!("creating {}", dir.display())))?;
        let mut stage = Stage {
            dir,
            backends: Vec::new(),
            proxy: None,
            target,
            ballast_bin: settings.ballast_bin.clone(),
        };
        for i in 0..n {
            stage.add_backend().await?;
            let _ = i;
        }
        Ok(stage)
    }

    /// Starts one more backend (b{n+1}) and waits until it answers.
    pub async fn add_backend(&mut self) -> Result<&Backend, LabError> {
        let i = self.backends.len();
        let name = format!("b{}", i + 1);
        let addr: SocketAddr = ([127, 0, 0, 1], BACKEND_BASE_PORT + i as u16).into();
        let mut cmd = Command::new(&self.ballast_bin);
        cmd.arg("lab-backend")
            .arg("--listen")
            .arg(addr.to_string())
            .arg("--name")
            .arg(&name);
        let proc = Proc::spawn(&name, Some(LOAD_CPU), &mut cmd, &self.dir)?;
        let control = BackendControl::new(addr);
        if let Err(e) = control.wait_ready(Duration::from_secs(10)).await {
            return Err(LabError::Process(format!(
                "backend {name} on {addr} did not start: {e}\n{}",
                proc.tail(20)
            )));
        }
        self.backends.push(Backend {
            name,
            addr,
            proc,
            control,
        });
        Ok(self.backends.last().expect("just pushed"))
    }

    /// The topology every proxy gets, with the lab's common timeouts and checks.
    pub fn topology(&self, servers: &[usize], balance: Balance) -> Topology {
        Topology {
            listen: proxy_addr(),
            admin: ([127, 0, 0, 1], ADMIN_PORT).into(),
            servers: servers.iter().map(|i| self.backends[*i].addr).collect(),
            balance,
            health_interval: Duration::from_millis(500),
            health_timeout: Duration::from_millis(400),
            rise: 2,
            fall: 2,
            connect_timeout: Duration::from_millis(500),
            response_timeout: Duration::from_secs(2),
            attempts: 3,
            flood_per_second: None,
            sorry_page: false,
            priority: None,
            dir: self.dir.clone(),
        }
    }

    /// Starts the proxy under test on `topo` and waits until it serves 200s. For
    /// [`Target::Direct`] nothing is started and load goes to the first backend.
    pub async fn start_proxy(
        &mut self,
        peer: Option<&dyn Peer>,
        topo: &Topology,
    ) -> Result<SocketAddr, LabError> {
        let Some(peer) = peer else {
            return Ok(self.backends[0].addr);
        };
        let mut cmd = peer.prepare(topo)?;
        let proc = Proc::spawn(peer.target().name(), Some(PROXY_CPU), &mut cmd, &self.dir)?;
        self.proxy = Some(proc);
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut good = 0;
        while Instant::now() < deadline {
            if let Some(p) = self.proxy.as_mut() {
                if p.exited() {
                    return Err(LabError::Process(format!(
                        "{} exited during start-up:\n{}",
                        peer.target().label(),
                        p.tail(30)
                    )));
                }
            }
            match http_status(topo.listen, "/").await {
                Some(200) => {
                    good += 1;
                    // Twice round the pool: every server is up and reachable.
                    if good >= 2 * topo.servers.len().max(1) {
                        // Active checks need `rise` passes before a server counts as up.
                        tokio::time::sleep(topo.health_interval * topo.rise).await;
                        return Ok(topo.listen);
                    }
                }
                _ => {
                    good = 0;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
        let tail = self.proxy.as_ref().map(|p| p.tail(30)).unwrap_or_default();
        Err(LabError::Process(format!(
            "{} did not serve 200 on {} within 20 s:\n{tail}",
            peer.target().label(),
            topo.listen
        )))
    }

    /// CPU seconds used so far by the proxy under test (0 for direct runs).
    pub fn proxy_cpu(&self) -> f64 {
        self.proxy.as_ref().map_or(0.0, Proc::cpu_seconds)
    }

    /// Sets the same knobs on the listed backends.
    pub async fn set_knobs(&self, which: &[usize], knobs: &Knobs) -> Result<(), LabError> {
        for i in which {
            self.backends[*i].control.set_knobs(knobs).await?;
        }
        Ok(())
    }

    /// Application requests per backend so far; a backend that does not answer (killed,
    /// stopped) reads as `None`.
    pub async fn backend_stats(&self) -> Vec<Option<BackendStats>> {
        let mut out = Vec::with_capacity(self.backends.len());
        for b in &self.backends {
            let s = tokio::time::timeout(Duration::from_millis(500), b.control.stats()).await;
            out.push(s.ok().and_then(Result::ok));
        }
        out
    }

    /// Total application requests received by the backends that answer.
    pub async fn backend_requests(&self) -> u64 {
        self.backend_stats()
            .await
            .iter()
            .flatten()
            .map(|s| s.requests)
            .sum()
    }

    /// Where this stage keeps its files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Stage {
    fn drop(&mut self) {
        // Proxy first, so it does not log a storm of failures while backends go away.
        if let Some(mut p) = self.proxy.take() {
            p.stop();
        }
    }
}

/// The main clients of a fault scenario: open loop at the lab's rate for the whole run, 5 s
/// request timeout (longer than any proxy's own), timeline counted from `epoch`.
pub fn open_loop(settings: &Settings, addr: SocketAddr, epoch: Instant) -> LoadSpec {
    let mut spec = LoadSpec::new(addr);
    spec.mode = Mode::Open {
        rate: settings.rate,
    };
    spec.duration = settings.duration;
    spec.request_timeout = Duration::from_secs(5);
    spec.epoch = epoch;
    spec
}

pub fn proxy_addr() -> SocketAddr {
    ([127, 0, 0, 1], PROXY_PORT).into()
}

/// Status of one `GET path` over a fresh connection, or `None` on any failure.
pub async fn http_status(addr: SocketAddr, path: &str) -> Option<u16> {
    let fut = async {
        let mut s = TcpStream::connect(addr).await.ok()?;
        let req = format!("GET {path} HTTP/1.1\r\nHost: lab\r\nConnection: close\r\n\r\n");
        s.write_all(req.as_bytes()).await.ok()?;
        let mut buf = [0u8; 64];
        let mut n = 0;
        while n < 12 {
            let r = s.read(&mut buf[n..]).await.ok()?;
            if r == 0 {
                break;
            }
            n += r;
        }
        let line = std::str::from_utf8(&buf[..n]).ok()?;
        line.split_whitespace().nth(1)?.parse().ok()
    };
    tokio::time::timeout(Duration::from_secs(2), fut)
        .await
        .ok()
        .flatten()
}
