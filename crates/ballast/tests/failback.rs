//! Failback and server health events, through real processes: a crashed backend that passive
//! health ejected with a long back-off takes traffic again as soon as active checks pass `rise`
//! times (`passive.uneject_on_check`), and every transition on the way (down, ejected, up,
//! un-ejected) is an event in `/api/v1/events`; an ejection that simply runs out is announced
//! as `server_unejected` with cause `expired`.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

/// A gateway with one listener, one catch-all route and one upstream `app` with `upstream`
/// (keys) and `servers`.
fn gateway(name: &str, upstream: &str, servers: &[&Backend]) -> (Gateway, SocketAddr) {
    let port = free_port();
    let servers: Vec<String> = servers
        .iter()
        .map(|b| format!("{{ addr = \"{}\" }}", b.addr))
        .collect();
    let config = format!(
        "{}\n[[route]]\nupstream = \"app\"\n[[upstream]]\nname = \"app\"\nbalance = \"round-robin\"\n{upstream}\nservers = [{}]\n",
        preamble(port),
        servers.join(", ")
    );
    (Gateway::start(name, &config), local(port))
}

fn events(gw: &Gateway) -> Vec<Value> {
    let (code, body) = gw.admin_get("/api/v1/events");
    assert_eq!(code, 200, "{body}");
    serde_json::from_str::<Value>(&body)
        .expect("events JSON")
        .as_array()
        .expect("an array of events")
        .clone()
}

/// The first event of `kind` about server `b` (and with `cause`, when given).
fn event_of(all: &[Value], kind: &str, b: &Backend, cause: Option<&str>) -> Option<Value> {
    all.iter()
        .find(|e| {
            e["kind"] == kind
                && e["upstream"] == "app"
                && e["server"] == b.addr.to_string()
                && cause.is_none_or(|c| e["cause"] == c)
        })
        .cloned()
}

const INTERVAL: Duration = Duration::from_millis(500);
const RISE: u32 = 2;

/// Two backends `a` and `b` behind a gateway with fast active checks and a 30 s ejection
/// (`passive_extra` appended to the passive table), under load; `b` is killed, and once passive
/// health ejected it and active checks took it down, started again. Returns right after `b`
/// listens again, with the load still running.
async fn kill_and_revive(name: &str, passive_extra: &str) -> (Gateway, Backend, Backend, LoadRun) {
    let a = Backend::start("a");
    let mut b = Backend::start("b");
    let (gw, addr) = gateway(
        name,
        &format!(
            "health = {{ path = \"/healthz\", interval = \"500ms\", timeout = \"250ms\", rise = {RISE}, fall = 2 }}\n\
             passive = {{ consecutive_failures = 2, ejection = \"30s\", max_ejection = \"60s\", max_ejected = \"50%\"{passive_extra} }}"
        ),
        &[&a, &b],
    );
    let run = LoadRun::start(addr, 8, "/");
    wait_for("traffic on b", Duration::from_secs(15), || {
        run.completed() > 100
    })
    .await;
    assert!(b.app_count() > 0, "b unused while up");

    b.kill();
    // Under load, passive health ejects b (connect failures) and active checks take it down.
    wait_for("b ejected and down", Duration::from_secs(15), || {
        let all = events(&gw);
        event_of(&all, "server_ejected", &b, None).is_some()
            && event_of(&all, "server_down", &b, Some("active_check")).is_some()
    })
    .await;
    let ejected = event_of(&events(&gw), "server_ejected", &b, None).unwrap();
    assert!(
        ejected["ejection_ms"].as_u64().unwrap() > 25_000,
        "a long back-off: {ejected}"
    );
    tokio::task::block_in_place(|| b.revive());
    (gw, a, b, run)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revived_backend_gets_traffic_after_rise_although_ejected() {
    // `uneject_on_check` is on by default.
    let (gw, _a, b, run) = kill_and_revive("failback", "").await;
    let listening = Instant::now();
    // The fresh process counts its own requests from zero: the first one is failback.
    wait_for("traffic on the revived b", Duration::from_secs(20), || {
        b.app_count() > 0
    })
    .await;
    let took = listening.elapsed();
    let bound = INTERVAL * RISE + INTERVAL;
    // Slack for a noisy machine; the ejection alone would keep b out for 30 s.
    assert!(
        took <= bound + Duration::from_millis(1500),
        "revived b got its first request {took:?} after listening; bound {bound:?} + slack"
    );
    let t = run.finish().await;
    eprintln!("failback after {took:?}; load: {:?}", t.by_backend);

    let all = events(&gw);
    for (kind, cause) in [
        ("server_down", Some("active_check")),
        ("server_ejected", None),
        ("server_up", Some("active_check")),
        ("server_unejected", Some("active_check")),
    ] {
        assert!(
            event_of(&all, kind, &b, cause).is_some(),
            "no {kind} ({cause:?}) event for b: {all:?}"
        );
    }
    assert!(
        event_of(&all, "server_unejected", &b, Some("expired")).is_none(),
        "failback is not an expiry: {all:?}"
    );
    assert_eq!(gw.server_state("app", b.addr), "up");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_uneject_on_check_the_back_off_holds() {
    let (gw, _a, b, run) = kill_and_revive("no-failback", ", uneject_on_check = false").await;
    wait_for("b up by active checks", Duration::from_secs(15), || {
        event_of(&events(&gw), "server_up", &b, Some("active_check")).is_some()
    })
    .await;
    // Well past the failback bound (rise × interval + interval = 1.5 s), under load: still
    // out, because the 30 s back-off is what ends this ejection.
    tokio::time::sleep(INTERVAL * RISE + INTERVAL * 2).await;
    assert_eq!(b.app_count(), 0, "an ejected server got requests");
    assert_eq!(gw.server_state("app", b.addr), "ejected");
    assert!(event_of(&events(&gw), "server_unejected", &b, None).is_none());
    run.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ejection_that_runs_out_is_announced() {
    let a = Backend::start("a");
    let b = Backend::start("b");
    // No active checks: only the back-off can end the ejection.
    let (gw, addr) = gateway(
        "expiry",
        "passive = { consecutive_failures = 2, ejection = \"1s\", max_ejected = \"50%\" }",
        &[&a, &b],
    );
    b.force(503);
    let mut conn = Conn::open(addr).await.unwrap();
    for _ in 0..20 {
        conn.get("/").await.unwrap();
        if gw.server_state("app", b.addr) == "ejected" {
            break;
        }
    }
    assert_eq!(gw.server_state("app", b.addr), "ejected");
    b.force(200);

    wait_for("the expiry event", Duration::from_secs(10), || {
        event_of(&events(&gw), "server_unejected", &b, Some("expired")).is_some()
    })
    .await;
    let all = events(&gw);
    let ejected = event_of(&all, "server_ejected", &b, None).expect("ejection event");
    let expired = event_of(&all, "server_unejected", &b, Some("expired")).unwrap();
    let ejection_ms = ejected["ejection_ms"].as_u64().unwrap();
    assert!((900..=1000).contains(&ejection_ms), "{ejected}");
    let gap = expired["at_unix_ms"].as_u64().unwrap() - ejected["at_unix_ms"].as_u64().unwrap();
    // Announced by the sweeper (at most a second late), never early; plus slack.
    assert!(
        gap + 50 >= ejection_ms && gap <= ejection_ms + 1000 + 1000,
        "announced {gap} ms after an ejection of {ejection_ms} ms"
    );
    assert!(event_of(&all, "server_unejected", &b, Some("active_check")).is_none());
    // And b takes requests again.
    wait_for("b serving again", Duration::from_secs(10), || {
        gw.server_state("app", b.addr) == "up"
    })
    .await;
}
