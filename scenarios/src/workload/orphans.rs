//! Makes an orphan: forks a child that forks a grandchild and exits at once.
//! The grandchild is re-parented to the container's PID 1, which must reap
//! it when it exits; a zombie left behind means PID 1 does not reap.

use super::Emitter;
use crate::error::{Error, Result};
use crate::sys::{exit_now, fork, Forked};
use serde_json::json;
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

/// The state letter of /proc/<pid>/stat (R, S, Z...); `Ok(None)` only when
/// the process is gone (ENOENT, ESRCH). A stat that cannot be read or
/// parsed otherwise is an error: it never counts as reaped.
fn state_of(pid: i32) -> std::result::Result<Option<char>, String> {
    let path = format!("/proc/{pid}/stat");
    let stat = match std::fs::read_to_string(&path) {
        Ok(s) => s,
        Err(e)
            if e.kind() == std::io::ErrorKind::NotFound
                || e.raw_os_error() == Some(nix::errno::Errno::ESRCH as i32) =>
        {
            return Ok(None)
        }
        Err(e) => return Err(format!("{path}: {e}")),
    };
    stat_state(&stat)
        .map(Some)
        .ok_or_else(|| format!("{path}: no state letter in {stat:?}"))
}

/// The state letter of a /proc/<pid>/stat line (probes' parser).
fn stat_state(stat: &str) -> Option<char> {
    probes::host::parse::parse_pid_stat(stat)
        .ok()
        .map(|s| s.state)
}

/// Zombies in /proc; an error when /proc cannot be listed or is empty (it
/// always shows this process).
fn zombies() -> std::result::Result<u64, String> {
    let pids: Vec<i32> = std::fs::read_dir("/proc")
        .map_err(|e| format!("/proc: {e}"))?
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .collect();
    if pids.is_empty() {
        return Err("/proc lists no process".into());
    }
    let mut n = 0;
    for pid in pids {
        if state_of(pid)? == Some('Z') {
            n += 1;
        }
    }
    Ok(n)
}

pub fn orphan_maker(out: &Emitter, linger: bool) -> Result<()> {
    out.emit("start", json!({ "pid": std::process::id() }));
    let grandchild = make_orphan(linger)?;
    // The grandchild exits after 100 ms; PID 1 should reap it right away.
    let t0 = Instant::now();
    let reaped = wait_until_reaped(grandchild, t0);
    let zombies = zombies();
    // An unreadable answer goes out as null (the judge's `error`), with why
    // on stderr, never as "reaped" or "no zombie".
    for e in [reaped.as_ref().err(), zombies.as_ref().err()]
        .into_iter()
        .flatten()
    {
        eprintln!("orphan-maker: {e}");
    }
    out.emit(
        "result",
        json!({
            "grandchild_reaped": reaped.ok(),
            "reap_ms": t0.elapsed().as_secs_f64() * 1000.0,
            "zombies": zombies.ok(),
            "lingering": linger,
        }),
    );
    Ok(())
}

/// Forks a child that forks a grandchild (and, with `linger`, a process
/// that sleeps a minute) and exits at once; returns the grandchild's PID,
/// which the child sent over a pipe.
fn make_orphan(linger: bool) -> Result<i32> {
    let sys = |step| move |source| Error::Sys { step, source };
    let (read_end, write_end) = nix::unistd::pipe().map_err(sys("pipe"))?;
    let child = match fork().map_err(sys("fork"))? {
        Forked::Child => {
            drop(read_end);
            orphan_parent(write_end, linger)
        }
        Forked::Parent(pid) => pid,
    };
    drop(write_end);
    let mut msg = String::new();
    let _ = std::fs::File::from(read_end).read_to_string(&mut msg);
    let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(child), None);
    msg.split_whitespace()
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| Error::Workload {
            workload: "orphan-maker",
            message: "the child could not fork a grandchild".into(),
        })
}

/// The forked child: forks the grandchild (and the lingering process),
/// writes their PIDs to `write_end` and exits, orphaning them.
fn orphan_parent(write_end: OwnedFd, linger: bool) -> ! {
    let grandchild = match fork() {
        Ok(Forked::Child) => {
            // Hold no copy of the pipe: the parent reads it to EOF.
            let _ = nix::unistd::close(write_end.as_raw_fd());
            std::thread::sleep(Duration::from_millis(100));
            exit_now(0)
        }
        Ok(Forked::Parent(pid)) => pid,
        Err(_) => exit_now(1),
    };
    let mut msg = format!("{grandchild}");
    if linger {
        // A process that would outlive the container if it were not
        // killed with it: the harness checks it is gone afterwards.
        match fork() {
            Ok(Forked::Child) => {
                let _ = nix::unistd::close(write_end.as_raw_fd());
                std::thread::sleep(Duration::from_secs(60));
                exit_now(0)
            }
            Ok(Forked::Parent(pid)) => msg.push_str(&format!(" {pid}")),
            Err(_) => {}
        }
    }
    let _ = nix::unistd::write(&write_end, msg.as_bytes());
    exit_now(0)
}

/// Whether `pid` is gone (reaped) within 3 s of `t0`; an error when its
/// state cannot be read.
fn wait_until_reaped(pid: i32, t0: Instant) -> std::result::Result<bool, String> {
    while t0.elapsed() < Duration::from_secs(3) {
        match state_of(pid) {
            Ok(None) => return Ok(true),
            Ok(Some(_)) => {}
            Err(e) => return Err(e),
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gone_process_is_reaped_and_an_unparsable_stat_is_an_error() {
        assert_eq!(state_of(i32::MAX), Ok(None));
        assert!(matches!(state_of(std::process::id() as i32), Ok(Some(_))));
        assert_eq!(stat_state("1 (a) b) S 0"), Some('S'));
        assert_eq!(stat_state("garbage"), None);
        assert!(zombies().is_ok());
    }
}
