//! Load-balancing algorithms behind one small trait.
//!
//! The pool decides *which* servers may take a request (health, drain, ejection, backup);
//! a [`Balancer`] only decides *which of those* gets it. Keeping eligibility out of the
//! algorithms means every algorithm automatically respects failover, and each one is a
//! small, separately testable file.

use std::net::{IpAddr, SocketAddr};

use ballast_config::Balance;
use http::HeaderMap;

mod hash;
mod least_conn;
mod load;
mod peak_ewma;
mod fastest;
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
    todo!("{balance:?} {servers:?}")
}
