//! Masked and read-only kernel paths, /sys, and cgroupfs. Nothing here
//! writes: a path is writable when `access(W_OK)` (which opens nothing)
//! succeeds and its filesystem is not mounted read-only (`statvfs`).

use super::list;
use nix::sys::statvfs::{statvfs, FsFlags};
use nix::unistd::{access, AccessFlags};
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

/// Whether `p` could be written: `access(W_OK)` passes and the filesystem
/// is not read-only. Neither call opens the file.
pub fn writable(p: &Path) -> bool {
    let ro = statvfs(p).is_ok_and(|s| s.flags().contains(FsFlags::ST_RDONLY));
    !ro && access(p, AccessFlags::W_OK).is_ok()
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
    let unmasked: Vec<String> = MASKED
        .iter()
        .filter_map(|p| unmasked(Path::new(p)))
        .collect();
    r.insert("unmasked_paths".into(), list(&unmasked));
    let writable_paths: Vec<String> = READ_ONLY
        .iter()
        .filter(|p| Path::new(p).exists() && writable(Path::new(p)))
        .map(|p| p.to_string())
        .collect();
    r.insert("writable_readonly_paths".into(), list(&writable_paths));
    r.insert(
        "sys_writable".into(),
        Value::from(writable(Path::new("/sys"))),
    );
    let mounts = std::fs::read_to_string("/proc/self/mountinfo")
        .ok()
        .and_then(|t| probes::host::parse::parse_mountinfo(&t).ok())
        .unwrap_or_default();
    let (state, writable_cg) = cgroupfs(&mounts);
    r.insert("cgroupfs".into(), Value::from(state));
    r.insert("cgroupfs_writable".into(), list(&writable_cg));
}

/// The cgroup filesystems visible inside: `absent`, or `read-only`, or
/// mounted with some writable; the writable mount points, and a v1
/// `release_agent` that could be written.
fn cgroupfs(mounts: &[probes::host::MountInfo]) -> (String, Vec<String>) {
    let cg: Vec<&probes::host::MountInfo> = mounts
        .iter()
        .filter(|m| m.fs_type == "cgroup" || m.fs_type == "cgroup2")
        .collect();
    if cg.is_empty() {
        return ("absent".into(), Vec::new());
    }
    let mut w = Vec::new();
    for m in &cg {
        if writable(&m.mount_point) {
            w.push(m.mount_point.display().to_string());
        }
        let agent = m.mount_point.join("release_agent");
        if agent.exists() && writable(&agent) {
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
        assert!(writable(d.path()));
        // The /proc/sys directory itself refuses writes even to root.
        assert!(!writable(Path::new("/proc/sys")));
        assert!(!writable(&d.path().join("absent")));
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
    fn no_cgroup_mount_is_absent() {
        assert_eq!(cgroupfs(&[]).0, "absent");
    }
}
