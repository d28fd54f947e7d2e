//! The backend's HTTP side: the accept loop (HTTP/1.1 keep-alive and h2c on one port) and the
//! request handler that routes to application behaviour, `/healthz` or the control endpoints.

use std::convert::Infallible;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Body as _, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;

use super::knobs::Knobs;
use super::state::{Gauge, State};

/// Largest knobs document accepted by `PUT /_lab/knobs`.
const MAX_CONTROL_BODY: usize = 1 << 20;

type Resp = Response<Full<Bytes>>;

/// Accepts connections forever, serving each on its own task.
pub(crate) async fn accept_loop(listener: TcpListener, state: Arc<State>) {
    // No timer is set on purpose: hyper then applies no header-read timeout, so the backend
    // never closes a proxy's idle pooled connection by itself (that would add failures no
    // scenario asked for).
    let builder = Arc::new(auto::Builder::new(TokioExecutor::new()));
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                // Out of file descriptors and the like: wait a little rather than spin.
                tracing::warn!(backend = %state.name, error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let state = state.clone();
        let builder = builder.clone();
        tokio::spawn(async move {
            let peer_value = HeaderValue::from_str(&peer.ip().to_string()).ok();
            let svc = hyper::service::service_fn(move |req| {
                handle(req, peer_value.clone(), state.clone())
            });
            if let Err(e) = builder.serve_connection(TokioIo::new(stream), svc).await {
                tracing::debug!(%peer, error = %e, "backend connection ended with an error");
            }
        });
    }
}

async fn handle(
    req: Request<Incoming>,
    peer_value: Option<HeaderValue>,
    state: Arc<State>,
) -> Result<Resp, Infallible> {
    let path = req.uri().path();
    let mut resp = if path == "/healthz" {
        health(req, &state).await
    } else if path == "/_lab" || path.starts_with("/_lab/") {
        control(req, &state).await
    } else {
        app(req, &state).await
    };
    if let Some(v) = &state.name_value {
        resp.headers_mut().insert("x-backend", v.clone());
    }
    if let Some(v) = peer_value {
        resp.headers_mut().insert("x-lab-peer", v);
    }
    Ok(resp)
}

fn reply(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Resp {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

fn text(status: StatusCode, body: impl Into<Bytes>) -> Resp {
    reply(status, "text/plain", body)
}

fn json<T: serde::Serialize>(value: &T) -> Resp {
    match serde_json::to_vec(value) {
        Ok(v) => reply(StatusCode::OK, "application/json", v),
        Err(e) => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot encode JSON: {e}\n"),
        ),
    }
}

/// Reads a request body to its end, keeping nothing. False when the client broke off.
async fn discard(mut body: Incoming) -> bool {
    if body.is_end_stream() {
        return true;
    }
    loop {
        match body.frame().await {
            None => return true,
            Some(Ok(_)) => {}
            Some(Err(_)) => return false,
        }
    }
}

async fn app(req: Request<Incoming>, state: &State) -> Resp {
    state.requests.fetch_add(1, Relaxed);
    if !discard(req.into_body()).await {
        return text(StatusCode::BAD_REQUEST, "request body aborted\n");
    }
    state.unhung().await;
    // The knobs in force once the request is read and not hung decide the rest.
    let active = state.active();
    let queued = Gauge::enter(&state.queued);
    // The semaphore is never closed, so acquiring only fails in theory; serve anyway then.
    let _permit = match &active.gate {
        Some(gate) => gate.clone().acquire_owned().await.ok(),
        None => None,
    };
    drop(queued);
    let _serving = Gauge::enter(&state.in_service);
    if let Some(latency) = &active.knobs.latency {
        tokio::time::sleep(latency.sample()).await;
    }
    // `hang` may have been set while this request was being served.
    state.unhung().await;
    let ratio = active.knobs.error_ratio;
    if ratio > 0.0 && fastrand::f64() < ratio {
        state.errors_sent.fetch_add(1, Relaxed);
        let status = StatusCode::from_u16(active.knobs.error_status)
            .unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
        return text(status, "injected error\n");
    }
    text(StatusCode::OK, active.body.clone())
}

async fn health(req: Request<Incoming>, state: &State) -> Resp {
    state.health_checks.fetch_add(1, Relaxed);
    let _ = discard(req.into_body()).await;
    state.unhung().await;
    if state.active().knobs.health_fail {
        text(StatusCode::SERVICE_UNAVAILABLE, "failing\n")
    } else {
        text(StatusCode::OK, "ok")
    }
}

async fn control(req: Request<Incoming>, state: &State) -> Resp {
    let path = req.uri().path().to_owned();
    let method = req.method().clone();
    match (path.as_str(), method) {
        ("/_lab/knobs", Method::GET) => json(&state.active().knobs),
        ("/_lab/knobs", Method::PUT) => {
            let body = match Limited::new(req.into_body(), MAX_CONTROL_BODY)
                .collect()
                .await
            {
                Ok(b) => b.to_bytes(),
                Err(e) => {
                    return text(
                        StatusCode::BAD_REQUEST,
                        format!("cannot read the knobs body: {e}\n"),
                    )
                }
            };
            match Knobs::from_json(&body) {
                Ok(knobs) => {
                    state.set_knobs(knobs);
                    json(&state.active().knobs)
                }
                Err(e) => text(StatusCode::BAD_REQUEST, format!("{e}\n")),
            }
        }
        ("/_lab/stats", Method::GET) => json(&state.stats()),
        ("/_lab/reset", Method::POST) => {
            state.reset();
            text(StatusCode::OK, "reset\n")
        }
        ("/_lab/crash", Method::POST) => {
            tracing::info!(backend = %state.name, "crash requested, exiting with status 3");
            std::process::exit(3)
        }
        ("/_lab/knobs", _) => not_allowed("GET, PUT"),
        ("/_lab/stats", _) => not_allowed("GET"),
        ("/_lab/reset" | "/_lab/crash", _) => not_allowed("POST"),
        _ => text(
            StatusCode::NOT_FOUND,
            format!("no control endpoint {path}; known: /_lab/knobs, /_lab/stats, /_lab/reset, /_lab/crash\n"),
        ),
    }
}

fn not_allowed(allow: &'static str) -> Resp {
    let mut r = text(StatusCode::METHOD_NOT_ALLOWED, format!("use {allow}\n"));
    r.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    r
}
