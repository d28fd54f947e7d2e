//! Support for the notification tests: a receiver that is a real HTTP server on loopback
//! (Slack-, Dooray- or webhook-shaped is the test's business: it records every request and
//! answers as scripted), which can go down (its port refuses connections) and come back on
//! the same port; and the notification log read from the admin API.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::common::*;

/// One request a receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub at: Instant,
}

impl Received {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A scripted answer: status, extra headers, body.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Answer {
    pub fn ok() -> Answer {
        Answer {
            status: 200,
            headers: Vec::new(),
            body: "ok".into(),
        }
    }

    pub fn status(status: u16) -> Answer {
        Answer {
            status,
            headers: Vec::new(),
            body: "no".into(),
        }
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Answer {
        self.headers.push((name.into(), value.into()));
        self
    }
}

struct Shared {
    received: Mutex<Vec<Received>>,
    /// Answers used in order; when empty, 200 ok.
    script: Mutex<Vec<Answer>>,
    up: AtomicBool,
}

/// A receiver on 127.0.0.1; stops on drop.
pub struct Receiver {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
}

impl Receiver {
    pub fn start() -> Receiver {
        Receiver::start_on(free_port())
    }

    pub fn start_on(port: u16) -> Receiver {
        let shared = Arc::new(Shared {
            received: Mutex::new(Vec::new()),
            script: Mutex::new(Vec::new()),
            up: AtomicBool::new(true),
        });
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        spawn_server(addr, shared.clone(), stop.clone());
        wait_until("the receiver to listen", Duration::from_secs(5), || {
            TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok()
        });
        Receiver { addr, shared, stop }
    }

    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Answers the next requests with these, in order (then 200 ok).
    pub fn script(&self, answers: Vec<Answer>) {
        self.shared.script.lock().unwrap().extend(answers);
    }

    /// Every request so far.
    pub fn received(&self) -> Vec<Received> {
        self.shared.received.lock().unwrap().clone()
    }

    /// Waits until at least `n` requests arrived.
    pub fn wait_for(&self, n: usize, within: Duration) -> Vec<Received> {
        wait_until(&format!("{n} requests at the receiver"), within, || {
            self.shared.received.lock().unwrap().len() >= n
        });
        self.received()
    }

    /// Closes the port: connections are refused until [`Receiver::up`].
    pub fn down(&self) {
        self.shared.up.store(false, Ordering::SeqCst);
        // The accept loop notices within its poll interval; wait until the port refuses.
        wait_until("the receiver to go down", Duration::from_secs(5), || {
            TcpStream::connect_timeout(&self.addr, Duration::from_millis(100)).is_err()
        });
    }

    /// Listens again on the same port.
    pub fn up(&self) {
        self.shared.up.store(true, Ordering::SeqCst);
        wait_until("the receiver to come back", Duration::from_secs(10), || {
            TcpStream::connect_timeout(&self.addr, Duration::from_millis(100)).is_ok()
        });
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Binds while `up`, drops the listener while down (so the port refuses), until `stop`.
fn spawn_server(addr: SocketAddr, shared: Arc<Shared>, stop: Arc<AtomicBool>) {
    std::thread::spawn(move || {
        while !stop.load(Ordering::SeqCst) {
            if !shared.up.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
            let listener = match TcpListener::bind(addr) {
                Ok(l) => l,
                Err(_) => {
                    std::thread::sleep(Duration::from_millis(20));
                    continue;
                }
            };
            listener.set_nonblocking(true).unwrap();
            while shared.up.load(Ordering::SeqCst) && !stop.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let shared = shared.clone();
                        std::thread::spawn(move || serve(stream, &shared));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        }
    });
}

fn serve(stream: TcpStream, shared: &Shared) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut reader = BufReader::new(stream);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
        let mut headers = Vec::new();
        let mut length = 0usize;
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                let (k, v) = (k.trim().to_ascii_lowercase(), v.trim().to_string());
                if k == "content-length" {
                    length = v.parse().unwrap_or(0);
                }
                headers.push((k, v));
            }
        }
        let mut body = vec![0u8; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let close = headers
            .iter()
            .any(|(k, v)| k == "connection" && v.eq_ignore_ascii_case("close"));
        let answer = {
            let mut script = shared.script.lock().unwrap();
            if script.is_empty() {
                Answer::ok()
            } else {
                script.remove(0)
            }
        };
        shared.received.lock().unwrap().push(Received {
            path,
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
            at: Instant::now(),
        });
        let mut head = format!(
            "HTTP/1.1 {} X\r\nContent-Length: {}\r\nContent-Type: text/plain\r\n",
            answer.status,
            answer.body.len()
        );
        for (k, v) in &answer.headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        let s = reader.get_mut();
        if s.write_all(head.as_bytes()).is_err() || s.write_all(answer.body.as_bytes()).is_err() {
            return;
        }
        if close {
            return;
        }
    }
}

/// `GET /api/v1/notifications` with `query` (e.g. `?state=delivered`).
pub fn notification_log(gw: &Gateway, query: &str) -> Vec<Value> {
    let (code, body) = gw.admin_get(&format!("/api/v1/notifications{query}"));
    assert_eq!(code, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}
