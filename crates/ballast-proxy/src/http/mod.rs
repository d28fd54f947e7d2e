//! The HTTP side of the data plane: request handling from a client connection to an upstream
//! and back.

pub mod body;
pub mod exchange;
pub mod forward;
pub mod headers;
pub mod upgrade;
