//! Support for the remediation and incident tests: a service the gateway can restart (a demo
//! backend started by a script, detached, with a pid file, as a service manager would), a
//! steady trickle of client requests, and the admin API's remediation and incident answers
//! read as JSON.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use super::common::*;

/// How long the remediation tests wait for anything (the machine is shared and noisy).
pub const WAIT: Duration = Duration::from_secs(45);

/// A demo backend run as a service: `start.sh ADDR` starts it detached (its own session, so
/// the remediation's process group never holds it) and returns once it listens; the pid is in
/// `api.pid`. With `crash_loop`, the script starts a process that exits at once instead: a
/// restart that "works" (exit 0) but brings nothing back.
pub struct Service {
    pub dir: PathBuf,
    pub addr: SocketAddr,
    pub script: PathBuf,
}

impl Service {
    pub fn new(name: &str, crash_loop: bool) -> Service {
        let dir = scratch(name);
        let svc = Service {
            script: dir.join("start.sh"),
            addr: local(free_port()),
            dir,
        };
        svc.write_script(crash_loop);
        svc
    }

    /// (Re)writes the start script; with `crash_loop`, what it starts exits at once.
    pub fn write_script(&self, crash_loop: bool) {
        let pid = self.dir.join("api.pid");
        let starts = self.dir.join("starts");
        let body = if crash_loop {
            format!(
                "#!/bin/sh\necho start >> {starts}\nsetsid /bin/sh -c 'exit 3' </dev/null >/dev/null 2>&1 &\necho $! > {pid}\nexit 0\n",
                starts = starts.display(),
                pid = pid.display(),
            )
        } else {
            format!(
                "#!/bin/sh\necho start >> {starts}\nsetsid {bin} backend --listen \"$1\" --name api </dev/null >/dev/null 2>&1 &\necho $! > {pid}\ni=0\nwhile [ $i -lt 100 ]; do\n  if python3 -c \"import socket,sys; h,p=sys.argv[1].rsplit(':',1); socket.create_connection((h,int(p)),0.2)\" \"$1\" 2>/dev/null; then exit 0; fi\n  sleep 0.05; i=$((i+1))\ndone\nexit 1\n",
                starts = starts.display(),
                pid = pid.display(),
                bin = BIN,
            )
        };
        let tmp = self.dir.join("start.sh.tmp");
        std::fs::write(&tmp, body).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::rename(&tmp, &self.script).unwrap();
    }

    /// Starts it as the service manager would.
    pub fn start(&self) {
        // Through `sh`, not exec'ing the script itself: a test thread forking meanwhile may
        // hold the just-written file open, and exec would fail with ETXTBSY.
        let st = std::process::Command::new("/bin/sh")
            .arg(&self.script)
            .arg(self.addr.to_string())
            .status()
            .unwrap();
        assert!(st.success(), "{} failed", self.script.display());
        wait_until("the service to listen", WAIT, || serves(self.addr));
    }

    /// SIGKILLs the running process (a crash).
    pub fn kill(&self) {
        if let Some(pid) = self.pid() {
            // SAFETY: kill(2) on a pid this test started; no memory effects.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
        wait_until("the service to stop", WAIT, || !serves(self.addr));
    }

    pub fn pid(&self) -> Option<i32> {
        std::fs::read_to_string(self.dir.join("api.pid"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// How many times the start script ran.
    pub fn starts(&self) -> usize {
        std::fs::read_to_string(self.dir.join("starts"))
            .map(|t| t.lines().count())
            .unwrap_or(0)
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if let Some(pid) = self.pid() {
            // SAFETY: as in `kill`.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
    }
}

/// The receiver `ops` (a webhook to `hook`), a route sending it every alert at once, and
/// `[incident]` announcing to it: the tail of the remediation and incident tests' configs.
pub fn ops_toml(hook: &str) -> String {
    format!(
        r#"
[[receiver]]
name = "ops"
webhook = {{ url = "{hook}" }}

[[notify]]
receivers = ["ops"]
group_wait = "0s"

[incident]
receivers = ["ops"]
"#
    )
}

/// Starts a gateway on `config` and waits until remediation and incidents answer (they start
/// after monitoring and notifications).
pub fn start_brain(name: &str, config: &str) -> Gateway {
    let gw = Gateway::start(name, config);
    wait_brain(&gw);
    gw
}

/// Waits until remediation and incidents answer.
pub fn wait_brain(gw: &Gateway) {
    wait_until("remediation and incidents to answer", WAIT, || {
        gw.admin_get("/api/v1/remediations").0 == 200 && gw.admin_get("/api/v1/incidents").0 == 200
    });
}

/// Whether the demo backend on `addr` answers an application request with 200.
pub fn serves(addr: SocketAddr) -> bool {
    std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
        && raw_http(
            addr,
            "GET / HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n",
        )
        .0 == 200
}

/// Client requests to `addr` in a loop on a thread until dropped: statuses counted.
pub struct Traffic {
    stop: Arc<AtomicBool>,
    pub ok: Arc<AtomicU64>,
    pub failed: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Traffic {
    /// From client address `from` (any 127.0.0.0/8 address), `path`, with `pause` between
    /// requests.
    pub fn start(to: SocketAddr, from: &str, path: &str, pause: Duration) -> Traffic {
        let stop = Arc::new(AtomicBool::new(false));
        let (ok, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let (s, o, f) = (stop.clone(), ok.clone(), failed.clone());
        let from: std::net::IpAddr = from.parse().unwrap();
        let path = path.to_string();
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                let status = request_from(from, to, &path);
                if status == 200 {
                    o.fetch_add(1, Ordering::Relaxed);
                } else {
                    f.fetch_add(1, Ordering::Relaxed);
                }
                std::thread::sleep(pause);
            }
        });
        Traffic {
            stop,
            ok,
            failed,
            thread: Some(thread),
        }
    }
}

impl Drop for Traffic {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// One GET from a socket bound to `from`; the status (0 when it failed).
pub fn request_from(from: std::net::IpAddr, to: SocketAddr, path: &str) -> u16 {
    use std::io::{Read, Write};
    let socket = match socket2_connect(from, to) {
        Some(s) => s,
        None => return 0,
    };
    let mut s = socket;
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    if s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: shop\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .is_err()
    {
        return 0;
    }
    let mut text = String::new();
    let _ = s.read_to_string(&mut text);
    parse_status(&text).0
}

/// A TCP connection from `from` to `to` (bind then connect, through libc: std has no bind
/// before connect).
fn socket2_connect(from: std::net::IpAddr, to: SocketAddr) -> Option<std::net::TcpStream> {
    use std::os::fd::FromRawFd;
    let (std::net::IpAddr::V4(from), std::net::SocketAddr::V4(to)) = (from, to) else {
        return None;
    };
    let addr_of = |ip: std::net::Ipv4Addr, port: u16| libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: port.to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(ip).to_be(),
        },
        sin_zero: [0; 8],
    };
    // SAFETY: plain socket calls on a descriptor owned here; the sockaddr structs live on
    // the stack for the duration of each call.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return None;
        }
        let stream = std::net::TcpStream::from_raw_fd(fd);
        let local = addr_of(from, 0);
        let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        if libc::bind(fd, (&local as *const libc::sockaddr_in).cast(), len) != 0 {
            return None;
        }
        let remote = addr_of(*to.ip(), to.port());
        if libc::connect(fd, (&remote as *const libc::sockaddr_in).cast(), len) != 0 {
            return None;
        }
        Some(stream)
    }
}

/// `GET /api/v1/remediations?...` → (runs, blocked).
pub fn remediations(gw: &Gateway, query: &str) -> (Vec<Value>, Vec<Value>) {
    let (code, body) = gw.admin_get(&format!("/api/v1/remediations{query}"));
    assert_eq!(code, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    (
        v["runs"].as_array().cloned().unwrap_or_default(),
        v["blocked"].as_array().cloned().unwrap_or_default(),
    )
}

/// `GET /api/v1/incidents`.
pub fn incidents(gw: &Gateway) -> Vec<Value> {
    let (code, body) = gw.admin_get("/api/v1/incidents");
    assert_eq!(code, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

/// `GET /api/v1/incidents/{id}`.
pub fn incident(gw: &Gateway, id: u64) -> Value {
    let (code, body) = gw.admin_get(&format!("/api/v1/incidents/{id}"));
    assert_eq!(code, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

/// The kinds of an incident's timeline entries, in order.
pub fn timeline_kinds(incident: &Value) -> Vec<String> {
    incident["timeline"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| e["kind"].as_str().unwrap_or("").to_string())
        .collect()
}

/// The default severity matrix (rows: user scope; columns: auxiliary, core, whole), as
/// `docs/incidents.md` writes it.
pub fn default_matrix(user: &str, function: &str) -> &'static str {
    let row: [&str; 3] = match user {
        "none" => ["SEV4", "SEV4", "SEV4"],
        "internal" => ["SEV4", "SEV3", "SEV3"],
        "some" => ["SEV3", "SEV2", "SEV2"],
        "most" => ["SEV3", "SEV2", "SEV1"],
        "all" => ["SEV2", "SEV1", "SEV1"],
        other => panic!("unknown user scope {other}"),
    };
    match function {
        "auxiliary" => row[0],
        "core" => row[1],
        "whole" => row[2],
        other => panic!("unknown function scope {other}"),
    }
}

/// A file's modification time set `age` into the past.
pub fn age_file(path: &Path, age: Duration) {
    let f = std::fs::File::options().write(true).open(path).unwrap();
    f.set_modified(std::time::SystemTime::now() - age).unwrap();
}
