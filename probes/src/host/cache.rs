//! Re-reading the same cgroups cheaply: their files stay open between
//! reads, and a re-read is one `pread` at offset 0 (cgroupfs regenerates
//! the text on every read from the start). Opening a cgroupfs file costs
//! several times more than reading it, so an exporter scraping the same
//! thousand cgroups every few seconds keeps them open.
//!
//! The price is kernel memory: a cgroupfs file that has been read keeps
//! its seq_file buffer (a page, 4 KiB) until it is closed, charged to the
//! reader's memory cgroup. [`FileBudget`] bounds how many are held.
//!
//! - [`HeldCgroup`]: the open files of one cgroup.
//! - [`LayoutReader`]: reads many [`HeldCgroup`]s of one layout (which file
//!   comes from which hierarchy worked out once; it owns the read buffer,
//!   so a read allocates nothing once warm). The exporter makes one per
//!   share of each scrape.
//! - [`StatsReader`]: the same for a caller that reads one [`HeldCgroup`]
//!   at a time.
//! - [`StatsCache`]: held cgroups behind a map from cgroup path, for a
//!   library user that reads cgroups one by one (the exporter keeps its
//!   own list, merged with each walk).

use super::fsread::{is_gone, utf8, CgroupFiles, DirFd};
use super::layout::{CgroupLayout, CgroupPath, Controllers, Hierarchy};
use super::stats::{CgroupStats, StatPlan};
use crate::error::{Error, Result};
use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// How many files the [`HeldCgroup`]s sharing it may keep open, and how
/// many they do. Beyond the limit, files are opened for each read and
/// closed after it. Clones share the count.
#[derive(Debug, Clone)]
pub struct FileBudget {
    open: Arc<AtomicUsize>,
    max: Arc<AtomicUsize>,
}

impl FileBudget {
    /// A budget of `max` open files.
    pub fn new(max: usize) -> Self {
        FileBudget {
            open: Arc::new(AtomicUsize::new(0)),
            max: Arc::new(AtomicUsize::new(max)),
        }
    }

    /// The most files that may be held.
    pub fn max(&self) -> usize {
        self.max.load(Ordering::Relaxed)
    }

    /// Changes the most files that may be held from now on (files held
    /// beyond it stay open until their holders close them).
    pub fn set_max(&self, max: usize) {
        self.max.store(max, Ordering::Relaxed);
    }

    /// Files held now.
    pub fn open_files(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    /// Takes one file from the budget; false when it is spent.
    pub(crate) fn take(&self) -> bool {
        let max = self.max();
        self.open
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n < max).then_some(n + 1)
            })
            .is_ok()
    }

    /// Gives `n` files back.
    pub(crate) fn give_back(&self, n: usize) {
        if n > 0 {
            self.open.fetch_sub(n, Ordering::Relaxed);
        }
    }
}

/// The control files of one cgroup kept open between reads (as many as
/// its [`FileBudget`] allows), read by a [`StatsReader`]. Closed on drop.
///
/// The files are filed by hierarchy position in the [`CgroupLayout`] they
/// were read with: read a `HeldCgroup` with that layout only (when the
/// layout changes, drop it or call [`Self::close`]).
pub struct HeldCgroup {
    cgroup: CgroupPath,
    files: HeldFiles,
}

/// The open files of a [`HeldCgroup`].
struct HeldFiles {
    /// Directories entered so far.
    dirs: Vec<HeldDir>,
    budget: FileBudget,
}

/// One directory of a [`HeldCgroup`]: it existed when it was entered
/// first; its files held open.
struct HeldDir {
    /// Position of the hierarchy in the layout.
    hierarchy: usize,
    files: Vec<(&'static str, File)>,
}

impl HeldCgroup {
    /// `cgroup`, with no file open yet, holding files from `budget`.
    pub fn new(cgroup: CgroupPath, budget: &FileBudget) -> Self {
        HeldCgroup {
            cgroup,
            files: HeldFiles {
                dirs: Vec::new(),
                budget: budget.clone(),
            },
        }
    }

    /// The cgroup.
    pub fn cgroup(&self) -> &CgroupPath {
        &self.cgroup
    }

    /// Files held open.
    pub fn open_files(&self) -> usize {
        self.files.open_files()
    }

    /// Closes every file (the next read opens them again).
    pub fn close(&mut self) {
        self.files.close();
    }
}

impl HeldFiles {
    fn open_files(&self) -> usize {
        self.dirs.iter().map(|d| d.files.len()).sum()
    }

    fn close(&mut self) {
        self.budget.give_back(self.open_files());
        self.dirs.clear();
    }
}

impl Drop for HeldFiles {
    fn drop(&mut self) {
        self.close();
    }
}

/// Reads the stats of [`HeldCgroup`]s, one at a time: owns the read
/// buffer and a scratch path, so a warm read allocates nothing but the
/// stats' path.
pub struct StatsReader {
    which: Controllers,
    buf: Vec<u8>,
    path: PathBuf,
    /// The directory above the last cgroup read in each hierarchy, open,
    /// for the files the budget leaves no room to hold.
    parents: Vec<Parent>,
}

/// An open directory of cgroups: files below it are opened relative to
/// it (`openat` of `<child>/<file>`), which walks two path components
/// instead of the whole path from `/`.
struct Parent {
    hierarchy: usize,
    /// The directory's path relative to the mount point.
    relative: PathBuf,
    dir: DirFd,
}

impl StatsReader {
    /// A reader of the `which` controllers' figures.
    pub fn new(which: Controllers) -> Self {
        StatsReader {
            which,
            buf: vec![0; 4096],
            path: PathBuf::new(),
            parents: Vec::new(),
        }
    }

    /// The stats of `held`, as [`CgroupLayout::stats_of`] would give
    /// them: read through the files `held` keeps open, opening (and
    /// keeping, within the budget) the others. A held file whose cgroup
    /// went away (cgroupfs then fails its reads with `ENODEV`) is closed
    /// and opened again by path, so a cgroup removed and made again
    /// between two reads is read from its new directory.
    pub fn stats(&mut self, layout: &CgroupLayout, held: &mut HeldCgroup) -> Result<CgroupStats> {
        let plan = StatPlan::new(layout, self.which);
        self.stats_by(layout, &plan, held)
    }

    /// [`Self::stats`] with a plan made for `layout`.
    fn stats_by(
        &mut self,
        layout: &CgroupLayout,
        plan: &StatPlan,
        held: &mut HeldCgroup,
    ) -> Result<CgroupStats> {
        let mut reading = Reading {
            layout,
            cgroup: &held.cgroup,
            files: &mut held.files,
            buf: &mut self.buf,
            path: &mut self.path,
            parents: &mut self.parents,
            current: None,
            nth: 0,
        };
        layout.stats_with(&mut reading, plan, &held.cgroup)
    }
}

/// Reads many cgroups of one layout (which file comes from which
/// hierarchy is worked out once, not per cgroup).
pub struct LayoutReader<'a> {
    layout: &'a CgroupLayout,
    plan: StatPlan,
    reader: StatsReader,
}

impl<'a> LayoutReader<'a> {
    /// A reader of `which` in `layout`.
    pub fn new(layout: &'a CgroupLayout, which: Controllers) -> Self {
        LayoutReader {
            layout,
            plan: StatPlan::new(layout, which),
            reader: StatsReader::new(which),
        }
    }

    /// The stats of `held` (see [`StatsReader::stats`]).
    pub fn stats(&mut self, held: &mut HeldCgroup) -> Result<CgroupStats> {
        self.reader.stats_by(self.layout, &self.plan, held)
    }
}

/// One read of a [`HeldCgroup`].
struct Reading<'a> {
    layout: &'a CgroupLayout,
    cgroup: &'a CgroupPath,
    files: &'a mut HeldFiles,
    buf: &'a mut Vec<u8>,
    path: &'a mut PathBuf,
    parents: &'a mut Vec<Parent>,
    /// The entered directory: its position in `files.dirs`.
    current: Option<usize>,
    /// Files read in it so far.
    nth: usize,
}

impl Reading<'_> {
    /// Reads `name` of the directory at `pos` without holding it: opened
    /// relative to the cgroup's parent directory (kept open by the
    /// reader), read, closed.
    fn read_through_parent(&mut self, pos: usize, name: &'static str) -> Result<Option<&str>> {
        let h = self.files.dirs[pos].hierarchy;
        let relative = self.cgroup.relative();
        let (parent, child) = match (relative.parent(), relative.file_name()) {
            (Some(p), Some(c)) => (p, Path::new(c)),
            // The hierarchy's root cgroup.
            _ => (Path::new(""), Path::new("")),
        };
        self.path.clear();
        self.path.push(child);
        self.path.push(name);
        let mut found = None;
        for attempt in 0..2 {
            let at = match self
                .parents
                .iter()
                .position(|p| p.hierarchy == h && p.relative == parent)
            {
                Some(at) => at,
                None => {
                    let dir = self.layout.nth(h).mount_point.join(parent);
                    let Some(dir) = DirFd::open(&dir)? else {
                        return Ok(None);
                    };
                    self.parents.retain(|p| p.hierarchy != h);
                    self.parents.push(Parent {
                        hierarchy: h,
                        relative: parent.to_path_buf(),
                        dir,
                    });
                    self.parents.len() - 1
                }
            };
            if self.parents[at].dir.read(self.path)?.is_some() {
                found = Some(at);
                break;
            }
            // Absent: the file, the cgroup, or the parent, when the parent
            // was removed (and maybe made again) since it was opened. That
            // last case shows no cgroup below it: opened afresh, once.
            if attempt > 0 || child.as_os_str().is_empty() || self.parents[at].dir.has(child) {
                break;
            }
            self.parents.swap_remove(at);
        }
        Ok(found.map(|at| self.parents[at].dir.last_text()))
    }

    /// The mount point of the current directory's hierarchy.
    fn mount(&self) -> Option<&Path> {
        let d = &self.files.dirs[self.current?];
        Some(&self.layout.nth(d.hierarchy).mount_point)
    }

    /// Sets `self.path` to the path of `name` in the current directory
    /// (no allocation once the scratch path is long enough).
    fn set_path(&mut self, name: &str) {
        self.path.clear();
        if let Some(i) = self.current {
            let h = self.files.dirs[i].hierarchy;
            self.path.push(&self.layout.nth(h).mount_point);
            self.path.push(self.cgroup.relative());
        }
        self.path.push(name);
    }
}

impl CgroupFiles for Reading<'_> {
    fn enter(&mut self, index: usize, h: &Hierarchy, cgroup: &CgroupPath) -> Result<bool> {
        debug_assert_eq!(cgroup, self.cgroup);
        self.current = None;
        let pos = match self.files.dirs.iter().position(|d| d.hierarchy == index) {
            Some(pos) => pos,
            None => {
                if !h.dir(cgroup).is_dir() {
                    return Ok(false);
                }
                self.files.dirs.push(HeldDir {
                    hierarchy: index,
                    files: Vec::new(),
                });
                self.files.dirs.len() - 1
            }
        };
        self.current = Some(pos);
        self.nth = 0;
        Ok(true)
    }

    fn read(&mut self, name: &'static str) -> Result<Option<&str>> {
        let Some(pos) = self.current else {
            return Ok(None);
        };
        let dir = &mut self.files.dirs[pos];
        // Files are read in the same order every time, and held in the
        // order they were first read: the next one is most likely at
        // `self.nth`.
        let nth = self.nth;
        self.nth += 1;
        let held_at = match dir.files.get(nth) {
            Some((n, _)) if same_name(n, name) => Some(nth),
            _ => dir.files.iter().position(|(n, _)| same_name(n, name)),
        };
        if let Some(i) = held_at {
            match pread_all(&dir.files[i].1, self.buf) {
                Ok(Some(len)) => {
                    return utf8(&self.buf[..len], || self.dir_path().join(name)).map(Some)
                }
                Ok(None) => {
                    // The cgroup went away, and may be back: opened again
                    // below.
                    dir.files.remove(i);
                    self.files.budget.give_back(1);
                }
                Err(source) => {
                    let path = self.dir_path().join(name);
                    return Err(Error::Io { path, source });
                }
            }
        }
        if !self.files.budget.take() {
            return self.read_through_parent(pos, name);
        }
        self.set_path(name);
        let opened = File::open(&*self.path).and_then(|f| Ok((pread_all(&f, self.buf)?, f)));
        let (len, file) = match opened {
            Ok((Some(len), file)) => (len, file),
            Ok((None, _)) => {
                self.files.budget.give_back(1);
                return Ok(None);
            }
            Err(e) if is_gone(&e) => {
                self.files.budget.give_back(1);
                return Ok(None);
            }
            Err(source) => {
                self.files.budget.give_back(1);
                let path = self.path.clone();
                return Err(Error::Io { path, source });
            }
        };
        let files = &mut self.files.dirs[pos].files;
        let at = nth.min(files.len());
        files.insert(at, (name, file));
        utf8(&self.buf[..len], || self.path.clone()).map(Some)
    }

    fn dir_path(&self) -> PathBuf {
        match self.mount() {
            Some(mount) => mount.join(self.cgroup.relative()),
            None => PathBuf::new(),
        }
    }
}

/// Whether two file names are the same (the same literal, most often).
fn same_name(a: &str, b: &str) -> bool {
    std::ptr::eq(a, b) || a == b
}

/// Reads `file` from offset 0 into `buf` (whose whole length is usable
/// space, zeroed once: it is grown, never cleared): the length read, or
/// `None` when the file's cgroup is gone.
fn pread_all(file: &File, buf: &mut Vec<u8>) -> std::io::Result<Option<usize>> {
    if buf.len() < 512 {
        buf.resize(4096, 0);
    }
    let mut filled = 0;
    loop {
        if buf.len() - filled < 256 {
            buf.resize(buf.len() * 2, 0);
        }
        let spare = buf.len() - filled;
        match file.read_at(&mut buf[filled..], filled as u64) {
            Ok(0) => return Ok(Some(filled)),
            Ok(n) => {
                filled += n;
                // One seq_file record: a short read ending in a newline
                // is the whole file.
                if n < spare && buf[filled - 1] == b'\n' {
                    return Ok(Some(filled));
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) if is_gone(&e) => return Ok(None),
            Err(e) => return Err(e),
        }
    }
}

/// Reads [`CgroupStats`] of cgroups again and again, keeping up to
/// `max_files` files open between reads. Call [`StatsCache::sweep`] after
/// each round (scrape) to close the files of cgroups that were not read in
/// it (removed cgroups, for instance).
///
/// Relies on cgroupfs failing reads of a removed cgroup's open files
/// (`ENODEV`): such a file is opened again by path.
pub struct StatsCache {
    reader: StatsReader,
    budget: FileBudget,
    /// The layout the held files were filed by.
    layout: Option<CgroupLayout>,
    held: HashMap<CgroupPath, (HeldCgroup, u64)>,
    round: u64,
}

impl StatsCache {
    /// A cache reading the `which` controllers, holding at most
    /// `max_files` open files (beyond that, files are opened per read).
    pub fn new(which: Controllers, max_files: usize) -> Self {
        StatsCache {
            reader: StatsReader::new(which),
            budget: FileBudget::new(max_files),
            layout: None,
            held: HashMap::new(),
            round: 0,
        }
    }

    /// The stats of `cgroup`, as [`CgroupLayout::stats_of`] would give.
    pub fn stats(&mut self, layout: &CgroupLayout, cgroup: &CgroupPath) -> Result<CgroupStats> {
        if self.layout.as_ref() != Some(layout) {
            self.held.clear();
            self.layout = Some(layout.clone());
        }
        let round = self.round;
        if !self.held.contains_key(cgroup) {
            let held = HeldCgroup::new(cgroup.clone(), &self.budget);
            self.held.insert(cgroup.clone(), (held, round));
        }
        let (held, used) = self.held.get_mut(cgroup).expect("inserted above");
        *used = round;
        self.reader.stats(layout, held)
    }

    /// Closes the files of cgroups not read since the previous sweep.
    pub fn sweep(&mut self) {
        let round = self.round;
        self.held.retain(|_, (_, used)| *used == round);
        self.round += 1;
    }

    /// Files currently held open.
    pub fn open_files(&self) -> usize {
        self.budget.open_files()
    }
}
