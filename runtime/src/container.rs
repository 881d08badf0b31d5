//! The parent side: [`Runtime::spawn`] turns a [`ContainerSpec`] into a
//! running [`Container`]; [`Container::wait`] collects its [`Outcome`] and
//! removes everything it used. A container dropped without `wait` is killed
//! and cleaned up all the same.

use crate::cgroup::{self, Cgroup, CgroupDriver, CgroupInfo};
use crate::error::{Error, Result};
use crate::init::{InitConfig, INIT_ARG};
use crate::message::{FromSetup, ToSetup, STEP_EXEC_MISSING, STEP_EXEC_PERMISSION};
use crate::spec::{ContainerSpec, IdMap, Namespace, RootfsSpec};
use crate::sys::{self, ExecPlan};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use serde::Serialize;
use std::borrow::Cow;
use std::ffi::CString;
use std::io::{BufReader, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How the runtime is set up on this host.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// The boxwatch binary: re-executed as the setup stage and bound into
    /// every container at [`crate::CONTAINER_EXE`].
    pub exe: PathBuf,
    /// Parent cgroup of all runs, relative to the hierarchy roots.
    pub cgroup_parent: PathBuf,
    /// Host directory for per-container mount points.
    pub state_dir: PathBuf,
    /// How long a kill may take before it is reported as failed.
    pub kill_timeout: Duration,
}

impl RuntimeConfig {
    /// Defaults: this binary, `/boxwatch`, `/run/boxwatch` (for another
    /// user than root, `boxwatch-<uid>` in the temp directory).
    pub fn new(exe: PathBuf) -> Self {
        let uid = nix::unistd::geteuid();
        let state_dir = if uid.is_root() {
            PathBuf::from("/run/boxwatch")
        } else {
            std::env::temp_dir().join(format!("boxwatch-{uid}"))
        };
        RuntimeConfig {
            exe,
            cgroup_parent: PathBuf::from(cgroup::DEFAULT_PARENT),
            state_dir,
            kill_timeout: Duration::from_secs(5),
        }
    }
}

/// The stdio of a container's entry command; `None` inherits boxwatch's.
#[derive(Debug, Default)]
pub struct Stdio {
    /// The container's standard input (None: the caller's).
    pub stdin: Option<OwnedFd>,
    /// The container's standard output (None: the caller's).
    pub stdout: Option<OwnedFd>,
    /// The container's standard error (None: the caller's).
    pub stderr: Option<OwnedFd>,
}

/// How a container's entry command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Exit {
    /// Exited with this code.
    Code(i32),
    /// Killed by this signal.
    Signal(i32),
}

impl Exit {
    /// The shell convention: the code, or 128 + the signal number.
    pub fn shell_code(self) -> i32 {
        match self {
            Exit::Code(c) => c,
            Exit::Signal(s) => 128 + s,
        }
    }
}

/// What became of a container.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// How the entry ended.
    pub exit: Exit,
    /// The kernel's OOM killer killed a process of the container.
    pub oom_killed: bool,
    /// OOM kills in the container's cgroup.
    pub oom_kills: u64,
    /// From the exec of the entry to its end.
    pub wall_time: Duration,
}

/// Starts containers on this host. One per boxwatch run: it owns the run's
/// cgroup `<parent>/<run-id>` and removes it when dropped.
#[derive(Debug)]
pub struct Runtime {
    config: RuntimeConfig,
    driver: Box<dyn CgroupDriver>,
    run_id: String,
}

static RUN_SEQ: AtomicU32 = AtomicU32::new(0);

impl Runtime {
    /// Detects the cgroup driver, checks privileges, removes what killed
    /// earlier runs left behind.
    pub fn new(config: RuntimeConfig) -> Result<Runtime> {
        let started = Instant::now();
        let mut steps = crate::timing::Steps::start();
        let driver = cgroup::detect()?;
        steps.mark("cgroup-detect");
        let rt = Runtime::with_driver(config, driver)?;
        steps.mark("privileges-stale-runs");
        steps.log("runtime-new", started);
        Ok(rt)
    }

    /// As [`Runtime::new`] with a given driver (tests, or a forced v2 root).
    pub fn with_driver(config: RuntimeConfig, driver: Box<dyn CgroupDriver>) -> Result<Runtime> {
        check_privileges()?;
        if !config.exe.is_file() {
            return Err(Error::InvalidSpec(format!(
                "the boxwatch binary {} does not exist",
                config.exe.display()
            )));
        }
        let run_id = format!(
            "{}-{}-{}",
            std::process::id(),
            crate::cleanup::start_time(std::process::id() as i32).unwrap_or(0),
            RUN_SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let rt = Runtime {
            config,
            driver,
            run_id,
        };
        crate::cleanup::remove_stale_runs(rt.driver.as_ref(), &rt.config);
        Ok(rt)
    }

    /// This runtime's run id (`<pid>-<start time>-<n>`), the name of its
    /// cgroup and state directory.
    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// The cgroup layout and the controllers containers get.
    pub fn cgroup_info(&self) -> CgroupInfo {
        CgroupInfo {
            mode: self.driver.mode(),
            controllers: self.driver.controllers(),
        }
    }

    /// The cgroup path of this run, relative to the hierarchy roots.
    pub fn run_cgroup(&self) -> PathBuf {
        self.config.cgroup_parent.join(&self.run_id)
    }

    /// This run's state directory (`/run/boxwatch/<run-id>`): where its
    /// containers' roots are mounted, and an lxcfs it starts
    /// (`<dir>/lxcfs`, see [`crate::lxcfs`]). Removed when the runtime is
    /// dropped, or by the next run if this one dies.
    pub fn run_state_dir(&self) -> PathBuf {
        self.config.state_dir.join(&self.run_id)
    }

    /// Starts `spec`. Returns once the entry command is exec'd (setup
    /// failures come back as errors naming the step).
    pub fn spawn(&self, spec: &ContainerSpec, stdio: Stdio) -> Result<Container> {
        let spawned_at = Instant::now();
        let mut steps = crate::timing::Steps::start();
        let spec = self.checked_spec(spec)?;
        let spec = spec.as_ref();
        steps.mark("checks");
        let state_dir = self.config.state_dir.join(&self.run_id).join(&spec.name);
        create_state_dir(&state_dir)?;
        let mut child = ChildGuard {
            pid: None,
            state_dir: Some(state_dir.clone()),
        };
        let (pid, mut sock) = self.start_setup_stage(spec, stdio)?;
        child.pid = Some(Pid::from_raw(pid));
        steps.mark("clone");
        self.configure_setup_stage(&mut sock, pid, spec, &state_dir, steps.on())?;
        steps.mark("config-sent");
        // The setup stage builds its namespaces and root now; the cgroup is
        // made and joined meanwhile (a v1 migration waits for an RCU grace
        // period), and "go" lets it exec.
        let cgroup: Arc<dyn Cgroup> = Arc::from(
            self.driver
                .create(&self.run_cgroup().join(&spec.name), &spec.limits)?,
        );
        steps.mark("cgroup-create");
        let mut container = Container {
            pid: child.take(),
            cgroup,
            state_dir,
            started: Instant::now(),
            notes: Vec::new(),
            kill_timeout: self.config.kill_timeout,
            done: false,
        };
        let go = join_and_go(&container, pid, &mut sock);
        steps.mark("cgroup-join");
        if let Err(e) = go {
            // A setup stage that failed before "go" said why on the socket.
            let _ = nix::sys::signal::kill(Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
            return Err(read_setup_result(sock, spec).err().unwrap_or(e));
        }
        let setup = read_setup_result(sock, spec)?;
        container.notes = setup.notes;
        container.started = Instant::now();
        steps.mark("exec-done");
        steps.add_setup_marks(setup.marks);
        steps.log("start", spawned_at);
        Ok(container)
    }

    /// `spec` validated against itself and the host, with the user
    /// namespace added when only it gives the privileges setup needs (and,
    /// in the mutation suite's builds, its fault applied).
    fn checked_spec<'s>(&self, spec: &'s ContainerSpec) -> Result<Cow<'s, ContainerSpec>> {
        spec.validate()?;
        let mut spec = Cow::Borrowed(spec);
        if !nix::unistd::geteuid().is_root() && !spec.namespaces.contains(Namespace::User) {
            spec.to_mut().namespaces.insert(Namespace::User);
        }
        check_host_support(&spec)?;
        // Test builds only: the mutation suite's broken runtime, after every
        // check (see fault.rs).
        if cfg!(feature = "fault-injection") {
            crate::fault::apply(spec.to_mut());
        }
        if self
            .driver
            .children(&self.run_cgroup())
            .contains(&spec.name)
        {
            return Err(Error::InvalidSpec(format!(
                "a container named {:?} is already running in this run",
                spec.name
            )));
        }
        Ok(spec)
    }

    /// Clones (or forks) the child that becomes the setup stage, with
    /// `stdio` and its end of the sync socket; returns its PID and the
    /// parent's end.
    ///
    /// Only the pid (and user) namespaces are made here; the setup stage
    /// makes the others itself while this process creates and joins the
    /// cgroup (see init.rs), so that work overlaps instead of queueing.
    fn start_setup_stage(&self, spec: &ContainerSpec, stdio: Stdio) -> Result<(i32, UnixStream)> {
        let userns = spec.namespaces.contains(Namespace::User);
        let (parent_sock, child_sock) =
            UnixStream::pair().map_err(Error::io("creating the sync socket"))?;
        let plan = ExecPlan::new(
            cstring(self.config.exe.as_os_str().as_encoded_bytes())?,
            vec![cstring(b"boxwatch-init")?, cstring(INIT_ARG.as_bytes())?],
            Vec::new(),
            [
                stdio.stdin.as_ref().map(|f| f.as_raw_fd()),
                stdio.stdout.as_ref().map(|f| f.as_raw_fd()),
                stdio.stderr.as_ref().map(|f| f.as_raw_fd()),
            ],
            child_sock.as_raw_fd(),
            userns,
        );
        let pid = if !userns && single_threaded() {
            fork_setup_stage(spec, &plan)?
        } else {
            sys::clone_exec(clone_flags(spec), &plan).map_err(|source| Error::Io {
                step: "clone with the requested namespaces",
                source,
            })?
        };
        Ok((pid, parent_sock))
    }

    /// Writes the user namespace's id maps (and says so), then sends the
    /// setup stage its config.
    fn configure_setup_stage(
        &self,
        sock: &mut UnixStream,
        pid: i32,
        spec: &ContainerSpec,
        state_dir: &Path,
        timing: bool,
    ) -> Result<()> {
        let config = InitConfig {
            spec: spec.clone(),
            root_mount_point: state_dir_root(state_dir)?,
            exe: self.config.exe.clone(),
            term: std::env::var("TERM").ok(),
            timing,
        };
        if spec.namespaces.contains(Namespace::User) {
            write_id_maps(pid, spec)?;
            ToSetup::IdMapsWritten.send(sock, "releasing the setup stage")?;
        }
        ToSetup::Config(Box::new(config)).send(sock, "sending the setup stage its config")
    }
}

impl Drop for Runtime {
    /// Removes the run's cgroup, its state directory, and the default
    /// parent cgroup when no other run uses it.
    fn drop(&mut self) {
        let dropped_at = Instant::now();
        let mut steps = crate::timing::Steps::start();
        let run_cg = self.run_cgroup();
        self.driver.remove_dir(&run_cg);
        steps.mark("run-cgroup-remove");
        if self.config.cgroup_parent == Path::new(cgroup::DEFAULT_PARENT) {
            self.driver.remove_dir(&self.config.cgroup_parent);
        }
        steps.mark("parent-cgroup-remove");
        let _ = std::fs::remove_dir(self.config.state_dir.join(&self.run_id));
        let _ = std::fs::remove_dir(&self.config.state_dir);
        steps.log("runtime-drop", dropped_at);
    }
}

/// A running container.
#[derive(Debug)]
pub struct Container {
    pid: Option<Pid>,
    cgroup: Arc<dyn Cgroup>,
    state_dir: PathBuf,
    started: Instant,
    notes: Vec<String>,
    kill_timeout: Duration,
    done: bool,
}

/// A handle that can signal or kill a container from another thread.
#[derive(Debug, Clone)]
pub struct Killer {
    pid: Pid,
    cgroup: Arc<dyn Cgroup>,
}

impl Killer {
    /// Sends `sig` to the container's first process (its PID 1).
    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        let _ = nix::sys::signal::kill(self.pid, sig);
    }
    /// Kills every process of the container.
    pub fn kill(&self) -> Result<()> {
        self.cgroup.kill_all(Duration::from_secs(5))
    }
}

impl Container {
    /// The entry process's PID on the host.
    pub fn host_pid(&self) -> i32 {
        self.pid.expect("a spawned container has a pid").as_raw()
    }

    /// The container's cgroup path relative to the hierarchy roots.
    pub fn cgroup_path(&self) -> &Path {
        self.cgroup.path()
    }

    /// The container's cgroup directories, by controller(s).
    pub fn cgroup_dirs(&self) -> Vec<(String, PathBuf)> {
        self.cgroup.dirs()
    }

    /// What the setup stage reported (e.g. `rootfs=pivot_root`).
    pub fn setup_notes(&self) -> &[String] {
        &self.notes
    }

    /// A handle that can signal or kill the container from another thread.
    pub fn killer(&self) -> Killer {
        Killer {
            pid: self.pid.expect("a spawned container has a pid"),
            cgroup: self.cgroup.clone(),
        }
    }

    /// Waits for the entry command to end, then kills anything left in the
    /// cgroup and removes the cgroup and state directory.
    pub fn wait(mut self) -> Result<Outcome> {
        let pid = self.pid.expect("a spawned container has a pid");
        let exit = loop {
            match waitpid(pid, None) {
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

    /// Like [`Container::wait`] but returns `None` at once while it runs.
    pub fn try_wait(&mut self) -> Result<Option<Outcome>> {
        let pid = self.pid.expect("a spawned container has a pid");
        match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
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

    fn finish(&mut self, exit: Exit) -> Result<Outcome> {
        let wall_time = self.started.elapsed();
        let finished_at = Instant::now();
        let mut steps = crate::timing::Steps::start();
        self.done = true;
        let killed = self.cgroup.kill_all(self.kill_timeout);
        steps.mark("kill-leftovers");
        let oom_kills = self.cgroup.oom_kills();
        steps.mark("oom-read");
        let removed = self.cgroup.remove();
        steps.mark("cgroup-remove");
        remove_state_dir(&self.state_dir);
        steps.mark("state-remove");
        steps.log(
            &format!("end (entry ran {}µs)", wall_time.as_micros()),
            finished_at,
        );
        killed?;
        removed?;
        Ok(Outcome {
            exit,
            oom_killed: oom_kills > 0,
            oom_kills,
            wall_time,
        })
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let _ = self.cgroup.kill_all(self.kill_timeout);
        if let Some(pid) = self.pid {
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            let _ = waitpid(pid, None);
        }
        let _ = self.cgroup.remove();
        remove_state_dir(&self.state_dir);
    }
}

/// Whether this process has one thread (then a plain fork may run Rust
/// code in the child).
fn single_threaded() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| status_threads(&s))
        == Some(1)
}

/// The `Threads:` count of a /proc/<pid>/status text.
fn status_threads(status: &str) -> Option<u32> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|n| n.trim().parse().ok())
}

/// Starts the setup stage by forking this single-threaded process instead
/// of re-executing the boxwatch binary (which costs 1-3 ms of exec, dynamic
/// loading and start-up on the critical path). The new pid namespace, when
/// asked for, comes from unshare(CLONE_NEWPID) just before the fork, which
/// then applies to the child only: this process goes straight back to its
/// own with setns. The child installs its descriptors like the re-exec and
/// runs the same setup stage (`init::run_forked`).
fn fork_setup_stage(spec: &ContainerSpec, plan: &ExecPlan) -> Result<i32> {
    use nix::sched::{setns, unshare, CloneFlags};
    let io = |step: &'static str| {
        move |e: nix::Error| Error::Io {
            step,
            source: e.into(),
        }
    };
    let own_pid_ns = if spec.namespaces.contains(Namespace::Pid) {
        let f = std::fs::File::open("/proc/self/ns/pid")
            .map_err(Error::io("opening this process's pid namespace"))?;
        unshare(CloneFlags::CLONE_NEWPID).map_err(io("unshare(CLONE_NEWPID)"))?;
        Some(f)
    } else {
        None
    };
    // A line half-written to stdout must not be flushed twice.
    let _ = std::io::stdout().flush();
    let forked = sys::fork_single_threaded();
    if let Some(f) = &own_pid_ns {
        if let Ok(nix::unistd::ForkResult::Child) = forked {
            // The child is PID 1 of the new namespace: nothing to undo.
        } else if let Err(e) = setns(f, CloneFlags::CLONE_NEWPID) {
            if let Ok(nix::unistd::ForkResult::Parent { child }) = forked {
                let _ = nix::sys::signal::kill(child, nix::sys::signal::Signal::SIGKILL);
                let _ = waitpid(child, None);
            }
            return Err(io("returning to boxwatch's own pid namespace (setns)")(e));
        }
    }
    match forked.map_err(io("fork of the setup stage"))? {
        nix::unistd::ForkResult::Child => crate::init::run_forked(plan.stdio(), plan.sync_fd()),
        nix::unistd::ForkResult::Parent { child } => Ok(child.as_raw()),
    }
}

/// The setup stage until a [`Container`] owns it: killed, reaped and its
/// state directory removed when spawning fails half-way.
struct ChildGuard {
    pid: Option<Pid>,
    state_dir: Option<PathBuf>,
}

impl ChildGuard {
    /// Hands the child over (nothing is cleaned up any more).
    fn take(&mut self) -> Option<Pid> {
        self.state_dir = None;
        self.pid.take()
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(pid) = self.pid {
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            let _ = waitpid(pid, None);
        }
        if let Some(dir) = &self.state_dir {
            remove_state_dir(dir);
        }
    }
}

fn exit_of(status: WaitStatus) -> Option<Exit> {
    match status {
        WaitStatus::Exited(_, code) => Some(Exit::Code(code)),
        WaitStatus::Signaled(_, sig, _) => Some(Exit::Signal(sig as i32)),
        _ => None,
    }
}

fn cstring(bytes: &[u8]) -> Result<CString> {
    CString::new(bytes).map_err(|_| Error::InvalidSpec("a path contains a NUL byte".into()))
}

/// The clone flags for the namespaces created at clone time: pid (it only
/// applies to children, so the setup stage cannot make its own) and user
/// (the parent writes its id maps). The setup stage unshares the others
/// (see `init::setup_namespaces`): mount, uts, ipc and net while the parent
/// joins the cgroup, the cgroup one once the process sits in its cgroup (so
/// that cgroup is its root), the time one before anything enters it.
fn clone_flags(spec: &ContainerSpec) -> libc::c_int {
    spec.namespaces
        .iter()
        .map(|ns| match ns {
            Namespace::Pid => libc::CLONE_NEWPID,
            Namespace::User => libc::CLONE_NEWUSER,
            Namespace::Mount
            | Namespace::Uts
            | Namespace::Ipc
            | Namespace::Net
            | Namespace::Cgroup
            | Namespace::Time => 0,
        })
        .fold(0, |a, b| a | b)
}

/// Moves the setup stage into the container's cgroup and tells it to go on.
fn join_and_go(container: &Container, pid: i32, sock: &mut UnixStream) -> Result<()> {
    if !crate::fault::skip_cgroup_join() {
        container.cgroup.add_process(pid)?;
    }
    ToSetup::Go.send(sock, "starting the container")
}

/// Creates a container's state directory and its missing parents; another
/// run dropping its `Runtime` may remove the shared, empty `/run/boxwatch`
/// half-way (see [`crate::shared_dir`]).
fn create_state_dir(dir: &Path) -> Result<()> {
    crate::shared_dir::create_dir_all_retrying(dir)
        .map_err(Error::io("creating the state directory"))
}

/// The mount point for the new root inside the state directory.
fn state_dir_root(state_dir: &Path) -> Result<PathBuf> {
    let root = state_dir.join("root");
    std::fs::create_dir_all(&root).map_err(Error::io("creating the rootfs mount point"))?;
    Ok(root)
}

fn remove_state_dir(dir: &Path) {
    let _ = std::fs::remove_dir(dir.join("root"));
    let _ = std::fs::remove_dir(dir);
}

/// What a successful setup stage sent before its exec.
#[derive(Debug, Default)]
struct SetupReport {
    notes: Vec<String>,
    /// Its timing marks (step, CLOCK_MONOTONIC ns).
    marks: Vec<(String, u64)>,
}

/// Reads the setup stage's messages until the socket closes (exec done).
fn read_setup_result(sock: UnixStream, spec: &ContainerSpec) -> Result<SetupReport> {
    let mut report = SetupReport::default();
    for msg in FromSetup::read_all(BufReader::new(sock)) {
        match msg? {
            FromSetup::Note(note) => report.notes.push(note),
            FromSetup::Timing { step, ns } => report.marks.push((step, ns)),
            FromSetup::Failed { step, message } => {
                return Err(match step.as_str() {
                    "exec-missing" | STEP_EXEC_PERMISSION => Error::BadEntry {
                        command: spec.command.join(" "),
                        why: message,
                        missing: step == STEP_EXEC_MISSING,
                    },
                    _ => Error::Setup { step, message },
                });
            }
        }
    }
    Ok(report)
}

/// Writes the user namespace's uid/gid maps (default: root inside is
/// 100000 outside for 65536 ids when boxwatch is root; else the caller).
fn write_id_maps(pid: i32, spec: &ContainerSpec) -> Result<()> {
    let euid = nix::unistd::geteuid().as_raw();
    let egid = nix::unistd::getegid().as_raw();
    let default = |own: u32| {
        if euid == 0 {
            vec![IdMap {
                inside: 0,
                outside: 100_000,
                count: 65_536,
            }]
        } else {
            vec![IdMap {
                inside: 0,
                outside: own,
                count: 1,
            }]
        }
    };
    let uid_map = if spec.uid_map.is_empty() {
        default(euid)
    } else {
        spec.uid_map.clone()
    };
    let gid_map = if spec.gid_map.is_empty() {
        default(egid)
    } else {
        spec.gid_map.clone()
    };
    let fmt = |m: &[IdMap]| {
        m.iter()
            .map(|l| format!("{} {} {}\n", l.inside, l.outside, l.count))
            .collect::<String>()
    };
    let proc_dir = PathBuf::from(format!("/proc/{pid}"));
    if euid != 0 {
        let _ = std::fs::write(proc_dir.join("setgroups"), "deny");
    }
    std::fs::write(proc_dir.join("uid_map"), fmt(&uid_map))
        .map_err(Error::io("writing uid_map"))?;
    std::fs::write(proc_dir.join("gid_map"), fmt(&gid_map)).map_err(Error::io("writing gid_map"))
}

/// Refuses to start when neither root nor a user namespace is available.
pub fn check_privileges() -> Result<()> {
    if nix::unistd::geteuid().is_root() {
        return Ok(());
    }
    userns_available().map_err(|reason| Error::NoPrivilege { reason })
}

/// Whether this process may create a user namespace; Err says why not.
pub fn userns_available() -> std::result::Result<(), String> {
    userns_available_with(|p| std::fs::read_to_string(p).ok())
}

/// [`userns_available`] over a given reader of /proc files.
pub fn userns_available_with(
    read: impl Fn(&str) -> Option<String>,
) -> std::result::Result<(), String> {
    let value = |p: &str| read(p).map(|s| s.trim().to_string());
    if value("/proc/self/ns/user").is_none()
        && value("/proc/sys/user/max_user_namespaces").is_none()
    {
        return Err("the kernel has no user namespaces".into());
    }
    if value("/proc/sys/user/max_user_namespaces").as_deref() == Some("0") {
        return Err("user.max_user_namespaces is 0".into());
    }
    if value("/proc/sys/kernel/unprivileged_userns_clone").as_deref() == Some("0") {
        return Err("kernel.unprivileged_userns_clone is 0".into());
    }
    Ok(())
}

/// The kernel command-line marker of a VM booted by `cargo xtask vm`.
pub const VM_MARKER: &str = "boxwatch.vm=1";

/// Whether this kernel was booted by boxwatch as a throwaway VM, the only
/// place a container may keep the power to move the clock.
pub fn booted_by_boxwatch() -> bool {
    std::fs::read_to_string("/proc/cmdline")
        .map(|c| c.split_whitespace().any(|w| w == VM_MARKER))
        .unwrap_or(false)
}

/// Host-dependent checks: namespaces the kernel lacks, CPUs that are not
/// online, a rootfs that is not a directory.
fn check_host_support(spec: &ContainerSpec) -> Result<()> {
    for ns in spec.namespaces.iter() {
        if !Path::new("/proc/self/ns").join(ns.proc_name()).exists() {
            return Err(Error::InvalidSpec(format!(
                "this kernel has no {ns} namespace (/proc/self/ns/{} is missing): drop it from the spec",
                ns.proc_name()
            )));
        }
    }
    if spec
        .keep_caps
        .iter()
        .any(|c| c.0 == caps::Capability::CAP_SYS_TIME)
        && !booted_by_boxwatch()
    {
        return Err(Error::InvalidSpec(
            "keeping CAP_SYS_TIME lets the container set the host's clock (time is not namespaced): \
             boxwatch allows it only inside a VM it booted (cargo xtask vm)"
                .into(),
        ));
    }
    if let Some(set) = &spec.limits.cpuset {
        let online = std::fs::read_to_string("/sys/devices/system/cpu/online").unwrap_or_default();
        if let Ok(online_set) = online.trim().parse::<crate::CpuSet>() {
            if let Some(cpu) = set.cpus().iter().find(|c| !online_set.contains(**c)) {
                return Err(Error::InvalidValue {
                    what: "cpuset",
                    value: set.to_string(),
                    expected: format!(
                        "CPUs that are online on this host ({online_set}); CPU {cpu} is not"
                    ),
                });
            }
        }
    }
    match &spec.rootfs {
        RootfsSpec::Dir(dir) if !dir.is_dir() => Err(Error::BadRootfs {
            path: dir.clone(),
            why: "it is not a directory".into(),
        }),
        RootfsSpec::Dir(_) | RootfsSpec::Minimal if !spec.namespaces.contains(Namespace::Mount) => {
            Err(Error::InvalidSpec(
                "a private rootfs needs the mount namespace: keep it in the spec, or use the host rootfs".into(),
            ))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn the_thread_count_is_found_among_the_status_lines(
            before in proptest::collection::vec("[A-Za-z_]{1,12}:\t[ -~]{0,20}", 0..20),
            threads in 1u32..100_000,
            after in proptest::collection::vec("[A-Za-z_]{1,12}:\t[ -~]{0,20}", 0..20),
        ) {
            prop_assume!(before.iter().all(|l| !l.starts_with("Threads:")));
            let text = format!("{}\nThreads:\t{threads}\n{}\n", before.join("\n"), after.join("\n"));
            prop_assert_eq!(status_threads(&text), Some(threads));
        }

        #[test]
        fn status_parser_never_panics(text in "\\PC{0,200}") {
            let _ = status_threads(&text);
        }
    }

    fn reader(files: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |p| {
            files
                .iter()
                .find(|(k, _)| *k == p)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn user_namespaces_are_available_by_default() {
        assert!(userns_available_with(reader(&[(
            "/proc/sys/user/max_user_namespaces",
            "63000\n"
        )]))
        .is_ok());
    }

    #[test]
    fn a_zero_namespace_budget_or_a_disabled_clone_refuses_with_the_reason() {
        let e = userns_available_with(reader(&[("/proc/sys/user/max_user_namespaces", "0\n")]))
            .unwrap_err();
        assert!(e.contains("max_user_namespaces is 0"));
        let e = userns_available_with(reader(&[
            ("/proc/sys/user/max_user_namespaces", "100"),
            ("/proc/sys/kernel/unprivileged_userns_clone", "0"),
        ]))
        .unwrap_err();
        assert!(e.contains("unprivileged_userns_clone"));
        let e = userns_available_with(reader(&[])).unwrap_err();
        assert!(e.contains("no user namespaces"));
    }

    #[test]
    fn the_no_privilege_error_names_the_cause_and_the_fix() {
        let msg = Error::NoPrivilege {
            reason: "user.max_user_namespaces is 0".into(),
        }
        .to_string();
        assert!(
            msg.contains("not running as root") && msg.contains("run boxwatch as root"),
            "{msg}"
        );
    }
}
