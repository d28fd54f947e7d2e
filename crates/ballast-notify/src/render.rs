//! The built-in texts of a [`Message`], in English and Korean, that every chat-like receiver
//! (Slack, Dooray, and the webhook's `title`/`text`) shows.
//!
//! One renderer keeps the receivers consistent: a title naming the status, the count, the
//! severity and the group; then per alert its severity, rule, where (labels), the value against
//! its threshold, since when (UTC), the summary and runbook, and dashboard links. A storm must
//! still fit a receiver's limits, so only the first [`Rendered::listed`] alerts are written out
//! and the rest are summed up per rule, each alert named by the labels that tell it apart
//! ("and 480 more: rule-a ×300 (server=a, server=b, …); rule-b ×180 (…)"), so a storm's one
//! message still names every alert.

use std::collections::BTreeMap;

use ballast_core::{AlertState, Severity};

use crate::message::{Locale, Message, MessageAlert, MessageStatus};
use crate::template;

/// How many alerts are written out in full by default.
pub const DEFAULT_LISTED: usize = 20;

/// Labels not shown under "where": they are the rule's name and the monitor, shown already.
const HIDDEN_LABELS: [&str; 2] = ["alertname", "monitor"];

/// One alert's text: a heading (severity and rule) and a body (where, value, since, notes).
#[derive(Debug, Clone, PartialEq)]
pub struct AlertText {
    /// The alert's id, for links.
    pub id: String,
    pub heading: String,
    pub body: String,
    /// The dashboard's page of the alert, when the dashboard's address is known.
    pub alert_url: Option<String>,
    /// Whether the alert still fires (else it resolved).
    pub firing: bool,
    pub severity: Option<Severity>,
}

/// A message as text.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    pub title: String,
    /// The first alerts, written out in full (firing first, worst first).
    pub alerts: Vec<AlertText>,
    /// How many alerts were written out.
    pub listed: usize,
    /// How many alerts were not written out.
    pub rest: usize,
    /// The rest summed up per rule, when there is a rest.
    pub more: Option<String>,
}

impl Rendered {
    /// Everything as one plain text: title, each alert, the rest.
    pub fn plain_text(&self) -> String {
        let mut out = self.title.clone();
        for a in &self.alerts {
            out.push_str("\n\n");
            out.push_str(&a.heading);
            out.push('\n');
            out.push_str(&a.body);
        }
        if let Some(more) = &self.more {
            out.push_str("\n\n");
            out.push_str(more);
        }
        out
    }
}

/// Renders `message`, writing out at most `max_listed` alerts in full.
pub fn render(message: &Message, max_listed: usize) -> Rendered {
    let ordered = ordered_alerts(message);
    let listed = ordered.len().min(max_listed);
    let alerts = ordered[..listed]
        .iter()
        .map(|a| alert_text(message, a))
        .collect();
    let more = more_line(message, &ordered[listed..]);
    Rendered {
        title: title(message),
        alerts,
        listed,
        rest: ordered.len() - listed,
        more,
    }
}

/// Firing alerts first, worst severity first, then by rule and id: the most urgent are the
/// ones written out when a storm is cut short. Then by rule, labels and id, so the order is
/// stable.
fn ordered_alerts(message: &Message) -> Vec<&MessageAlert> {
    let mut v: Vec<&MessageAlert> = message.alerts.iter().collect();
    v.sort_by(|a, b| {
        let rank = |x: &MessageAlert| match x.state {
            AlertState::Firing {
                severity: Severity::Critical,
            } => 0,
            AlertState::Firing {
                severity: Severity::Warning,
            } => 1,
            _ => 2,
        };
        rank(a)
            .cmp(&rank(b))
            .then_with(|| a.rule.cmp(&b.rule))
            .then_with(|| a.labels.cmp(&b.labels))
            .then_with(|| a.id.cmp(&b.id))
    });
    v
}

/// The severity's word in the locale.
pub fn severity_word(locale: Locale, severity: Severity) -> &'static str {
    match (locale, severity) {
        (Locale::En, s) => s.name(),
        (Locale::Ko, Severity::Critical) => "심각",
        (Locale::Ko, Severity::Warning) => "경고",
    }
}

/// The title: `[FIRING:3] critical upstream-down app` / `[RESOLVED] upstream-down app`
/// (Korean `[발생:3] 심각 …` / `[해결] …`).
pub fn title(message: &Message) -> String {
    match message.template.as_ref().and_then(|t| t.title.as_deref()) {
        Some(t) => template::expand(t, |name| title_value(message, name)),
        None => builtin_title(message),
    }
}

/// A title placeholder's value (see `crate::template`).
fn title_value(message: &Message, name: &str) -> Option<String> {
    if let Some(label) = name.strip_prefix("label.") {
        return message.group_labels.get(label).map(str::to_string);
    }
    let locale = message.locale;
    match name {
        "status" => Some(
            match (message.status, locale) {
                (MessageStatus::Firing, Locale::En) => "FIRING",
                (MessageStatus::Firing, Locale::Ko) => "발생",
                (MessageStatus::Resolved, Locale::En) => "RESOLVED",
                (MessageStatus::Resolved, Locale::Ko) => "해결",
            }
            .to_string(),
        ),
        "count" => Some(message.firing().count().to_string()),
        "severity" => message
            .severity
            .map(|s| severity_word(locale, s).to_string()),
        "group" => Some(group_name(message)),
        "escalation" => escalation_note(message).map(|n| n.trim_start_matches(" — ").to_string()),
        _ => None,
    }
}

fn builtin_title(message: &Message) -> String {
    let group = group_name(message);
    let firing = message.firing().count();
    match (message.status, message.locale) {
        (MessageStatus::Firing, locale) => {
            let tag = match locale {
                Locale::En => "FIRING",
                Locale::Ko => "발생",
            };
            let mut t = format!("[{tag}:{firing}]");
            if let Some(s) = message.severity {
                t.push(' ');
                t.push_str(severity_word(locale, s));
            }
            if !group.is_empty() {
                t.push(' ');
                t.push_str(&group);
            }
            if let Some(note) = escalation_note(message) {
                t.push_str(&note);
            }
            t
        }
        (MessageStatus::Resolved, locale) => {
            let tag = match locale {
                Locale::En => "[RESOLVED]",
                Locale::Ko => "[해결]",
            };
            if group.is_empty() {
                tag.to_string()
            } else {
                format!("{tag} {group}")
            }
        }
    }
}

/// " — escalated: not acknowledged after 10m" (Korean " — 에스컬레이션: 10m 동안 미확인") for
/// an escalation, so its receivers can tell it from the route's own messages; `None` else.
pub fn escalation_note(message: &Message) -> Option<String> {
    let after = ballast_core::Duration::from_millis(message.escalated_after_ms?);
    Some(match message.locale {
        Locale::En => format!(" — escalated: not acknowledged after {after}"),
        Locale::Ko => format!(" — 에스컬레이션: {after} 동안 미확인"),
    })
}

/// The group's name: the values of its grouping labels, `alertname` first; without grouping
/// labels, the distinct rules (at most three, then "…").
fn group_name(message: &Message) -> String {
    let mut parts: Vec<&str> = Vec::new();
    if let Some(name) = message.group_labels.get("alertname") {
        parts.push(name);
    }
    parts.extend(
        message
            .group_labels
            .iter()
            .filter(|(k, _)| *k != "alertname")
            .map(|(_, v)| v),
    );
    if parts.is_empty() {
        let mut rules: Vec<&str> = message.alerts.iter().map(|a| a.rule.as_str()).collect();
        rules.sort_unstable();
        rules.dedup();
        let n = rules.len();
        let mut s = rules.into_iter().take(3).collect::<Vec<_>>().join(", ");
        if n > 3 {
            s.push_str(", …");
        }
        return s;
    }
    parts.join(" ")
}

/// Where an alert is: its labels except `alertname` and `monitor`, `name=value` separated by
/// spaces.
pub fn where_text(alert: &MessageAlert) -> String {
    alert
        .labels
        .iter()
        .filter(|(k, _)| !HIDDEN_LABELS.contains(k))
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The dashboard's page of an alert.
pub fn alert_url(dashboard_url: &str, id: &str) -> String {
    format!("{}/alerts#{id}", dashboard_url.trim_end_matches('/'))
}

/// The dashboard's form silencing an alert.
pub fn silence_url(dashboard_url: &str, id: &str) -> String {
    format!(
        "{}/alerts?silence={id}",
        dashboard_url.trim_end_matches('/')
    )
}

/// One alert's heading and body.
pub fn alert_text(message: &Message, alert: &MessageAlert) -> AlertText {
    let locale = message.locale;
    let firing = matches!(alert.state, AlertState::Firing { .. });
    let state = match (alert.state, locale) {
        (AlertState::Firing { severity }, l) => severity_word(l, severity).to_string(),
        (AlertState::Resolved, Locale::En) => "resolved".into(),
        (AlertState::Resolved, Locale::Ko) => "해결".into(),
        (other, _) => other.name().to_string(),
    };
    let place = where_text(alert);
    let heading = match message.template.as_ref().and_then(|t| t.alert.as_deref()) {
        Some(t) => template::expand(t, |name| alert_value(message, alert, &state, name)),
        None if place.is_empty() => format!("{state} {}", alert.rule),
        None => format!("{state} {} ({place})", alert.rule),
    };
    let mut lines = Vec::new();
    let since = utc_time(alert.since_unix_ms);
    let value = match (alert.value, alert.threshold, locale) {
        (Some(v), Some(t), Locale::En) => {
            format!("value {} (threshold {})", number(v), number(t))
        }
        (Some(v), Some(t), Locale::Ko) => format!("값 {} (임계값 {})", number(v), number(t)),
        (Some(v), None, Locale::En) => format!("value {}", number(v)),
        (Some(v), None, Locale::Ko) => format!("값 {}", number(v)),
        (None, Some(t), Locale::En) => format!("threshold {}", number(t)),
        (None, Some(t), Locale::Ko) => format!("임계값 {}", number(t)),
        (None, None, _) => String::new(),
    };
    let since = match locale {
        Locale::En => format!("since {since}"),
        Locale::Ko => format!("{since}부터"),
    };
    lines.push(if value.is_empty() {
        since
    } else {
        format!("{value}, {since}")
    });
    if let Some(summary) = alert.annotations.get("summary") {
        lines.push(summary.clone());
    }
    if let Some(desc) = alert.annotations.get("description") {
        lines.push(desc.clone());
    }
    if let Some(runbook) = alert.annotations.get("runbook") {
        lines.push(match locale {
            Locale::En => format!("runbook: {runbook}"),
            Locale::Ko => format!("런북: {runbook}"),
        });
    }
    let alert_link = message
        .dashboard_url
        .as_deref()
        .map(|d| alert_url(d, &alert.id));
    if let Some(d) = message.dashboard_url.as_deref() {
        let (a, s) = match locale {
            Locale::En => ("alert", "silence"),
            Locale::Ko => ("알림", "사일런스"),
        };
        lines.push(format!(
            "{a}: {} · {s}: {}",
            alert_url(d, &alert.id),
            silence_url(d, &alert.id)
        ));
    }
    AlertText {
        id: alert.id.clone(),
        heading,
        body: lines.join("\n"),
        alert_url: alert_link,
        firing,
        severity: alert.severity(),
    }
}

/// An alert placeholder's value (see `crate::template`); `state` is its word already made.
fn alert_value(message: &Message, alert: &MessageAlert, state: &str, name: &str) -> Option<String> {
    if let Some(label) = name.strip_prefix("label.") {
        return alert.labels.get(label).map(str::to_string);
    }
    if let Some(key) = name.strip_prefix("annotation.") {
        return alert.annotations.get(key).cloned();
    }
    match name {
        "state" => Some(state.to_string()),
        "severity" => alert
            .severity()
            .map(|s| severity_word(message.locale, s).to_string()),
        "rule" => Some(alert.rule.clone()),
        "where" => Some(where_text(alert)),
        "value" => alert.value.map(number),
        "threshold" => alert.threshold.map(number),
        "since" => Some(utc_time(alert.since_unix_ms)),
        "summary" | "runbook" => alert.annotations.get(name).cloned(),
        _ => None,
    }
}

/// "and 480 more: rule-a ×300 (server=a, …); rule-b ×180 (…)" (Korean "외 480건: …"): every
/// alert not written out, by rule, the most frequent rule first.
fn more_line(message: &Message, rest: &[&MessageAlert]) -> Option<String> {
    if rest.is_empty() {
        return None;
    }
    let rules = by_rule(message, rest)
        .iter()
        .map(|(r, wheres)| format!("{r} ×{} ({})", wheres.len(), wheres.join(", ")))
        .collect::<Vec<_>>()
        .join("; ");
    Some(format!(
        "{}: {rules}",
        more_heading(message.locale, rest.len())
    ))
}

/// The alerts after the first `listed` (in the order [`render`] writes them out), per rule,
/// the most frequent rule first, each named as the storm's summary names it: for a receiver
/// that must cut the summary shorter than [`Rendered::more`] (Telegram).
pub fn rest_by_rule(message: &Message, listed: usize) -> Vec<(String, Vec<String>)> {
    let ordered = ordered_alerts(message);
    let rest = &ordered[listed.min(ordered.len())..];
    by_rule(message, rest)
        .into_iter()
        .map(|(r, w)| (r.to_string(), w))
        .collect()
}

fn by_rule<'a>(message: &Message, rest: &[&'a MessageAlert]) -> Vec<(&'a str, Vec<String>)> {
    let mut by_rule: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for a in rest {
        by_rule
            .entry(a.rule.as_str())
            .or_default()
            .push(short_where(message, a));
    }
    let mut rules: Vec<(&str, Vec<String>)> = by_rule.into_iter().collect();
    rules.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then_with(|| a.0.cmp(b.0)));
    rules
}

/// Where an alert is, in a storm's summary: its labels that are neither hidden nor shared by
/// the whole group (`server=10.0.0.7:8080`), else the start of its id.
fn short_where(message: &Message, alert: &MessageAlert) -> String {
    let text = alert
        .labels
        .iter()
        .filter(|(k, _)| !HIDDEN_LABELS.contains(k) && message.group_labels.get(k).is_none())
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ");
    if text.is_empty() {
        alert.id.chars().take(12).collect()
    } else {
        text
    }
}

/// Cuts `text` (a storm's summary) into pieces of at most `max` characters, at `", "` where possible.
pub fn chunks(text: &str, max: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut len = 0;
    for (i, piece) in text.split(", ").enumerate() {
        let piece = if i == 0 {
            piece.to_string()
        } else {
            format!(", {piece}")
        };
        let n = piece.chars().count();
        if len + n > max && !current.is_empty() {
            out.push(std::mem::take(&mut current));
            len = 0;
        }
        current.push_str(&truncate_chars(&piece, max));
        len += n.min(max);
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// "3 firing · 1 resolved" (Korean "발생 3 · 해결 1"): the counts of the whole message.
pub fn counts_line(message: &Message) -> String {
    let firing = message.firing().count();
    let resolved = message.resolved().count();
    let mut parts = Vec::new();
    match message.locale {
        Locale::En => {
            if firing > 0 {
                parts.push(format!("{firing} firing"));
            }
            if resolved > 0 {
                parts.push(format!("{resolved} resolved"));
            }
        }
        Locale::Ko => {
            if firing > 0 {
                parts.push(format!("발생 {firing}"));
            }
            if resolved > 0 {
                parts.push(format!("해결 {resolved}"));
            }
        }
    }
    parts.join(" · ")
}

/// "and 480 more" (Korean "외 480건").
pub fn more_heading(locale: Locale, count: usize) -> String {
    match locale {
        Locale::En => format!("and {count} more"),
        Locale::Ko => format!("외 {count}건"),
    }
}

/// A number as people read it: integers without a fraction, others with at most 4 decimals.
pub fn number(v: f64) -> String {
    if !v.is_finite() {
        return v.to_string();
    }
    if v.fract() == 0.0 && v.abs() < 1e15 {
        return format!("{}", v as i64);
    }
    let s = format!("{v:.4}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_string()
}

/// `2026-11-30 19:20:05 UTC` from milliseconds since the Unix epoch.
pub fn utc_time(unix_ms: u64) -> String {
    let (date, secs) = civil(unix_ms);
    format!(
        "{date} {:02}:{:02}:{:02} UTC",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// RFC 3339 in UTC (`2026-11-30T19:20:05Z`), for machine-read payloads.
pub fn rfc3339(unix_ms: u64) -> String {
    let (date, secs) = civil(unix_ms);
    format!(
        "{date}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// The date (`YYYY-MM-DD`) and the second of that day.
fn civil(unix_ms: u64) -> (String, u64) {
    let secs = unix_ms / 1000;
    let t = ballast_core::UtcTime::from_unix_secs(secs);
    (
        format!("{:04}-{:02}-{:02}", t.year, t.month, t.day),
        secs % 86_400,
    )
}

/// At most `max` characters of `s` (not bytes: never cuts a Korean syllable), ending in "…"
/// when cut.
pub fn truncate_chars(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use ballast_core::Labels;

    fn alert(rule: &str, i: usize, state: AlertState) -> MessageAlert {
        let labels = Labels::new()
            .with("alertname", rule)
            .with("monitor", "shop-gateway")
            .with("upstream", "app")
            .with("server", format!("10.0.0.{i}:8080"));
        MessageAlert {
            id: labels.fingerprint(),
            rule: rule.into(),
            labels,
            annotations: [
                ("summary".to_string(), "app is down".to_string()),
                ("runbook".to_string(), "https://wiki/rb".to_string()),
            ]
            .into_iter()
            .collect(),
            state,
            value: Some(0.0),
            threshold: Some(1.0),
            since_unix_ms: 1_796_066_405_000,
        }
    }

    fn message(alerts: Vec<MessageAlert>, locale: Locale) -> Message {
        Message {
            group_key: "g".into(),
            group_labels: Labels::new()
                .with("alertname", "upstream-down")
                .with("upstream", "app"),
            status: MessageStatus::Firing,
            severity: Some(Severity::Critical),
            alerts,
            dashboard_url: Some("https://ballast.example/".into()),
            locale,
            at_unix_ms: 1_796_066_405_000,
            route: 1,
            escalated_after_ms: None,
            template: None,
        }
    }

    const CRIT: AlertState = AlertState::Firing {
        severity: Severity::Critical,
    };

    #[test]
    fn english_title_and_line() {
        let m = message(
            (1..=3).map(|i| alert("upstream-down", i, CRIT)).collect(),
            Locale::En,
        );
        let r = render(&m, DEFAULT_LISTED);
        assert_eq!(r.title, "[FIRING:3] critical upstream-down app");
        assert_eq!(r.listed, 3);
        assert_eq!(r.more, None);
        let a = &r.alerts[0];
        assert_eq!(
            a.heading,
            "critical upstream-down (server=10.0.0.1:8080 upstream=app)"
        );
        let id = &m.alerts[0].id;
        assert_eq!(
            a.body,
            format!(
                "value 0 (threshold 1), since 2026-11-30 19:20:05 UTC\napp is down\n\
                 runbook: https://wiki/rb\nalert: https://ballast.example/alerts#{id} · \
                 silence: https://ballast.example/alerts?silence={id}"
            )
        );
    }

    #[test]
    fn korean() {
        let mut m = message(vec![alert("upstream-down", 1, CRIT)], Locale::Ko);
        let r = render(&m, DEFAULT_LISTED);
        assert_eq!(r.title, "[발생:1] 심각 upstream-down app");
        assert!(r.alerts[0]
            .body
            .starts_with("값 0 (임계값 1), 2026-11-30 19:20:05 UTC부터"));
        assert!(r.alerts[0].body.contains("런북: https://wiki/rb"));
        assert!(r.alerts[0].body.contains("사일런스: "));
        m.status = MessageStatus::Resolved;
        m.severity = None;
        m.alerts[0].state = AlertState::Resolved;
        let r = render(&m, DEFAULT_LISTED);
        assert_eq!(r.title, "[해결] upstream-down app");
        assert!(r.alerts[0].heading.starts_with("해결 upstream-down"));
    }

    #[test]
    fn a_storm_is_summed_up_by_rule() {
        let mut alerts: Vec<_> = (0..300).map(|i| alert("rule-a", i, CRIT)).collect();
        alerts.extend((0..200).map(|i| alert("rule-b", i, CRIT)));
        let m = message(alerts, Locale::En);
        let r = render(&m, 20);
        assert_eq!(r.listed, 20);
        assert_eq!(r.alerts.len(), 20);
        // The first 20 by rule then labels are all rule-a; the rest are each named by what
        // tells them apart from the group (here: the server).
        let more = r.more.as_deref().unwrap();
        assert!(
            more.starts_with("and 480 more: rule-a ×280 (server="),
            "{more}"
        );
        assert!(more.contains("; rule-b ×200 (server="), "{more}");
        let listed: Vec<&str> = r.alerts.iter().map(|a| a.id.as_str()).collect();
        for a in m.alerts.iter().filter(|a| !listed.contains(&a.id.as_str())) {
            let name = format!("server={},", a.labels.get("server").unwrap());
            let last = format!("server={})", a.labels.get("server").unwrap());
            assert!(
                more.contains(&name) || more.contains(&last),
                "{name} is not named"
            );
        }
        let mut ko = m.clone();
        ko.locale = Locale::Ko;
        assert!(render(&ko, 20)
            .more
            .unwrap()
            .starts_with("외 480건: rule-a ×280 (server="));
    }

    #[test]
    fn an_escalation_says_so_in_its_title() {
        let mut m = message(vec![alert("upstream-down", 1, CRIT)], Locale::En);
        m.escalated_after_ms = Some(600_000);
        assert_eq!(
            title(&m),
            "[FIRING:1] critical upstream-down app — escalated: not acknowledged after 10m"
        );
        m.locale = Locale::Ko;
        assert_eq!(
            title(&m),
            "[발생:1] 심각 upstream-down app — 에스컬레이션: 10m 동안 미확인"
        );
    }

    #[test]
    fn templates_replace_the_title_and_headings_only() {
        let mut m = message(vec![alert("upstream-down", 7, CRIT)], Locale::Ko);
        m.template = Some(crate::template::Template {
            title: Some("{{status}}: {{label.upstream}} {{label.nope}} ({{count}})".into()),
            alert: Some("{{severity}} {{label.server}} {{value}}/{{threshold}}".into()),
        });
        let r = render(&m, DEFAULT_LISTED);
        assert_eq!(r.title, "발생: app (1)");
        assert_eq!(r.alerts[0].heading, "심각 10.0.0.7:8080 0/1");
        assert!(
            r.alerts[0].body.contains("런북: https://wiki/rb"),
            "the body stays"
        );
    }

    #[test]
    fn numbers_and_times() {
        assert_eq!(number(0.0), "0");
        assert_eq!(number(0.05), "0.05");
        assert_eq!(number(1.0 / 3.0), "0.3333");
        assert_eq!(number(-2.5), "-2.5");
        assert_eq!(number(f64::NAN), "NaN");
        assert_eq!(utc_time(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_796_066_405_123), "2026-11-30T19:20:05Z");
        assert_eq!(truncate_chars("가나다라", 3), "가나…");
        assert_eq!(truncate_chars("abc", 3), "abc");
    }
}
