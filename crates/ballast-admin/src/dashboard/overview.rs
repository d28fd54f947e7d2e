//! The overview (`/`): routes with their last hour, the upstream grid, firing alerts, open
//! incidents and recent changes — what an on-call person needs in the first ten seconds.

use std::collections::BTreeMap;

use askama::Template;
use axum::extract::{Extension, State};
use axum::response::Response;
use ballast_core::snapshot::ServerStatus;
use ballast_core::{incident::IncidentSummary, AlertState};

use super::format::{self, now_ms};
use super::session::Viewer;
use super::svg;
use super::{render, Ctx};
use crate::{AdminState, HistoryQuery, IncidentQuery};

/// How far back the charts reach: what the monitoring engine keeps in memory (an hour) less a
/// minute. The history API reads the store's per-minute rollups for anything older than an
/// hour, so asking for exactly an hour (a few ms more by the time it is answered) would cost a
/// store query per chart on every refresh, for at most one extra point.
pub(crate) const CHART_SPAN_MS: u64 = 59 * 60_000;

/// One labelled series of a gateway reading.
pub(crate) type Series = Vec<(BTreeMap<String, String>, Vec<(u64, f64)>)>;

/// The first monitor of kind `gateway`, whose readings the charts show.
pub(crate) fn gateway_monitor(state: &AdminState) -> Option<String> {
    let monitors = state.control.monitors().ok()?;
    monitors
        .as_array()?
        .iter()
        .find_map(|m| (m["kind"] == "gateway").then(|| m["name"].as_str().map(str::to_string))?)
}

/// A gateway reading's series over the last `since_ms` (empty without monitoring).
pub(crate) async fn series(
    state: &AdminState,
    monitor: &str,
    value: &str,
    since_ms: u64,
) -> Series {
    let q = HistoryQuery {
        monitor: monitor.to_string(),
        value: value.to_string(),
        since_unix_ms: now_ms().saturating_sub(since_ms),
    };
    let Ok(v) = state.control.metric_history(q).await else {
        return Vec::new();
    };
    let parse = |s: &serde_json::Value| {
        let labels = serde_json::from_value(s["labels"].clone()).ok()?;
        let points = serde_json::from_value(s["points"].clone()).ok()?;
        Some((labels, points))
    };
    v["series"]
        .as_array()
        .map(|a| a.iter().filter_map(parse).collect())
        .unwrap_or_default()
}

/// The points of the series whose labels include every `(name, value)`.
pub(crate) fn points_of<'a>(all: &'a Series, want: &[(&str, &str)]) -> &'a [(u64, f64)] {
    all.iter()
        .find(|(labels, _)| {
            labels.len() == want.len()
                && want
                    .iter()
                    .all(|(k, v)| labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map_or(&[], |(_, p)| p.as_slice())
}

fn last(points: &[(u64, f64)]) -> Option<f64> {
    points.last().map(|p| p.1)
}

pub(crate) struct RouteRow {
    pub name: String,
    pub upstream: String,
    pub rate: String,
    pub errors: String,
    pub p99: String,
    pub spark: String,
}

pub(crate) struct ServerRow {
    pub upstream: String,
    pub addr: String,
    pub state: String,
    pub health: &'static str,
    pub inflight: u32,
    pub latency: String,
    pub breaker: String,
    pub ejected: String,
    pub backup: bool,
    pub drained: bool,
}

impl ServerRow {
    pub fn of(upstream: &str, s: &ServerStatus) -> Self {
        ServerRow {
            upstream: upstream.to_string(),
            addr: s.addr.clone(),
            state: s.state.clone(),
            health: if s.health_up { "passing" } else { "failing" },
            inflight: s.inflight,
            latency: format!("{} ms", format::reading(Some(s.latency_ewma_ms))),
            breaker: s.breaker.clone().unwrap_or_else(|| "—".into()),
            ejected: if s.ejected_for_ms > 0 {
                format!("for {}", format::span(s.ejected_for_ms))
            } else {
                format!("{}×", s.ejections)
            },
            backup: s.backup,
            drained: s.drained,
        }
    }
}

pub(crate) struct AlertLine {
    pub name: String,
    pub severity: String,
    pub labels: String,
    pub since: String,
    pub muted: bool,
}

pub(crate) struct IncidentLine {
    pub id: u64,
    pub title: String,
    pub severity: String,
    pub status: String,
    pub started: String,
}

impl IncidentLine {
    pub fn of(i: &IncidentSummary, now: u64) -> Self {
        IncidentLine {
            id: i.id,
            title: i.title.clone(),
            severity: i.severity.name().to_string(),
            status: i.status.name().to_string(),
            started: format::ago(i.started_unix_ms, now),
        }
    }
}

/// Incidents from the API's JSON (empty when incidents are off).
pub(crate) async fn incidents(state: &AdminState, limit: u32) -> Vec<IncidentSummary> {
    let q = IncidentQuery {
        status: None,
        limit,
    };
    match state.control.incidents(q).await {
        Ok(v) => serde_json::from_value(v).unwrap_or_default(),
        Err(_) => Vec::new(),
    }
}

#[derive(Template)]
#[template(path = "overview.html")]
struct Overview {
    ctx: Ctx,
    routes: Vec<RouteRow>,
    servers: Vec<ServerRow>,
    firing: Vec<AlertLine>,
    incidents: Vec<IncidentLine>,
    changes: Vec<(String, String, String)>,
    charts_note: Option<String>,
}

pub(crate) async fn page(
    State(state): State<AdminState>,
    Extension(viewer): Extension<Viewer>,
) -> Response {
    let now = now_ms();
    let status = state.control.status();
    let monitor = gateway_monitor(&state);
    let (rates, errors, p99) = match &monitor {
        Some(m) => (
            series(&state, m, "requests_per_s", CHART_SPAN_MS).await,
            series(&state, m, "error_ratio", CHART_SPAN_MS).await,
            series(&state, m, "p99_ms", CHART_SPAN_MS).await,
        ),
        None => Default::default(),
    };
    let routes = status
        .routes
        .iter()
        .map(|r| {
            let key = [("route", r.name.as_str())];
            let rate = points_of(&rates, &key);
            RouteRow {
                name: r.name.clone(),
                upstream: r.upstream.clone(),
                rate: format::reading(last(rate)),
                errors: format::percent(last(points_of(&errors, &key))),
                p99: format!("{} ms", format::reading(last(points_of(&p99, &key)))),
                spark: svg::sparkline(rate, &format!("requests per second on {}", r.name)),
            }
        })
        .collect();
    let servers = status
        .upstreams
        .iter()
        .flat_map(|u| u.servers.iter().map(|s| ServerRow::of(&u.name, s)))
        .collect();
    let firing = state
        .control
        .alerts()
        .unwrap_or_default()
        .into_iter()
        .filter_map(|a| match a.alert.state {
            AlertState::Firing { severity } => Some(AlertLine {
                name: a
                    .alert
                    .labels
                    .get("alertname")
                    .unwrap_or(&a.alert.rule)
                    .to_string(),
                severity: severity.name().to_string(),
                labels: format::labels(&a.alert.labels),
                since: format::ago(a.alert.since_unix_ms, now),
                muted: a.mute.is_muted(),
            }),
            _ => None,
        })
        .collect();
    let incidents = incidents(&state, 50)
        .await
        .iter()
        .filter(|i| i.status.is_open())
        .map(|i| IncidentLine::of(i, now))
        .collect();
    let changes = state
        .control
        .changes(now.saturating_sub(24 * 3_600_000), 8)
        .await
        .unwrap_or_default()
        .iter()
        .map(|c| {
            (
                format::ago(c.at_unix_ms(), now),
                c.who().to_string(),
                c.what(),
            )
        })
        .collect();
    let charts_note = monitor.is_none().then(|| {
        "no monitor of kind \"gateway\" runs, so routes have no history to chart".to_string()
    });
    render(&Overview {
        ctx: Ctx::new(&state, &viewer, "Overview", "overview", "/").refreshing(),
        routes,
        servers,
        firing,
        incidents,
        changes,
        charts_note,
    })
}
