//! Secrets of the receivers (a webhook URL with its token, a signing key, a password) and the
//! configuration errors of the notifiers.
//!
//! A receiver's secret can be written inline, read from a file (`url_file`, `password_file`:
//! the way secrets are mounted by systemd credentials or Kubernetes) or from an environment
//! variable (`url_env`). Whatever the source, the value lives in a [`Secret`] whose `Debug`
//! and `Display` print `[redacted]`, so no log line, error or API answer can show it by
//! accident; errors name the file or the variable, never what it holds.

use std::fmt;
use std::path::{Path, PathBuf};

use thiserror::Error;

/// A secret string: `Debug` and `Display` print `[redacted]`; [`Secret::expose`] gives the
/// value to the one place that must use it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// A secret given inline in the configuration.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// Reads a file holding the secret; a trailing newline (`\n` or `\r\n`) is dropped.
    pub fn from_file(path: &Path) -> Result<Secret, SecretError> {
        let bytes = std::fs::read(path).map_err(|e| SecretError::Read {
            path: path.to_path_buf(),
            reason: e.kind().to_string(),
        })?;
        let text = String::from_utf8(bytes).map_err(|_| SecretError::NotUtf8 {
            path: path.to_path_buf(),
        })?;
        let value = text.trim_end_matches(['\n', '\r']);
        if value.is_empty() {
            return Err(SecretError::EmptyFile {
                path: path.to_path_buf(),
            });
        }
        Ok(Secret(value.to_string()))
    }

    /// Reads an environment variable holding the secret.
    pub fn from_env(name: &str) -> Result<Secret, SecretError> {
        match std::env::var(name) {
            Ok(v) if v.trim().is_empty() => Err(SecretError::EmptyEnv {
                name: name.to_string(),
            }),
            Ok(v) => Ok(Secret(v.trim_end_matches(['\n', '\r']).to_string())),
            Err(std::env::VarError::NotPresent) => Err(SecretError::MissingEnv {
                name: name.to_string(),
            }),
            Err(std::env::VarError::NotUnicode(_)) => Err(SecretError::NotUnicodeEnv {
                name: name.to_string(),
            }),
        }
    }

    /// The value itself; only for building the request that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// Read from a plain string in the configuration.
impl<'de> serde::Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Secret, D::Error> {
        String::deserialize(d).map(Secret)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Why a secret could not be loaded. Names the file or variable, never the content.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SecretError {
    #[error("cannot read the secret file {path:?}: {reason}")]
    Read { path: PathBuf, reason: String },
    #[error("the secret file {path:?} is not UTF-8 text")]
    NotUtf8 { path: PathBuf },
    #[error("the secret file {path:?} is empty")]
    EmptyFile { path: PathBuf },
    #[error("the environment variable {name} is not set")]
    MissingEnv { name: String },
    #[error("the environment variable {name} is empty")]
    EmptyEnv { name: String },
    #[error("the environment variable {name} is not valid Unicode")]
    NotUnicodeEnv { name: String },
}

/// Why a notifier could not be built from its settings. Never shows a secret.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ConfigError {
    #[error("{kind} receiver: {field}: {source}")]
    Secret {
        kind: &'static str,
        field: &'static str,
        source: SecretError,
    },
    #[error("{kind} receiver: one of {field}, {field}_file or {field}_env is required")]
    Missing {
        kind: &'static str,
        field: &'static str,
    },
    #[error("{kind} receiver: give only one of {field}, {field}_file and {field}_env")]
    Ambiguous {
        kind: &'static str,
        field: &'static str,
    },
    /// The URL does not parse; the reason never quotes it (it may carry a token).
    #[error("{kind} receiver: bad {field}: {reason}")]
    BadUrl {
        kind: &'static str,
        field: &'static str,
        reason: String,
    },
    #[error("{kind} receiver: {reason}")]
    Invalid { kind: &'static str, reason: String },
}

/// Loads the secret named `field` from whichever of the inline value, `{field}_file` and
/// `{field}_env` is given; `Ok(None)` when none is. Giving two is an error.
pub fn load_optional(
    kind: &'static str,
    field: &'static str,
    inline: Option<&Secret>,
    file: Option<&Path>,
    env: Option<&str>,
) -> Result<Option<Secret>, ConfigError> {
    let given = [inline.is_some(), file.is_some(), env.is_some()]
        .iter()
        .filter(|g| **g)
        .count();
    if given > 1 {
        return Err(ConfigError::Ambiguous { kind, field });
    }
    let wrap = |source| ConfigError::Secret {
        kind,
        field,
        source,
    };
    if let Some(v) = inline {
        return Ok(Some(v.clone()));
    }
    if let Some(path) = file {
        return Secret::from_file(path).map(Some).map_err(wrap);
    }
    if let Some(name) = env {
        return Secret::from_env(name).map(Some).map_err(wrap);
    }
    Ok(None)
}

/// Like [`load_optional`], for a secret the receiver cannot work without.
pub fn load_required(
    kind: &'static str,
    field: &'static str,
    inline: Option<&Secret>,
    file: Option<&Path>,
    env: Option<&str>,
) -> Result<Secret, ConfigError> {
    load_optional(kind, field, inline, file, env)?.ok_or(ConfigError::Missing { kind, field })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacted_everywhere() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s}"), "[redacted]");
        assert_eq!(format!("{s:?}"), "[redacted]");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn file_trims_the_trailing_newline_and_errors_name_the_file() {
        let dir = std::env::temp_dir().join(format!("ballast-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("url");
        std::fs::write(&p, "https://hooks.example/T/B/tok\r\n").unwrap();
        assert_eq!(
            Secret::from_file(&p).unwrap().expose(),
            "https://hooks.example/T/B/tok"
        );
        std::fs::write(&p, "\n").unwrap();
        assert!(matches!(
            Secret::from_file(&p),
            Err(SecretError::EmptyFile { .. })
        ));
        let missing = dir.join("nope");
        let e = Secret::from_file(&missing).unwrap_err();
        assert!(e.to_string().contains("nope"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn env_errors_name_the_variable() {
        let e = Secret::from_env("BALLAST_TEST_SURELY_UNSET_VAR").unwrap_err();
        assert_eq!(
            e.to_string(),
            "the environment variable BALLAST_TEST_SURELY_UNSET_VAR is not set"
        );
    }

    #[test]
    fn one_source_only() {
        let e =
            load_optional("slack", "url", Some(&Secret::new("a")), None, Some("X")).unwrap_err();
        assert_eq!(
            e,
            ConfigError::Ambiguous {
                kind: "slack",
                field: "url"
            }
        );
        assert!(matches!(
            load_required("slack", "url", None, None, None),
            Err(ConfigError::Missing { .. })
        ));
        assert_eq!(
            load_optional("webhook", "signing_secret", None, None, None),
            Ok(None)
        );
    }
}
