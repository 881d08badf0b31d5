//! `boxwatch inspect`: the judge's eyes on a container boxwatch did not
//! start (docker, podman, runc, a Kubernetes pod).
//!
//! From the host: the target's namespaces against the host's (those of
//! PID 1, the host's init; boxwatch's own when /proc/1/ns cannot be read,
//! which the inspection says), its
//! cgroups (from `/proc/<pid>/cgroup`) with the limits in force and the
//! usage, its capabilities, seccomp mode and no_new_privs. From inside: the
//! [`InsideView`] collected by entering the
//! target's namespaces with setns(2) (see [`enter`]). Then the findings
//! that compare the two: what /proc inside says against the limits.
//! Nothing in the target is changed.
//!
//! ```no_run
//! let found = probes::inspect::inspect_pid(std::path::Path::new("/usr/bin/boxwatch"), 4242)?;
//! print!("{found}");
//! # Ok::<(), probes::Error>(())
//! ```

pub mod engine;
pub mod enter;

use crate::error::{Error, Result};
use crate::host::{CgroupLayout, CgroupPath, CgroupStats, Host, Limit};
use crate::inside::{self, CapabilitySets, InsideView};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

pub use engine::EngineContainer;
pub use enter::dispatch;

/// Namespaces compared, by their `/proc/<pid>/ns` link names.
pub const NAMESPACES: [&str; 8] = ["pid", "mnt", "uts", "ipc", "net", "cgroup", "user", "time"];

/// Everything `boxwatch inspect` found about one process.
#[derive(Debug, Clone, Serialize)]
pub struct Inspection {
    /// The target's PID on the host.
    pub pid: i32,
    /// The engine's container, when the target was named through one
    /// (`docker:NAME`, `podman:NAME`, a bare name or id).
    pub container: Option<EngineContainer>,
    /// Its command line.
    pub command: String,
    /// Whose namespaces the target's are judged against.
    pub reference: NamespaceReference,
    /// Each namespace against the reference's (for a sandboxed target,
    /// none is judged: they are the sandbox's, not the workload's).
    pub namespaces: Vec<NamespaceFinding>,
    /// True when the target is gVisor's sandbox (or the engine runs the
    /// container with runsc): host-side namespace comparisons are not
    /// applicable, and the security fields are the sandbox process's.
    pub sandboxed: bool,
    /// Its cgroup per controller (cpu, cpuacct, memory, pids, cpuset).
    pub cgroups: BTreeMap<String, String>,
    /// The limits its cgroups set.
    pub limits: LimitsInForce,
    /// What its cgroups have used so far.
    pub usage: Usage,
    /// Capabilities, seccomp and no_new_privs of the target, from the host.
    pub security: Security,
    /// What the target's namespaces show from inside (None: see
    /// `inside_error`).
    pub inside: Option<InsideView>,
    /// Why the inside view could not be collected, when it could not.
    pub inside_error: Option<String>,
    /// How the inside view was collected: `setns` (entering the target's
    /// namespaces), or `<engine> exec` for a sandboxed container (through
    /// its runtime, on the sandbox's kernel).
    pub inside_through: Option<String>,
    /// What /proc inside says against the limits.
    pub proc_findings: Vec<ProcFinding>,
    /// Remarks (an empty cgroup, a process chosen from a cgroup).
    pub notes: Vec<String>,
}

/// Whose namespaces stand for the host's: PID 1 (the host's init), or
/// boxwatch itself when PID 1's cannot be read (boxwatch then judges
/// against where it runs, which is the host only if it runs there).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NamespaceReference {
    /// 1, or boxwatch's own PID.
    pub pid: i32,
    /// In words, with why PID 1 was not used when it was not.
    pub description: String,
}

/// One namespace of the target against the reference's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NamespaceFinding {
    /// The namespace's name (`pid`, `mnt`, `net`...).
    pub namespace: String,
    /// The target's inode of it.
    pub target_inode: Option<u64>,
    /// The reference's inode (see [`Inspection::reference`]).
    pub reference_inode: Option<u64>,
    /// True when the target has its own; None when the kernel has no such
    /// namespace.
    pub isolated: Option<bool>,
}

/// Picks the reference: PID 1 when every namespace this kernel has (that
/// boxwatch has) can be read for it, else boxwatch (`me`). `read` is
/// [`Host::ns_inode`]. Returns the reference and its inode per
/// [`NAMESPACES`] entry.
pub fn namespace_reference(
    me: i32,
    read: impl Fn(i32, &str) -> Result<u64>,
) -> (NamespaceReference, Vec<Option<u64>>) {
    let mine: Vec<Option<u64>> = NAMESPACES.iter().map(|ns| read(me, ns).ok()).collect();
    let mut init = Vec::new();
    for (ns, m) in NAMESPACES.iter().zip(&mine) {
        match (m, read(1, ns)) {
            (_, Ok(i)) => init.push(Some(i)),
            // A namespace this kernel does not have.
            (None, Err(_)) => init.push(None),
            (Some(_), Err(e)) => {
                return (
                    NamespaceReference {
                        pid: me,
                        description: format!(
                            "boxwatch's own (PID {me}): /proc/1/ns/{ns} of the host's init cannot be read ({})",
                            crate::error::chain(&e)
                        ),
                    },
                    mine,
                )
            }
        }
    }
    (
        NamespaceReference {
            pid: 1,
            description: "PID 1's, the host's init".into(),
        },
        init,
    )
}

/// The limits of the target's cgroups as cgroupfs states them.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LimitsInForce {
    /// CPU quota in CPUs (0.2 = 20% of one CPU); None: no quota.
    pub cpu_quota_cores: Option<f64>,
    /// Memory limit in bytes; None: no limit.
    pub memory_limit_bytes: Option<u64>,
    /// Most tasks the pids controller allows; None: no limit.
    pub pids_max: Option<u64>,
    /// CPUs the cpuset allows.
    pub cpuset_cpus: Option<Vec<u32>>,
}

/// The target's current usage, from the same cgroups.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Usage {
    /// CPU time used, in nanoseconds.
    pub cpu_usage_ns: Option<u64>,
    /// CFS enforcement periods that elapsed.
    pub cpu_nr_periods: Option<u64>,
    /// Periods in which the cgroup was throttled.
    pub cpu_nr_throttled: Option<u64>,
    /// Memory in use now, in bytes.
    pub memory_usage_bytes: Option<u64>,
    /// The most memory used, in bytes, where the kernel keeps it.
    pub memory_peak_bytes: Option<u64>,
    /// Processes of the cgroup killed by the OOM killer.
    pub oom_kills: Option<u64>,
    /// Tasks in the cgroup now.
    pub pids_current: Option<u64>,
}

/// From `/proc/<pid>/status` on the host.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Security {
    /// Capability sets (`CapInh`... `CapAmb`).
    pub capabilities: Option<CapabilitySets>,
    /// `Seccomp`: 0 off, 1 strict, 2 filter.
    pub seccomp_mode: Option<u8>,
    /// `NoNewPrivs`.
    pub no_new_privs: Option<bool>,
    /// The target's PID inside its own PID namespace (NSpid's last field).
    pub pid_inside: Option<i32>,
}

/// One comparison of /proc inside against a limit.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProcFinding {
    /// `meminfo`, `nproc`, `cpuinfo`, `proc-stat`, `available-parallelism`.
    pub check: String,
    /// What inside shows.
    pub inside: String,
    /// The limit it should reflect.
    pub limit: String,
    /// True: inside shows more than the limit allows (a /proc leak).
    pub leaked: bool,
}

/// Inspects process `pid`. `exe` is the boxwatch binary, re-executed to
/// enter the target's namespaces.
pub fn inspect_pid(exe: &Path, pid: i32) -> Result<Inspection> {
    inspect_pid_of(exe, pid, None)
}

/// Inspects the container an engine knows as `target` (`docker:NAME`,
/// `podman:NAME`, or a bare name or id tried against docker, then
/// podman): the engine gives its host PID, and the judge reads the kernel
/// as for [`inspect_pid`]. A sandboxed (gVisor) container's inside view is
/// collected through the engine, on gVisor's kernel.
pub fn inspect_container(exe: &Path, target: &str) -> Result<Inspection> {
    let c = engine::resolve(target)?;
    inspect_pid_of(exe, c.pid, Some(c))
}

fn inspect_pid_of(exe: &Path, pid: i32, container: Option<EngineContainer>) -> Result<Inspection> {
    let host = Host::new();
    let start = start_time(pid).ok_or(Error::NoSuchProcess(pid))?;
    let command = command_line(pid).ok_or(Error::NoSuchProcess(pid))?;
    let (reference, mut namespaces, unreadable) = namespace_findings(&host, pid);
    let mut notes = judge_is_a_container(pid, &command, &reference, &namespaces, unreadable)?;
    let layout = host.layout()?;
    let (cgroups, limits, usage) = cgroup_view(&host, &layout, pid)?;
    let security = security_of(pid);
    if let Some(c) = &container {
        notes.push(cgroup_note(c, &cgroups));
    }
    let sandbox = sandbox_of(pid, &command, container.as_ref());
    let sandboxed = sandbox.is_some();
    if sandboxed {
        // The sandbox's namespaces, not the workload's: not judged.
        for n in &mut namespaces {
            n.isolated = None;
        }
    }
    let (inside, inside_error, inside_through) =
        inside_view(exe, pid, start, sandboxed, container.as_ref());
    let proc_findings = inside
        .as_ref()
        .map(|v| proc_findings(v, &limits))
        .unwrap_or_default();
    Ok(Inspection {
        pid,
        container,
        command,
        reference,
        namespaces,
        sandboxed,
        cgroups,
        limits,
        usage,
        security,
        inside,
        inside_error,
        inside_through,
        proc_findings,
        notes: notes.into_iter().chain(sandbox).collect(),
    })
}

/// Each namespace of `pid` against the reference's, and the first error
/// (other than a vanished process) that kept a link from being read.
fn namespace_findings(
    host: &Host,
    pid: i32,
) -> (NamespaceReference, Vec<NamespaceFinding>, Option<Error>) {
    let me = std::process::id() as i32;
    let (reference, reference_inodes) = namespace_reference(me, |p, ns| host.ns_inode(p, ns));
    let mut unreadable = None;
    let namespaces = NAMESPACES
        .iter()
        .zip(reference_inodes)
        .map(|(ns, reference_inode)| {
            let target_inode = match host.ns_inode(pid, ns) {
                Ok(i) => Some(i),
                Err(e) => {
                    if !matches!(e, Error::NoSuchProcess(_)) {
                        unreadable.get_or_insert(e);
                    }
                    None
                }
            };
            NamespaceFinding {
                namespace: ns.to_string(),
                target_inode,
                reference_inode,
                isolated: match (target_inode, reference_inode) {
                    (Some(t), Some(h)) => Some(t != h),
                    _ => None,
                },
            }
        })
        .collect();
    (reference, namespaces, unreadable)
}

/// A process in none of its own namespaces is no container (refused);
/// one whose links cannot be read at all is judged on the rest, with a
/// note; a vanished one is refused. The notes to start the report with.
fn judge_is_a_container(
    pid: i32,
    command: &str,
    reference: &NamespaceReference,
    namespaces: &[NamespaceFinding],
    unreadable: Option<Error>,
) -> Result<Vec<String>> {
    if namespaces.iter().all(|n| n.target_inode.is_none()) {
        return match unreadable {
            // The process is there, but its namespace links cannot be read
            // (PID 1 of the machine, under a restricted root): say so and
            // judge what can be judged.
            Some(e) => Ok(vec![format!(
                "the namespaces of process {pid} could not be read ({}): they are not judged",
                crate::error::chain(&e)
            )]),
            None => Err(Error::NoSuchProcess(pid)),
        };
    }
    if namespaces.iter().all(|n| n.isolated != Some(true)) {
        return Err(Error::NotAContainer {
            pid,
            command: command.to_string(),
            reference: reference.description.clone(),
        });
    }
    Ok(Vec::new())
}

/// Why the process is a sandbox's rather than the workload's: gVisor's
/// sandbox or gofer by its command line, or an engine's container that
/// runs on runsc.
fn sandbox_of(pid: i32, command: &str, container: Option<&EngineContainer>) -> Option<String> {
    let note = sandbox_note(pid, command);
    match container {
        Some(c) if c.sandboxed && note.is_none() => Some(format!(
            "sandboxed: {} runs this container with {} (gVisor): the workload runs on gVisor's \
             own kernel, so its namespaces and /proc are not the host process's",
            c.engine, c.runtime
        )),
        _ => note,
    }
}

/// The inside view, how it was collected, or why it could not be: by
/// entering the namespaces (setns); for an engine's sandboxed container
/// through the engine (`<engine> exec`, so `runsc exec`: the workload's
/// own view on gVisor's kernel); for a bare sandbox process not at all
/// (entering it would read gVisor's host-side view).
fn inside_view(
    exe: &Path,
    pid: i32,
    start: u64,
    sandboxed: bool,
    container: Option<&EngineContainer>,
) -> (Option<InsideView>, Option<String>, Option<String>) {
    match (sandboxed, container) {
        (true, Some(c)) => {
            let through = format!(
                "{} exec (through the runtime, on gVisor's kernel)",
                c.engine
            );
            match engine::inside_through_engine(c) {
                Ok(v) => (Some(v), None, Some(through)),
                Err(e) => (None, Some(e), Some(through)),
            }
        }
        (true, None) => (None, None, None),
        (false, _) => match collect_inside(exe, pid, start) {
            Ok(v) => (Some(v), None, Some("setns".to_string())),
            Err(e) => (None, Some(e), Some("setns".to_string())),
        },
    }
}

/// What a gVisor (runsc) process is, from its command line: `Some(role)`
/// for the sandbox (the sentry, gVisor's kernel) or the gofer.
pub fn gvisor_role(command: &str) -> Option<&'static str> {
    let argv0 = command.split_whitespace().next()?;
    match argv0.rsplit('/').next()? {
        "runsc-sandbox" => Some("sandbox"),
        "runsc-gofer" => Some("gofer"),
        _ => None,
    }
}

/// What the kernel says of the engine's cgroup: the PID's cgroups (read
/// from /proc, `cgroups`) against the one the engine reports, or, where it
/// reports none (docker), against the container's id.
fn cgroup_note(c: &EngineContainer, cgroups: &BTreeMap<String, String>) -> String {
    let mut seen: Vec<&str> = cgroups.values().map(String::as_str).collect();
    seen.sort_unstable();
    seen.dedup();
    let head = format!(
        "{} container {} ({}), runtime {}, host PID {}",
        c.engine,
        c.name,
        engine::short(&c.id),
        if c.runtime.is_empty() {
            "?"
        } else {
            &c.runtime
        },
        c.pid
    );
    match &c.cgroup {
        Some(claimed) if seen.iter().all(|s| s == claimed) && !seen.is_empty() => {
            format!(
                "{head}; the kernel places it in {claimed}, the cgroup {} reports",
                c.engine
            )
        }
        Some(claimed) => format!(
            "{head}; {} reports cgroup {claimed}, but the kernel shows {}: the kernel's is judged",
            c.engine,
            seen.join(", ")
        ),
        None if !seen.is_empty() && seen.iter().all(|s| s.contains(&c.id)) => {
            format!("{head}; the kernel places it in {}", seen.join(", "))
        }
        None => format!(
            "{head}; the kernel places it in {}, which does not carry the container's id: \
             the kernel's is judged",
            seen.join(", ")
        ),
    }
}

/// The note `boxwatch inspect` gives for a gVisor process, if `pid` is one.
fn sandbox_note(pid: i32, command: &str) -> Option<String> {
    let role = gvisor_role(command)?;
    Some(match role {
        "sandbox" => format!(
            "sandboxed: PID {pid} is gVisor's sandbox (runsc-sandbox): the workload runs on gVisor's own \
             kernel inside it, so its namespaces and /proc are gVisor's, not these; the cgroup limits \
             below are the sandbox's and hold for the workload. The inside view is not collected by \
             entering it (`boxwatch inspect docker:NAME` or `podman:NAME` reads it through the engine, \
             or use `runsc exec`)"
        ),
        _ => format!(
            "sandboxed: PID {pid} is gVisor's gofer (runsc-gofer), which serves the sandbox's files: \
             nothing here is the workload's; inspect the runsc-sandbox process instead. The inside \
             view was not collected"
        ),
    })
}

/// Inspects the container whose cgroup is `path` (relative to the
/// hierarchy roots, as in `/proc/<pid>/cgroup`): its oldest process is the
/// one entered.
pub fn inspect_cgroup(exe: &Path, path: &str) -> Result<Inspection> {
    let host = Host::new();
    let layout = host.layout()?;
    let cg = CgroupPath::new(path)?;
    let dirs = layout.existing_dirs(&cg);
    if dirs.is_empty() {
        return Err(Error::CgroupNotFound(cg.as_str().to_string()));
    }
    let mut pids: Vec<i32> = dirs
        .iter()
        .filter_map(|d| std::fs::read_to_string(d.join("cgroup.procs")).ok())
        .flat_map(|t| {
            t.lines()
                .filter_map(|l| l.trim().parse().ok())
                .collect::<Vec<i32>>()
        })
        .collect();
    pids.sort_unstable();
    pids.dedup();
    let oldest = pids
        .iter()
        .filter_map(|p| Some((start_time(*p)?, *p)))
        .min()
        .map(|(_, p)| p);
    // A gVisor container: its sandbox, not the oldest (the gofer).
    let sandbox = pids
        .iter()
        .copied()
        .find(|p| command_line(*p).as_deref().and_then(gvisor_role) == Some("sandbox"));
    let Some(pid) = sandbox.or(oldest) else {
        return Err(Error::EmptyCgroup(cg.as_str().to_string()));
    };
    let mut found = inspect_pid(exe, pid)?;
    found.notes.push(format!(
        "cgroup {} holds {} process(es); PID {pid}, {}, was inspected",
        cg.as_str(),
        pids.len(),
        if sandbox.is_some() {
            "gVisor's sandbox"
        } else {
            "the oldest"
        }
    ));
    Ok(found)
}

/// The start time of `pid` in clock ticks since boot (field 22 of stat).
pub fn start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    crate::host::parse::parse_pid_stat(&stat).ok()?.start_time
}

fn command_line(pid: i32) -> Option<String> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let parts: Vec<String> = raw
        .split(|b| *b == 0)
        .filter(|p| !p.is_empty())
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect();
    if parts.is_empty() {
        // A kernel thread, or a zombie: the name from comm.
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
        return Some(format!("[{}]", comm.trim()));
    }
    Some(parts.join(" "))
}

/// The target's cgroup per controller, the limits there, the usage.
fn cgroup_view(
    host: &Host,
    layout: &CgroupLayout,
    pid: i32,
) -> Result<(BTreeMap<String, String>, LimitsInForce, Usage)> {
    let mut cgroups = BTreeMap::new();
    let mut stats: BTreeMap<&str, CgroupStats> = BTreeMap::new();
    for controller in ["cpu", "cpuacct", "memory", "pids", "cpuset"] {
        let cg = match host.pid_cgroup(layout, pid, controller) {
            Ok(Some(cg)) => cg,
            Ok(None) => continue,
            Err(Error::NoSuchProcess(p)) => return Err(Error::NoSuchProcess(p)),
            Err(e) => return Err(e),
        };
        cgroups.insert(controller.to_string(), cg.as_str().to_string());
        if let Ok(s) = layout.stats(&cg) {
            stats.insert(controller, s);
        }
    }
    let get = |c: &str| stats.get(c);
    let limit = |l: Option<Limit>| match l {
        Some(Limit::Value(v)) => Some(v),
        _ => None,
    };
    let limits = LimitsInForce {
        cpu_quota_cores: get("cpu").and_then(|s| s.cpu_max).and_then(|m| m.cores()),
        memory_limit_bytes: get("memory")
            .and_then(|s| limit(s.memory_limit))
            // v1 writes "no limit" as a huge page-rounded number.
            .filter(|b| *b < (1u64 << 62)),
        pids_max: get("pids").and_then(|s| limit(s.pids_max)),
        cpuset_cpus: get("cpuset").and_then(|s| s.cpuset_cpus_effective.clone()),
    };
    let usage = Usage {
        cpu_usage_ns: get("cpuacct")
            .and_then(|s| s.cpu_usage_ns)
            .or_else(|| get("cpu").and_then(|s| s.cpu_usage_ns)),
        cpu_nr_periods: get("cpu").and_then(|s| s.cpu_nr_periods),
        cpu_nr_throttled: get("cpu").and_then(|s| s.cpu_nr_throttled),
        memory_usage_bytes: get("memory").and_then(|s| s.memory_usage_bytes),
        memory_peak_bytes: get("memory").and_then(|s| s.memory_peak_bytes),
        oom_kills: get("memory").and_then(|s| s.oom_kills),
        pids_current: get("pids").and_then(|s| s.pids_current),
    };
    Ok((cgroups, limits, usage))
}

fn security_of(pid: i32) -> Security {
    let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return Security::default();
    };
    let s = inside::parse_status(&text);
    Security {
        capabilities: s.capabilities,
        seccomp_mode: s.seccomp_mode,
        no_new_privs: s.no_new_privs,
        pid_inside: text
            .lines()
            .find_map(|l| l.strip_prefix("NSpid:"))
            .and_then(|v| v.split_whitespace().last()?.parse().ok()),
    }
}

/// Runs the enter stage and reads the inside view it prints.
fn collect_inside(exe: &Path, pid: i32, start: u64) -> std::result::Result<InsideView, String> {
    let out = std::process::Command::new(exe)
        .arg(enter::ENTER_ARG)
        .arg(pid.to_string())
        .arg(start.to_string())
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("running {}: {e}", exe.display()))?;
    if !out.status.success() {
        let said = String::from_utf8_lossy(&out.stderr);
        return Err(format!(
            "entering the namespaces of {pid} failed ({}): {}",
            out.status,
            said.trim()
        ));
    }
    serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("the collector's inside view is not valid JSON: {e}"))
}

/// CPUs the limits allow: the cpuset's count, lowered to the quota
/// rounded up (0.2 CPUs -> 1).
pub fn allowed_cpus(limits: &LimitsInForce) -> Option<u64> {
    let by_quota = limits.cpu_quota_cores.map(|c| c.ceil().max(1.0) as u64);
    let by_set = limits.cpuset_cpus.as_ref().map(|s| s.len() as u64);
    match (by_quota, by_set) {
        (Some(q), Some(s)) => Some(q.min(s)),
        (q, s) => q.or(s),
    }
}

/// What /proc inside says against the limits: MemTotal against the memory
/// limit; nproc, /proc/cpuinfo and /proc/stat against the CPUs allowed.
pub fn proc_findings(v: &InsideView, limits: &LimitsInForce) -> Vec<ProcFinding> {
    let mut out = Vec::new();
    if let (Some(total), Some(limit)) = (v.mem_total_bytes, limits.memory_limit_bytes) {
        out.push(ProcFinding {
            check: "meminfo".into(),
            inside: format!("MemTotal {}", bytes(total)),
            limit: format!("memory limit {}", bytes(limit)),
            leaked: total > limit,
        });
    }
    if let Some(allowed) = allowed_cpus(limits) {
        let limit = match (limits.cpu_quota_cores, &limits.cpuset_cpus) {
            (Some(q), _) => format!("{allowed} CPU(s) (quota {q:.2})"),
            (None, Some(s)) => format!("{allowed} CPU(s) (cpuset {})", s.len()),
            (None, None) => format!("{allowed} CPU(s)"),
        };
        for (check, what, value) in [
            ("nproc", "online CPUs (nproc --all)", v.nproc_online),
            ("cpuinfo", "/proc/cpuinfo processors", v.cpuinfo_processors),
            ("proc-stat", "/proc/stat cpuN lines", v.proc_stat_cpus),
            (
                "available-parallelism",
                "available_parallelism",
                v.available_parallelism,
            ),
        ] {
            if let Some(n) = value {
                out.push(ProcFinding {
                    check: check.into(),
                    inside: format!("{what} {n}"),
                    limit: limit.clone(),
                    leaked: n > allowed,
                });
            }
        }
    }
    out
}

fn bytes(b: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// Names of well-known dangerous capabilities present in `mask`.
fn notable_caps(mask: u64) -> Vec<&'static str> {
    [
        (21, "CAP_SYS_ADMIN"),
        (25, "CAP_SYS_TIME"),
        (12, "CAP_NET_ADMIN"),
        (19, "CAP_SYS_PTRACE"),
        (16, "CAP_SYS_MODULE"),
        (17, "CAP_SYS_RAWIO"),
    ]
    .into_iter()
    .filter(|(bit, _)| mask & (1u64 << bit) != 0)
    .map(|(_, n)| n)
    .collect()
}

impl fmt::Display for Inspection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_heading(f)?;
        self.write_namespaces(f)?;
        self.write_cgroups(f)?;
        self.write_limits(f)?;
        self.write_security(f)?;
        self.write_inside(f)
    }
}

impl Inspection {
    /// Who was inspected, and the notes.
    fn write_heading(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.container {
            Some(c) => writeln!(
                f,
                "boxwatch inspect: {} container {} ({}), PID {} ({})",
                c.engine,
                c.name,
                engine::short(&c.id),
                self.pid,
                shortened(&self.command)
            )?,
            None => writeln!(
                f,
                "boxwatch inspect: PID {} ({})",
                self.pid,
                shortened(&self.command)
            )?,
        }
        for n in &self.notes {
            writeln!(f, "  note: {n}")?;
        }
        Ok(())
    }

    /// Each namespace: isolated, shared, or why not judged.
    fn write_namespaces(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "\nnamespaces (against {}):", self.reference.description)?;
        for n in &self.namespaces {
            let state = match (n.isolated, n.target_inode, n.reference_inode) {
                _ if self.sandboxed => "n/a: sandboxed",
                (Some(true), _, _) => "isolated",
                (Some(false), _, _) => "SHARED with the host",
                (None, None, Some(_)) => "not judged: unreadable",
                (None, Some(_), None) => "not judged: no reference",
                (None, _, _) => "not on this kernel",
            };
            let inode = n.target_inode.map(|i| i.to_string()).unwrap_or_default();
            writeln!(f, "  {:<7} {:<21} {}", n.namespace, state, inode)?;
        }
        Ok(())
    }

    /// The process's cgroup in each hierarchy.
    fn write_cgroups(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "\ncgroups:")?;
        for (c, p) in &self.cgroups {
            writeln!(f, "  {c:<8} {p}")?;
        }
        Ok(())
    }

    /// The limits in force next to the usage.
    fn write_limits(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let l = &self.limits;
        let u = &self.usage;
        let or_none = |o: Option<String>| o.unwrap_or_else(|| "none".into());
        writeln!(f, "\nlimits in force, and usage:")?;
        writeln!(
            f,
            "  cpu      {:<22} used {}, throttled in {} of {} periods",
            or_none(l.cpu_quota_cores.map(|c| format!("{c:.2} CPUs"))),
            u.cpu_usage_ns
                .map(|n| format!("{:.2} s", n as f64 / 1e9))
                .unwrap_or_else(|| "?".into()),
            u.cpu_nr_throttled
                .map(|n| n.to_string())
                .unwrap_or_else(|| "?".into()),
            u.cpu_nr_periods
                .map(|n| n.to_string())
                .unwrap_or_else(|| "?".into()),
        )?;
        writeln!(
            f,
            "  memory   {:<22} now {}, peak {}, {} OOM kill(s)",
            or_none(l.memory_limit_bytes.map(bytes)),
            u.memory_usage_bytes
                .map(bytes)
                .unwrap_or_else(|| "?".into()),
            u.memory_peak_bytes.map(bytes).unwrap_or_else(|| "?".into()),
            u.oom_kills
                .map(|n| n.to_string())
                .unwrap_or_else(|| "?".into()),
        )?;
        writeln!(
            f,
            "  pids     {:<22} now {}",
            or_none(l.pids_max.map(|n| n.to_string())),
            u.pids_current
                .map(|n| n.to_string())
                .unwrap_or_else(|| "?".into()),
        )?;
        if let Some(cpus) = &l.cpuset_cpus {
            writeln!(f, "  cpuset   {} CPU(s): {cpus:?}", cpus.len())?;
        }
        Ok(())
    }

    /// Capabilities, seccomp and no_new_privs of the process.
    fn write_security(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.security;
        if let Some(c) = s.capabilities {
            let notable = notable_caps(c.effective);
            writeln!(
                f,
                "\nsecurity{}: {} effective capabilities{}, seccomp {}, no_new_privs {}",
                if self.sandboxed {
                    " (of the sandbox process, not the workload's)"
                } else {
                    ""
                },
                c.effective.count_ones(),
                if notable.is_empty() {
                    String::new()
                } else {
                    format!(" including {}", notable.join(", "))
                },
                match s.seccomp_mode {
                    Some(0) => "off",
                    Some(1) => "strict",
                    Some(2) => "filter",
                    _ => "?",
                },
                match s.no_new_privs {
                    Some(true) => "on",
                    Some(false) => "off",
                    None => "?",
                },
            )?;
        }
        Ok(())
    }

    /// The inside view and /proc against the limits, or why it is missing.
    fn write_inside(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.inside, &self.inside_error) {
            (Some(v), _) if self.inside_through.as_deref() != Some("setns") => {
                writeln!(
                    f,
                    "\ninside (read with cat through {}):",
                    self.inside_through.as_deref().unwrap_or("?")
                )?;
                writeln!(
                    f,
                    "  hostname {:?}, {} mount(s), interfaces {:?}, {} effective capabilities, seccomp {}",
                    v.hostname,
                    v.mounts.len(),
                    v.interfaces,
                    v.capabilities
                        .map(|c| c.effective.count_ones().to_string())
                        .unwrap_or_else(|| "?".into()),
                    v.seccomp_mode.map(|m| m.to_string()).unwrap_or_else(|| "?".into()),
                )?;
                for p in &v.problems {
                    writeln!(f, "  not read: {p}")?;
                }
                proc_lines(f, &self.proc_findings)?;
            }
            (Some(v), _) => {
                let s = &self.security;
                writeln!(f, "\ninside (entered with setns):")?;
                writeln!(
                    f,
                    "  PID {} inside, {} process(es) visible, hostname {:?}, {} mount(s), interfaces {:?}",
                    s.pid_inside.map(|p| p.to_string()).unwrap_or_else(|| "?".into()),
                    v.pids.len(),
                    v.hostname,
                    v.mounts.len(),
                    v.interfaces
                )?;
                proc_lines(f, &self.proc_findings)?;
            }
            (None, Some(e)) => writeln!(
                f,
                "\ninside: NOT COLLECTED, so /proc inside was not compared with the limits: {e}"
            )?,
            (None, None) => {}
        }
        Ok(())
    }
}

/// A command line cut to 120 characters for the human report.
fn shortened(command: &str) -> String {
    if command.chars().count() <= 120 {
        return command.to_string();
    }
    let cut: String = command.chars().take(117).collect();
    format!("{cut}...")
}

/// The /proc findings, one line each.
fn proc_lines(f: &mut fmt::Formatter<'_>, findings: &[ProcFinding]) -> fmt::Result {
    writeln!(f, "\n/proc inside against the limits:")?;
    if findings.is_empty() {
        writeln!(f, "  (no memory or CPU limit to compare with)")?;
    }
    for p in findings {
        writeln!(
            f,
            "  {:<7} {:<22} {} / {}",
            if p.leaked { "LEAKED" } else { "ok" },
            p.check,
            p.inside,
            p.limit
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gvisor_processes_are_recognised_by_their_name() {
        assert_eq!(
            gvisor_role("runsc-sandbox --root=/run/boxwatch/oci/runsc boot --bundle=/b x"),
            Some("sandbox")
        );
        assert_eq!(
            gvisor_role("/usr/bin/runsc-gofer gofer --bundle /b"),
            Some("gofer")
        );
        assert_eq!(gvisor_role("/bin/sleep 100"), None);
        assert_eq!(gvisor_role(""), None);
        let note = sandbox_note(7, "runsc-sandbox boot").unwrap();
        assert!(
            note.starts_with("sandboxed: PID 7 is gVisor's sandbox"),
            "{note}"
        );
        assert!(sandbox_note(7, "sh -c x").is_none());
    }

    fn view(mem: u64, nproc: u64) -> InsideView {
        InsideView {
            mem_total_bytes: Some(mem),
            nproc_online: Some(nproc),
            cpuinfo_processors: Some(nproc),
            proc_stat_cpus: Some(nproc),
            available_parallelism: Some(1),
            ..InsideView::default()
        }
    }

    #[test]
    fn meminfo_and_cpu_counts_are_judged_against_the_limits() {
        let limits = LimitsInForce {
            cpu_quota_cores: Some(0.2),
            memory_limit_bytes: Some(64 << 20),
            ..LimitsInForce::default()
        };
        let f = proc_findings(&view(8 << 30, 2), &limits);
        let get = |c: &str| f.iter().find(|p| p.check == c).unwrap();
        assert!(get("meminfo").leaked);
        assert!(get("nproc").leaked && get("cpuinfo").leaked && get("proc-stat").leaked);
        assert!(!get("available-parallelism").leaked);
        assert!(get("nproc").limit.contains("quota 0.20"));
        // lxcfs-style virtualized /proc: nothing leaks.
        let f = proc_findings(&view(64 << 20, 1), &limits);
        assert!(f.iter().all(|p| !p.leaked), "{f:?}");
    }

    #[test]
    fn without_limits_there_is_nothing_to_compare() {
        assert!(proc_findings(&view(1 << 30, 2), &LimitsInForce::default()).is_empty());
    }

    #[test]
    fn allowed_cpus_take_the_tighter_of_quota_and_cpuset() {
        let mut l = LimitsInForce {
            cpu_quota_cores: Some(1.5),
            ..LimitsInForce::default()
        };
        assert_eq!(allowed_cpus(&l), Some(2));
        l.cpuset_cpus = Some(vec![0]);
        assert_eq!(allowed_cpus(&l), Some(1));
        l.cpu_quota_cores = None;
        assert_eq!(allowed_cpus(&l), Some(1));
        l.cpuset_cpus = None;
        assert_eq!(allowed_cpus(&l), None);
    }

    #[test]
    fn sizes_and_capabilities_read_well() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(64 << 20), "64.0 MiB");
        assert_eq!(
            notable_caps((1 << 21) | (1 << 25) | 1),
            ["CAP_SYS_ADMIN", "CAP_SYS_TIME"]
        );
    }

    #[test]
    fn this_process_is_not_a_container() {
        let me = std::process::id() as i32;
        match inspect_pid(Path::new("/nonexistent"), me) {
            Err(Error::NotAContainer {
                pid,
                command,
                reference,
            }) => {
                assert_eq!(pid, me);
                assert!(!command.is_empty());
                assert!(!reference.is_empty());
            }
            other => panic!("{other:?}"),
        }
    }

    /// Namespace inodes of a made-up host: PID 1 and boxwatch (PID 50)
    /// differ in net; `unreadable` namespaces of PID 1 cannot be read; the
    /// kernel has no time namespace.
    fn reader(unreadable: &'static [&'static str]) -> impl Fn(i32, &str) -> Result<u64> {
        move |pid, ns| {
            if ns == "time" || (pid == 1 && unreadable.contains(&ns)) {
                return Err(Error::NoSuchProcess(pid));
            }
            let base = NAMESPACES.iter().position(|n| *n == ns).unwrap() as u64;
            Ok(if pid == 50 && ns == "net" { 900 } else { base })
        }
    }

    #[test]
    fn the_reference_is_pid_1_when_it_can_be_read() {
        let (r, inodes) = namespace_reference(50, reader(&[]));
        assert_eq!(r.pid, 1);
        assert!(r.description.contains("PID 1"), "{}", r.description);
        let net = NAMESPACES.iter().position(|n| *n == "net").unwrap();
        assert_eq!(inodes[net], Some(net as u64), "PID 1's net, not boxwatch's");
        assert_eq!(inodes[NAMESPACES.len() - 1], None, "no time namespace");
    }

    #[test]
    fn the_reference_falls_back_to_boxwatch_and_says_why() {
        let (r, inodes) = namespace_reference(50, reader(&["mnt"]));
        assert_eq!(r.pid, 50);
        assert!(
            r.description.contains("boxwatch's own (PID 50)")
                && r.description.contains("/proc/1/ns/mnt"),
            "{}",
            r.description
        );
        let net = NAMESPACES.iter().position(|n| *n == "net").unwrap();
        assert_eq!(inodes[net], Some(900), "boxwatch's own net");
    }

    #[test]
    fn a_failed_entry_is_said_with_its_reason() {
        let found = Inspection {
            pid: 7,
            container: None,
            command: "sleep".into(),
            reference: NamespaceReference {
                pid: 1,
                description: "PID 1's, the host's init".into(),
            },
            namespaces: Vec::new(),
            sandboxed: false,
            cgroups: BTreeMap::new(),
            limits: LimitsInForce::default(),
            usage: Usage::default(),
            security: Security::default(),
            inside: None,
            inside_error: Some("setns into the mnt namespace: EPERM".into()),
            inside_through: Some("setns".into()),
            proc_findings: Vec::new(),
            notes: Vec::new(),
        };
        let text = found.to_string();
        assert!(text.contains("against PID 1's, the host's init"), "{text}");
        assert!(
            text.contains("inside: NOT COLLECTED")
                && text.contains("setns into the mnt namespace: EPERM"),
            "{text}"
        );
    }

    #[test]
    fn a_pid_that_is_gone_is_named() {
        // PIDs above pid_max never exist.
        let e = inspect_pid(Path::new("/nonexistent"), i32::MAX).unwrap_err();
        assert!(matches!(e, Error::NoSuchProcess(p) if p == i32::MAX), "{e}");
        assert!(e.to_string().contains(&i32::MAX.to_string()));
    }

    #[test]
    fn start_time_reads_this_process() {
        assert!(start_time(std::process::id() as i32).is_some());
        assert_eq!(start_time(i32::MAX), None);
    }
}
