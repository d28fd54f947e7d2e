//! Ballast's data plane: listeners, routing, balancing, health, failover, access log, metrics.
//!
//! The entry point is [`Gateway`]: start it with a validated [`ballast_config::Config`], reload it
//! with another, drain servers, read its [`status::Status`] and metrics, and shut it down
//! gracefully. Request flow: `listener` → `http::forward` (router → upstream selection via a
//! `balancer` → pooled upstream attempt with failover) → response body streamed back, finishing
//! the request's `http::exchange::Exchange` (metrics + access log).

pub mod access_log;
pub mod balancer;
pub mod cache;
mod clock;
pub mod command;
mod counters;
pub mod discovery;
pub mod error;
pub mod events;
pub mod gateway;
pub mod health;
pub mod http;
pub mod listener;
pub mod metrics;
pub mod overrides;
pub mod resilience;
pub mod router;
pub mod shared;
pub mod stats;
pub mod status;
pub mod talkers;
pub mod upstream;
mod window;

pub use command::ReloadAttempt;
pub use gateway::{Gateway, GatewayError, ServerLookupError};
