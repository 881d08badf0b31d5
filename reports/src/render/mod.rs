//! Renderers: each a pure function from a [`Report`] to text.
//!
//! Every format names the regressions, the failing required checks (first),
//! and the informational findings (leaks).

mod html;
mod json;
mod junit;
mod markdown;
mod text;

pub use html::{html, AXIS, CPU_STROKE, MEMORY_STROKE, MIN_CHART_POINTS, PIDS_STROKE};
pub use json::json;
pub use junit::junit;
pub use markdown::{cell as markdown_cell, markdown};
pub use text::{human, Color};

use crate::error::{Error, Result};
use crate::model::{CheckResult, Report, Sample, ScenarioResult};
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// The output formats, as `--format` spells them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// Aligned plain text for a terminal, without colors.
    Human,
    /// The JSON report (the schema of `SCHEMA.md`).
    Json,
    /// Markdown for a pull request comment.
    Markdown,
    /// JUnit XML for CI test views.
    Junit,
    /// A self-contained HTML page with usage plots.
    Html,
}

impl Format {
    /// Every format, in the order [`write_all`] writes them.
    pub const ALL: [Format; 5] = [
        Format::Json,
        Format::Markdown,
        Format::Junit,
        Format::Html,
        Format::Human,
    ];

    /// The `--format` spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Human => "human",
            Format::Json => "json",
            Format::Markdown => "markdown",
            Format::Junit => "junit",
            Format::Html => "html",
        }
    }

    /// The file [`write_all`] writes this format to.
    pub fn file_name(self) -> &'static str {
        match self {
            Format::Human => "report.txt",
            Format::Json => "report.json",
            Format::Markdown => "report.md",
            Format::Junit => "junit.xml",
            Format::Html => "report.html",
        }
    }

    /// Renders `report` in this format (the human view without colors).
    pub fn render(self, report: &Report) -> String {
        match self {
            Format::Human => human(report, Color::Never),
            Format::Json => json(report),
            Format::Markdown => markdown(report),
            Format::Junit => junit(report),
            Format::Html => html(report),
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error of parsing an unknown `--format`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown format {0:?}: expected one of human, json, markdown, junit, html")]
pub struct UnknownFormat(pub String);

impl FromStr for Format {
    type Err = UnknownFormat;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Format::ALL
            .into_iter()
            .find(|f| f.as_str() == s)
            .ok_or_else(|| UnknownFormat(s.to_string()))
    }
}

/// Checks, before a long run, that `out_dir` can take the reports: creates
/// it (and its parents) when missing and writes and removes a probe file.
pub fn check_out_dir(out_dir: &Path) -> Result<()> {
    fn write(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
        move |source| Error::Write {
            path: path.to_path_buf(),
            source,
        }
    }
    std::fs::create_dir_all(out_dir).map_err(write(out_dir))?;
    let probe = out_dir.join(".boxwatch-write-check");
    std::fs::write(&probe, b"").map_err(write(&probe))?;
    std::fs::remove_file(&probe).map_err(write(&probe))
}

/// Writes every format into `out_dir` (created if needed): `report.json`,
/// `report.md`, `junit.xml`, `report.html`, `report.txt`. Returns the paths
/// written, in that order.
pub fn write_all(report: &Report, out_dir: &Path) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(out_dir).map_err(|source| Error::Write {
        path: out_dir.to_path_buf(),
        source,
    })?;
    Format::ALL
        .into_iter()
        .map(|format| {
            let path = out_dir.join(format.file_name());
            std::fs::write(&path, format.render(report)).map_err(|source| Error::Write {
                path: path.clone(),
                source,
            })?;
            Ok(path)
        })
        .collect()
}

/// The one-word outcome of the whole run, from [`Report::is_success`].
fn outcome(report: &Report) -> &'static str {
    if report.is_success() {
        "PASS"
    } else {
        "FAIL"
    }
}

/// `6 scenarios: 3 passed, 1 failed, 1 unsupported, 1 error`, with `, N
/// not applicable` before the errors when some scenario was.
fn scenario_counts(report: &Report) -> String {
    let s = &report.summary;
    let na = if s.not_applicable > 0 {
        format!(", {} not applicable", s.not_applicable)
    } else {
        String::new()
    };
    format!(
        "{} scenarios: {} passed, {} failed, {} unsupported{na}, {} error",
        s.scenarios, s.passed, s.failed, s.unsupported, s.errored
    )
}

/// `9/11 checks held, 1 finding, 1 regression`.
fn check_counts(report: &Report) -> String {
    let s = &report.summary;
    format!(
        "{}/{} checks held, {} {}, {} {}",
        s.checks_held,
        s.checks,
        s.findings,
        plural(s.findings, "finding", "findings"),
        s.regressions,
        plural(s.regressions, "regression", "regressions"),
    )
}

fn plural(n: usize, one: &'static str, many: &'static str) -> &'static str {
    if n == 1 {
        one
    } else {
        many
    }
}

/// Required checks that did not hold (failures and errors, not
/// `unsupported`), with their scenario, in run order.
fn failing_checks(report: &Report) -> impl Iterator<Item = (&ScenarioResult, &CheckResult)> {
    all_checks(report).filter(|(_, c)| {
        c.required
            && !c.held()
            && !matches!(
                c.verdict,
                crate::Verdict::Unsupported | crate::Verdict::NotApplicable
            )
    })
}

/// Informational checks that found a leak or an unenforced limit.
/// Why an `unsupported` check is unsupported, in words: its evidence, or
/// that it has none (a required check then counts as `error`).
fn evidence_note(c: &CheckResult) -> Option<String> {
    match (&c.evidence, c.verdict) {
        (Some(e), _) => Some(format!("evidence: {e}")),
        (None, crate::Verdict::Unsupported) => {
            Some("no evidence that the feature is missing: counted as error".into())
        }
        (None, _) => None,
    }
}

fn findings(report: &Report) -> impl Iterator<Item = (&ScenarioResult, &CheckResult)> {
    all_checks(report).filter(|(_, c)| c.is_finding())
}

fn all_checks(report: &Report) -> impl Iterator<Item = (&ScenarioResult, &CheckResult)> {
    report
        .scenarios
        .iter()
        .flat_map(|s| s.checks.iter().map(move |c| (s, c)))
}

/// True when `check` of `scenario` is named by a regression.
fn is_regressed(report: &Report, scenario: &str, check: &str) -> bool {
    report
        .regressions
        .iter()
        .any(|r| r.scenario_id == scenario && r.check_id.as_deref() == Some(check))
}

/// Checks held over total, e.g. `2/3`.
fn held_ratio(scenario: &ScenarioResult) -> String {
    let held = scenario.checks.iter().filter(|c| c.held()).count();
    format!("{held}/{}", scenario.checks.len())
}

/// A measurement for people: `_bytes` as MiB/GiB, whole numbers without
/// decimals, anything else with three decimals.
fn measurement(name: &str, value: f64) -> String {
    if name.ends_with("_bytes") && value >= 0.0 {
        bytes(value as u64)
    } else if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{value:.0}")
    } else {
        format!("{value:.3}")
    }
}

/// All measurements of a scenario as `name value, ...`.
fn measurements(scenario: &ScenarioResult) -> String {
    scenario
        .measurements
        .iter()
        .map(|(k, v)| format!("{k} {}", measurement(k, *v)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The measurements of a regression that changed: `cpu_share 1.502 -> 1.312, ...`.
fn regression_measurements(r: &crate::model::Regression) -> String {
    r.measurements
        .iter()
        .filter(|(_, m)| m.baseline != m.current)
        .map(|(k, m)| {
            format!(
                "{k} {} -> {}",
                measurement(k, m.baseline),
                measurement(k, m.current)
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The host's controllers as a report line shows them: on a hybrid host,
/// which are v1 and which are on the cgroup2 mount.
fn controllers(host: &crate::model::HostInfo) -> String {
    if host.cgroup_mode != crate::model::CgroupMode::Hybrid || host.controllers_v2.is_empty() {
        return host.controllers.join(", ");
    }
    let v1: Vec<&str> = host
        .controllers
        .iter()
        .filter(|c| !host.controllers_v2.contains(c))
        .map(String::as_str)
        .collect();
    format!(
        "v1: {}; v2: {}",
        v1.join(", "),
        host.controllers_v2.join(", ")
    )
}

/// Bytes in binary units: `512 B`, `64.0 MiB`, `8.0 GiB`.
fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// Milliseconds for people: `164 ms`, `5.1 s`.
fn duration(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms} ms")
    } else {
        format!("{:.1} s", ms as f64 / 1000.0)
    }
}

/// The shortest window a CPU share is computed over: the default CFS
/// period, so that samples taken every few milliseconds (a short
/// workload's start) do not show the 0%/100% on-off of each period.
pub const CPU_WINDOW_MS: u64 = 100;

/// CPU share (fraction of one CPU) over windows of at least
/// [`CPU_WINDOW_MS`] between samples that have `cpu_usage_ns`, at the
/// window's end: `(t_ms, share)`.
fn cpu_share_series(samples: &[Sample]) -> Vec<(u64, f64)> {
    let mut out = Vec::new();
    let mut from: Option<(u64, u64)> = None;
    for (t, ns) in samples
        .iter()
        .filter_map(|s| Some((s.t_ms, s.cpu_usage_ns?)))
    {
        match from {
            None => from = Some((t, ns)),
            Some((t0, ns0)) if t >= t0 + CPU_WINDOW_MS => {
                let used_ns = ns.saturating_sub(ns0) as f64;
                out.push((t, used_ns / ((t - t0) as f64 * 1e6)));
                from = Some((t, ns));
            }
            Some(_) => {}
        }
    }
    out
}

/// Memory usage over time: `(t_ms, bytes)` for samples that have it.
fn memory_series(samples: &[Sample]) -> Vec<(u64, f64)> {
    samples
        .iter()
        .filter_map(|s| Some((s.t_ms, s.memory_bytes? as f64)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture;

    #[test]
    fn formats_round_trip_through_their_names() {
        for format in Format::ALL {
            assert_eq!(format.as_str().parse::<Format>(), Ok(format));
        }
        assert_eq!(
            "yaml".parse::<Format>().unwrap_err().to_string(),
            "unknown format \"yaml\": expected one of human, json, markdown, junit, html"
        );
    }

    #[test]
    fn write_all_writes_every_format_into_a_new_directory() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("boxwatch-report");
        let report = fixture::sample_report();
        let paths = write_all(&report, &out).unwrap();
        let names: Vec<_> = paths
            .iter()
            .map(|p| p.file_name().unwrap().to_str().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "report.json",
                "report.md",
                "junit.xml",
                "report.html",
                "report.txt"
            ]
        );
        for (path, format) in paths.iter().zip(Format::ALL) {
            assert_eq!(
                std::fs::read_to_string(path).unwrap(),
                format.render(&report)
            );
        }
    }

    #[test]
    fn write_all_names_the_path_it_cannot_write() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("not-a-dir");
        std::fs::write(&file, "").unwrap();
        let err = write_all(&fixture::sample_report(), &file).unwrap_err();
        assert!(err
            .to_string()
            .starts_with(&format!("cannot write {}", file.display())));
    }

    #[test]
    fn cpu_share_is_cpu_time_over_wall_time_between_samples() {
        let samples = [
            Sample {
                t_ms: 0,
                cpu_usage_ns: Some(0),
                ..Sample::default()
            },
            Sample {
                t_ms: 100,
                cpu_usage_ns: Some(20_000_000),
                ..Sample::default()
            },
            Sample {
                t_ms: 150,
                cpu_usage_ns: None,
                ..Sample::default()
            },
            Sample {
                t_ms: 300,
                cpu_usage_ns: Some(320_000_000),
                ..Sample::default()
            },
        ];
        assert_eq!(cpu_share_series(&samples), [(100, 0.2), (300, 1.5)]);
    }

    #[test]
    fn cpu_share_is_not_computed_over_windows_shorter_than_a_period() {
        // Every 5 ms, on and off in turn: 50% over each 100 ms window.
        let mut used = 0;
        let samples: Vec<Sample> = (0..=40u64)
            .map(|i| {
                if i > 0 && i % 2 == 0 {
                    used += 5_000_000;
                }
                Sample {
                    t_ms: i * 5,
                    cpu_usage_ns: Some(used),
                    ..Sample::default()
                }
            })
            .collect();
        assert_eq!(cpu_share_series(&samples), [(100, 0.5), (200, 0.5)]);
    }

    #[test]
    fn measurements_read_naturally() {
        assert_eq!(measurement("memory_peak_bytes", 67108864.0), "64.0 MiB");
        assert_eq!(measurement("nr_throttled", 49.0), "49");
        assert_eq!(measurement("cpu_share", 0.20134), "0.201");
        assert_eq!(bytes(512), "512 B");
        assert_eq!(duration(164), "164 ms");
        assert_eq!(duration(5112), "5.1 s");
    }
}
