//! The web dashboard on the admin listener at `/`: what an operator would otherwise read as
//! JSON, and the buttons for what they would otherwise do with curl (drain, silence,
//! acknowledge, move an incident, roll back).
//!
//! Server-rendered HTML from askama templates (`crates/ballast-admin/templates/`), SVG charts
//! drawn in Rust ([`svg`]), one stylesheet, and a ten-line script that refreshes a page every
//! few seconds. No JavaScript build step, nothing fetched from elsewhere, so it works on an
//! air-gapped host and under a strict Content-Security-Policy.
//!
//! Every page reads the gateway through the same [`Control`](crate::Control) trait as the
//! JSON API, so what a page shows and what the API answers cannot drift apart. Access is in
//! [`session`]: a login page turns a token into a session cookie, viewers read, operators act,
//! and every form carries the session's CSRF token ([`guard`] checks both before a handler
//! runs). What a person does here is recorded under their token's name, as the API records it.

pub mod session;
pub mod svg;

mod alerts;
mod changes;
mod format;
mod incidents;
mod login;
mod monitors;
mod overview;
mod pages;
mod upstreams;

use askama::Template;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;

use crate::AdminState;
use session::{Viewer, COOKIE, LIFETIME};

/// The largest form body a dashboard POST may send.
const FORM_MAX_BYTES: usize = 64 * 1024;

/// The dashboard's routes: public ones (login, assets) and the pages behind [`guard`].
pub(crate) fn routes(state: AdminState) -> Router<AdminState> {
    let pages = Router::new()
        .route("/", get(overview::page))
        .route("/ui/upstreams/{name}", get(upstreams::page))
        .route(
            "/ui/servers/{upstream}/{server}/{action}",
            post(upstreams::act),
        )
        .route("/ui/alerts", get(alerts::page))
        .route("/alerts", get(alerts::from_message))
        .route("/ui/alerts/{id}/ack", post(alerts::ack))
        .route("/ui/silences", post(alerts::silence))
        .route("/ui/silences/{id}/expire", post(alerts::expire))
        .route("/ui/incidents", get(incidents::list))
        .route("/ui/incidents/{id}", get(incidents::page))
        .route("/ui/incidents/{id}/status", post(incidents::status))
        .route("/ui/incidents/{id}/notes", post(incidents::note))
        .route(
            "/ui/incidents/{id}/postmortem.md",
            get(incidents::postmortem),
        )
        .route("/ui/changes", get(changes::page))
        .route("/ui/rollback", post(changes::rollback))
        .route("/ui/monitors", get(monitors::page))
        .route("/ui/remediations", get(pages::remediations))
        .route("/ui/review", get(pages::review))
        .route("/ui/notifications", get(pages::notifications))
        .route("/logout", post(login::logout))
        .layer(middleware::from_fn_with_state(state, guard));
    Router::new()
        .route("/login", get(login::form).post(login::submit))
        .route("/ui/style.css", get(style))
        .route("/ui/refresh.js", get(script))
        .merge(pages)
        .layer(middleware::from_fn(headers))
}

/// What the base layout needs on every page.
pub(crate) struct Ctx {
    pub title: String,
    /// The nav entry to highlight.
    pub active: &'static str,
    pub who: String,
    pub role: &'static str,
    pub csrf: String,
    pub may_act: bool,
    /// `(ok, text)`: what the last form did.
    pub flash: Option<(bool, String)>,
    /// Whether the page refreshes itself.
    pub refresh: bool,
    /// The page's own path, where its forms come back to.
    pub back: String,
}

impl Ctx {
    pub fn new(
        state: &AdminState,
        viewer: &Viewer,
        title: impl Into<String>,
        active: &'static str,
        back: impl Into<String>,
    ) -> Self {
        Ctx {
            title: title.into(),
            active,
            who: viewer.caller.name.clone(),
            role: match viewer.caller.role {
                crate::Role::Operator => "operator",
                crate::Role::Viewer => "viewer",
            },
            csrf: viewer.csrf.clone(),
            may_act: viewer.may_act(),
            flash: state.access.sessions().take_flash(&viewer.session),
            refresh: false,
            back: back.into(),
        }
    }

    pub fn refreshing(mut self) -> Self {
        self.refresh = true;
        self
    }

    /// The CSS class of a nav entry.
    pub fn nav(&self, entry: &str) -> &'static str {
        if self.active == entry {
            "active"
        } else {
            ""
        }
    }
}

/// Renders a page, or a plain 500 that says what failed.
pub(crate) fn render(t: &impl Template) -> Response {
    match t.render() {
        Ok(html) => ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the page could not be rendered: {e}"),
        )
            .into_response(),
    }
}

#[derive(Template)]
#[template(path = "refused.html")]
struct Refused<'a> {
    status: u16,
    reason: &'a str,
}

/// A short HTML page for a refused request (403, 404, 400...).
pub(crate) fn refused(status: StatusCode, reason: &str) -> Response {
    let mut r = render(&Refused {
        status: status.as_u16(),
        reason,
    });
    *r.status_mut() = status;
    r
}

/// A submitted form: its fields, and the page the browser goes back to, with a one-line
/// result left for it (a path of ours from the form's `back` field, else `default_back`).
pub(crate) struct Posted<'a> {
    state: &'a AdminState,
    viewer: &'a Viewer,
    body: axum::body::Bytes,
    back: String,
}

impl<'a> Posted<'a> {
    pub fn new(
        state: &'a AdminState,
        viewer: &'a Viewer,
        body: axum::body::Bytes,
        default_back: impl Into<String>,
    ) -> Self {
        let back = form_field(&body, "back").unwrap_or_else(|| default_back.into());
        Posted {
            state,
            viewer,
            body,
            back,
        }
    }

    /// A field's value; `None` when the form has no such field.
    pub fn field(&self, name: &str) -> Option<String> {
        form_field(&self.body, name)
    }

    /// Who submitted it.
    pub fn who(&self) -> String {
        self.viewer.caller.name.clone()
    }

    /// Back to the page, saying what happened.
    pub fn back(&self, ok: bool, message: String) -> Response {
        self.state
            .access
            .sessions()
            .flash(&self.viewer.session, ok, message);
        see_other(local_path(&self.back))
    }

    /// Back to the page with `ok(value)`, or with `failed: error`.
    pub fn outcome<T, E: std::fmt::Display>(
        &self,
        result: Result<T, E>,
        ok: impl FnOnce(T) -> String,
        failed: &str,
    ) -> Response {
        match result {
            Ok(v) => self.back(true, ok(v)),
            Err(e) => self.back(false, format!("{failed}: {e}")),
        }
    }
}

/// `back` when it is a path on this listener, else `/`.
pub(crate) fn local_path(back: &str) -> &str {
    let ours = back.starts_with('/')
        && !back.starts_with("//")
        && !back.contains('\\')
        && !back.chars().any(char::is_control);
    if ours {
        back
    } else {
        "/"
    }
}

pub(crate) fn see_other(to: &str) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

/// The gate in front of every page: a live session (or, on an open API, a new one), and for a
/// POST an operator with the session's CSRF token in the form. Puts the [`Viewer`] in the
/// request's extensions.
async fn guard(State(state): State<AdminState>, req: Request, next: Next) -> Response {
    let sessions = state.access.sessions();
    let known =
        session::cookie(req.headers(), COOKIE).and_then(|id| sessions.viewer(&id, &state.access));
    let post = req.method() == Method::POST;
    let mut new_cookie = None;
    let viewer = match known {
        Some(v) => v,
        None if post => {
            return refused(
                StatusCode::FORBIDDEN,
                "no session: open the page again (or log in) and repeat",
            )
        }
        None if state.access.is_open() => {
            let opened = sessions
                .open(None)
                .and_then(|id| sessions.viewer(&id, &state.access));
            let Some(v) = opened else {
                return refused(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "no random numbers for a session",
                );
            };
            new_cookie = Some(session::set_cookie(
                COOKIE,
                &v.session,
                LIFETIME,
                session::behind_tls(req.headers()),
            ));
            v
        }
        None => return see_other("/login"),
    };
    let mut req = if post {
        // Anyone may log out; everything else a form does is acting.
        if !viewer.may_act() && req.uri().path() != "/logout" {
            return refused(
                StatusCode::FORBIDDEN,
                &format!(
                    "{} is logged in with a viewer's token: it may look, not act",
                    viewer.caller.name
                ),
            );
        }
        let (parts, body) = req.into_parts();
        let Ok(bytes) = axum::body::to_bytes(body, FORM_MAX_BYTES).await else {
            return refused(StatusCode::PAYLOAD_TOO_LARGE, "the form is too large");
        };
        let sent = form_field(&bytes, "csrf");
        if !sent.is_some_and(|s| session::same_secret(&s, &viewer.csrf)) {
            return refused(
                StatusCode::FORBIDDEN,
                "the form's CSRF token is missing or wrong: reload the page and try again",
            );
        }
        Request::from_parts(parts, Body::from(bytes))
    } else {
        req
    };
    req.extensions_mut().insert(viewer);
    let mut resp = next.run(req).await;
    if let Some(c) = new_cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
        resp.headers_mut().append(header::SET_COOKIE, c);
    }
    resp
}

/// One field of an `application/x-www-form-urlencoded` body.
pub(crate) fn form_field(body: &[u8], name: &str) -> Option<String> {
    serde_urlencoded::from_bytes::<Vec<(String, String)>>(body)
        .ok()?
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

/// Headers for every dashboard answer: nothing from elsewhere may load, no framing, no caching
/// of pages that show live state or carry a CSRF token.
async fn headers(req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    resp
}

async fn style() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        include_str!("../../templates/style.css"),
    )
        .into_response()
}

async fn script() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        include_str!("../../templates/refresh.js"),
    )
        .into_response()
}

#[cfg(test)]
mod tests;
