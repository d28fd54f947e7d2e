//! Grouping for notifications: many alerts with something in common become one message, sent
//! when there is news and repeated only when nothing has been said for a long time.
//!
//! A storm of 100 "server down" alerts from one upstream must page once, not 100 times; an alert
//! that keeps firing must not be re-sent every evaluation round; a firing alert must still be
//! re-announced now and then so it is not forgotten. One [`Grouper`] serves one notification
//! route. Alerts are grouped by the values of the route's `group_by` labels (`["..."]`: by
//! every label, one group per alert); an alert without one of those labels groups with the
//! others that lack it.
//!
//! Each round the caller passes the route's current alerts to [`Grouper::update`], muted ones
//! left out (see [`super::status`]), then asks [`Grouper::due`] which groups to send now.
//! A `Firing` alert is a member of its group. A `Resolved` one that had been sent as firing is
//! sent once more as resolved in the next flush. Anything else, and an alert missing from the
//! set (muted, or forgotten), simply leaves its group: it is not announced as resolved, as in
//! Alertmanager, because a silenced alert has not been fixed.
//!
//! Each group's state machine, driven by `update` (events) and `due` (time):
//!
//! ```text
//!                    a member fires
//!   (no group) ───────────────────────────▶ WAITING
//!                                              │ now ≥ created + group_wait
//!                                              ▼ flush "first"
//!                 ┌──────────────────────▶ NOTIFIED ◀──────────────────────────┐
//!                 │                          │  │ now ≥ last + repeat_interval  │
//!                 │ flush "changed"          │  └─ and still firing ──────────▶│ flush "repeat"
//!                 │ (now ≥ last +            │ a member new since the last flush,
//!                 │  group_interval)         │ an escalation or de-escalation,
//!                 │                          ▼ or a notified member resolved
//!                 └───────────────────── CHANGED
//!
//!   any state ── no member firing and no resolution left to send ──▶ (no group)
//! ```
//!
//! Deduplication: a flush records the members and severities it sent; a group whose firing
//! members and severities are the same is not flushed again before `repeat_interval`. A member
//! that leaves (muted) is not news; when it comes back (its silence over, say) it is, as if new:
//! it still fires, and people should hear that. An alert that fires and resolves within
//! `group_wait` is never sent.

use std::collections::BTreeMap;

use ballast_core::{AlertRecord, AlertState, Labels, Severity};
use serde::Serialize;
use thiserror::Error;

/// A route's grouping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupSpec {
    /// Label names; `["..."]` groups by every label. Empty: one group for everything.
    pub group_by: Vec<String>,
    /// How long a new group waits for more alerts before its first flush.
    pub group_wait_ms: u64,
    /// The least time between two flushes of one group with news.
    pub group_interval_ms: u64,
    /// How long an unchanged, still firing group waits before it is sent again.
    pub repeat_interval_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum GroupError {
    #[error("group_interval must be more than 0")]
    ZeroInterval,
    #[error("repeat_interval must be more than 0")]
    ZeroRepeat,
    #[error("group_by has an empty label name")]
    EmptyLabel,
    #[error("group_by [\"...\"] (every label) cannot be combined with other names")]
    MixedAll,
}

impl GroupSpec {
    pub fn validate(&self) -> Result<(), GroupError> {
        if self.group_interval_ms == 0 {
            return Err(GroupError::ZeroInterval);
        }
        if self.repeat_interval_ms == 0 {
            return Err(GroupError::ZeroRepeat);
        }
        if self.group_by.iter().any(|n| n.trim().is_empty()) {
            return Err(GroupError::EmptyLabel);
        }
        if self.group_by.len() > 1 && self.group_by.iter().any(|n| n == "...") {
            return Err(GroupError::MixedAll);
        }
        Ok(())
    }

    fn by_all(&self) -> bool {
        self.group_by.len() == 1 && self.group_by.iter().any(|n| n == "...")
    }
}

/// Why a group is flushed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FlushReason {
    /// Its first message, `group_wait` after it formed.
    First,
    /// A member is new, changed severity or resolved since the last message.
    Changed,
    /// Nothing changed for `repeat_interval`, and it still fires.
    Repeat,
}

/// One message to send: a group's firing members, then those resolved since the last one.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Flush {
    /// The group's labels in text (`{alertname="x",service="shop"}`): stable, for dedup keys.
    pub group_key: String,
    pub labels: Labels,
    pub alerts: Vec<AlertRecord>,
    pub reason: FlushReason,
}

#[derive(Debug, Clone)]
struct Group {
    labels: Labels,
    firing: BTreeMap<String, AlertRecord>,
    /// Resolved since the last flush, having been sent as firing.
    resolved: BTreeMap<String, AlertRecord>,
    created_ms: u64,
    last_flush_ms: Option<u64>,
    /// The firing members and severities of the last flush.
    notified: BTreeMap<String, Severity>,
}

impl Group {
    fn changed(&self) -> bool {
        !self.resolved.is_empty()
            || self
                .firing
                .values()
                .any(|a| self.notified.get(&a.id).copied() != a.state.severity())
    }

    /// When it may flush next, and why; `None`: not until something happens.
    fn next(&self, spec: &GroupSpec) -> Option<(u64, FlushReason)> {
        match self.last_flush_ms {
            None if !self.firing.is_empty() => Some((
                self.created_ms.saturating_add(spec.group_wait_ms),
                FlushReason::First,
            )),
            None => None,
            Some(last) if self.changed() => Some((
                last.saturating_add(spec.group_interval_ms),
                FlushReason::Changed,
            )),
            Some(last) if !self.firing.is_empty() => Some((
                last.saturating_add(spec.repeat_interval_ms),
                FlushReason::Repeat,
            )),
            Some(_) => None,
        }
    }

    fn is_empty(&self) -> bool {
        self.firing.is_empty() && self.resolved.is_empty()
    }
}

/// The groups of one route.
#[derive(Debug, Clone)]
pub struct Grouper {
    spec: GroupSpec,
    groups: BTreeMap<String, Group>,
}

impl Grouper {
    pub fn new(spec: GroupSpec) -> Result<Self, GroupError> {
        spec.validate()?;
        Ok(Grouper {
            spec,
            groups: BTreeMap::new(),
        })
    }

    pub fn spec(&self) -> &GroupSpec {
        &self.spec
    }

    /// How many groups are held.
    pub fn len(&self) -> usize {
        self.groups.len()
    }

    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    fn group_labels(&self, labels: &Labels) -> Labels {
        if self.spec.by_all() {
            return labels.clone();
        }
        self.spec
            .group_by
            .iter()
            .filter_map(|n| labels.get(n).map(|v| (n.clone(), v.to_string())))
            .collect()
    }

    /// Takes the route's current alerts at `now` (muted ones left out; see the module doc).
    /// When an id appears twice, the last record counts.
    pub fn update(&mut self, alerts: &[AlertRecord], now_unix_ms: u64) {
        let mut current: BTreeMap<&str, &AlertRecord> = BTreeMap::new();
        for a in alerts {
            current.insert(&a.id, a);
        }
        // Members that stopped firing: resolved (announced if they had been sent) or gone.
        for g in self.groups.values_mut() {
            let ids: Vec<String> = g.firing.keys().cloned().collect();
            for id in ids {
                let now_firing = current
                    .get(id.as_str())
                    .is_some_and(|a| a.state.severity().is_some());
                if now_firing {
                    continue;
                }
                if let Some(old) = g.firing.remove(&id) {
                    let resolved = current
                        .get(id.as_str())
                        .is_some_and(|a| a.state == AlertState::Resolved);
                    if resolved && g.notified.contains_key(&id) {
                        // Kept in `notified` until the next flush: should it fire again
                        // before then, at the same severity, there is nothing to say.
                        let rec = current.get(id.as_str()).map_or(old, |a| (*a).clone());
                        g.resolved.insert(id.clone(), rec);
                    } else {
                        g.notified.remove(&id);
                    }
                }
            }
        }
        // Firing alerts join (or refresh) their group.
        for a in current.values().filter(|a| a.state.severity().is_some()) {
            let labels = self.group_labels(&a.labels);
            let key = group_key(&labels);
            let g = self.groups.entry(key).or_insert_with(|| Group {
                labels,
                firing: BTreeMap::new(),
                resolved: BTreeMap::new(),
                created_ms: now_unix_ms,
                last_flush_ms: None,
                notified: BTreeMap::new(),
            });
            // A resolution not yet sent is superseded by the alert firing again.
            g.resolved.remove(&a.id);
            g.firing.insert(a.id.clone(), (*a).clone());
        }
        self.groups.retain(|_, g| !g.is_empty());
    }

    /// Puts back, after a restart, alerts that were already notified as firing at
    /// `notified_unix_ms` (the notification log knows when), so they are not announced again:
    /// their groups are as after a flush at that time, and repeat from it. Non-firing records
    /// are ignored. Call it before the first [`Grouper::update`].
    pub fn restore(&mut self, alerts: &[AlertRecord], notified_unix_ms: u64) {
        for a in alerts {
            let Some(severity) = a.state.severity() else {
                continue;
            };
            let labels = self.group_labels(&a.labels);
            let key = group_key(&labels);
            let g = self.groups.entry(key).or_insert_with(|| Group {
                labels,
                firing: BTreeMap::new(),
                resolved: BTreeMap::new(),
                created_ms: notified_unix_ms,
                last_flush_ms: Some(notified_unix_ms),
                notified: BTreeMap::new(),
            });
            g.firing.insert(a.id.clone(), a.clone());
            g.notified.insert(a.id.clone(), severity);
            let last = g.last_flush_ms.get_or_insert(notified_unix_ms);
            *last = (*last).max(notified_unix_ms);
        }
    }

    /// The groups to send at `now`, in group-key order; each is recorded as sent.
    pub fn due(&mut self, now_unix_ms: u64) -> Vec<Flush> {
        let mut out = Vec::new();
        for (key, g) in &mut self.groups {
            let Some((at, reason)) = g.next(&self.spec) else {
                continue;
            };
            if now_unix_ms < at {
                continue;
            }
            let mut alerts: Vec<AlertRecord> = g.firing.values().cloned().collect();
            alerts.extend(std::mem::take(&mut g.resolved).into_values());
            g.notified = g
                .firing
                .values()
                .filter_map(|a| a.state.severity().map(|s| (a.id.clone(), s)))
                .collect();
            g.last_flush_ms = Some(now_unix_ms);
            out.push(Flush {
                group_key: key.clone(),
                labels: g.labels.clone(),
                alerts,
                reason,
            });
        }
        self.groups.retain(|_, g| !g.is_empty());
        out
    }

    /// The earliest time a group may flush (at or before which to call [`Grouper::due`]);
    /// `None` when no group is waiting for anything.
    pub fn next_due(&self) -> Option<u64> {
        self.groups
            .values()
            .filter_map(|g| g.next(&self.spec).map(|(at, _)| at))
            .min()
    }
}

/// `{name="value",...}` in name order, values escaped as in a matcher.
pub fn group_key(labels: &Labels) -> String {
    let mut out = String::from("{");
    for (i, (k, v)) in labels.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(k);
        out.push_str("=\"");
        for c in v.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                c => out.push(c),
            }
        }
        out.push('"');
    }
    out.push('}');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::noise::inhibit::tests::{alert, firing};

    const WAIT: u64 = 10_000;
    const INTERVAL: u64 = 60_000;
    const REPEAT: u64 = 3_600_000;

    fn grouper(by: &[&str]) -> Grouper {
        Grouper::new(GroupSpec {
            group_by: by.iter().map(|s| s.to_string()).collect(),
            group_wait_ms: WAIT,
            group_interval_ms: INTERVAL,
            repeat_interval_ms: REPEAT,
        })
        .unwrap()
    }

    fn server(n: usize, state: AlertState) -> AlertRecord {
        let s = format!("s{n}");
        alert(
            "server-down",
            &[("service", "shop"), ("server", s.as_str())],
            state,
        )
    }

    fn crit() -> AlertState {
        firing(Severity::Critical)
    }

    #[test]
    fn a_storm_of_100_alerts_is_one_flush_after_group_wait() {
        let mut g = grouper(&["alertname", "service"]);
        let storm: Vec<AlertRecord> = (0..100).map(|n| server(n, crit())).collect();
        // They arrive over several rounds within group_wait.
        g.update(&storm[..30], 0);
        assert!(g.due(0).is_empty());
        g.update(&storm[..70], 4_000);
        assert!(g.due(4_000).is_empty());
        g.update(&storm, 9_000);
        assert!(g.due(WAIT - 1).is_empty());
        assert_eq!(g.next_due(), Some(WAIT));
        let flushes = g.due(WAIT);
        assert_eq!(flushes.len(), 1);
        let f = &flushes[0];
        assert_eq!(f.reason, FlushReason::First);
        assert_eq!(f.alerts.len(), 100);
        assert_eq!(f.group_key, r#"{alertname="server-down",service="shop"}"#);
        assert_eq!(f.labels.get("service"), Some("shop"));
        // Every later round with the same storm: nothing new, nothing sent.
        for t in (WAIT..REPEAT).step_by(INTERVAL as usize) {
            g.update(&storm, t);
            assert!(g.due(t).is_empty(), "flushed again at {t}");
        }
    }

    #[test]
    fn unchanged_groups_repeat_after_repeat_interval() {
        let mut g = grouper(&["alertname"]);
        let a = [server(1, crit())];
        g.update(&a, 0);
        assert_eq!(g.due(WAIT).len(), 1);
        g.update(&a, REPEAT);
        assert!(g.due(WAIT + REPEAT - 1).is_empty());
        assert_eq!(g.next_due(), Some(WAIT + REPEAT));
        let f = g.due(WAIT + REPEAT);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].reason, FlushReason::Repeat);
    }

    #[test]
    fn news_waits_for_group_interval() {
        let mut g = grouper(&["alertname"]);
        g.update(&[server(1, crit())], 0);
        assert_eq!(g.due(WAIT).len(), 1);
        // A second server goes down just after the first message.
        let both = [server(1, crit()), server(2, crit())];
        g.update(&both, WAIT + 1);
        assert!(g.due(WAIT + INTERVAL - 1).is_empty());
        let f = g.due(WAIT + INTERVAL);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].reason, FlushReason::Changed);
        assert_eq!(f[0].alerts.len(), 2);
        // A change of severity is news too.
        let escalated = [server(1, crit()), server(2, firing(Severity::Warning))];
        g.update(&escalated, WAIT + INTERVAL + 1);
        let f = g.due(WAIT + 2 * INTERVAL);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].reason, FlushReason::Changed);
    }

    #[test]
    fn a_notified_alert_is_sent_once_as_resolved() {
        let mut g = grouper(&["alertname"]);
        g.update(&[server(1, crit()), server(2, crit())], 0);
        assert_eq!(g.due(WAIT).len(), 1);
        let t = WAIT + INTERVAL;
        g.update(&[server(1, crit()), server(2, AlertState::Resolved)], t);
        let f = g.due(t);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].reason, FlushReason::Changed);
        let states: Vec<&str> = f[0].alerts.iter().map(|a| a.state.name()).collect();
        assert_eq!(states, vec!["firing", "resolved"]);
        // Not again.
        g.update(
            &[server(1, crit()), server(2, AlertState::Resolved)],
            t + INTERVAL,
        );
        assert!(g.due(t + INTERVAL).is_empty());
        // The last one resolves: one last message, then the group is gone.
        g.update(&[server(1, AlertState::Resolved)], t + 2 * INTERVAL);
        let f = g.due(t + 2 * INTERVAL);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].alerts[0].state, AlertState::Resolved);
        assert!(g.is_empty());
        assert_eq!(g.next_due(), None);
    }

    #[test]
    fn an_alert_that_fires_again_before_its_resolution_is_sent_is_not_news() {
        let mut g = grouper(&["alertname"]);
        g.update(&[server(1, crit())], 0);
        assert_eq!(g.due(WAIT).len(), 1);
        g.update(&[server(1, AlertState::Resolved)], WAIT + 1);
        g.update(&[server(1, crit())], WAIT + 2);
        assert!(g.due(WAIT + INTERVAL).is_empty());
        assert_eq!(g.next_due(), Some(WAIT + REPEAT));
    }

    #[test]
    fn restored_alerts_are_not_announced_again() {
        let mut g = grouper(&["alertname"]);
        let both = [
            server(1, crit()),
            server(2, crit()),
            server(3, AlertState::Pending),
        ];
        g.restore(&both, 1_000);
        assert_eq!(g.len(), 1);
        g.update(&both, 50_000);
        assert!(g.due(50_000 + WAIT).is_empty());
        assert_eq!(g.next_due(), Some(1_000 + REPEAT));
        // A new member after the restart is news; the restored ones resolve as usual.
        g.update(
            &[
                server(1, AlertState::Resolved),
                server(2, crit()),
                server(4, crit()),
            ],
            60_000,
        );
        let f = g.due(61_000);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].reason, FlushReason::Changed);
        assert_eq!(f[0].alerts.len(), 3);
    }

    #[test]
    fn an_alert_resolved_within_group_wait_is_never_sent() {
        let mut g = grouper(&["alertname"]);
        g.update(&[server(1, crit())], 0);
        g.update(&[server(1, AlertState::Resolved)], WAIT / 2);
        assert!(g.due(WAIT).is_empty());
        assert!(g.is_empty());
    }

    #[test]
    fn a_muted_member_leaves_without_a_resolution() {
        let mut g = grouper(&["alertname"]);
        let (a, b) = (server(1, crit()), server(2, crit()));
        g.update(&[a.clone(), b.clone()], 0);
        assert_eq!(g.due(WAIT).len(), 1);
        // b is silenced: left out of the set.
        g.update(std::slice::from_ref(&a), WAIT + 1);
        assert!(g.due(WAIT + INTERVAL).is_empty());
        // The silence expires and b is back: news again.
        g.update(&[a, b], WAIT + INTERVAL + 1);
        let f = g.due(WAIT + 2 * INTERVAL);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].reason, FlushReason::Changed);
    }

    #[test]
    fn groups_split_by_label_values() {
        let mut g = grouper(&["service"]);
        let shop = alert("x", &[("service", "shop")], crit());
        let api = alert("x", &[("service", "api")], crit());
        let none = alert("y", &[], firing(Severity::Warning));
        g.update(&[shop, api, none], 0);
        let keys: Vec<String> = g.due(WAIT).into_iter().map(|f| f.group_key).collect();
        assert_eq!(
            keys,
            vec![r#"{service="api"}"#, r#"{service="shop"}"#, "{}"]
        );
        // "..." is one group per label set.
        let mut all = grouper(&["..."]);
        all.update(&[server(1, crit()), server(2, crit())], 0);
        assert_eq!(all.due(WAIT).len(), 2);
    }

    #[test]
    fn pending_alerts_do_not_form_groups() {
        let mut g = grouper(&["alertname"]);
        g.update(&[server(1, AlertState::Pending)], 0);
        assert!(g.is_empty());
        assert!(g.due(WAIT).is_empty());
    }

    #[test]
    fn zero_group_wait_flushes_at_once() {
        let mut g = Grouper::new(GroupSpec {
            group_by: vec!["alertname".into()],
            group_wait_ms: 0,
            group_interval_ms: INTERVAL,
            repeat_interval_ms: REPEAT,
        })
        .unwrap();
        g.update(&[server(1, crit())], 5);
        assert_eq!(g.due(5).len(), 1);
    }

    #[test]
    fn spec_is_checked() {
        let spec = |by: &[&str], interval, repeat| GroupSpec {
            group_by: by.iter().map(|s| s.to_string()).collect(),
            group_wait_ms: 0,
            group_interval_ms: interval,
            repeat_interval_ms: repeat,
        };
        assert_eq!(
            Grouper::new(spec(&[], 0, 1)).unwrap_err(),
            GroupError::ZeroInterval
        );
        assert_eq!(
            Grouper::new(spec(&[], 1, 0)).unwrap_err(),
            GroupError::ZeroRepeat
        );
        assert_eq!(
            Grouper::new(spec(&[""], 1, 1)).unwrap_err(),
            GroupError::EmptyLabel
        );
        assert_eq!(
            Grouper::new(spec(&["...", "a"], 1, 1)).unwrap_err(),
            GroupError::MixedAll
        );
    }

    #[test]
    fn group_key_escapes_values() {
        let l = Labels::new().with("a", "x\"y").with("b", "1\\2");
        assert_eq!(group_key(&l), r#"{a="x\"y",b="1\\2"}"#);
    }
}
