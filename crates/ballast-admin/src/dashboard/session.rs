//! Dashboard sessions: a person logs in once with an admin token and the browser keeps a session
//! cookie (`HttpOnly; SameSite=Strict`, `Secure` behind TLS) instead of the token. Every session
//! has its own CSRF token, which every form carries and every POST must return.
//!
//! The session keeps the token it was opened with, in memory only, and each request looks the
//! token up again: a reload that rotates or removes a token ends its sessions at once. Without
//! any token (an open API on loopback) the dashboard still opens a session, as `local`, so that
//! its forms carry a CSRF token too: a page on another site must not be able to drain servers
//! through a browser on the operator's machine.
//!
//! ```text
//!   no cookie ──GET /login──▶ login page (+ login CSRF cookie)
//!       │                        │ POST /login token=… csrf=…
//!       │                        ▼
//!       │  open API: first page ─▶ session { token?, csrf, expires } ──POST /logout──▶ gone
//!       │                        │ expires (12 h) or token rotated ──▶ back to /login
//! ```

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ring::rand::{SecureRandom, SystemRandom};

use crate::access::{Access, Caller, Role};

/// The session cookie's name.
pub const COOKIE: &str = "ballast_session";
/// The login form's CSRF cookie (a double-submit token: there is no session yet).
pub const LOGIN_COOKIE: &str = "ballast_login";
/// How long a session lasts from login.
pub const LIFETIME: Duration = Duration::from_secs(12 * 3600);
/// At most this many sessions are kept; the oldest go first.
const MAX_SESSIONS: usize = 10_000;

/// One logged-in browser.
#[derive(Clone)]
struct Session {
    /// The token it logged in with; `None` on an open API.
    token: Option<Arc<str>>,
    csrf: Arc<str>,
    expires: Instant,
    /// A one-line message for the next page (what the last form did), and whether it went well.
    flash: Option<(bool, String)>,
}

/// The sessions of the running listener; clones share them.
#[derive(Clone, Default)]
pub struct Sessions {
    inner: Arc<Mutex<HashMap<String, Session>>>,
}

/// Who is looking at a page, and the CSRF token their forms carry.
#[derive(Debug, Clone)]
pub struct Viewer {
    pub caller: Caller,
    pub csrf: String,
    pub session: String,
}

impl Viewer {
    pub fn may_act(&self) -> bool {
        self.caller.role == Role::Operator
    }
}

/// A random token: 32 bytes from the system's CSPRNG, hex.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    // The system RNG fails only when the kernel has none; then no session can be safe.
    if SystemRandom::new().fill(&mut bytes).is_err() {
        return String::new();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Sessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Opens a session for `token` (`None`: the open API); its id.
    pub fn open(&self, token: Option<&str>) -> Option<String> {
        let id = random_token();
        let csrf = random_token();
        if id.is_empty() || csrf.is_empty() {
            return None;
        }
        let now = Instant::now();
        let mut all = self.lock();
        all.retain(|_, s| s.expires > now);
        if all.len() >= MAX_SESSIONS {
            if let Some(oldest) = all
                .iter()
                .min_by_key(|(_, s)| s.expires)
                .map(|(k, _)| k.clone())
            {
                all.remove(&oldest);
            }
        }
        all.insert(
            id.clone(),
            Session {
                token: token.map(Arc::from),
                csrf: Arc::from(csrf),
                expires: now + LIFETIME,
                flash: None,
            },
        );
        Some(id)
    }

    /// The viewer of session `id`, if it is live and its token still valid.
    pub fn viewer(&self, id: &str, access: &Access) -> Option<Viewer> {
        let session = {
            let mut all = self.lock();
            match all.get(id) {
                Some(s) if s.expires > Instant::now() => s.clone(),
                Some(_) => {
                    all.remove(id);
                    return None;
                }
                None => return None,
            }
        };
        let caller = match (&session.token, access.is_open()) {
            (None, true) => Caller {
                name: "local".into(),
                role: Role::Operator,
            },
            (Some(token), false) => access.caller(token)?,
            // Tokens were added or all removed since: log in again.
            _ => {
                self.close(id);
                return None;
            }
        };
        Some(Viewer {
            caller,
            csrf: session.csrf.to_string(),
            session: id.to_string(),
        })
    }

    pub fn close(&self, id: &str) {
        self.lock().remove(id);
    }

    /// Leaves a message for the session's next page.
    pub fn flash(&self, id: &str, ok: bool, message: String) {
        if let Some(s) = self.lock().get_mut(id) {
            s.flash = Some((ok, message));
        }
    }

    /// Takes the message left for this page, if any.
    pub fn take_flash(&self, id: &str) -> Option<(bool, String)> {
        self.lock().get_mut(id).and_then(|s| s.flash.take())
    }
}

/// Compares two secrets in constant time (for their common length).
pub fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && !a.is_empty()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The value of cookie `name` in a request's `Cookie` headers.
pub fn cookie(headers: &axum::http::HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// A `Set-Cookie` value: HttpOnly and SameSite=Strict always, Secure when the browser reached
/// us over TLS (a TLS-terminating proxy in front says so with `X-Forwarded-Proto: https`).
pub fn set_cookie(name: &str, value: &str, max_age: Duration, secure: bool) -> String {
    format!(
        "{name}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
        max_age.as_secs(),
        if secure { "; Secure" } else { "" }
    )
}

/// Whether the browser's connection is TLS, as far as we can tell.
pub fn behind_tls(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("https"))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// An operator `ana` (`op-secret`) and a viewer `wall` (`view-secret`).
    pub(crate) fn tokens() -> Access {
        Access::with(
            [
                ("op-secret", "ana", Role::Operator),
                ("view-secret", "wall", Role::Viewer),
            ]
            .map(|(secret, name, role)| {
                (
                    secret.to_string(),
                    Caller {
                        name: name.into(),
                        role,
                    },
                )
            }),
        )
    }

    #[test]
    fn a_session_follows_its_token_and_ends_when_the_token_is_rotated() {
        let access = tokens();
        let s = Sessions::default();
        let id = s.open(Some("view-secret")).unwrap();
        let v = s.viewer(&id, &access).unwrap();
        assert_eq!(v.caller.name, "wall");
        assert!(!v.may_act());
        assert_eq!(v.csrf.len(), 64);
        assert!(s.viewer("nope", &access).is_none());
        access.replace([(
            "op-secret".to_string(),
            Caller {
                name: "ana".into(),
                role: Role::Operator,
            },
        )]);
        assert!(s.viewer(&id, &access).is_none(), "a rotated token ends it");
    }

    #[test]
    fn an_open_api_gets_a_local_operator_and_tokens_added_later_end_it() {
        let access = Access::open();
        let s = Sessions::default();
        let id = s.open(None).unwrap();
        let v = s.viewer(&id, &access).unwrap();
        assert_eq!(v.caller.name, "local");
        assert!(v.may_act());
        access.replace([(
            "op-secret".to_string(),
            Caller {
                name: "ana".into(),
                role: Role::Operator,
            },
        )]);
        assert!(s.viewer(&id, &access).is_none());
    }

    #[test]
    fn flashes_are_taken_once_and_tokens_are_random() {
        let s = Sessions::default();
        let id = s.open(None).unwrap();
        s.flash(&id, true, "drained".into());
        assert_eq!(s.take_flash(&id), Some((true, "drained".to_string())));
        assert_eq!(s.take_flash(&id), None);
        assert_ne!(random_token(), random_token());
    }

    #[test]
    fn cookies_are_read_among_others_and_written_strict() {
        let mut h = axum::http::HeaderMap::new();
        h.append("cookie", "a=1; ballast_session=abc".parse().unwrap());
        h.append("cookie", "b=2".parse().unwrap());
        assert_eq!(cookie(&h, COOKIE).as_deref(), Some("abc"));
        assert_eq!(cookie(&h, "b").as_deref(), Some("2"));
        assert_eq!(cookie(&h, "c"), None);
        let c = set_cookie(COOKIE, "x", LIFETIME, true);
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Strict") && c.ends_with("Secure"));
        assert!(!set_cookie(COOKIE, "x", LIFETIME, false).contains("Secure"));
        assert!(same_secret("abc", "abc") && !same_secret("abc", "abd") && !same_secret("", ""));
    }
}
