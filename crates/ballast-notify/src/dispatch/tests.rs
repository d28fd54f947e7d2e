use std::collections::BTreeMap;

use ballast_core::{AlertRecord, AlertSource, AlertState, AlertView, Labels, Mute, Severity};
use ballast_monitor::noise::MaintenanceSet;

use super::*;
use crate::message::Message;
use crate::receiver::{ReceiverSpec, Receivers};
use crate::route::{RouteSpec, Routes};

fn setup(routes_toml: &str) -> Dispatcher {
    #[derive(serde::Deserialize)]
    struct F {
        receiver: Vec<ReceiverSpec>,
        notify: Vec<RouteSpec>,
    }
    let text = format!(
        "[[receiver]]\nname = \"chat\"\nslack = {{ url = \"http://127.0.0.1:9/s\" }}\nwebhook = {{ url = \"http://127.0.0.1:9/w\" }}\n\
         [[receiver]]\nname = \"boss\"\nwebhook = {{ url = \"http://127.0.0.1:9/b\" }}\n{routes_toml}"
    );
    let f: F = toml::from_str(&text).unwrap();
    let receivers = Receivers::build(&f.receiver, crate::Locale::En, &Default::default()).unwrap();
    let names = receivers.names().map(str::to_string).collect();
    let routes = Routes::new(&f.notify, &names, &Default::default()).unwrap();
    Dispatcher::new(
        routes,
        receivers,
        MaintenanceSet::default(),
        MessageSettings::default(),
    )
}

fn view(server: usize, state: AlertState, since: u64) -> AlertView {
    let labels = Labels::new()
        .with("alertname", "server-down")
        .with("server", format!("s{server}"));
    AlertView {
        alert: AlertRecord {
            id: labels.fingerprint(),
            rule: "server-down".into(),
            labels,
            annotations: BTreeMap::new(),
            state,
            source: AlertSource::Rule,
            value: Some(0.0),
            threshold: Some(1.0),
            since_unix_ms: since,
            updated_unix_ms: since,
            ack: None,
        },
        silenced: false,
        inhibited: false,
        acknowledged: false,
        mute: Mute::default(),
    }
}

fn crit() -> AlertState {
    AlertState::Firing {
        severity: Severity::Critical,
    }
}

fn decode(n: &NewNotification) -> Message {
    serde_json::from_str(&n.payload_json).unwrap()
}

#[test]
fn a_storm_is_one_message_per_target_naming_every_alert() {
    let mut d = setup("[[notify]]\nreceivers = [\"chat\"]\ngroup_wait = \"2s\"");
    let storm: Vec<AlertView> = (0..500).map(|n| view(n, crit(), 0)).collect();
    assert!(d.round(&storm[..200], 0).is_empty());
    assert!(d.round(&storm, 1000).is_empty());
    assert_eq!(d.next_due(), Some(2000));
    let rows = d.round(&storm, 2000);
    let targets: Vec<&str> = rows.iter().map(|r| r.receiver.as_str()).collect();
    assert_eq!(targets, ["chat/webhook", "chat/slack"]);
    for r in &rows {
        let m = decode(r);
        assert_eq!(m.alerts.len(), 500);
        assert_eq!(m.route, 1);
    }
    assert!(
        d.round(&storm, 3000).is_empty(),
        "nothing new, nothing sent"
    );
}

#[test]
fn muted_alerts_are_left_out_and_resolutions_go_once() {
    let mut d = setup("[[notify]]\nreceivers = [\"boss\"]\ngroup_wait = \"0s\"");
    let mut muted = view(2, crit(), 0);
    muted.mute.silenced_by = vec![7];
    let rows = d.round(&[view(1, crit(), 0), muted], 0);
    assert_eq!(rows.len(), 1);
    assert_eq!(decode(&rows[0]).alerts.len(), 1);
    let resolved = view(1, AlertState::Resolved, 5000);
    let rows = d.round(std::slice::from_ref(&resolved), 61_000);
    assert_eq!(rows.len(), 1);
    assert_eq!(decode(&rows[0]).status, crate::MessageStatus::Resolved);
    assert!(d.round(std::slice::from_ref(&resolved), 122_000).is_empty());
    // Never notified: no resolution.
    let mut d = setup("[[notify]]\nreceivers = [\"boss\"]\ngroup_wait = \"10s\"");
    assert!(d.round(&[view(1, crit(), 0)], 0).is_empty());
    assert!(d
        .round(&[view(1, AlertState::Resolved, 10)], 5000)
        .is_empty());
    assert!(d
        .round(&[view(1, AlertState::Resolved, 10)], 20_000)
        .is_empty());
}

#[test]
fn an_unacknowledged_critical_escalates_once_per_episode() {
    let mut d = setup(
        "[[notify]]\nreceivers = [\"chat\"]\ngroup_wait = \"0s\"\nescalate = { after = \"30s\", to = [\"boss\"] }",
    );
    let a = view(1, crit(), 1000);
    assert_eq!(
        d.round(std::slice::from_ref(&a), 1000).len(),
        2,
        "the first message"
    );
    assert!(d.round(std::slice::from_ref(&a), 30_999).is_empty());
    let rows = d.round(std::slice::from_ref(&a), 31_000);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].receiver, "boss/webhook");
    assert_eq!(decode(&rows[0]).escalated_after_ms, Some(30_000));
    assert!(d.round(std::slice::from_ref(&a), 32_000).is_empty(), "once");
    // Acknowledged: no escalation for the next episode either.
    let mut again = view(1, crit(), 100_000);
    again.acknowledged = true;
    assert!(d
        .round(&[again], 200_000)
        .iter()
        .all(|r| r.receiver != "boss/webhook"));
    // A warning never escalates.
    let mut d = setup(
        "[[notify]]\nreceivers = [\"chat\"]\ngroup_wait = \"0s\"\nescalate = { after = \"30s\", to = [\"boss\"] }",
    );
    let w = view(
        1,
        AlertState::Firing {
            severity: Severity::Warning,
        },
        0,
    );
    d.round(std::slice::from_ref(&w), 0);
    assert!(d.round(&[w], 100_000).is_empty());
}

#[test]
fn a_restart_that_heard_the_alert_does_not_announce_it_again() {
    let mut before = setup("[[notify]]\nreceivers = [\"boss\"]\ngroup_wait = \"0s\"");
    let a = view(1, crit(), 0);
    let rows = before.round(std::slice::from_ref(&a), 0);
    let stored: Vec<ballast_core::Notification> = rows
        .into_iter()
        .enumerate()
        .map(|(i, new)| ballast_core::Notification {
            id: i as u64 + 1,
            new,
            state: ballast_core::NotificationState::Delivered,
            attempts: 1,
            last_attempt_unix_ms: Some(0),
            last_error: None,
            delivered_unix_ms: Some(0),
            answer: Some("200".into()),
        })
        .collect();
    let heard = heard(&stored);
    assert_eq!(heard.len(), 1);
    let mut after = setup("[[notify]]\nreceivers = [\"boss\"]\ngroup_wait = \"0s\"");
    after.restore(std::slice::from_ref(&a.alert), &heard);
    assert!(after.round(std::slice::from_ref(&a), 5000).is_empty());
    let rows = after.round(&[view(1, AlertState::Resolved, 6000)], 70_000);
    assert_eq!(rows.len(), 1, "its resolution is still announced");
    // Without what was heard, it is announced again.
    let mut fresh = setup("[[notify]]\nreceivers = [\"boss\"]\ngroup_wait = \"0s\"");
    assert_eq!(fresh.round(&[a], 5000).len(), 1);
}

/// The outbox rows of `rows`, as delivered.
fn delivered(rows: Vec<NewNotification>) -> Vec<ballast_core::Notification> {
    rows.into_iter()
        .enumerate()
        .map(|(i, new)| ballast_core::Notification {
            id: i as u64 + 1,
            new,
            state: ballast_core::NotificationState::Delivered,
            attempts: 1,
            last_attempt_unix_ms: Some(0),
            last_error: None,
            delivered_unix_ms: Some(0),
            answer: Some("200".into()),
        })
        .collect()
}

#[test]
fn a_reload_inserting_a_route_first_tells_the_new_receiver_and_not_the_old_again() {
    let mut before = setup("[[notify]]\nreceivers = [\"boss\"]\ngroup_wait = \"0s\"");
    let a = view(1, crit(), 0);
    let heard = heard(&delivered(before.round(std::slice::from_ref(&a), 0)));
    // The new route goes first, so boss's route moves from 1 to 2.
    let mut after = setup(
        "[[notify]]\nmatch = { server = \"s1\" }\nreceivers = [\"chat\"]\ncontinue = true\ngroup_wait = \"0s\"\n\
         [[notify]]\nreceivers = [\"boss\"]\ngroup_wait = \"0s\"",
    );
    after.restore(std::slice::from_ref(&a.alert), &heard);
    let rows = after.round(std::slice::from_ref(&a), 5000);
    let to: Vec<&str> = rows.iter().map(|r| r.receiver.as_str()).collect();
    assert_eq!(to, ["chat/webhook", "chat/slack"], "boss heard it already");
    assert!(after.round(std::slice::from_ref(&a), 6000).is_empty());
    // Its resolution goes to both, once.
    let rows = after.round(&[view(1, AlertState::Resolved, 7000)], 70_000);
    let to: Vec<&str> = rows.iter().map(|r| r.receiver.as_str()).collect();
    assert_eq!(to, ["chat/webhook", "chat/slack", "boss/webhook"]);
}

#[test]
fn a_resolution_not_sent_yet_is_sent_once_by_the_next_dispatcher() {
    let spec = "[[notify]]\nmatch = { severity = \"critical\" }\nreceivers = [\"boss\"]\n\
                [[notify]]\nreceivers = [\"chat\"]\ngroup_wait = \"0s\"";
    let mut before = setup(spec);
    let a = view(1, crit(), 0);
    let mut rows = delivered(before.round(std::slice::from_ref(&a), 0));
    let heard_firing = heard(&rows);
    let resolved = view(1, AlertState::Resolved, 2000);
    // Resolved before its group interval was over; then a reload (or a restart).
    assert!(before
        .round(std::slice::from_ref(&resolved), 2000)
        .is_empty());
    let mut after = setup(spec);
    after.restore(std::slice::from_ref(&resolved.alert), &heard_firing);
    assert!(after
        .round(std::slice::from_ref(&resolved), 3000)
        .is_empty());
    let sent = after.round(std::slice::from_ref(&resolved), 61_000);
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].receiver, "boss/webhook", "the route it fired on");
    assert_eq!(decode(&sent[0]).status, crate::MessageStatus::Resolved);
    assert!(
        after
            .round(std::slice::from_ref(&resolved), 200_000)
            .is_empty(),
        "once"
    );
    // Once its resolution was queued, nothing is owed: a further dispatcher restores nothing.
    rows.extend(delivered(sent));
    assert!(heard(&rows).is_empty());
}

#[test]
fn routes_match_on_severity_and_resolutions_follow_the_route() {
    let mut d = setup(
        "[[notify]]\nmatch = { severity = \"critical\" }\nreceivers = [\"boss\"]\n[[notify]]\nreceivers = [\"chat\"]\ngroup_wait = \"0s\"",
    );
    let rows = d.round(&[view(1, crit(), 0)], 0);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].receiver, "boss/webhook");
    let warn = AlertState::Firing {
        severity: Severity::Warning,
    };
    let rows = d.round(&[view(1, crit(), 0), view(2, warn, 0)], 1000);
    let to: Vec<&str> = rows.iter().map(|r| r.receiver.as_str()).collect();
    assert_eq!(
        to,
        ["chat/webhook", "chat/slack"],
        "the warning goes to the default route"
    );
    // The critical one resolves: its resolution goes where it was announced.
    let rows = d.round(
        &[view(1, AlertState::Resolved, 2000), view(2, warn, 0)],
        70_000,
    );
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].receiver, "boss/webhook");
    assert_eq!(decode(&rows[0]).status, crate::MessageStatus::Resolved);
}
