//! Incidents (`/ui/incidents`): the list, and each incident with its timeline, its status
//! buttons, notes and the post-mortem download. Moves and notes are the API's, recorded under
//! the logged-in person's name.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Extension, Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use ballast_core::incident::{Sev, Status, StepStamp, TimelineEntry};
use serde::Deserialize;

use super::format::{self, now_ms};
use super::overview::{incidents, IncidentLine};
use super::session::Viewer;
use super::{refused, render, Ctx, Posted};
use crate::{AdminState, BrainError, NoteInput, StatusInput};

#[derive(Template)]
#[template(path = "incidents.html")]
struct ListPage {
    ctx: Ctx,
    incidents: Vec<IncidentLine>,
}

pub(crate) async fn list(
    State(state): State<AdminState>,
    Extension(viewer): Extension<Viewer>,
) -> Response {
    let now = now_ms();
    let incidents = incidents(&state, 200)
        .await
        .iter()
        .map(|i| IncidentLine::of(i, now))
        .collect();
    render(&ListPage {
        ctx: Ctx::new(&state, &viewer, "Incidents", "incidents", "/ui/incidents").refreshing(),
        incidents,
    })
}

/// The parts of `GET /api/v1/incidents/{id}` the page shows.
#[derive(Deserialize)]
struct Shown {
    id: u64,
    title: String,
    severity: Sev,
    started_unix_ms: u64,
    lifecycle: Vec<StepStamp>,
    #[serde(default)]
    timeline: Vec<TimelineEntry>,
    #[serde(default)]
    alerts: Vec<serde_json::Value>,
    #[serde(default)]
    time_to_detect_ms: u64,
    #[serde(default)]
    time_to_acknowledge_ms: Option<u64>,
    #[serde(default)]
    time_to_recover_ms: Option<u64>,
}

struct Entry {
    at: String,
    kind: String,
    summary: String,
    author: String,
}

#[derive(Template)]
#[template(path = "incident.html")]
struct IncidentPage {
    ctx: Ctx,
    id: u64,
    severity: String,
    status: String,
    started: String,
    alerts: usize,
    times: Vec<(&'static str, String)>,
    moves: Vec<&'static str>,
    timeline: Vec<Entry>,
}

pub(crate) async fn page(
    State(state): State<AdminState>,
    Extension(viewer): Extension<Viewer>,
    Path(id): Path<u64>,
) -> Response {
    let shown: Shown = match state.control.incident(id).await {
        Ok(v) => match serde_json::from_value(v) {
            Ok(s) => s,
            Err(e) => {
                return refused(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    &format!("incident {id}: {e}"),
                )
            }
        },
        Err(e) => return brain_refused(&e),
    };
    let status = shown.lifecycle.last().map_or(Status::Detect, |s| s.status);
    let moves = Status::ALL
        .into_iter()
        .filter(|to| status.can_move_to(*to) && *to != Status::Propagate)
        .map(Status::name)
        .collect();
    let span = |ms: Option<u64>| ms.map_or("—".to_string(), format::span);
    let times = vec![
        ("time to detect", format::span(shown.time_to_detect_ms)),
        ("time to acknowledge", span(shown.time_to_acknowledge_ms)),
        ("time to recover", span(shown.time_to_recover_ms)),
    ];
    let timeline = shown
        .timeline
        .iter()
        .map(|e| Entry {
            at: format::clock(e.at_unix_ms),
            kind: serde_json::to_value(e.kind)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default()
                .replace('_', " "),
            summary: e.summary.clone(),
            author: e.author.clone().unwrap_or_default(),
        })
        .collect();
    render(&IncidentPage {
        ctx: Ctx::new(
            &state,
            &viewer,
            format!("#{} {}", shown.id, shown.title),
            "incidents",
            format!("/ui/incidents/{id}"),
        )
        .refreshing(),
        id: shown.id,
        severity: shown.severity.name().to_string(),
        status: status.name().to_string(),
        started: format::clock(shown.started_unix_ms),
        alerts: shown.alerts.len(),
        times,
        moves,
        timeline,
    })
}

fn brain_refused(e: &BrainError) -> Response {
    let code = match e {
        BrainError::NotFound(_) => StatusCode::NOT_FOUND,
        _ => StatusCode::SERVICE_UNAVAILABLE,
    };
    refused(code, &e.to_string())
}

/// `POST /ui/incidents/{id}/status`.
pub(crate) async fn status(
    State(state): State<AdminState>,
    Extension(viewer): Extension<Viewer>,
    Path(id): Path<u64>,
    body: Bytes,
) -> Response {
    let form = Posted::new(&state, &viewer, body, format!("/ui/incidents/{id}"));
    let wanted = form.field("status").unwrap_or_default();
    let Some(to) = Status::parse(&wanted) else {
        return form.back(false, format!("{wanted:?} is not a status"));
    };
    let input = StatusInput {
        status: to,
        by: Some(form.who()),
        root_cause: form.field("root_cause").filter(|s| !s.trim().is_empty()),
    };
    form.outcome(
        state.control.incident_status(id, input).await,
        |_| format!("incident #{id} moved to {to}"),
        &format!("move to {to}"),
    )
}

/// `POST /ui/incidents/{id}/notes`.
pub(crate) async fn note(
    State(state): State<AdminState>,
    Extension(viewer): Extension<Viewer>,
    Path(id): Path<u64>,
    body: Bytes,
) -> Response {
    let form = Posted::new(&state, &viewer, body, format!("/ui/incidents/{id}"));
    let text = form.field("text").unwrap_or_default();
    if text.trim().is_empty() {
        return form.back(false, "an empty note was not added".into());
    }
    let input = NoteInput {
        text,
        by: Some(form.who()),
    };
    form.outcome(
        state.control.incident_note(id, input).await,
        |_| "note added".to_string(),
        "note",
    )
}

/// `GET /ui/incidents/{id}/postmortem.md`: the Markdown post-mortem, as a download.
pub(crate) async fn postmortem(State(state): State<AdminState>, Path(id): Path<u64>) -> Response {
    match state.control.postmortem(id).await {
        Ok(md) => (
            [
                (
                    header::CONTENT_TYPE,
                    "text/markdown; charset=utf-8".to_string(),
                ),
                (
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"incident-{id}-postmortem.md\""),
                ),
            ],
            md,
        )
            .into_response(),
        Err(e) => brain_refused(&e),
    }
}
