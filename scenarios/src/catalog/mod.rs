//! The scenario catalog: one TOML file per scenario, data only. The loader
//! turns a file into a [`Scenario`] or refuses it with the file, the line
//! and the reason; one broken file never stops the others.
//!
//! ```toml
//! id = "cpu-quota-20"
//! title = "A 20% CPU quota holds a spin loop to 20% of one CPU"
//! seed_claim = "cgroup cpu.cfs_quota_us=20000 / period=100000 holds a spin loop to 20%"
//! headline = "cpu_share"    # optional: the measurement a matrix cell shows
//! exclusive = true          # runs alone, even with --jobs (implied for spin, burst, noisy)
//! timeout = "30s"
//!
//! [container]               # every key optional
//! cpu = "0.2"               # CPUs, or "QUOTA/PERIOD" in µs
//! memory = "64M"
//! pids = 64
//! cpuset = "0"
//! namespaces = ["pid", "mount", "uts", "ipc", "net", "cgroup"]
//! hostname = "box"
//! keep_caps = ["sys_admin"]
//! init = false              # tiny init as PID 1
//! monotonic_offset = "10d"  # time namespace offsets
//! boottime_offset = "10d"
//! env = { KEY = "value" }
//! lxcfs = true              # /proc virtualized by a private lxcfs
//! seccomp = "unconfined"    # no seccomp filter (default: the runtime's profile)
//!
//! [workload]
//! name = "spin"             # spin burst noisy hog fork-bomb settimeofday probe-inside orphan-maker escape
//! probe = "devices"         # escape: devices proc-paths capabilities seccomp sockets all
//! threads = 1
//! duration = "5s"
//!
//! [[expect]]
//! check = "cpu-share"
//! title = "the spin loop gets its quota, no more"
//! metric = "cpu_share"      # see `metrics`
//! near = "limit.cpu"        # or equals / at_most / at_least; numbers, booleans,
//! tolerance = 0.02          # text, or references limit.cpu, limit.memory...
//! required = true           # default true; false = informational finding
//! pass = "enforced"         # verdict when it holds: enforced | isolated, or
//! fail = "not-enforced"     # leaked | not-enforced to show a documented leak;
//!                           # fail is its opposite (the default for a missing one)
//! attack = "..."            # one line: what an attacker could do where it leaks
//! informational_on = { crun = "why" }   # runtimes where it is only a finding
//! explained_on = { docker = "why" }      # runtimes whose verdict differs, and why
//! sandboxed = "applies"     # default; "not-applicable" for a check that says
//! # sandboxed_why = "..."   # nothing under a sandboxed runtime (gVisor), why
//! ```
//!
//! An optional `[neighbour]` table with its own `container` and `workload`
//! starts a second container alongside; its metrics are `neighbour.<metric>`.
//!
//! The loader is split by the parts of a file: `load` reads files and
//! assembles a scenario, `file` is the TOML format itself, `container`,
//! `workload` and `expect` turn its tables into the runtime's and the
//! judge's types.

mod container;
mod expect;
mod file;
mod load;
#[cfg(test)]
mod tests;
mod workload;

pub use file::parse_duration;
pub use load::{line_of, load_dir, load_str, load_texts};

use crate::error::Error;
use crate::expect::Expectation;
use crate::workload::Workload;
use runtime::{Capability, Limits, NamespaceSet};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// Default time a scenario may take before it is killed and in `error`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// The largest pids limit a fork bomb may run under.
pub const MAX_FORK_BOMB_PIDS: u64 = 1024;

/// A loaded, valid scenario.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Scenario {
    /// The scenario's id: 1-48 lowercase letters, digits and '-'.
    pub id: String,
    /// One line: what the scenario shows.
    pub title: String,
    /// The claim the scenario tests, as first stated (empty if none).
    pub seed_claim: String,
    /// Longer prose on the scenario (empty if none).
    pub description: String,
    /// The measurement that sums the scenario up in a matrix cell.
    pub headline: Option<String>,
    /// The TOML file the scenario was loaded from.
    pub file: PathBuf,
    /// Runs alone: nothing else overlaps it, even with `--jobs`. Set by the
    /// file, and always for a workload that measures CPU.
    pub exclusive: bool,
    /// Scenarios sharing a lock class never overlap each other.
    pub lock: Option<String>,
    /// How long the scenario may take before it is killed and in `error`
    /// ([`DEFAULT_TIMEOUT`] unless the file says).
    pub timeout: Duration,
    /// The container under test and its workload.
    pub main: Member,
    /// The `[neighbour]` container started alongside, if any.
    pub neighbour: Option<Member>,
    /// The `[[expect]]` checks the judge holds the observations to, in file
    /// order.
    pub expectations: Vec<Expectation>,
}

/// One container of a scenario and what it runs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Member {
    /// The container it runs in.
    pub container: ContainerDef,
    /// What runs inside it.
    pub workload: Workload,
}

/// The container part of a scenario, in the runtime's own types.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ContainerDef {
    /// The namespaces the container gets of its own.
    pub namespaces: NamespaceSet,
    /// The hostname inside (needs the uts namespace; `None`: the
    /// container's name).
    pub hostname: Option<String>,
    /// Its cgroup limits (CPU, memory, pids, cpuset).
    pub limits: Limits,
    /// The capabilities it keeps beyond the runtime's default set.
    pub keep_caps: Vec<Capability>,
    /// Run boxwatch's tiny init as PID 1 (it reaps orphans and forwards
    /// signals); the workload is then PID 2.
    pub init: bool,
    /// The time namespace's CLOCK_MONOTONIC offset, in seconds.
    pub monotonic_offset_secs: i64,
    /// The time namespace's CLOCK_BOOTTIME offset, in seconds.
    pub boottime_offset_secs: i64,
    /// Use the host's root instead of the minimal private one.
    pub host_rootfs: bool,
    /// Extra environment variables for the workload, by name.
    pub env: BTreeMap<String, String>,
    /// Virtualize /proc and the online CPU list with a private lxcfs that
    /// the run starts ([`runtime::lxcfs`]).
    pub lxcfs: bool,
    /// The seccomp profile (the runtime's default unless `unconfined`).
    #[serde(default)]
    pub seccomp: runtime::SeccompMode,
}

impl ContainerDef {
    /// The runtime's spec for this container running `command` (the
    /// runner adds the workload's guard): what a scenario starts, for
    /// anyone who wants the same container with another command.
    pub fn spec(&self, name: &str, command: Vec<String>) -> runtime::ContainerSpec {
        let mut spec = runtime::ContainerSpec::new(name, command);
        spec.namespaces = self.namespaces.clone();
        spec.hostname = self.hostname.clone();
        spec.rootfs = if self.host_rootfs {
            runtime::RootfsSpec::Host
        } else {
            runtime::RootfsSpec::Minimal
        };
        spec.limits = self.limits.clone();
        spec.keep_caps = self.keep_caps.clone();
        spec.seccomp = self.seccomp;
        spec.init = self.init;
        spec.time_offsets = runtime::TimeOffsets {
            monotonic_secs: self.monotonic_offset_secs,
            boottime_secs: self.boottime_offset_secs,
        };
        spec.env = self
            .env
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        spec
    }
}

/// A scenario file that could not be loaded.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LoadError {
    /// The id from the file name (the file's own id may be what is broken).
    pub id: String,
    /// The scenario file.
    pub file: PathBuf,
    /// The 1-based line of the file the problem is on (1 when it is the
    /// file as a whole).
    pub line: usize,
    /// Why the file was refused.
    pub reason: String,
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: {}", self.file.display(), self.line, self.reason)
    }
}

impl From<LoadError> for Error {
    fn from(e: LoadError) -> Error {
        Error::Catalog {
            file: e.file,
            line: e.line,
            reason: e.reason,
        }
    }
}

/// One file of the catalog: a scenario, or why it was refused.
pub type Entry = Result<Scenario, LoadError>;

/// The check ids every scenario gets without asking: its containers'
/// processes are in the cgroup it judges.
pub const PLACEMENT_CHECKS: [&str; 2] = ["placement", "neighbour-placement"];
