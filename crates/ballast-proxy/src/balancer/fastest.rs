//! Fastest response.
//!
//! Exists for pools whose servers differ in speed (mixed hardware, a noisy neighbour, a
//! server warming its caches): requests go where they are likely to be answered soonest.
//! The cost of a candidate is its latency EWMA (see [`Load::ewma_secs`](super::Load)) times
//! the requests it would then have in flight, divided by its weight:
//! `ewma × (inflight + 1) / weight`. Multiplying by the queue keeps a fast server from being
//! buried: once it has enough in flight, a slower idle server becomes cheaper. A server with
//! no sample yet counts as a small default latency so that it gets tried and measured.
//! The lowest cost wins; ties are broken round-robin.

use std::sync::atomic::AtomicUsize;

use super::load::DEFAULT_LATENCY_SECS;
use super::{min_rotating, Balancer, Candidate, PickContext};

pub(super) struct Fastest {
    start: AtomicUsize,
}

impl Fastest {
    pub(super) fn new() -> Self {
        Self {
            start: AtomicUsize::new(0),
        }
    }
}

fn cost(c: &Candidate<'_>) -> f64 {
    let ewma = c.load.ewma_secs();
    let latency = if ewma > 0.0 {
        ewma
    } else {
        DEFAULT_LATENCY_SECS
    };
    latency * (f64::from(c.load.inflight()) + 1.0) / c.weight
}

impl Balancer for Fastest {
    fn pick(&self, candidates: &[Candidate<'_>], _ctx: &PickContext<'_>) -> usize {
        min_rotating(candidates, &self.start, cost)
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
    fn avoids_a_ten_times_slower_server() {
        let l = loads(3);
        let counts = simulate(&Fastest::new(), &l, &[1.0; 3], &[10, 10, 100], 10, 3_000);
        assert!(counts[2] * 10 < 3_000, "{counts:?}");
        assert!(
            counts[2] > 0,
            "the slow server is still measured: {counts:?}"
        );
        assert!(counts[0].abs_diff(counts[1]) < 300, "{counts:?}");
    }

    #[test]
    fn prefers_lowest_cost() {
        let l = loads(3);
        l[0].end(Duration::from_millis(20));
        l[1].end(Duration::from_millis(5));
        l[2].end(Duration::from_millis(50));
        let cands = candidates(&l, &[1.0; 3]);
        assert_eq!(tally(&Fastest::new(), &cands, 10), [0, 10, 0]);
    }

    #[test]
    fn queue_makes_a_fast_server_expensive() {
        let l = loads(2);
        l[0].end(Duration::from_millis(10));
        l[1].end(Duration::from_millis(30));
        for _ in 0..3 {
            l[0].begin();
        }
        // 10ms × 4 = 40 > 30ms × 1.
        let cands = candidates(&l, &[1.0; 2]);
        assert_eq!(tally(&Fastest::new(), &cands, 5), [0, 5]);
    }

    #[test]
    fn weight_divides_cost() {
        let l = loads(2);
        l[0].end(Duration::from_millis(10));
        l[1].end(Duration::from_millis(15));
        let cands = candidates(&l, &[1.0, 2.0]);
        assert_eq!(tally(&Fastest::new(), &cands, 5), [0, 5]);
    }

    #[test]
    fn unmeasured_server_is_tried() {
        let l = loads(2);
        l[0].end(Duration::from_millis(10));
        let cands = candidates(&l, &[1.0; 2]);
        assert_eq!(tally(&Fastest::new(), &cands, 5), [0, 5]);
    }

    #[test]
    fn ties_rotate() {
        let l = loads(3);
        let cands = candidates(&l, &[1.0; 3]);
        assert_eq!(tally(&Fastest::new(), &cands, 300), [100, 100, 100]);
    }
}
