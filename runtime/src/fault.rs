//! Fault injection for the mutation suite (`cargo xtask mutants`): a
//! builtin runtime that breaks one guarantee on purpose, so the suite can
//! prove that the judge's checks fail when it does.
//!
//! Compiled in only with the `fault-injection` cargo feature, which nothing
//! but the mutation suite turns on (it builds into its own target
//! directory); without the feature `apply` and `skip_cgroup_join` are
//! no-ops and the environment is never read. With it, one fault is read from
//! [`ENV`]:
//!
//! | fault | what the runtime then does wrong |
//! |---|---|
//! | `drop-cpu-limit` | writes no CPU quota |
//! | `drop-cpuset` | writes no cpuset |
//! | `scale-memory-limit` | writes twice the memory limit |
//! | `scale-pids-limit` | writes twice the pids limit |
//! | `drop-namespace:<ns>` | does not create the namespace (pid, net, ipc, cgroup, time) |
//! | `keep-cap:<cap>` | keeps the capability (`keep-cap:sys_time`) |
//! | `skip-cgroup-join` | leaves the container's process in boxwatch's own cgroup |
//! | `drop-lxcfs` | does not bind lxcfs's files over /proc |
//! | `drop-init` | runs no reaping init in front of the entry |
//!
//! A memory or pids limit is never dropped, only doubled (a hog or a fork
//! bomb keeps a bound); the mount and uts namespaces cannot be dropped (the
//! setup stage would build its root, or set its hostname, on the host).

use crate::spec::ContainerSpec;
#[cfg(feature = "fault-injection")]
use crate::spec::{Capability, Namespace};

/// The environment variable naming the fault (read only when the
/// `fault-injection` feature is compiled in).
pub const ENV: &str = "BOXWATCH_FAULT_INJECTION";

/// A fault the builtin runtime can be told to make.
#[cfg(feature = "fault-injection")]
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Fault {
    DropCpuLimit,
    DropCpuset,
    ScaleMemoryLimit,
    ScalePidsLimit,
    DropNamespace(Namespace),
    KeepCap(Capability),
    SkipCgroupJoin,
    DropLxcfs,
    DropInit,
}

#[cfg(feature = "fault-injection")]
impl std::str::FromStr for Fault {
    type Err = String;
    fn from_str(s: &str) -> Result<Fault, String> {
        let bad = |why: String| format!("{ENV}={s:?}: {why}");
        Ok(match s.split_once(':') {
            None => match s {
                "drop-cpu-limit" => Fault::DropCpuLimit,
                "drop-cpuset" => Fault::DropCpuset,
                "scale-memory-limit" => Fault::ScaleMemoryLimit,
                "scale-pids-limit" => Fault::ScalePidsLimit,
                "skip-cgroup-join" => Fault::SkipCgroupJoin,
                "drop-lxcfs" => Fault::DropLxcfs,
                "drop-init" => Fault::DropInit,
                _ => return Err(bad("unknown fault (see runtime/src/fault.rs)".into())),
            },
            Some(("drop-namespace", ns)) => {
                let ns: Namespace = ns.parse().map_err(|e| bad(format!("{e}")))?;
                if matches!(ns, Namespace::Mount | Namespace::Uts | Namespace::User) {
                    return Err(bad(format!(
                        "the {ns} namespace cannot be dropped safely (the setup stage would act on the host)"
                    )));
                }
                Fault::DropNamespace(ns)
            }
            Some(("keep-cap", cap)) => {
                Fault::KeepCap(cap.parse().map_err(|e| bad(format!("{e}")))?)
            }
            _ => return Err(bad("unknown fault (see runtime/src/fault.rs)".into())),
        })
    }
}

/// The fault [`ENV`] asks for. An unknown one panics: a mutant that would
/// silently run the healthy runtime must not count as anything.
#[cfg(feature = "fault-injection")]
pub(crate) fn active() -> Option<Fault> {
    let v = std::env::var(ENV).ok().filter(|v| !v.is_empty())?;
    match v.parse() {
        Ok(f) => Some(f),
        Err(e) => panic!("{e}"),
    }
}

/// Breaks `spec` as the active fault says (after the spec was validated, so
/// a guard still sees the limits it asked for).
pub(crate) fn apply(spec: &mut ContainerSpec) {
    #[cfg(feature = "fault-injection")]
    if let Some(f) = active() {
        tracing::warn!("fault injection: {f:?} in container {}", spec.name);
        apply_fault(&f, spec);
    }
    #[cfg(not(feature = "fault-injection"))]
    let _ = spec;
}

#[cfg(feature = "fault-injection")]
fn apply_fault(f: &Fault, spec: &mut ContainerSpec) {
    let l = &mut spec.limits;
    match f {
        Fault::DropCpuLimit => l.cpu = None,
        Fault::DropCpuset => l.cpuset = None,
        Fault::ScaleMemoryLimit => {
            if let Some(m) = l.memory {
                l.memory = crate::units::MemoryBytes::new(m.bytes() * 2).ok();
            }
        }
        Fault::ScalePidsLimit => l.pids = l.pids.map(|p| p * 2),
        Fault::DropNamespace(ns) => spec.namespaces.remove(*ns),
        Fault::KeepCap(c) => spec.keep_caps.push(*c),
        Fault::DropLxcfs => spec.lxcfs = None,
        Fault::DropInit => spec.init = false,
        Fault::SkipCgroupJoin => {}
    }
}

/// Whether the container's process is to be left out of its cgroup.
pub(crate) fn skip_cgroup_join() -> bool {
    #[cfg(feature = "fault-injection")]
    return active() == Some(Fault::SkipCgroupJoin);
    #[cfg(not(feature = "fault-injection"))]
    false
}

#[cfg(all(test, feature = "fault-injection"))]
mod tests {
    use super::*;

    #[test]
    fn faults_parse_and_unsafe_ones_are_refused() {
        assert_eq!("drop-cpu-limit".parse(), Ok(Fault::DropCpuLimit));
        assert_eq!(
            "drop-namespace:pid".parse(),
            Ok(Fault::DropNamespace(Namespace::Pid))
        );
        assert!("drop-namespace:mount".parse::<Fault>().is_err());
        assert!("drop-namespace:uts".parse::<Fault>().is_err());
        assert!("keep-cap:sys_time".parse::<Fault>().is_ok());
        assert!("nonsense".parse::<Fault>().is_err());
    }

    #[test]
    fn limits_are_doubled_never_dropped_for_memory_and_pids() {
        let mut s = ContainerSpec::new("x", vec!["true".into()]);
        s.limits.memory = Some(crate::units::MemoryBytes::new(64 << 20).unwrap());
        s.limits.pids = Some(64);
        apply_fault(&Fault::ScaleMemoryLimit, &mut s);
        apply_fault(&Fault::ScalePidsLimit, &mut s);
        assert_eq!(s.limits.memory.map(|m| m.bytes()), Some(128 << 20));
        assert_eq!(s.limits.pids, Some(128));
    }
}
