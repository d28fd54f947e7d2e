//! Ballast data plane (under construction).
pub mod balancer;
