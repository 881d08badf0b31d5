//! The metrics an expectation can name. The runner fills them in; the
//! catalog loader refuses names that are not here, so a typo in a scenario
//! file is caught at load time with its line, not at the end of a run.

use crate::workload::WorkloadKind;

/// Metrics the harness measures from the host side or derives by
/// comparing the two views.
pub const HOST_METRICS: &[(&str, &str)] = &[
    ("cpu_share", "CPU time charged to the container's cgroup while the workload ran, divided by the wall time, in CPUs (0.2 = 20% of one CPU)"),
    ("nr_periods", "CFS bandwidth periods that elapsed with the cgroup runnable"),
    ("nr_throttled", "CFS bandwidth periods in which the cgroup was throttled"),
    ("throttled_ratio", "nr_throttled / nr_periods"),
    ("throttled_secs", "total time the cgroup spent throttled, in seconds"),
    ("host_busy_cpus", "CPUs used on the host by everything but the container during the measurement"),
    ("cpu_quota", "the CFS quota read back from cgroupfs, in CPUs (inf when unlimited)"),
    ("host_spare_cpus", "CPUs the host's other processes (not the scenario's containers) left free during the measurement"),
    ("memory_limit_bytes", "the memory limit read back from cgroupfs"),
    ("memory_peak_bytes", "the cgroup's peak memory usage (memory.peak / memory.max_usage_in_bytes, else the sampled maximum)"),
    ("memory_limit_hits", "times the cgroup's memory usage hit its limit, as the kernel counts them (v2 memory.events max; v1 memory.failcnt, unless it stayed 0 next to an OOM kill or a peak at the limit, as kernel 6.18 leaves it: then it is unsupported, not 0)"),
    ("oom_kills", "OOM kills charged to the container's cgroup"),
    ("oom_killed", "whether the OOM killer killed a process of the container"),
    ("host_oom_kills_outside", "OOM kills on the host outside the container's cgroup during the scenario"),
    ("pids_limit", "the pids limit read back from cgroupfs"),
    ("pids_limit_hits", "forks the kernel refused at the pids limit, counted by the kernel (pids.events max)"),
    ("pids_peak", "the largest number of tasks seen in the cgroup (pids.peak, else the sampled maximum)"),
    ("exit_code", "the entry command's exit code (128 + signal when killed)"),
    ("survivors", "processes of the container still alive after its entry command ended"),
    ("survivors_after_cleanup", "of those, processes still alive after the runtime cleaned the container up"),
    ("host_can_fork", "the harness could start a host process while the container was at a limit (pids.current at pids.max, or memory within 20% of its limit) in a sample, or when the workload said it was there"),
    ("placement", "where the container's running processes were, from their /proc/<pid>/cgroup in every hierarchy the judge reads, sampled while it ran: every process in its cgroup, or the misplacements with their paths"),
    ("host_clock_step_secs", "the largest step of the host's CLOCK_REALTIME against CLOCK_MONOTONIC seen during or after the scenario"),
    ("host_clock_step_after_secs", "how far the host's CLOCK_REALTIME stood from where it was, against CLOCK_MONOTONIC, after the scenario"),
    ("host_hostname_unchanged", "the host's hostname is the same after the scenario"),
    ("host_sees_inside_mount", "a mount made inside the container showed up in the host's mount table"),
    ("host_mounts_visible_inside", "host mount points (other than the container's own root, /proc, /dev, /tmp, the read-only system binds and its own cgroupfs view) visible inside"),
    ("interfaces_besides_lo", "network interfaces other than lo visible inside"),
    ("host_pid_differs", "the container's PID 1 has another PID on the host"),
    ("monotonic_offset_secs", "CLOCK_MONOTONIC inside minus on the host, in seconds"),
    ("realtime_offset_secs", "CLOCK_REALTIME inside minus on the host, in seconds"),
    ("ns_differs.pid", "the container's pid namespace inode differs from the harness's"),
    ("ns_differs.mnt", "the container's mount namespace inode differs from the harness's"),
    ("ns_differs.uts", "the container's uts namespace inode differs from the harness's"),
    ("ns_differs.ipc", "the container's ipc namespace inode differs from the harness's"),
    ("ns_differs.net", "the container's net namespace inode differs from the harness's"),
    ("ns_differs.cgroup", "the container's cgroup namespace inode differs from the harness's"),
    ("ns_differs.user", "the container's user namespace inode differs from the harness's"),
    ("ns_differs.time", "the container's time namespace inode differs from the harness's"),
    ("ns_matches_inside", "the namespace inodes the workload saw inside are the ones the host sees for its PID"),
];

/// Fields of the inside view (`inside.<name>`), from the probe-inside workload.
pub const INSIDE_METRICS: &[(&str, &str)] = &[
    ("pid", "the workload's own PID inside"),
    ("pid_count", "PIDs visible in /proc inside"),
    ("hostname", "the hostname inside"),
    ("mem_total_bytes", "MemTotal of /proc/meminfo inside"),
    (
        "mem_available_bytes",
        "MemAvailable of /proc/meminfo inside",
    ),
    ("nproc_online", "sysconf(_SC_NPROCESSORS_ONLN) inside"),
    ("affinity_cpus", "CPUs in the sched_getaffinity mask inside"),
    (
        "available_parallelism",
        "Rust's available_parallelism inside (honours a CPU quota)",
    ),
    (
        "cpuinfo_processors",
        "processor entries in /proc/cpuinfo inside",
    ),
    ("proc_stat_cpus", "per-CPU lines in /proc/stat inside"),
    ("uptime_secs", "/proc/uptime inside"),
    ("interface_count", "network interfaces inside"),
    ("mount_count", "mounts in /proc/self/mountinfo inside"),
    ("cap_sys_time", "CAP_SYS_TIME is effective inside"),
    ("cap_sys_admin", "CAP_SYS_ADMIN is effective inside"),
    ("no_new_privs", "no_new_privs is set inside"),
    (
        "seccomp_mode",
        "seccomp mode inside (0 off, 1 strict, 2 filter)",
    ),
];

/// Whether `name` is a metric for a container running `workload`
/// (`neighbour.` metrics are checked against the neighbour's workload by
/// the caller).
pub fn is_known(name: &str, workload: WorkloadKind) -> bool {
    if let Some(field) = name.strip_prefix("inside.") {
        return workload == WorkloadKind::ProbeInside
            && INSIDE_METRICS.iter().any(|(n, _)| *n == field);
    }
    if let Some(key) = name.strip_prefix("workload.") {
        return workload.result_keys().contains(&key);
    }
    HOST_METRICS.iter().any(|(n, _)| *n == name)
}

/// What `name` measures, for reports.
pub fn describe(name: &str) -> Option<&'static str> {
    let name = name.strip_prefix("neighbour.").unwrap_or(name);
    if let Some(field) = name.strip_prefix("inside.") {
        return INSIDE_METRICS
            .iter()
            .find(|(n, _)| *n == field)
            .map(|(_, d)| *d);
    }
    HOST_METRICS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, d)| *d)
}
