//! Shared support for the integration tests: ports, scratch directories, waiting on a
//! condition, the CLI, config text. Real processes (`processes`: demo backends, the gateway) and
//! clients over real sockets (`clients`) have modules of their own.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

mod clients;
mod history;
mod processes;
mod tmpfs;

pub use clients::*;
#[allow(unused_imports)] // only the history tests read it
pub use history::*;
pub use processes::*;
#[allow(unused_imports)] // only the disk tests mount one
pub use tmpfs::Tmpfs;

pub const BIN: &str = env!("CARGO_BIN_EXE_ballast");

/// A port that was free a moment ago, and never handed out before in this test process: the
/// kernel may give the same ephemeral port to two `bind(0)`s in a row once the first socket is
/// closed, and a gateway whose admin and listener got the same port refuses its config.
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
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

/// Async version of [`wait_until`]: polls `f` every 20 ms without blocking a runtime worker.
pub async fn wait_for(what: &str, within: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < within, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
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
