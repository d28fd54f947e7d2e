//! The change-marker, change-timeline and drift routes through the real router (`oneshot`),
//! against an in-memory stand-in for the gateway: 201 with the stored marker, 400 with a reason
//! for every bad body or query (never a panic), the window and limit passed on, and 503 when
//! there is no store. The real store and gateway are exercised through processes in
//! `crates/ballast/tests/changes.rs`.

use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use ballast_admin::{router, AdminState, BoxFuture, Control, HistoryError};
use ballast_core::{
    Change, ChangeEntry, CommandError, DriftReport, Instance, Issued, NewChange, Report, Snapshot,
    Stamped,
};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

/// Keeps markers in memory; `off` answers like a gateway without a store.
#[derive(Default)]
struct Fake {
    off: bool,
    markers: Mutex<Vec<Change>>,
    asked: Mutex<Vec<(u64, u32)>>,
}

impl Fake {
    fn on(&self) -> Result<(), HistoryError> {
        if self.off {
            Err(HistoryError::Off)
        } else {
            Ok(())
        }
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
    fn changes(
        &self,
        since: u64,
        limit: u32,
    ) -> BoxFuture<'_, Result<Vec<ChangeEntry>, HistoryError>> {
        Box::pin(async move {
            self.on()?;
            self.asked.lock().unwrap().push((since, limit));
            let mut list: Vec<ChangeEntry> = self
                .markers
                .lock()
                .unwrap()
                .iter()
                .filter(|c| c.marker.at_unix_ms >= since)
                .cloned()
                .map(ChangeEntry::Marker)
                .collect();
            list.reverse();
            list.truncate(limit as usize);
            Ok(list)
        })
    }
    fn record_change(&self, c: NewChange) -> BoxFuture<'_, Result<Change, HistoryError>> {
        Box::pin(async move {
            self.on()?;
            let mut all = self.markers.lock().unwrap();
            let stored = Change {
                id: all.len() as u64 + 1,
                marker: c,
            };
            all.push(stored.clone());
            Ok(stored)
        })
    }
    fn drift(&self) -> BoxFuture<'_, Result<DriftReport, HistoryError>> {
        Box::pin(async move {
            self.on()?;
            let inst = |name: &str, sha: &str| Instance {
                instance: name.into(),
                host: "h".into(),
                config_sha256: sha.into(),
                first_seen_unix_ms: 1,
                last_seen_unix_ms: 100,
            };
            Ok(DriftReport::assess(
                "a",
                vec![inst("a", "x"), inst("b", "y")],
                50,
            ))
        })
    }
}

fn app(fake: std::sync::Arc<Fake>) -> axum::Router {
    router(AdminState {
        control: fake,
        access: ballast_admin::Access::open(),
    })
}

async fn call(r: axum::Router, method: &str, uri: &str, body: &str) -> (StatusCode, Value) {
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    let resp = r.oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let v = serde_json::from_slice(&bytes).unwrap_or_else(|e| {
        panic!(
            "{status}: not JSON ({e}): {}",
            String::from_utf8_lossy(&bytes)
        )
    });
    (status, v)
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

#[tokio::test]
async fn a_marker_is_stored_and_listed() {
    let fake = std::sync::Arc::new(Fake::default());
    let before = now_ms();
    let (s, v) = call(
        app(fake.clone()),
        "POST",
        "/api/v1/changes",
        r#"{"kind":"deploy","summary":"shop 1.2.3","service":"shop","version":"1.2.3","author":"ci","url":"https://ci.example/7"}"#,
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["id"], 1);
    assert_eq!(v["kind"], "deploy");
    let at = v["at_unix_ms"].as_u64().unwrap();
    assert!(at >= before && at <= now_ms(), "defaults to now: {at}");

    let (s, v) = call(
        app(fake.clone()),
        "POST",
        "/api/v1/changes",
        r#"{"kind":"note","summary":"backfilled","at_unix_ms":1000}"#,
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["at_unix_ms"], 1000);

    let (s, v) = call(app(fake.clone()), "GET", "/api/v1/changes", "").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        v.as_array().unwrap().len(),
        1,
        "the default 24h leaves out t=1000: {v}"
    );
    assert_eq!(v[0]["type"], "marker");
    assert_eq!(v[0]["summary"], "shop 1.2.3");
    let (since, limit) = fake.asked.lock().unwrap()[0];
    let day = 24 * 3_600_000;
    assert!(since + day >= before && since + day <= now_ms(), "{since}");
    assert_eq!(limit, 500);

    let (s, v) = call(
        app(fake.clone()),
        "GET",
        "/api/v1/changes?since=100000d&limit=1",
        "",
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v.as_array().unwrap().len(), 1);
    assert_eq!(fake.asked.lock().unwrap()[1], (0, 1));
}

#[tokio::test]
async fn bad_input_is_a_400_with_a_reason() {
    let fake = std::sync::Arc::new(Fake::default());
    let posts = [
        ("", "must be a JSON object"),
        ("{", "must be a JSON object"),
        ("null", "must be a JSON object"),
        (r#"{"kind":"deploy"}"#, "missing field `summary`"),
        (r#"{"kind":"rollout","summary":"x"}"#, "kind must be one of"),
        (
            r#"{"kind":"note","summary":""}"#,
            "summary must not be empty",
        ),
        (
            r#"{"kind":"note","summary":"x","extra":1}"#,
            "unknown field `extra`",
        ),
        (
            r#"{"kind":"note","summary":"x","url":"ftp://x"}"#,
            "url must start",
        ),
        (
            r#"{"kind":"note","summary":"x","at_unix_ms":99999999999999}"#,
            "more than an hour",
        ),
    ];
    for (body, reason) in posts {
        let (s, v) = call(app(fake.clone()), "POST", "/api/v1/changes", body).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body}: {v}");
        let e = v["error"].as_str().unwrap();
        assert!(e.contains(reason), "{body}: {e}");
    }
    let long = format!(r#"{{"kind":"note","summary":"{}"}}"#, "x".repeat(1001));
    let (s, v) = call(app(fake.clone()), "POST", "/api/v1/changes", &long).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(v["error"].as_str().unwrap().contains("at most 1000"), "{v}");
    assert!(
        fake.markers.lock().unwrap().is_empty(),
        "nothing bad was stored"
    );

    for (query, reason) in [
        ("since=2", "needs a unit"),
        ("since=yesterday", "since:"),
        ("since=", "since:"),
        ("limit=0", "limit must be"),
        ("limit=lots", "limit must be"),
    ] {
        let (s, v) = call(
            app(fake.clone()),
            "GET",
            &format!("/api/v1/changes?{query}"),
            "",
        )
        .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{query}: {v}");
        assert!(
            v["error"].as_str().unwrap().contains(reason),
            "{query}: {v}"
        );
    }
    assert!(fake.asked.lock().unwrap().is_empty());
}

#[tokio::test]
async fn drift_names_who_differs() {
    let fake = std::sync::Arc::new(Fake::default());
    let (s, v) = call(app(fake), "GET", "/api/v1/config/drift", "").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["instance"], "a");
    assert_eq!(v["in_agreement"], false);
    assert_eq!(v["differing"], serde_json::json!(["a", "b"]));
    assert_eq!(v["instances"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn without_a_store_every_route_is_503() {
    let fake = std::sync::Arc::new(Fake {
        off: true,
        ..Fake::default()
    });
    for (method, uri, body) in [
        ("GET", "/api/v1/changes", ""),
        (
            "POST",
            "/api/v1/changes",
            r#"{"kind":"note","summary":"x"}"#,
        ),
        ("GET", "/api/v1/config/drift", ""),
    ] {
        let (s, v) = call(app(fake.clone()), method, uri, body).await;
        assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{uri}: {v}");
        assert!(v["error"]
            .as_str()
            .unwrap()
            .contains("without an operations store"));
    }
}
