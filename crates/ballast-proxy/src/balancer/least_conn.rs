//! Least-connections and weighted least-connections.
//!
//! Exists for workloads whose requests vary a lot in duration (long polls, uploads, slow
//! queries): counting what is in flight adapts to that where round-robin cannot. The plain
//! variant picks the candidate with the fewest requests in flight; the weighted variant picks
//! the lowest `(inflight + 1) / weight`, so a server of weight 2 carries about twice the
//! concurrent requests of a server of weight 1 (the `+ 1` makes an idle heavy server preferred
//! over an idle light one, and accounts for the request being placed).
//!
//! Ties are common (every idle server has 0 in flight) and are broken round-robin: an atomic
//! counter that advances on every pick chooses which of the tied servers wins, so tied servers
//! share evenly. Without this, an idle pool would send everything to its first server.

use std::sync::atomic::AtomicUsize;

use super::{min_rotating, Balancer, Candidate, PickContext};

pub(super) struct LeastConn {
    weighted: bool,
    start: AtomicUsize,
}

impl LeastConn {
    /// Fewest requests in flight.
    pub(super) fn new() -> Self {
        Self {
            weighted: false,
            start: AtomicUsize::new(0),
        }
    }

    /// Lowest `(inflight + 1) / weight`.
    pub(super) fn weighted() -> Self {
        Self {
            weighted: true,
            start: AtomicUsize::new(0),
        }
    }
}

impl Balancer for LeastConn {
    fn pick(&self, candidates: &[Candidate<'_>], _ctx: &PickContext<'_>) -> usize {
        if self.weighted {
            min_rotating(candidates, &self.start, |c| {
                (f64::from(c.load.inflight()) + 1.0) / c.weight
            })
        } else {
            min_rotating(candidates, &self.start, |c| f64::from(c.load.inflight()))
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
        let lc = LeastConn::weighted();
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
    fn weighted_prefers_heavier_idle_server() {
        let l = loads(2);
        let cands = candidates(&l, &[1.0, 4.0]);
        assert_eq!(tally(&LeastConn::weighted(), &cands, 10), [0, 10]);
    }

    #[test]
    fn weighted_rotates_among_ties() {
        let l = loads(3);
        let cands = candidates(&l, &[2.0; 3]);
        assert_eq!(tally(&LeastConn::weighted(), &cands, 300), [100, 100, 100]);
    }
}
