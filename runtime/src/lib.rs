//! boxwatch's built-in container runtime.
//!
//! A [`ContainerSpec`] says what to isolate and limit; [`Runtime::spawn`]
//! turns it into a running [`Container`] (namespaces, private rootfs,
//! cgroups), and [`Container::wait`] turns that into an [`Outcome`].
//!
//! Privileged code of the project lives in this crate; all of its `unsafe`
//! is in `sys.rs`. Must not depend on: `probes`, `scenarios`, `reports`,
//! `exporter` (the judge must stay independent of what it judges).

//!
//! # The public surface
//!
//! What other crates use is re-exported at the root (below). A few modules
//! stay public as namespaces, each for a reason:
//!
//! - [`backend`]: the second entry point, one [`backend::Backend`] trait
//!   over the builtin runtime, runc/crun/runsc and the Docker and Podman
//!   engines (`backend::open`);
//! - [`cgroup`]: the drivers and the host's layout, which the CLI and the
//!   driver tests use directly (`cgroup::detect`, `cgroup::parse_parent`);
//! - [`cleanup`]: the `/proc/<pid>/stat` reading that tests and benches use
//!   to tell a run's processes (`cleanup::proc_stat`, `cleanup::start_time`);
//! - [`error`]: the error type and [`error::chain`], the way a library error
//!   becomes text;
//! - [`fault`]: the name of the mutation suite's switch ([`fault::ENV`]);
//! - [`init`] and [`oci`]: the re-executed stages `main` dispatches to
//!   ([`init::dispatch`], [`oci::dispatch`]), and the OCI runtimes' state
//!   layout, which the dead-run tests and benches read (`oci::owner`,
//!   `oci::stale`, `oci::bundle`);
//! - [`lxcfs`]: the private lxcfs a run starts, and whether it can;
//! - [`spec`] and [`units`]: the data model and the parsers of its values,
//!   which the CLI's argument parsers call;
//! - [`raw`]: the raw system calls of the workloads.
//!
//! Everything else (the container's spawn, the setup stage's protocol, the
//! rootfs, seccomp, timing, the engines' CLI driving, the raw system
//! calls) is private.

#![deny(missing_docs)]

pub mod backend;
pub mod cgroup;
pub mod cleanup;
mod container;
mod engine;
pub mod error;
pub mod fault;
pub mod init;
pub mod lxcfs;
mod message;
pub mod oci;
mod rootfs;
mod seccomp;
mod shared_dir;
pub mod spec;
mod sys;
mod timing;
pub mod units;

/// The raw system calls that boxwatch's workloads need (they run inside
/// containers: a fork bomb, an orphan maker, a settimeofday attempt). They
/// live here so that all of the project's `unsafe` stays in `sys.rs`.
pub mod raw {
    pub use crate::sys::{exit_now, fork_single_threaded, probe_syscall, settimeofday, ProbeCall};
    pub use nix::unistd::ForkResult;
}

/// The program `name` in PATH, or in the usual sbin and bin directories
/// (runc, crun, lxcfs).
pub fn find_in_path(name: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/bin", "/sbin", "/bin"].map(std::path::PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

pub use cgroup::{CgroupInfo, CgroupMode};
pub use container::{
    booted_by_boxwatch, Container, Exit, Killer, Outcome, Runtime, RuntimeConfig, Stdio, VM_MARKER,
};
pub use error::Error;
pub use rootfs::CONTAINER_EXE;
pub use seccomp::SeccompMode;
pub use spec::{
    Capability, ContainerSpec, Guard, IdMap, LimitKind, Limits, Namespace, NamespaceSet,
    RootfsSpec, TimeOffsets,
};
pub use units::{CpuQuota, CpuSet, MemoryBytes};
