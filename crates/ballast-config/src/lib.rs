//! Ballast's configuration: one TOML file, read in two tiers.
//!
//! [`raw`] mirrors the file exactly (serde, `deny_unknown_fields` everywhere, units mandatory);
//! [`validate`] turns it into the internal [`Config`] the engines use, with defaults filled in,
//! references resolved and impossible values refused. Every problem is reported with the file,
//! line, column and field path, plus what to write instead ([`error`]), because an operator
//! fixing a config at 3 a.m. should not have to guess.

pub mod error;
pub mod locate;
pub mod model;
pub mod raw;
pub mod raw_monitor;
pub mod redact;
pub mod source;
pub mod validate;
pub mod write_back;

use std::path::Path;

pub use error::{ConfigError, Problem};
pub use model::*;
pub use redact::redact_secrets;
pub use source::{Loaded, Source};
pub use write_back::{WriteBackError, WrittenBack};

/// Reads and validates the file at `path`.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let src = std::fs::read_to_string(path).map_err(|e| ConfigError::Io {
        file: path.display().to_string(),
        message: e.to_string(),
    })?;
    parse(&src, &path.display().to_string())
}

/// Parses and validates `src`; `file` names it in errors.
pub fn parse(src: &str, file: &str) -> Result<Config, ConfigError> {
    let raw = raw::parse(src, file)?;
    validate::validate(raw, src, file)
}
