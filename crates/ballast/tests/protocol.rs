//! HTTP protocol behaviour of the gateway, over real sockets to real backend processes:
//! header limits, forwarding headers, streaming, h2c, TLS with ALPN, upgrades, TCP passthrough,
//! routing, metrics and the admin token. (Requests refused as malformed: `conformance.rs`.)

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use common::*;
use http_body_util::{BodyExt, Empty};
use hyper::body::Frame;
use hyper_util::rt::{TokioExecutor, TokioIo};

/// A gateway with one http listener (extra listener keys in `listener_extra`) in front of one
/// upstream `app` made of `servers`.
fn one_upstream(name: &str, port: u16, listener_extra: &str, servers: &[SocketAddr]) -> Gateway {
    let extra = Extra {
        listener: listener_extra,
        ..Extra::default()
    };
    Gateway::start(name, &one_upstream_config(port, extra, &weight1(servers)))
}

/// Writes `request` and reads the whole answer, tolerating a reset after the server answered
/// early (it may close while part of a large request is still unread).
fn exchange_tolerant(addr: SocketAddr, request: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut w = s.try_clone().unwrap();
    let request = request.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = w.write_all(&request);
    });
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let _ = s.shutdown(std::net::Shutdown::Both);
    writer.join().unwrap();
    String::from_utf8_lossy(&buf).into_owned()
}

fn header_of<'a>(response: &'a str, name: &str) -> Option<&'a str> {
    let head = response.split("\r\n\r\n").next()?;
    head.lines().skip(1).find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_headers_get_431_and_gateway_keeps_serving() {
    let b = Backend::start("alpha");
    let port = free_port();
    let _gw = one_upstream(
        "headers-limit",
        port,
        "max_header_size = \"8KiB\"\nmax_headers = 20",
        &[b.addr],
    );
    let addr = local(port);
    let before = backend_count(&b);

    // One 20 KiB header.
    let big = "a".repeat(20 * 1024);
    let req = format!("GET / HTTP/1.1\r\nHost: t\r\nX-Big: {big}\r\n\r\n");
    let text = exchange_tolerant(addr, req.as_bytes());
    assert_eq!(
        parse_status(&text).0,
        431,
        "20 KiB header: {}",
        &text[..text.len().min(300)]
    );

    // 50 small headers with max_headers = 20.
    let mut req = String::from("GET / HTTP/1.1\r\nHost: t\r\n");
    for i in 0..50 {
        req.push_str(&format!("X-H{i}: {i}\r\n"));
    }
    req.push_str("\r\n");
    let text = exchange_tolerant(addr, req.as_bytes());
    assert_eq!(parse_status(&text).0, 431, "50 headers: {text}");

    // Within limits: 15 headers and a 4 KiB value pass.
    let mut req = String::from("GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n");
    for i in 0..15 {
        req.push_str(&format!("X-H{i}: {i}\r\n"));
    }
    req.push_str(&format!("X-Mid: {}\r\n\r\n", "b".repeat(4096)));
    let (status, body) = raw_http(addr, &req);
    assert_eq!(status, 200, "{body}");

    assert_eq!(
        backend_count(&b),
        before + 2,
        "only the request within limits (and our count) reach the backend"
    );
    for _ in 0..3 {
        let r = get(addr, "/", &[]).await.unwrap();
        assert_eq!(r.status, 200);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarding_headers() {
    let b = Backend::start("alpha");
    let port = free_port();
    let _gw = one_upstream("forwarding", port, "", &[b.addr]);
    let addr = local(port);

    let text = raw_exchange(
        addr,
        b"GET /headers HTTP/1.1\r\n\
          Host: shop.example.test\r\n\
          X-Forwarded-For: 203.0.113.9\r\n\
          Connection: close, x-secret\r\n\
          X-Secret: hush\r\n\
          Keep-Alive: timeout=5\r\n\
          TE: trailers\r\n\
          Proxy-Connection: keep-alive\r\n\
          X-Keep: yes\r\n\r\n",
    );
    let (status, body) = parse_status(&text);
    assert_eq!(status, 200, "{text}");
    let up: serde_json::Value = serde_json::from_str(&body).expect("backend JSON");
    assert_eq!(up["x-forwarded-for"], "203.0.113.9, 127.0.0.1", "{up}");
    assert_eq!(up["x-forwarded-proto"], "http", "{up}");
    assert_eq!(up["x-forwarded-host"], "shop.example.test", "{up}");
    assert_eq!(up["host"], "shop.example.test", "{up}");
    assert_eq!(up["x-keep"], "yes", "end-to-end headers pass: {up}");
    for hop in ["x-secret", "keep-alive", "te", "proxy-connection"] {
        assert!(up.get(hop).is_none(), "{hop} reached the upstream: {up}");
    }
    if let Some(c) = up.get("connection").and_then(|v| v.as_str()) {
        assert!(
            !c.to_ascii_lowercase().contains("x-secret"),
            "client Connection header forwarded: {up}"
        );
    }
    let id = up["x-request-id"]
        .as_str()
        .expect("x-request-id added upstream");
    assert!(!id.is_empty());
    assert_eq!(
        header_of(&text, "x-request-id"),
        Some(id),
        "the response carries the same request id"
    );

    // Without a client X-Forwarded-For the chain starts with the client.
    let r = get(addr, "/headers", &[("x-request-id", "given-id-42")])
        .await
        .unwrap();
    let up: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(up["x-forwarded-for"], "127.0.0.1", "{up}");
    assert_eq!(
        up["x-request-id"], "given-id-42",
        "a given id is kept: {up}"
    );
    assert_eq!(r.headers["x-request-id"], "given-id-42");

    // Each request without an id gets a different one.
    let a = get(addr, "/", &[]).await.unwrap();
    let c = get(addr, "/", &[]).await.unwrap();
    assert_ne!(a.headers["x-request-id"], c.headers["x-request-id"]);
}

/// A request body fed from a channel, so it is sent in pieces with no known length (chunked).
struct ChannelBody(tokio::sync::mpsc::Receiver<Bytes>);

impl hyper::body::Body for ChannelBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        self.0.poll_recv(cx).map(|o| o.map(|b| Ok(Frame::data(b))))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streaming_body_both_ways() {
    let b = Backend::start("alpha");
    let port = free_port();
    let _gw = one_upstream("streaming", port, "", &[b.addr]);

    let mut rng = fastrand::Rng::with_seed(7);
    let piece = 64 * 1024;
    let pieces = 80; // 5 MiB
    let data: Vec<u8> = (0..piece * pieces).map(|_| rng.u8(..)).collect();

    let stream = tokio::net::TcpStream::connect(local(port)).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(4);
    let req = http::Request::builder()
        .method("POST")
        .uri("/echo")
        .header("host", "t")
        .body(ChannelBody(rx))
        .unwrap();
    let feed = {
        let data = data.clone();
        tokio::spawn(async move {
            for c in data.chunks(piece) {
                tx.send(Bytes::copy_from_slice(c)).await.unwrap();
            }
        })
    };
    let resp = tokio::time::timeout(Duration::from_secs(60), async {
        let resp = sender.send_request(req).await.unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["x-backend"], "alpha");
        resp.into_body().collect().await.unwrap().to_bytes()
    })
    .await
    .expect("echo of 5 MiB did not finish within 60 s");
    feed.await.unwrap();
    assert_eq!(resp.len(), data.len(), "echoed length");
    assert!(resp[..] == data[..], "echoed bytes differ");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2c_prior_knowledge() {
    let b = Backend::start("alpha");
    let port = free_port();
    let _gw = one_upstream("h2c", port, "", &[b.addr]);

    let stream = tokio::net::TcpStream::connect(local(port)).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .expect("h2c handshake");
    tokio::spawn(conn);
    for path in ["/one", "/headers"] {
        let req = http::Request::builder()
            .uri(format!("http://shop.example.test:{port}{path}"))
            .body(Empty::<Bytes>::new())
            .unwrap();
        let resp = sender.send_request(req).await.expect("h2 request");
        assert_eq!(resp.version(), http::Version::HTTP_2);
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["x-backend"], "alpha");
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        if path == "/headers" {
            let up: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(
                up["host"],
                format!("shop.example.test:{port}"),
                "HTTP/2 authority becomes Host upstream: {up}"
            );
        }
    }
}

async fn tls_connect(
    addr: SocketAddr,
    cert_der: rustls::pki_types::CertificateDer<'static>,
    alpn: &[&[u8]],
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert_der).unwrap();
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(cfg));
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    connector.connect(name, tcp).await.expect("TLS handshake")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_with_alpn() {
    let b = Backend::start("alpha");
    let dir = scratch("tls-certs");
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let cert_path = dir.join("server.crt");
    let key_path = dir.join("server.key");
    std::fs::write(&cert_path, ck.cert.pem()).unwrap();
    std::fs::write(&key_path, ck.key_pair.serialize_pem()).unwrap();
    let cert_der = ck.cert.der().clone();

    let port = free_port();
    let _gw = one_upstream(
        "https",
        port,
        &format!(
            "protocol = \"https\"\ntls = {{ cert = \"{}\", key = \"{}\" }}",
            cert_path.display(),
            key_path.display()
        ),
        &[b.addr],
    );
    let addr = local(port);

    // h2 offered first: h2 is chosen.
    let tls = tls_connect(addr, cert_der.clone(), &[b"h2", b"http/1.1"]).await;
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (mut h2, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
            .await
            .expect("h2 handshake over TLS");
    tokio::spawn(conn);
    let resp = h2
        .send_request(
            http::Request::builder()
                .uri("https://localhost/headers")
                .body(Empty::<Bytes>::new())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.version(), http::Version::HTTP_2);
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-backend"], "alpha");
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    let up: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(up["x-forwarded-proto"], "https", "{up}");

    // Only http/1.1 offered: http/1.1 is chosen.
    let tls = tls_connect(addr, cert_der, &[b"http/1.1"]).await;
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    let (mut h1, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .unwrap();
    tokio::spawn(conn);
    let resp = h1
        .send_request(
            http::Request::builder()
                .uri("/")
                .header("host", "localhost")
                .body(Empty::<Bytes>::new())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.version(), http::Version::HTTP_11);
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-backend"], "alpha");
}

/// Reads from `s` until the header block ends; returns it (and any bytes read past it).
fn read_head(s: &mut TcpStream) -> (String, Vec<u8>) {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1024];
    loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let rest = buf.split_off(i + 4);
            return (String::from_utf8_lossy(&buf).into_owned(), rest);
        }
        let n = s.read(&mut byte).expect("read response head");
        assert!(n > 0, "closed before the response head ended: {buf:?}");
        buf.extend_from_slice(&byte[..n]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_upgrade_passes_through() {
    let b = Backend::start("alpha");
    let port = free_port();
    let _gw = one_upstream("upgrade", port, "", &[b.addr]);

    let result = tokio::task::spawn_blocking(move || {
        let mut s = TcpStream::connect(local(port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(
            b"GET /chat HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
              Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
        )
        .unwrap();
        let (head, mut got) = read_head(&mut s);
        assert_eq!(parse_status(&head).0, 101, "{head}");
        assert!(
            header_of(&head, "upgrade").is_some_and(|v| v.eq_ignore_ascii_case("websocket")),
            "{head}"
        );
        for msg in [&b"ping across the tunnel"[..], &[0u8, 1, 2, 255, 254][..]] {
            got.clear();
            s.write_all(msg).unwrap();
            let mut chunk = [0u8; 256];
            while got.len() < msg.len() {
                let n = s.read(&mut chunk).expect("read echo");
                assert!(n > 0, "tunnel closed early");
                got.extend_from_slice(&chunk[..n]);
            }
            assert_eq!(got, msg);
        }
    })
    .await;
    result.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_passthrough_with_failover() {
    let live = Backend::start("live");
    let dead = local(free_port());
    let port = free_port();
    let _gw = Gateway::start(
        "tcp",
        &format!(
            r#"
[admin]
listen = "{{ADMIN}}"
[[listener]]
name = "pg"
listen = "127.0.0.1:{port}"
protocol = "tcp"
upstream = "db"
[[upstream]]
name = "db"
servers = [{{ addr = "{dead}" }}, {{ addr = "{}" }}]
"#,
            live.addr
        ),
    );
    let addr = local(port);
    let before = backend_count(&live);
    let n = 20;
    let results = tokio::task::spawn_blocking(move || {
        (0..n)
            .map(|i| {
                raw_exchange(
                    addr,
                    format!("GET /n{i} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
                        .as_bytes(),
                )
            })
            .collect::<Vec<_>>()
    })
    .await
    .unwrap();
    for (i, text) in results.iter().enumerate() {
        let (status, body) = parse_status(text);
        assert_eq!(status, 200, "connection {i}: {text}");
        assert_eq!(body, "hello from live\n", "connection {i}");
        assert_eq!(header_of(text, "x-backend"), Some("live"));
        assert!(
            header_of(text, "x-request-id").is_none(),
            "tcp passthrough must not touch HTTP: {text}"
        );
    }
    assert_eq!(backend_count(&live), before + n + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routing() {
    let (a, b, c, d) = (
        Backend::start("a"),
        Backend::start("b"),
        Backend::start("c"),
        Backend::start("d"),
    );
    let (web, strict) = (free_port(), free_port());
    let _gw = Gateway::start(
        "routing",
        &format!(
            r#"
[admin]
listen = "{{ADMIN}}"
[[listener]]
name = "web"
listen = "127.0.0.1:{web}"
[[listener]]
name = "strict"
listen = "127.0.0.1:{strict}"

[[route]]
name = "by-host"
listener = "web"
match = {{ host = "api.example.test" }}
upstream = "ua"
[[route]]
name = "by-path"
listener = "web"
match = {{ path_prefix = "/static/" }}
upstream = "ub"
[[route]]
name = "by-method"
listener = "web"
match = {{ method = ["put", "DELETE"] }}
upstream = "uc"
[[route]]
name = "by-header"
listener = "web"
match = {{ header = {{ name = "X-Canary", value = "1" }} }}
upstream = "ud"
[[route]]
name = "default"
listener = "web"
upstream = "ub"

[[route]]
name = "strict-host"
listener = "strict"
match = {{ host = "api.example.test" }}
upstream = "ua"

[[upstream]]
name = "ua"
servers = [{{ addr = "{}" }}]
[[upstream]]
name = "ub"
servers = [{{ addr = "{}" }}]
[[upstream]]
name = "uc"
servers = [{{ addr = "{}" }}]
[[upstream]]
name = "ud"
servers = [{{ addr = "{}" }}]
"#,
            a.addr, b.addr, c.addr, d.addr
        ),
    );
    let web = local(web);
    // method, host, path, extra header (`-` for none), expected backend
    let cases = [
        "GET    api.example.test      /static/x      x-canary:1  a",
        "PUT    API.Example.TEST:8080 /              -           a",
        "GET    www.example.test      /static/app.js -           b",
        "PUT    www.example.test      /static/app.js x-canary:1  b",
        "PUT    www.example.test      /items/1       x-canary:1  c",
        "DELETE www.example.test      /items/1       -           c",
        "GET    www.example.test      /items/1       x-canary:1  d",
        "POST   www.example.test      /items         x-canary:1  d",
        "GET    www.example.test      /items/1       x-canary:2  b",
        "POST   www.example.test      /stat          -           b",
    ];
    let mut conn = Conn::open(web).await.unwrap();
    for case in cases {
        let f: Vec<&str> = case.split_whitespace().collect();
        let mut headers = vec![("host", f[1])];
        headers.extend(f[3].split_once(':'));
        let r = conn.request(f[0], f[2], &headers, "").await.unwrap();
        assert_eq!(r.status, 200, "{case}: {}", r.body);
        assert_eq!(r.backend(), Some(f[4]), "{case}: went to the wrong backend");
    }

    // The strict listener has no default route: an unknown host is the gateway's 404.
    let strict = local(strict);
    let r = get(strict, "/", &[("host", "unknown.example.test")])
        .await
        .unwrap();
    assert_eq!(r.status, 404, "{}", r.body);
    assert!(r.backend().is_none(), "404 must come from the gateway");
    let r = get(strict, "/", &[("host", "api.example.test")])
        .await
        .unwrap();
    assert_eq!(r.backend(), Some("a"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_pass_promtool() {
    let b = Backend::start("alpha");
    let port = free_port();
    let gw = one_upstream("metrics", port, "", &[b.addr]);
    let addr = local(port);
    let mut conn = Conn::open(addr).await.unwrap();
    for path in ["/", "/status/404", "/status/503", "/slow/20", "/"] {
        conn.get(path).await.unwrap();
    }
    let _ = raw_exchange(
        addr,
        b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\n\r\n",
    );
    // A request is recorded when its response body has been sent: wait for all five.
    wait_until("five requests recorded", Duration::from_secs(5), || {
        metric_value(
            &gw.metrics(),
            "ballast_request_duration_seconds_count{route=\"route-0\"}",
        ) == Some(5.0)
    });
    let text = gw.metrics();
    for name in [
        "ballast_requests_total",
        "ballast_request_duration_seconds_bucket",
        "ballast_server_health_up",
    ] {
        assert!(text.contains(name), "{name} missing from:\n{text}");
    }
    assert!(
        metric_value(
            &text,
            "ballast_requests_total{route=\"route-0\",upstream=\"app\""
        )
        .is_some_and(|v| v >= 1.0),
        "{text}"
    );

    assert!(
        text.contains("ballast_request_duration_seconds_bucket{le=\"+Inf\",route=\"route-0\"} 5"),
        "{text}"
    );
    assert!(
        !text.contains("# EOF"),
        "no Accept: Prometheus text format expected"
    );

    // A scraper that asks for OpenMetrics gets it.
    let om = raw_http(
        gw.admin,
        "GET /metrics HTTP/1.1\r\nHost: a\r\nAccept: application/openmetrics-text; version=1.0.0\r\nConnection: close\r\n\r\n",
    )
    .1;
    assert!(om.ends_with("# EOF\n"), "{om}");
    assert!(om.contains("# TYPE ballast_requests counter"), "{om}");
    assert!(om.contains("le=\"+Inf\""), "{om}");

    let file = gw.dir.join("metrics.txt");
    std::fs::write(&file, &text).unwrap();
    let out = match std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::fs::File::open(&file).unwrap())
        .output()
    {
        Ok(o) => o,
        Err(e) => panic!(
            "promtool could not be run ({e}); install it (Debian package `prometheus`, as .ci/run does)"
        ),
    };
    assert!(
        out.status.success(),
        "promtool check metrics failed ({}):\nstdout: {}\nstderr: {}\n--- metrics ---\n{text}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_token_required() {
    let b = Backend::start("alpha");
    let port = free_port();
    let extra = Extra {
        admin: r#"token = "s3cret""#,
        ..Extra::default()
    };
    let gw = Gateway::start("token", &one_upstream_config(port, extra, &[(b.addr, 1)]));
    let admin = gw.admin;
    let ask = move |method: &str, path: &str, auth: Option<&str>| {
        let auth = auth
            .map(|a| format!("Authorization: {a}\r\n"))
            .unwrap_or_default();
        raw_http(
            admin,
            &format!(
                "{method} {path} HTTP/1.1\r\nHost: admin\r\n{auth}Content-Length: 0\r\nConnection: close\r\n\r\n"
            ),
        )
    };
    for (method, path) in [
        ("GET", "/api/v1/status"),
        ("GET", "/metrics"),
        ("POST", "/api/v1/reload"),
    ] {
        assert_eq!(
            ask(method, path, None).0,
            401,
            "{method} {path} without token"
        );
        assert_eq!(
            ask(method, path, Some("Bearer wrong")).0,
            401,
            "{method} {path} with a wrong token"
        );
        assert_eq!(
            ask(method, path, Some("Basic czNjcmV0")).0,
            401,
            "{method} {path} with a non-bearer scheme"
        );
    }
    let (code, body) = ask("GET", "/api/v1/status", Some("Bearer s3cret"));
    assert_eq!(code, 200, "{body}");
    let st: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(st["upstreams"][0]["name"], "app");
    let (code, body) = ask("GET", "/metrics", Some("Bearer s3cret"));
    assert_eq!(code, 200);
    assert!(body.contains("ballast_reloads_total"));
    // A drain without the token does nothing.
    let path = format!("/api/v1/servers/app/{}/drain", b.addr);
    assert_eq!(ask("POST", &path, None).0, 401);
    let (_, status) = ask("GET", "/api/v1/status", Some("Bearer s3cret"));
    assert!(!status.contains("draining"), "{status}");
}

/// Found by the lab's slow-clients scenario: a head trickling in a byte at a time was never
/// cut, because the framing guard holds heads back and hyper's header timer never started.
#[test]
fn a_slow_request_head_is_cut_after_header_read() {
    let backend = Backend::start("slowhead");
    let port = free_port();
    let _gw = one_upstream(
        "slowhead",
        port,
        r#"timeout = { header_read = "300ms" }"#,
        &[backend.addr],
    );
    let mut s = TcpStream::connect(local(port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: slow\r\n").unwrap();
    let started = std::time::Instant::now();
    let mut cut = false;
    // One more header byte every 100 ms: the head never completes.
    for _ in 0..40 {
        std::thread::sleep(Duration::from_millis(100));
        if s.write_all(b"X").is_err() {
            cut = true;
            break;
        }
        let mut buf = [0u8; 64];
        s.set_nonblocking(true).unwrap();
        let r = s.read(&mut buf);
        s.set_nonblocking(false).unwrap();
        match r {
            Ok(0) => {
                cut = true;
                break;
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            _ => {
                cut = true;
                break;
            }
        }
    }
    assert!(
        cut,
        "the connection was still open after {:?}",
        started.elapsed()
    );
    // A normal request is still served.
    let (code, _) = raw_http(
        local(port),
        "GET / HTTP/1.1\r\nHost: fine\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(code, 200);
}
