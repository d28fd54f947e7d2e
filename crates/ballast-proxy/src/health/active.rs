//! Active health checks: one task per server, probing on a fixed interval with TCP connect or
//! an HTTP request (method, path, expected status range, optional body substring).
//!
//! A probe always opens a fresh connection (never a pooled one), so it sees what a new request
//! would see. Results feed the rise/fall state machine in `ServerState::record_check`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ballast_config::{Check, Health};
use ballast_core::{Event, HealthCause, UnejectCause};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

use crate::events::EventLog;
use crate::upstream::ServerState;

/// Most of a health response body that is read for the substring match.
const MAX_BODY: usize = 64 * 1024;

/// Starts the checker of one server; the task runs until aborted. With `uneject`, `rise` good
/// checks also end a passive ejection (failback). Transitions become events.
pub fn spawn(
    upstream: String,
    state: Arc<ServerState>,
    health: Health,
    uneject: bool,
    events: Arc<EventLog>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        // Spread first probes so a large pool does not probe in lockstep.
        let jitter = fastrand::u64(0..=health.interval.as_millis() as u64 / 4 + 1);
        tokio::time::sleep(Duration::from_millis(jitter)).await;
        let mut tick = tokio::time::interval(health.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let ok = matches!(
                tokio::time::timeout(health.timeout, probe(state.addr, &health.check)).await,
                Ok(Ok(()))
            );
            let change = state.record_check(ok, health.rise, health.fall, uneject);
            if let Some(up) = change.up {
                tracing::warn!(upstream = %upstream, server = %state.addr, up, "health state changed");
                let (upstream, server) = (upstream.clone(), state.addr_text.clone());
                let cause = HealthCause::ActiveCheck;
                events.emit(if up {
                    Event::ServerUp {
                        upstream,
                        server,
                        cause,
                    }
                } else {
                    Event::ServerDown {
                        upstream,
                        server,
                        cause,
                    }
                });
            }
            if change.unejected {
                tracing::info!(upstream = %upstream, server = %state.addr, "ejection ended by active checks");
                events.emit(Event::ServerUnejected {
                    upstream: upstream.clone(),
                    server: state.addr_text.clone(),
                    cause: UnejectCause::ActiveCheck,
                });
            }
        }
    })
}

/// One probe; `Err` carries a short reason.
pub async fn probe(addr: SocketAddr, check: &Check) -> Result<(), String> {
    let stream = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let Check::Http {
        method,
        path,
        host,
        expect,
        body,
    } = check
    else {
        return Ok(());
    };
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    let conn = tokio::spawn(conn);
    let req = http::Request::builder()
        .method(method.clone())
        .uri(path.as_str())
        .header(
            http::header::HOST,
            host.clone().unwrap_or_else(|| addr.to_string()),
        )
        .header(http::header::USER_AGENT, "ballast-health-check")
        .header(http::header::CONNECTION, "close")
        .body(Empty::<Bytes>::new())
        .map_err(|e| e.to_string())?;
    let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    let result = if !expect.contains(&status) {
        Err(format!("status {status}"))
    } else if let Some(needle) = body {
        let bytes = Limited::new(resp.into_body(), MAX_BODY)
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        if bytes
            .windows(needle.len().max(1))
            .any(|w| w == needle.as_bytes())
        {
            Ok(())
        } else {
            Err("body does not contain the expected text".into())
        }
    } else {
        Ok(())
    };
    conn.abort();
    result
}
