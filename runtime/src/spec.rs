//! What a container is: the namespaces to create, the root it sees, its
//! limits, the capabilities it keeps, and the command it runs.

use crate::error::{Error, Result};
use crate::units::{CpuQuota, CpuSet, MemoryBytes};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

/// One kind of Linux namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Namespace {
    /// The pid namespace (the entry is PID 1).
    Pid,
    /// The mount namespace (a private root).
    Mount,
    /// The uts namespace (its own hostname).
    Uts,
    /// The ipc namespace.
    Ipc,
    /// The network namespace (only a loopback).
    Net,
    /// The cgroup namespace (its cgroup is its root).
    Cgroup,
    /// The user namespace (root inside is not root outside).
    User,
    /// The time namespace (its own monotonic and boot clocks).
    Time,
}

impl Namespace {
    /// Every namespace, in the order they are reported.
    pub const ALL: [Namespace; 8] = [
        Namespace::Pid,
        Namespace::Mount,
        Namespace::Uts,
        Namespace::Ipc,
        Namespace::Net,
        Namespace::Cgroup,
        Namespace::User,
        Namespace::Time,
    ];

    /// The name of this namespace's link in `/proc/<pid>/ns/`.
    pub fn proc_name(self) -> &'static str {
        match self {
            Namespace::Pid => "pid",
            Namespace::Mount => "mnt",
            Namespace::Uts => "uts",
            Namespace::Ipc => "ipc",
            Namespace::Net => "net",
            Namespace::Cgroup => "cgroup",
            Namespace::User => "user",
            Namespace::Time => "time",
        }
    }
}

impl fmt::Display for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Namespace::Mount => "mount",
            other => other.proc_name(),
        })
    }
}

impl FromStr for Namespace {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Namespace::ALL
            .into_iter()
            .find(|n| n.to_string() == s || n.proc_name() == s)
            .ok_or_else(|| Error::InvalidValue {
                what: "namespace",
                value: s.to_string(),
                expected: "one of pid, mount, uts, ipc, net, cgroup, user, time".into(),
            })
    }
}

/// The namespaces a container gets. The default is every namespace but
/// user and time, which are opt-in (as in Docker).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamespaceSet(BTreeSet<Namespace>);

impl Default for NamespaceSet {
    fn default() -> Self {
        NamespaceSet(
            [
                Namespace::Pid,
                Namespace::Mount,
                Namespace::Uts,
                Namespace::Ipc,
                Namespace::Net,
                Namespace::Cgroup,
            ]
            .into_iter()
            .collect(),
        )
    }
}

impl NamespaceSet {
    /// The empty set (no namespace at all).
    pub fn empty() -> Self {
        NamespaceSet(BTreeSet::new())
    }
    /// Whether `ns` is in the set.
    pub fn contains(&self, ns: Namespace) -> bool {
        self.0.contains(&ns)
    }
    /// Adds `ns`.
    pub fn insert(&mut self, ns: Namespace) {
        self.0.insert(ns);
    }
    /// Removes `ns`.
    pub fn remove(&mut self, ns: Namespace) {
        self.0.remove(&ns);
    }
    /// The namespaces in the set, in [`Namespace::ALL`]'s order.
    pub fn iter(&self) -> impl Iterator<Item = Namespace> + '_ {
        self.0.iter().copied()
    }
}

impl FromIterator<Namespace> for NamespaceSet {
    fn from_iter<T: IntoIterator<Item = Namespace>>(iter: T) -> Self {
        NamespaceSet(iter.into_iter().collect())
    }
}

/// The root filesystem the container sees.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum RootfsSpec {
    /// A throwaway tmpfs root with read-only binds of the host's /usr, /bin,
    /// /lib*, /sbin and /etc, a fresh /proc, a minimal /dev and a /tmp.
    #[default]
    Minimal,
    /// A user-provided root directory (bound, then entered with pivot_root).
    Dir(PathBuf),
    /// The host's own root (no pivot_root); with a mount namespace, a fresh
    /// /proc is mounted over the host's.
    Host,
}

/// A uid or gid mapping line for a user namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdMap {
    /// The first id inside the namespace.
    pub inside: u32,
    /// The id it maps to outside.
    pub outside: u32,
    /// How many ids the range has.
    pub count: u32,
}

/// Clock offsets for a time namespace, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TimeOffsets {
    /// Seconds added to CLOCK_MONOTONIC inside.
    pub monotonic_secs: i64,
    /// Seconds added to CLOCK_BOOTTIME inside.
    pub boottime_secs: i64,
}

/// Resource limits. Each one present is enforced by a cgroup controller.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Limits {
    /// CPU bandwidth (cpu.max / cfs_quota_us).
    pub cpu: Option<CpuQuota>,
    /// Memory limit (memory.max / memory.limit_in_bytes).
    pub memory: Option<MemoryBytes>,
    /// Maximum number of tasks (pids.max).
    pub pids: Option<u64>,
    /// CPUs the container may run on (cpuset.cpus).
    pub cpuset: Option<CpuSet>,
}

/// A limit kind, for guards and error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LimitKind {
    /// The CPU quota.
    Cpu,
    /// The memory limit.
    Memory,
    /// The pids limit.
    Pids,
}

/// A workload that must never run without some limit (a memory hog, a fork
/// bomb, a spin loop). The runtime refuses a guarded spec missing the limit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Guard {
    /// The workload's name, for the message.
    pub workload: String,
    /// The limits it must not run without.
    pub needs: Vec<LimitKind>,
}

/// A Linux capability, by its kernel name (`CAP_SYS_TIME`, or `sys_time`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Capability(pub caps::Capability);

impl FromStr for Capability {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let upper = s.trim().to_ascii_uppercase();
        let name = if upper.starts_with("CAP_") {
            upper
        } else {
            format!("CAP_{upper}")
        };
        caps::Capability::from_str(&name)
            .map(Capability)
            .map_err(|_| Error::InvalidValue {
                what: "capability",
                value: s.to_string(),
                expected: "a Linux capability name such as CAP_SYS_TIME or net_admin".into(),
            })
    }
}

impl TryFrom<String> for Capability {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        s.parse()
    }
}

impl From<Capability> for String {
    fn from(c: Capability) -> String {
        c.0.to_string()
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Docker's default capability set: what a container keeps unless the spec
/// keeps more. Notably absent: CAP_SYS_ADMIN, CAP_SYS_TIME, CAP_NET_ADMIN.
pub const DEFAULT_CAPABILITIES: [caps::Capability; 14] = [
    caps::Capability::CAP_CHOWN,
    caps::Capability::CAP_DAC_OVERRIDE,
    caps::Capability::CAP_FSETID,
    caps::Capability::CAP_FOWNER,
    caps::Capability::CAP_MKNOD,
    caps::Capability::CAP_NET_RAW,
    caps::Capability::CAP_SETGID,
    caps::Capability::CAP_SETUID,
    caps::Capability::CAP_SETFCAP,
    caps::Capability::CAP_SETPCAP,
    caps::Capability::CAP_NET_BIND_SERVICE,
    caps::Capability::CAP_SYS_CHROOT,
    caps::Capability::CAP_KILL,
    caps::Capability::CAP_AUDIT_WRITE,
];

/// The devices a container may use (type, major, minor or any, access):
/// Docker's default set. The builtin runtime writes them to the v1 devices
/// cgroup after denying everything; the OCI bundle lists them.
pub(crate) const DEFAULT_DEVICES: [(char, i64, Option<i64>, &str); 8] = [
    ('c', 1, Some(3), "rwm"), // null
    ('c', 1, Some(5), "rwm"), // zero
    ('c', 1, Some(7), "rwm"), // full
    ('c', 1, Some(8), "rwm"), // random
    ('c', 1, Some(9), "rwm"), // urandom
    ('c', 5, Some(0), "rwm"), // tty
    ('c', 5, Some(2), "rwm"), // ptmx
    ('c', 136, None, "rwm"),  // pts/*
];

/// Everything the runtime needs to start one container.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerSpec {
    /// Short name, used in the cgroup path `boxwatch/<run-id>/<name>`.
    pub name: String,
    /// The namespaces to create.
    pub namespaces: NamespaceSet,
    /// Hostname inside (needs the uts namespace); defaults to the name.
    pub hostname: Option<String>,
    /// What the root is built from.
    pub rootfs: RootfsSpec,
    /// The cgroup limits.
    pub limits: Limits,
    /// Capabilities kept beyond [`DEFAULT_CAPABILITIES`].
    pub keep_caps: Vec<Capability>,
    /// Entry command: `argv[0]` is looked up in the container's PATH.
    pub command: Vec<String>,
    /// Extra environment for the entry command (PATH, HOME, TERM are set).
    pub env: Vec<(String, String)>,
    /// Run boxwatch's tiny init as PID 1 (it reaps orphans and forwards
    /// signals); the entry command is then PID 2. Off: the entry is PID 1.
    pub init: bool,
    /// uid/gid maps for the user namespace (default: root inside = the
    /// caller outside, one id).
    pub uid_map: Vec<IdMap>,
    /// See `uid_map`.
    pub gid_map: Vec<IdMap>,
    /// Offsets for the time namespace.
    pub time_offsets: TimeOffsets,
    /// Limits that must be present for this workload to run at all.
    pub guard: Option<Guard>,
    /// The mount point of an lxcfs instance (one boxwatch started,
    /// [`crate::lxcfs::Lxcfs`], or the host's `/var/lib/lxcfs`): its
    /// `proc/meminfo`, `proc/cpuinfo`, ... and
    /// `sys/devices/system/cpu/online` are bound over the container's own,
    /// so they show its limits instead of the host's. Needs the mount
    /// namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lxcfs: Option<std::path::PathBuf>,
    /// The seccomp profile: boxwatch's Docker-like default, or none.
    #[serde(default)]
    pub seccomp: crate::seccomp::SeccompMode,
}

impl ContainerSpec {
    /// A spec with the default namespaces, the minimal rootfs, no limits.
    pub fn new(name: impl Into<String>, command: Vec<String>) -> Self {
        ContainerSpec {
            name: name.into(),
            namespaces: NamespaceSet::default(),
            hostname: None,
            rootfs: RootfsSpec::Minimal,
            limits: Limits::default(),
            keep_caps: Vec::new(),
            command,
            env: Vec::new(),
            init: false,
            uid_map: Vec::new(),
            gid_map: Vec::new(),
            time_offsets: TimeOffsets::default(),
            guard: None,
            lxcfs: None,
            seccomp: crate::seccomp::SeccompMode::Default,
        }
    }

    /// The hostname inside: the spec's, else the container's name.
    pub fn hostname(&self) -> &str {
        self.hostname.as_deref().unwrap_or(&self.name)
    }

    /// Checks what can be checked without touching the host (and the
    /// clocks, for the time offsets).
    pub fn validate(&self) -> Result<()> {
        self.check_name()?;
        self.check_command_and_hostname()?;
        self.check_time_offsets()?;
        self.check_ids_pids_and_lxcfs()?;
        self.check_guard()
    }

    fn check_name(&self) -> Result<()> {
        let bad = |m: String| Err(Error::InvalidSpec(m));
        if self.name.is_empty()
            || self.name.len() > 64
            || !self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            || self.name.starts_with('.')
        {
            return bad(format!(
                "container name {} ({} characters) must be 1-64 characters of letters, digits, '-', '_' or '.', not starting with '.'",
                shorten(&self.name),
                self.name.chars().count()
            ));
        }
        Ok(())
    }

    fn check_command_and_hostname(&self) -> Result<()> {
        let bad = |m: String| Err(Error::InvalidSpec(m));
        if self.command.is_empty() || self.command[0].is_empty() {
            return bad("the entry command is empty: give a command after `--`".into());
        }
        if let Some(h) = &self.hostname {
            if h.is_empty() || h.len() > 64 || h.contains(['/', '\0', ' ']) {
                return bad(format!(
                    "hostname {} ({} characters) must be 1-64 characters without '/', spaces or NUL",
                    shorten(h),
                    h.chars().count()
                ));
            }
            if !self.namespaces.contains(Namespace::Uts) {
                return bad("a hostname needs the uts namespace: setting it without one would rename the host".into());
            }
        }
        Ok(())
    }

    /// Offsets need the time namespace, and each must be one the kernel
    /// takes (`units::check_time_offset`).
    fn check_time_offsets(&self) -> Result<()> {
        let offsets = self.time_offsets != TimeOffsets::default();
        if offsets && !self.namespaces.contains(Namespace::Time) {
            return Err(Error::InvalidSpec(
                "time offsets need the time namespace".into(),
            ));
        }
        for (clock, id, secs) in [
            (
                "CLOCK_MONOTONIC",
                nix::time::ClockId::CLOCK_MONOTONIC,
                self.time_offsets.monotonic_secs,
            ),
            (
                "CLOCK_BOOTTIME",
                nix::time::ClockId::CLOCK_BOOTTIME,
                self.time_offsets.boottime_secs,
            ),
        ] {
            if secs != 0 {
                let now = nix::time::clock_gettime(id).map_or(0, |t| t.tv_sec());
                crate::units::check_time_offset(clock, secs, now)?;
            }
        }
        Ok(())
    }

    fn check_ids_pids_and_lxcfs(&self) -> Result<()> {
        let bad = |m: String| Err(Error::InvalidSpec(m));
        if (!self.uid_map.is_empty() || !self.gid_map.is_empty())
            && !self.namespaces.contains(Namespace::User)
        {
            return bad("uid/gid maps need the user namespace".into());
        }
        if let Some(p) = self.limits.pids {
            crate::units::check_pids(p)?;
        }
        if let Some(dir) = &self.lxcfs {
            if !self.namespaces.contains(Namespace::Mount) {
                return bad("lxcfs files are bound in the container's own mount namespace: --lxcfs needs the mount namespace".into());
            }
            if !crate::lxcfs::is_lxcfs_dir(dir) {
                return bad(format!(
                    "{} is not an lxcfs mount ({} is missing): start lxcfs there, or let boxwatch start its own (--lxcfs without a directory)",
                    dir.display(),
                    dir.join("proc/meminfo").display()
                ));
            }
        }
        Ok(())
    }

    /// A dangerous workload must have the limits that keep it in check.
    fn check_guard(&self) -> Result<()> {
        if let Some(guard) = &self.guard {
            for need in &guard.needs {
                let (present, limit, example) = match need {
                    LimitKind::Cpu => (self.limits.cpu.is_some(), "cpu", "--cpus 0.2"),
                    LimitKind::Memory => (self.limits.memory.is_some(), "memory", "--memory 64M"),
                    LimitKind::Pids => (self.limits.pids.is_some(), "pids", "--pids 64"),
                };
                if !present {
                    return Err(Error::MissingGuardLimit {
                        workload: guard.workload.clone(),
                        limit,
                        example,
                    });
                }
            }
        }
        Ok(())
    }
}

/// `s` quoted, cut to 40 characters (with "...") so that a long value
/// does not drown the message that refuses it.
pub(crate) fn shorten(s: &str) -> String {
    const MAX: usize = 40;
    if s.chars().count() <= MAX {
        format!("{s:?}")
    } else {
        let head: String = s.chars().take(MAX).collect();
        format!("{head:?}...")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> ContainerSpec {
        ContainerSpec::new("t1", vec!["/bin/true".into()])
    }

    #[test]
    fn a_default_spec_is_valid() {
        spec().validate().unwrap();
    }

    #[test]
    fn an_empty_command_is_refused() {
        let mut s = spec();
        s.command.clear();
        assert!(s
            .validate()
            .unwrap_err()
            .to_string()
            .contains("entry command is empty"));
    }

    #[test]
    fn a_hostname_without_uts_namespace_is_refused() {
        let mut s = spec();
        s.hostname = Some("box".into());
        s.namespaces.remove(Namespace::Uts);
        assert!(s
            .validate()
            .unwrap_err()
            .to_string()
            .contains("uts namespace"));
    }

    #[test]
    fn a_guarded_workload_without_its_limit_is_refused() {
        let mut s = spec();
        s.guard = Some(Guard {
            workload: "memory hog".into(),
            needs: vec![LimitKind::Memory],
        });
        let e = s.validate().unwrap_err().to_string();
        assert!(e.contains("memory hog") && e.contains("--memory"), "{e}");
        s.limits.memory = Some("64M".parse().unwrap());
        s.validate().unwrap();
    }

    #[test]
    fn zero_pids_is_refused() {
        let mut s = spec();
        s.limits.pids = Some(0);
        assert!(s.validate().is_err());
        s.limits.pids = Some(crate::units::MAX_PIDS + 1);
        let e = s.validate().unwrap_err().to_string();
        assert!(e.contains("4194305") && e.contains("PID_MAX_LIMIT"), "{e}");
        s.limits.pids = Some(crate::units::MAX_PIDS);
        assert!(s.validate().is_ok());
    }

    #[test]
    fn lxcfs_needs_the_mount_namespace_and_an_lxcfs_mount() {
        let mut s = spec();
        let not_lxcfs = std::env::temp_dir();
        s.lxcfs = Some(not_lxcfs.clone());
        let e = s.validate().unwrap_err().to_string();
        assert!(
            e.contains("is not an lxcfs mount") && e.contains("proc/meminfo"),
            "{e}"
        );
        s.namespaces.remove(Namespace::Mount);
        let e = s.validate().unwrap_err().to_string();
        assert!(e.contains("needs the mount namespace"), "{e}");
    }

    #[test]
    fn bad_names_are_refused() {
        for n in ["", "../x", "a/b", ".hidden", &"x".repeat(65)] {
            let mut s = spec();
            s.name = n.to_string();
            assert!(s.validate().is_err(), "{n} accepted");
        }
    }

    #[test]
    fn capabilities_parse_with_or_without_prefix() {
        assert_eq!(
            "sys_time".parse::<Capability>().unwrap().0,
            caps::Capability::CAP_SYS_TIME
        );
        assert_eq!(
            "CAP_NET_ADMIN".parse::<Capability>().unwrap().to_string(),
            "CAP_NET_ADMIN"
        );
        assert!("CAP_FLY".parse::<Capability>().is_err());
    }

    #[test]
    fn namespaces_parse_by_both_names() {
        assert_eq!("mnt".parse::<Namespace>().unwrap(), Namespace::Mount);
        assert_eq!("mount".parse::<Namespace>().unwrap(), Namespace::Mount);
        assert!("foo".parse::<Namespace>().is_err());
    }
}
