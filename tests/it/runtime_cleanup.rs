//! Nothing of a container outlives it: not after success, failure, SIGINT,
//! nor after a SIGKILL of boxwatch followed by a new run.

use crate::common::*;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn start(args: &[&str]) -> Child {
    Command::new(BIN)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn wait_for_cgroup(name: &str) -> std::path::PathBuf {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some((d, _)) = find_container_cgroup("cgroup.procs", name) {
            if !std::fs::read_to_string(d.join("cgroup.procs"))
                .unwrap_or_default()
                .trim()
                .is_empty()
            {
                return d;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the container {name} never started"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn state_dirs_of(pid: u32) -> Vec<String> {
    std::fs::read_dir("/run/boxwatch")
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(&format!("{pid}-")))
                .collect()
        })
        .unwrap_or_default()
}

fn assert_nothing_left(pid: u32) {
    assert_eq!(
        cgroups_of_boxwatch_pid(pid),
        Vec::<std::path::PathBuf>::new(),
        "cgroups left behind"
    );
    assert_eq!(
        state_dirs_of(pid),
        Vec::<String>::new(),
        "state directories left behind"
    );
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains("boxwatch"),
        "a boxwatch mount leaked into the host: {mounts}"
    );
}

#[test]
fn nothing_is_left_after_success() {
    let _room = room!();
    if !root_or_skip("nothing_is_left_after_success") {
        return;
    }
    let mut c = start(&[
        "run", "--memory", "64M", "--cpus", "0.5", "--pids", "10", "--", "true",
    ]);
    assert!(c.wait().unwrap().success());
    assert_nothing_left(c.id());
}

#[test]
fn nothing_is_left_after_a_failed_setup() {
    let _room = room!();
    if !root_or_skip("nothing_is_left_after_a_failed_setup") {
        return;
    }
    let mut c = start(&["run", "--memory", "64M", "--", "/no/such/command"]);
    let status = c.wait().unwrap();
    assert_eq!(status.code(), Some(127));
    assert_nothing_left(c.id());
}

#[test]
fn sigint_ends_the_container_and_cleans_up() {
    let _room = room!();
    if !root_or_skip("sigint_ends_the_container_and_cleans_up") {
        return;
    }
    // sleep as PID 1 ignores SIGINT: boxwatch kills it after the grace period.
    let name = format!("sigint-{}", std::process::id());
    let mut c = start(&["run", "--name", &name, "--grace", "1", "--", "sleep", "100"]);
    wait_for_cgroup(&name);
    let t = Instant::now();
    kill(Pid::from_raw(c.id() as i32), Signal::SIGINT).unwrap();
    let status = c.wait().unwrap();
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "took {:?}",
        t.elapsed()
    );
    assert_eq!(status.code(), Some(137));
    assert_nothing_left(c.id());
}

#[test]
fn sigterm_is_forwarded_through_init_to_the_entry() {
    let _room = room!();
    if !root_or_skip("sigterm_is_forwarded_through_init_to_the_entry") {
        return;
    }
    let name = format!("sigterm-{}", std::process::id());
    let mut c = start(&[
        "run", "--init", "--name", &name, "--grace", "30", "--", "sleep", "100",
    ]);
    wait_for_cgroup(&name);
    std::thread::sleep(Duration::from_millis(100));
    kill(Pid::from_raw(c.id() as i32), Signal::SIGTERM).unwrap();
    let status = c.wait().unwrap();
    assert_eq!(
        status.code(),
        Some(128 + 15),
        "sleep should die of the forwarded SIGTERM"
    );
    assert_nothing_left(c.id());
}

#[test]
fn a_new_run_removes_what_a_killed_run_left() {
    let _room = room!();
    if !root_or_skip("a_new_run_removes_what_a_killed_run_left") {
        return;
    }
    killed_run_is_cleaned_by_the_next(&[], "killed");
}

#[test]
fn a_new_run_kills_containers_that_outlived_a_killed_run() {
    let _room = room!();
    if !root_or_skip("a_new_run_kills_containers_that_outlived_a_killed_run") {
        return;
    }
    // In a user namespace the parent-death signal does not survive the uid
    // change, so the container outlives boxwatch: the next run must kill it.
    killed_run_is_cleaned_by_the_next(&["--userns"], "outlived");
}

fn killed_run_is_cleaned_by_the_next(opts: &[&str], label: &str) {
    let name = format!("{label}-{}", std::process::id());
    let mut args = vec!["run", "--name", &name, "--memory", "64M"];
    args.extend_from_slice(opts);
    args.extend(["--", "sleep", "100"]);
    let mut c = start(&args);
    let dir = wait_for_cgroup(&name);
    let members = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap();
    kill(Pid::from_raw(c.id() as i32), Signal::SIGKILL).unwrap();
    c.wait().unwrap();
    assert!(
        !cgroups_of_boxwatch_pid(c.id()).is_empty(),
        "a SIGKILLed run cannot clean up itself"
    );

    let mut next = start(&["run", "--", "true"]);
    assert!(next.wait().unwrap().success());
    assert_nothing_left(c.id());
    for pid in members.split_whitespace() {
        // Dead means gone or a zombie waiting for the host's init to reap it.
        let stat =
            std::fs::read_to_string(Path::new("/proc").join(pid).join("stat")).unwrap_or_default();
        let state = stat
            .rsplit_once(") ")
            .map(|(_, rest)| &rest[..1])
            .unwrap_or("gone");
        assert!(
            state == "gone" || state == "Z",
            "container process {pid} survived in state {state}"
        );
    }
}
