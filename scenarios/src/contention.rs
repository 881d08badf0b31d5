//! Whether a CPU shortfall is the host's fault or the limit's: the
//! container's own run-queue wait, against its throttled time.
//!
//! A spinning thread is always runnable: every nanosecond of the window it
//! either runs or waits on a run queue (`/proc/<pid>/task/<tid>/schedstat`,
//! second field). It waits for two reasons: its cgroup was throttled (the
//! limit doing its job; `cpu.stat` throttled time), or other processes held
//! the CPUs (contention). The wait beyond the throttled time is CPU the
//! container wanted and the host did not give; a shortfall under the quota
//! that this wait covers is inconclusive (the run is retried), one it does
//! not cover is a broken limit. An excess over the quota is never excused.
//!
//! The threads' own run time (first field) must match what the judged
//! cgroup was charged: threads that ran outside it (a container not placed
//! in its cgroup) excuse nothing. The threads followed are those of the
//! container's first process (the CPU workloads are threads of one
//! process); a cgroup charged for more than they ran holds other processes
//! too, and then the host's spare CPUs decide.

use crate::expect::{Condition, Expectation, Judgement, Observations, Observed, Value};
use crate::metrics::Metric;
use reports::Verdict;
use std::collections::BTreeMap;

/// Metric: the container's run-queue wait beyond its throttled time, in
/// CPUs over the measured window.
pub const CONTENTION_CPUS: &str = Metric::CpuContentionCpus.as_str();
/// Metric: the run time of the container's threads (schedstat), in CPUs.
pub const THREADS_CPU_SHARE: &str = Metric::ThreadsCpuShare.as_str();
/// Metric: the run-queue wait of the container's threads, in CPUs.
pub const WAIT_CPUS: &str = Metric::CpuWaitCpus.as_str();

/// Words that mark a judgement as inconclusive (a shortfall the host's
/// load explains): such a scenario is run again.
pub const INCONCLUSIVE: &str = "(inconclusive:";

/// Whether `j` is an `error` because the host's load spoiled the
/// measurement (see [`INCONCLUSIVE`]).
pub fn is_inconclusive(j: &Judgement) -> bool {
    j.verdict == Verdict::Error && j.observed.contains(INCONCLUSIVE)
}

/// `(run_ns, wait_ns)`: the first two fields of a schedstat line.
pub fn parse_schedstat(text: &str) -> Option<(u64, u64)> {
    let mut f = text.split_whitespace();
    let run = f.next()?.parse().ok()?;
    let wait = f.next()?.parse().ok()?;
    Some((run, wait))
}

/// A thread's (run_ns, wait_ns) from schedstat.
type RunWait = (u64, u64);

/// The cumulative figures at one mark of the window.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct SchedMark {
    /// Run time of the container's threads so far (ns).
    pub run_ns: u64,
    /// Run-queue wait of the container's threads so far (ns).
    pub wait_ns: u64,
    /// The cgroup's throttled time so far (ns), when the host shows it.
    pub throttled_ns: Option<u64>,
}

/// Follows the threads of a container's first process from sample to
/// sample, so that threads which end before the window does still count
/// with what they had used and waited.
#[derive(Debug, Clone, Default)]
pub struct ThreadTracker {
    /// tid -> (baseline, last seen).
    threads: BTreeMap<u32, (RunWait, RunWait)>,
    sampled: bool,
    /// The first thread the tracker could not read, if it could not.
    pub error: Option<String>,
}

impl ThreadTracker {
    /// Reads every thread of `pid`. A thread seen for the first time after
    /// the first sample was born since the last one: it counts from zero.
    pub fn sample(&mut self, pid: i32) {
        let dir = format!("/proc/{pid}/task");
        let Ok(tasks) = std::fs::read_dir(&dir) else {
            // The process is gone: its threads keep their last figures.
            return;
        };
        let first = !self.sampled;
        self.sampled = true;
        for t in tasks.flatten() {
            let Some(tid) = t.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            let path = t.path().join("schedstat");
            let Some(now) = std::fs::read_to_string(&path)
                .ok()
                .and_then(|s| parse_schedstat(&s))
            else {
                // A thread may end between the listing and the read.
                if t.path().exists() && self.error.is_none() {
                    self.error = Some(format!("{} could not be read", path.display()));
                }
                continue;
            };
            let base = if first { now } else { (0, 0) };
            let e = self.threads.entry(tid).or_insert((base, now));
            e.1 = now;
        }
    }

    /// The totals since the first sample, if a sample was taken.
    pub fn totals(&self) -> Option<(u64, u64)> {
        self.sampled.then(|| {
            self.threads
                .values()
                .fold((0, 0), |(r, w), ((br, bw), (lr, lw))| {
                    (r + lr.saturating_sub(*br), w + lw.saturating_sub(*bw))
                })
        })
    }
}

/// The contention metrics of a window between two marks (`dt` seconds) in
/// which the cgroup was charged `share` CPUs.
pub fn metrics(a: &SchedMark, b: &SchedMark, dt: f64, share: f64) -> Vec<(&'static str, Observed)> {
    if dt < 0.01 {
        return Vec::new();
    }
    let run = b.run_ns.saturating_sub(a.run_ns) as f64 / 1e9 / dt;
    let wait = b.wait_ns.saturating_sub(a.wait_ns) as f64 / 1e9 / dt;
    let mut out = vec![(THREADS_CPU_SHARE, run.into()), (WAIT_CPUS, wait.into())];
    // Threads that ran where the cgroup was not charged for them are not
    // this cgroup's: their waits say nothing about its limit.
    // The other way round (the cgroup charged for more than the threads
    // ran) means other processes in it, whose wait is not followed: not
    // known, and the host's spare CPUs decide.
    let margin = 0.05_f64.max(0.1 * share);
    let contention = match (a.throttled_ns, b.throttled_ns) {
        _ if run > share + margin => Observed::Missing(format!(
            "the container's threads ran {run:.4} CPUs while its cgroup was charged {share:.4}: they are not (all) in the judged cgroup"
        )),
        _ if run < share - margin => Observed::Missing(format!(
            "the cgroup was charged {share:.4} CPUs, its first process's threads ran {run:.4}: the wait of its other processes is not followed"
        )),
        (Some(x), Some(y)) => {
            let throttled = y.saturating_sub(x) as f64 / 1e9 / dt;
            (wait - throttled).max(0.0).into()
        }
        _ => Observed::Missing("the cgroup shows no throttled time".into()),
    };
    out.push((CONTENTION_CPUS, contention));
    out
}

fn number(obs: &Observations, k: &str) -> Option<f64> {
    match obs.get(k) {
        Some(Observed::Value(Value::Number(n))) => Some(*n),
        _ => None,
    }
}

/// The lower bound a measurement fell short of, if it did.
fn shortfall_bound(c: &Condition, v: f64) -> Option<f64> {
    match c {
        Condition::Near { target, tolerance } if v < *target => Some(target - tolerance),
        Condition::Range {
            at_least: Some(lo), ..
        } if v < *lo => Some(*lo),
        _ => None,
    }
}

/// Judges CPU shortfalls of the main container by its own run-queue wait.
/// For each check with `needs_cpus` that broke by falling short: if the
/// container's contention figure is there, the shortfall is inconclusive
/// (`error`) when the CPU the container waited for beyond its throttling
/// covers it, and stays broken otherwise; a count (`nr_throttled`) short of
/// its bound is inconclusive only when the container's `cpu_share`
/// shortfall was. Without the figure (or for the neighbour, whose wait is
/// partly the scenario's own doing) the host's spare CPUs decide, as in
/// [`crate::expect::judge_contention`]. Checks that held, excesses and
/// checks without `needs_cpus` are left alone.
pub fn judge(
    expectations: &[Expectation],
    judgements: Vec<Judgement>,
    obs: &Observations,
    spare: Option<f64>,
) -> Vec<Judgement> {
    let mut window = Window {
        contention: contention_figure(obs),
        // A quota set too low is not the host's fault.
        quota: number(obs, Metric::CpuQuota.as_str()).filter(|q| q.is_finite()),
        share_explained: None,
        spare,
    };
    window.share_explained = window.share_explained(expectations, obs);
    expectations
        .iter()
        .zip(judgements)
        .map(|(e, j)| window.judge(e, j))
        .collect()
}

/// The wait figure; `Err` when it was measured and proves nothing (the
/// threads ran outside the judged cgroup): then nothing is excused.
fn contention_figure(obs: &Observations) -> Option<Result<f64, String>> {
    match obs.get(CONTENTION_CPUS) {
        Some(Observed::Value(Value::Number(n))) => Some(Ok(*n)),
        Some(Observed::Missing(why)) if why.contains("not (all) in the judged cgroup") => {
            Some(Err(why.clone()))
        }
        _ => None,
    }
}

/// What the main container's measured window says about contention.
struct Window {
    /// See [`contention_figure`].
    contention: Option<Result<f64, String>>,
    /// The quota cgroupfs holds, in CPUs, when finite.
    quota: Option<f64>,
    /// Whether the main container's cpu_share shortfall is explained.
    share_explained: Option<bool>,
    /// The host's spare CPUs, for what the wait cannot decide.
    spare: Option<f64>,
}

impl Window {
    /// What the container could have had without waiting: `v` plus the
    /// wait `c`, but never more than the quota.
    fn achievable(&self, v: f64, c: f64) -> f64 {
        self.quota.map_or(v + c, |q| (v + c).min(q))
    }

    fn share_explained(&self, expectations: &[Expectation], obs: &Observations) -> Option<bool> {
        let e = expectations
            .iter()
            .find(|e| e.metric == Metric::CpuShare.as_str())?;
        let share = number(obs, Metric::CpuShare.as_str())?;
        let c = self.contention.clone()?.ok()?;
        let bound = shortfall_bound(&e.condition, share)?;
        Some(self.achievable(share, c) >= bound)
    }

    /// One check: left alone, excused as inconclusive, or kept broken with
    /// the reason the wait does not excuse it.
    fn judge(&self, e: &Expectation, j: Judgement) -> Judgement {
        let own = !e.metric.starts_with(crate::metrics::NEIGHBOUR_PREFIX);
        if e.needs_cpus.is_none() || !j.broken() || !own || self.contention.is_none() {
            return crate::expect::judge_contention(e, j, self.spare);
        }
        let c = match &self.contention {
            Some(Ok(c)) => *c,
            Some(Err(why)) => {
                return Judgement {
                    observed: format!("{} (not excused: {why})", j.observed),
                    ..j
                }
            }
            None => 0.0,
        };
        let Some(v) = j.value else { return j };
        let Some(bound) = shortfall_bound(&e.condition, v) else {
            return j;
        };
        let explained = if e.metric.ends_with(Metric::CpuShare.as_str()) {
            self.achievable(v, c) >= bound
        } else {
            self.share_explained == Some(true)
        };
        if !explained {
            let capped = match self.quota {
                Some(q) if v + c > q => format!(", and its quota in cgroupfs is {q:.4}"),
                _ => String::new(),
            };
            return Judgement {
                observed: format!(
                    "{} (not contention: the container waited {c:.4} CPUs for other processes beyond its throttling{capped})",
                    j.observed
                ),
                ..j
            };
        }
        Judgement {
            verdict: Verdict::Error,
            observed: format!(
                "{} {INCONCLUSIVE} the container waited {c:.4} CPUs for other processes beyond its throttling, enough to explain the shortfall)",
                j.observed
            ),
            ..j
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expect::evaluate;
    use proptest::prelude::*;

    fn exp(metric: &str, condition: Condition) -> Expectation {
        Expectation {
            check: metric.into(),
            title: "t".into(),
            metric: metric.into(),
            condition,
            required: true,
            pass: Verdict::Enforced,
            fail: Verdict::NotEnforced,
            needs_cpus: Some(1.5),
            attack: None,
            informational_on: Default::default(),
            explained_on: Default::default(),
            not_on_sandbox: None,
        }
    }

    fn scenario() -> Vec<Expectation> {
        vec![
            exp(
                "cpu_share",
                Condition::Near {
                    target: 1.5,
                    tolerance: 0.02,
                },
            ),
            exp(
                "nr_throttled",
                Condition::Range {
                    at_least: Some(1.0),
                    at_most: None,
                },
            ),
        ]
    }

    fn run(share: f64, throttled: f64, contention: Option<f64>, spare: f64) -> Vec<Judgement> {
        let es = scenario();
        let mut obs = Observations::new();
        obs.insert("cpu_share".into(), share.into());
        obs.insert("nr_throttled".into(), throttled.into());
        if let Some(c) = contention {
            obs.insert(CONTENTION_CPUS.into(), c.into());
        }
        let plain = es.iter().map(|e| evaluate(e, &obs)).collect();
        judge(&es, plain, &obs, Some(spare))
    }

    #[test]
    fn the_false_alarm_seen_on_a_busy_host_is_inconclusive() {
        // cpu_share 1.4516 with 1.748 CPUs spare: a failure by the host's
        // figure, but the container waited 0.06 CPUs beyond its throttling.
        let j = run(1.4516, 40.0, Some(0.06), 1.748);
        assert_eq!(j[0].verdict, Verdict::Error);
        assert!(is_inconclusive(&j[0]), "{}", j[0].observed);
        assert!(j[1].held());
    }

    #[test]
    fn a_quota_set_too_low_fails_on_a_busy_host() {
        // Halved quota: throttled all along, no wait beyond it; the host
        // was busy, which the spare-CPU figure alone would have excused.
        let j = run(0.75, 40.0, Some(0.01), 0.2);
        assert_eq!(j[0].verdict, Verdict::NotEnforced);
        assert!(
            j[0].observed.contains("not contention"),
            "{}",
            j[0].observed
        );
    }

    #[test]
    fn a_wait_never_excuses_more_than_the_quota_in_cgroupfs() {
        // Halved quota on a saturated host: 0.26 CPUs, 1.7 waited, but
        // cgroupfs holds 0.75: the shortfall is the quota's.
        let es = scenario();
        let mut obs = Observations::new();
        obs.insert("cpu_share".into(), 0.26.into());
        obs.insert("nr_throttled".into(), 0.0.into());
        obs.insert("cpu_quota".into(), 0.75.into());
        obs.insert(CONTENTION_CPUS.into(), 1.7.into());
        let plain = es.iter().map(|e| evaluate(e, &obs)).collect();
        let j = judge(&es, plain, &obs, Some(0.2));
        assert_eq!(j[0].verdict, Verdict::NotEnforced, "{}", j[0].observed);
        assert!(j[0].observed.contains("quota in cgroupfs is 0.7500"));
        assert_eq!(j[1].verdict, Verdict::NotEnforced);
        // The right quota: inconclusive.
        obs.insert("cpu_quota".into(), 1.5.into());
        let plain = es.iter().map(|e| evaluate(e, &obs)).collect();
        let j = judge(&es, plain, &obs, Some(0.2));
        assert!(is_inconclusive(&j[0]) && is_inconclusive(&j[1]));
    }

    #[test]
    fn an_excess_is_never_excused_nor_a_missing_throttle_with_it() {
        let j = run(1.9, 0.0, Some(0.5), 0.0);
        assert_eq!(j[0].verdict, Verdict::NotEnforced);
        assert_eq!(j[1].verdict, Verdict::NotEnforced);
    }

    #[test]
    fn without_the_wait_figure_the_spare_cpus_decide() {
        let j = run(1.45, 40.0, None, 1.2);
        assert!(is_inconclusive(&j[0]));
        let j = run(1.45, 40.0, None, 1.8);
        assert_eq!(j[0].verdict, Verdict::NotEnforced);
    }

    #[test]
    fn threads_outside_the_judged_cgroup_excuse_nothing() {
        let a = SchedMark {
            throttled_ns: Some(0),
            ..SchedMark::default()
        };
        let b = SchedMark {
            run_ns: 1_600_000_000,
            wait_ns: 3_000_000_000,
            throttled_ns: Some(0),
        };
        let m: BTreeMap<_, _> = metrics(&a, &b, 5.0, 0.0).into_iter().collect();
        assert!(matches!(m[CONTENTION_CPUS], Observed::Missing(_)));
        let m: BTreeMap<_, _> = metrics(&a, &b, 5.0, 0.32).into_iter().collect();
        assert_eq!(m[CONTENTION_CPUS], Observed::from(0.6));
        // Charged for more than the followed threads ran: not known.
        let m: BTreeMap<_, _> = metrics(&a, &b, 5.0, 1.0).into_iter().collect();
        let Observed::Missing(why) = &m[CONTENTION_CPUS] else {
            panic!("{:?}", m[CONTENTION_CPUS])
        };
        assert!(!why.contains("not (all) in the judged cgroup"), "{why}");
    }

    #[test]
    fn threads_outside_the_cgroup_do_not_fall_back_to_the_spare_cpus() {
        let es = scenario();
        let mut obs = Observations::new();
        obs.insert("cpu_share".into(), 0.0.into());
        obs.insert("nr_throttled".into(), 0.0.into());
        obs.insert(
            CONTENTION_CPUS.into(),
            Observed::Missing("they are not (all) in the judged cgroup".into()),
        );
        let plain = es.iter().map(|e| evaluate(e, &obs)).collect();
        let j = judge(&es, plain, &obs, Some(0.0));
        assert_eq!(j[0].verdict, Verdict::NotEnforced, "{}", j[0].observed);
        assert_eq!(j[1].verdict, Verdict::NotEnforced);
    }

    #[test]
    fn schedstat_lines_parse() {
        assert_eq!(parse_schedstat("123 456 7\n"), Some((123, 456)));
        assert_eq!(parse_schedstat("123\n"), None);
        let me = std::fs::read_to_string("/proc/self/schedstat").unwrap();
        assert!(parse_schedstat(&me).is_some());
    }

    #[test]
    fn the_tracker_keeps_threads_that_ended() {
        let mut t = ThreadTracker::default();
        let me = std::process::id() as i32;
        t.sample(me);
        let h = std::thread::spawn(|| {
            let t0 = std::time::Instant::now();
            while t0.elapsed() < std::time::Duration::from_millis(50) {}
        });
        std::thread::sleep(std::time::Duration::from_millis(20));
        t.sample(me);
        h.join().unwrap();
        t.sample(me);
        let (run, _) = t.totals().unwrap();
        assert!(run >= 10_000_000, "{run}");
        assert!(t.error.is_none());
    }

    proptest! {
        #[test]
        fn schedstat_parsing_never_panics(s in "\\PC{0,64}") {
            let _ = parse_schedstat(&s);
        }

        #[test]
        fn contention_only_ever_excuses_a_shortfall(
            share in 0f64..3.0,
            contention in proptest::option::of(0f64..2.0),
            spare in 0f64..2.0,
        ) {
            let j = run(share, 10.0, contention, spare);
            if share > 1.52 {
                prop_assert_eq!(j[0].verdict, Verdict::NotEnforced);
            }
            if j[0].verdict == Verdict::Error {
                prop_assert!(share < 1.5);
            }
            if let Some(c) = contention {
                prop_assert_eq!(is_inconclusive(&j[0]), share < 1.48 && share + c >= 1.48);
            }
        }
    }
}
