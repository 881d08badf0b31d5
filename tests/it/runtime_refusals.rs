//! Bad input is refused before anything starts, with the cause and the fix.

use crate::common::*;

fn refused(args: &[&str]) -> (i32, String) {
    let out = boxwatch(args);
    assert!(!out.status.success(), "{args:?} was accepted");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn malformed_sizes_and_quotas_are_refused_with_the_value_named() {
    let _room = room!();
    for (flag, value, needle) in [
        ("--memory", "64Q", "invalid memory limit \"64Q\""),
        ("--memory=-1", "", "invalid memory limit \"-1\""),
        ("--cpus", "0", "invalid cpu quota \"0\""),
        ("--cpus", "0 cores", "invalid cpu quota \"0 cores\""),
        ("--cpus=-1", "", "invalid cpu quota \"-1\""),
        ("--cpus", "-1", "a CPU limit cannot be negative"),
        ("--memory", "-1", "invalid memory limit \"-1\""),
        ("--pids", "-1", "invalid pids limit \"-1\""),
        ("--cpuset", "1-0", "invalid cpuset \"1-0\""),
        ("--keep-cap", "CAP_FLY", "invalid capability \"CAP_FLY\""),
        ("--pids", "0", "invalid pids limit \"0\""),
        ("--pids=-1", "", "invalid pids limit \"-1\""),
        ("--pids", "64Q", "invalid pids limit \"64Q\""),
        ("--pids", "4194305", "invalid pids limit \"4194305\""),
    ] {
        let mut args = vec!["run", flag];
        if !value.is_empty() {
            args.push(value);
        }
        args.extend(["--", "true"]);
        let (code, err) = refused(&args);
        assert_eq!(code, 125, "a refusal of boxwatch's own exits 125: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(
            err.contains("expected"),
            "the accepted form is named: {err}"
        );
    }
}

#[test]
fn a_cpuset_of_offline_cpus_is_refused() {
    let _room = room!();
    if !root_or_skip("a_cpuset_of_offline_cpus_is_refused") {
        return;
    }
    let (_, err) = refused(&["run", "--cpuset", "4000", "--", "true"]);
    assert!(
        err.contains("online on this host") && err.contains("4000"),
        "{err}"
    );
}

#[test]
fn a_rootfs_without_the_entry_is_refused() {
    let _room = room!();
    if !root_or_skip("a_rootfs_without_the_entry_is_refused") {
        return;
    }
    let empty = tempfile::tempdir().unwrap();
    let (code, err) = refused(&[
        "run",
        "--rootfs",
        empty.path().to_str().unwrap(),
        "--",
        "sh",
        "-c",
        "true",
    ]);
    assert_eq!(code, 127, "{err}");
    assert!(err.contains("sh was not found in PATH="), "{err}");
    let (code, err) = refused(&["run", "--", "/etc/hostname"]);
    assert_eq!(code, 126, "{err}");
    assert!(err.contains("not executable"), "{err}");
}

#[test]
fn a_rootfs_that_is_not_a_directory_is_refused() {
    let _room = room!();
    let (_, err) = refused(&["run", "--rootfs", "/no/such/dir", "--", "true"]);
    assert!(err.contains("/no/such/dir"), "{err}");
}

#[test]
fn a_user_rootfs_works_when_it_has_the_entry() {
    let _room = room!();
    if !root_or_skip("a_user_rootfs_works_when_it_has_the_entry") {
        return;
    }
    let busybox = ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists());
    let Some(busybox) = busybox else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "busybox-static is needed (apt-get install busybox-static)"
        );
        return;
    };
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir(root.path().join("bin")).unwrap();
    std::fs::copy(busybox, root.path().join("bin/busybox")).unwrap();
    std::os::unix::fs::symlink("busybox", root.path().join("bin/sh")).unwrap();
    let out = boxwatch(&[
        "run",
        "--rootfs",
        root.path().to_str().unwrap(),
        "--",
        "/bin/sh",
        "-c",
        "echo $$; ls /",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.starts_with("1\n") && stdout.contains("bin"),
        "{stdout}"
    );
    assert!(
        !stdout.contains("usr"),
        "the host's /usr is not part of a user rootfs: {stdout}"
    );
}

#[test]
fn without_root_the_error_names_the_cause_and_the_fix() {
    let _room = room!();
    if !root_or_skip("without_root_the_error_names_the_cause_and_the_fix") {
        return;
    }
    let out = std::process::Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            BIN,
            "run",
            "--",
            "true",
        ])
        .output()
        .expect("setpriv (util-linux)");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(125), "{err}");
    assert!(
        err.contains("run boxwatch as root")
            && (err.contains("--cgroup-parent") || err.contains("user namespace")),
        "{err}"
    );
}

#[test]
fn keeping_cap_sys_time_is_refused_outside_a_boxwatch_vm() {
    let _room = room!();
    if !root_or_skip("keeping_cap_sys_time_is_refused_outside_a_boxwatch_vm") {
        return;
    }
    assert!(
        !std::fs::read_to_string("/proc/cmdline")
            .unwrap()
            .contains("boxwatch.vm=1"),
        "this test runs on a host"
    );
    let (code, err) = refused(&["run", "--keep-cap", "CAP_SYS_TIME", "--", "true"]);
    assert_eq!(code, 125);
    assert!(
        err.contains("set the host's clock") && err.contains("cargo xtask vm"),
        "{err}"
    );
}
