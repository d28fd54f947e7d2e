//! The read-only pages: remediation runs (`/ui/remediations`), the notification log, with
//! what each receiver was sent (`/ui/notifications`), and the threshold review
//! (`/ui/review`).

use askama::Template;
use axum::extract::{Extension, Query, State};
use axum::response::Response;
use ballast_core::{NotificationLog, RemediationResult, RemediationRun};
use ballast_review::{Report, RuleReport};
use serde::Deserialize;

use super::format::{self, now_ms};
use super::session::Viewer;
use super::{render, Ctx};
use crate::{AdminState, NotificationQuery, RemediationQuery};

const DAY_MS: u64 = 24 * 3_600_000;

struct RunRow {
    at: String,
    rule: String,
    target: String,
    result: String,
    reason: String,
    took: String,
    dry_run: bool,
    steps: Vec<(String, bool, String)>,
}

#[derive(Template)]
#[template(path = "remediations.html")]
struct RunsPage {
    ctx: Ctx,
    runs: Vec<RunRow>,
    blocked: Vec<(String, String, String)>,
    off: Option<String>,
}

pub(crate) async fn remediations(
    State(state): State<AdminState>,
    Extension(viewer): Extension<Viewer>,
) -> Response {
    let now = now_ms();
    let q = RemediationQuery {
        since_unix_ms: now.saturating_sub(7 * DAY_MS),
        limit: 200,
        rule: None,
        target: None,
    };
    let (v, off) = match state.control.remediations(q).await {
        Ok(v) => (v, None),
        Err(e) => (serde_json::Value::Null, Some(e.to_string())),
    };
    let runs: Vec<RemediationRun> = serde_json::from_value(v["runs"].clone()).unwrap_or_default();
    let runs = runs
        .into_iter()
        .map(|r| {
            let reason = match &r.result {
                RemediationResult::Ok => String::new(),
                RemediationResult::Failed { reason }
                | RemediationResult::Refused { reason, .. } => reason.clone(),
            };
            RunRow {
                at: format::clock(r.started_unix_ms),
                rule: r.rule,
                target: r.target,
                result: r.result.name().to_string(),
                reason,
                took: format::span(r.ended_unix_ms.saturating_sub(r.started_unix_ms)),
                dry_run: r.dry_run,
                steps: r
                    .steps
                    .into_iter()
                    .map(|s| (s.action, s.ok, s.output))
                    .collect(),
            }
        })
        .collect();
    let blocked = v["blocked"]
        .as_array()
        .map(|all| {
            all.iter()
                .map(|b| {
                    (
                        b["target"].as_str().unwrap_or("").to_string(),
                        format::ago(b["since_unix_ms"].as_u64().unwrap_or(0), now),
                        b["why"].as_str().unwrap_or("").to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    render(&RunsPage {
        ctx: Ctx::new(
            &state,
            &viewer,
            "Remediation runs",
            "remediations",
            "/ui/remediations",
        )
        .refreshing(),
        runs,
        blocked,
        off,
    })
}

struct MessageRow {
    id: u64,
    at: String,
    receiver: String,
    what: String,
    state: String,
    attempts: u32,
    result: String,
}

#[derive(Template)]
#[template(path = "notifications.html")]
struct MessagesPage {
    ctx: Ctx,
    messages: Vec<MessageRow>,
    off: Option<String>,
}

pub(crate) async fn notifications(
    State(state): State<AdminState>,
    Extension(viewer): Extension<Viewer>,
) -> Response {
    let q = NotificationQuery {
        since_unix_ms: now_ms().saturating_sub(7 * DAY_MS),
        limit: 200,
        receiver: None,
        state: None,
    };
    let (log, off) = match state.control.notifications(q).await {
        Ok(l) => (l, None),
        Err(e) => (Vec::new(), Some(e.to_string())),
    };
    let messages = log
        .into_iter()
        .map(|n: NotificationLog| MessageRow {
            id: n.id,
            at: format::clock(n.created_unix_ms),
            receiver: n.receiver,
            what: n.headline.unwrap_or(n.group_key),
            state: serde_json::to_value(n.state)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
            attempts: n.attempts,
            result: n.result.unwrap_or_default(),
        })
        .collect();
    render(&MessagesPage {
        ctx: Ctx::new(
            &state,
            &viewer,
            "Messages sent",
            "notifications",
            "/ui/notifications",
        )
        .refreshing(),
        messages,
        off,
    })
}

#[derive(Deserialize)]
pub(crate) struct ReviewParams {
    since: Option<String>,
}

struct ReviewRow {
    rule: String,
    value: String,
    thresholds: String,
    percentiles: String,
    fired: String,
    firing: String,
    noise: String,
    flags: String,
    proposal: String,
    reasoning: Vec<String>,
}

impl ReviewRow {
    fn of(r: &RuleReport) -> Self {
        let t = |t: &Option<ballast_review::Threshold>| {
            t.as_ref().map_or("—".to_string(), |t| {
                format!("{:?} {}", t.direction, format::reading(Some(t.value))).to_lowercase()
            })
        };
        ReviewRow {
            rule: r.rule.clone(),
            value: format!("{} / {}", r.monitor, r.value),
            thresholds: format!("warn {} · crit {}", t(&r.warn), t(&r.crit)),
            percentiles: r.percentiles.as_ref().map_or("no data".into(), |p| {
                format!(
                    "p50 {} · p95 {} · p99 {} · max {}",
                    format::reading(Some(p.p50)),
                    format::reading(Some(p.p95)),
                    format::reading(Some(p.p99)),
                    format::reading(Some(p.max))
                )
            }),
            fired: format!(
                "{} warning · {} critical",
                r.warning_firings, r.critical_firings
            ),
            firing: format::span(r.firing_ms),
            noise: format!(
                "{} acted · {} noise ({})",
                r.acted,
                r.noise,
                format::percent(r.noise_share)
            ),
            flags: r
                .flags
                .iter()
                .map(|f| f.label())
                .collect::<Vec<_>>()
                .join(", "),
            proposal: format!(
                "warn {} · crit {}",
                format::reading(r.proposal.warn),
                format::reading(r.proposal.crit)
            ),
            reasoning: r.proposal.reasoning.clone(),
        }
    }
}

#[derive(Template)]
#[template(path = "review.html")]
struct ReviewPage {
    ctx: Ctx,
    since: String,
    rows: Vec<ReviewRow>,
    markdown: String,
    off: Option<String>,
}

pub(crate) async fn review(
    State(state): State<AdminState>,
    Extension(viewer): Extension<Viewer>,
    Query(q): Query<ReviewParams>,
) -> Response {
    let since_text = q.since.unwrap_or_else(|| "30d".into());
    let ctx = Ctx::new(&state, &viewer, "Threshold review", "review", "/ui/review");
    let since = match since_text.parse::<ballast_core::Duration>() {
        Ok(d) => d.get(),
        Err(e) => {
            return render(&ReviewPage {
                ctx,
                since: since_text.clone(),
                rows: Vec::new(),
                markdown: String::new(),
                off: Some(format!("since {since_text:?}: {e}")),
            })
        }
    };
    let (rows, markdown, off) = match state.control.review(since).await {
        Ok(a) => {
            let rows = serde_json::from_value::<Report>(a.json)
                .map(|r| r.rules.iter().map(ReviewRow::of).collect())
                .unwrap_or_default();
            (rows, a.markdown, None)
        }
        Err(e) => (Vec::new(), String::new(), Some(e.to_string())),
    };
    render(&ReviewPage {
        ctx,
        since: since_text,
        rows,
        markdown,
        off,
    })
}
