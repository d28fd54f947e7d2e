//! The incident lifecycle: detect → propagate → triage → recover → analyse → share →
//! retrospective → closed, which moves between steps are allowed, and the times measured
//! from the stamps.
//!
//! It exists so that "where are we" is a value with rules, not a free-text field: a step is
//! entered with a time and an author, a move the rules refuse is a typed error (the API turns
//! it into a 409), and time to detect, acknowledge and recover fall out of the stamps.
//!
//! ```text
//!   DETECT ─▶ PROPAGATE ─▶ TRIAGE ─▶ RECOVER ─▶ ANALYSE ─▶ SHARE ─▶ RETROSPECTIVE ─▶ CLOSED
//!                            ▲          │
//!                            └──────────┘  the fix did not hold (the one move back)
//!
//!   any step ─▶ any later step   skipped steps are not stamped (a false alarm goes
//!                                straight from TRIAGE to CLOSED)
//!   CLOSED ─▶ nothing            a closed incident is history
//! ```
//!
//! Rules:
//! - Moving to any later step is allowed; skipped steps are not stamped.
//! - The only move back is `recover → triage` (the fix did not hold).
//! - Moving to the current step, any other move back, and any move out of `closed` are
//!   refused.
//! - A stamp earlier than the last one is refused: the timeline must stay in order.
//!
//! Times (all in ms, `None` until the step is reached):
//! - time to detect = opened (the `detect` stamp) − the impact's start;
//! - time to acknowledge = first stamp at `triage` or later − opened: someone is on it;
//! - time to recover = first stamp after `recover` (at `analyse` or later) − the impact's
//!   start: users are fine again. A relapse (`recover → triage`) can only happen before that
//!   stamp, so the recovery counted is always the fix that held.

pub use ballast_core::incident::{Status, StepStamp};
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// The author of the moves the gateway makes by itself (propagated after announcing,
/// recovered when every alert resolved).
pub const SYSTEM_AUTHOR: &str = "ballast";

/// Why a move was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TransitionError {
    #[error("the incident is closed; it cannot move to {to}")]
    Closed { to: Status },
    #[error("the incident is already at {0}")]
    Same(Status),
    #[error("the incident cannot move back from {from} to {to} (the only move back is recover → triage)")]
    Backwards { from: Status, to: Status },
    #[error("the move is stamped {at_unix_ms} but the last step was stamped {last_unix_ms}; stamps must not go back in time")]
    ClockBehind { at_unix_ms: u64, last_unix_ms: u64 },
}

/// The steps an incident went through, in order; never empty (it starts at `detect`).
///
/// In JSON it is the list of stamps. A list read back is replayed through [`Lifecycle::move_to`],
/// so a damaged or edited row that the rules could not have produced is refused, not trusted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Vec<StepStamp>", into = "Vec<StepStamp>")]
pub struct Lifecycle {
    steps: Vec<StepStamp>,
}

impl TryFrom<Vec<StepStamp>> for Lifecycle {
    type Error = String;

    fn try_from(steps: Vec<StepStamp>) -> Result<Self, String> {
        let mut steps = steps.into_iter();
        let first = steps
            .next()
            .ok_or("an incident's lifecycle has no steps; it starts at detect")?;
        if first.status != Status::Detect {
            return Err(format!(
                "an incident's lifecycle starts at detect, not {}",
                first.status
            ));
        }
        let mut l = Lifecycle::detected(first.at_unix_ms, first.author);
        for s in steps {
            l.move_to(s.status, s.at_unix_ms, s.author)
                .map_err(|e| format!("an incident's lifecycle is not valid: {e}"))?;
        }
        Ok(l)
    }
}

impl From<Lifecycle> for Vec<StepStamp> {
    fn from(l: Lifecycle) -> Self {
        l.steps
    }
}

impl Lifecycle {
    /// A lifecycle that starts at `detect`.
    pub fn detected(at_unix_ms: u64, author: impl Into<String>) -> Self {
        Lifecycle {
            steps: vec![StepStamp {
                status: Status::Detect,
                at_unix_ms,
                author: author.into(),
            }],
        }
    }

    /// Every stamp, oldest first.
    pub fn steps(&self) -> &[StepStamp] {
        &self.steps
    }

    /// The current step.
    pub fn status(&self) -> Status {
        self.last().status
    }

    /// When the incident was opened (the `detect` stamp).
    pub fn opened_unix_ms(&self) -> u64 {
        self.steps.first().map_or(0, |s| s.at_unix_ms)
    }

    /// When it was closed, if it is.
    pub fn closed_unix_ms(&self) -> Option<u64> {
        let last = self.last();
        (last.status == Status::Closed).then_some(last.at_unix_ms)
    }

    /// Moves to `to`, stamped `at_unix_ms` by `author`, if the rules allow it.
    pub fn move_to(
        &mut self,
        to: Status,
        at_unix_ms: u64,
        author: impl Into<String>,
    ) -> Result<&StepStamp, TransitionError> {
        let last = self.last();
        let from = last.status;
        if from == Status::Closed {
            return Err(TransitionError::Closed { to });
        }
        if from == to {
            return Err(TransitionError::Same(to));
        }
        if !from.can_move_to(to) {
            return Err(TransitionError::Backwards { from, to });
        }
        if at_unix_ms < last.at_unix_ms {
            return Err(TransitionError::ClockBehind {
                at_unix_ms,
                last_unix_ms: last.at_unix_ms,
            });
        }
        self.steps.push(StepStamp {
            status: to,
            at_unix_ms,
            author: author.into(),
        });
        Ok(self.last())
    }

    /// Time from the impact's start to the incident's opening.
    pub fn time_to_detect_ms(&self, started_unix_ms: u64) -> u64 {
        self.opened_unix_ms().saturating_sub(started_unix_ms)
    }

    /// Time from opening to the first stamp at `triage` or later made by a person (the
    /// gateway's own moves, stamped [`SYSTEM_AUTHOR`], acknowledge nothing).
    pub fn time_to_acknowledge_ms(&self) -> Option<u64> {
        self.steps
            .iter()
            .find(|s| s.status >= Status::Triage && s.author != SYSTEM_AUTHOR)
            .map(|s| s.at_unix_ms.saturating_sub(self.opened_unix_ms()))
    }

    /// When users were fine again: the first stamp past `recover`.
    pub fn recovered_unix_ms(&self) -> Option<u64> {
        self.steps
            .iter()
            .find(|s| s.status > Status::Recover)
            .map(|s| s.at_unix_ms)
    }

    /// Time from the impact's start to recovery.
    pub fn time_to_recover_ms(&self, started_unix_ms: u64) -> Option<u64> {
        self.recovered_unix_ms()
            .map(|r| r.saturating_sub(started_unix_ms))
    }

    fn last(&self) -> &StepStamp {
        // Never empty: built by `detected` or a checked list, and only pushed to. The
        // fallback keeps this free of panics all the same.
        static DETECT: StepStamp = StepStamp {
            status: Status::Detect,
            at_unix_ms: 0,
            author: String::new(),
        };
        self.steps.last().unwrap_or(&DETECT)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_every_step_in_order() {
        let mut l = Lifecycle::detected(1_000, "ballast");
        for (i, s) in Status::ALL.into_iter().skip(1).enumerate() {
            l.move_to(s, 2_000 + i as u64, "ana").unwrap();
        }
        assert_eq!(l.status(), Status::Closed);
        assert_eq!(l.steps().len(), 8);
        assert_eq!(l.closed_unix_ms(), Some(2_006));
    }

    #[test]
    fn refuses_same_backwards_closed_and_clock_behind() {
        let mut l = Lifecycle::detected(1_000, "ballast");
        assert_eq!(
            l.move_to(Status::Detect, 1_001, "a"),
            Err(TransitionError::Same(Status::Detect))
        );
        l.move_to(Status::Analyse, 2_000, "a").unwrap();
        assert_eq!(
            l.move_to(Status::Triage, 2_001, "a"),
            Err(TransitionError::Backwards {
                from: Status::Analyse,
                to: Status::Triage
            })
        );
        assert_eq!(
            l.move_to(Status::Share, 1_999, "a"),
            Err(TransitionError::ClockBehind {
                at_unix_ms: 1_999,
                last_unix_ms: 2_000
            })
        );
        l.move_to(Status::Closed, 3_000, "a").unwrap();
        assert_eq!(
            l.move_to(Status::Retrospective, 3_001, "a"),
            Err(TransitionError::Closed {
                to: Status::Retrospective
            })
        );
        // Refused moves leave no stamp.
        assert_eq!(l.steps().len(), 3);
    }

    #[test]
    fn skipping_forward_is_allowed_and_unstamped() {
        let mut l = Lifecycle::detected(1_000, "ballast");
        l.move_to(Status::Triage, 1_500, "bo").unwrap();
        l.move_to(Status::Closed, 1_600, "bo").unwrap();
        let statuses: Vec<_> = l.steps().iter().map(|s| s.status).collect();
        assert_eq!(statuses, [Status::Detect, Status::Triage, Status::Closed]);
    }

    #[test]
    fn times_to_detect_acknowledge_recover() {
        // Impact started at 0; opened at 60 s; acked at 90 s; recovered at 600 s.
        let mut l = Lifecycle::detected(60_000, "ballast");
        assert_eq!(l.time_to_detect_ms(0), 60_000);
        assert_eq!(l.time_to_acknowledge_ms(), None);
        l.move_to(Status::Propagate, 61_000, "ballast").unwrap();
        l.move_to(Status::Triage, 90_000, "ana").unwrap();
        assert_eq!(l.time_to_acknowledge_ms(), Some(30_000));
        l.move_to(Status::Recover, 120_000, "ana").unwrap();
        assert_eq!(l.time_to_recover_ms(0), None);
        l.move_to(Status::Analyse, 600_000, "ana").unwrap();
        assert_eq!(l.time_to_recover_ms(0), Some(600_000));
        // The gateway's own moves acknowledge nothing.
        let mut auto = Lifecycle::detected(60_000, SYSTEM_AUTHOR);
        auto.move_to(Status::Analyse, 70_000, SYSTEM_AUTHOR)
            .unwrap();
        assert_eq!(auto.time_to_acknowledge_ms(), None);
        assert_eq!(auto.time_to_recover_ms(0), Some(70_000));
        // An impact start after opening (set wrong by hand) is 0, not an underflow.
        assert_eq!(l.time_to_detect_ms(70_000), 0);
    }

    #[test]
    fn a_relapse_moves_recovery_to_the_later_fix() {
        let mut l = Lifecycle::detected(0, "ballast");
        l.move_to(Status::Triage, 10, "a").unwrap();
        l.move_to(Status::Recover, 20, "a").unwrap();
        l.move_to(Status::Triage, 30, "a").unwrap();
        assert_eq!(l.recovered_unix_ms(), None);
        l.move_to(Status::Recover, 40, "a").unwrap();
        l.move_to(Status::Analyse, 50, "a").unwrap();
        assert_eq!(l.recovered_unix_ms(), Some(50));
        // Acknowledged at the first triage, not the second.
        assert_eq!(l.time_to_acknowledge_ms(), Some(10));
    }

    #[test]
    fn read_back_lists_are_replayed() {
        let mut l = Lifecycle::detected(1_000, "ballast");
        l.move_to(Status::Triage, 2_000, "ana").unwrap();
        let json = serde_json::to_string(&l).unwrap();
        assert!(json.starts_with('['), "{json}");
        assert_eq!(serde_json::from_str::<Lifecycle>(&json).unwrap(), l);
        for bad in [
            "[]",
            r#"[{"status":"triage","at_unix_ms":1,"author":"a"}]"#,
            r#"[{"status":"detect","at_unix_ms":5,"author":"a"},{"status":"closed","at_unix_ms":6,"author":"a"},{"status":"share","at_unix_ms":7,"author":"a"}]"#,
            r#"[{"status":"detect","at_unix_ms":5,"author":"a"},{"status":"triage","at_unix_ms":4,"author":"a"}]"#,
        ] {
            assert!(serde_json::from_str::<Lifecycle>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn names_round_trip() {
        for s in Status::ALL {
            assert_eq!(Status::parse(s.name()), Some(s));
            assert_eq!(
                serde_json::to_string(&s).unwrap(),
                format!("\"{}\"", s.name())
            );
        }
        assert_eq!(Status::parse("done"), None);
    }
}
