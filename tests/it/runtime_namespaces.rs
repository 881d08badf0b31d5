//! Each namespace boxwatch creates is really separate from the host's.

use crate::common::*;

/// The ns link of the container's own PID 1, as seen inside.
fn inside_ns(opts: &[&str], ns: &str) -> String {
    let (code, out, err) = run_sh(opts, &format!("readlink /proc/self/ns/{ns}"));
    assert_eq!(code, 0, "{err}");
    out.trim().to_string()
}

#[test]
fn every_default_namespace_differs_from_the_hosts() {
    let _room = room!();
    if !root_or_skip("every_default_namespace_differs_from_the_hosts") {
        return;
    }
    for ns in ["pid", "mnt", "uts", "ipc", "net", "cgroup"] {
        let inside = inside_ns(&[], ns);
        assert!(inside.starts_with(&format!("{ns}:[")), "{ns}: {inside}");
        assert_ne!(inside, host_ns(ns), "{ns} namespace is the host's");
    }
}

#[test]
fn shared_namespaces_are_the_hosts() {
    let _room = room!();
    if !root_or_skip("shared_namespaces_are_the_hosts") {
        return;
    }
    assert_eq!(inside_ns(&["--share", "net"], "net"), host_ns("net"));
    assert_eq!(inside_ns(&["--share", "ipc"], "ipc"), host_ns("ipc"));
}

#[test]
fn the_entry_is_pid_1_and_sees_only_its_own_processes() {
    let _room = room!();
    if !root_or_skip("the_entry_is_pid_1_and_sees_only_its_own_processes") {
        return;
    }
    let (code, out, err) = run_sh(&[], "echo $$; ls /proc | grep -c '^[0-9]'");
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "1");
    let n: u32 = lines[1].parse().unwrap();
    assert!(n <= 4, "{n} processes visible: the host's leak in");
}

#[test]
fn the_hostname_is_the_containers_and_the_host_keeps_its_own() {
    let _room = room!();
    if !root_or_skip("the_hostname_is_the_containers_and_the_host_keeps_its_own") {
        return;
    }
    let host_before = nix::unistd::gethostname().unwrap();
    let (code, out, _) = run_sh(
        &["--hostname", "boxy"],
        "hostname; cat /etc/hostname; hostname changed-inside 2>/dev/null; true",
    );
    assert_eq!(code, 0);
    assert_eq!(out, "boxy\nboxy\n");
    assert_eq!(nix::unistd::gethostname().unwrap(), host_before);
}

#[test]
fn host_mounts_are_invisible_and_inside_mounts_stay_inside() {
    let _room = room!();
    if !root_or_skip("host_mounts_are_invisible_and_inside_mounts_stay_inside") {
        return;
    }
    // The host's root is gone: the workspace directory of this test is not
    // there, "/" is the container's tmpfs, and the host's cgroup mounts
    // (which every host running this test has) are not in the mount table.
    let host = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        host.contains(" /sys/fs/cgroup"),
        "the host has cgroup mounts"
    );
    let here = env!("CARGO_MANIFEST_DIR");
    let root_fs =
        r#"awk '$5=="/" {for(i=7;i<=NF;i++) if($i=="-"){print $(i+1)}}' /proc/self/mountinfo"#;
    let script = format!(
        "test -e {here} && echo visible; {root_fs}; grep -c ' /sys/fs/cgroup' /proc/self/mountinfo; \
         mkdir -p /tmp/m && mount -t tmpfs marker-inside /tmp/m && grep -c marker-inside /proc/self/mounts"
    );
    let (code, out, err) = run_sh(&["--keep-cap", "sys_admin"], &script);
    assert_eq!(out, "tmpfs\n0\n1\n", "{err}");
    assert_eq!(code, 0, "{err}");
    let host = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !host.contains("marker-inside"),
        "a mount inside leaked to the host"
    );
}

#[test]
fn the_network_has_only_loopback() {
    let _room = room!();
    if !root_or_skip("the_network_has_only_loopback") {
        return;
    }
    let (code, out, err) = run_sh(&[], "ls /sys/class/net");
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "lo");
}

#[test]
fn the_cgroup_namespace_is_rooted_at_the_containers_cgroup() {
    let _room = room!();
    if !root_or_skip("the_cgroup_namespace_is_rooted_at_the_containers_cgroup") {
        return;
    }
    let (code, out, _) = run_sh(&["--memory", "64M"], "cat /proc/self/cgroup");
    assert_eq!(code, 0);
    assert!(!out.trim().is_empty(), "/proc/self/cgroup was empty");
    for line in out.lines() {
        assert!(
            line.ends_with(":/"),
            "cgroup path leaks the host's tree: {line}"
        );
    }
}

#[test]
fn a_user_namespace_maps_root_to_an_unprivileged_range() {
    let _room = room!();
    if !root_or_skip("a_user_namespace_maps_root_to_an_unprivileged_range") {
        return;
    }
    let (code, out, err) = run_sh(
        &["--userns"],
        "id -u; cat /proc/self/uid_map; readlink /proc/self/ns/user",
    );
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "0");
    let map: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(map, ["0", "100000", "65536"]);
    assert_ne!(lines[2], host_ns("user"));
}

#[test]
fn a_time_namespace_offsets_the_monotonic_clock_but_not_realtime() {
    let _room = room!();
    if !root_or_skip("a_time_namespace_offsets_the_monotonic_clock_but_not_realtime") {
        return;
    }
    let host_uptime = || -> f64 {
        std::fs::read_to_string("/proc/uptime")
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    let before = host_uptime();
    let (code, out, err) = run_sh(
        &["--timens-offset", "86400"],
        "cat /proc/uptime; date +%s; readlink /proc/self/ns/time",
    );
    let after = host_uptime();
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    let inside: f64 = lines[0].split_whitespace().next().unwrap().parse().unwrap();
    assert!(
        inside >= before + 86400.0 && inside <= after + 86400.0 + 1.0,
        "uptime inside {inside}, host {before}..{after}"
    );
    let realtime: i64 = lines[1].parse().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!(
        (realtime - now).abs() <= 2,
        "realtime moved: {realtime} vs {now}"
    );
    assert_ne!(lines[2], host_ns("time"));
}
