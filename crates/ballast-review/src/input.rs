//! What the caller passes in: one [`RuleInput`] per alert rule, and the [`Window`] reviewed.
//!
//! The caller does the reading (the store's minute rollups and alert history); this crate only
//! needs plain values, so the types here are deliberately flat and serialisable, which also lets
//! a review be replayed from a JSON file.

use ballast_core::Severity;
use serde::{Deserialize, Serialize};

/// Which side of the threshold trips the rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// The rule fires when the value goes above the threshold (latency, error rate).
    Above,
    /// The rule fires when the value goes below the threshold (free disk, healthy backends).
    Below,
}

impl Direction {
    /// The word used in reports.
    pub fn name(self) -> &'static str {
        match self {
            Direction::Above => "above",
            Direction::Below => "below",
        }
    }
}

/// One threshold of a rule: the side that trips it and the value.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Threshold {
    pub direction: Direction,
    pub value: f64,
}

/// One firing episode of one alert of the rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Firing {
    pub alert_id: String,
    /// The worst severity reached in the episode.
    pub severity: Severity,
    pub start_unix_ms: u64,
    /// `None`: still firing at the end of the window.
    pub end_unix_ms: Option<u64>,
    /// Acknowledged by a person, or followed by a remediation run, while it fired.
    pub acted: bool,
}

/// One alert rule with its history over the window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleInput {
    pub rule: String,
    pub monitor: String,
    pub value: String,
    pub warn: Option<Threshold>,
    pub crit: Option<Threshold>,
    /// One value per minute with data, over the window (the caller picks the minute's max
    /// for Above rules and the minute's min for Below rules: the value that would trip).
    pub samples: Vec<f64>,
    pub firings: Vec<Firing>,
}

/// The reviewed span, `[since, until)` in Unix milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Window {
    pub since_unix_ms: u64,
    pub until_unix_ms: u64,
}

impl Window {
    /// The window's length in milliseconds; zero when `until` is not after `since`.
    pub fn len_ms(&self) -> u64 {
        self.until_unix_ms.saturating_sub(self.since_unix_ms)
    }
}

/// Thresholds in one line, for the tests of every module.
#[cfg(test)]
pub(crate) mod test_support {
    use super::{Direction, Threshold};

    pub(crate) fn above(value: f64) -> Option<Threshold> {
        Some(Threshold {
            direction: Direction::Above,
            value,
        })
    }

    pub(crate) fn below(value: f64) -> Option<Threshold> {
        Some(Threshold {
            direction: Direction::Below,
            value,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn direction_serialises_in_snake_case() {
        let t = Threshold {
            direction: Direction::Below,
            value: 2.5,
        };
        let json = serde_json::to_string(&t).unwrap();
        assert_eq!(json, r#"{"direction":"below","value":2.5}"#);
        let back: Threshold = serde_json::from_str(&json).unwrap();
        assert_eq!(back, t);
    }

    #[test]
    fn window_length_never_underflows() {
        let w = Window {
            since_unix_ms: 1_000,
            until_unix_ms: 61_000,
        };
        assert_eq!(w.len_ms(), 60_000);
        let backwards = Window {
            since_unix_ms: 61_000,
            until_unix_ms: 1_000,
        };
        assert_eq!(backwards.len_ms(), 0);
    }

    #[test]
    fn firing_round_trips_through_json() {
        let f = Firing {
            alert_id: "a1".into(),
            severity: Severity::Critical,
            start_unix_ms: 5,
            end_unix_ms: None,
            acted: true,
        };
        let json = serde_json::to_string(&f).unwrap();
        assert!(json.contains(r#""severity":"critical""#), "{json}");
        assert_eq!(serde_json::from_str::<Firing>(&json).unwrap(), f);
    }
}
