//! Configuration errors that say where and what to write instead.

use std::fmt;

/// One thing wrong with a config file, located as precisely as the file allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Field path, e.g. `route[0].timeout.connect`.
    pub path: String,
    /// 1-based line, when the field could be found in the file.
    pub line: Option<usize>,
    /// 1-based column, when the field could be found in the file.
    pub column: Option<usize>,
    /// What is wrong, including what to write instead where there is an obvious fix.
    pub message: String,
}

/// Why a configuration was refused.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{file}: cannot read: {message}")]
    Io { file: String, message: String },
    /// The file was read but is invalid; every problem found is listed.
    #[error("{}", render(file, problems))]
    Invalid {
        file: String,
        problems: Vec<Problem>,
    },
}

impl ConfigError {
    /// The located problems (empty for I/O errors).
    pub fn problems(&self) -> &[Problem] {
        match self {
            ConfigError::Io { .. } => &[],
            ConfigError::Invalid { problems, .. } => problems,
        }
    }
}

fn render(file: &str, problems: &[Problem]) -> String {
    let mut out = String::new();
    for (i, p) in problems.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&p.located(file));
    }
    out
}

impl Problem {
    /// `file:line:column: path: message`, leaving out what is unknown.
    pub fn located(&self, file: &str) -> String {
        let mut s = file.to_string();
        if let Some(l) = self.line {
            s.push_str(&format!(":{l}"));
            if let Some(c) = self.column {
                s.push_str(&format!(":{c}"));
            }
        }
        if self.path.is_empty() {
            format!("{s}: {}", self.message)
        } else {
            format!("{s}: {}: {}", self.path, self.message)
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.located("<config>"))
    }
}
