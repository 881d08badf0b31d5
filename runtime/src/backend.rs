//! Runtimes behind one interface, so the same scenarios and the same judge
//! run against boxwatch's built-in runtime and against OCI runtimes (runc,
//! crun) alike.
//!
//! ```no_run
//! use runtime::backend::{self, BackendKind};
//! use runtime::{ContainerSpec, RuntimeConfig, Stdio};
//! let config = RuntimeConfig::new(std::env::current_exe()?);
//! let backend = backend::open(BackendKind::Runc, config, None)?;
//! let spec = ContainerSpec::new("c1", vec!["/bin/true".into()]);
//! let outcome = backend.spawn(&spec, Stdio::default())?.wait()?;
//! println!("{} {}: {:?}", backend.name(), backend.version(), outcome.exit);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use crate::container::{Container, Killer, Outcome, Runtime, RuntimeConfig, Stdio};
use crate::engine::{EngineBackend, EngineKind};
use crate::error::{Error, Result};
use crate::oci::{OciBackend, OciKind};
use crate::spec::ContainerSpec;
use nix::sys::signal::Signal;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

/// A container runtime that turns a [`ContainerSpec`] into a running
/// container.
pub trait Backend: Send + Sync + fmt::Debug {
    /// `builtin`, `runc`, `crun`, `runsc`, `docker` or `podman`.
    fn kind(&self) -> BackendKind;
    /// The runtime's name as reports spell it.
    fn name(&self) -> &'static str {
        self.kind().as_str()
    }
    /// Its version (`runc version 1.1.5+ds1`; boxwatch's own for builtin).
    fn version(&self) -> String;
    /// What a report should say about how this runtime was run (for
    /// example that crun ran with the cgroup2 mount hidden).
    fn notes(&self) -> Vec<String> {
        Vec::new()
    }
    /// Whether the runtime runs the workload in a sandbox with its own
    /// kernel (gVisor): the host sees the sandbox's processes, not the
    /// workload's, and host-side namespace comparisons say nothing.
    fn sandboxed(&self) -> bool {
        false
    }
    /// Whether the container's cgroup goes as soon as its entry exits, before
    /// boxwatch reads the exit (Docker and Podman remove it themselves);
    /// the builtin runtime, runc and crun keep it until the container is
    /// dropped, so its last figures can be read after the exit.
    fn cgroup_goes_with_entry(&self) -> bool {
        false
    }
    /// The cgroup of this run, relative to the hierarchy roots
    /// (`/boxwatch/<run-id>`); containers are created below it.
    fn run_cgroup(&self) -> PathBuf;
    /// This run's state directory (`/run/boxwatch/<run-id>`), where a
    /// caller may keep what belongs to the run (its lxcfs mount point).
    fn run_state_dir(&self) -> PathBuf;
    /// Starts `spec`; returns once the entry command runs.
    fn spawn(&self, spec: &ContainerSpec, stdio: Stdio) -> Result<Box<dyn Running>>;
}

/// A started container, whatever runtime started it. Its entry process is
/// a child of this process (for OCI runtimes, by way of
/// PR_SET_CHILD_SUBREAPER), so it can be waited for, and it is not reaped
/// before [`Running::wait`] or [`Running::try_wait`]. Dropping it kills
/// the container and removes everything it used.
pub trait Running: Send + fmt::Debug {
    /// The entry process's PID on the host.
    fn host_pid(&self) -> i32;
    /// The container's cgroup path relative to the hierarchy roots.
    fn cgroup_path(&self) -> &Path;
    /// A handle that signals or kills the container from another thread.
    fn killer(&self) -> Arc<dyn Kill>;
    /// What the runtime reported while setting up (`rootfs=pivot_root`).
    fn setup_notes(&self) -> Vec<String> {
        Vec::new()
    }
    /// Whether the entry has ended, without reaping it or cleaning up.
    /// The default looks at the entry as a child of this process
    /// (`waitid(WNOWAIT)`); an engine's entry is not one.
    fn has_exited(&self) -> bool {
        use nix::sys::wait::{waitid, Id, WaitPidFlag, WaitStatus};
        let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT;
        match waitid(Id::Pid(nix::unistd::Pid::from_raw(self.host_pid())), flags) {
            Ok(WaitStatus::StillAlive) => false,
            Ok(_) => true,
            Err(nix::errno::Errno::EINTR) => false,
            Err(_) => true,
        }
    }
    /// Returns `None` at once while the entry runs; else cleans up.
    fn try_wait(&mut self) -> Result<Option<Outcome>>;
    /// Waits for the entry command, kills what is left, reads the OOM kill
    /// count, and removes the container (cgroups, state, bundle).
    fn wait(self: Box<Self>) -> Result<Outcome>;
}

/// Signals or kills a running container.
pub trait Kill: Send + Sync + fmt::Debug {
    /// Sends `sig` to the container's first process.
    fn signal(&self, sig: Signal);
    /// Kills every process of the container and waits until none is left.
    fn kill(&self) -> Result<()>;
}

/// The runtimes boxwatch can drive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BackendKind {
    /// boxwatch's own runtime (this crate).
    Builtin,
    /// runc, through its command line.
    Runc,
    /// crun, through its command line.
    Crun,
    /// gVisor: a sandboxed OCI runtime.
    Runsc,
    /// Docker, through its CLI, with the engine's defaults.
    Docker,
    /// Podman, through its CLI, with the engine's defaults.
    Podman,
}

impl BackendKind {
    /// Every backend, in the order reports list them.
    pub const ALL: [BackendKind; 6] = [
        BackendKind::Builtin,
        BackendKind::Runc,
        BackendKind::Crun,
        BackendKind::Runsc,
        BackendKind::Docker,
        BackendKind::Podman,
    ];

    /// The name `--runtime` takes (`builtin`, `runc`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            BackendKind::Builtin => "builtin",
            BackendKind::Runc => "runc",
            BackendKind::Crun => "crun",
            BackendKind::Runsc => "runsc",
            BackendKind::Docker => "docker",
            BackendKind::Podman => "podman",
        }
    }
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for BackendKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        BackendKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| Error::UnknownBackend { name: s.into() })
    }
}

/// Opens the backend `kind`. `runtime_path` overrides where the OCI
/// runtime's binary is (default: `runc`/`crun` from PATH); it is refused
/// for the builtin runtime. Whatever the kind, OCI containers that killed
/// runs left behind are removed first ([`crate::oci::stale`]).
pub fn open(
    kind: BackendKind,
    config: RuntimeConfig,
    runtime_path: Option<PathBuf>,
) -> Result<Box<dyn Backend>> {
    match kind {
        BackendKind::Builtin => {
            if let Some(p) = runtime_path {
                return Err(Error::InvalidSpec(format!(
                    "--runtime-path {} is for the OCI runtimes (runc, crun), not the builtin one",
                    p.display()
                )));
            }
            Ok(Box::new(Runtime::new(config)?))
        }
        BackendKind::Runc => Ok(Box::new(OciBackend::new(
            OciKind::Runc,
            runtime_path,
            config,
        )?)),
        BackendKind::Crun => Ok(Box::new(OciBackend::new(
            OciKind::Crun,
            runtime_path,
            config,
        )?)),
        BackendKind::Runsc => Ok(Box::new(OciBackend::new(
            OciKind::Runsc,
            runtime_path,
            config,
        )?)),
        BackendKind::Docker => Ok(Box::new(EngineBackend::new(
            EngineKind::Docker,
            runtime_path,
            config,
        )?)),
        BackendKind::Podman => Ok(Box::new(EngineBackend::new(
            EngineKind::Podman,
            runtime_path,
            config,
        )?)),
    }
}

impl Backend for Runtime {
    fn kind(&self) -> BackendKind {
        BackendKind::Builtin
    }

    fn version(&self) -> String {
        format!("boxwatch {}", env!("CARGO_PKG_VERSION"))
    }

    fn run_cgroup(&self) -> PathBuf {
        Runtime::run_cgroup(self)
    }

    fn run_state_dir(&self) -> PathBuf {
        Runtime::run_state_dir(self)
    }

    fn spawn(&self, spec: &ContainerSpec, stdio: Stdio) -> Result<Box<dyn Running>> {
        Ok(Box::new(Runtime::spawn(self, spec, stdio)?))
    }
}

impl Running for Container {
    fn host_pid(&self) -> i32 {
        Container::host_pid(self)
    }

    fn cgroup_path(&self) -> &Path {
        Container::cgroup_path(self)
    }

    fn killer(&self) -> Arc<dyn Kill> {
        Arc::new(Container::killer(self))
    }

    fn setup_notes(&self) -> Vec<String> {
        Container::setup_notes(self).to_vec()
    }

    fn try_wait(&mut self) -> Result<Option<Outcome>> {
        Container::try_wait(self)
    }

    fn wait(self: Box<Self>) -> Result<Outcome> {
        Container::wait(*self)
    }
}

impl Kill for Killer {
    fn signal(&self, sig: Signal) {
        Killer::signal(self, sig)
    }

    fn kill(&self) -> Result<()> {
        Killer::kill(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_parse_by_their_report_names_only() {
        for k in BackendKind::ALL {
            assert_eq!(k.as_str().parse::<BackendKind>().unwrap(), k);
        }
        let e = "lxc".parse::<BackendKind>().unwrap_err().to_string();
        assert!(
            e.contains("builtin, runc, crun, runsc, docker or podman"),
            "{e}"
        );
    }

    #[test]
    fn a_runtime_path_is_refused_for_the_builtin_runtime() {
        let cfg = RuntimeConfig::new(PathBuf::from("/bin/true"));
        let e = open(BackendKind::Builtin, cfg, Some("/usr/sbin/runc".into())).unwrap_err();
        assert!(e.to_string().contains("--runtime-path"), "{e}");
    }
}
