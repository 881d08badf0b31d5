//! Re-reading the same cgroups cheaply: their files stay open between
//! reads, and a re-read is one `pread` at offset 0 (cgroupfs regenerates
//! the text on every read from the start). Opening a cgroupfs file costs
//! several times more than reading it, so an exporter scraping the same
//! thousand cgroups every few seconds keeps them open.

use super::fsread::{is_gone, Dirs, Reader};
use super::layout::{CgroupLayout, CgroupPath, Controllers};
use super::stats::CgroupStats;
use crate::error::{Error, Result};
use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Reads [`CgroupStats`] of cgroups again and again, keeping up to
/// `max_files` files open between reads. Call [`StatsCache::sweep`] after
/// each round (scrape) to close the files of cgroups that were not read in
/// it (removed cgroups, for instance).
///
/// Relies on cgroupfs failing reads of a removed cgroup's open files
/// (`ENODEV`), which marks the directory stale.
pub struct StatsCache {
    which: Controllers,
    dirs: HashMap<PathBuf, CachedDir>,
    round: u64,
    open_files: Arc<AtomicUsize>,
    max_files: usize,
}

impl StatsCache {
    /// A cache reading the `which` controllers, holding at most
    /// `max_files` open files (beyond that, files are opened per read).
    pub fn new(which: Controllers, max_files: usize) -> Self {
        StatsCache {
            which,
            dirs: HashMap::new(),
            round: 0,
            open_files: Arc::new(AtomicUsize::new(0)),
            max_files,
        }
    }

    /// The stats of `cgroup`, as [`CgroupLayout::stats_of`] would give.
    pub fn stats(&mut self, layout: &CgroupLayout, cgroup: &CgroupPath) -> Result<CgroupStats> {
        let which = self.which;
        layout.stats_with(self, cgroup, which)
    }

    /// Closes the files of directories not used since the previous sweep.
    pub fn sweep(&mut self) {
        let round = self.round;
        self.dirs.retain(|_, d| d.used == round && !d.stale);
        self.round += 1;
    }

    /// Files currently held open.
    pub fn open_files(&self) -> usize {
        self.open_files.load(Ordering::Relaxed)
    }
}

impl Dirs for StatsCache {
    type Dir = CachedDir;

    fn open(&mut self, path: &Path) -> Result<Option<&mut CachedDir>> {
        if self.dirs.get(path).is_some_and(|d| d.stale) {
            self.dirs.remove(path);
        }
        if !self.dirs.contains_key(path) {
            if !path.is_dir() {
                return Ok(None);
            }
            let dir = CachedDir {
                path: path.to_path_buf(),
                files: Vec::new(),
                buf: Vec::with_capacity(512),
                stale: false,
                used: self.round,
                open_files: self.open_files.clone(),
                max_files: self.max_files,
            };
            self.dirs.insert(path.to_path_buf(), dir);
        }
        let d = self.dirs.get_mut(path).expect("inserted above");
        d.used = self.round;
        Ok(Some(d))
    }
}

/// One cgroup directory with its files kept open.
pub(crate) struct CachedDir {
    path: PathBuf,
    files: Vec<(String, File)>,
    buf: Vec<u8>,
    /// The directory vanished (a read gave ENODEV/ENOENT): reopen next time.
    stale: bool,
    /// The round it was last used in.
    used: u64,
    /// Files open in the whole cache, and the most it may hold.
    open_files: Arc<AtomicUsize>,
    max_files: usize,
}

impl CachedDir {
    /// Reads `file` from offset 0 into `buf`; `Ok(false)` when the cgroup
    /// is gone.
    fn pread_all(file: &File, buf: &mut Vec<u8>, path: &Path) -> Result<bool> {
        buf.clear();
        loop {
            let start = buf.len();
            if buf.capacity() - start < 256 {
                buf.reserve(start.max(512));
            }
            let spare = buf.capacity() - start;
            buf.resize(start + spare, 0);
            match file.read_at(&mut buf[start..], start as u64) {
                Ok(0) => {
                    buf.truncate(start);
                    return Ok(true);
                }
                Ok(n) => {
                    buf.truncate(start + n);
                    // One seq_file record: a short read ending in a newline
                    // is the whole file.
                    if n < spare && buf.last() == Some(&b'\n') {
                        return Ok(true);
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => buf.truncate(start),
                Err(e) if is_gone(&e) => return Ok(false),
                Err(source) => {
                    return Err(Error::Io {
                        path: path.to_path_buf(),
                        source,
                    })
                }
            }
        }
    }
}

impl Drop for CachedDir {
    fn drop(&mut self) {
        self.open_files
            .fetch_sub(self.files.len(), Ordering::Relaxed);
    }
}

impl Reader for CachedDir {
    fn path(&self) -> &Path {
        &self.path
    }

    fn read(&mut self, name: &str) -> Result<Option<&str>> {
        let path = self.path.join(name);
        let alive = match self.files.iter().position(|(n, _)| n == name) {
            Some(i) => Self::pread_all(&self.files[i].1, &mut self.buf, &path)?,
            None => {
                // Not open yet (or absent last time: files can appear when
                // a v2 controller is enabled, so absence is not cached).
                let file = match File::open(&path) {
                    Ok(f) => f,
                    Err(e) if is_gone(&e) => return Ok(None),
                    Err(source) => return Err(Error::Io { path, source }),
                };
                let alive = Self::pread_all(&file, &mut self.buf, &path)?;
                if alive && self.open_files.load(Ordering::Relaxed) < self.max_files {
                    self.files.push((name.to_string(), file));
                    self.open_files.fetch_add(1, Ordering::Relaxed);
                }
                alive
            }
        };
        if !alive {
            self.stale = true;
            return Ok(None);
        }
        std::str::from_utf8(&self.buf)
            .map(Some)
            .map_err(|_| Error::Parse {
                path,
                source: crate::error::ParseError::new(
                    "UTF-8 text",
                    &String::from_utf8_lossy(&self.buf),
                ),
            })
    }
}
