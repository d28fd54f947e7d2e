//! Incidents: opened from alerts (or by hand), graded by a severity matrix, walked through a
//! lifecycle whose every step is stamped, with a timeline assembled from what the gateway
//! already records, and exported as a post-mortem in Markdown.
//!
//! It exists because the tools Ballast replaces keep incidents apart from the proxy's own
//! actions, config versions and deploys, pick severity by hand and need their timelines
//! curated. Everything here is pure: values in, values out, time passed in. The store keeps
//! incidents, the admin API and the CLI show them, and the binary feeds in alerts,
//! notifications, remediation runs and changes; none of that lives here.
//!
//! - [`severity`]: user scope × function scope → SEV1..SEV4.
//! - [`lifecycle`]: the steps detect → … → closed and which moves are allowed.
//! - [`incident`]: the incident record and the edits people make to it.
//! - [`open`]: whether an alert opens an incident, joins one, or is ignored.
//! - [`timeline`]: timeline entries from every record, ordered and deduplicated; "what changed".
//! - [`postmortem`]: the Markdown export.
//! - [`config`]: the `[incident]` config table and its checks.

pub mod config;
pub mod incident;
pub mod lifecycle;
pub mod open;
pub mod postmortem;
pub mod severity;
pub mod timeline;

pub use config::{ConfigError, IncidentConfig, IncidentSpec, OpenOnSpec};
pub use incident::{
    ActionItem, ActionKind, AlertRef, Draft, Incident, IncidentError, IncidentSummary, Note,
    OpenedBy,
};
pub use lifecycle::{Lifecycle, Status, StepStamp, TransitionError};
pub use open::{Correlator, Decision, IgnoreReason};
pub use postmortem::{render_postmortem, Impact};
pub use severity::{
    function_scope, measured_scope, user_scope_from_counts, FunctionScope, Matrix, MatrixError,
    MatrixSpec, Scope, Sev, UserScope, UserScopeSource,
};
pub use timeline::{what_changed, EntryKind, Timeline, TimelineEntry};
