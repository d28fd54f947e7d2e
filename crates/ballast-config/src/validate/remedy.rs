//! `[[remedy]]` and `[remediation]`: checked by `ballast-remedy` with the rest of the file, so
//! a rule with no condition, an `exec` whose program holds a placeholder (an alert could then
//! choose what runs), a zero budget or an `escalate_to` naming no `[[receiver]]` refuses the
//! start or the reload, at the rule's own table and line, instead of at the first alert.
//!
//! Each rule is checked on its own (`Rule::new`), not through `Rules::new`, which stops at the
//! first error: one `ballast check` should show every broken rule.

use std::collections::BTreeSet;

use ballast_remedy::rule::{RemediationSpec, RemedySpec, Rule, RuleError};

use super::Checker;
use crate::model::RemedyPlan;

pub(super) fn plan(
    c: &mut Checker,
    rules: Vec<RemedySpec>,
    remediation: Option<RemediationSpec>,
    receivers: &BTreeSet<String>,
) -> RemedyPlan {
    let mut names = BTreeSet::new();
    for (i, spec) in rules.iter().enumerate() {
        match Rule::new(spec, receivers) {
            Ok(rule) => {
                if !names.insert(rule.name().to_string()) {
                    let e = RuleError::Duplicate(rule.name().to_string());
                    c.fail(format!("remedy[{i}].name"), e.to_string());
                }
            }
            Err(e) => c.fail(format!("remedy[{i}].{}", field(&e)), e.to_string()),
        }
    }
    let remediation = remediation.unwrap_or_default();
    if let Err(e) = remediation.rate() {
        c.fail("remediation.rate", e.to_string());
    }
    RemedyPlan {
        rules,
        rate: remediation
            .rate
            .unwrap_or(ballast_remedy::rule::DEFAULT_GLOBAL_RATE),
    }
}

/// The key of a `[[remedy]]` table that `e` is about, for its line.
fn field(e: &RuleError) -> String {
    match e {
        RuleError::NoName | RuleError::Duplicate(_) => "name".into(),
        RuleError::NoCondition(_) => "when".into(),
        RuleError::NoActions(_) => "do".into(),
        RuleError::Action { index, .. } => format!("do[{index}]"),
        RuleError::Matcher { .. } => "when.match".into(),
        RuleError::Target { .. } => "target".into(),
        RuleError::Zero { field, .. } => (*field).into(),
        RuleError::UnknownReceiver { .. } => "escalate_to".into(),
        // Not about one rule; reported at `[remediation]` above, never from `Rule::new`.
        RuleError::ZeroRate => "name".into(),
    }
}
