//! Errors of the lab harness. Each says what the harness was doing, so a failed run points at
//! the step (starting a peer, writing a report, talking to a backend) without a backtrace.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum LabError {
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("writing {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Json(#[from] serde_json::Error),
    /// An HTTP exchange the harness itself needed (control endpoint, readiness) failed.
    #[error("{context}: {message}")]
    Http { context: String, message: String },
    /// A process the lab runs (backend, proxy) failed to start, or exited when it must not.
    #[error("{0}")]
    Process(String),
    /// A tool the lab needs is missing (haproxy, nginx, taskset).
    #[error("{tool} not found: {hint}")]
    MissingTool { tool: String, hint: String },
    /// Bad options (unknown scenario, zero rate, ...).
    #[error("{0}")]
    Usage(String),
}

impl LabError {
    /// Wraps an I/O error with what was being done.
    pub fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> LabError {
        let context = context.into();
        move |source| LabError::Io { context, source }
    }

    pub fn http(context: impl Into<String>, message: impl std::fmt::Display) -> LabError {
        LabError::Http {
            context: context.into(),
            message: message.to_string(),
        }
    }
}
