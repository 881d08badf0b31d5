//! Docker and Podman as scenario backends, for real: a representative
//! part of the catalog runs through each engine's CLI on boxwatch's own
//! image and is judged on the engine's defaults (namespaces, the memory
//! and pids limits given as flags, capabilities, seccomp, a time namespace
//! the CLI cannot ask for); nothing is left behind (no container with the
//! run label, no cgroup of the run's containers); a dead run's container
//! is removed by the next run; a refusal of the engine names what to
//! change. Needs root, docker with a daemon (DOCKER_HOST), podman, and
//! busybox-static; under CI=true a missing one fails the test.

use crate::common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

/// What the tests run: quick, not CPU-bound (a busy host makes CPU checks
/// inconclusive, which the CPU tests of the OCI backends cover), and
/// together they touch every kind of verdict.
const SUBSET: &[&str] = &[
    "pid-namespace",
    "uts-namespace",
    "memory-hog",
    "pids-fork-bomb",
    "escape-devices",
    "escape-capabilities",
    "time-namespace",
];

/// The tests take turns: each compares the engines' cgroups before and
/// after its own runs.
static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn engine(kind: &str) -> Command {
    let mut c = Command::new(kind);
    c.stdin(std::process::Stdio::null());
    c
}

fn engine_or_skip(test: &str, kind: &str) -> bool {
    if !root_or_skip(test)
        || !present_or_skip(
            runtime::find_in_path(kind).is_some(),
            test,
            &format!("{kind} (apt-get install docker.io podman)"),
        )
        || !present_or_skip(
            Path::new("/bin/busybox").exists(),
            test,
            "busybox-static (the engine image's shell)",
        )
    {
        return false;
    }
    let answers = engine(kind)
        .args(["info", "--format", "{{.Host}}"])
        .output()
        .is_ok_and(|o| o.status.success() || kind == "docker");
    let answers = answers
        && (kind != "docker"
            || engine("docker")
                .arg("version")
                .output()
                .is_ok_and(|o| o.status.success()));
    present_or_skip(
        answers,
        test,
        &format!("{kind} answering (for docker: a dockerd, DOCKER_HOST)"),
    )
}

/// Containers of `kind` with boxwatch's run label.
fn labelled(kind: &str) -> Vec<String> {
    let out = engine(kind)
        .args([
            "ps",
            "--all",
            "--filter",
            "label=boxwatch.run",
            "--format",
            "{{.Names}}",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{kind} ps: {out:?}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(String::from)
        .collect()
}

/// Every cgroup directory below `/docker` and `/libpod_parent` in every
/// hierarchy (the engines' default parents with the cgroupfs driver) and
/// below boxwatch's own parent.
fn engine_cgroups() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    for m in cgroup_mounts() {
        for parent in ["docker", "libpod_parent", "system.slice", "boxwatch"] {
            if let Ok(rd) = std::fs::read_dir(m.join(parent)) {
                dirs.extend(
                    rd.flatten()
                        .filter(|e| e.path().is_dir())
                        .map(|e| e.path())
                        .filter(|p| {
                            let n = p.file_name().unwrap().to_string_lossy().into_owned();
                            n.len() >= 64 || n.starts_with("libpod-") || n.starts_with("docker-")
                        }),
                );
            }
        }
    }
    dirs.sort();
    dirs
}

/// `boxwatch scenarios --runtime kind --only ... --format json` with `env`.
fn scenarios(kind: &str, only: &[&str], env: &[(&str, &Path)]) -> serde_json::Value {
    let mut args = vec!["scenarios", "--runtime", kind, "--format", "json"];
    for s in only {
        args.extend(["--only", s]);
    }
    let mut c = Command::new(BIN);
    c.args(&args);
    for (k, v) in env {
        c.env(k, v);
    }
    json_report(&c.output().expect("running boxwatch scenarios"))
}

fn verdicts(report: &serde_json::Value) -> Vec<(String, String, String, String)> {
    let mut v = Vec::new();
    for s in report["scenarios"].as_array().unwrap() {
        for c in s["checks"].as_array().unwrap() {
            v.push((
                s["id"].as_str().unwrap().to_string(),
                s["status"].as_str().unwrap().to_string(),
                c["id"].as_str().unwrap().to_string(),
                format!("{} {}", c["verdict"].as_str().unwrap(), c["observed"]),
            ));
        }
    }
    v
}

/// The verdicts every engine must give on this host's kernel.
fn assert_engine_verdicts(kind: &str, report: &serde_json::Value) {
    assert_eq!(report["runtime"]["name"], kind, "{report}");
    let all = verdicts(report);
    let status = |id: &str| {
        all.iter()
            .find(|v| v.0 == id)
            .unwrap_or_else(|| panic!("{id} not run: {all:#?}"))
            .1
            .clone()
    };
    let check = |id: &str, check: &str| {
        all.iter()
            .find(|v| v.0 == id && v.2 == check)
            .unwrap_or_else(|| panic!("{id}/{check} not judged: {all:#?}"))
            .3
            .clone()
    };
    for id in ["pid-namespace", "uts-namespace", "escape-devices"] {
        assert_eq!(status(id), "pass", "{kind} {id}: {all:#?}");
    }
    // The memory limit given as --memory holds (host-oom-free is left
    // out: another process's OOM kill on a shared host is not the engine's).
    for c in [
        "oom-killed",
        "peak-within-limit",
        "limit-applied",
        "placement",
    ] {
        assert!(
            check("memory-hog", c).starts_with("enforced"),
            "{c}: {all:#?}"
        );
    }
    // The engine's defaults are what is judged: neither engine sets
    // no_new_privs unless asked (--security-opt no-new-privileges), which
    // the builtin runtime, runc and crun bundles do; the capability set is
    // Docker's (or, for Podman, smaller), as for the others.
    assert!(
        check("escape-capabilities", "no-new-privs").starts_with("leaked"),
        "{all:#?}"
    );
    assert!(
        check("escape-capabilities", "effective-default").starts_with("isolated"),
        "{all:#?}"
    );
    // The engine's CLI cannot ask for a time namespace: unsupported, with
    // the engine named as the evidence.
    assert_eq!(status("time-namespace"), "unsupported", "{all:#?}");
    let tns = scenario_in(report, "time-namespace");
    let ev = &tns["checks"][0]["evidence"];
    assert_eq!(ev["runtime"], kind, "{tns}");
    // The pids limit given as --pids-limit holds the fork bomb.
    assert_ne!(status("pids-fork-bomb"), "error", "{all:#?}");
    assert!(
        check("pids-fork-bomb", "limit-applied").starts_with("enforced"),
        "{all:#?}"
    );
}

/// A podman configuration this host can run (runc: crun refuses hybrid
/// hosts; rlimits within this process's hard limits), unless the caller
/// gave one in CONTAINERS_CONF.
fn podman_conf(dir: &Path) -> PathBuf {
    if let Some(c) = std::env::var_os("CONTAINERS_CONF") {
        return PathBuf::from(c);
    }
    let nofile = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .unwrap()
        .1;
    let p = dir.join("containers.conf");
    std::fs::write(
        &p,
        format!(
            "[containers]\ndefault_ulimits = [\"nofile={nofile}:{nofile}\", \"nproc=4096:4096\"]\n\
             [engine]\nruntime = \"runc\"\n"
        ),
    )
    .unwrap();
    p
}

#[test]
fn docker_runs_the_catalog_on_its_defaults_and_leaves_nothing() {
    let _room = room!();
    const TEST: &str = "docker_runs_the_catalog_on_its_defaults_and_leaves_nothing";
    if !engine_or_skip(TEST, "docker") {
        return;
    }
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let before = engine_cgroups();
    // A container of a dead run (no process 999999): the next run removes it.
    let dead = "bw-999999-1-0-stale";
    let report = scenarios("docker", &["uts-namespace"], &[]);
    let image = report["runtime"]["version"]
        .as_str()
        .unwrap()
        .split("image ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .expect("the image is named in the notes")
        .to_string();
    let made = engine("docker")
        .args([
            "create",
            "--label",
            "boxwatch.run=999999-1-0",
            "--name",
            dead,
            &image,
            "/bin/true",
        ])
        .output()
        .unwrap();
    assert!(made.status.success(), "{made:?}");

    let report = scenarios("docker", SUBSET, &[]);
    assert_engine_verdicts("docker", &report);
    assert!(
        report["runtime"]["version"]
            .as_str()
            .unwrap()
            .contains("the engine's defaults are judged"),
        "{}",
        report["runtime"]
    );
    assert_eq!(labelled("docker"), Vec::<String>::new(), "left behind");
    assert_eq!(engine_cgroups(), before, "cgroups left behind");

    // A daemon that does not answer is named with the fix.
    let out = Command::new(BIN)
        .args([
            "scenarios",
            "--runtime",
            "docker",
            "--only",
            "uts-namespace",
        ])
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(125), "{err}");
    assert!(
        err.contains("the Docker daemon does not answer") && err.contains("DOCKER_HOST"),
        "{err}"
    );
}

#[test]
fn podman_runs_the_catalog_and_names_what_to_change_when_refused() {
    let _room = room!();
    const TEST: &str = "podman_runs_the_catalog_and_names_what_to_change_when_refused";
    if !engine_or_skip(TEST, "podman") {
        return;
    }
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let before = engine_cgroups();
    let conf = podman_conf(dir.path());
    let report = scenarios("podman", SUBSET, &[("CONTAINERS_CONF", &conf)]);
    assert_engine_verdicts("podman", &report);
    assert_eq!(labelled("podman"), Vec::<String>::new(), "left behind");
    assert_eq!(engine_cgroups(), before, "cgroups left behind");

    // An rlimit no process may set (above fs.nr_open): the engine's
    // runtime refuses, and the error names the limit and the setting.
    let nr_open: u64 = std::fs::read_to_string("/proc/sys/fs/nr_open")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let bad = dir.path().join("refused.conf");
    let base = std::fs::read_to_string(&conf).unwrap_or_default();
    let runtime_line = if base.contains("runtime = \"runc\"") {
        "[engine]\nruntime = \"runc\"\n"
    } else {
        ""
    };
    std::fs::write(
        &bad,
        format!(
            "[containers]\ndefault_ulimits = [\"nofile={0}:{0}\"]\n{runtime_line}",
            nr_open + 1
        ),
    )
    .unwrap();
    let report = scenarios("podman", &["uts-namespace"], &[("CONTAINERS_CONF", &bad)]);
    let s = &report["scenarios"][0];
    assert_eq!(s["status"], "error", "{s}");
    let why = s["checks"][0]["observed"]
        .as_str()
        .unwrap_or_default()
        .to_string()
        + s["error"].as_str().unwrap_or_default();
    assert!(
        why.contains("RLIMIT_NOFILE") && why.contains("default_ulimits"),
        "{s}"
    );
    assert_eq!(labelled("podman"), Vec::<String>::new(), "left behind");
}
