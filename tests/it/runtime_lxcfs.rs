//! lxcfs-style /proc virtualization as boxwatch applies it: a private lxcfs
//! bound over the container's /proc and /sys files shows the container's
//! limits, and the daemon and its mount never outlive the run that
//! started them, even a SIGKILLed one.

use crate::common::*;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use runtime::lxcfs::{self, Lxcfs};
use runtime::{ContainerSpec, Exit, Runtime, RuntimeConfig};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio as PStdio};
use std::time::{Duration, Instant};

/// Root and an installable lxcfs; under CI=true (which installs lxcfs) a
/// missing one fails the test.
fn lxcfs_or_skip(test: &str) -> bool {
    root_or_skip(test) && {
        let missing = lxcfs::unavailable();
        present_or_skip(missing.is_none(), test, &missing.unwrap_or_default())
    }
}

/// Dead: gone, or a zombie waiting for its new parent to reap it.
fn dead(pid: i32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    stat.rsplit_once(") ")
        .is_none_or(|(_, rest)| rest.starts_with('Z'))
}

fn wait_until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "{what} within {limit:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_container_behind_lxcfs_sees_its_memory_limit_and_cpuset() {
    let _room = room!();
    if !lxcfs_or_skip("a_container_behind_lxcfs_sees_its_memory_limit_and_cpuset") {
        return;
    }
    let script = "grep MemTotal /proc/meminfo; grep -c ^processor /proc/cpuinfo; \
                  grep -c '^cpu[0-9]' /proc/stat; cat /sys/devices/system/cpu/online; \
                  getconf _NPROCESSORS_ONLN";
    let (code, out, err) = run_sh(&["--memory", "128M", "--cpuset", "0", "--lxcfs"], script);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        ["MemTotal:         131072 kB", "1", "1", "0", "1"],
        "{out}{err}"
    );
    // The same container without lxcfs sees the host: the views above came
    // from lxcfs, not from the limits alone.
    let (_, host_view, _) = run_sh(
        &["--memory", "128M", "--cpuset", "0"],
        "grep MemTotal /proc/meminfo",
    );
    let host = std::fs::read_to_string("/proc/meminfo").unwrap();
    assert_eq!(
        host_view.trim(),
        host.lines().next().unwrap().trim(),
        "no lxcfs, host MemTotal"
    );
}

#[test]
fn a_private_lxcfs_stops_and_unmounts_when_dropped() {
    let _room = room!();
    if !lxcfs_or_skip("a_private_lxcfs_stops_and_unmounts_when_dropped") {
        return;
    }
    let rt = Runtime::new(RuntimeConfig::new(BIN.into())).unwrap();
    let mount_point = rt.run_state_dir().join("lxcfs");
    let l = Lxcfs::start(&mount_point).unwrap();
    let pid = l.pid();
    assert!(lxcfs::is_mounted(&mount_point));
    let mut spec = ContainerSpec::new(
        "lx",
        vec![
            "/bin/sh".into(),
            "-c".into(),
            "head -1 /proc/meminfo".into(),
        ],
    );
    spec.limits.memory = Some("64M".parse().unwrap());
    spec.lxcfs = Some(l.path().to_path_buf());
    let (outcome, out) = run_captured(&rt, &spec);
    assert_eq!(outcome.exit, Exit::Code(0));
    assert_eq!(out.trim(), "MemTotal:          65536 kB");

    drop(l);
    assert!(dead(pid), "lxcfs {pid} outlived its handle");
    assert!(!lxcfs::is_mounted(&mount_point), "the lxcfs mount was left");
    assert!(!mount_point.exists(), "{} was left", mount_point.display());
    assert!(!mount_point.with_extension("pid").exists());
    assert!(!mount_point.with_extension("log").exists());
}

/// The `lxcfs` process a `boxwatch run --lxcfs` with PID `boxwatch` started,
/// and its mount point, once it is up.
fn lxcfs_of_run(boxwatch: u32) -> (i32, PathBuf) {
    let prefix = format!("/run/boxwatch/{boxwatch}-");
    let mut found = None;
    wait_until("the run's lxcfs mounts", Duration::from_secs(10), || {
        found = std::fs::read_dir("/proc").unwrap().flatten().find_map(|e| {
            let pid: i32 = e.file_name().to_str()?.parse().ok()?;
            let cmdline = std::fs::read(e.path().join("cmdline")).ok()?;
            let args: Vec<&[u8]> = cmdline.split(|&b| b == 0).collect();
            let mp = std::str::from_utf8(args.iter().rev().find(|a| !a.is_empty())?).ok()?;
            (args[0].ends_with(b"lxcfs") && mp.starts_with(&prefix))
                .then(|| (pid, PathBuf::from(mp)))
        });
        found.as_ref().is_some_and(|(_, mp)| lxcfs::is_mounted(mp))
    });
    found.unwrap()
}

#[test]
fn a_sigkilled_run_takes_its_lxcfs_and_its_mount_with_it() {
    let _room = room!();
    if !lxcfs_or_skip("a_sigkilled_run_takes_its_lxcfs_and_its_mount_with_it") {
        return;
    }
    let mut run = Command::new(BIN)
        .args(["run", "--lxcfs", "--", "sleep", "60"])
        .stdout(PStdio::null())
        .stderr(PStdio::null())
        .spawn()
        .unwrap();
    let (pid, mount_point) = lxcfs_of_run(run.id());
    kill(Pid::from_raw(run.id() as i32), Signal::SIGKILL).unwrap();
    run.wait().unwrap();
    // The parent-death signal stops lxcfs, which unmounts itself.
    wait_until("lxcfs ends with its run", Duration::from_secs(10), || {
        dead(pid)
    });
    wait_until("the mount goes", Duration::from_secs(5), || {
        !lxcfs::is_mounted(&mount_point)
    });
    // What is left is a plain directory, removed by the next run.
    let run_dir: &Path = mount_point.parent().unwrap();
    let next = boxwatch(&["run", "--", "true"]);
    assert!(next.status.success());
    assert!(!run_dir.exists(), "{} was left", run_dir.display());
}

#[test]
fn a_directory_that_is_not_lxcfs_is_refused_with_the_fix() {
    let _room = room!();
    if !root_or_skip("a_directory_that_is_not_lxcfs_is_refused_with_the_fix") {
        return;
    }
    let empty = tempfile::tempdir().unwrap();
    let flag = format!("--lxcfs={}", empty.path().display());
    let out = boxwatch(&["run", &flag, "--", "true"]);
    assert_eq!(out.status.code(), Some(125));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("is not an lxcfs mount") && err.contains("--lxcfs without a directory"),
        "{err}"
    );
}

#[test]
fn a_new_run_stops_an_lxcfs_that_outlived_its_killed_run() {
    let _room = room!();
    if !lxcfs_or_skip("a_new_run_stops_an_lxcfs_that_outlived_its_killed_run") {
        return;
    }
    // What a run leaves when boxwatch and the parent-death signal both
    // failed: its lxcfs still running on <state>/<run-id>/lxcfs, with the
    // pid file next to it. The run id names a process that is gone.
    let mut gone = Command::new("true").spawn().unwrap();
    let gone_pid = gone.id();
    gone.wait().unwrap();
    let run_dir = PathBuf::from(format!("/run/boxwatch/{gone_pid}-1-0"));
    let mount_point = run_dir.join("lxcfs");
    std::fs::create_dir_all(&mount_point).unwrap();
    let mut orphan = Command::new(lxcfs::binary().unwrap())
        .arg("--foreground")
        .arg("--pidfile")
        .arg(mount_point.with_extension("pid"))
        .arg(&mount_point)
        .stdout(PStdio::null())
        .stderr(PStdio::null())
        .spawn()
        .unwrap();
    wait_until("the orphan lxcfs mounts", Duration::from_secs(10), || {
        lxcfs::is_mounted(&mount_point) && mount_point.with_extension("pid").exists()
    });

    let next = boxwatch(&["run", "--", "true"]);
    assert!(next.status.success());
    wait_until("the stale lxcfs ends", Duration::from_secs(5), || {
        orphan.try_wait().unwrap().is_some()
    });
    assert!(!lxcfs::is_mounted(&mount_point), "the stale mount was left");
    assert!(!run_dir.exists(), "{} was left", run_dir.display());
}
