//! The record of one remediation run: which rule acted on which target, for which alert, with
//! which actions, whether for real or as a dry run, when, and with what result and output.
//!
//! It lives here, not in `ballast-remedy`, because the store persists it, the admin API lists
//! it (`GET /api/v1/remediations`) and the incident timeline shows it; none of those should
//! depend on the remediation engine. A refused run (cooldown, budget, blocked, an unsafe label)
//! is recorded too: "why didn't it restart?" must have an answer.

use serde::{Deserialize, Serialize};

/// The most bytes of output kept for one action.
pub const MAX_STEP_OUTPUT: usize = 4096;

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum RemediationResult {
    /// Every action succeeded (or, in dry-run, was described).
    Ok,
    /// An action failed; the ones after it were not run.
    Failed { reason: String },
    /// The guards refused the run; nothing was done. `kind` is `cooldown`, `budget`,
    /// `blocked` or `injection` (a metrics label); `reason` is for people.
    Refused { kind: String, reason: String },
}

impl RemediationResult {
    /// The name used in the API, the store and metrics labels.
    pub fn name(&self) -> &'static str {
        match self {
            RemediationResult::Ok => "ok",
            RemediationResult::Failed { .. } => "failed",
            RemediationResult::Refused { .. } => "refused",
        }
    }
}

/// One action of a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemediationStep {
    /// The action's kind: `exec`, `restart`, `clean`, `drain`...
    pub action: String,
    pub ok: bool,
    /// What it ran and printed (or would have), at most [`MAX_STEP_OUTPUT`] bytes.
    pub output: String,
}

impl RemediationStep {
    /// A step with its output cut to [`MAX_STEP_OUTPUT`] bytes.
    pub fn new(action: impl Into<String>, ok: bool, output: &str) -> Self {
        RemediationStep {
            action: action.into(),
            ok,
            output: truncate(output, MAX_STEP_OUTPUT),
        }
    }
}

/// One run of one `[[remedy]]` rule on one target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemediationRun {
    pub rule: String,
    /// What the guards count per: a server, a service, or the alert's id.
    pub target: String,
    /// The id of the alert that triggered it.
    pub alert_id: String,
    pub dry_run: bool,
    pub started_unix_ms: u64,
    pub ended_unix_ms: u64,
    #[serde(flatten)]
    pub result: RemediationResult,
    /// The actions taken, in order (empty when refused).
    pub steps: Vec<RemediationStep>,
}

/// `text` cut to at most `max` bytes at a character boundary, with a marker when cut.
pub fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    const MARK: &str = "\n[truncated]";
    let mut end = max.saturating_sub(MARK.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{MARK}", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncates_at_a_char_boundary() {
        assert_eq!(truncate("short", 10), "short");
        let t = truncate(&"é".repeat(100), 50);
        assert!(t.len() <= 50 && t.ends_with("[truncated]"), "{t}");
        assert_eq!(
            RemediationStep::new("exec", true, &"a".repeat(10_000))
                .output
                .len(),
            MAX_STEP_OUTPUT
        );
    }

    #[test]
    fn run_serializes_flat() {
        let run = RemediationRun {
            rule: "restart-app".into(),
            target: "10.0.0.1:8000".into(),
            alert_id: "abc".into(),
            dry_run: false,
            started_unix_ms: 1,
            ended_unix_ms: 2,
            result: RemediationResult::Refused {
                kind: "cooldown".into(),
                reason: "cooling down until 3".into(),
            },
            steps: vec![],
        };
        let json = serde_json::to_value(&run).unwrap();
        assert_eq!(json["result"], "refused");
        assert_eq!(json["kind"], "cooldown");
        let back: RemediationRun = serde_json::from_value(json).unwrap();
        assert_eq!(back, run);
        assert_eq!(back.result.name(), "refused");
    }
}
