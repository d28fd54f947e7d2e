//! Ballast's own HTTP/1.1 upstream client, through real sockets: a gateway process in front of
//! a scripted upstream that answers each path with exact bytes (chunked, close-delimited,
//! interim, malformed, early, closing while idle) and counts the connections it accepts.

mod common;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;

/// What the scripted upstream does with a request for one path.
#[derive(Clone)]
enum Act {
    /// Reads the request (head and body), writes these bytes, keeps the connection.
    Reply(&'static [u8]),
    /// Reads the request, writes these bytes, closes.
    ReplyClose(Vec<u8>),
    /// Writes these bytes as soon as the head is read, without reading the body, then closes
    /// after a moment.
    Early(&'static [u8]),
    /// Reads the request, writes these bytes, and closes the idle connection 50 ms later (a
    /// server's keep-alive timeout).
    ReplyThenIdleClose(&'static [u8]),
}

/// Request bodies received, by path, de-chunked.
type Received = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

/// A raw upstream on loopback, scripted by path.
struct Scripted {
    addr: SocketAddr,
    accepts: Arc<AtomicUsize>,
    bodies: Received,
    stop: Arc<AtomicBool>,
}

impl Scripted {
    fn start(script: HashMap<&'static str, Act>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let accepts = Arc::new(AtomicUsize::new(0));
        let bodies: Received = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let script = Arc::new(script);
        let (a, b, s) = (accepts.clone(), bodies.clone(), stop.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                a.fetch_add(1, Ordering::Relaxed);
                let (script, bodies) = (script.clone(), b.clone());
                std::thread::spawn(move || serve(conn, &script, &bodies));
            }
        });
        Self {
            addr,
            accepts,
            bodies,
            stop,
        }
    }

    fn accepts(&self) -> usize {
        self.accepts.load(Ordering::Relaxed)
    }
}

impl Drop for Scripted {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(self.addr);
    }
}

fn serve(
    mut s: TcpStream,
    script: &HashMap<&'static str, Act>,
    bodies: &Mutex<Vec<(String, Vec<u8>)>>,
) {
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut buf = Vec::new();
    loop {
        let Some(end) = read_until(&mut s, &mut buf, b"\r\n\r\n") else {
            return;
        };
        let head = String::from_utf8_lossy(&buf[..end]).to_string();
        buf.drain(..end + 4);
        let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
        let lower = head.to_ascii_lowercase();
        let act = script.get(path.as_str()).cloned().unwrap_or(Act::Reply(
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
        ));
        if let Act::Early(bytes) = act {
            let _ = s.write_all(bytes);
            std::thread::sleep(Duration::from_millis(200));
            return;
        }
        let body = if let Some(cl) = lower
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse::<usize>().ok())
        {
            while buf.len() < cl {
                if !fill(&mut s, &mut buf) {
                    return;
                }
            }
            buf.drain(..cl).collect()
        } else if lower.contains("transfer-encoding: chunked") {
            let mut body = Vec::new();
            loop {
                let Some(nl) = read_until(&mut s, &mut buf, b"\r\n") else {
                    return;
                };
                let size =
                    usize::from_str_radix(std::str::from_utf8(&buf[..nl]).unwrap().trim(), 16)
                        .unwrap();
                buf.drain(..nl + 2);
                while buf.len() < size + 2 {
                    if !fill(&mut s, &mut buf) {
                        return;
                    }
                }
                body.extend(buf.drain(..size));
                buf.drain(..2);
                if size == 0 {
                    break;
                }
            }
            body
        } else {
            Vec::new()
        };
        bodies.lock().unwrap().push((path, body));
        match act {
            Act::Reply(bytes) => {
                if s.write_all(bytes).is_err() {
                    return;
                }
            }
            Act::ReplyClose(bytes) => {
                let _ = s.write_all(&bytes);
                return;
            }
            Act::ReplyThenIdleClose(bytes) => {
                let _ = s.write_all(bytes);
                std::thread::sleep(Duration::from_millis(50));
                return;
            }
            Act::Early(_) => unreachable!("answered above"),
        }
    }
}

/// Reads until `pat` is in `buf`; its index, or `None` at EOF.
fn read_until(s: &mut TcpStream, buf: &mut Vec<u8>, pat: &[u8]) -> Option<usize> {
    loop {
        if let Some(i) = buf.windows(pat.len()).position(|w| w == pat) {
            return Some(i);
        }
        if !fill(s, buf) {
            return None;
        }
    }
}

fn fill(s: &mut TcpStream, buf: &mut Vec<u8>) -> bool {
    let mut chunk = [0u8; 16 * 1024];
    match s.read(&mut chunk) {
        Ok(n) if n > 0 => {
            buf.extend_from_slice(&chunk[..n]);
            true
        }
        _ => false,
    }
}

/// A gateway in front of `up` with passive health off, so every request meets it.
fn gateway(name: &str, up: &Scripted) -> (Gateway, SocketAddr) {
    let port = free_port();
    let config = format!(
        r#"{preamble}[[route]]
upstream = "app"
[[upstream]]
name = "app"
passive = {{ enabled = false }}
servers = [{{ addr = "{}" }}]
"#,
        up.addr,
        preamble = preamble(port),
    );
    (Gateway::start(name, &config), local(port))
}

#[test]
fn chunked_and_close_delimited_bodies_reach_the_client_whole() {
    let up = Scripted::start(HashMap::from([
        (
            "/chunked",
            Act::Reply(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n1;ext=1\r\n \r\n\
                  5\r\nworld\r\n0\r\nX-Trailer: t\r\n\r\n",
            ),
        ),
        (
            "/close",
            Act::ReplyClose(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the close".to_vec()),
        ),
    ]));
    let (_gw, addr) = gateway("h1-bodies", &up);
    rt().block_on(async {
        let mut c = Conn::open(addr).await.unwrap();
        let r = c.get("/chunked").await.unwrap();
        assert_eq!((r.status, r.body.as_str()), (200, "hello world"));
        assert!(
            r.headers.get("x-trailer").is_none(),
            "trailers are not headers"
        );
        let r = c.get("/close").await.unwrap();
        assert_eq!((r.status, r.body.as_str()), (200, "until the close"));
        // The chunked answer's connection was reused for the second request, which ended in
        // a close: the third needs a new one.
        assert_eq!(up.accepts(), 1);
        let r = c.get("/chunked").await.unwrap();
        assert_eq!(r.body, "hello world");
        assert_eq!(up.accepts(), 2);
    });
}

#[test]
fn connections_are_reused_until_the_upstream_closes_them() {
    let up = Scripted::start(HashMap::from([
        (
            "/ka",
            Act::Reply(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nka"),
        ),
        (
            "/bye",
            Act::Reply(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nbye"),
        ),
        (
            "/idle",
            Act::ReplyThenIdleClose(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nidle"),
        ),
        (
            "/post",
            Act::Reply(b"HTTP/1.1 201 Created\r\nContent-Length: 4\r\n\r\nmade"),
        ),
        (
            "/head",
            Act::Reply(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n"),
        ),
        (
            "/continue",
            Act::Reply(
                b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfinal",
            ),
        ),
        (
            "/10",
            Act::Reply(b"HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nold"),
        ),
    ]));
    let (gw, addr) = gateway("h1-reuse", &up);
    rt().block_on(async {
        let mut c = Conn::open(addr).await.unwrap();
        for _ in 0..5 {
            assert_eq!(c.get("/ka").await.unwrap().body, "ka");
        }
        assert_eq!(up.accepts(), 1, "five requests, one upstream connection");
        let r = c.request("HEAD", "/head", &[], "").await.unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.headers["content-length"], "100");
        assert_eq!(r.body, "");
        let r = c.get("/continue").await.unwrap();
        assert_eq!(
            (r.status, r.body.as_str()),
            (200, "final"),
            "interim 100 skipped"
        );
        assert_eq!(
            up.accepts(),
            1,
            "HEAD and 100-continue answers leave the connection usable"
        );

        assert_eq!(c.get("/bye").await.unwrap().body, "bye");
        assert!(r.headers.get("connection").is_none());
        assert_eq!(c.get("/ka").await.unwrap().body, "ka");
        assert_eq!(up.accepts(), 2, "Connection: close is honoured");
        assert_eq!(c.get("/10").await.unwrap().body, "old");
        assert_eq!(c.get("/ka").await.unwrap().body, "ka");
        assert_eq!(
            up.accepts(),
            3,
            "an HTTP/1.0 answer without keep-alive ends its connection"
        );

        // The server closes the pooled connection while it is idle. A POST (never retried once
        // sent) must not be written to that dead connection: it goes on a new one and succeeds.
        assert_eq!(c.get("/idle").await.unwrap().body, "idle");
        tokio::time::sleep(Duration::from_millis(300)).await;
        let r = c.request("POST", "/post", &[], "payload").await.unwrap();
        assert_eq!((r.status, r.body.as_str()), (201, "made"));
        assert_eq!(up.accepts(), 4);
    });
    let bodies = up.bodies.lock().unwrap().clone();
    assert!(bodies.contains(&("/post".to_string(), b"payload".to_vec())));
    wait_until("13 access-log lines", Duration::from_secs(5), || {
        gw.access_lines().len() >= 13
    });
    let errors: Vec<_> = gw
        .access_lines()
        .into_iter()
        .filter(|l| l["status"] != 200 && l["status"] != 201)
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
}

#[test]
fn invalid_answers_are_502_and_the_gateway_keeps_serving() {
    let huge = format!(
        "HTTP/1.1 200 OK\r\nX-Big: {}\r\nContent-Length: 0\r\n\r\n",
        "a".repeat(70 * 1024)
    );
    let up = Scripted::start(HashMap::from([
        (
            "/ok",
            Act::Reply(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"),
        ),
        (
            "/garbage",
            Act::ReplyClose(b"HTTP/1.1 abc\r\n\r\n".to_vec()),
        ),
        (
            "/bad-length",
            Act::ReplyClose(b"HTTP/1.1 200 OK\r\nContent-Length: 1, 2\r\n\r\nx".to_vec()),
        ),
        ("/huge-head", Act::ReplyClose(huge.into_bytes())),
        (
            "/truncated",
            Act::ReplyClose(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc".to_vec()),
        ),
        (
            "/bad-chunk",
            Act::ReplyClose(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n".to_vec(),
            ),
        ),
    ]));
    let (gw, addr) = gateway("h1-invalid", &up);
    rt().block_on(async {
        for path in ["/garbage", "/bad-length", "/huge-head"] {
            let r = get(addr, path, &[]).await.unwrap();
            assert_eq!(r.status, 502, "{path}: {}", r.body);
            assert_eq!(get(addr, "/ok", &[]).await.unwrap().body, "ok");
        }
        // A body cut short cannot be repaired after its head went out: the client's response
        // is cut short too (never padded or passed off as complete).
        for path in ["/truncated", "/bad-chunk"] {
            let r = get(addr, path, &[]).await;
            assert!(r.is_err(), "{path}: {r:?}");
            assert_eq!(get(addr, "/ok", &[]).await.unwrap().body, "ok");
        }
    });
    wait_until("10 access-log lines", Duration::from_secs(5), || {
        gw.access_lines().len() >= 10
    });
    let lines = gw.access_lines();
    let kinds: Vec<_> = lines
        .iter()
        .filter(|l| l["status"] == 502)
        .map(|l| l["error"].clone())
        .collect();
    assert_eq!(kinds.len(), 3, "{lines:?}");
    assert!(kinds.iter().all(|k| k == "upstream_protocol"), "{kinds:?}");
    let aborted = lines.iter().filter(|l| l["aborted"] == true).count();
    assert_eq!(aborted, 2, "{lines:?}");
}

#[test]
fn uploads_are_framed_and_an_early_answer_is_heard() {
    let up = Scripted::start(HashMap::from([
        ("/upload", Act::Reply(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\ngot")),
        (
            "/early",
            Act::Early(b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 8\r\nConnection: close\r\n\r\ntoo big\n"),
        ),
    ]));
    let (_gw, addr) = gateway("h1-upload", &up);
    // A chunked upload from the client reaches the upstream as a valid chunked body.
    let text = raw_exchange(
        addr,
        b"POST /upload HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n\
          4\r\nabcd\r\n3\r\nefg\r\n0\r\n\r\n",
    );
    assert_eq!(parse_status(&text), (200, "got".to_string()), "{text}");
    // A length-framed one keeps its length.
    let text = raw_exchange(
        addr,
        b"POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
    );
    assert_eq!(parse_status(&text).0, 200, "{text}");
    let bodies = up.bodies.lock().unwrap().clone();
    assert_eq!(bodies[0], ("/upload".to_string(), b"abcdefg".to_vec()));
    assert_eq!(bodies[1], ("/upload".to_string(), b"hello".to_vec()));

    // The upstream refuses the upload after its head: the client hears the 413 although it
    // has sent only part of the announced megabyte.
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"POST /early HTTP/1.1\r\nHost: t\r\nContent-Length: 1048576\r\n\r\n")
        .unwrap();
    s.write_all(&[b'x'; 16 * 1024]).unwrap();
    let mut got = Vec::new();
    let mut chunk = [0u8; 4096];
    while !String::from_utf8_lossy(&got).contains("too big") {
        match s.read(&mut chunk) {
            Ok(n) if n > 0 => got.extend_from_slice(&chunk[..n]),
            _ => break,
        }
    }
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
}
