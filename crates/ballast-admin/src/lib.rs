//! The admin listener: Prometheus metrics, the JSON status API, runtime drain/enable, reload
//! and cache purges.
//!
//! The router talks to the gateway only through the [`Control`] trait, so this crate knows
//! nothing about proxy internals and is tested without sockets via `tower::ServiceExt::oneshot`.
//! When a bearer token is configured every endpoint requires it (Prometheus sends it with
//! `authorization` in its scrape config); Ballast refuses to start with a non-loopback admin
//! address and no token (see `ballast-config`).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

/// A boxed future, for the async method of [`Control`].
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Why a drain/enable request failed.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct NotFound(pub String);

/// What the admin API can ask of the running gateway.
pub trait Control: Send + Sync + 'static {
    /// Listeners, routes, upstreams and servers as JSON.
    fn status(&self) -> Value;
    /// OpenMetrics text.
    fn metrics(&self) -> String;
    /// Drains (`true`) or enables (`false`) one server.
    fn set_drain(&self, upstream: &str, addr: &str, drained: bool) -> Result<(), NotFound>;
    /// Re-reads and applies the config file; `Err` carries the reason it was refused.
    fn reload(&self) -> BoxFuture<'_, Result<Value, String>>;
    /// Policy events with a sequence number above `after`, oldest first, as a JSON array.
    fn events(&self, after: u64) -> Value;
    /// Removes cached answers: of one route or of all, under a path prefix or all of them.
    /// Returns what was removed; `Err` names a route that does not exist or has no cache.
    fn purge_cache(&self, route: Option<&str>, prefix: Option<&str>) -> Result<Value, NotFound>;
}

/// Shared state of the admin router.
#[derive(Clone)]
pub struct AdminState {
    pub control: Arc<dyn Control>,
    pub token: Option<Arc<str>>,
}

/// Builds the admin router.
pub fn router(state: AdminState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/api/v1/status", get(status))
        .route("/api/v1/events", get(events))
        .route("/api/v1/servers/{upstream}/{addr}/drain", post(drain))
        .route("/api/v1/servers/{upstream}/{addr}/enable", post(enable))
        .route("/api/v1/reload", post(reload))
        .route("/api/v1/cache/purge", post(purge))
        .layer(middleware::from_fn_with_state(state.clone(), auth))
        .with_state(state)
}

/// Serves the admin API on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AdminState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn auth(State(state): State<AdminState>, req: Request, next: Next) -> Response {
    if let Some(token) = &state.token {
        let given = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if !given.is_some_and(|g| constant_time_eq(g.as_bytes(), token.as_bytes())) {
            let mut resp = error(StatusCode::UNAUTHORIZED, "a valid bearer token is required");
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            return resp;
        }
    }
    next.run(req).await
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

/// OpenMetrics for scrapers that ask for it (Prometheus does), else the Prometheus text format
/// 0.0.4 that `curl`, `promtool check metrics` and older scrapers read.
async fn metrics(State(state): State<AdminState>, req: Request) -> Response {
    let openmetrics = state.control.metrics();
    let wants_openmetrics = req
        .headers()
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("application/openmetrics-text"));
    if wants_openmetrics {
        (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            openmetrics,
        )
            .into_response()
    } else {
        (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            text_format(&openmetrics),
        )
            .into_response()
    }
}

/// Rewrites OpenMetrics text as Prometheus text format 0.0.4: a counter family is named after
/// its `_total` samples in `# HELP`/`# TYPE`, `unknown` becomes `untyped`, and `# UNIT` and
/// `# EOF` are dropped. Samples, labels and escaping are the same in both formats.
fn text_format(openmetrics: &str) -> String {
    let counters: std::collections::HashSet<&str> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE ")?.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let meta = ["# HELP ", "# TYPE "].iter().find_map(|prefix| {
            let (name, rest) = line.strip_prefix(prefix)?.split_once(' ')?;
            let name = if counters.contains(name) {
                format!("{name}_total")
            } else {
                name.to_string()
            };
            let rest = if *prefix == "# TYPE " && rest == "unknown" {
                "untyped"
            } else {
                rest
            };
            Some(format!("{prefix}{name} {rest}"))
        });
        out.push_str(meta.as_deref().unwrap_or(line));
        out.push('\n');
    }
    out
}

async fn status(State(state): State<AdminState>) -> Json<Value> {
    Json(state.control.status())
}

/// `?after=N` returns only events newer than sequence number N (for polling).
#[derive(serde::Deserialize)]
struct EventsQuery {
    #[serde(default)]
    after: u64,
}

async fn events(
    State(state): State<AdminState>,
    axum::extract::Query(q): axum::extract::Query<EventsQuery>,
) -> Json<Value> {
    Json(state.control.events(q.after))
}

fn set_drain(state: &AdminState, upstream: &str, addr: &str, drained: bool) -> Response {
    match state.control.set_drain(upstream, addr, drained) {
        Ok(()) => Json(json!({ "upstream": upstream, "server": addr, "drained": drained }))
            .into_response(),
        Err(e) => error(StatusCode::NOT_FOUND, &e.0),
    }
}

async fn drain(
    State(state): State<AdminState>,
    Path((upstream, addr)): Path<(String, String)>,
) -> Response {
    set_drain(&state, &upstream, &addr, true)
}

async fn enable(
    State(state): State<AdminState>,
    Path((upstream, addr)): Path<(String, String)>,
) -> Response {
    set_drain(&state, &upstream, &addr, false)
}

async fn reload(State(state): State<AdminState>) -> Response {
    match state.control.reload().await {
        Ok(report) => Json(json!({ "result": "ok", "report": report })).into_response(),
        Err(e) => error(StatusCode::UNPROCESSABLE_ENTITY, &e),
    }
}

/// `?route=NAME` limits a purge to one route, `?prefix=/path` to paths under it.
#[derive(serde::Deserialize)]
struct PurgeQuery {
    route: Option<String>,
    prefix: Option<String>,
}

async fn purge(
    State(state): State<AdminState>,
    axum::extract::Query(q): axum::extract::Query<PurgeQuery>,
) -> Response {
    if let Some(p) = q.prefix.as_deref().filter(|p| !p.starts_with('/')) {
        return error(
            StatusCode::BAD_REQUEST,
            &format!("prefix `{p}` must start with '/', e.g. /{p}"),
        );
    }
    match state
        .control
        .purge_cache(q.route.as_deref(), q.prefix.as_deref())
    {
        Ok(report) => Json(report).into_response(),
        Err(e) => error(StatusCode::NOT_FOUND, &e.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use http_body_util::BodyExt;
    use std::sync::Mutex;
    use tower::ServiceExt;

    /// A recording stand-in for the gateway: the router's own behaviour is under test here;
    /// the real gateway is exercised through sockets in the binary's integration tests.
    #[derive(Default)]
    struct Recorder {
        drained: Mutex<Vec<(String, String, bool)>>,
        purged: Mutex<Vec<(Option<String>, Option<String>)>>,
        reload_ok: bool,
    }

    impl Control for Recorder {
        fn status(&self) -> Value {
            json!({ "upstreams": [] })
        }
        fn metrics(&self) -> String {
            "# EOF\n".into()
        }
        fn set_drain(&self, upstream: &str, addr: &str, drained: bool) -> Result<(), NotFound> {
            if upstream != "app" {
                return Err(NotFound(format!("no upstream named `{upstream}`")));
            }
            self.drained
                .lock()
                .unwrap()
                .push((upstream.into(), addr.into(), drained));
            Ok(())
        }
        fn events(&self, after: u64) -> Value {
            json!([{ "seq": after + 1, "kind": "breaker_opened" }])
        }
        fn purge_cache(
            &self,
            route: Option<&str>,
            prefix: Option<&str>,
        ) -> Result<Value, NotFound> {
            if route == Some("nope") {
                return Err(NotFound("no route named `nope`".into()));
            }
            self.purged
                .lock()
                .unwrap()
                .push((route.map(Into::into), prefix.map(Into::into)));
            Ok(json!({ "removed": 3 }))
        }
        fn reload(&self) -> BoxFuture<'_, Result<Value, String>> {
            let ok = self.reload_ok;
            Box::pin(async move {
                if ok {
                    Ok(json!({}))
                } else {
                    Err("bad.toml:3:1: nope".into())
                }
            })
        }
    }

    fn app(token: Option<&str>, reload_ok: bool) -> (Router, Arc<Recorder>) {
        let rec = Arc::new(Recorder {
            reload_ok,
            ..Default::default()
        });
        let r = router(AdminState {
            control: rec.clone(),
            token: token.map(Arc::from),
        });
        (r, rec)
    }

    async fn call(
        r: Router,
        method: &str,
        uri: &str,
        bearer: Option<&str>,
    ) -> (StatusCode, String) {
        let mut b = Request::builder().method(method).uri(uri);
        if let Some(t) = bearer {
            b = b.header("authorization", format!("Bearer {t}"));
        }
        let resp = r.oneshot(b.body(Body::empty()).unwrap()).await.unwrap();
        let status = resp.status();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn drain_and_enable_reach_the_gateway() {
        let (r, rec) = app(None, true);
        assert_eq!(
            call(
                r.clone(),
                "POST",
                "/api/v1/servers/app/127.0.0.1:1/drain",
                None
            )
            .await
            .0,
            StatusCode::OK
        );
        assert_eq!(
            call(
                r.clone(),
                "POST",
                "/api/v1/servers/app/127.0.0.1:1/enable",
                None
            )
            .await
            .0,
            StatusCode::OK
        );
        let (s, body) = call(r, "POST", "/api/v1/servers/nope/127.0.0.1:1/drain", None).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        assert!(body.contains("nope"));
        assert_eq!(
            *rec.drained.lock().unwrap(),
            vec![
                ("app".into(), "127.0.0.1:1".into(), true),
                ("app".into(), "127.0.0.1:1".into(), false)
            ]
        );
    }

    #[tokio::test]
    async fn events_pass_the_after_parameter() {
        let (r, _) = app(None, true);
        let (s, body) = call(r.clone(), "GET", "/api/v1/events?after=41", None).await;
        assert_eq!(s, StatusCode::OK);
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v[0]["seq"], 42);
        let (s, body) = call(r.clone(), "GET", "/api/v1/events", None).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(serde_json::from_str::<Value>(&body).unwrap()[0]["seq"], 1);
        let (s, _) = call(r, "GET", "/api/v1/events?after=-1", None).await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
    }

    #[tokio::test]
    async fn purge_passes_route_and_prefix_and_checks_them() {
        let (r, rec) = app(None, true);
        let (s, body) = call(r.clone(), "POST", "/api/v1/cache/purge", None).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["removed"], 3);
        let (s, _) = call(
            r.clone(),
            "POST",
            "/api/v1/cache/purge?route=web&prefix=/img%20x/",
            None,
        )
        .await;
        assert_eq!(s, StatusCode::OK);
        let (s, body) = call(r.clone(), "POST", "/api/v1/cache/purge?route=nope", None).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        assert!(body.contains("nope"), "{body}");
        let (s, body) = call(r.clone(), "POST", "/api/v1/cache/purge?prefix=img", None).await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert!(body.contains("must start with"), "{body}");
        assert_eq!(
            call(r, "GET", "/api/v1/cache/purge", None).await.0,
            StatusCode::METHOD_NOT_ALLOWED
        );
        assert_eq!(
            *rec.purged.lock().unwrap(),
            vec![
                (None, None),
                (Some("web".to_string()), Some("/img x/".to_string()))
            ]
        );
    }

    #[tokio::test]
    async fn token_is_enforced() {
        let (r, _) = app(Some("s3cret"), true);
        assert_eq!(
            call(r.clone(), "GET", "/api/v1/status", None).await.0,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            call(r.clone(), "GET", "/metrics", Some("wrong")).await.0,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            call(r.clone(), "POST", "/api/v1/cache/purge", None).await.0,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            call(r, "GET", "/api/v1/status", Some("s3cret")).await.0,
            StatusCode::OK
        );
    }

    #[test]
    fn text_format_names_counters_by_their_samples() {
        let om = "# HELP x_requests Requests.\n# TYPE x_requests counter\n\
                  x_requests_total{a=\"1\"} 3\n# HELP x_up Up.\n# TYPE x_up gauge\nx_up 1\n\
                  # HELP x_odd Odd.\n# TYPE x_odd unknown\nx_odd 2\n# EOF\n";
        assert_eq!(
            text_format(om),
            "# HELP x_requests_total Requests.\n# TYPE x_requests_total counter\n\
             x_requests_total{a=\"1\"} 3\n# HELP x_up Up.\n# TYPE x_up gauge\nx_up 1\n\
             # HELP x_odd Odd.\n# TYPE x_odd untyped\nx_odd 2\n"
        );
    }

    #[tokio::test]
    async fn metrics_format_follows_accept() {
        let (r, _) = app(None, true);
        let resp = r
            .clone()
            .oneshot(Request::get("/metrics").body(Body::empty()).unwrap())
            .await
            .unwrap();
        let ct = resp.headers()[header::CONTENT_TYPE].to_str().unwrap();
        assert!(ct.starts_with("text/plain; version=0.0.4"), "{ct}");
        let resp = r
            .oneshot(
                Request::get("/metrics")
                    .header(
                        header::ACCEPT,
                        "application/openmetrics-text;version=1.0.0,text/plain;q=0.5",
                    )
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        let ct = resp.headers()[header::CONTENT_TYPE].to_str().unwrap();
        assert!(ct.starts_with("application/openmetrics-text"), "{ct}");
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&body[..], b"# EOF\n");
    }

    #[tokio::test]
    async fn refused_reload_is_422_with_reason() {
        let (r, _) = app(None, false);
        let (s, body) = call(r, "POST", "/api/v1/reload", None).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(body.contains("bad.toml:3:1"), "{body}");
        let (r, _) = app(None, true);
        assert_eq!(
            call(r, "POST", "/api/v1/reload", None).await.0,
            StatusCode::OK
        );
    }
}
