//! The real `promtool` as the judge of expositions, and the CI rule for
//! prerequisites. Shared by the exporter's tests (through `common`) and the
//! workspace's integration tests (`tests/it/main.rs`, through `#[path]`),
//! so it needs nothing but std and tempfile.
#![allow(dead_code)]

use std::path::Path;
use std::process::Command;

pub const PROMTOOL: &str = "/usr/bin/promtool";

/// True when `what` is available. Outside CI a missing prerequisite skips
/// the test with a message; under CI=true it fails it.
pub fn require(ok: bool, test: &str, what: &str) -> bool {
    if ok {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{test} needs {what}, and CI=true forbids skipping it"
    );
    eprintln!("skipping {test}: needs {what}");
    false
}

pub fn have_promtool(test: &str) -> bool {
    require(
        Path::new(PROMTOOL).exists(),
        test,
        "promtool (Debian package prometheus)",
    )
}

/// [`promtool_check_text`] for `test`, which needs promtool (see [`require`]).
pub fn check_text(test: &str, text: &str) {
    if have_promtool(test) {
        promtool_check_text(text);
    }
}

/// [`promtool_check_openmetrics`] for `test`, which needs promtool.
pub fn check_openmetrics(test: &str, om: &str) {
    if have_promtool(test) {
        promtool_check_openmetrics(om);
    }
}

/// `promtool check metrics` on a Prometheus text exposition: must pass with
/// no output at all (no lint warnings).
pub fn promtool_check_text(text: &str) {
    use std::io::Write;
    let mut child = Command::new(PROMTOOL)
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("running promtool");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && said.trim().is_empty(),
        "promtool check metrics: {}\n{said}\n--- exposition:\n{text}",
        out.status
    );
}

/// Checks an OpenMetrics exposition with Prometheus's own OpenMetrics
/// parser: `promtool tsdb create-blocks-from openmetrics` (strict: needs
/// `# EOF`, `_total` counters, valid escapes), after giving every sample a
/// timestamp as backfilling requires. Returns the number of series written,
/// which must equal the number of samples.
pub fn promtool_check_openmetrics(om: &str) -> usize {
    let dir = tempfile::tempdir().unwrap();
    let stamped: String = om
        .lines()
        .map(|l| {
            if l.starts_with('#') {
                format!("{l}\n")
            } else {
                format!("{l} 1700000000\n")
            }
        })
        .collect();
    let input = dir.path().join("in.om");
    std::fs::write(&input, &stamped).unwrap();
    let out_dir = dir.path().join("blocks");
    let out = Command::new(PROMTOOL)
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(&input)
        .arg(&out_dir)
        .output()
        .expect("running promtool");
    let said =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "promtool rejected the OpenMetrics: {said}\n{om}"
    );
    let samples = om.lines().filter(|l| !l.starts_with('#')).count();
    if samples == 0 {
        return 0;
    }
    // The block table's NUM SERIES column.
    let row = said
        .lines()
        .find(|l| l.split_whitespace().count() >= 8 && !l.starts_with("BLOCK"))
        .unwrap_or_else(|| panic!("no block row in: {said}"));
    let series: usize = row.split_whitespace().nth(6).unwrap().parse().unwrap();
    assert_eq!(series, samples, "series written vs samples: {said}");
    series
}
