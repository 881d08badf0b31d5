//! Cgroup directories kept open between walks.
//!
//! A walk learns whether each cgroup directory has subdirectories from
//! its link count, one `fstatat` by name per directory per hierarchy: a
//! path lookup, most of the walk's cost. A [`WalkCache`] keeps the
//! directories it saw open (`O_PATH`: no read access, no kernel buffer)
//! and the next walk asks `fstat` on the descriptor instead, about half
//! the cost, when the directory listing shows the same inode under the
//! same name (a cgroup removed and made again has a new inode: it is
//! looked up by name again).

use super::cache::FileBudget;
use super::layout::{CgroupPath, Hierarchy};
use nix::fcntl::OFlag;
use nix::sys::stat::{FileStat, Mode};
use std::collections::HashMap;
use std::os::fd::RawFd;
use std::path::PathBuf;

/// The cgroup directories of one hierarchy seen by earlier walks, open,
/// as many as its [`FileBudget`] allows. Closed on drop.
pub struct WalkCache {
    /// The hierarchy the directories are in (its mount point).
    mount: Option<PathBuf>,
    dirs: HashMap<CgroupPath, OpenDir>,
    /// The walk under way; entries not seen in it are closed at its end.
    round: u64,
    budget: FileBudget,
}

/// One open directory.
struct OpenDir {
    fd: RawFd,
    ino: u64,
    seen: u64,
    budget: FileBudget,
}

impl Drop for OpenDir {
    fn drop(&mut self) {
        let _ = nix::unistd::close(self.fd);
        self.budget.give_back(1);
    }
}

impl WalkCache {
    /// An empty cache holding descriptors from `budget`.
    pub fn new(budget: &FileBudget) -> Self {
        WalkCache {
            mount: None,
            dirs: HashMap::new(),
            round: 0,
            budget: budget.clone(),
        }
    }

    /// Directories held open.
    pub fn len(&self) -> usize {
        self.dirs.len()
    }

    /// Whether no directory is held.
    pub fn is_empty(&self) -> bool {
        self.dirs.is_empty()
    }

    /// Closes directories until at most `n` are held.
    pub fn shrink_to(&mut self, n: usize) {
        if self.dirs.len() <= n {
            return;
        }
        let extra: Vec<CgroupPath> = self.dirs.keys().skip(n).cloned().collect();
        for cg in extra {
            self.dirs.remove(&cg);
        }
    }

    /// Closes every directory.
    pub fn clear(&mut self) {
        self.dirs.clear();
    }

    /// Starts a walk of `h` (entries of another hierarchy are dropped).
    pub(crate) fn begin(&mut self, h: &Hierarchy) {
        if self.mount.as_ref() != Some(&h.mount_point) {
            self.dirs.clear();
            self.mount = Some(h.mount_point.clone());
        }
        self.round += 1;
    }

    /// Ends the walk: closes what it did not see.
    pub(crate) fn end(&mut self) {
        let round = self.round;
        self.dirs.retain(|_, d| d.seen == round);
    }

    /// The status of `cgroup` by its open descriptor, when one is held
    /// and the listing showed inode `ino` under its name (else `None`,
    /// and a descriptor of another directory is closed).
    pub(crate) fn stat(&mut self, cgroup: &CgroupPath, ino: u64) -> Option<FileStat> {
        let d = self.dirs.get_mut(cgroup)?;
        if d.ino == ino {
            if let Ok(st) = nix::sys::stat::fstat(d.fd) {
                d.seen = self.round;
                return Some(st);
            }
        }
        self.dirs.remove(cgroup);
        None
    }

    /// Keeps `cgroup`, the directory `name` in the directory open as
    /// `parent`, whose status `st` was just read by name, when the budget
    /// has room (and it is not held already).
    pub(crate) fn keep(&mut self, parent: RawFd, name: &[u8], cgroup: &CgroupPath, st: &FileStat) {
        if let Some(d) = self.dirs.get_mut(cgroup) {
            d.seen = self.round;
            return;
        }
        if !self.budget.take() {
            return;
        }
        let flags = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW;
        match nix::fcntl::openat(Some(parent), name, flags, Mode::empty()) {
            Ok(fd) => {
                let d = OpenDir {
                    fd,
                    ino: st.st_ino,
                    seen: self.round,
                    budget: self.budget.clone(),
                };
                // Opened after the status was read: the inode says
                // whether it is still that directory.
                match nix::sys::stat::fstat(fd) {
                    Ok(now) if now.st_ino == st.st_ino => {
                        self.dirs.insert(cgroup.clone(), d);
                    }
                    _ => drop(d),
                }
            }
            Err(_) => self.budget.give_back(1),
        }
    }
}
