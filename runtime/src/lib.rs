//! boxwatch's built-in container runtime.
//!
//! A [`ContainerSpec`] says what to isolate and limit; [`Runtime::spawn`]
//! turns it into a running [`Container`] (namespaces, private rootfs,
//! cgroups), and [`Container::wait`] turns that into an [`Outcome`].
//!
//! Privileged code of the project lives in this crate; all of its `unsafe`
//! is in `sys.rs`. Must not depend on: `probes`, `scenarios`, `reports`,
//! `exporter` (the judge must stay independent of what it judges).

pub mod backend;
pub mod cgroup;
pub mod cleanup;
pub mod container;
pub mod engine;
pub mod error;
pub mod fault;
pub mod init;
pub mod lxcfs;
pub mod oci;
pub mod rootfs;
pub mod seccomp;
pub mod shared_dir;
pub mod spec;
mod sys;
pub mod timing;

/// The raw system calls that boxwatch's workloads need (they run inside
/// containers: a fork bomb, an orphan maker, a settimeofday attempt). They
/// live here so that all of the project's `unsafe` stays in `sys.rs`.
pub mod raw {
    pub use crate::sys::{exit_now, fork_single_threaded, probe_syscall, settimeofday, ProbeCall};
    pub use nix::unistd::ForkResult;
}
pub mod units;

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
