//! `POST /api/v1/config/rollback`: put an earlier config version back, in the file and running.
//!
//! It exists so that "undo the last config change" is one request (and one `ballast rollback`)
//! when an incident starts, with every way it can fail answered plainly: no such version (404),
//! nothing good to go back to (409), a text that does not validate or that the gateway refuses
//! now (422, and nothing changed), no store (503). This module only parses the request and
//! shapes the answer; the gateway side (which version, writing the file, applying it as a
//! reload) is behind [`crate::Control::rollback`].

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};

use crate::{AdminState, ApiError, HistoryError};

/// Why a rollback did not happen. Unless it is [`RollbackError::NotRestored`], the config file
/// and the running config are as they were.
#[derive(Debug, thiserror::Error)]
pub enum RollbackError {
    /// The history cannot answer (no store, store down), or has no such version.
    #[error(transparent)]
    History(#[from] HistoryError),
    /// There is nothing good to roll back to: the version asked for was refused when it was
    /// offered, no earlier applied version differs from the running one, or the version asked
    /// for is already running and in the file.
    #[error("{0}")]
    Conflict(String),
    /// The version's text does not validate now (a file it names is gone, for instance).
    #[error("{0}")]
    Invalid(String),
    /// This gateway has no config file to write back to (its config is compiled in).
    #[error("{0}")]
    NoFile(String),
    /// The config file could not be written.
    #[error("{0}")]
    Write(String),
    /// The gateway refused to apply the text (a port in use, for instance); the replaced file
    /// was put back.
    #[error("{0}")]
    Refused(String),
    /// The gateway refused to apply the text and the replaced file could not be put back: the
    /// file holds the version's text while the previous config keeps running. The message
    /// names both files.
    #[error("{0}")]
    NotRestored(String),
}

impl RollbackError {
    /// The status code the admin API answers with.
    pub fn status(&self) -> StatusCode {
        match self {
            RollbackError::History(HistoryError::NotFound(_)) => StatusCode::NOT_FOUND,
            RollbackError::History(HistoryError::Off | HistoryError::Unavailable(_)) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            RollbackError::Conflict(_) | RollbackError::NoFile(_) => StatusCode::CONFLICT,
            RollbackError::Invalid(_) | RollbackError::Refused(_) => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            RollbackError::Write(_) | RollbackError::NotRestored(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }
}

/// The request body: empty, `{}` or `{"version": null}` for the previous good version, or
/// `{"version": N}`.
#[derive(Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RollbackRequest {
    pub version: Option<u64>,
}

pub(crate) async fn rollback(
    State(state): State<AdminState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let by = match crate::origin(&headers) {
        Ok(by) => by,
        Err(e) => return e.into_response(),
    };
    let request = if body.iter().all(u8::is_ascii_whitespace) {
        RollbackRequest::default()
    } else {
        match serde_json::from_slice::<RollbackRequest>(&body) {
            Ok(r) => r,
            Err(e) => {
                return ApiError::BadRequest(format!(
                    "the body must be empty or {{\"version\": N}} with N a version id: {e}"
                ))
                .into_response()
            }
        }
    };
    let who = crate::access::caller_name(&headers);
    tracing::info!(by = by.name(), who = ?who, version = ?request.version, "config rollback asked");
    match state.control.rollback(request.version, by, who).await {
        Ok(report) => Json(report).into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}
