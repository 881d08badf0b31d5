//! Fake cgroup trees in a directory, for tests of code that reads the host
//! view (here and in the exporter). Not used at run time.
//!
//! ```no_run
//! use probes::host::fake::FakeTree;
//! let dir = std::path::Path::new("/tmp/x");
//! let tree = FakeTree::new(dir).v2(&["cpu", "memory", "pids"]).build()?;
//! // A pure v2 tree is mounted at sys/fs/cgroup itself: mount name "".
//! tree.write("", "/boxwatch/c1", "cpu.max", "20000 100000\n")?;
//! let layout = tree.host().layout().unwrap();
//! # Ok::<(), std::io::Error>(())
//! ```

use super::parse::escape_octal;
use super::Host;
use std::io;
use std::path::{Path, PathBuf};

/// A fake host root: `proc/self/mountinfo` plus cgroup mounts under
/// `sys/fs/cgroup/`.
#[derive(Debug, Clone)]
pub struct FakeTree {
    root: PathBuf,
    /// (mount name under sys/fs/cgroup, controllers, v2?)
    mounts: Vec<(String, Vec<String>, bool)>,
}

impl FakeTree {
    /// A tree rooted at `root` (which should be an empty directory).
    pub fn new(root: &Path) -> Self {
        FakeTree {
            root: root.to_path_buf(),
            mounts: Vec::new(),
        }
    }

    /// Adds a v1 hierarchy with these controllers, mounted at
    /// `sys/fs/cgroup/<controllers joined by ','>`.
    pub fn v1(mut self, controllers: &[&str]) -> Self {
        let name = controllers.join(",");
        let ctrls = controllers.iter().map(|c| c.to_string()).collect();
        self.mounts.push((name, ctrls, false));
        self
    }

    /// Adds the unified hierarchy offering `controllers`. Mounted at
    /// `sys/fs/cgroup` itself when it is the only mount added so far and no
    /// v1 follows (pure v2), else at `sys/fs/cgroup/unified`; use
    /// [`Self::mount_name`] to find out.
    pub fn v2(mut self, controllers: &[&str]) -> Self {
        let ctrls = controllers.iter().map(|c| c.to_string()).collect();
        self.mounts.push(("unified".into(), ctrls, true));
        self
    }

    /// Writes the mountinfo and the root cgroup directories.
    pub fn build(mut self) -> io::Result<Self> {
        let pure_v2 = self.mounts.len() == 1 && self.mounts[0].2;
        if pure_v2 {
            self.mounts[0].0 = String::new();
        }
        let mut mountinfo = String::from(
            "22 1 8:1 / / rw,relatime - ext4 /dev/root rw\n\
             31 22 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n",
        );
        for (i, (name, ctrls, v2)) in self.mounts.iter().enumerate() {
            let mp = self.mount_point(name);
            std::fs::create_dir_all(&mp)?;
            let abs = if name.is_empty() {
                "/sys/fs/cgroup".to_string()
            } else {
                format!("/sys/fs/cgroup/{name}")
            };
            let (fs, opts) = if *v2 {
                std::fs::write(mp.join("cgroup.controllers"), ctrls.join(" ") + "\n")?;
                ("cgroup2", "rw,nsdelegate".to_string())
            } else {
                ("cgroup", format!("rw,{}", ctrls.join(",")))
            };
            mountinfo.push_str(&format!(
                "{} 31 0:{} / {} rw,relatime - {fs} {fs} {opts}\n",
                40 + i,
                40 + i,
                escape_octal(abs.as_bytes())
            ));
        }
        let proc_self = self.root.join("proc/self");
        std::fs::create_dir_all(&proc_self)?;
        std::fs::write(proc_self.join("mountinfo"), mountinfo)?;
        Ok(self)
    }

    /// The name of the mount serving `controller` (`"cpu"`, `"unified"`,
    /// `""` for a pure v2 root), for [`Self::write`].
    pub fn mount_name(&self, controller: &str) -> Option<&str> {
        self.mounts
            .iter()
            .find(|(_, c, _)| c.iter().any(|c| c == controller))
            .map(|(n, _, _)| n.as_str())
    }

    fn mount_point(&self, name: &str) -> PathBuf {
        let base = self.root.join("sys/fs/cgroup");
        if name.is_empty() {
            base
        } else {
            base.join(name)
        }
    }

    /// Creates the directory of `cgroup` (`/boxwatch/c1`) in mount `mount`.
    pub fn mkdir(&self, mount: &str, cgroup: &str) -> io::Result<PathBuf> {
        let dir = self.mount_point(mount).join(cgroup.trim_start_matches('/'));
        std::fs::create_dir_all(&dir)?;
        Ok(dir)
    }

    /// Writes `file` of `cgroup` in mount `mount`, creating the cgroup.
    pub fn write(&self, mount: &str, cgroup: &str, file: &str, text: &str) -> io::Result<()> {
        let dir = self.mkdir(mount, cgroup)?;
        std::fs::write(dir.join(file), text)
    }

    /// The [`Host`] rooted at this tree.
    pub fn host(&self) -> Host {
        Host::with_root(&self.root)
    }

    /// The tree's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }
}
