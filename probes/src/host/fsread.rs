//! Reading kernel files where "it is gone" is an answer, not an error.

use super::layout::{CgroupPath, Hierarchy};
use crate::error::{Error, ParseError, Result};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

/// Whether an I/O error means the file or its cgroup/process went away:
/// `ENOENT`, `ENODEV` (a removed cgroup's open file), `ESRCH` (an exited
/// process's /proc entries).
pub(crate) fn is_gone(e: &std::io::Error) -> bool {
    use nix::errno::Errno;
    e.kind() == ErrorKind::NotFound
        || matches!(e.raw_os_error(), Some(c) if c == Errno::ENODEV as i32 || c == Errno::ESRCH as i32)
}

/// The text of `path`, `None` when it (or its cgroup) does not exist.
pub(crate) fn read_opt(path: &Path) -> Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(t) => Ok(Some(t)),
        Err(e) if is_gone(&e) => Ok(None),
        Err(source) => Err(Error::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Reads `path` and parses it with `parse`; `None` when the file is absent.
pub(crate) fn read_parsed<T>(
    path: &Path,
    parse: impl FnOnce(&str) -> Result<T, ParseError>,
) -> Result<Option<T>> {
    match read_opt(path)? {
        None => Ok(None),
        Some(text) => parse(&text).map(Some).map_err(|source| Error::Parse {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// An open cgroup (or /proc) directory whose files are read with
/// `openat`, so each file costs a one-component lookup instead of a walk
/// of the whole path. Closed on drop.
pub(crate) struct DirFd {
    fd: std::os::fd::RawFd,
    pub(crate) path: PathBuf,
    buf: Vec<u8>,
}

impl DirFd {
    /// Opens `path` (`O_PATH`: no read access is needed to `openat` below
    /// it); `None` when it does not exist.
    pub(crate) fn open(path: &Path) -> Result<Option<DirFd>> {
        use nix::fcntl::{open, OFlag};
        let flags = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
        match open(path, flags, nix::sys::stat::Mode::empty()) {
            Ok(fd) => Ok(Some(DirFd {
                fd,
                path: path.to_path_buf(),
                buf: Vec::with_capacity(512),
            })),
            Err(e) if is_gone(&e.into()) => Ok(None),
            Err(e) => Err(Error::Io {
                path: path.to_path_buf(),
                source: e.into(),
            }),
        }
    }
}

impl DirFd {
    /// The text of file `name` (a path relative to this directory), `None`
    /// when it (or the directory) is gone.
    pub(crate) fn read(&mut self, name: &Path) -> Result<Option<&str>> {
        use nix::fcntl::{openat, OFlag};
        let io_err = |e: nix::errno::Errno, path: &Path| Error::Io {
            path: path.join(name),
            source: e.into(),
        };
        let flags = OFlag::O_RDONLY | OFlag::O_CLOEXEC;
        let fd = match openat(Some(self.fd), name, flags, nix::sys::stat::Mode::empty()) {
            Ok(fd) => fd,
            Err(e) if is_gone(&e.into()) => return Ok(None),
            Err(e) => return Err(io_err(e, &self.path)),
        };
        self.buf.clear();
        let result = loop {
            if self.buf.capacity() - self.buf.len() < 256 {
                self.buf.reserve(self.buf.len().max(512));
            }
            let start = self.buf.len();
            let spare = self.buf.capacity() - start;
            self.buf.resize(start + spare, 0);
            match nix::unistd::read(fd, &mut self.buf[start..]) {
                Ok(0) => {
                    self.buf.truncate(start);
                    break Ok(true);
                }
                Ok(n) => {
                    self.buf.truncate(start + n);
                    // cgroupfs and /proc files come from one seq_file
                    // record: a short read ending in a newline is the
                    // whole file, and saves the read that returns 0.
                    if n < spare && self.buf.last() == Some(&b'\n') {
                        break Ok(true);
                    }
                }
                Err(nix::errno::Errno::EINTR) => self.buf.truncate(start),
                Err(e) if is_gone(&e.into()) => break Ok(false),
                Err(e) => break Err(io_err(e, &self.path)),
            }
        };
        let _ = nix::unistd::close(fd);
        if !result? {
            return Ok(None);
        }
        utf8(&self.buf, || self.path.join(name)).map(Some)
    }
}

impl DirFd {
    /// Whether `name` (relative to this directory) exists.
    pub(crate) fn has(&self, name: &Path) -> bool {
        let flags = nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW;
        nix::sys::stat::fstatat(Some(self.fd), name, flags).is_ok()
    }

    /// The text of the last file [`Self::read`] gave.
    pub(crate) fn last_text(&self) -> &str {
        std::str::from_utf8(&self.buf).unwrap_or_default()
    }
}

/// `buf` as text, or a parse error naming the file (`path`).
pub(crate) fn utf8(buf: &[u8], path: impl FnOnce() -> std::path::PathBuf) -> Result<&str> {
    std::str::from_utf8(buf).map_err(|_| Error::Parse {
        path: path(),
        source: ParseError::new("UTF-8 text", &String::from_utf8_lossy(buf)),
    })
}

impl Drop for DirFd {
    fn drop(&mut self) {
        let _ = nix::unistd::close(self.fd);
    }
}

/// Reads the control files of one cgroup, one hierarchy directory at a
/// time: [`Self::enter`] the directory of the cgroup in a hierarchy, then
/// [`Self::read`] its files by name.
pub(crate) trait CgroupFiles {
    /// Moves to the directory of `cgroup` in hierarchy `h`, which is
    /// number `index` in [`CgroupLayout::hierarchies`](super::CgroupLayout::hierarchies); false (and no
    /// current directory) when it does not exist.
    fn enter(&mut self, index: usize, h: &Hierarchy, cgroup: &CgroupPath) -> Result<bool>;

    /// The text of file `name` in the current directory, `None` when it
    /// (or the directory) is gone.
    fn read(&mut self, name: &'static str) -> Result<Option<&str>>;

    /// The current directory (for error messages).
    fn dir_path(&self) -> PathBuf;

    /// Reads file `name` and parses it with `parse`; `None` when absent.
    fn parsed<T>(
        &mut self,
        name: &'static str,
        parse: impl FnOnce(&str) -> Result<T, ParseError>,
    ) -> Result<Option<T>> {
        let parsed = match self.read(name)? {
            None => return Ok(None),
            Some(text) => parse(text),
        };
        parsed.map(Some).map_err(|source| Error::Parse {
            path: self.dir_path().join(name),
            source,
        })
    }
}

/// Opens each directory afresh (one-off reads).
#[derive(Default)]
pub(crate) struct FreshDirs {
    current: Option<DirFd>,
}

impl CgroupFiles for FreshDirs {
    fn enter(&mut self, _index: usize, h: &Hierarchy, cgroup: &CgroupPath) -> Result<bool> {
        self.current = DirFd::open(&h.dir(cgroup))?;
        Ok(self.current.is_some())
    }

    fn read(&mut self, name: &'static str) -> Result<Option<&str>> {
        match self.current.as_mut() {
            Some(d) => d.read(Path::new(name)),
            None => Ok(None),
        }
    }

    fn dir_path(&self) -> PathBuf {
        self.current
            .as_ref()
            .map(|d| d.path.clone())
            .unwrap_or_default()
    }
}

/// [`FreshDirs`] that also notes the path of every file it read.
#[derive(Default)]
pub(crate) struct RecordingDirs {
    dirs: FreshDirs,
    pub(crate) read: Vec<PathBuf>,
}

impl CgroupFiles for RecordingDirs {
    fn enter(&mut self, index: usize, h: &Hierarchy, cgroup: &CgroupPath) -> Result<bool> {
        self.dirs.enter(index, h, cgroup)
    }

    fn read(&mut self, name: &'static str) -> Result<Option<&str>> {
        let path = self.dirs.dir_path().join(name);
        let text = self.dirs.read(name)?;
        if text.is_some() {
            self.read.push(path);
        }
        Ok(text)
    }

    fn dir_path(&self) -> PathBuf {
        self.dirs.dir_path()
    }
}
