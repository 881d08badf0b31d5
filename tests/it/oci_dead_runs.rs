//! A boxwatch run killed with SIGKILL while its runc or crun container
//! runs: whatever run starts next removes the container (the runtime's
//! state, its processes, its cgroups in every hierarchy), whether it uses
//! the same runtime, the builtin one, or finds the runtime's binary gone.
//!
//! The run is killed only once its container is really running: the
//! runtime says `running` and no `<rt> create`/`start` of it is left, so
//! no runtime command of the dead run can finish after the cleanup. The
//! tests take turns (one lock): each one's next run would otherwise clean
//! up the others' dead runs. Needs root, runc and crun; under CI=true a
//! missing one fails the test.

use crate::common::*;
use runtime::backend::{self, BackendKind};
use runtime::oci::stale::{self, Removal};
use runtime::RuntimeConfig;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

static TURN: Mutex<()> = Mutex::new(());

const STATE: &str = "/run/boxwatch/oci";

/// `<rt> --root <boxwatch's root>`, as the backend runs it (crun on a
/// hybrid host through boxwatch's shim, which hides the cgroup2 mount).
fn runtime_cmd(kind: BackendKind) -> Command {
    let hybrid = runtime::cgroup::detect().unwrap().mode() == runtime::CgroupMode::Hybrid;
    let unified = runtime::cgroup::Mounts::from_proc().unwrap().unified;
    let binary = runtime::find_in_path(kind.as_str()).unwrap();
    let mut c = match (kind, hybrid, unified) {
        (BackendKind::Crun, true, Some(hide)) => {
            let mut c = Command::new(BIN);
            c.arg("__boxwatch-oci-shim").arg(hide).arg(binary);
            c
        }
        _ => Command::new(binary),
    };
    c.arg("--root").arg(Path::new(STATE).join(kind.as_str()));
    c
}

/// `<rt> state <id>`.
fn state(kind: BackendKind, id: &str) -> Option<Value> {
    let out = runtime_cmd(kind).args(["state", id]).output().ok()?;
    serde_json::from_slice(&out.stdout).ok()
}

/// (state, parent pid, start time) of a process.
fn stat(pid: i32) -> Option<(char, i32, u64)> {
    let s = runtime::cleanup::proc_stat(pid)?;
    Some((s.state, s.ppid, s.start))
}

/// Children of `parent` that have `id` among their arguments: `<rt>
/// create` or `start` still running.
fn runtime_commands(parent: u32, id: &str) -> Vec<i32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&p| stat(p).is_some_and(|(_, ppid, _)| ppid == parent as i32))
        .filter(|&p| {
            std::fs::read(format!("/proc/{p}/cmdline"))
                .map(|c| c.split(|b| *b == 0).any(|a| a == id.as_bytes()))
                .unwrap_or(false)
        })
        .collect()
}

/// A run killed while its container runs.
struct Killed {
    kind: BackendKind,
    /// The dead boxwatch's PID.
    pid: u32,
    id: String,
    /// The container's first process: (pid, start time).
    leader: (i32, u64),
    _catalog: tempfile::TempDir,
}

/// A one-scenario catalog: a container that spins at 5% of a CPU for a
/// minute, long enough to be killed in.
fn catalog() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("held.toml"),
        r#"
id = "held"
title = "a container that runs until its boxwatch is killed"
timeout = "90s"

[container]
cpu = "0.05"

[workload]
name = "spin"
duration = "60s"

[[expect]]
check = "ran"
metric = "exit_code"
equals = 0
"#,
    )
    .unwrap();
    dir
}

/// Starts `boxwatch scenarios --runtime <kind>` on [`catalog`], waits until
/// its container is running and no runtime command of it is left, and
/// kills boxwatch with SIGKILL.
fn kill_a_run(kind: BackendKind) -> Killed {
    let cat = catalog();
    let mut child: Child = Command::new(BIN)
        .args([
            "scenarios",
            "--runtime",
            kind.as_str(),
            "--quiet-wait",
            "0s",
        ])
        .arg("--catalog")
        .arg(cat.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let prefix = format!("bw-{pid}-");
    // Generous: a run waits for the host-wide measurement lock while
    // another boxwatch on this host measures CPU alone.
    let deadline = Instant::now() + Duration::from_secs(120);
    let found = loop {
        let id = std::fs::read_dir(Path::new(STATE).join(kind.as_str()))
            .ok()
            .and_then(|rd| {
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .find(|n| n.starts_with(&prefix))
            });
        if let Some(id) = id {
            if let Some(s) = state(kind, &id) {
                let leader = s["pid"].as_i64().unwrap_or(0) as i32;
                if s["status"] == "running" && runtime_commands(pid, &id).is_empty() {
                    if let Some((_, _, start)) = stat(leader) {
                        break Some((id, (leader, start)));
                    }
                }
            }
        }
        if Instant::now() > deadline {
            break None;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("the {kind} run ended before it could be killed: {status}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    child.kill().unwrap();
    child.wait().unwrap();
    let (id, leader) =
        found.unwrap_or_else(|| panic!("the {kind} run never got its container running"));
    Killed {
        kind,
        pid,
        id,
        leader,
        _catalog: cat,
    }
}

impl Killed {
    /// Nothing of the dead run is left: no state entry, no cgroup in any
    /// hierarchy, no process of its container alive.
    fn assert_gone(&self) {
        let left: Vec<PathBuf> = ["runc", "crun"]
            .iter()
            .filter_map(|r| std::fs::read_dir(Path::new(STATE).join(r)).ok())
            .flat_map(|rd| rd.flatten())
            .filter(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with(&format!("bw-{}-", self.pid))
            })
            .map(|e| e.path())
            .collect();
        assert!(left.is_empty(), "{} state left: {left:?}", self.kind);
        let cgroups = cgroups_of_boxwatch_pid(self.pid);
        assert!(
            cgroups.is_empty(),
            "{} cgroups left: {cgroups:?}",
            self.kind
        );
        let (leader, start) = self.leader;
        if let Some((state, ppid, s)) = stat(leader) {
            assert!(
                s != start || state == 'Z',
                "{}: the container's first process {leader} is alive ({state})",
                self.kind
            );
            // A zombie is only left for its parent to reap: this test
            // process when it was the subreaper that inherited it.
            if s == start && ppid == std::process::id() as i32 {
                let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(leader), None);
            }
        }
        assert!(!Path::new("/run/boxwatch").join(self.run_id()).exists());
    }

    /// The dead run's id (`<pid>-<start>-<seq>`).
    fn run_id(&self) -> String {
        runtime::oci::parse_container_id(&self.id).unwrap().0
    }
}

fn next_run_of_the_same_runtime(kind: BackendKind) {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let k = kill_a_run(kind);
    drop(backend::open(kind, RuntimeConfig::new(BIN.into()), None).unwrap());
    k.assert_gone();
}

#[test]
fn a_dead_runs_runc_container_is_removed_by_the_next_runc_run() {
    let _room = room!();
    if oci_or_skip(
        "a_dead_runs_runc_container_is_removed_by_the_next_runc_run",
        BackendKind::Runc,
    ) {
        next_run_of_the_same_runtime(BackendKind::Runc);
    }
}

#[test]
fn a_dead_runs_crun_container_is_removed_by_the_next_crun_run() {
    let _room = room!();
    if oci_or_skip(
        "a_dead_runs_crun_container_is_removed_by_the_next_crun_run",
        BackendKind::Crun,
    ) {
        next_run_of_the_same_runtime(BackendKind::Crun);
    }
}

/// `boxwatch run` (the builtin runtime, another process) starting is
/// enough.
fn next_builtin_run(kind: BackendKind) {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let k = kill_a_run(kind);
    let (code, _, err) = run_sh(&[], "true");
    assert_eq!(code, 0, "{err}");
    k.assert_gone();
}

#[test]
fn a_dead_runs_runc_container_is_removed_when_a_builtin_run_starts() {
    let _room = room!();
    if oci_or_skip(
        "a_dead_runs_runc_container_is_removed_when_a_builtin_run_starts",
        BackendKind::Runc,
    ) {
        next_builtin_run(BackendKind::Runc);
    }
}

#[test]
fn a_dead_runs_crun_container_is_removed_when_a_builtin_run_starts() {
    let _room = room!();
    if oci_or_skip(
        "a_dead_runs_crun_container_is_removed_when_a_builtin_run_starts",
        BackendKind::Crun,
    ) {
        next_builtin_run(BackendKind::Crun);
    }
}

/// Without the runtime's binary, the container is killed through its
/// cgroup and its state directory removed.
fn without_the_runtime_binary(kind: BackendKind) {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let k = kill_a_run(kind);
    let removed = stale::remove_dead_runs_with(
        &RuntimeConfig::new(BIN.into()),
        runtime::cgroup::detect().unwrap().as_ref(),
        &|_| None,
    );
    let mine = removed
        .iter()
        .find(|r| r.id == k.id)
        .unwrap_or_else(|| panic!("{} was not found stale: {removed:?}", k.id));
    assert!(
        matches!(&mine.removal, Removal::KilledThroughCgroup { why } if why.contains("not installed")),
        "{mine:?}"
    );
    // What the builtin bookkeeping does for every dead run: here, its
    // bundles under /run/boxwatch/<run-id>.
    drop(runtime::Runtime::new(RuntimeConfig::new(BIN.into())).unwrap());
    k.assert_gone();
}

#[test]
fn a_dead_runs_runc_container_is_killed_through_its_cgroup_without_runc() {
    let _room = room!();
    if oci_or_skip(
        "a_dead_runs_runc_container_is_killed_through_its_cgroup_without_runc",
        BackendKind::Runc,
    ) {
        without_the_runtime_binary(BackendKind::Runc);
    }
}

#[test]
fn a_dead_runs_crun_container_is_killed_through_its_cgroup_without_crun() {
    let _room = room!();
    if oci_or_skip(
        "a_dead_runs_crun_container_is_killed_through_its_cgroup_without_crun",
        BackendKind::Crun,
    ) {
        without_the_runtime_binary(BackendKind::Crun);
    }
}
