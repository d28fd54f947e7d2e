//! The response cache and stale serving, through real sockets: a gateway process in front of
//! demo backend processes that are killed, revived and told to fail.

mod common;

use std::time::{Duration, Instant};

use common::*;

/// One route with a cache (`cache` is the inline table's inside) and `route_extra` lines, one
/// upstream of `b` with passive health off, so a failing server stays in the pool and every
/// request meets it.
fn config(port: u16, cache: &str, route_extra: &str, b: &Backend) -> String {
    format!(
        r#"{preamble}[[route]]
name = "site"
upstream = "app"
cache = {{ {cache} }}
{route_extra}
[[upstream]]
name = "app"
passive = {{ enabled = false }}
servers = [{{ addr = "{}" }}]
"#,
        b.addr,
        preamble = preamble(port),
    )
}

fn header<'a>(r: &'a Reply, name: &str) -> &'a str {
    r.headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

fn warnings(r: &Reply) -> Vec<String> {
    r.headers
        .get_all("warning")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect()
}

async fn fetch(port: u16, path: &str, headers: &[(&str, &str)]) -> Reply {
    get(local(port), path, headers).await.expect("request")
}

/// Waits until `path` is answered with `Ballast-Cache: miss` (the stored copy expired and the
/// upstream answered again).
async fn fetch_until_miss(port: u16, path: &str, within: Duration) -> Reply {
    let start = Instant::now();
    loop {
        let r = fetch(port, path, &[]).await;
        if header(&r, "ballast-cache") == "miss" {
            return r;
        }
        assert!(
            start.elapsed() < within,
            "no fresh answer within {within:?}; last: {r:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[test]
fn stale_content_is_served_while_the_upstream_fails_and_fresh_content_returns_after_it_heals() {
    let mut a = Backend::start("a");
    let port = free_port();
    let gw = Gateway::start(
        "cache-stale",
        &config(port, r#"max_stale = "30s""#, "sorry = {}", &a),
    );
    let path = "/cacheable?max-age=2";
    rt().block_on(async {
        // A miss fills the cache; the second request is a hit that never reaches the backend.
        let first = fetch(port, path, &[]).await;
        assert_eq!(first.status, 200);
        assert_eq!(first.body.trim(), "count=1 from a");
        assert_eq!(header(&first, "ballast-cache"), "miss");
        let hit = fetch(port, path, &[("x-request-id", "hit-1")]).await;
        assert_eq!(hit.body, first.body);
        assert_eq!(header(&hit, "ballast-cache"), "hit");
        assert!(header(&hit, "age").parse::<u64>().unwrap() <= 1);
        assert_eq!(
            header(&hit, "x-request-id"),
            "hit-1",
            "the request's own id"
        );
        assert!(warnings(&hit).is_empty());
        assert_eq!(a.app_count(), 1, "the hit did not reach the backend");

        // The backend dies and the entry expires: the stale copy stands in for the 502.
        a.kill();
        tokio::time::sleep(Duration::from_millis(2100)).await;
        for _ in 0..3 {
            let stale = fetch(port, path, &[]).await;
            assert_eq!(stale.status, 200, "{stale:?}");
            assert_eq!(stale.body, first.body);
            assert_eq!(header(&stale, "ballast-cache"), "stale");
            assert!(header(&stale, "age").parse::<u64>().unwrap() >= 2);
            assert_eq!(
                warnings(&stale),
                vec![
                    r#"110 - "Response is Stale""#.to_string(),
                    r#"111 - "Revalidation Failed""#.to_string()
                ]
            );
        }
        // A path that was never stored still gets the route's sorry page.
        let none = fetch(port, "/cacheable?max-age=2&other", &[]).await;
        assert_eq!(none.status, 503);
        assert!(none.body.contains("back soon"), "{}", none.body);
        let st = gw.status();
        assert_eq!(st["routes"][0]["cache"]["serving_stale"], true);

        // Healed: the next request after expiry gets a fresh answer (the revived backend
        // counts from 0; two direct requests tell its answer apart from the stored one).
        a.revive();
        for _ in 0..2 {
            raw_http(
                a.addr,
                "GET /cacheable HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n",
            );
        }
        let fresh = fetch_until_miss(port, path, Duration::from_secs(10)).await;
        assert_eq!(fresh.status, 200);
        assert_eq!(fresh.body.trim(), "count=3 from a");
        assert!(warnings(&fresh).is_empty());
        let hit = fetch(port, path, &[]).await;
        assert_eq!(hit.body, fresh.body, "the fresh answer was stored");
        assert_eq!(header(&hit, "ballast-cache"), "hit");
    });

    let st = gw.status();
    let c = &st["routes"][0]["cache"];
    assert_eq!(c["serving_stale"], false);
    assert_eq!(c["stale_served"], 3);
    assert_eq!(c["hits"], 2);
    assert_eq!(c["entries"], 1);
    assert!(c["bytes"].as_u64().unwrap() > 0);
    let (_, events) = gw.admin_get("/api/v1/events");
    let started = events.find(r#""kind":"stale_serving_started""#);
    let ended = events.find(r#""kind":"stale_serving_ended""#);
    assert!(
        started.is_some() && ended.is_some() && started < ended,
        "stale serving starts, then ends: {events}"
    );
    assert!(events.contains(r#""cause":"connect_failed""#), "{events}");
    let m = gw.metrics();
    assert_eq!(
        metric_value(&m, r#"ballast_cache_stale_served_total{route="site"}"#),
        Some(3.0)
    );
    assert_eq!(
        metric_value(&m, r#"ballast_cache_hits_total{route="site"}"#),
        Some(2.0)
    );
    assert_eq!(
        metric_value(&m, r#"ballast_cache_entries{route="site"}"#),
        Some(1.0)
    );
    // Every answer, hits and stale ones included, is in the access log (written every 50 ms).
    wait_until("8 access-log lines", Duration::from_secs(5), || {
        gw.access_lines().len() >= 8
    });
    let log = gw.access_lines();
    let label = |l: &serde_json::Value| l["cache"].as_str().unwrap_or("").to_string();
    let stale_lines: Vec<_> = log.iter().filter(|l| label(l) == "stale").collect();
    assert_eq!(stale_lines.len(), 3, "{log:?}");
    assert_eq!(stale_lines[0]["error"], "connect_failed");
    assert_eq!(stale_lines[0]["status"], 200);
    assert!(log
        .iter()
        .any(|l| label(l) == "hit" && l["request_id"] == "hit-1" && l["server"].is_null()));
}

#[test]
fn a_listed_5xx_is_replaced_by_stale_content_until_max_stale() {
    let a = Backend::start("a");
    let port = free_port();
    let _gw = Gateway::start(
        "cache-5xx",
        &config(
            port,
            r#"max_stale = "2s", stale_on = ["503"]"#,
            r#"retry = { attempts = 1 }"#,
            &a,
        ),
    );
    let path = "/cacheable?max-age=1";
    rt().block_on(async {
        let first = fetch(port, path, &[]).await;
        assert_eq!(first.body.trim(), "count=1 from a");
        tokio::time::sleep(Duration::from_millis(1100)).await;
        // 500 is not listed: the upstream's answer goes out as it is.
        a.force(500);
        let r = fetch(port, path, &[]).await;
        assert_eq!(r.status, 500);
        a.force(503);
        let r = fetch(port, path, &[]).await;
        assert_eq!((r.status, r.body.as_str()), (200, first.body.as_str()));
        assert_eq!(header(&r, "ballast-cache"), "stale");
        // Past max-age + max_stale (1 s + 2 s) the stale copy is no longer offered.
        tokio::time::sleep(Duration::from_millis(2000)).await;
        let r = fetch(port, path, &[]).await;
        assert_eq!(r.status, 503, "{r:?}");
        a.force(0);
        let r = fetch(port, path, &[]).await;
        assert_eq!(r.status, 200);
        assert_eq!(header(&r, "ballast-cache"), "miss");
        assert_ne!(r.body, first.body, "a fresh answer");
    });
}

#[test]
fn purge_through_the_admin_api_removes_entries() {
    let a = Backend::start("a");
    let port = free_port();
    let gw = Gateway::start("cache-purge", &config(port, "", "", &a));
    let paths = ["/cacheable/a?max-age=60", "/cacheable/img/b?max-age=60"];
    let labels = || {
        rt().block_on(async {
            let mut out = Vec::new();
            for p in paths {
                let r = fetch(port, p, &[]).await;
                assert_eq!(r.status, 200, "{p}: {r:?}");
                out.push(header(&r, "ballast-cache").to_string());
            }
            out
        })
    };
    assert_eq!(labels(), ["miss", "miss"]);
    assert_eq!(labels(), ["hit", "hit"]);
    assert_eq!(a.app_count(), 2);
    assert_eq!(gw.status()["routes"][0]["cache"]["entries"], 2);

    let (code, body) = gw.admin_post("/api/v1/cache/purge?route=site&prefix=/nothing");
    assert_eq!(code, 200, "{body}");
    assert!(
        body.starts_with(r#"{"result":"purged","removed":0"#),
        "{body}"
    );
    let (code, body) = gw.admin_post("/api/v1/cache/purge?prefix=/cacheable/img/");
    assert_eq!(code, 200, "{body}");
    assert!(
        body.starts_with(r#"{"result":"purged","removed":1"#),
        "{body}"
    );
    assert_eq!(labels(), ["hit", "miss"], "only the purged entry misses");
    assert_eq!(a.app_count(), 3);

    // The CLI does the same; unknown routes are refused.
    let admin = gw.admin.to_string();
    let (code, out, err) = cli(&["purge", "--route", "site", "--admin", &admin]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("\"removed\": 2"), "{out}");
    assert_eq!(labels(), ["miss", "miss"]);
    assert_eq!(gw.status()["routes"][0]["cache"]["entries"], 2);
    let (code, body) = gw.admin_post("/api/v1/cache/purge?route=nope");
    assert_eq!(code, 404);
    assert!(body.contains("no route named `nope`"), "{body}");
    let (_, events) = gw.admin_get("/api/v1/events");
    assert!(events.contains(r#""kind":"cache_purged""#), "{events}");
    let m = gw.metrics();
    assert_eq!(
        metric_value(&m, r#"ballast_cache_purged_total{route="site"}"#),
        Some(3.0)
    );
}

#[test]
fn vary_variants_head_and_304s_are_served_from_the_stored_get() {
    let a = Backend::start("a");
    let port = free_port();
    let _gw = Gateway::start("cache-vary", &config(port, "", "", &a));
    let path = "/cacheable?max-age=60&vary=Accept-Language";
    rt().block_on(async {
        let en = fetch(port, path, &[("accept-language", "en")]).await;
        assert_eq!(en.body.trim(), "count=1 from a Accept-Language=en");
        let de = fetch(port, path, &[("accept-language", "de")]).await;
        assert_eq!(de.body.trim(), "count=2 from a Accept-Language=de");
        assert_eq!(header(&de, "ballast-cache"), "miss");
        let none = fetch(port, path, &[]).await;
        assert_eq!(none.body.trim(), "count=3 from a Accept-Language=-");
        for _ in 0..2 {
            let r = fetch(port, path, &[("accept-language", "en")]).await;
            assert_eq!(
                (header(&r, "ballast-cache"), r.body.as_str()),
                ("hit", en.body.as_str())
            );
            let r = fetch(port, path, &[("accept-language", "de")]).await;
            assert_eq!(
                (header(&r, "ballast-cache"), r.body.as_str()),
                ("hit", de.body.as_str())
            );
            let r = fetch(port, path, &[]).await;
            assert_eq!(r.body, none.body);
        }
        let mut c = Conn::open(local(port)).await.unwrap();
        let head = c
            .request("HEAD", path, &[("accept-language", "en")], "")
            .await
            .unwrap();
        assert_eq!(head.status, 200);
        assert_eq!(header(&head, "ballast-cache"), "hit");
        assert_eq!(header(&head, "content-length"), en.body.len().to_string());
        assert!(head.body.is_empty());

        // A conditional request matching the stored ETag gets 304 from the cache.
        let path = "/cacheable?max-age=60&etag=v1";
        let full = fetch(port, path, &[]).await;
        assert_eq!(header(&full, "etag"), "\"v1\"");
        let nm = fetch(port, path, &[("if-none-match", "\"v0\", \"v1\"")]).await;
        assert_eq!((nm.status, header(&nm, "ballast-cache")), (304, "hit"));
        assert!(nm.body.is_empty());
        assert_eq!(header(&nm, "etag"), "\"v1\"");
        let other = fetch(port, path, &[("if-none-match", "\"v2\"")]).await;
        assert_eq!(
            (other.status, other.body.as_str()),
            (200, full.body.as_str())
        );
    });
    assert_eq!(a.app_count(), 4, "one upstream request per variant");
}

#[test]
fn what_must_not_be_stored_never_is_and_large_bodies_still_stream() {
    let a = Backend::start("a");
    let port = free_port();
    let gw = Gateway::start(
        "cache-nostore",
        &config(port, r#"max_size = "64KiB", max_object = "4KiB""#, "", &a),
    );
    rt().block_on(async {
        for path in [
            "/cacheable?cc=no-store",
            "/cacheable?cc=private,max-age=60",
            "/cacheable",
        ] {
            let one = fetch(port, path, &[]).await;
            let two = fetch(port, path, &[]).await;
            assert_eq!(header(&two, "ballast-cache"), "miss", "{path}");
            assert_ne!(one.body, two.body, "{path}: both from the backend");
        }
        // A client's no-cache skips the fresh copy (and refreshes it).
        let stored = fetch(port, "/cacheable?max-age=60", &[]).await;
        let again = fetch(
            port,
            "/cacheable?max-age=60",
            &[("cache-control", "no-cache")],
        )
        .await;
        assert_eq!(header(&again, "ballast-cache"), "miss");
        assert_ne!(again.body, stored.body);
        let hit = fetch(port, "/cacheable?max-age=60", &[]).await;
        assert_eq!(hit.body, again.body);
        // Larger than max_object: delivered whole, never stored.
        let path = "/cacheable?max-age=60&size=20000";
        for _ in 0..2 {
            let big = fetch(port, path, &[]).await;
            assert_eq!(big.status, 200);
            assert_eq!(big.body.len(), 20000);
            assert_eq!(header(&big, "ballast-cache"), "miss");
        }
        // A POST to a stored URL removes it.
        let mut c = Conn::open(local(port)).await.unwrap();
        let p = c
            .request("POST", "/cacheable?max-age=60", &[], "x")
            .await
            .unwrap();
        assert_eq!(p.status, 200);
        let r = fetch(port, "/cacheable?max-age=60", &[]).await;
        assert_eq!(header(&r, "ballast-cache"), "miss");
    });
    let m = gw.metrics();
    assert_eq!(
        metric_value(&m, r#"ballast_cache_too_large_total{route="site"}"#),
        Some(2.0)
    );
}

#[test]
fn a_reload_keeps_an_unchanged_cache_and_empties_a_changed_one() {
    let a = Backend::start("a");
    let port = free_port();
    let text = config(port, r#"max_size = "1MiB""#, "", &a);
    let gw = Gateway::start("cache-reload", &text);
    let path = "/cacheable?max-age=60";
    let label = || {
        rt().block_on(async { header(&fetch(port, path, &[]).await, "ballast-cache").to_string() })
    };
    assert_eq!(label(), "miss");
    gw.write_config(&format!("{text}\n# touched\n"));
    let (code, body) = gw.admin_post("/api/v1/reload");
    assert_eq!(code, 200, "{body}");
    assert_eq!(label(), "hit", "same cache settings: kept");
    gw.write_config(&config(port, r#"max_size = "2MiB""#, "", &a));
    let (code, body) = gw.admin_post("/api/v1/reload");
    assert_eq!(code, 200, "{body}");
    assert_eq!(label(), "miss", "new settings: a new, empty cache");
    assert_eq!(label(), "hit");
}
