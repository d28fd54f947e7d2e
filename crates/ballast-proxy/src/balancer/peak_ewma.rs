//! Peak-EWMA with power-of-two-choices.
//!
//! Exists for large or latency-sensitive pools: scanning every server on every pick gets
//! costly and makes all pickers herd onto the same "best" server between load updates.
//! Instead, two distinct candidates are drawn at random and the cheaper one wins, which is
//! known to spread load nearly as well as a full scan while avoiding herding.
//!
//! The cost is `peak_ewma × (inflight + 1) / weight`, where the peak EWMA (see
//! [`Load::peak_ewma_secs`](super::Load)) reacts at once to a latency spike and forgets it
//! slowly, so a server that turns slow is shunned immediately. A server with no sample yet
//! counts as a small default latency so that it gets tried. With a single candidate, it is
//! returned without drawing.

use super::load::DEFAULT_LATENCY_SECS;
use super::{Balancer, Candidate, PickContext};

pub(super) struct PeakEwma;

impl PeakEwma {
    pub(super) fn new() -> Self {
        Self
    }
}

fn cost(c: &Candidate<'_>) -> f64 {
    let peak = c.load.peak_ewma_secs();
    let latency = if peak > 0.0 {
        peak
    } else {
        DEFAULT_LATENCY_SECS
    };
    latency * (f64::from(c.load.inflight()) + 1.0) / c.weight
}

impl Balancer for PeakEwma {
    fn pick(&self, candidates: &[Candidate<'_>], _ctx: &PickContext<'_>) -> usize {
        let len = candidates.len();
        if len <= 1 {
            return 0;
        }
        let a = fastrand::usize(..len);
        // Draw from the other len - 1 positions so that the two are distinct.
        let mut b = fastrand::usize(..len - 1);
        if b >= a {
            b += 1;
        }
        // `a` is random, so preferring it on a tie is still a fair coin.
        if cost(&candidates[b]) < cost(&candidates[a]) {
            b
        } else {
            a
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::test_util::{candidates, simulate, tally};
    use super::*;
    use crate::balancer::Load;

    fn loads(n: usize) -> Vec<Load> {
        (0..n).map(|_| Load::new()).collect()
    }

    #[test]
    fn single_candidate_is_returned() {
        let l = loads(1);
        let cands = candidates(&l, &[1.0]);
        assert_eq!(tally(&PeakEwma::new(), &cands, 10), [10]);
    }

    #[test]
    fn of_two_the_cheaper_always_wins() {
        let l = loads(2);
        l[0].end(Duration::from_millis(40));
        l[1].end(Duration::from_millis(10));
        let cands = candidates(&l, &[1.0; 2]);
        assert_eq!(tally(&PeakEwma::new(), &cands, 100), [0, 100]);
    }

    #[test]
    fn never_picks_the_most_expensive_of_several() {
        // The most expensive server can only win a draw against itself, which is excluded.
        let l = loads(4);
        l[3].end(Duration::from_millis(500));
        for load in &l[..3] {
            load.end(Duration::from_millis(10));
        }
        let cands = candidates(&l, &[1.0; 4]);
        let counts = tally(&PeakEwma::new(), &cands, 3_000);
        assert_eq!(counts[3], 0, "{counts:?}");
    }

    #[test]
    fn avoids_the_slow_server() {
        let l = loads(3);
        let counts = simulate(&PeakEwma::new(), &l, &[1.0; 3], &[10, 10, 100], 10, 3_000);
        assert!(counts[2] * 10 < 3_000, "{counts:?}");
        assert!(counts[0].abs_diff(counts[1]) < 600, "{counts:?}");
    }

    #[test]
    fn spreads_equal_servers() {
        let l = loads(4);
        let counts = simulate(&PeakEwma::new(), &l, &[1.0; 4], &[10; 4], 8, 4_000);
        for n in &counts {
            assert!(n.abs_diff(1_000) < 250, "{counts:?}");
        }
    }

    #[test]
    fn weight_shifts_load() {
        let l = loads(2);
        let counts = simulate(&PeakEwma::new(), &l, &[3.0, 1.0], &[10; 2], 8, 4_000);
        assert!(counts[0] > 2 * counts[1], "{counts:?}");
    }
}
