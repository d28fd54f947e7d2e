//! The email's subject and plain-text body, made from one [`Message`] by the shared renderer
//! (`crate::render`), so email reads like the chat receivers, in the same locale, with the
//! same links. Email has no size limit worth the name, so every alert is written out in full:
//! a storm's one mail names every alert with its value and since when.

use crate::message::Message;
use crate::render;

/// The subject line: the shared title (`[FIRING:2] critical app-5xx shop`). Control
/// characters (a newline in a label value) become spaces, so a label can never add a header
/// line.
pub fn subject(message: &Message) -> String {
    one_line(&render::title(message))
}

/// The body: every alert (firing first, worst first), then the dashboard's address.
pub fn body(message: &Message) -> String {
    let rendered = render::render(message, message.alerts.len());
    let mut out = rendered.plain_text();
    out.push('\n');
    let counts = render::counts_line(message);
    if !counts.is_empty() {
        out.push_str(&format!("\n{counts}\n"));
    }
    if let Some(url) = &message.dashboard_url {
        out.push_str(&format!("{url}\n"));
    }
    out
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
    use crate::message::{Locale, MessageAlert, MessageStatus};
    use ballast_core::{AlertState, Labels};

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
            template: None,
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
        assert_eq!(subject(&m), "[FIRING:2] critical app-5xx shop");
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
            "[FIRING:1] critical app-5xx shop — escalated: not acknowledged after 3s"
        );
    }

    #[test]
    fn resolved_subject_and_body() {
        let m = message(
            MessageStatus::Resolved,
            vec![alert("app-5xx", AlertState::Resolved, Some(0.01))],
        );
        assert_eq!(subject(&m), "[RESOLVED] app-5xx shop");
        let b = body(&m);
        for want in [
            "resolved app-5xx (route=/cart service=shop)",
            "value 0.01 (threshold 0.05), since 2000-02-29 12:34:56 UTC",
            "5xx on /cart",
            "silence: http://ballast.local/alerts?silence=id-app-5xx",
            "1 resolved",
        ] {
            assert!(b.contains(want), "{want:?} missing:\n{b}");
        }
    }

    #[test]
    fn a_storm_is_written_out_in_full_and_in_the_locale() {
        let critical = AlertState::Firing {
            severity: Severity::Critical,
        };
        let mut alerts = Vec::new();
        for i in 0..300 {
            let mut a = alert("app-5xx", critical, Some(0.07));
            a.id = format!("id-{i}");
            a.labels.insert("route", format!("/r{i}"));
            alerts.push(a);
        }
        let mut m = message(MessageStatus::Firing, alerts);
        let b = body(&m);
        for i in 0..300 {
            assert!(b.contains(&format!("route=/r{i} ")), "/r{i} missing");
        }
        m.locale = Locale::Ko;
        assert!(subject(&m).starts_with("[발생:300] 심각 app-5xx"));
        assert!(body(&m).contains("임계값 0.05"));
    }

    #[test]
    fn newlines_in_labels_cannot_add_header_lines() {
        let mut m = message(MessageStatus::Resolved, vec![]);
        m.group_labels
            .insert("service", "shop\r\nBcc: evil@example.com");
        let s = subject(&m);
        assert!(!s.contains('\n') && !s.contains('\r'), "{s}");
    }
}
