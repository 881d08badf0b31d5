//! A realistic example report, built in code, for snapshot tests, docs and
//! the CLI's own tests. Deterministic: fixed time, fixed numbers.
//!
//! It holds a passing CPU quota scenario with samples, a memory hog OOM-killed
//! at its limit, a `/proc` leak found by an informational check, a failing
//! 150% quota scenario that regressed against [`baseline_report`], an
//! unsupported time namespace and a scenario that errored.

use crate::model::{
    CgroupMode, CheckResult, EarlierTry, HostInfo, Limits, Report, RuntimeInfo, RuntimeName,
    Sample, ScenarioResult, Status,
};
use crate::Verdict;
use chrono::{TimeZone, Utc};
use std::collections::BTreeMap;

const MIB: u64 = 1024 * 1024;

/// The example report, compared against [`baseline_report`]: one regression.
pub fn sample_report() -> Report {
    let scenarios = vec![
        cpu_quota_20(),
        cpu_quota_150(1.312, Verdict::NotEnforced),
        memory_hog(),
        proc_meminfo_view(),
        time_namespace(),
        net_namespace(),
    ];
    assemble(scenarios).with_baseline(&baseline_report())
}

/// The baseline for [`sample_report`]: the same run, where `cpu-quota-150`
/// still held.
pub fn baseline_report() -> Report {
    let scenarios = vec![
        cpu_quota_20(),
        cpu_quota_150(1.502, Verdict::Enforced),
        memory_hog(),
        proc_meminfo_view(),
        time_namespace(),
        net_namespace(),
    ];
    assemble(scenarios)
}

/// A report of `scenarios` on the example host.
fn assemble(scenarios: Vec<ScenarioResult>) -> Report {
    let at = Utc.with_ymd_and_hms(2025, 3, 14, 9, 26, 53).single();
    Report::assemble(
        at.unwrap_or_default(),
        "0.1.0",
        host(),
        RuntimeInfo {
            name: RuntimeName::Builtin,
            version: "0.1.0".into(),
        },
        scenarios,
    )
}

/// The example host: the 2-core hybrid cgroup machine of the design brief.
pub fn host() -> HostInfo {
    let features = [
        ("cgroup.kill", false),
        ("memory.events", false),
        ("psi", true),
        ("time_namespace", true),
    ];
    HostInfo {
        kernel_release: "6.18.0-boxwatch".into(),
        hostname: "ci-runner-7".into(),
        cpus: 2,
        memory_bytes: 8 * 1024 * MIB,
        cgroup_mode: CgroupMode::Hybrid,
        controllers: strings(&[
            "blkio", "cpu", "cpuacct", "cpuset", "devices", "freezer", "hugetlb", "memory", "pids",
        ]),
        controllers_v2: strings(&["hugetlb"]),
        namespaces_supported: strings(&[
            "cgroup", "ipc", "mnt", "net", "pid", "time", "user", "uts",
        ]),
        features: features.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
        in_vm: false,
    }
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// A check; `detail` empty means none.
fn check(
    id: &str,
    verdict: Verdict,
    expected: Verdict,
    required: bool,
    observed: &str,
) -> CheckResult {
    CheckResult {
        id: id.into(),
        verdict,
        expected,
        observed: observed.into(),
        required,
        detail: None,
        evidence: None,
    }
}

/// A scenario with the given pieces; status is judged by `Report::assemble`.
fn scenario(id: &str, title: &str, description: &str, checks: Vec<CheckResult>) -> ScenarioResult {
    ScenarioResult {
        id: id.into(),
        title: title.into(),
        description: description.into(),
        status: Status::Pass,
        duration_ms: 0,
        limits: Limits::default(),
        checks,
        measurements: BTreeMap::new(),
        samples: Vec::new(),
        error: None,
        seed_claim: None,
        headline: None,
        earlier_tries: Vec::new(),
    }
}

fn measurements(items: &[(&str, f64)]) -> BTreeMap<String, f64> {
    items.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

/// Samples every 500 ms of a spinner using about `share` of a CPU in each
/// interval, with a 100 ms CFS period, throttled in `throttled_per_period`
/// of the periods.
fn cpu_samples(share: f64, throttled_per_period: f64) -> Vec<Sample> {
    // A little jitter per interval so the plot is not a ruler.
    let jitter = [
        0.0, 0.004, -0.003, 0.002, -0.001, 0.003, -0.002, 0.001, 0.0, -0.004, 0.002,
    ];
    let mut used_ns = 0.0;
    jitter
        .iter()
        .enumerate()
        .map(|(i, j)| {
            let t_ms = i as u64 * 500;
            if i > 0 {
                used_ns += (share + j) * 500.0 * 1e6;
            }
            let periods = t_ms / 100;
            Sample {
                t_ms,
                cpu_usage_ns: Some(used_ns as u64),
                memory_bytes: Some(2 * MIB + i as u64 * 4096),
                nr_periods: Some(periods),
                nr_throttled: Some((periods as f64 * throttled_per_period) as u64),
                throttled_ns: Some((t_ms as f64 * (1.0 - share.min(1.0)) * 1e6) as u64),
                pids: Some(2),
                oom_kills: None,
            }
        })
        .collect()
}

fn cpu_quota_20() -> ScenarioResult {
    let mut s = scenario(
        "cpu-quota-20",
        "CPU quota 20%",
        "A spin loop under cpu.max 20000/100000 is held to 20% of one CPU, measured from cgroup accounting.",
        vec![
            check("cpu-share-within-tolerance", Verdict::Enforced, Verdict::Enforced, true,
                "cpu_share 0.201 (quota 0.20 ± 0.02)"),
            check("throttling-observed", Verdict::Enforced, Verdict::Enforced, true,
                "nr_throttled 49 of 50 periods"),
        ],
    );
    s.duration_ms = 5_112;
    s.limits.cpu_quota = Some(0.2);
    s.measurements = measurements(&[
        ("cpu_share", 0.2013),
        ("nr_periods", 50.0),
        ("nr_throttled", 49.0),
    ]);
    s.samples = cpu_samples(0.2, 0.98);
    s.seed_claim =
        Some("cgroup cpu.cfs_quota_us=20000 / period=100000 holds a spin loop to 20%".into());
    s.headline = Some("cpu_share".into());
    s
}

fn cpu_quota_150(share: f64, verdict: Verdict) -> ScenarioResult {
    let mut s = scenario(
        "cpu-quota-150",
        "CPU quota 150% (2 threads)",
        "Two spinning threads under cpu.max 150000/100000 are held to 1.5 CPUs.",
        vec![
            check(
                "cpu-share-within-tolerance",
                verdict,
                Verdict::Enforced,
                true,
                &format!("cpu_share {share:.3} (quota 1.50 ± 0.02)"),
            ),
            check(
                "throttling-observed",
                Verdict::Enforced,
                Verdict::Enforced,
                true,
                "nr_throttled 47 of 50 periods",
            ),
        ],
    );
    if verdict != Verdict::Enforced {
        s.checks[0].detail =
            Some("measured share is 0.188 below the quota: over-throttling".into());
        s.earlier_tries = vec![EarlierTry {
            duration_ms: 5_120,
            checks: vec![check(
                "cpu-share-within-tolerance",
                Verdict::Error,
                Verdict::Enforced,
                true,
                "cpu_share 1.4516 (inconclusive: the container waited 0.0612 CPUs for other processes beyond its throttling, enough to explain the shortfall)",
            )],
        }];
    }
    s.duration_ms = 5_097;
    s.limits.cpu_quota = Some(1.5);
    s.measurements = measurements(&[
        ("cpu_share", share),
        ("nr_periods", 50.0),
        ("nr_throttled", 47.0),
    ]);
    s.samples = cpu_samples(share, 0.94);
    s.headline = Some("cpu_share".into());
    s
}

fn memory_hog() -> ScenarioResult {
    let mut s = scenario(
        "memory-hog",
        "Memory hog is OOM-killed at its limit",
        "Allocating 200 MiB under a 64 MiB limit is OOM-killed inside its cgroup; the peak never passes the limit.",
        vec![
            check("oom-killed-in-cgroup", Verdict::Enforced, Verdict::Enforced, true,
                "memory.oom_control oom_kill 1"),
            check("peak-within-limit", Verdict::Enforced, Verdict::Enforced, true,
                "peak 67108864 B of limit 67108864 B"),
            check("host-unaffected", Verdict::Isolated, Verdict::Isolated, true,
                "harness alive, no host OOM kill"),
        ],
    );
    s.duration_ms = 164;
    s.limits.memory_bytes = Some(64 * MIB);
    s.measurements = measurements(&[("memory_peak_bytes", (64 * MIB) as f64), ("oom_kills", 1.0)]);
    s.samples = (0..=6u64)
        .map(|i| Sample {
            t_ms: i * 10,
            memory_bytes: Some(if i < 6 { (i * 12 + 2) * MIB } else { 0 }),
            pids: Some(if i < 6 { 2 } else { 1 }),
            oom_kills: Some(if i < 6 { 0 } else { 1 }),
            ..Sample::default()
        })
        .collect();
    s.seed_claim = Some("cgroups limit memory".into());
    s.headline = Some("oom_kills".into());
    s
}

fn proc_meminfo_view() -> ScenarioResult {
    let mut leak = check(
        "meminfo-memtotal-virtualized",
        Verdict::Leaked,
        Verdict::Isolated,
        false,
        "MemTotal inside 8589934592 B = host, limit 67108864 B",
    );
    leak.detail = Some(
        "/proc does not know about cgroups; mount lxcfs over /proc/meminfo to virtualize it".into(),
    );
    let mut s = scenario(
        "proc-meminfo-view",
        "/proc/meminfo inside a memory-limited container",
        "Compares MemTotal seen inside with the memory limit (the seeds' top/JVM story).",
        vec![
            check(
                "container-runs",
                Verdict::Isolated,
                Verdict::Isolated,
                true,
                "probe-inside completed in its own pid namespace",
            ),
            leak,
        ],
    );
    s.duration_ms = 41;
    s.limits.memory_bytes = Some(64 * MIB);
    s.measurements = measurements(&[("memtotal_inside_bytes", 8_589_934_592.0)]);
    s.seed_claim =
        Some("/proc does not know about cgroups: top, free, nproc inside show the host".into());
    s
}

fn time_namespace() -> ScenarioResult {
    let mut unsupported = check(
        "monotonic-offset-applies",
        Verdict::Unsupported,
        Verdict::Isolated,
        true,
        "/proc/self/ns/time absent",
    );
    unsupported.detail = Some("kernel built without CONFIG_TIME_NS".into());
    unsupported.evidence = Some(crate::Evidence::KernelNamespace {
        namespace: "time".into(),
    });
    let mut s = scenario(
        "time-namespace",
        "Time namespace offsets CLOCK_MONOTONIC only",
        "A monotonic offset set in a new time namespace applies inside; CLOCK_REALTIME is not namespaced.",
        vec![unsupported],
    );
    s.duration_ms = 3;
    s
}

fn net_namespace() -> ScenarioResult {
    let mut s = scenario(
        "net-namespace",
        "Network namespace",
        "Only a loopback interface is visible inside; host interfaces are not.",
        vec![],
    );
    s.duration_ms = 12;
    s.error = Some("spawn failed: clone(CLONE_NEWNET): Operation not permitted (EPERM)".into());
    s
}
