//! The remediation commands through real sockets: a gateway started in this process in front
//! of small HTTP backends on loopback, driven with `Gateway::apply` (what the admin API and the
//! remediation engine call), and judged by what clients and backends see.
//!
//! - `Eject`: the ejected server gets no requests while ejected, and gets them again once the
//!   ejection has run out (awaited as the `server_unejected` event, not slept for).
//! - `Reroute`: another upstream answers, then the sorry page, then the configured upstream.
//! - `Shed`: `low` at share 1 is refused with 503 and `Retry-After` while `critical` passes,
//!   and clearing the share lets `low` through again.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ballast_config::{Loaded, Source};
use ballast_core::{Command, Event, Issued, Origin, Report, UnejectCause};
use ballast_proxy::Gateway;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A backend that answers every request with `hello from NAME` and counts them.
struct Backend {
    addr: SocketAddr,
    hits: Arc<AtomicU64>,
}

impl Backend {
    async fn start(name: &'static str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let hits = Arc::new(AtomicU64::new(0));
        let counted = hits.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut conn, _)) = listener.accept().await else {
                    return;
                };
                let counted = counted.clone();
                tokio::spawn(async move {
                    if read_head(&mut conn).await.is_none() {
                        return;
                    }
                    counted.fetch_add(1, Relaxed);
                    let body = format!("hello from {name}\n");
                    let resp = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\n\
                         connection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = conn.write_all(resp.as_bytes()).await;
                    let _ = conn.shutdown().await;
                });
            }
        });
        Backend { addr, hits }
    }

    fn hits(&self) -> u64 {
        self.hits.load(Relaxed)
    }
}

/// Reads a request head (no body is ever sent to the backends here).
async fn read_head(conn: &mut TcpStream) -> Option<Vec<u8>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = conn.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Some(buf)
}

/// A client's view of one answer.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// `GET path` on a fresh connection; the whole answer (de-chunked when chunked).
async fn get(port: u16, path: &str) -> Answer {
    let mut conn = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nhost: shop.test\r\nconnection: close\r\n\r\n");
    conn.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    conn.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").expect("a response head");
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut answer = Answer {
        status,
        headers,
        body: body.to_string(),
    };
    if answer
        .header("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        answer.body = dechunk(body);
    }
    answer
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&rest[..n]);
        s = &rest[n + 2..];
    }
    out
}

/// A gateway over `text` (with `{PORT}` filled in), its port and its config file.
async fn gateway(text: &str) -> (Gateway, u16, PathBuf) {
    static N: AtomicU32 = AtomicU32::new(0);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let text = text.replace("{PORT}", &port.to_string());
    let path = std::env::temp_dir().join(format!(
        "ballast-remediation-{}-{}.toml",
        std::process::id(),
        N.fetch_add(1, Relaxed)
    ));
    std::fs::write(&path, &text).unwrap();
    let config = ballast_config::parse(&text, "test.toml").unwrap();
    let gw = Gateway::start(Loaded { config, text }, Source::File(path.clone()))
        .await
        .unwrap();
    (gw, port, path)
}

async fn apply(gw: &Gateway, command: Command) -> Report {
    gw.apply(Issued {
        command,
        by: Origin::Remediation,
        who: None,
    })
    .await
    .unwrap()
}

/// Polls `cond` until it holds; panics after `limit` (a bound on a hang, not a timing claim).
async fn wait_until(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < limit, "gave up waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

const PREAMBLE: &str = r#"
[log]
access = "off"
[[listener]]
name = "web"
listen = "127.0.0.1:{PORT}"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ejected_server_gets_no_requests_until_its_time_is_up() {
    let (a, b) = (Backend::start("a").await, Backend::start("b").await);
    let text = format!(
        r#"{PREAMBLE}
[[route]]
name = "shop"
upstream = "app"
[[upstream]]
name = "app"
servers = [{{ addr = "{}" }}, {{ addr = "{}" }}]
"#,
        a.addr, b.addr
    );
    let (gw, port, path) = gateway(&text).await;
    // Both serve before.
    for _ in 0..4 {
        assert_eq!(get(port, "/").await.status, 200);
    }
    assert!(a.hits() > 0 && b.hits() > 0);

    let Report::Ejected { until_unix_ms, .. } = apply(
        &gw,
        Command::Eject {
            upstream: "app".into(),
            server: a.addr.to_string(),
            duration_ms: Some(1500),
        },
    )
    .await
    else {
        panic!("not an ejection report")
    };
    let a_before = a.hits();
    // Requests sent well inside the ejection all go to b (the guard only keeps requests away
    // from the deadline; nothing is asserted about how long anything takes).
    let mut sent = 0;
    while unix_ms() + 500 < until_unix_ms && sent < 8 {
        let answer = get(port, "/").await;
        assert_eq!(answer.body, "hello from b\n");
        sent += 1;
    }
    assert!(sent > 0, "no request went out during the ejection");
    assert_eq!(a.hits(), a_before, "the ejected server got a request");

    // It comes back by itself: the sweeper announces the end, then a takes requests again.
    let addr = a.addr.to_string();
    wait_until("the ejection to run out", Duration::from_secs(15), || {
        gw.events(0).iter().any(|s| {
            matches!(&s.event, Event::ServerUnejected { server, cause: UnejectCause::Expired, .. }
                if *server == addr)
        })
    })
    .await;
    for _ in 0..4 {
        assert_eq!(get(port, "/").await.status, 200);
    }
    assert!(a.hits() > a_before, "a gets requests again");
    let ordered = gw
        .events(0)
        .into_iter()
        .filter(|s| matches!(s.event, Event::ServerEjectOrdered { .. }))
        .count();
    assert_eq!(ordered, 1);
    let _ = std::fs::remove_file(path);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rerouted_route_answers_from_the_other_upstream_then_the_sorry_page_then_as_configured() {
    let (a, standby) = (Backend::start("a").await, Backend::start("standby").await);
    let page = std::env::temp_dir().join(format!("ballast-sorry-{}.html", std::process::id()));
    std::fs::write(&page, "<p>custom sorry</p>\n").unwrap();
    let text = format!(
        r#"{PREAMBLE}
[[route]]
name = "custom"
match = {{ path_prefix = "/custom/" }}
upstream = "app"
sorry = {{ page = "{page}", retry_after = "5s" }}
[[route]]
name = "shop"
upstream = "app"
[[upstream]]
name = "app"
servers = [{{ addr = "{}" }}]
[[upstream]]
name = "standby"
servers = [{{ addr = "{}" }}]
"#,
        a.addr,
        standby.addr,
        page = page.display()
    );
    let (gw, port, path) = gateway(&text).await;
    let reroute = |route: &str, to: Option<&str>| Command::Reroute {
        route: route.into(),
        to: to.map(String::from),
    };
    assert_eq!(get(port, "/").await.body, "hello from a\n");

    apply(&gw, reroute("shop", Some("standby"))).await;
    let answer = get(port, "/").await;
    assert_eq!(
        (answer.status, answer.body.as_str()),
        (200, "hello from standby\n")
    );
    // Only the rerouted route moves.
    assert_eq!(get(port, "/custom/x").await.body, "hello from a\n");

    // The sorry page: built in for a route without one, the route's own otherwise.
    let standby_hits = standby.hits();
    let a_hits = a.hits();
    apply(&gw, reroute("shop", Some("sorry"))).await;
    apply(&gw, reroute("custom", Some("sorry"))).await;
    let answer = get(port, "/").await;
    assert_eq!(answer.status, 503);
    assert!(
        answer.body.contains("We'll be back soon"),
        "{}",
        answer.body
    );
    assert_eq!(answer.header("retry-after"), Some("30"));
    let answer = get(port, "/custom/x").await;
    assert_eq!(
        (answer.status, answer.body.as_str()),
        (503, "<p>custom sorry</p>\n")
    );
    assert_eq!(answer.header("retry-after"), Some("5"));
    assert_eq!(
        (a.hits(), standby.hits()),
        (a_hits, standby_hits),
        "no backend asked"
    );

    // Restored as configured.
    apply(&gw, reroute("shop", None)).await;
    apply(&gw, reroute("custom", None)).await;
    let answer = get(port, "/").await;
    assert_eq!(
        (answer.status, answer.body.as_str()),
        (200, "hello from a\n")
    );
    assert_eq!(get(port, "/custom/x").await.body, "hello from a\n");
    let _ = std::fs::remove_file(path);
    let _ = std::fs::remove_file(page);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shedding_low_refuses_low_while_critical_passes_until_cleared() {
    let a = Backend::start("a").await;
    let text = format!(
        r#"{PREAMBLE}
[[route]]
name = "critical"
match = {{ path_prefix = "/critical/" }}
upstream = "app"
priority = "critical"
[[route]]
name = "low"
upstream = "app"
priority = "low"
[[upstream]]
name = "app"
servers = [{{ addr = "{}" }}]
"#,
        a.addr
    );
    let (gw, port, path) = gateway(&text).await;
    assert_eq!(get(port, "/").await.status, 200);

    let shed = |share| Command::Shed {
        class: "low".into(),
        share,
    };
    apply(&gw, shed(Some(1.0))).await;
    let before = a.hits();
    for _ in 0..5 {
        let answer = get(port, "/").await;
        assert_eq!(answer.status, 503, "{answer:?}");
        assert!(answer.body.contains("overloaded"), "{}", answer.body);
        assert_eq!(answer.header("retry-after"), Some("1"));
        let answer = get(port, "/critical/x").await;
        assert_eq!(
            (answer.status, answer.body.as_str()),
            (200, "hello from a\n")
        );
    }
    assert_eq!(
        a.hits(),
        before + 5,
        "only the critical requests reached the backend"
    );

    apply(&gw, shed(None)).await;
    for _ in 0..3 {
        assert_eq!(get(port, "/").await.body, "hello from a\n");
    }
    let _ = std::fs::remove_file(path);
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}
