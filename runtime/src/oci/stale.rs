//! Containers that killed boxwatch runs left in the OCI runtimes' state
//! roots, removed when any run starts, whatever runtime it uses.
//!
//! Every state root under `<state-dir>/oci/` is looked at (runc, crun,
//! runsc, and the roots of binaries given with `--runtime-path`), each
//! with the binary that owns it ([`super::owner`]) and its family's state
//! layout. A container id `bw-<run>-<name>` whose run's boxwatch process
//! is gone is removed:
//!
//! - when none of its processes is left (the runtime recorded them; its
//!   cgroup is empty), its state is removed directly, as `<rt> delete`
//!   would: no runtime command runs (runsc's delete alone takes ~0.8 s);
//! - else with `<owner> delete --force` (through the hybrid-host shim for
//!   crun); without the binary, or when delete fails, its processes are
//!   killed through its cgroup (freezer + SIGKILL on v1, cgroup.kill on
//!   v2) and its state removed;
//! - state that is still there after that is given up on: moved to the
//!   root's `.given-up/` (or marked there), reported once with the reason,
//!   and never retried.
//!
//! A `<rt> create` or `start` that the dead run left running is waited for
//! first (up to 10 s), so it cannot finish after the cleanup and leave a
//! container behind (looked for only for entries with no recorded process
//! yet or a running one). The dead runs' empty cgroup directories go too, in
//! every hierarchy: also those the builtin driver does not manage
//! (name=systemd, the cgroup2 mount of a hybrid host), which the OCI
//! runtimes write to.
//!
//! When nothing is dead, this costs a listing of `<state-dir>/oci` and of
//! each root in it (and one failed `stat` when there is no `oci/`).
//! `crate::cleanup::remove_stale_runs` calls this first thing, so every
//! `Runtime::new` (builtin runs, and the one inside each OCI backend) does.

use super::dirs::RootUse;
use super::owner::{self, Entry, Owner};
use super::reap;
use super::{cgroup_mounts, join, parse_container_id, Cli, OciKind};
use crate::cgroup::{self, CgroupDriver};
use crate::cleanup::{parse_run_id, proc_stat, run_alive};
use crate::container::RuntimeConfig;
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
    /// None of its processes was left: its state and cgroups were
    /// removed without running the runtime.
    StateRemoved,
    /// `<rt> delete --force` removed it.
    Deleted,
    /// Its processes were killed through its cgroup and its state
    /// removed, because `why` (no binary, or delete failed).
    KilledThroughCgroup {
        /// Why it was not deleted.
        why: String,
    },
    /// Its state could not be removed (`why`): it was moved aside (or
    /// marked) at `at`, reported this once, and is not retried.
    GivenUp {
        /// Why its state could not be removed.
        why: String,
        /// Where it was moved aside (or marked).
        at: PathBuf,
    },
}

/// A container of a dead run, and how it went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaleContainer {
    /// The runtime that ran it.
    pub runtime: OciKind,
    /// The binary that owns its state root.
    pub binary: Option<PathBuf>,
    /// Its OCI container id.
    pub id: String,
    /// What was done with it.
    pub removal: Removal,
}

/// Removes the containers of dead runs from every OCI runtime's state root
/// under `config.state_dir`, each with the binary that owns the root (when
/// it is still a file) and `driver` to kill through cgroups.
pub(crate) fn remove_dead_runs(
    config: &RuntimeConfig,
    driver: &dyn CgroupDriver,
) -> Vec<StaleContainer> {
    remove_dead_runs_with(config, driver, &|o: &Owner| {
        o.binary.is_file().then(|| o.binary.clone())
    })
}

/// The state roots under `<state-dir>/oci` and the runtime kind each
/// one's name says (`runc`, `runc-1a2b3c4d`): one directory listing.
fn roots(oci: &Path) -> Vec<(PathBuf, OciKind)> {
    let Ok(rd) = std::fs::read_dir(oci) else {
        return Vec::new();
    };
    let mut roots: Vec<(PathBuf, OciKind)> = rd
        .flatten()
        .filter_map(|e| {
            let kind = owner::kind_of_root_name(e.file_name().to_str()?)?;
            Some((e.path(), kind))
        })
        .collect();
    roots.sort_by(|a, b| a.0.cmp(&b.0));
    roots
}

/// Who owns `root`: its record, else (a root from before records) `kind`
/// and that kind's binary in PATH.
fn owner_of(root: &Path, kind: OciKind) -> Owner {
    Owner::read(root)
        .filter(|o| o.kind == kind)
        .unwrap_or_else(|| Owner {
            kind,
            binary: crate::find_in_path(kind.name())
                .unwrap_or_else(|| PathBuf::from("/nonexistent").join(kind.name())),
        })
}

/// As `remove_dead_runs`, with each root's binary from `binary` (None:
/// the binary is not there; its containers are killed through their
/// cgroups when they have processes left).
pub fn remove_dead_runs_with(
    config: &RuntimeConfig,
    driver: &dyn CgroupDriver,
    binary: &dyn Fn(&Owner) -> Option<PathBuf>,
) -> Vec<StaleContainer> {
    let mut removed = Vec::new();
    for (root, kind) in roots(&config.state_dir.join("oci")) {
        // Held while its containers are deleted; the last holder removes
        // an empty root (also one that a killed run left empty).
        let Some(hold) = RootUse::existing(&root) else {
            continue;
        };
        let dead = dead_containers(kind, &root);
        if dead.is_empty() {
            continue;
        }
        let owner = owner_of(&root, kind);
        let found = binary(&owner);
        let mut dead_root = DeadRoot {
            owner: &owner,
            binary: found.as_deref(),
            cli: None,
            root: &root,
            driver,
            config,
        };
        let busy = busy_entries(&dead);
        for (i, (entry, run, name)) in dead.iter().enumerate() {
            let r = dead_root.remove_one(busy.contains(&i), entry, (run, name));
            let Some(r) = r else {
                continue; // another starting run removed it meanwhile
            };
            log_removal(kind, &entry.id, &r.removal);
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

/// The indices of the entries of `dead` a runtime command of the dead run
/// may still work on.
///
/// Such a command may work on an entry that has no recorded process yet (a
/// `create` under way) or a running one; one pass over /proc finds them
/// all, and an entry named by one is waited for in remove_one. An entry
/// whose recorded processes are all gone has no command left that could
/// bring it back: no pass for it.
fn busy_entries(dead: &[(Entry, String, String)]) -> Vec<usize> {
    let unsettled: Vec<usize> = (0..dead.len())
        .filter(|&i| {
            let e = &dead[i].0;
            let recorded = recorded_processes(&state_docs(e));
            recorded.is_empty() || recorded.iter().any(|r| still_runs(*r, &e.id))
        })
        .collect();
    let ids: Vec<&str> = unsettled.iter().map(|&i| dead[i].0.id.as_str()).collect();
    if ids.is_empty() {
        return Vec::new();
    }
    commands_on_any(&ids)
        .into_iter()
        .map(|(_, k)| unsettled[k])
        .collect()
}

/// One line per removed container; the one report of a given-up one.
fn log_removal(kind: OciKind, id: &str, removal: &Removal) {
    let rt = kind.name();
    match removal {
        Removal::StateRemoved => {
            tracing::info!("removed the state of stale {rt} container {id}")
        }
        Removal::Deleted => tracing::info!("deleted stale {rt} container {id}"),
        Removal::KilledThroughCgroup { why } => {
            tracing::info!("stale {rt} container {id} killed through its cgroup ({why})")
        }
        // The one report: the entry is not looked at again.
        Removal::GivenUp { why, at } => tracing::warn!(
            "could not remove stale {rt} container {id}: {why}; gave up on it \
             (kept at {}: remove it by hand once the cause is fixed)",
            at.display()
        ),
    }
}

/// (entry, run id, name) of every container of a dead run under `root`
/// that the cleanup has not given up on.
fn dead_containers(kind: OciKind, root: &Path) -> Vec<(Entry, String, String)> {
    owner::entries(kind, root)
        .into_iter()
        .filter_map(|e| {
            let (run, name) = parse_container_id(&e.id)?;
            let (pid, start) = parse_run_id(&run)?;
            (!run_alive(pid, start) && !owner::given_up(root, &e.id)).then_some((e, run, name))
        })
        .collect()
}

/// The JSON state documents of an entry: runc's `state.json`, crun's
/// `status`, runsc's `.state` file.
fn state_docs(entry: &Entry) -> Vec<serde_json::Value> {
    let mut files = Vec::new();
    for p in &entry.paths {
        if p.is_dir() {
            files.push(p.join("state.json"));
            files.push(p.join("status"));
        } else if p.extension().is_some_and(|e| e == "state") {
            files.push(p.clone());
        }
    }
    files
        .iter()
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .filter_map(|t| serde_json::from_str(&t).ok())
        .collect()
}

/// A process a runtime recorded for a container: its PID and, when the
/// runtime records it, its start time in clock ticks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Recorded {
    pid: i32,
    start: Option<u64>,
}

/// The container's processes as its runtime recorded them: the first
/// process (runc: `state.json`; crun: `status`), or the sandbox and the
/// gofer (runsc, which records no start times). The first is the leader.
fn recorded_processes(docs: &[serde_json::Value]) -> Vec<Recorded> {
    let mut found = Vec::new();
    let pid = |v: &serde_json::Value| v.as_i64().filter(|p| *p > 0).map(|p| p as i32);
    for v in docs {
        for (pid_key, start_key) in [
            ("init_process_pid", "init_process_start"),
            ("pid", "process-start-time"),
        ] {
            if let (Some(p), Some(start)) = (pid(&v[pid_key]), v[start_key].as_u64()) {
                found.push(Recorded {
                    pid: p,
                    start: Some(start),
                });
            }
        }
        for p in [&v["sandbox"]["pid"], &v["goferPid"]] {
            if let Some(p) = pid(p) {
                found.push(Recorded {
                    pid: p,
                    start: None,
                });
            }
        }
    }
    found
}

/// Whether recorded process `r` of container `id` still runs: the same
/// start time, or (runsc) the id among its arguments.
fn still_runs(r: Recorded, id: &str) -> bool {
    let Some(s) = proc_stat(r.pid) else {
        return false;
    };
    if s.state == 'Z' {
        return false;
    }
    match r.start {
        Some(start) => s.start == start,
        None => std::fs::read(format!("/proc/{}/cmdline", r.pid))
            .map(|c| c.split(|b| *b == 0).any(|a| a == id.as_bytes()))
            .unwrap_or(false),
    }
}

/// The container's cgroup, relative to the hierarchy roots, as its runtime
/// recorded it (crun's `cgroup-path`, runc's `cgroup_paths`, runsc's
/// spec), else under the configured parent; only a path that ends in
/// `<run>/<name>`, so that nothing but that container's cgroup is ever
/// killed.
fn cgroup_of(docs: &[serde_json::Value], run: &str, name: &str, parent: &Path) -> PathBuf {
    let tail = Path::new(run).join(name);
    let ok = |p: &Path| {
        p.is_absolute()
            && p.ends_with(&tail)
            && p.components()
                .all(|c| matches!(c, Component::RootDir | Component::Normal(_)))
    };
    let mut found: Vec<PathBuf> = Vec::new();
    let mounts = if docs.iter().any(|v| v["cgroup_paths"].is_object()) {
        cgroup_mounts()
    } else {
        Vec::new()
    };
    for v in docs {
        if let Some(p) = v["cgroup-path"].as_str() {
            found.push(PathBuf::from(p));
        }
        if let Some(p) = v["spec"]["linux"]["cgroupsPath"].as_str() {
            found.push(PathBuf::from(p));
        }
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
    found
        .into_iter()
        .find(|p| ok(p))
        .unwrap_or_else(|| parent.join(tail))
}

/// Processes in this pid namespace running a runtime command on container
/// `id` (its id is one of their arguments). A session leader with the id
/// in its arguments is the container's own first process (crun's, before
/// it execs the entry; runsc's sandbox), not a command.
fn commands_on(id: &str) -> Vec<i32> {
    commands_on_any(&[id]).into_iter().map(|(p, _)| p).collect()
}

/// [`commands_on`] for several ids in one pass over /proc: (pid, index of
/// the id it names).
fn commands_on_any(ids: &[&str]) -> Vec<(i32, usize)> {
    let me = std::process::id() as i32;
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    rd.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&p| p != me)
        .filter_map(|p| {
            let c = std::fs::read(format!("/proc/{p}/cmdline")).ok()?;
            let i = c
                .split(|b| *b == 0)
                .find_map(|a| ids.iter().position(|id| a == id.as_bytes()))?;
            Some((p, i))
        })
        .filter(|&(p, _)| proc_stat(p).is_some_and(|s| s.session != p && s.state != 'Z'))
        .collect()
}

/// Removes an entry's paths. The first error, if any.
fn remove_paths(entry: &Entry) -> Result<(), String> {
    let mut first = None;
    for p in &entry.paths {
        let r = match p.symlink_metadata() {
            Ok(m) if m.is_dir() => std::fs::remove_dir_all(p),
            Ok(_) => std::fs::remove_file(p),
            Err(_) => Ok(()),
        };
        if let Err(e) = r {
            first.get_or_insert(format!("removing {}: {e}", p.display()));
        }
    }
    first.map_or(Ok(()), Err)
}

/// A state root of dead runs' containers, and how to reach its runtime.
struct DeadRoot<'a> {
    owner: &'a Owner,
    /// The owner's binary, when it is there.
    binary: Option<&'a Path>,
    /// The runtime's command line, made when first needed (None inside:
    /// it cannot be run).
    cli: Option<Option<Cli>>,
    root: &'a Path,
    driver: &'a dyn CgroupDriver,
    config: &'a RuntimeConfig,
}

impl DeadRoot<'_> {
    /// Removes one dead container (None: another starting run removed it
    /// meanwhile): its state, its processes, its cgroups.
    fn remove_one(
        &mut self,
        busy: bool,
        entry: &Entry,
        (run, name): (&str, &str),
    ) -> Option<StaleContainer> {
        let id = entry.id.as_str();
        if busy {
            wait_for_runtime_commands(id);
        }
        if !state_left(entry) {
            return None;
        }
        let docs = state_docs(entry);
        let recorded = recorded_processes(&docs);
        let leader = recorded.first().copied();
        let ours = our_children(&recorded);
        let cg_path = cgroup_of(&docs, run, name, &self.config.cgroup_parent);
        let cg = self.driver.open(&cg_path);
        let in_cgroup = cg.pids();
        let noted = if ours.is_empty() {
            Vec::new()
        } else {
            reap::our_children(&in_cgroup)
        };
        let nothing_runs = in_cgroup.is_empty() && !recorded.iter().any(|r| still_runs(*r, id));
        let removal = if nothing_runs {
            // Nothing of it runs: what `<rt> delete` would do, without it.
            let _ = cg.remove();
            match remove_paths(entry) {
                Ok(()) => Removal::StateRemoved,
                Err(why) => Removal::KilledThroughCgroup { why },
            }
        } else {
            match self.delete(id) {
                Ok(()) if !state_left(entry) => Removal::Deleted,
                Ok(()) => kill_through_cgroup(
                    entry,
                    cg.as_ref(),
                    &recorded,
                    "delete left its state behind".into(),
                ),
                Err(why) => kill_through_cgroup(entry, cg.as_ref(), &recorded, why),
            }
        };
        let removal = give_up_if_left(self.root, entry, removal);
        reap_our_children(leader, &ours, &noted);
        remove_foreign_cgroup(&cg_path, run, self.config);
        Some(StaleContainer {
            runtime: self.owner.kind,
            binary: self.binary.map(Path::to_path_buf),
            id: id.to_string(),
            removal,
        })
    }

    /// `<rt> delete --force ID` with the owner's binary; Err says why not.
    fn delete(&mut self, id: &str) -> std::result::Result<(), String> {
        let (binary, root, config, driver, kind) = (
            self.binary,
            self.root,
            self.config,
            self.driver,
            self.owner.kind,
        );
        let cli = self.cli.get_or_insert_with(|| {
            let b = binary?;
            Cli::for_host(
                kind,
                b.to_path_buf(),
                root.to_path_buf(),
                &config.exe,
                driver.mode(),
            )
            .map_err(|e| tracing::warn!("{}", crate::error::chain(&e)))
            .ok()
        });
        match cli {
            Some(cli) => cli.delete(id).map_err(|e| crate::error::chain(&e)),
            None => Err(format!("{} is not installed", self.owner.binary.display())),
        }
    }
}

/// Whether any of the container's state is still on disk.
fn state_left(entry: &Entry) -> bool {
    entry.paths.iter().any(|p| p.symlink_metadata().is_ok())
}

/// Waits (up to [`COMMAND_WAIT`]) for the runtime commands still running
/// on container `id` to end.
fn wait_for_runtime_commands(id: &str) {
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
}

/// The recorded processes that are this process's children: when it is
/// the subreaper that inherited the dead run's container, its processes
/// become our zombies, reaped after.
fn our_children(recorded: &[Recorded]) -> Vec<Recorded> {
    let me = std::process::id() as i32;
    recorded
        .iter()
        .copied()
        .filter(|r| {
            proc_stat(r.pid).is_some_and(|s| s.ppid == me && r.start.is_none_or(|st| st == s.start))
        })
        .collect()
}

/// The container could not be deleted (`why`): kills what is left in its
/// cgroup and what the runtime recorded, removes the cgroup and its state.
fn kill_through_cgroup(
    entry: &Entry,
    cg: &dyn crate::cgroup::Cgroup,
    recorded: &[Recorded],
    mut why: String,
) -> Removal {
    let id = entry.id.as_str();
    if let Err(e) = cg.kill_all(KILL_TIMEOUT) {
        tracing::warn!("stale container {id}: {}", crate::error::chain(&e));
    }
    // Recorded by the runtime, checked by start time (or its arguments):
    // still that process, and not in the cgroup.
    for r in recorded {
        if still_runs(*r, id) {
            let _ = nix::sys::signal::kill(Pid::from_raw(r.pid), nix::sys::signal::Signal::SIGKILL);
        }
    }
    let _ = cg.remove();
    if let Err(e) = remove_paths(entry) {
        why = format!("{why}; {e}");
    }
    Removal::KilledThroughCgroup { why }
}

/// A container whose state is still there after it was killed is set
/// aside in the root's given-up directory, and reported once.
fn give_up_if_left(root: &Path, entry: &Entry, removal: Removal) -> Removal {
    let Removal::KilledThroughCgroup { why } = &removal else {
        return removal;
    };
    if !state_left(entry) {
        return removal;
    }
    match owner::give_up(root, entry, why) {
        Ok(at) => Removal::GivenUp {
            why: why.clone(),
            at,
        },
        Err(e) => Removal::GivenUp {
            why: format!("{why}; and it could not be set aside: {e}"),
            at: root.join(owner::GIVEN_UP_DIR),
        },
    }
}

/// Reaps the container's processes that were our children (and the
/// orphans its leader left to us).
fn reap_our_children(leader: Option<Recorded>, ours: &[Recorded], noted: &[(i32, u64)]) {
    if let Some(l) = leader.filter(|l| ours.iter().any(|o| o.pid == l.pid)) {
        reap::reap_container_orphans(l.pid, noted, Duration::from_secs(2));
    }
    for r in ours {
        let until = Instant::now() + KILL_TIMEOUT;
        loop {
            match waitpid(Pid::from_raw(r.pid), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) if Instant::now() < until => {
                    std::thread::sleep(Duration::from_millis(5))
                }
                _ => break,
            }
        }
    }
}

/// Below the configured parent, remove_stale_cgroups removes what is left
/// in every hierarchy once, for all dead runs; elsewhere (a recorded path
/// under another parent) it is done here.
fn remove_foreign_cgroup(cg_path: &Path, run: &str, config: &RuntimeConfig) {
    if cg_path.starts_with(config.cgroup_parent.join(run)) {
        return;
    }
    for m in cgroup_mounts() {
        let _ = std::fs::remove_dir(join(&m, cg_path));
        if let Some(run_dir) = cg_path.parent().filter(|p| p.ends_with(run)) {
            let _ = std::fs::remove_dir(join(&m, run_dir));
        }
    }
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

    fn docs_of(dir: &Path) -> Vec<serde_json::Value> {
        state_docs(&Entry {
            id: "x".into(),
            paths: vec![dir.to_path_buf()],
        })
    }

    #[test]
    fn the_processes_come_from_runc_crun_or_runsc_state() {
        let tmp = tempfile::tempdir().unwrap();
        let runc = tmp.path().join("runc");
        std::fs::create_dir(&runc).unwrap();
        std::fs::write(
            runc.join("state.json"),
            r#"{"id":"x","init_process_pid":4242,"init_process_start":99}"#,
        )
        .unwrap();
        let one = |pid, start| Recorded { pid, start };
        assert_eq!(
            recorded_processes(&docs_of(&runc)),
            vec![one(4242, Some(99))]
        );
        let crun = tmp.path().join("crun");
        std::fs::create_dir(&crun).unwrap();
        std::fs::write(
            crun.join("status"),
            r#"{"pid": 77, "process-start-time": 12, "cgroup-path": "/boxwatch/1-2-0/c"}"#,
        )
        .unwrap();
        assert_eq!(recorded_processes(&docs_of(&crun)), vec![one(77, Some(12))]);
        // runsc: the sandbox first, then the gofer; no start times.
        let runsc = tmp.path().join("x_sandbox:x.state");
        std::fs::write(
            &runsc,
            r#"{"id":"x","status":"running","goferPid":16718,"sandbox":{"id":"x","pid":16720},
               "spec":{"linux":{"cgroupsPath":"/boxwatch/1-2-0/c"}}}"#,
        )
        .unwrap();
        let docs = docs_of(&runsc);
        assert_eq!(
            recorded_processes(&docs),
            vec![one(16720, None), one(16718, None)]
        );
        assert_eq!(
            cgroup_of(&docs, "1-2-0", "c", Path::new("/other")),
            PathBuf::from("/boxwatch/1-2-0/c")
        );
        assert!(recorded_processes(&docs_of(tmp.path())).is_empty());
    }

    #[test]
    fn a_process_runs_only_while_it_is_the_recorded_one() {
        let me = std::process::id() as i32;
        let start = crate::cleanup::start_time(me).unwrap();
        assert!(still_runs(
            Recorded {
                pid: me,
                start: Some(start)
            },
            "x"
        ));
        assert!(!still_runs(
            Recorded {
                pid: me,
                start: Some(start + 1)
            },
            "x"
        ));
        // Without a start time: only with the id among its arguments.
        let arg0 = std::env::args().next().unwrap();
        assert!(still_runs(
            Recorded {
                pid: me,
                start: None
            },
            &arg0
        ));
        assert!(!still_runs(
            Recorded {
                pid: me,
                start: None
            },
            "bw-1-2-0-none"
        ));
    }

    #[test]
    fn only_the_containers_own_cgroup_is_ever_named() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        let parent = Path::new("/boxwatch");
        // Nothing recorded: under the configured parent.
        assert_eq!(
            cgroup_of(&docs_of(d), "1-2-0", "c", parent),
            PathBuf::from("/boxwatch/1-2-0/c")
        );
        // crun's record, under another parent.
        std::fs::write(
            d.join("status"),
            r#"{"cgroup-path": "/ci/boxwatch/1-2-0/c"}"#,
        )
        .unwrap();
        assert_eq!(
            cgroup_of(&docs_of(d), "1-2-0", "c", parent),
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
                cgroup_of(&docs_of(d), "1-2-0", "c", parent),
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
            format!("bw-{me}-{}-0-gaveup", start + 1),
            "not-ours".to_string(),
        ] {
            std::fs::create_dir(tmp.path().join(id)).unwrap();
        }
        let gave_up = format!("bw-{me}-{}-0-gaveup", start + 1);
        std::fs::create_dir(tmp.path().join(owner::GIVEN_UP_DIR)).unwrap();
        std::fs::write(tmp.path().join(owner::GIVEN_UP_DIR).join(&gave_up), "").unwrap();
        let dead: Vec<_> = dead_containers(OciKind::Runc, tmp.path())
            .into_iter()
            .map(|(e, run, name)| (e.id, run, name))
            .collect();
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
