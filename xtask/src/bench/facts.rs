//! What the exporter bench needs to know of the exporter, kept here so
//! that `cargo xtask` builds without the exporter (tokio, hyper,
//! prometheus). A test compiled with the exporter as a dev-dependency
//! checks each against the exporter's own definition.

use probes::host::Controllers;

/// The controllers the exporter reads (`exporter`'s `READ`); the bench
/// measures its read floor on the same set.
pub const READ: Controllers = Controllers::ALL;

/// The exporter's default `--max-open-files`.
pub const DEFAULT_MAX_OPEN_FILES: usize = 4096;

/// The names of the exporter's per-cgroup metrics, in its order: every
/// bench cgroup must have each (the coverage check of the first scrape).
pub const CGROUP_METRICS: &[&str] = &[
    "boxwatch_cgroup_cpu_usage_seconds_total",
    "boxwatch_cgroup_cpu_quota_cores",
    "boxwatch_cgroup_cpu_periods_total",
    "boxwatch_cgroup_cpu_throttled_periods_total",
    "boxwatch_cgroup_cpu_throttled_seconds_total",
    "boxwatch_cgroup_memory_usage_bytes",
    "boxwatch_cgroup_memory_limit_bytes",
    "boxwatch_cgroup_memory_peak_bytes",
    "boxwatch_cgroup_memory_limit_hits_total",
    "boxwatch_cgroup_memory_oom_kills_total",
    "boxwatch_cgroup_pids_current",
    "boxwatch_cgroup_pids_limit",
    "boxwatch_cgroup_memory_working_set_bytes",
    "boxwatch_cgroup_memory_swap_bytes",
    "boxwatch_cgroup_memory_high_bytes",
    "boxwatch_cgroup_memory_high_events_total",
    "boxwatch_cgroup_memory_low_events_total",
    "boxwatch_cgroup_memory_oom_events_total",
    "boxwatch_cgroup_cpu_burst_seconds",
    "boxwatch_cgroup_cpuset_cpus",
    "boxwatch_cgroup_cpu_pressure_some_seconds_total",
    "boxwatch_cgroup_cpu_pressure_full_seconds_total",
    "boxwatch_cgroup_memory_pressure_some_seconds_total",
    "boxwatch_cgroup_memory_pressure_full_seconds_total",
    "boxwatch_cgroup_io_pressure_some_seconds_total",
    "boxwatch_cgroup_io_pressure_full_seconds_total",
    "boxwatch_cgroup_io_read_bytes_total",
    "boxwatch_cgroup_io_written_bytes_total",
    "boxwatch_cgroup_io_reads_total",
    "boxwatch_cgroup_io_writes_total",
];

#[cfg(test)]
mod tests {
    #[test]
    fn the_exporter_agrees() {
        assert_eq!(super::READ, ::exporter::READ);
        assert_eq!(
            super::DEFAULT_MAX_OPEN_FILES,
            ::exporter::DEFAULT_MAX_OPEN_FILES
        );
        let names: Vec<&str> = ::exporter::CGROUP_METRICS.iter().map(|m| m.name).collect();
        assert_eq!(
            super::CGROUP_METRICS,
            names,
            "update xtask/src/bench/facts.rs to the exporter's list"
        );
    }
}
