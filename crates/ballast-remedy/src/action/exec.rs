//! `exec`: run a configured command, with no shell.
//!
//! ```toml
//! do = [{ exec = { argv = ["/usr/local/bin/flush-cache", "--pool", "{{upstream}}"], timeout = "30s", output_limit = "64KiB" } }]
//! ```
//!
//! Why it is shaped this way: the argv comes from the config; label values enter only through
//! the placeholders it declares (`placeholder.rs`), and the program itself (`argv[0]`) may not
//! hold one, so an alert can choose an argument but never the program. The command runs in its
//! own process group with stdin closed; at its `timeout` the whole group is killed (a script's
//! children too), so a hung command cannot hold a remediation forever. stdout and stderr are
//! captured, each truncated to `output_limit`, and read to the end so that a chatty command
//! never blocks on a full pipe. A command that exits in time is never killed, nor is anything
//! it started: a restart script may leave a daemon behind holding the pipes, so output is read
//! for at most 250 ms after the exit and the pipes are then let go. The command gets a small
//! environment ([`KEPT_ENV`]), not Ballast's.

use std::process::Stdio;

use ballast_core::{Duration, Size};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt};

use super::ActionError;

/// The default `timeout`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// The default `output_limit` (per stream).
pub const DEFAULT_OUTPUT_LIMIT: Size = Size::bytes(64 * 1024);

/// `exec = { ... }` as written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecSpec {
    /// The program and its arguments; `{{label}}` placeholders are allowed after the program.
    pub argv: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
    /// The most bytes kept of stdout, and of stderr.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_limit: Option<Size>,
}

/// The only variables of Ballast's environment a command sees: the gateway's own (tokens,
/// secret paths) are not its business, and whatever it prints ends up in the run's record.
pub const KEPT_ENV: &[&str] = &["PATH", "HOME", "LANG", "LC_ALL", "TZ", "USER", "LOGNAME"];
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// What a command did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecReport {
    pub argv: Vec<String>,
    /// The exit code; `None` when it was killed by a signal (or at the timeout).
    pub exit_code: Option<i32>,
    pub timed_out: bool,
    pub stdout: String,
    pub stderr: String,
    /// Whether stdout or stderr was cut at the limit.
    pub truncated: bool,
}

impl ExecReport {
    /// Exit code 0 within the timeout.
    pub fn ok(&self) -> bool {
        !self.timed_out && self.exit_code == Some(0)
    }
}

/// Checks a spec at config load: a non-empty argv whose program has no placeholder.
pub(crate) fn validate_argv(argv: &[String], field: &'static str) -> Result<(), ActionError> {
    let Some(program) = argv.first() else {
        return Err(ActionError::Invalid {
            field,
            reason: "the argv is empty".into(),
        });
    };
    if program.contains("{{") {
        return Err(ActionError::Invalid {
            field,
            reason: format!("the program {program:?} may not hold a placeholder"),
        });
    }
    if program.is_empty() {
        return Err(ActionError::Invalid {
            field,
            reason: "the program is empty".into(),
        });
    }
    Ok(())
}

/// Limits a run: its timeout and the output kept per stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub timeout: std::time::Duration,
    pub output_limit: usize,
}

impl Limits {
    pub(crate) fn of(timeout: Option<Duration>, output_limit: Option<Size>) -> Self {
        Limits {
            timeout: timeout.unwrap_or(DEFAULT_TIMEOUT).get(),
            output_limit: usize::try_from(output_limit.unwrap_or(DEFAULT_OUTPUT_LIMIT).get())
                .unwrap_or(usize::MAX),
        }
    }
}

impl ExecSpec {
    pub fn limits(&self) -> Limits {
        Limits::of(self.timeout, self.output_limit)
    }
}

/// Runs `argv` (already rendered) within `limits`. Only a failure to start is an error; a
/// command that fails or times out is a report that is not [`ExecReport::ok`].
pub async fn run(argv: &[String], limits: Limits) -> Result<ExecReport, ActionError> {
    let (program, args) = argv.split_first().ok_or_else(|| ActionError::Invalid {
        field: "argv",
        reason: "the argv is empty".into(),
    })?;
    let mut command = tokio::process::Command::new(program);
    command.args(args).env_clear();
    for name in KEPT_ENV {
        if let Some(value) = std::env::var_os(name) {
            command.env(name, value);
        }
    }
    if std::env::var_os("PATH").is_none() {
        command.env("PATH", DEFAULT_PATH);
    }
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| ActionError::Spawn {
            program: program.clone(),
            reason: e.to_string(),
        })?;
    let pid = child.id();
    let (mut stdout, mut stderr) = (child.stdout.take(), child.stderr.take());
    let mut out = Capture::new(limits.output_limit);
    let mut err = Capture::new(limits.output_limit);
    let deadline = tokio::time::Instant::now() + limits.timeout;
    let mut until = deadline;
    let mut status = None;
    let (mut buf_out, mut buf_err) = ([0u8; 8192], [0u8; 8192]);
    while status.is_none() || stdout.is_some() || stderr.is_some() {
        tokio::select! {
            r = read_some(&mut stdout, &mut buf_out), if stdout.is_some() => match r {
                Some(n) => out.push(&buf_out[..n]),
                None => stdout = None,
            },
            r = read_some(&mut stderr, &mut buf_err), if stderr.is_some() => match r {
                Some(n) => err.push(&buf_err[..n]),
                None => stderr = None,
            },
            s = child.wait(), if status.is_none() => {
                status = Some(s.map_err(|e| ActionError::Io {
                    what: format!("waiting for {program}"),
                    reason: e.to_string(),
                })?);
                // A child it left behind (a daemon) may hold the pipes: read a moment more.
                until = deadline.min(tokio::time::Instant::now() + AFTER_EXIT);
            },
            () = tokio::time::sleep_until(until) => break,
        }
    }
    let timed_out = status.is_none();
    if timed_out {
        kill_group(pid);
        let _ = child.kill().await;
    }
    Ok(ExecReport {
        argv: argv.to_vec(),
        exit_code: status.and_then(|s| s.code()),
        timed_out,
        stdout: String::from_utf8_lossy(&out.kept).into_owned(),
        stderr: String::from_utf8_lossy(&err.kept).into_owned(),
        truncated: out.truncated || err.truncated,
    })
}

/// How long output is still read after the command exited.
const AFTER_EXIT: std::time::Duration = std::time::Duration::from_millis(250);

/// Kills the process group led by `pid` (the command and the children it started).
fn kill_group(pid: Option<u32>) {
    if let Some(pid) = pid.and_then(|p| i32::try_from(p).ok()).filter(|p| *p > 1) {
        // SAFETY: kill(2) has no memory effects; a negative pid names the group.
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
    }
}

/// Reads some bytes; `None` at the end of the stream (or on an error).
async fn read_some<R: AsyncRead + Unpin>(stream: &mut Option<R>, buf: &mut [u8]) -> Option<usize> {
    match stream.as_mut()?.read(buf).await {
        Ok(0) | Err(_) => None,
        Ok(n) => Some(n),
    }
}

/// The first `limit` bytes of a stream, and whether more came.
struct Capture {
    kept: Vec<u8>,
    limit: usize,
    truncated: bool,
}

impl Capture {
    fn new(limit: usize) -> Self {
        Capture {
            kept: Vec::new(),
            limit,
            truncated: false,
        }
    }

    fn push(&mut self, bytes: &[u8]) {
        let room = self.limit.saturating_sub(self.kept.len());
        if bytes.len() > room {
            self.truncated = true;
        }
        self.kept.extend_from_slice(&bytes[..bytes.len().min(room)]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    fn limits(ms: u64, out: usize) -> Limits {
        Limits {
            timeout: std::time::Duration::from_millis(ms),
            output_limit: out,
        }
    }

    #[tokio::test]
    async fn captures_exit_code_and_both_streams() {
        let r = run(
            &argv(&["sh", "-c", "echo out; echo err >&2; exit 3", "x"]),
            limits(10_000, 1024),
        )
        .await
        .unwrap();
        assert_eq!(r.exit_code, Some(3));
        assert!(!r.ok());
        assert_eq!(r.stdout, "out\n");
        assert_eq!(r.stderr, "err\n");
        assert!(!r.truncated && !r.timed_out);
        let ok = run(&argv(&["true"]), limits(10_000, 1024)).await.unwrap();
        assert!(ok.ok());
    }

    #[tokio::test]
    async fn an_argument_is_never_read_by_a_shell() {
        // `echo` gets the text as one argument: nothing after `;` runs.
        let dir = std::env::temp_dir().join(format!("remedy-exec-{}", std::process::id()));
        let marker = dir.join("ran");
        let text = format!("x; mkdir -p {}; touch {}", dir.display(), marker.display());
        let r = run(&argv(&["echo", &text]), limits(10_000, 4096))
            .await
            .unwrap();
        assert!(r.ok());
        assert_eq!(r.stdout, format!("{text}\n"));
        assert!(!marker.exists());
    }

    #[tokio::test]
    async fn output_is_truncated_but_the_pipe_drained() {
        // 1 MiB on stdout: kept to 100 bytes, and the command still ends (no full pipe).
        let r = run(
            &argv(&[
                "sh",
                "-c",
                "head -c 1048576 /dev/zero | tr '\\0' a; echo done >&2",
            ]),
            limits(20_000, 100),
        )
        .await
        .unwrap();
        assert!(r.ok(), "{r:?}");
        assert_eq!(r.stdout, "a".repeat(100));
        assert_eq!(r.stderr, "done\n");
        assert!(r.truncated);
    }

    #[tokio::test]
    async fn timeout_kills_the_command_and_its_children() {
        let dir = std::env::temp_dir().join(format!("remedy-timeout-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let pidfile = dir.join("child.pid");
        let script = format!("sleep 30 & echo $! > {}; wait", pidfile.display());
        let started = std::time::Instant::now();
        let r = run(&argv(&["sh", "-c", &script]), limits(300, 1024))
            .await
            .unwrap();
        assert!(r.timed_out && !r.ok());
        assert_eq!(r.exit_code, None);
        assert!(started.elapsed() < std::time::Duration::from_secs(10));
        // The backgrounded `sleep` went with its group.
        let child: i32 = std::fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let mut gone = false;
        for _ in 0..50 {
            let state = std::fs::read_to_string(format!("/proc/{child}/stat")).unwrap_or_default();
            // Gone, or a zombie waiting for init to reap it.
            if state.is_empty() || state.contains(") Z") {
                gone = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert!(gone, "the child {child} outlived the timeout");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn a_daemon_left_behind_is_not_killed_nor_waited_for() {
        let dir = std::env::temp_dir().join(format!("remedy-daemon-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let pidfile = dir.join("daemon.pid");
        // The background `sleep` keeps stdout open after `sh` exits.
        let script = format!("sleep 30 & echo $! > {}; echo started", pidfile.display());
        let started = std::time::Instant::now();
        let r = run(&argv(&["sh", "-c", &script]), limits(20_000, 1024))
            .await
            .unwrap();
        assert!(r.ok(), "{r:?}");
        assert_eq!(r.stdout, "started\n");
        assert!(started.elapsed() < std::time::Duration::from_secs(10));
        let daemon: i32 = std::fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let stat = std::fs::read_to_string(format!("/proc/{daemon}/stat")).unwrap_or_default();
        assert!(
            !stat.is_empty() && !stat.contains(") Z"),
            "the daemon was killed: {stat}"
        );
        // SAFETY: kill(2); the test's own child.
        unsafe {
            libc::kill(daemon, libc::SIGKILL);
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn the_environment_is_not_inherited() {
        // SAFETY: set before any command in this test reads it; no other test reads this name.
        unsafe { std::env::set_var("BALLAST_REMEDY_TEST_SECRET", "s3cret") };
        let r = run(&argv(&["env"]), limits(10_000, 65_536)).await.unwrap();
        assert!(r.ok());
        assert!(!r.stdout.contains("s3cret"), "{}", r.stdout);
        assert!(r.stdout.contains("PATH="), "{}", r.stdout);
    }

    #[tokio::test]
    async fn a_missing_program_is_an_error() {
        let e = run(&argv(&["/nonexistent/program"]), limits(1000, 10))
            .await
            .unwrap_err();
        assert!(matches!(e, ActionError::Spawn { .. }), "{e}");
    }

    #[test]
    fn the_program_may_not_be_a_placeholder() {
        assert!(validate_argv(&argv(&["{{cmd}}", "x"]), "exec.argv").is_err());
        assert!(validate_argv(&[], "exec.argv").is_err());
        assert!(validate_argv(&argv(&["systemctl", "restart", "{{unit}}"]), "exec.argv").is_ok());
    }
}
