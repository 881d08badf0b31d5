//! The escape probes: from inside a container, whether the guarantees that
//! container escapes rely on hold (the device cgroup, masked and read-only
//! kernel paths, the capability sets, seccomp, engine sockets).
//!
//! Every probe is harmless even when the guarantee is broken. None writes
//! to a file that acts on the host (sysrq-trigger, core_pattern,
//! release_agent, /proc/sys, uevent_helper): where a write would be the
//! test, the precondition is judged instead (`access(W_OK)`, which never
//! opens the file, and the mount's read-only flag from `statvfs`). None
//! loads a module, reboots or mounts a host disk; a device node is opened
//! `O_RDONLY|O_NONBLOCK`, never read, and closed; a masked file is read for
//! one byte at most; system calls get arguments that fail after the check
//! ([`runtime::raw::ProbeCall`] says why for each). `tests/it/escape_probes_host.rs`
//! runs every probe on the host itself and checks that nothing changed.
//!
//! The host side passes the host's facts on the command line: a block
//! device of the host (`--block-dev MAJOR:MINOR`, from /proc/partitions)
//! and the engine sockets present on the host (`--host-socket PATH`).

mod caps;
mod devices;
mod paths;
mod sockets;
mod syscalls;

use super::Emitter;
use crate::error::Result;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::path::PathBuf;

/// Which group of probes a container runs (one scenario each).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum EscapeProbe {
    /// Devices: a node made inside for a host block device must not open,
    /// and /dev holds only the default devices.
    Devices,
    /// Masked and read-only kernel paths under /proc and /sys, and cgroupfs.
    ProcPaths,
    /// The capability sets against the documented default (Docker's), and
    /// no_new_privs.
    Capabilities,
    /// The seccomp mode, and which of the dangerous system calls are
    /// blocked.
    Seccomp,
    /// Container engine sockets reachable from inside.
    Sockets,
    /// Every probe (for the host test and people).
    All,
}

impl EscapeProbe {
    /// Every group, `All` last.
    pub const ALL: [EscapeProbe; 6] = [
        EscapeProbe::Devices,
        EscapeProbe::ProcPaths,
        EscapeProbe::Capabilities,
        EscapeProbe::Seccomp,
        EscapeProbe::Sockets,
        EscapeProbe::All,
    ];

    /// The group's name in the catalog and on the command line
    /// (`proc-paths`).
    pub fn name(self) -> &'static str {
        match self {
            EscapeProbe::Devices => "devices",
            EscapeProbe::ProcPaths => "proc-paths",
            EscapeProbe::Capabilities => "capabilities",
            EscapeProbe::Seccomp => "seccomp",
            EscapeProbe::Sockets => "sockets",
            EscapeProbe::All => "all",
        }
    }

    /// The group of that [`name`](EscapeProbe::name), if there is one.
    pub fn from_name(s: &str) -> Option<EscapeProbe> {
        EscapeProbe::ALL.into_iter().find(|p| p.name() == s)
    }

    fn runs(self, group: EscapeProbe) -> bool {
        self == group || self == EscapeProbe::All
    }
}

/// The keys of the escape workload's result (`workload.<key>` metrics).
pub const RESULT_KEYS: &[&str] = &[
    // devices
    "host_block_device_opened",
    "block_device_probe",
    "extra_dev_nodes",
    // proc-paths
    "unmasked_paths",
    "writable_readonly_paths",
    "sys_writable",
    "cgroupfs",
    "cgroupfs_writable",
    // capabilities
    "dangerous_caps",
    "effective_vs_default",
    "permitted_vs_default",
    "bounding_vs_default",
    "effective_beyond_default",
    "permitted_beyond_default",
    "bounding_beyond_default",
    "ambient",
    "no_new_privs",
    // seccomp
    "seccomp_mode",
    "allowed_syscalls",
    "blocked_syscalls",
    // sockets
    "engine_sockets",
    "host_engine_sockets",
];

/// What the host side knows and the container cannot see.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HostFacts {
    /// A block device of the host, `(major, minor)`.
    pub block_dev: Option<(u64, u64)>,
    /// Engine sockets present on the host.
    pub sockets: Vec<PathBuf>,
}

impl HostFacts {
    /// Reads the facts on the host (the runner does, when it builds the
    /// container's command line).
    pub fn read() -> HostFacts {
        HostFacts {
            block_dev: devices::host_block_device(),
            sockets: sockets::present_on_host(),
        }
    }

    /// The command-line arguments that carry these facts.
    pub fn args(&self) -> Vec<String> {
        let mut a = Vec::new();
        if let Some((ma, mi)) = self.block_dev {
            a.push("--block-dev".into());
            a.push(format!("{ma}:{mi}"));
        }
        for s in &self.sockets {
            a.push("--host-socket".into());
            a.push(s.to_string_lossy().into_owned());
        }
        a
    }
}

/// Parses `MAJOR:MINOR`.
pub fn parse_dev(s: &str) -> std::result::Result<(u64, u64), String> {
    let (a, b) = s
        .split_once(':')
        .ok_or_else(|| format!("{s:?}: expected MAJOR:MINOR"))?;
    let n = |x: &str| {
        x.trim()
            .parse::<u64>()
            .map_err(|_| format!("{s:?}: expected MAJOR:MINOR in decimal"))
    };
    Ok((n(a)?, n(b)?))
}

/// Options of a run of the escape workload.
#[derive(Debug, Clone, Default)]
pub struct EscapeOptions {
    /// What the host side passed on the command line.
    pub facts: HostFacts,
    /// May mount a small tmpfs in the container's own mount namespace
    /// (never on a host: the catalog allows it only with a mount namespace)
    /// to find a place without `nodev` for the device node.
    pub private_mount: bool,
}

/// How long the workload waits for the harness to look before probing.
const START_HOLD_MAX: std::time::Duration = std::time::Duration::from_secs(5);

/// Runs the probes of `probe` and writes one `result` line.
pub fn run(out: &Emitter, probe: EscapeProbe, opts: &EscapeOptions) -> Result<()> {
    // The probes take a few milliseconds: the harness looks at the
    // container (where its process is) while it waits here.
    out.emit_and_wait("start", Value::Object(Map::new()), START_HOLD_MAX);
    let mut r = Map::new();
    r.insert("probe".into(), Value::from(probe.name()));
    if probe.runs(EscapeProbe::Devices) {
        devices::probe(&mut r, &opts.facts, opts.private_mount);
    }
    if probe.runs(EscapeProbe::ProcPaths) {
        paths::probe(&mut r);
    }
    if probe.runs(EscapeProbe::Capabilities) {
        caps::probe(&mut r);
    }
    if probe.runs(EscapeProbe::Seccomp) {
        syscalls::probe(&mut r);
    }
    if probe.runs(EscapeProbe::Sockets) {
        sockets::probe(&mut r, &opts.facts);
    }
    out.emit("result", Value::Object(r));
    Ok(())
}

/// `none`, or the items joined: the text a check compares with "none".
fn list(items: &[String]) -> Value {
    if items.is_empty() {
        Value::from("none")
    } else {
        Value::from(items.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn probes_round_trip_by_name() {
        for p in EscapeProbe::ALL {
            assert_eq!(EscapeProbe::from_name(p.name()), Some(p));
        }
    }

    #[test]
    fn facts_become_arguments() {
        let f = HostFacts {
            block_dev: Some((254, 0)),
            sockets: vec!["/run/docker.sock".into()],
        };
        assert_eq!(
            f.args().join(" "),
            "--block-dev 254:0 --host-socket /run/docker.sock"
        );
        assert_eq!(parse_dev("254:0"), Ok((254, 0)));
        assert!(parse_dev("254").is_err());
        assert!(parse_dev("a:b").is_err());
    }

    proptest! {
        #[test]
        fn dev_numbers_round_trip(a in 0u64..1_000_000, b in 0u64..1_000_000) {
            prop_assert_eq!(parse_dev(&format!("{a}:{b}")), Ok((a, b)));
        }
    }
}

/// The judge on real recorded results: a builtin container run with
/// `--seccomp unconfined --keep-cap CAP_SYS_ADMIN` (the result line as it
/// came out of `workload escape --probe all`), judged by the catalog's
/// escape checks.
#[cfg(test)]
mod judged {
    use crate::expect::evaluate_all;
    use crate::observe::{observe, Collected, Context, HostSnapshot};
    use crate::workload::WorkloadKind;
    use reports::Verdict;
    use std::collections::BTreeMap;

    const UNCONFINED_SYS_ADMIN: &str = r#"{"allowed_syscalls":"keyctl (EOPNOTSUPP), add_key (EFAULT), request_key (EFAULT), bpf (EINVAL), perf_event_open (EFAULT), unshare(CLONE_NEWUSER) (EINVAL), clone(CLONE_NEWUSER) (EINVAL), mount (EFAULT), umount2 (EINVAL), pivot_root (EFAULT), swapon (EINVAL), swapoff (EFAULT), open_by_handle_at (EFAULT), setns (EBADF)","ambient":"empty","block_device_probe":"7:0: /tmp: mknod EPERM: Operation not permitted","blocked_syscalls":"userfaultfd, init_module (ENOSYS), finit_module (ENOSYS), kexec_load (ENOSYS), reboot","bounding_vs_default":"+CAP_SYS_ADMIN","bounding_beyond_default":"+CAP_SYS_ADMIN","effective_beyond_default":"+CAP_SYS_ADMIN","permitted_beyond_default":"+CAP_SYS_ADMIN","cgroupfs":"absent","cgroupfs_writable":"none","dangerous_caps":"CAP_SYS_ADMIN","effective_vs_default":"+CAP_SYS_ADMIN","engine_sockets":"none","event":"result","extra_dev_nodes":"none","host_block_device_opened":false,"host_engine_sockets":"none","no_new_privs":true,"permitted_vs_default":"+CAP_SYS_ADMIN","probe":"all","seccomp_mode":0,"sys_writable":false,"unmasked_paths":"none","writable_readonly_paths":"none"}"#;

    #[test]
    fn an_unconfined_container_with_cap_sys_admin_leaks_exactly_those_checks() {
        let line: serde_json::Value = serde_json::from_str(UNCONFINED_SYS_ADMIN).unwrap();
        let c = Collected {
            fields: line.as_object().unwrap().clone(),
            exit_code: Some(0),
            ..Collected::default()
        };
        let (host, harness_ns) = (HostSnapshot::default(), BTreeMap::new());
        let cx = Context {
            pre: &host,
            post: &host,
            harness_ns: &harness_ns,
            workload: WorkloadKind::Escape,
            ticks_per_sec: 100.0,
        };
        let mut leaked = Vec::new();
        for s in crate::builtin::load().into_iter().flatten() {
            if !s.id.starts_with("escape-") {
                continue;
            }
            let o = observe(&c, &cx);
            for j in evaluate_all(&s.expectations, &o) {
                // Placement is judged on processes sampled while running,
                // which a recorded result line does not hold.
                if crate::catalog::PLACEMENT_CHECKS.contains(&j.check.as_str()) {
                    continue;
                }
                assert_ne!(
                    j.verdict,
                    Verdict::Error,
                    "{}/{}: {}",
                    s.id,
                    j.check,
                    j.observed
                );
                if j.verdict == Verdict::Leaked {
                    assert!(
                        j.attack.is_some(),
                        "{} says what an attacker could do",
                        j.check
                    );
                    leaked.push(format!("{}/{}", s.id, j.check));
                }
            }
        }
        assert_eq!(
            leaked,
            [
                "escape-capabilities/no-dangerous-caps",
                "escape-capabilities/effective-default",
                "escape-capabilities/permitted-default",
                "escape-capabilities/bounding-default",
                "escape-seccomp/seccomp-mode",
                "escape-seccomp/dangerous-syscalls-blocked",
            ]
        );
    }
}
