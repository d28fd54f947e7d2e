//! The incident task: every second (and at once on an alert change) it reads the gateway's
//! counters and the alerts, opens, joins and updates incidents, moves recovered ones on, and
//! measures the scope of those not yet recovered.

use super::persist::{flush, new_incident};
use super::*;

/// Opens an incident from `draft`: stored (or kept in memory), announced, propagated.
pub(super) async fn open(
    shared: &Shared,
    draft: Draft,
    by: &str,
    now: u64,
) -> Result<u64, IncidentsError> {
    let matrix = lock(&shared.state).matrix;
    let mut provisional = Incident::open(0, draft, &matrix, now, by)?;
    provisional.top_talkers = Some(talkers(shared, provisional.started_unix_ms, now));
    let mut id = None;
    if shared.store_on {
        if let Ok(store) = shared.history.store() {
            let new = new_incident(&provisional, now)
                .map_err(|e| IncidentsError::Unavailable(e.to_string()))?;
            let copy = provisional.clone();
            match tokio::time::timeout(
                Duration::from_secs(2),
                store.create_incident(&new, move |id| {
                    let mut c = copy;
                    c.id = id;
                    serde_json::to_string(&c)
                }),
            )
            .await
            {
                Ok(Ok(got)) => id = Some(got),
                Ok(Err(e)) => {
                    let _ = shared.history.failed(e);
                }
                Err(_) => {}
            }
        }
    }
    let mut incident = provisional;
    let saved = id.is_some();
    incident.id = match id {
        Some(id) => id,
        None => {
            let mut st = lock(&shared.state);
            let id = st.next_unsaved;
            st.next_unsaved += 1;
            id
        }
    };
    let id = incident.id;
    tracing::warn!(id, severity = %incident.severity, title = %incident.title, "incident opened");
    shared.gateway.emit(Event::IncidentOpened {
        id,
        title: incident.title.clone(),
        severity: incident.severity.name().to_string(),
        by: by.to_string(),
    });
    // Propagate: every receiver of the incident hears of it now, through the outbox.
    let mut told = 0;
    for r in &incident.receivers {
        let notice = Notice {
            kind: "incident".into(),
            labels: ballast_core::Labels::new()
                .with("incident", id.to_string())
                .with("sev", incident.severity.name()),
            severity: Severity::Critical,
            summary: format!(
                "{} incident #{id} opened: {}",
                incident.severity, incident.title
            ),
            description: Some(format!(
                "Opened by {by}. Status, timeline and post-mortem: `ballast incident show {id}`."
            )),
            at_unix_ms: now,
            key: format!("incident:{id}:opened"),
        };
        match (shared.announce)(r, &notice) {
            Ok(n) => told += n,
            Err(e) => {
                tracing::error!(receiver = %r, error = %e, "the incident could not be announced")
            }
        }
    }
    if told > 0
        && incident
            .move_to(Status::Propagate, now_ms().max(now), AUTHOR)
            .is_ok()
    {
        shared.gateway.emit(Event::IncidentStatusChanged {
            id,
            status: Status::Propagate.name().to_string(),
            by: AUTHOR.to_string(),
        });
    }
    let mut st = lock(&shared.state);
    st.measured.insert(id, now);
    if !saved || told > 0 {
        st.dirty.insert(id);
    }
    st.open.push(incident);
    Ok(id)
}

/// The routes an alert points at: its `route` label, the routes of its `upstream` label, or
/// a route named like its `service` label.
fn routes_of(st: &State, labels: &ballast_core::Labels) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    if let Some(r) = labels
        .get("route")
        .filter(|r| st.upstreams.contains_key(*r))
    {
        out.insert(r.to_string());
    }
    if let Some(u) = labels.get("upstream") {
        out.extend(
            st.upstreams
                .iter()
                .filter(|(_, up)| up.as_str() == u)
                .map(|(r, _)| r.clone()),
        );
    }
    if let Some(s) = labels
        .get("service")
        .filter(|s| st.upstreams.contains_key(*s))
    {
        out.insert(s.to_string());
    }
    out
}

/// The scope of alerts with these labels over the last minute of counter readings; `None`
/// when they point at no route (the scope is then set by hand).
fn scope_for<'a>(
    shared: &Shared,
    st: &State,
    labels: impl Iterator<Item = &'a ballast_core::Labels>,
    now: u64,
) -> Option<ballast_core::incident::Scope> {
    let routes: BTreeSet<String> = labels.flat_map(|l| routes_of(st, l)).collect();
    if routes.is_empty() {
        return None;
    }
    let readings = lock(&shared.readings);
    let (_, after) = readings.back()?;
    let before = readings
        .iter()
        .find(|(at, _)| now.saturating_sub(*at) <= 60_000)
        .map(|(_, r)| r.clone())
        .unwrap_or_default();
    let (failed, total) = delta(&before, after, &routes);
    Some(measured_scope(failed, total, &st.functions, routes))
}

/// Measures an open incident's scope again; a measure that grades milder than the incident
/// is ignored (severity tells the worst the users saw, not the last minute).
fn remeasure(shared: &Shared, st: &mut State, id: u64, now: u64) {
    let Some(idx) = st.open.iter().position(|i| i.id == id) else {
        return;
    };
    st.measured.insert(id, now);
    let started = st.open[idx].started_unix_ms;
    if now.saturating_sub(started) <= TALKERS_SPAN_MS + MEASURE_EVERY_MS {
        st.open[idx].top_talkers = Some(talkers(shared, started, now));
        st.dirty.insert(id);
    }
    let labels: Vec<ballast_core::Labels> = st.open[idx]
        .alerts
        .iter()
        .map(|a| a.labels.clone())
        .collect();
    let Some(scope) = scope_for(shared, st, labels.iter(), now) else {
        return;
    };
    let matrix = st.matrix;
    let i = &mut st.open[idx];
    let unmeasured = matches!(
        i.scope.user_source,
        ballast_core::incident::UserScopeSource::Unmeasured
    );
    if unmeasured || matrix.grade(&scope) <= i.severity {
        i.set_scope(scope, &matrix, now);
        st.dirty.insert(id);
    }
}

/// The top talkers of an incident's first minutes: from a minute before its start (the
/// counters' buckets are minutes) to [`TALKERS_SPAN_MS`] after it, or now if sooner.
fn talkers(shared: &Shared, started: u64, now: u64) -> ballast_core::TopTalkers {
    let until = now.min(started.saturating_add(TALKERS_SPAN_MS));
    shared.gateway.top_talkers(
        started.saturating_sub(60_000),
        until.max(started),
        TALKERS_LIMIT,
    )
}

/// The draft of a relapse of incident `of`: the alert, the incident's receivers, and a title
/// that names the incident it relapsed from.
fn relapse(shared: &Shared, st: &State, of: u64, a: &ballast_core::AlertRecord, now: u64) -> Draft {
    let old = st
        .open
        .iter()
        .find(|i| i.id == of)
        .map_or(a.rule.as_str(), |i| i.title.as_str());
    let mut title = format!("relapse of #{of}: {old}");
    while title.len() > ballast_incident::incident::MAX_TITLE_BYTES {
        title.pop();
    }
    Draft {
        title,
        started_unix_ms: a.since_unix_ms.min(now),
        opened_by: ballast_incident::OpenedBy::Alert {
            alert_id: a.id.clone(),
        },
        alerts: vec![ballast_incident::AlertRef::of(a, now)],
        receivers: st.correlator.receivers().to_vec(),
        scope: scope_for(shared, st, std::iter::once(&a.labels), now),
        timeline: ballast_core::incident::TimelineEntry::from_alert(a)
            .into_iter()
            .collect(),
    }
}

/// One alert's news for the incidents.
fn consider(shared: &Shared, a: &ballast_core::AlertRecord, now: u64) -> Option<Draft> {
    let mut st = lock(&shared.state);
    match st.correlator.decide(&st.open, a, now) {
        Decision::Open(mut draft) => {
            draft.scope = scope_for(shared, &st, draft.alerts.iter().map(|r| &r.labels), now);
            Some(draft)
        }
        Decision::Join(id) | Decision::Ignore(ballast_incident::IgnoreReason::AlreadyIn(id)) => {
            let recovered = st
                .open
                .iter()
                .find(|i| i.id == id)
                .is_some_and(|i| i.status() >= Status::Analyse);
            if recovered && a.state.severity().is_some() {
                // It fires again after the incident recovered: a relapse is a new incident,
                // and the old one says so.
                let draft = relapse(shared, &st, id, a, now);
                if let Some(i) = st.open.iter_mut().find(|i| i.id == id) {
                    let note = format!(
                        "relapse: {} fired again after recovery; a new incident was opened",
                        a.rule
                    );
                    if i.add_note(note, AUTHOR, now).is_ok() {
                        st.dirty.insert(id);
                    }
                }
                return Some(draft);
            }
            if let Some(i) = st.open.iter_mut().find(|i| i.id == id) {
                if i.join(a, now).is_ok() {
                    st.dirty.insert(id);
                }
            }
            None
        }
        Decision::Ignore(_) => None,
    }
}

pub(super) async fn watch(shared: Arc<Shared>, alerts: AlertSource) {
    loop {
        let now = now_ms();
        {
            // One reading a second at most, however often alerts wake the task, so the
            // readings kept always reach a minute back.
            let mut r = lock(&shared.readings);
            if r.back()
                .is_none_or(|(at, _)| now.saturating_sub(*at) >= 900)
            {
                r.push_back((now, per_route(&shared.gateway.counters())));
            }
            while r.len() > READINGS {
                r.pop_front();
            }
        }
        let current: Vec<AlertView> = alerts(now);
        let news: Vec<ballast_core::AlertRecord> = {
            let mut st = lock(&shared.state);
            let present: BTreeSet<&str> = current.iter().map(|v| v.alert.id.as_str()).collect();
            st.seen.retain(|id, _| present.contains(id.as_str()));
            current
                .iter()
                .map(|v| &v.alert)
                .filter(|a| {
                    let key = (a.state.name(), a.since_unix_ms);
                    let news = st.seen.get(&a.id) != Some(&key)
                        && matches!(a.state, AlertState::Firing { .. } | AlertState::Resolved);
                    st.seen.insert(a.id.clone(), key);
                    news
                })
                .cloned()
                .collect()
        };
        for a in &news {
            if let Some(draft) = consider(&shared, a, now) {
                if let Err(e) = open(&shared, draft, AUTHOR, now).await {
                    tracing::error!(error = %e, alert = %a.id, "an incident could not be opened");
                }
            }
        }
        {
            let firing: BTreeSet<&str> = current
                .iter()
                .filter(|v| v.alert.state.severity().is_some())
                .map(|v| v.alert.id.as_str())
                .collect();
            let mut st = lock(&shared.state);
            let mut recovered = Vec::new();
            let mut due = Vec::new();
            for i in &mut st.open {
                if i.status() >= Status::Analyse {
                    continue;
                }
                if !i.alerts.is_empty() && i.alerts.iter().all(|a| !firing.contains(a.id.as_str()))
                {
                    // Users are fine again: recovered, by the alerts' word.
                    if i.move_to(Status::Analyse, now, AUTHOR).is_ok() {
                        recovered.push(i.id);
                    }
                } else {
                    due.push(i.id);
                }
            }
            for id in &recovered {
                st.dirty.insert(*id);
                shared.gateway.emit(Event::IncidentStatusChanged {
                    id: *id,
                    status: Status::Analyse.name().to_string(),
                    by: AUTHOR.to_string(),
                });
            }
            for id in due {
                let last = st.measured.get(&id).copied().unwrap_or(0);
                if now.saturating_sub(last) >= MEASURE_EVERY_MS {
                    remeasure(&shared, &mut st, id, now);
                }
            }
        }
        if !lock(&shared.state).dirty.is_empty() {
            flush(&shared).await;
        }
        tokio::select! {
            _ = shared.wake.notified() => {}
            _ = tokio::time::sleep(TICK) => {}
        }
    }
}
