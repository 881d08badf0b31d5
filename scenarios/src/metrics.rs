//! The metrics an expectation can name, defined once: the observer
//! ([`crate::observe`]) writes them by these names, the catalog loader
//! refuses names that are not here (so a typo in a scenario file is caught
//! at load time with its line, not at the end of a run), and reports take
//! their descriptions from here. A test runs the observer and checks that
//! what it produces and what the catalog allows are the same names.

use crate::workload::WorkloadKind;

/// An enum of metric names with their text and description, each written
/// once: `Variant = "name": "description",`.
macro_rules! metric_names {
    ($(#[$meta:meta])* pub enum $enum:ident { $($variant:ident = $name:literal: $desc:literal,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $enum {
            $(#[doc = concat!("`", $name, "`")] $variant,)*
        }

        impl $enum {
            /// Every metric, in the order reports list them.
            pub const ALL: &'static [$enum] = &[$($enum::$variant,)*];

            /// The name, as scenario files and reports spell it.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($enum::$variant => $name,)*
                }
            }

            /// What it measures, for reports.
            pub const fn description(self) -> &'static str {
                match self {
                    $($enum::$variant => $desc,)*
                }
            }

            /// The metric called `name`.
            pub fn from_name(name: &str) -> Option<$enum> {
                $enum::ALL.iter().copied().find(|m| m.as_str() == name)
            }
        }

        impl std::fmt::Display for $enum {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

metric_names! {
    /// Metrics the harness measures from the host side or derives by
    /// comparing the two views.
    pub enum Metric {
        CpuShare = "cpu_share": "CPU time charged to the container's cgroup while the workload ran, divided by the wall time, in CPUs (0.2 = 20% of one CPU)",
        ThreadsCpuShare = "threads_cpu_share": "the run time of the container's threads (their schedstat) over the measured window, in CPUs",
        CpuWaitCpus = "cpu_wait_cpus": "the run-queue wait of the container's threads over the measured window, in CPUs",
        CpuContentionCpus = "cpu_contention_cpus": "the container's run-queue wait beyond its throttled time over the measured window, in CPUs: CPU it wanted and the host's other processes held (see contention)",
        NrPeriods = "nr_periods": "CFS bandwidth periods that elapsed with the cgroup runnable",
        NrThrottled = "nr_throttled": "CFS bandwidth periods in which the cgroup was throttled",
        ThrottledRatio = "throttled_ratio": "nr_throttled / nr_periods",
        ThrottledSecs = "throttled_secs": "total time the cgroup spent throttled, in seconds",
        HostBusyCpus = "host_busy_cpus": "CPUs used on the host by everything but the container during the measurement",
        CpuQuota = "cpu_quota": "the CFS quota read back from cgroupfs, in CPUs (inf when unlimited)",
        HostSpareCpus = "host_spare_cpus": "CPUs the host's other processes (not the scenario's containers) left free during the measurement",
        MemoryLimitBytes = "memory_limit_bytes": "the memory limit read back from cgroupfs",
        MemoryPeakBytes = "memory_peak_bytes": "the cgroup's peak memory usage (memory.peak / memory.max_usage_in_bytes, else the sampled maximum)",
        MemoryLimitHits = "memory_limit_hits": "times the cgroup's memory usage hit its limit, as the kernel counts them (v2 memory.events max; v1 memory.failcnt, unless it stayed 0 next to an OOM kill or a peak at the limit, as kernel 6.18 leaves it: then it is unsupported, not 0)",
        OomKills = "oom_kills": "OOM kills charged to the container's cgroup",
        OomKilled = "oom_killed": "whether the OOM killer killed a process of the container",
        HostOomKillsOutside = "host_oom_kills_outside": "OOM kills on the host outside the container's cgroup during the scenario",
        PidsLimit = "pids_limit": "the pids limit read back from cgroupfs",
        PidsLimitHits = "pids_limit_hits": "forks the kernel refused at the pids limit, counted by the kernel (pids.events max)",
        PidsPeak = "pids_peak": "the largest number of tasks seen in the cgroup (pids.peak, else the sampled maximum)",
        ExitCode = "exit_code": "the entry command's exit code (128 + signal when killed)",
        Survivors = "survivors": "processes of the container still alive after its entry command ended",
        SurvivorsAfterCleanup = "survivors_after_cleanup": "of those, processes still alive after the runtime cleaned the container up",
        HostCanFork = "host_can_fork": "the harness could start a host process while the container was at a limit (pids.current at pids.max, or memory within 20% of its limit) in a sample, or when the workload said it was there",
        Placement = "placement": "where the container's running processes were, from their /proc/<pid>/cgroup in every hierarchy the judge reads, sampled while it ran: every process in its cgroup, or the misplacements with their paths",
        HostClockStepSecs = "host_clock_step_secs": "the largest step of the host's CLOCK_REALTIME against CLOCK_MONOTONIC seen during or after the scenario",
        HostClockStepAfterSecs = "host_clock_step_after_secs": "how far the host's CLOCK_REALTIME stood from where it was, against CLOCK_MONOTONIC, after the scenario",
        HostHostnameUnchanged = "host_hostname_unchanged": "the host's hostname is the same after the scenario",
        HostSeesInsideMount = "host_sees_inside_mount": "a mount made inside the container showed up in the host's mount table",
        HostMountsVisibleInside = "host_mounts_visible_inside": "host mount points (other than the container's own root, /proc, /dev, /tmp, the read-only system binds and its own cgroupfs view) visible inside",
        InterfacesBesidesLo = "interfaces_besides_lo": "network interfaces other than lo visible inside",
        HostPidDiffers = "host_pid_differs": "the container's PID 1 has another PID on the host",
        MonotonicOffsetSecs = "monotonic_offset_secs": "CLOCK_MONOTONIC inside minus on the host, in seconds",
        RealtimeOffsetSecs = "realtime_offset_secs": "CLOCK_REALTIME inside minus on the host, in seconds",
        NsDiffersPid = "ns_differs.pid": "the container's pid namespace inode differs from the harness's",
        NsDiffersMnt = "ns_differs.mnt": "the container's mount namespace inode differs from the harness's",
        NsDiffersUts = "ns_differs.uts": "the container's uts namespace inode differs from the harness's",
        NsDiffersIpc = "ns_differs.ipc": "the container's ipc namespace inode differs from the harness's",
        NsDiffersNet = "ns_differs.net": "the container's net namespace inode differs from the harness's",
        NsDiffersCgroup = "ns_differs.cgroup": "the container's cgroup namespace inode differs from the harness's",
        NsDiffersUser = "ns_differs.user": "the container's user namespace inode differs from the harness's",
        NsDiffersTime = "ns_differs.time": "the container's time namespace inode differs from the harness's",
        NsMatchesInside = "ns_matches_inside": "the namespace inodes the workload saw inside are the ones the host sees for its PID",
    }
}

metric_names! {
    /// Fields of the inside view, from the probe-inside workload: the
    /// metric is `inside.<name>` (see [`InsideMetric::key`]).
    pub enum InsideMetric {
        Pid = "pid": "the workload's own PID inside",
        PidCount = "pid_count": "PIDs visible in /proc inside",
        Hostname = "hostname": "the hostname inside",
        MemTotalBytes = "mem_total_bytes": "MemTotal of /proc/meminfo inside",
        MemAvailableBytes = "mem_available_bytes": "MemAvailable of /proc/meminfo inside",
        NprocOnline = "nproc_online": "sysconf(_SC_NPROCESSORS_ONLN) inside",
        AffinityCpus = "affinity_cpus": "CPUs in the sched_getaffinity mask inside",
        AvailableParallelism = "available_parallelism": "Rust's available_parallelism inside (honours a CPU quota)",
        CpuinfoProcessors = "cpuinfo_processors": "processor entries in /proc/cpuinfo inside",
        ProcStatCpus = "proc_stat_cpus": "per-CPU lines in /proc/stat inside",
        UptimeSecs = "uptime_secs": "/proc/uptime inside",
        InterfaceCount = "interface_count": "network interfaces inside",
        MountCount = "mount_count": "mounts in /proc/self/mountinfo inside",
        CapSysTime = "cap_sys_time": "CAP_SYS_TIME is effective inside",
        CapSysAdmin = "cap_sys_admin": "CAP_SYS_ADMIN is effective inside",
        NoNewPrivs = "no_new_privs": "no_new_privs is set inside",
        SeccompMode = "seccomp_mode": "seccomp mode inside (0 off, 1 strict, 2 filter)",
    }
}

/// The prefix of the inside view's metrics.
pub const INSIDE_PREFIX: &str = "inside.";
/// The prefix of the fields of a workload's result line.
pub const WORKLOAD_PREFIX: &str = "workload.";
/// The prefix of the neighbour container's metrics.
pub const NEIGHBOUR_PREFIX: &str = "neighbour.";

impl InsideMetric {
    /// The metric's full name, `inside.<name>`.
    pub fn key(self) -> String {
        format!("{INSIDE_PREFIX}{}", self.as_str())
    }
}

/// `ns_differs.<ns>` for the namespace `ns` (a link name under
/// `/proc/<pid>/ns`), or None for one boxwatch does not compare.
pub fn ns_differs(ns: &str) -> Option<Metric> {
    Metric::from_name(&format!("ns_differs.{ns}"))
}

/// Whether `name` is a metric for a container running `workload`
/// (`neighbour.` metrics are checked against the neighbour's workload by
/// the caller).
pub fn is_known(name: &str, workload: WorkloadKind) -> bool {
    if let Some(field) = name.strip_prefix(INSIDE_PREFIX) {
        return workload == WorkloadKind::ProbeInside && InsideMetric::from_name(field).is_some();
    }
    if let Some(key) = name.strip_prefix(WORKLOAD_PREFIX) {
        return workload.result_keys().contains(&key);
    }
    Metric::from_name(name).is_some()
}

/// What `name` measures, for reports.
pub fn describe(name: &str) -> Option<&'static str> {
    let name = name.strip_prefix(NEIGHBOUR_PREFIX).unwrap_or(name);
    if let Some(field) = name.strip_prefix(INSIDE_PREFIX) {
        return InsideMetric::from_name(field).map(InsideMetric::description);
    }
    Metric::from_name(name).map(Metric::description)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contention::SchedMark;
    use crate::expect::Observations;
    use crate::observe::{observe, scenario_metrics, Collected, Context, HostSnapshot, Mark};
    use probes::host::CgroupStats;
    use probes::inside::InsideView;
    use std::collections::{BTreeMap, BTreeSet};

    /// A mark of a CPU window with every figure the host can show.
    fn mark(at_secs: f64, cpu_s: f64) -> Mark {
        Mark {
            at_secs,
            cpu_usage_ns: Some((cpu_s * 1e9) as u64),
            host_busy_ticks: Some((at_secs * 100.0) as u64),
            sched: Some(SchedMark {
                run_ns: (cpu_s * 1e9) as u64,
                wait_ns: 0,
                throttled_ns: Some(0),
            }),
        }
    }

    /// The richest collection: a CPU window with the threads' schedstat,
    /// the cgroup read after the exit, and an inside view.
    fn everything_seen() -> Collected {
        let mut fields = serde_json::Map::new();
        let view = serde_json::to_value(InsideView::default()).unwrap();
        fields.insert("view".into(), view);
        Collected {
            start: Some(mark(1.0, 0.5)),
            end: Some(mark(3.0, 1.5)),
            final_stats: Some(CgroupStats::default()),
            fields,
            ..Collected::default()
        }
    }

    /// The names a scenario of one container running `workload` observes
    /// from `c`: the container's metrics, then the scenario's.
    fn observed_names(c: &Collected, workload: WorkloadKind) -> BTreeSet<String> {
        let (host, harness_ns) = (HostSnapshot::default(), BTreeMap::new());
        let cx = Context {
            pre: &host,
            post: &host,
            harness_ns: &harness_ns,
            workload,
            ticks_per_sec: 100.0,
        };
        let mut obs: Observations = observe(c, &cx);
        scenario_metrics(&mut obs, 2.0);
        obs.into_keys().collect()
    }

    #[test]
    fn the_observer_produces_exactly_the_metrics_the_catalog_allows() {
        let mut produced = BTreeSet::new();
        let mut allowed: BTreeSet<String> = Metric::ALL.iter().map(|m| m.to_string()).collect();
        for kind in WorkloadKind::ALL {
            for c in [Collected::default(), everything_seen()] {
                for name in observed_names(&c, kind) {
                    assert!(
                        is_known(&name, kind),
                        "the observer writes {name:?} for workload {}, which the catalog refuses",
                        kind.name()
                    );
                    assert!(describe(&name).is_some() || name.starts_with(WORKLOAD_PREFIX));
                    produced.insert(name);
                }
            }
            allowed.extend(
                kind.result_keys()
                    .iter()
                    .map(|k| format!("{WORKLOAD_PREFIX}{k}")),
            );
        }
        allowed.extend(InsideMetric::ALL.iter().map(|m| m.key()));
        let never: Vec<&String> = allowed.difference(&produced).collect();
        assert!(
            never.is_empty(),
            "the catalog allows metrics the observer never writes: {never:?}"
        );
    }

    #[test]
    fn names_are_unique_and_found_again() {
        for m in Metric::ALL {
            assert_eq!(Metric::from_name(m.as_str()), Some(*m));
            assert!(!m.description().is_empty());
        }
        for m in InsideMetric::ALL {
            assert_eq!(InsideMetric::from_name(m.as_str()), Some(*m));
            assert!(is_known(&m.key(), WorkloadKind::ProbeInside));
            assert!(!is_known(&m.key(), WorkloadKind::Spin));
        }
        assert_eq!(
            describe("neighbour.cpu_share"),
            Some(Metric::CpuShare.description())
        );
        assert_eq!(ns_differs("time"), Some(Metric::NsDiffersTime));
        assert_eq!(ns_differs("pidfd"), None);
    }
}
