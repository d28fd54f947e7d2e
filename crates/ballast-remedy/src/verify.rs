//! `verify`: after a run, wait up to the rule's `verify` for the triggering alert to resolve;
//! if it does not, the run failed. Pure: time is passed in.
//!
//! Why: a restart command that exits 0 has not necessarily brought the service back. The only
//! proof that matters is the alert that called for the remediation going away. A run that did
//! not fix anything counts as a failure, so "restart, still broken, restart, still broken"
//! reaches `escalate_after` and a person is called instead of looping.
//!
//! The binary, after [`crate::run::execute`]:
//!
//! ```text
//!  run ok, real, rule has verify ─▶ watch(run, verify_ms, now) ─┬─ resolved(alert_id) ─▶ finish(run, true)
//!                                                               └─ expired(now) ───────▶ finish(run, false)
//!  otherwise ──────────────────────────────────────────────────────────────────────────▶ finish(run, ok)
//! ```
//!
//! A run that [`expired`](Verifier::expired) comes back marked failed, with why, ready to be
//! persisted in place of the first record.

use ballast_core::{RemediationResult, RemediationRun};

#[derive(Debug, Clone)]
struct Pending {
    run: RemediationRun,
    verify_ms: u64,
    deadline: u64,
}

/// The runs waiting for their alert to resolve.
#[derive(Debug, Default)]
pub struct Verifier {
    pending: Vec<Pending>,
}

impl Verifier {
    pub fn new() -> Self {
        Verifier::default()
    }

    /// Waits up to `verify_ms` from `now` for the run's alert to resolve.
    pub fn watch(&mut self, run: RemediationRun, verify_ms: u64, now: u64) {
        self.pending.push(Pending {
            run,
            verify_ms,
            deadline: now.saturating_add(verify_ms),
        });
    }

    /// The alert resolved at `now`: the runs it verifies (those still within their time).
    pub fn resolved(&mut self, alert_id: &str, now: u64) -> Vec<RemediationRun> {
        let mut done = Vec::new();
        self.pending.retain(|p| {
            if p.run.alert_id == alert_id && now <= p.deadline {
                done.push(p.run.clone());
                false
            } else {
                true
            }
        });
        done
    }

    /// The runs whose time ran out by `now`, marked failed.
    pub fn expired(&mut self, now: u64) -> Vec<RemediationRun> {
        let mut failed = Vec::new();
        self.pending.retain(|p| {
            if now > p.deadline {
                let mut run = p.run.clone();
                run.result = RemediationResult::Failed {
                    reason: format!(
                        "the alert did not resolve within {} ms of the run",
                        p.verify_ms
                    ),
                };
                failed.push(run);
                false
            } else {
                true
            }
        });
        failed
    }

    /// When the next run expires, for the binary's timer.
    pub fn next_deadline(&self) -> Option<u64> {
        self.pending.iter().map(|p| p.deadline).min()
    }

    pub fn len(&self) -> usize {
        self.pending.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(alert: &str) -> RemediationRun {
        RemediationRun {
            rule: "restart-app".into(),
            target: "t".into(),
            alert_id: alert.into(),
            dry_run: false,
            started_unix_ms: 0,
            ended_unix_ms: 10,
            result: RemediationResult::Ok,
            steps: vec![],
        }
    }

    #[test]
    fn a_resolve_in_time_verifies() {
        let mut v = Verifier::new();
        v.watch(run("a"), 30_000, 10);
        v.watch(run("b"), 30_000, 10);
        assert_eq!(v.next_deadline(), Some(30_010));
        assert!(v.resolved("c", 100).is_empty());
        let ok = v.resolved("a", 30_010);
        assert_eq!(ok.len(), 1);
        assert_eq!(ok[0].result, RemediationResult::Ok);
        assert_eq!(v.len(), 1);
        assert!(
            v.expired(30_010).is_empty(),
            "the deadline itself is still in time"
        );
    }

    #[test]
    fn no_resolve_in_time_fails_the_run() {
        let mut v = Verifier::new();
        v.watch(run("a"), 30_000, 10);
        let failed = v.expired(30_011);
        assert_eq!(failed.len(), 1);
        assert!(
            matches!(&failed[0].result, RemediationResult::Failed { reason } if reason.contains("30000 ms")),
            "{:?}",
            failed[0].result
        );
        assert!(v.is_empty());
        // A late resolve verifies nothing.
        v.watch(run("a"), 1000, 0);
        assert!(v.resolved("a", 1001).is_empty());
        assert_eq!(v.expired(1001).len(), 1);
    }
}
