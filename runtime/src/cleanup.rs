//! Finding and removing what an earlier, killed boxwatch run left behind.
//!
//! A run's cgroup is `<parent>/<pid>-<start-time>-<seq>`: the PID and start
//! time (in clock ticks since boot, from `/proc/<pid>/stat`) of the boxwatch
//! process that made it. When no process with that PID and start time is
//! alive, the run is stale: its containers are killed and its cgroups and
//! state directory removed. Cgroups with other names are never touched.

use crate::cgroup::CgroupDriver;
use crate::container::RuntimeConfig;
use std::path::Path;
use std::time::Duration;

/// What `/proc/<pid>/stat` says about a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcStat {
    /// The state letter (`R`, `S`, `Z`, ...).
    pub state: char,
    /// The parent's PID.
    pub ppid: i32,
    /// The session ID.
    pub session: i32,
    /// Clock ticks since boot.
    pub start: u64,
}

/// Fields 3, 4, 6 and 22 of a `/proc/<pid>/stat` line; the command (field
/// 2) may hold spaces and parentheses, so fields are counted after its
/// last ')'.
pub(crate) fn parse_proc_stat(text: &str) -> Option<ProcStat> {
    let rest = &text[text.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(ProcStat {
        state: f.first()?.chars().next()?,
        ppid: f.get(1)?.parse().ok()?,
        session: f.get(3)?.parse().ok()?,
        start: f.get(19)?.parse().ok()?,
    })
}

/// `/proc/<pid>/stat` of `pid`, parsed; None when it is gone.
pub fn proc_stat(pid: i32) -> Option<ProcStat> {
    parse_proc_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// The start time of `pid` in clock ticks since boot (field 22 of stat).
pub fn start_time(pid: i32) -> Option<u64> {
    proc_stat(pid).map(|s| s.start)
}

/// Parses a run id `<pid>-<start>-<seq>`.
pub(crate) fn parse_run_id(name: &str) -> Option<(i32, u64)> {
    let mut it = name.split('-');
    let pid = it.next()?.parse().ok()?;
    let start = it.next()?.parse().ok()?;
    let _seq: u32 = it.next()?.parse().ok()?;
    it.next().is_none().then_some((pid, start))
}

/// Whether the boxwatch process behind a run id is still alive.
pub(crate) fn run_alive(pid: i32, start: u64) -> bool {
    start_time(pid) == Some(start)
}

/// Removes every stale run under the configured parent cgroup and state dir
/// (every `Runtime::new` calls this: library users and tests included).
/// Returns the run ids removed.
pub(crate) fn remove_stale_runs(driver: &dyn CgroupDriver, config: &RuntimeConfig) -> Vec<String> {
    // Dead runs' OCI containers first, whichever runtime started them,
    // before their bundles go with the state directories below.
    crate::oci::stale::remove_dead_runs(config, driver);
    let parent = &config.cgroup_parent;
    let mut removed = Vec::new();
    for run in driver.children(parent) {
        let Some((pid, start)) = parse_run_id(&run) else {
            continue;
        };
        if run_alive(pid, start) {
            continue;
        }
        let run_cg = parent.join(&run);
        for name in driver.children(&run_cg) {
            let cg = driver.open(&run_cg.join(&name));
            if let Err(e) = cg.kill_all(Duration::from_secs(5)) {
                tracing::warn!(
                    "stale container {}: {}",
                    cg.path().display(),
                    crate::error::chain(&e)
                );
            }
            if let Err(e) = cg.remove() {
                tracing::warn!(
                    "stale container {}: {}",
                    cg.path().display(),
                    crate::error::chain(&e)
                );
            }
        }
        if driver.remove_dir(&run_cg) {
            tracing::info!("removed stale run {run}");
            removed.push(run);
        }
    }
    remove_stale_state_dirs(&config.state_dir);
    removed
}

/// Removes state directories of dead runs (mount points are only ever
/// mounted in containers' own mount namespaces, so these are plain dirs).
fn remove_stale_state_dirs(state_dir: &Path) {
    let Ok(rd) = std::fs::read_dir(state_dir) else {
        return;
    };
    for entry in rd.flatten() {
        let name = entry.file_name();
        let Some((pid, start)) = name.to_str().and_then(parse_run_id) else {
            continue;
        };
        if run_alive(pid, start) {
            continue;
        }
        remove_stale_lxcfs(&entry.path());
        // Never recurse into a mount (an lxcfs that would not go away).
        let run_dir = entry.path();
        if crate::lxcfs::mount_points()
            .iter()
            .any(|m| m.starts_with(&run_dir))
        {
            tracing::warn!(
                "stale run directory {} still has a mount below it: left in place",
                run_dir.display()
            );
            continue;
        }
        let _ = std::fs::remove_dir_all(&run_dir);
    }
}

/// Stops what the lxcfs of a dead run left (see [`crate::lxcfs`]): the
/// daemon, if it outlived its run (the PID in the run's pid file, and only
/// if that process's command line names the run's mount point: a recycled
/// PID is left alone), and its mount.
fn remove_stale_lxcfs(run_dir: &Path) {
    let mount_point = run_dir.join("lxcfs");
    let pid_file = mount_point.with_extension("pid");
    let pid = std::fs::read_to_string(&pid_file)
        .ok()
        .and_then(|t| t.trim().parse::<i32>().ok());
    if let Some(pid) = pid.filter(|&p| p > 1) {
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let ours = cmdline
            .split(|&b| b == 0)
            .any(|arg| arg == mount_point.as_os_str().as_encoded_bytes());
        if ours {
            let pid = nix::unistd::Pid::from_raw(pid);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
            let deadline = std::time::Instant::now() + Duration::from_secs(3);
            while crate::lxcfs::is_mounted(&mount_point) && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
    crate::lxcfs::remove_leftovers(&mount_point, &mount_point.with_extension("log"));
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn start_time_is_field_22_even_with_odd_command_names() {
        let stat = "42 (a) b (c)) S 1 42 42 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10";
        assert_eq!(parse_proc_stat(stat).map(|s| s.start), Some(987654));
    }

    #[test]
    fn this_process_is_alive_and_a_made_up_one_is_not() {
        let me = std::process::id() as i32;
        let start = start_time(me).unwrap();
        assert!(run_alive(me, start));
        assert!(!run_alive(me, start + 1));
    }

    #[test]
    fn run_ids_parse_strictly() {
        assert_eq!(parse_run_id("123-456-0"), Some((123, 456)));
        for bad in ["bench-1", "123-456", "1-2-3-4", "a-b-c", ""] {
            assert_eq!(parse_run_id(bad), None, "{bad}");
        }
    }

    proptest! {
        #[test]
        fn stat_parser_never_panics(s in "\\PC{0,200}") {
            let _ = parse_proc_stat(&s);
        }

        #[test]
        fn stat_parser_finds_start_time(comm in "[ -~]{0,16}", start in any::<u64>()) {
            let stat = format!("7 ({comm}) R 1 7 7 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 {start} 0 0");
            prop_assert_eq!(parse_proc_stat(&stat).map(|s| s.start), Some(start));
        }
    }
}
