//! Every escape probe run on the host itself, outside any container, as
//! root with every capability and no seccomp filter: the worst case for a
//! probe that was not harmless. Nothing on the host may change: the
//! sysctls the probes come near and all of kernel.*, the mount table, the
//! loaded modules, swap, the kexec state, the clock; and no device node
//! the probe made is left. Needs root; under CI=true it never skips.

use crate::common::*;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

/// Sysctls near what the probes touch, read before and after.
const SYSCTLS: [&str; 14] = [
    "kernel/core_pattern",
    "kernel/modprobe",
    "kernel/sysrq",
    "kernel/modules_disabled",
    "kernel/kexec_load_disabled",
    "kernel/unprivileged_bpf_disabled",
    "kernel/perf_event_paranoid",
    "kernel/keys/maxkeys",
    "vm/unprivileged_userfaultfd",
    "vm/swappiness",
    "user/max_user_namespaces",
    "kernel/ctrl-alt-del",
    "kernel/panic",
    "kernel/printk",
];

/// Files of /proc/sys/kernel that move on their own.
const VOLATILE: [&str; 3] = ["ns_last_pid", "tainted", "random"];

fn read(p: &Path) -> Option<String> {
    std::fs::read_to_string(p).ok()
}

#[derive(Debug, PartialEq)]
struct HostState {
    sysctls: BTreeMap<String, Option<String>>,
    mounts: Vec<String>,
    modules: Option<String>,
    swaps: Option<String>,
    kexec: (Option<String>, Option<String>),
}

fn host_state() -> HostState {
    let mut sysctls = BTreeMap::new();
    for s in SYSCTLS {
        sysctls.insert(s.to_string(), read(&Path::new("/proc/sys").join(s)));
    }
    for e in std::fs::read_dir("/proc/sys/kernel").unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if e.file_type().is_ok_and(|t| t.is_file()) && !VOLATILE.contains(&name.as_str()) {
            sysctls.insert(format!("kernel/{name}"), read(&e.path()));
        }
    }
    // Mount points and types of this mount namespace; other boxwatch runs'
    // own mounts (lxcfs, state directories) come and go on a shared host.
    let mut mounts: Vec<String> = read(Path::new("/proc/self/mountinfo"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            let sep = f.iter().position(|x| *x == "-")?;
            Some(format!("{} {}", f.get(4)?, f.get(sep + 1)?))
        })
        .filter(|m| !m.contains("boxwatch") && !m.contains("lxcfs"))
        .collect();
    mounts.sort();
    HostState {
        sysctls,
        mounts,
        modules: read(Path::new("/proc/modules")),
        swaps: read(Path::new("/proc/swaps")),
        kexec: (
            read(Path::new("/sys/kernel/kexec_loaded")),
            read(Path::new("/sys/kernel/kexec_crash_loaded")),
        ),
    }
}

/// CLOCK_REALTIME minus CLOCK_MONOTONIC, in seconds.
fn clock_offset() -> f64 {
    let t = |id| {
        let ts = nix::time::clock_gettime(id).unwrap();
        ts.tv_sec() as f64 + ts.tv_nsec() as f64 / 1e9
    };
    t(nix::time::ClockId::CLOCK_REALTIME) - t(nix::time::ClockId::CLOCK_MONOTONIC)
}

fn leftovers() -> Vec<String> {
    ["/tmp", "/dev", "/dev/shm", "/run", "/var", "/"]
        .iter()
        .filter_map(|d| std::fs::read_dir(d).ok())
        .flat_map(|rd| rd.flatten())
        .map(|e| e.path().display().to_string())
        .filter(|p| p.contains(".boxwatch-blk-") || p.contains(".boxwatch-devprobe-"))
        .collect()
}

#[test]
fn every_escape_probe_run_on_the_host_changes_nothing() {
    let _room = room!();
    if !root_or_skip("every_escape_probe_run_on_the_host_changes_nothing") {
        return;
    }
    let before = host_state();
    let clock_before = clock_offset();
    let left_before = leftovers();

    // The host side's facts, as the runner passes them, and every probe.
    let mut args = vec![
        "workload".to_string(),
        "escape".into(),
        "--probe".into(),
        "all".into(),
    ];
    args.extend(scenarios::workload::escape::HostFacts::read().args());
    let out = Command::new(BIN).args(&args).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    // A `start` line (the workload asks the harness to look), then the result.
    let last = stdout.lines().rfind(|l| !l.trim().is_empty()).unwrap_or("");
    let result: serde_json::Value = serde_json::from_str(last).unwrap();
    assert_eq!(result["event"], "result", "{stdout}");

    let after = host_state();
    assert_eq!(before, after, "the probes changed the host");
    let step = (clock_offset() - clock_before).abs();
    assert!(step < 0.5, "the host's clock stepped by {step} s");
    assert_eq!(
        leftovers(),
        left_before,
        "a probe left a device node behind"
    );

    // The probes did run: on the host nothing is filtered or dropped.
    for key in scenarios::workload::escape::RESULT_KEYS {
        if *key == "host_block_device_opened" && result.get(*key).is_none() {
            continue; // no block device given: said in block_device_probe
        }
        assert!(result.get(*key).is_some(), "{key} missing from {result}");
    }
    assert_eq!(result["seccomp_mode"], 0, "{result}");
    assert_ne!(result["dangerous_caps"], "none", "{result}");
    let allowed = result["allowed_syscalls"].as_str().unwrap();
    for call in [
        "keyctl",
        "add_key",
        "mount",
        "unshare(CLONE_NEWUSER)",
        "setns",
    ] {
        assert!(
            allowed.contains(call),
            "{call} not reached on the host: {allowed}"
        );
    }
}
