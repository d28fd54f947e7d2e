//! The guard rails: whether a remediation may run now, on this target. Pure: time is passed in
//! (ms since the Unix epoch), nothing here sleeps or reads a clock.
//!
//! Why: an automatic action that works too well hides the real problem, and one that does not
//! work can make it worse (a restart loop, a clean that races a logger). So every run passes,
//! in this order:
//!
//! 1. **blocked?** a target escalated to a person is left alone until [`Guards::acknowledge`];
//! 2. **cooldown** per (rule, target), counted from the start of the last run;
//! 3. **budget** per (rule, target): at most `max_runs.count` runs within `max_runs.per`
//!    (a sliding window); spending it blocks the target and escalates;
//! 4. **budget** per rule, over all its targets (`max_runs.rule_count`, same window);
//! 5. **global rate**: at most so many runs of any rule within a window.
//!
//! A run that passes is `Run`, or `DryRun` for a rule with `dry_run = true`. A dry run passes
//! the same guards and spends the same budgets, so its record shows truly what would have run
//! and when; but a dry run never fails, and its spent budget refuses without blocking or
//! escalating (nothing was done that a person must look at). After a real run the caller
//! reports its result with [`Guards::finish`]: `escalate_after` failed runs in a row block the
//! target and escalate.
//!
//! The life of one (rule, target):
//!
//! ```text
//!            check: Run ──────────────▶ Running
//!   Idle ◀────────────────────────┐        │ finish(ok)                ── failures = 0
//!    │  ▲                         │        │ finish(failed), failures < N
//!    │  │ cooldown ends           │        ▼
//!    │  └──────────────────── CoolingDown(until) ◀──┘
//!    │                            │ check: Refused(Cooldown{until})
//!    │ check with the (rule, target) budget spent ─────────────┐
//!    │ finish(failed) with failures ≥ N (from Running) ────────┤  ⇒ Escalation (once)
//!    ▼                                                         ▼
//!  (any) ◀──── acknowledge(target): failures, cooldown and runs cleared ──── Blocked
//!                                                   check: Refused(Blocked{since, cause})
//! ```
//!
//! The block is kept per target (a server, a service), not per rule: a person acknowledging
//! `10.0.0.1:8000` lets every rule act on it again.

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};

/// A rule's guards, validated (see `rule.rs` for the config and its defaults).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuardSpec {
    pub dry_run: bool,
    pub cooldown_ms: u64,
    /// Runs per (rule, target) within `per_ms`.
    pub max_runs: u32,
    pub per_ms: u64,
    /// Runs of the rule over all targets within `per_ms`.
    pub rule_max_runs: Option<u32>,
    /// Consecutive failed runs that block the target.
    pub escalate_after: u32,
}

/// A global rate: at most `count` runs of any rule within `per_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub count: u32,
    pub per_ms: u64,
}

/// Which budget is spent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    Target,
    Rule,
    Global,
}

/// Why a target is blocked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cause", rename_all = "snake_case")]
pub enum BlockCause {
    /// This many runs of `rule` failed in a row.
    Failures { rule: String, count: u32 },
    /// `rule` spent its budget on the target.
    Budget { rule: String },
}

/// Why a run is refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "refused", rename_all = "snake_case")]
pub enum Refusal {
    Cooldown {
        until_unix_ms: u64,
    },
    Budget {
        scope: Scope,
        count: u32,
        per_ms: u64,
        /// When the oldest run in the window leaves it.
        until_unix_ms: u64,
    },
    /// Escalated; waiting for a person's acknowledgement.
    Blocked {
        since_unix_ms: u64,
        #[serde(flatten)]
        cause: BlockCause,
    },
    /// A label value was refused by a placeholder (see `placeholder.rs`).
    Injection {
        label: String,
        reason: String,
    },
}

/// A moment for people: RFC 3339 in UTC.
fn at(unix_ms: &u64) -> ballast_core::UtcTime {
    ballast_core::UtcTime::from_unix_secs(unix_ms / 1000)
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Cooldown { until_unix_ms } => {
                write!(f, "cooldown: cooling down until {}", at(until_unix_ms))
            }
            Refusal::Budget {
                scope,
                count,
                per_ms,
                until_unix_ms,
            } => write!(
                f,
                "the {} budget of {count} runs per {}s is spent until {}",
                match scope {
                    Scope::Target => "target's",
                    Scope::Rule => "rule's",
                    Scope::Global => "global",
                },
                per_ms / 1000,
                at(until_unix_ms)
            ),
            Refusal::Blocked {
                since_unix_ms,
                cause,
            } => match cause {
                BlockCause::Failures { rule, count } => write!(
                    f,
                    "blocked since {}: {count} runs of {rule} failed in a row; waiting for an acknowledgement",
                    at(since_unix_ms)
                ),
                BlockCause::Budget { rule } => write!(
                    f,
                    "blocked since {}: {rule} spent its budget; waiting for an acknowledgement",
                    at(since_unix_ms)
                ),
            },
            Refusal::Injection { label, reason } => {
                write!(f, "label {label:?} refused: {reason}")
            }
        }
    }
}

/// What the guards say.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum Decision {
    Run,
    DryRun,
    Refused(Refusal),
}

/// A person must be told: the target is blocked until acknowledged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Escalation {
    pub target: String,
    #[serde(flatten)]
    pub cause: BlockCause,
    pub at_unix_ms: u64,
}

/// A decision, and the escalation it caused, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub decision: Decision,
    pub escalation: Option<Escalation>,
}

#[derive(Debug, Default)]
struct PairState {
    runs: VecDeque<u64>,
    cooldown_until: u64,
    failures: u32,
}

#[derive(Debug, Clone)]
struct Block {
    since: u64,
    cause: BlockCause,
}

/// The guards' state for every rule and target.
#[derive(Debug, Default)]
pub struct Guards {
    global: Option<Rate>,
    global_runs: VecDeque<u64>,
    rule_runs: BTreeMap<String, VecDeque<u64>>,
    pairs: BTreeMap<(String, String), PairState>,
    blocked: BTreeMap<String, Block>,
}

/// Drops runs that left the window; returns when the oldest one left leaves it.
fn slide(runs: &mut VecDeque<u64>, per_ms: u64, now: u64) -> u64 {
    while runs
        .front()
        .is_some_and(|t| t.saturating_add(per_ms) <= now)
    {
        runs.pop_front();
    }
    runs.front().map_or(now, |t| t.saturating_add(per_ms))
}

impl Guards {
    pub fn new(global: Option<Rate>) -> Self {
        Guards {
            global,
            ..Guards::default()
        }
    }

    /// Whether `rule` may run on `target` at `now`; a `Run` or `DryRun` is counted as started.
    pub fn check(&mut self, rule: &str, spec: &GuardSpec, target: &str, now: u64) -> Verdict {
        let refused = |r| Verdict {
            decision: Decision::Refused(r),
            escalation: None,
        };
        if let Some(b) = self.blocked.get(target) {
            return refused(Refusal::Blocked {
                since_unix_ms: b.since,
                cause: b.cause.clone(),
            });
        }
        let key = (rule.to_string(), target.to_string());
        let pair = self.pairs.entry(key).or_default();
        if now < pair.cooldown_until {
            return refused(Refusal::Cooldown {
                until_unix_ms: pair.cooldown_until,
            });
        }
        let until = slide(&mut pair.runs, spec.per_ms, now);
        if pair.runs.len() >= spec.max_runs as usize {
            let refusal = Refusal::Budget {
                scope: Scope::Target,
                count: spec.max_runs,
                per_ms: spec.per_ms,
                until_unix_ms: until,
            };
            if spec.dry_run {
                return refused(refusal);
            }
            let cause = BlockCause::Budget {
                rule: rule.to_string(),
            };
            self.blocked.insert(
                target.to_string(),
                Block {
                    since: now,
                    cause: cause.clone(),
                },
            );
            return Verdict {
                decision: Decision::Refused(refusal),
                escalation: Some(Escalation {
                    target: target.to_string(),
                    cause,
                    at_unix_ms: now,
                }),
            };
        }
        let rule_runs = self.rule_runs.entry(rule.to_string()).or_default();
        let rule_until = slide(rule_runs, spec.per_ms, now);
        if let Some(max) = spec.rule_max_runs {
            if rule_runs.len() >= max as usize {
                return refused(Refusal::Budget {
                    scope: Scope::Rule,
                    count: max,
                    per_ms: spec.per_ms,
                    until_unix_ms: rule_until,
                });
            }
        }
        if let Some(rate) = self.global {
            let until = slide(&mut self.global_runs, rate.per_ms, now);
            if self.global_runs.len() >= rate.count as usize {
                return refused(Refusal::Budget {
                    scope: Scope::Global,
                    count: rate.count,
                    per_ms: rate.per_ms,
                    until_unix_ms: until,
                });
            }
            self.global_runs.push_back(now);
        }
        rule_runs.push_back(now);
        pair.runs.push_back(now);
        pair.cooldown_until = now.saturating_add(spec.cooldown_ms);
        Verdict {
            decision: if spec.dry_run {
                Decision::DryRun
            } else {
                Decision::Run
            },
            escalation: None,
        }
    }

    /// Reports how a real run ended. `escalate_after` failures in a row block the target and
    /// return the escalation. Ignored for dry-run rules.
    pub fn finish(
        &mut self,
        rule: &str,
        spec: &GuardSpec,
        target: &str,
        ok: bool,
        now: u64,
    ) -> Option<Escalation> {
        if spec.dry_run {
            return None;
        }
        let pair = self
            .pairs
            .entry((rule.to_string(), target.to_string()))
            .or_default();
        if ok {
            pair.failures = 0;
            return None;
        }
        pair.failures = pair.failures.saturating_add(1);
        if pair.failures < spec.escalate_after || self.blocked.contains_key(target) {
            return None;
        }
        let cause = BlockCause::Failures {
            rule: rule.to_string(),
            count: pair.failures,
        };
        self.blocked.insert(
            target.to_string(),
            Block {
                since: now,
                cause: cause.clone(),
            },
        );
        Some(Escalation {
            target: target.to_string(),
            cause,
            at_unix_ms: now,
        })
    }

    /// Counts a run recorded before a restart (in start order): its start spends the budgets
    /// and sets the cooldown as [`Guards::check`] would have, and its result counts as
    /// [`Guards::finish`] would have, blocking a target that failed too often, but without
    /// escalating again (that was announced when it happened). So restarting Ballast never
    /// hands a restart loop a fresh budget.
    pub fn replay(&mut self, rule: &str, spec: &GuardSpec, target: &str, started: u64, ok: bool) {
        if let Some(rate) = self.global {
            slide(&mut self.global_runs, rate.per_ms, started);
            self.global_runs.push_back(started);
        }
        self.rule_runs
            .entry(rule.to_string())
            .or_default()
            .push_back(started);
        let pair = self
            .pairs
            .entry((rule.to_string(), target.to_string()))
            .or_default();
        pair.runs.push_back(started);
        pair.cooldown_until = pair
            .cooldown_until
            .max(started.saturating_add(spec.cooldown_ms));
        let _ = self.finish(rule, spec, target, ok, started);
    }

    /// A block for a spent budget recorded before a restart: the target stays blocked (without
    /// escalating again) until a person acknowledges it.
    pub fn replay_block(&mut self, rule: &str, target: &str, at: u64) {
        self.blocked.entry(target.to_string()).or_insert(Block {
            since: at,
            cause: BlockCause::Budget {
                rule: rule.to_string(),
            },
        });
    }

    /// A person acknowledged the target: every rule may act on it again, with fresh budgets,
    /// cooldowns and failure counts. False when it was not blocked.
    pub fn acknowledge(&mut self, target: &str) -> bool {
        let was = self.blocked.remove(target).is_some();
        for ((_, t), pair) in self.pairs.iter_mut() {
            if t == target {
                *pair = PairState::default();
            }
        }
        was
    }

    /// The blocked targets, with since when and why.
    pub fn blocked(&self) -> impl Iterator<Item = (&str, u64, &BlockCause)> {
        self.blocked
            .iter()
            .map(|(t, b)| (t.as_str(), b.since, &b.cause))
    }

    /// Forgets (rule, target) pairs with nothing left to remember at `now` (no run in the
    /// window of `per_ms`, no cooldown, no failure), so the state stays as small as the set of
    /// targets recently acted on.
    pub fn prune(&mut self, now: u64, per_ms: impl Fn(&str) -> u64) {
        self.pairs.retain(|(rule, _), p| {
            slide(&mut p.runs, per_ms(rule), now);
            !p.runs.is_empty() || p.cooldown_until > now || p.failures > 0
        });
        self.rule_runs.retain(|rule, runs| {
            slide(runs, per_ms(rule), now);
            !runs.is_empty()
        });
    }
}

#[cfg(test)]
mod tests;
