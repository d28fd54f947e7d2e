//! Policies that keep the important part of a service up while the rest is failing: the retry
//! contract (the decision in `retry`, budgets, back-off, attempt header, forbid header), flood blocking, the waiting
//! room, admission control with priority shedding, and the sorry page. They are
//! consulted by `http::forward`; each keeps its own counters for `/metrics` and shows its
//! configuration in `/api/v1/status`.

pub mod admission;
pub mod backoff;
pub mod budget;
pub mod flood;
pub mod limit;
pub mod retry;
pub mod sorry;
pub mod waiting_room;

use http::HeaderName;

/// Sent upstream with every attempt: `1` for the first, `2` for the first retry, …
pub static ATTEMPT_HEADER: HeaderName = HeaderName::from_static("ballast-attempt");
/// An upstream answer carrying this header is never retried (the header is removed before the
/// answer goes to the client).
pub static NO_RETRY_HEADER: HeaderName = HeaderName::from_static("ballast-no-retry");
