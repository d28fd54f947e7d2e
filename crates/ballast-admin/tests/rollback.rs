//! `POST /api/v1/config/rollback` through the real router (`oneshot`), against a stand-in for
//! the gateway that fails in each way a rollback can: the request body and the
//! `Ballast-Origin` header reach [`Control::rollback`] as they should, each [`RollbackError`]
//! answers with its status and message, and a malformed request reaches nothing. The real
//! rollback (store, file, reload) is exercised through processes in
//! `crates/ballast/tests/rollback.rs`.

use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use ballast_admin::{
    router, AdminState, BoxFuture, Control, HistoryError, RollbackError, ORIGIN_HEADER,
};
use ballast_core::{CommandError, Issued, Origin, Report, RollbackReport, Snapshot, Stamped};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

/// One call of [`Control::rollback`]: the version asked for, the origin, the person.
type Call = (Option<u64>, Origin, Option<String>);

/// Rolls back to version 1 or (by default) 2; versions 3 to 8 fail in each way there is; any
/// other version does not exist. Records every call.
#[derive(Default)]
struct Fake {
    calls: Mutex<Vec<Call>>,
}

impl Control for Fake {
    fn status(&self) -> Snapshot {
        Snapshot {
            listeners: Vec::new(),
            routes: Vec::new(),
            upstreams: Vec::new(),
            open_connections: 0,
        }
    }
    fn metrics(&self) -> String {
        "# EOF\n".into()
    }
    fn events(&self, _after: u64) -> Vec<Stamped> {
        Vec::new()
    }
    fn apply(&self, _issued: Issued) -> BoxFuture<'_, Result<Report, CommandError>> {
        Box::pin(async { Err(CommandError::Invalid("not in this test".into())) })
    }
    fn rollback(
        &self,
        version: Option<u64>,
        by: Origin,
        who: Option<String>,
    ) -> BoxFuture<'_, Result<RollbackReport, RollbackError>> {
        self.calls.lock().unwrap().push((version, by, who));
        let s = |m: &str| m.to_string();
        let result = match version.unwrap_or(2) {
            v @ (1 | 2) => Ok(RollbackReport {
                version: v,
                sha256: "ab".into(),
                file: "/etc/ballast.toml".into(),
                backup: Some("/etc/ballast.toml.bak.20261130T153012Z".into()),
                requested_by: by,
                reload: Default::default(),
            }),
            3 => Err(RollbackError::Conflict(s("version 3 was refused"))),
            4 => Err(RollbackError::Refused(s("127.0.0.1:80: address in use"))),
            5 => Err(RollbackError::Invalid(s("ballast.toml:2:1: nope"))),
            6 => Err(RollbackError::History(HistoryError::Off)),
            7 => Err(RollbackError::NoFile(s("compiled in"))),
            8 => Err(RollbackError::Write(s("disk full"))),
            v => Err(RollbackError::History(HistoryError::NotFound(format!(
                "no config version {v}"
            )))),
        };
        Box::pin(async move { result })
    }
}

fn app() -> (Router, Arc<Fake>) {
    let fake = Arc::new(Fake::default());
    let r = router(AdminState {
        control: fake.clone(),
        access: ballast_admin::Access::open(),
    });
    (r, fake)
}

async fn send(r: &Router, method: &str, body: &str, origin: Option<&str>) -> (StatusCode, Value) {
    let mut req = Request::builder()
        .method(method)
        .uri("/api/v1/config/rollback");
    if let Some(o) = origin {
        req = req.header(ORIGIN_HEADER, o);
    }
    let resp = r
        .clone()
        .oneshot(req.body(Body::from(body.to_string())).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn a_rollback_answers_with_the_report_and_says_who_asked() {
    let (r, fake) = app();
    let (s, body) = send(&r, "POST", "", Some("cli")).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let report: RollbackReport = serde_json::from_value(body).unwrap();
    assert_eq!((report.version, report.requested_by), (2, Origin::Cli));
    assert_eq!(
        report.backup.as_deref(),
        Some("/etc/ballast.toml.bak.20261130T153012Z")
    );
    let (s, body) = send(&r, "POST", r#"{"version": 1}"#, None).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(
        (body["version"].clone(), body["requested_by"].clone()),
        (1.into(), "api".into())
    );
    for body in ["{}", r#"{"version": null}"#, " \n"] {
        assert_eq!(
            send(&r, "POST", body, None).await.0,
            StatusCode::OK,
            "{body:?}"
        );
    }
    assert_eq!(
        *fake.calls.lock().unwrap(),
        [
            (None, Origin::Cli, None),
            (Some(1), Origin::Api, None),
            (None, Origin::Api, None),
            (None, Origin::Api, None),
            (None, Origin::Api, None),
        ]
    );
}

#[tokio::test]
async fn each_failure_has_its_status_and_reason() {
    let (r, _) = app();
    for (version, status, says) in [
        (3, StatusCode::CONFLICT, "version 3 was refused"),
        (4, StatusCode::UNPROCESSABLE_ENTITY, "address in use"),
        (5, StatusCode::UNPROCESSABLE_ENTITY, "ballast.toml:2:1"),
        (6, StatusCode::SERVICE_UNAVAILABLE, "config history is off"),
        (7, StatusCode::CONFLICT, "compiled in"),
        (8, StatusCode::INTERNAL_SERVER_ERROR, "disk full"),
        (99, StatusCode::NOT_FOUND, "no config version 99"),
    ] {
        let (s, body) = send(&r, "POST", &format!(r#"{{"version": {version}}}"#), None).await;
        assert_eq!(s, status, "{version}: {body}");
        let error = body["error"].as_str().unwrap_or_default();
        assert!(error.contains(says), "{version}: {body}");
    }
}

#[tokio::test]
async fn a_malformed_request_reaches_nothing() {
    let (r, fake) = app();
    for (body, origin) in [
        (r#"{"version": "one"}"#, None),
        (r#"{"version": -1}"#, None),
        (r#"{"versoin": 1}"#, None),
        ("1", None),
        ("", Some("rollback")),
    ] {
        let (s, answer) = send(&r, "POST", body, origin).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body}: {answer}");
        assert!(answer["error"].is_string(), "{body}: {answer}");
    }
    assert_eq!(
        send(&r, "GET", "", None).await.0,
        StatusCode::METHOD_NOT_ALLOWED
    );
    assert!(fake.calls.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_rollback_names_the_tokens_caller() {
    let fake = Arc::new(Fake::default());
    let r = router(AdminState {
        control: fake.clone(),
        access: ballast_admin::Access::single(Some("s3cret")),
    });
    let req = Request::post("/api/v1/config/rollback")
        .header("authorization", "Bearer s3cret")
        .header(ORIGIN_HEADER, "dashboard")
        .body(Body::empty())
        .unwrap();
    assert_eq!(r.oneshot(req).await.unwrap().status(), StatusCode::OK);
    assert_eq!(
        *fake.calls.lock().unwrap(),
        [(None, Origin::Dashboard, Some("admin".to_string()))]
    );
}
