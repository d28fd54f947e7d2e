//! Every balancing algorithm, observed through real sockets: requests go through a real
//! `ballast run` process to real backend processes, and the `x-backend` header of each answer
//! says which server took it.
//!
//! Distribution checks use tolerances that hold on a loaded machine but would fail for the
//! wrong algorithm (for example round-robin where a weighted or load-aware choice is expected).
//! Nothing here asserts on speed.

mod common;

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::time::Duration;

use common::*;

/// A gateway with one listener, one catch-all route and one upstream `app` whose table gets
/// `extra` (balance, hash, slow_start, ...) and `servers` as (address, weight).
fn config(port: u16, extra: &str, servers: &[(SocketAddr, u32)]) -> String {
    let extra = Extra {
        upstream: extra,
        ..Extra::default()
    };
    one_upstream_config(port, extra, servers)
}

/// Starts a gateway for `config(port, extra, servers)`; returns it and its listener address.
fn gateway(name: &str, extra: &str, servers: &[(SocketAddr, u32)]) -> (Gateway, SocketAddr) {
    let port = free_port();
    let gw = Gateway::start(name, &config(port, extra, servers));
    (gw, SocketAddr::from(([127, 0, 0, 1], port)))
}

/// Demo backends with the given names.
fn backends(names: &[&str]) -> Vec<Backend> {
    names.iter().map(|n| Backend::start(n)).collect()
}

/// (address, 1) for each backend.
fn unweighted(bs: &[Backend]) -> Vec<(SocketAddr, u32)> {
    bs.iter().map(|b| (b.addr, 1)).collect()
}

/// Which server answered `path` with `headers`, on connection `c`; panics on anything but 200.
async fn who(c: &mut Conn, path: &str, headers: &[(&str, &str)]) -> String {
    let r = c
        .request("GET", path, headers, "")
        .await
        .unwrap_or_else(|e| panic!("GET {path} {headers:?}: {e}"));
    assert_eq!(r.status, 200, "GET {path} {headers:?}: {}", r.body);
    r.backend().expect("answer without x-backend").to_string()
}

/// `n` sequential requests on one keep-alive connection: the servers in answer order.
async fn sequence(addr: SocketAddr, n: usize, path: &str) -> Vec<String> {
    let mut c = Conn::open(addr).await.expect("connect to gateway");
    let mut seq = Vec::with_capacity(n);
    for _ in 0..n {
        seq.push(who(&mut c, path, &[]).await);
    }
    seq
}

/// `clients` keep-alive connections sending `per_client` requests each, all at once:
/// the servers that answered (in no particular order).
async fn concurrent(
    addr: SocketAddr,
    clients: usize,
    per_client: usize,
    path: &str,
) -> Vec<String> {
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let path = path.to_string();
            tokio::spawn(async move { sequence(addr, per_client, &path).await })
        })
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("client task"));
    }
    all
}

fn counts(seq: &[String]) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for s in seq {
        *m.entry(s.clone()).or_insert(0) += 1;
    }
    m
}

fn count(seq: &[String], server: &str) -> usize {
    seq.iter().filter(|s| *s == server).count()
}

/// Longest run of consecutive answers from `server`.
fn longest_run(seq: &[String], server: &str) -> usize {
    let (mut best, mut run) = (0, 0);
    for s in seq {
        run = if s == server { run + 1 } else { 0 };
        best = best.max(run);
    }
    best
}

/// In-flight count of every server of upstream `app`, by address.
fn inflight(gw: &Gateway) -> BTreeMap<String, u64> {
    gw.servers_of("app")
        .iter()
        .map(|s| {
            (
                s["addr"].as_str().unwrap().to_string(),
                s["inflight"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// Polls `f` from async code without stalling the runtime's other tasks.
fn wait_blocking(what: &str, within: Duration, f: impl FnMut() -> bool) {
    tokio::task::block_in_place(|| wait_until(what, within, f));
}

fn reload(gw: &Gateway, text: &str) {
    gw.write_config(text);
    let (code, body) = gw.admin_post("/api/v1/reload");
    assert_eq!(code, 200, "reload refused: {body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_robin_is_even() {
    let bs = backends(&["a", "b", "c"]);
    let (_gw, addr) = gateway("rr", r#"balance = "round-robin""#, &unweighted(&bs));
    let seq = sequence(addr, 300, "/").await;
    let c = counts(&seq);
    assert_eq!(c.len(), 3, "{c:?}");
    for n in c.values() {
        assert!(n.abs_diff(100) <= 2, "{c:?}");
    }
    // In turn: never the same server twice in a row.
    assert!(seq.windows(2).all(|w| w[0] != w[1]), "{seq:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weighted_round_robin_respects_weights() {
    let bs = backends(&["heavy", "light"]);
    let (_gw, addr) = gateway(
        "wrr",
        r#"balance = "weighted-round-robin""#,
        &[(bs[0].addr, 3), (bs[1].addr, 1)],
    );
    let seq = sequence(addr, 400, "/").await;
    let heavy = count(&seq, "heavy");
    let light = count(&seq, "light");
    assert_eq!(heavy + light, 400, "{:?}", counts(&seq));
    assert!(heavy.abs_diff(300) <= 12, "heavy {heavy}, light {light}");
    // Smooth: interleaved, not in blocks of three.
    assert!(
        longest_run(&seq[..8], "heavy") <= 3,
        "first answers: {:?}",
        &seq[..8]
    );
    assert!(longest_run(&seq, "heavy") <= 3, "{seq:?}");
    assert_eq!(longest_run(&seq, "light"), 1, "{seq:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn least_connections_breaks_ties_round_robin() {
    let bs = backends(&["a", "b", "c"]);
    let (gw, addr) = gateway("lc", r#"balance = "least-connections""#, &unweighted(&bs));

    // Sequential requests: nothing in flight at any pick, every server tied.
    let seq = sequence(addr, 300, "/").await;
    let c = counts(&seq);
    assert_eq!(c.len(), 3, "{c:?}");
    for n in c.values() {
        assert!(n.abs_diff(100) <= 5, "{c:?}");
    }

    // Two long requests held in flight, sent one at a time so each pick sees the previous one.
    let mut held = Vec::new();
    for k in 1..=2u64 {
        held.push(tokio::spawn(get(addr, "/slow/20000", &[])));
        wait_blocking(
            &format!("{k} long request(s) in flight"),
            Duration::from_secs(10),
            || inflight(&gw).values().sum::<u64>() == k,
        );
    }
    let load = inflight(&gw);
    let busy: Vec<&String> = load
        .iter()
        .filter(|(_, &n)| n > 0)
        .map(|(a, _)| a)
        .collect();
    assert_eq!(busy.len(), 2, "the long requests share a server: {load:?}");
    let idle = bs
        .iter()
        .find(|b| load[&b.addr.to_string()] == 0)
        .expect("one idle server");

    // Quick requests now go to the one server with nothing in flight.
    let quick = sequence(addr, 30, "/").await;
    let to_idle = count(&quick, &idle.name);
    eprintln!(
        "least-connections: sequential {c:?}; with two held on {busy:?}: {:?}",
        counts(&quick)
    );
    assert!(
        to_idle >= 27,
        "idle server {} got {to_idle} of 30 quick requests: {:?} (in flight {load:?})",
        idle.name,
        counts(&quick)
    );
    // The premise held throughout: the long requests were still in flight.
    let after = inflight(&gw);
    assert_eq!(after.values().sum::<u64>(), 2, "{after:?}");
    for h in &held {
        assert!(!h.is_finished(), "a long request ended early: {after:?}");
    }
    for h in held {
        h.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weighted_least_connections_respects_weights() {
    let bs = backends(&["heavy", "light"]);
    let (_gw, addr) = gateway(
        "wlc",
        r#"balance = "weighted-least-connections""#,
        &[(bs[0].addr, 3), (bs[1].addr, 1)],
    );
    // Sequential: nothing is in flight at any pick, so every pick is a tie, broken by
    // weight: the heavy server takes its 75%, not everything.
    let seq = sequence(addr, 400, "/").await;
    let heavy = count(&seq, "heavy") as f64 / 400.0;
    assert!(
        (0.70..=0.80).contains(&heavy),
        "sequential: {:?}",
        counts(&seq)
    );

    // Concurrent requests that stay in flight a while: in-flight counts follow the weights.
    let all = concurrent(addr, 8, 40, "/slow/20").await;
    let c = counts(&all);
    let heavy = count(&all, "heavy") as f64 / all.len() as f64;
    eprintln!(
        "weighted-least-connections: sequential {:?}, concurrent {c:?}",
        counts(&seq)
    );
    assert!((0.65..=0.88).contains(&heavy), "concurrent: {c:?}");
}

/// Two demo backends and one in-process server that waits 50 ms before every answer, under
/// `balance`: 8 clients send 40 requests each.
async fn slow_server_share(name: &str, balance: &str) {
    let bs = backends(&["fast1", "fast2"]);
    let slow = DelayedServer::start("slow", Duration::from_millis(50)).await;
    let mut servers = unweighted(&bs);
    servers.push((slow.addr, 1));
    let (gw, addr) = gateway(name, &format!(r#"balance = "{balance}""#), &servers);
    let all = concurrent(addr, 8, 40, "/").await;
    let c = counts(&all);
    // The gateway's latency figures, to tell what happened if this fails.
    let ewma: Vec<String> = gw.status()["upstreams"][0]["servers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            format!(
                "{} {:.2}ms",
                s["addr"].as_str().unwrap_or("?"),
                s["latency_ewma_ms"].as_f64().unwrap_or(-1.0)
            )
        })
        .collect();
    eprintln!("{balance}: {c:?}, slow is {}, ewma {ewma:?}", slow.addr);
    assert_eq!(all.len(), 320);
    let slow_n = count(&all, "slow");
    assert_eq!(slow_n as u64, slow.served(), "{c:?}");
    // Round-robin would give the slow server a third (107). Not asserted: how the rest is
    // shared between the fast two, which follows their measured latencies (on a loaded
    // machine one of them may look slower for a while and get little).
    assert!(slow_n * 100 < 320 * 15, "{c:?} {ewma:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fastest_response_avoids_slow_server() {
    slow_server_share("fastest", "fastest-response").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peak_ewma_avoids_slow_server() {
    slow_server_share("p2c", "peak-ewma").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consistent_hash_moves_about_one_nth() {
    let mut bs = backends(&["a", "b", "c", "d"]);
    let extra = r#"balance = "hash"
hash = { on = "header", name = "x-user" }"#;
    let port = free_port();
    let gw = Gateway::start("hash-header", &config(port, extra, &unweighted(&bs)));
    let addr = SocketAddr::from(([127, 0, 0, 1], port));

    let keys: Vec<String> = (0..400).map(|i| format!("user-{i}")).collect();
    let map = |keys: Vec<String>| async move {
        let mut c = Conn::open(addr).await.expect("connect");
        let mut out = Vec::new();
        for k in &keys {
            out.push(who(&mut c, "/", &[("x-user", k)]).await);
        }
        out
    };
    let before = map(keys.clone()).await;
    let c = counts(&before);
    assert_eq!(c.len(), 4, "{c:?}");
    for n in c.values() {
        assert!(*n >= 40, "uneven ring: {c:?}");
    }
    // Stable: a sample asked again, on another connection, lands where it did.
    let sample: Vec<String> = keys.iter().step_by(8).cloned().collect();
    let again = map(sample).await;
    for (i, s) in again.iter().enumerate() {
        assert_eq!(s, &before[i * 8], "key {} moved", keys[i * 8]);
    }
    // Without the header the client address decides: one server for all.
    let mut conn = Conn::open(addr).await.unwrap();
    let mut no_header = HashSet::new();
    for i in 0..20 {
        no_header.insert(who(&mut conn, &format!("/x{i}"), &[]).await);
    }
    assert_eq!(no_header.len(), 1, "{no_header:?}");

    // A fifth server by reload: about a fifth of the keys move, all of them to it.
    bs.push(Backend::start("e"));
    reload(&gw, &config(port, extra, &unweighted(&bs)));
    let after = map(keys.clone()).await;
    let moved: Vec<usize> = (0..keys.len()).filter(|&i| before[i] != after[i]).collect();
    let share = moved.len() as f64 / keys.len() as f64;
    eprintln!(
        "hash: before {c:?}, after {:?}, moved {share:.3}",
        counts(&after)
    );
    assert!((0.08..=0.35).contains(&share), "moved {share}");
    for &i in &moved {
        assert_eq!(
            after[i], "e",
            "key {} moved {} -> {}",
            keys[i], before[i], after[i]
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hash_on_cookie_is_sticky() {
    let bs = backends(&["a", "b", "c", "d"]);
    let (_gw, addr) = gateway(
        "hash-cookie",
        r#"balance = "hash"
hash = { on = "cookie", name = "sid" }"#,
        &unweighted(&bs),
    );
    let mut c = Conn::open(addr).await.unwrap();
    let mut seen = HashSet::new();
    for i in 0..60 {
        let plain = format!("sid=s{i}");
        let first = who(&mut c, "/", &[("cookie", &plain)]).await;
        // Same session, other cookies around it, another path: same server.
        let mixed = format!("theme=dark; sid=s{i}; lang=en");
        assert_eq!(
            who(&mut c, &format!("/p/{i}"), &[("cookie", &mixed)]).await,
            first,
            "session s{i}"
        );
        seen.insert(first);
    }
    assert!(seen.len() >= 3, "60 sessions on {seen:?}");
    // Another cookie is not the key: without `sid` the client address decides, one server.
    let mut no_sid = HashSet::new();
    for i in 0..20 {
        no_sid.insert(who(&mut c, "/", &[("cookie", &format!("xsid=s{i}; sidx=s{i}"))]).await);
    }
    assert_eq!(no_sid.len(), 1, "{no_sid:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hash_on_client_ip_is_stable() {
    let bs = backends(&["a", "b", "c", "d"]);
    let (_gw, addr) = gateway(
        "hash-ip",
        r#"balance = "hash"
hash = { on = "client-ip" }"#,
        &unweighted(&bs),
    );
    // Every request comes from 127.0.0.1: one server, whatever the path, header or connection.
    let mut seen = HashSet::new();
    for i in 0..30 {
        let path = format!("/c/{i}");
        let user = format!("u{i}");
        let r = get(
            addr,
            &path,
            &[("x-user", &user), ("cookie", &format!("sid={i}"))],
        )
        .await
        .unwrap();
        assert_eq!(r.status, 200);
        seen.insert(r.backend().unwrap().to_string());
    }
    let mut c = Conn::open(addr).await.unwrap();
    for i in 0..30 {
        seen.insert(who(&mut c, &format!("/k/{i}"), &[]).await);
    }
    assert_eq!(seen.len(), 1, "{seen:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hash_on_path_is_sticky_and_spreads() {
    let bs = backends(&["a", "b", "c", "d"]);
    let (_gw, addr) = gateway(
        "hash-path",
        r#"balance = "hash"
hash = { on = "path" }"#,
        &unweighted(&bs),
    );
    let mut c = Conn::open(addr).await.unwrap();
    let paths: Vec<String> = (0..80).map(|i| format!("/item/{i}")).collect();
    let mut first = Vec::new();
    for p in &paths {
        first.push(who(&mut c, p, &[]).await);
    }
    let spread = counts(&first);
    assert!(spread.len() >= 3, "80 paths on {spread:?}");
    // Same path again, on a fresh connection and with a query string: same server.
    let mut c2 = Conn::open(addr).await.unwrap();
    for (p, s) in paths.iter().zip(&first).step_by(4) {
        assert_eq!(&who(&mut c2, p, &[]).await, s, "{p}");
        assert_eq!(&who(&mut c2, &format!("{p}?v=2"), &[]).await, s, "{p}?v=2");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_start_ramps_a_server_added_by_reload() {
    let mut bs = backends(&["a", "b"]);
    let extra = r#"balance = "weighted-round-robin"
slow_start = "60s""#;
    let port = free_port();
    let gw = Gateway::start("slow-start", &config(port, extra, &unweighted(&bs)));
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    // Servers present at start are not ramped.
    let c = counts(&sequence(addr, 100, "/").await);
    assert_eq!(c.get("a").copied(), Some(50), "{c:?}");

    bs.push(Backend::start("new"));
    reload(&gw, &config(port, extra, &unweighted(&bs)));
    let seq = sequence(addr, 300, "/").await;
    let c = counts(&seq);
    eprintln!("slow start: {c:?}");
    let new = count(&seq, "new");
    // Full weight would give it a third (100); early in its ramp it gets far less, but some.
    assert!(new > 0 && new <= 45, "{c:?}");
    assert!(count(&seq, "a").abs_diff(count(&seq, "b")) <= 2, "{c:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abandoned_request_does_not_stay_in_flight() {
    // A client that gives up while the server is still working must not leave the server
    // counted as busy: least-connections would shun it forever.
    let bs = backends(&["a", "b"]);
    let (gw, addr) = gateway(
        "abandon",
        r#"balance = "least-connections""#,
        &unweighted(&bs),
    );
    let held = tokio::spawn(get(addr, "/slow/1500", &[]));
    wait_blocking("the request in flight", Duration::from_secs(10), || {
        inflight(&gw).values().sum::<u64>() == 1
    });
    held.abort();
    let _ = held.await;
    // Nothing may be left in flight (at the latest once the server has answered, 1.5 s).
    wait_blocking("in-flight back to 0", Duration::from_secs(10), || {
        inflight(&gw).values().sum::<u64>() == 0
    });
    // And traffic is shared again.
    let c = counts(&sequence(addr, 20, "/").await);
    assert_eq!(c.len(), 2, "{c:?}");
    // The abandoned request is still accounted for: a 499 line in the access log.
    wait_blocking("the 499 access-log line", Duration::from_secs(5), || {
        gw.access_lines().iter().any(|l| {
            l["path"] == "/slow/1500" && l["status"] == 499 && l["error"] == "client_closed"
        })
    });
}
