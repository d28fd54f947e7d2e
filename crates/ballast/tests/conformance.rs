//! Request conformance through a real gateway process (RFC 9112 §3.2, §6.3, §7.1.1; RFC 9113
//! §8.3.1): ambiguous framing (the raw material of request smuggling), duplicate or missing `Host`, control characters in chunk extensions and an HTTP/2
//! `:authority` that disagrees with `Host` are refused with 400 before any upstream sees them;
//! an absolute-form target names the host, for routing and for the `Host` sent upstream. Each
//! refusal is counted by reason in `/metrics` and named in the access log.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use common::*;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};

/// Routes by host: `a.test` → upstream `ua` (backend alpha), `b.test` → `ub` (beta), anything
/// else → `ua`.
fn two_hosts(alpha: &Backend, beta: &Backend) -> (Gateway, SocketAddr) {
    let port = free_port();
    let config = format!(
        r#"{}
[[route]]
name = "to-a"
match = {{ host = "a.test" }}
upstream = "ua"
[[route]]
name = "to-b"
match = {{ host = "b.test" }}
upstream = "ub"
[[route]]
name = "other"
upstream = "ua"
[[upstream]]
name = "ua"
servers = [{{ addr = "{}" }}]
[[upstream]]
name = "ub"
servers = [{{ addr = "{}" }}]
"#,
        preamble(port),
        alpha.addr,
        beta.addr
    );
    (Gateway::start("conformance", &config), local(port))
}

fn header_of<'a>(response: &'a str, name: &str) -> Option<&'a str> {
    let head = response.split("\r\n\r\n").next()?;
    head.lines().skip(1).find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

fn refused(m: &str, reason: &str) -> Option<f64> {
    metric_value(
        m,
        &format!("ballast_requests_refused_total{{reason=\"{reason}\"}}"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_are_refused_before_any_upstream() {
    let alpha = Backend::start("alpha");
    let beta = Backend::start("beta");
    let (gw, addr) = two_hosts(&alpha, &beta);
    let served = || alpha.app_count() + beta.app_count();
    let before = served();

    let cases: [(&str, &[u8]); 4] = [
        (
            "duplicate_host",
            b"GET /dup HTTP/1.1\r\nHost: a.test\r\nHost: b.test\r\nConnection: close\r\n\r\n",
        ),
        (
            "missing_host",
            b"GET /nohost HTTP/1.1\r\nConnection: close\r\n\r\n",
        ),
        (
            // HTTP/1.1 requires Host even with an absolute-form target.
            "missing_host",
            b"GET http://a.test/abs-nohost HTTP/1.1\r\nConnection: close\r\n\r\n",
        ),
        (
            "bad_chunk_extension",
            b"POST /chunk HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: chunked\r\n\r\n5;a=\x00b\r\nhello\r\n0\r\n\r\n",
        ),
    ];
    for (reason, req) in cases {
        let text = raw_exchange(addr, req);
        assert_eq!(parse_status(&text).0, 400, "{reason}:\n{text}");
        assert!(header_of(&text, "x-backend").is_none(), "{reason}: {text}");
    }
    assert_eq!(served(), before, "a refused request reached an upstream");

    // A chunk extension without control characters (HTAB is allowed) passes.
    let text = raw_exchange(
        addr,
        b"POST /chunk-ok HTTP/1.1\r\nHost: b.test\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5;\ta=b\r\nhello\r\n0\r\n\r\n",
    );
    assert_eq!(parse_status(&text).0, 200, "{text}");
    assert_eq!(header_of(&text, "x-backend"), Some("beta"), "{text}");
    // HTTP/1.0 may omit Host: it goes to the catch-all route.
    let text = raw_exchange(addr, b"GET /old HTTP/1.0\r\n\r\n");
    assert_eq!(parse_status(&text).0, 200, "{text}");
    assert_eq!(header_of(&text, "x-backend"), Some("alpha"), "{text}");
    assert_eq!(served(), before + 2);

    let m = gw.metrics();
    assert_eq!(refused(&m, "duplicate_host"), Some(1.0), "{m}");
    assert_eq!(refused(&m, "missing_host"), Some(2.0), "{m}");
    assert_eq!(refused(&m, "bad_chunk_extension"), Some(1.0), "{m}");
    assert_eq!(refused(&m, "bad_framing"), Some(0.0), "{m}");
    assert_eq!(metric_value(&m, "ballast_bad_requests_total"), Some(4.0));
    // The access log names each refusal's reason.
    wait_until("refusals in the access log", Duration::from_secs(5), || {
        let lines = gw.access_lines();
        let n = |reason: &str| {
            lines
                .iter()
                .filter(|l| l["error"] == reason && l["status"] == 400)
                .count()
        };
        n("duplicate_host") == 1 && n("missing_host") == 2 && n("bad_chunk_extension") == 1
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn absolute_form_target_names_the_host() {
    let alpha = Backend::start("alpha");
    let beta = Backend::start("beta");
    let (_gw, addr) = two_hosts(&alpha, &beta);

    let text = raw_exchange(
        addr,
        b"GET http://a.test/headers HTTP/1.1\r\nHost: b.test\r\nConnection: close\r\n\r\n",
    );
    let (status, body) = parse_status(&text);
    assert_eq!(status, 200, "{text}");
    assert_eq!(
        header_of(&text, "x-backend"),
        Some("alpha"),
        "routed by the authority (a.test), not by Host (b.test): {text}"
    );
    let up: serde_json::Value = serde_json::from_str(&body).expect("backend JSON");
    assert_eq!(up["host"], "a.test", "upstream Host: {up}");
    assert_eq!(up["x-forwarded-host"], "a.test", "{up}");

    // The other way round, to show the authority decides and not the route order.
    let text = raw_exchange(
        addr,
        b"GET http://b.test/headers HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n",
    );
    let (status, body) = parse_status(&text);
    assert_eq!(status, 200, "{text}");
    assert_eq!(header_of(&text, "x-backend"), Some("beta"), "{text}");
    let up: serde_json::Value = serde_json::from_str(&body).expect("backend JSON");
    assert_eq!(up["host"], "b.test", "upstream Host: {up}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2_authority_and_host_must_agree() {
    let alpha = Backend::start("alpha");
    let beta = Backend::start("beta");
    let (gw, addr) = two_hosts(&alpha, &beta);
    let before = alpha.app_count() + beta.app_count();

    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .expect("h2c handshake");
    tokio::spawn(conn);
    let mut send = |uri: &str, host: Option<&str>| {
        let mut b = http::Request::builder().uri(uri);
        if let Some(h) = host {
            b = b.header("host", h);
        }
        let req = b.body(Empty::<Bytes>::new()).unwrap();
        let fut = sender.send_request(req);
        async move {
            let resp = fut.await.expect("h2 request");
            let backend = resp
                .headers()
                .get("x-backend")
                .map(|v| v.to_str().unwrap().to_string());
            let status = resp.status().as_u16();
            let body = resp.into_body().collect().await.unwrap().to_bytes();
            (status, backend, String::from_utf8_lossy(&body).into_owned())
        }
    };

    let (status, backend, body) = send("http://a.test/mismatch", Some("b.test")).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(backend, None);
    assert_eq!(alpha.app_count() + beta.app_count(), before);

    // Agreeing (case aside) and authority-only requests pass on the same connection.
    let (status, backend, body) = send("http://a.test/headers", Some("A.test")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(backend.as_deref(), Some("alpha"));
    let (status, backend, body) = send("http://b.test/headers", None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(backend.as_deref(), Some("beta"));
    let up: serde_json::Value = serde_json::from_str(&body).expect("backend JSON");
    assert_eq!(up["host"], "b.test", "{up}");

    let m = gw.metrics();
    assert_eq!(refused(&m, "host_mismatch"), Some(1.0), "{m}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_framing_gets_400_and_gateway_keeps_serving() {
    let b = Backend::start("alpha");
    let port = free_port();
    let gw = Gateway::start(
        "framing",
        &one_upstream_config(port, Extra::default(), &weight1(&[b.addr])),
    );
    let addr = local(port);
    let before = backend_count(&b);

    // Content-Length and Transfer-Encoding together, in both orders, with a request hidden
    // after the chunked body's end (what a CL-framing hop would read as body). hyper alone
    // would frame by Transfer-Encoding and drop Content-Length; Ballast's framing guard makes
    // the conflict visible and the gateway refuses it: 400, connection closed, nothing forwarded.
    let forwarded = 0;
    for (first, second) in [
        ("Content-Length: {N}", "Transfer-Encoding: chunked"),
        ("Transfer-Encoding: chunked", "Content-Length: {N}"),
    ] {
        let body = "0\r\n\r\nGET /status/299 HTTP/1.1\r\nHost: t\r\n\r\n";
        let n = body.len().to_string();
        let req = format!(
            "POST /echo HTTP/1.1\r\nHost: t\r\n{}\r\n{}\r\n\r\n{body}",
            first.replace("{N}", &n),
            second.replace("{N}", &n)
        );
        let text = raw_exchange(addr, req.as_bytes());
        assert_eq!(
            parse_status(&text).0,
            400,
            "CL+TE ({first} / {second}) must be refused:\n{text}"
        );
        assert_eq!(
            text.matches("HTTP/1.1 ").count(),
            1,
            "exactly one response; the hidden request must not be served:\n{text}"
        );
        assert!(header_of(&text, "x-backend").is_none(), "{text}");
        assert_eq!(header_of(&text, "connection"), Some("close"), "{text}");
    }

    // A transfer coding other than chunked.
    let text = raw_exchange(
        addr,
        b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\n\r\nxxxxx",
    );
    assert_eq!(
        parse_status(&text).0,
        400,
        "TE gzip must be refused:\n{text}"
    );

    // `chunked` not final.
    let text = raw_exchange(
        addr,
        b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n",
    );
    assert_eq!(parse_status(&text).0, 400, "TE chunked, gzip:\n{text}");

    // Nothing else reached the backend: the only other new request it saw is our count.
    assert_eq!(
        backend_count(&b),
        before + forwarded + 1,
        "a request with bad framing reached the backend"
    );

    // Invalid or disagreeing Content-Length values: refused by the gateway as well.
    for cl in [
        "Content-Length: abc",
        "Content-Length: 5\r\nContent-Length: 6",
    ] {
        let req = format!("POST /echo HTTP/1.1\r\nHost: t\r\n{cl}\r\n\r\nabcde");
        let text = raw_exchange(addr, req.as_bytes());
        assert_eq!(parse_status(&text).0, 400, "{cl}:\n{text}");
        assert!(header_of(&text, "x-backend").is_none(), "{text}");
    }
    assert_eq!(
        backend_count(&b),
        before + 2,
        "a request with bad framing reached the backend"
    );

    // Every refusal is the gateway's own: logged and counted (2 CL+TE, gzip, chunked-gzip,
    // 2 bad Content-Length).
    wait_until(
        "bad-framing access-log lines",
        Duration::from_secs(5),
        || {
            gw.access_lines()
                .iter()
                .filter(|l| l["error"] == "bad_framing" && l["status"] == 400)
                .count()
                == 6
        },
    );
    let m = gw.metrics();
    assert_eq!(
        metric_value(&m, "ballast_bad_requests_total"),
        Some(6.0),
        "{m}"
    );

    // The gateway keeps serving.
    let r = get(addr, "/after", &[]).await.unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.backend(), Some("alpha"));
    drop(gw);
}
