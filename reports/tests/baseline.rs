//! Loading a baseline report: it round-trips, and every way it can be wrong
//! gives an error naming the file and the cause.

use reports::{fixture, json, load_report, Error, Format, SCHEMA_VERSION};
use std::path::PathBuf;

/// Writes `text` to a fresh `baseline.json`; the dir lives as long as the guard.
fn baseline_file(text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("baseline.json");
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

#[test]
fn a_written_report_loads_back_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let report = fixture::sample_report();
    reports::write_all(&report, dir.path()).unwrap();
    let loaded = load_report(&dir.path().join(Format::Json.file_name())).unwrap();
    assert_eq!(loaded, report);
}

#[test]
fn another_schema_version_is_refused_as_such() {
    let text = json(&fixture::baseline_report()).replace(SCHEMA_VERSION, "boxwatch.report/v0");
    let (_dir, path) = baseline_file(&text);
    let err = load_report(&path).unwrap_err();
    assert!(matches!(err, Error::SchemaVersion { .. }));
    assert_eq!(
        err.to_string(),
        format!(
            "report {} has schema_version \"boxwatch.report/v0\", expected \"boxwatch.report/v2\"",
            path.display()
        )
    );
}

#[test]
fn a_v1_baseline_without_evidence_is_read_as_written() {
    let mut report = fixture::baseline_report();
    let mut value: serde_json::Value = serde_json::from_str(&json(&report)).unwrap();
    value["schema_version"] = "boxwatch.report/v1".into();
    for s in value["scenarios"].as_array_mut().unwrap() {
        for c in s["checks"].as_array_mut().unwrap() {
            c.as_object_mut().unwrap().remove("evidence");
        }
    }
    let (_dir, path) = baseline_file(&value.to_string());
    let loaded = load_report(&path).unwrap();
    for c in report
        .scenarios
        .iter_mut()
        .flat_map(|s| s.checks.iter_mut())
    {
        c.evidence = None;
    }
    assert_eq!(loaded.scenarios, report.scenarios);
    assert_eq!(loaded.schema_version, "boxwatch.report/v1");
}

#[test]
fn a_report_without_schema_version_is_refused_as_such() {
    let (_dir, path) = baseline_file(r#"{"scenarios": []}"#);
    let err = load_report(&path).unwrap_err().to_string();
    assert!(err.contains("has schema_version \"<missing>\""), "{err}");
}

#[test]
fn truncated_json_is_malformed_with_its_position() {
    let text = json(&fixture::baseline_report());
    let (_dir, path) = baseline_file(&text[..text.len() / 2]);
    let err = load_report(&path).unwrap_err();
    assert!(matches!(err, Error::Malformed { .. }));
    let message = reports::error::chain(&err);
    assert!(
        message.starts_with(&format!(
            "{} is not a boxwatch JSON report (it is not JSON): ",
            path.display()
        )),
        "{message}"
    );
    assert!(message.contains("EOF while parsing"), "{message}");
    assert!(message.contains("line"), "{message}");
}

#[test]
fn a_field_of_the_wrong_type_is_malformed_naming_the_problem() {
    let text =
        json(&fixture::baseline_report()).replacen("\"in_vm\": false", "\"in_vm\": \"no\"", 1);
    let (_dir, path) = baseline_file(&text);
    let message = reports::error::chain(&load_report(&path).unwrap_err());
    assert!(
        message.contains("(it is JSON, but not of a report's shape): invalid type: string \"no\", expected a boolean"),
        "{message}"
    );
}

#[test]
fn an_unknown_verdict_is_malformed() {
    let text = json(&fixture::baseline_report()).replacen(
        "\"verdict\": \"enforced\"",
        "\"verdict\": \"mostly\"",
        1,
    );
    let (_dir, path) = baseline_file(&text);
    let message = reports::error::chain(&load_report(&path).unwrap_err());
    assert!(message.contains("unknown variant `mostly`"), "{message}");
}

#[test]
fn a_missing_file_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nope.json");
    let err = load_report(&path).unwrap_err();
    assert!(matches!(err, Error::Read { .. }));
    // The cause is the source, printed once in the chain, not in the message.
    assert_eq!(
        reports::error::chain(&err),
        format!(
            "cannot read report {}: No such file or directory (os error 2)",
            path.display()
        )
    );
}

#[test]
fn a_regression_alone_fails_the_gate() {
    let mut clean = fixture::baseline_report();
    clean
        .scenarios
        .retain(|s| s.status == reports::Status::Pass);
    let clean = reports::Report::assemble(
        clean.generated_at,
        clean.tool_version,
        clean.host,
        clean.runtime,
        clean.scenarios,
    );
    assert!(clean.is_success());
    assert_eq!(clean.clone().with_baseline(&clean).summary.regressions, 0);

    // In the baseline, lxcfs virtualized /proc/meminfo; now it leaks again.
    let mut baseline = clean.clone();
    let proc_view = baseline
        .scenarios
        .iter_mut()
        .find(|s| s.id == "proc-meminfo-view");
    let leak = &mut proc_view.unwrap().checks[1];
    assert_eq!(leak.id, "meminfo-memtotal-virtualized");
    leak.verdict = reports::Verdict::Isolated;
    let current = clean.with_baseline(&baseline);
    assert_eq!(current.summary.failed, 0);
    assert_eq!(current.summary.regressions, 1);
    assert!(!current.is_success());
}
