//! The judgement of one check, as a report carries it: the scenarios
//! judge with it, the renderers and the exporter show it.

use serde::{Deserialize, Serialize};
use std::fmt;

/// What a check found. `Unsupported` means the kernel lacks the feature: it
/// is not a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// The container's view is separate from the host's.
    Isolated,
    /// Something of the host is visible or changeable from inside.
    Leaked,
    /// A limit held.
    Enforced,
    /// A limit did not hold.
    NotEnforced,
    /// The kernel or host lacks the feature; nothing to judge.
    Unsupported,
    /// The check does not apply to this runtime's model (a sandboxed
    /// runtime: the host sees the sandbox, not the workload); nothing to
    /// judge, and not a lack of support either.
    NotApplicable,
    /// The check itself could not be carried out.
    Error,
}

impl Verdict {
    /// Every verdict, in the order reports list them.
    pub const ALL: [Verdict; 7] = [
        Verdict::Isolated,
        Verdict::Leaked,
        Verdict::Enforced,
        Verdict::NotEnforced,
        Verdict::Unsupported,
        Verdict::NotApplicable,
        Verdict::Error,
    ];

    /// The verdict's name in reports and metrics (`not-enforced`).
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Isolated => "isolated",
            Verdict::Leaked => "leaked",
            Verdict::Enforced => "enforced",
            Verdict::NotEnforced => "not-enforced",
            Verdict::Unsupported => "unsupported",
            Verdict::NotApplicable => "not-applicable",
            Verdict::Error => "error",
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a check is `unsupported`: positive evidence that the kernel, the
/// runtime or the host lacks what the check needs. A check the judge could
/// not observe for any other reason is an `error`, never `unsupported`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Evidence {
    /// The kernel has no such cgroup controller: `source` (`/proc/cgroups`,
    /// a `cgroup.controllers` file) does not list it, or lists it disabled.
    KernelController {
        /// The controller (`memory`, `pids`).
        controller: String,
        /// The file that does not list it.
        source: String,
    },
    /// The kernel has no such namespace: `/proc/self/ns/<namespace>` is
    /// missing.
    KernelNamespace {
        /// The namespace's name (`time`, `cgroup`).
        namespace: String,
    },
    /// The kernel's cgroupfs has no such file in a cgroup where its
    /// controller is enabled (an older kernel): `path` does not exist.
    KernelFile {
        /// The file that does not exist.
        path: String,
    },
    /// The kernel (release `release`) does not have the feature.
    KernelVersion {
        /// `uname -r`.
        release: String,
        /// What it lacks.
        feature: String,
    },
    /// The runtime does not offer it: its `features` output, or a
    /// documented refusal (`detail` quotes it).
    Runtime {
        /// The runtime's name (`runc`, `crun`).
        runtime: String,
        /// Its own words.
        detail: String,
    },
    /// The host lacks a tool the check needs (lxcfs not installed).
    HostTool {
        /// The tool's name.
        tool: String,
        /// What is missing of it.
        detail: String,
    },
    /// boxwatch's own safety rule keeps the check from running here (a
    /// clock write outside a throwaway VM).
    NotAllowedHere {
        /// The rule, in words.
        rule: String,
    },
}

impl Evidence {
    /// The evidence in words, for every renderer.
    pub fn describe(&self) -> String {
        match self {
            Evidence::KernelController { controller, source } => {
                format!("kernel: no {controller} cgroup controller ({source})")
            }
            Evidence::KernelNamespace { namespace } => {
                format!("kernel: no {namespace} namespace (/proc/self/ns/{namespace} is missing)")
            }
            Evidence::KernelFile { path } => format!("kernel: {path} does not exist"),
            Evidence::KernelVersion { release, feature } => {
                format!("kernel {release}: no {feature}")
            }
            Evidence::Runtime { runtime, detail } => format!("runtime {runtime}: {detail}"),
            Evidence::HostTool { tool, detail } => format!("host: no {tool} ({detail})"),
            Evidence::NotAllowedHere { rule } => format!("not allowed on this host: {rule}"),
        }
    }
}

impl fmt::Display for Evidence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}
