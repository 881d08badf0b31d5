//! runc and crun behind `runtime::backend`: the same spec runs, is limited,
//! killed and cleaned up as with the builtin runtime, and nothing is left
//! behind (cgroups in every hierarchy, the runtime's state, the bundle).
//! Needs root, runc and crun; under CI=true a missing one fails the test.

use crate::common::*;
use runtime::backend::{self, Backend, BackendKind};
use runtime::{ContainerSpec, Exit, RuntimeConfig, Stdio};
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

fn open(kind: BackendKind) -> Box<dyn Backend> {
    backend::open(kind, RuntimeConfig::new(BIN.into()), None).unwrap()
}

fn pipe() -> (std::fs::File, OwnedFd) {
    let (r, w) = nix::unistd::pipe().unwrap();
    (std::fs::File::from(r), w)
}

fn sh(name: &str, script: &str) -> ContainerSpec {
    ContainerSpec::new(name, vec!["/bin/sh".into(), "-c".into(), script.into()])
}

/// Everything a backend's run may have created: its cgroup directory in
/// every hierarchy, and its entries in the runtime's state and bundles.
fn leftovers(run_cgroup: &Path, run_id: &str) -> Vec<PathBuf> {
    let rel = run_cgroup.strip_prefix("/").unwrap();
    let mut left: Vec<PathBuf> = cgroup_mounts()
        .into_iter()
        .map(|m| m.join(rel))
        .filter(|d| d.exists())
        .collect();
    // Container ids are `bw-<run-id>-<name>`; run 1's prefix must not
    // match runs 11 and 12 of a parallel test in this process.
    let id_prefix = format!("bw-{run_id}-");
    left.extend(
        ["runc", "crun"]
            .iter()
            .filter_map(|r| std::fs::read_dir(Path::new("/run/boxwatch/oci").join(r)).ok())
            .flat_map(|rd| rd.flatten())
            .filter(|e| e.file_name().to_string_lossy().starts_with(&id_prefix))
            .map(|e| e.path()),
    );
    let state = Path::new("/run/boxwatch").join(run_id);
    if state.exists() {
        left.push(state);
    }
    left
}

fn run_id_of(run_cgroup: &Path) -> String {
    run_cgroup
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

fn limits_and_namespaces(kind: BackendKind) {
    let b = open(kind);
    assert!(
        b.version().contains(kind.as_str()),
        "version {:?}",
        b.version()
    );
    let run_cg = b.run_cgroup();
    // Held at `read` until the host side has looked: a process that has
    // exited has no cgroup left in /proc/<pid>/cgroup (a zombie's reads /).
    let mut spec = sh(
        "limits",
        "echo pid=$$; hostname; \
         grep -c . /proc/self/mountinfo >/dev/null && echo mounts-ok; \
         [ -x /.boxwatch/boxwatch ] && echo exe-ok; read go; exit 3",
    );
    spec.hostname = Some("box1".into());
    spec.limits.cpu = Some("0.2".parse().unwrap());
    spec.limits.memory = Some("64M".parse().unwrap());
    spec.limits.pids = Some(32);

    let (mut out, w) = pipe();
    let (r, mut go) = {
        let (r, w) = nix::unistd::pipe().unwrap();
        (r, std::fs::File::from(w))
    };
    let c = b
        .spawn(
            &spec,
            Stdio {
                stdin: Some(r),
                stdout: Some(w),
                ..Stdio::default()
            },
        )
        .unwrap();
    let pid = c.host_pid();
    assert_ne!(pid, 1);
    assert_eq!(c.cgroup_path(), run_cg.join("limits"));
    // The judge's way, on v1 or v2 alike: the container's cgroups from
    // /proc/<pid>/cgroup, the limits from cgroupfs, both through
    // probes::host.
    let host = probes::host::Host::new();
    let layout = host.layout().unwrap();
    let stats = |controller: &str| {
        let cg = host
            .pid_cgroup(&layout, pid, controller)
            .unwrap()
            .unwrap_or_else(|| panic!("{kind}: no {controller} cgroup for {pid}"));
        assert_eq!(
            Path::new(cg.as_str()),
            c.cgroup_path(),
            "{kind}: {controller}"
        );
        layout.stats(&cg).unwrap()
    };
    let cpu = stats("cpu").cpu_max.expect("a CPU limit in cgroupfs");
    assert_eq!(
        (cpu.quota_us, cpu.period_us),
        (Some(20000), 100000),
        "{kind}"
    );
    assert_eq!(
        stats("memory").memory_limit,
        Some(probes::host::Limit::Value(64 << 20)),
        "{kind}"
    );
    assert_eq!(
        stats("pids").pids_max,
        Some(probes::host::Limit::Value(32)),
        "{kind}"
    );
    go.write_all(b"go\n").unwrap();
    drop(go);
    let outcome = c.wait().unwrap();
    let mut text = String::new();
    out.read_to_string(&mut text).unwrap();
    assert_eq!(outcome.exit, Exit::Code(3), "{text}");
    assert!(text.starts_with("pid=1\nbox1\n"), "{kind}: {text}");
    assert!(
        text.contains("mounts-ok") && text.contains("exe-ok"),
        "{text}"
    );
    assert!(!outcome.oom_killed);
    drop(b);
    let left = leftovers(&run_cg, &run_id_of(&run_cg));
    assert!(left.is_empty(), "{kind} left behind: {left:?}");
}

#[test]
fn runc_runs_a_limited_container_and_leaves_nothing() {
    let _room = room!();
    if oci_or_skip(
        "runc_runs_a_limited_container_and_leaves_nothing",
        BackendKind::Runc,
    ) {
        limits_and_namespaces(BackendKind::Runc);
    }
}

#[test]
fn crun_runs_a_limited_container_and_leaves_nothing() {
    let _room = room!();
    if oci_or_skip(
        "crun_runs_a_limited_container_and_leaves_nothing",
        BackendKind::Crun,
    ) {
        limits_and_namespaces(BackendKind::Crun);
    }
}

#[test]
fn crun_on_a_hybrid_host_says_the_cgroup2_mount_was_hidden() {
    let _room = room!();
    if !oci_or_skip(
        "crun_on_a_hybrid_host_says_the_cgroup2_mount_was_hidden",
        BackendKind::Crun,
    ) {
        return;
    }
    let hybrid = runtime::cgroup::detect().unwrap().mode() == runtime::CgroupMode::Hybrid;
    let b = open(BackendKind::Crun);
    let notes = b.notes().join("\n");
    assert_eq!(notes.contains("cgroup2 mount hidden"), hybrid, "{notes}");
    // The host still has its cgroup2 mount: only crun's namespace lost it.
    let (outcome, _) = run_captured(b.as_ref(), &sh("hybrid", "true"));
    assert_eq!(outcome.exit, Exit::Code(0));
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    if hybrid {
        assert!(
            info.contains(" - cgroup2 "),
            "the host lost its cgroup2 mount"
        );
    }
}

fn oom_and_kill(kind: BackendKind) {
    let b = open(kind);
    let run_cg = b.run_cgroup();
    let mut hog = sh("hog", "exec tail /dev/zero");
    hog.limits.memory = Some("32M".parse().unwrap());
    let (outcome, _) = run_captured(b.as_ref(), &hog);
    assert_eq!(outcome.exit, Exit::Signal(9), "{kind}: {outcome:?}");
    assert!(
        outcome.oom_killed && outcome.oom_kills >= 1,
        "{kind}: {outcome:?}"
    );

    // Killed from another handle while running, with a process left over.
    let c = b
        .spawn(
            &sh("killed", "sleep 100 & exec sleep 100"),
            Stdio::default(),
        )
        .unwrap();
    let killer = c.killer();
    let t = std::time::Instant::now();
    killer.kill().unwrap();
    let outcome = c.wait().unwrap();
    assert_eq!(outcome.exit, Exit::Signal(9));
    assert!(t.elapsed() < std::time::Duration::from_secs(10));

    // Dropped without wait: killed and removed all the same.
    let c = b
        .spawn(&sh("dropped", "sleep 100"), Stdio::default())
        .unwrap();
    let pid = c.host_pid();
    drop(c);
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "{pid} survived"
    );
    drop(b);
    let left = leftovers(&run_cg, &run_id_of(&run_cg));
    assert!(left.is_empty(), "{kind} left behind: {left:?}");
}

#[test]
fn runc_containers_are_oom_killed_killed_and_dropped_cleanly() {
    let _room = room!();
    if oci_or_skip(
        "runc_containers_are_oom_killed_killed_and_dropped_cleanly",
        BackendKind::Runc,
    ) {
        oom_and_kill(BackendKind::Runc);
    }
}

#[test]
fn crun_containers_are_oom_killed_killed_and_dropped_cleanly() {
    let _room = room!();
    if oci_or_skip(
        "crun_containers_are_oom_killed_killed_and_dropped_cleanly",
        BackendKind::Crun,
    ) {
        oom_and_kill(BackendKind::Crun);
    }
}

fn failures_leave_nothing(kind: BackendKind) {
    let b = open(kind);
    let run_cg = b.run_cgroup();
    let e = b
        .spawn(
            &ContainerSpec::new("missing", vec!["/no/such/binary".into()]),
            Stdio {
                stderr: Some(pipe().1),
                ..Stdio::default()
            },
        )
        .unwrap_err();
    assert!(e.to_string().contains(kind.as_str()), "{e}");
    let mut host = sh("hostroot", "true");
    host.rootfs = runtime::RootfsSpec::Host;
    let e = b.spawn(&host, Stdio::default()).unwrap_err();
    assert!(e.to_string().contains("builtin"), "{e}");
    drop(b);
    let left = leftovers(&run_cg, &run_id_of(&run_cg));
    assert!(left.is_empty(), "{kind} left behind: {left:?}");
}

#[test]
fn runc_failures_leave_nothing_behind() {
    let _room = room!();
    if oci_or_skip("runc_failures_leave_nothing_behind", BackendKind::Runc) {
        failures_leave_nothing(BackendKind::Runc);
    }
}

#[test]
fn crun_failures_leave_nothing_behind() {
    let _room = room!();
    if oci_or_skip("crun_failures_leave_nothing_behind", BackendKind::Crun) {
        failures_leave_nothing(BackendKind::Crun);
    }
}

#[test]
fn with_init_boxwatch_init_is_pid_1_for_both_runtimes() {
    let _room = room!();
    for kind in [BackendKind::Runc, BackendKind::Crun] {
        if !oci_or_skip("with_init_boxwatch_init_is_pid_1_for_both_runtimes", kind) {
            continue;
        }
        let b = open(kind);
        let mut spec = sh(
            "init",
            "echo $$; tr '\\0' ' ' < /proc/1/cmdline; echo; exit 4",
        );
        spec.init = true;
        let (outcome, text) = run_captured(b.as_ref(), &spec);
        assert_eq!(outcome.exit, Exit::Code(4), "{kind}: {text}");
        let (entry_pid, pid1) = text.split_once('\n').unwrap();
        assert_ne!(entry_pid, "1", "{kind}: the entry must not be PID 1");
        assert!(
            pid1.starts_with("/.boxwatch/boxwatch __boxwatch-oci-init -- /bin/sh"),
            "{kind}: {text}"
        );
    }
}

/// Backends come and go in parallel, as parallel tests and other boxwatch
/// processes make them: one finishing removes the shared state root
/// (`/run/boxwatch/oci/<rt>`) and its empty parents only when nobody else
/// uses them, and creating them again starts over when they vanish
/// half-way, so no `<rt> create --root` or bundle write fails for it.
#[test]
fn backends_coming_and_going_in_parallel_keep_their_shared_directories() {
    let _room = room!();
    let kinds: Vec<BackendKind> = [BackendKind::Runc, BackendKind::Crun]
        .into_iter()
        .filter(|k| {
            oci_or_skip(
                "backends_coming_and_going_in_parallel_keep_their_shared_directories",
                *k,
            )
        })
        .collect();
    if kinds.is_empty() {
        return;
    }
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let kinds = kinds.clone();
            std::thread::spawn(move || {
                for n in 0..6 {
                    let kind = kinds[(t + n) % kinds.len()];
                    let b = open(kind);
                    let run_cg = b.run_cgroup();
                    let (outcome, _) = run_captured(b.as_ref(), &sh(&format!("p{t}-{n}"), "true"));
                    assert_eq!(outcome.exit, Exit::Code(0), "{kind}");
                    drop(b);
                    let left = leftovers(&run_cg, &run_id_of(&run_cg));
                    assert!(left.is_empty(), "{kind} left behind: {left:?}");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

/// runc and crun make missing parent cgroups with a plain mkdir: if the
/// shared `/boxwatch` were empty when the backend opened, another run
/// ending (it removes the parent when empty) could take it away between
/// their stat and their mkdir, failing `create` with ENOENT. An open
/// backend's run directory exists in every hierarchy, so the parent is
/// never empty while the run lives, and it goes when the backend does.
#[test]
fn an_open_backend_holds_its_run_cgroup_in_every_hierarchy() {
    let _room = room!();
    for kind in [BackendKind::Runc, BackendKind::Crun] {
        if !oci_or_skip(
            "an_open_backend_holds_its_run_cgroup_in_every_hierarchy",
            kind,
        ) {
            continue;
        }
        let b = open(kind);
        let run_cg = b.run_cgroup();
        let rel = run_cg.strip_prefix("/").unwrap();
        let parent = rel.parent().unwrap();
        for m in cgroup_mounts() {
            assert!(m.join(rel).is_dir(), "{kind}: no {}", m.join(rel).display());
            // What another run does as it ends: fails while this run lives.
            assert!(
                std::fs::remove_dir(m.join(parent)).is_err(),
                "{kind}: the shared parent in {} could be removed",
                m.display()
            );
        }
        let (outcome, _) = run_captured(b.as_ref(), &sh("held", "true"));
        assert_eq!(outcome.exit, Exit::Code(0), "{kind}");
        drop(b);
        let left = leftovers(&run_cg, &run_id_of(&run_cg));
        assert!(left.is_empty(), "{kind} left behind: {left:?}");
    }
}
