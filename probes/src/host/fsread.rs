//! Reading kernel files where "it is gone" is an answer, not an error.

use crate::error::{Error, ParseError, Result};
use std::io::ErrorKind;
use std::path::Path;

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
