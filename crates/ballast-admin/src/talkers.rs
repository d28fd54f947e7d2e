//! `GET /api/v1/talkers?since=5m&limit=10`: the client addresses, paths and statuses with the
//! most requests lately, from the gateway's own per-minute counters. It is the first thing an
//! operator (or an incident record) wants in a flood: who, where, and what they got back.
//!
//! The gateway keeps 15 minutes in whole minutes; the answer's `since_unix_ms` and
//! `until_unix_ms` say which span it covers. A control plane without the counters answers 503
//! ([`TalkersError::Off`]).

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;

use crate::alerts::now_unix_ms;
use crate::{AdminState, ApiError};

/// Why the top talkers could not be read.
#[derive(Debug, thiserror::Error)]
pub enum TalkersError {
    #[error("top talkers are not kept by this process")]
    Off,
}

impl IntoResponse for TalkersError {
    fn into_response(self) -> Response {
        let status = match self {
            TalkersError::Off => StatusCode::SERVICE_UNAVAILABLE,
        };
        (status, Json(json!({ "error": self.to_string() }))).into_response()
    }
}

/// `GET /api/v1/talkers` parameters, checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TalkersQuery {
    pub since_unix_ms: u64,
    pub until_unix_ms: u64,
    /// Keys per dimension.
    pub limit: usize,
}

#[derive(Deserialize)]
pub(crate) struct Params {
    since: Option<String>,
    limit: Option<String>,
}

/// At most this many keys per dimension (the gateway keeps 64 per minute).
const MAX_LIMIT: usize = 64;

/// Checks `?since=` (a duration, default 5m) and `?limit=` (1 to 64, default 10).
fn query(p: &Params, now_unix_ms: u64) -> Result<TalkersQuery, ApiError> {
    let since: ballast_core::Duration = p
        .since
        .as_deref()
        .unwrap_or("5m")
        .parse()
        .map_err(|e| ApiError::BadRequest(format!("since: {e}; e.g. ?since=5m")))?;
    let limit = match p.limit.as_deref().map(str::parse::<usize>) {
        None => 10,
        Some(Ok(n)) if (1..=MAX_LIMIT).contains(&n) => n,
        _ => {
            return Err(ApiError::BadRequest(format!(
                "limit must be a number from 1 to {MAX_LIMIT}"
            )))
        }
    };
    let ms = u64::try_from(since.get().as_millis()).unwrap_or(u64::MAX);
    Ok(TalkersQuery {
        since_unix_ms: now_unix_ms.saturating_sub(ms),
        until_unix_ms: now_unix_ms,
        limit,
    })
}

pub(crate) async fn list(State(state): State<AdminState>, Query(p): Query<Params>) -> Response {
    match query(&p, now_unix_ms()) {
        Ok(q) => match state.control.talkers(q) {
            Ok(t) => Json(t).into_response(),
            Err(e) => e.into_response(),
        },
        Err(e) => e.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{BoxFuture, Control};
    use axum::body::Body;
    use axum::extract::Request;
    use ballast_core::{CommandError, Issued, Report, Snapshot, Stamped, Talker, TopTalkers};
    use http_body_util::BodyExt;
    use std::sync::{Arc, Mutex};
    use tower::ServiceExt;

    /// A control plane with or without the counters, recording the query it got.
    struct Stub {
        keeps: bool,
        asked: Mutex<Option<TalkersQuery>>,
    }

    impl Control for Stub {
        fn status(&self) -> Snapshot {
            Snapshot {
                listeners: Vec::new(),
                routes: Vec::new(),
                upstreams: Vec::new(),
                open_connections: 0,
            }
        }
        fn metrics(&self) -> String {
            String::new()
        }
        fn events(&self, _after: u64) -> Vec<Stamped> {
            Vec::new()
        }
        fn apply(&self, _issued: Issued) -> BoxFuture<'_, Result<Report, CommandError>> {
            Box::pin(async { Err(CommandError::Invalid("not here".into())) })
        }
        fn talkers(&self, q: TalkersQuery) -> Result<TopTalkers, TalkersError> {
            if !self.keeps {
                return Err(TalkersError::Off);
            }
            *self.asked.lock().unwrap() = Some(q);
            Ok(TopTalkers {
                since_unix_ms: q.since_unix_ms,
                until_unix_ms: q.until_unix_ms,
                clients: vec![Talker {
                    key: "127.0.0.2".into(),
                    requests: 900,
                }],
                ..Default::default()
            })
        }
    }

    async fn get(keeps: bool, uri: &str) -> (StatusCode, serde_json::Value, Arc<Stub>) {
        let stub = Arc::new(Stub {
            keeps,
            asked: Mutex::new(None),
        });
        let r = crate::router(AdminState {
            control: stub.clone(),
            access: crate::Access::open(),
        });
        let req = Request::builder().uri(uri).body(Body::empty()).unwrap();
        let resp = r.oneshot(req).await.unwrap();
        let status = resp.status();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice(&body).unwrap(), stub)
    }

    #[tokio::test]
    async fn answers_the_gateways_top_talkers() {
        let (status, body, stub) = get(true, "/api/v1/talkers?since=2m&limit=3").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["clients"][0]["key"], "127.0.0.2");
        assert_eq!(body["clients"][0]["requests"], 900);
        let q = stub.asked.lock().unwrap().unwrap();
        assert_eq!(q.limit, 3);
        assert_eq!(q.until_unix_ms - q.since_unix_ms, 120_000);
    }

    #[tokio::test]
    async fn bad_parameters_are_400_and_no_counters_503() {
        let (status, body, _) = get(true, "/api/v1/talkers?limit=1000").await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        let (status, body, _) = get(false, "/api/v1/talkers").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(body["error"].as_str().unwrap().contains("not kept"));
    }

    fn p(since: Option<&str>, limit: Option<&str>) -> Params {
        Params {
            since: since.map(str::to_string),
            limit: limit.map(str::to_string),
        }
    }

    #[test]
    fn defaults_and_bounds() {
        let q = query(&p(None, None), 1_000_000).unwrap();
        assert_eq!(
            q,
            TalkersQuery {
                since_unix_ms: 1_000_000 - 300_000,
                until_unix_ms: 1_000_000,
                limit: 10
            }
        );
        let q = query(&p(Some("1m"), Some("64")), 1_000_000).unwrap();
        assert_eq!((q.since_unix_ms, q.limit), (940_000, 64));
        assert!(query(&p(None, Some("0")), 1).is_err());
        assert!(query(&p(None, Some("65")), 1).is_err());
        assert!(
            query(&p(Some("5"), None), 1).is_err(),
            "a bare number has no unit"
        );
    }
}
