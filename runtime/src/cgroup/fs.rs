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
        source: cause,
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
/// ancestor (the default `/boxwatch` parent) half-way
/// ([`crate::shared_dir::pause_if_vanished`]).
pub fn create_dirs(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut made = Vec::new();
    let mut attempt = 0;
    loop {
        match create_missing(dir, &mut made) {
            Ok(()) => return Ok(made),
            Err((source, _))
                if crate::shared_dir::pause_if_vanished(&source, dir, &mut attempt) => {}
            Err((source, path)) => {
                return Err(Error::Cgroup {
                    action: "creating",
                    hint: hint_for(&source),
                    path,
                    source,
                })
            }
        }
    }
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
            " (run boxwatch as root, or pass --cgroup-parent to a cgroup delegated to you)"
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
        .map(|s| parse_procs(&s))
        .unwrap_or_default()
}

/// The PIDs of a cgroup.procs text: one per line; anything else is skipped.
pub fn parse_procs(text: &str) -> Vec<i32> {
    text.lines()
        .filter_map(|l| l.trim().parse().ok())
        .filter(|&p: &i32| p > 0)
        .collect()
}

/// The controller names of a cgroup.controllers or cgroup.subtree_control
/// text ("cpuset cpu io memory pids").
pub fn parse_controllers(text: &str) -> Vec<String> {
    text.split_whitespace().map(String::from).collect()
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

/// Undoes a failed create: removes the directories it made, innermost
/// first. One still in use (a shared parent another run just joined) stays.
pub fn remove_made(made: &[PathBuf]) {
    for dir in made.iter().rev() {
        let _ = remove_dir(dir);
    }
}

/// Removes an empty cgroup directory, retrying briefly while the kernel
/// finishes tearing down exited tasks (EBUSY). Absent counts as removed.
/// A cgroup with child cgroups also answers EBUSY: that fails at once
/// (a shared parent such as `/boxwatch` while other runs use it).
pub fn remove_dir(dir: &Path) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e)
                if e.raw_os_error() == Some(libc::EBUSY)
                    && Instant::now() < deadline
                    && child_dirs(dir).is_empty() =>
            {
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(cause) => {
                return Err(Error::Cgroup {
                    action: "removing",
                    hint: hint_for(&cause),
                    path: dir.to_path_buf(),
                    source: cause,
                })
            }
        }
    }
}

/// The value of `key` in a flat keyed cgroup file ("key value" lines, as
/// memory.events, memory.oom_control, cpu.stat, pids.events).
pub fn keyed_value(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, v) = l.trim().split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok())?
    })
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn cgroup_creation_survives_the_shared_parent_vanishing() {
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::Arc;
        let tmp = tempfile::tempdir().unwrap();
        let parent = Arc::new(tmp.path().join("boxwatch"));
        let stop = Arc::new(AtomicBool::new(false));
        let remover = {
            let (parent, stop) = (parent.clone(), stop.clone());
            // Other runs ending: they remove the shared parent when empty.
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    let _ = std::fs::remove_dir(&*parent);
                    std::thread::sleep(std::time::Duration::from_micros(100));
                }
            })
        };
        for n in 0..1000 {
            let c = parent.join(format!("{n}-1-0/c"));
            let made = create_dirs(&c).unwrap();
            assert_eq!(made.last(), Some(&c));
            remove_made(&made);
        }
        stop.store(true, Ordering::SeqCst);
        remover.join().unwrap();
    }

    #[test]
    fn oom_kill_is_read_from_v1_and_v2_files() {
        let v1 = "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n";
        let v2 = "low 0\nhigh 0\nmax 17\noom 2\noom_kill 2\noom_group_kill 0\n";
        assert_eq!(keyed_value(v1, "oom_kill"), Some(3));
        assert_eq!(keyed_value(v2, "oom_kill"), Some(2));
        assert_eq!(keyed_value(v2, "oom"), Some(2));
        assert_eq!(keyed_value(v2, "missing"), None);
    }

    proptest! {
        #[test]
        fn keyed_values_are_found_among_others(
            entries in proptest::collection::btree_map("[a-z_]{1,12}", any::<u64>(), 1..10),
        ) {
            let text: String = entries.iter().map(|(k, v)| format!("{k} {v}\n")).collect();
            for (k, v) in &entries {
                prop_assert_eq!(keyed_value(&text, k), Some(*v));
            }
        }

        #[test]
        fn cgroup_procs_give_back_every_pid(pids in proptest::collection::vec(1i32..i32::MAX, 0..50)) {
            let text: String = pids.iter().map(|p| format!("{p}\n")).collect();
            prop_assert_eq!(parse_procs(&text), pids);
        }

        #[test]
        fn cgroup_procs_parser_never_panics(text in "\\PC{0,120}") {
            prop_assert!(parse_procs(&text).iter().all(|&p| p > 0));
        }

        #[test]
        fn controller_lists_split_on_any_whitespace(
            names in proptest::collection::vec("[a-z_]{1,10}", 0..10),
            sep in "[ \t]{1,3}",
        ) {
            let text = format!("{}\n", names.join(&sep));
            prop_assert_eq!(parse_controllers(&text), names);
        }

        #[test]
        fn keyed_value_never_panics(text in "\\PC{0,80}", key in "[a-z_]{0,8}") {
            let _ = keyed_value(&text, &key);
        }
    }
}
