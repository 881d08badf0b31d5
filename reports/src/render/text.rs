//! The human terminal view: aligned plain text, colors optional.

use super::{
    bytes, check_counts, duration, failing_checks, findings, held_ratio, is_regressed,
    measurements, outcome, regression_measurements, scenario_counts,
};
use crate::model::{CheckResult, Report, ScenarioResult, Status};
use crate::Verdict;
use std::fmt::Write;

/// Whether [`human`] colors its output with ANSI escapes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Color {
    /// Plain text (files, pipes, `NO_COLOR`).
    Never,
    /// ANSI colors (a terminal).
    Always,
}

impl Color {
    /// `text` in the SGR color `code` when colors are on.
    fn paint(self, code: &str, text: &str) -> String {
        match self {
            Color::Never => text.to_string(),
            Color::Always => format!("\x1b[{code}m{text}\x1b[0m"),
        }
    }
}

/// The report for a terminal: a headline, an aligned table of scenarios
/// with the checks that did not hold under each, then regressions, failing
/// checks and findings by name, and the counts.
pub fn human(report: &Report, color: Color) -> String {
    let mut out = String::new();
    headline(&mut out, report, color);
    table(&mut out, report, color);
    regressions(&mut out, report, color);
    failures(&mut out, report, color);
    leaks(&mut out, report, color);
    let _ = writeln!(out, "\n{}", check_counts(report));
    out
}

fn headline(out: &mut String, report: &Report, color: Color) {
    let verdict = outcome(report);
    let code = if report.is_success() { "1;32" } else { "1;31" };
    let host = &report.host;
    let _ = writeln!(
        out,
        "boxwatch {}: {}, {}",
        report.tool_version,
        color.paint(code, verdict),
        scenario_counts(report)
    );
    let _ = writeln!(
        out,
        "host {}, kernel {}, cgroup {} ({}), {} CPUs, {}{}; runtime {} {}; {}\n",
        host.hostname,
        host.kernel_release,
        host.cgroup_mode,
        super::controllers(host),
        host.cpus,
        bytes(host.memory_bytes),
        if host.in_vm { ", in a VM" } else { "" },
        report.runtime.name,
        report.runtime.version,
        report.generated_at.format("%Y-%m-%d %H:%M:%S UTC"),
    );
}

/// The scenario table; under each scenario, the checks that did not hold.
fn table(out: &mut String, report: &Report, color: Color) {
    let header = ["STATUS", "SCENARIO", "CHECKS", "TIME", "MEASUREMENTS"];
    let rows: Vec<[String; 5]> = report
        .scenarios
        .iter()
        .map(|s| {
            [
                status_word(s.status).to_string(),
                s.id.clone(),
                held_ratio(s),
                duration(s.duration_ms),
                measurements(s),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let check_width = report
        .scenarios
        .iter()
        .flat_map(|s| &s.checks)
        .map(|c| c.id.chars().count())
        .max()
        .unwrap_or(0);
    let header_line = align(&header.map(String::from), &widths);
    let _ = writeln!(out, "{}", color.paint("1", &header_line));
    for (scenario, row) in report.scenarios.iter().zip(&rows) {
        let status = format!("{:<w$}", row[0], w = widths[0]);
        let status = color.paint(status_color(scenario.status), &status);
        let rest = align(&row[1..], &widths[1..]);
        let _ = writeln!(out, "{status}  {rest}");
        notes(out, report, scenario, check_width, color);
    }
}

/// The lines under a scenario: checks that did not hold, and its error.
fn notes(out: &mut String, report: &Report, s: &ScenarioResult, width: usize, color: Color) {
    for c in s.checks.iter().filter(|c| !c.held()) {
        let (mark, code) = check_mark(c);
        let verdict = if c.required {
            format!("{}, expected {}", c.verdict, c.expected)
        } else {
            format!("{}, expected {} (informational)", c.verdict, c.expected)
        };
        let regressed = if is_regressed(report, &s.id, &c.id) {
            color.paint("1;31", "  [regression]")
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "  {} {:<width$}  {}: {}{regressed}",
            color.paint(code, mark),
            c.id,
            verdict,
            c.observed
        );
        if let Some(note) = super::evidence_note(c) {
            let _ = writeln!(out, "    {:<width$}  {note}", "");
        }
    }
    if let Some(error) = &s.error {
        let _ = writeln!(out, "  {} {error}", color.paint("35", "!"));
    }
    if let Some(tries) = s.tries_line() {
        let _ = writeln!(out, "  {} {tries}", color.paint("33", "~"));
    }
}

fn regressions(out: &mut String, report: &Report, color: Color) {
    if report.regressions.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "\n{}",
        color.paint("1;31", "Regressions against the baseline:")
    );
    let width = report
        .regressions
        .iter()
        .map(|r| r.name().chars().count())
        .max()
        .unwrap_or(0);
    for r in &report.regressions {
        let change = format!("{} -> {}", r.baseline, r.current);
        let measured = regression_measurements(r);
        let line = format!("  {:<width$}  {change}  {measured}", r.name());
        let _ = writeln!(out, "{}", line.trim_end());
    }
}

fn failures(out: &mut String, report: &Report, color: Color) {
    let failing: Vec<_> = failing_checks(report).collect();
    if failing.is_empty() {
        return;
    }
    let _ = writeln!(out, "\n{}", color.paint("1;31", "Failing required checks:"));
    for (s, c) in failing {
        let _ = writeln!(
            out,
            "  {}/{}  {}, expected {}",
            s.id, c.id, c.verdict, c.expected
        );
    }
}

fn leaks(out: &mut String, report: &Report, color: Color) {
    let found: Vec<_> = findings(report).collect();
    if found.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "\n{}",
        color.paint("1;33", "Findings (informational, not failures):")
    );
    for (s, c) in found {
        let _ = writeln!(out, "  {}/{}  {}: {}", s.id, c.id, c.verdict, c.observed);
        if let Some(detail) = &c.detail {
            let _ = writeln!(out, "    {detail}");
        }
    }
}

/// Cells padded to `widths`, two spaces apart, trailing space trimmed.
fn align(cells: &[String], widths: &[usize]) -> String {
    let line: Vec<String> = cells
        .iter()
        .zip(widths)
        .map(|(cell, &w)| format!("{cell:<w$}"))
        .collect();
    line.join("  ").trim_end().to_string()
}

/// Status words; the ones that need attention in capitals.
fn status_word(status: Status) -> &'static str {
    match status {
        Status::Pass => "pass",
        Status::Fail => "FAIL",
        Status::Unsupported => "unsupported",
        Status::NotApplicable => "not-applicable",
        Status::Error => "ERROR",
    }
}

fn status_color(status: Status) -> &'static str {
    match status {
        Status::Pass => "32",
        Status::Fail => "1;31",
        Status::Unsupported => "2",
        Status::NotApplicable => "2;36",
        Status::Error => "1;35",
    }
}

/// The mark and color of a check that did not hold.
fn check_mark(check: &CheckResult) -> (&'static str, &'static str) {
    match check.verdict {
        Verdict::Unsupported => ("-", "2"),
        Verdict::NotApplicable => ("/", "2;36"),
        Verdict::Error => ("!", "35"),
        _ if !check.required => ("~", "33"),
        _ => ("x", "31"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture;

    #[test]
    fn plain_output_has_no_escape_codes_and_colored_output_does() {
        let report = fixture::sample_report();
        assert!(!human(&report, Color::Never).contains('\x1b'));
        assert!(human(&report, Color::Always).contains("\x1b[1;31mFAIL\x1b[0m"));
    }

    #[test]
    fn colors_do_not_change_the_text() {
        let report = fixture::sample_report();
        let colored = human(&report, Color::Always);
        let mut stripped = String::new();
        let mut rest = colored.as_str();
        while let Some(start) = rest.find('\x1b') {
            stripped.push_str(&rest[..start]);
            let end = rest[start..].find('m').unwrap();
            rest = &rest[start + end + 1..];
        }
        stripped.push_str(rest);
        assert_eq!(stripped, human(&report, Color::Never));
    }
}
