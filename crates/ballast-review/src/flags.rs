//! The flags that point a person at the rules worth a look.
//!
//! - [`Flag::NoData`]: no (finite) samples: the rule watches nothing, or a name is wrong.
//! - [`Flag::NeverFired`]: no firing episode in the window (set together with `NoData` when
//!   both hold).
//! - [`Flag::AlwaysFiring`]: the time spent firing (episodes clipped to the window, summed) is
//!   at least 50% of the window's length: an alert that is always on tells nobody anything.
//! - [`Flag::Noisy`]: the warning threshold (or, without one, the critical one) lies inside the
//!   normal range: for Above, threshold ≤ p95; for Below, threshold ≥ p5 (nearest rank, as in
//!   [`crate::stats`]). Also noisy when at least 3 episodes ended and at least half of the ended
//!   episodes ended with nobody acting.

use serde::{Deserialize, Serialize};

use crate::input::{Direction, Threshold};
use crate::stats::Normal;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Flag {
    NoData,
    NeverFired,
    AlwaysFiring,
    Noisy,
}

impl Flag {
    /// The words used in the Markdown.
    pub fn label(self) -> &'static str {
        match self {
            Flag::NoData => "no data",
            Flag::NeverFired => "never fired",
            Flag::AlwaysFiring => "always firing",
            Flag::Noisy => "noisy",
        }
    }
}

/// What the flags are computed from.
pub(crate) struct Facts<'a> {
    pub normal: Option<&'a Normal>,
    pub warn: Option<Threshold>,
    pub crit: Option<Threshold>,
    /// Episodes in the window.
    pub episodes: u64,
    pub firing_ms: u64,
    pub window_ms: u64,
    /// Episodes that ended, and those of them nobody acted on.
    pub ended: u64,
    pub noise: u64,
}

/// The flags, sorted and unique.
pub(crate) fn flags(f: &Facts<'_>) -> Vec<Flag> {
    let mut out = Vec::new();
    if f.normal.is_none() {
        out.push(Flag::NoData);
    }
    if f.episodes == 0 {
        out.push(Flag::NeverFired);
    }
    if f.window_ms > 0 && f.firing_ms.saturating_mul(2) >= f.window_ms {
        out.push(Flag::AlwaysFiring);
    }
    let inside = match (f.normal, f.warn.or(f.crit)) {
        (Some(normal), Some(t)) => inside_normal_range(t, normal),
        _ => false,
    };
    // noise / ended ≥ 0.5, in integers.
    let mostly_noise = f.ended >= 3 && f.noise.saturating_mul(2) >= f.ended;
    if inside || mostly_noise {
        out.push(Flag::Noisy);
    }
    out.sort();
    out.dedup();
    out
}

/// Whether `t` would trip on a normal minute: Above at or below p95, Below at or above p5.
/// A NaN threshold is never inside.
pub(crate) fn inside_normal_range(t: Threshold, normal: &Normal) -> bool {
    match t.direction {
        Direction::Above => t.value <= normal.pct.p95,
        Direction::Below => t.value >= normal.p5,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::test_support::{above, below};

    fn hundred() -> Normal {
        // 1..=100: p5 = 5, p95 = 95.
        Normal::of(&(1..=100).map(f64::from).collect::<Vec<_>>()).unwrap()
    }

    fn facts(normal: Option<&Normal>) -> Facts<'_> {
        Facts {
            normal,
            warn: None,
            crit: None,
            episodes: 1,
            firing_ms: 0,
            window_ms: 1_000,
            ended: 0,
            noise: 0,
        }
    }

    #[test]
    fn nothing_at_all_is_no_data_and_never_fired() {
        let f = Facts {
            episodes: 0,
            ..facts(None)
        };
        assert_eq!(flags(&f), vec![Flag::NoData, Flag::NeverFired]);
    }

    #[test]
    fn always_firing_from_half_the_window() {
        let n = hundred();
        let half = Facts {
            firing_ms: 500,
            ..facts(Some(&n))
        };
        assert_eq!(flags(&half), vec![Flag::AlwaysFiring]);
        let less = Facts {
            firing_ms: 499,
            ..facts(Some(&n))
        };
        assert_eq!(flags(&less), vec![]);
        // An empty window never makes anything "always firing".
        let empty = Facts {
            window_ms: 0,
            ..facts(Some(&n))
        };
        assert_eq!(flags(&empty), vec![]);
    }

    #[test]
    fn above_threshold_at_or_under_p95_is_noisy() {
        let n = hundred();
        let at = Facts {
            warn: above(95.0),
            ..facts(Some(&n))
        };
        assert_eq!(flags(&at), vec![Flag::Noisy]);
        let over = Facts {
            warn: above(95.5),
            ..facts(Some(&n))
        };
        assert_eq!(flags(&over), vec![]);
    }

    #[test]
    fn warning_wins_over_critical_for_the_range_check() {
        let n = hundred();
        // warn 99 is outside; crit 10 would be inside but is not the one looked at.
        let f = Facts {
            warn: above(99.0),
            crit: above(10.0),
            ..facts(Some(&n))
        };
        assert_eq!(flags(&f), vec![]);
        // Without warn, crit is the one.
        let f = Facts {
            crit: above(10.0),
            ..facts(Some(&n))
        };
        assert_eq!(flags(&f), vec![Flag::Noisy]);
    }

    #[test]
    fn below_threshold_at_or_over_p5_is_noisy() {
        let n = hundred();
        let at = Facts {
            warn: below(5.0),
            ..facts(Some(&n))
        };
        assert_eq!(flags(&at), vec![Flag::Noisy]);
        let under = Facts {
            warn: below(4.0),
            ..facts(Some(&n))
        };
        assert_eq!(flags(&under), vec![]);
        let nan = Facts {
            warn: below(f64::NAN),
            ..facts(Some(&n))
        };
        assert_eq!(flags(&nan), vec![]);
    }

    #[test]
    fn noisy_from_unacted_episodes() {
        let n = hundred();
        // 3 ended, 2 noise: 2/3 ≥ 0.5.
        let f = Facts {
            ended: 3,
            noise: 2,
            ..facts(Some(&n))
        };
        assert_eq!(flags(&f), vec![Flag::Noisy]);
        // 4 ended, 2 noise: exactly 0.5.
        let f = Facts {
            ended: 4,
            noise: 2,
            ..facts(Some(&n))
        };
        assert_eq!(flags(&f), vec![Flag::Noisy]);
        // 3 ended, 1 noise: 1/3.
        let f = Facts {
            ended: 3,
            noise: 1,
            ..facts(Some(&n))
        };
        assert_eq!(flags(&f), vec![]);
        // 2 ended, 2 noise: too few to say.
        let f = Facts {
            ended: 2,
            noise: 2,
            ..facts(Some(&n))
        };
        assert_eq!(flags(&f), vec![]);
    }

    #[test]
    fn flags_come_out_sorted() {
        let n = hundred();
        let f = Facts {
            warn: above(50.0),
            episodes: 0,
            firing_ms: 1_000,
            ended: 5,
            noise: 5,
            ..facts(Some(&n))
        };
        assert_eq!(
            flags(&f),
            vec![Flag::NeverFired, Flag::AlwaysFiring, Flag::Noisy]
        );
    }
}
