//! The record of one request, completed when its response body ends (or the client goes away):
//! load accounting for the balancer, request counters, the latency histogram, the top talkers
//! and the access-log line all happen in one place, once.

use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{HeaderValue, Method};

use super::body::BodySlot;
use crate::access_log::{unix_now_us, Entry};
use crate::router::RouteRt;
use crate::shared::Shared;

/// How many request body bytes were forwarded.
pub enum BytesIn {
    None,
    Counted(Arc<BodySlot>),
}

pub struct Exchange {
    pub shared: Arc<Shared>,
    pub start: Instant,
    pub request_id: HeaderValue,
    pub client: SocketAddr,
    /// The client IP as text, made once per connection.
    pub client_text: HeaderValue,
    pub listener: Arc<str>,
    pub method: Method,
    /// `Host` (or the HTTP/2 authority), for the log.
    pub host: Option<HeaderValue>,
    pub uri: http::Uri,
    pub route: Option<Arc<RouteRt>>,
    /// Member index of the server that answered, if any.
    pub server: Option<usize>,
    /// The server's load was begun and must be ended.
    pub load_begun: bool,
    pub status: u16,
    pub bytes_in: BytesIn,
    pub upstream_time: Option<Duration>,
    pub attempts: u32,
    pub error: Option<&'static str>,
    /// The request's slot in its upstream's admission control, given back at the end.
    pub permit: Option<crate::resilience::admission::Permit>,
    /// What the route's cache did: `hit`, `stale`, `miss` (routes without a cache: `None`).
    pub cache: Option<&'static str>,
}

impl Exchange {
    /// Completes the record; `clean` is false when the body did not reach its end.
    pub fn finish(mut self: Box<Self>, bytes_out: u64, clean: bool) {
        if let Some(mut permit) = self.permit.take() {
            // The limit learns from the upstream's answer time; an overload answer (a 503 or
            // 429 the upstream sent, or a response timeout) says the upstream is past capacity.
            permit.rtt = self.upstream_time;
            permit.overload = match self.error {
                None => matches!(self.status, 429 | 503),
                Some(kind) => kind == "response_timeout",
            };
        }
        let total = self.start.elapsed();
        let mut server_addr: Option<&str> = None;
        if let Some(route) = &self.route {
            if let Some(m) = self.server.and_then(|i| route.upstream.members.get(i)) {
                server_addr = Some(m.state.addr_text.as_str());
                if self.load_begun {
                    match self.upstream_time {
                        Some(t) => m.state.load.end(t),
                        None => m.state.load.end_without_sample(),
                    }
                }
            }
            route.counters_for(self.server).record(self.status);
            route.latency.observe(total.as_secs_f64());
        }
        let talkers = &self.shared.talkers;
        let log = self.shared.access_log.load();
        if !talkers.enabled() && !log.enabled() {
            return;
        }
        // One clock read for both.
        let time_us = unix_now_us();
        if talkers.enabled() {
            talkers.record_at(
                time_us / 1000,
                self.client.ip(),
                self.uri.path(),
                self.status,
            );
        }
        if !log.enabled() {
            return;
        }
        let bytes_in = match &self.bytes_in {
            BytesIn::None => 0,
            BytesIn::Counted(slot) => slot.bytes.load(Relaxed),
        };
        log.log(&Entry {
            time_us,
            request_id: self.request_id.to_str().unwrap_or("-"),
            client: self.client_text.to_str().unwrap_or("-"),
            listener: &self.listener,
            method: self.method.as_str(),
            host: self
                .host
                .as_ref()
                .and_then(|h| h.to_str().ok())
                .map_or("", super::headers::strip_port),
            path: self.uri.path(),
            route: self.route.as_ref().map_or("-", |r| r.cfg.name.as_str()),
            upstream: self
                .route
                .as_ref()
                .map_or("-", |r| r.upstream.name.as_str()),
            server: server_addr,
            status: self.status,
            bytes_in,
            bytes_out,
            duration_us: total.as_micros() as u64,
            upstream_us: self.upstream_time.map(|t| t.as_micros() as u64),
            attempts: self.attempts,
            error: self.error,
            cache: self.cache,
            aborted: !clean,
        });
    }
}
