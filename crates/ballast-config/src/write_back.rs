//! Writing a config text back to the file a gateway reads: what a rollback does so that a
//! restart does not undo it.
//!
//! It exists because a rollback that only changed the running config would be silently undone
//! by the next restart or SIGHUP, and one that overwrote the file in place could leave a torn
//! file (a crash mid-write) or lose the operator's latest edit. So the replaced file is first
//! copied to `NAME.bak.<UTC time>` beside it, then the new text is written to a temporary file
//! in the same directory and renamed over the config (atomic on one file system), and
//! [`Source::restore`] renames the copy back when the gateway refuses what was written. A
//! symlinked config path is followed: the file it points to is replaced, the link stays.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::Source;

/// Why a text could not be written back to the config source, or the replaced file not put
/// back.
#[derive(Debug, thiserror::Error)]
pub enum WriteBackError {
    /// The config is compiled into the binary: there is no file.
    #[error("{0} is compiled into the binary: there is no config file to write back to (run Ballast with --config FILE to roll back)")]
    Embedded(String),
    /// A file operation failed; `action` says which.
    #[error("{}: cannot {action}: {source}", path.display())]
    Io {
        path: PathBuf,
        action: &'static str,
        source: io::Error,
    },
}

/// What [`Source::write_back`] did, enough to undo it with [`Source::restore`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenBack {
    /// The file that now holds the new text (the config path, symlinks followed).
    pub file: PathBuf,
    /// The copy of the replaced file, `NAME.bak.<UTC time>` in the same directory; `None`
    /// when there was no file to replace.
    pub backup: Option<PathBuf>,
}

impl Source {
    /// Replaces the config file's content with `text`, keeping the replaced file as
    /// `NAME.bak.<UTC time>` (`ballast.toml.bak.20261130T153012Z`, with `.1`, `.2`... added if
    /// that name is taken). The new content appears atomically: a reader sees the old file or
    /// the new one, never a mix. On error the config file is as it was and no copy is left.
    pub fn write_back(&self, text: &str) -> Result<WrittenBack, WriteBackError> {
        self.write_back_at(text, SystemTime::now())
    }

    fn write_back_at(&self, text: &str, now: SystemTime) -> Result<WrittenBack, WriteBackError> {
        let path = match self {
            Source::File(p) => p,
            Source::Embedded(_) => return Err(WriteBackError::Embedded(self.name())),
        };
        let io = |path: &Path, action: &'static str| {
            let path = path.to_path_buf();
            move |source| WriteBackError::Io {
                path,
                action,
                source,
            }
        };
        // The file a symlink points to is the one to replace; the link stays a link.
        let (file, existing) = match fs::canonicalize(path) {
            Ok(real) => {
                let meta = fs::metadata(&real).map_err(io(&real, "read the file's metadata"))?;
                (real, Some(meta.permissions()))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => (path.clone(), None),
            Err(e) => return Err(io(path, "resolve the config path")(e)),
        };
        let backup = match &existing {
            Some(_) => Some(keep_copy(&file, now).map_err(io(&file, "keep a copy of the file"))?),
            None => None,
        };
        if let Err(e) = replace(&file, text, existing) {
            if let Some(b) = &backup {
                let _ = fs::remove_file(b);
            }
            return Err(io(&file, "write the new text")(e));
        }
        Ok(WrittenBack { file, backup })
    }

    /// Undoes a [`Source::write_back`]: renames the kept copy over the file (or removes the
    /// file when there was none before).
    pub fn restore(&self, written: &WrittenBack) -> Result<(), WriteBackError> {
        let result = match &written.backup {
            Some(b) => fs::rename(b, &written.file),
            None => fs::remove_file(&written.file),
        };
        result.map_err(|source| WriteBackError::Io {
            path: written.file.clone(),
            action: "put the replaced file back",
            source,
        })?;
        sync_dir(&written.file);
        Ok(())
    }
}

/// Copies `file` to a new `NAME.bak.<stamp>[.N]` beside it, with the same permissions.
fn keep_copy(file: &Path, now: SystemTime) -> io::Result<PathBuf> {
    let name = file_name(file)?;
    let base = format!("{name}.bak.{}", utc_stamp(now));
    for n in 0u32.. {
        let candidate = match n {
            0 => file.with_file_name(&base),
            n => file.with_file_name(format!("{base}.{n}")),
        };
        let mut out = match OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&candidate)
        {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        };
        let copied = (|| {
            io::copy(&mut File::open(file)?, &mut out)?;
            out.set_permissions(fs::metadata(file)?.permissions())?;
            out.sync_all()
        })();
        return match copied {
            Ok(()) => Ok(candidate),
            Err(e) => {
                let _ = fs::remove_file(&candidate);
                Err(e)
            }
        };
    }
    unreachable!("u32 candidates are not exhausted before the disk is")
}

/// Writes `text` to a temporary file beside `file`, then renames it over `file`.
fn replace(file: &Path, text: &str, permissions: Option<fs::Permissions>) -> io::Result<()> {
    let name = file_name(file)?;
    let (tmp, mut out) = (0u32..)
        .map(|n| file.with_file_name(format!(".{name}.tmp.{}.{n}", std::process::id())))
        .find_map(
            |p| match OpenOptions::new().write(true).create_new(true).open(&p) {
                Ok(f) => Some(Ok((p, f))),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => None,
                Err(e) => Some(Err(e)),
            },
        )
        .unwrap_or_else(|| Err(io::Error::other("no free temporary file name")))?;
    let written = (|| {
        out.write_all(text.as_bytes())?;
        if let Some(p) = permissions {
            out.set_permissions(p)?;
        }
        out.sync_all()?;
        fs::rename(&tmp, file)
    })();
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written?;
    sync_dir(file);
    Ok(())
}

fn file_name(file: &Path) -> io::Result<String> {
    file.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| io::Error::other("the config path names no file"))
}

/// Makes a rename in `file`'s directory durable (best effort: not every file system can).
fn sync_dir(file: &Path) {
    if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
    }
}

/// `YYYYMMDDTHHMMSSZ` (UTC) for `now`.
fn utc_stamp(now: SystemTime) -> String {
    let secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let t = ballast_core::UtcTime::from_unix_secs(secs);
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        t.year, t.month, t.day, t.hour, t.minute, t.second
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn scratch(name: &str) -> PathBuf {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "ballast-config-{name}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// 2026-11-30T15:30:12Z.
    fn at() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_796_052_612)
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn stamps_are_utc() {
        assert_eq!(utc_stamp(UNIX_EPOCH), "19700101T000000Z");
        assert_eq!(utc_stamp(at()), "20261130T153012Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400 + 86_399);
        assert_eq!(utc_stamp(leap), "20000229T235959Z");
    }

    #[test]
    fn keeps_the_replaced_file_and_writes_the_new_text() {
        let dir = scratch("write-back");
        let file = dir.join("ballast.toml");
        fs::write(&file, "old\n").unwrap();
        let source = Source::File(file.clone());
        let w = source.write_back_at("new\n", at()).unwrap();
        assert_eq!(w.file, fs::canonicalize(&file).unwrap());
        let backup = w.backup.clone().unwrap();
        assert_eq!(
            backup,
            w.file.with_file_name("ballast.toml.bak.20261130T153012Z")
        );
        assert_eq!(fs::read_to_string(&file).unwrap(), "new\n");
        assert_eq!(fs::read_to_string(&backup).unwrap(), "old\n");
        // The same second again: a new name, and the first copy is kept as it was.
        let again = source.write_back_at("newer\n", at()).unwrap();
        let second = again.backup.clone().unwrap();
        assert_eq!(
            second.file_name().unwrap(),
            "ballast.toml.bak.20261130T153012Z.1"
        );
        assert_eq!(fs::read_to_string(&second).unwrap(), "new\n");
        assert_eq!(fs::read_to_string(&backup).unwrap(), "old\n");
        // Undo the last one: the copy goes back over the file; no temporary file is left.
        source.restore(&again).unwrap();
        assert_eq!(fs::read_to_string(&file).unwrap(), "new\n");
        assert_eq!(
            names(&dir),
            ["ballast.toml", "ballast.toml.bak.20261130T153012Z"]
        );
    }

    #[test]
    fn keeps_permissions() {
        use std::os::unix::fs::PermissionsExt;
        let dir = scratch("perm");
        let file = dir.join("b.toml");
        fs::write(&file, "old").unwrap();
        fs::set_permissions(&file, fs::Permissions::from_mode(0o640)).unwrap();
        let w = Source::File(file.clone())
            .write_back_at("new", at())
            .unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&file), 0o640);
        assert_eq!(mode(&w.backup.unwrap()), 0o640);
    }

    #[test]
    fn a_symlink_stays_a_link_to_the_new_text() {
        let dir = scratch("link");
        let real = dir.join("real.toml");
        fs::write(&real, "old").unwrap();
        let link = dir.join("ballast.toml");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let w = Source::File(link.clone())
            .write_back_at("new", at())
            .unwrap();
        assert!(fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(fs::read_to_string(&link).unwrap(), "new");
        assert_eq!(
            w.backup.unwrap().file_name().unwrap(),
            "real.toml.bak.20261130T153012Z"
        );
    }

    #[test]
    fn a_missing_file_is_created_and_restore_removes_it() {
        let dir = scratch("missing");
        let file = dir.join("ballast.toml");
        let source = Source::File(file.clone());
        let w = source.write_back_at("new", at()).unwrap();
        assert_eq!(w.backup, None);
        assert_eq!(fs::read_to_string(&file).unwrap(), "new");
        source.restore(&w).unwrap();
        assert!(names(&dir).is_empty());
    }

    #[test]
    fn a_missing_directory_fails_and_leaves_nothing() {
        let dir = scratch("nodir");
        let source = Source::File(dir.join("gone").join("ballast.toml"));
        let e = source.write_back_at("new", at()).unwrap_err();
        assert!(
            matches!(
                e,
                WriteBackError::Io {
                    action: "write the new text",
                    ..
                }
            ),
            "{e}"
        );
        assert!(e.to_string().contains("gone/ballast.toml"), "{e}");
    }

    #[test]
    fn the_embedded_config_has_no_file() {
        let e = Source::Embedded("x").write_back("y").unwrap_err();
        assert!(matches!(e, WriteBackError::Embedded(_)));
        assert!(e.to_string().contains("--config FILE"), "{e}");
    }
}
