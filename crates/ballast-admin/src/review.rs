//! `GET /api/v1/review?since=30d[&format=markdown]`: the threshold review over the history the
//! store holds, as JSON (the default) or as the Markdown report. The review itself is the
//! control plane's ([`crate::Control::review`]); this module reads the query.

use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;

use crate::{AdminState, ApiError, BrainError};

/// A review, in both forms.
#[derive(Debug, Clone)]
pub struct ReviewAnswer {
    pub json: serde_json::Value,
    pub markdown: String,
}

#[derive(Deserialize)]
pub(crate) struct Params {
    since: Option<String>,
    format: Option<String>,
}

pub(crate) async fn review(State(state): State<AdminState>, Query(q): Query<Params>) -> Response {
    let since: ballast_core::Duration = match q.since.as_deref().unwrap_or("30d").parse() {
        Ok(d) => d,
        Err(e) => {
            return ApiError::BadRequest(format!("since: {e}; e.g. ?since=30d or ?since=7d"))
                .into_response()
        }
    };
    let markdown = match q.format.as_deref() {
        None | Some("json") => false,
        Some("markdown" | "md") => true,
        Some(other) => {
            return ApiError::BadRequest(format!("format must be json or markdown, not {other:?}"))
                .into_response()
        }
    };
    match state.control.review(since.get()).await {
        Ok(a) if markdown => (
            [(header::CONTENT_TYPE, "text/markdown; charset=utf-8")],
            a.markdown,
        )
            .into_response(),
        Ok(a) => Json(a.json).into_response(),
        Err(e) => crate::incidents::fail(e),
    }
}

/// A stand-in answer for when there is no store to review.
pub(crate) fn off() -> BrainError {
    BrainError::Off("the threshold review")
}
