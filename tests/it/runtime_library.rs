//! The runtime used as a library (as the scenario runner does): piped
//! stdout, try_wait while sampling, and a whole container on the cgroup v2
//! driver over the host's cgroup2 mount.

use crate::common::*;
use runtime::cgroup::{CgroupMode, Mounts, V2Driver};
use runtime::{ContainerSpec, Exit, Runtime, RuntimeConfig, Stdio};
use std::io::Read;
use std::os::fd::OwnedFd;

fn pipe() -> (std::fs::File, OwnedFd) {
    let (r, w) = nix::unistd::pipe().unwrap();
    (std::fs::File::from(r), w)
}

fn sh(name: &str, script: &str) -> ContainerSpec {
    ContainerSpec::new(name, vec!["/bin/sh".into(), "-c".into(), script.into()])
}

#[test]
fn a_container_on_the_v2_driver_runs_and_is_killed_through_cgroup_kill() {
    let _room = room!();
    if !root_or_skip("a_container_on_the_v2_driver_runs_and_is_killed_through_cgroup_kill") {
        return;
    }
    let unified = Mounts::from_proc()
        .unwrap()
        .unified
        .expect("a cgroup2 mount");
    let driver = Box::new(V2Driver::new(unified, CgroupMode::V2));
    let rt = Runtime::with_driver(RuntimeConfig::new(BIN.into()), driver).unwrap();

    let (mut out, w) = pipe();
    let c = rt
        .spawn(
            &sh("v2-echo", "echo $$; cat /proc/self/cgroup | grep '^0::'"),
            Stdio {
                stdout: Some(w),
                ..Stdio::default()
            },
        )
        .unwrap();
    let outcome = c.wait().unwrap();
    let mut text = String::new();
    out.read_to_string(&mut text).unwrap();
    assert_eq!(outcome.exit, Exit::Code(0));
    assert_eq!(
        text, "1\n0::/\n",
        "PID 1, and the cgroup namespace is rooted at the v2 cgroup"
    );

    let c = rt
        .spawn(&sh("v2-kill", "sleep 100"), Stdio::default())
        .unwrap();
    let dirs = c.cgroup_dirs();
    assert!(
        dirs[0].1.join("cgroup.kill").exists(),
        "kernels since 5.14 have cgroup.kill"
    );
    c.killer().kill().unwrap();
    assert_eq!(c.wait().unwrap().exit, Exit::Signal(9));
    for (_, d) in dirs {
        assert!(!d.exists(), "{} left behind", d.display());
    }
}

#[test]
fn try_wait_reports_a_running_container_then_its_outcome() {
    let _room = room!();
    if !root_or_skip("try_wait_reports_a_running_container_then_its_outcome") {
        return;
    }
    let rt = Runtime::new(RuntimeConfig::new(BIN.into())).unwrap();
    let mut c = rt
        .spawn(&sh("trywait", "sleep 0.3; exit 3"), Stdio::default())
        .unwrap();
    assert!(c.try_wait().unwrap().is_none());
    assert!(
        c.setup_notes().iter().any(|n| n == "rootfs=pivot_root"),
        "{:?}",
        c.setup_notes()
    );
    let outcome = loop {
        if let Some(o) = c.try_wait().unwrap() {
            break o;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert_eq!(outcome.exit, Exit::Code(3));
    assert!(!outcome.oom_killed);
    assert!(outcome.wall_time >= std::time::Duration::from_millis(250));
}

#[test]
fn a_dropped_container_is_killed_and_removed() {
    let _room = room!();
    if !root_or_skip("a_dropped_container_is_killed_and_removed") {
        return;
    }
    let rt = Runtime::new(RuntimeConfig::new(BIN.into())).unwrap();
    let c = rt
        .spawn(&sh("dropped", "sleep 100"), Stdio::default())
        .unwrap();
    let pid = c.host_pid();
    let dirs = c.cgroup_dirs();
    drop(c);
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
    for (_, d) in dirs {
        assert!(!d.exists(), "{} left behind", d.display());
    }
}

#[test]
fn two_containers_of_one_name_in_one_run_are_refused() {
    let _room = room!();
    if !root_or_skip("two_containers_of_one_name_in_one_run_are_refused") {
        return;
    }
    let rt = Runtime::new(RuntimeConfig::new(BIN.into())).unwrap();
    let _first = rt.spawn(&sh("twin", "sleep 5"), Stdio::default()).unwrap();
    let err = rt.spawn(&sh("twin", "true"), Stdio::default()).unwrap_err();
    assert!(err.to_string().contains("already running"), "{err}");
}

#[test]
fn a_guarded_workload_without_its_limit_never_starts() {
    let _room = room!();
    if !root_or_skip("a_guarded_workload_without_its_limit_never_starts") {
        return;
    }
    let rt = Runtime::new(RuntimeConfig::new(BIN.into())).unwrap();
    let mut spec = sh("hog", "echo must-not-run");
    spec.guard = Some(runtime::Guard {
        workload: "memory hog".into(),
        needs: vec![runtime::LimitKind::Memory],
    });
    let err = rt.spawn(&spec, Stdio::default()).unwrap_err();
    assert!(
        err.to_string()
            .contains("memory hog must not run without a memory limit"),
        "{err}"
    );
}

#[test]
fn parallel_runs_that_start_and_end_do_not_trip_over_the_shared_parents() {
    let _room = room!();
    if !root_or_skip("parallel_runs_that_start_and_end_do_not_trip_over_the_shared_parents") {
        return;
    }
    // Each run creates /run/boxwatch/<run-id>/<name> and /boxwatch/<run-id>,
    // and removes the shared, empty parents when it ends: a start must not
    // fail because another run removed a parent half-way through.
    let workers: Vec<_> = (0..4)
        .map(|w| {
            std::thread::spawn(move || {
                for i in 0..12 {
                    let rt = Runtime::new(RuntimeConfig::new(BIN.into())).unwrap();
                    let c = rt
                        .spawn(&sh(&format!("par-{w}-{i}"), "true"), Stdio::default())
                        .unwrap_or_else(|e| panic!("worker {w} run {i}: {e}"));
                    assert_eq!(c.wait().unwrap().exit, Exit::Code(0));
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
}
