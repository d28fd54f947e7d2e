//! The host probe on a real filesystem the test fills: a 1 MiB tmpfs with 64 inodes. Its
//! `disk_used` and `inodes_used` rise above 0.9 when it is filled and fall when it is emptied.
//!
//! Mounting needs root (the tests run as root). When the mount fails the test fails with the
//! reason, unless `BALLAST_SKIP_MOUNT=1` says this machine cannot mount.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use ballast_monitor::probe::host::{HostProbe, HostSpec};
use ballast_monitor::probe::{Outcome, Probe};

/// A mounted tmpfs, unmounted and removed when dropped, whether the test passed or not.
struct TmpfsMount {
    dir: PathBuf,
    mounted: bool,
}

impl TmpfsMount {
    /// Mounts; `Err` carries why it could not.
    fn new(options: &str) -> Result<TmpfsMount, String> {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let dir =
            std::env::temp_dir().join(format!("ballast-tmpfs-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| format!("mkdir {}: {e}", dir.display()))?;
        let mut guard = TmpfsMount {
            dir,
            mounted: false,
        };
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", options, "tmpfs"])
            .arg(&guard.dir)
            .output()
            .map_err(|e| format!("running mount: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "mount -t tmpfs -o {options} tmpfs {} failed ({}): {}",
                guard.dir.display(),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        guard.mounted = true;
        Ok(guard)
    }

    fn path(&self) -> &Path {
        &self.dir
    }
}

impl Drop for TmpfsMount {
    fn drop(&mut self) {
        if self.mounted {
            let status = Command::new("umount").arg(&self.dir).status();
            if !matches!(status, Ok(s) if s.success()) {
                // Busy (a file still open after a failed assertion): detach it instead.
                let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
            }
        }
        let _ = std::fs::remove_dir(&self.dir);
    }
}

fn reading(o: &Outcome, value: &str, mount: &str) -> Option<f64> {
    o.readings
        .iter()
        .find(|r| r.value == value && r.labels.get("mount") == Some(mount))
        .map(|r| r.number)
}

/// Runs the probe until `ok` holds for the mount's disk and inode shares, a bounded number of
/// times; returns the last (disk, inodes).
async fn await_usage(probe: &HostProbe, mount: &str, ok: impl Fn(f64, f64) -> bool) -> (f64, f64) {
    let mut last = (f64::NAN, f64::NAN);
    for _ in 0..100 {
        let o = probe.run().await;
        assert_eq!(o.error, None, "{o:?}");
        let disk = reading(&o, "disk_used", mount).expect("disk_used for the tmpfs");
        let inodes = reading(&o, "inodes_used", mount).expect("inodes_used for the tmpfs");
        last = (disk, inodes);
        if ok(disk, inodes) {
            return last;
        }
        tokio::task::yield_now().await;
    }
    panic!("usage of {mount} never met the condition; last (disk, inodes) = {last:?}");
}

/// Writes into `dir` until the filesystem is out of space, then creates empty files until it
/// is out of inodes. Returns how many files were made.
fn fill(dir: &Path) -> usize {
    let mut big = std::fs::File::create(dir.join("big")).expect("create big");
    let chunk = vec![0x5au8; 64 * 1024];
    let mut written = 0usize;
    loop {
        match big.write(&chunk) {
            Ok(0) => break,
            Ok(n) => written += n,
            Err(e) => {
                assert_eq!(e.raw_os_error(), Some(libc::ENOSPC), "writing: {e}");
                break;
            }
        }
        assert!(
            written < 8 * 1024 * 1024,
            "a 1 MiB tmpfs took more than 8 MiB"
        );
    }
    drop(big);
    let mut files = 1;
    loop {
        match std::fs::File::create(dir.join(format!("f{files}"))) {
            Ok(_) => files += 1,
            Err(e) => {
                assert_eq!(e.raw_os_error(), Some(libc::ENOSPC), "creating: {e}");
                break;
            }
        }
        assert!(files < 1000, "a 64-inode tmpfs took more than 1000 files");
    }
    files
}

fn empty(dir: &Path) {
    for entry in std::fs::read_dir(dir).expect("read tmpfs") {
        let entry = entry.expect("entry");
        std::fs::remove_file(entry.path()).expect("remove");
    }
}

#[tokio::test]
async fn disk_and_inodes_rise_when_filled_and_fall_when_emptied() {
    let mount = match TmpfsMount::new("size=1m,nr_inodes=64") {
        Ok(m) => m,
        Err(e) if std::env::var("BALLAST_SKIP_MOUNT").as_deref() == Ok("1") => {
            eprintln!("skipped (BALLAST_SKIP_MOUNT=1): {e}");
            return;
        }
        Err(e) => panic!(
            "this test mounts a tmpfs and needs root: {e}; \
             set BALLAST_SKIP_MOUNT=1 to skip it on a machine that cannot mount"
        ),
    };
    let label = mount
        .path()
        .to_str()
        .expect("a UTF-8 temp path")
        .to_string();
    let probe = HostProbe::new(HostSpec {
        mounts: Some(vec![label.clone()]),
        processes: vec![],
    })
    .expect("spec");

    let (disk, inodes) = await_usage(&probe, &label, |d, i| d < 0.5 && i < 0.5).await;
    assert!(disk < 0.5 && inodes < 0.5, "a fresh tmpfs: {disk} {inodes}");

    let files = fill(mount.path());
    assert!(files > 50, "only {files} files fit in 64 inodes");
    let (disk, inodes) = await_usage(&probe, &label, |d, i| d > 0.9 && i > 0.9).await;
    assert!(disk <= 1.0 && inodes <= 1.0, "{disk} {inodes}");

    empty(mount.path());
    await_usage(&probe, &label, |d, i| d < 0.1 && i < 0.1).await;
}
