//! Shared domain values for every Ballast engine.
//!
//! This crate has no I/O. It exists so that the data plane, the control plane and the
//! configuration agree on the meaning of a duration, a size or a percentage without depending on
//! each other. Durations and sizes always carry an explicit unit: a bare number in an operator's
//! file is the classic unit-confusion outage, so the parsers here refuse it and say what to write.

pub mod alert;
pub mod alerting;
pub mod changes;
pub mod command;
pub mod counters;
pub mod digest;
pub mod duration;
pub mod event;
pub mod history;
pub mod incident;
pub mod notification;
pub mod prom;
pub mod ratio;
pub mod remediation;
pub mod size;
pub mod snapshot;
pub mod talkers;
pub mod utc;

pub use alert::{AlertState, AlertTransition, Labels, Severity};
pub use alerting::{
    Ack, AlertRecord, AlertSource, AlertView, MatchOp, Matcher, MinuteRollup, Mute, NewSilence,
    Silence,
};
pub use changes::{ChangeEntry, DriftReport, MarkerError};
pub use command::{
    Command, CommandError, Issued, PurgeReport, ReloadReport, Report, RollbackReport, RoutePurge,
};
pub use counters::GatewayCounters;
pub use digest::sha256_hex;
pub use duration::{Duration, DurationError};
pub use event::{Event, HealthCause, Origin, Stamped, UnejectCause};
pub use history::{
    Change, ChangeKind, ConfigOutcome, ConfigSummary, ConfigVersion, EventQuery, Instance,
    NewChange, NewConfigVersion, RecordKind, StoredEvent,
};
pub use notification::{NewNotification, Notification, NotificationLog, NotificationState};
pub use ratio::{Ratio, RatioError};
pub use remediation::{RemediationResult, RemediationRun, RemediationStep};
pub use size::{Size, SizeError};
pub use snapshot::Snapshot;
pub use talkers::{Talker, TopTalkers};
pub use utc::UtcTime;
