//! The admin listener's web dashboard in a real browser: headless Chromium driven over
//! WebDriver (`browser_support`), against a real gateway with a store, three demo backends,
//! 1 s health checks and a critical rule on the upstream's healthy servers, and two named
//! tokens (operator `ana`, viewer `wallboard`).
//!
//! Why a browser and not HTTP requests: what an operator relies on is what the browser does
//! with the pages: the login cookie kept and sent, the 303s followed, the hidden CSRF field
//! posted with each button, the overview refreshing itself while a server dies.
//!
//! The flow: the login page refuses a wrong token and logs the operator in; the overview shows
//! three servers up; a backend is SIGKILLed and the overview (refreshing itself) shows it down
//! with a critical alert firing; the drain button drains a second server; a silence made with
//! the form is listed on the page and by the API; the incident the alert opened shows its
//! timeline, takes a note, and its post-mortem downloads as a Markdown attachment. Then what
//! must be refused is: a drain posted without its CSRF field (or with a wrong one) by the
//! operator, and a drain posted by the viewer with a valid one; neither changes anything. A
//! screenshot of every page goes to `target/dashboard-screenshots/`.
//!
//! A first test checks the harness alone on a one-page loopback server, so that a failure in
//! the second is the dashboard's. Without Chromium both say so and pass, unless
//! `BALLAST_REQUIRE_BROWSER` is set.

mod browser_support;
mod common;

use std::net::SocketAddr;
use std::time::Duration;

use browser_support::*;
use common::*;
use serde_json::Value;

const OPERATOR: &str = "operator-secret-1";
const VIEWER: &str = "viewer-secret-1";
/// The critical rule: fewer than three healthy servers in `app`.
const RULE: &str = "app-servers-down";
/// How long anything the gateway does may take to show (the machine is shared).
const WAIT: Duration = Duration::from_secs(30);

#[test]
fn the_harness_drives_chromium_through_a_form() {
    let Some(b) = Browser::start("the_harness_drives_chromium_through_a_form") else {
        return;
    };
    let page = TinyPage::start();
    b.goto(&page.url("/"));
    b.wait_for_css("form#f", PAGE);
    b.fill("form#f input[name=who]", "ana & co");
    b.click_to_load("#go");
    let got = b.text("#got");
    assert_eq!(got, "csrf=abc&who=ana+%26+co", "the form's body as posted");
    assert_eq!(b.path(), "/submit");
    let cookie = b.cookie("seen").expect("the cookie the answer set");
    assert_eq!(cookie.value(), "yes");
    assert_eq!(cookie.http_only(), Some(true), "{cookie:?}");
    let shot = b.screenshot("harness-self-test");
    let png = std::fs::read(&shot).expect("the screenshot file");
    assert!(png.starts_with(b"\x89PNG"), "{} is no PNG", shot.display());
}

#[test]
fn an_operator_and_a_viewer_use_the_dashboard() {
    let Some(b) = Browser::start("an_operator_and_a_viewer_use_the_dashboard") else {
        return;
    };
    let mut backends: Vec<Backend> = (1..=3)
        .map(|i| Backend::start(&format!("dash-b{i}")))
        .collect();
    let [b1, b2, b3] = [backends[0].addr, backends[1].addr, backends[2].addr];
    let db = scratch("dash-store").join("ops.db");
    let gw = Gateway::start("dashboard", &config(free_port(), &db, &[b1, b2, b3]));
    wait_until("incidents to answer", WAIT, || {
        api(&gw, "/api/v1/incidents").0 == 200
    });
    let base = format!("http://{}", gw.admin);
    let row =
        |addr: SocketAddr| format!("tr.server[data-upstream=\"app\"][data-server=\"{addr}\"]");

    // Not logged in: every page sends the browser to the login page.
    for path in ["/", "/ui/alerts", "/ui/incidents"] {
        let r = http(gw.admin, "GET", path, &[], "");
        assert_eq!(r.status, 303, "GET {path} without a session: {}", r.body);
        assert_eq!(r.header("location"), Some("/login"), "GET {path}");
    }

    // The login form has a CSRF token of its own (a double-submit cookie `ballast_login`
    // and a field): without it the login is refused; with it a wrong token gets 401 and the
    // form again with an error.
    let r = http(
        gw.admin,
        "POST",
        "/login",
        &[FORM],
        &form(&[("token", OPERATOR)]),
    );
    assert_eq!(
        r.status, 403,
        "a login without the form's token: {}",
        r.body
    );
    let r = http(gw.admin, "GET", "/login", &[], "");
    let login_cookie = r
        .set_cookie("ballast_login")
        .unwrap_or_else(|| panic!("GET /login sets no ballast_login cookie: {:?}", r.headers));
    let csrf = login_cookie
        .split_once('=')
        .map(|(_, v)| v)
        .unwrap_or_default();
    let r = http(
        gw.admin,
        "POST",
        "/login",
        &[FORM, ("Cookie", &login_cookie)],
        &form(&[("token", "nope"), ("csrf", csrf)]),
    );
    assert_eq!(r.status, 401, "{}", r.body);
    assert!(r.body.contains("login-error"), "{}", r.body);
    b.goto(&format!("{base}/"));
    b.wait_for_css("form#login input[name=token][type=password]", PAGE);
    assert_eq!(b.path(), "/login", "the browser was sent to the login page");
    b.screenshot("login");
    let held = submit_login(&b, "not-a-token");
    if b.count("#login-error") == 0 || b.status() != Some(401) {
        b.fail(&format!(
            "a wrong token should get 401 and #login-error, not HTTP {:?}. {held}",
            b.status()
        ));
    }
    b.screenshot("login-error");

    // The operator logs in and lands on the overview: three servers up.
    log_in(&b, OPERATOR, "ana (operator)");
    let session = b.cookie("ballast_session").expect("the session cookie");
    assert_eq!(session.http_only(), Some(true), "{session:?}");
    assert_eq!(
        session.same_site().map(|s| s.to_string()).as_deref(),
        Some("Strict"),
        "{session:?}"
    );
    assert_eq!(session.path(), Some("/"), "{session:?}");
    let session = session.value().to_string();
    b.wait_until("three servers up on the overview", WAIT, None, |b| {
        b.count("table#servers tr.server[data-state=up]") == 3
    });
    b.wait_for_css(
        "table#routes tr.route[data-route=\"shop\"] svg.sparkline",
        PAGE,
    );
    b.wait_for_css("#recent-changes", PAGE);
    b.screenshot("overview");

    // A backend dies: the overview, refreshing itself, shows it down and the alert firing.
    backends[0].kill();
    let down = format!("{}[data-state=down]", row(b1));
    let firing = format!("#firing li.alert[data-alert=\"{RULE}\"][data-severity=critical]");
    b.wait_until(
        "the killed server down and the alert firing",
        WAIT,
        None,
        |b| b.count(&down) == 1 && b.count(&firing) == 1,
    );
    b.screenshot("overview-server-down");

    // The drain button drains a live server; the page says so, and so does the API.
    b.click_to_load("a[href=\"/ui/upstreams/app\"]");
    b.wait_for_css(&format!("form.drain[data-server=\"{b2}\"]"), PAGE);
    assert_eq!(b.path(), "/ui/upstreams/app");
    assert!(b.count("svg.chart") >= 3, "a chart per server");
    b.click_to_load(&format!(
        "form.drain[data-server=\"{b2}\"] button[type=submit]"
    ));
    b.wait_for_css("#flash", PAGE);
    assert_eq!(b.path(), "/ui/upstreams/app", "the form redirects back");
    b.wait_for_css(&format!("{}[data-state=draining]", row(b2)), PAGE);
    b.wait_for_css(&format!("form.enable[data-server=\"{b2}\"]"), PAGE);
    assert_eq!(state(&gw, b2), "draining");
    // Recorded as the dashboard's, under the logged-in name.
    let (code, events) = api(&gw, "/api/v1/events");
    assert_eq!(code, 200, "{events}");
    let drained = events
        .as_array()
        .into_iter()
        .flatten()
        .find(|e| e["kind"] == "server_drained" && e["server"] == b2.to_string())
        .unwrap_or_else(|| panic!("no server_drained event for {b2}: {events:#}"));
    assert_eq!(
        (&drained["by"], &drained["who"]),
        (&Value::from("dashboard"), &Value::from("ana")),
        "{drained}"
    );
    b.screenshot("upstream");

    // The drain form posted without its CSRF field, or with a wrong one: 403, nothing drained.
    let drain_b3 = b
        .attr(&format!("form.drain[data-server=\"{b3}\"]"), "action")
        .expect("the drain form's action");
    let cookie = format!("ballast_session={session}");
    for body in [String::new(), form(&[("csrf", "not-the-token")])] {
        let r = http(
            gw.admin,
            "POST",
            &drain_b3,
            &[FORM, ("Cookie", &cookie)],
            &body,
        );
        assert_eq!(r.status, 403, "drain with body {body:?}: {}", r.body);
        assert_eq!(state(&gw, b3), "up", "a refused drain drained {b3}");
    }
    // The same raw request with the form's own CSRF field works (so the 403s above were the
    // missing token): enable the drained server again.
    let enable_b2 = b
        .attr(&format!("form.enable[data-server=\"{b2}\"]"), "action")
        .expect("the enable form's action");
    let csrf = b
        .attr(
            &format!("form.enable[data-server=\"{b2}\"] input[name=csrf]"),
            "value",
        )
        .expect("the form's CSRF field");
    let r = http(
        gw.admin,
        "POST",
        &enable_b2,
        &[FORM, ("Cookie", &cookie)],
        &form(&[("csrf", &csrf)]),
    );
    assert_eq!(r.status, 303, "enable with the CSRF field: {}", r.body);
    wait_until("the enabled server to leave draining", WAIT, || {
        state(&gw, b2) == "up"
    });

    // The alert opened an incident: its page, a note, the post-mortem.
    incident_pages(&b, &gw, &base, &session);

    // A silence made with the form: on the page, in the API, and muting the alert.
    b.goto(&format!("{base}/ui/alerts"));
    let alert_row = format!("table#alerts tr.alert[data-alert=\"{RULE}\"][data-state=firing]");
    b.wait_for_css(&alert_row, PAGE);
    b.wait_for_css(&format!("{alert_row} form.ack"), PAGE);
    b.fill(
        "form#silence-form input[name=matchers]",
        &format!("alertname=\"{RULE}\""),
    );
    b.fill("form#silence-form input[name=duration]", "1h");
    b.fill(
        "form#silence-form [name=comment]",
        "browser test: dash-b1 is being replaced",
    );
    b.click_to_load("#silence-submit");
    b.wait_for_css("#flash", PAGE);
    b.wait_for_css("table#silences tr.silence", PAGE);
    let (code, silences) = api(&gw, "/api/v1/silences");
    assert_eq!(code, 200, "{silences}");
    assert!(
        silences.to_string().contains("dash-b1 is being replaced"),
        "the API lists the silence: {silences:#}"
    );
    b.wait_until(
        "the alert shown silenced",
        WAIT,
        Some(Duration::from_secs(1)),
        |b| {
            b.count(&format!(
                "table#alerts tr.alert[data-alert=\"{RULE}\"][data-mute=silenced]"
            )) == 1
        },
    );
    b.screenshot("alerts");

    // Every other page, with its navigation, as the operator sees it.
    for (path, selectors, name) in [
        (
            "/ui/changes",
            &[
                "table#versions tr.version",
                "pre#diff",
                "form#rollback-form",
            ][..],
            "changes",
        ),
        ("/ui/monitors", &["table#monitors"][..], "monitors"),
        ("/ui/remediations", &["table#runs"][..], "remediations"),
        ("/ui/review", &["#review"][..], "review"),
        (
            "/ui/notifications",
            &["table#notifications"][..],
            "notifications",
        ),
    ] {
        b.goto(&format!("{base}{path}"));
        for selector in selectors {
            b.wait_for_css(selector, PAGE);
        }
        check_chrome(&b, "ana (operator)");
        b.screenshot(name);
    }

    // The viewer: logs in after the operator logs out, reads, and may not drain.
    b.goto(&format!("{base}/?refresh=0"));
    b.click_to_load("form#logout [type=submit]");
    b.wait_for_css("form#login", PAGE);
    b.goto(&format!("{base}/"));
    b.wait_for_css("form#login", PAGE);
    assert_eq!(
        b.path(),
        "/login",
        "logged out, the overview sends to the login page"
    );
    log_in(&b, VIEWER, "wallboard (viewer)");
    b.goto(&format!("{base}/ui/upstreams/app"));
    b.wait_for_css(&row(b3), PAGE);
    assert_eq!(
        b.count("form.drain, form.enable"),
        0,
        "a viewer sees no forms"
    );
    b.screenshot("upstream-viewer");
    let viewer_csrf = b
        .attr("meta[name=\"csrf-token\"]", "content")
        .expect("the page's CSRF token");
    let viewer_cookie = format!(
        "ballast_session={}",
        b.cookie("ballast_session")
            .expect("the viewer's session cookie")
            .value()
    );
    let r = http(
        gw.admin,
        "POST",
        &drain_b3,
        &[FORM, ("Cookie", &viewer_cookie)],
        &form(&[("csrf", &viewer_csrf)]),
    );
    assert_eq!(r.status, 403, "a viewer's drain: {}", r.body);
    assert_eq!(state(&gw, b3), "up", "a viewer's drain drained {b3}");
}

/// Logs in on `/login` with `token` and waits for the overview showing `who`.
fn log_in(b: &Browser, token: &str, who: &str) {
    let held = submit_login(b, token);
    if b.count("table#servers") == 0 {
        b.fail(&format!(
            "the login was refused with HTTP {:?}. {held}",
            b.status()
        ));
    }
    assert_eq!(b.path(), "/", "the login redirects to the overview");
    check_chrome(b, who);
}

/// Types `token` into the login form, submits it, and waits for the overview or
/// `#login-error`. Answers what the form posted as its `csrf` field against the
/// `ballast_login` cookie the browser held then: the login's double-submit check compares the
/// two, so a mismatch explains a "form expired" refusal.
fn submit_login(b: &Browser, token: &str) -> String {
    b.wait_for_css("form#login[method=post][action=\"/login\"]", PAGE);
    b.fill("form#login input[name=token]", token);
    let field = b.attr("form#login input[name=csrf]", "value");
    let held = b.cookie("ballast_login").map(|c| c.value().to_string());
    b.click_to_load("#login-submit");
    format!(
        "The form's csrf field was {field:?}, the browser's ballast_login cookie {held:?} \
         just before submitting (a request the browser makes by itself, such as \
         /favicon.ico, that is redirected to /login replaces the cookie)"
    )
}

/// The parts every page has: the navigation, who is logged in, the CSRF meta tag, logout.
fn check_chrome(b: &Browser, who: &str) {
    for href in [
        "/",
        "/ui/alerts",
        "/ui/incidents",
        "/ui/changes",
        "/ui/monitors",
        "/ui/remediations",
        "/ui/review",
        "/ui/notifications",
    ] {
        let link = format!("nav#nav a[href=\"{href}\"]");
        if b.count(&link) == 0 {
            b.fail(&format!("no `{link}` on the page"));
        }
    }
    let shown = b.text("#who");
    assert!(shown.contains(who), "#who shows {shown:?}, not {who:?}");
    let token = b.attr("meta[name=\"csrf-token\"]", "content");
    assert!(
        token.is_some_and(|t| !t.is_empty()),
        "an empty CSRF meta tag"
    );
    b.wait_for_css("form#logout", PAGE);
}

/// The incident the alert opened: from the overview to its page, the timeline, a note, the
/// incidents list, and the post-mortem fetched with the session cookie.
fn incident_pages(b: &Browser, gw: &Gateway, base: &str, session: &str) {
    b.goto(&format!("{base}/?refresh=0"));
    b.wait_until(
        "an open incident on the overview",
        WAIT,
        Some(Duration::from_secs(1)),
        |b| b.count("#open-incidents li.incident") > 0,
    );
    let id = b
        .attr("#open-incidents li.incident", "data-id")
        .expect("the incident's data-id");
    b.click_to_load(&format!(
        "#open-incidents li.incident[data-id=\"{id}\"] a[href=\"/ui/incidents/{id}\"]"
    ));
    b.wait_for_css("ol#timeline li.entry", PAGE);
    assert_eq!(b.path(), format!("/ui/incidents/{id}"));
    // The page's h1 is `#ID title`.
    let h1 = b.text("h1");
    let title = h1
        .strip_prefix(&format!("#{id} "))
        .unwrap_or(&h1)
        .to_string();
    assert!(!title.is_empty(), "the incident page's h1 is {h1:?}");
    b.wait_for_css("form.status", PAGE);

    b.fill(
        "form#note-form textarea[name=text]",
        "browser note: b1 replaced",
    );
    b.click_to_load("#note-submit");
    b.wait_for_css("#flash", PAGE);
    let timeline = b.text("ol#timeline");
    assert!(timeline.contains("browser note: b1 replaced"), "{timeline}");
    b.screenshot("incident");

    let href = b
        .attr("a#postmortem", "href")
        .expect("the post-mortem link's href");
    assert_eq!(href, format!("/ui/incidents/{id}/postmortem.md"));
    let r = http(
        gw.admin,
        "GET",
        &href,
        &[("Cookie", &format!("ballast_session={session}"))],
        "",
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let disposition = r.header("content-disposition").unwrap_or_default();
    assert!(
        disposition.starts_with("attachment"),
        "Content-Disposition {disposition:?}"
    );
    assert!(
        r.body.contains(&title),
        "the post-mortem names {title:?}: {}",
        r.body
    );
    assert!(
        r.body.lines().any(|l| l.starts_with("# ")),
        "no Markdown heading: {}",
        r.body
    );
    assert!(r.body.contains("browser note: b1 replaced"), "{}", r.body);

    b.goto(&format!("{base}/ui/incidents"));
    b.wait_for_css(
        &format!("table#incidents tr.incident[data-id=\"{id}\"] a[href=\"/ui/incidents/{id}\"]"),
        PAGE,
    );
    b.screenshot("incidents");
}

fn config(port: u16, db: &std::path::Path, servers: &[SocketAddr]) -> String {
    let servers: Vec<String> = servers
        .iter()
        .map(|a| format!("{{ addr = \"{a}\" }}"))
        .collect();
    format!(
        r#"
[admin]
listen = "{{ADMIN}}"
tokens = [
  {{ name = "ana", token = "{OPERATOR}", role = "operator" }},
  {{ name = "wallboard", token = "{VIEWER}", role = "viewer" }},
]
[log]
access = "{{ACCESS_LOG}}"
[store]
url = "sqlite://{db}"

[alerting]
default_rules = false

[[listener]]
name = "web"
listen = "127.0.0.1:{port}"

[[route]]
name = "shop"
upstream = "app"
function = "core"

[[upstream]]
name = "app"
health = {{ path = "/healthz", interval = "1s", timeout = "500ms", fall = 2 }}
servers = [{servers}]

[[monitor]]
name = "gateway"
kind = "gateway"
interval = "1s"

[[rule]]
name = "{RULE}"
monitor = "gateway"
value = "healthy_servers"
match = {{ upstream = "app" }}
min = {{ below = 3 }}
"#,
        db = db.display(),
        servers = servers.join(", "),
    )
}

/// `GET` on the admin API with the operator's bearer token: (status, JSON or the text).
fn api(gw: &Gateway, path: &str) -> (u16, Value) {
    let bearer = format!("Bearer {OPERATOR}");
    let r = http(gw.admin, "GET", path, &[("Authorization", &bearer)], "");
    let body = serde_json::from_str(&r.body).unwrap_or(Value::String(r.body));
    (r.status, body)
}

/// `server`'s state in `app` as the API shows it.
fn state(gw: &Gateway, server: SocketAddr) -> String {
    let (code, status) = api(gw, "/api/v1/status");
    assert_eq!(code, 200, "{status}");
    status["upstreams"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|u| u["name"] == "app")
        .flat_map(|u| u["servers"].as_array().cloned().unwrap_or_default())
        .find(|s| s["addr"] == server.to_string())
        .and_then(|s| s["state"].as_str().map(str::to_string))
        .unwrap_or_else(|| panic!("{server} not in the status: {status:#}"))
}

const FORM: (&str, &str) = ("Content-Type", "application/x-www-form-urlencoded");

/// An `application/x-www-form-urlencoded` body.
fn form(pairs: &[(&str, &str)]) -> String {
    let enc = |s: &str| {
        s.bytes()
            .map(|c| match c {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                    (c as char).to_string()
                }
                _ => format!("%{c:02X}"),
            })
            .collect::<String>()
    };
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// One HTTP/1.1 request over a fresh connection, outside the browser.
fn http(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Wire {
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        req.push_str(&format!("{name}: {value}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    Wire::parse(&raw_exchange(addr, req.as_bytes()))
}
