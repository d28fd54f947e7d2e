//! HTTPS listeners as an operator meets them: certificates rotated under load (new paths, and
//! the same files rewritten in place), bad reloads refused while the old certificate keeps
//! serving, `ballast check` on broken files, SNI, and what status, metrics and events say.
//! Real `ballast` processes, a real demo backend, a real TLS client that records the served
//! certificate's CN.

mod common;
mod tls_client;

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, SystemTime};

use common::*;
use tls_client::*;

/// One https listener `web` on `port` with `tls` (the table's text), one catch-all route to
/// `backend`.
fn https_config(port: u16, tls: &str, backend: SocketAddr) -> String {
    format!(
        r#"{}protocol = "https"
tls = {tls}
[[route]]
upstream = "app"
[[upstream]]
name = "app"
servers = [{{ addr = "{backend}" }}]
"#,
        preamble(port)
    )
}

fn short_tls(cert: &Path, key: &Path) -> String {
    format!(
        r#"{{ cert = "{}", key = "{}" }}"#,
        cert.display(),
        key.display()
    )
}

/// Events of `kind` from the admin API.
fn events(gw: &Gateway, kind: &str) -> Vec<serde_json::Value> {
    let (code, body) = gw.admin_get("/api/v1/events");
    assert_eq!(code, 200, "{body}");
    let all: serde_json::Value = serde_json::from_str(&body).unwrap();
    all.as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == kind)
        .cloned()
        .collect()
}

/// Runs keep-alive and new-connection clients, calls `rotate` once some requests went
/// through, waits until new handshakes get `CN=new`, lets the load go on, and checks that
/// nothing failed and the keep-alive connections survived.
async fn rotate_under_load(gw: &Gateway, addr: SocketAddr, rotate: impl FnOnce()) {
    let load = TlsLoad::start(addr, 4, 2);
    wait_for(
        "requests before the reload",
        Duration::from_secs(20),
        || load.completed() >= 100,
    )
    .await;
    assert_eq!(load.latest_cn(), "old");
    rotate();
    wait_for(
        "new handshakes to get the new certificate",
        Duration::from_secs(20),
        || load.latest_cn() == "new",
    )
    .await;
    let at_swap = load.completed();
    wait_for("requests after the reload", Duration::from_secs(20), || {
        load.completed() >= at_swap + 100
    })
    .await;
    let opened = load
        .keep_alive_opened
        .load(std::sync::atomic::Ordering::Relaxed);
    let (ok, failed, samples) = load.finish().await;
    println!("rotation under load: {ok} requests ok, {failed} failed, {opened} keep-alive connections opened");
    assert_eq!(failed, 0, "{ok} ok, {failed} failed: {samples:?}");
    assert_eq!(
        opened, 4,
        "keep-alive connections were dropped and reopened across the reload"
    );
    assert_eq!(served_cn(addr, "localhost").await.unwrap(), "new");
    // The socket was never re-bound: one start, no stop.
    assert_eq!(events(gw, "listener_started").len(), 1);
    assert!(events(gw, "listener_stopped").is_empty());
    let loaded = events(gw, "certificate_loaded");
    assert_eq!(loaded.len(), 2, "{loaded:?}");
    assert_eq!(loaded[1]["subject"], "CN=new");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_to_new_paths_under_load() {
    let b = Backend::start("alpha");
    let dir = scratch("tls-rotate-paths");
    let (old_cert, old_key) = cert_files(&dir, "old", "old", &["localhost"]);
    let (new_cert, new_key) = cert_files(&dir, "new", "new", &["localhost"]);
    let port = free_port();
    let gw = Gateway::start(
        "tls-rotate-paths",
        &https_config(port, &short_tls(&old_cert, &old_key), b.addr),
    );
    rotate_under_load(&gw, local(port), || {
        gw.write_config(&https_config(port, &short_tls(&new_cert, &new_key), b.addr));
        gw.signal(libc::SIGHUP);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_by_rewriting_the_same_files_under_load() {
    let b = Backend::start("alpha");
    let dir = scratch("tls-rotate-in-place");
    let (cert, key) = cert_files(&dir, "site", "old", &["localhost"]);
    let port = free_port();
    let gw = Gateway::start(
        "tls-rotate-in-place",
        &https_config(port, &short_tls(&cert, &key), b.addr),
    );
    rotate_under_load(&gw, local(port), || {
        // What certbot does: same paths, new contents; the config file is unchanged.
        write_cert(&cert, &key, "new", &["localhost"], None);
        gw.signal(libc::SIGHUP);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_reloads_keep_the_old_certificate_serving() {
    let b = Backend::start("alpha");
    let dir = scratch("tls-refused");
    let (old_cert, old_key) = cert_files(&dir, "old", "old", &["localhost"]);
    let (new_cert, _new_key) = cert_files(&dir, "new", "new", &["localhost"]);
    let port = free_port();
    let addr = local(port);
    let gw = Gateway::start(
        "tls-refused",
        &https_config(port, &short_tls(&old_cert, &old_key), b.addr),
    );
    assert_eq!(served_cn(addr, "localhost").await.unwrap(), "old");

    // An unreadable key.
    let missing = dir.join("missing.key");
    gw.write_config(&https_config(port, &short_tls(&new_cert, &missing), b.addr));
    let (code, body) = gw.admin_post("/api/v1/reload");
    assert_eq!(code, 422, "{body}");
    assert!(body.contains(r#"listener \"web\": tls.key"#), "{body}");
    assert!(body.contains(&missing.display().to_string()), "{body}");
    assert_eq!(served_cn(addr, "localhost").await.unwrap(), "old");

    // A key that belongs to another certificate.
    gw.write_config(&https_config(port, &short_tls(&new_cert, &old_key), b.addr));
    let (code, body) = gw.admin_post("/api/v1/reload");
    assert_eq!(code, 422, "{body}");
    assert!(body.contains("does not match"), "{body}");
    assert!(body.contains(&old_key.display().to_string()), "{body}");
    assert_eq!(served_cn(addr, "localhost").await.unwrap(), "old");

    // The listener moved to a port that is taken: the old socket keeps serving.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken_port = taken.local_addr().unwrap().port();
    gw.write_config(&https_config(
        taken_port,
        &short_tls(&old_cert, &old_key),
        b.addr,
    ));
    let (code, body) = gw.admin_post("/api/v1/reload");
    assert_eq!(code, 422, "{body}");
    assert!(body.contains("cannot listen on"), "{body}");
    assert_eq!(served_cn(addr, "localhost").await.unwrap(), "old");

    assert!(events(&gw, "listener_stopped").is_empty());
    assert_eq!(events(&gw, "listener_started").len(), 1);
    let m = gw.metrics();
    assert_eq!(
        metric_value(&m, "ballast_reloads_total{result=\"error\"}"),
        Some(3.0),
        "{m}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moving_a_listener_binds_the_new_port_before_closing_the_old() {
    let b = Backend::start("alpha");
    let dir = scratch("tls-move");
    let (cert, key) = cert_files(&dir, "site", "site", &["localhost"]);
    let (port, new_port) = (free_port(), free_port());
    let gw = Gateway::start(
        "tls-move",
        &https_config(port, &short_tls(&cert, &key), b.addr),
    );
    gw.write_config(&https_config(new_port, &short_tls(&cert, &key), b.addr));
    let (code, body) = gw.admin_post("/api/v1/reload");
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        served_cn(local(new_port), "localhost").await.unwrap(),
        "site"
    );
    wait_until(
        "the old address to stop accepting",
        Duration::from_secs(10),
        || std::net::TcpStream::connect(local(port)).is_err(),
    );
    let stopped = events(&gw, "listener_stopped");
    assert_eq!(stopped.len(), 1, "{stopped:?}");
    assert_eq!(stopped[0]["addr"], local(port).to_string());
    let started = events(&gw, "listener_started");
    assert_eq!(started.len(), 2, "{started:?}");
    assert_eq!(started[1]["addr"], local(new_port).to_string());
    assert_eq!(started[1]["protocol"], "https");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sni_picks_the_certificate_and_status_metrics_and_events_show_them() {
    let b = Backend::start("alpha");
    let dir = scratch("tls-sni");
    let (a_cert, a_key) = cert_files(&dir, "a", "a", &["a.example"]);
    let (b_cert, b_key) = cert_files(&dir, "b", "b", &["*.b.example"]);
    let (d_cert, d_key) = cert_files(&dir, "d", "fallback", &["localhost"]);
    let tls = format!(
        r#"{{ certs = [
  {{ cert = "{}", key = "{}", names = ["a.example"] }},
  {{ cert = "{}", key = "{}", names = ["*.b.example"] }},
  {{ cert = "{}", key = "{}" }},
] }}"#,
        a_cert.display(),
        a_key.display(),
        b_cert.display(),
        b_key.display(),
        d_cert.display(),
        d_key.display()
    );
    let port = free_port();
    let addr = local(port);
    let gw = Gateway::start("tls-sni", &https_config(port, &tls, b.addr));

    assert_eq!(served_cn(addr, "a.example").await.unwrap(), "a");
    assert_eq!(served_cn(addr, "A.Example").await.unwrap(), "a");
    assert_eq!(served_cn(addr, "x.b.example").await.unwrap(), "b");
    assert_eq!(
        served_cn(addr, "unknown.example").await.unwrap(),
        "fallback"
    );
    // One label only: the wildcard does not cover deeper names.
    assert_eq!(served_cn(addr, "y.x.b.example").await.unwrap(), "fallback");

    // 2099-01-01T00:00:00Z, the notAfter every test certificate has.
    let not_after = 4_070_908_800i64;
    let m = gw.metrics();
    for name in ["a.example", "*.b.example", "default"] {
        let series = format!("ballast_tls_cert_expiry_seconds{{listener=\"web\",name=\"{name}\"}}");
        assert_eq!(
            metric_value(&m, &series),
            Some(not_after as f64),
            "{series} in\n{m}"
        );
    }
    promtool_check(&gw, &m);

    let st = gw.status();
    let certs = st["listeners"][0]["certificates"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(certs.len(), 3, "{st}");
    assert_eq!(certs[0]["names"], serde_json::json!(["a.example"]));
    assert_eq!(certs[0]["subject"], "CN=a");
    assert_eq!(certs[0]["default"], false);
    assert_eq!(certs[2]["default"], true);
    assert_eq!(certs[2]["not_after_unix"], not_after);
    assert_eq!(certs[2]["not_after"], "2099-01-01T00:00:00Z");
    let days = certs[2]["days_left"].as_i64().unwrap();
    let expected = (not_after - now_unix()) / 86_400;
    assert!(
        (expected - 1..=expected).contains(&days),
        "{days} vs {expected}"
    );

    let loaded = events(&gw, "certificate_loaded");
    assert_eq!(loaded.len(), 3, "{loaded:?}");
    assert_eq!(loaded[1]["names"], serde_json::json!(["*.b.example"]));
    assert_eq!(loaded[1]["not_after_unix"], not_after);
    assert!(loaded[2]["names"].as_array().unwrap().is_empty());
    let started = events(&gw, "listener_started");
    assert_eq!(started.len(), 1);
    assert_eq!(started[0]["listener"], "web");
    assert_eq!(started[0]["addr"], addr.to_string());
}

fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn promtool_check(gw: &Gateway, text: &str) {
    let file = gw.dir.join("metrics.txt");
    std::fs::write(&file, text).unwrap();
    let out = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::fs::File::open(&file).unwrap())
        .output()
        .expect("promtool (Debian package `prometheus`, as .ci/run installs)");
    assert!(
        out.status.success(),
        "promtool check metrics failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A config file for `ballast check` with one https listener using `cert` and `key`.
fn check_file(dir: &Path, cert: &Path, key: &Path) -> String {
    let file = dir.join("check.toml");
    std::fs::write(
        &file,
        https_config(free_port(), &short_tls(cert, key), local(9))
            .replace("{ADMIN}", "127.0.0.1:0")
            .replace("{ACCESS_LOG}", "off"),
    )
    .unwrap();
    file.display().to_string()
}

#[test]
fn check_loads_the_certificates() {
    let dir = scratch("tls-check");
    let (a_cert, a_key) = cert_files(&dir, "a", "a", &["localhost"]);
    let (_b_cert, b_key) = cert_files(&dir, "b", "b", &["localhost"]);

    // Good files: OK.
    let (code, out, err) = cli(&["check", "--config", &check_file(&dir, &a_cert, &a_key)]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("OK"), "{out}");

    // A key that does not match its certificate.
    let (code, out, err) = cli(&["check", "--config", &check_file(&dir, &a_cert, &b_key)]);
    assert_eq!(code, Some(64), "{out}{err}");
    assert!(err.contains(r#"listener "web": tls.key"#), "{err}");
    assert!(err.contains("does not match"), "{err}");
    assert!(err.contains(&b_key.display().to_string()), "{err}");
    assert!(!out.contains("OK"), "{out}");

    // A key file that is not PEM.
    let garbage = dir.join("garbage.key");
    std::fs::write(&garbage, "garbage\n").unwrap();
    let (code, out, err) = cli(&["check", "--config", &check_file(&dir, &a_cert, &garbage)]);
    assert_eq!(code, Some(64), "{out}{err}");
    assert!(err.contains(r#"listener "web": tls.key"#), "{err}");
    assert!(err.contains(&garbage.display().to_string()), "{err}");
    assert!(err.contains("no PEM private key"), "{err}");

    // A certificate file that is not PEM.
    let (code, out, err) = cli(&["check", "--config", &check_file(&dir, &garbage, &a_key)]);
    assert_eq!(code, Some(64), "{out}{err}");
    assert!(err.contains(r#"listener "web": tls.cert"#), "{err}");
    assert!(err.contains("no PEM certificate"), "{err}");

    // An expired certificate.
    let (old_cert, old_key) = (dir.join("expired.crt"), dir.join("expired.key"));
    let yesterday = SystemTime::now() - Duration::from_secs(86_400);
    write_cert(
        &old_cert,
        &old_key,
        "expired",
        &["localhost"],
        Some(yesterday),
    );
    let (code, out, err) = cli(&["check", "--config", &check_file(&dir, &old_cert, &old_key)]);
    assert_eq!(code, Some(64), "{out}{err}");
    assert!(err.contains(r#"listener "web": tls.cert"#), "{err}");
    assert!(err.contains("expired"), "{err}");
    assert!(err.contains(&old_cert.display().to_string()), "{err}");

    // Expiring within 30 days: a warning with the days left, and still OK.
    let (soon_cert, soon_key) = (dir.join("soon.crt"), dir.join("soon.key"));
    let in_ten_days = SystemTime::now() + Duration::from_secs(10 * 86_400 + 3_600);
    write_cert(
        &soon_cert,
        &soon_key,
        "soon",
        &["localhost"],
        Some(in_ten_days),
    );
    let (code, out, err) = cli(&[
        "check",
        "--config",
        &check_file(&dir, &soon_cert, &soon_key),
    ]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("warning: "), "{out}");
    assert!(out.contains("expires in 10 days"), "{out}");
    assert!(out.contains("OK"), "{out}");
}

/// A listener config on `port` named `name`, with `extra` lines (protocol, tls, limits).
fn listener_config(port: u16, name: &str, extra: &str, backend: SocketAddr) -> String {
    format!(
        r#"
[admin]
listen = "{{ADMIN}}"
[log]
access = "{{ACCESS_LOG}}"
[[listener]]
name = "{name}"
listen = "127.0.0.1:{port}"
{extra}
[[route]]
upstream = "app"
[[upstream]]
name = "app"
servers = [{{ addr = "{backend}" }}]
"#
    )
}

/// `GET /` with `n` extra headers on a new plain connection; the status.
fn status_with_headers(addr: SocketAddr, n: usize) -> u16 {
    let mut req = String::from("GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n");
    for i in 0..n {
        req.push_str(&format!("X-H{i}: {i}\r\n"));
    }
    req.push_str("\r\n");
    raw_http(addr, &req).0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protocol_name_and_limits_change_on_the_bound_socket() {
    let b = Backend::start("alpha");
    let dir = scratch("tls-in-place-settings");
    let (cert, key) = cert_files(&dir, "site", "site", &["localhost"]);
    let port = free_port();
    let addr = local(port);
    let gw = Gateway::start(
        "tls-in-place-settings",
        &listener_config(port, "web", "", b.addr),
    );
    let mut plain = Conn::open(addr).await.unwrap();
    assert_eq!(plain.get("/").await.unwrap().status, 200);
    assert_eq!(status_with_headers(addr, 30), 200);

    // http -> https under another name: same socket, new handshakes get TLS.
    gw.write_config(&listener_config(
        port,
        "site",
        &format!("protocol = \"https\"\ntls = {}", short_tls(&cert, &key)),
        b.addr,
    ));
    let (code, body) = gw.admin_post("/api/v1/reload");
    assert_eq!(code, 200, "{body}");
    let report: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(report["listeners_started"], serde_json::json!([]), "{body}");
    assert_eq!(report["listeners_stopped"], serde_json::json!([]), "{body}");
    assert_eq!(served_cn(addr, "localhost").await.unwrap(), "site");
    // The connection accepted before the change keeps its (plain) settings.
    assert_eq!(plain.get("/").await.unwrap().status, 200);
    let st = gw.status();
    assert_eq!(st["listeners"][0]["name"], "site");
    assert_eq!(st["listeners"][0]["protocol"], "https");

    // Back to plain http with a lower header limit: it applies to new connections at once.
    gw.write_config(&listener_config(port, "web", "max_headers = 20", b.addr));
    let (code, body) = gw.admin_post("/api/v1/reload");
    assert_eq!(code, 200, "{body}");
    assert_eq!(status_with_headers(addr, 30), 431);
    assert_eq!(status_with_headers(addr, 5), 200);
    assert!(gw.status()["listeners"][0]["certificates"]
        .as_array()
        .unwrap()
        .is_empty());
    let m = gw.metrics();
    assert!(
        !m.contains("ballast_tls_cert_expiry_seconds{"),
        "no https listener left: {m}"
    );

    assert_eq!(events(&gw, "listener_started").len(), 1);
    assert!(events(&gw, "listener_stopped").is_empty());
}
