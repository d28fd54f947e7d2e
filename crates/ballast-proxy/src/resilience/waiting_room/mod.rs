//! The waiting room ("parking"): a route lets at most `capacity` visitors in at once; above it,
//! new visitors get a queue page with their place in line and the expected wait, refreshed by
//! the browser, and are let in strictly in the order they arrived as sessions end. A flash crowd
//! then queues at the gateway instead of overloading the application: the users already inside
//! keep working, and the ones waiting know where they stand.
//!
//! Who is who travels in one signed cookie per room ([`cookie`]): a ticket (a place in line) or
//! a session (admitted until an expiry, renewed while the visitor is active). The line itself —
//! which tickets wait, which sessions are active — lives in memory ([`room::Room`]), behind one
//! short lock per request on routes that have a room. Without a `secret_file` the signing key
//! is random per process, so cookies do not survive a restart and are not shared between
//! instances; with one, admitted visitors keep their access across restarts and reloads.
//!
//! The backend never sees a queued visitor's request: the queue page is made by the gateway,
//! logged and counted like the sorry page (status 503, error `waiting_room`).

pub mod cookie;
pub(crate) mod metrics;
pub mod page;
pub mod room;

use std::sync::{Mutex, OnceLock};

use ballast_config::WaitingRoomConfig;
use ballast_core::snapshot::RoomStatus;
use ballast_core::Event;
use http::header::{self, HeaderValue};
use http::{HeaderMap, Response, StatusCode};
use ring::hmac;

use crate::events::EventLog;
use crate::http::body::ProxyBody;
use crate::http::exchange::Exchange;
use crate::http::headers;
use room::{Change, Outcome, Pass, Room, Snapshot};

/// The waiting room of one route.
pub struct WaitingRoom {
    /// The settings this state was made for: a reload keeps the state only if they are equal.
    pub cfg: WaitingRoomConfig,
    key: hmac::Key,
    room: Mutex<Room>,
    /// Session cookies already verified, by their exact text: a returning visitor's cookie is
    /// checked by one hash lookup instead of an HMAC each request (a forged cookie never
    /// matches: the text includes the tag). Cleared whole when it reaches [`VERIFIED_MAX`].
    verified: Mutex<Verified>,
}

/// Verified session cookie text → its pass and the route it was verified for.
type Verified = std::collections::HashMap<Box<str>, (Pass, Box<str>)>;

/// Verified session cookies remembered at most.
const VERIFIED_MAX: usize = 65_536;

/// What the room decided about a request.
pub enum Admission {
    /// Forward it; add this `Set-Cookie` to whatever response it gets.
    Pass(Option<HeaderValue>),
    /// Answer this (the queue page, or a plain 503 when the line is full) with this error tag
    /// for the access log.
    Answer(Response<ProxyBody>, &'static str),
}

impl WaitingRoom {
    pub fn new(cfg: WaitingRoomConfig) -> Self {
        let key = match &cfg.secret {
            Some(s) => hmac::Key::new(hmac::HMAC_SHA256, &s.0),
            None => hmac::Key::new(hmac::HMAC_SHA256, process_key()),
        };
        // Tickets are only valid in the room instance that issued them.
        let room = Mutex::new(Room::new(&cfg, fastrand::u64(1..)));
        Self {
            cfg,
            key,
            room,
            verified: Mutex::new(Verified::new()),
        }
    }

    /// The pass in a cookie value: remembered if this session cookie was verified before.
    fn decode(&self, route: &str, value: &str) -> Option<Pass> {
        let mut seen = self.verified.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((p, r)) = seen.get(value) {
            // The route is part of what was signed.
            return (**r == *route).then_some(*p);
        }
        let pass = cookie::decode(&self.key, route, value)?;
        if matches!(pass, Pass::Session { .. }) {
            if seen.len() >= VERIFIED_MAX {
                seen.clear();
            }
            seen.insert(value.into(), (pass, route.into()));
        }
        Some(pass)
    }

    /// Lets the request in, or answers it. `secure`: the client connection is TLS (the cookie
    /// gets `Secure`).
    pub fn admit(
        &self,
        route: &str,
        req: &HeaderMap,
        secure: bool,
        events: &EventLog,
    ) -> Admission {
        let now = unix_ms();
        let pass = headers::cookie(req, &self.cfg.cookie).and_then(|v| self.decode(route, v));
        let (outcome, changes) = {
            let mut r = self.room.lock().unwrap_or_else(|e| e.into_inner());
            let o = r.visit(pass, now);
            (o, r.take_changes())
        };
        self.report(route, changes, events);
        match outcome {
            Outcome::Enter(p) => {
                Admission::Pass(p.and_then(|p| self.set_cookie(route, p, now, secure)))
            }
            Outcome::Wait {
                position,
                wait_ms,
                issue,
            } => {
                let accept = req.get(header::ACCEPT).and_then(|v| v.to_str().ok());
                let mut resp = self.queue_page(position, wait_ms, page::wants_json(accept));
                if let Some(c) = issue.and_then(|p| self.set_cookie(route, p, now, secure)) {
                    resp.headers_mut().append(header::SET_COOKIE, c);
                }
                Admission::Answer(resp, "waiting_room")
            }
            Outcome::Full => Admission::Answer(self.line_full(), "waiting_room_full"),
        }
    }

    /// The room's numbers, brought up to date (sessions expired, tickets called).
    pub fn snapshot(&self, route: &str, events: &EventLog) -> Snapshot {
        let (s, changes) = {
            let mut r = self.room.lock().unwrap_or_else(|e| e.into_inner());
            let s = r.snapshot(unix_ms());
            (s, r.take_changes())
        };
        self.report(route, changes, events);
        s
    }

    fn report(&self, route: &str, changes: Vec<Change>, events: &EventLog) {
        for c in changes {
            let route = route.to_string();
            let event = match c {
                Change::Queueing { active } => {
                    tracing::warn!(%route, active, capacity = self.cfg.capacity, "waiting room: queueing");
                    Event::WaitingRoomQueueing {
                        route,
                        capacity: self.cfg.capacity,
                        active,
                    }
                }
                Change::LineFull => {
                    tracing::warn!(%route, max_queue = self.cfg.max_queue, "waiting room: line full");
                    Event::WaitingRoomFull {
                        route,
                        max_queue: self.cfg.max_queue,
                    }
                }
                Change::Cleared {
                    admitted,
                    queued_ms,
                } => {
                    tracing::info!(%route, admitted, queued_ms, "waiting room: line cleared");
                    Event::WaitingRoomCleared {
                        route,
                        admitted,
                        queued_ms,
                    }
                }
            };
            events.emit(event);
        }
    }

    fn set_cookie(&self, route: &str, pass: Pass, now: u64, secure: bool) -> Option<HeaderValue> {
        let mut c = format!(
            "{}={}; Path=/; HttpOnly; SameSite=Lax",
            self.cfg.cookie,
            cookie::encode(&self.key, route, pass)
        );
        if let Pass::Session { expires_ms, .. } = pass {
            c.push_str(&format!(
                "; Max-Age={}",
                expires_ms.saturating_sub(now).div_ceil(1000)
            ));
        }
        if secure {
            c.push_str("; Secure");
        }
        HeaderValue::from_str(&c).ok()
    }

    fn refresh_s(&self) -> u64 {
        self.cfg.refresh.as_millis().div_ceil(1000).max(1) as u64
    }

    fn queue_page(&self, position: u64, wait_ms: u64, json: bool) -> Response<ProxyBody> {
        let refresh = self.refresh_s();
        let (body, kind) = if json {
            (page::json(position, wait_ms, refresh), "application/json")
        } else {
            let template = self.cfg.page.as_deref().unwrap_or(page::BUILTIN);
            (
                page::html(template, position, wait_ms, refresh),
                "text/html; charset=utf-8",
            )
        };
        let mut resp = self.unavailable(body);
        let h = resp.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
        h.insert(header::REFRESH, HeaderValue::from(refresh));
        resp
    }

    fn line_full(&self) -> Response<ProxyBody> {
        let mut resp = self.unavailable("503 Service Unavailable\n".to_string());
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        resp
    }

    /// 503, not cached, come back after `refresh`.
    fn unavailable(&self, body: String) -> Response<ProxyBody> {
        let mut resp = Response::new(ProxyBody::full(body));
        *resp.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
        let h = resp.headers_mut();
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        h.insert(header::RETRY_AFTER, HeaderValue::from(self.refresh_s()));
        resp
    }
}

impl WaitingRoom {
    pub fn status(&self, route: &str, events: &EventLog) -> RoomStatus {
        let s = self.snapshot(route, events);
        RoomStatus {
            capacity: self.cfg.capacity,
            session_ms: self.cfg.session.as_millis() as u64,
            refresh_ms: self.cfg.refresh.as_millis() as u64,
            max_queue: self.cfg.max_queue,
            cookie: self.cfg.cookie.clone(),
            signing_key: if self.cfg.secret.is_some() {
                "secret_file"
            } else {
                "per-process"
            }
            .to_string(),
            queueing: s.waiting + s.called > 0,
            active: s.active,
            waiting: s.waiting,
            called: s.called,
            next_ticket: s.next_ticket,
            admitted: s.admitted,
            queue_pages: s.queue_pages,
            refused: s.refused,
            abandoned: s.abandoned,
        }
    }
}

/// Completes a response the room made: the exchange records it (status, error tag) for the
/// access log and the counters.
pub fn answer(
    mut ex: Box<Exchange>,
    resp: Response<ProxyBody>,
    why: &'static str,
) -> Response<ProxyBody> {
    ex.status = resp.status().as_u16();
    ex.error = Some(why);
    let (mut parts, body) = resp.into_parts();
    parts
        .headers
        .insert(headers::X_REQUEST_ID.clone(), ex.request_id.clone());
    Response::from_parts(parts, body.with_exchange(ex))
}

/// Adds the room's `Set-Cookie` (a new or renewed session) to the response a let-in request got.
pub fn add_cookie(resp: &mut Response<ProxyBody>, cookie: Option<HeaderValue>) {
    if let Some(c) = cookie {
        resp.headers_mut().append(header::SET_COOKIE, c);
    }
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The signing key of rooms without `secret_file`: random, once per process.
fn process_key() -> &'static [u8] {
    static KEY: OnceLock<[u8; 32]> = OnceLock::new();
    KEY.get_or_init(|| {
        let mut k = [0u8; 32];
        if ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut k).is_err() {
            // No system randomness (never seen on a supported OS): still unpredictable enough
            // to sign tickets that only live as long as this process.
            k.iter_mut().for_each(|b| *b = fastrand::u8(..));
        }
        k
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn room(secret: Option<&[u8]>) -> WaitingRoom {
        WaitingRoom::new(WaitingRoomConfig {
            capacity: 1,
            session: Duration::from_secs(60),
            refresh: Duration::from_secs(2),
            max_queue: 10,
            cookie: "wr".into(),
            secret: secret.map(|s| ballast_config::Secret(s.to_vec())),
            page: Some("at {{position}}, wait {{wait}}".into()),
        })
    }

    fn cookie_of(v: &HeaderValue) -> String {
        let text = v.to_str().unwrap();
        text.split(';').next().unwrap().to_string()
    }

    fn request(cookie: Option<&str>, accept: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(c) = cookie {
            h.insert(header::COOKIE, HeaderValue::from_str(c).unwrap());
        }
        if let Some(a) = accept {
            h.insert(header::ACCEPT, HeaderValue::from_str(a).unwrap());
        }
        h
    }

    #[test]
    fn lets_in_then_queues_with_a_signed_ticket_then_refuses() {
        let r = room(Some(b"a key of at least sixteen bytes"));
        let events = EventLog::default();
        let Admission::Pass(Some(session)) = r.admit("shop", &request(None, None), true, &events)
        else {
            panic!("the first visitor gets in with a session cookie");
        };
        let text = session.to_str().unwrap();
        assert!(text.starts_with("wr=s."), "{text}");
        for attr in ["Path=/", "HttpOnly", "SameSite=Lax", "Secure", "Max-Age=60"] {
            assert!(text.contains(attr), "{text} lacks {attr}");
        }
        // The session holder keeps its access without a new cookie.
        assert!(matches!(
            r.admit(
                "shop",
                &request(Some(&cookie_of(&session)), None),
                true,
                &events
            ),
            Admission::Pass(None)
        ));

        let Admission::Answer(page, "waiting_room") = r.admit(
            "shop",
            &request(None, Some("application/json")),
            false,
            &events,
        ) else {
            panic!("the second visitor waits");
        };
        assert_eq!(page.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(page.headers()[header::RETRY_AFTER], "2");
        assert_eq!(page.headers()[header::REFRESH], "2");
        assert_eq!(page.headers()[header::CONTENT_TYPE], "application/json");
        let ticket = cookie_of(&page.headers()[header::SET_COOKIE]);
        assert!(ticket.starts_with("wr=t."), "{ticket}");

        // The ticket holder keeps its place: no new cookie, HTML from the template.
        let Admission::Answer(again, _) =
            r.admit("shop", &request(Some(&ticket), None), false, &events)
        else {
            panic!("still waiting");
        };
        assert!(again.headers().get(header::SET_COOKIE).is_none());

        // One waiting is the limit: a third visitor is refused outright.
        let r = WaitingRoom::new(WaitingRoomConfig {
            max_queue: 1,
            ..r.cfg.clone()
        });
        let _ = r.admit("shop", &request(None, None), false, &events);
        let _ = r.admit("shop", &request(None, None), false, &events);
        assert!(matches!(
            r.admit("shop", &request(None, None), false, &events),
            Admission::Answer(_, "waiting_room_full")
        ));
        let kinds: Vec<String> = events
            .since(0)
            .iter()
            .map(|e| serde_json::to_value(&e.event).unwrap()["kind"].to_string())
            .collect();
        assert_eq!(
            kinds,
            [
                "\"waiting_room_queueing\"",
                "\"waiting_room_queueing\"",
                "\"waiting_room_full\""
            ]
        );
    }

    #[test]
    fn a_forged_or_foreign_cookie_is_a_new_visitor() {
        let a = room(Some(b"a key of at least sixteen bytes"));
        let b = room(None);
        let events = EventLog::default();
        let Admission::Pass(Some(session)) = a.admit("shop", &request(None, None), false, &events)
        else {
            panic!("admitted");
        };
        let good = cookie_of(&session);
        assert!(matches!(
            b.admit("shop", &request(None, None), false, &events),
            Admission::Pass(Some(_))
        ));
        // Presented once, the cookie is remembered as verified: what follows must still fail.
        assert!(matches!(
            a.admit("shop", &request(Some(&good), None), false, &events),
            Admission::Pass(None)
        ));
        let tag_changed = {
            let last = good.chars().last().unwrap();
            let swap = if last == '0' { '1' } else { '0' };
            format!("{}{swap}", &good[..good.len() - 1])
        };
        // Valid for room a on route shop only: elsewhere it is as if there were no cookie (the
        // room is full, so such a visitor gets a ticket).
        for (r, route, c) in [
            (&a, "other", good.clone()),
            (&b, "shop", good.clone()),
            (&a, "shop", good.replacen(".1.", ".2.", 1)),
            (&a, "shop", tag_changed),
            (&a, "shop", "wr=garbage".to_string()),
        ] {
            match r.admit(route, &request(Some(&c), None), false, &events) {
                Admission::Answer(resp, _) => assert_eq!(resp.status(), 503, "{c}"),
                Admission::Pass(_) => panic!("{c} on {route} was let in"),
            }
        }
    }

    #[test]
    fn a_route_keeps_its_room_while_the_settings_are_unchanged() {
        use std::sync::Arc;
        let reg = crate::stats::StatsRegistry::default();
        let cfg = room(None).cfg;
        let a = reg.waiting_room("shop", Some(&cfg)).unwrap();
        assert!(Arc::ptr_eq(
            &a,
            &reg.waiting_room("shop", Some(&cfg)).unwrap()
        ));
        let changed = WaitingRoomConfig {
            capacity: 5,
            ..cfg.clone()
        };
        let b = reg.waiting_room("shop", Some(&changed)).unwrap();
        assert!(!Arc::ptr_eq(&a, &b));
        // The room running with the old settings is still found by them (a reload that
        // failed after building its routes leaves it serving).
        assert!(Arc::ptr_eq(&a, &reg.room("shop", &cfg).unwrap()));
        assert!(Arc::ptr_eq(&b, &reg.room("shop", &changed).unwrap()));
        assert!(reg.waiting_room("shop", None).is_none());
        let other = reg.waiting_room("other", Some(&cfg)).unwrap();
        assert!(!Arc::ptr_eq(&other, &a));
    }
}
