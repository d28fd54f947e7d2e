//! Config history over HTTP: `GET /api/v1/config/versions`, `.../versions/{id}` and
//! `GET /api/v1/config/diff?from=&to=`.
//!
//! It exists so that "what changed in the config, when, from where, and was it refused?" can
//! be answered from the CLI or a script without access to the database. The gateway's side
//! (which store, which instance is "running") stays behind [`crate::Control`]; this module only
//! shapes answers: a listing without the (possibly long) texts, one version with its text, and
//! a unified diff rendered with `similar`. When the gateway runs without a store, every route
//! answers 503 with the reason, never an empty history that would look like "nothing changed".

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use ballast_core::ConfigVersion;
use serde::{Deserialize, Serialize};

use crate::{AdminState, ApiError};

/// Why config history cannot answer.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// No store is configured (the demo's embedded config), so nothing is recorded.
    #[error("config history is off: this gateway runs without an operations store (see [store] in docs/configuration.md)")]
    Off,
    /// A store is configured but cannot be used right now (it did not open at start, or the
    /// database does not answer). The gateway keeps serving.
    #[error("config history is unavailable: {0}")]
    Unavailable(String),
    /// No version has this id, or there is nothing to compare yet.
    #[error("{0}")]
    NotFound(String),
}

/// Listing size when `?limit=` is absent, and the most one request may ask for.
const DEFAULT_LIMIT: u32 = 100;
const MAX_LIMIT: u32 = 1000;

/// A version as listed: everything but the text (the same value the change timeline shows).
pub use ballast_core::ConfigSummary as VersionSummary;

/// The answer of `/api/v1/config/diff`: which versions were compared and the unified diff
/// (empty when their texts are equal).
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Diff {
    pub from: u64,
    pub to: u64,
    pub diff: String,
}

#[derive(Deserialize)]
pub(crate) struct ListQuery {
    limit: Option<u32>,
}

pub(crate) async fn versions(
    State(state): State<AdminState>,
    Query(q): Query<ListQuery>,
) -> Response {
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT);
    if limit == 0 || limit > MAX_LIMIT {
        return ApiError::BadRequest(format!("limit must be between 1 and {MAX_LIMIT}"))
            .into_response();
    }
    match state.control.config_versions(limit).await {
        Ok(list) => {
            let list: Vec<VersionSummary> = list.into_iter().map(Into::into).collect();
            Json(list).into_response()
        }
        Err(e) => ApiError::from(e).into_response(),
    }
}

pub(crate) async fn version(State(state): State<AdminState>, Path(id): Path<String>) -> Response {
    let Ok(id) = id.parse::<u64>() else {
        return ApiError::BadRequest(format!("`{id}` is not a version id (a whole number)"))
            .into_response();
    };
    match state.control.config_version(id).await {
        Ok(v) => Json(v).into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

#[derive(Deserialize)]
pub(crate) struct DiffQuery {
    from: Option<u64>,
    to: Option<u64>,
}

pub(crate) async fn diff(State(state): State<AdminState>, Query(q): Query<DiffQuery>) -> Response {
    match state.control.config_pair(q.from, q.to).await {
        Ok((from, to)) => Json(Diff {
            from: from.id,
            to: to.id,
            diff: unified(&from, &to),
        })
        .into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// A unified diff of two versions' texts, with three lines of context, headed by their ids.
pub fn unified(from: &ConfigVersion, to: &ConfigVersion) -> String {
    similar::TextDiff::from_lines(&from.text, &to.text)
        .unified_diff()
        .context_radius(3)
        .header(
            &format!("version {} ({})", from.id, from.source.name()),
            &format!("version {} ({})", to.id, to.source.name()),
        )
        .to_string()
}
