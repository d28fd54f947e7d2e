//! The backend's behaviour settings ("knobs"), as the JSON the harness sends to
//! `PUT /_lab/knobs`.
//!
//! Scenarios turn a healthy backend into a slow, failing, hung or saturated one by replacing
//! its knobs; keeping them in one validated value means a request always sees a consistent
//! set, and a typo in a scenario is a 400 with a message rather than a silently ignored field.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Largest response body the backend will be asked to produce (64 MiB).
pub const MAX_SIZE: usize = 64 << 20;
/// Largest `max_concurrency` accepted (more is the same as no limit).
pub const MAX_CONCURRENCY: usize = 1_000_000;
/// Longest latency any distribution parameter may ask for (one hour), ms.
const MAX_LATENCY_MS: f64 = 3_600_000.0;

/// How long each application request is held before it is answered.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum LatencyKnob {
    /// Always `ms` milliseconds.
    Fixed { ms: f64 },
    /// Uniformly drawn from `min_ms..=max_ms`.
    Uniform { min_ms: f64, max_ms: f64 },
    /// Exponentially distributed with mean `mean_ms` (a long tail, like a real service).
    Exponential { mean_ms: f64 },
}

impl LatencyKnob {
    /// Draws one service time.
    pub fn sample(&self) -> Duration {
        let ms = match *self {
            LatencyKnob::Fixed { ms } => ms,
            LatencyKnob::Uniform { min_ms, max_ms } => min_ms + (max_ms - min_ms) * fastrand::f64(),
            LatencyKnob::Exponential { mean_ms } => {
                // 1 - U lies in (0, 1], so the logarithm is finite.
                -mean_ms * (1.0 - fastrand::f64()).ln()
            }
        };
        // Validated knobs always give a finite, non-negative value; anything else waits 0.
        Duration::try_from_secs_f64(ms.min(MAX_LATENCY_MS * 10.0) / 1000.0)
            .unwrap_or(Duration::ZERO)
    }

    fn validate(&self) -> Result<(), KnobsError> {
        let check = |field: &'static str, v: f64| {
            if v.is_finite() && (0.0..=MAX_LATENCY_MS).contains(&v) {
                Ok(())
            } else {
                Err(KnobsError::Latency(format!(
                    "{field} must be between 0 and {MAX_LATENCY_MS} ms, got {v}"
                )))
            }
        };
        match *self {
            LatencyKnob::Fixed { ms } => check("ms", ms),
            LatencyKnob::Uniform { min_ms, max_ms } => {
                check("min_ms", min_ms)?;
                check("max_ms", max_ms)?;
                if min_ms > max_ms {
                    return Err(KnobsError::Latency(format!(
                        "min_ms ({min_ms}) is greater than max_ms ({max_ms})"
                    )));
                }
                Ok(())
            }
            LatencyKnob::Exponential { mean_ms } => check("mean_ms", mean_ms),
        }
    }
}

/// Everything that decides how the backend answers. Every field is optional in JSON; a
/// missing field takes its default, so `{}` is a healthy, instant backend.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Knobs {
    /// Service time of application requests (none by default).
    pub latency: Option<LatencyKnob>,
    /// Share of application requests answered with `error_status`, 0..=1.
    pub error_ratio: f64,
    /// Status of the injected errors (503 by default).
    pub error_status: u16,
    /// Response body size in bytes. The body repeats `ok\n`, so the default 3 is `ok\n`.
    pub size: usize,
    /// Accept and read requests (application and `/healthz`) but do not answer them until
    /// this is cleared. Control endpoints keep answering.
    pub hang: bool,
    /// `/healthz` answers 503.
    pub health_fail: bool,
    /// At most this many application requests in service at once; the others wait in
    /// arrival order. With a latency this gives the backend a real capacity.
    pub max_concurrency: Option<usize>,
}

impl Default for Knobs {
    fn default() -> Self {
        Knobs {
            latency: None,
            error_ratio: 0.0,
            error_status: 503,
            size: 3,
            hang: false,
            health_fail: false,
            max_concurrency: None,
        }
    }
}

impl Knobs {
    /// Parses and validates knobs sent by the harness.
    pub fn from_json(json: &[u8]) -> Result<Knobs, KnobsError> {
        let knobs: Knobs = serde_json::from_slice(json)?;
        knobs.validate()?;
        Ok(knobs)
    }

    /// Checks the values serde cannot: ranges and consistency.
    pub fn validate(&self) -> Result<(), KnobsError> {
        if let Some(latency) = &self.latency {
            latency.validate()?;
        }
        if !(0.0..=1.0).contains(&self.error_ratio) {
            return Err(KnobsError::ErrorRatio(self.error_ratio));
        }
        if !(100..=999).contains(&self.error_status) {
            return Err(KnobsError::ErrorStatus(self.error_status));
        }
        if self.size > MAX_SIZE {
            return Err(KnobsError::Size(self.size));
        }
        match self.max_concurrency {
            Some(0) => Err(KnobsError::Concurrency(0)),
            Some(n) if n > MAX_CONCURRENCY => Err(KnobsError::Concurrency(n)),
            _ => Ok(()),
        }
    }
}

/// Why a set of knobs was refused.
#[derive(Debug, thiserror::Error)]
pub enum KnobsError {
    #[error("bad knobs JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("bad latency: {0}")]
    Latency(String),
    #[error("error_ratio must be between 0 and 1, got {0}")]
    ErrorRatio(f64),
    #[error("error_status must be an HTTP status (100..=999), got {0}")]
    ErrorStatus(u16),
    #[error("size must be at most {MAX_SIZE} bytes, got {0}")]
    Size(usize),
    #[error("max_concurrency must be between 1 and {MAX_CONCURRENCY}, got {0}")]
    Concurrency(usize),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_object_is_the_default() {
        assert_eq!(Knobs::from_json(b"{}").ok(), Some(Knobs::default()));
    }

    #[test]
    fn latency_kinds_parse() {
        let k = Knobs::from_json(br#"{"latency":{"kind":"uniform","min_ms":1,"max_ms":5}}"#);
        assert!(matches!(
            k.map(|k| k.latency),
            Ok(Some(LatencyKnob::Uniform { .. }))
        ));
        let k = Knobs::from_json(br#"{"latency":{"kind":"exponential","mean_ms":2.5}}"#);
        assert!(matches!(
            k.map(|k| k.latency),
            Ok(Some(LatencyKnob::Exponential { .. }))
        ));
    }

    #[test]
    fn refuses_unknown_fields_and_bad_values() {
        for bad in [
            r#"{"latency_ms":5}"#,
            r#"{"latency":{"kind":"fixed","ms":5,"extra":1}}"#,
            r#"{"latency":{"kind":"gaussian","ms":5}}"#,
            r#"{"latency":{"kind":"uniform","min_ms":9,"max_ms":5}}"#,
            r#"{"latency":{"kind":"fixed","ms":-1}}"#,
            r#"{"error_ratio":1.5}"#,
            r#"{"error_status":42}"#,
            r#"{"max_concurrency":0}"#,
            r#"{"size":-3}"#,
            r#"not json"#,
        ] {
            assert!(Knobs::from_json(bad.as_bytes()).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn samples_stay_in_range() {
        let u = LatencyKnob::Uniform {
            min_ms: 2.0,
            max_ms: 4.0,
        };
        let e = LatencyKnob::Exponential { mean_ms: 1.0 };
        for _ in 0..1000 {
            let d = u.sample();
            assert!(d >= Duration::from_millis(2) && d <= Duration::from_millis(4));
            let _ = e.sample();
        }
        assert_eq!(
            LatencyKnob::Fixed { ms: 7.0 }.sample(),
            Duration::from_millis(7)
        );
    }
}
