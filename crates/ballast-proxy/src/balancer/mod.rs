//! Load-balancing algorithms behind one small trait.
//!
//! The pool decides *which* servers may take a request (health, drain, ejection, backup);
//! a [`Balancer`] only decides *which of those* gets it. Keeping eligibility out of the
//! algorithms means every algorithm automatically respects failover, and each one is a
//! small, separately testable file.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};

use ballast_config::Balance;
use http::HeaderMap;
use smallvec::SmallVec;

mod fastest;
mod hash;
mod least_conn;
mod load;
mod peak_ewma;
mod round_robin;
mod weighted_round_robin;

pub use load::Load;

/// A server that may take the request, as the balancer sees it.
#[derive(Clone, Copy)]
pub struct Candidate<'a> {
    /// Position of the server in the upstream's server list (stable for the life of the
    /// balancer; algorithms key their per-server state on it).
    pub index: usize,
    /// Effective weight: configured weight scaled down during slow start (always > 0).
    pub weight: f64,
    /// Live load figures of the server.
    pub load: &'a Load,
}

/// What the balancer may look at about the request.
pub struct PickContext<'a> {
    pub client_ip: IpAddr,
    /// `None` for TCP connections.
    pub headers: Option<&'a HeaderMap>,
    pub path: &'a str,
}

/// One balancing algorithm.
pub trait Balancer: Send + Sync {
    /// Chooses among `candidates` (never empty); returns a position in `candidates`.
    fn pick(&self, candidates: &[Candidate<'_>], ctx: &PickContext<'_>) -> usize;
}

/// Builds the algorithm configured for an upstream whose servers are `servers`
/// (address and configured weight, in config order).
pub fn build(balance: &Balance, servers: &[(SocketAddr, u32)]) -> Box<dyn Balancer> {
    match balance {
        Balance::RoundRobin => Box::new(round_robin::RoundRobin::new()),
        Balance::WeightedRoundRobin => {
            Box::new(weighted_round_robin::WeightedRoundRobin::new(servers.len()))
        }
        Balance::LeastConnections => Box::new(least_conn::LeastConn::new()),
        Balance::WeightedLeastConnections => {
            Box::new(least_conn::LeastConn::weighted(servers.len()))
        }
        Balance::FastestResponse => Box::new(fastest::Fastest::new()),
        Balance::PeakEwma => Box::new(peak_ewma::PeakEwma::new()),
        Balance::Hash(key) => Box::new(hash::ConsistentHash::new(key.clone(), servers)),
    }
}

/// Position in `candidates` of the lowest `cost`, ties broken round-robin.
///
/// An atomic counter advances on every call and selects which of the tied minimums wins
/// (the `counter % ties`-th, in slice order). Unlike "rotate the scan start and take the first
/// minimum", this shares exactly evenly among the tied servers even when a more loaded server
/// sits just before one of them in the slice. Each cost is read once, so figures changing
/// concurrently cannot make the choice inconsistent. A NaN cost never wins.
fn min_rotating(
    candidates: &[Candidate<'_>],
    counter: &AtomicUsize,
    cost: impl Fn(&Candidate<'_>) -> f64,
) -> usize {
    let len = candidates.len();
    if len <= 1 {
        return 0;
    }
    let turn = counter.fetch_add(1, Ordering::Relaxed);
    let costs: SmallVec<[f64; 16]> = candidates.iter().map(cost).collect();
    let min = costs.iter().copied().fold(f64::NAN, f64::min);
    if min.is_nan() {
        return turn % len;
    }
    let ties = costs.iter().filter(|&&c| c == min).count();
    let nth = turn % ties;
    costs
        .iter()
        .enumerate()
        .filter(|&(_, &c)| c == min)
        .nth(nth)
        .map_or(0, |(pos, _)| pos)
}

#[cfg(test)]
pub(crate) mod test_util {
    use super::*;

    /// A context for requests that carry nothing of interest.
    pub fn ctx() -> PickContext<'static> {
        PickContext {
            client_ip: IpAddr::from([127, 0, 0, 1]),
            headers: None,
            path: "/",
        }
    }

    /// Candidates over `loads` with the given weights, indexes 0..n.
    pub fn candidates<'a>(loads: &'a [Load], weights: &[f64]) -> Vec<Candidate<'a>> {
        loads
            .iter()
            .zip(weights)
            .enumerate()
            .map(|(index, (load, &weight))| Candidate {
                index,
                weight,
                load,
            })
            .collect()
    }

    /// How many times each candidate position is picked over `n` picks.
    pub fn tally(b: &dyn Balancer, cands: &[Candidate<'_>], n: usize) -> Vec<usize> {
        let mut counts = vec![0; cands.len()];
        let c = ctx();
        for _ in 0..n {
            counts[b.pick(cands, &c)] += 1;
        }
        counts
    }

    /// Runs `picks` requests through `b`, keeping `concurrency` of them in flight and
    /// completing the oldest with its server's latency. Returns picks per server.
    pub fn simulate(
        b: &dyn Balancer,
        loads: &[Load],
        weights: &[f64],
        latencies_ms: &[u64],
        concurrency: usize,
        picks: usize,
    ) -> Vec<usize> {
        let cands = candidates(loads, weights);
        let c = ctx();
        let mut queue = std::collections::VecDeque::new();
        let mut counts = vec![0; loads.len()];
        for _ in 0..picks {
            let p = b.pick(&cands, &c);
            counts[p] += 1;
            loads[p].begin();
            queue.push_back(p);
            if queue.len() > concurrency {
                let done = queue.pop_front().unwrap();
                loads[done].end(std::time::Duration::from_millis(latencies_ms[done]));
            }
        }
        counts
    }
}

#[cfg(test)]
mod tests {
    use super::test_util::{candidates, ctx};
    use super::*;
    use ballast_config::HashKey;

    #[test]
    fn build_covers_every_algorithm() {
        let servers: Vec<(SocketAddr, u32)> = (1..=3u8)
            .map(|i| (SocketAddr::from(([10, 0, 0, i], 80)), 1))
            .collect();
        let loads: Vec<Load> = (0..3).map(|_| Load::new()).collect();
        let cands = candidates(&loads, &[1.0; 3]);
        for balance in [
            Balance::RoundRobin,
            Balance::WeightedRoundRobin,
            Balance::LeastConnections,
            Balance::WeightedLeastConnections,
            Balance::FastestResponse,
            Balance::PeakEwma,
            Balance::Hash(HashKey::ClientIp),
        ] {
            let b = build(&balance, &servers);
            for _ in 0..10 {
                assert!(b.pick(&cands, &ctx()) < 3, "{balance:?}");
                assert_eq!(b.pick(&cands[1..2], &ctx()), 0, "{balance:?}");
            }
        }
    }

    #[test]
    fn min_rotating_shares_ties_evenly() {
        let counter = AtomicUsize::new(0);
        let loads: Vec<Load> = (0..4).map(|_| Load::new()).collect();
        let cands = candidates(&loads, &[1.0; 4]);
        let costs = [1.0, 0.5, 2.0, 0.5];
        let mut counts = [0; 4];
        for _ in 0..100 {
            counts[min_rotating(&cands, &counter, |c| costs[c.index])] += 1;
        }
        assert_eq!(counts, [0, 50, 0, 50]);
        let nan = min_rotating(
            &cands,
            &counter,
            |c| if c.index == 0 { f64::NAN } else { 1.0 },
        );
        assert_ne!(nan, 0);
    }
}
