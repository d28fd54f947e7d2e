//! Plain round-robin.
//!
//! The simplest fair spread when servers are alike: a shared atomic counter advances on every
//! pick and the request goes to `candidates[counter % len]`. Weights and load are ignored.
//! Because the counter is taken modulo the *current* candidate count, servers leaving or
//! rejoining the eligible set only shift the rotation; no per-server state needs repair.

use std::sync::atomic::{AtomicUsize, Ordering};

use super::{Balancer, Candidate, PickContext};

pub(super) struct RoundRobin {
    next: AtomicUsize,
}

impl RoundRobin {
    pub(super) fn new() -> Self {
        Self {
            next: AtomicUsize::new(0),
        }
    }
}

impl Balancer for RoundRobin {
    fn pick(&self, candidates: &[Candidate<'_>], _ctx: &PickContext<'_>) -> usize {
        self.next.fetch_add(1, Ordering::Relaxed) % candidates.len()
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{candidates, ctx, tally};
    use super::*;
    use crate::balancer::Load;

    #[test]
    fn cycles_through_candidates_in_order() {
        let loads: Vec<Load> = (0..3).map(|_| Load::new()).collect();
        let cands = candidates(&loads, &[1.0, 5.0, 1.0]);
        let rr = RoundRobin::new();
        let c = ctx();
        let seq: Vec<usize> = (0..7).map(|_| rr.pick(&cands, &c)).collect();
        assert_eq!(seq, [0, 1, 2, 0, 1, 2, 0]);
    }

    #[test]
    fn spreads_evenly_ignoring_weight_and_load() {
        let loads: Vec<Load> = (0..4).map(|_| Load::new()).collect();
        for _ in 0..50 {
            loads[0].begin();
        }
        let cands = candidates(&loads, &[1.0, 2.0, 3.0, 4.0]);
        assert_eq!(tally(&RoundRobin::new(), &cands, 400), [100; 4]);
    }

    #[test]
    fn single_candidate() {
        let loads = [Load::new()];
        let cands = candidates(&loads, &[1.0]);
        assert_eq!(tally(&RoundRobin::new(), &cands, 5), [5]);
    }
}
