//! Runs scenarios: builds each `ContainerSpec`, spawns it with the runtime,
//! samples the host view (probes::host, straight from cgroupfs) while the
//! workload runs, answers the workload's requests to look, and turns what
//! was collected into metrics, judgements and a [`ScenarioRun`].

use crate::catalog::{LoadError, Member, Scenario};
use crate::error::{Error, Result};
use crate::expect::{self, Evidence, Judgement, Observations, Observed};
use crate::observe::{self, AckView, Collected, HostSample, HostSnapshot, Mark};
use crate::workload::{Workload, GUARD_ENV};
use probes::host::{CgroupLayout, CgroupPath, Host};
use probes::Verdict;
use runtime::backend::{Backend, BackendKind, Kill, Running};
use runtime::lxcfs::Lxcfs;
use runtime::{ContainerSpec, Guard, Namespace, RuntimeConfig, Stdio};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, RecvTimeoutError, Sender};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

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
    pub id: String,
    pub title: String,
    pub description: String,
    pub seed_claim: String,
    pub headline: Option<String>,
    pub file: PathBuf,
    pub duration: Duration,
    pub limits: runtime::Limits,
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
    pub duration: Duration,
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
    pub scenario: String,
    /// `builtin`, `runc` or `crun`.
    pub runtime: String,
    /// `uname -r` of the host.
    pub kernel: String,
    /// `v1`, `v2` or `hybrid`.
    pub cgroup_mode: String,
    pub observations: Observations,
}

/// Host figures every scenario reports when it has them.
const CORE_MEASUREMENTS: [&str; 4] = ["memory_peak_bytes", "oom_kills", "pids_peak", "exit_code"];

/// CPU figures, reported for the workloads that measure CPU.
const CPU_MEASUREMENTS: [&str; 9] = [
    "cpu_share",
    crate::contention::CONTENTION_CPUS,
    crate::contention::THREADS_CPU_SHARE,
    crate::contention::WAIT_CPUS,
    "nr_periods",
    "nr_throttled",
    "throttled_secs",
    "host_busy_cpus",
    "host_spare_cpus",
];

/// Namespace link names under /proc/<pid>/ns that the checks compare.
const NS_NAMES: [&str; 8] = ["pid", "mnt", "uts", "ipc", "net", "cgroup", "user", "time"];

impl Runner {
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
        let harness_ns = NS_NAMES
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
        for m in std::iter::once(&s.main).chain(s.neighbour.as_ref()) {
            for ns in m.container.namespaces.iter() {
                if !self.harness_ns.contains_key(ns.proc_name()) {
                    return Some((
                        format!(
                            "this kernel has no {ns} namespace (/proc/self/ns/{} is missing)",
                            ns.proc_name()
                        ),
                        Some(Evidence::KernelNamespace {
                            namespace: ns.proc_name().into(),
                        }),
                    ));
                }
            }
            let l = &m.container.limits;
            for (needed, controller) in [
                (l.cpu.is_some(), "cpu"),
                (l.memory.is_some(), "memory"),
                (l.pids.is_some(), "pids"),
                (l.cpuset.is_some(), "cpuset"),
            ] {
                if needed && self.layout.hierarchy_for(controller).is_none() {
                    return Some(crate::facts::controller_unavailable(
                        &self.layout,
                        controller,
                        std::path::Path::new("/proc/cgroups"),
                    ));
                }
            }
            if m.container.lxcfs {
                if let Some(why) = runtime::lxcfs::unavailable() {
                    return Some((
                        format!(
                            "this scenario verifies lxcfs's /proc virtualization, which boxwatch cannot apply here: {why}"
                        ),
                        Some(Evidence::HostTool {
                            tool: "lxcfs".into(),
                            detail: why.to_string(),
                        }),
                    ));
                }
            }
            if let Workload::Settimeofday {
                allow_clock_write: true,
                ..
            } = m.workload
            {
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
            }
        }
        None
    }

    fn spec_for(&self, name: &str, m: &Member, marker: &str) -> ContainerSpec {
        let c = &m.container;
        let exe = if c.host_rootfs {
            self.cfg.exe.to_string_lossy().into_owned()
        } else {
            runtime::CONTAINER_EXE.to_string()
        };
        let mut command = vec![exe];
        command.extend(m.workload.argv(marker));
        let mut spec = c.spec(name, command);
        let kind = m.workload.kind();
        let needs = kind.guard_needs();
        if !needs.is_empty() {
            spec.guard = Some(Guard {
                workload: format!("the {} workload", kind.name()),
                needs,
            });
            spec.env.push((GUARD_ENV.into(), kind.name().into()));
        }
        if let (crate::workload::WorkloadKind::Hog, Some(limit)) = (kind, c.limits.memory) {
            spec.env.push((
                crate::workload::MEMORY_LIMIT_ENV.into(),
                limit.bytes().to_string(),
            ));
        }
        spec
    }

    fn run_checked(&self, s: &Scenario) -> ScenarioRun {
        let mut run = ScenarioRun::for_scenario(s);
        let needed = s
            .expectations
            .iter()
            .filter_map(|e| e.needs_cpus)
            .fold(0.0, f64::max);
        if needed > 0.0 {
            self.wait_for_quiet_host(needed, &s.id);
        }
        let marker = format!("boxwatch-marker-{}-{}", std::process::id(), s.id);
        let pre = host_snapshot();
        let (tx, rx) = channel::<(usize, Option<String>)>();
        let mut live: Vec<Live> = Vec::new();
        let members = std::iter::once(("", s.id.clone(), &s.main)).chain(
            s.neighbour
                .as_ref()
                .map(|n| ("neighbour.", format!("{}-neighbour", s.id), n)),
        );
        for (idx, (prefix, name, member)) in members.enumerate() {
            match self.spawn(idx, prefix, &name, member, &marker, tx.clone()) {
                Ok(l) => live.push(l),
                Err(e) => {
                    drop(live); // kills and cleans up what did start
                    let why = format!("starting container {name}: {}", runtime::error::chain(&e));
                    // The runtime's documented refusal is evidence of what it
                    // does not offer; a controller it says is missing is not
                    // (the judge found it available), so that is an error.
                    return match e {
                        Error::Runtime(runtime::Error::OciUnsupported { runtime, what }) => run
                            .all_checks(
                                s,
                                Verdict::Unsupported,
                                &why,
                                Some(Evidence::Runtime {
                                    runtime,
                                    detail: what,
                                }),
                            ),
                        _ => run.all_checks(s, Verdict::Error, &why, None),
                    };
                }
            }
        }
        drop(tx);

        let deadline = Instant::now() + s.timeout;
        let interval = self.cfg.sample_interval.max(Duration::from_millis(10));
        let sampling_from = Instant::now();
        let mut next_sample = sampling_from + FIRST_SAMPLE_GAP;
        let mut timed_out = false;
        let mut stopped = false;
        loop {
            let now = Instant::now();
            if now >= next_sample {
                for l in live.iter_mut().filter(|l| !l.exited) {
                    self.sample(l);
                }
                next_sample = now + sample_gap(now - sampling_from, interval);
            }
            for l in live.iter_mut().filter(|l| !l.exited) {
                if l.has_exited() {
                    self.on_exit(l);
                }
            }
            if live.iter().all(|l| l.exited) {
                break;
            }
            if !timed_out && !stopped && (now >= deadline || self.interrupted()) {
                timed_out = now >= deadline;
                stopped = true;
                for l in &live {
                    let _ = l.killer.kill();
                }
            }
            let wait = next_sample
                .saturating_duration_since(Instant::now())
                .min(Duration::from_millis(20));
            match rx.recv_timeout(wait) {
                Ok((i, Some(line))) => self.handle_line(&mut live[i], &line, &marker),
                Ok((i, None)) => live[i].eof = true,
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => std::thread::sleep(wait),
            }
        }
        // Lines still in the pipes; lingering processes may hold them open
        // until the runtime kills them, so this is bounded.
        let drain_until = Instant::now() + Duration::from_millis(500);
        while !live.iter().all(|l| l.eof) {
            match rx.recv_timeout(drain_until.saturating_duration_since(Instant::now())) {
                Ok((i, Some(line))) => self.handle_line(&mut live[i], &line, &marker),
                Ok((i, None)) => live[i].eof = true,
                Err(_) => break,
            }
        }
        let mut errors = Vec::new();
        for l in live.iter_mut() {
            if let Some(c) = l.container.take() {
                match c.wait() {
                    Ok(outcome) => l.collected.exit_code = Some(outcome.exit.shell_code()),
                    Err(e) => errors.push(format!(
                        "cleaning up container {}: {}",
                        l.name,
                        runtime::error::chain(&e)
                    )),
                }
                if l.exited {
                    l.collected.survivors_after_cleanup =
                        Some(still_alive(&l.collected.survivor_pids));
                }
            }
            if let Some(h) = l.stderr.take() {
                l.collected.stderr_tail = h.join().unwrap_or_default();
            }
        }
        let post = host_snapshot();

        let mut obs = Observations::new();
        for l in &live {
            let o = observe::observe(
                &l.collected,
                &pre,
                &post,
                &self.harness_ns,
                &l.member.container,
                l.member.workload.kind(),
                self.ticks_per_sec,
            );
            obs.extend(o.into_iter().map(|(k, v)| (format!("{}{k}", l.prefix), v)));
        }
        if timed_out {
            errors.push(format!(
                "timed out after {:?}: the containers were killed",
                s.timeout
            ));
        } else if stopped {
            errors.push("interrupted: the containers were killed".into());
        }
        if let Some(spare) = spare_cpus(&obs, self.cpus) {
            obs.insert(expect::SPARE_CPUS.into(), spare.into());
        }
        let expectations: Vec<expect::Expectation> = s
            .expectations
            .iter()
            .map(|e| e.for_runtime(self.rt.name()))
            .collect();
        run.judgements = expect::evaluate_all(&expectations, &obs);
        if let Some(dir) = &self.cfg.dump_observations {
            if let Err(e) = self.dump_observations(dir, &s.id, &obs) {
                errors.push(format!(
                    "writing the observations to {}: {e}",
                    dir.display()
                ));
            }
        }
        if self.rt.sandboxed() {
            expect::judge_sandboxed(&expectations, &mut run.judgements);
        }
        if !errors.is_empty() {
            run.error = Some(errors.join("; "));
        }
        // The figures the checks use, and the core host figures (CPU ones
        // only for workloads that measure CPU: elsewhere they are noise).
        let wanted = |k: &str| {
            let (member, base) = match k.strip_prefix("neighbour.") {
                Some(b) => (s.neighbour.as_ref().unwrap_or(&s.main), b),
                None => (&s.main, k),
            };
            s.expectations.iter().any(|e| e.metric == k)
                || CORE_MEASUREMENTS.contains(&base)
                || (CPU_MEASUREMENTS.contains(&base) && member.workload.kind().measures_cpu())
                || (base == "memory_limit_hits" && member.container.limits.memory.is_some())
        };
        run.measurements = obs
            .iter()
            .filter(|(k, _)| wanted(k))
            .filter_map(|(k, v)| match v {
                Observed::Value(expect::Value::Number(n)) if n.is_finite() => Some((k.clone(), *n)),
                Observed::Value(expect::Value::Bool(b)) => {
                    Some((k.clone(), if *b { 1.0 } else { 0.0 }))
                }
                _ => None,
            })
            .collect();
        if let Some(main) = live.first() {
            run.samples = main.collected.samples.clone();
            run.stderr_tail = main.collected.stderr_tail.clone();
        }
        run
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

    fn spawn<'a>(
        &self,
        idx: usize,
        prefix: &'static str,
        name: &str,
        member: &'a Member,
        marker: &str,
        tx: Sender<(usize, Option<String>)>,
    ) -> Result<Live<'a>> {
        let mut spec = self.spec_for(name, member, marker);
        if member.container.lxcfs {
            spec.lxcfs = Some(self.lxcfs()?);
        }
        let (out_r, out_w) = pipe()?;
        let (err_r, err_w) = pipe()?;
        let (in_r, in_w) = pipe()?;
        let container = self.rt.spawn(
            &spec,
            Stdio {
                stdin: Some(in_r),
                stdout: Some(out_w),
                stderr: Some(err_w),
            },
        )?;
        let t0 = Instant::now();
        let pid = container.host_pid();
        // The judge finds the cgroup itself, from /proc/<pid>/cgroup, and
        // never takes the runtime's word for it: an entry already gone, or
        // in the root cgroup, leaves nothing to judge (an error), and the
        // placement check holds the processes to the cgroup the runtime
        // reported.
        let cgroup = self.judge_cgroup(pid);
        let reported = CgroupPath::new(&container.cgroup_path().to_string_lossy()).ok();
        std::thread::spawn(move || {
            for line in BufReader::new(File::from(out_r)).lines() {
                match line {
                    Ok(l) => {
                        if tx.send((idx, Some(l))).is_err() {
                            return;
                        }
                    }
                    Err(_) => break,
                }
            }
            let _ = tx.send((idx, None));
        });
        let stderr = std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = File::from(err_r).read_to_end(&mut buf);
            let text = String::from_utf8_lossy(&buf);
            let start = text.len().saturating_sub(2000);
            let start = (start..text.len())
                .find(|i| text.is_char_boundary(*i))
                .unwrap_or(text.len());
            text[start..].to_string()
        });
        let mut l = Live {
            prefix,
            name: name.to_string(),
            member,
            killer: container.killer(),
            container: Some(container),
            pid,
            expected_cgroup: reported.or_else(|| cgroup.clone()),
            cgroup,
            last_stats: None,
            stdin: Some(File::from(in_w)),
            t0,
            collected: Collected {
                host_pid: pid,
                ..Collected::default()
            },
            exited: false,
            eof: false,
            stderr: Some(stderr),
            latest: None,
        };
        l.collected.spawn_ns = self.container_ns(pid);
        // An engine removes the cgroup as soon as the entry ends: what the
        // kernel offers there is read now, while it exists.
        if let (BackendKind::Docker | BackendKind::Podman, Some(cg)) = (self.rt.kind(), &l.cgroup) {
            l.collected.facts = Some(crate::facts::CgroupFacts::gather(
                &self.layout,
                cg,
                std::path::Path::new("/proc/cgroups"),
            ));
        }
        l.collected.first = Some(self.mark(&mut l));
        self.watch(&mut l);
        Ok(l)
    }

    /// Waits (up to `quiet_wait`) until the host's other processes leave
    /// `needed` CPUs (plus a margin) free, so that a CPU measurement is not
    /// spoiled by someone else's build. Goes ahead regardless afterwards: the
    /// judgement then says whether a shortfall was inconclusive.
    fn wait_for_quiet_host(&self, needed: f64, id: &str) {
        let until = Instant::now() + self.cfg.quiet_wait;
        let mut warned = false;
        loop {
            let read = || {
                std::fs::read_to_string("/proc/stat")
                    .ok()
                    .and_then(|t| busy_ticks(&t))
            };
            let t0 = Instant::now();
            let a = read();
            std::thread::sleep(Duration::from_millis(300));
            let b = read();
            let (Some(a), Some(b)) = (a, b) else { return };
            let used = b.saturating_sub(a) as f64 / self.ticks_per_sec / t0.elapsed().as_secs_f64();
            if self.cpus - used >= needed + 0.1 || self.interrupted() {
                return;
            }
            if Instant::now() >= until {
                tracing::warn!(
                    "{id}: the host stays busy ({used:.2} of {} CPUs in use); measuring anyway",
                    self.cpus
                );
                return;
            }
            if !warned {
                tracing::info!(
                    "{id}: waiting for the host to leave {needed} CPUs free ({used:.2} in use)"
                );
                warned = true;
            }
        }
    }

    /// The cgroup of a live `pid`, from /proc/<pid>/cgroup. A process that
    /// has already exited shows the root cgroup there, so the answer is only
    /// taken from a process that is not a zombie, and never the root.
    fn judge_cgroup(&self, pid: i32) -> Option<CgroupPath> {
        let cg = ["cpu", "memory", "pids", "cpuacct"]
            .iter()
            .find_map(|c| self.host.pid_cgroup(&self.layout, pid, c).ok().flatten())?;
        if cg.as_str() == "/" {
            return None;
        }
        match process_state(pid) {
            Some(state) if state != 'Z' && state != 'X' => Some(cg),
            _ => None,
        }
    }

    fn container_ns(&self, pid: i32) -> BTreeMap<String, u64> {
        self.harness_ns
            .keys()
            .filter_map(|ns| Some((ns.clone(), self.host.ns_inode(pid, ns).ok()?)))
            .collect()
    }

    /// Reads the cgroup now, records a sample, returns it as a mark.
    fn mark(&self, l: &mut Live) -> Mark {
        let at = l.t0.elapsed();
        let (realtime, monotonic) = clocks();
        l.collected.host_clock_offsets.push(realtime - monotonic);
        let busy = std::fs::read_to_string("/proc/stat")
            .ok()
            .and_then(|t| busy_ticks(&t));
        let stats = l.cgroup.as_ref().map(|cg| self.layout.stats(cg));
        l.last_stats = None;
        l.collected.threads.sample(l.pid);
        let sched =
            l.collected
                .threads
                .totals()
                .map(|(run_ns, wait_ns)| crate::contention::SchedMark {
                    run_ns,
                    wait_ns,
                    throttled_ns: match &stats {
                        Some(Ok(s)) => s.cpu_throttled_ns,
                        _ => None,
                    },
                });
        let cpu = match stats {
            Some(Ok(s)) => {
                l.collected
                    .samples
                    .push(HostSample::from_stats(at.as_millis() as u64, &s));
                // The last figures seen, for an engine that removes the
                // cgroup before the exit is read (see on_exit).
                let hits = match (&l.cgroup, l.member.container.limits.pids) {
                    (Some(cg), Some(_)) => self.layout.pids_limit_hits(cg).ok().flatten(),
                    _ => None,
                };
                l.latest = Some((s.clone(), hits));
                l.collected.stats_error = None;
                let cpu = s.cpu_usage_ns;
                l.last_stats = Some((at.as_millis() as u64, s));
                cpu
            }
            Some(Err(e)) => {
                l.collected.stats_error = Some(format!(
                    "reading the container's cgroup: {}",
                    runtime::error::chain(&e)
                ));
                None
            }
            None => {
                l.collected.stats_error = Some(format!(
                    "the container's cgroup could not be found: /proc/{}/cgroup showed the root cgroup, or the process had exited, when it started",
                    l.pid
                ));
                None
            }
        };
        Mark {
            at_secs: at.as_secs_f64(),
            cpu_usage_ns: cpu,
            host_busy_ticks: busy,
            sched,
        }
    }

    fn sample(&self, l: &mut Live) {
        let m = self.mark(l);
        l.collected.last = Some(m);
        self.watch(l);
    }

    /// What a sample watches besides the figures, while the container
    /// runs: where its processes are, a pids.current of 0, and the host's
    /// fork while the container is at a limit.
    fn watch(&self, l: &mut Live) {
        match &l.expected_cgroup {
            Some(expected) => crate::placement::sample(
                &mut l.collected.placement,
                &self.layout,
                l.member.container.limits.cpuset.is_some(),
                l.pid,
                expected,
            ),
            None => {
                l.collected.placement.errors.insert(format!(
                    "the runtime reported no usable cgroup path for pid {}",
                    l.pid
                ));
            }
        }
        let Some((t_ms, stats)) = l.last_stats.take() else {
            return;
        };
        if stats.pids_current == Some(0) && l.collected.zero_pids_at_ms.is_none() && !l.has_exited()
        {
            l.collected.zero_pids_at_ms = Some(t_ms);
        }
        if l.collected.fork_at_limit.is_none() {
            if let Some(limit) = at_limit(&stats) {
                l.collected.fork_at_limit = Some((t_ms, limit, host_can_fork()));
            }
        }
    }

    /// The entry has exited (not yet reaped): last figures before cleanup.
    fn on_exit(&self, l: &mut Live) {
        l.exited = true;
        let m = self.mark(l);
        l.collected.last = Some(m);
        let at_exit = l.last_stats.as_ref().map(|(_, s)| s.clone());
        // Only an engine's cgroup goes with its entry (runc, crun and the
        // builtin runtime keep it until boxwatch removes it).
        let gone = matches!(self.rt.kind(), BackendKind::Docker | BackendKind::Podman);
        if let Some(cg) = &l.cgroup {
            // An engine's facts were gathered while its cgroup was there.
            if !(gone && l.collected.facts.is_some()) {
                l.collected.facts = Some(crate::facts::CgroupFacts::gather(
                    &self.layout,
                    cg,
                    std::path::Path::new("/proc/cgroups"),
                ));
            }
            match self.layout.stats(cg) {
                Ok(s) => l.collected.final_stats = Some(s),
                // An engine removes the cgroup as soon as its entry ends:
                // the figures the exit mark read just now are the final
                // ones, else the last ones read while it ran.
                Err(_) if at_exit.is_some() => l.collected.final_stats = at_exit,
                Err(_) if gone && l.latest.is_some() => {
                    l.collected.final_stats = l.latest.as_ref().map(|(s, _)| s.clone())
                }
                Err(e) => {
                    l.collected.stats_error = Some(format!(
                        "reading the container's cgroup after its exit: {e}"
                    ))
                }
            }
            let latest_hits = l.latest.as_ref().and_then(|(_, h)| *h);
            match self.layout.pids_limit_hits(cg) {
                Ok(None) | Err(_) if gone && latest_hits.is_some() => {
                    l.collected.pids_limit_hits = latest_hits
                }
                Ok(hits) => l.collected.pids_limit_hits = hits,
                Err(e) => l.collected.pids_limit_hits_error = Some(e.to_string()),
            }
            let mut pids: Vec<i32> = self
                .layout
                .existing_dirs(cg)
                .iter()
                .filter_map(|d| std::fs::read_to_string(d.join("cgroup.procs")).ok())
                .flat_map(|t| {
                    t.lines()
                        .filter_map(|p| p.trim().parse().ok())
                        .collect::<Vec<i32>>()
                })
                .collect();
            pids.sort_unstable();
            pids.dedup();
            pids.retain(|p| *p != l.pid);
            l.collected.survivors = Some(pids.len());
            l.collected.survivor_pids = pids
                .iter()
                .filter_map(|&p| Some((p, process_stat(p)?.1)))
                .collect();
        }
    }

    fn handle_line(&self, l: &mut Live, line: &str, marker: &str) {
        let Ok(serde_json::Value::Object(obj)) = serde_json::from_str::<serde_json::Value>(line)
        else {
            tracing::debug!(container = %l.name, "non-protocol output: {line}");
            return;
        };
        match obj.get("event").and_then(|e| e.as_str()) {
            Some("start") => l.collected.start = Some(self.mark(l)),
            Some("result") => l.collected.end = Some(self.mark(l)),
            Some("near-limit") => {
                // The workload waits for the ack: look while it is there.
                let m = self.mark(l);
                l.collected.last = Some(m);
                self.watch(l);
            }
            _ => {}
        }
        if obj.get("ack").and_then(|a| a.as_bool()) == Some(true) {
            // The workload waits for the answer: it is surely running now.
            self.watch(l);
            l.collected.ack = Some(self.ack_view(l.pid, marker));
            if let Some(stdin) = l.stdin.as_mut() {
                let _ = stdin.write_all(b"\n");
            }
        }
        for (k, v) in obj {
            if k != "event" && k != "ack" {
                l.collected.fields.insert(k, v);
            }
        }
    }

    fn ack_view(&self, pid: i32, marker: &str) -> AckView {
        let (realtime, monotonic) = clocks();
        let (mounts, mounts_error) = match std::fs::read_to_string("/proc/self/mountinfo") {
            Ok(t) if !t.trim().is_empty() => (probes::inside::parse_mountinfo(&t), None),
            Ok(_) => (Vec::new(), Some("/proc/self/mountinfo: empty".to_string())),
            Err(e) => (Vec::new(), Some(format!("/proc/self/mountinfo: {e}"))),
        };
        AckView {
            mounts_error,
            host_realtime: realtime,
            host_monotonic: monotonic,
            host_sees_marker: mounts
                .iter()
                .any(|m| m.source == marker || m.mount_point.contains(marker)),
            host_mount_points: mounts.into_iter().map(|m| m.mount_point).collect(),
            container_ns: self.container_ns(pid),
        }
    }
}

/// One running container of a scenario.
struct Live<'a> {
    prefix: &'static str,
    name: String,
    member: &'a Member,
    container: Option<Box<dyn Running>>,
    killer: Arc<dyn Kill>,
    pid: i32,
    /// The cgroup the judge reads: the entry's, from /proc/<pid>/cgroup.
    cgroup: Option<CgroupPath>,
    /// The cgroup the runtime reported: every process must be in it.
    expected_cgroup: Option<CgroupPath>,
    /// The figures of the last mark (ms since start), for [`Runner::watch`].
    last_stats: Option<(u64, probes::host::CgroupStats)>,
    stdin: Option<File>,
    t0: Instant,
    collected: Collected,
    exited: bool,
    eof: bool,
    stderr: Option<JoinHandle<String>>,
    /// The last cgroup figures read, and pids limit hits (with a pids
    /// limit), for an engine whose cgroup is gone when the exit is read.
    latest: Option<(probes::host::CgroupStats, Option<u64>)>,
}

impl Live<'_> {
    /// Whether the entry has exited, without reaping it (the runtime does).
    fn has_exited(&self) -> bool {
        match &self.container {
            Some(c) => c.has_exited(),
            None => true,
        }
    }
}

/// The state letter of /proc/<pid>/stat (R, S, Z...); None when gone.
fn process_state(pid: i32) -> Option<char> {
    process_stat(pid).map(|(state, _)| state)
}

/// (state letter, start time in clock ticks since boot) of a process.
fn process_stat(pid: i32) -> Option<(char, u64)> {
    parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// The state and start time (fields 3 and 22) of a /proc/<pid>/stat line;
/// the command (field 2) may hold spaces and parentheses.
fn parse_stat(stat: &str) -> Option<(char, u64)> {
    let rest = stat.rsplit_once(')')?.1;
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let start = fields.nth(18)?.parse().ok()?;
    Some((state, start))
}

/// How many of `procs` (pid, start time) still run: the same PID with the
/// same start time, not a zombie (a zombie is dead, waiting for its parent).
fn still_alive(procs: &[(i32, u64)]) -> usize {
    procs
        .iter()
        .filter(|&&(pid, start)| {
            matches!(process_stat(pid), Some((state, s)) if s == start && state != 'Z' && state != 'X')
        })
        .count()
}

fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|source| Error::Sys {
        step: "creating a pipe for the container's stdio",
        source,
    })
}

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
    let others = num("host_busy_cpus")? - num("neighbour.cpu_share").unwrap_or(0.0);
    Some((cpus - others.max(0.0)).max(0.0))
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

/// The first gap between host samples of a running container.
pub const FIRST_SAMPLE_GAP: Duration = Duration::from_millis(5);

/// How long sampling stays at [`FIRST_SAMPLE_GAP`].
pub const FINE_SAMPLING: Duration = Duration::from_millis(500);

/// The gap before the next host sample, `elapsed` after sampling began:
/// [`FIRST_SAMPLE_GAP`] for the first [`FINE_SAMPLING`], so that a workload
/// that reaches its limit in tens or hundreds of milliseconds (a memory hog
/// is OOM-killed in 70-200 ms) is seen climbing to it, then backing off by
/// an eighth of the time past that, up to `interval` (the
/// `--sample-interval` ceiling).
pub fn sample_gap(elapsed: Duration, interval: Duration) -> Duration {
    (elapsed.saturating_sub(FINE_SAMPLING) / 8)
        .clamp(FIRST_SAMPLE_GAP, interval.max(FIRST_SAMPLE_GAP))
}

#[cfg(test)]
mod tests {
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
        let (_, start) = process_stat(me).expect("this process has a stat line");
        assert_eq!(still_alive(&[(me, start)]), 1);
        assert_eq!(
            still_alive(&[(me, start + 1)]),
            0,
            "a reused PID is not the survivor"
        );
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id() as i32;
        let child_start = process_stat(pid).map(|(_, s)| s).unwrap_or(0);
        child.wait().unwrap();
        assert_eq!(
            still_alive(&[(pid, child_start)]),
            0,
            "a reaped process is gone"
        );
    }

    proptest::proptest! {
        #[test]
        fn stat_lines_give_state_and_start_time_whatever_the_command(
            comm in "[ -~]{0,16}",
            state in proptest::sample::select(vec!['R', 'S', 'D', 'Z', 'T', 'I']),
            start in proptest::prelude::any::<u64>(),
            pid in 1i32..4_000_000,
        ) {
            // Fields 4..=21 as the kernel writes them, then starttime (22).
            let middle: Vec<String> = (4..=21).map(|n| (n * 7).to_string()).collect();
            let line = format!("{pid} ({comm}) {state} {} {start} 1234 5678\n", middle.join(" "));
            proptest::prop_assert_eq!(parse_stat(&line), Some((state, start)));
        }

        #[test]
        fn stat_parsing_never_panics(text in "\\PC{0,200}") {
            let _ = parse_stat(&text);
        }
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
