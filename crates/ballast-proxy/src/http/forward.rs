//! Proxies one HTTP request: validate, route, pick a server, send, stream the answer back.
//!
//! Minimum safe failover lives here. An attempt that failed before anything reached the
//! upstream (connect refused or timed out, or a pooled connection that turned out closed before
//! the request was written) is always sent to another server. An idempotent request with no
//! body whose connection closed before any response byte arrived is also sent again, to another
//! server. Nothing else is retried: a request that may have had effects is never repeated.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::header::{self, HeaderValue};
use http::{Request, Response, StatusCode, Uri, Version};
use hyper::body::Incoming;

use super::body::{BodySlot, ProxyBody, UpstreamBody};
use super::exchange::{BytesIn, Exchange};
use super::headers;
use super::upgrade;
use crate::balancer::{Load, PickContext};
use crate::cache;
use crate::error::{ProxyError, Refusal, Source};
use crate::listener::ListenerShared;
use crate::overrides::Rerouted;
use crate::resilience::flood::Verdict;
use crate::resilience::waiting_room::{self, Admission};
use crate::resilience::{self, backoff, retry};
use crate::router::RouteRt;
use crate::upstream::h1::{self, ResponseBody, SendError};
use crate::upstream::{Outcome, ServerState, Tried};

/// The service function of every HTTP connection.
pub async fn handle(
    req: Request<Incoming>,
    listener: Arc<ListenerShared>,
    client: SocketAddr,
    client_value: HeaderValue,
) -> Result<Response<ProxyBody>, Infallible> {
    let mut room_cookie = None;
    let mut resp = proxy(req, &listener, client, client_value, &mut room_cookie).await;
    waiting_room::add_cookie(&mut resp, room_cookie);
    Ok(resp)
}

/// The parts of the request sent upstream, kept so an attempt can be repeated.
struct Head {
    method: http::Method,
    /// Path and query.
    uri: Uri,
    headers: http::HeaderMap,
}

async fn proxy(
    mut req: Request<Incoming>,
    l: &ListenerShared,
    client: SocketAddr,
    client_value: HeaderValue,
    room_cookie: &mut Option<HeaderValue>,
) -> Response<ProxyBody> {
    let start = Instant::now();
    let wants_upgrade = req.version() == Version::HTTP_11 && headers::is_upgrade(req.headers());
    let client_upgrade = wants_upgrade.then(|| hyper::upgrade::on(&mut req));
    let (mut parts, body) = req.into_parts();
    let (host_header, host_refused) =
        match headers::request_host(parts.version, &parts.uri, &parts.headers) {
            Ok(h) => (h, None),
            Err(r) => (None, Some(r)),
        };
    let request_id = headers::ensure_request_id(&mut parts.headers);
    let mut ex = Unanswered(Some(Box::new(Exchange {
        shared: l.shared.clone(),
        start,
        request_id: request_id.clone(),
        client,
        client_text: client_value.clone(),
        listener: l.name.clone(),
        method: parts.method.clone(),
        host: host_header.clone(),
        uri: parts.uri.clone(),
        route: None,
        server: None,
        load_begun: false,
        status: 0,
        bytes_in: BytesIn::None,
        upstream_time: None,
        attempts: 0,
        error: None,
        permit: None,
        cache: None,
    })));

    // Refused requests are the gateway's own answers: nothing of them reaches an upstream.
    let refused = headers::check_framing(&parts.headers)
        .err()
        .or(host_refused.map(ProxyError::Refused));
    if let Some(e) = refused {
        let reason = match e {
            ProxyError::Refused(r) => r,
            _ => Refusal::BadFraming,
        };
        l.shared.global.refused.count(reason);
        return gateway_error(ex.take(), e);
    }
    let table = l.table.load();
    let Some(route) = table
        .find(
            &parts.method,
            headers::host(&parts.uri, &parts.headers),
            parts.uri.path(),
            &parts.headers,
        )
        .cloned()
    else {
        return gateway_error(ex.take(), ProxyError::NoRoute);
    };
    drop(table);
    ex.get().route = Some(route.clone());
    // A `Reroute` command's override (one atomic load when there is none).
    let route = match l.shared.overrides.route(&route.cfg.name) {
        None => route,
        Some(Rerouted::To(alt)) => {
            ex.get().route = Some(alt.clone());
            alt
        }
        Some(Rerouted::Sorry(page)) => return sorry(ex.take(), &page, &route, 503),
    };
    if let Some(fc) = &route.cfg.flood {
        if let Some(key) = flood_key(fc, client.ip(), &client_value, &parts.headers) {
            if let Verdict::Blocked(ms) =
                route
                    .flood
                    .check(fc, &key, &route.cfg.name, &l.shared.events)
            {
                return flood_refused(ex.take(), ms);
            }
        }
    }
    if let Some(room) = &route.room {
        match room.admit(&route.cfg.name, &parts.headers, l.tls, &l.shared.events) {
            Admission::Pass(cookie) => *room_cookie = cookie,
            Admission::Answer(resp, why) => return waiting_room::answer(ex.take(), resp, why),
        }
    }

    headers::strip_hop_by_hop(&mut parts.headers, wants_upgrade);
    headers::add_forwarded(
        &mut parts.headers,
        &client_value,
        l.tls,
        host_header.clone(),
    );
    // An absolute-form target (or an HTTP/2 `:authority`) names the host: `Host` says so too.
    if let (Some(_), Some(h)) = (parts.uri.authority(), host_header) {
        parts.headers.insert(header::HOST, h);
    }
    let head = Head {
        uri: parts
            .uri
            .path_and_query()
            .map_or_else(|| Uri::from_static("/"), |pq| Uri::from(pq.clone())),
        method: parts.method,
        headers: parts.headers,
    };
    // A fresh stored answer goes out from memory: no upstream, no concurrency slot. (Looked up
    // with the headers as the upstream sees them, which is what its `Vary` refers to.)
    let cached = cache::Lookup::new(
        &route,
        &head.method,
        &head.uri,
        &head.headers,
        l.tls,
        wants_upgrade,
    );
    if let Some(resp) = cached
        .as_ref()
        .and_then(|c| c.serve_fresh(&head.headers, || ex.take()))
    {
        return resp;
    }
    ex.get().cache = cached.as_ref().and_then(cache::Lookup::label);
    // A `Shed` command's share of this class is refused like a shed request, saturated or
    // not (one atomic load when the class has none).
    if l.shared.overrides.shed(route.cfg.priority) {
        let retry_after = route
            .upstream
            .admission
            .as_ref()
            .map_or(ORDERED_SHED_RETRY_AFTER, |a| a.retry_after());
        return shed(ex.take(), "shed_ordered", retry_after);
    }
    // Admission control: a slot in the upstream, or a 503 now (a fresh cache hit needs none).
    if let Some(adm) = &route.upstream.admission {
        match adm.acquire(route.cfg.priority).await {
            Ok(permit) => ex.get().permit = Some(permit),
            Err(reason) => return shed(ex.take(), reason.error_kind(), adm.retry_after()),
        }
    }
    let slot = (!http_body::Body::is_end_stream(&body)).then(|| BodySlot::new(body));
    if let Some(s) = &slot {
        ex.get().bytes_in = BytesIn::Counted(s.clone());
    }
    // May this request be sent again after it reached a server? Only an idempotent one whose
    // (empty) body can be replayed.
    let replayable = headers::is_idempotent(&head.method) && slot.is_none();
    let mut head = head;

    let upstream = &route.upstream;
    let policy = &route.cfg.retry;
    let budgets = &l.shared.client_budgets;
    upstream.retry_budget.deposit();
    budgets.deposit(client.ip());
    // Where the request stands after `attempts` attempts, for the retry decision.
    let progress = |attempts: u32| retry::Progress {
        attempts,
        elapsed: start.elapsed(),
        deadline: route.cfg.total_timeout,
        replayable,
    };
    let backoff_of =
        |attempts: u32| move || backoff::delay(attempts, policy.backoff_base, policy.backoff_max);

    let sticky_name = upstream.config.sticky.as_ref().map(|s| s.cookie.as_str());
    let pinned = sticky_name
        .and_then(|n| headers::cookie(&head.headers, n))
        .map(str::to_owned);
    let mut client_upgrade = client_upgrade;
    let mut tried = Tried::new();
    let mut last_err = ProxyError::NoServer;
    // The next attempt is a retry that must wait this long and be paid from the budgets.
    let mut wait = Duration::ZERO;
    let mut charged = false;
    // A retryable answer, kept until its retry is certain (another server picked, budget
    // granted); it is what the client gets when the retry cannot happen.
    let mut held: Option<Answer> = None;
    loop {
        let ctx = PickContext {
            client_ip: client.ip(),
            headers: Some(&head.headers),
            path: head.uri.path(),
        };
        let Some(idx) = upstream.select(&ctx, &tried, pinned.as_deref()) else {
            break;
        };
        if ex.get().attempts > 0 {
            if charged
                && !(upstream
                    .retry_budget
                    .try_withdraw(policy.budget, policy.min_per_second)
                    && budgets.try_withdraw(client.ip(), policy.budget, policy.min_per_second))
            {
                route.policy.budget_exhausted.fetch_add(1, Relaxed);
                // One event per route per second at most: it is a state, not a request log.
                let sec = resilience::budget::now_sec() + 1;
                if route.policy.budget_event_sec.swap(sec, Relaxed) != sec {
                    l.shared
                        .events
                        .emit(ballast_core::Event::RetryBudgetExhausted {
                            route: route.cfg.name.clone(),
                        });
                }
                break;
            }
            // The held answer is dropped unread, and its connection with it.
            held = None;
            if !wait.is_zero() {
                tokio::time::sleep(wait).await;
            }
            route.policy.retries.fetch_add(1, Relaxed);
        }
        tried.push(idx);
        ex.get().attempts += 1;
        let attempt_no = ex.get().attempts;
        let state = &upstream.members[idx].state;
        let mut body = match &slot {
            None => UpstreamBody::Empty,
            Some(s) if s.untouched() => UpstreamBody::from_slot(s),
            Some(_) => break,
        };
        head.headers.insert(
            resilience::ATTEMPT_HEADER.clone(),
            HeaderValue::from(attempt_no),
        );
        // No attempt waits past the route's total deadline.
        let left = route.cfg.total_timeout.saturating_sub(start.elapsed());
        match attempt(
            state,
            &head,
            &mut body,
            wants_upgrade,
            route.cfg.connect_timeout.min(left),
            route.cfg.response_timeout.min(left),
        )
        .await
        {
            Ok((resp, took)) => {
                let status = resp.status();
                upstream.record(
                    idx,
                    if status.is_server_error() {
                        Outcome::Failure
                    } else {
                        Outcome::Success
                    },
                );
                let answer = Answer { resp, idx, took };
                // Only a listed status reads the answer's retry headers (the common case, a
                // success, decides nothing).
                if policy.on_status.contains(&status.as_u16()) {
                    let h = answer.resp.headers();
                    let outcome = retry::Outcome::Answer {
                        status: status.as_u16(),
                        retry_after: h.get(header::RETRY_AFTER).and_then(backoff::retry_after),
                        no_retry: h.contains_key(&resilience::NO_RETRY_HEADER),
                    };
                    match retry::decide(
                        outcome,
                        policy,
                        progress(attempt_no),
                        backoff_of(attempt_no),
                    ) {
                        retry::Decision::Retry { wait: w, paid } => {
                            tracing::debug!(server = %state.addr, %status, "retryable answer");
                            held = Some(answer);
                            wait = w;
                            charged = paid;
                            continue;
                        }
                        retry::Decision::Stop(retry::Stop::Forbidden) => {
                            route.policy.retry_forbidden.fetch_add(1, Relaxed);
                        }
                        retry::Decision::Stop(_) => {}
                    }
                }
                return respond(
                    &mut ex,
                    answer,
                    &route,
                    l,
                    wants_upgrade,
                    &mut client_upgrade,
                    sticky_name,
                    pinned.as_deref(),
                    cached.as_ref(),
                    &head.headers,
                );
            }
            Err(e) => {
                // Only the server's own failures count against it: a client that aborts its
                // upload must not get a healthy server ejected.
                if e.source() == Source::Upstream {
                    upstream.record(idx, Outcome::Failure);
                }
                let outcome = if e.nothing_sent() {
                    retry::Outcome::NothingSent
                } else {
                    match e {
                        ProxyError::ClosedBeforeResponse => retry::Outcome::Reset,
                        ProxyError::ResponseTimeout => retry::Outcome::Timeout,
                        _ => retry::Outcome::Failed,
                    }
                };
                let again = match retry::decide(
                    outcome,
                    policy,
                    progress(attempt_no),
                    backoff_of(attempt_no),
                ) {
                    retry::Decision::Retry { wait: w, paid } => {
                        wait = w;
                        charged = paid;
                        true
                    }
                    retry::Decision::Stop(_) => false,
                };
                tracing::debug!(server = %state.addr, error = %e, again, "attempt failed");
                last_err = e;
                if !again {
                    break;
                }
            }
        }
    }
    if let Some(answer) = held {
        return respond(
            &mut ex,
            answer,
            &route,
            l,
            wants_upgrade,
            &mut client_upgrade,
            sticky_name,
            pinned.as_deref(),
            cached.as_ref(),
            &head.headers,
        );
    }
    // Stale content is preferred over the sorry page and the error.
    if let Some(resp) = cached
        .as_ref()
        .and_then(|c| c.serve_stale(&last_err, &head.headers, || ex.take()))
    {
        return resp;
    }
    match route.cfg.sorry.as_ref().filter(|p| {
        last_err == ProxyError::NoServer || p.on_status.contains(&last_err.status().as_u16())
    }) {
        Some(page) => {
            let status = last_err.status().as_u16();
            ex.get().error = Some(last_err.kind());
            sorry(ex.take(), page, &route, status)
        }
        None => gateway_error(ex.take(), last_err),
    }
}

/// An upstream answer and where it came from.
struct Answer {
    resp: Response<ResponseBody>,
    /// Member index of the server.
    idx: usize,
    /// Time to the response head.
    took: Duration,
}

/// Turns the upstream's answer into the client's response (or stale content, or the sorry
/// page). `req_headers` are the request's as sent upstream.
#[allow(clippy::too_many_arguments)]
fn respond(
    ex: &mut Unanswered,
    answer: Answer,
    route: &RouteRt,
    l: &ListenerShared,
    wants_upgrade: bool,
    client_upgrade: &mut Option<hyper::upgrade::OnUpgrade>,
    sticky_name: Option<&str>,
    pinned: Option<&str>,
    cached: Option<&cache::Lookup>,
    req_headers: &http::HeaderMap,
) -> Response<ProxyBody> {
    let Answer { resp, idx, took } = answer;
    let state = &route.upstream.members[idx].state;
    let status = resp.status();
    ex.get().server = Some(idx);
    ex.get().load_begun = true;
    ex.get().upstream_time = Some(took);
    if status.is_server_error() {
        let failed = ProxyError::UpstreamStatus(status.as_u16());
        if let Some(stale) = cached.and_then(|c| c.serve_stale(&failed, req_headers, || ex.take()))
        {
            // The upstream's error page is replaced; its connection is not reused.
            drop(resp);
            return stale;
        }
    }
    if let Some(page) = route
        .cfg
        .sorry
        .as_ref()
        .filter(|p| p.on_status.contains(&status.as_u16()))
    {
        // The upstream's own error page is replaced; its connection is not reused.
        drop(resp);
        return sorry(ex.take(), page, route, status.as_u16());
    }
    ex.get().status = status.as_u16();
    let upgraded = status == StatusCode::SWITCHING_PROTOCOLS && wants_upgrade;
    let (mut rparts, rbody) = resp.into_parts();
    headers::strip_hop_by_hop(&mut rparts.headers, upgraded);
    rparts.headers.remove(&resilience::NO_RETRY_HEADER);
    // Decided on the upstream's own headers, before the gateway adds a cookie or an id.
    let capture = cached.and_then(|c| {
        c.admit(
            status,
            &mut rparts.headers,
            req_headers,
            ex.get().uri.path(),
            took,
            &l.shared.events,
        )
    });
    if let Some(name) = sticky_name {
        if pinned != Some(state.cookie_id.as_str()) {
            let c = format!("{name}={}; Path=/; HttpOnly; SameSite=Lax", state.cookie_id);
            if let Ok(v) = HeaderValue::from_str(&c) {
                rparts.headers.append(header::SET_COOKIE, v);
            }
        }
    }
    let request_id = ex.get().request_id.clone();
    rparts
        .headers
        .entry(&headers::X_REQUEST_ID)
        .or_insert(request_id);
    let body = if upgraded {
        if let (Some(client_side), Some(conn)) = (client_upgrade.take(), rbody.into_upgraded()) {
            upgrade::tunnel(client_side, conn, l.shared.clone());
        }
        ProxyBody::empty()
    } else {
        ProxyBody::upstream(rbody).with_capture(capture)
    };
    Response::from_parts(rparts, body.with_exchange(ex.take()))
}

/// Who the client is for `fc`, or `None` when it is allowlisted. Behind a trusted proxy the
/// address is the rightmost `X-Forwarded-For` entry that is not itself a trusted proxy.
/// `peer_text` is `peer` as text, made once per connection.
fn flood_key<'a>(
    fc: &ballast_config::model::FloodConfig,
    peer: std::net::IpAddr,
    peer_text: &'a HeaderValue,
    headers: &http::HeaderMap,
) -> Option<std::borrow::Cow<'a, str>> {
    let mut ip = peer;
    if fc.trusted_proxies.contains(&peer) {
        let hops: Vec<std::net::IpAddr> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|h| h.trim().parse().ok())
            .collect();
        if let Some(first_untrusted) = hops.iter().rev().find(|h| !fc.trusted_proxies.contains(h)) {
            ip = *first_untrusted;
        }
    }
    if fc.allow.contains(&ip) {
        return None;
    }
    if let ballast_config::model::FloodKey::Header(name) = &fc.key {
        if let Some(v) = headers.get(name).and_then(|v| v.to_str().ok()) {
            return Some(format!("{name}={v}").into());
        }
    }
    match peer_text.to_str() {
        Ok(text) if ip == peer => Some(text.into()),
        _ => Some(ip.to_string().into()),
    }
}

/// 429 for a blocked client, produced without touching any upstream.
fn flood_refused(mut ex: Box<Exchange>, left_ms: u64) -> Response<ProxyBody> {
    ex.status = 429;
    ex.error = Some("flood_blocked");
    let request_id = ex.request_id.clone();
    let mut resp = Response::new(ProxyBody::full("429 Too Many Requests\n").with_exchange(ex));
    *resp.status_mut() = StatusCode::TOO_MANY_REQUESTS;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    h.insert(
        header::RETRY_AFTER,
        HeaderValue::from(left_ms.div_ceil(1000).max(1)),
    );
    h.insert(headers::X_REQUEST_ID.clone(), request_id);
    resp
}

/// `Retry-After` of a request shed by a `Shed` command on a route whose upstream has no
/// admission control (and so no `limit.retry_after`): the same default.
const ORDERED_SHED_RETRY_AFTER: Duration = Duration::from_secs(1);

/// 503 for a request shed by admission control or a `Shed` command (`error` says which, in the
/// access log), produced without touching any upstream.
fn shed(mut ex: Box<Exchange>, error: &'static str, retry_after: Duration) -> Response<ProxyBody> {
    ex.status = 503;
    ex.error = Some(error);
    let request_id = ex.request_id.clone();
    let mut resp =
        Response::new(ProxyBody::full("503 Service Unavailable: overloaded\n").with_exchange(ex));
    *resp.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    h.insert(
        header::RETRY_AFTER,
        HeaderValue::from(retry_after.as_millis().div_ceil(1000).max(1) as u64),
    );
    h.insert(headers::X_REQUEST_ID.clone(), request_id);
    resp
}

/// Serves the route's sorry page in place of a failure whose status was `replaced`.
fn sorry(
    mut ex: Box<Exchange>,
    page: &ballast_config::model::SorryPage,
    route: &RouteRt,
    replaced: u16,
) -> Response<ProxyBody> {
    route.policy.sorry_served.fetch_add(1, Relaxed);
    tracing::debug!(route = %route.cfg.name, replaced, "serving the sorry page");
    let mut resp = resilience::sorry::response(page);
    ex.status = resp.status().as_u16();
    ex.error.get_or_insert("sorry_page");
    resp.headers_mut()
        .insert(headers::X_REQUEST_ID.clone(), ex.request_id.clone());
    let (parts, body) = resp.into_parts();
    Response::from_parts(parts, body.with_exchange(ex))
}

/// The exchange of a request that has no response yet. If the client goes away first (hyper
/// drops the request's future), it is completed as 499 `client_closed`, so the request still
/// appears in the access log and the counters.
struct Unanswered(Option<Box<Exchange>>);

impl Unanswered {
    fn get(&mut self) -> &mut Exchange {
        self.0
            .as_mut()
            .expect("exchange taken only once, at the end")
    }

    fn take(&mut self) -> Box<Exchange> {
        self.0.take().expect("exchange taken only once, at the end")
    }
}

impl Drop for Unanswered {
    fn drop(&mut self) {
        if let Some(mut ex) = self.0.take() {
            ex.status = 499;
            ex.error = Some("client_closed");
            ex.finish(0, false);
        }
    }
}

/// One attempt on one server: a pooled connection if one is free (falling back to a fresh one
/// when the pooled connection proves closed before the request left), else a new connection.
async fn attempt(
    state: &Arc<ServerState>,
    head: &Head,
    body: &mut UpstreamBody,
    upgrade: bool,
    connect_timeout: Duration,
    response_timeout: Duration,
) -> Result<(Response<ResponseBody>, Duration), ProxyError> {
    let req = h1::Request {
        method: &head.method,
        target: head.uri.path_and_query().map_or("/", |pq| pq.as_str()),
        headers: &head.headers,
        upgrade,
    };
    let mut pooled = true;
    loop {
        let conn = match pooled.then(|| state.pool.take()).flatten() {
            Some(c) => c,
            None => {
                pooled = false;
                state.pool.connect(state.addr, connect_timeout).await?
            }
        };
        let in_flight = InFlight::begin(&state.load);
        let t0 = Instant::now();
        let sent = tokio::time::timeout(response_timeout, h1::send(conn, &req, body, state)).await;
        match sent {
            Ok(Ok(resp)) => {
                // The caller's `Exchange` ends the load when the response body is done.
                in_flight.hand_over();
                return Ok((resp, t0.elapsed()));
            }
            Err(_) => return Err(ProxyError::ResponseTimeout),
            Ok(Err(e)) => {
                drop(in_flight);
                return Err(match e {
                    // The connection died before the request was written: nothing left, so a
                    // pooled one is replaced by a fresh one.
                    SendError::NotSent if pooled => continue,
                    SendError::NotSent => {
                        ProxyError::Connect(std::io::ErrorKind::ConnectionAborted)
                    }
                    SendError::Closed => ProxyError::ClosedBeforeResponse,
                    SendError::Protocol(_) | SendError::UnexpectedUpgrade => {
                        ProxyError::UpstreamProtocol
                    }
                    SendError::ClientBody => ProxyError::ClientBody,
                });
            }
        }
    }
}

/// One request counted in flight on a server while an attempt waits for its response.
///
/// Dropping it ends the count without a latency sample. That includes the attempt future
/// being dropped mid-wait, which happens when the client goes away (hyper drops the request's
/// service future): without this the server would stay counted as busy forever and the
/// load-aware balancers would keep shunning it.
struct InFlight<'a>(Option<&'a Load>);

impl<'a> InFlight<'a> {
    fn begin(load: &'a Load) -> Self {
        load.begin();
        Self(Some(load))
    }

    /// The response arrived: from here the request's [`Exchange`] ends the count.
    fn hand_over(mut self) {
        self.0 = None;
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if let Some(load) = self.0.take() {
            load.end_without_sample();
        }
    }
}

/// A response produced by the gateway itself.
fn gateway_error(mut ex: Box<Exchange>, e: ProxyError) -> Response<ProxyBody> {
    let status = e.status();
    ex.status = status.as_u16();
    ex.error = Some(e.kind());
    let request_id = ex.request_id.clone();
    let text = format!(
        "{} {}\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or("Error")
    );
    let mut resp = Response::new(ProxyBody::full(text).with_exchange(ex));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    h.insert(headers::X_REQUEST_ID.clone(), request_id);
    // Framing the gateway could not trust: the rest of the connection cannot be either.
    if matches!(
        e,
        ProxyError::BadFraming
            | ProxyError::Refused(Refusal::BadChunkExtension)
            | ProxyError::ClientBody
    ) {
        h.insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    resp
}
