//! The admin API's remediation and incident questions, answered from the running
//! [`Remediation`] and [`Incidents`] (and the store): what `App`'s `Control` methods delegate
//! to, kept here so the wiring in `app.rs` stays short.

use ballast_admin::{
    BrainError, IncidentQuery, NoteInput, OpenIncident, RemediationQuery, StatusInput,
};
use ballast_core::RemediationRun;
use serde_json::{json, Value};

use crate::history::History;
use crate::incidents::{Incidents, IncidentsError};
use crate::remedying::Remediation;

fn brain(e: IncidentsError) -> BrainError {
    match e {
        IncidentsError::NotFound(id) => BrainError::NotFound(format!("no incident {id}")),
        IncidentsError::Invalid(e) => BrainError::BadRequest(e.to_string()),
        IncidentsError::Unavailable(e) => BrainError::Unavailable(e),
    }
}

fn to_json(v: impl serde::Serialize) -> Result<Value, BrainError> {
    serde_json::to_value(v).map_err(|e| BrainError::Unavailable(e.to_string()))
}

/// Runs newest first: memory's (every run of this process, the latest word on each) merged
/// with the store's, one line per run.
pub async fn runs(
    r: &Remediation,
    history: &History,
    since_unix_ms: u64,
    limit: u32,
) -> Vec<RemediationRun> {
    let mut by_key = std::collections::BTreeMap::new();
    if let Ok(store) = history.store() {
        match store.remediations(since_unix_ms, limit).await {
            Ok(rows) => {
                for s in rows {
                    by_key.insert(
                        (
                            s.run.started_unix_ms,
                            s.run.rule.clone(),
                            s.run.target.clone(),
                        ),
                        s.run,
                    );
                }
            }
            Err(e) => {
                let _ = history.failed(e);
            }
        }
    }
    for run in r.memory_runs() {
        if run.started_unix_ms >= since_unix_ms {
            by_key.insert(
                (run.started_unix_ms, run.rule.clone(), run.target.clone()),
                run,
            );
        }
    }
    by_key.into_values().rev().take(limit as usize).collect()
}

/// `GET /api/v1/remediations`.
pub async fn remediations(
    r: &Remediation,
    history: &History,
    q: RemediationQuery,
) -> Result<Value, BrainError> {
    let read = if q.rule.is_some() || q.target.is_some() {
        10_000
    } else {
        q.limit
    };
    let mut all = runs(r, history, q.since_unix_ms, read).await;
    all.retain(|run| {
        q.rule.as_deref().is_none_or(|x| run.rule == x)
            && q.target.as_deref().is_none_or(|x| run.target == x)
    });
    all.truncate(q.limit as usize);
    let blocked: Vec<Value> = r
        .blocked()
        .into_iter()
        .map(|(target, since, why)| json!({ "target": target, "since_unix_ms": since, "why": why }))
        .collect();
    Ok(json!({ "runs": all, "blocked": blocked }))
}

/// `POST /api/v1/remediations/ack`.
pub fn ack(r: &Remediation, target: &str, by: &str) -> Result<Value, BrainError> {
    if r.acknowledge(target, by) {
        Ok(json!({ "target": target, "acknowledged": true, "by": by }))
    } else {
        Err(BrainError::NotFound(format!(
            "{target:?} is not blocked; `ballast remedy runs` lists the blocked targets"
        )))
    }
}

pub async fn list(i: &Incidents, q: IncidentQuery) -> Result<Value, BrainError> {
    to_json(i.list(q.status, q.limit).await.map_err(brain)?)
}

pub async fn show(i: &Incidents, r: Option<&Remediation>, id: u64) -> Result<Value, BrainError> {
    let runs = r.map(Remediation::memory_runs).unwrap_or_default();
    to_json(i.show(id, &runs).await.map_err(brain)?)
}

pub async fn postmortem(
    i: &Incidents,
    r: Option<&Remediation>,
    id: u64,
) -> Result<String, BrainError> {
    let runs = r.map(Remediation::memory_runs).unwrap_or_default();
    i.postmortem(id, &runs).await.map_err(brain)
}

pub async fn open(i: &Incidents, input: OpenIncident) -> Result<Value, BrainError> {
    let by = input.by.unwrap_or_else(|| "api".into());
    to_json(
        i.open_by_hand(
            input.title,
            &by,
            input.started_unix_ms,
            input.severity,
            input.user_scope,
        )
        .await
        .map_err(brain)?,
    )
}

pub async fn note(i: &Incidents, id: u64, input: NoteInput) -> Result<Value, BrainError> {
    let by = input.by.unwrap_or_else(|| "api".into());
    to_json(i.note(id, input.text, &by).await.map_err(brain)?)
}

pub async fn status(i: &Incidents, id: u64, input: StatusInput) -> Result<Value, BrainError> {
    let by = input.by.unwrap_or_else(|| "api".into());
    to_json(
        i.set_status(id, input.status, &by, input.root_cause)
            .await
            .map_err(brain)?,
    )
}

pub async fn severity(
    i: &Incidents,
    id: u64,
    input: ballast_admin::SeverityInput,
) -> Result<Value, BrainError> {
    let by = input.by.unwrap_or_else(|| "api".into());
    to_json(
        i.set_severity(id, input.severity, input.user_scope, &by)
            .await
            .map_err(brain)?,
    )
}
