//! Smooth weighted round-robin (the nginx algorithm).
//!
//! Exists for pools of unequal servers where load-aware algorithms are not wanted: each server
//! gets a share of requests proportional to its effective weight, *interleaved* rather than in
//! blocks (weights 5, 1, 1 give `a a b a c a a`, not `a a a a a b c`), so a heavy server never
//! receives a burst of consecutive requests.
//!
//! Each pick adds every candidate's weight to its running score, chooses the highest score and
//! subtracts the total weight of the candidates from the winner. Scores live per server index
//! in a `Mutex<Vec<f64>>` sized to the upstream's server count; the critical section is a short
//! loop with no `.await`. Servers that are not candidates keep their score untouched, so a
//! server that comes back from failover resumes where it left off.

use std::sync::Mutex;

use super::{Balancer, Candidate, PickContext};

pub(super) struct WeightedRoundRobin {
    current: Mutex<Vec<f64>>,
}

impl WeightedRoundRobin {
    pub(super) fn new(servers: usize) -> Self {
        Self {
            current: Mutex::new(vec![0.0; servers]),
        }
    }
}

impl Balancer for WeightedRoundRobin {
    fn pick(&self, candidates: &[Candidate<'_>], _ctx: &PickContext<'_>) -> usize {
        if candidates.len() <= 1 {
            return 0;
        }
        // A panic elsewhere cannot leave the scores inconsistent in a harmful way.
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        let needed = candidates.iter().map(|c| c.index + 1).max().unwrap_or(0);
        if current.len() < needed {
            current.resize(needed, 0.0);
        }
        let mut total = 0.0;
        let mut best = 0;
        let mut best_score = f64::NEG_INFINITY;
        for (pos, c) in candidates.iter().enumerate() {
            let weight = if c.weight.is_finite() && c.weight > 0.0 {
                c.weight
            } else {
                0.0
            };
            let score = &mut current[c.index];
            *score += weight;
            total += weight;
            if *score > best_score {
                best_score = *score;
                best = pos;
            }
        }
        current[candidates[best].index] -= total;
        best
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{candidates, ctx, tally};
    use super::*;
    use crate::balancer::Load;

    fn loads(n: usize) -> Vec<Load> {
        (0..n).map(|_| Load::new()).collect()
    }

    #[test]
    fn weights_three_to_one_give_75_25() {
        let l = loads(2);
        let cands = candidates(&l, &[3.0, 1.0]);
        let counts = tally(&WeightedRoundRobin::new(2), &cands, 10_000);
        let share = counts[0] as f64 / 10_000.0;
        assert!((share - 0.75).abs() <= 0.02, "{counts:?}");
        let share = counts[1] as f64 / 10_000.0;
        assert!((share - 0.25).abs() <= 0.02, "{counts:?}");
    }

    #[test]
    fn sequence_is_interleaved_not_blocks() {
        let l = loads(3);
        let cands = candidates(&l, &[5.0, 1.0, 1.0]);
        let wrr = WeightedRoundRobin::new(3);
        let c = ctx();
        let seq: Vec<usize> = (0..14).map(|_| wrr.pick(&cands, &c)).collect();
        assert_eq!(seq, [0, 0, 1, 0, 2, 0, 0, 0, 0, 1, 0, 2, 0, 0]);
        // The heavy server (5 of 7) is never picked 5 times in a row.
        assert!(!seq.windows(5).any(|w| w.iter().all(|&p| p == 0)));
    }

    #[test]
    fn follows_candidate_indexes_when_some_are_ineligible() {
        let l = loads(3);
        let all = candidates(&l, &[1.0, 1.0, 2.0]);
        // Only servers 0 and 2 are eligible: positions 0 and 1 of the slice.
        let subset = [all[0], all[2]];
        let counts = tally(&WeightedRoundRobin::new(3), &subset, 3_000);
        assert_eq!(counts, [1_000, 2_000]);
    }

    #[test]
    fn grows_state_for_unexpected_indexes() {
        let l = loads(2);
        let mut cands = candidates(&l, &[1.0, 1.0]);
        cands[1].index = 7;
        let counts = tally(&WeightedRoundRobin::new(1), &cands, 100);
        assert_eq!(counts, [50, 50]);
    }

    #[test]
    fn fractional_weights_during_slow_start() {
        let l = loads(2);
        let cands = candidates(&l, &[1.0, 0.25]);
        let counts = tally(&WeightedRoundRobin::new(2), &cands, 10_000);
        assert_eq!(counts, [8_000, 2_000]);
    }
}
