//! Cgroup drivers: one trait, one implementation per cgroup version, chosen
//! once at start-up by [`detect`].
//!
//! Every cgroup boxwatch makes sits at `<parent>/<run-id>/<container>` (the
//! parent defaults to `/boxwatch`) and is removed after the container exits.
//! Nothing outside that subtree is ever written, except enabling controllers
//! in the `cgroup.subtree_control` of a v2 hierarchy root that lacks them.

mod fs;
pub(crate) mod mounts;
mod v1;
mod v2;

use crate::error::{Error, Result};
use crate::spec::Limits;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use mounts::{CgroupMode, Mounts, V1Hierarchy};
pub use v1::V1Driver;
pub use v2::V2Driver;

/// Boxwatch's default parent cgroup, relative to each hierarchy root.
pub const DEFAULT_PARENT: &str = "/boxwatch";

/// Makes the cgroup directory `path` (and missing parents) in the
/// hierarchy mounted at `mount`, adding each directory made to `made` (for
/// undoing a failure); in a v1 `cpuset` hierarchy, gives them their
/// parents' CPUs and memory nodes. A shared parent that another run
/// removes meanwhile is made again.
pub(crate) fn make_dir_in(
    mount: &Path,
    path: &Path,
    cpuset: bool,
    made: &mut Vec<PathBuf>,
) -> Result<()> {
    let created = fs::create_dirs(&fs::join(mount, path))?;
    made.extend(created.iter().cloned());
    if cpuset {
        v1::inherit_cpuset(mount, path, &created)?;
    }
    Ok(())
}

/// One way of managing cgroups (v1 or v2).
pub trait CgroupDriver: Send + Sync + std::fmt::Debug {
    /// The host's layout as detected: v1, v2 or hybrid.
    fn mode(&self) -> CgroupMode;
    /// Controllers this driver can use for limits and accounting.
    fn controllers(&self) -> Vec<String>;
    /// Creates the cgroup at `path` (relative to the hierarchy roots, e.g.
    /// `/boxwatch/<run>/<name>`) with `limits` applied, creating missing
    /// ancestors. Fails if a controller needed by a limit is missing.
    fn create(&self, path: &Path, limits: &Limits) -> Result<Box<dyn Cgroup>>;
    /// Opens an existing cgroup that boxwatch made earlier (for stale cleanup).
    fn open(&self, path: &Path) -> Box<dyn Cgroup>;
    /// Names of the child cgroups of `path` (empty when it does not exist).
    fn children(&self, path: &Path) -> Vec<String>;
    /// Removes an empty cgroup directory at `path` in every hierarchy; true if
    /// nothing of it is left.
    fn remove_dir(&self, path: &Path) -> bool;
}

/// One container's cgroup, across all hierarchies it lives in.
pub trait Cgroup: Send + Sync + std::fmt::Debug {
    /// Path relative to the hierarchy roots.
    fn path(&self) -> &Path;
    /// The directories of this cgroup, by controller name (v2: "unified").
    fn dirs(&self) -> Vec<(String, PathBuf)>;
    /// Moves a process into the cgroup (in every hierarchy).
    fn add_process(&self, pid: i32) -> Result<()>;
    /// PIDs currently in the cgroup.
    fn pids(&self) -> Vec<i32>;
    /// Kills every process in the cgroup and waits (up to `timeout`) until it
    /// is empty: v2 cgroup.kill where present, else freeze + SIGKILL.
    fn kill_all(&self, timeout: Duration) -> Result<()>;
    /// OOM kills recorded for this cgroup.
    fn oom_kills(&self) -> u64;
    /// Removes the cgroup's directories (it must be empty).
    fn remove(&self) -> Result<()>;
}

/// Detects the host's cgroup layout and returns the driver for it.
pub fn detect() -> Result<Box<dyn CgroupDriver>> {
    let mounts = Mounts::from_proc()?;
    driver_for(mounts)
}

/// Picks the driver for a detected layout: v1 controllers win when present
/// (hybrid hosts keep cpu and memory on v1), else the unified hierarchy.
pub(crate) fn driver_for(mounts: Mounts) -> Result<Box<dyn CgroupDriver>> {
    match mounts.mode() {
        Some(CgroupMode::V2) => Ok(Box::new(v2::V2Driver::new(
            mounts.unified.clone().expect("v2 mode has a unified mount"),
            CgroupMode::V2,
        ))),
        Some(mode) => Ok(Box::new(v1::V1Driver::new(mounts, mode))),
        None => Err(Error::NoCgroupFs {
            root: PathBuf::from("/sys/fs/cgroup"),
        }),
    }
}

/// Checks a user-given parent cgroup path ("/boxwatch", "/ci/jobs").
pub fn parse_parent(parent: &str) -> Result<PathBuf> {
    let bad = |why| {
        Err(Error::BadCgroupParent {
            parent: crate::spec::shorten(parent),
            why,
        })
    };
    if !parent.starts_with('/') {
        return bad("is not absolute (it must start with '/')");
    }
    if parent == "/" {
        return bad("is the root cgroup, which boxwatch does not write to");
    }
    if parent.contains('\0') {
        return bad("contains a NUL byte");
    }
    let parts: Vec<&str> = parent.split('/').skip(1).collect();
    if parts.contains(&"..") {
        return bad("contains '..', which would leave the path it names");
    }
    if parts.contains(&".") {
        return bad("contains '.' components");
    }
    if parts.iter().any(|c| c.is_empty()) {
        return bad("has an empty component ('//' or a trailing '/')");
    }
    Ok(PathBuf::from(parent))
}

/// What the runtime tells about the host's cgroups.
#[derive(Debug, Clone, Serialize)]
pub struct CgroupInfo {
    /// The host's cgroup layout.
    pub mode: CgroupMode,
    /// The controllers boxwatch's cgroups get.
    pub controllers: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn clean_absolute_parents_are_kept_as_they_are(
            parts in proptest::collection::vec("[A-Za-z0-9_.:-]{1,12}", 1..6),
        ) {
            prop_assume!(parts.iter().all(|p| p != "." && p != ".."));
            let parent = format!("/{}", parts.join("/"));
            prop_assert_eq!(parse_parent(&parent).unwrap(), PathBuf::from(&parent));
        }

        #[test]
        fn a_parent_never_escapes_upwards(s in "\\PC{0,40}") {
            if let Ok(p) = parse_parent(&s) {
                prop_assert!(p.is_absolute());
                prop_assert!(p.components().all(|c| matches!(
                    c,
                    std::path::Component::RootDir | std::path::Component::Normal(_)
                )));
            }
        }
    }

    #[test]
    fn parents_must_be_clean_absolute_paths() {
        assert_eq!(
            parse_parent("/boxwatch").unwrap(),
            PathBuf::from("/boxwatch")
        );
        assert!(parse_parent("/a/b").is_ok());
        for bad in ["", "/", "boxwatch", "/a/../b", "/a//b", "/a/"] {
            assert!(parse_parent(bad).is_err(), "{bad} accepted");
        }
        // An absolute path with `..` is refused for the `..`, not for not
        // being absolute.
        assert_eq!(
            parse_parent("/a/../../b").unwrap_err().to_string(),
            "cgroup parent \"/a/../../b\" contains '..', which would leave the path it names: \
             give an absolute cgroup path such as /boxwatch or /system.slice/ci"
        );
        let e = parse_parent("boxwatch").unwrap_err().to_string();
        assert!(e.contains("is not absolute"), "{e}");
    }
}
