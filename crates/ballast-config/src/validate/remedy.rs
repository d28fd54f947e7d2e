//! `[[remedy]]` and `[remediation]`: checked by `ballast-remedy` with the rest of the file, so
//! a rule with no condition, an `exec` whose program holds a placeholder (an alert could then
//! choose what runs), a zero budget or an `escalate_to` naming no `[[receiver]]` refuses the
//! start or the reload, at the rule's own table and line, instead of at the first alert.
//!
//! Each rule is checked on its own (`Rule::new`), not through `Rules::new`, which stops at the
//! first error: one `ballast check` should show every broken rule.

use std::collections::{BTreeSet, HashSet};

use ballast_remedy::action::Action;

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

/// Gateway actions that name an upstream or a route without a placeholder must name one that
/// exists: a typo would otherwise surface only when the alert fires, as a failed run. Names
/// with a `{{placeholder}}` are known only then, and checked by the gateway at run time.
pub(super) fn names(
    c: &mut Checker,
    rules: &[RemedySpec],
    upstreams: &HashSet<String>,
    routes: &HashSet<String>,
) {
    let literal = |name: &str| !name.contains("{{");
    for (i, spec) in rules.iter().enumerate() {
        for (j, action) in spec.actions.iter().enumerate() {
            let at = |field: &str| format!("remedy[{i}].do[{j}].{}.{field}", action.kind());
            match action {
                Action::Drain(s) | Action::Enable(s) | Action::Eject(s)
                    if literal(&s.upstream) && !upstreams.contains(&s.upstream) =>
                {
                    c.fail(
                        at("upstream"),
                        format!("no [[upstream]] is named `{}`", s.upstream),
                    );
                }
                Action::Route(r) => {
                    if literal(&r.route) && !routes.contains(&r.route) {
                        c.fail(at("route"), format!("no [[route]] is named `{}`", r.route));
                    }
                    if literal(&r.to) && r.to != "sorry" && !upstreams.contains(&r.to) {
                        c.fail(
                            at("to"),
                            format!("`{}` is neither an [[upstream]] nor \"sorry\"", r.to),
                        );
                    }
                }
                _ => {}
            }
        }
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
        RuleError::Event { .. } => "when.event".into(),
        RuleError::Target { .. } => "target".into(),
        RuleError::Zero { field, .. } => (*field).into(),
        RuleError::UnknownReceiver { .. } => "escalate_to".into(),
        // Not about one rule; reported at `[remediation]` above, never from `Rule::new`.
        RuleError::ZeroRate => "name".into(),
    }
}
