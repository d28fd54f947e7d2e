//! Small HTTP clients over real sockets: raw request text, one keep-alive connection, and
//! concurrent load that counts what answered.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;

use super::*;

/// Sends raw bytes, reads until the server closes (or 5 s), returns (status, body).
pub fn raw_http(addr: SocketAddr, request: &str) -> (u16, String) {
    let text = raw_exchange(addr, request.as_bytes());
    parse_status(&text)
}

/// Sends raw bytes and returns everything read until close or a 5 s timeout.
pub fn raw_exchange(addr: SocketAddr, request: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(request).unwrap();
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    String::from_utf8_lossy(&buf).into_owned()
}

/// (status, body) of a raw HTTP/1.1 response text.
pub fn parse_status(text: &str) -> (u16, String) {
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// A whole HTTP/1.1 response read off the wire: status, header lines (names lower-cased) and
/// the body (de-chunked).
#[derive(Debug)]
pub struct Wire {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Wire {
    /// Parses what [`raw_exchange`] read.
    pub fn parse(text: &str) -> Self {
        let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((text, ""));
        let mut lines = head.lines();
        let status = lines
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        let chunked = headers
            .iter()
            .any(|(n, v)| n == "transfer-encoding" && v.contains("chunked"));
        let body = if chunked {
            dechunk(rest)
        } else {
            rest.to_string()
        };
        Wire {
            status,
            headers,
            body,
        }
    }

    /// The first header named `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// `NAME=value` of the `Set-Cookie` header for cookie `name`.
    pub fn set_cookie(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .filter(|(n, _)| n == "set-cookie")
            .filter_map(|(_, v)| v.split(';').next())
            .find(|c| c.split_once('=').is_some_and(|(n, _)| n.trim() == name))
            .map(|c| c.trim().to_string())
    }
}

/// The data of a chunked body.
fn dechunk(rest: &str) -> String {
    let mut rest = rest.as_bytes();
    let mut out = Vec::new();
    while let Some(end) = rest.windows(2).position(|w| w == b"\r\n") {
        let line = String::from_utf8_lossy(&rest[..end]);
        let size = usize::from_str_radix(line.split(';').next().unwrap_or("").trim(), 16);
        let after = &rest[end + 2..];
        match size {
            Ok(size) if size > 0 && after.len() >= size => {
                out.extend_from_slice(&after[..size]);
                rest = after[size..]
                    .strip_prefix(b"\r\n")
                    .unwrap_or(&after[size..]);
            }
            _ => break,
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A response as the tests see it.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: String,
}

impl Reply {
    /// The `x-backend` header: which demo backend answered.
    pub fn backend(&self) -> Option<&str> {
        self.headers.get("x-backend").and_then(|v| v.to_str().ok())
    }
}

/// One keep-alive HTTP/1.1 connection to the gateway.
pub struct Conn {
    addr: SocketAddr,
    sender: SendRequest<Full<Bytes>>,
}

impl Conn {
    pub async fn open(addr: SocketAddr) -> std::io::Result<Self> {
        let stream = tokio::net::TcpStream::connect(addr).await?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(std::io::Error::other)?;
        tokio::spawn(conn);
        Ok(Self { addr, sender })
    }

    /// Sends a request on this connection; `Err` is a client-visible failure.
    pub async fn request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Result<Reply, String> {
        self.sender.ready().await.map_err(|e| e.to_string())?;
        let mut b = http::Request::builder().method(method).uri(path);
        // A `host` among `headers` replaces the default one.
        if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
            b = b.header("host", self.addr.to_string());
        }
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let req = b.body(Full::new(Bytes::from(body.to_string()))).unwrap();
        let resp = self
            .sender
            .send_request(req)
            .await
            .map_err(|e| e.to_string())?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        Ok(Reply {
            status,
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        })
    }

    pub async fn get(&mut self, path: &str) -> Result<Reply, String> {
        self.request("GET", path, &[], "").await
    }
}

/// One request on a fresh connection.
pub async fn get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Result<Reply, String> {
    let mut c = Conn::open(addr).await.map_err(|e| e.to_string())?;
    c.request("GET", path, headers, "").await
}

/// Runs `n` concurrent keep-alive clients, each sending requests in a loop until `stop` says so
/// or `per_client` requests were sent. Returns (ok, errors, error samples).
pub async fn load(
    addr: SocketAddr,
    clients: usize,
    per_client: usize,
    path: &'static str,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> (usize, usize, Vec<String>) {
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let stop = stop.clone();
        tasks.push(tokio::spawn(async move {
            let (mut ok, mut err, mut samples) = (0usize, 0usize, Vec::new());
            let mut conn = None;
            for _ in 0..per_client {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                if conn.is_none() {
                    conn = Conn::open(addr).await.ok();
                }
                let Some(c) = conn.as_mut() else {
                    err += 1;
                    samples.push("connect to gateway failed".to_string());
                    continue;
                };
                match c.get(path).await {
                    Ok(r) if r.status == 200 => ok += 1,
                    Ok(r) => {
                        err += 1;
                        samples.push(format!("status {} {}", r.status, r.body.trim()));
                    }
                    Err(e) => {
                        err += 1;
                        samples.push(e);
                        conn = None;
                    }
                }
            }
            (ok, err, samples)
        }));
    }
    let (mut ok, mut err, mut samples) = (0, 0, Vec::new());
    for t in tasks {
        let (o, e, s) = t.await.unwrap();
        ok += o;
        err += e;
        samples.extend(s.into_iter().take(3));
    }
    (ok, err, samples)
}

impl Reply {
    /// The value this response sets for cookie `name` (from `Set-Cookie`), if any.
    pub fn set_cookie(&self, name: &str) -> Option<String> {
        self.headers
            .get_all(http::header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(|v| v.split(';').next())
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_string())
    }
}

/// What a batch of requests saw: successes per answering backend, and failures.
#[derive(Debug, Default)]
pub struct Tally {
    pub ok: usize,
    pub errors: usize,
    /// A few failures, for the assertion message.
    pub samples: Vec<String>,
    /// 200 answers per `x-backend` (`?` when the header is missing).
    pub by_backend: std::collections::BTreeMap<String, usize>,
}

impl Tally {
    pub fn total(&self) -> usize {
        self.ok + self.errors
    }

    /// 200 answers from backend `name`.
    pub fn of(&self, name: &str) -> usize {
        self.by_backend.get(name).copied().unwrap_or(0)
    }

    fn add(&mut self, r: Result<Reply, String>) {
        match r {
            Ok(r) if r.status == 200 => {
                self.ok += 1;
                *self
                    .by_backend
                    .entry(r.backend().unwrap_or("?").to_string())
                    .or_default() += 1;
            }
            Ok(r) => {
                self.errors += 1;
                if self.samples.len() < 10 {
                    self.samples
                        .push(format!("status {} {}", r.status, r.body.trim()));
                }
            }
            Err(e) => {
                self.errors += 1;
                if self.samples.len() < 10 {
                    self.samples.push(e);
                }
            }
        }
    }

    fn merge(&mut self, other: Tally) {
        self.ok += other.ok;
        self.errors += other.errors;
        for s in other.samples {
            if self.samples.len() < 10 {
                self.samples.push(s);
            }
        }
        for (k, v) in other.by_backend {
            *self.by_backend.entry(k).or_default() += v;
        }
    }
}

/// `n` sequential `GET path` requests (with `headers`) on one keep-alive connection, reopened
/// after a failure.
pub async fn tally_requests(
    addr: SocketAddr,
    n: usize,
    path: &str,
    headers: &[(&str, &str)],
) -> Tally {
    let mut t = Tally::default();
    let mut conn: Option<Conn> = None;
    for _ in 0..n {
        if conn.is_none() {
            conn = Conn::open(addr).await.ok();
        }
        let Some(c) = conn.as_mut() else {
            t.add(Err("connect to gateway failed".into()));
            continue;
        };
        let r = c.request("GET", path, headers, "").await;
        if r.is_err() {
            conn = None;
        }
        t.add(r);
    }
    t
}

/// Concurrent keep-alive clients sending `GET path` in a loop until stopped, counting as they
/// go so a test can act after a given number of requests.
pub struct LoadRun {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    done: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    tasks: Vec<tokio::task::JoinHandle<Tally>>,
}

impl LoadRun {
    pub fn start(addr: SocketAddr, clients: usize, path: &str) -> Self {
        use std::sync::atomic::{AtomicBool, AtomicUsize};
        use std::sync::Arc;
        let stop = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicUsize::new(0));
        let tasks = (0..clients)
            .map(|_| {
                let (stop, done, path) = (stop.clone(), done.clone(), path.to_string());
                tokio::spawn(async move {
                    let mut t = Tally::default();
                    let mut conn: Option<Conn> = None;
                    while !stop.load(Ordering::Relaxed) {
                        if conn.is_none() {
                            conn = Conn::open(addr).await.ok();
                        }
                        let r = match conn.as_mut() {
                            Some(c) => c.get(&path).await,
                            None => {
                                tokio::time::sleep(Duration::from_millis(10)).await;
                                Err("connect to gateway failed".into())
                            }
                        };
                        if r.is_err() {
                            conn = None;
                        }
                        t.add(r);
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                    t
                })
            })
            .collect();
        Self { stop, done, tasks }
    }

    /// Requests completed so far (successful or not).
    pub fn completed(&self) -> usize {
        self.done.load(Ordering::Relaxed)
    }

    /// Stops the clients (each finishes its current request) and adds up what they saw.
    pub async fn finish(self) -> Tally {
        self.stop.store(true, Ordering::Relaxed);
        let mut total = Tally::default();
        for t in self.tasks {
            total.merge(t.await.expect("load client panicked"));
        }
        total
    }
}
