//! Monitoring and alerting over HTTP: monitors and their last results, metric history,
//! alerts with their mute status, acknowledgement, silences, heartbeats from batch jobs, and
//! Alertmanager/Grafana webhooks in.
//!
//! This module owns the HTTP side only: reading bodies and queries without ever panicking,
//! refusing bad input with a 400 that says what to write, and the status codes. The engine
//! behind [`crate::Control`] decides everything else; a gateway without monitoring answers
//! 503 ([`AlertingError::Off`]).

use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use ballast_core::{Ack, Matcher, NewSilence};
use serde::Deserialize;
use serde_json::json;

use crate::{AdminState, ApiError};

/// Why an alerting request failed.
#[derive(Debug, thiserror::Error)]
pub enum AlertingError {
    #[error("monitoring is not running in this process")]
    Off,
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("the operations store is unavailable: {0}")]
    Unavailable(String),
}

impl AlertingError {
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            AlertingError::Off | AlertingError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            AlertingError::NotFound(_) => StatusCode::NOT_FOUND,
            AlertingError::BadRequest(_) => StatusCode::BAD_REQUEST,
        }
    }
}

/// What a batch job reports on `POST /api/v1/heartbeat/{name}[/start|/fail]`.
#[derive(Debug, Clone, PartialEq)]
pub enum Beat {
    /// The run succeeded (a plain ping).
    Ping,
    Start,
    /// The run failed; the request body (text, cut short) says why.
    Fail(Option<String>),
}

/// `GET /api/v1/metrics/history` parameters, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryQuery {
    pub monitor: String,
    pub value: String,
    pub since_unix_ms: u64,
}

pub(crate) fn now_unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

pub(crate) fn fail(e: AlertingError) -> Response {
    let status = e.status();
    (status, Json(json!({ "error": e.to_string() }))).into_response()
}

pub(crate) async fn monitors(State(state): State<AdminState>) -> Response {
    match state.control.monitors() {
        Ok(v) => Json(v).into_response(),
        Err(e) => fail(e),
    }
}

#[derive(Deserialize)]
pub(crate) struct HistoryParams {
    monitor: Option<String>,
    value: Option<String>,
    since: Option<String>,
}

pub(crate) async fn history(
    State(state): State<AdminState>,
    Query(q): Query<HistoryParams>,
) -> Response {
    let (Some(monitor), Some(value)) = (q.monitor, q.value) else {
        return ApiError::BadRequest(
            "give ?monitor=NAME&value=READING (and optionally &since=1h)".into(),
        )
        .into_response();
    };
    let since: ballast_core::Duration = match q.since.as_deref().unwrap_or("1h").parse() {
        Ok(d) => d,
        Err(e) => {
            return ApiError::BadRequest(format!("since: {e}; e.g. ?since=1h or ?since=7d"))
                .into_response()
        }
    };
    let ms = u64::try_from(since.get().as_millis()).unwrap_or(u64::MAX);
    let query = HistoryQuery {
        monitor,
        value,
        since_unix_ms: now_unix_ms().saturating_sub(ms),
    };
    match state.control.metric_history(query).await {
        Ok(v) => Json(v).into_response(),
        Err(e) => fail(e),
    }
}

#[derive(Deserialize)]
pub(crate) struct AlertParams {
    state: Option<String>,
}

pub(crate) async fn list(
    State(state): State<AdminState>,
    Query(q): Query<AlertParams>,
) -> Response {
    let wanted = q.state.as_deref();
    if let Some(s) = wanted {
        if !["pending", "firing", "resolved"].contains(&s) {
            return ApiError::BadRequest(format!(
                "state must be pending, firing or resolved (got {s:?})"
            ))
            .into_response();
        }
    }
    match state.control.alerts() {
        Ok(all) => Json(
            all.into_iter()
                .filter(|a| wanted.is_none_or(|w| a.alert.state.name() == w))
                .collect::<Vec<_>>(),
        )
        .into_response(),
        Err(e) => fail(e),
    }
}

/// The body of an ack or an expiry: who and why. Both optional; `by` defaults to the origin.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Who {
    #[serde(default)]
    by: Option<String>,
    #[serde(default)]
    comment: Option<String>,
}

pub(crate) fn who(body: &[u8], headers: &HeaderMap) -> Result<(String, String), ApiError> {
    let w: Who = if body.iter().all(u8::is_ascii_whitespace) {
        Who::default()
    } else {
        serde_json::from_slice(body).map_err(|e| {
            ApiError::BadRequest(format!(
                "the body must be a JSON object with optional \"by\" and \"comment\": {e}"
            ))
        })?
    };
    let origin = crate::origin(headers)?;
    let by = crate::access::caller_name(headers).unwrap_or_else(|| {
        w.by.filter(|b| !b.trim().is_empty())
            .unwrap_or_else(|| origin.name().to_string())
    });
    Ok((by, w.comment.unwrap_or_default()))
}

pub(crate) async fn ack(
    State(state): State<AdminState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (by, comment) = match who(&body, &headers) {
        Ok(w) => w,
        Err(e) => return e.into_response(),
    };
    let ack = Ack {
        by,
        comment,
        at_unix_ms: now_unix_ms(),
    };
    match state.control.ack(id, ack).await {
        Ok(record) => Json(record).into_response(),
        Err(e) => fail(e),
    }
}

#[derive(Deserialize)]
pub(crate) struct SilenceParams {
    expired: Option<bool>,
}

pub(crate) async fn silences(
    State(state): State<AdminState>,
    Query(q): Query<SilenceParams>,
) -> Response {
    match state.control.silences(q.expired.unwrap_or(false)).await {
        Ok(v) => Json(v).into_response(),
        Err(e) => fail(e),
    }
}

/// The body of `POST /api/v1/silences`: `matchers` (objects, or text such as
/// `service="shop"`), and an end (`ends_unix_ms` or `duration`), `author`, `comment`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SilenceRequest {
    matchers: Vec<MatcherIn>,
    #[serde(default)]
    starts_unix_ms: Option<u64>,
    #[serde(default)]
    ends_unix_ms: Option<u64>,
    #[serde(default)]
    duration: Option<String>,
    author: String,
    #[serde(default)]
    comment: String,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum MatcherIn {
    Object(Matcher),
    Text(String),
}

/// Matchers written as text, parsed by whoever knows the syntax (the engine).
#[derive(Debug, Clone, PartialEq)]
pub struct SilenceInput {
    pub silence: NewSilence,
    /// Matchers given as text (`service="shop"`), still to be parsed.
    pub text_matchers: Vec<String>,
}

fn silence_request(body: &[u8], now: u64) -> Result<SilenceInput, String> {
    let req: SilenceRequest = serde_json::from_slice(body).map_err(|e| {
        format!("the body must be a JSON object with \"matchers\", \"author\", an end (\"duration\": \"2h\" or \"ends_unix_ms\") and optionally \"comment\": {e}")
    })?;
    let starts = req.starts_unix_ms.unwrap_or(now);
    let ends = match (req.ends_unix_ms, req.duration) {
        (Some(e), None) => e,
        (None, Some(d)) => {
            let d: ballast_core::Duration = d
                .parse()
                .map_err(|e| format!("duration: {e}; e.g. \"2h\""))?;
            starts.saturating_add(u64::try_from(d.get().as_millis()).unwrap_or(u64::MAX))
        }
        _ => return Err("give exactly one of \"duration\" or \"ends_unix_ms\"".into()),
    };
    let mut matchers = Vec::new();
    let mut text_matchers = Vec::new();
    for m in req.matchers {
        match m {
            MatcherIn::Object(m) => matchers.push(m),
            MatcherIn::Text(t) => text_matchers.push(t),
        }
    }
    Ok(SilenceInput {
        silence: NewSilence {
            matchers,
            starts_unix_ms: starts,
            ends_unix_ms: ends,
            author: req.author,
            comment: req.comment,
        },
        text_matchers,
    })
}

pub(crate) async fn add_silence(State(state): State<AdminState>, body: Bytes) -> Response {
    let input = match silence_request(&body, now_unix_ms()) {
        Ok(s) => s,
        Err(reason) => return ApiError::BadRequest(reason).into_response(),
    };
    match state.control.add_silence(input).await {
        Ok(s) => (StatusCode::CREATED, Json(s)).into_response(),
        Err(e) => fail(e),
    }
}

pub(crate) async fn expire_silence(
    State(state): State<AdminState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let Ok(id) = id.parse::<u64>() else {
        return ApiError::BadRequest(format!("silence ids are whole numbers (got {id:?})"))
            .into_response();
    };
    let by = match crate::origin(&headers) {
        Ok(o) => o.name().to_string(),
        Err(e) => return e.into_response(),
    };
    match state.control.expire_silence(id, by).await {
        Ok(s) => Json(s).into_response(),
        Err(e) => fail(e),
    }
}

/// The largest Alertmanager/Grafana webhook body taken (a storm of grouped alerts is large;
/// the parser refuses more than this too).
pub const WEBHOOK_MAX_BYTES: usize = 16 << 20;

/// The most of a `/fail` body kept as the reason.
const REASON_MAX: usize = 1000;

async fn beat(state: AdminState, name: String, beat: Beat) -> Response {
    match state.control.heartbeat(name, beat) {
        Ok(()) => Json(json!({ "ok": true })).into_response(),
        Err(e) => fail(e),
    }
}

pub(crate) async fn ping(State(state): State<AdminState>, Path(name): Path<String>) -> Response {
    beat(state, name, Beat::Ping).await
}

pub(crate) async fn start(State(state): State<AdminState>, Path(name): Path<String>) -> Response {
    beat(state, name, Beat::Start).await
}

pub(crate) async fn failed(
    State(state): State<AdminState>,
    Path(name): Path<String>,
    body: Bytes,
) -> Response {
    let text = String::from_utf8_lossy(&body);
    let reason: String = text.trim().chars().take(REASON_MAX).collect();
    beat(
        state,
        name,
        Beat::Fail((!reason.is_empty()).then_some(reason)),
    )
    .await
}

pub(crate) async fn alertmanager(State(state): State<AdminState>, body: Bytes) -> Response {
    match state.control.receive_alerts(&body) {
        Ok(n) => Json(json!({ "received": n })).into_response(),
        Err(e) => fail(e),
    }
}
