//! Least-connections and weighted least-connections.
//!
//! Exists for workloads whose requests vary a lot in duration (long polls, uploads, slow
//! queries): counting what is in flight adapts to that where round-robin cannot. The plain
//! variant picks the candidate with the fewest requests in flight; the weighted variant picks
//! the lowest `inflight / weight`, so a server of weight 2 carries about twice the concurrent
//! requests of a server of weight 1.
//!
//! Ties are common (every idle server has 0 in flight). The plain variant breaks them
//! round-robin: an atomic counter that advances on every pick chooses which tied server wins,
//! so tied servers share evenly. The weighted variant breaks them with smooth weighted
//! round-robin, so light traffic (where every server is idle) is still split by weight, 3:1
//! weights giving 75%/25%, instead of all going to the heaviest server.

use std::sync::atomic::AtomicUsize;

use smallvec::SmallVec;

use super::weighted_round_robin::WeightedRoundRobin;
use super::{min_rotating, Balancer, Candidate, PickContext};

pub(super) struct LeastConn {
    /// Weighted variant: the tie-breaker.
    weighted: Option<WeightedRoundRobin>,
    start: AtomicUsize,
}

impl LeastConn {
    /// Fewest requests in flight.
    pub(super) fn new() -> Self {
        Self {
            weighted: None,
            start: AtomicUsize::new(0),
        }
    }

    /// Lowest `inflight / weight`, ties by smooth weighted round-robin, for `servers` servers.
    pub(super) fn weighted(servers: usize) -> Self {
        Self {
            weighted: Some(WeightedRoundRobin::new(servers)),
            start: AtomicUsize::new(0),
        }
    }
}

impl Balancer for LeastConn {
    fn pick(&self, candidates: &[Candidate<'_>], ctx: &PickContext<'_>) -> usize {
        let Some(wrr) = &self.weighted else {
            return min_rotating(candidates, &self.start, |c| f64::from(c.load.inflight()));
        };
        if candidates.len() <= 1 {
            return 0;
        }
        let costs: SmallVec<[f64; 16]> = candidates
            .iter()
            .map(|c| f64::from(c.load.inflight()) / c.weight)
            .collect();
        let min = costs.iter().copied().fold(f64::INFINITY, f64::min);
        let tied: SmallVec<[usize; 16]> =
            (0..candidates.len()).filter(|&i| costs[i] == min).collect();
        match tied.len() {
            0 => 0,
            1 => tied[0],
            _ => {
                let pool: SmallVec<[Candidate<'_>; 16]> =
                    tied.iter().map(|&i| candidates[i]).collect();
                tied[wrr.pick(&pool, ctx).min(tied.len() - 1)]
            }
        }
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

    fn busy(load: &Load, n: u32) {
        for _ in 0..n {
            load.begin();
        }
    }

    #[test]
    fn picks_the_least_loaded() {
        let l = loads(4);
        busy(&l[0], 5);
        busy(&l[1], 2);
        busy(&l[2], 7);
        busy(&l[3], 3);
        let cands = candidates(&l, &[1.0; 4]);
        let lc = LeastConn::new();
        let c = ctx();
        for _ in 0..20 {
            assert_eq!(lc.pick(&cands, &c), 1);
        }
    }

    #[test]
    fn ignores_weight_in_plain_mode() {
        let l = loads(2);
        busy(&l[0], 1);
        let cands = candidates(&l, &[100.0, 1.0]);
        assert_eq!(tally(&LeastConn::new(), &cands, 10), [0, 10]);
    }

    #[test]
    fn rotates_among_ties() {
        let l = loads(3);
        let cands = candidates(&l, &[1.0; 3]);
        assert_eq!(tally(&LeastConn::new(), &cands, 300), [100, 100, 100]);
    }

    #[test]
    fn rotates_among_tied_minimums_only() {
        let l = loads(4);
        busy(&l[1], 1);
        let cands = candidates(&l, &[1.0; 4]);
        assert_eq!(tally(&LeastConn::new(), &cands, 300), [100, 0, 100, 100]);
    }

    #[test]
    fn tracks_load_as_it_changes() {
        // Each pick starts a request that never finishes: picks must spread to keep
        // the in-flight counts level.
        let l = loads(3);
        busy(&l[0], 3);
        let cands = candidates(&l, &[1.0; 3]);
        let lc = LeastConn::new();
        let c = ctx();
        for _ in 0..30 {
            l[lc.pick(&cands, &c)].begin();
        }
        let counts: Vec<u32> = l.iter().map(Load::inflight).collect();
        assert_eq!(counts, [11, 11, 11]);
    }

    #[test]
    fn weighted_respects_weights() {
        let l = loads(3);
        let cands = candidates(&l, &[3.0, 1.0, 2.0]);
        let lc = LeastConn::weighted(3);
        let c = ctx();
        for _ in 0..600 {
            l[lc.pick(&cands, &c)].begin();
        }
        let counts: Vec<u32> = l.iter().map(Load::inflight).collect();
        for (got, want) in counts.iter().zip([300, 100, 200]) {
            assert!(got.abs_diff(want) <= 3, "{counts:?}");
        }
    }

    #[test]
    fn weighted_splits_idle_traffic_by_weight() {
        // Every pick sees idle servers (tally does not begin requests): weight decides.
        let l = loads(2);
        let cands = candidates(&l, &[1.0, 4.0]);
        assert_eq!(tally(&LeastConn::weighted(2), &cands, 10), [2, 8]);
        let l = loads(2);
        let cands = candidates(&l, &[3.0, 1.0]);
        assert_eq!(tally(&LeastConn::weighted(2), &cands, 400), [300, 100]);
    }

    #[test]
    fn weighted_rotates_among_ties() {
        let l = loads(3);
        let cands = candidates(&l, &[2.0; 3]);
        assert_eq!(tally(&LeastConn::weighted(3), &cands, 300), [100, 100, 100]);
    }
}
