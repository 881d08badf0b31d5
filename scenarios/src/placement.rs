//! Placement: the container's processes are in the cgroup whose limits and
//! usage the judge reads, in every hierarchy it reads (v1: each
//! controller's; v2: the one tree). Read from `/proc/<pid>/cgroup` of the
//! container's running processes while it runs, with the other samples.

use crate::expect::Observed;
use probes::host::{CgroupLayout, CgroupPath, CgroupVersion, Hierarchy};
use std::collections::BTreeSet;

/// The metric of the placement check.
pub const METRIC: &str = crate::metrics::Metric::Placement.as_str();
/// Its value when every process seen was in its cgroup.
pub const PLACED: &str = "every process in its cgroup";
/// Processes examined per sample at most (a fork bomb has 64).
const MAX_PROCESSES: usize = 512;
/// Misplacements kept for the message.
const MAX_REPORTED: usize = 8;

/// What the placement readings found over a run.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PlacementSeen {
    /// (process, hierarchy) pairs read while the process ran.
    pub readings: usize,
    /// Each misplacement, in words with the paths, first ones first.
    pub misplaced: BTreeSet<String>,
    /// Reads that failed for a process that was still running.
    pub errors: BTreeSet<String>,
}

impl PlacementSeen {
    /// The `placement` observation.
    pub fn observed(&self) -> Observed {
        if !self.misplaced.is_empty() {
            let mut list: Vec<&str> = self.misplaced.iter().map(String::as_str).collect();
            let more = list.len().saturating_sub(MAX_REPORTED);
            list.truncate(MAX_REPORTED);
            let mut text = list.join("; ");
            if more > 0 {
                text.push_str(&format!("; and {more} more"));
            }
            return Observed::from(text);
        }
        if !self.errors.is_empty() {
            let list: Vec<&str> = self.errors.iter().map(String::as_str).take(4).collect();
            return Observed::Missing(format!(
                "the container's placement could not be read: {}",
                list.join("; ")
            ));
        }
        if self.readings == 0 {
            return Observed::Missing(
                "no process of the container was seen running: its placement in its cgroup was not observed".into(),
            );
        }
        Observed::from(PLACED)
    }
}

/// The hierarchies the judge reads a container's figures from, each once:
/// cpu, cpuacct, memory and pids (every scenario reports their figures),
/// and cpuset when the container has a cpuset limit (a runtime creates no
/// cpuset cgroup otherwise, and none of its figures is judged then).
pub fn judged_hierarchies(layout: &CgroupLayout, cpuset: bool) -> Vec<&Hierarchy> {
    let mut out: Vec<&Hierarchy> = Vec::new();
    for c in crate::facts::JUDGED_CONTROLLERS
        .into_iter()
        .filter(|c| cpuset || *c != "cpuset")
    {
        if let Some(h) = layout.hierarchy_for(c) {
            if !out.iter().any(|o| o.mount_point == h.mount_point) {
                out.push(h);
            }
        }
    }
    out
}

/// Whether `path` is `expected` or below it.
fn within(path: &str, expected: &str) -> bool {
    let expected = expected.trim_end_matches('/');
    path == expected
        || expected.is_empty()
        || path
            .strip_prefix(expected)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// Judges the `/proc/<pid>/cgroup` text of one running process against the
/// `expected` cgroup in each of `hierarchies`; records into `seen`.
pub fn judge_proc_cgroup(
    seen: &mut PlacementSeen,
    pid: i32,
    text: &str,
    hierarchies: &[&Hierarchy],
    expected: &CgroupPath,
) {
    let entries = match probes::host::parse::parse_proc_cgroup(text) {
        Ok(e) => e,
        Err(e) => {
            seen.errors.insert(format!("/proc/{pid}/cgroup: {e}"));
            return;
        }
    };
    for h in hierarchies {
        seen.readings += 1;
        let entry = entries.iter().find(|e| match h.version {
            CgroupVersion::V2 => e.hierarchy_id == 0,
            CgroupVersion::V1 => e.hierarchy_id != 0 && e.controllers == h.controllers,
        });
        let mount = h.mount_point.display();
        let Some(entry) = entry else {
            seen.misplaced.insert(format!(
                "pid {pid} has no line for the hierarchy at {mount} in /proc/{pid}/cgroup"
            ));
            continue;
        };
        match h.mount_relative(&entry.path) {
            Some(p) if p.as_str() == "/" => {
                seen.misplaced.insert(format!(
                    "pid {pid} is in the root cgroup of {mount}, not in {expected}"
                ));
            }
            Some(p) if within(p.as_str(), expected.as_str()) => {}
            Some(p) => {
                seen.misplaced
                    .insert(format!("pid {pid} is in {p} of {mount}, not in {expected}"));
            }
            None => {
                seen.misplaced.insert(format!(
                    "pid {pid} is in {} (outside the mount {mount}), not in {expected}",
                    entry.path
                ));
            }
        }
    }
}

/// The running processes of the container: its entry `pid` and its
/// descendants (from `/proc/<pid>/task/*/children`), at most `MAX_PROCESSES`.
pub fn container_processes(pid: i32) -> Vec<i32> {
    let mut out = vec![pid];
    let mut i = 0;
    while i < out.len() && out.len() < MAX_PROCESSES {
        let p = out[i];
        i += 1;
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{p}/task")) else {
            continue;
        };
        for t in tasks.flatten() {
            let Ok(children) = std::fs::read_to_string(t.path().join("children")) else {
                continue;
            };
            out.extend(
                children
                    .split_whitespace()
                    .filter_map(|c| c.parse::<i32>().ok())
                    .filter(|c| !out.contains(c))
                    .collect::<Vec<_>>(),
            );
        }
    }
    out.truncate(MAX_PROCESSES);
    out
}

/// The kernel's PF_EXITING task flag: the process is exiting, and may
/// already show the root cgroup (v1 moves a task there in cgroup_exit,
/// before it becomes a zombie).
const PF_EXITING: u64 = 0x4;

/// Whether a `/proc/<pid>/stat` line is of a running process: not a zombie,
/// not dead, not exiting (field 9, flags, without PF_EXITING).
pub fn stat_running(stat: &str) -> bool {
    match probes::host::parse::parse_pid_stat(stat) {
        Ok(s) => s.state != 'Z' && s.state != 'X' && s.flags.is_some_and(|fl| fl & PF_EXITING == 0),
        Err(_) => false,
    }
}

/// Whether `pid` is running (not gone, not a zombie, not exiting).
fn running(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|t| stat_running(&t))
}

/// Reads the placement of the container whose entry is `pid` now. A
/// process that exits meanwhile (a zombie or gone, before or after the
/// read) is not counted: an exited process shows the root cgroup.
pub fn sample(
    seen: &mut PlacementSeen,
    layout: &CgroupLayout,
    cpuset: bool,
    pid: i32,
    expected: &CgroupPath,
) {
    let hierarchies = judged_hierarchies(layout, cpuset);
    let procs = container_processes(pid);
    tracing::debug!(pid, ?procs, "placement sample");
    for p in procs {
        // A process seen outside its cgroup is read again: a child between
        // fork and its cgroup attachment, or a process starting to exit,
        // shows the root cgroup for a moment; a misplaced one stays.
        for wait_ms in [0, 2, 20] {
            std::thread::sleep(std::time::Duration::from_millis(wait_ms));
            let mut one = PlacementSeen::default();
            if !read_one(&mut one, p, &hierarchies, expected) {
                tracing::debug!(p, "placement: not running");
                break;
            }
            if one.misplaced.is_empty() || wait_ms == 20 {
                seen.readings += one.readings;
                seen.misplaced.extend(one.misplaced);
                seen.errors.extend(one.errors);
                break;
            }
        }
    }
}

/// Reads the placement of one process into `seen`; false when it is not
/// running (before or after the read), and nothing was recorded.
fn read_one(
    seen: &mut PlacementSeen,
    p: i32,
    hierarchies: &[&Hierarchy],
    expected: &CgroupPath,
) -> bool {
    if !running(p) {
        return false;
    }
    let text = std::fs::read_to_string(format!("/proc/{p}/cgroup"));
    if !running(p) {
        return false;
    }
    match text {
        Ok(t) => judge_proc_cgroup(seen, p, &t, hierarchies, expected),
        Err(e) => {
            seen.errors.insert(format!("/proc/{p}/cgroup: {e}"));
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use probes::host::parse::parse_mountinfo;

    fn v1_layout() -> CgroupLayout {
        let mi = "30 25 0:26 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids\n\
                  31 25 0:27 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n\
                  33 25 0:29 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n\
                  34 25 0:30 / /sys/fs/cgroup/cpuacct rw - cgroup cgroup rw,cpuacct\n\
                  35 25 0:31 / /sys/fs/cgroup/cpuset rw - cgroup cgroup rw,cpuset\n\
                  32 25 0:28 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n";
        CgroupLayout::from_mounts(&parse_mountinfo(mi).unwrap(), std::path::Path::new("/")).unwrap()
    }

    fn v2_layout() -> CgroupLayout {
        let mi = "30 25 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n";
        CgroupLayout::from_mounts(&parse_mountinfo(mi).unwrap(), std::path::Path::new("/")).unwrap()
    }

    fn judge(layout: &CgroupLayout, text: &str) -> PlacementSeen {
        let mut seen = PlacementSeen::default();
        let expected = CgroupPath::new("/boxwatch/run/c").unwrap();
        judge_proc_cgroup(
            &mut seen,
            42,
            text,
            &judged_hierarchies(layout, true),
            &expected,
        );
        seen
    }

    #[test]
    fn a_container_in_its_cgroup_everywhere_is_placed() {
        let s = judge(
            &v1_layout(),
            "5:pids:/boxwatch/run/c\n4:memory:/boxwatch/run/c/sub\n3:cpu:/boxwatch/run/c\n\
             2:cpuacct:/boxwatch/run/c\n1:cpuset:/boxwatch/run/c\n0::/user.slice\n",
        );
        assert_eq!(s.observed(), Observed::from(PLACED));
        assert_eq!(s.readings, 5);
        let s = judge(&v2_layout(), "0::/boxwatch/run/c\n");
        assert_eq!(s.observed(), Observed::from(PLACED));
    }

    #[test]
    fn a_process_never_placed_in_its_pids_cgroup_is_not_placed() {
        let s = judge(
            &v1_layout(),
            "5:pids:/\n4:memory:/boxwatch/run/c\n3:cpu:/boxwatch/run/c\n\
             2:cpuacct:/boxwatch/run/c\n1:cpuset:/boxwatch/run/c\n0::/user.slice\n",
        );
        match s.observed() {
            Observed::Value(crate::expect::Value::Text(t)) => {
                assert!(t.contains("root cgroup of /sys/fs/cgroup/pids"), "{t}");
                assert!(t.contains("/boxwatch/run/c"), "{t}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_process_outside_its_cgroup_is_not_placed_on_v2() {
        let s = judge(&v2_layout(), "0::/boxwatch/run/cc\n");
        match s.observed() {
            Observed::Value(crate::expect::Value::Text(t)) => {
                assert!(t.contains("/boxwatch/run/cc of /sys/fs/cgroup"), "{t}")
            }
            other => panic!("{other:?}"),
        }
        let s = judge(&v2_layout(), "0::/\n");
        assert_ne!(s.observed(), Observed::from(PLACED));
    }

    #[test]
    fn an_exiting_process_is_not_judged() {
        let line = |state: char, flags: u64| {
            format!("7 (a) b) {state} 1 7 7 0 -1 {flags} 0 0 0 0 0 0 0 0 20 0 1 0 99\n")
        };
        assert!(stat_running(&line('R', 0x400000)));
        assert!(stat_running(&line('S', 0)));
        assert!(!stat_running(&line('R', 0x400004)));
        assert!(!stat_running(&line('Z', 0)));
        assert!(!stat_running("garbage"));
        let me = std::fs::read_to_string("/proc/self/stat").unwrap();
        assert!(stat_running(&me));
    }

    proptest::proptest! {
        #[test]
        fn only_a_live_process_not_exiting_is_running_whatever_its_command(
            comm in "[ -~]{0,16}",
            state in proptest::sample::select(vec!['R', 'S', 'D', 'Z', 'T', 'X']),
            flags in proptest::prelude::any::<u32>(),
        ) {
            let line = format!("7 ({comm}) {state} 1 7 7 0 -1 {flags} 0 0 0 0 0 0 0 0 20 0 1 0 99\n");
            let live = state != 'Z' && state != 'X' && u64::from(flags) & PF_EXITING == 0;
            proptest::prop_assert_eq!(stat_running(&line), live);
        }
    }

    #[test]
    fn nothing_seen_is_an_error_not_a_pass() {
        assert!(matches!(
            PlacementSeen::default().observed(),
            Observed::Missing(_)
        ));
    }

    #[test]
    fn this_process_is_found_with_its_children() {
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        let me = std::process::id() as i32;
        let procs = container_processes(me);
        assert!(procs.contains(&(child.id() as i32)), "{procs:?}");
        child.kill().unwrap();
        child.wait().unwrap();
    }
}
