//! What the runner reads of the host itself: its clocks, hostname and OOM
//! kills around a scenario, its busy CPU ticks, whether it can fork.

use crate::expect::{self, Observations, Observed};
use crate::metrics::{Metric, NEIGHBOUR_PREFIX};
use crate::observe::HostSnapshot;

/// (CLOCK_REALTIME, CLOCK_MONOTONIC) in seconds, read back to back (the
/// monotonic reading is the midpoint of two around the realtime one).
pub fn clocks() -> (f64, f64) {
    use nix::time::{clock_gettime, ClockId};
    let secs = |id| {
        clock_gettime(id)
            .map(|t| t.tv_sec() as f64 + t.tv_nsec() as f64 / 1e9)
            .unwrap_or(f64::NAN)
    };
    let m1 = secs(ClockId::CLOCK_MONOTONIC);
    let r = secs(ClockId::CLOCK_REALTIME);
    let m2 = secs(ClockId::CLOCK_MONOTONIC);
    (r, (m1 + m2) / 2.0)
}

/// Host facts around a scenario.
pub fn host_snapshot() -> HostSnapshot {
    let (realtime, monotonic) = clocks();
    HostSnapshot {
        hostname: nix::unistd::gethostname()
            .ok()
            .map(|h| h.to_string_lossy().into_owned()),
        realtime,
        monotonic,
        oom_kills: std::fs::read_to_string("/proc/vmstat")
            .ok()
            .and_then(|t| vmstat_oom_kills(&t)),
    }
}

/// Whether the host can start a process now (`true`, outside any
/// container).
pub fn host_can_fork() -> bool {
    std::process::Command::new("true")
        .stdin(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The limit the cgroup is at in `stats`, if any: pids.current at pids.max,
/// or memory usage within 20% of its limit.
pub fn at_limit(stats: &probes::host::CgroupStats) -> Option<String> {
    use probes::host::Limit;
    if let (Some(cur), Some(Limit::Value(max))) = (stats.pids_current, stats.pids_max) {
        if cur >= max {
            return Some(format!("pids.current {cur} at pids.max {max}"));
        }
    }
    if let (Some(used), Some(Limit::Value(max))) = (stats.memory_usage_bytes, stats.memory_limit) {
        if used as f64 >= 0.8 * max as f64 {
            return Some(format!("memory usage {used} within 20% of its limit {max}"));
        }
    }
    None
}

/// Busy CPU ticks of all CPUs from /proc/stat's `cpu` line: user, nice,
/// system, irq, softirq and steal (idle and iowait excluded).
pub fn busy_ticks(stat: &str) -> Option<u64> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let f: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|x| x.parse().ok())
        .collect::<Option<Vec<u64>>>()?;
    if f.len() < 4 {
        return None;
    }
    let at = |i: usize| f.get(i).copied().unwrap_or(0);
    Some(at(0) + at(1) + at(2) + at(5) + at(6) + at(7))
}

/// The `oom_kill` counter of /proc/vmstat.
pub fn vmstat_oom_kills(vmstat: &str) -> Option<u64> {
    vmstat
        .lines()
        .find_map(|l| l.strip_prefix("oom_kill ")?.trim().parse().ok())
}

/// CPUs left free by everything but the scenario's containers, from the
/// main container's window: the host's busy CPUs besides the main
/// container, minus what the neighbour (if any) used.
pub fn spare_cpus(obs: &Observations, cpus: f64) -> Option<f64> {
    let num = |k: &str| match obs.get(k) {
        Some(Observed::Value(expect::Value::Number(n))) => Some(*n),
        _ => None,
    };
    let neighbour_share = format!("{NEIGHBOUR_PREFIX}{}", Metric::CpuShare);
    let others = num(Metric::HostBusyCpus.as_str())? - num(&neighbour_share).unwrap_or(0.0);
    Some((cpus - others.max(0.0)).max(0.0))
}
