//! The report model: what one `boxwatch scenarios` run found, as data.
//!
//! Serialized as JSON with the schema named by [`SCHEMA_VERSION`] and
//! documented field by field in `reports/SCHEMA.md`. Field order in the JSON
//! is the declaration order below; maps are sorted by key, so two runs with
//! the same results produce byte-identical JSON.
//!
//! Compatibility rule: adding an optional field keeps `v1`; removing or
//! renaming a field, or changing its meaning, bumps the version.

pub use crate::verdict::Evidence;
use crate::verdict::Verdict;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// The schema this crate writes and the only one it reads as a baseline.
pub const SCHEMA_VERSION: &str = "boxwatch.report/v2";

/// One run of boxwatch scenarios on one host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Always [`SCHEMA_VERSION`] when written by this crate.
    pub schema_version: String,
    /// When the run finished, RFC 3339 in UTC.
    pub generated_at: DateTime<Utc>,
    /// Version of the boxwatch binary that ran the scenarios.
    pub tool_version: String,
    /// The machine the scenarios ran on.
    pub host: HostInfo,
    /// The container runtime that launched the scenario containers.
    pub runtime: RuntimeInfo,
    /// Every scenario that was selected, in run order.
    pub scenarios: Vec<ScenarioResult>,
    /// Counts over `scenarios` and `regressions`.
    pub summary: Summary,
    /// Checks and scenarios that held in the baseline and do not now. Empty
    /// when no baseline was given.
    #[serde(default)]
    pub regressions: Vec<Regression>,
}

/// The kernel and machine facts that decide which checks can run.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct HostInfo {
    /// `uname -r`.
    pub kernel_release: String,
    /// The host's hostname (as seen from the harness, outside any container).
    pub hostname: String,
    /// Online CPUs of the host.
    pub cpus: u32,
    /// Host memory (`MemTotal`) in bytes.
    pub memory_bytes: u64,
    /// How cgroups are mounted.
    pub cgroup_mode: CgroupMode,
    /// Available cgroup controllers, sorted (e.g. `cpu`, `memory`, `pids`).
    pub controllers: Vec<String>,
    /// Those of them attached to the cgroup2 hierarchy, sorted: all of them
    /// on a v2 host, none on a v1 host, the few on the unified mount of a
    /// hybrid host. Absent in reports written before it existed.
    #[serde(default)]
    pub controllers_v2: Vec<String>,
    /// Namespace kinds this kernel supports (`pid`, `mnt`, `uts`, `ipc`,
    /// `net`, `cgroup`, `user`, `time`), sorted.
    pub namespaces_supported: Vec<String>,
    /// Kernel features probed by name: `cgroup.kill`, `memory.events`,
    /// `psi`, `time_namespace`, ... `true` when present.
    pub features: BTreeMap<String, bool>,
    /// True when boxwatch runs inside a virtual machine.
    pub in_vm: bool,
}

/// How the cgroup filesystems are mounted on the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CgroupMode {
    /// Only cgroup v1 hierarchies.
    V1,
    /// The unified cgroup v2 hierarchy only.
    #[default]
    V2,
    /// v1 controller hierarchies plus a cgroup2 mount (`/sys/fs/cgroup/unified`).
    Hybrid,
}

impl CgroupMode {
    /// The JSON spelling: `v1`, `v2` or `hybrid`.
    pub fn as_str(self) -> &'static str {
        match self {
            CgroupMode::V1 => "v1",
            CgroupMode::V2 => "v2",
            CgroupMode::Hybrid => "hybrid",
        }
    }
}

impl fmt::Display for CgroupMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The runtime that launched the scenario containers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuntimeInfo {
    /// Which runtime.
    pub name: RuntimeName,
    /// Its version string (`runc --version` first line, or boxwatch's own
    /// version for the builtin runtime).
    pub version: String,
}

/// The runtimes boxwatch can drive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuntimeName {
    /// boxwatch's own runtime crate.
    Builtin,
    /// runc, through an OCI bundle.
    Runc,
    /// crun, through an OCI bundle.
    Crun,
    /// gVisor's runsc, through an OCI bundle: a sandboxed runtime.
    Runsc,
    /// Docker, through its CLI, on boxwatch's own image.
    Docker,
    /// Podman, through its CLI, on boxwatch's own image.
    Podman,
}

impl RuntimeName {
    /// The JSON spelling: `builtin`, `runc`, `crun` or `runsc`.
    pub fn as_str(self) -> &'static str {
        match self {
            RuntimeName::Builtin => "builtin",
            RuntimeName::Runc => "runc",
            RuntimeName::Crun => "crun",
            RuntimeName::Runsc => "runsc",
            RuntimeName::Docker => "docker",
            RuntimeName::Podman => "podman",
        }
    }

    /// Whether the runtime runs the workload in a sandbox with its own
    /// kernel (gVisor): the host sees the sandbox, not the workload.
    pub fn sandboxed(self) -> bool {
        matches!(self, RuntimeName::Runsc)
    }
}

impl fmt::Display for RuntimeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The outcome of one scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScenarioResult {
    /// Catalog id, e.g. `cpu-quota-20`.
    pub id: String,
    /// One-line title.
    pub title: String,
    /// What the scenario proves, in a sentence or two.
    pub description: String,
    /// Derived from `checks` and `error` by [`crate::scenario_status`].
    pub status: Status,
    /// Wall time of the scenario, in milliseconds.
    pub duration_ms: u64,
    /// The limits the scenario's container ran under (for plots and text).
    #[serde(default)]
    pub limits: Limits,
    /// Every check, required and informational, in catalog order.
    pub checks: Vec<CheckResult>,
    /// Named numbers measured by the scenario, e.g. `cpu_share` (fraction
    /// of one CPU), `memory_peak_bytes`, `nr_throttled`.
    pub measurements: BTreeMap<String, f64>,
    /// Host-side usage of the scenario's container over time, oldest first.
    pub samples: Vec<Sample>,
    /// Set when the scenario itself could not be carried out (spawn failed,
    /// timeout...); the scenario's status is then at least `error`.
    pub error: Option<String>,
    /// The seed document claim this scenario turns into a check.
    pub seed_claim: Option<String>,
    /// The measurement that sums the scenario up (a key of `measurements`),
    /// shown in the kernel-compatibility matrix; absent when none does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headline: Option<String>,
    /// Earlier tries whose CPU measurement was inconclusive (the host's
    /// load explained a shortfall), oldest first; this result is the last
    /// try. Empty when the first try was conclusive.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub earlier_tries: Vec<EarlierTry>,
}

/// One earlier try of a scenario, as judged then.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EarlierTry {
    /// Wall time of that try, in milliseconds.
    pub duration_ms: u64,
    /// Its required checks that did not hold.
    pub checks: Vec<CheckResult>,
}

impl ScenarioResult {
    /// The earlier tries in one line (`try 1 (5.1 s): cpu-share error:
    /// ...`), when there were any.
    pub fn tries_line(&self) -> Option<String> {
        if self.earlier_tries.is_empty() {
            return None;
        }
        let tries: Vec<String> = self
            .earlier_tries
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let checks: Vec<String> = t
                    .checks
                    .iter()
                    .map(|c| format!("{} {}: {}", c.id, c.verdict, c.observed))
                    .collect();
                format!(
                    "try {} ({:.1} s): {}",
                    i + 1,
                    t.duration_ms as f64 / 1000.0,
                    checks.join("; ")
                )
            })
            .collect();
        Some(format!(
            "tried {} times (an inconclusive CPU measurement is tried again): {}",
            tries.len() + 1,
            tries.join(" | ")
        ))
    }
}

/// The limits a scenario's container ran under. `None` means unlimited or
/// not set by the scenario.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Limits {
    /// CPU quota as a fraction of one CPU (`cpu.max` 20000/100000 = 0.2).
    pub cpu_quota: Option<f64>,
    /// Memory limit in bytes.
    pub memory_bytes: Option<u64>,
    /// Maximum number of tasks (`pids.max`).
    pub pids_max: Option<u64>,
}

/// A scenario's status, derived by [`crate::scenario_status`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Every required check held (or was unsupported, with at least one held).
    Pass,
    /// A required check reached a verdict other than the expected one.
    Fail,
    /// Every required check was unsupported on this kernel.
    Unsupported,
    /// No required check applies to this runtime's model (a sandboxed
    /// runtime), some perhaps unsupported as well.
    #[serde(rename = "not-applicable")]
    NotApplicable,
    /// The scenario, or a required check, could not be carried out.
    Error,
}

impl Status {
    /// All statuses, in the order summaries list them.
    pub const ALL: [Status; 5] = [
        Status::Pass,
        Status::Fail,
        Status::Unsupported,
        Status::NotApplicable,
        Status::Error,
    ];

    /// The JSON spelling: `pass`, `fail`, `unsupported`, `not-applicable`
    /// or `error`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Fail => "fail",
            Status::Unsupported => "unsupported",
            Status::NotApplicable => "not-applicable",
            Status::Error => "error",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One judged expectation of a scenario.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckResult {
    /// Id unique within its scenario, e.g. `cpu-share-within-tolerance`.
    pub id: String,
    /// What the check found.
    pub verdict: Verdict,
    /// The verdict the scenario expects; the check holds when
    /// `verdict == expected`.
    pub expected: Verdict,
    /// The measurement in human words, e.g. `cpu_share 0.201 (quota 0.20 ± 0.02)`.
    pub observed: String,
    /// Required checks decide the scenario's status; informational ones
    /// (documented leaks such as `/proc`) are reported as findings only.
    pub required: bool,
    /// Anything else worth reading: the cause of an error, a fix hint.
    pub detail: Option<String>,
    /// Why the check is `unsupported`: positive evidence that the kernel,
    /// the runtime or the host lacks the feature. A required check that is
    /// `unsupported` without it counts as `error`. `None` otherwise.
    #[serde(default)]
    pub evidence: Option<Evidence>,
}

impl CheckResult {
    /// True when the check reached its expected verdict.
    pub fn held(&self) -> bool {
        self.verdict == self.expected
    }

    /// True for an informational check whose verdict is `leaked` or
    /// `not-enforced`: something the report lists as a finding without
    /// failing the scenario.
    pub fn is_finding(&self) -> bool {
        !self.required && matches!(self.verdict, Verdict::Leaked | Verdict::NotEnforced)
    }
}

/// One host-side reading of the scenario container's cgroup. Counters are
/// cumulative since the container started; `None` when the host does not
/// expose the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Sample {
    /// Milliseconds since the container started.
    pub t_ms: u64,
    /// Cumulative CPU time, nanoseconds (`cpuacct.usage` / `cpu.stat usage_usec`).
    pub cpu_usage_ns: Option<u64>,
    /// Current memory usage, bytes.
    pub memory_bytes: Option<u64>,
    /// Cumulative CFS periods elapsed.
    pub nr_periods: Option<u64>,
    /// Cumulative CFS periods throttled.
    pub nr_throttled: Option<u64>,
    /// Cumulative throttled time, nanoseconds.
    pub throttled_ns: Option<u64>,
    /// Tasks in the cgroup (`pids.current`).
    pub pids: Option<u64>,
    /// Cumulative OOM kills in the cgroup (absent in reports that predate
    /// it, and where the kernel does not count them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oom_kills: Option<u64>,
}

/// Counts over a report's scenarios, checks and regressions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Summary {
    /// Number of scenarios.
    pub scenarios: usize,
    /// Scenarios with status `pass`.
    pub passed: usize,
    /// Scenarios with status `fail`.
    pub failed: usize,
    /// Scenarios with status `unsupported`.
    pub unsupported: usize,
    /// Scenarios with status `not-applicable` (absent in older reports).
    #[serde(default)]
    pub not_applicable: usize,
    /// Scenarios with status `error`.
    pub errored: usize,
    /// Number of checks over all scenarios.
    pub checks: usize,
    /// Checks whose verdict equals the expected one.
    pub checks_held: usize,
    /// Informational checks that found a leak or an unenforced limit.
    pub findings: usize,
    /// Length of `regressions`.
    pub regressions: usize,
}

/// Something that held in the baseline report and does not now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Regression {
    /// The scenario it belongs to.
    pub scenario_id: String,
    /// The check that regressed; `None` for a scenario-level regression.
    pub check_id: Option<String>,
    /// Which kind of regression.
    pub kind: RegressionKind,
    /// Whether the check is required now (scenario regressions: `true`).
    pub required: bool,
    /// Before: the check's verdict or the scenario's status in the baseline.
    pub baseline: String,
    /// Now: the check's verdict (`missing` if gone) or the scenario's status.
    pub current: String,
    /// What the check expects; `None` for a scenario-level regression.
    pub expected: Option<Verdict>,
    /// The scenario's measurements present in both reports, to show alongside.
    pub measurements: BTreeMap<String, MeasurementChange>,
}

/// The kinds of [`Regression`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RegressionKind {
    /// A check whose verdict equalled its expected verdict in the baseline
    /// and does not now.
    CheckNoLongerHolds,
    /// A scenario that passed in the baseline and fails now, with no check
    /// regression to explain it (a new or vanished check).
    ScenarioNowFails,
}

impl RegressionKind {
    /// The JSON spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            RegressionKind::CheckNoLongerHolds => "check-no-longer-holds",
            RegressionKind::ScenarioNowFails => "scenario-now-fails",
        }
    }
}

/// One measurement in the baseline and now.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MeasurementChange {
    /// Value in the baseline report.
    pub baseline: f64,
    /// Value in the current report.
    pub current: f64,
}

impl Regression {
    /// `scenario` or `scenario/check`: how every renderer names it.
    pub fn name(&self) -> String {
        match &self.check_id {
            Some(check) => format!("{}/{}", self.scenario_id, check),
            None => self.scenario_id.clone(),
        }
    }
}
