//! Remediation runs and incidents over HTTP: the run log and acknowledging a blocked target
//! (`/api/v1/remediations`), and incidents: list, open by hand, show, notes, lifecycle moves
//! and the post-mortem in Markdown (`/api/v1/incidents`).
//!
//! This module reads queries and bodies (never panicking, refusing bad input with a 400 that
//! says what to write) and picks status codes; the engines behind [`crate::Control`] decide.
//! Values cross the trait as JSON so this crate needs neither `ballast-remedy` nor
//! `ballast-incident`. Every person's action names who did it (`by` in the body, else the
//! origin header), and is recorded by the engine as an event and on the incident's timeline.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use ballast_core::incident::{Sev, Status, UserScope};
use serde::Deserialize;
use serde_json::json;

use crate::alerts::now_unix_ms;
use crate::{AdminState, ApiError};

/// Why a remediation or incident request failed.
#[derive(Debug, thiserror::Error)]
pub enum BrainError {
    #[error("{0} is not running in this process (it starts once monitoring has)")]
    Off(&'static str),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("the operations store is unavailable: {0}")]
    Unavailable(String),
}

impl BrainError {
    fn status(&self) -> StatusCode {
        match self {
            BrainError::Off(_) | BrainError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            BrainError::NotFound(_) => StatusCode::NOT_FOUND,
            BrainError::BadRequest(_) => StatusCode::BAD_REQUEST,
        }
    }
}

pub(crate) fn fail(e: BrainError) -> Response {
    (e.status(), Json(json!({ "error": e.to_string() }))).into_response()
}

fn bad(text: impl Into<String>) -> Response {
    ApiError::BadRequest(text.into()).into_response()
}

/// `GET /api/v1/remediations` parameters, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct RemediationQuery {
    pub since_unix_ms: u64,
    pub limit: u32,
    pub rule: Option<String>,
    pub target: Option<String>,
}

/// `GET /api/v1/incidents` parameters, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct IncidentQuery {
    pub status: Option<Status>,
    pub limit: u32,
}

/// `POST /api/v1/incidents`: an incident opened by a person.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenIncident {
    pub title: String,
    #[serde(default)]
    pub by: Option<String>,
    /// When the impact started (default: now).
    #[serde(default)]
    pub started_unix_ms: Option<u64>,
    #[serde(default)]
    pub severity: Option<Sev>,
    #[serde(default)]
    pub user_scope: Option<UserScope>,
}

/// `POST /api/v1/incidents/{id}/notes`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoteInput {
    pub text: String,
    #[serde(default)]
    pub by: Option<String>,
}

/// `POST /api/v1/incidents/{id}/status`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusInput {
    pub status: Status,
    #[serde(default)]
    pub by: Option<String>,
    /// The root cause, when the move comes with it (analyse, retrospective).
    #[serde(default)]
    pub root_cause: Option<String>,
}

/// `POST /api/v1/incidents/{id}/severity`: a person grades the incident (the matrix no longer
/// does) or says how many users are hurt (the matrix grades that).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeverityInput {
    #[serde(default)]
    pub severity: Option<Sev>,
    #[serde(default)]
    pub user_scope: Option<UserScope>,
    #[serde(default)]
    pub by: Option<String>,
}

/// `POST /api/v1/remediations/ack`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AckInput {
    pub target: String,
    #[serde(default)]
    pub by: Option<String>,
}

/// A body that names who acts.
trait Signed: serde::de::DeserializeOwned {
    fn by_mut(&mut self) -> &mut Option<String>;
}

macro_rules! signed {
    ($($t:ty),*) => {$(
        impl Signed for $t {
            fn by_mut(&mut self) -> &mut Option<String> {
                &mut self.by
            }
        }
    )*};
}
signed!(
    OpenIncident,
    NoteInput,
    StatusInput,
    SeverityInput,
    AckInput
);

/// Reads a JSON body (`what` says what to write when it is not) and settles who acts.
fn signed<T: Signed>(raw: &[u8], what: &str, headers: &HeaderMap) -> Result<T, ApiError> {
    let mut input: T = body(raw, what)?;
    let given = input.by_mut().take();
    *input.by_mut() = Some(by(given, headers)?);
    Ok(input)
}

/// At most this many lines per answer.
const MAX_LIMIT: u32 = 10_000;

fn limit(text: Option<&str>, default: u32) -> Result<u32, ApiError> {
    match text.map(str::parse::<u32>) {
        None => Ok(default),
        Some(Ok(n)) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        _ => Err(ApiError::BadRequest(format!(
            "limit must be a number from 1 to {MAX_LIMIT}"
        ))),
    }
}

/// Reads a JSON body into `T`, or a 400 that says what was wrong.
fn body<T: serde::de::DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T, ApiError> {
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::BadRequest(format!("the body must be {what}: {e}")))
}

/// Who acts: the authenticated caller, else `by` if given, else the origin header's name
/// (`cli`, `api`).
fn by(given: Option<String>, headers: &HeaderMap) -> Result<String, ApiError> {
    let origin = crate::origin(headers)?;
    if let Some(name) = crate::access::caller_name(headers) {
        return Ok(name);
    }
    Ok(given
        .map(|b| b.trim().to_string())
        .filter(|b| !b.is_empty())
        .unwrap_or_else(|| origin.name().to_string()))
}

#[derive(Deserialize)]
pub(crate) struct RunParams {
    since: Option<String>,
    limit: Option<String>,
    rule: Option<String>,
    target: Option<String>,
}

pub(crate) async fn runs(State(state): State<AdminState>, Query(q): Query<RunParams>) -> Response {
    let since: ballast_core::Duration = match q.since.as_deref().unwrap_or("24h").parse() {
        Ok(d) => d,
        Err(e) => return bad(format!("since: {e}; e.g. ?since=1h or ?since=7d")),
    };
    let limit = match limit(q.limit.as_deref(), 200) {
        Ok(n) => n,
        Err(r) => return r.into_response(),
    };
    let ms = u64::try_from(since.get().as_millis()).unwrap_or(u64::MAX);
    let query = RemediationQuery {
        since_unix_ms: now_unix_ms().saturating_sub(ms),
        limit,
        rule: q.rule.filter(|r| !r.is_empty()),
        target: q.target.filter(|t| !t.is_empty()),
    };
    match state.control.remediations(query).await {
        Ok(v) => Json(v).into_response(),
        Err(e) => fail(e),
    }
}

pub(crate) async fn ack(
    State(state): State<AdminState>,
    headers: HeaderMap,
    raw: Bytes,
) -> Response {
    match signed::<AckInput>(&raw, "{\"target\": \"...\", \"by\": \"...\"}", &headers) {
        Ok(input) => {
            let by = input.by.unwrap_or_default();
            answer(state.control.remediation_ack(input.target, by).await)
        }
        Err(e) => e.into_response(),
    }
}

#[derive(Deserialize)]
pub(crate) struct ListParams {
    status: Option<String>,
    limit: Option<String>,
}

pub(crate) async fn list(State(state): State<AdminState>, Query(q): Query<ListParams>) -> Response {
    let status = match q.status.as_deref() {
        None | Some("") => None,
        Some(s) => match Status::parse(s) {
            Some(s) => Some(s),
            None => {
                let all: Vec<&str> = Status::ALL.iter().map(|s| s.name()).collect();
                return bad(format!("status must be one of {}", all.join(", ")));
            }
        },
    };
    let limit = match limit(q.limit.as_deref(), 100) {
        Ok(n) => n,
        Err(r) => return r.into_response(),
    };
    match state
        .control
        .incidents(IncidentQuery { status, limit })
        .await
    {
        Ok(v) => Json(v).into_response(),
        Err(e) => fail(e),
    }
}

pub(crate) async fn open(
    State(state): State<AdminState>,
    headers: HeaderMap,
    raw: Bytes,
) -> Response {
    let what = "{\"title\": \"...\"} (optional: by, started_unix_ms, severity, user_scope)";
    match signed::<OpenIncident>(&raw, what, &headers) {
        Ok(input) if input.title.trim().is_empty() => bad("title must not be empty"),
        Ok(input) => match state.control.open_incident(input).await {
            Ok(v) => (StatusCode::CREATED, Json(v)).into_response(),
            Err(e) => fail(e),
        },
        Err(e) => e.into_response(),
    }
}

fn id_of(text: &str) -> Result<u64, ApiError> {
    text.parse()
        .map_err(|_| ApiError::BadRequest(format!("{text:?} is not an incident id (a number)")))
}

pub(crate) async fn show(State(state): State<AdminState>, Path(id): Path<String>) -> Response {
    let id = match id_of(&id) {
        Ok(id) => id,
        Err(r) => return r.into_response(),
    };
    match state.control.incident(id).await {
        Ok(v) => Json(v).into_response(),
        Err(e) => fail(e),
    }
}

pub(crate) async fn note(
    State(state): State<AdminState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    raw: Bytes,
) -> Response {
    let read = id_of(&id).and_then(|id| {
        signed::<NoteInput>(&raw, "{\"text\": \"...\"} (optional: by)", &headers).map(|i| (id, i))
    });
    match read {
        Ok((id, input)) => answer(state.control.incident_note(id, input).await),
        Err(e) => e.into_response(),
    }
}

pub(crate) async fn status(
    State(state): State<AdminState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    raw: Bytes,
) -> Response {
    let all: Vec<&str> = Status::ALL.iter().map(|s| s.name()).collect();
    let what = format!(
        "{{\"status\": one of {}}} (optional: by, root_cause)",
        all.join(", ")
    );
    let read =
        id_of(&id).and_then(|id| signed::<StatusInput>(&raw, &what, &headers).map(|i| (id, i)));
    match read {
        Ok((id, input)) => answer(state.control.incident_status(id, input).await),
        Err(e) => e.into_response(),
    }
}

pub(crate) async fn severity(
    State(state): State<AdminState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    raw: Bytes,
) -> Response {
    let what = "{\"severity\": \"SEV1\"..\"SEV4\"} and/or {\"user_scope\": none|internal|some|most|all} (optional: by)";
    let read =
        id_of(&id).and_then(|id| signed::<SeverityInput>(&raw, what, &headers).map(|i| (id, i)));
    match read {
        Ok((_, input)) if input.severity.is_none() && input.user_scope.is_none() => {
            bad("give severity, user_scope or both")
        }
        Ok((id, input)) => answer(state.control.incident_severity(id, input).await),
        Err(e) => e.into_response(),
    }
}

/// A JSON answer, or the error's.
fn answer(r: Result<serde_json::Value, BrainError>) -> Response {
    match r {
        Ok(v) => Json(v).into_response(),
        Err(e) => fail(e),
    }
}

pub(crate) async fn postmortem(
    State(state): State<AdminState>,
    Path(id): Path<String>,
) -> Response {
    let id = match id_of(&id) {
        Ok(id) => id,
        Err(r) => return r.into_response(),
    };
    match state.control.postmortem(id).await {
        Ok(md) => ([(header::CONTENT_TYPE, "text/markdown; charset=utf-8")], md).into_response(),
        Err(e) => fail(e),
    }
}
