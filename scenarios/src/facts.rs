//! Positive evidence for `unsupported`: what the judge knows, from the
//! kernel's own files, about the cgroup controllers a scenario's figures
//! come from. A figure the host did not show is `unsupported` only when the
//! kernel positively lacks it (the controller absent from /proc/cgroups or
//! a hierarchy's `cgroup.controllers`, a file absent from a cgroup whose
//! controller is enabled); anything else is an `error` naming the path and
//! the errno.

use crate::expect::{Evidence, Observed};
use probes::host::{CgroupLayout, CgroupPath, CgroupVersion};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The controllers the judge reads figures from.
pub const JUDGED_CONTROLLERS: [&str; 5] = ["cpu", "cpuacct", "memory", "pids", "cpuset"];

/// What is known of one controller for one container.
#[derive(Debug, Clone, PartialEq)]
pub enum ControllerFact {
    /// The kernel lacks it.
    Absent(Evidence),
    /// The controller's hierarchy is mounted; `dir` is the container's
    /// cgroup in it, and `dir_error` why that directory could not be
    /// seen (`ENOENT`...), if it could not.
    Mounted {
        /// The container's cgroup directory in the controller's hierarchy.
        dir: PathBuf,
        /// The cgroup version of that hierarchy (v1 or v2).
        version: CgroupVersion,
        /// Why `dir` could not be seen (`ENOENT`...), `None` if it could.
        dir_error: Option<String>,
    },
    /// Neither: why it could not be established.
    Unknown(String),
}

/// The facts of every judged controller for one container, read while its
/// cgroup still exists.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CgroupFacts {
    /// Each of [`JUDGED_CONTROLLERS`], by name, with what is known of it.
    pub controllers: BTreeMap<String, ControllerFact>,
    /// The kernel's release (`uname -r`), named by evidence that rests on
    /// how this kernel counts (empty when it could not be read).
    pub release: String,
}

/// One line of /proc/cgroups: (name, enabled).
pub fn parse_proc_cgroups(text: &str) -> BTreeMap<String, bool> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            Some((f.first()?.to_string(), *f.get(3)? == "1"))
        })
        .collect()
}

fn errno_of(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(n) => format!("{} ({e})", nix::errno::Errno::from_raw(n)),
        None => e.to_string(),
    }
}

fn read_proc_cgroups(path: &Path) -> Result<BTreeMap<String, bool>, String> {
    std::fs::read_to_string(path)
        .map(|t| parse_proc_cgroups(&t))
        .map_err(|e| format!("{}: {}", path.display(), errno_of(&e)))
}

/// What is known of controller `c`, which has no hierarchy in `layout`,
/// from /proc/cgroups (`listed`) and the v2 root's cgroup.controllers.
fn unmounted(
    listed: &Result<BTreeMap<String, bool>, String>,
    layout: &CgroupLayout,
    c: &str,
) -> ControllerFact {
    let listed = match listed {
        Ok(l) => l,
        Err(why) => return ControllerFact::Unknown(why.clone()),
    };
    if listed.get(c) != Some(&true) {
        return ControllerFact::Absent(Evidence::KernelController {
            controller: c.into(),
            source: "/proc/cgroups".into(),
        });
    }
    let Some(v2) = layout.v2() else {
        return ControllerFact::Unknown(format!(
            "/proc/cgroups lists {c} enabled but no hierarchy of it is mounted"
        ));
    };
    let file = v2.mount_point.join("cgroup.controllers");
    match std::fs::read_to_string(&file) {
        Ok(t) if !t.split_whitespace().any(|x| x == c) => {
            ControllerFact::Absent(Evidence::KernelController {
                controller: c.into(),
                source: file.display().to_string(),
            })
        }
        Ok(_) => ControllerFact::Unknown(format!(
            "the {c} controller is in {} but the judge found no hierarchy for it",
            file.display()
        )),
        Err(e) => ControllerFact::Unknown(format!("{}: {}", file.display(), errno_of(&e))),
    }
}

/// Why a scenario needing `controller` (which has no hierarchy in
/// `layout`) cannot run, with the kernel's evidence when it positively
/// lacks it (none: the judge could not establish why, an error).
pub fn controller_unavailable(
    layout: &CgroupLayout,
    controller: &str,
    proc_cgroups: &Path,
) -> (String, Option<Evidence>) {
    match unmounted(&read_proc_cgroups(proc_cgroups), layout, controller) {
        ControllerFact::Absent(e) => (
            format!("the {controller} cgroup controller is not available on this host ({e})"),
            Some(e),
        ),
        ControllerFact::Unknown(why) => (
            format!("the {controller} cgroup controller cannot be used here: {why}"),
            None,
        ),
        ControllerFact::Mounted { dir, .. } => (
            format!(
                "the {controller} cgroup controller is mounted at {}",
                dir.display()
            ),
            None,
        ),
    }
}

impl CgroupFacts {
    /// Reads the facts of `cgroup` (the container's, as the judge found it)
    /// in `layout`, with /proc/cgroups at `proc_cgroups`.
    pub fn gather(layout: &CgroupLayout, cgroup: &CgroupPath, proc_cgroups: &Path) -> CgroupFacts {
        let listed = read_proc_cgroups(proc_cgroups);
        let mut controllers = BTreeMap::new();
        for c in JUDGED_CONTROLLERS {
            let fact = match (&listed, layout.hierarchy_for(c)) {
                (_, Some(h)) => {
                    let dir = h.dir(cgroup);
                    let dir_error = match std::fs::metadata(&dir) {
                        Ok(m) if m.is_dir() => None,
                        Ok(_) => Some("ENOTDIR (not a directory)".into()),
                        Err(e) => Some(errno_of(&e)),
                    };
                    ControllerFact::Mounted {
                        dir,
                        version: h.version,
                        dir_error,
                    }
                }
                (listed, None) => unmounted(listed, layout, c),
            };
            controllers.insert(c.to_string(), fact);
        }
        let release = nix::sys::utsname::uname()
            .map(|u| u.release().to_string_lossy().into_owned())
            .unwrap_or_default();
        CgroupFacts {
            controllers,
            release,
        }
    }

    /// The observation of a figure of `controller`, read from `file` of the
    /// container's cgroup, that the host did not show: `unsupported` with
    /// evidence when the kernel lacks it, else an error naming the path.
    pub fn absent_figure(&self, controller: &str, file: &str) -> Observed {
        let Some(fact) = self.controllers.get(controller) else {
            return Observed::Missing(format!(
                "{file}: the {controller} controller was not examined (the container's cgroup was not found)"
            ));
        };
        match fact {
            ControllerFact::Absent(e) => Observed::Unsupported(e.clone()),
            ControllerFact::Unknown(why) => Observed::Missing(why.clone()),
            ControllerFact::Mounted {
                dir,
                dir_error: Some(err),
                ..
            } => Observed::Missing(format!(
                "{}: {err}: the container's cgroup is not in the {controller} hierarchy",
                dir.display()
            )),
            ControllerFact::Mounted {
                dir,
                version,
                dir_error: None,
            } => {
                let path = dir.join(file);
                if let Err(e) = std::fs::symlink_metadata(&path) {
                    if e.kind() != std::io::ErrorKind::NotFound {
                        return Observed::Missing(format!("{}: {}", path.display(), errno_of(&e)));
                    }
                } else {
                    return Observed::Missing(format!(
                        "{} exists but its figure was not read",
                        path.display()
                    ));
                }
                if *version == CgroupVersion::V2 {
                    let list = dir.join("cgroup.controllers");
                    match std::fs::read_to_string(&list) {
                        Ok(t) if t.split_whitespace().any(|x| x == controller) => {}
                        Ok(_) => {
                            return Observed::Missing(format!(
                                "{}: ENOENT: {} does not list {controller}: the controller is not enabled for the container's cgroup",
                                path.display(),
                                list.display()
                            ))
                        }
                        Err(e) => {
                            return Observed::Missing(format!(
                                "{}: {}",
                                list.display(),
                                errno_of(&e)
                            ))
                        }
                    }
                }
                Observed::Unsupported(Evidence::KernelFile {
                    path: path.display().to_string(),
                })
            }
        }
    }
}

/// The observation of a figure the host did not show when no facts were
/// gathered (the container's cgroup was never found).
pub fn absent_figure(
    facts: Option<&CgroupFacts>,
    why: &str,
    controller: &str,
    file: &str,
) -> Observed {
    match facts {
        Some(f) => f.absent_figure(controller, file),
        None => Observed::Missing(why.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_cgroups_lines_give_enabled_controllers() {
        let t = "#subsys_name\thierarchy\tnum_cgroups\tenabled\ncpu\t2\t10\t1\nmemory\t0\t1\t0\n";
        let m = parse_proc_cgroups(t);
        assert_eq!(m.get("cpu"), Some(&true));
        assert_eq!(m.get("memory"), Some(&false));
        assert_eq!(m.get("pids"), None);
    }

    fn mounted(dir: &Path, version: CgroupVersion, dir_error: Option<&str>) -> CgroupFacts {
        CgroupFacts {
            release: String::new(),
            controllers: [(
                "pids".to_string(),
                ControllerFact::Mounted {
                    dir: dir.to_path_buf(),
                    version,
                    dir_error: dir_error.map(String::from),
                },
            )]
            .into(),
        }
    }

    #[test]
    fn a_cgroup_missing_from_a_hierarchy_is_an_error_not_unsupported() {
        let f = mounted(
            Path::new("/sys/fs/cgroup/pids/boxwatch/x"),
            CgroupVersion::V1,
            Some("ENOENT"),
        );
        match f.absent_figure("pids", "pids.events") {
            Observed::Missing(why) => assert!(
                why.contains("ENOENT") && why.contains("pids/boxwatch/x"),
                "{why}"
            ),
            other => panic!("{other:?}"),
        }
        // Never examined: an error too.
        assert!(matches!(
            CgroupFacts::default().absent_figure("pids", "pids.max"),
            Observed::Missing(_)
        ));
        assert!(matches!(
            absent_figure(None, "no cgroup", "pids", "pids.max"),
            Observed::Missing(_)
        ));
    }

    #[test]
    fn a_file_absent_where_the_controller_is_enabled_is_kernel_evidence() {
        let dir = tempfile::tempdir().unwrap();
        let v1 = mounted(dir.path(), CgroupVersion::V1, None);
        assert!(matches!(
            v1.absent_figure("pids", "pids.events"),
            Observed::Unsupported(Evidence::KernelFile { .. })
        ));
        // v2: only when cgroup.controllers lists the controller.
        let v2 = mounted(dir.path(), CgroupVersion::V2, None);
        std::fs::write(dir.path().join("cgroup.controllers"), "cpu memory\n").unwrap();
        match v2.absent_figure("pids", "pids.events") {
            Observed::Missing(why) => assert!(why.contains("not enabled"), "{why}"),
            other => panic!("{other:?}"),
        }
        std::fs::write(dir.path().join("cgroup.controllers"), "cpu memory pids\n").unwrap();
        assert!(matches!(
            v2.absent_figure("pids", "pids.events"),
            Observed::Unsupported(Evidence::KernelFile { .. })
        ));
        // A file that is there but was not read is an error.
        std::fs::write(dir.path().join("pids.events"), "max 0\n").unwrap();
        assert!(matches!(
            v2.absent_figure("pids", "pids.events"),
            Observed::Missing(_)
        ));
    }

    #[test]
    fn an_absent_controller_carries_its_evidence() {
        let f = CgroupFacts {
            release: String::new(),
            controllers: [(
                "memory".to_string(),
                ControllerFact::Absent(Evidence::KernelController {
                    controller: "memory".into(),
                    source: "/proc/cgroups".into(),
                }),
            )]
            .into(),
        };
        assert!(matches!(
            f.absent_figure("memory", "memory.peak"),
            Observed::Unsupported(Evidence::KernelController { .. })
        ));
    }
}
