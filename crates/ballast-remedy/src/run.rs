//! One remediation from alert to record: match the rules, render, ask the guards, carry out the
//! actions in order, and produce the [`RemediationRun`] to persist.
//!
//! Why it is split in three calls rather than one: the deciding part ([`Remedy::on_alert`],
//! [`Remedy::finish`], [`Remedy::acknowledge`]) is pure state with time passed in, so it can sit
//! in the binary's single remediation task and be tested without processes; the doing part
//! ([`execute`]) is async and may take as long as a command's timeout, so the binary can run it
//! off that task. Between `execute` and `finish` the binary may `verify` (wait up to the rule's
//! `verify` for the triggering alert to resolve): the run counts as failed for escalation if it
//! did not.
//!
//! ```text
//!  alert fires ─▶ on_alert ─┬─ Refused(record)        (cooldown, budget, blocked, unsafe label)
//!                           └─ Execute(job) ─▶ execute ─▶ record ─▶ [verify] ─▶ finish ─▶ escalation?
//! ```
//!
//! An unsafe label is checked before the guards, so a refused injection spends no budget. The
//! actions of a rule run in order and stop at the first failure. Gateway-side kinds go to the
//! [`GatewaySide`] the binary provides; in dry-run nothing is applied anywhere, and each step
//! says what would have been done.

use std::future::Future;

use ballast_core::{AlertRecord, RemediationResult, RemediationRun, RemediationStep};

use crate::action::{apply, Action, Outcome};
use crate::guard::{Decision, Escalation, Guards, Rate, Refusal};
use crate::placeholder::PlaceholderError;
use crate::rule::Rules;

/// Carries out the gateway-side actions (`drain`, `enable`, `eject`, `route`, `shed`,
/// `webhook`): the binary implements it over the running gateway.
pub trait GatewaySide {
    /// Applies one rendered action of `job`; `Ok` holds a line for the record, `Err` why it
    /// failed.
    fn apply(
        &self,
        job: &Job,
        action: &Action,
    ) -> impl Future<Output = Result<String, String>> + Send;
}

/// A [`GatewaySide`] for a process with no gateway: every gateway-side action fails.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoGateway;

impl GatewaySide for NoGateway {
    async fn apply(&self, _job: &Job, action: &Action) -> Result<String, String> {
        Err(format!("{}: no gateway to apply it to", action.kind()))
    }
}

/// A run the guards let through, rendered and ready to carry out.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub rule: String,
    pub target: String,
    pub alert_id: String,
    pub dry_run: bool,
    pub actions: Vec<Action>,
    pub started_unix_ms: u64,
}

/// What one matching rule does with an alert.
#[derive(Debug, Clone, PartialEq)]
pub enum Triggered {
    /// Carry it out with [`execute`], then report it with [`Remedy::finish`].
    Execute(Job),
    /// Refused: the record is complete.
    Refused(RemediationRun),
}

/// A person must be told, through `receiver` (the rule's `escalate_to`, if any).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Escalate {
    pub rule: String,
    pub receiver: Option<String>,
    pub escalation: Escalation,
}

/// Every rule and the guards' state.
#[derive(Debug)]
pub struct Remedy {
    rules: Rules,
    guards: Guards,
}

/// The refusal's kind on the record: `budget` is the target's own budget (it blocks the
/// target), `rate` the rule's budget or the global rate (they pass).
fn refusal_kind(r: &Refusal) -> &'static str {
    match r {
        Refusal::Cooldown { .. } => "cooldown",
        Refusal::Budget {
            scope: crate::guard::Scope::Target,
            ..
        } => "budget",
        Refusal::Budget { .. } => "rate",
        Refusal::Blocked { .. } => "blocked",
        Refusal::Injection { .. } => "injection",
    }
}

fn refused(
    rule: &str,
    target: &str,
    alert: &AlertRecord,
    dry_run: bool,
    r: &Refusal,
    now: u64,
) -> RemediationRun {
    RemediationRun {
        rule: rule.to_string(),
        target: target.to_string(),
        alert_id: alert.id.clone(),
        dry_run,
        started_unix_ms: now,
        ended_unix_ms: now,
        result: RemediationResult::Refused {
            kind: refusal_kind(r).to_string(),
            reason: r.to_string(),
        },
        steps: Vec::new(),
    }
}

impl Remedy {
    pub fn new(rules: Rules, global: Option<Rate>) -> Self {
        Remedy {
            rules,
            guards: Guards::new(global),
        }
    }

    pub fn rules(&self) -> &Rules {
        &self.rules
    }

    pub fn guards(&self) -> &Guards {
        &self.guards
    }

    /// What every matching rule does about a firing alert at `now`, with the escalations a
    /// spent budget caused.
    pub fn on_alert(&mut self, alert: &AlertRecord, now: u64) -> (Vec<Triggered>, Vec<Escalate>) {
        let mut out = Vec::new();
        let mut escalations = Vec::new();
        for rule in self.rules.matching(alert) {
            let guard = *rule.guard();
            let plan = match rule.plan(alert) {
                Ok(p) => p,
                Err(e) => {
                    let label = match &e {
                        PlaceholderError::Unsafe { label, .. }
                        | PlaceholderError::Missing { label } => label.clone(),
                        _ => String::new(),
                    };
                    let r = Refusal::Injection {
                        label,
                        reason: e.to_string(),
                    };
                    out.push(Triggered::Refused(refused(
                        rule.name(),
                        &alert.id,
                        alert,
                        guard.dry_run,
                        &r,
                        now,
                    )));
                    continue;
                }
            };
            let verdict = self.guards.check(rule.name(), &guard, &plan.target, now);
            if let Some(escalation) = verdict.escalation {
                escalations.push(Escalate {
                    rule: rule.name().to_string(),
                    receiver: rule.escalate_to().map(str::to_string),
                    escalation,
                });
            }
            out.push(match verdict.decision {
                Decision::Run | Decision::DryRun => Triggered::Execute(Job {
                    rule: rule.name().to_string(),
                    target: plan.target,
                    alert_id: alert.id.clone(),
                    dry_run: guard.dry_run,
                    actions: plan.actions,
                    started_unix_ms: now,
                }),
                Decision::Refused(r) => Triggered::Refused(refused(
                    rule.name(),
                    &plan.target,
                    alert,
                    guard.dry_run,
                    &r,
                    now,
                )),
            });
        }
        (out, escalations)
    }

    /// Reports how an executed run ended: `ok` is its result, and, for a rule with `verify`,
    /// whether the alert resolved in time. Returns the escalation it caused, if any.
    pub fn finish(&mut self, run: &RemediationRun, ok: bool, now: u64) -> Option<Escalate> {
        let rule = self.rules.get(&run.rule)?;
        let escalation = self
            .guards
            .finish(rule.name(), rule.guard(), &run.target, ok, now)?;
        Some(Escalate {
            rule: rule.name().to_string(),
            receiver: rule.escalate_to().map(str::to_string),
            escalation,
        })
    }

    /// Counts a run recorded before a restart (feed them in start order, e.g. the last day's
    /// from the store): see [`Guards::replay`]. Refused runs and runs of rules no longer in the
    /// config are skipped. Acknowledgements are not runs: a target a person acknowledged before
    /// the restart may come back blocked if its failures are replayed after the ack, so the
    /// binary should replay only runs started after the target's last acknowledgement.
    pub fn replay(&mut self, run: &RemediationRun) {
        let ok = match &run.result {
            RemediationResult::Ok => true,
            RemediationResult::Failed { .. } => false,
            // A target's spent budget blocked it (and was announced then): block it again.
            RemediationResult::Refused { kind, .. } if kind == "budget" => {
                self.guards
                    .replay_block(&run.rule, &run.target, run.started_unix_ms);
                return;
            }
            RemediationResult::Refused { .. } => return,
        };
        if let Some(rule) = self.rules.get(&run.rule) {
            self.guards.replay(
                rule.name(),
                rule.guard(),
                &run.target,
                run.started_unix_ms,
                ok,
            );
        }
    }

    /// A person acknowledged the target: rules may act on it again.
    pub fn acknowledge(&mut self, target: &str) -> bool {
        self.guards.acknowledge(target)
    }
}

/// Carries out a job's actions in order (stopping at the first failure) and records the run.
/// `now` reads the clock (ms since the Unix epoch) for the end time.
pub async fn execute<G: GatewaySide>(
    job: &Job,
    gateway: &G,
    now: impl Fn() -> u64,
) -> RemediationRun {
    let mut steps = Vec::new();
    let mut result = RemediationResult::Ok;
    for action in &job.actions {
        let kind = action.kind();
        let (ok, output) = if action.is_gateway_side() {
            if job.dry_run {
                (true, format!("would apply: {}", describe(action)))
            } else {
                match gateway.apply(job, action).await {
                    Ok(line) => (true, line),
                    Err(e) => (false, e),
                }
            }
        } else {
            match apply(action, job.dry_run).await {
                Ok(outcome) => (outcome.ok(), outcome.summary()),
                Err(e) => (false, e.to_string()),
            }
        };
        steps.push(RemediationStep::new(kind, ok, &output));
        if !ok {
            result = RemediationResult::Failed {
                reason: format!("{kind} failed"),
            };
            break;
        }
    }
    RemediationRun {
        rule: job.rule.clone(),
        target: job.target.clone(),
        alert_id: job.alert_id.clone(),
        dry_run: job.dry_run,
        started_unix_ms: job.started_unix_ms,
        ended_unix_ms: now(),
        result,
        steps,
    }
}

/// One line naming a gateway-side action and its arguments.
fn describe(action: &Action) -> String {
    let o = Outcome::ForGateway {
        action: action.clone(),
    };
    match action {
        Action::Drain(s) | Action::Enable(s) | Action::Eject(s) => {
            format!("{} {} of {}", action.kind(), s.server, s.upstream)
        }
        Action::Route(r) => format!("route {} to {}", r.route, r.to),
        Action::Shed(s) => format!("shed {} of class {}", s.share, s.class),
        Action::Webhook(w) => format!("webhook {}", w.url),
        Action::Exec(_) | Action::Restart(_) | Action::Clean(_) => o.summary(),
    }
}

#[cfg(test)]
mod tests;
