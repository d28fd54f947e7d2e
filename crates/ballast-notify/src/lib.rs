//! Notifications: telling the right person, once, in seconds.
//!
//! Every receiver kind (webhook, Slack, Dooray, email, Telegram, PagerDuty) is one module behind the one
//! [`Notifier`] trait, and renders the same [`Message`]: a group of alerts (a storm is one
//! message, never one post per alert) with what, where, the value against its threshold,
//! since when, and links. Routing (which receivers, how alerts are grouped and when they are
//! sent) and delivery (the persisted outbox, retries with back-off, rate limits) decide when
//! `send` is called; a notifier only sends and says how it went, classifying failures as worth
//! retrying (with the receiver's own `Retry-After` when it gave one) or not.

pub mod backoff;
pub mod delivery;
pub mod dispatch;
pub mod dooray;
pub mod email;
pub mod http;
pub mod message;
pub mod notice;
pub mod notifier;
pub mod outbox;
pub mod pagerduty;
pub mod plan;
pub mod receiver;
pub mod render;
pub mod route;
pub mod secret;
pub mod service;
pub mod slack;
pub mod telegram;
pub mod template;
pub mod webhook;

pub use backoff::{Backoff, RateError, RateSpec, Retry, TokenBucket};
pub use delivery::{Delivery, StoreAccess, TargetStats};
pub use message::{Locale, Message, MessageAlert, MessageStatus};
pub use notice::Notice;
pub use notifier::{BoxFuture, Delivered, Notifier, SendError};
pub use outbox::{after_send, dedup_key, escalation_dedup_key, new_notification, Outcome};
pub use plan::{NotifyPlan, PlanError};
pub use receiver::{ReceiverError, ReceiverSpec, Receivers, Target};
pub use route::{EscalateSpec, Route, RouteError, RouteSpec, Routes};
pub use secret::{ConfigError, Secret, SecretError};
pub use service::{AlertSource, Notifications, TestError, TestResult};
pub use template::{Template, TemplateError};
