//! The waiting room through real sockets: a gateway process with a room of capacity 2 in front
//! of a demo backend process, and visitors that are separate cookie jars speaking raw HTTP.

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::*;

fn config(port: u16, backend: SocketAddr) -> String {
    config_with(
        port,
        backend,
        r#"{ capacity = 2, session = "1s", refresh = "1s" }"#,
        "",
    )
}

/// One route `shop` with waiting room `room` (an inline table) and `route_extra` lines.
fn config_with(port: u16, backend: SocketAddr, room: &str, route_extra: &str) -> String {
    format!(
        r#"{preamble}[[route]]
name = "shop"
upstream = "app"
waiting_room = {room}
{route_extra}
[[upstream]]
name = "app"
servers = [{{ addr = "{backend}" }}]
"#,
        preamble = preamble(port)
    )
}

/// A response as a browser sees it.
type Page = Wire;

/// The queue page's place in line.
trait Queued {
    fn position(&self) -> u64;
}

impl Queued for Page {
    /// `position` from the queue page's JSON.
    fn position(&self) -> u64 {
        assert_eq!(self.status, 503, "not a queue page: {}", self.body);
        let v: serde_json::Value = serde_json::from_str(&self.body).expect(&self.body);
        v["position"].as_u64().expect(&self.body)
    }
}

/// One browser: its own cookie jar, one fresh connection per request.
#[derive(Default)]
struct Visitor {
    cookies: BTreeMap<String, String>,
}

impl Visitor {
    fn get(&mut self, addr: SocketAddr, accept: &str) -> Page {
        let page = fetch(addr, &self.cookie_header(), accept);
        for (k, v) in &page.headers {
            if k == "set-cookie" {
                let pair = v.split(';').next().unwrap_or_default();
                if let Some((name, value)) = pair.trim().split_once('=') {
                    self.cookies.insert(name.to_string(), value.to_string());
                }
            }
        }
        page
    }

    /// JSON queue page, or the backend's answer.
    fn visit(&mut self, addr: SocketAddr) -> Page {
        self.get(addr, "application/json")
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

fn fetch(addr: SocketAddr, cookie: &str, accept: &str) -> Page {
    let cookie_line = if cookie.is_empty() {
        String::new()
    } else {
        format!("Cookie: {cookie}\r\n")
    };
    let text = raw_exchange(
        addr,
        format!(
            "GET /shop HTTP/1.1\r\nHost: shop\r\nAccept: {accept}\r\n{cookie_line}Connection: close\r\n\r\n"
        )
        .as_bytes(),
    );
    Wire::parse(&text)
}

/// The ticket cookie with its number changed to `number`, its signature kept.
fn forged_ticket(cookie: &str, number: u64) -> String {
    let (name, value) = cookie.split_once('=').unwrap();
    let parts: Vec<&str> = value.split('.').collect();
    assert_eq!(parts[0], "t", "{value}");
    format!("{name}={}.{}.{number:x}.{}", parts[0], parts[1], parts[3])
}

#[test]
fn the_waiting_room_admits_in_order() {
    let backend = Backend::start("app");
    let port = free_port();
    let gw = Gateway::start("waiting-room", &config(port, backend.addr));
    let addr = local(port);
    let mut served = 0u64;

    // Two visitors fill the room; the backend answers them.
    let mut inside: Vec<Visitor> = (0..2).map(|_| Visitor::default()).collect();
    for v in &mut inside {
        let p = v.visit(addr);
        assert_eq!(p.status, 200, "{}", p.body);
        assert_eq!(p.header("x-backend"), Some("app"));
        let cookie = p.header("set-cookie").expect("a session cookie");
        for attr in [
            "ballast_wr=s.",
            "Path=/",
            "HttpOnly",
            "SameSite=Lax",
            "Max-Age=1",
        ] {
            assert!(cookie.contains(attr), "{cookie} lacks {attr}");
        }
        served += 1;
    }
    let started = Instant::now();

    // The next five queue, numbered in arrival order, and the backend does not see them.
    let mut line: Vec<Visitor> = (0..5).map(|_| Visitor::default()).collect();
    for (i, v) in line.iter_mut().enumerate() {
        let p = v.visit(addr);
        assert_eq!(p.position(), i as u64 + 1);
        assert_eq!(p.header("retry-after"), Some("1"));
        assert_eq!(p.header("refresh"), Some("1"));
        assert_eq!(p.header("cache-control"), Some("no-store"));
        assert!(p.header("x-backend").is_none());
        assert!(v.cookies["ballast_wr"].starts_with("t."), "{:?}", v.cookies);
    }
    // A browser gets the HTML page with the same numbers, and keeps its place.
    let html = line[4].get(addr, "text/html");
    assert_eq!(html.status, 503);
    assert!(
        html.body.contains("<strong id=\"position\">5</strong>"),
        "{}",
        html.body
    );
    assert!(
        html.body.contains("http-equiv=\"refresh\""),
        "{}",
        html.body
    );
    assert!(
        html.header("set-cookie").is_none(),
        "a ticket holder keeps its ticket"
    );

    // A visitor that rewrites the last ticket to number 1 is a new visitor: the back of the line.
    let last_ticket = format!("ballast_wr={}", line[4].cookies["ballast_wr"]);
    let cheat = fetch(addr, &forged_ticket(&last_ticket, 1), "application/json");
    assert_eq!(cheat.position(), 6);
    let forged_session = format!("ballast_wr=s.1.1.{:x}.{}", u64::MAX, "0".repeat(64));
    assert_eq!(
        fetch(addr, &forged_session, "application/json").position(),
        7
    );

    // All of the above before the first sessions (1 s) could end, or the numbers would differ.
    assert!(
        started.elapsed() < Duration::from_millis(800),
        "too slow to test sessions of 1s"
    );

    // As the sessions expire (nobody inside sends anything), the line is let in, polled in
    // reverse order each round so that "whoever asks first" would show. Admission must follow
    // the tickets, and never more than 2 within a session of each other.
    let mut admitted_at: Vec<Option<(usize, Instant)>> = vec![None; line.len()];
    let mut last_position: Vec<u64> = (1..=line.len() as u64).collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut round = 0;
    while admitted_at.iter().any(Option::is_none) {
        assert!(
            Instant::now() < deadline,
            "not all admitted: {admitted_at:?}"
        );
        round += 1;
        for i in (0..line.len()).rev() {
            if admitted_at[i].is_some() {
                continue;
            }
            let p = line[i].visit(addr);
            if p.status == 200 {
                assert_eq!(p.header("x-backend"), Some("app"));
                assert!(
                    p.header("set-cookie")
                        .is_some_and(|c| c.starts_with("ballast_wr=s.")),
                    "admission hands out a session"
                );
                served += 1;
                admitted_at[i] = Some((round, Instant::now()));
            } else {
                let position = p.position();
                assert!(
                    position <= last_position[i],
                    "visitor {i} moved back from {} to {position}",
                    last_position[i]
                );
                last_position[i] = position;
            }
        }
        // The cheat keeps trying with a forged early ticket while others wait.
        if admitted_at.iter().any(Option::is_none) {
            let c = fetch(addr, &forged_ticket(&last_ticket, 1), "application/json");
            assert_eq!(c.status, 503, "a forged ticket was let in: {}", c.body);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let rounds: Vec<usize> = admitted_at.iter().map(|a| a.unwrap().0).collect();
    for i in 1..rounds.len() {
        assert!(
            rounds[i - 1] <= rounds[i],
            "ticket {} got in (round {}) before ticket {} (round {}): {rounds:?}",
            i + 1,
            rounds[i],
            i,
            rounds[i - 1]
        );
    }
    // Capacity 2 with sessions of 1 s: 5 visitors need three turns, at least ~2 s.
    let times: Vec<Instant> = admitted_at.iter().map(|a| a.unwrap().1).collect();
    for (i, t) in times.iter().enumerate() {
        let close = times
            .iter()
            .filter(|u| t.saturating_duration_since(**u) < Duration::from_millis(500) && *u <= t)
            .count();
        assert!(
            close <= 2,
            "more than 2 admitted within 0.5 s of visitor {i}: {rounds:?}"
        );
    }
    assert!(
        times[4].duration_since(started) >= Duration::from_millis(1_800),
        "the last visitor got in after {:?}",
        times[4].duration_since(started)
    );

    // The backend saw exactly the requests that got a backend answer: none from the line.
    assert_eq!(backend.app_count(), served);

    // What the room reports.
    let status = gw.status();
    let room = &status["routes"][0]["waiting_room"];
    assert_eq!(room["capacity"], 2, "{room}");
    assert_eq!(room["admitted"], 7, "{room}");
    assert!(room["next_ticket"].as_u64().unwrap() >= 8, "{room}");
    let metrics = gw.metrics();
    assert_eq!(
        metric_value(
            &metrics,
            "ballast_waiting_room_admitted_total{route=\"shop\"}"
        ),
        Some(7.0),
        "{metrics}"
    );
    assert!(
        metric_value(
            &metrics,
            "ballast_waiting_room_queue_pages_total{route=\"shop\"}"
        )
        .is_some_and(|v| v >= 7.0),
        "{metrics}"
    );
    // The queue pages are in the access log as gateway answers.
    assert!(
        wait_for_log(&gw, |l| l["error"] == "waiting_room" && l["status"] == 503),
        "no waiting_room line in the access log"
    );
    // Events: the room started queueing, and the line cleared once the cheat's abandoned
    // tickets were dropped (3 × refresh).
    wait_until("the line to clear", Duration::from_secs(10), || {
        gw.status(); // reading the status brings the room up to date
        let (_, body) = gw.admin_get("/api/v1/events");
        body.contains("\"waiting_room_cleared\"")
    });
    let (_, events) = gw.admin_get("/api/v1/events");
    let events: serde_json::Value = serde_json::from_str(&events).unwrap();
    let kinds: Vec<&str> = events
        .as_array()
        .or_else(|| events["events"].as_array())
        .expect("a list of events")
        .iter()
        .filter_map(|e| e["kind"].as_str())
        .filter(|k| k.starts_with("waiting_room"))
        .collect();
    assert_eq!(kinds, ["waiting_room_queueing", "waiting_room_cleared"]);
}

#[test]
fn a_reload_keeps_the_line_unless_the_room_changes() {
    let backend = Backend::start("app");
    let port = free_port();
    let room = r#"{ capacity = 1, session = "30s", refresh = "5s" }"#;
    let gw = Gateway::start(
        "waiting-room-reload",
        &config_with(port, backend.addr, room, ""),
    );
    let addr = local(port);
    let reload = |text: &str| {
        gw.write_config(text);
        let (code, body) = gw.admin_post("/api/v1/reload");
        assert_eq!(code, 200, "{body}");
    };

    let (mut inside, mut first, mut second) =
        (Visitor::default(), Visitor::default(), Visitor::default());
    assert_eq!(inside.visit(addr).status, 200);
    assert_eq!(first.visit(addr).position(), 1);
    assert_eq!(second.visit(addr).position(), 2);

    // Another setting of the route changes; the room's do not: the line is the same.
    reload(&config_with(
        port,
        backend.addr,
        room,
        r#"timeout = { connect = "2s" }"#,
    ));
    let p = second.visit(addr);
    assert_eq!(p.position(), 2);
    assert!(
        p.header("set-cookie").is_none(),
        "the ticket is still valid"
    );
    assert_eq!(inside.visit(addr).status, 200);
    let status = gw.status();
    assert_eq!(
        status["routes"][0]["waiting_room"]["waiting"], 2,
        "{status}"
    );

    // The room's capacity changes: a fresh room. The visitor inside keeps its access (its
    // session is honoured and counted); the old tickets are not valid in the new room.
    reload(&config_with(
        port,
        backend.addr,
        r#"{ capacity = 2, session = "30s", refresh = "5s" }"#,
        "",
    ));
    assert_eq!(inside.visit(addr).status, 200);
    let room = &gw.status()["routes"][0]["waiting_room"];
    assert_eq!(
        (room["capacity"].as_u64(), room["active"].as_u64()),
        (Some(2), Some(1)),
        "{room}"
    );
    assert_eq!(room["waiting"], 0, "{room}");
    // One slot is free and nobody waits in the new room: the next visitor, ticket or not, is in.
    let p = second.visit(addr);
    assert_eq!(p.status, 200, "{}", p.body);
    assert_eq!(first.visit(addr).position(), 1);
}

/// Whether some access-log line satisfies `f` within 5 s (the log is flushed every 50 ms).
fn wait_for_log(gw: &Gateway, f: impl Fn(&serde_json::Value) -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(5) {
        if gw.access_lines().iter().any(&f) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}
