//! Containers that killed boxwatch runs left in the OCI runtimes' state
//! roots, removed when any run starts, whatever runtime it uses.
//!
//! Every state root under `<state-dir>/oci/` is looked at (runc, crun). A
//! container id `bw-<run>-<name>` whose run's boxwatch process is gone is
//! removed with `<rt> delete --force` when the runtime's binary is there
//! (through the hybrid-host shim for crun); without it, or when delete
//! fails, its processes are killed through its cgroup (freezer + SIGKILL
//! on v1, cgroup.kill on v2) and its state directory is removed. A
//! `<rt> create` or `start` that the dead run left running is waited for
//! first (up to 10 s), so it cannot finish after the cleanup and leave a
//! container behind. The dead runs' empty cgroup directories go too, in
//! every hierarchy: also those the builtin driver does not manage
//! (name=systemd, the cgroup2 mount of a hybrid host), which the OCI
//! runtimes write to.
//!
//! [`crate::cleanup::remove_stale_runs`] calls this first thing, so every
//! `Runtime::new` (builtin runs, and the one inside each OCI backend) does.

use super::dirs::RootUse;
use super::reap;
use super::{cgroup_mounts, join, parse_container_id, Cli, OciKind};
use crate::cgroup::{self, CgroupDriver};
use crate::cleanup::{parse_run_id, proc_stat, run_alive};
use crate::container::RuntimeConfig;
use crate::find_in_path;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, Instant};

/// How long a runtime command a dead run left behind is waited for.
const COMMAND_WAIT: Duration = Duration::from_secs(10);
/// How long killing a stale container may take.
const KILL_TIMEOUT: Duration = Duration::from_secs(5);

/// How a dead run's container was removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Removal {
    /// `<rt> delete --force` removed it.
    Deleted,
    /// Its processes were killed through its cgroup and its state
    /// directory removed, because `why` (no binary, or delete failed).
    KilledThroughCgroup { why: String },
}

/// A container of a dead run, and how it went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaleContainer {
    pub runtime: OciKind,
    pub id: String,
    pub removal: Removal,
}

/// Removes the containers of dead runs from every OCI runtime's state root
/// under `config.state_dir`, with the runtime's binary from PATH and
/// `driver` to kill through cgroups. When there is no `<state-dir>/oci` at
/// all (no OCI run left anything), it costs one failed `stat`.
pub fn remove_dead_runs(config: &RuntimeConfig, driver: &dyn CgroupDriver) -> Vec<StaleContainer> {
    if !config.state_dir.join("oci").exists() {
        return Vec::new();
    }
    remove_dead_runs_with(config, driver, &|kind| find_in_path(kind.name()))
}

/// As [`remove_dead_runs`], with the runtimes' binaries from `binary`
/// (None: the runtime is not installed; its containers are killed
/// through their cgroups).
pub fn remove_dead_runs_with(
    config: &RuntimeConfig,
    driver: &dyn CgroupDriver,
    binary: &dyn Fn(OciKind) -> Option<PathBuf>,
) -> Vec<StaleContainer> {
    let mut removed = Vec::new();
    for kind in [OciKind::Runc, OciKind::Crun] {
        let root = config.state_dir.join("oci").join(kind.name());
        // Held while its containers are deleted; the last holder removes
        // an empty root (also one that a killed run left empty).
        let Some(hold) = RootUse::existing(&root) else {
            continue;
        };
        let dead = dead_containers(&root);
        if dead.is_empty() {
            continue;
        }
        let cli = binary(kind).and_then(|b| {
            Cli::for_host(kind, b, root.clone(), &config.exe, driver.mode())
                .map_err(|e| tracing::warn!("{}", crate::error::chain(&e)))
                .ok()
        });
        for (id, run, name) in dead {
            let Some(r) = remove_one(
                kind,
                cli.as_ref(),
                &root,
                &id,
                (&run, &name),
                driver,
                config,
            ) else {
                continue; // another starting run removed it meanwhile
            };
            match &r.removal {
                Removal::Deleted => tracing::info!("deleted stale {} container {id}", kind.name()),
                Removal::KilledThroughCgroup { why } => tracing::info!(
                    "stale {} container {id} killed through its cgroup ({why})",
                    kind.name()
                ),
            }
            removed.push(r);
        }
        drop(hold);
    }
    let cleaned = remove_stale_cgroups(&config.cgroup_parent);
    if (cleaned || !removed.is_empty()) && config.cgroup_parent == Path::new(cgroup::DEFAULT_PARENT)
    {
        // The shared parent in the hierarchies that only the OCI runtimes
        // use, if that left it empty (the builtin driver removes it in
        // the others).
        for m in cgroup_mounts() {
            let _ = std::fs::remove_dir(join(&m, &config.cgroup_parent));
        }
    }
    removed
}

/// (id, run id, name) of every container of a dead run under `root`.
fn dead_containers(root: &Path) -> Vec<(String, String, String)> {
    let Ok(rd) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    rd.flatten()
        .filter_map(|e| {
            let id = e.file_name().to_str()?.to_string();
            let (run, name) = parse_container_id(&id)?;
            let (pid, start) = parse_run_id(&run)?;
            (!run_alive(pid, start)).then_some((id, run, name))
        })
        .collect()
}

/// The container's first process as its runtime recorded it: (pid, start
/// time in clock ticks). runc: `state.json`; crun: `status`.
fn leader_of(dir: &Path) -> Option<(i32, u64)> {
    for (file, pid_key, start_key) in [
        ("state.json", "init_process_pid", "init_process_start"),
        ("status", "pid", "process-start-time"),
    ] {
        let Ok(text) = std::fs::read_to_string(dir.join(file)) else {
            continue;
        };
        let v: serde_json::Value = serde_json::from_str(&text).ok()?;
        let pid = v[pid_key].as_i64().filter(|p| *p > 0)? as i32;
        return Some((pid, v[start_key].as_u64()?));
    }
    None
}

/// The container's cgroup, relative to the hierarchy roots, as its runtime
/// recorded it (crun's `cgroup-path`, runc's `cgroup_paths`), else under
/// the configured parent; only a path that ends in `<run>/<name>`, so that
/// nothing but that container's cgroup is ever killed.
fn cgroup_of(dir: &Path, run: &str, name: &str, parent: &Path) -> PathBuf {
    let tail = Path::new(run).join(name);
    let ok = |p: &Path| {
        p.is_absolute()
            && p.ends_with(&tail)
            && p.components()
                .all(|c| matches!(c, Component::RootDir | Component::Normal(_)))
    };
    let mut found: Vec<PathBuf> = Vec::new();
    if let Ok(text) = std::fs::read_to_string(dir.join("status")) {
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) {
            if let Some(p) = v["cgroup-path"].as_str() {
                found.push(PathBuf::from(p));
            }
        }
    }
    if let Ok(text) = std::fs::read_to_string(dir.join("state.json")) {
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) {
            let mounts = cgroup_mounts();
            if let Some(paths) = v["cgroup_paths"].as_object() {
                for abs in paths.values().filter_map(|p| p.as_str()) {
                    for m in &mounts {
                        if let Ok(rel) = Path::new(abs).strip_prefix(m) {
                            found.push(Path::new("/").join(rel));
                        }
                    }
                }
            }
        }
    }
    found
        .into_iter()
        .find(|p| ok(p))
        .unwrap_or_else(|| parent.join(tail))
}

/// Processes in this pid namespace running a runtime command on container
/// `id` (its id is one of their arguments). A session leader with the id
/// in its arguments is the container's own first process (crun's, before
/// it execs the entry), not a command.
fn commands_on(id: &str) -> Vec<i32> {
    let me = std::process::id() as i32;
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    rd.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&p| p != me)
        .filter(|&p| {
            std::fs::read(format!("/proc/{p}/cmdline"))
                .map(|c| c.split(|b| *b == 0).any(|a| a == id.as_bytes()))
                .unwrap_or(false)
        })
        .filter(|&p| proc_stat(p).is_some_and(|s| s.session != p && s.state != 'Z'))
        .collect()
}

fn remove_one(
    kind: OciKind,
    cli: Option<&Cli>,
    root: &Path,
    id: &str,
    (run, name): (&str, &str),
    driver: &dyn CgroupDriver,
    config: &RuntimeConfig,
) -> Option<StaleContainer> {
    let dir = root.join(id);
    let until = Instant::now() + COMMAND_WAIT;
    loop {
        let busy = commands_on(id);
        if busy.is_empty() {
            break;
        }
        if Instant::now() >= until {
            tracing::warn!("stale container {id}: runtime commands {busy:?} still running");
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    if !dir.exists() {
        return None;
    }
    let leader = leader_of(&dir);
    let me = std::process::id() as i32;
    // When this process is the subreaper that inherited the dead run's
    // container, its processes become our zombies: reap them after.
    let ours = leader
        .filter(|(p, start)| proc_stat(*p).is_some_and(|s| s.ppid == me && s.start == *start));
    let cg_path = cgroup_of(&dir, run, name, &config.cgroup_parent);
    let cg = driver.open(&cg_path);
    let noted = if ours.is_some() {
        reap::our_children(&cg.pids())
    } else {
        Vec::new()
    };
    let deleted = match cli {
        Some(cli) => cli.delete(id).map_err(|e| crate::error::chain(&e)),
        None => Err(format!("{} is not installed", kind.name())),
    };
    let removal = match deleted {
        Ok(()) if !dir.exists() => Removal::Deleted,
        other => {
            let why = match other {
                Err(e) => e,
                Ok(()) => "delete left its state directory".into(),
            };
            if let Err(e) = cg.kill_all(KILL_TIMEOUT) {
                tracing::warn!("stale container {id}: {}", crate::error::chain(&e));
            }
            // Recorded by the runtime, checked by start time: still that
            // process, and somehow not in the cgroup.
            if let Some((pid, start)) = leader {
                if proc_stat(pid).is_some_and(|s| s.start == start && s.state != 'Z') {
                    let _ = nix::sys::signal::kill(
                        Pid::from_raw(pid),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
            }
            let _ = cg.remove();
            let _ = std::fs::remove_dir_all(&dir);
            Removal::KilledThroughCgroup { why }
        }
    };
    if let Some((pid, _)) = ours {
        reap::reap_container_orphans(pid, &noted, Duration::from_secs(2));
        let until = Instant::now() + KILL_TIMEOUT;
        loop {
            match waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) if Instant::now() < until => {
                    std::thread::sleep(Duration::from_millis(5))
                }
                _ => break,
            }
        }
    }
    for m in cgroup_mounts() {
        let _ = std::fs::remove_dir(join(&m, &cg_path));
        if let Some(run_dir) = cg_path.parent().filter(|p| p.ends_with(run)) {
            let _ = std::fs::remove_dir(join(&m, run_dir));
        }
    }
    Some(StaleContainer {
        runtime: kind,
        id: id.to_string(),
        removal,
    })
}

/// Removes the empty cgroup directories of dead runs under `parent` in
/// every hierarchy, including those the builtin driver does not manage
/// (name=systemd, the cgroup2 mount of a hybrid host). Directories that
/// still hold processes cannot be removed and are left alone. Returns
/// whether it removed a run's directory.
fn remove_stale_cgroups(parent: &Path) -> bool {
    let mut removed = false;
    for m in cgroup_mounts() {
        let base = join(&m, parent);
        let Ok(rd) = std::fs::read_dir(&base) else {
            continue;
        };
        for run in rd.flatten().filter(|e| e.path().is_dir()) {
            let name = run.file_name().to_string_lossy().into_owned();
            let Some((pid, start)) = parse_run_id(&name) else {
                continue;
            };
            if run_alive(pid, start) {
                continue;
            }
            if let Ok(children) = std::fs::read_dir(run.path()) {
                for c in children.flatten().filter(|c| c.path().is_dir()) {
                    let _ = std::fs::remove_dir(c.path());
                }
            }
            removed |= std::fs::remove_dir(run.path()).is_ok();
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_leader_comes_from_runc_or_crun_state() {
        let tmp = tempfile::tempdir().unwrap();
        let runc = tmp.path().join("runc");
        std::fs::create_dir(&runc).unwrap();
        std::fs::write(
            runc.join("state.json"),
            r#"{"id":"x","init_process_pid":4242,"init_process_start":99}"#,
        )
        .unwrap();
        assert_eq!(leader_of(&runc), Some((4242, 99)));
        let crun = tmp.path().join("crun");
        std::fs::create_dir(&crun).unwrap();
        std::fs::write(
            crun.join("status"),
            r#"{"pid": 77, "process-start-time": 12, "cgroup-path": "/boxwatch/1-2-0/c"}"#,
        )
        .unwrap();
        assert_eq!(leader_of(&crun), Some((77, 12)));
        assert_eq!(leader_of(tmp.path()), None);
    }

    #[test]
    fn only_the_containers_own_cgroup_is_ever_named() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        let parent = Path::new("/boxwatch");
        // Nothing recorded: under the configured parent.
        assert_eq!(
            cgroup_of(d, "1-2-0", "c", parent),
            PathBuf::from("/boxwatch/1-2-0/c")
        );
        // crun's record, under another parent.
        std::fs::write(
            d.join("status"),
            r#"{"cgroup-path": "/ci/boxwatch/1-2-0/c"}"#,
        )
        .unwrap();
        assert_eq!(
            cgroup_of(d, "1-2-0", "c", parent),
            PathBuf::from("/ci/boxwatch/1-2-0/c")
        );
        // A record that names anything else is not believed.
        for bad in [
            "/",
            "/system.slice",
            "/boxwatch/1-2-0/../../x/1-2-0/c",
            "rel/1-2-0/c",
        ] {
            std::fs::write(d.join("status"), format!(r#"{{"cgroup-path": "{bad}"}}"#)).unwrap();
            assert_eq!(
                cgroup_of(d, "1-2-0", "c", parent),
                PathBuf::from("/boxwatch/1-2-0/c"),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_live_run_is_not_stale() {
        let tmp = tempfile::tempdir().unwrap();
        let me = std::process::id() as i32;
        let start = crate::cleanup::start_time(me).unwrap();
        for id in [
            format!("bw-{me}-{start}-0-alive"),
            format!("bw-{me}-{}-0-dead", start + 1),
            "not-ours".to_string(),
        ] {
            std::fs::create_dir(tmp.path().join(id)).unwrap();
        }
        let dead = dead_containers(tmp.path());
        assert_eq!(
            dead,
            vec![(
                format!("bw-{me}-{}-0-dead", start + 1),
                format!("{me}-{}-0", start + 1),
                "dead".to_string()
            )]
        );
    }

    #[test]
    fn a_command_naming_the_container_is_found() {
        let id = format!("bw-{}-1-0-cmdtest", std::process::id());
        // Blocks in the shell's own `read` (no fork, whose child would
        // show the same arguments until it execs).
        let mut child = std::process::Command::new("/bin/sh")
            .args(["-c", "read x", &id])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut found = commands_on(&id);
        while found.is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5)); // until it has exec'd
            found = commands_on(&id);
        }
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(found, vec![pid]);
        assert!(commands_on(&id).is_empty());
    }
}
