//! Expectations and their evaluation: a pure function from what was
//! observed to a verdict. No I/O here.

pub use reports::Evidence;
use reports::Verdict;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A value a metric can take.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Value {
    /// A yes/no observation (`pid_ns_isolated`).
    Bool(bool),
    /// JSON has no infinity (an unlimited limit) or NaN: those are written
    /// as the strings `@inf`, `@-inf` and `@nan`, and read back as numbers.
    #[serde(with = "nonfinite")]
    Number(f64),
    /// A text observation (a hostname, a mount's name).
    Text(String),
}

/// Serde of an `f64` that keeps infinities and NaN (see [`Value::Number`]).
mod nonfinite {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        match *v {
            v if v.is_finite() => s.serialize_f64(v),
            v if v.is_nan() => s.serialize_str("@nan"),
            v if v > 0.0 => s.serialize_str("@inf"),
            _ => s.serialize_str("@-inf"),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Repr {
            Number(f64),
            Text(String),
        }
        match Repr::deserialize(d)? {
            Repr::Number(n) => Ok(n),
            Repr::Text(t) => match t.as_str() {
                "@inf" => Ok(f64::INFINITY),
                "@-inf" => Ok(f64::NEG_INFINITY),
                "@nan" => Ok(f64::NAN),
                other => Err(serde::de::Error::custom(format!(
                    "{other:?} is not a number"
                ))),
            },
        }
    }
}

impl Value {
    fn kind(&self) -> &'static str {
        match self {
            Value::Bool(_) => "a boolean",
            Value::Number(_) => "a number",
            Value::Text(_) => "text",
        }
    }
}

/// What the harness found for one metric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Observed {
    /// The value the harness saw.
    Value(Value),
    /// The kernel, the runtime or the host positively lacks the feature
    /// (the evidence says how it is known): not a failure.
    Unsupported(Evidence),
    /// The harness could not observe it (named with the file and the
    /// errno when a read failed): the check ends in `error`.
    Missing(String),
}

impl From<f64> for Observed {
    fn from(v: f64) -> Self {
        Observed::Value(Value::Number(v))
    }
}
impl From<u64> for Observed {
    fn from(v: u64) -> Self {
        Observed::Value(Value::Number(v as f64))
    }
}
impl From<bool> for Observed {
    fn from(v: bool) -> Self {
        Observed::Value(Value::Bool(v))
    }
}
impl From<String> for Observed {
    fn from(v: String) -> Self {
        Observed::Value(Value::Text(v))
    }
}
impl From<&str> for Observed {
    fn from(v: &str) -> Self {
        Observed::Value(Value::Text(v.to_string()))
    }
}

/// Everything observed during one scenario, by metric name.
pub type Observations = BTreeMap<String, Observed>;

/// The condition a metric must meet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Condition {
    /// The value is exactly this one.
    Equals(Value),
    /// Inclusive bounds; at least one is present.
    Range {
        /// The smallest value that holds, in the metric's unit.
        at_least: Option<f64>,
        /// The largest value that holds, in the metric's unit.
        at_most: Option<f64>,
    },
    /// |value - target| <= tolerance.
    Near {
        /// The value aimed at, in the metric's unit.
        target: f64,
        /// The largest distance from `target` that holds, in the metric's
        /// unit (absolute, not relative).
        tolerance: f64,
    },
}

/// One expectation of a scenario, ready to evaluate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Expectation {
    /// Check id, unique within the scenario (`cpu-share`).
    pub check: String,
    /// One line: what holding the check shows.
    pub title: String,
    /// The metric it judges ([`crate::metrics`]), e.g. `cpu_share`.
    pub metric: String,
    /// What the metric's value must meet.
    pub condition: Condition,
    /// Required checks decide the scenario's status; informational ones are
    /// reported as findings only.
    pub required: bool,
    /// Verdict when the condition holds (`isolated` or `enforced`; `leaked`
    /// or `not-enforced` for a scenario that demonstrates a documented leak).
    pub pass: Verdict,
    /// Verdict when it does not: the opposite of `pass`.
    pub fail: Verdict,
    /// CPUs this measurement needs free on the host: a shortfall while the
    /// host's other processes left fewer is inconclusive, not a failure.
    pub needs_cpus: Option<f64>,
    /// What an attacker could do where the check leaks, in one line (the
    /// report shows it on a broken check; nothing is ever tried).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attack: Option<String>,
    /// Runtimes (`builtin`, `runc`, `crun`) on which the check is only
    /// informational, with the reason.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub informational_on: BTreeMap<String, String>,
    /// Runtimes whose verdict differs from the others' by their own model
    /// or defaults (an engine's), with why: said in the check's title
    /// there, the check staying what it is (required or not).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub explained_on: BTreeMap<String, String>,
    /// Why the check does not apply to a sandboxed runtime (gVisor), if it
    /// does not: there it is `not-applicable` with this reason. None: it
    /// applies (the default).
    #[serde(default)]
    pub not_on_sandbox: Option<String>,
}

impl Expectation {
    /// This expectation as judged on `runtime`: informational there (and
    /// saying why in its title) when the catalog says so.
    pub fn for_runtime(&self, runtime: &str) -> Expectation {
        let mut e = self.clone();
        if let Some(why) = self.informational_on.get(runtime) {
            e.required = false;
            e.title = format!("{} (informational on {runtime}: {why})", e.title);
        }
        if let Some(why) = self.explained_on.get(runtime) {
            e.title = format!("{} ({runtime}: {why})", e.title);
        }
        e
    }
}

/// The judgement of one expectation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Judgement {
    /// The [`Expectation::check`] judged.
    pub check: String,
    /// The expectation's title, as judged on the runtime.
    pub title: String,
    /// The metric judged.
    pub metric: String,
    /// The verdict reached.
    pub verdict: Verdict,
    /// The verdict that means the check held.
    pub expected_verdict: Verdict,
    /// Whether the check decides the scenario's status
    /// ([`Expectation::required`]).
    pub required: bool,
    /// The condition, in words (`0.20 ± 0.02`).
    pub expected: String,
    /// What was seen (`0.2013`), or why nothing was.
    pub observed: String,
    /// The numeric observation, for reports and baselines.
    pub value: Option<f64>,
    /// Why the check is `unsupported` (always set when it is).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<Evidence>,
    /// What an attacker could do if the check leaked ([`Expectation::attack`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attack: Option<String>,
}

impl Judgement {
    /// Whether the check reached its expected verdict.
    pub fn held(&self) -> bool {
        self.verdict == self.expected_verdict
    }
    /// Whether the check was judged and did not hold (not an `error` or
    /// `unsupported`).
    pub fn broken(&self) -> bool {
        !self.held()
            && !matches!(
                self.verdict,
                Verdict::Error | Verdict::Unsupported | Verdict::NotApplicable
            )
    }
}

/// Evaluates one expectation against the observations.
pub fn evaluate(e: &Expectation, observations: &Observations) -> Judgement {
    let expected = describe_condition(&e.metric, &e.condition);
    let judge = |verdict: Verdict, observed: String, value: Option<f64>| Judgement {
        check: e.check.clone(),
        title: e.title.clone(),
        metric: e.metric.clone(),
        verdict,
        expected_verdict: e.pass,
        required: e.required,
        expected: expected.clone(),
        observed,
        value,
        evidence: None,
        attack: e.attack.clone(),
    };
    let value = match observations.get(&e.metric) {
        None => {
            return judge(
                Verdict::Error,
                format!("{} was not observed", e.metric),
                None,
            )
        }
        Some(Observed::Missing(why)) => return judge(Verdict::Error, why.clone(), None),
        Some(Observed::Unsupported(evidence)) => {
            return Judgement {
                evidence: Some(evidence.clone()),
                ..judge(Verdict::Unsupported, evidence.describe(), None)
            }
        }
        Some(Observed::Value(v)) => v,
    };
    let number = match value {
        Value::Number(n) => Some(*n),
        _ => None,
    };
    let observed = format_value(&e.metric, value);
    let held = match (&e.condition, value) {
        (Condition::Equals(Value::Number(want)), Value::Number(got)) => {
            Some((want - got).abs() <= f64::EPSILON * want.abs().max(1.0))
        }
        (Condition::Equals(want), got)
            if std::mem::discriminant(want) == std::mem::discriminant(got) =>
        {
            Some(want == got)
        }
        (Condition::Range { at_least, at_most }, Value::Number(got)) if !got.is_nan() => {
            Some(at_least.is_none_or(|lo| *got >= lo) && at_most.is_none_or(|hi| *got <= hi))
        }
        (Condition::Near { target, tolerance }, Value::Number(got)) if !got.is_nan() => {
            Some((got - target).abs() <= *tolerance)
        }
        _ => None,
    };
    match held {
        Some(true) => judge(e.pass, observed, number),
        Some(false) => judge(e.fail, observed, number),
        None => judge(
            Verdict::Error,
            format!(
                "{observed} ({}) cannot be compared with {expected}",
                value.kind()
            ),
            number,
        ),
    }
}

/// The metric holding the CPUs left free by the host's other processes
/// during a scenario's measurement (see [`judge_contention`]).
pub const SPARE_CPUS: &str = crate::metrics::Metric::HostSpareCpus.as_str();

/// On a sandboxed runtime, the judgements of checks that do not apply to
/// one become `not-applicable`, with the catalog's reason (whatever was
/// observed: on the host that is the sandbox, not the workload).
pub fn judge_sandboxed(expectations: &[Expectation], judgements: &mut [Judgement]) {
    for (e, j) in expectations.iter().zip(judgements.iter_mut()) {
        if let Some(why) = &e.not_on_sandbox {
            j.verdict = Verdict::NotApplicable;
            j.observed = format!("not applicable: sandboxed ({why}); observed {}", j.observed);
            j.value = None;
        }
    }
}

/// Evaluates every expectation, then judges CPU shortfalls by the
/// container's own run-queue wait ([`crate::contention::judge`]), or by the
/// host's spare CPUs ([`judge_contention`]) where that is not known.
pub fn evaluate_all(expectations: &[Expectation], observations: &Observations) -> Vec<Judgement> {
    let spare = match observations.get(SPARE_CPUS) {
        Some(Observed::Value(Value::Number(n))) => Some(*n),
        _ => None,
    };
    let plain = expectations
        .iter()
        .map(|e| evaluate(e, observations))
        .collect();
    crate::contention::judge(expectations, plain, observations, spare)
}

/// A CPU measurement that fell short (below a `near` target or an
/// `at_least` bound) while the host's other processes left fewer CPUs free
/// than it needs says nothing about the limit: it becomes `error`
/// (inconclusive) instead of a broken guarantee. An excess over a limit is
/// never excused, and a check that held is left alone.
pub fn judge_contention(e: &Expectation, j: Judgement, spare_cpus: Option<f64>) -> Judgement {
    let (Some(needed), Some(spare)) = (e.needs_cpus, spare_cpus) else {
        return j;
    };
    if !j.broken() || spare >= needed {
        return j;
    }
    let short = match (&e.condition, j.value) {
        (Condition::Near { target, .. }, Some(v)) => v < *target,
        (
            Condition::Range {
                at_least: Some(lo), ..
            },
            Some(v),
        ) => v < *lo,
        _ => false,
    };
    if !short {
        return j;
    }
    Judgement {
        verdict: Verdict::Error,
        observed: format!(
            "{} {} the host's other processes left {spare:.2} CPUs free, this measurement needs {needed})",
            j.observed,
            crate::contention::INCONCLUSIVE
        ),
        ..j
    }
}

/// The condition in words, with the metric's unit.
pub fn describe_condition(metric: &str, c: &Condition) -> String {
    let num = |v: f64| format_number(metric, v);
    match c {
        Condition::Equals(v) => format!("= {}", format_value(metric, v)),
        Condition::Range {
            at_least: Some(lo),
            at_most: Some(hi),
        } => format!("{} .. {}", num(*lo), num(*hi)),
        Condition::Range {
            at_least: Some(lo),
            at_most: None,
        } => format!(">= {}", num(*lo)),
        Condition::Range {
            at_least: None,
            at_most: Some(hi),
        } => format!("<= {}", num(*hi)),
        Condition::Range {
            at_least: None,
            at_most: None,
        } => "any value".into(),
        Condition::Near { target, tolerance } => {
            format!("{} ± {}", num(*target), num(*tolerance))
        }
    }
}

/// A value shown with its unit: byte metrics in MiB, shares and seconds
/// with four decimals, counts as integers.
pub fn format_value(metric: &str, v: &Value) -> String {
    match v {
        Value::Bool(b) => b.to_string(),
        Value::Text(t) => format!("{t:?}"),
        Value::Number(n) => format_number(metric, *n),
    }
}

fn format_number(metric: &str, n: f64) -> String {
    if !n.is_finite() {
        return n.to_string();
    }
    if metric.ends_with("_bytes") {
        let mib = n / (1024.0 * 1024.0);
        if n.fract() == 0.0 && (n as u64).is_multiple_of(1 << 20) {
            return format!("{mib:.0} MiB");
        }
        return format!("{mib:.2} MiB");
    }
    if n.fract() == 0.0 && n.abs() < 1e15 {
        return format!("{}", n as i64);
    }
    format!("{n:.4}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn exp(metric: &str, condition: Condition) -> Expectation {
        Expectation {
            check: "c".into(),
            title: "t".into(),
            metric: metric.into(),
            condition,
            required: true,
            pass: Verdict::Enforced,
            fail: Verdict::NotEnforced,
            needs_cpus: None,
            attack: None,
            informational_on: BTreeMap::new(),
            explained_on: BTreeMap::new(),
            not_on_sandbox: None,
        }
    }

    fn obs(metric: &str, o: impl Into<Observed>) -> Observations {
        [(metric.to_string(), o.into())].into_iter().collect()
    }

    /// On a sandbox, a check marked in the catalog is not-applicable
    /// whatever it observed (a leak on the sandbox process is not the
    /// workload's); the others keep their verdicts.
    #[test]
    fn sandboxed_checks_that_do_not_apply_are_not_applicable() {
        let mut ns = exp("ns_differs.pid", Condition::Equals(Value::Bool(true)));
        ns.pass = Verdict::Isolated;
        ns.fail = Verdict::Leaked;
        ns.not_on_sandbox = Some("the host sees the sandbox".into());
        let limit = exp(
            "pids_peak",
            Condition::Range {
                at_least: None,
                at_most: Some(64.0),
            },
        );
        let o: Observations = [
            ("ns_differs.pid".to_string(), Observed::from(false)),
            ("pids_peak".to_string(), Observed::from(80.0)),
        ]
        .into_iter()
        .collect();
        let es = [ns, limit];
        let mut j = evaluate_all(&es, &o);
        assert_eq!(j[0].verdict, Verdict::Leaked);
        judge_sandboxed(&es, &mut j);
        assert_eq!(j[0].verdict, Verdict::NotApplicable);
        assert!(j[0]
            .observed
            .contains("not applicable: sandboxed (the host sees the sandbox)"));
        assert!(!j[0].broken() && !j[0].held());
        assert_eq!(
            j[1].verdict,
            Verdict::NotEnforced,
            "a limit is still judged"
        );
        assert!(j[1].broken());
    }

    #[test]
    fn near_holds_within_the_tolerance_only() {
        let e = exp(
            "cpu_share",
            Condition::Near {
                target: 0.2,
                tolerance: 0.02,
            },
        );
        let j = evaluate(&e, &obs("cpu_share", 0.2013));
        assert_eq!(j.verdict, Verdict::Enforced);
        assert_eq!(j.expected, "0.2000 ± 0.0200");
        assert_eq!(j.observed, "0.2013");
        assert_eq!(j.value, Some(0.2013));
        assert_eq!(
            evaluate(&e, &obs("cpu_share", 0.25)).verdict,
            Verdict::NotEnforced
        );
    }

    #[test]
    fn missing_unsupported_and_mistyped_observations() {
        let e = exp("oom_killed", Condition::Equals(Value::Bool(true)));
        assert_eq!(evaluate(&e, &Observations::new()).verdict, Verdict::Error);
        let j = evaluate(
            &e,
            &obs(
                "oom_killed",
                Observed::Unsupported(Evidence::KernelController {
                    controller: "memory".into(),
                    source: "/proc/cgroups".into(),
                }),
            ),
        );
        assert_eq!(
            (j.verdict, j.observed.as_str()),
            (
                Verdict::Unsupported,
                "kernel: no memory cgroup controller (/proc/cgroups)"
            )
        );
        assert!(j.evidence.is_some());
        assert_eq!(
            evaluate(&e, &obs("oom_killed", Observed::Missing("x".into()))).verdict,
            Verdict::Error
        );
        let j = evaluate(&e, &obs("oom_killed", 1.0));
        assert_eq!(j.verdict, Verdict::Error);
        assert!(j.observed.contains("cannot be compared"), "{}", j.observed);
        assert_eq!(
            evaluate(&e, &obs("oom_killed", true)).verdict,
            Verdict::Enforced
        );
        assert_eq!(
            evaluate(&e, &obs("oom_killed", false)).verdict,
            Verdict::NotEnforced
        );
    }

    #[test]
    fn observations_round_trip_through_json_infinities_included() {
        let o: Observations = [
            ("a".to_string(), Observed::from(f64::INFINITY)),
            ("b".to_string(), Observed::from(f64::NEG_INFINITY)),
            ("c".to_string(), Observed::from(1.5)),
            ("d".to_string(), Observed::from("@inf is text")),
            ("e".to_string(), Observed::from(true)),
            ("f".to_string(), Observed::Missing("x".into())),
        ]
        .into();
        let text = serde_json::to_string(&o).unwrap();
        let back: Observations = serde_json::from_str(&text).unwrap();
        assert_eq!(back, o);
        let nan: Observed =
            serde_json::from_str(&serde_json::to_string(&Observed::from(f64::NAN)).unwrap())
                .unwrap();
        assert!(matches!(nan, Observed::Value(Value::Number(n)) if n.is_nan()));
    }

    #[test]
    fn byte_metrics_are_shown_in_mib() {
        let e = exp(
            "memory_peak_bytes",
            Condition::Range {
                at_least: None,
                at_most: Some(64.0 * 1048576.0),
            },
        );
        let j = evaluate(&e, &obs("memory_peak_bytes", 67108864u64));
        assert_eq!(
            (j.expected.as_str(), j.observed.as_str()),
            ("<= 64 MiB", "64 MiB")
        );
        assert!(j.held());
    }

    #[test]
    fn informational_findings_do_not_fail_a_scenario() {
        let mut e = exp(
            "inside.mem_total_bytes",
            Condition::Range {
                at_least: None,
                at_most: Some(1.0),
            },
        );
        e.required = false;
        e.fail = Verdict::Leaked;
        let j = evaluate(&e, &obs("inside.mem_total_bytes", 5.0));
        assert_eq!(j.verdict, Verdict::Leaked);
        assert!(!j.required && j.broken());
    }

    proptest! {
        #[test]
        fn near_is_symmetric_and_exact_at_the_bounds(target in -1e6f64..1e6, tol in 0f64..1e3, delta in -2e3f64..2e3) {
            let e = exp("m", Condition::Near { target, tolerance: tol });
            let got = target + delta;
            let j = evaluate(&e, &obs("m", got));
            let expect_hold = (got - target).abs() <= tol;
            prop_assert_eq!(j.held(), expect_hold);
            prop_assert_eq!(j.broken(), !expect_hold);
        }

        #[test]
        fn range_matches_its_bounds(lo in proptest::option::of(-1e9f64..1e9), hi in proptest::option::of(-1e9f64..1e9), got in -2e9f64..2e9) {
            let e = exp("m", Condition::Range { at_least: lo, at_most: hi });
            let j = evaluate(&e, &obs("m", got));
            let expect_hold = lo.is_none_or(|l| got >= l) && hi.is_none_or(|h| got <= h);
            prop_assert_eq!(j.verdict, if expect_hold { Verdict::Enforced } else { Verdict::NotEnforced });
        }

        #[test]
        fn nan_is_never_judged_held(lo in -1e3f64..1e3) {
            let e = exp("m", Condition::Range { at_least: Some(lo), at_most: None });
            prop_assert_eq!(evaluate(&e, &obs("m", f64::NAN)).verdict, Verdict::Error);
        }

        #[test]
        fn every_judgement_is_pass_fail_or_neutral(v in -10f64..10.0, pass_iso: bool) {
            let mut e = exp("m", Condition::Range { at_least: Some(0.0), at_most: None });
            if pass_iso { e.pass = Verdict::Isolated; e.fail = Verdict::Leaked; }
            let j = evaluate(&e, &obs("m", v));
            prop_assert!(j.verdict == e.pass || j.verdict == e.fail);
        }

        #[test]
        fn contention_only_excuses_a_shortfall_on_a_busy_host(
            target in 0.1f64..4.0,
            got in 0f64..5.0,
            spare in 0f64..4.0,
            needed in 0.1f64..4.0,
        ) {
            let mut e = exp("cpu_share", Condition::Near { target, tolerance: 0.02 });
            e.needs_cpus = Some(needed);
            let plain = evaluate(&e, &obs("cpu_share", got));
            let j = judge_contention(&e, plain.clone(), Some(spare));
            if plain.held() {
                prop_assert_eq!(&j, &plain);
            } else if got > target {
                // An excess is a broken limit whatever the host does.
                prop_assert_eq!(j.verdict, Verdict::NotEnforced);
            } else if spare < needed {
                prop_assert_eq!(j.verdict, Verdict::Error);
                prop_assert!(j.observed.contains("inconclusive"));
            } else {
                prop_assert_eq!(j.verdict, Verdict::NotEnforced);
            }
            // Without the host figure nothing changes.
            prop_assert_eq!(judge_contention(&e, plain.clone(), None), plain);
        }
    }
}
