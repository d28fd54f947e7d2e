//! Failover through real processes: backends are SIGKILLed and revived while the gateway serves,
//! and the tests check what clients see (no errors where failover can hide the fault) and what
//! the status API reports (down, ejected, draining, up again).

mod common;

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::*;

/// Generous bound for anything that depends on health checks or process start.
const WAIT: Duration = Duration::from_secs(15);

/// Fast active checks so transitions take well under a second.
const HEALTH: &str =
    r#"health = { path = "/healthz", interval = "200ms", timeout = "100ms", rise = 2, fall = 2 }"#;

/// A gateway with one listener, one catch-all route and one upstream `app` whose body (keys and
/// `servers`) is `upstream`. Returns the gateway and the listener address.
fn gateway(name: &str, upstream: &str) -> (Gateway, SocketAddr) {
    let port = free_port();
    let config = [
        "[admin]\nlisten = \"{ADMIN}\"\n[log]\naccess = \"{ACCESS_LOG}\"\n",
        &format!("[[listener]]\nname = \"web\"\nlisten = \"127.0.0.1:{port}\"\n"),
        "[[route]]\nupstream = \"app\"\n",
        "[[upstream]]\nname = \"app\"\n",
        upstream,
        "\n",
    ]
    .concat();
    let gw = Gateway::start(name, &config);
    (gw, format!("127.0.0.1:{port}").parse().unwrap())
}

/// `servers = [...]` for `primaries`, then `backups` marked `backup = true`.
fn servers(primaries: &[&Backend], backups: &[&Backend]) -> String {
    let items: Vec<String> = primaries
        .iter()
        .map(|b| format!("{{ addr = \"{}\" }}", b.addr))
        .chain(
            backups
                .iter()
                .map(|b| format!("{{ addr = \"{}\", backup = true }}", b.addr)),
        )
        .collect();
    format!("servers = [{}]", items.join(", "))
}

/// The status JSON of every server of upstream `app`.
fn app_servers(gw: &Gateway) -> Vec<serde_json::Value> {
    let st = gw.status();
    st["upstreams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"] == "app")
        .expect("upstream app in status")["servers"]
        .as_array()
        .unwrap()
        .clone()
}

fn server_field(gw: &Gateway, b: &Backend, field: &str) -> serde_json::Value {
    app_servers(gw)
        .into_iter()
        .find(|s| s["addr"] == b.addr.to_string())
        .unwrap_or_else(|| panic!("{} not in status", b.addr))[field]
        .clone()
}

async fn wait_state(gw: &Gateway, b: &Backend, state: &str) {
    wait_for(
        &format!("{} ({}) to be {state}", b.name, b.addr),
        WAIT,
        || gw.server_state("app", b.addr) == state,
    )
    .await;
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_under_load_has_no_client_errors() {
    let a = Backend::start("a");
    let mut b = Backend::start("b");
    let c = Backend::start("c");
    let (gw, addr) = gateway(
        "crash",
        &format!(
            "balance = \"round-robin\"\n{HEALTH}\n{}",
            servers(&[&a, &b, &c], &[])
        ),
    );

    let run = LoadRun::start(addr, 32, "/");
    wait_for(
        "1000 requests before the kill",
        Duration::from_secs(60),
        || run.completed() >= 1000,
    )
    .await;
    let killed_at = run.completed();
    let kill_time = unix_now();
    b.kill();
    // Keep the load on through the whole transition: ejection, then down by health checks.
    wait_for(
        "1000 more requests (2000 in all) and b down",
        Duration::from_secs(60),
        || {
            run.completed() >= (killed_at + 1000).max(2000)
                && gw.server_state("app", b.addr) == "down"
        },
    )
    .await;
    let t = run.finish().await;

    eprintln!(
        "requests: {} ({} before the kill), per backend: {:?}",
        t.total(),
        killed_at,
        t.by_backend
    );
    assert!(t.total() >= 2000, "only {} requests", t.total());
    assert!(
        t.total() - killed_at >= 300,
        "only {} requests after the kill",
        t.total() - killed_at
    );
    assert_eq!(
        t.errors,
        0,
        "{} of {} requests failed; samples: {:#?}",
        t.errors,
        t.total(),
        t.samples
    );
    assert!(
        t.of("b") > 0,
        "b served nothing before it was killed: {:?}",
        t.by_backend
    );
    assert!(t.of("a") > 0 && t.of("c") > 0, "{:?}", t.by_backend);
    assert_eq!(t.of("?"), 0, "answers without x-backend");
    assert_eq!(gw.server_state("app", b.addr), "down");

    // Informational: how the gateway hid the crash (retries, or b simply dropped out).
    let after: Vec<_> = gw
        .access_lines()
        .into_iter()
        .filter(|l| l["time"].as_f64().unwrap_or(0.0) >= kill_time)
        .collect();
    let retried = after
        .iter()
        .filter(|l| l["attempts"].as_u64().unwrap_or(0) >= 2)
        .count();
    let to_b = after
        .iter()
        .filter(|l| l["server"] == b.addr.to_string())
        .count();
    eprintln!(
        "access log after the kill: {} lines, {retried} with attempts >= 2, {to_b} answered by b",
        after.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revived_backend_is_used_after_rise() {
    let a = Backend::start("a");
    let mut b = Backend::start("b");
    let c = Backend::start("c");
    let (gw, addr) = gateway(
        "revive",
        &format!("{HEALTH}\n{}", servers(&[&a, &b, &c], &[])),
    );

    let t = tally_requests(addr, 30, "/", &[]).await;
    assert_eq!(t.errors, 0, "{:?}", t.samples);
    assert!(t.of("b") > 0, "b unused while up: {:?}", t.by_backend);

    b.kill();
    wait_state(&gw, &b, "down").await;
    let t = tally_requests(addr, 30, "/", &[]).await;
    assert_eq!(t.errors, 0, "{:?}", t.samples);
    assert_eq!(t.of("b"), 0, "a dead server answered?");

    b.revive();
    wait_state(&gw, &b, "up").await;
    let t = tally_requests(addr, 30, "/", &[]).await;
    assert_eq!(t.errors, 0, "{:?}", t.samples);
    assert!(
        t.of("b") > 0,
        "revived b gets no traffic after rising: {:?}",
        t.by_backend
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backups_only_when_all_primaries_down() {
    let mut p1 = Backend::start("p1");
    let mut p2 = Backend::start("p2");
    let bk = Backend::start("bk");
    let (gw, addr) = gateway(
        "backup",
        &format!("{HEALTH}\n{}", servers(&[&p1, &p2], &[&bk])),
    );

    let t = tally_requests(addr, 100, "/", &[]).await;
    assert_eq!(t.errors, 0, "{:?}", t.samples);
    assert_eq!(
        t.of("bk"),
        0,
        "backup used while primaries are up: {:?}",
        t.by_backend
    );
    assert_eq!(t.of("p1") + t.of("p2"), 100);

    p1.kill();
    p2.kill();
    wait_state(&gw, &p1, "down").await;
    wait_state(&gw, &p2, "down").await;
    let st = gw.status();
    let app = &st["upstreams"][0];
    assert_eq!(app["primaries_available"], false, "{app}");
    let t = tally_requests(addr, 30, "/", &[]).await;
    assert_eq!(t.errors, 0, "with every primary down: {:?}", t.samples);
    assert_eq!(t.of("bk"), 30, "{:?}", t.by_backend);

    p1.revive();
    wait_state(&gw, &p1, "up").await;
    let t = tally_requests(addr, 30, "/", &[]).await;
    assert_eq!(t.errors, 0, "{:?}", t.samples);
    assert_eq!(
        t.of("p1"),
        30,
        "traffic did not fail back to the recovered primary: {:?}",
        t.by_backend
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sticky_clients_follow_and_move() {
    let mut backends = [
        Backend::start("a"),
        Backend::start("b"),
        Backend::start("c"),
    ];
    let (gw, addr) = gateway(
        "sticky",
        &format!(
            "sticky = {{ cookie = \"SRV\" }}\n{HEALTH}\n{}",
            servers(&backends.iter().collect::<Vec<_>>(), &[])
        ),
    );

    let mut conn = Conn::open(addr).await.unwrap();
    let first = conn.get("/").await.unwrap();
    assert_eq!(first.status, 200);
    let cookie = first.set_cookie("SRV").expect("first response sets SRV");
    let pinned = first.backend().unwrap().to_string();
    let header = format!("SRV={cookie}");

    let t = tally_requests(addr, 20, "/", &[("cookie", &header)]).await;
    assert_eq!(t.errors, 0, "{:?}", t.samples);
    assert_eq!(
        t.of(&pinned),
        20,
        "not sticky to {pinned}: {:?}",
        t.by_backend
    );

    let victim = backends.iter_mut().find(|b| b.name == pinned).unwrap();
    victim.kill();
    let victim_addr = victim.addr;
    // Right after the crash, before health checks can have noticed: failover hides it.
    let moved = conn.request("GET", "/", &[("cookie", &header)], "").await;
    let moved = moved.expect("request with the old cookie failed");
    assert_eq!(moved.status, 200, "{}", moved.body);
    let new_server = moved.backend().unwrap().to_string();
    assert_ne!(new_server, pinned);
    let new_cookie = moved
        .set_cookie("SRV")
        .expect("a moved client gets a new SRV cookie");
    assert_ne!(new_cookie, cookie);
    let new_header = format!("SRV={new_cookie}");

    let t = tally_requests(addr, 20, "/", &[("cookie", &new_header)]).await;
    assert_eq!(t.errors, 0, "{:?}", t.samples);
    assert_eq!(
        t.of(&new_server),
        20,
        "not sticky to the new server {new_server}: {:?}",
        t.by_backend
    );

    // And once health has marked the old server down, the old cookie still lands somewhere.
    wait_for("killed server down", WAIT, || {
        gw.server_state("app", victim_addr) == "down"
    })
    .await;
    let t = tally_requests(addr, 10, "/", &[("cookie", &header)]).await;
    assert_eq!(t.errors, 0, "{:?}", t.samples);
    assert_eq!(t.of(&pinned), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_and_enable_via_admin_api() {
    let a = Backend::start("a");
    let b = Backend::start("b");
    let (gw, addr) = gateway(
        "drain",
        &format!(
            "sticky = {{ cookie = \"SRV\" }}\n{HEALTH}\n{}",
            servers(&[&a, &b], &[])
        ),
    );

    // Pin a client to `a` (round-robin gives each server its turn).
    let mut cookie_a = None;
    for _ in 0..4 {
        let r = get(addr, "/", &[]).await.unwrap();
        if r.backend() == Some("a") {
            cookie_a = r.set_cookie("SRV");
            break;
        }
    }
    let header_a = format!("SRV={}", cookie_a.expect("a cookie for server a"));

    // A slow request in flight on `a` when it is drained.
    let h = header_a.clone();
    let slow = tokio::spawn(async move { get(addr, "/slow/1500", &[("cookie", &h)]).await });
    wait_for("the slow request in flight on a", WAIT, || {
        server_field(&gw, &a, "inflight").as_u64() == Some(1)
    })
    .await;

    let (code, body) = gw.admin_post(&format!("/api/v1/servers/app/{}/drain", a.addr));
    assert_eq!(code, 200, "{body}");
    assert_eq!(gw.server_state("app", a.addr), "draining");

    let t = tally_requests(addr, 20, "/", &[]).await;
    assert_eq!(t.errors, 0, "{:?}", t.samples);
    assert_eq!(
        t.of("b"),
        20,
        "a drained server got new requests: {:?}",
        t.by_backend
    );
    let t = tally_requests(addr, 10, "/", &[("cookie", &header_a)]).await;
    assert_eq!(t.errors, 0, "{:?}", t.samples);
    assert_eq!(
        t.of("b"),
        10,
        "a sticky client stayed on the drained server: {:?}",
        t.by_backend
    );

    let r = slow
        .await
        .unwrap()
        .expect("in-flight request on the drained server");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.backend(), Some("a"));
    assert_eq!(gw.server_state("app", a.addr), "draining");

    let (code, body) = gw.admin_post(&format!("/api/v1/servers/app/{}/enable", a.addr));
    assert_eq!(code, 200, "{body}");
    assert_eq!(gw.server_state("app", a.addr), "up");
    let t = tally_requests(addr, 10, "/", &[("cookie", &header_a)]).await;
    assert_eq!(t.errors, 0, "{:?}", t.samples);
    assert_eq!(
        t.of("a"),
        10,
        "enabled server not used again: {:?}",
        t.by_backend
    );
    let t = tally_requests(addr, 10, "/", &[]).await;
    assert!(t.of("a") > 0 && t.of("b") > 0, "{:?}", t.by_backend);

    let (code, body) = gw.admin_post(&format!("/api/v1/servers/nope/{}/drain", a.addr));
    assert_eq!(code, 404, "unknown upstream: {body}");
    let (code, body) = gw.admin_post("/api/v1/servers/app/127.0.0.1:1/drain");
    assert_eq!(code, 404, "unknown server: {body}");
    let (code, body) = gw.admin_post("/api/v1/servers/nope/127.0.0.1:1/enable");
    assert_eq!(code, 404, "unknown upstream on enable: {body}");
    assert_eq!(gw.server_state("app", a.addr), "up");
}

const PASSIVE: &str =
    r#"passive = { consecutive_failures = 3, ejection = "2s", max_ejected = "50%" }"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passive_ejection_on_connect_failures() {
    let a = Backend::start("a");
    let mut b = Backend::start("b");
    let c = Backend::start("c");
    let (gw, addr) = gateway(
        "passive",
        &format!("{PASSIVE}\n{}", servers(&[&a, &b, &c], &[])),
    );
    b.kill();

    // Requests keep succeeding via the others while b fails; b ends up ejected.
    let mut t = Tally::default();
    let mut conn = Conn::open(addr).await.unwrap();
    let mut seen_ejected = false;
    for _ in 0..500 {
        let r = conn.get("/").await;
        assert!(
            matches!(&r, Ok(r) if r.status == 200),
            "request failed while b is being ejected: {r:?}"
        );
        t.ok += 1;
        if gw.server_state("app", b.addr) == "ejected" {
            seen_ejected = true;
            break;
        }
    }
    assert!(
        seen_ejected,
        "b never showed as ejected after {} requests",
        t.ok
    );
    assert!(server_field(&gw, &b, "ejections").as_u64().unwrap() >= 1);
    assert_eq!(gw.server_state("app", a.addr), "up");
    assert_eq!(gw.server_state("app", c.addr), "up");
    let t = tally_requests(addr, 30, "/", &[]).await;
    assert_eq!(t.errors, 0, "{:?}", t.samples);
    assert_eq!(t.of("a") + t.of("c"), 30);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passive_ejection_never_empties_the_pool() {
    let mut x = Backend::start("x");
    let mut y = Backend::start("y");
    let (gw, addr) = gateway("cap", &format!("{PASSIVE}\n{}", servers(&[&x, &y], &[])));
    x.kill();
    y.kill();

    // Concurrent failing load across several ejection periods; sample the pool throughout.
    let run = LoadRun::start(addr, 8, "/");
    let mut most_ejected = 0;
    let mut samples = 0;
    wait_for("three ejections in all", Duration::from_secs(30), || {
        let servers = app_servers(&gw);
        let ejected = servers.iter().filter(|s| s["state"] == "ejected").count();
        most_ejected = most_ejected.max(ejected);
        samples += 1;
        assert!(
            ejected <= 1,
            "max_ejected 50% of 2 servers, yet {ejected} are ejected: {servers:#?}"
        );
        servers
            .iter()
            .map(|s| s["ejections"].as_u64().unwrap())
            .sum::<u64>()
            >= 3
    })
    .await;
    let t = run.finish().await;
    eprintln!(
        "{samples} status samples, {} requests, {} failed",
        t.total(),
        t.errors
    );
    assert_eq!(most_ejected, 1, "never saw an ejection");
    assert_eq!(t.ok, 0, "dead servers answered?");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_start_ramps_share() {
    let a = Backend::start("a");
    let b = Backend::start("b");
    let mut c = Backend::start("c");
    let (gw, addr) = gateway(
        "slowstart",
        &format!(
            "balance = \"weighted-round-robin\"\nslow_start = \"4s\"\n{HEALTH}\n{}",
            servers(&[&a, &b, &c], &[])
        ),
    );
    c.kill();
    wait_state(&gw, &c, "down").await;
    c.revive();
    wait_state(&gw, &c, "up").await;

    // About the first second after c came back: its weight is at most ~30% of the others'.
    let run = LoadRun::start(addr, 8, "/");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let t = run.finish().await;
    eprintln!("first second after recovery: {:?}", t.by_backend);
    assert_eq!(t.errors, 0, "{:?}", t.samples);
    assert!(
        t.total() >= 20,
        "too few requests to compare: {}",
        t.total()
    );
    let others = (t.of("a") + t.of("b")) as f64 / 2.0;
    assert!(
        (t.of("c") as f64) < others / 2.0,
        "c got {} requests right after recovery, the others {} on average: {:?}",
        t.of("c"),
        others,
        t.by_backend
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aborted_uploads_do_not_eject_the_server() {
    // A client that gives up in the middle of its request body is the client's failure, not
    // the server's: passive health must not eject a healthy server for it.
    let b = Backend::start("a");
    let port = free_port();
    let extra = Extra {
        upstream: r#"passive = { consecutive_failures = 2, ejection = "30s", max_ejected = "100%" }"#,
        ..Extra::default()
    };
    let gw = Gateway::start(
        "abort-upload",
        &one_upstream_config(port, extra, &[(b.addr, 1)]),
    );
    let addr = local(port);
    for _ in 0..5 {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        use std::io::Write;
        s.write_all(
            b"POST /consume HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
        )
        .unwrap();
        // Let the gateway start forwarding the body, then vanish mid-body.
        tokio::time::sleep(Duration::from_millis(150)).await;
        drop(s);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(gw.server_state("app", b.addr), "up", "{}", gw.status());
    let r = get(addr, "/after", &[]).await.unwrap();
    assert_eq!(r.status, 200);
}
