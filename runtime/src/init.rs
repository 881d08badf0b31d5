//! The container's setup stage. The parent clones a child into the new
//! namespaces, and the child re-executes the boxwatch binary as
//! `boxwatch-init __boxwatch-init`; [`dispatch`] recognises that and runs the
//! setup here, in a fresh single-threaded process:
//!
//! 1. read the `InitConfig` from the sync socket (fd 3);
//! 2. mount, uts, ipc, net and time namespaces (clone made only the pid and
//!    user ones), hostname, private rootfs, pivot_root, all while the
//!    parent creates and joins the cgroup;
//! 3. wait for "go" (sent once the parent has placed the child in its
//!    cgroup), then the cgroup namespace (rooted at that cgroup),
//!    no_new_privs, drop capabilities, close stray descriptors;
//! 4. exec the entry command (it is PID 1), or, with `init`, fork it and stay
//!    as a tiny PID 1 that reaps orphans and forwards signals.
//!
//! Any failure is sent on the socket (`FromSetup::Failed`, see
//! `crate::message`) and the process exits; a successful exec closes the
//! socket (close-on-exec), which the parent reads as success.

use crate::message::{FromSetup, ToSetup, STEP_EXEC_MISSING, STEP_EXEC_PERMISSION};
use crate::rootfs::{self, step, EnterMethod, RootPlan, StepError, StepResult};
use crate::spec::{ContainerSpec, Namespace, DEFAULT_CAPABILITIES};
use crate::sys;
use nix::sched::{unshare, CloneFlags};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{execve, ForkResult, Pid};
use serde::{Deserialize, Serialize};
use std::ffi::CString;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::ExitCode;

/// `argv[1]` of the re-executed setup stage.
pub(crate) const INIT_ARG: &str = "__boxwatch-init";

/// Default PATH inside containers.
pub(crate) const DEFAULT_PATH: &str =
    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// What the parent sends the setup stage.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct InitConfig {
    pub spec: ContainerSpec,
    /// Empty host directory the new root is mounted on (in the container's
    /// mount namespace only).
    pub root_mount_point: PathBuf,
    /// The boxwatch binary on the host.
    pub exe: PathBuf,
    /// The caller's TERM, passed on to the entry command.
    pub term: Option<String>,
    /// Send `timing` notes for each setup step (see [`crate::timing`]).
    #[serde(default)]
    pub timing: bool,
}

/// If this process is the setup stage, runs it and returns its exit code
/// (only on failure: on success it execs). Otherwise returns None at once.
/// Call first thing in `main`.
pub fn dispatch() -> Option<ExitCode> {
    let mut args = std::env::args_os();
    if args.nth(1).as_deref() != Some(std::ffi::OsStr::new(INIT_ARG)) {
        return None;
    }
    Some(ExitCode::from(setup_stage()))
}

/// The setup stage proper, with the sync socket at fd 3 and stdio at 0-2;
/// returns the exit code on failure (on success it execs).
fn setup_stage() -> u8 {
    sys::reset_signals();
    let mut sock = sys::sync_socket();
    let err = match run(&mut sock) {
        Ok(never) => match never {},
        Err(e) => e,
    };
    FromSetup::failed(err.step, err.message).send(&mut sock);
    match err.step {
        STEP_EXEC_MISSING => 127,
        STEP_EXEC_PERMISSION => 126,
        _ => 125,
    }
}

/// The setup stage in a child forked (not re-executed) from a
/// single-threaded parent: installs `stdio` at 0-2 and `sync` at fd 3 as
/// the re-exec would have, closes every other descriptor the parent had,
/// and runs [`setup_stage`]. Never returns into the parent's code: it execs
/// the entry, or `_exit`s (no destructor of the parent's objects runs,
/// even on a panic).
pub(crate) fn run_forked(stdio: [Option<std::os::fd::RawFd>; 3], sync: std::os::fd::RawFd) -> ! {
    let code = std::panic::catch_unwind(|| {
        let _ = nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL);
        for (target, src) in stdio.iter().enumerate() {
            if let Some(fd) = *src {
                if fd != target as i32 && nix::unistd::dup2(fd, target as i32).is_err() {
                    return 126;
                }
            }
        }
        if sync != sys::SYNC_FD && nix::unistd::dup2(sync, sys::SYNC_FD).is_err() {
            return 126;
        }
        sys::close_fds_from(sys::SYNC_FD + 1);
        setup_stage()
    })
    .unwrap_or(125);
    sys::exit_now(i32::from(code))
}

enum Never {}

/// The setup stage's steps, in order; each names what it does and fails as
/// its own step.
fn run(sock: &mut UnixStream) -> StepResult<Never> {
    let exec_done = crate::timing::now_ns();
    let cfg = read_config(sock)?;
    let mut marks = Marks {
        sock,
        on: cfg.timing,
    };
    marks.mark_at("setup-start", exec_done);
    marks.mark("config");
    let spec = &cfg.spec;

    // Everything up to the root is built while the parent creates and
    // joins the cgroup; only what needs the cgroup waits for "go".
    enter_namespaces(spec)?;
    marks.mark("namespaces-hostname");
    build_root(&cfg, &mut marks)?;

    wait_go(marks.sock)?;
    marks.mark("go");
    enter_cgroup_namespace(&spec.namespaces)?;
    let entry = Entry::prepare(spec, cfg.term.as_deref())?;
    nix::sys::prctl::set_no_new_privs()
        .map_err(step("no_new_privs", "prctl(PR_SET_NO_NEW_PRIVS)"))?;
    restrict_capabilities(spec)?;
    marks.mark("caps");
    sys::close_fds_from(sys::SYNC_FD + 1);
    set_cloexec(sys::SYNC_FD)?;

    // Last, so that the setup stage itself is not filtered; exec, and the
    // tiny init's fork, are allowed by the profile.
    install_seccomp(spec)?;
    marks.mark("seccomp");
    if spec.init {
        return tiny_init(marks.sock, &entry.exe, &entry.argv, &entry.envp);
    }
    let e = execve(&entry.exe, &entry.argv, &entry.envp).unwrap_err();
    Err(StepError {
        step: STEP_EXEC_PERMISSION,
        message: format!("exec {}: {e}", entry.program.display()),
    })
}

/// Sends the parent a timing mark per step when it asked for them.
struct Marks<'a> {
    sock: &'a mut UnixStream,
    on: bool,
}

impl Marks<'_> {
    fn mark_at(&mut self, step: &str, ns: u64) {
        if self.on {
            let step = step.to_string();
            FromSetup::Timing { step, ns }.send(self.sock);
        }
    }

    fn mark(&mut self, step: &str) {
        self.mark_at(step, crate::timing::now_ns());
    }
}

/// Root of the user namespace, then the mount, uts, ipc, net and time
/// namespaces, and the hostname.
fn enter_namespaces(spec: &ContainerSpec) -> StepResult {
    let ns = &spec.namespaces;
    if ns.contains(Namespace::User) {
        become_root_in_userns()?;
    }
    setup_namespaces(ns)?;
    if ns.contains(Namespace::Time) {
        enter_time_namespace(spec)?;
    }
    if ns.contains(Namespace::Uts) {
        nix::unistd::sethostname(spec.hostname()).map_err(step("hostname", "sethostname"))?;
    }
    Ok(())
}

/// The container's root: the host's own with a private mount table (and
/// its own /proc), or a new one entered with pivot_root; says which.
fn build_root(cfg: &InitConfig, marks: &mut Marks) -> StepResult {
    let spec = &cfg.spec;
    let ns = &spec.namespaces;
    if !ns.contains(Namespace::Mount) {
        return Ok(());
    }
    rootfs::make_private()?;
    if spec.rootfs == crate::spec::RootfsSpec::Host {
        if ns.contains(Namespace::Pid) {
            rootfs::remount_proc()?;
        }
        if let Some(lxcfs) = &spec.lxcfs {
            rootfs::bind_lxcfs(lxcfs, std::path::Path::new("/"))?;
        }
        return Ok(());
    }
    let plan = RootPlan {
        rootfs: &spec.rootfs,
        mount_point: &cfg.root_mount_point,
        exe: &cfg.exe,
        hostname: ns.contains(Namespace::Uts).then(|| spec.hostname()),
        lxcfs: spec.lxcfs.as_deref(),
    };
    rootfs::build(&plan)?;
    marks.mark("rootfs-mounts");
    let method = rootfs::enter(&cfg.root_mount_point)?;
    marks.mark("pivot-root-detach");
    let note = match method {
        EnterMethod::PivotRoot => "rootfs=pivot_root",
        EnterMethod::ChrootFallback => "rootfs=chroot",
    };
    FromSetup::Note(note.to_string()).send(marks.sock);
    Ok(())
}

fn enter_cgroup_namespace(ns: &crate::spec::NamespaceSet) -> StepResult {
    if ns.contains(Namespace::Cgroup) {
        unshare(CloneFlags::CLONE_NEWCGROUP)
            .map_err(step("cgroup-namespace", "unshare(CLONE_NEWCGROUP)"))?;
    }
    Ok(())
}

/// The entry command, resolved in the container's root, with its
/// environment, ready for execve.
struct Entry {
    program: PathBuf,
    exe: CString,
    argv: Vec<CString>,
    envp: Vec<CString>,
}

impl Entry {
    fn prepare(spec: &ContainerSpec, term: Option<&str>) -> StepResult<Entry> {
        let env = entry_env(spec, term);
        let path_var = env
            .iter()
            .find_map(|(k, v)| (k == "PATH").then_some(v.as_str()))
            .unwrap_or(DEFAULT_PATH);
        let program = rootfs::resolve_command(&spec.command[0], path_var)?;
        Ok(Entry {
            argv: cstrings(spec.command.iter().map(String::as_str))?,
            envp: cstrings(env.iter().map(|(k, v)| format!("{k}={v}")))?,
            exe: cstring(program.to_string_lossy())?,
            program,
        })
    }
}

fn read_config(sock: &mut UnixStream) -> StepResult<InitConfig> {
    match ToSetup::read(sock).map_err(protocol("config"))? {
        ToSetup::Config(config) => Ok(*config),
        other => Err(unexpected("config", &other)),
    }
}

fn wait_go(sock: &mut UnixStream) -> StepResult {
    match ToSetup::read(sock).map_err(protocol("sync"))? {
        ToSetup::Go => Ok(()),
        other => Err(unexpected("sync", &other)),
    }
}

/// A protocol error at `step`, with its causes.
fn protocol(step: &'static str) -> impl FnOnce(crate::Error) -> StepError {
    move |e| StepError {
        step,
        message: crate::error::chain(&e),
    }
}

fn unexpected(step: &'static str, got: &ToSetup) -> StepError {
    StepError {
        step,
        message: format!("unexpected {} message from the parent", got.name()),
    }
}

/// Creates the mount, uts, ipc and net namespaces the spec asks for (the
/// parent's clone made only the pid and user ones).
fn setup_namespaces(ns: &crate::spec::NamespaceSet) -> StepResult {
    let flags = ns
        .iter()
        .map(|n| match n {
            Namespace::Mount => CloneFlags::CLONE_NEWNS,
            Namespace::Uts => CloneFlags::CLONE_NEWUTS,
            Namespace::Ipc => CloneFlags::CLONE_NEWIPC,
            Namespace::Net => CloneFlags::CLONE_NEWNET,
            Namespace::Pid | Namespace::User | Namespace::Cgroup | Namespace::Time => {
                CloneFlags::empty()
            }
        })
        .fold(CloneFlags::empty(), |a, b| a | b);
    if flags.is_empty() {
        return Ok(());
    }
    unshare(flags).map_err(step(
        "namespaces",
        format!("unshare of the mount, uts, ipc and net namespaces ({flags:?})"),
    ))
}

fn become_root_in_userns() -> StepResult {
    let root = nix::unistd::Gid::from_raw(0);
    nix::unistd::setresgid(root, root, root)
        .map_err(step("user-namespace", "setresgid(0) (is gid 0 mapped?)"))?;
    let _ = nix::unistd::setgroups(&[]);
    let uroot = nix::unistd::Uid::from_raw(0);
    nix::unistd::setresuid(uroot, uroot, uroot)
        .map_err(step("user-namespace", "setresuid(0) (is uid 0 mapped?)"))
}

/// Creates the time namespace, sets its clock offsets, and enters it.
///
/// unshare(CLONE_NEWTIME) only makes the namespace for this process's
/// children; execve switches into it only since Linux 6.2. On older kernels
/// (Debian's 6.1) an entry exec'd as PID 1 would stay in the host's time
/// namespace, so the setup stage (single-threaded, still holding
/// CAP_SYS_ADMIN) enters it with setns once the offsets are written (they
/// can only be written before any process is inside).
fn enter_time_namespace(spec: &ContainerSpec) -> StepResult {
    let flags = CloneFlags::from_bits_retain(libc::CLONE_NEWTIME);
    unshare(flags).map_err(step("time-namespace", "unshare(CLONE_NEWTIME)"))?;
    let o = spec.time_offsets;
    let text = format!(
        "monotonic {} 0\nboottime {} 0\n",
        o.monotonic_secs, o.boottime_secs
    );
    std::fs::write("/proc/self/timens_offsets", text)
        .map_err(step("time-namespace", "writing /proc/self/timens_offsets"))?;
    let ns = std::fs::File::open("/proc/self/ns/time_for_children").map_err(step(
        "time-namespace",
        "opening /proc/self/ns/time_for_children",
    ))?;
    nix::sched::setns(ns, flags).map_err(step(
        "time-namespace",
        "entering the new time namespace (setns)",
    ))
}

fn entry_env(spec: &ContainerSpec, term: Option<&str>) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = vec![
        ("PATH".into(), DEFAULT_PATH.into()),
        ("HOME".into(), "/root".into()),
        ("HOSTNAME".into(), spec.hostname().into()),
    ];
    if let Some(t) = term {
        env.push(("TERM".into(), t.into()));
    }
    for (k, v) in &spec.env {
        env.retain(|(ek, _)| ek != k);
        env.push((k.clone(), v.clone()));
    }
    env
}

/// Keeps Docker's default capabilities plus the spec's extra ones: the
/// bounding set is cut down first (so exec cannot give more back), then the
/// effective and permitted sets; inheritable and ambient are emptied.
fn restrict_capabilities(spec: &ContainerSpec) -> StepResult {
    use caps::{CapSet, CapsHashSet};
    let fail = |what: &'static str| step("capabilities", what);
    let supported = caps::runtime::thread_all_supported();
    let keep: CapsHashSet = DEFAULT_CAPABILITIES
        .iter()
        .copied()
        .chain(spec.keep_caps.iter().map(|c| c.0))
        .filter(|c| supported.contains(c))
        .collect();
    for cap in supported.iter().filter(|c| !keep.contains(c)) {
        caps::drop(None, CapSet::Bounding, *cap).map_err(fail("dropping from the bounding set"))?;
    }
    caps::clear(None, CapSet::Ambient).map_err(fail("clearing ambient"))?;
    caps::clear(None, CapSet::Inheritable).map_err(fail("clearing inheritable"))?;
    caps::set(None, CapSet::Effective, &keep).map_err(fail("setting effective"))?;
    caps::set(None, CapSet::Permitted, &keep).map_err(fail("setting permitted"))
}

/// Installs the spec's seccomp profile on this (single-threaded) process;
/// no_new_privs is already set, as the kernel requires without
/// CAP_SYS_ADMIN.
fn install_seccomp(spec: &ContainerSpec) -> StepResult {
    let rules = crate::seccomp::rules_for(spec);
    if rules.is_empty() {
        return Ok(());
    }
    let programs =
        crate::seccomp::compile(&rules).map_err(step("seccomp", "compiling the profile"))?;
    for p in &programs {
        seccompiler::apply_filter(p).map_err(step("seccomp", "installing the filter"))?;
    }
    Ok(())
}

fn set_cloexec(fd: i32) -> StepResult {
    use nix::fcntl::{fcntl, FcntlArg, FdFlag};
    fcntl(fd, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC))
        .map(|_| ())
        .map_err(step("sync", "setting close-on-exec"))
}

fn cstring(s: impl AsRef<str>) -> StepResult<CString> {
    CString::new(s.as_ref()).map_err(step("config", "a NUL byte in the command or environment"))
}

fn cstrings<S: AsRef<str>>(items: impl Iterator<Item = S>) -> StepResult<Vec<CString>> {
    items.map(cstring).collect()
}

/// PID 1 that reaps: forks the entry command, forwards signals to it, reaps
/// every child (orphans included), exits with the entry's status.
fn tiny_init(
    sock: &mut UnixStream,
    exe: &CString,
    argv: &[CString],
    envp: &[CString],
) -> StepResult<Never> {
    let _ = nix::sys::prctl::set_child_subreaper(true);
    let child = match sys::fork_single_threaded().map_err(step("init", "fork"))? {
        ForkResult::Child => {
            let e = execve(exe, argv, envp).unwrap_err();
            FromSetup::failed(STEP_EXEC_PERMISSION, format!("exec {exe:?}: {e}")).send(sock);
            std::process::exit(126);
        }
        ForkResult::Parent { child } => child,
    };
    // The socket stays open only in the entry child until its exec succeeds.
    sys::forward_signals_to(child.as_raw());
    drop(std::mem::replace(
        sock,
        UnixStream::pair().map_err(step("init", "socketpair"))?.0,
    ));
    let code = reap_until(child);
    std::process::exit(code)
}

/// Reaps children until `entry` exits; returns the exit code to pass on
/// (128+signal for a killed entry, as shells do).
fn reap_until(entry: Pid) -> i32 {
    loop {
        match waitpid(None, None) {
            Ok(WaitStatus::Exited(pid, code)) if pid == entry => return code,
            Ok(WaitStatus::Signaled(pid, sig, _)) if pid == entry => return 128 + sig as i32,
            Ok(_) => continue,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return 125,
        }
    }
}
