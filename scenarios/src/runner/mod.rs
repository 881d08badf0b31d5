//! Runs scenarios: builds each `ContainerSpec`, spawns it with the runtime,
//! samples the host view (probes::host, straight from cgroupfs) while the
//! workload runs, answers the workload's requests to look, and turns what
//! was collected into metrics, judgements and a [`ScenarioRun`].
//!
//! This module holds the configuration, the tries of a scenario and what
//! stops it before it starts; `scene` is one try as its steps (start,
//! watch, drain, clean up, judge), `live` one running container (spawn,
//! samples, exit, protocol lines), `host` what is read of the host itself.

use crate::catalog::{LoadError, Member, Scenario};
use crate::error::{Error, Result};
use crate::expect::{self, Evidence, Judgement, Observations};
use crate::observe::{self, HostSample};
use crate::workload::Workload;
use probes::host::{CgroupLayout, Host};
use reports::Verdict;
use runtime::backend::{Backend, BackendKind};
use runtime::lxcfs::Lxcfs;
use runtime::{Namespace, RuntimeConfig};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

mod host;
mod live;
mod scene;

pub use host::{
    at_limit, busy_ticks, clocks, host_can_fork, host_snapshot, spare_cpus, vmstat_oom_kills,
};
pub use scene::{sample_gap, FINE_SAMPLING, FIRST_SAMPLE_GAP};

/// How scenarios are run.
#[derive(Debug, Clone)]
pub struct RunnerConfig {
    /// The boxwatch binary (re-executed by the runtime, bound into containers).
    pub exe: PathBuf,
    /// Parent cgroup of the run (default: the runtime's `/boxwatch`).
    pub cgroup_parent: Option<PathBuf>,
    /// How often the host view is sampled while a workload runs.
    pub sample_interval: Duration,
    /// Let a settimeofday scenario with `allow_clock_write` run (only ever
    /// inside a throwaway VM: it may move the clock by microseconds).
    pub allow_clock_write: bool,
    /// Set (by a signal handler) to stop: running containers are killed,
    /// scenarios not yet started end in `error`.
    pub interrupted: Option<Arc<AtomicBool>>,
    /// How long a CPU-measuring scenario waits for a quiet host.
    pub quiet_wait: Duration,
    /// The runtime that starts the containers: builtin, runc or crun.
    pub runtime: BackendKind,
    /// The OCI runtime's binary (default: runc/crun from PATH).
    pub runtime_path: Option<PathBuf>,
    /// Where every scenario's observations go (see [`OBSERVATIONS_ENV`]):
    /// a directory, or `-` to keep them for [`Runner::recorded`]. Default:
    /// the environment variable.
    pub dump_observations: Option<PathBuf>,
}

impl RunnerConfig {
    /// The defaults (builtin runtime, 100 ms sampling, 20 s quiet wait, no
    /// clock writes) for the boxwatch binary `exe`.
    pub fn new(exe: PathBuf) -> Self {
        RunnerConfig {
            exe,
            cgroup_parent: None,
            sample_interval: Duration::from_millis(100),
            allow_clock_write: false,
            interrupted: None,
            quiet_wait: Duration::from_secs(20),
            runtime: BackendKind::Builtin,
            runtime_path: None,
            dump_observations: std::env::var_os(OBSERVATIONS_ENV).map(PathBuf::from),
        }
    }
}

/// The outcome of one scenario, before it becomes part of a report.
#[derive(Debug, Clone, Serialize)]
pub struct ScenarioRun {
    /// The scenario's id ([`Scenario::id`]).
    pub id: String,
    /// Its title ([`Scenario::title`]).
    pub title: String,
    /// Its description ([`Scenario::description`]).
    pub description: String,
    /// Its seed claim ([`Scenario::seed_claim`]).
    pub seed_claim: String,
    /// Its headline metric ([`Scenario::headline`]).
    pub headline: Option<String>,
    /// The scenario file it came from.
    pub file: PathBuf,
    /// Wall time from the host lock taken to the end, every try included.
    pub duration: Duration,
    /// The main container's cgroup limits.
    pub limits: runtime::Limits,
    /// The verdict of every check, in the scenario's order (the last try's).
    pub judgements: Vec<Judgement>,
    /// Every numeric metric observed.
    pub measurements: BTreeMap<String, f64>,
    /// The main container's host view over time.
    pub samples: Vec<HostSample>,
    /// Why the scenario could not be carried out.
    pub error: Option<String>,
    /// What the workload wrote on stderr (last lines), for diagnosis.
    pub stderr_tail: String,
    /// Earlier tries whose CPU measurement was inconclusive, oldest first.
    pub earlier_tries: Vec<EarlierTry>,
}

/// A try of a scenario that was run again (see [`Runner::run`]).
#[derive(Debug, Clone, Serialize)]
pub struct EarlierTry {
    /// Wall time of that try.
    pub duration: Duration,
    /// Its verdicts, in the scenario's order.
    pub judgements: Vec<Judgement>,
}

/// How often a scenario whose required CPU measurement was inconclusive
/// is run again before its `error` stands.
pub const INCONCLUSIVE_RETRIES: usize = 2;

impl ScenarioRun {
    /// A scenario file that could not be loaded: an `error` scenario.
    pub fn from_load_error(e: &LoadError) -> ScenarioRun {
        ScenarioRun {
            id: e.id.clone(),
            title: format!("scenario file {}", e.file.display()),
            description: String::new(),
            seed_claim: String::new(),
            headline: None,
            file: e.file.clone(),
            duration: Duration::ZERO,
            limits: runtime::Limits::default(),
            judgements: Vec::new(),
            measurements: BTreeMap::new(),
            samples: Vec::new(),
            error: Some(format!("the scenario file was refused: {e}")),
            stderr_tail: String::new(),
            earlier_tries: Vec::new(),
        }
    }

    fn for_scenario(s: &Scenario) -> ScenarioRun {
        ScenarioRun {
            id: s.id.clone(),
            title: s.title.clone(),
            description: s.description.clone(),
            seed_claim: s.seed_claim.clone(),
            headline: s.headline.clone(),
            file: s.file.clone(),
            duration: Duration::ZERO,
            limits: s.main.container.limits.clone(),
            judgements: Vec::new(),
            measurements: BTreeMap::new(),
            samples: Vec::new(),
            error: None,
            stderr_tail: String::new(),
            earlier_tries: Vec::new(),
        }
    }

    /// Every check of `s` judged with the same verdict and reason (and,
    /// for `unsupported`, the same evidence).
    fn all_checks(
        mut self,
        s: &Scenario,
        verdict: Verdict,
        why: &str,
        evidence: Option<Evidence>,
    ) -> ScenarioRun {
        self.judgements = s
            .expectations
            .iter()
            .map(|e| Judgement {
                check: e.check.clone(),
                title: e.title.clone(),
                metric: e.metric.clone(),
                verdict,
                expected_verdict: e.pass,
                required: e.required,
                expected: expect::describe_condition(&e.metric, &e.condition),
                observed: why.to_string(),
                value: None,
                evidence: evidence.clone(),
                attack: None,
            })
            .collect();
        if verdict == Verdict::Error {
            self.error = Some(why.to_string());
        }
        self
    }
}

/// Runs scenarios on this host. One per `boxwatch scenarios` run.
pub struct Runner {
    /// The run's private lxcfs, started by the first scenario that asks for
    /// one (see [`runtime::lxcfs`]); stopped in `drop`, before the runtime
    /// removes the run's state directory.
    lxcfs: OnceLock<std::result::Result<Lxcfs, String>>,
    rt: Box<dyn Backend>,
    host: Host,
    layout: CgroupLayout,
    cfg: RunnerConfig,
    harness_ns: BTreeMap<String, u64>,
    ticks_per_sec: f64,
    /// Online CPUs of the host.
    cpus: f64,
    /// The observations kept when `dump_observations` is `-`.
    recorded: std::sync::Mutex<Vec<RecordedObservations>>,
}

impl Drop for Runner {
    /// Stops the run's lxcfs (it unmounts itself) and removes the run's
    /// state directory if nothing else is left in it.
    fn drop(&mut self) {
        if let Some(Ok(lxcfs)) = self.lxcfs.take() {
            drop(lxcfs);
            let _ = std::fs::remove_dir(self.rt.run_state_dir());
        }
    }
}

/// Set to a directory, every scenario writes what the judge observed (the
/// [`Observations`] its expectations are evaluated against) to
/// `<dir>/<runtime>/<scenario>.json` as a [`RecordedObservations`]: the
/// judge's snapshot tests replay such recordings.
pub const OBSERVATIONS_ENV: &str = "BOXWATCH_DUMP_OBSERVATIONS";

/// One scenario's observations as recorded on a real host.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct RecordedObservations {
    /// The scenario's id.
    pub scenario: String,
    /// `builtin`, `runc` or `crun`.
    pub runtime: String,
    /// `uname -r` of the host.
    pub kernel: String,
    /// `v1`, `v2` or `hybrid`.
    pub cgroup_mode: String,
    /// What the judge evaluated the scenario's expectations against.
    pub observations: Observations,
}

impl Runner {
    /// A runner for `cfg`, opening the runtime `cfg.runtime` names.
    pub fn new(cfg: RunnerConfig) -> Result<Runner> {
        let mut rc = RuntimeConfig::new(cfg.exe.clone());
        if let Some(p) = &cfg.cgroup_parent {
            rc.cgroup_parent = p.clone();
        }
        let rt = runtime::backend::open(cfg.runtime, rc, cfg.runtime_path.clone())?;
        Runner::with_backend(cfg, rt)
    }

    /// A runner whose containers `rt` starts (`cfg.runtime` is not used).
    pub fn with_backend(cfg: RunnerConfig, rt: Box<dyn Backend>) -> Result<Runner> {
        let host = Host::new();
        let layout = host.layout().map_err(Error::Layout)?;
        let me = std::process::id() as i32;
        let harness_ns = observe::NS_NAMES
            .iter()
            .filter_map(|ns| Some((ns.to_string(), host.ns_inode(me, ns).ok()?)))
            .collect();
        let ticks_per_sec = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
            .ok()
            .flatten()
            .map(|t| t as f64)
            .unwrap_or(100.0);
        let cpus = nix::unistd::sysconf(nix::unistd::SysconfVar::_NPROCESSORS_ONLN)
            .ok()
            .flatten()
            .unwrap_or(1) as f64;
        Ok(Runner {
            lxcfs: OnceLock::new(),
            rt,
            host,
            layout,
            cfg,
            harness_ns,
            ticks_per_sec,
            cpus,
            recorded: std::sync::Mutex::new(Vec::new()),
        })
    }

    /// The observations kept so far (`dump_observations` `-`), in the
    /// order the scenarios ended.
    pub fn recorded(&self) -> Vec<RecordedObservations> {
        self.recorded
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The runtime that starts the containers.
    pub fn runtime(&self) -> &dyn Backend {
        self.rt.as_ref()
    }

    /// The mount point of the run's private lxcfs, started on first use.
    fn lxcfs(&self) -> Result<PathBuf> {
        let started = self.lxcfs.get_or_init(|| {
            Lxcfs::start(&self.rt.run_state_dir().join("lxcfs"))
                .map_err(|e| runtime::error::chain(&e))
        });
        match started {
            Ok(l) => Ok(l.path().to_path_buf()),
            Err(why) => Err(Error::Report(format!("starting lxcfs: {why}"))),
        }
    }

    /// The host's cgroup layout, read when the runner was made.
    pub fn layout(&self) -> &CgroupLayout {
        &self.layout
    }

    /// Runs one scenario; never fails: problems end in an `error` scenario.
    pub fn run(&self, s: &Scenario) -> ScenarioRun {
        // Across processes too: another boxwatch run's measurement and ours
        // must not overlap (exclusive scenarios wait for everything else).
        let _host_lock = crate::hostlock::acquire(
            std::path::Path::new(crate::hostlock::LOCK_PATH),
            s.exclusive,
            || self.interrupted(),
        );
        let started = Instant::now();
        if self.interrupted() {
            return ScenarioRun::for_scenario(s).all_checks(
                s,
                Verdict::Error,
                "not run: boxwatch was interrupted",
                None,
            );
        }
        let mut run = match self.precheck(s) {
            // Unsupported only with the evidence; else the judge could not
            // establish why, and that is an error.
            Some((why, Some(evidence))) => ScenarioRun::for_scenario(s).all_checks(
                s,
                Verdict::Unsupported,
                &why,
                Some(evidence),
            ),
            Some((why, None)) => {
                ScenarioRun::for_scenario(s).all_checks(s, Verdict::Error, &why, None)
            }
            None => self.run_tries(s, started),
        };
        run.duration = started.elapsed();
        run
    }

    /// Runs `s`, and again (at most [`INCONCLUSIVE_RETRIES`] times) while a
    /// required CPU measurement is inconclusive and no required check
    /// failed outright; every earlier try is kept.
    fn run_tries(&self, s: &Scenario, started: Instant) -> ScenarioRun {
        let mut tries = Vec::new();
        let mut t0 = started;
        loop {
            let run = contain_panic(s, || self.run_checked(s));
            let inconclusive: Vec<&str> = run
                .judgements
                .iter()
                .filter(|j| j.required && crate::contention::is_inconclusive(j))
                .map(|j| j.check.as_str())
                .collect();
            // A required check that failed outright fails the scenario
            // whatever another try would measure.
            let failed = run.judgements.iter().any(|j| j.required && j.broken());
            if inconclusive.is_empty()
                || failed
                || tries.len() >= INCONCLUSIVE_RETRIES
                || self.interrupted()
            {
                return ScenarioRun {
                    earlier_tries: tries,
                    ..run
                };
            }
            tracing::warn!(
                "{}: {} inconclusive (the host's load explains the shortfall): trying again ({} of {INCONCLUSIVE_RETRIES})",
                s.id,
                inconclusive.join(", "),
                tries.len() + 1
            );
            tries.push(EarlierTry {
                duration: t0.elapsed(),
                judgements: run.judgements,
            });
            t0 = Instant::now();
        }
    }

    fn interrupted(&self) -> bool {
        self.cfg
            .interrupted
            .as_ref()
            .is_some_and(|f| f.load(Ordering::SeqCst))
    }

    /// Why `s` cannot run on this host at all, if it cannot, with the
    /// evidence that makes it `unsupported` (none: `error`).
    fn precheck(&self, s: &Scenario) -> Option<(String, Option<Evidence>)> {
        std::iter::once(&s.main)
            .chain(s.neighbour.as_ref())
            .find_map(|m| {
                self.namespace_missing(m)
                    .or_else(|| self.controller_missing(m))
                    .or_else(|| lxcfs_unavailable(m))
                    .or_else(|| self.clock_write_refused(m))
            })
    }

    /// A namespace the member needs that this kernel does not have.
    fn namespace_missing(&self, m: &Member) -> Option<(String, Option<Evidence>)> {
        let ns = m
            .container
            .namespaces
            .iter()
            .find(|ns| !self.harness_ns.contains_key(ns.proc_name()))?;
        Some((
            format!(
                "this kernel has no {ns} namespace (/proc/self/ns/{} is missing)",
                ns.proc_name()
            ),
            Some(Evidence::KernelNamespace {
                namespace: ns.proc_name().into(),
            }),
        ))
    }

    /// A controller the member's limits need that no hierarchy serves.
    fn controller_missing(&self, m: &Member) -> Option<(String, Option<Evidence>)> {
        let l = &m.container.limits;
        let (_, controller) = [
            (l.cpu.is_some(), "cpu"),
            (l.memory.is_some(), "memory"),
            (l.pids.is_some(), "pids"),
            (l.cpuset.is_some(), "cpuset"),
        ]
        .into_iter()
        .find(|(needed, c)| *needed && self.layout.hierarchy_for(c).is_none())?;
        Some(crate::facts::controller_unavailable(
            &self.layout,
            controller,
            std::path::Path::new("/proc/cgroups"),
        ))
    }

    /// A clock-moving settimeofday member, outside a VM boxwatch booted
    /// or without --allow-clock-write.
    fn clock_write_refused(&self, m: &Member) -> Option<(String, Option<Evidence>)> {
        let Workload::Settimeofday {
            allow_clock_write: true,
            ..
        } = m.workload
        else {
            return None;
        };
        if !self.cfg.allow_clock_write {
            let why = "this scenario may move the clock: it only runs with --allow-clock-write, inside a throwaway VM";
            return Some((
                why.into(),
                Some(Evidence::NotAllowedHere { rule: why.into() }),
            ));
        }
        if !runtime::booted_by_boxwatch() {
            let why = format!(
                "this scenario may move the clock: it only runs inside a VM boxwatch booted \
                 ({} on the kernel command line; cargo xtask vm), never on a host",
                runtime::VM_MARKER
            );
            return Some((why.clone(), Some(Evidence::NotAllowedHere { rule: why })));
        }
        None
    }

    /// Writes what the judge observed in scenario `id` to
    /// `<dir>/<runtime>/<id>.json` (see [`OBSERVATIONS_ENV`]).
    fn dump_observations(
        &self,
        dir: &std::path::Path,
        id: &str,
        obs: &Observations,
    ) -> std::io::Result<()> {
        let recorded = RecordedObservations {
            scenario: id.to_string(),
            runtime: self.rt.name().to_string(),
            kernel: nix::sys::utsname::uname()
                .map(|u| u.release().to_string_lossy().into_owned())
                .unwrap_or_default(),
            cgroup_mode: format!("{:?}", self.layout.mode()).to_lowercase(),
            observations: obs.clone(),
        };
        if dir.as_os_str() == "-" {
            self.recorded
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(recorded);
            return Ok(());
        }
        let dir = dir.join(self.rt.name());
        std::fs::create_dir_all(&dir)?;
        let text = serde_json::to_string_pretty(&recorded).map_err(std::io::Error::other)?;
        std::fs::write(dir.join(format!("{id}.json")), text + "\n")
    }
}

/// lxcfs, when the member asks for it and boxwatch cannot apply it here.
fn lxcfs_unavailable(m: &Member) -> Option<(String, Option<Evidence>)> {
    if !m.container.lxcfs {
        return None;
    }
    let why = runtime::lxcfs::unavailable()?;
    Some((
        format!(
            "this scenario verifies lxcfs's /proc virtualization, which boxwatch cannot apply here: {why}"
        ),
        Some(Evidence::HostTool {
            tool: "lxcfs".into(),
            detail: why.to_string(),
        }),
    ))
}

/// Runs one scenario so that a panic in it (a bug in boxwatch) ends that
/// scenario in `error`, naming the panic, and never the whole run; its
/// containers are killed and removed as the panic unwinds.
fn contain_panic(s: &Scenario, run: impl FnOnce() -> ScenarioRun) -> ScenarioRun {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(run)).unwrap_or_else(|panic| {
        let what = panic
            .downcast_ref::<&str>()
            .map(|m| m.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic without a message".into());
        ScenarioRun::for_scenario(s).all_checks(
            s,
            Verdict::Error,
            &format!("boxwatch panicked while running this scenario (a bug in boxwatch): {what}"),
            None,
        )
    })
}

/// Namespace of a check name `ns_differs.<ns>`, for reports.
pub fn namespace_of(metric: &str) -> Option<Namespace> {
    metric.strip_prefix("ns_differs.")?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::live::{process_stat, still_alive};
    use super::*;

    #[test]
    fn sampling_starts_fine_and_backs_off_to_the_interval() {
        let ms = Duration::from_millis;
        let every = ms(100);
        assert_eq!(sample_gap(ms(0), every), ms(5));
        assert_eq!(sample_gap(ms(499), every), ms(5));
        assert_eq!(sample_gap(ms(660), every), ms(20));
        assert_eq!(sample_gap(ms(1300), every), every);
        assert_eq!(sample_gap(Duration::from_secs(60), every), every);
        assert_eq!(sample_gap(Duration::from_secs(60), ms(1)), ms(5));
        // The first 80 ms are sampled at least 10 times; a minute of a
        // long workload is not sampled much more than at the interval.
        let count = |until: Duration| {
            let (mut t, mut n) = (Duration::ZERO, 0);
            while t < until {
                t += sample_gap(t, every);
                n += 1;
            }
            n
        };
        assert!(count(ms(80)) >= 10);
        assert!(
            count(Duration::from_secs(60)) <= 600 + 150,
            "{}",
            count(Duration::from_secs(60))
        );
    }

    #[test]
    fn survivors_are_alive_only_with_their_own_start_time() {
        let me = std::process::id() as i32;
        let start = process_stat(me)
            .and_then(|s| s.start_time)
            .expect("this process has a stat line");
        assert_eq!(still_alive(&[(me, start)]), 1);
        assert_eq!(
            still_alive(&[(me, start + 1)]),
            0,
            "a reused PID is not the survivor"
        );
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id() as i32;
        let child_start = process_stat(pid).and_then(|s| s.start_time).unwrap_or(0);
        child.wait().unwrap();
        assert_eq!(
            still_alive(&[(pid, child_start)]),
            0,
            "a reaped process is gone"
        );
    }

    use proptest::prelude::*;

    #[test]
    fn a_panicking_scenario_ends_in_error_and_the_run_goes_on() {
        let s = crate::builtin::load()
            .into_iter()
            .find_map(|e| e.ok().filter(|s| s.id == "uts-namespace"))
            .unwrap();
        let run = contain_panic(&s, || panic!("index out of bounds"));
        assert!(run
            .error
            .as_deref()
            .is_some_and(|e| e.contains("panicked") && e.contains("index out of bounds")));
        assert!(run.judgements.iter().all(|j| j.verdict == Verdict::Error));
        assert!(!run.judgements.is_empty());
        let fine = contain_panic(&s, || ScenarioRun::for_scenario(&s));
        assert!(fine.error.is_none());
    }

    #[test]
    fn busy_ticks_skip_idle_and_iowait() {
        let stat = "cpu  10 2 30 1000 50 4 5 6 0 0\ncpu0 1 1 1 1 1 1 1 1 0 0\n";
        assert_eq!(busy_ticks(stat), Some(10 + 2 + 30 + 4 + 5 + 6));
        assert_eq!(busy_ticks("cpu0 1 2 3 4\n"), None);
        assert_eq!(busy_ticks("cpu  a b c d\n"), None);
    }

    #[test]
    fn vmstat_oom_kill_is_read() {
        assert_eq!(vmstat_oom_kills("nr_free_pages 5\noom_kill 3\n"), Some(3));
        assert_eq!(vmstat_oom_kills("nr_free_pages 5\n"), None);
        assert!(vmstat_oom_kills(&std::fs::read_to_string("/proc/vmstat").unwrap()).is_some());
    }

    #[test]
    fn the_host_clock_pair_is_consistent() {
        let (r1, m1) = clocks();
        let (r2, m2) = clocks();
        assert!(m2 >= m1);
        // No step between two readings a few microseconds apart.
        assert!(((r2 - r1) - (m2 - m1)).abs() < 0.05);
    }

    #[test]
    fn spare_cpus_leave_out_the_scenarios_own_containers() {
        let mut obs = Observations::new();
        assert_eq!(spare_cpus(&obs, 2.0), None);
        obs.insert("host_busy_cpus".into(), 1.2.into());
        assert!((spare_cpus(&obs, 2.0).unwrap() - 0.8).abs() < 1e-9);
        obs.insert("neighbour.cpu_share".into(), 0.95.into());
        assert!((spare_cpus(&obs, 2.0).unwrap() - 1.75).abs() < 1e-9);
        obs.insert("host_busy_cpus".into(), 5.0.into());
        assert_eq!(spare_cpus(&obs, 2.0), Some(0.0));
    }

    proptest! {
        #[test]
        fn busy_ticks_never_panics(s in "\\PC{0,100}") {
            let _ = busy_ticks(&s);
            let _ = vmstat_oom_kills(&s);
        }
    }
}
