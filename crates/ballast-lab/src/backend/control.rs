//! The harness's side of the control endpoints: a small HTTP/1.1 client that sets knobs,
//! reads counters, resets, crashes and waits for a backend.
//!
//! A fresh connection per call keeps it independent of whatever state the backend's other
//! connections are in (hung, saturated), and every call has a deadline so a wedged backend
//! fails the step instead of stalling the run.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::knobs::Knobs;
use super::state::BackendStats;
use crate::LabError;

/// Longest control answer read (stats and knobs are a few hundred bytes).
const MAX_ANSWER: usize = 1 << 20;
/// Deadline of one control call.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// Talks to one lab backend's `/_lab/*` endpoints.
#[derive(Clone, Debug)]
pub struct BackendControl {
    addr: SocketAddr,
    timeout: Duration,
}

/// Where a control call failed: before the backend accepted the connection, in the
/// exchange (connection dropped, bad answer), or by running out of time.
enum CallError {
    Connect(String),
    Exchange(String),
    Timeout(String),
}

impl CallError {
    fn message(self) -> String {
        match self {
            CallError::Connect(m) | CallError::Exchange(m) | CallError::Timeout(m) => m,
        }
    }
}

impl BackendControl {
    pub fn new(addr: SocketAddr) -> BackendControl {
        BackendControl {
            addr,
            timeout: CALL_TIMEOUT,
        }
    }

    /// Changes the per-call deadline (5 s by default).
    pub fn with_timeout(mut self, timeout: Duration) -> BackendControl {
        self.timeout = timeout;
        self
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Replaces all knobs. Invalid knobs are refused here, before anything is sent.
    pub async fn set_knobs(&self, knobs: &Knobs) -> Result<(), LabError> {
        knobs
            .validate()
            .map_err(|e| LabError::Usage(format!("backend {}: {e}", self.addr)))?;
        let body = serde_json::to_vec(knobs)?;
        self.expect_ok(Method::PUT, "/_lab/knobs", Some(body))
            .await
            .map(drop)
    }

    pub async fn knobs(&self) -> Result<Knobs, LabError> {
        let body = self.expect_ok(Method::GET, "/_lab/knobs", None).await?;
        serde_json::from_slice(&body).map_err(|e| self.error("GET /_lab/knobs", e))
    }

    pub async fn stats(&self) -> Result<BackendStats, LabError> {
        let body = self.expect_ok(Method::GET, "/_lab/stats", None).await?;
        serde_json::from_slice(&body).map_err(|e| self.error("GET /_lab/stats", e))
    }

    /// Zeroes the request, health-check and error counters.
    pub async fn reset(&self) -> Result<(), LabError> {
        self.expect_ok(Method::POST, "/_lab/reset", None)
            .await
            .map(drop)
    }

    /// Makes the backend process exit (status 3) at once. The backend drops the connection
    /// without answering; that is success. Failing to connect (nothing was crashed), no
    /// reaction within the deadline, or an answer other than 2xx (not a lab backend) are
    /// errors.
    pub async fn crash(&self) -> Result<(), LabError> {
        match self.call(Method::POST, "/_lab/crash", None).await {
            Ok((status, _)) if status.is_success() => Ok(()),
            Ok((status, body)) => Err(self.error(
                "POST /_lab/crash",
                format!(
                    "answered {status}: {}",
                    String::from_utf8_lossy(&body).trim()
                ),
            )),
            Err(CallError::Exchange(_)) => Ok(()),
            Err(e) => Err(self.error("POST /_lab/crash", e.message())),
        }
    }

    /// Polls `GET /_lab/stats` (which counts nothing) until the backend answers, or fails
    /// with the last error once `timeout` has passed.
    pub async fn wait_ready(&self, timeout: Duration) -> Result<(), LabError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let attempt = tokio::time::timeout(
                left.min(self.timeout),
                self.call(Method::GET, "/_lab/stats", None),
            )
            .await;
            let last = match attempt {
                Ok(Ok((status, _))) if status.is_success() => return Ok(()),
                Ok(Ok((status, _))) => format!("answered {status}"),
                Ok(Err(e)) => e.message(),
                Err(_) => "no answer".to_owned(),
            };
            if tokio::time::Instant::now() >= deadline {
                return Err(self.error(
                    "waiting until ready",
                    format!("not ready after {timeout:?}: {last}"),
                ));
            }
            tokio::time::sleep(Duration::from_millis(20).min(left)).await;
        }
    }

    fn error(&self, what: &str, message: impl std::fmt::Display) -> LabError {
        LabError::http(format!("backend {}: {what}", self.addr), message)
    }

    /// One call that must answer 2xx; returns the body.
    async fn expect_ok(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<Bytes, LabError> {
        let what = format!("{method} {path}");
        match self.call(method, path, body).await {
            Ok((status, body)) if status.is_success() => Ok(body),
            Ok((status, body)) => Err(self.error(
                &what,
                format!(
                    "answered {status}: {}",
                    String::from_utf8_lossy(&body).trim()
                ),
            )),
            Err(e) => Err(self.error(&what, e.message())),
        }
    }

    /// One request on a fresh connection, within the call deadline.
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<(StatusCode, Bytes), CallError> {
        let stream = tokio::time::timeout(self.timeout, TcpStream::connect(self.addr))
            .await
            .map_err(|_| CallError::Timeout(format!("connect timed out after {:?}", self.timeout)))?
            .map_err(|e| CallError::Connect(format!("connect: {e}")))?;
        let _ = stream.set_nodelay(true);
        tokio::time::timeout(self.timeout, self.exchange(stream, method, path, body))
            .await
            .map_err(|_| CallError::Timeout(format!("no answer within {:?}", self.timeout)))?
    }

    async fn exchange(
        &self,
        stream: TcpStream,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<(StatusCode, Bytes), CallError> {
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| CallError::Exchange(format!("handshake: {e}")))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let has_body = body.is_some();
        let mut req = Request::new(Full::new(Bytes::from(body.unwrap_or_default())));
        *req.method_mut() = method;
        *req.uri_mut() = path
            .parse()
            .map_err(|e| CallError::Exchange(format!("bad path {path:?}: {e}")))?;
        if let Ok(host) = HeaderValue::from_str(&self.addr.to_string()) {
            req.headers_mut().insert(header::HOST, host);
        }
        if has_body {
            req.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
        }
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| CallError::Exchange(format!("request: {e}")))?;
        let status = resp.status();
        let body = Limited::new(resp.into_body(), MAX_ANSWER)
            .collect()
            .await
            .map_err(|e| CallError::Exchange(format!("reading the answer: {e}")))?
            .to_bytes();
        Ok((status, body))
    }
}
