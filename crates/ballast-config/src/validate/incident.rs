//! `[incident]`: checked by `ballast-incident` with the rest of the file, so an unknown
//! receiver, a bad `open_on` regex, a zero `join_window` or a matrix that grades a wider
//! outage milder refuses the start or the reload at the key's line, instead of surfacing in
//! the middle of an incident.
//!
//! The spec is kept as written (it is `Clone + PartialEq`, the compiled form is not); the
//! engine compiles it again, which cannot fail once this check passed.

use std::collections::BTreeSet;

use ballast_incident::{ConfigError, IncidentSpec};

use super::Checker;

pub(super) fn check(
    c: &mut Checker,
    spec: IncidentSpec,
    receivers: &BTreeSet<String>,
) -> IncidentSpec {
    if let Err(e) = spec.compile(receivers) {
        let path = match &e {
            ConfigError::Matcher { name, .. } => format!("incident.open_on.match.{name}"),
            ConfigError::UnknownReceiver(_) | ConfigError::DuplicateReceiver(_) => {
                "incident.receivers".into()
            }
            ConfigError::ZeroJoinWindow | ConfigError::LongJoinWindow { .. } => {
                "incident.join_window".into()
            }
            ConfigError::BadLabel { key, .. } => format!("incident.{key}"),
            ConfigError::Matrix(ballast_incident::severity::MatrixError::NotMonotonic {
                user,
                function,
                ..
            }) => format!("incident.matrix.{user}.{function}"),
        };
        // The crate's messages start with the key; the problem already carries it.
        let text = e.to_string();
        let message = text
            .strip_prefix(&format!("{path}: "))
            .map_or(text.clone(), str::to_string);
        c.fail(path, message);
    }
    spec
}
