//! The admin router's own tests: commands, origins, events, metrics formats and the token,
//! through `tower::ServiceExt::oneshot` with a recording stand-in for the gateway.
use super::*;
use axum::body::Body;
use http_body_util::BodyExt;
use serde_json::Value;
use std::sync::Mutex;
use tower::ServiceExt;

/// A recording stand-in for the gateway: the router's own behaviour is under test here;
/// the real gateway is exercised through sockets in the binary's integration tests.
#[derive(Default)]
struct Recorder {
    applied: Mutex<Vec<Issued>>,
    reload_ok: bool,
}

impl Control for Recorder {
    fn status(&self) -> Snapshot {
        Snapshot {
            listeners: Vec::new(),
            routes: Vec::new(),
            upstreams: Vec::new(),
            open_connections: 7,
        }
    }
    fn metrics(&self) -> String {
        "# EOF\n".into()
    }
    fn events(&self, after: u64) -> Vec<Stamped> {
        vec![Stamped {
            seq: after + 1,
            at_unix_ms: 1,
            event: ballast_core::Event::BreakerOpened {
                upstream: "app".into(),
                server: "127.0.0.1:1".into(),
            },
        }]
    }
    fn apply(&self, issued: Issued) -> BoxFuture<'_, Result<Report, CommandError>> {
        Box::pin(async move {
            let report = match &issued.command {
                Command::Drain { upstream, .. } | Command::Enable { upstream, .. }
                    if upstream != "app" =>
                {
                    return Err(CommandError::NotFound(format!(
                        "no upstream named `{upstream}`"
                    )))
                }
                Command::Drain { upstream, server } => Report::Drained {
                    upstream: upstream.clone(),
                    server: server.clone(),
                    changed: true,
                },
                Command::Enable { upstream, server } => Report::Enabled {
                    upstream: upstream.clone(),
                    server: server.clone(),
                    changed: true,
                },
                Command::Reload if !self.reload_ok => {
                    return Err(CommandError::Refused("bad.toml:3:1: nope".into()))
                }
                Command::Reload => Report::Reloaded(Default::default()),
                Command::Purge { route, .. } if route.as_deref() == Some("nope") => {
                    return Err(CommandError::NotFound("no route named `nope`".into()))
                }
                Command::Purge { prefix, .. }
                    if prefix.as_deref().is_some_and(|p| !p.starts_with('/')) =>
                {
                    return Err(CommandError::Invalid("prefix must start with '/'".into()))
                }
                Command::Purge { .. } => Report::Purged(ballast_core::PurgeReport {
                    removed: 3,
                    routes: Vec::new(),
                }),
                // Their endpoints are tested in `remediation`.
                Command::Eject { .. } | Command::Reroute { .. } | Command::Shed { .. } => {
                    return Err(CommandError::Refused("not recorded here".into()))
                }
            };
            self.applied.lock().unwrap().push(issued);
            Ok(report)
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
        access: crate::Access::single(token),
    });
    (r, rec)
}

async fn call(r: Router, method: &str, uri: &str, bearer: Option<&str>) -> (StatusCode, String) {
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
    let server = "127.0.0.1:1".to_string();
    assert_eq!(
        *rec.applied.lock().unwrap(),
        vec![
            Issued {
                command: Command::Drain {
                    upstream: "app".into(),
                    server: server.clone()
                },
                by: Origin::Api,
                who: None,
            },
            Issued {
                command: Command::Enable {
                    upstream: "app".into(),
                    server
                },
                by: Origin::Api,
                who: None,
            },
        ]
    );
}

#[tokio::test]
async fn the_origin_header_says_who_asked() {
    let (r, rec) = app(None, true);
    let send = |origin: &'static str| {
        let r = r.clone();
        async move {
            let req = Request::post("/api/v1/reload")
                .header(ORIGIN_HEADER, origin)
                .body(Body::empty())
                .unwrap();
            r.oneshot(req).await.unwrap().status()
        }
    };
    assert_eq!(send("cli").await, StatusCode::OK);
    assert_eq!(send("remediation").await, StatusCode::OK);
    assert_eq!(send("dashboard").await, StatusCode::OK);
    assert_eq!(send("start").await, StatusCode::BAD_REQUEST);
    assert_eq!(send("nobody").await, StatusCode::BAD_REQUEST);
    let by: Vec<Origin> = rec.applied.lock().unwrap().iter().map(|i| i.by).collect();
    assert_eq!(
        by,
        vec![Origin::Cli, Origin::Remediation, Origin::Dashboard]
    );
}

#[tokio::test]
async fn a_command_names_the_tokens_caller_and_a_sent_caller_header_is_ignored() {
    let drain = |bearer: Option<&'static str>| {
        let mut b = Request::post("/api/v1/servers/app/127.0.0.1:1/drain")
            .header(crate::access::CALLER_HEADER, "mallory");
        if let Some(t) = bearer {
            b = b.header("authorization", format!("Bearer {t}"));
        }
        b.body(Body::empty()).unwrap()
    };
    // A token: its caller's name (`admin` for the single token), whatever the client sent.
    let (r, rec) = app(Some("s3cret"), true);
    let resp = r.oneshot(drain(Some("s3cret"))).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    // An open API: nobody is known.
    let (open, open_rec) = app(None, true);
    let resp = open.oneshot(drain(None)).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let who = |rec: &Recorder| -> Vec<Option<String>> {
        rec.applied
            .lock()
            .unwrap()
            .iter()
            .map(|i| i.who.clone())
            .collect()
    };
    assert_eq!(who(&rec), [Some("admin".to_string())]);
    assert_eq!(who(&open_rec), [None]);
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
    let purged: Vec<Command> = rec
        .applied
        .lock()
        .unwrap()
        .iter()
        .map(|i| i.command.clone())
        .collect();
    assert_eq!(
        purged,
        vec![
            Command::Purge {
                route: None,
                prefix: None
            },
            Command::Purge {
                route: Some("web".to_string()),
                prefix: Some("/img x/".to_string())
            }
        ]
    );
}

#[tokio::test]
async fn status_is_the_typed_snapshot() {
    let (r, _) = app(None, true);
    let (s, body) = call(r, "GET", "/api/v1/status", None).await;
    assert_eq!(s, StatusCode::OK);
    let snap: Snapshot = serde_json::from_str(&body).unwrap();
    assert_eq!(snap.open_connections, 7);
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

#[tokio::test]
async fn a_viewer_reads_and_may_not_act_an_operator_acts() {
    use crate::{Access, Caller, Role};
    let rec = Arc::new(Recorder {
        reload_ok: true,
        ..Default::default()
    });
    let r = router(AdminState {
        control: rec.clone(),
        access: Access::with([
            (
                "viewer-secret".to_string(),
                Caller {
                    name: "wall".into(),
                    role: Role::Viewer,
                },
            ),
            (
                "operator-secret".to_string(),
                Caller {
                    name: "ana".into(),
                    role: Role::Operator,
                },
            ),
        ]),
    });
    let drain = "/api/v1/servers/app/10.0.0.1:80/drain";
    assert_eq!(
        call(r.clone(), "GET", "/api/v1/status", Some("viewer-secret"))
            .await
            .0,
        StatusCode::OK
    );
    let (s, body) = call(r.clone(), "POST", drain, Some("viewer-secret")).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{body}");
    assert!(body.contains("wall has a viewer's token"), "{body}");
    assert!(
        rec.applied.lock().unwrap().is_empty(),
        "nothing reached the gateway"
    );
    let (s, body) = call(r.clone(), "POST", drain, Some("operator-secret")).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(rec.applied.lock().unwrap().len(), 1);
    assert_eq!(
        call(r, "POST", drain, Some("nobody")).await.0,
        StatusCode::UNAUTHORIZED
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
