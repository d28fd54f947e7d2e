//! The records the alerting side keeps and shows: an alert as the API lists it and the store
//! persists it, its acknowledgement, a silence and its label matchers, and the per-minute
//! rollup of one series' values.
//!
//! They are plain values shared by the monitor (which produces them), the store (which keeps
//! them across restarts) and the admin API (which shows and takes them), so none of those
//! depends on another. Matching a [`Matcher`] needs a regex engine and lives in
//! `ballast-monitor`; here it is only data.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::alert::{AlertState, Labels};

/// Where an alert came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertSource {
    /// One of Ballast's own rules.
    Rule,
    /// Received on `POST /api/v1/alertmanager` (Alertmanager or Grafana).
    Alertmanager,
}

/// A person's acknowledgement of an alert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ack {
    pub by: String,
    pub comment: String,
    pub at_unix_ms: u64,
}

/// One alert: a rule on one series (or one received alert), with its current state.
///
/// `labels` are the full set: `alertname` (the rule's name), the rule's own labels and the
/// series' labels. `id` is `labels.fingerprint()`, so the same alert has the same id after a
/// restart and on every instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertRecord {
    pub id: String,
    pub rule: String,
    pub labels: Labels,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    #[serde(flatten)]
    pub state: AlertState,
    pub source: AlertSource,
    /// The last value evaluated (`None`: no data).
    pub value: Option<f64>,
    /// The threshold of the level it is at (or last crossed).
    pub threshold: Option<f64>,
    /// When it entered its current state.
    pub since_unix_ms: u64,
    /// When it was last evaluated or received.
    pub updated_unix_ms: u64,
    pub ack: Option<Ack>,
}

/// How a matcher compares a label's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MatchOp {
    #[serde(rename = "=")]
    Equal,
    #[serde(rename = "!=")]
    NotEqual,
    /// The whole value matches the regex.
    #[serde(rename = "=~")]
    Regex,
    #[serde(rename = "!~")]
    NotRegex,
}

/// One label matcher, as in Alertmanager: `name op value`. A label that is absent has the
/// value `""`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Matcher {
    pub name: String,
    pub op: MatchOp,
    pub value: String,
}

/// `name="value"` with `"`, `\` and new lines escaped: the text form silences are written in
/// (`ballast silence add`, the dashboard's silence form) and read back from.
impl std::fmt::Display for Matcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let op = match self.op {
            MatchOp::Equal => "=",
            MatchOp::NotEqual => "!=",
            MatchOp::Regex => "=~",
            MatchOp::NotRegex => "!~",
        };
        write!(f, "{}{op}\"", self.name)?;
        for c in self.value.chars() {
            match c {
                '"' => f.write_str("\\\"")?,
                '\\' => f.write_str("\\\\")?,
                '\n' => f.write_str("\\n")?,
                c => write!(f, "{c}")?,
            }
        }
        f.write_str("\"")
    }
}

/// A silence as asked for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewSilence {
    pub matchers: Vec<Matcher>,
    pub starts_unix_ms: u64,
    pub ends_unix_ms: u64,
    pub author: String,
    pub comment: String,
}

/// A silence as kept: it mutes every alert all of whose matchers match, from its start until
/// its end (or until it is expired early, which sets `ends_unix_ms` to that moment).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Silence {
    pub id: u64,
    #[serde(flatten)]
    pub silence: NewSilence,
    pub created_unix_ms: u64,
}

impl Silence {
    pub fn active_at(&self, now_unix_ms: u64) -> bool {
        self.silence.starts_unix_ms <= now_unix_ms && now_unix_ms < self.silence.ends_unix_ms
    }
}

/// One minute of one series: the values a monitor reported for `value` on `labels` during
/// the minute starting at `minute_unix_ms`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MinuteRollup {
    pub monitor: String,
    pub value: String,
    pub labels: Labels,
    pub minute_unix_ms: u64,
    pub min: f64,
    pub avg: f64,
    pub max: f64,
    pub p95: f64,
    pub count: u64,
}

/// Why an alert is not being announced: the silences, maintenance windows and inhibiting
/// alerts that mute it. Empty lists mean it is not muted.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Mute {
    pub silenced_by: Vec<u64>,
    pub maintenance: Vec<String>,
    pub inhibited_by: Vec<String>,
    /// One line for people: "silenced by #3 (deploy) until 14:00", "inhibited: upstream-down
    /// fires for upstream=app".
    pub reason: String,
}

impl Mute {
    pub fn is_muted(&self) -> bool {
        !(self.silenced_by.is_empty()
            && self.maintenance.is_empty()
            && self.inhibited_by.is_empty())
    }
}

/// An alert as the API lists it: the record and whether (and why) it is muted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertView {
    #[serde(flatten)]
    pub alert: AlertRecord,
    pub silenced: bool,
    pub inhibited: bool,
    pub acknowledged: bool,
    pub mute: Mute,
}
