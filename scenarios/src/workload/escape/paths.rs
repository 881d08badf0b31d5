//! Masked and read-only kernel paths, /sys, and cgroupfs. Nothing here
//! writes: a path is writable when `access(W_OK)` (which opens nothing)
//! succeeds and neither the mount's flags in /proc/self/mountinfo nor
//! `statvfs` say read-only.

use super::list;
use nix::sys::statvfs::{statvfs, FsFlags};
use nix::unistd::{access, AccessFlags};
use probes::host::MountInfo;
use serde_json::{Map, Value};
use std::io::Read;
use std::path::Path;

/// Paths that must read as empty or absent: the masked paths of `runc
/// spec` and Docker. The judge keeps its own list (not the runtime's), so
/// that a path dropped from the runtime's list shows up here.
const MASKED: [&str; 10] = [
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
];

/// Paths that must not be writable: the read-only paths of `runc spec`,
/// and the files below them whose write acts on the host.
const READ_ONLY: [&str; 8] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
    "/proc/sys/kernel/core_pattern",
    "/proc/sys/kernel/modprobe",
    "/proc/sys/vm/drop_caches",
];

/// Whether `p` could be written: `access(W_OK)` passes, and neither the
/// mount holding it (`mounts`, the caller's mountinfo) nor `statvfs` say
/// read-only. Nothing opens the file.
pub fn writable(p: &Path, mounts: &[MountInfo]) -> bool {
    let ro = statvfs(p).is_ok_and(|s| s.flags().contains(FsFlags::ST_RDONLY));
    !ro && !mount_read_only(p, mounts) && access(p, AccessFlags::W_OK).is_ok()
}

/// Whether the mount holding `p` (the longest mount point above it, the
/// top one when several are stacked there) has the per-mount `ro` flag.
pub fn mount_read_only(p: &Path, mounts: &[MountInfo]) -> bool {
    mounts
        .iter()
        .filter(|m| p.starts_with(&m.mount_point))
        .max_by_key(|m| m.mount_point.as_os_str().len())
        .is_some_and(|m| m.mount_options.split(',').any(|o| o == "ro"))
}

fn own_mounts() -> Vec<MountInfo> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .ok()
        .and_then(|t| probes::host::parse::parse_mountinfo(&t).ok())
        .unwrap_or_default()
}

/// What a masked path shows: `None` when it is absent, empty or cannot be
/// read; else what it gave away. A file is read for one byte at most.
fn unmasked(p: &Path) -> Option<String> {
    let meta = std::fs::symlink_metadata(p).ok()?;
    if meta.is_dir() {
        let n = std::fs::read_dir(p).ok()?.count();
        (n > 0).then(|| format!("{} ({n} entries)", p.display()))
    } else {
        let mut f = std::fs::File::open(p).ok()?;
        let mut byte = [0u8; 1];
        match f.read(&mut byte) {
            Ok(1) => Some(format!("{} (readable)", p.display())),
            _ => None,
        }
    }
}

pub fn probe(r: &mut Map<String, Value>) {
    let mounts = own_mounts();
    let unmasked: Vec<String> = MASKED
        .iter()
        .filter_map(|p| unmasked(Path::new(p)))
        .collect();
    r.insert("unmasked_paths".into(), list(&unmasked));
    let writable_paths: Vec<String> = READ_ONLY
        .iter()
        .filter(|p| Path::new(p).exists() && writable(Path::new(p), &mounts))
        .map(|p| p.to_string())
        .collect();
    r.insert("writable_readonly_paths".into(), list(&writable_paths));
    r.insert(
        "sys_writable".into(),
        Value::from(writable(Path::new("/sys"), &mounts)),
    );
    let (state, writable_cg) = cgroupfs(&mounts);
    r.insert("cgroupfs".into(), Value::from(state));
    r.insert("cgroupfs_writable".into(), list(&writable_cg));
}

/// The cgroup filesystems visible inside: `absent`, or `read-only`, or
/// mounted with some writable; the writable mount points, and a v1
/// `release_agent` that could be written.
fn cgroupfs(mounts: &[MountInfo]) -> (String, Vec<String>) {
    let cg: Vec<&MountInfo> = mounts
        .iter()
        .filter(|m| m.fs_type == "cgroup" || m.fs_type == "cgroup2")
        .collect();
    if cg.is_empty() {
        return ("absent".into(), Vec::new());
    }
    let mut w = Vec::new();
    for m in &cg {
        if writable(&m.mount_point, mounts) {
            w.push(m.mount_point.display().to_string());
        }
        let agent = m.mount_point.join("release_agent");
        if agent.exists() && writable(&agent, mounts) {
            w.push(agent.display().to_string());
        }
    }
    let state = if w.is_empty() {
        format!("read-only ({} mounts)", cg.len())
    } else {
        format!("writable ({} of {} mounts)", w.len(), cg.len())
    };
    (state, w)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tmp_dir_is_writable_and_proc_sys_is_not() {
        let d = tempfile::tempdir().unwrap();
        let mounts = own_mounts();
        assert!(writable(d.path(), &mounts));
        // The /proc/sys directory itself refuses writes even to root.
        assert!(!writable(Path::new("/proc/sys"), &mounts));
        assert!(!writable(&d.path().join("absent"), &mounts));
    }

    #[test]
    fn empty_and_absent_paths_are_masked() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(unmasked(d.path()), None);
        assert_eq!(unmasked(&d.path().join("absent")), None);
        assert_eq!(unmasked(Path::new("/dev/null")), None);
        std::fs::write(d.path().join("f"), "x").unwrap();
        assert!(unmasked(d.path()).is_some());
        assert!(unmasked(&d.path().join("f")).is_some());
    }

    #[test]
    fn the_top_mount_at_the_longest_prefix_decides() {
        let mounts = probes::host::parse::parse_mountinfo(
            "1 0 0:1 / / rw - tmpfs t rw\n\
             2 1 0:2 / /proc rw,nosuid - proc p rw\n\
             3 2 0:2 /sys /proc/sys ro,nosuid - proc p rw\n\
             4 3 0:2 /sys /proc/sys rw,nosuid - proc p rw\n\
             5 2 0:2 /irq /proc/irq ro - proc p rw\n",
        )
        .unwrap();
        assert!(
            !mount_read_only(Path::new("/proc/sys/kernel"), &mounts),
            "the rw mount on top"
        );
        assert!(mount_read_only(Path::new("/proc/irq/1"), &mounts));
        assert!(!mount_read_only(Path::new("/proc/irqx"), &mounts));
        assert!(!mount_read_only(Path::new("/tmp"), &mounts));
        // The same mount writable to access() is judged read-only by its flag.
        let d = tempfile::tempdir().unwrap();
        let ro_here = format!("9 1 0:9 / {} ro - tmpfs t rw\n", d.path().display());
        let ro = probes::host::parse::parse_mountinfo(&ro_here).unwrap();
        assert!(!writable(d.path(), &ro));
    }

    #[test]
    fn no_cgroup_mount_is_absent() {
        assert_eq!(cgroupfs(&[]).0, "absent");
    }
}
