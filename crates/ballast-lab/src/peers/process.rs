//! Child processes of the lab (backends and proxies): pinned to a CPU, output captured to a
//! file, signalled by pid, and always stopped when the handle is dropped, so an interrupted run
//! leaves nothing behind on the machine.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::LabError;

/// A running child process.
pub struct Proc {
    name: String,
    child: Child,
    log: PathBuf,
}

impl Proc {
    /// Starts `cmd` pinned to `cpu` (when `taskset` exists), stdout and stderr to `dir/NAME.log`.
    pub fn spawn(
        name: &str,
        cpu: Option<usize>,
        cmd: &mut Command,
        dir: &Path,
    ) -> Result<Proc, LabError> {
        let log = dir.join(format!("{name}.log"));
        let out =
            File::create(&log).map_err(LabError::io(format!("creating {}", log.display())))?;
        let err = out
            .try_clone()
            .map_err(LabError::io(format!("opening {}", log.display())))?;
        let mut full = match cpu.filter(|_| have_taskset()) {
            Some(cpu) => {
                let mut c = Command::new("taskset");
                c.arg("-c").arg(cpu.to_string()).arg(cmd.get_program());
                c.args(cmd.get_args());
                c
            }
            None => {
                let mut c = Command::new(cmd.get_program());
                c.args(cmd.get_args());
                c
            }
        };
        for (k, v) in cmd.get_envs() {
            match v {
                Some(v) => full.env(k, v),
                None => full.env_remove(k),
            };
        }
        if let Some(d) = cmd.get_current_dir() {
            full.current_dir(d);
        }
        let child = full
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| {
                LabError::Process(format!("starting {name} ({:?}): {e}", cmd.get_program()))
            })?;
        Ok(Proc {
            name: name.to_string(),
            child,
            log,
        })
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Sends a signal; false when the process is already gone.
    pub fn signal(&self, sig: i32) -> bool {
        // SAFETY: kill(2) with a pid we own; no memory is involved.
        unsafe { libc::kill(self.pid(), sig) == 0 }
    }

    /// Whether the process has exited (reaping it if so).
    pub fn exited(&mut self) -> bool {
        !matches!(self.child.try_wait(), Ok(None))
    }

    /// Whether the process is stopped (state `T` in /proc), e.g. after SIGSTOP.
    pub fn stopped(&self) -> bool {
        proc_state(self.pid()) == Some('T')
    }

    /// Waits up to `timeout` for the process to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.exited() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        self.exited()
    }

    /// CPU time (user + system) used so far by the process and its direct children, seconds.
    pub fn cpu_seconds(&self) -> f64 {
        let mut pids = vec![self.pid()];
        pids.extend(children(self.pid()));
        let tick = clock_ticks();
        pids.iter().filter_map(|p| cpu_ticks(*p)).sum::<u64>() as f64 / tick
    }

    /// The last lines of the process's output, for error messages.
    pub fn tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// SIGTERM, then SIGKILL after a second; continues a stopped process first.
    pub fn stop(&mut self) {
        if self.exited() {
            return;
        }
        self.signal(libc::SIGCONT);
        for pid in children(self.pid()) {
            // SAFETY: plain kill(2); a stale pid at worst signals nothing.
            unsafe { libc::kill(pid, libc::SIGCONT) };
        }
        self.signal(libc::SIGTERM);
        if !self.wait_exit(Duration::from_secs(2)) {
            let kids = children(self.pid());
            let _ = self.child.kill();
            for pid in kids {
                // SAFETY: as above.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
            let _ = self.child.wait();
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop();
    }
}

fn have_taskset() -> bool {
    static HAVE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *HAVE.get_or_init(|| {
        Command::new("taskset")
            .args(["-c", "0", "true"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    })
}

fn clock_ticks() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

/// The fields of /proc/PID/stat after the command name.
fn stat_fields(pid: i32) -> Option<Vec<String>> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &s[s.rfind(')')? + 1..];
    Some(rest.split_whitespace().map(str::to_owned).collect())
}

fn proc_state(pid: i32) -> Option<char> {
    stat_fields(pid)?.first()?.chars().next()
}

fn cpu_ticks(pid: i32) -> Option<u64> {
    let f = stat_fields(pid)?;
    // After ")": state(0) ppid(1) ... utime(11) stime(12).
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

/// Direct children of `pid` (nginx and HAProxy workers).
fn children(pid: i32) -> Vec<i32> {
    let path = format!("/proc/{pid}/task/{pid}/children");
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// Pins the calling process (and the threads it creates afterwards) to `cpu`. Best effort:
/// false when the CPU does not exist or pinning is not allowed.
pub fn pin_self(cpu: usize) -> bool {
    // SAFETY: a zeroed cpu_set_t is valid; CPU_SET writes inside it; sched_setaffinity reads it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) == 0
    }
}

/// Number of CPUs this process may run on.
pub fn cpus_available() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}
