//! Top talkers end to end: a real gateway on loopback, a backend, and clients bound to distinct
//! loopback addresses. One of them floods (with requests the gateway refuses itself, as most
//! of a flood is); `Gateway::top_talkers` must name it first, with its path and status.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ballast_config::{Loaded, Source};
use ballast_core::TopTalkers;
use ballast_proxy::Gateway;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket};

const FLOODER: &str = "127.0.0.2";
const OTHERS: [&str; 3] = ["127.0.0.3", "127.0.0.4", "127.0.0.5"];
const FLOOD: u64 = 500;
const EACH: u64 = 20;

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// A backend answering `200 ok` to every request, keep-alive.
async fn backend() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = l.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    match s.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                    while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        buf.drain(..end + 4);
                        let ok = b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nok\n";
                        if s.write_all(ok).await.is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    addr
}

/// One `GET path` from a socket bound to `from`; the response's status.
async fn get(from: &str, gateway: SocketAddr, path: &str) -> u16 {
    let sock = TcpSocket::new_v4().unwrap();
    sock.bind(SocketAddr::new(from.parse().unwrap(), 0))
        .unwrap();
    let mut s = sock.connect(gateway).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: talkers.test\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).await.unwrap();
    let head = String::from_utf8_lossy(&resp[..resp.len().min(12)]).into_owned();
    head[9..12]
        .parse()
        .unwrap_or_else(|_| panic!("no status in {head:?}"))
}

async fn start(backend: SocketAddr) -> (Gateway, SocketAddr) {
    // A port that was free a moment ago; the listener binds it at start.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let text = format!(
        r#"
[log]
access = "off"

[[listener]]
name = "web"
listen = "127.0.0.1:{port}"

[[route]]
match = {{ path_prefix = "/app/" }}
upstream = "app"

[[upstream]]
name = "app"
servers = [{{ addr = "{backend}" }}]
"#
    );
    let config = ballast_config::parse(&text, "talkers.toml").expect("valid test config");
    let text: &'static str = Box::leak(text.into_boxed_str());
    let gw = Gateway::start(
        Loaded {
            config,
            text: text.to_string(),
        },
        Source::Embedded(text),
    )
    .await
    .expect("gateway starts");
    (gw, SocketAddr::from(([127, 0, 0, 1], port)))
}

fn total(t: &TopTalkers) -> u64 {
    t.statuses.iter().map(|s| s.requests).sum::<u64>() + t.dropped
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_flooding_client_comes_out_on_top() {
    let b = backend().await;
    let (gw, addr) = start(b).await;
    let since = unix_ms();

    // The flood: no route matches its path, so the gateway answers 404 itself, as it would a
    // rate limit; eight at a time. Meanwhile three ordinary clients get 200 from the backend.
    let mut tasks = Vec::new();
    for lane in 0..8 {
        tasks.push(tokio::spawn(async move {
            let mut statuses = Vec::new();
            for i in (lane..FLOOD).step_by(8) {
                statuses.push(get(FLOODER, addr, &format!("/flood?n={i}")).await);
            }
            statuses
        }));
    }
    for (n, who) in OTHERS.iter().enumerate() {
        tasks.push(tokio::spawn(async move {
            let mut statuses = Vec::new();
            for _ in 0..EACH {
                statuses.push(get(who, addr, &format!("/app/{n}")).await);
            }
            statuses
        }));
    }
    let mut got = Vec::new();
    for t in tasks {
        got.extend(t.await.unwrap());
    }
    let expected = FLOOD + EACH * OTHERS.len() as u64;
    assert_eq!(got.len() as u64, expected);
    assert_eq!(got.iter().filter(|s| **s == 404).count() as u64, FLOOD);

    // A request is counted when its exchange completes, which may be just after the client
    // read the last byte: wait for the counts to add up (or be accounted as dropped).
    let mut top = gw.top_talkers(since.saturating_sub(1), unix_ms(), 10);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while total(&top) < expected {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the counts never reached {expected}: {top:?}"
        );
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(10)).await;
        top = gw.top_talkers(since.saturating_sub(1), unix_ms(), 10);
    }
    assert_eq!(total(&top), expected, "{top:?}");

    let first = &top.clients[0];
    assert_eq!(first.key.parse::<IpAddr>().unwrap().to_string(), FLOODER);
    assert!(
        first.requests <= FLOOD && first.requests + top.dropped >= FLOOD,
        "{top:?}"
    );
    assert_eq!(top.clients.len(), 1 + OTHERS.len());
    for c in &top.clients[1..] {
        assert!(OTHERS.contains(&c.key.as_str()), "{c:?}");
        assert!(c.requests <= EACH, "{c:?}");
    }
    assert_eq!(
        top.paths[0].key, "/flood",
        "the query string is not part of the path"
    );
    assert!(top.paths[0].requests + top.dropped >= FLOOD);
    assert_eq!(top.statuses[0].key, "404");
    assert_eq!(top.statuses[1].key, "200");

    // A limit cuts every list; a window before the traffic has none of it.
    let one = gw.top_talkers(since.saturating_sub(1), unix_ms(), 1);
    assert_eq!(one.clients.len(), 1);
    assert_eq!(one.clients[0].key, FLOODER);
    let before = gw.top_talkers(0, since.saturating_sub(16 * 60_000), 10);
    assert!(before.clients.is_empty(), "{before:?}");
    // The requests left out are counted in /metrics too.
    let metrics = gw.encode_metrics();
    let line = format!("ballast_talkers_dropped_total {}", top.dropped);
    assert!(metrics.contains(&line), "{line} in:\n{metrics}");

    assert_eq!(gw.shutdown(Duration::from_secs(5)).await, 0);
}
