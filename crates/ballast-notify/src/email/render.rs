//! The email's subject and plain-text body, made from one [`Message`].
//!
//! It exists so the email receiver can send something readable before the shared renderer
//! lands; the lead switches email to that renderer later. It is deliberately small: a subject a
//! person can triage from an inbox list, and one block per alert with what, where, the value
//! against its threshold, since when, and the annotations (summary, runbook...).

use std::fmt::Write as _;

use ballast_core::{AlertState, Labels, UtcTime};

use crate::message::{Message, MessageAlert, MessageStatus};

/// The subject line: `[FIRING:2] critical app-5xx service=shop` or `[RESOLVED] app-5xx ...`.
/// Control characters (a newline in a label value) become spaces, so a label can never add a
/// header line.
pub fn subject(message: &Message) -> String {
    let mut out = match message.status {
        MessageStatus::Firing => {
            let firing = message.firing().count();
            let mut s = format!("[FIRING:{firing}]");
            if let Some(severity) = message.severity {
                s.push(' ');
                s.push_str(severity.name());
            }
            s
        }
        MessageStatus::Resolved => "[RESOLVED]".to_string(),
    };
    let rule = rule_name(message);
    if !rule.is_empty() {
        out.push(' ');
        out.push_str(&rule);
    }
    let labels = label_text(&message.group_labels, &["alertname"]);
    if !labels.is_empty() {
        out.push(' ');
        out.push_str(&labels);
    }
    if let Some(note) = crate::render::escalation_note(message) {
        out.push_str(&note);
    }
    one_line(&out)
}

/// The body: a header line, one block per alert (firing first), then the dashboard link.
pub fn body(message: &Message) -> String {
    let mut out = String::new();
    let firing: Vec<&MessageAlert> = message.firing().collect();
    let resolved: Vec<&MessageAlert> = message.resolved().collect();
    let _ = writeln!(
        out,
        "{} firing, {} resolved ({})",
        firing.len(),
        resolved.len(),
        timestamp(message.at_unix_ms)
    );
    let group = label_text(&message.group_labels, &[]);
    if !group.is_empty() {
        let _ = writeln!(out, "group: {group}");
    }
    for alert in firing.iter().chain(resolved.iter()) {
        out.push('\n');
        alert_block(&mut out, alert);
    }
    if let Some(url) = &message.dashboard_url {
        let _ = writeln!(out, "\ndashboard: {url}");
    }
    out
}

fn alert_block(out: &mut String, alert: &MessageAlert) {
    let state = match alert.state {
        AlertState::Firing { severity } => format!("FIRING {}", severity.name()),
        other => other.name().to_uppercase(),
    };
    let _ = writeln!(out, "== {state}: {}", one_line(&alert.rule));
    let labels = label_text(&alert.labels, &[]);
    if !labels.is_empty() {
        let _ = writeln!(out, "labels: {labels}");
    }
    match (alert.value, alert.threshold) {
        (Some(v), Some(t)) => {
            let _ = writeln!(out, "value: {} (threshold {})", number(v), number(t));
        }
        (Some(v), None) => {
            let _ = writeln!(out, "value: {}", number(v));
        }
        (None, Some(t)) => {
            let _ = writeln!(out, "value: no data (threshold {})", number(t));
        }
        (None, None) => {}
    }
    let _ = writeln!(out, "since: {}", timestamp(alert.since_unix_ms));
    for (name, value) in &alert.annotations {
        let _ = writeln!(out, "{}: {}", one_line(name), one_line(value));
    }
    let _ = writeln!(out, "id: {}", one_line(&alert.id));
}

/// The rule the group is about: its `alertname` label, else the first alert's rule, with
/// `+N` when the group mixes rules.
fn rule_name(message: &Message) -> String {
    if let Some(name) = message.group_labels.get("alertname") {
        return name.to_string();
    }
    let mut rules: Vec<&str> = message.alerts.iter().map(|a| a.rule.as_str()).collect();
    rules.sort_unstable();
    rules.dedup();
    match rules.as_slice() {
        [] => String::new(),
        [one] => one.to_string(),
        [first, rest @ ..] => format!("{first} +{}", rest.len()),
    }
}

fn label_text(labels: &Labels, skip: &[&str]) -> String {
    labels
        .iter()
        .filter(|(k, _)| !skip.contains(k))
        .map(|(k, v)| format!("{}={}", one_line(k), one_line(v)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A value as people read it: no `.0` on whole numbers, at most 4 decimals otherwise.
fn number(v: f64) -> String {
    if v.is_finite() && v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else if v.is_finite() {
        let s = format!("{v:.4}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        v.to_string()
    }
}

fn timestamp(unix_ms: u64) -> String {
    let t = UtcTime::from_unix_secs(unix_ms / 1000);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
        t.year, t.month, t.day, t.hour, t.minute, t.second
    )
}

fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use ballast_core::Severity;

    use super::*;
    use crate::message::Locale;

    fn alert(rule: &str, state: AlertState, value: Option<f64>) -> MessageAlert {
        MessageAlert {
            id: format!("id-{rule}"),
            rule: rule.to_string(),
            labels: Labels::new()
                .with("alertname", rule)
                .with("service", "shop")
                .with("route", "/cart"),
            annotations: BTreeMap::from([("summary".to_string(), "5xx on /cart".to_string())]),
            state,
            value,
            threshold: Some(0.05),
            since_unix_ms: 951_827_696_000,
        }
    }

    fn message(status: MessageStatus, alerts: Vec<MessageAlert>) -> Message {
        Message {
            group_key: "g".into(),
            group_labels: Labels::new()
                .with("alertname", "app-5xx")
                .with("service", "shop"),
            status,
            severity: (status == MessageStatus::Firing).then_some(Severity::Critical),
            alerts,
            dashboard_url: Some("http://ballast.local/".into()),
            locale: Locale::En,
            at_unix_ms: 951_827_700_000,
            route: 1,
            escalated_after_ms: None,
        }
    }

    #[test]
    fn firing_subject_counts_firing_alerts() {
        let critical = AlertState::Firing {
            severity: Severity::Critical,
        };
        let m = message(
            MessageStatus::Firing,
            vec![
                alert("app-5xx", critical, Some(0.07)),
                alert("app-5xx", critical, Some(0.09)),
                alert("app-5xx", AlertState::Resolved, Some(0.01)),
            ],
        );
        assert_eq!(subject(&m), "[FIRING:2] critical app-5xx service=shop");
    }

    #[test]
    fn an_escalation_says_so_in_the_subject() {
        let critical = AlertState::Firing {
            severity: Severity::Critical,
        };
        let mut m = message(
            MessageStatus::Firing,
            vec![alert("app-5xx", critical, None)],
        );
        m.escalated_after_ms = Some(3_000);
        assert_eq!(
            subject(&m),
            "[FIRING:1] critical app-5xx service=shop — escalated: not acknowledged after 3s"
        );
    }

    #[test]
    fn resolved_subject_and_body() {
        let m = message(
            MessageStatus::Resolved,
            vec![alert("app-5xx", AlertState::Resolved, Some(0.01))],
        );
        assert_eq!(subject(&m), "[RESOLVED] app-5xx service=shop");
        let b = body(&m);
        assert!(b.contains("== RESOLVED: app-5xx"), "{b}");
        assert!(b.contains("value: 0.01 (threshold 0.05)"), "{b}");
        assert!(b.contains("since: 2000-02-29 12:34:56 UTC"), "{b}");
        assert!(b.contains("summary: 5xx on /cart"), "{b}");
        assert!(b.contains("labels: alertname=app-5xx route=/cart service=shop"));
        assert!(b.contains("dashboard: http://ballast.local/"));
    }

    #[test]
    fn newlines_in_labels_cannot_add_header_lines() {
        let mut m = message(MessageStatus::Resolved, vec![]);
        m.group_labels
            .insert("service", "shop\r\nBcc: evil@example.com");
        let s = subject(&m);
        assert!(!s.contains('\n') && !s.contains('\r'), "{s}");
    }

    #[test]
    fn numbers_read_well() {
        assert_eq!(number(3.0), "3");
        assert_eq!(number(0.07), "0.07");
        assert_eq!(number(1.0 / 3.0), "0.3333");
        assert_eq!(number(f64::NAN), "NaN");
    }
}
