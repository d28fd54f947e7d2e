//! The `journey` probe against a real loopback shop: log in (a cookie and a token), read the
//! profile with both, then open the cart found in the profile.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use common::{handler, reply, serve, spec};
use http::header::{HeaderValue, SET_COOKIE};

use ballast_monitor::probe::journey::{JourneyProbe, JourneySpec};
use ballast_monitor::probe::Outcome;
use ballast_monitor::probe::Probe;

/// The shop; `broken` makes the profile step answer 500.
async fn shop(broken: Arc<AtomicBool>) -> std::net::SocketAddr {
    serve(handler(move |req| {
        match (req.method.as_str(), req.path.as_str()) {
            ("POST", "/login") if req.body.as_ref() == b"user=probe" => {
                let mut r = reply(200, r#"{"token":"t-42","user":{"id":7}}"#);
                r.headers_mut().append(
                    SET_COOKIE,
                    HeaderValue::from_static("sid=s-1; Path=/; HttpOnly"),
                );
                r.headers_mut()
                    .append(SET_COOKIE, HeaderValue::from_static("tmp=x; Max-Age=0"));
                r.headers_mut()
                    .insert("x-request-id", HeaderValue::from_static("r-9"));
                r
            }
            ("GET", "/users/7/profile") => {
                if broken.load(Ordering::SeqCst) {
                    return reply(500, "database on fire");
                }
                let authed = req.header("cookie") == Some("sid=s-1")
                    && req.header("authorization") == Some("Bearer t-42")
                    && req.header("x-trace") == Some("r-9");
                if !authed {
                    return reply(401, "who are you");
                }
                reply(
                    200,
                    r#"{"name":"probe","links":"see /cart/c-5 for the cart"}"#,
                )
            }
            ("GET", "/cart/c-5") if req.header("cookie") == Some("sid=s-1") => {
                reply(200, r#"{"items":3}"#)
            }
            _ => reply(404, "no such page"),
        }
    }))
    .await
}

fn journey_toml(addr: std::net::SocketAddr) -> String {
    format!(
        r#"
        [[steps]]
        name = "login"
        method = "POST"
        url = "http://{addr}/login"
        body = "user=probe"
        expect_status = "200-299"
        capture = [
          {{ name = "token", json = "/token" }},
          {{ name = "uid", json = "/user/id" }},
          {{ name = "req", header = "X-Request-Id" }},
        ]

        [[steps]]
        name = "profile"
        url = "http://{addr}/users/{{{{uid}}}}/profile"
        headers = {{ Authorization = "Bearer {{{{token}}}}", X-Trace = "{{{{ req }}}}" }}
        expect_status = 200
        json = {{ pointer = "/name", equals = "probe" }}
        capture = [{{ name = "cart", regex = "/cart/([a-z0-9-]+)" }}]

        [[steps]]
        name = "cart"
        url = "http://{addr}/cart/{{{{cart}}}}"
        json = {{ pointer = "/items", equals = 3 }}
        "#
    )
}

fn step_latency(out: &Outcome, step: &str) -> Option<f64> {
    out.readings
        .iter()
        .find(|r| r.value == "step_latency_ms" && r.labels.get("step") == Some(step))
        .map(|r| r.number)
}

fn value(out: &Outcome, name: &str) -> Option<f64> {
    common::reading(out, name)
}

#[tokio::test]
async fn three_steps_share_cookies_and_captured_values() {
    let addr = shop(Arc::new(AtomicBool::new(false))).await;
    let probe = JourneyProbe::new(spec::<JourneySpec>(&journey_toml(addr))).unwrap();
    assert_eq!(probe.kind(), "journey");
    let out = probe.run().await;
    assert_eq!(out.error, None, "{:#}", out.detail);
    assert_eq!(value(&out, "failed_step"), Some(0.0));
    for step in ["login", "profile", "cart"] {
        assert!(step_latency(&out, step).unwrap() > 0.0, "{step}");
    }
    assert!(value(&out, "latency_ms").unwrap() > 0.0);
    let steps = out.detail.as_array().unwrap();
    assert_eq!(steps.len(), 3);
    assert_eq!(steps[2]["name"], "cart");
    assert_eq!(steps[2]["status"], 200);
    assert_eq!(steps[2]["ok"], true);
}

#[tokio::test]
async fn a_broken_step_stops_the_journey_and_is_named() {
    let broken = Arc::new(AtomicBool::new(true));
    let addr = shop(broken.clone()).await;
    let probe = JourneyProbe::new(spec::<JourneySpec>(&journey_toml(addr))).unwrap();
    let out = probe.run().await;
    assert_eq!(
        out.error.as_deref(),
        Some("step 2 (\"profile\"): expected status 200, got 500")
    );
    assert_eq!(value(&out, "failed_step"), Some(2.0));
    assert!(step_latency(&out, "login").is_some());
    assert!(step_latency(&out, "profile").is_some());
    assert_eq!(step_latency(&out, "cart"), None);
    let steps = out.detail.as_array().unwrap();
    assert_eq!(steps.len(), 2);
    assert_eq!(steps[1]["ok"], false);
    assert_eq!(steps[1]["status"], 500);
    assert_eq!(steps[1]["error"], "expected status 200, got 500");

    // Mended, the same probe passes: nothing of the failed run was kept.
    broken.store(false, Ordering::SeqCst);
    let out = probe.run().await;
    assert_eq!(out.error, None);
}

#[tokio::test]
async fn a_capture_that_finds_nothing_fails_its_step() {
    let addr = serve(handler(|_| reply(200, r#"{"other":1}"#))).await;
    let probe = JourneyProbe::new(spec::<JourneySpec>(&format!(
        r#"steps = [
          {{ name = "a", url = "http://{addr}/", capture = [{{ name = "t", json = "/token" }}] }},
          {{ name = "b", url = "http://{addr}/{{{{t}}}}" }},
        ]"#
    )))
    .unwrap();
    let out = probe.run().await;
    assert_eq!(
        out.error.as_deref(),
        Some("step 1 (\"a\"): capture \"t\": JSON pointer /token not found")
    );
    assert_eq!(value(&out, "failed_step"), Some(1.0));
}

#[test]
fn bad_specs_name_their_field() {
    let err = |t: &str| JourneyProbe::new(spec::<JourneySpec>(t)).unwrap_err();
    let e = err(r#"steps = [{ name = "a", url = "http://x/{{nope}}" }]"#);
    assert_eq!(e.field, "steps[0].url");
    assert!(e.message.contains("not captured by an earlier step"), "{e}");
    // A value captured by the same step is not there yet when its request is built.
    let e = err(
        r#"steps = [{ name = "a", url = "http://x/", body = "{{t}}", capture = [{ name = "t", header = "X" }] }]"#,
    );
    assert_eq!(e.field, "steps[0].body");
    let e = err(r#"steps = [{ name = "a", url = "http://x/", headers = { A = "{{t}}" } }]"#);
    assert_eq!(e.field, "steps[0].headers.A");
    assert_eq!(err("steps = []").field, "steps");
    assert_eq!(
        err(r#"steps = [{ name = "a", url = "http://x/" }, { name = "a", url = "http://x/" }]"#)
            .field,
        "steps[1].name"
    );
    assert_eq!(
        err(r#"steps = [{ name = "a", url = "http://x/", capture = [{ name = "t", regex = "no group" }] }]"#)
            .field,
        "steps[0].capture[0].regex"
    );
    assert_eq!(
        err(r#"steps = [{ name = "a", url = "http://x/", capture = [{ name = "t", json = "/a", header = "B" }] }]"#)
            .field,
        "steps[0].capture[0]"
    );
    assert_eq!(
        err(r#"steps = [{ name = "a", url = "http://x/{{" }]"#).field,
        "steps[0].url"
    );
    assert!(toml::from_str::<JourneySpec>(
        r#"steps = [{ name = "a", url = "http://x/", bogus = 1 }]"#
    )
    .is_err());
}
