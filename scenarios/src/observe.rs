//! From what the harness collected during a scenario to named metrics. Pure:
//! the runner gathers [`Collected`] and the [`HostSnapshot`]s, this module
//! only computes.

use crate::expect::{Evidence, Observations, Observed, Value};
use crate::facts::CgroupFacts;
use crate::facts::ControllerFact;
use crate::metrics::{InsideMetric, Metric, WORKLOAD_PREFIX};
use crate::placement::PlacementSeen;
use crate::workload::WorkloadKind;
use probes::host::{CgroupStats, CgroupVersion, Limit};
use probes::inside::{InsideView, CAP_SYS_ADMIN, CAP_SYS_TIME};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// One host-side reading of a container's cgroup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct HostSample {
    /// Milliseconds since the container started.
    pub t_ms: u64,
    /// The cgroup's total CPU time so far, in nanoseconds.
    pub cpu_usage_ns: Option<u64>,
    /// The cgroup's memory usage, in bytes.
    pub memory_bytes: Option<u64>,
    /// CFS periods elapsed so far (`cpu.stat` `nr_periods`).
    pub nr_periods: Option<u64>,
    /// Periods in which the cgroup was throttled so far (`cpu.stat`
    /// `nr_throttled`).
    pub nr_throttled: Option<u64>,
    /// Time the cgroup spent throttled so far, in nanoseconds.
    pub throttled_ns: Option<u64>,
    /// Processes in the cgroup (`pids.current`).
    pub pids: Option<u64>,
    /// OOM kills charged to the cgroup so far.
    pub oom_kills: Option<u64>,
}

impl HostSample {
    /// The sample of the cgroup figures `s`, read `t_ms` milliseconds after
    /// the container started.
    pub fn from_stats(t_ms: u64, s: &CgroupStats) -> HostSample {
        HostSample {
            t_ms,
            cpu_usage_ns: s.cpu_usage_ns,
            memory_bytes: s.memory_usage_bytes,
            nr_periods: s.cpu_nr_periods,
            nr_throttled: s.cpu_nr_throttled,
            throttled_ns: s.cpu_throttled_ns,
            pids: s.pids_current,
            oom_kills: s.oom_kills,
        }
    }
}

/// A point of the measured window: when, the cgroup's CPU time then, and
/// the host's busy CPU ticks (all CPUs, from /proc/stat) then.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Mark {
    /// Seconds since the container started.
    pub at_secs: f64,
    /// The cgroup's total CPU time then, in nanoseconds.
    pub cpu_usage_ns: Option<u64>,
    /// The host's busy CPU time then, all CPUs, in clock ticks (USER_HZ)
    /// from /proc/stat.
    pub host_busy_ticks: Option<u64>,
    /// The container's threads' run and wait, and the cgroup's throttled
    /// time, then (see [`crate::contention`]).
    pub sched: Option<crate::contention::SchedMark>,
}

/// What the host showed while the workload asked the harness to look
/// (`ack` lines of the workload protocol).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AckView {
    /// The host's CLOCK_REALTIME then, in seconds since the epoch.
    pub host_realtime: f64,
    /// The host's CLOCK_MONOTONIC then, in seconds.
    pub host_monotonic: f64,
    /// The harness's (host's) mount points at that moment.
    pub host_mount_points: Vec<String>,
    /// A host mount whose source or mount point carries the probe's marker.
    pub host_sees_marker: bool,
    /// The container's namespace inodes as the host sees them then.
    pub container_ns: BTreeMap<String, u64>,
    /// Why the host's mount table could not be read then, if it could not.
    pub mounts_error: Option<String>,
}

/// Host facts read before and after a scenario.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HostSnapshot {
    /// `None` when gethostname failed.
    pub hostname: Option<String>,
    /// The host's CLOCK_REALTIME, in seconds since the epoch (NaN when it
    /// could not be read).
    pub realtime: f64,
    /// The host's CLOCK_MONOTONIC, in seconds (NaN when it could not be
    /// read).
    pub monotonic: f64,
    /// /proc/vmstat `oom_kill`.
    pub oom_kills: Option<u64>,
}

/// Everything the harness collected about one container.
#[derive(Debug, Clone, Default)]
pub struct Collected {
    /// The PID of the container's first process, as the host sees it.
    pub host_pid: i32,
    /// The host-side readings of its cgroup, in time order.
    pub samples: Vec<HostSample>,
    /// The host's CLOCK_REALTIME minus CLOCK_MONOTONIC at every sample: a
    /// container that steps the clock and steps it back is still seen.
    pub host_clock_offsets: Vec<f64>,
    /// When the workload wrote its `start` line.
    pub start: Option<Mark>,
    /// When the workload wrote its `result` line (`None` if it wrote none).
    pub end: Option<Mark>,
    /// The first sample after spawn.
    pub first: Option<Mark>,
    /// The last sample before the exit.
    pub last: Option<Mark>,
    /// The cgroup's figures right after the entry exited (before cleanup).
    pub final_stats: Option<CgroupStats>,
    /// Forks the kernel refused at the pids limit (`pids.events` max), read
    /// right after the entry exited.
    pub pids_limit_hits: Option<u64>,
    /// Why pids.events could not be read, when it could not.
    pub pids_limit_hits_error: Option<String>,
    /// The run and wait of the container's first process's threads.
    pub threads: crate::contention::ThreadTracker,
    /// Why the cgroup's figures could not be read, when they could not.
    pub stats_error: Option<String>,
    /// The fields of the workload's protocol lines, merged.
    pub fields: serde_json::Map<String, serde_json::Value>,
    /// The container's namespace inodes, read from the host right after spawn.
    pub spawn_ns: BTreeMap<String, u64>,
    /// What the host showed when the workload asked it to look, if it did.
    pub ack: Option<AckView>,
    /// Shell-style exit code (128 + signal).
    pub exit_code: Option<i32>,
    /// Processes still in the cgroup after the entry ended.
    pub survivors: Option<usize>,
    /// Those processes as (pid, start time in clock ticks since boot), so a
    /// reused PID is never mistaken for one of them.
    pub survivor_pids: Vec<(i32, u64)>,
    /// How many of them were still alive after the runtime's cleanup.
    pub survivors_after_cleanup: Option<usize>,
    /// The last lines the workload wrote on stderr.
    pub stderr_tail: String,
    /// What the kernel shows of the judged controllers for the container's
    /// cgroup, read before cleanup: the evidence for `unsupported`.
    pub facts: Option<CgroupFacts>,
    /// Where the container's processes were, sampled while it ran.
    pub placement: PlacementSeen,
    /// The first sample (ms since start) where the container was running
    /// and pids.current read 0: its processes are not counted there.
    pub zero_pids_at_ms: Option<u64>,
    /// The host's fork tried while the container was at a limit: (ms since
    /// start, which limit, whether the host could start a process).
    pub fork_at_limit: Option<(u64, String, bool)>,
}

/// Paths the minimal rootfs has on purpose: host mounts at these paths, or
/// below the read-only system binds and /dev, are not a leak of the mount
/// namespace. /proc and /sys are fresh mounts inside, so host mounts below
/// them (/sys/fs/cgroup/*, binfmt_misc) would be.
const CONTAINER_OWN_MOUNTS: [&str; 14] = [
    "/proc",
    "/sys",
    "/dev",
    "/tmp",
    "/usr",
    "/bin",
    "/sbin",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/etc",
    "/.boxwatch",
    "/run/boxwatch",
];

fn is_own_mount(path: &str) -> bool {
    path == "/"
        || CONTAINER_OWN_MOUNTS.iter().any(|p| {
            path == *p
                || (*p != "/proc"
                    && *p != "/sys"
                    && path.strip_prefix(p).is_some_and(|r| r.starts_with('/')))
        })
}

/// The container's own cgroupfs view, which Docker and Podman mount (runc's
/// default): a fresh tmpfs at /sys/fs/cgroup, and each hierarchy (or the
/// cgroup2 tree) mounted at its usual path below it, rooted at the
/// container's cgroup (or at "/" of its own cgroup namespace). Its mount
/// points are the host's, its contents are not; what it would let the
/// container do is the `cgroupfs-readonly` check's (`escape-proc-paths`).
/// A hierarchy mounted from its root without a cgroup namespace is the
/// host's whole tree, and counts.
fn is_own_cgroupfs(m: &probes::inside::MountEntry, private_cgroupns: bool) -> bool {
    let below = m.mount_point == "/sys/fs/cgroup" || m.mount_point.starts_with("/sys/fs/cgroup/");
    (m.mount_point == "/sys/fs/cgroup" && m.fs_type == "tmpfs")
        || ((m.fs_type == "cgroup" || m.fs_type == "cgroup2")
            && below
            && (m.root != "/" || private_cgroupns))
}

fn missing(why: impl Into<String>) -> Observed {
    Observed::Missing(why.into())
}

fn limit_obs(l: Option<Limit>, absent: impl FnOnce() -> Observed) -> Observed {
    match l {
        Some(Limit::Value(v)) => v.into(),
        Some(Limit::Unlimited) => f64::INFINITY.into(),
        None => absent(),
    }
}

/// The CPU share (in CPUs) and the host's other load between two marks.
pub fn window_share(a: &Mark, b: &Mark, ticks_per_sec: f64) -> Option<(f64, Option<f64>)> {
    let dt = b.at_secs - a.at_secs;
    if dt < 0.01 {
        return None;
    }
    let used = b.cpu_usage_ns?.checked_sub(a.cpu_usage_ns?)? as f64 / 1e9;
    let share = used / dt;
    let busy = match (a.host_busy_ticks, b.host_busy_ticks) {
        (Some(x), Some(y)) if y >= x && ticks_per_sec > 0.0 => {
            Some(((y - x) as f64 / ticks_per_sec / dt - share).max(0.0))
        }
        _ => None,
    };
    Some((share, busy))
}

/// The version of the hierarchy serving `controller` for the container,
/// from the facts (v1 when unknown: only the file name in a message).
fn version_of(c: &Collected, controller: &str) -> CgroupVersion {
    match c.facts.as_ref().and_then(|f| f.controllers.get(controller)) {
        Some(ControllerFact::Mounted { version, .. }) => *version,
        _ => CgroupVersion::V1,
    }
}

/// A figure of `controller` the host did not show (file `v1` or `v2` by
/// the hierarchy's version): `unsupported` only with the kernel's evidence.
fn absent(c: &Collected, controller: &str, v1: &str, v2: &str) -> Observed {
    let file = match version_of(c, controller) {
        CgroupVersion::V1 => v1,
        CgroupVersion::V2 => v2,
    };
    // The probes saw the cgroup's directory missing from that hierarchy.
    if let (Some(s), Some(ControllerFact::Mounted { dir, .. })) = (
        &c.final_stats,
        c.facts.as_ref().and_then(|f| f.controllers.get(controller)),
    ) {
        if s.missing_dirs.contains(dir) {
            return missing(format!(
                "{}: ENOENT: the container's cgroup is not in the {controller} hierarchy",
                dir.display()
            ));
        }
    }
    let why = c
        .stats_error
        .clone()
        .unwrap_or_else(|| "the container's cgroup was not found: its facts were not read".into());
    crate::facts::absent_figure(c.facts.as_ref(), &why, controller, file)
}

/// The CPU usage the host did not show: v1 cpuacct.usage when the cpuacct
/// hierarchy is mounted, else cpu.stat.
fn absent_usage(c: &Collected) -> Observed {
    match c.facts.as_ref().and_then(|f| f.controllers.get("cpuacct")) {
        Some(ControllerFact::Mounted { .. }) => absent(c, "cpuacct", "cpuacct.usage", "cpu.stat"),
        _ => absent(c, "cpu", "cpu.stat", "cpu.stat"),
    }
}

/// What the judge knows of a container's run besides what was collected
/// from it: the host around the scenario, and what the container ran.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// The host before the scenario's containers started.
    pub pre: &'a HostSnapshot,
    /// The host after they were removed.
    pub post: &'a HostSnapshot,
    /// The harness's own namespace inodes, which a container's must not be.
    pub harness_ns: &'a BTreeMap<String, u64>,
    /// The container's workload: which result fields and views it reports.
    pub workload: WorkloadKind,
    /// The kernel's clock ticks per second (the unit of /proc/stat).
    pub ticks_per_sec: f64,
}

/// The metrics of one container: the cgroup's figures, where its
/// processes were, how they ended, whether the host changed, its
/// namespaces, and what the workload reported.
pub fn observe(c: &Collected, cx: &Context) -> Observations {
    let mut o = Observations::new();
    cpu_window(c, cx.ticks_per_sec, &mut o);
    match &c.final_stats {
        Some(s) => {
            cpu_throttling(c, s, &mut o);
            limits_read_back(c, s, &mut o);
            oom_kills(c, s, cx, &mut o);
        }
        None => {
            for m in READ_AFTER_EXIT {
                put(&mut o, m, stats_missing(c));
            }
        }
    }
    pids_peak(c, &mut o);
    put(&mut o, Metric::Placement, c.placement.observed());
    how_it_ended(c, &mut o);
    host_unchanged(c, cx, &mut o);
    let container_ns = container_namespaces(c);
    namespaces(c, cx.harness_ns, container_ns, &mut o);
    workload_results(c, cx.workload, &mut o);
    if cx.workload == WorkloadKind::ProbeInside {
        // In its own cgroup namespace, a cgroupfs rooted at "/" is the
        // container's own subtree.
        let private_cgroupns = matches!(
            (cx.harness_ns.get("cgroup"), container_ns.get("cgroup")),
            (Some(h), Some(c)) if h != c
        );
        inside_metrics(
            &mut o,
            c,
            inside_view(c).as_ref(),
            container_ns,
            private_cgroupns,
        );
    }
    o
}

/// The metrics of the scenario as a whole, from its containers' (with
/// their prefixes): the CPUs the host's other processes left free.
pub fn scenario_metrics(obs: &mut Observations, cpus: f64) {
    if let Some(spare) = crate::runner::spare_cpus(obs, cpus) {
        put(obs, Metric::HostSpareCpus, spare.into());
    }
}

fn put(o: &mut Observations, m: Metric, v: Observed) {
    o.insert(m.as_str().to_string(), v);
}

/// The figures read from the cgroup right after the entry exited, all
/// missing when it could not be read then.
const READ_AFTER_EXIT: [Metric; 13] = [
    Metric::NrPeriods,
    Metric::NrThrottled,
    Metric::ThrottledSecs,
    Metric::ThrottledRatio,
    Metric::CpuQuota,
    Metric::MemoryLimitBytes,
    Metric::PidsLimit,
    Metric::PidsLimitHits,
    Metric::MemoryPeakBytes,
    Metric::MemoryLimitHits,
    Metric::OomKills,
    Metric::OomKilled,
    Metric::HostOomKillsOutside,
];

fn stats_missing(c: &Collected) -> Observed {
    missing(
        c.stats_error
            .clone()
            .unwrap_or_else(|| "the container's cgroup could not be read".into()),
    )
}

/// `cpu_share` and `host_busy_cpus` over the workload's own window when it
/// reported one, else the run; the contention figures with them.
fn cpu_window(c: &Collected, ticks_per_sec: f64, o: &mut Observations) {
    let window = match (c.start, c.end) {
        (Some(a), Some(b)) => Some((a, b)),
        _ => c.first.zip(c.last),
    };
    let (share, busy) = match window {
        Some((a, b)) if a.cpu_usage_ns.is_none() || b.cpu_usage_ns.is_none() => {
            (absent_usage(c), absent_usage(c))
        }
        Some((a, b)) => match window_share(&a, &b, ticks_per_sec) {
            Some((share, busy)) => {
                if let (Some(x), Some(y)) = (a.sched, b.sched) {
                    let dt = b.at_secs - a.at_secs;
                    for (k, v) in crate::contention::metrics(&x, &y, dt, share) {
                        o.insert(k.to_string(), v);
                    }
                }
                let busy = busy
                    .map(Observed::from)
                    .unwrap_or_else(|| missing("/proc/stat could not be read"));
                (share.into(), busy)
            }
            None => (
                missing("the measured window was too short (under 10 ms)"),
                missing("the measured window was too short"),
            ),
        },
        None => (stats_missing(c), stats_missing(c)),
    };
    put(o, Metric::CpuShare, share);
    put(o, Metric::HostBusyCpus, busy);
}

/// The CFS bandwidth figures of cpu.stat and the quota read back.
fn cpu_throttling(c: &Collected, s: &CgroupStats, o: &mut Observations) {
    let cpu_stat = || absent(c, "cpu", "cpu.stat", "cpu.stat");
    let or_absent = |v: Option<u64>| v.map(Observed::from).unwrap_or_else(cpu_stat);
    put(o, Metric::NrPeriods, or_absent(s.cpu_nr_periods));
    put(o, Metric::NrThrottled, or_absent(s.cpu_nr_throttled));
    put(
        o,
        Metric::ThrottledSecs,
        s.cpu_throttled_ns
            .map(|ns| Observed::from(ns as f64 / 1e9))
            .unwrap_or_else(cpu_stat),
    );
    put(
        o,
        Metric::ThrottledRatio,
        match (s.cpu_nr_periods, s.cpu_nr_throttled) {
            (Some(0), Some(_)) => 0.0.into(),
            (Some(p), Some(t)) => (t as f64 / p as f64).into(),
            _ => cpu_stat(),
        },
    );
    put(
        o,
        Metric::CpuQuota,
        match s.cpu_max {
            Some(m) => m.cores().unwrap_or(f64::INFINITY).into(),
            None => absent(c, "cpu", "cpu.cfs_quota_us", "cpu.max"),
        },
    );
}

/// The memory and pids limits read back, how often they were hit, and the
/// memory peak.
fn limits_read_back(c: &Collected, s: &CgroupStats, o: &mut Observations) {
    put(
        o,
        Metric::MemoryLimitBytes,
        limit_obs(s.memory_limit, || {
            absent(c, "memory", "memory.limit_in_bytes", "memory.max")
        }),
    );
    put(
        o,
        Metric::PidsLimit,
        limit_obs(s.pids_max, || absent(c, "pids", "pids.max", "pids.max")),
    );
    put(
        o,
        Metric::PidsLimitHits,
        match (c.pids_limit_hits, &c.pids_limit_hits_error) {
            (_, Some(e)) => missing(e.clone()),
            (Some(n), None) => n.into(),
            (None, None) => absent(c, "pids", "pids.events", "pids.events"),
        },
    );
    let sampled_mem = c.samples.iter().filter_map(|x| x.memory_bytes).max();
    put(
        o,
        Metric::MemoryPeakBytes,
        match (s.memory_peak_bytes, sampled_mem) {
            (Some(p), _) => p.into(),
            (None, Some(m)) => m.into(),
            (None, None) => absent(c, "memory", "memory.max_usage_in_bytes", "memory.peak"),
        },
    );
    put(o, Metric::MemoryLimitHits, memory_limit_hits(c, s));
}

/// The OOM kills charged to the cgroup, and those elsewhere on the host
/// meanwhile (/proc/vmstat before and after, less the cgroup's).
fn oom_kills(c: &Collected, s: &CgroupStats, cx: &Context, o: &mut Observations) {
    let Some(k) = s.oom_kills else {
        let why = || absent(c, "memory", "memory.oom_control", "memory.events");
        put(o, Metric::OomKills, why());
        put(o, Metric::OomKilled, why());
        put(o, Metric::HostOomKillsOutside, why());
        return;
    };
    put(o, Metric::OomKills, k.into());
    put(o, Metric::OomKilled, (k > 0).into());
    put(
        o,
        Metric::HostOomKillsOutside,
        match (cx.pre.oom_kills, cx.post.oom_kills) {
            (Some(a), Some(b)) => b.saturating_sub(a).saturating_sub(k).into(),
            _ => missing("/proc/vmstat: no oom_kill counter was read before and after"),
        },
    );
}

/// The largest pids.current sampled; an error when a sample of the running
/// container read 0 (its processes are not counted there).
fn pids_peak(c: &Collected, o: &mut Observations) {
    put(
        o,
        Metric::PidsPeak,
        match (c.zero_pids_at_ms, c.samples.iter().filter_map(|s| s.pids).max()) {
            (Some(t), _) => missing(format!(
                "pids.current read 0 at {t} ms while the container ran: its processes are not counted in the cgroup the judge reads"
            )),
            (None, Some(n)) => n.into(),
            (None, None) => absent(c, "pids", "pids.current", "pids.current"),
        },
    );
}

/// The exit code, the processes left behind before and after cleanup, and
/// whether the host could fork while the container was at a limit.
fn how_it_ended(c: &Collected, o: &mut Observations) {
    put(
        o,
        Metric::ExitCode,
        c.exit_code
            .map(|e| Observed::from(e as f64))
            .unwrap_or_else(|| missing("the container's exit status is unknown")),
    );
    put(
        o,
        Metric::Survivors,
        c.survivors
            .map(|n| Observed::from(n as u64))
            .unwrap_or_else(|| {
                missing("the container's cgroup could not be listed after its entry ended")
            }),
    );
    put(
        o,
        Metric::SurvivorsAfterCleanup,
        c.survivors_after_cleanup
            .map(|n| Observed::from(n as u64))
            .unwrap_or_else(|| missing("the container's processes were not checked after cleanup")),
    );
    put(
        o,
        Metric::HostCanFork,
        match &c.fork_at_limit {
            Some((_, _, ok)) => (*ok).into(),
            None => missing(
                "the container was never seen at a limit in a sample: the host's fork was not tried while it was",
            ),
        },
    );
}

/// The host's clock (against CLOCK_MONOTONIC, during and after) and
/// hostname.
fn host_unchanged(c: &Collected, cx: &Context, o: &mut Observations) {
    let (pre, post) = (cx.pre, cx.post);
    let offset_before = pre.realtime - pre.monotonic;
    let step_after = (post.realtime - post.monotonic - offset_before).abs();
    let step_during = c
        .host_clock_offsets
        .iter()
        .copied()
        .chain(c.ack.as_ref().map(|a| a.host_realtime - a.host_monotonic))
        .map(|offset| (offset - offset_before).abs())
        .fold(0.0, f64::max);
    put(
        o,
        Metric::HostClockStepSecs,
        step_after.max(step_during).into(),
    );
    put(o, Metric::HostClockStepAfterSecs, step_after.into());
    put(
        o,
        Metric::HostHostnameUnchanged,
        match (&pre.hostname, &post.hostname) {
            (Some(a), Some(b)) => (a == b).into(),
            _ => missing("the host's hostname could not be read (gethostname) before and after"),
        },
    );
}

/// The container's namespace inodes as the host saw them: at the
/// workload's `ack` when it asked, else right after spawn.
fn container_namespaces(c: &Collected) -> &BTreeMap<String, u64> {
    c.ack
        .as_ref()
        .map(|a| &a.container_ns)
        .filter(|m| !m.is_empty())
        .unwrap_or(&c.spawn_ns)
}

/// The namespaces boxwatch compares: link names under `/proc/<pid>/ns`.
pub const NS_NAMES: [&str; 8] = ["pid", "mnt", "uts", "ipc", "net", "cgroup", "user", "time"];

/// `ns_differs.<ns>`: the container's inodes (seen from the host) against
/// the harness's.
fn namespaces(
    c: &Collected,
    harness_ns: &BTreeMap<String, u64>,
    container_ns: &BTreeMap<String, u64>,
    o: &mut Observations,
) {
    for ns in NS_NAMES {
        let metric = crate::metrics::ns_differs(ns).expect("every compared namespace has a metric");
        let v = match (harness_ns.get(ns), container_ns.get(ns)) {
            (None, _) => Observed::Unsupported(Evidence::KernelNamespace {
                namespace: ns.into(),
            }),
            (Some(_), None) => missing(format!(
                "the container's {ns} namespace could not be read from /proc/{}/ns (it exited too soon?)",
                c.host_pid
            )),
            (Some(h), Some(x)) => (h != x).into(),
        };
        put(o, metric, v);
    }
}

/// `workload.<key>`: the fields of the workload's protocol lines.
fn workload_results(c: &Collected, workload: WorkloadKind, o: &mut Observations) {
    for key in workload.result_keys() {
        let v = match c.fields.get(*key) {
            Some(serde_json::Value::Bool(b)) => (*b).into(),
            Some(serde_json::Value::Number(n)) => n
                .as_f64()
                .map(Observed::from)
                .unwrap_or_else(|| missing("not a number")),
            Some(serde_json::Value::String(s)) => s.as_str().into(),
            Some(serde_json::Value::Null) | None => missing(workload_silent(c, key)),
            Some(other) => missing(format!("unexpected value {other}")),
        };
        o.insert(format!("{WORKLOAD_PREFIX}{key}"), v);
    }
}

/// The probe-inside workload's view, if it reported one.
fn inside_view(c: &Collected) -> Option<InsideView> {
    c.fields
        .get("view")
        .and_then(|v| serde_json::from_value(v.clone()).ok())
}

fn workload_silent(c: &Collected, key: &str) -> String {
    let mut why = format!("the workload reported no {key}");
    if let Some(code) = c.exit_code {
        why.push_str(&format!(" (exit code {code})"));
    }
    let tail = c.stderr_tail.trim();
    if !tail.is_empty() {
        why.push_str(&format!("; stderr: {tail}"));
    }
    why
}

/// The host-side metrics that compare the inside view with the host's.
const INSIDE_COMPARED: [Metric; 7] = [
    Metric::HostPidDiffers,
    Metric::NsMatchesInside,
    Metric::MonotonicOffsetSecs,
    Metric::RealtimeOffsetSecs,
    Metric::HostSeesInsideMount,
    Metric::HostMountsVisibleInside,
    Metric::InterfacesBesidesLo,
];

/// The probe-inside workload's metrics: its view (`inside.*`), and that
/// view compared with the host's (PID, namespaces, clocks, mounts,
/// interfaces). Without a view, all of them are errors.
fn inside_metrics(
    o: &mut Observations,
    c: &Collected,
    view: Option<&InsideView>,
    container_ns: &BTreeMap<String, u64>,
    private_cgroupns: bool,
) {
    let Some(v) = view else {
        let why = workload_silent(c, "inside view");
        for m in InsideMetric::ALL {
            o.insert(m.key(), missing(why.clone()));
        }
        for m in INSIDE_COMPARED {
            put(o, m, missing(why.clone()));
        }
        return;
    };
    for m in InsideMetric::ALL {
        o.insert(m.key(), inside_field(*m, v));
    }
    pid_and_namespaces_inside(o, c, v, container_ns);
    clocks_inside(o, c, v);
    mounts_and_interfaces(o, c, v, private_cgroupns);
}

/// One field of the inside view; a value the probe could not read (or a
/// list it could not read, never "none") is an error with its problems.
fn inside_field(m: InsideMetric, v: &InsideView) -> Observed {
    let opt = |x: Option<u64>, what: &str| {
        x.map(Observed::from).unwrap_or_else(|| {
            missing(format!(
                "{what} could not be read inside: {}",
                v.problems.join("; ")
            ))
        })
    };
    let count = |list: &str, n: usize| {
        if v.unread.contains(list) {
            missing(format!(
                "the probe could not read its {list} inside: {}",
                v.problems.join("; ")
            ))
        } else {
            Observed::from(n as u64)
        }
    };
    let cap = |cap: u32| match v.capabilities {
        Some(caps) => caps.effective_has(cap).into(),
        None => missing("/proc/self/status had no capabilities"),
    };
    match m {
        InsideMetric::Pid => (v.pid as u64).into(),
        InsideMetric::PidCount => count("pids", v.pids.len()),
        InsideMetric::Hostname => v.hostname.as_str().into(),
        InsideMetric::MemTotalBytes => opt(v.mem_total_bytes, "MemTotal"),
        InsideMetric::MemAvailableBytes => opt(v.mem_available_bytes, "MemAvailable"),
        InsideMetric::NprocOnline => opt(v.nproc_online, "sysconf(_SC_NPROCESSORS_ONLN)"),
        InsideMetric::AffinityCpus => opt(v.affinity_cpus, "sched_getaffinity"),
        InsideMetric::AvailableParallelism => opt(v.available_parallelism, "available_parallelism"),
        InsideMetric::CpuinfoProcessors => opt(v.cpuinfo_processors, "/proc/cpuinfo"),
        InsideMetric::ProcStatCpus => opt(v.proc_stat_cpus, "/proc/stat"),
        InsideMetric::UptimeSecs => v
            .uptime_secs
            .map(Observed::from)
            .unwrap_or_else(|| missing("/proc/uptime could not be read inside")),
        InsideMetric::InterfaceCount => count("interfaces", v.interfaces.len()),
        InsideMetric::MountCount => count("mounts", v.mounts.len()),
        InsideMetric::CapSysTime => cap(CAP_SYS_TIME),
        InsideMetric::CapSysAdmin => cap(CAP_SYS_ADMIN),
        InsideMetric::NoNewPrivs => v
            .no_new_privs
            .map(Observed::from)
            .unwrap_or_else(|| missing("/proc/self/status had no NoNewPrivs")),
        InsideMetric::SeccompMode => v
            .seccomp_mode
            .map(|m| Observed::from(m as u64))
            .unwrap_or_else(|| missing("/proc/self/status had no Seccomp")),
    }
}

/// The PID inside against the host's, and the namespace inodes the
/// workload saw inside against those the host sees for its PID.
fn pid_and_namespaces_inside(
    o: &mut Observations,
    c: &Collected,
    v: &InsideView,
    container_ns: &BTreeMap<String, u64>,
) {
    put(o, Metric::HostPidDiffers, (v.pid != c.host_pid).into());
    let common: Vec<&String> = v
        .namespaces
        .keys()
        .filter(|k| container_ns.contains_key(*k))
        .collect();
    put(
        o,
        Metric::NsMatchesInside,
        if common.is_empty() {
            missing("no namespace inode was seen both inside and from the host")
        } else {
            common
                .iter()
                .all(|k| v.namespaces.get(*k) == container_ns.get(*k))
                .into()
        },
    );
}

/// The clocks inside minus the host's, read at the workload's `ack`.
fn clocks_inside(o: &mut Observations, c: &Collected, v: &InsideView) {
    let ack = c.ack.as_ref();
    let clock_offset = |inside: Option<probes::inside::Timestamp>,
                        host: Option<f64>,
                        what: &str| match (inside, host) {
        (Some(i), Some(h)) => Observed::from(i.as_secs_f64() - h),
        _ => missing(format!("the {what} clock was not read on both sides")),
    };
    put(
        o,
        Metric::MonotonicOffsetSecs,
        clock_offset(
            v.clock_monotonic,
            ack.map(|a| a.host_monotonic),
            "monotonic",
        ),
    );
    put(
        o,
        Metric::RealtimeOffsetSecs,
        clock_offset(v.clock_realtime, ack.map(|a| a.host_realtime), "realtime"),
    );
}

/// Mounts across the boundary both ways, and the interfaces besides lo.
fn mounts_and_interfaces(
    o: &mut Observations,
    c: &Collected,
    v: &InsideView,
    private_cgroupns: bool,
) {
    let ack = c.ack.as_ref();
    put(
        o,
        Metric::HostSeesInsideMount,
        match (c.fields.get("mounted"), ack) {
            (Some(serde_json::Value::Bool(true)), Some(a)) => match &a.mounts_error {
                Some(e) => missing(format!("the host's mount table could not be read: {e}")),
                None => a.host_sees_marker.into(),
            },
            (Some(serde_json::Value::Bool(false)), _) => missing(format!(
                "the probe could not mount its marker inside: {}",
                c.fields
                    .get("mount_error")
                    .and_then(|e| e.as_str())
                    .unwrap_or("unknown error")
            )),
            _ => missing("the probe mounted no marker (set mount_marker = true)"),
        },
    );
    put(
        o,
        Metric::HostMountsVisibleInside,
        match ack {
            Some(AckView {
                mounts_error: Some(e),
                ..
            }) => missing(format!("the host's mount table could not be read: {e}")),
            Some(_) if v.unread.contains("mounts") || v.mounts.is_empty() => missing(format!(
                "the probe saw no mount inside: {}",
                v.problems.join("; ")
            )),
            Some(a) => host_mounts_seen_inside(a, v, private_cgroupns).into(),
            None => missing("the host's mounts were not read while the probe ran"),
        },
    );
    put(
        o,
        Metric::InterfacesBesidesLo,
        if v.unread.contains("interfaces") || v.interfaces.is_empty() {
            missing(format!(
                "the probe could not read its network interfaces inside: {}",
                v.problems.join("; ")
            ))
        } else {
            Observed::Value(Value::Number(
                v.interfaces.iter().filter(|i| *i != "lo").count() as f64,
            ))
        },
    );
}

/// How many of the host's mount points (besides the container's own, and
/// its own cgroupfs view) the probe saw inside.
fn host_mounts_seen_inside(a: &AckView, v: &InsideView, private_cgroupns: bool) -> u64 {
    let host: BTreeSet<&str> = a
        .host_mount_points
        .iter()
        .map(String::as_str)
        .filter(|p| !is_own_mount(p))
        .collect();
    v.mounts
        .iter()
        .filter(|m| host.contains(m.mount_point.as_str()) && !is_own_cgroupfs(m, private_cgroupns))
        .count() as u64
}

/// `memory_limit_hits`: v2 memory.events `max`, else v1 memory.failcnt,
/// unless that count is shown wrong by the cgroup's own figures: a v1
/// failcnt of 0 next to an OOM kill or a peak at the limit (kernel 6.18
/// leaves it at 0 for an OOM-killed hog) does not count what the name
/// says, and is not reported as a number next to `oom_kills 1`.
fn memory_limit_hits(c: &Collected, s: &probes::host::CgroupStats) -> Observed {
    if let Some(n) = s.memory_limit_hits() {
        return n.into();
    }
    if s.memory_failcnt.is_none() {
        return absent(c, "memory", "memory.failcnt", "memory.events");
    }
    // The kernel's own figures are the evidence: the usage reached the
    // limit, and the counter of limit hits did not move.
    Observed::Unsupported(reports::Evidence::KernelVersion {
        release: c
            .facts
            .as_ref()
            .map(|f| f.release.clone())
            .filter(|r| !r.is_empty())
            .unwrap_or_else(|| "?".into()),
        feature: "v1 memory.failcnt counting of the limit hits that end in an OOM kill \
                  (it stayed 0 although the usage reached the limit; see oom_kills and \
                  memory_peak_bytes)"
            .into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn observe_with(
        c: &Collected,
        pre: &HostSnapshot,
        post: &HostSnapshot,
        harness_ns: &BTreeMap<String, u64>,
        workload: WorkloadKind,
    ) -> Observations {
        let cx = Context {
            pre,
            post,
            harness_ns,
            workload,
            ticks_per_sec: 100.0,
        };
        observe(c, &cx)
    }

    /// [`observe_with`] on a quiet host: no snapshots, no harness
    /// namespaces.
    fn observe_alone(c: &Collected, workload: WorkloadKind) -> Observations {
        observe_with(
            c,
            &HostSnapshot::default(),
            &HostSnapshot::default(),
            &BTreeMap::new(),
            workload,
        )
    }

    fn mark(at: f64, cpu_s: f64, busy_ticks: u64) -> Mark {
        Mark {
            at_secs: at,
            cpu_usage_ns: Some((cpu_s * 1e9) as u64),
            host_busy_ticks: Some(busy_ticks),
            sched: None,
        }
    }

    fn num(o: &Observations, k: &str) -> f64 {
        match o.get(k) {
            Some(Observed::Value(Value::Number(n))) => *n,
            other => panic!("{k}: {other:?}"),
        }
    }

    /// memory-hog on kernel 6.18 v1: failcnt 0, OOM-killed at a 64 MiB peak.
    #[test]
    fn a_failcnt_of_0_next_to_an_oom_kill_is_not_reported_as_0_hits() {
        let limit = 64 << 20;
        let hog = CgroupStats {
            memory_limit: Some(Limit::Value(limit)),
            memory_peak_bytes: Some(limit),
            memory_failcnt: Some(0),
            oom_kills: Some(1),
            ..CgroupStats::default()
        };
        let c = Collected::default();
        match memory_limit_hits(&c, &hog) {
            Observed::Unsupported(why) => {
                assert!(
                    why.describe().contains("v1 memory.failcnt counting"),
                    "{why}"
                )
            }
            other => panic!("{other:?}"),
        }
        let counted = CgroupStats {
            memory_failcnt: Some(3),
            ..hog.clone()
        };
        assert_eq!(memory_limit_hits(&c, &counted), Observed::from(3u64));
        let below = CgroupStats {
            memory_peak_bytes: Some(limit / 2),
            oom_kills: Some(0),
            ..hog.clone()
        };
        assert_eq!(memory_limit_hits(&c, &below), Observed::from(0u64));
    }

    #[test]
    fn cpu_share_uses_the_workload_window() {
        let c = Collected {
            start: Some(mark(0.1, 0.01, 1000)),
            end: Some(mark(5.1, 1.01, 1000 + 300)),
            first: Some(mark(0.0, 0.0, 990)),
            last: Some(mark(5.2, 1.2, 1400)),
            ..Collected::default()
        };
        let o = observe_alone(&c, WorkloadKind::Spin);
        assert!((num(&o, "cpu_share") - 0.2).abs() < 1e-9);
        // 3 s of host busy time over 5 s = 0.6 CPUs, of which 0.2 are ours.
        assert!((num(&o, "host_busy_cpus") - 0.4).abs() < 1e-9);
    }

    #[test]
    fn missing_stats_and_silent_workloads_are_errors_not_passes() {
        let c = Collected {
            exit_code: Some(137),
            stderr_tail: "killed".into(),
            ..Collected::default()
        };
        let o = observe_alone(&c, WorkloadKind::Hog);
        assert!(matches!(o["oom_killed"], Observed::Missing(_)));
        match &o["workload.completed"] {
            Observed::Missing(why) => {
                assert!(why.contains("137") && why.contains("killed"), "{why}")
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(o["ns_differs.pid"], Observed::Unsupported(_)));
    }

    /// A fork bomb whose container was never placed in its pids cgroup:
    /// the directory is missing from the pids hierarchy, so the pids figures
    /// are absent, and /proc/<pid>/cgroup shows the root there. Today's
    /// judge must not pass it.
    #[test]
    fn a_container_never_placed_in_a_pids_cgroup_is_not_a_pass() {
        let s = crate::builtin::load()
            .into_iter()
            .find_map(|e| e.ok().filter(|s| s.id == "pids-fork-bomb"))
            .unwrap();
        let layout = probes::host::CgroupLayout::from_mounts(
            &probes::host::parse::parse_mountinfo(
                "30 25 0:26 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids\n\
                 31 25 0:27 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n\
                 33 25 0:29 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n\
                 34 25 0:30 / /sys/fs/cgroup/cpuacct rw - cgroup cgroup rw,cpuacct\n\
                 35 25 0:31 / /sys/fs/cgroup/cpuset rw - cgroup cgroup rw,cpuset\n",
            )
            .unwrap(),
            std::path::Path::new("/"),
        )
        .unwrap();
        let expected = probes::host::CgroupPath::new("/boxwatch/run/pids-fork-bomb").unwrap();
        let mut placement = PlacementSeen::default();
        crate::placement::judge_proc_cgroup(
            &mut placement,
            4242,
            "5:pids:/\n4:memory:/boxwatch/run/pids-fork-bomb\n3:cpu:/boxwatch/run/pids-fork-bomb\n\
             2:cpuacct:/boxwatch/run/pids-fork-bomb\n1:cpuset:/boxwatch/run/pids-fork-bomb\n",
            &crate::placement::judged_hierarchies(&layout, false),
            &expected,
        );
        let mut facts = crate::facts::CgroupFacts::default();
        facts.controllers.insert(
            "pids".into(),
            ControllerFact::Mounted {
                dir: "/sys/fs/cgroup/pids/boxwatch/run/pids-fork-bomb".into(),
                version: CgroupVersion::V1,
                dir_error: Some("ENOENT (No such file or directory)".into()),
            },
        );
        let c = Collected {
            host_pid: 4242,
            final_stats: Some(CgroupStats {
                memory_limit: Some(Limit::Value(256 << 20)),
                ..CgroupStats::default()
            }),
            samples: vec![HostSample {
                t_ms: 100,
                memory_bytes: Some(1 << 20),
                ..HostSample::default()
            }],
            facts: Some(facts),
            placement,
            exit_code: Some(0),
            survivors: Some(0),
            survivors_after_cleanup: Some(0),
            ..Collected::default()
        };
        let o = observe_alone(&c, WorkloadKind::ForkBomb);
        for k in ["pids_limit", "pids_limit_hits", "pids_peak"] {
            match &o[k] {
                Observed::Missing(why) => assert!(why.contains("ENOENT"), "{k}: {why}"),
                other => panic!("{k}: {other:?}"),
            }
        }
        let judgements = crate::expect::evaluate_all(&s.expectations, &o);
        let placement = judgements.iter().find(|j| j.check == "placement").unwrap();
        assert_eq!(placement.verdict, reports::Verdict::NotEnforced);
        assert!(
            placement
                .observed
                .contains("root cgroup of /sys/fs/cgroup/pids"),
            "{}",
            placement.observed
        );
        let checks: Vec<reports::CheckResult> =
            judgements.iter().map(crate::report::check_result).collect();
        assert_eq!(
            reports::scenario_status(&checks, None),
            reports::Status::Fail
        );
        // Even without the placement check, the blind pids checks are errors.
        let rest: Vec<reports::CheckResult> =
            checks.into_iter().filter(|c| c.id != "placement").collect();
        assert_eq!(
            reports::scenario_status(&rest, None),
            reports::Status::Error
        );
    }

    #[test]
    fn a_pids_current_of_zero_while_running_is_an_error() {
        let c = Collected {
            zero_pids_at_ms: Some(300),
            samples: vec![HostSample {
                t_ms: 300,
                pids: Some(0),
                ..HostSample::default()
            }],
            ..Collected::default()
        };
        let o = observe_alone(&c, WorkloadKind::ForkBomb);
        assert!(matches!(&o["pids_peak"], Observed::Missing(w) if w.contains("read 0")));
        assert!(matches!(&o["host_can_fork"], Observed::Missing(_)));
        assert!(matches!(&o["placement"], Observed::Missing(_)));
    }

    #[test]
    fn namespaces_and_inside_view_are_compared() {
        let harness: BTreeMap<String, u64> = [
            ("pid".to_string(), 1),
            ("net".to_string(), 2),
            ("uts".to_string(), 3),
        ]
        .into();
        let container: BTreeMap<String, u64> = [
            ("pid".to_string(), 11),
            ("net".to_string(), 2),
            ("uts".to_string(), 13),
        ]
        .into();
        let mut view = InsideView {
            pid: 1,
            pids: vec![1],
            interfaces: vec!["lo".into()],
            namespaces: container.clone(),
            ..InsideView::default()
        };
        view.mounts = probes::inside::parse_mountinfo(
            "1 0 0:1 / / rw - tmpfs t rw\n2 1 0:2 / /proc rw - proc p rw\n3 1 0:3 / /sys/fs/cgroup/cpu rw - cgroup c rw\n",
        );
        let mut fields = serde_json::Map::new();
        fields.insert("view".into(), serde_json::to_value(&view).unwrap());
        let c = Collected {
            host_pid: 4242,
            fields,
            ack: Some(AckView {
                container_ns: container,
                host_mount_points: vec![
                    "/".into(),
                    "/proc".into(),
                    "/sys/fs/cgroup/cpu".into(),
                    "/work".into(),
                ],
                ..AckView::default()
            }),
            ..Collected::default()
        };
        let o = observe_with(
            &c,
            &HostSnapshot::default(),
            &HostSnapshot::default(),
            &harness,
            WorkloadKind::ProbeInside,
        );
        assert_eq!(o["ns_differs.pid"], true.into());
        assert_eq!(o["ns_differs.net"], false.into());
        assert!(matches!(o["ns_differs.time"], Observed::Unsupported(_)));
        assert_eq!(o["ns_matches_inside"], true.into());
        assert_eq!(o["host_pid_differs"], true.into());
        assert_eq!(num(&o, "host_mounts_visible_inside"), 1.0);
        // Docker's and Podman's own view: a tmpfs, each hierarchy rooted at
        // the container's cgroup.
        let mut c = c;
        view.mounts = probes::inside::parse_mountinfo(
            "1 0 0:1 / / rw - tmpfs t rw\n2 1 0:45 / /sys/fs/cgroup rw - tmpfs tmpfs rw\n\
             3 2 0:3 /docker/ab /sys/fs/cgroup/cpu ro - cgroup cgroup rw,cpu\n",
        );
        c.fields
            .insert("view".into(), serde_json::to_value(&view).unwrap());
        c.ack
            .as_mut()
            .unwrap()
            .host_mount_points
            .push("/sys/fs/cgroup".into());
        let o = observe_with(
            &c,
            &HostSnapshot::default(),
            &HostSnapshot::default(),
            &harness,
            WorkloadKind::ProbeInside,
        );
        assert_eq!(num(&o, "host_mounts_visible_inside"), 0.0);
        assert_eq!(num(&o, "interfaces_besides_lo"), 0.0);
        assert_eq!(num(&o, "inside.pid"), 1.0);
    }

    #[test]
    fn lists_the_probe_could_not_read_are_errors_not_empty() {
        let mut view = InsideView {
            pid: 1,
            problems: vec!["/proc/self/net/dev: Permission denied".into()],
            ..InsideView::default()
        };
        for l in ["interfaces", "mounts", "pids"] {
            view.unread.insert(l.into());
        }
        let mut fields = serde_json::Map::new();
        fields.insert("view".into(), serde_json::to_value(&view).unwrap());
        let c = Collected {
            host_pid: 4242,
            fields,
            ack: Some(AckView {
                host_mount_points: vec!["/work".into()],
                ..AckView::default()
            }),
            ..Collected::default()
        };
        let o = observe_alone(&c, WorkloadKind::ProbeInside);
        for k in [
            "interfaces_besides_lo",
            "inside.interface_count",
            "inside.mount_count",
            "inside.pid_count",
            "host_mounts_visible_inside",
            "host_hostname_unchanged",
        ] {
            assert!(matches!(o[k], Observed::Missing(_)), "{k}: {:?}", o[k]);
        }
        // The host's mount table unreadable at ack time: an error too.
        let mut c = c;
        view.unread.clear();
        view.mounts = probes::inside::parse_mountinfo("1 0 0:1 / / rw - tmpfs t rw\n");
        c.fields
            .insert("view".into(), serde_json::to_value(&view).unwrap());
        c.ack.as_mut().unwrap().mounts_error = Some("/proc/self/mountinfo: EACCES".into());
        let o = observe_alone(&c, WorkloadKind::ProbeInside);
        assert!(
            matches!(&o["host_mounts_visible_inside"], Observed::Missing(w) if w.contains("EACCES"))
        );
    }

    #[test]
    fn own_mounts_are_the_minimal_roots() {
        for p in [
            "/",
            "/proc",
            "/dev/pts",
            "/etc/hosts",
            "/.boxwatch/boxwatch",
            "/tmp",
        ] {
            assert!(is_own_mount(p), "{p}");
        }
        for p in [
            "/work",
            "/sys2",
            "/etcetera",
            "/boot",
            "/run",
            "/sys/fs/cgroup/cpu",
            "/proc/sys/fs/binfmt_misc",
        ] {
            assert!(!is_own_mount(p), "{p}");
        }
    }

    proptest! {
        #[test]
        fn the_window_share_is_usage_over_time(t0 in 0f64..100.0, dt in 0.01f64..100.0, share in 0f64..64.0, busy in 0f64..64.0) {
            let a = mark(t0, 1.0, 10_000);
            let b = Mark {
                at_secs: t0 + dt,
                cpu_usage_ns: Some(((1.0 + share * dt) * 1e9) as u64),
                host_busy_ticks: Some(10_000 + ((share + busy) * dt * 100.0) as u64),
                sched: None,
            };
            let (s, other) = window_share(&a, &b, 100.0).unwrap();
            prop_assert!((s - share).abs() < 1e-6 + 1e-9 / dt);
            prop_assert!(other.unwrap() >= 0.0);
            prop_assert!((other.unwrap() - busy).abs() < 0.01 / dt + 1e-6);
        }

        #[test]
        fn a_clock_step_is_seen_whatever_the_elapsed_time(elapsed in 0f64..1000.0, step in -10f64..10.0) {
            let pre = HostSnapshot { realtime: 1.7e9, monotonic: 5000.0, ..HostSnapshot::default() };
            let post = HostSnapshot { realtime: 1.7e9 + elapsed + step, monotonic: 5000.0 + elapsed, ..HostSnapshot::default() };
            let o = observe_with(&Collected::default(), &pre, &post, &BTreeMap::new(), WorkloadKind::Settimeofday);
            prop_assert!((num(&o, "host_clock_step_secs") - step.abs()).abs() < 1e-5);
            prop_assert!((num(&o, "host_clock_step_after_secs") - step.abs()).abs() < 1e-5);
        }

        #[test]
        fn a_clock_stepped_and_put_back_during_the_run_is_still_seen(
            elapsed in 1f64..1000.0,
            step in prop_oneof![-7200f64..-1.0, 1.0f64..7200.0],
            at in 0usize..20,
        ) {
            let offset = 1.7e9 - 5000.0;
            let pre = HostSnapshot { realtime: 1.7e9, monotonic: 5000.0, ..HostSnapshot::default() };
            let post = HostSnapshot { realtime: 1.7e9 + elapsed, monotonic: 5000.0 + elapsed, ..HostSnapshot::default() };
            let mut offsets = vec![offset; 20];
            offsets[at] += step;
            let c = Collected { host_clock_offsets: offsets, ..Collected::default() };
            let o = observe_with(&c, &pre, &post, &BTreeMap::new(), WorkloadKind::Settimeofday);
            prop_assert!((num(&o, "host_clock_step_secs") - step.abs()).abs() < 1e-3);
            prop_assert!(num(&o, "host_clock_step_after_secs") < 1e-3);
        }
    }
}
