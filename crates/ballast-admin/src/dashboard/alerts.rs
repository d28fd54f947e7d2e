//! Alerts (`/ui/alerts`): firing, pending, silenced and inhibited alerts with their values and
//! thresholds; acknowledging one; the silence form and the silences in force.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Extension, Path, Query, State};
use axum::response::Response;
use ballast_core::{Ack, AlertState, NewSilence, Silence};

use super::format::{self, now_ms};
use super::session::Viewer;
use super::{render, Ctx, Posted};
use crate::{AdminState, SilenceInput};

struct AlertRow {
    id: String,
    name: String,
    state: &'static str,
    severity: String,
    mute: &'static str,
    mute_reason: String,
    labels: String,
    value: String,
    threshold: String,
    since: String,
    ack: Option<String>,
    summary: String,
}

/// `?silence=ID`: the silence form filled in for that alert (the link in every message).
#[derive(serde::Deserialize)]
pub(crate) struct AlertParams {
    silence: Option<String>,
}

/// `GET /alerts[?silence=ID]`, the address messages link to: the alerts page.
pub(crate) async fn from_message(Query(q): Query<AlertParams>) -> Response {
    match q.silence {
        Some(id) => super::see_other(&format!(
            "/ui/alerts?silence={}",
            id.chars()
                .filter(char::is_ascii_alphanumeric)
                .collect::<String>()
        )),
        None => super::see_other("/ui/alerts"),
    }
}

struct SilenceRow {
    id: u64,
    matchers: String,
    until: String,
    author: String,
    comment: String,
}

#[derive(Template)]
#[template(path = "alerts.html")]
struct AlertsPage {
    ctx: Ctx,
    alerts: Vec<AlertRow>,
    silences: Vec<SilenceRow>,
    off: Option<String>,
    /// The silence form's matchers, filled in from `?silence=ID`.
    prefill: String,
}

pub(crate) async fn page(
    State(state): State<AdminState>,
    Extension(viewer): Extension<Viewer>,
    Query(q): Query<AlertParams>,
) -> Response {
    let now = now_ms();
    let (listed, off) = match state.control.alerts() {
        Ok(a) => (a, None),
        Err(e) => (Vec::new(), Some(e.to_string())),
    };
    let prefill = q
        .silence
        .and_then(|id| listed.iter().find(|a| a.alert.id == id))
        .map(|a| {
            a.alert
                .labels
                .iter()
                .map(|(k, v)| format!("{k}={}", serde_json::Value::from(v)))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default();
    let mut alerts: Vec<AlertRow> = listed
        .into_iter()
        .filter_map(|a| {
            let (state, severity) = match a.alert.state {
                AlertState::Firing { severity } => ("firing", severity.name().to_string()),
                AlertState::Pending => ("pending", String::new()),
                AlertState::Inactive | AlertState::Resolved => return None,
            };
            let mute = if !a.mute.silenced_by.is_empty() || !a.mute.maintenance.is_empty() {
                "silenced"
            } else if !a.mute.inhibited_by.is_empty() {
                "inhibited"
            } else {
                "none"
            };
            Some(AlertRow {
                id: a.alert.id.clone(),
                name: a
                    .alert
                    .labels
                    .get("alertname")
                    .unwrap_or(&a.alert.rule)
                    .to_string(),
                state,
                severity,
                mute,
                mute_reason: a.mute.reason.clone(),
                labels: format::labels(&a.alert.labels),
                value: format::reading(a.alert.value),
                threshold: format::reading(a.alert.threshold),
                since: format::ago(a.alert.since_unix_ms, now),
                ack: a
                    .alert
                    .ack
                    .as_ref()
                    .map(|k| format!("acknowledged by {}", k.by)),
                summary: a
                    .alert
                    .annotations
                    .get("summary")
                    .cloned()
                    .unwrap_or_default(),
            })
        })
        .collect();
    alerts.sort_by(|a, b| (a.state, &a.severity, &a.name).cmp(&(b.state, &b.severity, &b.name)));
    let silences = state
        .control
        .silences(false)
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|s: Silence| SilenceRow {
            id: s.id,
            matchers: s
                .silence
                .matchers
                .iter()
                .map(|m| serde_json::to_string(m).unwrap_or_default())
                .collect::<Vec<_>>()
                .join(", "),
            until: format::clock(s.silence.ends_unix_ms),
            author: s.silence.author,
            comment: s.silence.comment,
        })
        .collect();
    render(&AlertsPage {
        ctx: Ctx::new(&state, &viewer, "Alerts", "alerts", "/ui/alerts").refreshing(),
        alerts,
        silences,
        off,
        prefill,
    })
}

/// `POST /ui/alerts/{id}/ack`.
pub(crate) async fn ack(
    State(state): State<AdminState>,
    Extension(viewer): Extension<Viewer>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let form = Posted::new(&state, &viewer, body, "/ui/alerts");
    let ack = Ack {
        by: form.who(),
        comment: form.field("comment").unwrap_or_default(),
        at_unix_ms: now_ms(),
    };
    form.outcome(
        state.control.ack(id, ack).await,
        |a| format!("{} acknowledged", a.rule),
        "acknowledge",
    )
}

/// Splits `a="x", b=~"y,z"` at the commas (and new lines) outside quotes.
fn split_matchers(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut escaped = false;
    for c in text.chars() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ',' | '\n' | '\r' if !quoted => {
                out.push(std::mem::take(&mut cur));
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    out.push(cur);
    out.into_iter()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// `POST /ui/silences`: matchers as text, a duration, a comment; the author is the caller.
pub(crate) async fn silence(
    State(state): State<AdminState>,
    Extension(viewer): Extension<Viewer>,
    body: Bytes,
) -> Response {
    let form = Posted::new(&state, &viewer, body, "/ui/alerts");
    let matchers = split_matchers(&form.field("matchers").unwrap_or_default());
    if matchers.is_empty() {
        return form.back(
            false,
            "a silence needs at least one matcher, e.g. alertname=\"report-late\"".into(),
        );
    }
    let text = form.field("duration").unwrap_or_default();
    let duration = match text.trim().parse::<ballast_core::Duration>() {
        Ok(d) => d.get(),
        Err(e) => return form.back(false, format!("duration {text:?}: {e}; e.g. 2h")),
    };
    let now = now_ms();
    let input = SilenceInput {
        silence: NewSilence {
            matchers: Vec::new(),
            starts_unix_ms: now,
            ends_unix_ms: now
                .saturating_add(u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)),
            author: form.who(),
            comment: form.field("comment").unwrap_or_default(),
        },
        text_matchers: matchers,
    };
    form.outcome(
        state.control.add_silence(input).await,
        |s| {
            format!(
                "silence #{} until {}",
                s.id,
                format::clock(s.silence.ends_unix_ms)
            )
        },
        "silence refused",
    )
}

/// `POST /ui/silences/{id}/expire`.
pub(crate) async fn expire(
    State(state): State<AdminState>,
    Extension(viewer): Extension<Viewer>,
    Path(id): Path<u64>,
    body: Bytes,
) -> Response {
    let form = Posted::new(&state, &viewer, body, "/ui/alerts");
    form.outcome(
        state.control.expire_silence(id, form.who()).await,
        |_| format!("silence #{id} expired"),
        &format!("expire #{id}"),
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn matchers_split_at_commas_outside_quotes() {
        assert_eq!(
            super::split_matchers("alertname=\"x\", severity=~\"warn,crit\"\nteam=\"a\\\"b\""),
            vec![
                "alertname=\"x\"",
                "severity=~\"warn,crit\"",
                "team=\"a\\\"b\""
            ]
        );
        assert!(super::split_matchers(" , ").is_empty());
    }
}
