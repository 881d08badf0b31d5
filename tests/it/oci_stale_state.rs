//! State that dead runs left in the OCI runtimes' roots: the next
//! `boxwatch run` removes it with the binary that owns each root and
//! without running it when nothing of the container is left, and gives up
//! on what it cannot remove, saying so once.
//!
//! The state is real: a runsc container and a runc container are created
//! and started with their own CLI, under ids of a dead boxwatch run, and
//! left stopped, not deleted (what a run killed after its container ended
//! leaves). The runc root belongs to a runc reached through a symlink, so
//! it has its own root (`oci/runc-<hash>`) and owner record. A third
//! entry cannot be removed (a mount inside it). How long a run takes with
//! such state left is a figure of `cargo xtask bench runtime`, not timed
//! here. Needs root, runc and runsc; under CI=true a missing one fails the
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
    let b = dir.join("bundle");
    std::fs::create_dir_all(b.join("rootfs/bin")).unwrap();
    std::fs::copy("/bin/busybox", b.join("rootfs/bin/busybox")).unwrap();
    std::os::unix::fs::symlink("busybox", b.join("rootfs/bin/true")).unwrap();
    let out = Command::new(spec_from)
        .args(["spec"])
        .current_dir(&b)
        .output()
        .unwrap();
    assert!(out.status.success(), "{:?}", out);
    let path = b.join("config.json");
    let mut v: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    v["process"]["terminal"] = false.into();
    v["process"]["args"] = serde_json::json!(["/bin/true"]);
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

    // runc through a symlink: a root of its own, with its owner record.
    let runc_link = tmp.path().join("runc");
    std::os::unix::fs::symlink(runtime::find_in_path("runc").unwrap(), &runc_link).unwrap();
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
    let second = boxwatch_true();

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
