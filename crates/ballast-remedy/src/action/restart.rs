//! `restart`: start a service again, through its service manager's command or by a signal to
//! the pid in its pid file.
//!
//! ```toml
//! do = [{ restart = { command = ["systemctl", "restart", "app@{{port}}"] } }]
//! do = [{ restart = { pid_file = "/run/app.pid", signal = "HUP" } }]   # signal: TERM by default
//! ```
//!
//! A signal restarts only with help: `TERM` (the default) stops the process and relies on its
//! supervisor (systemd `Restart=`, runit, a container runtime) to start it again; `HUP` asks a
//! daemon that supports it to reload in place. Without a supervisor, use `command`.
//!
//! Exactly one of `command` and `pid_file`. A command runs like `exec` (no shell, timeout,
//! captured output). A pid file is read (at most 64 bytes) and must hold one pid above 1: a
//! pid of 0, 1 or a negative number would signal a process group, init or every process, so it
//! is refused rather than sent. Signals are named (`TERM`, `HUP`, `INT`, `QUIT`, `KILL`, `USR1`,
//! `USR2`), checked at load. In dry-run the pid file is still read, so the record says which
//! pid would have been signalled.

use std::io::Read;

use ballast_core::{Duration, Size};
use serde::{Deserialize, Serialize};

use super::exec::{self, ExecReport, Limits};
use super::ActionError;

/// `restart = { ... }` as written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestartSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid_file: Option<String>,
    /// The signal sent to the pid file's process; `TERM` by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<String>,
    /// For `command`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
    /// For `command`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_limit: Option<Size>,
}

/// What a signal restart did (or would do).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignalReport {
    pub pid_file: String,
    pub pid: i32,
    pub signal: String,
    /// False in dry-run.
    pub sent: bool,
}

/// What a restart did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "by", rename_all = "snake_case")]
pub enum RestartReport {
    Command(ExecReport),
    /// Dry-run of a command: what would have run.
    WouldRun {
        argv: Vec<String>,
    },
    Signal(SignalReport),
}

const SIGNALS: &[(&str, libc::c_int)] = &[
    ("TERM", libc::SIGTERM),
    ("HUP", libc::SIGHUP),
    ("INT", libc::SIGINT),
    ("QUIT", libc::SIGQUIT),
    ("KILL", libc::SIGKILL),
    ("USR1", libc::SIGUSR1),
    ("USR2", libc::SIGUSR2),
];

/// The number of a signal name (`TERM` or `SIGTERM`).
pub fn signal_number(name: &str) -> Option<libc::c_int> {
    let n = name.strip_prefix("SIG").unwrap_or(name);
    SIGNALS.iter().find(|(s, _)| *s == n).map(|(_, v)| *v)
}

impl RestartSpec {
    fn signal_name(&self) -> &str {
        self.signal.as_deref().unwrap_or("TERM")
    }

    /// Checks the spec at config load.
    pub(crate) fn validate(&self) -> Result<(), ActionError> {
        let invalid = |field, reason: &str| ActionError::Invalid {
            field,
            reason: reason.to_string(),
        };
        match (&self.command, &self.pid_file) {
            (Some(argv), None) => {
                exec::validate_argv(argv, "restart.command")?;
                if self.signal.is_some() {
                    return Err(invalid("restart.signal", "a signal goes with pid_file"));
                }
            }
            (None, Some(path)) => {
                if !path.starts_with('/') {
                    return Err(invalid("restart.pid_file", "must be an absolute path"));
                }
                if signal_number(self.signal_name()).is_none() {
                    return Err(ActionError::Invalid {
                        field: "restart.signal",
                        reason: format!(
                            "{:?} is not one of TERM, HUP, INT, QUIT, KILL, USR1, USR2",
                            self.signal_name()
                        ),
                    });
                }
            }
            _ => {
                return Err(invalid(
                    "restart",
                    "write exactly one of `command` and `pid_file`",
                ))
            }
        }
        Ok(())
    }

    /// Carries out the (rendered) spec.
    pub async fn apply(&self, dry_run: bool) -> Result<RestartReport, ActionError> {
        if let Some(argv) = &self.command {
            if dry_run {
                return Ok(RestartReport::WouldRun { argv: argv.clone() });
            }
            let limits = Limits::of(self.timeout, self.output_limit);
            return exec::run(argv, limits).await.map(RestartReport::Command);
        }
        let path = self
            .pid_file
            .as_deref()
            .ok_or_else(|| ActionError::Invalid {
                field: "restart",
                reason: "write exactly one of `command` and `pid_file`".into(),
            })?;
        let name = self.signal_name();
        let signal = signal_number(name).ok_or_else(|| ActionError::Invalid {
            field: "restart.signal",
            reason: format!("{name:?} is not a known signal"),
        })?;
        let pid = read_pid(path)?;
        if !dry_run {
            // SAFETY: kill(2) has no memory effects; `pid` is > 1, so it names one process.
            let rc = unsafe { libc::kill(pid, signal) };
            if rc != 0 {
                return Err(ActionError::Io {
                    what: format!("sending {name} to pid {pid} from {path}"),
                    reason: std::io::Error::last_os_error().to_string(),
                });
            }
        }
        Ok(RestartReport::Signal(SignalReport {
            pid_file: path.to_string(),
            pid,
            signal: name.trim_start_matches("SIG").to_string(),
            sent: !dry_run,
        }))
    }
}

/// Reads one pid (> 1) from a pid file.
pub fn read_pid(path: &str) -> Result<i32, ActionError> {
    let bad = |reason: String| ActionError::PidFile {
        path: path.to_string(),
        reason,
    };
    let mut text = String::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(64).read_to_string(&mut text))
        .map_err(|e| bad(e.to_string()))?;
    let pid: i32 = text
        .trim()
        .parse()
        .map_err(|_| bad(format!("{:?} is not a pid", text.trim())))?;
    if pid <= 1 {
        return Err(bad(format!(
            "pid {pid} would signal more than one service process"
        )));
    }
    Ok(pid)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("remedy-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn pid_spec(path: &std::path::Path, signal: Option<&str>) -> RestartSpec {
        RestartSpec {
            command: None,
            pid_file: Some(path.display().to_string()),
            signal: signal.map(str::to_string),
            timeout: None,
            output_limit: None,
        }
    }

    #[tokio::test]
    async fn signal_to_the_pid_file_stops_the_process() {
        let dir = temp_dir("restart-sig");
        let mut child = tokio::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pidfile = dir.join("app.pid");
        std::fs::write(&pidfile, format!("{}\n", child.id().unwrap())).unwrap();
        let spec = pid_spec(&pidfile, None);
        spec.validate().unwrap();

        // Dry-run reads the pid and sends nothing.
        let dry = spec.apply(true).await.unwrap();
        let RestartReport::Signal(s) = &dry else {
            panic!("{dry:?}")
        };
        assert!(!s.sent);
        assert_eq!(s.pid, i32::try_from(child.id().unwrap()).unwrap());
        assert!(child.try_wait().unwrap().is_none(), "dry-run signalled");

        let done = spec.apply(false).await.unwrap();
        assert!(
            matches!(done, RestartReport::Signal(SignalReport { sent: true, ref signal, .. }) if signal == "TERM")
        );
        let status = tokio::time::timeout(std::time::Duration::from_secs(10), child.wait())
            .await
            .unwrap()
            .unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(libc::SIGTERM));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn command_restart_runs_the_command() {
        let dir = temp_dir("restart-cmd");
        let marker = dir.join("restarted");
        let spec = RestartSpec {
            command: Some(vec!["touch".into(), marker.display().to_string()]),
            pid_file: None,
            signal: None,
            timeout: None,
            output_limit: None,
        };
        spec.validate().unwrap();
        let dry = spec.apply(true).await.unwrap();
        assert!(matches!(dry, RestartReport::WouldRun { .. }));
        assert!(!marker.exists());
        let RestartReport::Command(r) = spec.apply(false).await.unwrap() else {
            panic!("not a command report")
        };
        assert!(r.ok());
        assert!(marker.exists());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn dangerous_or_bad_pid_files_are_refused() {
        let dir = temp_dir("restart-bad");
        for (text, why) in [
            ("1", "init"),
            ("0", "own group"),
            ("-1", "every process"),
            ("abc", "garbage"),
            ("", "empty"),
        ] {
            let p = dir.join("p.pid");
            std::fs::write(&p, text).unwrap();
            assert!(
                matches!(
                    read_pid(&p.display().to_string()),
                    Err(ActionError::PidFile { .. })
                ),
                "{why}"
            );
        }
        assert!(read_pid("/nonexistent/x.pid").is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn validation() {
        let p = std::path::Path::new("/run/app.pid");
        assert!(pid_spec(p, Some("HUP")).validate().is_ok());
        assert!(pid_spec(p, Some("SIGUSR1")).validate().is_ok());
        assert!(pid_spec(p, Some("STOPPLZ")).validate().is_err());
        assert!(pid_spec(std::path::Path::new("app.pid"), None)
            .validate()
            .is_err());
        let mut both = pid_spec(p, None);
        both.command = Some(vec!["true".into()]);
        assert!(both.validate().is_err());
        let mut neither = pid_spec(p, None);
        neither.pid_file = None;
        assert!(neither.validate().is_err());
    }
}
