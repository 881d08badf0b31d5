//! Baseline diff: what held before and does not now.

use crate::model::{
    CheckResult, MeasurementChange, Regression, RegressionKind, Report, ScenarioResult, Status,
};
use std::collections::BTreeMap;

/// Regressions of `current` against `baseline`, in `current`'s scenario order.
///
/// Scenarios and checks are matched by id. For each scenario present in both:
///
/// - every check whose verdict equalled its expected verdict in the baseline
///   and whose verdict in `current` does not (including a check now
///   `unsupported`, `error`, or gone from the scenario: `missing`) is a
///   [`RegressionKind::CheckNoLongerHolds`], required or informational;
/// - a scenario that passed in the baseline and now has status `fail` or
///   `error`, with no check regression to explain it (a new check that
///   fails), is a [`RegressionKind::ScenarioNowFails`].
///
/// Scenarios only in one of the two reports (a filtered run, a new
/// scenario) are not compared. Each regression carries the scenario's
/// measurements present in both reports.
pub fn compare(baseline: &Report, current: &Report) -> Vec<Regression> {
    current
        .scenarios
        .iter()
        .filter_map(|now| Some((baseline.scenario(&now.id)?, now)))
        .flat_map(|(before, now)| scenario_regressions(before, now))
        .collect()
}

/// The regressions of one scenario present in both reports.
fn scenario_regressions(before: &ScenarioResult, now: &ScenarioResult) -> Vec<Regression> {
    let measurements = common_measurements(before, now);
    let mut found: Vec<Regression> = before
        .checks
        .iter()
        .filter(|c| c.held())
        .filter_map(|held| {
            let now_check = now.checks.iter().find(|c| c.id == held.id);
            check_regression(&now.id, held, now_check, &measurements)
        })
        .collect();
    let now_failing = matches!(now.status, Status::Fail | Status::Error);
    if found.is_empty() && before.status == Status::Pass && now_failing {
        found.push(Regression {
            scenario_id: now.id.clone(),
            check_id: None,
            kind: RegressionKind::ScenarioNowFails,
            required: true,
            baseline: before.status.to_string(),
            current: now.status.to_string(),
            expected: None,
            measurements,
        });
    }
    found
}

/// A regression if the check that held in the baseline (`held`) does not
/// hold now (`now` is `None` when the check is gone).
fn check_regression(
    scenario_id: &str,
    held: &CheckResult,
    now: Option<&CheckResult>,
    measurements: &BTreeMap<String, MeasurementChange>,
) -> Option<Regression> {
    if now.is_some_and(CheckResult::held) {
        return None;
    }
    Some(Regression {
        scenario_id: scenario_id.to_string(),
        check_id: Some(held.id.clone()),
        kind: RegressionKind::CheckNoLongerHolds,
        required: now.map_or(held.required, |c| c.required),
        baseline: held.verdict.to_string(),
        current: now.map_or("missing".to_string(), |c| c.verdict.to_string()),
        expected: Some(held.expected),
        measurements: measurements.clone(),
    })
}

/// The measurements both scenario runs recorded, before and now.
fn common_measurements(
    before: &ScenarioResult,
    now: &ScenarioResult,
) -> BTreeMap<String, MeasurementChange> {
    before
        .measurements
        .iter()
        .filter_map(|(name, &baseline)| {
            let current = *now.measurements.get(name)?;
            Some((name.clone(), MeasurementChange { baseline, current }))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture;
    use crate::Verdict;
    use proptest::prelude::*;

    fn check(id: String, verdict: Verdict, expected: Verdict, required: bool) -> CheckResult {
        CheckResult {
            id,
            verdict,
            expected,
            observed: String::new(),
            required,
            detail: None,
            evidence: (verdict == Verdict::Unsupported).then(|| crate::Evidence::KernelNamespace {
                namespace: "time".into(),
            }),
        }
    }

    fn any_verdict() -> impl Strategy<Value = Verdict> {
        prop::sample::select(Verdict::ALL.to_vec())
    }

    /// One scenario's checks as (verdict, expected, required), and its
    /// error if it has one.
    type ScenarioParts = (Vec<(Verdict, Verdict, bool)>, Option<&'static str>);

    /// Up to 5 scenarios with up to 5 checks each.
    fn any_scenarios() -> impl Strategy<Value = Vec<ScenarioParts>> {
        let checks = prop::collection::vec((any_verdict(), any_verdict(), any::<bool>()), 0..5);
        prop::collection::vec((checks, prop::option::of(Just("boom"))), 0..5)
    }

    /// A report of `scenarios`, with unique ids.
    fn report_of(scenarios: Vec<ScenarioParts>) -> Report {
        let mut base = fixture::baseline_report();
        let results = scenarios
            .into_iter()
            .enumerate()
            .map(|(i, (checks, error))| {
                let mut s = base.scenarios[0].clone();
                s.id = format!("s{i}");
                s.error = error.map(String::from);
                s.checks = checks
                    .into_iter()
                    .enumerate()
                    .map(|(j, (v, e, r))| check(format!("c{j}"), v, e, r))
                    .collect();
                s
            })
            .collect();
        base.scenarios = results;
        Report::assemble(
            base.generated_at,
            "0",
            base.host,
            base.runtime,
            base.scenarios,
        )
    }

    /// Reports of up to 5 scenarios with up to 5 checks each, unique ids.
    fn any_report() -> impl Strategy<Value = Report> {
        any_scenarios().prop_map(report_of)
    }

    /// Like [`any_report`], with one more scenario, anywhere, holding a
    /// required check (made, not filtered for: most random reports hold
    /// none, and rejecting them ran into proptest's reject limit).
    fn report_holding_a_required_check() -> impl Strategy<Value = Report> {
        (any_scenarios(), any_verdict(), any::<prop::sample::Index>()).prop_map(
            |(mut scenarios, verdict, at)| {
                let at = at.index(scenarios.len() + 1);
                scenarios.insert(at, (vec![(verdict, verdict, true)], None));
                report_of(scenarios)
            },
        )
    }

    /// The (scenario, check) positions of held required checks.
    fn held_required(report: &Report) -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        for (i, s) in report.scenarios.iter().enumerate() {
            for (j, c) in s.checks.iter().enumerate() {
                if c.required && c.held() {
                    out.push((i, j));
                }
            }
        }
        out
    }

    proptest! {
        #[test]
        fn a_report_has_no_regressions_against_itself(report in any_report()) {
            prop_assert!(compare(&report, &report).is_empty());
        }

        #[test]
        fn flipping_one_held_required_check_is_exactly_one_regression(
            report in report_holding_a_required_check(),
            pick in any::<prop::sample::Index>(),
            other in any::<prop::sample::Index>(),
        ) {
            let held = held_required(&report);
            let (i, j) = held[pick.index(held.len())];
            let expected = report.scenarios[i].checks[j].expected;
            let others: Vec<Verdict> =
                Verdict::ALL.iter().copied().filter(|v| *v != expected).collect();
            let new_verdict = others[other.index(others.len())];
            let mut current = report.clone();
            current.scenarios[i].checks[j].verdict = new_verdict;
            current.scenarios[i].judge();

            let regressions = compare(&report, &current);
            prop_assert_eq!(regressions.len(), 1);
            let r = &regressions[0];
            prop_assert_eq!(r.kind, RegressionKind::CheckNoLongerHolds);
            prop_assert_eq!(&r.scenario_id, &current.scenarios[i].id);
            prop_assert_eq!(r.check_id.as_ref(), Some(&current.scenarios[i].checks[j].id));
            prop_assert_eq!(&r.current, new_verdict.as_str());
            prop_assert!(r.required);
        }

        #[test]
        fn every_check_regression_held_in_the_baseline_and_not_now(
            baseline in any_report(),
            current in any_report(),
        ) {
            for r in compare(&baseline, &current) {
                let before = baseline.scenario(&r.scenario_id).unwrap();
                let now = current.scenario(&r.scenario_id).unwrap();
                match &r.check_id {
                    Some(id) => {
                        prop_assert!(before.checks.iter().any(|c| &c.id == id && c.held()));
                        prop_assert!(!now.checks.iter().any(|c| &c.id == id && c.held()));
                    }
                    None => {
                        prop_assert_eq!(before.status, Status::Pass);
                        prop_assert!(matches!(now.status, Status::Fail | Status::Error));
                    }
                }
            }
        }
    }

    #[test]
    fn the_fixture_regresses_only_on_the_150_percent_quota() {
        let report = fixture::sample_report();
        let names: Vec<String> = report.regressions.iter().map(Regression::name).collect();
        assert_eq!(names, ["cpu-quota-150/cpu-share-within-tolerance"]);
        let r = &report.regressions[0];
        assert_eq!(
            (r.baseline.as_str(), r.current.as_str()),
            ("enforced", "not-enforced")
        );
        assert_eq!(r.measurements["cpu_share"].baseline, 1.502);
        assert_eq!(r.measurements["cpu_share"].current, 1.312);
    }

    #[test]
    fn a_check_gone_from_its_scenario_is_a_regression_named_missing() {
        let baseline = fixture::baseline_report();
        let mut current = baseline.clone();
        current.scenarios[0].checks.remove(1);
        let regressions = compare(&baseline, &current);
        assert_eq!(regressions.len(), 1);
        assert_eq!(regressions[0].name(), "cpu-quota-20/throttling-observed");
        assert_eq!(regressions[0].current, "missing");
    }

    #[test]
    fn a_new_failing_check_makes_a_scenario_regression() {
        let baseline = fixture::baseline_report();
        let mut current = baseline.clone();
        let new = check("new-check".into(), Verdict::Leaked, Verdict::Isolated, true);
        current.scenarios[0].checks.push(new);
        current.scenarios[0].judge();
        let regressions = compare(&baseline, &current);
        assert_eq!(regressions.len(), 1);
        assert_eq!(regressions[0].kind, RegressionKind::ScenarioNowFails);
        assert_eq!(regressions[0].name(), "cpu-quota-20");
        assert_eq!(
            (
                regressions[0].baseline.as_str(),
                regressions[0].current.as_str()
            ),
            ("pass", "fail")
        );
    }

    #[test]
    fn an_informational_check_that_stops_holding_is_a_non_required_regression() {
        let mut baseline = fixture::baseline_report();
        baseline.scenarios[3].checks[1].verdict = Verdict::Isolated; // lxcfs was mounted
        let current = fixture::baseline_report();
        let regressions = compare(&baseline, &current);
        assert_eq!(regressions.len(), 1);
        assert_eq!(
            regressions[0].name(),
            "proc-meminfo-view/meminfo-memtotal-virtualized"
        );
        assert!(!regressions[0].required);
    }

    #[test]
    fn scenarios_missing_from_either_report_are_not_compared() {
        let baseline = fixture::baseline_report();
        let mut current = baseline.clone();
        current.scenarios.retain(|s| s.id == "memory-hog");
        assert!(compare(&baseline, &current).is_empty());
        assert!(compare(&current, &baseline).is_empty());
    }
}
