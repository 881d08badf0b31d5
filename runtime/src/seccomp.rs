//! The builtin runtime's default seccomp profile, modelled on Docker's: a
//! deny-list of the system calls container escapes rely on, each answered
//! with `EPERM` (`clone3` with `ENOSYS`, so that glibc falls back to
//! `clone`, whose flags a filter can see). As in Docker, a rule tied to a
//! capability is left out when the spec keeps that capability (a container
//! given CAP_SYS_ADMIN may mount), and `ptrace` is allowed: since Linux 4.8
//! seccomp runs after a tracer's changes, so it cannot be used to get round
//! the filter.
//!
//! The same profile is installed by the setup stage (compiled to BPF by
//! `seccompiler`, after no_new_privs, right before exec) and written into
//! OCI bundles as `linux.seccomp`, so that runc and crun are judged on the
//! profile boxwatch claims for them.
//!
//! Limits: the filter matches x86_64 system call numbers; a call made
//! through another ABI is killed by seccompiler's architecture check (OCI:
//! libseccomp's bad-architecture action), and x32 numbers are left to the
//! kernel, which refuses them unless booted with `syscall.x32=y`.

use crate::error::{Error, Result};
use crate::spec::ContainerSpec;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Which seccomp profile a container gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SeccompMode {
    /// boxwatch's Docker-like default profile (`RULES`).
    #[default]
    Default,
    /// No filter at all (`--seccomp unconfined`).
    Unconfined,
}

impl std::str::FromStr for SeccompMode {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "default" => Ok(SeccompMode::Default),
            "unconfined" => Ok(SeccompMode::Unconfined),
            other => Err(Error::InvalidValue {
                what: "seccomp profile",
                value: other.into(),
                expected: "default or unconfined".into(),
            }),
        }
    }
}

impl std::fmt::Display for SeccompMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SeccompMode::Default => "default",
            SeccompMode::Unconfined => "unconfined",
        })
    }
}

/// One denied system call.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    pub name: &'static str,
    pub nr: libc::c_long,
    /// Deny only when the first argument has all these bits (clone and
    /// unshare with CLONE_NEWUSER).
    pub arg0_has: Option<u64>,
    pub errno: i32,
    /// Left out when the spec keeps this capability (Docker's rule).
    pub unless_cap: Option<caps::Capability>,
}

const fn deny(name: &'static str, nr: libc::c_long, unless_cap: Option<caps::Capability>) -> Rule {
    Rule {
        name,
        nr,
        arg0_has: None,
        errno: libc::EPERM,
        unless_cap,
    }
}

use caps::Capability as C;
const ADMIN: Option<C> = Some(C::CAP_SYS_ADMIN);
const NEWUSER: u64 = libc::CLONE_NEWUSER as u64;

/// The default profile.
pub const RULES: [Rule; 34] = [
    // Kernel keyrings are not namespaced: another container's keys.
    deny("keyctl", libc::SYS_keyctl, None),
    deny("add_key", libc::SYS_add_key, None),
    deny("request_key", libc::SYS_request_key, None),
    // Kernel memory and tracing of the whole host.
    deny("bpf", libc::SYS_bpf, ADMIN),
    deny("perf_event_open", libc::SYS_perf_event_open, ADMIN),
    // The classic helper of use-after-free exploits.
    deny("userfaultfd", libc::SYS_userfaultfd, None),
    // A user namespace gives back every capability, inside it.
    Rule {
        arg0_has: Some(NEWUSER),
        ..deny("unshare", libc::SYS_unshare, ADMIN)
    },
    Rule {
        arg0_has: Some(NEWUSER),
        ..deny("clone", libc::SYS_clone, ADMIN)
    },
    // clone3's flags are in memory a filter cannot read.
    Rule {
        errno: libc::ENOSYS,
        ..deny("clone3", libc::SYS_clone3, ADMIN)
    },
    deny("setns", libc::SYS_setns, ADMIN),
    // Mounts: a host disk, a fresh cgroupfs with release_agent, proc.
    deny("mount", libc::SYS_mount, ADMIN),
    deny("umount2", libc::SYS_umount2, ADMIN),
    deny("pivot_root", libc::SYS_pivot_root, ADMIN),
    deny("open_tree", libc::SYS_open_tree, ADMIN),
    deny("move_mount", libc::SYS_move_mount, ADMIN),
    deny("fsopen", libc::SYS_fsopen, ADMIN),
    deny("fsconfig", libc::SYS_fsconfig, ADMIN),
    deny("fsmount", libc::SYS_fsmount, ADMIN),
    deny("fspick", libc::SYS_fspick, ADMIN),
    deny("mount_setattr", libc::SYS_mount_setattr, ADMIN),
    deny("swapon", libc::SYS_swapon, ADMIN),
    deny("swapoff", libc::SYS_swapoff, ADMIN),
    deny("quotactl", libc::SYS_quotactl, ADMIN),
    // Code into the kernel.
    deny(
        "init_module",
        libc::SYS_init_module,
        Some(C::CAP_SYS_MODULE),
    ),
    deny(
        "finit_module",
        libc::SYS_finit_module,
        Some(C::CAP_SYS_MODULE),
    ),
    deny(
        "delete_module",
        libc::SYS_delete_module,
        Some(C::CAP_SYS_MODULE),
    ),
    deny("kexec_load", libc::SYS_kexec_load, Some(C::CAP_SYS_BOOT)),
    deny(
        "kexec_file_load",
        libc::SYS_kexec_file_load,
        Some(C::CAP_SYS_BOOT),
    ),
    deny("reboot", libc::SYS_reboot, Some(C::CAP_SYS_BOOT)),
    // Shocker: files of the host by handle.
    deny(
        "open_by_handle_at",
        libc::SYS_open_by_handle_at,
        Some(C::CAP_DAC_READ_SEARCH),
    ),
    // I/O ports.
    deny("iopl", libc::SYS_iopl, Some(C::CAP_SYS_RAWIO)),
    deny("ioperm", libc::SYS_ioperm, Some(C::CAP_SYS_RAWIO)),
    // The host's clock.
    deny(
        "settimeofday",
        libc::SYS_settimeofday,
        Some(C::CAP_SYS_TIME),
    ),
    deny(
        "clock_settime",
        libc::SYS_clock_settime,
        Some(C::CAP_SYS_TIME),
    ),
];

/// The rules that apply to `spec` (none when it is unconfined).
pub fn rules_for(spec: &ContainerSpec) -> Vec<Rule> {
    if spec.seccomp == SeccompMode::Unconfined {
        return Vec::new();
    }
    RULES
        .iter()
        .filter(|r| {
            r.unless_cap
                .is_none_or(|cap| !spec.keep_caps.iter().any(|k| k.0 == cap))
        })
        .copied()
        .collect()
}

fn compile_err(e: impl std::error::Error + Send + Sync + 'static) -> Error {
    Error::Seccomp {
        source: Box::new(e),
    }
}

/// The BPF programs for `rules`: one per errno (a seccompiler filter has one
/// match action); the kernel applies the strictest answer of all filters.
pub fn compile(rules: &[Rule]) -> Result<Vec<seccompiler::BpfProgram>> {
    use seccompiler::{
        SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
        SeccompRule, TargetArch,
    };
    let mut by_errno: BTreeMap<i32, BTreeMap<i64, Vec<SeccompRule>>> = BTreeMap::new();
    for r in rules {
        let conditions = match r.arg0_has {
            None => Vec::new(),
            Some(bits) => vec![SeccompRule::new(vec![SeccompCondition::new(
                0,
                SeccompCmpArgLen::Qword,
                SeccompCmpOp::MaskedEq(bits),
                bits,
            )
            .map_err(compile_err)?])
            .map_err(compile_err)?],
        };
        by_errno
            .entry(r.errno)
            .or_default()
            .insert(r.nr, conditions);
    }
    by_errno
        .into_iter()
        .map(|(errno, rules)| {
            let filter = SeccompFilter::new(
                rules,
                SeccompAction::Allow,
                SeccompAction::Errno(errno as u32),
                TargetArch::x86_64,
            )
            .map_err(compile_err)?;
            seccompiler::BpfProgram::try_from(filter).map_err(compile_err)
        })
        .collect()
}

/// The profile as OCI `linux.seccomp` JSON (`null` when unconfined).
pub fn oci_json(spec: &ContainerSpec) -> serde_json::Value {
    let rules = rules_for(spec);
    if spec.seccomp == SeccompMode::Unconfined {
        return serde_json::Value::Null;
    }
    let syscalls: Vec<serde_json::Value> = rules
        .iter()
        .map(|r| {
            let mut s = serde_json::json!({
                "names": [r.name],
                "action": "SCMP_ACT_ERRNO",
                "errnoRet": r.errno,
            });
            if let Some(bits) = r.arg0_has {
                s["args"] = serde_json::json!([{
                    "index": 0, "value": bits, "valueTwo": bits, "op": "SCMP_CMP_MASKED_EQ"
                }]);
            }
            s
        })
        .collect();
    serde_json::json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": syscalls,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> ContainerSpec {
        ContainerSpec::new("c", vec!["/bin/true".into()])
    }

    #[test]
    fn rules_compile_to_one_program_per_errno() {
        let progs = compile(&rules_for(&spec())).unwrap();
        assert_eq!(progs.len(), 2, "EPERM and ENOSYS");
        assert!(progs.iter().all(|p| !p.is_empty()));
    }

    #[test]
    fn a_kept_capability_lifts_its_rules_as_in_docker() {
        let names =
            |s: &ContainerSpec| -> Vec<&str> { rules_for(s).iter().map(|r| r.name).collect() };
        let mut s = spec();
        assert!(names(&s).contains(&"mount"));
        s.keep_caps = vec!["CAP_SYS_ADMIN".parse().unwrap()];
        assert!(!names(&s).contains(&"mount"));
        assert!(names(&s).contains(&"keyctl"), "keyrings stay denied");
        s.seccomp = SeccompMode::Unconfined;
        assert!(names(&s).is_empty());
        assert!(oci_json(&s).is_null());
    }

    #[test]
    fn the_oci_profile_names_every_rule_with_its_errno() {
        let v = oci_json(&spec());
        assert_eq!(v["defaultAction"], "SCMP_ACT_ALLOW");
        let calls = v["syscalls"].as_array().unwrap();
        assert_eq!(calls.len(), RULES.len());
        let clone3 = calls.iter().find(|c| c["names"][0] == "clone3").unwrap();
        assert_eq!(clone3["errnoRet"], libc::ENOSYS);
        let unshare = calls.iter().find(|c| c["names"][0] == "unshare").unwrap();
        assert_eq!(unshare["args"][0]["op"], "SCMP_CMP_MASKED_EQ");
        assert_eq!(unshare["args"][0]["value"], libc::CLONE_NEWUSER as u64);
    }
}
