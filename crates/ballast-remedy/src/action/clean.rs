//! `clean`: delete files matching a glob and older than an age, only under a configured root.
//!
//! ```toml
//! do = [{ clean = { root = "/var/log/app", glob = "*.log.*", older_than = "7d" } }]
//! ```
//!
//! It exists for the classic "disk full at 3 a.m." page, and it is written so that it can only
//! ever delete what the operator pointed it at:
//!
//! - `root` is an absolute path, not `/`, and holds no placeholder (an alert never chooses
//!   where deleting happens). It is canonicalized and opened once; everything below it is
//!   reached through open directory handles (`dirfd.rs`), never by path, so swapping a
//!   directory for a symlink while a clean runs leads nowhere.
//! - Symbolic links are never followed: a symlinked directory is not entered, a symlinked file
//!   is not deleted (nor is its target), whatever their names.
//! - `glob` matches a file's name (not its path): `*` is any run of characters, `?` one
//!   character, anything else itself. It may not contain `/`. Subdirectories are searched too
//!   (`recursive = false` to stay in the root), at most 32 levels deep.
//! - A file is old when its modification time is at least `older_than` before now; a time in
//!   the future is never old.
//! - In dry-run nothing is deleted: the report lists what would have been.
//!
//! The report names at most [`MAX_LISTED`] paths, and counts them all.

use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::SystemTime;

use ballast_core::Duration;
use serde::{Deserialize, Serialize};

use super::dirfd::{Dir, Kind};
use super::ActionError;

/// The most paths a report names.
pub const MAX_LISTED: usize = 200;
const MAX_DEPTH: usize = 32;

/// `clean = { ... }` as written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CleanSpec {
    pub root: String,
    pub glob: String,
    pub older_than: Duration,
    /// Search subdirectories too; true by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recursive: Option<bool>,
}

/// What a clean deleted (or, in dry-run, would have).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CleanReport {
    pub root: String,
    pub dry_run: bool,
    /// The files deleted (or that would be), at most [`MAX_LISTED`].
    pub files: Vec<String>,
    /// How many files were deleted (or would be), listed or not.
    pub count: u64,
    pub bytes: u64,
    /// Symbolic links met and left alone.
    pub symlinks_skipped: u64,
    /// Files that could not be deleted, with why.
    pub errors: Vec<String>,
}

impl CleanReport {
    /// No file failed to delete.
    pub fn ok(&self) -> bool {
        self.errors.is_empty()
    }
}

impl CleanSpec {
    /// Checks the spec at config load.
    pub(crate) fn validate(&self) -> Result<(), ActionError> {
        let invalid = |field, reason: &str| {
            Err(ActionError::Invalid {
                field,
                reason: reason.to_string(),
            })
        };
        if !self.root.starts_with('/') {
            return invalid("clean.root", "must be an absolute path");
        }
        if self.root.contains("{{") {
            return invalid("clean.root", "may not hold a placeholder");
        }
        if Path::new(&self.root).components().count() < 2 {
            return invalid("clean.root", "may not be `/`");
        }
        check_glob(&self.glob)?;
        if self.older_than.is_zero() {
            return invalid("clean.older_than", "must be more than 0");
        }
        Ok(())
    }

    /// Carries out the (rendered) spec, on a blocking thread.
    pub async fn apply(&self, dry_run: bool) -> Result<CleanReport, ActionError> {
        let spec = self.clone();
        tokio::task::spawn_blocking(move || clean(&spec, dry_run, SystemTime::now()))
            .await
            .map_err(|e| ActionError::Io {
                what: "the clean task".into(),
                reason: e.to_string(),
            })?
    }
}

fn check_glob(glob: &str) -> Result<(), ActionError> {
    if glob.is_empty() || glob.contains('/') || glob.contains('\0') {
        return Err(ActionError::Invalid {
            field: "clean.glob",
            reason: format!("{glob:?} must be a non-empty file-name pattern without `/`"),
        });
    }
    Ok(())
}

/// Cleans as `spec` says, as if it were `now`.
pub fn clean(spec: &CleanSpec, dry_run: bool, now: SystemTime) -> Result<CleanReport, ActionError> {
    check_glob(&spec.glob)?;
    let io = |e: std::io::Error| ActionError::Io {
        what: format!("the root {}", spec.root),
        reason: e.to_string(),
    };
    // The configured root may itself be a link (the operator's choice); nothing under it is.
    let root = fs::canonicalize(&spec.root).map_err(io)?;
    let dir = Dir::open(&root).map_err(io)?;
    let mut walk = Walk {
        glob: spec.glob.chars().collect(),
        older_than: spec.older_than,
        recursive: spec.recursive.unwrap_or(true),
        dry_run,
        now,
        report: CleanReport {
            root: root.display().to_string(),
            dry_run,
            ..CleanReport::default()
        },
    };
    walk.dir(&dir, &root, 0);
    walk.report.files.sort();
    Ok(walk.report)
}

struct Walk {
    glob: Vec<char>,
    older_than: Duration,
    recursive: bool,
    dry_run: bool,
    now: SystemTime,
    report: CleanReport,
}

impl Walk {
    /// Cleans one open directory (`path` is for the report only: nothing is opened by path).
    fn dir(&mut self, dir: &Dir, path: &Path, depth: usize) {
        let names = match dir.names() {
            Ok(n) => n,
            Err(e) => {
                self.report.errors.push(format!("{}: {e}", path.display()));
                return;
            }
        };
        for name in names {
            let shown = path.join(std::ffi::OsStr::from_bytes(name.to_bytes()));
            match dir.kind(&name) {
                Ok(Kind::Symlink) => self.report.symlinks_skipped += 1,
                Ok(Kind::Dir) if self.recursive && depth < MAX_DEPTH => {
                    // O_NOFOLLOW: if it was swapped for a link since, this fails.
                    match dir.open_at(&name) {
                        Ok(sub) => self.dir(&sub, &shown, depth + 1),
                        Err(e) => self.report.errors.push(format!("{}: {e}", shown.display())),
                    }
                }
                Ok(Kind::File { len, modified }) => {
                    let chars: Vec<char> = shown
                        .file_name()
                        .unwrap_or_default()
                        .to_string_lossy()
                        .chars()
                        .collect();
                    if !glob_match(&self.glob, &chars) || !self.is_old(modified) {
                        continue;
                    }
                    if !self.dry_run {
                        if let Err(e) = dir.unlink(&name) {
                            self.report.errors.push(format!("{}: {e}", shown.display()));
                            continue;
                        }
                    }
                    self.report.count += 1;
                    self.report.bytes += len;
                    if self.report.files.len() < MAX_LISTED {
                        self.report.files.push(shown.display().to_string());
                    }
                }
                Ok(Kind::Dir | Kind::Other) => {}
                // Gone since it was listed.
                Err(_) => {}
            }
        }
    }

    /// At least `older_than` before now; a time in the future is never old.
    fn is_old(&self, modified: SystemTime) -> bool {
        self.now
            .duration_since(modified)
            .is_ok_and(|age| age >= self.older_than.get())
    }
}

/// Whether `name` matches `glob` (`*` any run, `?` one character).
pub fn glob_match(glob: &[char], name: &[char]) -> bool {
    let (mut g, mut n) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        match glob.get(g) {
            Some('*') => {
                star = Some((g, n));
                g += 1;
            }
            Some(&c) if c == '?' || c == name[n] => {
                g += 1;
                n += 1;
            }
            _ => match star {
                Some((sg, sn)) => {
                    g = sg + 1;
                    n = sn + 1;
                    star = Some((sg, sn + 1));
                }
                None => return false,
            },
        }
    }
    glob[g..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;
    use std::time::Duration as Std;

    fn g(glob: &str, name: &str) -> bool {
        let c = |s: &str| s.chars().collect::<Vec<_>>();
        glob_match(&c(glob), &c(name))
    }

    #[test]
    fn globs() {
        assert!(g("*.log", "app.log"));
        assert!(g("*.log", ".log"));
        assert!(!g("*.log", "app.log.1"));
        assert!(g("*.log.*", "app.log.1"));
        assert!(g("app-?.gz", "app-1.gz"));
        assert!(!g("app-?.gz", "app-12.gz"));
        assert!(g("*", "anything"));
        assert!(g("a*b*c", "aXXbYYc"));
        assert!(!g("a*b*c", "aXXbYY"));
        assert!(g("core", "core"));
        assert!(!g("core", "core.1"));
    }

    struct Tree {
        base: PathBuf,
    }

    impl Drop for Tree {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.base);
        }
    }

    fn write(path: &Path, age: Std, now: SystemTime) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, b"0123456789").unwrap();
        let f = fs::File::options().write(true).open(path).unwrap();
        f.set_modified(now - age).unwrap();
    }

    /// base/root/{old.log, new.log, old.txt, sub/old.log, sub/deeper/old.log,
    /// link-out -> base/outside, link.log -> base/outside/old.log}, base/outside/old.log
    fn tree(name: &str, now: SystemTime) -> Tree {
        let base = std::env::temp_dir().join(format!("remedy-clean-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&base);
        let day = Std::from_secs(86_400);
        let root = base.join("root");
        write(&root.join("old.log"), 3 * day, now);
        write(&root.join("new.log"), Std::from_secs(60), now);
        write(&root.join("old.txt"), 3 * day, now);
        write(&root.join("sub/old.log"), 3 * day, now);
        write(&root.join("sub/deeper/old.log"), 3 * day, now);
        write(&base.join("outside/old.log"), 3 * day, now);
        std::os::unix::fs::symlink(base.join("outside"), root.join("link-out")).unwrap();
        std::os::unix::fs::symlink(base.join("outside/old.log"), root.join("link.log")).unwrap();
        Tree { base }
    }

    fn spec(t: &Tree) -> CleanSpec {
        CleanSpec {
            root: t.base.join("root").display().to_string(),
            glob: "*.log".into(),
            older_than: Duration::from_secs(86_400),
            recursive: None,
        }
    }

    #[test]
    fn deletes_only_old_matching_files_under_the_root() {
        let now = SystemTime::now();
        let t = tree("real", now);
        let s = spec(&t);
        s.validate().unwrap();
        let r = clean(&s, false, now).unwrap();
        let root = fs::canonicalize(t.base.join("root")).unwrap();
        let expect: Vec<String> = ["old.log", "sub/deeper/old.log", "sub/old.log"]
            .iter()
            .map(|p| root.join(p).display().to_string())
            .collect();
        assert_eq!(r.files, expect);
        assert_eq!((r.count, r.bytes), (3, 30));
        assert!(r.ok() && !r.dry_run);
        assert_eq!(r.symlinks_skipped, 2);
        // The newer file, the non-matching file, the file outside (reachable only through a
        // symlinked directory or a symlinked file) and the links themselves survive.
        assert!(root.join("new.log").exists());
        assert!(root.join("old.txt").exists());
        assert!(t.base.join("outside/old.log").exists());
        assert!(fs::symlink_metadata(root.join("link.log")).is_ok());
        assert!(!root.join("old.log").exists());
        assert!(!root.join("sub/deeper/old.log").exists());
    }

    #[test]
    fn dry_run_lists_and_deletes_nothing() {
        let now = SystemTime::now();
        let t = tree("dry", now);
        let r = clean(&spec(&t), true, now).unwrap();
        assert!(r.dry_run);
        assert_eq!(r.count, 3);
        assert!(t.base.join("root/old.log").exists());
        assert!(t.base.join("root/sub/old.log").exists());
    }

    #[test]
    fn not_recursive_stays_in_the_root() {
        let now = SystemTime::now();
        let t = tree("flat", now);
        let mut s = spec(&t);
        s.recursive = Some(false);
        let r = clean(&s, false, now).unwrap();
        assert_eq!(r.count, 1);
        assert!(t.base.join("root/sub/old.log").exists());
    }

    #[test]
    fn validation_refuses_dangerous_roots_and_globs() {
        let ok = CleanSpec {
            root: "/var/log/app".into(),
            glob: "*.log".into(),
            older_than: Duration::from_secs(60),
            recursive: None,
        };
        assert!(ok.validate().is_ok());
        for (root, glob, age) in [
            ("/", "*.log", 60),
            ("var/log", "*.log", 60),
            ("/var/log/{{service}}", "*.log", 60),
            ("/var/log", "../*.log", 60),
            ("/var/log", "", 60),
            ("/var/log", "*.log", 0),
        ] {
            let s = CleanSpec {
                root: root.into(),
                glob: glob.into(),
                older_than: Duration::from_secs(age),
                recursive: None,
            };
            assert!(s.validate().is_err(), "{root} {glob} {age}");
        }
        let missing = CleanSpec {
            root: "/nonexistent/remedy-root".into(),
            ..ok
        };
        assert!(clean(&missing, true, SystemTime::now()).is_err());
    }
}
