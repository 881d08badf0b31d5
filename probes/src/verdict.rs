//! The judgement of one check.

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
    pub const ALL: [Verdict; 7] = [
        Verdict::Isolated,
        Verdict::Leaked,
        Verdict::Enforced,
        Verdict::NotEnforced,
        Verdict::Unsupported,
        Verdict::NotApplicable,
        Verdict::Error,
    ];

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
