//! The seed's claim: a spin loop under a 20% CFS quota uses 20% of a CPU.
//! Measured from the container's own cgroup accounting over 5 s. Alone in
//! its test binary so no other test's load shares the window.

mod common;
use common::*;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The measurements of this file never overlap.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn measure_share(cpus: &str, threads: u32, name: &str) -> f64 {
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let spin = "while :; do :; done";
    let script = (0..threads)
        .map(|_| format!("({spin}) &"))
        .collect::<Vec<_>>()
        .join(" ")
        + " wait";
    let mut child = Command::new(BIN)
        .args([
            "run", "--name", name, "--cpus", cpus, "--", "/bin/sh", "-c", &script,
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
    let (t0, u0) = (Instant::now(), cpu_usage_ns(&dir, v2).unwrap());
    std::thread::sleep(Duration::from_secs(5));
    let (t1, u1) = (Instant::now(), cpu_usage_ns(&dir, v2).unwrap());
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = child.wait().unwrap();
    assert!(!status.success(), "the spinner was stopped by a signal");
    (u1 - u0) as f64 / (t1 - t0).as_nanos() as f64
}

#[test]
fn a_spin_loop_under_a_20_percent_quota_uses_20_percent() {
    if !root_or_skip("a_spin_loop_under_a_20_percent_quota_uses_20_percent") {
        return;
    }
    let share = measure_share("0.2", 1, &format!("cpu20-{}", std::process::id()));
    eprintln!("cpu share under --cpus 0.2: {share:.4}");
    assert!(
        (0.18..=0.22).contains(&share),
        "share {share:.4} is outside 0.20 +/- 0.02"
    );
}

#[test]
fn two_spinning_threads_under_1_5_cpus_use_1_5_cpus() {
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
    let share = measure_share("1.5", 2, &format!("cpu150-{}", std::process::id()));
    eprintln!("cpu share under --cpus 1.5: {share:.4}");
    assert!(
        (1.45..=1.55).contains(&share),
        "share {share:.4} is outside 1.50 +/- 0.05"
    );
}
