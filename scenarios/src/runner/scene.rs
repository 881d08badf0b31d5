//! One run of a scenario, as its steps: start the containers, watch them
//! (sample, notice exits, kill at the timeout), drain their output, clean
//! them up, and judge what was seen.

use super::host::{busy_ticks, host_snapshot};
use super::live::{still_alive, Live};
use super::{Runner, ScenarioRun};
use crate::catalog::Scenario;
use crate::error::Error;
use crate::expect::{self, Evidence, Observations, Observed};
use crate::metrics::{Metric, NEIGHBOUR_PREFIX};
use crate::observe::{self, HostSnapshot};
use reports::Verdict;
use std::collections::BTreeMap;
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

impl Runner {
    /// Runs `s` once: start its containers, watch them until their entries
    /// exit, drain their output, clean them up, and judge what was seen.
    pub(super) fn run_checked(&self, s: &Scenario) -> ScenarioRun {
        let run = ScenarioRun::for_scenario(s);
        self.wait_if_measuring_cpu(s);
        let mut scene = match self.start(s) {
            Ok(scene) => scene,
            Err(refusal) => {
                return run.all_checks(s, refusal.verdict, &refusal.why, refusal.evidence)
            }
        };
        self.watch(&mut scene);
        self.drain(&mut scene);
        self.clean_up(&mut scene);
        self.judge(scene, run)
    }

    /// Before a CPU measurement, waits for the host to leave the CPUs the
    /// checks need.
    fn wait_if_measuring_cpu(&self, s: &Scenario) {
        let needed = s
            .expectations
            .iter()
            .filter_map(|e| e.needs_cpus)
            .fold(0.0, f64::max);
        if needed > 0.0 {
            self.wait_for_quiet_host(needed, &s.id);
        }
    }

    /// Reads the host, then spawns the main container and the neighbour.
    /// A container that cannot start stops the others (dropping them kills
    /// and removes them) and judges every check.
    fn start<'a>(&self, s: &'a Scenario) -> std::result::Result<Scene<'a>, Refusal> {
        let marker = format!("boxwatch-marker-{}-{}", std::process::id(), s.id);
        let pre = host_snapshot();
        let (tx, rx) = channel::<Line>();
        let mut live: Vec<Live> = Vec::new();
        let members = std::iter::once(("", s.id.clone(), &s.main)).chain(
            s.neighbour
                .as_ref()
                .map(|n| (NEIGHBOUR_PREFIX, format!("{}-neighbour", s.id), n)),
        );
        for (idx, (prefix, name, member)) in members.enumerate() {
            match self.spawn(idx, prefix, &name, member, &marker, tx.clone()) {
                Ok(l) => live.push(l),
                Err(e) => {
                    drop(live); // kills and cleans up what did start
                    return Err(Refusal::not_started(&name, e));
                }
            }
        }
        Ok(Scene {
            scenario: s,
            marker,
            pre,
            rx,
            live,
            timed_out: false,
            stopped: false,
            errors: Vec::new(),
        })
    }

    /// Samples the containers and answers their lines until every entry
    /// has exited; kills them at the scenario's timeout or on an interrupt.
    fn watch(&self, sc: &mut Scene) {
        let deadline = Instant::now() + sc.scenario.timeout;
        let interval = self.cfg.sample_interval.max(Duration::from_millis(10));
        let sampling_from = Instant::now();
        let mut next_sample = sampling_from + FIRST_SAMPLE_GAP;
        loop {
            let now = Instant::now();
            if now >= next_sample {
                for l in sc.live.iter_mut().filter(|l| !l.exited) {
                    self.sample(l);
                }
                next_sample = now + sample_gap(now - sampling_from, interval);
            }
            for l in sc.live.iter_mut().filter(|l| !l.exited) {
                if l.has_exited() {
                    self.on_exit(l);
                }
            }
            if sc.live.iter().all(|l| l.exited) {
                return;
            }
            if !sc.stopped && (now >= deadline || self.interrupted()) {
                sc.stop(now >= deadline);
            }
            let wait = next_sample
                .saturating_duration_since(Instant::now())
                .min(Duration::from_millis(20));
            match sc.rx.recv_timeout(wait) {
                Ok(line) => self.take_line(sc, line),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => std::thread::sleep(wait),
            }
        }
    }

    /// Lines still in the pipes; lingering processes may hold them open
    /// until the runtime kills them, so this is bounded.
    fn drain(&self, sc: &mut Scene) {
        let drain_until = Instant::now() + Duration::from_millis(500);
        while !sc.live.iter().all(|l| l.eof) {
            match sc
                .rx
                .recv_timeout(drain_until.saturating_duration_since(Instant::now()))
            {
                Ok(line) => self.take_line(sc, line),
                Err(_) => break,
            }
        }
    }

    /// One line of a container's stdout, or the end of it.
    fn take_line(&self, sc: &mut Scene, (i, line): Line) {
        match line {
            Some(line) => self.handle_line(&mut sc.live[i], &line, &sc.marker),
            None => sc.live[i].eof = true,
        }
    }

    /// Has the runtime reap and remove each container, then checks which
    /// of the processes left at the exit survived that, and takes the
    /// tail of each workload's stderr.
    fn clean_up(&self, sc: &mut Scene) {
        for l in sc.live.iter_mut() {
            if let Some(c) = l.container.take() {
                match c.wait() {
                    Ok(outcome) => l.collected.exit_code = Some(outcome.exit.shell_code()),
                    Err(e) => sc.errors.push(format!(
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
    }

    /// Reads the host again, turns what was collected into observations,
    /// and judges the scenario's checks (as they apply to this runtime).
    fn judge(&self, mut sc: Scene, mut run: ScenarioRun) -> ScenarioRun {
        let s = sc.scenario;
        let obs = self.observations(&sc, &host_snapshot());
        if sc.timed_out {
            sc.errors.push(format!(
                "timed out after {:?}: the containers were killed",
                s.timeout
            ));
        } else if sc.stopped {
            sc.errors
                .push("interrupted: the containers were killed".into());
        }
        let expectations: Vec<expect::Expectation> = s
            .expectations
            .iter()
            .map(|e| e.for_runtime(self.rt.name()))
            .collect();
        run.judgements = expect::evaluate_all(&expectations, &obs);
        if let Some(dir) = &self.cfg.dump_observations {
            if let Err(e) = self.dump_observations(dir, &s.id, &obs) {
                sc.errors.push(format!(
                    "writing the observations to {}: {e}",
                    dir.display()
                ));
            }
        }
        if self.rt.sandboxed() {
            expect::judge_sandboxed(&expectations, &mut run.judgements);
        }
        if !sc.errors.is_empty() {
            run.error = Some(sc.errors.join("; "));
        }
        run.measurements = measurements(s, &obs);
        if let Some(main) = sc.live.first() {
            run.samples = main.collected.samples.clone();
            run.stderr_tail = main.collected.stderr_tail.clone();
        }
        run
    }

    /// Every container's metrics (the neighbour's with its prefix), and
    /// the scenario's.
    fn observations(&self, sc: &Scene, post: &HostSnapshot) -> Observations {
        let mut obs = Observations::new();
        for l in &sc.live {
            let cx = observe::Context {
                pre: &sc.pre,
                post,
                harness_ns: &self.harness_ns,
                workload: l.member.workload.kind(),
                ticks_per_sec: self.ticks_per_sec,
            };
            let o = observe::observe(&l.collected, &cx);
            obs.extend(o.into_iter().map(|(k, v)| (format!("{}{k}", l.prefix), v)));
        }
        observe::scenario_metrics(&mut obs, self.cpus);
        obs
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
}

/// Host figures every scenario reports when it has them.
const CORE_MEASUREMENTS: [&str; 4] = [
    Metric::MemoryPeakBytes.as_str(),
    Metric::OomKills.as_str(),
    Metric::PidsPeak.as_str(),
    Metric::ExitCode.as_str(),
];

/// CPU figures, reported for the workloads that measure CPU.
const CPU_MEASUREMENTS: [&str; 9] = [
    Metric::CpuShare.as_str(),
    Metric::CpuContentionCpus.as_str(),
    Metric::ThreadsCpuShare.as_str(),
    Metric::CpuWaitCpus.as_str(),
    Metric::NrPeriods.as_str(),
    Metric::NrThrottled.as_str(),
    Metric::ThrottledSecs.as_str(),
    Metric::HostBusyCpus.as_str(),
    Metric::HostSpareCpus.as_str(),
];

/// A line of a container's stdout (`None`: its end), with the container's
/// index in [`Scene::live`].
pub(super) type Line = (usize, Option<String>);

/// One scenario while it runs: its containers, the channel their output
/// comes on, and what went wrong on the way.
struct Scene<'a> {
    scenario: &'a Scenario,
    /// The mount marker the probe-inside workload mounts, to look for on
    /// the host.
    marker: String,
    /// The host before the containers started.
    pre: HostSnapshot,
    rx: Receiver<Line>,
    live: Vec<Live<'a>>,
    /// Killed at the scenario's timeout.
    timed_out: bool,
    /// Killed (at the timeout, or on an interrupt).
    stopped: bool,
    /// Why the scenario was not carried out as it should have been.
    errors: Vec<String>,
}

impl Scene<'_> {
    /// Kills every container (at the timeout when `timed_out`, else on an
    /// interrupt); the watch goes on until their entries have exited.
    fn stop(&mut self, timed_out: bool) {
        self.timed_out = timed_out;
        self.stopped = true;
        for l in &self.live {
            let _ = l.killer.kill();
        }
    }
}

/// Why a scenario's containers could not be started: every check gets
/// this verdict.
struct Refusal {
    verdict: Verdict,
    why: String,
    evidence: Option<Evidence>,
}

impl Refusal {
    /// Container `name` did not start. The runtime's documented refusal is
    /// evidence of what it does not offer (`unsupported`); a controller it
    /// says is missing is not (the judge found it available), so that and
    /// anything else is an error.
    fn not_started(name: &str, e: Error) -> Refusal {
        let why = format!("starting container {name}: {}", runtime::error::chain(&e));
        match e {
            Error::Runtime(runtime::Error::OciUnsupported { runtime, what }) => Refusal {
                verdict: Verdict::Unsupported,
                why,
                evidence: Some(Evidence::Runtime {
                    runtime,
                    detail: what,
                }),
            },
            _ => Refusal {
                verdict: Verdict::Error,
                why,
                evidence: None,
            },
        }
    }
}

/// The figures a scenario reports: those its checks use, and the core
/// host figures (CPU ones only for workloads that measure CPU: elsewhere
/// they are noise); numbers and booleans (as 1 and 0) only.
fn measurements(s: &Scenario, obs: &Observations) -> BTreeMap<String, f64> {
    let wanted = |k: &str| {
        let (member, base) = match k.strip_prefix(NEIGHBOUR_PREFIX) {
            Some(b) => (s.neighbour.as_ref().unwrap_or(&s.main), b),
            None => (&s.main, k),
        };
        s.expectations.iter().any(|e| e.metric == k)
            || CORE_MEASUREMENTS.contains(&base)
            || (CPU_MEASUREMENTS.contains(&base) && member.workload.kind().measures_cpu())
            || (base == Metric::MemoryLimitHits.as_str()
                && member.container.limits.memory.is_some())
    };
    obs.iter()
        .filter(|(k, _)| wanted(k))
        .filter_map(|(k, v)| match v {
            Observed::Value(expect::Value::Number(n)) if n.is_finite() => Some((k.clone(), *n)),
            Observed::Value(expect::Value::Bool(b)) => {
                Some((k.clone(), if *b { 1.0 } else { 0.0 }))
            }
            _ => None,
        })
        .collect()
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
