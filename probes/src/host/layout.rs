//! Where the cgroup hierarchies are mounted, discovered from mountinfo.

use super::fsread::{is_gone, read_opt};
use super::parse::{self, MountInfo};
use super::walkcache::WalkCache;
use crate::error::{Error, Result};
use nix::dir::{Dir, Type};
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use std::collections::BTreeSet;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

/// Which cgroup versions the host has mounted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CgroupMode {
    /// Only v1 hierarchies with controllers.
    V1,
    /// Only the unified (v2) hierarchy.
    V2,
    /// v1 hierarchies with controllers and a v2 mount (usually without the
    /// cpu and memory controllers, as systemd's "hybrid" layout).
    Hybrid,
}

/// The cgroup version of one hierarchy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CgroupVersion {
    /// cgroup v1: one hierarchy per controller (or group of controllers).
    V1,
    /// cgroup v2: the unified hierarchy.
    V2,
}

/// One mounted cgroup hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hierarchy {
    /// v1 or v2.
    pub version: CgroupVersion,
    /// Where the hierarchy is mounted, already resolved under the host
    /// root (so inside a tempdir for a fake tree).
    pub mount_point: PathBuf,
    /// The cgroup shown at the mount point, from mountinfo's root field
    /// (`/` unless mounted from inside a cgroup namespace or bind-mounted).
    pub root: PathBuf,
    /// v1: the controllers co-mounted here (`cpu`, `cpuacct`, or
    /// `name=systemd` for a named hierarchy). v2: the controllers listed in
    /// the root's `cgroup.controllers`.
    pub controllers: Vec<String>,
}

impl Hierarchy {
    /// Whether `controller` is attached to this hierarchy.
    pub fn has(&self, controller: &str) -> bool {
        self.controllers.iter().any(|c| c == controller)
    }

    /// The directory of `cgroup` (a path relative to this mount, such as
    /// `/boxwatch/run/c1`) in this hierarchy. Does not check existence.
    pub fn dir(&self, cgroup: &CgroupPath) -> PathBuf {
        self.mount_point.join(cgroup.relative())
    }

    /// Converts a path from `/proc/<pid>/cgroup` (relative to the
    /// hierarchy's root) to a path relative to this mount; `None` when the
    /// cgroup lies outside what is mounted here.
    pub fn mount_relative(&self, proc_path: &str) -> Option<CgroupPath> {
        let rel = Path::new(proc_path).strip_prefix(&self.root).ok()?;
        CgroupPath::new(&format!("/{}", rel.to_string_lossy())).ok()
    }
}

/// A validated cgroup path relative to the hierarchy mounts: absolute
/// (`/boxwatch/<run-id>/<name>`, or `/` for the root), no `.`/`..`, no
/// empty components, no trailing slash.
///
/// Cgroup names are bytes, and almost always UTF-8. A UTF-8 path is kept
/// and shown as it is (systemd's `\x2d` escapes included). A path that is
/// not UTF-8 keeps its bytes for reaching the filesystem, and its text
/// ([`Self::as_str`], `Display`) shows every byte that is not part of valid
/// UTF-8 as `\xNN` and every `\` as `\x5c`: distinct non-UTF-8 paths never
/// show the same text. A UTF-8 path could spell out such a text
/// literally; the two are still distinct `CgroupPath`s, told apart by
/// [`Self::is_utf8`].
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CgroupPath {
    /// The path as text: itself, or escaped when `raw` is set.
    text: String,
    /// The path's bytes, kept only when they are not UTF-8.
    raw: Option<Box<[u8]>>,
}

impl CgroupPath {
    /// The root cgroup `/`.
    pub fn root() -> Self {
        CgroupPath {
            text: "/".into(),
            raw: None,
        }
    }

    /// Validates `path`.
    pub fn new(path: &str) -> Result<Self> {
        validate(path.as_bytes()).map_err(|why| Error::BadCgroupPath {
            path: path.to_string(),
            why,
        })?;
        Ok(CgroupPath {
            text: path.to_string(),
            raw: None,
        })
    }

    /// Validates `path`, given as bytes (a name read from a directory
    /// need not be UTF-8).
    pub fn from_bytes(path: &[u8]) -> Result<Self> {
        if let Ok(text) = std::str::from_utf8(path) {
            return Self::new(text);
        }
        let text = escape_non_utf8(path);
        validate(path).map_err(|why| Error::BadCgroupPath {
            path: text.clone(),
            why,
        })?;
        Ok(CgroupPath {
            text,
            raw: Some(path.into()),
        })
    }

    /// The path as text (`/boxwatch/x`): the path itself when it is UTF-8,
    /// else escaped (see the type's documentation).
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether the path is UTF-8 (and [`Self::as_str`] the path itself).
    pub fn is_utf8(&self) -> bool {
        self.raw.is_none()
    }

    /// The path's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.raw.as_deref().unwrap_or(self.text.as_bytes())
    }

    /// The path without its leading `/`, for joining onto a mount point.
    pub fn relative(&self) -> &Path {
        use std::os::unix::ffi::OsStrExt;
        Path::new(std::ffi::OsStr::from_bytes(&self.as_bytes()[1..]))
    }

    /// The child `name` of this cgroup.
    pub fn child(&self, name: &str) -> Result<Self> {
        self.child_bytes(name.as_bytes())
    }

    /// The child `name` (bytes, as read from the directory) of this cgroup.
    pub fn child_bytes(&self, name: &[u8]) -> Result<Self> {
        if name.contains(&b'/') {
            return Err(Error::BadCgroupPath {
                path: String::from_utf8_lossy(name).into_owned(),
                why: "a child's name has no /",
            });
        }
        let parent = self.as_bytes();
        let mut path = Vec::with_capacity(parent.len() + 1 + name.len());
        if parent != b"/" {
            path.extend_from_slice(parent);
        }
        path.push(b'/');
        path.extend_from_slice(name);
        // The parent is valid and the name has no `/`: only the name can
        // make the path invalid (and from_bytes then says why).
        if name.is_empty() || name == b"." || name == b".." || name.contains(&0) {
            return Self::from_bytes(&path);
        }
        Ok(match String::from_utf8(path) {
            Ok(text) => CgroupPath { text, raw: None },
            Err(e) => {
                let raw = e.into_bytes();
                CgroupPath {
                    text: escape_non_utf8(&raw),
                    raw: Some(raw.into()),
                }
            }
        })
    }
}

/// Why `path` is not a clean absolute cgroup path, if it is not.
fn validate(path: &[u8]) -> std::result::Result<(), &'static str> {
    if path == b"/" {
        return Ok(());
    }
    let rest = path.strip_prefix(b"/").ok_or("must start with /")?;
    for comp in rest.split(|b| *b == b'/') {
        match comp {
            b"" => return Err("empty component or trailing /"),
            b"." | b".." => return Err(". and .. are not allowed"),
            c if c.contains(&0) => return Err("NUL byte"),
            _ => {}
        }
    }
    Ok(())
}

/// The text of a path that is not UTF-8: bytes outside valid UTF-8 as
/// `\xNN`, `\` as `\x5c`, everything else as it is. Every `\` of the result
/// starts an escape, so distinct paths give distinct texts.
fn escape_non_utf8(path: &[u8]) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(path.len() + 8);
    for chunk in path.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c == '\\' {
                out.push_str("\\x5c");
            } else {
                out.push(c);
            }
        }
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    out
}

impl std::fmt::Display for CgroupPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

/// The controllers whose files [`CgroupLayout::stats`](super::CgroupLayout)
/// reads.
pub const STAT_CONTROLLERS: [&str; 6] = ["cpu", "cpuacct", "memory", "pids", "cpuset", "blkio"];

/// Which controllers' figures to read (see
/// [`CgroupLayout::stats_of`](super::CgroupLayout::stats_of)); `cpu`
/// covers `cpuacct` too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Controllers {
    /// `cpu` (and v1 `cpuacct`): usage and throttling.
    pub cpu: bool,
    /// `memory`: usage, peak, limit, OOM kills.
    pub memory: bool,
    /// `pids`: current count and limit.
    pub pids: bool,
    /// `cpuset`: the CPUs and memory nodes allowed.
    pub cpuset: bool,
    /// v1 `blkio`, v2 `io`.
    pub io: bool,
}

impl Controllers {
    /// Every controller [`CgroupStats`](super::CgroupStats) knows.
    pub const ALL: Controllers = Controllers {
        cpu: true,
        memory: true,
        pids: true,
        cpuset: true,
        io: true,
    };

    /// The controller names selected, from [`STAT_CONTROLLERS`].
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        STAT_CONTROLLERS.into_iter().filter(move |c| match *c {
            "cpu" | "cpuacct" => self.cpu,
            "memory" => self.memory,
            "pids" => self.pids,
            "blkio" => self.io,
            _ => self.cpuset,
        })
    }
}

/// The host's cgroup hierarchies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupLayout {
    v1: Vec<Hierarchy>,
    v2: Option<Hierarchy>,
}

/// A walk of a cgroup subtree: every cgroup found, whether the walk
/// stopped at its limit, and the directories it could not read.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Subtree {
    /// Sorted; includes the starting cgroup when it exists.
    pub cgroups: Vec<CgroupPath>,
    /// True when more cgroups existed than the limit allowed.
    pub truncated: bool,
    /// Directories that could not be opened or listed for a reason other
    /// than their removal (`EACCES`, for instance): what lies below them
    /// (all of it, or the part not listed yet) is missing from `cgroups`.
    /// The rest of the walk goes on.
    pub unreadable: Vec<UnreadableDir>,
}

/// A directory a walk could not read, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnreadableDir {
    /// The directory that could not be read.
    pub dir: PathBuf,
    /// Why, as the system call said.
    pub error: String,
}

impl std::fmt::Display for UnreadableDir {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.dir.display(), self.error)
    }
}

impl CgroupLayout {
    /// Builds the layout from parsed mountinfo. Mount points are resolved
    /// under `host_root` (`/` on a real host, a tempdir for a fake tree),
    /// and the v2 controllers are read from `<mount>/cgroup.controllers`.
    /// The first mount of each hierarchy wins (later ones are bind mounts).
    pub fn from_mounts(mounts: &[MountInfo], host_root: &Path) -> Result<Self> {
        let mut v1: Vec<Hierarchy> = Vec::new();
        let mut v2: Option<Hierarchy> = None;
        for m in mounts {
            let mount_point = resolve(host_root, &m.mount_point);
            match m.fs_type.as_str() {
                "cgroup" => {
                    let controllers = parse::v1_controllers(&m.super_options);
                    if v1.iter().any(|h| h.controllers == controllers) {
                        continue;
                    }
                    v1.push(Hierarchy {
                        version: CgroupVersion::V1,
                        mount_point,
                        root: m.root.clone(),
                        controllers,
                    });
                }
                "cgroup2" if v2.is_none() => {
                    let file = mount_point.join("cgroup.controllers");
                    let controllers = read_opt(&file)?
                        .map(|t| t.split_whitespace().map(str::to_string).collect())
                        .unwrap_or_default();
                    v2 = Some(Hierarchy {
                        version: CgroupVersion::V2,
                        mount_point,
                        root: m.root.clone(),
                        controllers,
                    });
                }
                _ => {}
            }
        }
        Ok(CgroupLayout { v1, v2 })
    }

    /// v1 or v2 or both, or [`Error::NoCgroupMounts`] when neither is
    /// mounted (`source` names the mountinfo for the message).
    pub(crate) fn check_mounted(self, source: &Path) -> Result<Self> {
        if self.v2.is_none() && !self.has_v1_controllers() {
            return Err(Error::NoCgroupMounts(source.to_path_buf()));
        }
        Ok(self)
    }

    fn has_v1_controllers(&self) -> bool {
        self.v1
            .iter()
            .any(|h| h.controllers.iter().any(|c| !c.starts_with("name=")))
    }

    /// v1, v2 or hybrid. Named-only v1 hierarchies (`name=systemd`) do not
    /// make a host v1.
    pub fn mode(&self) -> CgroupMode {
        match (self.has_v1_controllers(), self.v2.is_some()) {
            (true, true) => CgroupMode::Hybrid,
            (true, false) => CgroupMode::V1,
            _ => CgroupMode::V2,
        }
    }

    /// The v1 hierarchies, in mountinfo order.
    pub fn v1_hierarchies(&self) -> &[Hierarchy] {
        &self.v1
    }

    /// The unified hierarchy, when cgroup2 is mounted.
    pub fn v2(&self) -> Option<&Hierarchy> {
        self.v2.as_ref()
    }

    /// The v1 hierarchy `controller` is attached to (co-mounted `cpu,cpuacct`
    /// answers for both names).
    pub fn v1_hierarchy(&self, controller: &str) -> Option<&Hierarchy> {
        self.v1.iter().find(|h| h.has(controller))
    }

    /// The mount point of `controller`'s v1 hierarchy.
    pub fn v1_mount(&self, controller: &str) -> Option<&Path> {
        self.v1_hierarchy(controller)
            .map(|h| h.mount_point.as_path())
    }

    /// The hierarchy whose files describe `controller`: its v1 hierarchy if
    /// it has one, else the v2 hierarchy when v2 offers the controller.
    /// `cpuacct` maps to v2 whenever v2 is mounted and `cpuacct` is not a
    /// v1 controller, since v2's `cpu.stat` always carries `usage_usec`.
    pub fn hierarchy_for(&self, controller: &str) -> Option<&Hierarchy> {
        if let Some(h) = self.v1_hierarchy(controller) {
            return Some(h);
        }
        let v2 = self.v2.as_ref()?;
        let on_v2 = match controller {
            "cpuacct" => true,
            // v1's blkio is v2's io.
            "blkio" => v2.has("io"),
            c => v2.has(c),
        };
        on_v2.then_some(v2)
    }

    /// The directory of `cgroup` in `controller`'s hierarchy (see
    /// [`Self::hierarchy_for`]). Does not check existence.
    pub fn controller_dir(&self, controller: &str, cgroup: &CgroupPath) -> Option<PathBuf> {
        self.hierarchy_for(controller).map(|h| h.dir(cgroup))
    }

    /// Every hierarchy (v1 first, then v2), named ones included.
    pub fn hierarchies(&self) -> impl Iterator<Item = &Hierarchy> {
        self.v1.iter().chain(self.v2.as_ref())
    }

    /// The distinct hierarchies the stats come from: the ones serving
    /// [`STAT_CONTROLLERS`], plus v2 on a pure v2 host.
    pub fn stat_hierarchies(&self) -> Vec<&Hierarchy> {
        self.hierarchies_of(Controllers::ALL)
    }

    /// The distinct hierarchies serving the selected controllers (v2 on a
    /// pure v2 host).
    pub fn hierarchies_of(&self, which: Controllers) -> Vec<&Hierarchy> {
        let mut out: Vec<&Hierarchy> = Vec::new();
        for c in which.names() {
            if let Some(h) = self.hierarchy_for(c) {
                if !out.iter().any(|o| o.mount_point == h.mount_point) {
                    out.push(h);
                }
            }
        }
        if out.is_empty() {
            out.extend(self.v2.as_ref());
        }
        out
    }

    /// The directory of `cgroup` in every hierarchy where it exists.
    pub fn existing_dirs(&self, cgroup: &CgroupPath) -> Vec<PathBuf> {
        self.hierarchies()
            .map(|h| h.dir(cgroup))
            .filter(|d| d.is_dir())
            .collect()
    }

    /// Whether `cgroup` exists in at least one hierarchy.
    pub fn exists(&self, cgroup: &CgroupPath) -> bool {
        self.hierarchies().any(|h| h.dir(cgroup).is_dir())
    }

    /// Every cgroup at or below `start` in the stat hierarchies (their
    /// union), sorted, at most `limit` of them. Directories that vanish
    /// during the walk are skipped; a `start` that exists nowhere gives an
    /// empty list; directories that cannot be read are listed in
    /// [`Subtree::unreadable`] and the walk goes on around them.
    pub fn list_subtree(&self, start: &CgroupPath, limit: usize) -> Result<Subtree> {
        self.list_subtree_of(start, limit, Controllers::ALL)
    }

    /// [`Self::list_subtree`] over the hierarchies of the selected
    /// controllers only (fewer directories to read).
    pub fn list_subtree_of(
        &self,
        start: &CgroupPath,
        limit: usize,
        which: Controllers,
    ) -> Result<Subtree> {
        let mut walk = Walk::new(limit);
        for h in self.hierarchies_of(which) {
            walk.hierarchy(h, start);
        }
        Ok(walk.into_subtree())
    }

    /// [`Self::list_subtree`] in one hierarchy only: cheaper on v1 hosts,
    /// but blind to cgroups that exist only in other hierarchies.
    pub fn list_subtree_in(
        &self,
        hierarchy: &Hierarchy,
        start: &CgroupPath,
        limit: usize,
    ) -> Result<Subtree> {
        let mut walk = Walk::new(limit);
        walk.hierarchy(hierarchy, start);
        Ok(walk.into_subtree())
    }

    /// [`Self::list_subtree_in`], checking the directories `cache` holds
    /// open from earlier walks of this hierarchy by descriptor (`fstat`)
    /// instead of by name, and keeping those it can for the next walk.
    /// The same result as without the cache.
    pub fn list_subtree_cached(
        &self,
        hierarchy: &Hierarchy,
        start: &CgroupPath,
        limit: usize,
        cache: &mut WalkCache,
    ) -> Result<Subtree> {
        cache.begin(hierarchy);
        let mut walk = Walk::new(limit);
        walk.cache = Some(cache);
        walk.hierarchy(hierarchy, start);
        let cache = walk.cache.take().expect("set above");
        // A walk cut short saw only part of the tree: what it did not
        // see is still valid.
        if !walk.truncated && walk.unreadable.is_empty() {
            cache.end();
        }
        Ok(walk.into_subtree())
    }
}

/// Deepest cgroup nesting the walk follows.
const MAX_WALK_DEPTH: usize = 64;

/// State of one subtree walk.
struct Walk<'c> {
    found: BTreeSet<CgroupPath>,
    limit: usize,
    truncated: bool,
    unreadable: Vec<UnreadableDir>,
    /// Directories held open from earlier walks of the hierarchy.
    cache: Option<&'c mut WalkCache>,
}

impl Walk<'_> {
    fn new(limit: usize) -> Self {
        Walk {
            found: BTreeSet::new(),
            limit,
            truncated: false,
            unreadable: Vec::new(),
            cache: None,
        }
    }

    fn into_subtree(self) -> Subtree {
        Subtree {
            cgroups: self.found.into_iter().collect(),
            truncated: self.truncated,
            unreadable: self.unreadable,
        }
    }

    /// Notes that `dir` could not be read (unless it is merely gone).
    fn unreadable(&mut self, dir: PathBuf, e: nix::errno::Errno) {
        let e = std::io::Error::from(e);
        if !is_gone(&e) {
            self.unreadable.push(UnreadableDir {
                dir,
                error: e.to_string(),
            });
        }
    }

    /// Walks `start` in hierarchy `h`; nothing when it does not exist.
    fn hierarchy(&mut self, h: &Hierarchy, start: &CgroupPath) {
        let dir = h.dir(start);
        let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
        match Dir::open(&dir, flags, Mode::empty()) {
            Ok(d) => self.descend(h, d, start.clone(), 0),
            Err(e) => self.unreadable(dir, e),
        }
    }

    /// Records `cg` (open as `dir`) and walks its children, each opened
    /// relative to its parent. A child that cannot be opened is left out
    /// with its subtree; a listing that fails keeps what it gave so far.
    fn descend(&mut self, h: &Hierarchy, mut dir: Dir, cg: CgroupPath, depth: usize) {
        use nix::sys::stat::{fstatat, SFlag};
        if !self.record(&cg) || depth >= MAX_WALK_DEPTH {
            return;
        }
        let fd = dir.as_raw_fd();
        let subdirs = subdir_count(nix::sys::stat::fstat(fd).ok());
        if subdirs == Some(0) {
            return;
        }
        // The subdirectories' names, one after the other in `names`, and
        // their inodes.
        let mut names: Vec<u8> = Vec::new();
        let mut ends: Vec<(usize, u64)> = Vec::new();
        for entry in dir.iter() {
            if subdirs.is_some_and(|n| ends.len() >= n) {
                break; // every subdirectory found
            }
            let entry = match entry {
                Ok(e) => e,
                Err(e) => {
                    self.unreadable(h.dir(&cg), e);
                    break;
                }
            };
            if !matches!(entry.file_type(), Some(Type::Directory) | None) {
                continue;
            }
            let name = entry.file_name().to_bytes();
            if name != b"." && name != b".." {
                names.extend_from_slice(name);
                ends.push((names.len(), entry.ino()));
            }
        }
        let mut start = 0;
        for (end, ino) in ends {
            let name = &names[start..end];
            start = end;
            let Ok(child) = cg.child_bytes(name) else {
                continue;
            };
            // A leaf is recorded from one fstatat by name (or fstat of
            // the descriptor a cache holds), never opened.
            let held = self.cache.as_mut().and_then(|c| c.stat(&child, ino));
            let st = match held {
                Some(st) => Ok(st),
                None => {
                    let st = fstatat(Some(fd), name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW);
                    if let (Ok(st), Some(cache)) = (&st, self.cache.as_mut()) {
                        if SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits())
                            == SFlag::S_IFDIR
                        {
                            cache.keep(fd, name, &child, st);
                        }
                    }
                    st
                }
            };
            match st {
                Ok(st)
                    if SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits())
                        != SFlag::S_IFDIR =>
                {
                    continue
                }
                Ok(st) if subdir_count(Some(st)) == Some(0) => {
                    self.record_leaf(child);
                }
                Err(e) if is_gone(&e.into()) => continue,
                _ => {
                    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
                    match Dir::openat(Some(fd), name, flags, Mode::empty()) {
                        Ok(d) => self.descend(h, d, child, depth + 1),
                        // Not a directory after all.
                        Err(nix::errno::Errno::ENOTDIR) => {}
                        Err(e) => self.unreadable(h.dir(&child), e),
                    }
                }
            }
            if self.truncated {
                break;
            }
        }
    }

    /// [`Self::record`] for a cgroup the walk has no further use for.
    fn record_leaf(&mut self, cg: CgroupPath) -> bool {
        if self.found.len() < self.limit {
            self.found.insert(cg);
            return true;
        }
        self.record(&cg)
    }

    /// Adds `cg` to what the walk found; false (and the walk cut short)
    /// when the limit is reached.
    fn record(&mut self, cg: &CgroupPath) -> bool {
        if self.found.contains(cg) {
            return true;
        }
        if self.found.len() >= self.limit {
            self.truncated = true;
            return false;
        }
        self.found.insert(cg.clone());
        true
    }
}

/// How many subdirectories a directory has, from its link count: cgroupfs
/// (kernfs) keeps it at 2 + subdirectories, as tmpfs does, so a leaf cgroup
/// (the common case) is known without listing its 15-30 control files.
/// None when the filesystem does not count (a link count below 2).
fn subdir_count(st: Option<nix::sys::stat::FileStat>) -> Option<usize> {
    match st {
        Some(st) if st.st_nlink >= 2 => Some(st.st_nlink as usize - 2),
        _ => None,
    }
}

/// `abs` (an absolute path from mountinfo) under `host_root`.
fn resolve(host_root: &Path, abs: &Path) -> PathBuf {
    match abs.strip_prefix("/") {
        Ok(rel) => host_root.join(rel),
        Err(_) => host_root.join(abs),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mounts(text: &str) -> Vec<MountInfo> {
        parse::parse_mountinfo(text).unwrap()
    }

    const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    #[test]
    fn hybrid_with_separate_controllers() {
        let l = CgroupLayout::from_mounts(&mounts(HYBRID), Path::new("/nonexistent")).unwrap();
        assert_eq!(l.mode(), CgroupMode::Hybrid);
        assert_eq!(
            l.v1_mount("cpuacct"),
            Some(Path::new("/nonexistent/sys/fs/cgroup/cpuacct"))
        );
        let cg = CgroupPath::new("/boxwatch/r/c").unwrap();
        assert_eq!(
            l.controller_dir("memory", &cg),
            Some(PathBuf::from(
                "/nonexistent/sys/fs/cgroup/memory/boxwatch/r/c"
            ))
        );
        // cpuset is neither in v1 here nor offered by v2 (no controllers file).
        assert_eq!(l.controller_dir("cpuset", &cg), None);
        assert_eq!(l.stat_hierarchies().len(), 4);
        assert_eq!(l.v2().unwrap().controllers, Vec::<String>::new());
    }

    #[test]
    fn comounted_cpu_cpuacct_and_bind_mounts() {
        let text = "\
1 0 0:1 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct
2 0 0:1 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu,cpuacct
3 0 0:2 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
";
        let l = CgroupLayout::from_mounts(&mounts(text), Path::new("/")).unwrap();
        assert_eq!(l.mode(), CgroupMode::V1);
        assert_eq!(l.v1_hierarchies().len(), 2);
        assert_eq!(l.v1_mount("cpu"), l.v1_mount("cpuacct"));
        assert_eq!(
            l.v1_mount("cpu"),
            Some(Path::new("/sys/fs/cgroup/cpu,cpuacct"))
        );
        assert_eq!(l.stat_hierarchies().len(), 2);
    }

    #[test]
    fn nothing_mounted_is_an_error() {
        let l = CgroupLayout::from_mounts(&mounts(&HYBRID[..60]), Path::new("/")).unwrap();
        assert!(matches!(
            l.check_mounted(Path::new("x")),
            Err(Error::NoCgroupMounts(_))
        ));
    }

    #[test]
    fn cgroup_paths() {
        for ok in ["/", "/boxwatch", "/a/b c/d:e"] {
            assert_eq!(CgroupPath::new(ok).unwrap().as_str(), ok);
        }
        for bad in ["", "a", "/a/", "//a", "/a/../b", "/./a", "/a\0b"] {
            assert!(CgroupPath::new(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(CgroupPath::root().child("x").unwrap().as_str(), "/x");
        assert_eq!(
            CgroupPath::new("/x")
                .unwrap()
                .child("y")
                .unwrap()
                .relative(),
            Path::new("x/y")
        );
        assert!(CgroupPath::root().child("..").is_err());
        assert!(CgroupPath::root().child("a/b").is_err());
    }

    #[test]
    fn paths_that_are_not_utf8() {
        use std::os::unix::ffi::OsStrExt;
        let p = CgroupPath::from_bytes(b"/boxwatch/a\xffb\\c").unwrap();
        assert!(!p.is_utf8());
        assert_eq!(p.as_str(), "/boxwatch/a\\xffb\\x5cc");
        assert_eq!(p.to_string(), p.as_str());
        assert_eq!(p.as_bytes(), b"/boxwatch/a\xffb\\c");
        assert_eq!(p.relative().as_os_str().as_bytes(), b"boxwatch/a\xffb\\c");
        // A child keeps the raw bytes of its parent and its own name.
        let c = p.child_bytes(b"\xfe").unwrap();
        assert_eq!(c.as_bytes(), b"/boxwatch/a\xffb\\c/\xfe");
        assert_eq!(c.as_str(), "/boxwatch/a\\xffb\\x5cc/\\xfe");
        // UTF-8 names stay as they are, backslashes included.
        let u = CgroupPath::root()
            .child_bytes("x\\x2dé".as_bytes())
            .unwrap();
        assert!(u.is_utf8());
        assert_eq!(u.as_str(), "/x\\x2dé");
        // The same text from a UTF-8 path is a different CgroupPath.
        let literal = CgroupPath::new("/\\xff").unwrap();
        let raw = CgroupPath::from_bytes(b"/\xff").unwrap();
        assert_eq!(literal.as_str(), raw.as_str());
        assert_ne!(literal, raw);
        for bad in [&b"/a/\xff/"[..], b"/\xff/..", b"\xff", b"/\xff\0"] {
            assert!(CgroupPath::from_bytes(bad).is_err(), "{bad:?} accepted");
        }
    }

    proptest::proptest! {
        /// Distinct non-UTF-8 names never share a text.
        #[test]
        fn escaped_texts_are_distinct(
            a in proptest::collection::vec(1u8..=255, 1..8),
            b in proptest::collection::vec(1u8..=255, 1..8),
        ) {
            let a: Vec<u8> = a.into_iter().filter(|c| *c != b'/').chain([0xff]).collect();
            let b: Vec<u8> = b.into_iter().filter(|c| *c != b'/').chain([0xff]).collect();
            let pa = CgroupPath::root().child_bytes(&a);
            let pb = CgroupPath::root().child_bytes(&b);
            if let (Ok(pa), Ok(pb)) = (pa, pb) {
                proptest::prop_assert_eq!(a == b, pa.as_str() == pb.as_str());
            }
        }
    }

    proptest::proptest! {
        /// The child of a path is the path its joined bytes make, and
        /// fails as that would (same message).
        #[test]
        fn a_child_is_its_joined_path(
            parent in proptest::collection::vec(
                proptest::collection::vec(proptest::prop_oneof![
                    proptest::prelude::Just(b'a'), proptest::prelude::Just(0xff_u8),
                    proptest::prelude::Just(b'\\'), 1u8..=255,
                ], 1..4),
                0..3,
            ),
            name in proptest::collection::vec(proptest::prop_oneof![
                proptest::prelude::Just(b'.'), proptest::prelude::Just(0u8),
                proptest::prelude::Just(0xc3_u8), 0u8..=255,
            ], 0..5),
        ) {
            let mut p = CgroupPath::root();
            for comp in &parent {
                match p.child_bytes(comp) {
                    Ok(c) => p = c,
                    Err(_) => return Ok(()),
                }
            }
            let joined = if p.as_bytes() == b"/" {
                [b"/".as_slice(), &name].concat()
            } else {
                [p.as_bytes(), b"/", &name].concat()
            };
            let child = p.child_bytes(&name).map_err(|e| e.to_string());
            if name.contains(&b'/') {
                proptest::prop_assert!(child.is_err());
            } else {
                let want = CgroupPath::from_bytes(&joined).map_err(|e| e.to_string());
                proptest::prop_assert_eq!(child, want);
            }
        }
    }

    #[test]
    fn proc_paths_are_made_mount_relative() {
        let h = Hierarchy {
            version: CgroupVersion::V2,
            mount_point: "/sys/fs/cgroup".into(),
            root: "/docker/abc".into(),
            controllers: vec![],
        };
        assert_eq!(h.mount_relative("/docker/abc/x").unwrap().as_str(), "/x");
        assert_eq!(h.mount_relative("/docker/abc").unwrap().as_str(), "/");
        assert_eq!(h.mount_relative("/other"), None);
    }
}
