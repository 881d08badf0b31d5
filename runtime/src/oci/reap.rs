//! boxwatch as the child subreaper of its OCI containers, and the reaping
//! that comes with it.
//!
//! `<rt> create` exits once the container's first process waits for
//! `start`; that process must then be re-parented to boxwatch, so boxwatch
//! can wait for it like a builtin container. PR_SET_CHILD_SUBREAPER does
//! that, but it is process-wide: every orphan below this process comes
//! here, and one that nobody waits for stays a zombie for as long as the
//! process lives (a test binary, a library user). So:
//!
//! - the attribute is set only while a [`Subreaper`] exists (one per OCI
//!   backend, shared with its containers), and put back as it was when the
//!   last one is dropped;
//! - a container without its own pid namespace hands its orphans to us
//!   too (with one, they go to its PID 1 and die with it): after it is
//!   killed, `reap_container_orphans` reaps them. They are found by
//!   session: runc and crun make the container's first process a session
//!   leader, and a zombie keeps its session id (not its cgroup: a zombie's
//!   `/proc/<pid>/cgroup` reads `/`). The first process stays unreaped
//!   meanwhile, so its PID, and so the session id, cannot be reused.
//!
//! Nothing else is reaped: a child this process forked itself belongs to
//! whoever waits for it.

use crate::cleanup::{proc_stat, ProcStat};
use crate::error::{Error, Result};
use nix::sys::wait::{waitpid, WaitPidFlag};
use nix::unistd::Pid;
use std::sync::Mutex;
use std::time::{Duration, Instant};

struct State {
    users: usize,
    /// Whether the process was a subreaper before the first user.
    was_set: bool,
}

static SUBREAPER: Mutex<State> = Mutex::new(State {
    users: 0,
    was_set: false,
});

/// While one exists, this process is a child subreaper.
#[derive(Debug)]
pub struct Subreaper(());

impl Subreaper {
    pub fn acquire() -> Result<Subreaper> {
        let io = |e: nix::Error| Error::Io {
            step: "becoming child subreaper (prctl PR_SET_CHILD_SUBREAPER)",
            source: e.into(),
        };
        let mut s = SUBREAPER.lock().unwrap_or_else(|e| e.into_inner());
        if s.users == 0 {
            s.was_set = nix::sys::prctl::get_child_subreaper().map_err(io)?;
            if !s.was_set {
                nix::sys::prctl::set_child_subreaper(true).map_err(io)?;
            }
        }
        s.users += 1;
        Ok(Subreaper(()))
    }
}

impl Drop for Subreaper {
    fn drop(&mut self) {
        let mut s = SUBREAPER.lock().unwrap_or_else(|e| e.into_inner());
        s.users -= 1;
        if s.users == 0 && !s.was_set {
            if let Err(e) = nix::sys::prctl::set_child_subreaper(false) {
                tracing::warn!("unsetting PR_SET_CHILD_SUBREAPER: {e}");
            }
        }
    }
}

/// Every process on the host, with its stat.
fn processes() -> Vec<(i32, ProcStat)> {
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    rd.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|pid| Some((pid, proc_stat(pid)?)))
        .collect()
}

/// The processes `pids` that are children of this process, with their
/// start times: taken while they are alive (from a cgroup's process list,
/// before the cgroup is killed), for [`reap_container_orphans`].
pub(crate) fn our_children(pids: &[i32]) -> Vec<(i32, u64)> {
    let me = std::process::id() as i32;
    pids.iter()
        .filter_map(|&p| {
            let s = proc_stat(p)?;
            (s.ppid == me).then_some((p, s.start))
        })
        .collect()
}

/// Reaps the processes of a container that were re-parented to this
/// process: its children in the session of the container's first process
/// `leader` (not `leader` itself), and those of `noted` (pid, start time)
/// that are still its children. Waits up to `timeout` for any of them that
/// is not dead yet (call it after the container was killed). Returns how
/// many were reaped.
pub(crate) fn reap_container_orphans(
    leader: i32,
    noted: &[(i32, u64)],
    timeout: Duration,
) -> usize {
    let me = std::process::id() as i32;
    let deadline = Instant::now() + timeout;
    let mut reaped = 0;
    loop {
        let mut targets: Vec<(i32, ProcStat)> = processes()
            .into_iter()
            .filter(|(p, s)| s.ppid == me && s.session == leader && *p != leader)
            .collect();
        for &(p, start) in noted {
            if p == leader || targets.iter().any(|(t, _)| *t == p) {
                continue;
            }
            if let Some(s) = proc_stat(p).filter(|s| s.ppid == me && s.start == start) {
                targets.push((p, s));
            }
        }
        let mut alive = 0;
        for (p, s) in targets {
            if s.state != 'Z' {
                alive += 1;
                continue;
            }
            if let Ok(st) = waitpid(Pid::from_raw(p), Some(WaitPidFlag::WNOHANG)) {
                if st != nix::sys::wait::WaitStatus::StillAlive {
                    reaped += 1;
                }
            }
        }
        if alive == 0 || Instant::now() >= deadline {
            if alive > 0 {
                tracing::warn!(
                    "{alive} re-parented process(es) of the container led by {leader} did not exit"
                );
            }
            return reaped;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cleanup::parse_proc_stat;
    use proptest::prelude::*;

    #[test]
    fn stat_fields_are_counted_after_the_command() {
        let stat = "42 (a) b (c)) Z 7 42 40 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10";
        assert_eq!(
            parse_proc_stat(stat),
            Some(ProcStat {
                state: 'Z',
                ppid: 7,
                session: 40,
                start: 987654
            })
        );
        assert_eq!(parse_proc_stat("garbage"), None);
    }

    #[test]
    fn this_process_reads_as_itself() {
        let me = proc_stat(std::process::id() as i32).unwrap();
        assert_eq!(me.ppid, nix::unistd::getppid().as_raw());
        assert_eq!(me.session, nix::unistd::getsid(None).unwrap().as_raw());
        assert_ne!(me.state, 'Z');
    }

    /// A forked child of ours in our own session is not a container's
    /// orphan: it is never reaped behind its owner's back.
    #[test]
    fn children_outside_the_session_are_left_alone() {
        let mut child = std::process::Command::new("/bin/true").spawn().unwrap();
        let pid = child.id() as i32;
        // Wait until it is a zombie, without reaping it.
        let deadline = Instant::now() + Duration::from_secs(10);
        while proc_stat(pid).map(|s| s.state) != Some('Z') {
            assert!(Instant::now() < deadline, "{pid} never exited");
            std::thread::sleep(Duration::from_millis(5));
        }
        let other_session = std::process::id() as i32 + 1_000_000;
        assert_eq!(
            reap_container_orphans(other_session, &[], Duration::ZERO),
            0
        );
        // Noted with another start time: not the same process.
        let start = proc_stat(pid).unwrap().start;
        assert_eq!(
            reap_container_orphans(other_session, &[(pid, start + 1)], Duration::ZERO),
            0
        );
        assert!(child.wait().unwrap().success(), "still ours to wait for");
    }

    /// A noted process (pid and start time taken while it was alive) is
    /// reaped once it is a zombie.
    #[test]
    fn noted_processes_are_reaped() {
        let child = std::process::Command::new("/bin/true").spawn().unwrap();
        let pid = child.id() as i32;
        let start = proc_stat(pid).map(|s| s.start);
        let deadline = Instant::now() + Duration::from_secs(10);
        while proc_stat(pid).map(|s| s.state) != Some('Z') {
            assert!(Instant::now() < deadline, "{pid} never exited");
            std::thread::sleep(Duration::from_millis(5));
        }
        let start = start.unwrap_or_else(|| proc_stat(pid).unwrap().start);
        let other_session = std::process::id() as i32 + 1_000_000;
        assert_eq!(
            reap_container_orphans(other_session, &[(pid, start)], Duration::from_secs(1)),
            1
        );
        assert!(
            proc_stat(pid).is_none_or(|s| s.start != start),
            "{pid} is still there"
        );
        drop(child); // already reaped: never waited for
    }

    proptest! {
        #[test]
        fn stat_parser_never_panics(s in "\\PC{0,200}") {
            let _ = parse_proc_stat(&s);
        }
    }
}
