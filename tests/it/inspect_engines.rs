//! `boxwatch inspect docker:NAME`, `podman:NAME` and a bare name or id, on
//! real containers the test starts and removes: the engine gives the host
//! PID, and the judge's findings are the kernel's (the limits the
//! containers were given, read back from cgroupfs; the namespaces; /proc
//! inside against the memory limit). A gVisor (runsc) container is said to
//! be sandboxed, its namespaces are not judged on the sandbox process, and
//! its inside view comes through the engine, on gVisor's kernel. A name
//! both engines know, one neither knows, and a stopped container get clear
//! refusals.
//!
//! Docker is `DOCKER_HOST`'s daemon (CI starts one) or a private dockerd;
//! Podman keeps its state in a temporary directory (`tests/it/common/
//! engines.rs`). Needs root, docker.io, podman, runc, runsc and
//! busybox-static; under CI=true a missing one fails the test.

use crate::common::engines::{self, Docker, Podman};
use crate::common::*;
use serde_json::Value;
use std::process::Command;

/// `boxwatch inspect <args>` with the engines' environment: (code,
/// stdout, stderr).
fn inspect(docker: &Docker, podman: &Podman, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN)
        .arg("inspect")
        .args(args)
        .env("DOCKER_HOST", &docker.host)
        .envs(podman.env())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn refs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// The test's cgroup parent, removed in every hierarchy when dropped
/// (after the engines, which are dropped first).
struct Parent(String);

impl Drop for Parent {
    fn drop(&mut self) {
        engines::remove_cgroup_parent(&self.0);
    }
}

fn inspect_json(docker: &Docker, podman: &Podman, target: &str) -> Value {
    let (code, out, err) = inspect(docker, podman, &[target, "--format", "json"]);
    assert_eq!(code, 0, "inspect {target}: {err}\n{out}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("inspect {target}: {e}: {out}"))
}

fn namespace(found: &Value, ns: &str) -> Value {
    found["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["namespace"] == ns)
        .unwrap_or_else(|| panic!("no {ns} in {found}"))["isolated"]
        .clone()
}

fn finding(found: &Value, check: &str) -> Option<bool> {
    found["proc_findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["check"] == check)
        .map(|p| p["leaked"].as_bool().unwrap())
}

/// What the judge must find in an ordinary (runc) container of either
/// engine, started with 64 MiB and 40 pids: the engine's PID, the limits
/// read back from the kernel, its own namespaces, the hostname the engine
/// gave it (the short id) seen from inside, and /proc/meminfo leaking the
/// host's memory (no lxcfs).
fn judged_like_runc(found: &Value, engine: &str, id: &str, engine_pid: &str, parent: &str) {
    let what = format!("{engine} {id}");
    assert_eq!(found["container"]["engine"], engine, "{what}: {found}");
    assert_eq!(found["container"]["id"], id, "{what}");
    assert_eq!(found["pid"].to_string(), engine_pid, "{what}");
    assert_eq!(found["sandboxed"], false, "{what}");
    assert_eq!(found["inside_through"], "setns", "{what}");
    // The kernel's cgroup, under the test's parent, named by the id.
    for (c, path) in found["cgroups"].as_object().unwrap() {
        let path = path.as_str().unwrap();
        assert!(
            path.starts_with(parent) && path.contains(id),
            "{what}: {c} cgroup {path}"
        );
    }
    assert_eq!(found["limits"]["memory_limit_bytes"], 64 << 20, "{what}");
    assert_eq!(found["limits"]["pids_max"], 40, "{what}");
    for ns in ["pid", "mnt", "uts", "ipc", "net"] {
        assert_eq!(namespace(found, ns), true, "{what}: {ns}");
    }
    assert_eq!(found["security"]["pid_inside"], 1, "{what}");
    assert_eq!(found["inside"]["hostname"], &id[..12], "{what}");
    assert_eq!(finding(found, "meminfo"), Some(true), "{what}: {found}");
}

#[test]
fn inspect_judges_docker_and_podman_containers_by_their_names() {
    let _room = room!();
    let test = "inspect_judges_docker_and_podman_containers_by_their_names";
    let need = ["docker", "dockerd", "podman", "runc", "runsc"];
    let missing = engines::missing(&need);
    if !present_or_skip(missing.is_none(), test, missing.as_deref().unwrap_or("")) {
        return;
    }
    let tag = format!("bw-inspect-{}", std::process::id());
    let parent = format!("/boxwatch-inspect-{}", std::process::id());
    let guard = Parent(parent.clone());
    let image = format!("{tag}:1");
    let scratch = tempfile::tempdir().unwrap();
    let mut docker = Docker::start();
    let mut podman = Podman::new();
    docker.import_busybox(scratch.path(), &image);
    podman.import_busybox(&image);
    let limits = [
        "--network",
        "none",
        "--memory",
        "64m",
        "--cgroup-parent",
        &parent,
    ];
    let run_args = |name: &str, runtime: &str| -> Vec<String> {
        let mut a: Vec<String> = vec!["--name".into(), name.into(), "--runtime".into()];
        a.push(runtime.into());
        a.extend(limits.iter().map(|s| s.to_string()));
        // pids.max counts gVisor's own threads: a low limit stops its
        // sandbox, so only the runc containers get one.
        if !runtime.ends_with("runsc") {
            a.extend(["--pids-limit".into(), "40".into()]);
        }
        a.extend([image.clone(), "sleep".into(), "300".into()]);
        a
    };

    // One container per engine with runc, each under its own name.
    let d_name = format!("{tag}-d");
    let a = run_args(&d_name, "runc");
    let d_id = docker.start_container(&refs(&a));
    let p_name = format!("{tag}-p");
    let a = run_args(&p_name, "runc");
    let p_id = podman.start_container(&[], &refs(&a));
    let d_pid = docker.run(&["inspect", "-f", "{{.State.Pid}}", &d_id]);
    let p_pid = podman.run(&["inspect", "-f", "{{.State.Pid}}", &p_id]);

    let found = inspect_json(&docker, &podman, &format!("docker:{d_name}"));
    judged_like_runc(&found, "docker", &d_id, &d_pid, &parent);
    let found = inspect_json(&docker, &podman, &format!("podman:{p_name}"));
    judged_like_runc(&found, "podman", &p_id, &p_pid, &parent);
    assert!(
        found["notes"][0]
            .as_str()
            .unwrap()
            .contains("the cgroup podman reports"),
        "podman's cgroup against the kernel's: {found}"
    );
    // Bare names and ids find the one engine that knows them.
    let found = inspect_json(&docker, &podman, &p_name);
    assert_eq!(found["container"]["engine"], "podman");
    let found = inspect_json(&docker, &podman, &d_id[..12]);
    assert_eq!(found["container"]["engine"], "docker");
    let (code, human, _) = inspect(&docker, &podman, &[&d_name]);
    assert_eq!(code, 0);
    assert!(
        human.starts_with(&format!(
            "boxwatch inspect: docker container {d_name} ({})",
            &d_id[..12]
        )),
        "{human}"
    );

    // gVisor through podman: sandboxed, judged through the engine.
    let g_name = format!("{tag}-g");
    let a = run_args(&g_name, "runsc");
    let g_id = podman.start_container(
        &[
            "--runtime-flag",
            "network=none",
            "--runtime-flag",
            "platform=ptrace",
        ],
        &refs(&a),
    );
    let found = inspect_json(&docker, &podman, &format!("podman:{g_name}"));
    assert_eq!(found["sandboxed"], true, "{found}");
    assert!(
        found["container"]["runtime"]
            .as_str()
            .unwrap()
            .ends_with("runsc"),
        "{found}"
    );
    assert!(
        found["command"]
            .as_str()
            .unwrap()
            .starts_with("runsc-sandbox"),
        "the engine's PID is gVisor's sandbox: {found}"
    );
    for n in found["namespaces"].as_array().unwrap() {
        assert!(
            n["isolated"].is_null(),
            "a namespace judged on the sandbox: {n}"
        );
    }
    assert!(
        found["inside_through"]
            .as_str()
            .unwrap()
            .starts_with("podman exec"),
        "{found}"
    );
    assert_eq!(found["inside"]["hostname"], &g_id[..12], "{found}");
    // gVisor sizes its /proc/meminfo by the limit: no leak, judged on
    // what the workload's kernel says against the sandbox's cgroup.
    assert_eq!(found["limits"]["memory_limit_bytes"], 64 << 20);
    assert_eq!(finding(&found, "meminfo"), Some(false), "{found}");
    let (code, human, _) = inspect(&docker, &podman, &[&g_name]);
    assert_eq!(code, 0, "{human}");
    assert!(
        human.contains("note: sandboxed:")
            && human.contains("pid     n/a: sandboxed")
            && human.contains("through podman exec"),
        "{human}"
    );
    // Docker with gVisor, where the daemon has runsc.
    if docker.has_runtime("runsc") {
        let n = format!("{tag}-dg");
        let a = run_args(&n, "runsc");
        docker.start_container(&refs(&a));
        let found = inspect_json(&docker, &podman, &format!("docker:{n}"));
        assert_eq!(found["sandboxed"], true, "{found}");
        assert_eq!(finding(&found, "meminfo"), Some(false), "{found}");
    } else {
        eprintln!("{test}: the docker daemon has no runsc runtime: docker with gVisor not tried");
    }

    // Refusals: a name both know, a name neither knows, a stopped one.
    let both = format!("{tag}-both");
    let a = run_args(&both, "runc");
    docker.start_container(&refs(&a));
    podman.start_container(&[], &refs(&a));
    let (code, _, err) = inspect(&docker, &podman, &[&both]);
    assert_eq!(code, 125, "{err}");
    assert!(
        err.contains("is a container of both docker")
            && err.contains(&format!("say docker:{both} or podman:{both}")),
        "{err}"
    );
    let none = format!("{tag}-none");
    let (code, _, err) = inspect(&docker, &podman, &[&none]);
    assert_eq!(code, 125, "{err}");
    assert!(
        err.contains(&format!("no container \"{none}\""))
            && err.contains("docker has no such container")
            && err.contains("podman has no such container"),
        "{err}"
    );
    let stopped = format!("{tag}-stopped");
    let id = docker.run(&[
        "create",
        "--name",
        &stopped,
        "--cgroup-parent",
        &parent,
        &image,
        "true",
    ]);
    docker.adopt(&id);
    let (code, _, err) = inspect(&docker, &podman, &[&format!("docker:{stopped}")]);
    assert_eq!(code, 125, "{err}");
    assert!(
        err.contains(&format!(
            "docker container {stopped} is not running (status created)"
        )),
        "{err}"
    );

    drop(docker);
    drop(podman);
    assert!(
        engines::remove_cgroup_parent(&parent),
        "{parent} is left behind"
    );
    drop(guard);
}
