//! Whether each alert is muted, and why: the one answer that the API shows beside every alert
//! (`GET /api/v1/alerts`) and that notification consults before sending.
//!
//! Three things mute an alert, all computed at the same `now` from the current alerts, the kept
//! silences, the config's maintenance windows and the rules' `depends_on`:
//! a silence that matches ([`super::silence`]), a maintenance window that is open and matches
//! ([`super::maintenance`]), and an inhibition ([`super::inhibit`]). A muted alert still exists,
//! changes state and is recorded; it is only not notified. An empty [`Mute`] means not muted.

use std::collections::BTreeMap;

use ballast_core::AlertRecord;

use super::inhibit::{inhibitions, Dependencies};
use super::maintenance::MaintenanceSet;
use super::silence::SilenceSet;

/// Why one alert is muted (shared with the API, so defined in `ballast-core`).
pub use ballast_core::Mute;

/// What mutes alerts, built once per config or silence change and consulted every round.
#[derive(Debug, Clone, Default)]
pub struct NoiseControl {
    pub silences: SilenceSet,
    pub maintenance: MaintenanceSet,
    pub dependencies: Dependencies,
}

impl NoiseControl {
    /// Every alert's [`Mute`] at `now`, by alert id (an entry for each alert, muted or not).
    pub fn status(&self, alerts: &[AlertRecord], now_unix_ms: u64) -> BTreeMap<String, Mute> {
        mute_status(
            alerts,
            &self.silences,
            &self.maintenance,
            &self.dependencies,
            now_unix_ms,
        )
    }
}

/// Every alert's [`Mute`] at `now`, by alert id (an entry for each alert, muted or not).
pub fn mute_status(
    alerts: &[AlertRecord],
    silences: &SilenceSet,
    maintenance: &MaintenanceSet,
    dependencies: &Dependencies,
    now_unix_ms: u64,
) -> BTreeMap<String, Mute> {
    let mut inhibited = inhibitions(alerts, dependencies);
    let mut out = BTreeMap::new();
    for a in alerts {
        let silenced_by = silences.muting(&a.labels, now_unix_ms);
        let windows = maintenance.muting(&a.labels, now_unix_ms);
        let inhibition = inhibited.remove(&a.id).unwrap_or_default();
        let mut reasons: Vec<String> = Vec::new();
        for id in &silenced_by {
            let why = silences
                .get(*id)
                .map(|s| {
                    let comment = s.silence.comment.trim();
                    if comment.is_empty() {
                        format!(" by {}", s.silence.author)
                    } else {
                        format!(" by {}: {comment}", s.silence.author)
                    }
                })
                .unwrap_or_default();
            reasons.push(format!("silenced by silence {id}{why}"));
        }
        for w in &windows {
            reasons.push(format!("in maintenance window {w:?}"));
        }
        reasons.extend(inhibition.reasons.iter().map(|r| format!("inhibited: {r}")));
        out.insert(
            a.id.clone(),
            Mute {
                silenced_by,
                maintenance: windows,
                inhibited_by: inhibition.inhibited_by,
                reason: reasons.join("; "),
            },
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::noise::inhibit::tests::{alert, firing};
    use crate::noise::inhibit::DependsOn;
    use crate::noise::maintenance::{Days, MaintenanceSpec};
    use ballast_core::{MatchOp, Matcher, NewSilence, Severity, Silence};

    fn control() -> NoiseControl {
        let silence = Silence {
            id: 4,
            silence: NewSilence {
                matchers: vec![Matcher {
                    name: "service".into(),
                    op: MatchOp::Equal,
                    value: "shop".into(),
                }],
                starts_unix_ms: 0,
                ends_unix_ms: 1_000,
                author: "alice".into(),
                comment: "db upgrade".into(),
            },
            created_unix_ms: 0,
        };
        let window = MaintenanceSpec {
            name: "always-api".into(),
            days: Days::One("mon-sun".into()),
            start: "00:00".into(),
            duration: "7d".parse().unwrap(),
            timezone: "UTC".into(),
            matchers: Some([("service".to_string(), "api".to_string())].into()),
        };
        NoiseControl {
            silences: SilenceSet::new([silence]),
            maintenance: MaintenanceSet::new(&[window]).unwrap(),
            dependencies: Dependencies::new(
                [("app".to_string(), vec![DependsOn::Rule("pg".into())])].into(),
            )
            .unwrap(),
        }
    }

    #[test]
    fn each_cause_is_shown_with_its_reason() {
        let nc = control();
        let shop = alert("disk", &[("service", "shop")], firing(Severity::Warning));
        let api = alert("disk", &[("service", "api")], firing(Severity::Warning));
        let pg = alert("pg", &[("service", "db")], firing(Severity::Critical));
        let app = alert("app", &[("service", "web")], firing(Severity::Critical));
        let all = [shop.clone(), api.clone(), pg.clone(), app.clone()];
        let st = nc.status(&all, 500);
        assert_eq!(st.len(), 4);
        assert_eq!(st[&shop.id].silenced_by, vec![4]);
        assert_eq!(
            st[&shop.id].reason,
            "silenced by silence 4 by alice: db upgrade"
        );
        assert_eq!(st[&api.id].maintenance, vec!["always-api".to_string()]);
        assert!(st[&api.id]
            .reason
            .contains("maintenance window \"always-api\""));
        assert_eq!(st[&app.id].inhibited_by, vec![pg.id.clone()]);
        assert!(st[&app.id].reason.starts_with("inhibited: "));
        assert!(!st[&pg.id].is_muted());
        assert_eq!(st[&pg.id].reason, "");
        // The silence expires at 1000: the shop alert is unmuted.
        let st = nc.status(&all, 1_000);
        assert!(!st[&shop.id].is_muted());
    }

    #[test]
    fn serializes_for_the_api() {
        let m = Mute {
            silenced_by: vec![1],
            maintenance: vec![],
            inhibited_by: vec![],
            reason: "silenced by silence 1".into(),
        };
        assert_eq!(
            serde_json::to_value(&m).unwrap(),
            serde_json::json!({"silenced_by": [1], "maintenance": [], "inhibited_by": [], "reason": "silenced by silence 1"})
        );
    }
}
