//! The `process` probe: how many processes match, and how much memory they hold.
//!
//! It exists for the seeds' "alarm on minimums": a daemon that died, or a worker pool that
//! shrank, is found by counting, and a `min` rule on `count` fires when the count falls (a
//! count of 0 is reported, not an error, so the rule sees it). `rss_bytes`, the sum of the
//! matches' resident memory, shows a leak as steady growth.
//!
//! A process is selected by exactly one of:
//! - `name`: its exact `/proc/PID/comm` (the kernel keeps at most 15 bytes of it);
//! - `cmdline`: a regex searched in its command line, arguments joined by spaces;
//! - `pid_file`: the pid written in a file; an absent file, an empty one or a dead pid count 0.
//!
//! Processes that have exited but are not yet reaped (zombies) are not counted.

use std::path::PathBuf;
use std::sync::Arc;

use ballast_core::Labels;
use regex::Regex;
use serde::Deserialize;

use super::procfs;
use super::{BoxFuture, Outcome, Probe, SpecError};

/// The longest `comm` the kernel keeps (TASK_COMM_LEN − 1).
const COMM_MAX: usize = 15;
/// At most this many pids are listed in the outcome's detail.
const DETAIL_PIDS: usize = 50;

/// The kind-specific keys of a `kind = "process"` monitor.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcessSpec {
    /// The exact process name (`/proc/PID/comm`), written `process = "nginx"`: the monitor's
    /// own `name` key is its name.
    #[serde(default, rename = "process")]
    pub name: Option<String>,
    #[serde(default)]
    pub cmdline: Option<String>,
    #[serde(default)]
    pub pid_file: Option<PathBuf>,
}

impl ProcessSpec {
    pub fn validate(&self) -> Result<(), SpecError> {
        self.selector().map(|_| ())
    }

    fn selector(&self) -> Result<Selector, SpecError> {
        match (&self.name, &self.cmdline, &self.pid_file) {
            (Some(name), None, None) => {
                validate_comm("process", name)?;
                Ok(Selector::Name(name.clone()))
            }
            (None, Some(re), None) => {
                if re.is_empty() {
                    return Err(SpecError::new("cmdline", "is empty"));
                }
                Regex::new(re)
                    .map(Selector::Cmdline)
                    .map_err(|e| SpecError::new("cmdline", format!("not a valid regex: {e}")))
            }
            (None, None, Some(path)) => {
                if !path.is_absolute() {
                    return Err(SpecError::new(
                        "pid_file",
                        format!("`{}` is not an absolute path", path.display()),
                    ));
                }
                Ok(Selector::PidFile(path.clone()))
            }
            (None, None, None) => Err(SpecError::new(
                "process",
                "one of process, cmdline or pid_file is required",
            )),
            _ => Err(SpecError::new(
                if self.name.is_some() {
                    "process"
                } else {
                    "cmdline"
                },
                "give only one of process, cmdline or pid_file",
            )),
        }
    }
}

/// Checks a process name as `/proc/PID/comm` can hold it.
pub(crate) fn validate_comm(field: &str, name: &str) -> Result<(), SpecError> {
    if name.is_empty() {
        return Err(SpecError::new(field, "a process name is empty"));
    }
    if name.contains('/') || name.contains('\n') {
        return Err(SpecError::new(
            field,
            format!("`{name}` is not a process name (no `/` or newline)"),
        ));
    }
    if name.len() > COMM_MAX {
        return Err(SpecError::new(
            field,
            format!(
                "`{name}` is longer than the {COMM_MAX} bytes the kernel keeps of a process \
                 name, so it can never match; use cmdline instead"
            ),
        ));
    }
    Ok(())
}

#[derive(Debug, Clone)]
enum Selector {
    Name(String),
    Cmdline(Regex),
    PidFile(PathBuf),
}

/// The `process` probe.
pub struct ProcessProbe {
    selector: Arc<Selector>,
}

impl ProcessProbe {
    pub fn new(spec: ProcessSpec) -> Result<ProcessProbe, SpecError> {
        Ok(ProcessProbe {
            selector: Arc::new(spec.selector()?),
        })
    }

    async fn measure(&self) -> Outcome {
        let selector = Arc::clone(&self.selector);
        match tokio::task::spawn_blocking(move || find(&selector)).await {
            Ok(Ok(found)) => {
                let mut out = Outcome::default();
                out.push("count", Labels::new(), found.len() as f64);
                let rss = found
                    .iter()
                    .fold(0u64, |a, p| a.saturating_add(p.rss_bytes));
                out.push("rss_bytes", Labels::new(), rss as f64);
                let pids: Vec<u32> = found.iter().map(|p| p.pid).take(DETAIL_PIDS).collect();
                out.detail = serde_json::json!({ "pids": pids });
                out
            }
            Ok(Err(e)) => Outcome::failed(e),
            Err(e) => Outcome::failed(format!("process probe task failed: {e}")),
        }
    }
}

impl Probe for ProcessProbe {
    fn kind(&self) -> &'static str {
        "process"
    }

    fn run(&self) -> BoxFuture<'_, Outcome> {
        Box::pin(self.measure())
    }
}

/// One live process that matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Found {
    pid: u32,
    rss_bytes: u64,
}

fn find(selector: &Selector) -> Result<Vec<Found>, String> {
    match selector {
        Selector::PidFile(path) => {
            let text = match std::fs::read_to_string(path) {
                Ok(t) => t,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
                Err(e) => return Err(format!("{}: {e}", path.display())),
            };
            let text = text.trim();
            if text.is_empty() {
                // Being written by a daemon that is starting.
                return Ok(Vec::new());
            }
            let pid: u32 = text.parse().ok().filter(|p| *p > 0).ok_or_else(|| {
                format!("{}: `{}` is not a pid", path.display(), truncate(text, 40))
            })?;
            Ok(live(pid).into_iter().collect())
        }
        Selector::Name(name) => scan(|pid| read_comm(pid).is_some_and(|c| &c == name)),
        Selector::Cmdline(re) => scan(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .ok()
                .and_then(|raw| procfs::join_cmdline(&raw))
                .is_some_and(|line| re.is_match(&line))
        }),
    }
}

fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => s.get(..i).unwrap_or(s),
        None => s,
    }
}

/// Every live process `matches` accepts.
fn scan(mut matches: impl FnMut(u32) -> bool) -> Result<Vec<Found>, String> {
    let mut found = Vec::new();
    for pid in all_pids()? {
        if matches(pid) {
            found.extend(live(pid));
        }
    }
    Ok(found)
}

/// The pids in `/proc`.
fn all_pids() -> Result<Vec<u32>, String> {
    let dir = std::fs::read_dir("/proc").map_err(|e| format!("/proc: {e}"))?;
    Ok(dir
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()))
        .collect())
}

fn read_comm(pid: u32) -> Option<String> {
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
    Some(comm.strip_suffix('\n').unwrap_or(&comm).to_string())
}

/// The process if it is alive (not gone, not a zombie), with its resident memory.
fn live(pid: u32) -> Option<Found> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let status = procfs::parse_status(&text).ok()?;
    (!status.exited()).then_some(Found {
        pid,
        rss_bytes: status.rss_bytes.unwrap_or(0),
    })
}

/// Whether `pid` is a process that has not exited.
pub(crate) fn is_live(pid: u32) -> bool {
    live(pid).is_some()
}

/// The live processes whose `comm` is one of `names`, with that name.
pub(crate) fn pids_by_comm(names: &[String]) -> Result<Vec<(u32, String)>, String> {
    let mut out = Vec::new();
    for pid in all_pids()? {
        if let Some(comm) = read_comm(pid) {
            if names.contains(&comm) && live(pid).is_some() {
                out.push((pid, comm));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
