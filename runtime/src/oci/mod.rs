//! The OCI backend: boxwatch's specs run by runc or crun.
//!
//! For each container: an OCI bundle (`config.json` from [`bundle`], a
//! rootfs skeleton) under `<state-dir>/<run-id>/<name>.oci`, then
//! `<rt> create --bundle B --pid-file P ID` with the container's stdio and
//! `<rt> start ID`. boxwatch is the child subreaper of what it starts
//! while a backend or one of its containers exists (`reap`), so when the
//! runtime's own process exits, the container's first process is
//! re-parented to boxwatch: it is waited for like a builtin container, and
//! its cgroup (`cgroupsPath` = `<parent>/<run-id>/<name>`, boxwatch's own
//! subtree) stays readable until `<rt> delete`. After the entry exits (seen
//! without reaping it), whatever is left in the cgroup is killed, the
//! container's processes that were re-parented to boxwatch are reaped, the
//! entry is reaped, the OOM kill count is read, and `<rt> delete --force`
//! removes the runtime's state and cgroups; the bundle is removed last.
//! Dropping a container, or the backend, does the same.
//!
//! The runtimes keep their state under `<state-dir>/oci/<runtime>` (their
//! `--root`), apart from any other use of them on the host. That root is
//! shared by every boxwatch process and held with a shared lock while used
//! (`dirs`), so it is never removed under a running `<rt> --root`. A run
//! killed with SIGKILL is cleaned up when the next one starts, builtin or
//! OCI ([`stale`]): its containers are deleted with the runtime (or killed
//! through their cgroups when the runtime is gone), its cgroups and bundles
//! removed.
//!
//! crun refuses cgroup v1/v2 hybrid hosts. There it runs behind a shim
//! (`shim`) in a private mount namespace where the cgroup2 mount is
//! unmounted, and `OciBackend::notes` says so.

pub mod bundle;
mod dirs;
pub mod owner;
mod reap;
mod sandbox;
mod shim;
pub mod stale;

use crate::backend::{Backend, BackendKind, Kill, Running};
use crate::cgroup::{self, Cgroup, CgroupDriver, CgroupMode};
use crate::container::{Exit, Outcome, Runtime, RuntimeConfig, Stdio};
use crate::error::{Error, Result};
use crate::spec::{ContainerSpec, Namespace, RootfsSpec};
use bundle::{BundleOptions, HostEntry};
use nix::sys::signal::Signal;
use nix::sys::wait::{waitid, waitpid, Id, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use reap::Subreaper;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A shared hold on a runtime's state root, for whoever writes into it
/// from outside a backend (the bench's dead-state rows): while held, the
/// root is not removed under the writer.
pub use dirs::RootUse;
pub use shim::dispatch;

/// Which OCI runtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OciKind {
    /// runc.
    Runc,
    /// crun.
    Crun,
    /// gVisor: a sandboxed runtime (its own kernel, the sentry).
    Runsc,
}

impl OciKind {
    /// Every OCI runtime boxwatch drives.
    pub const ALL: [OciKind; 3] = [OciKind::Runc, OciKind::Crun, OciKind::Runsc];

    /// The runtime's binary name (`runc`, `crun`, `runsc`).
    pub fn name(self) -> &'static str {
        match self {
            OciKind::Runc => "runc",
            OciKind::Crun => "crun",
            OciKind::Runsc => "runsc",
        }
    }

    /// The kind named `name` (`runc`, `crun`, `runsc`).
    pub fn from_name(name: &str) -> Option<OciKind> {
        OciKind::ALL.into_iter().find(|k| k.name() == name)
    }

    fn backend_kind(self) -> BackendKind {
        match self {
            OciKind::Runc => BackendKind::Runc,
            OciKind::Crun => BackendKind::Crun,
            OciKind::Runsc => BackendKind::Runsc,
        }
    }
}

/// The global flags boxwatch gives runsc.
pub const RUNSC_FLAGS: [&str; 2] = ["--network=none", "--platform=ptrace"];

/// How to invoke the runtime's CLI (directly, or behind the shim).
#[derive(Debug, Clone)]
struct Cli {
    kind: OciKind,
    binary: PathBuf,
    /// `--root`: the runtime's state directory for boxwatch's containers.
    root: PathBuf,
    /// (boxwatch binary, cgroup2 mount to hide) when the shim is needed.
    shim: Option<(PathBuf, PathBuf)>,
}

impl Cli {
    /// How to run `kind` (its binary `binary`, state root `root`) on this
    /// host: crun behind the shim on a hybrid host, with a note saying so.
    fn for_host(
        kind: OciKind,
        binary: PathBuf,
        root: PathBuf,
        exe: &Path,
        mode: CgroupMode,
    ) -> Result<Cli> {
        let mut shim = None;
        if kind == OciKind::Crun && mode == CgroupMode::Hybrid {
            if let Some(unified) = cgroup::Mounts::from_proc()?.unified {
                shim = Some((exe.to_path_buf(), unified));
            }
        }
        Ok(Cli {
            kind,
            binary,
            root,
            shim,
        })
    }

    /// What a report should say about how the runtime is run.
    fn notes(&self) -> Vec<String> {
        let mut notes = match &self.shim {
            Some((_, unified)) => vec![format!(
                "crun: cgroup2 mount hidden on a hybrid host (crun refuses hybrid mode; it ran in a private mount namespace without {})",
                unified.display()
            )],
            None => Vec::new(),
        };
        if self.kind == OciKind::Runsc {
            notes.push(format!(
                "sandboxed: gVisor runs the workload on its own kernel; the host sees its sandbox and gofer processes, not the workload ({})",
                RUNSC_FLAGS.join(" ")
            ));
        }
        notes
    }

    /// `<rt> --root R [--log L --log-format json]`, through the shim if needed.
    fn command(&self, log: Option<&Path>) -> Command {
        let mut c = match &self.shim {
            Some((exe, hide)) => {
                let mut c = Command::new(exe);
                c.arg(shim::OCI_SHIM_ARG).arg(hide).arg(&self.binary);
                c
            }
            None => Command::new(&self.binary),
        };
        c.arg("--root").arg(&self.root);
        if self.kind == OciKind::Runsc {
            // gVisor refuses a network in the host's network namespace,
            // and ptrace is the platform that works in nested VMs.
            c.args(RUNSC_FLAGS);
        }
        if let Some(log) = log {
            c.arg("--log").arg(log).arg("--log-format").arg("json");
        }
        c
    }

    /// Runs `<rt> <args>` with output captured; fails with what it said.
    fn run(&self, step: &'static str, id: &str, args: &[&str]) -> Result<()> {
        let out = self
            .command(None)
            .args(args)
            .stdin(std::process::Stdio::null())
            .output()
            .map_err(|e| self.run_error(step, id, e))?;
        if out.status.success() {
            return Ok(());
        }
        let said = String::from_utf8_lossy(&out.stderr);
        let said = said.trim();
        Err(self.error(
            step,
            id,
            format!(
                "{}{}",
                out.status,
                if said.is_empty() {
                    String::new()
                } else {
                    format!(": {said}")
                }
            ),
        ))
    }

    /// The runtime's binary could not be run at all.
    fn run_error(&self, step: &'static str, id: &str, source: std::io::Error) -> Error {
        Error::OciRun {
            runtime: self.kind.name().into(),
            step,
            id: id.into(),
            binary: self.binary.clone(),
            source,
        }
    }

    fn error(&self, step: &'static str, id: &str, message: String) -> Error {
        Error::OciCommand {
            runtime: self.kind.name().into(),
            step,
            id: id.into(),
            message,
        }
    }

    /// `<rt> delete --force ID` (the flag every runtime accepts).
    fn delete(&self, id: &str) -> Result<()> {
        self.run("delete --force", id, &owner::delete_args(id))
    }
}

/// runc or crun as a [`Backend`].
#[derive(Debug)]
pub(crate) struct OciBackend {
    cli: Cli,
    version: String,
    notes: Vec<String>,
    /// Namespaces `<rt> features` lists (None: the runtime cannot say).
    namespaces: Option<Vec<String>>,
    exe: PathBuf,
    state_dir: PathBuf,
    kill_timeout: Duration,
    driver: Box<dyn CgroupDriver>,
    host_entries: Vec<(String, HostEntry)>,
    /// What the backend and its containers share, released with the last.
    run: Arc<RunShared>,
}

/// What an OCI backend and its containers share; dropped with the last of
/// them (a container may outlive its backend).
#[derive(Debug)]
struct RunShared {
    cgroup_parent: PathBuf,
    /// The runtime's state root, held so nobody removes it under us.
    root: RootUse,
    /// This process is the containers' subreaper while this lives.
    _subreaper: Subreaper,
    /// The builtin runtime's run bookkeeping: the run id, stale-run
    /// cleanup, and removal of the run's cgroup and state directory.
    run: Runtime,
}

impl RunShared {
    /// Makes the run's cgroup directory (`<parent>/<run-id>`) in every
    /// hierarchy, before any container: runc and crun make missing parents
    /// with a plain mkdir, so a shared `/boxwatch` that another run removes
    /// as it ends (it was empty for that moment) failed their create with
    /// ENOENT. Now they only make the container's own directory, below one
    /// that lives as long as this run does.
    fn make_run_cgroups(&self) -> Result<()> {
        let run_cg = self.run.run_cgroup();
        for m in cgroup_mounts() {
            // A v1 cpuset hierarchy: its root has cpuset.cpus (a cgroup2
            // root has only cpuset.cpus.effective).
            let cpuset = m.join("cpuset.cpus").exists();
            // What a failure leaves (the run's directory, the default
            // parent) goes with this RunShared's drop, as after a run.
            let mut made = Vec::new();
            cgroup::make_dir_in(&m, &run_cg, cpuset, &mut made)?;
        }
        Ok(())
    }
}

impl Drop for RunShared {
    /// Removes the run's cgroup directories in every hierarchy the runtime
    /// used (runc and crun also join name=systemd and, on hybrid hosts,
    /// the cgroup2 mount); then (fields in order) the runtime's state root
    /// if it is empty and unused, and the builtin bookkeeping the rest.
    fn drop(&mut self) {
        let run_cg = self.run.run_cgroup();
        for m in cgroup_mounts() {
            let _ = std::fs::remove_dir(join(&m, &run_cg));
            if self.cgroup_parent == Path::new(cgroup::DEFAULT_PARENT) {
                let _ = std::fs::remove_dir(join(&m, &self.cgroup_parent));
            }
        }
        tracing::debug!("released the state root {}", self.root.root().display());
    }
}

/// The runtime's binary: `runtime_path`, else `kind`'s name in PATH.
fn find_binary(kind: OciKind, runtime_path: Option<PathBuf>) -> Result<PathBuf> {
    match runtime_path {
        Some(p) if p.is_file() => Ok(p),
        Some(p) => Err(Error::OciRuntimeMissing {
            runtime: kind.name().into(),
            looked: format!("--runtime-path {} is not a file", p.display()),
        }),
        None => crate::find_in_path(kind.name()).ok_or_else(|| Error::OciRuntimeMissing {
            runtime: kind.name().into(),
            looked: format!("not in PATH={}", std::env::var("PATH").unwrap_or_default()),
        }),
    }
}

/// The runtime's version, refusing gVisor's runsc where runc or crun was
/// asked for.
fn checked_version(kind: OciKind, binary: &Path) -> Result<String> {
    let version = version_of(binary).ok_or_else(|| Error::OciRuntimeMissing {
        runtime: kind.name().into(),
        looked: format!("`{} --version` did not answer", binary.display()),
    })?;
    if kind == OciKind::Runsc {
        return Ok(sandbox::gvisor_version(&version));
    }
    if version.starts_with("runsc ") {
        return Err(Error::OciUnsupported {
            runtime: kind.name().into(),
            what: format!(
                "{} is gVisor's runsc ({version}), a sandboxed runtime with its own flags \
                 and judge: use --runtime runsc",
                binary.display()
            ),
        });
    }
    Ok(version)
}

impl OciBackend {
    /// Finds the runtime (`runtime_path`, else `runc`/`crun` in PATH),
    /// asks its version and features, becomes child subreaper, and removes
    /// what killed earlier runs left.
    pub fn new(
        kind: OciKind,
        runtime_path: Option<PathBuf>,
        config: RuntimeConfig,
    ) -> Result<OciBackend> {
        let unsupported = |what: String| Error::OciUnsupported {
            runtime: kind.name().into(),
            what,
        };
        if !nix::unistd::geteuid().is_root() {
            return Err(unsupported(
                "boxwatch drives OCI runtimes as root only (rootless runc/crun is not supported): run boxwatch as root".into(),
            ));
        }
        let binary = find_binary(kind, runtime_path)?;
        let version = checked_version(kind, &binary)?;
        let driver = cgroup::detect()?;
        let default = crate::find_in_path(kind.name());
        let root_name = owner::root_name(kind, &binary, default.as_deref());
        let cli = Cli::for_host(
            kind,
            binary,
            config.state_dir.join("oci").join(root_name),
            &config.exe,
            driver.mode(),
        )?;
        let subreaper = Subreaper::acquire()?;
        let root = RootUse::create(&cli.root)?;
        // Which binary owns the root: the stale-run cleanup uses it.
        owner::Owner {
            kind,
            binary: cli.binary.clone(),
        }
        .write_if_missing(&cli.root)
        .map_err(Error::io(
            "recording the binary that owns the OCI state root",
        ))?;
        // Its Runtime::new removes dead runs' containers of every OCI
        // runtime first (oci::stale), then their cgroups and bundles.
        let run = Runtime::with_driver(config.clone(), cgroup::detect()?)?;
        let run = Arc::new(RunShared {
            cgroup_parent: config.cgroup_parent.clone(),
            root,
            _subreaper: subreaper,
            run,
        });
        run.make_run_cgroups()?;
        Ok(OciBackend {
            namespaces: features_namespaces(&cli.binary),
            notes: cli.notes(),
            cli,
            version,
            exe: config.exe.clone(),
            state_dir: config.state_dir.clone(),
            kill_timeout: config.kill_timeout,
            driver,
            host_entries: bundle::host_entries(),
            run,
        })
    }

    pub fn run_id(&self) -> &str {
        self.run.run.run_id()
    }

    /// The OCI container id of container `name` of this run.
    pub fn container_id(&self, name: &str) -> String {
        format!("bw-{}-{name}", self.run_id())
    }

    /// Where the bundle of container `name` is written.
    pub fn bundle_dir(&self, name: &str) -> PathBuf {
        self.state_dir
            .join(self.run_id())
            .join(format!("{name}.oci"))
    }

    fn bundle_options(&self, spec: &ContainerSpec, dir: &Path) -> BundleOptions {
        BundleOptions::for_host(
            &self.exe,
            self.run.run.run_cgroup().join(&spec.name),
            dir,
            self.host_entries.clone(),
        )
    }

    fn unsupported(&self, what: impl Into<String>) -> Error {
        Error::OciUnsupported {
            runtime: self.cli.kind.name().into(),
            what: what.into(),
        }
    }

    /// What this backend refuses before writing anything.
    fn check(&self, spec: &ContainerSpec) -> Result<()> {
        spec.validate()?;
        if !spec.namespaces.contains(Namespace::Mount) {
            return Err(self.unsupported(
                "an OCI container always has its own mount namespace and root: keep the mount namespace",
            ));
        }
        match &spec.rootfs {
            RootfsSpec::Host => {
                return Err(self.unsupported(
                    "the host rootfs is only for the builtin runtime: use the minimal rootfs or a directory",
                ))
            }
            RootfsSpec::Dir(d) if !d.is_dir() => {
                return Err(Error::BadRootfs {
                    path: d.clone(),
                    why: "it is not a directory".into(),
                })
            }
            _ => {}
        }
        if spec
            .keep_caps
            .iter()
            .any(|c| c.0 == caps::Capability::CAP_SYS_TIME)
            && !crate::container::booted_by_boxwatch()
        {
            return Err(Error::InvalidSpec(
                "keeping CAP_SYS_TIME lets the container set the host's clock (time is not namespaced): \
                 boxwatch allows it only inside a VM it booted (cargo xtask vm)"
                    .into(),
            ));
        }
        if self.cli.kind == OciKind::Runsc && spec.namespaces.contains(Namespace::Time) {
            return Err(self.unsupported(
                "the time namespace: runsc has no `features` command to say it supports one, \
                 and gVisor ignores the request (its clock is the sentry's)",
            ));
        }
        if let Some(known) = &self.namespaces {
            for ns in spec.namespaces.iter() {
                let oci_name = match ns {
                    Namespace::Mount => "mount",
                    Namespace::Net => "network",
                    other => other.proc_name(),
                };
                if !known.iter().any(|k| k == oci_name) {
                    return Err(self.unsupported(format!(
                        "the {ns} namespace (`{} features` does not list it)",
                        self.cli.binary.display()
                    )));
                }
            }
        }
        Ok(())
    }
}

impl Backend for OciBackend {
    fn kind(&self) -> BackendKind {
        self.cli.kind.backend_kind()
    }

    fn version(&self) -> String {
        self.version.clone()
    }

    fn notes(&self) -> Vec<String> {
        self.notes.clone()
    }

    fn sandboxed(&self) -> bool {
        self.cli.kind == OciKind::Runsc
    }

    fn run_cgroup(&self) -> PathBuf {
        self.run.run.run_cgroup()
    }

    fn run_state_dir(&self) -> PathBuf {
        self.run.run.run_state_dir()
    }

    fn spawn(&self, spec: &ContainerSpec, stdio: Stdio) -> Result<Box<dyn Running>> {
        self.check(spec)?;
        let id = self.container_id(&spec.name);
        let dir = self.bundle_dir(&spec.name);
        if dir.exists() || self.cli.root.join(&id).exists() {
            return Err(Error::InvalidSpec(format!(
                "a container named {:?} is already running in this run",
                spec.name
            )));
        }
        let cgroup_path = self.run.run.run_cgroup().join(&spec.name);
        let mut c = OciContainer {
            cli: self.cli.clone(),
            id,
            bundle: dir.clone(),
            pid: None,
            cgroup: Arc::from(self.driver.open(&cgroup_path)),
            cgroup_path,
            started: Instant::now(),
            kill_timeout: self.kill_timeout,
            reaps_orphans: !spec.namespaces.contains(Namespace::Pid),
            helpers: sandbox::Helpers::default(),
            done: false,
            _run: self.run.clone(),
        };
        bundle::write(&dir, spec, &self.bundle_options(spec, &dir))?;

        let log = dir.join("runtime.log");
        let pid_file = dir.join("pid");
        let status = {
            let mut create = self.create_command(&dir, &log, &pid_file, &c.id, stdio);
            create
                .status()
                .map_err(|e| self.cli.run_error("create", &c.id, e))?
            // dropping `create` closes our copies of the container's stdio
        };
        if !status.success() {
            return Err(self.create_failed(spec, &dir, &log, &c.id, status));
        }
        let pid = self.leader(&pid_file)?;
        c.pid = Some(Pid::from_raw(pid));
        self.check_reparented(pid)?;
        // The runtime made the cgroup: open it again to find its directories.
        c.cgroup = Arc::from(self.driver.open(&c.cgroup_path));
        // Its helpers (runsc's gofer) are alive now, before `start`: the
        // workload cannot have ended yet.
        let created = sandbox::adopted_helpers(pid, &c.id, &dir);
        self.cli.run("start", &c.id, &["start", &c.id])?;
        c.started = Instant::now();
        c.helpers = self.helpers_after_start(pid, &c.id, &dir, created);
        Ok(Box::new(c))
    }
}

impl OciBackend {
    /// `<rt> create --bundle DIR --pid-file FILE ID`, with the container's
    /// stdio.
    fn create_command(
        &self,
        dir: &Path,
        log: &Path,
        pid_file: &Path,
        id: &str,
        stdio: Stdio,
    ) -> std::process::Command {
        let mut create = self.cli.command(Some(log));
        if self.cli.kind == OciKind::Runsc {
            create.arg("--panic-log").arg(dir.join(sandbox::PANIC_LOG));
        }
        create
            .arg("create")
            .arg("--bundle")
            .arg(dir)
            .arg("--pid-file")
            .arg(pid_file)
            .arg(id);
        if let Some(fd) = stdio.stdin {
            create.stdin(fd);
        }
        if let Some(fd) = stdio.stdout {
            create.stdout(fd);
        }
        if let Some(fd) = stdio.stderr {
            create.stderr(fd);
        }
        create
    }

    /// Why `create` failed: a sandbox crash, a time namespace the runtime
    /// cannot make, or what the runtime logged.
    fn create_failed(
        &self,
        spec: &ContainerSpec,
        dir: &Path,
        log: &Path,
        id: &str,
        status: std::process::ExitStatus,
    ) -> Error {
        if let Some(line) = (self.cli.kind == OciKind::Runsc)
            .then(|| sandbox::crashed(dir))
            .flatten()
        {
            return Error::SandboxCrashed {
                runtime: self.cli.kind.name().into(),
                exit: format!("`create` {status}"),
                line,
            };
        }
        let said = log_errors(log);
        let message = format!(
            "{status}{}",
            if said.is_empty() {
                String::new()
            } else {
                format!(": {said}")
            }
        );
        if spec.namespaces.contains(Namespace::Time) && self.namespaces.is_none() {
            return self.unsupported(format!(
                "the time namespace could not be created ({message})"
            ));
        }
        self.cli.error("create", id, message)
    }

    /// The container's first process, from the pid file.
    fn leader(&self, pid_file: &Path) -> Result<i32> {
        let pid = read_pid_file(pid_file).map_err(|why| Error::OciPidFile {
            runtime: self.cli.kind.name().into(),
            path: pid_file.to_path_buf(),
            why,
        })?;
        sandbox::leader(pid, true);
        Ok(pid)
    }

    /// The container's first process must be our child (the subreaper
    /// took it), or it cannot be waited for.
    fn check_reparented(&self, pid: i32) -> Result<()> {
        if parent_of(pid) != Some(std::process::id() as i32) {
            return Err(Error::OciNotReparented {
                runtime: self.cli.kind.name().into(),
                pid,
            });
        }
        Ok(())
    }

    /// What the runtime started besides the container (runsc's gofer),
    /// re-parented to us, with the helpers seen before `start`: reaped when
    /// the container is removed.
    fn helpers_after_start(
        &self,
        pid: i32,
        id: &str,
        dir: &Path,
        created: sandbox::Helpers,
    ) -> sandbox::Helpers {
        let mut helpers = if self.cli.kind == OciKind::Runsc {
            sandbox::sandbox_helpers(pid, id, dir, Duration::from_secs(2))
        } else {
            // Sessions the container's processes lead are its own (and die
            // with its cgroup); only gVisor's stubs come to us that way.
            sandbox::Helpers {
                sessions: Vec::new(),
                ..sandbox::adopted_helpers(pid, id, dir)
            }
        };
        for p in created.procs {
            if !helpers.procs.contains(&p) {
                helpers.procs.push(p);
            }
        }
        helpers
    }
}

/// A container started by runc or crun.
#[derive(Debug)]
pub(crate) struct OciContainer {
    cli: Cli,
    id: String,
    bundle: PathBuf,
    pid: Option<Pid>,
    cgroup: Arc<dyn Cgroup>,
    cgroup_path: PathBuf,
    started: Instant,
    kill_timeout: Duration,
    /// Without its own pid namespace, the container's orphans are
    /// re-parented to this process: reap them.
    reaps_orphans: bool,
    /// Helpers of the runtime re-parented to this process.
    helpers: sandbox::Helpers,
    done: bool,
    /// Keeps the state root, the subreaper and the run's bookkeeping.
    _run: Arc<RunShared>,
}

impl OciContainer {
    /// Kills what is left in the cgroup and reaps the container's
    /// processes that were re-parented to this process; the entry, seen
    /// exited but not reaped until now (so its PID, the session id, stays
    /// taken), is reaped last.
    fn kill_and_reap(&self, pid: Pid) -> Result<()> {
        let noted = if self.reaps_orphans {
            reap::our_children(&self.cgroup.pids())
        } else {
            Vec::new()
        };
        let killed = self.cgroup.kill_all(self.kill_timeout);
        if self.reaps_orphans {
            reap::reap_container_orphans(pid.as_raw(), &noted, self.kill_timeout);
        }
        while let Err(nix::errno::Errno::EINTR) = waitpid(pid, None) {}
        sandbox::leader(pid.as_raw(), false);
        killed
    }

    fn finish(&mut self, exit: Exit) -> Result<Outcome> {
        let wall_time = self.started.elapsed();
        self.done = true;
        let pid = self.pid.expect("a started container has a pid");
        let killed = self.kill_and_reap(pid);
        let oom_kills = self.cgroup.oom_kills();
        let crash = match self.cli.kind {
            OciKind::Runsc => sandbox::crashed(&self.bundle),
            _ => None,
        };
        let deleted = self.remove();
        if let Some(line) = crash {
            return Err(Error::SandboxCrashed {
                runtime: self.cli.kind.name().into(),
                exit: format!("the sandbox process ended with {exit:?}"),
                line,
            });
        }
        killed?;
        deleted?;
        Ok(Outcome {
            exit,
            oom_killed: oom_kills > 0,
            oom_kills,
            wall_time,
        })
    }

    /// `<rt> delete --force`, then whatever it left: cgroup directories, bundle.
    fn remove(&self) -> Result<()> {
        let deleted = self.cli.delete(&self.id);
        sandbox::reap_helpers(&self.helpers, self.kill_timeout);
        // A container that never got as far as `created` (a failed create,
        // a crashed sandbox) may be unknown to delete; its state goes with
        // it (runsc's are files, `<id>_sandbox:<id>.lock` and `.state`).
        for e in owner::entries(self.cli.kind, &self.cli.root) {
            if e.id == self.id {
                for p in &e.paths {
                    let _ = std::fs::remove_dir_all(p).or_else(|_| std::fs::remove_file(p));
                }
            }
        }
        let _ = self.cgroup.remove();
        for m in cgroup_mounts() {
            let _ = std::fs::remove_dir(join(&m, &self.cgroup_path));
        }
        let _ = std::fs::remove_dir_all(&self.bundle);
        let left: Vec<PathBuf> = cgroup_mounts()
            .iter()
            .map(|m| join(m, &self.cgroup_path))
            .filter(|d| d.is_dir())
            .collect();
        match deleted {
            Err(e) if !left.is_empty() => Err(e),
            _ if !left.is_empty() => Err(self.cli.error(
                "delete --force",
                &self.id,
                format!("cgroup directories were left behind: {left:?}"),
            )),
            _ => Ok(()),
        }
    }
}

impl Running for OciContainer {
    fn host_pid(&self) -> i32 {
        self.pid.expect("a started container has a pid").as_raw()
    }

    fn cgroup_path(&self) -> &Path {
        &self.cgroup_path
    }

    fn killer(&self) -> Arc<dyn Kill> {
        Arc::new(OciKiller {
            pid: self.pid.expect("a started container has a pid"),
            cgroup: self.cgroup.clone(),
            timeout: self.kill_timeout,
        })
    }

    fn try_wait(&mut self) -> Result<Option<Outcome>> {
        let pid = self.pid.expect("a started container has a pid");
        let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT;
        match waitid(Id::Pid(pid), flags) {
            Ok(status) => match exit_of(status) {
                Some(exit) => self.finish(exit).map(Some),
                None => Ok(None),
            },
            Err(nix::errno::Errno::EINTR) => Ok(None),
            Err(source) => Err(Error::Wait {
                pid: pid.as_raw(),
                source,
            }),
        }
    }

    fn wait(mut self: Box<Self>) -> Result<Outcome> {
        let pid = self.pid.expect("a started container has a pid");
        let exit = loop {
            match waitid(Id::Pid(pid), WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT) {
                Ok(status) => {
                    if let Some(exit) = exit_of(status) {
                        break exit;
                    }
                }
                Err(nix::errno::Errno::EINTR) => continue,
                Err(source) => {
                    return Err(Error::Wait {
                        pid: pid.as_raw(),
                        source,
                    })
                }
            }
        };
        self.finish(exit)
    }
}

impl Drop for OciContainer {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        if let Some(pid) = self.pid {
            let _ = nix::sys::signal::kill(pid, Signal::SIGKILL);
            let _ = self.kill_and_reap(pid);
        } else {
            let _ = self.cgroup.kill_all(self.kill_timeout);
        }
        if let Err(e) = self.remove() {
            tracing::warn!(
                "removing container {}: {}",
                self.id,
                crate::error::chain(&e)
            );
        }
    }
}

/// Kills an OCI container through its cgroup.
#[derive(Debug)]
struct OciKiller {
    pid: Pid,
    cgroup: Arc<dyn Cgroup>,
    timeout: Duration,
}

impl Kill for OciKiller {
    fn signal(&self, sig: Signal) {
        let _ = nix::sys::signal::kill(self.pid, sig);
    }

    fn kill(&self) -> Result<()> {
        if self.cgroup.dirs().is_empty() {
            let _ = nix::sys::signal::kill(self.pid, Signal::SIGKILL);
            return Ok(());
        }
        self.cgroup.kill_all(self.timeout)
    }
}

fn exit_of(status: WaitStatus) -> Option<Exit> {
    match status {
        WaitStatus::Exited(_, code) => Some(Exit::Code(code)),
        WaitStatus::Signaled(_, sig, _) => Some(Exit::Signal(sig as i32)),
        _ => None,
    }
}

/// The first line of `<binary> --version` (`runc version 1.1.5+ds1`).
fn version_of(binary: &Path) -> Option<String> {
    let out = Command::new(binary)
        .arg("--version")
        .stdin(std::process::Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    first_line(&String::from_utf8_lossy(&out.stdout))
}

/// The first non-empty line of `text`, trimmed.
pub(crate) fn first_line(text: &str) -> Option<String> {
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(String::from)
}

/// The namespaces `<binary> features` lists, if the runtime has that
/// command (runc 1.1+).
fn features_namespaces(binary: &Path) -> Option<Vec<String>> {
    let out = Command::new(binary)
        .arg("features")
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    parse_features_namespaces(&String::from_utf8_lossy(&out.stdout))
}

/// `linux.namespaces` of a `features` document.
pub(crate) fn parse_features_namespaces(json: &str) -> Option<Vec<String>> {
    let v: serde_json::Value = serde_json::from_str(json).ok()?;
    v["linux"]["namespaces"].as_array().map(|a| {
        a.iter()
            .filter_map(|n| n.as_str().map(String::from))
            .collect()
    })
}

/// The error messages of a runtime's JSON log (`{"level":"error","msg":..}`
/// lines); other lines as they are. The last few only.
pub(crate) fn parse_log_errors(text: &str) -> String {
    let msgs: Vec<String> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .filter_map(|l| match serde_json::from_str::<serde_json::Value>(l) {
            Ok(v) => {
                let level = v["level"].as_str().unwrap_or("");
                matches!(level, "error" | "fatal" | "warning")
                    .then(|| v["msg"].as_str().unwrap_or(l).to_string())
            }
            Err(_) => Some(l.trim().to_string()),
        })
        .collect();
    msgs[msgs.len().saturating_sub(3)..].join("; ")
}

fn log_errors(log: &Path) -> String {
    std::fs::read_to_string(log)
        .map(|t| parse_log_errors(&t))
        .unwrap_or_default()
}

/// The PID in a runtime's pid file.
pub(crate) fn parse_pid_file(text: &str) -> std::result::Result<i32, String> {
    match text.trim().parse::<i32>() {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(format!("{:?} is not a PID", text.trim())),
    }
}

fn read_pid_file(path: &Path) -> std::result::Result<i32, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    parse_pid_file(&text)
}

/// The parent PID of `pid`, from /proc/<pid>/status.
fn parent_of(pid: i32) -> Option<i32> {
    crate::cleanup::proc_stat(pid).map(|s| s.ppid)
}

/// The mount points of every cgroup hierarchy's root, v1 (named ones such
/// as name=systemd included) and cgroup2.
fn cgroup_mounts() -> Vec<PathBuf> {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    info.lines()
        .filter_map(cgroup::mounts::parse_mountinfo_line)
        .filter(|l| l.root == "/" && (l.fs_type == "cgroup" || l.fs_type == "cgroup2"))
        .map(|l| PathBuf::from(l.mount_point))
        .collect()
}

/// `rel` (a cgroup path such as `/boxwatch/<run>`) under hierarchy `root`.
fn join(root: &Path, rel: &Path) -> PathBuf {
    root.join(rel.strip_prefix("/").unwrap_or(rel))
}

/// The run id and container name of an OCI container id `bw-<run>-<name>`.
pub fn parse_container_id(id: &str) -> Option<(String, String)> {
    let rest = id.strip_prefix("bw-")?;
    let mut parts = rest.splitn(4, '-');
    let (pid, start, seq, name) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let run = format!("{pid}-{start}-{seq}");
    crate::cleanup::parse_run_id(&run)?;
    (!name.is_empty()).then(|| (run, name.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_ids_carry_the_run_and_the_name() {
        assert_eq!(
            parse_container_id("bw-12-345-0-cpu-quota-20"),
            Some(("12-345-0".into(), "cpu-quota-20".into()))
        );
        for bad in [
            "bw-12-345-0-",
            "12-345-0-x",
            "bw-a-b-c-d",
            "bw-1-2",
            "other",
        ] {
            assert_eq!(parse_container_id(bad), None, "{bad}");
        }
    }

    #[test]
    fn runtime_log_errors_are_extracted() {
        let log = r#"{"level":"info","msg":"starting"}
{"level":"error","msg":"runc run failed: namespace {\"time\" \"\"} does not exist"}
not json at all
"#;
        let e = parse_log_errors(log);
        assert!(
            e.contains("does not exist") && e.contains("not json at all"),
            "{e}"
        );
        assert!(!e.contains("starting"));
        assert_eq!(parse_log_errors(""), "");
    }

    #[test]
    fn pid_files_must_hold_a_positive_pid() {
        assert_eq!(parse_pid_file("1234"), Ok(1234));
        assert_eq!(parse_pid_file(" 77\n"), Ok(77));
        for bad in ["", "0", "-5", "abc"] {
            assert!(parse_pid_file(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn features_namespaces_are_read() {
        let j = r#"{"ociVersionMin":"1.0.0","linux":{"namespaces":["cgroup","ipc","mount","network","pid","user","uts"]}}"#;
        let ns = parse_features_namespaces(j).unwrap();
        assert!(ns.contains(&"network".to_string()) && !ns.contains(&"time".to_string()));
        assert_eq!(parse_features_namespaces("{}"), None);
        assert_eq!(parse_features_namespaces("nope"), None);
    }

    #[test]
    fn versions_are_the_first_line() {
        assert_eq!(
            first_line("\nrunc version 1.1.5+ds1\ncommit: x\n").as_deref(),
            Some("runc version 1.1.5+ds1")
        );
        assert_eq!(first_line("  \n"), None);
    }
}
