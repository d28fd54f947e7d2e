//! Health checking: active probes run here; passive ejection lives in
//! [`crate::upstream::server::ServerState::record_outcome`] because it is fed by requests.

pub mod active;
