//! The admin listener: Prometheus metrics, the JSON status API, runtime drain/enable, reload,
//! cache purges, and the remediation commands (eject, reroute, shed; see [`remediation`]).
//!
//! The router talks to the gateway only through the [`Control`] trait, in `ballast-core` values
//! (a [`Command`] in, a [`Report`] or a [`CommandError`] out, [`Stamped`] events), so this crate
//! knows nothing about proxy internals and is tested without sockets via
//! `tower::ServiceExt::oneshot`. Every error leaves as one [`ApiError`], whose kind picks the
//! status code.
//! Config history (`/api/v1/config/...`) lives in [`history`], rollback in [`rollback`];
//! change markers, the change timeline and drift (`/api/v1/changes`, `/api/v1/config/drift`)
//! in [`changes`].
//! The web dashboard (`/`, `/ui/...`, `/login`) is in [`dashboard`]; it reads and acts through
//! the same [`Control`] and keeps its own sessions and CSRF tokens.
//! When a bearer token is configured every endpoint requires it (Prometheus sends it with
//! `authorization` in its scrape config); Ballast refuses to start with a non-loopback admin
//! address and no token (see `ballast-config`).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use ballast_core::{
    Ack, AlertRecord, AlertView, Change, ChangeEntry, Command, CommandError, ConfigVersion,
    DriftReport, Issued, NewChange, NotificationLog, Origin, Report, RollbackReport, Silence,
    Snapshot, Stamped, TopTalkers,
};
use serde_json::json;

pub mod access;
pub mod alerts;
pub mod changes;
pub mod dashboard;
pub mod history;
pub mod incidents;
pub mod notifications;
pub mod remediation;
pub mod review;
pub mod rollback;
pub mod talkers;
pub use access::{Access, Caller, Role};
pub use alerts::{AlertingError, Beat, HistoryQuery, SilenceInput};
pub use history::HistoryError;
pub use incidents::{
    AckInput, BrainError, IncidentQuery, NoteInput, OpenIncident, RemediationQuery, SeverityInput,
    StatusInput,
};
pub use notifications::NotificationQuery;
pub use review::ReviewAnswer;
pub use rollback::RollbackError;
pub use talkers::{TalkersError, TalkersQuery};

/// A boxed future, for the async method of [`Control`].
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The request header that says where a command comes from (`cli`, `dashboard`,
/// `remediation`); `api` without it. The person is the token's name ([`access::CALLER_HEADER`]).
pub const ORIGIN_HEADER: &str = "ballast-origin";

/// What the admin API can ask of the running gateway.
///
/// The first four are the gateway's own. The rest read and change the operations store; their
/// defaults answer as a gateway without a store does ([`HistoryError::Off`]), so that a
/// control plane (or a test's stand-in) implements only what it keeps.
pub trait Control: Send + Sync + 'static {
    /// Listeners, routes, upstreams and servers right now.
    fn status(&self) -> Snapshot;
    /// OpenMetrics text.
    fn metrics(&self) -> String;
    /// Events with a sequence number above `after`, oldest first.
    fn events(&self, after: u64) -> Vec<Stamped>;
    /// Carries out a command (drain, enable, reload, purge, eject, reroute, shed); on `Err`
    /// nothing changed.
    fn apply(&self, issued: Issued) -> BoxFuture<'_, Result<Report, CommandError>>;
    /// Recorded config versions (applied and refused), newest first, at most `limit`.
    fn config_versions(
        &self,
        _limit: u32,
    ) -> BoxFuture<'_, Result<Vec<ConfigVersion>, HistoryError>> {
        Box::pin(async { Err(HistoryError::Off) })
    }
    /// The recorded config version `id`.
    fn config_version(&self, _id: u64) -> BoxFuture<'_, Result<ConfigVersion, HistoryError>> {
        Box::pin(async { Err(HistoryError::Off) })
    }
    /// The two versions a diff compares, `(from, to)`. Without `to`, the running version;
    /// without `from`, the applied version before `to`.
    fn config_pair(
        &self,
        _from: Option<u64>,
        _to: Option<u64>,
    ) -> BoxFuture<'_, Result<(ConfigVersion, ConfigVersion), HistoryError>> {
        Box::pin(async { Err(HistoryError::Off) })
    }
    /// Rolls back to config version `version`, by default the previous good one (the applied
    /// version of this instance before the running one, with a different text): validates it,
    /// writes it to the config file keeping the replaced file, and applies it as a reload.
    /// `by` is where it was asked from, `who` the person who asked (the admin token's name),
    /// when known. On `Err` nothing changed (see [`RollbackError::NotRestored`]).
    fn rollback(
        &self,
        _version: Option<u64>,
        _by: Origin,
        _who: Option<String>,
    ) -> BoxFuture<'_, Result<RollbackReport, RollbackError>> {
        Box::pin(async { Err(RollbackError::History(HistoryError::Off)) })
    }
    /// Change markers, config versions and runtime commands from `since_unix_ms` on, merged
    /// newest first (`ballast_core::changes::merge`), at most `limit`.
    fn changes(
        &self,
        _since_unix_ms: u64,
        _limit: u32,
    ) -> BoxFuture<'_, Result<Vec<ChangeEntry>, HistoryError>> {
        Box::pin(async { Err(HistoryError::Off) })
    }
    /// Stores a change marker that has passed `ballast_core::changes::check_marker`.
    fn record_change(&self, _change: NewChange) -> BoxFuture<'_, Result<Change, HistoryError>> {
        Box::pin(async { Err(HistoryError::Off) })
    }
    /// The instances sharing the store, and which of them run another config.
    fn drift(&self) -> BoxFuture<'_, Result<DriftReport, HistoryError>> {
        Box::pin(async { Err(HistoryError::Off) })
    }

    // Monitoring and alerting; the defaults answer as a process without monitoring.

    /// Every monitor with its definition, last result and run counts.
    fn monitors(&self) -> Result<serde_json::Value, AlertingError> {
        Err(AlertingError::Off)
    }
    /// One reading's values since a time: in memory for the last hour, per-minute rollups
    /// from the store beyond.
    fn metric_history(
        &self,
        _query: HistoryQuery,
    ) -> BoxFuture<'_, Result<serde_json::Value, AlertingError>> {
        Box::pin(async { Err(AlertingError::Off) })
    }
    /// Every listed alert with its mute status.
    fn alerts(&self) -> Result<Vec<AlertView>, AlertingError> {
        Err(AlertingError::Off)
    }
    fn ack(&self, _id: String, _ack: Ack) -> BoxFuture<'_, Result<AlertRecord, AlertingError>> {
        Box::pin(async { Err(AlertingError::Off) })
    }
    fn silences(
        &self,
        _include_expired: bool,
    ) -> BoxFuture<'_, Result<Vec<Silence>, AlertingError>> {
        Box::pin(async { Err(AlertingError::Off) })
    }
    fn add_silence(&self, _input: SilenceInput) -> BoxFuture<'_, Result<Silence, AlertingError>> {
        Box::pin(async { Err(AlertingError::Off) })
    }
    fn expire_silence(
        &self,
        _id: u64,
        _by: String,
    ) -> BoxFuture<'_, Result<Silence, AlertingError>> {
        Box::pin(async { Err(AlertingError::Off) })
    }
    fn heartbeat(&self, _name: String, _beat: Beat) -> Result<(), AlertingError> {
        Err(AlertingError::Off)
    }
    /// An Alertmanager or Grafana webhook body; the number of alerts taken.
    fn receive_alerts(&self, _body: &[u8]) -> Result<usize, AlertingError> {
        Err(AlertingError::Off)
    }
    /// The notification log, newest first.
    fn notifications(
        &self,
        _query: NotificationQuery,
    ) -> BoxFuture<'_, Result<Vec<NotificationLog>, AlertingError>> {
        Box::pin(async { Err(AlertingError::Off) })
    }
    /// Sends a test message to a receiver; one result per channel.
    fn notify_test(
        &self,
        _receiver: String,
        _by: String,
    ) -> BoxFuture<'_, Result<serde_json::Value, AlertingError>> {
        Box::pin(async { Err(AlertingError::Off) })
    }
    /// Remediation runs, newest first, and the blocked targets.
    fn remediations(
        &self,
        _query: RemediationQuery,
    ) -> BoxFuture<'_, Result<serde_json::Value, BrainError>> {
        Box::pin(async { Err(BrainError::Off("remediation")) })
    }
    /// A person acknowledges a blocked remediation target.
    fn remediation_ack(
        &self,
        _target: String,
        _by: String,
    ) -> BoxFuture<'_, Result<serde_json::Value, BrainError>> {
        Box::pin(async { Err(BrainError::Off("remediation")) })
    }
    /// Incidents, newest first.
    fn incidents(
        &self,
        _query: IncidentQuery,
    ) -> BoxFuture<'_, Result<serde_json::Value, BrainError>> {
        Box::pin(async { Err(BrainError::Off("incidents")) })
    }
    /// One incident with its whole timeline.
    fn incident(&self, _id: u64) -> BoxFuture<'_, Result<serde_json::Value, BrainError>> {
        Box::pin(async { Err(BrainError::Off("incidents")) })
    }
    /// Opens an incident by hand (`by` is filled in).
    fn open_incident(
        &self,
        _input: OpenIncident,
    ) -> BoxFuture<'_, Result<serde_json::Value, BrainError>> {
        Box::pin(async { Err(BrainError::Off("incidents")) })
    }
    /// Adds a note to an incident (`by` is filled in).
    fn incident_note(
        &self,
        _id: u64,
        _input: NoteInput,
    ) -> BoxFuture<'_, Result<serde_json::Value, BrainError>> {
        Box::pin(async { Err(BrainError::Off("incidents")) })
    }
    /// Moves an incident's lifecycle (`by` is filled in).
    fn incident_status(
        &self,
        _id: u64,
        _input: StatusInput,
    ) -> BoxFuture<'_, Result<serde_json::Value, BrainError>> {
        Box::pin(async { Err(BrainError::Off("incidents")) })
    }
    /// Sets an incident's severity or user scope by hand (`by` is filled in).
    fn incident_severity(
        &self,
        _id: u64,
        _input: SeverityInput,
    ) -> BoxFuture<'_, Result<serde_json::Value, BrainError>> {
        Box::pin(async { Err(BrainError::Off("incidents")) })
    }
    /// An incident's post-mortem in Markdown.
    fn postmortem(&self, _id: u64) -> BoxFuture<'_, Result<String, BrainError>> {
        Box::pin(async { Err(BrainError::Off("incidents")) })
    }
    /// The threshold review over the last `since`.
    fn review(
        &self,
        _since: std::time::Duration,
    ) -> BoxFuture<'_, Result<ReviewAnswer, BrainError>> {
        Box::pin(async { Err(review::off()) })
    }
    /// The client addresses, paths and statuses with the most requests over the query's span.
    fn talkers(&self, _query: TalkersQuery) -> Result<TopTalkers, TalkersError> {
        Err(TalkersError::Off)
    }
}

/// Every error the admin API answers, as one type: the status code follows from the kind.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("a valid bearer token is required")]
    Unauthorized,
    #[error("{0}")]
    BadRequest(String),
    #[error(transparent)]
    Command(#[from] CommandError),
    #[error(transparent)]
    History(#[from] HistoryError),
    #[error(transparent)]
    Rollback(#[from] RollbackError),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = match &self {
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::BadRequest(_) | ApiError::Command(CommandError::Invalid(_)) => {
                StatusCode::BAD_REQUEST
            }
            ApiError::Command(CommandError::NotFound(_)) => StatusCode::NOT_FOUND,
            ApiError::Command(CommandError::Refused(_)) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::History(HistoryError::NotFound(_)) => StatusCode::NOT_FOUND,
            ApiError::History(HistoryError::Off | HistoryError::Unavailable(_)) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiError::Rollback(e) => e.status(),
        };
        let mut resp = (status, Json(json!({ "error": self.to_string() }))).into_response();
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        resp
    }
}

/// Shared state of the admin router.
#[derive(Clone)]
pub struct AdminState {
    pub control: Arc<dyn Control>,
    /// The tokens accepted, with their roles (open without any).
    pub access: Access,
}

/// Builds the admin router.
pub fn router(state: AdminState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/api/v1/status", get(status))
        .route("/api/v1/events", get(events))
        .route("/api/v1/servers/{upstream}/{addr}/drain", post(drain))
        .route("/api/v1/servers/{upstream}/{addr}/enable", post(enable))
        .route(
            "/api/v1/servers/{upstream}/{addr}/eject",
            post(remediation::eject),
        )
        .route("/api/v1/routes/{route}/reroute", post(remediation::reroute))
        .route("/api/v1/shed", post(remediation::shed))
        .route("/api/v1/reload", post(reload))
        .route("/api/v1/cache/purge", post(purge))
        .route("/api/v1/config/versions", get(history::versions))
        .route("/api/v1/config/versions/{id}", get(history::version))
        .route("/api/v1/config/diff", get(history::diff))
        .route("/api/v1/config/rollback", post(rollback::rollback))
        .route("/api/v1/config/drift", get(changes::drift))
        .route("/api/v1/changes", get(changes::list).post(changes::record))
        .route("/api/v1/monitors", get(alerts::monitors))
        .route("/api/v1/metrics/history", get(alerts::history))
        .route("/api/v1/alerts", get(alerts::list))
        .route("/api/v1/alerts/{id}/ack", post(alerts::ack))
        .route(
            "/api/v1/silences",
            get(alerts::silences).post(alerts::add_silence),
        )
        .route("/api/v1/silences/{id}", delete(alerts::expire_silence))
        .route("/api/v1/notifications", get(notifications::list))
        .route("/api/v1/talkers", get(talkers::list))
        .route("/api/v1/receivers/{name}/test", post(notifications::test))
        .route("/api/v1/review", get(review::review))
        .route("/api/v1/remediations", get(incidents::runs))
        .route("/api/v1/remediations/ack", post(incidents::ack))
        .route(
            "/api/v1/incidents",
            get(incidents::list).post(incidents::open),
        )
        .route("/api/v1/incidents/{id}", get(incidents::show))
        .route("/api/v1/incidents/{id}/notes", post(incidents::note))
        .route("/api/v1/incidents/{id}/status", post(incidents::status))
        .route("/api/v1/incidents/{id}/severity", post(incidents::severity))
        .route(
            "/api/v1/incidents/{id}/postmortem.md",
            get(incidents::postmortem),
        )
        .route("/api/v1/heartbeat/{name}", post(alerts::ping))
        .route("/api/v1/heartbeat/{name}/start", post(alerts::start))
        .route("/api/v1/heartbeat/{name}/fail", post(alerts::failed))
        .route(
            "/api/v1/alertmanager",
            post(alerts::alertmanager).layer(DefaultBodyLimit::max(alerts::WEBHOOK_MAX_BYTES)),
        )
        .layer(middleware::from_fn_with_state(state.clone(), access::auth))
        .merge(dashboard::routes(state.clone()))
        .with_state(state)
}

/// Serves the admin API on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AdminState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}

/// Where a command comes from: the `Ballast-Origin` header names a client other than a call to
/// the API (the CLI, the dashboard, a remediation); a value that is none of those is refused.
fn origin(headers: &HeaderMap) -> Result<Origin, ApiError> {
    let Some(v) = headers.get(ORIGIN_HEADER) else {
        return Ok(Origin::Api);
    };
    v.to_str()
        .ok()
        .and_then(Origin::parse)
        .filter(|o| {
            matches!(
                o,
                Origin::Api | Origin::Cli | Origin::Dashboard | Origin::Remediation
            )
        })
        .ok_or_else(|| {
            ApiError::BadRequest(format!(
                "{ORIGIN_HEADER} must be one of api, cli, dashboard, remediation (got {v:?})"
            ))
        })
}

/// Applies a command on behalf of the request's origin and, when the request carried a token,
/// of the person it names (set by the auth middleware; `None` on an open API).
async fn command(state: &AdminState, headers: &HeaderMap, command: Command) -> Response {
    let by = match origin(headers) {
        Ok(by) => by,
        Err(e) => return e.into_response(),
    };
    let who = access::caller_name(headers);
    match state.control.apply(Issued { command, by, who }).await {
        Ok(report) => Json(report).into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// OpenMetrics for scrapers that ask for it (Prometheus does), else the Prometheus text format
/// 0.0.4 that `curl`, `promtool check metrics` and older scrapers read.
async fn metrics(State(state): State<AdminState>, req: Request) -> Response {
    let openmetrics = state.control.metrics();
    let wants_openmetrics = req
        .headers()
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("application/openmetrics-text"));
    if wants_openmetrics {
        (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            openmetrics,
        )
            .into_response()
    } else {
        (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            text_format(&openmetrics),
        )
            .into_response()
    }
}

/// Rewrites OpenMetrics text as Prometheus text format 0.0.4: a counter family is named after
/// its `_total` samples in `# HELP`/`# TYPE`, `unknown` becomes `untyped`, and `# UNIT` and
/// `# EOF` are dropped. Samples, labels and escaping are the same in both formats.
fn text_format(openmetrics: &str) -> String {
    let counters: std::collections::HashSet<&str> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE ")?.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let meta = ["# HELP ", "# TYPE "].iter().find_map(|prefix| {
            let (name, rest) = line.strip_prefix(prefix)?.split_once(' ')?;
            let name = if counters.contains(name) {
                format!("{name}_total")
            } else {
                name.to_string()
            };
            let rest = if *prefix == "# TYPE " && rest == "unknown" {
                "untyped"
            } else {
                rest
            };
            Some(format!("{prefix}{name} {rest}"))
        });
        out.push_str(meta.as_deref().unwrap_or(line));
        out.push('\n');
    }
    out
}

async fn status(State(state): State<AdminState>) -> Json<Snapshot> {
    Json(state.control.status())
}

/// `?after=N` returns only events newer than sequence number N (for polling).
#[derive(serde::Deserialize)]
struct EventsQuery {
    #[serde(default)]
    after: u64,
}

async fn events(
    State(state): State<AdminState>,
    axum::extract::Query(q): axum::extract::Query<EventsQuery>,
) -> Json<Vec<Stamped>> {
    Json(state.control.events(q.after))
}

async fn drain(
    State(state): State<AdminState>,
    headers: HeaderMap,
    Path((upstream, server)): Path<(String, String)>,
) -> Response {
    command(&state, &headers, Command::Drain { upstream, server }).await
}

async fn enable(
    State(state): State<AdminState>,
    headers: HeaderMap,
    Path((upstream, server)): Path<(String, String)>,
) -> Response {
    command(&state, &headers, Command::Enable { upstream, server }).await
}

async fn reload(State(state): State<AdminState>, headers: HeaderMap) -> Response {
    command(&state, &headers, Command::Reload).await
}

/// `?route=NAME` limits a purge to one route, `?prefix=/path` to paths under it.
#[derive(serde::Deserialize)]
struct PurgeQuery {
    route: Option<String>,
    prefix: Option<String>,
}

async fn purge(
    State(state): State<AdminState>,
    headers: HeaderMap,
    axum::extract::Query(q): axum::extract::Query<PurgeQuery>,
) -> Response {
    let cmd = Command::Purge {
        route: q.route,
        prefix: q.prefix,
    };
    command(&state, &headers, cmd).await
}

#[cfg(test)]
mod router_tests;
