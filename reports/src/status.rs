//! Pure judgement: a scenario's status from its checks, and summary counts.

use crate::model::{CheckResult, Regression, ScenarioResult, Status, Summary};
use crate::Verdict;

/// The status of a scenario, from its checks and its own error.
///
/// Only required checks count; informational checks never change the status.
/// In order of precedence:
///
/// 1. `fail` if a required check's verdict differs from its expected verdict
///    and is neither `unsupported` nor `error`: a broken guarantee is never
///    hidden behind an error elsewhere;
/// 2. `error` if the scenario itself errored (`scenario_error` is `Some`), a
///    required check's verdict is `error` (unless `error` was expected), or
///    a required check is `unsupported` without [`CheckResult::evidence`]:
///    what the judge could not see is never a pass;
/// 3. `unsupported` if there is at least one required check and every
///    required check is `unsupported` with evidence (the kernel, runtime or
///    host positively lacks the feature, which is never a failure);
///    `not-applicable` if every required check is `not-applicable` or
///    `unsupported`, at least one `not-applicable` (the runtime's model, a
///    sandbox, leaves nothing of it to judge, and the catalog says why);
/// 4. `pass` otherwise: every required check held or was unsupported with
///    evidence (or not applicable), or the scenario has only informational
///    checks.
pub fn scenario_status(checks: &[CheckResult], scenario_error: Option<&str>) -> Status {
    let required: Vec<&CheckResult> = checks.iter().filter(|c| c.required).collect();
    let broken = |c: &&CheckResult| {
        !c.held()
            && !matches!(
                c.verdict,
                Verdict::Unsupported | Verdict::NotApplicable | Verdict::Error
            )
    };
    let unjudged =
        |c: &&CheckResult| matches!(c.verdict, Verdict::Unsupported | Verdict::NotApplicable);
    let errored = |c: &&CheckResult| {
        (c.verdict == Verdict::Error && !c.held())
            || (c.verdict == Verdict::Unsupported && c.evidence.is_none())
    };
    if required.iter().any(broken) {
        Status::Fail
    } else if scenario_error.is_some() || required.iter().any(errored) {
        Status::Error
    } else if !required.is_empty() && required.iter().all(|c| c.verdict == Verdict::Unsupported) {
        Status::Unsupported
    } else if !required.is_empty() && required.iter().all(unjudged) {
        Status::NotApplicable
    } else {
        Status::Pass
    }
}

/// Counts over `scenarios` (their stored `status`) and `regressions`.
pub fn summarize(scenarios: &[ScenarioResult], regressions: &[Regression]) -> Summary {
    let count = |s: Status| scenarios.iter().filter(|r| r.status == s).count();
    let checks = || scenarios.iter().flat_map(|s| s.checks.iter());
    Summary {
        scenarios: scenarios.len(),
        passed: count(Status::Pass),
        failed: count(Status::Fail),
        unsupported: count(Status::Unsupported),
        not_applicable: count(Status::NotApplicable),
        errored: count(Status::Error),
        checks: checks().count(),
        checks_held: checks().filter(|c| c.held()).count(),
        findings: checks().filter(|c| c.is_finding()).count(),
        regressions: regressions.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn check(verdict: Verdict, expected: Verdict, required: bool) -> CheckResult {
        CheckResult {
            id: "c".into(),
            verdict,
            expected,
            observed: String::new(),
            required,
            detail: None,
            evidence: (verdict == Verdict::Unsupported).then(|| {
                crate::Evidence::KernelController {
                    controller: "memory".into(),
                    source: "/proc/cgroups".into(),
                }
            }),
        }
    }

    fn any_verdict() -> impl Strategy<Value = Verdict> {
        prop::sample::select(Verdict::ALL.to_vec())
    }

    fn any_check() -> impl Strategy<Value = CheckResult> {
        (any_verdict(), any_verdict(), any::<bool>()).prop_map(|(v, e, r)| check(v, e, r))
    }

    #[test]
    fn all_required_checks_held_is_a_pass() {
        let checks = [
            check(Verdict::Enforced, Verdict::Enforced, true),
            check(Verdict::Isolated, Verdict::Isolated, true),
        ];
        assert_eq!(scenario_status(&checks, None), Status::Pass);
    }

    #[test]
    fn a_required_leak_where_isolation_was_expected_is_a_fail() {
        let checks = [
            check(Verdict::Isolated, Verdict::Isolated, true),
            check(Verdict::Leaked, Verdict::Isolated, true),
        ];
        assert_eq!(scenario_status(&checks, None), Status::Fail);
    }

    #[test]
    fn an_informational_leak_does_not_fail_the_scenario() {
        let checks = [
            check(Verdict::Enforced, Verdict::Enforced, true),
            check(Verdict::Leaked, Verdict::Isolated, false),
        ];
        assert_eq!(scenario_status(&checks, None), Status::Pass);
    }

    #[test]
    fn all_required_unsupported_is_unsupported_not_a_failure() {
        let checks = [
            check(Verdict::Unsupported, Verdict::Isolated, true),
            check(Verdict::Unsupported, Verdict::Enforced, true),
            check(Verdict::Leaked, Verdict::Isolated, false),
        ];
        assert_eq!(scenario_status(&checks, None), Status::Unsupported);
    }

    #[test]
    fn some_required_unsupported_and_the_rest_held_is_a_pass() {
        let checks = [
            check(Verdict::Unsupported, Verdict::Isolated, true),
            check(Verdict::Enforced, Verdict::Enforced, true),
        ];
        assert_eq!(scenario_status(&checks, None), Status::Pass);
    }

    #[test]
    fn a_required_error_is_an_error() {
        let checks = [
            check(Verdict::Enforced, Verdict::Enforced, true),
            check(Verdict::Error, Verdict::Enforced, true),
        ];
        assert_eq!(scenario_status(&checks, None), Status::Error);
    }

    #[test]
    fn a_required_unsupported_without_evidence_is_an_error() {
        let mut blind = check(Verdict::Unsupported, Verdict::Enforced, true);
        blind.evidence = None;
        let checks = [
            check(Verdict::Enforced, Verdict::Enforced, true),
            blind.clone(),
        ];
        assert_eq!(scenario_status(&checks, None), Status::Error);
        assert_eq!(scenario_status(&[blind.clone()], None), Status::Error);
        blind.required = false;
        assert_eq!(scenario_status(&[blind], None), Status::Pass);
    }

    #[test]
    fn a_scenario_error_is_an_error_even_without_checks() {
        assert_eq!(scenario_status(&[], Some("spawn failed")), Status::Error);
    }

    #[test]
    fn a_failure_wins_over_an_error() {
        let checks = [
            check(Verdict::Error, Verdict::Enforced, true),
            check(Verdict::NotEnforced, Verdict::Enforced, true),
        ];
        assert_eq!(scenario_status(&checks, Some("timeout")), Status::Fail);
    }

    #[test]
    fn not_applicable_is_distinct_from_unsupported() {
        let na = [
            check(Verdict::NotApplicable, Verdict::Isolated, true),
            check(Verdict::Unsupported, Verdict::Isolated, true),
        ];
        assert_eq!(scenario_status(&na, None), Status::NotApplicable);
        let some_held = [
            check(Verdict::NotApplicable, Verdict::Isolated, true),
            check(Verdict::Isolated, Verdict::Isolated, true),
        ];
        assert_eq!(scenario_status(&some_held, None), Status::Pass);
        assert_eq!(Status::NotApplicable.as_str(), "not-applicable");
        assert_eq!(
            serde_json::to_string(&Status::NotApplicable).unwrap(),
            "\"not-applicable\""
        );
    }

    #[test]
    fn informational_only_scenarios_pass() {
        let checks = [check(Verdict::Leaked, Verdict::Isolated, false)];
        assert_eq!(scenario_status(&checks, None), Status::Pass);
    }

    proptest! {
        #[test]
        fn informational_checks_never_change_the_status(
            required in prop::collection::vec(any_check(), 0..6)
                .prop_map(|v| v.into_iter().map(|mut c| { c.required = true; c }).collect::<Vec<_>>()),
            informational in prop::collection::vec(any_check(), 0..6)
                .prop_map(|v| v.into_iter().map(|mut c| { c.required = false; c }).collect::<Vec<_>>()),
            error in prop::option::of(Just("boom")),
        ) {
            let mut all = required.clone();
            all.extend(informational);
            prop_assert_eq!(scenario_status(&all, error), scenario_status(&required, error));
        }

        #[test]
        fn fail_iff_a_required_check_broke(checks in prop::collection::vec(any_check(), 0..8)) {
            let broke = checks.iter().any(|c| c.required && !c.held()
                && !matches!(c.verdict, Verdict::Unsupported | Verdict::NotApplicable | Verdict::Error));
            prop_assert_eq!(scenario_status(&checks, None) == Status::Fail, broke);
        }

        #[test]
        fn unsupported_is_never_a_failure(checks in prop::collection::vec(any_check(), 0..8)) {
            let unsupported_everywhere: Vec<CheckResult> = checks.into_iter()
                .map(|c| check(Verdict::Unsupported, c.expected, c.required)).collect();
            let status = scenario_status(&unsupported_everywhere, None);
            prop_assert!(status == Status::Pass || status == Status::Unsupported);
        }

        #[test]
        fn unsupported_without_evidence_never_passes(checks in prop::collection::vec(any_check(), 0..8)) {
            let blind = checks.iter().any(|c| c.required && c.verdict == Verdict::Unsupported);
            let stripped: Vec<CheckResult> = checks.into_iter()
                .map(|mut c| { c.evidence = None; c }).collect();
            let status = scenario_status(&stripped, None);
            if blind {
                prop_assert!(status == Status::Fail || status == Status::Error);
            }
        }

        #[test]
        fn a_scenario_error_never_passes(checks in prop::collection::vec(any_check(), 0..8)) {
            let status = scenario_status(&checks, Some("boom"));
            prop_assert!(status == Status::Fail || status == Status::Error);
        }

        #[test]
        fn all_required_held_passes(checks in prop::collection::vec(any_check(), 1..8)) {
            let held: Vec<CheckResult> = checks.into_iter()
                .map(|mut c| { c.expected = c.verdict; c }).collect();
            let required = || held.iter().filter(|c| c.required);
            let any_required = held.iter().any(|c| c.required);
            let all_unsupported = required()
                .all(|c| c.verdict == Verdict::Unsupported) && any_required;
            let all_unjudged = required()
                .all(|c| matches!(c.verdict, Verdict::Unsupported | Verdict::NotApplicable)) && any_required;
            let expected = if all_unsupported {
                Status::Unsupported
            } else if all_unjudged {
                Status::NotApplicable
            } else {
                Status::Pass
            };
            prop_assert_eq!(scenario_status(&held, None), expected);
        }
    }
}
