//! Pure parsers for the Linux `/proc` files the `host` and `process` probes read.
//!
//! They exist apart from the probes so that every format can be tested on sample text,
//! malformed text included, without a machine in any particular state: each takes the file's
//! text and returns a value or a [`ParseError`] naming the file and what was wrong. None of
//! them panics, whatever the text; the probes do the I/O and call these.

use thiserror::Error;

/// Why a `/proc` file's text could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{file}: {message}")]
pub struct ParseError {
    /// The file, as a path pattern (`/proc/stat`, `/proc/PID/limits`).
    pub file: &'static str,
    pub message: String,
}

impl ParseError {
    fn new(file: &'static str, message: impl Into<String>) -> Self {
        ParseError {
            file,
            message: message.into(),
        }
    }
}

/// The aggregate CPU times of the first `cpu` line of `/proc/stat`, in clock ticks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuTimes {
    /// Every tick counted (user, nice, system, idle, iowait, irq, softirq, steal; guest time
    /// is already inside user and nice, so it is not added again).
    pub total: u64,
    /// Ticks doing nothing: idle plus iowait.
    pub idle: u64,
}

impl CpuTimes {
    /// The share of time busy between `earlier` and `self`; `None` when no time passed or the
    /// counters went backwards (a counter wrapped or the sample is from another boot).
    pub fn used_since(&self, earlier: &CpuTimes) -> Option<f64> {
        let total = self.total.checked_sub(earlier.total)?;
        let idle = self.idle.checked_sub(earlier.idle)?;
        if total == 0 || idle > total {
            return None;
        }
        Some((total - idle) as f64 / total as f64)
    }
}

/// What the host probe takes from `/proc/stat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    pub cpu: CpuTimes,
    /// Runnable tasks now: vmstat's `r`.
    pub procs_running: u64,
    /// Tasks blocked on I/O now: vmstat's `b`.
    pub procs_blocked: u64,
}

const STAT: &str = "/proc/stat";

/// Parses `/proc/stat`.
pub fn parse_stat(text: &str) -> Result<Stat, ParseError> {
    let mut cpu = None;
    let mut running = None;
    let mut blocked = None;
    for line in text.lines() {
        let mut fields = line.split_whitespace();
        match fields.next() {
            Some("cpu") => {
                let ticks: Vec<u64> = fields
                    .take(8)
                    .map(|f| {
                        f.parse::<u64>().map_err(|_| {
                            ParseError::new(STAT, format!("cpu time `{f}` is not a number"))
                        })
                    })
                    .collect::<Result<_, _>>()?;
                // user nice system idle [iowait irq softirq steal]: older kernels have fewer.
                if ticks.len() < 4 {
                    return Err(ParseError::new(STAT, "the cpu line has fewer than 4 times"));
                }
                let idle = ticks.get(3).copied().unwrap_or(0) + ticks.get(4).copied().unwrap_or(0);
                let total = ticks.iter().fold(0u64, |a, t| a.saturating_add(*t));
                cpu = Some(CpuTimes { total, idle });
            }
            Some("procs_running") => running = Some(number(STAT, "procs_running", fields.next())?),
            Some("procs_blocked") => blocked = Some(number(STAT, "procs_blocked", fields.next())?),
            _ => {}
        }
    }
    Ok(Stat {
        cpu: cpu.ok_or_else(|| ParseError::new(STAT, "no aggregate `cpu` line"))?,
        procs_running: running.ok_or_else(|| ParseError::new(STAT, "no procs_running line"))?,
        procs_blocked: blocked.ok_or_else(|| ParseError::new(STAT, "no procs_blocked line"))?,
    })
}

fn number(file: &'static str, what: &str, field: Option<&str>) -> Result<u64, ParseError> {
    let f = field.ok_or_else(|| ParseError::new(file, format!("{what} has no value")))?;
    f.parse()
        .map_err(|_| ParseError::new(file, format!("{what} `{f}` is not a number")))
}

/// What the host probe takes from `/proc/meminfo`, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemInfo {
    pub mem_total: u64,
    pub mem_available: u64,
    pub swap_total: u64,
    pub swap_free: u64,
}

impl MemInfo {
    /// 1 − available ÷ total.
    pub fn memory_used(&self) -> Option<f64> {
        (self.mem_total > 0)
            .then(|| 1.0 - self.mem_available.min(self.mem_total) as f64 / self.mem_total as f64)
    }

    /// The used share of swap; 0 when there is none.
    pub fn swap_used(&self) -> f64 {
        if self.swap_total == 0 {
            0.0
        } else {
            1.0 - self.swap_free.min(self.swap_total) as f64 / self.swap_total as f64
        }
    }
}

const MEMINFO: &str = "/proc/meminfo";

/// Parses `/proc/meminfo` (`Name:   123 kB` lines). MemTotal and MemAvailable (Linux ≥ 3.14)
/// are required; absent swap lines mean no swap.
pub fn parse_meminfo(text: &str) -> Result<MemInfo, ParseError> {
    let (mut total, mut available, mut swap_total, mut swap_free) = (None, None, None, None);
    for line in text.lines() {
        let Some((name, rest)) = line.split_once(':') else {
            continue;
        };
        let slot = match name.trim() {
            "MemTotal" => &mut total,
            "MemAvailable" => &mut available,
            "SwapTotal" => &mut swap_total,
            "SwapFree" => &mut swap_free,
            _ => continue,
        };
        let mut fields = rest.split_whitespace();
        let value = number(MEMINFO, name.trim(), fields.next())?;
        let scale = match fields.next() {
            None => 1,
            Some("kB") => 1024,
            Some(unit) => {
                return Err(ParseError::new(
                    MEMINFO,
                    format!("{} has an unknown unit `{unit}`", name.trim()),
                ))
            }
        };
        *slot = Some(value.saturating_mul(scale));
    }
    Ok(MemInfo {
        mem_total: total.ok_or_else(|| ParseError::new(MEMINFO, "no MemTotal line"))?,
        mem_available: available
            .ok_or_else(|| ParseError::new(MEMINFO, "no MemAvailable line (Linux before 3.14?)"))?,
        swap_total: swap_total.unwrap_or(0),
        swap_free: swap_free.unwrap_or(0),
    })
}

/// The three load averages of `/proc/loadavg`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LoadAvg {
    pub load1: f64,
    pub load5: f64,
    pub load15: f64,
}

const LOADAVG: &str = "/proc/loadavg";

/// Parses `/proc/loadavg` (`0.52 0.58 0.59 2/1094 12345`).
pub fn parse_loadavg(text: &str) -> Result<LoadAvg, ParseError> {
    let mut fields = text.split_whitespace();
    let mut next = |what: &str| -> Result<f64, ParseError> {
        let f = fields
            .next()
            .ok_or_else(|| ParseError::new(LOADAVG, format!("no {what} field")))?;
        match f.parse::<f64>() {
            Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
            _ => Err(ParseError::new(
                LOADAVG,
                format!("{what} `{f}` is not a load"),
            )),
        }
    };
    Ok(LoadAvg {
        load1: next("load1")?,
        load5: next("load5")?,
        load15: next("load15")?,
    })
}

/// One line of `/proc/self/mounts`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountEntry {
    /// The device or source (`/dev/sda1`, `tmpfs`, `server:/export`).
    pub source: String,
    /// Where it is mounted, with the kernel's octal escapes (`\040` for a space) undone.
    pub mount_point: String,
    pub fs_type: String,
}

const MOUNTS: &str = "/proc/self/mounts";

/// Parses `/proc/self/mounts`; a line with fewer than three fields is an error.
pub fn parse_mounts(text: &str) -> Result<Vec<MountEntry>, ParseError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let mut fields = line.split_whitespace();
        match (fields.next(), fields.next(), fields.next()) {
            (Some(source), Some(mount_point), Some(fs_type)) => out.push(MountEntry {
                source: unescape_octal(source),
                mount_point: unescape_octal(mount_point),
                fs_type: fs_type.to_string(),
            }),
            _ => {
                return Err(ParseError::new(
                    MOUNTS,
                    format!("line {} has fewer than 3 fields", i + 1),
                ))
            }
        }
    }
    Ok(out)
}

/// Undoes the `\ooo` escapes the kernel writes for space, tab, newline and backslash in
/// mount fields. A backslash not followed by three octal digits is kept as it is.
fn unescape_octal(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'\\' {
            if let Some(code) = bytes.get(i + 1..i + 4).and_then(octal3) {
                out.push(code);
                i += 4;
                continue;
            }
        }
        out.push(b);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn octal3(digits: &[u8]) -> Option<u8> {
    let mut v: u32 = 0;
    for d in digits {
        if !(b'0'..=b'7').contains(d) {
            return None;
        }
        v = v * 8 + u32::from(d - b'0');
    }
    u8::try_from(v).ok()
}

const FILE_NR: &str = "/proc/sys/fs/file-nr";

/// Parses `/proc/sys/fs/file-nr` (`allocated  unused  max`) into (allocated, max).
pub fn parse_file_nr(text: &str) -> Result<(u64, u64), ParseError> {
    let mut fields = text.split_whitespace();
    let allocated = number(FILE_NR, "allocated", fields.next())?;
    let _unused = number(FILE_NR, "unused", fields.next())?;
    let max = number(FILE_NR, "max", fields.next())?;
    if max == 0 {
        return Err(ParseError::new(FILE_NR, "max is 0"));
    }
    Ok((allocated, max))
}

/// The soft limit on open files of a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileLimit {
    Limited(u64),
    Unlimited,
}

const LIMITS: &str = "/proc/PID/limits";

/// Finds the soft `Max open files` in `/proc/PID/limits`.
pub fn parse_limits_nofile(text: &str) -> Result<FileLimit, ParseError> {
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("Max open files"))
        .ok_or_else(|| ParseError::new(LIMITS, "no `Max open files` line"))?;
    match line.split_whitespace().next() {
        Some("unlimited") => Ok(FileLimit::Unlimited),
        soft => number(LIMITS, "the soft open-files limit", soft).map(FileLimit::Limited),
    }
}

/// The TCP states as `/proc/net/tcp` numbers them (1 to 11), named as readings label them.
pub const TCP_STATES: [&str; 11] = [
    "established",
    "syn_sent",
    "syn_recv",
    "fin_wait1",
    "fin_wait2",
    "time_wait",
    "close",
    "close_wait",
    "last_ack",
    "listen",
    "closing",
];

const NET_TCP: &str = "/proc/net/tcp";

/// Adds the sockets of `/proc/net/tcp` or `/proc/net/tcp6` to `counts`, indexed like
/// [`TCP_STATES`]. The first line is the header. A state number outside 1..=11 is not counted
/// (the kernel's internal states do not name a connection state users know).
pub fn count_tcp_states(text: &str, counts: &mut [u64; 11]) -> Result<(), ParseError> {
    for (i, line) in text.lines().enumerate().skip(1) {
        if line.trim().is_empty() {
            continue;
        }
        let st = line.split_whitespace().nth(3).ok_or_else(|| {
            ParseError::new(NET_TCP, format!("line {} has no state field", i + 1))
        })?;
        let code = u8::from_str_radix(st, 16).map_err(|_| {
            ParseError::new(NET_TCP, format!("line {}: state `{st}` is not hex", i + 1))
        })?;
        if let Some(slot) = usize::from(code)
            .checked_sub(1)
            .and_then(|i| counts.get_mut(i))
        {
            *slot += 1;
        }
    }
    Ok(())
}

/// What the process probe takes from `/proc/PID/status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcStatus {
    /// The one-letter state (`R`, `S`, `Z`...).
    pub state: char,
    /// Resident set size in bytes; kernel threads and zombies have none.
    pub rss_bytes: Option<u64>,
}

impl ProcStatus {
    /// A zombie or dead task: it has exited and only waits to be reaped.
    pub fn exited(&self) -> bool {
        matches!(self.state, 'Z' | 'X' | 'x')
    }
}

const STATUS: &str = "/proc/PID/status";

/// Parses `/proc/PID/status` for its State and VmRSS.
pub fn parse_status(text: &str) -> Result<ProcStatus, ParseError> {
    let mut state = None;
    let mut rss = None;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("State:") {
            state = rest.trim().chars().next();
        } else if let Some(rest) = line.strip_prefix("VmRSS:") {
            let mut fields = rest.split_whitespace();
            let kb = number(STATUS, "VmRSS", fields.next())?;
            rss = Some(kb.saturating_mul(1024));
        }
    }
    Ok(ProcStatus {
        state: state.ok_or_else(|| ParseError::new(STATUS, "no State line"))?,
        rss_bytes: rss,
    })
}

/// Joins `/proc/PID/cmdline` (arguments each ended by NUL) with spaces; `None` for an empty
/// command line (kernel threads, zombies).
pub fn join_cmdline(raw: &[u8]) -> Option<String> {
    let args: Vec<String> = raw
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    (!args.is_empty()).then(|| args.join(" "))
}

#[cfg(test)]
mod tests;
