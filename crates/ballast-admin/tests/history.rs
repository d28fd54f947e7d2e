//! The config-history routes through the real router (`oneshot`), against an in-memory
//! stand-in for the gateway: listing without texts, one version with its text, unified diffs
//! with their defaults, and 404/400/503 with a reason. The real store and gateway are
//! exercised through processes in `crates/ballast/tests/config_history.rs`.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use ballast_admin::history::{Diff, VersionSummary};
use ballast_admin::{router, AdminState, BoxFuture, Control, HistoryError};
use ballast_core::{
    CommandError, ConfigOutcome, ConfigVersion, Issued, Origin, Report, Snapshot, Stamped,
};
use http_body_util::BodyExt;
use tower::ServiceExt;

/// `None`: no store; otherwise the versions, oldest first (ids 1..).
struct Fake(Option<Vec<ConfigVersion>>);

impl Fake {
    fn all(&self) -> Result<&Vec<ConfigVersion>, HistoryError> {
        self.0.as_ref().ok_or(HistoryError::Off)
    }
    fn get(&self, id: u64) -> Result<ConfigVersion, HistoryError> {
        self.all()?
            .iter()
            .find(|v| v.id == id)
            .cloned()
            .ok_or_else(|| HistoryError::NotFound(format!("no config version {id}")))
    }
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
    fn config_versions(
        &self,
        limit: u32,
    ) -> BoxFuture<'_, Result<Vec<ConfigVersion>, HistoryError>> {
        Box::pin(async move {
            Ok(self
                .all()?
                .iter()
                .rev()
                .take(limit as usize)
                .cloned()
                .collect())
        })
    }
    fn config_version(&self, id: u64) -> BoxFuture<'_, Result<ConfigVersion, HistoryError>> {
        Box::pin(async move { self.get(id) })
    }
    fn config_pair(
        &self,
        from: Option<u64>,
        to: Option<u64>,
    ) -> BoxFuture<'_, Result<(ConfigVersion, ConfigVersion), HistoryError>> {
        Box::pin(async move {
            let all = self.all()?;
            let to = match to {
                Some(id) => self.get(id)?,
                None => all
                    .iter()
                    .rev()
                    .find(|v| v.outcome.is_applied())
                    .cloned()
                    .ok_or_else(|| HistoryError::NotFound("nothing applied".into()))?,
            };
            let from = match from {
                Some(id) => self.get(id)?,
                None => all
                    .iter()
                    .rev()
                    .find(|v| v.id < to.id && v.outcome.is_applied())
                    .cloned()
                    .ok_or_else(|| HistoryError::NotFound("nothing before".into()))?,
            };
            Ok((from, to))
        })
    }
}

fn version(id: u64, text: &str, source: Origin, outcome: ConfigOutcome) -> ConfigVersion {
    ConfigVersion {
        id,
        text: text.to_string(),
        sha256: format!("sha-{id}"),
        source,
        at_unix_ms: 1_700_000_000_000 + id,
        host: "gw1".into(),
        instance: "gw1/127.0.0.1:9900".into(),
        outcome,
    }
}

fn history() -> Fake {
    Fake(Some(vec![
        version(1, "a = 1\nb = 2\n", Origin::Start, ConfigOutcome::Applied),
        version(2, "a = 1\nb = 3\n", Origin::Signal, ConfigOutcome::Applied),
        version(
            3,
            "a = \n",
            Origin::Cli,
            ConfigOutcome::Refused {
                error: "file.toml:1:5: bad".into(),
            },
        ),
    ]))
}

async fn get(control: Fake, uri: &str) -> (StatusCode, String) {
    let r = router(AdminState {
        control: Arc::new(control),
        access: ballast_admin::Access::open(),
    });
    let resp = r
        .oneshot(Request::get(uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn versions_are_listed_newest_first_without_text() {
    let (s, body) = get(history(), "/api/v1/config/versions").await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let list: Vec<VersionSummary> = serde_json::from_str(&body).unwrap();
    assert_eq!(list.iter().map(|v| v.id).collect::<Vec<_>>(), [3, 2, 1]);
    assert_eq!(list[0].source, Origin::Cli);
    assert_eq!(
        list[0].outcome,
        ConfigOutcome::Refused {
            error: "file.toml:1:5: bad".into()
        }
    );
    assert!(!body.contains("\"text\""), "{body}");
    let (s, body) = get(history(), "/api/v1/config/versions?limit=1").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        serde_json::from_str::<Vec<VersionSummary>>(&body)
            .unwrap()
            .len(),
        1
    );
    let (s, _) = get(history(), "/api/v1/config/versions?limit=0").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn one_version_has_its_text_and_unknown_ids_are_404() {
    let (s, body) = get(history(), "/api/v1/config/versions/2").await;
    assert_eq!(s, StatusCode::OK);
    let v: ConfigVersion = serde_json::from_str(&body).unwrap();
    assert_eq!(v.text, "a = 1\nb = 3\n");
    let (s, body) = get(history(), "/api/v1/config/versions/9").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert!(body.contains("no config version 9"), "{body}");
    let (s, _) = get(history(), "/api/v1/config/versions/two").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn diff_is_unified_and_defaults_to_running_against_previous() {
    let (s, body) = get(history(), "/api/v1/config/diff").await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let d: Diff = serde_json::from_str(&body).unwrap();
    assert_eq!((d.from, d.to), (1, 2));
    assert!(d.diff.contains("--- version 1 (start)"), "{}", d.diff);
    assert!(d.diff.contains("+++ version 2 (signal)"), "{}", d.diff);
    assert!(d.diff.contains("\n-b = 2\n+b = 3\n"), "{}", d.diff);
    let (s, body) = get(history(), "/api/v1/config/diff?from=2&to=1").await;
    assert_eq!(s, StatusCode::OK);
    let d: Diff = serde_json::from_str(&body).unwrap();
    assert!(d.diff.contains("\n-b = 3\n+b = 2\n"), "{}", d.diff);
    let (s, body) = get(history(), "/api/v1/config/diff?from=1&to=1").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(serde_json::from_str::<Diff>(&body).unwrap().diff, "");
    let (s, _) = get(history(), "/api/v1/config/diff?from=7").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = get(history(), "/api/v1/config/diff?from=x").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn without_a_store_every_route_is_503_with_the_reason() {
    for uri in [
        "/api/v1/config/versions",
        "/api/v1/config/versions/1",
        "/api/v1/config/diff",
    ] {
        let (s, body) = get(Fake(None), uri).await;
        assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{uri}");
        assert!(body.contains("without an operations store"), "{body}");
    }
}
