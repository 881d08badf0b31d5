//! File operations shared by both drivers: writing control files with errors
//! that name the file, listing member processes, removing directories.

use crate::error::{Error, Result};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Writes `value` to the control file `dir/file`.
pub fn write(dir: &Path, file: &str, value: &str) -> Result<()> {
    let path = dir.join(file);
    std::fs::write(&path, value).map_err(|cause| Error::Cgroup {
        action: "writing",
        hint: hint_for(&cause),
        path: path.clone(),
        cause,
    })
}

/// Reads a control file, trimmed; None when absent or unreadable.
pub fn read(dir: &Path, file: &str) -> Option<String> {
    std::fs::read_to_string(dir.join(file))
        .ok()
        .map(|s| s.trim().to_string())
}

/// Creates `dir` and its missing parents; returns the directories it made,
/// outermost first. Retries when a parallel run removes a shared, empty
/// ancestor (the default `/boxwatch` parent) half-way.
pub fn create_dirs(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut made = Vec::new();
    for attempt in 0.. {
        match create_missing(dir, &mut made) {
            Ok(()) => return Ok(made),
            Err((source, _)) if source.kind() == std::io::ErrorKind::NotFound && attempt < 5 => {
                continue
            }
            Err((source, path)) => {
                return Err(Error::Cgroup {
                    action: "creating",
                    hint: hint_for(&source),
                    path,
                    cause: source,
                })
            }
        }
    }
    unreachable!("the loop returns")
}

fn create_missing(
    dir: &Path,
    made: &mut Vec<PathBuf>,
) -> std::result::Result<(), (std::io::Error, PathBuf)> {
    let mut missing = Vec::new();
    let mut cur = dir;
    while !cur.exists() {
        missing.push(cur.to_path_buf());
        match cur.parent() {
            Some(p) => cur = p,
            None => break,
        }
    }
    for d in missing.into_iter().rev() {
        match std::fs::create_dir(&d) {
            Ok(()) => made.push(d),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err((e, d)),
        }
    }
    Ok(())
}

fn hint_for(e: &std::io::Error) -> &'static str {
    match e.raw_os_error() {
        Some(libc::EACCES) | Some(libc::EPERM) | Some(libc::EROFS) => {
            " (permission denied: run boxwatch as root, or pass --cgroup-parent to a cgroup delegated to you)"
        }
        Some(libc::EINVAL) | Some(libc::ERANGE) => " (the kernel refused this value)",
        Some(libc::EBUSY) => " (the cgroup is busy: it still has processes or child cgroups)",
        Some(libc::ENOSPC) => " (no space: cpuset.cpus/mems of the parent may be empty)",
        _ => "",
    }
}

/// The PIDs listed in `dir/cgroup.procs`.
pub fn procs(dir: &Path) -> Vec<i32> {
    read(dir, "cgroup.procs")
        .map(|s| s.lines().filter_map(|l| l.trim().parse().ok()).collect())
        .unwrap_or_default()
}

/// SIGKILLs every process in `dir` until it is empty or `timeout` passes.
/// Returns whether the cgroup emptied.
pub fn kill_until_empty(dir: &Path, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        let pids = procs(dir);
        if pids.is_empty() {
            return true;
        }
        for pid in pids {
            // These PIDs are members of a cgroup boxwatch created for its own
            // container: they are boxwatch's to end.
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        if Instant::now() >= deadline {
            return procs(dir).is_empty();
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Removes an empty cgroup directory, retrying briefly while the kernel
/// finishes tearing down exited tasks (EBUSY). Absent counts as removed.
pub fn remove_dir(dir: &Path) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(cause) => {
                return Err(Error::Cgroup {
                    action: "removing",
                    hint: hint_for(&cause),
                    path: dir.to_path_buf(),
                    cause,
                })
            }
        }
    }
}

/// Names of the sub-directories of `dir` (child cgroups).
pub fn child_dirs(dir: &Path) -> Vec<String> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = rd
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort();
    names
}

/// Joins a hierarchy mount point and a cgroup path relative to it.
pub fn join(root: &Path, rel: &Path) -> PathBuf {
    root.join(rel.strip_prefix("/").unwrap_or(rel))
}
