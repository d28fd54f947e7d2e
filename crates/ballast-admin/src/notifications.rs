//! Notifications over HTTP: the notification log (what, to whom, when, attempts, result) and
//! a test message to one receiver. The log never holds a receiver's address or secret: it
//! names targets (`receiver/kind`), and errors are written by notifiers that name receivers,
//! not URLs.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use ballast_core::NotificationState;
use serde::Deserialize;
use serde_json::json;

use crate::alerts::{fail, now_unix_ms, who};
use crate::{AdminState, ApiError};

/// `GET /api/v1/notifications` parameters, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct NotificationQuery {
    pub since_unix_ms: u64,
    pub limit: u32,
    /// Only this target (`receiver/kind`) or receiver (every kind of it).
    pub receiver: Option<String>,
    pub state: Option<NotificationState>,
}

#[derive(Deserialize)]
pub(crate) struct Params {
    since: Option<String>,
    limit: Option<String>,
    receiver: Option<String>,
    state: Option<String>,
}

/// At most this many lines per answer.
const MAX_LIMIT: u32 = 10_000;

pub(crate) async fn list(State(state): State<AdminState>, Query(q): Query<Params>) -> Response {
    let since: ballast_core::Duration = match q.since.as_deref().unwrap_or("24h").parse() {
        Ok(d) => d,
        Err(e) => {
            return ApiError::BadRequest(format!("since: {e}; e.g. ?since=1h or ?since=7d"))
                .into_response()
        }
    };
    let limit = match q.limit.as_deref().map(str::parse::<u32>) {
        None => 200,
        Some(Ok(n)) if (1..=MAX_LIMIT).contains(&n) => n,
        _ => {
            return ApiError::BadRequest(format!("limit must be a number from 1 to {MAX_LIMIT}"))
                .into_response()
        }
    };
    let state_filter = match q.state.as_deref() {
        None => None,
        Some(s) => match NotificationState::parse(s) {
            Some(s) => Some(s),
            None => {
                return ApiError::BadRequest(
                    "state must be one of pending, delivered, failed, expired".into(),
                )
                .into_response()
            }
        },
    };
    let ms = u64::try_from(since.get().as_millis()).unwrap_or(u64::MAX);
    let query = NotificationQuery {
        since_unix_ms: now_unix_ms().saturating_sub(ms),
        limit,
        receiver: q.receiver.filter(|r| !r.is_empty()),
        state: state_filter,
    };
    match state.control.notifications(query).await {
        Ok(v) => Json(v).into_response(),
        Err(e) => fail(e),
    }
}

pub(crate) async fn test(
    State(state): State<AdminState>,
    Path(receiver): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (by, _) = match who(&body, &headers) {
        Ok(w) => w,
        Err(e) => return e.into_response(),
    };
    match state.control.notify_test(receiver, by).await {
        Ok(results) => {
            let ok = results
                .as_array()
                .is_some_and(|a| a.iter().all(|r| r["ok"] == json!(true)));
            let status = if ok {
                axum::http::StatusCode::OK
            } else {
                axum::http::StatusCode::BAD_GATEWAY
            };
            (status, Json(results)).into_response()
        }
        Err(e) => fail(e),
    }
}
