//! Changes (`/ui/changes`): config versions with a diff between any two, the rollback button,
//! and the change timeline (markers, config versions, run-time commands) that incidents use
//! to answer "what changed?".

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Extension, Query, State};
use axum::response::Response;
use ballast_core::Origin;
use serde::Deserialize;

use super::format::{self, now_ms};
use super::session::Viewer;
use super::{render, Ctx, Posted};
use crate::AdminState;

struct VersionRow {
    id: u64,
    at: String,
    source: String,
    outcome: String,
    sha: String,
    instance: String,
}

#[derive(Template)]
#[template(path = "changes.html")]
struct ChangesPage {
    ctx: Ctx,
    versions: Vec<VersionRow>,
    diff_title: String,
    diff: Vec<(&'static str, String)>,
    changes: Vec<(String, String, String, String)>,
    off: Option<String>,
}

#[derive(Deserialize)]
pub(crate) struct DiffParams {
    from: Option<u64>,
    to: Option<u64>,
}

pub(crate) async fn page(
    State(state): State<AdminState>,
    Extension(viewer): Extension<Viewer>,
    Query(q): Query<DiffParams>,
) -> Response {
    let now = now_ms();
    let (versions, off) = match state.control.config_versions(50).await {
        Ok(v) => (v, None),
        Err(e) => (Vec::new(), Some(e.to_string())),
    };
    let versions = versions
        .into_iter()
        .map(|v| VersionRow {
            id: v.id,
            at: format::clock(v.at_unix_ms),
            source: v.source.name().to_string(),
            outcome: v.outcome.name().to_string(),
            sha: v.sha256.chars().take(12).collect(),
            instance: v.instance,
        })
        .collect();
    let (diff_title, diff) = match state.control.config_pair(q.from, q.to).await {
        Ok((a, b)) => (
            format!("version {} → version {}", a.id, b.id),
            crate::history::unified(&a, &b)
                .lines()
                .map(|l| {
                    let class = match l.as_bytes().first() {
                        Some(b'+') if !l.starts_with("+++") => "add",
                        Some(b'-') if !l.starts_with("---") => "del",
                        _ => "",
                    };
                    (class, l.to_string())
                })
                .collect(),
        ),
        Err(e) => (format!("no diff: {e}"), Vec::new()),
    };
    let changes = state
        .control
        .changes(now.saturating_sub(7 * 24 * 3_600_000), 100)
        .await
        .unwrap_or_default()
        .iter()
        .map(|c| {
            (
                format::clock(c.at_unix_ms()),
                c.type_name().to_string(),
                c.who().to_string(),
                c.what(),
            )
        })
        .collect();
    render(&ChangesPage {
        ctx: Ctx::new(&state, &viewer, "Changes", "changes", "/ui/changes"),
        versions,
        diff_title,
        diff,
        changes,
        off,
    })
}

/// `POST /ui/rollback`: to `version`, or (empty) to the previous good version.
pub(crate) async fn rollback(
    State(state): State<AdminState>,
    Extension(viewer): Extension<Viewer>,
    body: Bytes,
) -> Response {
    let form = Posted::new(&state, &viewer, body, "/ui/changes");
    let text = form.field("version").unwrap_or_default();
    let version = match text.trim() {
        "" => None,
        t => match t.parse::<u64>() {
            Ok(v) => Some(v),
            Err(_) => return form.back(false, format!("{t:?} is not a version number")),
        },
    };
    form.outcome(
        state
            .control
            .rollback(version, Origin::Dashboard, Some(form.who()))
            .await,
        |r| format!("rolled back to version {} ({})", r.version, r.file),
        "rollback",
    )
}
