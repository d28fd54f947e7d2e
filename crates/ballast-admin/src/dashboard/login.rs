//! `/login` and `/logout`. The login form is protected by a double-submit CSRF token (a cookie
//! and a hidden field that must match), since there is no session yet to hold one.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Extension, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::session::{self, random_token, Viewer, COOKIE, LIFETIME, LOGIN_COOKIE};
use super::{form_field, render, see_other};
use crate::AdminState;

#[derive(Template)]
#[template(path = "login.html")]
struct Login<'a> {
    csrf: &'a str,
    error: Option<&'a str>,
}

const LOGIN_TTL: std::time::Duration = std::time::Duration::from_secs(3600);

fn login_page(status: StatusCode, secure: bool, error: Option<&str>) -> Response {
    let csrf = random_token();
    let mut resp = render(&Login { csrf: &csrf, error });
    *resp.status_mut() = status;
    if let Ok(v) =
        HeaderValue::from_str(&session::set_cookie(LOGIN_COOKIE, &csrf, LOGIN_TTL, secure))
    {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    resp
}

/// `GET /login`: the form, or the overview when no token is needed.
pub(crate) async fn form(State(state): State<AdminState>, headers: HeaderMap) -> Response {
    if state.access.is_open() {
        return see_other("/");
    }
    login_page(StatusCode::OK, session::behind_tls(&headers), None)
}

/// `POST /login`: a known token opens a session; anything else gets the form again, 401.
pub(crate) async fn submit(
    State(state): State<AdminState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let secure = session::behind_tls(&headers);
    if state.access.is_open() {
        return see_other("/");
    }
    let sent = form_field(&body, "csrf");
    let expected = session::cookie(&headers, LOGIN_COOKIE);
    let fresh = matches!((sent, expected), (Some(a), Some(b)) if session::same_secret(&a, &b));
    if !fresh {
        return login_page(
            StatusCode::FORBIDDEN,
            secure,
            Some("the login form expired: try again"),
        );
    }
    let token = form_field(&body, "token").unwrap_or_default();
    let token = token.trim();
    let Some(caller) = state.access.caller(token) else {
        tracing::warn!("dashboard login refused: unknown token");
        return login_page(
            StatusCode::UNAUTHORIZED,
            secure,
            Some("that token is not known"),
        );
    };
    let Some(id) = state.access.sessions().open(Some(token)) else {
        return login_page(
            StatusCode::SERVICE_UNAVAILABLE,
            secure,
            Some("no session could be opened (no random numbers)"),
        );
    };
    tracing::info!(who = %caller.name, "dashboard login");
    let mut resp = see_other("/");
    for c in [
        session::set_cookie(COOKIE, &id, LIFETIME, secure),
        session::set_cookie(LOGIN_COOKIE, "", std::time::Duration::ZERO, secure),
    ] {
        if let Ok(v) = HeaderValue::from_str(&c) {
            resp.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    resp
}

/// `POST /logout`: ends the session.
pub(crate) async fn logout(
    State(state): State<AdminState>,
    Extension(viewer): Extension<Viewer>,
    headers: HeaderMap,
) -> Response {
    state.access.sessions().close(&viewer.session);
    let mut resp = see_other(if state.access.is_open() {
        "/"
    } else {
        "/login"
    });
    let gone = session::set_cookie(
        COOKIE,
        "",
        std::time::Duration::ZERO,
        session::behind_tls(&headers),
    );
    if let Ok(v) = HeaderValue::from_str(&gone) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    resp.into_response()
}
