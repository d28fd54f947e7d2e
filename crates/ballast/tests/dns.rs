//! Upstream servers by DNS name, against a real nameserver on loopback (a small UDP responder
//! built on hickory-proto, answering A queries from a table the test changes, TTL 1 s) and
//! real backend processes on 127.0.0.2–4, all on the same port: the pool follows the answer
//! under load without a failed request, a failed resolution keeps the last good set, and a
//! name that does not resolve refuses the start and the reload.

mod common;

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{RData, Record, RecordType};
use serde_json::Value;

const NAME: &str = "app.ballast.test";
/// Longest time between two resolutions (the TTL, 1 s, is shorter).
const DNS_INTERVAL: Duration = Duration::from_secs(2);
/// The longest one lookup takes in the gateway (`discovery::resolve::LOOKUP_TIMEOUT`).
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);
/// Fast active checks so a new address is up within a second or so.
const HEALTH: &str =
    r#"health = { path = "/healthz", interval = "200ms", timeout = "100ms", rise = 2, fall = 2 }"#;

/// How the nameserver answers.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Answer,
    ServFail,
    /// Reads queries and drops them, as a dead nameserver would.
    Silent,
}

/// A nameserver on 127.0.0.1 (UDP) in a thread of its own, so it answers whatever the test's
/// runtime is doing. Stops on drop.
struct Dns {
    addr: SocketAddr,
    table: Arc<Mutex<HashMap<String, Vec<Ipv4Addr>>>>,
    mode: Arc<Mutex<Mode>>,
    /// Queries for [`NAME`] received so far.
    queries: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl Dns {
    fn start() -> Self {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let dns = Dns {
            addr: socket.local_addr().unwrap(),
            table: Default::default(),
            mode: Arc::new(Mutex::new(Mode::Answer)),
            queries: Default::default(),
            stop: Default::default(),
        };
        let (table, mode, queries, stop) = (
            dns.table.clone(),
            dns.mode.clone(),
            dns.queries.clone(),
            dns.stop.clone(),
        );
        std::thread::spawn(move || {
            let mut buf = [0u8; 1500];
            while !stop.load(Ordering::Relaxed) {
                let Ok((n, peer)) = socket.recv_from(&mut buf) else {
                    continue;
                };
                let Ok(query) = Message::from_vec(&buf[..n]) else {
                    continue;
                };
                let asks_for_name = query.queries().iter().any(|q| {
                    q.name()
                        .to_ascii()
                        .trim_end_matches('.')
                        .eq_ignore_ascii_case(NAME)
                });
                if asks_for_name {
                    queries.fetch_add(1, Ordering::Relaxed);
                }
                let mode = *mode.lock().unwrap();
                if mode == Mode::Silent {
                    continue;
                }
                let mut reply = Message::new();
                reply
                    .set_id(query.id())
                    .set_message_type(MessageType::Response)
                    .set_op_code(query.op_code())
                    .set_recursion_desired(query.recursion_desired())
                    .set_recursion_available(true)
                    .set_authoritative(true);
                let mut code = ResponseCode::NoError;
                for q in query.queries() {
                    reply.add_query(q.clone());
                    let name = q
                        .name()
                        .to_ascii()
                        .trim_end_matches('.')
                        .to_ascii_lowercase();
                    match table.lock().unwrap().get(&name) {
                        None => code = ResponseCode::NXDomain,
                        Some(ips) if q.query_type() == RecordType::A => {
                            for ip in ips {
                                reply.add_answer(Record::from_rdata(
                                    q.name().clone(),
                                    1,
                                    RData::A(A(*ip)),
                                ));
                            }
                        }
                        Some(_) => {}
                    }
                }
                if mode == Mode::ServFail {
                    code = ResponseCode::ServFail;
                    reply.take_answers();
                }
                reply.set_response_code(code);
                if let Ok(bytes) = reply.to_vec() {
                    let _ = socket.send_to(&bytes, peer);
                }
            }
        });
        dns
    }

    /// From now on [`NAME`] resolves to 127.0.0.`last` for each of `lasts`.
    fn set(&self, lasts: &[u8]) {
        let ips = lasts.iter().map(|l| Ipv4Addr::new(127, 0, 0, *l)).collect();
        self.table.lock().unwrap().insert(NAME.to_string(), ips);
    }

    fn mode(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }
}

impl Drop for Dns {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Backends `a`, `b`, `c` on 127.0.0.2, .3 and .4, one port.
fn backends() -> (Backend, Backend, Backend, u16) {
    let port = free_port();
    let at = |last: u8| SocketAddr::from(([127, 0, 0, last], port));
    (
        Backend::start_at("a", at(2)),
        Backend::start_at("b", at(3)),
        Backend::start_at("c", at(4)),
        port,
    )
}

fn config(listen: u16, dns: &Dns, upstream: &str, servers: &str) -> String {
    format!(
        "[runtime]\nresolver = \"{}\"\ndns_interval = \"{}s\"\n{}\n[[route]]\nupstream = \"app\"\n[[upstream]]\nname = \"app\"\n{upstream}\nservers = [{servers}]\n",
        dns.addr,
        DNS_INTERVAL.as_secs(),
        preamble(listen),
    )
}

/// The servers of upstream `app` in `/api/v1/status`: (addr, state, name).
fn pool(gw: &Gateway) -> Vec<(String, String, Value)> {
    let mut servers: Vec<_> = gw
        .servers_of("app")
        .iter()
        .map(|s| {
            (
                s["addr"].as_str().unwrap().to_string(),
                s["state"].as_str().unwrap().to_string(),
                s["name"].clone(),
            )
        })
        .collect();
    servers.sort_by(|x, y| x.0.cmp(&y.0));
    servers
}

/// Addresses of `app` whose state is `up`.
fn up_addrs(gw: &Gateway) -> Vec<String> {
    pool(gw)
        .into_iter()
        .filter(|(_, state, _)| state == "up")
        .map(|(a, _, _)| a)
        .collect()
}

/// Makes `b`'s health endpoint answer 503 (`"fail"`) or 200 (`"ok"`).
fn health(b: &Backend, how: &str) {
    let (code, body) = raw_http(
        b.addr,
        &format!("POST /_ctl/health/{how} HTTP/1.1\r\nHost: b\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"),
    );
    assert_eq!(code, 200, "{body}");
}

fn events(gw: &Gateway, kind: &str) -> Vec<Value> {
    let (code, body) = gw.admin_get("/api/v1/events");
    assert_eq!(code, 200, "{body}");
    let all: Vec<Value> = serde_json::from_str(&body).unwrap();
    all.into_iter().filter(|e| e["kind"] == kind).collect()
}

#[test]
fn the_pool_follows_the_name_under_load_without_errors() {
    let (a, b, c, port) = backends();
    let dns = Dns::start();
    dns.set(&[2, 3]);
    let listen = free_port();
    let gw = Gateway::start(
        "dns-follow",
        &config(
            listen,
            &dns,
            HEALTH,
            &format!(r#"{{ addr = "{NAME}:{port}" }}"#),
        ),
    );
    let label = format!("{NAME}:{port}");
    let initial = pool(&gw);
    assert_eq!(
        initial,
        vec![
            (a.addr.to_string(), "up".into(), Value::from(label.clone())),
            (b.addr.to_string(), "up".into(), Value::from(label.clone())),
        ],
        "both addresses of the name, each shown with the name it came from"
    );

    rt().block_on(async {
        let run = LoadRun::start(local(listen), 8, "/");
        wait_for("200 requests", Duration::from_secs(30), || {
            run.completed() >= 200
        })
        .await;

        // Two addresses → three. c joins through its health checks: while they fail it is
        // listed but down and gets nothing; once they pass (rise 2 × 200 ms) it serves.
        health(&c, "fail");
        dns.set(&[2, 3, 4]);
        let changed = Instant::now();
        wait_for(
            "c in the pool within dns_interval",
            DNS_INTERVAL + Duration::from_secs(3),
            || {
                pool(&gw)
                    .iter()
                    .any(|(addr, _, _)| *addr == c.addr.to_string())
            },
        )
        .await;
        eprintln!("c listed {:?} after the change", changed.elapsed());
        let mark = run.completed();
        wait_for("200 more requests", Duration::from_secs(30), || {
            run.completed() >= mark + 200
        })
        .await;
        assert_eq!(
            pool(&gw)
                .iter()
                .find(|(addr, _, _)| *addr == c.addr.to_string())
                .unwrap()
                .1,
            "down"
        );
        assert_eq!(c.app_count(), 0, "c served before its health checks passed");
        health(&c, "ok");
        wait_for(
            "c up (rise 2 × 200 ms) and serving",
            Duration::from_secs(10),
            || up_addrs(&gw).len() == 3 && c.app_count() > 5,
        )
        .await;

        // Three → one: a and b are drained, c takes everything.
        dns.set(&[4]);
        let changed = Instant::now();
        wait_for(
            "only c in the pool within dns_interval",
            DNS_INTERVAL + Duration::from_secs(3),
            || pool(&gw).len() == 1,
        )
        .await;
        eprintln!("a and b gone {:?} after the change", changed.elapsed());
        assert_eq!(
            pool(&gw),
            vec![(c.addr.to_string(), "up".into(), Value::from(label.clone()))]
        );
        // In-flight requests on a and b finish; after that they get nothing new.
        let (a_then, b_then) = (a.app_count(), b.app_count());
        let mark = run.completed();
        wait_for("300 more requests", Duration::from_secs(30), || {
            run.completed() >= mark + 300
        })
        .await;
        let (a_now, b_now) = (a.app_count(), b.app_count());
        let t = run.finish().await;
        eprintln!("requests: {}, per backend: {:?}", t.total(), t.by_backend);
        assert_eq!(t.errors, 0, "failed requests: {:?}", t.samples);
        // At most the requests that were in flight at the swap (8 clients) land after it.
        assert!(
            a_now + b_now <= a_then + b_then + 8,
            "drained servers still got requests: a {a_then}→{a_now}, b {b_then}→{b_now}"
        );
        assert!(
            t.of("a") > 0 && t.of("b") > 0 && t.of("c") > 0,
            "{:?}",
            t.by_backend
        );
    });

    let changes = events(&gw, "dns_changed");
    assert_eq!(changes.len(), 2, "{changes:#?}");
    assert_eq!(changes[0]["upstream"], "app");
    assert_eq!(changes[0]["name"], Value::from(label.clone()));
    assert_eq!(changes[0]["added"], serde_json::json!([c.addr.to_string()]));
    assert_eq!(changes[0]["removed"], serde_json::json!([]));
    assert_eq!(changes[1]["added"], serde_json::json!([]));
    assert_eq!(
        changes[1]["removed"],
        serde_json::json!([a.addr.to_string(), b.addr.to_string()])
    );
    assert!(events(&gw, "dns_failed").is_empty());
}

#[test]
fn a_failed_resolution_keeps_the_last_good_set() {
    let (a, b, _c, port) = backends();
    let dns = Dns::start();
    dns.set(&[2, 3]);
    let listen = free_port();
    // No active checks: servers are judged by passive health alone.
    let gw = Gateway::start(
        "dns-fail",
        &config(
            listen,
            &dns,
            "",
            &format!(r#"{{ addr = "{NAME}:{port}" }}"#),
        ),
    );
    let both = vec![a.addr.to_string(), b.addr.to_string()];
    assert_eq!(up_addrs(&gw), both);

    rt().block_on(async {
        let run = LoadRun::start(local(listen), 8, "/");
        wait_for("200 requests", Duration::from_secs(30), || {
            run.completed() >= 200
        })
        .await;

        for (mode, what) in [(Mode::ServFail, "SERVFAIL"), (Mode::Silent, "no answer")] {
            dns.mode(mode);
            let failures = events(&gw, "dns_failed").len();
            let asked = dns.queries.load(Ordering::Relaxed);
            let since = Instant::now();
            // A silent nameserver costs the gateway's whole lookup timeout (5 s) on top.
            let lookup = if mode == Mode::Silent {
                LOOKUP_TIMEOUT
            } else {
                Duration::ZERO
            };
            wait_for(
                &format!("a dns_failed event after {what}"),
                DNS_INTERVAL + lookup + Duration::from_secs(3),
                || events(&gw, "dns_failed").len() > failures,
            )
            .await;
            eprintln!("{what}: failure seen after {:?}", since.elapsed());
            assert!(
                dns.queries.load(Ordering::Relaxed) > asked,
                "the name was asked again"
            );
            let failed = events(&gw, "dns_failed");
            let last = failed.last().unwrap();
            assert_eq!(last["upstream"], "app");
            assert_eq!(last["name"], format!("{NAME}:{port}"));
            assert!(!last["error"].as_str().unwrap().is_empty(), "{last}");
            assert_eq!(up_addrs(&gw), both, "the last good set stays after {what}");
        }
        // Both keep serving while the nameserver is down.
        let (a_then, b_then) = (a.app_count(), b.app_count());
        let mark = run.completed();
        wait_for("200 more requests", Duration::from_secs(30), || {
            run.completed() >= mark + 200
        })
        .await;
        assert!(a.app_count() > a_then && b.app_count() > b_then);

        // The nameserver comes back with another answer: the pool follows again.
        dns.set(&[3]);
        dns.mode(Mode::Answer);
        wait_for(
            "the pool to follow once the nameserver answers",
            DNS_INTERVAL + LOOKUP_TIMEOUT + Duration::from_secs(3),
            || pool(&gw).len() == 1,
        )
        .await;
        let t = run.finish().await;
        eprintln!("requests: {}, per backend: {:?}", t.total(), t.by_backend);
        assert_eq!(t.errors, 0, "failed requests: {:?}", t.samples);
    });
    assert_eq!(up_addrs(&gw), vec![b.addr.to_string()]);
    assert_eq!(events(&gw, "dns_changed").len(), 1);
}

#[test]
fn a_name_that_does_not_resolve_refuses_start_and_reload() {
    let dns = Dns::start();
    let backend = Backend::start("ip");
    let listen = free_port();
    let dir = scratch("dns-refuse");
    let path = dir.join("ballast.toml");
    let text = config(listen, &dns, "", r#"{ addr = "missing.ballast.test:80" }"#)
        .replace("{ADMIN}", &local(free_port()).to_string())
        .replace("{ACCESS_LOG}", "off");
    std::fs::write(&path, text).unwrap();
    let (code, _, stderr) = cli(&["run", "--config", path.to_str().unwrap()]);
    assert_ne!(code, Some(0), "started although the name does not resolve");
    assert!(
        stderr.contains("`missing.ballast.test:80` does not resolve: no such name (NXDOMAIN)"),
        "{stderr}"
    );

    // Running on an IP, a reload that adds a name that does not resolve is refused whole.
    let servers_ip = format!(r#"{{ addr = "{}" }}"#, backend.addr);
    let gw = Gateway::start("dns-reload", &config(listen, &dns, "", &servers_ip));
    let before = pool(&gw);
    assert_eq!(
        before,
        vec![(backend.addr.to_string(), "up".into(), Value::Null)]
    );
    gw.write_config(&config(
        listen,
        &dns,
        "",
        &format!(r#"{servers_ip}, {{ addr = "missing.ballast.test:80" }}"#),
    ));
    let (code, body) = gw.admin_post("/api/v1/reload");
    assert_ne!(code, 200, "{body}");
    assert!(body.contains("missing.ballast.test:80"), "{body}");
    assert_eq!(pool(&gw), before);
    let (status, reply) = raw_http(
        local(listen),
        "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status, 200, "{reply}");
}

#[test]
fn a_reload_keeps_resolved_servers_and_their_state_and_names_are_still_followed() {
    let (a, b, _c, port) = backends();
    let dns = Dns::start();
    dns.set(&[2, 3]);
    let listen = free_port();
    let servers = format!(r#"{{ addr = "{NAME}:{port}" }}"#);
    let gw = Gateway::start("dns-reload-keep", &config(listen, &dns, "", &servers));
    let (code, body) = gw.admin_post(&format!("/api/v1/servers/app/{}/drain", a.addr));
    assert_eq!(code, 200, "{body}");

    gw.write_config(&config(
        listen,
        &dns,
        "balance = \"least-connections\"",
        &servers,
    ));
    let (code, body) = gw.admin_post("/api/v1/reload");
    assert_eq!(code, 200, "{body}");
    let label = Value::from(format!("{NAME}:{port}"));
    assert_eq!(
        pool(&gw),
        vec![
            (a.addr.to_string(), "draining".into(), label.clone()),
            (b.addr.to_string(), "up".into(), label.clone()),
        ],
        "the reload kept both addresses and a's drain"
    );

    // The reload restarted re-resolution: the next change is still followed.
    dns.set(&[2, 3, 4]);
    wait_until(
        "c in the pool within dns_interval after the reload",
        DNS_INTERVAL + Duration::from_secs(3),
        || pool(&gw).len() == 3,
    );
    rt().block_on(async {
        let t = tally_requests(local(listen), 60, "/", &[]).await;
        assert_eq!(t.errors, 0, "{:?}", t.samples);
        assert_eq!(t.of("a"), 0, "a is drained: {:?}", t.by_backend);
        assert!(t.of("b") > 0 && t.of("c") > 0, "{:?}", t.by_backend);
    });
    assert_eq!(events(&gw, "dns_changed").len(), 1);
}
