//! The retry decision, as one pure function: what an attempt came to, the route's policy, how
//! many attempts were made and how much of the deadline is gone → retry after a wait (paid from
//! the retry budgets or free), or stop and say why.
//!
//! `http::forward` runs the attempts; this is only the rule, so that every branch of the retry
//! contract is a unit test here rather than a scenario with real servers:
//!
//! ```text
//!   outcome                    retried when                                   wait        paid
//!   nothing reached the server on_connect_failure                             none        no
//!   reset before a response    on_reset, replayable request                   back-off    yes
//!   no response head in time   on_timeout, replayable request                 back-off    yes
//!   answer with a status       status in on_status, replayable request,       Retry-After yes
//!                              no Ballast-No-Retry, Retry-After ≤ its max     or back-off
//!   anything else              never
//! ```
//! and in every case only while attempts are left and the wait ends before the route's total
//! deadline. Whether the budgets grant a paid retry, and whether another server is free, is
//! decided by the caller at the next attempt.

use std::time::Duration;

use ballast_config::RetryPolicy;

/// What one attempt came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The server answered with this status; `retry_after` is its `Retry-After` (seconds form)
    /// and `no_retry` whether it sent `Ballast-No-Retry`.
    Answer {
        status: u16,
        retry_after: Option<Duration>,
        no_retry: bool,
    },
    /// Nothing reached the server: the connection could not be opened, or a pooled one was
    /// found dead before the request left.
    NothingSent,
    /// The connection closed after the request was sent, before any response byte.
    Reset,
    /// No response head within the response timeout.
    Timeout,
    /// Any other failure after the request was sent (the client's upload broke, a bad answer).
    Failed,
}

/// Why there is no retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// The outcome is not one the policy retries (a status not listed, a 2xx, a failure kind
    /// not enabled).
    NotListed,
    /// The request cannot be sent again: not idempotent, or its body was not kept.
    NotReplayable,
    /// The server said `Ballast-No-Retry`.
    Forbidden,
    /// The server's `Retry-After` is longer than the policy waits.
    RetryAfterTooLong,
    /// No attempt is left.
    NoAttemptsLeft,
    /// The wait would end past the route's total deadline.
    PastDeadline,
}

/// What to do after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Try again after `wait`; `paid`: the retry must be granted by the retry budgets.
    Retry {
        wait: Duration,
        paid: bool,
    },
    Stop(Stop),
}

/// Where the request stands when an attempt ends.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    /// Attempts made so far, this one included (the first attempt is 1).
    pub attempts: u32,
    /// Time since the request arrived.
    pub elapsed: Duration,
    /// The route's total deadline, from the request's arrival.
    pub deadline: Duration,
    /// Whether the request may be sent again once it reached a server: idempotent, with a
    /// body that was kept (or none).
    pub replayable: bool,
}

/// The decision after an attempt. `backoff` gives the jittered back-off for this attempt; it is
/// called only when a back-off is the wait (so a plain success draws no random number).
pub fn decide(
    outcome: Outcome,
    policy: &RetryPolicy,
    at: Progress,
    backoff: impl FnOnce() -> Duration,
) -> Decision {
    let (wait, paid) = match outcome {
        Outcome::NothingSent if policy.on_connect_failure => (Duration::ZERO, false),
        Outcome::NothingSent => return Decision::Stop(Stop::NotListed),
        Outcome::Reset | Outcome::Timeout | Outcome::Failed => {
            let listed = match outcome {
                Outcome::Reset => policy.on_reset,
                Outcome::Timeout => policy.on_timeout,
                _ => false,
            };
            if !listed {
                return Decision::Stop(Stop::NotListed);
            }
            if !at.replayable {
                return Decision::Stop(Stop::NotReplayable);
            }
            (backoff(), true)
        }
        Outcome::Answer {
            status,
            retry_after,
            no_retry,
        } => {
            if !policy.on_status.contains(&status) {
                return Decision::Stop(Stop::NotListed);
            }
            if !at.replayable {
                return Decision::Stop(Stop::NotReplayable);
            }
            if no_retry {
                return Decision::Stop(Stop::Forbidden);
            }
            match retry_after {
                Some(d) if d <= policy.retry_after_max => (d, true),
                Some(_) => return Decision::Stop(Stop::RetryAfterTooLong),
                None => (backoff(), true),
            }
        }
    };
    if at.attempts >= policy.attempts {
        return Decision::Stop(Stop::NoAttemptsLeft);
    }
    if at.elapsed + wait >= at.deadline {
        return Decision::Stop(Stop::PastDeadline);
    }
    Decision::Retry { wait, paid }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn policy() -> RetryPolicy {
        RetryPolicy {
            on_timeout: true,
            ..RetryPolicy::default()
        }
    }

    fn first() -> Progress {
        Progress {
            attempts: 1,
            elapsed: 10 * MS,
            deadline: Duration::from_secs(30),
            replayable: true,
        }
    }

    fn answer(status: u16) -> Outcome {
        Outcome::Answer {
            status,
            retry_after: None,
            no_retry: false,
        }
    }

    fn no_backoff() -> Duration {
        panic!("no back-off may be drawn here")
    }

    #[test]
    fn a_connect_failure_is_retried_at_once_and_free_for_any_request() {
        let at = Progress {
            replayable: false,
            ..first()
        };
        assert_eq!(
            decide(Outcome::NothingSent, &policy(), at, no_backoff),
            Decision::Retry {
                wait: Duration::ZERO,
                paid: false
            }
        );
        let off = RetryPolicy {
            on_connect_failure: false,
            ..policy()
        };
        assert_eq!(
            decide(Outcome::NothingSent, &off, at, no_backoff),
            Decision::Stop(Stop::NotListed)
        );
    }

    #[test]
    fn resets_and_timeouts_are_paid_after_a_back_off_for_replayable_requests_only() {
        for o in [Outcome::Reset, Outcome::Timeout] {
            assert_eq!(
                decide(o, &policy(), first(), || 40 * MS),
                Decision::Retry {
                    wait: 40 * MS,
                    paid: true
                }
            );
            let post = Progress {
                replayable: false,
                ..first()
            };
            assert_eq!(
                decide(o, &policy(), post, || 40 * MS),
                Decision::Stop(Stop::NotReplayable)
            );
        }
        // The default policy does not retry timeouts.
        assert_eq!(
            decide(
                Outcome::Timeout,
                &RetryPolicy::default(),
                first(),
                no_backoff
            ),
            Decision::Stop(Stop::NotListed)
        );
        assert_eq!(
            decide(Outcome::Failed, &policy(), first(), no_backoff),
            Decision::Stop(Stop::NotListed)
        );
    }

    #[test]
    fn listed_statuses_are_retried_others_and_successes_are_not() {
        assert_eq!(
            decide(answer(503), &policy(), first(), || 25 * MS),
            Decision::Retry {
                wait: 25 * MS,
                paid: true
            }
        );
        for status in [200, 404, 500] {
            assert_eq!(
                decide(answer(status), &policy(), first(), no_backoff),
                Decision::Stop(Stop::NotListed),
                "{status}"
            );
        }
        let post = Progress {
            replayable: false,
            ..first()
        };
        assert_eq!(
            decide(answer(502), &policy(), post, no_backoff),
            Decision::Stop(Stop::NotReplayable)
        );
    }

    #[test]
    fn the_server_can_forbid_a_retry_or_set_the_wait_within_the_policy_s_maximum() {
        let forbidden = Outcome::Answer {
            status: 503,
            retry_after: None,
            no_retry: true,
        };
        assert_eq!(
            decide(forbidden, &policy(), first(), no_backoff),
            Decision::Stop(Stop::Forbidden)
        );
        let p = RetryPolicy {
            retry_after_max: Duration::from_secs(2),
            ..policy()
        };
        let after = |secs| Outcome::Answer {
            status: 503,
            retry_after: Some(Duration::from_secs(secs)),
            no_retry: false,
        };
        assert_eq!(
            decide(after(2), &p, first(), no_backoff),
            Decision::Retry {
                wait: Duration::from_secs(2),
                paid: true
            }
        );
        assert_eq!(
            decide(after(3), &p, first(), no_backoff),
            Decision::Stop(Stop::RetryAfterTooLong)
        );
    }

    #[test]
    fn attempts_and_the_deadline_bound_every_retry() {
        let last = Progress {
            attempts: 3,
            ..first()
        };
        assert_eq!(
            decide(Outcome::NothingSent, &policy(), last, no_backoff),
            Decision::Stop(Stop::NoAttemptsLeft)
        );
        let late = Progress {
            elapsed: Duration::from_secs(29) + 980 * MS,
            ..first()
        };
        assert_eq!(
            decide(Outcome::Reset, &policy(), late, || 20 * MS),
            Decision::Stop(Stop::PastDeadline),
            "a wait that ends exactly at the deadline is too late"
        );
        assert_eq!(
            decide(Outcome::Reset, &policy(), late, || 19 * MS),
            Decision::Retry {
                wait: 19 * MS,
                paid: true
            }
        );
    }
}
