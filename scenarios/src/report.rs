//! From scenario runs to the report model: the host's facts (kernel, cgroup
//! layout, namespaces, features) and one `ScenarioResult` per run.

use crate::expect::Judgement;
use crate::observe::HostSample;
use crate::runner::ScenarioRun;
use probes::host::{CgroupLayout, CgroupVersion};
use reports::{
    CheckResult, HostInfo, Limits, Report, RuntimeInfo, RuntimeName, Sample, ScenarioResult, Status,
};
use runtime::backend::{Backend, BackendKind};
use std::collections::BTreeMap;
use std::path::Path;

/// The report's check for a judgement.
pub fn check_result(j: &Judgement) -> CheckResult {
    CheckResult {
        id: j.check.clone(),
        verdict: j.verdict,
        expected: j.expected_verdict,
        observed: format!("{} = {} (expected {})", j.metric, j.observed, j.expected),
        required: j.required,
        detail: Some(match &j.attack {
            Some(attack) if j.broken() => {
                format!("{}; where it leaks, an attacker could: {attack}", j.title)
            }
            _ => j.title.clone(),
        }),
        evidence: j.evidence.clone(),
    }
}

fn sample(s: &HostSample) -> Sample {
    Sample {
        t_ms: s.t_ms,
        cpu_usage_ns: s.cpu_usage_ns,
        memory_bytes: s.memory_bytes,
        nr_periods: s.nr_periods,
        nr_throttled: s.nr_throttled,
        throttled_ns: s.throttled_ns,
        pids: s.pids,
        oom_kills: s.oom_kills,
    }
}

impl ScenarioRun {
    /// The report model's view of this run, judged with
    /// [`reports::scenario_status`].
    pub fn to_result(&self) -> ScenarioResult {
        let mut description = self.description.trim().to_string();
        if !self.stderr_tail.trim().is_empty() && self.status_of_checks() != Status::Pass {
            description.push_str(&format!(
                "\n\nWorkload stderr (last lines):\n{}",
                self.stderr_tail.trim()
            ));
        }
        let mut r = ScenarioResult {
            id: self.id.clone(),
            title: self.title.clone(),
            description,
            status: Status::Error,
            duration_ms: self.duration.as_millis() as u64,
            limits: Limits {
                cpu_quota: self.limits.cpu.map(|q| q.cores()),
                memory_bytes: self.limits.memory.map(|m| m.bytes()),
                pids_max: self.limits.pids,
            },
            checks: self.judgements.iter().map(check_result).collect(),
            measurements: self.measurements.clone(),
            samples: self.samples.iter().map(sample).collect(),
            error: self.error.clone(),
            seed_claim: (!self.seed_claim.is_empty()).then(|| self.seed_claim.clone()),
            headline: self.headline.clone(),
            earlier_tries: self
                .earlier_tries
                .iter()
                .map(|t| reports::EarlierTry {
                    duration_ms: t.duration.as_millis() as u64,
                    checks: t
                        .judgements
                        .iter()
                        .filter(|j| j.required && !j.held())
                        .map(check_result)
                        .collect(),
                })
                .collect(),
        };
        r.judge();
        r
    }

    fn status_of_checks(&self) -> Status {
        let checks: Vec<CheckResult> = self.judgements.iter().map(check_result).collect();
        reports::scenario_status(&checks, self.error.as_deref())
    }

    /// The scenario's status.
    pub fn status(&self) -> Status {
        self.status_of_checks()
    }
}

/// Facts about this host for the report.
pub fn host_info(layout: &CgroupLayout) -> HostInfo {
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mut controllers: Vec<String> = layout
        .hierarchies()
        .flat_map(|h| h.controllers.iter().cloned())
        .filter(|c| !c.starts_with("name="))
        .collect();
    controllers.sort();
    controllers.dedup();
    let mut controllers_v2: Vec<String> = layout
        .v2()
        .map(|h| h.controllers.clone())
        .unwrap_or_default();
    controllers_v2.sort();
    let mut namespaces: Vec<String> = std::fs::read_dir("/proc/self/ns")
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| !n.ends_with("_for_children"))
                .collect()
        })
        .unwrap_or_default();
    namespaces.sort();
    HostInfo {
        kernel_release: nix::sys::utsname::uname()
            .map(|u| u.release().to_string_lossy().into_owned())
            .unwrap_or_default(),
        hostname: nix::unistd::gethostname()
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or_default(),
        cpus: nix::unistd::sysconf(nix::unistd::SysconfVar::_NPROCESSORS_ONLN)
            .ok()
            .flatten()
            .unwrap_or(0) as u32,
        memory_bytes: probes::inside::meminfo_bytes(&meminfo, "MemTotal").unwrap_or(0),
        cgroup_mode: match layout.mode() {
            probes::host::CgroupMode::V1 => reports::CgroupMode::V1,
            probes::host::CgroupMode::V2 => reports::CgroupMode::V2,
            probes::host::CgroupMode::Hybrid => reports::CgroupMode::Hybrid,
        },
        controllers,
        controllers_v2,
        namespaces_supported: namespaces,
        features: features(layout),
        in_vm: std::fs::read_to_string("/proc/cpuinfo")
            .map(|t| cpu_flags_have(&t, "hypervisor"))
            .unwrap_or(false),
    }
}

/// Whether the first `flags` line of /proc/cpuinfo lists `flag`.
pub fn cpu_flags_have(cpuinfo: &str, flag: &str) -> bool {
    cpuinfo
        .lines()
        .find(|l| l.starts_with("flags"))
        .and_then(|l| l.split_once(':'))
        .is_some_and(|(_, f)| f.split_whitespace().any(|x| x == flag))
}

/// A file that only non-root cgroups have, looked for in the first child
/// cgroup of the hierarchy root (or the harness's own cgroup).
fn child_has(mount: &Path, file: &str) -> bool {
    std::fs::read_dir(mount)
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.path().is_dir())
                .take(50)
                .any(|e| e.path().join(file).exists())
        })
        .unwrap_or(false)
}

fn has_child_dir(mount: &Path) -> bool {
    std::fs::read_dir(mount).is_ok_and(|mut rd| rd.any(|e| e.is_ok_and(|e| e.path().is_dir())))
}

/// Whether a kernel release (`6.1.0-57-amd64`) is at least `major.minor`.
pub fn kernel_at_least(release: &str, (major, minor): (u32, u32)) -> bool {
    let mut parts = release
        .split(|c: char| !c.is_ascii_digit())
        .map(|p| p.parse::<u32>().ok());
    match (parts.next().flatten(), parts.next().flatten()) {
        (Some(a), Some(b)) => (a, b) >= (major, minor),
        _ => false,
    }
}

/// Kernel features the checks depend on, probed by name.
pub fn features(layout: &CgroupLayout) -> BTreeMap<String, bool> {
    let mut f = BTreeMap::new();
    let v2 = layout.v2();
    // cgroup.kill exists in every non-root cgroup2 directory. Where the
    // cgroup2 mount has no child to look into (a hybrid host's unified
    // mount often has none), the kernel release tells: it came in 5.14.
    let release = nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default();
    f.insert(
        "cgroup.kill".to_string(),
        v2.is_some_and(|h| {
            child_has(&h.mount_point, "cgroup.kill")
                || (!has_child_dir(&h.mount_point) && kernel_at_least(&release, (5, 14)))
        }),
    );
    let mem = layout.hierarchy_for("memory");
    let mem_v2 = mem.filter(|h| h.version == CgroupVersion::V2);
    let mem_v1 = mem.filter(|h| h.version == CgroupVersion::V1);
    f.insert(
        "memory.events".to_string(),
        mem_v2.is_some_and(|h| child_has(&h.mount_point, "memory.events")),
    );
    f.insert(
        "memory.peak".to_string(),
        mem_v2.is_some_and(|h| child_has(&h.mount_point, "memory.peak"))
            || mem_v1.is_some_and(|h| h.mount_point.join("memory.max_usage_in_bytes").exists()),
    );
    f.insert(
        "memory.oom_control".to_string(),
        mem_v1.is_some_and(|h| h.mount_point.join("memory.oom_control").exists()),
    );
    f.insert(
        "psi".to_string(),
        std::fs::read_to_string("/proc/pressure/cpu").is_ok(),
    );
    f.insert(
        "time_namespace".to_string(),
        Path::new("/proc/self/ns/time").exists(),
    );
    f.insert(
        "user_namespace".to_string(),
        Path::new("/proc/self/ns/user").exists(),
    );
    f.insert(
        "lxcfs".to_string(),
        Path::new("/var/lib/lxcfs/proc/meminfo").exists(),
    );
    f
}

/// The report's word on the runtime that started the containers: its
/// name, and its version with the backend's notes appended in brackets
/// (for example that crun ran with the cgroup2 mount hidden).
pub fn runtime_info(backend: &dyn Backend) -> RuntimeInfo {
    let name = match backend.kind() {
        BackendKind::Builtin => RuntimeName::Builtin,
        BackendKind::Runc => RuntimeName::Runc,
        BackendKind::Crun => RuntimeName::Crun,
        BackendKind::Runsc => RuntimeName::Runsc,
        BackendKind::Docker => RuntimeName::Docker,
        BackendKind::Podman => RuntimeName::Podman,
    };
    let mut version = backend.version();
    for note in backend.notes() {
        version.push_str(&format!(" [{note}]"));
    }
    RuntimeInfo { name, version }
}

/// The report of a run whose containers `runtime` started.
pub fn build_report(layout: &CgroupLayout, runtime: &dyn Backend, runs: &[ScenarioRun]) -> Report {
    Report::assemble(
        chrono::Utc::now(),
        env!("CARGO_PKG_VERSION"),
        host_info(layout),
        runtime_info(runtime),
        runs.iter().map(ScenarioRun::to_result).collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expect::{evaluate, Condition, Expectation, Observations, Observed};
    use proptest::prelude::*;
    use reports::Verdict;

    #[test]
    fn a_leaked_check_says_what_an_attacker_could_do_and_a_held_one_does_not() {
        let e = Expectation {
            check: "c".into(),
            title: "no engine socket".into(),
            metric: "m".into(),
            condition: Condition::Equals(crate::expect::Value::Text("none".into())),
            required: true,
            pass: Verdict::Isolated,
            fail: Verdict::Leaked,
            needs_cpus: None,
            attack: Some("root on the host through the engine".into()),
            informational_on: Default::default(),
            explained_on: Default::default(),
            not_on_sandbox: None,
        };
        let seen = |v: &str| -> Observations { [("m".to_string(), Observed::from(v))].into() };
        let leaked = check_result(&evaluate(&e, &seen("/run/docker.sock (connected)")));
        assert_eq!(leaked.verdict, Verdict::Leaked);
        let detail = leaked.detail.unwrap();
        assert!(
            detail.ends_with("an attacker could: root on the host through the engine"),
            "{detail}"
        );
        let held = check_result(&evaluate(&e, &seen("none")));
        assert_eq!(held.detail.as_deref(), Some("no engine socket"));
    }

    #[test]
    fn kernel_releases_compare_by_major_and_minor() {
        assert!(kernel_at_least("6.18.44-fc-v1098", (5, 14)));
        assert!(kernel_at_least("5.14.0", (5, 14)));
        assert!(!kernel_at_least("5.10.0-28-amd64", (5, 14)));
        assert!(!kernel_at_least("4.19.0", (5, 14)));
        assert!(!kernel_at_least("garbage", (5, 14)));
    }

    proptest! {
        #[test]
        fn kernel_release_comparison_agrees_with_tuples(
            a in 2u32..8, b in 0u32..30, c in 0u32..300, suffix in "(-[a-z0-9+.]{1,12})?",
            x in 2u32..8, y in 0u32..30,
        ) {
            let release = format!("{a}.{b}.{c}{suffix}");
            prop_assert_eq!(kernel_at_least(&release, (x, y)), (a, b) >= (x, y));
        }
    }

    #[test]
    fn cpu_flags_are_matched_whole() {
        let t = "processor : 0\nflags\t\t: fpu vme hypervisor_x\n";
        assert!(!cpu_flags_have(t, "hypervisor"));
        assert!(cpu_flags_have("flags : fpu hypervisor\n", "hypervisor"));
    }

    #[test]
    fn this_hosts_info_is_filled() {
        let layout = probes::host::detect().unwrap();
        let h = host_info(&layout);
        assert!(!h.kernel_release.is_empty());
        assert!(h.cpus >= 1);
        assert!(h.memory_bytes > 0);
        assert!(h.namespaces_supported.iter().any(|n| n == "pid"));
        assert!(h.features.contains_key("psi"));
    }

    proptest! {
        /// A judged expectation keeps its meaning through the report
        /// model: a broken required check fails the scenario there too.
        #[test]
        fn broken_required_checks_fail_the_reported_scenario(value in -2f64..2.0, required: bool, iso: bool) {
            let (pass, fail) = if iso { (Verdict::Isolated, Verdict::Leaked) } else { (Verdict::Enforced, Verdict::NotEnforced) };
            let e = Expectation {
                check: "c".into(),
                title: "t".into(),
                metric: "m".into(),
                condition: Condition::Range { at_least: None, at_most: Some(0.0) },
                required,
                pass,
                fail,
                needs_cpus: None,
                attack: None,
                informational_on: Default::default(),
            explained_on: Default::default(),
                not_on_sandbox: None,
            };
            let obs: Observations = [("m".to_string(), Observed::from(value))].into();
            let j = evaluate(&e, &obs);
            let c = check_result(&j);
            prop_assert_eq!(c.held(), value <= 0.0);
            let status = reports::scenario_status(&[c], None);
            let expected = if required && value > 0.0 { Status::Fail } else { Status::Pass };
            prop_assert_eq!(status, expected);
        }
    }
}
