//! What is particular to a sandboxed OCI runtime (gVisor's runsc): the
//! host sees a sandbox process (the sentry, gVisor's kernel) and a gofer,
//! not the workload; the sentry can crash; helpers the runtime starts are
//! re-parented to boxwatch and must be reaped.
//!
//! - `runsc create` gets `--panic-log <bundle>/panic.log`: the Go runtime
//!   writes a sentry panic there. A panic after the container ran is an
//!   error with that line ([`crash_line`]), never a workload exit.
//! - The helpers: processes that are children of boxwatch (re-parented by
//!   PR_SET_CHILD_SUBREAPER) and name the container's id or bundle in
//!   their arguments, other than the container's first process (runsc's
//!   gofer); and the sessions that the first process's children lead
//!   (gVisor's ptrace stubs, which come to boxwatch when the sentry dies,
//!   with new stubs of the same session forked meanwhile). They are noted
//!   while alive, right after `start` ([`adopted_helpers`]), and reaped
//!   when the container is removed ([`reap_helpers`]); a zombie has no
//!   arguments left to recognise it by.

use crate::cleanup::proc_stat;
use nix::sys::signal::Signal;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The file in a runsc container's bundle where a sentry panic goes.
pub const PANIC_LOG: &str = "panic.log";

/// The version line reports show: `gVisor (runsc) 0.0~20221219.0` for
/// runsc's `runsc version 0.0~20221219.0`.
pub fn gvisor_version(first_line: &str) -> String {
    let v = first_line
        .strip_prefix("runsc version ")
        .unwrap_or(first_line);
    format!("gVisor (runsc) {v}")
}

/// The line of a panic log that says what went wrong: the first `panic:`
/// or `fatal error:` line, else the first non-empty one. None for an
/// empty log.
pub fn crash_line(log: &str) -> Option<String> {
    let lines: Vec<&str> = log
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    lines
        .iter()
        .find(|l| l.starts_with("panic:") || l.starts_with("fatal error:"))
        .or(lines.first())
        .map(|l| l.chars().take(300).collect())
}

/// The crash line in `<bundle>/panic.log`, if the sentry panicked.
pub fn crashed(bundle: &Path) -> Option<String> {
    crash_line(&std::fs::read_to_string(bundle.join(PANIC_LOG)).ok()?)
}

/// What a container's runtime left to this process: see the module.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Helpers {
    /// Children of this process: (pid, start time).
    pub procs: Vec<(i32, u64)>,
    /// Sessions led by children of the container's first process.
    pub sessions: Vec<i32>,
}

/// The children of this process, other than `leader`, whose arguments
/// name `id` or contain `bundle`; and the sessions led by `leader`'s
/// children (other than this process's own session).
pub fn adopted_helpers(leader: i32, id: &str, bundle: &Path) -> Helpers {
    let me = std::process::id() as i32;
    let my_session = nix::unistd::getsid(None).map(|s| s.as_raw()).unwrap_or(-1);
    let bundle = bundle.as_os_str().as_encoded_bytes();
    let mut h = Helpers::default();
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return h;
    };
    for p in rd
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&p| p != leader)
    {
        let Some(s) = proc_stat(p).filter(|s| s.state != 'Z') else {
            continue;
        };
        if s.ppid == leader && s.session == p && p != my_session {
            h.sessions.push(p);
        }
        if s.ppid != me {
            continue;
        }
        let Ok(cmd) = std::fs::read(format!("/proc/{p}/cmdline")) else {
            continue;
        };
        let names = cmd.split(|b| *b == 0).any(|a| {
            a == id.as_bytes()
                || (!bundle.is_empty() && a.windows(bundle.len()).any(|w| w == bundle))
        });
        if names {
            h.procs.push((p, s.start));
        }
    }
    h
}

/// The first processes of the OCI containers this process runs: never
/// taken for a sandbox's stub, whatever their state.
static LEADERS: Mutex<BTreeSet<i32>> = Mutex::new(BTreeSet::new());

/// Registers (`live`) or forgets a container's first process.
pub fn leader(pid: i32, live: bool) {
    let mut l = LEADERS.lock().unwrap_or_else(|e| e.into_inner());
    if live {
        l.insert(pid);
    } else {
        l.remove(&pid);
    }
}

/// [`adopted_helpers`] of a runsc sandbox `leader`, waiting up to
/// `timeout` for its first stub: the workload cannot run before it exists,
/// so it is there while the sandbox lives. When the sandbox is already gone
/// (a workload that ended at once), its stubs are this process's children
/// already: the session leaders among them that started after the sandbox
/// and are no container's first process.
pub fn sandbox_helpers(leader_pid: i32, id: &str, bundle: &Path, timeout: Duration) -> Helpers {
    let deadline = Instant::now() + timeout;
    let me = std::process::id() as i32;
    let my_session = nix::unistd::getsid(None).map(|s| s.as_raw()).unwrap_or(-1);
    let leader_start = proc_stat(leader_pid).map(|s| s.start);
    loop {
        let mut h = adopted_helpers(leader_pid, id, bundle);
        if !h.sessions.is_empty() {
            return h;
        }
        let sandbox_gone = proc_stat(leader_pid).is_none_or(|s| s.state == 'Z');
        if sandbox_gone {
            let leaders = LEADERS.lock().unwrap_or_else(|e| e.into_inner()).clone();
            if let (Some(start), Ok(rd)) = (leader_start, std::fs::read_dir("/proc")) {
                h.sessions = rd
                    .flatten()
                    .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
                    .filter(|p| *p != leader_pid && *p != my_session && !leaders.contains(p))
                    .filter(|&p| {
                        proc_stat(p)
                            .is_some_and(|s| s.ppid == me && s.session == p && s.start >= start)
                    })
                    .collect();
            }
            return h;
        }
        if Instant::now() >= deadline {
            return h;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// This process's children in one of `sessions`: (pid, state).
fn in_sessions(sessions: &[i32]) -> Vec<(i32, char)> {
    let me = std::process::id() as i32;
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    rd.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|p| {
            let s = proc_stat(p)?;
            (s.ppid == me && sessions.contains(&s.session)).then_some((p, s.state))
        })
        .collect()
}

/// Reaps `helpers` (noted with [`adopted_helpers`]) that are still this
/// process's children, and this process's children in their sessions:
/// waits up to `grace` for them to exit, then kills what is left of them
/// (the container is gone: they serve nothing) and reaps it. Returns how
/// many were reaped.
pub fn reap_helpers(helpers: &Helpers, grace: Duration) -> usize {
    let mut reaped = reap_procs(&helpers.procs, grace);
    if helpers.sessions.is_empty() {
        return reaped;
    }
    let deadline = Instant::now() + grace;
    loop {
        let left = in_sessions(&helpers.sessions);
        if left.is_empty() {
            return reaped;
        }
        let late = Instant::now() >= deadline;
        for (p, state) in left {
            if state != 'Z' && !late {
                continue;
            }
            if state != 'Z' {
                let _ = nix::sys::signal::kill(Pid::from_raw(p), Signal::SIGKILL);
            }
            let flags = (state == 'Z').then_some(WaitPidFlag::WNOHANG);
            if matches!(waitpid(Pid::from_raw(p), flags), Ok(s) if s != WaitStatus::StillAlive) {
                reaped += 1;
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn reap_procs(helpers: &[(i32, u64)], grace: Duration) -> usize {
    let me = std::process::id() as i32;
    let ours =
        |&(p, start): &(i32, u64)| proc_stat(p).is_some_and(|s| s.ppid == me && s.start == start);
    let deadline = Instant::now() + grace;
    let mut reaped = 0;
    let mut left: Vec<(i32, u64)> = helpers.iter().copied().filter(ours).collect();
    while !left.is_empty() {
        let late = Instant::now() >= deadline;
        left.retain(|&(p, _)| {
            if late {
                let _ = nix::sys::signal::kill(Pid::from_raw(p), Signal::SIGKILL);
            }
            let flags = (!late).then_some(WaitPidFlag::WNOHANG);
            match waitpid(Pid::from_raw(p), flags) {
                Ok(WaitStatus::StillAlive) => true,
                Ok(_) => {
                    reaped += 1;
                    false
                }
                Err(_) => false,
            }
        });
        if !left.is_empty() {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    reaped
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_version_names_gvisor() {
        assert_eq!(
            gvisor_version("runsc version 0.0~20221219.0"),
            "gVisor (runsc) 0.0~20221219.0"
        );
        assert_eq!(
            gvisor_version("release-2023"),
            "gVisor (runsc) release-2023"
        );
    }

    #[test]
    fn the_crash_line_is_the_panic() {
        let log = "\ngoroutine 1 [running]:\npanic: creating stub process: resource temporarily unavailable\n\nmore\n";
        assert_eq!(
            crash_line(log).as_deref(),
            Some("panic: creating stub process: resource temporarily unavailable")
        );
        assert_eq!(
            crash_line("something odd\n").as_deref(),
            Some("something odd")
        );
        assert_eq!(crash_line("\n \n"), None);
    }

    /// A child of ours naming the id is a helper; once it exits it is
    /// reaped, and a helper that does not exit is killed after the grace.
    #[test]
    fn helpers_are_found_by_their_arguments_and_reaped() {
        let id = format!("bw-{}-9-0-helper", std::process::id());
        let mut quick = std::process::Command::new("/bin/sh")
            .args(["-c", "read x", &id])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let stuck = std::process::Command::new("/bin/sh")
            .args(["-c", "sleep 30", "/no/bundle/x"])
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut found = adopted_helpers(-1, &id, Path::new("/no/bundle"));
        while found.procs.len() < 2 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
            found = adopted_helpers(-1, &id, Path::new("/no/bundle"));
        }
        assert!(found.sessions.is_empty());
        let mut pids: Vec<i32> = found.procs.iter().map(|f| f.0).collect();
        pids.sort();
        let mut want = vec![quick.id() as i32, stuck.id() as i32];
        want.sort();
        assert_eq!(pids, want);
        drop(quick.stdin.take()); // `read` ends: it exits by itself
        assert_eq!(reap_helpers(&found, Duration::from_millis(500)), 2);
        for p in want {
            assert!(proc_stat(p).is_none(), "{p} is still there");
        }
        drop((quick, stuck)); // reaped already: never waited for
    }

    proptest! {
        #[test]
        fn crash_line_never_panics(s in "\\PC{0,300}") {
            let _ = crash_line(&s);
        }
    }
}
