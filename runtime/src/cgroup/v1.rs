//! The cgroup v1 driver: one directory per hierarchy (cpu and cpuacct may be
//! separate hierarchies, as on this project's hosts, or co-mounted).

use super::fs;
use super::mounts::{CgroupMode, Mounts};
use super::{Cgroup, CgroupDriver};
use crate::error::{Error, Result};
use crate::spec::Limits;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Controllers a container cgroup always joins when the host has them: the
/// limits' controllers, cpuacct for accounting, freezer for a clean kill,
/// devices for the default device allow-list.
const ALWAYS: [&str; 6] = ["cpu", "cpuacct", "memory", "pids", "freezer", "devices"];

#[derive(Debug)]
/// The cgroup v1 driver: one directory per controller hierarchy.
pub struct V1Driver {
    mounts: Mounts,
    mode: CgroupMode,
}

impl V1Driver {
    /// A driver for the v1 hierarchies of `mounts` (`mode`: v1 or hybrid).
    pub fn new(mounts: Mounts, mode: CgroupMode) -> Self {
        V1Driver { mounts, mode }
    }

    /// The hierarchies (mount point, controllers) a container with `limits` joins.
    fn hierarchies_for(&self, limits: &Limits) -> Vec<(PathBuf, Vec<String>)> {
        let mut wanted: Vec<&str> = ALWAYS.to_vec();
        if limits.cpuset.is_some() {
            wanted.push("cpuset");
        }
        let mut out: Vec<(PathBuf, Vec<String>)> = Vec::new();
        for c in wanted {
            if let Some(h) = self.mounts.v1_hierarchy(c) {
                if !out.iter().any(|(m, _)| *m == h.mount_point) {
                    out.push((h.mount_point.clone(), h.controllers.clone()));
                }
            }
        }
        out
    }

    fn require(&self, controller: &str, limit: &'static str) -> Result<()> {
        if self.mounts.v1_hierarchy(controller).is_some() {
            return Ok(());
        }
        let mounted: Vec<&str> = self
            .mounts
            .v1
            .iter()
            .flat_map(|h| h.controllers.iter().map(String::as_str))
            .collect();
        Err(Error::MissingController {
            controller: controller.to_string(),
            limit,
            why: format!(
                "it is not mounted on this host (v1 controllers mounted: {})",
                if mounted.is_empty() {
                    "none".to_string()
                } else {
                    mounted.join(", ")
                }
            ),
        })
    }

    /// Makes `path` in every hierarchy the limits need and applies them;
    /// `made` collects each directory created, for undoing a failure.
    fn create_in_hierarchies(
        &self,
        cg: &mut V1Cgroup,
        made: &mut Vec<PathBuf>,
        path: &Path,
        limits: &Limits,
    ) -> Result<()> {
        for (mount, controllers) in self.hierarchies_for(limits) {
            let cpuset = controllers.iter().any(|c| c == "cpuset");
            cg.dirs.push((controllers, fs::join(&mount, path)));
            super::make_dir_in(&mount, path, cpuset, made)?;
        }
        cg.apply(limits)
    }

    fn all_dirs(&self, path: &Path) -> Vec<PathBuf> {
        self.mounts
            .v1
            .iter()
            .map(|h| fs::join(&h.mount_point, path))
            .collect()
    }
}

impl CgroupDriver for V1Driver {
    fn mode(&self) -> CgroupMode {
        self.mode
    }

    fn controllers(&self) -> Vec<String> {
        self.mounts
            .v1
            .iter()
            .flat_map(|h| h.controllers.iter().cloned())
            .collect()
    }

    fn create(&self, path: &Path, limits: &Limits) -> Result<Box<dyn Cgroup>> {
        if limits.cpu.is_some() {
            self.require("cpu", "cpu")?;
        }
        if limits.memory.is_some() {
            self.require("memory", "memory")?;
        }
        if limits.pids.is_some() {
            self.require("pids", "pids")?;
        }
        if limits.cpuset.is_some() {
            self.require("cpuset", "cpuset")?;
        }
        let mut cg = V1Cgroup {
            path: path.to_path_buf(),
            dirs: Vec::new(),
        };
        let mut made = Vec::new();
        if let Err(e) = self.create_in_hierarchies(&mut cg, &mut made, path, limits) {
            let _ = cg.remove();
            fs::remove_made(&made);
            return Err(e);
        }
        Ok(Box::new(cg))
    }

    fn open(&self, path: &Path) -> Box<dyn Cgroup> {
        let dirs = self
            .mounts
            .v1
            .iter()
            .map(|h| (h.controllers.clone(), fs::join(&h.mount_point, path)))
            .filter(|(_, d)| d.is_dir())
            .collect();
        Box::new(V1Cgroup {
            path: path.to_path_buf(),
            dirs,
        })
    }

    fn children(&self, path: &Path) -> Vec<String> {
        let mut names: Vec<String> = self
            .all_dirs(path)
            .iter()
            .flat_map(|d| fs::child_dirs(d))
            .collect();
        names.sort();
        names.dedup();
        names
    }

    fn remove_dir(&self, path: &Path) -> bool {
        self.all_dirs(path)
            .iter()
            .all(|d| fs::remove_dir(d).is_ok())
    }
}

/// v1 cpuset cgroups start with empty cpus and mems, refuse tasks until
/// both are set, and a child can only be given CPUs its parent has. Walks
/// `path` from the hierarchy root down and copies each empty value from the
/// parent: into every directory made now, and into an existing ancestor
/// inside boxwatch's own subtree ([`super::DEFAULT_PARENT`], e.g. one an
/// older run left empty). An empty ancestor outside it is someone else's
/// cgroup: it is refused with the fix, never written.
pub(super) fn inherit_cpuset(mount: &Path, path: &Path, created: &[PathBuf]) -> Result<()> {
    let own = Path::new(super::DEFAULT_PARENT);
    let mut rel = PathBuf::from("/");
    for part in path.components().skip_while(|c| c.as_os_str() == "/") {
        rel.push(part);
        let dir = fs::join(mount, &rel);
        let parent = dir.parent().expect("a cgroup below a mount has a parent");
        for file in ["cpuset.cpus", "cpuset.mems"] {
            if !fs::read(&dir, file).unwrap_or_default().is_empty() {
                continue;
            }
            if !created.contains(&dir) && !rel.starts_with(own) {
                return Err(Error::EmptyCpuset {
                    dir: dir.clone(),
                    file,
                });
            }
            let value = fs::read(parent, file).unwrap_or_default();
            fs::write(&dir, file, &value)?;
        }
    }
    Ok(())
}

#[derive(Debug)]
struct V1Cgroup {
    path: PathBuf,
    /// (controllers of the hierarchy, directory in it)
    dirs: Vec<(Vec<String>, PathBuf)>,
}

impl V1Cgroup {
    fn dir(&self, controller: &str) -> Option<&Path> {
        self.dirs
            .iter()
            .find(|(cs, _)| cs.iter().any(|c| c == controller))
            .map(|(_, d)| d.as_path())
    }

    fn apply(&self, limits: &Limits) -> Result<()> {
        if let (Some(q), Some(dir)) = (limits.cpu, self.dir("cpu")) {
            fs::write(dir, "cpu.cfs_period_us", &q.period_us().to_string())?;
            fs::write(dir, "cpu.cfs_quota_us", &q.quota_us().to_string())?;
        }
        if let (Some(m), Some(dir)) = (limits.memory, self.dir("memory")) {
            fs::write(dir, "memory.limit_in_bytes", &m.bytes().to_string())?;
            // No swap: the limit must cover memory and swap together.
            if dir.join("memory.memsw.limit_in_bytes").exists() {
                fs::write(dir, "memory.memsw.limit_in_bytes", &m.bytes().to_string())?;
            }
            let _ = fs::write(dir, "memory.swappiness", "0");
        }
        if let (Some(p), Some(dir)) = (limits.pids, self.dir("pids")) {
            fs::write(dir, "pids.max", &p.to_string())?;
        }
        if let (Some(set), Some(dir)) = (&limits.cpuset, self.dir("cpuset")) {
            fs::write(dir, "cpuset.cpus", &set.to_string())?;
        }
        if let Some(dir) = self.dir("devices") {
            // Deny every device, then allow the default ones (as runc does).
            fs::write(dir, "devices.deny", "a")?;
            for (typ, major, minor, access) in crate::spec::DEFAULT_DEVICES {
                let minor = minor.map_or("*".to_string(), |m| m.to_string());
                fs::write(
                    dir,
                    "devices.allow",
                    &format!("{typ} {major}:{minor} {access}"),
                )?;
            }
        }
        Ok(())
    }

    fn freeze(&self, dir: &Path, state: &str, timeout: Duration) -> bool {
        if fs::write(dir, "freezer.state", state).is_err() {
            return false;
        }
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if fs::read(dir, "freezer.state").as_deref() == Some(state) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        false
    }
}

impl Cgroup for V1Cgroup {
    fn path(&self) -> &Path {
        &self.path
    }

    fn dirs(&self) -> Vec<(String, PathBuf)> {
        self.dirs
            .iter()
            .map(|(cs, d)| (cs.join(","), d.clone()))
            .collect()
    }

    fn add_process(&self, pid: i32) -> Result<()> {
        for (_, dir) in &self.dirs {
            fs::write(dir, "cgroup.procs", &pid.to_string())?;
        }
        Ok(())
    }

    fn pids(&self) -> Vec<i32> {
        let mut all: Vec<i32> = self.dirs.iter().flat_map(|(_, d)| fs::procs(d)).collect();
        all.sort_unstable();
        all.dedup();
        all
    }

    fn kill_all(&self, timeout: Duration) -> Result<()> {
        if self.pids().is_empty() {
            return Ok(());
        }
        // Freeze first so nothing can fork while the kill goes round.
        if let Some(dir) = self.dir("freezer") {
            let frozen = self.freeze(dir, "FROZEN", Duration::from_millis(500));
            if frozen {
                for pid in fs::procs(dir) {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(pid),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
            }
            self.freeze(dir, "THAWED", Duration::from_millis(500));
        }
        let emptied = self
            .dirs
            .iter()
            .all(|(_, d)| fs::kill_until_empty(d, timeout));
        if emptied {
            Ok(())
        } else {
            Err(Error::Setup {
                step: "kill".into(),
                message: format!(
                    "processes in {} survived SIGKILL for {timeout:?}: {:?}",
                    self.path.display(),
                    self.pids()
                ),
            })
        }
    }

    fn oom_kills(&self) -> u64 {
        self.dir("memory")
            .and_then(|d| fs::read(d, "memory.oom_control"))
            .and_then(|s| fs::keyed_value(&s, "oom_kill"))
            .unwrap_or(0)
    }

    fn remove(&self) -> Result<()> {
        let mut first_err = None;
        for (_, dir) in &self.dirs {
            if let Err(e) = fs::remove_dir(dir) {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }
}
