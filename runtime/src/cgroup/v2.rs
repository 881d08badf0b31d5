//! The cgroup v2 (unified hierarchy) driver.

use super::fs;
use super::mounts::CgroupMode;
use super::{Cgroup, CgroupDriver};
use crate::error::{Error, Result};
use crate::spec::Limits;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[derive(Debug)]
/// The cgroup v2 driver: one directory in the unified hierarchy.
pub struct V2Driver {
    root: PathBuf,
    mode: CgroupMode,
}

impl V2Driver {
    /// A driver over the cgroup2 hierarchy mounted at `root`.
    pub fn new(root: PathBuf, mode: CgroupMode) -> Self {
        V2Driver { root, mode }
    }

    fn available(dir: &Path) -> Vec<String> {
        fs::parse_controllers(&fs::read(dir, "cgroup.controllers").unwrap_or_default())
    }

    /// Controllers to enable for a container with `limits`: the limits'
    /// own (which must be available) plus cpu/memory/pids for accounting
    /// where the hierarchy offers them.
    fn wanted(&self, limits: &Limits) -> Result<Vec<String>> {
        let available = Self::available(&self.root);
        let mut wanted = Vec::new();
        let needs = [
            ("cpu", "cpu", limits.cpu.is_some()),
            ("memory", "memory", limits.memory.is_some()),
            ("pids", "pids", limits.pids.is_some()),
            ("cpuset", "cpuset", limits.cpuset.is_some()),
        ];
        for (controller, limit, needed) in needs {
            let present = available.iter().any(|c| c == controller);
            if needed && !present {
                return Err(Error::MissingController {
                    controller: controller.into(),
                    limit,
                    why: format!(
                        "{} offers only [{}]",
                        self.root.join("cgroup.controllers").display(),
                        available.join(" ")
                    ),
                });
            }
            if present && (needed || controller != "cpuset") {
                wanted.push(controller.to_string());
            }
        }
        Ok(wanted)
    }

    /// Enables `wanted` in `dir/cgroup.subtree_control` where missing.
    /// Only a cgroup boxwatch may write is changed (`may_write`): the
    /// hierarchy root, its own subtree, one it just made. Anyone else's
    /// cgroup that lacks a controller is refused with the fix.
    fn delegate(dir: &Path, wanted: &[String], may_write: bool) -> Result<()> {
        let enabled =
            fs::parse_controllers(&fs::read(dir, "cgroup.subtree_control").unwrap_or_default());
        let available = Self::available(dir);
        let missing: Vec<&String> = wanted.iter().filter(|c| !enabled.contains(c)).collect();
        if missing.is_empty() {
            return Ok(());
        }
        let line: Vec<String> = missing.iter().map(|c| format!("+{c}")).collect();
        let line = line.join(" ");
        if let Some(c) = missing.iter().find(|c| !available.contains(c)) {
            return Err(Error::MissingController {
                controller: c.to_string(),
                limit: "container",
                why: format!("it is not delegated to {}", dir.display()),
            });
        }
        if !may_write {
            return Err(Error::NotDelegated {
                dir: dir.to_path_buf(),
                line,
            });
        }
        fs::write(dir, "cgroup.subtree_control", &line)
    }
}

impl CgroupDriver for V2Driver {
    fn mode(&self) -> CgroupMode {
        self.mode
    }

    fn controllers(&self) -> Vec<String> {
        Self::available(&self.root)
    }

    fn create(&self, path: &Path, limits: &Limits) -> Result<Box<dyn Cgroup>> {
        let wanted = self.wanted(limits)?;
        let leaf = fs::join(&self.root, path);
        let cg = V2Cgroup {
            path: path.to_path_buf(),
            dir: leaf.clone(),
        };
        // Walk from the hierarchy root down to the leaf's parent, creating
        // each level and delegating the controllers one level further.
        let own = Path::new(super::DEFAULT_PARENT);
        let mut made = Vec::new();
        let mut dir = self.root.clone();
        let mut rel = PathBuf::from("/");
        let created = path.components().skip(1).try_for_each(|component| {
            let may_write = dir == self.root || rel.starts_with(own) || made.contains(&dir);
            Self::delegate(&dir, &wanted, may_write)?;
            dir.push(component);
            rel.push(component);
            made.extend(fs::create_dirs(&dir)?);
            Ok(())
        });
        if let Err(e) = created.and_then(|()| cg.apply(limits)) {
            fs::remove_made(&made);
            return Err(e);
        }
        Ok(Box::new(cg))
    }

    fn open(&self, path: &Path) -> Box<dyn Cgroup> {
        Box::new(V2Cgroup {
            path: path.to_path_buf(),
            dir: fs::join(&self.root, path),
        })
    }

    fn children(&self, path: &Path) -> Vec<String> {
        fs::child_dirs(&fs::join(&self.root, path))
    }

    fn remove_dir(&self, path: &Path) -> bool {
        fs::remove_dir(&fs::join(&self.root, path)).is_ok()
    }
}

#[derive(Debug)]
struct V2Cgroup {
    path: PathBuf,
    dir: PathBuf,
}

impl V2Cgroup {
    fn apply(&self, limits: &Limits) -> Result<()> {
        let d = &self.dir;
        if let Some(q) = limits.cpu {
            fs::write(d, "cpu.max", &format!("{} {}", q.quota_us(), q.period_us()))?;
        }
        if let Some(m) = limits.memory {
            fs::write(d, "memory.max", &m.bytes().to_string())?;
            if d.join("memory.swap.max").exists() {
                fs::write(d, "memory.swap.max", "0")?;
            }
        }
        if let Some(p) = limits.pids {
            fs::write(d, "pids.max", &p.to_string())?;
        }
        if let Some(set) = &limits.cpuset {
            fs::write(d, "cpuset.cpus", &set.to_string())?;
        }
        Ok(())
    }

    fn wait_empty(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if fs::procs(&self.dir).is_empty() {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

impl Cgroup for V2Cgroup {
    fn path(&self) -> &Path {
        &self.path
    }

    fn dirs(&self) -> Vec<(String, PathBuf)> {
        vec![("unified".into(), self.dir.clone())]
    }

    fn add_process(&self, pid: i32) -> Result<()> {
        fs::write(&self.dir, "cgroup.procs", &pid.to_string())
    }

    fn pids(&self) -> Vec<i32> {
        fs::procs(&self.dir)
    }

    fn kill_all(&self, timeout: Duration) -> Result<()> {
        if self.pids().is_empty() {
            return Ok(());
        }
        let emptied = if self.dir.join("cgroup.kill").exists() {
            fs::write(&self.dir, "cgroup.kill", "1")?;
            self.wait_empty(timeout)
        } else {
            let frozen = fs::write(&self.dir, "cgroup.freeze", "1").is_ok();
            for pid in fs::procs(&self.dir) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            if frozen {
                let _ = fs::write(&self.dir, "cgroup.freeze", "0");
            }
            fs::kill_until_empty(&self.dir, timeout)
        };
        if emptied {
            Ok(())
        } else {
            Err(Error::Setup {
                step: "kill".into(),
                message: format!(
                    "processes in {} survived the kill for {timeout:?}: {:?}",
                    self.dir.display(),
                    self.pids()
                ),
            })
        }
    }

    fn oom_kills(&self) -> u64 {
        fs::read(&self.dir, "memory.events")
            .and_then(|s| fs::keyed_value(&s, "oom_kill"))
            .unwrap_or(0)
    }

    fn remove(&self) -> Result<()> {
        fs::remove_dir(&self.dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake cgroup2 tree: the root offers cpu, memory and pids, and
    /// `/foreign` is somebody else's cgroup with `subtree_control` as given.
    fn fake_tree(foreign_enabled: &str) -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join("cgroup.controllers"), "cpu memory pids\n").unwrap();
        std::fs::write(t.path().join("cgroup.subtree_control"), "cpu memory pids\n").unwrap();
        let foreign = t.path().join("foreign");
        std::fs::create_dir(&foreign).unwrap();
        std::fs::write(foreign.join("cgroup.controllers"), "cpu memory pids\n").unwrap();
        std::fs::write(foreign.join("cgroup.subtree_control"), foreign_enabled).unwrap();
        t
    }

    fn cpu_limit() -> Limits {
        Limits {
            cpu: Some("0.5".parse().unwrap()),
            ..Limits::default()
        }
    }

    #[test]
    fn a_foreign_parent_without_the_controllers_is_refused_and_left_alone() {
        let t = fake_tree("");
        let driver = V2Driver::new(t.path().to_path_buf(), CgroupMode::V2);
        let err = driver
            .create(Path::new("/foreign/run/c"), &cpu_limit())
            .unwrap_err();
        assert!(matches!(err, Error::NotDelegated { .. }), "{err}");
        let msg = err.to_string();
        assert!(
            msg.contains("echo '+cpu +memory +pids' >") && msg.contains("--cgroup-parent"),
            "{msg}"
        );
        let foreign = t.path().join("foreign");
        assert_eq!(
            std::fs::read_to_string(foreign.join("cgroup.subtree_control")).unwrap(),
            "",
            "somebody else's cgroup was written"
        );
        assert!(
            !foreign.join("run").exists(),
            "the refused create left a directory"
        );
    }

    #[test]
    fn a_foreign_parent_that_delegates_is_used_as_it_is() {
        let t = fake_tree("cpu memory pids\n");
        let driver = V2Driver::new(t.path().to_path_buf(), CgroupMode::V2);
        driver
            .create(Path::new("/foreign/c"), &cpu_limit())
            .unwrap();
        let foreign = t.path().join("foreign");
        assert_eq!(
            std::fs::read_to_string(foreign.join("c/cpu.max")).unwrap(),
            "50000 100000"
        );
        assert_eq!(
            std::fs::read_to_string(foreign.join("cgroup.subtree_control")).unwrap(),
            "cpu memory pids\n"
        );
    }
}
