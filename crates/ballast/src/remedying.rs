//! Wires automatic remediation into the running gateway: one task watches the monitoring
//! engine's alerts, asks `ballast-remedy` what to do when one starts firing, carries the runs
//! out (off the task, so a slow command never delays the next decision), waits for `verify`,
//! escalates to a person through the notification outbox, and records every run: in the
//! store (through a writer that retries, so a store outage loses no run), as an event, and in
//! memory for the API while the store is away.
//!
//! ```text
//!           alerts (woken on every change, and each second)
//!              │ new firing episode            │ stopped firing
//!              ▼                               ▼
//!   Remedy::on_alert ─ Refused ─▶ record    Verifier::resolved ─▶ finish(ok) ─┐
//!              │ Execute                                                      │
//!              ▼                                                              │
//!   execute (own task) ─▶ record ─┬─ ok, real, verify ─▶ Verifier::watch      │
//!                                 │                       └ expired ─▶ update record (failed),
//!                                 │                                   finish(failed) ─┤
//!                                 └─ otherwise ─────────────▶ finish(ok?) ───────────┤
//!                                                                                     ▼
//!                                        escalation? ─▶ event + notice to `escalate_to`
//! ```
//!
//! A run that failed (or whose `verify` ran out) while its alert keeps firing is tried again
//! after the rule's cooldown, so "restart, still broken, restart" goes on until the guards
//! refuse it (budget spent) or too many failures block the target, and a person is called.
//!
//! Rules with `when = { event = "KIND" }` are offered each new gateway event of that kind
//! once (polled each second), as a one-shot record with the event's fields as labels.
//!
//! At start the last day's runs come back from the store and are replayed into the guards
//! (budgets, cooldowns, failure counts, blocks), so restarting Ballast never hands a restart
//! loop a fresh budget; an alert still firing whose episode was already acted on is not acted
//! on again. A blocked target acts again once a person acknowledges it (or the alert that
//! caused its runs).

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ballast_config::model::RemedyPlan;
use ballast_core::{AlertState, Event, EventQuery, RemediationResult, RemediationRun, Severity};
use ballast_notify::{AlertSource, Notice};
use ballast_remedy::guard::{BlockCause, Rate};
use ballast_remedy::rule::Rules;
use ballast_remedy::run::{execute, Escalate, Job, Remedy, Triggered};
use ballast_remedy::verify::Verifier;
use ballast_store::Store;
use tokio::sync::{mpsc, Notify};

use crate::history::History;
use crate::remedy_gateway::GatewayActions;

/// How far back a start replays runs into the guards.
const REPLAY_SINCE: Duration = Duration::from_secs(24 * 3600);
/// The most runs replayed.
const REPLAY_LIMIT: u32 = 10_000;
/// Runs kept in memory for the API (the newest).
const MEMORY_RUNS: usize = 1_000;
/// Runs waiting for the store; more are dropped and counted.
const WRITES: usize = 4_096;
/// The longest gap between two looks at the alerts.
const TICK: Duration = Duration::from_secs(1);

/// Sends a notice to a receiver through the notification outbox.
pub type Announce = Arc<dyn Fn(&str, &Notice) -> Result<usize, String> + Send + Sync>;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn now_ms() -> u64 {
    crate::changes::now_unix_ms()
}

/// A run's identity across its first record and its update after `verify`.
type RunKey = (String, String, u64);

fn key_of(run: &RemediationRun) -> RunKey {
    (run.rule.clone(), run.target.clone(), run.started_unix_ms)
}

/// What the writer does with a run.
enum Write {
    Insert(RemediationRun),
    Update(RemediationRun),
}

struct State {
    remedy: Remedy,
    verifier: Verifier,
    /// Firing alerts seen, with the start of the episode acted on.
    firing: HashMap<String, u64>,
    /// The alert whose runs last touched each target (acknowledging it frees the target).
    last_alert: HashMap<String, String>,
    /// When each target was last acknowledged (a reload replays only runs after it).
    acks: HashMap<String, u64>,
    /// Alerts still firing after a failed run: when to try again (the rule's cooldown later;
    /// the guards then run it, or refuse it and escalate once the budget is spent).
    retry_at: HashMap<String, u64>,
}

impl State {
    /// A run failed: if its alert keeps firing, try again after the rule's cooldown.
    fn retry_later(&mut self, run: &RemediationRun, now: u64) {
        if run.dry_run {
            return;
        }
        if let Some(rule) = self.remedy.rules().get(&run.rule) {
            let wait = rule.guard().cooldown_ms.max(1_000);
            self.retry_at
                .insert(run.alert_id.clone(), now.saturating_add(wait));
        }
    }
}

#[derive(Default)]
struct Counters {
    runs: BTreeMap<(String, &'static str), u64>,
    escalations: u64,
    dropped: u64,
}

struct Shared {
    state: Mutex<State>,
    plan: Mutex<RemedyPlan>,
    memory: Mutex<VecDeque<RemediationRun>>,
    counters: Mutex<Counters>,
    wake: Notify,
    writes: mpsc::Sender<Write>,
    gateway: ballast_proxy::Gateway,
}

/// The running remediation.
pub struct Remediation {
    shared: Arc<Shared>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

fn remedy_of(plan: &RemedyPlan, receivers: &std::collections::BTreeSet<String>) -> Remedy {
    // The config's checks ran these already; a failure here would be a bug, and acting on
    // nothing is the safe answer to it.
    let rules = Rules::new(&plan.rules, receivers).unwrap_or_else(|e| {
        tracing::error!(error = %e, "remediation rules refused; remediation does nothing");
        Rules::default()
    });
    let rate = Rate {
        count: plan.rate.count.max(1),
        per_ms: u64::try_from(plan.rate.per.get().as_millis())
            .unwrap_or(u64::MAX)
            .max(1),
    };
    Remedy::new(rules, Some(rate))
}

impl Remediation {
    /// Starts remediation on `plan`: replays the last day's runs, then watches `alerts`.
    pub async fn start(
        plan: &RemedyPlan,
        receivers: &std::collections::BTreeSet<String>,
        alerts: AlertSource,
        gateway: ballast_proxy::Gateway,
        history: Arc<History>,
        announce: Announce,
    ) -> Remediation {
        let mut state = State {
            remedy: remedy_of(plan, receivers),
            verifier: Verifier::new(),
            firing: HashMap::new(),
            last_alert: HashMap::new(),
            acks: HashMap::new(),
            retry_at: HashMap::new(),
        };
        let mut memory = VecDeque::new();
        if let Ok(store) = history.store() {
            let since = now_ms().saturating_sub(REPLAY_SINCE.as_millis() as u64);
            replay(&store, &history, since, &mut state, &mut memory).await;
        }
        // An episode already acted on (before the restart) is not acted on again.
        let now = now_ms();
        for v in alerts(now) {
            let a = &v.alert;
            if a.state.severity().is_some()
                && memory
                    .iter()
                    .any(|r| r.alert_id == a.id && r.started_unix_ms >= a.since_unix_ms)
            {
                state.firing.insert(a.id.clone(), a.since_unix_ms);
            }
        }
        let (writes, rx) = mpsc::channel(WRITES);
        let shared = Arc::new(Shared {
            state: Mutex::new(state),
            plan: Mutex::new(plan.clone()),
            memory: Mutex::new(memory),
            counters: Mutex::new(Counters::default()),
            wake: Notify::new(),
            writes,
            gateway: gateway.clone(),
        });
        let actions = GatewayActions::new(gateway);
        let tasks = vec![
            tokio::spawn(writer(rx, history)),
            tokio::spawn(watch(shared.clone(), alerts, actions, announce)),
        ];
        Remediation { shared, tasks }
    }

    /// An alert changed: look now.
    pub fn wake(&self) {
        self.shared.wake.notify_one();
    }

    /// Applies a reloaded config's rules. An unchanged plan keeps everything; a changed one
    /// gets new rules whose guards learn the recent runs (since each target's last
    /// acknowledgement), so a reload is no way around a budget either.
    pub fn reconfigure(&self, plan: &RemedyPlan, receivers: &std::collections::BTreeSet<String>) {
        let mut running = lock(&self.shared.plan);
        if *running == *plan {
            return;
        }
        let mut remedy = remedy_of(plan, receivers);
        let mut st = lock(&self.shared.state);
        let memory = lock(&self.shared.memory);
        for run in memory.iter().rev() {
            if st
                .acks
                .get(&run.target)
                .is_none_or(|at| run.started_unix_ms > *at)
            {
                remedy.replay(run);
            }
        }
        st.remedy = remedy;
        *running = plan.clone();
        tracing::info!(rules = plan.rules.len(), "remediation runs the new rules");
    }

    /// A person acknowledged `target`: rules may act on it again. False if it was not blocked.
    pub fn acknowledge(&self, target: &str, by: &str) -> bool {
        let was = {
            let mut st = lock(&self.shared.state);
            let now = now_ms();
            st.acks.insert(target.to_string(), now);
            let was = st.remedy.acknowledge(target);
            // The alert that called for it, if still firing, is acted on again at once.
            if let Some(alert) = st.last_alert.get(target).cloned() {
                st.retry_at.insert(alert, now);
            }
            was
        };
        self.shared.wake.notify_one();
        if was {
            self.shared.gateway.emit(Event::RemediationAcknowledged {
                target: target.to_string(),
                by: by.to_string(),
            });
        }
        was
    }

    /// An alert was acknowledged: the blocked targets its runs touched are acknowledged too.
    pub fn acknowledge_alert(&self, alert_id: &str, by: &str) -> Vec<String> {
        let targets: Vec<String> = {
            let st = lock(&self.shared.state);
            let blocked: HashSet<&str> = st.remedy.guards().blocked().map(|(t, _, _)| t).collect();
            st.last_alert
                .iter()
                .filter(|(t, a)| *a == alert_id && blocked.contains(t.as_str()))
                .map(|(t, _)| t.clone())
                .collect()
        };
        targets
            .into_iter()
            .filter(|t| self.acknowledge(t, by))
            .collect()
    }

    /// The blocked targets: (target, since, why).
    pub fn blocked(&self) -> Vec<(String, u64, String)> {
        let st = lock(&self.shared.state);
        st.remedy
            .guards()
            .blocked()
            .map(|(t, since, cause)| (t.to_string(), since, cause_line(cause)))
            .collect()
    }

    /// The runs memory holds, newest first (every run of this process, up to
    /// [`MEMORY_RUNS`]); the API merges them with the store's.
    pub fn memory_runs(&self) -> Vec<RemediationRun> {
        lock(&self.shared.memory).iter().cloned().collect()
    }

    /// Counters in Prometheus text.
    pub fn metrics(&self) -> String {
        use std::fmt::Write as _;
        let c = lock(&self.shared.counters);
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP ballast_remediation_runs_total Remediation runs by rule and result (ok, failed, refused).\n# TYPE ballast_remediation_runs_total counter"
        );
        for ((rule, result), n) in &c.runs {
            let _ = writeln!(
                out,
                "ballast_remediation_runs_total{{rule=\"{}\",result=\"{result}\"}} {n}",
                escape(rule)
            );
        }
        let _ = writeln!(
            out,
            "# HELP ballast_remediation_escalations_total Times remediation gave up on a target and called a person.\n# TYPE ballast_remediation_escalations_total counter\nballast_remediation_escalations_total {}",
            c.escalations
        );
        let _ = writeln!(
            out,
            "# HELP ballast_remediation_unsaved_dropped_total Runs not written to the store because too many waited.\n# TYPE ballast_remediation_unsaved_dropped_total counter\nballast_remediation_unsaved_dropped_total {}",
            c.dropped
        );
        drop(c);
        let blocked = lock(&self.shared.state).remedy.guards().blocked().count();
        let _ = writeln!(
            out,
            "# HELP ballast_remediation_blocked_targets Targets remediation leaves alone until a person acknowledges.\n# TYPE ballast_remediation_blocked_targets gauge\nballast_remediation_blocked_targets {blocked}"
        );
        out
    }

    pub fn stop(&self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Drop for Remediation {
    fn drop(&mut self) {
        self.stop();
    }
}

use ballast_core::prom::label_value as escape;

fn cause_line(cause: &BlockCause) -> String {
    match cause {
        BlockCause::Failures { rule, count } => format!("{count} runs of {rule} failed in a row"),
        BlockCause::Budget { rule } => format!("{rule} spent its budget (max_runs)"),
    }
}

/// Replays the runs started since `since` (oldest first), after each target's last
/// acknowledgement, and puts them in memory.
async fn replay(
    store: &Store,
    history: &History,
    since: u64,
    state: &mut State,
    memory: &mut VecDeque<RemediationRun>,
) {
    let acks = EventQuery {
        since_unix_ms: Some(since),
        kind: Some("remediation_acknowledged".into()),
        ..EventQuery::default()
    };
    let (runs, acked) = tokio::join!(
        tokio::time::timeout(
            crate::alerting::RESTORE_WAIT,
            store.remediations(since, REPLAY_LIMIT)
        ),
        tokio::time::timeout(crate::alerting::RESTORE_WAIT, store.events(&acks)),
    );
    if let Ok(Ok(events)) = acked {
        for e in events {
            if let Event::RemediationAcknowledged { target, .. } = &e.stamped.event {
                state.acks.insert(target.clone(), e.stamped.at_unix_ms);
            }
        }
    }
    let runs = match runs {
        Ok(Ok(runs)) => runs,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "remediation: past runs could not be read; budgets start fresh");
            let _ = history.failed(e);
            return;
        }
        Err(_) => {
            tracing::warn!("remediation: the store did not answer in time; budgets start fresh");
            return;
        }
    };
    // Newest first from the store: replay oldest first.
    for stored in runs.iter().rev() {
        let run = &stored.run;
        if state
            .acks
            .get(&run.target)
            .is_none_or(|at| run.started_unix_ms > *at)
        {
            state.remedy.replay(run);
        }
        state
            .last_alert
            .insert(run.target.clone(), run.alert_id.clone());
    }
    if !runs.is_empty() {
        tracing::info!(
            runs = runs.len(),
            "remediation: recent runs replayed into the guards"
        );
    }
    memory.extend(runs.into_iter().take(MEMORY_RUNS).map(|s| s.run));
}

/// Writes runs to the store in order, retrying while it is away.
async fn writer(mut rx: mpsc::Receiver<Write>, history: Arc<History>) {
    let mut ids: HashMap<RunKey, u64> = HashMap::new();
    while let Some(w) = rx.recv().await {
        let mut backoff = Duration::from_millis(200);
        loop {
            let Ok(store) = history.store() else {
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(10));
                continue;
            };
            let done = match &w {
                Write::Insert(run) => store.record_remediation(run).await.map(|id| {
                    ids.insert(key_of(run), id);
                }),
                Write::Update(run) => match ids.get(&key_of(run)) {
                    Some(id) => store.update_remediation(*id, run).await,
                    // Recorded by an earlier process: find it.
                    None => match store
                        .remediations_for(&run.rule, &run.target, run.started_unix_ms)
                        .await
                    {
                        Ok(rows) => match rows
                            .iter()
                            .find(|r| r.run.started_unix_ms == run.started_unix_ms)
                        {
                            Some(r) => store.update_remediation(r.id, run).await,
                            None => store.record_remediation(run).await.map(|_| ()),
                        },
                        Err(e) => Err(e),
                    },
                },
            };
            match done {
                Ok(()) => break,
                Err(e) => {
                    let _ = history.failed(e);
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                }
            }
        }
        if ids.len() > 10_000 {
            ids.clear();
        }
    }
}

/// Records a run: memory, store (through the writer), event, counters.
fn record(shared: &Shared, run: &RemediationRun, update: bool) {
    // An update replaces the run's first word: its count moves from the old result.
    let mut replaced = None;
    {
        let mut memory = lock(&shared.memory);
        if update {
            if let Some(old) = memory.iter_mut().find(|r| key_of(r) == key_of(run)) {
                replaced = Some(old.result.name());
                *old = run.clone();
            }
        } else {
            memory.push_front(run.clone());
            memory.truncate(MEMORY_RUNS);
        }
    }
    let write = if update {
        Write::Update(run.clone())
    } else {
        Write::Insert(run.clone())
    };
    let mut c = lock(&shared.counters);
    if shared.writes.try_send(write).is_err() {
        c.dropped += 1;
    }
    if let Some(was) = replaced {
        if let Some(n) = c.runs.get_mut(&(run.rule.clone(), was)) {
            *n = n.saturating_sub(1);
        }
    }
    *c.runs
        .entry((run.rule.clone(), run.result.name()))
        .or_default() += 1;
    drop(c);
    let reason = match &run.result {
        RemediationResult::Ok => None,
        RemediationResult::Failed { reason } | RemediationResult::Refused { reason, .. } => {
            Some(reason.clone())
        }
    };
    tracing::info!(rule = %run.rule, target = %run.target, result = run.result.name(), dry_run = run.dry_run, "remediation run");
    shared.gateway.emit(Event::RemediationRan {
        rule: run.rule.clone(),
        target: run.target.clone(),
        alert_id: run.alert_id.clone(),
        dry_run: run.dry_run,
        result: run.result.name().to_string(),
        reason,
    });
}

/// Tells a person: an event, and a notice to the rule's `escalate_to`.
fn escalate(shared: &Shared, announce: &Announce, e: &Escalate) {
    lock(&shared.counters).escalations += 1;
    let cause = cause_line(&e.escalation.cause);
    tracing::warn!(rule = %e.rule, target = %e.escalation.target, cause = %cause, "remediation gave up; a person must look");
    shared.gateway.emit(Event::RemediationEscalated {
        rule: e.rule.clone(),
        target: e.escalation.target.clone(),
        cause: cause.clone(),
        receiver: e.receiver.clone(),
    });
    let Some(receiver) = &e.receiver else {
        return;
    };
    let notice = Notice {
        kind: "remediation-escalation".into(),
        labels: ballast_core::Labels::new()
            .with("rule", &e.rule)
            .with("target", &e.escalation.target),
        severity: Severity::Critical,
        summary: format!(
            "Remediation {} stopped acting on {}: {cause}. It acts again once a person acknowledges the target (`ballast remedy ack {}`) or its alert.",
            e.rule, e.escalation.target, e.escalation.target
        ),
        description: None,
        at_unix_ms: e.escalation.at_unix_ms,
        key: format!(
            "remediation-escalation:{}:{}:{}",
            e.rule, e.escalation.target, e.escalation.at_unix_ms
        ),
    };
    if let Err(why) = announce(receiver, &notice) {
        tracing::error!(receiver = %receiver, error = %why, "the remediation escalation could not be queued");
    }
}

/// What one look at the alerts decided.
#[derive(Default)]
struct Decided {
    jobs: Vec<Job>,
    refused: Vec<RemediationRun>,
    /// Runs whose `verify` ended: (run, resolved in time).
    verified: Vec<(RemediationRun, bool)>,
    escalations: Vec<Escalate>,
}

/// The gateway's events since `after` that a rule is triggered by, as records; moves `after`.
fn new_events(
    st: &State,
    gateway: &ballast_proxy::Gateway,
    after: &mut u64,
) -> Vec<ballast_core::AlertRecord> {
    let events = gateway.events(*after);
    if let Some(last) = events.last() {
        *after = last.seq;
    }
    let kinds = st.remedy.rules().event_kinds();
    if kinds.is_empty() {
        return Vec::new();
    }
    events
        .iter()
        .filter(|e| ballast_remedy::event::kind_of(e).is_some_and(|k| kinds.contains(k.as_str())))
        .filter_map(ballast_remedy::event::record_of)
        .collect()
}

fn look(
    st: &mut State,
    alerts: &[ballast_core::AlertView],
    events: &[ballast_core::AlertRecord],
    now: u64,
) -> Decided {
    let mut d = Decided::default();
    // Events are one-shot: each is offered to the rules once.
    for e in events {
        let (triggered, escalations) = st.remedy.on_alert(e, now);
        d.escalations.extend(escalations);
        for t in triggered {
            match t {
                Triggered::Execute(job) => d.jobs.push(job),
                Triggered::Refused(run) => d.refused.push(run),
            }
        }
    }
    let mut still = HashSet::new();
    for v in alerts {
        let a = &v.alert;
        if !matches!(a.state, AlertState::Firing { .. }) {
            continue;
        }
        still.insert(a.id.as_str());
        let retry = st.retry_at.get(&a.id).is_some_and(|at| *at <= now);
        if st.firing.get(&a.id) == Some(&a.since_unix_ms) && !retry {
            continue;
        }
        st.retry_at.remove(&a.id);
        st.firing.insert(a.id.clone(), a.since_unix_ms);
        let (triggered, escalations) = st.remedy.on_alert(a, now);
        d.escalations.extend(escalations);
        for t in triggered {
            match t {
                Triggered::Execute(job) => {
                    st.last_alert.insert(job.target.clone(), a.id.clone());
                    d.jobs.push(job);
                }
                Triggered::Refused(run) => {
                    // Held back for now (cooldown, a rate): try again while it fires. Blocked
                    // and unsafe runs wait for a person instead.
                    if matches!(&run.result, RemediationResult::Refused { kind, .. } if kind == "cooldown" || kind == "rate")
                    {
                        st.last_alert.insert(run.target.clone(), a.id.clone());
                        st.retry_later(&run, now);
                    }
                    d.refused.push(run);
                }
            }
        }
    }
    let gone: Vec<String> = st
        .firing
        .keys()
        .filter(|id| !still.contains(id.as_str()))
        .cloned()
        .collect();
    st.retry_at.retain(|id, _| still.contains(id.as_str()));
    for id in gone {
        st.firing.remove(&id);
        d.verified.extend(
            st.verifier
                .resolved(&id, now)
                .into_iter()
                .map(|r| (r, true)),
        );
    }
    d.verified
        .extend(st.verifier.expired(now).into_iter().map(|r| (r, false)));
    for (run, ok) in &d.verified {
        d.escalations.extend(st.remedy.finish(run, *ok, now));
        if !ok {
            st.retry_later(run, now);
        }
    }
    d
}

async fn watch(
    shared: Arc<Shared>,
    alerts: AlertSource,
    actions: GatewayActions,
    announce: Announce,
) {
    let (done_tx, mut done_rx) = mpsc::channel::<RemediationRun>(256);
    let actions = Arc::new(actions);
    // Only events from now on trigger rules.
    let mut after = shared.gateway.events(0).last().map_or(0, |e| e.seq);
    loop {
        let now = now_ms();
        let current = alerts(now);
        let d = {
            let mut st = lock(&shared.state);
            let events = new_events(&st, &shared.gateway, &mut after);
            look(&mut st, &current, &events, now)
        };
        for run in &d.refused {
            record(&shared, run, false);
        }
        for (run, ok) in &d.verified {
            if !ok {
                record(&shared, run, true);
            }
        }
        for e in &d.escalations {
            escalate(&shared, &announce, e);
        }
        for job in d.jobs {
            let (actions, done) = (actions.clone(), done_tx.clone());
            tokio::spawn(async move {
                let run = execute(&job, actions.as_ref(), now_ms).await;
                let _ = done.send(run).await;
            });
        }
        let next = lock(&shared.state).verifier.next_deadline();
        let wait = next
            .map(|at| Duration::from_millis(at.saturating_sub(now_ms()).saturating_add(1)))
            .unwrap_or(TICK)
            .min(TICK);
        tokio::select! {
            _ = shared.wake.notified() => {}
            _ = tokio::time::sleep(wait) => {}
            Some(run) = done_rx.recv() => executed(&shared, &announce, &alerts, run),
        }
    }
}

/// A run came back from `execute`: record it, then verify or finish it.
fn executed(shared: &Shared, announce: &Announce, alerts: &AlertSource, run: RemediationRun) {
    record(shared, &run, false);
    let now = now_ms();
    let escalation = {
        let mut st = lock(&shared.state);
        let verify = st.remedy.rules().get(&run.rule).and_then(|r| r.verify_ms());
        let ok = run.result == RemediationResult::Ok;
        match verify {
            Some(ms) if ok && !run.dry_run => {
                let firing = alerts(now)
                    .iter()
                    .any(|v| v.alert.id == run.alert_id && v.alert.state.severity().is_some());
                if firing {
                    st.verifier.watch(run, ms, now);
                    None
                } else {
                    st.remedy.finish(&run, true, now)
                }
            }
            _ => {
                if !ok {
                    st.retry_later(&run, now);
                }
                st.remedy.finish(&run, ok, now)
            }
        }
    };
    if let Some(e) = escalation {
        escalate(shared, announce, &e);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn causes_read_as_sentences() {
        assert_eq!(
            cause_line(&BlockCause::Failures {
                rule: "restart-api".into(),
                count: 3
            }),
            "3 runs of restart-api failed in a row"
        );
        assert_eq!(
            cause_line(&BlockCause::Budget {
                rule: "restart-api".into()
            }),
            "restart-api spent its budget (max_runs)"
        );
    }
}
