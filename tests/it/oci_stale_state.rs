//! State that dead runs left in the OCI runtimes' roots: the next
//! `boxwatch run` removes it with the binary that owns each root and
//! without running it when nothing of the container is left, and gives up
//! on what it cannot remove, saying so once.
//!
//! The state is real: a runsc container and a runc container are created
//! and started with their own CLI, under ids of a dead boxwatch run, and
//! left stopped, not deleted (what a run killed after its container ended
//! leaves); a second runc container of the dead run is left running. The
//! runc root belongs to a wrapper around runc that logs every call, so it
//! has its own root (`oci/runc-<hash>`) and owner record, and the test
//! counts the runtime's invocations: the next run calls `delete --force`
//! once, for the running container alone (the stopped ones' state is
//! removed without runc), and the run after it calls runc not at all. A
//! third entry cannot be removed (a mount inside it): given up on, not
//! retried. How long a run takes with such state left is a figure of
//! `cargo xtask bench runtime` ("start with dead state"), not timed here. Needs root, runc and runsc; under CI=true a missing one fails the
//! test.

use crate::common::*;
use runtime::backend::BackendKind;
use runtime::oci::owner::{self, Owner};
use runtime::oci::OciKind;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const OCI: &str = "/run/boxwatch/oci";

/// A bundle under `dir` running busybox's `true`, in cgroup `cgroup`.
fn bundle(dir: &Path, spec_from: &Path, cgroup: &str) -> PathBuf {
    bundle_running(dir, spec_from, cgroup, &["/bin/true"])
}

/// A bundle under `dir` running `args` (busybox applets), in `cgroup`.
fn bundle_running(dir: &Path, spec_from: &Path, cgroup: &str, args: &[&str]) -> PathBuf {
    let b = dir.join("bundle");
    std::fs::create_dir_all(b.join("rootfs/bin")).unwrap();
    std::fs::copy("/bin/busybox", b.join("rootfs/bin/busybox")).unwrap();
    for applet in ["true", "sleep"] {
        std::os::unix::fs::symlink("busybox", b.join("rootfs/bin").join(applet)).unwrap();
    }
    let out = Command::new(spec_from)
        .args(["spec"])
        .current_dir(&b)
        .output()
        .unwrap();
    assert!(out.status.success(), "{:?}", out);
    let path = b.join("config.json");
    let mut v: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    v["process"]["terminal"] = false.into();
    v["process"]["args"] = serde_json::json!(args);
    v["root"]["path"] = b.join("rootfs").to_str().unwrap().into();
    v["linux"]["cgroupsPath"] = cgroup.into();
    std::fs::write(&path, serde_json::to_vec(&v).unwrap()).unwrap();
    b
}

/// Creates and starts container `id` with `rt` (its global flags
/// included), and waits until it has stopped. It is not deleted.
fn leave_stopped(rt: &[&str], bundle: &Path, id: &str) {
    // The container's stdio is not ours to wait on: /dev/null.
    let status = |args: &[&str]| {
        let s = Command::new(rt[0])
            .args(&rt[1..])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(s.success(), "{rt:?} {args:?}: {s}");
    };
    status(&["create", "--bundle", bundle.to_str().unwrap(), id]);
    status(&["start", id]);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let out = Command::new(rt[0])
            .args(&rt[1..])
            .args(["state", id])
            .output()
            .unwrap();
        let state: Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        if state["status"] == "stopped" {
            return;
        }
        assert!(Instant::now() < deadline, "{id} never stopped: {out:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The container's cgroup directories in every hierarchy.
fn cgroup_dirs(cgroup: &str) -> Vec<PathBuf> {
    cgroup_mounts()
        .into_iter()
        .map(|m| m.join(cgroup.trim_start_matches('/')))
        .filter(|d| d.is_dir())
        .collect()
}

fn boxwatch_true() -> String {
    let out = Command::new(BIN)
        .args(["run", "--", "/bin/true"])
        .env("BOXWATCH_LOG", "info")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "boxwatch run failed: {err}");
    err
}

#[test]
fn dead_runsc_and_runc_state_is_removed_or_given_up_on_once() {
    let _room = room!();
    let test = "dead_runsc_and_runc_state_is_removed_or_given_up_on_once";
    if !(oci_or_skip(test, BackendKind::Runc) && oci_or_skip(test, BackendKind::Runsc)) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    // A run id whose boxwatch is dead: this process with another start.
    let me = std::process::id();
    let start = runtime::cleanup::start_time(me as i32).unwrap();
    let run = format!("{me}-{}-7", start + 1);
    let cg = |name: &str| format!("/boxwatch/{run}/{name}");

    // runsc, in its default root.
    let runsc = runtime::find_in_path("runsc").unwrap();
    let runsc_root = Path::new(OCI).join("runsc");
    std::fs::create_dir_all(&runsc_root).unwrap();
    let runsc_id = format!("bw-{run}-sandboxed");
    let b = bundle(&tmp.path().join("runsc"), &runsc, &cg("sandboxed"));
    let root_arg = format!("--root={}", runsc_root.display());
    let mut rt = vec![runsc.to_str().unwrap(), &root_arg];
    rt.extend(runtime::oci::RUNSC_FLAGS);
    leave_stopped(&rt, &b, &runsc_id);
    let runsc_files: Vec<PathBuf> = owner::entries(OciKind::Runsc, &runsc_root)
        .into_iter()
        .filter(|e| e.id == runsc_id)
        .flat_map(|e| e.paths)
        .collect();
    assert!(!runsc_files.is_empty(), "runsc left no state to clean");

    // runc through a wrapper that logs each call: a root of its own, with
    // its owner record.
    let runc_link = tmp.path().join("runc");
    let calls = tmp.path().join("runc.calls");
    std::fs::write(
        &runc_link,
        format!(
            "#!/bin/sh\necho \"$*\" >> '{}'\nexec '{}' \"$@\"\n",
            calls.display(),
            runtime::find_in_path("runc").unwrap().display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(
        &runc_link,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let default_runc = runtime::find_in_path("runc");
    let runc_root = Path::new(OCI).join(owner::root_name(
        OciKind::Runc,
        &runc_link,
        default_runc.as_deref(),
    ));
    std::fs::create_dir_all(&runc_root).unwrap();
    Owner {
        kind: OciKind::Runc,
        binary: runc_link.clone(),
    }
    .write_if_missing(&runc_root)
    .unwrap();
    let runc_id = format!("bw-{run}-plain");
    let b = bundle(&tmp.path().join("runc-bundle"), &runc_link, &cg("plain"));
    let root_arg = format!("--root={}", runc_root.display());
    leave_stopped(&[runc_link.to_str().unwrap(), &root_arg], &b, &runc_id);
    assert!(runc_root.join(&runc_id).is_dir());
    // One left running: only `runc delete --force` can end it.
    let alive_id = format!("bw-{run}-alive");
    let b = bundle_running(
        &tmp.path().join("runc-alive"),
        &runc_link,
        &cg("alive"),
        &["/bin/sleep", "600"],
    );
    for args in [
        vec!["create", "--bundle", b.to_str().unwrap(), &alive_id],
        vec!["start", &alive_id],
    ] {
        let s = Command::new(&runc_link)
            .arg(&root_arg)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(s.success(), "runc {args:?}: {s}");
    }
    let alive_pid = std::fs::read_to_string(runc_root.join(&alive_id).join("state.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<Value>(&t).ok())
        .and_then(|v| v["init_process_pid"].as_i64())
        .expect("the running container's pid");
    // Only the calls boxwatch makes from here on.
    std::fs::write(&calls, "").unwrap();

    // An entry nobody can remove: a mount inside it.
    let stuck_id = format!("bw-{run}-stuck");
    let stuck = runc_root.join(&stuck_id);
    std::fs::create_dir_all(stuck.join("m")).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "boxwatch-test-stuck"])
        .arg(stuck.join("m"))
        .status()
        .unwrap();
    assert!(mounted.success());

    let first = boxwatch_true();
    let first_calls = std::fs::read_to_string(&calls).unwrap();
    let second = boxwatch_true();
    let second_calls = std::fs::read_to_string(&calls).unwrap()[first_calls.len()..].to_string();

    // Whatever happens below, the mount goes.
    let given_up = runc_root.join(owner::GIVEN_UP_DIR).join(&stuck_id);
    let unmount = |p: &Path| {
        let _ = Command::new("umount").arg(p).stderr(Stdio::null()).status();
    };
    unmount(&given_up.join(&stuck_id).join("m"));
    unmount(&stuck.join("m"));

    for f in &runsc_files {
        assert!(!f.exists(), "{} left: {first}", f.display());
    }
    assert!(
        !runc_root.join(&runc_id).exists(),
        "runc state left: {first}"
    );
    for name in ["sandboxed", "plain"] {
        assert_eq!(cgroup_dirs(&cg(name)), Vec::<PathBuf>::new());
    }
    // Removed without running the runtimes: nothing of them was left.
    for id in [&runsc_id, &runc_id] {
        assert!(
            first.contains("removed the state of stale") && first.contains(id.as_str()),
            "{id}: {first}"
        );
    }
    // runc ran once, to delete the running one, with the flag every
    // family accepts; the stopped and the stuck entries cost no call.
    let lines: Vec<&str> = first_calls.lines().collect();
    assert_eq!(lines.len(), 1, "runc calls of the first run: {first_calls}");
    assert!(
        lines[0].ends_with(&format!("delete --force {alive_id}")),
        "{first_calls}"
    );
    assert!(
        first.contains(&format!("deleted stale runc container {alive_id}")),
        "{first}"
    );
    assert!(!runc_root.join(&alive_id).exists(), "{first}");
    // Gone, or a zombie its parent has yet to reap (a new process on the
    // PID would not be `sleep`).
    let stat = std::fs::read_to_string(format!("/proc/{alive_pid}/stat")).unwrap_or_default();
    let state = stat.rsplit_once(") ").and_then(|(_, r)| r.chars().next());
    assert!(
        stat.is_empty() || !stat.contains("(sleep)") || state == Some('Z'),
        "the running container's process {alive_pid} outlived its deletion: {stat}"
    );
    assert_eq!(cgroup_dirs(&cg("alive")), Vec::<PathBuf>::new());
    // The next start lists the roots and calls nothing: no entry is
    // retried, the given-up one included.
    assert_eq!(second_calls, "", "runc calls of the second run");
    let listed: Vec<String> = owner::entries(OciKind::Runc, &runc_root)
        .into_iter()
        .map(|e| e.id)
        .collect();
    assert!(
        listed.is_empty(),
        "entries left in the runc root: {listed:?}"
    );
    assert!(
        !owner::entries(OciKind::Runsc, &runsc_root)
            .iter()
            .any(|e| e.id == runsc_id),
        "the runsc entry is listed still"
    );
    // Given up on, reported once with the reason, not retried.
    let report = format!("could not remove stale runc container {stuck_id}");
    assert_eq!(first.matches(&report).count(), 1, "{first}");
    assert!(
        first.contains("Device or resource busy"),
        "the reason: {first}"
    );
    assert!(!second.contains(&stuck_id), "retried: {second}");
    assert!(given_up.exists(), "not set aside: {first}");
    assert!(!stuck.exists() || !given_up.is_dir());

    std::fs::remove_dir_all(&runc_root).unwrap();
    let _ = std::fs::remove_dir(&runsc_root);
    let _ = std::fs::remove_dir(OCI);
}
