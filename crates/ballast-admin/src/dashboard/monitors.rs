//! Monitors (`/ui/monitors`): every monitor's last run, a journey's steps one by one, and the
//! certificates the listeners serve, soonest expiry first.

use askama::Template;
use axum::extract::{Extension, State};
use axum::response::Response;
use serde_json::Value;

use super::format::{self, now_ms};
use super::session::Viewer;
use super::{render, Ctx};
use crate::AdminState;

struct Step {
    name: String,
    status: String,
    latency: String,
    ok: bool,
    error: String,
}

struct MonitorRow {
    name: String,
    kind: String,
    interval: String,
    ok: &'static str,
    last: String,
    took: String,
    error: String,
    runs: u64,
    failed: u64,
    readings: String,
    steps: Vec<Step>,
}

struct CertRow {
    listener: String,
    names: String,
    subject: String,
    not_after: String,
    days_left: i64,
}

#[derive(Template)]
#[template(path = "monitors.html")]
struct MonitorsPage {
    ctx: Ctx,
    monitors: Vec<MonitorRow>,
    certificates: Vec<CertRow>,
    off: Option<String>,
}

fn text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn row(m: &Value, now: u64) -> MonitorRow {
    let last = &m["last"];
    let error = text(&last["error"]);
    let ok = if last.is_null() {
        "waiting"
    } else if error.is_empty() {
        "ok"
    } else {
        "failed"
    };
    let readings = last["readings"].as_array().map_or(0, Vec::len);
    let steps = last["detail"]
        .as_array()
        .filter(|_| m["kind"] == "journey")
        .map(|steps| {
            steps
                .iter()
                .map(|s| Step {
                    name: text(&s["name"]),
                    status: text(&s["status"]),
                    latency: format!("{} ms", format::reading(s["latency_ms"].as_f64())),
                    ok: s["ok"].as_bool().unwrap_or(false),
                    error: text(&s["error"]),
                })
                .collect()
        })
        .unwrap_or_default();
    MonitorRow {
        name: text(&m["name"]),
        kind: text(&m["kind"]),
        interval: format::span(m["interval_ms"].as_u64().unwrap_or(0)),
        ok,
        last: format::ago(last["at_unix_ms"].as_u64().unwrap_or(0), now),
        took: format!("{} ms", last["duration_ms"].as_u64().unwrap_or(0)),
        error,
        runs: m["runs"].as_u64().unwrap_or(0),
        failed: m["failed"].as_u64().unwrap_or(0),
        readings: format!("{readings} readings"),
        steps,
    }
}

pub(crate) async fn page(
    State(state): State<AdminState>,
    Extension(viewer): Extension<Viewer>,
) -> Response {
    let now = now_ms();
    let (monitors, off) = match state.control.monitors() {
        Ok(Value::Array(all)) => (all.iter().map(|m| row(m, now)).collect(), None),
        Ok(_) => (Vec::new(), None),
        Err(e) => (Vec::new(), Some(e.to_string())),
    };
    let mut certificates: Vec<CertRow> = state
        .control
        .status()
        .listeners
        .iter()
        .flat_map(|l| {
            l.certificates.iter().map(|c| CertRow {
                listener: l.name.clone(),
                names: if c.names.is_empty() {
                    "(default)".into()
                } else {
                    c.names.join(", ")
                },
                subject: c.subject.clone(),
                not_after: c.not_after.clone(),
                days_left: c.days_left,
            })
        })
        .collect();
    certificates.sort_by_key(|c| c.days_left);
    render(&MonitorsPage {
        ctx: Ctx::new(&state, &viewer, "Monitors", "monitors", "/ui/monitors").refreshing(),
        monitors,
        certificates,
        off,
    })
}
