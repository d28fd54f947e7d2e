//! The one trait every receiver kind implements, and how a send went.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use thiserror::Error;

use crate::message::Message;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What the receiver said when it took the message.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivered {
    /// The receiver's answer in a few words (`200 ok`, `250 2.0.0 queued as 1A2B`).
    pub answer: String,
}

/// Why a send failed, and whether trying again can help. Messages never contain secrets
/// (a webhook URL's token, a password): notifiers name the receiver, not its address.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum SendError {
    /// Worth trying again: the receiver was unreachable, timed out, answered 5xx or 429.
    /// `retry_after` is the receiver's own wait (Slack's `Retry-After`), when it gave one.
    #[error("{reason}")]
    Retry {
        reason: String,
        retry_after: Option<Duration>,
    },
    /// Trying again will not help: the receiver refused the message (4xx), or the
    /// notifier's settings are wrong.
    #[error("{reason}")]
    Permanent { reason: String },
}

impl SendError {
    pub fn retry(reason: impl Into<String>) -> Self {
        SendError::Retry {
            reason: reason.into(),
            retry_after: None,
        }
    }

    pub fn permanent(reason: impl Into<String>) -> Self {
        SendError::Permanent {
            reason: reason.into(),
        }
    }

    pub fn is_retryable(&self) -> bool {
        matches!(self, SendError::Retry { .. })
    }
}

/// One receiver kind.
pub trait Notifier: Send + Sync {
    /// The kind's name as written in `[[receiver]]` (`webhook`, `slack`, `email`...).
    fn kind(&self) -> &'static str;
    /// Sends one message. Delivery bounds it with a timeout and drops the future when it
    /// expires.
    fn send<'a>(&'a self, message: &'a Message) -> BoxFuture<'a, Result<Delivered, SendError>>;
}
