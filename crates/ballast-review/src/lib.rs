//! The threshold review: once a week, each alert rule is set against the per-minute history of
//! the value it watches and against its own firing history.
//!
//! It exists because operators' thresholds go stale: traffic grows, a disk is replaced, a
//! service gets faster, and a threshold picked on day one either fires on every normal peak
//! (people learn to ignore it) or sits so far out that it could not have fired on anything seen.
//! The review says which, proposes new values, and says why in numbers a person can check.
//!
//! Everything here is pure: no I/O, no clock, no async. The caller reads the history from the
//! store, picks the window and passes values in; the report comes out, as data and as Markdown.
//!
//! - [`input`]: what the caller passes in: the rule, its thresholds, samples and firings.
//! - [`stats`]: nearest-rank percentiles and the 3-significant-digit rounding.
//! - [`propose`]: proposed thresholds and the reasoning behind each.
//! - [`flags`]: no data, never fired, always firing, noisy.
//! - [`report`]: the per-rule report and [`review`].
//! - [`mod@markdown`]: the report as Markdown for people.

pub mod flags;
pub mod input;
pub mod markdown;
pub mod propose;
pub mod report;
pub mod stats;

pub use ballast_core::Severity;
pub use flags::Flag;
pub use input::{Direction, Firing, RuleInput, Threshold, Window};
pub use markdown::markdown;
pub use propose::Proposal;
pub use report::{review, Report, RuleReport};
pub use stats::{percentiles, round3, Percentiles};
