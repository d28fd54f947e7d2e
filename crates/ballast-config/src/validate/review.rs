//! `[review]`: when the threshold review runs by itself, over how much history, and who is
//! told. Checked here so a typo in the receiver or a window the store cannot hold refuses the
//! config at the key's line.
//!
//! ```toml
//! [review]
//! every = "7d"          # default; the first run is one `every` after start
//! since = "30d"         # default: the history each review reads
//! receiver = "web-lead" # optional: sent a summary when a review flags a rule
//! enabled = true        # default; false runs it only on demand (`ballast review`)
//! ```

use std::collections::BTreeSet;

use crate::model::ReviewPlan;
use crate::raw::RawReview;

use super::Checker;

const HOUR: std::time::Duration = std::time::Duration::from_secs(3600);
/// The shortest `every`: a review reads weeks of history, so more often is only for trying it.
const MIN_EVERY: std::time::Duration = std::time::Duration::from_secs(10);
const MAX_SINCE: std::time::Duration = std::time::Duration::from_secs(400 * 86_400);

pub(super) fn plan(
    c: &mut Checker,
    raw: Option<RawReview>,
    receivers: &BTreeSet<String>,
) -> ReviewPlan {
    let d = ReviewPlan::default();
    let Some(raw) = raw else {
        return d;
    };
    let every = raw.every.map_or(d.every, |v| v.get());
    let since = raw.since.map_or(d.since, |v| v.get());
    if every < MIN_EVERY {
        c.fail(
            "review.every",
            "must be at least 10s: a review reads weeks of history",
        );
    }
    if since < HOUR || since > MAX_SINCE {
        c.fail("review.since", "must be from 1h to 400d");
    }
    if let Some(r) = &raw.receiver {
        if !receivers.contains(r) {
            c.fail(
                "review.receiver",
                format!(
                    "receiver {r:?} is not defined; add a [[receiver]] named {r:?} or fix the name"
                ),
            );
        }
    }
    ReviewPlan {
        every,
        since,
        receiver: raw.receiver,
        enabled: raw.enabled.unwrap_or(true),
    }
}
