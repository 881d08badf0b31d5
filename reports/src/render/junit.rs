//! JUnit XML for CI test views (GitHub test reporters, GitLab, Jenkins).
//!
//! One `<testsuite>` per scenario (named by the scenario id), one
//! `<testcase>` per check with classname `boxwatch.<scenario>`: Jenkins
//! groups by classname, GitLab and GitHub reporters list suites with their
//! cases, so every check is findable by `scenario/check`.

use super::{is_regressed, regression_measurements};
use crate::model::{CheckResult, Regression, Report, ScenarioResult};
use crate::Verdict;
use quick_junit::{NonSuccessKind, Property, TestCase, TestCaseStatus, TestSuite};
use std::time::Duration;

/// The report as JUnit XML.
///
/// - a required check that held passes; one that did not is a `failure`
///   (its verdict `error`: an `error`), one `unsupported` is `skipped`;
/// - an informational check passes (or is skipped when `unsupported`), with
///   its finding in `system-out`;
/// - any regressed check is a `failure` of type `regression`, and a
///   scenario-level regression adds a failing case `regression`;
/// - a scenario that errored adds an `error` case `scenario`.
pub fn junit(report: &Report) -> String {
    let mut junit = quick_junit::Report::new("boxwatch");
    junit.set_timestamp(report.generated_at);
    let total_ms: u64 = report.scenarios.iter().map(|s| s.duration_ms).sum();
    junit.set_time(Duration::from_millis(total_ms));
    junit.add_test_suites(report.scenarios.iter().map(|s| suite(report, s)));
    // Writing sanitized XmlStrings into memory cannot fail.
    junit.to_string().expect("JUnit XML serializes into memory")
}

/// The suite of one scenario.
fn suite(report: &Report, scenario: &ScenarioResult) -> TestSuite {
    let mut suite = TestSuite::new(scenario.id.as_str());
    suite.set_time(Duration::from_millis(scenario.duration_ms));
    suite.add_property(Property::new("title", scenario.title.as_str()));
    suite.add_property(Property::new("status", scenario.status.as_str()));
    for (name, value) in &scenario.measurements {
        suite.add_property(Property::new(name.as_str(), value.to_string()));
    }
    for check in &scenario.checks {
        let regressed = is_regressed(report, &scenario.id, &check.id);
        suite.add_test_case(case(scenario, check, regressed));
    }
    if let Some(error) = &scenario.error {
        let mut status = TestCaseStatus::non_success(NonSuccessKind::Error);
        status
            .set_message(error.as_str())
            .set_type("scenario-error");
        suite.add_test_case(named_case(scenario, "scenario", status));
    }
    let scenario_regressions = report
        .regressions
        .iter()
        .filter(|r| r.scenario_id == scenario.id && r.check_id.is_none());
    for r in scenario_regressions {
        suite.add_test_case(named_case(scenario, "regression", regression_status(r)));
    }
    suite
}

/// The test case of one check.
fn case(scenario: &ScenarioResult, check: &CheckResult, regressed: bool) -> TestCase {
    let status = if regressed {
        let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
        status
            .set_type("regression")
            .set_message(format!(
                "regression: held in the baseline, now {} (expected {})",
                check.verdict, check.expected
            ))
            .set_description(check.observed.as_str());
        status
    } else {
        check_status(check)
    };
    let mut case = named_case(scenario, &check.id, status);
    case.set_system_out(system_out(check));
    case
}

/// The status of a check that did not regress.
fn check_status(check: &CheckResult) -> TestCaseStatus {
    let expectation = format!("expected {}, got {}", check.expected, check.verdict);
    if check.verdict == Verdict::Unsupported && !check.held() && check.evidence.is_some() {
        let mut status = TestCaseStatus::skipped();
        status.set_message(format!(
            "unsupported on this host: {} ({})",
            check.observed,
            super::evidence_note(check).unwrap_or_default()
        ));
        status
    } else if check.verdict == Verdict::NotApplicable && !check.held() {
        let mut status = TestCaseStatus::skipped();
        status.set_message(format!(
            "not applicable to this runtime: {}",
            check.observed
        ));
        status
    } else if !check.required || check.held() {
        TestCaseStatus::success()
    } else {
        let kind = if matches!(check.verdict, Verdict::Error | Verdict::Unsupported) {
            NonSuccessKind::Error
        } else {
            NonSuccessKind::Failure
        };
        let mut status = TestCaseStatus::non_success(kind);
        status
            .set_type(check.verdict.as_str())
            .set_message(format!("{expectation}: {}", check.observed))
            .set_description(check.detail.as_deref().unwrap_or(&check.observed));
        status
    }
}

/// The failing status of a scenario-level regression.
fn regression_status(r: &Regression) -> TestCaseStatus {
    let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
    status.set_type("regression").set_message(format!(
        "regression: scenario was {} in the baseline, now {}",
        r.baseline, r.current
    ));
    let measured = regression_measurements(r);
    if !measured.is_empty() {
        status.set_description(measured);
    }
    status
}

/// A case named `name` in the scenario's class.
fn named_case(scenario: &ScenarioResult, name: &str, status: TestCaseStatus) -> TestCase {
    let mut case = TestCase::new(name, status);
    case.set_classname(format!("boxwatch.{}", scenario.id));
    case
}

/// What a check observed, for `system-out`: findings are marked as such.
fn system_out(check: &CheckResult) -> String {
    let kind = if check.is_finding() {
        "finding (informational)"
    } else if check.required {
        "required"
    } else {
        "informational"
    };
    let mut out = format!(
        "{kind}: verdict {}, expected {}\nobserved: {}\n",
        check.verdict, check.expected, check.observed
    );
    if let Some(detail) = &check.detail {
        out.push_str(&format!("detail: {detail}\n"));
    }
    if let Some(note) = super::evidence_note(check) {
        out.push_str(&format!("{note}\n"));
    }
    out
}
