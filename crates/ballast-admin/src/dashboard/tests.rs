//! The dashboard's access rules through the router (`oneshot`, no sockets): login turns a
//! token into a session, a page without one sends the browser to `/login`, a viewer may not
//! act, a form without its CSRF token is refused, and an operator's drain reaches the gateway
//! with the person's name. The pages themselves are driven in real Chromium by the binary's
//! `dashboard_browser` test.

use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use ballast_core::snapshot::{ServerStatus, UpstreamStatus};
use ballast_core::{Command, CommandError, Issued, Report, Snapshot, Stamped};
use http_body_util::BodyExt;
use tower::ServiceExt;

use crate::{router, Access, AdminState, BoxFuture, Control};

#[derive(Default)]
struct Gateway {
    applied: Mutex<Vec<Issued>>,
}

impl Control for Gateway {
    fn status(&self) -> Snapshot {
        let server = |addr: &str| ServerStatus {
            addr: addr.into(),
            name: None,
            weight: 1,
            effective_weight: 1.0,
            backup: false,
            state: "up".into(),
            health_up: true,
            drained: false,
            ejected_for_ms: 0,
            inflight: 0,
            latency_ewma_ms: 1.5,
            idle_connections: 0,
            ejections: 0,
            breaker: None,
            breaker_opened: 0,
        };
        Snapshot {
            listeners: Vec::new(),
            routes: Vec::new(),
            upstreams: vec![UpstreamStatus {
                name: "app".into(),
                balance: "round_robin".into(),
                sticky_cookie: None,
                primaries_available: true,
                limit: None,
                servers: vec![server("127.0.0.1:1"), server("127.0.0.1:2")],
            }],
            open_connections: 0,
        }
    }
    fn metrics(&self) -> String {
        "# EOF\n".into()
    }
    fn events(&self, _after: u64) -> Vec<Stamped> {
        Vec::new()
    }
    fn apply(&self, issued: Issued) -> BoxFuture<'_, Result<Report, CommandError>> {
        Box::pin(async move {
            let report = match &issued.command {
                Command::Drain { upstream, server } => Report::Drained {
                    upstream: upstream.clone(),
                    server: server.clone(),
                    changed: true,
                },
                _ => return Err(CommandError::Refused("not here".into())),
            };
            self.applied.lock().unwrap().push(issued);
            Ok(report)
        })
    }
}

fn app(access: Access) -> (Router, Arc<Gateway>) {
    let gw = Arc::new(Gateway::default());
    let r = router(AdminState {
        control: gw.clone(),
        access,
    });
    (r, gw)
}

use super::session::tests::tokens;

struct Answer {
    status: StatusCode,
    location: String,
    cookies: Vec<String>,
    body: String,
}

async fn send(r: &Router, method: &str, uri: &str, cookie: &str, form: &str) -> Answer {
    let mut b = Request::builder().method(method).uri(uri);
    if !cookie.is_empty() {
        b = b.header(header::COOKIE, cookie);
    }
    if method == "POST" {
        b = b.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    }
    let resp = r
        .clone()
        .oneshot(b.body(Body::from(form.to_string())).unwrap())
        .await
        .unwrap();
    let h = resp.headers().clone();
    Answer {
        status: resp.status(),
        location: h
            .get(header::LOCATION)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default(),
        cookies: h
            .get_all(header::SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .collect(),
        body: String::from_utf8(
            resp.into_body()
                .collect()
                .await
                .unwrap()
                .to_bytes()
                .to_vec(),
        )
        .unwrap(),
    }
}

/// The `name=value` part of the Set-Cookie that sets `name`.
fn cookie_of(a: &Answer, name: &str) -> String {
    a.cookies
        .iter()
        .find(|c| c.starts_with(&format!("{name}=")))
        .map(|c| c.split(';').next().unwrap().to_string())
        .unwrap_or_else(|| panic!("no {name} cookie in {:?}", a.cookies))
}

fn csrf_in(html: &str) -> String {
    let at = html
        .find("name=\"csrf-token\" content=\"")
        .expect("csrf meta")
        + 27;
    html[at..at + 64].to_string()
}

/// Logs in with `token`; the session cookie.
async fn login(r: &Router, token: &str) -> String {
    let form = send(r, "GET", "/login", "", "").await;
    assert_eq!(form.status, StatusCode::OK);
    let login_cookie = cookie_of(&form, super::session::LOGIN_COOKIE);
    let csrf = login_cookie.split_once('=').unwrap().1.to_string();
    let done = send(
        r,
        "POST",
        "/login",
        &login_cookie,
        &format!("token={token}&csrf={csrf}"),
    )
    .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    assert_eq!(done.location, "/");
    let set = done
        .cookies
        .iter()
        .find(|c| c.starts_with("ballast_session="))
        .unwrap();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict"),
        "{set}"
    );
    cookie_of(&done, super::session::COOKIE)
}

#[tokio::test]
async fn pages_need_a_login_and_a_wrong_token_is_refused() {
    let (r, _) = app(tokens());
    let a = send(&r, "GET", "/", "", "").await;
    assert_eq!(
        (a.status, a.location.as_str()),
        (StatusCode::SEE_OTHER, "/login")
    );
    let form = send(&r, "GET", "/login", "", "").await;
    let login_cookie = cookie_of(&form, super::session::LOGIN_COOKIE);
    let csrf = login_cookie.split_once('=').unwrap().1.to_string();
    let bad = send(
        &r,
        "POST",
        "/login",
        &login_cookie,
        &format!("token=nope&csrf={csrf}"),
    )
    .await;
    assert_eq!(bad.status, StatusCode::UNAUTHORIZED);
    assert!(bad.body.contains("login-error"));
    let stale = send(&r, "POST", "/login", "", "token=op-secret&csrf=x").await;
    assert_eq!(
        stale.status,
        StatusCode::FORBIDDEN,
        "no login cookie, no login"
    );
    let session = login(&r, "op-secret").await;
    let page = send(&r, "GET", "/", &session, "").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("ana (operator)"), "{}", page.body);
    assert!(page.body.contains("data-server=\"127.0.0.1:2\""));
    // The JSON API does not take the cookie: it keeps bearer tokens.
    let api = send(&r, "GET", "/api/v1/status", &session, "").await;
    assert_eq!(api.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn an_operator_drains_with_the_csrf_token_and_is_named() {
    let (r, gw) = app(tokens());
    let session = login(&r, "op-secret").await;
    let page = send(&r, "GET", "/ui/upstreams/app", &session, "").await;
    assert!(
        page.body.contains("form class=\"drain inline\""),
        "{}",
        page.body
    );
    let csrf = csrf_in(&page.body);
    let url = "/ui/servers/app/127.0.0.1:1/drain";
    let none = send(&r, "POST", url, &session, "back=/").await;
    assert_eq!(none.status, StatusCode::FORBIDDEN, "no CSRF token");
    let wrong = send(
        &r,
        "POST",
        url,
        &session,
        &format!("csrf={}&back=/", "0".repeat(64)),
    )
    .await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN, "a wrong CSRF token");
    assert!(gw.applied.lock().unwrap().is_empty(), "nothing was drained");
    let ok = send(
        &r,
        "POST",
        url,
        &session,
        &format!("csrf={csrf}&back=/ui/upstreams/app"),
    )
    .await;
    assert_eq!(
        (ok.status, ok.location.as_str()),
        (StatusCode::SEE_OTHER, "/ui/upstreams/app")
    );
    let applied = gw.applied.lock().unwrap().clone();
    assert_eq!(applied.len(), 1);
    assert_eq!(applied[0].by, ballast_core::Origin::Dashboard);
    assert_eq!(applied[0].who.as_deref(), Some("ana"));

    let next = send(&r, "GET", "/ui/upstreams/app", &session, "").await;
    assert!(
        next.body.contains("id=\"flash\""),
        "the result is shown once"
    );
    // Elsewhere than a path of ours, the form goes back to the overview.
    let away = send(
        &r,
        "POST",
        url,
        &session,
        &format!("csrf={csrf}&back=//evil.example/"),
    )
    .await;
    assert_eq!(away.location, "/");
}

#[tokio::test]
async fn a_viewer_reads_but_may_not_act() {
    let (r, gw) = app(tokens());
    let session = login(&r, "view-secret").await;
    let page = send(&r, "GET", "/ui/upstreams/app", &session, "").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        !page.body.contains("form class=\"drain"),
        "viewers see no buttons"
    );
    let csrf = csrf_in(&page.body);
    let drain = send(
        &r,
        "POST",
        "/ui/servers/app/127.0.0.1:1/drain",
        &session,
        &format!("csrf={csrf}"),
    )
    .await;
    assert_eq!(drain.status, StatusCode::FORBIDDEN);
    assert!(gw.applied.lock().unwrap().is_empty());
    let out = send(&r, "POST", "/logout", &session, &format!("csrf={csrf}")).await;
    assert_eq!(
        (out.status, out.location.as_str()),
        (StatusCode::SEE_OTHER, "/login"),
        "a viewer may log out"
    );
}

#[tokio::test]
async fn an_open_api_opens_a_local_session_whose_forms_still_need_the_token() {
    let (r, gw) = app(Access::open());
    let page = send(&r, "GET", "/", "", "").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("local (operator)"));
    let session = cookie_of(&page, super::session::COOKIE);
    let csrf = csrf_in(&page.body);
    let url = "/ui/servers/app/127.0.0.1:1/drain";
    // A page on another site can post the form, but has neither the cookie nor the token.
    assert_eq!(
        send(&r, "POST", url, "", "").await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        send(&r, "POST", url, &session, "").await.status,
        StatusCode::FORBIDDEN
    );
    let ok = send(&r, "POST", url, &session, &format!("csrf={csrf}")).await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER);
    assert_eq!(gw.applied.lock().unwrap()[0].who.as_deref(), Some("local"));
    let login = send(&r, "GET", "/login", "", "").await;
    assert_eq!(
        (login.status, login.location.as_str()),
        (StatusCode::SEE_OTHER, "/")
    );
}

#[tokio::test]
async fn pages_carry_strict_headers_and_assets_load_without_a_session() {
    let (r, _) = app(tokens());
    let css = send(&r, "GET", "/ui/style.css", "", "").await;
    assert_eq!(css.status, StatusCode::OK);
    let resp = r
        .clone()
        .oneshot(Request::get("/login").body(Body::empty()).unwrap())
        .await
        .unwrap();
    let h = resp.headers();
    assert!(h[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap()
        .contains("frame-ancestors 'none'"));
    assert_eq!(h[header::X_FRAME_OPTIONS], "DENY");
    assert_eq!(h[header::CACHE_CONTROL], "no-store");
}

#[tokio::test]
async fn logging_out_ends_the_session() {
    let (r, _) = app(tokens());
    let session = login(&r, "op-secret").await;
    let page = send(&r, "GET", "/", &session, "").await;
    let csrf = csrf_in(&page.body);
    let out = send(&r, "POST", "/logout", &session, &format!("csrf={csrf}")).await;
    assert_eq!(
        (out.status, out.location.as_str()),
        (StatusCode::SEE_OTHER, "/login")
    );
    let after = send(&r, "GET", "/", &session, "").await;
    assert_eq!(after.location, "/login");
}
