//! Where a configuration comes from, so that a reload (SIGHUP, the admin API, a rollback) reads
//! it again from the same place the process started with. A rollback also writes to it:
//! [`Source::write_back`] lives in [`crate::write_back`].

use std::path::PathBuf;

use crate::{Config, ConfigError};

/// The origin of the configuration text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A file, read anew on every reload.
    File(PathBuf),
    /// Text compiled into the binary (tests; the demo writes its text to a file first).
    Embedded(&'static str),
}

/// A configuration together with the exact text it was parsed from (stored, hashed, diffed).
#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: Config,
    pub text: String,
}

impl Source {
    /// How errors name this source.
    pub fn name(&self) -> String {
        match self {
            Source::File(p) => p.display().to_string(),
            Source::Embedded(_) => "<embedded demo config>".to_string(),
        }
    }

    /// The current text.
    pub fn read(&self) -> Result<String, ConfigError> {
        match self {
            Source::File(p) => std::fs::read_to_string(p).map_err(|e| ConfigError::Io {
                file: p.display().to_string(),
                message: e.to_string(),
            }),
            Source::Embedded(text) => Ok((*text).to_string()),
        }
    }

    /// Parses and validates `text` as this source's content. The embedded demo config has no
    /// directory to keep a database in, so it gets no store unless it has a `[store]` table.
    pub fn parse(&self, text: &str) -> Result<Config, ConfigError> {
        let mut config = crate::parse(text, &self.name())?;
        if matches!(self, Source::Embedded(_)) && !config.store.as_ref().is_some_and(|s| s.explicit)
        {
            config.store = None;
        }
        Ok(config)
    }

    /// Reads and validates the current text.
    pub fn load(&self) -> Result<Loaded, ConfigError> {
        let text = self.read()?;
        let config = self.parse(&text)?;
        Ok(Loaded { config, text })
    }
}
