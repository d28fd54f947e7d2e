//! Who may use the admin API: bearer tokens, each with a name and a role. A `viewer` reads (GET
//! and HEAD); an `operator` also acts (drain, silence, acknowledge, roll back...). Without any
//! token the API is open, which the config allows only on a loopback address.
//!
//! The caller's name is put in a request header only the middleware can set, so that what a
//! person does is recorded with who did it: an authenticated name wins over a `by` written in
//! a body.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::{AdminState, ApiError};

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Viewer,
    Operator,
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub name: String,
    pub role: Role,
}

type Tokens = Vec<(Arc<str>, Caller)>;

/// The tokens the API accepts; cheap to clone (clones share the tokens, so a reload's
/// [`Access::replace`] reaches the running listener).
#[derive(Clone, Default)]
pub struct Access {
    tokens: Arc<std::sync::RwLock<Arc<Tokens>>>,
    /// The dashboard's logged-in browsers (see [`crate::dashboard::session`]).
    sessions: crate::dashboard::session::Sessions,
}

impl std::fmt::Debug for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let tokens = self.current();
        let names: Vec<&str> = tokens.iter().map(|(_, c)| c.name.as_str()).collect();
        f.debug_struct("Access").field("tokens", &names).finish()
    }
}

impl Access {
    /// No token: the API is open.
    pub fn open() -> Self {
        Access::default()
    }

    /// One operator token named `admin`, or an open API.
    pub fn single(token: Option<&str>) -> Self {
        Access::with(token.map(|t| {
            (
                t.to_string(),
                Caller {
                    name: "admin".into(),
                    role: Role::Operator,
                },
            )
        }))
    }

    /// These tokens (secret, caller).
    pub fn with(tokens: impl IntoIterator<Item = (String, Caller)>) -> Self {
        let a = Access::default();
        a.replace(tokens);
        a
    }

    /// Accepts these tokens from now on (a reload that rotated them).
    pub fn replace(&self, tokens: impl IntoIterator<Item = (String, Caller)>) {
        let next: Tokens = tokens
            .into_iter()
            .map(|(secret, c)| (Arc::from(secret), c))
            .collect();
        *self.tokens.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(next);
    }

    fn current(&self) -> Arc<Tokens> {
        self.tokens
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The dashboard's sessions.
    pub fn sessions(&self) -> &crate::dashboard::session::Sessions {
        &self.sessions
    }

    pub fn is_open(&self) -> bool {
        self.current().is_empty()
    }

    /// The caller a bearer token belongs to (compared in constant time).
    pub fn caller(&self, bearer: &str) -> Option<Caller> {
        let mut found = None;
        for (secret, caller) in self.current().iter() {
            if constant_time_eq(bearer.as_bytes(), secret.as_bytes()) {
                found = Some(caller.clone());
            }
        }
        found
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The middleware: 401 without a known token, 403 for a viewer that tries to act.
/// The request header the middleware sets to the authenticated caller's name (any such header
/// a client sent is removed first, so it cannot be forged).
pub const CALLER_HEADER: &str = "ballast-caller";

pub(crate) async fn auth(
    State(state): State<AdminState>,
    mut req: Request,
    next: Next,
) -> Response {
    req.headers_mut().remove(CALLER_HEADER);
    if state.access.is_open() {
        return next.run(req).await;
    }
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let Some(caller) = given.and_then(|g| state.access.caller(g)) else {
        return ApiError::Unauthorized.into_response();
    };
    let reads = matches!(*req.method(), Method::GET | Method::HEAD);
    if caller.role == Role::Viewer && !reads {
        return (
            StatusCode::FORBIDDEN,
            Json(json!({
                "error": format!("{} has a viewer's token: it may read, not act", caller.name)
            })),
        )
            .into_response();
    }
    if let Ok(v) = axum::http::HeaderValue::from_str(&caller.name) {
        req.headers_mut().insert(CALLER_HEADER, v);
    }
    next.run(req).await
}

/// The authenticated caller's name, if the request carried a token.
pub fn caller_name(headers: &axum::http::HeaderMap) -> Option<String> {
    headers
        .get(CALLER_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callers_by_token() {
        let a = Access::with([
            (
                "secret-ana".to_string(),
                Caller {
                    name: "ana".into(),
                    role: Role::Operator,
                },
            ),
            (
                "secret-wall".to_string(),
                Caller {
                    name: "wall".into(),
                    role: Role::Viewer,
                },
            ),
        ]);
        assert!(!a.is_open());
        assert_eq!(
            a.caller("secret-ana").map(|c| c.name),
            Some("ana".to_string())
        );
        assert_eq!(a.caller("secret-wall").map(|c| c.role), Some(Role::Viewer));
        assert_eq!(a.caller("secret"), None);
        assert_eq!(a.caller(""), None);
        assert!(Access::single(None).is_open());
        // A clone sees a rotation.
        let running = a.clone();
        a.replace([(
            "new-secret".to_string(),
            Caller {
                name: "ana".into(),
                role: Role::Operator,
            },
        )]);
        assert_eq!(running.caller("secret-ana"), None);
        assert!(running.caller("new-secret").is_some());
        assert!(format!("{a:?}").contains("ana") && !format!("{a:?}").contains("secret"));
    }
}
