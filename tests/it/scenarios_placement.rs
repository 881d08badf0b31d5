//! A container never placed in its pids cgroup is not a pass: the
//! pids-fork-bomb scenario run through a runc wrapper that, after `runc
//! create`, moves the container's first process out of the pids cgroup
//! runc made into one this test made (pids.max 64 there too, so the bomb
//! stays bounded). The judge reads /proc/<pid>/cgroup of the running
//! processes and finds them outside the cgroup runc reported. Needs root,
//! runc and a pids controller; under CI=true a missing one fails the test.

use crate::common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The pids hierarchy's mount point (v1 `pids`, else the cgroup2 mount
/// when it has the pids controller).
fn pids_mount() -> Option<PathBuf> {
    let layout = probes::host::detect().ok()?;
    layout.hierarchy_for("pids").map(|h| h.mount_point.clone())
}

/// A cgroup this test made, removed (after its processes) on drop.
struct TestCgroup(PathBuf);

impl Drop for TestCgroup {
    fn drop(&mut self) {
        for _ in 0..50 {
            if std::fs::remove_dir(&self.0).is_ok() || !self.0.exists() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        eprintln!("could not remove {}", self.0.display());
    }
}

fn runc_moving_its_first_process_to(cgroup: &Path, dir: &Path) -> PathBuf {
    let runc = runtime::find_in_path("runc").expect("checked by the caller");
    let wrapper = dir.join("runc-misplacing");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\n\
             # A broken runtime: after create, its first process leaves the\n\
             # pids cgroup runc made for it.\n\
             {runc} \"$@\" || exit $?\n\
             prev=; create=\n\
             for a in \"$@\"; do\n\
             \x20   [ \"$a\" = create ] && create=1\n\
             \x20   [ \"$prev\" = --pid-file ] && pidfile=$a\n\
             \x20   prev=$a\n\
             done\n\
             if [ -n \"$create\" ] && [ -n \"$pidfile\" ]; then\n\
             \x20   cat \"$pidfile\" > {procs} || exit 1\n\
             fi\n",
            runc = runc.display(),
            procs = cgroup.join("cgroup.procs").display(),
        ),
    )
    .unwrap();
    std::fs::set_permissions(
        &wrapper,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    wrapper
}

#[test]
fn a_fork_bomb_moved_out_of_its_pids_cgroup_is_not_a_pass() {
    let _room = room!();
    let test = "a_fork_bomb_moved_out_of_its_pids_cgroup_is_not_a_pass";
    if !oci_or_skip(test, runtime::backend::BackendKind::Runc) {
        return;
    }
    let mount = pids_mount();
    if !present_or_skip(mount.is_some(), test, "a pids cgroup controller") {
        return;
    }
    let cg = TestCgroup(
        mount
            .unwrap()
            .join(format!("boxwatch-placement-test-{}", std::process::id())),
    );
    std::fs::create_dir(&cg.0).unwrap();
    std::fs::write(cg.0.join("pids.max"), "64").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let wrapper = runc_moving_its_first_process_to(&cg.0, dir.path());

    let out = Command::new(BIN)
        .args([
            "scenarios",
            "--runtime",
            "runc",
            "--runtime-path",
            wrapper.to_str().unwrap(),
            "--only",
            "pids-fork-bomb",
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    let report = json_report(&out);
    let s = &report["scenarios"][0];
    assert_ne!(s["status"], "pass", "{s:#}");
    let placement = s["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "placement")
        .unwrap_or_else(|| panic!("no placement check: {s:#}"));
    assert_eq!(placement["verdict"], "not-enforced", "{placement:#}");
    let observed = placement["observed"].as_str().unwrap();
    let test_cgroup = format!("/boxwatch-placement-test-{}", std::process::id());
    assert!(observed.contains(&test_cgroup), "{observed}");
    assert_eq!(s["status"], "fail", "{s:#}");
    assert_ne!(out.status.code(), Some(0));
}
