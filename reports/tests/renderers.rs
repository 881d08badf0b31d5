//! Snapshot of every renderer on the fixture report (several scenarios, a
//! leak, a failure, an unsupported, an error and a regression), plus the
//! properties each format must keep.

use reports::{fixture, html, human, json, junit, markdown, parse_report, Color, Report};
use std::path::Path;

fn report() -> Report {
    fixture::sample_report()
}

#[test]
fn json_snapshot() {
    insta::assert_snapshot!("report.json", json(&report()));
}

#[test]
fn markdown_snapshot() {
    insta::assert_snapshot!("report.md", markdown(&report()));
}

#[test]
fn junit_snapshot() {
    insta::assert_snapshot!("junit.xml", junit(&report()));
}

#[test]
fn html_snapshot() {
    insta::assert_snapshot!("report.html", html(&report()));
}

#[test]
fn human_snapshot() {
    insta::assert_snapshot!("report.txt", human(&report(), Color::Never));
}

#[test]
fn json_round_trips_through_the_baseline_loader() {
    let report = report();
    let back = parse_report(&json(&report), Path::new("report.json")).unwrap();
    assert_eq!(back, report);
}

#[test]
fn every_format_names_the_regression() {
    let report = report();
    let formats = [
        json(&report),
        markdown(&report),
        junit(&report),
        html(&report),
        human(&report, Color::Never),
    ];
    for text in formats {
        assert!(text.contains("cpu-quota-150"));
        assert!(text.contains("cpu-share-within-tolerance"));
        assert!(text.to_lowercase().contains("regression"));
    }
}

#[test]
fn markdown_names_failures_and_regressions_before_the_scenario_table() {
    let md = markdown(&report());
    let table = md.find("### Scenarios").unwrap();
    let regression = md
        .find("`cpu-quota-150/cpu-share-within-tolerance`")
        .unwrap();
    let failure = md.find("### Failing required checks").unwrap();
    let leak = md
        .find("`proc-meminfo-view/meminfo-memtotal-virtualized`")
        .unwrap();
    assert!(regression < table && failure < table && leak < table);
    assert!(md.contains("cgroup **hybrid**"));
    assert!(md.contains("kernel `6.18.0-boxwatch`"));
}

#[test]
fn junit_maps_verdicts_to_ci_outcomes() {
    let xml = junit(&report());
    // One suite per scenario; failures: the regressed check; errors: the
    // errored scenario; skipped: the unsupported check.
    assert!(
        xml.contains(r#"<testsuites name="boxwatch" tests="11" failures="1" errors="1""#),
        "{xml}"
    );
    assert_eq!(xml.matches("<testsuite ").count(), 6);
    assert_eq!(xml.matches("<skipped").count(), 1);
    assert!(xml.contains(r#"type="regression""#));
    // The leak passes, with its finding in system-out.
    let leak = xml.find(r#"name="meminfo-memtotal-virtualized""#).unwrap();
    let case = &xml[leak..leak + xml[leak..].find("</testcase>").unwrap()];
    assert!(!case.contains("<failure"));
    assert!(case.contains("finding (informational): verdict leaked"));
}

#[test]
fn a_clean_run_reads_as_a_pass_everywhere() {
    let mut report = fixture::baseline_report();
    report
        .scenarios
        .retain(|s| s.id.starts_with("cpu-quota") || s.id == "memory-hog");
    let report = Report::assemble(
        report.generated_at,
        report.tool_version,
        report.host,
        report.runtime,
        report.scenarios,
    );
    assert!(report.is_success());
    assert!(markdown(&report).starts_with("## ✅ boxwatch PASS"));
    assert!(human(&report, Color::Never).starts_with("boxwatch 0.1.0: PASS"));
    assert!(html(&report).contains("<title>boxwatch report: PASS</title>"));
    assert!(!junit(&report).contains("<failure"));
}

/// A real run under gVisor (runsc), recorded on a cgroup v1 hybrid host:
/// host-side namespace checks are `not-applicable` (ipc-namespace has no
/// other required check: the scenario is not applicable), distinct from
/// the unsupported time namespace, in every format.
fn sandboxed() -> Report {
    parse_report(
        include_str!("data/runsc-sandboxed.json"),
        std::path::Path::new("data/runsc-sandboxed.json"),
    )
    .expect("the recorded runsc report")
}

#[test]
fn sandboxed_markdown_snapshot() {
    insta::assert_snapshot!("runsc.md", markdown(&sandboxed()));
}

#[test]
fn sandboxed_human_snapshot() {
    insta::assert_snapshot!("runsc.txt", human(&sandboxed(), Color::Never));
}

#[test]
fn sandboxed_junit_snapshot() {
    insta::assert_snapshot!("runsc.junit.xml", junit(&sandboxed()));
}

#[test]
fn not_applicable_is_told_apart_from_unsupported_everywhere() {
    let r = sandboxed();
    let status = |id: &str| r.scenarios.iter().find(|s| s.id == id).unwrap().status;
    assert_eq!(status("ipc-namespace"), reports::Status::NotApplicable);
    assert_eq!(status("time-namespace"), reports::Status::Unsupported);
    assert_eq!(r.summary.not_applicable, 1);
    for text in [markdown(&r), human(&r, Color::Never), html(&r)] {
        assert!(text.contains("not-applicable") || text.contains("not applicable"));
        assert!(text.contains("unsupported"));
    }
    assert!(html(&r).contains("class=\"not-applicable\""));
}
