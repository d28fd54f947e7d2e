//! Directory handles that never follow a symbolic link: the file-system calls `clean` makes,
//! relative to an open directory (`openat`, `fstatat`, `unlinkat` with no-follow flags).
//!
//! Why not paths: checking that a path is under the root and then deleting it by path is a
//! race (the tmpwatch class of bugs). Whoever can write in the root could swap a checked
//! directory for a symlink to `/etc` between the check and the `unlink`, and the path would then
//! lead out of the root. A handle keeps pointing at the directory that was opened, `O_NOFOLLOW`
//! refuses to open a symlink as a directory, and `unlinkat` never follows the name it removes.
//! So whatever is swapped in, nothing outside the opened root is reached.

use std::ffi::{CStr, CString};
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::{Duration, SystemTime};

/// What a name in a directory is, seen without following it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Dir,
    File { len: u64, modified: SystemTime },
    Symlink,
    Other,
}

/// An open directory.
#[derive(Debug)]
pub struct Dir(OwnedFd);

const OPEN_FLAGS: libc::c_int =
    libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC;

fn check(rc: libc::c_int) -> io::Result<libc::c_int> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

fn c_path(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a NUL byte in the path"))
}

impl Dir {
    /// Opens a directory by path; a symlink as the last component is refused.
    pub fn open(path: &Path) -> io::Result<Dir> {
        let p = c_path(path)?;
        // SAFETY: `p` is a valid NUL-terminated string; the returned fd is owned once checked.
        let fd = check(unsafe { libc::open(p.as_ptr(), OPEN_FLAGS) })?;
        // SAFETY: `fd` is a freshly opened descriptor nobody else owns.
        Ok(Dir(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    /// Opens the subdirectory `name`; a symlink (even one to a directory) is refused.
    pub fn open_at(&self, name: &CStr) -> io::Result<Dir> {
        // SAFETY: a valid dirfd and NUL-terminated name; the fd is owned once checked.
        let fd = check(unsafe { libc::openat(self.0.as_raw_fd(), name.as_ptr(), OPEN_FLAGS) })?;
        // SAFETY: as in `open`.
        Ok(Dir(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    /// The names in the directory, without `.` and `..`.
    pub fn names(&self) -> io::Result<Vec<CString>> {
        // fdopendir takes the descriptor over, so give it a duplicate.
        // SAFETY: dup of a valid descriptor.
        let dup = check(unsafe { libc::dup(self.0.as_raw_fd()) })?;
        // SAFETY: `dup` is a valid directory descriptor that the DIR stream now owns.
        let stream = unsafe { libc::fdopendir(dup) };
        if stream.is_null() {
            let e = io::Error::last_os_error();
            // SAFETY: fdopendir failed, so `dup` is still ours to close.
            unsafe { libc::close(dup) };
            return Err(e);
        }
        // The duplicate shares the offset: start from the beginning whatever came before.
        // SAFETY: `stream` is a valid open DIR stream.
        unsafe { libc::rewinddir(stream) };
        let mut names = Vec::new();
        loop {
            // SAFETY: `stream` is valid; the entry is read before the next readdir call.
            let entry = unsafe { libc::readdir(stream) };
            if entry.is_null() {
                break;
            }
            // SAFETY: d_name is NUL-terminated within the entry.
            let name = unsafe { CStr::from_ptr((*entry).d_name.as_ptr()) };
            if name != c"." && name != c".." {
                names.push(name.to_owned());
            }
        }
        // SAFETY: closes the stream and `dup` with it, once.
        unsafe { libc::closedir(stream) };
        Ok(names)
    }

    /// What `name` is, without following it.
    pub fn kind(&self, name: &CStr) -> io::Result<Kind> {
        let mut st = MaybeUninit::<libc::stat>::uninit();
        // SAFETY: valid dirfd and name; `st` is written by fstatat before it is read.
        check(unsafe {
            libc::fstatat(
                self.0.as_raw_fd(),
                name.as_ptr(),
                st.as_mut_ptr(),
                libc::AT_SYMLINK_NOFOLLOW,
            )
        })?;
        // SAFETY: fstatat succeeded, so `st` is initialised.
        let st = unsafe { st.assume_init() };
        Ok(match st.st_mode & libc::S_IFMT {
            libc::S_IFDIR => Kind::Dir,
            libc::S_IFLNK => Kind::Symlink,
            libc::S_IFREG => Kind::File {
                len: u64::try_from(st.st_size).unwrap_or(0),
                modified: mtime(st.st_mtime, st.st_mtime_nsec),
            },
            _ => Kind::Other,
        })
    }

    /// Removes the file `name` (never what it might point at).
    pub fn unlink(&self, name: &CStr) -> io::Result<()> {
        // SAFETY: valid dirfd and name.
        check(unsafe { libc::unlinkat(self.0.as_raw_fd(), name.as_ptr(), 0) }).map(|_| ())
    }
}

fn mtime(secs: i64, nsec: i64) -> SystemTime {
    let secs = u64::try_from(secs).unwrap_or(0);
    let nsec = u32::try_from(nsec).unwrap_or(0).min(999_999_999);
    SystemTime::UNIX_EPOCH + Duration::new(secs, nsec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sees_links_as_links_and_refuses_to_open_them() {
        let base = std::env::temp_dir().join(format!("remedy-dirfd-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir_all(base.join("real")).unwrap();
        std::fs::write(base.join("f"), b"abc").unwrap();
        std::os::unix::fs::symlink(base.join("real"), base.join("link")).unwrap();
        let d = Dir::open(&base).unwrap();
        let mut names = d.names().unwrap();
        names.sort();
        assert_eq!(names, [c"f", c"link", c"real"].map(CStr::to_owned));
        assert_eq!(d.kind(c"real").unwrap(), Kind::Dir);
        assert_eq!(d.kind(c"link").unwrap(), Kind::Symlink);
        assert!(matches!(d.kind(c"f").unwrap(), Kind::File { len: 3, .. }));
        assert!(d.open_at(c"real").is_ok());
        assert!(
            d.open_at(c"link").is_err(),
            "a symlinked directory was opened"
        );
        assert!(Dir::open(&base.join("link")).is_err());
        // Listing twice gives the same names (the shared offset is rewound).
        assert_eq!(d.names().unwrap().len(), 3);
        d.unlink(c"link").unwrap();
        assert!(base.join("real").is_dir(), "unlink followed the link");
        let _ = std::fs::remove_dir_all(&base);
    }
}
