//! The `ballast` command line, run as a real process: `check`, `run` with a bad file, and the
//! commands that talk to a running gateway (`status`, `drain`, `reload`).

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;

fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

const BARE_DURATION: &str = r#"[[listener]]
name = "web"
listen = "127.0.0.1:0"

[[route]]
match = { path_prefix = "/api/" }
upstream = "app"
timeout = { connect = 300 }

[[upstream]]
name = "app"
servers = [{ addr = "127.0.0.1:1" }]
"#;

#[test]
fn check_accepts_examples() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(examples_dir())
        .expect("examples/ directory")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    assert!(files.len() >= 5, "examples found: {files:?}");
    for f in &files {
        let path = f.to_str().unwrap();
        let (code, out, err) = cli(&["check", "--config", path]);
        assert_eq!(code, Some(0), "{path}: stdout {out} stderr {err}");
        assert!(out.contains("OK"), "{path}: {out}");
    }
}

#[test]
fn check_reports_bare_duration() {
    let dir = scratch("cli-bare");
    let file = write(&dir, "bad.toml", BARE_DURATION);
    let line = BARE_DURATION
        .lines()
        .position(|l| l.contains("connect = 300"))
        .unwrap()
        + 1;
    let (code, out, err) = cli(&["check", "--config", file.to_str().unwrap()]);
    assert_eq!(code, Some(64), "stdout {out} stderr {err}");
    assert!(!out.contains("OK"), "{out}");
    let first = err.lines().next().unwrap_or_default();
    assert!(
        first.starts_with(&format!("{}:{line}:", file.display())),
        "file:line expected at the start: {err}"
    );
    assert!(err.contains("route[0].timeout.connect"), "{err}");
    assert!(err.contains("\"300ms\""), "{err}");
    assert_eq!(
        err.lines().count(),
        1,
        "a type error stops reading the file: one problem reported: {err}"
    );
}

#[test]
fn run_refuses_bad_config_with_64() {
    let dir = scratch("cli-run-bad");
    let port = free_port();
    let file = write(
        &dir,
        "bad.toml",
        &BARE_DURATION.replace("127.0.0.1:0", &format!("127.0.0.1:{port}")),
    );
    let (code, _, err) = cli(&["run", "--config", file.to_str().unwrap()]);
    assert_eq!(code, Some(64), "{err}");
    assert!(err.contains("route[0].timeout.connect"), "{err}");
    assert!(
        std::net::TcpStream::connect_timeout(&local(port), Duration::from_millis(200)).is_err(),
        "the listener of a refused config was bound"
    );

    // A missing file is refused the same way.
    let missing = dir.join("missing.toml");
    let (code, _, err) = cli(&["run", "--config", missing.to_str().unwrap()]);
    assert_eq!(code, Some(64), "{err}");
    assert!(err.contains("missing.toml"), "{err}");
}

#[test]
fn admin_non_loopback_without_token_refused() {
    let dir = scratch("cli-admin");
    let base = r#"
[[listener]]
name = "web"
listen = "127.0.0.1:0"
[[route]]
upstream = "app"
[[upstream]]
name = "app"
servers = [{ addr = "127.0.0.1:1" }]
"#;
    let open = write(
        &dir,
        "open.toml",
        &format!("[admin]\nlisten = \"0.0.0.0:9911\"\n{base}"),
    );
    let (code, out, err) = cli(&["check", "--config", open.to_str().unwrap()]);
    assert_eq!(code, Some(64), "stdout {out} stderr {err}");
    assert!(err.contains("admin.token"), "{err}");
    assert!(
        err.contains(":2:"),
        "the line of admin.listen is named: {err}"
    );

    // The same with a token, or on loopback without one, is fine.
    let with_token = write(
        &dir,
        "token.toml",
        &format!("[admin]\nlisten = \"0.0.0.0:9911\"\ntoken = \"s3cret\"\n{base}"),
    );
    let (code, _, err) = cli(&["check", "--config", with_token.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{err}");
    let loopback = write(
        &dir,
        "loopback.toml",
        &format!("[admin]\nlisten = \"127.0.0.1:9911\"\n{base}"),
    );
    let (code, _, err) = cli(&["check", "--config", loopback.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{err}");
}

#[test]
fn cli_drain_and_status() {
    let (a, b, c) = (
        Backend::start("a"),
        Backend::start("b"),
        Backend::start("c"),
    );
    let port = free_port();
    let cfg = |servers: &[std::net::SocketAddr]| {
        one_upstream_config(port, Extra::default(), &weight1(servers))
    };
    let gw = Gateway::start("cli-ops", &cfg(&[a.addr, b.addr]));
    let admin = gw.admin.to_string();

    let (code, out, err) = cli(&["status", "--admin", &admin]);
    assert_eq!(code, Some(0), "{err}");
    let st: serde_json::Value = serde_json::from_str(&out).expect("status prints JSON");
    let addrs: Vec<&str> = st["upstreams"][0]["servers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["addr"].as_str().unwrap())
        .collect();
    assert_eq!(addrs, [a.addr.to_string(), b.addr.to_string()]);

    let a_addr = a.addr.to_string();
    let (code, out, err) = cli(&["drain", "app", &a_addr, "--admin", &admin]);
    assert_eq!(code, Some(0), "{out} {err}");
    assert_eq!(gw.server_state("app", a.addr), "draining");
    let (_, out, _) = cli(&["status", "--admin", &admin]);
    assert!(out.contains("\"draining\""), "{out}");
    for _ in 0..6 {
        let (status, body) = raw_http(
            local(port),
            "GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        );
        assert_eq!((status, body.as_str()), (200, "hello from b\n"));
    }

    let (code, _, err) = cli(&["drain", "app", &a_addr, "--enable", "--admin", &admin]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(gw.server_state("app", a.addr), "up");

    // Unknown upstream or server: a non-zero exit naming it.
    let (code, _, err) = cli(&["drain", "nope", &a_addr, "--admin", &admin]);
    assert_ne!(code, Some(0));
    assert!(err.contains("404"), "{err}");

    // `reload --config FILE` finds the admin address in the file.
    gw.write_config(&cfg(&[a.addr, b.addr, c.addr]));
    let file = gw.config_path.to_str().unwrap().to_string();
    let (code, out, err) = cli(&["reload", "--config", &file]);
    assert_eq!(code, Some(0), "{out} {err}");
    assert!(out.contains("\"servers_added\": 1"), "{out}");
    assert_eq!(gw.server_state("app", c.addr), "up");

    // A gateway that is not there: a clear error, non-zero exit.
    let nobody = local(free_port()).to_string();
    let (code, _, err) = cli(&["status", "--admin", &nobody]);
    assert_ne!(code, Some(0));
    assert!(err.contains("cannot reach the admin API"), "{err}");
}
