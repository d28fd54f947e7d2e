//! Finding a Python that can run a real SMTP server (aiosmtpd) for the email tests, shared by
//! `ballast-notify`'s email tests and the binary's notification tests (included by path).

use std::path::PathBuf;
use std::process::{Command, Stdio};

/// A Python that can import aiosmtpd, or `None` (the test then passes, saying so) unless
/// `BALLAST_REQUIRE_SMTP` is set, in which case its absence fails the test. Debian's
/// `/usr/bin/python3` comes before a `python3` on PATH, which a pyenv or venv may shadow.
pub fn python() -> Option<PathBuf> {
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(p) = std::env::var_os("BALLAST_PYTHON") {
        candidates.push(p.into());
    }
    candidates.push("/usr/bin/python3".into());
    candidates.push("python3".into());
    let found = candidates.into_iter().find(|p| {
        Command::new(p)
            .args(["-c", "import aiosmtpd"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    });
    if found.is_none() {
        assert!(
            std::env::var_os("BALLAST_REQUIRE_SMTP").is_none(),
            "BALLAST_REQUIRE_SMTP is set but no python3 can import aiosmtpd; install the Debian package python3-aiosmtpd"
        );
        eprintln!(
            "SKIPPED: no python3 can import aiosmtpd; install the Debian package python3-aiosmtpd, or set BALLAST_REQUIRE_SMTP=1 to make its absence fail"
        );
    }
    found
}
