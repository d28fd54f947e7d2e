//! The retry contract and the sorry page, through real sockets: a gateway process in front of
//! demo backend processes that are told to fail.

mod common;

use std::time::Duration;

use common::*;

/// One route with `route_extra` lines, one upstream of `servers` with passive health off (so
/// failing servers stay in the pool and every request meets them).
fn config(port: u16, route_extra: &str, upstream_extra: &str, servers: &[&Backend]) -> String {
    let servers: Vec<String> = servers
        .iter()
        .map(|b| format!(r#"{{ addr = "{}" }}"#, b.addr))
        .collect();
    format!(
        r#"{preamble}[[route]]
upstream = "app"
{route_extra}
[[upstream]]
name = "app"
passive = {{ enabled = false }}
{upstream_extra}
servers = [{}]
"#,
        servers.join(", "),
        preamble = preamble(port),
    )
}

#[test]
fn retry_budget_caps_amplification_over_a_long_failing_run() {
    let a = Backend::start("a");
    let b = Backend::start("b");
    a.force(503);
    b.force(503);
    let port = free_port();
    let gw = Gateway::start(
        "budget",
        &config(
            port,
            r#"retry = { attempts = 3, on = ["503"], budget = "10%", min_retries_per_second = 0, backoff = "1ms..2ms" }"#,
            "",
            &[&a, &b],
        ),
    );
    const N: u64 = 600;
    let statuses = rt().block_on(async {
        let mut c = Conn::open(local(port)).await.unwrap();
        let mut statuses = Vec::new();
        for _ in 0..N {
            statuses.push(c.get("/").await.unwrap().status);
        }
        statuses
    });
    assert!(statuses.iter().all(|s| *s == 503), "clients see the 503");
    let upstream = a.app_count() + b.app_count();
    let amplification = upstream as f64 / N as f64;
    eprintln!(
        "{upstream} upstream requests for {N} client requests: amplification {amplification:.3}"
    );
    // Integers: at most 10% of the requests may be retries.
    assert!(
        upstream >= N && upstream - N <= N / 10,
        "{upstream} upstream requests for {N} client requests: amplification {amplification:.3} must stay within 1 + budget (10%)"
    );
    let m = gw.metrics();
    let retries = metric_value(&m, r#"ballast_retries_total{route="route-0"}"#).unwrap();
    let refused = metric_value(
        &m,
        r#"ballast_retry_budget_exhausted_total{route="route-0"}"#,
    )
    .unwrap();
    assert!(retries > 0.0, "some retries were allowed: {m}");
    assert_eq!(
        retries as u64,
        upstream - N,
        "every extra upstream request is a counted retry"
    );
    assert!(refused > 0.0, "the budget refused retries");
    let (_, body) = gw.admin_get("/api/v1/events");
    assert!(
        body.contains(r#""kind":"retry_budget_exhausted""#),
        "the refusal is an event: {body}"
    );
    let st = gw.status();
    assert_eq!(st["routes"][0]["retry"]["budget_percent"], 10.0);
    assert_eq!(st["routes"][0]["retry"]["retries"], retries as u64);
}

#[test]
fn a_404_is_never_retried_and_a_503_is() {
    let a = Backend::start("a");
    let b = Backend::start("b");
    let port = free_port();
    let _gw = Gateway::start("no404", &config(port, "", "", &[&a, &b]));
    rt().block_on(async {
        let mut c = Conn::open(local(port)).await.unwrap();
        for _ in 0..20 {
            assert_eq!(c.get("/status/404").await.unwrap().status, 404);
        }
    });
    assert_eq!(
        a.app_count() + b.app_count(),
        20,
        "one upstream request per 404"
    );

    // The default policy retries 503 (within the default budget's floor of 5/s).
    let before = a.app_count() + b.app_count();
    let reply = rt().block_on(async { get(local(port), "/status/503", &[]).await.unwrap() });
    assert_eq!(reply.status, 503);
    assert_eq!(
        a.app_count() + b.app_count() - before,
        2,
        "a 503 is tried on the other server too (2 servers, so 2 attempts)"
    );
}

#[test]
fn the_upstream_can_forbid_a_retry() {
    let a = Backend::start("a");
    let b = Backend::start("b");
    let port = free_port();
    let gw = Gateway::start("forbid", &config(port, "", "", &[&a, &b]));
    let replies = rt().block_on(async {
        let mut c = Conn::open(local(port)).await.unwrap();
        let mut v = Vec::new();
        for _ in 0..10 {
            v.push(c.get("/status/503?no-retry").await.unwrap());
        }
        v
    });
    for r in &replies {
        assert_eq!(r.status, 503);
        assert!(
            !r.headers.contains_key("ballast-no-retry"),
            "the internal header is removed before the client"
        );
    }
    assert_eq!(a.app_count() + b.app_count(), 10, "no request was retried");
    let m = gw.metrics();
    assert_eq!(
        metric_value(&m, r#"ballast_retry_forbidden_total{route="route-0"}"#),
        Some(10.0)
    );

    // A Retry-After longer than `retry_after_max` (1s by default) ends the retries too.
    let before = a.app_count() + b.app_count();
    let r = rt().block_on(async {
        get(local(port), "/status/503?retry-after=30", &[])
            .await
            .unwrap()
    });
    assert_eq!(r.status, 503);
    assert_eq!(a.app_count() + b.app_count() - before, 1);
}

#[test]
fn the_backend_sees_the_attempt_number() {
    let a = Backend::start("a");
    let b = Backend::start("b");
    let c = Backend::start("c");
    a.force(503);
    let port = free_port();
    let _gw = Gateway::start("attempt", &config(port, "", "", &[&a, &b, &c]));
    let attempts: Vec<String> = rt().block_on(async {
        let mut conn = Conn::open(local(port)).await.unwrap();
        let mut v = Vec::new();
        for _ in 0..12 {
            let r = conn.get("/headers").await.unwrap();
            assert_eq!(
                r.status, 200,
                "a 503 from a is retried elsewhere: {}",
                r.body
            );
            assert_ne!(r.backend(), Some("a"));
            let h: serde_json::Value = serde_json::from_str(&r.body).unwrap();
            v.push(
                h["ballast-attempt"]
                    .as_str()
                    .unwrap_or("missing")
                    .to_string(),
            );
        }
        v
    });
    // Requests that met a first reach b or c as attempt 2; the others arrive as attempt 1.
    assert!(
        attempts.iter().any(|a| a == "2"),
        "retried requests say attempt 2: {attempts:?}"
    );
    assert!(
        attempts.iter().any(|a| a == "1"),
        "first tries say attempt 1: {attempts:?}"
    );
    assert!(
        attempts.iter().all(|a| a == "1" || a == "2"),
        "{attempts:?}"
    );
    assert_eq!(
        a.app_count() as usize,
        attempts.iter().filter(|a| *a == "2").count(),
        "every attempt 2 followed exactly one attempt on a"
    );
}

#[test]
fn sorry_page_with_every_backend_down_never_touches_them() {
    let a = Backend::start("a");
    let b = Backend::start("b");
    let port = free_port();
    let dir = scratch("sorry-page");
    std::fs::write(dir.join("down.html"), "<h1>back soon</h1>\n").unwrap();
    let route = format!(
        r#"sorry = {{ page = "{}", retry_after = "20s" }}"#,
        dir.join("down.html").display()
    );
    let gw = Gateway::start(
        "sorry",
        &config(
            port,
            &route,
            r#"health = { path = "/healthz", interval = "100ms", timeout = "100ms", rise = 1, fall = 1 }"#,
            &[&a, &b],
        ),
    );
    // An upstream 502 is replaced by the page.
    let r = rt().block_on(async { get(local(port), "/status/502", &[]).await.unwrap() });
    assert_eq!(r.status, 503);
    assert_eq!(r.body, "<h1>back soon</h1>\n");
    assert_eq!(r.headers["retry-after"], "20");

    for bk in [&a, &b] {
        let (code, _) = raw_http(
            bk.addr,
            "POST /_ctl/health/fail HTTP/1.1\r\nHost: b\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        );
        assert_eq!(code, 200);
    }
    wait_until("both servers marked down", Duration::from_secs(5), || {
        gw.status()["upstreams"][0]["primaries_available"] == false
    });
    let before = a.app_count() + b.app_count();
    let replies = rt().block_on(async {
        let mut c = Conn::open(local(port)).await.unwrap();
        let mut v = Vec::new();
        for _ in 0..200 {
            v.push(c.get("/").await.unwrap());
        }
        v
    });
    for r in &replies {
        assert_eq!(r.status, 503);
        assert_eq!(r.body, "<h1>back soon</h1>\n");
        assert_eq!(r.headers["retry-after"], "20");
        assert_eq!(r.headers["content-type"], "text/html; charset=utf-8");
    }
    assert_eq!(
        a.app_count() + b.app_count(),
        before,
        "no request reached a backend while none was healthy"
    );
    let m = gw.metrics();
    assert_eq!(
        metric_value(&m, r#"ballast_sorry_pages_total{route="route-0"}"#),
        Some(201.0)
    );
}

#[test]
fn the_breaker_opens_half_opens_and_closes() {
    let a = Backend::start("a");
    let b = Backend::start("b");
    a.force(500);
    let port = free_port();
    let gw = Gateway::start(
        "breaker",
        &config(
            port,
            r#"retry = { on = ["connect-failure"] }"#,
            r#"breaker = { consecutive_failures = 3, cool_down = "1s", probes = 2 }"#,
            &[&a, &b],
        ),
    );
    let breaker_of = |addr: std::net::SocketAddr| -> String {
        let st = gw.status();
        st["upstreams"][0]["servers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["addr"] == addr.to_string())
            .map(|s| s["breaker"].as_str().unwrap_or("none").to_string())
            .unwrap()
    };
    assert_eq!(breaker_of(a.addr), "closed");
    let send = |n: usize| {
        rt().block_on(async {
            let mut c = Conn::open(local(port)).await.unwrap();
            let mut codes = Vec::new();
            for _ in 0..n {
                codes.push(c.get("/").await.unwrap().status);
            }
            codes
        })
    };
    // Round-robin: every other request meets a; its third 500 in a row opens the breaker.
    let codes = send(20);
    assert_eq!(codes.iter().filter(|c| **c == 500).count(), 3, "{codes:?}");
    assert_eq!(breaker_of(a.addr), "open");
    let seen_by_a = a.app_count();
    let codes = send(20);
    assert!(
        codes.iter().all(|c| *c == 200),
        "open: everything goes to b: {codes:?}"
    );
    assert_eq!(
        a.app_count(),
        seen_by_a,
        "no request reaches a while its breaker is open"
    );

    // a recovers; after the cool-down two probes succeed and the breaker closes.
    a.force(0);
    std::thread::sleep(Duration::from_millis(1200));
    let codes = send(10);
    assert!(codes.iter().all(|c| *c == 200), "{codes:?}");
    assert_eq!(breaker_of(a.addr), "closed");
    assert!(a.app_count() > seen_by_a, "a serves again");
    let m = gw.metrics();
    assert_eq!(
        metric_value(
            &m,
            &format!(
                r#"ballast_breaker_opened_total{{upstream="app",server="{}"}}"#,
                a.addr
            )
        ),
        Some(1.0)
    );
    // The transitions are events, in order.
    let (code, body) = gw.admin_get("/api/v1/events");
    assert_eq!(code, 200);
    let events: serde_json::Value = serde_json::from_str(&body).unwrap();
    let kinds: Vec<&str> = events
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["server"] == a.addr.to_string())
        .filter_map(|e| e["kind"].as_str())
        .collect();
    assert_eq!(
        kinds,
        ["breaker_opened", "breaker_half_opened", "breaker_closed"]
    );
}

/// One request on a fresh connection from source address `from` (a 127.0.0.x identity).
async fn get_from(from: [u8; 4], to: std::net::SocketAddr, path: &str) -> Result<u16, String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let sock = tokio::net::TcpSocket::new_v4().map_err(|e| e.to_string())?;
    sock.bind((std::net::Ipv4Addr::from(from), 0).into())
        .map_err(|e| e.to_string())?;
    let mut s = sock.connect(to).await.map_err(|e| e.to_string())?;
    let req = format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.map_err(|e| e.to_string())?;
    let (code, _) = parse_status(&String::from_utf8_lossy(&buf));
    Ok(code)
}

#[test]
fn a_flooding_client_is_blocked_quickly_while_another_keeps_full_success() {
    let a = Backend::start("a");
    let port = free_port();
    let gw = Gateway::start(
        "flood",
        &config(
            port,
            r#"flood = { factor = 3, min_per_second = 30, block = "20s" }"#,
            "",
            &[&a],
        ),
    );
    let addr = local(port);
    let (flooder, normal, blocked_after) = rt().block_on(async {
        let start = std::time::Instant::now();
        // A well-behaved client at ~10 req/s for 3 s, and a flooder at ~200 req/s.
        let normal = tokio::spawn(async move {
            let mut codes = Vec::new();
            for _ in 0..30 {
                codes.push(get_from([127, 0, 0, 3], addr, "/").await);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            codes
        });
        let mut flood = Vec::new();
        let mut blocked_after = None;
        while start.elapsed() < Duration::from_secs(3) {
            let code = get_from([127, 0, 0, 2], addr, "/").await;
            if code == Ok(429) && blocked_after.is_none() {
                blocked_after = Some(start.elapsed());
            }
            flood.push(code);
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        (flood, normal.await.unwrap(), blocked_after)
    });
    let blocked_after = blocked_after.expect("the flooder was blocked");
    eprintln!(
        "flooder blocked after {blocked_after:?}; {} flood requests, other client {} of {} ok",
        flooder.len(),
        normal.iter().filter(|c| **c == Ok(200)).count(),
        normal.len()
    );
    assert!(
        blocked_after < Duration::from_secs(2),
        "blocked after {blocked_after:?}"
    );
    let last = flooder.last().unwrap().clone();
    assert_eq!(last, Ok(429), "it stays blocked");
    assert!(
        normal.iter().all(|c| *c == Ok(200)),
        "the other client keeps 100% success: {normal:?}"
    );
    let st = gw.status();
    let blocked = &st["routes"][0]["flood"]["blocked"];
    assert_eq!(blocked[0]["client"], "127.0.0.2", "{st}");
    assert_eq!(blocked.as_array().unwrap().len(), 1);
    let m = gw.metrics();
    assert_eq!(
        metric_value(&m, r#"ballast_flood_blocks_total{route="route-0"}"#),
        Some(1.0)
    );
    let (_, body) = gw.admin_get("/api/v1/events");
    let events: serde_json::Value = serde_json::from_str(&body).unwrap();
    let blocked: Vec<_> = events
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "client_blocked")
        .collect();
    assert_eq!(blocked.len(), 1, "{events}");
    assert_eq!(blocked[0]["client"], "127.0.0.2");
    assert_eq!(blocked[0]["route"], "route-0");
    let refused = flooder.iter().filter(|c| **c == Ok(429)).count() as u64;
    assert_eq!(
        a.app_count(),
        (flooder.len() as u64 - refused) + 30,
        "refused requests never reached the backend"
    );
}

#[test]
fn clients_that_speed_up_together_are_not_blocked() {
    // Found by the lab: five clients that started together after a quiet second were all
    // blocked against that quiet second's baseline. The baseline now includes the current
    // second, where they all count.
    let a = Backend::start("a");
    let port = free_port();
    let gw = Gateway::start(
        "flood-ramp",
        &config(
            port,
            r#"flood = { factor = 3, min_per_second = 30 }"#,
            "",
            &[&a],
        ),
    );
    let addr = local(port);
    let codes = rt().block_on(async {
        // A quiet client sets a low baseline for a while...
        let quiet = tokio::spawn(async move {
            let start = std::time::Instant::now();
            let mut codes = Vec::new();
            while start.elapsed() < Duration::from_millis(2700) {
                codes.push(get_from([127, 0, 0, 20], addr, "/").await);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            codes
        });
        tokio::time::sleep(Duration::from_millis(1200)).await;
        // ...then four clients start at once, each far above it.
        let mut tasks = Vec::new();
        for i in 0..4u8 {
            tasks.push(tokio::spawn(async move {
                let start = std::time::Instant::now();
                let mut codes = Vec::new();
                while start.elapsed() < Duration::from_millis(1500) {
                    codes.push(get_from([127, 0, 0, 10 + i], addr, "/").await);
                }
                codes
            }));
        }
        let mut all = quiet.await.unwrap();
        for t in tasks {
            all.extend(t.await.unwrap());
        }
        all
    });
    assert!(codes.len() > 150, "{} requests", codes.len());
    let refused: Vec<_> = codes.iter().filter(|c| **c != Ok(200)).take(5).collect();
    assert!(refused.is_empty(), "{refused:?}");
    assert_eq!(gw.status()["routes"][0]["flood"]["blocks"], 0);
}
