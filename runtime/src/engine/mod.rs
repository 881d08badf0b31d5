//! Docker and Podman as backends: boxwatch's specs run through the
//! engine's own CLI, so what is judged is what the engine gives a
//! container by default (its capabilities, seccomp profile, masked paths,
//! rlimits, its cgroup driver and OCI runtime).
//!
//! For each container: `<engine> create -i --network none --label
//! boxwatch.run=<run-id> --name bw-<run-id>-<name>` with the spec's limits
//! as flags (`--cpu-period/--cpu-quota`, `--memory` and the same
//! `--memory-swap`, `--pids-limit`, `--cpuset-cpus`) on boxwatch's own
//! image ([`image`]), then `<engine> start --attach --interactive` as a
//! child of boxwatch with the container's stdio: the workload protocol
//! (its stdout lines, the acks on its stdin) goes through the engine's
//! attach stream. The engine's inspect output gives the entry's host PID
//! (`State.Pid`) and the cgroup (Podman's `State.CgroupPath`; Docker's
//! from its cgroup driver: `/docker/<id>` or `system.slice/docker-<id>.
//! scope`); the judge then reads the kernel itself. The entry is not a
//! child of boxwatch (the engine's shim is its parent): its end is seen
//! when the attach client exits or the PID goes, and `<engine> wait` gives
//! the exit code. `<engine> rm -f <id>` removes the container, also when
//! it is dropped; a run killed with SIGKILL leaves containers labelled with
//! its run id, which the next engine backend removes.
//!
//! What the engine's CLI cannot ask for is refused as unsupported (a time
//! namespace; a user namespace on Docker, which maps users daemon-wide),
//! and a refusal of the engine's runtime that the host causes (crun on a
//! cgroup v1/v2 hybrid host, an rlimit above the host's hard limit) is an
//! error that says what to change.

pub mod image;

use crate::backend::{Backend, BackendKind, Kill, Running};
use crate::cgroup::{self, Cgroup, CgroupDriver};
use crate::container::{Exit, Outcome, Runtime, RuntimeConfig, Stdio};
use crate::error::{Error, Result};
use crate::rootfs::CONTAINER_EXE;
use crate::spec::{ContainerSpec, Namespace, RootfsSpec};
use nix::sys::signal::Signal;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The label that names the boxwatch run a container belongs to.
pub const RUN_LABEL: &str = "boxwatch.run";

/// Which engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineKind {
    /// Docker (`docker`, talking to a dockerd).
    Docker,
    /// Podman (`podman`, no daemon).
    Podman,
}

impl EngineKind {
    /// The CLI's name: `docker`, `podman`.
    pub fn name(self) -> &'static str {
        match self {
            EngineKind::Docker => "docker",
            EngineKind::Podman => "podman",
        }
    }

    fn backend_kind(self) -> BackendKind {
        match self {
            EngineKind::Docker => BackendKind::Docker,
            EngineKind::Podman => BackendKind::Podman,
        }
    }

    /// Where the engine is configured, for the fixes errors name.
    fn config_hint(self) -> &'static str {
        match self {
            EngineKind::Docker => "dockerd's configuration (/etc/docker/daemon.json or its flags)",
            EngineKind::Podman => {
                "containers.conf (/etc/containers/containers.conf, or a file named by CONTAINERS_CONF)"
            }
        }
    }
}

/// The engine's CLI.
#[derive(Debug, Clone)]
pub struct Engine {
    /// Which engine.
    pub kind: EngineKind,
    /// Its CLI's binary.
    pub binary: PathBuf,
}

impl Engine {
    fn command(&self) -> Command {
        let mut c = Command::new(&self.binary);
        c.stdin(std::process::Stdio::null());
        c
    }

    /// stdout of `<engine> args`, if it succeeded.
    fn output(&self, args: &[&str]) -> Option<String> {
        let out = self
            .command()
            .args(args)
            .stderr(std::process::Stdio::null())
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Whether `<engine> args` succeeded (output discarded).
    fn quiet(&self, args: &[&str]) -> bool {
        self.output(args).is_some()
    }

    /// `<engine> args`: its stdout, or an error with what it said (a
    /// refusal the host causes named with its fix).
    fn run(&self, step: &'static str, id: &str, args: &[String]) -> Result<String> {
        let out = self
            .command()
            .args(args)
            .output()
            .map_err(|e| self.error(step, id, format!("could not run it: {e}")))?;
        if out.status.success() {
            return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
        }
        let said = String::from_utf8_lossy(&out.stderr).trim().to_string();
        Err(self
            .refusal(&said)
            .unwrap_or_else(|| self.error(step, id, format!("{}: {said}", out.status))))
    }

    fn error(&self, step: &'static str, id: &str, message: String) -> Error {
        Error::EngineCommand {
            engine: self.kind.name().into(),
            step,
            id: id.into(),
            message,
        }
    }

    /// A refusal in `said` that a change of the engine's configuration
    /// fixes, as an error that names the change.
    fn refusal(&self, said: &str) -> Option<Error> {
        let (what, fix) = classify_refusal(self.kind, said)?;
        Some(Error::EngineRefused {
            engine: self.kind.name().into(),
            what: format!("{what} (it said: {})", last_line(said)),
            fix,
        })
    }
}

fn last_line(text: &str) -> &str {
    text.lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .unwrap_or("")
}

/// The rlimit names by their number (`error setting rlimit type 7`).
const RLIMITS: [&str; 16] = [
    "CPU",
    "FSIZE",
    "DATA",
    "STACK",
    "CORE",
    "RSS",
    "NPROC",
    "NOFILE",
    "MEMLOCK",
    "AS",
    "LOCKS",
    "SIGPENDING",
    "MSGQUEUE",
    "NICE",
    "RTPRIO",
    "RTTIME",
];

/// Recognizes the refusals of an engine's OCI runtime that the host
/// causes: (what happened, what to change).
pub fn classify_refusal(kind: EngineKind, said: &str) -> Option<(String, String)> {
    let lower = said.to_lowercase();
    if lower.contains("cgroups in hybrid mode not supported") {
        let fix = match kind {
            EngineKind::Podman => {
                "make Podman use runc: `runtime = \"runc\"` in the [engine] table of \
                 containers.conf (or a file named by CONTAINERS_CONF)"
                    .to_string()
            }
            EngineKind::Docker => format!(
                "make runc dockerd's default runtime ({})",
                kind.config_hint()
            ),
        };
        return Some((
            "its OCI runtime, crun, refuses this cgroup v1/v2 hybrid host".into(),
            fix,
        ));
    }
    let rlimit = if let Some(i) = lower.find("setrlimit `rlimit_") {
        let rest = &said[i + "setrlimit `RLIMIT_".len()..];
        Some(rest.split('`').next().unwrap_or("").to_string())
    } else if let Some(i) = lower.find("error setting rlimit type ") {
        let rest = &lower[i + "error setting rlimit type ".len()..];
        let n: usize = rest
            .split(|c: char| !c.is_ascii_digit())
            .next()?
            .parse()
            .ok()?;
        Some(RLIMITS.get(n).map_or(format!("#{n}"), |s| s.to_string()))
    } else {
        None
    };
    if let Some(name) = rlimit {
        if !lower.contains("not permitted") {
            return None;
        }
        let hard = hard_limit(&name)
            .map(|h| format!(" (boxwatch's own hard limit is {h}, and root cannot raise it here)"))
            .unwrap_or_default();
        let ulimit = format!("{}=N:N", name.to_lowercase());
        let fix = match kind {
            EngineKind::Podman => format!(
                "set `default_ulimits = [\"{ulimit}\"]` with N within the host's hard limit in the \
                 [containers] table of containers.conf (or a file named by CONTAINERS_CONF), \
                 or raise the host's hard limit"
            ),
            EngineKind::Docker => format!(
                "give dockerd `--default-ulimit {ulimit}` with N within the host's hard limit \
                 ({}), or raise the host's hard limit",
                kind.config_hint()
            ),
        };
        return Some((
            format!("its default RLIMIT_{name} is above what this host lets a process set{hard}"),
            fix,
        ));
    }
    None
}

/// This process's hard limit for `RLIMIT_<name>` (from /proc/self/limits).
fn hard_limit(name: &str) -> Option<String> {
    let label = match name {
        "NOFILE" => "Max open files",
        "NPROC" => "Max processes",
        "MEMLOCK" => "Max locked memory",
        "STACK" => "Max stack size",
        "CORE" => "Max core file size",
        _ => return None,
    };
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = text.lines().find(|l| l.starts_with(label))?;
    line[label.len()..]
        .split_whitespace()
        .nth(1)
        .map(String::from)
}

/// The arguments of `<engine> create` for `spec` (without the engine's
/// name), or what the engine's CLI cannot ask for: the container's
/// identity, its namespaces, its root, its limits, what it may do, and
/// its entry.
pub fn create_args(
    kind: EngineKind,
    spec: &ContainerSpec,
    image: &str,
    run_id: &str,
    id: &str,
) -> std::result::Result<Vec<String>, String> {
    let mut a: Vec<String> = vec![
        "create".into(),
        "--interactive".into(),
        "--name".into(),
        id.into(),
        "--label".into(),
        format!("{RUN_LABEL}={run_id}"),
    ];
    namespace_args(kind, spec, &mut a)?;
    check_rootfs(&spec.rootfs)?;
    limit_args(&spec.limits, &mut a);
    privilege_args(spec, &mut a);
    entry_args(spec, image, &mut a);
    Ok(a)
}

/// The namespaces: shared ones asked for with `host`, a user namespace
/// with its maps (Podman only), the hostname in a private UTS namespace.
fn namespace_args(
    kind: EngineKind,
    spec: &ContainerSpec,
    a: &mut Vec<String>,
) -> std::result::Result<(), String> {
    let ns = &spec.namespaces;
    if !ns.contains(Namespace::Mount) {
        return Err("an engine's container always has its own mount namespace and root: keep the mount namespace".into());
    }
    if ns.contains(Namespace::Time) {
        return Err(format!(
            "the time namespace: `{} create` has no option to ask for one",
            kind.name()
        ));
    }
    let network = if ns.contains(Namespace::Net) {
        "none"
    } else {
        "host"
    };
    a.extend(["--network".into(), network.into()]);
    for (n, flag) in [
        (Namespace::Pid, "--pid"),
        (Namespace::Ipc, "--ipc"),
        (Namespace::Uts, "--uts"),
    ] {
        if !ns.contains(n) {
            a.extend([flag.into(), "host".into()]);
        }
    }
    // A private cgroup namespace is the engine's default to judge (on
    // cgroup v1 Docker and Podman share the host's); sharing is asked.
    if !ns.contains(Namespace::Cgroup) {
        a.extend(["--cgroupns".into(), "host".into()]);
    }
    if ns.contains(Namespace::User) {
        user_namespace_args(kind, spec, a)?;
    }
    if ns.contains(Namespace::Uts) {
        a.extend(["--hostname".into(), spec.hostname().to_string()]);
    }
    Ok(())
}

/// A user namespace: Podman's `--uidmap`/`--gidmap` (a default range when
/// the spec gives none); Docker cannot ask for one per container.
fn user_namespace_args(
    kind: EngineKind,
    spec: &ContainerSpec,
    a: &mut Vec<String>,
) -> std::result::Result<(), String> {
    if kind == EngineKind::Docker {
        return Err(
            "a user namespace: Docker maps users daemon-wide (dockerd --userns-remap), not per container"
                .into(),
        );
    }
    let maps = |given: &[crate::spec::IdMap]| -> Vec<String> {
        if given.is_empty() {
            vec!["0:100000:65536".into()]
        } else {
            given
                .iter()
                .map(|m| format!("{}:{}:{}", m.inside, m.outside, m.count))
                .collect()
        }
    };
    for m in maps(&spec.uid_map) {
        a.extend(["--uidmap".into(), m]);
    }
    for m in maps(&spec.gid_map) {
        a.extend(["--gidmap".into(), m]);
    }
    Ok(())
}

/// An engine runs boxwatch's image: only the minimal root can be asked.
fn check_rootfs(rootfs: &RootfsSpec) -> std::result::Result<(), String> {
    match rootfs {
        RootfsSpec::Minimal => Ok(()),
        RootfsSpec::Host => {
            Err("the host rootfs is only for the builtin runtime: an engine runs an image".into())
        }
        RootfsSpec::Dir(d) => Err(format!(
            "a rootfs directory ({}): boxwatch runs its own image on an engine",
            d.display()
        )),
    }
}

/// The limits as the engine's flags: CPU quota and period, memory (no
/// swap beyond it, as in the OCI bundle), pids, cpuset.
fn limit_args(l: &crate::spec::Limits, a: &mut Vec<String>) {
    if let Some(cpu) = l.cpu {
        a.extend([
            "--cpu-period".into(),
            cpu.period_us().to_string(),
            "--cpu-quota".into(),
            cpu.quota_us().to_string(),
        ]);
    }
    if let Some(m) = l.memory {
        a.extend([
            "--memory".into(),
            format!("{}b", m.bytes()),
            "--memory-swap".into(),
            format!("{}b", m.bytes()),
        ]);
    }
    if let Some(p) = l.pids {
        a.extend(["--pids-limit".into(), p.to_string()]);
    }
    if let Some(set) = &l.cpuset {
        let list: Vec<String> = set.cpus().iter().map(u32::to_string).collect();
        a.extend(["--cpuset-cpus".into(), list.join(",")]);
    }
}

/// What the container may do beyond the engine's defaults: capabilities
/// kept, seccomp off when asked, lxcfs's files, the environment.
fn privilege_args(spec: &ContainerSpec, a: &mut Vec<String>) {
    for c in &spec.keep_caps {
        a.extend(["--cap-add".into(), c.0.to_string()]);
    }
    if spec.seccomp == crate::seccomp::SeccompMode::Unconfined {
        a.extend(["--security-opt".into(), "seccomp=unconfined".into()]);
    }
    if let Some(lxcfs) = &spec.lxcfs {
        for file in crate::lxcfs::FILES {
            let src = lxcfs.join(file);
            if src.exists() {
                a.extend(["--volume".into(), format!("{}:/{file}:rw", src.display())]);
            }
        }
    }
    for (k, v) in &spec.env {
        a.extend(["--env".into(), format!("{k}={v}")]);
    }
}

/// The image and the command, behind boxwatch's tiny init when the spec
/// asks for one; the image's own entrypoint is cleared.
fn entry_args(spec: &ContainerSpec, image: &str, a: &mut Vec<String>) {
    a.extend(["--entrypoint".into(), String::new()]);
    a.push(image.into());
    if spec.init {
        a.extend([
            CONTAINER_EXE.to_string(),
            crate::oci::bundle::OCI_INIT_ARG.into(),
            "--".into(),
        ]);
    }
    a.extend(spec.command.iter().cloned());
}

fn engine_missing(kind: EngineKind, looked: String) -> Error {
    Error::EngineMissing {
        engine: kind.name().into(),
        looked,
    }
}

/// boxwatch judges an engine's containers from the host, as root.
fn require_root(kind: EngineKind) -> Result<()> {
    if nix::unistd::geteuid().is_root() {
        return Ok(());
    }
    Err(Error::EngineRefused {
        engine: kind.name().into(),
        what: "boxwatch judges an engine's containers from the host as root only".into(),
        fix: "run boxwatch as root".into(),
    })
}

/// The engine's CLI: `--runtime-path`, else the one PATH finds.
fn find_binary(kind: EngineKind, path: Option<PathBuf>) -> Result<PathBuf> {
    match path {
        Some(p) if p.is_file() => Ok(p),
        Some(p) => Err(engine_missing(
            kind,
            format!("--runtime-path {} is not a file", p.display()),
        )),
        None => crate::find_in_path(kind.name()).ok_or_else(|| {
            engine_missing(
                kind,
                format!("not in PATH={}", std::env::var("PATH").unwrap_or_default()),
            )
        }),
    }
}

/// What the engine says of itself, for the reports.
struct About {
    /// `Docker 20.10.24`, `Podman 4.3.1`.
    version: String,
    /// Docker's cgroup driver and the parent its containers' cgroups go
    /// under (`/docker`, or `/system.slice` with systemd).
    docker_cgroups: Option<(String, String)>,
    /// The runtime's notes: the engine's OCI runtime and cgroup manager.
    notes: Vec<String>,
}

/// `docker info`: the daemon answers, its version, OCI runtime and cgroup
/// driver; a daemon that does not answer is refused with `DOCKER_HOST`.
fn about_docker(engine: &Engine) -> Result<About> {
    let kind = engine.kind;
    let args = [
        "info",
        "--format",
        "{{.ServerVersion}}|{{.DefaultRuntime}}|{{.CgroupDriver}}|{{.CgroupVersion}}",
    ];
    let out = engine.command().args(args).output().map_err(|e| {
        engine_missing(
            kind,
            format!("{} could not be run: {e}", engine.binary.display()),
        )
    })?;
    let text = String::from_utf8_lossy(&out.stdout);
    let f: Vec<&str> = text.trim().split('|').collect();
    if !out.status.success() || f.len() < 4 || f[0].is_empty() {
        return Err(Error::EngineRefused {
            engine: kind.name().into(),
            what: format!(
                "the Docker daemon does not answer ({})",
                last_line(&String::from_utf8_lossy(&out.stderr))
            ),
            fix: format!(
                "start dockerd, or point DOCKER_HOST at its socket (now {})",
                std::env::var("DOCKER_HOST")
                    .unwrap_or_else(|_| "unset: unix:///var/run/docker.sock".into())
            ),
        });
    }
    let parent = if f[2] == "systemd" {
        "/system.slice"
    } else {
        "/docker"
    };
    Ok(About {
        version: format!("Docker {}", f[0]),
        docker_cgroups: Some((f[2].to_string(), parent.to_string())),
        notes: vec![format!(
            "docker: the engine's defaults are judged; OCI runtime {}, cgroup driver {} (cgroup v{})",
            f[1], f[2], f[3]
        )],
    })
}

/// `podman version` and `podman info`: its version, OCI runtime and
/// cgroup manager, and the `CONTAINERS_CONF` it was given.
fn about_podman(engine: &Engine) -> Result<About> {
    let v = engine
        .output(&["version", "--format", "{{.Client.Version}}"])
        .ok_or_else(|| {
            engine_missing(
                engine.kind,
                format!("`{} version` did not answer", engine.binary.display()),
            )
        })?;
    let info = engine
        .output(&[
            "info",
            "--format",
            "{{.Host.OCIRuntime.Name}}|{{.Host.CgroupManager}}|{{.Host.CgroupsVersion}}",
        ])
        .unwrap_or_default();
    let f: Vec<&str> = info.trim().split('|').collect();
    let mut note = format!(
        "podman: the engine's defaults are judged; OCI runtime {}, cgroup manager {} (cgroup {})",
        f.first().unwrap_or(&"?"),
        f.get(1).unwrap_or(&"?"),
        f.get(2).unwrap_or(&"?")
    );
    if let Ok(conf) = std::env::var("CONTAINERS_CONF") {
        note.push_str(&format!("; configured by CONTAINERS_CONF={conf}"));
    }
    Ok(About {
        version: format!("Podman {}", v.trim()),
        docker_cgroups: None,
        notes: vec![note],
    })
}

/// Docker or Podman as a [`Backend`].
#[derive(Debug)]
pub struct EngineBackend {
    engine: Engine,
    version: String,
    notes: Vec<String>,
    image: String,
    /// Docker's cgroup driver and default parent (`cgroupfs`, `/docker`).
    docker_cgroups: Option<(String, String)>,
    kill_timeout: Duration,
    driver: Box<dyn CgroupDriver>,
    /// The builtin runtime's run bookkeeping: the run id, stale-run
    /// cleanup, the run's state directory.
    run: Arc<Runtime>,
}

impl EngineBackend {
    /// Finds the engine (`path`, else `docker`/`podman` in PATH), checks it
    /// answers, removes dead runs' containers, and makes sure boxwatch's
    /// image is there.
    pub fn new(kind: EngineKind, path: Option<PathBuf>, config: RuntimeConfig) -> Result<Self> {
        require_root(kind)?;
        let engine = Engine {
            kind,
            binary: find_binary(kind, path)?,
        };
        let About {
            version,
            docker_cgroups,
            mut notes,
        } = match kind {
            EngineKind::Docker => about_docker(&engine)?,
            EngineKind::Podman => about_podman(&engine)?,
        };
        let driver = cgroup::detect()?;
        let run = Arc::new(Runtime::with_driver(config.clone(), cgroup::detect()?)?);
        remove_dead_runs(&engine);
        let scratch = run.run_state_dir().join(format!("{}-image", kind.name()));
        let image = image::ensure(&engine, &config.exe, &scratch)?;
        notes.push(format!(
            "{}: image {image} (boxwatch, the libraries it loads, busybox; kept in the engine's store)",
            kind.name()
        ));
        Ok(EngineBackend {
            engine,
            version,
            notes,
            image,
            docker_cgroups,
            kill_timeout: config.kill_timeout,
            driver,
            run,
        })
    }

    /// This run's id, in every container's name and label.
    pub fn run_id(&self) -> &str {
        self.run.run_id()
    }

    /// The engine's container name of container `name` of this run.
    pub fn container_name(&self, name: &str) -> String {
        format!("bw-{}-{name}", self.run_id())
    }

    fn inspect(&self, id: &str) -> Option<Inspected> {
        let format = match self.engine.kind {
            EngineKind::Docker => "{{.State.Status}}|{{.State.Pid}}|{{.State.ExitCode}}|{{.State.OOMKilled}}|{{.HostConfig.CgroupParent}}",
            EngineKind::Podman => "{{.State.Status}}|{{.State.Pid}}|{{.State.ExitCode}}|{{.State.OOMKilled}}|{{.State.CgroupPath}}",
        };
        let out =
            self.engine
                .output(&["inspect", "--type", "container", "--format", format, id])?;
        parse_inspect(&out)
    }

    fn cgroup_of(&self, id: &str, seen: &Inspected) -> PathBuf {
        match &self.docker_cgroups {
            Some((driver, default_parent)) => {
                let parent = if seen.cgroup.is_empty() {
                    default_parent.as_str()
                } else {
                    seen.cgroup.as_str()
                };
                if driver == "systemd" {
                    PathBuf::from(parent).join(format!("docker-{id}.scope"))
                } else {
                    PathBuf::from(parent).join(id)
                }
            }
            None => PathBuf::from(&seen.cgroup),
        }
    }
}

/// What `<engine> inspect` says of a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inspected {
    /// `State.Status`: `created`, `running`, `exited`...
    pub status: String,
    /// `State.Pid`: the entry's host PID, 0 when not running.
    pub pid: i32,
    /// `State.ExitCode`.
    pub exit_code: i32,
    /// `State.OOMKilled`.
    pub oom_killed: bool,
    /// Podman: the cgroup path; Docker: `HostConfig.CgroupParent`.
    pub cgroup: String,
}

/// One line of `inspect --format 'status|pid|code|oom|cgroup'`.
pub fn parse_inspect(line: &str) -> Option<Inspected> {
    let f: Vec<&str> = line.trim().splitn(5, '|').collect();
    if f.len() != 5 {
        return None;
    }
    Some(Inspected {
        status: f[0].to_string(),
        pid: f[1].parse().ok()?,
        exit_code: f[2].parse().ok()?,
        oom_killed: f[3] == "true",
        cgroup: f[4].trim().to_string(),
    })
}

/// Removes the containers of dead boxwatch runs (by the run label and the
/// run id in their name), once per backend; a failure is reported once.
fn remove_dead_runs(engine: &Engine) {
    let Some(list) = engine.output(&[
        "ps",
        "--all",
        "--filter",
        &format!("label={RUN_LABEL}"),
        "--format",
        "{{.ID}} {{.Names}}",
    ]) else {
        return;
    };
    for line in list.lines() {
        let mut it = line.split_whitespace();
        let (Some(id), Some(name)) = (it.next(), it.next()) else {
            continue;
        };
        let Some((run, _)) = crate::oci::parse_container_id(name) else {
            continue;
        };
        let Some((pid, start)) = crate::cleanup::parse_run_id(&run) else {
            continue;
        };
        if crate::cleanup::run_alive(pid, start) {
            continue;
        }
        match engine.run(
            "rm --force",
            id,
            &["rm".into(), "--force".into(), id.into()],
        ) {
            Ok(_) => tracing::info!(
                "removed {} container {name} of dead run {run}",
                engine.kind.name()
            ),
            Err(e) => tracing::warn!(
                "could not remove {} container {name} of dead run {run}: {}",
                engine.kind.name(),
                crate::error::chain(&e)
            ),
        }
    }
}

impl Backend for EngineBackend {
    fn kind(&self) -> BackendKind {
        self.engine.kind.backend_kind()
    }

    fn version(&self) -> String {
        self.version.clone()
    }

    fn notes(&self) -> Vec<String> {
        self.notes.clone()
    }

    fn cgroup_goes_with_entry(&self) -> bool {
        true
    }

    fn run_cgroup(&self) -> PathBuf {
        self.run.run_cgroup()
    }

    fn run_state_dir(&self) -> PathBuf {
        self.run.run_state_dir()
    }

    fn spawn(&self, spec: &ContainerSpec, stdio: Stdio) -> Result<Box<dyn Running>> {
        spec.validate()?;
        let id = self.create(spec)?;
        let mut c = self.container(&id);
        self.start_attached(&mut c, stdio)?;
        let seen = self.wait_until_running(&mut c)?;
        self.adopt(&mut c, &seen)?;
        Ok(Box::new(c))
    }
}

impl EngineBackend {
    /// `<engine> create` of the spec: the container's id.
    fn create(&self, spec: &ContainerSpec) -> Result<String> {
        let name = self.container_name(&spec.name);
        let args = create_args(self.engine.kind, spec, &self.image, self.run_id(), &name).map_err(
            |what| Error::OciUnsupported {
                runtime: self.engine.kind.name().into(),
                what,
            },
        )?;
        let id = self.engine.run("create", &name, &args)?;
        Ok(last_line(&id).to_string())
    }

    /// The created container, not started yet.
    fn container(&self, id: &str) -> EngineContainer {
        EngineContainer {
            engine: self.engine.clone(),
            id: id.to_string(),
            attach: None,
            pid: 0,
            pid_start: None,
            cgroup_path: PathBuf::new(),
            cgroup: None,
            started: Instant::now(),
            kill_timeout: self.kill_timeout,
            stderr_tail: Arc::new(Mutex::new(Vec::new())),
            stderr_thread: None,
            done: false,
            _run: self.run.clone(),
        }
    }

    /// `<engine> start --attach --interactive`: the container's stdio goes
    /// through the attach client; its stderr is forwarded and its tail kept
    /// for a refusal.
    fn start_attached(&self, c: &mut EngineContainer, stdio: Stdio) -> Result<()> {
        let (err_r, err_w) =
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| Error::Io {
                step: "creating a pipe for the attach client's stderr",
                source: e.into(),
            })?;
        let mut attach = self.engine.command();
        attach
            .args(["start", "--attach", "--interactive", &c.id])
            .stderr(err_w)
            .process_group(0);
        attach.stdin(match stdio.stdin {
            Some(fd) => std::process::Stdio::from(fd),
            None => std::process::Stdio::null(),
        });
        if let Some(fd) = stdio.stdout {
            attach.stdout(fd);
        }
        c.stderr_thread = Some(forward(err_r, stdio.stderr, c.stderr_tail.clone()));
        c.attach = Some(attach.spawn().map_err(|e| {
            self.engine
                .error("start --attach", &c.id, format!("could not run it: {e}"))
        })?);
        // Dropping `attach` closes our copies of the container's stdio.
        Ok(())
    }

    /// Until the engine says the entry runs (its PID), or it ended; a
    /// refusal on the attach client's stderr (which may stay open on
    /// stdin), an attach client that ended, or 60 s end the start with
    /// what the engine said.
    fn wait_until_running(&self, c: &mut EngineContainer) -> Result<Inspected> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let attach_ended = c
                .attach
                .as_mut()
                .and_then(|a| a.try_wait().ok().flatten())
                .is_some();
            match self.inspect(&c.id) {
                Some(s) if s.pid > 0 => return Ok(s),
                Some(s) if s.status == "exited" || s.status == "stopped" => return Ok(s),
                _ => {}
            }
            let refused = {
                let tail = c.stderr_tail.lock().unwrap_or_else(|p| p.into_inner());
                String::from_utf8_lossy(&tail).contains("Error: ")
            };
            if attach_ended || refused || Instant::now() >= deadline {
                return Err(self.failed_start(c, attach_ended, refused));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Ends the attach client of a start that failed and turns what the
    /// engine said into the error: a known refusal with its fix, else the
    /// last line.
    fn failed_start(&self, c: &mut EngineContainer, attach_ended: bool, refused: bool) -> Error {
        if let Some(mut a) = c.attach.take() {
            if !attach_ended {
                std::thread::sleep(Duration::from_millis(100));
                let _ = a.kill();
            }
            let _ = a.wait();
        }
        if let Some(t) = c.stderr_thread.take() {
            let _ = t.join();
        }
        let said =
            String::from_utf8_lossy(&c.stderr_tail.lock().unwrap_or_else(|p| p.into_inner()))
                .trim()
                .to_string();
        self.engine.refusal(&said).unwrap_or_else(|| {
            self.engine.error(
                "start",
                &c.id,
                if attach_ended || refused {
                    format!("the container did not start: {}", last_line(&said))
                } else {
                    "the container was not running after 60 s".into()
                },
            )
        })
    }

    /// Takes the running entry: its PID (with its start time) and its
    /// cgroup, which must lie below a parent, never a hierarchy's root.
    fn adopt(&self, c: &mut EngineContainer, seen: &Inspected) -> Result<()> {
        c.started = Instant::now();
        c.pid = seen.pid;
        c.pid_start = crate::cleanup::start_time(seen.pid);
        c.cgroup_path = self.cgroup_of(&c.id, seen);
        if c.cgroup_path
            .parent()
            .is_none_or(|p| p == Path::new("/") || p.as_os_str().is_empty())
        {
            return Err(self.engine.error(
                "inspect",
                &c.id,
                format!("the engine reported no usable cgroup ({:?})", c.cgroup_path),
            ));
        }
        c.cgroup = Some(Arc::from(self.driver.open(&c.cgroup_path)));
        Ok(())
    }
}

/// Copies the attach client's stderr to `to` and keeps its last 4 KiB.
fn forward(
    from: OwnedFd,
    to: Option<OwnedFd>,
    tail: Arc<Mutex<Vec<u8>>>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut from = std::fs::File::from(from);
        let mut to = to.map(std::fs::File::from);
        let mut buf = [0u8; 4096];
        loop {
            match from.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    if let Some(t) = to.as_mut() {
                        let _ = t.write_all(&buf[..n]);
                    }
                    let mut tail = tail.lock().unwrap_or_else(|p| p.into_inner());
                    tail.extend_from_slice(&buf[..n]);
                    let cut = tail.len().saturating_sub(4096);
                    tail.drain(..cut);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
    })
}

/// A container started by Docker or Podman.
#[derive(Debug)]
pub struct EngineContainer {
    engine: Engine,
    id: String,
    /// `<engine> start --attach --interactive`: the container's stdio.
    attach: Option<Child>,
    pid: i32,
    /// The entry's start time, to tell it from a later process of its PID.
    pid_start: Option<u64>,
    cgroup_path: PathBuf,
    /// The container's cgroup, once the engine said which it is.
    cgroup: Option<Arc<dyn Cgroup>>,
    started: Instant,
    kill_timeout: Duration,
    stderr_tail: Arc<Mutex<Vec<u8>>>,
    stderr_thread: Option<std::thread::JoinHandle<()>>,
    done: bool,
    _run: Arc<Runtime>,
}

impl EngineContainer {
    /// The entry has ended: its PID is gone, taken by another process,
    /// or a zombie its shim has not reaped yet.
    fn entry_gone(&self) -> bool {
        if self.pid <= 0 {
            return true;
        }
        match crate::cleanup::proc_stat(self.pid) {
            Some(s) => s.state == 'Z' || Some(s.start) != self.pid_start,
            None => true,
        }
    }

    fn finish(&mut self) -> Result<Outcome> {
        let wall_time = self.started.elapsed();
        self.done = true;
        // The engine's word on the exit (it waits until it has seen it).
        let waited = self
            .engine
            .run("wait", &self.id, &["wait".into(), self.id.clone()]);
        let mut oom_kills = self.cgroup.as_ref().map_or(0, |c| c.oom_kills());
        let oom_killed = self
            .engine
            .output(&[
                "inspect",
                "--type",
                "container",
                "--format",
                "{{.State.OOMKilled}}",
                &self.id,
            ])
            .is_some_and(|s| s.trim() == "true");
        if oom_killed {
            oom_kills = oom_kills.max(1);
        }
        let killed = match &self.cgroup {
            Some(c) => c.kill_all(self.kill_timeout),
            None => Ok(()),
        };
        let removed = self.remove();
        let code: i32 = last_line(&waited?).parse().map_err(|_| {
            self.engine
                .error("wait", &self.id, "it printed no exit code".into())
        })?;
        killed?;
        removed?;
        Ok(Outcome {
            exit: Exit::Code(code),
            oom_killed: oom_kills > 0,
            oom_kills,
            wall_time,
        })
    }

    /// `<engine> rm --force`, and the attach client reaped.
    fn remove(&mut self) -> Result<()> {
        let removed = self.engine.run(
            "rm --force",
            &self.id,
            &["rm".into(), "--force".into(), self.id.clone()],
        );
        if let Some(mut a) = self.attach.take() {
            let deadline = Instant::now() + Duration::from_secs(5);
            while a.try_wait().ok().flatten().is_none() {
                if Instant::now() >= deadline {
                    let _ = a.kill();
                    let _ = a.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        if let Some(t) = self.stderr_thread.take() {
            let _ = t.join();
        }
        removed.map(|_| ())
    }
}

impl Running for EngineContainer {
    fn host_pid(&self) -> i32 {
        self.pid
    }

    fn cgroup_path(&self) -> &Path {
        &self.cgroup_path
    }

    fn killer(&self) -> Arc<dyn Kill> {
        Arc::new(EngineKiller {
            engine: self.engine.clone(),
            id: self.id.clone(),
            pid: self.pid,
            cgroup: self.cgroup.clone(),
            timeout: self.kill_timeout,
        })
    }

    fn has_exited(&self) -> bool {
        self.entry_gone()
    }

    fn try_wait(&mut self) -> Result<Option<Outcome>> {
        let attach_ended = self
            .attach
            .as_mut()
            .and_then(|a| a.try_wait().ok().flatten())
            .is_some();
        if attach_ended || self.entry_gone() {
            return self.finish().map(Some);
        }
        Ok(None)
    }

    fn wait(mut self: Box<Self>) -> Result<Outcome> {
        loop {
            if let Some(o) = self.try_wait()? {
                return Ok(o);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for EngineContainer {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        if let Some(c) = &self.cgroup {
            let _ = c.kill_all(self.kill_timeout);
        }
        if let Err(e) = self.remove() {
            tracing::warn!(
                "removing {} container {}: {}",
                self.engine.kind.name(),
                self.id,
                crate::error::chain(&e)
            );
        }
    }
}

/// Kills an engine's container through its cgroup (the engine's `kill`
/// when the cgroup is gone).
#[derive(Debug)]
struct EngineKiller {
    engine: Engine,
    id: String,
    pid: i32,
    cgroup: Option<Arc<dyn Cgroup>>,
    timeout: Duration,
}

impl Kill for EngineKiller {
    fn signal(&self, sig: Signal) {
        if self.pid > 0 {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid), sig);
        }
    }

    fn kill(&self) -> Result<()> {
        match &self.cgroup {
            Some(c) if !c.dirs().is_empty() => c.kill_all(self.timeout),
            _ => {
                let _ = self.engine.quiet(&["kill", "--signal", "KILL", &self.id]);
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::units::{CpuQuota, CpuSet, MemoryBytes};

    #[test]
    fn limits_become_the_engines_flags() {
        let mut spec = ContainerSpec::new("c", vec!["/x".into(), "y".into()]);
        spec.limits.cpu = Some(CpuQuota::from_cores(0.5, 100_000).unwrap());
        spec.limits.memory = Some(MemoryBytes::new(64 << 20).unwrap());
        spec.limits.pids = Some(64);
        spec.limits.cpuset = Some("0".parse::<CpuSet>().unwrap());
        let a = create_args(EngineKind::Docker, &spec, "img", "1-2-0", "bw-1-2-0-c").unwrap();
        let s = a.join(" ");
        for want in [
            "--network none",
            "--label boxwatch.run=1-2-0",
            "--name bw-1-2-0-c",
            "--cpu-period 100000 --cpu-quota 50000",
            "--memory 67108864b --memory-swap 67108864b",
            "--pids-limit 64",
            "--cpuset-cpus 0",
            "--entrypoint  img /x y",
        ] {
            assert!(s.contains(want), "{want} not in {s}");
        }
        // The engine's defaults are judged: nothing overrides them.
        for never in [
            "--cap-drop",
            "--security-opt",
            "--ulimit",
            "--privileged",
            "--pid ",
            "--cgroupns",
        ] {
            assert!(!s.contains(never), "{never} in {s}");
        }
    }

    #[test]
    fn what_the_cli_cannot_ask_for_is_refused() {
        let mut spec = ContainerSpec::new("c", vec!["/x".into()]);
        spec.namespaces.insert(Namespace::Time);
        let e = create_args(EngineKind::Podman, &spec, "i", "r", "n").unwrap_err();
        assert!(e.contains("time namespace"), "{e}");
        let mut spec = ContainerSpec::new("c", vec!["/x".into()]);
        spec.namespaces.insert(Namespace::User);
        assert!(create_args(EngineKind::Docker, &spec, "i", "r", "n")
            .unwrap_err()
            .contains("userns-remap"));
        let a = create_args(EngineKind::Podman, &spec, "i", "r", "n").unwrap();
        assert!(a.join(" ").contains("--uidmap 0:100000:65536"));
        let mut spec = ContainerSpec::new("c", vec!["/x".into()]);
        spec.namespaces.remove(Namespace::Pid);
        spec.namespaces.remove(Namespace::Net);
        let s = create_args(EngineKind::Docker, &spec, "i", "r", "n")
            .unwrap()
            .join(" ");
        assert!(
            s.contains("--pid host") && s.contains("--network host"),
            "{s}"
        );
    }

    #[test]
    fn refusals_name_what_to_change() {
        let (what, fix) = classify_refusal(
            EngineKind::Podman,
            "Error: unable to start container 2040: runc: runc create failed: unable to start container process: error during container init: error setting rlimits for ready process: error setting rlimit type 7: operation not permitted: OCI permission denied",
        )
        .unwrap();
        assert!(what.contains("RLIMIT_NOFILE"), "{what}");
        assert!(
            fix.contains("default_ulimits") && fix.contains("nofile=N:N"),
            "{fix}"
        );
        let (what, _) = classify_refusal(
            EngineKind::Podman,
            "Error: crun: setrlimit `RLIMIT_NPROC`: Operation not permitted: OCI permission denied",
        )
        .unwrap();
        assert!(what.contains("RLIMIT_NPROC"), "{what}");
        let (what, fix) = classify_refusal(
            EngineKind::Podman,
            "Error: OCI runtime error: crun: cgroups in hybrid mode not supported, drop all controllers from cgroupv2",
        )
        .unwrap();
        assert!(what.contains("hybrid"), "{what}");
        assert!(fix.contains("runtime = \"runc\""), "{fix}");
        assert_eq!(
            classify_refusal(EngineKind::Docker, "Error: No such image"),
            None
        );
    }

    #[test]
    fn inspect_lines_are_parsed() {
        let i = parse_inspect("running|1234|0|false|/libpod_parent/libpod-ab\n").unwrap();
        assert_eq!(i.pid, 1234);
        assert_eq!(i.cgroup, "/libpod_parent/libpod-ab");
        let i = parse_inspect("exited|0|137|true|").unwrap();
        assert!(i.oom_killed && i.exit_code == 137 && i.cgroup.is_empty());
        assert_eq!(parse_inspect("garbage"), None);
    }
}
