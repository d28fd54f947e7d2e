//! What the receiver tests share: a real local HTTP server that records every request and
//! answers with scripted replies, and messages built by hand.
//!
//! The server is hyper on a socket bound to 127.0.0.1:0, so the notifiers are tested against
//! real HTTP exchanges, not a mocked client.

#![allow(dead_code)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use ballast_core::{AlertState, Labels, Severity};
use ballast_notify::{Locale, Message, MessageAlert, MessageStatus};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// One request as the server received it.
#[derive(Debug)]
pub struct Captured {
    pub method: String,
    pub path: String,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

impl Captured {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("the body is JSON")
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// One scripted answer.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(&'static str, &'static str)>,
    pub body: &'static str,
}

impl Reply {
    pub fn new(status: u16, body: &'static str) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body,
        }
    }

    pub fn header(mut self, name: &'static str, value: &'static str) -> Reply {
        self.headers.push((name, value));
        self
    }
}

/// A local receiver: answers the n-th request with the n-th reply (the last one repeats).
pub struct Server {
    pub addr: SocketAddr,
    pub requests: mpsc::UnboundedReceiver<Captured>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Server {
    pub async fn start(replies: Vec<Reply>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = mpsc::unbounded_channel();
        let replies = Arc::new(replies);
        let count = Arc::new(AtomicUsize::new(0));
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let tx = tx.clone();
                let replies = replies.clone();
                let count = count.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req: http::Request<hyper::body::Incoming>| {
                        let tx = tx.clone();
                        let replies = replies.clone();
                        let count = count.clone();
                        async move {
                            let (parts, body) = req.into_parts();
                            let body = body.collect().await.map(|b| b.to_bytes());
                            let _ = tx.send(Captured {
                                method: parts.method.to_string(),
                                path: parts.uri.to_string(),
                                headers: parts.headers,
                                body: body.unwrap_or_default(),
                            });
                            let n = count.fetch_add(1, Ordering::SeqCst);
                            let reply = replies
                                .get(n)
                                .or(replies.last())
                                .cloned()
                                .unwrap_or(Reply::new(200, "ok"));
                            let mut resp = http::Response::builder().status(reply.status);
                            for (k, v) in &reply.headers {
                                resp = resp.header(*k, *v);
                            }
                            Ok::<_, Infallible>(
                                resp.body(Full::new(Bytes::from_static(reply.body.as_bytes())))
                                    .unwrap(),
                            )
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        Server {
            addr,
            requests: rx,
            task,
        }
    }

    /// The URL of a hook on this server, with a token in its path.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub async fn next(&mut self) -> Captured {
        self.requests.recv().await.expect("a request")
    }
}

/// A port nothing listens on (bound, then closed).
pub async fn closed_port_url(path: &str) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}{path}")
}

pub const AT: u64 = 1_796_066_405_000;
pub const CRIT: AlertState = AlertState::Firing {
    severity: Severity::Critical,
};
pub const WARN: AlertState = AlertState::Firing {
    severity: Severity::Warning,
};

pub fn alert(rule: &str, server: &str, state: AlertState) -> MessageAlert {
    let labels = Labels::new()
        .with("alertname", rule)
        .with("monitor", "shop-gateway")
        .with("upstream", "app")
        .with("server", server);
    MessageAlert {
        id: labels.fingerprint(),
        rule: rule.into(),
        labels,
        annotations: [
            ("summary".to_string(), "app is down".to_string()),
            ("runbook".to_string(), "https://wiki/rb".to_string()),
        ]
        .into_iter()
        .collect(),
        state,
        value: Some(0.0),
        threshold: Some(1.0),
        since_unix_ms: AT,
    }
}

pub fn message(alerts: Vec<MessageAlert>, locale: Locale) -> Message {
    let status = if alerts
        .iter()
        .any(|a| matches!(a.state, AlertState::Firing { .. }))
    {
        MessageStatus::Firing
    } else {
        MessageStatus::Resolved
    };
    let severity = alerts.iter().filter_map(|a| a.severity()).max();
    Message {
        group_key: "{}:{alertname=\"upstream-down\"}".into(),
        group_labels: Labels::new()
            .with("alertname", "upstream-down")
            .with("upstream", "app"),
        status,
        severity,
        alerts,
        dashboard_url: Some("https://ballast.example".into()),
        locale,
        at_unix_ms: AT,
        route: 1,
        escalated_after_ms: None,
        template: None,
    }
}

/// 500 alerts over 25 rules (`rule-00` … `rule-24`, 20 alerts each).
pub fn storm() -> Message {
    let alerts = (0..500)
        .map(|i| {
            alert(
                &format!("rule-{:02}", i % 25),
                &format!("10.0.{}.{}:80", i / 250, i % 250),
                CRIT,
            )
        })
        .collect();
    message(alerts, Locale::En)
}
