//! Reload and shutdown of a running gateway: no client errors while reloading under load,
//! refused reloads leave the running config alone, health state survives a reload, and
//! SIGTERM lets in-flight requests finish.

mod common;

use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;

/// A config with one http listener, optional extra routes before the catch-all, and one
/// upstream `app` with `balance` and `servers` (`(addr, weight)`), plus `upstream_extra` keys.
fn config(
    port: u16,
    extra_routes: &str,
    balance: &str,
    upstream_extra: &str,
    servers: &[(SocketAddr, u32)],
) -> String {
    let servers: Vec<String> = servers
        .iter()
        .map(|(a, w)| format!("{{ addr = \"{a}\", weight = {w} }}"))
        .collect();
    format!(
        r#"
[admin]
listen = "{{ADMIN}}"
[log]
access = "{{ACCESS_LOG}}"
[runtime]
grace = "10s"
[[listener]]
name = "web"
listen = "127.0.0.1:{port}"
{extra_routes}
[[route]]
name = "main"
upstream = "app"
[[upstream]]
name = "app"
balance = "{balance}"
{upstream_extra}
servers = [{}]
"#,
        servers.join(", ")
    )
}

fn balance_of(gw: &Gateway) -> String {
    gw.status()["upstreams"][0]["balance"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn route_names(gw: &Gateway) -> Vec<String> {
    gw.status()["routes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap().to_string())
        .collect()
}

const EXTRA_ROUTE: &str = r#"
[[route]]
name = "extra"
match = { path_prefix = "/extra/" }
upstream = "app"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_under_load_has_no_errors() {
    let (a, b, c) = (
        Backend::start("a"),
        Backend::start("b"),
        Backend::start("c"),
    );
    let port = free_port();
    let gw = Gateway::start(
        "reload-load",
        &config(port, "", "round-robin", "", &[(a.addr, 1), (b.addr, 1)]),
    );
    let addr = local(port);

    let stop = Arc::new(AtomicBool::new(false));
    let load_task = tokio::spawn(load(addr, 16, 1_000_000, "/", stop.clone()));

    let gw = Arc::new(gw);
    let c_addr = c.addr;
    let steps = {
        let gw = gw.clone();
        let (a_addr, b_addr) = (a.addr, b.addr);
        let c_before = backend_count(&c);
        let c_count = move || {
            let (_, body) = raw_http(
                c_addr,
                "GET /_ctl/count HTTP/1.1\r\nHost: c\r\nConnection: close\r\n\r\n",
            );
            body.trim().parse::<u64>().unwrap_or(0)
        };
        tokio::task::spawn_blocking(move || {
            let pause = || std::thread::sleep(Duration::from_millis(400));
            let three = [(a_addr, 1), (b_addr, 1), (c_addr, 2)];
            pause();

            // 1: SIGHUP, adding server c, a route, and changing the algorithm.
            gw.write_config(&config(port, EXTRA_ROUTE, "least-connections", "", &three));
            gw.signal(libc::SIGHUP);
            wait_until("reload 1 to apply", Duration::from_secs(10), || {
                balance_of(&gw) == "least-connections"
            });
            wait_until(
                "the added server to receive traffic",
                Duration::from_secs(10),
                || c_count() > c_before + 5,
            );
            pause();

            // 2: the admin API.
            gw.write_config(&config(
                port,
                EXTRA_ROUTE,
                "weighted-round-robin",
                "",
                &three,
            ));
            let (code, body) = gw.admin_post("/api/v1/reload");
            assert_eq!(code, 200, "{body}");
            assert_eq!(balance_of(&gw), "weighted-round-robin");
            pause();

            // 3: SIGHUP again, with a pool setting changed too.
            gw.write_config(&config(
                port,
                EXTRA_ROUTE,
                "peak-ewma",
                "pool = { max_idle = 8 }",
                &three,
            ));
            gw.signal(libc::SIGHUP);
            wait_until("reload 3 to apply", Duration::from_secs(10), || {
                balance_of(&gw) == "peak-ewma"
            });
            pause();
        })
    };
    let steps_result = steps.await;
    stop.store(true, Ordering::Relaxed);
    let (ok, errors, samples) = load_task.await.unwrap();
    steps_result.unwrap();

    assert_eq!(errors, 0, "client errors during reloads: {samples:?}");
    assert!(ok > 0);

    let st = gw.status();
    let servers: Vec<&str> = st["upstreams"][0]["servers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["addr"].as_str().unwrap())
        .collect();
    assert_eq!(
        servers,
        [a.addr.to_string(), b.addr.to_string(), c_addr.to_string()]
    );
    assert_eq!(route_names(&gw), ["extra", "main"]);
    wait_until("three reloads counted", Duration::from_secs(5), || {
        metric_value(&gw.metrics(), "ballast_reloads_total{result=\"ok\"}") == Some(3.0)
    });
    // The new route serves, and c takes requests directly after the reloads too.
    let mut conn = Conn::open(addr).await.unwrap();
    let mut seen_c = false;
    for _ in 0..12 {
        let r = conn.get("/extra/x").await.unwrap();
        assert_eq!(r.status, 200);
        seen_c |= r.backend() == Some("c");
    }
    assert!(seen_c, "server c added by reload never answered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_reload_is_refused_and_running_config_stays() {
    let (a, b) = (Backend::start("a"), Backend::start("b"));
    let port = free_port();
    let mut gw = Gateway::start(
        "reload-invalid",
        &config(port, "", "round-robin", "", &[(a.addr, 1)]),
    );
    let addr = local(port);

    // A bare duration: the file does not validate.
    let broken = config(
        port,
        "[[route]]\nname = \"slow\"\nmatch = { path_prefix = \"/s/\" }\nupstream = \"app\"\ntimeout = { connect = 300 }\n",
        "round-robin",
        "",
        &[(b.addr, 1)],
    );
    let line = broken
        .lines()
        .position(|l| l.contains("connect = 300"))
        .unwrap()
        + 1;
    gw.write_config(&broken);
    let (code, body) = gw.admin_post("/api/v1/reload");
    assert_eq!(code, 422, "{body}");
    let err: serde_json::Value = serde_json::from_str(&body).unwrap();
    let msg = err["error"].as_str().unwrap();
    assert!(msg.contains("route[0].timeout.connect"), "{msg}");
    assert!(
        msg.contains(&format!(":{line}:")),
        "line {line} expected: {msg}"
    );
    assert!(msg.contains("300ms"), "{msg}");

    let still_old = |gw: &Gateway| {
        let st = gw.status();
        assert_eq!(st["upstreams"][0]["servers"].as_array().unwrap().len(), 1);
        assert_eq!(st["upstreams"][0]["servers"][0]["addr"], a.addr.to_string());
        assert_eq!(route_names(gw), ["main"]);
    };
    still_old(&gw);
    let r = get(addr, "/", &[]).await.unwrap();
    assert_eq!((r.status, r.backend()), (200, Some("a")));

    // SIGHUP with the same broken file: the process keeps running on the old config.
    gw.signal(libc::SIGHUP);
    wait_until(
        "the refused SIGHUP reload to be counted",
        Duration::from_secs(10),
        || {
            metric_value(&gw.metrics(), "ballast_reloads_total{result=\"error\"}")
                .is_some_and(|v| v >= 2.0)
        },
    );
    assert!(gw.is_running(), "SIGHUP with a bad file stopped ballast");
    still_old(&gw);
    let r = get(addr, "/", &[]).await.unwrap();
    assert_eq!((r.status, r.backend()), (200, Some("a")));

    // A file that validates but cannot be applied (its new listener's port is taken) is
    // refused as a whole too.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken_port = taken.local_addr().unwrap().port();
    let unbindable = config(port, "", "round-robin", "", &[(b.addr, 1)]).replace(
        "[[route]]",
        &format!("[[listener]]\nname = \"more\"\nlisten = \"127.0.0.1:{taken_port}\"\n[[route]]"),
    );
    gw.write_config(&unbindable);
    let (code, body) = gw.admin_post("/api/v1/reload");
    assert_eq!(code, 422, "{body}");
    assert!(body.contains("more"), "{body}");
    still_old(&gw);
    let r = get(addr, "/", &[]).await.unwrap();
    assert_eq!((r.status, r.backend()), (200, Some("a")));

    let metrics = gw.metrics();
    assert_eq!(
        metric_value(&metrics, "ballast_reloads_total{result=\"error\"}"),
        Some(3.0),
        "{metrics}"
    );
    assert_eq!(
        metric_value(&metrics, "ballast_reloads_total{result=\"ok\"}"),
        Some(0.0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unchanged_servers_keep_health_state() {
    let (a, b) = (Backend::start("a"), Backend::start("b"));
    let port = free_port();
    let health = r#"health = { path = "/healthz", interval = "500ms", timeout = "250ms", rise = 2, fall = 2 }"#;
    let servers = [(a.addr, 1), (b.addr, 1)];
    let gw = Gateway::start(
        "reload-health",
        &config(port, "", "round-robin", health, &servers),
    );
    let addr = local(port);

    // b fails its health checks (but would still answer ordinary requests).
    let (code, _) = raw_http(
        b.addr,
        "POST /_ctl/health/fail HTTP/1.1\r\nHost: b\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(code, 200);
    wait_until("b to be marked down", Duration::from_secs(15), || {
        gw.server_state("app", b.addr) == "down"
    });
    assert_eq!(gw.server_state("app", a.addr), "up");

    // A reload that keeps both servers (and changes something else).
    gw.write_config(&config(
        port,
        EXTRA_ROUTE,
        "least-connections",
        health,
        &servers,
    ));
    let (code, body) = gw.admin_post("/api/v1/reload");
    assert_eq!(code, 200, "{body}");
    let report: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(report["result"], "reloaded", "{body}");
    assert_eq!(report["servers_kept"], 2, "{body}");
    assert_eq!(report["servers_added"], 0, "{body}");

    assert_eq!(
        gw.server_state("app", b.addr),
        "down",
        "a reload reset the health of an unchanged server"
    );
    assert_eq!(gw.server_state("app", a.addr), "up");
    let mut conn = Conn::open(addr).await.unwrap();
    for _ in 0..10 {
        let r = conn.get("/").await.unwrap();
        assert_eq!(r.backend(), Some("a"), "traffic went to the down server");
    }
    assert_eq!(gw.server_state("app", b.addr), "down");
    let metrics = gw.metrics();
    assert_eq!(
        metric_value(
            &metrics,
            &format!(
                "ballast_server_health_up{{upstream=\"app\",server=\"{}\"}}",
                b.addr
            )
        ),
        Some(0.0),
        "{metrics}"
    );

    // Health checking goes on after the reload: b recovers.
    raw_http(
        b.addr,
        "POST /_ctl/health/ok HTTP/1.1\r\nHost: b\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    );
    wait_until("b to be marked up again", Duration::from_secs(15), || {
        gw.server_state("app", b.addr) == "up"
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_in_flight() {
    let a = Backend::start("a");
    let port = free_port();
    let mut gw = Gateway::start(
        "sigterm",
        &config(port, "", "round-robin", "", &[(a.addr, 1)]),
    );
    let addr = local(port);

    // An idle keep-alive connection must not hold shutdown up.
    let mut idle = Conn::open(addr).await.unwrap();
    assert_eq!(idle.get("/").await.unwrap().status, 200);

    let slow = tokio::spawn(async move { get(addr, "/slow/1500", &[]).await });
    wait_until(
        "the slow request to be in flight",
        Duration::from_secs(5),
        || gw.status()["upstreams"][0]["servers"][0]["inflight"] == 1,
    );
    gw.signal(libc::SIGTERM);

    wait_until(
        "new connections to be refused",
        Duration::from_secs(5),
        || TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err(),
    );
    let r = slow.await.unwrap().expect("in-flight request failed");
    assert_eq!(r.status, 200);
    assert_eq!(r.body, "slow hello from a\n");

    let code = gw.wait_exit(Duration::from_secs(15));
    assert_eq!(code, Some(0), "exit code; stderr:\n{}", gw.stderr());
    let stderr = gw.stderr();
    assert!(
        stderr.contains("all connections finished"),
        "shutdown waited for the grace period instead of finishing:\n{stderr}"
    );
    assert!(idle.get("/").await.is_err(), "idle connection still served");
    // The access log is flushed before exit: the drained request's line is there.
    assert!(
        gw.access_lines()
            .iter()
            .any(|l| l["path"] == "/slow/1500" && l["status"] == 200),
        "the in-flight request's access-log line was lost at shutdown"
    );
}
