//! The host view: what the kernel's own files say about a cgroup or a
//! process, read straight from cgroupfs and /proc (never through the
//! runtime being judged).
//!
//! ```no_run
//! use probes::host::{CgroupPath, Host};
//! let host = Host::new(); // or Host::with_root(tempdir) for a fake tree
//! let layout = host.layout()?; // v1, v2 or hybrid, from mountinfo
//! let cg = CgroupPath::new("/boxwatch/run-1/c1")?;
//! let stats = layout.stats(&cg)?;
//! println!("{:?} ns of CPU, quota {:?} cores", stats.cpu_usage_ns,
//!          stats.cpu_max.and_then(|m| m.cores()));
//! for cg in layout.list_subtree(&CgroupPath::new("/boxwatch")?, 1000)?.cgroups {
//!     println!("{cg}");
//! }
//! # Ok::<(), probes::Error>(())
//! ```
//!
//! Cgroup paths ([`CgroupPath`]) are relative to the hierarchy mounts, the
//! same string in every hierarchy (`/boxwatch/<run-id>/<name>`). Which
//! hierarchy a figure comes from: the controller's v1 hierarchy when it has
//! one, otherwise the v2 hierarchy (see [`CgroupLayout::hierarchy_for`]).
//!
//! Reading the same cgroups again and again (an exporter's scrapes)? Hold
//! their files open and re-read each with one `pread`: a [`HeldCgroup`]
//! each, read by a [`LayoutReader`] (what the exporter does), or
//! [`StatsCache`] for one cgroup at a time, within a [`FileBudget`]: each
//! held file that has been read keeps a 4 KiB page of kernel memory.
//! [`CgroupLayout::stat_files`] lists the files the stats read;
//! [`Controllers`] limits what is read, and
//! [`CgroupLayout::list_subtree_in`] walks a single hierarchy.
//!
//! Everything is resolved under a host root (`/` normally): tests point
//! [`Host::with_root`] at a tempdir holding `proc/self/mountinfo` and a fake
//! `sys/fs/cgroup` tree.

mod cache;
pub mod fake;
mod fsread;
mod layout;
pub mod parse;
mod stats;
mod walkcache;

pub use cache::{FileBudget, HeldCgroup, LayoutReader, StatsCache, StatsReader};
pub use layout::{
    CgroupLayout, CgroupMode, CgroupPath, CgroupVersion, Controllers, Hierarchy, Subtree,
    UnreadableDir, STAT_CONTROLLERS,
};
pub use parse::{CpuMax, CpuStat, Limit, MemoryEvents, MountInfo, OomControl, ProcCgroup};
pub use stats::CgroupStats;
pub use walkcache::WalkCache;

use crate::error::{Error, Result};
use fsread::{is_gone, read_opt};
use std::path::{Path, PathBuf};

/// The machine whose kernel files are read, rooted at `/` or (for tests)
/// at a directory holding a fake `proc/` and `sys/fs/cgroup/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    root: PathBuf,
}

impl Default for Host {
    fn default() -> Self {
        Host::new()
    }
}

impl Host {
    /// The real host, rooted at `/`.
    pub fn new() -> Self {
        Host { root: "/".into() }
    }

    /// A host whose files live under `root` (`<root>/proc/self/mountinfo`,
    /// mount points from it resolved under `root`).
    pub fn with_root(root: impl Into<PathBuf>) -> Self {
        Host { root: root.into() }
    }

    /// The host root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// An absolute host path (`/proc/1/cgroup`) under the host root.
    pub fn resolve(&self, abs: impl AsRef<Path>) -> PathBuf {
        let abs = abs.as_ref();
        self.root.join(abs.strip_prefix("/").unwrap_or(abs))
    }

    /// Discovers the cgroup layout from `<root>/proc/self/mountinfo`.
    pub fn layout(&self) -> Result<CgroupLayout> {
        self.layout_from(&self.resolve("/proc/self/mountinfo"))
    }

    /// Discovers the cgroup layout from a given mountinfo file.
    pub fn layout_from(&self, mountinfo: &Path) -> Result<CgroupLayout> {
        let text = read_opt(mountinfo)?.ok_or_else(|| Error::Io {
            path: mountinfo.to_path_buf(),
            source: std::io::ErrorKind::NotFound.into(),
        })?;
        let mounts = parse::parse_mountinfo(&text).map_err(|source| Error::Parse {
            path: mountinfo.to_path_buf(),
            source,
        })?;
        CgroupLayout::from_mounts(&mounts, &self.root)?.check_mounted(mountinfo)
    }

    /// The cgroups of process `pid` (`/proc/<pid>/cgroup`).
    pub fn pid_cgroups(&self, pid: i32) -> Result<Vec<ProcCgroup>> {
        let path = self.resolve(format!("/proc/{pid}/cgroup"));
        let text = read_opt(&path)?.ok_or(Error::NoSuchProcess(pid))?;
        parse::parse_proc_cgroup(&text).map_err(|source| Error::Parse { path, source })
    }

    /// The cgroup of `pid` in `controller`'s hierarchy (as chosen by
    /// [`CgroupLayout::hierarchy_for`]), relative to that hierarchy's
    /// mount; `None` when the controller has no hierarchy or the cgroup is
    /// outside the mount.
    pub fn pid_cgroup(
        &self,
        layout: &CgroupLayout,
        pid: i32,
        controller: &str,
    ) -> Result<Option<CgroupPath>> {
        let Some(h) = layout.hierarchy_for(controller) else {
            return Ok(None);
        };
        let entries = self.pid_cgroups(pid)?;
        let entry = entries.iter().find(|e| match h.version {
            CgroupVersion::V2 => e.hierarchy_id == 0,
            CgroupVersion::V1 => e.hierarchy_id != 0 && e.controllers == h.controllers,
        });
        Ok(entry.and_then(|e| h.mount_relative(&e.path)))
    }

    /// The inode of namespace `ns` (`pid`, `net`, `mnt`...) of process
    /// `pid`, from the `/proc/<pid>/ns/<ns>` link (`net:[4026531992]`).
    pub fn ns_inode(&self, pid: i32, ns: &str) -> Result<u64> {
        if ns.is_empty() || ns.contains('/') || ns.starts_with('.') {
            return Err(Error::Parse {
                path: PathBuf::from(ns),
                source: crate::error::ParseError::new("a namespace name", ns),
            });
        }
        let path = self.resolve(format!("/proc/{pid}/ns/{ns}"));
        let target = match std::fs::read_link(&path) {
            Ok(t) => t,
            Err(e) if is_gone(&e) => return Err(Error::NoSuchProcess(pid)),
            Err(source) => return Err(Error::Io { path, source }),
        };
        let (_, inode) = parse::parse_ns_link(&target.to_string_lossy())
            .map_err(|source| Error::Parse { path, source })?;
        Ok(inode)
    }
}

/// The cgroup layout of the real host (`Host::new().layout()`).
pub fn detect() -> Result<CgroupLayout> {
    Host::new().layout()
}

#[cfg(test)]
mod fake_tree_tests;
