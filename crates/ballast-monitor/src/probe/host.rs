//! The `host` probe: the machine Ballast runs on, read from `/proc` and `statvfs`.
//!
//! It exists because the outages the seeds describe start here: a disk or its inodes fill, a
//! process runs out of file descriptors, the run queue grows past the cores ("load is not a
//! percentage": `r` per core against `b`). One run reports, as fractions unless noted:
//!
//! | value | labels | from |
//! |---|---|---|
//! | `cpu_used` | | `/proc/stat` delta since the previous run (none on the first run) |
//! | `memory_used`, `swap_used` | | `/proc/meminfo` (swap is 0 without swap) |
//! | `load1_per_core`, `load5_per_core`, `load15_per_core` | | `/proc/loadavg` ÷ online CPUs |
//! | `running_per_core` (`r` ÷ CPUs), `blocked` (`b`, a count) | | `/proc/stat` |
//! | `disk_used`, `inodes_used` | `mount` | `statvfs`, as `df` computes them |
//! | `fds_used` | | `/proc/sys/fs/file-nr`: allocated ÷ max |
//! | `process_fds_used` | `process` (`self` for Ballast) | `/proc/PID/fd` ÷ soft `Max open files` |
//! | `tcp_connections` (a count) | `state` | `/proc/net/tcp` and `tcp6` |
//!
//! Without `mounts`, every real filesystem is checked: pseudo and memory filesystems (proc,
//! sysfs, cgroup, tmpfs...) and read-only images that are always full (squashfs) are skipped,
//! and a device mounted twice (a bind mount) is checked once. A mount listed in `mounts` is
//! always checked, a tmpfs included. A named process that is not running gives no reading
//! (the `process` probe is the one that alerts on absence); with several processes of that
//! name, the one closest to its limit is reported.
//!
//! All file reads and `statvfs` calls run in one `spawn_blocking` task, so a hung network
//! filesystem blocks a blocking-pool thread, never the runtime; the runner's timeout reports it.

use std::collections::HashSet;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::{Arc, Mutex};

use ballast_core::Labels;
use serde::Deserialize;

use super::procfs::{self, CpuTimes, FileLimit, MountEntry};
use super::{BoxFuture, Outcome, Probe, SpecError};

/// The kind-specific keys of a `kind = "host"` monitor.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostSpec {
    /// Mount points to check; absent means every real filesystem.
    #[serde(default)]
    pub mounts: Option<Vec<String>>,
    /// Process names (exact `/proc/PID/comm`) whose descriptors are checked besides Ballast's.
    #[serde(default)]
    pub processes: Vec<String>,
}

impl HostSpec {
    pub fn validate(&self) -> Result<(), SpecError> {
        if let Some(mounts) = &self.mounts {
            if mounts.is_empty() {
                return Err(SpecError::new(
                    "mounts",
                    "is empty; leave it out to check every real filesystem",
                ));
            }
            for m in mounts {
                if !m.starts_with('/') {
                    return Err(SpecError::new(
                        "mounts",
                        format!("`{m}` is not an absolute path"),
                    ));
                }
            }
        }
        for p in &self.processes {
            super::process::validate_comm("processes", p)?;
            if p == "self" {
                return Err(SpecError::new(
                    "processes",
                    "`self` is Ballast itself, which is always checked",
                ));
            }
        }
        Ok(())
    }
}

/// Filesystem types that hold no user data, or whose fullness means nothing.
const PSEUDO_FS: &[&str] = &[
    "autofs",
    "binfmt_misc",
    "bpf",
    "cgroup",
    "cgroup2",
    "configfs",
    "debugfs",
    "devpts",
    "devtmpfs",
    "efivarfs",
    "fusectl",
    "hugetlbfs",
    "mqueue",
    "nsfs",
    "proc",
    "pstore",
    "ramfs",
    "rpc_pipefs",
    "securityfs",
    "selinuxfs",
    "squashfs",
    "sysfs",
    "tmpfs",
    "tracefs",
    "fuse.lxcfs",
    "fuse.gvfsd-fuse",
    "fuse.portal",
    "iso9660",
];

/// The mount points checked by default: real filesystems, each device once (the first mount
/// of a device wins). A source that names no device (`none`, `overlay`, the fs type) is not a
/// device, so such mounts are each checked.
pub fn default_mounts(entries: &[MountEntry]) -> Vec<String> {
    let mut seen_sources = HashSet::new();
    let mut seen_points = HashSet::new();
    let mut out = Vec::new();
    for e in entries {
        if PSEUDO_FS.contains(&e.fs_type.as_str()) {
            continue;
        }
        let is_device = e.source.contains('/') || e.source.contains(':');
        if is_device && !seen_sources.insert(e.source.as_str()) {
            continue;
        }
        if seen_points.insert(e.mount_point.as_str()) {
            out.push(e.mount_point.clone());
        }
    }
    out
}

/// Used shares of one filesystem, as `df` computes them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FsUsage {
    /// (blocks − free) ÷ (blocks − free + available to unprivileged users); `None` when the
    /// filesystem reports no blocks.
    pub disk_used: Option<f64>,
    /// (inodes − free inodes) ÷ inodes; `None` when it reports no inodes (btrfs, some
    /// network filesystems).
    pub inodes_used: Option<f64>,
}

impl FsUsage {
    pub fn from_counts(blocks: u64, bfree: u64, bavail: u64, files: u64, ffree: u64) -> Self {
        let used = blocks.saturating_sub(bfree);
        let denom = used.saturating_add(bavail);
        FsUsage {
            disk_used: (blocks > 0 && denom > 0).then(|| used as f64 / denom as f64),
            inodes_used: (files > 0).then(|| files.saturating_sub(ffree) as f64 / files as f64),
        }
    }
}

/// Calls `statvfs` on a mount point.
pub fn statvfs(path: &str) -> std::io::Result<FsUsage> {
    let c = CString::new(Path::new(path).as_os_str().as_bytes())
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "NUL in path"))?;
    // SAFETY: `c` is a valid NUL-terminated string and `buf` is a properly sized, writable
    // statvfs that the call fills in; zeroed memory is a valid statvfs.
    let mut buf: libc::statvfs = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::statvfs(c.as_ptr(), &mut buf) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    #[allow(clippy::unnecessary_cast)] // the field types differ between libc targets
    Ok(FsUsage::from_counts(
        buf.f_blocks as u64,
        buf.f_bfree as u64,
        buf.f_bavail as u64,
        buf.f_files as u64,
        buf.f_ffree as u64,
    ))
}

/// The number of online CPUs (never 0).
pub fn online_cpus() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    u64::try_from(n).ok().filter(|n| *n > 0).unwrap_or(1)
}

/// The `host` probe.
pub struct HostProbe {
    spec: Arc<HostSpec>,
    /// The CPU times of the previous run, for the delta.
    previous_cpu: Mutex<Option<CpuTimes>>,
}

impl HostProbe {
    pub fn new(spec: HostSpec) -> Result<HostProbe, SpecError> {
        spec.validate()?;
        Ok(HostProbe {
            spec: Arc::new(spec),
            previous_cpu: Mutex::new(None),
        })
    }

    async fn measure(&self) -> Outcome {
        let spec = Arc::clone(&self.spec);
        let collected = match tokio::task::spawn_blocking(move || collect(&spec)).await {
            Ok(c) => c,
            Err(e) => return Outcome::failed(format!("host probe task failed: {e}")),
        };
        let mut out = collected.outcome;
        if let Some(now) = collected.cpu {
            let mut prev = self
                .previous_cpu
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if let Some(used) = prev.as_ref().and_then(|p| now.used_since(p)) {
                out.push("cpu_used", Labels::new(), used);
            }
            // Runs closer together than a clock tick keep the older sample, so the next
            // delta spans a tick.
            if prev.as_ref().is_none_or(|p| p.total != now.total) {
                *prev = Some(now);
            }
        }
        out
    }
}

impl Probe for HostProbe {
    fn kind(&self) -> &'static str {
        "host"
    }

    fn run(&self) -> BoxFuture<'_, Outcome> {
        Box::pin(self.measure())
    }
}

/// What one blocking pass over `/proc` found.
struct Collected {
    outcome: Outcome,
    cpu: Option<CpuTimes>,
}

/// Reads everything; each part that fails adds its reason to the errors and the rest still
/// reports.
fn collect(spec: &HostSpec) -> Collected {
    let mut out = Outcome::default();
    let mut errors: Vec<String> = Vec::new();
    let none = Labels::new;
    let cpus = online_cpus() as f64;

    let mut cpu = None;
    match read("/proc/stat").and_then(|t| procfs::parse_stat(&t).map_err(|e| e.to_string())) {
        Ok(stat) => {
            cpu = Some(stat.cpu);
            out.push("running_per_core", none(), stat.procs_running as f64 / cpus);
            out.push("blocked", none(), stat.procs_blocked as f64);
        }
        Err(e) => errors.push(e),
    }

    match read("/proc/meminfo").and_then(|t| procfs::parse_meminfo(&t).map_err(|e| e.to_string())) {
        Ok(mem) => {
            if let Some(used) = mem.memory_used() {
                out.push("memory_used", none(), used);
            }
            out.push("swap_used", none(), mem.swap_used());
        }
        Err(e) => errors.push(e),
    }

    match read("/proc/loadavg").and_then(|t| procfs::parse_loadavg(&t).map_err(|e| e.to_string())) {
        Ok(l) => {
            out.push("load1_per_core", none(), l.load1 / cpus);
            out.push("load5_per_core", none(), l.load5 / cpus);
            out.push("load15_per_core", none(), l.load15 / cpus);
        }
        Err(e) => errors.push(e),
    }

    let mounts = match &spec.mounts {
        Some(m) => Ok(m.clone()),
        None => read("/proc/self/mounts")
            .and_then(|t| procfs::parse_mounts(&t).map_err(|e| e.to_string()))
            .map(|entries| default_mounts(&entries)),
    };
    match mounts {
        Ok(mounts) => {
            for m in mounts {
                match statvfs(&m) {
                    Ok(usage) => {
                        let labels = Labels::new().with("mount", m.as_str());
                        if let Some(d) = usage.disk_used {
                            out.push("disk_used", labels.clone(), d);
                        }
                        if let Some(i) = usage.inodes_used {
                            out.push("inodes_used", labels, i);
                        }
                    }
                    Err(e) => errors.push(format!("statvfs {m}: {e}")),
                }
            }
        }
        Err(e) => errors.push(e),
    }

    match read("/proc/sys/fs/file-nr")
        .and_then(|t| procfs::parse_file_nr(&t).map_err(|e| e.to_string()))
    {
        Ok((allocated, max)) => out.push("fds_used", none(), allocated as f64 / max as f64),
        Err(e) => errors.push(e),
    }

    match process_fds_used(std::process::id()) {
        Ok(Some(share)) => out.push(
            "process_fds_used",
            Labels::new().with("process", "self"),
            share,
        ),
        Ok(None) => {}
        Err(e) => errors.push(format!("process self: {e}")),
    }
    if !spec.processes.is_empty() {
        named_process_fds(&spec.processes, &mut out, &mut errors);
    }

    let mut counts = [0u64; 11];
    for file in ["/proc/net/tcp", "/proc/net/tcp6"] {
        match std::fs::read_to_string(file) {
            Ok(t) => {
                if let Err(e) = procfs::count_tcp_states(&t, &mut counts) {
                    errors.push(format!("{file}: {}", e.message));
                }
            }
            // No IPv6 in this kernel: nothing to count.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && file.ends_with('6') => {}
            Err(e) => errors.push(format!("{file}: {e}")),
        }
    }
    for (state, n) in procfs::TCP_STATES.iter().zip(counts) {
        out.push(
            "tcp_connections",
            Labels::new().with("state", *state),
            n as f64,
        );
    }

    if !errors.is_empty() {
        out.error = Some(errors.join("; "));
    }
    Collected { outcome: out, cpu }
}

fn read(path: &str) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))
}

/// The share of its soft open-files limit a process uses; `None` when it is unlimited.
pub fn process_fds_used(pid: u32) -> Result<Option<f64>, String> {
    let limits = read(&format!("/proc/{pid}/limits"))?;
    let limit = procfs::parse_limits_nofile(&limits).map_err(|e| e.to_string())?;
    let dir = format!("/proc/{pid}/fd");
    let open = std::fs::read_dir(&dir)
        .map_err(|e| format!("{dir}: {e}"))?
        .filter(|e| e.is_ok())
        .count();
    Ok(match limit {
        FileLimit::Limited(0) | FileLimit::Unlimited => None,
        FileLimit::Limited(n) => Some(open as f64 / n as f64),
    })
}

/// Adds `process_fds_used` for each named process that runs: the highest share among the
/// processes of that name.
fn named_process_fds(names: &[String], out: &mut Outcome, errors: &mut Vec<String>) {
    let pids = match super::process::pids_by_comm(names) {
        Ok(p) => p,
        Err(e) => {
            errors.push(e);
            return;
        }
    };
    for name in names {
        let mut worst: Option<f64> = None;
        for (pid, _) in pids.iter().filter(|(_, comm)| comm == name) {
            match process_fds_used(*pid) {
                Ok(Some(share)) => worst = Some(worst.map_or(share, |w| w.max(share))),
                Ok(None) => {}
                // It exited between the listing and now.
                Err(_) if !super::process::is_live(*pid) => {}
                Err(e) => errors.push(format!("process {name} ({pid}): {e}")),
            }
        }
        if let Some(share) = worst {
            out.push(
                "process_fds_used",
                Labels::new().with("process", name.as_str()),
                share,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(source: &str, point: &str, fs: &str) -> MountEntry {
        MountEntry {
            source: source.into(),
            mount_point: point.into(),
            fs_type: fs.into(),
        }
    }

    #[test]
    fn default_mounts_skip_pseudo_filesystems_and_duplicate_devices() {
        let entries = vec![
            entry("proc", "/proc", "proc"),
            entry("sysfs", "/sys", "sysfs"),
            entry("/dev/vda", "/", "ext4"),
            entry("tmpfs", "/dev/shm", "tmpfs"),
            entry("cgroup", "/sys/fs/cgroup/cpu", "cgroup"),
            entry("cgroup2", "/sys/fs/cgroup/unified", "cgroup2"),
            entry("devpts", "/dev/pts", "devpts"),
            entry("mqueue", "/dev/mqueue", "mqueue"),
            entry("/dev/vdb1", "/data", "xfs"),
            entry("/dev/vdb1", "/srv/data-bind", "xfs"),
            entry("/dev/loop0", "/snap/core/1", "squashfs"),
            entry("overlay", "/var/lib/docker/overlay2/x/merged", "overlay"),
            entry("overlay", "/var/lib/docker/overlay2/y/merged", "overlay"),
            entry("nfs.example:/export", "/mnt/nfs", "nfs4"),
            entry("/dev/vda", "/", "ext4"),
        ];
        assert_eq!(
            default_mounts(&entries),
            vec![
                "/",
                "/data",
                "/var/lib/docker/overlay2/x/merged",
                "/var/lib/docker/overlay2/y/merged",
                "/mnt/nfs",
            ]
        );
        assert!(default_mounts(&[]).is_empty());
    }

    #[test]
    fn usage_is_computed_as_df_does() {
        // 100 blocks, 40 free, 30 of them available to users: 60 used of 90.
        let u = FsUsage::from_counts(100, 40, 30, 64, 16);
        assert_eq!(u.disk_used, Some(60.0 / 90.0));
        assert_eq!(u.inodes_used, Some(0.75));
        let none = FsUsage::from_counts(0, 0, 0, 0, 0);
        assert_eq!(none.disk_used, None);
        assert_eq!(none.inodes_used, None);
        // Nonsense counts from a broken filesystem do not underflow.
        let odd = FsUsage::from_counts(10, 20, 0, 5, 9);
        assert_eq!(odd.disk_used, None);
        assert_eq!(odd.inodes_used, Some(0.0));
    }

    #[test]
    fn spec_validation_names_the_field() {
        let ok: HostSpec =
            serde_json::from_str(r#"{"mounts": ["/"], "processes": ["sshd"]}"#).unwrap();
        assert!(ok.validate().is_ok());
        let bad = |json: &str| {
            let spec: HostSpec = serde_json::from_str(json).unwrap();
            spec.validate().unwrap_err().field
        };
        assert_eq!(bad(r#"{"mounts": []}"#), "mounts");
        assert_eq!(bad(r#"{"mounts": ["data"]}"#), "mounts");
        assert_eq!(bad(r#"{"processes": ["self"]}"#), "processes");
        assert_eq!(bad(r#"{"processes": [""]}"#), "processes");
        assert_eq!(
            bad(r#"{"processes": ["a-name-longer-than-15"]}"#),
            "processes"
        );
        assert!(serde_json::from_str::<HostSpec>(r#"{"mount": ["/"]}"#).is_err());
    }

    #[tokio::test]
    async fn a_run_on_this_machine_reports_every_value() {
        let probe = HostProbe::new(HostSpec {
            mounts: Some(vec!["/".into()]),
            processes: vec![],
        })
        .unwrap();
        assert_eq!(probe.kind(), "host");
        let first = probe.run().await;
        assert_eq!(first.error, None);
        let values =
            |o: &Outcome| -> Vec<String> { o.readings.iter().map(|r| r.value.clone()).collect() };
        let first_values = values(&first);
        assert!(
            !first_values.contains(&"cpu_used".to_string()),
            "no delta on the first run"
        );
        for v in [
            "memory_used",
            "swap_used",
            "load1_per_core",
            "load5_per_core",
            "load15_per_core",
            "running_per_core",
            "blocked",
            "disk_used",
            "fds_used",
            "process_fds_used",
            "tcp_connections",
        ] {
            assert!(
                first_values.iter().any(|x| x == v),
                "{v} missing: {first_values:?}"
            );
        }
        // Every state is reported, zeros included, so a rule sees 0 rather than no data.
        let states = first
            .readings
            .iter()
            .filter(|r| r.value == "tcp_connections")
            .count();
        assert_eq!(states, 11);
        let self_fds = first
            .readings
            .iter()
            .find(|r| r.value == "process_fds_used")
            .unwrap();
        assert_eq!(self_fds.labels.get("process"), Some("self"));
        assert!(self_fds.number > 0.0 && self_fds.number < 1.0);
        for r in &first.readings {
            assert!(r.number.is_finite() && r.number >= 0.0, "{r:?}");
            if r.value.ends_with("_used") {
                assert!(r.number <= 1.0, "{r:?}");
            }
        }

        // The second run has a delta, once the kernel's tick counters have moved.
        let mut cpu = None;
        for _ in 0..200 {
            let o = probe.run().await;
            if let Some(r) = o.readings.iter().find(|r| r.value == "cpu_used") {
                cpu = Some(r.number);
                break;
            }
            tokio::task::yield_now().await;
        }
        let cpu = cpu.expect("cpu_used after a second run");
        assert!((0.0..=1.0).contains(&cpu), "{cpu}");
    }

    #[tokio::test]
    async fn without_mounts_every_real_filesystem_of_this_machine_is_checked() {
        let probe = HostProbe::new(HostSpec::default()).unwrap();
        let o = probe.run().await;
        let mounts: Vec<&str> = o
            .readings
            .iter()
            .filter(|r| r.value == "disk_used")
            .filter_map(|r| r.labels.get("mount"))
            .collect();
        assert!(!mounts.is_empty(), "{o:?}");
        for m in &mounts {
            assert!(
                !m.starts_with("/proc") && !m.starts_with("/sys") && !m.starts_with("/dev/"),
                "a pseudo filesystem was checked: {m}"
            );
        }
        let unique: HashSet<&&str> = mounts.iter().collect();
        assert_eq!(
            unique.len(),
            mounts.len(),
            "a mount reported twice: {mounts:?}"
        );
    }

    #[tokio::test]
    async fn a_mount_that_does_not_exist_is_an_error_and_the_rest_still_reports() {
        let probe = HostProbe::new(HostSpec {
            mounts: Some(vec!["/".into(), "/no/such/mount/here".into()]),
            processes: vec![],
        })
        .unwrap();
        let o = probe.run().await;
        let err = o.error.expect("an error");
        assert!(err.contains("statvfs /no/such/mount/here"), "{err}");
        assert!(o
            .readings
            .iter()
            .any(|r| r.value == "disk_used" && r.labels.get("mount") == Some("/")));
    }

    #[tokio::test]
    async fn named_processes_have_their_descriptors_checked() {
        let mut child = std::process::Command::new("sleep")
            .arg("300")
            .spawn()
            .expect("spawn sleep");
        let probe = HostProbe::new(HostSpec {
            mounts: Some(vec!["/".into()]),
            processes: vec!["sleep".into(), "no-such-proc".into()],
        })
        .unwrap();
        // The kernel names the child `sleep` a moment after spawn returns (posix_spawn
        // resumes the parent before exec renames the task), so poll, boundedly.
        let mut found = None;
        let mut last = Outcome::default();
        for _ in 0..500 {
            last = probe.run().await;
            found = last
                .readings
                .iter()
                .find(|r| r.value == "process_fds_used" && r.labels.get("process") == Some("sleep"))
                .cloned();
            if found.is_some() {
                break;
            }
            tokio::task::yield_now().await;
        }
        let _ = child.kill();
        let _ = child.wait();
        let o = last;
        assert_eq!(o.error, None);
        let sleep = found.unwrap_or_else(|| panic!("no reading for sleep: {o:?}"));
        assert!(sleep.number > 0.0 && sleep.number < 1.0, "{sleep:?}");
        assert!(!o
            .readings
            .iter()
            .any(|r| r.labels.get("process") == Some("no-such-proc")));
    }
}
