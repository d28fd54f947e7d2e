//! From the alerts of one moment to the notifications to queue: routing, grouping, muting and
//! escalation. Pure: time is passed in, and what comes out is outbox rows
//! ([`ballast_core::NewNotification`]) for delivery to persist and send.
//!
//! Each round (the caller runs one whenever an alert changes, and at least every second):
//!
//! ```text
//!   alerts (with mute status) ──▶ not muted? ──▶ routes matching its labels
//!        │                                          │ route muted by a time interval:
//!        │                                          │   it sees no alert (members leave
//!        │                                          ▼   quietly, come back as news)
//!        │                                   the route's Grouper ──due──▶ Message per
//!        │                                                       receiver target (its locale)
//!        └─ critical, firing, not acknowledged, for `escalate.after` ──▶ one Message per alert
//!           to each escalation target, once per alert episode (dedup key)
//! ```
//!
//! A muted alert (silenced, inhibited, in maintenance) is left out, so it neither notifies nor
//! resolves; the grouper's state machine (in `ballast_monitor::noise::group`) decides news,
//! repeats and resolutions. "Resolved once, and only if notified" is the grouper's rule; "once"
//! across a restart is [`Dispatcher::restore`] (what people already heard, from the outbox) and
//! the outbox's dedup keys.

use std::collections::{BTreeMap, BTreeSet};

use ballast_core::{AlertRecord, AlertState, AlertView, NewNotification, Severity};
use ballast_monitor::noise::{Flush, Grouper, MaintenanceSet};

use crate::message::{Locale, Message, MessageAlert, MessageStatus};
use crate::outbox::{dedup_key, escalation_dedup_key, new_notification};
use crate::receiver::Receivers;
use crate::route::Routes;

/// The settings every message shares.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MessageSettings {
    /// The dashboard's address, for links in messages.
    pub dashboard_url: Option<String>,
}

/// Routes, their groupers, and the escalations already queued.
pub struct Dispatcher {
    routes: Routes,
    groupers: Vec<Grouper>,
    receivers: Receivers,
    windows: MaintenanceSet,
    settings: MessageSettings,
    /// (target, alert id, firing since) of escalations queued, so a round does not queue one
    /// again; the outbox's dedup key covers restarts.
    escalated: BTreeSet<(String, String, u64)>,
    /// The severity each alert last fired at, so its resolution follows the same routes.
    severities: BTreeMap<String, Severity>,
}

impl Dispatcher {
    pub fn new(
        routes: Routes,
        receivers: Receivers,
        windows: MaintenanceSet,
        settings: MessageSettings,
    ) -> Self {
        let groupers = routes
            .routes()
            .iter()
            .map(|r| {
                // Validated with the route; a refusal cannot happen here.
                Grouper::new(r.group_spec().clone()).unwrap_or_else(|_| {
                    Grouper::new(ballast_monitor::noise::GroupSpec {
                        group_by: vec!["alertname".into()],
                        group_wait_ms: 0,
                        group_interval_ms: 60_000,
                        repeat_interval_ms: 4 * 3_600_000,
                    })
                    .expect("the fallback group spec is valid")
                })
            })
            .collect();
        Dispatcher {
            routes,
            groupers,
            receivers,
            windows,
            settings,
            escalated: BTreeSet::new(),
            severities: BTreeMap::new(),
        }
    }

    pub fn receivers(&self) -> &Receivers {
        &self.receivers
    }

    /// Sends to these receivers from now on (the same names, their secrets read again).
    pub fn set_receivers(&mut self, receivers: Receivers) {
        self.receivers = receivers;
    }

    /// After a restart or a reload, before the first round: alerts (as restored) that the
    /// outbox says a receiver of a route heard as firing (`sent` holds `(receiver, alert id)
    /// →` the latest moment and the severity) are put back as notified in that route's
    /// grouper, so they are not announced again, and their resolution is announced once.
    /// That includes alerts resolved since, whose resolution had not been sent yet (it waits
    /// for the group interval): they are put back as firing at the severity heard, and the
    /// next round resolves them.
    ///
    /// Routes are matched by their receivers, not by their position: a reload that inserts
    /// a route before another (a route without `match` must be last) moves the others, and
    /// what `ops` heard through route 1 must keep route 2-to-`ops` quiet, not the new
    /// route 1-to-`team`. A route is restored when any of its receivers heard the alert, the
    /// latest moment counting; so a receiver added to a route that already announced an
    /// alert hears of it with the group's next news, not at once.
    pub fn restore(
        &mut self,
        alerts: &[AlertRecord],
        sent: &BTreeMap<(String, String), (u64, Severity)>,
    ) {
        for a in alerts {
            if let Some(s) = a.state.severity() {
                self.severities.insert(a.id.clone(), s);
            }
        }
        for (i, route) in self.routes.routes().iter().enumerate() {
            for a in alerts {
                let latest = route
                    .receivers()
                    .iter()
                    .filter_map(|r| sent.get(&(r.clone(), a.id.clone())))
                    .max_by_key(|(at, _)| *at);
                let Some(&(at, severity)) = latest else {
                    continue;
                };
                match a.state {
                    AlertState::Firing { .. } => {
                        self.groupers[i].restore(std::slice::from_ref(a), at);
                    }
                    AlertState::Resolved => {
                        self.severities.entry(a.id.clone()).or_insert(severity);
                        let mut was = a.clone();
                        was.state = AlertState::Firing { severity };
                        self.groupers[i].restore(std::slice::from_ref(&was), at);
                    }
                    AlertState::Inactive | AlertState::Pending => {}
                }
            }
        }
    }

    /// One round at `now`: the outbox rows to queue.
    pub fn round(&mut self, alerts: &[AlertView], now_unix_ms: u64) -> Vec<NewNotification> {
        let live: Vec<&AlertView> = alerts.iter().filter(|v| !v.mute.is_muted()).collect();
        let mut per_route: Vec<Vec<AlertRecord>> = vec![Vec::new(); self.groupers.len()];
        for v in &live {
            let a = &v.alert;
            let last = self.severities.get(&a.id).copied();
            match a.state.severity() {
                Some(s) => {
                    self.severities.insert(a.id.clone(), s);
                }
                None if a.state != AlertState::Resolved => {
                    self.severities.remove(&a.id);
                }
                None => {}
            }
            for route in self.routes.matching(&routing_labels(a, last)) {
                per_route[route.index() - 1].push(v.alert.clone());
            }
        }
        let present: BTreeSet<&str> = alerts.iter().map(|v| v.alert.id.as_str()).collect();
        self.severities
            .retain(|id, _| present.contains(id.as_str()));
        let mut out = Vec::new();
        for (i, route) in self.routes.routes().iter().enumerate() {
            let grouper = &mut self.groupers[i];
            if route.muted_at(&self.windows, now_unix_ms) {
                grouper.update(&[], now_unix_ms);
                continue;
            }
            grouper.update(&per_route[i], now_unix_ms);
            for flush in grouper.due(now_unix_ms) {
                for receiver in route.receivers() {
                    for target in self.receivers.targets_of(receiver) {
                        let mut message = message(
                            &flush,
                            route.index(),
                            target.locale,
                            &self.settings,
                            now_unix_ms,
                        );
                        message.template = target.template.clone();
                        let key = dedup_key(&target.name, &message);
                        out.extend(row(target, &message, key, now_unix_ms));
                    }
                }
            }
        }
        out.extend(self.escalations(&live, now_unix_ms));
        out
    }

    fn escalations(&mut self, live: &[&AlertView], now_unix_ms: u64) -> Vec<NewNotification> {
        let mut out = Vec::new();
        let mut still = BTreeSet::new();
        for v in live {
            let a = &v.alert;
            let Some(severity) = a.state.severity() else {
                continue;
            };
            for route in self.routes.matching(&routing_labels(a, None)) {
                if route.muted_at(&self.windows, now_unix_ms) {
                    continue;
                }
                let Some(to) =
                    route.escalation(Some(severity), v.acknowledged, a.since_unix_ms, now_unix_ms)
                else {
                    continue;
                };
                let after = route.escalation_after_ms().unwrap_or(0);
                for receiver in to {
                    for target in self.receivers.targets_of(receiver) {
                        let k = (target.name.clone(), a.id.clone(), a.since_unix_ms);
                        still.insert(k.clone());
                        if self.escalated.contains(&k) {
                            continue;
                        }
                        // Named by its rule only: the body says where.
                        let labels = a
                            .labels
                            .get("alertname")
                            .map(|n| ballast_core::Labels::new().with("alertname", n))
                            .unwrap_or_default();
                        let flush = Flush {
                            group_key: format!("escalation {}", a.id),
                            labels,
                            alerts: vec![a.clone()],
                            reason: ballast_monitor::noise::FlushReason::Changed,
                        };
                        let mut message = message(
                            &flush,
                            route.index(),
                            target.locale,
                            &self.settings,
                            now_unix_ms,
                        );
                        message.escalated_after_ms = Some(after);
                        message.template = target.template.clone();
                        let key = escalation_dedup_key(&target.name, &a.id, a.since_unix_ms);
                        if let Some(n) = row(target, &message, key, now_unix_ms) {
                            out.push(n);
                            self.escalated.insert(k);
                        }
                    }
                }
            }
        }
        // Forget episodes that ended (resolved, acknowledged, muted): a new one escalates anew.
        self.escalated.retain(|k| still.contains(k));
        out
    }

    /// The earliest moment a group may flush; the caller runs a round by then.
    pub fn next_due(&self) -> Option<u64> {
        self.groupers.iter().filter_map(Grouper::next_due).min()
    }
}

/// The labels routes match: the alert's, plus `severity` (`critical`, `warning`) unless it
/// has a label of that name. A firing alert has its own severity; a resolved one has the
/// severity it last fired at (`last`), so that a route matching `severity = "critical"` sees
/// its resolution and announces it.
fn routing_labels(a: &AlertRecord, last: Option<Severity>) -> ballast_core::Labels {
    if a.labels.get("severity").is_some() {
        return a.labels.clone();
    }
    match a.state.severity().or(last) {
        Some(s) => a.labels.clone().with("severity", s.name()),
        None => a.labels.clone(),
    }
}

/// The outbox row of `message` to `target`, due now; `None` if it cannot be encoded (it is
/// plain data: that does not happen).
fn row(
    target: &crate::receiver::Target,
    message: &Message,
    key: String,
    now_unix_ms: u64,
) -> Option<NewNotification> {
    new_notification(
        &target.name,
        message,
        key,
        now_unix_ms,
        now_unix_ms,
        target.max_age_ms,
    )
    .ok()
}

/// The message of one flush.
fn message(
    flush: &Flush,
    route: usize,
    locale: Locale,
    settings: &MessageSettings,
    now_unix_ms: u64,
) -> Message {
    let alerts: Vec<MessageAlert> = flush
        .alerts
        .iter()
        .map(|a| MessageAlert {
            id: a.id.clone(),
            rule: a.rule.clone(),
            labels: a.labels.clone(),
            annotations: a.annotations.clone(),
            state: a.state,
            value: a.value,
            threshold: a.threshold,
            since_unix_ms: a.since_unix_ms,
        })
        .collect();
    let severity = alerts
        .iter()
        .filter_map(|a| a.state.severity())
        .max_by_key(|s| matches!(s, Severity::Critical));
    let status = if alerts
        .iter()
        .any(|a| matches!(a.state, AlertState::Firing { .. }))
    {
        MessageStatus::Firing
    } else {
        MessageStatus::Resolved
    };
    Message {
        group_key: flush.group_key.clone(),
        group_labels: flush.labels.clone(),
        status,
        severity,
        alerts,
        dashboard_url: settings.dashboard_url.clone(),
        locale,
        at_unix_ms: now_unix_ms,
        route,
        escalated_after_ms: None,
        template: None,
    }
}

/// What people already heard, from outbox rows (payloads included): `(receiver, alert id) →`
/// the latest moment a route's message announcing it as firing was queued to one of the
/// receiver's channels (a row's target is `receiver/kind`), and the severity it fired at. An
/// alert whose latest message announced its resolution is not in it. Rows that failed or
/// expired do not count: nobody heard them; nor do escalations and test messages, which no
/// grouper sent.
pub fn heard(rows: &[ballast_core::Notification]) -> BTreeMap<(String, String), (u64, Severity)> {
    use ballast_core::NotificationState as S;
    let mut latest: BTreeMap<(String, String), (u64, Option<Severity>)> = BTreeMap::new();
    for row in rows {
        if matches!(row.state, S::Failed | S::Expired) {
            continue;
        }
        let Ok(m) = serde_json::from_str::<Message>(&row.new.payload_json) else {
            continue;
        };
        if m.escalated_after_ms.is_some() || m.route == 0 {
            continue;
        }
        let receiver = row
            .new
            .receiver
            .split('/')
            .next()
            .unwrap_or(&row.new.receiver);
        for a in &m.alerts {
            let severity = match a.state {
                AlertState::Firing { severity } => Some(severity),
                _ => None,
            };
            let at = row.new.created_unix_ms;
            let e = latest
                .entry((receiver.to_string(), a.id.clone()))
                .or_insert((at, severity));
            if at >= e.0 {
                *e = (at, severity);
            }
        }
    }
    latest
        .into_iter()
        .filter_map(|(k, (at, severity))| severity.map(|s| (k, (at, s))))
        .collect()
}

#[cfg(test)]
mod tests;
