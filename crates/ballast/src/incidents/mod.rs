//! Wires incidents into the running gateway: one task watches the monitoring engine's alerts
//! and opens, joins and updates incidents (`ballast-incident` decides, this module stores and
//! tells), measures their scope from the gateway's own counters, announces a new incident to
//! its receivers through the notification outbox, and answers the admin API.
//!
//! ```text
//!  alert changed ─▶ Correlator::decide ─┬─ Open(draft) ─▶ measure scope ─▶ Incident::open
//!                                       │                 ─▶ store ─▶ announce ─▶ propagate
//!                                       ├─ Join(id) ─────▶ join ─▶ save
//!                                       └─ AlreadyIn(id) ─▶ record fired/resolved ─▶ save
//!  every alert of an open incident resolved ─▶ status analyse (users are fine: recovered)
//!  each minute while not recovered ─▶ measure scope again (severity follows the matrix)
//! ```
//!
//! Open incidents live in memory (the correlator needs them at every alert) and in the store
//! (so a restart keeps them); closed ones are read from the store. Without a store they live
//! in memory only. An edit the store could not take is saved again each second until it
//! does; an incident opened while the store is away gets its id when the store takes it.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ballast_config::Config;
use ballast_core::incident::{IncidentSummary, Sev, Status, UserScope};
use ballast_core::{AlertState, AlertView, Event, Severity};
use ballast_incident::{
    measured_scope, render_postmortem, Correlator, Decision, Draft, Impact, Incident,
    IncidentConfig, IncidentSpec, Matrix,
};
use ballast_notify::{AlertSource, Notice};
use ballast_store::NewIncident;
use tokio::sync::Notify;

use crate::app::receiver_names;
use crate::history::History;
use crate::incident_timeline::{assemble, delta, per_route};
use crate::remedying::Announce;

mod persist;
mod watch;

use persist::{flush, save};
use watch::{open, watch};

/// The longest gap between two looks at the alerts.
const TICK: Duration = Duration::from_secs(1);
/// How often the scope of an incident not yet recovered is measured again.
const MEASURE_EVERY_MS: u64 = 60_000;
/// The "first minutes" whose top talkers an incident keeps.
const TALKERS_SPAN_MS: u64 = 5 * 60_000;
/// How many clients, paths and statuses it keeps.
const TALKERS_LIMIT: usize = 10;
/// Counter readings kept to measure over (one per tick).
const READINGS: usize = 120;
/// Closed incidents memory keeps when there is no store.
const MEMORY_CLOSED: usize = 1_000;
/// Where memory-only incident ids start while the store is away (they are replaced once it
/// takes the incident).
const UNSAVED_IDS: u64 = 1 << 40;
/// Who the gateway's own moves are stamped with.
pub const AUTHOR: &str = ballast_incident::lifecycle::SYSTEM_AUTHOR;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn now_ms() -> u64 {
    crate::changes::now_unix_ms()
}

/// Why an incident request failed.
#[derive(Debug, thiserror::Error)]
pub enum IncidentsError {
    #[error("no incident {0}")]
    NotFound(u64),
    #[error(transparent)]
    Invalid(#[from] ballast_incident::IncidentError),
    #[error("{0}")]
    Unavailable(String),
}

/// Requests and 5xx answers per route at one moment (see [`per_route`]).
type PerRoute = BTreeMap<String, (u64, u64)>;

struct State {
    correlator: Correlator,
    matrix: Matrix,
    functions: BTreeMap<String, ballast_config::model::FunctionScope>,
    /// Each route's upstream, to find the routes an `upstream` label points at.
    upstreams: BTreeMap<String, String>,
    open: Vec<Incident>,
    /// Closed incidents (no store only).
    closed: VecDeque<Incident>,
    /// Ids whose edits the store has not taken yet.
    dirty: BTreeSet<u64>,
    /// Alert states seen (id → state name and since), to act on changes only.
    seen: HashMap<String, (&'static str, u64)>,
    /// When each open incident's scope was last measured.
    measured: HashMap<u64, u64>,
    next_unsaved: u64,
}

struct Shared {
    state: Mutex<State>,
    spec: Mutex<IncidentSpec>,
    readings: Mutex<VecDeque<(u64, PerRoute)>>,
    wake: Notify,
    gateway: ballast_proxy::Gateway,
    history: Arc<History>,
    announce: Announce,
    store_on: bool,
}

/// The running incident service.
pub struct Incidents {
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

/// An incident with what the sources add to it, as the API shows it.
#[derive(Debug, serde::Serialize)]
pub struct IncidentView {
    #[serde(flatten)]
    pub incident: Incident,
    pub what_changed: Vec<ballast_core::ChangeEntry>,
    pub time_to_detect_ms: u64,
    pub time_to_acknowledge_ms: Option<u64>,
    pub time_to_recover_ms: Option<u64>,
}

fn compile(spec: &IncidentSpec, receivers: &BTreeSet<String>) -> IncidentConfig {
    spec.compile(receivers).unwrap_or_else(|e| {
        // `ballast check` refused this already; the defaults are the safe answer to a bug.
        tracing::error!(error = %e, "[incident] refused; the defaults apply");
        IncidentSpec::default()
            .compile(&BTreeSet::new())
            .expect("the default [incident] compiles")
    })
}

fn layout(
    config: &Config,
) -> (
    BTreeMap<String, ballast_config::model::FunctionScope>,
    BTreeMap<String, String>,
) {
    (
        config.function_scopes(),
        config
            .routes
            .iter()
            .map(|r| (r.name.clone(), r.upstream.clone()))
            .collect(),
    )
}

impl Incidents {
    /// Starts the service: open incidents come back from the store, then alerts are watched.
    pub async fn start(
        config: &Config,
        alerts: AlertSource,
        gateway: ballast_proxy::Gateway,
        history: Arc<History>,
        announce: Announce,
        store_on: bool,
    ) -> Incidents {
        let spec = config.incident.clone().unwrap_or_default();
        let compiled = compile(&spec, &receiver_names(config));
        let (functions, upstreams) = layout(config);
        let mut open = Vec::new();
        if let Ok(store) = history.store() {
            match tokio::time::timeout(crate::alerting::RESTORE_WAIT, store.open_incidents()).await
            {
                Ok(Ok(rows)) => {
                    for row in rows {
                        match serde_json::from_str::<Incident>(&row.incident.body_json) {
                            Ok(i) => open.push(i),
                            Err(e) => {
                                tracing::error!(id = row.id, error = %e, "an incident in the store could not be read")
                            }
                        }
                    }
                }
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "incidents: open incidents could not be reloaded");
                    let _ = history.failed(e);
                }
                Err(_) => tracing::warn!("incidents: the store did not answer in time"),
            }
        }
        if !open.is_empty() {
            tracing::info!(open = open.len(), "incidents: open incidents reloaded");
        }
        // The alerts monitoring restored were news to the process before this one, which
        // opened (and maybe closed) their incidents: they are not news again.
        let seen: HashMap<String, (&'static str, u64)> = alerts(now_ms())
            .into_iter()
            .map(|v| (v.alert.id, (v.alert.state.name(), v.alert.since_unix_ms)))
            .collect();
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                correlator: compiled.correlator,
                matrix: compiled.matrix,
                functions,
                upstreams,
                open,
                closed: VecDeque::new(),
                dirty: BTreeSet::new(),
                seen,
                measured: HashMap::new(),
                next_unsaved: if store_on { UNSAVED_IDS } else { 1 },
            }),
            spec: Mutex::new(spec),
            readings: Mutex::new(VecDeque::new()),
            wake: Notify::new(),
            gateway,
            history,
            announce,
            store_on,
        });
        let task = tokio::spawn(watch(shared.clone(), alerts));
        Incidents { shared, task }
    }

    /// An alert changed: look now.
    pub fn wake(&self) {
        self.shared.wake.notify_one();
    }

    /// Applies a reloaded config (`[incident]`, receivers, routes' function scopes).
    pub fn reconfigure(&self, config: &Config) {
        let spec = config.incident.clone().unwrap_or_default();
        let compiled = compile(&spec, &receiver_names(config));
        let (functions, upstreams) = layout(config);
        let mut st = lock(&self.shared.state);
        st.correlator = compiled.correlator;
        st.matrix = compiled.matrix;
        st.functions = functions;
        st.upstreams = upstreams;
        *lock(&self.shared.spec) = spec;
    }

    pub fn stop(&self) {
        self.task.abort();
    }

    /// Incidents, newest first: open ones from memory, the rest from the store.
    pub async fn list(
        &self,
        status: Option<Status>,
        limit: u32,
    ) -> Result<Vec<IncidentSummary>, IncidentsError> {
        let mut out: Vec<IncidentSummary> = {
            let st = lock(&self.shared.state);
            st.open
                .iter()
                .chain(&st.closed)
                .map(Incident::summary)
                .collect()
        };
        if self.shared.store_on {
            let store = self
                .shared
                .history
                .store()
                .map_err(|e| IncidentsError::Unavailable(e.to_string()))?;
            let rows = store.incidents(status, limit).await.map_err(|e| {
                IncidentsError::Unavailable(self.shared.history.failed(e).to_string())
            })?;
            for row in rows {
                if !out.iter().any(|s| s.id == row.id) {
                    if let Ok(i) = serde_json::from_str::<Incident>(&row.incident.body_json) {
                        out.push(i.summary());
                    }
                }
            }
        }
        out.retain(|s| status.is_none_or(|want| s.status == want));
        out.sort_by(|a, b| {
            b.opened_unix_ms
                .cmp(&a.opened_unix_ms)
                .then(b.id.cmp(&a.id))
        });
        out.truncate(limit as usize);
        Ok(out)
    }

    /// One incident, from memory or the store.
    async fn load(&self, id: u64) -> Result<Incident, IncidentsError> {
        {
            let st = lock(&self.shared.state);
            if let Some(i) = st.open.iter().chain(&st.closed).find(|i| i.id == id) {
                return Ok(i.clone());
            }
        }
        if !self.shared.store_on {
            return Err(IncidentsError::NotFound(id));
        }
        let store = self
            .shared
            .history
            .store()
            .map_err(|e| IncidentsError::Unavailable(e.to_string()))?;
        let row = store
            .incident(id)
            .await
            .map_err(|e| IncidentsError::Unavailable(self.shared.history.failed(e).to_string()))?
            .ok_or(IncidentsError::NotFound(id))?;
        serde_json::from_str(&row.incident.body_json).map_err(|e| {
            IncidentsError::Unavailable(format!("incident {id} could not be read: {e}"))
        })
    }

    /// One incident with its whole timeline and "what changed".
    pub async fn show(
        &self,
        id: u64,
        runs: &[ballast_core::RemediationRun],
    ) -> Result<IncidentView, IncidentsError> {
        let mut incident = self.load(id).await?;
        let now = now_ms();
        let more = assemble(&self.shared.history, &incident, runs, now).await;
        if incident.timeline.extend(more.entries) > 0 {
            // Keep what was found with the incident (its sources may be pruned later).
            let copy = incident.clone();
            self.edit(id, move |i| {
                i.timeline = copy.timeline.clone();
                Ok(())
            })
            .await
            .ok();
        }
        Ok(IncidentView {
            time_to_detect_ms: incident.time_to_detect_ms(),
            time_to_acknowledge_ms: incident.time_to_acknowledge_ms(),
            time_to_recover_ms: incident.time_to_recover_ms(),
            what_changed: more.what_changed,
            incident,
        })
    }

    /// The post-mortem in Markdown.
    pub async fn postmortem(
        &self,
        id: u64,
        runs: &[ballast_core::RemediationRun],
    ) -> Result<String, IncidentsError> {
        let view = self.show(id, runs).await?;
        let impact = match view.incident.scope.user_source {
            ballast_core::incident::UserScopeSource::Measured { failed, total } => Impact {
                failed_requests: Some(failed),
                total_requests: Some(total),
            },
            _ => Impact::default(),
        };
        Ok(render_postmortem(
            &view.incident,
            &impact,
            &view.what_changed,
            now_ms(),
        ))
    }

    /// Opens an incident by hand.
    pub async fn open_by_hand(
        &self,
        title: String,
        by: &str,
        started_unix_ms: Option<u64>,
        severity: Option<Sev>,
        user_scope: Option<UserScope>,
    ) -> Result<Incident, IncidentsError> {
        let now = now_ms();
        let receivers = lock(&self.shared.state).correlator.receivers().to_vec();
        let draft = Draft::by_hand(
            title,
            by,
            started_unix_ms.unwrap_or(now).min(now),
            receivers,
        );
        let id = open(&self.shared, draft, by, now).await?;
        if severity.is_some() || user_scope.is_some() {
            self.edit(id, |i| {
                if let Some(s) = severity {
                    i.set_severity(s, by, now);
                }
                Ok(())
            })
            .await?;
            if let Some(u) = user_scope {
                let matrix = lock(&self.shared.state).matrix;
                self.edit(id, |i| {
                    i.set_user_scope(u, by, &matrix, now);
                    Ok(())
                })
                .await?;
            }
        }
        self.load(id).await
    }

    /// A person grades the incident, or says how many users are hurt (the matrix then grades
    /// it, unless a severity was set by hand).
    pub async fn set_severity(
        &self,
        id: u64,
        severity: Option<Sev>,
        users: Option<UserScope>,
        by: &str,
    ) -> Result<Incident, IncidentsError> {
        let now = now_ms();
        let matrix = lock(&self.shared.state).matrix;
        let i = self
            .edit(id, |i| {
                if let Some(u) = users {
                    i.set_user_scope(u, by, &matrix, now);
                }
                if let Some(s) = severity {
                    i.set_severity(s, by, now);
                }
                Ok(())
            })
            .await?;
        self.shared.gateway.emit(Event::IncidentGraded {
            id,
            severity: i.severity.name().to_string(),
            by: by.to_string(),
        });
        Ok(i)
    }

    /// Adds a note.
    pub async fn note(&self, id: u64, text: String, by: &str) -> Result<Incident, IncidentsError> {
        let now = now_ms();
        let i = self
            .edit(id, |i| i.add_note(text, by, now).map_err(Into::into))
            .await?;
        self.shared.gateway.emit(Event::IncidentNoted {
            id,
            by: by.to_string(),
        });
        Ok(i)
    }

    /// Moves the lifecycle (and records who); a root cause may come with it.
    pub async fn set_status(
        &self,
        id: u64,
        status: Status,
        by: &str,
        root_cause: Option<String>,
    ) -> Result<Incident, IncidentsError> {
        let now = now_ms();
        let i = self
            .edit(id, |i| {
                i.move_to(status, now, by)?;
                if let Some(text) = root_cause {
                    i.set_root_cause(text, by, now)?;
                }
                Ok(())
            })
            .await?;
        self.shared.gateway.emit(Event::IncidentStatusChanged {
            id,
            status: status.name().to_string(),
            by: by.to_string(),
        });
        Ok(i)
    }

    /// Applies `f` to incident `id` and saves it; closed incidents leave memory.
    async fn edit(
        &self,
        id: u64,
        f: impl FnOnce(&mut Incident) -> Result<(), IncidentsError>,
    ) -> Result<Incident, IncidentsError> {
        let mut f = Some(f);
        let in_memory = {
            let mut st = lock(&self.shared.state);
            let st = &mut *st;
            match st
                .open
                .iter_mut()
                .chain(st.closed.iter_mut())
                .find(|i| i.id == id)
            {
                Some(i) => {
                    let mut copy = i.clone();
                    if let Some(f) = f.take() {
                        f(&mut copy)?;
                    }
                    *i = copy.clone();
                    st.dirty.insert(id);
                    Some(copy)
                }
                None => None,
            }
        };
        let edited = match in_memory {
            Some(i) => i,
            None => {
                let mut i = self.load(id).await?;
                if let Some(f) = f.take() {
                    f(&mut i)?;
                }
                save(&self.shared, &i).await?;
                return Ok(i);
            }
        };
        flush(&self.shared).await;
        Ok(edited)
    }

    /// Open incidents right now (for metrics).
    pub fn metrics(&self) -> String {
        let st = lock(&self.shared.state);
        let mut by_sev: BTreeMap<&str, usize> = BTreeMap::new();
        for i in &st.open {
            *by_sev.entry(i.severity.name()).or_default() += 1;
        }
        let mut out = String::from(
            "# HELP ballast_incidents_open Open incidents by severity.\n# TYPE ballast_incidents_open gauge\n",
        );
        for sev in ["SEV1", "SEV2", "SEV3", "SEV4"] {
            out.push_str(&format!(
                "ballast_incidents_open{{severity=\"{sev}\"}} {}\n",
                by_sev.get(sev).copied().unwrap_or(0)
            ));
        }
        out
    }
}

impl Drop for Incidents {
    fn drop(&mut self) {
        self.task.abort();
    }
}
