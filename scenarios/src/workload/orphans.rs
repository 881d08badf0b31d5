//! Makes an orphan: forks a child that forks a grandchild and exits at once.
//! The grandchild is re-parented to the container's PID 1, which must reap
//! it when it exits; a zombie left behind means PID 1 does not reap.

use super::Emitter;
use crate::error::{Error, Result};
use crate::sys::{exit_now, fork, Forked};
use serde_json::json;
use std::io::Read;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

/// The state letter of /proc/<pid>/stat (R, S, Z...), None when gone.
fn state_of(pid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

fn zombies() -> u64 {
    std::fs::read_dir("/proc")
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
                .filter(|pid| state_of(*pid) == Some('Z'))
                .count() as u64
        })
        .unwrap_or(0)
}

pub fn orphan_maker(out: &Emitter, linger: bool) -> Result<()> {
    out.emit("start", json!({ "pid": std::process::id() }));
    let sys = |step| move |source| Error::Sys { step, source };
    let (read_end, write_end) = nix::unistd::pipe().map_err(sys("pipe"))?;
    let child = match fork().map_err(sys("fork"))? {
        Forked::Child => {
            drop(read_end);
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
        Forked::Parent(pid) => pid,
    };
    drop(write_end);
    let mut msg = String::new();
    let _ = std::fs::File::from(read_end).read_to_string(&mut msg);
    let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(child), None);
    let grandchild: i32 = msg
        .split_whitespace()
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| Error::Workload {
            workload: "orphan-maker",
            message: "the child could not fork a grandchild".into(),
        })?;
    // The grandchild exits after 100 ms; PID 1 should reap it right away.
    let t0 = Instant::now();
    let mut reaped = false;
    while t0.elapsed() < Duration::from_secs(3) {
        if state_of(grandchild).is_none() {
            reaped = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    out.emit(
        "result",
        json!({
            "grandchild_reaped": reaped,
            "reap_ms": t0.elapsed().as_secs_f64() * 1000.0,
            "zombies": zombies(),
            "lingering": linger,
        }),
    );
    Ok(())
}
