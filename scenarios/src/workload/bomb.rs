//! A fork bomb bounded by time: every process forks as fast as it can until
//! the deadline, then exits. Only run behind the guard check, in a container
//! with a pids limit (the catalog refuses a large one).

use super::Emitter;
use crate::error::Result;
use crate::sys::{exit_now, fork, Forked};
use nix::errno::Errno;
use nix::sys::wait::{waitpid, WaitPidFlag};
use serde_json::json;
use std::time::{Duration, Instant};

fn count_procs() -> u64 {
    std::fs::read_dir("/proc")
        .map(|rd| {
            rd.flatten()
                .filter(|e| {
                    e.file_name()
                        .to_str()
                        .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
                })
                .count() as u64
        })
        .unwrap_or(0)
}

/// The life of every forked process: fork until the deadline, then _exit.
fn child(deadline: Instant) -> ! {
    loop {
        if Instant::now() >= deadline {
            exit_now(0);
        }
        match fork() {
            Ok(Forked::Child) => continue,
            Ok(Forked::Parent(_)) => {}
            Err(_) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
}

pub fn fork_bomb(out: &Emitter, duration: Duration) -> Result<()> {
    out.emit("start", json!({}));
    let deadline = Instant::now() + duration;
    let (mut forks, mut eagain, mut other_errors) = (0u64, 0u64, 0u64);
    let mut max_procs = count_procs();
    let mut next_count = Instant::now();
    while Instant::now() < deadline {
        match fork() {
            Ok(Forked::Child) => child(deadline),
            Ok(Forked::Parent(_)) => forks += 1,
            Err(Errno::EAGAIN) => {
                eagain += 1;
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(_) => {
                other_errors += 1;
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        if Instant::now() >= next_count {
            max_procs = max_procs.max(count_procs());
            next_count = Instant::now() + Duration::from_millis(20);
        }
        reap_some();
    }
    // Everything exits at the deadline; orphans come to us (PID 1) to reap.
    let give_up = Instant::now() + Duration::from_secs(5);
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Err(Errno::ECHILD) => break,
            Ok(nix::sys::wait::WaitStatus::StillAlive) | Err(_) => {
                if Instant::now() > give_up {
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            Ok(_) => {}
        }
    }
    out.emit(
        "result",
        json!({ "forks": forks, "eagain": eagain, "other_errors": other_errors, "max_procs_seen": max_procs }),
    );
    Ok(())
}

/// Reaps exited children without waiting, so zombies do not hold pids.
fn reap_some() {
    while let Ok(status) = waitpid(None, Some(WaitPidFlag::WNOHANG)) {
        if status == nix::sys::wait::WaitStatus::StillAlive {
            break;
        }
    }
}
