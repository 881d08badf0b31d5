//! The shipped Prometheus rules (`exporter/rules/`): valid for the real
//! `promtool`, and every rule passes its unit tests
//! (`rules/tests/*.test.yml`). `.ci/run` runs the same `promtool test
//! rules` on its own, so a broken rule fails CI by name.

mod common;

use common::{have_promtool, PROMTOOL};
use std::path::Path;
use std::process::Command;

const RULES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/rules");

fn promtool(args: &[&str]) -> (bool, String) {
    let out = Command::new(PROMTOOL)
        .args(args)
        .current_dir(RULES)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn the_rules_are_valid_and_pass_their_unit_tests() {
    if !have_promtool("the_rules_are_valid_and_pass_their_unit_tests") {
        return;
    }
    let (ok, out) = promtool(&["check", "rules", "boxwatch.rules.yml"]);
    assert!(ok, "promtool check rules:\n{out}");
    let (ok, out) = promtool(&["test", "rules", "tests/boxwatch.test.yml"]);
    assert!(ok, "promtool test rules:\n{out}");
    assert!(out.contains("SUCCESS"), "{out}");
}

/// Every alert and recording rule has a unit test: its name appears in
/// the test file (an `alertname:` or a `promql_expr_test` expression).
#[test]
fn every_rule_is_unit_tested() {
    let rules = std::fs::read_to_string(Path::new(RULES).join("boxwatch.rules.yml")).unwrap();
    let tests = std::fs::read_to_string(Path::new(RULES).join("tests/boxwatch.test.yml")).unwrap();
    let mut names = 0;
    for line in rules.lines() {
        let line = line.trim();
        let name = line
            .strip_prefix("- alert: ")
            .map(|n| format!("alertname: {n}"))
            .or_else(|| {
                line.strip_prefix("- record: ")
                    .map(|n| format!("expr: {n}"))
            });
        if let Some(want) = name {
            names += 1;
            assert!(tests.contains(&want), "no unit test for {want}");
        }
    }
    assert_eq!(names, 13, "rules counted");
}
