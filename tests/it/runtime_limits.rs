//! Memory, pids and cpuset limits hold; capabilities are cut to Docker's set.

use crate::common::*;

#[test]
fn an_allocation_beyond_the_memory_limit_is_oom_killed_and_reported() {
    let _room = room!();
    if !root_or_skip("an_allocation_beyond_the_memory_limit_is_oom_killed_and_reported") {
        return;
    }
    // The shell holds 200 MiB of command substitution in memory.
    let (code, _, err) = run_sh(
        &["--memory", "64M"],
        "x=$(head -c 209715200 /dev/zero | tr '\\0' a); echo survived",
    );
    assert_eq!(code, 137, "{err}");
    assert!(
        err.contains("killed by the OOM killer (memory limit 64 MiB)"),
        "{err}"
    );
}

#[test]
fn the_same_allocation_fits_under_a_larger_limit() {
    let _room = room!();
    if !root_or_skip("the_same_allocation_fits_under_a_larger_limit") {
        return;
    }
    let (code, out, err) = run_sh(
        &["--memory", "1G"],
        "x=$(head -c 209715200 /dev/zero | tr '\\0' a); echo survived",
    );
    assert_eq!((code, out.as_str()), (0, "survived\n"), "{err}");
}

#[test]
fn forks_stop_at_the_pids_limit() {
    let _room = room!();
    if !root_or_skip("forks_stop_at_the_pids_limit") {
        return;
    }
    let name = format!("pids-{}", std::process::id());
    // An inner shell forks until it fails (dash gives up at the first
    // refused fork); the sleeps it started keep the count up for a while.
    let script = "sh -c 'for i in $(seq 30); do sleep 3 & done' 2>/dev/null; sleep 3";
    let mut child = std::process::Command::new(BIN)
        .args([
            "run", "--name", &name, "--pids", "8", "--", "/bin/sh", "-c", script,
        ])
        .spawn()
        .unwrap();
    let dir = loop {
        if let Some((d, _)) = find_container_cgroup("pids.max", &name) {
            break d;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let current: u32 = std::fs::read_to_string(dir.join("pids.current"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let events = std::fs::read_to_string(dir.join("pids.events")).unwrap();
    let refused: u32 = events.trim().strip_prefix("max ").unwrap().parse().unwrap();
    assert!(child.wait().unwrap().success());
    assert!(current <= 8, "{current} processes under --pids 8");
    assert!(
        current >= 5,
        "{current}: the shell should have filled the limit"
    );
    assert!(refused > 0, "no fork was refused: {events}");
}

#[test]
fn the_cpuset_confines_the_container_to_its_cpus() {
    let _room = room!();
    if !root_or_skip("the_cpuset_confines_the_container_to_its_cpus") {
        return;
    }
    let (code, out, err) = run_sh(
        &["--cpuset", "0"],
        "grep Cpus_allowed_list /proc/self/status; nproc",
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "Cpus_allowed_list:\t0\n1\n");
}

#[test]
fn capabilities_are_dockers_default_set_and_no_new_privs_is_set() {
    let _room = room!();
    if !root_or_skip("capabilities_are_dockers_default_set_and_no_new_privs_is_set") {
        return;
    }
    let (code, out, _) = run_sh(
        &[],
        "grep -E '^(CapEff|CapBnd|CapInh|CapAmb|NoNewPrivs)' /proc/self/status",
    );
    assert_eq!(code, 0);
    let field = |name: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}:")))
            .map(|v| {
                u64::from_str_radix(v.trim(), 16).unwrap_or_else(|_| v.trim().parse().unwrap())
            })
            .unwrap()
    };
    // CHOWN DAC_OVERRIDE FOWNER FSETID KILL SETGID SETUID SETPCAP
    // NET_BIND_SERVICE NET_RAW SYS_CHROOT MKNOD AUDIT_WRITE SETFCAP
    assert_eq!(field("CapEff"), 0xa80425fb);
    assert_eq!(field("CapBnd"), 0xa80425fb);
    assert_eq!(field("CapInh"), 0);
    assert_eq!(field("CapAmb"), 0);
    assert_eq!(field("NoNewPrivs"), 1);
    const CAP_SYS_TIME: u32 = 25;
    assert_eq!(
        field("CapEff") & (1 << CAP_SYS_TIME),
        0,
        "CAP_SYS_TIME must be dropped"
    );
}

#[test]
fn a_kept_capability_is_kept() {
    let _room = room!();
    if !root_or_skip("a_kept_capability_is_kept") {
        return;
    }
    let (code, out, _) = run_sh(
        &["--keep-cap", "CAP_NET_ADMIN"],
        "grep CapEff /proc/self/status",
    );
    assert_eq!(code, 0);
    let eff = u64::from_str_radix(out.split_whitespace().nth(1).unwrap(), 16).unwrap();
    const CAP_NET_ADMIN: u32 = 12;
    assert_ne!(eff & (1 << CAP_NET_ADMIN), 0);
}

#[test]
fn with_init_the_entry_is_pid_2_and_orphans_are_reaped() {
    let _room = room!();
    if !root_or_skip("with_init_the_entry_is_pid_2_and_orphans_are_reaped") {
        return;
    }
    // The inner shell leaves an orphan that exits after 0.2 s; init must reap it.
    let script = "echo $$; sh -c 'sleep 0.2 & exit 0'; sleep 1; \
                  for s in /proc/[0-9]*/stat; do cut -d' ' -f3 $s; done | grep -c Z";
    let (_, out, err) = run_sh(&["--init"], script);
    assert_eq!(out, "2\n0\n", "{err}");
}

#[test]
fn the_exit_code_of_the_entry_is_passed_on() {
    let _room = room!();
    if !root_or_skip("the_exit_code_of_the_entry_is_passed_on") {
        return;
    }
    assert_eq!(run_sh(&[], "exit 42").0, 42);
    assert_eq!(run_sh(&["--init"], "exit 7").0, 7);
    // A namespace's PID 1 cannot be SIGKILLed from inside; with init the
    // entry is PID 2 and its death by signal is reported the shell's way.
    assert_eq!(run_sh(&["--init"], "kill -KILL $$").0, 137);
}

#[test]
fn the_container_lives_and_dies_with_its_entry_command() {
    let _room = room!();
    if !root_or_skip("the_container_lives_and_dies_with_its_entry_command") {
        return;
    }
    // A background process must not keep the container alive after the
    // entry exits, with or without the tiny init.
    for opts in [&[][..], &["--init"][..]] {
        let t = std::time::Instant::now();
        let (code, _, err) = run_sh(opts, "sleep 100 & exit 0");
        assert_eq!(code, 0, "{opts:?}: {err}");
        assert!(
            t.elapsed() < std::time::Duration::from_secs(10),
            "{opts:?}: took {:?}",
            t.elapsed()
        );
    }
}
