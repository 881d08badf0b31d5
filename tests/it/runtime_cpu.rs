//! The seed's claim: a spin loop under a 20% CFS quota uses 20% of a CPU.
//! Measured from the container's own cgroup accounting over 5 s. Alone in
//! its test binary so no other test's load shares the window.
//!
//! A quota is a cap, not a reservation: the container must never use more
//! than its quota, and must reach it whenever the host had that much CPU
//! free. The CPU the rest of the host used in the same window is measured
//! from /proc/stat, so a busy machine lowers the floor instead of failing.

use crate::common::*;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The measurements of this file never overlap.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Busy CPU time of the whole host so far, in seconds (/proc/stat).
fn host_busy_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap();
    let cpu: Vec<f64> = stat
        .lines()
        .next()
        .unwrap()
        .split_whitespace()
        .skip(1)
        .map(|v| v.parse().unwrap())
        .collect();
    // user nice system idle iowait irq softirq steal
    let busy = cpu[0] + cpu[1] + cpu[2] + cpu[5] + cpu[6] + cpu.get(7).copied().unwrap_or(0.0);
    busy / nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .unwrap()
        .unwrap() as f64
}

struct Measurement {
    /// CPUs used by the container.
    share: f64,
    /// CPUs that were free for it (all CPUs minus what the rest of the host used).
    free: f64,
}

fn measure_share(cpus: &str, threads: u32, name: &str) -> Measurement {
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let spin = "while :; do :; done";
    let script = (0..threads)
        .map(|_| format!("({spin}) &"))
        .collect::<Vec<_>>()
        .join(" ")
        + " wait";
    let mut child = Command::new(BIN)
        .args([
            "run", "--name", name, "--cpus", cpus, "--grace", "1", "--", "/bin/sh", "-c", &script,
        ])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let (dir, v2) = loop {
        if let Some(found) = find_container_cgroup("cpuacct.usage", name) {
            break found;
        }
        assert!(Instant::now() < deadline, "container cgroup never appeared");
        std::thread::sleep(Duration::from_millis(20));
    };
    std::thread::sleep(Duration::from_millis(500));
    let (t0, u0, h0) = (
        Instant::now(),
        cpu_usage_ns(&dir, v2).unwrap(),
        host_busy_secs(),
    );
    std::thread::sleep(Duration::from_secs(5));
    let (t1, u1, h1) = (
        Instant::now(),
        cpu_usage_ns(&dir, v2).unwrap(),
        host_busy_secs(),
    );
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = child.wait().unwrap();
    assert!(!status.success(), "the spinner was stopped by a signal");
    let secs = (t1 - t0).as_secs_f64();
    let share = (u1 - u0) as f64 / 1e9 / secs;
    let others = ((h1 - h0) / secs - share).max(0.0);
    let ncpu = std::thread::available_parallelism().unwrap().get() as f64;
    Measurement {
        share,
        free: ncpu - others,
    }
}

/// Asserts the quota held: never above it, and reached when the CPU was free.
fn assert_quota_held(m: &Measurement, quota: f64, tolerance: f64) {
    eprintln!(
        "quota {quota}: used {:.4} CPUs, {:.2} CPUs were free",
        m.share, m.free
    );
    assert!(
        m.share <= quota + tolerance,
        "used {:.4} CPUs, above the {quota} quota",
        m.share
    );
    let floor = quota.min(m.free) - tolerance;
    assert!(
        m.share >= floor,
        "used {:.4} CPUs though {:.2} were free: the quota {quota} was not reached",
        m.share,
        m.free
    );
}

#[test]
fn a_spin_loop_under_a_20_percent_quota_uses_20_percent() {
    let _room = room!();
    if !root_or_skip("a_spin_loop_under_a_20_percent_quota_uses_20_percent") {
        return;
    }
    let m = measure_share("0.2", 1, &format!("cpu20-{}", std::process::id()));
    assert_quota_held(&m, 0.2, 0.02);
}

#[test]
fn two_spinning_threads_under_1_5_cpus_use_1_5_cpus() {
    let _room = room!();
    if !root_or_skip("two_spinning_threads_under_1_5_cpus_use_1_5_cpus") {
        return;
    }
    if std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        < 2
    {
        panic!("this host has one CPU: a 1.5 CPU quota cannot be measured");
    }
    let m = measure_share("1.5", 2, &format!("cpu150-{}", std::process::id()));
    assert_quota_held(&m, 1.5, 0.05);
}
