//! Alerts received from Alertmanager and Grafana (`POST /api/v1/alertmanager`), turned into
//! Ballast alerts so an existing Prometheus setup feeds Ballast's notifications, remediation and
//! incidents.
//!
//! The body is Alertmanager's webhook v4 JSON; Grafana's webhook sends a superset of it (with
//! `orgId`, `values`, `valueString`, `dashboardURL`, `panelURL`, `silenceURL` and more), so one
//! parser takes both: fields Ballast does not use are ignored, and the ones it uses are checked.
//! Per alert: `status` (`firing` or `resolved`), `labels` (with a non-empty `alertname`) and
//! `startsAt` are required; `annotations`, `endsAt`, `generatorURL` and `fingerprint` are
//! optional. Timestamps are RFC 3339; Alertmanager writes `0001-01-01T00:00:00Z` for "no end",
//! which (like any time before 1970) reads as none.
//!
//! Severity comes from the `severity` label, in PagerDuty's words:
//!
//! | `severity` label (any case)      | Ballast severity |
//! |----------------------------------|------------------|
//! | `critical`, `error`, `page`      | critical         |
//! | `warning`, `info`, absent, other | warning          |
//!
//! An unknown word is a warning rather than an error: an alert must never be dropped for its
//! wording, and a warning is still shown and sent. The label itself is kept as received.
//!
//! The alert's id in Ballast is the fingerprint of its labels ([`Labels::fingerprint`]), as for
//! Ballast's own alerts, so the same alert has the same id whichever sender (Alertmanager,
//! Grafana, a second Alertmanager of a cluster) delivered it. Within one payload, alerts are
//! deduplicated by the sender's `fingerprint` (or the labels' when it is missing): the last
//! occurrence wins. Nothing here panics on input: a body that is too big, not JSON, missing a
//! field, of a wrong type or with more than [`MAX_ALERTS`] alerts is a [`ReceiveError`] that says
//! where.

use std::collections::BTreeMap;
use std::fmt;

use ballast_core::{AlertRecord, AlertSource, AlertState, Labels, Severity};
use jiff::Timestamp;
use serde::de::{IgnoredAny, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
use thiserror::Error;

/// The most alerts one payload may carry. Alertmanager truncates at its `max_alerts` (0, i.e.
/// unlimited, by default); a real group is far smaller than this.
pub const MAX_ALERTS: usize = 10_000;
/// The largest body accepted, in bytes.
pub const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

/// Why a payload was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ReceiveError {
    #[error("the payload is {size} bytes; at most {max} are accepted")]
    TooLarge { size: usize, max: usize },
    #[error("the payload is not an Alertmanager/Grafana webhook: at {path}: {message}")]
    Json { path: String, message: String },
    #[error("the payload has {count} alerts; at most {max} are accepted in one")]
    TooManyAlerts { count: usize, max: usize },
    #[error("alerts[{index}]: labels has no alertname (or an empty one)")]
    MissingAlertname { index: usize },
    #[error("alerts[{index}].status is {status:?}; it must be \"firing\" or \"resolved\"")]
    BadStatus { index: usize, status: String },
    #[error("alerts[{index}].{field} is {value:?}, not an RFC 3339 time ({reason})")]
    BadTime {
        index: usize,
        field: &'static str,
        value: String,
        reason: String,
    },
}

/// An alert's status as sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReceivedStatus {
    Firing,
    Resolved,
}

/// One received alert, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct ReceivedAlert {
    /// The sender's fingerprint, or [`Labels::fingerprint`] of the labels when it sent none.
    pub fingerprint: String,
    /// Always has a non-empty `alertname`.
    pub labels: Labels,
    pub annotations: BTreeMap<String, String>,
    pub status: ReceivedStatus,
    /// From the `severity` label (see the module doc).
    pub severity: Severity,
    /// When it started (`0` when the sender gave a time before 1970, such as the zero time).
    pub starts_at_ms: u64,
    /// When it ended or will end; `None` for Alertmanager's zero time.
    pub ends_at_ms: Option<u64>,
    /// The link back to the source (Prometheus's graph, Grafana's rule); may be empty.
    pub generator_url: String,
}

/// One payload, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Received {
    /// Alertmanager's `groupKey`, when sent.
    pub group_key: Option<String>,
    /// The receiver name in Alertmanager's config, when sent.
    pub receiver: Option<String>,
    /// How many alerts the sender left out (its `max_alerts`); worth a warning when not 0.
    pub truncated_alerts: u64,
    /// Deduplicated by fingerprint, in order of first appearance.
    pub alerts: Vec<ReceivedAlert>,
}

/// Ballast's severity for a `severity` label value (see the module doc's table).
pub fn map_severity(label: Option<&str>) -> Severity {
    match label.map(|s| s.trim().to_ascii_lowercase()).as_deref() {
        Some("critical" | "error" | "page") => Severity::Critical,
        _ => Severity::Warning,
    }
}

/// Parses and checks a webhook body.
pub fn parse(body: &[u8]) -> Result<Received, ReceiveError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(ReceiveError::TooLarge {
            size: body.len(),
            max: MAX_BODY_BYTES,
        });
    }
    let de = &mut serde_json::Deserializer::from_slice(body);
    let raw: RawPayload = serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        ReceiveError::Json {
            path,
            message: e.into_inner().to_string(),
        }
    })?;
    if raw.alerts.total > MAX_ALERTS {
        return Err(ReceiveError::TooManyAlerts {
            count: raw.alerts.total,
            max: MAX_ALERTS,
        });
    }
    let mut alerts: Vec<ReceivedAlert> = Vec::with_capacity(raw.alerts.alerts.len());
    let mut at: BTreeMap<String, usize> = BTreeMap::new();
    for (index, a) in raw.alerts.alerts.into_iter().enumerate() {
        let alert = check(index, a)?;
        match at.get(&alert.fingerprint).and_then(|&i| alerts.get_mut(i)) {
            Some(slot) => *slot = alert,
            None => {
                at.insert(alert.fingerprint.clone(), alerts.len());
                alerts.push(alert);
            }
        }
    }
    Ok(Received {
        group_key: raw.group_key,
        receiver: raw.receiver,
        truncated_alerts: raw.truncated_alerts.unwrap_or(0),
        alerts,
    })
}

impl ReceivedAlert {
    /// The alert as Ballast keeps and shows it, received at `now`: its id is the labels'
    /// fingerprint, its rule the `alertname`; firing at its severity or resolved; `since` its
    /// start (firing) or end (resolved), or `now` when the sender gave none. Grafana's
    /// dashboard, panel and silence links and the generator URL are added as annotations
    /// (`dashboard_url`, `panel_url`, `silence_url`, `generator_url`) unless already there.
    pub fn to_record(&self, now_unix_ms: u64) -> AlertRecord {
        let (state, since) = match self.status {
            ReceivedStatus::Firing => (
                AlertState::Firing {
                    severity: self.severity,
                },
                Some(self.starts_at_ms).filter(|&t| t > 0),
            ),
            ReceivedStatus::Resolved => (AlertState::Resolved, self.ends_at_ms),
        };
        let mut annotations = self.annotations.clone();
        if !self.generator_url.is_empty() {
            annotations
                .entry("generator_url".to_string())
                .or_insert_with(|| self.generator_url.clone());
        }
        AlertRecord {
            id: self.labels.fingerprint(),
            rule: self.labels.get("alertname").unwrap_or_default().to_string(),
            labels: self.labels.clone(),
            annotations,
            state,
            source: AlertSource::Alertmanager,
            value: None,
            threshold: None,
            since_unix_ms: since.unwrap_or(now_unix_ms),
            updated_unix_ms: now_unix_ms,
            ack: None,
        }
    }
}

fn check(index: usize, a: RawAlert) -> Result<ReceivedAlert, ReceiveError> {
    let status = match a.status.as_str() {
        "firing" => ReceivedStatus::Firing,
        "resolved" => ReceivedStatus::Resolved,
        _ => {
            return Err(ReceiveError::BadStatus {
                index,
                status: a.status,
            })
        }
    };
    if a.labels
        .get("alertname")
        .is_none_or(|n| n.trim().is_empty())
    {
        return Err(ReceiveError::MissingAlertname { index });
    }
    let labels: Labels = a.labels.into_iter().collect();
    let starts_at_ms = time(index, "startsAt", &a.starts_at)?.unwrap_or(0);
    let ends_at_ms = match &a.ends_at {
        Some(t) if !t.is_empty() => time(index, "endsAt", t)?,
        _ => None,
    };
    let fingerprint = a
        .fingerprint
        .filter(|f| !f.trim().is_empty())
        .unwrap_or_else(|| labels.fingerprint());
    let mut annotations = a.annotations.unwrap_or_default();
    for (key, link) in [
        ("dashboard_url", a.dashboard_url),
        ("panel_url", a.panel_url),
        ("silence_url", a.silence_url),
    ] {
        if let Some(link) = link.filter(|l| !l.is_empty()) {
            annotations.entry(key.to_string()).or_insert(link);
        }
    }
    Ok(ReceivedAlert {
        fingerprint,
        severity: map_severity(labels.get("severity")),
        labels,
        annotations,
        status,
        starts_at_ms,
        ends_at_ms,
        generator_url: a.generator_url.unwrap_or_default(),
    })
}

/// Milliseconds since 1970 of an RFC 3339 time; `None` for times before 1970 (the zero time).
fn time(index: usize, field: &'static str, text: &str) -> Result<Option<u64>, ReceiveError> {
    let ts: Timestamp = text
        .parse()
        .map_err(|e: jiff::Error| ReceiveError::BadTime {
            index,
            field,
            value: text.to_string(),
            reason: e.to_string(),
        })?;
    Ok(u64::try_from(ts.as_millisecond()).ok())
}

#[derive(Deserialize)]
struct RawPayload {
    #[serde(rename = "groupKey", default)]
    group_key: Option<String>,
    #[serde(default)]
    receiver: Option<String>,
    #[serde(rename = "truncatedAlerts", default)]
    truncated_alerts: Option<u64>,
    alerts: CappedAlerts,
}

#[derive(Deserialize)]
struct RawAlert {
    status: String,
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: Option<BTreeMap<String, String>>,
    #[serde(rename = "startsAt")]
    starts_at: String,
    #[serde(rename = "endsAt", default)]
    ends_at: Option<String>,
    #[serde(rename = "generatorURL", default)]
    generator_url: Option<String>,
    #[serde(default)]
    fingerprint: Option<String>,
    // Grafana's additions that Ballast keeps.
    #[serde(rename = "dashboardURL", default)]
    dashboard_url: Option<String>,
    #[serde(rename = "panelURL", default)]
    panel_url: Option<String>,
    #[serde(rename = "silenceURL", default)]
    silence_url: Option<String>,
}

/// The alerts, at most [`MAX_ALERTS`] of them kept; the rest are read past (the body size is
/// capped already) and only counted, so an absurd payload costs no memory per alert.
struct CappedAlerts {
    alerts: Vec<RawAlert>,
    total: usize,
}

impl<'de> Deserialize<'de> for CappedAlerts {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = CappedAlerts;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of alerts")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<CappedAlerts, A::Error> {
                let mut alerts = Vec::new();
                let mut total = 0usize;
                loop {
                    if total < MAX_ALERTS {
                        match seq.next_element::<RawAlert>()? {
                            Some(a) => alerts.push(a),
                            None => break,
                        }
                    } else if seq.next_element::<IgnoredAny>()?.is_none() {
                        break;
                    }
                    total = total.saturating_add(1);
                }
                Ok(CappedAlerts { alerts, total })
            }
        }
        d.deserialize_seq(V)
    }
}

#[cfg(test)]
#[path = "alertmanager_tests.rs"]
mod tests;
