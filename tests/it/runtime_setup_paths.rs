//! The setup stage starts two ways: forked from a single-threaded caller
//! (`boxwatch run`) or re-executed from a multi-threaded one (a library
//! user such as the scenario runner, or this test harness). Either way the
//! container gets only its stdio: no descriptor of boxwatch leaks in.

use crate::common::*;
use runtime::{ContainerSpec, Exit, Runtime, RuntimeConfig};

/// Descriptors open in the container's `ls`, besides 0-2 and its own
/// directory descriptor.
fn extra_fds(listing: &str) -> Vec<String> {
    let fds: Vec<String> = listing.split_whitespace().map(String::from).collect();
    let mut extra: Vec<String> = fds
        .iter()
        .filter(|f| !["0", "1", "2"].contains(&f.as_str()))
        .cloned()
        .collect();
    // ls itself holds one for the directory it lists.
    extra.pop();
    extra
}

#[test]
fn a_forked_setup_stage_leaks_no_descriptor() {
    let _room = room!();
    if !root_or_skip("a_forked_setup_stage_leaks_no_descriptor") {
        return;
    }
    let (code, out, err) = run_sh(
        &["--cpus", "0.5", "--memory", "64M"],
        "echo $$; ls /proc/self/fd",
    );
    assert_eq!(code, 0, "{err}");
    let (pid, fds) = out.split_once('\n').unwrap();
    assert_eq!(pid, "1");
    assert!(extra_fds(fds).is_empty(), "leaked: {fds}");
}

#[test]
fn a_re_executed_setup_stage_leaks_no_descriptor() {
    let _room = room!();
    if !root_or_skip("a_re_executed_setup_stage_leaks_no_descriptor") {
        return;
    }
    // Make sure this process has more than one thread: the re-exec path.
    let _keep = std::thread::spawn(|| std::thread::sleep(std::time::Duration::from_secs(5)));
    let rt = Runtime::new(RuntimeConfig::new(BIN.into())).unwrap();
    let spec = ContainerSpec::new(
        "fds",
        vec![
            "/bin/sh".into(),
            "-c".into(),
            "echo $$; ls /proc/self/fd".into(),
        ],
    );
    let (outcome, out) = run_captured(&rt, &spec);
    assert_eq!(outcome.exit, Exit::Code(0));
    let (pid, fds) = out.split_once('\n').unwrap();
    assert_eq!(pid, "1");
    assert!(extra_fds(fds).is_empty(), "leaked: {fds}");
}
